/*
 * Backend client against a real HTTP server on loopback (http_server.c):
 * streaming, HTTP errors, early close, idle timeout, refused port, TLS
 * failure, cancel (the server must see the connection close), pause and
 * resume with backpressure, 200 concurrent transfers with keep-alive reuse,
 * and calls made from inside callbacks.  http:// runs on the built-in
 * HTTP/1.1 client (engine/backend/h1client.c), https:// on curl; the last
 * cases are the built-in client's own: a pooled connection the server
 * closed, chunks split anywhere, HTTP/1.0, header bounds, name
 * resolution.
 */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <criterion/criterion.h>
#include <uv.h>

#include "../../engine/backend/client.h"
#include "../../engine/backend/sse.h"
#include "http_server.h"

typedef struct {
    tg_http_t  *h;
    long        status;
    char        ctype[64];
    char       *body;
    size_t      body_len, body_cap;
    int         heads, bodies, dones, rc;
    char        err[256];
    tg_sse_t    sse;
    int         events;
    char        last_event[32];
    int         cancel_after_events;    /* > 0: cancel in on_body */
    int         cancel_in_head;
    int         pause_on_body;
    int         start_on_body;          /* start fx.follow on first body */
    int         chain;                  /* start another /hello on done */
    const char *then;                   /* start fx.follow on it on done */
    tg_http_t  *cancel_other;           /* cancel it in on_body */
} xfer_t;

static struct {
    uv_loop_t          loop;
    uv_timer_t         tick;
    tg_http_client_t  *client;
    http_server_t     *srv;
    http_stats_t      *stats;
    char               base[64];
    xfer_t             follow;
    int                in_call;         /* inside a client API call */
    int                chained;
} fx;

static tg_http_cb_t cbs;

static uint64_t
now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void
tick_cb(uv_timer_t *t)
{
    (void) t;
}

/* Runs the loop until cond holds; fails the test after ms. */
#define WAIT_UNTIL(cond, ms)                                                  \
    do {                                                                      \
        uint64_t  dl_ = now_ms() + (ms);                                      \
        while (!(cond) && now_ms() < dl_) {                                   \
            uv_run(&fx.loop, UV_RUN_ONCE);                                    \
        }                                                                     \
        cr_assert((cond), "timed out waiting for %s", #cond);                 \
    } while (0)

static void
run_for(uint64_t ms)
{
    uint64_t  dl = now_ms() + ms;

    while (now_ms() < dl) {
        uv_run(&fx.loop, UV_RUN_ONCE);
    }
}

static void
setup(void)
{
    memset(&fx, 0, sizeof(fx));
    /* As the engine (main.c): a write to a socket the peer closed fails
     * with EPIPE instead of killing the process (the test server writes
     * /big on after a cancel; the built-in client writes with write(2),
     * not curl's MSG_NOSIGNAL). */
    signal(SIGPIPE, SIG_IGN);
    cr_assert_eq(uv_loop_init(&fx.loop), 0);
    cr_assert_eq(uv_timer_init(&fx.loop, &fx.tick), 0);
    cr_assert_eq(uv_timer_start(&fx.tick, tick_cb, 2, 2), 0);
    fx.client = tg_http_client_new(&fx.loop);
    cr_assert_not_null(fx.client);
    fx.srv = http_server_start();
    fx.stats = http_server_stats(fx.srv);
    snprintf(fx.base, sizeof(fx.base), "http://127.0.0.1:%d",
             http_server_port(fx.srv));
}

static void
teardown(void)
{
    tg_http_client_free(fx.client);
    uv_close((uv_handle_t *) &fx.tick, NULL);
    uv_run(&fx.loop, UV_RUN_DEFAULT);
    /* Every handle the client owned is closed: nothing leaks. */
    cr_assert_eq(uv_loop_close(&fx.loop), 0);
    http_server_stop(fx.srv);
}

TestSuite(http, .init = setup, .fini = teardown, .timeout = 20);

static void
on_event(void *data, const char *event, const char *payload, size_t len)
{
    xfer_t  *x = data;

    cr_assert_str_eq(event, "message");
    cr_assert(len < sizeof(x->last_event));
    memcpy(x->last_event, payload, len + 1);
    x->events++;
}

static void
on_head(tg_http_t *h, long status, const char *ct, void *data)
{
    xfer_t  *x = data;

    cr_assert_eq(fx.in_call, 0, "callback from inside an API call");
    cr_assert_eq(h, x->h);
    cr_assert_eq(x->heads, 0);
    cr_assert_eq(x->bodies, 0);
    x->heads++;
    x->status = status;
    snprintf(x->ctype, sizeof(x->ctype), "%s", ct ? ct : "");
    if (x->cancel_in_head) {
        tg_http_cancel(h);
    }
}

static void
on_body(tg_http_t *h, const char *p, size_t n, void *data)
{
    xfer_t  *x = data;

    cr_assert_eq(fx.in_call, 0, "callback from inside an API call");
    cr_assert_eq(h, x->h);
    cr_assert_eq(x->heads, 1);
    cr_assert_eq(x->dones, 0);
    cr_assert_eq(x->cancel_in_head, 0, "body after cancel in on_head");
    x->bodies++;
    if (x->body_len + n + 1 > x->body_cap) {
        /* Doubling: ASan's realloc always copies. */
        x->body_cap = (x->body_len + n + 1) * 2;
        x->body = realloc(x->body, x->body_cap);
        cr_assert_not_null(x->body);
    }
    memcpy(x->body + x->body_len, p, n);
    x->body_len += n;
    x->body[x->body_len] = '\0';
    if (strcmp(x->ctype, "text/event-stream") == 0) {
        cr_assert_eq(tg_sse_feed(&x->sse, p, n), 0);
    }
    if (x->cancel_after_events > 0) {
        cr_assert(x->events <= x->cancel_after_events + 1,
                  "events after cancel");
        if (x->events >= x->cancel_after_events) {
            tg_http_cancel(h);
            tg_http_cancel(h);  /* idempotent */
        }
    }
    if (x->cancel_other != NULL) {
        tg_http_cancel(x->cancel_other);
        x->cancel_other = NULL;
    }
    if (x->pause_on_body) {
        x->pause_on_body = 0;
        tg_http_pause(h, 1);
    }
    if (x->start_on_body) {
        tg_http_req_t  req = { .url = NULL };
        char           url[128];

        x->start_on_body = 0;
        snprintf(url, sizeof(url), "%s/hello", fx.base);
        req.url = url;
        tg_sse_init(&fx.follow.sse, on_event, &fx.follow);
        fx.follow.h = tg_http_start(fx.client, &req, &cbs, &fx.follow);
        cr_assert_not_null(fx.follow.h);
    }
}

static tg_http_t *start_get(xfer_t *x, const char *path, long idle_ms);

static void
on_done(tg_http_t *h, int rc, const char *err, void *data)
{
    xfer_t  *x = data;

    cr_assert_eq(fx.in_call, 0, "callback from inside an API call");
    cr_assert_eq(h, x->h);
    cr_assert_eq(x->dones, 0, "on_done twice");
    x->dones++;
    x->rc = rc;
    if (rc != 0) {
        cr_assert_not_null(err);
        cr_assert(err[0] != '\0');
        snprintf(x->err, sizeof(x->err), "%s", err);
    }
    tg_http_cancel(h);      /* a no-op inside on_done */
    tg_http_pause(h, 1);    /* likewise */
    if (x->then != NULL) {
        cr_assert_not_null(start_get(&fx.follow, x->then, 1000));
    }
    if (x->chain > 0) {
        int  left = x->chain - 1;

        fx.chained++;
        tg_sse_free(&x->sse);
        free(x->body);
        memset(x, 0, sizeof(*x));
        x->chain = left;
        cr_assert_not_null(start_get(x, "/hello", 0));
    }
}

static tg_http_cb_t cbs = { on_head, on_body, on_done };

static tg_http_t *
start_req(xfer_t *x, const tg_http_req_t *req)
{
    tg_sse_init(&x->sse, on_event, x);
    fx.in_call = 1;
    x->h = tg_http_start(fx.client, req, &cbs, x);
    fx.in_call = 0;
    return x->h;
}

static tg_http_t *
start_get(xfer_t *x, const char *path, long idle_ms)
{
    tg_http_req_t  req;
    char           url[128];

    memset(&req, 0, sizeof(req));
    snprintf(url, sizeof(url), "%s%s", fx.base, path);
    req.url = url;
    req.idle_timeout_ms = idle_ms;
    req.connect_timeout_ms = 1000;
    req.tls_verify = 1;
    return start_req(x, &req);
}

static void
xfer_free(xfer_t *x)
{
    tg_sse_free(&x->sse);
    free(x->body);
    x->body = NULL;
}

Test(http, get_hello)
{
    xfer_t  x = { 0 };

    cr_assert_not_null(start_get(&x, "/hello", 300));
    cr_assert_eq(x.heads + x.bodies + x.dones, 0);
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, 0);
    cr_assert_eq(x.status, 200);
    cr_assert_str_eq(x.ctype, "text/plain");
    cr_assert_str_eq(x.body, "hello");
    cr_assert_eq(tg_http_client_active(fx.client), 0);
    xfer_free(&x);
}

Test(http, post_sends_headers_and_copied_body)
{
    xfer_t         x = { 0 };
    tg_http_req_t  req = { 0 };
    char           url[128], body[] = "{\"model\":\"m\",\"stream\":true}";

    snprintf(url, sizeof(url), "%s/echo", fx.base);
    req.url = url;
    req.api_key = "sk-test";
    req.body = body;
    req.body_len = strlen(body);
    req.stream = 1;
    cr_assert_not_null(start_req(&x, &req));
    memset(body, 'X', sizeof(body) - 1);    /* the client made a copy */
    memset(url, 0, sizeof(url));
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, 0);
    cr_assert_not_null(strstr(x.body, "POST /echo HTTP/1.1\r\n"));
    cr_assert_not_null(strstr(x.body, "\r\nAuthorization: Bearer sk-test\r\n"));
    cr_assert_not_null(strstr(x.body, "\r\nContent-Type: application/json"));
    cr_assert_not_null(strstr(x.body, "\r\nAccept: text/event-stream\r\n"));
    cr_assert_null(strstr(x.body, "Expect:"));
    cr_assert_not_null(strstr(x.body,
        "\r\n\r\n{\"model\":\"m\",\"stream\":true}"));
    xfer_free(&x);
}

Test(http, sse_streams_incrementally)
{
    xfer_t    x = { 0 };
    uint64_t  t0;

    cr_assert_not_null(start_get(&x, "/sse/5/40", 300));
    WAIT_UNTIL(x.events == 1, 2000);
    t0 = now_ms();
    cr_assert_eq(x.dones, 0);
    WAIT_UNTIL(x.dones == 1, 2000);
    /* Four more events 40 ms apart: delivered as they came, not at end. */
    cr_assert_geq(now_ms() - t0, 120);
    cr_assert_eq(x.rc, 0);
    cr_assert_str_eq(x.ctype, "text/event-stream");
    cr_assert_eq(x.events, 5);
    cr_assert_str_eq(x.last_event, "4");
    xfer_free(&x);
}

Test(http, status_500_is_not_a_transport_error)
{
    xfer_t  x = { 0 };

    cr_assert_not_null(start_get(&x, "/500", 300));
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, 0, "rc %d err %s", x.rc, x.err);
    cr_assert_eq(x.status, 500);
    cr_assert_str_eq(x.ctype, "application/json");
    cr_assert_not_null(strstr(x.body, "boom"));
    xfer_free(&x);
}

Test(http, early_close_is_eio)
{
    xfer_t  x = { 0 };

    cr_assert_not_null(start_get(&x, "/close", 300));
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, -EIO, "rc %d err %s", x.rc, x.err);
    cr_assert_eq(x.status, 200);
    cr_assert_str_eq(x.body, "0123456789");
    xfer_free(&x);
}

Test(http, silent_server_is_idle_timeout)
{
    xfer_t    x = { 0 };
    uint64_t  t0 = now_ms(), dt;

    cr_assert_not_null(start_get(&x, "/silent", 150));
    WAIT_UNTIL(x.dones == 1, 2000);
    dt = now_ms() - t0;
    cr_assert_eq(x.rc, -ETIMEDOUT, "rc %d err %s", x.rc, x.err);
    cr_assert(dt >= 145 && dt < 1000, "timed out after %lu ms",
              (unsigned long) dt);
    cr_assert_eq(x.heads, 0);
    /* The connection is closed, so a real server stops generating. */
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 1, 300);
    xfer_free(&x);
}

Test(http, idle_timer_restarts_on_every_byte)
{
    xfer_t  x = { 0 };

    /* 6 events 60 ms apart: 360 ms in all, never 150 ms of silence. */
    cr_assert_not_null(start_get(&x, "/sse/6/60", 150));
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, 0, "rc %d err %s", x.rc, x.err);
    cr_assert_eq(x.events, 6);
    xfer_free(&x);
}

Test(http, refused_port_is_econnrefused)
{
    xfer_t              x = { 0 };
    tg_http_req_t       req = { 0 };
    struct sockaddr_in  a = { 0 };
    socklen_t           len = sizeof(a);
    char                url[128];
    int                 fd;

    /* Bound but not listening: connects are refused, and the port cannot
     * be taken by anyone else meanwhile. */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *) &a, sizeof(a)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *) &a, &len), 0);
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/chat/completions",
             ntohs(a.sin_port));
    req.url = url;
    req.body = "{}";
    req.body_len = 2;
    req.connect_timeout_ms = 300;
    cr_assert_not_null(start_req(&x, &req));
    cr_assert_eq(x.dones, 0, "on_done from inside tg_http_start");
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, -ECONNREFUSED, "rc %d err %s", x.rc, x.err);
    cr_assert_eq(x.heads, 0);
    close(fd);
    xfer_free(&x);
}

Test(http, tls_handshake_failure_is_econnrefused)
{
    xfer_t  x = { 0 };
    char    url[128];
    tg_http_req_t  req = { 0 };

    /* https to a plain-HTTP server: the handshake fails before the
     * request is sent, so retrying elsewhere is safe. */
    snprintf(url, sizeof(url), "https://127.0.0.1:%d/hello",
             http_server_port(fx.srv));
    req.url = url;
    req.tls_verify = 1;
    req.connect_timeout_ms = 1000;
    cr_assert_not_null(start_req(&x, &req));
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, -ECONNREFUSED, "rc %d err %s", x.rc, x.err);
    xfer_free(&x);
}

Test(http, start_rejects_bad_arguments)
{
    tg_http_req_t  req = { 0 };
    xfer_t         x = { 0 };

    cr_assert_null(tg_http_start(fx.client, &req, &cbs, &x));
    req.url = "http://127.0.0.1:1/";
    req.body_len = 3;
    cr_assert_null(tg_http_start(fx.client, &req, &cbs, &x));
    cr_assert_null(tg_http_start(fx.client, NULL, &cbs, &x));
    cr_assert_eq(tg_http_client_active(fx.client), 0);
}

Test(http, cancel_inside_on_body_closes_connection)
{
    xfer_t    x = { 0 };
    uint64_t  t0;

    x.cancel_after_events = 2;
    cr_assert_not_null(start_get(&x, "/sse/1000/5", 300));
    WAIT_UNTIL(x.events >= 2, 2000);
    t0 = now_ms();
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 1, 300);
    cr_assert_lt(now_ms() - t0, 100);
    run_for(30);
    cr_assert_eq(x.events, 2);
    cr_assert_eq(x.dones, 0);
    cr_assert_eq(tg_http_client_active(fx.client), 0);
    xfer_free(&x);
}

Test(http, cancel_from_outside_closes_connection)
{
    xfer_t  x = { 0 };
    int     events;

    cr_assert_not_null(start_get(&x, "/sse/1000/5", 300));
    WAIT_UNTIL(x.events >= 2, 2000);
    events = x.events;
    fx.in_call = 1;
    tg_http_cancel(x.h);
    fx.in_call = 0;
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 1, 100);
    run_for(30);
    cr_assert_eq(x.events, events);
    cr_assert_eq(x.dones, 0);
    xfer_free(&x);
}

Test(http, cancel_inside_on_head)
{
    xfer_t  x = { 0 };

    x.cancel_in_head = 1;
    cr_assert_not_null(start_get(&x, "/sse/1000/5", 300));
    WAIT_UNTIL(x.heads == 1, 2000);
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 1, 300);
    run_for(30);
    cr_assert_eq(x.bodies, 0);
    cr_assert_eq(x.dones, 0);
    xfer_free(&x);
}

Test(http, cancel_another_transfer_inside_on_body)
{
    xfer_t  a = { 0 }, b = { 0 };

    cr_assert_not_null(start_get(&b, "/sse/1000/5", 300));
    WAIT_UNTIL(b.events >= 1, 2000);
    a.cancel_other = b.h;
    cr_assert_not_null(start_get(&a, "/sse/3/5", 300));
    WAIT_UNTIL(a.dones == 1, 2000);
    cr_assert_eq(a.rc, 0);
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 1, 300);
    run_for(30);
    cr_assert_eq(b.dones, 0);
    xfer_free(&a);
    xfer_free(&b);
}

Test(http, pause_holds_data_in_the_socket_and_resume_delivers_it)
{
    xfer_t  x = { 0 };
    long    total = 32L << 20, w1, w2;
    size_t  got;

    /* The idle timeout is generous here: after a zero window, loopback TCP
     * on a loaded machine can pause for tens of ms between chunks.  The
     * "paused is not idle" check is in pause_and_resume_an_sse_stream. */
    x.pause_on_body = 1;
    cr_assert_not_null(start_get(&x, "/big/33554432", 2000));
    WAIT_UNTIL(x.bodies == 1, 2000);
    run_for(200);
    cr_assert_eq(x.bodies, 1, "on_body while paused");
    w1 = atomic_load(&fx.stats->big_written);
    run_for(100);
    w2 = atomic_load(&fx.stats->big_written);
    cr_assert_eq(w1, w2, "server still writing: %ld then %ld", w1, w2);
    cr_assert_lt(w1, total, "no backpressure");
    cr_assert_eq(x.dones, 0);

    got = x.body_len;
    fx.in_call = 1;
    tg_http_pause(x.h, 1);      /* idempotent */
    tg_http_pause(x.h, 0);
    tg_http_pause(x.h, 0);
    fx.in_call = 0;
    cr_assert_eq(x.body_len, got, "body delivered inside tg_http_pause");
    WAIT_UNTIL(x.dones == 1, 5000);
    cr_assert_eq(x.rc, 0, "rc %d err %s after %zu of %ld bytes (paused at "
                 "%zu, server wrote %ld)", x.rc, x.err, x.body_len, total,
                 got, atomic_load(&fx.stats->big_written));
    cr_assert_eq((long) x.body_len, total);
    xfer_free(&x);
}

Test(http, pause_and_resume_an_sse_stream)
{
    xfer_t  x = { 0 };
    int     events;

    /* Paused for 300 ms with a 100 ms idle timeout: the clock stops while
     * the caller holds the transfer. */
    cr_assert_not_null(start_get(&x, "/sse/20/5", 100));
    WAIT_UNTIL(x.events >= 3, 2000);
    tg_http_pause(x.h, 1);
    events = x.events;
    run_for(300);
    cr_assert_eq(x.dones, 0, "rc %d err %s", x.rc, x.err);
    cr_assert_leq(x.events, events + 1, "events kept coming while paused");
    tg_http_pause(x.h, 0);
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, 0);
    cr_assert_eq(x.events, 20);
    cr_assert_str_eq(x.last_event, "19");
    xfer_free(&x);
}

#define NCONC 200

Test(http, concurrent_transfers_reuse_connections)
{
    xfer_t  *x = calloc(NCONC, sizeof(*x));
    int      i, done;
    long     conns;

    cr_assert_not_null(x);
    for (i = 0; i < NCONC; i++) {
        cr_assert_not_null(start_get(&x[i], "/sse/3/10", 1000));
    }
    cr_assert_eq(tg_http_client_active(fx.client), NCONC);
    for (done = 0; done < NCONC; ) {
        uv_run(&fx.loop, UV_RUN_ONCE);
        for (done = 0, i = 0; i < NCONC; i++) {
            done += x[i].dones;
        }
    }
    for (i = 0; i < NCONC; i++) {
        cr_assert_eq(x[i].rc, 0, "%d: rc %d err %s", i, x[i].rc, x[i].err);
        cr_assert_eq(x[i].events, 3);
        xfer_free(&x[i]);
        memset(&x[i], 0, sizeof(x[i]));
    }
    conns = atomic_load(&fx.stats->accepted);
    cr_assert_leq(conns, NCONC);

    /* A second wave finds every connection in the pool. */
    for (i = 0; i < NCONC; i++) {
        cr_assert_not_null(start_get(&x[i], "/hello", 1000));
    }
    for (done = 0; done < NCONC; ) {
        uv_run(&fx.loop, UV_RUN_ONCE);
        for (done = 0, i = 0; i < NCONC; i++) {
            done += x[i].dones;
        }
    }
    for (i = 0; i < NCONC; i++) {
        cr_assert_eq(x[i].rc, 0);
        cr_assert_str_eq(x[i].body, "hello");
        xfer_free(&x[i]);
    }
    cr_assert_eq(atomic_load(&fx.stats->accepted), conns,
                 "second wave opened %ld new connections",
                 atomic_load(&fx.stats->accepted) - conns);
    cr_assert_eq(atomic_load(&fx.stats->requests), 2 * NCONC);
    free(x);
}

Test(http, sequential_requests_from_on_done_share_one_connection)
{
    xfer_t  x = { 0 };

    x.chain = 20;
    cr_assert_not_null(start_get(&x, "/hello", 300));
    WAIT_UNTIL(fx.chained == 20 && x.dones == 1, 3000);
    cr_assert_eq(x.rc, 0);
    cr_assert_eq(atomic_load(&fx.stats->requests), 21);
    cr_assert_eq(atomic_load(&fx.stats->accepted), 1);
    xfer_free(&x);
}

Test(http, start_from_inside_on_body)
{
    xfer_t  x = { 0 };

    x.start_on_body = 1;
    cr_assert_not_null(start_get(&x, "/sse/3/10", 300));
    WAIT_UNTIL(x.dones == 1 && fx.follow.dones == 1, 2000);
    cr_assert_eq(x.rc, 0);
    cr_assert_eq(fx.follow.rc, 0);
    cr_assert_str_eq(fx.follow.body, "hello");
    xfer_free(&fx.follow);
    xfer_free(&x);
}

Test(http, client_free_cancels_every_transfer)
{
    xfer_t  x[5];
    int     i, events;

    memset(x, 0, sizeof(x));
    for (i = 0; i < 5; i++) {
        cr_assert_not_null(start_get(&x[i], "/sse/1000/5", 300));
    }
    for (i = 0; i < 5; i++) {
        WAIT_UNTIL(x[i].events >= 1, 2000);
    }
    tg_http_client_free(fx.client);
    fx.client = NULL;
    events = 0;
    for (i = 0; i < 5; i++) {
        events += x[i].events;
    }
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 5, 300);
    for (i = 0; i < 5; i++) {
        cr_assert_eq(x[i].dones, 0);
        xfer_free(&x[i]);
    }
    cr_assert_eq(x[0].events + x[1].events + x[2].events + x[3].events
                 + x[4].events, events);
}

Test(http, pooled_connection_closed_by_the_server_while_idle)
{
    xfer_t  a = { 0 }, b = { 0 };

    cr_assert_not_null(start_get(&a, "/bye", 300));
    WAIT_UNTIL(a.dones == 1, 2000);
    cr_assert_eq(a.rc, 0);
    run_for(100);   /* the server closes it after 20 ms */
    cr_assert_not_null(start_get(&b, "/hello", 300));
    WAIT_UNTIL(b.dones == 1, 2000);
    cr_assert_eq(b.rc, 0, "rc %d err %s", b.rc, b.err);
    cr_assert_str_eq(b.body, "hello");
    cr_assert_eq(atomic_load(&fx.stats->accepted), 2);
    xfer_free(&a);
    xfer_free(&b);
}

Test(http, pooled_connection_closed_under_a_new_request_is_retried)
{
    xfer_t  a = { 0 };

    /* /drop answers, keeps nothing open, yet says keep-alive: the next
     * request, started from on_done, goes out on the dead connection and
     * is sent again on a fresh one. */
    a.then = "/hello";
    cr_assert_not_null(start_get(&a, "/drop", 300));
    WAIT_UNTIL(a.dones == 1 && fx.follow.dones == 1, 2000);
    cr_assert_eq(a.rc, 0);
    cr_assert_eq(fx.follow.rc, 0, "rc %d err %s", fx.follow.rc,
                 fx.follow.err);
    cr_assert_str_eq(fx.follow.body, "hello");
    cr_assert_eq(atomic_load(&fx.stats->accepted), 2);
    xfer_free(&fx.follow);
    xfer_free(&a);
}

Test(http, chunked_response_split_anywhere_then_reused)
{
    xfer_t  a = { 0 }, b = { 0 };

    cr_assert_not_null(start_get(&a, "/split", 300));
    WAIT_UNTIL(a.dones == 1, 3000);
    cr_assert_eq(a.rc, 0, "rc %d err %s", a.rc, a.err);
    cr_assert_str_eq(a.body, "hello, world");
    cr_assert_gt(a.bodies, 2, "the pieces came one by one");
    cr_assert_not_null(start_get(&b, "/hello", 300));
    WAIT_UNTIL(b.dones == 1, 2000);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(atomic_load(&fx.stats->accepted), 1);
    xfer_free(&a);
    xfer_free(&b);
}

Test(http, http10_body_until_close_and_no_reuse)
{
    xfer_t  a = { 0 }, b = { 0 };

    cr_assert_not_null(start_get(&a, "/http10", 300));
    WAIT_UNTIL(a.dones == 1, 2000);
    cr_assert_eq(a.rc, 0, "rc %d err %s", a.rc, a.err);
    cr_assert_eq(a.status, 200);
    cr_assert_str_eq(a.body, "old");
    cr_assert_not_null(start_get(&b, "/hello", 300));
    WAIT_UNTIL(b.dones == 1, 2000);
    cr_assert_eq(b.rc, 0);
    cr_assert_eq(atomic_load(&fx.stats->accepted), 2);
    xfer_free(&a);
    xfer_free(&b);
}

Test(http, oversized_header_block_is_eio)
{
    xfer_t  x = { 0 };

    cr_assert_not_null(start_get(&x, "/hugehead", 1000));
    WAIT_UNTIL(x.dones == 1, 2000);
    cr_assert_eq(x.rc, -EIO, "rc %d err %s", x.rc, x.err);
    cr_assert_eq(x.heads, 0);
    cr_assert_not_null(strstr(x.err, "header block over 65536 bytes"),
                       "%s", x.err);
    xfer_free(&x);
}

Test(http, cancel_inside_a_content_length_body)
{
    xfer_t  x = { 0 };

    x.cancel_after_events = 0;
    x.pause_on_body = 0;
    cr_assert_not_null(start_get(&x, "/big/33554432", 2000));
    WAIT_UNTIL(x.bodies >= 1, 2000);
    fx.in_call = 1;
    tg_http_cancel(x.h);
    fx.in_call = 0;
    WAIT_UNTIL(atomic_load(&fx.stats->aborted) == 1, 1000);
    run_for(30);
    cr_assert_eq(x.dones, 0);
    cr_assert_lt((long) x.body_len, 32L << 20);
    cr_assert_eq(tg_http_client_active(fx.client), 0);
    xfer_free(&x);
}

Test(http, host_name_is_resolved)
{
    xfer_t         x = { 0 }, y = { 0 };
    tg_http_req_t  req = { 0 };
    char           url[128];

    /* localhost may resolve to ::1 first, where nothing listens: the
     * next address is tried. */
    snprintf(url, sizeof(url), "http://localhost:%d/hello",
             http_server_port(fx.srv));
    req.url = url;
    req.connect_timeout_ms = 1000;
    cr_assert_not_null(start_req(&x, &req));
    WAIT_UNTIL(x.dones == 1, 3000);
    cr_assert_eq(x.rc, 0, "rc %d err %s", x.rc, x.err);
    cr_assert_str_eq(x.body, "hello");

    req.url = "http://no-such-host.invalid:80/v1/models";
    cr_assert_not_null(start_req(&y, &req));
    WAIT_UNTIL(y.dones == 1, 5000);
    cr_assert_eq(y.rc, -ECONNREFUSED, "rc %d err %s", y.rc, y.err);
    cr_assert_eq(y.heads, 0);
    xfer_free(&x);
    xfer_free(&y);
}
