/*
 * Model names in configuration generations (engine/config/models.c): the
 * document's "models" (thinkgate_model aliases), refusals naming the
 * problem, the walk GET /v1/models lists and routing by a request's
 * "model" reads (aliases, backends' model=, names a backend listed
 * itself), and which backends are still pending.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "config/generation.h"
#include "log.h"

/* Two pools: "big" of two backends serving QwQ, "small" of one backend
 * without model= (its names come from its own /v1/models). */
#define BACKENDS \
    "\"backends\":[" \
    "{\"name\":\"q1\",\"url\":\"http://h1:8000\",\"model\":\"QwQ-32B\"}," \
    "{\"name\":\"q2\",\"url\":\"http://h2:8000\",\"model\":\"QwQ-32B\"}," \
    "{\"name\":\"s\",\"url\":\"http://h3:8000\",\"model\":\"\"}]," \
    "\"pools\":[{\"name\":\"big\",\"backends\":[\"q1\",\"q2\"]}," \
    "{\"name\":\"small\",\"backends\":[\"s\"]}]"

#define DOC "{" BACKENDS ",\"models\":[" \
    "{\"name\":\"reasoner\",\"pool\":\"big\",\"model\":null}," \
    "{\"name\":\"gpt-4o\",\"pool\":\"small\",\"model\":\"Qwen/Qwen2.5-7B\"}]}"

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


/* Collects the walk's names into one comma-separated string. */
static int
collect(const tg_model_route_t *route, void *data)
{
    char  *s = data;

    if (s[0] != '\0') {
        strcat(s, ",");
    }
    strcat(s, route->name);
    strcat(s, "@");
    strcat(s, route->pool->name);
    return 0;
}


Test(models, aliases_as_the_module_writes_them, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              err[256];

    cr_assert_eq(acquire(DOC, &g, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(g->naliases, 2);
    cr_assert_str_eq(g->aliases[0].name, "reasoner");
    cr_assert_str_eq(g->aliases[0].pool->name, "big");
    cr_assert_null(g->aliases[0].model);
    cr_assert_str_eq(g->aliases[1].name, "gpt-4o");
    cr_assert_str_eq(g->aliases[1].pool->name, "small");
    cr_assert_str_eq(g->aliases[1].model, "Qwen/Qwen2.5-7B");
    tg_generation_release(g);

    /* "models" may be left out, null or empty */
    cr_assert_eq(acquire("{" BACKENDS "}", &g, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(g->naliases, 0);
    tg_generation_release(g);
    cr_assert_eq(acquire("{" BACKENDS ",\"models\":null}", &g, err,
                         sizeof(err)), 0, "%s", err);
    tg_generation_release(g);
    cr_assert_eq(acquire("{" BACKENDS ",\"models\":[]}", &g, err,
                         sizeof(err)), 0, "%s", err);
    tg_generation_release(g);
}


static struct {
    const char  *models;
    const char  *needle;
} bad[] = {
    { "[{}]", "models[0]: \"name\" is required" },
    { "[{\"name\":\"m\"}]", "models[0]: \"pool\" is required" },
    { "[{\"name\":\"m\",\"pool\":\"nosuch\"}]",
      "model \"m\" names unknown pool \"nosuch\"" },
    { "[{\"name\":\"m\",\"pool\":\"big\",\"weight\":1}]",
      "unknown key \"weight\" in models[0]" },
    { "[{\"name\":\"a b\",\"pool\":\"big\"}]", "\"a b\" is not a model name" },
    { "[{\"name\":\"m\",\"pool\":\"big\",\"model\":\"x\\\"y\"}]",
      "is not a model name" },
    { "[{\"name\":\"m\",\"pool\":\"big\"},{\"name\":\"m\",\"pool\":"
      "\"small\"}]", "duplicate model \"m\"" },
    { "[{\"name\":7,\"pool\":\"big\"}]", "must be a non-empty string" },
};

static const char  *bad_top[][2] = {
    { "{\"models\":{}}", "\"models\" must be an array" },
    { "{\"models\":[\"m\"]}", "models[0] must be an object" },
};


Test(models, refuses_bad_aliases_naming_the_problem, .init = setup,
     .fini = teardown)
{
    tg_generation_t  *g;
    char              doc[1024], err[256];
    size_t            i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(doc, sizeof(doc), "{" BACKENDS ",\"models\":%s}",
                 bad[i].models);
        cr_assert_eq(acquire(doc, &g, err, sizeof(err)), -EINVAL,
                     "accepted %s", doc);
        cr_assert_not_null(strstr(err, bad[i].needle),
                           "%s: message \"%s\" lacks \"%s\"", doc, err,
                           bad[i].needle);
    }
    for (i = 0; i < sizeof(bad_top) / sizeof(bad_top[0]); i++) {
        cr_assert_eq(acquire(bad_top[i][0], &g, err, sizeof(err)), -EINVAL);
        cr_assert_not_null(strstr(err, bad_top[i][1]), "%s", err);
    }
    cr_assert_eq(cf.ngenerations, 0);
    cr_assert(tg_queue_empty(&cf.stats),
              "a refused document leaks no counters");
}


Test(models, names_and_routes_from_aliases_model_and_listings,
     .init = setup, .fini = teardown)
{
    tg_generation_t   *g;
    tg_model_route_t   route;
    tg_backend_t      *s;
    char               err[256], names[512];

    cr_assert_eq(acquire(DOC, &g, err, sizeof(err)), 0, "%s", err);
    s = tg_generation_backend(g, "s");

    /* s has not answered yet: its pool is pending, names are aliases and
     * model= only (QwQ-32B once, though two backends serve it) */
    cr_assert_eq(tg_generation_models_pending(g, NULL), s);
    cr_assert_null(tg_generation_models_pending(
                       g, tg_generation_pool(g, "big")));
    names[0] = '\0';
    cr_assert_eq(tg_generation_models_each(g, NULL, collect, names), 0);
    cr_assert_str_eq(names, "reasoner@big,gpt-4o@small,QwQ-32B@big");
    cr_assert_null(tg_backend_own_model(s));

    /* s lists two models itself; a repeated id is reported once */
    s->stats->models = json_pack("[sss]", "llama3:8b", "phi-4", "phi-4");
    cr_assert_null(tg_generation_models_pending(g, NULL));
    names[0] = '\0';
    cr_assert_eq(tg_generation_models_each(g, NULL, collect, names), 0);
    cr_assert_str_eq(names, "reasoner@big,gpt-4o@small,QwQ-32B@big,"
                     "llama3:8b@small,phi-4@small");
    cr_assert_str_eq(tg_backend_own_model(s), "llama3:8b");

    /* only one pool: its aliases and backends */
    names[0] = '\0';
    cr_assert_eq(tg_generation_models_each(g, tg_generation_pool(g, "small"),
                                           collect, names), 0);
    cr_assert_str_eq(names, "gpt-4o@small,llama3:8b@small,phi-4@small");

    /* routes */
    cr_assert_eq(tg_generation_model_route(g, NULL, "phi-4", &route), 0);
    cr_assert_str_eq(route.pool->name, "small");
    cr_assert_null(route.upstream);
    cr_assert_eq(route.alias, 0);

    cr_assert_eq(tg_generation_model_route(g, NULL, "gpt-4o", &route), 0);
    cr_assert_str_eq(route.pool->name, "small");
    cr_assert_str_eq(route.upstream, "Qwen/Qwen2.5-7B");
    cr_assert_eq(route.alias, 1);

    cr_assert_eq(tg_generation_model_route(g, NULL, "reasoner", &route), 0);
    cr_assert_str_eq(route.pool->name, "big");
    cr_assert_null(route.upstream);
    cr_assert_eq(route.alias, 1);

    cr_assert_eq(tg_generation_model_route(g, NULL, "QwQ-32B", &route), 0);
    cr_assert_str_eq(route.pool->name, "big");

    cr_assert_eq(tg_generation_model_route(g, NULL, "gpt-5", &route),
                 -ENOENT);
    cr_assert_eq(tg_generation_model_route(g, tg_generation_pool(g, "big"),
                                           "phi-4", &route), -ENOENT);

    /* a failed fetch is not pending: its names are simply unknown */
    json_decref(s->stats->models);
    s->stats->models = NULL;
    s->stats->models_failed = 1;
    cr_assert_null(tg_generation_models_pending(g, NULL));
    cr_assert_eq(tg_generation_model_route(g, NULL, "phi-4", &route),
                 -ENOENT);

    tg_generation_release(g);
    cr_assert(tg_queue_empty(&cf.stats));
}


Test(models, listed_names_outlive_a_reload_with_the_same_backend,
     .init = setup, .fini = teardown)
{
    tg_generation_t  *a, *b;
    tg_model_route_t  route;
    char              err[256];

    cr_assert_eq(acquire(DOC, &a, err, sizeof(err)), 0, "%s", err);
    tg_generation_backend(a, "s")->stats->models = json_pack("[s]", "phi-4");

    /* another document naming the same backend (name and URL) */
    cr_assert_eq(acquire("{" BACKENDS "}", &b, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(tg_generation_model_route(b, NULL, "phi-4", &route), 0);
    cr_assert_eq(tg_generation_model_route(b, NULL, "reasoner", &route),
                 -ENOENT, "aliases belong to their document");

    tg_generation_release(a);
    tg_generation_release(b);
}
