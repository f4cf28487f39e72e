/*
 * Stored responses (the Responses API, openai/responses.h) in Redis.
 *
 * A response created with "store" (the default) is kept under
 * <prefix>resp:<id> as one JSON document: its owner (the digest of the
 * API key, as for sessions), the response object GET /responses/{id}
 * returns, and the conversation so far (the chain's messages, this
 * turn's input, the answer without its thinking), which a request naming
 * it in previous_response_id continues.  The document lives as long as
 * a session (the session TTL).
 *
 * Like sessions, a response belongs to the key that created it: another
 * key gets 404, exactly as for an id that does not exist.  Redis away is
 * a 503 for a chained turn and GET, never an empty history; a request
 * that names no previous response works without Redis (its response is
 * then not stored, and its "thinkgate" object says so).  DELETE removes
 * a stored response, for its owner only too.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "openai/responses.h"
#include "serve/prep_int.h"
#include "util/jdump.h"

static tg_redis_t *tg__resp_redis(tg_request_t *r, uint64_t *ttl_ms);
static void tg__resp_key(tg_redis_t *redis, const char *id, char *key,
    size_t size);
static void tg__resp_owner(tg_request_t *r,
    char owner[TG_SESSION_OWNER_LEN + 1]);
static void tg__resp_owner_raw(const char *auth,
    char owner[TG_SESSION_OWNER_LEN + 1]);
static json_t *tg__resp_doc(tg_redis_t *redis, int status,
    redisReply *reply, tg_request_t *r, const char *id, int *code);
static void tg__resp_on_load(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static void tg__resp_on_get(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static void tg__resp_on_deleted(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static void tg__resp_on_stored(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static void tg__resp_fail(tg_request_t *r, int code, const char *id);


/* The Redis of the request's generation, when connected or not: the
 * caller's command says which. */
static tg_redis_t *
tg__resp_redis(tg_request_t *r, uint64_t *ttl_ms)
{
    tg_session_store_t  *st;

    st = tg_shared_sessions(tg_shared_of(r->engine, r->gen));
    if (st == NULL || st->redis == NULL) {
        return NULL;
    }
    if (ttl_ms != NULL) {
        *ttl_ms = st->conf.ttl_ms;
    }
    return st->redis;
}


static void
tg__resp_key(tg_redis_t *redis, const char *id, char *key, size_t size)
{
    snprintf(key, size, "%sresp:%s", redis->prefix ? redis->prefix : "", id);
}


static void
tg__resp_owner(tg_request_t *r, char owner[TG_SESSION_OWNER_LEN + 1])
{
    const char  *auth;

    auth = r->meta.h_authorization;
    if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0) {
        tg_session_owner(auth + 7, strlen(auth + 7), owner);
        return;
    }
    /* Any other header is its own owner, never that of "Bearer" plus the
     * same text: "Authorization: keyA" cannot read keyA's responses. */
    tg__resp_owner_raw(auth != NULL ? auth : "", owner);
}


static void
tg__resp_owner_raw(const char *auth, char owner[TG_SESSION_OWNER_LEN + 1])
{
    static const char   mark[] = "raw:";
    size_t              n = strlen(auth);
    char               *s;

    s = malloc(sizeof(mark) + n);
    if (s == NULL) {
        /* no owner can match an empty digest */
        owner[0] = '\0';
        return;
    }
    memcpy(s, mark, sizeof(mark) - 1);
    memcpy(s + sizeof(mark) - 1, auth, n);
    tg_session_owner(s, sizeof(mark) - 1 + n, owner);
    free(s);
}


/*
 * The stored document of a GET reply, when it exists and is the asking
 * key's; else NULL with *code the status to answer (404, 503).
 */
static json_t *
tg__resp_doc(tg_redis_t *redis, int status, redisReply *reply,
    tg_request_t *r, const char *id, int *code)
{
    char     owner[TG_SESSION_OWNER_LEN + 1];
    json_t  *doc;

    (void) redis;
    if (status != 0 || reply == NULL) {
        *code = 503;
        return NULL;
    }
    if (reply->type != REDIS_REPLY_STRING) {
        *code = 404;
        return NULL;
    }
    doc = json_loadb(reply->str, reply->len, 0, NULL);
    if (!json_is_object(doc)
        || !json_is_string(json_object_get(doc, "owner"))
        || !json_is_object(json_object_get(doc, "response")))
    {
        tg_log_error("stored response %s is not a response document", id);
        json_decref(doc);
        *code = 404;
        return NULL;
    }
    tg__resp_owner(r, owner);
    if (strcmp(json_string_value(json_object_get(doc, "owner")), owner)
        != 0)
    {
        json_decref(doc);
        *code = 404;            /* another key's: as if it did not exist */
        return NULL;
    }
    return doc;
}


static void
tg__resp_fail(tg_request_t *r, int code, const char *id)
{
    tg_oa_error_t  err;

    if (code == 404) {
        tg_oa_error_set(&err, 404, "invalid_request_error", "not_found",
                        r->oa.responses ? "previous_response_id" : NULL,
                        "No response with id '%s' found for this API key.",
                        id);
    } else {
        tg_oa_error_set(&err, 503, "server_error",
                        "response_store_unavailable", NULL,
                        "response store unavailable: %s",
                        code == -ENOTCONN ? "this gateway has no Redis "
                        "connection (thinkgate_redis)"
                        : "Redis did not answer");
    }
    tg_request_error(r, &err);
}


/* A chained turn: the previous response's conversation is read before
 * the strategy starts. */
int
tg__prep_response_load(tg_prep_t *p, tg_oa_error_t *err)
{
    tg_request_t  *r = p->r;
    tg_redis_t    *redis;
    const char    *argv[2];
    char           key[TG_OA_RESPONSE_ID_MAX + 128];
    int            rc;

    redis = tg__resp_redis(r, NULL);
    if (redis == NULL || !tg_redis_connected(redis)) {
        tg_oa_error_set(err, 503, "server_error",
                        "response_store_unavailable", NULL,
                        "response store unavailable: previous_response_id "
                        "needs Redis (thinkgate_redis), which %s.",
                        redis == NULL ? "this gateway does not have"
                                      : "is not connected");
        return -ENOTCONN;
    }
    tg__resp_key(redis, r->oa.responses->previous, key, sizeof(key));
    argv[0] = "GET";
    argv[1] = key;
    rc = tg_redis_command(redis, 2, argv, NULL, tg__resp_on_load, p,
                          &p->resp_cmd);
    if (rc != 0) {
        tg_oa_error_set(err, 503, "server_error",
                        "response_store_unavailable", NULL,
                        "response store unavailable: %s", strerror(-rc));
        return rc;
    }
    return 0;
}


static void
tg__resp_on_load(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_prep_t     *p = data;
    tg_request_t  *r = p->r;
    json_t        *doc, *msgs;
    int            code = 0;

    p->resp_cmd = NULL;
    if (status == -ECANCELED) {
        return;
    }
    /* The chain counts against the location's body limit as if the
     * client had sent it, as a session's history does. */
    if (status == 0 && reply != NULL && reply->type == REDIS_REPLY_STRING
        && (uint64_t) reply->len + r->body_len > r->max_body)
    {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 413, "invalid_request_error",
                        "response_chain_too_large", "previous_response_id",
                        "The conversation of response '%s' holds %zu bytes; "
                        "with this request that exceeds this endpoint's "
                        "limit of %llu bytes. Start a new conversation.",
                        r->oa.responses->previous, (size_t) reply->len,
                        (unsigned long long) r->max_body);
        tg_request_error(r, &err);
        return;
    }
    doc = tg__resp_doc(redis, status, reply, r, r->oa.responses->previous,
                       &code);
    if (doc == NULL) {
        tg__resp_fail(r, code, r->oa.responses->previous);
        return;
    }
    msgs = json_incref(json_object_get(doc, "messages"));
    json_decref(doc);
    if (!json_is_array(msgs)) {
        json_decref(msgs);
        tg__resp_fail(r, 404, r->oa.responses->previous);
        return;
    }
    if (tg_oa_responses_chain(&r->oa, msgs) != 0) {
        tg__resp_fail(r, 503, r->oa.responses->previous);
        return;
    }
    tg__prep_route(p);
}


/* GET /responses/{id}: the stored object, for its owner only; DELETE:
 * the same read, then the key's removal. */
void
tg_prep_response_get(tg_request_t *r, const char *id, size_t len, int del)
{
    tg_redis_t     *redis;
    tg_oa_error_t   err;
    const char     *argv[2];
    char            key[TG_OA_RESPONSE_ID_MAX + 128];
    char            sid[TG_OA_RESPONSE_ID_MAX];
    tg_prep_t      *p;
    int             rc;

    if (!tg_oa_response_id_valid(id, len)) {
        tg_oa_error_set(&err, 404, "invalid_request_error", "not_found",
                        NULL, "No response with id '%.*s' found.",
                        (int) (len > 80 ? 80 : len), id);
        tg_request_error(r, &err);
        return;
    }
    memcpy(sid, id, len);
    sid[len] = '\0';
    redis = tg__resp_redis(r, NULL);
    if (redis == NULL || !tg_redis_connected(redis)) {
        tg__resp_fail(r, -ENOTCONN, sid);
        return;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg_request_error(r, &err);
        return;
    }
    p->r = r;
    p->resp_delete = del ? 1 : 0;
    memcpy(p->id, sid, len + 1);
    r->prep = p;
    tg__resp_key(redis, sid, key, sizeof(key));
    argv[0] = "GET";
    argv[1] = key;
    rc = tg_redis_command(redis, 2, argv, NULL, tg__resp_on_get, p,
                          &p->resp_cmd);
    if (rc != 0) {
        tg__resp_fail(r, -ENOTCONN, sid);
    }
}


static void
tg__resp_on_get(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_prep_t  *p = data;
    json_t     *doc;
    int         code = 0;

    p->resp_cmd = NULL;
    if (status == -ECANCELED) {
        return;
    }
    doc = tg__resp_doc(redis, status, reply, p->r, p->id, &code);
    if (doc == NULL) {
        tg__resp_fail(p->r, code, p->id);
        return;
    }
    if (p->resp_delete) {
        const char  *argv[2];
        char         key[TG_OA_RESPONSE_ID_MAX + 128];

        json_decref(doc);
        tg__resp_key(redis, p->id, key, sizeof(key));
        argv[0] = "DEL";
        argv[1] = key;
        if (tg_redis_command(redis, 2, argv, NULL, tg__resp_on_deleted, p,
                             &p->resp_cmd) != 0)
        {
            tg__resp_fail(p->r, 503, p->id);
        }
        return;
    }
    (void) tg_request_json(p->r, 200,
                           json_incref(json_object_get(doc, "response")));
    json_decref(doc);
}


/* OpenAI's answer to a deletion: {"id", "object", "deleted"}. */
static void
tg__resp_on_deleted(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_prep_t  *p = data;

    (void) redis;
    (void) reply;
    p->resp_cmd = NULL;
    if (status == -ECANCELED) {
        return;
    }
    if (status != 0) {
        tg__resp_fail(p->r, 503, p->id);
        return;
    }
    (void) tg_request_json(p->r, 200, json_pack("{s:s, s:s, s:b}", "id",
                                                p->id, "object", "response",
                                                "deleted", 1));
}


/*
 * The answered response is stored when it asked to be: cb follows once
 * Redis confirmed it or failed (returns 0), or there is nothing to wait
 * for (returns 1: store false, no Redis, out of memory).  What happened
 * goes into the "thinkgate" object (tg_prep_response_summary).
 */
int
tg_prep_response_store(tg_request_t *r, json_t *resp, const char *answer,
    size_t len, tg_prep_stored_cb cb, void *data)
{
    tg_oa_responses_t  *rs = r->oa.responses;
    tg_redis_t         *redis;
    tg_prep_t          *p;
    json_t             *doc, *msgs;
    const char         *argv[5];
    char                key[TG_OA_RESPONSE_ID_MAX + 128], ttl[24];
    char                owner[TG_SESSION_OWNER_LEN + 1], *text;
    uint64_t            ttl_ms = 0;
    int                 rc;

    if (rs == NULL || !rs->store) {
        return 1;
    }
    if (r->prep == NULL) {
        r->prep = calloc(1, sizeof(*r->prep));
        if (r->prep == NULL) {
            return 1;
        }
        r->prep->r = r;
    }
    p = r->prep;
    p->resp_stored = -1;
    p->resp_store_error = "no Redis on this gateway (thinkgate_redis)";
    redis = tg__resp_redis(r, &ttl_ms);
    if (redis == NULL) {
        return 1;
    }
    p->resp_store_error = "the response store is unavailable (Redis is "
                          "not connected)";
    if (!tg_redis_connected(redis)) {
        return 1;
    }

    tg__resp_owner(r, owner);
    msgs = json_array();
    if (msgs == NULL
        || (rs->history && json_array_extend(msgs, rs->history) != 0)
        || json_array_extend(msgs, rs->input) != 0
        || json_array_append_new(msgs, json_pack("{s:s, s:s#}", "role",
                                                 "assistant", "content",
                                                 answer ? answer : "", len))
           != 0)
    {
        json_decref(msgs);
        p->resp_store_error = "out of memory";
        return 1;
    }
    doc = json_pack("{s:s, s:O, s:o}", "owner", owner, "response", resp,
                    "messages", msgs);
    text = doc ? tg_json_dumps(doc) : NULL;
    json_decref(doc);
    if (text == NULL) {
        p->resp_store_error = "out of memory";
        return 1;
    }
    tg__resp_key(redis, json_string_value(json_object_get(resp, "id")),
                 key, sizeof(key));
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long) ttl_ms);
    argv[0] = "SET";
    argv[1] = key;
    argv[2] = text;
    argv[3] = "PX";
    argv[4] = ttl;
    rc = tg_redis_command(redis, 5, argv, NULL, tg__resp_on_stored, p,
                          &p->resp_cmd);
    free(text);
    if (rc != 0) {
        return 1;
    }
    p->stored_cb = cb;
    p->stored_data = data;
    return 0;
}


static void
tg__resp_on_stored(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_prep_t  *p = data;

    (void) redis;
    (void) reply;
    p->resp_cmd = NULL;
    if (status == -ECANCELED) {
        return;
    }
    if (status == 0) {
        p->resp_stored = 1;
        p->resp_store_error = NULL;
    } else {
        tg_log_warn("request %llu: the response was not stored: %s",
                    (unsigned long long) p->r->id, strerror(-status));
        p->resp_store_error = "Redis did not confirm the write";
    }
    p->stored_cb(p->r, p->stored_data);
}


int
tg_prep_response_summary(const tg_request_t *r, json_t *obj)
{
    const tg_prep_t  *p = r->prep;
    int               rc = 0;

    if (r->oa.responses == NULL || !r->oa.responses->store || p == NULL) {
        return 0;
    }
    rc |= json_object_set_new(obj, "response_stored",
                              json_boolean(p->resp_stored > 0));
    if (p->resp_stored <= 0 && p->resp_store_error != NULL) {
        rc |= json_object_set_new(obj, "response_store_error",
                                  json_string(p->resp_store_error));
    }
    return rc ? -ENOMEM : 0;
}


void
tg__prep_response_close(tg_prep_t *p)
{
    if (p->resp_cmd != NULL) {
        tg_redis_cancel(p->resp_cmd);
        p->resp_cmd = NULL;
    }
}
