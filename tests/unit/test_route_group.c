/*
 * policy=grouped (engine/route/group.c): which waiting trace goes to
 * which backend next.  Backends are built by hand; a release is played
 * as the engine plays it (started, serve).
 */

#include <criterion/criterion.h>
#include <string.h>

#include "route/group.h"
#include "route/pool.h"

static tg_backend_stats_t  st[2];
static tg_backend_t        be[2];
static tg_backend_t       *members[2];
static tg_pool_t           pool;

static void
setup(void)
{
    size_t  i;

    memset(st, 0, sizeof(st));
    memset(be, 0, sizeof(be));
    memset(&pool, 0, sizeof(pool));
    for (i = 0; i < 2; i++) {
        be[i].name = i ? "b1" : "b0";
        be[i].max_inflight = 2;
        be[i].stats = &st[i];
        members[i] = &be[i];
    }
    pool.name = "p";
    pool.backends = members;
    pool.nbackends = 1;
    pool.policy = TG_POOL_GROUPED;
    pool.window_ms = 1000;
}

TestSuite(route_group, .init = setup);

static void
release(tg_backend_t *b, const tg_group_wait_t *w)
{
    tg_backend_started(b);
    tg_backend_serve(b, w->model);
}

/* Runs releases until none may go; returns how many went, with the
 * model each went for in order (up to 8). */
static size_t
drain(tg_group_wait_t **w, size_t *n, uint64_t now, const char **order,
    uint64_t *wake)
{
    tg_backend_t  *to;
    size_t         count, i;
    long           k;

    count = 0;
    for ( ;; ) {
        k = tg_group_next(w, *n, now, &to, wake);
        if (k < 0) {
            return count;
        }
        cr_assert_not_null(to);
        release(to, w[k]);
        if (count < 8) {
            order[count] = w[k]->model;
        }
        count++;
        for (i = (size_t) k; i + 1 < *n; i++) {
            w[i] = w[i + 1];
        }
        (*n)--;
    }
}

Test(route_group, same_model_first_then_window)
{
    tg_group_wait_t   a1 = { &pool, "A", 0 }, b1 = { &pool, "B", 10 },
                      a2 = { &pool, "A", 20 };
    tg_group_wait_t  *w[3] = { &b1, &a1, &a2 };
    const char       *order[8];
    uint64_t          wake;
    size_t            n = 3;

    /* The backend serves A with one slot free: the A waiter goes first,
     * although B waited longer; then the backend is full. */
    tg_backend_serve(&be[0], "A");
    st[0].in_flight = 1;
    w[0] = &b1; w[1] = &a1; w[2] = &a2;
    cr_assert_eq(drain(w, &n, 30, order, &wake), 1);
    cr_assert_str_eq(order[0], "A");
    cr_assert_eq(n, 2);
    cr_assert_eq(wake, 1010, "B is held by its window until 10 + 1000");

    /* A slot frees: the other A goes, B still waits for its window. */
    st[0].in_flight--;
    cr_assert_eq(drain(w, &n, 40, order, &wake), 1);
    cr_assert_str_eq(order[0], "A");
    cr_assert_eq(n, 1);

    st[0].in_flight--;
    cr_assert_eq(drain(w, &n, 50, order, &wake), 0);
    cr_assert_eq(wake, 1010, "B's window ends at 10 + 1000");

    /* Its window over but the backend full, B waits for a slot (no
     * timer); when one frees it goes to the busy backend: a swap. */
    st[0].in_flight = 2;
    cr_assert_eq(drain(w, &n, 1010, order, &wake), 0);
    cr_assert_eq(wake, UINT64_MAX);
    st[0].in_flight = 1;
    cr_assert_eq(drain(w, &n, 1010, order, &wake), 1);
    cr_assert_str_eq(be[0].stats->serving, "B");
}

Test(route_group, idle_backend_switches_to_oldest_and_takes_its_group)
{
    tg_group_wait_t   b1 = { &pool, "B", 0 }, c1 = { &pool, "C", 1 },
                      b2 = { &pool, "B", 2 };
    tg_group_wait_t  *w[3] = { &b1, &c1, &b2 };
    const char       *order[8];
    uint64_t          wake;
    size_t            n = 3;

    /* Idle, serving A, nobody wants A: switch to the oldest's model (B)
     * and both Bs go before C. */
    tg_backend_serve(&be[0], "A");
    cr_assert_eq(drain(w, &n, 5, order, &wake), 2);
    cr_assert_str_eq(order[0], "B");
    cr_assert_str_eq(order[1], "B");
    cr_assert_eq(n, 1);
    cr_assert_str_eq(w[0]->model, "C");
    cr_assert_eq(wake, 1001);
}

Test(route_group, two_backends_keep_their_models)
{
    tg_group_wait_t   a1 = { &pool, "A", 0 }, b1 = { &pool, "B", 0 },
                      a2 = { &pool, "A", 0 }, b2 = { &pool, "B", 0 };
    tg_group_wait_t  *w[4] = { &a1, &b1, &a2, &b2 };
    const char       *order[8];
    uint64_t          wake;
    size_t            n = 4;

    pool.nbackends = 2;
    tg_backend_serve(&be[0], "B");
    tg_backend_serve(&be[1], "A");
    st[0].in_flight = 1;
    st[1].in_flight = 1;
    cr_assert_eq(drain(w, &n, 0, order, &wake), 2);
    cr_assert_str_eq(be[0].stats->serving, "B");
    cr_assert_str_eq(be[1].stats->serving, "A");
    cr_assert_eq(st[0].in_flight, 2);
    cr_assert_eq(st[1].in_flight, 2);
    cr_assert_eq(n, 2, "both full: the rest wait");
}

Test(route_group, zero_window_and_unlimited_backend)
{
    tg_group_wait_t   b1 = { &pool, "B", 0 }, a1 = { &pool, "A", 0 };
    tg_group_wait_t  *w[2] = { &b1, &a1 };
    const char       *order[8];
    uint64_t          wake;
    size_t            n = 2;

    /* window 0 holds nobody; without max_inflight nobody is full. */
    pool.window_ms = 0;
    be[0].max_inflight = 0;
    tg_backend_serve(&be[0], "A");
    st[0].in_flight = 5;
    cr_assert_eq(drain(w, &n, 0, order, &wake), 2);
    cr_assert_str_eq(order[0], "A", "the served model still goes first");
    cr_assert_str_eq(order[1], "B");
}

Test(route_group, other_policy_waits_only_for_a_slot)
{
    /* A trace of a least_inflight pool waits only when its request is
     * wider than the pool's free slots (core/trace.c): no window, no
     * model affinity; the least loaded backend with a free slot, oldest
     * first, as soon as one frees. */
    tg_group_wait_t   b1 = { &pool, "B", 0 }, a1 = { &pool, "A", 5 },
                      b2 = { &pool, "B", 9 };
    tg_group_wait_t  *w[3] = { &b1, &a1, &b2 };
    const char       *order[8];
    uint64_t          wake;
    size_t            n = 3;

    pool.policy = TG_POOL_LEAST_INFLIGHT;
    pool.nbackends = 2;
    st[0].in_flight = 2;
    st[1].in_flight = 2;
    tg_backend_serve(&be[0], "A");
    tg_backend_serve(&be[1], "A");
    cr_assert_eq(drain(w, &n, 10, order, &wake), 0, "both full");
    cr_assert_eq(wake, UINT64_MAX, "no window to wake for");
    st[1].in_flight = 1;
    cr_assert_eq(drain(w, &n, 10, order, &wake), 1);
    cr_assert_str_eq(order[0], "B", "the oldest, though A is served");
    cr_assert_eq(st[1].in_flight, 2);
    st[0].in_flight = 0;
    cr_assert_eq(drain(w, &n, 10, order, &wake), 2);
    cr_assert_str_eq(order[0], "A");
    cr_assert_str_eq(order[1], "B");
    cr_assert_eq(st[0].in_flight, 2);
}
