/*
 * The OpenAI request model: endpoint mapping, parsing and validation of
 * request bodies, OpenAI-shaped error documents.
 *
 * A body is parsed once here; what the strategies and the backend client
 * see afterwards is the validated jansson document.  Validation names the
 * offending parameter the way the OpenAI API does ("messages[2].role"),
 * so that SDK users see which field to fix.
 */

#ifndef TG_OPENAI_REQUEST_H
#define TG_OPENAI_REQUEST_H

#include <stddef.h>

#include <jansson.h>

#include "util/jload.h"

/* The most top-level members of a body indexed (tg_oa_request_t). */
#define TG_OA_MEMBERS_MAX  24

enum {
    TG_OA_UNKNOWN = 0,
    TG_OA_CHAT,             /* /chat/completions */
    TG_OA_COMPLETIONS,      /* /completions */
    TG_OA_MODELS,           /* /models */
    TG_OA_EMBEDDINGS,       /* /embeddings: aux requests only, never a
                               client's endpoint */
    TG_OA_RESPONSES,        /* POST /responses (openai/responses.h),
                               parsed into a chat request */
    TG_OA_RESPONSE_GET      /* GET /responses/{id} */
};

typedef struct tg_oa_responses_s  tg_oa_responses_t;

/* An OpenAI-shaped error, ready to render. */
typedef struct {
    int          status;        /* HTTP status */
    const char  *type;          /* "invalid_request_error", ... */
    char         code[64];      /* a short machine code; "" renders as
                                   null (a copy: a backend's own code
                                   outlives its reply) */
    char         param[96];     /* "" renders as null */
    char         message[768];
} tg_oa_error_t;

typedef struct {
    int          endpoint;      /* TG_OA_CHAT or TG_OA_COMPLETIONS */
    json_t      *body;          /* the request, "thinkgate" removed; owned */
    json_t      *thinkgate;     /* the removed "thinkgate" object or NULL;
                                   owned; reserved for strategies */
    int          stream;        /* "stream": true */
    const char  *model;         /* the client's model or NULL; in body */
    tg_oa_responses_t  *responses;  /* a /responses request (endpoint is
                                       then TG_OA_CHAT), else NULL; owned */

    /* Where the body's top-level members are in its text, "thinkgate"
     * among them, and the text (NULL until tg_oa_body_keep), so that a
     * backend body can be written from the client's own members without
     * copying and dumping the tree.  nmembers 0: not known, or the body
     * changed since (tg_oa_body_changed). */
    const char         *text;
    size_t              nmembers;
    tg_jmember_t        members[TG_OA_MEMBERS_MAX];
} tg_oa_request_t;

/* Maps a request URI (without arguments) to an endpoint: it ends in
 * /v1/chat/completions, /v1/completions or /v1/models (one trailing
 * slash tolerated), whatever prefix comes before /v1. */
int tg_oa_endpoint(const char *uri, size_t len);

/* Returns the endpoint's path as sent to backends ("/chat/completions"). */
const char *tg_oa_endpoint_path(int endpoint);

/*
 * Parses and validates a chat or completions body.  Returns 0 and fills
 * rq, or -EINVAL with err filled (status 400), or -ENOMEM (err filled,
 * status 500).
 */
int tg_oa_parse(tg_oa_request_t *rq, int endpoint, const char *body,
    size_t len, tg_oa_error_t *err);

void tg_oa_request_free(tg_oa_request_t *rq);

/* Gives rq the text it was parsed from (the same bytes, in a buffer the
 * caller keeps while rq lives), so that backend bodies can be written
 * from it; nothing when its members are not known. */
void tg_oa_body_keep(tg_oa_request_t *rq, const char *text);

/* Says that rq->body no longer matches its text: whoever changes the
 * tree calls it. */
void tg_oa_body_changed(tg_oa_request_t *rq);

/* Fills an error; param may be NULL. */
void tg_oa_error_set(tg_oa_error_t *err, int status, const char *type,
    const char *code, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

/* Renders {"error": {"message", "type", "param", "code"}}; malloc'ed, or
 * NULL when out of memory. */
char *tg_oa_error_render(const tg_oa_error_t *err);

/* The error type OpenAI uses for a status ("invalid_request_error",
 * "rate_limit_error", "server_error", ...). */
const char *tg_oa_error_type(int status);

#endif /* TG_OPENAI_REQUEST_H */
