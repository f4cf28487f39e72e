/*
 * Configuration documents and generations (engine/config/generation.c):
 * parsing, defaults, unknown-key refusal naming the key, bad values,
 * plugins and Redis settings,
 * dedupe of identical documents, reference counting, shared backend
 * counters.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "config/generation.h"
#include "log.h"
#include "route/pool.h"

#define B0  "{\"name\":\"b0\",\"url\":\"http://127.0.0.1:8000/\"," \
            "\"model\":\"QwQ\",\"max_inflight\":4,\"api_key_env\":\"\"," \
            "\"connect_timeout_ms\":1000,\"idle_timeout_ms\":0," \
            "\"tls_verify\":true,\"skills\":{\"math\":0.9}}"
#define B1  "{\"name\":\"b1\",\"url\":\"https://h:9\",\"model\":null}"
#define P0  "{\"name\":\"p\",\"backends\":[\"b0\",\"b1\"]," \
            "\"policy\":\"round_robin\",\"block\":16,\"ttl_ms\":1000}"
#define DOC "{\"backends\":[" B0 "," B1 "],\"pools\":[" P0 "]," \
            "\"plugins\":[],\"redis\":null}"

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


static int
acquire(const char *doc, tg_generation_t **g, char *err, size_t len)
{
    return tg_config_acquire(&cf, doc, strlen(doc), g, err, len);
}


Test(config, parses_a_full_document, .init = setup, .fini = teardown)
{
    tg_generation_t  *g;
    tg_backend_t     *b;
    tg_pool_t        *p;
    char              err[256];

    cr_assert_eq(acquire(DOC, &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->nbackends, 2);
    cr_assert_eq(g->npools, 1);

    b = tg_generation_backend(g, "b0");
    cr_assert_not_null(b);
    cr_assert_str_eq(b->url, "http://127.0.0.1:8000");
    cr_assert_str_eq(b->model, "QwQ");
    cr_assert_null(b->api_key_env);
    cr_assert_eq(b->max_inflight, 4);
    cr_assert_eq(b->connect_timeout_ms, 1000);
    cr_assert_eq(b->tls_verify, 1);
    cr_assert_not_null(b->skills);

    b = tg_generation_backend(g, "b1");
    cr_assert_null(b->model);
    cr_assert_eq(b->max_inflight, 0);
    cr_assert_eq(b->tls_verify, 1, "TLS verification is on by default");

    p = tg_generation_pool(g, "p");
    cr_assert_not_null(p);
    cr_assert_eq(p->nbackends, 2);
    cr_assert_eq(p->backends[0], tg_generation_backend(g, "b0"));
    cr_assert_eq(p->policy, TG_POOL_ROUND_ROBIN);
    cr_assert_null(tg_generation_pool(g, "nope"));

    tg_generation_release(g);
    cr_assert_eq(cf.ngenerations, 0);
    cr_assert(tg_queue_empty(&cf.stats),
              "backend counters go with the generation");
}


typedef struct {
    const char  *doc;
    const char  *needle;    /* must appear in the message */
} bad_doc_t;

static const bad_doc_t  bad_docs[] = {
    { "", "not valid JSON" },
    { "[]", "must be a JSON object" },
    { "{\"backendz\":[]}", "\"backendz\"" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\",\"colour\":1}]}",
      "\"colour\"" },
    { "{\"backends\":[],\"pools\":[{\"name\":\"p\",\"backends\":[],"
      "\"extra\":true}]}", "\"extra\"" },
    { "{\"backends\":{}}", "backends" },
    { "{\"backends\":[{\"url\":\"http://x\"}]}", "\"name\" is required" },
    { "{\"backends\":[{\"name\":\"a\"}]}", "\"url\" is required" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"ftp://x\"}]}", "http://" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\","
      "\"max_inflight\":-1}]}", "max_inflight" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\","
      "\"max_inflight\":\"9\"}]}", "max_inflight" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\","
      "\"tls_verify\":\"no\"}]}", "tls_verify" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\","
      "\"skills\":{\"math\":\"high\"}}]}", "math" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\"},"
      "{\"name\":\"a\",\"url\":\"http://y\"}]}", "duplicate backend" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\"}],"
      "\"pools\":[{\"name\":\"p\",\"backends\":[\"zz\"]}]}", "\"zz\"" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\"}],"
      "\"pools\":[{\"name\":\"p\",\"backends\":[]}]}", "non-empty" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\"}],"
      "\"pools\":[{\"name\":\"p\",\"backends\":[\"a\"],"
      "\"policy\":\"random\"}]}", "policy" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\"}],"
      "\"pools\":[{\"name\":\"p\",\"backends\":[\"a\",\"a\"]}]}", "twice" },
    { "{\"backends\":[{\"name\":\"a\",\"url\":\"http://x\"}],"
      "\"pools\":[{\"name\":\"p\",\"backends\":[\"a\"]},"
      "{\"name\":\"p\",\"backends\":[\"a\"]}]}", "duplicate pool" },
    { "{\"backends\":[],\"backends\":[]}", "not valid JSON" },
    { "{\"plugins\":{}}", "plugins" },
    { "{\"plugins\":[1]}", "\"plugins\"[0] must be a string" },
    { "{\"plugins\":[\"ffs\",\"\"]}", "\"plugins\"[1]" },
    { "{\"plugins\":[\"../evil\"]}", "\"../evil\" is not a plugin name" },
    { "{\"plugins\":[\"FFS\"]}", "\"FFS\"" },
    { "{\"plugins\":[\"" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
      "\"]}", "not a plugin name" },
    { "{\"plugins\":[\"ffs\",\"sc\",\"ffs\"]}", "\"ffs\" twice" },
    { "{\"redis\":[]}", "\"redis\" must be an object or null" },
    { "{\"redis\":\"127.0.0.1:6379\"}", "\"redis\" must be an object" },
    { "{\"redis\":{}}", "redis: \"addr\" is required" },
    { "{\"redis\":{\"addr\":\"h:1\",\"port\":1}}",
      "unknown key \"port\" in redis" },
    { "{\"redis\":{\"addr\":\"localhost\"}}", "\"addr\" must be" },
    { "{\"redis\":{\"addr\":\"h:0\"}}", "\"addr\"" },
    { "{\"redis\":{\"addr\":\"h:65536\"}}", "\"addr\"" },
    { "{\"redis\":{\"addr\":\"a:b:1\"}}", "\"addr\"" },
    { "{\"redis\":{\"addr\":\"unix:rel\"}}", "\"addr\"" },
    { "{\"redis\":{\"addr\":6379}}", "\"addr\"" },
    { "{\"redis\":{\"addr\":\"h:1\",\"db\":65536}}",
      "\"db\" must be an integer from 0 to 65535" },
    { "{\"redis\":{\"addr\":\"h:1\",\"db\":\"1\"}}", "\"db\"" },
    { "{\"redis\":{\"addr\":\"h:1\",\"prefix\":7}}", "\"prefix\"" },
    { "{\"redis\":{\"addr\":\"h:1\",\"password_env\":true}}",
      "\"password_env\"" },
    { "{\"redis\":{\"addr\":\"h:1\",\"timeout_ms\":0}}",
      "\"timeout_ms\" must be an integer from 1" },
    { "{\"redis\":{\"addr\":\"h:1\",\"connect_timeout_ms\":-5}}",
      "\"connect_timeout_ms\"" },
    { "{\"embedder\":[]}", "\"embedder\" must be an object or null" },
    { "{\"embedder\":{}}", "embedder: \"path\" is required" },
    { "{\"embedder\":{\"path\":\"\"}}", "\"path\" must be a non-empty" },
    { "{\"embedder\":{\"path\":\"/m\",\"batch\":4}}",
      "unknown key \"batch\" in embedder" },
    { "{\"embedder\":{\"path\":\"/m\",\"threads\":0}}",
      "\"threads\" must be an integer from 1 to 64" },
    { "{\"embedder\":{\"path\":\"/m\",\"threads\":65}}",
      "\"threads\" must be an integer from 1 to 64" },
    { "{\"embedder\":{\"path\":\"/m\",\"max_batch\":4097}}",
      "\"max_batch\" must be an integer from 1 to 4096" },
    { "{\"embedder\":{\"path\":\"/m\",\"device\":\"gpu\"}}",
      "\"device\" must be \"auto\", \"cpu\" or \"cuda\"" },
    { "{\"embedder\":{\"path\":\"/m\",\"device\":1}}", "\"device\"" },
    { "{\"strategies\":{}}", "\"strategies\" must be an array" },
    { "{\"strategies\":[\"ffs n=8\"]}",
      "\"strategies\"[0] must be an object" },
    { "{\"strategies\":[{\"strategy\":\"ffs\",\"where\":\"x\"},"
      "{\"strategy\":\"sc\"}]}", "\"strategies\"[1]" },
    { "{\"locations\":{}}", "\"locations\" must be an array" },
    { "{\"locations\":[{},3]}", "\"locations\"[1] must be an object" },
    { "{\"locations\":[{\"pool\":\"nope\"}]}",
      "\"locations\"[0] names unknown pool \"nope\"" },
    { "{\"locations\":[{\"pool\":\"\"}]}",
      "\"pool\" must be a non-empty string" },
    { "{\"locations\":[{\"strategy\":1}]}",
      "\"strategy\" must be a string" },
    { "{\"locations\":[{\"timeout_ms\":-1}]}",
      "\"timeout_ms\" must be an integer of at least 0" },
    { "{\"locations\":[{\"max_body\":\"1k\"}]}",
      "\"max_body\" must be an integer" },
    { "{\"locations\":[{\"session\":1}]}",
      "\"session\" must be true or false" },
    { "{\"locations\":[{\"effort\":[]}]}",
      "\"effort\" must be an object" },
    { "{\"locations\":[{\"effort\":{\"low\":64}}]}",
      "\"effort\" level \"low\" must be a string" },
    { "{\"locations\":[{\"loc\":0}]}",
      "unknown key \"loc\"" },
};


Test(config, refuses_bad_documents_naming_the_problem, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];
    size_t            i;

    for (i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
        cr_assert_eq(acquire(bad_docs[i].doc, &g, err, sizeof(err)), -EINVAL,
                     "accepted %s", bad_docs[i].doc);
        cr_assert_null(g);
        cr_assert_not_null(strstr(err, bad_docs[i].needle),
                           "%s: message \"%s\" lacks \"%s\"", bad_docs[i].doc,
                           err, bad_docs[i].needle);
    }
    cr_assert_eq(cf.ngenerations, 0);
    cr_assert(tg_queue_empty(&cf.stats),
              "a refused document leaks no counters");
}


Test(config, identical_documents_share_a_generation, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *a, *b, *c, *d;
    char              err[256];
    const char       *reordered = "{\"redis\":null,\"plugins\":[],"
        "\"pools\":[" P0 "],\"backends\":[" B0 ",  " B1 "]}";
    const char       *other = "{\"backends\":[" B0 "],\"pools\":[]}";

    cr_assert_eq(acquire(DOC, &a, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(acquire(reordered, &b, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(a, b, "same keys and values in another order dedupe");
    cr_assert_eq(a->refs, 2);
    cr_assert_eq(cf.ngenerations, 1);

    cr_assert_eq(acquire(other, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_neq(a, c);
    cr_assert_neq(a->id, c->id);
    cr_assert_eq(cf.ngenerations, 2);

    /* The same backend (name and URL) in two generations shares its
     * counters, so max_inflight holds across a reload. */
    cr_assert_eq(tg_generation_backend(a, "b0")->stats,
                 tg_generation_backend(c, "b0")->stats);
    tg_generation_backend(a, "b0")->stats->in_flight = 3;
    cr_assert_eq(tg_generation_backend(c, "b0")->stats->in_flight, 3);
    tg_generation_backend(a, "b0")->stats->in_flight = 0;

    /* Refcounts: a request holding the old generation keeps it alive. */
    tg_generation_ref(a);
    tg_generation_release(a);
    tg_generation_release(b);
    cr_assert_eq(cf.ngenerations, 2);
    tg_generation_release(a);
    cr_assert_eq(cf.ngenerations, 1);

    /* Once freed, the same document makes a fresh generation. */
    cr_assert_eq(acquire(DOC, &d, err, sizeof(err)), 0, "%s", err);
    cr_assert_gt(d->id, c->id);
    cr_assert_eq(cf.ngenerations, 2);
    tg_generation_release(d);
    tg_generation_release(c);
    cr_assert_eq(cf.ngenerations, 0);
}


Test(config, empty_document_is_valid, .init = setup, .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];

    cr_assert_eq(acquire("{}", &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->nbackends, 0);
    cr_assert_eq(g->npools, 0);
    tg_generation_release(g);
}


Test(pool, least_in_flight_respects_max_and_exclusions, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    tg_pool_t        *p;
    tg_backend_t     *a, *b, *got, *ex[1];
    char              err[256];
    int               full, i, na = 0, nb = 0;
    const char       *doc = "{\"backends\":["
        "{\"name\":\"a\",\"url\":\"http://a\",\"max_inflight\":2},"
        "{\"name\":\"b\",\"url\":\"http://b\",\"max_inflight\":1}],"
        "\"pools\":[{\"name\":\"p\",\"backends\":[\"a\",\"b\"]}]}";

    cr_assert_eq(acquire(doc, &g, err, sizeof(err)), 0, "%s", err);
    p = tg_generation_pool(g, "p");
    a = tg_generation_backend(g, "a");
    b = tg_generation_backend(g, "b");

    /* Equal load: ties rotate, so both get picked. */
    for (i = 0; i < 10; i++) {
        got = tg_pool_pick(p, NULL, 0, &full);
        na += got == a;
        nb += got == b;
    }
    cr_assert(na > 0 && nb > 0);

    /* The less loaded one wins. */
    tg_backend_started(a);
    cr_assert_eq(tg_pool_pick(p, NULL, 0, &full), b);
    tg_backend_started(b);              /* b now full (1) */
    cr_assert_eq(tg_pool_pick(p, NULL, 0, &full), a);
    tg_backend_started(a);              /* a now full (2) */
    cr_assert_null(tg_pool_pick(p, NULL, 0, &full));
    cr_assert_eq(full, 1, "all full reads as full, not as none left");

    /* Exclusion (a backend that refused) is not "full". */
    tg_backend_finished(a, 1, NULL);
    ex[0] = a;
    cr_assert_null(tg_pool_pick(p, ex, 1, &full));
    cr_assert_eq(full, 1);
    tg_backend_finished(b, 0, NULL);
    cr_assert_eq(tg_pool_pick(p, ex, 1, &full), b);
    ex[0] = b;
    tg_backend_finished(a, 0, NULL);
    cr_assert_eq(tg_pool_pick(p, ex, 1, &full), a);

    cr_assert_eq(a->stats->requests, 2);
    cr_assert_eq(a->stats->errors, 1);
    cr_assert_eq(a->stats->in_flight, 0);
    tg_generation_release(g);
}


Test(pool, round_robin_cycles, .init = setup, .fini = teardown)
{
    tg_generation_t  *g;
    tg_pool_t        *p;
    char              err[256];
    int               full, i;
    tg_backend_t     *first, *got;
    const char       *doc = "{\"backends\":["
        "{\"name\":\"a\",\"url\":\"http://a\"},"
        "{\"name\":\"b\",\"url\":\"http://b\"},"
        "{\"name\":\"c\",\"url\":\"http://c\"}],"
        "\"pools\":[{\"name\":\"p\",\"backends\":[\"a\",\"b\",\"c\"],"
        "\"policy\":\"round_robin\"}]}";

    cr_assert_eq(acquire(doc, &g, err, sizeof(err)), 0, "%s", err);
    p = tg_generation_pool(g, "p");
    first = tg_pool_pick(p, NULL, 0, &full);
    tg_backend_started(first);         /* load does not matter here */
    for (i = 1; i < 6; i++) {
        got = tg_pool_pick(p, NULL, 0, &full);
        cr_assert_eq(got, p->backends[(first - g->backends + i) % 3]);
    }
    tg_backend_finished(first, 0, NULL);
    tg_generation_release(g);
}


/* A request's preferred backend (prefix holder, session backend) wins
 * while it is in the pool, not excluded and below its max_inflight. */
Test(pool, preferred_backend_while_it_has_slots, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    tg_pool_t        *p, *q;
    tg_backend_t     *a, *b, *c, *ex[1];
    char              err[256];
    int               full, i;
    const char       *doc = "{\"backends\":["
        "{\"name\":\"a\",\"url\":\"http://a\",\"max_inflight\":2},"
        "{\"name\":\"b\",\"url\":\"http://b\"},"
        "{\"name\":\"c\",\"url\":\"http://c\"}],"
        "\"pools\":[{\"name\":\"p\",\"backends\":[\"a\",\"b\"],"
        "\"policy\":\"prefix\"},"
        "{\"name\":\"q\",\"backends\":[\"c\"]}]}";

    cr_assert_eq(acquire(doc, &g, err, sizeof(err)), 0, "%s", err);
    p = tg_generation_pool(g, "p");
    q = tg_generation_pool(g, "q");
    a = tg_generation_backend(g, "a");
    b = tg_generation_backend(g, "b");
    c = tg_generation_backend(g, "c");
    cr_assert_eq(p->policy, TG_POOL_PREFIX);

    /* Preferred although more loaded than b. */
    tg_backend_started(a);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(tg_pool_pick_prefer(p, a, NULL, 0, &full), a);
    }
    /* Full: the pool's own pick. */
    tg_backend_started(a);
    cr_assert_eq(tg_pool_pick_prefer(p, a, NULL, 0, &full), b);
    tg_backend_finished(a, 0, NULL);
    /* Excluded (it refused the connection): the others. */
    ex[0] = a;
    cr_assert_eq(tg_pool_pick_prefer(p, a, ex, 1, &full), b);
    /* Not a member of this pool (an aux pool): ignored. */
    cr_assert_eq(tg_pool_pick_prefer(q, a, NULL, 0, &full), c);
    /* No preference: plain least in flight. */
    cr_assert_eq(tg_pool_pick_prefer(p, NULL, NULL, 0, &full), b);

    tg_backend_finished(a, 0, NULL);
    tg_generation_release(g);
}


Test(config, plugins_and_redis_as_the_module_writes_them, .init = setup,
     .fini = teardown)
{
    tg_generation_t            *g;
    const tg_redis_settings_t  *r;
    char                        err[256];
    const char                 *doc = "{\"backends\":[],\"pools\":[],"
        "\"plugins\":[\"ffs\",\"self_consistency\",\"trimr2\"],"
        "\"redis\":{\"addr\":\"127.0.0.1:6379\",\"db\":3,"
        "\"prefix\":\"gw1:\",\"password_env\":\"REDIS_PW\","
        "\"connect_timeout_ms\":1500,\"timeout_ms\":250}}";
    char                       *allowed[] = { "REDIS_PW" };

    /* As thinkgated --allow-env REDIS_PW. */
    cf.allowed_env = allowed;
    cf.nallowed_env = 1;
    cr_assert_eq(acquire(doc, &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->nplugins, 3);
    cr_assert_str_eq(tg_generation_plugin(g, 0), "ffs");
    cr_assert_str_eq(tg_generation_plugin(g, 1), "self_consistency");
    cr_assert_str_eq(tg_generation_plugin(g, 2), "trimr2");
    cr_assert_null(tg_generation_plugin(g, 3));

    cr_assert_not_null(g->redis);
    r = &g->redis_settings;
    cr_assert_str_eq(r->addr, "127.0.0.1:6379");
    cr_assert_eq(r->db, 3);
    cr_assert_str_eq(r->prefix, "gw1:");
    cr_assert_str_eq(r->password_env, "REDIS_PW");
    cr_assert_eq(r->connect_timeout_ms, 1500);
    cr_assert_eq(r->timeout_ms, 250);
    tg_generation_release(g);
}


/* Issue 14, bug 3: a document names only THINKGATE_* or --allow-env
 * variables, whoever sends it. */
Test(config, env_variables_only_allowed_ones, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];
    char             *allowed[] = { "OPERATOR_KEY" };

    cr_assert_neq(acquire("{\"backends\":[{\"name\":\"b0\",\"url\":"
                          "\"http://h:1\",\"api_key_env\":\"SHELL\"}],"
                          "\"pools\":[]}", &g, err, sizeof(err)), 0);
    cr_assert(strstr(err, "api_key_env \"SHELL\" is not allowed") != NULL,
              "%s", err);
    cr_assert_neq(acquire("{\"backends\":[],\"pools\":[],\"redis\":"
                          "{\"addr\":\"h:1\",\"password_env\":\"HOME\"}}",
                          &g, err, sizeof(err)), 0);
    cr_assert(strstr(err, "password_env \"HOME\" is not allowed") != NULL,
              "%s", err);

    cr_assert(tg_config_env_allowed(&cf, "THINKGATE_KEY"));
    cr_assert(!tg_config_env_allowed(&cf, "THINKGATE_"));
    cr_assert(!tg_config_env_allowed(&cf, "OPERATOR_KEY"));
    cf.allowed_env = allowed;
    cf.nallowed_env = 1;
    cr_assert(tg_config_env_allowed(&cf, "OPERATOR_KEY"));
    cr_assert(!tg_config_env_allowed(&cf, "OPERATOR_KEY2"));
}


Test(config, redis_defaults_unix_address_and_empty_strings, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];

    cr_assert_eq(acquire("{\"redis\":{\"addr\":\"unix:/run/redis.sock\"}}",
                         &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(g->redis_settings.addr, "unix:/run/redis.sock");
    cr_assert_eq(g->redis_settings.db, 0);
    cr_assert_str_eq(g->redis_settings.prefix, "tg:");
    cr_assert_null(g->redis_settings.password_env);
    cr_assert_eq(g->redis_settings.connect_timeout_ms, 1000);
    cr_assert_eq(g->redis_settings.timeout_ms, 200);
    tg_generation_release(g);

    /* the module writes "" for an unset password_env, and prefix= may
     * be empty */
    cr_assert_eq(acquire("{\"redis\":{\"addr\":\"[::1]:6380\","
                         "\"prefix\":\"\",\"password_env\":\"\"}}",
                         &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(g->redis_settings.addr, "[::1]:6380");
    cr_assert_null(g->redis_settings.prefix);
    cr_assert_null(g->redis_settings.password_env);
    tg_generation_release(g);
}


Test(config, no_plugins_and_no_redis, .init = setup, .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];

    cr_assert_eq(acquire(DOC, &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->nplugins, 0);
    cr_assert_null(tg_generation_plugin(g, 0));
    cr_assert_null(g->redis, "\"redis\": null reads as no Redis");
    tg_generation_release(g);

    cr_assert_eq(acquire("{\"plugins\":null}", &g, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(g->nplugins, 0);
    cr_assert_null(g->plugins);
    cr_assert_null(g->redis);
    tg_generation_release(g);
}


/* "strategies" (thinkgate_strategy texts) are read as they come; the
 * strategy layer parses and checks them at registration. */
Test(config, strategies_as_the_module_writes_them, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];

    cr_assert_eq(acquire("{\"strategies\":[{\"strategy\":\"ffs n=8\","
                         "\"where\":\"location /a/ at t.conf:3\"},"
                         "{\"strategy\":\"passthrough\","
                         "\"where\":\"t.conf:1\"}]}",
                         &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->nstrategies, 2);
    cr_assert_str_eq(g->strategies[0].text, "ffs n=8");
    cr_assert_str_eq(g->strategies[0].where, "location /a/ at t.conf:3");
    cr_assert_str_eq(g->strategies[1].text, "passthrough");
    cr_assert_null(g->strategies[0].parsed);
    tg_generation_release(g);

    cr_assert_eq(acquire("{\"strategies\":[]}", &g, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(g->nstrategies, 0);
    tg_generation_release(g);
}


/* "locations": what every request of a location shares, by index; a
 * member left out reads as absent. */
Test(config, locations_as_the_module_writes_them, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];
    tg_location_t    *l;

    cr_assert_eq(acquire("{\"backends\":[" B0 "],\"pools\":[{\"name\":"
                         "\"p\",\"backends\":[\"b0\"]}],\"locations\":["
                         "{\"pool\":\"p\",\"strategy\":\"ffs n=2\","
                         "\"effort\":{\"low\":\"budget=64\"},"
                         "\"client_strategy\":true,\"timeout_ms\":7000,"
                         "\"deadline_ms\":0,\"max_body\":2048,"
                         "\"session\":false},{}]}",
                         &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->nlocations, 2);
    l = &g->locations[0];
    cr_assert_str_eq(l->pool, "p");
    cr_assert_str_eq(l->strategy, "ffs n=2");
    cr_assert_eq(l->has_effort, 1);
    cr_assert_str_eq(json_string_value(json_object_get(
        json_object_get(l->obj, "effort"), "low")), "budget=64");
    cr_assert_eq(l->client_strategy, 1);
    cr_assert_eq(l->timeout_ms, 7000);
    cr_assert_eq(l->deadline_ms, 0);
    cr_assert_eq(l->max_body, 2048);
    cr_assert_eq(l->session, 0);
    l = &g->locations[1];
    cr_assert_null(l->pool);
    cr_assert_null(l->strategy);
    cr_assert_eq(l->has_effort, 0);
    cr_assert_eq(l->timeout_ms, -1);
    cr_assert_eq(l->deadline_ms, -1);
    cr_assert_eq(l->max_body, -1);
    tg_generation_release(g);

    cr_assert_eq(acquire("{\"locations\":[]}", &g, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_eq(g->nlocations, 0);
    tg_generation_release(g);
}


Test(config, plugins_and_redis_take_part_in_dedupe, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *a, *b;
    char              err[256];

    cr_assert_eq(acquire("{\"plugins\":[\"ffs\"],\"redis\":null}", &a, err,
                         sizeof(err)), 0, "%s", err);
    cr_assert_eq(acquire("{\"plugins\":[\"ffs\"],\"redis\":"
                         "{\"addr\":\"h:1\"}}", &b, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_neq(a, b, "another Redis is another generation");
    tg_generation_release(a);
    tg_generation_release(b);
}


Test(config, embedder_as_the_module_writes_it_and_defaults, .init = setup,
     .fini = teardown)
{
    tg_generation_t               *g;
    const tg_embedder_settings_t  *es;
    char                           err[256];

    cr_assert_eq(acquire("{\"embedder\":{\"path\":\"/models/minilm\","
                         "\"threads\":4,\"device\":\"cuda\","
                         "\"max_batch\":128}}", &g, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_not_null(g->embedder);
    es = &g->embedder_settings;
    cr_assert_str_eq(es->path, "/models/minilm");
    cr_assert_eq(es->threads, 4);
    cr_assert_eq(es->device, 2);
    cr_assert_eq(es->max_batch, 128);
    tg_generation_release(g);

    /* keys left out take the module's defaults */
    cr_assert_eq(acquire("{\"embedder\":{\"path\":\"/m\"}}", &g, err,
                         sizeof(err)), 0, "%s", err);
    es = &g->embedder_settings;
    cr_assert_eq(es->threads, 1);
    cr_assert_eq(es->device, 0);
    cr_assert_eq(es->max_batch, 64);
    tg_generation_release(g);

    cr_assert_eq(acquire("{\"embedder\":null}", &g, err, sizeof(err)), 0,
                 "%s", err);
    cr_assert_null(g->embedder);
    tg_generation_release(g);
}
