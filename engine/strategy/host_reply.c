/*
 * A non-streamed answer as text: the completion object written straight
 * into hr->out (tg_jstr, tg_json_dump) rather than built as a jansson
 * tree and dumped, the same keys in the same order and the same bytes.
 * tg__host_reply_begin writes it up to its choices when the answer is
 * whole; tg__host_reply_rest adds the usage and the "thinkgate" object
 * once a session's turn is stored (host_choice.c) and sends it.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strategy/host.h"
#include "util/jdump.h"
#include "util/jstr.h"

static int tg__host_text_str(tg_buf_t *b, tg_buf_t *s, int empty_null);
static int tg__host_choice_text(tg_host_req_t *hr, tg_buf_t *b, uint32_t k,
    const char *finish);
static int tg__host_usage_text(tg_host_req_t *hr, tg_host_trace_t *ht,
    tg_buf_t *b);


#define TG_LIT(b, lit)  tg_buf_append(b, lit, sizeof(lit) - 1)


/* s as a quoted JSON string; empty as null where empty_null. */
static int
tg__host_text_str(tg_buf_t *b, tg_buf_t *s, int empty_null)
{
    int  rc = 0;

    if (tg_buf_size(s) == 0) {
        return empty_null ? TG_LIT(b, "null") : TG_LIT(b, "\"\"");
    }
    rc |= TG_LIT(b, "\"");
    rc |= tg_jstr_escape(b, tg_buf_ptr(s), tg_buf_size(s));
    rc |= TG_LIT(b, "\"");
    return rc;
}


/* Choice k of a non-streamed answer, appended to b: {"index": k,
 * "message": {"role", "content", "reasoning_content"} or "text",
 * "logprobs": null, "finish_reason"}, in the order and bytes that dumping
 * the object with tg_json_dump wrote. */
static int
tg__host_choice_text(tg_host_req_t *hr, tg_buf_t *b, uint32_t k,
    const char *finish)
{
    tg_host_choice_t  *c = &hr->choices[k];
    int                rc = 0;

    if (c->closed) {
        finish = c->finish_reason;
    }
    rc |= TG_LIT(b, "{\"index\":");
    rc |= tg_jstr_int(b, (int64_t) k);
    if (hr->r->oa.endpoint == TG_OA_CHAT) {
        rc |= TG_LIT(b, ",\"message\":{\"role\":\"assistant\","
                        "\"content\":");
        rc |= tg__host_text_str(b, &c->content, 1);
        rc |= TG_LIT(b, ",\"reasoning_content\":");
        rc |= tg__host_text_str(b, &c->reasoning, 1);
        rc |= TG_LIT(b, "}");
    } else {
        /* A completion's text is the raw output, thinking included. */
        (void) tg_buf_append(&c->reasoning, tg_buf_size(&c->content)
                                            ? tg_buf_ptr(&c->content) : "",
                             tg_buf_size(&c->content));
        rc |= TG_LIT(b, ",\"text\":");
        rc |= tg__host_text_str(b, &c->reasoning, 0);
    }
    rc |= TG_LIT(b, ",\"logprobs\":null,\"finish_reason\":\"");
    rc |= tg_jstr_escape(b, finish, strlen(finish));
    rc |= TG_LIT(b, "\"}");
    return rc != 0 ? -ENOMEM : 0;
}


/* A non-streamed answer's text up to its choices (its end follows in
 * tg__host_end_rest), rendered into hr->out as text rather than built as
 * a jansson tree and dumped: the same keys in the same order, the same
 * bytes. */
int
tg__host_reply_begin(tg_host_req_t *hr, tg_host_trace_t *usage_of,
    const char *finish)
{
    tg_buf_t    *b = &hr->out;
    const char  *model = tg__host_model(hr, tg__host_model_of(hr, usage_of,
                                                              0));
    uint32_t     k, n = hr->nopen > 1 ? hr->nopen : 1;
    int          rc = 0;

    b->start = b->len = 0;
    rc |= TG_LIT(b, "{\"id\":\"");
    rc |= tg_jstr_escape(b, hr->id, strlen(hr->id));
    rc |= hr->r->oa.endpoint == TG_OA_CHAT
          ? TG_LIT(b, "\",\"object\":\"chat.completion\",\"created\":")
          : TG_LIT(b, "\",\"object\":\"text_completion\",\"created\":");
    rc |= tg_jstr_int(b, hr->created);
    rc |= TG_LIT(b, ",\"model\":\"");
    rc |= tg_jstr_escape(b, model, strlen(model));
    rc |= TG_LIT(b, "\",\"choices\":[");
    for (k = 0; k < n && rc == 0; k++) {
        if (k > 0) {
            rc |= TG_LIT(b, ",");
        }
        rc |= tg__host_choice_text(hr, b, k, finish);
    }
    rc |= TG_LIT(b, "]");
    return rc != 0 ? -ENOMEM : 0;
}


/* The usage of a non-streamed answer, appended to b: what dumping
 * tg__host_usage's object writes, without its copy of the trace's usage
 * object where only the counts change. */
static int
tg__host_usage_text(tg_host_req_t *hr, tg_host_trace_t *ht, tg_buf_t *b)
{
    static const char *const  keys[] = { "completion_tokens",
                                         "total_tokens" };
    json_t                   *u;
    int64_t                   vals[2];
    int                       rc;

    u = ht != NULL && ht->cut_at == 0 ? tg__host_trace_usage(ht) : NULL;
    if (json_is_object(u)) {
        if (ht->tokens == 0) {
            return tg_json_dump(b, u);
        }
        vals[0] = ht->tokens;
        vals[1] = json_integer_value(json_object_get(u, "prompt_tokens"))
                  + ht->tokens;
        return tg_json_dump_ints(b, u, keys, vals, 2);
    }
    u = tg__host_usage(hr, ht);
    if (u == NULL) {
        return -ENOMEM;
    }
    rc = tg_json_dump(b, u);
    json_decref(u);
    return rc;
}


/* The rest of the answer tg__host_reply_begin rendered: its usage (that
 * of usage_of, tg__host_usage), summary as its "thinkgate" object, and
 * the reply with END.  Takes summary; out of memory is a 500 (reported
 * here). */
int
tg__host_reply_rest(tg_host_req_t *hr, tg_host_trace_t *usage_of,
    json_t *summary)
{
    tg_buf_t       *b = &hr->out;
    tg_oa_error_t   err;
    int             rc = 0;

    rc |= TG_LIT(b, ",\"usage\":");
    rc |= tg__host_usage_text(hr, usage_of, b);
    rc |= TG_LIT(b, ",\"thinkgate\":");
    rc |= tg_json_dump(b, summary);
    rc |= TG_LIT(b, "}");
    if (rc != 0) {
        json_decref(summary);
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg__host_error(hr, &err);
        return -ENOMEM;
    }
    return tg__host_reply_out(hr, summary);
}


/* A non-streamed answer: doc as a 200 application/json reply, then END
 * with summary.  Takes both; out of memory is a 500 (reported here). */
int
tg__host_reply_json(tg_host_req_t *hr, json_t *doc, json_t *summary)
{
    tg_buf_t       *b = &hr->out;
    tg_oa_error_t   err;
    int             rc;

    /* Rendered into the request's reused buffer, as chunks are. */
    b->start = b->len = 0;
    rc = tg_json_dump(b, doc);
    json_decref(doc);
    if (rc != 0) {
        json_decref(summary);
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg__host_error(hr, &err);
        return -ENOMEM;
    }
    return tg__host_reply_out(hr, summary);
}


/* The non-streamed answer rendered in hr->out as a 200 application/json
 * reply, then END with summary (taken). */
int
tg__host_reply_out(tg_host_req_t *hr, json_t *summary)
{
    tg_request_t  *r = hr->r;
    tg_buf_t      *b = &hr->out;
    int            rc;

    rc = tg_request_head(r, 200, 0, "Content-Type: application/json\r\n");
    if (rc == 0) {
        rc = tg_request_data(r, tg_buf_ptr(b), tg_buf_size(b));
    }
    if (rc != 0) {
        json_decref(summary);
        return rc == -EPIPE ? 0 : rc;
    }
    return tg_request_end(r, summary);
}
