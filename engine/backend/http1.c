/*
 * HTTP/1.x response parser (http1.h).  Lines (status, headers, chunk
 * sizes, the CRLF after chunk data, trailers) are read whole: in place when
 * a line lies in one input, else gathered in ps->line up to
 * TG_H1_LINE_MAX.  Body bytes are never copied.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "http1.h"

enum {
    TG__H1_STATUS = 0,
    TG__H1_HEADER,
    TG__H1_BODY_LEN,
    TG__H1_BODY_CLOSE,
    TG__H1_CHUNK_SIZE,
    TG__H1_CHUNK_DATA,
    TG__H1_CHUNK_END,
    TG__H1_TRAILER,
    TG__H1_COMPLETE,
    TG__H1_ERROR
};

/* A chunk or body larger than this is not believed. */
#define TG__H1_SIZE_MAX  ((uint64_t) 1 << 60)

static int tg__h1_line(tg_h1_t *ps, const char *p, size_t n, size_t *used,
    const char **line, size_t *len, int in_head);
static int tg__h1_fail(tg_h1_t *ps, const char *what);
static int tg__h1_status(tg_h1_t *ps, const char *l, size_t len);
static int tg__h1_header(tg_h1_t *ps, const char *l, size_t len);
static int tg__h1_head_end(tg_h1_t *ps);
static int tg__h1_chunk_size(tg_h1_t *ps, const char *l, size_t len);
static int tg__h1_has_token(const char *v, size_t len, const char *tok,
    int last_only);
static int tg__h1_in_line(const tg_h1_t *ps);
static int tg__h1_lines(tg_h1_t *ps, const char *p, size_t n,
    size_t *used);


void
tg_h1_init(tg_h1_t *ps)
{
    char    *line = ps->line;
    size_t   cap = ps->line_cap;

    memset(ps, 0, sizeof(*ps));
    ps->line = line;
    ps->line_cap = cap;
    ps->clen = -1;
}


void
tg_h1_free(tg_h1_t *ps)
{
    free(ps->line);
    ps->line = NULL;
    ps->line_cap = 0;
    ps->line_len = 0;
}


int
tg_h1_untouched(const tg_h1_t *ps)
{
    return ps->state == TG__H1_STATUS && ps->head_bytes == 0
           && ps->line_len == 0;
}


int
tg_h1_reusable(const tg_h1_t *ps)
{
    if (ps->state != TG__H1_COMPLETE || ps->conn_close) {
        return 0;
    }
    return ps->minor >= 1 || ps->conn_keep;
}


int
tg_h1_eof(tg_h1_t *ps)
{
    switch (ps->state) {
    case TG__H1_BODY_CLOSE:
        ps->state = TG__H1_COMPLETE;
        /* fall through */
    case TG__H1_COMPLETE:
        return TG_H1_DONE;
    case TG__H1_ERROR:
        return TG_H1_ERROR;
    case TG__H1_STATUS:
    case TG__H1_HEADER:
        return tg__h1_fail(ps, tg_h1_untouched(ps)
                           ? "empty reply from the server"
                           : "the server closed the connection inside "
                             "the response header");
    case TG__H1_BODY_LEN:
        snprintf(ps->err, sizeof(ps->err), "the server closed the "
                 "connection with %llu bytes of the body still to come",
                 (unsigned long long) ps->left);
        ps->state = TG__H1_ERROR;
        return TG_H1_ERROR;
    default:
        return tg__h1_fail(ps, "the server closed the connection inside "
                           "the chunked body");
    }
}


static int
tg__h1_fail(tg_h1_t *ps, const char *what)
{
    if (ps->state != TG__H1_ERROR) {
        snprintf(ps->err, sizeof(ps->err), "%s", what);
        ps->state = TG__H1_ERROR;
    }
    return TG_H1_ERROR;
}


int
tg_h1_parse(tg_h1_t *ps, const char *p, size_t n, size_t *used,
    const char **body, size_t *body_len)
{
    size_t  k;
    int     rc;

    *used = 0;
    *body = NULL;
    *body_len = 0;

    for ( ;; ) {
        switch (ps->state) {
        case TG__H1_BODY_LEN:
        case TG__H1_CHUNK_DATA:
        case TG__H1_BODY_CLOSE:
            if (*used == n) {
                return TG_H1_AGAIN;
            }
            k = n - *used;
            if (ps->state != TG__H1_BODY_CLOSE) {
                k = (uint64_t) k < ps->left ? k : (size_t) ps->left;
                ps->left -= k;
                if (ps->left == 0) {
                    ps->state = ps->state == TG__H1_BODY_LEN
                                ? TG__H1_COMPLETE : TG__H1_CHUNK_END;
                }
            }
            *body = p + *used;
            *body_len = k;
            *used += k;
            return TG_H1_BODY;
        case TG__H1_COMPLETE:
            return TG_H1_DONE;
        case TG__H1_ERROR:
            return TG_H1_ERROR;
        default:
            rc = tg__h1_lines(ps, p, n, used);
            if (rc != TG_H1_AGAIN) {
                return rc;
            }
            if (*used == n && tg__h1_in_line(ps)) {
                return TG_H1_AGAIN;
            }
        }
    }
}


static int
tg__h1_in_line(const tg_h1_t *ps)
{
    return ps->state == TG__H1_STATUS || ps->state == TG__H1_HEADER
           || ps->state == TG__H1_CHUNK_SIZE || ps->state == TG__H1_CHUNK_END
           || ps->state == TG__H1_TRAILER;
}


/* The line-read states, from p + *used, until one gives an event, the
 * state leaves them or the input ends. */
static int
tg__h1_lines(tg_h1_t *ps, const char *p, size_t n, size_t *used)
{
    const char  *l;
    size_t       len, k;
    int          rc, st;

    while (*used < n) {
        st = ps->state;
        if (!tg__h1_in_line(ps)) {
            return TG_H1_AGAIN;     /* tg_h1_parse goes on */
        }
        rc = tg__h1_line(ps, p + *used, n - *used, &k, &l, &len,
                         st == TG__H1_STATUS || st == TG__H1_HEADER
                         || st == TG__H1_TRAILER);
        *used += k;
        if (rc <= 0) {
            return rc < 0 ? TG_H1_ERROR : TG_H1_AGAIN;
        }
        switch (st) {
        case TG__H1_STATUS:
            rc = tg__h1_status(ps, l, len);
            break;
        case TG__H1_HEADER:
            rc = len == 0 ? tg__h1_head_end(ps) : tg__h1_header(ps, l, len);
            break;
        case TG__H1_CHUNK_SIZE:
            rc = tg__h1_chunk_size(ps, l, len);
            break;
        case TG__H1_CHUNK_END:
            if (len != 0) {
                return tg__h1_fail(ps, "no CRLF after a chunk's data");
            }
            ps->state = TG__H1_CHUNK_SIZE;
            rc = TG_H1_AGAIN;
            break;
        default:    /* TG__H1_TRAILER: trailers are read and ignored */
            if (len == 0) {
                ps->state = TG__H1_COMPLETE;
            }
            rc = TG_H1_AGAIN;
            break;
        }
        if (rc != TG_H1_AGAIN) {
            return rc;
        }
    }
    return TG_H1_AGAIN;
}


/* 1: a whole line in *line (without CR LF), 0: all input kept for later,
 * -1: over a bound.  *used: the input bytes taken either way. */
static int
tg__h1_line(tg_h1_t *ps, const char *p, size_t n, size_t *used,
    const char **line, size_t *len, int in_head)
{
    const char  *nl = memchr(p, '\n', n);
    size_t       k = nl != NULL ? (size_t) (nl - p) + 1 : n;
    char        *np;

    if (in_head && ps->head_bytes + k > TG_H1_HEAD_MAX) {
        *used = 0;
        (void) tg__h1_fail(ps, "response header block over 65536 bytes");
        return -1;
    }
    if (ps->line_len + k > TG_H1_LINE_MAX) {
        *used = 0;
        (void) tg__h1_fail(ps, in_head ? "response header line over "
                           "16384 bytes" : "chunk size line over 16384 "
                           "bytes");
        return -1;
    }
    ps->head_bytes += in_head ? k : 0;
    *used = k;

    if (nl != NULL && ps->line_len == 0) {
        *line = p;
        *len = k - 1;
    } else {
        if (ps->line_len + k > ps->line_cap) {
            np = realloc(ps->line, TG_H1_LINE_MAX);
            if (np == NULL) {
                (void) tg__h1_fail(ps, "out of memory");
                return -1;
            }
            ps->line = np;
            ps->line_cap = TG_H1_LINE_MAX;
        }
        memcpy(ps->line + ps->line_len, p, k);
        ps->line_len += k;
        if (nl == NULL) {
            return 0;
        }
        *line = ps->line;
        *len = ps->line_len - 1;
        /* The buffer's bytes stay valid until the next line is read. */
        ps->line_len = 0;
    }
    if (*len > 0 && (*line)[*len - 1] == '\r') {
        (*len)--;
    }
    return 1;
}


static int
tg__h1_status(tg_h1_t *ps, const char *l, size_t len)
{
    long  st;

    /* HTTP/1.x SP 3DIGIT [SP reason] */
    if (len < 12 || memcmp(l, "HTTP/1.", 7) != 0
        || l[7] < '0' || l[7] > '9' || l[8] != ' '
        || l[9] < '1' || l[9] > '9' || l[10] < '0' || l[10] > '9'
        || l[11] < '0' || l[11] > '9' || (len > 12 && l[12] != ' '))
    {
        return tg__h1_fail(ps, "malformed status line");
    }
    st = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
    if (st == 101) {
        return tg__h1_fail(ps, "unexpected 101 Switching Protocols");
    }
    ps->minor = l[7] - '0';
    ps->status = st;
    ps->state = TG__H1_HEADER;
    return TG_H1_AGAIN;
}


static int
tg__h1_header(tg_h1_t *ps, const char *l, size_t len)
{
    const char  *colon, *v, *e;
    size_t       nlen, vlen, i;
    uint64_t     cl = 0;

    if (l[0] == ' ' || l[0] == '\t') {
        /* obsolete line folding: a continuation, ignored */
        return TG_H1_AGAIN;
    }
    colon = memchr(l, ':', len);
    if (colon == NULL || colon == l) {
        return tg__h1_fail(ps, "malformed response header line");
    }
    nlen = (size_t) (colon - l);
    for (i = 0; i < nlen; i++) {
        if ((unsigned char) l[i] <= ' ' || (unsigned char) l[i] >= 0x7f) {
            return tg__h1_fail(ps, "malformed response header name");
        }
    }
    if (ps->status < 200) {
        return TG_H1_AGAIN;     /* a 1xx block: nothing in it matters */
    }
    v = colon + 1;
    e = l + len;
    while (v < e && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    vlen = (size_t) (e - v);

#define TG__H1_IS(name)                                                       \
    (nlen == sizeof(name) - 1 && strncasecmp(l, name, nlen) == 0)

    if (TG__H1_IS("Content-Length")) {
        for (i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9' || cl > TG__H1_SIZE_MAX) {
                return tg__h1_fail(ps, "bad Content-Length");
            }
            cl = cl * 10 + (uint64_t) (v[i] - '0');
        }
        if (vlen == 0 || cl > TG__H1_SIZE_MAX
            || (ps->clen >= 0 && (uint64_t) ps->clen != cl))
        {
            return tg__h1_fail(ps, "bad Content-Length");
        }
        ps->clen = (int64_t) cl;
    } else if (TG__H1_IS("Transfer-Encoding")) {
        ps->has_te = 1;
        ps->chunked = tg__h1_has_token(v, vlen, "chunked", 1);
    } else if (TG__H1_IS("Connection")) {
        ps->conn_close |= tg__h1_has_token(v, vlen, "close", 0);
        ps->conn_keep |= tg__h1_has_token(v, vlen, "keep-alive", 0);
    } else if (TG__H1_IS("Content-Type")) {
        vlen = vlen < TG_H1_CTYPE_MAX ? vlen : TG_H1_CTYPE_MAX;
        memcpy(ps->ctype, v, vlen);
        ps->ctype[vlen] = '\0';
        ps->has_ctype = 1;
    }
#undef TG__H1_IS
    return TG_H1_AGAIN;
}


/* Whether the comma-separated list v holds tok (case-insensitive); with
 * last_only, whether tok is its last element. */
static int
tg__h1_has_token(const char *v, size_t len, const char *tok, int last_only)
{
    const char  *e = v + len, *s, *t;
    size_t       tlen = strlen(tok);
    int          found = 0;

    while (v < e) {
        s = memchr(v, ',', (size_t) (e - v));
        s = s != NULL ? s : e;
        t = s;
        while (v < t && (*v == ' ' || *v == '\t')) {
            v++;
        }
        while (t > v && (t[-1] == ' ' || t[-1] == '\t')) {
            t--;
        }
        found = (size_t) (t - v) == tlen && strncasecmp(v, tok, tlen) == 0
                ? 1 : (last_only ? 0 : found);
        v = s < e ? s + 1 : e;
    }
    return found;
}


static int
tg__h1_head_end(tg_h1_t *ps)
{
    if (ps->status < 200) {
        /* An interim response: the final one follows. */
        ps->state = TG__H1_STATUS;
        ps->head_bytes = 0;
        return TG_H1_AGAIN;
    }
    if (ps->status == 204 || ps->status == 304) {
        ps->state = TG__H1_COMPLETE;
    } else if (ps->has_te) {
        /* RFC 9112 6.3: Transfer-Encoding overrides Content-Length; a
         * coding other than chunked last is read until the close. */
        ps->clen = -1;
        if (ps->chunked) {
            ps->state = TG__H1_CHUNK_SIZE;
        } else {
            ps->state = TG__H1_BODY_CLOSE;
            ps->conn_close = 1;
        }
    } else if (ps->clen >= 0) {
        ps->left = (uint64_t) ps->clen;
        ps->state = ps->left > 0 ? TG__H1_BODY_LEN : TG__H1_COMPLETE;
    } else {
        ps->state = TG__H1_BODY_CLOSE;
        ps->conn_close = 1;
    }
    return TG_H1_HEAD;
}


static int
tg__h1_chunk_size(tg_h1_t *ps, const char *l, size_t len)
{
    uint64_t  sz = 0;
    size_t    i;
    int       d;

    for (i = 0; i < len; i++) {
        if (l[i] >= '0' && l[i] <= '9') {
            d = l[i] - '0';
        } else if ((l[i] | 0x20) >= 'a' && (l[i] | 0x20) <= 'f') {
            d = (l[i] | 0x20) - 'a' + 10;
        } else {
            break;
        }
        if (sz > TG__H1_SIZE_MAX) {
            return tg__h1_fail(ps, "chunk size too large");
        }
        sz = sz * 16 + (uint64_t) d;
    }
    if (i == 0) {
        return tg__h1_fail(ps, "bad chunk size line");
    }
    while (i < len && (l[i] == ' ' || l[i] == '\t')) {
        i++;
    }
    if (i < len && l[i] != ';') {
        return tg__h1_fail(ps, "bad chunk size line");
    }
    if (sz > TG__H1_SIZE_MAX) {
        return tg__h1_fail(ps, "chunk size too large");
    }
    if (sz == 0) {
        ps->state = TG__H1_TRAILER;
        ps->head_bytes = 0;
    } else {
        ps->left = sz;
        ps->state = TG__H1_CHUNK_DATA;
    }
    return TG_H1_AGAIN;
}
