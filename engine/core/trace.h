/*
 * Traces: one generation on one backend, i.e. one backend transfer.
 *
 * A trace picks its backend from a pool (route/pool.h), renders the body
 * for it (the backend's model replaces the client's when configured),
 * starts the transfer and reports to the request's strategy.  A connect
 * failure before any byte arrived is retried on another backend of the
 * pool, transparently for the strategy; only when every backend failed
 * does the strategy see the trace end.
 *
 * An HTTP error status from the backend is not delivered as data: its
 * body is kept (bounded) and turned into a message by tg_trace_error().
 */

#ifndef TG_CORE_TRACE_H
#define TG_CORE_TRACE_H

#include <jansson.h>

#include "backend/client.h"
#include "backend/sse.h"
#include "core/request.h"
#include "route/group.h"
#include "route/pool.h"
#include "util/queue.h"

#define TG_TRACE_MAX_ERRBODY  (16u * 1024)

/* A request body already written (the client's members with a trace's
 * changes, strategy/host_trace.c): the "model" member's value is at
 * model_at, model_len bytes of it; model_len 0 when there is none, and a
 * backend's model then goes in as a member at model_at (the closing
 * brace). */
typedef struct {
    char             *p;                /* malloc'ed */
    size_t            len;
    size_t            model_at;
    size_t            model_len;
} tg_trace_text_t;

struct tg_trace_s {
    tg_request_t     *req;
    tg_trace_t       *next;             /* in req->traces */
    unsigned          index;            /* 0, 1, ... within the request */
    tg_http_t        *http;             /* NULL when not running */
    tg_pool_t        *pool;
    tg_backend_t     *backend;          /* current (or last) backend */
    tg_backend_t    **tried;            /* backends that refused:
                                           tried_in for a pool of up to
                                           4 backends, else malloc'ed */
    size_t            ntried;
    tg_backend_t     *tried_in[4];
    int               endpoint;         /* TG_OA_CHAT / _COMPLETIONS */
    int               stream;
    unsigned          whole:1;          /* a non-streamed answer the
                                           client waits for whole: silent
                                           up to the request's timeout,
                                           not the backend's idle one */
    json_t           *body;             /* request to send; owned; NULL
                                           when text is */
    tg_trace_text_t   text;             /* or the request as written */

    long              status;           /* HTTP status, 0 before head */
    char             *content_type;     /* ctype_in when it fits, else
                                           malloc'ed; NULL before head */
    char              ctype_in[64];
    tg_sse_t          sse;
    unsigned          sse_ready:1;
    unsigned          paused:1;
    unsigned          ended:1;
    unsigned          done_seen:1;      /* "[DONE]" event seen */
    uint64_t          bytes;            /* body bytes received */
    tg_buf_t          errbody;          /* body of a >= 400 answer */
    int               rc;               /* 0 or negative errno */
    char              err[256];         /* transport error message */

    void             *data;             /* the strategy's */
    unsigned          aux:1;            /* an auxiliary completion */

    /* policy=grouped (core/group_wait.h): waiting for a backend, in the
     * engine's list; group_to is the one a release chose. */
    unsigned          waiting:1;
    tg_group_wait_t   wait;
    tg_queue_t        wait_link;        /* in engine->group_waiters */
    tg_backend_t     *group_to;
    size_t            nfixed;           /* tried[] entries set at start
                                           (one chosen backend) */
    tg_backend_t     *prefer;           /* a restart's backend, first */
    unsigned          feeding:1;        /* inside tg_sse_feed */
    unsigned          restart:1;        /* relaunch when the feed returns */
    unsigned          resent:1;         /* retried once after a backend
                                           failed before answering */
};

/* stream: 1 an SSE stream, 0 a plain answer (aux requests),
 * TG_TRACE_WHOLE a plain answer the client waits for (its silence is
 * bounded by the request's thinkgate_timeout, not the backend's
 * idle_timeout). */
#define TG_TRACE_WHOLE  2

/* Starts a trace on the pool with body (a reference is taken).  Returns
 * 0 and *out, or a negative errno with err filled (502 when no backend
 * could be started, 429 when every backend is at max_inflight).  In a
 * policy=grouped pool the trace waits instead (core/group_wait.h): 0,
 * and it starts when released. */
int tg_trace_start(tg_request_t *r, tg_pool_t *pool, int endpoint,
    json_t *body, int stream, tg_trace_t **out, tg_oa_error_t *err);

/* The same on one backend of the pool (only), as the pool's policy
 * would pick it: -EBUSY (429) when it is at max_inflight, no retry on
 * another. */
int tg_trace_start_on(tg_request_t *r, tg_pool_t *pool, tg_backend_t *only,
    int endpoint, json_t *body, int stream, tg_trace_t **out,
    tg_oa_error_t *err);

/* The same with the body given as text; text->p is the trace's from
 * then on, whatever the result. */
int tg_trace_start_text(tg_request_t *r, tg_pool_t *pool,
    tg_backend_t *only, int endpoint, tg_trace_text_t *text, int stream,
    tg_trace_t **out, tg_oa_error_t *err);

/* Starts a waiting trace (policy=grouped) on b, as the release rule
 * chose it.  When it cannot start, the trace ends with a 502 and its
 * strategy hears it (on_trace_end), from the caller's frame: the
 * release timer's, never a strategy call's. */
void tg_trace_release(tg_trace_t *t, tg_backend_t *b);
/* Ends the running transfer at once (no callback follows for it) and
 * starts body (a reference is taken) as the same trace, on the same
 * backend while it has a slot: the strategy keeps its tg_trace_t and
 * hears the new transfer's events as the trace's.  Called from inside
 * one of the trace's event callbacks, the old transfer's remaining events
 * are dropped and the new one starts when the callback's feed returns;
 * if it cannot start then, the trace ends failed (on_trace_end).  Returns
 * 0, or (called outside a feed) a negative errno with err filled, the
 * trace then ended without a callback. */
int tg_trace_restart(tg_trace_t *t, json_t *body, tg_oa_error_t *err);

/* Cancels a running trace at once (closes the backend connection); no
 * callback follows. */
void tg_trace_cancel(tg_trace_t *t);

void tg_trace_pause(tg_trace_t *t, int paused);

/* Describes how a failed trace ended, OpenAI-shaped: 502 for transport
 * failures and backend 5xx (with the backend's message), 504 when the
 * backend was silent too long, the backend's own status for client
 * errors it reported (400, 404, 413, 422, 429).  Returns 0 when the trace
 * succeeded (nothing filled), else 1. */
int tg_trace_error(tg_trace_t *t, tg_oa_error_t *err);

/* Frees an ended or cancelled trace's memory (the request does it). */
void tg_trace_free(tg_trace_t *t);

/* Frees the traces kept for reuse and keeps none from now on (engine
 * exit). */
void tg_trace_spares_free(void);

#endif /* TG_CORE_TRACE_H */
