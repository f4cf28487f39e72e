/*
 * thinkgate shared-memory rings: the transport between an nginx worker and
 * the engine.
 *
 * Each registered worker shares one memory region with the engine (a memfd
 * created by the worker and passed with SCM_RIGHTS).  The region holds a
 * tg_shm_t header followed by two single-producer/single-consumer rings:
 *
 *     to_engine: written by the worker, read by the engine
 *     to_worker: written by the engine, read by the worker
 *
 * A ring carries frames (tg_frame_t header + payload, padded to 8 bytes).  A
 * frame never wraps: when it does not fit before the end of the data area,
 * the producer fills the tail with a PAD frame (or, when fewer than
 * sizeof(tg_frame_t) bytes remain, leaves them; the consumer skips them) and
 * writes the frame at offset 0.
 *
 * Positions (head, tail) are byte counters that only grow; the offset in the
 * data area is position & (size - 1).  size is a power of two.
 *
 * Wake-ups ("doorbells") travel over the unix socket or a pair of eventfds
 * (protocol.h), never through the ring.  Two rules, both Dekker-style with
 * sequentially consistent atomics:
 *
 *   1. A producer rings when its write made the ring non-empty: after
 *      publishing head it reads tail; tail == old head means the consumer
 *      had drained everything and may be asleep.  A consumer, after
 *      publishing tail, reloads head before it sleeps.
 *   2. A producer that finds no room sets producer_waiting and re-checks;
 *      a consumer that frees room and sees producer_waiting clears it and
 *      rings.
 *
 * Everything here is header-only so that the nginx module, the engine and
 * the tests share one implementation.
 */

#ifndef THINKGATE_RING_H
#define THINKGATE_RING_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TG_SHM_MAGIC        0x48534754u     /* "TGSH" */
/* 2: tg_register_t.flags and eventfd doorbells, the reply's flags */
#define TG_PROTO_VERSION    2u

#define TG_RING_MIN_SIZE    (64u * 1024)
#define TG_RING_MAX_SIZE    (64u * 1024 * 1024)
#define TG_RING_ALIGN       8u


/* Header of every frame in a ring.  Little-endian host order (both ends
 * run on one machine). */
typedef struct {
    uint32_t    len;        /* payload bytes that follow this header */
    uint16_t    type;       /* TG_FRAME_* */
    uint16_t    flags;      /* TG_FRAME_F_* */
    uint64_t    id;         /* request id, chosen by the worker, unique per
                               registration; 0 for PAD */
} tg_frame_t;


/*
 * A frame as the consumer sees it: the header read once from shared
 * memory into the consumer's own copy, and where its payload starts.  The
 * producer is another process; had the consumer read the length again
 * after checking it, a producer rewriting it in between could make it
 * read past the ring.  Everything after tg_ring_peek() uses this copy.
 */
typedef struct {
    uint32_t        len;
    uint16_t        type;
    uint16_t        flags;
    uint64_t        id;
    const uint8_t  *payload;    /* len bytes in the ring */
} tg_frame_view_t;


/* Control block of one ring; each counter has its own cache line. */
typedef struct {
    _Alignas(64) _Atomic uint64_t  head;    /* bytes produced, ever */
    _Alignas(64) _Atomic uint64_t  tail;    /* bytes consumed, ever */
    _Alignas(64) _Atomic uint32_t  producer_waiting;
    uint32_t                       size;    /* data bytes, power of two */
    uint32_t                       data_off; /* from the start of tg_shm_t */
} tg_ring_ctl_t;


/* The start of the shared region. */
typedef struct {
    uint32_t        magic;          /* TG_SHM_MAGIC */
    uint32_t        version;        /* TG_PROTO_VERSION */
    uint32_t        ring_size;      /* each ring's data size */
    uint32_t        reserved;
    tg_ring_ctl_t   to_engine;
    tg_ring_ctl_t   to_worker;
} tg_shm_t;


/* A producer or consumer's view of one ring: the control block and the
 * data area, both inside the mapping, and the size as checked when the
 * region was accepted.  The size is kept here, not re-read from shared
 * memory, so that a peer scribbling on the control block can never make
 * this side index outside the data area. */
typedef struct {
    tg_ring_ctl_t  *ctl;
    uint8_t        *data;
    uint32_t        size;
} tg_ring_t;


#define tg_ring_align(n)  (((n) + (TG_RING_ALIGN - 1)) & ~(uint64_t) 7)


/* Bytes the whole region needs for two rings of ring_size each. */
static inline size_t
tg_shm_size(uint32_t ring_size)
{
    return tg_ring_align(sizeof(tg_shm_t)) + 2 * (size_t) ring_size;
}


static inline int
tg_ring_size_valid(uint32_t ring_size)
{
    return ring_size >= TG_RING_MIN_SIZE && ring_size <= TG_RING_MAX_SIZE
           && (ring_size & (ring_size - 1)) == 0;
}


/* Largest payload a single frame may carry: a quarter of the ring, so that
 * a frame always fits once the consumer catches up, whatever the wrap
 * position.  Longer messages are split with TG_FRAME_F_MORE. */
static inline uint32_t
tg_ring_max_payload(const tg_ring_t *ring)
{
    return ring->size / 4 - (uint32_t) sizeof(tg_frame_t);
}


/* Lays out a fresh region (the worker does this once after mapping it). */
static inline void
tg_shm_init(tg_shm_t *shm, uint32_t ring_size)
{
    uint32_t  off = (uint32_t) tg_ring_align(sizeof(tg_shm_t));

    memset(shm, 0, sizeof(*shm));
    shm->magic = TG_SHM_MAGIC;
    shm->version = TG_PROTO_VERSION;
    shm->ring_size = ring_size;
    shm->to_engine.size = ring_size;
    shm->to_engine.data_off = off;
    shm->to_worker.size = ring_size;
    shm->to_worker.data_off = off + ring_size;
}


/* Checks a region mapped by the engine before it trusts any offset in it.
 * Returns 0 or -EPROTO. */
static inline int
tg_shm_check(const tg_shm_t *shm, size_t mapped)
{
    uint32_t  off = (uint32_t) tg_ring_align(sizeof(tg_shm_t));

    if (mapped < sizeof(tg_shm_t) || shm->magic != TG_SHM_MAGIC
        || shm->version != TG_PROTO_VERSION
        || !tg_ring_size_valid(shm->ring_size)
        || mapped < tg_shm_size(shm->ring_size)
        || shm->to_engine.size != shm->ring_size
        || shm->to_worker.size != shm->ring_size
        || shm->to_engine.data_off != off
        || shm->to_worker.data_off != off + shm->ring_size)
    {
        return -EPROTO;
    }

    return 0;
}


static inline tg_ring_t
tg_shm_ring(tg_shm_t *shm, tg_ring_ctl_t *ctl)
{
    tg_ring_t  r;

    r.ctl = ctl;
    r.data = (uint8_t *) shm + ctl->data_off;
    r.size = ctl->size;
    return r;
}


/* Bytes a producer may still write, counting wasted tail space as used. */
static inline uint64_t
tg_ring__free(const tg_ring_t *ring, uint64_t head)
{
    uint64_t  tail = atomic_load(&ring->ctl->tail);

    return ring->size - (head - tail);
}


/*
 * Writes one frame whose payload is the concatenation of p1[l1] and p2[l2]
 * (either may be empty).
 *
 * Returns 1 when written and the consumer must be woken (doorbell),
 * 0 when written and no doorbell is needed, -EAGAIN when the ring has no
 * room now (producer_waiting is then set: the consumer rings once it frees
 * room), -EMSGSIZE when the payload exceeds tg_ring_max_payload().
 */
static inline int
tg_ring_write(tg_ring_t *ring, uint16_t type, uint16_t flags, uint64_t id,
    const void *p1, size_t l1, const void *p2, size_t l2)
{
    uint32_t     size = ring->size;
    uint64_t     head, old_head, need, off, room_to_end, pad;
    tg_frame_t  *f;
    int          retried;

    if (l1 + l2 > tg_ring_max_payload(ring)) {
        return -EMSGSIZE;
    }

    head = atomic_load_explicit(&ring->ctl->head, memory_order_relaxed);
    old_head = head;
    need = tg_ring_align(sizeof(tg_frame_t) + l1 + l2);
    off = head & (size - 1);
    room_to_end = size - off;
    pad = (need > room_to_end) ? room_to_end : 0;

    for (retried = 0; /* void */; retried = 1) {
        if (tg_ring__free(ring, head) >= need + pad) {
            break;
        }
        if (retried) {
            return -EAGAIN;
        }
        /* Rule 2: announce that we wait, then look once more, so that a
         * consumer that freed room in between is not missed. */
        atomic_store(&ring->ctl->producer_waiting, 1);
    }

    if (pad) {
        if (pad >= sizeof(tg_frame_t)) {
            f = (tg_frame_t *) (ring->data + off);
            f->len = (uint32_t) (pad - sizeof(tg_frame_t));
            f->type = 0;            /* TG_FRAME_PAD */
            f->flags = 0;
            f->id = 0;
        }
        head += pad;
        off = 0;
    }

    f = (tg_frame_t *) (ring->data + off);
    f->len = (uint32_t) (l1 + l2);
    f->type = type;
    f->flags = flags;
    f->id = id;
    if (l1) {
        memcpy((uint8_t *) (f + 1), p1, l1);
    }
    if (l2) {
        memcpy((uint8_t *) (f + 1) + l1, p2, l2);
    }

    /* Rule 1: publish, then see whether the consumer had drained it all. */
    atomic_store(&ring->ctl->head, head + need);

    return atomic_load(&ring->ctl->tail) == old_head ? 1 : 0;
}


/*
 * Fills *v with the next frame without consuming it and returns v, or
 * returns NULL when the ring is empty.  PAD frames and short tail gaps are
 * skipped (consumed) here.  The header is read from shared memory once,
 * into *v (see tg_frame_view_t); the payload stays valid until
 * tg_ring_consume().  A corrupt ring (a frame length past what the
 * producer published, counters not 8-aligned, head more than a ring
 * ahead of tail or behind it) makes it return NULL and set *err to
 * -EPROTO; the caller must then drop the registration.
 */
static inline const tg_frame_view_t *
tg_ring_peek(tg_ring_t *ring, tg_frame_view_t *v, int *err)
{
    uint32_t                    size = ring->size;
    uint64_t                    head, tail, off;
    const volatile tg_frame_t  *f;

    *err = 0;

    for ( ;; ) {
        tail = atomic_load_explicit(&ring->ctl->tail, memory_order_relaxed);
        head = atomic_load(&ring->ctl->head);

        if (head == tail) {
            return NULL;
        }

        /* Both counters live in shared memory, where the peer can write
         * anything.  An honest producer keeps them 8-aligned and head at
         * most one ring ahead; without these checks a tail gap skipped
         * past head (or head behind tail) would leave head - tail near
         * 2^64 and this loop consuming garbage for ever. */
        if (((head | tail) & (TG_RING_ALIGN - 1)) != 0
            || head - tail > size)
        {
            *err = -EPROTO;
            return NULL;
        }

        off = tail & (size - 1);

        if (size - off < sizeof(tg_frame_t)) {
            if (size - off > head - tail) {
                *err = -EPROTO;
                return NULL;
            }
            atomic_store(&ring->ctl->tail, tail + (size - off));
            continue;
        }

        f = (const volatile tg_frame_t *) (ring->data + off);
        v->len = f->len;
        v->type = f->type;
        v->flags = f->flags;
        v->id = f->id;
        v->payload = ring->data + off + sizeof(tg_frame_t);

        if (tg_ring_align(sizeof(tg_frame_t) + (uint64_t) v->len)
            > head - tail
            || off + sizeof(tg_frame_t) + v->len > size)
        {
            *err = -EPROTO;
            return NULL;
        }

        if (v->type == 0) {
            atomic_store(&ring->ctl->tail,
                         tail + tg_ring_align(sizeof(tg_frame_t) + v->len));
            continue;
        }

        return v;
    }
}


/* Releases the frame tg_ring_peek() returned, by the length it checked.
 * Returns 1 when the producer is waiting for room (ring its doorbell). */
static inline int
tg_ring_consume(tg_ring_t *ring, const tg_frame_view_t *v)
{
    uint64_t  tail;

    tail = atomic_load_explicit(&ring->ctl->tail, memory_order_relaxed);
    atomic_store(&ring->ctl->tail,
                 tail + tg_ring_align(sizeof(tg_frame_t) + v->len));

    if (atomic_load(&ring->ctl->producer_waiting)) {
        atomic_store(&ring->ctl->producer_waiting, 0);
        return 1;
    }

    return 0;
}


static inline const uint8_t *
tg_frame_payload(const tg_frame_view_t *v)
{
    return v->payload;
}


#endif /* THINKGATE_RING_H */
