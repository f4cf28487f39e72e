/*
 * engine/backend/http1.c: a response fed whole and fed in pieces cut at
 * fuzzed places must give the same events (status, Content-Type, body
 * bytes, end or error and its message), every body span must lie inside
 * the piece it came from, and the end of input (the close) must give the
 * same verdict.  The first input byte seeds the cuts.
 */
#include "backend/http1.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The transcript (tg_fuzz_log_t): event kinds, status, type and body
 * bytes. */

/* One piece; returns 1 once the response ended or failed. */
static int
tg_fuzz_piece(tg_h1_t *ps, const char *p, size_t n, tg_fuzz_log_t *log)
{
    const char  *b;
    size_t       used, bl;
    int          ev;

    for ( ;; ) {
        ev = tg_h1_parse(ps, p, n, &used, &b, &bl);
        tg_fuzz_check(used <= n);
        p += used;
        n -= used;
        switch (ev) {
        case TG_H1_AGAIN:
            tg_fuzz_check(n == 0);
            return 0;
        case TG_H1_HEAD:
            tg_fuzz_log_add(log, "H", 1);
            tg_fuzz_log_add(log, &ps->status, sizeof(ps->status));
            tg_fuzz_check(ps->status >= 200 && ps->status <= 999);
            tg_fuzz_check(strlen(ps->ctype) <= TG_H1_CTYPE_MAX);
            tg_fuzz_log_add(log, ps->ctype, strlen(ps->ctype) + 1);
            break;
        case TG_H1_BODY:
            /* The span ends where this call stopped taking input. */
            tg_fuzz_check(bl > 0 && b + bl == p && bl <= used);
            tg_fuzz_log_add(log, b, bl);
            break;
        case TG_H1_DONE:
            tg_fuzz_log_add(log, tg_h1_reusable(ps) ? "D1" : "D0", 2);
            /* Sticky. */
            tg_fuzz_check(tg_h1_parse(ps, p, n, &used, &b, &bl)
                          == TG_H1_DONE);
            return 1;
        default:
            tg_fuzz_check(ev == TG_H1_ERROR && ps->err[0] != '\0');
            tg_fuzz_log_add(log, "E", 1);
            tg_fuzz_log_add(log, ps->err, strlen(ps->err) + 1);
            tg_fuzz_check(tg_h1_parse(ps, p, n, &used, &b, &bl)
                          == TG_H1_ERROR);
            return 1;
        }
    }
}

/* Feeds p[0..n) in pieces (seed 0: whole), then the close. */
static void
tg_fuzz_run(const char *p, size_t n, uint32_t seed, tg_fuzz_log_t *log)
{
    tg_h1_t   ps = { 0 };
    size_t    off = 0, piece;
    char     *copy;
    int       end = 0;

    tg_h1_init(&ps);
    while (off < n && !end) {
        piece = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % 97;
            if (piece > n - off) {
                piece = n - off;
            }
        }
        /* An exact copy of each piece, so that a read past it shows. */
        copy = tg_fuzz_dup((const uint8_t *) p + off, piece);
        end = tg_fuzz_piece(&ps, copy, piece, log);
        free(copy);
        off += piece;
    }
    if (!end) {
        if (tg_h1_eof(&ps) == TG_H1_DONE) {
            tg_fuzz_log_add(log, "C", 1);
        } else {
            tg_fuzz_check(ps.err[0] != '\0');
            tg_fuzz_log_add(log, "X", 1);
            tg_fuzz_log_add(log, ps.err, strlen(ps.err) + 1);
        }
    }
    tg_h1_free(&ps);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t   in = { data, size };
    tg_fuzz_log_t  whole = { 0 }, cut = { 0 };
    uint8_t        b;

    b = tg_fuzz_byte(&in);
    tg_fuzz_run((const char *) in.p, in.n, 0, &whole);
    tg_fuzz_run((const char *) in.p, in.n, b | 1u, &cut);
    tg_fuzz_check(whole.len == cut.len);
    tg_fuzz_check(whole.len == 0 || memcmp(whole.p, cut.p, whole.len) == 0);
    free(whole.p);
    free(cut.p);
    return 0;
}
