/*
 * Sessions over Redis: ids, owners, and the three session scripts.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "state/session_int.h"
#include "state/sha1.h"

static uint64_t tg__session_wall_ms(void);


int
tg_session_store_init(tg_session_store_t *st, tg_redis_t *redis,
    const char *lua_dir, const tg_session_conf_t *conf, char *err,
    size_t errlen)
{
    void  *data = st->data;
    int    rc;

    memset(st, 0, sizeof(*st));
    tg_queue_init(&st->ops);
    st->data = data;
    st->redis = redis;
    if (conf != NULL) {
        st->conf = *conf;
    }
    if (st->conf.ttl_ms == 0) {
        st->conf.ttl_ms = 86400000;
    }
    if (st->conf.lease_ms == 0) {
        st->conf.lease_ms = TG_SESSION_LEASE_MS;
    }
    if (st->conf.max_turns == 0) {
        st->conf.max_turns = 64;
    }
    if (st->conf.write_ms == 0) {
        st->conf.write_ms = 5000;
    }

    /* Lock tokens must differ between engines sharing one Redis. */
    if (getrandom(&st->instance, sizeof(st->instance), GRND_NONBLOCK)
        != (ssize_t) sizeof(st->instance))
    {
        st->instance = ((uint64_t) getpid() << 32)
                       ^ (uint64_t) time(NULL) ^ (uintptr_t) st;
    }

    if (redis == NULL) {
        return 0;
    }
    rc = tg_redis_script_load(&st->get_script, lua_dir, "session_get.lua",
                              err, errlen);
    if (rc == 0) {
        rc = tg_redis_script_load(&st->append_script, lua_dir,
                                  "session_append.lua", err, errlen);
    }
    if (rc == 0) {
        rc = tg_redis_script_load(&st->unlock_script, lua_dir,
                                  "session_unlock.lua", err, errlen);
    }
    if (rc == 0) {
        rc = tg_redis_script_load(&st->refresh_script, lua_dir,
                                  "session_refresh.lua", err, errlen);
    }
    if (rc == 0) {
        rc = tg_redis_script_load(&st->settle_script, lua_dir,
                                  "session_settle.lua", err, errlen);
    }
    if (rc != 0) {
        tg_redis_script_free(&st->get_script);
        tg_redis_script_free(&st->append_script);
        tg_redis_script_free(&st->unlock_script);
        tg_redis_script_free(&st->refresh_script);
        tg_redis_script_free(&st->settle_script);
    }
    return rc;
}


void
tg_session_store_close(tg_session_store_t *st)
{
    tg_session_op_t      *op;
    tg_session_get_cb     get_cb;
    tg_session_append_cb  append_cb;
    void                 *data;

    while (!tg_queue_empty(&st->ops)) {
        op = tg_queue_data(tg_queue_head(&st->ops), tg_session_op_t, link);
        get_cb = op->get_cb;
        append_cb = op->append_cb;
        data = op->data;
        tg__session_free(op);
        if (get_cb != NULL) {
            get_cb(st, -ECANCELED, NULL, data);
        } else if (append_cb != NULL) {
            append_cb(st, -ECANCELED, 0, 0, data);
        }
    }
    tg_redis_script_free(&st->get_script);
    tg_redis_script_free(&st->append_script);
    tg_redis_script_free(&st->unlock_script);
    tg_redis_script_free(&st->refresh_script);
    tg_redis_script_free(&st->settle_script);
}


int
tg_session_id_valid(const char *id, size_t len)
{
    size_t  i;

    if (id == NULL || len == 0 || len > TG_SESSION_ID_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char  c = id[i];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }
    return 1;
}


void
tg_session_owner(const char *bearer, size_t len,
    char owner[TG_SESSION_OWNER_LEN + 1])
{
    /* Only a digest is stored: reading Redis does not reveal API keys. */
    tg_sha1_hex(bearer ? bearer : "", bearer ? len : 0, owner);
}


void
tg_session_token(tg_session_store_t *st, char token[TG_SESSION_TOKEN_MAX])
{
    snprintf(token, TG_SESSION_TOKEN_MAX, "%016llx-%llu",
             (unsigned long long) st->instance,
             (unsigned long long) ++st->next_token);
}


static uint64_t
tg__session_wall_ms(void)
{
    struct timespec  ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


int
tg_session_get(tg_session_store_t *st, const char *id, const char *owner,
    const char *token, tg_session_get_cb cb, void *data,
    tg_session_op_t **handle)
{
    tg_session_op_t  *op;
    const char       *args[4];
    char              lease[24], ttl[24];
    int               rc;

    if (cb == NULL || owner == NULL) {
        return -EINVAL;
    }
    snprintf(lease, sizeof(lease), "%llu",
             (unsigned long long) st->conf.lease_ms);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long) st->conf.ttl_ms);
    args[0] = owner;
    args[1] = token ? token : "";
    args[2] = lease;
    args[3] = ttl;
    rc = tg__session_call(st, TG__SESSION_GET, id, &st->get_script, 3, 4,
                          args, &op);
    if (rc != 0) {
        return rc;
    }
    st->stats.gets++;
    op->get_cb = cb;
    op->data = data;
    if (handle != NULL) {
        *handle = op;
    }
    return 0;
}


int
tg_session_append(tg_session_store_t *st, const char *id, const char *owner,
    const char *token, const char *backend, const char *messages_json,
    tg_session_append_cb cb, void *data, tg_session_op_t **handle)
{
    tg_session_op_t  *op;
    const char       *args[7], *b, *e;
    char              ttl[24], cap[16], now[24], *turn;
    int               rc;

    if (owner == NULL || owner[0] == '\0' || messages_json == NULL) {
        return -EINVAL;
    }
    /* Stored without its brackets, so that turns join into one array
     * by commas alone. */
    b = messages_json;
    e = messages_json + strlen(messages_json);
    while (b < e && (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r')) {
        b++;
    }
    while (e > b && (e[-1] == ' ' || e[-1] == '\n' || e[-1] == '\t'
                     || e[-1] == '\r'))
    {
        e--;
    }
    if (e - b < 2 || *b != '[' || e[-1] != ']') {
        return -EINVAL;
    }
    b++;
    e--;
    while (b < e && (*b == ' ' || *b == '\n' || *b == '\t' || *b == '\r')) {
        b++;
    }
    if (b == e) {
        return -EINVAL;     /* an empty turn */
    }
    turn = strndup(b, (size_t) (e - b));
    if (turn == NULL) {
        return -ENOMEM;
    }

    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long) st->conf.ttl_ms);
    snprintf(cap, sizeof(cap), "%u", st->conf.max_turns);
    snprintf(now, sizeof(now), "%llu",
             (unsigned long long) tg__session_wall_ms());
    args[0] = owner;
    args[1] = token ? token : "";
    args[2] = ttl;
    args[3] = cap;
    args[4] = backend ? backend : "";
    args[5] = now;
    args[6] = turn;
    rc = tg__session_call(st, TG__SESSION_APPEND, id, &st->append_script, 3,
                          7, args, &op);
    free(turn);
    if (rc != 0) {
        return rc;
    }
    st->stats.appends++;
    op->append_cb = cb;
    op->data = data;
    if (handle != NULL) {
        *handle = op;
    }
    return 0;
}


int
tg_session_unlock(tg_session_store_t *st, const char *id, const char *token)
{
    tg_session_op_t  *op;
    const char       *args[1];
    int               rc;

    if (token == NULL || token[0] == '\0') {
        return -EINVAL;
    }
    args[0] = token;
    rc = tg__session_call(st, TG__SESSION_UNLOCK, id, &st->unlock_script,
                          1, 1, args, &op);
    return rc;
}


int
tg_session_refresh(tg_session_store_t *st, const char *id, const char *token)
{
    tg_session_op_t  *op;
    const char       *args[2];
    char              lease[24];
    int               rc;

    if (token == NULL || token[0] == '\0') {
        return -EINVAL;
    }
    snprintf(lease, sizeof(lease), "%llu",
             (unsigned long long) st->conf.lease_ms);
    args[0] = token;
    args[1] = lease;
    rc = tg__session_call(st, TG__SESSION_REFRESH, id, &st->refresh_script,
                          1, 2, args, &op);
    if (rc == 0) {
        st->stats.refreshes++;
    }
    return rc;
}


void
tg_session_cancel(tg_session_op_t *op)
{
    if (op == NULL) {
        return;
    }
    if (op->kind != TG__SESSION_GET) {
        /* A write goes on (the lock must be released either way); only
         * its caller is gone. */
        op->append_cb = NULL;
        op->data = NULL;
        return;
    }
    tg__session_free(op);
}


void
tg__session_got(tg_session_op_t *op, int status, redisReply *reply)
{
    tg_session_t   s;
    redisReply    *e;
    size_t         i, size = 3;
    char          *json, *p;

    if (status == 0
        && (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3
            || reply->element[0]->type != REDIS_REPLY_INTEGER
            || reply->element[1]->type != REDIS_REPLY_STRING
            || reply->element[2]->type != REDIS_REPLY_INTEGER))
    {
        op->st->stats.unavailable++;
        status = -EIO;
    }
    if (status != 0) {
        op->get_cb(op->st, status, NULL, op->data);
        return;
    }

    for (i = 3; i < reply->elements; i++) {
        e = reply->element[i];
        if (e->type != REDIS_REPLY_STRING) {
            op->get_cb(op->st, -EIO, NULL, op->data);
            return;
        }
        size += e->len + 1;
    }
    json = malloc(size);
    if (json == NULL) {
        op->get_cb(op->st, -ENOMEM, NULL, op->data);
        return;
    }
    p = json;
    *p++ = '[';
    for (i = 3; i < reply->elements; i++) {
        if (i > 3) {
            *p++ = ',';
        }
        memcpy(p, reply->element[i]->str, reply->element[i]->len);
        p += reply->element[i]->len;
    }
    *p++ = ']';
    *p = '\0';

    s.found = (int) reply->element[0]->integer;
    s.backend = reply->element[1]->str;
    s.history = json;
    s.history_len = (size_t) (p - json);
    s.turns = (unsigned) (reply->elements - 3);
    s.dropped = (uint64_t) reply->element[2]->integer;
    op->get_cb(op->st, 0, &s, op->data);
    free(json);
}


void
tg__session_appended(tg_session_op_t *op, int status, redisReply *reply)
{
    unsigned  turns = 0, dropped = 0;

    if (status == 0
        && (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
            || reply->element[0]->type != REDIS_REPLY_INTEGER
            || reply->element[1]->type != REDIS_REPLY_INTEGER))
    {
        op->st->stats.unavailable++;
        status = -EIO;
    }
    if (status == 0) {
        turns = (unsigned) reply->element[0]->integer;
        dropped = (unsigned) reply->element[1]->integer;
    }
    if (op->append_cb != NULL) {
        op->append_cb(op->st, status, turns, dropped, op->data);
    }
}
