/*
 * A tiny HTTP/1.1 server on loopback for the backend client tests.  It runs
 * its own libuv loop in a thread and counts what it sees.
 *
 * Paths:
 *   /hello          200, "hello", keep-alive
 *   /echo           200, the raw request (head + body) as the body
 *   /500            500, application/json error body
 *   /close          200, Content-Length 100, 10 bytes, then closes
 *   /silent         reads the request, never answers
 *   /sse/N/MS       200 text/event-stream, chunked: "data: i\n\n" for i in
 *                   0..N-1, one every MS ms, then the last chunk
 *   /big/BYTES      200, Content-Length BYTES, written 64 KiB at a time,
 *                   each piece only after the kernel took the previous one
 *   /split          200, chunked "hello, world" with a chunk extension and
 *                   a trailer, written 3 bytes a millisecond
 *   /bye            200, "hello", keep-alive, then closes 20 ms later
 *   /drop           200, "hello", keep-alive, then closes at once
 *   /http10         HTTP/1.0 200, "old", delimited by the close
 *   /hugehead       200 with about 100 KiB of headers
 */

#ifndef TG_TEST_HTTP_SERVER_H
#define TG_TEST_HTTP_SERVER_H

#include <stdatomic.h>

typedef struct http_server_s http_server_t;

typedef struct {
    atomic_long  accepted;      /* connections accepted */
    atomic_long  closed;        /* connections the peer closed or reset */
    atomic_long  requests;      /* requests parsed */
    atomic_long  aborted;       /* closed by the peer mid-response */
    atomic_long  big_written;   /* /big bytes the kernel accepted */
    atomic_long  sse_sent;      /* /sse events written */
} http_stats_t;

http_server_t *http_server_start(void);
int http_server_port(http_server_t *s);
http_stats_t *http_server_stats(http_server_t *s);
void http_server_stop(http_server_t *s);

#endif
