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
#include <stdint.h>

#include <jansson.h>

#include "openai/chunk.h"
#include "util/jload.h"

/* The most top-level members of a body indexed (tg_oa_request_t). */
#define TG_OA_MEMBERS_MAX  24

/* The longest model name a body read without a tree holds (longer ones
 * go by the tree). */
#define TG_OA_MODEL_MAX    256

/* A top-level member's value as the text's scan read it. */
typedef struct {
    int64_t      i;             /* an integer's value */
    uint8_t      type;          /* TG_JV_* (openai/chunk.h) */
    uint8_t      esc;           /* a string with escapes */
} tg_oa_mval_t;

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
     * among them, and the text (NULL unless the caller keeps it), so that
     * a backend body can be written from the client's own members without
     * copying and dumping the tree.  nmembers 0: not known, or the body
     * changed since (tg_oa_body_changed). */
    const char         *text;
    size_t              text_len;
    size_t              nmembers;
    tg_jmember_t        members[TG_OA_MEMBERS_MAX];

    /* A body read from its text alone (tg_oa_parse_kept): each member's
     * value as the scan saw it, and body NULL until tg_oa_body builds
     * the tree. */
    unsigned            scanned:1;
    tg_oa_mval_t        vals[TG_OA_MEMBERS_MAX];
    char                model_buf[TG_OA_MODEL_MAX];
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

/*
 * tg_oa_parse for a body whose text the caller keeps while rq lives (the
 * request's buffer): the text is rq's, backend bodies are written from
 * its members, and a body the text's scan vouches for is not made a tree
 * at all until something asks for it (tg_oa_body).  Whatever the scan is
 * not sure of goes through tg_oa_parse, so that the verdict and its error
 * never depend on which path ran.
 */
int tg_oa_parse_kept(tg_oa_request_t *rq, int endpoint, const char *body,
    size_t len, tg_oa_error_t *err);

/* The body as a tree ("thinkgate" removed), built from the text on first
 * use; NULL only when memory ran out. */
json_t *tg_oa_body(tg_oa_request_t *rq);

/* Top-level members, from the scan when the body was read without a
 * tree, else from the tree: an integer (1 and *out, else 0); whether a
 * member is given as something other than false or null; a string
 * (NULL when absent or not a string; buf holds a scanned one). */
int tg_oa_int(tg_oa_request_t *rq, const char *name, int64_t *out);
int tg_oa_given(tg_oa_request_t *rq, const char *name);
const char *tg_oa_str(tg_oa_request_t *rq, const char *name, char *buf,
    size_t size);

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
