/*
 * The shared-memory ring (include/thinkgate/ring.h): wrap-around, full
 * ring and producer_waiting, frames of every size, PAD handling, and a
 * two-thread producer/consumer stress with doorbell accounting.
 */

#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <thinkgate/protocol.h>
#include <thinkgate/ring.h>

typedef struct {
    tg_shm_t   *shm;
    tg_ring_t   ring;
} fixture_t;


static void
fixture_init(fixture_t *fx, uint32_t ring_size)
{
    size_t  size = tg_shm_size(ring_size);

    fx->shm = aligned_alloc(64, (size + 63) & ~(size_t) 63);
    cr_assert_not_null(fx->shm);
    memset(fx->shm, 0xa5, size);
    tg_shm_init(fx->shm, ring_size);
    cr_assert_eq(tg_shm_check(fx->shm, size), 0);
    fx->ring = tg_shm_ring(fx->shm, &fx->shm->to_engine);
}


static void
fixture_free(fixture_t *fx)
{
    free(fx->shm);
}


static void
fill(uint8_t *p, size_t n, uint64_t seed)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        p[i] = (uint8_t) (seed * 31 + i * 7);
    }
}


static int
check(const uint8_t *p, size_t n, uint64_t seed)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (p[i] != (uint8_t) (seed * 31 + i * 7)) {
            return 0;
        }
    }
    return 1;
}


/* Reads one frame and checks it; returns its payload length. */
static size_t
read_one(tg_ring_t *ring, uint64_t id, int *woke)
{
    tg_frame_view_t        view;
    const tg_frame_view_t *f;
    int                    err;
    size_t                 len;

    f = tg_ring_peek(ring, &view, &err);
    cr_assert_not_null(f, "ring empty at id %llu (err %d)",
                       (unsigned long long) id, err);
    cr_assert_eq(f->id, id);
    cr_assert_eq(f->type, TG_FRAME_DATA);
    cr_assert(check(tg_frame_payload(f), f->len, id));
    len = f->len;
    *woke = tg_ring_consume(ring, f);
    return len;
}


Test(ring, shm_check_rejects_bad_layouts)
{
    fixture_t  fx;
    size_t     size = tg_shm_size(TG_RING_MIN_SIZE);

    fixture_init(&fx, TG_RING_MIN_SIZE);

    cr_assert_eq(tg_shm_check(fx.shm, size - 1), -EPROTO);
    fx.shm->magic ^= 1;
    cr_assert_eq(tg_shm_check(fx.shm, size), -EPROTO);
    fx.shm->magic ^= 1;
    fx.shm->to_worker.data_off += 8;
    cr_assert_eq(tg_shm_check(fx.shm, size), -EPROTO);
    fx.shm->to_worker.data_off -= 8;
    fx.shm->ring_size = 3 * TG_RING_MIN_SIZE;
    cr_assert_eq(tg_shm_check(fx.shm, size), -EPROTO);
    fx.shm->ring_size = TG_RING_MIN_SIZE;
    cr_assert_eq(tg_shm_check(fx.shm, size), 0);

    cr_assert(!tg_ring_size_valid(TG_RING_MIN_SIZE / 2));
    cr_assert(!tg_ring_size_valid(TG_RING_MIN_SIZE + 8));
    cr_assert(!tg_ring_size_valid(TG_RING_MAX_SIZE * 2));

    fixture_free(&fx);
}


Test(ring, empty_ring_peeks_null)
{
    fixture_t        fx;
    tg_frame_view_t  view;
    int              err = 7;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    cr_assert_null(tg_ring_peek(&fx.ring, &view, &err));
    cr_assert_eq(err, 0);
    fixture_free(&fx);
}


Test(ring, every_size_from_zero_to_max_payload)
{
    fixture_t  fx;
    uint8_t   *buf;
    uint32_t   max, n;
    int        rc, woke;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    max = tg_ring_max_payload(&fx.ring);
    buf = malloc(max + 1);
    cr_assert_not_null(buf);

    /* One frame at a time, so each write finds the ring drained: every
     * write must ask for a doorbell, and positions wrap many times. */
    for (n = 0; n <= max; n++) {
        fill(buf, n, n);
        rc = tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, n, buf, n, NULL, 0);
        cr_assert_eq(rc, 1, "size %u: rc %d", n, rc);
        cr_assert_eq(read_one(&fx.ring, n, &woke), n);
        cr_assert_eq(woke, 0);
    }

    fill(buf, max + 1, 0);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 1, buf, max, buf,
                               1), -EMSGSIZE);

    free(buf);
    fixture_free(&fx);
}


Test(ring, split_payload_is_concatenated)
{
    fixture_t              fx;
    tg_frame_view_t        view;
    const tg_frame_view_t *f;
    int                    err;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_HEAD, 3, 42, "abc", 3,
                               "defg", 4), 1);
    f = tg_ring_peek(&fx.ring, &view, &err);
    cr_assert_not_null(f);
    cr_assert_eq(f->len, 7);
    cr_assert_eq(f->flags, 3);
    cr_assert_eq(f->type, TG_FRAME_HEAD);
    cr_assert_eq(memcmp(tg_frame_payload(f), "abcdefg", 7), 0);
    cr_assert_eq(tg_ring_consume(&fx.ring, f), 0);
    cr_assert_null(tg_ring_peek(&fx.ring, &view, &err));
    fixture_free(&fx);
}


Test(ring, full_ring_eagain_and_producer_waiting)
{
    fixture_t  fx;
    uint8_t    buf[1000];
    uint64_t   id, next_read = 0;
    int        rc, woke;

    fixture_init(&fx, TG_RING_MIN_SIZE);

    /* Fill until the ring refuses. */
    for (id = 0; ; id++) {
        fill(buf, sizeof(buf), id);
        rc = tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, id, buf, sizeof(buf),
                           NULL, 0);
        if (rc == -EAGAIN) {
            break;
        }
        cr_assert_eq(rc, id == 0 ? 1 : 0, "id %llu rc %d",
                     (unsigned long long) id, rc);
    }
    cr_assert_gt(id, 50);
    cr_assert_eq(atomic_load(&fx.shm->to_engine.producer_waiting), 1);

    /* The first consume must wake the waiting producer, and only it. */
    read_one(&fx.ring, next_read++, &woke);
    cr_assert_eq(woke, 1);
    cr_assert_eq(atomic_load(&fx.shm->to_engine.producer_waiting), 0);
    read_one(&fx.ring, next_read++, &woke);
    cr_assert_eq(woke, 0);

    /* Room again: the refused frame goes in now, and no doorbell is due
     * since the consumer has not drained the ring. */
    fill(buf, sizeof(buf), id);
    rc = tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, id, buf, sizeof(buf),
                       NULL, 0);
    cr_assert_eq(rc, 0);

    while (next_read <= id) {
        read_one(&fx.ring, next_read++, &woke);
    }
    {
        tg_frame_view_t  view;

        cr_assert_null(tg_ring_peek(&fx.ring, &view, &rc));
    }

    fixture_free(&fx);
}


Test(ring, wrap_with_pad_frame_and_short_gap)
{
    fixture_t    fx;
    uint32_t     size = TG_RING_MIN_SIZE;
    uint8_t      buf[4096];
    tg_frame_t  *f;
    tg_frame_view_t view;
    uint64_t     head;
    int          err, woke;

    fixture_init(&fx, size);

    /* Park the positions 40 bytes before the end: a 1000-byte frame needs
     * a PAD frame (40 >= sizeof(tg_frame_t)). */
    head = size - 40;
    atomic_store(&fx.shm->to_engine.head, head);
    atomic_store(&fx.shm->to_engine.tail, head);

    fill(buf, 1000, 9);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 9, buf, 1000,
                               NULL, 0), 1);
    f = (tg_frame_t *) (fx.ring.data + (size - 40));
    cr_assert_eq(f->type, TG_FRAME_PAD);
    cr_assert_eq(f->len, 40 - sizeof(tg_frame_t));
    cr_assert_eq(atomic_load(&fx.shm->to_engine.head),
                 size + tg_ring_align(sizeof(tg_frame_t) + 1000));
    cr_assert_eq(read_one(&fx.ring, 9, &woke), 1000);
    cr_assert_null(tg_ring_peek(&fx.ring, &view, &err));

    /* 8 bytes before the end: too short for a PAD header, left as a gap
     * that the consumer skips. */
    head = 2 * (uint64_t) size - 8;
    atomic_store(&fx.shm->to_engine.head, head);
    atomic_store(&fx.shm->to_engine.tail, head);
    fill(buf, 100, 10);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 10, buf, 100,
                               NULL, 0), 1);
    cr_assert_eq(read_one(&fx.ring, 10, &woke), 100);
    cr_assert_eq(atomic_load(&fx.shm->to_engine.tail),
                 2 * (uint64_t) size + tg_ring_align(sizeof(tg_frame_t)
                                                     + 100));

    /* A frame that ends exactly at the end of the data area needs no
     * padding. */
    head = 3 * (uint64_t) size - tg_ring_align(sizeof(tg_frame_t) + 1000);
    atomic_store(&fx.shm->to_engine.head, head);
    atomic_store(&fx.shm->to_engine.tail, head);
    fill(buf, 1000, 11);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 11, buf, 1000,
                               NULL, 0), 1);
    cr_assert_eq(atomic_load(&fx.shm->to_engine.head), 3 * (uint64_t) size);
    cr_assert_eq(read_one(&fx.ring, 11, &woke), 1000);

    fixture_free(&fx);
}


Test(ring, corrupt_length_is_eproto)
{
    fixture_t        fx;
    tg_frame_view_t  view;
    tg_frame_t      *f;
    int              err;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 1, "x", 1, NULL,
                               0), 1);
    f = (tg_frame_t *) fx.ring.data;
    f->len = 4096;
    cr_assert_null(tg_ring_peek(&fx.ring, &view, &err));
    cr_assert_eq(err, -EPROTO);
    fixture_free(&fx);
}


/* Counters a peer scribbled on (fuzz_ring found these): a tail gap that
 * would skip past head, head behind tail or more than a ring ahead,
 * counters not 8-aligned.  Each is -EPROTO at once, never a consumer
 * walking on until 2^64 bytes wrap. */
Test(ring, scribbled_counters_are_eproto)
{
    static const uint64_t  bad[][2] = {
        { TG_RING_MIN_SIZE - 8, TG_RING_MIN_SIZE - 4 },   /* gap past head */
        { 4096, 0 },                                      /* head behind */
        { 0, 2 * (uint64_t) TG_RING_MIN_SIZE },           /* too far ahead */
        { 3, 64 },                                        /* unaligned */
        { 0, 67 }
    };
    fixture_t        fx;
    tg_frame_view_t  view;
    size_t           i;
    int              err;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    memset(fx.ring.data, 0, TG_RING_MIN_SIZE);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        atomic_store(&fx.shm->to_engine.tail, bad[i][0]);
        atomic_store(&fx.shm->to_engine.head, bad[i][1]);
        err = 0;
        cr_assert_null(tg_ring_peek(&fx.ring, &view, &err), "case %zu", i);
        cr_assert_eq(err, -EPROTO, "case %zu", i);
    }
    fixture_free(&fx);
}


/* The length is read once: a producer rewriting it after the check
 * changes neither the frame the consumer reads nor how far it moves. */
Test(ring, length_read_once)
{
    fixture_t              fx;
    tg_frame_view_t        view;
    const tg_frame_view_t *v;
    tg_frame_t            *f;
    int                    err;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    cr_assert_eq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 1, "abc", 3, NULL,
                               0), 1);
    cr_assert_geq(tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, 2, "de", 2, NULL,
                                0), 0);
    v = tg_ring_peek(&fx.ring, &view, &err);
    cr_assert_not_null(v);
    f = (tg_frame_t *) fx.ring.data;
    f->len = TG_RING_MIN_SIZE * 4;
    cr_assert_eq(v->len, 3);
    cr_assert_eq(tg_ring_consume(&fx.ring, v), 0);
    v = tg_ring_peek(&fx.ring, &view, &err);
    cr_assert_not_null(v, "err %d", err);
    cr_assert_eq(v->id, 2);
    cr_assert_eq(memcmp(tg_frame_payload(v), "de", 2), 0);
    fixture_free(&fx);
}


Test(ring, wraps_many_times_with_mixed_sizes)
{
    fixture_t  fx;
    uint8_t   *buf;
    uint32_t   max;
    uint64_t   w = 0, r = 0;
    size_t     len;
    int        rc, woke;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    max = tg_ring_max_payload(&fx.ring);
    buf = malloc(max);
    cr_assert_not_null(buf);

    while (w < 20000) {
        len = (w * 2654435761u) % (max + 1);
        fill(buf, len, w);
        rc = tg_ring_write(&fx.ring, TG_FRAME_DATA, 0, w, buf, len, NULL, 0);
        if (rc == -EAGAIN) {
            /* Drain a few, then retry the same frame. */
            for (int k = 0; k < 3 && r < w; k++) {
                read_one(&fx.ring, r++, &woke);
            }
            continue;
        }
        cr_assert_geq(rc, 0);
        w++;
    }
    while (r < w) {
        read_one(&fx.ring, r++, &woke);
    }
    cr_assert_gt(atomic_load(&fx.shm->to_engine.head),
                 (uint64_t) 50 * TG_RING_MIN_SIZE);

    free(buf);
    fixture_free(&fx);
}


/*
 * Two threads, doorbells as eventfds.  The producer rings the consumer
 * only when tg_ring_write says so, and sleeps on its own doorbell after
 * -EAGAIN; the consumer sleeps when the ring is empty and rings the
 * producer only when tg_ring_consume says so.  A missed wake-up would
 * leave one side asleep: the poll timeout catches it as a failure.
 */
#define STRESS_FRAMES  200000

typedef struct {
    tg_ring_t  *ring;
    int         to_consumer;    /* eventfd */
    int         to_producer;    /* eventfd */
    uint64_t    doorbells_sent;
    uint64_t    waits;
    int         failed;
} stress_t;


static int
sleep_on(int fd)
{
    struct pollfd  pfd = { .fd = fd, .events = POLLIN };
    uint64_t       v;

    if (poll(&pfd, 1, 5000) != 1) {
        return -1;
    }
    if (read(fd, &v, sizeof(v)) != sizeof(v)) {
        return -1;
    }
    return 0;
}


static void
ring_bell(int fd)
{
    uint64_t  one = 1;

    if (write(fd, &one, sizeof(one)) != sizeof(one)) {
        abort();
    }
}


static void *
producer(void *arg)
{
    stress_t  *st = arg;
    uint8_t    buf[3000];
    uint64_t   id;
    size_t     len;
    int        rc;

    for (id = 0; id < STRESS_FRAMES; ) {
        len = (id * 7919) % sizeof(buf);
        fill(buf, len, id);
        rc = tg_ring_write(st->ring, TG_FRAME_DATA, 0, id, buf, len, NULL,
                           0);
        if (rc == -EAGAIN) {
            st->waits++;
            if (sleep_on(st->to_producer) != 0) {
                st->failed = 1;
                return NULL;
            }
            continue;
        }
        if (rc == 1) {
            st->doorbells_sent++;
            ring_bell(st->to_consumer);
        }
        id++;
    }
    return NULL;
}


Test(ring, two_thread_stress_with_doorbells, .timeout = 60)
{
    fixture_t    fx;
    stress_t     st;
    pthread_t    th;
    tg_frame_view_t        view;
    const tg_frame_view_t *f;
    uint64_t     expect = 0, consumer_sleeps = 0;
    int          err;

    fixture_init(&fx, TG_RING_MIN_SIZE);
    memset(&st, 0, sizeof(st));
    st.ring = &fx.ring;
    st.to_consumer = eventfd(0, EFD_CLOEXEC);
    st.to_producer = eventfd(0, EFD_CLOEXEC);
    cr_assert(st.to_consumer >= 0 && st.to_producer >= 0);

    cr_assert_eq(pthread_create(&th, NULL, producer, &st), 0);

    while (expect < STRESS_FRAMES) {
        f = tg_ring_peek(&fx.ring, &view, &err);
        cr_assert_eq(err, 0);
        if (f == NULL) {
            consumer_sleeps++;
            cr_assert_eq(sleep_on(st.to_consumer), 0,
                         "consumer missed a doorbell at frame %llu",
                         (unsigned long long) expect);
            continue;
        }
        cr_assert_eq(f->id, expect);
        cr_assert_eq(f->len, (expect * 7919) % 3000);
        cr_assert(check(tg_frame_payload(f), f->len, expect));
        expect++;
        if (tg_ring_consume(&fx.ring, f)) {
            ring_bell(st.to_producer);
        }
    }

    pthread_join(th, NULL);
    cr_assert_eq(st.failed, 0, "producer missed a doorbell");
    /* Every consumer sleep was ended by a doorbell, so there were at
     * least as many doorbells as sleeps, and far fewer than frames. */
    cr_assert_geq(st.doorbells_sent, consumer_sleeps);
    cr_assert_lt(st.doorbells_sent, STRESS_FRAMES);
    cr_assert_null(tg_ring_peek(&fx.ring, &view, &err));

    close(st.to_consumer);
    close(st.to_producer);
    fixture_free(&fx);
}
