/*
 * Fast JSON loader for jansson values; see jload.h.
 */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/jload.h"
#include "util/jstr.h"

typedef struct {
    const char  *p;
    const char  *end;
    tg_buf_t     tmp;           /* an escaped string's contents */
    int          depth;
    const char  *start;         /* the text's first byte */
    tg_jmember_t *members;      /* the top level's, or NULL */
    size_t       max;
    size_t       count;         /* SIZE_MAX once they are not known */
} tg__jload_t;

static json_t *tg__jload_value(tg__jload_t *c);
static json_t *tg__jload_object(tg__jload_t *c);
static json_t *tg__jload_array(tg__jload_t *c);
static int tg__jload_string(tg__jload_t *c, const char **s, size_t *n,
    int *esc);
static json_t *tg__jload_number(tg__jload_t *c);
static void tg__jload_ws(tg__jload_t *c);
static size_t tg__jload_utf8(const char *s, size_t left);
static void tg__jload_member(tg__jload_t *c, const char *key, size_t klen,
    const char *val);

/* 1 for the bytes a string holds as they are: printable ASCII but '"'
 * and '\\'. */
static const unsigned char  tg__jload_plain[256] = {
    [0x20 ... 0x21] = 1, [0x23 ... 0x5B] = 1, [0x5D ... 0x7F] = 1,
};


json_t *
tg_json_loadb(const char *p, size_t n, json_error_t *err)
{
    return tg_json_loadb_members(p, n, err, NULL, 0, NULL);
}


json_t *
tg_json_loadb_members(const char *p, size_t n, json_error_t *err,
    tg_jmember_t *m, size_t max, size_t *count)
{
    tg__jload_t  c;
    json_t      *v = NULL;

    c.p = p;
    c.end = p + n;
    c.depth = 0;
    c.start = p;
    c.members = m;
    c.max = max;
    c.count = m != NULL && n <= UINT32_MAX ? 0 : SIZE_MAX;
    memset(&c.tmp, 0, sizeof(c.tmp));
    if (count != NULL) {
        *count = 0;
    }

    tg__jload_ws(&c);
    if (c.p < c.end && (*c.p == '{' || *c.p == '[')) {
        v = tg__jload_value(&c);
        tg__jload_ws(&c);
        if (v != NULL && c.p != c.end) {
            json_decref(v);
            v = NULL;
        }
    }
    tg_buf_free(&c.tmp);

    if (v != NULL) {
        if (count != NULL && json_is_object(v) && c.count != SIZE_MAX) {
            *count = c.count;
        }
        return v;
    }
    /* Whatever the fast path is unsure of, jansson decides. */
    return json_loadb(p, n, 0, err);
}


/* Notes a top-level member (key s[0..klen), value from val to c->p);
 * the members become unknown past max or at a key given twice (the
 * value jansson keeps is then not the first one's). */
static void
tg__jload_member(tg__jload_t *c, const char *key, size_t klen,
    const char *val)
{
    tg_jmember_t  *m;
    size_t         i;

    if (c->count == SIZE_MAX) {
        return;
    }
    if (c->count == c->max) {
        c->count = SIZE_MAX;
        return;
    }
    for (i = 0; i < c->count; i++) {
        m = &c->members[i];
        if (m->key_len == klen
            && memcmp(c->start + m->key, key, klen) == 0)
        {
            c->count = SIZE_MAX;
            return;
        }
    }
    m = &c->members[c->count++];
    m->key = (uint32_t) (key - c->start);
    m->key_len = (uint32_t) klen;
    m->val = (uint32_t) (val - c->start);
    m->val_len = (uint32_t) (c->p - val);
}


static void
tg__jload_ws(tg__jload_t *c)
{
    while (c->p < c->end
           && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r'
               || *c->p == '\t'))
    {
        c->p++;
    }
}


static json_t *
tg__jload_value(tg__jload_t *c)
{
    const char  *s;
    size_t       n, left;
    int          esc;

    if (c->p >= c->end) {
        return NULL;
    }
    left = (size_t) (c->end - c->p);

    switch (*c->p) {
    case '{':
        return tg__jload_object(c);
    case '[':
        return tg__jload_array(c);
    case '"':
        if (tg__jload_string(c, &s, &n, &esc) != 0) {
            return NULL;
        }
        return json_stringn_nocheck(s, n);
    case 't':
        if (left >= 4 && memcmp(c->p, "true", 4) == 0) {
            c->p += 4;
            return json_true();
        }
        return NULL;
    case 'f':
        if (left >= 5 && memcmp(c->p, "false", 5) == 0) {
            c->p += 5;
            return json_false();
        }
        return NULL;
    case 'n':
        if (left >= 4 && memcmp(c->p, "null", 4) == 0) {
            c->p += 4;
            return json_null();
        }
        return NULL;
    default:
        return tg__jload_number(c);
    }
}


/* The length of the UTF-8 sequence at p, 0 when jansson would refuse it
 * (utf8_check_full: no overlong forms, surrogates or values past
 * U+10FFFF). */
static size_t
tg__jload_utf8(const char *s, size_t left)
{
    const unsigned char  *p = (const unsigned char *) s;
    uint32_t              v;
    size_t                n, i;

    if (p[0] >= 0xC2 && p[0] <= 0xDF) {
        n = 2;
        v = p[0] & 0x1F;
    } else if (p[0] >= 0xE0 && p[0] <= 0xEF) {
        n = 3;
        v = p[0] & 0x0F;
    } else if (p[0] >= 0xF0 && p[0] <= 0xF4) {
        n = 4;
        v = p[0] & 0x07;
    } else {
        return 0;
    }
    if (n > left) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if (p[i] < 0x80 || p[i] > 0xBF) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)
        || (n == 3 && v < 0x800) || (n == 4 && v < 0x10000))
    {
        return 0;
    }
    return n;
}


/* At '"'.  s, n: the contents, unescaped into c->tmp when esc is set
 * (valid until the next string).  Control bytes, UTF-8 that jansson
 * refuses and escapes it refuses are left to jansson. */
static int
tg__jload_string(tg__jload_t *c, const char **s, size_t *n, int *esc)
{
    const char     *start = ++c->p;
    unsigned char   ch;
    size_t          len;

    *esc = 0;
    while (c->p < c->end) {
        /* Plain ASCII, most of any string, in a tight loop first. */
        while (c->p < c->end && tg__jload_plain[(unsigned char) *c->p]) {
            c->p++;
        }
        if (c->p >= c->end) {
            break;
        }
        ch = (unsigned char) *c->p;
        if (ch == '"') {
            break;
        }
        if (ch < 0x20) {
            return -EINVAL;
        }
        if (ch >= 0x80) {
            len = tg__jload_utf8(c->p, (size_t) (c->end - c->p));
            if (len == 0) {
                return -EINVAL;
            }
            c->p += len;
            continue;
        }
        if (ch == '\\') {
            *esc = 1;
            c->p++;
        }
        c->p++;
    }
    if (c->p >= c->end) {
        return -EINVAL;
    }

    *s = start;
    *n = (size_t) (c->p - start);
    c->p++;

    if (*esc) {
        c->tmp.start = c->tmp.len = 0;
        if (tg_jstr_unescape(&c->tmp, start, *n) != 0) {
            return -EINVAL;
        }
        *s = tg_buf_size(&c->tmp) ? tg_buf_ptr(&c->tmp) : "";
        *n = tg_buf_size(&c->tmp);
    }
    return 0;
}


/* Integers of up to 18 digits (no overflow possible) and finite reals;
 * leading zeros and the rest are jansson's to refuse. */
static json_t *
tg__jload_number(tg__jload_t *c)
{
    const char  *start = c->p;
    char         buf[64], *endp;
    int64_t      v = 0;
    double       d;
    size_t       digits = 0, len;
    int          neg = 0, real = 0;

    if (c->p < c->end && *c->p == '-') {
        neg = 1;
        c->p++;
    }
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
        return NULL;
    }
    if (*c->p == '0') {
        c->p++;
        digits = 1;
    } else {
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (++digits > 18) {
                return NULL;
            }
            v = v * 10 + (*c->p - '0');
            c->p++;
        }
    }
    if (c->p < c->end && *c->p == '.') {
        real = 1;
        c->p++;
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            return NULL;
        }
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            c->p++;
        }
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        real = 1;
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) {
            c->p++;
        }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') {
            return NULL;
        }
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            c->p++;
        }
    }

    if (!real) {
        return json_integer(neg ? -v : v);
    }

    len = (size_t) (c->p - start);
    if (len >= sizeof(buf)) {
        return NULL;
    }
    memcpy(buf, start, len);
    buf[len] = '\0';
    errno = 0;
    d = strtod(buf, &endp);
    if (errno != 0 || endp != buf + len || !isfinite(d)) {
        return NULL;
    }
    return json_real(d);
}


static json_t *
tg__jload_object(tg__jload_t *c)
{
    json_t      *obj, *v;
    const char  *key, *val;
    size_t       klen;
    int          esc;

    if (++c->depth > TG_JLOAD_MAX_DEPTH) {
        return NULL;
    }
    obj = json_object();
    if (obj == NULL) {
        return NULL;
    }
    c->p++;
    tg__jload_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        c->depth--;
        return obj;
    }

    for ( ;; ) {
        if (c->p >= c->end || *c->p != '"'
            || tg__jload_string(c, &key, &klen, &esc) != 0 || esc)
        {
            goto failed;
        }
        tg__jload_ws(c);
        if (c->p >= c->end || *c->p != ':') {
            goto failed;
        }
        c->p++;
        tg__jload_ws(c);
        val = c->p;
        v = tg__jload_value(c);
        /* As jansson's parser: a key given twice keeps the last value. */
        if (v == NULL || json_object_setn_new_nocheck(obj, key, klen, v) != 0)
        {
            goto failed;
        }
        if (c->depth == 1) {
            tg__jload_member(c, key, klen, val);
        }
        tg__jload_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            tg__jload_ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == '}') {
            c->p++;
            c->depth--;
            return obj;
        }
        goto failed;
    }

failed:
    json_decref(obj);
    return NULL;
}


static json_t *
tg__jload_array(tg__jload_t *c)
{
    json_t  *arr, *v;

    if (++c->depth > TG_JLOAD_MAX_DEPTH) {
        return NULL;
    }
    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }
    c->p++;
    tg__jload_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        c->depth--;
        return arr;
    }

    for ( ;; ) {
        v = tg__jload_value(c);
        if (v == NULL || json_array_append_new(arr, v) != 0) {
            goto failed;
        }
        tg__jload_ws(c);
        if (c->p < c->end && *c->p == ',') {
            c->p++;
            tg__jload_ws(c);
            continue;
        }
        if (c->p < c->end && *c->p == ']') {
            c->p++;
            c->depth--;
            return arr;
        }
        goto failed;
    }

failed:
    json_decref(arr);
    return NULL;
}
