/*
 * OpenAI request parsing and validation.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "openai/request.h"
#include "openai/responses.h"
#include "util/jload.h"

/* Kinds of optional sampling parameters; null always reads as absent, as
 * the OpenAI API accepts it. */
enum {
    TG__P_BOOL,
    TG__P_INT,          /* integer within [min, max] */
    TG__P_NUMBER,       /* number within [min, max] */
    TG__P_STOP,         /* string or array of strings */
    TG__P_OBJECT,
    TG__P_STRING,
    TG__P_ENUM          /* one of the '|'-separated words in choices */
};

typedef struct {
    const char  *name;
    int          kind;
    double       min;
    double       max;
    const char  *choices;
} tg__param_t;

#define TG__NOLIMIT  1e300

/* One row per parameter: name, kind, bounds. */
static const tg__param_t  tg__params[] = {
    { "stream", TG__P_BOOL, 0, 0, NULL },
    { "n", TG__P_INT, 1, 128, NULL },
    { "max_tokens", TG__P_INT, 1, TG__NOLIMIT, NULL },
    { "max_completion_tokens", TG__P_INT, 1, TG__NOLIMIT, NULL },
    { "temperature", TG__P_NUMBER, 0, 2, NULL },
    { "top_p", TG__P_NUMBER, 0, 1, NULL },
    { "presence_penalty", TG__P_NUMBER, -2, 2, NULL },
    { "frequency_penalty", TG__P_NUMBER, -2, 2, NULL },
    { "seed", TG__P_INT, -TG__NOLIMIT, TG__NOLIMIT, NULL },
    { "logprobs", TG__P_NUMBER, -TG__NOLIMIT, TG__NOLIMIT, NULL },  /* below */
    { "stop", TG__P_STOP, 0, 0, NULL },
    { "stream_options", TG__P_OBJECT, 0, 0, NULL },
    { "thinkgate", TG__P_OBJECT, 0, 0, NULL },
    { "user", TG__P_STRING, 0, 0, NULL },
    /* OpenAI's levels; the gateway maps each to a thinking budget and a
     * strategy (core/effort.h) unless the backend honours it itself. */
    { "reasoning_effort", TG__P_ENUM, 0, 0, "minimal|low|medium|high" },
    { NULL, 0, 0, 0, NULL }
};


static int tg__check_doc(json_t *doc, int endpoint, tg_oa_error_t *err);
static int tg__check_params(json_t *body, int endpoint, tg_oa_error_t *err);
static int tg__check_param(const tg__param_t *p, json_t *v, int endpoint,
    tg_oa_error_t *err);
static int tg__check_number(const tg__param_t *p, json_t *v,
    tg_oa_error_t *err);
static int tg__check_stop(const tg__param_t *p, json_t *v,
    tg_oa_error_t *err);
static int tg__check_messages(json_t *messages, tg_oa_error_t *err);
static int tg__enum_has(const char *choices, const char *word);
static void tg__utf8_clean(const char *s, char *out, size_t out_size);
static void tg__error_vset(tg_oa_error_t *err, int status,
    const char *type, const char *code, const char *param, const char *fmt,
    va_list ap) __attribute__((format(printf, 6, 0)));
static int tg__invalid(tg_oa_error_t *err, const char *code,
    const char *param, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));


int
tg_oa_endpoint(const char *uri, size_t len)
{
    static const struct {
        const char  *suffix;
        int          endpoint;
    } map[] = {
        { "/v1/chat/completions", TG_OA_CHAT },
        { "/v1/completions", TG_OA_COMPLETIONS },
        { "/v1/models", TG_OA_MODELS },
        { "/v1/responses", TG_OA_RESPONSES },
        { NULL, 0 }
    };

    /* OpenAI's own paths only, under any mount prefix (a client's
     * base_url ends in /v1): /v1/x/chat/completions is no endpoint. */
    const char  *id;
    size_t       i, n, idlen;

    if (tg_oa_response_get_id(uri, len, &id, &idlen)) {
        return TG_OA_RESPONSE_GET;
    }

    /* A trailing slash is tolerated, as most OpenAI servers do. */
    if (len > 1 && uri[len - 1] == '/') {
        len--;
    }

    for (i = 0; map[i].suffix != NULL; i++) {
        n = strlen(map[i].suffix);
        if (len >= n && memcmp(uri + len - n, map[i].suffix, n) == 0) {
            return map[i].endpoint;
        }
    }

    return TG_OA_UNKNOWN;
}


const char *
tg_oa_endpoint_path(int endpoint)
{
    switch (endpoint) {
    case TG_OA_CHAT:
        return "/chat/completions";
    case TG_OA_COMPLETIONS:
        return "/completions";
    case TG_OA_MODELS:
        return "/models";
    case TG_OA_EMBEDDINGS:
        return "/embeddings";
    case TG_OA_RESPONSES:
        return "/responses";
    default:
        return "";
    }
}


/* Every error a client gets is set here (type from the status when
 * none is given) and rendered by tg_oa_error_render. */
static void
tg__error_vset(tg_oa_error_t *err, int status, const char *type,
    const char *code, const char *param, const char *fmt, va_list ap)
{
    err->status = status;
    err->type = type ? type : tg_oa_error_type(status);
    snprintf(err->code, sizeof(err->code), "%s", code ? code : "");
    snprintf(err->param, sizeof(err->param), "%s", param ? param : "");
    vsnprintf(err->message, sizeof(err->message), fmt, ap);
}


void
tg_oa_error_set(tg_oa_error_t *err, int status, const char *type,
    const char *code, const char *param, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    tg__error_vset(err, status, type, code, param, fmt, ap);
    va_end(ap);
}


/* A 400 invalid_request_error of the body's checks: -EINVAL. */
static int
tg__invalid(tg_oa_error_t *err, const char *code, const char *param,
    const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    tg__error_vset(err, 400, "invalid_request_error", code, param, fmt, ap);
    va_end(ap);

    return -EINVAL;
}


const char *
tg_oa_error_type(int status)
{
    switch (status) {
    case 400:
    case 404:
    case 405:
    case 413:
    case 422:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 429:
        return "rate_limit_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}


/*
 * Copies s into out (out_size >= strlen(s) + 1) with every byte that does
 * not start a valid UTF-8 sequence, as jansson checks it, replaced by '?'.
 * Messages quote what a client sent: jansson's own error text cites the
 * bytes near a bad token raw and cuts them at 160 bytes, and
 * json_string() refuses the whole message for one such byte.
 */
static void
tg__utf8_clean(const char *s, char *out, size_t out_size)
{
    const unsigned char  *p = (const unsigned char *) s;
    unsigned              cp;
    size_t                i, k, n, o = 0;

    for (i = 0; p[i] != '\0' && o + 1 < out_size; i += n) {
        n = 1;
        if (p[i] < 0x80) {
            out[o++] = (char) p[i];
            continue;
        }
        if (p[i] >= 0xC2 && p[i] <= 0xDF) {
            k = 2;
            cp = p[i] & 0x1F;
        } else if (p[i] >= 0xE0 && p[i] <= 0xEF) {
            k = 3;
            cp = p[i] & 0x0F;
        } else if (p[i] >= 0xF0 && p[i] <= 0xF4) {
            k = 4;
            cp = p[i] & 0x07;
        } else {
            out[o++] = '?';
            continue;
        }
        for (n = 1; n < k && (p[i + n] & 0xC0) == 0x80; n++) {
            cp = cp << 6 | (p[i + n] & 0x3F);
        }
        if (n < k || (k == 3 && cp < 0x800) || (k == 4 && cp < 0x10000)
            || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)
            || o + k >= out_size)
        {
            n = 1;
            out[o++] = '?';
            continue;
        }
        memcpy(out + o, p + i, k);
        o += k;
    }
    out[o] = '\0';
}


char *
tg_oa_error_render(const tg_oa_error_t *err)
{
    json_t  *doc;
    char    *s, message[sizeof(err->message)], param[sizeof(err->param)];

    tg__utf8_clean(err->message, message, sizeof(message));
    tg__utf8_clean(err->param, param, sizeof(param));
    doc = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error",
                    "message", message,
                    "type", err->type ? err->type : "server_error",
                    "param", param[0] ? json_string(param) : json_null(),
                    "code", err->code[0] ? json_string(err->code)
                                         : json_null());
    if (doc == NULL) {
        return NULL;
    }

    s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}


/* The parsed body's checks: the model's type, the parameters and the
 * required input (messages or prompt).  0 or a negative errno with err
 * set; doc stays the caller's. */
static int
tg__check_doc(json_t *doc, int endpoint, tg_oa_error_t *err)
{
    json_t      *v;
    const char  *required;
    int          rc;

    v = json_object_get(doc, "model");
    if (v != NULL && !json_is_string(v)) {
        return tg__invalid(err, "invalid_type", "model",
                           "Invalid type for 'model': expected a string.");
    }

    rc = tg__check_params(doc, endpoint, err);
    if (rc != 0) {
        return rc;
    }

    required = endpoint == TG_OA_CHAT ? "messages" : "prompt";
    v = json_object_get(doc, required);

    if (v == NULL || json_is_null(v)) {
        return tg__invalid(err, "missing_required_parameter", required,
                           "Missing required parameter: '%s'.", required);
    }

    if (endpoint == TG_OA_CHAT) {
        return tg__check_messages(v, err);

    } else if (!json_is_string(v) && !json_is_array(v)) {
        return tg__invalid(err, "invalid_type", "prompt",
                           "Invalid type for 'prompt': expected a string "
                           "or an array.");

    } else if (json_is_array(v) && json_array_size(v) == 0) {
        return tg__invalid(err, "invalid_value", "prompt",
                           "Invalid value for 'prompt': the array is "
                           "empty.");
    }

    return 0;
}


int
tg_oa_parse(tg_oa_request_t *rq, int endpoint, const char *body,
    size_t len, tg_oa_error_t *err)
{
    json_t        *doc, *v;
    json_error_t   jerr;
    int            rc;

    memset(rq, 0, sizeof(*rq));

    if (len == 0) {
        return tg__invalid(err, "invalid_json", NULL,
                           "The request body is empty; expected a JSON "
                           "object.");
    }

    doc = tg_json_loadb_members(body, len, &jerr, rq->members,
                                TG_OA_MEMBERS_MAX, &rq->nmembers);
    if (doc == NULL) {
        return tg__invalid(err, "invalid_json", NULL,
                           "The request body is not valid JSON: %s "
                           "(line %d, column %d).", jerr.text, jerr.line,
                           jerr.column);
    }

    if (!json_is_object(doc)) {
        json_decref(doc);
        return tg__invalid(err, "invalid_json", NULL,
                           "The request body must be a JSON object.");
    }

    rc = tg__check_doc(doc, endpoint, err);
    if (rc != 0) {
        json_decref(doc);
        return rc;
    }

    rq->endpoint = endpoint;
    rq->body = doc;
    rq->stream = json_is_true(json_object_get(doc, "stream"));
    rq->model = json_string_value(json_object_get(doc, "model"));

    v = json_object_get(doc, "thinkgate");
    if (v != NULL) {
        if (json_is_object(v)) {
            rq->thinkgate = json_incref(v);
        }
        if (json_object_del(doc, "thinkgate") != 0) {
            tg_oa_request_free(rq);
            tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
            return -ENOMEM;
        }
    }

    return 0;
}


void
tg_oa_request_free(tg_oa_request_t *rq)
{
    json_decref(rq->body);
    json_decref(rq->thinkgate);
    tg_oa_responses_free(rq->responses);
    rq->responses = NULL;
    rq->body = NULL;
    rq->thinkgate = NULL;
    rq->model = NULL;
    tg_oa_body_changed(rq);
}


void
tg_oa_body_keep(tg_oa_request_t *rq, const char *text)
{
    rq->text = rq->body != NULL && rq->nmembers > 0 ? text : NULL;
}


void
tg_oa_body_changed(tg_oa_request_t *rq)
{
    rq->text = NULL;
    rq->nmembers = 0;
}


/* Whether word is one of the '|'-separated choices. */
static int
tg__enum_has(const char *choices, const char *word)
{
    size_t       n = strlen(word);
    const char  *p = choices, *e;

    while (n > 0) {
        e = strchr(p, '|');
        if ((e ? (size_t) (e - p) : strlen(p)) == n
            && memcmp(p, word, n) == 0)
        {
            return 1;
        }
        if (e == NULL) {
            break;
        }
        p = e + 1;
    }
    return 0;
}


/*
 * The body's members looked up in the table rather than the table's
 * fifteen names in the body (a hash of each name per request): a body has
 * a few members.  Of several bad parameters the one first in the table
 * is reported, as when the table was walked.
 */
static int
tg__check_params(json_t *body, int endpoint, tg_oa_error_t *err)
{
    const tg__param_t  *p, *bad = NULL;
    const char         *key;
    size_t              klen;
    json_t             *v;
    int                 rc, first = 0;

    json_object_keylen_foreach(body, key, klen, v) {
        if (json_is_null(v)) {
            continue;
        }
        for (p = tg__params; p->name != NULL; p++) {
            if (p->name[0] == key[0] && strlen(p->name) == klen
                && memcmp(p->name, key, klen) == 0)
            {
                break;
            }
        }
        if (p->name == NULL || (bad != NULL && p > bad)) {
            continue;
        }
        /* err is written only by a failing check: the last one written
         * is the first bad parameter of the table. */
        rc = tg__check_param(p, v, endpoint, err);
        if (rc != 0) {
            bad = p;
            first = rc;
        }
    }

    return first;
}


/* One parameter the body has: its type, and its range or choices. */
static int
tg__check_param(const tg__param_t *p, json_t *v, int endpoint,
    tg_oa_error_t *err)
{
    /* "logprobs" is a boolean for chat and an integer for legacy
     * completions. */
    if (strcmp(p->name, "logprobs") == 0) {
        if (endpoint == TG_OA_CHAT ? !json_is_boolean(v)
            : !json_is_integer(v) || json_integer_value(v) < 0)
        {
            return tg__invalid(err, "invalid_type", p->name,
                               "Invalid type for 'logprobs': expected "
                               "%s.", endpoint == TG_OA_CHAT
                               ? "a boolean" : "an integer >= 0");
        }
        return 0;
    }

    switch (p->kind) {

    case TG__P_BOOL:
        if (!json_is_boolean(v)) {
            return tg__invalid(err, "invalid_type", p->name,
                               "Invalid type for '%s': expected a "
                               "boolean.", p->name);
        }
        break;

    case TG__P_INT:
    case TG__P_NUMBER:
        return tg__check_number(p, v, err);

    case TG__P_STOP:
        return tg__check_stop(p, v, err);

    case TG__P_OBJECT:
        if (!json_is_object(v)) {
            return tg__invalid(err, "invalid_type", p->name,
                               "Invalid type for '%s': expected an "
                               "object.", p->name);
        }
        break;

    case TG__P_STRING:
        if (!json_is_string(v)) {
            return tg__invalid(err, "invalid_type", p->name,
                               "Invalid type for '%s': expected a "
                               "string.", p->name);
        }
        break;

    case TG__P_ENUM:
        if (!json_is_string(v) || !tg__enum_has(p->choices,
                                                json_string_value(v)))
        {
            return tg__invalid(err, "invalid_value", p->name,
                               "Invalid value for '%s': expected one "
                               "of %s.", p->name, p->choices);
        }
        break;
    }
    return 0;
}


/* An integer or number parameter: its type and range. */
static int
tg__check_number(const tg__param_t *p, json_t *v, tg_oa_error_t *err)
{
    double  d;

    if (p->kind == TG__P_INT) {
        if (!json_is_integer(v)) {
            return tg__invalid(err, "invalid_type", p->name,
                               "Invalid type for '%s': expected an "
                               "integer.", p->name);
        }
        d = (double) json_integer_value(v);
        if (d < p->min || d > p->max) {
            if (p->max >= TG__NOLIMIT) {
                return tg__invalid(err, "invalid_value", p->name,
                                   "Invalid value for '%s': %lld is "
                                   "less than the minimum of %g.",
                                   p->name,
                                   (long long) json_integer_value(v),
                                   p->min);
            }
            return tg__invalid(err, "invalid_value", p->name,
                               "Invalid value for '%s': %lld is not "
                               "between %g and %g.", p->name,
                               (long long) json_integer_value(v),
                               p->min, p->max);
        }
        return 0;
    }

    if (!json_is_number(v)) {
        return tg__invalid(err, "invalid_type", p->name,
                           "Invalid type for '%s': expected a "
                           "number.", p->name);
    }
    d = json_number_value(v);
    if (d < p->min || d > p->max) {
        return tg__invalid(err, "invalid_value", p->name,
                           "Invalid value for '%s': %g is not "
                           "between %g and %g.", p->name, d,
                           p->min, p->max);
    }
    return 0;
}


/* "stop": a string or an array of strings. */
static int
tg__check_stop(const tg__param_t *p, json_t *v, tg_oa_error_t *err)
{
    json_t  *e;
    size_t   i;

    if (json_is_string(v)) {
        return 0;
    }
    if (!json_is_array(v)) {
        return tg__invalid(err, "invalid_type", p->name,
                           "Invalid type for 'stop': expected a "
                           "string or an array of strings.");
    }
    json_array_foreach(v, i, e) {
        if (!json_is_string(e)) {
            return tg__invalid(err, "invalid_type", p->name,
                               "Invalid type for 'stop[%zu]': "
                               "expected a string.", i);
        }
    }
    return 0;
}


static int
tg__check_messages(json_t *messages, tg_oa_error_t *err)
{
    json_t  *m, *role, *content;
    size_t   i;
    char     param[64];

    if (!json_is_array(messages)) {
        return tg__invalid(err, "invalid_type", "messages",
                           "Invalid type for 'messages': expected an array "
                           "of message objects.");
    }

    if (json_array_size(messages) == 0) {
        return tg__invalid(err, "invalid_value", "messages",
                           "Invalid value for 'messages': the array must "
                           "not be empty.");
    }

    json_array_foreach(messages, i, m) {
        if (!json_is_object(m)) {
            snprintf(param, sizeof(param), "messages[%zu]", i);
            return tg__invalid(err, "invalid_type", param,
                               "Invalid type for '%s': expected an object.",
                               param);
        }

        role = json_object_get(m, "role");
        if (!json_is_string(role)) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            return tg__invalid(err, role ? "invalid_type"
                                         : "missing_required_parameter",
                               param, role
                               ? "Invalid type for '%s': expected a string."
                               : "Missing required parameter: '%s'.",
                               param);
        }

        /* Assistant messages that only call tools carry no content;
         * every other role's message is its content (OpenAI requires it
         * for system, developer, user and tool messages). */
        content = json_object_get(m, "content");
        if ((content == NULL || json_is_null(content))
            && strcmp(json_string_value(role), "assistant") != 0)
        {
            snprintf(param, sizeof(param), "messages[%zu].content", i);
            return tg__invalid(err, "missing_required_parameter", param,
                               "Missing required parameter: '%s' (a %.32s "
                               "message needs its content).", param,
                               json_string_value(role));
        }
        if (content != NULL && !json_is_null(content)
            && !json_is_string(content) && !json_is_array(content))
        {
            snprintf(param, sizeof(param), "messages[%zu].content", i);
            return tg__invalid(err, "invalid_type", param,
                               "Invalid type for '%s': expected a string or "
                               "an array of content parts.", param);
        }
    }

    return 0;
}
