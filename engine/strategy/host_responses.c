/*
 * The plugin host's output for a /responses request (openai/responses.h).
 *
 * The strategy runs as for chat completions; only what the client reads
 * differs.  Streamed: response.created and response.in_progress before
 * the first text, then the reasoning item and the message as their text
 * arrives (host_output.c hands every chunk's text here), and at the end
 * every part and item done and response.completed (or
 * response.incomplete) with the whole object.  Not streamed: the
 * response object.  Either way the object carries the "thinkgate"
 * object, and a response that asked to be stored is stored (serve/prep.h)
 * before it goes out, so that a chained turn through any gateway finds
 * it as soon as the client has it.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strategy/host.h"
#include "util/jdump.h"

static const char *tg__host_resp_model(tg_host_req_t *hr);
static void tg__host_resp_stored(tg_request_t *r, void *data);
static int tg__host_resp_send(tg_host_req_t *hr);


static const char *
tg__host_resp_model(tg_host_req_t *hr)
{
    tg_host_trace_t  *ht = hr->end_usage_of;

    if (ht == NULL && hr->choices != NULL) {
        ht = hr->choices[0].live;
    }
    return tg__host_model(hr, ht);
}


int
tg__host_resp_chunk(tg_host_req_t *hr, const char *rs, size_t rl,
    const char *cs, size_t cl)
{
    tg_request_t       *r = hr->r;
    tg_oa_responses_t  *q = r->oa.responses;
    tg_buf_t           *b = &hr->out;
    int                 rc = 0;

    if (rl == 0 && cl == 0) {
        return 0;
    }
    b->start = b->len = 0;
    if (!hr->resp.begun) {
        rc = tg_oa_resp_stream_begin(&hr->resp, b,
                 tg_oa_response_object(q, hr->id, hr->created,
                                       tg__host_resp_model(hr), 0, NULL, 0,
                                       NULL, 0, NULL, NULL));
    }
    if (rc == 0) {
        rc = tg_oa_resp_stream_delta(&hr->resp, b, q, hr->id, rs, rl, cs,
                                     cl);
    }
    if (rc != 0) {
        return -ENOMEM;
    }
    rc = tg__host_sse_head(hr);
    if (rc == 0) {
        rc = tg_request_data(r, tg_buf_ptr(b), tg_buf_size(b));
    }
    return rc;
}


int
tg__host_resp_end(tg_host_req_t *hr, json_t *summary, json_t *usage)
{
    tg_request_t       *r = hr->r;
    tg_oa_responses_t  *q = r->oa.responses;
    tg_buf_t           *rb, *cb;
    json_t             *obj;
    tg_oa_error_t       err;

    if (r->oa.stream) {
        rb = &hr->resp.reasoning;
        cb = &hr->resp.content;
    } else {
        rb = &hr->choices[0].reasoning;
        cb = &hr->choices[0].content;
    }
    obj = tg_oa_response_object(q, hr->id, hr->created,
                                tg__host_resp_model(hr), 1,
                                rb->data ? tg_buf_ptr(rb) : "",
                                tg_buf_size(rb),
                                cb->data ? tg_buf_ptr(cb) : "",
                                tg_buf_size(cb), hr->end_finish, usage);
    json_decref(usage);
    if (obj == NULL || json_object_set(obj, "thinkgate", summary) != 0) {
        json_decref(obj);
        json_decref(summary);
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg__host_error(hr, &err);
        return -ENOMEM;
    }
    json_decref(hr->end_doc);
    hr->end_doc = obj;
    hr->end_summary = summary;

    if (tg__host_up_response_store(r, obj, cb->data ? tg_buf_ptr(cb) : "",
                                   tg_buf_size(cb), tg__host_resp_stored, hr)
        == 0)
    {
        return 0;               /* the rest when Redis has answered */
    }
    return tg__host_resp_send(hr);
}


static void
tg__host_resp_stored(tg_request_t *r, void *data)
{
    tg_host_req_t  *hr = data;

    if (r->closed || hr->closing) {
        return;
    }
    tg__host_enter(hr);
    (void) tg__host_resp_send(hr);
    tg__host_leave(hr);
}


/* The object (now saying whether it was stored) and END. */
static int
tg__host_resp_send(tg_host_req_t *hr)
{
    tg_request_t  *r = hr->r;
    json_t        *obj = hr->end_doc, *summary = hr->end_summary;
    tg_buf_t      *b = &hr->out;
    int            rc = 0;
    tg_oa_error_t  err;

    hr->end_doc = NULL;
    hr->end_summary = NULL;
    if (tg__host_up_response_summary(r, summary) != 0) {
        goto nomem;
    }

    if (!r->oa.stream) {
        return tg__host_reply_json(hr, obj, summary);
    }
    b->start = b->len = 0;
    if (!hr->resp.begun) {
        rc = tg_oa_resp_stream_begin(&hr->resp, b,
                 tg_oa_response_object(r->oa.responses, hr->id,
                                       hr->created,
                                       tg__host_resp_model(hr), 0, NULL,
                                       0, NULL, 0, NULL, NULL));
    }
    if (rc == 0) {
        rc = tg_oa_resp_stream_end(&hr->resp, b, r->oa.responses,
                                   hr->id, obj);
        obj = NULL;
    }
    if (rc != 0) {
        goto nomem;
    }
    rc = tg__host_sse_head(hr);
    if (rc == 0) {
        rc = tg_request_data(r, tg_buf_ptr(b), tg_buf_size(b));
    }
    if (rc != 0) {
        json_decref(summary);
        return rc == -EPIPE ? 0 : rc;
    }
    return tg_request_end(r, summary);

nomem:
    json_decref(obj);
    json_decref(summary);
    tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
    tg__host_error(hr, &err);
    return -ENOMEM;
}
