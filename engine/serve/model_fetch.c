/*
 * Model lists of backends without model= (serve/model_fetch.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "serve/model_fetch.h"
#include "util/buf.h"

/* A /v1/models answer larger than this is refused (a few thousand ids). */
#define TG__MODELS_MAX_BODY  (1024 * 1024)
#define TG__MODELS_TIMEOUT_MS  10000

/* One GET /v1/models in flight.  st is cleared when the counters entry
 * goes (its last generation released) before the answer. */
struct tg_model_fetch_s {
    tg_engine_t         *engine;
    tg_backend_stats_t  *st;
    tg_http_t           *http;
    long                 status;
    tg_buf_t             body;
    int                  too_large;
    tg_queue_t           link;      /* in engine->model_fetches */
};


static void tg__fetch_backend(tg_engine_t *e, tg_backend_t *b);
static void tg__fetch_free(tg_model_fetch_t *f);
static void tg__fetch_timer_cb(uv_timer_t *t);
static void tg__fetch_on_head(tg_http_t *h, long status,
    const char *content_type, void *data);
static void tg__fetch_on_body(tg_http_t *h, const char *p, size_t n,
    void *data);
static void tg__fetch_on_done(tg_http_t *h, int rc, const char *err,
    void *data);
static json_t *tg__fetch_ids(const char *p, size_t n, char *why,
    size_t len);

static const tg_http_cb_t  tg__fetch_cb = {
    tg__fetch_on_head, tg__fetch_on_body, tg__fetch_on_done
};


int
tg_model_fetch_start(tg_engine_t *e)
{
    int  rc;

    e->models_timer.data = e;
    rc = uv_timer_init(e->loop, &e->models_timer);
    if (rc != 0) {
        return rc;
    }
    return uv_timer_start(&e->models_timer, tg__fetch_timer_cb,
                          TG_MODELS_TICK_MS, TG_MODELS_TICK_MS);
}


void
tg_model_fetch_attach(tg_engine_t *e, tg_generation_t *g)
{
    size_t  i;

    for (i = 0; i < g->nbackends; i++) {
        if (g->backends[i].model == NULL
            && g->backends[i].stats->models == NULL)
        {
            tg__fetch_backend(e, &g->backends[i]);
        }
    }
}


void
tg_model_fetch_stop(tg_engine_t *e)
{
    uv_close((uv_handle_t *) &e->models_timer, NULL);

    /* The client was freed: its transfers were dropped without
     * callbacks. */
    while (!tg_queue_empty(&e->model_fetches)) {
        tg__fetch_free(tg_queue_data(tg_queue_head(&e->model_fetches),
                                     tg_model_fetch_t, link));
    }
}


/* Each tick asks the backends whose list is older than the refresh
 * period, or whose last attempt failed. */
static void
tg__fetch_timer_cb(uv_timer_t *t)
{
    tg_engine_t         *e = t->data;
    tg_generation_t     *g;
    tg_backend_stats_t  *st;
    uint64_t             now;
    size_t               i;

    now = uv_now(e->loop);

    for (g = e->config.generations; g != NULL; g = g->next) {
        for (i = 0; i < g->nbackends; i++) {
            st = g->backends[i].stats;
            if (g->backends[i].model == NULL
                && (st->models == NULL || st->models_failed
                    || now - st->models_at_ms >= TG_MODELS_REFRESH_MS))
            {
                tg__fetch_backend(e, &g->backends[i]);
            }
        }
    }
}


static void
tg__fetch_backend(tg_engine_t *e, tg_backend_t *b)
{
    tg_http_req_t   hr;
    tg_model_fetch_t  *f;
    const char     *key;
    char            url[2048];
    size_t          ulen;

    if (b->stats->fetching != NULL || e->http == NULL || e->stopping) {
        return;
    }

    f = calloc(1, sizeof(*f));
    if (f == NULL) {
        tg_log_warn("backend %s: out of memory asking its models", b->name);
        return;
    }

    /* As for traces: http://host:port, or a URL that ends in /v1. */
    ulen = strlen(b->url);
    snprintf(url, sizeof(url), "%s%s/models", b->url,
             (ulen >= 3 && strcmp(b->url + ulen - 3, "/v1") == 0)
             ? "" : "/v1");

    key = b->api_key_env ? getenv(b->api_key_env) : NULL;

    memset(&hr, 0, sizeof(hr));
    hr.url = url;
    hr.api_key = (key && key[0]) ? key : NULL;
    hr.connect_timeout_ms = (long) b->connect_timeout_ms;
    hr.idle_timeout_ms = TG__MODELS_TIMEOUT_MS;
    hr.tls_verify = b->tls_verify;
    hr.tls_ca = b->tls_ca;

    f->engine = e;
    f->st = b->stats;
    f->http = tg_http_start(e->http, &hr, &tg__fetch_cb, f);
    if (f->http == NULL) {
        tg_log_warn("backend %s: cannot ask %s", b->name, url);
        b->stats->models_failed = 1;
        b->stats->models_at_ms = uv_now(e->loop);
        free(f);
        return;
    }

    f->st->fetching = &f->st;
    tg_queue_insert_head(&e->model_fetches, &f->link);
    tg_log_debug("backend %s: asking %s", b->name, url);
}


static void
tg__fetch_free(tg_model_fetch_t *f)
{
    tg_queue_remove(&f->link);
    if (f->st != NULL) {
        f->st->fetching = NULL;
    }
    tg_buf_free(&f->body);
    free(f);
}


static void
tg__fetch_on_head(tg_http_t *h, long status, const char *content_type,
    void *data)
{
    tg_model_fetch_t  *f = data;

    (void) h;
    (void) content_type;
    f->status = status;
}


static void
tg__fetch_on_body(tg_http_t *h, const char *p, size_t n, void *data)
{
    tg_model_fetch_t  *f = data;

    if (f->too_large || tg_buf_size(&f->body) + n > TG__MODELS_MAX_BODY
        || tg_buf_append(&f->body, p, n) != 0)
    {
        f->too_large = 1;
        tg_http_cancel(h);
        tg__fetch_on_done(h, -EFBIG, "the answer is over 1 MiB", f);
    }
}


static void
tg__fetch_on_done(tg_http_t *h, int rc, const char *err, void *data)
{
    tg_model_fetch_t         *f = data;
    tg_backend_stats_t  *st = f->st;
    json_t              *ids;
    char                 why[256], *text;

    (void) h;

    if (st == NULL) {
        /* No generation names the backend any more. */
        tg__fetch_free(f);
        return;
    }

    st->models_at_ms = uv_now(f->engine->loop);
    ids = NULL;

    if (rc != 0) {
        snprintf(why, sizeof(why), "%s", err ? err : strerror(-rc));
    } else if (f->status != 200) {
        snprintf(why, sizeof(why), "HTTP status %ld", f->status);
    } else {
        ids = tg__fetch_ids(tg_buf_ptr(&f->body), tg_buf_size(&f->body),
                            why, sizeof(why));
    }

    if (ids == NULL) {
        /* Said once per failing spell, not at every tick; the names
         * from the last answer stay. */
        if (!st->models_failed) {
            tg_log_warn("backend %s (%s): GET /v1/models failed: %s; "
                        "requests name its models only through model= or "
                        "thinkgate_model until it answers", st->name,
                        st->url, why);
        }
        st->models_failed = 1;
        tg__fetch_free(f);
        return;
    }

    if (st->models == NULL || st->models_failed
        || !json_equal(st->models, ids))
    {
        text = json_dumps(ids, JSON_COMPACT);
        tg_log_info("backend %s (%s) serves %s", st->name, st->url,
                    text ? text : "(out of memory)");
        free(text);
    }

    json_decref(st->models);
    st->models = ids;
    st->models_failed = 0;
    tg__fetch_free(f);
}


/* The ids of an OpenAI list, {"object":"list","data":[{"id":...}, ...]},
 * as an array of strings; NULL with why set when it is not one. */
static json_t *
tg__fetch_ids(const char *p, size_t n, char *why, size_t len)
{
    json_t        *doc, *data, *m, *ids;
    json_error_t   jerr;
    const char    *id;
    size_t         i;

    doc = json_loadb(p, n, 0, &jerr);
    data = json_object_get(doc, "data");
    if (!json_is_array(data)) {
        snprintf(why, len, "the answer is not a model list (%s)",
                 doc == NULL ? jerr.text : "no \"data\" array");
        json_decref(doc);
        return NULL;
    }

    ids = json_array();
    if (ids == NULL) {
        snprintf(why, len, "out of memory");
        json_decref(doc);
        return NULL;
    }

    json_array_foreach(data, i, m) {
        id = json_string_value(json_object_get(m, "id"));
        if (id == NULL || id[0] == '\0') {
            continue;
        }
        if (json_array_append_new(ids, json_string(id)) != 0) {
            snprintf(why, len, "out of memory");
            json_decref(ids);
            json_decref(doc);
            return NULL;
        }
    }

    json_decref(doc);
    return ids;
}
