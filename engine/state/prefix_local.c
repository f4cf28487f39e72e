/*
 * The local prefix index, used without Redis and kept warm beside it.
 *
 * A bounded open-addressing table of blocks: a block lives in one of
 * TG__PREFIX_WINDOW slots after its home slot.  Nothing is ever deleted;
 * a slot whose records are all older than the TTL counts as free, and
 * when a window is full the block recorded least recently is replaced.
 * Memory is therefore fixed at start (local_entries slots) and every
 * operation touches at most one window per block.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "state/prefix_int.h"

#define TG__PREFIX_WINDOW  8

static tg__prefix_slot_t *tg__prefix_find(tg_prefix_index_t *idx,
    uint64_t h);
static uint64_t tg__prefix_newest(const tg__prefix_slot_t *s);
static int tg__prefix_live(const tg_prefix_index_t *idx,
    const tg__prefix_slot_t *s, int i, uint64_t now);
static int tg__prefix_name(tg_prefix_index_t *idx, const char *backend);


int
tg__prefix_local_init(tg_prefix_index_t *idx)
{
    size_t  n = 1;

    while (n < idx->conf.local_entries) {
        n <<= 1;
    }
    if (n < TG__PREFIX_WINDOW) {
        n = TG__PREFIX_WINDOW;
    }
    idx->slots = calloc(n, sizeof(*idx->slots));
    if (idx->slots == NULL) {
        return -ENOMEM;
    }
    idx->mask = n - 1;
    return 0;
}


void
tg__prefix_local_free(tg_prefix_index_t *idx)
{
    size_t  i;

    free(idx->slots);
    idx->slots = NULL;
    for (i = 0; i < TG_PREFIX_MAX_NAMES; i++) {
        free(idx->names[i]);
        idx->names[i] = NULL;
    }
}


static int
tg__prefix_live(const tg_prefix_index_t *idx, const tg__prefix_slot_t *s,
    int i, uint64_t now)
{
    return s->name[i] != 0 && now - s->time[i] <= idx->conf.ttl_ms;
}


static uint64_t
tg__prefix_newest(const tg__prefix_slot_t *s)
{
    uint64_t  t = 0;
    int       i;

    for (i = 0; i < TG_PREFIX_LOCAL_CAP; i++) {
        if (s->name[i] != 0 && s->time[i] > t) {
            t = s->time[i];
        }
    }
    return t;
}


static tg__prefix_slot_t *
tg__prefix_find(tg_prefix_index_t *idx, uint64_t h)
{
    size_t  i, home = (size_t) h & idx->mask;

    for (i = 0; i < TG__PREFIX_WINDOW; i++) {
        if (idx->slots[(home + i) & idx->mask].hash == h) {
            return &idx->slots[(home + i) & idx->mask];
        }
    }
    return NULL;
}


size_t
tg__prefix_local_lookup(tg_prefix_index_t *idx, const uint64_t *h, size_t n,
    tg_prefix_match_t *out, size_t max)
{
    tg__prefix_slot_t  *s;
    uint64_t            now = uv_now(idx->loop), t[TG_PREFIX_LOCAL_CAP];
    uint16_t            who[TG_PREFIX_LOCAL_CAP];
    size_t              nm = 0, k, i, j;
    int                 alive[TG_PREFIX_LOCAL_CAP], nalive;

    s = (n > 0) ? tg__prefix_find(idx, h[0] ? h[0] : 1) : NULL;
    if (s == NULL) {
        return 0;
    }

    /* Holders of the first block, most recent first. */
    for (i = 0; i < TG_PREFIX_LOCAL_CAP && nm < max; i++) {
        if (!tg__prefix_live(idx, s, (int) i, now)) {
            continue;
        }
        for (j = nm; j > 0 && t[j - 1] < s->time[i]; j--) {
            t[j] = t[j - 1];
            who[j] = who[j - 1];
        }
        t[j] = s->time[i];
        who[j] = s->name[i];
        nm++;
    }
    for (i = 0; i < nm; i++) {
        out[i].backend = idx->names[who[i] - 1];
        out[i].blocks = 1;
        alive[i] = 1;
    }

    nalive = (int) nm;
    for (k = 1; k < n && nalive > 0; k++) {
        s = tg__prefix_find(idx, h[k] ? h[k] : 1);
        for (i = 0; i < nm; i++) {
            if (!alive[i]) {
                continue;
            }
            alive[i] = 0;
            for (j = 0; s != NULL && j < TG_PREFIX_LOCAL_CAP; j++) {
                if (s->name[j] == who[i]
                    && tg__prefix_live(idx, s, (int) j, now))
                {
                    alive[i] = 1;
                    out[i].blocks = (unsigned) k + 1;
                    break;
                }
            }
            if (!alive[i]) {
                nalive--;
            }
        }
    }
    return nm;
}


static int
tg__prefix_name(tg_prefix_index_t *idx, const char *backend)
{
    int  i;

    for (i = 0; i < TG_PREFIX_MAX_NAMES && idx->names[i] != NULL; i++) {
        if (strcmp(idx->names[i], backend) == 0) {
            return i + 1;
        }
    }
    if (i == TG_PREFIX_MAX_NAMES) {
        return -ENOSPC;
    }
    idx->names[i] = strdup(backend);
    if (idx->names[i] == NULL) {
        return -ENOMEM;
    }
    return i + 1;
}


int
tg__prefix_local_record(tg_prefix_index_t *idx, const uint64_t *h, size_t n,
    const char *backend)
{
    tg__prefix_slot_t  *s, *victim;
    uint64_t            now = uv_now(idx->loop), hk, oldest;
    size_t              k, i, home;
    unsigned            cap = idx->conf.cap;
    int                 name, j, use;

    name = tg__prefix_name(idx, backend);
    if (name < 0) {
        return name;
    }
    if (cap > TG_PREFIX_LOCAL_CAP) {
        cap = TG_PREFIX_LOCAL_CAP;
    }

    for (k = 0; k < n; k++) {
        hk = h[k] ? h[k] : 1;
        s = tg__prefix_find(idx, hk);
        if (s == NULL) {
            /* A free (empty or expired) slot in the window, else the one
             * recorded least recently. */
            home = (size_t) hk & idx->mask;
            victim = NULL;
            oldest = UINT64_MAX;
            for (i = 0; i < TG__PREFIX_WINDOW; i++) {
                tg__prefix_slot_t  *c = &idx->slots[(home + i) & idx->mask];
                uint64_t            t = tg__prefix_newest(c);

                if (c->hash == 0 || now - t > idx->conf.ttl_ms) {
                    victim = c;
                    oldest = 0;
                    break;
                }
                if (t < oldest) {
                    oldest = t;
                    victim = c;
                }
            }
            if (oldest != 0) {
                idx->stats.local_evictions++;
            }
            memset(victim, 0, sizeof(*victim));
            victim->hash = hk;
            s = victim;
        }

        /* This backend's entry, else a free one, else the oldest, among
         * the first cap entries. */
        use = -1;
        for (j = 0; j < (int) cap; j++) {
            if (s->name[j] == name) {
                use = j;
                break;
            }
        }
        if (use < 0) {
            for (j = 0; j < (int) cap; j++) {
                if (!tg__prefix_live(idx, s, j, now)) {
                    use = j;
                    break;
                }
            }
        }
        if (use < 0) {
            use = 0;
            for (j = 1; j < (int) cap; j++) {
                if (s->time[j] < s->time[use]) {
                    use = j;
                }
            }
        }
        s->name[use] = (uint16_t) name;
        s->time[use] = now;
    }
    return 0;
}


void
tg__prefix_sort(tg_prefix_match_t *m, size_t n)
{
    tg_prefix_match_t  x;
    size_t             i, j;

    for (i = 1; i < n; i++) {
        x = m[i];
        for (j = i; j > 0 && m[j - 1].blocks < x.blocks; j--) {
            m[j] = m[j - 1];
        }
        m[j] = x;
    }
}
