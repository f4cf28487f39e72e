/*
 * The configuration document (include/thinkgate/protocol.h) read into a
 * generation.  Each object kind is a table of fields (name, kind,
 * required, offset); the other keys of a backend, a pool, Redis and the
 * embedder, with their bounds and defaults, are the schema the module
 * parses nginx's parameters by (thinkgate/conf_keys.h).  Unknown keys are refused by
 * name so that module and engine stay in step.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"

/* Each object's own fields; the rest are the schema's keys. */
static const tg_config_field_t  tg__backend_fields[] = {
    { "name", TG_CF_STR, 1, offsetof(tg_backend_t, name) },
    { "url", TG_CF_URL, 1, offsetof(tg_backend_t, url) },
    { NULL, 0, 0, 0 }
};

static const tg_config_field_t  tg__pool_fields[] = {
    { "name", TG_CF_STR, 1, offsetof(tg_pool_t, name) },
    { "backends", TG_CF_NAMES, 1, 0 },
    { NULL, 0, 0, 0 }
};

const tg_conf_key_t  tg_config_backend_keys[] = {
    TG_CONF_BACKEND_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

const size_t  tg_config_backend_offsets[TG_CONF_BACKEND_NKEYS] = {
    [TG_CONF_B_MODEL] = offsetof(tg_backend_t, model),
    [TG_CONF_B_MAX_INFLIGHT] = offsetof(tg_backend_t, max_inflight),
    [TG_CONF_B_API_KEY_ENV] = offsetof(tg_backend_t, api_key_env),
    [TG_CONF_B_CONNECT_TIMEOUT] = offsetof(tg_backend_t, connect_timeout_ms),
    [TG_CONF_B_IDLE_TIMEOUT] = offsetof(tg_backend_t, idle_timeout_ms),
    [TG_CONF_B_TLS_VERIFY] = offsetof(tg_backend_t, tls_verify),
    [TG_CONF_B_TLS_CA] = offsetof(tg_backend_t, tls_ca),
    [TG_CONF_B_NATIVE_EFFORT] = offsetof(tg_backend_t, native_effort),
    [TG_CONF_B_SKILLS] = offsetof(tg_backend_t, skills),
    [TG_CONF_B_HEALTH] = offsetof(tg_backend_t, health.path),
    [TG_CONF_B_INTERVAL] = offsetof(tg_backend_t, health.interval_ms),
    [TG_CONF_B_FAILS] = offsetof(tg_backend_t, health.fails),
    [TG_CONF_B_COOLOFF] = offsetof(tg_backend_t, health.cooloff_ms),
    [TG_CONF_B_ERROR_RATE] = offsetof(tg_backend_t, health.error_rate)
};

const tg_conf_key_t  tg_config_pool_keys[] = {
    TG_CONF_POOL_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

const size_t  tg_config_pool_offsets[TG_CONF_POOL_NKEYS] = {
    [TG_CONF_P_POLICY] = offsetof(tg_pool_t, policy),
    [TG_CONF_P_BLOCK] = offsetof(tg_pool_t, block),
    [TG_CONF_P_TTL] = offsetof(tg_pool_t, ttl_ms),
    [TG_CONF_P_WINDOW] = offsetof(tg_pool_t, window_ms)
};

/* Redis's address and the embedder's model directory; their other keys
 * are the schema's. */
static const tg_config_field_t  tg__redis_fields[] = {
    { "addr", TG_CF_ADDR, 1, offsetof(tg_redis_settings_t, addr) },
    { NULL, 0, 0, 0 }
};

static const tg_config_field_t  tg__embedder_fields[] = {
    { "path", TG_CF_STR, 1, offsetof(tg_embedder_settings_t, path) },
    { NULL, 0, 0, 0 }
};

const tg_conf_key_t  tg_config_redis_keys[] = {
    TG_CONF_REDIS_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

const size_t  tg_config_redis_offsets[TG_CONF_REDIS_NKEYS] = {
    [TG_CONF_R_DB] = offsetof(tg_redis_settings_t, db),
    [TG_CONF_R_PREFIX] = offsetof(tg_redis_settings_t, prefix),
    [TG_CONF_R_PASSWORD_ENV] = offsetof(tg_redis_settings_t, password_env),
    [TG_CONF_R_CONNECT_TIMEOUT] =
        offsetof(tg_redis_settings_t, connect_timeout_ms),
    [TG_CONF_R_TIMEOUT] = offsetof(tg_redis_settings_t, timeout_ms)
};

const tg_conf_key_t  tg_config_embedder_keys[] = {
    TG_CONF_EMBEDDER_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

const size_t  tg_config_embedder_offsets[TG_CONF_EMBEDDER_NKEYS] = {
    [TG_CONF_E_THREADS] = offsetof(tg_embedder_settings_t, threads),
    [TG_CONF_E_DEVICE] = offsetof(tg_embedder_settings_t, device),
    [TG_CONF_E_MAX_BATCH] = offsetof(tg_embedder_settings_t, max_batch)
};

static const char  *tg__strategy_keys[] = {
    "strategy", "where", "directive", NULL
};

static const char  *tg__top_keys[] = {
    "backends", "pools", "plugins", "redis", "embedder", "models",
    "strategies", "locations", NULL
};



static int tg__parse_backends(tg_generation_t *g, json_t *backends,
    char *err, size_t errlen);
static int tg__parse_pools(tg_generation_t *g, json_t *pools, char *err,
    size_t errlen);
static int tg__parse_pool_members(tg_generation_t *g, tg_pool_t *pool,
    json_t *names, const char *where, char *err, size_t errlen);
static int tg__parse_plugins(tg_generation_t *g, char *err, size_t errlen);
static int tg__parse_redis(tg_generation_t *g, char *err, size_t errlen);
static int tg__parse_embedder(tg_generation_t *g, char *err,
    size_t errlen);
static int tg__parse_strategies(tg_generation_t *g, char *err,
    size_t errlen);


int
tg_generation_parse(tg_generation_t *g, char *err, size_t errlen)
{
    json_t       *backends, *pools;
    int           rc;

    rc = tg_config_check_keys(g->root, tg__top_keys, "the configuration", err,
                              errlen);
    if (rc != 0) {
        return rc;
    }

    backends = json_object_get(g->root, "backends");
    pools = json_object_get(g->root, "pools");
    g->plugins = json_object_get(g->root, "plugins");
    g->redis = json_object_get(g->root, "redis");

    if (backends != NULL && !json_is_array(backends)) {
        return tg_config_fail(err, errlen, "\"backends\" must be an array");
    }
    if (pools != NULL && !json_is_array(pools)) {
        return tg_config_fail(err, errlen, "\"pools\" must be an array");
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
    if (rc == 0) {
        rc = tg__parse_strategies(g, err, errlen);
    }
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

    rc = tg__parse_backends(g, backends, err, errlen);
    if (rc != 0) {
        return rc;
    }
    rc = tg__parse_pools(g, pools, err, errlen);
    if (rc != 0) {
        return rc;
    }

    /* Aliases and locations name pools, so they come last. */
    rc = tg_generation_parse_models(g, err, errlen);
    if (rc != 0) {
        return rc;
    }
    return tg_generation_parse_locations(g, err, errlen);
}


/* "backends": each read by the schema, named once, given its counters. */
static int
tg__parse_backends(tg_generation_t *g, json_t *backends, char *err,
    size_t errlen)
{
    json_t       *v;
    size_t        i, j;
    char          where[64];
    int           rc;

    for (i = 0; i < g->nbackends; i++) {
        tg_backend_t  *b = &g->backends[i];

        v = json_array_get(backends, i);
        snprintf(where, sizeof(where), "backends[%zu]", i);

        rc = tg_config_parse_object(v, tg__backend_fields,
                                    tg_config_backend_keys,
                                    tg_config_backend_offsets, b, where, err,
                                    errlen);
        if (rc != 0) {
            return rc;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(g->backends[j].name, b->name) == 0) {
                return tg_config_fail(err, errlen, "duplicate backend \"%s\"",
                                      b->name);
            }
        }

        b->stats = tg_backend_stats_get(g->config, b->name, b->url);
        if (b->stats == NULL) {
            return -ENOMEM;
        }
        tg_health_configure(&b->stats->health, b->stats->name, &b->health);
    }

    return 0;
}


/* "pools": each read by the schema, its members resolved, named once. */
static int
tg__parse_pools(tg_generation_t *g, json_t *pools, char *err, size_t errlen)
{
    json_t       *v;
    size_t        i, j;
    char          where[64];
    int           rc;

    for (i = 0; i < g->npools; i++) {
        tg_pool_t  *p = &g->pools[i];

        v = json_array_get(pools, i);
        snprintf(where, sizeof(where), "pools[%zu]", i);

        rc = tg_config_parse_object(v, tg__pool_fields, tg_config_pool_keys,
                                    tg_config_pool_offsets, p, where, err,
                                    errlen);
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
                return tg_config_fail(err, errlen, "duplicate pool \"%s\"",
                                      p->name);
            }
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
        return tg_config_fail(err, errlen, "%s: \"backends\" must be a non-empty "
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
            return tg_config_fail(err, errlen, "%s: \"backends\" must hold "
                                  "strings", where);
        }
        b = tg_generation_backend(g, s);
        if (b == NULL) {
            return tg_config_fail(err, errlen, "%s: pool \"%s\" names unknown "
                                  "backend \"%s\"", where, pool->name, s);
        }
        for (j = 0; j < pool->nbackends; j++) {
            if (pool->backends[j] == b) {
                return tg_config_fail(err, errlen, "%s: pool \"%s\" names "
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
        return tg_config_fail(err, errlen, "\"plugins\" must be an array of "
                              "plugin names");
    }

    n = json_array_size(g->plugins);
    for (i = 0; i < n; i++) {
        s = json_string_value(json_array_get(g->plugins, i));
        if (s == NULL) {
            return tg_config_fail(err, errlen, "\"plugins\"[%zu] must be a "
                                  "string", i);
        }
        if (s[0] == '\0' || strlen(s) > 64
            || strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789_")
               != strlen(s))
        {
            return tg_config_fail(err, errlen, "\"plugins\"[%zu]: \"%.64s\" is "
                                  "not a plugin name (1 to 64 of a-z, 0-9, _)",
                                  i, s);
        }
        for (j = 0; j < i; j++) {
            t = json_string_value(json_array_get(g->plugins, j));
            if (strcmp(s, t) == 0) {
                return tg_config_fail(err, errlen, "\"plugins\" names \"%s\" "
                                      "twice", s);
            }
        }
    }
    g->nplugins = n;
    return 0;
}


/*
 * "strategies": [{"strategy": "ffs n=8", "where": "location /x at
 * nginx.conf:12", "directive": "thinkgate_effort high"}, ...], the
 * strategy texts of the configuration's thinkgate_strategy and
 * thinkgate_effort directives, each once per directive (absent: none;
 * "directive" absent: thinkgate_strategy).  Only the shape is read here;
 * the strategy layer checks each against its plugin when a worker
 * registers (serve/registration.c).
 */
static int
tg__parse_strategies(tg_generation_t *g, char *err, size_t errlen)
{
    json_t             *a, *o, *d;
    tg_loc_strategy_t  *s;
    size_t              i, n;
    char                where[48];
    int                 rc;

    a = json_object_get(g->root, "strategies");
    if (a == NULL) {
        return 0;
    }
    if (!json_is_array(a)) {
        return tg_config_fail(err, errlen, "\"strategies\" must be an array");
    }
    n = json_array_size(a);
    if (n == 0) {
        return 0;
    }
    g->strategies = calloc(n, sizeof(tg_loc_strategy_t));
    if (g->strategies == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        o = json_array_get(a, i);
        s = &g->strategies[i];
        s->text = json_string_value(json_object_get(o, "strategy"));
        s->where = json_string_value(json_object_get(o, "where"));
        d = json_object_get(o, "directive");
        s->directive = d ? json_string_value(d) : "thinkgate_strategy";
        if (!json_is_object(o) || s->text == NULL || s->where == NULL
            || s->directive == NULL || s->directive[0] == '\0')
        {
            return tg_config_fail(err, errlen, "\"strategies\"[%zu] must be "
                                  "an object with strings \"strategy\", "
                                  "\"where\" and \"directive\"", i);
        }
        snprintf(where, sizeof(where), "\"strategies\"[%zu]", i);
        rc = tg_config_check_keys(o, tg__strategy_keys, where, err, errlen);
        if (rc != 0) {
            return rc;
        }
        g->nstrategies = i + 1;
    }
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
        return tg_config_fail(err, errlen, "\"redis\" must be an object or "
                              "null");
    }

    return tg_config_parse_object(g->redis, tg__redis_fields,
                                  tg_config_redis_keys,
                                  tg_config_redis_offsets, r, "redis", err,
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
        return tg_config_fail(err, errlen, "\"embedder\" must be an object or "
                              "null");
    }

    return tg_config_parse_object(g->embedder, tg__embedder_fields,
                                  tg_config_embedder_keys,
                                  tg_config_embedder_offsets, es, "embedder",
                                  err, errlen);
}


const char *
tg_generation_plugin(const tg_generation_t *g, size_t i)
{
    if (g->plugins == NULL || i >= g->nplugins) {
        return NULL;
    }
    return json_string_value(json_array_get(g->plugins, i));
}
