/*
 * The plugin host's traces: the backend request each one sends, and what
 * comes back turned into text, tokens and an end (aux requests, which
 * share the machinery: host_aux.c).
 *
 * Traces always stream, with usage in every chunk (vLLM's
 * stream_options.continuous_usage_stats), so that the host knows the
 * tokens of a trace it cancels; a backend that sends no usage has its
 * chunks counted instead.  Aux requests are plain non-streamed
 * completions.  What comes back: host_sse.c.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy/host.h"
#include "util/jload.h"

static int tg__host_spec_keep(tg_host_spec_t *ks, const tg_trace_spec_t *s);
static int tg__host_whole_ok(tg_host_req_t *hr, const tg_trace_spec_t *spec);
static void tg__host_trace_carry(tg_host_req_t *hr, tg_host_trace_t *ht,
    tg_host_trace_t *from, const char *append, size_t alen);
static int tg__host_trace_prefix(tg_host_req_t *hr,
    const tg_trace_spec_t *spec, json_t *body);
static int tg__host_trace_sampling(tg_host_req_t *hr,
    const tg_trace_spec_t *spec, uint32_t index, json_t *body);


/*
 * Freed traces (not aux ones) kept for the next requests with their text
 * buffers, each up to TG_HOST_TRACE_SPARE_BUF: a small request's trace
 * otherwise allocates and frees each of them once (make callgrind).
 * Emptied for good by tg__host_spares_free; off under ASan, so that a
 * use after free is caught.
 */
#define TG_HOST_TRACE_SPARES     32
#define TG_HOST_TRACE_SPARE_BUF  (16 * 1024)

static tg_host_trace_t  *tg__host_trace_spares[TG_HOST_TRACE_SPARES];
static size_t            tg__host_trace_nspares;
#if defined(__SANITIZE_ADDRESS__)
static int               tg__host_trace_spares_off = 1;
#else
static int               tg__host_trace_spares_off;
#endif


/* The buffers a spare keeps, emptied, or freed when over the size. */
#define TG__HOST_TRACE_BUFS(ht)                                              \
    { &(ht)->reasoning, &(ht)->content, &(ht)->body, &(ht)->logprobs,        \
      &(ht)->usage_raw, &(ht)->scratch }

static tg_host_trace_t *
tg__host_trace_spare(void)
{
    tg_host_trace_t  *ht = tg__host_trace_spares[--tg__host_trace_nspares];
    tg_buf_t         *bufs[] = TG__HOST_TRACE_BUFS(ht);
    tg_buf_t          keep[sizeof(bufs) / sizeof(bufs[0])];
    size_t            i;

    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        keep[i] = *bufs[i];
    }
    memset(ht, 0, sizeof(*ht));
    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        *bufs[i] = keep[i];
    }
    return ht;
}


static void
tg__host_trace_bufs_free(tg_host_trace_t *ht)
{
    tg_buf_t  *bufs[] = TG__HOST_TRACE_BUFS(ht);
    size_t     i;

    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        tg_buf_free(bufs[i]);
    }
}


/* Keeps ht (its other parts freed) when there is room; 0 when not. */
static int
tg__host_trace_keep(tg_host_trace_t *ht)
{
    tg_buf_t  *bufs[] = TG__HOST_TRACE_BUFS(ht);
    size_t     i;

    if (ht->aux || tg__host_trace_spares_off
        || tg__host_trace_nspares == TG_HOST_TRACE_SPARES)
    {
        return 0;
    }
    for (i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++) {
        if (bufs[i]->cap > TG_HOST_TRACE_SPARE_BUF) {
            tg_buf_free(bufs[i]);
        }
        bufs[i]->start = bufs[i]->len = 0;
    }
    tg__host_trace_spares[tg__host_trace_nspares++] = ht;
    return 1;
}


void
tg__host_trace_spares_free(void)
{
    tg_host_trace_t  *ht;

    tg__host_trace_spares_off = 1;
    while (tg__host_trace_nspares > 0) {
        /* the rest was freed when it was kept */
        ht = tg__host_trace_spares[--tg__host_trace_nspares];
        tg__host_trace_bufs_free(ht);
        free(ht);
    }
}


tg_host_trace_t *
tg__host_trace_new(tg_host_req_t *hr, int aux)
{
    tg_host_trace_t  *ht;

    if (!aux && tg__host_trace_nspares > 0) {
        ht = tg__host_trace_spare();
    } else {
        ht = aux ? calloc(1, sizeof(tg_host_aux_t)) : calloc(1, sizeof(*ht));
    }
    if (ht == NULL) {
        tg__host_set_error(hr, "out of memory");
        return NULL;
    }
    ht->hr = hr;
    ht->aux = !!aux;
    ht->state = TG_TRACE_RUNNING;
    return ht;
}


void
tg__host_trace_free(tg_host_trace_t *ht)
{
    if (ht == NULL) {
        return;
    }
    json_decref(ht->usage);
    free(ht->model);
    free(ht->spec.pool);
    free(ht->spec.backend);
    free(ht->spec.messages_json);
    if (tg__host_trace_keep(ht)) {
        return;
    }
    tg__host_trace_bufs_free(ht);
    if (ht->aux) {
        tg__host_aux_release(ht);
    }
    free(ht);
}


/* Starts ht's transfer: pool (NULL: the request's) and backend (NULL: the
 * pool's policy picks), the body a tree or (text not NULL) text, which is
 * then taken whatever the result.  0, or -errno with last_error set. */
int
tg__host_launch(tg_host_req_t *hr, tg_host_trace_t *ht, const char *pool_name,
    const char *backend, int endpoint, json_t *body, tg_trace_text_t *text,
    int stream)
{
    tg_request_t   *r = hr->r;
    tg_pool_t      *pool;
    tg_backend_t   *only = NULL;
    tg_oa_error_t   err;
    int             rc;

    if (pool_name == NULL) {
        pool_name = r->pool_name;
        pool = r->pool;
    } else {
        pool = tg_generation_pool(r->gen, pool_name);
    }
    if (pool == NULL) {
        tg__host_set_error(hr, "no pool \"%.64s\" in this configuration",
                           pool_name);
        goto unknown;
    }
    if (backend != NULL) {
        only = tg_generation_backend(r->gen, backend);
        if (only == NULL) {
            tg__host_set_error(hr, "no backend \"%.64s\" in this "
                               "configuration", backend);
            goto unknown;
        }
    }

    rc = text != NULL
         ? tg_trace_start_text(r, pool, only, endpoint, text, stream, &ht->t,
                               &err)
         : tg_trace_start_on(r, pool, only, endpoint, body, stream, &ht->t,
                             &err);
    if (rc != 0) {
        /* Kept whole, so that a fail() relaying it keeps its status. */
        snprintf(hr->error, sizeof(hr->error), "%s", err.message);
        hr->start_err = err;
        return rc;
    }
    ht->t->data = ht;
    ht->t->aux = ht->aux;
    ht->started_ms = tg__host_now();
    return 0;

unknown:
    if (text != NULL) {
        free(text->p);
    }
    return -ENOENT;
}


/* Appends ht to the plugin's traces. */
static int
tg__host_trace_add(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    tg_host_trace_t  **a;
    size_t             cap;

    if (hr->ntraces == hr->cap) {
        cap = hr->cap ? hr->cap * 2 : 8;
        a = realloc(hr->traces, cap * sizeof(*a));
        if (a == NULL) {
            return -ENOMEM;
        }
        hr->traces = a;
        hr->cap = cap;
    }
    ht->index = (uint32_t) hr->ntraces;
    hr->traces[hr->ntraces++] = ht;
    return 0;
}


/* A continuation carries the text it continues, so that its info
 * reads like one trace; the appended text goes where writing goes
 * on: the answer once it began, else the thinking. */
static void
tg__host_trace_carry(tg_host_req_t *hr, tg_host_trace_t *ht,
    tg_host_trace_t *from, const char *append, size_t alen)
{
    ht->think = from->think;
    if (tg_buf_append(&ht->reasoning, tg_buf_ptr(&from->reasoning),
                      tg_buf_size(&from->reasoning)) != 0
        || tg_buf_append(&ht->content, tg_buf_ptr(&from->content),
                         tg_buf_size(&from->content)) != 0
        || tg_buf_append(tg_buf_size(&from->content)
                         || from->think == TG_THINK_ANSWER
                         || hr->r->oa.endpoint != TG_OA_CHAT
                         ? &ht->content : &ht->reasoning,
                         append, alen) != 0)
    {
        /* The trace runs; only its info misses the carried text. */
        tg_log_warn("request %llu: out of memory carrying a trace's "
                    "text", (unsigned long long) hr->r->id);
    }
    ht->r_mark = tg_buf_size(&ht->reasoning);
    ht->c_mark = tg_buf_size(&ht->content);
}


static tg_trace_t *
tg__host_trace_spawn(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    tg_host_trace_t *from, const char *append, size_t alen)
{
    tg_host_trace_t  *ht;
    tg_trace_text_t   text;
    json_t           *body;
    uint32_t          choice = 0;
    int               rc;

    if (!tg__host_usable(hr)) {
        tg__host_set_error(hr, "the request is over");
        return NULL;
    }
    if ((spec->flags & TG_TRACE_F_LIVE)
        && tg__host_choice_pick(hr, from, &choice) != 0)
    {
        return NULL;
    }

    ht = tg__host_trace_new(hr, 0);
    if (ht == NULL) {
        return NULL;
    }
    if (tg__host_spec_keep(&ht->spec, spec) != 0) {
        tg__host_set_error(hr, "out of memory");
        goto failed;
    }

    ht->whole = (unsigned) tg__host_whole_ok(hr, spec);
    body = NULL;
    rc = tg__host_trace_text(hr, spec, (uint32_t) hr->ntraces, ht->whole,
                             &text);
    if (rc == 1) {
        body = tg__host_trace_body_as(hr, spec, (uint32_t) hr->ntraces,
                                      ht->whole);
    }
    if (rc < 0 || (rc == 1 && body == NULL)) {
        goto failed;
    }
    rc = tg__host_launch(hr, ht, spec->pool, spec->backend,
                         hr->r->oa.endpoint, body, rc == 0 ? &text : NULL,
                         ht->whole ? TG_TRACE_WHOLE : 1);
    json_decref(body);
    if (rc != 0) {
        goto failed;
    }

    if (tg__host_trace_add(hr, ht) != 0) {
        tg_trace_cancel(ht->t);
        tg__host_set_error(hr, "out of memory");
        goto failed;
    }

    if (from != NULL) {
        tg__host_trace_carry(hr, ht, from, append, alen);
    }

    if (spec->flags & TG_TRACE_F_LIVE) {
        tg__host_choice_take(hr, ht, choice);
    }
    return ht->t;

failed:
    tg__host_trace_free(ht);
    return NULL;
}


tg_plugin_trace_t *
tg__host_trace_start(tg_plugin_req_t *req, const tg_trace_spec_t *spec)
{
    tg_host_req_t  *hr = tg__host_of(req);

    if (hr == NULL || spec == NULL) {
        return NULL;
    }
    return tg__host_ptrace(tg__host_trace_spawn(hr, spec, NULL, NULL, 0));
}


/*
 * Whether a trace may be asked for its whole answer at once instead of a
 * stream: the plugin reads nothing before the end (TG_TRACE_F_WHOLE), the
 * client does not stream, no thinking budget must be watched, and no
 * logprobs or echo are asked for (the host relays those per chunk only).
 * The backend's usage is then its own, exact, also where a backend sends
 * none in streams (llama.cpp's Python server), and an error it reports
 * only on a plain request (a prompt over its context) keeps its status.
 */
static int
tg__host_whole_ok(tg_host_req_t *hr, const tg_trace_spec_t *spec)
{
    if (!(spec->flags & TG_TRACE_F_WHOLE) || hr->r->oa.stream
        || hr->budget > 0 || (spec->flags & TG_TRACE_F_LOGPROBS))
    {
        return 0;
    }
    return !tg_oa_given(&hr->r->oa, "logprobs")
           && !tg_oa_given(&hr->r->oa, "echo");
}


/* Copies what trace_continue needs of a spec. */
static int
tg__host_spec_keep(tg_host_spec_t *ks, const tg_trace_spec_t *s)
{
    ks->pool = s->pool ? strdup(s->pool) : NULL;
    ks->backend = s->backend ? strdup(s->backend) : NULL;
    ks->messages_json = s->messages_json ? strdup(s->messages_json) : NULL;
    ks->max_tokens = s->max_tokens;
    ks->temperature = s->temperature;
    ks->seed_mode = s->seed_mode;
    ks->seed = s->seed;
    ks->flags = s->flags;
    ks->data = s->data;
    if ((s->pool && !ks->pool) || (s->backend && !ks->backend)
        || (s->messages_json && !ks->messages_json))
    {
        return -ENOMEM;
    }
    return 0;
}


/*
 * A continuation: the assistant's prefix appended to a chat request's
 * messages (on a copy of them) or to a completions request's prompt.
 * 0, -EINVAL with last_error set, or -ENOMEM.
 */
static int
tg__host_trace_prefix(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    json_t *body)
{
    json_t  *msgs, *v;
    int      rc = 0;

    if (hr->r->oa.endpoint == TG_OA_CHAT) {
        msgs = json_copy(json_object_get(body, "messages"));
        if (msgs == NULL
            || json_object_set_new(body, "messages", msgs) != 0)
        {
            return -ENOMEM;
        }
        rc |= json_array_append_new(msgs, json_pack("{s:s, s:s%}",
                 "role", "assistant", "content", spec->assistant_prefix,
                 spec->assistant_prefix_len));
        rc |= json_object_set_new(body, "continue_final_message",
                                  json_true());
        rc |= json_object_set_new(body, "add_generation_prompt",
                                  json_false());
    } else {
        v = json_object_get(body, "prompt");
        if (!json_is_string(v)) {
            tg__host_set_error(hr, "a continuation needs a string "
                               "prompt");
            return -EINVAL;
        }
        rc |= json_object_set_new(body, "prompt", json_sprintf("%s%.*s",
                 json_string_value(v), (int) spec->assistant_prefix_len,
                 spec->assistant_prefix));
    }
    return rc != 0 ? -ENOMEM : 0;
}


/* The spec's sampling fields: 0 or -1 when memory ran out. */
static int
tg__host_trace_sampling(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index, json_t *body)
{
    int  rc = 0;

    if (spec->max_tokens > 0) {
        json_object_del(body, "max_completion_tokens");
        rc |= json_object_set_new(body, "max_tokens",
                                  json_integer(spec->max_tokens));
    }
    if (spec->temperature >= 0) {
        rc |= json_object_set_new(body, "temperature",
                                  json_real(spec->temperature));
    }
    if (spec->seed_mode == 1) {
        rc |= json_object_set_new(body, "seed", json_integer(spec->seed));
    } else if (hr->info.has_seed) {
        /* Distinct samples of one seeded request, reproducibly. */
        rc |= json_object_set_new(body, "seed",
                                  json_integer(hr->info.seed + index));
    }
    if (spec->flags & TG_TRACE_F_LOGPROBS) {
        if (hr->r->oa.endpoint == TG_OA_CHAT) {
            rc |= json_object_set_new(body, "logprobs", json_true());
        } else if (!json_is_integer(json_object_get(body, "logprobs"))) {
            rc |= json_object_set_new(body, "logprobs", json_integer(1));
        }
    }
    return rc;
}


/*
 * The backend request of a trace: the client's body with the spec's
 * changes, streamed, one choice.
 */
json_t *
tg__host_trace_body(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index)
{
    return tg__host_trace_body_as(hr, spec, index, 0);
}


/* The same, asked for the whole answer at once when whole is set
 * ("stream": false in the place "stream": true takes otherwise, and no
 * stream_options). */
json_t *
tg__host_trace_body_as(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index, int whole)
{
    tg_request_t  *r = hr->r;
    json_t        *body, *msgs;
    json_error_t   jerr;
    int            rc = 0;

    /* A shallow copy: only top-level keys change below, and the one
     * nested value changed (a chat continuation's messages) is copied
     * before it is.  The client's body stays as it came. */
    body = json_copy(tg_oa_body(&r->oa));
    if (body == NULL) {
        goto nomem;
    }
    json_object_del(body, "n");
    json_object_del(body, "best_of");
    if (!hr->effort_native) {
        /* The gateway's to honour (host_budget.c). */
        json_object_del(body, "reasoning_effort");
    }

    if (spec->messages_json != NULL) {
        if (r->oa.endpoint != TG_OA_CHAT) {
            tg__host_set_error(hr, "messages_json needs a chat request");
            goto invalid;
        }
        msgs = tg_json_loadb(spec->messages_json,
                             strlen(spec->messages_json), &jerr);
        if (!json_is_array(msgs)) {
            json_decref(msgs);
            tg__host_set_error(hr, "messages_json is not a JSON array: %s",
                               msgs ? "wrong type" : jerr.text);
            goto invalid;
        }
        rc |= json_object_set_new(body, "messages", msgs);
    }

    if (spec->assistant_prefix != NULL) {
        switch (tg__host_trace_prefix(hr, spec, body)) {
        case 0:
            break;
        case -EINVAL:
            goto invalid;
        default:
            goto nomem;
        }
    }

    rc |= tg__host_trace_sampling(hr, spec, index, body);
    if (whole) {
        /* The client's own "stream_options" goes as it would once a
         * streamed body's replaced it and was removed again. */
        json_object_del(body, "stream_options");
        rc |= json_object_set_new(body, "stream", json_false());
    } else {
        rc |= json_object_set_new(body, "stream", json_true());
        rc |= json_object_set_new(body, "stream_options",
                                  json_pack("{s:b, s:b}", "include_usage", 1,
                                            "continuous_usage_stats", 1));
    }
    if (rc != 0) {
        goto nomem;
    }
    return body;

nomem:
    tg__host_set_error(hr, "out of memory");
invalid:
    json_decref(body);
    return NULL;
}


int
tg__host_trace_cancel(tg_plugin_req_t *req, tg_plugin_trace_t *pt)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_trace_t       *t = tg__host_trace(pt);
    tg_host_trace_t  *ht;

    if (hr == NULL || t == NULL || t->data == NULL
        || t->req != tg__host_req(req) || t->aux)
    {
        if (hr != NULL) {
            tg__host_set_error(hr, "not a trace of this request");
        }
        return -EINVAL;
    }
    ht = t->data;
    if (ht->ended) {
        tg__host_set_error(hr, "trace %u already ended", ht->index);
        return -EALREADY;
    }
    tg_trace_cancel(t);
    ht->ended = 1;
    ht->by_plugin = 1;
    ht->state = TG_TRACE_CANCELLED;
    ht->ended_ms = tg__host_now();
    hr->cancelled++;
    return 0;
}


/* The text a continuation of ht writes after: the thinking, then, once
 * the answer began, "</think>" and the answer, as recorded outputs read
 * (the model's own text, without a template's opening tag). */
void
tg__host_prefix_text(tg_host_trace_t *ht, tg_buf_t *b)
{
    (void) tg_buf_append(b, tg_buf_ptr(&ht->reasoning),
                         tg_buf_size(&ht->reasoning));
    if (tg_buf_size(&ht->content) > 0 && tg_buf_size(&ht->reasoning) > 0) {
        (void) tg_buf_append(b, "</think>", 8);
    }
    (void) tg_buf_append(b, tg_buf_ptr(&ht->content),
                         tg_buf_size(&ht->content));
}


tg_plugin_trace_t *
tg__host_trace_continue(tg_plugin_req_t *req, tg_plugin_trace_t *pt,
    const char *append, size_t len, const tg_trace_spec_t *spec)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_trace_t       *t = tg__host_trace(pt);
    tg_host_trace_t  *ht;
    tg_trace_spec_t   s;
    tg_buf_t          prefix = { 0 };
    tg_trace_t       *nt;

    if (hr == NULL || t == NULL || t->data == NULL
        || t->req != tg__host_req(req) || t->aux)
    {
        if (hr != NULL) {
            tg__host_set_error(hr, "not a trace of this request");
        }
        return NULL;
    }
    if (!tg__host_usable(hr)) {
        tg__host_set_error(hr, "the request is over");
        return NULL;
    }
    ht = t->data;

    if (spec != NULL) {
        s = *spec;
    } else {
        memset(&s, 0, sizeof(s));
        s.pool = ht->spec.pool;
        s.backend = ht->spec.backend;
        s.messages_json = ht->spec.messages_json;
        s.max_tokens = ht->spec.max_tokens;
        s.temperature = ht->spec.temperature;
        s.seed_mode = ht->spec.seed_mode;
        s.seed = ht->spec.seed;
        s.flags = ht->spec.flags;
        s.data = ht->spec.data;
    }

    tg__host_prefix_text(ht, &prefix);
    if (append != NULL && len > 0) {
        (void) tg_buf_append(&prefix, append, len);
    }
    if (prefix.data == NULL && (append == NULL || len == 0)
        && tg_buf_size(&ht->reasoning) + tg_buf_size(&ht->content) > 0)
    {
        tg__host_set_error(hr, "out of memory");
        return NULL;
    }
    s.assistant_prefix = prefix.data ? tg_buf_cstr(&prefix) : "";
    s.assistant_prefix_len = tg_buf_size(&prefix);

    if (!ht->ended) {
        (void) tg__host_trace_cancel(req, pt);
    }
    nt = tg__host_trace_spawn(hr, &s, ht, append, append ? len : 0);
    tg_buf_free(&prefix);
    return tg__host_ptrace(nt);
}


int
tg__host_trace_info(tg_plugin_trace_t *pt, tg_trace_info_t *out)
{
    tg_trace_t       *t = tg__host_trace(pt);
    tg_host_trace_t  *ht;

    if (t == NULL || out == NULL || t->data == NULL || t->aux) {
        return -EINVAL;
    }
    ht = t->data;
    memset(out, 0, sizeof(*out));
    out->index = ht->index;
    out->state = ht->state;
    out->tokens = ht->tokens;
    out->backend = t->backend ? t->backend->name : "";
    out->reasoning = tg_buf_size(&ht->reasoning)
                     ? tg_buf_cstr(&ht->reasoning) : "";
    out->reasoning_len = tg_buf_size(&ht->reasoning);
    out->content = tg_buf_size(&ht->content) ? tg_buf_cstr(&ht->content)
                                             : "";
    out->content_len = tg_buf_size(&ht->content);
    out->finish_reason = ht->finish_reason[0] ? ht->finish_reason : NULL;
    out->started_ms = ht->started_ms;
    out->first_token_ms = ht->first_token_ms;
    out->ended_ms = ht->ended_ms;
    out->data = ht->spec.data;
    return 0;
}


size_t
tg__host_trace_count(tg_plugin_req_t *req)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? hr->ntraces : 0;
}


tg_plugin_trace_t *
tg__host_trace_at(tg_plugin_req_t *req, size_t index)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr && index < hr->ntraces ? tg__host_ptrace(hr->traces[index]->t)
                                     : NULL;
}
