/*
 * thinkgate — the fake host's API table and its synchronous entries:
 * the request, options, traces, the request's end, the summary, backends,
 * log and counters.  Entries that call back later are in
 * fake_host_async.c.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host_int.h"


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
    size_t        i, live;

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
    if (fake__pool_known(h, spec->pool) != 0) {
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
        /* plugin.h: as many live traces at once as the client's n. */
        for (i = 0, live = 0; i < h->ntraces; i++) {
            if (fake__running(h->traces[i])
                && (h->traces[i]->spec.flags & TG_TRACE_F_LIVE))
            {
                live++;
            }
        }
        if (live >= h->client_n) {
            fake__violation(h, "more live traces than the client's n");
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
    if (spec->backend != NULL) {
        /* The host copies what the plugin passes (plugin.h). */
        snprintf(t->backend, sizeof(t->backend), "%s", spec->backend);
        t->spec.backend = t->backend;
    }
    if (spec->pool != NULL) {
        snprintf(t->pool, sizeof(t->pool), "%s", spec->pool);
        t->spec.pool = t->pool;
    }
    if (spec->messages_json != NULL) {
        t->messages = strdup(spec->messages_json);
        if (t->messages == NULL) {
            free(t);
            snprintf(h->err, sizeof(h->err), "out of memory");
            return NULL;
        }
    }
    t->spec.messages_json = t->messages;
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
     * continuation, as the test wrote it.  The appended text is kept for
     * the test. */
    fake_host_t  *h = fake__req(req);

    if (t == NULL || t->h != req) {
        fake__violation(req, "trace_continue() of a foreign trace");
        return NULL;
    }
    free(h->continue_append);
    h->continue_append = strndup(append != NULL ? append : "",
                                 append != NULL ? len : 0);
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
    out->backend = t->spec.backend != NULL ? t->spec.backend : "fake0";
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
    size_t        i;

    if (rc <= 0) {
        return rc;
    }
    h->finish_reason = fin != NULL && fin->finish_reason != NULL
                       ? fin->finish_reason : "stop";
    if (fin != NULL && fin->usage_of != NULL && fin->usage_of->h == h) {
        h->usage = fin->usage_of->produced;
        h->winner = (int) fin->usage_of->index;
    } else {
        /* plugin.h: the live traces' usage summed. */
        for (i = 0; i < h->ntraces; i++) {
            if (h->traces[i]->spec.flags & TG_TRACE_F_LIVE) {
                h->usage += h->traces[i]->produced;
            }
        }
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



static size_t
fake_pool_backends(tg_req_t *req, const char *pool, tg_backend_info_t *out,
    size_t max)
{
    static const tg_skill_t  skills[] = { { "math", 0.9 } };
    fake_host_t             *h = fake__req(req);
    size_t                   i, busy = 0;

    if (fake__pool_known(h, pool) != 0) {
        return 0;
    }
    if (h->nbackends > 0) {
        for (i = 0; i < h->nbackends && i < max && out != NULL; i++) {
            out[i] = h->backends[i];
        }
        return h->nbackends;
    }
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


static uint32_t
fake_client_n(tg_req_t *req)
{
    return fake__req(req)->client_n;
}


static int
fake__counter_add(fake_host_t *h, const char *name, int64_t delta)
{
    void    *p;
    size_t   i;

    if (h == NULL || name == NULL) {
        return -EINVAL;
    }
    for (i = 0; i < h->ncounters; i++) {
        if (strcmp(h->counters[i].name, name) == 0) {
            h->counters[i].value += delta;
            return 0;
        }
    }
    p = realloc(h->counters, (h->ncounters + 1) * sizeof(h->counters[0]));
    if (p == NULL) {
        fake__violation(h, "fake host out of memory");
        return -ENOMEM;
    }
    h->counters = p;
    h->counters[h->ncounters].name = strdup(name);
    if (h->counters[h->ncounters].name == NULL) {
        fake__violation(h, "fake host out of memory");
        return -ENOMEM;
    }
    h->counters[h->ncounters++].value = delta;
    return 0;
}


static void
fake_counter_add(const char *name, int64_t delta)
{
    (void) fake__counter_add(fake_host_current, name, delta);
}


/* The fake host is one request: its counters are the request's. */
static int
fake_counter_add_req(tg_req_t *req, const char *name, int64_t delta)
{
    return fake__counter_add(fake__req(req), name, delta);
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
    fake_counter_add,
    fake_client_n,
    fake_kv_limits,
    fake_score_kind,
    fake_aux_start_stop,
    fake_counter_add_req
};


const tg_host_api_t *
fake_host_api(void)
{
    return &fake_api;
}
