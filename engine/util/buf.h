/*
 * A growable byte buffer with a read offset, used for request bodies and
 * pending output.  Bytes live in [data + start, data + len).
 */

#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct {
    char    *data;
    size_t   start;     /* first unread byte */
    size_t   len;       /* end of the written bytes */
    size_t   cap;
} tg_buf_t;

#define tg_buf_size(b)   ((b)->len - (b)->start)
#define tg_buf_ptr(b)    ((b)->data + (b)->start)

int tg_buf_append_grow(tg_buf_t *b, const void *p, size_t n);

/* 0 or -ENOMEM.  The buffer keeps one spare byte so that tg_buf_cstr()
 * can always terminate it.  Inline when the bytes fit after the written
 * ones (and the buffer is not an emptied one, which is rewound first):
 * JSON writing appends a few bytes at a time, hundreds of times per
 * request. */
static inline int
tg_buf_append(tg_buf_t *b, const void *p, size_t n)
{
    if (b->len + n + 1 <= b->cap && (b->start == 0 || b->start != b->len)) {
        if (n) {
            memcpy(b->data + b->len, p, n);
        }
        b->len += n;
        return 0;
    }
    return tg_buf_append_grow(b, p, n);
}
int tg_buf_printf(tg_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes room for n more bytes after the written ones (and the spare
 * byte), so that a caller may write them at data + len itself.
 * 0 or -ENOMEM. */
int tg_buf_reserve(tg_buf_t *b, size_t n);

/* Drops n bytes from the front. */
void tg_buf_consume(tg_buf_t *b, size_t n);

/* Empties b and keeps its storage for the next bytes. */
static inline void
tg_buf_clear(tg_buf_t *b)
{
    b->start = 0;
    b->len = 0;
}

/* NUL-terminates the contents (not counted in the size). */
const char *tg_buf_cstr(tg_buf_t *b);

void tg_buf_free(tg_buf_t *b);

#endif /* TG_BUF_H */
