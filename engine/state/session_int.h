/*
 * Private to state/session.c and state/session_op.c.
 */

#ifndef TG_STATE_SESSION_INT_H
#define TG_STATE_SESSION_INT_H

#include <hiredis/hiredis.h>

#include "state/session.h"

enum {
    TG__SESSION_GET = 0,
    TG__SESSION_APPEND,
    TG__SESSION_UNLOCK,
    TG__SESSION_REFRESH,
    TG__SESSION_SETTLE
};

struct tg_session_op_s {
    tg_session_store_t    *st;
    tg_queue_t             link;       /* in st->ops */
    int                    kind;
    tg_session_get_cb      get_cb;
    tg_session_append_cb   append_cb;
    void                  *data;
    tg_redis_cmd_t        *cmd;

    /* What is sent, kept so that a write (append, unlock) whose reply
     * was lost can be sent again until its deadline. */
    tg_redis_script_t     *script;
    int                    nkeys;
    int                    nargs;
    const char            *keys[3];
    const char            *args[7];
    uv_timer_t            *timer;       /* a write waiting to be resent */
    uint64_t               deadline_ms; /* loop time */
    int                    unsure;      /* an append sent whose reply was
                                           lost: its error (it may have
                                           been stored), else 0 */
    /* keys and arguments follow */
};

/* A write whose reply was lost is sent again after this long. */
#define TG__SESSION_RETRY_MS  250

/* session_op.c: one script call on the session's keys; a write is sent
 * again while its reply is lost, until its deadline. */
int tg__session_call(tg_session_store_t *st, int kind, const char *id,
    tg_redis_script_t *s, int nkeys, int nargs, const char *const *args,
    tg_session_op_t **out);
/* Unlinks and frees; the retry timer's memory goes in its close
 * callback. */
void tg__session_free(tg_session_op_t *op);

/* session.c: the replies of reads and appends. */
void tg__session_got(tg_session_op_t *op, int status, redisReply *reply);
void tg__session_appended(tg_session_op_t *op, int status,
    redisReply *reply);

#endif /* TG_STATE_SESSION_INT_H */
