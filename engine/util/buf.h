/*
 * A growable byte buffer with a read offset, used for request bodies and
 * pending output.  Bytes live in [data + start, data + len).
 */

#ifndef TG_BUF_H
#define TG_BUF_H

#include <stddef.h>

typedef struct {
    char    *data;
    size_t   start;     /* first unread byte */
    size_t   len;       /* end of the written bytes */
    size_t   cap;
} tg_buf_t;

#define tg_buf_size(b)   ((b)->len - (b)->start)
#define tg_buf_ptr(b)    ((b)->data + (b)->start)

/* 0 or -ENOMEM.  The buffer keeps one spare byte so that tg_buf_cstr()
 * can always terminate it. */
int tg_buf_append(tg_buf_t *b, const void *p, size_t n);
int tg_buf_printf(tg_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Makes room for n more bytes after the written ones (and the spare
 * byte), so that a caller may write them at data + len itself.
 * 0 or -ENOMEM. */
int tg_buf_reserve(tg_buf_t *b, size_t n);

/* Drops n bytes from the front. */
void tg_buf_consume(tg_buf_t *b, size_t n);

/* NUL-terminates the contents (not counted in the size). */
const char *tg_buf_cstr(tg_buf_t *b);

void tg_buf_free(tg_buf_t *b);

#endif /* TG_BUF_H */
