
/*
 * thinkgate nginx module: the engine's answer to one request.  HEAD sets
 * the status and headers, DATA is copied out of the ring and flushed to
 * the client, END and ERROR finish the request; WINDOW credit goes back as
 * the client takes the bytes.
 */


#include "ngx_http_thinkgate.h"


/* WINDOW credit goes back in steps of this many bytes */
#define NGX_HTTP_THINKGATE_CREDIT_STEP  (TG_INITIAL_WINDOW / 16)


static ngx_int_t ngx_http_thinkgate_head(ngx_http_thinkgate_ctx_t *ctx,
    tg_frame_t *f);
static ngx_int_t ngx_http_thinkgate_data(ngx_http_thinkgate_ctx_t *ctx,
    const u_char *p1, size_t l1, const u_char *p2, size_t l2,
    size_t l3);
static ngx_int_t ngx_http_thinkgate_after_output(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx, ngx_int_t rc);
static void ngx_http_thinkgate_end(ngx_http_thinkgate_ctx_t *ctx,
    tg_frame_t *f);
static void ngx_http_thinkgate_error(ngx_http_thinkgate_ctx_t *ctx,
    tg_frame_t *f);
static void ngx_http_thinkgate_abort(ngx_http_thinkgate_ctx_t *ctx,
    ngx_int_t rc);
static void ngx_http_thinkgate_bad_frame(ngx_http_thinkgate_ctx_t *ctx,
    const char *why);


/* A frame from the engine for this request (ring.h frame, still in the
 * ring: everything needed later is copied). */

void
ngx_http_thinkgate_frame(ngx_http_thinkgate_ctx_t *ctx, tg_frame_t *f)
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

        rc = ngx_http_thinkgate_data(ctx, tg_frame_payload(f), f->len,
                                     NULL, 0, 0);
        if (rc == NGX_ERROR) {
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


static ngx_int_t
ngx_http_thinkgate_head(ngx_http_thinkgate_ctx_t *ctx, tg_frame_t *f)
{
    u_char               *p, *last, *eol, *colon, *v;
    off_t                 n;
    size_t                len;
    tg_head_t             head;
    ngx_table_elt_t      *h;
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

        if (len == 12 && ngx_strncasecmp(p, (u_char *) "Content-Type", 12)
                         == 0)
        {
            r->headers_out.content_type.data = colon;
            r->headers_out.content_type.len = v - colon;
            r->headers_out.content_type_len = v - colon;
            r->headers_out.content_type_lowcase = NULL;

        } else if (len == 14
                   && ngx_strncasecmp(p, (u_char *) "Content-Length", 14)
                      == 0)
        {
            n = ngx_atoof(colon, v - colon);
            if (n != NGX_ERROR) {
                r->headers_out.content_length_n = n;
            }

        } else if (!((len == 10
                      && ngx_strncasecmp(p, (u_char *) "Connection", 10)
                         == 0)
                     || (len == 17
                         && ngx_strncasecmp(p,
                                            (u_char *) "Transfer-Encoding",
                                            17)
                            == 0)
                     || (len == 10
                         && ngx_strncasecmp(p, (u_char *) "Keep-Alive", 10)
                            == 0)))
        {
            h = ngx_list_push(&r->headers_out.headers);
            if (h == NULL) {
                return NGX_ERROR;
            }

            h->hash = 1;
            h->key.data = p;
            h->key.len = len;
            h->value.data = colon;
            h->value.len = v - colon;
        }

        p = eol + 1;
    }

    return ngx_http_send_header(r);
}


/*
 * Body bytes to the client, flushed: l1 bytes at p1, l2 at p2 and, when
 * l3 is set, "\n\n" (an SSE event's end).  The bytes are copied out of
 * the ring into reusable buffers of the request.
 */

static ngx_int_t
ngx_http_thinkgate_data(ngx_http_thinkgate_ctx_t *ctx, const u_char *p1,
    size_t l1, const u_char *p2, size_t l2, size_t l3)
{
    size_t               len, size;
    ngx_int_t            rc;
    ngx_buf_t           *b;
    ngx_chain_t         *cl;
    ngx_http_request_t  *r;

    r = ctx->request;
    len = l1 + l2 + (l3 ? 2 : 0);

    ctx->handed += l1;

    if (r->header_only || len == 0) {
        /* nothing goes out, so the credit comes back at once */
        return ngx_http_thinkgate_after_output(r, ctx, NGX_OK);
    }

    cl = ngx_chain_get_free_buf(r->pool, &ctx->free);
    if (cl == NULL) {
        return NGX_ERROR;
    }

    b = cl->buf;

    if (b->start == NULL || (size_t) (b->end - b->start) < len) {
        size = ngx_max(len, 4096);

        b->start = ngx_palloc(r->pool, size);
        if (b->start == NULL) {
            return NGX_ERROR;
        }

        b->end = b->start + size;
    }

    b->pos = b->start;
    b->last = ngx_cpymem(b->start, p1, l1);

    if (l2) {
        b->last = ngx_cpymem(b->last, p2, l2);
    }

    if (l3) {
        *b->last++ = '\n';
        *b->last++ = '\n';
    }

    b->temporary = 1;
    b->flush = 1;
    b->tag = (ngx_buf_tag_t) &ngx_http_thinkgate_module;

    rc = ngx_http_output_filter(r, cl);

    return ngx_http_thinkgate_after_output(r, ctx, rc);
}


/*
 * After output: buffers the client has taken become free again, their
 * bytes become WINDOW credit, and a client that cannot take more gets a
 * write event and a send timeout.
 */

static ngx_int_t
ngx_http_thinkgate_after_output(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx, ngx_int_t rc)
{
    uint64_t                   waiting, credit;
    ngx_chain_t               *cl, *none;
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    none = NULL;
    ngx_chain_update_chains(r->pool, &ctx->free, &ctx->busy, &none,
                            (ngx_buf_tag_t) &ngx_http_thinkgate_module);

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

    if (r->buffered || r->connection->buffered || ctx->busy) {
        if (!wev->delayed && !wev->timer_set) {
            ngx_add_timer(wev, clcf->send_timeout);
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

    if (ngx_http_thinkgate_after_output(r, ctx, rc) != NGX_OK) {
        ngx_http_thinkgate_abort(ctx, NGX_ERROR);
    }
}


static void
ngx_http_thinkgate_end(ngx_http_thinkgate_ctx_t *ctx, tg_frame_t *f)
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

    rc = ngx_http_send_special(r, NGX_HTTP_LAST);
    ngx_http_finalize_request(r, rc);
}


static void
ngx_http_thinkgate_error(ngx_http_thinkgate_ctx_t *ctx, tg_frame_t *f)
{
    u_char              *p;
    size_t               len;
    ngx_int_t            rc;
    tg_head_t            head;
    ngx_http_request_t  *r;

    r = ctx->request;

    ngx_http_thinkgate_engine_forget(ctx, 0);
    ctx->done = 1;

    if (f->len < sizeof(tg_head_t)) {
        head.status = NGX_HTTP_BAD_GATEWAY;
        len = 0;

    } else {
        ngx_memcpy(&head, tg_frame_payload(f), sizeof(tg_head_t));
        len = f->len - sizeof(tg_head_t);
    }

    if (!ctx->headed) {
        p = ngx_pnalloc(r->pool, len + 1);
        if (p == NULL) {
            ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(p, tg_frame_payload(f) + sizeof(tg_head_t), len);

        if (head.status < 100 || head.status > 999) {
            head.status = NGX_HTTP_BAD_GATEWAY;
        }

        rc = ngx_http_thinkgate_send_json(r, head.status, p, len);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->stream) {
        rc = ngx_http_thinkgate_data(ctx, (u_char *) "data: ", 6,
                                     tg_frame_payload(f) + sizeof(tg_head_t),
                                     len, 1);
        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        rc = ngx_http_send_special(r, NGX_HTTP_LAST);
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* a plain body cut short: close, so that the client sees it is cut */

    ngx_http_finalize_request(r, NGX_ERROR);
}


/* The engine is gone while this request is in flight. */

void
ngx_http_thinkgate_fail(ngx_http_thinkgate_ctx_t *ctx)
{
    ngx_int_t            rc;
    ngx_http_request_t  *r;
    static u_char        sse[] = "data: {\"error\":{\"message\":\"thinkgate "
                                 "engine unavailable\",\"type\":"
                                 "\"engine_unavailable\",\"param\":null,"
                                 "\"code\":null}}";

    r = ctx->request;

    ngx_http_thinkgate_engine_forget(ctx, 0);
    ctx->done = 1;

    if (!ctx->headed) {
        rc = ngx_http_thinkgate_unavailable(r, ctx->kind);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (ctx->stream) {
        rc = ngx_http_thinkgate_data(ctx, sse, sizeof(sse) - 1, NULL, 0, 1);
        if (rc == NGX_ERROR) {
            ngx_http_finalize_request(r, NGX_ERROR);
            return;
        }

        rc = ngx_http_send_special(r, NGX_HTTP_LAST);
        ngx_http_finalize_request(r, rc);
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

    if (ctx->headed) {
        ngx_http_finalize_request(r, NGX_ERROR);
        return;
    }

    ngx_str_set(&msg, "thinkgate engine protocol error");
    rc = ngx_http_thinkgate_send_error(r, NGX_HTTP_BAD_GATEWAY,
                                       "engine_error", &msg);
    ngx_http_finalize_request(r, rc);
}
