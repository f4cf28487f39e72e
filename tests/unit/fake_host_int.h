/*
 * thinkgate — the fake strategy host's insides, shared by its files:
 * fake_host.c (lifecycle, options, scripts, results), fake_host_loop.c
 * (the virtual clock), fake_host_api.c (the host table and its
 * synchronous entries) and fake_host_async.c (entries that call back
 * later: timers, aux requests, score, kv).  Tests include fake_host.h
 * only.
 */
#ifndef TG_FAKE_HOST_INT_H
#define TG_FAKE_HOST_INT_H

#include <stddef.h>
#include <stdint.h>

#include "fake_host.h"

typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} fake_buf_t;

typedef struct {
    int      set;
    int64_t  i;
    double   d;
    char     s[260];
} fake_opt_t;

enum { FAKE_JOB_TIMER = 1, FAKE_JOB_AUX, FAKE_JOB_SCORE, FAKE_JOB_KV };

/* Anything that calls the plugin back later: a timer, an aux request, a
 * score or kv reply.  Timers and aux handles are jobs. */
typedef struct fake_job_s {
    struct fake_job_s  *next;
    int                 kind;
    int                 active;
    uint64_t            due;
    void               *data;
    tg_score_cb         score_cb;
    tg_score_kind_cb    score_kind_cb;  /* a score_kind() job */
    tg_score_kind_t     score_kind;
    float              *sim;
    size_t              n;
    tg_kv_cb            kv_cb;
    int                 status;
    char               *value;
    size_t              len;
    float              *vectors;        /* an embeddings aux reply */
    size_t              nvectors;
    size_t              dim;
    int                 endpoint;       /* aux: TG_ENDPOINT_* */
    const fake_aux_script_t *script;    /* aux: scripted reply, or NULL */
    const char         *finish;         /* aux: finish_reason, or NULL */
} fake_job_t;

#define FAKE_HOST_MAX_TOP  16
#define FAKE_HOST_MAX_BACKENDS  16

typedef struct fake_block_s {
    struct fake_block_s  *next;
    max_align_t           data[];
} fake_block_t;

/* The fake host gives the ABI's opaque handles (plugin.h) its own
 * bodies: a trace handle is this struct, a request handle the fake host
 * itself (the engine's host converts to its own types instead). */
struct tg_plugin_trace_s {
    fake_host_t          *h;
    size_t                index;
    fake_trace_script_t   s;
    tg_trace_spec_t       spec;
    size_t                rlen;
    size_t                clen;
    uint32_t              final;      /* tokens it reaches before it ends */
    uint32_t              mpt;
    uint64_t              t0;         /* when token 0 would be */
    uint32_t              produced;
    size_t                bytes;
    tg_trace_state_t      state;
    const char           *finish_reason;
    uint64_t              started_ms;
    uint64_t              first_token_ms;
    uint64_t              ended_ms;
    int                   cancelled_by_plugin;
    int                   end_order;
    fake_trace_result_t   result;
    char                  backend[64];    /* spec->backend, copied */
    char                  pool[64];       /* spec->pool, copied */
    char                 *messages;       /* spec->messages_json, copied */
};

struct tg_plugin_req_s {
    const tg_plugin_t    *plugin;
    tg_request_info_t     info;
    void                 *state;
    fake_opt_t           *opts;
    size_t                nopts;
    char                  err[512];

    fake_trace_script_t   scripts[FAKE_HOST_MAX_TRACES];
    size_t                nscripts;
    tg_trace_t           *traces[FAKE_HOST_MAX_TRACES];
    size_t                ntraces;
    int                   ends;

    uint64_t              now;
    uint64_t              step;
    uint64_t              cancel_at;
    int                   client_gone;
    fake_job_t           *jobs;
    fake_job_t           *jobs_tail;
    fake_block_t         *arena;
    char                 *aux_reply;
    char                 *aux_reasoning;
    uint64_t              aux_delay;
    tg_logprob_t          aux_top[FAKE_HOST_MAX_TOP];
    char                  aux_top_text[FAKE_HOST_MAX_TOP][32];
    size_t                aux_ntop;
    int                   aux_status;     /* < 0: every aux reply fails */
    fake_aux_script_t     aux_scripts[FAKE_HOST_MAX_AUX];
    size_t                naux_scripts;
    size_t                naux;           /* aux requests started */
    char                 *aux_text[FAKE_HOST_MAX_AUX];
    char                 *aux_stop[FAKE_HOST_MAX_AUX];
    char                 *continue_append;
    char                 *aux_error;
    int                   kv_down;        /* kv calls: -ENOTCONN */
    int                   embedder;       /* score_kind EMBED answers */
    tg_backend_info_t     backends[FAKE_HOST_MAX_BACKENDS];
    size_t                nbackends;      /* 0: one "fake0" */
    uint32_t              client_n;
    char                 *pools;          /* NULL: every pool exists */

    fake_end_t            end;
    int                   end_calls;
    uint64_t              end_ms;
    int                   winner;
    int                   fail_status;
    char                 *fail_message;
    const char           *finish_reason;
    uint32_t              usage;
    fake_buf_t            out_reasoning;
    fake_buf_t            out_content;

    struct { char *key; char *json; }           *summary;
    size_t                nsummary;
    struct { char *name; int64_t value; }       *counters;
    size_t                ncounters;
    struct { char *key; char *value; size_t len; } *kv;
    size_t                nkv;

    int                   violations;
    char                  violation[512];
    int                   destroyed;
};

/* now_ms() and counter_add() take no request: they use the running one
 * (fake_host.c). */
extern fake_host_t  *fake_host_current;

/* The plugin sees the host as its request. */
static inline fake_host_t *
fake__req(tg_req_t *req)
{
    return req;
}


/* The request ended one way or another: no more callbacks. */
static inline int
fake__over(const fake_host_t *h)
{
    return h->end != FAKE_END_NONE || h->client_gone;
}


static inline int
fake__running(const tg_trace_t *t)
{
    return t->state == TG_TRACE_QUEUED || t->state == TG_TRACE_RUNNING;
}

/* fake_host.c */
void fake__violation(fake_host_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
int fake__buf_add(fake_host_t *h, fake_buf_t *b, const char *s, size_t len);
int fake__check_open(fake_host_t *h, const char *what);

/* fake_host.c: 0 when pool (NULL: the request's) exists, else -ENOENT
 * with the reason in h->err. */
int fake__pool_known(fake_host_t *h, const char *pool);

/* fake_host_api.c: the table handed to the plugin's load(). */
const tg_host_api_t *fake_host_api(void);

/* fake_host_async.c: the table's entries that call back later. */
tg_aux_t *fake_aux_start(tg_req_t *req, const tg_aux_spec_t *spec);
tg_aux_t *fake_aux_start_stop(tg_req_t *req, const tg_aux_spec_t *spec,
    const char *const *stop, size_t nstop);
int fake_aux_cancel(tg_req_t *req, tg_aux_t *a);
tg_timer_t *fake_timer_start(tg_req_t *req, uint64_t ms, void *data);
int fake_timer_stop(tg_req_t *req, tg_timer_t *tm);
uint64_t fake_now_ms(void);
int fake_score(tg_req_t *req, const char *const *texts, const size_t *lens,
    size_t n, tg_score_cb cb, void *data);
int fake_score_kind(tg_req_t *req, tg_score_kind_t kind,
    const char *const *texts, const size_t *lens, size_t n,
    tg_score_kind_cb cb, void *data);
void fake_kv_limits(size_t *max_key, size_t *max_value);
int fake_kv_get(tg_req_t *req, const char *key, tg_kv_cb cb, void *data);
int fake_kv_set(tg_req_t *req, const char *key, const char *v, size_t len,
    uint64_t ttl_ms, tg_kv_cb cb, void *data);

#endif /* TG_FAKE_HOST_INT_H */
