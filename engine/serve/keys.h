/*
 * Client API keys in the engine (issue 17): what a key may use, and its
 * budgets and rate limits.
 *
 * The module checks a key kept in a file (thinkgate_keys file=PATH) and
 * sends its name, rights and limits in the REQUEST meta; for keys kept
 * in Redis (thinkgate_keys redis) it sends the key's SHA-256, or the
 * name an auth_request sub-request gave, and the engine reads the key's
 * record from Redis on every request, so that a key revoked there is
 * refused at once by every gateway.
 *
 * A request with a key then goes:
 *
 *   1. tg_keys_resolve: the Redis record (401 when there is none);
 *   2. routing, then tg_keys_allow_model: 403 for a model or pool the
 *      key may not use;
 *   3. tg_keys_admit: 429 when a window of the key is already over;
 *      an admitted request is counted in the request window at once;
 *   4. strategy selection, then tg_keys_allow_strategy: 403 for a
 *      strategy the key may not use; the request step 3 counted is
 *      given back (lua/key_refund.lua with Redis);
 *   5. tg_keys_close, when the request closes: the tokens its traces
 *      and aux requests cost the GPUs (prompt and completion, cancelled
 *      traces included) are charged.
 *
 * Windows are fixed and start with the first charge: requests and tokens
 * per short window (60 s unless the key says window=), tokens per day
 * (24 h).  With Redis connected the counters live there (lua/
 * key_admit.lua, key_charge.lua, key_refund.lua) and every gateway on
 * that Redis shares them; without, each engine keeps its own and the status
 * document says "local".  Tokens are charged at the end, so requests in
 * flight when a token window fills may all finish: it overshoots by at
 * most what they cost.
 */

#ifndef TG_SERVE_KEYS_H
#define TG_SERVE_KEYS_H

#include <stdint.h>

#include <jansson.h>

#include "core/request.h"
#include "util/buf.h"

#define TG_KEY_NAME_MAX      64
#define TG_KEY_WINDOW_MS     60000u
#define TG_KEY_DAY_MS        86400000u
#define TG_KEY_LABELS        100        /* per-key metric series */

typedef struct tg_keys_s  tg_keys_t;

/* The engine's table of key counters (local windows and metrics);
 * labels is how many keys get their own Prometheus series. */
tg_keys_t *tg_keys_new(unsigned labels);
void tg_keys_free(tg_keys_t *k);

/*
 * Reads the key from the REQUEST meta.  Returns 0 (no key, or one
 * read), -ENOMEM, or -EINVAL with err filled.
 */
int tg_keys_meta(tg_request_t *r, tg_oa_error_t *err);

/* Step 1: next(r) once the key is known, or the request is answered
 * (401, 503) and next is not called. */
void tg_keys_resolve(tg_request_t *r, void (*next)(tg_request_t *r));

/* Steps 2 and 4: 0, or -EPERM with a 403 in err. */
int tg_keys_allow_model(tg_request_t *r, tg_oa_error_t *err);
/* Whether the request's key (if any) may use model, served by the pool
 * named pool (NULL: none): 1 or 0, nothing counted.  GET /v1/models
 * lists only those. */
int tg_keys_may_use(const tg_request_t *r, const char *model,
    const char *pool);
int tg_keys_allow_strategy(tg_request_t *r, const char *strategy,
    tg_oa_error_t *err);

/* Step 3: next(r) when every window of the key has room, else the
 * request is answered with a 429 and Retry-After. */
void tg_keys_admit(tg_request_t *r, void (*next)(tg_request_t *r));

/* Adds "key", "key_tokens_spent" (what the request cost the GPUs so
 * far, as charged) and what remains of each limit the key has
 * ("key_requests_remaining", "key_tokens_remaining",
 * "key_tokens_remaining_day": the window as admitted, less this
 * request) to a "thinkgate" object.  Returns 0 or -ENOMEM. */
int tg_keys_summary(const tg_request_t *r, json_t *obj, uint64_t spent);

/* Step 5 (tg_request_close): charges the spent tokens (and counts the
 * request in the per-key metrics). */
void tg_keys_close(tg_request_t *r, uint64_t spent);

/* Frees the request's key (the reaper). */
void tg_keys_free_request(tg_request_t *r);

/* Status: the "keys" object, and the per-key Prometheus counters. */
int tg_keys_status_json(tg_request_t *r, json_t *doc);
int tg_keys_status_prometheus(tg_request_t *r, tg_buf_t *b);

#endif /* TG_SERVE_KEYS_H */
