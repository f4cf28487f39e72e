/*
 * OpenAI request parsing and validation.
 */

#include <errno.h>
#include <sys/types.h>
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
static int tg__text_read(tg_oa_request_t *rq, int endpoint,
    const char *body, size_t len);
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
#define TG__SUFFIX(s)  s, sizeof(s) - 1
    static const struct {
        const char  *suffix;
        size_t       len;
        int          endpoint;
    } map[] = {
        { TG__SUFFIX("/v1/chat/completions"), TG_OA_CHAT },
        { TG__SUFFIX("/v1/completions"), TG_OA_COMPLETIONS },
        { TG__SUFFIX("/v1/models"), TG_OA_MODELS },
        { TG__SUFFIX("/v1/responses"), TG_OA_RESPONSES },
        { NULL, 0, 0 }
    };
#undef TG__SUFFIX

    /* OpenAI's own paths only, under any mount prefix (a client's
     * base_url ends in /v1): /v1/x/chat/completions is no endpoint. */
    const char  *id;
    size_t       i, n, idlen;

    /* A trailing slash is tolerated, as most OpenAI servers do. */
    n = len;
    if (n > 1 && uri[n - 1] == '/') {
        n--;
    }

    /* The suffixes first (most requests): no URI both ends in one and
     * names a response (its last segment would follow "responses/"). */
    for (i = 0; map[i].suffix != NULL; i++) {
        if (n >= map[i].len
            && memcmp(uri + n - map[i].len, map[i].suffix, map[i].len) == 0)
        {
            return map[i].endpoint;
        }
    }

    if (tg_oa_response_get_id(uri, len, &id, &idlen)) {
        return TG_OA_RESPONSE_GET;
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
tg_oa_body_changed(tg_oa_request_t *rq)
{
    rq->text = NULL;
    rq->text_len = 0;
    rq->nmembers = 0;
    rq->scanned = 0;
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


/* ---- a body read from its text alone (tg_oa_parse_kept) ------------- */

/*
 * The scan answers "valid" only where the tree's checks surely pass, and
 * "not sure" (1) for anything else, valid or not: tg_oa_parse then reads
 * the body and says what is wrong.  So the checks below mirror
 * tg__check_doc's rules but never word an error.
 */

typedef struct {
    tg_oa_request_t  *rq;
    const char       *text;
} tg__text_t;

/* A string value's contents (val: its whole text, quotes included). */
#define TG__TEXT_STR(val)  ((val)->p + 1), ((val)->n - 2)

/* Whether key (contents, never escaped) is lit. */
#define TG__TEXT_KEY(k, lit)                                                 \
    ((k)->n == sizeof(lit) - 1 && memcmp((k)->p, lit, sizeof(lit) - 1) == 0)


/* A member of the body: noted, unless its key came before (jansson keeps
 * the last: not sure) or there are too many. */
static int
tg__text_member(void *arg, const tg_jval_t *key, const tg_jval_t *val)
{
    tg__text_t      *t = arg;
    tg_oa_request_t *rq = t->rq;
    tg_jmember_t    *m;
    size_t           i;

    if (rq->nmembers == TG_OA_MEMBERS_MAX) {
        return 1;
    }
    for (i = 0; i < rq->nmembers; i++) {
        if (rq->members[i].key_len == key->n
            && memcmp(t->text + rq->members[i].key, key->p, key->n) == 0)
        {
            return 1;
        }
    }
    m = &rq->members[rq->nmembers];
    m->key = (uint32_t) (key->p - t->text);
    m->key_len = (uint32_t) key->n;
    m->val = (uint32_t) (val->p - t->text);
    m->val_len = (uint32_t) val->n;
    rq->vals[rq->nmembers].type = val->type;
    rq->vals[rq->nmembers].esc = val->esc;
    rq->vals[rq->nmembers].i = val->type == TG_JV_INT ? val->i : 0;
    rq->nmembers++;
    return 0;
}


/* A value's kind beyond the scan's types: 'b' a boolean, 'o' an object,
 * 'a' an array, 'r' a real, 's' a string, 'i' an integer, 'n' null. */
static int
tg__text_kind(const tg_jval_t *v)
{
    switch (v->type) {
    case TG_JV_NULL:
        return 'n';
    case TG_JV_STRING:
        return 's';
    case TG_JV_INT:
        return 'i';
    default:
        return v->p[0] == 't' || v->p[0] == 'f' ? 'b'
               : v->p[0] == '{' ? 'o' : v->p[0] == '[' ? 'a' : 'r';
    }
}


/* A number member's value as a double: 0, or 1 (not sure). */
static int
tg__text_number(const tg_jval_t *v, double *d)
{
    char   buf[64], *end;

    if (v->type == TG_JV_INT) {
        *d = (double) v->i;
        return 0;
    }
    if (v->n >= sizeof(buf)) {
        return 1;
    }
    memcpy(buf, v->p, v->n);
    buf[v->n] = '\0';
    errno = 0;
    *d = strtod(buf, &end);
    return errno != 0 || end != buf + v->n;
}


/* Each element of "stop" a string. */
static int
tg__text_stop_elem(void *arg, size_t index, const tg_jval_t *val)
{
    (void) arg;
    (void) index;
    return val->type != TG_JV_STRING;
}


/* One parameter the body gives (not null): 0 when its check surely
 * passes, 1 otherwise. */
static int
tg__text_param(const tg__param_t *p, const tg_jval_t *v, int endpoint)
{
    int     k = tg__text_kind(v);
    double  d;
    char    word[32];

    if (strcmp(p->name, "logprobs") == 0) {
        return endpoint == TG_OA_CHAT ? k != 'b' : k != 'i' || v->i < 0;
    }
    switch (p->kind) {
    case TG__P_BOOL:
        return k != 'b';
    case TG__P_INT:
        return k != 'i' || (double) v->i < p->min || (double) v->i > p->max;
    case TG__P_NUMBER:
        return (k != 'i' && k != 'r') || tg__text_number(v, &d) != 0
               || d < p->min || d > p->max;
    case TG__P_STOP:
        return k != 's' && (k != 'a' || tg_chunk_elements(v->p, v->n,
                                            tg__text_stop_elem, NULL) != 0);
    case TG__P_OBJECT:
        return k != 'o';
    case TG__P_STRING:
        return k != 's';
    default:                                    /* TG__P_ENUM */
        if (k != 's' || v->esc || v->n - 2 >= sizeof(word)) {
            return 1;
        }
        memcpy(word, TG__TEXT_STR(v));
        word[v->n - 2] = '\0';
        return !tg__enum_has(p->choices, word);
    }
}


/* One message's role and content, as tg__check_messages wants them. */
typedef struct {
    tg_jval_t   role;
    tg_jval_t   content;
    unsigned    has_role:1;
    unsigned    has_content:1;
    unsigned    twice:1;
} tg__text_msg_t;


static int
tg__text_msg_member(void *arg, const tg_jval_t *key, const tg_jval_t *val)
{
    tg__text_msg_t  *m = arg;

    if (TG__TEXT_KEY(key, "role")) {
        m->twice |= m->has_role;
        m->has_role = 1;
        m->role = *val;
    } else if (TG__TEXT_KEY(key, "content")) {
        m->twice |= m->has_content;
        m->has_content = 1;
        m->content = *val;
    }
    return 0;
}


static int
tg__text_message(void *arg, size_t index, const tg_jval_t *val)
{
    tg__text_msg_t  m;
    int             k;

    (void) arg;
    (void) index;
    memset(&m, 0, sizeof(m));
    if (tg__text_kind(val) != 'o'
        || tg_chunk_members(val->p, val->n, tg__text_msg_member, &m) != 0
        || m.twice || !m.has_role || m.role.type != TG_JV_STRING)
    {
        return 1;
    }
    k = m.has_content ? tg__text_kind(&m.content) : 'n';
    if (k == 'n') {
        /* Only an assistant's message may leave its content out. */
        return m.role.esc || m.role.n != sizeof("\"assistant\"") - 1
               || memcmp(m.role.p, "\"assistant\"", m.role.n) != 0;
    }
    return k != 's' && k != 'a';
}


/* The required input: a non-empty array of messages that pass, or a
 * prompt (a string or a non-empty array). */
static int
tg__text_input(const tg_jval_t *v, int endpoint)
{
    const char  *p;
    int          k = tg__text_kind(v);

    if (k == 'a') {
        for (p = v->p + 1; *p == ' ' || *p == '\n' || *p == '\r'
                           || *p == '\t'; p++) {
        }
        if (*p == ']') {
            return 1;
        }
    }
    if (endpoint == TG_OA_CHAT) {
        return k != 'a' || tg_chunk_elements(v->p, v->n, tg__text_message,
                                             NULL) != 0;
    }
    return k != 's' && k != 'a';
}


/* Member i as the scan read it. */
static void
tg__text_val(const tg_oa_request_t *rq, const char *text, size_t i,
    tg_jval_t *v, tg_jval_t *key)
{
    const tg_jmember_t  *m = &rq->members[i];

    memset(v, 0, sizeof(*v));
    v->p = text + m->val;
    v->n = m->val_len;
    v->type = rq->vals[i].type;
    v->esc = rq->vals[i].esc;
    v->i = rq->vals[i].i;
    v->object = v->p[0] == '{';
    key->p = text + m->key;
    key->n = m->key_len;
}


/* One member of a scanned body checked, and what rq keeps of it taken:
 * 0, or 1 when not sure.  *input is set by the required one. */
static int
tg__text_take(tg_oa_request_t *rq, int endpoint, const tg_jval_t *key,
    const tg_jval_t *v, int *input)
{
    const tg__param_t  *p;
    json_error_t        jerr;

    if (TG__TEXT_KEY(key, "model")) {
        if (v->type != TG_JV_STRING || v->esc || v->n - 2 >= TG_OA_MODEL_MAX)
        {
            return 1;
        }
        memcpy(rq->model_buf, TG__TEXT_STR(v));
        rq->model_buf[v->n - 2] = '\0';
        rq->model = rq->model_buf;
        return 0;
    }
    if (endpoint == TG_OA_CHAT ? TG__TEXT_KEY(key, "messages")
                               : TG__TEXT_KEY(key, "prompt"))
    {
        *input = 1;
        return tg__text_input(v, endpoint);
    }
    if (v->type == TG_JV_NULL) {
        return 0;
    }
    for (p = tg__params; p->name != NULL; p++) {
        if (strlen(p->name) == key->n && memcmp(p->name, key->p, key->n) == 0)
        {
            break;
        }
    }
    if (p->name != NULL && tg__text_param(p, v, endpoint) != 0) {
        return 1;
    }
    if (TG__TEXT_KEY(key, "stream")) {
        rq->stream = v->p[0] == 't';
    } else if (TG__TEXT_KEY(key, "thinkgate")) {
        rq->thinkgate = tg_json_loadb(v->p, v->n, &jerr);
        return rq->thinkgate == NULL;
    }
    return 0;
}


/* The body read from its text: 0 (rq's members, values, model, stream
 * and thinkgate taken), or 1 when not sure (rq left as it was). */
static int
tg__text_read(tg_oa_request_t *rq, int endpoint, const char *body,
    size_t len)
{
    tg__text_t  t = { rq, body };
    tg_jval_t   v, key;
    size_t      i;
    int         input = 0;

    if (len > UINT32_MAX
        || tg_chunk_members(body, len, tg__text_member, &t) != 0)
    {
        goto unsure;
    }
    for (i = 0; i < rq->nmembers; i++) {
        tg__text_val(rq, body, i, &v, &key);
        if (tg__text_take(rq, endpoint, &key, &v, &input) != 0) {
            goto unsure;
        }
    }
    if (!input) {
        goto unsure;
    }
    return 0;

unsure:
    json_decref(rq->thinkgate);
    rq->thinkgate = NULL;
    rq->model = NULL;
    rq->stream = 0;
    rq->nmembers = 0;
    return 1;
}


int
tg_oa_parse_kept(tg_oa_request_t *rq, int endpoint, const char *body,
    size_t len, tg_oa_error_t *err)
{
    int  rc;

    memset(rq, 0, sizeof(*rq));
    if (len > 0 && tg__text_read(rq, endpoint, body, len) == 0) {
        rq->endpoint = endpoint;
        rq->text = body;
        rq->text_len = len;
        rq->scanned = 1;
        return 0;
    }
    rc = tg_oa_parse(rq, endpoint, body, len, err);
    if (rc == 0 && rq->nmembers > 0) {
        rq->text = body;
        rq->text_len = len;
    }
    return rc;
}


json_t *
tg_oa_body(tg_oa_request_t *rq)
{
    json_error_t  jerr;

    if (rq->body == NULL && rq->scanned) {
        rq->body = tg_json_loadb(rq->text, rq->text_len, &jerr);
        if (rq->body != NULL) {
            (void) json_object_del(rq->body, "thinkgate");
        }
    }
    return rq->body;
}


/* The scanned member named name, or -1. */
static ssize_t
tg__text_find(const tg_oa_request_t *rq, const char *name)
{
    size_t  i, n = strlen(name);

    for (i = 0; i < rq->nmembers; i++) {
        if (rq->members[i].key_len == n
            && memcmp(rq->text + rq->members[i].key, name, n) == 0)
        {
            return (ssize_t) i;
        }
    }
    return -1;
}


int
tg_oa_int(tg_oa_request_t *rq, const char *name, int64_t *out)
{
    ssize_t   i;
    json_t   *v;

    if (rq->scanned) {
        i = tg__text_find(rq, name);
        if (i < 0 || rq->vals[i].type != TG_JV_INT) {
            return 0;
        }
        *out = rq->vals[i].i;
        return 1;
    }
    v = json_object_get(rq->body, name);
    if (!json_is_integer(v)) {
        return 0;
    }
    *out = json_integer_value(v);
    return 1;
}


int
tg_oa_given(tg_oa_request_t *rq, const char *name)
{
    ssize_t   i;
    json_t   *v;

    if (rq->scanned) {
        i = tg__text_find(rq, name);
        return i >= 0 && rq->vals[i].type != TG_JV_NULL
               && rq->text[rq->members[i].val] != 'f';
    }
    v = json_object_get(rq->body, name);
    return v != NULL && !json_is_false(v) && !json_is_null(v);
}


const char *
tg_oa_str(tg_oa_request_t *rq, const char *name, char *buf, size_t size)
{
    const tg_jmember_t  *m;
    ssize_t              i;

    if (rq->scanned) {
        i = tg__text_find(rq, name);
        if (i < 0 || rq->vals[i].type != TG_JV_STRING) {
            return NULL;
        }
        m = &rq->members[i];
        if (!rq->vals[i].esc && m->val_len - 2 < size) {
            memcpy(buf, rq->text + m->val + 1, m->val_len - 2);
            buf[m->val_len - 2] = '\0';
            return buf;
        }
    }
    return json_string_value(json_object_get(tg_oa_body(rq), name));
}
