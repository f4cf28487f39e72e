
/*
 * thinkgate nginx module: the engine's answer to one request.  HEAD sets
 * the status and headers, DATA is copied out of the ring, END and ERROR
 * finish the request; WINDOW credit goes back as nginx writes the bytes
 * to the client's socket, so that a client that does not read stops its
 * backends instead of filling this worker's memory.
 *
 * The DATA of one ring pass is collected per request and handed to nginx
 * in one flushed output_filter call when the pass ends.  A non-streamed
 * answer is held until END, so that it leaves with Content-Length and the
 * last buffer in one write; one still growing past
 * NGX_HTTP_THINKGATE_HOLD_MAX when a pass ends goes out chunked as it
 * comes instead.  (One pass may bring more, never more than the window.)
 */


#include "ngx_http_thinkgate.h"


/* WINDOW credit goes back in steps of this many bytes */
#define NGX_HTTP_THINKGATE_CREDIT_STEP  (TG_INITIAL_WINDOW / 16)

/* the smallest output buffer, a page like proxy_buffer_size; it is always
 * a large pool allocation, so that ngx_pfree() gives it back */
#define NGX_HTTP_THINKGATE_BUF_SIZE     4096

/* held answers stay well inside the initial window: the engine must not
 * wait for credit that only their sending would return */
#define NGX_HTTP_THINKGATE_HOLD_MAX     (TG_INITIAL_WINDOW / 4)


static ngx_int_t ngx_http_thinkgate_head(ngx_http_thinkgate_ctx_t *ctx,
    const tg_frame_view_t *f);
static ngx_int_t ngx_http_thinkgate_head_header(ngx_http_request_t *r,
    u_char *name, size_t len, u_char *value, u_char *end);
static ngx_int_t ngx_http_thinkgate_data(ngx_http_thinkgate_ctx_t *ctx,
    const u_char *p, size_t len);
static ngx_int_t ngx_http_thinkgate_append(ngx_http_thinkgate_ctx_t *ctx,
    const u_char *p, size_t len);
static ngx_int_t ngx_http_thinkgate_send(ngx_http_thinkgate_ctx_t *ctx,
    ngx_uint_t last);
static ngx_int_t ngx_http_thinkgate_after_output(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx, ngx_chain_t *out, ngx_int_t rc);
static void ngx_http_thinkgate_end(ngx_http_thinkgate_ctx_t *ctx,
    const tg_frame_view_t *f);
static void ngx_http_thinkgate_error(ngx_http_thinkgate_ctx_t *ctx,
    const tg_frame_view_t *f);
static void ngx_http_thinkgate_sse_error(ngx_http_thinkgate_ctx_t *ctx,
    const u_char *p, size_t len);
static ngx_int_t ngx_http_thinkgate_unhead(ngx_http_thinkgate_ctx_t *ctx);
static void ngx_http_thinkgate_abort(ngx_http_thinkgate_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_http_thinkgate_bad_frame(ngx_http_thinkgate_ctx_t *ctx,
    const char *why);


/* A frame from the engine for this request (ring.h frame, still in the
 * ring: everything needed later is copied). */

void
ngx_http_thinkgate_frame(ngx_http_thinkgate_ctx_t *ctx,
    const tg_frame_view_t *f)
{
    ngx_int_t  rc;

    switch (f->type) {

    case TG_FRAME_HEAD:
        if (ctx->headed) {
            ngx_http_thinkgate_bad_frame(ctx, "second HEAD");
            return;
        }

        rc = ngx_http_thinkgate_head(ctx, f);
        if (rc == NGX_ERROR || rc > NGX_OK) {
            ngx_http_thinkgate_abort(ctx, rc);
        }

        return;

    case TG_FRAME_DATA:
        if (!ctx->headed) {
            ngx_http_thinkgate_bad_frame(ctx, "DATA before HEAD");
            return;
        }

        if (ngx_http_thinkgate_data(ctx, tg_frame_payload(f), f->len)
            != NGX_OK)
        {
            ngx_http_thinkgate_abort(ctx, NGX_ERROR);
        }

        return;

    case TG_FRAME_END:
        ngx_http_thinkgate_end(ctx, f);
        return;

    case TG_FRAME_ERROR:
        ngx_http_thinkgate_error(ctx, f);
        return;

    default:
        ngx_log_error(NGX_LOG_WARN, ctx->request->connection->log, 0,
                      "thinkgate: unknown frame type %uD from engine",
                      (uint32_t) f->type);
        return;
    }
}


/* One header line of HEAD, name (len bytes) and value up to end: the
 * type and length set, hop-by-hop headers dropped, others added. */

static ngx_int_t
ngx_http_thinkgate_head_header(ngx_http_request_t *r, u_char *name,
    size_t len, u_char *value, u_char *end)
{
    off_t             n;
    ngx_table_elt_t  *h;

    if (len == 12 && ngx_strncasecmp(name, (u_char *) "Content-Type", 12)
                     == 0)
    {
        r->headers_out.content_type.data = value;
        r->headers_out.content_type.len = end - value;
        r->headers_out.content_type_len = end - value;
        r->headers_out.content_type_lowcase = NULL;

    } else if (len == 14
               && ngx_strncasecmp(name, (u_char *) "Content-Length", 14)
                  == 0)
    {
        n = ngx_atoof(value, end - value);
        if (n != NGX_ERROR) {
            r->headers_out.content_length_n = n;
        }

    } else if (!((len == 10
                  && ngx_strncasecmp(name, (u_char *) "Connection", 10)
                     == 0)
                 || (len == 17
                     && ngx_strncasecmp(name,
                                        (u_char *) "Transfer-Encoding",
                                        17)
                        == 0)
                 || (len == 10
                     && ngx_strncasecmp(name, (u_char *) "Keep-Alive", 10)
                        == 0)))
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            return NGX_ERROR;
        }

        h->hash = 1;
        h->key.data = name;
        h->key.len = len;
        h->value.data = value;
        h->value.len = end - value;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_thinkgate_head(ngx_http_thinkgate_ctx_t *ctx, const tg_frame_view_t *f)
{
    u_char               *p, *last, *eol, *colon, *v;
    size_t                len;
    tg_head_t             head;
    ngx_http_request_t   *r;

    r = ctx->request;

    if (f->len < sizeof(tg_head_t)) {
        ngx_http_thinkgate_bad_frame(ctx, "short HEAD");
        return NGX_OK;
    }

    ngx_memcpy(&head, tg_frame_payload(f), sizeof(tg_head_t));

    if (head.status < 100 || head.status > 999) {
        ngx_http_thinkgate_bad_frame(ctx, "bad status in HEAD");
        return NGX_OK;
    }

    len = f->len - sizeof(tg_head_t);

    p = ngx_pnalloc(r->pool, len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(p, tg_frame_payload(f) + sizeof(tg_head_t), len);
    last = p + len;

    r->headers_out.status = head.status;
    r->headers_out.content_length_n = -1;
    ctx->headed = 1;
    ctx->stream = (head.flags & TG_HEAD_F_STREAM) ? 1 : 0;
    ctx->hold = !ctx->stream;

    while (p < last) {
        eol = ngx_strlchr(p, last, '\n');
        if (eol == NULL) {
            eol = last;
        }

        v = eol;
        if (v > p && v[-1] == '\r') {
            v--;
        }

        colon = ngx_strlchr(p, v, ':');

        if (colon == NULL || colon == p) {
            p = eol + 1;
            continue;
        }

        len = colon - p;
        colon++;

        while (colon < v && (*colon == ' ' || *colon == '\t')) {
            colon++;
        }

        if (ngx_http_thinkgate_head_header(r, p, len, colon, v) != NGX_OK) {
            return NGX_ERROR;
        }

        p = eol + 1;
    }

    /* a held answer gets its header at END, with Content-Length */

    if (ctx->hold) {
        return NGX_OK;
    }

    return ngx_http_send_header(r);
}


/* DATA: copied out of the ring, to leave when this ring pass ends. */

static ngx_int_t
ngx_http_thinkgate_data(ngx_http_thinkgate_ctx_t *ctx, const u_char *p,
    size_t len)
{
    size_t               n;
    ngx_http_request_t  *r;

    r = ctx->request;

    /* an SSE error must not be glued to an event the engine cut short */

    for (n = 0; n < len && n < 2 && p[len - 1 - n] == '\n'; n++) {
        /* void */
    }

    ctx->newlines = (n == len) ? ngx_min(ctx->newlines + n, 2) : n;

    if (r->header_only || len == 0) {
        /* nothing goes out, so the credit comes back at once */
        ctx->handed += len;
        ngx_http_thinkgate_engine_pass(ctx);
        return NGX_OK;
    }

    if (ngx_http_thinkgate_append(ctx, p, len) != NGX_OK) {
        return NGX_ERROR;
    }

    ctx->pending_len += len;
    ngx_http_thinkgate_engine_pass(ctx);

    return NGX_OK;
}


/*
 * Appends bytes to the pending chain: into the room left in its last
 * buffer, then into buffers taken from the free list, each given fresh
 * memory of at least NGX_HTTP_THINKGATE_BUF_SIZE bytes.
 */

static ngx_int_t
ngx_http_thinkgate_append(ngx_http_thinkgate_ctx_t *ctx, const u_char *p,
    size_t len)
{
    size_t               n, size;
    u_char              *start;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->pending == NULL) {
        ctx->pending_end = &ctx->pending;
        ctx->pending_buf = NULL;
    }

    b = ctx->pending_buf;

    while (len) {

        if (b == NULL || b->last == b->end) {
            cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            size = ngx_max(len, NGX_HTTP_THINKGATE_BUF_SIZE);

            start = ngx_palloc(r->pool, size);
            if (start == NULL) {
                return NGX_ERROR;
            }

            b = cl->buf;
            ngx_memzero(b, sizeof(ngx_buf_t));

            b->start = start;
            b->pos = start;
            b->last = start;
            b->end = start + size;
            b->temporary = 1;
            b->tag = (ngx_buf_tag_t) &ngx_http_thinkgate_module;

            *ctx->pending_end = cl;
            ctx->pending_end = &cl->next;
            ctx->pending_buf = b;
        }

        n = ngx_min(len, (size_t) (b->end - b->last));
        b->last = ngx_cpymem(b->last, p, n);
        p += n;
        len -= n;
    }

    return NGX_OK;
}


/* The ring pass is over: what it brought for this request goes out. */

void
ngx_http_thinkgate_pass_end(ngx_http_thinkgate_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (ctx->hold) {
        if (ctx->pending_len <= NGX_HTTP_THINKGATE_HOLD_MAX) {
            if (r->header_only
                && ngx_http_thinkgate_after_output(r, ctx, NULL, NGX_OK)
                   != NGX_OK)
            {
                ngx_http_thinkgate_abort(ctx, NGX_ERROR);
            }

            return;
        }

        /* too long to hold: chunked from here on */

        ctx->hold = 0;

        rc = ngx_http_send_header(r);
        if (rc == NGX_ERROR || rc > NGX_OK) {
            ngx_http_thinkgate_abort(ctx, rc);
            return;
        }
    }

    if (ngx_http_thinkgate_send(ctx, 0) != NGX_OK) {
        ngx_http_thinkgate_abort(ctx, NGX_ERROR);
    }
}


/*
 * The pending chain to nginx in one call, flushed, or with the response's
 * last buffer (the request then ends: its buffers are not reused, and the
 * caller finalizes with what this returns).
 */

static ngx_int_t
ngx_http_thinkgate_send(ngx_http_thinkgate_ctx_t *ctx, ngx_uint_t last)
{
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t         *out;
    ngx_http_request_t  *r;

    r = ctx->request;
    out = ctx->pending;

    if (out == NULL) {
        if (last) {
            return ngx_http_send_special(r, NGX_HTTP_LAST);
        }

        return ngx_http_thinkgate_after_output(r, ctx, NULL, NGX_OK);
    }

    b = ctx->pending_buf;
    b->flush = 1;

    if (last) {
        if (r == r->main && !r->post_action) {
            b->last_buf = 1;

        } else {
            b->last_in_chain = 1;
        }
    }

    ctx->pending = NULL;
    ctx->pending_end = &ctx->pending;
    ctx->pending_buf = NULL;
    ctx->handed += ctx->pending_len;
    ctx->pending_len = 0;

    rc = ngx_http_output_filter(r, out);

    if (last) {
        return rc;
    }

    return ngx_http_thinkgate_after_output(r, ctx, out, rc);
}


/*
 * After output: buffers the client has taken become free again and give
 * their memory back, their bytes become WINDOW credit, and a client that
 * cannot take more gets a write event and a send timeout.  Bytes still in
 * busy buffers (nginx could not write them yet) earn no credit, so the
 * engine can never have more than its window in this worker.
 */

static ngx_int_t
ngx_http_thinkgate_after_output(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx, ngx_chain_t *out, ngx_int_t rc)
{
    uint64_t                   waiting, credit;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &out,
                            (ngx_buf_tag_t) &ngx_http_thinkgate_module);

    /*
     * Freed buffers come first on the free list; an idle stream keeps
     * only the small buffer and link structures for reuse.
     */

    for (cl = ctx->free; cl && cl->buf->start; cl = cl->next) {
        b = cl->buf;
        ngx_pfree(r->pool, b->start);
        b->start = NULL;
        b->pos = NULL;
        b->last = NULL;
        b->end = NULL;
    }

    waiting = 0;

    for (cl = ctx->busy; cl; cl = cl->next) {
        waiting += ngx_buf_size(cl->buf);
    }

    /* busy buffers may hold an SSE error line, not counted in handed */

    credit = ctx->handed - ctx->credited;
    credit = (credit > waiting) ? credit - waiting : 0;

    if (ctx->in_tree && credit >= NGX_HTTP_THINKGATE_CREDIT_STEP) {
        ctx->credited += credit;
        ngx_http_thinkgate_engine_control(ctx, TG_FRAME_WINDOW,
                                          (uint32_t) credit);
    }

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /*
     * send_timeout bounds the time between two writes that took bytes, as
     * in ngx_http_writer(): the timer starts again whenever the client
     * took some, else a slow reader that keeps reading would be cut
     * send_timeout after it first fell behind.
     */

    if (r->buffered || r->connection->buffered || ctx->busy) {
        if (!wev->delayed
            && (!wev->timer_set || r->connection->sent != ctx->sent_mark))
        {
            ngx_add_timer(wev, clcf->send_timeout);
            ctx->sent_mark = r->connection->sent;
        }

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            return NGX_ERROR;
        }

    } else if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    return NGX_OK;
}


void
ngx_http_thinkgate_write_handler(ngx_http_request_t *r)
{
    ngx_int_t                  rc;
    ngx_event_t               *wev;
    ngx_connection_t          *c;
    ngx_http_thinkgate_ctx_t  *ctx;

    c = r->connection;
    wev = c->write;
    ctx = ngx_http_get_module_ctx(r, ngx_http_thinkgate_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_thinkgate_abort(ctx, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (wev->delayed || r->aio) {
        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_thinkgate_abort(ctx, NGX_ERROR);
        }

        return;
    }

    rc = ngx_http_output_filter(r, NULL);

    if (ngx_http_thinkgate_after_output(r, ctx, NULL, rc) != NGX_OK) {
        ngx_http_thinkgate_abort(ctx, NGX_ERROR);
    }
}


static void
ngx_http_thinkgate_end(ngx_http_thinkgate_ctx_t *ctx, const tg_frame_view_t *f)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_http_thinkgate_engine_forget(ctx, 0);
    ctx->done = 1;

    if (!ctx->headed) {
        ngx_http_thinkgate_bad_frame(ctx, "END before HEAD");
        return;
    }

    /* the figures for $thinkgate_NAME; losing them fails no response */

    if (ngx_http_thinkgate_figures(ctx, tg_frame_payload(f), f->len)
        != NGX_OK)
    {
        ctx->figures = NULL;
    }

    if (ctx->hold) {
        /* the whole answer is here: header, body and end in one write */

        ctx->hold = 0;
        r->headers_out.content_length_n = ctx->handed + ctx->pending_len;

        rc = ngx_http_send_header(r);

        if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
            ngx_http_finalize_request(r, rc);
            return;
        }
    }

    rc = ngx_http_thinkgate_send(ctx, 1);
    ngx_http_finalize_request(r, rc);
}


/*
 * ERROR: the engine's error body (an OpenAI error object) as the answer,
 * or as the stream's last event.  An ERROR without a body (the engine
 * could not render one) gets the module's, in the same shape.
 */

static void
ngx_http_thinkgate_error(ngx_http_thinkgate_ctx_t *ctx,
    const tg_frame_view_t *f)
{
    u_char              *p;
    ngx_int_t            rc;
    ngx_str_t            body;
    tg_head_t            head;
    ngx_http_request_t  *r;
    static ngx_str_t     msg = ngx_string("thinkgate engine failed this "
                                          "request without a reason");

    r = ctx->request;

    ngx_http_thinkgate_engine_forget(ctx, 0);
    ctx->done = 1;

    body.data = (u_char *) tg_frame_payload(f) + sizeof(tg_head_t);
    body.len = 0;

    if (f->len < sizeof(tg_head_t)) {
        head.status = NGX_HTTP_BAD_GATEWAY;

    } else {
        ngx_memcpy(&head, tg_frame_payload(f), sizeof(tg_head_t));
        body.len = f->len - sizeof(tg_head_t);
    }

    if (body.len == 0) {
        if (ngx_http_thinkgate_error_body(r->pool, "engine_error", NULL,
                                          &msg, &body)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        body.len--;             /* the newline: the engine's have none */
    }

    /* nothing has left yet (no HEAD, or a held answer): the error is it */

    if (!ctx->headed || ctx->hold) {
        if (ngx_http_thinkgate_unhead(ctx) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        p = ngx_pnalloc(r->pool, body.len + 1);
        if (p == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(p, body.data, body.len);

        if (head.status < 100 || head.status > 999) {
            head.status = NGX_HTTP_BAD_GATEWAY;
        }

        rc = ngx_http_thinkgate_send_json(r, head.status, p, body.len);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->stream) {
        ngx_http_thinkgate_sse_error(ctx, body.data, body.len);
        return;
    }

    /* a plain body cut short: close, so that the client sees it is cut */

    ngx_http_finalize_request(r, NGX_ERROR);
}


/* "data: ERROR\n\n" after what is pending, and the end of the stream. */

static void
ngx_http_thinkgate_sse_error(ngx_http_thinkgate_ctx_t *ctx, const u_char *p,
    size_t len)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;

    r = ctx->request;

    if (!r->header_only
        && (ngx_http_thinkgate_append(ctx,
                                      (u_char *) "\n\ndata: "
                                      + ctx->newlines,
                                      8 - ctx->newlines)
            != NGX_OK
            || ngx_http_thinkgate_append(ctx, p, len) != NGX_OK
            || ngx_http_thinkgate_append(ctx, (u_char *) "\n\n", 2)
               != NGX_OK))
    {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    rc = ngx_http_thinkgate_send(ctx, 1);
    ngx_http_finalize_request(r, rc);
}


/*
 * Drops an answer none of which has left (HEAD of a held one and its
 * DATA), so that an error response can take its place.
 */

static ngx_int_t
ngx_http_thinkgate_unhead(ngx_http_thinkgate_ctx_t *ctx)
{
    ngx_http_request_t  *r;

    r = ctx->request;

    ctx->pending = NULL;
    ctx->pending_end = &ctx->pending;
    ctx->pending_buf = NULL;
    ctx->pending_len = 0;

    if (!ctx->headed) {
        return NGX_OK;
    }

    ctx->headed = 0;
    ctx->hold = 0;

    r->headers_out.status = 0;
    r->headers_out.content_length_n = -1;

    return ngx_list_init(&r->headers_out.headers, r->pool, 20,
                         sizeof(ngx_table_elt_t));
}


/* The engine is gone while this request is in flight. */

void
ngx_http_thinkgate_fail(ngx_http_thinkgate_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_str_t            body;
    ngx_http_request_t  *r;
    static ngx_str_t     msg = ngx_string("thinkgate engine unavailable");

    r = ctx->request;

    ngx_http_thinkgate_engine_forget(ctx, 0);
    ctx->done = 1;

    if (!ctx->headed || ctx->hold) {
        if (ngx_http_thinkgate_unhead(ctx) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        rc = ngx_http_thinkgate_unavailable(r, ctx->kind);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->stream) {
        if (ngx_http_thinkgate_error_body(r->pool, "engine_unavailable", NULL,
                                          &msg, &body)
            != NGX_OK)
        {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        /* the event's data without the body's newline */
        ngx_http_thinkgate_sse_error(ctx, body.data, body.len - 1);
        return;
    }

    ngx_http_finalize_request(r, NGX_ERROR);
}


/* The client or nginx gave up: the engine is told, the request ends. */

static void
ngx_http_thinkgate_abort(ngx_http_thinkgate_ctx_t *ctx, ngx_int_t rc)
{
    ngx_http_thinkgate_engine_forget(ctx, 1);
    ctx->done = 1;

    ngx_http_finalize_request(ctx->request, rc);
}


/* A frame that breaks protocol.h for this request: 502 or a cut. */

static void
ngx_http_thinkgate_bad_frame(ngx_http_thinkgate_ctx_t *ctx, const char *why)
{
    ngx_int_t            rc;
    ngx_str_t            msg;
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "thinkgate: engine protocol error: %s", why);

    ngx_http_thinkgate_engine_forget(ctx, 1);
    ctx->done = 1;

    if (ctx->headed && !ctx->hold) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    if (ngx_http_thinkgate_unhead(ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_str_set(&msg, "thinkgate engine protocol error");
    rc = ngx_http_thinkgate_send_error(r, NGX_HTTP_BAD_GATEWAY,
                                       "engine_error", NULL, &msg);
    ngx_http_finalize_request(r, rc);
}
