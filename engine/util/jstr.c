/*
 * JSON string contents: unescape and escape, no allocation beyond the
 * destination buffer's growth; see jstr.h.
 */

#include <errno.h>
#include <string.h>

#include "util/jstr.h"

static int tg__jstr_hex4(const char *s, uint32_t *out);
static char *tg__jstr_utf8(char *o, uint32_t cp);

/* Bytes json_dumps escapes: '"', '\\' and the control bytes. */
static const unsigned char  tg__jstr_special[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0
};

static const char  tg__jstr_hex[] = "0123456789ABCDEF";

#define TG__JSTR_ONES   0x0101010101010101ULL
#define TG__JSTR_HIGHS  0x8080808080808080ULL


/*
 * The first byte of p[0..end) that tg__jstr_special marks, or end.  Eight
 * bytes at a time on a little-endian machine: the top bit of a byte of
 * (v - 0x01...) & ~v is set where v's byte is zero or where a borrow from
 * a lower byte that was reaches it, so with v the word less 0x20, or
 * xored with '"' or '\\', the lowest set top bit is the first byte below
 * 0x20 or equal to either; bytes of 0x80 and up are never marked.
 */
static const unsigned char *
tg__jstr_run(const unsigned char *p, const unsigned char *end)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t  x, q, b, m;

    while (end - p >= 8) {
        memcpy(&x, p, 8);
        q = x ^ (TG__JSTR_ONES * '"');
        b = x ^ (TG__JSTR_ONES * '\\');
        m = (((x - TG__JSTR_ONES * 0x20) & ~x) | ((q - TG__JSTR_ONES) & ~q)
             | ((b - TG__JSTR_ONES) & ~b)) & TG__JSTR_HIGHS;
        if (m != 0) {
            return p + (__builtin_ctzll(m) >> 3);
        }
        p += 8;
    }
#endif
    while (p < end && (*p >= 0x60 || !tg__jstr_special[*p])) {
        p++;
    }
    return p;
}


static int
tg__jstr_hex4(const char *s, uint32_t *out)
{
    uint32_t  v = 0;
    int       i, c;

    for (i = 0; i < 4; i++) {
        c = (unsigned char) s[i];
        if (c >= '0' && c <= '9') {
            c -= '0';
        } else if (c >= 'a' && c <= 'f') {
            c -= 'a' - 10;
        } else if (c >= 'A' && c <= 'F') {
            c -= 'A' - 10;
        } else {
            return -EINVAL;
        }
        v = v << 4 | (uint32_t) c;
    }
    *out = v;
    return 0;
}


/* Writes code point cp as UTF-8 at o; returns the byte after it. */
static char *
tg__jstr_utf8(char *o, uint32_t cp)
{
    if (cp < 0x80) {
        *o++ = (char) cp;
    } else if (cp < 0x800) {
        *o++ = (char) (0xC0 | cp >> 6);
        *o++ = (char) (0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (char) (0xE0 | cp >> 12);
        *o++ = (char) (0x80 | (cp >> 6 & 0x3F));
        *o++ = (char) (0x80 | (cp & 0x3F));
    } else {
        *o++ = (char) (0xF0 | cp >> 18);
        *o++ = (char) (0x80 | (cp >> 12 & 0x3F));
        *o++ = (char) (0x80 | (cp >> 6 & 0x3F));
        *o++ = (char) (0x80 | (cp & 0x3F));
    }
    return o;
}


int
tg_jstr_unescape(tg_buf_t *b, const char *s, size_t n)
{
    const char  *end = s + n, *bs;
    char        *o;
    uint32_t     cp, lo;
    int          rc;

    /* Decoded text is never longer than its escaped form: \uXXXX is six
     * bytes for at most three, a surrogate pair twelve for four. */
    rc = tg_buf_reserve(b, n);
    if (rc != 0) {
        return rc;
    }
    o = b->data + b->len;

    while (s < end) {
        bs = memchr(s, '\\', (size_t) (end - s));
        if (bs == NULL) {
            memcpy(o, s, (size_t) (end - s));
            o += end - s;
            break;
        }
        memcpy(o, s, (size_t) (bs - s));
        o += bs - s;
        s = bs + 1;
        if (s >= end) {
            goto invalid;
        }
        switch (*s++) {
        case '"':  *o++ = '"'; continue;
        case '\\': *o++ = '\\'; continue;
        case '/':  *o++ = '/'; continue;
        case 'b':  *o++ = '\b'; continue;
        case 'f':  *o++ = '\f'; continue;
        case 'n':  *o++ = '\n'; continue;
        case 'r':  *o++ = '\r'; continue;
        case 't':  *o++ = '\t'; continue;
        case 'u':  break;
        default:   goto invalid;
        }

        if (end - s < 4 || tg__jstr_hex4(s, &cp) != 0) {
            goto invalid;
        }
        s += 4;
        if (cp >= 0xDC00 && cp <= 0xDFFF) {
            goto invalid;               /* a low surrogate first */
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - s < 6 || s[0] != '\\' || s[1] != 'u'
                || tg__jstr_hex4(s + 2, &lo) != 0
                || lo < 0xDC00 || lo > 0xDFFF)
            {
                goto invalid;           /* a high one without its pair */
            }
            s += 6;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        if (cp == 0) {
            goto invalid;               /* jansson refuses NUL in text */
        }

        o = tg__jstr_utf8(o, cp);
    }

    b->len = (size_t) (o - b->data);
    return 0;

invalid:
    b->len = (size_t) (o - b->data);
    return -EINVAL;
}


int
tg_jstr_escape(tg_buf_t *b, const char *s, size_t n)
{
    const unsigned char  *p = (const unsigned char *) s, *end = p + n, *run;
    char                 *o;
    int                   rc;

    while (p < end) {
        run = p;
        p = tg__jstr_run(p, end);
        if (p > run) {
            rc = tg_buf_append(b, run, (size_t) (p - run));
            if (rc != 0) {
                return rc;
            }
        }
        if (p == end) {
            break;
        }

        rc = tg_buf_reserve(b, 6);
        if (rc != 0) {
            return rc;
        }
        o = b->data + b->len;
        *o++ = '\\';
        switch (*p) {
        case '"':  *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = tg__jstr_hex[*p >> 4];
            *o++ = tg__jstr_hex[*p & 0xF];
        }
        b->len = (size_t) (o - b->data);
        p++;
    }
    return 0;
}


int
tg_jstr_int(tg_buf_t *b, int64_t v)
{
    char      tmp[24], *t = tmp + sizeof(tmp);
    uint64_t  u = v < 0 ? (uint64_t) 0 - (uint64_t) v : (uint64_t) v;

    do {
        *--t = (char) ('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0) {
        *--t = '-';
    }
    return tg_buf_append(b, t, (size_t) (tmp + sizeof(tmp) - t));
}
