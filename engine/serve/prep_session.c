/*
 * Session requests: read and lock the session, prepend its history, pin
 * its backend; watch the answer the client receives; store the turn.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/trace.h"
#include "log.h"
#include "serve/prep_int.h"

static void tg__prep_on_session(tg_session_store_t *st, int status,
    const tg_session_t *s, void *data);
static int tg__prep_prepend(tg_prep_t *p, const tg_session_t *s);
static void tg__prep_pin(tg_prep_t *p, const char *backend);
static void tg__prep_fail(tg_prep_t *p, int status, const char *code,
    const char *msg);
static void tg__prep_event(tg_prep_t *p, const char *ev, size_t len);
static void tg__prep_choice_text(tg_prep_t *p, json_t *doc);
static void tg__prep_on_stored(tg_session_store_t *st, int status,
    unsigned turns, unsigned dropped, void *data);
static void tg__prep_beat_start(tg_prep_t *p);
static void tg__prep_on_beat(uv_timer_t *t);
static void tg__prep_beat_closed(uv_handle_t *h);


/* The key of "Bearer KEY" (the scheme in any case, one or more spaces,
 * a key without spaces): 0 with *key and *len, else -1 with *key NULL when
 * there was no header at all. */
static int
tg__prep_bearer(const char *h, const char **key, size_t *len)
{
    const char  *k;
    size_t       n;

    *key = h;
    *len = 0;
    if (h == NULL) {
        return -1;
    }
    if (strncasecmp(h, "Bearer", 6) != 0 || (h[6] != ' ' && h[6] != '\t')) {
        return -1;
    }
    for (k = h + 6; *k == ' ' || *k == '\t'; k++) {
        /* the spaces after the scheme */
    }
    n = strlen(k);
    while (n > 0 && (k[n - 1] == ' ' || k[n - 1] == '\t')) {
        n--;
    }
    if (n == 0 || strcspn(k, " \t") < n) {
        return -1;
    }
    *key = k;
    *len = n;
    return 0;
}


int
tg__prep_session(tg_prep_t *p, const char *id, size_t len,
    tg_oa_error_t *err)
{
    tg_request_t  *r = p->r;
    const char    *auth;
    size_t         alen;
    int            rc;

    if (!tg_session_id_valid(id, len)) {
        tg_oa_error_set(err, 400, "invalid_request_error",
                        "invalid_session_id", "thinkgate.session",
                        "A session id is 1 to 128 of A-Z, a-z, 0-9, _ "
                        "and -.");
        return -EINVAL;
    }
    memcpy(p->id, id, len);
    p->id[len] = '\0';

    /* A session belongs to the API key that created it; only a digest
     * of the key is stored.  Without a key every client would share one
     * owner, and anyone who knows or guesses an id (the README's is
     * "demo1") could read the conversation: sessions need a key.  Only
     * the Bearer scheme names one, so that "Authorization: KEY" is not
     * taken for the owner of "Bearer KEY". */
    auth = r->meta.h_authorization;
    if (tg__prep_bearer(auth, &auth, &alen) != 0) {
        tg_oa_error_set(err, 401, "authentication_error",
                        auth == NULL ? "session_needs_api_key"
                                     : "invalid_authorization",
                        NULL, auth == NULL
                        ? "A session belongs to the API key that created "
                          "it: send \"Authorization: Bearer KEY\"."
                        : "The Authorization header must be \"Bearer "
                          "KEY\".");
        return -EACCES;
    }
    p->session = 1;

    p->st = tg_shared_sessions(p->link);
    if (p->st == NULL) {
        tg_oa_error_set(err, 503, "server_error",
                        "session_store_unavailable", NULL,
                        "session store unavailable: this gateway has no "
                        "Redis (thinkgate_redis).");
        return -ENOTCONN;
    }

    tg_session_owner(auth, alen, p->owner);
    tg_session_token(p->st, p->token);

    /* The turn to store is what the client sent, before the history. */
    p->turn = json_deep_copy(json_object_get(tg_oa_body(&r->oa),
                                             "messages"));
    if (p->turn == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }

    rc = tg_session_get(p->st, p->id, p->owner, p->token,
                        tg__prep_on_session, p, &p->session_op);
    if (rc == -ENOTCONN) {
        tg_oa_error_set(err, 503, "server_error",
                        "session_store_unavailable", NULL,
                        "session store unavailable: Redis is not "
                        "connected.");
        return rc;
    }
    if (rc != 0) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "session read: %s",
                        strerror(-rc));
        return rc;
    }
    return 0;
}


static void
tg__prep_on_session(tg_session_store_t *st, int status,
    const tg_session_t *s, void *data)
{
    tg_prep_t  *p = data;
    char        msg[400];

    (void) st;
    p->session_op = NULL;

    switch (status) {

    case 0:
        break;

    case -ECANCELED:
        return;                 /* the engine is stopping */

    case -EACCES:
        snprintf(msg, sizeof(msg), "No session \"%s\" for this API key.",
                 p->id);
        tg__prep_fail(p, 404, "session_not_found", msg);
        return;

    case -EBUSY:
        snprintf(msg, sizeof(msg), "Session \"%s\" is busy with another "
                 "request; retry when it has been answered.", p->id);
        tg__prep_fail(p, 409, "session_busy", msg);
        return;

    default:
        snprintf(msg, sizeof(msg), "session store unavailable: %s",
                 strerror(-status));
        tg__prep_fail(p, 503, "session_store_unavailable", msg);
        return;
    }

    p->locked = 1;
    p->turns = s->turns;
    p->dropped = s->dropped;
    tg__prep_beat_start(p);

    /* The stored history counts against the location's body limit as if
     * the client had sent it: a session must not grow the prompt past
     * what thinkgate_max_body allows (issue 14, bug 7). */
    if ((uint64_t) s->history_len + p->r->body_len > p->r->max_body) {
        snprintf(msg, sizeof(msg), "Session \"%s\" holds %zu bytes of "
                 "history; with this request that exceeds this endpoint's "
                 "limit of %llu bytes. Start a new session.", p->id,
                 s->history_len, (unsigned long long) p->r->max_body);
        tg__prep_fail(p, 413, "session_too_large", msg);
        return;
    }

    if (tg__prep_prepend(p, s) != 0) {
        tg__prep_fail(p, 503, "session_store_unavailable",
                      "session store unavailable: the stored history "
                      "cannot be read.");
        return;
    }
    tg__prep_pin(p, s->backend);

    tg_log_debug("request %llu: session %s, %u turns stored%s%s",
                 (unsigned long long) p->r->id, p->id, s->turns,
                 s->backend[0] ? ", pinned to " : "", s->backend);

    tg__prep_route(p);
}


/* History first, then the messages of this request. */
static int
tg__prep_prepend(tg_prep_t *p, const tg_session_t *s)
{
    json_t        *hist, *msgs, *body;
    json_error_t   jerr;

    hist = json_loadb(s->history, s->history_len, 0, &jerr);
    if (!json_is_array(hist)) {
        tg_log_error("session %s: stored history is not a JSON array: %s",
                     p->id, hist ? "wrong type" : jerr.text);
        json_decref(hist);
        return -EINVAL;
    }
    if (json_array_size(hist) == 0) {
        json_decref(hist);
        return 0;
    }
    body = tg_oa_body(&p->r->oa);
    if (body == NULL) {
        json_decref(hist);
        return -ENOMEM;
    }
    tg_oa_body_changed(&p->r->oa);
    msgs = json_object_get(body, "messages");
    if (json_array_extend(hist, msgs) != 0
        || json_object_set_new(body, "messages", hist) != 0)
    {
        return -ENOMEM;         /* set_new took hist in any case */
    }
    return 0;
}


/* The session's backend, if this pool still has it and it has a slot. */
static void
tg__prep_pin(tg_prep_t *p, const char *backend)
{
    tg_backend_t  *b;
    size_t         i;

    if (p->pool == NULL || backend == NULL || backend[0] == '\0') {
        return;
    }
    for (i = 0; i < p->pool->nbackends; i++) {
        b = p->pool->backends[i];
        if (strcmp(b->name, backend) != 0) {
            continue;
        }
        if (b->max_inflight == 0
            || b->stats->in_flight < (uint64_t) b->max_inflight)
        {
            p->r->prefer = b;
            p->routed_by = "session";
        }
        return;
    }
}


static void
tg__prep_fail(tg_prep_t *p, int status, const char *code, const char *msg)
{
    tg_oa_error_t  err;

    tg_oa_error_set(&err, status, NULL, code, NULL, "%s", msg);
    tg_request_error(p->r, &err);
}


/*
 * The answer, as the client receives it: choice 0's content (chat) or
 * text (completions) from each SSE event; when not streamed, the host
 * gives the same text to tg_prep_store.  Watching the output keeps this
 * independent of how the strategy composed the answer.
 */
void
tg_prep_output(tg_request_t *r, const char *data, size_t n)
{
    tg_prep_t   *p = r->prep;
    const char  *s, *end;
    size_t       len;

    if (p == NULL || !p->locked || p->tap_failed || r->status >= 400
        || !r->oa.stream)
    {
        return;                 /* not streamed: tg_prep_store's answer */
    }
    if (tg_buf_size(&p->pending) + n > TG_PREP_MAX_ANSWER
        || tg_buf_append(&p->pending, data, n) != 0)
    {
        p->tap_failed = 1;
        tg_buf_free(&p->pending);
        return;
    }
    for ( ;; ) {
        s = tg_buf_ptr(&p->pending);
        len = tg_buf_size(&p->pending);
        end = memmem(s, len, "\n\n", 2);
        if (end == NULL) {
            return;
        }
        tg__prep_event(p, s, (size_t) (end - s));
        tg_buf_consume(&p->pending, (size_t) (end - s) + 2);
    }
}


static void
tg__prep_event(tg_prep_t *p, const char *ev, size_t len)
{
    json_t       *doc;
    const char   *line, *nl, *e = ev + len;

    for (line = ev; line < e; line = nl + 1) {
        nl = memchr(line, '\n', (size_t) (e - line));
        if (nl == NULL) {
            nl = e;
        }
        if ((size_t) (nl - line) < 5 || memcmp(line, "data:", 5) != 0) {
            continue;           /* comments (keep-alives), other fields */
        }
        line += 5;
        while (line < nl && *line == ' ') {
            line++;
        }
        if ((size_t) (nl - line) >= 6 && memcmp(line, "[DONE]", 6) == 0) {
            continue;
        }
        doc = json_loadb(line, (size_t) (nl - line), 0, NULL);
        if (doc != NULL) {
            tg__prep_choice_text(p, doc);
            json_decref(doc);
        }
    }
}


static void
tg__prep_choice_text(tg_prep_t *p, json_t *doc)
{
    json_t      *choices, *c, *idx, *v;
    size_t       i;

    choices = json_object_get(doc, "choices");
    json_array_foreach(choices, i, c) {
        idx = json_object_get(c, "index");
        if (idx != NULL && json_integer_value(idx) != 0) {
            continue;
        }
        v = json_object_get(c, "text");
        if (v == NULL) {
            v = json_object_get(json_object_get(c, "delta"), "content");
        }
        if (json_is_string(v)
            && tg_buf_append(&p->answer, json_string_value(v),
                             json_string_length(v)) != 0)
        {
            p->tap_failed = 1;
        }
    }
}


/* The answer is complete: the client's messages and the answer become
 * one turn; the append also releases the lock.  The client's END waits
 * for Redis to confirm it, so that the "thinkgate" object never counts a
 * turn that was lost, and the client's next turn (through any engine)
 * sees this one. */
int
tg_prep_store(tg_request_t *r, const char *answer, size_t len,
    tg_prep_stored_cb cb, void *data)
{
    tg_prep_t     *p = r->prep;
    json_t        *turn, *msg;
    const char    *backend;
    char          *text;
    int            rc;

    if (p == NULL || !p->locked || r->status >= 400) {
        return 1;
    }
    if (answer != NULL && !p->tap_failed
        && tg_buf_append(&p->answer, answer, len) != 0)
    {
        p->tap_failed = 1;
    }
    if (p->tap_failed) {
        tg_log_warn("request %llu: session %s: the answer could not be "
                    "read; the turn is not stored",
                    (unsigned long long) r->id, p->id);
        p->stored = -1;
        p->store_error = "the answer could not be read (over 8 MiB)";
        return 1;               /* tg_prep_close unlocks */
    }

    turn = json_copy(p->turn);
    msg = json_pack("{s:s, s:s#}", "role", "assistant", "content",
                    p->answer.data ? tg_buf_ptr(&p->answer) : "",
                    tg_buf_size(&p->answer));
    text = NULL;
    if (turn != NULL && msg != NULL && json_array_append_new(turn, msg) == 0) {
        text = json_dumps(turn, JSON_COMPACT);
    } else if (turn == NULL) {
        json_decref(msg);
    }
    json_decref(turn);
    if (text == NULL) {
        tg_log_error("request %llu: session %s: out of memory",
                     (unsigned long long) r->id, p->id);
        p->stored = -1;
        p->store_error = "out of memory";
        return 1;
    }

    backend = r->prefer ? r->prefer->name
              : (r->traces && r->traces->backend) ? r->traces->backend->name
              : NULL;
    rc = tg_session_append(p->st, p->id, p->owner, p->token, backend, text,
                           tg__prep_on_stored, p, &p->append_op);
    free(text);
    if (rc != 0) {
        tg_log_error("request %llu: session %s: the turn is not stored: %s",
                     (unsigned long long) r->id, p->id, strerror(-rc));
        p->stored = -1;
        p->store_error = "session store unavailable: the turn was not "
                         "stored";
        return 1;               /* tg_prep_close unlocks */
    }
    /* The append owns the lock now: it releases it, or the store does
     * when the append fails. */
    p->locked = 0;
    p->stored_cb = cb;
    p->stored_data = data;
    return 0;
}


static void
tg__prep_on_stored(tg_session_store_t *st, int status, unsigned turns,
    unsigned dropped, void *data)
{
    tg_prep_t  *p = data;

    (void) st;
    p->append_op = NULL;
    if (status == -ECANCELED) {
        return;                 /* the engine is stopping */
    }
    if (p->beat != NULL) {
        uv_timer_stop(p->beat); /* the lock is released or given up */
    }
    if (status == 0) {
        p->stored = 1;
        p->turns = turns;
        p->dropping = dropped;
    } else if (status == -ETIMEDOUT || status == -ECONNRESET) {
        /* A copy reached Redis, or may have, and no reply came back
         * before write_ms: "not stored" could be false. */
        tg_log_error("request %llu: session %s: the turn may not have "
                     "been stored: %s", (unsigned long long) p->r->id,
                     p->id, strerror(-status));
        p->stored = -2;
        p->dropping = 0;
        p->store_error = "session store did not answer: the turn may or "
                         "may not have been stored (session_turns counts "
                         "it as not stored)";
    } else {
        tg_log_error("request %llu: session %s: the turn is not stored: %s",
                     (unsigned long long) p->r->id, p->id,
                     strerror(-status));
        p->stored = -1;
        p->dropping = 0;
        p->store_error = status == -EACCES
                         ? "the session belongs to another API key: the "
                           "turn was not stored"
                         : "session store unavailable: the turn was not "
                           "stored";
    }
    p->stored_cb(p->r, p->stored_data);
}


/*
 * The lock's heartbeat: the lock's lease is short, so that a dead engine
 * frees the session soon; while this request runs (from the read that
 * took the lock until the append that releases it) the lease is renewed
 * every third of it.
 */
static void
tg__prep_beat_start(tg_prep_t *p)
{
    uint64_t  every = p->st->conf.lease_ms / 3;

    p->beat = malloc(sizeof(*p->beat));
    if (p->beat == NULL) {
        tg_log_error("request %llu: session %s: no memory for the lock's "
                     "heartbeat; the lock lasts one lease",
                     (unsigned long long) p->r->id, p->id);
        return;
    }
    if (uv_timer_init(p->st->redis->loop, p->beat) != 0) {
        free(p->beat);
        p->beat = NULL;
        return;
    }
    p->beat->data = p;
    if (every == 0) {
        every = 1;
    }
    (void) uv_timer_start(p->beat, tg__prep_on_beat, every, every);
}


static void
tg__prep_on_beat(uv_timer_t *t)
{
    tg_prep_t  *p = t->data;
    int         rc;

    if (!p->locked && p->append_op == NULL) {
        return;
    }
    rc = tg_session_refresh(p->st, p->id, p->token);
    if (rc != 0) {
        tg_log_debug("request %llu: session %s: lock heartbeat not sent: "
                     "%s", (unsigned long long) p->r->id, p->id,
                     strerror(-rc));
    }
}


static void
tg__prep_beat_closed(uv_handle_t *h)
{
    free(h);
}


void
tg__prep_session_close(tg_prep_t *p)
{
    if (p->beat != NULL) {
        uv_close((uv_handle_t *) p->beat, tg__prep_beat_closed);
        p->beat = NULL;
    }
    /* A read still on its way may have taken the lock already: releasing
     * with our token is harmless if it did not. */
    if (p->session_op != NULL) {
        tg_session_cancel(p->session_op);
        p->session_op = NULL;
        p->locked = 1;
    }
    if (p->append_op != NULL) {
        tg_session_cancel(p->append_op);    /* the append goes on */
        p->append_op = NULL;
    }
    if (p->locked) {
        (void) tg_session_unlock(p->st, p->id, p->token);
        p->locked = 0;
    }
    json_decref(p->turn);
    tg_buf_free(&p->pending);
    tg_buf_free(&p->answer);
}
