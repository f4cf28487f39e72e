/*
 * SSE parser: events, line endings, comments, multi-line data, the size
 * cap, and the same input split at every position and every pair of
 * positions.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "../../engine/backend/sse.h"

/* Events are recorded as "name|payload\n" into one string, so that a whole
 * run compares with one cr_assert_str_eq. */
typedef struct {
    char    out[8192];
    size_t  len;
    int     count;
} rec_t;

static void
rec_event(void *data, const char *event, const char *payload, size_t len)
{
    rec_t  *r = data;
    int     n;

    cr_assert_eq(payload[len], '\0', "payload is NUL-terminated");
    cr_assert_eq(strlen(payload), len);
    n = snprintf(r->out + r->len, sizeof(r->out) - r->len, "%s|%s\n",
                 event, payload);
    cr_assert(n > 0 && (size_t) n < sizeof(r->out) - r->len);
    r->len += n;
    r->count++;
}

/* Feeds input in up to three pieces cut at a and b (a <= b). */
static void
run_split(const char *in, size_t n, size_t a, size_t b, rec_t *r)
{
    tg_sse_t  s;

    memset(r, 0, sizeof(*r));
    tg_sse_init(&s, rec_event, r);
    cr_assert_eq(tg_sse_feed(&s, in, a), 0);
    cr_assert_eq(tg_sse_feed(&s, in + a, b - a), 0);
    cr_assert_eq(tg_sse_feed(&s, in + b, n - b), 0);
    tg_sse_free(&s);
}

static void
expect_all_splits(const char *in, const char *want, int pairs)
{
    size_t  n = strlen(in), a, b;
    rec_t   r;

    for (a = 0; a <= n; a++) {
        run_split(in, n, a, a, &r);
        cr_assert_str_eq(r.out, want, "split at %zu", a);
        if (!pairs) {
            continue;
        }
        for (b = a; b <= n; b++) {
            run_split(in, n, a, b, &r);
            cr_assert_str_eq(r.out, want, "split at %zu and %zu", a, b);
        }
    }
}

static const char *openai_stream =
    "data: {\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n\n"
    ": keep-alive comment\n\n"
    "event: delta\r\ndata: {\"x\":1}\r\n\r\n"
    "data: line one\rdata: line two\r\r"
    "id: 7\nretry: 100\ndata:no-space\n\n"
    "data: [DONE]\n\n";

static const char *openai_want =
    "message|{\"choices\":[{\"delta\":{\"content\":\"Hel\"}}]}\n"
    "delta|{\"x\":1}\n"
    "message|line one\nline two\n"
    "message|no-space\n"
    "message|[DONE]\n";

Test(sse, every_split_position)
{
    expect_all_splits(openai_stream, openai_want, 0);
}

Test(sse, every_pair_of_splits_short_input)
{
    expect_all_splits("event: e\r\ndata: a\rdata:  b\r\n\r\n:c\n\ndata\n\n",
                      "e|a\n b\nmessage|\n", 1);
}

Test(sse, byte_by_byte)
{
    size_t    i, n = strlen(openai_stream);
    tg_sse_t  s;
    rec_t     r;

    memset(&r, 0, sizeof(r));
    tg_sse_init(&s, rec_event, &r);
    for (i = 0; i < n; i++) {
        cr_assert_eq(tg_sse_feed(&s, openai_stream + i, 1), 0);
    }
    tg_sse_free(&s);
    cr_assert_str_eq(r.out, openai_want);
}

Test(sse, crlf_split_between_cr_and_lf_is_one_line_end)
{
    tg_sse_t  s;
    rec_t     r;

    memset(&r, 0, sizeof(r));
    tg_sse_init(&s, rec_event, &r);
    cr_assert_eq(tg_sse_feed(&s, "data: a\r", 8), 0);
    cr_assert_eq(tg_sse_feed(&s, "\ndata: b\r", 9), 0);
    cr_assert_eq(tg_sse_feed(&s, "\n\r", 2), 0);
    cr_assert_eq(tg_sse_feed(&s, "\n", 1), 0);
    tg_sse_free(&s);
    /* "\r\n" "\r\n" "\r\n": the second CRLF pair ends the event, the third
     * is an extra blank line that dispatches nothing. */
    cr_assert_str_eq(r.out, "message|a\nb\n");
    cr_assert_eq(r.count, 1);
}

Test(sse, comments_and_unknown_fields_are_ignored)
{
    expect_all_splits(": hello\nfoo: bar\n:\ndata: x\n: mid\ndata: y\n\n",
                      "message|x\ny\n", 1);
}

Test(sse, event_without_data_is_dropped_and_name_reset)
{
    expect_all_splits("event: lonely\n\ndata: d\n\n", "message|d\n", 1);
}

Test(sse, multiline_data_and_empty_data_lines)
{
    expect_all_splits("data: a\ndata:\ndata: c\n\n", "message|a\n\nc\n", 1);
}

Test(sse, no_dispatch_without_blank_line)
{
    tg_sse_t  s;
    rec_t     r;

    memset(&r, 0, sizeof(r));
    tg_sse_init(&s, rec_event, &r);
    cr_assert_eq(tg_sse_feed(&s, "data: pending\n", 14), 0);
    cr_assert_eq(r.count, 0);
    cr_assert_eq(tg_sse_feed(&s, "\n", 1), 0);
    cr_assert_eq(r.count, 1);
    tg_sse_free(&s);
}

Test(sse, leading_bom_is_skipped)
{
    expect_all_splits("\xEF\xBB\xBF" "data: b\n\n", "message|b\n", 1);
}

Test(sse, oversize_event_is_e2big_and_sticky)
{
    tg_sse_t  s;
    rec_t     r;
    char      line[100];

    memset(&r, 0, sizeof(r));
    tg_sse_init(&s, rec_event, &r);
    s.max_event = 64;
    memset(line, 'a', sizeof(line));
    memcpy(line, "data: ", 6);
    line[40] = '\n';
    /* Two 34-byte data lines: each fits, together they do not. */
    cr_assert_eq(tg_sse_feed(&s, line, 41), 0);
    cr_assert_eq(tg_sse_feed(&s, line, 41), -E2BIG);
    cr_assert_eq(tg_sse_feed(&s, "\n", 1), -E2BIG);
    cr_assert_eq(r.count, 0);
    tg_sse_free(&s);
}

Test(sse, oversize_line_is_e2big_whole_or_split)
{
    tg_sse_t  s;
    rec_t     r;
    char      big[200];

    memset(big, 'x', sizeof(big));
    memset(&r, 0, sizeof(r));
    tg_sse_init(&s, rec_event, &r);
    s.max_event = 64;
    cr_assert_eq(tg_sse_feed(&s, big, sizeof(big)), -E2BIG);
    tg_sse_free(&s);

    tg_sse_init(&s, rec_event, &r);
    s.max_event = 64;
    cr_assert_eq(tg_sse_feed(&s, big, 50), 0);
    cr_assert_eq(tg_sse_feed(&s, big, 50), -E2BIG);
    tg_sse_free(&s);

    big[150] = '\n';
    tg_sse_init(&s, rec_event, &r);
    s.max_event = 64;
    cr_assert_eq(tg_sse_feed(&s, big, 151), -E2BIG);
    tg_sse_free(&s);
}

static void
count_big(void *data, const char *event, const char *payload, size_t len)
{
    size_t  *got = data;

    cr_assert_str_eq(event, "message");
    cr_assert_eq(payload[0], 'z');
    cr_assert_eq(payload[len - 1], 'z');
    *got = len;
}

Test(sse, default_cap_allows_large_events)
{
    tg_sse_t  s;
    size_t    n = 1 << 20, got = 0, i;
    char     *in = malloc(n + 8);

    cr_assert_not_null(in);
    memcpy(in, "data: ", 6);
    memset(in + 6, 'z', n);
    memcpy(in + 6 + n, "\n\n", 2);
    tg_sse_init(&s, count_big, &got);
    cr_assert_eq(s.max_event, TG_SSE_MAX_EVENT);
    /* In 4 KiB pieces, as a socket would deliver it. */
    for (i = 0; i < n + 8; i += 4096) {
        size_t  k = n + 8 - i < 4096 ? n + 8 - i : 4096;
        cr_assert_eq(tg_sse_feed(&s, in + i, k), 0);
    }
    cr_assert_eq(got, n);
    tg_sse_free(&s);
    free(in);
}
