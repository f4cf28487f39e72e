/*
 * self_consistency against the fake host: the vote, its tie rule, who
 * does not vote, the fallbacks, option bounds, and early_stop=exact giving
 * plain voting's answer and winner for no more tokens on hundreds of
 * random scripted requests.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

Test(self_consistency, descriptor_and_option_bounds)
{
    const tg_option_t  *n = tg_test_option(&thinkgate_plugin, "n"), *es;
    fake_host_t        *h = tg_test_new(&thinkgate_plugin);

    cr_assert_str_eq(thinkgate_plugin.name, "self_consistency");
    cr_assert_str_eq(thinkgate_plugin.signature, TG_PLUGIN_SIGNATURE);
    cr_assert_not_null(n);
    cr_assert_eq(n->type, TG_OPT_INT);
    cr_assert_str_eq(n->def, "8");
    cr_assert_eq(n->min, 1);
    cr_assert_eq(n->max, 64);
    es = tg_test_option(&thinkgate_plugin, "early_stop");
    cr_assert_not_null(es);
    cr_assert_eq(es->type, TG_OPT_ENUM);
    cr_assert_str_eq(es->def, "none");
    cr_assert_str_eq(es->choices, "none|exact");

    cr_assert_eq(fake_host_set_options(h, "n=0"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=65"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=2.5"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "early_stop=maybe"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "k=2"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=1 n=64 early_stop=exact"), 0);
    cr_assert_eq(fake_host_set_options(h, "bench=aime2024 reasoning=off"), 0);
    fake_host_free(h);
}


Test(self_consistency, default_n_is_8)
{
    tg_test_trace_t  tr[8];
    fake_host_t     *h;
    size_t           i;

    for (i = 0; i < 8; i++) {
        tr[i] = (tg_test_trace_t) { "7", 10 + (uint32_t) i, 0 };
    }
    h = tg_test_host(&thinkgate_plugin, "", tr, 8);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 8);
    cr_assert_eq(fake_host_tokens(h), 8 * 10 + 28, "plain voting waits for "
                 "every trace");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"7\":8}");
    cr_assert_eq(fake_host_winner(h), 0);
    tg_test_clean(h);
}


Test(self_consistency, majority_wins_with_its_earliest_finisher)
{
    static const tg_test_trace_t  tr[] = {
        { "3", 50, 0 }, { "5", 10, 0 }, { "3", 40, 0 }, { "7", 20, 0 },
        { "3", 60, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=5", tr, 5);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_eq(fake_host_end_calls(h), 1);
    cr_assert_eq(fake_host_winner(h), 2, "the first trace to finish with 3");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"3\"");
    /* Groups appear in the order their first voter finished. */
    cr_assert_str_eq(fake_host_summary(h, "votes"),
                     "{\"5\":1,\"7\":1,\"3\":3}");
    cr_assert_null(fake_host_summary(h, "fallback"));
    cr_assert_eq(fake_host_tokens(h), 180);
    cr_assert_eq(fake_host_usage_tokens(h), 40);
    cr_assert(strstr(fake_host_out_content(h), "\\boxed{3}") != NULL);
    tg_test_clean(h);
}


Test(self_consistency, tie_goes_to_the_earliest_finisher)
{
    static const tg_test_trace_t  a[] = {
        { "A", 30, 0 }, { "B", 20, 0 }, { "B", 50, 0 }, { "A", 25, 0 }
    };
    static const tg_test_trace_t  b[] = {
        { "A", 30, 0 }, { "B", 20, 0 }, { "B", 50, 0 }, { "A", 15, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=4", a, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"B\"");
    cr_assert_eq(fake_host_winner(h), 1);
    tg_test_clean(h);

    h = tg_test_host(&thinkgate_plugin, "n=4", b, 4);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"A\"");
    cr_assert_eq(fake_host_winner(h), 3);
    tg_test_clean(h);
}


Test(self_consistency, simultaneous_finishers_order_by_start)
{
    /* Same length, same start: a lockstep batch ends them in one step;
     * the one started first counts as first. */
    static const tg_test_trace_t  tr[] = {
        { "B", 20, 0 }, { "A", 20, 0 }, { "A", 30, 0 }, { "B", 30, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=4", tr, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"B\"");
    cr_assert_eq(fake_host_winner(h), 0);
    tg_test_clean(h);
}


Test(self_consistency, equal_values_are_one_answer)
{
    static const tg_test_trace_t  tr[] = {
        { "2", 10, 0 }, { "1/2", 20, 0 }, { "0.5", 30, 0 },
        { "\\frac{1}{2}", 40, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=4", tr, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 1);
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"2\":1,\"1/2\":3}");
    tg_test_clean(h);
}


Test(self_consistency, failed_and_answerless_traces_do_not_vote)
{
    static const tg_test_trace_t  tr[] = {
        { "-", 5, 0 }, { "!", 8, 0 }, { "!", 9, 0 }, { "9", 30, 0 },
        { "-", 6, 0 }, { "4", 20, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=6", tr, 6);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"4\":1,\"9\":1}");
    cr_assert_eq(fake_host_winner(h), 5);
    /* Failed traces count the tokens they made before failing. */
    cr_assert_eq(fake_host_tokens(h), 5 + 5 + 5 + 30 + 6 + 20);
    tg_test_clean(h);
}


Test(self_consistency, no_answer_falls_back_to_the_first_finisher)
{
    static const tg_test_trace_t  tr[] = {
        { "!", 4, 0 }, { "-", 30, 0 }, { "-", 12, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=3", tr, 3);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_eq(fake_host_winner(h), 2, "the failed one cannot answer");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "null");
    cr_assert_str_eq(fake_host_summary(h, "fallback"), "\"first_finished\"");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{}");
    tg_test_clean(h);
}


Test(self_consistency, all_failing_is_502)
{
    static const tg_test_trace_t  tr[] = {
        { "!", 4, 0 }, { "!", 30, 0 }, { "!", 12, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=3 early_stop=exact",
                                   tr, 3);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert_eq(fake_host_end_calls(h), 1);
    tg_test_clean(h);
}


Test(self_consistency, refused_starts_leave_fewer_voters)
{
    fake_trace_script_t  refused = { .content = "x", .tokens = 1,
                                     .refuse_start = 1 };
    static const tg_test_trace_t  tr[] = { { "6", 10, 0 }, { "8", 20, 0 } };
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    cr_assert_eq(fake_host_set_options(h, "n=3"), 0);
    fake_host_add_trace(h, &refused);
    fake_host_free(h);

    h = tg_test_host(&thinkgate_plugin, "n=3", tr, 2);
    fake_host_add_trace(h, &refused);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 2);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"6\"");
    tg_test_clean(h);

    h = tg_test_new(&thinkgate_plugin);
    fake_host_set_options(h, "n=2");
    fake_host_add_trace(h, &refused);
    fake_host_add_trace(h, &refused);
    cr_assert_lt(fake_host_run(h), 0);
    cr_assert_eq(fake_host_fail_status(h), 502);
    tg_test_clean(h);
}


Test(self_consistency, bench_sets_the_answer_format)
{
    static const tg_test_trace_t  tr[] = {
        { "8603", 10, 0 }, { "8603", 20, 0 }, { "197", 30, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=3 bench=aime2024",
                                   tr, 3);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"197\"",
                     "an AIME answer is an integer 0..999");
    tg_test_clean(h);

    h = tg_test_host(&thinkgate_plugin, "n=3 bench=nosuchbench", tr, 3);
    cr_assert_lt(fake_host_run(h), 0);
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "nosuchbench") != NULL);
    tg_test_clean(h);
}


Test(self_consistency, thinking_phrases_are_not_answers)
{
    fake_trace_script_t  cut = { .reasoning = "Perhaps the answer is 17, "
                                 "but wait", .tokens = 10,
                                 .finish_reason = "length" };
    fake_trace_script_t  boxed = { .reasoning = "so \\boxed{12} it is",
                                   .tokens = 20, .finish_reason = "length" };
    fake_trace_script_t  said = { .reasoning = "the answer is 17?",
                                  .content = "The answer is 12.",
                                  .tokens = 30 };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    cr_assert_eq(fake_host_set_options(h, "n=3"), 0);
    fake_host_add_trace(h, &cut);
    fake_host_add_trace(h, &boxed);
    fake_host_add_trace(h, &said);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"12\":2}");
    cr_assert_eq(fake_host_winner(h), 1, "a box before the cut counts");
    tg_test_clean(h);
}


Test(self_consistency, early_stop_cancels_once_settled)
{
    static const tg_test_trace_t  tr[] = {
        { "3", 10, 0 }, { "3", 12, 0 }, { "3", 14, 0 }, { "5", 100, 0 },
        { "4", 200, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=5 early_stop=exact",
                                   tr, 5);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 0);
    cr_assert_eq(fake_host_end_ms(h), 14, "3 votes beat 2 running traces");
    cr_assert_eq(fake_host_traces_cancelled(h), 2);
    cr_assert(fake_host_trace(h, 3)->cancelled_by_plugin);
    cr_assert_eq(fake_host_tokens(h), 10 + 12 + 14 + 14 + 14);
    tg_test_clean(h);
}


Test(self_consistency, early_stop_respects_the_tie_rule)
{
    /* After A, B, A: A leads 2-1 with one trace running.  B could tie at
     * 2-2 but B's first voter finished after A's, so A has won already. */
    static const tg_test_trace_t  tr[] = {
        { "A", 10, 0 }, { "B", 20, 0 }, { "A", 30, 0 }, { "B", 90, 0 }
    };
    /* B first, then A, A: A leads 2-1, but a last B ties 2-2 and takes
     * the tie by finishing first: no early stop. */
    static const tg_test_trace_t  tr2[] = {
        { "B", 10, 0 }, { "A", 20, 0 }, { "A", 30, 0 }, { "B", 90, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=4 early_stop=exact",
                                   tr, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end_ms(h), 30);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"A\"");
    tg_test_clean(h);

    h = tg_test_host(&thinkgate_plugin, "n=4 early_stop=exact", tr2, 4);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end_ms(h), 90);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"B\"");
    cr_assert_eq(fake_host_winner(h), 0);
    tg_test_clean(h);
}


/*
 * Plain voting worked out independently of the plugin: the trace that
 * should win, or -1 when all fail.  Traces end at start + tokens; the
 * batch ends simultaneous ones in start order.
 */
static int
tg_test_reference(const tg_test_trace_t *tr, const uint64_t *start, size_t n)
{
    size_t  i, j, order[16], count[16] = { 0 };
    int     best = -1, first_done = -1;

    for (i = 0; i < n; i++) {
        order[i] = i;
    }
    for (i = 1; i < n; i++) {
        for (j = i; j > 0; j--) {
            size_t  a = order[j - 1], b = order[j];

            if (start[a] + tr[a].tokens <= start[b] + tr[b].tokens) {
                break;
            }
            size_t  t = order[j];

            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    }
    /* count[k]: votes of the answer whose first voter is order[k]. */
    for (i = 0; i < n; i++) {
        const char  *a = tr[order[i]].answer;

        if (a[0] == '!') {
            continue;
        }
        if (first_done < 0) {
            first_done = (int) order[i];
        }
        if (a[0] == '-') {
            continue;
        }
        for (j = 0; j < i && strcmp(tr[order[j]].answer, a) != 0; j++) {
            /* find the first voter */
        }
        count[j]++;
    }
    for (i = 0; i < n; i++) {
        if (count[i] > 0 && (best < 0 || count[i] > count[best])) {
            best = (int) i;
        }
    }
    return best >= 0 ? (int) order[best] : first_done;
}


Test(self_consistency, early_stop_exact_equals_plain_voting, .timeout = 120)
{
    static const char *const  pool[] = { "A", "B", "C", "D", "-", "!" };
    uint64_t                  seed = 0x5eed5c0ffee1234ull;
    uint64_t                  plain_tokens = 0, exact_tokens = 0;
    unsigned                  c, stopped = 0;

    for (c = 0; c < 600; c++) {
        tg_test_trace_t  tr[16] = { { NULL, 0, 0 } };
        uint64_t         start[16] = { 0 };
        fake_host_t     *plain, *exact;
        char             opts[64];
        size_t           n = 1 + tg_test_rand(&seed) % 12, i;
        unsigned         spread = 1 + tg_test_rand(&seed) % 4;

        for (i = 0; i < n; i++) {
            /* Few distinct answers make ties and close votes common. */
            tr[i].answer = pool[tg_test_rand(&seed) % (2 + spread)];
            tr[i].tokens = 1 + tg_test_rand(&seed) % (c % 3 ? 60 : 6);
            start[i] = tg_test_rand(&seed) % 3 == 0
                       ? tg_test_rand(&seed) % 20 : 0;
        }
        snprintf(opts, sizeof(opts), "n=%zu", n);
        plain = tg_test_host_at(&thinkgate_plugin, opts, tr, start, n);
        snprintf(opts, sizeof(opts), "n=%zu early_stop=exact", n);
        exact = tg_test_host_at(&thinkgate_plugin, opts, tr, start, n);
        cr_assert_eq(fake_host_run(plain), 0);
        cr_assert_eq(fake_host_run(exact), 0);

        cr_assert_eq(fake_host_winner(plain), tg_test_reference(tr, start, n),
                     "case %u: plain voting chose %d", c,
                     fake_host_winner(plain));
        cr_assert_eq(fake_host_end(exact), fake_host_end(plain), "case %u", c);
        cr_assert_eq(fake_host_winner(exact), fake_host_winner(plain),
                     "case %u: winner %d, plain voting's %d", c,
                     fake_host_winner(exact), fake_host_winner(plain));
        if (fake_host_end(plain) == FAKE_END_FINISH_TRACE) {
            cr_assert_str_eq(fake_host_summary(exact, "answer"),
                             fake_host_summary(plain, "answer"), "case %u", c);
        }
        cr_assert_leq(fake_host_tokens(exact), fake_host_tokens(plain),
                      "case %u", c);
        stopped += fake_host_end_ms(exact) < fake_host_end_ms(plain);
        plain_tokens += fake_host_tokens(plain);
        exact_tokens += fake_host_tokens(exact);
        tg_test_clean(plain);
        tg_test_clean(exact);
    }
    cr_assert_gt(stopped, 50, "early stop should stop early sometimes");
    cr_log_info("early_stop=exact: %u/600 stopped early, tokens %.3fx",
                stopped, (double) exact_tokens / (double) plain_tokens);
}
