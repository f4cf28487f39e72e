/*
 * One Redis connection on the engine's libuv loop (hiredis 0.14 async API
 * and its header-only libuv adapter).
 *
 * The connection is established in the background and re-established
 * after any loss with a backoff of 100 ms doubling to 5 s.  It counts as
 * connected ("ready") only once AUTH, SELECT and a PING have been
 * answered, so a server that accepts TCP connections but does not answer
 * (stopped, overloaded) is not treated as available.
 *
 * Commands are only accepted while ready; otherwise tg_redis_command()
 * returns -ENOTCONN at once, so that callers fall back (local prefix
 * index) or answer 503 (sessions) instead of queueing behind a dead link.
 *
 * hiredis 0.14 has no timeouts of its own: every command carries a
 * deadline watched by one loop timer.  A command past its deadline gets
 * its callback with -ETIMEDOUT exactly once, and the connection is then
 * dropped and re-established: replies on a Redis connection come in
 * order, so every later command would wait behind the stuck one, and a
 * late reply must never be mistaken for the answer to something else.
 * What was still pending gets -ECONNRESET; late replies are dropped.
 *
 * Contract, as in libuv: a function that takes a callback and returns an
 * error never calls the callback; one that returns 0 calls it exactly
 * once, never before returning, unless the command is cancelled.
 */

#ifndef TG_STATE_REDIS_H
#define TG_STATE_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>

#include "util/queue.h"

typedef struct tg_redis_s         tg_redis_t;
typedef struct tg_redis_cmd_s     tg_redis_cmd_t;
typedef struct tg_redis_script_s  tg_redis_script_t;

/*
 * status 0: reply is a non-error reply.  -EIO: reply is an error reply
 * (REDIS_REPLY_ERROR, message in reply->str).  -ETIMEDOUT, -ECONNRESET
 * (connection lost), -ECANCELED (tg_redis_close): reply is NULL.
 * The reply is freed by hiredis when the callback returns.
 */
typedef void (*tg_redis_cb)(tg_redis_t *r, int status, redisReply *reply,
    void *data);
typedef void (*tg_redis_close_cb)(tg_redis_t *r);

typedef struct {
    const char  *host;             /* NULL with unix_path set */
    int          port;             /* 0: 6379 */
    const char  *unix_path;        /* used instead of host:port when set */
    int          db;               /* SELECT when not 0 */
    const char  *prefix;           /* prepended to every key; NULL: "" */
    const char  *user;             /* ACL user for AUTH, NULL: none */
    const char  *password_env;     /* name of the variable holding the
                                      password, NULL: no AUTH */
    uint64_t     connect_timeout_ms;  /* 0: 1000; covers resolve, connect
                                         and the AUTH/SELECT/PING answer */
    uint64_t     command_timeout_ms;  /* 0: 250 */
} tg_redis_conf_t;

typedef struct {
    int          connected;        /* ready for commands */
    const char  *mode;             /* "connected", "connecting", "down" */
    uint64_t     latency_us;       /* EWMA (1/8) of command round trips */
    uint64_t     commands;         /* accepted */
    uint64_t     errors;           /* error replies, lost, timed out */
    uint64_t     timeouts;
    uint64_t     reconnects;       /* connections re-established */
    uint64_t     connect_failures;
    const char  *last_error;       /* "" when none */
} tg_redis_stats_t;

/* A script read from the lua/ directory, named by its SHA-1. */
struct tg_redis_script_s {
    char        *name;             /* file name, for messages */
    char        *body;
    size_t       len;
    char         sha[41];

    /* The connection it was last sent on as EVAL (see
     * tg_redis_script_call); private. */
    const tg_redis_t  *loaded_on;
    uint64_t           loaded_conn;
};

enum {
    TG__REDIS_DOWN = 0,            /* waiting for the retry timer */
    TG__REDIS_CONNECTING,          /* resolving, connecting, handshake */
    TG__REDIS_READY,
    TG__REDIS_CLOSING,
    TG__REDIS_CLOSED
};

/* Embedded by the owner; the fields below are private. */
struct tg_redis_s {
    void               *data;      /* free for the owner */

    uv_loop_t          *loop;
    char               *host;
    char               *unix_path;
    char               *prefix;
    size_t              prefix_len;
    char               *user;
    char               *password;
    int                 port;
    int                 db;
    uint64_t            connect_timeout_ms;
    uint64_t            command_timeout_ms;

    int                 state;     /* TG__REDIS_* */
    redisAsyncContext  *ac;
    void               *resolve;   /* in-flight getaddrinfo, detached
                                      when abandoned */
    uint64_t            backoff_ms;
    int                 was_ready; /* a later ready is a reconnect */
    uint64_t            conn_id;   /* counts readies */
    int                 handshake_left;

    uv_timer_t          conn_timer;   /* retry, or connect deadline */
    uv_timer_t          cmd_timer;    /* earliest command deadline */
    int                 handles_open;
    tg_redis_close_cb   close_cb;

    tg_queue_t          pending;   /* tg_redis_cmd_t, in deadline order */

    tg_redis_stats_t    stats;
    char                error[160];
};

/*
 * Copies conf (strings included) and starts connecting.  Returns 0 or
 * -EINVAL (bad conf, message in r->error), -ENOMEM, or a libuv error.
 */
int tg_redis_init(tg_redis_t *r, uv_loop_t *loop, const tg_redis_conf_t *conf);

/*
 * Fills conf's host/port or unix_path from "host:port", "host",
 * "[v6]:port" or "unix:/path".  The strings point into buf (a copy of
 * addr, size bytes).  Returns 0 or -EINVAL.
 */
int tg_redis_conf_addr(tg_redis_conf_t *conf, const char *addr, char *buf,
    size_t size);

/*
 * Sends one command.  argvlen may be NULL (NUL-terminated arguments).
 * *handle, when handle is not NULL, may be passed to tg_redis_cancel()
 * until the callback has been called.  Returns 0, -ENOTCONN (not ready),
 * -EINVAL or -ENOMEM.
 */
int tg_redis_command(tg_redis_t *r, int argc, const char **argv,
    const size_t *argvlen, tg_redis_cb cb, void *data,
    tg_redis_cmd_t **handle);

/*
 * Runs a script: the first call of a script on each connection is sent
 * as EVAL, which also caches it on the server, later ones as EVALSHA.
 * Were EVALSHA always sent first, its EVAL retry would run after commands
 * sent meanwhile and reorder them.  A NOSCRIPT answer (after SCRIPT FLUSH
 * or a failover) is still retried once as EVAL, transparently.  Keys and
 * args are NUL-terminated and copied.  Returns as tg_redis_command().
 */
int tg_redis_script_call(tg_redis_t *r, tg_redis_script_t *s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    tg_redis_cb cb, void *data, tg_redis_cmd_t **handle);

/* The callback of a pending command will not be called; its reply, if
 * one comes, is dropped. */
void tg_redis_cancel(tg_redis_cmd_t *c);

/* Ready for commands. */
int tg_redis_connected(const tg_redis_t *r);

void tg_redis_get_stats(const tg_redis_t *r, tg_redis_stats_t *out);

/*
 * Pending commands get -ECANCELED (from inside this call), the
 * connection and timers are closed, and close_cb (may be NULL) runs from
 * the loop once r's memory may be released.
 */
void tg_redis_close(tg_redis_t *r, tg_redis_close_cb close_cb);

/*
 * Reads dir/file and computes its SHA-1.  Meant for start-up, before the
 * loop serves requests (a blocking read).  Returns 0, or a negative errno
 * with a message in err.
 */
int tg_redis_script_load(tg_redis_script_t *s, const char *dir,
    const char *file, char *err, size_t errlen);
void tg_redis_script_free(tg_redis_script_t *s);

/*
 * The directory the engine reads Lua scripts from when no --lua-dir is
 * given: <directory of the running executable>/../../lua when it holds
 * prefix_lookup.lua (build/bin/thinkgated in a checkout), else the
 * compiled-in TG_LUA_DIR, else /usr/share/thinkgate/lua.  Returns 0 or
 * -ENAMETOOLONG.
 */
int tg_redis_default_lua_dir(char *buf, size_t size);

#endif /* TG_STATE_REDIS_H */
