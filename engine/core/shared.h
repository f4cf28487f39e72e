/*
 * What the engine shares with other gateways through Redis (DESIGN §6):
 * one Redis connection, session store and set of prefix indexes per
 * distinct "redis" settings of the configuration documents.
 *
 * A reload that keeps the same settings keeps the same connection (and
 * the local prefix index, which stays warm); different settings get a
 * new one.  Generations without Redis share one local-only link: prefix
 * routing works on the local index, sessions are unavailable (503).
 *
 * Links are matched to generations when a worker registers
 * (tg_shared_attach); a link that no live generation uses any more is
 * closed at the next registration or at shutdown.
 */

#ifndef TG_CORE_SHARED_H
#define TG_CORE_SHARED_H

#include <jansson.h>

#include "engine.h"
#include "state/prefix.h"
#include "state/redis.h"
#include "state/session.h"
#include "util/buf.h"

typedef struct tg_shared_s        tg_shared_t;
typedef struct tg_shared_index_s  tg_shared_index_t;

/* One prefix index: one block size and TTL (pool block=, ttl=). */
struct tg_shared_index_s {
    tg_prefix_index_t    idx;
    tg_shared_t         *link;
    unsigned             block;
    uint64_t             ttl_ms;
    tg_shared_index_t   *next;
};

struct tg_shared_s {
    tg_engine_t         *engine;
    char                *key;       /* canonical "redis" JSON, "" none */
    int                  has_redis;
    tg_redis_t           redis;
    tg_session_store_t   sessions;
    int                  sessions_ok;    /* store initialised */
    tg_shared_index_t   *indexes;
    /* Client keys' windows (serve/keys.h); body NULL when unread. */
    tg_redis_script_t    keys_admit;
    tg_redis_script_t    keys_charge;
    tg_redis_script_t    keys_refund;

    uint32_t            *gens;      /* ids of the generations using it */
    size_t               ngens;
    size_t               cap;

    uint64_t             to_holder;     /* prefix routes to a holder */
    uint64_t             diverted;      /* holder overloaded: elsewhere */

    unsigned             closing;   /* close callbacks still due */
    tg_shared_t         *next;
};

/*
 * Finds or creates the link for g's "redis" settings and notes that g
 * uses it; closes links no live generation uses.  Returns 0, or a
 * negative errno (-EINVAL bad settings, -ENOMEM) with err filled: the
 * registration is then refused.
 */
int tg_shared_attach(tg_engine_t *e, tg_generation_t *g, char *err,
    size_t errlen);

/* The link of a generation attached before; NULL when none. */
tg_shared_t *tg_shared_of(tg_engine_t *e, const tg_generation_t *g);

/* The prefix index for a pool's block and TTL, created on first use;
 * NULL when out of memory or the scripts cannot be read. */
tg_prefix_index_t *tg_shared_index(tg_shared_t *s, unsigned block,
    uint64_t ttl_ms);

/* The session store, or NULL when this link has no Redis. */
tg_session_store_t *tg_shared_sessions(tg_shared_t *s);

/* "shared" (Redis connected), "local" (configured, not connected) or
 * "off" (no Redis configured). */
const char *tg_shared_mode(const tg_shared_t *s);

/* Adds "redis", "prefix" and "sessions" objects to a status document,
 * or their Prometheus lines to b (core/shared_status.c).  s may be NULL
 * (nothing attached yet).  Return 0 or -ENOMEM. */
int tg_shared_status_json(const tg_shared_t *s, json_t *doc);
int tg_shared_status_prometheus(const tg_shared_t *s, tg_buf_t *b);

/* Closes every link (engine shutdown); memory goes from close callbacks. */
void tg_shared_close_all(tg_engine_t *e);

#endif /* TG_CORE_SHARED_H */
