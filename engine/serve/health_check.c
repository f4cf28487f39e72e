/*
 * Active health checks of backends (serve/health_check.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "serve/health_check.h"

/* One check in flight.  st is cleared when the counters entry goes (its
 * last generation released) before the answer. */
struct tg_health_check_s {
    tg_engine_t         *engine;
    tg_backend_stats_t  *st;
    tg_http_t           *http;
    long                 status;
    tg_queue_t           link;      /* in engine->health_checks */
};


static void tg__check_timer_cb(uv_timer_t *t);
static void tg__check_backend(tg_engine_t *e, tg_backend_t *b,
    uint64_t now);
static void tg__check_free(tg_health_check_t *c);
static void tg__check_on_head(tg_http_t *h, long status,
    const char *content_type, void *data);
static void tg__check_on_body(tg_http_t *h, const char *p, size_t n,
    void *data);
static void tg__check_on_done(tg_http_t *h, int rc, const char *err,
    void *data);

static const tg_http_cb_t  tg__check_cb = {
    tg__check_on_head, tg__check_on_body, tg__check_on_done
};


int
tg_health_check_start(tg_engine_t *e)
{
    int  rc;

    e->health_timer.data = e;
    rc = uv_timer_init(e->loop, &e->health_timer);
    if (rc != 0) {
        return rc;
    }
    return uv_timer_start(&e->health_timer, tg__check_timer_cb,
                          TG_HEALTH_TICK_MS, TG_HEALTH_TICK_MS);
}


void
tg_health_check_stop(tg_engine_t *e)
{
    uv_close((uv_handle_t *) &e->health_timer, NULL);

    /* The client was freed: its transfers were dropped without
     * callbacks. */
    while (!tg_queue_empty(&e->health_checks)) {
        tg__check_free(tg_queue_data(tg_queue_head(&e->health_checks),
                                     tg_health_check_t, link));
    }
}


/* Each tick checks the backends whose last check started an interval
 * ago.  Generations are walked newest first, so that the newest settings
 * of a backend named by several decide. */
static void
tg__check_timer_cb(uv_timer_t *t)
{
    tg_engine_t      *e = t->data;
    tg_generation_t  *g;
    tg_backend_t     *b;
    uint64_t          now;
    size_t            i;

    now = tg_health_now_ms();

    for (g = e->config.generations; g != NULL; g = g->next) {
        for (i = 0; i < g->nbackends; i++) {
            b = &g->backends[i];
            if (b->health.path != NULL
                && now - b->stats->health.last_check_ms
                   >= (uint64_t) b->health.interval_ms)
            {
                tg__check_backend(e, b, now);
            }
        }
    }
}


static void
tg__check_backend(tg_engine_t *e, tg_backend_t *b, uint64_t now)
{
    tg_http_req_t       hr;
    tg_health_check_t  *c;
    tg_health_t        *h = &b->stats->health;
    const char         *key;
    char                url[2048];
    size_t              ulen;

    if (b->stats->checking != NULL || e->http == NULL || e->stopping) {
        return;
    }

    /* Open: wait for the cool-off; half-open with a probe out: wait for
     * it.  Past the cool-off this check becomes the probe. */
    if (!tg_health_usable(h, now)) {
        return;
    }

    h->last_check_ms = now;

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        tg_log_warn("backend %s: out of memory checking its health",
                    b->name);
        return;
    }

    /* The path is from the server's root: a URL ending in /v1 loses it. */
    ulen = strlen(b->url);
    if (ulen >= 3 && strcmp(b->url + ulen - 3, "/v1") == 0) {
        ulen -= 3;
    }
    snprintf(url, sizeof(url), "%.*s%s", (int) ulen, b->url,
             b->health.path);

    key = b->api_key_env ? getenv(b->api_key_env) : NULL;

    memset(&hr, 0, sizeof(hr));
    hr.url = url;
    hr.api_key = (key && key[0]) ? key : NULL;
    hr.connect_timeout_ms = (long) b->connect_timeout_ms;
    hr.idle_timeout_ms = (long) b->health.interval_ms;
    hr.tls_verify = b->tls_verify;
    hr.tls_ca = b->tls_ca;

    c->engine = e;
    c->st = b->stats;
    c->http = tg_http_start(e->http, &hr, &tg__check_cb, c);
    if (c->http == NULL) {
        tg_log_warn("backend %s: cannot check %s", b->name, url);
        free(c);
        return;
    }

    tg_health_take(h, now);

    c->st->checking = &c->st;
    tg_queue_insert_head(&e->health_checks, &c->link);
}


static void
tg__check_free(tg_health_check_t *c)
{
    tg_queue_remove(&c->link);
    if (c->st != NULL) {
        c->st->checking = NULL;
    }
    free(c);
}


static void
tg__check_on_head(tg_http_t *h, long status, const char *content_type,
    void *data)
{
    tg_health_check_t  *c = data;

    (void) h;
    (void) content_type;
    c->status = status;
}


/* The body says nothing the status did not. */
static void
tg__check_on_body(tg_http_t *h, const char *p, size_t n, void *data)
{
    (void) h;
    (void) p;
    (void) n;
    (void) data;
}


static void
tg__check_on_done(tg_http_t *h, int rc, const char *err, void *data)
{
    tg_health_check_t   *c = data;
    tg_backend_stats_t  *st = c->st;
    char                 why[256];
    int                  ok;

    (void) h;

    if (st == NULL) {
        /* No generation names the backend any more. */
        tg__check_free(c);
        return;
    }

    ok = rc == 0 && c->status >= 200 && c->status < 300;

    if (rc != 0) {
        snprintf(why, sizeof(why), "health check: %s",
                 err ? err : strerror(-rc));
    } else {
        snprintf(why, sizeof(why), "health check: HTTP status %ld",
                 c->status);
    }

    st->health.checks++;
    if (!ok) {
        st->health.check_failures++;
    }
    tg_health_record(&st->health, ok ? TG_HEALTH_OK : TG_HEALTH_FAIL,
                     ok ? NULL : why, tg_health_now_ms());
    tg__check_free(c);
}
