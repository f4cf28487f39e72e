/*
 * Growable byte buffer.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"


static int
tg__buf_reserve(tg_buf_t *b, size_t n)
{
    size_t  cap;
    char   *p;

    if (b->start > 0 && b->start == b->len) {
        b->start = 0;
        b->len = 0;
    }

    if (b->len + n + 1 <= b->cap) {
        return 0;
    }

    /* Reclaim consumed space before growing. */
    if (b->start > 0 && tg_buf_size(b) + n + 1 <= b->cap) {
        memmove(b->data, b->data + b->start, tg_buf_size(b));
        b->len -= b->start;
        b->start = 0;
        return 0;
    }

    cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) {
        if (cap > ((size_t) -1) / 2) {
            return -ENOMEM;
        }
        cap *= 2;
    }

    p = realloc(b->data, cap);
    if (p == NULL) {
        return -ENOMEM;
    }

    b->data = p;
    b->cap = cap;
    return 0;
}


int
tg_buf_reserve(tg_buf_t *b, size_t n)
{
    return tg__buf_reserve(b, n);
}


int
tg_buf_append_grow(tg_buf_t *b, const void *p, size_t n)
{
    int  rc;

    rc = tg__buf_reserve(b, n);
    if (rc != 0) {
        return rc;
    }

    if (n) {
        memcpy(b->data + b->len, p, n);
    }
    b->len += n;
    return 0;
}


int
tg_buf_printf(tg_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n, rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);

    if (n < 0) {
        return -EINVAL;
    }

    rc = tg__buf_reserve(b, (size_t) n);
    if (rc != 0) {
        return rc;
    }

    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t) n + 1, fmt, ap);
    va_end(ap);

    b->len += (size_t) n;
    return 0;
}


void
tg_buf_consume(tg_buf_t *b, size_t n)
{
    b->start += n;
    if (b->start >= b->len) {
        b->start = 0;
        b->len = 0;
    }
}


const char *
tg_buf_cstr(tg_buf_t *b)
{
    if (tg__buf_reserve(b, 0) != 0) {
        return NULL;
    }

    b->data[b->len] = '\0';
    return b->data + b->start;
}


void
tg_buf_free(tg_buf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->start = b->len = b->cap = 0;
}
