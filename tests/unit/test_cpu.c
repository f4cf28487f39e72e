/*
 * util/cpu.c: where the event loop runs for a set of workers
 * (tg_cpu_follow), the list form of a set, and moving a thread to the
 * base and back.
 */

#include <criterion/criterion.h>
#include <string.h>

#include "util/cpu.h"

static cpu_set_t
tg_test_set(const int *cpus, int n)
{
    cpu_set_t  s;
    int        i;

    CPU_ZERO(&s);
    for (i = 0; i < n; i++) {
        CPU_SET(cpus[i], &s);
    }
    return s;
}


Test(cpu, follows_the_workers_within_the_base)
{
    int        b[] = { 0, 1, 2, 3 }, w[] = { 1, 3, 7 };
    cpu_set_t  base = tg_test_set(b, 4), workers = tg_test_set(w, 3), out;

    cr_assert_eq(tg_cpu_follow(&base, &workers, 1, &out), 2);
    cr_assert(CPU_ISSET(1, &out) && CPU_ISSET(3, &out));
    cr_assert(!CPU_ISSET(0, &out) && !CPU_ISSET(7, &out),
              "CPU 7 is outside the engine's own set");
}


Test(cpu, keeps_the_base_when_nothing_useful_is_known)
{
    int        b[] = { 0, 1 }, w[] = { 4, 5 };
    cpu_set_t  base = tg_test_set(b, 2), workers = tg_test_set(w, 2), out;
    cpu_set_t  none;

    /* the workers' CPUs are all outside the base */
    cr_assert_eq(tg_cpu_follow(&base, &workers, 1, &out), 2);
    cr_assert(CPU_EQUAL(&out, &base));

    /* no worker, or one whose set could not be read */
    CPU_ZERO(&none);
    cr_assert_eq(tg_cpu_follow(&base, &none, 0, &out), 2);
    cr_assert(CPU_EQUAL(&out, &base));
    cr_assert_eq(tg_cpu_follow(&base, &workers, 0, &out), 2);
    cr_assert(CPU_EQUAL(&out, &base));
}


Test(cpu, lists_ranges_and_singles)
{
    int        c[] = { 0, 1, 2, 3, 6, 8, 9 };
    cpu_set_t  s = tg_test_set(c, 7), none;
    char       out[64], tiny[6];

    tg_cpu_list(&s, out, sizeof(out));
    cr_assert_str_eq(out, "0-3,6,8-9");

    CPU_ZERO(&none);
    tg_cpu_list(&none, out, sizeof(out));
    cr_assert_str_eq(out, "none");

    /* cut to size, still terminated */
    tg_cpu_list(&s, tiny, sizeof(tiny));
    cr_assert_eq(strlen(tiny), sizeof(tiny) - 1);
    cr_assert_eq(strncmp(tiny, "0-3,6", 5), 0);
}


Test(cpu, enter_base_moves_a_narrowed_thread_and_leave_restores_it)
{
    cpu_set_t  now, one, saved;
    int        moved, first = -1, i;

    cr_assert_eq(tg_cpu_save_base(), 0);
    cr_assert_not_null(tg_cpu_base());
    for (i = 0; i < CPU_SETSIZE; i++) {
        if (CPU_ISSET(i, tg_cpu_base())) {
            first = i;
            break;
        }
    }
    cr_assert_geq(first, 0);

    /* on the base already: nothing to move */
    cr_assert_eq(tg_cpu_enter_base(&saved), 0);

    CPU_ZERO(&one);
    CPU_SET(first, &one);
    cr_assert_eq(sched_setaffinity(0, sizeof(one), &one), 0);
    moved = tg_cpu_enter_base(&saved);
    cr_assert_eq(sched_getaffinity(0, sizeof(now), &now), 0);
    cr_assert(CPU_EQUAL(&now, tg_cpu_base()));
    if (CPU_COUNT(tg_cpu_base()) > 1) {
        cr_assert_eq(moved, 1);
    }

    tg_cpu_leave_base(&saved, moved);
    cr_assert_eq(sched_getaffinity(0, sizeof(now), &now), 0);
    cr_assert(CPU_EQUAL(&now, &one) || !moved);
    (void) sched_setaffinity(0, sizeof(*tg_cpu_base()), tg_cpu_base());
}
