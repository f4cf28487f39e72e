/*
 * An intrusive doubly linked circular queue, as nginx's ngx_queue_t and
 * libuv's uv__queue: the caller embeds a tg_queue_t link in its own
 * struct and keeps one more tg_queue_t as the list's head (the sentinel).
 * Nothing is allocated; insertion and removal are O(1).
 *
 * An empty queue is a head whose links point at itself.  A removed link
 * is left pointing at itself too, so tg_queue_linked() tells whether an
 * element is in a queue and removing it twice is harmless; an element
 * whose link may be removed before it was ever inserted must be
 * initialised with tg_queue_init() (a zeroed link is neither).
 *
 * Iterating, head to last:
 *
 *     for (q = tg_queue_head(h); q != tg_queue_sentinel(h);
 *          q = tg_queue_next(q))
 *     {
 *         x = tg_queue_data(q, my_t, link);
 *     }
 *
 * Iterating while the body may remove the current element: take the next
 * link before the body runs.
 *
 *     for (q = tg_queue_head(h); q != tg_queue_sentinel(h); q = n) {
 *         n = tg_queue_next(q);
 *         x = tg_queue_data(q, my_t, link);
 *         tg_queue_remove(q);
 *     }
 *
 * When the body may remove other elements as well (a callback that
 * closes its neighbours), the saved next may be gone: take elements one
 * at a time from the head instead, after removing each first.
 *
 *     while (!tg_queue_empty(h)) {
 *         q = tg_queue_head(h);
 *         tg_queue_remove(q);
 *         x = tg_queue_data(q, my_t, link);
 *     }
 */

#ifndef TG_QUEUE_H
#define TG_QUEUE_H

#include <stddef.h>

typedef struct tg_queue_s  tg_queue_t;

struct tg_queue_s {
    tg_queue_t  *prev;
    tg_queue_t  *next;
};

/* The struct of type that holds the link q in its field link. */
#define tg_queue_data(q, type, link)                                          \
    ((type *) ((char *) (q) - offsetof(type, link)))

/* An empty queue, or an element in none. */
static inline void
tg_queue_init(tg_queue_t *q)
{
    q->prev = q;
    q->next = q;
}

static inline int
tg_queue_empty(const tg_queue_t *h)
{
    return h->next == h;
}

/* Whether an initialised element is in a queue. */
static inline int
tg_queue_linked(const tg_queue_t *x)
{
    return x->next != x;
}

/* The end mark of an iteration: the head itself.  The accessors take a
 * const queue, so that a const owner can be walked too. */
static inline const tg_queue_t *
tg_queue_sentinel(const tg_queue_t *h)
{
    return h;
}

/* The first element, or the sentinel when empty. */
static inline tg_queue_t *
tg_queue_head(const tg_queue_t *h)
{
    return h->next;
}

/* The last element, or the sentinel when empty. */
static inline tg_queue_t *
tg_queue_last(const tg_queue_t *h)
{
    return h->prev;
}

static inline tg_queue_t *
tg_queue_next(const tg_queue_t *q)
{
    return q->next;
}

static inline tg_queue_t *
tg_queue_prev(const tg_queue_t *q)
{
    return q->prev;
}

/* Puts x first. */
static inline void
tg_queue_insert_head(tg_queue_t *h, tg_queue_t *x)
{
    x->next = h->next;
    x->next->prev = x;
    x->prev = h;
    h->next = x;
}

/* Puts x last: FIFO order with tg_queue_head(). */
static inline void
tg_queue_insert_tail(tg_queue_t *h, tg_queue_t *x)
{
    x->prev = h->prev;
    x->prev->next = x;
    x->next = h;
    h->prev = x;
}

/* Takes x out of its queue and leaves it linked to itself. */
static inline void
tg_queue_remove(tg_queue_t *x)
{
    x->next->prev = x->prev;
    x->prev->next = x->next;
    x->prev = x;
    x->next = x;
}

/* Moves every element of n, in order, behind the last of h; n is left
 * empty. */
static inline void
tg_queue_add(tg_queue_t *h, tg_queue_t *n)
{
    if (tg_queue_empty(n)) {
        return;
    }
    h->prev->next = n->next;
    n->next->prev = h->prev;
    h->prev = n->prev;
    h->prev->next = h;
    tg_queue_init(n);
}

#endif /* TG_QUEUE_H */
