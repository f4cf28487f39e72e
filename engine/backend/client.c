/*
 * thinkgate backend client: libcurl's multi_socket API on a libuv loop.
 *
 * curl tells us which sockets to watch (tg__curl_socket_cb → one uv_poll_t
 * per socket) and when to wake it (tg__curl_timer_cb → one uv_timer_t);
 * the loop hands events back with curl_multi_socket_action, after which
 * finished transfers are read from curl's message queue.
 *
 * Re-entrancy: curl forbids curl_multi_remove_handle from inside its own
 * callbacks, and the API promises that start/pause/cancel never call back.
 * So while the client is inside curl (c->in_curl > 0) a cancel only marks
 * the transfer and queues it; resuming a paused transfer (which makes curl
 * deliver held data synchronously) is always queued.  The queue runs from
 * the loop: right after each curl_multi_socket_action, and from a uv_idle_t
 * otherwise.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "client.h"
#include "client_int.h"

static void tg__client_maybe_free(tg_http_client_t *c);
static void tg__client_close_cb(uv_handle_t *handle);
static int tg__curl_socket_cb(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp);
static int tg__curl_timer_cb(CURLM *multi, long timeout_ms, void *userp);
static void tg__poll_cb(uv_poll_t *poll, int status, int events);
static int tg__sock_watch(tg__sock_t *sk, int events);
static void tg__sock_close(tg__sock_t *sk);
static void tg__poll_close_cb(uv_handle_t *handle);
static void tg__timer_cb(uv_timer_t *timer);
static void tg__pending_cb(uv_idle_t *idle);
static void tg__socket_action(tg_http_client_t *c, curl_socket_t s,
    int flags);
static void tg__after_curl(tg_http_client_t *c);
static void tg__check_done(tg_http_client_t *c);
static void tg__run_pending(tg_http_client_t *c);


tg_http_client_t *
tg_http_client_new(uv_loop_t *loop)
{
    tg_http_client_t  *c;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        return NULL;
    }

    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        goto failed;
    }
    c->loop = loop;
    tg_queue_init(&c->transfers);
    tg_queue_init(&c->pending);
    tg_queue_init(&c->sockets);
    tg__h1_client_init(c);

    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        goto failed;
    }

    /* HTTP/1.1 only: one connection per stream, no multiplexing, no limit
     * per host (the engine's pools enforce max_inflight), and a pool large
     * enough to keep every connection of a busy backend warm. */
    if (curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION,
                          tg__curl_socket_cb) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION,
                             tg__curl_timer_cb) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_PIPELINING,
                             (long) CURLPIPE_NOTHING) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                             0L) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
                             0L) != CURLM_OK
        || curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS,
                             (long) TG_HTTP_POOL_MAX) != CURLM_OK)
    {
        goto failed;
    }

    if (uv_timer_init(loop, &c->timer) != 0) {
        goto failed;
    }
    c->timer.data = c;
    c->nhandles++;

    if (uv_idle_init(loop, &c->idle) != 0) {
        uv_close((uv_handle_t *) &c->timer, tg__client_close_cb);
        c->closing = 1;
        curl_multi_cleanup(c->multi);
        c->multi = NULL;
        return NULL;
    }
    c->idle.data = c;
    c->nhandles++;

    return c;

failed:
    if (c != NULL) {
        if (c->multi != NULL) {
            curl_multi_cleanup(c->multi);
        }
        free(c);
    }
    curl_global_cleanup();
    return NULL;
}


void
tg_http_client_free(tg_http_client_t *c)
{
    tg_queue_t  *l;
    tg__sock_t  *sk;
    tg_http_t   *h;

    if (c == NULL || c->closing) {
        return;
    }

    /* Each pass unlinks one transfer whatever its state, so a transfer
     * already marked cancelled cannot make this spin. */
    while (!tg_queue_empty(&c->transfers)) {
        h = tg_queue_data(tg_queue_head(&c->transfers), tg_http_t, link);
        if (h->finishing) {
            tg_queue_remove(&h->link);
            continue;
        }
        h->cancelled = 1;
        uv_timer_stop(&h->idle);
        tg__http_remove(h);
    }

    while (c->nspare > 0) {
        curl_easy_cleanup(c->spare[--c->nspare]);
    }
    tg__h1_client_free(c);

    /* curl closes its pooled connections here and reports most sockets
     * through tg__curl_socket_cb; c->closing is not set yet so that those
     * polls are closed the normal way. */
    curl_multi_cleanup(c->multi);
    c->multi = NULL;
    c->closing = 1;

    /* Any socket curl did not report gone is closed (curl owns the fd). */
    while (!tg_queue_empty(&c->sockets)) {
        l = tg_queue_head(&c->sockets);
        sk = tg_queue_data(l, tg__sock_t, link);
        tg__sock_close(sk);
    }

    uv_close((uv_handle_t *) &c->timer, tg__client_close_cb);
    uv_close((uv_handle_t *) &c->idle, tg__client_close_cb);
}


size_t
tg_http_client_active(const tg_http_client_t *c)
{
    return c->nactive;
}


/* http:// goes to our own HTTP/1.1 client (h1client.c), the rest (https://
 * with its TLS options) to curl; both keep client.h's contract. */
tg_http_t *
tg_http_start(tg_http_client_t *c, const tg_http_req_t *req,
    const tg_http_cb_t *cb, void *data)
{
    tg_http_t  *h;

    if (c == NULL || c->closing || req == NULL || req->url == NULL
        || cb == NULL || (req->body == NULL && req->body_len != 0))
    {
        return NULL;
    }
    if (tg__h1_start(c, req, cb, data, &h) == 1) {
        h = tg__curl_start(c, req, cb, data);
    }
    return h;
}


void
tg_http_pause(tg_http_t *h, int paused)
{
    if (h == NULL) {
        return;
    }
    if (h->kind == TG__HTTP_H1) {
        tg__h1_pause(h, paused);
    } else {
        tg__curl_pause(h, paused);
    }
}


void
tg_http_cancel(tg_http_t *h)
{
    if (h == NULL) {
        return;
    }
    if (h->kind == TG__HTTP_H1) {
        tg__h1_cancel(h);
    } else {
        tg__curl_cancel(h);
    }
}


/* Memory goes when the last libuv handle the client owns has closed. */
static void
tg__client_maybe_free(tg_http_client_t *c)
{
    if (c->closing && c->nhandles == 0) {
        free(c->h1_rbuf);
        free(c->byfd);
        free(c);
        curl_global_cleanup();
    }
}


static void
tg__client_close_cb(uv_handle_t *handle)
{
    tg_http_client_t  *c = handle->data;

    c->nhandles--;
    tg__client_maybe_free(c);
}


void
tg__client_handle_closed(tg_http_client_t *c)
{
    c->nhandles--;
    tg__client_maybe_free(c);
}


/* curl: start, change or stop watching socket s. */
static int
tg__curl_socket_cb(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
    tg_http_client_t  *c = userp;
    tg__sock_t        *sk = socketp, **slots;
    size_t             n;
    int                events = 0;

    (void) easy;

    /* curl forgets socketp after REMOVE; a kept-alive socket added again
     * is found by its number. */
    if (sk == NULL && s >= 0 && (size_t) s < c->nbyfd) {
        sk = c->byfd[s];
    }

    if (what == CURL_POLL_REMOVE) {
        if (sk != NULL) {
            /* Idle in curl's pool: a readable event (the server closed)
             * stops the watch in tg__poll_cb; a writable one would fire
             * without end, so it stops now. */
            sk->removed = 1;
            if (sk->events & UV_WRITABLE) {
                return tg__sock_watch(sk, 0);
            }
        }
        return 0;
    }

    if (c->closing || s < 0) {
        return -1;
    }

    if (sk == NULL) {
        if ((size_t) s >= c->nbyfd) {
            n = c->nbyfd ? c->nbyfd : 64;
            while (n <= (size_t) s) {
                n *= 2;
            }
            slots = realloc(c->byfd, n * sizeof(*slots));
            if (slots == NULL) {
                return -1;
            }
            memset(slots + c->nbyfd, 0, (n - c->nbyfd) * sizeof(*slots));
            c->byfd = slots;
            c->nbyfd = n;
        }
        sk = calloc(1, sizeof(*sk));
        if (sk == NULL) {
            return -1;
        }
        if (uv_poll_init_socket(c->loop, &sk->poll, s) != 0) {
            free(sk);
            return -1;
        }
        sk->poll.data = sk;
        sk->client = c;
        sk->fd = s;
        c->nhandles++;
        tg_queue_insert_tail(&c->sockets, &sk->link);
        c->byfd[s] = sk;
    }

    if (sk->removed || socketp == NULL) {
        sk->removed = 0;
        if (curl_multi_assign(c->multi, s, sk) != CURLM_OK) {
            return -1;
        }
    }

    if (what & CURL_POLL_IN) {
        events |= UV_READABLE;
    }
    if (what & CURL_POLL_OUT) {
        events |= UV_WRITABLE;
    }
    return tg__sock_watch(sk, events);
}


/* uv_poll_start and uv_poll_stop each cost epoll_ctl calls (libuv drops
 * the fd from epoll and adds it again): only call them on a change. */
static int
tg__sock_watch(tg__sock_t *sk, int events)
{
    if (events == sk->events) {
        return 0;
    }
    if (events == 0) {
        (void) uv_poll_stop(&sk->poll);
    } else if (uv_poll_start(&sk->poll, events, tg__poll_cb) != 0) {
        sk->events = 0;
        return -1;
    }
    sk->events = events;
    return 0;
}


/* Closes the watch of a socket; the fd stays open (curl owns it). */
static void
tg__sock_close(tg__sock_t *sk)
{
    tg_http_client_t  *c = sk->client;

    if (sk->fd >= 0 && (size_t) sk->fd < c->nbyfd
        && c->byfd[sk->fd] == sk)
    {
        c->byfd[sk->fd] = NULL;
    }
    tg_queue_remove(&sk->link);
    uv_close((uv_handle_t *) &sk->poll, tg__poll_close_cb);
}


/* curl: close a socket (CURLOPT_CLOSESOCKETFUNCTION).  The watch goes
 * first so that epoll forgets the fd before its number can be reused. */
int
tg__client_close_socket(void *client, curl_socket_t s)
{
    tg_http_client_t  *c = client;

    if (s >= 0 && (size_t) s < c->nbyfd && c->byfd[s] != NULL) {
        tg__sock_close(c->byfd[s]);
    }
    return close(s) == 0 ? 0 : 1;
}


static void
tg__poll_close_cb(uv_handle_t *handle)
{
    tg__sock_t        *sk = handle->data;
    tg_http_client_t  *c = sk->client;

    free(sk);
    tg__client_handle_closed(c);
}


static void
tg__poll_cb(uv_poll_t *poll, int status, int events)
{
    tg__sock_t  *sk = poll->data;
    int          flags = 0;

    if (sk->removed) {
        /* Idle in curl's pool: curl reads nothing from it now, so a level
         * event would repeat; curl sees the state when it reuses it. */
        (void) tg__sock_watch(sk, 0);
        return;
    }

    if (status < 0) {
        /* Let curl meet the error in its own recv/send: told
         * CURL_CSELECT_ERR, it fails the transfer outright, even one on a
         * kept-alive connection the server had closed, which it would
         * otherwise retry on a fresh connection. */
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE) {
            flags |= CURL_CSELECT_IN;
        }
        if (events & UV_WRITABLE) {
            flags |= CURL_CSELECT_OUT;
        }
    }
    tg__socket_action(sk->client, sk->fd, flags);
}


/* curl: call curl_multi_socket_action(TIMEOUT) in timeout_ms, or never
 * (-1).  Never act from here: curl forbids it, and a 0 timer runs on the
 * next loop iteration anyway. */
static int
tg__curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    tg_http_client_t  *c = userp;

    (void) multi;

    if (c->closing) {
        return 0;
    }
    if (timeout_ms < 0) {
        uv_timer_stop(&c->timer);
        return 0;
    }
    return uv_timer_start(&c->timer, tg__timer_cb, timeout_ms, 0) == 0
           ? 0 : -1;
}


static void
tg__timer_cb(uv_timer_t *timer)
{
    tg__socket_action(timer->data, CURL_SOCKET_TIMEOUT, 0);
}


static void
tg__socket_action(tg_http_client_t *c, curl_socket_t s, int flags)
{
    int  running;

    c->in_curl++;
    (void) curl_multi_socket_action(c->multi, s, flags, &running);
    c->in_curl--;
    tg__after_curl(c);
}


/* Everything that must not happen inside curl: finished transfers and
 * queued cancels and resumes. */
static void
tg__after_curl(tg_http_client_t *c)
{
    if (c->in_curl > 0 || c->closing) {
        return;
    }
    tg__check_done(c);
    tg__run_pending(c);
}


static void
tg__check_done(tg_http_client_t *c)
{
    CURLMsg    *msg;
    tg_http_t  *h;
    int         left;

    while ((msg = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE) {
            continue;
        }
        h = NULL;
        if (curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
                              (char **) &h) != CURLE_OK || h == NULL)
        {
            continue;
        }
        tg__http_done(h, msg->data.result);
        if (c->closing) {
            return;
        }
    }
}


/* Runs tg__pending_cb on the next loop iteration. */
void
tg__client_wake(tg_http_client_t *c)
{
    if (!c->closing && !uv_is_active((uv_handle_t *) &c->idle)) {
        (void) uv_idle_start(&c->idle, tg__pending_cb);
    }
}


void
tg__client_defer(tg_http_client_t *c, tg_http_t *h)
{
    if (!h->queued) {
        h->queued = 1;
        tg_queue_insert_tail(&c->pending, &h->pending);
    }
    if (c->in_curl == 0 && !uv_is_active((uv_handle_t *) &c->idle)) {
        (void) uv_idle_start(&c->idle, tg__pending_cb);
    }
}


static void
tg__pending_cb(uv_idle_t *idle)
{
    tg_http_client_t  *c = idle->data;

    uv_idle_stop(idle);
    tg__h1_run_pending(c);
    if (c->closing) {
        return;
    }
    tg__check_done(c);
    if (!c->closing) {
        tg__run_pending(c);
    }
}


static void
tg__run_pending(tg_http_client_t *c)
{
    tg_queue_t  *l;
    tg_http_t   *h;

    while (!c->closing && !tg_queue_empty(&c->pending)) {
        l = tg_queue_head(&c->pending);
        h = tg_queue_data(l, tg_http_t, pending);
        tg_queue_remove(l);
        h->queued = 0;

        if (h->cancelled) {
            tg__http_remove(h);
            continue;
        }
        if (h->add) {
            h->add = 0;
            tg__http_add(h);
            continue;
        }
        if (h->resume) {
            h->resume = 0;
            c->in_curl++;
            tg__http_unpause(h);
            c->in_curl--;
        }
        tg__check_done(c);
    }
}
