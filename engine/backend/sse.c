/*
 * thinkgate SSE parser; see sse.h for the contract.
 *
 * Complete lines inside one feed are parsed in place; only a line split
 * across feeds is copied into s->line.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"

static int tg__sse_reserve(tg_sse_t *s, char **buf, size_t *cap,
    size_t need);
static int tg__sse_line(tg_sse_t *s, const char *p, size_t n);
static int tg__sse_dispatch(tg_sse_t *s);


void
tg_sse_init(tg_sse_t *s, tg_sse_event_cb on_event, void *data)
{
    memset(s, 0, sizeof(*s));
    s->on_event = on_event;
    s->data = data;
    s->max_event = TG_SSE_MAX_EVENT;
}


void
tg_sse_free(tg_sse_t *s)
{
    free(s->line);
    free(s->buf);
    free(s->event);
    s->line = s->buf = s->event = NULL;
    s->line_len = s->line_cap = s->buf_len = s->buf_cap = 0;
    s->event_len = s->event_cap = 0;
}


/* Grows *buf to hold need bytes (plus the NUL the callers keep). */
static int
tg__sse_reserve(tg_sse_t *s, char **buf, size_t *cap, size_t need)
{
    size_t  ncap;
    char   *nbuf;

    if (need > s->max_event) {
        return -E2BIG;
    }
    if (need + 1 <= *cap) {
        return 0;
    }
    ncap = *cap ? *cap : 256;
    while (ncap < need + 1) {
        ncap *= 2;
    }
    nbuf = realloc(*buf, ncap);
    if (nbuf == NULL) {
        return -ENOMEM;
    }
    *buf = nbuf;
    *cap = ncap;
    return 0;
}


int
tg_sse_feed(tg_sse_t *s, const char *p, size_t n)
{
    const char  *end = p + n, *eol;
    int          rc;

    if (s->error) {
        return s->error;
    }

    while (p < end) {
        if (s->skip_lf) {
            s->skip_lf = 0;
            if (*p == '\n') {
                p++;
                continue;
            }
        }

        /* Find the next "\r" or "\n"; memchr twice beats a byte loop on
         * the long data lines that LLM streams send. */
        eol = memchr(p, '\n', end - p);
        {
            const char *cr = memchr(p, '\r', (eol ? eol : end) - p);
            if (cr != NULL) {
                eol = cr;
            }
        }

        if (eol == NULL) {
            /* An incomplete line: keep it for the next feed. */
            rc = tg__sse_reserve(s, &s->line, &s->line_cap,
                                 s->line_len + (end - p));
            if (rc != 0) {
                goto failed;
            }
            memcpy(s->line + s->line_len, p, end - p);
            s->line_len += end - p;
            break;
        }

        if (s->line_len > 0) {
            rc = tg__sse_reserve(s, &s->line, &s->line_cap,
                                 s->line_len + (eol - p));
            if (rc != 0) {
                goto failed;
            }
            memcpy(s->line + s->line_len, p, eol - p);
            s->line_len += eol - p;
            rc = tg__sse_line(s, s->line, s->line_len);
            s->line_len = 0;
        } else {
            if ((size_t) (eol - p) > s->max_event) {
                rc = -E2BIG;
                goto failed;
            }
            rc = tg__sse_line(s, p, eol - p);
        }
        if (rc != 0) {
            goto failed;
        }

        s->skip_lf = (*eol == '\r');
        p = eol + 1;
    }

    return 0;

failed:
    s->error = rc;
    return rc;
}


/* Interprets one line (without its end) per the spec's field rules. */
static int
tg__sse_line(tg_sse_t *s, const char *p, size_t n)
{
    const char  *colon, *value;
    size_t       name_len, value_len;
    int          rc;

    if (!s->started) {
        s->started = 1;
        if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            n -= 3;
        }
    }

    if (n == 0) {
        return tg__sse_dispatch(s);
    }
    if (p[0] == ':') {
        return 0;
    }

    colon = memchr(p, ':', n);
    if (colon != NULL) {
        name_len = colon - p;
        value = colon + 1;
        value_len = n - name_len - 1;
        if (value_len > 0 && value[0] == ' ') {
            value++;
            value_len--;
        }
    } else {
        name_len = n;
        value = p + n;
        value_len = 0;
    }

    if (name_len == 4 && memcmp(p, "data", 4) == 0) {
        /* Each data line adds value + "\n"; the final "\n" is dropped at
         * dispatch, so only the separator is stored up front. */
        rc = tg__sse_reserve(s, &s->buf, &s->buf_cap,
                             s->buf_len + s->has_data + value_len);
        if (rc != 0) {
            return rc;
        }
        if (s->has_data) {
            s->buf[s->buf_len++] = '\n';
        }
        memcpy(s->buf + s->buf_len, value, value_len);
        s->buf_len += value_len;
        s->buf[s->buf_len] = '\0';
        s->has_data = 1;
        return 0;
    }

    if (name_len == 5 && memcmp(p, "event", 5) == 0) {
        rc = tg__sse_reserve(s, &s->event, &s->event_cap, value_len);
        if (rc != 0) {
            return rc;
        }
        memcpy(s->event, value, value_len);
        s->event[value_len] = '\0';
        s->event_len = value_len;
        return 0;
    }

    /* "id", "retry" and unknown fields are ignored. */
    return 0;
}


static int
tg__sse_dispatch(tg_sse_t *s)
{
    const char  *name;

    if (!s->has_data) {
        /* The spec resets the name even when nothing is dispatched. */
        s->event_len = 0;
        return 0;
    }

    name = s->event_len > 0 ? s->event : "message";
    s->buf[s->buf_len] = '\0';

    /* Reset before the callback so that state is clean whatever it does. */
    s->has_data = 0;
    s->event_len = 0;
    s->on_event(s->data, name, s->buf, s->buf_len);
    s->buf_len = 0;
    return 0;
}
