/*
 * Client API keys: rights, budgets and rate limits (serve/keys.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shared.h"
#include "log.h"
#include "serve/keys.h"

#define TG_KEYS_BUCKETS  256

enum {
    TG_KEY_REQ = 0,             /* requests, short window */
    TG_KEY_TOK,                 /* tokens, short window */
    TG_KEY_DAY,                 /* tokens, day */
    TG_KEY_NWIN
};

/* One key's local windows and metrics. */
typedef struct tg_key_entry_s  tg_key_entry_t;

struct tg_key_entry_s {
    char               name[TG_KEY_NAME_MAX + 1];
    uint64_t           used[TG_KEY_NWIN];
    uint64_t           ends_ms[TG_KEY_NWIN];    /* 0: no window open */
    int                labelled;                /* own metric series */
    uint64_t           requests;                /* metrics: charged */
    uint64_t           tokens;
    uint64_t           refused;                 /* 403 and 429 */
    tg_key_entry_t    *next;
};

struct tg_keys_s {
    tg_key_entry_t    *buckets[TG_KEYS_BUCKETS];
    unsigned           labels;                  /* limit */
    unsigned           nlabelled;
    size_t             nkeys;
    uint64_t           other_requests;          /* keys past the limit */
    uint64_t           other_tokens;
    uint64_t           other_refused;
    uint64_t           redis_errors;            /* fell back to local */
};

/* A charge on its way to Redis; kept to charge this gateway's windows
 * when Redis loses it. */
typedef struct {
    tg_engine_t       *engine;
    char               name[TG_KEY_NAME_MAX + 1];
    uint64_t           spent;
    uint64_t           window_ms;
} tg__keys_charge_t;

/* Where admission counted a request in its key's request window. */
enum {
    TG__KEY_COUNTED_NONE = 0,
    TG__KEY_COUNTED_LOCAL,
    TG__KEY_COUNTED_REDIS
};

/* The request's key (r->key). */
struct tg_key_req_s {
    tg_request_t      *r;
    char               name[TG_KEY_NAME_MAX + 1];
    char              *models;                  /* "a,b", "*", "": all */
    char              *strategies;
    uint64_t           limit[TG_KEY_NWIN];      /* 0: none */
    uint64_t           window_ms;
    uint64_t           used[TG_KEY_NWIN];       /* at admission */
    char               sha[65];                 /* Redis: look up by it */
    int                by_name;                 /* Redis: look up name */
    int                resolved;
    int                admitted;
    int                counted;                 /* in the request window:
                                                   TG__KEY_COUNTED_* */
    int                charged;
    tg_redis_cmd_t    *op;
    void             (*next)(tg_request_t *r);
};

static tg_keys_t *tg__keys_of(tg_engine_t *e);
static tg_key_entry_t *tg__keys_entry(tg_keys_t *k, const char *name);
static int tg__keys_name_valid(const char *s, size_t len);
static int tg__keys_uint(json_t *v, uint64_t *out);
static int tg__keys_limits(tg_key_req_t *kr, json_t *o);
static int tg__keys_meta_limits(tg_request_t *r, tg_key_req_t *kr,
    tg_oa_error_t *err);
static tg_redis_t *tg__keys_redis(tg_request_t *r, tg_shared_t **link);
static int tg__keys_shared(tg_request_t *r);
static void tg__keys_lookup_cb(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static int tg__keys_record(tg_key_req_t *kr, redisReply *reply);
static void tg__keys_admit_cb(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static void tg__keys_admit_local(tg_request_t *r);
static void tg__keys_verdict(tg_request_t *r, int over, uint64_t retry_ms);
static void tg__keys_charge_cb(tg_redis_t *redis, int status,
    redisReply *reply, void *data);
static void tg__keys_charge_local(tg_engine_t *e, tg_key_entry_t *x,
    uint64_t spent, uint64_t window_ms);
static void tg__keys_counter_names(const tg_key_req_t *kr,
    const char *prefix, char names[TG_KEY_NWIN][256]);
static int tg__keys_listed(const char *list, const char *name);
static void tg__keys_unauthorized(tg_request_t *r, const char *why);
static void tg__keys_answer(tg_request_t *r, const tg_oa_error_t *err,
    const char *headers);
static void tg__keys_refused(tg_request_t *r);
static void tg__keys_refund(tg_request_t *r);
static void tg__keys_refund_cb(tg_redis_t *redis, int status,
    redisReply *reply, void *data);


tg_keys_t *
tg_keys_new(unsigned labels)
{
    tg_keys_t  *k;

    k = calloc(1, sizeof(*k));
    if (k != NULL) {
        k->labels = labels;
    }
    return k;
}


void
tg_keys_free(tg_keys_t *k)
{
    tg_key_entry_t  *x, *next;
    size_t           i;

    if (k == NULL) {
        return;
    }
    for (i = 0; i < TG_KEYS_BUCKETS; i++) {
        for (x = k->buckets[i]; x != NULL; x = next) {
            next = x->next;
            free(x);
        }
    }
    free(k);
}


static tg_keys_t *
tg__keys_of(tg_engine_t *e)
{
    if (e->keys == NULL) {
        e->keys = tg_keys_new(TG_KEY_LABELS);
    }
    return e->keys;
}


/* The entry of a key name, created on first use; NULL out of memory.
 * The first `labels` names get their own metric series, later ones are
 * counted as "other" (bounded label cardinality). */
static tg_key_entry_t *
tg__keys_entry(tg_keys_t *k, const char *name)
{
    tg_key_entry_t  *x;
    uint32_t         h = 2166136261u;
    const char      *p;

    if (k == NULL) {
        return NULL;
    }
    for (p = name; *p != '\0'; p++) {
        h = (h ^ (uint8_t) *p) * 16777619u;
    }
    h %= TG_KEYS_BUCKETS;

    for (x = k->buckets[h]; x != NULL; x = x->next) {
        if (strcmp(x->name, name) == 0) {
            return x;
        }
    }
    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return NULL;
    }
    snprintf(x->name, sizeof(x->name), "%s", name);
    /* a key named "other" is counted in the "other" series */
    if (k->nlabelled < k->labels && strcmp(name, "other") != 0) {
        x->labelled = 1;
        k->nlabelled++;
    }
    x->next = k->buckets[h];
    k->buckets[h] = x;
    k->nkeys++;
    return x;
}


/* A key name: 1-64 of [A-Za-z0-9_.-], as the module and the admin tool
 * allow. */
static int
tg__keys_name_valid(const char *s, size_t len)
{
    size_t  i;

    if (len == 0 || len > TG_KEY_NAME_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char  c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'
              || c == '.'))
        {
            return 0;
        }
    }
    return 1;
}


static int
tg__keys_uint(json_t *v, uint64_t *out)
{
    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return -EINVAL;
    }
    *out = (uint64_t) json_integer_value(v);
    return 0;
}


/* {"rpm", "tpm", "tpd", "window_ms"}, each optional. */
static int
tg__keys_limits(tg_key_req_t *kr, json_t *o)
{
    if (o == NULL) {
        return 0;
    }
    if (!json_is_object(o)
        || tg__keys_uint(json_object_get(o, "rpm"), &kr->limit[TG_KEY_REQ])
        || tg__keys_uint(json_object_get(o, "tpm"), &kr->limit[TG_KEY_TOK])
        || tg__keys_uint(json_object_get(o, "tpd"), &kr->limit[TG_KEY_DAY])
        || tg__keys_uint(json_object_get(o, "window_ms"), &kr->window_ms))
    {
        return -EINVAL;
    }
    if (kr->window_ms == 0) {
        kr->window_ms = TG_KEY_WINDOW_MS;
    }
    return 0;
}


int
tg_keys_meta(tg_request_t *r, tg_oa_error_t *err)
{
    tg_key_req_t  *kr;
    const char    *name, *sha, *store, *s;
    int            rc;

    name = r->meta.key;
    sha = r->meta.key_sha256;
    store = r->meta.key_store;

    if (name == NULL && sha == NULL) {
        return 0;
    }

    kr = calloc(1, sizeof(*kr));
    if (kr == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    kr->r = r;
    kr->window_ms = TG_KEY_WINDOW_MS;
    r->key = kr;

    if (name != NULL) {
        if (!tg__keys_name_valid(name, strlen(name))) {
            tg__keys_refused(r);
            tg_oa_error_set(err, 401, "invalid_request_error",
                            "invalid_api_key", NULL, "The key name "
                            "\"%.64s\" is not valid.", name);
            return -EINVAL;
        }
        snprintf(kr->name, sizeof(kr->name), "%s", name);
    }

    if (store != NULL && strcmp(store, "redis") == 0) {
        if (sha != NULL) {
            if (strlen(sha) != 64 || strspn(sha, "0123456789abcdef") != 64)
            {
                tg_oa_error_set(err, 500, NULL, NULL, NULL,
                                "REQUEST meta has a bad key_sha256");
                return -EINVAL;
            }
            memcpy(kr->sha, sha, 65);
        } else {
            kr->by_name = 1;
        }
        kr->models = strdup("");
        kr->strategies = strdup("");
        if (kr->models == NULL || kr->strategies == NULL) {
            tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
            return -ENOMEM;
        }
        return 0;
    }

    if (name == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL,
                        "REQUEST meta has a key digest without a store");
        return -EINVAL;
    }

    s = r->meta.key_models;
    kr->models = strdup(s ? s : "");
    s = r->meta.key_strategies;
    kr->strategies = strdup(s ? s : "");
    if (kr->models == NULL || kr->strategies == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    rc = tg__keys_meta_limits(r, kr, err);
    if (rc == 0) {
        kr->resolved = 1;
    }
    return rc;
}


/* The meta's "key_limits", read from its tree (built for this only). */
static int
tg__keys_meta_limits(tg_request_t *r, tg_key_req_t *kr, tg_oa_error_t *err)
{
    json_t  *limits = NULL;

    if (r->meta.has_key_limits) {
        if (tg_meta_json(&r->meta) == NULL) {
            tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
            return -ENOMEM;
        }
        limits = json_object_get(r->meta.doc, "key_limits");
    }
    if (tg__keys_limits(kr, limits) != 0) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL,
                        "REQUEST meta has bad key_limits");
        return -EINVAL;
    }
    return 0;
}


/* The Redis connection of the request's generation when it is up. */
static tg_redis_t *
tg__keys_redis(tg_request_t *r, tg_shared_t **link)
{
    tg_shared_t  *s;

    s = tg_shared_of(r->engine, r->gen);
    if (link != NULL) {
        *link = s;
    }
    if (s == NULL || !s->has_redis || !tg_redis_connected(&s->redis)) {
        return NULL;
    }
    return &s->redis;
}


/* Whether key windows are kept in Redis now: connected, scripts read. */
static int
tg__keys_shared(tg_request_t *r)
{
    tg_shared_t  *link;

    return tg__keys_redis(r, &link) != NULL
           && link->keys_admit.body != NULL
           && link->keys_charge.body != NULL;
}


/* ---- 1. resolve ----------------------------------------------------- */

void
tg_keys_resolve(tg_request_t *r, void (*next)(tg_request_t *r))
{
    tg_key_req_t  *kr = r->key;
    tg_oa_error_t  err;
    tg_redis_t    *redis;
    tg_shared_t   *link;
    char           key[512];
    const char    *argv[2];
    int            rc;

    if (kr == NULL || kr->resolved) {
        next(r);
        return;
    }

    redis = tg__keys_redis(r, &link);
    if (redis == NULL) {
        tg_oa_error_set(&err, 503, "server_error", "key_store_unavailable",
                        NULL, "The key store (Redis) is unavailable: the "
                        "key cannot be checked; retry in a moment.");
        tg_request_error(r, &err);
        return;
    }

    if (kr->by_name) {
        snprintf(key, sizeof(key), "%sapikey_name:%s", redis->prefix,
                 kr->name);
    } else {
        snprintf(key, sizeof(key), "%sapikey:%s", redis->prefix, kr->sha);
    }
    argv[0] = "HGETALL";
    argv[1] = key;

    kr->next = next;
    rc = tg_redis_command(redis, 2, argv, NULL, tg__keys_lookup_cb, kr,
                          &kr->op);
    if (rc != 0) {
        kr->op = NULL;
        tg_oa_error_set(&err, 503, "server_error", "key_store_unavailable",
                        NULL, "The key store (Redis) is unavailable: %s.",
                        strerror(-rc));
        tg_request_error(r, &err);
    }
}


static void
tg__keys_lookup_cb(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_key_req_t   *kr = data;
    tg_request_t   *r = kr->r;
    tg_oa_error_t   err;

    (void) redis;
    kr->op = NULL;

    if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        tg_log_warn("request %llu: key store lookup failed: %s",
                    (unsigned long long) r->id,
                    status == -EIO && reply ? reply->str
                                            : strerror(status ? -status
                                                              : EPROTO));
        tg_oa_error_set(&err, 503, "server_error", "key_store_unavailable",
                        NULL, "The key store (Redis) did not answer: the "
                        "key cannot be checked; retry in a moment.");
        tg_request_error(r, &err);
        return;
    }

    if (reply->elements == 0) {
        tg__keys_unauthorized(r, kr->by_name
                              ? "the key named by the authentication "
                                "sub-request is not in the key store"
                              : NULL);
        return;
    }

    if (tg__keys_record(kr, reply) != 0) {
        tg_log_error("request %llu: a key record in Redis is malformed",
                     (unsigned long long) r->id);
        tg_oa_error_set(&err, 500, "server_error", "bad_key_record", NULL,
                        "The key's record in the key store is malformed.");
        tg_request_error(r, &err);
        return;
    }

    kr->resolved = 1;
    kr->next(r);
}


/* HGETALL's field/value pairs: name, models, strategies, rpm, tpm, tpd,
 * window_ms (tools/thinkgate-keys writes them). */
static int
tg__keys_record(tg_key_req_t *kr, redisReply *reply)
{
    redisReply  *f, *v;
    size_t       i;
    uint64_t     n;
    char        *end, **dst;
    int          named = 0;

    for (i = 0; i + 1 < reply->elements; i += 2) {
        f = reply->element[i];
        v = reply->element[i + 1];
        if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            return -EINVAL;
        }
        if (strcmp(f->str, "name") == 0) {
            if (!tg__keys_name_valid(v->str, v->len)
                || (kr->by_name && strcmp(kr->name, v->str) != 0))
            {
                return -EINVAL;
            }
            memcpy(kr->name, v->str, v->len + 1);
            named = 1;
            continue;
        }
        if (strcmp(f->str, "models") == 0
            || strcmp(f->str, "strategies") == 0)
        {
            dst = f->str[0] == 'm' ? &kr->models : &kr->strategies;
            free(*dst);
            *dst = strndup(v->str, v->len);
            if (*dst == NULL) {
                return -ENOMEM;
            }
            continue;
        }
        errno = 0;
        n = strtoull(v->str, &end, 10);
        if (v->len == 0 || *end != '\0' || errno != 0) {
            continue;       /* a field this engine does not know */
        }
        if (strcmp(f->str, "rpm") == 0) {
            kr->limit[TG_KEY_REQ] = n;
        } else if (strcmp(f->str, "tpm") == 0) {
            kr->limit[TG_KEY_TOK] = n;
        } else if (strcmp(f->str, "tpd") == 0) {
            kr->limit[TG_KEY_DAY] = n;
        } else if (strcmp(f->str, "window_ms") == 0 && n > 0) {
            kr->window_ms = n;
        }
    }
    return named ? 0 : -EINVAL;
}


/* ---- 2, 4. rights --------------------------------------------------- */

/* Whether name is in a comma list; "" and "*" hold every name. */
static int
tg__keys_listed(const char *list, const char *name)
{
    const char  *p, *e;
    size_t       n = strlen(name);

    if (list == NULL || list[0] == '\0' || strcmp(list, "*") == 0) {
        return 1;
    }
    for (p = list; *p != '\0'; p = *e ? e + 1 : e) {
        e = strchr(p, ',');
        if (e == NULL) {
            e = p + strlen(p);
        }
        if ((size_t) (e - p) == n && memcmp(p, name, n) == 0) {
            return 1;
        }
    }
    return 0;
}


int
tg_keys_may_use(const tg_request_t *r, const char *model, const char *pool)
{
    const tg_key_req_t  *kr = r->key;

    /* a model name, or the pool serving it, may be granted */
    return kr == NULL
           || (model != NULL && tg__keys_listed(kr->models, model))
           || (pool != NULL && tg__keys_listed(kr->models, pool));
}


int
tg_keys_allow_model(tg_request_t *r, tg_oa_error_t *err)
{
    tg_key_req_t  *kr = r->key;

    if (tg_keys_may_use(r, r->oa.model, r->pool_name)) {
        return 0;
    }
    tg__keys_refused(r);
    tg_oa_error_set(err, 403, "invalid_request_error", "model_not_allowed",
                    "model", "The key `%s` may not use the model "
                    "`%.200s`.", kr->name,
                    r->oa.model ? r->oa.model : r->pool_name);
    return -EPERM;
}


int
tg_keys_allow_strategy(tg_request_t *r, const char *strategy,
    tg_oa_error_t *err)
{
    tg_key_req_t  *kr = r->key;

    if (kr == NULL || tg__keys_listed(kr->strategies, strategy)) {
        return 0;
    }
    /* refused before any work: not charged as a request either, and
     * given back to the request window admission counted it in */
    kr->admitted = 0;
    tg__keys_refund(r);
    tg__keys_refused(r);
    tg_oa_error_set(err, 403, "invalid_request_error",
                    "strategy_not_allowed", NULL, "The key `%s` may not "
                    "use the strategy `%.64s`.", kr->name, strategy);
    return -EPERM;
}


/* ---- 3. admit ------------------------------------------------------- */

static void
tg__keys_counter_names(const tg_key_req_t *kr, const char *prefix,
    char names[TG_KEY_NWIN][256])
{
    static const char *const what[TG_KEY_NWIN] = { "req", "tok", "day" };
    int                      i;

    /* {NAME}: one hash slot per key on a Redis cluster */
    for (i = 0; i < TG_KEY_NWIN; i++) {
        snprintf(names[i], 256, "%skey:{%s}:%s", prefix, kr->name, what[i]);
    }
}


void
tg_keys_admit(tg_request_t *r, void (*next)(tg_request_t *r))
{
    tg_key_req_t  *kr = r->key;
    tg_redis_t    *redis;
    tg_shared_t   *link;
    char           names[TG_KEY_NWIN][256], lim[TG_KEY_NWIN + 1][24];
    const char    *keys[TG_KEY_NWIN], *args[TG_KEY_NWIN + 1];
    int            i, rc;

    if (kr == NULL || (kr->limit[TG_KEY_REQ] == 0
                       && kr->limit[TG_KEY_TOK] == 0
                       && kr->limit[TG_KEY_DAY] == 0))
    {
        if (kr != NULL) {
            kr->admitted = 1;
        }
        next(r);
        return;
    }

    kr->next = next;
    redis = tg__keys_redis(r, &link);
    if (redis == NULL || link->keys_admit.body == NULL) {
        tg__keys_admit_local(r);
        return;
    }

    tg__keys_counter_names(kr, redis->prefix, names);
    for (i = 0; i < TG_KEY_NWIN; i++) {
        snprintf(lim[i], sizeof(lim[i]), "%llu",
                 (unsigned long long) kr->limit[i]);
        keys[i] = names[i];
        args[i] = lim[i];
    }
    snprintf(lim[i], sizeof(lim[i]), "%llu",
             (unsigned long long) kr->window_ms);
    args[i] = lim[i];

    rc = tg_redis_script_call(redis, &link->keys_admit, TG_KEY_NWIN, keys,
                              TG_KEY_NWIN + 1, args, tg__keys_admit_cb, kr,
                              &kr->op);
    if (rc != 0) {
        kr->op = NULL;
        tg__keys_of(r->engine)->redis_errors++;
        tg__keys_admit_local(r);
    }
}


static void
tg__keys_admit_cb(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_key_req_t  *kr = data;
    tg_request_t  *r = kr->r;
    size_t         i;

    (void) redis;
    kr->op = NULL;

    if (status != 0 || reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 2 + TG_KEY_NWIN)
    {
        /* Redis went away between the check and the answer: the local
         * windows decide, as without Redis. */
        tg_log_warn("request %llu: key admission in Redis failed; "
                    "using this gateway's counters",
                    (unsigned long long) r->id);
        tg__keys_of(r->engine)->redis_errors++;
        tg__keys_admit_local(r);
        return;
    }
    for (i = 0; i < reply->elements; i++) {
        if (reply->element[i]->type != REDIS_REPLY_INTEGER) {
            tg__keys_of(r->engine)->redis_errors++;
            tg__keys_admit_local(r);
            return;
        }
    }
    for (i = 0; i < TG_KEY_NWIN; i++) {
        kr->used[i] = (uint64_t) reply->element[2 + i]->integer;
    }
    if (reply->element[0]->integer == 0 && kr->limit[TG_KEY_REQ] > 0) {
        kr->counted = TG__KEY_COUNTED_REDIS;
    }
    tg__keys_verdict(r, (int) reply->element[0]->integer,
                     (uint64_t) reply->element[1]->integer);
}


/* This gateway's own windows (no Redis, or Redis failing). */
static void
tg__keys_admit_local(tg_request_t *r)
{
    tg_key_req_t    *kr = r->key;
    tg_key_entry_t  *x;
    uint64_t         now = uv_now(r->engine->loop), retry = 0;
    int              i, over = 0;

    x = tg__keys_entry(tg__keys_of(r->engine), kr->name);
    if (x == NULL) {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg_request_error(r, &err);
        return;
    }
    for (i = 0; i < TG_KEY_NWIN; i++) {
        if (x->ends_ms[i] != 0 && now >= x->ends_ms[i]) {
            x->used[i] = 0;
            x->ends_ms[i] = 0;
        }
        kr->used[i] = x->used[i];
        if (kr->limit[i] > 0 && x->used[i] >= kr->limit[i]
            && x->ends_ms[i] - now >= retry)
        {
            over = i + 1;
            retry = x->ends_ms[i] - now;
        }
    }
    /* an admitted request counts at once (key_admit.lua does the same) */
    if (over == 0 && kr->limit[TG_KEY_REQ] > 0) {
        if (x->ends_ms[TG_KEY_REQ] == 0) {
            x->ends_ms[TG_KEY_REQ] = now + kr->window_ms;
        }
        kr->used[TG_KEY_REQ] = ++x->used[TG_KEY_REQ];
        kr->counted = TG__KEY_COUNTED_LOCAL;
    }
    tg__keys_verdict(r, over, retry);
}


static void
tg__keys_verdict(tg_request_t *r, int over, uint64_t retry_ms)
{
    tg_key_req_t   *kr = r->key;
    tg_oa_error_t   err;
    char            hdr[128];
    uint64_t        s;
    int             i;

    if (over < 1 || over > TG_KEY_NWIN) {
        kr->admitted = 1;
        kr->next(r);
        return;
    }

    i = over - 1;
    s = (retry_ms + 999) / 1000;
    if (s == 0) {
        s = 1;
    }

    if (i == TG_KEY_DAY) {
        tg_oa_error_set(&err, 429, "insufficient_quota",
                        "insufficient_quota", NULL, "You exceeded the daily "
                        "token budget of the key `%s`: limit %llu, used "
                        "%llu. It renews in %llus.", kr->name,
                        (unsigned long long) kr->limit[i],
                        (unsigned long long) kr->used[i],
                        (unsigned long long) s);
    } else {
        tg_oa_error_set(&err, 429, i == TG_KEY_REQ ? "requests" : "tokens",
                        "rate_limit_exceeded", NULL, "Rate limit reached "
                        "for the key `%s` on %s per %llus window: limit "
                        "%llu, used %llu. Please try again in %llus.",
                        kr->name, i == TG_KEY_REQ ? "requests" : "tokens",
                        (unsigned long long) (kr->window_ms + 999) / 1000,
                        (unsigned long long) kr->limit[i],
                        (unsigned long long) kr->used[i],
                        (unsigned long long) s);
    }
    tg__keys_refused(r);
    snprintf(hdr, sizeof(hdr), "Content-Type: application/json\r\n"
             "Retry-After: %llu\r\n", (unsigned long long) s);
    tg__keys_answer(r, &err, hdr);
}


/* The request admission counted, given back where it was counted. */
static void
tg__keys_refund(tg_request_t *r)
{
    tg_key_req_t    *kr = r->key;
    tg_key_entry_t  *x;
    tg_redis_t      *redis;
    tg_shared_t     *link;
    char             names[TG_KEY_NWIN][256];
    const char      *keys[1];
    int              counted = kr->counted;

    kr->counted = TG__KEY_COUNTED_NONE;

    if (counted == TG__KEY_COUNTED_LOCAL) {
        x = tg__keys_entry(tg__keys_of(r->engine), kr->name);
        /* a window that ended since has nothing of it */
        if (x != NULL && x->used[TG_KEY_REQ] > 0
            && x->ends_ms[TG_KEY_REQ] > uv_now(r->engine->loop))
        {
            x->used[TG_KEY_REQ]--;
        }
        return;
    }
    if (counted != TG__KEY_COUNTED_REDIS) {
        return;
    }
    redis = tg__keys_redis(r, &link);
    if (redis == NULL || link->keys_refund.body == NULL) {
        tg_log_warn("request %llu: the request window of key \"%s\" keeps "
                    "a request refused for its strategy: Redis is away",
                    (unsigned long long) r->id, kr->name);
        return;
    }
    tg__keys_counter_names(kr, redis->prefix, names);
    keys[0] = names[TG_KEY_REQ];
    /* nothing waits for it: the 403 goes out now */
    if (tg_redis_script_call(redis, &link->keys_refund, 1, keys, 0, NULL,
                             tg__keys_refund_cb, r->engine, NULL) != 0
        && r->engine->keys != NULL)
    {
        r->engine->keys->redis_errors++;
    }
}


static void
tg__keys_refund_cb(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg_engine_t  *e = data;

    (void) redis;
    if (status != 0 && status != -ECANCELED) {
        tg_log_warn("a key's request refund in Redis failed (%s)",
                    status == -EIO && reply ? reply->str
                                            : strerror(-status));
        if (e->keys != NULL) {
            e->keys->redis_errors++;
        }
    }
}


/* ---- answers -------------------------------------------------------- */

static void
tg__keys_unauthorized(tg_request_t *r, const char *why)
{
    tg_oa_error_t  err;

    tg__keys_refused(r);
    tg_oa_error_set(&err, 401, "invalid_request_error", "invalid_api_key",
                    NULL, "Incorrect or missing API key: %s.",
                    why ? why : "send \"Authorization: Bearer KEY\" with a "
                                "key of this gateway");
    tg__keys_answer(r, &err, "Content-Type: application/json\r\n"
                    "WWW-Authenticate: Bearer\r\n");
}


/* An error with its own headers: HEAD, DATA, END (ERROR has none);
 * END's figures name the key for $thinkgate_key. */
static void
tg__keys_answer(tg_request_t *r, const tg_oa_error_t *err,
    const char *headers)
{
    json_t  *figures = NULL;
    char    *s;

    if (r->key != NULL && r->key->name[0] != '\0') {
        figures = json_pack("{s:s}", "key", r->key->name);
    }
    s = tg_oa_error_render(err);
    if (s == NULL
        || tg_request_head(r, err->status, 0, headers) != 0
        || tg_request_data(r, s, strlen(s)) != 0
        || tg_request_data(r, "\n", 1) != 0)
    {
        json_decref(figures);
        (void) tg_request_error(r, err);
    } else {
        /* takes figures */
        (void) tg_request_end(r, figures);
    }
    free(s);
}


static void
tg__keys_refused(tg_request_t *r)
{
    tg_keys_t       *k = tg__keys_of(r->engine);
    tg_key_entry_t  *x;

    if (r->key == NULL || r->key->name[0] == '\0') {
        return;
    }
    x = tg__keys_entry(k, r->key->name);
    if (x != NULL && x->labelled) {
        x->refused++;
    } else if (k != NULL) {
        k->other_refused++;
    }
}


/* ---- summary, charge ------------------------------------------------ */

int
tg_keys_summary(const tg_request_t *r, json_t *obj, uint64_t spent)
{
    static const char *const rem[TG_KEY_NWIN] = {
        "key_requests_remaining", "key_tokens_remaining",
        "key_tokens_remaining_day"
    };
    tg_key_req_t  *kr = r->key;
    uint64_t       left, cost;
    int            i;

    if (kr == NULL || !kr->resolved) {
        return 0;
    }
    if (json_object_set_new(obj, "key", json_string(kr->name)) != 0
        || json_object_set_new(obj, "key_tokens_spent",
                               json_integer((json_int_t) spent)) != 0)
    {
        return -ENOMEM;
    }
    for (i = 0; i < TG_KEY_NWIN; i++) {
        if (kr->limit[i] == 0 || !kr->admitted) {
            continue;
        }
        /* the request window counts this request already */
        cost = kr->used[i] + (i == TG_KEY_REQ ? 0 : spent);
        left = cost < kr->limit[i] ? kr->limit[i] - cost : 0;
        if (json_object_set_new(obj, rem[i],
                                json_integer((json_int_t) left)) != 0)
        {
            return -ENOMEM;
        }
    }
    return 0;
}


void
tg_keys_close(tg_request_t *r, uint64_t spent)
{
    tg_key_req_t       *kr = r->key;
    tg_keys_t          *k;
    tg_key_entry_t     *x;
    tg_redis_t         *redis;
    tg_shared_t        *link;
    tg__keys_charge_t  *c;
    char                names[TG_KEY_NWIN][256], a[3][24];
    const char         *keys[2], *args[3];
    int                 i;

    if (kr == NULL) {
        return;
    }
    if (kr->op != NULL) {
        tg_redis_cancel(kr->op);
        kr->op = NULL;
    }
    if (!kr->admitted || kr->charged) {
        return;
    }
    kr->charged = 1;

    k = tg__keys_of(r->engine);
    x = tg__keys_entry(k, kr->name);
    if (x != NULL && x->labelled) {
        x->requests++;
        x->tokens += spent;
    } else if (k != NULL) {
        k->other_requests++;
        k->other_tokens += spent;
    }

    /* the request window counted the request at admission */
    if (kr->limit[TG_KEY_TOK] == 0 && kr->limit[TG_KEY_DAY] == 0) {
        return;
    }

    redis = tg__keys_redis(r, &link);
    c = NULL;
    if (redis != NULL && link->keys_charge.body != NULL
        && (c = calloc(1, sizeof(*c))) != NULL)
    {
        c->engine = r->engine;
        memcpy(c->name, kr->name, sizeof(c->name));
        c->spent = spent;
        c->window_ms = kr->window_ms;
        tg__keys_counter_names(kr, redis->prefix, names);
        snprintf(a[0], sizeof(a[0]), "%llu", (unsigned long long) spent);
        snprintf(a[1], sizeof(a[1]), "%llu",
                 (unsigned long long) kr->window_ms);
        snprintf(a[2], sizeof(a[2]), "%u", TG_KEY_DAY_MS);
        keys[0] = names[TG_KEY_TOK];
        keys[1] = names[TG_KEY_DAY];
        for (i = 0; i < 3; i++) {
            args[i] = a[i];
        }
        /* nothing waits for it: the request is gone */
        if (tg_redis_script_call(redis, &link->keys_charge, 2, keys, 3,
                                 args, tg__keys_charge_cb, c, NULL) == 0)
        {
            return;
        }
        free(c);
        if (k != NULL) {
            k->redis_errors++;
        }
    }
    tg__keys_charge_local(r->engine, x, spent, kr->window_ms);
}


/* This gateway's windows (no Redis, or Redis lost the charge). */
static void
tg__keys_charge_local(tg_engine_t *e, tg_key_entry_t *x, uint64_t spent,
    uint64_t window_ms)
{
    uint64_t  now, len;
    int       i;

    if (x == NULL) {
        return;
    }
    now = uv_now(e->loop);
    for (i = TG_KEY_TOK; i < TG_KEY_NWIN; i++) {
        if (x->ends_ms[i] != 0 && now >= x->ends_ms[i]) {
            x->used[i] = 0;
            x->ends_ms[i] = 0;
        }
        if (x->ends_ms[i] == 0) {
            len = i == TG_KEY_DAY ? TG_KEY_DAY_MS : window_ms;
            x->ends_ms[i] = now + len;
        }
        x->used[i] += spent;
    }
}


static void
tg__keys_charge_cb(tg_redis_t *redis, int status, redisReply *reply,
    void *data)
{
    tg__keys_charge_t  *c = data;
    tg_engine_t        *e = c->engine;

    (void) redis;
    /* -ECANCELED: the engine is stopping, nothing to keep */
    if (status != 0 && status != -ECANCELED) {
        tg_log_warn("charging key \"%s\" in Redis failed (%s): "
                    "charged to this gateway's windows", c->name,
                    status == -EIO && reply ? reply->str
                                            : strerror(-status));
        if (e->keys != NULL) {
            e->keys->redis_errors++;
            tg__keys_charge_local(e, tg__keys_entry(e->keys, c->name),
                                  c->spent, c->window_ms);
        }
    }
    free(c);
}


void
tg_keys_free_request(tg_request_t *r)
{
    tg_key_req_t  *kr = r->key;

    if (kr == NULL) {
        return;
    }
    if (kr->op != NULL) {
        tg_redis_cancel(kr->op);
    }
    free(kr->models);
    free(kr->strategies);
    free(kr);
    r->key = NULL;
}


/* ---- status --------------------------------------------------------- */

int
tg_keys_status_json(tg_request_t *r, json_t *doc)
{
    tg_keys_t    *k = r->engine->keys;
    json_t       *o;

    o = json_pack("{s:s, s:I, s:I, s:I}",
                  "limits", tg__keys_shared(r) ? "shared" : "local",
                  "keys_seen", (json_int_t) (k ? k->nkeys : 0),
                  "labelled", (json_int_t) (k ? k->nlabelled : 0),
                  "redis_errors", (json_int_t) (k ? k->redis_errors : 0));
    if (o == NULL || json_object_set_new(doc, "keys", o) != 0) {
        return -ENOMEM;
    }
    return 0;
}


int
tg_keys_status_prometheus(tg_request_t *r, tg_buf_t *b)
{
    static const struct {
        const char  *name;
        const char  *help;
    } m[] = {
        { "thinkgate_key_requests_total",
          "Requests charged to a key (label key; \"other\" past the "
          "label limit)." },
        { "thinkgate_key_tokens_total",
          "Tokens the GPUs spent for a key: prompt and completion of every "
          "trace, cancelled ones included, and aux requests." },
        { "thinkgate_key_refused_total",
          "Requests of a key refused: not allowed (403) or over a limit "
          "(429)." },
    };
    tg_keys_t       *k = r->engine->keys;
    tg_key_entry_t  *x;
    uint64_t         v, other;
    size_t           i, j;
    int              rc = 0;

    rc = tg_buf_printf(b, "# HELP thinkgate_key_limits_shared Whether key "
                       "limits are shared through Redis (1) or held by "
                       "this gateway alone (0).\n# TYPE "
                       "thinkgate_key_limits_shared gauge\n"
                       "thinkgate_key_limits_shared %d\n",
                       tg__keys_shared(r));

    for (j = 0; rc == 0 && j < sizeof(m) / sizeof(m[0]); j++) {
        rc = tg_buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n",
                           m[j].name, m[j].help, m[j].name);
        if (k == NULL) {
            continue;
        }
        for (i = 0; rc == 0 && i < TG_KEYS_BUCKETS; i++) {
            for (x = k->buckets[i]; rc == 0 && x != NULL; x = x->next) {
                if (!x->labelled) {
                    continue;
                }
                v = j == 0 ? x->requests : j == 1 ? x->tokens : x->refused;
                rc = tg_buf_printf(b, "%s{key=\"%s\"} %llu\n", m[j].name,
                                   x->name, (unsigned long long) v);
            }
        }
        other = j == 0 ? k->other_requests : j == 1 ? k->other_tokens
                                                    : k->other_refused;
        if (rc == 0 && k->nkeys > k->nlabelled) {
            rc = tg_buf_printf(b, "%s{key=\"other\"} %llu\n", m[j].name,
                               (unsigned long long) other);
        }
    }
    return rc;
}
