/*
 * The configuration document a worker sends at registration
 * (engine/config/document.c, fields.c, models.c): tg_config_acquire on the
 * input, then what the engine asks of a generation: its pools, backends,
 * plugins and the model names and routes.  The same document acquired
 * twice must give the same generation (dedupe), and releasing both
 * references frees it.
 */
#include <errno.h>

#include "config/generation.h"
#include "log.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;
    tg_log_level = -1;
    return 0;
}

static int
tg_fuzz_route(const tg_model_route_t *route, void *data)
{
    tg_generation_t   *g = data;
    tg_model_route_t   again;

    tg_fuzz_check(route->name != NULL && route->pool != NULL);
    tg_fuzz_check(tg_generation_model_route(g, NULL, route->name, &again)
                  == 0);
    tg_fuzz_check(again.pool == route->pool);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char  *allowed[] = { "FUZZ_KEY" };
    tg_config_t         cf;
    tg_generation_t    *g, *g2;
    tg_model_route_t    route;
    char                err[256], *doc;
    size_t              i;
    int                 rc;

    tg_config_init(&cf);
    cf.allowed_env = (char **) allowed;
    cf.nallowed_env = 1;

    doc = tg_fuzz_dup(data, size);
    memset(err, 0, sizeof(err));
    rc = tg_config_acquire(&cf, doc, size, &g, err, sizeof(err));
    if (rc != 0) {
        tg_fuzz_check(rc == -EINVAL || rc == -ENOMEM);
        tg_fuzz_check(err[0] != '\0' && memchr(err, '\0', sizeof(err)));
        goto done;
    }

    for (i = 0; i < g->npools; i++) {
        tg_fuzz_check(tg_generation_pool(g, g->pools[i].name) != NULL);
        (void) tg_generation_models_each(g, &g->pools[i], tg_fuzz_route, g);
    }
    for (i = 0; i < g->nbackends; i++) {
        tg_fuzz_check(tg_generation_backend(g, g->backends[i].name) != NULL);
        (void) tg_backend_own_model(&g->backends[i]);
    }
    for (i = 0; i < g->nplugins; i++) {
        tg_fuzz_check(tg_generation_plugin(g, i) != NULL);
    }
    tg_fuzz_check(tg_generation_plugin(g, g->nplugins) == NULL);
    (void) tg_generation_models_each(g, NULL, tg_fuzz_route, g);
    (void) tg_generation_model_route(g, NULL, "m", &route);
    (void) tg_generation_models_pending(g, NULL);

    rc = tg_config_acquire(&cf, doc, size, &g2, err, sizeof(err));
    tg_fuzz_check(rc == 0 && g2 == g);
    tg_generation_release(g2);
    tg_generation_release(g);

done:
    free(doc);
    cf.allowed_env = NULL;
    cf.nallowed_env = 0;
    tg_config_free(&cf);
    return 0;
}
