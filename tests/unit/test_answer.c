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

#include <ctype.h>

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
    { "I have not reached a final answer yet.", "" },
    { "**Final Answer**\n\n42", "42" },
    { "Final Answer: 7", "7" },
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

/* Multiple choice: a letter standing alone, never a word's capital. */
static const tg_case_t tg_choice_cases[] = {
    { "</think>**Answer: C**", "C" },
    { "</think>Thus the answer is (C).", "C" },
    { "</think>The correct choice is **(D)**.", "D" },
    { "</think>which corresponds to choice **(B)**", "B" },
    { "</think>Thus, the correct starting materials are in **option B**.",
      "B" },
    { "</think>### Final Answer:\n\n**(C) Cs**", "C" },
    { "</think>\\boxed{\\text{(B) } 6.3 \\times 10^{-7}}", "B" },
    { "</think>\\boxed{(D) ~0.32}", "D" },
    { "</think>\\boxed{\\text{A}}", "A" },
    { "</think>**Answer**", "" },
    { "</think>**Carbon** is the answer", "" },
    { "</think>Answer: A mixture of isomers", "" },
    { "</think>Options A and D fail; **Option C** incorrectly pairs them.",
      "" },
    { "</think>**Option A** and **D** suggest single ketones.", "" },
    { "</think>The answer is E.", "" },
    { "</think>I have not reached a final answer yet.", "" },
    { "the answer is (B), surely\n", "" },
    /* After a box that names no option, the phrase names it; an option
     * may be followed by a Unicode space (U+202F, U+00A0) and its text,
     * and a few words may come between "choice" and "is". */
    { "</think>\\[\n\\boxed{3}\n\\]\n\nThe correct choice is "
      "**(D)\xE2\x80\xAF" "3**.", "D" },
    { "</think>\\boxed{0.77c}\n\nThus the answer is (C)\xC2\xA0" "0.77c.",
      "C" },
    { "</think>\\boxed{\\text{hexane}}\n\nThus the correct choice among "
      "the given options is **(D) \\(\\hbar/\\sqrt{2}\\)**.", "D" },
    { "</think>\\boxed{42}\nThe option that fits is B.", "B" },
    { "</think>\\boxed{(B)\xE2\x80\xAF" "3536}", "B" },
    { "</think>\\boxed{42}\n\nNone of the listed options (A\xE2\x80\x93"
      "D) matches this product.", "" },
    { "</think>\\boxed{42}\nThe choice that is closest is (B) or (C).", "" },
    { "</think>\\boxed{42}\nThe option listed second is C, which is "
      "wrong.", "" },
    { "</think>\\boxed{42}\nThe choice that we would make if the data "
      "were better is (B).", "" },
    { "</think>So the answer is **C\xC2\xA0" "carbon**", "" },
    { "</think>The answer is **C\xC3\xA9**.", "" },
    { "</think>\\boxed{42}\nThe choice, which is (B).", "" },
    { "analysis: the answer is (A)<|end|><|start|>assistant<|channel|>"
      "final<|message|>The answer is (B).", "B" },
};

Test(answer, multiple_choice)
{
    static const char gpqa[] = "Which is it?\nChoices:\n(A) 10^-4 eV\n"
                               "(B) 10^-9 eV\n(C) 10^-11 eV\n(D) 10^-8 eV\n";
    static const char lines[] = "Pick one.\nA) red\nB) green\nC) blue\n";
    static const char stereo[] = "(E)-pent-2-en-1-ol + acetyl bromide\n"
                                 "(A) x\n(B) y\n";
    static const char aime[] = "Find the remainder when (a) is divided by 7.";
    tg_answer_opts_t o;
    char out[64];
    size_t i;
    int r;

    tg_answer_opts_default(&o);
    cr_assert_eq(tg_answer_opts_for_problem(gpqa, strlen(gpqa), &o), 4);
    cr_assert_eq(o.format, TG_ANSWER_CHOICE);
    cr_assert_eq(o.choices, 4);
    o.flags = TG_ANSWER_F_REASONING;
    for (i = 0; i < sizeof(tg_choice_cases) / sizeof(tg_choice_cases[0]);
         i++)
    {
        const tg_case_t *c = &tg_choice_cases[i];

        r = tg_answer_extract_opts(c->in, strlen(c->in), &o, out,
                                   sizeof(out));
        cr_assert_eq(r, (int) strlen(c->want), "\"%s\": %d", c->in, r);
        cr_assert_str_eq(out, c->want, "\"%s\"", c->in);
    }

    tg_answer_opts_default(&o);
    cr_assert_eq(tg_answer_opts_for_problem(lines, strlen(lines), &o), 3);
    tg_answer_opts_default(&o);
    cr_assert_eq(tg_answer_opts_for_problem(stereo, strlen(stereo), &o), 2);
    tg_answer_opts_default(&o);
    cr_assert_eq(tg_answer_opts_for_problem(aime, strlen(aime), &o), 0);
    cr_assert_eq(o.format, TG_ANSWER_ANY);
    cr_assert_eq(tg_answer_opts_for_problem(NULL, 0, &o), -EINVAL);
}

/* An integer box ending a derivation gives its value; a list does not. */
Test(answer, integer_derivation_box)
{
    static const char sum[] = "\\boxed{147 + 147 = 294 }.";
    static const char list[] = "\\boxed{200 - 70 = 130, 300 - 130 = 170.}";
    tg_answer_opts_t o;
    char out[64];

    tg_answer_opts_default(&o);
    tg_answer_opts_for_bench("aime", &o);
    cr_assert_eq(tg_answer_extract_opts(sum, strlen(sum), &o, out,
                                        sizeof(out)), 3);
    cr_assert_str_eq(out, "294");
    cr_assert_eq(tg_answer_extract_opts(list, strlen(list), &o, out,
                                        sizeof(out)), 0);
    /* Any format keeps the box as written. */
    cr_assert_gt(tg_answer_extract(sum, strlen(sum), out, sizeof(out)), 3);
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

/*
 * 1 when the recorder's multiple-choice `pred` came from its "**X"
 * pattern matching a capital that starts a word ("**Correct answer",
 * "**Answer"): its rule takes the last of \boxed{X, \boxed{(X,
 * \boxed{\text{(X, \boxed{\text{X, **X, **(X with X in A-D.
 */
static int
tg_recorder_word_artefact(const char *t, size_t len)
{
    static const char *const pats[] = {
        "\\boxed{", "\\boxed{(", "\\boxed{\\text{(", "\\boxed{\\text{", "**",
        "**(",
    };
    size_t i, k, pl, last = len;
    int word = 0;

    for (i = 0; i < len; i++) {
        for (k = 0; k < sizeof(pats) / sizeof(pats[0]); k++) {
            pl = strlen(pats[k]);
            if (i + pl < len && memcmp(t + i, pats[k], pl) == 0
                && t[i + pl] >= 'A' && t[i + pl] <= 'D')
            {
                last = i;
                word = k == 4 && i + pl + 1 < len
                       && islower((unsigned char) t[i + pl + 1]);
            }
        }
    }
    return last < len && word;
}

/* What one trace file gave, for the per-file verdict. */
typedef struct {
    unsigned long   n, agree, acc;
    unsigned long   zero_artefact;  /* ours "0", recorded NO_ANSWER */
    unsigned long   both, both_agree;   /* both found a letter */
    unsigned long   word_artefact;  /* pred from "**Word" */
    unsigned long   ours_only, pred_only;
    unsigned long   options_found;  /* problems read as multiple choice */
    int             format;
} tg_file_tally_t;

/*
 * Compares our extraction with the recorder's `pred` on every trace.
 *
 * Integer benchmarks (AIME): at least 99% of every file agrees.  The one
 * recorder artefact forgiven is a falsy zero: in recordings without a
 * finish_reason the recorder wrote NO_ANSWER for a final \boxed{0} (and 0
 * where finish_reason is STOP), while 0 is a legal AIME answer and ours.
 * Both counts are printed.
 *
 * Multiple choice (GPQA): the recorder reads "**X" as option X, so
 * "**Answer" is "A" and "**Carbon" is "C", and it does not read prose
 * ("the correct choice is **(D)**") or gpt-oss's final channel; so raw
 * agreement says little.  What must hold: where both found a letter they
 * agree on at least 99% of every file, and every problem's text is read
 * as offering four options.  Disagreements are printed by kind.
 */
Test(answer, recorded_traces, .timeout = 600)
{
    char ours[TG_ANSWER_MAX], pred[TG_ANSWER_MAX];
    char gold[TG_ANSWER_MAX], id[64];
    unsigned long total = 0, agree = 0, correct = 0, rng = 12345;
    tg_traces_t tr;
    json_t *j;

    tg_traces_open(&tr);
    while (tg_traces_next_file(&tr)) {
        tg_file_tally_t f = { 0 };
        const char *base = tr.base;

        json_t *all = json_array();
        size_t at;

        cr_assert_not_null(all);
        while ((j = tg_traces_next(&tr)) != NULL) {
            json_array_append_new(all, j);
        }
        f.format = -1;
        json_array_foreach(all, at, j) {
            json_t *out, *pid, *prob;
            tg_answer_opts_t o, po;
            tg_answer_scan_t sc;
            const char *text;
            size_t tlen, i, step;
            int r, same;

            out = json_object_get(j, "output");
            cr_assert(json_is_string(out), "%s: no output", base);
            text = json_string_value(out);
            tlen = json_string_length(out);

            tg_answer_opts_default(&o);
            /* Read every file as a reasoning model's: an output without
             * an end of thinking is thinking cut off (Qwen3-235B's are
             * all cut at 5,000 tokens), so its musings are not answers;
             * boxes still count. */
            o.flags = TG_ANSWER_F_REASONING;
            tg_answer_opts_for_bench(
                json_string_value(json_object_get(j, "bench")) ?: "", &o);
            f.format = (int) o.format;
            r = tg_answer_extract_opts(text, tlen, &o, ours, sizeof(ours));
            cr_assert_geq(r, 0);
            tg_json_answer(json_object_get(j, "pred"), pred, sizeof(pred));
            tg_json_answer(json_object_get(j, "answer"), gold, sizeof(gold));

            /* The problem text alone must say what the bench says. */
            prob = json_object_get(j, "problem");
            tg_answer_opts_default(&po);
            if (json_is_string(prob)
                && tg_answer_opts_for_problem(json_string_value(prob),
                                              json_string_length(prob),
                                              &po) > 0)
            {
                f.options_found++;
                cr_assert_eq(po.choices, o.format == TG_ANSWER_CHOICE
                                         ? o.choices : po.choices);
            }

            f.n++;
            same = (r == 0 && tg_answer_normalize(pred, strlen(pred), pred,
                                                  sizeof(pred)) == 0)
                   || tg_answer_equal(ours, pred);
            if (same) {
                f.agree++;
            } else {
                pid = json_object_get(j, "problem_id");
                if (json_is_string(pid)) {
                    snprintf(id, sizeof(id), "%s", json_string_value(pid));
                } else {
                    snprintf(id, sizeof(id), "%lld",
                             (long long) json_integer_value(pid));
                }
                if (r > 0 && pred[0] == '\0') {
                    f.ours_only++;
                } else if (r == 0) {
                    f.pred_only++;
                }
                if (strcmp(ours, "0") == 0 && pred[0] == '\0') {
                    f.zero_artefact++;
                }
                if (o.format != TG_ANSWER_CHOICE || (r > 0 && *pred)) {
                    fprintf(stderr, "traces: disagree %s problem %s sample "
                            "%lld: ours \"%s\" pred \"%s\"\n", base, id,
                            (long long) json_integer_value(
                                json_object_get(j, "sample_id")), ours,
                            pred);
                }
            }
            if (o.format == TG_ANSWER_CHOICE && pred[0] != '\0'
                && tg_recorder_word_artefact(text, tlen))
            {
                f.word_artefact++;
            } else if (r > 0 && pred[0] != '\0') {
                f.both++;
                f.both_agree += same;
            }
            f.acc += tg_answer_equal(ours, gold);

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
        }
        json_decref(all);
        fprintf(stderr, "traces: %s: agree with pred %lu/%lu (%.1f%%), "
                "accuracy vs answer %lu/%lu (%.1f%%)\n", base,
                f.agree, f.n,
                f.n ? 100.0 * f.agree / f.n : 0.0, f.acc, f.n,
                f.n ? 100.0 * f.acc / f.n : 0.0);
        if (f.format == TG_ANSWER_CHOICE) {
            fprintf(stderr, "traces: %s: pred from \"**Word\" %lu; both "
                    "found a letter otherwise %lu, agree %lu; only ours %lu, "
                    "only pred %lu\n", base, f.word_artefact, f.both,
                    f.both_agree, f.ours_only, f.pred_only);
            cr_assert_geq((double) f.both_agree, 0.99 * (double) f.both,
                          "%s: the letters differ on %lu of %lu traces",
                          base, f.both - f.both_agree, f.both);
            cr_assert_eq(f.options_found, f.n,
                         "%s: options read in %lu of %lu problems", base,
                         f.options_found, f.n);
        } else {
            fprintf(stderr, "traces: %s: with the recorder's falsy zero "
                    "(%lu) forgiven: %lu/%lu (%.1f%%)\n", base,
                    f.zero_artefact, f.agree + f.zero_artefact, f.n,
                    f.n ? 100.0 * (f.agree + f.zero_artefact) / f.n : 0.0);
            cr_assert_geq((double) (f.agree + f.zero_artefact),
                          TG_TEST_AGREEMENT * (double) f.n,
                          "%s: extraction agrees with pred on only %lu of "
                          "%lu traces", base, f.agree, f.n);
            cr_assert_eq(f.options_found, 0,
                         "%s: options read in %lu problems", base,
                         f.options_found);
        }
        total += f.n;
        agree += f.agree;
        correct += f.acc;
    }
    fprintf(stderr, "traces: all: agree with pred %lu/%lu (%.2f%%), "
            "accuracy vs answer %lu/%lu (%.1f%%)\n", agree, total,
            total ? 100.0 * agree / total : 0.0, correct, total,
            total ? 100.0 * correct / total : 0.0);
    tg_traces_close(&tr);
    cr_assert_gt(total, 0, "trace files hold no traces");
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
