/*
 * Traces: one backend transfer each, with retry on connect failure.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/group_wait.h"
#include "core/strategy.h"
#include "core/trace.h"
#include "log.h"
#include "util/jdump.h"
#include "util/jstr.h"
#include "util/str.h"

static int tg__trace_launch(tg_trace_t *t, tg_oa_error_t *err);
static int tg__trace_none_left(tg_trace_t *t, int full, tg_oa_error_t *err);
static int tg__trace_body_text(tg_trace_t *t, tg_backend_t *b, char **out,
    const char **p, size_t *n);
static void tg__trace_url(tg_backend_t *b, int endpoint, char *url,
    size_t size);
static const char *tg__trace_model(tg_trace_t *t);
static void tg__trace_wait(tg_trace_t *t);
static void tg__trace_backend_done(tg_trace_t *t, int failed,
    const char *err);
static int tg__trace_relaunch(tg_trace_t *t, tg_oa_error_t *err);
static void tg__trace_clear(tg_trace_t *t);
static void tg__on_head(tg_http_t *h, long status, const char *ctype,
    void *data);
static void tg__on_body(tg_http_t *h, const char *p, size_t n, void *data);
static void tg__on_done(tg_http_t *h, int rc, const char *err, void *data);
static void tg__on_event(void *data, const char *event, const char *payload,
    size_t len);

static int tg__trace_start(tg_request_t *r, tg_pool_t *pool,
    tg_backend_t *only, int endpoint, json_t *body, tg_trace_text_t *text,
    int stream, tg_trace_t **out, tg_oa_error_t *err);
static int tg__trace_text_with(const tg_trace_text_t *tt, const char *model,
    tg_buf_t *b);

static const tg_http_cb_t  tg__trace_cb = {
    tg__on_head, tg__on_body, tg__on_done
};


int
tg_trace_start(tg_request_t *r, tg_pool_t *pool, int endpoint, json_t *body,
    int stream, tg_trace_t **out, tg_oa_error_t *err)
{
    return tg_trace_start_on(r, pool, NULL, endpoint, body, stream, out,
                             err);
}


/* A new trace of pool, with every backend but `only` (when given) counted
 * as tried; NULL with err set when out of memory or `only` is not in the
 * pool. */
/*
 * Freed traces kept for the next ones (at most TG_TRACE_SPARES): with
 * the tried list and the content type inside the trace, a small
 * request's trace then allocates nothing of its own (make callgrind).
 * Off under ASan, so that a use after free is caught; emptied for good
 * by tg_trace_spares_free.
 */
#define TG_TRACE_SPARES  32

static tg_trace_t  *tg__trace_spares[TG_TRACE_SPARES];
static size_t       tg__trace_nspares;
#if defined(__SANITIZE_ADDRESS__)
static int          tg__trace_spares_off = 1;
#else
static int          tg__trace_spares_off;
#endif


/* t itself, its tried list and content type freed or kept as a spare
 * (whatever else it holds is freed already). */
static void
tg__trace_release(tg_trace_t *t)
{
    if (t->tried != t->tried_in) {
        free(t->tried);
    }
    if (t->content_type != t->ctype_in) {
        free(t->content_type);
    }
    if (!tg__trace_spares_off && tg__trace_nspares < TG_TRACE_SPARES) {
        tg__trace_spares[tg__trace_nspares++] = t;
    } else {
        free(t);
    }
}


void
tg_trace_spares_free(void)
{
    tg__trace_spares_off = 1;
    while (tg__trace_nspares > 0) {
        free(tg__trace_spares[--tg__trace_nspares]);
    }
}


static tg_trace_t *
tg__trace_new(tg_pool_t *pool, tg_backend_t *only, tg_oa_error_t *err)
{
    tg_trace_t  *t;
    size_t       i;

    if (tg__trace_nspares > 0) {
        t = tg__trace_spares[--tg__trace_nspares];
        memset(t, 0, sizeof(*t));
    } else {
        t = calloc(1, sizeof(*t));
    }
    if (t == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return NULL;
    }

    t->tried = pool->nbackends <= 4
               ? t->tried_in
               : calloc(pool->nbackends, sizeof(tg_backend_t *));
    if (t->tried == NULL) {
        free(t);
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return NULL;
    }

    /* One chosen backend: every other one of the pool counts as tried,
     * so that the pool's policy (and its max_inflight check) has only
     * that one left. */
    if (only != NULL) {
        for (i = 0; i < pool->nbackends; i++) {
            if (pool->backends[i] != only) {
                t->tried[t->ntried++] = pool->backends[i];
            }
        }
        if (t->ntried == pool->nbackends) {
            tg__trace_release(t);
            tg_oa_error_set(err, 400, "invalid_request_error",
                            "unknown_backend", NULL, "Backend \"%s\" is "
                            "not in pool \"%s\".", only->name, pool->name);
            return NULL;
        }
    }

    t->nfixed = t->ntried;
    return t;
}


/* Appended to the request's traces, so traces keep their start order. */
static void
tg__trace_append(tg_request_t *r, tg_trace_t *t)
{
    if (r->traces_end == NULL) {
        r->traces_end = &r->traces;
    }
    t->index = r->traces_started++;
    *r->traces_end = t;
    r->traces_end = &t->next;
    r->traces_running++;
}


int
tg_trace_start_on(tg_request_t *r, tg_pool_t *pool, tg_backend_t *only,
    int endpoint, json_t *body, int stream, tg_trace_t **out,
    tg_oa_error_t *err)
{
    return tg__trace_start(r, pool, only, endpoint, body, NULL, stream, out,
                           err);
}


int
tg_trace_start_text(tg_request_t *r, tg_pool_t *pool, tg_backend_t *only,
    int endpoint, tg_trace_text_t *text, int stream, tg_trace_t **out,
    tg_oa_error_t *err)
{
    return tg__trace_start(r, pool, only, endpoint, NULL, text, stream, out,
                           err);
}


/* tg_trace_start_on with the body as a tree or as text (one of them). */
static int
tg__trace_start(tg_request_t *r, tg_pool_t *pool, tg_backend_t *only,
    int endpoint, json_t *body, tg_trace_text_t *text, int stream,
    tg_trace_t **out, tg_oa_error_t *err)
{
    tg_trace_t  *t;
    int          rc;

    *out = NULL;

    t = tg__trace_new(pool, only, err);
    if (t == NULL) {
        if (text != NULL) {
            free(text->p);
        }
        return err->status == 400 ? -EINVAL : -ENOMEM;
    }

    t->req = r;
    t->pool = pool;
    t->endpoint = endpoint;
    t->stream = stream == 1;
    t->whole = stream == TG_TRACE_WHOLE;
    t->body = json_incref(body);
    if (text != NULL) {
        t->text = *text;
    }

    if (only == NULL && pool->policy == TG_POOL_GROUPED
        && pool->nbackends > 0)
    {
        tg__trace_wait(t);

    } else {
        rc = tg__trace_launch(t, err);
        if (rc == -EBUSY && only == NULL && r->traces_running > 0) {
            /* The pool is full, but the request already holds slots of
             * it (a multi-trace request wider than the pool): this trace
             * waits for the next slot to free, as a grouped pool's do,
             * instead of the request running fewer traces than asked. */
            tg_log_debug("request %llu: pool \"%s\" full, a trace waits "
                         "for a slot", (unsigned long long) r->id,
                         pool->name);
            tg__trace_wait(t);

        } else if (rc != 0) {
            json_decref(t->body);
            free(t->text.p);
            tg__trace_release(t);
            return rc;
        }
    }

    tg__trace_append(r, t);
    *out = t;
    return 0;
}


/* The model a trace asks for, as policy=grouped compares it: the
 * client's (the body's), whatever name the backend is sent. */
static const char *
tg__trace_model(tg_trace_t *t)
{
    const char  *m;

    m = t->body != NULL ? json_string_value(json_object_get(t->body, "model"))
                        : t->req->oa.model;
    return m != NULL ? m : "";
}


/* t waits in the engine's list (core/group_wait.c) for a backend of its
 * pool: a grouped pool's rule, or any free slot for the others. */
static void
tg__trace_wait(tg_trace_t *t)
{
    t->wait.pool = t->pool;
    t->wait.model = tg__trace_model(t);
    t->wait.since_ms = uv_now(t->req->engine->loop);
    tg_group_wait_add(t->req->engine, t);
}


/* A transfer of t ended: the backend's counters, and a waiting trace of
 * a grouped pool may take the slot. */
static void
tg__trace_backend_done(tg_trace_t *t, int failed, const char *err)
{
    tg_backend_finished(t->backend, failed, err);
    tg_group_wait_kick(t->req->engine);
}


void
tg_trace_release(tg_trace_t *t, tg_backend_t *b)
{
    tg_request_t   *r = t->req;
    tg_oa_error_t   e;

    t->group_to = b;
    if (tg__trace_launch(t, &e) == 0) {
        return;
    }

    snprintf(t->err, sizeof(t->err), "%.*s", (int) sizeof(t->err) - 1,
             e.message);
    t->ended = 1;
    t->rc = -ECONNREFUSED;
    r->traces_running--;
    if (!r->closed) {
        r->strategy->on_trace_end(t);
    }
}


/* Why no backend is left to try, in err: the pool is full, down, or
 * every backend failed.  A negative errno. */
static int
tg__trace_none_left(tg_trace_t *t, int full, tg_oa_error_t *err)
{
    if (full > 0) {
        tg_oa_error_set(err, 429, "rate_limit_error", "pool_full",
                        NULL, "Every backend of pool \"%s\" is at "
                        "its max_inflight; retry later.",
                        t->pool->name);
        return -EBUSY;
    }
    if (full < 0 && t->backend == NULL) {
        tg_oa_error_set(err, 502, "server_error", "backend_down",
                        NULL, "Every backend of pool \"%s\" is "
                        "down (circuit open); retry later.",
                        t->pool->name);
        return -ECONNREFUSED;
    }
    if (t->backend != NULL) {
        tg_oa_error_set(err, 502, "server_error", "backend_error",
                        NULL, "No backend of pool \"%s\" could be "
                        "reached; last: %s (%s): %s", t->pool->name,
                        t->backend->name, t->backend->url,
                        t->err[0] ? t->err : "connect failed");
    } else {
        tg_oa_error_set(err, 502, "server_error", "backend_error",
                        NULL, "Pool \"%s\" has no backend.",
                        t->pool->name);
    }
    return -ECONNREFUSED;
}


/* The body for backend b: the trace's, with b's model (or the model the
 * client's alias stands for), in *out (malloc'ed, the caller's to free)
 * or, when the trace's own text goes as it is, in *p only.  0, or
 * -ENOMEM. */
static int
tg__trace_body_text(tg_trace_t *t, tg_backend_t *b, char **out,
    const char **p, size_t *n)
{
    tg_request_t  *r = t->req;
    const char    *model;
    tg_buf_t       text = { 0 };
    int            rc;

    *out = NULL;
    model = b->model;
    if (t->pool == r->model_pool && r->model_alias) {
        model = r->model_upstream ? r->model_upstream
                                  : tg_backend_own_model(b);
    }
    if (t->text.p != NULL && model == NULL) {
        *p = t->text.p;
        *n = t->text.len;
        return 0;
    }
    if (t->text.p != NULL) {
        rc = tg__trace_text_with(&t->text, model, &text);
    } else if (model == NULL) {
        rc = tg_json_dump(&text, t->body);
    } else {
        /* The backend's model written in place of the client's, without
         * copying the body to set it. */
        rc = tg_json_dump_with(&text, t->body, "model", model);
    }
    if (rc != 0 || tg_buf_cstr(&text) == NULL) {
        tg_buf_free(&text);
        return -ENOMEM;
    }
    *out = text.data;
    *p = text.data;
    *n = tg_buf_size(&text);
    return 0;
}


/* A written body with the model's value replaced by model (or, when it
 * has none, a "model" member added), as tg_json_dump_with does to a
 * tree. */
static int
tg__trace_text_with(const tg_trace_text_t *tt, const char *model,
    tg_buf_t *b)
{
    const char  *p = tt->p;
    size_t       at = tt->model_at;
    int          rc;

    rc = tg_buf_append(b, p, at);
    if (tt->model_len == 0) {
        /* A member last: after a comma unless the object was empty. */
        rc |= at > 1 ? tg_buf_append(b, ",\"model\":", 9)
                     : tg_buf_append(b, "\"model\":", 8);
    }
    rc |= tg_buf_append(b, "\"", 1);
    rc |= tg_jstr_escape(b, model, strlen(model));
    rc |= tg_buf_append(b, "\"", 1);
    rc |= tg_buf_append(b, p + at + tt->model_len,
                        tt->len - at - tt->model_len);
    return rc != 0 ? -ENOMEM : 0;
}


/* Backends are given as http://host:port; a URL that already ends in
 * /v1 is accepted as well. */
static void
tg__trace_url(tg_backend_t *b, int endpoint, char *url, size_t size)
{
    size_t  ulen, n;

    ulen = strlen(b->url);
    n = tg_str_copy(url, size, b->url);
    if (!(ulen >= 3 && strcmp(b->url + ulen - 3, "/v1") == 0)) {
        n += tg_str_copy(url + n, size - n, "/v1");
    }
    tg_str_copy(url + n, size - n, tg_oa_endpoint_path(endpoint));
}


/* Picks a backend not tried yet and starts the transfer on it.  On
 * failure err says why; t stays unstarted. */
static int
tg__trace_launch(tg_trace_t *t, tg_oa_error_t *err)
{
    tg_request_t   *r = t->req;
    tg_backend_t   *b;
    tg_http_req_t   hr;
    char           *text, url[2048];
    const char     *key, *body;
    size_t          body_len;
    int             full;

    for ( ;; ) {
        if (t->group_to != NULL) {
            b = t->group_to;
            t->group_to = NULL;
            full = 0;
        } else {
            b = tg_pool_pick_prefer(t->pool,
                                    t->prefer ? t->prefer : r->prefer,
                                    t->tried, t->ntried, &full);
        }

        if (b == NULL) {
            return tg__trace_none_left(t, full, err);
        }

        t->backend = b;
        t->tried[t->ntried++] = b;

        if (tg__trace_body_text(t, b, &text, &body, &body_len) != 0) {
            tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
            return -ENOMEM;
        }
        tg__trace_url(b, t->endpoint, url, sizeof(url));

        key = b->api_key_env ? getenv(b->api_key_env) : NULL;

        memset(&hr, 0, sizeof(hr));
        hr.url = url;
        hr.api_key = (key && key[0]) ? key : NULL;
        hr.body = body;
        hr.body_len = body_len;
        hr.connect_timeout_ms = (long) b->connect_timeout_ms;
        hr.idle_timeout_ms = (long) b->idle_timeout_ms;
        if (r->timeout_ms > 0
            && (hr.idle_timeout_ms == 0 || r->timeout_ms < hr.idle_timeout_ms
                || t->whole))
        {
            /* A whole answer comes only once it is generated: silence up
             * to thinkgate_timeout is expected there. */
            hr.idle_timeout_ms = (long) r->timeout_ms;
        }
        hr.tls_verify = b->tls_verify;
        hr.tls_ca = b->tls_ca;
        hr.stream = t->stream;

        t->http = tg_http_start(r->engine->http, &hr, &tg__trace_cb, t);
        free(text);

        if (t->http != NULL) {
            tg_backend_started(b);
            tg_backend_serve(b, tg__trace_model(t));
            tg_log_debug("request %llu trace %u: %s %s",
                         (unsigned long long) r->id, t->index, b->name, url);
            return 0;
        }

        /* The client refused at once (bad URL): count it and go on. */
        snprintf(t->err, sizeof(t->err), "the HTTP client could not start "
                 "a request to %.200s", url);
        b->stats->errors++;
        tg_log_warn("%s", t->err);
    }
}


int
tg_trace_restart(tg_trace_t *t, json_t *body, tg_oa_error_t *err)
{
    tg_trace_cancel(t);
    json_decref(t->body);
    t->body = json_incref(body);
    free(t->text.p);
    memset(&t->text, 0, sizeof(t->text));
    t->prefer = t->backend;
    if (t->feeding) {
        t->restart = 1;
        return 0;
    }
    return tg__trace_relaunch(t, err);
}


/* What one transfer left on the trace (its head, parser, error body)
 * cleared for the next; the backends tried stay. */
static void
tg__trace_clear(tg_trace_t *t)
{
    t->status = 0;
    if (t->content_type != t->ctype_in) {
        free(t->content_type);
    }
    t->content_type = NULL;
    if (t->sse_ready) {
        tg_sse_free(&t->sse);
        t->sse_ready = 0;
    }
    t->paused = 0;
    t->done_seen = 0;
    t->bytes = 0;
    t->errbody.start = t->errbody.len = 0;
    t->rc = 0;
}


/* A cancelled trace's transfer state cleared and a new transfer started;
 * the trace runs again on 0. */
static int
tg__trace_relaunch(tg_trace_t *t, tg_oa_error_t *err)
{
    int  rc;

    tg__trace_clear(t);
    t->err[0] = '\0';
    t->ntried = t->nfixed;

    rc = tg__trace_launch(t, err);
    if (rc != 0) {
        t->rc = rc;
        snprintf(t->err, sizeof(t->err), "%.200s", err->message);
        return rc;
    }
    t->ended = 0;
    t->req->traces_running++;
    return 0;
}


void
tg_trace_cancel(tg_trace_t *t)
{
    if (t->waiting) {
        tg_group_wait_remove(t->req->engine, t);
        t->ended = 1;
        t->rc = -ECANCELED;
        t->req->traces_running--;
        return;
    }

    if (t->http == NULL) {
        return;
    }

    tg_http_cancel(t->http);
    t->http = NULL;
    t->ended = 1;
    t->rc = -ECANCELED;
    tg__trace_backend_done(t, -1, NULL);
    t->req->traces_running--;
}


void
tg_trace_pause(tg_trace_t *t, int paused)
{
    if (t->http == NULL || t->paused == (unsigned) !!paused) {
        return;
    }

    t->paused = !!paused;
    tg_http_pause(t->http, paused);
}


void
tg_trace_free(tg_trace_t *t)
{
    tg_trace_cancel(t);
    if (t->sse_ready) {
        tg_sse_free(&t->sse);
    }
    json_decref(t->body);
    free(t->text.p);
    tg_buf_free(&t->errbody);
    tg__trace_release(t);
}


static void
tg__on_head(tg_http_t *h, long status, const char *ctype, void *data)
{
    tg_trace_t    *t = data;
    tg_request_t  *r = t->req;

    (void) h;

    t->status = status;
    if (ctype != NULL && strlen(ctype) < sizeof(t->ctype_in)) {
        t->content_type = strcpy(t->ctype_in, ctype);
    } else if (ctype != NULL) {
        t->content_type = strdup(ctype);
    }

    if (status >= 400 || r->closed) {
        return;
    }

    /* A streamed request answered with plain JSON (some servers do that
     * when they ignore "stream") is relayed as data, not parsed as SSE;
     * a whole answer asked for and streamed all the same is parsed as
     * the stream it is. */
    if ((t->stream && ctype == NULL)
        || ((t->stream || t->whole) && ctype != NULL
            && strstr(ctype, "text/event-stream")))
    {
        tg_sse_init(&t->sse, tg__on_event, t);
        t->sse_ready = 1;
    }

    if (r->strategy->on_head != NULL) {
        r->strategy->on_head(t);
    }
}


static void
tg__on_body(tg_http_t *h, const char *p, size_t n, void *data)
{
    tg_trace_t    *t = data;
    tg_request_t  *r = t->req;
    size_t         room;
    int            rc;
    tg_oa_error_t  e;

    (void) h;

    t->bytes += n;

    if (r->closed || t->ended) {
        return;
    }

    if (t->status >= 400 || t->status == 0) {
        room = TG_TRACE_MAX_ERRBODY - tg_buf_size(&t->errbody);
        if (tg_buf_size(&t->errbody) < TG_TRACE_MAX_ERRBODY) {
            (void) tg_buf_append(&t->errbody, p, n < room ? n : room);
        }
        return;
    }

    if (t->sse_ready) {
        t->feeding = 1;
        rc = tg_sse_feed(&t->sse, p, n);
        t->feeding = 0;
        if (t->restart) {
            /* The strategy restarted the trace from an event: the old
             * stream's parser is gone with it. */
            t->restart = 0;
            if (!r->closed && tg__trace_relaunch(t, &e) != 0) {
                r->strategy->on_trace_end(t);
            }
            return;
        }
        if (rc != 0 && !t->ended) {
            snprintf(t->err, sizeof(t->err), "backend %s sent a bad event "
                     "stream: %s", t->backend->name, strerror(-rc));
            t->rc = -EIO;
            /* Ends the trace now: the strategy sees a failure. */
            tg_http_cancel(t->http);
            t->http = NULL;
            t->ended = 1;
            tg__trace_backend_done(t, 1, t->err);
            r->traces_running--;
            r->strategy->on_trace_end(t);
        }
        return;
    }

    if (r->strategy->on_data != NULL) {
        r->strategy->on_data(t, p, n);
    }
}


static void
tg__on_event(void *data, const char *event, const char *payload, size_t len)
{
    tg_trace_t    *t = data;
    tg_request_t  *r = t->req;

    if (r->closed || t->ended) {
        return;
    }

    if (len == 6 && memcmp(payload, "[DONE]", 6) == 0) {
        t->done_seen = 1;
    }

    if (r->strategy->on_event != NULL) {
        r->strategy->on_event(t, event, payload, len);
    }
}


static void
tg__on_done(tg_http_t *h, int rc, const char *err, void *data)
{
    tg_trace_t    *t = data;
    tg_request_t  *r = t->req;
    tg_oa_error_t  e;
    int            failed;
    char           why[32];

    (void) h;

    /* h is freed after we return; nothing may touch it from here. */
    t->http = NULL;
    t->paused = 0;
    if (err != NULL) {
        snprintf(t->err, sizeof(t->err), "%s", err);
    }

    failed = rc != 0 || t->status >= 500;
    if (failed && rc == 0) {
        snprintf(why, sizeof(why), "HTTP status %ld", t->status);
    }
    tg__trace_backend_done(t, failed, rc == 0 ? why : t->err);

    if (r->closed || t->ended) {
        return;
    }

    /* Retry elsewhere when the connection could not even be made, and
     * once when the backend failed (it died, it reset the connection)
     * before a byte of the answer came: nothing of this trace reached
     * the strategy, so nothing reached the client.  A timeout is not
     * retried: the deadline would pay for it twice. */
    if (t->bytes == 0
        && (rc == -ECONNREFUSED
            || (rc != 0 && rc != -ETIMEDOUT && !t->resent)))
    {
        tg_log_warn("request %llu: backend %s (%s) %s: %s; trying "
                    "another backend of pool %s", (unsigned long long) r->id,
                    t->backend->name, t->backend->url,
                    rc == -ECONNREFUSED ? "unreachable"
                                        : "failed before answering",
                    t->err, t->pool->name);

        if (rc != -ECONNREFUSED) {
            t->resent = 1;
        }
        tg__trace_clear(t);
        if (tg__trace_launch(t, &e) == 0) {
            return;
        }
        t->status = 0;
    }

    t->ended = 1;
    t->rc = rc;
    r->traces_running--;

    if (rc != 0) {
        tg_log_warn("request %llu: backend %s: %s",
                    (unsigned long long) r->id, t->backend->name, t->err);
    }

    r->strategy->on_trace_end(t);
}


static void
tg__error_message(tg_trace_t *t, char *msg, size_t len, char *param,
    size_t plen, char *code, size_t clen)
{
    json_t      *doc, *e, *m;
    const char  *s;

    msg[0] = '\0';
    param[0] = '\0';
    code[0] = '\0';

    doc = json_loadb(tg_buf_ptr(&t->errbody), tg_buf_size(&t->errbody), 0,
                     NULL);
    if (doc != NULL) {
        e = json_object_get(doc, "error");
        m = json_is_object(e) ? json_object_get(e, "message") : e;
        if (!json_is_string(m)) {
            m = json_object_get(doc, "message");
        }
        if (!json_is_string(m)) {
            m = json_object_get(doc, "detail");
        }
        if (json_is_string(m)) {
            snprintf(msg, len, "%s", json_string_value(m));
        }
        if (json_is_object(e)) {
            s = json_string_value(json_object_get(e, "param"));
            if (s != NULL) {
                snprintf(param, plen, "%s", s);
            }
            /* The backend's own code (context_length_exceeded, ...),
             * when it is a plain identifier. */
            s = json_string_value(json_object_get(e, "code"));
            if (s != NULL && s[0] != '\0' && strlen(s) < clen
                && strspn(s, "abcdefghijklmnopqrstuvwxyz"
                             "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
                   == strlen(s))
            {
                snprintf(code, clen, "%s", s);
            }
        }
        json_decref(doc);
    }

    if (msg[0] == '\0') {
        snprintf(msg, len, "%.*s", (int) (tg_buf_size(&t->errbody) < 512
                                          ? tg_buf_size(&t->errbody) : 512),
                 tg_buf_ptr(&t->errbody));
    }
}


int
tg_trace_error(tg_trace_t *t, tg_oa_error_t *err)
{
    char          msg[512], param[96], code[64];
    const char   *name = t->backend ? t->backend->name : "?";

    if (t->rc == 0 && t->status >= 200 && t->status < 400) {
        return 0;
    }

    switch (t->rc) {

    case 0:
        break;

    case -ETIMEDOUT:
        tg_oa_error_set(err, 504, "timeout_error", "backend_timeout", NULL,
                        "Backend \"%s\" sent nothing within the timeout: %s",
                        name, t->err[0] ? t->err : "timed out");
        return 1;

    case -ECONNREFUSED:
        tg_oa_error_set(err, 502, "server_error", "backend_unreachable",
                        NULL, "No backend of pool \"%s\" could be reached; "
                        "last tried \"%s\": %s", t->pool->name, name,
                        t->err[0] ? t->err : "connection refused");
        return 1;

    default:
        tg_oa_error_set(err, 502, "server_error", "backend_error", NULL,
                        "Backend \"%s\" failed: %s", name,
                        t->err[0] ? t->err : strerror(-t->rc));
        return 1;
    }

    tg__error_message(t, msg, sizeof(msg), param, sizeof(param), code,
                      sizeof(code));

    switch (t->status) {

    /* Client errors the backend found in the request itself go back with
     * their status, so that SDKs raise the right exception. */
    case 400:
    case 404:
    case 413:
    case 422:
    case 429:
        tg_oa_error_set(err, (int) t->status, NULL, code[0] ? code : NULL,
                        param[0] ? param : NULL, "%s",
                        msg[0] ? msg : "the backend refused the request");
        return 1;

    default:
        tg_oa_error_set(err, 502, "server_error", "backend_error", NULL,
                        "Backend \"%s\" answered %ld: %s", name, t->status,
                        msg[0] ? msg : "(no message)");
        return 1;
    }
}
