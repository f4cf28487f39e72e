/*
 * What happens between a parsed API request and its strategy's start
 * when the request needs state (DESIGN §6, issue 5):
 *
 *   1. a session (location "thinkgate_session on" and a session id in
 *      the X-Thinkgate-Session header or the body's
 *      "thinkgate": {"session": ID}): the stored conversation is read and
 *      locked, prepended to the request's messages, and its backend
 *      becomes the request's preferred one;
 *   2. prefix routing (pool policy=prefix): the rendered prompt is looked
 *      up in the prefix index and the holder of the longest prefix
 *      becomes the preferred backend, unless it is overloaded (see
 *      tg_prefix_choose); the choice is recorded.
 *
 * Every trace the request starts on a pool that holds its preferred
 * backend goes there while the backend has slots (route/pool.h), so the n
 * traces of a multi-trace request share one prefix cache.
 *
 * After a successful answer the new user messages and the final answer
 * (content, not reasoning, as the client received it) are appended to
 * the session, which releases its lock; any other end releases the lock
 * without appending.
 */

#ifndef TG_SERVE_PREP_H
#define TG_SERVE_PREP_H

#include <jansson.h>

#include "core/request.h"

typedef struct tg_prep_s  tg_prep_t;

/*
 * Runs the steps the request needs, then r->strategy->start (at once
 * when it needs none).  Returns 0 (started, or the steps answer errors
 * themselves), or a negative errno with err filled for the caller to
 * answer (400 bad session id, 503 session store unavailable, ...).
 */
int tg_prep_run(tg_request_t *r, tg_oa_error_t *err);

/* Output bytes of the request (tg_request_data), watched for the answer
 * of a session request. */
void tg_prep_output(tg_request_t *r, const char *p, size_t n);

typedef void (*tg_prep_stored_cb)(tg_request_t *r, void *data);

/*
 * The answer is complete: a session request stores its turn (answer, len
 * bytes: choice 0's text when it is not streamed; NULL when streamed,
 * where the output carried it) and cb follows once Redis confirmed it or the store gave up
 * (retries bounded by the session's write_ms), before the "thinkgate"
 * object is built: tg_prep_summary() then says whether the turn was
 * stored.  Returns 0 when cb follows (not if the request closes first),
 * 1 when there is nothing to wait for (cb is not called).
 */
int tg_prep_store(tg_request_t *r, const char *answer, size_t len,
    tg_prep_stored_cb cb, void *data);

/* The request is closed: pending state operations are cancelled, a
 * session lock still held is released. */
void tg_prep_close(tg_request_t *r);

/*
 * Adds what the steps did to a response's "thinkgate" object (and the
 * END figures): "session", "session_stored" (false: the turn was not
 * stored, "session_error" says why, and "session_turns" counts only
 * the turns stored before), "session_turns", "session_dropped_turns",
 * "routed_by" ("prefix" or "session") and "prefix_blocks".  Nothing when
 * the request took no step.  Returns 0 or -ENOMEM.
 */
int tg_prep_summary(const tg_request_t *r, json_t *obj);

/*
 * Stored responses (/responses, serve/prep_response.c).  A request with
 * previous_response_id reads the chain in tg_prep_run (404 for another
 * API key's or an unknown id, 503 without Redis).  tg_prep_response_store
 * stores an answered response that asked for it (the object and the
 * conversation with answer, len bytes, as the assistant's turn): 0 when
 * cb follows, 1 when there is nothing to wait for.
 * tg_prep_response_summary then adds "response_stored" (and
 * "response_store_error") to the "thinkgate" object.
 * tg_prep_response_get answers GET /responses/{id} itself, or with del
 * set DELETE /responses/{id} (the owner's only, as GET).
 */
int tg_prep_response_store(tg_request_t *r, json_t *resp, const char *answer,
    size_t len, tg_prep_stored_cb cb, void *data);
int tg_prep_response_summary(const tg_request_t *r, json_t *obj);
void tg_prep_response_get(tg_request_t *r, const char *id, size_t len,
    int del);

#endif /* TG_SERVE_PREP_H */
