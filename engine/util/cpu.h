/*
 * CPU affinity: the set the engine was started on (its "base"), and the
 * choice of CPUs for the event loop when it follows the nginx workers it
 * serves (transport/affinity.c).
 *
 * Why follow: a worker hands each request to the engine and the engine
 * hands the answer back, each time waking the other and then sleeping.
 * A wake-up on another CPU costs an inter-processor interrupt and the
 * other CPU's return from idle; on a virtual machine both are exits to
 * the hypervisor, many times dearer than a switch on the waker's own CPU
 * (bench/handoff measures the two).  When the operator pins workers
 * (worker_cpu_affinity), the loop on the workers' CPUs makes those
 * hand-offs local.  Threads the engine starts for heavy work (the
 * embedder's) keep the base: only the loop follows.
 */

#ifndef TG_UTIL_CPU_H
#define TG_UTIL_CPU_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <sched.h>
#include <stddef.h>

/* Remembers the calling thread's affinity as the base.  Called once, by
 * the main thread before it starts any other.  0 or -errno. */
int tg_cpu_save_base(void);

/* The base, or NULL before tg_cpu_save_base() succeeded. */
const cpu_set_t *tg_cpu_base(void);

/* Puts the calling thread back on the base, once per thread (later calls
 * cost nothing): a thread started from the loop inherits the loop's
 * narrower set otherwise. */
void tg_cpu_thread_base(void);

/* Runs the calling thread on the base until tg_cpu_leave_base(), so that
 * the threads it starts meanwhile begin there.  Returns whether it moved
 * (saved holds where it was). */
int tg_cpu_enter_base(cpu_set_t *saved);

void tg_cpu_leave_base(const cpu_set_t *saved, int moved);

/*
 * Where the loop runs for workers whose sets' union is workers: the
 * union within base, or all of base when the union is empty, misses base
 * or no worker is known (known 0).  Returns the number of CPUs in out.
 */
int tg_cpu_follow(const cpu_set_t *base, const cpu_set_t *workers,
    int known, cpu_set_t *out);

/* The set as a list ("0-3,6"), NUL-terminated and cut to size; "none"
 * when empty. */
void tg_cpu_list(const cpu_set_t *set, char *out, size_t size);

#endif /* TG_UTIL_CPU_H */
