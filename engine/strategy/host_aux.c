/*
 * The plugin host's aux requests: the non-streamed backend request each
 * one sends (chat, completions or embeddings) and its reply read into
 * the tg_aux_result_t the plugin gets: text (host_sse.c reads it, as for
 * a trace), the first token's top logprobs and embedding vectors.
 *
 * A reply is checked before the plugin sees it: a completion without
 * choices[0], logprobs of the wrong shape or embeddings that do not map
 * one row to each input are an error result (-EPROTO, a 502 message
 * naming the backend), never an empty success.
 */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy/host.h"
#include "util/jload.h"

/* Rows longer than this are not an embedding any server sends. */
#define TG_AUX_MAX_DIM  65536

static json_t *tg__host_aux_body(tg_host_req_t *hr, const tg_aux_spec_t *spec);
static int tg__host_aux_inputs(tg_host_req_t *hr, const tg_aux_spec_t *spec,
    json_t *body, int *rc);
static int tg__host_aux_stop_ok(tg_host_req_t *hr, const tg_aux_spec_t *spec,
    const char *const *stop, size_t nstop);
static int tg__host_aux_sampling(const tg_aux_spec_t *spec, json_t *body);
static int tg__host_aux_top(tg_host_aux_t *a, json_t *choice);
static int tg__host_aux_vectors(tg_host_aux_t *a, json_t *doc);


/* The request body; NULL with last_error set. */
static json_t *
tg__host_aux_body(tg_host_req_t *hr, const tg_aux_spec_t *spec)
{
    json_t        *body, *v;
    json_error_t   jerr;
    int            rc = 0;

    body = json_object();
    if (body == NULL) {
        goto nomem;
    }
    if (hr->r->oa.model != NULL) {
        rc |= json_object_set_new(body, "model",
                                  json_string(hr->r->oa.model));
    }

    switch (spec->endpoint) {
    case TG_ENDPOINT_CHAT:
        v = spec->messages_json
            ? tg_json_loadb(spec->messages_json,
                            strlen(spec->messages_json), &jerr)
            : NULL;
        if (!json_is_array(v)) {
            json_decref(v);
            tg__host_set_error(hr, "aux: messages_json must be a JSON "
                               "array of messages");
            goto failed;
        }
        rc |= json_object_set_new(body, "messages", v);
        break;

    case TG_ENDPOINT_COMPLETIONS:
        if (spec->prompt == NULL) {
            tg__host_set_error(hr, "aux: a completions request needs a "
                               "prompt");
            goto failed;
        }
        rc |= json_object_set_new(body, "prompt", json_string(spec->prompt));
        break;

    case TG_ENDPOINT_EMBEDDINGS:
        if (tg__host_aux_inputs(hr, spec, body, &rc) != 0) {
            goto failed;
        }
        if (rc != 0) {
            goto nomem;
        }
        return body;

    default:
        tg__host_set_error(hr, "aux: unknown endpoint %d",
                           (int) spec->endpoint);
        goto failed;
    }

    rc |= tg__host_aux_sampling(spec, body);
    if (rc != 0) {
        goto nomem;
    }
    return body;

nomem:
    tg__host_set_error(hr, "out of memory");
failed:
    json_decref(body);
    return NULL;
}


/* An embeddings request's "input" (and "dimensions"): 0, or -EINVAL
 * with last_error set.  A failed insertion is or-ed into *rc, which the
 * caller reports as memory running out. */
static int
tg__host_aux_inputs(tg_host_req_t *hr, const tg_aux_spec_t *spec,
    json_t *body, int *rc)
{
    json_t  *v;
    size_t   i, len;

    if (spec->ninputs == 0 || spec->ninputs > TG_AUX_MAX_INPUTS
        || spec->inputs == NULL)
    {
        tg__host_set_error(hr, "aux: an embeddings request needs 1 to "
                           "%d inputs, not %zu", TG_AUX_MAX_INPUTS,
                           spec->inputs ? spec->ninputs : 0);
        return -EINVAL;
    }
    v = json_array();
    *rc |= json_object_set_new(body, "input", v);
    for (i = 0; v != NULL && i < spec->ninputs; i++) {
        if (spec->inputs[i] == NULL) {
            tg__host_set_error(hr, "aux: embeddings input %zu is NULL",
                               i);
            return -EINVAL;
        }
        len = spec->input_lens ? spec->input_lens[i]
                               : strlen(spec->inputs[i]);
        /* A string that is not UTF-8 is refused here, not by the
         * backend. */
        if (json_array_append_new(v, json_stringn(spec->inputs[i], len))
            != 0)
        {
            tg__host_set_error(hr, "aux: embeddings input %zu is not "
                               "UTF-8 (or memory ran out)", i);
            return -EINVAL;
        }
    }
    if (spec->dimensions > 0) {
        *rc |= json_object_set_new(body, "dimensions",
                                   json_integer(spec->dimensions));
    }
    return 0;
}


/* A chat or completions request's sampling fields: 0 or -1 when memory
 * ran out. */
static int
tg__host_aux_sampling(const tg_aux_spec_t *spec, json_t *body)
{
    int  rc = 0;

    if (spec->max_tokens > 0) {
        rc |= json_object_set_new(body, "max_tokens",
                                  json_integer(spec->max_tokens));
    }
    if (spec->temperature >= 0) {
        rc |= json_object_set_new(body, "temperature",
                                  json_real(spec->temperature));
    }
    if (spec->top_logprobs > 0) {
        if (spec->endpoint == TG_ENDPOINT_CHAT) {
            rc |= json_object_set_new(body, "logprobs", json_true());
            rc |= json_object_set_new(body, "top_logprobs",
                                      json_integer(spec->top_logprobs));
        } else {
            rc |= json_object_set_new(body, "logprobs",
                                      json_integer(spec->top_logprobs));
        }
    }
    return rc;
}


tg_plugin_aux_t *
tg__host_aux_start(tg_plugin_req_t *req, const tg_aux_spec_t *spec)
{
    return tg__host_aux_start_stop(req, spec, NULL, 0);
}


/* The stop sequences' checks: 0, or -EINVAL with last_error set. */
static int
tg__host_aux_stop_ok(tg_host_req_t *hr, const tg_aux_spec_t *spec,
    const char *const *stop, size_t nstop)
{
    size_t  i, len;

    if (nstop == 0 && stop == NULL) {
        return 0;
    }
    if (stop == NULL || nstop == 0 || nstop > TG_AUX_MAX_STOP
        || spec->endpoint == TG_ENDPOINT_EMBEDDINGS)
    {
        tg__host_set_error(hr, "aux: stop takes 1 to %d sequences, "
                           "for chat or completions", TG_AUX_MAX_STOP);
        return -EINVAL;
    }
    for (i = 0; i < nstop; i++) {
        len = stop[i] != NULL ? strlen(stop[i]) : 0;
        if (len == 0 || len > TG_AUX_MAX_STOP_LEN) {
            tg__host_set_error(hr, "aux: stop sequence %zu is empty or "
                               "longer than %d bytes", i,
                               TG_AUX_MAX_STOP_LEN);
            return -EINVAL;
        }
    }
    return 0;
}


/* aux_start() with stop sequences (nstop 0: none, aux_start() itself). */
tg_plugin_aux_t *
tg__host_aux_start_stop(tg_plugin_req_t *req, const tg_aux_spec_t *spec,
    const char *const *stop, size_t nstop)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_trace_t  *ht;
    tg_host_aux_t    *a;
    json_t           *body, *v;
    size_t            i;
    int               rc;

    if (hr == NULL || spec == NULL) {
        return NULL;
    }
    if (!tg__host_usable(hr)) {
        tg__host_set_error(hr, "the request is over");
        return NULL;
    }
    if (spec->pool == NULL) {
        tg__host_set_error(hr, "an aux request needs a pool");
        return NULL;
    }
    if (tg__host_aux_stop_ok(hr, spec, stop, nstop) != 0) {
        return NULL;
    }
    body = tg__host_aux_body(hr, spec);
    if (body == NULL) {
        return NULL;
    }
    if (nstop > 0) {
        v = json_array();
        rc = json_object_set_new(body, "stop", v);
        for (i = 0; rc == 0 && v != NULL && i < nstop; i++) {
            if (json_array_append_new(v, json_string(stop[i])) != 0) {
                rc = -1;
            }
        }
        if (rc != 0 || v == NULL) {
            tg__host_set_error(hr, "aux: a stop sequence is not UTF-8 (or "
                               "memory ran out)");
            json_decref(body);
            return NULL;
        }
    }

    ht = tg__host_trace_new(hr, 1);
    if (ht == NULL) {
        json_decref(body);
        return NULL;
    }
    a = (tg_host_aux_t *) ht;
    a->endpoint = spec->endpoint;
    a->ninputs = spec->endpoint == TG_ENDPOINT_EMBEDDINGS ? spec->ninputs : 0;
    ht->spec.data = spec->data;

    /* The endpoint is the aux spec's, not the client's. */
    rc = tg__host_launch(hr, ht, spec->pool, spec->backend,
                         spec->endpoint == TG_ENDPOINT_CHAT ? TG_OA_CHAT
                         : spec->endpoint == TG_ENDPOINT_COMPLETIONS
                         ? TG_OA_COMPLETIONS : TG_OA_EMBEDDINGS, body, NULL,
                         0);
    json_decref(body);
    if (rc != 0) {
        tg__host_trace_free(ht);
        return NULL;
    }
    ht->next_aux = hr->auxs;
    hr->auxs = ht;
    return tg__host_paux(a);
}


int
tg__host_aux_cancel(tg_plugin_req_t *req, tg_plugin_aux_t *pa)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_trace_t  *ht = (tg_host_trace_t *) tg__host_aux(pa);

    if (hr == NULL || ht == NULL || ht->hr != hr || !ht->aux) {
        return -EINVAL;
    }
    if (ht->ended) {
        tg__host_set_error(hr, "the aux request already ended");
        return -EALREADY;
    }
    tg_trace_cancel(ht->t);
    ht->ended = 1;
    ht->by_plugin = 1;
    ht->state = TG_TRACE_CANCELLED;
    return 0;
}


int
tg__host_aux_is_embed(const tg_host_trace_t *ht)
{
    return ht->aux && ((const tg_host_aux_t *) ht)->endpoint
                      == TG_ENDPOINT_EMBEDDINGS;
}


/* Fails a with a 502 naming the backend and what was wrong: -EPROTO. */
static int
tg__host_aux_bad(tg_host_aux_t *a, const char *what)
{
    tg_trace_t  *t = a->ht.t;

    tg_oa_error_set(&a->ht.err, 502, "server_error", "backend_error", NULL,
                    "Backend \"%s\" sent a malformed %s reply: %s.",
                    t && t->backend ? t->backend->name : "?",
                    a->endpoint == TG_ENDPOINT_EMBEDDINGS ? "embeddings"
                                                          : "completion",
                    what);
    a->status = -EPROTO;
    return -EPROTO;
}


/* One alternative: {"token": s, "logprob": x} (OpenAI), or a member
 * "s": x of a legacy completions object. */
static int
tg__host_aux_top_add(tg_host_aux_t *a, const char *tok, size_t len,
    json_t *lp)
{
    tg_logprob_t  *o;

    if (tok == NULL || !json_is_number(lp)) {
        return tg__host_aux_bad(a, "a top_logprobs entry is not a token "
                                   "and a number");
    }
    o = &a->top[a->ntop++];
    o->token = tok;
    o->token_len = len;
    o->logprob = json_number_value(lp);
    return 0;
}


/* The first token's alternatives of choice: chat (logprobs.content[0].
 * top_logprobs, an array of objects) or completions (logprobs.
 * top_logprobs[0], an object token -> logprob, or an array of objects
 * as some servers send).  No logprobs at all is not an error. */
static int
tg__host_aux_top(tg_host_aux_t *a, json_t *choice)
{
    json_t      *lp, *list, *e, *v;
    const char  *key;
    size_t       i, n;

    lp = json_object_get(choice, "logprobs");
    if (lp == NULL || json_is_null(lp)) {
        return 0;
    }
    if (!json_is_object(lp)) {
        return tg__host_aux_bad(a, "choices[0].logprobs is not an object");
    }
    if (a->endpoint == TG_ENDPOINT_CHAT) {
        list = json_object_get(json_array_get(json_object_get(lp, "content"),
                                              0), "top_logprobs");
    } else {
        list = json_array_get(json_object_get(lp, "top_logprobs"), 0);
    }
    if (list == NULL || json_is_null(list)) {
        return 0;       /* an answer without tokens has none */
    }
    n = json_is_array(list) ? json_array_size(list)
        : json_is_object(list) ? json_object_size(list) : 0;
    if (n == 0) {
        return json_is_array(list) || json_is_object(list)
               ? 0 : tg__host_aux_bad(a, "top_logprobs is not a list");
    }
    a->top = calloc(n, sizeof(*a->top));
    if (a->top == NULL) {
        return tg__host_aux_bad(a, "out of memory reading top_logprobs");
    }
    if (json_is_object(list)) {
        json_object_foreach(list, key, v) {
            if (tg__host_aux_top_add(a, key, strlen(key), v) != 0) {
                return -EPROTO;
            }
        }
        return 0;
    }
    json_array_foreach(list, i, e) {
        v = json_object_get(e, "token");
        if (tg__host_aux_top_add(a, json_string_value(v),
                                 json_string_length(v),
                                 json_object_get(e, "logprob")) != 0)
        {
            return -EPROTO;
        }
    }
    return 0;
}


/* data[i].embedding into rows by data[i].index: exactly one row per
 * input, all of one length. */
static int
tg__host_aux_vectors(tg_host_aux_t *a, json_t *doc)
{
    json_t    *data, *e, *emb, *idx, *x;
    size_t     i, j, n, dim = 0, row;
    uint8_t   *seen;
    int        rc;

    data = json_object_get(doc, "data");
    if (!json_is_array(data)) {
        return tg__host_aux_bad(a, "no \"data\" array");
    }
    n = json_array_size(data);
    if (n != a->ninputs) {
        char  msg[96];

        snprintf(msg, sizeof(msg), "%zu embeddings for %zu inputs", n,
                 a->ninputs);
        return tg__host_aux_bad(a, msg);
    }
    emb = json_object_get(json_array_get(data, 0), "embedding");
    dim = json_array_size(emb);
    if (dim == 0 || dim > TG_AUX_MAX_DIM) {
        return tg__host_aux_bad(a, "data[0].embedding is not an array of "
                                   "1 to 65536 numbers");
    }
    seen = calloc(n, 1);
    a->vectors = malloc(n * dim * sizeof(float));
    if (seen == NULL || a->vectors == NULL) {
        free(seen);
        return tg__host_aux_bad(a, "out of memory reading embeddings");
    }

    rc = 0;
    json_array_foreach(data, i, e) {
        emb = json_object_get(e, "embedding");
        idx = json_object_get(e, "index");
        /* No index: the reply's order, as a server without one means. */
        row = SIZE_MAX;
        if (idx == NULL) {
            row = i;
        } else if (json_is_integer(idx) && json_integer_value(idx) >= 0) {
            row = (size_t) json_integer_value(idx);
        }
        if (row >= n || seen[row]) {
            rc = tg__host_aux_bad(a, "data[].index is missing a row or "
                                     "repeats one");
            break;
        }
        seen[row] = 1;
        if (!json_is_array(emb) || json_array_size(emb) != dim) {
            rc = tg__host_aux_bad(a, "embeddings differ in length");
            break;
        }
        json_array_foreach(emb, j, x) {
            if (!json_is_number(x) || !isfinite(json_number_value(x))) {
                rc = tg__host_aux_bad(a, "an embedding holds a non-number");
                break;
            }
            a->vectors[row * dim + j] = (float) json_number_value(x);
        }
        if (rc != 0) {
            break;
        }
    }
    free(seen);
    if (rc != 0) {
        free(a->vectors);
        a->vectors = NULL;
        return rc;
    }
    a->nvectors = n;
    a->dim = dim;
    return 0;
}


/* A whole JSON reply of an aux request: checked, and its logprobs or
 * vectors kept for the result.  0, or -EPROTO with ht->err set. */
int
tg__host_aux_reply(tg_host_trace_t *ht, json_t *doc)
{
    tg_host_aux_t  *a = (tg_host_aux_t *) ht;
    json_t         *choice;

    if (a->endpoint == TG_ENDPOINT_EMBEDDINGS) {
        return tg__host_aux_vectors(a, doc);
    }
    choice = json_array_get(json_object_get(doc, "choices"), 0);
    if (!json_is_object(choice)) {
        return tg__host_aux_bad(a, "no choices[0] object");
    }
    if (tg__host_aux_top(a, choice) != 0) {
        return -EPROTO;
    }
    /* The tokens point into doc: kept until the result was handed over. */
    a->doc = json_incref(doc);
    return 0;
}


/* The result on_aux_result gets; e is the end host_sse.c read. */
void
tg__host_aux_result(tg_host_trace_t *ht, const tg_trace_end_t *e,
    tg_aux_result_t *ar)
{
    tg_host_aux_t  *a = (tg_host_aux_t *) ht;

    memset(ar, 0, sizeof(*ar));
    if (e->state == TG_TRACE_DONE && a->endpoint == TG_ENDPOINT_EMBEDDINGS
        && a->vectors == NULL)
    {
        /* Streamed (SSE) instead of one JSON document. */
        (void) tg__host_aux_bad(a, "not one JSON document");
        ht->state = TG_TRACE_FAILED;
    }
    if (ht->state == TG_TRACE_DONE) {
        ar->status = 0;
    } else if (a->status != 0) {
        ar->status = a->status;
    } else {
        ar->status = ht->err.status == 504 ? -ETIMEDOUT : -EIO;
    }
    ar->http_status = ht->http_status;
    ar->content = tg_buf_size(&ht->content) ? tg_buf_ptr(&ht->content) : "";
    ar->content_len = tg_buf_size(&ht->content);
    ar->reasoning = tg_buf_size(&ht->reasoning)
                    ? tg_buf_cstr(&ht->reasoning) : "";
    ar->reasoning_len = tg_buf_size(&ht->reasoning);
    ar->body = tg_buf_size(&ht->body) ? tg_buf_cstr(&ht->body) : "";
    ar->body_len = tg_buf_size(&ht->body);
    ar->error = ht->state == TG_TRACE_FAILED ? ht->err.message : e->error;
    ar->data = ht->spec.data;
    ar->finish_reason = ht->finish_reason[0] ? ht->finish_reason : NULL;
    if (ar->status == 0) {
        ar->top = a->ntop ? a->top : NULL;
        ar->ntop = a->ntop;
        ar->vectors = a->vectors;
        ar->nvectors = a->nvectors;
        ar->dim = a->dim;
    }
}


/* What the result lent: released once the plugin had it. */
void
tg__host_aux_release(tg_host_trace_t *ht)
{
    tg_host_aux_t  *a = (tg_host_aux_t *) ht;

    json_decref(a->doc);
    a->doc = NULL;
    free(a->top);
    a->top = NULL;
    a->ntop = 0;
    free(a->vectors);
    a->vectors = NULL;
    a->nvectors = a->dim = 0;
}
