/*
 * Helpers shared by the libFuzzer harnesses (tests/fuzz/README.md): a
 * reader that takes parameters from the front of the input, and a check
 * that stays on in every build (assert() would vanish under NDEBUG, and a
 * broken invariant must crash so that libFuzzer keeps the input).
 */
#ifndef TG_FUZZ_H
#define TG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define tg_fuzz_check(cond)                                                \
    do {                                                                   \
        if (!(cond)) {                                                     \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,         \
                    __LINE__, #cond);                                      \
            abort();                                                       \
        }                                                                  \
    } while (0)

/* A growing byte log: two readings of one input write their transcripts
 * here and must compare equal. */
typedef struct {
    char    *p;
    size_t   len, cap;
} tg_fuzz_log_t;

static inline void
tg_fuzz_log_add(tg_fuzz_log_t *log, const void *p, size_t n)
{
    char  *np;

    if (log->len + n > log->cap) {
        log->cap = (log->len + n) * 2 + 64;
        np = realloc(log->p, log->cap);
        if (np == NULL) {
            abort();
        }
        log->p = np;
    }
    memcpy(log->p + log->len, p, n);
    log->len += n;
}

/* The rest of the input after parameters taken from its front. */
typedef struct {
    const uint8_t  *p;
    size_t          n;
} tg_fuzz_in_t;

/* One byte from the front; 0 once the input is used up. */
static inline uint8_t
tg_fuzz_byte(tg_fuzz_in_t *in)
{
    uint8_t  b;

    if (in->n == 0) {
        return 0;
    }
    b = in->p[0];
    in->p++;
    in->n--;
    return b;
}

/* A private, exactly sized copy of p[0..n), so that ASan sees a read one
 * byte past the end (libFuzzer's own buffer is already exact; copies of
 * parts of it are not). */
static inline char *
tg_fuzz_dup(const uint8_t *p, size_t n)
{
    char  *s = malloc(n ? n : 1);

    if (s == NULL) {
        abort();
    }
    if (n) {
        memcpy(s, p, n);
    }
    return s;
}

/* p[0..n) as a NUL-terminated string in its own allocation. */
static inline char *
tg_fuzz_cstr(const uint8_t *p, size_t n)
{
    char  *s = malloc(n + 1);

    if (s == NULL) {
        abort();
    }
    if (n) {
        memcpy(s, p, n);
    }
    s[n] = '\0';
    return s;
}

#endif /* TG_FUZZ_H */
