/*
 * Ring frames as a consumer reads them (include/thinkgate/ring.h), the
 * way the engine's tg_conn_service() and the module's
 * ngx_http_thinkgate_engine_service() walk them: tg_ring_peek, then
 * tg_ring_consume, until the ring is empty or corrupt.  The peer is the
 * fuzzer, in two modes (first byte):
 *
 *   even: a scribbled ring: the data area and both counters come from the
 *         input, as a hostile peer could leave them;
 *   odd:  an honest producer: tg_ring_write() with frame sizes from the
 *         input, interleaved with reads, and every payload must come back
 *         as written, in order.
 *
 * A REQUEST frame's payload is then read as the engine's tg_request_feed()
 * reads a first frame: uint32_t meta_len, meta (JSON, tg_json_loadb), body.
 */
#include <errno.h>

#include <jansson.h>

#include "thinkgate/protocol.h"
#include "thinkgate/ring.h"
#include "util/jload.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TG_FUZZ_RING_SIZE  TG_RING_MIN_SIZE

/* The payload checks of the engine's tg__conn_frame(). */
static void
tg_fuzz_engine_frame(const tg_frame_view_t *v)
{
    uint32_t       meta_len, credit;
    json_error_t   jerr;
    json_t        *meta;

    switch (v->type) {
    case TG_FRAME_REQUEST:
        if (v->len < sizeof(uint32_t)) {
            return;
        }
        memcpy(&meta_len, v->payload, sizeof(meta_len));
        if (meta_len > v->len - sizeof(uint32_t)) {
            return;
        }
        meta = tg_json_loadb((const char *) v->payload + sizeof(uint32_t),
                             meta_len, &jerr);
        json_decref(meta);
        return;
    case TG_FRAME_WINDOW:
        if (v->len == sizeof(uint32_t)) {
            memcpy(&credit, v->payload, sizeof(credit));
            (void) credit;
        }
        return;
    default:
        return;
    }
}

/* Peeks and consumes until empty or corrupt; returns frames read. */
static size_t
tg_fuzz_drain(tg_ring_t *ring, const uint8_t **expect, size_t *expect_len,
    size_t nexpect, int *err)
{
    tg_frame_view_t         view;
    const tg_frame_view_t  *f;
    size_t                  frames = 0;
    uint64_t                head, tail;

    for ( ;; ) {
        f = tg_ring_peek(ring, &view, err);
        head = atomic_load(&ring->ctl->head);
        tail = atomic_load(&ring->ctl->tail);
        /* Whatever the peer wrote, the consumer never runs past what was
         * published: that is what makes every loop above end. */
        tg_fuzz_check(head - tail <= ring->size);
        if (f == NULL) {
            return frames;
        }
        tg_fuzz_check(f->type != TG_FRAME_PAD);
        tg_fuzz_check(f->payload >= ring->data
                      && f->payload + f->len <= ring->data + ring->size);
        if (expect != NULL) {
            tg_fuzz_check(frames < nexpect);
            tg_fuzz_check(f->len == expect_len[frames]);
            tg_fuzz_check(f->len == 0
                          || memcmp(f->payload, expect[frames], f->len) == 0);
        }
        tg_fuzz_engine_frame(f);
        (void) tg_ring_consume(ring, f);
        frames++;
    }
}

static void
tg_fuzz_scribbled(tg_ring_t *ring, tg_fuzz_in_t *in)
{
    uint64_t  tail = 0, span = 0;
    size_t    i, n;
    int       err;

    for (i = 0; i < 8; i++) {
        tail = tail << 8 | tg_fuzz_byte(in);
    }
    for (i = 0; i < 3; i++) {
        span = span << 8 | tg_fuzz_byte(in);
    }
    span %= (uint64_t) ring->size + 1;
    /* The data area: the input at the consumer's offset, so that short
     * inputs still shape the frames read first. */
    n = in->n < ring->size ? in->n : ring->size;
    for (i = 0; i < n; i++) {
        ring->data[(tail + i) & (ring->size - 1)] = in->p[i];
    }
    atomic_store(&ring->ctl->tail, tail);
    atomic_store(&ring->ctl->head, tail + span);
    (void) tg_fuzz_drain(ring, NULL, NULL, 0, &err);
}

#define TG_FUZZ_MAX_FRAMES  64

static void
tg_fuzz_honest(tg_ring_t *ring, tg_fuzz_in_t *in)
{
    const uint8_t  *expect[TG_FUZZ_MAX_FRAMES];
    size_t          expect_len[TG_FUZZ_MAX_FRAMES], nexpect = 0, len;
    uint64_t        start;
    int             rc, err;

    /* Start anywhere, so that wrapping and tail gaps of every size run. */
    start = (uint64_t) tg_fuzz_byte(in) << 13;
    start |= (uint64_t) tg_fuzz_byte(in) << 3;
    atomic_store(&ring->ctl->head, start);
    atomic_store(&ring->ctl->tail, start);

    while (in->n > 0) {
        len = (size_t) tg_fuzz_byte(in) << 8 | tg_fuzz_byte(in);
        if (len & 0x8000) {
            /* Read what is there. */
            tg_fuzz_check(tg_fuzz_drain(ring, expect, expect_len, nexpect,
                                        &err) == nexpect);
            tg_fuzz_check(err == 0);
            nexpect = 0;
            continue;
        }
        len = (len & 0x7fff) % (in->n + 1);
        len = len * 8 + (len & 7);   /* big frames too, from little input */
        if (len > in->n) {
            len = in->n;
        }
        if (len > tg_ring_max_payload(ring)) {
            len = tg_ring_max_payload(ring);
        }
        if (nexpect == TG_FUZZ_MAX_FRAMES) {
            break;
        }
        rc = tg_ring_write(ring, TG_FRAME_DATA, 0, nexpect + 1, in->p, len,
                           NULL, 0);
        tg_fuzz_check(rc >= 0 || rc == -EAGAIN);
        if (rc >= 0) {
            expect[nexpect] = in->p;
            expect_len[nexpect] = len;
            nexpect++;
        }
        in->p += len;
        in->n -= len;
    }
    tg_fuzz_check(tg_fuzz_drain(ring, expect, expect_len, nexpect, &err)
                  == nexpect);
    tg_fuzz_check(err == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t    in = { data, size };
    tg_ring_ctl_t  *ctl;
    tg_ring_t       ring;

    /* The data area on its own allocation: ASan sees a byte past it. */
    ctl = calloc(1, sizeof(*ctl));
    ring.data = calloc(1, TG_FUZZ_RING_SIZE);
    tg_fuzz_check(ctl != NULL && ring.data != NULL);
    ring.ctl = ctl;
    ring.size = TG_FUZZ_RING_SIZE;
    ctl->size = TG_FUZZ_RING_SIZE;

    if (tg_fuzz_byte(&in) & 1) {
        tg_fuzz_honest(&ring, &in);
    } else {
        tg_fuzz_scribbled(&ring, &in);
    }

    free(ring.data);
    free(ctl);
    return 0;
}
