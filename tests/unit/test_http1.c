/*
 * HTTP/1.x response parser (engine/backend/http1.c): status, headers and
 * the three body framings, 1xx skipped, keep-alive rules, bounds and
 * malformed input, each response fed whole, split at every byte, split at
 * every pair of bytes (the chunked cases), and one byte at a time.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../../engine/backend/http1.h"

/* What a run saw, as one comparable record. */
typedef struct {
    long    status;
    char    ctype[TG_H1_CTYPE_MAX + 1];
    int     heads, dones, errors, has_ctype, reusable;
    char    body[4096];
    size_t  body_len;
    char    err[128];
} rec_t;

/* Feeds one piece; returns 1 once the response ended or failed. */
static int
feed(tg_h1_t *ps, const char *p, size_t n, rec_t *r)
{
    const char  *b;
    size_t       used, bl;
    int          ev;

    for ( ;; ) {
        ev = tg_h1_parse(ps, p, n, &used, &b, &bl);
        cr_assert_leq(used, n);
        p += used;
        n -= used;
        switch (ev) {
        case TG_H1_AGAIN:
            cr_assert_eq(n, 0, "AGAIN with %zu bytes left", n);
            return 0;
        case TG_H1_HEAD:
            cr_assert_eq(r->heads, 0);
            r->heads++;
            r->status = ps->status;
            r->has_ctype = ps->has_ctype;
            snprintf(r->ctype, sizeof(r->ctype), "%s", ps->ctype);
            break;
        case TG_H1_BODY:
            cr_assert_eq(r->heads, 1);
            cr_assert_gt(bl, 0);
            cr_assert_leq(r->body_len + bl, sizeof(r->body));
            memcpy(r->body + r->body_len, b, bl);
            r->body_len += bl;
            break;
        case TG_H1_DONE:
            r->dones++;
            r->reusable = tg_h1_reusable(ps);
            return 1;
        default:
            r->errors++;
            snprintf(r->err, sizeof(r->err), "%s", ps->err);
            return 1;
        }
    }
}

/* Feeds in up to three pieces cut at a <= b, then (eof) the close. */
static void
run_split(const char *in, size_t n, size_t a, size_t b, int eof, rec_t *r)
{
    tg_h1_t  ps = { 0 };

    memset(r, 0, sizeof(*r));
    tg_h1_init(&ps);
    if (!feed(&ps, in, a, r) && !feed(&ps, in + a, b - a, r)
        && !feed(&ps, in + b, n - b, r) && eof)
    {
        if (tg_h1_eof(&ps) == TG_H1_DONE) {
            r->dones++;
            r->reusable = tg_h1_reusable(&ps);
        } else {
            r->errors++;
            snprintf(r->err, sizeof(r->err), "%s", ps.err);
        }
    }
    tg_h1_free(&ps);
}

static void
same(const rec_t *a, const rec_t *w, size_t i, size_t j)
{
    cr_assert_eq(a->heads, w->heads, "cut %zu,%zu", i, j);
    cr_assert_eq(a->status, w->status, "cut %zu,%zu", i, j);
    cr_assert_str_eq(a->ctype, w->ctype, "cut %zu,%zu", i, j);
    cr_assert_eq(a->body_len, w->body_len, "cut %zu,%zu", i, j);
    cr_assert(memcmp(a->body, w->body, a->body_len) == 0, "cut %zu,%zu",
              i, j);
    cr_assert_eq(a->dones, w->dones, "cut %zu,%zu", i, j);
    cr_assert_eq(a->errors, w->errors, "cut %zu,%zu", i, j);
    cr_assert_eq(a->reusable, w->reusable, "cut %zu,%zu", i, j);
    cr_assert_str_eq(a->err, w->err, "cut %zu,%zu", i, j);
}

/* Whole, at every cut, at every pair of cuts (pairs), byte by byte: the
 * same result each time, which is returned in *out. */
static void
all_splits(const char *in, int eof, int pairs, rec_t *out)
{
    size_t    n = strlen(in), i, j;
    rec_t     r;
    tg_h1_t   ps = { 0 };

    run_split(in, n, n, n, eof, out);
    for (i = 0; i <= n; i++) {
        run_split(in, n, i, i, eof, &r);
        same(&r, out, i, i);
        for (j = i; pairs && j <= n; j++) {
            run_split(in, n, i, j, eof, &r);
            same(&r, out, i, j);
        }
    }
    memset(&r, 0, sizeof(r));
    tg_h1_init(&ps);
    for (i = 0; i < n && !feed(&ps, in + i, 1, &r); i++) {
    }
    if (i == n && eof) {
        if (tg_h1_eof(&ps) == TG_H1_DONE) {
            r.dones++;
            r.reusable = tg_h1_reusable(&ps);
        } else {
            r.errors++;
            snprintf(r.err, sizeof(r.err), "%s", ps.err);
        }
    }
    tg_h1_free(&ps);
    same(&r, out, n + 1, n + 1);
}

Test(http1, content_length)
{
    rec_t  r;

    all_splits("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
               "Content-Length: 7\r\n\r\n{\"a\":1}", 0, 0, &r);
    cr_assert_eq(r.status, 200);
    cr_assert_str_eq(r.ctype, "application/json");
    cr_assert_eq(r.body_len, 7);
    cr_assert_eq(r.dones, 1);
    cr_assert_eq(r.reusable, 1);
}

Test(http1, chunked_with_extensions_and_trailers)
{
    rec_t  r;

    all_splits("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
               "Content-Type: text/event-stream\r\n\r\n"
               "5\r\ndata:\r\n"
               "A;ext=1\r\n 01234567\n\r\n"
               "1 \r\nx\r\n"
               "0\r\nX-Trailer: t\r\n\r\n", 0, 1, &r);
    cr_assert_str_eq(r.ctype, "text/event-stream");
    cr_assert_eq(r.body_len, 16);
    cr_assert(memcmp(r.body, "data: 01234567\nx", 16) == 0);
    cr_assert_eq(r.dones, 1);
    cr_assert_eq(r.reusable, 1);
}

Test(http1, chunked_bare_lf_and_upper_hex)
{
    rec_t  r;

    all_splits("HTTP/1.1 200 OK\ntransfer-encoding: gzip, Chunked\n\n"
               "1F\n0123456789012345678901234567890\n0\n\n", 0, 1, &r);
    cr_assert_eq(r.body_len, 31);
    cr_assert_eq(r.dones, 1);
}

Test(http1, body_until_close_is_not_reusable)
{
    rec_t  r;

    all_splits("HTTP/1.1 200 OK\r\n\r\nuntil the end", 1, 0, &r);
    cr_assert_eq(r.dones, 1);
    cr_assert_eq(r.body_len, 13);
    cr_assert_eq(r.reusable, 0);
    cr_assert_eq(r.has_ctype, 0);
}

Test(http1, interim_responses_are_skipped)
{
    rec_t  r;

    all_splits("HTTP/1.1 100 Continue\r\n\r\n"
               "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
               "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", 0,
               0, &r);
    cr_assert_eq(r.heads, 1);
    cr_assert_eq(r.status, 404);
    cr_assert_eq(r.body_len, 2);
    cr_assert_eq(r.dones, 1);
}

Test(http1, keep_alive_rules)
{
    rec_t  r;

    all_splits("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0"
               "\r\n\r\n", 0, 0, &r);
    cr_assert_eq(r.dones, 1);
    cr_assert_eq(r.reusable, 0);
    all_splits("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx", 0, 0, &r);
    cr_assert_eq(r.reusable, 0);
    all_splits("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
               "Content-Length: 1\r\n\r\nx", 0, 0, &r);
    cr_assert_eq(r.reusable, 1);
    all_splits("HTTP/1.1 204 No Content\r\nContent-Length: 9\r\n\r\n", 0, 0,
               &r);
    cr_assert_eq(r.dones, 1);
    cr_assert_eq(r.body_len, 0);
    cr_assert_eq(r.reusable, 1);
}

Test(http1, transfer_encoding_overrides_content_length)
{
    rec_t  r;

    all_splits("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n"
               "Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 0,
               0, &r);
    cr_assert_eq(r.body_len, 2);
    cr_assert_eq(r.dones, 1);
}

Test(http1, early_close)
{
    rec_t  r;

    all_splits("", 1, 0, &r);
    cr_assert_str_eq(r.err, "empty reply from the server");
    all_splits("HTTP/1.1 200 OK\r\nContent-Le", 1, 0, &r);
    cr_assert_eq(r.errors, 1);
    cr_assert_eq(r.heads, 0);
    all_splits("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123", 1, 0,
               &r);
    cr_assert_eq(r.body_len, 4);
    cr_assert_str_eq(r.err, "the server closed the connection with 6 bytes "
                     "of the body still to come");
    all_splits("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
               "4\r\nab", 1, 1, &r);
    cr_assert_eq(r.body_len, 2);
    cr_assert_eq(r.errors, 1);
}

Test(http1, malformed)
{
    static const struct {
        const char  *in, *err;
    } bad[] = {
        { "HTTP/2 200 OK\r\n\r\n", "malformed status line" },
        { "HTTP/1.1 20 OK\r\n\r\n", "malformed status line" },
        { "HTTP/1.1 200OK\r\n\r\n", "malformed status line" },
        { "ICY 200 OK\r\n\r\n", "malformed status line" },
        { "HTTP/1.1 101 Switching Protocols\r\n\r\n",
          "unexpected 101 Switching Protocols" },
        { "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
          "malformed response header line" },
        { "HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n",
          "malformed response header name" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
          "bad Content-Length" },
        { "HTTP/1.1 200 OK\r\nContent-Length: \r\n\r\n",
          "bad Content-Length" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n"
          "\r\n", "bad Content-Length" },
        { "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
          "bad Content-Length" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
          "bad chunk size line" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1x\r\n",
          "bad chunk size line" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "fffffffffffffffffff\r\n", "chunk size too large" },
        { "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
          "1\r\nab\r\n", "no CRLF after a chunk's data" },
    };
    size_t  i;
    rec_t   r;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        all_splits(bad[i].in, 0, 0, &r);
        cr_assert_eq(r.errors, 1, "%s", bad[i].in);
        cr_assert_str_eq(r.err, bad[i].err, "%s", bad[i].in);
    }
}

Test(http1, bounds)
{
    size_t   n = TG_H1_LINE_MAX + 100, i;
    char    *in = malloc(TG_H1_HEAD_MAX + 1000);
    rec_t    r;

    cr_assert_not_null(in);
    /* One header line over the line bound. */
    i = (size_t) sprintf(in, "HTTP/1.1 200 OK\r\nX-Long: ");
    memset(in + i, 'a', n);
    strcpy(in + i + n, "\r\n\r\n");
    run_split(in, strlen(in), 100, 100, 0, &r);
    cr_assert_str_eq(r.err, "response header line over 16384 bytes");
    /* Many short lines over the block bound. */
    i = (size_t) sprintf(in, "HTTP/1.1 200 OK\r\n");
    while (i < TG_H1_HEAD_MAX + 100) {
        i += (size_t) sprintf(in + i, "X-A: 0123456789\r\n");
    }
    strcpy(in + i, "\r\n");
    run_split(in, strlen(in), 7, 7, 0, &r);
    cr_assert_str_eq(r.err, "response header block over 65536 bytes");
    cr_assert_eq(r.heads, 0);
    /* A Content-Type past TG_H1_CTYPE_MAX is cut, not refused. */
    i = (size_t) sprintf(in, "HTTP/1.1 200 OK\r\nContent-Type: ");
    memset(in + i, 'c', 300);
    strcpy(in + i + 300, "\r\nContent-Length: 0\r\n\r\n");
    run_split(in, strlen(in), 0, 0, 0, &r);
    cr_assert_eq(r.dones, 1);
    cr_assert_eq(strlen(r.ctype), TG_H1_CTYPE_MAX);
    free(in);
}

Test(http1, init_reuses_the_line_buffer_for_the_next_response)
{
    tg_h1_t      ps = { 0 };
    rec_t        r = { 0 };
    const char  *a = "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx";

    tg_h1_init(&ps);
    cr_assert(tg_h1_untouched(&ps));
    cr_assert_eq(feed(&ps, a, 10, &r), 0);
    cr_assert_not(tg_h1_untouched(&ps));
    cr_assert_eq(feed(&ps, a + 10, strlen(a) - 10, &r), 1);
    cr_assert_eq(r.dones, 1);
    tg_h1_init(&ps);
    memset(&r, 0, sizeof(r));
    cr_assert(tg_h1_untouched(&ps));
    cr_assert_eq(feed(&ps, a, 10, &r), 0);
    cr_assert_eq(feed(&ps, a + 10, strlen(a) - 10, &r), 1);
    cr_assert_eq(r.body_len, 1);
    tg_h1_free(&ps);
}
