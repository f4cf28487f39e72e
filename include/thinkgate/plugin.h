/*
 * thinkgate strategy plugin ABI.
 *
 * A strategy plugin is a shared object in the engine's --plugin-dir that
 * exports exactly one symbol, TG_PLUGIN_SYMBOL ("thinkgate_plugin"): a
 * const tg_plugin_t.  The engine reads abi_version and signature first and
 * refuses the file, naming it and both versions, when they differ; only
 * then does it read the rest.  The plugin links nothing from the engine:
 * everything it may do goes through the const tg_host_api_t table the host
 * hands to load().  Entries are only ever appended to that table; a plugin
 * built against an older header sees a prefix of it (api->size says how
 * much).  Fields are only ever appended to the end of tg_plugin_t too:
 * the host copies the plugin's size bytes of it and reads a field the
 * plugin's size does not cover as NULL or 0.
 *
 * ABI versions.  2: tg_plugin_t lost the spare[8] that ended it (see the
 * descriptor below); an ABI-1 plugin is refused, the message naming
 * both versions, and builds again against this header once its
 * descriptor no longer fills spare[] (drop the trailing "{ NULL }").
 * The handles' own struct tags (tg_plugin_req_t, ...) and
 * counter_add_req came with it; they alone would not have needed a new
 * version.
 *
 * Threading: the engine is one event loop; every callback runs on it, one
 * at a time.  A callback must not block (no file, network or sleep calls):
 * work that waits goes through the host (traces, aux requests, timers, kv).
 *
 * Lifetime of a request, as the plugin sees it:
 *
 *   start()  ->  { on_delta() | on_trace_end() | on_aux_result() |
 *                  on_timer() }*  ->  [on_cancel()]  ->  destroy()
 *
 * The plugin ends a request by calling finish(), finish_trace() or fail()
 * exactly once.  After that, the host cancels every trace and aux request
 * still running (their callbacks are not called any more) and calls
 * destroy() once nothing refers to the request.  If the client leaves
 * first, on_cancel() is called, then the host cancels everything and calls
 * destroy(); calls to finish/fail after on_cancel are ignored.
 *
 * Return vocabulary: 0 on success, negative errno-style codes on failure,
 * with a message retrievable by api->last_error(req).  A host function that
 * takes a callback and returns an error never calls that callback.
 *
 * Memory: api->alloc() hands out request-arena memory (aligned for any
 * type, like malloc) freed with the request; the per-request state block
 * (state_size bytes, zeroed) likewise.  Strings the host passes in
 * callbacks or info structs are valid until the callback returns (or, for
 * info structs, until control returns to the host); copy what you keep.
 * Every string a plugin passes to the host (messages, summary keys and
 * values, spec texts) is copied before the host function returns: stack
 * buffers are fine.
 *
 * Cancellation: a trace the plugin cancels gets no more callbacks, not
 * even on_trace_end (its partial tokens still count in the summary).
 * trace_cancel on a trace that already ended returns -EALREADY.
 * on_trace_end is called for traces that finished (DONE), failed, or were
 * cancelled by the host for a reason other than the plugin's own call.
 *
 * Live traces and choices: a live trace (TG_TRACE_F_LIVE) is relayed to
 * the client as it streams, as one choice of the response.  Each live
 * trace started opens the next choice (0, 1, ...: its index is the order
 * in which live traces were started) while fewer than the client's n
 * (api->client_n; 1 when the client gave none) are open; after that it
 * writes on in the lowest open choice whose live trace ended or was
 * cancelled, and is refused while every choice has one running.  A
 * continuation of a live trace writes on in that trace's choice.  With
 * n = 1 there is therefore one live trace at a time, as there always was.
 * With one choice the plugin ends it: finish() sends its finish_reason.
 * With several, a choice closes when its live trace ends DONE (streamed,
 * its finish chunk goes out then, with the trace's finish_reason), and
 * finish() closes the choices still open with fin->finish_reason: call it
 * once every choice has its answer.  emit() writes choice 0.  The
 * client's n applies to strategies that start several live traces
 * (passthrough); one that picks a winner (finish_trace()) answers one
 * choice whatever n was.
 *
 * Structs the host fills and hands over by pointer (tg_request_info_t,
 * tg_delta_t, tg_trace_end_t, tg_aux_result_t) only grow at their end;
 * a field appended to one is there when api->size covers the host table
 * entry appended with it (named in the field's comment).
 *
 * Options of type TG_OPT_ENUM and TG_OPT_STRING are read with opt_str.
 *
 * Summary keys strategy, traces_started, traces_cancelled, tokens (the
 * completion tokens of every trace and aux request) and aux_tokens (those
 * of the aux requests, there when the request made any) and counters
 * (counter_add_req()'s, there when the request counted any) are the
 * host's and cannot be set; winner is set by the host from
 * finish_trace() unless the plugin sets it, in which case the plugin's
 * value stands.  answer is the plugin's to set (the host does not read
 * answers).
 */

#ifndef THINKGATE_PLUGIN_H
#define THINKGATE_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define TG_PLUGIN_ABI_VERSION   2u
#define TG_PLUGIN_SYMBOL        "thinkgate_plugin"

/* The build signature: what must agree beyond the version number. */
#define TG__STR2(x)             #x
#define TG__STR(x)              TG__STR2(x)
#define TG_PLUGIN_SIGNATURE \
    "thinkgate-abi-" TG__STR(TG_PLUGIN_ABI_VERSION) \
    "/ptr" TG__STR(__SIZEOF_POINTER__) "/le"


/*
 * The handles the host hands out.  They are opaque: a plugin only passes
 * them back.  Their struct tags are the ABI's own, never defined, and
 * distinct from the engine's types; the host converts between the two
 * inside its own functions, so that the engine can change its structs
 * without a plugin noticing.
 */
typedef struct tg_plugin_req_s    tg_plugin_req_t;    /* one client request */
typedef struct tg_plugin_trace_s  tg_plugin_trace_t;  /* one streamed
                                                         generation */
typedef struct tg_plugin_aux_s    tg_plugin_aux_t;    /* one auxiliary
                                                         completion */
typedef struct tg_plugin_timer_s  tg_plugin_timer_t;  /* one request timer */

/* The short names plugins use.  The host defines TG_PLUGIN_HOST before
 * including this file: its own tg_trace_t is another type. */
#ifndef TG_PLUGIN_HOST
typedef tg_plugin_req_t    tg_req_t;
typedef tg_plugin_trace_t  tg_trace_t;
typedef tg_plugin_aux_t    tg_aux_t;
typedef tg_plugin_timer_t  tg_timer_t;
#endif


/* ---- options -------------------------------------------------------- */

typedef enum {
    TG_OPT_INT = 1,     /* int64; min/max bound it */
    TG_OPT_DOUBLE,      /* double; min/max bound it */
    TG_OPT_BOOL,        /* on/off, true/false, 1/0 */
    TG_OPT_STRING,      /* free text up to 256 bytes */
    TG_OPT_ENUM         /* one of the '|'-separated words in choices */
} tg_opt_type_t;

/*
 * One row of a plugin's option table; the table ends with a row whose name
 * is NULL.  The host parses options from the request ("thinkgate" object),
 * the X-Thinkgate-Strategy header and the location default, checks every
 * one against this table (an unknown name or a value out of bounds is a
 * 400 naming it) and applies def for the rest.
 */
typedef struct {
    const char     *name;
    tg_opt_type_t   type;
    const char     *def;        /* default, as text; NULL: no value */
    double          min;        /* INT/DOUBLE bounds, inclusive */
    double          max;
    const char     *choices;    /* ENUM: "exact|none" */
    const char     *doc;        /* one line, shown by the admin API */
} tg_option_t;


/* ---- what the host tells the plugin -------------------------------- */

typedef enum {
    TG_ENDPOINT_CHAT = 1,       /* /v1/chat/completions */
    TG_ENDPOINT_COMPLETIONS,    /* /v1/completions */
    TG_ENDPOINT_EMBEDDINGS      /* /v1/embeddings (aux requests only;
                                   a host whose table ends before
                                   kv_limits refuses it: -EINVAL) */
} tg_endpoint_t;

typedef struct {
    tg_endpoint_t   endpoint;
    int             stream;         /* client asked for SSE */
    const char     *model;          /* client's model field */
    const char     *body;           /* client's JSON, "thinkgate" removed */
    size_t          body_len;
    const char     *problem;        /* last user message (chat) or prompt */
    size_t          problem_len;
    const char     *pool;           /* the location's pool */
    const char     *strategy;       /* this plugin's name */
    int             has_seed;
    int64_t         seed;
    uint64_t        id;             /* engine-wide request id */
} tg_request_info_t;

typedef enum {
    TG_TRACE_QUEUED = 1,    /* waiting for a backend slot */
    TG_TRACE_RUNNING,
    TG_TRACE_DONE,          /* the backend finished it */
    TG_TRACE_CANCELLED,     /* the plugin or the host cancelled it */
    TG_TRACE_FAILED         /* backend error */
} tg_trace_state_t;

typedef struct {
    uint32_t            index;      /* 0, 1, ... in start order */
    tg_trace_state_t    state;
    uint32_t            tokens;     /* completion tokens so far */
    const char         *backend;    /* backend name */
    const char         *reasoning;  /* thinking text so far */
    size_t              reasoning_len;
    const char         *content;    /* answer text so far */
    size_t              content_len;
    const char         *finish_reason;  /* "stop", "length" or NULL */
    uint64_t            started_ms;     /* engine clock, ms */
    uint64_t            first_token_ms; /* 0 until the first token */
    uint64_t            ended_ms;       /* 0 while running */
    void               *data;           /* the spec's data pointer */
} tg_trace_info_t;

/* One streamed chunk of one trace. */
typedef struct {
    const char     *reasoning;      /* new thinking text, may be empty */
    size_t          reasoning_len;
    const char     *content;        /* new answer text, may be empty */
    size_t          content_len;
    uint32_t        tokens;         /* tokens this chunk carried */
} tg_delta_t;

typedef struct {
    tg_trace_state_t    state;      /* DONE, CANCELLED or FAILED */
    const char         *finish_reason;
    uint32_t            tokens;     /* final completion tokens */
    int                 http_status; /* backend status; 0 if none */
    const char         *error;      /* FAILED: why */
} tg_trace_end_t;

/* A trace to start.  Zero-initialise and set what differs from the
 * client's request. */
#define TG_TRACE_F_LIVE      0x0001  /* relay deltas to the client as they
                                        arrive, as one choice (above) */
#define TG_TRACE_F_LOGPROBS  0x0002  /* ask for logprobs */
#define TG_TRACE_F_WHOLE     0x0004  /* the plugin needs nothing of the
                                        trace before its end: when the
                                        client does not stream, the host
                                        may ask the backend for the whole
                                        answer at once, with the backend's
                                        own usage and errors (no deltas
                                        then) */

typedef struct {
    const char     *pool;       /* NULL: the request's pool */
    const char     *backend;    /* NULL: the pool's policy picks */
    const char     *messages_json;  /* NULL: the client's messages/prompt;
                                       else a JSON array of messages */
    const char     *assistant_prefix;   /* non-NULL: continue this partial
                                           assistant message */
    size_t          assistant_prefix_len;
    int32_t         max_tokens;     /* 0: the client's */
    double          temperature;    /* < 0: the client's (set -1) */
    int             seed_mode;      /* 0: client seed + index when the
                                       client gave one, else none;
                                       1: use seed below */
    int64_t         seed;
    uint32_t        flags;          /* TG_TRACE_F_* */
    void           *data;           /* returned in tg_trace_info_t */
} tg_trace_spec_t;

/* An auxiliary completion: non-streamed, not shown to the client. */
typedef struct {
    const char     *pool;           /* required */
    const char     *backend;        /* NULL: the pool's policy picks */
    tg_endpoint_t   endpoint;
    const char     *messages_json;  /* CHAT: JSON array of messages */
    const char     *prompt;         /* COMPLETIONS: the prompt text */
    int32_t         max_tokens;
    double          temperature;
    int32_t         top_logprobs;   /* 0: no logprobs */
    void           *data;
    /* Appended with kv_limits, read only for TG_ENDPOINT_EMBEDDINGS (a
     * value older plugins cannot set, so they never reach past their
     * struct): the texts to embed, sent as "input", an array of strings
     * (as vLLM, TEI and llama.cpp --embedding serve it), 1 to
     * TG_AUX_MAX_INPUTS of them.  input_lens NULL: NUL-terminated.
     * dimensions > 0 asks for that many (models that can shorten). */
    const char *const *inputs;
    const size_t   *input_lens;
    size_t          ninputs;
    int32_t         dimensions;
} tg_aux_spec_t;

#define TG_AUX_MAX_INPUTS   256
#define TG_AUX_MAX_STOP     4
#define TG_AUX_MAX_STOP_LEN 64

/* One alternative for the first generated token: its text (UTF-8, as the
 * backend's tokenizer decodes it; may start with a space) and its natural
 * log probability (<= 0). */
typedef struct {
    const char     *token;
    size_t          token_len;
    double          logprob;
} tg_logprob_t;

typedef struct {
    int             status;         /* 0, or negative errno */
    int             http_status;
    const char     *content;        /* choices[0] text */
    size_t          content_len;
    const char     *body;           /* the backend's whole JSON reply */
    size_t          body_len;
    const char     *error;
    void           *data;
    /* Appended with client_n: choices[0]'s thinking (message.reasoning_
     * content or .reasoning), "" when the backend sent none; a
     * completions reply keeps everything in content. */
    const char     *reasoning;
    size_t          reasoning_len;
    /* Appended with kv_limits (fields valid during the callback only):
     * top: the first generated token's alternatives, as the backend
     * ranked them, when the spec asked for top_logprobs and the reply
     * carried them (chat: choices[0].logprobs.content[0].top_logprobs;
     * completions: choices[0].logprobs.top_logprobs[0]); NULL and 0
     * otherwise, which is no error: a backend may ignore logprobs.
     * vectors: an EMBEDDINGS reply, nvectors rows of dim floats,
     * row-major, row i for inputs[i] (data[].index decides the row, not
     * the reply's order).  A reply that is not that shape (missing or
     * duplicate index, rows of different lengths, non-numbers, fewer
     * rows than inputs) is status -EPROTO with error saying what, and
     * vectors NULL. */
    const tg_logprob_t *top;
    size_t          ntop;
    const float    *vectors;
    size_t          nvectors;
    size_t          dim;
    /* Appended with aux_start_stop: choices[0].finish_reason ("stop":
     * the model ended or wrote a stop sequence; "length": max_tokens
     * ran out), NULL when the reply had none. */
    const char     *finish_reason;
} tg_aux_result_t;

typedef struct {
    const char     *name;
    double          level;          /* 0..1 */
} tg_skill_t;

typedef struct {
    const char         *name;
    const char         *model;
    uint32_t            in_flight;
    uint32_t            max_inflight;
    const tg_skill_t   *skills;
    size_t              nskills;
} tg_backend_info_t;

/* How the request ends (finish()). */
typedef struct {
    const char     *finish_reason;  /* "stop", "length" */
    tg_plugin_trace_t     *usage_of;       /* report this trace's usage; NULL:
                                       the live traces' usage summed
                                       (completion tokens of all of
                                       them, the prompt counted once,
                                       as OpenAI reports n choices) */
} tg_finish_t;

#define TG_KV_MAX_KEY       200
#define TG_KV_MAX_VALUE     (1024 * 1024)
#define TG_KV_MAX_PENDING   64

/*
 * 1 when the host table api has entry (a field of tg_host_api_t): the
 * table is there, speaks this header's ABI version and its size covers
 * the entry.  load() checks the last entry it calls unconditionally
 * (a plugin that calls up to log: !TG_HOST_HAS(api, log) refuses the
 * load); an entry the plugin can do without is checked where it is
 * used.
 */
#define TG_HOST_HAS(api, entry) \
    ((api) != NULL && (api)->abi_version == TG_PLUGIN_ABI_VERSION \
     && (api)->size >= offsetof(tg_host_api_t, entry) \
                       + sizeof(((tg_host_api_t *) 0)->entry))
/* The older name, kept for plugins that use it. */
#define TG_API_HAS(api, entry)  TG_HOST_HAS(api, entry)

typedef void (*tg_score_cb)(tg_plugin_req_t *req, void *data, const float *sim,
    size_t n);

/* What score_kind() compares (api->score_kind). */
typedef enum {
    TG_SCORE_KIND_LEXICAL = 0,  /* hashed character 3-grams, as score() */
    TG_SCORE_KIND_EMBED         /* sentence embeddings, all-MiniLM-L6-v2
                                   (thinkgate_embedder) */
} tg_score_kind_t;

/*
 * The answer to one score_kind() call.  Everything it points to is the
 * host's and valid until the callback returns: copy what you keep.
 */
typedef struct {
    int                 status;     /* 0, or a negative errno: -EIO (the
                                       model failed), -ENOMEM, -ECANCELED
                                       (the engine is stopping) */
    const char         *error;      /* "" when status is 0; else why */
    tg_score_kind_t     kind;
    const char         *device;     /* what ran it: "cpu", "cuda", or
                                       "lexical" for TG_SCORE_KIND_LEXICAL */
    size_t              n;          /* texts; 0 when status != 0 */
    const float        *sim;        /* n x n row-major cosines, 1 on the
                                       diagonal (0 for an empty lexical
                                       text); NULL when status != 0 */
    size_t              dim;        /* EMBED: vector size (384); else 0 */
    const float        *vectors;    /* EMBED: n x dim row-major, each row
                                       L2-normalised; else NULL */
} tg_score_result_t;

typedef void (*tg_score_kind_cb)(tg_plugin_req_t *req, void *data,
    const tg_score_result_t *res);
typedef void (*tg_kv_cb)(tg_plugin_req_t *req, void *data, int status,
    const char *value, size_t len);

enum { TG_LOG_ERROR = 0, TG_LOG_WARN, TG_LOG_INFO, TG_LOG_DEBUG };


/* ---- the host API table --------------------------------------------- */

typedef struct tg_host_api_s {
    uint32_t    abi_version;    /* TG_PLUGIN_ABI_VERSION of the host */
    uint32_t    size;           /* sizeof(tg_host_api_t) as the host built
                                   it: entries past it do not exist */

    /* The request. */
    const tg_request_info_t *(*request_info)(tg_plugin_req_t *req);
    void       *(*state)(tg_plugin_req_t *req);        /* state_size bytes */
    void       *(*alloc)(tg_plugin_req_t *req, size_t size);   /* arena */
    const char *(*last_error)(tg_plugin_req_t *req);

    /* Options, already checked against the table. */
    int64_t     (*opt_int)(tg_plugin_req_t *req, const char *name);
    double      (*opt_double)(tg_plugin_req_t *req, const char *name);
    int         (*opt_bool)(tg_plugin_req_t *req, const char *name);
    const char *(*opt_str)(tg_plugin_req_t *req, const char *name);

    /* Traces.  trace_start returns NULL on failure (last_error says why)
     * and never calls a callback from inside itself. */
    tg_plugin_trace_t *(*trace_start)(tg_plugin_req_t *req,
                                      const tg_trace_spec_t *spec);
    int         (*trace_cancel)(tg_plugin_req_t *req, tg_plugin_trace_t *t);
    /* Cancels t if it runs and starts a new trace that continues t's text
     * so far followed by append[len] (a chat request ending in the partial
     * assistant message with continue_final_message, or a completions
     * request).  spec may be NULL: t's own settings. */
    tg_plugin_trace_t *(*trace_continue)(tg_plugin_req_t *req,
                                         tg_plugin_trace_t *t,
                                         const char *append, size_t len,
                                         const tg_trace_spec_t *spec);
    int         (*trace_info)(tg_plugin_trace_t *t, tg_trace_info_t *out);
    size_t      (*trace_count)(tg_plugin_req_t *req);
    tg_plugin_trace_t *(*trace_at)(tg_plugin_req_t *req, size_t index);

    /* Auxiliary completions (verifier, judge, aggregator). */
    tg_plugin_aux_t   *(*aux_start)(tg_plugin_req_t *req,
                                    const tg_aux_spec_t *spec);
    int         (*aux_cancel)(tg_plugin_req_t *req, tg_plugin_aux_t *a);

    /* Output to the client.  emit() streams now (SSE) or accumulates
     * (non-streamed); finish_trace() answers with a whole trace, the way
     * self-consistency and FFS return their winner; finish() ends a
     * response of live choices (all of them, see above). */
    int         (*emit)(tg_plugin_req_t *req, const char *reasoning,
                        size_t rlen, const char *content, size_t clen);
    int         (*finish)(tg_plugin_req_t *req, const tg_finish_t *fin);
    /* winner must have ended DONE; otherwise -EINVAL. */
    int         (*finish_trace)(tg_plugin_req_t *req,
                                tg_plugin_trace_t *winner);
    int         (*fail)(tg_plugin_req_t *req, int http_status,
                        const char *type, const char *message);

    /* The "thinkgate" summary object and $thinkgate_* variables.  The host
     * fills strategy, traces_started, traces_cancelled, tokens,
     * aux_tokens and winner itself; plugins add their own figures. */
    int         (*summary_int)(tg_plugin_req_t *req, const char *key,
                               int64_t v);
    int         (*summary_str)(tg_plugin_req_t *req, const char *key,
                               const char *v);
    int         (*summary_json)(tg_plugin_req_t *req, const char *key,
                                const char *json);

    /* Timers: on_timer(req, timer, data) after ms milliseconds. */
    tg_plugin_timer_t *(*timer_start)(tg_plugin_req_t *req, uint64_t ms,
                                      void *data);
    int         (*timer_stop)(tg_plugin_req_t *req, tg_plugin_timer_t *tm);
    uint64_t    (*now_ms)(void);

    /* Similarity of n texts, all pairs, cosine of hashed n-gram vectors
     * (CPU or cuBLAS; the host batches the requests of one loop turn into
     * one matrix product).  cb gets an n x n row-major matrix. */
    int         (*score)(tg_plugin_req_t *req, const char *const *texts,
                         const size_t *lens, size_t n, tg_score_cb cb,
                         void *data);

    /* Backends of a pool, for plugins that choose experts. */
    size_t      (*pool_backends)(tg_plugin_req_t *req, const char *pool,
                                 tg_backend_info_t *out, size_t max);

    /* Redis, under the plugin's own key space: the key is stored as the
     * configured prefix + "plugin:<plugin name>:" + key.  Keys are 1 to
     * TG_KV_MAX_KEY bytes of [A-Za-z0-9_.:-]; values up to
     * TG_KV_MAX_VALUE bytes, any bytes; ttl_ms 0 keeps the value until
     * overwritten.  A bad key or value, or a NULL cb, is -EINVAL
     * (-EMSGSIZE for a value too large) with last_error naming it.
     * -ENOTCONN (no callback) when no Redis is configured or the link
     * is down at the call; -EBUSY when the request has
     * TG_KV_MAX_PENDING calls in flight.  On 0, cb runs once, later:
     * status 0 (get: value and len, valid during the callback; set:
     * NULL, 0), -ENOENT (get: no such key), -ETIMEDOUT or -ECONNRESET
     * (Redis stalled or went away meanwhile), -EIO (Redis refused).
     * A request that ends first drops its calls' callbacks. */
    int         (*kv_get)(tg_plugin_req_t *req, const char *key, tg_kv_cb cb,
                          void *data);
    int         (*kv_set)(tg_plugin_req_t *req, const char *key, const char *v,
                          size_t len, uint64_t ttl_ms, tg_kv_cb cb,
                          void *data);

    void        (*log)(tg_plugin_req_t *req, int level, const char *fmt, ...)
                    __attribute__((format(printf, 3, 4)));
    /* Adds delta to the engine-wide counter name ([a-z0-9_]{1,64}; the
     * status page's "counters").  Called from a callback of a request,
     * it counts for that request too, as counter_add_req() does; from
     * load() or unload(), the total only. */
    void        (*counter_add)(const char *name, int64_t delta);

    /* Appended entries go here. */

    /* The number of choices the client asked for: its n, 1 when it gave
     * none.  It bounds the live traces running at once (see "Live traces
     * and choices" above). */
    uint32_t    (*client_n)(tg_plugin_req_t *req);

    /* kv's limits as this host enforces them (max_key, max_value in
     * bytes; either may be NULL).  Its presence also says that the host
     * fills the tg_aux_result_t fields and serves the tg_aux_spec_t
     * fields and endpoint appended with it. */
    void        (*kv_limits)(size_t *max_key, size_t *max_value);

    /* Similarity of n texts (0 < n <= 4096), all pairs, of a kind: like
     * score(), but cb hears which kind and device ran it and, for EMBED,
     * the vectors too.  cb is called once, from the loop, never from
     * inside this call; not at all once the request is over (its answer
     * is dropped safely, even when the model is still running it).
     * EMBED calls of one loop turn, from all requests, go through the
     * model as one batch, off the loop.  Returns 0, or, without calling
     * cb: -EINVAL (bad arguments, unknown kind, request over); -ENOTSUP
     * for EMBED without a thinkgate_embedder directive (last_error names
     * it: plugins answer 400); -EBUSY when the embedder's queue is full,
     * at once rather than a stall (last_error says how full: plugins
     * answer 503 or retry later); -E2BIG when n alone is more than the
     * queue holds (4 x the directive's max_batch); -ENOMEM. */
    int         (*score_kind)(tg_plugin_req_t *req, tg_score_kind_t kind,
                              const char *const *texts, const size_t *lens,
                              size_t n, tg_score_kind_cb cb, void *data);

    /* aux_start() for chat or completions with stop sequences: the
     * backend ends the completion before the first of stop[0..nstop) it
     * would write (sent as OpenAI's "stop"; vLLM, llama.cpp and the sim
     * leave the stop text out of the reply and say finish_reason
     * "stop").  1 to TG_AUX_MAX_STOP sequences of 1 to
     * TG_AUX_MAX_STOP_LEN bytes (stop NULL and nstop 0: aux_start()
     * itself), else NULL with last_error saying why.
     * Its presence also says the host fills tg_aux_result_t's
     * finish_reason. */
    tg_plugin_aux_t   *(*aux_start_stop)(tg_plugin_req_t *req,
                                         const tg_aux_spec_t *spec,
                                         const char *const *stop,
                                         size_t nstop);

    /* counter_add() for a request, wherever it is called from: delta
     * goes to the engine-wide total of name (the status page's
     * "counters", as counter_add) and to the request's own count, which
     * its summary shows as "counters": an object of the names it counted
     * (a host key: summary_* cannot set it).  Counts made once the
     * summary went out reach the totals only.  name is [a-z0-9_]{1,64}.
     * Returns 0, -EINVAL (bad name or request, last_error says which) or
     * -ENOMEM. */
    int         (*counter_add_req)(tg_plugin_req_t *req, const char *name,
                                   int64_t delta);
} tg_host_api_t;


/* ---- the descriptor ------------------------------------------------- */

typedef struct tg_plugin_s {
    uint32_t            abi_version;    /* TG_PLUGIN_ABI_VERSION */
    uint32_t            size;           /* sizeof(tg_plugin_t) */
    const char         *signature;      /* TG_PLUGIN_SIGNATURE */

    const char         *name;           /* matches the file name */
    const char         *version;        /* the plugin's own, free text */
    const char         *description;
    const tg_option_t  *options;        /* NULL-name terminated */
    size_t              state_size;     /* per-request state bytes */

    /* Once per loaded copy.  load() gets the host table (keep it in a
     * static: each loaded copy has its own statics); a negative return
     * refuses the load with err as the reason. */
    int   (*load)(const tg_host_api_t *api, char *err, size_t err_size);
    void  (*unload)(void);

    /* start() returns 0, or a negative code after calling fail(). */
    int   (*start)(tg_plugin_req_t *req);
    void  (*on_delta)(tg_plugin_req_t *req, tg_plugin_trace_t *t,
                      const tg_delta_t *d);
    void  (*on_trace_end)(tg_plugin_req_t *req, tg_plugin_trace_t *t,
                          const tg_trace_end_t *e);
    void  (*on_aux_result)(tg_plugin_req_t *req, tg_plugin_aux_t *a,
                           const tg_aux_result_t *r);
    void  (*on_timer)(tg_plugin_req_t *req, tg_plugin_timer_t *tm, void *data);
    void  (*on_cancel)(tg_plugin_req_t *req);
    void  (*destroy)(tg_plugin_req_t *req);

    /*
     * Appended fields go here.  ABI 1 ended with void *spare[8], "future
     * fields", yet its rule put new fields before it, so that no field
     * could ever use it; and it was not needed, since size already tells
     * the host which fields a plugin has.  ABI 2 retired it: keeping it
     * and putting fields into it would have meant two rules for growing
     * one struct (zero-means-absent in the spare slots, size beyond
     * them) and 64 dead bytes in every descriptor.
     */
} tg_plugin_t;


/* Fills the first three fields. */
#define TG_PLUGIN_HEADER \
    TG_PLUGIN_ABI_VERSION, sizeof(tg_plugin_t), TG_PLUGIN_SIGNATURE

/*
 * Defines the plugin's one exported symbol, the descriptor, visible even
 * when the plugin is built with -fvisibility=hidden (as it should be: the
 * descriptor is the only symbol the engine looks up):
 *
 *     TG_PLUGIN_EXPORT = {
 *         TG_PLUGIN_HEADER,
 *         "name", "1.0", "what it does", options, sizeof(state_t),
 *         load, unload, start, ...
 *     };
 */
#define TG_PLUGIN_EXPORT \
    __attribute__((visibility("default"))) const tg_plugin_t thinkgate_plugin


#endif /* THINKGATE_PLUGIN_H */
