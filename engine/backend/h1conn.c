/*
 * Built-in HTTP/1.1 client (h1client.c): URLs, hosts and their pools, the
 * request text, and connections from resolution to close.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "h1client.h"

static void tg__h1_dns_cb(uv_getaddrinfo_t *req, int status,
    struct addrinfo *res);
static int tg__h1_connect(tg__h1conn_t *conn, const struct sockaddr *sa);
static void tg__h1_connect_cb(uv_connect_t *req, int status);
static void tg__h1_timer_cb(uv_timer_t *timer);
static void tg__h1_close_cb(uv_handle_t *handle);
static void tg__h1_unref(tg__h1conn_t *conn);


/* 0 and u filled for a plain http://host[:port][/path] URL; 1 for
 * anything else (https://, user info, odd bytes): curl's business. */
int
tg__h1_parse_url(const char *url, tg__h1_url_t *u)
{
    const char     *a, *e, *s, *hend;
    unsigned long   port = 80;

    if (strncasecmp(url, "http://", 7) != 0) {
        return 1;
    }
    for (s = url; *s != '\0'; s++) {
        if ((unsigned char) *s <= ' ' || (unsigned char) *s >= 0x7f) {
            return 1;
        }
    }
    a = url + 7;
    e = a + strcspn(a, "/?#");
    if (memchr(a, '@', (size_t) (e - a)) != NULL) {
        return 1;
    }
    if (*a == '[') {
        hend = memchr(a, ']', (size_t) (e - a));
        if (hend == NULL) {
            return 1;
        }
        u->name = a + 1;
        u->name_len = (size_t) (hend - a - 1);
        s = hend + 1;
    } else {
        s = memchr(a, ':', (size_t) (e - a));
        s = s != NULL ? s : e;
        u->name = a;
        u->name_len = (size_t) (s - a);
    }
    if (u->name_len == 0 || u->name_len > 255) {
        return 1;
    }
    if (s < e) {
        if (*s != ':' || s + 1 == e || e - s > 6) {
            return 1;
        }
        for (port = 0, s++; s < e; s++) {
            if (*s < '0' || *s > '9') {
                return 1;
            }
            port = port * 10 + (unsigned long) (*s - '0');
        }
        if (port == 0 || port > 65535) {
            return 1;
        }
    }
    u->port = (unsigned) port;
    u->authority = a;
    u->authority_len = (size_t) (e - a);
    u->path = e;
    u->path_len = strcspn(e, "#");
    return 0;
}


/* The host entry of u, created on first use. */
tg__h1host_t *
tg__h1_host(tg_http_client_t *c, const tg__h1_url_t *u)
{
    tg__h1host_t  *host;
    tg_queue_t    *q;
    char           name[256];

    for (q = tg_queue_head(&c->h1_hosts); q != tg_queue_sentinel(&c->h1_hosts);
         q = tg_queue_next(q))
    {
        host = tg_queue_data(q, tg__h1host_t, link);
        if (host->port_num == u->port
            && strncasecmp(host->name, u->name, u->name_len) == 0
            && host->name[u->name_len] == '\0')
        {
            return host;
        }
    }
    host = calloc(1, sizeof(*host) + u->name_len + 1);
    if (host == NULL) {
        return NULL;
    }
    memcpy(host->name, u->name, u->name_len);
    host->name[u->name_len] = '\0';
    host->port_num = u->port;
    snprintf(host->port, sizeof(host->port), "%u", u->port);
    tg_queue_init(&host->idle);
    memcpy(name, u->name, u->name_len + 1);
    name[u->name_len] = '\0';
    host->numeric =
        uv_ip4_addr(name, (int) u->port,
                    (struct sockaddr_in *) &host->addr) == 0
        || uv_ip6_addr(name, (int) u->port,
                       (struct sockaddr_in6 *) &host->addr) == 0;
    tg_queue_insert_tail(&c->h1_hosts, &host->link);
    return host;
}


/* How many parsed URLs the client keeps. */
#define TG__H1_LAST  (sizeof(((tg_http_client_t *) 0)->h1_last)          \
                      / sizeof(((tg_http_client_t *) 0)->h1_last[0]))


void
tg__h1_hosts_free(tg_http_client_t *c)
{
    tg_queue_t  *q;
    size_t       i;

    while (!tg_queue_empty(&c->h1_hosts)) {
        q = tg_queue_head(&c->h1_hosts);
        tg_queue_remove(q);
        free(tg_queue_data(q, tg__h1host_t, link));
    }
    for (i = 0; i < TG__H1_LAST; i++) {
        free(c->h1_last[i]);
        c->h1_last[i] = NULL;
    }
}


/* u and the host entry of url, from a kept URL when url is its text
 * again.  0; 1 when url is no http:// URL taken here; -1 out of memory. */
int
tg__h1_resolve(tg_http_client_t *c, const char *url, tg__h1_url_t *u,
    tg__h1host_t **host)
{
    struct tg__h1_last_s  *l;
    size_t                 n = strlen(url), i;

    for (i = 0; i < TG__H1_LAST && (l = c->h1_last[i]) != NULL; i++) {
        if (l->len == n && memcmp(l->text, url, n) == 0) {
            *u = l->u;
            *host = l->host;
            return 0;
        }
    }
    if (tg__h1_parse_url(url, u) != 0) {
        return 1;
    }
    *host = tg__h1_host(c, u);
    if (*host == NULL) {
        return -1;
    }

    /* Kept for next time; without memory, only not kept. */
    l = malloc(sizeof(*l) + n + 1);
    if (l != NULL) {
        memcpy(l->text, url, n + 1);
        l->len = n;
        l->host = *host;
        l->u = *u;
        l->u.name = l->text + (u->name - url);
        l->u.authority = l->text + (u->authority - url);
        l->u.path = l->text + (u->path - url);
        i = c->h1_last_next++ % TG__H1_LAST;
        free(c->h1_last[i]);
        c->h1_last[i] = l;
    }
    return 0;
}


static char *
tg__h1_put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}


#define tg__h1_lit(p, lit)  tg__h1_put(p, lit, sizeof(lit) - 1)


static char *
tg__h1_put_size(char *p, size_t v)
{
    char    digits[24];
    size_t  i = sizeof(digits);

    do {
        digits[--i] = (char) ('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return tg__h1_put(p, digits + i, sizeof(digits) - i);
}


/* The request, head and body, in one buffer written at once (put piece
 * by piece: snprintf's format parsing was 6% of the engine's
 * instructions per small request). */
int
tg__h1_request(tg__h1_t *h, const tg_http_req_t *req,
    const tg__h1_url_t *u)
{
    const char  *key = req->api_key, *accept;
    char        *p, *w;
    size_t       cap;

    key = key != NULL && key[0] != '\0' ? key : NULL;
    accept = req->stream ? "text/event-stream" : "application/json";
    cap = 128 + u->path_len + u->authority_len + strlen(accept)
          + (key != NULL ? strlen(key) + 32 : 0) + req->body_len;
    /* a spare transfer's buffer when it is big enough */
    if (h->req != NULL && h->req_cap >= cap) {
        p = h->req;
    } else {
        tg__h1_free_request(h);
        p = malloc(cap);
        if (p == NULL) {
            return -1;
        }
        h->req_cap = cap;
    }
    w = req->body != NULL ? tg__h1_lit(p, "POST ") : tg__h1_lit(p, "GET ");
    if (u->path_len == 0 || u->path[0] != '/') {
        *w++ = '/';
    }
    w = tg__h1_put(w, u->path, u->path_len);
    w = tg__h1_lit(w, " HTTP/1.1\r\nHost: ");
    w = tg__h1_put(w, u->authority, u->authority_len);
    w = tg__h1_lit(w, "\r\n");
    if (key != NULL) {
        w = tg__h1_lit(w, "Authorization: Bearer ");
        w = tg__h1_put(w, key, strlen(key));
        w = tg__h1_lit(w, "\r\n");
    }
    h->secret_len = key != NULL ? (size_t) (w - p) : 0;
    if (req->body != NULL) {
        w = tg__h1_lit(w, "Content-Type: application/json\r\n"
                          "Content-Length: ");
        w = tg__h1_put_size(w, req->body_len);
        w = tg__h1_lit(w, "\r\n");
    }
    w = tg__h1_lit(w, "Accept: ");
    w = tg__h1_put(w, accept, strlen(accept));
    w = tg__h1_lit(w, "\r\n\r\n");
    if (req->body_len > 0) {
        memcpy(w, req->body, req->body_len);
    }
    h->req = p;
    h->req_len = (size_t) (w - p) + req->body_len;
    return 0;
}


void
tg__h1_free_request(tg__h1_t *h)
{
    if (h->req != NULL && h->secret_len > 0) {
        /* The key must not linger in freed heap memory. */
        memset(h->req, 0, h->secret_len);
    }
    free(h->req);
    h->req = NULL;
    h->req_cap = 0;
}


/* A new connection for h, to ai's next address (after a failed one) or
 * to h's host.  -1: h->err says why (the connection, if any, is closed
 * when h fails); ai is owned either way. */
int
tg__h1_conn_open(tg__h1_t *h, struct addrinfo *ai, struct addrinfo *next)
{
    tg_http_client_t  *c = h->client;
    tg__h1conn_t      *conn;
    uint64_t           now = uv_now(c->loop);
    struct addrinfo    hints;

    conn = calloc(1, sizeof(*conn));
    if (conn == NULL || uv_tcp_init(c->loop, &conn->tcp) != 0) {
        free(conn);
        if (ai != NULL) {
            uv_freeaddrinfo(ai);
        }
        snprintf(h->err, sizeof(h->err), "out of memory");
        return -1;
    }
    conn->client = c;
    conn->host = h->host;
    conn->ai = ai;
    conn->tcp.data = conn;
    conn->timer.data = conn;
    conn->creq.data = conn;
    conn->wreq.data = conn;
    conn->dns.data = conn;
    conn->refs = 1;
    c->nhandles++;
    tg_queue_init(&conn->idle);
    tg_queue_insert_tail(&c->h1_conns, &conn->link);
    if (uv_timer_init(c->loop, &conn->timer) != 0) {
        tg__h1_conn_close(conn);
        snprintf(h->err, sizeof(h->err), "cannot start a timer");
        return -1;
    }
    conn->timer_open = 1;
    conn->refs++;
    c->nhandles++;
    conn->xfer = h;
    h->conn = conn;
    (void) uv_timer_start(&conn->timer, tg__h1_timer_cb,
                          h->deadline > now ? h->deadline - now : 1, 0);
    if (next != NULL || h->host->numeric) {
        conn->state = TG__H1_CONNECTING;
        conn->ai_next = next != NULL ? next->ai_next : NULL;
        return tg__h1_connect(conn, next != NULL ? next->ai_addr
                              : (struct sockaddr *) &h->host->addr);
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    if (uv_getaddrinfo(c->loop, &conn->dns, tg__h1_dns_cb, h->host->name,
                       h->host->port, &hints) != 0)
    {
        snprintf(h->err, sizeof(h->err), "Could not resolve host: %s",
                 h->host->name);
        return -1;
    }
    conn->dns_pending = 1;
    conn->refs++;
    c->nhandles++;
    return 0;
}


static void
tg__h1_dns_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tg__h1conn_t  *conn = req->data;
    tg__h1_t      *h = conn->xfer;

    conn->dns_pending = 0;
    if (conn->closing || h == NULL) {
        if (res != NULL) {
            uv_freeaddrinfo(res);
        }
        tg__h1_unref(conn);
        return;
    }
    tg__h1_unref(conn);     /* not the last: the handles are open */
    if (status < 0 || res == NULL) {
        snprintf(h->err, sizeof(h->err), "Could not resolve host: %s (%s)",
                 h->host->name, uv_strerror(status < 0 ? status
                                                       : UV_EAI_NONAME));
        if (res != NULL) {
            uv_freeaddrinfo(res);
        }
        tg__h1_finish(h, -ECONNREFUSED, h->err, 0);
        return;
    }
    conn->ai = res;
    conn->ai_next = res->ai_next;
    conn->state = TG__H1_CONNECTING;
    if (tg__h1_connect(conn, res->ai_addr) != 0) {
        tg__h1_finish(h, -ECONNREFUSED, h->err, 0);
    }
}


static int
tg__h1_connect(tg__h1conn_t *conn, const struct sockaddr *sa)
{
    tg__h1_t  *h = conn->xfer;
    int        rc;

    rc = uv_tcp_connect(&conn->creq, &conn->tcp, sa, tg__h1_connect_cb);
    if (rc != 0) {
        snprintf(h->err, sizeof(h->err), "Failed to connect to %s port %s: "
                 "%s", h->host->name, h->host->port, strerror(-rc));
        return -1;
    }
    return 0;
}


static void
tg__h1_connect_cb(uv_connect_t *req, int status)
{
    tg__h1conn_t     *conn = req->data;
    tg__h1_t         *h = conn->xfer;
    struct addrinfo  *ai, *next;

    if (conn->closing || h == NULL || status == UV_ECANCELED) {
        return;
    }
    if (status < 0) {
        snprintf(h->err, sizeof(h->err), "Failed to connect to %s port %s: "
                 "%s", h->host->name, h->host->port, strerror(-status));
        if (conn->ai_next == NULL) {
            tg__h1_finish(h, -ECONNREFUSED, h->err, 0);
            return;
        }
        /* The next address, on a new socket. */
        ai = conn->ai;
        next = conn->ai_next;
        conn->ai = NULL;
        h->conn = NULL;
        conn->xfer = NULL;
        tg__h1_conn_close(conn);
        if (tg__h1_conn_open(h, ai, next) != 0) {
            tg__h1_finish(h, -ECONNREFUSED, h->err, 0);
        }
        return;
    }
    uv_timer_stop(&conn->timer);
    (void) uv_tcp_nodelay(&conn->tcp, 1);
    (void) uv_tcp_keepalive(&conn->tcp, 1, 60);
    tg__h1_connected(conn);
}


/* Connect timeout, or the idle clock (re-armed lazily: each read only
 * notes the time). */
static void
tg__h1_timer_cb(uv_timer_t *timer)
{
    tg__h1conn_t  *conn = timer->data;
    tg__h1_t      *h = conn->xfer;
    uint64_t       now, quiet;

    if (h == NULL || conn->closing) {
        return;
    }
    if (conn->state != TG__H1_ACTIVE) {
        snprintf(h->err, sizeof(h->err), "Connection to %s port %s timed "
                 "out after %ld milliseconds", h->host->name, h->host->port,
                 h->connect_ms);
        tg__h1_finish(h, -ECONNREFUSED, h->err, 0);
        return;
    }
    if (h->paused || h->idle_ms == 0) {
        return;
    }
    now = uv_now(conn->client->loop);
    quiet = now - conn->last_rx;
    if (quiet < (uint64_t) h->idle_ms) {
        (void) uv_timer_start(&conn->timer, tg__h1_timer_cb,
                              (uint64_t) h->idle_ms - quiet, 0);
        return;
    }
    snprintf(h->err, sizeof(h->err), "no data from the server for %ld ms",
             h->idle_ms);
    tg__h1_finish(h, -ETIMEDOUT, h->err, 0);
}


void
tg__h1_idle_arm(tg__h1conn_t *conn)
{
    tg__h1_t  *h = conn->xfer;

    if (h == NULL || h->idle_ms == 0 || h->paused) {
        return;
    }
    (void) uv_timer_start(&conn->timer, tg__h1_timer_cb,
                          (uint64_t) h->idle_ms, 0);
}


/* Back to the host's pool, most recent first, if there is room. */
void
tg__h1_conn_pool(tg__h1conn_t *conn)
{
    tg_http_client_t  *c = conn->client;

    if (c->h1_nidle >= TG_HTTP_POOL_MAX || conn->held != NULL) {
        tg__h1_conn_close(conn);
        return;
    }
    uv_timer_stop(&conn->timer);
    conn->reused = 0;
    tg_queue_insert_head(&conn->host->idle, &conn->idle);
    conn->host->nidle++;
    c->h1_nidle++;
    tg__h1_sync_read(conn);
}


void
tg__h1_conn_close(tg__h1conn_t *conn)
{
    tg_http_client_t  *c = conn->client;

    if (conn->closing) {
        return;
    }
    conn->closing = 1;
    if (conn->xfer != NULL) {
        conn->xfer->conn = NULL;
        conn->xfer = NULL;
    }
    if (tg_queue_linked(&conn->idle)) {
        tg_queue_remove(&conn->idle);
        conn->host->nidle--;
        c->h1_nidle--;
    }
    tg_queue_remove(&conn->link);
    if (conn->dns_pending) {
        (void) uv_cancel((uv_req_t *) &conn->dns);
    }
    uv_close((uv_handle_t *) &conn->tcp, tg__h1_close_cb);
    if (conn->timer_open) {
        uv_close((uv_handle_t *) &conn->timer, tg__h1_close_cb);
    }
}


static void
tg__h1_close_cb(uv_handle_t *handle)
{
    tg__h1_unref(handle->data);
}


/* One handle closed or the lookup answered: the memory goes with the
 * last. */
static void
tg__h1_unref(tg__h1conn_t *conn)
{
    tg_http_client_t  *c = conn->client;

    if (--conn->refs == 0) {
        if (conn->ai != NULL) {
            uv_freeaddrinfo(conn->ai);
        }
        tg_h1_free(&conn->ps);
        free(conn->held);
        free(conn);
    }
    tg__client_handle_closed(c);
}
