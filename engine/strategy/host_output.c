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
 * The end, and the choices of a client's n: host_choice.c.
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
#include "strategy/host.h"
#include "util/jstr.h"
#include "util/jdump.h"

#define TG_KEEPALIVE_MS  1000

static void tg__host_fail_cause(tg_host_req_t *hr, tg_oa_error_t *err);


/* A JSON string of n bytes; backends' text is UTF-8, but a plugin's
 * emit() might not be: it is sent as it is rather than dropped. */
json_t *
tg__host_str(const char *s, size_t n)
{
    json_t  *v = json_stringn(s, n);

    return v != NULL ? v : json_stringn_nocheck(s, n);
}


const char *
tg__host_model(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    if (ht != NULL && ht->model != NULL) {
        return ht->model;
    }
    return hr->r->oa.model ? hr->r->oa.model : "thinkgate";
}


int
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


int
tg__host_send_json(tg_host_req_t *hr, json_t *doc)
{
    char  *s;
    int    rc;

    if (doc == NULL) {
        return -ENOMEM;
    }
    s = tg_json_dumps(doc);
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


#define TG_LIT(b, lit)  tg_buf_append(b, lit, sizeof(lit) - 1)


/* One streamed chunk of a choice; finish non-NULL makes it the choice's
 * last one.  model_of: the trace whose model the chunk names (NULL: the
 * client's).
 *
 * Rendered from a fixed template into the request's reused buffer, byte
 * for byte what json_dumps(JSON_COMPACT) made of the json_pack'ed chunk
 * (tests/unit/test_jstr.c compares the two), and written as one DATA
 * frame.  logprobs is already compact JSON (host_sse.c dumps it). */
int
tg__host_chunk(tg_host_req_t *hr, uint32_t choice, tg_host_trace_t *model_of,
    const char *rs, size_t rl, const char *cs, size_t cl, const char *finish,
    const char *logprobs)
{
    tg_buf_t    *b = &hr->out;
    const char  *model = tg__host_model(hr, model_of);
    int          chat = hr->r->oa.endpoint == TG_OA_CHAT, rc = 0;

    if (hr->r->oa.responses != NULL) {
        /* One choice; its finish is the response's end. */
        return tg__host_resp_chunk(hr, rs, rl, cs, cl);
    }
    b->start = b->len = 0;
    rc |= TG_LIT(b, "data: {\"id\":\"");
    rc |= tg_jstr_escape(b, hr->id, strlen(hr->id));
    rc |= chat ? TG_LIT(b, "\",\"object\":\"chat.completion.chunk\","
                           "\"created\":")
               : TG_LIT(b, "\",\"object\":\"text_completion\",\"created\":");
    rc |= tg_jstr_int(b, hr->created);
    rc |= TG_LIT(b, ",\"model\":\"");
    rc |= tg_jstr_escape(b, model, strlen(model));
    rc |= TG_LIT(b, "\",\"choices\":[{\"index\":");
    rc |= tg_jstr_int(b, (int) choice);
    rc |= TG_LIT(b, ",\"logprobs\":");
    if (logprobs != NULL && logprobs[0]) {
        rc |= tg_buf_append(b, logprobs, strlen(logprobs));
    } else {
        rc |= TG_LIT(b, "null");
    }
    rc |= TG_LIT(b, ",\"finish_reason\":");
    if (finish != NULL) {
        rc |= TG_LIT(b, "\"");
        rc |= tg_jstr_escape(b, finish, strlen(finish));
        rc |= TG_LIT(b, "\"");
    } else {
        rc |= TG_LIT(b, "null");
    }

    if (chat) {
        const char  *sep = "";

        rc |= TG_LIT(b, ",\"delta\":{");
        if (!hr->choices[choice].role_sent) {
            hr->choices[choice].role_sent = 1;
            rc |= TG_LIT(b, "\"role\":\"assistant\"");
            sep = ",";
        }
        if (rl > 0) {
            rc |= tg_buf_append(b, sep, strlen(sep));
            rc |= TG_LIT(b, "\"reasoning_content\":\"");
            rc |= tg_jstr_escape(b, rs, rl);
            rc |= TG_LIT(b, "\"");
            sep = ",";
        }
        if (cl > 0) {
            rc |= tg_buf_append(b, sep, strlen(sep));
            rc |= TG_LIT(b, "\"content\":\"");
            rc |= tg_jstr_escape(b, cs, cl);
            rc |= TG_LIT(b, "\"");
        }
        rc |= TG_LIT(b, "}");
    } else {
        rc |= TG_LIT(b, ",\"text\":\"");
        rc |= tg_jstr_escape(b, rs, rl);
        rc |= tg_jstr_escape(b, cs, cl);
        rc |= TG_LIT(b, "\"");
    }
    rc |= TG_LIT(b, "}]}\n\n");
    if (rc != 0) {
        return -ENOMEM;
    }

    rc = tg__host_sse_head(hr);
    if (rc == 0) {
        rc = tg_request_data(hr->r, tg_buf_ptr(b), tg_buf_size(b));
    }
    return rc;
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
int
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


/* The running live trace of choice 0, whose model emit()'s chunks name. */
static tg_host_trace_t *
tg__host_live0(tg_host_req_t *hr)
{
    tg_host_trace_t  *ht = hr->choices[0].live;

    return ht != NULL && !ht->ended ? ht : NULL;
}


int
tg__host_emit(tg_plugin_req_t *req, const char *reasoning, size_t rlen,
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
tg__host_finish(tg_plugin_req_t *req, const tg_finish_t *fin)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_trace_t  *usage_of = NULL;
    tg_trace_t       *t;
    uint32_t          k;
    int               rc;

    rc = tg__host_may_end(hr);
    if (rc != 0) {
        return rc == -ECANCELED ? 0 : rc;
    }
    if (fin != NULL && fin->usage_of != NULL) {
        t = tg__host_trace(fin->usage_of);
        if (t->req != tg__host_req(req) || t->data == NULL || t->aux) {
            tg__host_set_error(hr, "usage_of is not a trace of this "
                               "request");
            return -EINVAL;
        }
        usage_of = t->data;
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
tg__host_finish_trace(tg_plugin_req_t *req, tg_plugin_trace_t *pwinner)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_trace_t       *winner = tg__host_trace(pwinner);
    tg_host_trace_t  *ht;
    int               rc;

    rc = tg__host_may_end(hr);
    if (rc != 0) {
        return rc == -ECANCELED ? 0 : rc;
    }
    if (winner == NULL || winner->req != tg__host_req(req)
        || winner->data == NULL || winner->aux)
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
/* A strategy's own 502 ("all traces failed") names no backend: the
 * last failed trace's message says which one and why. */
static void
tg__host_fail_cause(tg_host_req_t *hr, tg_oa_error_t *err)
{
    tg_host_trace_t  *ht;
    size_t            i, n;

    for (i = hr->ntraces; i > 0; i--) {
        ht = hr->traces[i - 1];
        if (ht->state == TG_TRACE_FAILED && ht->err.message[0] != '\0') {
            /* The client hears what the backend did, as passthrough
             * says it: 504 backend_timeout for a silent one, the
             * backend's own 400, 502 bad_backend_response, ... */
            if (ht->err.status >= 400 && ht->err.status <= 599) {
                err->status = ht->err.status;
                err->type = ht->err.type;
                memcpy(err->code, ht->err.code, sizeof(err->code));
                memcpy(err->param, ht->err.param, sizeof(err->param));
            }
            /* Cut to fit: the cause's own words come first. */
            n = strlen(err->message);
            snprintf(err->message + n, sizeof(err->message) - n,
                     " (last: %.*s)",
                     (int) (sizeof(err->message) - n > 10
                            ? sizeof(err->message) - n - 10 : 0),
                     ht->err.message);
            return;
        }
    }
}


static int
tg__host_openai_type(const char *type)
{
    static const char  *types[] = {
        "invalid_request_error", "authentication_error", "permission_error",
        "not_found_error", "rate_limit_error", "server_error",
        "timeout_error", "api_error", NULL
    };
    size_t  i;

    for (i = 0; types[i] != NULL; i++) {
        if (strcmp(type, types[i]) == 0) {
            return 1;
        }
    }
    return 0;
}


int
tg__host_fail(tg_plugin_req_t *req, int http_status, const char *type,
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
    /* Plugins name "backend_error" and the like as a type: OpenAI's
     * types are few, and SDKs read them; anything else becomes the code,
     * under the status's own type. */
    if (type != NULL && !tg__host_openai_type(type)) {
        tg_oa_error_set(&err, http_status, NULL,
                        strspn(type, "abcdefghijklmnopqrstuvwxyz_")
                        == strlen(type) ? type : NULL, NULL, "%s", message);
    } else {
        tg_oa_error_set(&err, http_status, type, NULL, NULL, "%s", message);
    }

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
        } else if (i == hr->ntraces) {
            tg__host_fail_cause(hr, &err);
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
