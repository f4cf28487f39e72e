/*
 * Internals shared by client.c (the client, the multi handle on the loop),
 * transfer.c (one curl easy handle per https:// request) and h1client.c
 * (our own HTTP/1.1 client for http:// URLs).  Not for other components.
 */

#ifndef TG_BACKEND_CLIENT_INT_H
#define TG_BACKEND_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <uv.h>

#include "client.h"
#include "http1.h"
#include "util/queue.h"

/* The first member of every transfer: which client runs it. */
#define TG__HTTP_CURL  0
#define TG__HTTP_H1    1

/* The read buffer every connection of the built-in client reads into
 * (only bytes a paused transfer has not taken are copied out of it). */
#define TG_H1_RBUF_SIZE  65536

typedef struct tg__h1_s      tg__h1_t;
typedef struct tg__h1conn_s  tg__h1conn_t;

/* Idle connections kept for reuse across all backends. */
#define TG_HTTP_POOL_MAX  1024

/* Finished easy handles kept, reset, for the next transfers: creating and
 * destroying one per request cost about a tenth of the engine's
 * instructions for a small request. */
#define TG_HTTP_SPARE_MAX  64

/*
 * One socket curl asked us to watch.  It lives until curl closes the
 * socket (CURLOPT_CLOSESOCKETFUNCTION), not until CURL_POLL_REMOVE: a
 * kept-alive connection is removed after each transfer and added again by
 * the next one, and every uv_poll_start/stop costs epoll_ctl calls.
 */
typedef struct {
    uv_poll_t          poll;
    tg_http_client_t  *client;
    curl_socket_t      fd;
    int                events;      /* UV_* being watched, 0 when stopped */
    unsigned           removed:1;   /* idle in curl's pool */
    tg_queue_t         link;        /* in client->sockets */
} tg__sock_t;

struct tg_http_client_s {
    uv_loop_t   *loop;
    CURLM       *multi;
    uv_timer_t   timer;             /* curl's single timeout */
    uv_idle_t    idle;              /* runs the pending queue from the loop */
    tg_queue_t   transfers;         /* every live tg_http_t */
    tg_queue_t   pending;           /* transfers with deferred work */
    tg_queue_t   sockets;           /* every tg__sock_t */
    tg__sock_t **byfd;              /* the tg__sock_t of each open fd */
    size_t       nbyfd;             /* slots in byfd */
    size_t       nactive;
    unsigned     nhandles;          /* open libuv handles we own */
    int          in_curl;           /* > 0 while inside a curl call */
    int          closing;
    CURL        *spare[TG_HTTP_SPARE_MAX]; /* reset easy handles */
    unsigned     nspare;

    /* h1client.c */
    tg_queue_t   h1_hosts;          /* every tg__h1host_t */
    tg_queue_t   h1_conns;          /* every open tg__h1conn_t */
    tg_queue_t   h1_xfers;          /* every live tg__h1_t */
    tg_queue_t   h1_pending;        /* tg__h1_t with deferred work */
    size_t       h1_nidle;          /* idle connections, all hosts */
    char        *h1_rbuf;           /* TG_H1_RBUF_SIZE bytes */
    /* The last URLs transfers started with, parsed (a pool's backends
     * each keep one): replaced in turn. */
    struct tg__h1_last_s *h1_last[4];
    unsigned     h1_last_next;
    /* Finished transfers kept for the next ones (with their request
     * buffers up to TG__H1_SPARE_REQ bytes): a small request's transfer
     * then allocates nothing.  Off under ASan and once the client is
     * freed. */
    tg__h1_t    *h1_spares[16];
    size_t       h1_nspares;
    unsigned     h1_spares_off:1;
};

struct tg_http_s {
    unsigned            kind;       /* TG__HTTP_CURL */
    tg_http_client_t   *client;
    CURL               *easy;
    struct curl_slist  *headers;
    tg_http_cb_t        cb;
    void               *data;
    uv_timer_t          idle;       /* no byte for idle_ms → -ETIMEDOUT */
    long                idle_ms;
    uint64_t            last_rx;    /* loop time of the last byte */
    tg_queue_t          link;       /* in client->transfers */
    tg_queue_t          pending;    /* in client->pending when queued */
    unsigned            queued:1;
    unsigned            added:1;    /* in the multi handle */
    unsigned            add:1;      /* curl_multi_add_handle deferred */
    unsigned            sent:1;     /* connected; the request went out */
    unsigned            head_done:1;
    unsigned            paused:1;   /* the caller wants no body now */
    unsigned            curl_paused:1; /* curl holds data for us */
    unsigned            resume:1;   /* curl_easy_pause(CONT) deferred */
    unsigned            cancelled:1;
    unsigned            finishing:1; /* inside on_done */
    unsigned            timed_out:1;
    char                errbuf[CURL_ERROR_SIZE];
};

/* client.c */
void tg__client_defer(tg_http_client_t *c, tg_http_t *h);
void tg__client_wake(tg_http_client_t *c);
int tg__client_close_socket(void *client, curl_socket_t s);
void tg__client_handle_closed(tg_http_client_t *c);

/* transfer.c */
void tg__http_done(tg_http_t *h, CURLcode result);
void tg__http_remove(tg_http_t *h);
void tg__http_unpause(tg_http_t *h);
void tg__http_add(tg_http_t *h);
tg_http_t *tg__curl_start(tg_http_client_t *c, const tg_http_req_t *req,
    const tg_http_cb_t *cb, void *data);
void tg__curl_pause(tg_http_t *h, int paused);
void tg__curl_cancel(tg_http_t *h);

/* h1client.c: tg__h1_start returns 1 (and *out NULL) for a URL it leaves
 * to curl (not http://, or a form it does not read). */
int tg__h1_start(tg_http_client_t *c, const tg_http_req_t *req,
    const tg_http_cb_t *cb, void *data, tg_http_t **out);
void tg__h1_pause(tg_http_t *h, int paused);
void tg__h1_cancel(tg_http_t *h);
void tg__h1_run_pending(tg_http_client_t *c);
void tg__h1_client_init(tg_http_client_t *c);
void tg__h1_client_free(tg_http_client_t *c);

#endif /* TG_BACKEND_CLIENT_INT_H */
