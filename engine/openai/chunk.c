/*
 * The chunk scanner: one pass over an SSE event's JSON, validating it as
 * jansson would and noting where the fields the host reads are; see
 * chunk.h.  Nothing is allocated and nothing is copied.
 */

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "openai/chunk.h"

typedef struct {
    const char     *p;
    const char     *end;
    int             whole;      /* a whole completion: "message", and
                                   the first choice whatever its index */
} tg_jcur_t;

/* 1 for the bytes a string holds as they are: printable ASCII but '"'
 * and '\\'. */
static const unsigned char  tg__js_plain[256] = {
    [0x20 ... 0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7F] = 1,
};

#define TG__JS_ONES   0x0101010101010101ULL
#define TG__JS_HIGHS  0x8080808080808080ULL

/*
 * The bytes of x that are not tg__js_plain, as top bits: 0x80 and up,
 * below 0x20, '"' or '\\'.  With every byte below 0x80, a byte's top bit
 * after subtracting 0x20 from each is set exactly when it was below 0x20,
 * or when a borrow came from a lower byte that was; the same for the
 * bytes equal to '"' and '\\', made zero by the xor, and 1 subtracted.
 * So the mask is zero exactly when every byte is plain, and its lowest
 * set bit (a borrow only goes up) is the first byte that is not, where
 * memory order is the number's (little-endian; tg__js_first).
 */
static inline uint64_t
tg__js_special8(uint64_t x)
{
    uint64_t  q = x ^ (TG__JS_ONES * '"');
    uint64_t  b = x ^ (TG__JS_ONES * '\\');

    return ((x - TG__JS_ONES * 0x20) | (q - TG__JS_ONES)
            | (b - TG__JS_ONES) | x) & TG__JS_HIGHS;
}

/* How many bytes of a word with mask m come before its first flagged
 * one; 0 where the byte order does not say (the byte loop finds it). */
static inline size_t
tg__js_first(uint64_t m)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (size_t) __builtin_ctzll(m) >> 3;
#else
    (void) m;
    return 0;
#endif
}

static int tg__chunk_scan(const char *p, size_t n, int whole,
    tg_chunk_t *ck);
static inline int tg__js_value(tg_jcur_t *c, tg_jval_t *v, int depth);
static int tg__js_value_any(tg_jcur_t *c, tg_jval_t *v, int depth);
static int tg__js_skip(tg_jcur_t *c, int depth);
static inline int tg__js_string(tg_jcur_t *c, tg_jval_t *v);
static int tg__js_string_slow(tg_jcur_t *c, tg_jval_t *v);
static int tg__js_number(tg_jcur_t *c, tg_jval_t *v);
static int tg__js_key(tg_jcur_t *c, tg_jval_t *k);
static int tg__js_usage(tg_jcur_t *c, tg_chunk_t *ck, int depth);
static int tg__js_choices(tg_jcur_t *c, tg_chunk_t *ck, int depth);
static int tg__js_choice(tg_jcur_t *c, tg_chunk_t *ck, int depth,
    int *chosen);
static int tg__js_delta(tg_jcur_t *c, tg_chunk_t *ck, int depth);

#define TG_JS_KEY(k, lit) \
    ((k)->n == sizeof(lit) - 1 && memcmp((k)->p, lit, sizeof(lit) - 1) == 0)


static inline void
tg__js_ws(tg_jcur_t *c)
{
    /* Most calls find no space at all: one comparison says so. */
    while (c->p < c->end && (unsigned char) *c->p <= ' '
           && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r'
               || *c->p == '\t'))
    {
        c->p++;
    }
}


/* Four hex digits at p, or -1. */
static long
tg__js_hex4(const char *p)
{
    long  v = 0;
    int   i, h;

    for (i = 0; i < 4; i++) {
        h = (unsigned char) p[i];
        if (h >= '0' && h <= '9') {
            h -= '0';
        } else if ((h | 0x20) >= 'a' && (h | 0x20) <= 'f') {
            h = (h | 0x20) - 'a' + 10;
        } else {
            return -1;
        }
        v = v << 4 | h;
    }
    return v;
}


/* One UTF-8 sequence starting at a byte >= 0x80, checked as jansson's
 * utf8_check_first/utf8_check_full do: no overlong forms, no encoded
 * surrogates, nothing past U+10FFFF.  Its length, or 0. */
static size_t
tg__js_utf8(const unsigned char *p, const unsigned char *end)
{
    unsigned  u = p[0], cp, i;
    size_t    n;

    if (u >= 0xC2 && u <= 0xDF) {
        n = 2;
        cp = u & 0x1F;
    } else if (u >= 0xE0 && u <= 0xEF) {
        n = 3;
        cp = u & 0x0F;
    } else if (u >= 0xF0 && u <= 0xF4) {
        n = 4;
        cp = u & 0x07;
    } else {
        return 0;
    }
    if ((size_t) (end - p) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        cp = cp << 6 | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && cp < 0x10000)
        || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
    {
        return 0;
    }
    return n;
}


/*
 * A string at c->p (its opening quote).  Most strings are plain ASCII
 * that ends well before the text does: eight bytes at a time up to the
 * first byte that is not plain, and when that is the closing quote the
 * string is read, inline, with none of the slow path's work (callgrind:
 * its register saves alone were a fifth of the scanner's cost).  Anything
 * else (an escape, UTF-8, a control byte, the text's last 8 bytes) goes
 * to tg__js_string_slow, which reads the string again from its start.
 */
static inline int
tg__js_string(tg_jcur_t *c, tg_jval_t *v)
{
    const unsigned char  *p = (const unsigned char *) c->p + 1;
    const unsigned char  *end = (const unsigned char *) c->end;
    uint64_t              x;

    while (end - p >= 8) {
        memcpy(&x, p, 8);
        x = tg__js_special8(x);
        if (x == 0) {
            p += 8;
            continue;
        }
        p += tg__js_first(x);
        if (*p != '"') {
            break;
        }
        v->type = TG_JV_STRING;
        v->esc = 0;
        v->p = c->p + 1;
        v->n = (size_t) ((const char *) p - v->p);
        c->p = (const char *) p + 1;
        return 0;
    }
    return tg__js_string_slow(c, v);
}


static int
tg__js_string_slow(tg_jcur_t *c, tg_jval_t *v)
{
    const unsigned char  *p = (const unsigned char *) c->p + 1;
    const unsigned char  *end = (const unsigned char *) c->end;
    long                  cp, lo;
    size_t                k;

    v->type = TG_JV_STRING;
    v->esc = 0;
    v->p = (const char *) p;

    for ( ;; ) {
        /* Plain ASCII: the common case, eight bytes at a time, then one
         * table lookup per byte up to the one that is not. */
        while (end - p >= 8) {
            uint64_t  x;

            memcpy(&x, p, 8);
            x = tg__js_special8(x);
            if (x != 0) {
                p += tg__js_first(x);
                break;
            }
            p += 8;
        }
        while (p < end && tg__js_plain[*p]) {
            p++;
        }
        if (p >= end || *p < 0x20) {
            return -EINVAL;
        }
        if (*p == '"') {
            break;
        }
        if (*p >= 0x80) {
            k = tg__js_utf8(p, end);
            if (k == 0) {
                return -EINVAL;
            }
            p += k;
            continue;
        }

        /* A backslash. */
        v->esc = 1;
        if (end - p < 2) {
            return -EINVAL;
        }
        if (strchr("\"\\/bfnrt", p[1]) != NULL && p[1] != '\0') {
            p += 2;
            continue;
        }
        if (p[1] != 'u' || end - p < 6 || (cp = tg__js_hex4(
                                               (const char *) p + 2)) < 0)
        {
            return -EINVAL;
        }
        p += 6;
        /* jansson refuses \u0000 and surrogates that are not a pair. */
        if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
            return -EINVAL;
        }
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (end - p < 6 || p[0] != '\\' || p[1] != 'u'
                || (lo = tg__js_hex4((const char *) p + 2)) < 0xDC00
                || lo > 0xDFFF)
            {
                return -EINVAL;
            }
            p += 6;
        }
    }

    v->n = (size_t) ((const char *) p - v->p);
    c->p = (const char *) p + 1;
    return 0;
}


/* A JSON number.  Integers past 18 digits and reals that might overflow
 * a double are refused (jansson fails on those; the caller lets it). */
static int
tg__js_number(tg_jcur_t *c, tg_jval_t *v)
{
    const char  *p = c->p, *end = c->end, *d0;
    int64_t      iv = 0;
    long         ex = 0;
    int          neg = 0, real = 0, exneg = 0, idigits, exdigits = 0;

    v->p = p;
    if (p < end && *p == '-') {
        neg = 1;
        p++;
    }
    d0 = p;
    if (p < end && *p == '0') {
        p++;
    } else if (p < end && *p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - d0 < 18) {
                iv = iv * 10 + (*p - '0');
            }
            p++;
        }
    } else {
        return -EINVAL;
    }
    idigits = (int) (p - d0);

    if (p < end && *p == '.') {
        real = 1;
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            return -EINVAL;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            p++;
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            exneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9') {
            return -EINVAL;
        }
        while (p < end && *p >= '0' && *p <= '9') {
            if (++exdigits > 5) {
                return -EINVAL;
            }
            ex = ex * 10 + (*p - '0');
            p++;
        }
    }

    if (real) {
        if (!exneg && idigits + ex > 300) {
            return -EINVAL;
        }
        v->type = TG_JV_OTHER;
    } else {
        if (idigits > 18) {
            return -EINVAL;
        }
        v->type = TG_JV_INT;
        v->i = neg ? -iv : iv;
    }
    v->n = (size_t) (p - v->p);
    c->p = p;
    return 0;
}


static int
tg__js_literal(tg_jcur_t *c, tg_jval_t *v, const char *lit, size_t n,
    int type)
{
    if ((size_t) (c->end - c->p) < n || memcmp(c->p, lit, n) != 0) {
        return -EINVAL;
    }
    v->type = (uint8_t) type;
    v->p = c->p;
    v->n = n;
    c->p += n;
    return 0;
}


/* Any value; objects and arrays are validated and skipped. */
/* A value at c->p: a string inline (most values), else any. */
static inline int
tg__js_value(tg_jcur_t *c, tg_jval_t *v, int depth)
{
    if (c->p < c->end && *c->p == '"') {
        v->object = 0;
        return tg__js_string(c, v);
    }
    return tg__js_value_any(c, v, depth);
}


static int
tg__js_value_any(tg_jcur_t *c, tg_jval_t *v, int depth)
{
    const char  *start = c->p;
    int          rc;

    if (c->p >= c->end) {
        return -EINVAL;
    }
    v->object = 0;
    switch (*c->p) {
    case '"':
        return tg__js_string(c, v);
    case 't':
        return tg__js_literal(c, v, "true", 4, TG_JV_OTHER);
    case 'f':
        return tg__js_literal(c, v, "false", 5, TG_JV_OTHER);
    case 'n':
        return tg__js_literal(c, v, "null", 4, TG_JV_NULL);
    case '{':
    case '[':
        rc = tg__js_skip(c, depth);
        if (rc != 0) {
            return rc;
        }
        v->type = TG_JV_OTHER;
        v->object = *start == '{';
        v->p = start;
        v->n = (size_t) (c->p - start);
        return 0;
    default:
        return tg__js_number(c, v);
    }
}


/* Skips the object or array at c->p. */
static int
tg__js_skip(tg_jcur_t *c, int depth)
{
    tg_jval_t  k, v;
    char       close = *c->p == '{' ? '}' : ']';
    int        obj = close == '}';

    if (depth >= TG_CHUNK_MAX_DEPTH) {
        return -EINVAL;
    }
    c->p++;
    tg__js_ws(c);
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    for ( ;; ) {
        if (obj) {
            if (c->p >= c->end || *c->p != '"' || tg__js_string(c, &k) != 0)
            {
                return -EINVAL;
            }
            tg__js_ws(c);
            if (c->p >= c->end || *c->p != ':') {
                return -EINVAL;
            }
            c->p++;
            tg__js_ws(c);
        }
        if (tg__js_value(c, &v, depth + 1) != 0) {
            return -EINVAL;
        }
        tg__js_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            tg__js_ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == close) {
            c->p++;
            return 0;
        }
        return -EINVAL;
    }
}


/* The next key of an object, and the colon after it.  Keys with escapes
 * are refused: comparing them would need unescaping, and backends never
 * send them. */
static int
tg__js_key(tg_jcur_t *c, tg_jval_t *k)
{
    if (c->p >= c->end || *c->p != '"' || tg__js_string(c, k) != 0
        || k->esc)
    {
        return -EINVAL;
    }
    tg__js_ws(c);
    if (c->p >= c->end || *c->p != ':') {
        return -EINVAL;
    }
    c->p++;
    tg__js_ws(c);
    return 0;
}


/* After a member: 1 when the object goes on, 0 at its end. */
static int
tg__js_next(tg_jcur_t *c, char close)
{
    tg__js_ws(c);
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        tg__js_ws(c);
        return 1;
    }
    if (c->p < c->end && *c->p == close) {
        c->p++;
        return 0;
    }
    return -EINVAL;
}


/* After the top-level object's members (on: what tg__js_next said last):
 * 0 when it closed and nothing but space follows, as jansson reads it. */
static int
tg__js_end(tg_jcur_t *c, int on)
{
    if (on != 0) {
        return -EINVAL;
    }
    tg__js_ws(c);
    return c->p == c->end ? 0 : -EINVAL;
}


/* An object's members one by one: on is 1 while there is a member to
 * read, after the opening brace (and an empty object) is dealt with. */
static int
tg__js_open(tg_jcur_t *c, int depth)
{
    if (depth >= TG_CHUNK_MAX_DEPTH) {
        return -EINVAL;
    }
    c->p++;
    tg__js_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return 0;
    }
    return 1;
}


/* Reads a member's value into v unless a key seen before (bit in *seen)
 * makes the object ambiguous. */
static int
tg__js_field(tg_jcur_t *c, tg_jval_t *v, unsigned *seen, unsigned bit,
    int depth)
{
    if (*seen & bit) {
        return -EINVAL;
    }
    *seen |= bit;
    return tg__js_value(c, v, depth);
}


static int
tg__js_delta(tg_jcur_t *c, tg_chunk_t *ck, int depth)
{
    tg_jval_t  k, v;
    unsigned   seen = 0;
    int        on, rc;

    for (on = tg__js_open(c, depth); on == 1; on = tg__js_next(c, '}')) {
        if (tg__js_key(c, &k) != 0) {
            return -EINVAL;
        }
        if (TG_JS_KEY(&k, "reasoning_content")) {
            rc = tg__js_field(c, &ck->reasoning_content, &seen, 1, depth + 1);
        } else if (TG_JS_KEY(&k, "reasoning")) {
            rc = tg__js_field(c, &ck->reasoning, &seen, 2, depth + 1);
        } else if (TG_JS_KEY(&k, "content")) {
            rc = tg__js_field(c, &ck->content, &seen, 4, depth + 1);
        } else {
            rc = tg__js_value(c, &v, depth + 1);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return on;
}


/* One element of "choices": *chosen set when it is the one the host
 * reads (index 0, or no index), its fields left in ck; otherwise they are
 * cleared again. */
static int
tg__js_choice(tg_jcur_t *c, tg_chunk_t *ck, int depth, int *chosen)
{
    tg_jval_t  k, v, index = { 0 };
    unsigned   seen = 0;
    int        on, rc;

    if (c->p >= c->end || *c->p != '{') {
        return -EINVAL;
    }
    for (on = tg__js_open(c, depth); on == 1; on = tg__js_next(c, '}')) {
        if (tg__js_key(c, &k) != 0) {
            return -EINVAL;
        }
        if (TG_JS_KEY(&k, "index")) {
            rc = tg__js_field(c, &index, &seen, 1, depth + 1);
        } else if (c->whole ? TG_JS_KEY(&k, "message")
                            : TG_JS_KEY(&k, "delta"))
        {
            if (seen & 2) {
                return -EINVAL;
            }
            seen |= 2;
            ck->has_message = (unsigned) c->whole;
            if (c->p < c->end && *c->p == '{') {
                rc = tg__js_delta(c, ck, depth + 1);
            } else {
                rc = tg__js_value(c, &v, depth + 1);
            }
        } else if (TG_JS_KEY(&k, "text")) {
            rc = tg__js_field(c, &ck->text, &seen, 4, depth + 1);
        } else if (TG_JS_KEY(&k, "finish_reason")) {
            rc = tg__js_field(c, &ck->finish_reason, &seen, 8, depth + 1);
        } else if (TG_JS_KEY(&k, "logprobs")) {
            rc = tg__js_field(c, &ck->logprobs, &seen, 16, depth + 1);
        } else {
            rc = tg__js_value(c, &v, depth + 1);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (on != 0) {
        return -EINVAL;
    }

    /* A whole completion is read from its first choice, as
     * json_array_get(choices, 0) reads it. */
    if (c->whole) {
        *chosen = 1;
        return 0;
    }
    /* jansson's reading takes an index that is not an integer as 0;
     * such a chunk goes that way rather than guessing here. */
    if (index.type != TG_JV_ABSENT && index.type != TG_JV_INT) {
        return -EINVAL;
    }
    *chosen = index.type == TG_JV_ABSENT || index.i == 0;
    if (!*chosen) {
        ck->has_message = 0;
        memset(&ck->reasoning_content, 0, sizeof(tg_jval_t));
        memset(&ck->reasoning, 0, sizeof(tg_jval_t));
        memset(&ck->content, 0, sizeof(tg_jval_t));
        memset(&ck->text, 0, sizeof(tg_jval_t));
        memset(&ck->finish_reason, 0, sizeof(tg_jval_t));
        memset(&ck->logprobs, 0, sizeof(tg_jval_t));
    }
    return 0;
}


static int
tg__js_choices(tg_jcur_t *c, tg_chunk_t *ck, int depth)
{
    tg_jval_t  v;
    int        chosen = 0, rc;

    if (depth >= TG_CHUNK_MAX_DEPTH) {
        return -EINVAL;
    }
    c->p++;
    tg__js_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return 0;
    }
    for ( ;; ) {
        if (ck->has_choice) {
            rc = tg__js_value(c, &v, depth + 1);
        } else {
            rc = tg__js_choice(c, ck, depth + 1, &chosen);
            ck->has_choice = !!chosen;
        }
        if (rc != 0) {
            return rc;
        }
        rc = tg__js_next(c, ']');
        if (rc <= 0) {
            return rc;
        }
    }
}


static int
tg__js_usage(tg_jcur_t *c, tg_chunk_t *ck, int depth)
{
    tg_jval_t    k, v;
    const char  *start = c->p;
    unsigned     seen = 0;
    int          on, rc;

    for (on = tg__js_open(c, depth); on == 1; on = tg__js_next(c, '}')) {
        if (tg__js_key(c, &k) != 0) {
            return -EINVAL;
        }
        if (TG_JS_KEY(&k, "completion_tokens")) {
            rc = tg__js_field(c, &ck->completion_tokens, &seen, 1,
                              depth + 1);
        } else if (TG_JS_KEY(&k, "prompt_tokens")) {
            rc = tg__js_field(c, &ck->prompt_tokens, &seen, 2, depth + 1);
        } else if (TG_JS_KEY(&k, "total_tokens")) {
            rc = tg__js_field(c, &ck->total_tokens, &seen, 4, depth + 1);
        } else {
            rc = tg__js_value(c, &v, depth + 1);
        }
        if (rc != 0) {
            return rc;
        }
    }
    if (on != 0) {
        return -EINVAL;
    }
    ck->usage.type = TG_JV_OTHER;
    ck->usage.object = 1;
    ck->usage.p = start;
    ck->usage.n = (size_t) (c->p - start);
    return 0;
}


int
tg_chunk_scan(const char *p, size_t n, tg_chunk_t *ck)
{
    return tg__chunk_scan(p, n, 0, ck);
}


int
tg_chunk_scan_whole(const char *p, size_t n, tg_chunk_t *ck)
{
    return tg__chunk_scan(p, n, 1, ck);
}


static int
tg__chunk_scan(const char *p, size_t n, int whole, tg_chunk_t *ck)
{
    tg_jcur_t  c = { p, p + n, whole };
    tg_jval_t  k, v;
    unsigned   seen = 0;
    int        on, rc;

    memset(ck, 0, sizeof(*ck));
    tg__js_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        return -EINVAL;
    }
    for (on = tg__js_open(&c, 0); on == 1; on = tg__js_next(&c, '}')) {
        if (tg__js_key(&c, &k) != 0) {
            return -EINVAL;
        }
        if (TG_JS_KEY(&k, "error")) {
            rc = tg__js_field(&c, &ck->error, &seen, 1, 1);
        } else if (TG_JS_KEY(&k, "model")) {
            rc = tg__js_field(&c, &ck->model, &seen, 2, 1);
        } else if (TG_JS_KEY(&k, "usage")) {
            if (seen & 4) {
                return -EINVAL;
            }
            seen |= 4;
            rc = c.p < c.end && *c.p == '{' ? tg__js_usage(&c, ck, 1)
                                            : tg__js_value(&c, &v, 1);
        } else if (TG_JS_KEY(&k, "choices")) {
            if (seen & 8) {
                return -EINVAL;
            }
            seen |= 8;
            /* Any other "choices" is garbage: jansson's path says so. */
            rc = c.p < c.end && *c.p == '[' ? tg__js_choices(&c, ck, 1)
                                            : -EINVAL;
        } else {
            rc = tg__js_value(&c, &v, 1);
        }
        if (rc != 0) {
            return rc;
        }
    }
    return tg__js_end(&c, on);
}


int
tg_chunk_members(const char *p, size_t n,
    int (*fn)(void *arg, const tg_jval_t *key, const tg_jval_t *val),
    void *arg)
{
    tg_jcur_t    c = { p, p + n, 0 };
    tg_jval_t    k, v;
    const char  *start;
    int          on, rc;

    tg__js_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        return -EINVAL;
    }
    for (on = tg__js_open(&c, 1); on == 1; on = tg__js_next(&c, '}')) {
        if (tg__js_key(&c, &k) != 0) {
            return -EINVAL;
        }
        start = c.p;
        if (tg__js_value(&c, &v, 2) != 0) {
            return -EINVAL;
        }
        v.p = start;
        v.n = (size_t) (c.p - start);
        rc = fn(arg, &k, &v);
        if (rc != 0) {
            return rc;
        }
    }
    return tg__js_end(&c, on);
}


int
tg_chunk_elements(const char *p, size_t n,
    int (*fn)(void *arg, size_t index, const tg_jval_t *val), void *arg)
{
    tg_jcur_t    c = { p, p + n, 0 };
    tg_jval_t    v;
    const char  *start;
    size_t       i = 0;
    int          on, rc;

    tg__js_ws(&c);
    if (c.p >= c.end || *c.p != '[') {
        return -EINVAL;
    }
    c.p++;
    tg__js_ws(&c);
    on = 1;
    if (c.p < c.end && *c.p == ']') {
        c.p++;
        on = 0;
    }
    for ( ; on == 1; on = tg__js_next(&c, ']')) {
        start = c.p;
        if (tg__js_value(&c, &v, 2) != 0) {
            return -EINVAL;
        }
        v.p = start;
        v.n = (size_t) (c.p - start);
        rc = fn(arg, i++, &v);
        if (rc != 0) {
            return rc;
        }
    }
    return tg__js_end(&c, on);
}
