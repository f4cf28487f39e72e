/*
 * The test server (see http_server.h).  Deliberately simple: it parses only
 * what the clients send, one request at a time per connection.
 */

#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <uv.h>

#include "http_server.h"

#define BIG_PIECE  (64 * 1024)

struct http_server_s {
    uv_loop_t      loop;
    uv_tcp_t       listener;
    uv_async_t     stop;
    pthread_t      thread;
    int            port;
    http_stats_t   stats;
};

typedef struct {
    uv_tcp_t        tcp;
    uv_timer_t      timer;
    http_server_t  *srv;
    char           *buf;
    size_t          len, cap;
    int             busy;       /* a response is being produced */
    int             closing, nclosed;
    int             sse_left, sse_ms, sse_seq;
    long            big_left;
    const char     *trickle;    /* /split: the rest, a few bytes a tick */
    size_t          trickle_len;
} conn_t;

typedef struct {
    uv_write_t  req;
    conn_t     *conn;
    int         big;
    size_t      n;
    char        data[];
} wreq_t;

static char big_piece[BIG_PIECE];

static void conn_close(conn_t *c);
static void conn_process(conn_t *c);

static void
alloc_cb(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    conn_t  *c = h->data;

    (void) size;
    if (c->cap - c->len < 65536) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap);
        assert(c->buf != NULL);
    }
    *buf = uv_buf_init(c->buf + c->len, c->cap - c->len);
}

static void
conn_closed_cb(uv_handle_t *h)
{
    conn_t  *c = h->data;

    if (++c->nclosed == 2) {
        free(c->buf);
        free(c);
    }
}

static void
conn_close(conn_t *c)
{
    if (c->closing) {
        return;
    }
    c->closing = 1;
    uv_close((uv_handle_t *) &c->tcp, conn_closed_cb);
    uv_close((uv_handle_t *) &c->timer, conn_closed_cb);
}

static void big_next(conn_t *c);

static void
write_cb(uv_write_t *req, int status)
{
    wreq_t  *w = (wreq_t *) req;
    conn_t  *c = w->conn;

    if (w->big && status == 0) {
        atomic_fetch_add(&c->srv->stats.big_written, (long) w->n);
        if (!c->closing) {
            big_next(c);
        }
    }
    free(w);
}

static void
conn_write(conn_t *c, const char *p, size_t n)
{
    wreq_t    *w = malloc(sizeof(*w) + n);
    uv_buf_t   b;

    assert(w != NULL);
    w->conn = c;
    w->big = 0;
    w->n = n;
    memcpy(w->data, p, n);
    b = uv_buf_init(w->data, n);
    if (uv_write(&w->req, (uv_stream_t *) &c->tcp, &b, 1, write_cb) != 0) {
        free(w);
    }
}

static void
big_next(conn_t *c)
{
    wreq_t    *w;
    uv_buf_t   b;
    size_t     n;

    if (c->big_left == 0) {
        c->busy = 0;
        conn_process(c);
        return;
    }
    n = c->big_left < BIG_PIECE ? (size_t) c->big_left : BIG_PIECE;
    c->big_left -= n;
    w = malloc(sizeof(*w));
    assert(w != NULL);
    w->conn = c;
    w->big = 1;
    w->n = n;
    b = uv_buf_init(big_piece, n);
    if (uv_write(&w->req, (uv_stream_t *) &c->tcp, &b, 1, write_cb) != 0) {
        free(w);
    }
}

static void
sse_tick(uv_timer_t *t)
{
    conn_t  *c = t->data;
    char     chunk[64], ev[32];
    int      n;

    if (c->sse_left == 0) {
        conn_write(c, "0\r\n\r\n", 5);
        uv_timer_stop(t);
        c->busy = 0;
        conn_process(c);
        return;
    }
    n = snprintf(ev, sizeof(ev), "data: %d\n\n", c->sse_seq++);
    n = snprintf(chunk, sizeof(chunk), "%x\r\n%s\r\n", n, ev);
    conn_write(c, chunk, n);
    atomic_fetch_add(&c->srv->stats.sse_sent, 1);
    c->sse_left--;
}

static void
trickle_tick(uv_timer_t *t)
{
    conn_t  *c = t->data;
    size_t   n = c->trickle_len < 3 ? c->trickle_len : 3;

    conn_write(c, c->trickle, n);
    c->trickle += n;
    c->trickle_len -= n;
    if (c->trickle_len == 0) {
        uv_timer_stop(t);
        c->busy = 0;
        conn_process(c);
    }
}

static void
bye_tick(uv_timer_t *t)
{
    conn_close(t->data);
}

/* The paths the built-in client's own cases need (http_server.h). */
static int
respond_more(conn_t *c, const char *path)
{
    static const char split[] = "HTTP/1.1 200 OK\r\nContent-Type: "
        "text/plain\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"
        "7;ext=1\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n";
    static const char hello[] = "HTTP/1.1 200 OK\r\nContent-Type: "
        "text/plain\r\nContent-Length: 5\r\n\r\nhello";
    static const char old[] = "HTTP/1.0 200 OK\r\nContent-Type: "
        "text/plain\r\n\r\nold";
    char  line[128];
    int   i;

    if (strcmp(path, "/split") == 0) {
        c->busy = 1;
        c->trickle = split;
        c->trickle_len = sizeof(split) - 1;
        uv_timer_start(&c->timer, trickle_tick, 1, 1);
    } else if (strcmp(path, "/bye") == 0) {
        conn_write(c, hello, sizeof(hello) - 1);
        uv_timer_start(&c->timer, bye_tick, 20, 0);
    } else if (strcmp(path, "/drop") == 0) {
        conn_write(c, hello, sizeof(hello) - 1);
        conn_close(c);
    } else if (strcmp(path, "/http10") == 0) {
        conn_write(c, old, sizeof(old) - 1);
        conn_close(c);
    } else if (strcmp(path, "/hugehead") == 0) {
        conn_write(c, "HTTP/1.1 200 OK\r\n", 17);
        for (i = 0; i < 1000; i++) {
            snprintf(line, sizeof(line), "X-Filler-%04d: %080d\r\n", i,
                     i);
            conn_write(c, line, strlen(line));
        }
        conn_write(c, "Content-Length: 0\r\n\r\n", 21);
    } else {
        return 0;
    }
    return 1;
}

static void
respond(conn_t *c, const char *path, const char *req, size_t req_len)
{
    char  head[256];
    int   n, a, b;
    long  big;

    atomic_fetch_add(&c->srv->stats.requests, 1);

    if (respond_more(c, path)) {
        return;
    } else if (strcmp(path, "/hello") == 0) {
        static const char r[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain"
                                "\r\nContent-Length: 5\r\n\r\nhello";
        conn_write(c, r, sizeof(r) - 1);
    } else if (strcmp(path, "/echo") == 0) {
        n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
                     "text/plain\r\nContent-Length: %zu\r\n\r\n", req_len);
        conn_write(c, head, n);
        conn_write(c, req, req_len);
    } else if (strcmp(path, "/500") == 0) {
        static const char r[] = "HTTP/1.1 500 Internal Server Error\r\n"
            "Content-Type: application/json\r\nContent-Length: 32\r\n\r\n"
            "{\"error\":{\"message\":\"boom!!!\"}}\n";
        conn_write(c, r, sizeof(r) - 1);
    } else if (strcmp(path, "/close") == 0) {
        static const char r[] = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
                                "\r\n0123456789";
        conn_write(c, r, sizeof(r) - 1);
        conn_close(c);
    } else if (strcmp(path, "/silent") == 0) {
        c->busy = 1;
    } else if (sscanf(path, "/sse/%d/%d", &a, &b) == 2) {
        static const char r[] = "HTTP/1.1 200 OK\r\nContent-Type: "
            "text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
        conn_write(c, r, sizeof(r) - 1);
        c->busy = 1;
        c->sse_left = a;
        c->sse_ms = b;
        c->sse_seq = 0;
        uv_timer_start(&c->timer, sse_tick, 0, b > 0 ? b : 1);
    } else if (sscanf(path, "/big/%ld", &big) == 1) {
        n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
                     "application/octet-stream\r\nContent-Length: %ld\r\n\r\n",
                     big);
        conn_write(c, head, n);
        c->busy = 1;
        c->big_left = big;
        big_next(c);
    } else {
        static const char r[] = "HTTP/1.1 404 Not Found\r\n"
                                "Content-Length: 0\r\n\r\n";
        conn_write(c, r, sizeof(r) - 1);
    }
}

/* Handles every complete request in the buffer while none is busy. */
static void
conn_process(conn_t *c)
{
    char    *end, *cl, path[256];
    size_t   head_len, body_len, total;

    while (!c->busy && !c->closing && c->len > 0) {
        end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (end == NULL) {
            return;
        }
        head_len = end + 4 - c->buf;
        body_len = 0;
        *end = '\0';
        cl = strcasestr(c->buf, "\r\nContent-Length:");
        if (cl != NULL) {
            body_len = strtoul(cl + 17, NULL, 10);
        }
        *end = '\r';
        total = head_len + body_len;
        if (c->len < total) {
            return;
        }
        if (sscanf(c->buf, "%*s %255s", path) != 1) {
            conn_close(c);
            return;
        }
        respond(c, path, c->buf, total);
        if (c->closing) {
            return;
        }
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
    }
}

static void
read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn_t  *c = s->data;

    (void) buf;
    if (nread < 0) {
        atomic_fetch_add(&c->srv->stats.closed, 1);
        if (c->busy) {
            atomic_fetch_add(&c->srv->stats.aborted, 1);
        }
        conn_close(c);
        return;
    }
    c->len += nread;
    conn_process(c);
}

static void
accept_cb(uv_stream_t *l, int status)
{
    http_server_t  *srv = l->data;
    conn_t         *c;

    if (status != 0) {
        return;
    }
    c = calloc(1, sizeof(*c));
    assert(c != NULL);
    c->srv = srv;
    uv_tcp_init(&srv->loop, &c->tcp);
    uv_timer_init(&srv->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(l, (uv_stream_t *) &c->tcp) != 0) {
        conn_close(c);
        return;
    }
    atomic_fetch_add(&srv->stats.accepted, 1);
    uv_read_start((uv_stream_t *) &c->tcp, alloc_cb, read_cb);
}

static void
close_walk_cb(uv_handle_t *h, void *arg)
{
    (void) arg;
    if (uv_is_closing(h)) {
        return;
    }
    if (h->type == UV_TCP && h->data != NULL
        && h != (uv_handle_t *) &((http_server_t *) arg)->listener)
    {
        conn_close(h->data);
    } else if (h->type != UV_TIMER) {
        uv_close(h, NULL);
    }
}

static void
stop_cb(uv_async_t *a)
{
    http_server_t  *srv = a->data;

    uv_walk(&srv->loop, close_walk_cb, srv);
}

static void *
server_main(void *arg)
{
    http_server_t  *srv = arg;

    uv_run(&srv->loop, UV_RUN_DEFAULT);
    return NULL;
}

http_server_t *
http_server_start(void)
{
    http_server_t       *srv = calloc(1, sizeof(*srv));
    struct sockaddr_in   addr;
    int                  len = sizeof(addr);

    assert(srv != NULL);
    memset(big_piece, 'b', sizeof(big_piece));
    assert(uv_loop_init(&srv->loop) == 0);
    assert(uv_tcp_init(&srv->loop, &srv->listener) == 0);
    srv->listener.data = srv;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    assert(uv_tcp_bind(&srv->listener, (struct sockaddr *) &addr, 0) == 0);
    assert(uv_listen((uv_stream_t *) &srv->listener, 1024, accept_cb) == 0);
    assert(uv_tcp_getsockname(&srv->listener, (struct sockaddr *) &addr,
                              &len) == 0);
    srv->port = ntohs(addr.sin_port);
    assert(uv_async_init(&srv->loop, &srv->stop, stop_cb) == 0);
    srv->stop.data = srv;
    assert(pthread_create(&srv->thread, NULL, server_main, srv) == 0);
    return srv;
}

int
http_server_port(http_server_t *s)
{
    return s->port;
}

http_stats_t *
http_server_stats(http_server_t *s)
{
    return &s->stats;
}

void
http_server_stop(http_server_t *s)
{
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    assert(uv_loop_close(&s->loop) == 0);
    free(s);
}
