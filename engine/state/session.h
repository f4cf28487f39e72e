/*
 * Sessions in Redis (DESIGN §6, issue 5): a session id, bound to the API
 * key that created it, holds the conversation as a list of turns, the
 * backend it is pinned to, and counters, with a TTL.
 *
 * Concurrency: 409, not serialization.  tg_session_get() with a token
 * takes the session's lock (SET NX PX in lua/session_get.lua) together
 * with the read; a second request on the same session while the first
 * runs gets -EBUSY (the engine answers 409 "session busy").  The lock is
 * released by tg_session_append() or tg_session_unlock().  Its lease is
 * short (lease_ms, 10 s by default): the holder refreshes it with
 * tg_session_refresh() while its request runs (a heartbeat, every
 * lease_ms / 3), so that the lock lasts as long as the request however
 * long that is, and an engine killed mid-request blocks the session for
 * at most one lease.  Appends are atomic and never refused for the lock,
 * so no answered turn is lost.
 *
 * Redis away is never an empty history: every call returns -ENOTCONN
 * (the engine answers 503 "session store unavailable") or its callback
 * gets -ETIMEDOUT / -ECONNRESET / -EIO (503 too).
 *
 * Status codes and the answers they map to:
 *   -EINVAL    bad session id                       400 (returned)
 *   -ENOTCONN  Redis not configured or not connected 503 (returned)
 *   -EACCES    owned by another API key             404 (callback)
 *   -EBUSY     another request holds the session    409 (callback)
 *   -ETIMEDOUT, -ECONNRESET, -EIO, -ENOMEM          503 (callback)
 *   -ECANCELED tg_session_store_close()                 (callback)
 */

#ifndef TG_STATE_SESSION_H
#define TG_STATE_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "state/redis.h"
#include "util/queue.h"

#define TG_SESSION_ID_MAX     128
#define TG_SESSION_OWNER_LEN  40      /* hex digits */
#define TG_SESSION_TOKEN_MAX  48
#define TG_SESSION_LEASE_MS   10000   /* default lock lease */

typedef struct tg_session_store_s  tg_session_store_t;
typedef struct tg_session_op_s     tg_session_op_t;

typedef struct {
    uint64_t   ttl_ms;      /* session lifetime after its last use, 0: 1 day */
    uint64_t   lease_ms;    /* lock lifetime without a heartbeat,
                               0: TG_SESSION_LEASE_MS */
    unsigned   max_turns;   /* turns kept, oldest dropped, 0: 64 */
    uint64_t   write_ms;    /* an append or unlock whose reply is lost
                               (timeout, reset, Redis away) is sent again
                               for this long, 0: 5000 */
} tg_session_conf_t;

/* What tg_session_get() found; valid during the callback only. */
typedef struct {
    int          found;        /* 0: a new session, nothing stored */
    const char  *backend;      /* pinned backend, "" when none */
    const char  *history;      /* JSON array of the stored messages, in
                                  order: "[]" for a new session */
    size_t       history_len;
    unsigned     turns;
    uint64_t     dropped;      /* turns dropped by the cap so far */
} tg_session_t;

typedef void (*tg_session_get_cb)(tg_session_store_t *st, int status,
    const tg_session_t *s, void *data);
/* turns: kept after the append; dropped: oldest turns this append
 * dropped. */
typedef void (*tg_session_append_cb)(tg_session_store_t *st, int status,
    unsigned turns, unsigned dropped, void *data);

typedef struct {
    uint64_t   gets;
    uint64_t   appends;
    uint64_t   busy;
    uint64_t   not_owner;
    uint64_t   unavailable;    /* -ENOTCONN, timeouts, lost, errors */
    uint64_t   retries;        /* writes sent again */
    uint64_t   lost;           /* appends that failed for good */
    uint64_t   unknown;        /* of those, sent with their reply lost:
                                  they may have been stored */
    uint64_t   settled_stored; /* unknown ones found stored later */
    uint64_t   settled_lost;   /* unknown ones found not stored, and
                                  fenced */
    uint64_t   refreshes;      /* lock heartbeats sent */
    uint64_t   locks_lost;     /* heartbeats that found the lock gone */
} tg_session_stats_t;

/* Embedded by the owner; fields below data are private. */
struct tg_session_store_s {
    void                *data;
    tg_redis_t          *redis;        /* NULL: sessions unavailable */
    tg_session_conf_t    conf;
    tg_redis_script_t    get_script;
    tg_redis_script_t    append_script;
    tg_redis_script_t    unlock_script;
    tg_redis_script_t    refresh_script;
    tg_redis_script_t    settle_script;
    tg_queue_t           ops;          /* tg_session_op_t, newest first */
    uint64_t             instance;     /* random, for lock tokens */
    uint64_t             next_token;
    tg_session_stats_t   stats;
};

/*
 * Reads the session scripts from lua_dir when redis is not NULL.
 * Returns 0 or a negative errno with a message in err.
 */
int tg_session_store_init(tg_session_store_t *st, tg_redis_t *redis,
    const char *lua_dir, const tg_session_conf_t *conf, char *err,
    size_t errlen);

/* Pending operations get -ECANCELED from inside this call; nothing is
 * left on the loop.  Close before the tg_redis_t. */
void tg_session_store_close(tg_session_store_t *st);

/* 1 when id is [A-Za-z0-9_-]{1,128}. */
int tg_session_id_valid(const char *id, size_t len);

/* The owner of sessions created with this bearer token: hex SHA-1 of it
 * ("" for requests without one: they all share one owner). */
void tg_session_owner(const char *bearer, size_t len,
    char owner[TG_SESSION_OWNER_LEN + 1]);

/* A lock token unique to this process and call. */
void tg_session_token(tg_session_store_t *st,
    char token[TG_SESSION_TOKEN_MAX]);

/*
 * Reads the session; with a token (not NULL or "") also takes its lock.
 * Returns 0 (callback follows), -EINVAL, -ENOTCONN or -ENOMEM.
 */
int tg_session_get(tg_session_store_t *st, const char *id, const char *owner,
    const char *token, tg_session_get_cb cb, void *data,
    tg_session_op_t **op);

/*
 * Appends one turn: messages_json is a JSON array of the turn's messages
 * (the new user messages, then the final answer without its thinking),
 * pins the session to backend (NULL or "": unchanged), refreshes the
 * TTL, drops the oldest turns beyond max_turns and releases the lock
 * held by token.  cb may be NULL.  Returns as tg_session_get().
 *
 * The append is confirmed: cb gets 0 only once Redis has stored the
 * turn.  A lost reply (timeout, reset, Redis away) is retried for
 * write_ms (the script is idempotent per token, so a retry that gets
 * through also tells whether an earlier copy was stored); if it still
 * fails, cb gets the error and the store itself releases the lock (an
 * unlock, retried too), so a stall never leaves the session locked.
 * The error says what is known:
 *   -ENOTCONN, -EIO, -ENOMEM, -EACCES   the turn is not stored (no copy
 *                                       reached Redis, or it refused it)
 *   -ETIMEDOUT, -ECONNRESET             unknown: a copy was sent and its
 *                                       reply lost, Redis may have run it
 * After an unknown outcome the store settles it in the background
 * (lua/session_settle.lua, retried for a minute): it finds whether the
 * turn is stored, fences it when not (a late copy is then refused), logs
 * the answer and counts it (settled_stored, settled_lost).  -ESTALE: the
 * token was fenced (not stored).
 * tg_session_cancel() on an append only drops cb: the write goes on.
 */
int tg_session_append(tg_session_store_t *st, const char *id,
    const char *owner, const char *token, const char *backend,
    const char *messages_json, tg_session_append_cb cb, void *data,
    tg_session_op_t **op);

/* Releases the lock of a request that ends without appending.  Fire and
 * forget, retried for write_ms: if it still fails the lock expires
 * after lease_ms. */
int tg_session_unlock(tg_session_store_t *st, const char *id,
    const char *token);

/* The heartbeat: extends the lock held by token to lease_ms from now.
 * Fire and forget, not retried (the next beat is); a lock found gone is
 * logged and counted (locks_lost).  Returns as tg_session_unlock(). */
int tg_session_refresh(tg_session_store_t *st, const char *id,
    const char *token);

/* The operation's callback will not be called (a write still goes
 * on). */
void tg_session_cancel(tg_session_op_t *op);

#endif /* TG_STATE_SESSION_H */
