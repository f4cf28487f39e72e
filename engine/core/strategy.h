/*
 * The strategy seam (DESIGN §5).  A strategy decides how a request is
 * answered: which traces to start, what to do with their deltas, what to
 * emit to the client and when to finish.  Built-in strategies implement
 * this table; the plugin host (strategy/host.c) adapts loaded plugins
 * to it, and is the one serve/dispatch.c gives every request.  Core never
 * names it: r->strategy is NULL until dispatch sets it.
 *
 * Every callback runs on the loop.  A strategy emits with tg_request_*
 * (core/request.h) and starts or cancels traces with tg_trace_*
 * (core/trace.h).  After tg_request_end or tg_request_error the host
 * cancels any trace still running.
 */

#ifndef TG_CORE_STRATEGY_H
#define TG_CORE_STRATEGY_H

#include <stddef.h>

#include "core/request.h"
#include "core/trace.h"

struct tg_strategy_s {
    const char  *name;

    /* The request is validated (r->oa); start traces or answer.  Returns
     * 0, or a negative errno with err filled: the host answers err. */
    int  (*start)(tg_request_t *r, tg_oa_error_t *err);

    /* A trace got a successful (2xx) response header. */
    void (*on_head)(tg_trace_t *t);

    /* A streamed trace delivered one SSE event (payload NUL-terminated). */
    void (*on_event)(tg_trace_t *t, const char *event, const char *payload,
                     size_t len);

    /* A non-streamed trace delivered body bytes. */
    void (*on_data)(tg_trace_t *t, const char *p, size_t n);

    /* A trace ended: t->rc, t->status and tg_trace_error() tell how. */
    void (*on_trace_end)(tg_trace_t *t);

    /* The client left; traces are cancelled by the host right after. */
    void (*on_cancel)(tg_request_t *r);

    /* The request's deadline passed before it answered: stop everything
     * it runs (no callback follows); the request answers the client. */
    void (*on_deadline)(tg_request_t *r);

    /* The request is closed (traces cancelled): release r->strategy_data,
     * now or once the strategy's own callbacks have returned. */
    void (*destroy)(tg_request_t *r);
};

#endif /* TG_CORE_STRATEGY_H */
