/*
 * Requests: assembly of REQUEST frames, output under flow control, close.
 */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/request.h"
#include <thinkgate/protocol.h>

#include "core/strategy.h"
#include "core/trace.h"
#include "log.h"
#include "transport/conn.h"
#include "util/jdump.h"

static void tg__request_pace(tg_request_t *r);
static void tg__deadline_cb(uv_timer_t *timer);
static void tg__deadline_closed(uv_handle_t *h);
static void tg__reap_cb(uv_idle_t *idle);
static void tg__request_bad_meta(tg_request_t *r, int rc,
    const json_error_t *jerr);
static void tg__request_fail(tg_request_t *r, int status, const char *fmt,
    const char *what);


/*
 * Freed requests kept for the next ones, with their buffers (each up to
 * TG_REQUEST_SPARE_BUF): a tg_request_t is over 1.5 KB, and its calloc
 * and its four buffers' first growth were the dearest allocations of a
 * small request in core (make callgrind).  Emptied for good by
 * tg_request_spares_free; off under ASan, so that a use after free is
 * caught.
 */
#define TG_REQUEST_SPARES     16
#define TG_REQUEST_SPARE_BUF  (64 * 1024)

static tg_request_t  *tg__request_spares[TG_REQUEST_SPARES];
static size_t         tg__request_nspares;
#if defined(__SANITIZE_ADDRESS__)
static int            tg__request_spares_off = 1;
#else
static int            tg__request_spares_off;
#endif

/* Deadline timers of closed requests, stopped but still initialised, for
 * the next requests' deadlines: a malloc, uv_timer_init, uv_close with its
 * callback and a free per request cost more than the timer's start.
 * Closed for good by tg_request_timers_close (the engine's shutdown);
 * off under ASan as the spares are. */
static uv_timer_t    *tg__deadline_spares[TG_REQUEST_SPARES];
static size_t         tg__deadline_nspares;

/* The buffers a spare keeps. */
#define TG__REQUEST_BUFS(r)                                                  \
    { &(r)->body, &(r)->head, &(r)->out, &(r)->term }


/* A spare, zeroed but for its emptied buffers; NULL when none. */
static tg_request_t *
tg__request_spare(void)
{
    tg_request_t  *r;
    tg_buf_t       keep[4];
    size_t         i;

    if (tg__request_nspares == 0) {
        return NULL;
    }
    r = tg__request_spares[--tg__request_nspares];
    {
        tg_buf_t  *bufs[] = TG__REQUEST_BUFS(r);

        for (i = 0; i < 4; i++) {
            keep[i] = *bufs[i];
        }
        memset(r, 0, sizeof(*r));
        for (i = 0; i < 4; i++) {
            *bufs[i] = keep[i];
            tg_buf_clear(bufs[i]);
        }
    }
    return r;
}


/* Frees r, or keeps it (and its buffers up to their size) as a spare. */
static void
tg__request_release(tg_request_t *r)
{
    tg_buf_t  *bufs[] = TG__REQUEST_BUFS(r);
    size_t     i;
    int        keep;

    keep = !tg__request_spares_off
           && tg__request_nspares < TG_REQUEST_SPARES;
    for (i = 0; i < 4; i++) {
        if (!keep || bufs[i]->cap > TG_REQUEST_SPARE_BUF) {
            tg_buf_free(bufs[i]);
        }
    }
    if (keep) {
        tg__request_spares[tg__request_nspares++] = r;
    } else {
        free(r);
    }
}


void
tg_request_timers_close(void)
{
    tg__request_spares_off = 1;
    while (tg__deadline_nspares > 0) {
        uv_close((uv_handle_t *) tg__deadline_spares[--tg__deadline_nspares],
                 tg__deadline_closed);
    }
}


void
tg_request_spares_free(void)
{
    tg_trace_spares_free();
    tg__request_spares_off = 1;
    while (tg__request_nspares > 0) {
        tg__request_release(tg__request_spares[--tg__request_nspares]);
    }
}


tg_request_t *
tg_request_new(tg_conn_t *conn, uint64_t id)
{
    tg_request_t  *r;

    r = tg__request_spare();
    if (r == NULL) {
        r = calloc(1, sizeof(*r));
    }
    if (r == NULL) {
        return NULL;
    }

    r->engine = conn->engine;
    r->conn = conn;
    r->id = id;
    r->stream.id = id;
    r->gen = conn->gen;
    tg_generation_ref(r->gen);
    r->started_ms = uv_now(conn->engine->loop);
    r->credit = TG_INITIAL_WINDOW;
    r->assembling = 1;

    return r;
}


static tg_request_t *
tg__request_of(tg_stream_t *s)
{
    return (tg_request_t *) (void *) ((char *) s
                                      - offsetof(tg_request_t, stream));
}


/* One frame of the worker's ring for request id f->id; s is its stream
 * when the id is in the connection's table. */
int
tg_request_frame(tg_conn_t *conn, tg_stream_t *s, const tg_frame_view_t *f)
{
    tg_request_t  *r = s != NULL ? tg__request_of(s) : NULL;
    uint32_t       credit;

    switch (f->type) {

    case TG_FRAME_REQUEST:
        if (r == NULL) {
            r = tg_request_new(conn, f->id);
            if (r == NULL) {
                tg_log_error("worker %d: out of memory for a request",
                             (int) conn->peer_pid);
                /* Best effort: without memory, no error body either. */
                return 0;
            }
            tg_conn_adopt(conn, &r->stream);
            return tg_request_feed(r, tg_frame_payload(f), f->len, 1,
                                   f->flags & TG_FRAME_F_MORE);
        }
        if (!r->assembling) {
            tg_log_warn("worker %d: REQUEST for id %llu already in use",
                        (int) conn->peer_pid, (unsigned long long) f->id);
            return 0;
        }
        return tg_request_feed(r, tg_frame_payload(f), f->len, 0,
                               f->flags & TG_FRAME_F_MORE);

    case TG_FRAME_CANCEL:
        if (r != NULL) {
            tg_request_cancel(r);
        }
        return 0;

    case TG_FRAME_WINDOW:
        if (f->len != sizeof(uint32_t)) {
            tg_log_error("worker %d: WINDOW frame of %u bytes",
                         (int) conn->peer_pid, f->len);
            return -EPROTO;
        }
        if (r != NULL) {
            memcpy(&credit, tg_frame_payload(f), sizeof(credit));
            tg_request_window(r, credit);
        }
        return 0;

    default:
        tg_log_warn("worker %d: unknown frame type %u ignored",
                    (int) conn->peer_pid, (unsigned) f->type);
        return 0;
    }
}


void
tg_request_room(tg_stream_t *s)
{
    tg_request_flush(tg__request_of(s));
}


void
tg_request_conn_gone(tg_stream_t *s)
{
    tg_request_close(tg__request_of(s));    /* unlinks s from the table */
}


/*
 * One REQUEST frame.  The first carries uint32_t meta_len, the meta JSON
 * and the start of the body; the following ones only body bytes.  Returns
 * 0; a bad frame is answered with an error and the request ends.
 */
int
tg_request_feed(tg_request_t *r, const uint8_t *p, size_t n, int first,
    int more)
{
    const tg_request_hooks_t  *h = r->engine->request_hooks;
    uint32_t                   meta_len;
    json_error_t               jerr;
    int                        rc;

    if (!r->assembling) {
        return 0;
    }

    if (first) {
        if (n < sizeof(uint32_t)) {
            r->assembling = 0;
            tg__request_fail(r, 500, "%s", "REQUEST frame without meta");
            return 0;
        }
        memcpy(&meta_len, p, sizeof(meta_len));
        if (meta_len > n - sizeof(uint32_t)) {
            r->assembling = 0;
            tg__request_fail(r, 500, "%s", "REQUEST meta longer than frame");
            return 0;
        }

        rc = tg_meta_read(&r->meta, (const char *) p + sizeof(uint32_t),
                          meta_len, &jerr);
        if (rc != 0) {
            r->assembling = 0;
            tg__request_bad_meta(r, rc, &jerr);
            return 0;
        }

        p += sizeof(uint32_t) + meta_len;
        n -= sizeof(uint32_t) + meta_len;
    }

    if (tg_buf_size(&r->body) + n > TG_REQUEST_MAX_BODY) {
        r->assembling = 0;
        tg_buf_free(&r->body);
        tg__request_fail(r, 413, "%s", "request body too large");
        return 0;
    }

    if (n > 0 && tg_buf_append(&r->body, p, n) != 0) {
        r->assembling = 0;
        tg__request_fail(r, 500, "%s", "out of memory");
        return 0;
    }

    if (more) {
        return 0;
    }

    r->assembling = 0;
    if (h != NULL && h->on_ready != NULL) {
        h->on_ready(r);
    }
    return 0;
}


/*
 * The meta carries the client's headers and URI as the module read them:
 * bytes that are not UTF-8 (surrogates encoded in UTF-8, say) are the
 * client's mistake, a 400 in OpenAI's shape; anything else is ours, a 500
 * that keeps the parser's words in the log only (issue 14, bug 4).
 */
static void
tg__request_bad_meta(tg_request_t *r, int rc, const json_error_t *jerr)
{
    tg_oa_error_t  err;

    tg_log_warn("request %llu: REQUEST meta is not a JSON object: %s",
                (unsigned long long) r->id,
                rc == -EINVAL ? jerr->text
                : rc == -EPROTO ? "wrong type" : strerror(-rc));
    if (rc == -EINVAL && json_error_code(jerr) == json_error_invalid_utf8) {
        tg_oa_error_set(&err, 400, "invalid_request_error",
                        "invalid_encoding", NULL,
                        "A request header or the URI is not valid UTF-8.");
    } else {
        tg_oa_error_set(&err, 500, NULL, NULL, NULL,
                        "The gateway could not read the request.");
    }
    tg_request_error(r, &err);
}


static void
tg__request_fail(tg_request_t *r, int status, const char *fmt,
    const char *what)
{
    tg_oa_error_t  err;

    tg_log_warn("request %llu: %s", (unsigned long long) r->id, what);
    tg_oa_error_set(&err, status, NULL, NULL, NULL, fmt, what);
    tg_request_error(r, &err);
}


void
tg_request_window(tg_request_t *r, uint32_t credit)
{
    r->credit += credit;
    tg_request_flush(r);
}


void
tg_request_cancel(tg_request_t *r)
{
    tg_log_debug("request %llu cancelled by the client",
                 (unsigned long long) r->id);

    if (r->strategy != NULL && r->strategy->on_cancel != NULL
        && !r->finished)
    {
        r->strategy->on_cancel(r);
    }

    tg_request_close(r);
}


int
tg_request_head(tg_request_t *r, int status, unsigned flags,
    const char *headers)
{
    tg_head_t  h;

    if (r->closed || r->finished || r->head_pending || r->head_sent) {
        return -EPIPE;
    }

    h.status = (uint32_t) status;
    h.flags = flags;
    r->status = status;

    if (tg_buf_append(&r->head, &h, sizeof(h)) != 0
        || (headers && tg_buf_append(&r->head, headers, strlen(headers))))
    {
        tg_buf_free(&r->head);
        return -ENOMEM;
    }

    r->head_pending = 1;
    tg_request_flush(r);
    return 0;
}


int
tg_request_data(tg_request_t *r, const void *p, size_t n)
{
    const tg_request_hooks_t  *h = r->engine->request_hooks;

    if (r->closed || r->finished) {
        return -EPIPE;
    }

    if (n == 0) {
        return 0;
    }

    if (h != NULL && h->on_output != NULL) {
        h->on_output(r, p, n);
    }

    if (tg_buf_append(&r->out, p, n) != 0) {
        return -ENOMEM;
    }

    tg_request_flush(r);
    return 0;
}


static void
tg__request_count_end(tg_request_t *r, int failed)
{
    tg_engine_t  *e = r->engine;

    if (!r->counted) {
        return;
    }
    r->counted = 0;
    e->requests_in_flight--;
    if (failed || r->status >= 400) {
        e->requests_errors++;
    }
}


/* END's payload (protocol.h): one "NAME=VALUE\n" line per member, names
 * in [a-z0-9_] (other bytes become '_'), numbers as decimal text, strings
 * as they are with line breaks blanked, structured values as compact
 * JSON, so that the worker needs no JSON parser. */
static int
tg__request_figures(tg_buf_t *b, json_t *figures)
{
    const char  *key, *k, *p;
    json_t      *v;
    size_t       from, i;
    int          rc = 0;

    json_object_foreach(figures, key, v) {
        for (k = key; *k != '\0' && rc == 0; k++) {
            char  ch = (char) ((*k >= 'a' && *k <= 'z')
                               || (*k >= '0' && *k <= '9') ? *k
                               : (*k >= 'A' && *k <= 'Z') ? *k - 'A' + 'a'
                               : '_');

            rc = tg_buf_append(b, &ch, 1);
        }
        if (rc == 0) {
            rc = tg_buf_append(b, "=", 1);
        }
        if (rc != 0) {
            return rc;
        }

        /* The value goes straight into b, its line breaks blanked there;
         * a string ends at a NUL it may hold, as a C string would. */
        from = tg_buf_size(b);
        switch (json_typeof(v)) {
        case JSON_STRING:
            p = json_string_value(v);
            rc = tg_buf_append(b, p, strnlen(p, json_string_length(v)));
            break;
        case JSON_NULL:
            break;
        default:
            rc = tg_json_dump(b, v);
            break;
        }
        if (rc != 0) {
            return -ENOMEM;
        }
        for (i = from; i < tg_buf_size(b); i++) {
            if (tg_buf_ptr(b)[i] == '\n' || tg_buf_ptr(b)[i] == '\r') {
                tg_buf_ptr(b)[i] = ' ';
            }
        }
        rc = tg_buf_append(b, "\n", 1);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}


int
tg_request_end(tg_request_t *r, json_t *figures)
{

    if (r->closed || r->finished) {
        json_decref(figures);
        return -EPIPE;
    }

    /* END before HEAD is a protocol error (protocol.h): a strategy that
     * finishes without answering anything gets an error instead. */
    if (!r->head_sent && !r->head_pending) {
        tg_oa_error_t  err;

        json_decref(figures);
        tg_log_error("request %llu: strategy %s finished without a "
                     "response", (unsigned long long) r->id,
                     r->strategy ? r->strategy->name : "?");
        tg_oa_error_set(&err, 502, "server_error", "no_answer", NULL,
                        "The strategy produced no answer.");
        return tg_request_error(r, &err);
    }

    r->finished = 1;
    r->term_type = TG_FRAME_END;
    if (figures != NULL && tg__request_figures(&r->term, figures) != 0) {
        /* The response stands without its log figures. */
        tg_buf_free(&r->term);
    }
    json_decref(figures);

    tg__request_count_end(r, 0);
    tg_request_flush(r);
    return 0;
}


int
tg_request_end_text(tg_request_t *r, const char *figures, size_t n)
{
    if (!r->closed && !r->finished && (r->head_sent || r->head_pending)
        && tg_buf_append(&r->term, figures, n) != 0)
    {
        /* The response stands without its log figures. */
        tg_buf_free(&r->term);
    }
    return tg_request_end(r, NULL);
}


int
tg_request_error(tg_request_t *r, const tg_oa_error_t *err)
{
    tg_head_t   h;
    char       *s;

    if (r->closed || r->finished) {
        return -EPIPE;
    }

    s = tg_oa_error_render(err);

    h.status = (uint32_t) err->status;
    h.flags = 0;
    if (!r->head_sent && !r->head_pending) {
        r->status = err->status;
    }

    r->finished = 1;
    r->term_type = TG_FRAME_ERROR;
    if (tg_buf_append(&r->term, &h, sizeof(h)) != 0
        || (s && tg_buf_append(&r->term, s, strlen(s)) != 0))
    {
        /* The worker still gets the status. */
        tg_buf_free(&r->term);
        (void) tg_buf_append(&r->term, &h, sizeof(h));
    }
    free(s);

    tg_log_debug("request %llu: error %d: %s", (unsigned long long) r->id,
                 err->status, err->message);

    tg__request_count_end(r, 1);
    tg_request_flush(r);
    return 0;
}


int
tg_request_reply(tg_request_t *r, int status, const char *content_type,
    const char *body, size_t len)
{
    char  hdr[256];
    int   rc;

    snprintf(hdr, sizeof(hdr), "Content-Type: %s\r\n", content_type);

    rc = tg_request_head(r, status, 0, hdr);
    if (rc == 0) {
        rc = tg_request_data(r, body, len);
    }
    if (rc == 0) {
        rc = tg_request_end(r, NULL);
    }
    return rc;
}


int
tg_request_json(tg_request_t *r, int status, json_t *doc)
{
    char  *s;
    int    rc;

    s = tg_json_dumps(doc);
    json_decref(doc);
    if (s == NULL) {
        return -ENOMEM;
    }

    rc = tg_request_reply(r, status, "application/json", s, strlen(s));
    free(s);
    return rc;
}


/*
 * Writes pending frames in order: HEAD, DATA within credit, then END or
 * ERROR once all data went out.  Stops at the first -EAGAIN (the request
 * then waits in the connection's blocked queue for a doorbell).
 */
void
tg_request_flush(tg_request_t *r)
{
    tg_conn_t  *c = r->conn;
    size_t      n;
    int         rc;

    if (r->closed || c == NULL || r->done || r->stream.blocked) {
        return;
    }

    if (r->head_pending) {
        rc = tg_conn_write(c, TG_FRAME_HEAD, 0, r->id, tg_buf_ptr(&r->head),
                           tg_buf_size(&r->head), NULL, 0);
        if (rc == -EAGAIN) {
            tg_conn_block(c, &r->stream);
            goto pace;
        }
        if (rc != 0) {
            goto broken;
        }
        r->head_pending = 0;
        r->head_sent = 1;
        /* emptied, not freed: a spare request keeps the storage */
        tg_buf_clear(&r->head);
    }

    while (tg_buf_size(&r->out) > 0) {
        n = tg_buf_size(&r->out);
        if (n > c->max_payload) {
            n = c->max_payload;
        }
        if (n > r->credit) {
            n = (size_t) r->credit;
        }
        if (n == 0) {
            /* Out of credit: a WINDOW frame resumes us. */
            goto pace;
        }

        rc = tg_conn_write(c, TG_FRAME_DATA, 0, r->id, tg_buf_ptr(&r->out),
                           n, NULL, 0);
        if (rc == -EAGAIN) {
            tg_conn_block(c, &r->stream);
            goto pace;
        }
        if (rc != 0) {
            goto broken;
        }

        tg_buf_consume(&r->out, n);
        r->credit -= n;
    }

    if (r->finished) {
        rc = tg_conn_write(c, r->term_type, 0, r->id, tg_buf_ptr(&r->term),
                           tg_buf_size(&r->term), NULL, 0);
        if (rc == -EAGAIN) {
            tg_conn_block(c, &r->stream);
            return;
        }
        if (rc != 0) {
            goto broken;
        }

        r->done = 1;
        tg_request_close(r);
        return;
    }

pace:
    tg__request_pace(r);
    return;

broken:
    tg_log_error("request %llu: cannot write to worker: %s",
                 (unsigned long long) r->id, strerror(-rc));
    tg_request_close(r);
}


/* Pauses the traces while too much output waits, resumes them once it
 * drained enough. */
static void
tg__request_pace(tg_request_t *r)
{
    tg_trace_t  *t;
    size_t       pending = tg_buf_size(&r->out);

    if (!r->paused && pending > TG_REQUEST_HIGH_WATER) {
        r->paused = 1;
    } else if (r->paused && pending < TG_REQUEST_LOW_WATER) {
        r->paused = 0;
    } else {
        return;
    }

    tg_log_debug("request %llu: %s traces (%zu bytes pending, credit %llu)",
                 (unsigned long long) r->id,
                 r->paused ? "pausing" : "resuming", pending,
                 (unsigned long long) r->credit);

    for (t = r->traces; t != NULL; t = t->next) {
        tg_trace_pause(t, r->paused);
    }
}


int
tg_request_deadline_start(tg_request_t *r)
{
    uint64_t  now, left;

    if (r->deadline_ms <= 0 || r->deadline != NULL) {
        return 0;
    }

    if (tg__deadline_nspares > 0
        && tg__deadline_spares[tg__deadline_nspares - 1]->loop
           == r->engine->loop)
    {
        r->deadline = tg__deadline_spares[--tg__deadline_nspares];
    } else {
        r->deadline = malloc(sizeof(uv_timer_t));
        if (r->deadline == NULL
            || uv_timer_init(r->engine->loop, r->deadline) != 0)
        {
            free(r->deadline);
            r->deadline = NULL;
            return -ENOMEM;
        }
    }
    r->deadline->data = r;

    now = uv_now(r->engine->loop);
    left = now - r->started_ms >= (uint64_t) r->deadline_ms
           ? 0 : (uint64_t) r->deadline_ms - (now - r->started_ms);

    (void) uv_timer_start(r->deadline, tg__deadline_cb, left, 0);
    return 0;
}


/*
 * thinkgate_deadline passed (issue 14, bug 6): thinkgate_timeout only
 * bounds silence, so a backend dripping a byte now and then could hold a
 * request for ever.  The strategy stops, every backend transfer closes
 * now, and the client gets 504 deadline_exceeded: a JSON error when
 * nothing was sent yet, an SSE error event ending a stream that began.
 */
static void
tg__deadline_cb(uv_timer_t *timer)
{
    tg_request_t   *r = timer->data;
    tg_trace_t     *t;
    tg_oa_error_t   err;

    if (r == NULL || r->closed || r->finished) {
        return;
    }

    tg_log_warn("request %llu: deadline of %lld ms passed, %u trace(s) "
                "running", (unsigned long long) r->id,
                (long long) r->deadline_ms, r->traces_running);

    if (r->strategy != NULL && r->strategy->on_deadline != NULL) {
        r->strategy->on_deadline(r);
    }

    /* Traces a strategy does not know of (none today) stop too. */
    for (t = r->traces; t != NULL; t = t->next) {
        tg_trace_cancel(t);
    }

    if (r->closed || r->finished) {
        return;
    }

    tg_oa_error_set(&err, 504, "timeout_error", "deadline_exceeded", NULL,
                    "The request did not finish within its deadline of "
                    "%lld ms (thinkgate_deadline).",
                    (long long) r->deadline_ms);
    (void) tg_request_error(r, &err);
}


static void
tg__deadline_closed(uv_handle_t *h)
{
    free(h);
}


void
tg_request_close(tg_request_t *r)
{
    tg_engine_t               *e = r->engine;
    const tg_request_hooks_t  *h = e->request_hooks;
    tg_trace_t                *t;

    if (r->closed) {
        return;
    }
    r->closed = 1;

    if (r->deadline != NULL) {
        r->deadline->data = NULL;
        if (!tg__request_spares_off
            && tg__deadline_nspares < TG_REQUEST_SPARES)
        {
            (void) uv_timer_stop(r->deadline);
            tg__deadline_spares[tg__deadline_nspares++] = r->deadline;
        } else {
            uv_close((uv_handle_t *) r->deadline, tg__deadline_closed);
        }
        r->deadline = NULL;
    }

    /* serve charges what the GPUs spent so far to the client's key, what
     * the traces cancelled here cost included. */
    if (h != NULL && h->on_close != NULL) {
        h->on_close(r);
    }

    for (t = r->traces; t != NULL; t = t->next) {
        tg_trace_cancel(t);
    }

    if (h != NULL && h->on_closed != NULL) {
        h->on_closed(r);
    }

    /* The strategy releases strategy_data itself: it may have to wait
     * until its own callback, still on the stack, returns. */
    if (r->strategy != NULL && r->strategy->destroy != NULL) {
        r->strategy->destroy(r);
    }

    /* A request that leaves without END or ERROR (client cancel, worker
     * gone) still leaves the in-flight count. */
    tg__request_count_end(r, 0);

    if (r->conn != NULL) {
        tg_conn_forget(r->conn, &r->stream);
        r->conn = NULL;
    }

    r->reap_next = e->reap;
    e->reap = r;
    if (!uv_is_active((uv_handle_t *) &e->reaper)) {
        (void) uv_idle_start(&e->reaper, tg__reap_cb);
    }
}


static void
tg__reap_cb(uv_idle_t *idle)
{
    tg_engine_t  *e = idle->data;

    (void) uv_idle_stop(idle);
    tg_request_reap(e);
}


void
tg_request_reap(tg_engine_t *e)
{
    const tg_request_hooks_t  *h = e->request_hooks;
    tg_request_t              *r, *next;
    tg_trace_t                *t, *tn;

    for (r = e->reap, e->reap = NULL; r != NULL; r = next) {
        next = r->reap_next;

        for (t = r->traces; t != NULL; t = tn) {
            tn = t->next;
            tg_trace_free(t);
        }

        if (h != NULL && h->on_free != NULL) {
            h->on_free(r);
        }
        tg_meta_free(&r->meta);
        tg_oa_request_free(&r->oa);
        tg_generation_release(r->gen);
        tg__request_release(r);
    }
}
