/*
 * plugins/common/answer.c and answer_norm.c: a model's text (the input,
 * after two bytes that pick the options) through every entry point.  The
 * streamed box scanner fed in pieces must agree with one whole feed
 * (answer.h), and with rule 1 of tg_answer_extract_opts when boxes are all
 * that count.
 */
#include <errno.h>

#include "common/answer.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
tg_fuzz_scan(tg_answer_scan_t *scan, const tg_answer_opts_t *opts,
    const char *text, size_t len, unsigned step)
{
    size_t  off, piece;
    char   *copy;

    tg_answer_scan_init(scan, opts);
    for (off = 0; off < len; off += piece) {
        piece = step ? step : len;
        if (piece > len - off) {
            piece = len - off;
        }
        copy = tg_fuzz_dup((const uint8_t *) text + off, piece);
        tg_answer_scan_feed(scan, copy, piece);
        free(copy);
    }
    tg_answer_scan_finish(scan);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_fuzz_in_t       in = { data, size };
    tg_answer_opts_t   opts;
    tg_answer_scan_t  *whole, *cut;
    size_t             think_len, final_off, start, end, half, l1, l2;
    char               out[TG_ANSWER_MAX + 1], out2[TG_ANSWER_MAX + 1];
    char               small[4], *text, *a, *b;
    uint8_t            b0, b1;
    int                n, n2;

    b0 = tg_fuzz_byte(&in);
    b1 = tg_fuzz_byte(&in);
    tg_answer_opts_default(&opts);
    opts.format = (tg_answer_format_e) (b0 % 3);
    opts.flags = (b0 >> 2) & 3;
    opts.choices = 2 + b1 % 25;
    opts.int_min = (b1 & 0x80) ? -1000 : 0;
    opts.int_max = (b1 & 0x40) ? 999 : 100000;
    text = tg_fuzz_dup(in.p, in.n);

    n = tg_answer_extract_opts(text, in.n, &opts, out, sizeof(out));
    tg_fuzz_check(n >= 0 && (size_t) n < sizeof(out) && out[n] == '\0');
    if (n > 0) {
        tg_fuzz_check(tg_answer_fits(out, n, &opts));
    }
    n = tg_answer_extract(text, in.n, small, sizeof(small));
    tg_fuzz_check(n >= 0 || n == -ENOSPC);

    if (tg_answer_final_split(text, in.n, &think_len, &final_off)) {
        tg_fuzz_check(think_len <= final_off && final_off <= in.n);
        n = tg_answer_extract_split(text, think_len, text + final_off,
                                    in.n - final_off, &opts, out2,
                                    sizeof(out2));
        tg_fuzz_check(n >= 0 && (size_t) n < sizeof(out2) && out2[n] == '\0');
    }
    half = in.n / 2;
    n = tg_answer_extract_split(text, half, text + half, in.n - half, &opts,
                                out2, sizeof(out2));
    tg_fuzz_check(n >= 0);

    n = tg_answer_normalize(text, in.n, out2, sizeof(out2));
    /* Bytes are bytes: a NUL in the text may be in the answer too. */
    tg_fuzz_check(n == -ENOSPC
                  || (n >= 0 && (size_t) n < sizeof(out2) && out2[n] == '\0'));

    if (tg_answer_last_boxed(text, in.n, &start, &end)) {
        tg_fuzz_check(start <= end && end <= in.n);
    }
    (void) tg_answer_opts_for_problem(text, in.n, &opts);

    /* Two answers: the text cut at its first NUL, or in halves. */
    l1 = strnlen(text, in.n);
    a = tg_fuzz_cstr((const uint8_t *) text, l1);
    l2 = l1 < in.n ? in.n - l1 - 1 : 0;
    b = tg_fuzz_cstr(in.p + in.n - l2, l2);
    n = tg_answer_equal(a, b);
    n2 = tg_answer_equal(b, a);
    tg_fuzz_check(n == n2);
    if (a[0] != '\0') {
        (void) tg_answer_equal(a, a);
    }
    (void) tg_answer_opts_for_bench(a, &opts);
    free(a);
    free(b);

    /* The scanner in pieces against one whole feed. */
    tg_answer_opts_default(&opts);
    opts.format = (tg_answer_format_e) (b0 % 3);
    opts.choices = 2 + b1 % 25;
    whole = malloc(sizeof(*whole));
    cut = malloc(sizeof(*cut));
    tg_fuzz_check(whole != NULL && cut != NULL);
    tg_fuzz_scan(whole, &opts, text, in.n, 0);
    tg_fuzz_scan(cut, &opts, text, in.n, 1 + b1 % 5);
    tg_fuzz_check(whole->last_len == cut->last_len);
    tg_fuzz_check(strcmp(whole->last, cut->last) == 0);
    free(whole);
    free(cut);

    free(text);
    return 0;
}
