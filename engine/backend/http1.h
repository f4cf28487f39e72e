/*
 * An HTTP/1.x response parser: pure (no I/O, no libuv), fed bytes as they
 * arrive, split anywhere.  Used by the built-in client for http:// backends
 * (h1client.c); unit-tested in tests/unit/test_http1.c and fuzzed by
 * tests/fuzz/fuzz_http1.c.
 *
 * It reads a status line and headers (1xx blocks are skipped), then a body
 * delimited by Content-Length, by chunked transfer coding (the coding is
 * removed) or by the connection's close.  The caller drives it as an
 * iterator: each tg_h1_parse call consumes some input (*used bytes) and
 * reports one event:
 *   TG_H1_AGAIN  all input consumed, nothing to report: feed more;
 *   TG_H1_HEAD   the final header block ended: status, ctype and the
 *                reuse flags are set;
 *   TG_H1_BODY   *body, *body_len point at body bytes inside the input;
 *   TG_H1_DONE   the response ended (*used counts the bytes that ended
 *                it; what follows is not part of it);
 *   TG_H1_ERROR  malformed or over a bound: err says what.
 * Input the caller has not handed over yet is never looked at, so a caller
 * may stop after any event and continue later with the rest.
 */

#ifndef TG_BACKEND_HTTP1_H
#define TG_BACKEND_HTTP1_H

#include <stddef.h>
#include <stdint.h>

/* One line of the header block or a chunk-size line. */
#define TG_H1_LINE_MAX   16384
/* The whole header block (status line and headers), and the trailers. */
#define TG_H1_HEAD_MAX   65536
/* Content-Type is kept up to this many bytes; a longer one is cut. */
#define TG_H1_CTYPE_MAX  255

enum {
    TG_H1_AGAIN = 0,
    TG_H1_HEAD,
    TG_H1_BODY,
    TG_H1_DONE,
    TG_H1_ERROR
};

typedef struct {
    int        state;
    int        minor;           /* HTTP/1.minor of the final response */
    long       status;
    int64_t    clen;            /* Content-Length, -1 when none */
    uint64_t   left;            /* body or chunk bytes still to come */
    size_t     head_bytes;      /* of the current header block */
    unsigned   chunked:1;
    unsigned   has_te:1;        /* a Transfer-Encoding header came */
    unsigned   conn_close:1;    /* Connection: close */
    unsigned   conn_keep:1;     /* Connection: keep-alive */
    unsigned   has_ctype:1;
    char       ctype[TG_H1_CTYPE_MAX + 1];
    char      *line;            /* a line split across inputs */
    size_t     line_len, line_cap;
    char       err[128];
} tg_h1_t;

/* Ready for a new response; keeps the line buffer of a previous one. */
void tg_h1_init(tg_h1_t *ps);
void tg_h1_free(tg_h1_t *ps);

int tg_h1_parse(tg_h1_t *ps, const char *p, size_t n, size_t *used,
    const char **body, size_t *body_len);

/* The connection closed: TG_H1_DONE when the body was delimited by the
 * close (or the response had already ended), TG_H1_ERROR otherwise. */
int tg_h1_eof(tg_h1_t *ps);

/* After TG_H1_DONE: the server lets the connection carry another
 * request (HTTP/1.1 without Connection: close, HTTP/1.0 with
 * keep-alive, and a body not delimited by the close). */
int tg_h1_reusable(const tg_h1_t *ps);

/* No byte of a response has been read since tg_h1_init. */
int tg_h1_untouched(const tg_h1_t *ps);

#endif /* TG_BACKEND_HTTP1_H */
