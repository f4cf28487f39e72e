/*
 * The plugin host's kv_get / kv_set: plain GET and SET on the engine's
 * Redis link for the request's configuration (core/shared.h), under the
 * configured prefix + "plugin:<plugin name>:" + key, so that plugins
 * cannot read or clobber sessions, prefix indexes or each other.
 *
 * Redis answers through the link's own deadline (state/redis.h): a
 * stalled server gives the plugin -ETIMEDOUT, never a request that waits
 * forever.  A request that ends first cancels its pending calls; their
 * replies are dropped by the link.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shared.h"
#include "strategy/host.h"

struct tg_host_kv_s {
    tg_host_req_t    *hr;
    tg_queue_t        link;         /* in hr->kvs */
    tg_redis_cmd_t   *cmd;
    tg_kv_cb          cb;
    void             *data;
    int               get;
};

static int tg__host_kv_check(tg_host_req_t *hr, int get, const char *key,
    const char *v, size_t len, tg_kv_cb cb);
static tg_shared_t *tg__host_kv_link(tg_host_req_t *hr, int *rc);
static void tg__host_kv_reply(tg_redis_t *r, int status, redisReply *reply,
    void *data);


static int
tg__host_kv_key_valid(const char *key)
{
    size_t  i;

    for (i = 0; key[i] != '\0'; i++) {
        if (i >= TG_KV_MAX_KEY
            || strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                      "0123456789_.:-", key[i]) == NULL)
        {
            return 0;
        }
    }
    return i > 0;
}


/* The checks of a call's arguments: 0 or a negative errno with
 * last_error set. */
static int
tg__host_kv_check(tg_host_req_t *hr, int get, const char *key,
    const char *v, size_t len, tg_kv_cb cb)
{
    if (!tg__host_usable(hr)) {
        tg__host_set_error(hr, "the request is over");
        return -EINVAL;
    }
    if (cb == NULL) {
        tg__host_set_error(hr, "kv: a callback is required");
        return -EINVAL;
    }
    if (key == NULL || !tg__host_kv_key_valid(key)) {
        tg__host_set_error(hr, "kv: key \"%.64s%s\" is not 1 to %d bytes "
                           "of [A-Za-z0-9_.:-]", key ? key : "(null)",
                           key && strlen(key) > 64 ? "..." : "",
                           TG_KV_MAX_KEY);
        return -EINVAL;
    }
    if (!get && v == NULL && len > 0) {
        tg__host_set_error(hr, "kv_set: NULL value of %zu bytes", len);
        return -EINVAL;
    }
    if (!get && len > TG_KV_MAX_VALUE) {
        tg__host_set_error(hr, "kv_set: a value of %zu bytes is over the "
                           "%d-byte limit", len, TG_KV_MAX_VALUE);
        return -EMSGSIZE;
    }
    return 0;
}


/* The request's Redis link, when it is configured and up and the
 * request has room for one more pending call; NULL with *rc a negative
 * errno and last_error set otherwise. */
static tg_shared_t *
tg__host_kv_link(tg_host_req_t *hr, int *rc)
{
    tg_shared_t  *link;

    link = tg_shared_of(hr->r->engine, hr->r->gen);
    if (link == NULL || !link->has_redis) {
        tg__host_set_error(hr, "kv: no Redis is configured "
                           "(thinkgate_redis)");
        *rc = -ENOTCONN;
        return NULL;
    }
    if (!tg_redis_connected(&link->redis)) {
        tg__host_set_error(hr, "kv: Redis is down: %s",
                           link->redis.error[0] ? link->redis.error
                                                : "not connected yet");
        *rc = -ENOTCONN;
        return NULL;
    }
    if (hr->nkvs >= TG_KV_MAX_PENDING) {
        tg__host_set_error(hr, "kv: %d calls of this request are still "
                           "waiting for Redis", TG_KV_MAX_PENDING);
        *rc = -EBUSY;
        return NULL;
    }
    return link;
}


/* The checks both calls share, then the command: argv[1] is the key,
 * built here.  0 or a negative errno with last_error set. */
static int
tg__host_kv_send(tg_plugin_req_t *req, int get, const char *key, const char *v,
    size_t len, uint64_t ttl_ms, tg_kv_cb cb, void *data)
{
    tg_host_req_t  *hr = tg__host_of(req);
    tg_shared_t    *link;
    tg_host_kv_t   *kv = NULL;
    const char     *argv[5];
    size_t          argvlen[5], n;
    char           *full = NULL, ttl[24];
    int             argc, rc;

    if (hr == NULL) {
        return -EINVAL;
    }
    rc = tg__host_kv_check(hr, get, key, v, len, cb);
    if (rc != 0) {
        return rc;
    }
    link = tg__host_kv_link(hr, &rc);
    if (link == NULL) {
        return rc;
    }

    n = link->redis.prefix_len + sizeof("plugin:") + strlen(hr->strategy)
        + 1 + strlen(key);
    kv = calloc(1, sizeof(*kv));
    full = malloc(n);
    if (kv == NULL || full == NULL) {
        tg__host_set_error(hr, "out of memory");
        rc = -ENOMEM;
        goto failed;
    }
    tg_queue_init(&kv->link);
    snprintf(full, n, "%splugin:%s:%s", link->redis.prefix, hr->strategy,
             key);

    argv[0] = get ? "GET" : "SET";
    argv[1] = full;
    argv[2] = v ? v : "";
    argvlen[0] = strlen(argv[0]);
    argvlen[1] = strlen(full);
    argvlen[2] = len;
    argc = get ? 2 : 3;
    if (!get && ttl_ms > 0) {
        snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long) ttl_ms);
        argv[3] = "PX";
        argv[4] = ttl;
        argvlen[3] = 2;
        argvlen[4] = strlen(ttl);
        argc = 5;
    }

    kv->hr = hr;
    kv->cb = cb;
    kv->data = data;
    kv->get = get;
    rc = tg_redis_command(&link->redis, argc, argv, argvlen,
                          tg__host_kv_reply, kv, &kv->cmd);
    if (rc != 0) {
        tg__host_set_error(hr, "kv: %s", rc == -ENOTCONN ? "Redis is down"
                                          : "out of memory");
        goto failed;
    }
    free(full);
    tg_queue_insert_head(&hr->kvs, &kv->link);
    hr->nkvs++;
    return 0;

failed:
    free(full);
    free(kv);
    return rc;
}


static void
tg__host_kv_reply(tg_redis_t *r, int status, redisReply *reply, void *data)
{
    tg_host_kv_t    *kv = data;
    tg_host_req_t   *hr = kv->hr;
    const char      *value = NULL;
    size_t           len = 0;

    (void) r;
    if (tg_queue_linked(&kv->link)) {
        tg_queue_remove(&kv->link);
        hr->nkvs--;
    }
    if (status == 0 && kv->get) {
        if (reply->type == REDIS_REPLY_STRING) {
            value = reply->str;
            len = reply->len;
        } else {
            status = -ENOENT;
        }
    }
    if (tg__host_usable(hr)) {
        tg__host_enter(hr);
        kv->cb(tg__host_preq(hr->r), kv->data, status, value, len);
        tg__host_leave(hr);
    }
    free(kv);
}


int
tg__host_kv_get(tg_plugin_req_t *req, const char *key, tg_kv_cb cb, void *data)
{
    return tg__host_kv_send(req, 1, key, NULL, 0, 0, cb, data);
}


int
tg__host_kv_set(tg_plugin_req_t *req, const char *key, const char *v,
    size_t len, uint64_t ttl_ms, tg_kv_cb cb, void *data)
{
    return tg__host_kv_send(req, 0, key, v, len, ttl_ms, cb, data);
}


void
tg__host_kv_limits(size_t *max_key, size_t *max_value)
{
    if (max_key != NULL) {
        *max_key = TG_KV_MAX_KEY;
    }
    if (max_value != NULL) {
        *max_value = TG_KV_MAX_VALUE;
    }
}


/* The request's pending calls: no callback will come. */
void
tg__host_kvs_cancel(tg_host_req_t *hr)
{
    tg_host_kv_t  *kv;

    while (!tg_queue_empty(&hr->kvs)) {
        kv = tg_queue_data(tg_queue_head(&hr->kvs), tg_host_kv_t, link);
        tg_queue_remove(&kv->link);
        tg_redis_cancel(kv->cmd);
        free(kv);
    }
    hr->nkvs = 0;
}
