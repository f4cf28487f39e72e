/*
 * Redis commands: deadlines on one loop timer, EVALSHA with an EVAL
 * fallback, latency, cancellation (see redis.h for the contract).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "state/redis_int.h"

static int  tg__redis_send(tg_redis_t *r, tg_redis_cmd_t *c);
static void tg__redis_link(tg_redis_t *r, tg_redis_cmd_t *c);
static void tg__redis_unlink(tg_redis_cmd_t *c);
static void tg__redis_arm(tg_redis_t *r);
static void tg__redis_on_cmd_timer(uv_timer_t *t);
static void tg__redis_on_reply(redisAsyncContext *ac, void *reply, void *pd);


int
tg_redis_command(tg_redis_t *r, int argc, const char **argv,
    const size_t *argvlen, tg_redis_cb cb, void *data,
    tg_redis_cmd_t **handle)
{
    tg_redis_cmd_t  *c;
    int              rc;

    if (cb == NULL || argc <= 0 || argv == NULL) {
        return -EINVAL;
    }
    if (r->state != TG__REDIS_READY || r->ac == NULL) {
        return -ENOTCONN;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        return -ENOMEM;
    }
    c->r = r;
    c->cb = cb;
    c->data = data;
    c->argc = argc;
    c->argv = argv;
    c->argvlen = (size_t *) argvlen;

    rc = tg__redis_send(r, c);
    /* Plain commands are formatted by hiredis at once; nothing of the
     * caller's argv is kept. */
    c->argv = NULL;
    c->argvlen = NULL;
    if (rc != 0) {
        free(c);
        return rc;
    }
    if (handle != NULL) {
        *handle = c;
    }
    return 0;
}


int
tg_redis_script_call(tg_redis_t *r, tg_redis_script_t *s, int nkeys,
    const char *const *keys, int nargs, const char *const *args,
    tg_redis_cb cb, void *data, tg_redis_cmd_t **handle)
{
    tg_redis_cmd_t  *c;
    size_t           size, len;
    char            *p;
    int              i, argc, rc;

    if (cb == NULL || s == NULL || s->body == NULL || nkeys < 0
        || nargs < 0 || nkeys > 100000 || nargs > 100000)
    {
        return -EINVAL;
    }
    if (r->state != TG__REDIS_READY || r->ac == NULL) {
        return -ENOTCONN;
    }

    /* One block: the command, argv and argvlen arrays, then copies of
     * every key and argument, kept for a possible EVAL. */
    argc = 3 + nkeys + nargs;
    size = sizeof(*c) + (size_t) argc * (sizeof(char *) + sizeof(size_t))
           + 16;
    for (i = 0; i < nkeys; i++) {
        size += strlen(keys[i]) + 1;
    }
    for (i = 0; i < nargs; i++) {
        size += strlen(args[i]) + 1;
    }
    c = calloc(1, size);
    if (c == NULL) {
        return -ENOMEM;
    }
    c->r = r;
    c->cb = cb;
    c->data = data;
    c->script = s;
    c->argc = argc;
    c->argv = (const char **) (c + 1);
    c->argvlen = (size_t *) (c->argv + argc);
    p = (char *) (c->argvlen + argc);

    if (s->loaded_on == r && s->loaded_conn == r->conn_id) {
        c->argv[0] = "EVALSHA";
        c->argv[1] = s->sha;
    } else {
        c->argv[0] = "EVAL";
        c->argv[1] = s->body;
        c->retried = 1;
    }
    c->argv[2] = p;
    p += snprintf(p, 16, "%d", nkeys) + 1;
    for (i = 0; i < nkeys + nargs; i++) {
        const char  *src = (i < nkeys) ? keys[i] : args[i - nkeys];

        len = strlen(src);
        memcpy(p, src, len + 1);
        c->argv[3 + i] = p;
        p += len + 1;
    }
    c->argvlen[0] = strlen(c->argv[0]);
    c->argvlen[1] = c->retried ? s->len : 40;
    for (i = 2; i < argc; i++) {
        c->argvlen[i] = strlen(c->argv[i]);
    }

    rc = tg__redis_send(r, c);
    if (rc != 0) {
        free(c);
        return rc;
    }
    if (c->retried) {
        s->loaded_on = r;
        s->loaded_conn = r->conn_id;
    }
    if (handle != NULL) {
        *handle = c;
    }
    return 0;
}


static int
tg__redis_send(tg_redis_t *r, tg_redis_cmd_t *c)
{
    if (r->ac == NULL
        || redisAsyncCommandArgv(r->ac, tg__redis_on_reply, c, c->argc,
                                 c->argv, c->argvlen) != REDIS_OK)
    {
        return -ENOTCONN;
    }
    c->in_hiredis = 1;
    if (!c->linked) {
        r->stats.commands++;
        tg__redis_link(r, c);
    }
    return 0;
}


static void
tg__redis_link(tg_redis_t *r, tg_redis_cmd_t *c)
{
    c->sent_ns = uv_hrtime();
    c->deadline_ms = uv_now(r->loop) + r->command_timeout_ms;
    c->linked = 1;
    tg_queue_insert_tail(&r->pending, &c->link);
    if (tg_queue_head(&r->pending) == &c->link) {
        tg__redis_arm(r);
    }
}


static void
tg__redis_unlink(tg_redis_cmd_t *c)
{
    tg_redis_t  *r = c->r;
    int          was_head;

    if (!c->linked) {
        return;
    }
    was_head = (tg_queue_head(&r->pending) == &c->link);
    tg_queue_remove(&c->link);
    c->linked = 0;
    if (was_head) {
        tg__redis_arm(r);
    }
}


/* The timer follows the head of the list: all commands share one
 * timeout, so the head always has the earliest deadline. */
static void
tg__redis_arm(tg_redis_t *r)
{
    tg_redis_cmd_t  *head;
    uint64_t         now;

    if (r->state == TG__REDIS_CLOSING || r->state == TG__REDIS_CLOSED) {
        return;
    }
    if (tg_queue_empty(&r->pending)) {
        uv_timer_stop(&r->cmd_timer);
        return;
    }
    head = tg_queue_data(tg_queue_head(&r->pending), tg_redis_cmd_t, link);
    now = uv_now(r->loop);
    if (uv_timer_start(&r->cmd_timer, tg__redis_on_cmd_timer,
                       head->deadline_ms > now
                       ? head->deadline_ms - now : 0, 0) != 0)
    {
        tg_log_error("redis: cannot arm the command timer");
    }
}


static void
tg__redis_on_cmd_timer(uv_timer_t *t)
{
    tg_redis_t      *r = t->data;
    tg_redis_cmd_t  *c;
    uint64_t         now = uv_now(r->loop);
    int              n = 0;

    while (!tg_queue_empty(&r->pending)) {
        c = tg_queue_data(tg_queue_head(&r->pending), tg_redis_cmd_t, link);
        if (c->deadline_ms > now) {
            break;
        }
        r->stats.timeouts++;
        n++;
        tg__redis_finish(c, -ETIMEDOUT, NULL);
    }
    if (n > 0 && r->state == TG__REDIS_READY) {
        snprintf(r->error, sizeof(r->error),
                 "redis: no reply within %llu ms",
                 (unsigned long long) r->command_timeout_ms);
        tg__redis_drop(r);
        tg__redis_lost(r);
    }
}


static void
tg__redis_on_reply(redisAsyncContext *ac, void *reply, void *pd)
{
    tg_redis_cmd_t  *c = pd;
    tg_redis_t      *r = c->r;
    redisReply      *rep = reply;
    int64_t          us, ewma;

    c->in_hiredis = 0;
    if (c->done) {
        free(c);    /* timed out or cancelled: a late reply is dropped */
        return;
    }
    if (rep == NULL) {
        tg__redis_finish(c, r->state == TG__REDIS_CLOSING ? -ECANCELED
                                                          : -ECONNRESET,
                         NULL);
        return;
    }

    us = (int64_t) ((uv_hrtime() - c->sent_ns) / 1000);
    ewma = (int64_t) r->stats.latency_us;
    r->stats.latency_us = (uint64_t) (ewma == 0 ? us : ewma + (us - ewma) / 8);

    if (rep->type == REDIS_REPLY_ERROR) {
        if (c->script != NULL && !c->retried && rep->str != NULL
            && strncmp(rep->str, "NOSCRIPT", 8) == 0)
        {
            /* EVAL runs the script and caches it, so the next EVALSHA
             * finds it; the deadline stays the first one. */
            c->retried = 1;
            c->argv[0] = "EVAL";
            c->argvlen[0] = 4;
            c->argv[1] = c->script->body;
            c->argvlen[1] = c->script->len;
            if (r->ac == ac && tg__redis_send(r, c) == 0) {
                c->script->loaded_on = r;
                c->script->loaded_conn = r->conn_id;
                return;
            }
            tg__redis_finish(c, -ECONNRESET, NULL);
            return;
        }
        tg__redis_finish(c, -EIO, rep);
        return;
    }
    tg__redis_finish(c, 0, rep);
}


void
tg__redis_finish(tg_redis_cmd_t *c, int status, redisReply *rep)
{
    tg_redis_t  *r = c->r;

    tg__redis_unlink(c);
    c->done = 1;
    if (status != 0) {
        r->stats.errors++;
    }
    if (c->cb != NULL) {
        c->cb(r, status, rep, c->data);
    }
    if (!c->in_hiredis) {
        free(c);
    }
}


void
tg_redis_cancel(tg_redis_cmd_t *c)
{
    if (c == NULL || c->done) {
        return;
    }
    c->cb = NULL;
    c->done = 1;
    tg__redis_unlink(c);
    if (!c->in_hiredis) {
        free(c);
    }
}

