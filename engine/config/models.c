/*
 * Model names: the document's "models" (thinkgate_model aliases) and the
 * walk over every name a request may use, which both GET /v1/models and
 * routing by a request's "model" read, so that the list and the routes
 * can never disagree.
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"

/* A model name: what OpenAI-compatible servers use ("Qwen/QwQ-32B",
 * "llama3:8b"), at most this long. */
#define TG__MODEL_NAME_MAX  256

typedef struct {
    const char  *name;
    const char  *pool;
    const char  *model;
} tg__alias_doc_t;

static const tg_config_field_t  tg__alias_fields[] = {
    { "name", TG_CF_STR, 1, offsetof(tg__alias_doc_t, name) },
    { "pool", TG_CF_STR, 1, offsetof(tg__alias_doc_t, pool) },
    { "model", TG_CF_STR_NULL, 0, offsetof(tg__alias_doc_t, model) },
    { NULL, 0, 0, 0 }
};

/* Names already reported by one walk. */
typedef struct {
    const char  **names;
    size_t        n;
    size_t        cap;
    int           off;          /* every name passes, none is kept */
} tg__seen_t;

typedef struct {
    const char        *model;
    tg_model_route_t  *out;
} tg__find_t;


static int tg__valid_model_name(const char *s);
static int tg__seen_add(tg__seen_t *seen, const char *name);
static int tg__models_walk(tg_generation_t *g, tg_pool_t *only,
    int (*fn)(const tg_model_route_t *route, void *data), void *data,
    int dedupe);
static int tg__find_cb(const tg_model_route_t *route, void *data);


int
tg_generation_parse_models(tg_generation_t *g, char *err, size_t errlen)
{
    json_t            *models;
    tg__alias_doc_t    doc;
    tg_model_alias_t  *a;
    size_t             i, j;
    char               where[64];
    int                rc;

    models = json_object_get(g->root, "models");
    if (models == NULL || json_is_null(models)) {
        return 0;
    }
    if (!json_is_array(models)) {
        return tg_config_fail(err, errlen, "\"models\" must be an array");
    }

    g->naliases = json_array_size(models);
    if (g->naliases == 0) {
        return 0;
    }
    g->aliases = calloc(g->naliases, sizeof(tg_model_alias_t));
    if (g->aliases == NULL) {
        return -ENOMEM;
    }

    for (i = 0; i < g->naliases; i++) {
        a = &g->aliases[i];
        snprintf(where, sizeof(where), "models[%zu]", i);
        memset(&doc, 0, sizeof(doc));

        rc = tg_config_parse_fields(json_array_get(models, i),
                                    tg__alias_fields, &doc, where, err,
                                    errlen);
        if (rc != 0) {
            return rc;
        }

        if (!tg__valid_model_name(doc.name)) {
            return tg_config_fail(err, errlen, "%s: \"%.64s\" is not a "
                                  "model name (1 to 256 printable "
                                  "characters, no spaces)", where, doc.name);
        }
        if (doc.model != NULL && !tg__valid_model_name(doc.model)) {
            return tg_config_fail(err, errlen, "%s: \"model\" \"%.64s\" is "
                                  "not a model name", where, doc.model);
        }

        a->name = doc.name;
        a->model = doc.model;
        a->pool = tg_generation_pool(g, doc.pool);
        if (a->pool == NULL) {
            return tg_config_fail(err, errlen, "%s: model \"%s\" names "
                                  "unknown pool \"%s\"", where, doc.name,
                                  doc.pool);
        }

        for (j = 0; j < i; j++) {
            if (strcmp(g->aliases[j].name, a->name) == 0) {
                return tg_config_fail(err, errlen, "duplicate model \"%s\"",
                                      a->name);
            }
        }
    }

    return 0;
}


static int
tg__valid_model_name(const char *s)
{
    size_t  i;

    for (i = 0; s[i] != '\0'; i++) {
        if ((unsigned char) s[i] <= ' ' || s[i] == 0x7f || s[i] == '"'
            || s[i] == '\\' || i >= TG__MODEL_NAME_MAX)
        {
            return 0;
        }
    }
    return i > 0;
}


static int
tg__seen_add(tg__seen_t *seen, const char *name)
{
    const char  **p;
    size_t        i;

    if (seen->off) {
        return 1;
    }
    for (i = 0; i < seen->n; i++) {
        if (strcmp(seen->names[i], name) == 0) {
            return 0;
        }
    }
    if (seen->n == seen->cap) {
        seen->cap = seen->cap ? seen->cap * 2 : 16;
        p = realloc(seen->names, seen->cap * sizeof(*p));
        if (p == NULL) {
            return -ENOMEM;
        }
        seen->names = p;
    }
    seen->names[seen->n++] = name;
    return 1;
}


int
tg_generation_models_each(tg_generation_t *g, tg_pool_t *only,
    int (*fn)(const tg_model_route_t *route, void *data), void *data)
{
    return tg__models_walk(g, only, fn, data, 1);
}


/*
 * Every name in walk order; with dedupe, a name only the first time (the
 * list), without it every time, which a search that stops at its first
 * match may use, since the first time is what it meets first either way
 * (routing: no set of names to allocate per request).
 */
static int
tg__models_walk(tg_generation_t *g, tg_pool_t *only,
    int (*fn)(const tg_model_route_t *route, void *data), void *data,
    int dedupe)
{
    tg_model_route_t   route;
    tg__seen_t         seen;
    tg_pool_t         *pool;
    tg_backend_t      *b;
    json_t            *ids;
    const char        *name;
    size_t             i, j, k, n;
    int                rc;

    memset(&seen, 0, sizeof(seen));
    seen.off = !dedupe;
    rc = 0;

    for (i = 0; i < g->naliases && rc == 0; i++) {
        if (only != NULL && g->aliases[i].pool != only) {
            continue;
        }
        route.name = g->aliases[i].name;
        route.pool = g->aliases[i].pool;
        route.upstream = g->aliases[i].model;
        route.alias = 1;

        rc = tg__seen_add(&seen, route.name);
        rc = rc > 0 ? fn(&route, data) : rc;
    }

    for (i = 0; i < g->npools && rc == 0; i++) {
        pool = &g->pools[i];
        if (only != NULL && pool != only) {
            continue;
        }

        for (j = 0; j < pool->nbackends && rc == 0; j++) {
            b = pool->backends[j];
            ids = b->model == NULL ? b->stats->models : NULL;
            n = b->model != NULL ? 1 : json_array_size(ids);

            for (k = 0; k < n && rc == 0; k++) {
                name = b->model != NULL
                       ? b->model
                       : json_string_value(json_array_get(ids, k));
                if (name == NULL) {
                    continue;
                }
                route.name = name;
                route.pool = pool;
                route.upstream = NULL;
                route.alias = 0;

                rc = tg__seen_add(&seen, name);
                rc = rc > 0 ? fn(&route, data) : rc;
            }
        }
    }

    free(seen.names);
    return rc;
}


static int
tg__find_cb(const tg_model_route_t *route, void *data)
{
    tg__find_t  *f = data;

    if (strcmp(route->name, f->model) != 0) {
        return 0;
    }
    *f->out = *route;
    return 1;
}


int
tg_generation_model_route(tg_generation_t *g, tg_pool_t *only,
    const char *model, tg_model_route_t *out)
{
    tg__find_t  f;
    int         rc;

    f.model = model;
    f.out = out;

    rc = tg__models_walk(g, only, tg__find_cb, &f, 0);
    if (rc < 0) {
        return rc;
    }
    return rc == 1 ? 0 : -ENOENT;
}


tg_backend_t *
tg_generation_models_pending(tg_generation_t *g, tg_pool_t *only)
{
    tg_pool_t  *pool;
    size_t      i, j;

    for (i = 0; i < g->npools; i++) {
        pool = &g->pools[i];
        if (only != NULL && pool != only) {
            continue;
        }
        for (j = 0; j < pool->nbackends; j++) {
            if (pool->backends[j]->model == NULL
                && pool->backends[j]->stats->models == NULL
                && !pool->backends[j]->stats->models_failed)
            {
                return pool->backends[j];
            }
        }
    }
    return NULL;
}


const char *
tg_backend_own_model(const tg_backend_t *b)
{
    if (b->model != NULL) {
        return b->model;
    }
    return json_string_value(json_array_get(b->stats->models, 0));
}
