/*
 * The Responses API translation (engine/openai/responses.c and
 * responses_out.c): a request becomes the chat request it means, what is
 * not supported is a 400 naming the parameter, the chain goes between
 * the instructions and the new input, and the stream's events come in
 * the order and with the sequence numbers the SDKs check.
 */

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "openai/request.h"
#include "openai/responses.h"

static int
parse(tg_oa_request_t *rq, const char *body, tg_oa_error_t *err)
{
    return tg_oa_responses_parse(rq, body, strlen(body), err);
}


static const char *
msg_field(json_t *msgs, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(msgs, i), key));
}


Test(responses, string_input_becomes_chat)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    json_t          *msgs;

    cr_assert_eq(parse(&rq, "{\"model\":\"m\",\"input\":\"hi\","
                       "\"instructions\":\"be brief\",\"stream\":true,"
                       "\"max_output_tokens\":99,\"reasoning\":{\"effort\":"
                       "\"low\",\"summary\":\"auto\"},\"store\":false,"
                       "\"previous_response_id\":\"resp_1\","
                       "\"thinkgate\":{\"strategy\":\"ffs\"}}", &err), 0,
                 "%s", err.message);
    cr_assert_eq(rq.endpoint, TG_OA_CHAT);
    cr_assert(rq.stream);
    cr_assert_str_eq(rq.model, "m");
    msgs = json_object_get(rq.body, "messages");
    cr_assert_eq(json_array_size(msgs), 2);
    cr_assert_str_eq(msg_field(msgs, 0, "role"), "system");
    cr_assert_str_eq(msg_field(msgs, 0, "content"), "be brief");
    cr_assert_str_eq(msg_field(msgs, 1, "role"), "user");
    cr_assert_str_eq(msg_field(msgs, 1, "content"), "hi");
    cr_assert_eq(json_integer_value(json_object_get(rq.body,
                     "max_completion_tokens")), 99);
    cr_assert_str_eq(json_string_value(json_object_get(rq.body,
                         "reasoning_effort")), "low");
    cr_assert_null(json_object_get(rq.body, "thinkgate"));
    cr_assert_str_eq(json_string_value(json_object_get(rq.thinkgate,
                                                       "strategy")), "ffs");
    cr_assert_not_null(rq.responses);
    cr_assert_eq(rq.responses->store, 0);
    cr_assert_eq(rq.responses->summary, 1);
    cr_assert_str_eq(rq.responses->previous, "resp_1");
    /* The input without the instructions: what a chain stores. */
    cr_assert_eq(json_array_size(rq.responses->input), 1);
    tg_oa_request_free(&rq);
}


Test(responses, items_become_messages)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    json_t          *msgs;

    cr_assert_eq(parse(&rq, "{\"input\":[{\"type\":\"message\",\"role\":"
                       "\"developer\",\"content\":\"rules\"},{\"role\":"
                       "\"user\",\"content\":[{\"type\":\"input_text\","
                       "\"text\":\"a\"},{\"type\":\"input_text\",\"text\":"
                       "\"b\"}]},{\"type\":\"reasoning\",\"summary\":[]},"
                       "{\"role\":\"assistant\",\"content\":[{\"type\":"
                       "\"output_text\",\"text\":\"c\"}]}],\"tools\":[],"
                       "\"tool_choice\":\"auto\",\"text\":{\"format\":"
                       "{\"type\":\"text\"}}}", &err), 0, "%s", err.message);
    msgs = json_object_get(rq.body, "messages");
    cr_assert_eq(json_array_size(msgs), 3);
    cr_assert_str_eq(msg_field(msgs, 0, "role"), "system");
    cr_assert_str_eq(msg_field(msgs, 1, "content"), "ab");
    cr_assert_str_eq(msg_field(msgs, 2, "role"), "assistant");
    cr_assert_str_eq(msg_field(msgs, 2, "content"), "c");
    cr_assert_eq(rq.responses->store, 1);
    cr_assert_null(rq.responses->previous);
    tg_oa_request_free(&rq);
}


typedef struct {
    const char  *body;
    const char  *param;
} bad_t;

static bad_t  bad_bodies[] = {
    { "{\"model\":\"m\"}", "input" },
    { "{\"input\":3}", "input" },
    { "{\"input\":[]}", "input" },
    { "{\"input\":[{\"role\":\"robot\",\"content\":\"x\"}]}",
      "input[0].role" },
    { "{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":"
      "\"input_image\",\"image_url\":\"u\"}]}]}", "input[0].content[0]" },
    { "{\"input\":[{\"type\":\"function_call_output\",\"call_id\":\"c\","
      "\"output\":\"1\"}]}", "input[0]" },
    { "{\"input\":\"x\",\"tools\":[{\"type\":\"web_search\"}]}", "tools" },
    { "{\"input\":\"x\",\"tool_choice\":\"required\"}", "tool_choice" },
    { "{\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_object\"}}}",
      "text" },
    { "{\"input\":\"x\",\"text\":{\"verbosity\":\"low\"}}", "text" },
    { "{\"input\":\"x\",\"background\":true}", "background" },
    { "{\"input\":\"x\",\"truncation\":\"auto\"}", "truncation" },
    { "{\"input\":\"x\",\"include\":[\"reasoning.encrypted_content\"]}",
      "include" },
    { "{\"input\":\"x\",\"conversation\":\"c\"}", "conversation" },
    { "{\"input\":\"x\",\"reasoning\":{\"effort\":\"max\"}}",
      "reasoning.effort" },
    { "{\"input\":\"x\",\"reasoning\":{\"summary\":\"long\"}}",
      "reasoning.summary" },
    { "{\"input\":\"x\",\"reasoning\":{\"depth\":1}}", "reasoning" },
    { "{\"input\":\"x\",\"store\":\"yes\"}", "store" },
    { "{\"input\":\"x\",\"max_output_tokens\":0}", "max_output_tokens" },
    { "{\"input\":\"x\",\"previous_response_id\":\"a b\"}",
      "previous_response_id" },
    { "{\"input\":\"x\",\"frobnicate\":1}", "frobnicate" },
    { "{\"input\":\"x\",\"temperature\":9}", "temperature" },
    { "{\"input\":\"x\",\"instructions\":5}", "instructions" },
};

#define NBAD  (sizeof(bad_bodies) / sizeof(bad_bodies[0]))

/* Indices: Criterion runs each test in a fresh process, where pointers
 * into the table would not survive the trip. */
static int  bad_index[NBAD];

ParameterizedTestParameters(responses, unsupported_is_400)
{
    size_t  i;

    for (i = 0; i < NBAD; i++) {
        bad_index[i] = (int) i;
    }
    return cr_make_param_array(int, bad_index, NBAD);
}


ParameterizedTest(int *index, responses, unsupported_is_400)
{
    const bad_t     *b = &bad_bodies[*index];
    tg_oa_request_t  rq;
    tg_oa_error_t    err;

    memset(&err, 0, sizeof(err));
    cr_assert_eq(parse(&rq, b->body, &err), -EINVAL, "%s", b->body);
    cr_assert_eq(err.status, 400);
    cr_assert_str_eq(err.param, b->param, "%s: %s", b->body, err.message);
    cr_assert(err.message[0] != '\0');
    cr_assert_null(rq.responses);
    cr_assert_null(rq.body);
}


Test(responses, chain_goes_after_the_instructions)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    json_t          *msgs, *hist;

    cr_assert_eq(parse(&rq, "{\"input\":\"q2\",\"instructions\":\"sys\","
                       "\"previous_response_id\":\"resp_a\"}", &err), 0);
    hist = json_loads("[{\"role\":\"user\",\"content\":\"q1\"},"
                      "{\"role\":\"assistant\",\"content\":\"a1\"}]", 0,
                      NULL);
    cr_assert_eq(tg_oa_responses_chain(&rq, hist), 0);
    msgs = json_object_get(rq.body, "messages");
    cr_assert_eq(json_array_size(msgs), 4);
    cr_assert_str_eq(msg_field(msgs, 0, "content"), "sys");
    cr_assert_str_eq(msg_field(msgs, 1, "content"), "q1");
    cr_assert_str_eq(msg_field(msgs, 2, "content"), "a1");
    cr_assert_str_eq(msg_field(msgs, 3, "content"), "q2");
    tg_oa_request_free(&rq);
}


Test(responses, endpoints_and_ids)
{
    const char  *id;
    size_t       len;
    char         rid[TG_OA_RESPONSE_ID_MAX], rid2[TG_OA_RESPONSE_ID_MAX];

    cr_assert_eq(tg_oa_endpoint("/v1/responses", 13), TG_OA_RESPONSES);
    cr_assert_eq(tg_oa_endpoint("/v1/responses/resp_1", 20),
                 TG_OA_RESPONSE_GET);
    cr_assert(tg_oa_response_get_id("/v1/responses/resp_1/", 21, &id, &len));
    cr_assert_eq(len, 6);
    cr_assert_eq(memcmp(id, "resp_1", 6), 0);
    cr_assert_not(tg_oa_response_get_id("/v1/responses/", 14, &id, &len));
    cr_assert_not(tg_oa_response_get_id("/v1/responses/a/b", 17, &id,
                                        &len));
    tg_oa_response_id(rid);
    tg_oa_response_id(rid2);
    cr_assert_eq(strlen(rid), 37);
    cr_assert_eq(strncmp(rid, "resp_", 5), 0);
    cr_assert(tg_oa_response_id_valid(rid, strlen(rid)));
    cr_assert_str_neq(rid, rid2);
    cr_assert_not(tg_oa_response_id_valid("a/b", 3));
}


Test(responses, object_usage_and_status)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    json_t          *usage, *o, *u;

    cr_assert_eq(parse(&rq, "{\"input\":\"x\"}", &err), 0);
    usage = json_loads("{\"prompt_tokens\":10,\"completion_tokens\":30,"
                       "\"total_tokens\":40,\"completion_tokens_details\":"
                       "{\"reasoning_tokens\":20}}", 0, NULL);
    o = tg_oa_response_object(rq.responses, "resp_x", 5, "m", 1, "think", 5,
                              "answer", 6, "length", usage);
    cr_assert_not_null(o);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                     "incomplete");
    cr_assert_eq(json_array_size(json_object_get(o, "output")), 2);
    u = json_object_get(o, "usage");
    cr_assert_eq(json_integer_value(json_object_get(u, "input_tokens")), 10);
    cr_assert_eq(json_integer_value(json_object_get(u, "output_tokens")), 30);
    cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), 40);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(u,
                     "output_tokens_details"), "reasoning_tokens")), 20);
    json_decref(o);
    /* No reasoning: only the message. */
    o = tg_oa_response_object(rq.responses, "resp_x", 5, "m", 1, "", 0,
                              "answer", 6, "stop", usage);
    cr_assert_str_eq(json_string_value(json_object_get(o, "status")),
                     "completed");
    cr_assert_eq(json_array_size(json_object_get(o, "output")), 1);
    json_decref(o);
    json_decref(usage);
    tg_oa_request_free(&rq);
}


/* The stream's event types in order, with their sequence numbers
 * checked. */
static size_t
event_types(const char *s, const char **types, size_t max)
{
    const char  *p = s, *data, *end;
    json_t      *ev;
    size_t       n = 0;

    while ((data = strstr(p, "data: ")) != NULL && n < max) {
        end = strstr(data, "\n\n");
        cr_assert_not_null(end);
        ev = json_loadb(data + 6, (size_t) (end - data - 6), 0, NULL);
        cr_assert_not_null(ev, "%.*s", (int) (end - data), data);
        cr_assert_eq(json_integer_value(json_object_get(ev,
                         "sequence_number")), (json_int_t) n);
        types[n++] = strdup(json_string_value(json_object_get(ev, "type")));
        json_decref(ev);
        p = end + 2;
    }
    return n;
}


Test(responses, stream_events_in_order)
{
    static const char  *want[] = {
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.reasoning_text.delta", "response.reasoning_text.delta",
        "response.reasoning_text.done", "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta",
        "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed"
    };
    tg_oa_request_t      rq;
    tg_oa_error_t        err;
    tg_oa_resp_stream_t  st;
    tg_buf_t             out = { 0 };
    const char          *types[64];
    size_t               n, i;
    json_t              *fin;

    memset(&st, 0, sizeof(st));
    cr_assert_eq(parse(&rq, "{\"input\":\"x\",\"stream\":true}", &err), 0);
    cr_assert_eq(tg_oa_resp_stream_begin(&st, &out,
                     tg_oa_response_object(rq.responses, "resp_x", 1, "m",
                                           0, NULL, 0, NULL, 0, NULL,
                                           NULL)), 0);
    cr_assert_eq(tg_oa_resp_stream_delta(&st, &out, rq.responses, "resp_x",
                                         "th", 2, "", 0), 0);
    cr_assert_eq(tg_oa_resp_stream_delta(&st, &out, rq.responses, "resp_x",
                                         "ink", 3, "", 0), 0);
    cr_assert_eq(tg_oa_resp_stream_delta(&st, &out, rq.responses, "resp_x",
                                         "", 0, "an", 2), 0);
    cr_assert_eq(tg_oa_resp_stream_delta(&st, &out, rq.responses, "resp_x",
                                         "", 0, "swer", 4), 0);
    fin = tg_oa_response_object(rq.responses, "resp_x", 1, "m", 1,
                                tg_buf_ptr(&st.reasoning),
                                tg_buf_size(&st.reasoning),
                                tg_buf_ptr(&st.content),
                                tg_buf_size(&st.content), "stop", NULL);
    cr_assert_eq(tg_oa_resp_stream_end(&st, &out, rq.responses, "resp_x",
                                       fin), 0);
    cr_assert_eq(tg_buf_size(&st.content), 6);
    cr_assert_eq(memcmp(tg_buf_ptr(&st.content), "answer", 6), 0);

    n = event_types(tg_buf_cstr(&out), types, 64);
    cr_assert_eq(n, sizeof(want) / sizeof(want[0]));
    for (i = 0; i < n; i++) {
        cr_assert_str_eq(types[i], want[i], "event %zu", i);
        free((void *) types[i]);
    }
    /* Each event names its type on the SSE event line too. */
    cr_assert_not_null(strstr(tg_buf_cstr(&out),
                              "event: response.completed\ndata: "));
    tg_buf_free(&out);
    tg_oa_resp_stream_free(&st);
    tg_oa_request_free(&rq);
}
