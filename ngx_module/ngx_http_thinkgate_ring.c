
/*
 * thinkgate nginx module: the rings of a registered worker.  REQUEST,
 * CANCEL and WINDOW go into to_engine, in order: when it is full they wait
 * in a FIFO queue until the engine rings because it freed room.  Frames
 * from to_worker are dispatched by request id; unknown ids are requests
 * already gone.
 */


#include "ngx_http_thinkgate.h"


static void ngx_http_thinkgate_engine_flush(void);
static ngx_int_t ngx_http_thinkgate_engine_write_request(
    ngx_http_thinkgate_ctx_t *ctx);
static ngx_http_thinkgate_ctx_t *ngx_http_thinkgate_engine_lookup(
    uint64_t id);


/*
 * Writes queued frames, then dispatches every frame the engine wrote.  The
 * DATA of this pass collects per request; each request with output then
 * makes one output_filter call, so that a burst of frames costs one write
 * to the client.
 */

ngx_int_t
ngx_http_thinkgate_engine_service(void)
{
    int                           err;
    uint64_t                      id;
    tg_frame_view_t               view;
    const tg_frame_view_t        *f;
    ngx_queue_t                  *q;
    ngx_connection_t             *c;
    ngx_http_thinkgate_ctx_t     *ctx;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    ngx_http_thinkgate_engine_flush();

    for ( ;; ) {
        f = tg_ring_peek(&e->to_worker, &view, &err);

        if (f == NULL) {
            break;
        }

        id = f->id;
        ctx = ngx_http_thinkgate_engine_lookup(id);

        /* unknown ids are requests already gone */

        if (ctx) {
            c = ctx->request->connection;
            ngx_http_thinkgate_frame(ctx, f);

        } else {
            c = NULL;
        }

        if (tg_ring_consume(&e->to_worker, f)) {
            ngx_http_thinkgate_engine_bell();
        }

        if (c) {
            ngx_http_run_posted_requests(c);
        }
    }

    while (!ngx_queue_empty(&e->pass)) {
        q = ngx_queue_head(&e->pass);
        ngx_queue_remove(q);

        ctx = ngx_queue_data(q, ngx_http_thinkgate_ctx_t, pass);
        ctx->in_pass = 0;

        c = ctx->request->connection;
        ngx_http_thinkgate_pass_end(ctx);
        ngx_http_run_posted_requests(c);
    }

    ngx_http_thinkgate_engine_flush();

    return err ? NGX_ERROR : NGX_OK;
}


/* The request has output waiting for the end of this ring pass. */

void
ngx_http_thinkgate_engine_pass(ngx_http_thinkgate_ctx_t *ctx)
{
    if (!ctx->in_pass) {
        ngx_queue_insert_tail(&ngx_http_thinkgate_engine.pass, &ctx->pass);
        ctx->in_pass = 1;
    }
}


/* Writes queued frames in order until the ring is full again. */

static void
ngx_http_thinkgate_engine_flush(void)
{
    int                           rc;
    ngx_int_t                     rv;
    ngx_queue_t                  *q;
    ngx_http_thinkgate_out_t     *out;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    while (!ngx_queue_empty(&e->out)) {
        q = ngx_queue_head(&e->out);
        out = ngx_queue_data(q, ngx_http_thinkgate_out_t, queue);

        if (out->ctx) {
            rv = ngx_http_thinkgate_engine_write_request(out->ctx);
            if (rv == NGX_AGAIN) {
                return;
            }

            ngx_queue_remove(q);
            out->ctx->queued = 0;

            if (rv == NGX_ERROR) {
                ngx_http_thinkgate_fail(out->ctx);
            }

            continue;
        }

        rc = tg_ring_write(&e->to_engine, out->type, 0, out->id,
                           &out->value, out->type == TG_FRAME_WINDOW ? 4 : 0,
                           NULL, 0);
        if (rc == -EAGAIN) {
            return;
        }

        if (rc == 1) {
            ngx_http_thinkgate_engine_bell();
        }

        ngx_queue_remove(q);
        ngx_queue_insert_tail(&e->free_out, q);
    }
}


/*
 * REQUEST frames of one request: meta and as much body as fits, then
 * body continuations flagged MORE until the last.
 */

static ngx_int_t
ngx_http_thinkgate_engine_write_request(ngx_http_thinkgate_ctx_t *ctx)
{
    int                           rc;
    size_t                        max, head, chunk;
    uint16_t                      flags;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    max = tg_ring_max_payload(&e->to_engine);

    while (!ctx->sent) {
        head = ctx->meta_sent ? 0 : ctx->meta.len;

        if (head > max) {
            ngx_log_error(NGX_LOG_ERR, ctx->request->connection->log, 0,
                          "thinkgate: request meta of %uz bytes does not "
                          "fit a frame of the %uz-byte ring",
                          ctx->meta.len, e->mcf->ring_size);
            return NGX_ERROR;
        }

        chunk = ngx_min(ctx->body_len - ctx->body_sent, max - head);
        flags = (ctx->body_sent + chunk < ctx->body_len) ? TG_FRAME_F_MORE
                                                          : 0;

        rc = tg_ring_write(&e->to_engine, TG_FRAME_REQUEST, flags, ctx->id,
                           ctx->meta.data, head,
                           ctx->body + ctx->body_sent, chunk);
        if (rc == -EAGAIN) {
            return NGX_AGAIN;
        }

        if (rc < 0) {
            return NGX_ERROR;
        }

        if (rc == 1) {
            ngx_http_thinkgate_engine_bell();
        }

        ctx->meta_sent = 1;
        ctx->body_sent += chunk;

        if (flags == 0) {
            ctx->sent = 1;
        }
    }

    return NGX_OK;
}


/*
 * Starts a request: NGX_OK when its frames are written or queued,
 * NGX_DECLINED when the engine is not connected, NGX_ERROR when the
 * request cannot be framed.
 */

ngx_int_t
ngx_http_thinkgate_engine_submit(ngx_http_thinkgate_ctx_t *ctx)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->state != NGX_HTTP_THINKGATE_CONNECTED) {
        return NGX_DECLINED;
    }

    if (ctx->meta.len > tg_ring_max_payload(&e->to_engine)) {
        return NGX_ERROR;
    }

    ctx->node.key = (ngx_rbtree_key_t) ctx->id;
    ngx_rbtree_insert(&e->tree, &ctx->node);
    ctx->in_tree = 1;

    if (e->inflight++ == 0 && !e->keeper.timer_set) {
        ngx_add_timer(&e->keeper, NGX_HTTP_THINKGATE_KEEPER_PERIOD);
    }

    ctx->out.ctx = ctx;

    if (!ngx_queue_empty(&e->out)
        || ngx_http_thinkgate_engine_write_request(ctx) == NGX_AGAIN)
    {
        ngx_queue_insert_tail(&e->out, &ctx->out.queue);
        ctx->queued = 1;
    }

    return NGX_OK;
}


/* CANCEL or WINDOW for a request; queued when the ring is full. */

void
ngx_http_thinkgate_engine_control(ngx_http_thinkgate_ctx_t *ctx,
    uint16_t type, uint32_t value)
{
    int                           rc;
    ngx_queue_t                  *q;
    ngx_http_thinkgate_out_t     *out;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->state != NGX_HTTP_THINKGATE_CONNECTED) {
        return;
    }

    if (ngx_queue_empty(&e->out)) {
        rc = tg_ring_write(&e->to_engine, type, 0, ctx->id, &value,
                           type == TG_FRAME_WINDOW ? 4 : 0, NULL, 0);
        if (rc >= 0) {
            if (rc == 1) {
                ngx_http_thinkgate_engine_bell();
            }

            return;
        }
    }

    if (!ngx_queue_empty(&e->free_out)) {
        q = ngx_queue_head(&e->free_out);
        ngx_queue_remove(q);
        out = ngx_queue_data(q, ngx_http_thinkgate_out_t, queue);

    } else {
        out = ngx_alloc(sizeof(ngx_http_thinkgate_out_t), e->log);
        if (out == NULL) {
            return;
        }
    }

    out->ctx = NULL;
    out->id = ctx->id;
    out->type = type;
    out->value = value;

    ngx_queue_insert_tail(&e->out, &out->queue);
}


/*
 * The request is finished or gone: it leaves the tree and the queue; with
 * cancel, the engine is told to stop it if it has seen any of it.
 */

void
ngx_http_thinkgate_engine_forget(ngx_http_thinkgate_ctx_t *ctx,
    ngx_uint_t cancel)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (ctx->queued) {
        ngx_queue_remove(&ctx->out.queue);
        ctx->queued = 0;
    }

    if (ctx->in_pass) {
        ngx_queue_remove(&ctx->pass);
        ctx->in_pass = 0;
    }

    if (!ctx->in_tree) {
        return;
    }

    ngx_rbtree_delete(&e->tree, &ctx->node);
    ctx->in_tree = 0;

    if (--e->inflight == 0 && e->keeper.timer_set) {
        ngx_del_timer(&e->keeper);
    }

    if (cancel && ctx->meta_sent) {
        ngx_http_thinkgate_engine_control(ctx, TG_FRAME_CANCEL, 0);
    }
}


/*
 * A write made the ring non-empty, or a read freed room for a waiting
 * producer (ring.h, rules 1 and 2): the engine needs a doorbell.  It is
 * rung once, when every handler of this event-loop pass has written its
 * frames.
 */

void
ngx_http_thinkgate_engine_bell(void)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    e->bell = 1;

    if (!e->bell_event.posted) {
        ngx_post_event(&e->bell_event, &ngx_posted_events);
    }
}


void
ngx_http_thinkgate_engine_bell_handler(ngx_event_t *ev)
{
    u_char                        b;
    ssize_t                       n;
    ngx_err_t                     err;
    static const uint64_t         one = 1;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (!e->bell) {
        return;
    }

    e->bell = 0;

    if (e->c == NULL || e->state != NGX_HTTP_THINKGATE_CONNECTED) {
        return;
    }

    if (e->bell_c) {
        /* the eventfd's count is never near its limit: 1 always fits */
        n = write(e->bell_out, &one, sizeof(one));

        if (n == (ssize_t) sizeof(one)) {
            return;
        }

    } else {
        b = TG_DOORBELL;
        n = send(e->c->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n == 1) {
            return;
        }
    }

    err = ngx_socket_errno;

    /* a full socket holds doorbells the engine has not read yet */

    if (n == -1 && err == NGX_EAGAIN) {
        return;
    }

    /* the engine is probably gone: the read handler finds out */

    ngx_log_error(NGX_LOG_INFO, e->log, err,
                  "thinkgate: doorbell to engine failed");

    e->c->read->ready = 1;
    ngx_post_event(e->c->read, &ngx_posted_events);
}


static ngx_http_thinkgate_ctx_t *
ngx_http_thinkgate_engine_lookup(uint64_t id)
{
    ngx_rbtree_key_t              key;
    ngx_rbtree_node_t            *node, *sentinel;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    key = (ngx_rbtree_key_t) id;
    node = e->tree.root;
    sentinel = e->tree.sentinel;

    while (node != sentinel) {
        if (key < node->key) {
            node = node->left;
            continue;
        }

        if (key > node->key) {
            node = node->right;
            continue;
        }

        return (ngx_http_thinkgate_ctx_t *) node;
    }

    return NULL;
}
