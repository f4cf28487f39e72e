/*
 * Bounded string copying.
 */

#ifndef TG_UTIL_STR_H
#define TG_UTIL_STR_H

#include <stddef.h>
#include <string.h>

/* snprintf(dst, size, "%s", src) without the formatter (about a thousand
 * instructions a call): copies what fits of src, always terminates dst
 * (size > 0), and returns the bytes copied, so that the next copy can go
 * to dst + n with size - n bytes left.  src must not be NULL. */
static inline size_t
tg_str_copy(char *dst, size_t size, const char *src)
{
    size_t  n = strlen(src);

    if (n >= size) {
        n = size - 1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return n;
}

#endif /* TG_UTIL_STR_H */
