/*
 * The Responses API's output (openai/responses.h): ids, the response
 * object, its usage, and the stream of Responses events.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "openai/responses.h"
#include "util/jdump.h"

static json_t *tg__r_reasoning_item(const tg_oa_responses_t *rs,
    const char *id, const char *text, size_t len, const char *status);
static json_t *tg__r_message_item(const char *id, const char *text,
    size_t len, const char *status);
static int tg__r_event(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const char *type, json_t *ev);
static int tg__r_reasoning_close(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const tg_oa_responses_t *rs, const char *id);
static int tg__r_message_open(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const char *id);
static void tg__r_item_id(char *buf, size_t size, const char *prefix,
    const char *id);


void
tg_oa_response_id(char id[TG_OA_RESPONSE_ID_MAX])
{
    static const char  hex[] = "0123456789abcdef";
    static uint64_t    counter;
    unsigned char      rnd[16];
    size_t             i;

    /* getrandom does not block once the pool is initialised (any running
     * system); should it fail, a counter and the address space layout
     * still keep ids apart within this process. */
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t) sizeof(rnd))
    {
        uint64_t  a = (uint64_t) (uintptr_t) &counter ^ ++counter;

        memcpy(rnd, &a, sizeof(a));
        memcpy(rnd + 8, &counter, sizeof(counter));
    }
    memcpy(id, "resp_", 5);
    for (i = 0; i < sizeof(rnd); i++) {
        id[5 + 2 * i] = hex[rnd[i] >> 4];
        id[6 + 2 * i] = hex[rnd[i] & 15];
    }
    id[5 + 2 * sizeof(rnd)] = '\0';
}


int
tg_oa_response_id_valid(const char *id, size_t len)
{
    size_t  i;

    if (len == 0 || len >= TG_OA_RESPONSE_ID_MAX) {
        return 0;
    }
    for (i = 0; i < len; i++) {
        char  c = id[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '-'))
        {
            return 0;
        }
    }
    return 1;
}


int
tg_oa_response_get_id(const char *uri, size_t n, const char **id,
    size_t *len)
{
    static const char  dir[] = "/v1/responses/";
    const char        *p = memmem(uri, n, dir, sizeof(dir) - 1);

    if (p == NULL) {
        return 0;
    }
    p += sizeof(dir) - 1;
    *id = p;
    *len = n - (size_t) (p - uri);
    if (*len > 0 && p[*len - 1] == '/') {
        (*len)--;
    }
    return *len > 0 && memchr(p, '/', *len) == NULL;
}


/* "rs_" or "msg_" and the response id's random part. */
static void
tg__r_item_id(char *buf, size_t size, const char *prefix, const char *id)
{
    snprintf(buf, size, "%s%s", prefix,
             strncmp(id, "resp_", 5) == 0 ? id + 5 : id);
}


static json_t *
tg__r_reasoning_item(const tg_oa_responses_t *rs, const char *id,
    const char *text, size_t len, const char *status)
{
    char  iid[TG_OA_RESPONSE_ID_MAX + 8];

    tg__r_item_id(iid, sizeof(iid), "rs_", id);
    /* The backend's reasoning as it came: in "summary" when one was
     * asked (thinkgate does not shorten it), else as reasoning_text
     * content, as open-model servers return it. */
    if (rs->summary) {
        return json_pack("{s:s, s:s, s:[{s:s, s:s#}], s:s}", "id", iid,
                         "type", "reasoning", "summary", "type",
                         "summary_text", "text", text ? text : "", len,
                         "status", status);
    }
    return json_pack("{s:s, s:s, s:[], s:[{s:s, s:s#}], s:s}", "id", iid,
                     "type", "reasoning", "summary", "content", "type",
                     "reasoning_text", "text", text ? text : "", len,
                     "status", status);
}


static json_t *
tg__r_message_item(const char *id, const char *text, size_t len,
    const char *status)
{
    char  iid[TG_OA_RESPONSE_ID_MAX + 8];

    tg__r_item_id(iid, sizeof(iid), "msg_", id);
    if (text == NULL) {
        return json_pack("{s:s, s:s, s:s, s:s, s:[]}", "id", iid, "type",
                         "message", "role", "assistant", "status", status,
                         "content");
    }
    return json_pack("{s:s, s:s, s:s, s:s, s:[{s:s, s:s#, s:[], s:[]}]}",
                     "id", iid, "type", "message", "role", "assistant",
                     "status", status, "content", "type", "output_text",
                     "text", text, len, "annotations", "logprobs");
}


json_t *
tg_oa_response_usage(json_t *u)
{
    json_int_t  in, out, reasoning, cached;

    in = json_integer_value(json_object_get(u, "prompt_tokens"));
    out = json_integer_value(json_object_get(u, "completion_tokens"));
    reasoning = json_integer_value(json_object_get(
                    json_object_get(u, "completion_tokens_details"),
                    "reasoning_tokens"));
    cached = json_integer_value(json_object_get(
                 json_object_get(u, "prompt_tokens_details"),
                 "cached_tokens"));
    return json_pack("{s:I, s:{s:I}, s:I, s:{s:I}, s:I}",
                     "input_tokens", in,
                     "input_tokens_details", "cached_tokens", cached,
                     "output_tokens", out,
                     "output_tokens_details", "reasoning_tokens", reasoning,
                     "total_tokens", in + out);
}


json_t *
tg_oa_response_object(const tg_oa_responses_t *rs, const char *id,
    int64_t created, const char *model, int done, const char *reasoning,
    size_t rlen, const char *content, size_t clen, const char *finish,
    json_t *chat_usage)
{
    json_t      *o, *out;
    const char  *status = "in_progress";
    int          rc = 0, cut = 0;

    o = json_copy(rs->echo);
    out = json_array();
    if (o == NULL || out == NULL) {
        json_decref(o);
        json_decref(out);
        return NULL;
    }
    if (done) {
        cut = finish != NULL && strcmp(finish, "length") == 0;
        status = cut ? "incomplete" : "completed";
        if (rlen > 0) {
            rc |= json_array_append_new(out, tg__r_reasoning_item(rs, id,
                                        reasoning, rlen, "completed"));
        }
        rc |= json_array_append_new(out, tg__r_message_item(id,
                                    content ? content : "", clen, status));
    }
    rc |= json_object_set_new(o, "id", json_string(id));
    rc |= json_object_set_new(o, "object", json_string("response"));
    rc |= json_object_set_new(o, "created_at",
                              json_integer((json_int_t) created));
    rc |= json_object_set_new(o, "status", json_string(status));
    rc |= json_object_set_new(o, "error", json_null());
    rc |= json_object_set_new(o, "incomplete_details",
                              cut ? json_pack("{s:s}", "reason",
                                              "max_output_tokens")
                                  : json_null());
    rc |= json_object_set_new(o, "model", json_string(model));
    rc |= json_object_set_new(o, "output", out);
    rc |= json_object_set_new(o, "usage",
                              done && chat_usage != NULL
                              ? tg_oa_response_usage(chat_usage)
                              : json_null());
    if (rc != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}


/* "event: TYPE" and the event's data, with its type and sequence
 * number; ev is stolen. */
static int
tg__r_event(tg_oa_resp_stream_t *st, tg_buf_t *out, const char *type,
    json_t *ev)
{
    int  rc;

    if (ev == NULL
        || json_object_set_new(ev, "type", json_string(type)) != 0
        || json_object_set_new(ev, "sequence_number",
                               json_integer((json_int_t) st->seq)) != 0)
    {
        json_decref(ev);
        return -ENOMEM;
    }
    st->seq++;
    rc = tg_buf_printf(out, "event: %s\ndata: ", type);
    rc |= tg_json_dump(out, ev);
    rc |= tg_buf_append(out, "\n\n", 2);
    json_decref(ev);
    return rc ? -ENOMEM : 0;
}


int
tg_oa_resp_stream_begin(tg_oa_resp_stream_t *st, tg_buf_t *out,
    json_t *resp)
{
    int  rc;

    st->begun = 1;
    st->reasoning_at = st->message_at = -1;
    if (resp == NULL) {
        return -ENOMEM;
    }
    rc = tg__r_event(st, out, "response.created",
                     json_pack("{s:O}", "response", resp));
    if (rc == 0) {
        rc = tg__r_event(st, out, "response.in_progress",
                         json_pack("{s:O}", "response", resp));
    }
    json_decref(resp);
    return rc;
}


int
tg_oa_resp_stream_delta(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const tg_oa_responses_t *rs, const char *id, const char *rtext,
    size_t rlen, const char *ctext, size_t clen)
{
    char  iid[TG_OA_RESPONSE_ID_MAX + 8];
    int   rc = 0;

    /* Reasoning after the answer began (a strategy's late emit) joins
     * the reasoning item of the final object, not the stream. */
    if (rlen > 0 && st->message_at < 0) {
        tg__r_item_id(iid, sizeof(iid), "rs_", id);
        if (!st->reasoning_open) {
            st->reasoning_open = 1;
            st->reasoning_at = st->noutput++;
            rc = tg__r_event(st, out, "response.output_item.added",
                             json_pack("{s:i, s:o}", "output_index",
                                       st->reasoning_at, "item",
                                       json_pack("{s:s, s:s, s:[], s:s}",
                                                 "id", iid, "type",
                                                 "reasoning", "summary",
                                                 "status", "in_progress")));
            if (rc == 0 && rs->summary) {
                rc = tg__r_event(st, out,
                    "response.reasoning_summary_part.added",
                    json_pack("{s:s, s:i, s:i, s:{s:s, s:s}}", "item_id",
                              iid, "output_index", st->reasoning_at,
                              "summary_index", 0, "part", "type",
                              "summary_text", "text", ""));
            } else if (rc == 0) {
                rc = tg__r_event(st, out, "response.content_part.added",
                    json_pack("{s:s, s:i, s:i, s:{s:s, s:s}}", "item_id",
                              iid, "output_index", st->reasoning_at,
                              "content_index", 0, "part", "type",
                              "reasoning_text", "text", ""));
            }
        }
        if (rc == 0) {
            rc = rs->summary
                 ? tg__r_event(st, out,
                       "response.reasoning_summary_text.delta",
                       json_pack("{s:s, s:i, s:i, s:s#}", "item_id", iid,
                                 "output_index", st->reasoning_at,
                                 "summary_index", 0, "delta", rtext, rlen))
                 : tg__r_event(st, out, "response.reasoning_text.delta",
                       json_pack("{s:s, s:i, s:i, s:s#}", "item_id", iid,
                                 "output_index", st->reasoning_at,
                                 "content_index", 0, "delta", rtext, rlen));
        }
    }
    if (rc == 0 && rlen > 0
        && tg_buf_append(&st->reasoning, rtext, rlen) != 0)
    {
        rc = -ENOMEM;
    }
    if (rc != 0 || clen == 0) {
        return rc;
    }

    if (st->reasoning_open) {
        rc = tg__r_reasoning_close(st, out, rs, id);
    }
    if (rc == 0 && !st->message_open) {
        rc = tg__r_message_open(st, out, id);
    }
    if (rc == 0) {
        tg__r_item_id(iid, sizeof(iid), "msg_", id);
        rc = tg__r_event(st, out, "response.output_text.delta",
                         json_pack("{s:s, s:i, s:i, s:s#, s:[]}", "item_id",
                                   iid, "output_index", st->message_at,
                                   "content_index", 0, "delta", ctext, clen,
                                   "logprobs"));
    }
    if (rc == 0 && tg_buf_append(&st->content, ctext, clen) != 0) {
        rc = -ENOMEM;
    }
    return rc;
}


static int
tg__r_reasoning_close(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const tg_oa_responses_t *rs, const char *id)
{
    char         iid[TG_OA_RESPONSE_ID_MAX + 8];
    const char  *t = st->reasoning.data ? tg_buf_ptr(&st->reasoning) : "";
    size_t       n = tg_buf_size(&st->reasoning);
    int          rc;

    st->reasoning_open = 0;
    tg__r_item_id(iid, sizeof(iid), "rs_", id);
    if (rs->summary) {
        rc = tg__r_event(st, out, "response.reasoning_summary_text.done",
                         json_pack("{s:s, s:i, s:i, s:s#}", "item_id", iid,
                                   "output_index", st->reasoning_at,
                                   "summary_index", 0, "text", t, n));
        if (rc == 0) {
            rc = tg__r_event(st, out,
                             "response.reasoning_summary_part.done",
                             json_pack("{s:s, s:i, s:i, s:{s:s, s:s#}}",
                                       "item_id", iid, "output_index",
                                       st->reasoning_at, "summary_index", 0,
                                       "part", "type", "summary_text",
                                       "text", t, n));
        }
    } else {
        rc = tg__r_event(st, out, "response.reasoning_text.done",
                         json_pack("{s:s, s:i, s:i, s:s#}", "item_id", iid,
                                   "output_index", st->reasoning_at,
                                   "content_index", 0, "text", t, n));
        if (rc == 0) {
            rc = tg__r_event(st, out, "response.content_part.done",
                             json_pack("{s:s, s:i, s:i, s:{s:s, s:s#}}",
                                       "item_id", iid, "output_index",
                                       st->reasoning_at, "content_index", 0,
                                       "part", "type", "reasoning_text",
                                       "text", t, n));
        }
    }
    if (rc == 0) {
        rc = tg__r_event(st, out, "response.output_item.done",
                         json_pack("{s:i, s:o}", "output_index",
                                   st->reasoning_at, "item",
                                   tg__r_reasoning_item(rs, id, t, n,
                                                        "completed")));
    }
    return rc;
}


static int
tg__r_message_open(tg_oa_resp_stream_t *st, tg_buf_t *out, const char *id)
{
    char  iid[TG_OA_RESPONSE_ID_MAX + 8];
    int   rc;

    st->message_open = 1;
    st->message_at = st->noutput++;
    tg__r_item_id(iid, sizeof(iid), "msg_", id);
    rc = tg__r_event(st, out, "response.output_item.added",
                     json_pack("{s:i, s:o}", "output_index", st->message_at,
                               "item", tg__r_message_item(id, NULL, 0,
                                                          "in_progress")));
    if (rc == 0) {
        rc = tg__r_event(st, out, "response.content_part.added",
                         json_pack("{s:s, s:i, s:i, s:{s:s, s:s, s:[], "
                                   "s:[]}}", "item_id", iid, "output_index",
                                   st->message_at, "content_index", 0,
                                   "part", "type", "output_text", "text",
                                   "", "annotations", "logprobs"));
    }
    return rc;
}


int
tg_oa_resp_stream_end(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const tg_oa_responses_t *rs, const char *id, json_t *resp)
{
    char         iid[TG_OA_RESPONSE_ID_MAX + 8];
    const char  *t, *status;
    size_t       n;
    int          rc = 0;

    if (resp == NULL) {
        return -ENOMEM;
    }
    status = json_string_value(json_object_get(resp, "status"));
    if (st->reasoning_open) {
        rc = tg__r_reasoning_close(st, out, rs, id);
    }
    if (rc == 0 && st->message_at < 0) {
        rc = tg__r_message_open(st, out, id);
    }
    if (rc == 0 && st->message_open) {
        st->message_open = 0;
        t = st->content.data ? tg_buf_ptr(&st->content) : "";
        n = tg_buf_size(&st->content);
        tg__r_item_id(iid, sizeof(iid), "msg_", id);
        rc = tg__r_event(st, out, "response.output_text.done",
                         json_pack("{s:s, s:i, s:i, s:s#, s:[]}", "item_id",
                                   iid, "output_index", st->message_at,
                                   "content_index", 0, "text", t, n,
                                   "logprobs"));
        if (rc == 0) {
            rc = tg__r_event(st, out, "response.content_part.done",
                             json_pack("{s:s, s:i, s:i, s:{s:s, s:s#, s:[], "
                                       "s:[]}}", "item_id", iid,
                                       "output_index", st->message_at,
                                       "content_index", 0, "part", "type",
                                       "output_text", "text", t, n,
                                       "annotations", "logprobs"));
        }
        if (rc == 0) {
            rc = tg__r_event(st, out, "response.output_item.done",
                             json_pack("{s:i, s:o}", "output_index",
                                       st->message_at, "item",
                                       tg__r_message_item(id, t, n,
                                                          status ? status
                                                          : "completed")));
        }
    }
    if (rc == 0) {
        rc = tg__r_event(st, out, status && strcmp(status, "incomplete") == 0
                                  ? "response.incomplete"
                                  : "response.completed",
                         json_pack("{s:O}", "response", resp));
    }
    json_decref(resp);
    return rc;
}


void
tg_oa_resp_stream_free(tg_oa_resp_stream_t *st)
{
    tg_buf_free(&st->reasoning);
    tg_buf_free(&st->content);
}
