/*
 * thinkgate — thought splitting (see thoughts.h for the contract).
 *
 * A byte-at-a-time state machine: after a newline it skips indentation,
 * then collects the line's first bytes while they are a prefix of some
 * marker.  A marker counts once the byte after it is not a letter or a
 * digit, so "Wait," and "Wait " split but "Waiting" does not; the longest
 * candidate is kept in a few bytes, never the text.
 */
#include "thoughts.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

enum {
    TG__T_MID = 0,       /* inside a line */
    TG__T_INDENT,        /* at a line start, skipping blanks */
    TG__T_CAND           /* collecting a possible marker */
};

/*
 * Reflection markers at a paragraph start.  A marker that is a prefix of
 * another ("Hmm", "Hmmm") is fine: the byte after decides.  Keep every
 * entry at most TG_THOUGHT_MARKER_MAX bytes.
 */
static const tg_thought_marker_t tg__markers[] = {
    { "Wait",                  TG_THOUGHT_REFLECT },
    { "But wait",              TG_THOUGHT_REFLECT },
    { "Oh wait",               TG_THOUGHT_REFLECT },
    { "No, wait",              TG_THOUGHT_REFLECT },
    { "Hmm",                   TG_THOUGHT_REFLECT },
    { "Hmmm",                  TG_THOUGHT_REFLECT },
    { "Hmmmm",                 TG_THOUGHT_REFLECT },
    { "Hold on",               TG_THOUGHT_REFLECT },
    { "But hold on",           TG_THOUGHT_REFLECT },
    { "Actually",              TG_THOUGHT_REFLECT },
    { "Oops",                  TG_THOUGHT_REFLECT },
    { "Let me think again",    TG_THOUGHT_REFLECT },
    { "Let me reconsider",     TG_THOUGHT_REFLECT },
    { "Let me re-examine",     TG_THOUGHT_REFLECT },
    { "Let me rethink",        TG_THOUGHT_REFLECT },
    { "Let me go back",        TG_THOUGHT_REFLECT },
    { "Alternatively",         TG_THOUGHT_ALTERNATIVE },
    { "Another approach",      TG_THOUGHT_ALTERNATIVE },
    { "Another way",           TG_THOUGHT_ALTERNATIVE },
    { "Let me try another",    TG_THOUGHT_ALTERNATIVE },
    { "Let's try another",     TG_THOUGHT_ALTERNATIVE },
    { "Let me check",          TG_THOUGHT_VERIFY },
    { "Let me verify",         TG_THOUGHT_VERIFY },
    { "Let me double-check",   TG_THOUGHT_VERIFY },
    { "Let me double check",   TG_THOUGHT_VERIFY },
    { "Let me recheck",        TG_THOUGHT_VERIFY },
    { "Let me re-check",       TG_THOUGHT_VERIFY },
    { "Let me confirm",        TG_THOUGHT_VERIFY },
    { "But let me check",      TG_THOUGHT_VERIFY },
    { "But let me verify",     TG_THOUGHT_VERIFY },
    { "But let me double-check", TG_THOUGHT_VERIFY },
    { "Let's check",           TG_THOUGHT_VERIFY },
    { "Let's verify",          TG_THOUGHT_VERIFY },
    { "Let's double-check",    TG_THOUGHT_VERIFY },
    { "Double-check",          TG_THOUGHT_VERIFY },
    { "Double check",          TG_THOUGHT_VERIFY },
    { "To verify",             TG_THOUGHT_VERIFY },
    { "Verification",          TG_THOUGHT_VERIFY },
};

#define TG__NMARKERS  (sizeof(tg__markers) / sizeof(tg__markers[0]))

static const char tg__think_close[] = "</think>";

typedef struct {
    tg_thought_t  *out;
    size_t         max;
    size_t         count;
} tg__split_ctx_t;

static int tg__marker_exact(const tg_thought_splitter_t *s);
static int tg__marker_prefix(const tg_thought_splitter_t *s);
static void tg__boundary(tg_thought_splitter_t *s, int marker,
                         tg_thought_cb cb, void *data);
static void tg__byte(tg_thought_splitter_t *s, unsigned char c,
                     tg_thought_cb cb, void *data);
static void tg__split_cb(void *data, const tg_thought_event_t *ev);

const tg_thought_marker_t *
tg_thought_markers(size_t *count)
{
    if (count != NULL) {
        *count = TG__NMARKERS;
    }
    return tg__markers;
}

void
tg_thoughts_init(tg_thought_splitter_t *s, size_t min_bytes)
{
    memset(s, 0, sizeof(*s));
    s->min_bytes = min_bytes > 0 ? min_bytes : 1;
    s->think_end = (size_t) -1;
    s->thoughts = 1;
    s->state = TG__T_INDENT;    /* the text's start is a line start */
}

/* Index of the marker the candidate spells exactly, or -1. */
static int
tg__marker_exact(const tg_thought_splitter_t *s)
{
    size_t i;

    for (i = 0; i < TG__NMARKERS; i++) {
        if (strlen(tg__markers[i].text) == s->cand_len
            && strncasecmp(s->cand, tg__markers[i].text, s->cand_len) == 0)
        {
            return (int) i;
        }
    }
    return -1;
}

static int
tg__marker_prefix(const tg_thought_splitter_t *s)
{
    size_t i;

    for (i = 0; i < TG__NMARKERS; i++) {
        if (strlen(tg__markers[i].text) >= s->cand_len
            && strncasecmp(s->cand, tg__markers[i].text, s->cand_len) == 0)
        {
            return 1;
        }
    }
    return 0;
}

static void
tg__boundary(tg_thought_splitter_t *s, int marker, tg_thought_cb cb,
             void *data)
{
    tg_thought_event_t ev;

    if (s->cand_start - s->last_start < s->min_bytes) {
        return;
    }
    s->last_start = s->cand_start;
    ev.type = TG_THOUGHT_BOUNDARY;
    ev.offset = s->cand_start;
    ev.marker = marker;
    ev.index = s->thoughts++;
    if (cb != NULL) {
        cb(data, &ev);
    }
}

static void
tg__byte(tg_thought_splitter_t *s, unsigned char c, tg_thought_cb cb,
         void *data)
{
    size_t off = s->offset++;
    int m;

    if (tg_thoughts_ended(s)) {
        return;
    }
    if ((unsigned char) tg__think_close[s->think_match] == c) {
        if (tg__think_close[++s->think_match] == '\0') {
            tg_thought_event_t ev = { TG_THOUGHT_THINK_END,
                                      off + 1 - (sizeof(tg__think_close) - 1),
                                      -1, 0 };

            s->think_end = ev.offset;
            if (cb != NULL) {
                cb(data, &ev);
            }
            return;
        }
    } else {
        s->think_match = c == '<';
    }

    switch (s->state) {
    case TG__T_INDENT:
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            return;
        }
        s->state = TG__T_CAND;
        s->cand_start = off;
        s->cand_len = 0;
        /* fall through */
    case TG__T_CAND:
        if (s->cand_len > 0 && !isalnum(c)
            && (m = tg__marker_exact(s)) >= 0)
        {
            tg__boundary(s, m, cb, data);
            s->state = c == '\n' ? TG__T_INDENT : TG__T_MID;
            return;
        }
        if (c == '\n') {
            s->state = TG__T_INDENT;
            return;
        }
        if (s->cand_len < TG_THOUGHT_MARKER_MAX + 1) {
            s->cand[s->cand_len++] = (char) c;
        }
        if (s->cand_len > TG_THOUGHT_MARKER_MAX || !tg__marker_prefix(s)) {
            s->state = TG__T_MID;
        }
        return;
    default:
        if (c == '\n') {
            s->state = TG__T_INDENT;
        }
        return;
    }
}

void
tg_thoughts_feed(tg_thought_splitter_t *s, const char *delta, size_t len,
                 tg_thought_cb cb, void *data)
{
    size_t i;

    for (i = 0; i < len; i++) {
        tg__byte(s, (unsigned char) delta[i], cb, data);
    }
}

void
tg_thoughts_finish(tg_thought_splitter_t *s, tg_thought_cb cb, void *data)
{
    int m;

    if (!tg_thoughts_ended(s) && s->state == TG__T_CAND
        && (m = tg__marker_exact(s)) >= 0)
    {
        tg__boundary(s, m, cb, data);
    }
    s->state = TG__T_MID;
}

static void
tg__split_cb(void *data, const tg_thought_event_t *ev)
{
    tg__split_ctx_t *ctx = data;

    if (ev->type != TG_THOUGHT_BOUNDARY) {
        return;
    }
    if (ctx->count < ctx->max) {
        if (ctx->count > 0) {
            ctx->out[ctx->count - 1].end = ev->offset;
        }
        ctx->out[ctx->count].start = ev->offset;
        ctx->out[ctx->count].marker = ev->marker;
    } else if (ctx->count == ctx->max && ctx->max > 0) {
        ctx->out[ctx->max - 1].end = ev->offset;
    }
    ctx->count++;
}

size_t
tg_thoughts_split(const char *text, size_t len, size_t min_bytes,
                  tg_thought_t *out, size_t max, ssize_t *think_end)
{
    tg_thought_splitter_t s;
    tg__split_ctx_t ctx = { out, out != NULL ? max : 0, 1 };
    size_t end;

    if (think_end != NULL) {
        *think_end = -1;
    }
    if (text == NULL || len == 0) {
        return 0;
    }
    if (ctx.max > 0) {
        out[0].start = 0;
        out[0].marker = -1;
    }
    tg_thoughts_init(&s, min_bytes);
    tg_thoughts_feed(&s, text, len, tg__split_cb, &ctx);
    tg_thoughts_finish(&s, tg__split_cb, &ctx);
    end = tg_thoughts_ended(&s) ? s.think_end : len;
    if (think_end != NULL && tg_thoughts_ended(&s)) {
        *think_end = (ssize_t) s.think_end;
    }
    if (end == 0) {
        return 0;               /* the text starts with "</think>" */
    }
    if (ctx.max > 0 && ctx.count <= ctx.max) {
        out[ctx.count - 1].end = end;
    }
    return ctx.count;
}

ssize_t
tg_think_end(const char *text, size_t len)
{
    size_t n = sizeof(tg__think_close) - 1, i;

    if (text == NULL) {
        return -1;
    }
    for (i = 0; i + n <= len; i++) {
        if (text[i] == '<' && memcmp(text + i, tg__think_close, n) == 0) {
            return (ssize_t) i;
        }
    }
    return -1;
}
