/*
 * policy=grouped: traces wait in the engine and go to a backend grouped
 * by model, for servers that hold one model at a time and swap (llama.cpp
 * router, Ollama, llama-swap).
 *
 * A waiting trace is released, in this order of preference:
 *   1. to a backend with a free slot that serves its model now (the model
 *      of the last trace it was given): no swap;
 *   2. to an idle backend (nothing in flight): a swap, but one that makes
 *      no one else wait, since no waiter wants the idle backend's model;
 *   3. once it has waited the pool's window_ms, to the least loaded
 *      backend with a free slot, whatever it serves: the bound on how
 *      long grouping may hold a trace.
 * Oldest first within each rule.  A free slot is max_inflight not
 * reached (any, for a backend without max_inflight).
 *
 * A trace of another policy's pool waits here only when a request that
 * already holds slots of the pool asks for more than are free (a
 * multi-trace request wider than the pool, core/trace.c): it goes by
 * rule 3 alone, without a window, to the least loaded backend with a
 * free slot.
 *
 * This file is the policy alone, over the backends' counters; the engine
 * glue (the list of waiters, the timer, launching) is core/group_wait.c.
 */

#ifndef TG_ROUTE_GROUP_H
#define TG_ROUTE_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include "config/generation.h"

/* One waiting trace as the policy sees it. */
typedef struct {
    tg_pool_t          *pool;           /* policy grouped, or any (rule 3) */
    const char         *model;          /* what it asks for; "" none */
    uint64_t            since_ms;       /* when it began to wait */
} tg_group_wait_t;

/*
 * The next release among w[0..n) (oldest first): returns its index and
 * the backend in *to, or -1 when none may go now.  *wake_ms is then the
 * loop time at which a held waiter's window ends (UINT64_MAX: none is
 * held by its window, only by full backends).  The caller launches the
 * trace (tg_backend_started, tg_backend_serve) and asks again.
 */
long tg_group_next(tg_group_wait_t *const *w, size_t n, uint64_t now_ms,
    tg_backend_t **to, uint64_t *wake_ms);

/* Records that b was given a trace for model (NULL or "": none). */
void tg_backend_serve(tg_backend_t *b, const char *model);

#endif /* TG_ROUTE_GROUP_H */
