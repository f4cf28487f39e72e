/*
 * thinkgate backend client: HTTP/1.1 requests to OpenAI-compatible LLM
 * servers, driven by a libuv loop.  http:// URLs run on our own HTTP/1.1
 * client (h1client.c, h1conn.c, the parser in http1.c); https:// URLs on
 * one libcurl multi handle (client.c, transfer.c), for TLS.  Both keep
 * this contract.
 *
 * One tg_http_client_t per loop; every transfer started on it shares its
 * connection pools (keep-alive, reuse of connections left by completed
 * transfers, no per-host limit on connections in use, at most
 * TG_HTTP_POOL_MAX idle ones).  A request that meets a kept-alive
 * connection the server had closed, before any byte of the response, is
 * sent again once on a fresh one.  Everything runs on the loop's thread.
 * The process must ignore SIGPIPE (the engine does): a write to a
 * connection the server closed then fails with EPIPE.
 *
 * Callback rules (libuv's "a function that takes a callback and returns an
 * error never calls the callback"):
 *   - tg_http_start, tg_http_pause and tg_http_cancel never call a callback
 *     before they return; callbacks only run from the loop.
 *   - on_head is called at most once, before any on_body.
 *   - on_done is called exactly once for a started transfer, unless it was
 *     cancelled (tg_http_cancel or tg_http_client_free): then no callback at
 *     all follows.  The tg_http_t is freed after on_done returns.
 *   - From inside any callback the caller may call tg_http_pause and
 *     tg_http_cancel on any transfer, and tg_http_start.
 *
 * An HTTP error status (4xx, 5xx) is not a transport error: it is reported
 * by on_head, the error body by on_body, and on_done gets rc 0.
 */

#ifndef TG_BACKEND_CLIENT_H
#define TG_BACKEND_CLIENT_H

#include <stddef.h>
#include <uv.h>

typedef struct tg_http_client_s tg_http_client_t;   /* one per loop */
typedef struct tg_http_s        tg_http_t;          /* one transfer */

typedef struct {
    const char *url;        /* full URL (http:// or https://); copied */
    const char *api_key;    /* NULL or bearer token: Authorization: Bearer;
                               copied */
    const char *body;       /* request body, copied by the client; NULL:
                               GET.  Sent as Content-Type: application/json */
    size_t      body_len;
    long        connect_timeout_ms; /* name lookup, TCP and TLS connect;
                                       0: curl's default (300 s) */
    long        idle_timeout_ms;    /* once connected, no byte received for
                                       this long → on_done(-ETIMEDOUT); the
                                       clock stops while the transfer is
                                       paused; 0: none */
    int         tls_verify;         /* 0 disables peer and host verification */
    const char *tls_ca;             /* CA file (PEM); NULL: curl's */
    int         stream;             /* caller expects SSE: sends
                                       Accept: text/event-stream */
} tg_http_req_t;

typedef struct {
    /* The final response header block arrived.  content_type is NULL when
     * the server sent none; it lives only during the call. */
    void (*on_head)(tg_http_t *h, long status, const char *content_type,
                    void *data);
    /* Body bytes as they arrive (chunked encoding already removed).  Not
     * called while the transfer is paused. */
    void (*on_body)(tg_http_t *h, const char *p, size_t n, void *data);
    /* The transfer ended.  rc:
     *   0              the response was received completely;
     *   -ECONNREFUSED  no connection could be made (refused, DNS failure,
     *                  connect timeout, TLS handshake failure): nothing was
     *                  sent or received, so retrying elsewhere is safe
     *                  (a kept-alive connection curl found closed and
     *                  could not open again counts too);
     *   -ETIMEDOUT     connected, but nothing arrived for idle_timeout_ms;
     *   -EIO           any other failure after the request went out (the
     *                  server closed early, malformed response, ...).
     * err is a human-readable message (NULL when rc is 0), valid during the
     * call.  h is freed after on_done returns. */
    void (*on_done)(tg_http_t *h, int rc, const char *err, void *data);
} tg_http_cb_t;

/* NULL when curl or libuv cannot be initialized. */
tg_http_client_t *tg_http_client_new(uv_loop_t *loop);

/* Cancels every transfer (no callbacks follow) and closes every connection
 * and handle.  Memory is released in libuv close callbacks, so run the loop
 * afterwards (as with uv_close) before uv_loop_close.  Must not be called
 * from inside one of this client's callbacks. */
void tg_http_client_free(tg_http_client_t *c);

/* Starts a transfer.  req and cb are copied (cb by value); data is passed
 * to every callback.  Returns NULL on immediate failure (bad arguments, out
 * of memory, curl refuses the request), in which case no callback is ever
 * called. */
tg_http_t *tg_http_start(tg_http_client_t *c, const tg_http_req_t *req,
                         const tg_http_cb_t *cb, void *data);

/* paused != 0 stops delivering body bytes and stops reading the socket, so
 * the server is slowed by TCP flow control (backpressure).  Resuming
 * delivers what curl held back from the loop, never from inside this call.
 * Idempotent. */
void tg_http_pause(tg_http_t *h, int paused);

/* Aborts the transfer now and closes its connection (never returned to the
 * pool), so the LLM server sees the client leave and stops generating.  No
 * callback for h follows; h must not be used afterwards.  Safe from inside
 * any callback, including h's own on_head and on_body (the removal then
 * happens as soon as curl's callback returns).  A no-op inside h's own
 * on_done. */
void tg_http_cancel(tg_http_t *h);

/* Number of transfers started and not yet finished or cancelled. */
size_t tg_http_client_active(const tg_http_client_t *c);

#endif /* TG_BACKEND_CLIENT_H */
