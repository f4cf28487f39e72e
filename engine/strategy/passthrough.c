/*
 * passthrough: one trace on the location's pool, relayed as it comes.
 *
 * Streamed: HEAD (200, text/event-stream) when the first event arrives,
 * then every event re-framed as "data: ...\n\n" (usage, finish_reason and
 * reasoning_content untouched, since payloads are relayed byte for byte),
 * END after the stream ends.  Not streamed: HEAD with the backend's status
 * and content type on the first body bytes, the body as it comes, END.
 * A trace that fails before anything was sent becomes an OpenAI-shaped
 * error with the right status; after HEAD it becomes an ERROR frame, which
 * the worker turns into an SSE error event.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <thinkgate/protocol.h>

#include "core/strategy.h"
#include "log.h"

static int tg__pt_start(tg_request_t *r, tg_oa_error_t *err);
static void tg__pt_on_event(tg_trace_t *t, const char *event,
    const char *payload, size_t len);
static void tg__pt_on_data(tg_trace_t *t, const char *p, size_t n);
static void tg__pt_on_trace_end(tg_trace_t *t);
static int tg__pt_head(tg_trace_t *t);

const tg_strategy_t  tg_strategy_passthrough = {
    "passthrough",
    tg__pt_start,
    NULL,
    tg__pt_on_event,
    tg__pt_on_data,
    tg__pt_on_trace_end,
    NULL,
    NULL
};


const tg_strategy_t *
tg_strategy_find(const char *name)
{
    if (strcmp(name, tg_strategy_passthrough.name) == 0) {
        return &tg_strategy_passthrough;
    }
    return NULL;
}


static int
tg__pt_start(tg_request_t *r, tg_oa_error_t *err)
{
    tg_trace_t  *t;
    tg_pool_t   *pool;

    pool = tg_generation_pool(r->gen, r->pool_name);

    return tg_trace_start(r, pool, r->oa.endpoint, r->oa.body, r->oa.stream,
                          &t, err);
}


static int
tg__pt_head(tg_trace_t *t)
{
    tg_request_t  *r = t->req;
    char           hdr[512];

    if (r->head_sent || r->head_pending) {
        return 0;
    }

    if (t->stream && t->sse_ready) {
        return tg_request_head(r, 200, TG_HEAD_F_STREAM,
                               "Content-Type: text/event-stream\r\n"
                               "Cache-Control: no-cache\r\n");
    }

    snprintf(hdr, sizeof(hdr), "Content-Type: %.400s\r\n",
             t->content_type ? t->content_type : "application/json");

    return tg_request_head(r, (int) t->status, 0, hdr);
}


static void
tg__pt_on_event(tg_trace_t *t, const char *event, const char *payload,
    size_t len)
{
    tg_request_t  *r = t->req;
    const char    *p, *nl, *end;
    tg_buf_t       b = { 0 };
    int            rc;

    if (tg__pt_head(t) != 0) {
        goto failed;
    }

    /* Multi-line data goes back as several data lines, as it came. */
    rc = 0;
    if (strcmp(event, "message") != 0) {
        rc = tg_buf_printf(&b, "event: %s\n", event);
    }
    end = payload + len;
    for (p = payload; rc == 0; p = nl + 1) {
        nl = memchr(p, '\n', (size_t) (end - p));
        rc = tg_buf_append(&b, "data: ", 6);
        if (rc == 0) {
            rc = tg_buf_append(&b, p, (size_t) ((nl ? nl : end) - p));
        }
        if (rc == 0) {
            rc = tg_buf_append(&b, "\n", 1);
        }
        if (nl == NULL) {
            break;
        }
    }
    if (rc == 0) {
        rc = tg_buf_append(&b, "\n", 1);
    }
    if (rc == 0) {
        rc = tg_request_data(r, tg_buf_ptr(&b), tg_buf_size(&b));
    }
    tg_buf_free(&b);

    if (rc == 0 || rc == -EPIPE) {
        return;
    }

failed:
    tg_log_error("request %llu: out of memory relaying a stream",
                 (unsigned long long) r->id);
    tg_trace_cancel(t);
    {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg_request_error(r, &err);
    }
}


static void
tg__pt_on_data(tg_trace_t *t, const char *p, size_t n)
{
    tg_request_t  *r = t->req;
    tg_oa_error_t  err;
    int            rc;

    rc = tg__pt_head(t);
    if (rc == 0) {
        rc = tg_request_data(r, p, n);
    }
    if (rc == 0 || rc == -EPIPE) {
        return;
    }

    tg_trace_cancel(t);
    tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
    tg_request_error(r, &err);
}


static void
tg__pt_on_trace_end(tg_trace_t *t)
{
    tg_request_t  *r = t->req;
    tg_oa_error_t  err;
    json_t        *figures;

    if (tg_trace_error(t, &err)) {
        tg_request_error(r, &err);
        return;
    }

    /* A successful answer with an empty body still gets its HEAD. */
    if (tg__pt_head(t) != 0) {
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg_request_error(r, &err);
        return;
    }

    figures = json_pack("{s:s, s:i, s:s}", "strategy", "passthrough",
                        "traces", 1, "backend", t->backend->name);
    tg_request_end(r, figures);
}
