/*
 * engine/backend/sse.c: the stream fed whole and fed in pieces cut at
 * fuzzed places must give the same events and the same error (sse.h: input
 * may be split anywhere).  The first input byte picks max_event and the
 * seed of the cuts.
 */
#include <errno.h>

#include "backend/sse.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The transcript (tg_fuzz_log_t): every event as name, NUL, length,
 * payload. */

static void
tg_fuzz_on_event(void *data, const char *event, const char *payload,
    size_t len)
{
    tg_fuzz_log_t  *log = data;

    tg_fuzz_check(event != NULL && payload != NULL);
    tg_fuzz_check(payload[len] == '\0');
    tg_fuzz_log_add(log, event, strlen(event) + 1);
    tg_fuzz_log_add(log, &len, sizeof(len));
    tg_fuzz_log_add(log, payload, len);
}

/* Feeds p[0..n) in pieces: seed 0 means whole. */
static int
tg_fuzz_run(const char *p, size_t n, size_t max_event, uint32_t seed,
    tg_fuzz_log_t *log)
{
    tg_sse_t  s;
    size_t    off = 0, piece;
    char     *copy;
    int       rc = 0;

    tg_sse_init(&s, tg_fuzz_on_event, log);
    if (max_event) {
        s.max_event = max_event;
    }
    while (off < n) {
        piece = n - off;
        if (seed) {
            seed = seed * 1103515245u + 12345u;
            piece = 1 + (seed >> 16) % 7;
            if (piece > n - off) {
                piece = n - off;
            }
        }
        /* An exact copy of each piece, so that a read past it shows. */
        copy = tg_fuzz_dup((const uint8_t *) p + off, piece);
        rc = tg_sse_feed(&s, copy, piece);
        free(copy);
        off += piece;
        if (rc != 0) {
            tg_fuzz_check(rc == -E2BIG || rc == -ENOMEM);
            /* Sticky: the next feed says the same. */
            tg_fuzz_check(tg_sse_feed(&s, "\n\n", 2) == rc);
            break;
        }
    }
    tg_sse_free(&s);
    return rc;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t   in = { data, size };
    tg_fuzz_log_t  whole = { 0 }, cut = { 0 };
    size_t         max_event;
    uint8_t        b;
    int            rc1, rc2;

    b = tg_fuzz_byte(&in);
    /* Half the inputs get a tiny cap, so that E2BIG paths run too. */
    max_event = (b & 0x80) ? (size_t) (b & 0x3f) + 1 : 0;

    rc1 = tg_fuzz_run((const char *) in.p, in.n, max_event, 0, &whole);
    rc2 = tg_fuzz_run((const char *) in.p, in.n, max_event, b | 1u, &cut);

    tg_fuzz_check(rc1 == rc2);
    if (rc1 == 0) {
        tg_fuzz_check(whole.len == cut.len);
        tg_fuzz_check(whole.len == 0
                      || memcmp(whole.p, cut.p, whole.len) == 0);
    }

    free(whole.p);
    free(cut.p);
    return 0;
}
