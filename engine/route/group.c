/*
 * policy=grouped: which waiting trace goes to which backend next.
 */

#include <stdio.h>
#include <string.h>

#include "route/group.h"
#include "util/str.h"


static int
tg__group_free(const tg_backend_t *b)
{
    return b->max_inflight == 0
           || b->stats->in_flight < (uint64_t) b->max_inflight;
}


/* The least loaded backend of w's pool with a free slot that matches
 * rule (1 same model, 2 idle, 3 any); NULL when none. */
static tg_backend_t *
tg__group_pick(const tg_group_wait_t *w, int rule)
{
    tg_backend_t  *b, *best;
    size_t         i;

    best = NULL;
    for (i = 0; i < w->pool->nbackends; i++) {
        b = w->pool->backends[i];
        if (!tg__group_free(b)) {
            continue;
        }
        if (rule == 1 && strcmp(b->stats->serving, w->model) != 0) {
            continue;
        }
        if (rule == 2 && b->stats->in_flight != 0) {
            continue;
        }
        if (best == NULL || b->stats->in_flight < best->stats->in_flight) {
            best = b;
        }
    }
    return best;
}


long
tg_group_next(tg_group_wait_t *const *w, size_t n, uint64_t now_ms,
    tg_backend_t **to, uint64_t *wake_ms)
{
    uint64_t  end;
    size_t    i;
    int       rule;

    *to = NULL;
    *wake_ms = UINT64_MAX;

    for (rule = 1; rule <= 3; rule++) {
        for (i = 0; i < n; i++) {
            if (w[i]->pool->policy != TG_POOL_GROUPED) {
                /* Waiting only for a slot: no model to group by, no
                 * window; the first free slot, oldest first. */
                if (rule != 3) {
                    continue;
                }
                end = w[i]->since_ms;
            } else {
                end = w[i]->since_ms + (uint64_t) w[i]->pool->window_ms;
            }
            if (rule == 3 && end > now_ms) {
                if (end < *wake_ms) {
                    *wake_ms = end;
                }
                continue;
            }
            *to = tg__group_pick(w[i], rule);
            if (*to != NULL) {
                *wake_ms = UINT64_MAX;
                return (long) i;
            }
        }
    }
    return -1;
}


void
tg_backend_serve(tg_backend_t *b, const char *model)
{
    tg_str_copy(b->stats->serving, sizeof(b->stats->serving),
                model != NULL ? model : "");
}
