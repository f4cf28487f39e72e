/*
 * Configuration generations: deduplicating identical documents, reference
 * counting, shared backend counters.  The document itself is read by
 * config/document.c.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"
#include "log.h"

static int tg__fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tg__generation_free(tg_generation_t *g);
static int tg__generation_env(tg_generation_t *g, char *err, size_t errlen);


void
tg_config_init(tg_config_t *cf)
{
    memset(cf, 0, sizeof(*cf));
    tg_queue_init(&cf->stats);
}


void
tg_config_free(tg_config_t *cf)
{
    tg_generation_t  *g, *next;

    for (g = cf->generations; g != NULL; g = next) {
        next = g->next;
        tg__generation_free(g);
    }
    cf->generations = NULL;
    cf->ngenerations = 0;
}


static int
tg__fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}


int
tg_config_acquire(tg_config_t *cf, const char *doc, size_t len,
    tg_generation_t **out, char *err, size_t errlen)
{
    json_t           *root;
    json_error_t      jerr;
    char             *canon;
    tg_generation_t  *g;
    int               rc;

    *out = NULL;
    err[0] = '\0';

    root = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return tg__fail(err, errlen, "configuration is not valid JSON: %s "
                        "(line %d, column %d)", jerr.text, jerr.line,
                        jerr.column);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return tg__fail(err, errlen, "configuration must be a JSON object");
    }

    canon = json_dumps(root, JSON_COMPACT | JSON_SORT_KEYS);
    if (canon == NULL) {
        json_decref(root);
        return -ENOMEM;
    }

    for (g = cf->generations; g != NULL; g = g->next) {
        if (strcmp(g->doc, canon) == 0) {
            free(canon);
            json_decref(root);
            g->refs++;
            *out = g;
            return 0;
        }
    }

    g = calloc(1, sizeof(*g));
    if (g == NULL) {
        free(canon);
        json_decref(root);
        return -ENOMEM;
    }

    g->config = cf;
    g->doc = canon;
    g->root = root;

    rc = tg_generation_parse(g, err, errlen);
    if (rc == 0) {
        rc = tg__generation_env(g, err, errlen);
    }
    if (rc != 0) {
        tg__generation_free(g);
        return rc;
    }

    g->id = ++cf->last_id;
    g->refs = 1;
    g->next = cf->generations;
    cf->generations = g;
    cf->ngenerations++;

    tg_log_info("configuration generation %u: %zu backends, %zu pools",
                g->id, g->nbackends, g->npools);

    *out = g;
    return 0;
}


int
tg_config_env_allowed(const tg_config_t *cf, const char *name)
{
    size_t  i, n = sizeof(TG_CONFIG_ENV_PREFIX) - 1;

    if (strncmp(name, TG_CONFIG_ENV_PREFIX, n) == 0 && name[n] != '\0') {
        return 1;
    }
    for (i = 0; i < cf->nallowed_env; i++) {
        if (strcmp(name, cf->allowed_env[i]) == 0) {
            return 1;
        }
    }
    return 0;
}


/* Whoever may register may name variables: only those the operator
 * allowed on the engine's command line are read (issue 14, bug 3). */
static int
tg__generation_env(tg_generation_t *g, char *err, size_t errlen)
{
    const char  *name;
    size_t       i;

    for (i = 0; i < g->nbackends; i++) {
        name = g->backends[i].api_key_env;
        if (name != NULL && name[0] != '\0'
            && !tg_config_env_allowed(g->config, name))
        {
            return tg__fail(err, errlen, "backend \"%s\": api_key_env "
                            "\"%s\" is not allowed: the engine reads only "
                            TG_CONFIG_ENV_PREFIX "* variables and those "
                            "given with thinkgated --allow-env",
                            g->backends[i].name, name);
        }
    }
    name = g->redis != NULL ? g->redis_settings.password_env : NULL;
    if (name != NULL && name[0] != '\0'
        && !tg_config_env_allowed(g->config, name))
    {
        return tg__fail(err, errlen, "redis: password_env \"%s\" is not "
                        "allowed: the engine reads only "
                        TG_CONFIG_ENV_PREFIX "* variables and those given "
                        "with thinkgated --allow-env", name);
    }
    return 0;
}


void
tg_generation_ref(tg_generation_t *g)
{
    g->refs++;
}


void
tg_generation_release(tg_generation_t *g)
{
    tg_config_t       *cf = g->config;
    tg_generation_t  **pp;

    if (--g->refs > 0) {
        return;
    }

    for (pp = &cf->generations; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == g) {
            *pp = g->next;
            cf->ngenerations--;
            break;
        }
    }

    tg_log_info("configuration generation %u released", g->id);
    tg__generation_free(g);
}


tg_pool_t *
tg_generation_pool(tg_generation_t *g, const char *name)
{
    size_t  i;

    for (i = 0; i < g->npools; i++) {
        if (strcmp(g->pools[i].name, name) == 0) {
            return &g->pools[i];
        }
    }
    return NULL;
}


tg_backend_t *
tg_generation_backend(tg_generation_t *g, const char *name)
{
    size_t  i;

    for (i = 0; i < g->nbackends; i++) {
        if (strcmp(g->backends[i].name, name) == 0) {
            return &g->backends[i];
        }
    }
    return NULL;
}


static void
tg__generation_free(tg_generation_t *g)
{
    size_t  i;

    for (i = 0; i < g->nbackends; i++) {
        if (g->backends[i].stats != NULL) {
            tg_backend_stats_put(g->config, g->backends[i].stats);
        }
    }
    for (i = 0; i < g->npools; i++) {
        free(g->pools[i].backends);
    }
    for (i = 0; i < g->nstrategies; i++) {
        if (g->strategies[i].parsed != NULL) {
            g->strategies[i].parsed_free(g->strategies[i].parsed);
        }
    }
    free(g->strategies);
    free(g->locations);
    free(g->backends);
    free(g->pools);
    free(g->aliases);
    free(g->doc);
    json_decref(g->root);
    free(g);
}


tg_backend_stats_t *
tg_backend_stats_get(tg_config_t *cf, const char *name, const char *url)
{
    tg_backend_stats_t  *st;
    tg_queue_t          *q;

    for (q = tg_queue_head(&cf->stats); q != tg_queue_sentinel(&cf->stats);
         q = tg_queue_next(q))
    {
        st = tg_queue_data(q, tg_backend_stats_t, link);
        if (strcmp(st->name, name) == 0 && strcmp(st->url, url) == 0) {
            st->refs++;
            return st;
        }
    }

    st = calloc(1, sizeof(*st));
    if (st == NULL) {
        return NULL;
    }
    st->name = strdup(name);
    st->url = strdup(url);
    if (st->name == NULL || st->url == NULL) {
        free(st->name);
        free(st->url);
        free(st);
        return NULL;
    }

    st->refs = 1;
    tg_queue_insert_head(&cf->stats, &st->link);
    return st;
}


/* Requests hold a reference on their generation, so no transfer outlives
 * the counters it updates; the entry goes with the last generation that
 * names the backend. */
void
tg_backend_stats_put(tg_config_t *cf, tg_backend_stats_t *st)
{
    (void) cf;      /* the entry knows its place in cf->stats */
    if (--st->refs > 0) {
        return;
    }

    tg_queue_remove(&st->link);

    /* A fetch of its model list still running finds nothing to fill. */
    if (st->fetching != NULL) {
        *st->fetching = NULL;
    }
    if (st->checking != NULL) {
        *st->checking = NULL;
    }
    json_decref(st->models);
    free(st->name);
    free(st->url);
    free(st);
}
