/*
 * The Responses API on top of chat completions (openai/responses.h):
 * parsing a request into its chat translation, and the chain.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai/responses.h"
#include "util/jload.h"

/* What the gateway does with a top-level field of a Responses request. */
enum {
    TG__R_USE = 0,          /* read by the translation */
    TG__R_IGNORE,           /* a hint that changes no output */
    TG__R_REFUSE            /* not supported: 400 */
};

typedef struct {
    const char  *name;
    int          action;
    const char  *why;       /* TG__R_REFUSE: the message's reason */
} tg__rfield_t;

static const tg__rfield_t  tg__rfields[] = {
    { "model", TG__R_USE, NULL },
    { "input", TG__R_USE, NULL },
    { "instructions", TG__R_USE, NULL },
    { "stream", TG__R_USE, NULL },
    { "max_output_tokens", TG__R_USE, NULL },
    { "reasoning", TG__R_USE, NULL },
    { "store", TG__R_USE, NULL },
    { "previous_response_id", TG__R_USE, NULL },
    { "temperature", TG__R_USE, NULL },
    { "top_p", TG__R_USE, NULL },
    { "metadata", TG__R_USE, NULL },
    { "user", TG__R_USE, NULL },
    { "seed", TG__R_USE, NULL },
    { "thinkgate", TG__R_USE, NULL },
    { "tools", TG__R_USE, NULL },
    { "tool_choice", TG__R_USE, NULL },
    { "parallel_tool_calls", TG__R_USE, NULL },
    { "text", TG__R_USE, NULL },
    { "truncation", TG__R_USE, NULL },
    { "include", TG__R_USE, NULL },
    { "background", TG__R_USE, NULL },
    { "stream_options", TG__R_IGNORE, NULL },
    { "prompt_cache_key", TG__R_IGNORE, NULL },
    { "safety_identifier", TG__R_IGNORE, NULL },
    { "service_tier", TG__R_IGNORE, NULL },
    { "conversation", TG__R_REFUSE,
      "conversations are not supported; chain turns with "
      "previous_response_id" },
    { "prompt", TG__R_REFUSE, "prompt templates are not supported" },
    { "top_logprobs", TG__R_REFUSE, "logprobs are not supported" },
    { "max_tool_calls", TG__R_REFUSE, "tools are not supported yet" },
    { NULL, 0, NULL }
};

static int tg__r_messages(json_t *doc, tg_oa_responses_t *rs, json_t *chat,
    tg_oa_error_t *err);
static int tg__r_options(json_t *doc, tg_oa_responses_t *rs, json_t *chat,
    tg_oa_error_t *err);
static int tg__r_fields(json_t *body, tg_oa_error_t *err);
static int tg__r_unsupported(json_t *body, tg_oa_error_t *err);
static int tg__r_reasoning(json_t *body, tg_oa_responses_t *rs,
    json_t *chat, tg_oa_error_t *err);
static int tg__r_input(json_t *input, json_t *msgs, tg_oa_error_t *err);
static int tg__r_item(json_t *item, size_t i, json_t *msgs,
    tg_oa_error_t *err);
static int tg__r_echo(json_t *body, tg_oa_responses_t *rs);
static const char *tg__r_safe(const char *s);
static int tg__r_bad(tg_oa_error_t *err, const char *code, const char *param,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));


/* A client's string quoted in a message or param: printable ASCII of
 * at most 60 bytes, so that a cut never splits a UTF-8 sequence. */
static const char *
tg__r_safe(const char *s)
{
    size_t  i;

    for (i = 0; s != NULL && s[i] != '\0'; i++) {
        if (i >= 60 || s[i] < 0x20 || s[i] > 0x7e) {
            return "(not shown)";
        }
    }
    return s != NULL ? s : "(none)";
}


static int
tg__r_bad(tg_oa_error_t *err, const char *code, const char *param,
    const char *fmt, ...)
{
    va_list  ap;

    tg_oa_error_set(err, 400, "invalid_request_error", code, param, "%s",
                    "");
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
    va_end(ap);
    return -EINVAL;
}


/* The chat messages: the instructions as a system message, then the
 * input (kept in rs->input for a chained turn).  0 or a negative errno;
 * err is set unless it is -ENOMEM. */
static int
tg__r_messages(json_t *doc, tg_oa_responses_t *rs, json_t *chat,
    tg_oa_error_t *err)
{
    json_t  *msgs, *v;
    int      rc = 0;

    msgs = json_array();
    if (msgs == NULL) {
        return -ENOMEM;
    }

    /* The instructions are this request's only: a chained turn does not
     * inherit the previous response's (OpenAI's rule). */
    v = json_object_get(doc, "instructions");
    if (rc == 0 && v != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            rc = tg__r_bad(err, "invalid_type", "instructions", "Invalid "
                           "type for 'instructions': expected a string.");
        } else if (json_array_append_new(msgs, json_pack("{s:s, s:O}",
                                         "role", "system", "content", v)))
        {
            rc = -ENOMEM;
        }
    }
    v = json_object_get(doc, "input");
    if (rc == 0 && (v == NULL || json_is_null(v))) {
        rc = tg__r_bad(err, "missing_required_parameter", "input",
                       "Missing required parameter: 'input'.");
    }
    rs->input = json_array();
    if (rc == 0 && rs->input == NULL) {
        rc = -ENOMEM;
    }
    if (rc == 0) {
        rc = tg__r_input(v, rs->input, err);
    }
    if (rc == 0 && (json_array_extend(msgs, rs->input) != 0
                    || json_object_set(chat, "messages", msgs) != 0))
    {
        rc = -ENOMEM;
    }
    json_decref(msgs);
    return rc;
}


/* max_output_tokens, store, previous_response_id, the fields copied as
 * they are, and those echoed in the response.  0 or a negative errno;
 * err is set unless it is -ENOMEM. */
static int
tg__r_options(json_t *doc, tg_oa_responses_t *rs, json_t *chat,
    tg_oa_error_t *err)
{
    json_t             *v;
    size_t              i;
    int                 rc = 0;
    static const char  *copy[] = { "model", "stream", "temperature",
                                   "top_p", "user", "seed", "thinkgate",
                                   NULL };

    v = json_object_get(doc, "max_output_tokens");
    if (rc == 0 && v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            rc = tg__r_bad(err, "invalid_value", "max_output_tokens",
                           "Invalid value for 'max_output_tokens': expected "
                           "an integer of at least 1.");
        } else if (json_object_set(chat, "max_completion_tokens", v) != 0) {
            rc = -ENOMEM;
        }
    }

    v = json_object_get(doc, "store");
    if (rc == 0 && v != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            rc = tg__r_bad(err, "invalid_type", "store", "Invalid type for "
                           "'store': expected a boolean.");
        }
        rs->store = json_is_true(v);
    }

    v = json_object_get(doc, "previous_response_id");
    if (rc == 0 && v != NULL && !json_is_null(v)) {
        if (!json_is_string(v)
            || !tg_oa_response_id_valid(json_string_value(v),
                                        json_string_length(v)))
        {
            rc = tg__r_bad(err, "invalid_value", "previous_response_id",
                           "Invalid value for 'previous_response_id': "
                           "expected a response id.");
        } else {
            rs->previous = strdup(json_string_value(v));
            rc = rs->previous != NULL ? 0 : -ENOMEM;
        }
    }

    for (i = 0; rc == 0 && copy[i] != NULL; i++) {
        v = json_object_get(doc, copy[i]);
        if (v != NULL && json_object_set(chat, copy[i], v) != 0) {
            rc = -ENOMEM;
        }
    }
    if (rc == 0) {
        rc = tg__r_echo(doc, rs);
    }
    return rc;
}


int
tg_oa_responses_parse(tg_oa_request_t *rq, const char *body, size_t len,
    tg_oa_error_t *err)
{
    json_t             *doc, *chat;
    json_error_t        jerr;
    tg_oa_responses_t  *rs;
    char               *text;
    int                 rc;

    memset(rq, 0, sizeof(*rq));
    if (len == 0) {
        return tg__r_bad(err, "invalid_json", NULL, "The request body is "
                         "empty; expected a JSON object.");
    }
    doc = tg_json_loadb(body, len, &jerr);
    if (doc == NULL) {
        return tg__r_bad(err, "invalid_json", NULL, "The request body is "
                         "not valid JSON: %s (line %d, column %d).",
                         jerr.text, jerr.line, jerr.column);
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return tg__r_bad(err, "invalid_json", NULL, "The request body must "
                         "be a JSON object.");
    }

    rs = calloc(1, sizeof(*rs));
    chat = json_object();
    if (rs == NULL || chat == NULL) {
        free(rs);
        json_decref(chat);
        json_decref(doc);
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    rs->store = 1;

    rc = tg__r_fields(doc, err);
    if (rc == 0) {
        rc = tg__r_unsupported(doc, err);
    }
    if (rc == 0) {
        rc = tg__r_reasoning(doc, rs, chat, err);
    }
    if (rc == 0) {
        rc = tg__r_messages(doc, rs, chat, err);
    }
    if (rc == 0) {
        rc = tg__r_options(doc, rs, chat, err);
    }

    if (rc != 0) {
        if (rc == -ENOMEM) {
            tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        }
        json_decref(chat);
        json_decref(doc);
        tg_oa_responses_free(rs);
        return rc;
    }

    /* The chat request is validated by the chat parser: one set of
     * rules for both APIs (temperature's bounds, thinkgate's shape). */
    text = json_dumps(chat, JSON_COMPACT);
    json_decref(chat);
    json_decref(doc);
    if (text == NULL) {
        tg_oa_responses_free(rs);
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    rc = tg_oa_parse(rq, TG_OA_CHAT, text, strlen(text), err);
    free(text);
    tg_oa_body_changed(rq);     /* its text is gone */
    if (rc != 0) {
        tg_oa_responses_free(rs);
        return rc;
    }
    rq->responses = rs;
    return 0;
}


/* Every field is one the gateway reads, ignores on purpose, or refuses
 * with its reason; an unknown one is an error, as OpenAI makes it. */
static int
tg__r_fields(json_t *body, tg_oa_error_t *err)
{
    const char  *key;
    json_t      *v;
    size_t       i;

    json_object_foreach(body, key, v) {
        for (i = 0; tg__rfields[i].name != NULL; i++) {
            if (strcmp(tg__rfields[i].name, key) == 0) {
                break;
            }
        }
        if (tg__rfields[i].name == NULL) {
            return tg__r_bad(err, "unknown_parameter", tg__r_safe(key),
                             "Unrecognized request argument supplied: %s",
                             tg__r_safe(key));
        }
        if (tg__rfields[i].action == TG__R_REFUSE && !json_is_null(v)) {
            return tg__r_bad(err, "unsupported_parameter", key,
                             "'%s' is not supported by this gateway: %s.",
                             key, tg__rfields[i].why);
        }
    }
    return 0;
}


/* The fields thinkgate accepts only in their default, tool-less form. */
static int
tg__r_unsupported(json_t *body, tg_oa_error_t *err)
{
    json_t      *v, *f;
    const char  *s;
    const char  *key;

    v = json_object_get(body, "tools");
    if (v != NULL && !json_is_null(v)
        && (!json_is_array(v) || json_array_size(v) > 0))
    {
        return tg__r_bad(err, "unsupported_parameter", "tools", "'tools' "
                         "is not supported by this gateway yet: function "
                         "calling and built-in tools are not available "
                         "through /responses.");
    }
    v = json_object_get(body, "tool_choice");
    s = json_string_value(v);
    if (v != NULL && !json_is_null(v)
        && (s == NULL || (strcmp(s, "auto") != 0 && strcmp(s, "none") != 0)))
    {
        return tg__r_bad(err, "unsupported_parameter", "tool_choice",
                         "'tool_choice' is not supported by this gateway "
                         "yet: tools are not available through "
                         "/responses.");
    }
    v = json_object_get(body, "parallel_tool_calls");
    if (v != NULL && !json_is_null(v) && !json_is_boolean(v)) {
        return tg__r_bad(err, "invalid_type", "parallel_tool_calls",
                         "Invalid type for 'parallel_tool_calls': expected "
                         "a boolean.");
    }
    v = json_object_get(body, "text");
    if (v != NULL && !json_is_null(v)) {
        json_object_foreach(v, key, f) {
            s = json_string_value(json_object_get(f, "type"));
            if (strcmp(key, "format") != 0 || s == NULL
                || strcmp(s, "text") != 0 || json_object_size(f) != 1)
            {
                return tg__r_bad(err, "unsupported_parameter", "text",
                                 "Only \"text\": {\"format\": {\"type\": "
                                 "\"text\"}} is supported by this gateway: "
                                 "structured outputs and verbosity are "
                                 "not.");
            }
        }
        if (!json_is_object(v)) {
            return tg__r_bad(err, "invalid_type", "text", "Invalid type "
                             "for 'text': expected an object.");
        }
    }
    v = json_object_get(body, "truncation");
    s = json_string_value(v);
    if (v != NULL && !json_is_null(v)
        && (s == NULL || strcmp(s, "disabled") != 0))
    {
        return tg__r_bad(err, "unsupported_parameter", "truncation",
                         "Only \"truncation\": \"disabled\" is supported "
                         "by this gateway.");
    }
    v = json_object_get(body, "include");
    if (v != NULL && !json_is_null(v)
        && (!json_is_array(v) || json_array_size(v) > 0))
    {
        return tg__r_bad(err, "unsupported_parameter", "include",
                         "'include' is not supported by this gateway: "
                         "reasoning text is always included.");
    }
    v = json_object_get(body, "background");
    if (json_is_true(v)) {
        return tg__r_bad(err, "unsupported_parameter", "background",
                         "Background responses are not supported by this "
                         "gateway.");
    }
    v = json_object_get(body, "metadata");
    if (v != NULL && !json_is_null(v) && !json_is_object(v)) {
        return tg__r_bad(err, "invalid_type", "metadata", "Invalid type "
                         "for 'metadata': expected an object.");
    }
    return 0;
}


/* "reasoning": {"effort", "summary"}: the effort feeds the chat
 * request's reasoning_effort (the gateway's effort machinery). */
static int
tg__r_reasoning(json_t *body, tg_oa_responses_t *rs, json_t *chat,
    tg_oa_error_t *err)
{
    static const char  *efforts[] = { "minimal", "low", "medium", "high",
                                      NULL };
    static const char  *summaries[] = { "auto", "concise", "detailed",
                                        NULL };
    json_t             *r, *v;
    const char         *key, *s;
    size_t              i;

    r = json_object_get(body, "reasoning");
    if (r == NULL || json_is_null(r)) {
        return 0;
    }
    if (!json_is_object(r)) {
        return tg__r_bad(err, "invalid_type", "reasoning", "Invalid type "
                         "for 'reasoning': expected an object.");
    }
    json_object_foreach(r, key, v) {
        if (strcmp(key, "effort") != 0 && strcmp(key, "summary") != 0
            && strcmp(key, "generate_summary") != 0)
        {
            return tg__r_bad(err, "unknown_parameter", "reasoning",
                             "Unrecognized argument 'reasoning.%s'.",
                             tg__r_safe(key));
        }
        if (json_is_null(v)) {
            continue;
        }
        s = json_string_value(v);
        if (strcmp(key, "effort") == 0) {
            for (i = 0; s != NULL && efforts[i] != NULL; i++) {
                if (strcmp(s, efforts[i]) == 0) {
                    break;
                }
            }
            if (s == NULL || efforts[i] == NULL) {
                return tg__r_bad(err, "invalid_value", "reasoning.effort",
                                 "Invalid value for 'reasoning.effort': "
                                 "expected one of minimal, low, medium, "
                                 "high.");
            }
            if (json_object_set(chat, "reasoning_effort", v) != 0) {
                return -ENOMEM;
            }
            continue;
        }
        for (i = 0; s != NULL && summaries[i] != NULL; i++) {
            if (strcmp(s, summaries[i]) == 0) {
                break;
            }
        }
        if (s == NULL || summaries[i] == NULL) {
            return tg__r_bad(err, "invalid_value", "reasoning.summary",
                             "Invalid value for 'reasoning.summary': "
                             "expected one of auto, concise, detailed.");
        }
        rs->summary = 1;
    }
    return 0;
}


/* "input": a string (one user message) or an array of items. */
static int
tg__r_input(json_t *input, json_t *msgs, tg_oa_error_t *err)
{
    json_t  *item;
    size_t   i;
    int      rc;

    if (json_is_string(input)) {
        return json_array_append_new(msgs, json_pack("{s:s, s:O}", "role",
                                                     "user", "content",
                                                     input))
               ? -ENOMEM : 0;
    }
    if (!json_is_array(input)) {
        return tg__r_bad(err, "invalid_type", "input", "Invalid type for "
                         "'input': expected a string or an array of "
                         "items.");
    }
    json_array_foreach(input, i, item) {
        rc = tg__r_item(item, i, msgs, err);
        if (rc != 0) {
            return rc;
        }
    }
    if (json_array_size(msgs) == 0) {
        return tg__r_bad(err, "invalid_value", "input", "Invalid value for "
                         "'input': it holds no message.");
    }
    return 0;
}


/* One input item: a message (role, content as a string or text parts)
 * becomes a chat message; a reasoning item (a previous response's output
 * sent back) is dropped, as chat drops reasoning_content; anything else
 * needs tools or media the gateway does not have. */
static int
tg__r_item(json_t *item, size_t i, json_t *msgs, tg_oa_error_t *err)
{
    json_t      *content, *part, *m;
    const char  *type, *role, *ptype;
    char         param[64];
    tg_buf_t     b = { 0 };
    size_t       j;
    int          rc = 0;

    snprintf(param, sizeof(param), "input[%zu]", i);
    if (!json_is_object(item)) {
        return tg__r_bad(err, "invalid_type", param, "Invalid type for "
                         "'%s': expected an object.", param);
    }
    type = json_string_value(json_object_get(item, "type"));
    if (type != NULL && strcmp(type, "reasoning") == 0) {
        return 0;
    }
    if (type != NULL && strcmp(type, "message") != 0) {
        return tg__r_bad(err, "unsupported_parameter", param, "Input items "
                         "of type '%.40s' are not supported by this gateway "
                         "(tools are not supported yet); send messages.",
                         tg__r_safe(type));
    }
    role = json_string_value(json_object_get(item, "role"));
    if (role == NULL || (strcmp(role, "user") != 0
                         && strcmp(role, "assistant") != 0
                         && strcmp(role, "system") != 0
                         && strcmp(role, "developer") != 0))
    {
        snprintf(param, sizeof(param), "input[%zu].role", i);
        return tg__r_bad(err, "invalid_value", param, "Invalid value for "
                         "'%s': expected user, assistant, system or "
                         "developer.", param);
    }
    /* Open models know no developer role: it is the system's. */
    if (strcmp(role, "developer") == 0) {
        role = "system";
    }

    content = json_object_get(item, "content");
    if (json_is_string(content)) {
        m = json_pack("{s:s, s:O}", "role", role, "content", content);
        return json_array_append_new(msgs, m) ? -ENOMEM : 0;
    }
    if (!json_is_array(content)) {
        snprintf(param, sizeof(param), "input[%zu].content", i);
        return tg__r_bad(err, "invalid_type", param, "Invalid type for "
                         "'%s': expected a string or an array of parts.",
                         param);
    }
    json_array_foreach(content, j, part) {
        ptype = json_string_value(json_object_get(part, "type"));
        snprintf(param, sizeof(param), "input[%zu].content[%zu]", i, j);
        if (ptype == NULL || (strcmp(ptype, "input_text") != 0
                              && strcmp(ptype, "output_text") != 0))
        {
            tg_buf_free(&b);
            return tg__r_bad(err, "unsupported_parameter", param, "Content "
                             "parts of type '%.40s' are not supported by "
                             "this gateway: only input_text and "
                             "output_text (images, files and audio are "
                             "not).", tg__r_safe(ptype));
        }
        if (!json_is_string(json_object_get(part, "text"))) {
            tg_buf_free(&b);
            return tg__r_bad(err, "invalid_type", param, "'%s' needs a "
                             "string 'text'.", param);
        }
        rc |= tg_buf_append(&b, json_string_value(json_object_get(part,
                                                                  "text")),
                            json_string_length(json_object_get(part,
                                                               "text")));
    }
    m = rc == 0 ? json_pack("{s:s, s:s#}", "role", role, "content",
                            b.data ? tg_buf_ptr(&b) : "", tg_buf_size(&b))
                : NULL;
    tg_buf_free(&b);
    return m == NULL || json_array_append_new(msgs, m) ? -ENOMEM : 0;
}


/* The request's fields the response object repeats. */
static int
tg__r_echo(json_t *body, tg_oa_responses_t *rs)
{
    json_t  *r, *v, *e;
    int      rc = 0;

    e = json_object();
    r = json_object_get(body, "reasoning");
    if (e == NULL) {
        return -ENOMEM;
    }
#define TG__ECHO(key, dflt)                                                   \
    v = json_object_get(body, key);                                           \
    rc |= json_object_set_new(e, key, v != NULL ? json_incref(v) : (dflt))

    TG__ECHO("instructions", json_null());
    TG__ECHO("max_output_tokens", json_null());
    TG__ECHO("metadata", json_object());
    TG__ECHO("parallel_tool_calls", json_true());
    TG__ECHO("previous_response_id", json_null());
    TG__ECHO("temperature", json_null());
    TG__ECHO("top_p", json_null());
    TG__ECHO("user", json_null());
#undef TG__ECHO
    rc |= json_object_set_new(e, "reasoning", json_pack("{s:O?, s:O?}",
        "effort", json_object_get(r, "effort"),
        "summary", json_object_get(r, "summary")));
    rc |= json_object_set_new(e, "store", json_boolean(rs->store));
    rc |= json_object_set_new(e, "text", json_pack("{s:{s:s}}", "format",
                                                   "type", "text"));
    rc |= json_object_set_new(e, "tool_choice", json_string("auto"));
    rc |= json_object_set_new(e, "tools", json_array());
    rc |= json_object_set_new(e, "truncation", json_string("disabled"));
    if (rc != 0) {
        json_decref(e);
        return -ENOMEM;
    }
    rs->echo = e;
    return 0;
}


void
tg_oa_responses_free(tg_oa_responses_t *rs)
{
    if (rs == NULL) {
        return;
    }
    json_decref(rs->echo);
    json_decref(rs->input);
    json_decref(rs->history);
    free(rs->previous);
    free(rs);
}


int
tg_oa_responses_chain(tg_oa_request_t *rq, json_t *history)
{
    json_t  *msgs, *all;
    size_t   lead;

    if (rq->responses == NULL || !json_is_array(history)) {
        json_decref(history);
        return -EINVAL;
    }
    json_decref(rq->responses->history);
    rq->responses->history = history;
    tg_oa_body_changed(rq);

    msgs = json_object_get(rq->body, "messages");
    lead = json_object_get(rq->responses->echo, "instructions") != NULL
           && !json_is_null(json_object_get(rq->responses->echo,
                                            "instructions")) ? 1 : 0;
    /* Copies: what goes to the backends must not share objects with
     * what is stored at the end. */
    all = json_array();
    if (all == NULL
        || (lead && json_array_append(all, json_array_get(msgs, 0)) != 0)
        || json_array_extend(all, history) != 0
        || json_array_extend(all, rq->responses->input) != 0)
    {
        json_decref(all);
        return -ENOMEM;
    }
    msgs = json_deep_copy(all);
    json_decref(all);
    if (msgs == NULL) {
        return -ENOMEM;
    }
    return json_object_set_new(rq->body, "messages", msgs) ? -ENOMEM : 0;
}
