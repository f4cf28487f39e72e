/*
 * thinkgate — the fake strategy host: state, the virtual-clock loop,
 * results, and every host API entry.  See fake_host.h for the model.
 *
 * Test code: it favours being obviously right over being fast, and keeps
 * one request per host, so the tg_req_t the plugin sees is the host.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    float              *sim;
    size_t              n;
    tg_kv_cb            kv_cb;
    int                 status;
    char               *value;
    size_t              len;
} fake_job_t;

typedef struct fake_block_s {
    struct fake_block_s  *next;
    max_align_t           data[];
} fake_block_t;

struct tg_trace_s {
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
};

struct tg_req_s {
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
    uint64_t              aux_delay;

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

static void fake__violation(fake_host_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int fake__buf_add(fake_host_t *h, fake_buf_t *b, const char *s,
    size_t len);
static const tg_host_api_t *fake_host_api(void);

/* The request ended one way or another: no more callbacks. */
static int
fake__over(const fake_host_t *h)
{
    return h->end != FAKE_END_NONE || h->client_gone;
}


static int
fake__running(const tg_trace_t *t)
{
    return t->state == TG_TRACE_QUEUED || t->state == TG_TRACE_RUNNING;
}

static int fake__opt_parse(fake_host_t *h, const tg_option_t *o,
    const char *v, fake_opt_t *out);
static uint64_t fake__next_time(fake_host_t *h);
static void fake__deliver(fake_host_t *h, tg_trace_t *t, uint64_t now);
static void fake__end_trace(fake_host_t *h, tg_trace_t *t);
static void fake__run_job(fake_host_t *h, fake_job_t *j);

/* now_ms() and counter_add() take no request: they use the running one. */
static fake_host_t  *fake_host_current;


fake_host_t *
fake_host_new(const tg_plugin_t *plugin)
{
    fake_host_t        *h;
    const tg_option_t  *o;
    char                err[256] = "";
    size_t              i;

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->plugin = plugin;
    h->step = 1;
    h->winner = -1;
    h->cancel_at = UINT64_MAX;
    h->info.endpoint = TG_ENDPOINT_CHAT;
    h->info.stream = 1;
    h->info.model = "fake-model";
    h->info.body = "{\"messages\":[]}";
    h->info.body_len = strlen(h->info.body);
    h->info.problem = "What is 1+1?";
    h->info.problem_len = strlen(h->info.problem);
    h->info.pool = "default";
    h->info.strategy = plugin->name;
    h->info.id = 1;

    for (o = plugin->options; o != NULL && o->name != NULL; o++) {
        h->nopts++;
    }
    if (h->nopts > 0) {
        h->opts = calloc(h->nopts, sizeof(fake_opt_t));
        if (h->opts == NULL) {
            free(h);
            return NULL;
        }
    }
    for (i = 0; i < h->nopts; i++) {
        o = &plugin->options[i];
        if (o->def != NULL
            && fake__opt_parse(h, o, o->def, &h->opts[i]) != 0)
        {
            fprintf(stderr, "fake host: %s: default of \"%s\" is invalid: "
                    "%s\n", plugin->name, o->name, h->err);
            fake__violation(h, "option \"%s\": bad default", o->name);
        }
    }
    if (plugin->state_size > 0) {
        h->state = calloc(1, plugin->state_size);
        if (h->state == NULL) {
            free(h->opts);
            free(h);
            return NULL;
        }
    }
    if (plugin->load(fake_host_api(), err, sizeof(err)) != 0) {
        fprintf(stderr, "fake host: %s refused to load: %s\n", plugin->name,
                err);
        free(h->state);
        free(h->opts);
        free(h);
        return NULL;
    }
    return h;
}


void
fake_host_free(fake_host_t *h)
{
    fake_block_t  *b;
    fake_job_t    *j;
    size_t         i;

    if (h == NULL) {
        return;
    }
    if (h->plugin->unload != NULL) {
        h->plugin->unload();
    }
    while ((b = h->arena) != NULL) {
        h->arena = b->next;
        free(b);
    }
    while ((j = h->jobs) != NULL) {
        h->jobs = j->next;
        free(j->value);
        free(j->sim);
        free(j);
    }
    for (i = 0; i < h->ntraces; i++) {
        free(h->traces[i]);
    }
    for (i = 0; i < h->nsummary; i++) {
        free(h->summary[i].key);
        free(h->summary[i].json);
    }
    for (i = 0; i < h->ncounters; i++) {
        free(h->counters[i].name);
    }
    for (i = 0; i < h->nkv; i++) {
        free(h->kv[i].key);
        free(h->kv[i].value);
    }
    free(h->kv);
    free(h->counters);
    free(h->summary);
    free(h->out_reasoning.p);
    free(h->out_content.p);
    free(h->fail_message);
    free(h->aux_reply);
    free(h->opts);
    free(h->state);
    free(h);
}


static void
fake__violation(fake_host_t *h, const char *fmt, ...)
{
    va_list  ap;

    if (h->violations++ == 0) {
        va_start(ap, fmt);
        vsnprintf(h->violation, sizeof(h->violation), fmt, ap);
        va_end(ap);
    }
}


static int
fake__buf_add(fake_host_t *h, fake_buf_t *b, const char *s, size_t len)
{
    size_t  cap;
    char   *p;

    if (b->len + len + 1 > b->cap) {
        cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1) {
            cap *= 2;
        }
        p = realloc(b->p, cap);
        if (p == NULL) {
            fake__violation(h, "fake host out of memory");
            return -ENOMEM;
        }
        b->p = p;
        b->cap = cap;
    }
    if (len > 0) {
        memcpy(b->p + b->len, s, len);
    }
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}


/* ---- options ---- */

static int
fake__opt_parse(fake_host_t *h, const tg_option_t *o, const char *v,
    fake_opt_t *out)
{
    char        *end;
    const char  *c;
    size_t       len = strlen(v);
    double       d;

    memset(out, 0, sizeof(*out));
    switch (o->type) {
    case TG_OPT_INT:
        errno = 0;
        out->i = strtoll(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0') {
            goto bad;
        }
        if ((double) out->i < o->min || (double) out->i > o->max) {
            goto range;
        }
        out->d = (double) out->i;
        break;
    case TG_OPT_DOUBLE:
        d = strtod(v, &end);
        if (end == v || *end != '\0' || d != d) {
            goto bad;
        }
        if (d < o->min || d > o->max) {
            goto range;
        }
        out->d = d;
        break;
    case TG_OPT_BOOL:
        if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1")) {
            out->i = 1;
        } else if (strcmp(v, "off") && strcmp(v, "false") && strcmp(v, "0")) {
            goto bad;
        }
        break;
    case TG_OPT_STRING:
        if (len > 256) {
            goto bad;
        }
        break;
    case TG_OPT_ENUM:
        for (c = o->choices; c != NULL && *c != '\0'; ) {
            size_t  w = strcspn(c, "|");

            if (w == len && strncmp(c, v, len) == 0) {
                break;
            }
            c += w;
            c += *c == '|';
        }
        if (c == NULL || *c == '\0') {
            goto bad;
        }
        break;
    default:
        goto bad;
    }
    if (len >= sizeof(out->s)) {
        goto bad;
    }
    memcpy(out->s, v, len + 1);
    out->set = 1;
    return 0;

bad:
    snprintf(h->err, sizeof(h->err), "invalid value \"%s\" for \"%s\"", v,
             o->name);
    return -EINVAL;
range:
    snprintf(h->err, sizeof(h->err), "\"%s\" must be within %g..%g, not %s",
             o->name, o->min, o->max, v);
    return -EINVAL;
}


int
fake_host_set_options(fake_host_t *h, const char *text)
{
    char        buf[1024], *tok, *save = NULL, *eq;
    fake_opt_t  val;
    size_t      i;

    if (strlen(text) >= sizeof(buf)) {
        snprintf(h->err, sizeof(h->err), "options too long");
        return -EINVAL;
    }
    strcpy(buf, text);
    for (tok = strtok_r(buf, " ", &save); tok != NULL;
         tok = strtok_r(NULL, " ", &save))
    {
        eq = strchr(tok, '=');
        if (eq == NULL) {
            snprintf(h->err, sizeof(h->err), "\"%s\" has no value", tok);
            return -EINVAL;
        }
        *eq = '\0';
        for (i = 0; i < h->nopts; i++) {
            if (strcmp(h->plugin->options[i].name, tok) == 0) {
                break;
            }
        }
        if (i == h->nopts) {
            snprintf(h->err, sizeof(h->err), "unknown option \"%s\"", tok);
            return -EINVAL;
        }
        if (fake__opt_parse(h, &h->plugin->options[i], eq + 1, &val) != 0) {
            return -EINVAL;
        }
        h->opts[i] = val;
    }
    return 0;
}


const char *
fake_host_error(const fake_host_t *h)
{
    return h->err;
}


void
fake_host_set_request(fake_host_t *h, const tg_request_info_t *info)
{
    h->info = *info;
    if (h->info.strategy == NULL) {
        h->info.strategy = h->plugin->name;
    }
}


int
fake_host_add_trace(fake_host_t *h, const fake_trace_script_t *s)
{
    if (h->nscripts == FAKE_HOST_MAX_TRACES) {
        return -ENOSPC;
    }
    h->scripts[h->nscripts++] = *s;
    return 0;
}


void
fake_host_set_step(fake_host_t *h, uint64_t ms)
{
    h->step = ms > 0 ? ms : 1;
}


void
fake_host_cancel_at(fake_host_t *h, uint64_t ms)
{
    h->cancel_at = ms;
}


void
fake_host_set_aux_reply(fake_host_t *h, const char *content,
    uint64_t delay_ms)
{
    free(h->aux_reply);
    h->aux_reply = content != NULL ? strdup(content) : NULL;
    h->aux_delay = delay_ms;
}


/* ---- the loop ---- */

static uint32_t
fake__tokens_at(const tg_trace_t *t, uint64_t now)
{
    uint64_t  k;

    if (now < t->t0) {
        return 0;
    }
    k = (now - t->t0) / t->mpt;
    return k < t->final ? (uint32_t) k : t->final;
}


static uint64_t
fake__min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}


/* The next moment something happens; UINT64_MAX when nothing will. */
static uint64_t
fake__next_time(fake_host_t *h)
{
    uint64_t     next = h->cancel_at, tok = UINT64_MAX;
    fake_job_t  *j;
    size_t       i;

    for (i = 0; i < h->ntraces; i++) {
        tg_trace_t  *t = h->traces[i];

        if (!fake__running(t)) {
            continue;
        }
        next = fake__min(next, t->t0 + (uint64_t) t->final * t->mpt);
        if (t->produced < t->final) {
            tok = fake__min(tok, t->t0 + (uint64_t) (t->produced + 1)
                                 * t->mpt);
        }
    }
    if (tok != UINT64_MAX) {
        /* Coalesce up to one step of tokens, never past an end. */
        next = fake__min(next, tok > h->now + h->step ? tok
                                                      : h->now + h->step);
    }
    for (j = h->jobs; j != NULL; j = j->next) {
        if (j->active) {
            next = fake__min(next, j->due);
        }
    }
    return next < h->now ? h->now : next;
}


int
fake_host_run(fake_host_t *h)
{
    const tg_plugin_t  *p = h->plugin;
    fake_job_t         *j;
    uint64_t            now;
    size_t              i;
    int                 rc;

    fake_host_current = h;
    h->now = 0;
    rc = p->start(h);
    if (rc < 0 && h->end == FAKE_END_NONE) {
        fake__violation(h, "start() returned %d without calling fail()", rc);
    }
    if (rc == 0 && h->end == FAKE_END_NONE && h->ntraces == 0
        && h->jobs == NULL)
    {
        fake__violation(h, "start() left nothing to wait for");
    }

    while (!fake__over(h)) {
        now = fake__next_time(h);
        if (now == UINT64_MAX) {
            break;
        }
        h->now = now;
        if (h->cancel_at <= now) {
            h->client_gone = 1;
            if (p->on_cancel != NULL) {
                p->on_cancel(h);
            }
            break;
        }
        for (i = 0; i < h->ntraces && !fake__over(h); i++) {
            if (fake__running(h->traces[i])) {
                fake__deliver(h, h->traces[i], now);
            }
        }
        for (i = 0; i < h->ntraces && !fake__over(h); i++) {
            tg_trace_t  *t = h->traces[i];

            if (fake__running(t) && t->produced == t->final
                && t->t0 + (uint64_t) t->final * t->mpt <= now)
            {
                fake__end_trace(h, t);
            }
        }
        for (j = h->jobs; j != NULL && !fake__over(h); j = j->next) {
            if (j->active && j->due <= now) {
                fake__run_job(h, j);
            }
        }
    }

    if (!fake__over(h)) {
        fake__violation(h, "the request stalled: nothing left to wait for "
                        "and no finish/fail");
    }
    /* The host cancels whatever still runs once the request is over. */
    for (i = 0; i < h->ntraces; i++) {
        if (fake__running(h->traces[i])) {
            h->traces[i]->state = TG_TRACE_CANCELLED;
            h->traces[i]->ended_ms = h->now;
        }
    }
    for (j = h->jobs; j != NULL; j = j->next) {
        j->active = 0;
    }
    if (p->destroy != NULL) {
        p->destroy(h);
    }
    h->destroyed++;
    fake_host_current = NULL;
    return rc < 0 ? rc : 0;
}


static void
fake__deliver(fake_host_t *h, tg_trace_t *t, uint64_t now)
{
    uint32_t    p = fake__tokens_at(t, now);
    size_t      b, total = t->rlen + t->clen;
    tg_delta_t  d;

    if (p <= t->produced) {
        return;
    }
    b = p >= t->s.tokens ? total : (size_t) ((uint64_t) total * p
                                             / t->s.tokens);
    memset(&d, 0, sizeof(d));
    if (t->bytes < t->rlen) {
        d.reasoning = t->s.reasoning + t->bytes;
        d.reasoning_len = (b < t->rlen ? b : t->rlen) - t->bytes;
    }
    if (b > t->rlen) {
        size_t  from = t->bytes > t->rlen ? t->bytes - t->rlen : 0;

        d.content = t->s.content + from;
        d.content_len = b - t->rlen - from;
    }
    d.tokens = p - t->produced;
    if (t->first_token_ms == 0) {
        t->first_token_ms = now;
    }
    t->produced = p;
    t->bytes = b;
    t->state = TG_TRACE_RUNNING;
    if (t->spec.flags & TG_TRACE_F_LIVE) {
        fake__buf_add(h, &h->out_reasoning, d.reasoning ? d.reasoning : "",
                      d.reasoning_len);
        fake__buf_add(h, &h->out_content, d.content ? d.content : "",
                      d.content_len);
    }
    if (h->plugin->on_delta != NULL) {
        h->plugin->on_delta(h, t, &d);
    }
}


static void
fake__end_trace(fake_host_t *h, tg_trace_t *t)
{
    tg_trace_end_t  e;

    memset(&e, 0, sizeof(e));
    t->ended_ms = h->now;
    t->end_order = h->ends++;
    if (t->s.fail_after > 0) {
        t->state = TG_TRACE_FAILED;
        e.http_status = t->s.http_status ? t->s.http_status : 500;
        e.error = t->s.error ? t->s.error : "scripted failure";
    } else {
        t->state = TG_TRACE_DONE;
        t->finish_reason = t->s.finish_reason ? t->s.finish_reason : "stop";
        e.finish_reason = t->finish_reason;
        e.http_status = 200;
    }
    e.state = t->state;
    e.tokens = t->produced;
    if (h->plugin->on_trace_end != NULL) {
        h->plugin->on_trace_end(h, t, &e);
    }
}


static void
fake__run_job(fake_host_t *h, fake_job_t *j)
{
    const tg_plugin_t  *p = h->plugin;
    tg_aux_result_t     r;

    j->active = 0;
    switch (j->kind) {
    case FAKE_JOB_TIMER:
        if (p->on_timer != NULL) {
            p->on_timer(h, (tg_timer_t *) j, j->data);
        }
        break;
    case FAKE_JOB_AUX:
        memset(&r, 0, sizeof(r));
        r.http_status = 200;
        r.content = j->value ? j->value : "";
        r.content_len = j->len;
        r.body = r.content;
        r.body_len = r.content_len;
        r.data = j->data;
        if (p->on_aux_result != NULL) {
            p->on_aux_result(h, (tg_aux_t *) j, &r);
        }
        break;
    case FAKE_JOB_SCORE:
        j->score_cb(h, j->data, j->sim, j->n);
        break;
    case FAKE_JOB_KV:
        j->kv_cb(h, j->data, j->status, j->value, j->len);
        break;
    }
}


/* ---- results ---- */

fake_end_t fake_host_end(const fake_host_t *h) { return h->end; }
int fake_host_end_calls(const fake_host_t *h) { return h->end_calls; }
int fake_host_winner(const fake_host_t *h) { return h->winner; }
int fake_host_fail_status(const fake_host_t *h) { return h->fail_status; }
uint32_t fake_host_usage_tokens(const fake_host_t *h) { return h->usage; }
uint64_t fake_host_end_ms(const fake_host_t *h) { return h->end_ms; }
int fake_host_violations(const fake_host_t *h) { return h->violations; }
const char *fake_host_violation(const fake_host_t *h) { return h->violation; }
int fake_host_destroyed(const fake_host_t *h) { return h->destroyed; }
size_t fake_host_traces_started(const fake_host_t *h) { return h->ntraces; }


const char *
fake_host_fail_message(const fake_host_t *h)
{
    return h->fail_message ? h->fail_message : "";
}


const char *
fake_host_finish_reason(const fake_host_t *h)
{
    return h->finish_reason ? h->finish_reason : "";
}


const char *
fake_host_out_reasoning(const fake_host_t *h)
{
    return h->out_reasoning.p ? h->out_reasoning.p : "";
}


const char *
fake_host_out_content(const fake_host_t *h)
{
    return h->out_content.p ? h->out_content.p : "";
}


size_t
fake_host_traces_cancelled(const fake_host_t *h)
{
    size_t  i, n = 0;

    for (i = 0; i < h->ntraces; i++) {
        n += h->traces[i]->state == TG_TRACE_CANCELLED;
    }
    return n;
}


uint64_t
fake_host_tokens(const fake_host_t *h)
{
    uint64_t  n = 0;
    size_t    i;

    for (i = 0; i < h->ntraces; i++) {
        n += h->traces[i]->produced;
    }
    return n;
}


const fake_trace_result_t *
fake_host_trace(const fake_host_t *h, size_t i)
{
    fake_trace_result_t  *r;
    tg_trace_t           *t;

    if (i >= h->ntraces) {
        return NULL;
    }
    t = h->traces[i];
    r = &t->result;
    r->state = t->state;
    r->tokens = t->produced;
    r->ended_ms = t->ended_ms;
    r->cancelled_by_plugin = t->cancelled_by_plugin;
    r->end_order = t->end_order;
    r->flags = t->spec.flags;
    return r;
}


const char *
fake_host_summary(const fake_host_t *h, const char *key)
{
    size_t  i;

    for (i = 0; i < h->nsummary; i++) {
        if (strcmp(h->summary[i].key, key) == 0) {
            return h->summary[i].json;
        }
    }
    return NULL;
}


int64_t
fake_host_counter(const fake_host_t *h, const char *name)
{
    size_t  i;

    for (i = 0; i < h->ncounters; i++) {
        if (strcmp(h->counters[i].name, name) == 0) {
            return h->counters[i].value;
        }
    }
    return 0;
}


/* ---- the host API ---- */

static fake_host_t *
fake__req(tg_req_t *req)
{
    return req;
}


/* One over the request's end: calls that start work after finish/fail are
 * plugin bugs the real host would only log. */
static int
fake__check_open(fake_host_t *h, const char *what)
{
    if (fake__over(h)) {
        fake__violation(h, "%s() after the request ended", what);
        snprintf(h->err, sizeof(h->err), "the request has ended");
        return -ECANCELED;
    }
    return 0;
}


static const tg_request_info_t *
fake_request_info(tg_req_t *req)
{
    return &fake__req(req)->info;
}


static void *
fake_state(tg_req_t *req)
{
    return fake__req(req)->state;
}


static void *
fake_alloc(tg_req_t *req, size_t size)
{
    fake_host_t   *h = fake__req(req);
    fake_block_t  *b;

    b = malloc(sizeof(*b) + (size ? size : 1));
    if (b == NULL) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return NULL;
    }
    b->next = h->arena;
    h->arena = b;
    return b->data;
}


static const char *
fake_last_error(tg_req_t *req)
{
    return fake__req(req)->err;
}


static const fake_opt_t *
fake__opt(fake_host_t *h, const char *name, tg_opt_type_t type)
{
    size_t  i;

    for (i = 0; i < h->nopts; i++) {
        if (strcmp(h->plugin->options[i].name, name) == 0) {
            tg_opt_type_t  have = h->plugin->options[i].type;

            if (have != type
                && !(type == TG_OPT_STRING && have == TG_OPT_ENUM))
            {
                fake__violation(h, "option \"%s\" read with the wrong type",
                                name);
            }
            return &h->opts[i];
        }
    }
    fake__violation(h, "option \"%s\" is not in the plugin's table", name);
    return NULL;
}


static int64_t
fake_opt_int(tg_req_t *req, const char *name)
{
    const fake_opt_t  *o = fake__opt(req, name, TG_OPT_INT);

    return o != NULL ? o->i : 0;
}


static double
fake_opt_double(tg_req_t *req, const char *name)
{
    const fake_opt_t  *o = fake__opt(req, name, TG_OPT_DOUBLE);

    return o != NULL ? o->d : 0;
}


static int
fake_opt_bool(tg_req_t *req, const char *name)
{
    const fake_opt_t  *o = fake__opt(req, name, TG_OPT_BOOL);

    return o != NULL ? (int) o->i : 0;
}


static const char *
fake_opt_str(tg_req_t *req, const char *name)
{
    /* Enums are read as strings too. */
    const fake_opt_t  *o = fake__opt(req, name, TG_OPT_STRING);

    return o != NULL && o->set ? o->s : NULL;
}


static tg_trace_t *
fake_trace_start(tg_req_t *req, const tg_trace_spec_t *spec)
{
    fake_host_t  *h = fake__req(req);
    tg_trace_t   *t;
    size_t        i;

    if (spec == NULL) {
        snprintf(h->err, sizeof(h->err), "no spec");
        return NULL;
    }
    if (fake__check_open(h, "trace_start") != 0) {
        return NULL;
    }
    if (h->ntraces == h->nscripts) {
        fake__violation(h, "trace %zu started but the test scripted only %zu",
                        h->ntraces, h->nscripts);
        snprintf(h->err, sizeof(h->err), "no backend left");
        return NULL;
    }
    if (h->scripts[h->ntraces].refuse_start) {
        /* The script slot is used up, as a backend refusal would be. */
        h->scripts[h->ntraces].refuse_start = 0;
        memmove(&h->scripts[h->ntraces], &h->scripts[h->ntraces + 1],
                (h->nscripts - h->ntraces - 1) * sizeof(h->scripts[0]));
        h->nscripts--;
        snprintf(h->err, sizeof(h->err), "backend refused the trace");
        return NULL;
    }
    if (spec->flags & TG_TRACE_F_LIVE) {
        for (i = 0; i < h->ntraces; i++) {
            if (fake__running(h->traces[i])
                && (h->traces[i]->spec.flags & TG_TRACE_F_LIVE))
            {
                fake__violation(h, "a second live trace");
            }
        }
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return NULL;
    }
    t->h = h;
    t->index = h->ntraces;
    t->s = h->scripts[h->ntraces];
    t->spec = *spec;
    t->rlen = t->s.reasoning ? strlen(t->s.reasoning) : 0;
    t->clen = t->s.content ? strlen(t->s.content) : 0;
    t->final = t->s.fail_after > 0 ? t->s.fail_after : t->s.tokens;
    t->mpt = t->s.ms_per_token ? t->s.ms_per_token : 1;
    t->started_ms = h->now;
    t->t0 = h->now + t->s.start_ms;
    t->state = TG_TRACE_QUEUED;
    t->end_order = -1;
    if (t->s.tokens == 0) {
        t->s.tokens = 1;     /* only divides the text; nothing streams */
    }
    h->traces[h->ntraces++] = t;
    return t;
}


static int
fake_trace_cancel(tg_req_t *req, tg_trace_t *t)
{
    fake_host_t  *h = fake__req(req);

    if (t == NULL || t->h != h) {
        fake__violation(h, "trace_cancel() of a foreign trace");
        return -EINVAL;
    }
    if (!fake__running(t)) {
        snprintf(h->err, sizeof(h->err), "trace %zu has ended", t->index);
        return -EALREADY;
    }
    t->state = TG_TRACE_CANCELLED;
    t->ended_ms = h->now;
    t->cancelled_by_plugin = 1;
    return 0;
}


static tg_trace_t *
fake_trace_continue(tg_req_t *req, tg_trace_t *t, const char *append,
    size_t len, const tg_trace_spec_t *spec)
{
    /* The fake has no text to carry over: the next script is the
     * continuation, as the test wrote it. */
    (void) append;
    (void) len;
    if (t == NULL || t->h != req) {
        fake__violation(req, "trace_continue() of a foreign trace");
        return NULL;
    }
    if (fake__running(t)) {
        fake_trace_cancel(req, t);
    }
    return fake_trace_start(req, spec != NULL ? spec : &t->spec);
}


static int
fake_trace_info(tg_trace_t *t, tg_trace_info_t *out)
{
    if (t == NULL || out == NULL) {
        return -EINVAL;
    }
    memset(out, 0, sizeof(*out));
    out->index = (uint32_t) t->index;
    out->state = t->state;
    out->tokens = t->produced;
    out->backend = "fake0";
    out->reasoning = t->s.reasoning ? t->s.reasoning : "";
    out->reasoning_len = t->bytes < t->rlen ? t->bytes : t->rlen;
    out->content = t->s.content ? t->s.content : "";
    out->content_len = t->bytes > t->rlen ? t->bytes - t->rlen : 0;
    out->finish_reason = t->finish_reason;
    out->started_ms = t->started_ms;
    out->first_token_ms = t->first_token_ms;
    out->ended_ms = t->ended_ms;
    out->data = t->spec.data;
    return 0;
}


static size_t
fake_trace_count(tg_req_t *req)
{
    return fake__req(req)->ntraces;
}


static tg_trace_t *
fake_trace_at(tg_req_t *req, size_t index)
{
    fake_host_t  *h = fake__req(req);

    return index < h->ntraces ? h->traces[index] : NULL;
}


static fake_job_t *
fake__job(fake_host_t *h, int kind, uint64_t delay, void *data)
{
    fake_job_t  *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return NULL;
    }
    j->kind = kind;
    j->active = 1;
    j->due = h->now + delay;
    j->data = data;
    if (h->jobs_tail != NULL) {
        h->jobs_tail->next = j;
    } else {
        h->jobs = j;
    }
    h->jobs_tail = j;
    return j;
}


static tg_aux_t *
fake_aux_start(tg_req_t *req, const tg_aux_spec_t *spec)
{
    fake_host_t  *h = fake__req(req);
    fake_job_t   *j;

    if (spec == NULL || spec->pool == NULL) {
        snprintf(h->err, sizeof(h->err), "aux spec without a pool");
        return NULL;
    }
    if (fake__check_open(h, "aux_start") != 0) {
        return NULL;
    }
    j = fake__job(h, FAKE_JOB_AUX, h->aux_delay, spec->data);
    if (j == NULL) {
        return NULL;
    }
    if (h->aux_reply != NULL) {
        j->value = strdup(h->aux_reply);
        if (j->value == NULL) {
            j->active = 0;
            snprintf(h->err, sizeof(h->err), "out of memory");
            return NULL;
        }
        j->len = strlen(j->value);
    }
    return (tg_aux_t *) j;
}


static int
fake_aux_cancel(tg_req_t *req, tg_aux_t *a)
{
    fake_job_t  *j = (fake_job_t *) a;

    (void) req;
    if (j == NULL || j->kind != FAKE_JOB_AUX || !j->active) {
        return -EALREADY;
    }
    j->active = 0;
    return 0;
}


/* Records the request's end; only the first counts. */
static int
fake__end(fake_host_t *h, fake_end_t how)
{
    if (h->client_gone) {
        return 0;       /* ignored after on_cancel, by contract */
    }
    h->end_calls++;
    if (h->end != FAKE_END_NONE) {
        fake__violation(h, "the request was ended twice");
        return -EALREADY;
    }
    h->end = how;
    h->end_ms = h->now;
    return 1;
}


static int
fake_emit(tg_req_t *req, const char *reasoning, size_t rlen,
    const char *content, size_t clen)
{
    fake_host_t  *h = fake__req(req);

    if (fake__check_open(h, "emit") != 0) {
        return -ECANCELED;
    }
    if (fake__buf_add(h, &h->out_reasoning, reasoning, rlen) != 0
        || fake__buf_add(h, &h->out_content, content, clen) != 0)
    {
        return -ENOMEM;
    }
    return 0;
}


static int
fake_finish(tg_req_t *req, const tg_finish_t *fin)
{
    fake_host_t  *h = fake__req(req);
    int           rc = fake__end(h, FAKE_END_FINISH);

    if (rc <= 0) {
        return rc;
    }
    h->finish_reason = fin != NULL && fin->finish_reason != NULL
                       ? fin->finish_reason : "stop";
    if (fin != NULL && fin->usage_of != NULL && fin->usage_of->h == h) {
        h->usage = fin->usage_of->produced;
        h->winner = (int) fin->usage_of->index;
    }
    return 0;
}


static int
fake_finish_trace(tg_req_t *req, tg_trace_t *w)
{
    fake_host_t  *h = fake__req(req);
    int           rc;

    if (w == NULL || w->h != h) {
        fake__violation(h, "finish_trace() of a foreign trace");
        return -EINVAL;
    }
    if (w->state != TG_TRACE_DONE) {
        fake__violation(h, "finish_trace() of trace %zu, which is not done",
                        w->index);
    }
    rc = fake__end(h, FAKE_END_FINISH_TRACE);
    if (rc <= 0) {
        return rc;
    }
    h->winner = (int) w->index;
    h->usage = w->produced;
    h->finish_reason = w->finish_reason;
    fake__buf_add(h, &h->out_reasoning, w->s.reasoning, w->rlen);
    fake__buf_add(h, &h->out_content, w->s.content, w->clen);
    return 0;
}


static int
fake_fail(tg_req_t *req, int status, const char *type, const char *message)
{
    fake_host_t  *h = fake__req(req);
    int           rc = fake__end(h, FAKE_END_FAIL);

    (void) type;
    if (rc <= 0) {
        return rc;
    }
    if (status < 400 || status > 599) {
        fake__violation(h, "fail() with HTTP status %d", status);
    }
    h->fail_status = status;
    h->fail_message = strdup(message != NULL ? message : "");
    return h->fail_message != NULL ? 0 : -ENOMEM;
}


static int
fake__summary(fake_host_t *h, const char *key, char *json)
{
    size_t  i;
    void   *p;

    if (json == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < h->nsummary; i++) {
        if (strcmp(h->summary[i].key, key) == 0) {
            free(h->summary[i].json);
            h->summary[i].json = json;
            return 0;
        }
    }
    p = realloc(h->summary, (h->nsummary + 1) * sizeof(h->summary[0]));
    if (p == NULL) {
        free(json);
        return -ENOMEM;
    }
    h->summary = p;
    h->summary[h->nsummary].key = strdup(key);
    if (h->summary[h->nsummary].key == NULL) {
        free(json);
        return -ENOMEM;
    }
    h->summary[h->nsummary++].json = json;
    return 0;
}


static int
fake_summary_int(tg_req_t *req, const char *key, int64_t v)
{
    char  buf[32];

    snprintf(buf, sizeof(buf), "%lld", (long long) v);
    return key ? fake__summary(req, key, strdup(buf)) : -EINVAL;
}


static int
fake_summary_str(tg_req_t *req, const char *key, const char *v)
{
    fake_buf_t  b = { NULL, 0, 0 };
    char        esc[8];

    if (key == NULL || v == NULL) {
        return -EINVAL;
    }
    fake__buf_add(req, &b, "\"", 1);
    for (; *v != '\0'; v++) {
        if (*v == '"' || *v == '\\') {
            snprintf(esc, sizeof(esc), "\\%c", *v);
        } else if ((unsigned char) *v < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", (unsigned char) *v);
        } else {
            esc[0] = *v;
            esc[1] = '\0';
        }
        fake__buf_add(req, &b, esc, strlen(esc));
    }
    fake__buf_add(req, &b, "\"", 1);
    return fake__summary(req, key, b.p);
}


static int
fake_summary_json(tg_req_t *req, const char *key, const char *json)
{
    return key && json ? fake__summary(req, key, strdup(json)) : -EINVAL;
}


static tg_timer_t *
fake_timer_start(tg_req_t *req, uint64_t ms, void *data)
{
    if (fake__check_open(req, "timer_start") != 0) {
        return NULL;
    }
    return (tg_timer_t *) fake__job(req, FAKE_JOB_TIMER, ms, data);
}


static int
fake_timer_stop(tg_req_t *req, tg_timer_t *tm)
{
    fake_job_t  *j = (fake_job_t *) tm;

    (void) req;
    if (j == NULL || j->kind != FAKE_JOB_TIMER || !j->active) {
        return -EALREADY;
    }
    j->active = 0;
    return 0;
}


static uint64_t
fake_now_ms(void)
{
    return fake_host_current != NULL ? fake_host_current->now : 0;
}


/* Cosine of hashed character-trigram counts: the real score's idea. */
static int
fake_score(tg_req_t *req, const char *const *texts, const size_t *lens,
    size_t n, tg_score_cb cb, void *data)
{
    enum { DIM = 256 };
    fake_host_t  *h = fake__req(req);
    fake_job_t   *j;
    float        *v;
    size_t        i, k, c;

    if (texts == NULL || lens == NULL || cb == NULL || n == 0) {
        return -EINVAL;
    }
    v = calloc(n * DIM, sizeof(float));
    if (v == NULL) {
        return -ENOMEM;
    }
    j = fake__job(h, FAKE_JOB_SCORE, 0, data);
    if (j == NULL || (j->sim = calloc(n * n, sizeof(float))) == NULL) {
        if (j != NULL) {
            j->active = 0;
        }
        free(v);
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k + 3 <= lens[i]; k++) {
            const unsigned char  *p = (const unsigned char *) texts[i] + k;

            v[i * DIM + ((p[0] * 31u + p[1]) * 31u + p[2]) % DIM] += 1;
        }
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < n; k++) {
            double  dot = 0, ni = 0, nk = 0;

            for (c = 0; c < DIM; c++) {
                dot += v[i * DIM + c] * v[k * DIM + c];
                ni += v[i * DIM + c] * v[i * DIM + c];
                nk += v[k * DIM + c] * v[k * DIM + c];
            }
            j->sim[i * n + k] = ni > 0 && nk > 0
                                ? (float) (dot / sqrt(ni * nk)) : 0;
        }
    }
    free(v);
    j->score_cb = cb;
    j->n = n;
    return 0;
}


static size_t
fake_pool_backends(tg_req_t *req, const char *pool, tg_backend_info_t *out,
    size_t max)
{
    static const tg_skill_t  skills[] = { { "math", 0.9 } };
    fake_host_t             *h = fake__req(req);
    size_t                   i, busy = 0;

    (void) pool;
    for (i = 0; i < h->ntraces; i++) {
        busy += fake__running(h->traces[i]);
    }
    if (max > 0 && out != NULL) {
        out[0].name = "fake0";
        out[0].model = "fake-model";
        out[0].in_flight = (uint32_t) busy;
        out[0].max_inflight = FAKE_HOST_MAX_TRACES;
        out[0].skills = skills;
        out[0].nskills = 1;
    }
    return 1;
}


static int
fake__kv_reply(fake_host_t *h, tg_kv_cb cb, void *data, int status,
    const char *v, size_t len)
{
    fake_job_t  *j;

    if (cb == NULL) {
        return 0;
    }
    j = fake__job(h, FAKE_JOB_KV, 0, data);
    if (j == NULL) {
        return -ENOMEM;
    }
    j->kv_cb = cb;
    j->status = status;
    if (v != NULL) {
        j->value = malloc(len + 1);
        if (j->value == NULL) {
            j->active = 0;
            return -ENOMEM;
        }
        memcpy(j->value, v, len);
        j->value[len] = '\0';
        j->len = len;
    }
    return 0;
}


static int
fake_kv_get(tg_req_t *req, const char *key, tg_kv_cb cb, void *data)
{
    fake_host_t  *h = fake__req(req);
    size_t        i;

    if (key == NULL) {
        return -EINVAL;
    }
    for (i = 0; i < h->nkv; i++) {
        if (strcmp(h->kv[i].key, key) == 0) {
            return fake__kv_reply(h, cb, data, 0, h->kv[i].value,
                                  h->kv[i].len);
        }
    }
    return fake__kv_reply(h, cb, data, -ENOENT, NULL, 0);
}


static int
fake_kv_set(tg_req_t *req, const char *key, const char *v, size_t len,
    uint64_t ttl_ms, tg_kv_cb cb, void *data)
{
    fake_host_t  *h = fake__req(req);
    char         *copy;
    void         *p;
    size_t        i;

    (void) ttl_ms;
    if (key == NULL || (v == NULL && len > 0)) {
        return -EINVAL;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    if (len > 0) {
        memcpy(copy, v, len);
    }
    copy[len] = '\0';
    for (i = 0; i < h->nkv && strcmp(h->kv[i].key, key) != 0; i++) {
        /* find */
    }
    if (i == h->nkv) {
        p = realloc(h->kv, (h->nkv + 1) * sizeof(h->kv[0]));
        if (p == NULL || (h->kv = p, h->kv[i].key = strdup(key)) == NULL) {
            free(copy);
            return -ENOMEM;
        }
        h->kv[i].value = NULL;
        h->nkv++;
    }
    free(h->kv[i].value);
    h->kv[i].value = copy;
    h->kv[i].len = len;
    return fake__kv_reply(h, cb, data, 0, NULL, 0);
}


static void
fake_log(tg_req_t *req, int level, const char *fmt, ...)
{
    va_list  ap;

    (void) req;
    if (getenv("FAKE_HOST_LOG") == NULL) {
        return;
    }
    va_start(ap, fmt);
    fprintf(stderr, "fake host log %d: ", level);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}


static void
fake_counter_add(const char *name, int64_t delta)
{
    fake_host_t  *h = fake_host_current;
    void         *p;
    size_t        i;

    if (h == NULL || name == NULL) {
        return;
    }
    for (i = 0; i < h->ncounters; i++) {
        if (strcmp(h->counters[i].name, name) == 0) {
            h->counters[i].value += delta;
            return;
        }
    }
    p = realloc(h->counters, (h->ncounters + 1) * sizeof(h->counters[0]));
    if (p == NULL) {
        fake__violation(h, "fake host out of memory");
        return;
    }
    h->counters = p;
    h->counters[h->ncounters].name = strdup(name);
    if (h->counters[h->ncounters].name == NULL) {
        fake__violation(h, "fake host out of memory");
        return;
    }
    h->counters[h->ncounters++].value = delta;
}


static const tg_host_api_t  fake_api = {
    TG_PLUGIN_ABI_VERSION,
    sizeof(tg_host_api_t),
    fake_request_info,
    fake_state,
    fake_alloc,
    fake_last_error,
    fake_opt_int,
    fake_opt_double,
    fake_opt_bool,
    fake_opt_str,
    fake_trace_start,
    fake_trace_cancel,
    fake_trace_continue,
    fake_trace_info,
    fake_trace_count,
    fake_trace_at,
    fake_aux_start,
    fake_aux_cancel,
    fake_emit,
    fake_finish,
    fake_finish_trace,
    fake_fail,
    fake_summary_int,
    fake_summary_str,
    fake_summary_json,
    fake_timer_start,
    fake_timer_stop,
    fake_now_ms,
    fake_score,
    fake_pool_backends,
    fake_kv_get,
    fake_kv_set,
    fake_log,
    fake_counter_add
};


static const tg_host_api_t *
fake_host_api(void)
{
    return &fake_api;
}
