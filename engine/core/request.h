/*
 * Requests and traces.
 *
 * A request is one client call handed over by a worker (REQUEST frames
 * with one id).  It owns its traces (each trace is one backend transfer,
 * see core/trace.h) and its pending output, and it holds a reference on
 * the configuration generation it started with.
 *
 * Output goes through tg_request_head / _data / _end / _error, which queue
 * frames and flush them to the worker's ring under flow control:
 *   - DATA never exceeds the credit the worker granted (TG_INITIAL_WINDOW,
 *     then WINDOW frames);
 *   - when the ring is full or the credit is spent, bytes wait in the
 *     request's pending buffer; past TG_REQUEST_HIGH_WATER bytes the
 *     request pauses its traces (the backends feel TCP backpressure), and
 *     resumes them once the buffer drops under TG_REQUEST_LOW_WATER.
 * The loop is never blocked and one slow client slows only its backends.
 *
 * A strategy (core/strategy.h) decides what the request does: passthrough
 * starts one trace and relays it.
 */

#ifndef TG_CORE_REQUEST_H
#define TG_CORE_REQUEST_H

#include <stdint.h>

#include <jansson.h>

#include "core/meta.h"
#include "engine.h"
#include "openai/request.h"
#include "transport/conn.h"
#include "util/buf.h"

#define TG_REQUEST_MAX_BODY     (64u << 20)
#define TG_REQUEST_HIGH_WATER   (64u * 1024)
#define TG_REQUEST_LOW_WATER    (16u * 1024)

enum {
    TG_KIND_API = 0,
    TG_KIND_STATUS,
    TG_KIND_ADMIN
};

typedef struct tg_strategy_s  tg_strategy_t;
typedef struct tg_prep_s      tg_prep_t;
typedef struct tg_key_req_s   tg_key_req_t;

struct tg_req_s {
    tg_engine_t           *engine;
    tg_conn_t             *conn;            /* NULL once closed */
    uint64_t               id;
    tg_generation_t       *gen;
    uint64_t               started_ms;

    tg_stream_t            stream;          /* the transport's part:
                                               id, id table, blocked */
    tg_request_t          *reap_next;       /* engine's reap list */
    unsigned               assembling:1;    /* more REQUEST frames due */
    unsigned               head_pending:1;  /* HEAD queued, not written */
    unsigned               head_sent:1;
    unsigned               finished:1;      /* END or ERROR queued */
    unsigned               done:1;          /* END or ERROR written */
    unsigned               paused:1;        /* traces paused by us */
    unsigned               closed:1;
    unsigned               counted:1;       /* in requests_in_flight */

    /* Input: meta and body of the REQUEST frames. */
    tg_meta_t              meta;
    tg_buf_t               body;
    int                    kind;            /* TG_KIND_* */
    const char            *method;          /* borrowed from meta */
    const char            *uri;
    const char            *args;
    const char            *pool_name;       /* pinned, or by "model" */
    tg_pool_t             *pool;            /* pool_name's, resolved once
                                               by serve/dispatch.c; NULL
                                               before or without one */
    int64_t                timeout_ms;      /* 0: none */
    int64_t                deadline_ms;     /* thinkgate_deadline, from
                                               started_ms; 0: none */
    uv_timer_t            *deadline;        /* its timer; NULL: none */
    uint64_t               max_body;        /* the location's
                                               thinkgate_max_body (meta
                                               "max_body"), else
                                               TG_REQUEST_MAX_BODY */
    size_t                 body_len;        /* the client's body, bytes */
    /* Where the request's "model" led (config/models.c): traces on
     * model_pool send model_upstream, or for an alias without model=
     * the backend's own name, instead of the client's. */
    tg_pool_t             *model_pool;
    const char            *model_upstream;
    int                    model_alias;
    tg_oa_request_t        oa;
    /* The client's key (serve/keys.h); NULL without one. */
    tg_key_req_t          *key;

    /* Strategy and traces. */
    const tg_strategy_t   *strategy;
    void                  *strategy_data;
    tg_trace_t            *traces;          /* every trace, ended too */
    tg_trace_t           **traces_end;      /* the last one's next (NULL:
                                               &traces), so that a start
                                               does not walk the list */
    unsigned               traces_started;  /* in traces */
    unsigned               traces_running;

    /* State steps (serve/prep.h): session and prefix routing.  Traces on
     * a pool holding prefer go there while it has slots. */
    tg_prep_t             *prep;
    tg_backend_t          *prefer;

    /* Output. */
    uint64_t               credit;          /* DATA bytes we may send */
    int                    status;          /* response status */
    tg_buf_t               head;            /* HEAD payload when pending */
    tg_buf_t               out;             /* DATA bytes not yet written */
    uint16_t               term_type;       /* END or ERROR when finished */
    tg_buf_t               term;            /* its payload */
};

/*
 * What the layer above (serve/) does at a request's turns.  main.c puts
 * the table in engine->request_hooks; core calls up through it only, and
 * a NULL entry (or table) does nothing.
 */
struct tg_request_hooks_s {
    /* Every REQUEST frame is in: route the request, start its strategy
     * or answer it. */
    void (*on_ready)(tg_request_t *r);
    /* The output tap: every DATA byte the request emits, before it is
     * queued for the worker. */
    void (*on_output)(tg_request_t *r, const char *p, size_t n);
    /* The request closes: on_close before its traces are cancelled,
     * on_closed after (the strategy is destroyed next). */
    void (*on_close)(tg_request_t *r);
    void (*on_closed)(tg_request_t *r);
    /* The reaper frees the request's memory. */
    void (*on_free)(tg_request_t *r);
};

/* The transport's side (transport/conn.h), for engine->conn_hooks: a
 * worker's frame (REQUEST, CANCEL, WINDOW), room in its ring for a
 * blocked request, the connection gone. */
int tg_request_frame(tg_conn_t *conn, tg_stream_t *s,
    const tg_frame_view_t *f);
void tg_request_room(tg_stream_t *s);
void tg_request_conn_gone(tg_stream_t *s);

/* The steps of a request's frames (tg_request_frame calls them). */
tg_request_t *tg_request_new(tg_conn_t *conn, uint64_t id);
int tg_request_feed(tg_request_t *r, const uint8_t *p, size_t n, int first,
    int more);
void tg_request_window(tg_request_t *r, uint32_t credit);
void tg_request_cancel(tg_request_t *r);

/* Writes what is pending, as far as ring room and credit allow. */
void tg_request_flush(tg_request_t *r);

/*
 * Output, in order: at most one HEAD, DATA, then END or ERROR.  headers
 * holds "Name: value\r\n" lines (may be NULL).  Each returns 0, -ENOMEM,
 * or -EPIPE when the request no longer accepts output.
 */
int tg_request_head(tg_request_t *r, int status, unsigned flags,
    const char *headers);
int tg_request_data(tg_request_t *r, const void *p, size_t n);
int tg_request_end(tg_request_t *r, json_t *figures);
/* The same with the figures already as END's text (NAME=VALUE lines, as
 * tg_request_end writes a figures object), n bytes. */
int tg_request_end_text(tg_request_t *r, const char *figures, size_t n);
int tg_request_error(tg_request_t *r, const tg_oa_error_t *err);

/* A whole JSON response: HEAD, DATA, END.  Takes the reference on doc. */
int tg_request_json(tg_request_t *r, int status, json_t *doc);
/* A whole response with its own content type. */
int tg_request_reply(tg_request_t *r, int status, const char *content_type,
    const char *body, size_t len);

/* Arms the request's deadline (r->deadline_ms after started_ms): when it
 * passes before END or ERROR, the strategy stops (on_deadline), every
 * trace is cancelled and the client gets a 504 deadline_exceeded (an SSE
 * error event once a stream has begun).  Returns 0 or -ENOMEM. */
int tg_request_deadline_start(tg_request_t *r);

/* Cancels every trace and releases the request (memory goes later, from
 * the engine's reaper). */
void tg_request_close(tg_request_t *r);

/* Frees closed requests (the engine's idle callback). */
void tg_request_reap(tg_engine_t *engine);

/* Frees the requests kept for reuse and keeps none from now on (engine
 * exit). */
void tg_request_spares_free(void);

/* Closes the deadline timers kept for reuse and keeps none from now on
 * (the engine's shutdown, so that the loop runs dry). */
void tg_request_timers_close(void);

#endif /* TG_CORE_REQUEST_H */
