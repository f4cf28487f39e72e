/*
 * util/queue.h: order, O(1) removal from any place, the empty cases and
 * the iteration idioms its header documents.
 */

#include <criterion/criterion.h>

#include "util/queue.h"

typedef struct {
    int          value;
    tg_queue_t   link;
} tg_test_item_t;

#define TG_TEST_N  8


/* Writes the values of h, head to last, into out; returns their count.
 * A const queue: the accessors walk one. */
static int
tg_test_values(const tg_queue_t *h, int *out, int max)
{
    int                n;
    const tg_queue_t  *q;

    n = 0;
    for (q = tg_queue_head(h); q != tg_queue_sentinel(h);
         q = tg_queue_next(q))
    {
        cr_assert_lt(n, max, "more elements than were inserted");
        out[n++] = tg_queue_data(q, tg_test_item_t, link)->value;
    }
    return n;
}


/* The same walk backwards, last to head. */
static int
tg_test_values_back(const tg_queue_t *h, int *out, int max)
{
    int                n;
    const tg_queue_t  *q;

    n = 0;
    for (q = tg_queue_last(h); q != tg_queue_sentinel(h);
         q = tg_queue_prev(q))
    {
        cr_assert_lt(n, max, "more elements than were inserted");
        out[n++] = tg_queue_data(q, tg_test_item_t, link)->value;
    }
    return n;
}


static void
tg_test_fill(tg_queue_t *h, tg_test_item_t *items, int n)
{
    int  i;

    tg_queue_init(h);
    for (i = 0; i < n; i++) {
        items[i].value = i;
        tg_queue_init(&items[i].link);
        tg_queue_insert_tail(h, &items[i].link);
    }
}


Test(queue, empty)
{
    int             out[1];
    tg_queue_t      h;
    tg_test_item_t  x;

    tg_queue_init(&h);
    cr_assert(tg_queue_empty(&h));
    cr_assert_eq(tg_queue_head(&h), tg_queue_sentinel(&h));
    cr_assert_eq(tg_queue_last(&h), tg_queue_sentinel(&h));
    cr_assert_eq(tg_test_values(&h, out, 1), 0);
    cr_assert_eq(tg_test_values_back(&h, out, 1), 0);

    /* An element alone, then removed: the queue is empty again, and the
     * element in none. */
    x.value = 7;
    tg_queue_init(&x.link);
    cr_assert_not(tg_queue_linked(&x.link));
    tg_queue_insert_tail(&h, &x.link);
    cr_assert_not(tg_queue_empty(&h));
    cr_assert(tg_queue_linked(&x.link));
    cr_assert_eq(tg_queue_head(&h), &x.link);
    cr_assert_eq(tg_queue_last(&h), &x.link);
    cr_assert_eq(tg_queue_data(tg_queue_head(&h), tg_test_item_t, link), &x);
    tg_queue_remove(&x.link);
    cr_assert(tg_queue_empty(&h));
    cr_assert_not(tg_queue_linked(&x.link));

    /* Removing an unlinked element changes nothing. */
    tg_queue_remove(&x.link);
    cr_assert(tg_queue_empty(&h));
    cr_assert_not(tg_queue_linked(&x.link));
}


Test(queue, fifo_and_lifo)
{
    int             i, n, out[TG_TEST_N];
    tg_queue_t      h;
    tg_test_item_t  items[TG_TEST_N];

    tg_test_fill(&h, items, TG_TEST_N);
    n = tg_test_values(&h, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N);
    for (i = 0; i < n; i++) {
        cr_assert_eq(out[i], i, "insert_tail keeps insertion order");
    }
    n = tg_test_values_back(&h, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N);
    for (i = 0; i < n; i++) {
        cr_assert_eq(out[i], TG_TEST_N - 1 - i);
    }

    tg_queue_init(&h);
    for (i = 0; i < TG_TEST_N; i++) {
        tg_queue_init(&items[i].link);
        tg_queue_insert_head(&h, &items[i].link);
    }
    n = tg_test_values(&h, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N);
    for (i = 0; i < n; i++) {
        cr_assert_eq(out[i], TG_TEST_N - 1 - i, "insert_head reverses");
    }
}


Test(queue, remove_anywhere)
{
    int             n, out[TG_TEST_N];
    tg_queue_t      h;
    tg_test_item_t  items[TG_TEST_N];

    tg_test_fill(&h, items, TG_TEST_N);

    tg_queue_remove(&items[0].link);                /* the head */
    tg_queue_remove(&items[TG_TEST_N - 1].link);    /* the last */
    tg_queue_remove(&items[3].link);                /* the middle */

    n = tg_test_values(&h, out, TG_TEST_N);
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(out, ((int []) { 1, 2, 4, 5, 6 }), 5 * sizeof(int));
    n = tg_test_values_back(&h, out, TG_TEST_N);
    cr_assert_eq(n, 5);
    cr_assert_arr_eq(out, ((int []) { 6, 5, 4, 2, 1 }), 5 * sizeof(int));
    cr_assert_eq(tg_queue_head(&h), &items[1].link);
    cr_assert_eq(tg_queue_last(&h), &items[6].link);

    /* A removed element goes back in at the tail. */
    tg_queue_insert_tail(&h, &items[3].link);
    n = tg_test_values(&h, out, TG_TEST_N);
    cr_assert_eq(n, 6);
    cr_assert_arr_eq(out, ((int []) { 1, 2, 4, 5, 6, 3 }), 6 * sizeof(int));
}


/* The header's idiom: the next link is taken before the body removes the
 * current one. */
Test(queue, remove_while_iterating)
{
    int             n, out[TG_TEST_N];
    tg_queue_t      h, *q, *next;
    tg_test_item_t  *x, items[TG_TEST_N];

    tg_test_fill(&h, items, TG_TEST_N);
    for (q = tg_queue_head(&h); q != tg_queue_sentinel(&h); q = next) {
        next = tg_queue_next(q);
        x = tg_queue_data(q, tg_test_item_t, link);
        if (x->value % 2 == 0) {
            tg_queue_remove(q);
        }
    }
    n = tg_test_values(&h, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N / 2);
    cr_assert_arr_eq(out, ((int []) { 1, 3, 5, 7 }), 4 * sizeof(int));

    /* Removing every element empties the queue. */
    for (q = tg_queue_head(&h); q != tg_queue_sentinel(&h); q = next) {
        next = tg_queue_next(q);
        tg_queue_remove(q);
    }
    cr_assert(tg_queue_empty(&h));
    cr_assert_eq(tg_test_values(&h, out, TG_TEST_N), 0);
}


/* The other idiom: pop from the head until empty, FIFO order, while the
 * body removes other elements (here: the one after it). */
Test(queue, pop_until_empty)
{
    int             n, seen[TG_TEST_N];
    tg_queue_t      h, *q;
    tg_test_item_t  *x, items[TG_TEST_N];

    tg_test_fill(&h, items, TG_TEST_N);
    n = 0;
    while (!tg_queue_empty(&h)) {
        q = tg_queue_head(&h);
        tg_queue_remove(q);
        x = tg_queue_data(q, tg_test_item_t, link);
        seen[n++] = x->value;
        if (x->value + 1 < TG_TEST_N) {
            tg_queue_remove(&items[x->value + 1].link);
        }
    }
    cr_assert_eq(n, TG_TEST_N / 2);
    cr_assert_arr_eq(seen, ((int []) { 0, 2, 4, 6 }), 4 * sizeof(int));
    cr_assert(tg_queue_empty(&h));
}


/* tg_queue_add: one queue moved, in order, behind another; the moved one
 * is left empty and either side may be empty. */
Test(queue, add)
{
    int             i, n, out[TG_TEST_N];
    tg_queue_t      a, b;
    tg_test_item_t  items[TG_TEST_N];

    tg_test_fill(&a, items, TG_TEST_N);
    tg_queue_init(&b);
    for (i = 5; i < TG_TEST_N; i++) {
        tg_queue_remove(&items[i].link);
        tg_queue_insert_tail(&b, &items[i].link);
    }
    tg_queue_add(&a, &b);
    cr_assert(tg_queue_empty(&b));
    n = tg_test_values(&a, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N);
    for (i = 0; i < n; i++) {
        cr_assert_eq(out[i], i);
    }
    n = tg_test_values_back(&a, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N);
    cr_assert_eq(out[0], TG_TEST_N - 1);

    /* An empty queue added changes nothing. */
    tg_queue_add(&a, &b);
    cr_assert_eq(tg_test_values(&a, out, TG_TEST_N), TG_TEST_N);

    /* Everything moved into an empty queue. */
    tg_queue_add(&b, &a);
    cr_assert(tg_queue_empty(&a));
    n = tg_test_values(&b, out, TG_TEST_N);
    cr_assert_eq(n, TG_TEST_N);
    for (i = 0; i < n; i++) {
        cr_assert_eq(out[i], i);
    }
    cr_assert_eq(tg_queue_last(&b), &items[TG_TEST_N - 1].link);
}
