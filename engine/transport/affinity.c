/*
 * The loop thread follows the registered workers' CPUs (affinity.h).
 */

#include "transport/affinity.h"

#include <errno.h>
#include <string.h>

#include "log.h"
#include "transport/conn.h"
#include "util/cpu.h"

/* Where the loop thread was put last; one loop, one thread. */
static cpu_set_t  tg__affinity_loop;
static int        tg__affinity_set;

/* The workers' union; 0 when some worker's set cannot be read (it may
 * run anywhere as far as the engine knows) or none is registered. */
static int
tg__affinity_workers(tg_engine_t *e, cpu_set_t *all)
{
    const tg_queue_t  *q;
    tg_conn_t         *conn;
    cpu_set_t          set;
    int                n = 0;

    CPU_ZERO(all);
    for (q = tg_queue_head(&e->conns); q != tg_queue_sentinel(&e->conns);
         q = tg_queue_next(q))
    {
        conn = tg_queue_data(q, tg_conn_t, link);
        if (conn->state != TG_CONN_ACTIVE) {
            continue;
        }
        /* A worker in another pid namespace has no pid here (0), and
         * sched_getaffinity(0) would be the engine's own set. */
        if (conn->peer_pid <= 0) {
            return 0;
        }
        if (sched_getaffinity(conn->peer_pid, sizeof(set), &set) != 0) {
            tg_log_debug("worker %d: its CPU set: %s", (int) conn->peer_pid,
                         strerror(errno));
            return 0;
        }
        CPU_OR(all, all, &set);
        n++;
    }
    return n > 0;
}


void
tg_affinity_follow(tg_engine_t *e)
{
    const cpu_set_t  *base = tg_cpu_base();
    cpu_set_t         workers, want;
    char              list[128];
    int               known;

    if (!e->cpu_follow || base == NULL) {
        return;
    }
    if (!tg__affinity_set) {
        /* The loop starts where the engine was started. */
        memcpy(&tg__affinity_loop, base, sizeof(*base));
        tg__affinity_set = 1;
    }

    known = tg__affinity_workers(e, &workers);
    (void) tg_cpu_follow(base, &workers, known, &want);
    if (CPU_EQUAL(&want, &tg__affinity_loop)) {
        return;
    }

    tg_cpu_list(&want, list, sizeof(list));
    if (sched_setaffinity(0, sizeof(want), &want) != 0) {
        tg_log_warn("event loop: cannot run on CPUs %s: %s", list,
                    strerror(errno));
        return;
    }
    memcpy(&tg__affinity_loop, &want, sizeof(want));

    tg_log_info("event loop on CPUs %s (%s)", list,
                CPU_EQUAL(&want, base) ? "all the engine's"
                                       : "the registered workers'");
}
