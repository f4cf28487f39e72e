/*
 * A session script call: its keys and arguments kept on the op, so that
 * a write (append, unlock) whose reply was lost is sent again until its
 * deadline; an append that fails for good becomes the unlock of its
 * token.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "state/session_int.h"

static int tg__session_send(tg_session_op_t *op);
static int tg__session_retry(tg_session_op_t *op, int status);
static void tg__session_on_retry(uv_timer_t *t);
static void tg__session_timer_closed(uv_handle_t *h);
static void tg__session_on_reply(tg_redis_t *r, int status,
    redisReply *reply, void *data);
static void tg__session_unlock_after(tg_session_op_t *op, int unknown);
static void tg__session_settled(tg_session_op_t *op, int status,
    redisReply *reply);
static void tg__session_unlink(tg_session_op_t *op);
static int tg__session_status(tg_session_store_t *st, int status,
    redisReply *reply);


/* The session's keys share a hash tag, {id}, so that a cluster keeps
 * them on one node as a script needs.  The op keeps copies of its keys
 * and arguments: a write may be sent again. */
int
tg__session_call(tg_session_store_t *st, int kind, const char *id,
    tg_redis_script_t *s, int nkeys, int nargs, const char *const *args,
    tg_session_op_t **out)
{
    tg_session_op_t  *op;
    char             *buf, *a;
    size_t            klen, alen = 0;
    int               i, rc;

    if (id == NULL || !tg_session_id_valid(id, strlen(id))) {
        return -EINVAL;
    }
    /* A write waits for a reconnection (tg__session_retry); a read or
     * a heartbeat answers at once. */
    if (st->redis == NULL
        || ((kind == TG__SESSION_GET || kind == TG__SESSION_REFRESH)
            && !tg_redis_connected(st->redis)))
    {
        st->stats.unavailable++;
        return -ENOTCONN;
    }
    for (i = 0; i < nargs; i++) {
        alen += strlen(args[i]) + 1;
    }
    klen = st->redis->prefix_len + sizeof("sess:{}:turns")
           + TG_SESSION_ID_MAX;
    op = calloc(1, sizeof(*op) + 3 * klen + alen);
    if (op == NULL) {
        return -ENOMEM;
    }
    tg_queue_init(&op->link);
    buf = (char *) (op + 1);
    snprintf(buf, klen, "%ssess:{%s}", st->redis->prefix, id);
    snprintf(buf + klen, klen, "%ssess:{%s}:turns", st->redis->prefix, id);
    snprintf(buf + 2 * klen, klen, "%ssess:{%s}:lock", st->redis->prefix,
             id);
    op->keys[0] = buf;
    op->keys[1] = buf + klen;
    op->keys[2] = buf + 2 * klen;
    a = buf + 3 * klen;
    for (i = 0; i < nargs; i++) {
        size_t  n = strlen(args[i]) + 1;

        memcpy(a, args[i], n);
        op->args[i] = a;
        a += n;
    }

    op->st = st;
    op->kind = kind;
    op->script = s;
    op->nkeys = nkeys;
    op->nargs = nargs;
    op->deadline_ms = uv_now(st->redis->loop) + st->conf.write_ms;
    rc = tg__session_send(op);
    if (rc != 0 && tg__session_retry(op, rc)) {
        rc = 0;
    }
    if (rc != 0) {
        if (op->timer != NULL) {
            uv_close((uv_handle_t *) op->timer, tg__session_timer_closed);
        }
        free(op);
        if (rc == -ENOTCONN) {
            st->stats.unavailable++;
        }
        return rc;
    }
    tg_queue_insert_head(&st->ops, &op->link);
    *out = op;
    return 0;
}


static int
tg__session_send(tg_session_op_t *op)
{
    return tg_redis_script_call(op->st->redis, op->script, op->nkeys,
                                op->nkeys == 1 ? op->keys + 2 : op->keys,
                                op->nargs, op->args, tg__session_on_reply,
                                op, &op->cmd);
}


/*
 * A write whose reply was lost (timeout, connection reset, Redis away)
 * is sent again every TG__SESSION_RETRY_MS until its deadline: Redis may
 * only be stalled (CLIENT PAUSE, a slow fork) or restarting.  Both
 * scripts are idempotent for one token.  Returns 1 when a retry is
 * scheduled, 0 when the write has failed for good.
 */
static int
tg__session_retry(tg_session_op_t *op, int status)
{
    uv_loop_t  *loop = op->st->redis->loop;

    if (op->kind == TG__SESSION_GET || op->kind == TG__SESSION_REFRESH
        || (status != -ETIMEDOUT && status != -ECONNRESET
            && status != -ENOTCONN)
        || uv_now(loop) + TG__SESSION_RETRY_MS > op->deadline_ms)
    {
        return 0;
    }
    if (op->timer == NULL) {
        op->timer = malloc(sizeof(*op->timer));
        if (op->timer == NULL) {
            return 0;
        }
        if (uv_timer_init(loop, op->timer) != 0) {
            free(op->timer);
            op->timer = NULL;
            return 0;
        }
        op->timer->data = op;
    }
    if (uv_timer_start(op->timer, tg__session_on_retry,
                       TG__SESSION_RETRY_MS, 0) != 0)
    {
        return 0;
    }
    op->st->stats.retries++;
    return 1;
}


static void
tg__session_on_retry(uv_timer_t *t)
{
    tg_session_op_t  *op = t->data;
    int               rc;

    rc = tg__session_send(op);
    if (rc == 0) {
        return;
    }
    if (tg__session_retry(op, rc)) {
        return;
    }
    tg__session_on_reply(op->st->redis, rc, NULL, op);
}


static void
tg__session_timer_closed(uv_handle_t *h)
{
    free(h);
}


/* Unlinks and frees; the timer's memory goes in its close callback. */
void
tg__session_free(tg_session_op_t *op)
{
    tg_redis_cancel(op->cmd);
    op->cmd = NULL;
    tg__session_unlink(op);
    if (op->timer != NULL) {
        uv_close((uv_handle_t *) op->timer, tg__session_timer_closed);
    }
    free(op);
}


static void
tg__session_on_reply(tg_redis_t *r, int status, redisReply *reply,
    void *data)
{
    tg_session_op_t  *op = data;

    (void) r;
    op->cmd = NULL;
    if (op->kind == TG__SESSION_APPEND
        && (status == -ETIMEDOUT || status == -ECONNRESET))
    {
        /* This copy was sent (or may have been) and Redis may have run
         * it: until a retry's reply says, the outcome is unknown. */
        op->unsure = status;
    }
    if (status != 0 && tg__session_retry(op, status)) {
        return;
    }
    tg__session_unlink(op);
    status = tg__session_status(op->st, status, reply);
    if (op->kind == TG__SESSION_GET) {
        tg__session_got(op, status, reply);
    } else if (op->kind == TG__SESSION_APPEND) {
        if (status == -ENOTCONN && op->unsure != 0) {
            status = op->unsure;    /* the last copy was never sent, an
                                       earlier one was */
        }
        if (status == -ETIMEDOUT || status == -ECONNRESET) {
            op->st->stats.unknown++;
        }
        tg__session_appended(op, status, reply);
        if (status != 0 && status != -EACCES) {
            /* Not stored, or not known to be; the lock must not outlive
             * the request either way. */
            tg__session_unlock_after(op, status == -ETIMEDOUT
                                         || status == -ECONNRESET);
            return;
        }
    } else if (op->kind == TG__SESSION_SETTLE) {
        tg__session_settled(op, status, reply);
    } else if (op->kind == TG__SESSION_REFRESH) {
        if (status == 0 && reply != NULL
            && reply->type == REDIS_REPLY_INTEGER && reply->integer == 0)
        {
            op->st->stats.locks_lost++;
            tg_log_warn("session: the lock of %s was gone when its holder "
                        "refreshed it (expired during a stall?): another "
                        "request may use the session meanwhile",
                        op->keys[2]);
        } else if (status != 0) {
            tg_log_debug("session: a lock heartbeat failed (%s); the next "
                         "one retries", strerror(-status));
        }
    } else if (status != 0) {
        tg_log_warn("session: a lock could not be released (%s); it "
                    "expires after its lease", strerror(-status));
    }
    tg__session_free(op);
}


/* The append failed for good: the same op, relinked, becomes the unlock
 * of its token, retried for as long as a lease could still block the
 * session (at most a minute).  When its outcome is unknown it becomes
 * the settling of its token instead (which also unlocks), retried for a
 * minute: it finds whether the turn is stored and fences it if not. */
static void
tg__session_unlock_after(tg_session_op_t *op, int unknown)
{
    tg_session_store_t  *st = op->st;
    uint64_t             bound;

    st->stats.lost++;
    op->append_cb = NULL;
    op->data = NULL;
    if (op->args[1] == NULL || op->args[1][0] == '\0') {
        tg__session_free(op);
        return;
    }
    if (unknown) {
        /* append args: owner, token, ttl_ms, ...; settle: token, ttl_ms */
        op->kind = TG__SESSION_SETTLE;
        op->script = &st->settle_script;
        op->nkeys = 3;
        op->nargs = 2;
        op->args[0] = op->args[1];
        op->args[1] = op->args[2];
        bound = 60000;
    } else {
        op->kind = TG__SESSION_UNLOCK;
        op->script = &st->unlock_script;
        op->nkeys = 1;
        op->nargs = 1;
        op->args[0] = op->args[1];
        bound = st->conf.lease_ms < 60000 ? st->conf.lease_ms : 60000;
    }
    op->unsure = 0;
    op->deadline_ms = uv_now(st->redis->loop) + bound;
    tg_queue_insert_head(&st->ops, &op->link);
    if (tg__session_send(op) != 0 && !tg__session_retry(op, -ENOTCONN)) {
        tg__session_free(op);
    }
}


/* What the settling found: logged, so that an operator can tell a
 * client whose turn was reported unknown what became of it. */
static void
tg__session_settled(tg_session_op_t *op, int status, redisReply *reply)
{
    tg_session_store_t  *st = op->st;

    if (status == 0
        && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
            || reply->element[0]->type != REDIS_REPLY_INTEGER))
    {
        status = -EIO;
    }
    if (status != 0) {
        tg_log_warn("session %s: the turn of request token %s could not "
                    "be settled (%s): its outcome stays unknown; the lock "
                    "expires after its lease", op->keys[0], op->args[0],
                    strerror(-status));
        return;
    }
    if (reply->element[0]->integer == 1) {
        st->stats.settled_stored++;
        tg_log_info("session %s: the turn of request token %s, reported "
                    "as unknown, is stored", op->keys[0], op->args[0]);
    } else {
        st->stats.settled_lost++;
        tg_log_warn("session %s: the turn of request token %s, reported "
                    "as unknown, is not stored (fenced: a late copy will "
                    "be refused)", op->keys[0], op->args[0]);
    }
}


static void
tg__session_unlink(tg_session_op_t *op)
{
    tg_queue_remove(&op->link);
}


/* Script errors that are answers, not failures, get their own codes. */
static int
tg__session_status(tg_session_store_t *st, int status, redisReply *reply)
{
    if (status == -EIO && reply != NULL && reply->str != NULL) {
        if (strncmp(reply->str, "NOTOWNER ", 9) == 0) {
            st->stats.not_owner++;
            return -EACCES;
        }
        if (strncmp(reply->str, "FENCED ", 7) == 0) {
            return -ESTALE;     /* settled as not stored */
        }
        if (strncmp(reply->str, "SESSIONBUSY ", 12) == 0) {
            st->stats.busy++;
            return -EBUSY;
        }
    }
    if (status != 0) {
        st->stats.unavailable++;
    }
    return status;
}
