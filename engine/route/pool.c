/*
 * Backend selection within a pool.  A backend whose circuit is open
 * (config/health.h) is skipped; when that leaves none, *full says -1.
 */

#include <stddef.h>

#include "route/pool.h"


static int
tg__excluded(tg_backend_t *b, tg_backend_t *const *exclude, size_t n)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (exclude[i] == b) {
            return 1;
        }
    }
    return 0;
}


tg_backend_t *
tg_pool_pick(tg_pool_t *pool, tg_backend_t *const *exclude, size_t nexclude,
    int *full)
{
    tg_backend_t  *b, *best;
    uint64_t       now;
    size_t         i, n, start;
    int            open;

    *full = 0;
    open = 0;
    best = NULL;
    n = pool->nbackends;
    now = tg_health_now_ms();

    if (n == 0) {
        return NULL;
    }

    /* Rotating the first candidate spreads ties (least in flight) and is
     * the whole policy for round robin. */
    start = pool->cursor++ % n;

    for (i = 0; i < n; i++) {
        b = pool->backends[(start + i) % n];

        if (tg__excluded(b, exclude, nexclude)) {
            continue;
        }

        if (!tg_health_usable(&b->stats->health, now)) {
            open = 1;
            continue;
        }

        if (b->max_inflight > 0
            && b->stats->in_flight >= (uint64_t) b->max_inflight)
        {
            *full = 1;
            continue;
        }

        if (pool->policy == TG_POOL_ROUND_ROBIN) {
            tg_health_take(&b->stats->health, now);
            return b;
        }

        if (best == NULL || b->stats->in_flight < best->stats->in_flight) {
            best = b;
        }
    }

    if (best != NULL) {
        *full = 0;
        tg_health_take(&best->stats->health, now);

    } else if (open && !*full) {
        *full = -1;
    }

    return best;
}


tg_backend_t *
tg_pool_pick_prefer(tg_pool_t *pool, tg_backend_t *prefer,
    tg_backend_t *const *exclude, size_t nexclude, int *full)
{
    size_t    i;
    uint64_t  now;

    now = tg_health_now_ms();

    if (prefer != NULL && !tg__excluded(prefer, exclude, nexclude)
        && tg_health_usable(&prefer->stats->health, now)
        && (prefer->max_inflight == 0
            || prefer->stats->in_flight < (uint64_t) prefer->max_inflight))
    {
        for (i = 0; i < pool->nbackends; i++) {
            if (pool->backends[i] == prefer) {
                *full = 0;
                tg_health_take(&prefer->stats->health, now);
                return prefer;
            }
        }
    }
    return tg_pool_pick(pool, exclude, nexclude, full);
}


void
tg_backend_started(tg_backend_t *b)
{
    b->stats->in_flight++;
    b->stats->requests++;
}


void
tg_backend_finished(tg_backend_t *b, int failed, const char *err)
{
    if (b->stats->in_flight > 0) {
        b->stats->in_flight--;
    }
    if (failed > 0) {
        b->stats->errors++;
    }
    tg_health_record(&b->stats->health,
                     failed < 0 ? TG_HEALTH_NEUTRAL
                     : failed ? TG_HEALTH_FAIL : TG_HEALTH_OK,
                     err, tg_health_now_ms());
}
