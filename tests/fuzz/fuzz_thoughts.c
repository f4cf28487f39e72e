/*
 * plugins/common/thoughts.c: the splitter fed a model's thinking in
 * pieces must report what tg_thoughts_split finds in the whole text
 * (thoughts.h: both always agree), with offsets inside the text and in
 * order.
 */
#include "common/thoughts.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TG_FUZZ_MAX_THOUGHTS  64

typedef struct {
    size_t          len;
    size_t          last;
    size_t          boundaries;
    size_t          starts[TG_FUZZ_MAX_THOUGHTS];
    long long       think_end;
} tg_fuzz_seen_t;

static void
tg_fuzz_event(void *data, const tg_thought_event_t *ev)
{
    tg_fuzz_seen_t  *seen = data;

    tg_fuzz_check(ev->offset <= seen->len);
    tg_fuzz_check(ev->offset >= seen->last);
    seen->last = ev->offset;
    if (ev->type == TG_THOUGHT_THINK_END) {
        tg_fuzz_check(seen->think_end == -1);
        seen->think_end = (long long) ev->offset;
        return;
    }
    tg_fuzz_check(ev->type == TG_THOUGHT_BOUNDARY);
    tg_fuzz_check(seen->think_end == -1);
    tg_fuzz_check(ev->index == seen->boundaries + 1);
    if (seen->boundaries < TG_FUZZ_MAX_THOUGHTS) {
        seen->starts[seen->boundaries] = ev->offset;
    }
    seen->boundaries++;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t            in = { data, size };
    tg_thought_splitter_t   s;
    tg_thought_t            out[TG_FUZZ_MAX_THOUGHTS];
    tg_fuzz_seen_t          seen;
    size_t                  min_bytes, step, off, piece, n, i;
    ssize_t                 think_end;
    char                   *text, *copy;
    uint8_t                 b;

    b = tg_fuzz_byte(&in);
    min_bytes = (b & 0x0f) * 4;
    step = 1 + (b >> 4);
    text = tg_fuzz_dup(in.p, in.n);

    memset(&seen, 0, sizeof(seen));
    seen.len = in.n;
    seen.think_end = -1;
    tg_thoughts_init(&s, min_bytes);
    for (off = 0; off < in.n; off += piece) {
        piece = in.n - off < step ? in.n - off : step;
        copy = tg_fuzz_dup(in.p + off, piece);
        tg_thoughts_feed(&s, copy, piece, tg_fuzz_event, &seen);
        free(copy);
    }
    tg_thoughts_finish(&s, tg_fuzz_event, &seen);

    n = tg_thoughts_split(text, in.n, min_bytes, out, TG_FUZZ_MAX_THOUGHTS,
                          &think_end);
    /* No thought at all: an empty text, or one that starts with
     * "</think>". */
    if (in.n == 0 || think_end == 0) {
        tg_fuzz_check(n == 0);
    } else {
        tg_fuzz_check(n == seen.boundaries + 1);
    }
    tg_fuzz_check(think_end == (ssize_t) seen.think_end);
    tg_fuzz_check(think_end == tg_think_end(text, in.n));
    for (i = 0; i < n && i < TG_FUZZ_MAX_THOUGHTS; i++) {
        tg_fuzz_check(out[i].start <= out[i].end && out[i].end <= in.n);
        if (i > 0) {
            tg_fuzz_check(out[i].start == seen.starts[i - 1]);
            tg_fuzz_check(out[i].start >= out[i - 1].end);
        }
    }

    free(text);
    return 0;
}
