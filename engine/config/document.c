/*
 * The configuration document (include/thinkgate/protocol.h) read into a
 * generation.  Each object kind is a table of fields (name, kind,
 * required, offset); unknown keys are refused by name so that module and
 * engine stay in step.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"

/* Field kinds of the option tables below. */
enum {
    TG__F_STR,          /* non-empty string */
    TG__F_STR_NULL,     /* string or null; "" reads as null */
    TG__F_URL,          /* http:// or https:// string */
    TG__F_INT,          /* integer >= 0 */
    TG__F_BOOL,         /* true/false (0/1 accepted) */
    TG__F_SKILLS,       /* object of numbers, or null */
    TG__F_NAMES,        /* array of backend names (pools) */
    TG__F_POLICY,       /* pool policy name */
    TG__F_ADDR,         /* "host:port" or "unix:/path" */
    TG__F_DEVICE        /* "auto", "cpu" or "cuda" (embedder) */
};

typedef struct {
    const char  *key;
    int          kind;
    int          required;
    size_t       offset;
    int64_t      min;           /* TG__F_INT bounds; max 0: no upper */
    int64_t      max;
} tg__field_t;

static const tg__field_t  tg__backend_fields[] = {
    { "name", TG__F_STR, 1, offsetof(tg_backend_t, name), 0, 0 },
    { "url", TG__F_URL, 1, offsetof(tg_backend_t, url), 0, 0 },
    { "model", TG__F_STR_NULL, 0, offsetof(tg_backend_t, model), 0, 0 },
    { "max_inflight", TG__F_INT, 0, offsetof(tg_backend_t, max_inflight), 0, 0 },
    { "api_key_env", TG__F_STR_NULL, 0,
      offsetof(tg_backend_t, api_key_env), 0, 0 },
    { "connect_timeout_ms", TG__F_INT, 0,
      offsetof(tg_backend_t, connect_timeout_ms), 0, 0 },
    { "idle_timeout_ms", TG__F_INT, 0,
      offsetof(tg_backend_t, idle_timeout_ms), 0, 0 },
    { "tls_verify", TG__F_BOOL, 0, offsetof(tg_backend_t, tls_verify), 0, 0 },
    { "skills", TG__F_SKILLS, 0, offsetof(tg_backend_t, skills), 0, 0 },
    { NULL, 0, 0, 0, 0, 0 }
};

static const tg__field_t  tg__pool_fields[] = {
    { "name", TG__F_STR, 1, offsetof(tg_pool_t, name), 0, 0 },
    { "backends", TG__F_NAMES, 1, 0, 0, 0 },
    { "policy", TG__F_POLICY, 0, offsetof(tg_pool_t, policy), 0, 0 },
    { "block", TG__F_INT, 0, offsetof(tg_pool_t, block), 0, 0 },
    { "ttl_ms", TG__F_INT, 0, offsetof(tg_pool_t, ttl_ms), 0, 0 },
    { NULL, 0, 0, 0, 0, 0 }
};

/* Defaults for keys left out are set by tg__parse_redis. */
static const tg__field_t  tg__redis_fields[] = {
    { "addr", TG__F_ADDR, 1, offsetof(tg_redis_settings_t, addr), 0, 0 },
    { "db", TG__F_INT, 0, offsetof(tg_redis_settings_t, db), 0, 65535 },
    { "prefix", TG__F_STR_NULL, 0, offsetof(tg_redis_settings_t, prefix),
      0, 0 },
    { "password_env", TG__F_STR_NULL, 0,
      offsetof(tg_redis_settings_t, password_env), 0, 0 },
    { "connect_timeout_ms", TG__F_INT, 0,
      offsetof(tg_redis_settings_t, connect_timeout_ms), 1, 3600000 },
    { "timeout_ms", TG__F_INT, 0, offsetof(tg_redis_settings_t, timeout_ms),
      1, 3600000 },
    { NULL, 0, 0, 0, 0, 0 }
};

/* Defaults for keys left out are set by tg__parse_embedder. */
static const tg__field_t  tg__embedder_fields[] = {
    { "path", TG__F_STR, 1, offsetof(tg_embedder_settings_t, path), 0, 0 },
    { "threads", TG__F_INT, 0, offsetof(tg_embedder_settings_t, threads),
      1, 64 },
    { "device", TG__F_DEVICE, 0, offsetof(tg_embedder_settings_t, device),
      0, 0 },
    { "max_batch", TG__F_INT, 0,
      offsetof(tg_embedder_settings_t, max_batch), 1, 4096 },
    { NULL, 0, 0, 0, 0, 0 }
};

static const char  *tg__top_keys[] = {
    "backends", "pools", "plugins", "redis", "embedder", NULL
};

static const char  *tg__devices[] = {
    "auto", "cpu", "cuda", NULL
};

static const char  *tg__policies[] = {
    "least_inflight", "round_robin", "prefix", NULL
};


static int tg__fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tg__parse_fields(json_t *obj, const tg__field_t *fields,
    void *dst, const char *where, char *err, size_t errlen);
static int tg__parse_pool_members(tg_generation_t *g, tg_pool_t *pool,
    json_t *names, const char *where, char *err, size_t errlen);
static int tg__parse_plugins(tg_generation_t *g, char *err, size_t errlen);
static int tg__parse_redis(tg_generation_t *g, char *err, size_t errlen);
static int tg__parse_embedder(tg_generation_t *g, char *err,
    size_t errlen);
static int tg__valid_addr(const char *s);


static int
tg__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}


static int
tg__check_keys(json_t *obj, const char **allowed, const char *where,
    char *err, size_t errlen)
{
    const char  *key;
    json_t      *v;
    size_t       i;

    json_object_foreach(obj, key, v) {
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                break;
            }
        }
        if (allowed[i] == NULL) {
            return tg__fail(err, errlen, "unknown key \"%s\" in %s",
                            key, where);
        }
    }
    return 0;
}


int
tg_generation_parse(tg_generation_t *g, char *err, size_t errlen)
{
    json_t       *backends, *pools, *v;
    size_t        i, j;
    char          where[64];
    int           rc;

    rc = tg__check_keys(g->root, tg__top_keys, "the configuration", err,
                        errlen);
    if (rc != 0) {
        return rc;
    }

    backends = json_object_get(g->root, "backends");
    pools = json_object_get(g->root, "pools");
    g->plugins = json_object_get(g->root, "plugins");
    g->redis = json_object_get(g->root, "redis");

    if (backends != NULL && !json_is_array(backends)) {
        return tg__fail(err, errlen, "\"backends\" must be an array");
    }
    if (pools != NULL && !json_is_array(pools)) {
        return tg__fail(err, errlen, "\"pools\" must be an array");
    }
    rc = tg__parse_plugins(g, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = tg__parse_redis(g, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = tg__parse_embedder(g, err, errlen);
    if (rc != 0) {
        return rc;
    }

    g->nbackends = backends ? json_array_size(backends) : 0;
    g->npools = pools ? json_array_size(pools) : 0;

    if (g->nbackends) {
        g->backends = calloc(g->nbackends, sizeof(tg_backend_t));
        if (g->backends == NULL) {
            return -ENOMEM;
        }
    }
    if (g->npools) {
        g->pools = calloc(g->npools, sizeof(tg_pool_t));
        if (g->pools == NULL) {
            return -ENOMEM;
        }
    }

    for (i = 0; i < g->nbackends; i++) {
        tg_backend_t  *b = &g->backends[i];

        v = json_array_get(backends, i);
        snprintf(where, sizeof(where), "backends[%zu]", i);
        b->tls_verify = 1;

        rc = tg__parse_fields(v, tg__backend_fields, b, where, err, errlen);
        if (rc != 0) {
            return rc;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(g->backends[j].name, b->name) == 0) {
                return tg__fail(err, errlen, "duplicate backend \"%s\"",
                                b->name);
            }
        }

        b->stats = tg_backend_stats_get(g->config, b->name, b->url);
        if (b->stats == NULL) {
            return -ENOMEM;
        }
    }

    for (i = 0; i < g->npools; i++) {
        tg_pool_t  *p = &g->pools[i];

        v = json_array_get(pools, i);
        snprintf(where, sizeof(where), "pools[%zu]", i);

        rc = tg__parse_fields(v, tg__pool_fields, p, where, err, errlen);
        if (rc != 0) {
            return rc;
        }

        rc = tg__parse_pool_members(g, p, json_object_get(v, "backends"),
                                    where, err, errlen);
        if (rc != 0) {
            return rc;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(g->pools[j].name, p->name) == 0) {
                return tg__fail(err, errlen, "duplicate pool \"%s\"",
                                p->name);
            }
        }
    }

    return 0;
}


static int
tg__parse_fields(json_t *obj, const tg__field_t *fields, void *dst,
    const char *where, char *err, size_t errlen)
{
    const tg__field_t  *f;
    const char         *key, *s;
    json_t             *v, *sv;
    size_t              i;
    char               *slot;

    if (!json_is_object(obj)) {
        return tg__fail(err, errlen, "%s must be an object", where);
    }

    json_object_foreach(obj, key, v) {
        for (f = fields; f->key != NULL; f++) {
            if (strcmp(f->key, key) == 0) {
                break;
            }
        }
        if (f->key == NULL) {
            return tg__fail(err, errlen, "unknown key \"%s\" in %s",
                            key, where);
        }
    }

    for (f = fields; f->key != NULL; f++) {
        v = json_object_get(obj, f->key);
        slot = (char *) dst + f->offset;

        if (v == NULL) {
            if (f->required) {
                return tg__fail(err, errlen, "%s: \"%s\" is required",
                                where, f->key);
            }
            continue;
        }

        switch (f->kind) {

        case TG__F_STR:
        case TG__F_URL:
            s = json_string_value(v);
            if (s == NULL || s[0] == '\0') {
                return tg__fail(err, errlen,
                                "%s: \"%s\" must be a non-empty string",
                                where, f->key);
            }
            if (f->kind == TG__F_URL && strncmp(s, "http://", 7) != 0
                && strncmp(s, "https://", 8) != 0)
            {
                return tg__fail(err, errlen, "%s: \"url\" must start with "
                                "http:// or https://, not \"%s\"", where, s);
            }
            if (f->kind == TG__F_URL && s[strlen(s) - 1] == '/') {
                /* Store it without the trailing slash; the string is
                 * ours (the root owns it), so trim a private copy. */
                char  *t = strdup(s);

                if (t == NULL) {
                    return -ENOMEM;
                }
                while (t[0] != '\0' && t[strlen(t) - 1] == '/') {
                    t[strlen(t) - 1] = '\0';
                }
                sv = json_string(t);
                free(t);
                if (sv == NULL || json_object_set_new(obj, f->key, sv)) {
                    return -ENOMEM;
                }
                s = json_string_value(sv);
            }
            *(const char **) slot = s;
            break;

        case TG__F_STR_NULL:
            if (json_is_null(v)) {
                break;
            }
            s = json_string_value(v);
            if (s == NULL) {
                return tg__fail(err, errlen,
                                "%s: \"%s\" must be a string or null",
                                where, f->key);
            }
            *(const char **) slot = s[0] ? s : NULL;
            break;

        case TG__F_INT:
            if (!json_is_integer(v) || json_integer_value(v) < f->min
                || (f->max != 0 && json_integer_value(v) > f->max))
            {
                if (f->max != 0) {
                    return tg__fail(err, errlen, "%s: \"%s\" must be an "
                                    "integer from %lld to %lld", where,
                                    f->key, (long long) f->min,
                                    (long long) f->max);
                }
                return tg__fail(err, errlen,
                                "%s: \"%s\" must be an integer >= %lld",
                                where, f->key, (long long) f->min);
            }
            *(int64_t *) slot = json_integer_value(v);
            break;

        case TG__F_ADDR:
            s = json_string_value(v);
            if (s == NULL || !tg__valid_addr(s)) {
                return tg__fail(err, errlen, "%s: \"%s\" must be "
                                "\"host:port\" or \"unix:/path\"", where,
                                f->key);
            }
            *(const char **) slot = s;
            break;

        case TG__F_BOOL:
            if (json_is_boolean(v)) {
                *(int *) slot = json_is_true(v);
            } else if (json_is_integer(v) && (json_integer_value(v) == 0
                                              || json_integer_value(v) == 1))
            {
                *(int *) slot = (int) json_integer_value(v);
            } else {
                return tg__fail(err, errlen, "%s: \"%s\" must be a boolean",
                                where, f->key);
            }
            break;

        case TG__F_SKILLS:
            if (json_is_null(v)) {
                break;
            }
            if (!json_is_object(v)) {
                return tg__fail(err, errlen, "%s: \"%s\" must be an object "
                                "of numbers", where, f->key);
            }
            json_object_foreach(v, key, sv) {
                if (!json_is_number(sv)) {
                    return tg__fail(err, errlen, "%s: skill \"%s\" must be "
                                    "a number", where, key);
                }
            }
            *(json_t **) slot = v;
            break;

        case TG__F_POLICY:
            s = json_string_value(v);
            for (i = 0; s != NULL && tg__policies[i] != NULL; i++) {
                if (strcmp(s, tg__policies[i]) == 0) {
                    break;
                }
            }
            if (s == NULL || tg__policies[i] == NULL) {
                return tg__fail(err, errlen, "%s: \"policy\" must be "
                                "\"least_inflight\", \"round_robin\" or "
                                "\"prefix\"", where);
            }
            *(int *) slot = (int) i;
            break;

        case TG__F_DEVICE:
            s = json_string_value(v);
            for (i = 0; s != NULL && tg__devices[i] != NULL; i++) {
                if (strcmp(s, tg__devices[i]) == 0) {
                    break;
                }
            }
            if (s == NULL || tg__devices[i] == NULL) {
                return tg__fail(err, errlen, "%s: \"%s\" must be \"auto\", "
                                "\"cpu\" or \"cuda\"", where, f->key);
            }
            *(int *) slot = (int) i;
            break;

        case TG__F_NAMES:
            /* Resolved by tg__parse_pool_members once every backend is
             * known. */
            break;
        }
    }

    return 0;
}


static int
tg__parse_pool_members(tg_generation_t *g, tg_pool_t *pool, json_t *names,
    const char *where, char *err, size_t errlen)
{
    size_t         i, j, n;
    const char    *s;
    tg_backend_t  *b;

    if (!json_is_array(names) || json_array_size(names) == 0) {
        return tg__fail(err, errlen, "%s: \"backends\" must be a non-empty "
                        "array of backend names", where);
    }

    n = json_array_size(names);
    pool->backends = calloc(n, sizeof(tg_backend_t *));
    if (pool->backends == NULL) {
        return -ENOMEM;
    }

    for (i = 0; i < n; i++) {
        s = json_string_value(json_array_get(names, i));
        if (s == NULL) {
            return tg__fail(err, errlen, "%s: \"backends\" must hold "
                            "strings", where);
        }
        b = tg_generation_backend(g, s);
        if (b == NULL) {
            return tg__fail(err, errlen, "%s: pool \"%s\" names unknown "
                            "backend \"%s\"", where, pool->name, s);
        }
        for (j = 0; j < pool->nbackends; j++) {
            if (pool->backends[j] == b) {
                return tg__fail(err, errlen, "%s: pool \"%s\" names "
                                "backend \"%s\" twice", where, pool->name, s);
            }
        }
        pool->backends[pool->nbackends++] = b;
    }

    return 0;
}


/*
 * "plugins": the names the engine preloads from its plugin directory
 * (thinkgate_plugin).  Each is a file name stem, so it is held to
 * [a-z0-9_]{1,64}: nothing that could climb out of the directory.
 */
static int
tg__parse_plugins(tg_generation_t *g, char *err, size_t errlen)
{
    const char  *s, *t;
    size_t       i, j, n;

    if (g->plugins != NULL && json_is_null(g->plugins)) {
        g->plugins = NULL;
    }
    if (g->plugins == NULL) {
        return 0;
    }
    if (!json_is_array(g->plugins)) {
        return tg__fail(err, errlen, "\"plugins\" must be an array of "
                        "plugin names");
    }

    n = json_array_size(g->plugins);
    for (i = 0; i < n; i++) {
        s = json_string_value(json_array_get(g->plugins, i));
        if (s == NULL) {
            return tg__fail(err, errlen, "\"plugins\"[%zu] must be a "
                            "string", i);
        }
        if (s[0] == '\0' || strlen(s) > 64
            || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_")
               != strlen(s))
        {
            return tg__fail(err, errlen, "\"plugins\"[%zu]: \"%.64s\" is "
                            "not a plugin name (1 to 64 of a-z, 0-9, _)",
                            i, s);
        }
        for (j = 0; j < i; j++) {
            t = json_string_value(json_array_get(g->plugins, j));
            if (strcmp(s, t) == 0) {
                return tg__fail(err, errlen, "\"plugins\" names \"%s\" "
                                "twice", s);
            }
        }
    }
    g->nplugins = n;
    return 0;
}


/* "redis": an object (thinkgate_redis) or null (none configured). */
static int
tg__parse_redis(tg_generation_t *g, char *err, size_t errlen)
{
    tg_redis_settings_t  *r = &g->redis_settings;

    memset(r, 0, sizeof(*r));

    if (g->redis != NULL && json_is_null(g->redis)) {
        g->redis = NULL;
    }
    if (g->redis == NULL) {
        return 0;
    }
    if (!json_is_object(g->redis)) {
        return tg__fail(err, errlen, "\"redis\" must be an object or "
                        "null");
    }

    /* the module's defaults, for documents that leave keys out */
    r->prefix = "tg:";
    r->connect_timeout_ms = 1000;
    r->timeout_ms = 200;

    return tg__parse_fields(g->redis, tg__redis_fields, r, "redis", err,
                            errlen);
}


/* "embedder": an object (thinkgate_embedder) or null (none configured). */
static int
tg__parse_embedder(tg_generation_t *g, char *err, size_t errlen)
{
    tg_embedder_settings_t  *es = &g->embedder_settings;

    memset(es, 0, sizeof(*es));
    g->embedder = json_object_get(g->root, "embedder");
    if (g->embedder != NULL && json_is_null(g->embedder)) {
        g->embedder = NULL;
    }
    if (g->embedder == NULL) {
        return 0;
    }
    if (!json_is_object(g->embedder)) {
        return tg__fail(err, errlen, "\"embedder\" must be an object or "
                        "null");
    }

    /* the module's defaults, for documents that leave keys out */
    es->threads = 1;
    es->max_batch = 64;

    return tg__parse_fields(g->embedder, tg__embedder_fields, es,
                            "embedder", err, errlen);
}


/* "unix:/path", or "host:port" / "[v6]:port" with a port 1..65535. */
static int
tg__valid_addr(const char *s)
{
    const char  *colon, *end;
    char        *stop;
    long         port;
    size_t       hlen;

    if (strncmp(s, "unix:", 5) == 0) {
        return s[5] == '/';
    }

    colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0') {
        return 0;
    }
    port = strtol(colon + 1, &stop, 10);
    if (*stop != '\0' || port < 1 || port > 65535 || colon[1] == '-'
        || colon[1] == '+' || colon[1] == ' ')
    {
        return 0;
    }

    hlen = (size_t) (colon - s);
    if (s[0] == '[') {
        end = memchr(s, ']', hlen);
        return end != NULL && end == colon - 1 && hlen > 2;
    }
    return memchr(s, ':', hlen) == NULL
           && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789.-_") == hlen;
}


const char *
tg_generation_plugin(const tg_generation_t *g, size_t i)
{
    if (g->plugins == NULL || i >= g->nplugins) {
        return NULL;
    }
    return json_string_value(json_array_get(g->plugins, i));
}
