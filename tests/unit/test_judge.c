/*
 * Unit tests of plugins/common/judge: which tokens are a Yes or a No,
 * P(Yes) from summed variants, the answer when neither appears, and
 * logprobs far down the scale.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <math.h>
#include <string.h>

#include "common/judge.h"

#define LP(tok, x)  { tok, sizeof(tok) - 1, x }


Test(judge, variants)
{
    cr_assert_eq(tg_judge_token("Yes", 3), 1);
    cr_assert_eq(tg_judge_token(" yes", 4), 1);
    cr_assert_eq(tg_judge_token("YES", 3), 1);
    cr_assert_eq(tg_judge_token("\xe2\x96\x81Yes", 6), 1);
    cr_assert_eq(tg_judge_token("\xc4\xa0yes", 5), 1);
    cr_assert_eq(tg_judge_token("No", 2), -1);
    cr_assert_eq(tg_judge_token("  NO", 4), -1);
    cr_assert_eq(tg_judge_token("\nno", 3), -1);
    /* Not answers: other words, prefixes, trailing text. */
    cr_assert_eq(tg_judge_token("Yesterday", 9), 0);
    cr_assert_eq(tg_judge_token("Ye", 2), 0);
    cr_assert_eq(tg_judge_token("None", 4), 0);
    cr_assert_eq(tg_judge_token("N", 1), 0);
    cr_assert_eq(tg_judge_token("", 0), 0);
    cr_assert_eq(tg_judge_token(NULL, 0), 0);
    /* len, not the NUL, ends the token. */
    cr_assert_eq(tg_judge_token("Yes!", 3), 1);
}


Test(judge, sums_variants)
{
    tg_logprob_t  top[] = {
        LP("Yes", log(0.4)), LP(" yes", log(0.2)), LP("No", log(0.1)),
        LP("The", log(0.25)), LP(" NO", log(0.05))
    };
    tg_judge_t    j;

    cr_assert_eq(tg_judge_p_yes(top, 5, &j), 0);
    cr_assert_float_eq(j.p_yes, 0.6 / 0.75, 1e-12);
    cr_assert_float_eq(j.yes, 0.6, 1e-12);
    cr_assert_float_eq(j.no, 0.15, 1e-12);
    cr_assert_eq(j.matched, 4);
}


Test(judge, only_one_side)
{
    tg_logprob_t  yes[] = { LP("Yes", -0.1), LP("Maybe", -2.5) };
    tg_logprob_t  no[] = { LP("no", -3.0) };
    tg_judge_t    j;

    cr_assert_eq(tg_judge_p_yes(yes, 2, &j), 0);
    cr_assert_float_eq(j.p_yes, 1.0, 1e-12);
    cr_assert_eq(tg_judge_p_yes(no, 1, &j), 0);
    cr_assert_float_eq(j.p_yes, 0.0, 1e-12);
}


Test(judge, neither_is_an_error_not_a_half)
{
    tg_logprob_t  top[] = { LP("The", -0.5), LP("I", -1.2) };
    tg_judge_t    j;

    cr_assert_eq(tg_judge_p_yes(top, 2, &j), -ENOENT);
    cr_assert(isnan(j.p_yes));
    cr_assert_eq(j.matched, 0);
    /* No logprobs at all (a backend that ignored top_logprobs). */
    cr_assert_eq(tg_judge_p_yes(NULL, 0, &j), -ENOENT);
    cr_assert(isnan(j.p_yes));
    cr_assert_eq(tg_judge_p_yes(NULL, 2, &j), -EINVAL);
    cr_assert_eq(tg_judge_p_yes(top, 2, NULL), -EINVAL);
}


Test(judge, far_down_the_scale)
{
    /* exp(-800) is 0 in a double; the ratio must still come out. */
    tg_logprob_t  top[] = { LP("Yes", -800.0), LP("No", -800.0 - log(3)) };
    tg_judge_t    j;

    cr_assert_eq(tg_judge_p_yes(top, 2, &j), 0);
    cr_assert_float_eq(j.p_yes, 0.75, 1e-9);
}


Test(judge, odd_numbers)
{
    tg_logprob_t  top[] = { LP("Yes", NAN), LP("No", 0.5), LP("yes", -1) };
    tg_judge_t    j;

    /* NaN skipped; a positive logprob counts as probability 1. */
    cr_assert_eq(tg_judge_p_yes(top, 3, &j), 0);
    cr_assert_eq(j.matched, 2);
    cr_assert_float_eq(j.p_yes, exp(-1) / (1 + exp(-1)), 1e-12);
}
