/*
 * thinkgate backend client, http:// URLs: our own HTTP/1.1 client on the
 * libuv loop, under client.h's contract (https:// stays with curl).
 *
 * A transfer (tg__h1_t) runs on one connection (tg__h1conn_t): taken from
 * its host's idle pool, or opened (name resolved with uv_getaddrinfo
 * unless numeric, then connected under the connect timeout).  The request
 * goes out in one write; the response is read by the pure parser of
 * http1.c straight from one read buffer shared by all connections.  A
 * response that ended cleanly on a connection the server keeps open puts
 * the connection back in the pool (still read, so that a server's close is
 * seen at once); anything else closes it.  A pooled connection that fails
 * before any byte of the response is retried once on a fresh one, as curl
 * does, so a server's idle close is not an error.
 *
 * Re-entrancy: callbacks run from the loop only.  A callback may cancel
 * its own transfer (even twice): it is marked and freed when the callback
 * returns.  Failures met
 * inside an API call, and resuming a paused transfer, are deferred to the
 * client's idle handle (client.c: tg__pending_cb → tg__h1_run_pending).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_int.h"
#include "h1client.h"

static void tg__h1_attach(tg__h1_t *h);
static void tg__h1_send(tg__h1conn_t *conn);
static void tg__h1_write_cb(uv_write_t *w, int status);
static void tg__h1_alloc_cb(uv_handle_t *handle, size_t hint,
    uv_buf_t *buf);
static void tg__h1_read_cb(uv_stream_t *s, ssize_t nread,
    const uv_buf_t *buf);
static void tg__h1_feed(tg__h1conn_t *conn, const char *p, size_t n);
static void tg__h1_hold(tg__h1conn_t *conn, const char *p, size_t n);
static void tg__h1_lost(tg__h1conn_t *conn, int err, const char *what);
static void tg__h1_retry(tg__h1_t *h);
static void tg__h1_resume(tg__h1_t *h);
static void tg__h1_release(tg__h1_t *h);
static tg__h1_t *tg__h1_spare(tg_http_client_t *c);
static void tg__h1_keep(tg__h1_t *h);

/* A spare transfer keeps a request buffer up to this size. */
#define TG__H1_SPARE_REQ  (16 * 1024)
#if defined(__SANITIZE_ADDRESS__)
/* Under ASan every transfer is freed, so that a use after free is
 * caught. */
#define TG__H1_SPARES_ON  0
#else
#define TG__H1_SPARES_ON  1
#endif


int
tg__h1_start(tg_http_client_t *c, const tg_http_req_t *req,
    const tg_http_cb_t *cb, void *data, tg_http_t **out)
{
    tg__h1_url_t   u;
    tg__h1host_t  *host;
    tg__h1_t      *h;
    int            rc;

    *out = NULL;
    rc = tg__h1_resolve(c, req->url, &u, &host);
    if (rc != 0) {
        return rc;
    }
    h = tg__h1_spare(c);
    if (h == NULL) {
        return -1;
    }
    h->kind = TG__HTTP_H1;
    h->client = c;
    h->cb = *cb;
    h->data = data;
    h->host = host;
    h->idle_ms = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 0;
    h->connect_ms = req->connect_timeout_ms > 0 ? req->connect_timeout_ms
                                                 : TG_H1_CONNECT_MS;
    tg_queue_init(&h->pending);
    if (tg__h1_request(h, req, &u) != 0) {
        tg__h1_free_request(h);
        free(h);
        return -1;
    }
    if (c->h1_rbuf == NULL) {
        c->h1_rbuf = malloc(TG_H1_RBUF_SIZE);
        if (c->h1_rbuf == NULL) {
            tg__h1_free_request(h);
            free(h);
            return -1;
        }
    }
    tg_queue_insert_tail(&c->h1_xfers, &h->link);
    c->nactive++;
    tg__h1_attach(h);
    *out = (tg_http_t *) h;
    return 0;
}


/* A pooled connection of h's host, else a new one.  Never calls back. */
static void
tg__h1_attach(tg__h1_t *h)
{
    tg__h1host_t  *host = h->host;
    tg__h1conn_t  *conn;
    tg_queue_t    *q;

    if (!h->retried && !tg_queue_empty(&host->idle)) {
        q = tg_queue_head(&host->idle);
        tg_queue_remove(q);
        host->nidle--;
        h->client->h1_nidle--;
        conn = tg_queue_data(q, tg__h1conn_t, idle);
        conn->xfer = h;
        conn->reused = 1;
        h->conn = conn;
        tg__h1_send(conn);
        return;
    }
    h->deadline = uv_now(h->client->loop) + (uint64_t) h->connect_ms;
    if (tg__h1_conn_open(h, NULL, NULL) != 0) {
        tg__h1_fail_later(h, -ECONNREFUSED, h->err);
    }
}


/* The connection is up (or taken from the pool): the request goes out,
 * the idle clock starts.  Never calls back. */
static void
tg__h1_send(tg__h1conn_t *conn)
{
    tg__h1_t  *h = conn->xfer;
    uv_buf_t   buf;
    int        n;

    tg_h1_init(&conn->ps);
    conn->state = TG__H1_ACTIVE;
    buf = uv_buf_init(h->req, (unsigned) h->req_len);
    /* Most requests fit the socket buffer: no write request at all. */
    n = uv_try_write((uv_stream_t *) &conn->tcp, &buf, 1);
    if (n == UV_EAGAIN) {
        n = 0;
    }
    if (n >= 0 && (size_t) n < h->req_len) {
        buf = uv_buf_init(h->req + n, (unsigned) (h->req_len - (size_t) n));
        n = uv_write(&conn->wreq, (uv_stream_t *) &conn->tcp, &buf, 1,
                     tg__h1_write_cb);
        conn->writing = n == 0;
    }
    if (n < 0) {
        if (conn->reused && !h->retried) {
            tg__h1_retry(h);
        } else {
            snprintf(h->err, sizeof(h->err), "send failure: %s",
                     strerror(-n));
            tg__h1_fail_later(h, -EIO, h->err);
        }
        return;
    }
    conn->last_rx = uv_now(h->client->loop);
    tg__h1_idle_arm(conn);
    tg__h1_sync_read(conn);
}


/* h1conn.c: connected. */
void
tg__h1_connected(tg__h1conn_t *conn)
{
    tg__h1_send(conn);
}


static void
tg__h1_write_cb(uv_write_t *w, int status)
{
    tg__h1conn_t  *conn = w->data;

    conn->writing = 0;
    if (status < 0 && !conn->closing && status != UV_ECANCELED) {
        tg__h1_lost(conn, status, "send failure");
    }
}


/* Starts or stops reading to match what the connection is for: an idle
 * pooled one is read (to see a close), a paused transfer's is not, nor
 * one whose transfer still has held bytes to take. */
void
tg__h1_sync_read(tg__h1conn_t *conn)
{
    int  want;

    want = !conn->closing && conn->state >= TG__H1_ACTIVE
           && conn->held == NULL
           && (conn->xfer == NULL || !conn->xfer->paused);
    if (want == (int) conn->reading) {
        return;
    }
    if (want) {
        if (uv_read_start((uv_stream_t *) &conn->tcp, tg__h1_alloc_cb,
                          tg__h1_read_cb) != 0)
        {
            return;
        }
    } else {
        (void) uv_read_stop((uv_stream_t *) &conn->tcp);
    }
    conn->reading = (unsigned) want;
}


static void
tg__h1_alloc_cb(uv_handle_t *handle, size_t hint, uv_buf_t *buf)
{
    tg__h1conn_t  *conn = handle->data;

    (void) hint;
    buf->base = conn->client->h1_rbuf;
    buf->len = TG_H1_RBUF_SIZE;
}


static void
tg__h1_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    tg__h1conn_t  *conn = s->data;

    if (nread == 0 || conn->closing) {
        return;
    }
    if (nread < 0) {
        tg__h1_lost(conn, (int) nread, "recv failure");
        return;
    }
    if (conn->xfer == NULL) {
        /* Bytes on an idle connection: nothing can be read after them. */
        tg__h1_conn_close(conn);
        return;
    }
    conn->last_rx = uv_now(conn->client->loop);
    if (conn->xfer->paused) {
        /* A read libuv had under way when the transfer paused. */
        tg__h1_hold(conn, buf->base, (size_t) nread);
        return;
    }
    tg__h1_feed(conn, buf->base, (size_t) nread);
}


/* Runs the parser over n bytes and calls the transfer back; stops when the
 * transfer ends, is cancelled or is paused (keeping the rest). */
static void
tg__h1_feed(tg__h1conn_t *conn, const char *p, size_t n)
{
    tg__h1_t     *h = conn->xfer;
    const char   *body;
    size_t        used, len;
    int           ev;

    for ( ;; ) {
        ev = tg_h1_parse(&conn->ps, p, n, &used, &body, &len);
        p += used;
        n -= used;
        switch (ev) {
        case TG_H1_AGAIN:
            return;
        case TG_H1_HEAD:
            h->in_cb = 1;
            if (h->cb.on_head != NULL) {
                h->cb.on_head((tg_http_t *) h, conn->ps.status,
                              conn->ps.has_ctype ? conn->ps.ctype : NULL,
                              h->data);
            }
            h->in_cb = 0;
            break;
        case TG_H1_BODY:
            h->in_cb = 1;
            if (h->cb.on_body != NULL) {
                h->cb.on_body((tg_http_t *) h, body, len, h->data);
            }
            h->in_cb = 0;
            break;
        case TG_H1_DONE:
            /* Bytes after the response: the connection cannot be
             * trusted with another. */
            tg__h1_finish(h, 0, NULL, n == 0);
            return;
        default:
            snprintf(h->err, sizeof(h->err), "bad response from %s:%s: %s",
                     h->host->name, h->host->port, conn->ps.err);
            tg__h1_finish(h, -EIO, h->err, 0);
            return;
        }
        if (h->cancelled) {
            tg__h1_release(h);      /* cancelled in the callback */
            return;
        }
        if (h->paused) {
            tg__h1_hold(conn, p, n);
            return;
        }
    }
}


/* A paused transfer keeps the bytes it has not taken, after any it kept
 * before, until it resumes (the read buffer is shared); the socket is not
 * read meanwhile. */
static void
tg__h1_hold(tg__h1conn_t *conn, const char *p, size_t n)
{
    char  *held;

    if (n > 0) {
        held = realloc(conn->held, conn->held_len + n);
        if (held == NULL) {
            snprintf(conn->xfer->err, sizeof(conn->xfer->err),
                     "out of memory");
            tg__h1_fail_later(conn->xfer, -EIO, conn->xfer->err);
            return;
        }
        memcpy(held + conn->held_len, p, n);
        conn->held = held;
        conn->held_len += n;
    }
    tg__h1_sync_read(conn);
}


/* The connection failed or the server closed it (err: a libuv error). */
static void
tg__h1_lost(tg__h1conn_t *conn, int err, const char *what)
{
    tg__h1_t  *h = conn->xfer;

    if (h == NULL) {
        tg__h1_conn_close(conn);    /* idle, closed by the server */
        return;
    }
    if (conn->reused && !h->retried && tg_h1_untouched(&conn->ps)) {
        tg__h1_retry(h);
        return;
    }
    if (err == UV_EOF && tg_h1_eof(&conn->ps) == TG_H1_DONE) {
        tg__h1_finish(h, 0, NULL, 0);
        return;
    }
    if (err == UV_EOF) {
        snprintf(h->err, sizeof(h->err), "%s:%s: %s", h->host->name,
                 h->host->port, conn->ps.err);
    } else {
        snprintf(h->err, sizeof(h->err), "%s:%s: %s: %s", h->host->name,
                 h->host->port, what, strerror(-err));
    }
    tg__h1_finish(h, -EIO, h->err, 0);
}


/* A pooled connection died before any byte of the response: once more
 * on a fresh one.  Never calls back. */
static void
tg__h1_retry(tg__h1_t *h)
{
    tg__h1conn_t  *conn = h->conn;

    h->conn = NULL;
    conn->xfer = NULL;
    tg__h1_conn_close(conn);
    h->retried = 1;
    tg__h1_attach(h);
}


/* Ends h: the connection goes back to the pool (reuse and the response
 * allows it) or is closed first, so that on_done may start a transfer on
 * it; then on_done, then h is freed. */
void
tg__h1_finish(tg__h1_t *h, int rc, const char *err, int reuse)
{
    tg__h1conn_t  *conn = h->conn;

    if (conn != NULL) {
        h->conn = NULL;
        conn->xfer = NULL;
        if (reuse && !conn->writing && tg_h1_reusable(&conn->ps)) {
            tg__h1_conn_pool(conn);
        } else {
            tg__h1_conn_close(conn);
        }
    }
    if (h->queued) {
        tg_queue_remove(&h->pending);
        h->queued = 0;
    }
    h->finishing = 1;
    if (h->cb.on_done != NULL) {
        h->cb.on_done((tg_http_t *) h, rc, err, h->data);
    }
    tg__h1_release(h);
}


static void
tg__h1_release(tg__h1_t *h)
{
    tg_queue_remove(&h->link);
    if (h->queued) {
        tg_queue_remove(&h->pending);
    }
    h->client->nactive--;
    tg__h1_keep(h);
}


/* A spare transfer of c, zeroed but for its request buffer, else a new
 * one; NULL when out of memory. */
static tg__h1_t *
tg__h1_spare(tg_http_client_t *c)
{
    tg__h1_t  *h;
    char      *req;
    size_t     cap;

    if (c->h1_nspares == 0) {
        return calloc(1, sizeof(tg__h1_t));
    }
    h = c->h1_spares[--c->h1_nspares];
    req = h->req;
    cap = h->req_cap;
    memset(h, 0, sizeof(*h));
    h->req = req;
    h->req_cap = cap;
    return h;
}


/* h done with: its key wiped, then kept as a spare of its client or
 * freed. */
static void
tg__h1_keep(tg__h1_t *h)
{
    tg_http_client_t  *c = h->client;

    if (TG__H1_SPARES_ON && !c->h1_spares_off
        && c->h1_nspares < sizeof(c->h1_spares) / sizeof(c->h1_spares[0])
        && h->req_cap <= TG__H1_SPARE_REQ)
    {
        if (h->req != NULL && h->secret_len > 0) {
            memset(h->req, 0, h->secret_len);
        }
        h->secret_len = 0;
        c->h1_spares[c->h1_nspares++] = h;
        return;
    }
    tg__h1_free_request(h);
    free(h);
}


/* Fails h from the loop, not now (inside an API call). */
void
tg__h1_fail_later(tg__h1_t *h, int rc, const char *err)
{
    tg__h1conn_t  *conn = h->conn;

    if (conn != NULL) {
        h->conn = NULL;
        conn->xfer = NULL;
        tg__h1_conn_close(conn);
    }
    if (err != h->err) {
        snprintf(h->err, sizeof(h->err), "%s", err);
    }
    h->fail_rc = rc;
    if (!h->queued) {
        h->queued = 1;
        tg_queue_insert_tail(&h->client->h1_pending, &h->pending);
    }
    tg__client_wake(h->client);
}


void
tg__h1_run_pending(tg_http_client_t *c)
{
    tg_queue_t  *q;
    tg__h1_t    *h;

    while (!c->closing && !tg_queue_empty(&c->h1_pending)) {
        q = tg_queue_head(&c->h1_pending);
        tg_queue_remove(q);
        h = tg_queue_data(q, tg__h1_t, pending);
        h->queued = 0;
        if (h->fail_rc != 0) {
            tg__h1_finish(h, h->fail_rc, h->err, 0);
        } else if (h->resume) {
            h->resume = 0;
            tg__h1_resume(h);
        }
    }
}


void
tg__h1_pause(tg_http_t *th, int paused)
{
    tg__h1_t      *h = (tg__h1_t *) th;
    tg__h1conn_t  *conn = h->conn;

    if (h->finishing || h->cancelled
        || (int) h->paused == (paused != 0))
    {
        return;
    }
    h->paused = paused != 0;
    if (paused) {
        h->resume = 0;
        if (conn != NULL && conn->state == TG__H1_ACTIVE) {
            uv_timer_stop(&conn->timer);
            tg__h1_sync_read(conn);
        }
        return;
    }
    /* What was held back is delivered from the loop, never from here. */
    h->resume = 1;
    if (!h->queued) {
        h->queued = 1;
        tg_queue_insert_tail(&h->client->h1_pending, &h->pending);
    }
    tg__client_wake(h->client);
}


static void
tg__h1_resume(tg__h1_t *h)
{
    tg__h1conn_t  *conn = h->conn;
    char          *held;
    size_t         n;

    if (h->paused || conn == NULL || conn->state != TG__H1_ACTIVE) {
        return;
    }
    held = conn->held;
    n = conn->held_len;
    conn->held = NULL;
    conn->held_len = 0;
    conn->last_rx = uv_now(h->client->loop);
    tg__h1_idle_arm(conn);
    /* Even with nothing held: the response may have ended right where
     * the transfer was paused. */
    tg__h1_feed(conn, held != NULL ? held : "", n);
    free(held);
    if (conn->xfer == h) {
        tg__h1_sync_read(conn);
    }
}


void
tg__h1_cancel(tg_http_t *th)
{
    tg__h1_t      *h = (tg__h1_t *) th;
    tg__h1conn_t  *conn = h->conn;

    if (h->finishing || h->cancelled) {
        return;
    }
    h->cancelled = 1;
    if (conn != NULL) {
        /* Closed, never pooled: the server sees the client leave. */
        h->conn = NULL;
        conn->xfer = NULL;
        tg__h1_conn_close(conn);
    }
    if (!h->in_cb) {
        tg__h1_release(h);          /* else when the callback returns */
    }
}


void
tg__h1_client_init(tg_http_client_t *c)
{
    tg_queue_init(&c->h1_hosts);
    tg_queue_init(&c->h1_conns);
    tg_queue_init(&c->h1_xfers);
    tg_queue_init(&c->h1_pending);
}


/* Cancels every transfer, closes every connection, forgets the hosts. */
void
tg__h1_client_free(tg_http_client_t *c)
{
    tg_queue_t  *q;
    tg__h1_t    *h;

    while (!tg_queue_empty(&c->h1_xfers)) {
        q = tg_queue_head(&c->h1_xfers);
        h = tg_queue_data(q, tg__h1_t, link);
        if (h->finishing || h->cancelled) {
            tg_queue_remove(q);
            continue;
        }
        tg__h1_cancel((tg_http_t *) h);
    }
    while (!tg_queue_empty(&c->h1_conns)) {
        q = tg_queue_head(&c->h1_conns);
        tg__h1_conn_close(tg_queue_data(q, tg__h1conn_t, link));
    }
    tg__h1_hosts_free(c);

    c->h1_spares_off = 1;
    while (c->h1_nspares > 0) {
        h = c->h1_spares[--c->h1_nspares];
        tg__h1_free_request(h);
        free(h);
    }
}
