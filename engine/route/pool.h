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
 * Picks a backend not in exclude[nexclude] whose circuit lets it serve
 * (config/health.h); picking a backend past its cool-off makes this
 * transfer its half-open probe.  Returns it, or NULL with *full set: 1
 * when every remaining backend is at its max_inflight, -1 when the rest
 * have their circuit open, 0 when none remains at all.
 */
tg_backend_t *tg_pool_pick(tg_pool_t *pool, tg_backend_t *const *exclude,
    size_t nexclude, int *full);

/*
 * The same, but prefer (may be NULL) when it is a member of the pool, not
 * excluded and below its max_inflight: a request's prefix holder or
 * session backend (serve/prep.h).
 */
tg_backend_t *tg_pool_pick_prefer(tg_pool_t *pool, tg_backend_t *prefer,
    tg_backend_t *const *exclude, size_t nexclude, int *full);

/* Counters around one transfer; failed: 1 failed (err says why, may be
 * NULL), 0 succeeded, -1 cancelled (neither, for the breaker). */
void tg_backend_started(tg_backend_t *b);
void tg_backend_finished(tg_backend_t *b, int failed, const char *err);

#endif /* TG_ROUTE_POOL_H */
