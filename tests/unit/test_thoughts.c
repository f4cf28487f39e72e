/*
 * Unit tests of plugins/common/thoughts: hand-written texts, the marker
 * table, streamed deltas split anywhere, and every recorded trace in
 * ../shared/traces (or $TG_TRACES_DIR) checked against a plain reference
 * splitter written here the obvious way.
 */
#include <criterion/criterion.h>

#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/thoughts.h"
#include "traces_reader.h"

#define TG_TEST_MAX_EVENTS  4096

typedef struct {
    tg_thought_event_t  ev[TG_TEST_MAX_EVENTS];
    size_t              n;
} tg_events_t;

static void
tg_collect(void *data, const tg_thought_event_t *ev)
{
    tg_events_t *e = data;

    cr_assert_lt(e->n, TG_TEST_MAX_EVENTS);
    e->ev[e->n++] = *ev;
}

/* Feeds text in pieces of `step` bytes (0: whole) and collects events. */
static void
tg_run(const char *text, size_t len, size_t step, size_t min_bytes,
       tg_events_t *e)
{
    tg_thought_splitter_t s;
    size_t i;

    e->n = 0;
    tg_thoughts_init(&s, min_bytes);
    if (step == 0) {
        step = len > 0 ? len : 1;
    }
    for (i = 0; i < len; i += step) {
        tg_thoughts_feed(&s, text + i, len - i < step ? len - i : step,
                         tg_collect, e);
    }
    tg_thoughts_finish(&s, tg_collect, e);
}

static const char tg_sample[] =
    "Let's compute 2+2.\n\n"
    "Wait, that's wrong.\n\n"
    "Alternatively, use counting.\n"
    "Waiting is not a marker, nor is Wait mid-line.\n\n"
    "  Let me check: 2+2=4.\n\n"
    "Hmmm... fine.\n"
    "wait. lower case counts too\n"
    "</think>\n"
    "Wait, this is the answer part.\n";

Test(thoughts, sample_text)
{
    static const char *const want[] = {
        "Wait,", "Alternatively", "Let me check", "Hmmm", "wait.",
    };
    const tg_thought_marker_t *m = tg_thought_markers(NULL);
    tg_events_t e;
    size_t i, len = strlen(tg_sample);
    const char *end = strstr(tg_sample, "</think>");

    tg_run(tg_sample, len, 0, 0, &e);
    cr_assert_eq(e.n, 6);
    for (i = 0; i < 5; i++) {
        cr_assert_eq(e.ev[i].type, TG_THOUGHT_BOUNDARY);
        cr_assert_eq(e.ev[i].index, i + 1);
        cr_assert(strncmp(tg_sample + e.ev[i].offset, want[i],
                          strlen(want[i])) == 0, "boundary %zu at \"%.12s\"",
                  i, tg_sample + e.ev[i].offset);
        cr_assert(strncasecmp(m[e.ev[i].marker].text, want[i],
                              strlen(m[e.ev[i].marker].text)) == 0);
    }
    cr_assert_eq(e.ev[5].type, TG_THOUGHT_THINK_END);
    cr_assert_eq(e.ev[5].offset, (size_t) (end - tg_sample));
    cr_assert_eq(tg_think_end(tg_sample, len), end - tg_sample);
}

Test(thoughts, split_any_delta_size)
{
    tg_events_t whole, *part = malloc(sizeof(*part));
    size_t step, i, len = strlen(tg_sample);

    cr_assert_not_null(part);
    tg_run(tg_sample, len, 0, 0, &whole);
    for (step = 1; step <= len; step++) {
        tg_run(tg_sample, len, step, 0, part);
        cr_assert_eq(part->n, whole.n, "step %zu", step);
        for (i = 0; i < whole.n; i++) {
            cr_assert_eq(part->ev[i].type, whole.ev[i].type);
            cr_assert_eq(part->ev[i].offset, whole.ev[i].offset);
            cr_assert_eq(part->ev[i].marker, whole.ev[i].marker);
        }
    }
    free(part);
}

/* Every table entry is found as itself, and the table is sound. */
Test(thoughts, marker_table)
{
    size_t n, i, j;
    const tg_thought_marker_t *m = tg_thought_markers(&n);
    char text[128];
    tg_events_t e;

    cr_assert_gt(n, 10);
    for (i = 0; i < n; i++) {
        cr_assert_leq(strlen(m[i].text), TG_THOUGHT_MARKER_MAX);
        for (j = 0; j < i; j++) {
            cr_assert(strcasecmp(m[i].text, m[j].text) != 0);
        }
        snprintf(text, sizeof(text), "First idea.\n\n%s, second idea.",
                 m[i].text);
        tg_run(text, strlen(text), 0, 0, &e);
        cr_assert_eq(e.n, 1, "marker \"%s\"", m[i].text);
        cr_assert_eq(e.ev[0].marker, (int) i, "marker \"%s\"", m[i].text);
        cr_assert_eq(e.ev[0].offset, 13);
    }
}

Test(thoughts, edges)
{
    tg_events_t e;

    /* A marker ending the text is only certain at finish. */
    tg_run("a\n\nWait", 7, 0, 0, &e);
    cr_assert_eq(e.n, 1);
    cr_assert_eq(e.ev[0].offset, 3);
    /* A marker at the very start does not split off an empty thought. */
    tg_run("Wait, no.\nok", 12, 0, 0, &e);
    cr_assert_eq(e.n, 0);
    /* Not at a line start, or followed by a letter: no boundary. */
    tg_run("so Wait, no\nWaiter\nHmmmmmm", 26, 0, 0, &e);
    cr_assert_eq(e.n, 0);
    /* Short thoughts merge into the next one. */
    tg_run("xxxxxxxxxxxx\nWait, a\nWait, b\nWait, c", 36, 0, 12, &e);
    cr_assert_eq(e.n, 2);
    cr_assert_eq(e.ev[0].offset, 13);
    cr_assert_eq(e.ev[1].offset, 29);
    cr_assert_eq(e.ev[1].index, 2);
    /* "</think>" split with a false start "<<". */
    tg_run("a <</think>\nWait, b", 19, 1, 0, &e);
    cr_assert_eq(e.n, 1);
    cr_assert_eq(e.ev[0].type, TG_THOUGHT_THINK_END);
    cr_assert_eq(e.ev[0].offset, 3);
    cr_assert_eq(tg_think_end("no end", 6), -1);
}

Test(thoughts, split_whole_text)
{
    tg_thought_t t[8], few[2];
    ssize_t end;
    size_t n, len = strlen(tg_sample), i;

    n = tg_thoughts_split(tg_sample, len, 0, t, 8, &end);
    cr_assert_eq(n, 6);
    cr_assert_eq(end, strstr(tg_sample, "</think>") - tg_sample);
    cr_assert_eq(t[0].start, 0);
    cr_assert_eq(t[0].marker, -1);
    for (i = 1; i < n; i++) {
        cr_assert_eq(t[i - 1].end, t[i].start);
        cr_assert_geq(t[i].marker, 0);
    }
    cr_assert_eq(t[n - 1].end, (size_t) end);
    cr_assert_eq(tg_thoughts_split(tg_sample, len, 0, few, 2, NULL), 6);
    cr_assert_eq(few[1].start, t[1].start);
    cr_assert_eq(few[1].end, t[2].start);
    cr_assert_eq(tg_thoughts_split(tg_sample, len, 0, NULL, 0, NULL), 6);
    cr_assert_eq(tg_thoughts_split("</think>x", 9, 0, t, 8, &end), 0);
    cr_assert_eq(end, 0);
    cr_assert_eq(tg_thoughts_split("", 0, 0, t, 8, NULL), 0);
}

/* --- recorded traces ---------------------------------------------------- */

/*
 * The obvious splitter: at every line start (blank lines and indentation
 * skipped), the shortest marker that matches and is followed by a byte
 * that is not a letter or digit, or by the end of the thinking.
 */
static size_t
tg_reference(const char *t, size_t len, size_t *out, size_t max)
{
    size_t n, nm, p, q, k, count = 0, last = 0, end = len;
    const tg_thought_marker_t *m = tg_thought_markers(&nm);
    ssize_t te = tg_think_end(t, len);

    if (te >= 0) {
        end = (size_t) te;
    }
    for (p = 0; p < end; p = q + 1) {
        size_t best = 0;

        for (q = p; q < end && (t[q] == ' ' || t[q] == '\t'
                                || t[q] == '\r'); q++) {
            /* indentation */
        }
        for (k = 0; k < nm && q < end && t[q] != '\n'; k++) {
            n = strlen(m[k].text);
            if (q + n <= end && strncasecmp(t + q, m[k].text, n) == 0
                && (q + n == len || !isalnum((unsigned char) t[q + n]))
                && (best == 0 || n < best))
            {
                best = n;
            }
        }
        if (best > 0 && q > last) {
            if (count < max) {
                out[count] = q;
            }
            count++;
            last = q;
        }
        while (q < end && t[q] != '\n') {
            q++;
        }
    }
    return count;
}

static const char *const tg_fuzz_tokens[] = {
    "Wait", "wait", "But wait", "Hmm", "Hmmm", "m", "Let me", " check",
    "Let me check", "Alternatively", ",", ".", " ", "\t", "\n", "\n\n",
    "x", "</think>", "<", "/think>", "Waiting", "Double-check", "\r",
};

/* Random token soup, fed in random pieces, splits like the reference. */
Test(thoughts, random_text)
{
    size_t ntok = sizeof(tg_fuzz_tokens) / sizeof(tg_fuzz_tokens[0]);
    size_t ref[256], nref, i;
    unsigned long rng = 3;
    tg_events_t *e = malloc(sizeof(*e));
    char text[1024];
    int iter;

    cr_assert_not_null(e);
    for (iter = 0; iter < 5000; iter++) {
        size_t len = 0, k, b = 0;

        rng = rng * 6364136223846793005UL + 1442695040888963407UL;
        for (k = 1 + (rng >> 33) % 40; k > 0; k--) {
            const char *t;

            rng = rng * 6364136223846793005UL + 1442695040888963407UL;
            t = tg_fuzz_tokens[(rng >> 33) % ntok];
            memcpy(text + len, t, strlen(t));
            len += strlen(t);
        }
        text[len] = '\0';
        tg_run(text, len, 1 + (size_t) iter % 7, 0, e);
        nref = tg_reference(text, len, ref, 256);
        for (i = 0; i < e->n; i++) {
            if (e->ev[i].type == TG_THOUGHT_BOUNDARY) {
                cr_assert_lt(b, nref, "extra boundary in \"%s\"", text);
                cr_assert_eq(e->ev[i].offset, ref[b], "in \"%s\"", text);
                b++;
            }
        }
        cr_assert_eq(b, nref, "in \"%s\"", text);
    }
    free(e);
}

Test(thoughts, recorded_traces, .timeout = 600)
{
    tg_traces_t tr;
    tg_events_t *e;
    size_t *ref;
    unsigned long rng = 99;
    json_t *j;

    tg_traces_open(&tr);
    e = malloc(sizeof(*e));
    ref = malloc(TG_TEST_MAX_EVENTS * sizeof(*ref));
    cr_assert(e != NULL && ref != NULL);
    while (tg_traces_next_file(&tr)) {
        unsigned long traces = 0, thoughts = 0, ended = 0;
        const char *base = tr.base;

        while ((j = tg_traces_next(&tr)) != NULL) {
            tg_thought_splitter_t s;
            const char *text;
            size_t tlen, i, step, nref, b = 0;
            ssize_t te;

            text = json_string_value(json_object_get(j, "output"));
            cr_assert_not_null(text, "%s: no output", base);
            tlen = strlen(text);

            e->n = 0;
            tg_thoughts_init(&s, 0);
            for (i = 0; i < tlen; i += step) {
                rng = rng * 6364136223846793005UL + 1442695040888963407UL;
                step = 1 + (rng >> 33) % 61;
                tg_thoughts_feed(&s, text + i,
                                 tlen - i < step ? tlen - i : step,
                                 tg_collect, e);
            }
            tg_thoughts_finish(&s, tg_collect, e);

            nref = tg_reference(text, tlen, ref, TG_TEST_MAX_EVENTS);
            te = tg_think_end(text, tlen);
            for (i = 0; i < e->n; i++) {
                if (e->ev[i].type == TG_THOUGHT_THINK_END) {
                    cr_assert_eq((ssize_t) e->ev[i].offset, te, "%s", base);
                    continue;
                }
                cr_assert_lt(b, nref, "%s: extra boundary at %zu", base,
                             e->ev[i].offset);
                cr_assert_eq(e->ev[i].offset, ref[b], "%s: boundary %zu",
                             base, b);
                b++;
            }
            cr_assert_eq(b, nref, "%s: %zu boundaries, reference %zu", base,
                         b, nref);
            cr_assert_eq(tg_thoughts_ended(&s), te >= 0);
            traces++;
            thoughts += 1 + b;
            ended += te >= 0;
            json_decref(j);
        }
        fprintf(stderr, "traces: %s: %lu traces, %.1f thoughts each, "
                "%lu ended thinking\n", base, traces,
                traces ? (double) thoughts / traces : 0.0, ended);
    }
    free(e);
    free(ref);
    tg_traces_close(&tr);
}
