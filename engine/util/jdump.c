/*
 * Compact JSON writer for jansson values; see jdump.h.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jdump.h"
#include "util/jstr.h"

/* A real as jansson's jsonp_dtostr writes it: %.17g, ".0" added when it
 * would read back as an integer, the exponent without '+' or leading
 * zeros. */
int
tg_json_dump_real(tg_buf_t *b, double d)
{
    char    buf[64], *start, *end;
    size_t  len;
    int     n;

    if (isnan(d) || isinf(d)) {
        return -EINVAL;
    }
    n = snprintf(buf, sizeof(buf), "%.17g", d);
    if (n < 0 || (size_t) n >= sizeof(buf) - 3) {
        return -EINVAL;
    }
    len = (size_t) n;
    if (strchr(buf, '.') == NULL && strchr(buf, 'e') == NULL) {
        buf[len++] = '.';
        buf[len++] = '0';
        buf[len] = '\0';
    }
    start = strchr(buf, 'e');
    if (start != NULL) {
        start++;
        end = start + 1;
        if (*start == '-') {
            start++;
        }
        while (*end == '0') {
            end++;
        }
        if (end != start) {
            memmove(start, end, len - (size_t) (end - buf) + 1);
            len -= (size_t) (end - start);
        }
    }
    return tg_buf_append(b, buf, len);
}


/* `,"key":` (no comma before the first member), key escaped. */
static int
tg__dump_key(tg_buf_t *b, const char *key, int first)
{
    int  rc = 0;

    if (!first) {
        rc |= tg_buf_append(b, ",", 1);
    }
    rc |= tg_buf_append(b, "\"", 1);
    rc |= tg_jstr_escape(b, key, strlen(key));
    rc |= tg_buf_append(b, "\":", 2);
    return rc;
}


/* A string value, quoted and escaped. */
static int
tg__dump_str(tg_buf_t *b, const char *s)
{
    int  rc;

    rc = tg_buf_append(b, "\"", 1);
    rc |= tg_jstr_escape(b, s, strlen(s));
    rc |= tg_buf_append(b, "\"", 1);
    return rc;
}


int
tg_json_dump(tg_buf_t *b, const json_t *v)
{
    const char  *key;
    json_t      *m;
    size_t       i;
    int          rc = 0, first = 1;

    if (v == NULL) {
        return -EINVAL;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        rc = tg_buf_append(b, "{", 1);
        json_object_foreach((json_t *) v, key, m) {
            if (rc != 0) {
                return rc;
            }
            rc |= tg__dump_key(b, key, first);
            first = 0;
            if (rc == 0) {
                rc = tg_json_dump(b, m);
            }
        }
        return rc != 0 ? rc : tg_buf_append(b, "}", 1);
    case JSON_ARRAY:
        rc = tg_buf_append(b, "[", 1);
        for (i = 0; rc == 0 && i < json_array_size(v); i++) {
            if (i > 0) {
                rc = tg_buf_append(b, ",", 1);
            }
            if (rc == 0) {
                rc = tg_json_dump(b, json_array_get(v, i));
            }
        }
        return rc != 0 ? rc : tg_buf_append(b, "]", 1);
    case JSON_STRING:
        rc |= tg_buf_append(b, "\"", 1);
        rc |= tg_jstr_escape(b, json_string_value(v), json_string_length(v));
        rc |= tg_buf_append(b, "\"", 1);
        return rc != 0 ? -ENOMEM : 0;
    case JSON_INTEGER:
        return tg_jstr_int(b, (int64_t) json_integer_value(v));
    case JSON_REAL:
        return tg_json_dump_real(b, json_real_value(v));
    case JSON_TRUE:
        return tg_buf_append(b, "true", 4);
    case JSON_FALSE:
        return tg_buf_append(b, "false", 5);
    case JSON_NULL:
        return tg_buf_append(b, "null", 4);
    }
    return -EINVAL;
}


/* The members of an object, one of them (key) written with the string
 * value instead of its own, or appended last when the object has none:
 * what json_object_set_new(copy, key, json_string(value)) on a copy would
 * dump, without the copy. */
int
tg_json_dump_with(tg_buf_t *b, const json_t *obj, const char *key,
    const char *value)
{
    const char  *k;
    json_t      *m;
    int          rc, first = 1, seen = 0;

    if (!json_is_object(obj) || key == NULL || value == NULL) {
        return -EINVAL;
    }
    rc = tg_buf_append(b, "{", 1);
    json_object_foreach((json_t *) obj, k, m) {
        if (rc != 0) {
            return rc;
        }
        rc |= tg__dump_key(b, k, first);
        first = 0;
        if (rc == 0 && !seen && strcmp(k, key) == 0) {
            seen = 1;
            m = NULL;
            rc |= tg__dump_str(b, value);
        }
        if (rc == 0 && m != NULL) {
            rc = tg_json_dump(b, m);
        }
    }
    if (rc == 0 && !seen) {
        rc |= tg__dump_key(b, key, first);
        rc |= tg__dump_str(b, value);
    }
    return rc != 0 ? -ENOMEM : tg_buf_append(b, "}", 1);
}


/* Like tg_json_dump_with, for n integer members set in order. */
int
tg_json_dump_ints(tg_buf_t *b, const json_t *obj, const char *const *keys,
    const int64_t *vals, size_t n)
{
    const char  *k;
    json_t      *m;
    uint32_t     seen = 0;
    size_t       i;
    int          rc, first = 1;

    if (!json_is_object(obj) || n > 32) {
        return -EINVAL;
    }
    rc = tg_buf_append(b, "{", 1);
    json_object_foreach((json_t *) obj, k, m) {
        if (rc != 0) {
            return rc;
        }
        rc |= tg__dump_key(b, k, first);
        first = 0;
        for (i = 0; i < n; i++) {
            if (!(seen & (1u << i)) && strcmp(k, keys[i]) == 0) {
                seen |= 1u << i;
                m = NULL;
                rc |= tg_jstr_int(b, vals[i]);
                break;
            }
        }
        if (rc == 0 && m != NULL) {
            rc = tg_json_dump(b, m);
        }
    }
    for (i = 0; i < n && rc == 0; i++) {
        if (!(seen & (1u << i))) {
            rc |= tg__dump_key(b, keys[i], first);
            rc |= tg_jstr_int(b, vals[i]);
            first = 0;
        }
    }
    return rc != 0 ? -ENOMEM : tg_buf_append(b, "}", 1);
}


char *
tg_json_dumps(const json_t *v)
{
    tg_buf_t  b = { 0 };

    if (tg_json_dump(&b, v) != 0) {
        tg_buf_free(&b);
        return NULL;
    }
    /* The buffer's own allocation becomes the string. */
    if (tg_buf_cstr(&b) == NULL) {
        tg_buf_free(&b);
        return NULL;
    }
    return b.data;
}
