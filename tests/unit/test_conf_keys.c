/*
 * The shared schema of thinkgate_backend, thinkgate_pool, thinkgate_redis
 * and thinkgate_embedder (include/thinkgate/conf_keys.h) and the engine's
 * reading of documents by it (engine/config/fields.c): the table is well
 * formed, and for every row a document that leaves the key out gets the
 * default, values at the bounds are kept, values past them and of the
 * wrong type are refused naming the key, and an unknown key is refused by
 * name.  A "kind" is the table: 0 backends, 1 pools, 2 redis, 3 embedder.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"
#include "log.h"

#define BACKEND  "\"name\":\"b0\",\"url\":\"http://127.0.0.1:9\""
#define POOL     "\"name\":\"p\",\"backends\":[\"b0\"]"
#define KINDS    4

static tg_config_t  cf;

static void
setup(void)
{
    tg_log_level = TG_LOG_ERROR;
    tg_config_init(&cf);
}

static void
teardown(void)
{
    tg_config_free(&cf);
}


/* A document with a backend, a pool, Redis and an embedder, the kind's
 * object with extra keys. */
static int
acquire(int kind, const char *extra, tg_generation_t **g, char *err,
    size_t errlen)
{
    char         doc[1024];
    const char  *x[KINDS] = { "", "", "", "" };

    x[kind] = extra;
    snprintf(doc, sizeof(doc),
             "{\"backends\":[{" BACKEND "%s%s}],\"pools\":[{" POOL "%s%s}],"
             "\"redis\":{\"addr\":\"h:1\"%s%s},"
             "\"embedder\":{\"path\":\"/m\"%s%s}}",
             x[0][0] ? "," : "", x[0], x[1][0] ? "," : "", x[1],
             x[2][0] ? "," : "", x[2], x[3][0] ? "," : "", x[3]);
    *g = NULL;
    return tg_config_acquire(&cf, doc, strlen(doc), g, err, errlen);
}


static const tg_conf_key_t *
rows(int kind)
{
    static const tg_conf_key_t  *r[KINDS] = {
        tg_config_backend_keys, tg_config_pool_keys, tg_config_redis_keys,
        tg_config_embedder_keys
    };

    return r[kind];
}


static size_t
offset(int kind, size_t i)
{
    static const size_t  *o[KINDS] = {
        tg_config_backend_offsets, tg_config_pool_offsets,
        tg_config_redis_offsets, tg_config_embedder_offsets
    };

    return o[kind][i];
}


static const char *
slot(tg_generation_t *g, int kind, size_t i)
{
    const char  *base[KINDS] = {
        (const char *) &g->backends[0], (const char *) &g->pools[0],
        (const char *) &g->redis_settings,
        (const char *) &g->embedder_settings
    };

    return base[kind] + offset(kind, i);
}


static size_t
nkeys(int kind)
{
    static const size_t  n[KINDS] = {
        TG_CONF_BACKEND_NKEYS, TG_CONF_POOL_NKEYS, TG_CONF_REDIS_NKEYS,
        TG_CONF_EMBEDDER_NKEYS
    };

    return n[kind];
}


static size_t
nwords(const char **words)
{
    size_t  n;

    for (n = 0; words[n] != NULL; n++) {
        /* count */
    }
    return n;
}


static int
numeric(const tg_conf_key_t *k)
{
    return k->type == TG_KEY_COUNT || k->type == TG_KEY_MSEC
           || k->type == TG_KEY_PERCENT;
}


Test(conf_keys, the_table_is_well_formed)
{
    const tg_conf_key_t  *k, *o;
    const char           *policies[] = TG_CONF_POLICIES;
    const char           *devices[] = TG_CONF_DEVICES;
    size_t                n, w;
    int                   kind;

    for (kind = 0; kind < KINDS; kind++) {
        n = 0;
        for (k = rows(kind); k->name != NULL; k++, n++) {
            cr_assert_not_null(k->doc_key, "%s", k->name);
            cr_assert_not_null(k->why, "%s", k->name);
            cr_assert_gt(strlen(k->why), 0, "%s", k->name);
            /* a row without a place: 0 is where the name (the address,
             * the path) lives */
            cr_assert_neq(offset(kind, n), 0, "%s has no offset", k->name);
            for (o = rows(kind); o != k; o++) {
                cr_assert_str_neq(o->name, k->name);
                cr_assert_str_neq(o->doc_key, k->doc_key);
            }
            if (numeric(k)) {
                cr_assert_leq(k->min, k->def, "%s: default below min",
                              k->name);
                cr_assert(k->max == 0 || k->def <= k->max,
                          "%s: default above max", k->name);
            }
            if (k->type == TG_KEY_POLICY || k->type == TG_KEY_DEVICE) {
                w = nwords(k->type == TG_KEY_POLICY ? policies : devices);
                cr_assert_eq(k->max, (int64_t) w - 1);
                cr_assert_lt(k->def, (int64_t) w);
            }
            if (k->sdef != NULL) {
                cr_assert(k->type == TG_KEY_TEXT, "%s", k->name);
                cr_assert_leq((int64_t) strlen(k->sdef), k->max);
            }
        }
        cr_assert_eq(n, nkeys(kind));
    }
}


Test(conf_keys, a_key_left_out_gets_its_default, .init = setup,
     .fini = teardown)
{
    const tg_conf_key_t  *k;
    tg_generation_t      *g;
    char                  err[256];
    const char           *s;
    size_t                i;
    int                   kind;

    cr_assert_eq(acquire(0, "", &g, err, sizeof(err)), 0, "%s", err);

    for (kind = 0; kind < KINDS; kind++) {
        for (i = 0, k = rows(kind); k->name != NULL; i++, k++) {
            s = slot(g, kind, i);

            if (numeric(k)) {
                cr_assert_eq(*(const int64_t *) s,
                             (k->flags & TG_KEY_DOC_ZERO) ? 0 : k->def,
                             "%s", k->name);
            } else if (k->type == TG_KEY_FLAG || k->type == TG_KEY_POLICY
                       || k->type == TG_KEY_DEVICE)
            {
                cr_assert_eq(*(const int *) s, k->def, "%s", k->name);
            } else if (k->type == TG_KEY_SKILLS) {
                cr_assert_null(*(json_t * const *) s, "%s", k->name);
            } else if (k->sdef != NULL) {
                cr_assert_str_eq(*(const char * const *) s, k->sdef, "%s",
                                 k->name);
            } else {
                cr_assert_null(*(const char * const *) s, "%s", k->name);
            }
        }
    }

    /* the figures the module sends when nginx's parameters are left out */
    cr_assert_eq(g->pools[0].policy, TG_POOL_LEAST_INFLIGHT);
    cr_assert_eq(g->pools[0].block, 64);
    cr_assert_eq(g->pools[0].ttl_ms, 600000);
    cr_assert_eq(g->pools[0].window_ms, 1000);
    cr_assert_eq(g->backends[0].tls_verify, 1);
    cr_assert_eq(g->backends[0].health.interval_ms, 5000);
    cr_assert_eq(g->backends[0].health.cooloff_ms, 10000);
    cr_assert_eq(g->backends[0].max_inflight, 0, "unlimited when left out");
    cr_assert_str_eq(g->redis_settings.prefix, "tg:");
    cr_assert_eq(g->redis_settings.connect_timeout_ms, 1000);
    cr_assert_eq(g->redis_settings.timeout_ms, 200);
    cr_assert_eq(g->embedder_settings.threads, 1);
    cr_assert_eq(g->embedder_settings.device, 0);
    cr_assert_eq(g->embedder_settings.max_batch, 64);

    tg_generation_release(g);
}


/* value accepted and read back as want */
static void
accepts_number(int kind, size_t i, const tg_conf_key_t *k, int64_t value)
{
    tg_generation_t  *g;
    char              extra[128], err[256];

    snprintf(extra, sizeof(extra), "\"%s\":%lld", k->doc_key,
             (long long) value);
    cr_assert_eq(acquire(kind, extra, &g, err, sizeof(err)), 0,
                 "%s refused: %s", extra, err);
    cr_assert_eq(*(const int64_t *) slot(g, kind, i), value, "%s", extra);
    tg_generation_release(g);
}


static void
refuses(int kind, const char *key, const char *json, const char *needle)
{
    tg_generation_t  *g;
    char              extra[128], err[256];

    snprintf(extra, sizeof(extra), "\"%s\":%s", key, json);
    cr_assert_eq(acquire(kind, extra, &g, err, sizeof(err)), -EINVAL,
                 "%s accepted", extra);
    cr_assert_null(g);
    cr_assert_not_null(strstr(err, needle), "%s: \"%s\" lacks \"%s\"", extra,
                       err, needle);
}


Test(conf_keys, numbers_are_held_to_their_bounds, .init = setup,
     .fini = teardown)
{
    const tg_conf_key_t  *k;
    char                  json[32], needle[96];
    int64_t               lo;
    size_t                i;
    int                   kind, checked = 0;

    for (kind = 0; kind < KINDS; kind++) {
        for (i = 0, k = rows(kind); k->name != NULL; i++, k++) {
            if (!numeric(k)) {
                continue;
            }
            lo = (k->flags & TG_KEY_DOC_ZERO) ? 0 : k->min;

            accepts_number(kind, i, k, lo);
            snprintf(json, sizeof(json), "%lld", (long long) (lo - 1));
            snprintf(needle, sizeof(needle), "\"%s\" must be an integer",
                     k->doc_key);
            refuses(kind, k->doc_key, json, needle);
            refuses(kind, k->doc_key, "\"5\"", needle);
            refuses(kind, k->doc_key, "1.5", needle);

            if (k->max != 0) {
                accepts_number(kind, i, k, k->max);
                snprintf(json, sizeof(json), "%lld", (long long) k->max + 1);
                snprintf(needle, sizeof(needle), "\"%s\" must be an integer "
                         "from %lld to %lld", k->doc_key, (long long) lo,
                         (long long) k->max);
                refuses(kind, k->doc_key, json, needle);
            }
            checked++;
        }
    }
    cr_assert_geq(checked, 15);
}


Test(conf_keys, other_types_are_checked, .init = setup, .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];

    refuses(0, "model", "7", "\"model\" must be a string or null");
    refuses(0, "api_key_env", "[]", "\"api_key_env\"");
    refuses(0, "health", "\"health\"", "\"health\" must be a path");
    refuses(0, "tls_verify", "\"off\"", "\"tls_verify\" must be a boolean");
    refuses(0, "tls_ca", "\"ca.pem\"", "\"tls_ca\" must be a path");
    refuses(0, "native_effort", "2", "\"native_effort\" must be a boolean");
    refuses(0, "skills", "[1]", "\"skills\" must be an object");
    refuses(0, "skills", "{\"math\":\"high\"}", "skill \"math\"");
    refuses(1, "policy", "\"random\"", "\"policy\" must be "
            "\"least_inflight\", \"round_robin\", \"prefix\" or \"grouped\"");
    refuses(1, "policy", "1", "\"policy\"");
    refuses(2, "prefix", "7", "\"prefix\" must be a string or null");
    refuses(2, "prefix", "\"a b\"", "\"prefix\" must be at most 64 "
            "printable characters without spaces");
    refuses(2, "prefix", "\"" "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk"
            "kkkkkkkkkkkkkkkkk" "\"", "\"prefix\" must be at most 64");
    refuses(2, "password_env", "true", "\"password_env\"");
    refuses(3, "device", "\"gpu\"", "\"device\" must be \"auto\", \"cpu\" "
            "or \"cuda\"");
    refuses(3, "device", "2", "\"device\"");

    cr_assert_eq(acquire(0, "\"model\":\"m\",\"api_key_env\":\"\","
                         "\"health\":\"/h\",\"tls_verify\":false,"
                         "\"tls_ca\":\"/etc/tg/ca.pem\","
                         "\"native_effort\":1,\"skills\":{\"math\":0.5}",
                         &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(g->backends[0].model, "m");
    cr_assert_null(g->backends[0].api_key_env, "\"\" reads as none");
    cr_assert_str_eq(g->backends[0].health.path, "/h");
    cr_assert_eq(g->backends[0].tls_verify, 0);
    cr_assert_str_eq(g->backends[0].tls_ca, "/etc/tg/ca.pem");
    cr_assert_eq(g->backends[0].native_effort, 1);
    cr_assert_not_null(g->backends[0].skills);
    tg_generation_release(g);

    cr_assert_eq(acquire(1, "\"policy\":\"grouped\"", &g, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(g->pools[0].policy, TG_POOL_GROUPED);
    tg_generation_release(g);

    /* prefix= may be empty (no prefix): "" reads as none, as it does for
     * password_env; 64 printable characters are the most */
    cr_assert_eq(acquire(2, "\"prefix\":\"\",\"password_env\":\"\"", &g,
                         err, sizeof(err)), 0, "%s", err);
    cr_assert_null(g->redis_settings.prefix);
    cr_assert_null(g->redis_settings.password_env);
    tg_generation_release(g);
    cr_assert_eq(acquire(2, "\"prefix\":\"gw-1:{x}\"", &g, err,
                         sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(g->redis_settings.prefix, "gw-1:{x}");
    tg_generation_release(g);

    cr_assert_eq(acquire(3, "\"device\":\"cuda\"", &g, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(g->embedder_settings.device, 2);
    tg_generation_release(g);
}


Test(conf_keys, unknown_keys_are_refused_by_name, .init = setup,
     .fini = teardown)
{
    /* the nginx parameter's name is not its document key */
    refuses(0, "connect_timeout", "1000",
            "unknown key \"connect_timeout\" in backends[0]");
    refuses(0, "max_inflght", "1", "unknown key \"max_inflght\"");
    refuses(1, "ttl", "1000", "unknown key \"ttl\" in pools[0]");
    refuses(1, "shards", "2", "unknown key \"shards\"");
    refuses(2, "connect_timeout", "1000",
            "unknown key \"connect_timeout\" in redis");
    refuses(3, "batch", "4", "unknown key \"batch\" in embedder");
}
