/*
 * Private to redis.c (the connection) and redis_cmd.c (commands).
 */

#ifndef TG_STATE_REDIS_INT_H
#define TG_STATE_REDIS_INT_H

#include "state/redis.h"

struct tg_redis_cmd_s {
    tg_redis_t          *r;
    tg_queue_t           link;        /* in r->pending when linked */
    tg_redis_cb          cb;
    void                *data;
    uint64_t             sent_ns;
    uint64_t             deadline_ms;
    int                  linked;      /* in r's pending list */
    int                  in_hiredis;  /* hiredis will call us back */
    int                  done;        /* callback called or cancelled */

    /* EVALSHA, kept to be sent again as EVAL on NOSCRIPT. */
    tg_redis_script_t   *script;
    int                  retried;
    int                  argc;
    const char         **argv;
    size_t              *argvlen;
};

/* Frees the connection: pending commands are answered (reply NULL) from
 * inside this call, or right after the hiredis callback now running. */
void tg__redis_drop(tg_redis_t *r);

/* The attempt failed or the connection is gone: wait, then retry. */
void tg__redis_lost(tg_redis_t *r);

/* Answers a pending command once; frees it unless hiredis still holds
 * it. */
void tg__redis_finish(tg_redis_cmd_t *c, int status, redisReply *rep);

/* Watches ac's socket on r's loop (redis_ev.c); the poll handle counts
 * in r->handles_open until closed.  Returns 0 or a negative errno. */
int tg__redis_attach(tg_redis_t *r, redisAsyncContext *ac);

/* One of r's handles is closed; the last one after tg_redis_close()
 * completes the close. */
void tg__redis_handle_gone(tg_redis_t *r);

#endif /* TG_STATE_REDIS_INT_H */
