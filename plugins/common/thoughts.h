/*
 * thinkgate — splitting a reasoning model's thinking into thoughts.
 *
 * TrimR (and anything else that reasons about how a model reasons) needs
 * the thinking cut where the model turns back on itself: a paragraph that
 * starts with a reflection marker ("Wait,", "Alternatively,", "Let me
 * check") begins a new thought.  The thinking ends at "</think>"; what
 * follows is the final answer and is not split.
 *
 * The splitter is incremental: feed it streamed deltas of any size and it
 * reports each boundary as soon as the marker is certain (the byte after
 * it has arrived), with stream offsets, so the caller who keeps the text
 * can cut it.  It keeps no text of its own beyond a few bytes, allocates
 * nothing and has no global state.  The whole-text helpers feed the same
 * splitter, so both always agree.
 */
#ifndef TG_THOUGHTS_H
#define TG_THOUGHTS_H

#include <stddef.h>
#include <sys/types.h>

typedef enum {
    TG_THOUGHT_REFLECT = 0,       /* "Wait", "Hmm": second thoughts */
    TG_THOUGHT_ALTERNATIVE,       /* "Alternatively": another approach */
    TG_THOUGHT_VERIFY             /* "Let me check": verification */
} tg_thought_kind_e;

typedef struct {
    const char         *text;    /* as written; matched case-insensitively */
    tg_thought_kind_e   kind;
} tg_thought_marker_t;

/* Longest marker in the table, in bytes. */
#define TG_THOUGHT_MARKER_MAX  24

/* The marker table and its length. */
const tg_thought_marker_t *tg_thought_markers(size_t *count);

typedef enum {
    TG_THOUGHT_BOUNDARY = 1,      /* a new thought starts at offset */
    TG_THOUGHT_THINK_END          /* "</think>" starts at offset */
} tg_thought_event_e;

typedef struct {
    tg_thought_event_e  type;
    size_t              offset;  /* stream offset (bytes since the start) */
    int                 marker;  /* BOUNDARY: index in the table; else -1 */
    unsigned            index;   /* BOUNDARY: number of the new thought,
                                  * the first one (at 0) being 0 */
} tg_thought_event_t;

/* Called for each event, in stream order, from feed or finish. */
typedef void (*tg_thought_cb)(void *data, const tg_thought_event_t *ev);

typedef struct {
    size_t          offset;        /* bytes fed so far */
    size_t          min_bytes;     /* shortest thought reported */
    size_t          last_start;    /* offset where the current thought began */
    size_t          cand_start;    /* offset of the candidate marker */
    size_t          think_end;     /* offset of "</think>", or (size_t) -1 */
    unsigned        thoughts;      /* thoughts so far, the first included */
    unsigned char   state;
    unsigned char   think_match;   /* bytes of "</think>" matched */
    unsigned char   cand_len;
    char            cand[TG_THOUGHT_MARKER_MAX + 2];
} tg_thought_splitter_t;

/*
 * Prepares a splitter.  Boundaries that would leave the previous thought
 * shorter than min_bytes are not reported (the short thought is merged
 * into the next one); 0 reports every marker.
 */
void tg_thoughts_init(tg_thought_splitter_t *s, size_t min_bytes);

/* Feeds a delta; cb (may be NULL) sees every event it completes. */
void tg_thoughts_feed(tg_thought_splitter_t *s, const char *delta,
                      size_t len, tg_thought_cb cb, void *data);

/* Ends the stream: a marker ending the text exactly is reported. */
void tg_thoughts_finish(tg_thought_splitter_t *s, tg_thought_cb cb,
                        void *data);

/* 1 once "</think>" has been seen; the thinking is then over. */
static inline int
tg_thoughts_ended(const tg_thought_splitter_t *s)
{
    return s->think_end != (size_t) -1;
}

/* One thought of a whole text: [start, end), started by marker (-1 for
 * the first thought). */
typedef struct {
    size_t  start;
    size_t  end;
    int     marker;
} tg_thought_t;

/*
 * Splits the thinking of text[0..len) (up to "</think>", or all of it).
 * Stores up to max thoughts in out and returns how many there are, which
 * may be more than max (as snprintf does).  *think_end (may be NULL) gets
 * the offset of "</think>" or -1.
 */
size_t tg_thoughts_split(const char *text, size_t len, size_t min_bytes,
                         tg_thought_t *out, size_t max, ssize_t *think_end);

/* Offset of the first "</think>" in text, or -1 when the thinking has not
 * ended. */
ssize_t tg_think_end(const char *text, size_t len);

#endif /* TG_THOUGHTS_H */
