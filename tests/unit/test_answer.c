/*
 * Unit tests of plugins/common/answer: hand-written cases, then every
 * recorded trace in ../shared/traces (or $TG_TRACES_DIR), whose recorded
 * `pred` extraction must agree with ours on at least 99% of traces.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "common/answer.h"
#include "traces_reader.h"

#define TG_TEST_AGREEMENT  0.99

typedef struct {
    const char *in;
    const char *want;
} tg_case_t;

static const tg_case_t tg_normalize_cases[] = {
    { "204", "204" },
    { " 033 ", "33" },
    { "000", "0" },
    { "+7", "7" },
    { "-0", "0" },
    { "5.00", "5" },
    { "2.50", "2.5" },
    { "1,000", "1000" },
    { "1{,}024", "1024" },
    { "1,2", "1,2" },
    { "\\dfrac{1}{2}", "1/2" },
    { "\\tfrac{3}{4}", "3/4" },
    { "\\frac12", "1/2" },
    { "-\\frac{7}{8}", "-7/8" },
    { "\\dfrac{\\sqrt{3}}{2}", "\\frac{\\sqrt3}{2}" },
    { "\\frac{a}{b}", "\\frac{a}{b}" },
    { "3\\sqrt{2}", "3\\sqrt2" },
    { "3 \\sqrt{13}", "3\\sqrt{13}" },
    { "\\left( 1, 2 \\right)", "(1,2)" },
    { "\\left\\{1\\right\\}", "\\{1\\}" },
    { "10\\,000", "10000" },
    { "1\\!000", "1000" },
    { "$204$", "204" },
    { "\\$12.50", "12.5" },
    { "\\(42\\)", "42" },
    { "204 \\text{ minutes}", "204" },
    { "12\\text{cm}^2", "12" },
    { "\\text{(B)}", "B" },
    { "\\textbf{(C)}", "C" },
    { "\\text{yes}", "yes" },
    { "\\mathrm{Paris}", "Paris" },
    { "204 minutes", "204" },
    { "12 square units", "12" },
    { "5 and 6", "5and6" },
    { "90^\\circ", "90" },
    { "90^{\\circ}", "90" },
    { "90\xc2\xb0", "90" },
    { "50\\%", "50" },
    { "(B)", "B" },
    { "B)", "B" },
    { "B.", "B" },
    { "(D) 12", "D" },
    { "**B**", "B" },
    { "x = 5", "5" },
    { "CE = 107", "107" },
    { "r_o = 3", "3" },
    { "x=1, y=2", "x=1,y=2" },
    { "a+b=5", "a+b=5" },
    { "{204}", "204" },
    { "204.", "204" },
    { "\\infty", "\\infty" },
    { "\\pi", "\\pi" },
    { "", "" },
};

static const tg_case_t tg_extract_cases[] = {
    { "so it is \\boxed{204}.", "204" },
    { "\\boxed{1} then \\boxed{2}", "2" },
    { "\\boxed{\\frac{1}{2}}", "1/2" },
    { "\\boxed{\\dfrac{\\sqrt{3}}{2}}", "\\frac{\\sqrt3}{2}" },
    { "\\fbox{ 12 }", "12" },
    { "\\boxed {7}", "7" },
    { "\\boxed 7 is it", "7" },
    { "\\boxed{\\{1,2\\}}", "\\{1,2\\}" },
    { "\\boxed{} and \\boxed{}", "" },
    { "\\boxedx{3}", "" },
    { "\\boxed{5} unfinished \\boxed{6", "5" },
    { "\\boxed{\\text{(B)}}", "B" },
    { "The answer is 204.", "204" },
    { "So the final answer is $\\frac{3}{4}$.", "3/4" },
    { "Answer: (C)", "C" },
    { "**Answer**: B", "B" },
    { "**Final Answer**\n\n42\n", "42" },
    { "the answer is 5, which is odd", "5" },
    { "the answer is 17, but that seems not.", "" },
    { "the answer is a list with eight elements.", "" },
    { "answer is 3 then later the answer is 4.", "4" },
    { "The answer is 3.5 cm.", "3.5" },
    { "the answer is \\boxed{9} really", "9" },
    { "thinking: the answer is 5.\n</think>\nThe answer is 6.", "6" },
    { "no answer here at all", "" },
};

static void
tg_check_cases(const tg_case_t *cases, size_t n, int extract)
{
    char out[TG_ANSWER_MAX];
    size_t i;
    int r;

    for (i = 0; i < n; i++) {
        const char *in = cases[i].in;

        r = extract ? tg_answer_extract(in, strlen(in), out, sizeof(out))
                    : tg_answer_normalize(in, strlen(in), out, sizeof(out));
        cr_expect(r >= 0, "%s(\"%s\") failed: %d",
                  extract ? "extract" : "normalize", in, r);
        cr_expect_str_eq(out, cases[i].want, "%s(\"%s\")",
                         extract ? "extract" : "normalize", in);
        cr_expect_eq((size_t) r, strlen(out));
    }
}

Test(answer, normalize_table)
{
    tg_check_cases(tg_normalize_cases,
                   sizeof(tg_normalize_cases) / sizeof(tg_normalize_cases[0]),
                   0);
}

Test(answer, extract_table)
{
    tg_check_cases(tg_extract_cases,
                   sizeof(tg_extract_cases) / sizeof(tg_extract_cases[0]), 1);
}

Test(answer, normalize_in_place_and_errors)
{
    char buf[32] = "  \\dfrac{1}{2} ";
    char tiny[3];

    cr_assert_eq(tg_answer_normalize(buf, strlen(buf), buf, sizeof(buf)), 3);
    cr_assert_str_eq(buf, "1/2");
    cr_assert_eq(tg_answer_normalize("12345", 5, tiny, sizeof(tiny)),
                 -ENOSPC);
    cr_assert_eq(tg_answer_normalize(NULL, 0, tiny, sizeof(tiny)), -EINVAL);
    cr_assert_eq(tg_answer_extract("\\boxed{12345}", 13, tiny, sizeof(tiny)),
                 -ENOSPC);
    cr_assert_eq(tg_answer_extract("x", 1, tiny, 0), -EINVAL);
}

Test(answer, equal)
{
    cr_assert(tg_answer_equal("204", "\\boxed{204}") == 0);
    cr_assert(tg_answer_equal("204", " 204. "));
    cr_assert(tg_answer_equal("033", "33"));
    cr_assert(tg_answer_equal("\\dfrac{1}{2}", "\\frac12"));
    cr_assert(tg_answer_equal("0.5", "1/2"));
    cr_assert(tg_answer_equal("2/4", "\\frac{1}{2}"));
    cr_assert(tg_answer_equal("-1.25", "-5/4"));
    cr_assert(tg_answer_equal("(B)", "B"));
    cr_assert(tg_answer_equal("1,000", "1000.0"));
    cr_assert_not(tg_answer_equal("1/3", "0.33"));
    cr_assert_not(tg_answer_equal("12", "21"));
    cr_assert_not(tg_answer_equal("", ""));
    cr_assert_not(tg_answer_equal("1/0", "2/0"));
}

Test(answer, formats)
{
    tg_answer_opts_t o;
    char out[64];

    tg_answer_opts_default(&o);
    cr_assert_eq(tg_answer_opts_for_bench("aime2025", &o), 0);
    cr_assert_eq(o.format, TG_ANSWER_INTEGER);
    cr_assert(tg_answer_fits("999", 3, &o));
    cr_assert(tg_answer_fits("0", 1, &o));
    cr_assert_not(tg_answer_fits("1000", 4, &o));
    cr_assert_not(tg_answer_fits("-1", 2, &o));
    cr_assert_not(tg_answer_fits("1/2", 3, &o));
    cr_assert_not(tg_answer_fits("99999999999999999999999", 23, &o));
    /* The last box that fits wins over a later one that does not. */
    cr_assert_eq(tg_answer_extract_opts("\\boxed{287} \\boxed{3361}", 24, &o,
                                        out, sizeof(out)), 3);
    cr_assert_str_eq(out, "287");
    cr_assert_eq(tg_answer_extract_opts("\\boxed{\\frac{400}{3}}", 20, &o,
                                        out, sizeof(out)), 0);

    cr_assert_eq(tg_answer_opts_for_bench("GPQA-diamond", &o), 0);
    cr_assert_eq(o.format, TG_ANSWER_CHOICE);
    cr_assert(tg_answer_fits("D", 1, &o));
    cr_assert_not(tg_answer_fits("E", 1, &o));
    cr_assert_eq(tg_answer_opts_for_bench("unheard-of", &o), -ENOENT);
    cr_assert_eq(o.format, TG_ANSWER_ANY);
    cr_assert(tg_answer_fits("anything", 8, NULL));
}

Test(answer, reasoning_flag)
{
    static const char cut[] = "Hmm, so the answer is 107.\n\nWait, maybe";
    static const char done[] = "the answer is 5.\n</think>\nAnswer: 6";
    tg_answer_opts_t o;
    char out[64];

    tg_answer_opts_default(&o);
    cr_assert_eq(tg_answer_extract_opts(cut, strlen(cut), &o, out,
                                        sizeof(out)), 3);
    o.flags = TG_ANSWER_F_REASONING;
    cr_assert_eq(tg_answer_extract_opts(cut, strlen(cut), &o, out,
                                        sizeof(out)), 0);
    cr_assert_eq(tg_answer_extract_opts(done, strlen(done), &o, out,
                                        sizeof(out)), 1);
    cr_assert_str_eq(out, "6");
    o.flags = TG_ANSWER_F_BOXED_ONLY;
    cr_assert_eq(tg_answer_extract_opts(done, strlen(done), &o, out,
                                        sizeof(out)), 0);
}

Test(answer, last_boxed_on_prefix)
{
    static const char t[] = "a \\boxed{1} b \\fbox{x{y}z} c \\boxed{2";
    size_t s, e;

    cr_assert(tg_answer_last_boxed(t, strlen(t), &s, &e));
    cr_assert_eq(e - s, 5);
    cr_assert(strncmp(t + s, "x{y}z", 5) == 0);
    cr_assert(tg_answer_last_boxed(t, 12, &s, &e));
    cr_assert_eq(t[s], '1');
    cr_assert_not(tg_answer_last_boxed(t, 10, &s, &e));
}

/* Feeding a text in pieces of every size gives the same box as whole. */
Test(answer, scan_split_anywhere)
{
    static const char t[] = "x \\boxed{\\dfrac{1}{2}} y \\fbox{ 3 } z "
                            "\\boxed{\\text{(B)}} \\boxed 42";
    size_t step, i, len = strlen(t);

    for (step = 1; step <= len; step++) {
        tg_answer_scan_t sc;

        tg_answer_scan_init(&sc, NULL);
        for (i = 0; i < len; i += step) {
            tg_answer_scan_feed(&sc, t + i, len - i < step ? len - i : step);
        }
        cr_assert_str_eq(tg_answer_scan_last(&sc, NULL), "B");
        tg_answer_scan_finish(&sc);
        cr_assert_str_eq(tg_answer_scan_last(&sc, NULL), "42");
        cr_assert_eq(sc.boxes, 4);
    }
}

/* --- recorded traces ---------------------------------------------------- */

/* A recorded answer (int or string) as text; "" when there is none. */
static void
tg_json_answer(json_t *v, char *out, size_t size)
{
    out[0] = '\0';
    if (json_is_integer(v)) {
        snprintf(out, size, "%lld", (long long) json_integer_value(v));
    } else if (json_is_real(v)) {
        snprintf(out, size, "%g", json_real_value(v));
    } else if (json_is_string(v) && strcmp(json_string_value(v), "NO_ANSWER")
                                    != 0) {
        snprintf(out, size, "%s", json_string_value(v));
    }
}

Test(answer, recorded_traces, .timeout = 600)
{
    char ours[TG_ANSWER_MAX], pred[TG_ANSWER_MAX];
    char gold[TG_ANSWER_MAX], id[64];
    unsigned long total = 0, agree = 0, correct = 0, rng = 12345;
    tg_traces_t tr;
    json_t *j;

    tg_traces_open(&tr);
    while (tg_traces_next_file(&tr)) {
        unsigned long n = 0, ok = 0, acc = 0;
        const char *base = tr.base;

        while ((j = tg_traces_next(&tr)) != NULL) {
            json_t *out, *pid;
            tg_answer_opts_t o;
            tg_answer_scan_t sc;
            const char *text;
            size_t tlen, i, step;
            int r;

            out = json_object_get(j, "output");
            cr_assert(json_is_string(out), "%s: no output", base);
            text = json_string_value(out);
            tlen = json_string_length(out);

            /* Trace files record reasoning models: an output without
             * </think> is thinking cut off, with no final answer. */
            tg_answer_opts_default(&o);
            o.flags = TG_ANSWER_F_REASONING;
            tg_answer_opts_for_bench(
                json_string_value(json_object_get(j, "bench")) ?: "", &o);
            r = tg_answer_extract_opts(text, tlen, &o, ours, sizeof(ours));
            cr_assert_geq(r, 0);
            tg_json_answer(json_object_get(j, "pred"), pred, sizeof(pred));
            tg_json_answer(json_object_get(j, "answer"), gold, sizeof(gold));

            n++;
            if ((r == 0 && tg_answer_normalize(pred, strlen(pred), pred,
                                               sizeof(pred)) == 0)
                || tg_answer_equal(ours, pred))
            {
                ok++;
            } else {
                pid = json_object_get(j, "problem_id");
                if (json_is_string(pid)) {
                    snprintf(id, sizeof(id), "%s", json_string_value(pid));
                } else {
                    snprintf(id, sizeof(id), "%lld",
                             (long long) json_integer_value(pid));
                }
                fprintf(stderr, "traces: disagree %s problem %s sample %lld:"
                        " ours \"%s\" pred \"%s\"\n", base, id,
                        (long long) json_integer_value(
                            json_object_get(j, "sample_id")), ours, pred);
            }
            acc += tg_answer_equal(ours, gold);

            /* The streamed scanner, fed in uneven pieces, must find the
             * same last box as the whole-text pass. */
            tg_answer_scan_init(&sc, &o);
            for (i = 0; i < tlen; i += step) {
                rng = rng * 6364136223846793005UL + 1442695040888963407UL;
                step = 1 + (rng >> 33) % 97;
                tg_answer_scan_feed(&sc, text + i,
                                    tlen - i < step ? tlen - i : step);
            }
            tg_answer_scan_finish(&sc);
            if (sc.last_len > 0) {
                cr_assert_str_eq(sc.last, ours, "%s: streamed box differs",
                                 base);
            }
            json_decref(j);
        }
        fprintf(stderr, "traces: %s: agree with pred %lu/%lu (%.1f%%), "
                "accuracy vs answer %lu/%lu (%.1f%%)\n", base, ok, n,
                n ? 100.0 * ok / n : 0.0, acc, n, n ? 100.0 * acc / n : 0.0);
        total += n;
        agree += ok;
        correct += acc;
    }
    fprintf(stderr, "traces: all: agree with pred %lu/%lu (%.2f%%), "
            "accuracy vs answer %lu/%lu (%.1f%%)\n", agree, total,
            total ? 100.0 * agree / total : 0.0, correct, total,
            total ? 100.0 * correct / total : 0.0);
    tg_traces_close(&tr);
    cr_assert_gt(total, 0, "trace files hold no traces");
    cr_assert_geq((double) agree, TG_TEST_AGREEMENT * (double) total,
                  "extraction agrees with pred on only %lu of %lu traces",
                  agree, total);
}

/* --- random input -------------------------------------------------------- */

static const char *const tg_fuzz_tokens[] = {
    "\\boxed{", "\\fbox", "\\boxed ", "{", "}", "\\frac", "\\dfrac", "1",
    "0", "7", " ", "\\text{", "\\left(", "\\right)", "answer is ", ".",
    ",", "=", "(", "B", ")", "\\", "$", "</think>", "\n", "x", "^\\circ",
    "\\sqrt{", "-", "/", "\\,", "cm", "Final Answer", "**", "%", ":",
};

/*
 * Random token soup: nothing crashes (ASan/UBSan builds run this too),
 * lengths are honest, and normalizing twice changes nothing, which
 * tg_answer_equal relies on when one side is already normalized.
 */
Test(answer, random_input)
{
    size_t ntok = sizeof(tg_fuzz_tokens) / sizeof(tg_fuzz_tokens[0]);
    unsigned long rng = 7;
    char in[512], a[TG_ANSWER_MAX], b[TG_ANSWER_MAX], small[8];
    int iter, ra, rb;

    for (iter = 0; iter < 20000; iter++) {
        size_t len = 0, k, ntoks;

        rng = rng * 6364136223846793005UL + 1442695040888963407UL;
        ntoks = 1 + (rng >> 33) % 24;
        for (k = 0; k < ntoks; k++) {
            const char *t;

            rng = rng * 6364136223846793005UL + 1442695040888963407UL;
            t = tg_fuzz_tokens[(rng >> 33) % ntok];
            if (len + strlen(t) >= sizeof(in)) {
                break;
            }
            memcpy(in + len, t, strlen(t));
            len += strlen(t);
        }
        in[len] = '\0';
        ra = tg_answer_normalize(in, len, a, sizeof(a));
        cr_assert_geq(ra, 0);
        cr_assert_eq((size_t) ra, strlen(a));
        rb = tg_answer_normalize(a, (size_t) ra, b, sizeof(b));
        cr_assert_str_eq(a, b, "not idempotent on \"%s\"", in);
        ra = tg_answer_extract(in, len, a, sizeof(a));
        cr_assert_geq(ra, 0);
        cr_assert_eq((size_t) ra, strlen(a));
        rb = tg_answer_extract(in, len, small, sizeof(small));
        cr_assert(rb == -ENOSPC || (rb >= 0 && (size_t) rb < sizeof(small)));
        (void) tg_answer_equal(in, a);
    }
}
