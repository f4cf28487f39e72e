/*
 * The Responses API (POST /responses, GET /responses/{id}) on top of
 * chat completions.
 *
 * A Responses request is translated once, at parse time, into the chat
 * completions body every layer below already understands: "input" (a
 * string, or message items with input_text parts) and "instructions"
 * become messages, "reasoning.effort" becomes "reasoning_effort" (the
 * effort machinery of core/effort.h), "max_output_tokens" becomes
 * "max_completion_tokens" (thinking and answer, as OpenAI counts both).
 * Backends are therefore spoken to with chat completions, and every
 * strategy works unchanged; only the output is rendered differently: a
 * "response" object, or the Responses stream events
 * (response.created ... response.completed), built here.
 *
 * What the gateway cannot do (tools, images, files, background mode,
 * structured output) is refused with a 400 that says so and names the
 * parameter, never silently ignored.
 */

#ifndef TG_OPENAI_RESPONSES_H
#define TG_OPENAI_RESPONSES_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "openai/request.h"
#include "util/buf.h"

#define TG_OA_RESPONSE_ID_MAX  64

/* What a Responses request asked beyond its chat translation. */
struct tg_oa_responses_s {
    json_t      *echo;          /* the request fields the response object
                                   repeats (instructions, reasoning, ...) */
    json_t      *input;         /* this turn's messages, chat-shaped,
                                   without the instructions */
    json_t      *history;       /* the chain's messages before this turn
                                   (tg_oa_responses_chain), else NULL */
    char        *previous;      /* previous_response_id or NULL */
    int          store;         /* "store" (default true) */
    int          summary;       /* "reasoning": {"summary"} was asked */
};

/* The Responses stream of one request. */
typedef struct {
    uint64_t     seq;           /* the next sequence_number */
    int          reasoning_at;  /* output_index of the reasoning item, -1 */
    int          message_at;    /* output_index of the message, -1 */
    int          noutput;
    unsigned     begun:1;       /* response.created went out */
    unsigned     reasoning_open:1;
    unsigned     message_open:1;
    tg_buf_t     reasoning;     /* the text so far, for the done events
                                   and the final response object */
    tg_buf_t     content;
} tg_oa_resp_stream_t;

/*
 * Parses and validates a Responses body into rq: rq->body is its chat
 * completions translation (rq->endpoint TG_OA_CHAT) and rq->responses
 * what else it asked.  Returns as tg_oa_parse().
 */
int tg_oa_responses_parse(tg_oa_request_t *rq, const char *body, size_t len,
    tg_oa_error_t *err);

void tg_oa_responses_free(tg_oa_responses_t *rs);

/* Puts the chain's stored messages (a JSON array; stolen) before this
 * turn's, after the instructions.  0 or -ENOMEM. */
int tg_oa_responses_chain(tg_oa_request_t *rq, json_t *history);

/* A new response id, "resp_" and 32 random hex digits. */
void tg_oa_response_id(char id[TG_OA_RESPONSE_ID_MAX]);

/* The id of GET /responses/{id}: 1 with id and len set when uri (n
 * bytes) is one, else 0. */
int tg_oa_response_get_id(const char *uri, size_t n, const char **id,
    size_t *len);

/* 1 when id looks like a response id: [A-Za-z0-9_-]{1,63}. */
int tg_oa_response_id_valid(const char *id, size_t len);

/*
 * The response object: status "in_progress" and no output yet, or, with
 * done set, the output items of reasoning and content, the usage (the
 * chat usage object translated; NULL: none) and the status finish gives
 * ("length" is "incomplete" for max_output_tokens).  NULL when out of
 * memory.
 */
json_t *tg_oa_response_object(const tg_oa_responses_t *rs, const char *id,
    int64_t created, const char *model, int done, const char *reasoning,
    size_t rlen, const char *content, size_t clen, const char *finish,
    json_t *chat_usage);

/* The Responses usage object of a chat usage object. */
json_t *tg_oa_response_usage(json_t *chat_usage);

/*
 * The stream, as SSE events appended to out: begin (response.created and
 * response.in_progress, with the in-progress object, stolen), delta
 * (reasoning and answer text; the items and parts open as text arrives),
 * end (every open part and item done, then response.completed with the
 * final object, stolen).  Each returns 0 or -ENOMEM.
 */
int tg_oa_resp_stream_begin(tg_oa_resp_stream_t *st, tg_buf_t *out,
    json_t *resp);
int tg_oa_resp_stream_delta(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const tg_oa_responses_t *rs, const char *id, const char *rtext,
    size_t rlen, const char *ctext, size_t clen);
int tg_oa_resp_stream_end(tg_oa_resp_stream_t *st, tg_buf_t *out,
    const tg_oa_responses_t *rs, const char *id, json_t *resp);
void tg_oa_resp_stream_free(tg_oa_resp_stream_t *st);

#endif /* TG_OPENAI_RESPONSES_H */
