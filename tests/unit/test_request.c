/*
 * OpenAI request validation (engine/openai/request.c): every bad input
 * gets the right status and names the right parameter; good input keeps
 * its fields and loses the reserved "thinkgate" object.
 */

#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <string.h>

#include "openai/request.h"

typedef struct {
    int          endpoint;
    const char  *body;
    const char  *param;     /* expected param, "" for null */
    const char  *code;
    size_t       len;       /* 0: strlen(body) */
} bad_t;

#define CHAT_MSG  "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]"

static bad_t  bad_inputs[] = {
    { TG_OA_CHAT, "", "", "invalid_json", 0 },
    { TG_OA_CHAT, "{not json", "", "invalid_json", 0 },
    { TG_OA_CHAT, "\x00\xff{", "", "invalid_json", 3 },
    { TG_OA_CHAT, "[1, 2]", "", "invalid_json", 0 },
    { TG_OA_CHAT, "\"text\"", "", "invalid_json", 0 },
    { TG_OA_CHAT, "{\"model\":\"m\"}", "messages",
      "missing_required_parameter", 0 },
    { TG_OA_CHAT, "{\"messages\":null}", "messages",
      "missing_required_parameter", 0 },
    { TG_OA_CHAT, "{\"messages\":\"hi\"}", "messages", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"messages\":[]}", "messages", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"messages\":[1]}", "messages[0]", "invalid_type", 0 },
    /* Issue 14, bug 8: a user message without content was accepted. */
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"user\"}]}",
      "messages[0].content", "missing_required_parameter", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
      "{\"role\":\"user\",\"content\":null}]}",
      "messages[1].content", "missing_required_parameter", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"tool\","
      "\"tool_call_id\":\"c1\"}]}",
      "messages[0].content", "missing_required_parameter", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\"},"
      "{\"role\":1,\"content\":\"x\"}]}", "messages[1].role",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"content\":\"x\"}]}",
      "messages[0].role", "missing_required_parameter", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}",
      "messages[0].content", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":{}}]}",
      "messages[0].content", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"model\":5," CHAT_MSG "}", "model", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"model\":null," CHAT_MSG "}", "model",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"stream\":\"yes\"," CHAT_MSG "}", "stream",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"stream\":1," CHAT_MSG "}", "stream", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"n\":0," CHAT_MSG "}", "n", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"reasoning_effort\":\"extreme\"," CHAT_MSG "}",
      "reasoning_effort", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"reasoning_effort\":\"\"," CHAT_MSG "}",
      "reasoning_effort", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"reasoning_effort\":\"lo\"," CHAT_MSG "}",
      "reasoning_effort", "invalid_value", 0 },
    { TG_OA_COMPLETIONS, "{\"reasoning_effort\":2,\"prompt\":\"p\"}",
      "reasoning_effort", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"n\":1.5," CHAT_MSG "}", "n", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"n\":\"2\"," CHAT_MSG "}", "n", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"max_tokens\":-3," CHAT_MSG "}", "max_tokens",
      "invalid_value", 0 },
    { TG_OA_CHAT, "{\"max_tokens\":0," CHAT_MSG "}", "max_tokens",
      "invalid_value", 0 },
    { TG_OA_CHAT, "{\"max_tokens\":true," CHAT_MSG "}", "max_tokens",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"max_completion_tokens\":0," CHAT_MSG "}",
      "max_completion_tokens", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"temperature\":9," CHAT_MSG "}", "temperature",
      "invalid_value", 0 },
    { TG_OA_CHAT, "{\"temperature\":-0.1," CHAT_MSG "}", "temperature",
      "invalid_value", 0 },
    { TG_OA_CHAT, "{\"temperature\":\"hot\"," CHAT_MSG "}", "temperature",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"top_p\":1.5," CHAT_MSG "}", "top_p", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"top_p\":[]," CHAT_MSG "}", "top_p", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"stop\":5," CHAT_MSG "}", "stop", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"stop\":[\"a\",3]," CHAT_MSG "}", "stop",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"thinkgate\":\"ffs\"," CHAT_MSG "}", "thinkgate",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"stream_options\":true," CHAT_MSG "}",
      "stream_options", "invalid_type", 0 },
    { TG_OA_CHAT, "{\"logprobs\":3," CHAT_MSG "}", "logprobs",
      "invalid_type", 0 },
    { TG_OA_COMPLETIONS, "{\"model\":\"m\"}", "prompt",
      "missing_required_parameter", 0 },
    { TG_OA_COMPLETIONS, "{\"prompt\":5}", "prompt", "invalid_type", 0 },
    { TG_OA_COMPLETIONS, "{\"prompt\":{}}", "prompt", "invalid_type", 0 },
    { TG_OA_COMPLETIONS, "{\"prompt\":[]}", "prompt", "invalid_value", 0 },
    { TG_OA_COMPLETIONS, "{\"prompt\":\"x\",\"logprobs\":true}",
      "logprobs", "invalid_type", 0 },
    { TG_OA_COMPLETIONS, "{\"prompt\":\"x\",\"n\":-1}", "n",
      "invalid_value", 0 },
    /* Several bad parameters: the first of the parameter table ("stream",
     * "n", "max_tokens", ... "reasoning_effort") is the one named,
     * whatever their order in the body. */
    { TG_OA_CHAT, "{\"reasoning_effort\":\"x\",\"temperature\":9,"
      "\"n\":0," CHAT_MSG "}", "n", "invalid_value", 0 },
    { TG_OA_CHAT, "{\"top_p\":7,\"stream\":1," CHAT_MSG "}", "stream",
      "invalid_type", 0 },
    { TG_OA_CHAT, "{\"stop\":5,\"temperature\":null,\"seed\":\"s\","
      CHAT_MSG "}", "seed", "invalid_type", 0 },
};

#define NBAD  (sizeof(bad_inputs) / sizeof(bad_inputs[0]))

/* Parameters are indices: Criterion runs each test in a fresh process, so
 * pointers into the table would not survive the trip. */
static int  bad_index[NBAD];

ParameterizedTestParameters(request, bad_input_is_400)
{
    size_t  i;

    for (i = 0; i < NBAD; i++) {
        bad_index[i] = (int) i;
    }
    return cr_make_param_array(int, bad_index, NBAD);
}

ParameterizedTest(int *index, request, bad_input_is_400)
{
    const bad_t     *b = &bad_inputs[*index];
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    size_t           len = b->len ? b->len : strlen(b->body);
    char            *doc;

    tg_oa_error_t    kerr;

    /* The body read with its text kept says the same, word for word. */
    cr_assert_eq(tg_oa_parse_kept(&rq, b->endpoint, b->body, len, &kerr),
                 -EINVAL, "accepted when kept: %s", b->body);
    cr_assert_eq(tg_oa_parse(&rq, b->endpoint, b->body, len, &err), -EINVAL,
                 "accepted: %s", b->body);
    cr_assert_eq(kerr.status, err.status);
    cr_assert_str_eq(kerr.param, err.param);
    cr_assert_str_eq(kerr.code, err.code);
    cr_assert_str_eq(kerr.message, err.message);
    cr_assert_eq(err.status, 400);
    cr_assert_str_eq(err.type, "invalid_request_error");
    cr_assert_str_eq(err.param, b->param, "%s: param %s, want %s", b->body,
                     err.param, b->param);
    cr_assert_str_eq(err.code, b->code, "%s: code %s", b->body, err.code);
    cr_assert_gt(strlen(err.message), 10);
    if (b->param[0]) {
        cr_assert_not_null(strstr(err.message, b->param), "%s",
                           err.message);
    }

    doc = tg_oa_error_render(&err);
    cr_assert_not_null(doc);
    cr_assert_not_null(strstr(doc, "\"error\":{"));
    cr_assert_not_null(strstr(doc, "\"type\":\"invalid_request_error\""));
    free(doc);
}


Test(request, good_chat_keeps_fields_and_strips_thinkgate)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    const char      *body = "{\"model\":\"m\",\"stream\":true,\"n\":2,"
        "\"temperature\":0.5,\"top_p\":1,\"stop\":[\"x\"],\"max_tokens\":8,"
        "\"thinkgate\":{\"strategy\":\"ffs\",\"n\":8},"
        "\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]},"
        "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}]}";

    cr_assert_eq(tg_oa_parse(&rq, TG_OA_CHAT, body, strlen(body), &err), 0,
                 "%s", err.message);
    cr_assert_eq(rq.endpoint, TG_OA_CHAT);
    cr_assert_eq(rq.stream, 1);
    cr_assert_str_eq(rq.model, "m");
    cr_assert_null(json_object_get(rq.body, "thinkgate"));
    cr_assert_not_null(rq.thinkgate);
    cr_assert_str_eq(json_string_value(json_object_get(rq.thinkgate,
                                                       "strategy")), "ffs");
    cr_assert_eq(json_integer_value(json_object_get(rq.body, "n")), 2);
    tg_oa_request_free(&rq);
}


Test(request, nulls_read_as_absent)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    const char      *body = "{\"stream\":null,\"temperature\":null,"
        "\"stop\":null," CHAT_MSG "}";

    cr_assert_eq(tg_oa_parse(&rq, TG_OA_CHAT, body, strlen(body), &err), 0,
                 "%s", err.message);
    cr_assert_eq(rq.stream, 0);
    cr_assert_null(rq.model);
    tg_oa_request_free(&rq);
}


Test(request, good_completions)
{
    tg_oa_request_t  rq;
    tg_oa_error_t    err;
    const char      *b1 = "{\"model\":\"m\",\"prompt\":\"2+3=\",\"logprobs\":2}";
    const char      *b2 = "{\"prompt\":[\"a\",\"b\"],\"stop\":\"\\n\","
                          "\"reasoning_effort\":\"minimal\"}";

    cr_assert_eq(tg_oa_parse(&rq, TG_OA_COMPLETIONS, b1, strlen(b1), &err),
                 0, "%s", err.message);
    cr_assert_eq(rq.stream, 0);
    tg_oa_request_free(&rq);
    cr_assert_eq(tg_oa_parse(&rq, TG_OA_COMPLETIONS, b2, strlen(b2), &err),
                 0, "%s", err.message);
    tg_oa_request_free(&rq);
}


Test(request, endpoints_by_suffix)
{
#define EP(s)  tg_oa_endpoint(s, strlen(s))
    cr_assert_eq(EP("/v1/chat/completions"), TG_OA_CHAT);
    cr_assert_eq(EP("/tenant/v1/chat/completions/"), TG_OA_CHAT);
    cr_assert_eq(EP("/v1/completions"), TG_OA_COMPLETIONS);
    cr_assert_eq(EP("/v1/models"), TG_OA_MODELS);
    cr_assert_eq(EP("/v1/embeddingz"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/"), TG_OA_UNKNOWN);
    cr_assert_eq(EP(""), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/v1/completionsx"), TG_OA_UNKNOWN);
    /* Issue 14, bug 8: only OpenAI's paths, not any path with the
     * endpoint's last segments. */
    cr_assert_eq(EP("/v1/x/chat/completions"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/v1/anything/completions"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/v1/foo/models"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/chat/completions"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/v1/xchat/completions"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/v2/chat/completions"), TG_OA_UNKNOWN);
    cr_assert_eq(EP("/tenant/v1/completions"), TG_OA_COMPLETIONS);
    cr_assert_eq(EP("/v1/models/"), TG_OA_MODELS);
#undef EP
}


Test(request, error_render_shape)
{
    tg_oa_error_t  err;
    json_t        *doc, *e;
    char          *s;

    tg_oa_error_set(&err, 502, NULL, "backend_error", NULL,
                    "Backend \"b0\" answered %d: %s", 500, "CUDA \"OOM\"");
    s = tg_oa_error_render(&err);
    cr_assert_not_null(s);
    doc = json_loads(s, 0, NULL);
    cr_assert_not_null(doc, "%s", s);
    e = json_object_get(doc, "error");
    cr_assert_eq(json_object_size(doc), 1);
    cr_assert_str_eq(json_string_value(json_object_get(e, "message")),
                     "Backend \"b0\" answered 500: CUDA \"OOM\"");
    cr_assert_str_eq(json_string_value(json_object_get(e, "type")),
                     "server_error");
    cr_assert(json_is_null(json_object_get(e, "param")));
    cr_assert_str_eq(json_string_value(json_object_get(e, "code")),
                     "backend_error");
    json_decref(doc);
    free(s);

    cr_assert_str_eq(tg_oa_error_type(429), "rate_limit_error");
    cr_assert_str_eq(tg_oa_error_type(504), "timeout_error");
    cr_assert_str_eq(tg_oa_error_type(413), "invalid_request_error");
}


/* jansson cites the bytes near a bad token raw: a body with a byte that
 * is not UTF-8 there (fuzz_request found it) got a 400 without a body,
 * because json_string() refused the message.  Such bytes render as '?'. */
Test(request, error_quoting_bad_utf8_still_renders)
{
    static const char  body[] = "{\"mode9\\ud830\\\xd5\x9c\x9a\xcf\xcb\","
                                "\"mess\"}]}";
    tg_oa_request_t    rq;
    tg_oa_error_t      err;
    json_t            *doc;
    const char        *msg;
    char              *s;

    cr_assert_eq(tg_oa_parse(&rq, TG_OA_CHAT, body, sizeof(body) - 1, &err),
                 -EINVAL);
    cr_assert_eq(err.status, 400);
    s = tg_oa_error_render(&err);
    cr_assert_not_null(s, "message: %s", err.message);
    doc = json_loads(s, 0, NULL);
    cr_assert_not_null(doc, "%s", s);
    msg = json_string_value(json_object_get(json_object_get(doc, "error"),
                                            "message"));
    cr_assert_not_null(msg);
    cr_assert(strstr(msg, "not valid JSON") != NULL, "%s", msg);
    cr_assert(strchr(msg, '?') != NULL, "%s", msg);
    json_decref(doc);
    free(s);

    /* Valid multi-byte text is kept as it is. */
    tg_oa_error_set(&err, 400, NULL, NULL, "p\xc3\xa9", "caf\xc3\xa9 \xe2\x82"
                    "\xac\xf0\x9f\x98\x80 \xed\xa0\x80 \xc0\xaf \xff");
    s = tg_oa_error_render(&err);
    cr_assert_not_null(s);
    doc = json_loads(s, 0, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(doc, "error"), "message")),
                     "caf\xc3\xa9 \xe2\x82\xac\xf0\x9f\x98\x80 ??? ?? ?");
    cr_assert_str_eq(json_string_value(json_object_get(
                         json_object_get(doc, "error"), "param")), "p\xc3\xa9");
    json_decref(doc);
    free(s);
}


/* Bodies tg_oa_parse accepts, each read with its text kept: with or
 * without a tree (scanned says which), the fields, the members read and
 * the tree built on demand are tg_oa_parse's. */
static const struct {
    int          endpoint;
    const char  *body;
    int          scanned;
} t_kept[] = {
    { TG_OA_CHAT, "{\"model\":\"m\",\"stream\":true,\"n\":2,"
      "\"temperature\":0.5,\"top_p\":1,\"stop\":[\"x\"],\"max_tokens\":8,"
      "\"thinkgate\":{\"strategy\":\"ffs\",\"n\":8},\"seed\":-3,"
      "\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
      "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"q\"}]},"
      "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[]}]}", 1 },
    { TG_OA_CHAT, "{\"stream\":null,\"temperature\":null,\"stop\":null,"
      CHAT_MSG "}", 1 },
    { TG_OA_CHAT, " {\"reasoning_effort\" : \"low\", \"logprobs\": false,"
      "\"user\":\"a\\\"b\", " CHAT_MSG ", \"stream\": false } ", 1 },
    { TG_OA_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"2+3=\","
      "\"logprobs\":2,\"echo\":true}", 1 },
    { TG_OA_COMPLETIONS, "{\"prompt\":[\"a\",\"b\"],\"stop\":\"\\n\","
      "\"reasoning_effort\":\"minimal\"}", 1 },
    /* What the scan is not sure of goes by the tree. */
    { TG_OA_CHAT, "{\"model\":\"a\\u00e9\"," CHAT_MSG "}", 0 },
    { TG_OA_CHAT, "{\"n\":1,\"n\":2," CHAT_MSG "}", 0 },
    { TG_OA_CHAT, "{\"\\u006e\":2," CHAT_MSG "}", 0 },
    { TG_OA_CHAT, "{\"seed\":1234567890123456789," CHAT_MSG "}", 0 },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"a\","
      "\"content\":\"b\"}]}", 0 },
};


Test(request, a_kept_body_reads_as_the_tree_says)
{
    static const char *const  names[] = { "n", "seed", "logprobs", "echo",
        "reasoning_effort", "stream", "user", "model", "absent" };
    tg_oa_request_t  rq, kq;
    tg_oa_error_t    err;
    size_t           i, k;
    int64_t          a, b;
    char             buf[64];
    const char      *s1, *s2;

    for (i = 0; i < sizeof(t_kept) / sizeof(t_kept[0]); i++) {
        const char  *body = t_kept[i].body;

        cr_assert_eq(tg_oa_parse(&rq, t_kept[i].endpoint, body, strlen(body),
                                 &err), 0, "%s: %s", body, err.message);
        cr_assert_eq(tg_oa_parse_kept(&kq, t_kept[i].endpoint, body,
                                      strlen(body), &err), 0, "%s", body);
        cr_assert_eq(kq.scanned, t_kept[i].scanned, "%s", body);
        cr_assert_eq(kq.body == NULL, t_kept[i].scanned, "%s", body);
        /* The text is kept wherever its members are known. */
        cr_assert(kq.nmembers > 0 ? kq.text == body : kq.text == NULL,
                  "%s", body);
        cr_assert(kq.nmembers > 0 || !t_kept[i].scanned, "%s", body);
        cr_assert_eq(kq.stream, rq.stream, "%s", body);
        cr_assert(kq.model == NULL ? rq.model == NULL
                  : rq.model != NULL && strcmp(kq.model, rq.model) == 0,
                  "%s", body);
        cr_assert(kq.thinkgate == NULL ? rq.thinkgate == NULL
                  : json_equal(kq.thinkgate, rq.thinkgate), "%s", body);
        for (k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            cr_assert_eq(tg_oa_int(&kq, names[k], &a),
                         tg_oa_int(&rq, names[k], &b), "%s", names[k]);
            cr_assert(!tg_oa_int(&kq, names[k], &a) || a == b);
            cr_assert_eq(tg_oa_given(&kq, names[k]),
                         tg_oa_given(&rq, names[k]), "%s", names[k]);
            s1 = tg_oa_str(&kq, names[k], buf, sizeof(buf));
            s2 = tg_oa_str(&rq, names[k], NULL, 0);
            cr_assert(s1 == NULL ? s2 == NULL
                      : s2 != NULL && strcmp(s1, s2) == 0, "%s: %s",
                      body, names[k]);
        }
        cr_assert(json_equal(tg_oa_body(&kq), rq.body), "%s", body);
        cr_assert_null(json_object_get(kq.body, "thinkgate"));
        tg_oa_request_free(&kq);
        tg_oa_request_free(&rq);
    }
}
