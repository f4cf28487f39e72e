/*
 * The plugin host's output to the client, in the client's format.
 *
 * Streamed (SSE): chat.completion.chunk (reasoning_content, content) or
 * text_completion chunks as a live trace or emit() produce text; while
 * nothing is written for a second, a comment line (": keep-alive") keeps
 * proxies and clients from timing out.  The end: a chunk with
 * finish_reason, a usage chunk (choices [], usage, the "thinkgate"
 * object), "data: [DONE]".
 * Not streamed: one chat.completion or text_completion with the text,
 * finish_reason, usage of the returned trace and the "thinkgate" object.
 * A response of several live choices (the client's n) carries each
 * choice's index in its chunks, a finish chunk per choice as it closes,
 * and one usage for all of them at the end; not streamed, one choice per
 * index.
 *
 * HEAD waits for the first byte of output, so that a request that fails
 * before anything was shown still gets its proper status.  END carries
 * the "thinkgate" figures for the $thinkgate_* variables.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <thinkgate/protocol.h>

#include "log.h"
#include "core/prep.h"
#include "strategy/host.h"

#define TG_KEEPALIVE_MS  1000

static int tg__host_sse_head(tg_host_req_t *hr);
static int tg__host_chunk(tg_host_req_t *hr, uint32_t choice,
    tg_host_trace_t *model_of, const char *rs, size_t rl, const char *cs,
    size_t cl, const char *finish, const char *logprobs);
static int tg__host_choice_close(tg_host_req_t *hr, uint32_t choice,
    tg_host_trace_t *model_of, const char *finish);
static int tg__host_end(tg_host_req_t *hr, tg_host_trace_t *usage_of,
    const char *finish);
static json_t *tg__host_summary(tg_host_req_t *hr, tg_host_trace_t *winner);


/* A JSON string of n bytes; backends' text is UTF-8, but a plugin's
 * emit() might not be: it is sent as it is rather than dropped. */
static json_t *
tg__host_str(const char *s, size_t n)
{
    json_t  *v = json_stringn(s, n);

    return v != NULL ? v : json_stringn_nocheck(s, n);
}


static const char *
tg__host_model(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    if (ht != NULL && ht->model != NULL) {
        return ht->model;
    }
    return hr->r->oa.model ? hr->r->oa.model : "thinkgate";
}


static int
tg__host_sse_head(tg_host_req_t *hr)
{
    tg_request_t  *r = hr->r;

    hr->last_out_ms = tg__host_now();
    if (r->head_sent || r->head_pending) {
        return 0;
    }
    return tg_request_head(r, 200, TG_HEAD_F_STREAM,
                           "Content-Type: text/event-stream\r\n"
                           "Cache-Control: no-cache\r\n");
}


static int
tg__host_send_json(tg_host_req_t *hr, json_t *doc)
{
    char  *s;
    int    rc;

    if (doc == NULL) {
        return -ENOMEM;
    }
    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (s == NULL) {
        return -ENOMEM;
    }
    rc = tg__host_sse_head(hr);
    if (rc == 0) {
        rc = tg_request_data(hr->r, "data: ", 6);
    }
    if (rc == 0) {
        rc = tg_request_data(hr->r, s, strlen(s));
    }
    if (rc == 0) {
        rc = tg_request_data(hr->r, "\n\n", 2);
    }
    free(s);
    return rc;
}


/* One streamed chunk of a choice; finish non-NULL makes it the choice's
 * last one.  model_of: the trace whose model the chunk names (NULL: the
 * client's). */
static int
tg__host_chunk(tg_host_req_t *hr, uint32_t choice, tg_host_trace_t *model_of,
    const char *rs, size_t rl, const char *cs, size_t cl, const char *finish,
    const char *logprobs)
{
    json_t  *ch, *delta, *lp;
    int      chat = hr->r->oa.endpoint == TG_OA_CHAT;

    lp = logprobs != NULL && logprobs[0] ? json_loads(logprobs, 0, NULL)
                                         : NULL;
    ch = json_pack("{s:i, s:o, s:o}", "index", (int) choice,
                   "logprobs", lp ? lp : json_null(),
                   "finish_reason", finish ? json_string(finish)
                                           : json_null());
    if (ch == NULL) {
        return -ENOMEM;
    }

    if (chat) {
        delta = json_object();
        if (delta == NULL || json_object_set_new(ch, "delta", delta) != 0) {
            json_decref(ch);
            return -ENOMEM;
        }
        if (!hr->choices[choice].role_sent) {
            hr->choices[choice].role_sent = 1;
            json_object_set_new(delta, "role", json_string("assistant"));
        }
        if (rl > 0) {
            json_object_set_new(delta, "reasoning_content",
                                tg__host_str(rs, rl));
        }
        if (cl > 0) {
            json_object_set_new(delta, "content", tg__host_str(cs, cl));
        }
    } else {
        char  *text = malloc(rl + cl + 1);

        if (text == NULL) {
            json_decref(ch);
            return -ENOMEM;
        }
        memcpy(text, rs, rl);
        memcpy(text + rl, cs, cl);
        json_object_set_new(ch, "text", tg__host_str(text, rl + cl));
        free(text);
    }

    return tg__host_send_json(hr, json_pack("{s:s, s:s, s:I, s:s, s:[o]}",
        "id", hr->id,
        "object", chat ? "chat.completion.chunk" : "text_completion",
        "created", (json_int_t) hr->created,
        "model", tg__host_model(hr, model_of),
        "choices", ch));
}


/* Output of a choice produced now: streamed as a chunk, else kept for
 * the body. */
static int
tg__host_out(tg_host_req_t *hr, uint32_t choice, tg_host_trace_t *model_of,
    const char *rs, size_t rl, const char *cs, size_t cl,
    const char *logprobs)
{
    tg_host_choice_t  *c = &hr->choices[choice];

    if (hr->r->oa.stream) {
        if (rl == 0 && cl == 0 && (logprobs == NULL || !logprobs[0])) {
            return 0;
        }
        return tg__host_chunk(hr, choice, model_of, rs, rl, cs, cl, NULL,
                              logprobs);
    }
    if (tg_buf_append(&c->reasoning, rs, rl) != 0
        || tg_buf_append(&c->content, cs, cl) != 0)
    {
        return -ENOMEM;
    }
    return 0;
}


int
tg__host_choices_init(tg_host_req_t *hr)
{
    json_t  *n = json_object_get(hr->r->oa.body, "n");

    /* The request was validated: n, when given, is 1..128. */
    hr->nchoices = json_is_integer(n) && json_integer_value(n) > 1
                   ? (uint32_t) json_integer_value(n) : 1;
    hr->choices = calloc(hr->nchoices, sizeof(*hr->choices));
    return hr->choices != NULL ? 0 : -ENOMEM;
}


void
tg__host_choices_free(tg_host_req_t *hr)
{
    uint32_t  k;

    for (k = 0; hr->choices != NULL && k < hr->nchoices; k++) {
        tg_buf_free(&hr->choices[k].reasoning);
        tg_buf_free(&hr->choices[k].content);
    }
    free(hr->choices);
    hr->choices = NULL;
}


/* The choice a new live trace writes (plugin.h, "Live traces and
 * choices"): a continuation's own, the next one while fewer than n are
 * open, else the first open one whose live trace is over. */
int
tg__host_choice_pick(tg_host_req_t *hr, tg_host_trace_t *from,
    uint32_t *choice)
{
    tg_host_choice_t  *c;
    uint32_t           k;

    if (from != NULL && from->live) {
        c = &hr->choices[from->choice];
        if (!c->closed && (c->live == from || c->live->ended)) {
            *choice = from->choice;
            return 0;
        }
    }
    if (hr->nopen < hr->nchoices) {
        *choice = hr->nopen;
        return 0;
    }
    for (k = 0; k < hr->nopen; k++) {
        c = &hr->choices[k];
        if (!c->closed && (c->live == NULL || c->live->ended)) {
            *choice = k;
            return 0;
        }
    }
    if (hr->nchoices == 1) {
        tg__host_set_error(hr, "trace %u is already live: one live trace "
                           "at a time", hr->choices[0].live->index);
    } else {
        tg__host_set_error(hr, "each of the %u choices the client asked "
                           "for has a live trace running", hr->nchoices);
    }
    return -EBUSY;
}


/* ht, just started live, writes choice from now on. */
void
tg__host_choice_take(tg_host_req_t *hr, tg_host_trace_t *ht, uint32_t choice)
{
    ht->live = 1;
    ht->choice = choice;
    hr->choices[choice].live = ht;
    if (choice == hr->nopen) {
        hr->nopen++;
    }
}


int
tg__host_live_relay(tg_host_req_t *hr, tg_host_trace_t *ht,
    const tg_delta_t *d)
{
    int  rc;

    rc = tg__host_out(hr, ht->choice, ht, d->reasoning, d->reasoning_len,
                      d->content, d->content_len,
                      tg_buf_size(&ht->logprobs)
                      ? tg_buf_cstr(&ht->logprobs) : NULL);
    return rc == -EPIPE ? 0 : rc;
}


/* Text of a live trace not relayed yet (held back for a tag that never
 * came). */
static int
tg__host_live_rest(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    size_t  rl = tg_buf_size(&ht->reasoning), cl = tg_buf_size(&ht->content);
    int     rc;

    if (ht->r_mark >= rl && ht->c_mark >= cl) {
        return 0;
    }
    rc = tg__host_out(hr, ht->choice, ht,
                      tg_buf_ptr(&ht->reasoning) + ht->r_mark,
                      rl > ht->r_mark ? rl - ht->r_mark : 0,
                      tg_buf_ptr(&ht->content) + ht->c_mark,
                      cl > ht->c_mark ? cl - ht->c_mark : 0, NULL);
    ht->r_mark = rl;
    ht->c_mark = cl;
    return rc;
}


/* A live trace ended DONE on its own: with several choices, its choice
 * closes now (plugin.h); with one, the plugin's finish() closes it. */
int
tg__host_live_ended(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    tg_host_choice_t  *c = &hr->choices[ht->choice];
    int                rc;

    if (hr->nchoices < 2 || ht->state != TG_TRACE_DONE || c->closed
        || c->live != ht)
    {
        return 0;
    }
    rc = tg__host_live_rest(hr, ht);
    if (rc == 0) {
        rc = tg__host_choice_close(hr, ht->choice, ht,
                                   ht->finish_reason[0] ? ht->finish_reason
                                                        : "stop");
    }
    return rc == -EPIPE ? 0 : rc;
}


/* A choice's end: its finish chunk (streamed) or its finish_reason. */
static int
tg__host_choice_close(tg_host_req_t *hr, uint32_t choice,
    tg_host_trace_t *model_of, const char *finish)
{
    tg_host_choice_t  *c = &hr->choices[choice];

    c->closed = 1;
    snprintf(c->finish_reason, sizeof(c->finish_reason), "%s", finish);
    if (!hr->r->oa.stream) {
        return 0;
    }
    return tg__host_chunk(hr, choice, model_of, "", 0, "", 0, finish, NULL);
}


/* The running live trace of choice 0, whose model emit()'s chunks name. */
static tg_host_trace_t *
tg__host_live0(tg_host_req_t *hr)
{
    tg_host_trace_t  *ht = hr->choices[0].live;

    return ht != NULL && !ht->ended ? ht : NULL;
}


int
tg__host_emit(tg_req_t *req, const char *reasoning, size_t rlen,
    const char *content, size_t clen)
{
    tg_host_req_t  *hr = tg__host_of(req);

    if (!tg__host_usable(hr)) {
        if (hr != NULL) {
            tg__host_set_error(hr, "the request is over");
        }
        return -EPIPE;
    }
    return tg__host_out(hr, 0, tg__host_live0(hr),
                        reasoning ? reasoning : "", reasoning ? rlen : 0,
                        content ? content : "", content ? clen : 0, NULL);
}


/* The checks finish, finish_trace and fail share: 0 when the plugin may
 * end the request now. */
static int
tg__host_may_end(tg_host_req_t *hr)
{
    if (hr == NULL) {
        return -EINVAL;
    }
    if (hr->answered) {
        tg__host_set_error(hr, "the request was already answered");
        return -EALREADY;
    }
    if (hr->gone || hr->closing) {
        /* plugin.h: ignored after on_cancel. */
        return -ECANCELED;
    }
    return 0;
}


int
tg__host_finish(tg_req_t *req, const tg_finish_t *fin)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_trace_t  *usage_of = NULL;
    uint32_t          k;
    int               rc;

    rc = tg__host_may_end(hr);
    if (rc != 0) {
        return rc == -ECANCELED ? 0 : rc;
    }
    if (fin != NULL && fin->usage_of != NULL) {
        if (fin->usage_of->req != req || fin->usage_of->data == NULL
            || fin->usage_of->aux)
        {
            tg__host_set_error(hr, "usage_of is not a trace of this "
                               "request");
            return -EINVAL;
        }
        usage_of = fin->usage_of->data;
    }

    hr->answered = 1;
    for (k = 0; k < hr->nopen; k++) {
        tg_host_trace_t  *live = hr->choices[k].live;

        if (!hr->choices[k].closed && !live->ended) {
            (void) tg__host_live_rest(hr, live);
        }
    }
    tg__host_cancel_all(hr);
    return tg__host_end(hr, usage_of, fin && fin->finish_reason
                                      ? fin->finish_reason : "stop");
}


int
tg__host_finish_trace(tg_req_t *req, tg_trace_t *winner)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_trace_t  *ht;
    int               rc;

    rc = tg__host_may_end(hr);
    if (rc != 0) {
        return rc == -ECANCELED ? 0 : rc;
    }
    if (winner == NULL || winner->req != req || winner->data == NULL
        || winner->aux)
    {
        tg__host_set_error(hr, "finish_trace: not a trace of this request");
        return -EINVAL;
    }
    ht = winner->data;
    if (ht->state != TG_TRACE_DONE) {
        tg__host_set_error(hr, "finish_trace: trace %u did not end DONE",
                           ht->index);
        return -EINVAL;
    }

    hr->answered = 1;
    tg__host_cancel_all(hr);

    /* The winner's text, unless it was the live trace and already went
     * out (then only what was held back). */
    if (ht->live) {
        rc = tg__host_live_rest(hr, ht);
    } else if (hr->r->oa.stream) {
        rc = tg__host_chunk(hr, 0, ht, tg_buf_ptr(&ht->reasoning),
                            tg_buf_size(&ht->reasoning), "", 0, NULL, NULL);
        if (rc == 0 && tg_buf_size(&ht->content) > 0) {
            rc = tg__host_chunk(hr, 0, ht, "", 0, tg_buf_ptr(&ht->content),
                                tg_buf_size(&ht->content), NULL, NULL);
        }
    } else {
        hr->choices[0].reasoning.len = hr->choices[0].reasoning.start;
        hr->choices[0].content.len = hr->choices[0].content.start;
        rc = tg__host_out(hr, 0, ht, tg_buf_ptr(&ht->reasoning),
                          tg_buf_size(&ht->reasoning),
                          tg_buf_ptr(&ht->content),
                          tg_buf_size(&ht->content), NULL);
    }
    if (rc != 0 && rc != -EPIPE) {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg__host_error(hr, &err);
        return 0;
    }

    if (json_object_get(hr->summary, "winner") == NULL) {
        if (hr->summary == NULL) {
            hr->summary = json_object();
        }
        if (hr->summary != NULL) {
            json_object_set_new(hr->summary, "winner",
                                json_integer(ht->index));
        }
    }
    return tg__host_end(hr, ht, ht->finish_reason[0] ? ht->finish_reason
                                                     : "stop");
}


/* A failed trace whose error the plugin relays keeps its own status
 * (504 for a silent backend, the backend's 400 with its param, 429 for a
 * full pool); anything else is the plugin's status and message. */
int
tg__host_fail(tg_req_t *req, int http_status, const char *type,
    const char *message)
{
    tg_host_req_t  *hr = tg__host_of(req);
    tg_oa_error_t   err;
    size_t          i;
    int             rc;

    rc = tg__host_may_end(hr);
    if (rc != 0) {
        return rc == -ECANCELED ? 0 : rc;
    }
    if (http_status < 400 || http_status > 599) {
        http_status = 500;
    }
    if (message == NULL || message[0] == '\0') {
        message = "the strategy failed";
    }
    tg_oa_error_set(&err, http_status, type, NULL, NULL, "%s", message);

    if (http_status == 502) {
        for (i = 0; i < hr->ntraces; i++) {
            tg_host_trace_t  *ht = hr->traces[i];

            if (ht->state == TG_TRACE_FAILED
                && strcmp(ht->err.message, message) == 0)
            {
                err = ht->err;
                break;
            }
        }
        if (i == hr->ntraces && strcmp(hr->error, message) == 0
            && hr->start_err.status != 0)
        {
            err = hr->start_err;
        }
    }

    hr->answered = 1;
    tg__host_cancel_all(hr);
    tg__host_error(hr, &err);
    return 0;
}


void
tg__host_error(tg_host_req_t *hr, const tg_oa_error_t *err)
{
    tg_log_debug("request %llu: strategy %s failed: %d %s",
                 (unsigned long long) hr->r->id, hr->strategy ?: "?",
                 err->status, err->message);
    (void) tg_request_error(hr->r, err);
}


/* The usage reported: the trace's last usage object, or its count; for
 * no trace, the live traces' completion tokens summed and the first
 * one's prompt (the prompt is read once for n choices). */
static json_t *
tg__host_usage(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    uint64_t    n = 0;
    json_int_t  pt = -1;
    size_t      i;

    if (ht != NULL && ht->usage != NULL) {
        json_t  *u = json_deep_copy(ht->usage);

        /* Continuous usage counts the tag-only steps too; the final
         * count is the trace's. */
        if (u != NULL && ht->tokens > 0) {
            json_int_t  pt = json_integer_value(json_object_get(u,
                                                    "prompt_tokens"));

            json_object_set_new(u, "completion_tokens",
                                json_integer(ht->tokens));
            json_object_set_new(u, "total_tokens",
                                json_integer(pt + ht->tokens));
        }
        return u;
    }
    if (ht != NULL) {
        n = ht->tokens;
    } else {
        for (i = 0; i < hr->ntraces; i++) {
            tg_host_trace_t  *t = hr->traces[i];

            if (!t->live) {
                continue;
            }
            n += t->tokens;
            if (pt < 0 && t->usage != NULL) {
                pt = json_integer_value(json_object_get(t->usage,
                                                        "prompt_tokens"));
            }
        }
    }
    pt = pt < 0 ? 0 : pt;
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", pt,
                     "completion_tokens", (json_int_t) n,
                     "total_tokens", pt + (json_int_t) n);
}


/* The "thinkgate" object: the host's figures, the plugin's keys, then
 * what the state steps did (session, prefix routing: core/prep.h). */
static json_t *
tg__host_summary(tg_host_req_t *hr, tg_host_trace_t *winner)
{
    json_t    *o;
    uint64_t   tokens = 0;
    size_t     i;

    for (i = 0; i < hr->ntraces; i++) {
        tokens += hr->traces[i]->tokens;
    }
    o = json_pack("{s:s, s:I, s:I, s:I, s:o}",
                  "strategy", hr->strategy,
                  "traces_started", (json_int_t) hr->ntraces,
                  "traces_cancelled", (json_int_t) hr->cancelled,
                  "tokens", (json_int_t) tokens,
                  "winner", winner ? json_integer(winner->index)
                                   : json_null());
    if (o != NULL && hr->summary != NULL) {
        (void) json_object_update(o, hr->summary);
    }
    if (o != NULL && tg_prep_summary(hr->r, o) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}


/* The trace whose model choice k names: the reported one, else (several
 * choices) the choice's own live trace, else none (the client's). */
static tg_host_trace_t *
tg__host_model_of(tg_host_req_t *hr, tg_host_trace_t *usage_of, uint32_t k)
{
    if (usage_of != NULL || hr->nchoices < 2) {
        return usage_of;
    }
    return hr->choices[k].live;
}


/* Choice k of a non-streamed answer. */
static json_t *
tg__host_choice_json(tg_host_req_t *hr, uint32_t k, const char *finish)
{
    tg_host_choice_t  *c = &hr->choices[k];
    json_t            *msg;

    if (c->closed) {
        finish = c->finish_reason;
    }
    if (hr->r->oa.endpoint == TG_OA_CHAT) {
        msg = json_pack("{s:s, s:o, s:o}", "role", "assistant",
                        "content", tg_buf_size(&c->content)
                            ? tg__host_str(tg_buf_ptr(&c->content),
                                           tg_buf_size(&c->content))
                            : json_null(),
                        "reasoning_content", tg_buf_size(&c->reasoning)
                            ? tg__host_str(tg_buf_ptr(&c->reasoning),
                                           tg_buf_size(&c->reasoning))
                            : json_null());
        return json_pack("{s:i, s:o, s:n, s:s}", "index", (int) k,
                         "message", msg, "logprobs", "finish_reason",
                         finish);
    }
    /* A completion's text is the raw output, thinking included. */
    (void) tg_buf_append(&c->reasoning, tg_buf_size(&c->content)
                                        ? tg_buf_ptr(&c->content) : "",
                         tg_buf_size(&c->content));
    return json_pack("{s:i, s:o, s:n, s:s}", "index", (int) k,
                     "text", tg__host_str(tg_buf_size(&c->reasoning)
                                          ? tg_buf_ptr(&c->reasoning) : "",
                                          tg_buf_size(&c->reasoning)),
                     "logprobs", "finish_reason", finish);
}


static int
tg__host_end(tg_host_req_t *hr, tg_host_trace_t *usage_of, const char *finish)
{
    tg_request_t  *r = hr->r;
    json_t        *summary, *usage, *doc, *choices = NULL;
    char          *s;
    uint32_t       k, n = hr->nopen > 1 ? hr->nopen : 1;
    int            rc = 0, chat = r->oa.endpoint == TG_OA_CHAT;
    tg_oa_error_t  err;

    summary = tg__host_summary(hr, usage_of);
    usage = tg__host_usage(hr, usage_of);
    if (summary == NULL || usage == NULL) {
        goto nomem;
    }

    if (r->oa.stream) {
        for (k = 0; k < n && rc == 0; k++) {
            if (!hr->choices[k].closed) {
                rc = tg__host_choice_close(hr, k,
                                           tg__host_model_of(hr, usage_of,
                                                             k),
                                           finish);
            }
        }
        if (rc == 0) {
            rc = tg__host_send_json(hr, json_pack("{s:s, s:s, s:I, s:s, "
                "s:[], s:O, s:O}", "id", hr->id,
                "object", chat ? "chat.completion.chunk" : "text_completion",
                "created", (json_int_t) hr->created,
                "model", tg__host_model(hr, tg__host_model_of(hr, usage_of,
                                                              0)),
                "choices", "usage", usage, "thinkgate", summary));
        }
        if (rc == 0) {
            rc = tg_request_data(r, "data: [DONE]\n\n", 14);
        }
        json_decref(usage);
        if (rc != 0) {
            json_decref(summary);
            return rc == -EPIPE ? 0 : rc;
        }
        return tg_request_end(r, summary);
    }

    choices = json_array();
    for (k = 0; k < n && choices != NULL; k++) {
        if (json_array_append_new(choices,
                                  tg__host_choice_json(hr, k, finish)) != 0)
        {
            json_decref(choices);
            choices = NULL;
        }
    }
    if (choices == NULL) {
        goto nomem;
    }
    doc = json_pack("{s:s, s:s, s:I, s:s, s:o, s:o, s:O}", "id", hr->id,
                    "object", chat ? "chat.completion" : "text_completion",
                    "created", (json_int_t) hr->created,
                    "model", tg__host_model(hr, tg__host_model_of(hr,
                                                                  usage_of,
                                                                  0)),
                    "choices", choices, "usage", usage,
                    "thinkgate", summary);
    usage = NULL;
    if (doc == NULL) {
        goto nomem;
    }
    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    if (s == NULL) {
        goto nomem;
    }
    rc = tg_request_head(r, 200, 0, "Content-Type: application/json\r\n");
    if (rc == 0) {
        rc = tg_request_data(r, s, strlen(s));
    }
    free(s);
    if (rc != 0) {
        json_decref(summary);
        return rc == -EPIPE ? 0 : rc;
    }
    return tg_request_end(r, summary);

nomem:
    json_decref(summary);
    json_decref(usage);
    tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
    tg__host_error(hr, &err);
    return -ENOMEM;
}


static void
tg__host_keepalive_cb(uv_timer_t *tm)
{
    tg_host_req_t  *hr = tm->data;
    tg_request_t   *r;

    if (hr == NULL || !tg__host_usable(hr)) {
        uv_timer_stop(tm);
        return;
    }
    r = hr->r;
    if (tg__host_now() - hr->last_out_ms + 50 < TG_KEEPALIVE_MS) {
        return;
    }
    /* A comment line: SSE clients skip it. */
    if (tg__host_sse_head(hr) == 0) {
        (void) tg_request_data(r, ": keep-alive\n\n", 14);
    }
}


int
tg__host_keepalive_start(tg_host_req_t *hr)
{
    uv_timer_t  *tm;

    tm = calloc(1, sizeof(*tm));
    if (tm == NULL) {
        return -ENOMEM;
    }
    if (uv_timer_init(hr->r->engine->loop, tm) != 0) {
        free(tm);
        return -ENOMEM;
    }
    tm->data = hr;
    hr->keepalive = tm;
    /* The first one only after a whole second of silence. */
    hr->last_out_ms = tg__host_now();
    return uv_timer_start(tm, tg__host_keepalive_cb, TG_KEEPALIVE_MS / 2,
                          TG_KEEPALIVE_MS / 2) == 0 ? 0 : -EINVAL;
}
