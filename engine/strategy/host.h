/*
 * The plugin host: runs a loaded strategy plugin (include/thinkgate/
 * plugin.h) for a request, behind the engine's strategy seam
 * (core/strategy.h).
 *
 *   host.c         the tg_strategy_t adapter: selection and start, trace
 *                  events into plugin callbacks, cancel, destroy
 *   host_api.c     the tg_host_api_t table: request, memory, options,
 *                  summary, pools, log, counters
 *   host_kv.c      kv_get / kv_set on the Redis link
 *   host_async.c   timers and score()
 *   host_score.c   score_kind(): lexical, or the embed service
 *   host_trace.c   traces: request bodies, cancel, continue, info
 *   host_aux.c     aux requests: chat, completions and embeddings
 *                  bodies; replies into results (logprobs, vectors)
 *   host_sse.c     what backends send: SSE chunks into text, tokens and
 *                  an end; inline <think> splitting
 *   host_output.c  output to the client: live relay, emit, finish,
 *                  finish_trace, fail, keep-alives
 *   host_choice.c  the response's choices (a client's n) and its end:
 *                  finish chunks, usage, the thinkgate object
 *   host_select.c  which plugin and options: body > header > location
 *
 * Rules kept here, as plugin.h promises them: no plugin callback runs
 * from inside a host function (events arrive only from the loop); a trace
 * the plugin cancelled gets no more callbacks; after finish/fail every
 * trace, aux request and timer is cancelled; destroy() is the last
 * callback and runs once nothing of the host's is on the stack.
 */

#ifndef TG_STRATEGY_HOST_H
#define TG_STRATEGY_HOST_H

#include <stdint.h>

#include <jansson.h>
#include <uv.h>

#include "plugin/abi.h"

#include "core/effort.h"
#include "core/request.h"
#include "core/strategy.h"
#include "core/trace.h"
#include "openai/responses.h"
#include "plugin/loader.h"
#include "plugin/options.h"
#include "util/queue.h"

typedef struct tg_host_req_s    tg_host_req_t;
typedef struct tg_host_trace_s  tg_host_trace_t;
typedef struct tg_host_block_s  tg_host_block_t;
typedef struct tg_host_kv_s     tg_host_kv_t;
typedef struct tg_host_aux_s    tg_host_aux_t;
typedef struct tg_host_timer_s  tg_host_timer_t;

/* Inline <think> splitting (llama.cpp-style backends put thinking in
 * content). */
enum {
    TG_THINK_UNKNOWN = 0,   /* nothing decided yet */
    TG_THINK_NATIVE,        /* the backend sends reasoning_content */
    TG_THINK_INSIDE,        /* after an opening <think> */
    TG_THINK_ANSWER         /* after </think>, or no tag: plain content */
};

/* The settings a trace was started with, kept for trace_continue. */
typedef struct {
    char               *pool;
    char               *backend;
    char               *messages_json;
    int32_t             max_tokens;
    double              temperature;
    int                 seed_mode;
    int64_t             seed;
    uint32_t            flags;
    void               *data;
} tg_host_spec_t;

/* One trace or aux request as the plugin sees it; t->data points here. */
struct tg_host_trace_s {
    tg_host_req_t      *hr;
    tg_trace_t         *t;              /* the engine's transfer */
    uint32_t            index;          /* plugin index (start order) */
    uint32_t            choice;         /* live: the client's choice */
    unsigned            aux:1;
    unsigned            live:1;
    unsigned            by_plugin:1;    /* cancelled by the plugin */
    unsigned            ended:1;
    unsigned            whole:1;        /* asked non-streamed (F_WHOLE, or
                                           the retry of an empty stream) */
    unsigned            whole_retry:1;  /* an empty stream was retried */
    int                 think;          /* TG_THINK_* */
    tg_trace_state_t    state;
    uint32_t            tokens;
    int                 counted_chunks; /* no usage seen: count chunks */
    tg_buf_t            reasoning;
    tg_buf_t            content;
    size_t              r_mark;         /* bytes reported as deltas */
    size_t              c_mark;
    tg_buf_t            body;           /* a non-SSE answer (aux) */
    tg_buf_t            logprobs;       /* live: this chunk's, as JSON */
    char                finish_reason[16];
    json_t             *usage;          /* the last usage object seen,
                                           when usage_dirty is 0 */
    tg_buf_t            usage_raw;      /* the last usage object's text,
                                           parsed only when read */
    unsigned            usage_dirty:1;  /* usage_raw is newer than usage */
    int64_t             usage_pt;       /* usage_raw's prompt_tokens when
                                           an integer, else INT64_MIN */
    int64_t             usage_ct;       /* its completion_tokens, */
    int64_t             usage_tt;       /* total_tokens: the same */
    tg_buf_t            scratch;        /* unescaped text of one chunk */
    char               *model;          /* the backend's "model" */
    uint64_t            started_ms;
    uint64_t            first_token_ms;
    uint64_t            ended_ms;
    int                 http_status;
    tg_oa_error_t       err;            /* FAILED: why */
    tg_host_spec_t      spec;
    tg_host_trace_t    *next_aux;
    /* Budget forcing (host_budget.c). */
    uint32_t            cut_at;         /* thinking tokens at the budget
                                           cut; 0: not cut */
    uint32_t            tokens_base;    /* tokens before the continuation */
    int64_t             prompt_tokens;  /* the first transfer's; -1: unknown */
};

struct tg_host_aux_s {
    tg_host_trace_t     ht;             /* first: tg_host_aux_t * casts */
    int                 endpoint;       /* TG_ENDPOINT_* of the spec */
    size_t              ninputs;        /* EMBEDDINGS: rows expected */
    int                 status;         /* -EPROTO: the reply was bad */
    json_t             *doc;            /* the reply top[] points into */
    tg_logprob_t       *top;            /* first token's alternatives */
    size_t              ntop;
    float              *vectors;        /* nvectors x dim, row-major */
    size_t              nvectors;
    size_t              dim;
};

struct tg_host_timer_s {
    uv_timer_t          timer;
    tg_host_req_t      *hr;             /* NULL once stopped */
    void               *data;
    tg_host_timer_t    *next;
};

/* One choice of the response (plugin.h, "Live traces and choices"). */
typedef struct {
    tg_host_trace_t    *live;           /* its latest live trace */
    tg_buf_t            reasoning;      /* non-streamed output */
    tg_buf_t            content;
    char                finish_reason[16];  /* once closed */
    unsigned            role_sent:1;
    unsigned            closed:1;       /* its finish went out */
} tg_host_choice_t;

/* What a spare request state keeps (tg_host_req_t's keep). */
typedef struct {
    tg_host_trace_t   **traces;
    size_t              cap;
    void               *state;
    size_t              state_size;
    tg_host_choice_t    choice;
} tg_host_keep_t;

/* A pending score() call, delivered on the next loop turn. */
typedef struct tg_host_score_s  tg_host_score_t;
/* A pending score_kind() call (host_score.c). */
typedef struct tg_host_embed_s  tg_host_embed_t;

struct tg_host_req_s {
    tg_request_t           *r;
    tg_plugin_version_t    *version;
    const tg_plugin_t      *p;
    tg_opt_values_t         opts;
    tg_request_info_t       info;
    char                   *strategy;       /* the plugin's name */
    char                   *problem;
    char                   *body_text;
    void                   *state;
    tg_host_block_t        *arena;
    char                    error[800];     /* last_error */
    tg_oa_error_t           start_err;      /* the last trace_start's */

    tg_host_trace_t       **traces;         /* plugin traces, by index */
    size_t                  ntraces;
    size_t                  cap;
    tg_host_trace_t        *auxs;
    tg_host_timer_t        *timers;
    tg_queue_t              scores;         /* score() calls waiting */
    tg_queue_t              kvs;            /* kv calls waiting for Redis */
    unsigned                nkvs;
    tg_queue_t              embeds;         /* score_kind() calls */
    unsigned                cancelled;      /* traces cancelled */
    int                     effort;         /* TG_EFFORT_*; -1: none */
    uint32_t                budget;         /* thinking tokens; 0: none */
    uint32_t                budget_cuts;
    unsigned                effort_native:1;    /* passed through */

    tg_host_choice_t       *choices;        /* client_n of them */
    uint32_t                nchoices;       /* the client's n */
    uint32_t                nopen;          /* opened by live traces */

    /* What a spare keeps for the next request (host.c, TG_HOST_SPARES):
     * the traces array, the plugin state's block, the one choice most
     * requests have with its buffers (emptied), the strategy's name when
     * short.  Only the memory carries over; each is cleared for use. */
    tg_host_keep_t          keep;
    char                    strategy_buf[32];
    size_t                  state_cap;      /* bytes of state's block */

    tg_buf_t                out;            /* a chunk being rendered;
                                               not streamed, the answer
                                               while its turn is stored */
    json_t                 *summary;        /* the plugin's keys */
    json_t                 *counters;       /* counter_add_req()'s, for
                                               the summary's "counters" */
    json_t                 *end_doc;        /* /responses: the answer
                                               (not streamed) while its
                                               turn is stored */
    tg_host_trace_t        *end_usage_of;   /* the end's usage_of */
    char                    end_finish[16]; /* the end's finish_reason */
    json_t                 *end_summary;    /* /responses: the "thinkgate"
                                               object while it is stored */
    tg_oa_resp_stream_t     resp;           /* /responses, streamed */
    uv_timer_t             *keepalive;
    uint64_t                last_out_ms;
    char                    id[TG_OA_RESPONSE_ID_MAX];
    int64_t                 created;

    int                     depth;          /* plugin callbacks running */
    unsigned                started:1;      /* plugin start() called */
    unsigned                answered:1;     /* finish or fail called */
    unsigned                gone:1;         /* the client left */
    unsigned                closing:1;      /* destroy requested */
    unsigned                freed:1;
    unsigned                final_sent:1;
};

/*
 * What the layer above (serve/: client keys, sessions, stored responses)
 * adds to a request the host runs: main.c puts the table in
 * engine->host_hooks.  The host calls up through it only, with the
 * tg__host_up_* wrappers below (a NULL entry: nothing to add).
 */
typedef void (*tg_host_stored_cb)(tg_request_t *r, void *data);

struct tg_host_hooks_s {
    /* The strategy is selected: may the request's key use it?  0, or a
     * negative errno with err filled. */
    int  (*allow_strategy)(tg_request_t *r, const char *strategy,
                           tg_oa_error_t *err);
    /* The answer is whole (answer: choice 0's text, len bytes, as the
     * client reads it when not streamed; NULL when streamed, where the
     * output carried it): keep what sessions keep before the "thinkgate"
     * object is built.  0 when cb follows, 1 when there is nothing to
     * wait for. */
    int  (*store)(tg_request_t *r, const char *answer, size_t len,
                  tg_host_stored_cb cb, void *data);
    /* The same for an answered /responses request (resp: the response
     * object, answer: the assistant's text). */
    int  (*response_store)(tg_request_t *r, json_t *resp, const char *answer,
                           size_t len, tg_host_stored_cb cb, void *data);
    /* Adds serve's members to the "thinkgate" object (spent: what the
     * request cost the GPUs, tg_host_spent), or to a stored response's
     * summary.  0 or -ENOMEM. */
    int  (*summary)(const tg_request_t *r, json_t *obj, uint64_t spent);
    int  (*response_summary)(const tg_request_t *r, json_t *obj);
};

static inline int
tg__host_up_allow(tg_request_t *r, const char *strategy, tg_oa_error_t *err)
{
    const tg_host_hooks_t  *h = r->engine->host_hooks;

    return h != NULL && h->allow_strategy != NULL
           ? h->allow_strategy(r, strategy, err) : 0;
}

static inline int
tg__host_up_store(tg_request_t *r, const char *answer, size_t len,
    tg_host_stored_cb cb, void *data)
{
    const tg_host_hooks_t  *h = r->engine->host_hooks;

    return h != NULL && h->store != NULL ? h->store(r, answer, len, cb, data)
                                         : 1;
}

static inline int
tg__host_up_response_store(tg_request_t *r, json_t *resp, const char *answer,
    size_t len, tg_host_stored_cb cb, void *data)
{
    const tg_host_hooks_t  *h = r->engine->host_hooks;

    return h != NULL && h->response_store != NULL
           ? h->response_store(r, resp, answer, len, cb, data) : 1;
}

static inline int
tg__host_up_summary(const tg_request_t *r, json_t *obj, uint64_t spent)
{
    const tg_host_hooks_t  *h = r->engine->host_hooks;

    return h != NULL && h->summary != NULL ? h->summary(r, obj, spent) : 0;
}

static inline int
tg__host_up_response_summary(const tg_request_t *r, json_t *obj)
{
    const tg_host_hooks_t  *h = r->engine->host_hooks;

    return h != NULL && h->response_summary != NULL
           ? h->response_summary(r, obj) : 0;
}


/*
 * The plugin's handles are the host's objects under the ABI's opaque
 * types (plugin.h): a request is the engine's request, a trace the
 * engine's transfer, an aux request and a timer the host's own structs.
 * These are the only places that convert.
 */
static inline tg_plugin_req_t *
tg__host_preq(tg_request_t *r)
{
    return (tg_plugin_req_t *) r;
}

static inline tg_request_t *
tg__host_req(tg_plugin_req_t *req)
{
    return (tg_request_t *) req;
}

static inline tg_plugin_trace_t *
tg__host_ptrace(tg_trace_t *t)
{
    return (tg_plugin_trace_t *) t;
}

static inline tg_trace_t *
tg__host_trace(tg_plugin_trace_t *pt)
{
    return (tg_trace_t *) pt;
}

static inline tg_plugin_aux_t *
tg__host_paux(tg_host_aux_t *a)
{
    return (tg_plugin_aux_t *) a;
}

static inline tg_host_aux_t *
tg__host_aux(tg_plugin_aux_t *pa)
{
    return (tg_host_aux_t *) pa;
}

static inline tg_plugin_timer_t *
tg__host_ptimer(tg_host_timer_t *tm)
{
    return (tg_plugin_timer_t *) tm;
}

static inline tg_host_timer_t *
tg__host_timer(tg_plugin_timer_t *ptm)
{
    return (tg_host_timer_t *) ptm;
}

/* The only strategy: the plugin host (strategy/host.c), which runs the
 * plugin the request selects, passthrough by default. */
extern const tg_strategy_t  tg_strategy_host;
extern const tg_host_api_t  tg_host_api;

/* The tokens the request's traces and aux requests cost the GPUs so far:
 * prompt and completion, cancelled traces included (a trace cancelled
 * before its usage arrived counts the request's known prompt size);
 * what client keys are charged (serve/keys.h).  r->strategy_data must be
 * the host's. */
uint64_t tg_host_spent(tg_request_t *r);

/* host.c */
void tg__host_enter(tg_host_req_t *hr);
void tg__host_leave(tg_host_req_t *hr);
int tg__host_usable(tg_host_req_t *hr);
void tg__host_cancel_all(tg_host_req_t *hr);
void tg__host_set_error(tg_host_req_t *hr, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
tg_host_req_t *tg__host_of(tg_plugin_req_t *req);
/* Renders info.body and info.problem on first use; 0 or -ENOMEM. */
int tg__host_info_text(tg_host_req_t *hr);
/* The request whose callbacks run now; NULL outside them. */
tg_host_req_t *tg__host_current(void);

/* host_api.c */
void tg_host_init(tg_engine_t *e);
void tg__host_arena_free(tg_host_req_t *hr);
uint64_t tg__host_now(void);
int tg_host_counters_json(json_t *obj);

/* host_reply.c: a non-streamed answer as text in hr->out (its choices,
 * then its usage and summary), and the reply that sends it or a doc,
 * with END. */
int tg__host_reply_begin(tg_host_req_t *hr, tg_host_trace_t *usage_of,
    const char *finish);
int tg__host_reply_rest(tg_host_req_t *hr, tg_host_trace_t *usage_of);
int tg__host_reply_json(tg_host_req_t *hr, json_t *doc, json_t *summary);
int tg__host_reply_out(tg_host_req_t *hr, json_t *summary, const char *fig,
    size_t figlen);
/* host_choice.c: the usage object reported for ht (NULL: the live
 * traces'), the "thinkgate" object (extra: tg__host_summary_extra's
 * members, merged last), where the usage's counts came from, and the
 * trace whose model choice k names. */
json_t *tg__host_usage(tg_host_req_t *hr, tg_host_trace_t *ht);
json_t *tg__host_summary(tg_host_req_t *hr, tg_host_trace_t *winner,
    json_t *extra);
json_t *tg__host_summary_extra(tg_host_req_t *hr);
const char *tg__host_usage_source(tg_host_req_t *hr, tg_host_trace_t *ht);
tg_host_trace_t *tg__host_model_of(tg_host_req_t *hr,
    tg_host_trace_t *usage_of, uint32_t k);

/* host_async.c */
void tg__host_async_init(uv_loop_t *loop);
void tg_host_shutdown(void);
/* host.c: frees the request states kept for reuse, and keeps no more. */
void tg__host_spares_free(void);
tg_plugin_timer_t *tg__host_timer_start(tg_plugin_req_t *req, uint64_t ms,
    void *data);
int tg__host_timer_stop(tg_plugin_req_t *req, tg_plugin_timer_t *tm);
void tg__host_timers_stop(tg_host_req_t *hr);
int tg__host_score(tg_plugin_req_t *req, const char *const *texts,
    const size_t *lens, size_t n, tg_score_cb cb, void *data);
void tg__host_scores_cancel(tg_host_req_t *hr);

/* host_score.c */
int tg__host_score_kind(tg_plugin_req_t *req, tg_score_kind_t kind,
    const char *const *texts, const size_t *lens, size_t n,
    tg_score_kind_cb cb, void *data);
void tg__host_embeds_cancel(tg_host_req_t *hr);

/* host_trace.c */
tg_plugin_trace_t *tg__host_trace_start(tg_plugin_req_t *req,
    const tg_trace_spec_t *spec);
int tg__host_trace_cancel(tg_plugin_req_t *req, tg_plugin_trace_t *pt);
tg_plugin_trace_t *tg__host_trace_continue(tg_plugin_req_t *req,
    tg_plugin_trace_t *pt, const char *append, size_t len,
    const tg_trace_spec_t *spec);
int tg__host_trace_info(tg_plugin_trace_t *pt, tg_trace_info_t *out);
size_t tg__host_trace_count(tg_plugin_req_t *req);
tg_plugin_trace_t *tg__host_trace_at(tg_plugin_req_t *req, size_t index);
tg_host_trace_t *tg__host_trace_new(tg_host_req_t *hr, int aux);
int tg__host_launch(tg_host_req_t *hr, tg_host_trace_t *ht,
    const char *pool_name, const char *backend, int endpoint, json_t *body,
    tg_trace_text_t *text, int stream);
/* Engine trace events for the adapter; each returns 1 when the plugin is
 * to hear of it (a delta or an end), filling the out struct. */
int tg__host_trace_event(tg_host_trace_t *ht, const char *payload,
    size_t len, tg_delta_t *d);
void tg__host_trace_data(tg_host_trace_t *ht, const char *p, size_t n);
void tg__host_trace_ended(tg_host_trace_t *ht, tg_trace_end_t *e);
void tg__host_trace_free(tg_host_trace_t *ht);
void tg__host_trace_spares_free(void);
/* The trace's last usage object (NULL: none), parsed from the chunk's
 * text on first read. */
json_t *tg__host_trace_usage(tg_host_trace_t *ht);
/* Whether the trace has a usage object, and its prompt_tokens when an
 * integer >= 0 (else -1), without parsing the text (host_sse.c). */
int tg__host_trace_has_usage(const tg_host_trace_t *ht);
int64_t tg__host_trace_prompt(tg_host_trace_t *ht);
void tg__host_prefix_text(tg_host_trace_t *ht, tg_buf_t *b);

/* host_budget.c: the request's reasoning_effort (hr->effort, budget;
 * rule->strategy "" or the strategy it runs), 0 or -EINVAL with err; a
 * trace's budget check after each delta (0, or -errno: the trace could
 * not be continued, ht->err says why, it has ended); the usage and
 * summary of budget cuts. */
int tg__host_effort(tg_host_req_t *hr, tg_effort_t *rule, tg_oa_error_t *err);
int tg__host_budget_check(tg_host_trace_t *ht);
void tg__host_budget_usage(tg_host_trace_t *ht, json_t *u);
int tg__host_budget_summary(tg_host_req_t *hr, json_t *o);
json_t *tg__host_trace_body(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index);
/* The same, for a whole answer when whole is set (host_trace.c). */
json_t *tg__host_trace_body_as(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index, int whole);

/* host_body.c: the trace's body written from the client's members: 0
 * with out filled, 1 when the tree path must write it, -ENOMEM. */
int tg__host_trace_text(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index, int whole, tg_trace_text_t *out);

/* host_kv.c */
int tg__host_kv_get(tg_plugin_req_t *req, const char *key, tg_kv_cb cb,
    void *data);
int tg__host_kv_set(tg_plugin_req_t *req, const char *key, const char *v,
    size_t len, uint64_t ttl_ms, tg_kv_cb cb, void *data);
void tg__host_kv_limits(size_t *max_key, size_t *max_value);
void tg__host_kvs_cancel(tg_host_req_t *hr);

/* host_aux.c */
tg_plugin_aux_t *tg__host_aux_start(tg_plugin_req_t *req,
    const tg_aux_spec_t *spec);
tg_plugin_aux_t *tg__host_aux_start_stop(tg_plugin_req_t *req,
    const tg_aux_spec_t *spec, const char *const *stop, size_t nstop);
int tg__host_aux_cancel(tg_plugin_req_t *req, tg_plugin_aux_t *pa);
int tg__host_aux_is_embed(const tg_host_trace_t *ht);
/* A whole JSON reply checked and read: 0, or -EPROTO with ht->err set. */
int tg__host_aux_reply(tg_host_trace_t *ht, json_t *doc);
void tg__host_aux_result(tg_host_trace_t *ht, const tg_trace_end_t *e,
    tg_aux_result_t *ar);
void tg__host_aux_release(tg_host_trace_t *ht);

/* host_output.c */
int tg__host_emit(tg_plugin_req_t *req, const char *reasoning, size_t rlen,
    const char *content, size_t clen);
int tg__host_finish(tg_plugin_req_t *req, const tg_finish_t *fin);
int tg__host_finish_trace(tg_plugin_req_t *req, tg_plugin_trace_t *winner);
int tg__host_fail(tg_plugin_req_t *req, int http_status, const char *type,
    const char *message);
int tg__host_live_relay(tg_host_req_t *hr, tg_host_trace_t *ht,
    const tg_delta_t *d);
int tg__host_keepalive_start(tg_host_req_t *hr);
void tg__host_error(tg_host_req_t *hr, const tg_oa_error_t *err);
int tg__host_live_rest(tg_host_req_t *hr, tg_host_trace_t *ht);
json_t *tg__host_str(const char *s, size_t n);
const char *tg__host_model(tg_host_req_t *hr, tg_host_trace_t *ht);
int tg__host_send_json(tg_host_req_t *hr, json_t *doc);
/* HEAD of a streamed answer, once, before its first DATA. */
int tg__host_sse_head(tg_host_req_t *hr);
/* One streamed chunk of a choice; finish non-NULL makes it the choice's
 * last one; model_of: the trace whose model it names (NULL: the
 * client's). */
int tg__host_chunk(tg_host_req_t *hr, uint32_t choice,
    tg_host_trace_t *model_of, const char *rs, size_t rl, const char *cs,
    size_t cl, const char *finish, const char *logprobs);

/* host_choice.c */
int tg__host_choices_init(tg_host_req_t *hr);
void tg__host_choices_free(tg_host_req_t *hr);
int tg__host_choice_pick(tg_host_req_t *hr, tg_host_trace_t *from,
    uint32_t *choice);
void tg__host_choice_take(tg_host_req_t *hr, tg_host_trace_t *ht,
    uint32_t choice);
int tg__host_live_ended(tg_host_req_t *hr, tg_host_trace_t *ht);
/* The response's end: the choices' finish, usage, the summary, END. */
int tg__host_end(tg_host_req_t *hr, tg_host_trace_t *usage_of,
    const char *finish);

/* host_responses.c: the output of a /responses request (its text as
 * Responses stream events; its end: the response object, stored when
 * asked, then END).  resp_end takes summary and usage. */
int tg__host_resp_chunk(tg_host_req_t *hr, const char *rs, size_t rl,
    const char *cs, size_t cl);
int tg__host_resp_end(tg_host_req_t *hr, json_t *summary, json_t *usage);

/* host_select.c: the plugin version and options of r, or err filled
 * (400 for the client's mistakes, 5xx for the server's). */
int tg__host_select(tg_request_t *r, tg_host_req_t *hr, tg_oa_error_t *err);

/* Parses and checks each thinkgate_strategy of g (its "strategies")
 * against reg's plugins, once per generation: 0, or -EINVAL (-ENOENT for
 * an unknown strategy) with err naming the text, where nginx read it and
 * why (unknown strategy, unknown option, bad value).  reg NULL (no
 * --plugin-dir): the texts alone are checked.  For registration. */
int tg_host_check_strategies(tg_plugin_registry_t *reg, tg_generation_t *g,
    char *err, size_t errlen);

#endif /* TG_STRATEGY_HOST_H */
