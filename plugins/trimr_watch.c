/*
 * thinkgate — TrimR's watcher: what one trace's thinking does as it
 * streams (trimr.h).
 *
 * Thoughts come from the shared splitter (common/thoughts.h), which
 * reports a boundary once its marker is certain, whatever the delta
 * sizes; the watcher turns boundaries into finished thoughts [start, end).
 *
 * Repetition: the thinking is read as words (runs of bytes that are not
 * white space), each hashed (FNV-1a, carried across deltas), and a
 * polynomial rolling hash covers the last ngram words.  Every n-gram's
 * hash goes into a table; when ngram consecutive n-grams in a row were all
 * seen before, a passage of 2 * ngram - 1 words has been written twice,
 * word for word: the model is looping, not reasoning.  A single repeated
 * n-gram (a formula restated) is no loop, hence the run.  Hash collisions
 * can only shorten the run that is needed, by chance, at 2^-64 per word.
 */

#include <errno.h>
#include <string.h>

#include "trimr.h"

#define TG_TRIMR_FNV_BASIS  0xcbf29ce484222325ull
#define TG_TRIMR_FNV_PRIME  0x100000001b3ull
#define TG_TRIMR_ROLL_BASE  0x9e3779b97f4a7c15ull

typedef struct {
    tg_trimr_watch_t     *w;
    tg_trimr_thought_cb   cb;
    void                 *data;
} tg_trimr_watch_ctx_t;

static void tg_trimr_watch_event(void *data, const tg_thought_event_t *ev);
static void tg_trimr_watch_word(tg_trimr_watch_t *w);
static int tg_trimr_watch_seen(tg_trimr_watch_t *w, uint64_t h);


int
tg_trimr_watch_init(const tg_host_api_t *api, tg_req_t *req,
    tg_trimr_watch_t *w, uint32_t ngram)
{
    uint32_t  i;

    memset(w, 0, sizeof(*w));
    /* Every marker starts a thought: a short one rarely states an answer
     * and is skipped by the streak, which is cheaper than a missed one. */
    tg_thoughts_init(&w->split, 0);
    w->ngram = ngram > TG_TRIMR_NGRAM_MAX ? TG_TRIMR_NGRAM_MAX : ngram;
    w->word_hash = TG_TRIMR_FNV_BASIS;
    if (w->ngram == 0) {
        return 0;
    }
    w->pow = 1;
    for (i = 1; i < w->ngram; i++) {
        w->pow *= TG_TRIMR_ROLL_BASE;
    }
    w->seen = api->alloc(req, TG_TRIMR_SEEN * sizeof(uint64_t));
    if (w->seen == NULL) {
        w->ngram = 0;       /* no repetition trigger, the rest works */
        return -ENOMEM;
    }
    memset(w->seen, 0, TG_TRIMR_SEEN * sizeof(uint64_t));
    return 0;
}


int
tg_trimr_watch_ended(const tg_trimr_watch_t *w)
{
    return tg_thoughts_ended(&w->split);
}


static void
tg_trimr_watch_event(void *data, const tg_thought_event_t *ev)
{
    tg_trimr_watch_ctx_t  *ctx = data;
    tg_trimr_watch_t      *w = ctx->w;
    size_t                 start = w->thought_start;

    /* A boundary ends the thought before it; "</think>" ends the last
     * one, which is then the model's own conclusion. */
    w->thought_start = ev->offset;
    if (ev->offset > start && ctx->cb != NULL) {
        ctx->cb(ctx->data, ev->type == TG_THOUGHT_BOUNDARY ? ev->index - 1
                                                           : w->split.thoughts
                                                             - 1,
                start, ev->offset);
    }
}


/* 1 when h was seen before; otherwise it is remembered (while there is
 * room).  0 is the empty slot's mark, so hash 0 is stored as 1. */
static int
tg_trimr_watch_seen(tg_trimr_watch_t *w, uint64_t h)
{
    size_t  i;

    h = h != 0 ? h : 1;
    for (i = (size_t) (h % TG_TRIMR_SEEN); w->seen[i] != 0;
         i = (i + 1) % TG_TRIMR_SEEN)
    {
        if (w->seen[i] == h) {
            return 1;
        }
    }
    if (w->nseen < TG_TRIMR_SEEN / 4 * 3) {
        w->seen[i] = h;
        w->nseen++;
    }
    return 0;
}


/* A word ended: roll it into the n-gram hash and look the n-gram up. */
static void
tg_trimr_watch_word(tg_trimr_watch_t *w)
{
    uint64_t  h = w->word_hash, old;
    size_t    at = (size_t) (w->nwords % w->ngram);

    w->word_hash = TG_TRIMR_FNV_BASIS;
    w->in_word = 0;
    /* Arithmetic mod 2^64: removing the oldest word's term and shifting
     * gives the hash of the window one word on. */
    old = w->nwords >= w->ngram ? w->words[at] : 0;
    w->gram = (w->gram - old * w->pow) * TG_TRIMR_ROLL_BASE + h;
    w->words[at] = h;
    if (++w->nwords < w->ngram) {
        return;
    }
    if (tg_trimr_watch_seen(w, w->gram)) {
        if (++w->run >= w->ngram) {
            w->repeated = 1;
        }
    } else {
        w->run = 0;
    }
}


int
tg_trimr_watch_feed(tg_trimr_watch_t *w, const char *p, size_t len,
    tg_trimr_thought_cb cb, void *data)
{
    tg_trimr_watch_ctx_t  ctx = { w, cb, data };
    unsigned char         c;
    size_t                i;

    if (tg_thoughts_ended(&w->split)) {
        return 0;
    }
    tg_thoughts_feed(&w->split, p, len, tg_trimr_watch_event, &ctx);
    if (w->ngram == 0) {
        return 0;
    }
    for (i = 0; i < len && !w->repeated; i++) {
        c = (unsigned char) p[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            if (w->in_word) {
                tg_trimr_watch_word(w);
            }
            continue;
        }
        w->in_word = 1;
        w->word_hash = (w->word_hash ^ c) * TG_TRIMR_FNV_PRIME;
    }
    return w->repeated;
}
