/*
 * Internals of the built-in HTTP/1.1 client for http:// URLs, shared by
 * h1client.c (transfers) and h1conn.c (connections, hosts, the request
 * text).  Not for other components: client.h is the interface.
 */

#ifndef TG_BACKEND_H1CLIENT_H
#define TG_BACKEND_H1CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <netdb.h>
#include <sys/socket.h>

#include <uv.h>

#include "client_int.h"
#include "http1.h"

/* connect_timeout_ms 0: curl's default, which the https:// path keeps. */
#define TG_H1_CONNECT_MS  300000

/* A connection's state. */
#define TG__H1_RESOLVING   0
#define TG__H1_CONNECTING  1
#define TG__H1_ACTIVE      2    /* carries a transfer or waits in a pool */

/* The pieces of an http:// URL, pointing into it. */
typedef struct {
    const char  *name;          /* host, without [] */
    size_t       name_len;
    const char  *authority;     /* host[:port] as written: Host header */
    size_t       authority_len;
    const char  *path;          /* from '/' or '?' up to '#' or the end */
    size_t       path_len;
    unsigned     port;
} tg__h1_url_t;

/* One host:port: its idle connections and, if numeric, its address. */
typedef struct {
    tg_queue_t               link;      /* in client->h1_hosts */
    tg_queue_t               idle;      /* tg__h1conn_t, most recent first */
    size_t                   nidle;
    unsigned                 port_num;
    int                      numeric;   /* addr is set: no resolution */
    struct sockaddr_storage  addr;
    char                     port[8];
    char                     name[];
} tg__h1host_t;

/* A URL a transfer started with, parsed (a backend's transfers all start
 * with the same one): its pieces point into text. */
struct tg__h1_last_s {
    tg__h1host_t            *host;
    tg__h1_url_t             u;
    size_t                   len;
    char                     text[];
};

struct tg__h1conn_s {
    uv_tcp_t           tcp;
    uv_timer_t         timer;       /* connect timeout, then idle timeout */
    uv_connect_t       creq;
    uv_write_t         wreq;        /* the rest of a request not written
                                       at once */
    uv_getaddrinfo_t   dns;
    tg_http_client_t  *client;
    tg__h1host_t      *host;
    tg__h1_t          *xfer;        /* NULL when idle or closing */
    struct addrinfo   *ai;          /* resolved addresses, owned */
    struct addrinfo   *ai_next;     /* the next one to try */
    tg_queue_t         link;        /* in client->h1_conns until closed */
    tg_queue_t         idle;        /* in host->idle while pooled */
    tg_h1_t            ps;
    char              *held;        /* bytes a paused transfer left */
    size_t             held_len;
    uint64_t           last_rx;     /* loop time of the last byte */
    unsigned           refs;        /* open handles and a pending lookup */
    unsigned           state:2;
    unsigned           reused:1;    /* came from the pool */
    unsigned           reading:1;
    unsigned           writing:1;   /* wreq in flight */
    unsigned           dns_pending:1;
    unsigned           timer_open:1;
    unsigned           closing:1;
};

struct tg__h1_s {
    unsigned           kind;        /* TG__HTTP_H1: as tg_http_s */
    tg_http_client_t  *client;
    tg_http_cb_t       cb;
    void              *data;
    tg__h1host_t      *host;
    tg__h1conn_t      *conn;
    char              *req;         /* the whole request, kept for a retry */
    size_t             req_len;
    size_t             req_cap;     /* bytes of req's storage */
    size_t             secret_len;  /* bytes of req to wipe: the key */
    long               connect_ms, idle_ms;
    uint64_t           deadline;    /* of the connect, loop time */
    tg_queue_t         link;        /* in client->h1_xfers */
    tg_queue_t         pending;     /* in client->h1_pending when queued */
    int                fail_rc;     /* deferred on_done */
    unsigned           queued:1;
    unsigned           paused:1;
    unsigned           resume:1;
    unsigned           retried:1;
    unsigned           finishing:1; /* inside on_done */
    unsigned           in_cb:1;     /* inside on_head or on_body */
    unsigned           cancelled:1;
    char               err[256];
};

/* h1client.c */
void tg__h1_finish(tg__h1_t *h, int rc, const char *err, int reuse);
void tg__h1_fail_later(tg__h1_t *h, int rc, const char *err);
void tg__h1_sync_read(tg__h1conn_t *conn);
void tg__h1_connected(tg__h1conn_t *conn);

/* h1conn.c */
int tg__h1_parse_url(const char *url, tg__h1_url_t *u);
tg__h1host_t *tg__h1_host(tg_http_client_t *c, const tg__h1_url_t *u);
int tg__h1_resolve(tg_http_client_t *c, const char *url, tg__h1_url_t *u,
    tg__h1host_t **host);
void tg__h1_hosts_free(tg_http_client_t *c);
int tg__h1_request(tg__h1_t *h, const tg_http_req_t *req,
    const tg__h1_url_t *u);
void tg__h1_free_request(tg__h1_t *h);
int tg__h1_conn_open(tg__h1_t *h, struct addrinfo *ai,
    struct addrinfo *next);
void tg__h1_conn_close(tg__h1conn_t *conn);
void tg__h1_conn_pool(tg__h1conn_t *conn);
void tg__h1_idle_arm(tg__h1conn_t *conn);

#endif /* TG_BACKEND_H1CLIENT_H */
