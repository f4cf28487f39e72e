/*
 * Backend selection within a pool: least in flight (ties broken by
 * rotating the starting point, so equal backends share the load), or
 * round robin; a backend at its max_inflight is skipped.
 */

#ifndef TG_ROUTE_POOL_H
#define TG_ROUTE_POOL_H

#include <stddef.h>

#include "config/generation.h"

/*
 * Picks a backend not in exclude[nexclude].  Returns it, or NULL with
 * *full set when every remaining backend is at its max_inflight (0 when
 * none remains at all).
 */
tg_backend_t *tg_pool_pick(tg_pool_t *pool, tg_backend_t *const *exclude,
    size_t nexclude, int *full);

/*
 * The same, but prefer (may be NULL) when it is a member of the pool, not
 * excluded and below its max_inflight: a request's prefix holder or
 * session backend (core/prep.h).
 */
tg_backend_t *tg_pool_pick_prefer(tg_pool_t *pool, tg_backend_t *prefer,
    tg_backend_t *const *exclude, size_t nexclude, int *full);

/* Counters around one transfer. */
void tg_backend_started(tg_backend_t *b);
void tg_backend_finished(tg_backend_t *b, int failed);

#endif /* TG_ROUTE_POOL_H */
