/*
 * The plugin host's strategy adapter: a request runs the plugin version it
 * selected (host_select.c); engine trace events become plugin callbacks.
 *
 * Every plugin callback runs between tg__host_enter and tg__host_leave.
 * A request closed meanwhile (the plugin finished and the END went out at
 * once, or the worker went away) only marks itself closing; the last
 * leave then calls destroy() and frees, so that nothing still on the
 * stack touches freed memory and destroy() comes after everything.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "strategy/host.h"
#include "util/jdump.h"
#include "util/jload.h"
#include "util/str.h"

static int tg__host_start(tg_request_t *r, tg_oa_error_t *err);
static void tg__host_on_event(tg_trace_t *t, const char *event,
    const char *payload, size_t len);
static void tg__host_on_data(tg_trace_t *t, const char *p, size_t n);
static void tg__host_on_trace_end(tg_trace_t *t);
static void tg__host_on_cancel(tg_request_t *r);
static void tg__host_on_deadline(tg_request_t *r);
static void tg__host_destroy(tg_request_t *r);
static void tg__host_free(tg_host_req_t *hr);
static void tg__host_keep(tg_host_req_t *hr);
static void tg__host_unkeep(tg_host_req_t *hr);
static int tg__host_info(tg_request_t *r, tg_host_req_t *hr);
static int tg__host_problem(tg_request_t *r, tg_buf_t *b);
static void tg__host_make_id(char *dst, size_t size, const char *prefix,
    uint64_t id);
static void tg__host_stall_check(tg_host_req_t *hr);
static void tg__host_end_trace(tg_host_trace_t *ht);
static int tg__host_retry_whole(tg_host_trace_t *ht);

const tg_strategy_t  tg_strategy_host = {
    "plugin",
    tg__host_start,
    NULL,
    tg__host_on_event,
    tg__host_on_data,
    tg__host_on_trace_end,
    tg__host_on_cancel,
    tg__host_on_deadline,
    tg__host_destroy
};


/* The request whose callbacks run now (from the outermost
 * tg__host_enter to its tg__host_leave), NULL outside them, as in load():
 * counter_add(), which takes no request, counts for it too.  The loop
 * runs one callback at a time, so there is one such request. */
static tg_host_req_t  *tg__host_current_hr;

/*
 * Freed request states kept for the next requests, at most
 * TG_HOST_SPARES: a tg_host_req_t is over 2 KB, and glibc serves such a
 * request by first consolidating its fast bins, which made its calloc
 * the dearest allocation of a small request (make callgrind).  Emptied
 * for good by tg_host_shutdown.
 */
#define TG_HOST_SPARES  16
/* A spare keeps its output buffer (the whole non-streamed answer is
 * rendered there) up to this size. */
#define TG_HOST_SPARE_OUT  (64 * 1024)

static tg_host_req_t  *tg__host_spares[TG_HOST_SPARES];
static size_t          tg__host_nspares;
#if defined(__SANITIZE_ADDRESS__)
/* Under ASan every state is freed, so that a use after free is caught. */
static int             tg__host_spares_off = 1;
#else
static int             tg__host_spares_off;
#endif


tg_host_req_t *
tg__host_current(void)
{
    return tg__host_current_hr;
}


tg_host_req_t *
tg__host_of(tg_plugin_req_t *req)
{
    return req != NULL ? tg__host_req(req)->strategy_data : NULL;
}


void
tg__host_set_error(tg_host_req_t *hr, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(hr->error, sizeof(hr->error), fmt, ap);
    va_end(ap);
}


/* 1 while the plugin may still act: not answered, client still there,
 * request not closing. */
int
tg__host_usable(tg_host_req_t *hr)
{
    return hr != NULL && !hr->answered && !hr->gone && !hr->closing;
}


void
tg__host_enter(tg_host_req_t *hr)
{
    hr->depth++;
    tg__host_current_hr = hr;
}


/* After this call hr may be freed: callers return at once. */
void
tg__host_leave(tg_host_req_t *hr)
{
    if (--hr->depth > 0) {
        return;
    }
    if (tg__host_current_hr == hr) {
        tg__host_current_hr = NULL;
    }
    if (hr->closing) {
        tg__host_free(hr);
        return;
    }
    tg__host_stall_check(hr);
}


/* A plugin that neither answered nor waits for anything would leave the
 * client hanging: answer for it. */
static void
tg__host_stall_check(tg_host_req_t *hr)
{
    tg_host_trace_t  *a;
    size_t            i;

    if (!hr->started || !tg__host_usable(hr) || !tg_queue_empty(&hr->scores)
        || !tg_queue_empty(&hr->kvs) || !tg_queue_empty(&hr->embeds))
    {
        return;
    }
    for (i = 0; i < hr->ntraces; i++) {
        if (!hr->traces[i]->ended) {
            return;
        }
    }
    for (a = hr->auxs; a != NULL; a = a->next_aux) {
        if (!a->ended) {
            return;
        }
    }
    {
        tg_host_timer_t  *tm;

        for (tm = hr->timers; tm != NULL; tm = tm->next) {
            if (tm->hr != NULL) {
                return;
            }
        }
    }

    tg_log_error("request %llu: strategy %s waits for nothing and did not "
                 "answer", (unsigned long long) hr->r->id, hr->strategy);
    {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 502, "server_error", "no_answer", NULL,
                        "Strategy \"%s\" ended without an answer.",
                        hr->strategy);
        hr->answered = 1;
        tg__host_cancel_all(hr);
        tg__host_error(hr, &err);
    }
}


static int
tg__host_start(tg_request_t *r, tg_oa_error_t *err)
{
    tg_host_req_t  *hr;
    tg_host_keep_t  keep;
    tg_buf_t        out;
    int             rc;

    if (tg__host_nspares > 0) {
        hr = tg__host_spares[--tg__host_nspares];
        out = hr->out;
        keep = hr->keep;
        memset(hr, 0, sizeof(*hr));
        hr->out = out;
        hr->keep = keep;
        hr->traces = keep.traces;
        hr->cap = keep.cap;
        hr->keep.traces = NULL;
        hr->keep.cap = 0;
    } else {
        hr = calloc(1, sizeof(*hr));
    }
    if (hr == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    tg_queue_init(&hr->scores);
    tg_queue_init(&hr->kvs);
    tg_queue_init(&hr->embeds);
    hr->r = r;
    r->strategy_data = hr;

    rc = tg__host_select(r, hr, err);
    if (rc == 0) {
        rc = tg__host_up_allow(r, hr->strategy, err);
    }
    if (rc != 0) {
        return rc;
    }

    rc = tg__host_info(r, hr);
    if (rc == 0) {
        rc = tg__host_choices_init(hr);
    }
    if (rc != 0) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return rc;
    }

    if (r->oa.stream && tg__host_keepalive_start(hr) != 0) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL,
                        "cannot start the keep-alive timer");
        return -ENOMEM;
    }

    tg_log_debug("request %llu: strategy %s (generation %llu)",
                 (unsigned long long) r->id, hr->strategy,
                 (unsigned long long) tg_plugin_version_generation(
                     hr->version));

    hr->started = 1;
    tg__host_enter(hr);
    rc = hr->p->start(tg__host_preq(r));
    if (rc != 0 && tg__host_usable(hr)) {
        tg_oa_error_t  e;

        /* start() must fail() before returning an error; a plugin that
         * forgot still answers the client. */
        tg_oa_error_set(&e, 500, "server_error", "strategy_error", NULL,
                        "Strategy \"%s\" could not start: %s", hr->strategy,
                        hr->error[0] ? hr->error : strerror(-rc));
        hr->answered = 1;
        tg__host_cancel_all(hr);
        tg__host_error(hr, &e);
    }
    tg__host_leave(hr);
    return 0;
}


/* The problem into b: the last user message (its text parts joined), or
 * the prompt (the first one of an array).  0 or -ENOMEM. */
static int
tg__host_problem(tg_request_t *r, tg_buf_t *b)
{
    json_t  *v, *m, *c, *part;
    size_t   i;
    int      rc = 0;

    if (r->oa.endpoint == TG_OA_CHAT) {
        v = json_object_get(tg_oa_body(&r->oa), "messages");
        for (i = json_array_size(v); i > 0; i--) {
            m = json_array_get(v, i - 1);
            if (strcmp(json_string_value(json_object_get(m, "role")) ?: "",
                       "user") != 0)
            {
                continue;
            }
            c = json_object_get(m, "content");
            if (json_is_string(c)) {
                rc = tg_buf_append(b, json_string_value(c),
                                   json_string_length(c));
            }
            json_array_foreach(json_is_array(c) ? c : NULL, i, part) {
                const char *text = json_string_value(json_object_get(part,
                                                                     "text"));
                if (text != NULL && rc == 0) {
                    rc = tg_buf_append(b, text, strlen(text));
                }
            }
            break;
        }
    } else {
        v = json_object_get(tg_oa_body(&r->oa), "prompt");
        if (json_is_array(v)) {
            v = json_array_get(v, 0);
        }
        if (json_is_string(v)) {
            rc = tg_buf_append(b, json_string_value(v),
                               json_string_length(v));
        }
    }
    return rc;
}


/* prefix and id in lower-case hex, as snprintf's "%s%llx" writes them,
 * without the formatter: this runs for every request. */
static void
tg__host_make_id(char *dst, size_t size, const char *prefix, uint64_t id)
{
    char    hex[16];
    size_t  n, k = 0;

    do {
        hex[k++] = "0123456789abcdef"[id & 0xF];
        id >>= 4;
    } while (id != 0);
    n = tg_str_copy(dst, size, prefix);
    while (k > 0 && n + 1 < size) {
        dst[n++] = hex[--k];
    }
    dst[n] = '\0';
}


/* The request as the plugin sees it (tg_request_info_t).  Its body and
 * problem texts are rendered on the plugin's first request_info() call
 * (tg__host_info_text): passthrough, the default, never reads them, and
 * rendering the body is a serialisation of the whole request. */
static int
tg__host_info(tg_request_t *r, tg_host_req_t *hr)
{
    tg_request_info_t  *in = &hr->info;
    int64_t             seed;
    size_t              need;

    need = hr->p->state_size ? hr->p->state_size : 1;
    if (hr->keep.state != NULL && hr->keep.state_size >= need) {
        hr->state = hr->keep.state;
        hr->state_cap = hr->keep.state_size;
        hr->keep.state = NULL;
        memset(hr->state, 0, need);
    } else {
        hr->state = calloc(1, need);
        hr->state_cap = need;
    }
    if (hr->state == NULL) {
        return -ENOMEM;
    }

    in->endpoint = r->oa.endpoint == TG_OA_CHAT ? TG_ENDPOINT_CHAT
                                                : TG_ENDPOINT_COMPLETIONS;
    in->stream = r->oa.stream;
    in->model = r->oa.model;
    in->body = NULL;
    in->problem = NULL;
    in->pool = r->pool_name;
    in->strategy = hr->strategy;
    in->has_seed = tg_oa_int(&r->oa, "seed", &seed);
    in->seed = in->has_seed ? seed : 0;
    in->id = r->id;

    if (r->oa.responses != NULL) {
        char  rid[TG_OA_RESPONSE_ID_MAX];

        tg_oa_response_id(rid);
        tg_str_copy(hr->id, sizeof(hr->id), rid);
    } else {
        tg__host_make_id(hr->id, sizeof(hr->id),
                         r->oa.endpoint == TG_OA_CHAT ? "chatcmpl-tg"
                                                      : "cmpl-tg",
                         r->id);
    }
    hr->created = (int64_t) time(NULL);
    return 0;
}


/* The info's body and problem texts, once: 0, or -ENOMEM with both left
 * empty strings (the request is then answered 500 by the caller). */
int
tg__host_info_text(tg_host_req_t *hr)
{
    tg_request_t       *r = hr->r;
    tg_request_info_t  *in = &hr->info;
    tg_buf_t            b = { 0 };
    int                 rc;

    if (in->body != NULL) {
        return 0;
    }
    hr->body_text = tg_json_dumps(tg_oa_body(&r->oa));
    rc = hr->body_text != NULL ? tg__host_problem(r, &b) : -ENOMEM;
    if (rc == 0) {
        hr->problem = strndup(b.data ? tg_buf_ptr(&b) : "",
                              tg_buf_size(&b));
    }
    tg_buf_free(&b);
    if (hr->body_text == NULL || hr->problem == NULL) {
        free(hr->body_text);
        free(hr->problem);
        hr->body_text = NULL;
        hr->problem = NULL;
        in->body = "";
        in->body_len = 0;
        in->problem = "";
        in->problem_len = 0;
        return -ENOMEM;
    }
    in->body = hr->body_text;
    in->body_len = strlen(hr->body_text);
    in->problem = hr->problem;
    in->problem_len = strlen(hr->problem);
    return 0;
}


static void
tg__host_on_event(tg_trace_t *t, const char *event, const char *payload,
    size_t len)
{
    tg_host_trace_t  *ht = t->data;
    tg_host_req_t    *hr = ht->hr;
    tg_delta_t        d;
    int               rc;

    if (!tg__host_usable(hr) || ht->ended || strcmp(event, "message") != 0) {
        return;
    }

    rc = tg__host_trace_event(ht, payload, len, &d);
    if (rc == 0) {
        return;
    }
    if (rc == 2) {
        /* The backend reported an error inside the stream. */
        tg_trace_cancel(t);
        tg__host_end_trace(ht);
        return;
    }

    if (ht->live && tg__host_live_relay(hr, ht, &d) != 0) {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        hr->answered = 1;
        tg__host_cancel_all(hr);
        tg__host_error(hr, &err);
        return;
    }

    if (ht->aux || (d.reasoning_len == 0 && d.content_len == 0
                    && d.tokens == 0))
    {
        return;
    }

    tg__host_enter(hr);
    hr->p->on_delta(tg__host_preq(hr->r), tg__host_ptrace(t), &d);
    tg__host_leave(hr);

    /* The plugin may have ended the request or the trace meanwhile. */
    if (tg__host_usable(hr) && !ht->ended && hr->budget > 0
        && tg__host_budget_check(ht) != 0)
    {
        tg__host_end_trace(ht);
    }
}


static void
tg__host_on_data(tg_trace_t *t, const char *p, size_t n)
{
    tg_host_trace_t  *ht = t->data;

    if (tg__host_usable(ht->hr) && !ht->ended) {
        tg__host_trace_data(ht, p, n);
    }
}


static void
tg__host_on_trace_end(tg_trace_t *t)
{
    tg_host_trace_t  *ht = t->data;

    if (ht->ended || tg__host_retry_whole(ht)) {
        return;
    }
    tg__host_end_trace(ht);
}


/*
 * A backend that accepted a stream (200) and closed it without a single
 * byte gave no reason: llama.cpp's Python server does that when the
 * prompt is over its context, raising inside its SSE generator.  Asked
 * once more for a plain answer, it says why, with its own status, which
 * the client then gets; or it answers, and the client gets that.  Only
 * when nothing of the trace was seen yet.  1 when the trace runs again.
 */
static int
tg__host_retry_whole(tg_host_trace_t *ht)
{
    tg_host_req_t  *hr = ht->hr;
    tg_trace_t     *t = ht->t;
    tg_oa_error_t   err;
    json_error_t    jerr;
    json_t         *body;
    int             rc;

    if (ht->aux || ht->whole || ht->whole_retry || !tg__host_usable(hr)
        || t->rc != 0 || t->status < 200 || t->status >= 300
        || !t->sse_ready || t->bytes != 0 || ht->tokens != 0
        || ht->cut_at != 0 || tg_buf_size(&ht->content) != 0
        || tg_buf_size(&ht->reasoning) != 0)
    {
        return 0;
    }

    /* A body the host wrote as text is read back: this is rare. */
    body = t->body != NULL
           ? json_copy(t->body)
           : tg_json_loadb(t->text.p, t->text.len, &jerr);
    if (body == NULL
        || json_object_set_new(body, "stream", json_false()) != 0)
    {
        json_decref(body);
        return 0;
    }
    json_object_del(body, "stream_options");

    tg_log_warn("request %llu: backend %s closed trace %u's stream without "
                "a byte; asking again without streaming",
                (unsigned long long) hr->r->id,
                t->backend ? t->backend->name : "?", ht->index);

    ht->whole_retry = 1;
    ht->whole = 1;
    t->stream = 0;
    t->whole = 1;
    rc = tg_trace_restart(t, body, &err);
    json_decref(body);
    if (rc != 0) {
        /* It ended with err's reason: the trace fails with it. */
        ht->err = err;
        return 0;
    }
    return 1;
}


/* A trace or aux request ended on its own (done or failed): tell the
 * plugin, unless it cancelled it or the request is over. */
static void
tg__host_end_trace(tg_host_trace_t *ht)
{
    tg_host_req_t    *hr = ht->hr;
    tg_trace_end_t    e;
    tg_aux_result_t   ar;
    int               rc;

    tg__host_trace_ended(ht, &e);
    if (!tg__host_usable(hr) || ht->by_plugin) {
        return;
    }
    if (ht->live && ht->whole && ht->state == TG_TRACE_DONE
        && (rc = tg__host_live_rest(hr, ht)) != 0 && rc != -EPIPE)
    {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        hr->answered = 1;
        tg__host_cancel_all(hr);
        tg__host_error(hr, &err);
        return;
    }
    if (ht->live && tg__host_live_ended(hr, ht) != 0) {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        hr->answered = 1;
        tg__host_cancel_all(hr);
        tg__host_error(hr, &err);
        return;
    }

    tg__host_enter(hr);
    if (ht->aux) {
        tg__host_aux_result(ht, &e, &ar);
        hr->p->on_aux_result(tg__host_preq(hr->r),
                             tg__host_paux((tg_host_aux_t *) ht), &ar);
        tg__host_aux_release(ht);
    } else {
        hr->p->on_trace_end(tg__host_preq(hr->r), tg__host_ptrace(ht->t),
                            &e);
    }
    tg__host_leave(hr);
}


static void
tg__host_on_cancel(tg_request_t *r)
{
    tg_host_req_t  *hr = r->strategy_data;

    if (hr == NULL || !hr->started || hr->gone || hr->closing) {
        return;
    }
    hr->gone = 1;
    if (hr->answered) {
        return;
    }
    tg__host_enter(hr);
    hr->p->on_cancel(tg__host_preq(r));
    tg__host_leave(hr);
}


/* The deadline passed: the plugin hears it as a client gone (on_cancel,
 * so that it releases what it holds) and may no longer answer; everything
 * it runs stops now, whatever output still waits for the client. */
static void
tg__host_on_deadline(tg_request_t *r)
{
    tg_host_req_t  *hr = r->strategy_data;

    if (hr == NULL || hr->closing) {
        return;
    }
    tg__host_enter(hr);
    if (hr->started && !hr->gone && !hr->answered) {
        hr->gone = 1;
        hr->p->on_cancel(tg__host_preq(r));
    }
    hr->gone = 1;
    tg__host_cancel_all(hr);
    tg__host_leave(hr);
}


/* Stops everything the request has running; no callback follows.  Traces
 * still running count as cancelled. */
void
tg__host_cancel_all(tg_host_req_t *hr)
{
    tg_host_trace_t  *ht;
    size_t            i;

    for (i = 0; i < hr->ntraces; i++) {
        ht = hr->traces[i];
        if (!ht->ended) {
            tg_trace_cancel(ht->t);
            ht->ended = 1;
            ht->state = TG_TRACE_CANCELLED;
            ht->ended_ms = tg__host_now();
            hr->cancelled++;
        }
    }
    for (ht = hr->auxs; ht != NULL; ht = ht->next_aux) {
        if (!ht->ended) {
            tg_trace_cancel(ht->t);
            ht->ended = 1;
            ht->state = TG_TRACE_CANCELLED;
        }
    }
    tg__host_timers_stop(hr);
    tg__host_scores_cancel(hr);
    tg__host_kvs_cancel(hr);
    tg__host_embeds_cancel(hr);
}


static void
tg__host_destroy(tg_request_t *r)
{
    tg_host_req_t  *hr = r->strategy_data;

    if (hr == NULL || hr->closing) {
        return;
    }
    hr->closing = 1;
    tg__host_cancel_all(hr);
    if (hr->depth == 0) {
        tg__host_free(hr);
    }
}


static void
tg__host_keepalive_closed(uv_handle_t *h)
{
    free(h);
}


static void
tg__host_free(tg_host_req_t *hr)
{
    tg_host_trace_t  *ht, *next;
    size_t            i;

    if (hr->freed) {
        return;
    }
    hr->freed = 1;

    if (hr->started) {
        /* depth stays > 0 so that nothing the plugin calls from destroy()
         * frees again. */
        hr->depth++;
        hr->p->destroy(tg__host_preq(hr->r));
        hr->depth--;
    }

    if (hr->keepalive != NULL) {
        uv_close((uv_handle_t *) hr->keepalive, tg__host_keepalive_closed);
    }
    for (i = 0; i < hr->ntraces; i++) {
        tg__host_trace_free(hr->traces[i]);
    }
    for (ht = hr->auxs; ht != NULL; ht = next) {
        next = ht->next_aux;
        tg__host_trace_free(ht);
    }
    tg__host_timers_stop(hr);
    tg__host_arena_free(hr);
    tg_opt_values_free(&hr->opts);
    json_decref(hr->summary);
    json_decref(hr->counters);
    json_decref(hr->end_doc);
    json_decref(hr->end_summary);
    tg_oa_resp_stream_free(&hr->resp);
    tg__host_choices_free(hr);
    free(hr->problem);
    free(hr->body_text);
    if (hr->strategy != hr->strategy_buf) {
        free(hr->strategy);
    }

    /* The last request on a replaced version unloads it. */
    tg_plugin_release(hr->version);

    hr->r->strategy_data = NULL;
    if (tg__host_current_hr == hr) {
        tg__host_current_hr = NULL;
    }
    if (!tg__host_spares_off && tg__host_nspares < TG_HOST_SPARES) {
        if (hr->out.cap > TG_HOST_SPARE_OUT) {
            tg_buf_free(&hr->out);
        }
        hr->out.start = hr->out.len = 0;
        tg__host_keep(hr);
        tg__host_spares[tg__host_nspares++] = hr;
        return;
    }
    free(hr->traces);
    free(hr->state);
    tg__host_unkeep(hr);
    tg_buf_free(&hr->out);
    free(hr);
}


/* The parts a spare keeps (host.h, keep): the traces array and the
 * state's block when small; what is over the bounds goes. */
static void
tg__host_keep(tg_host_req_t *hr)
{
    if (hr->cap <= 64) {
        hr->keep.traces = hr->traces;
        hr->keep.cap = hr->cap;
    } else {
        free(hr->traces);
    }
    hr->traces = NULL;

    if (hr->state != NULL && hr->state_cap <= 1024) {
        free(hr->keep.state);       /* one too small to have been used */
        hr->keep.state = hr->state;
        hr->keep.state_size = hr->state_cap;
    } else {
        free(hr->state);
    }
    hr->state = NULL;
}


/* Frees what hr kept. */
static void
tg__host_unkeep(tg_host_req_t *hr)
{
    free(hr->keep.traces);
    free(hr->keep.state);
    tg_buf_free(&hr->keep.choice.reasoning);
    tg_buf_free(&hr->keep.choice.content);
    memset(&hr->keep, 0, sizeof(hr->keep));
}


void
tg__host_spares_free(void)
{
    tg__host_trace_spares_free();
    tg__host_spares_off = 1;
    while (tg__host_nspares > 0) {
        tg_host_req_t  *hr = tg__host_spares[--tg__host_nspares];

        tg__host_unkeep(hr);
        tg_buf_free(&hr->out);
        free(hr);
    }
}
