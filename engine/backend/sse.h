/*
 * thinkgate SSE parser: text/event-stream as in the WHATWG HTML spec,
 * section "Server-sent events", interpretation of the event stream.
 *
 * Lines end in "\n", "\r\n" or "\r" (a "\r\n" split across two feeds counts
 * as one line end).  A leading UTF-8 BOM is skipped.  "data:" lines of one
 * event are joined with "\n"; "event:" sets the event name; "id:" and
 * "retry:" are accepted and ignored; lines starting with ":" are comments;
 * a single space after the colon is removed; a blank line dispatches the
 * event if it has data (an event without any data line is dropped, as the
 * spec says).  Input may be split anywhere.
 */

#ifndef TG_BACKEND_SSE_H
#define TG_BACKEND_SSE_H

#include <stddef.h>

/* Default cap on one event (its data) and on one line. */
#define TG_SSE_MAX_EVENT  ((size_t) 16 << 20)

/* event: the event name, "message" when the event had no "event:" line.
 * payload: the joined data lines, NUL-terminated (len excludes the NUL).
 * Both live only during the call. */
typedef void (*tg_sse_event_cb)(void *data, const char *event,
                                const char *payload, size_t len);

/* Embedded by callers; fields are private except max_event. */
typedef struct tg_sse_s {
    tg_sse_event_cb on_event;
    void           *data;
    size_t          max_event;  /* cap on data and on one line; the caller
                                   may lower or raise it after tg_sse_init */

    char           *line;       /* partial line carried across feeds */
    size_t          line_len, line_cap;
    char           *buf;        /* data buffer of the event being read */
    size_t          buf_len, buf_cap;
    char           *event;      /* event name buffer, NUL-terminated */
    size_t          event_len, event_cap;

    unsigned        skip_lf:1;  /* last byte seen was "\r": drop one "\n" */
    unsigned        started:1;  /* past the optional BOM */
    unsigned        has_data:1; /* the event got at least one data line */
    int             error;      /* sticky: once set, every feed returns it */
} tg_sse_t;

void tg_sse_init(tg_sse_t *s, tg_sse_event_cb on_event, void *data);

/* Parses n bytes, calling on_event for each complete event, in order.
 * Returns 0, -ENOMEM, or -E2BIG when one event or one line exceeds
 * max_event.  After an error the parser stays failed (every later feed
 * returns the same code); tg_sse_free it.  on_event may not free s. */
int tg_sse_feed(tg_sse_t *s, const char *p, size_t n);

/* Releases the buffers; s may be tg_sse_init'ed again afterwards. */
void tg_sse_free(tg_sse_t *s);

#endif /* TG_BACKEND_SSE_H */
