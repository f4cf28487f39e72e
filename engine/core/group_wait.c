/*
 * The engine's list of traces waiting for a policy=grouped pool, or for a
 * slot of a full pool whose request already holds slots of it.
 */

#include <errno.h>
#include <stdlib.h>

#include "core/group_wait.h"
#include "core/trace.h"
#include "log.h"
#include "route/group.h"

/* When the waiter array cannot be allocated, try again this much later. */
#define TG_GROUP_RETRY_MS  50

static void tg__group_timer_cb(uv_timer_t *timer);


int
tg_group_wait_start(tg_engine_t *e)
{
    e->group_timer.data = e;
    return uv_timer_init(e->loop, &e->group_timer);
}


void
tg_group_wait_stop(tg_engine_t *e)
{
    uv_close((uv_handle_t *) &e->group_timer, NULL);
}


void
tg_group_wait_add(tg_engine_t *e, tg_trace_t *t)
{
    tg_queue_insert_tail(&e->group_waiters, &t->wait_link);
    e->group_waiting++;
    t->waiting = 1;
    tg_group_wait_kick(e);
}


void
tg_group_wait_remove(tg_engine_t *e, tg_trace_t *t)
{
    if (!t->waiting) {
        return;
    }
    tg_queue_remove(&t->wait_link);
    t->waiting = 0;
    e->group_waiting--;
}


void
tg_group_wait_kick(tg_engine_t *e)
{
    if (!tg_queue_empty(&e->group_waiters) && !e->stopping) {
        (void) uv_timer_start(&e->group_timer, tg__group_timer_cb, 0, 0);
    }
}


/* Releases every waiter the rule lets go now, then sleeps until the
 * earliest window ends (a transfer's end kicks it sooner).  The array is
 * made again after each release: a strategy told that a released trace
 * failed may cancel its other waiting traces or start new ones. */
static void
tg__group_timer_cb(uv_timer_t *timer)
{
    tg_engine_t       *e = timer->data;
    tg_group_wait_t  **w, **nw;
    tg_trace_t        *p;
    tg_queue_t        *q;
    tg_backend_t      *to;
    uint64_t           now, wake;
    size_t             n, cap, i;
    long               k;

    now = uv_now(e->loop);
    wake = UINT64_MAX;
    w = NULL;
    cap = 0;

    while (!tg_queue_empty(&e->group_waiters)) {
        if (e->group_waiting > cap) {
            nw = realloc(w, e->group_waiting * sizeof(*w));
            if (nw == NULL) {
                tg_log_warn("grouped pools: out of memory, retrying");
                wake = now + TG_GROUP_RETRY_MS;
                break;
            }
            w = nw;
            cap = e->group_waiting;
        }
        n = 0;
        for (q = tg_queue_head(&e->group_waiters);
             q != tg_queue_sentinel(&e->group_waiters) && n < cap;
             q = tg_queue_next(q))
        {
            p = tg_queue_data(q, tg_trace_t, wait_link);
            w[n++] = &p->wait;
        }

        k = tg_group_next(w, n, now, &to, &wake);
        if (k < 0) {
            break;
        }
        q = tg_queue_head(&e->group_waiters);
        for (i = 0; i < (size_t) k; i++) {
            q = tg_queue_next(q);
        }
        p = tg_queue_data(q, tg_trace_t, wait_link);
        tg_group_wait_remove(e, p);
        tg_trace_release(p, to);
        wake = UINT64_MAX;
    }

    free(w);

    if (wake != UINT64_MAX && !tg_queue_empty(&e->group_waiters)) {
        (void) uv_timer_start(&e->group_timer, tg__group_timer_cb,
                              wake > now ? wake - now : 0, 0);
    }
}
