/*
 * CPU affinity helpers (cpu.h).
 */

#include "util/cpu.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static cpu_set_t  tg__cpu_base;
static int        tg__cpu_base_set;
static __thread int  tg__cpu_thread_done;


int
tg_cpu_save_base(void)
{
    CPU_ZERO(&tg__cpu_base);
    if (sched_getaffinity(0, sizeof(tg__cpu_base), &tg__cpu_base) != 0) {
        return -errno;
    }
    tg__cpu_base_set = 1;
    return 0;
}


const cpu_set_t *
tg_cpu_base(void)
{
    return tg__cpu_base_set ? &tg__cpu_base : NULL;
}


void
tg_cpu_thread_base(void)
{
    if (tg__cpu_thread_done || !tg__cpu_base_set) {
        return;
    }
    tg__cpu_thread_done = 1;
    /* Best effort: a thread that stays on the loop's CPUs still works. */
    (void) sched_setaffinity(0, sizeof(tg__cpu_base), &tg__cpu_base);
}


int
tg_cpu_enter_base(cpu_set_t *saved)
{
    if (!tg__cpu_base_set
        || sched_getaffinity(0, sizeof(*saved), saved) != 0
        || CPU_EQUAL(saved, &tg__cpu_base))
    {
        return 0;
    }
    return sched_setaffinity(0, sizeof(tg__cpu_base), &tg__cpu_base) == 0;
}


void
tg_cpu_leave_base(const cpu_set_t *saved, int moved)
{
    if (moved) {
        (void) sched_setaffinity(0, sizeof(*saved), saved);
    }
}


int
tg_cpu_follow(const cpu_set_t *base, const cpu_set_t *workers, int known,
    cpu_set_t *out)
{
    if (known) {
        CPU_AND(out, base, workers);
        if (CPU_COUNT(out) > 0) {
            return CPU_COUNT(out);
        }
    }
    memcpy(out, base, sizeof(*out));
    return CPU_COUNT(out);
}


void
tg_cpu_list(const cpu_set_t *set, char *out, size_t size)
{
    size_t  len = 0;
    int     cpu, last, n;

    if (size == 0) {
        return;
    }
    out[0] = '\0';

    for (cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (!CPU_ISSET(cpu, set)) {
            continue;
        }
        last = cpu;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, set)) {
            last++;
        }
        n = last == cpu
            ? snprintf(out + len, size - len, "%s%d", len ? "," : "", cpu)
            : snprintf(out + len, size - len, "%s%d-%d", len ? "," : "",
                       cpu, last);
        if (n < 0 || (size_t) n >= size - len) {
            out[size - 1] = '\0';
            return;
        }
        len += (size_t) n;
        cpu = last;
    }

    if (len == 0) {
        snprintf(out, size, "none");
    }
}
