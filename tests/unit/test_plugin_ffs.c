/*
 * ffs (First-Finish Search) against the fake host: the shortest trace with
 * an answer wins and the tokens are those of a lockstep batch cut at its
 * end; k > 1 votes among the first k; the fallbacks; option bounds.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

Test(ffs, descriptor_and_option_bounds)
{
    const tg_option_t  *o = thinkgate_plugin.options;
    fake_host_t        *h = tg_test_new(&thinkgate_plugin);

    cr_assert_str_eq(thinkgate_plugin.name, "ffs");
    cr_assert_str_eq(o[0].name, "n");
    cr_assert_str_eq(o[0].def, "8");
    cr_assert(o[0].min == 1 && o[0].max == 64);
    cr_assert_str_eq(o[1].name, "k");
    cr_assert_str_eq(o[1].def, "1");
    cr_assert(o[1].min == 1 && o[1].max == 64);

    cr_assert_eq(fake_host_set_options(h, "n=0"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=65"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "k=0"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "k=65"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "early_stop=exact"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=64 k=64"), 0);
    fake_host_free(h);
}


Test(ffs, k_above_n_is_400)
{
    static const tg_test_trace_t  tr[] = { { "1", 5, 0 }, { "1", 6, 0 } };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=2 k=3", tr, 2);

    cr_assert_lt(fake_host_run(h), 0);
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "k=3") != NULL, "%s",
              fake_host_fail_message(h));
    cr_assert_eq(fake_host_traces_started(h), 0);
    tg_test_clean(h);
}


Test(ffs, first_qualified_finisher_wins)
{
    static const tg_test_trace_t  tr[] = {
        { "4", 50, 0 }, { "7", 30, 0 }, { "-", 20, 0 }, { "4", 40, 0 },
        { "9", 25, 1 }, { "!", 10, 0 }, { "4", 35, 0 }, { "2", 90, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "", tr, 8);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 8, "n defaults to 8");
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_eq(fake_host_winner(h), 1, "no answer, cut off or failed "
                 "traces do not qualify");
    cr_assert_eq(fake_host_end_ms(h), 30);
    cr_assert_str_eq(fake_host_summary(h, "winner"), "1");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"7\":1}");
    /* Lockstep: every trace ran until the winner's last token. */
    cr_assert_eq(fake_host_tokens(h), 30 + 30 + 20 + 30 + 25 + 6 + 30 + 30);
    cr_assert_eq(fake_host_traces_cancelled(h), 4);
    cr_assert(fake_host_trace(h, 0)->cancelled_by_plugin);
    cr_assert(fake_host_trace(h, 7)->cancelled_by_plugin);
    tg_test_clean(h);
}


Test(ffs, winner_is_the_shortest_and_tokens_are_lockstep, .timeout = 60)
{
    static const char *const  pool[] = { "1", "2", "3", "-", "!" };
    uint64_t                  seed = 0xf1f5ull;
    unsigned                  c;

    for (c = 0; c < 500; c++) {
        tg_test_trace_t  tr[16] = { { NULL, 0, 0 } };
        fake_host_t     *h;
        char             opts[32];
        size_t           n = 1 + tg_test_rand(&seed) % 16, i;
        uint64_t         want_tokens = 0;
        int              want = -1;

        for (i = 0; i < n; i++) {
            tr[i].answer = pool[tg_test_rand(&seed) % 5];
            tr[i].tokens = 1 + tg_test_rand(&seed) % 80;
            tr[i].length = tg_test_rand(&seed) % 6 == 0;
            if (tr[i].answer[0] != '-' && tr[i].answer[0] != '!'
                && !tr[i].length
                && (want < 0 || tr[i].tokens < tr[want].tokens))
            {
                want = (int) i;
            }
        }
        snprintf(opts, sizeof(opts), "n=%zu", n);
        h = tg_test_host(&thinkgate_plugin, opts, tr, n);
        cr_assert_eq(fake_host_run(h), 0);
        if (want >= 0) {
            for (i = 0; i < n; i++) {
                uint32_t  len = tr[i].answer[0] == '!' ? tr[i].tokens / 2 + 1
                                                       : tr[i].tokens;

                want_tokens += len < tr[want].tokens ? len : tr[want].tokens;
            }
            cr_assert_eq(fake_host_winner(h), want, "case %u", c);
            cr_assert_eq(fake_host_tokens(h), want_tokens, "case %u", c);
            cr_assert_null(fake_host_summary(h, "fallback"));
        } else {
            cr_assert_not_null(fake_host_summary(h, "fallback")
                               ?: (fake_host_end(h) == FAKE_END_FAIL
                                   ? "fail" : NULL), "case %u", c);
        }
        tg_test_clean(h);
    }
}


Test(ffs, k_votes_among_the_first_k_finishers)
{
    static const tg_test_trace_t  tr[] = {
        { "A", 10, 0 }, { "B", 20, 0 }, { "A", 30, 0 }, { "B", 40, 0 },
        { "B", 50, 0 }, { "C", 60, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=6 k=2", tr, 6);

    /* k=2: A and B tie 1-1; A's voter finished first. */
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 0);
    cr_assert_eq(fake_host_end_ms(h), 20);
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"A\":1,\"B\":1}");
    cr_assert_eq(fake_host_tokens(h), 10 + 5 * 20);
    cr_assert_eq(fake_host_traces_cancelled(h), 4);
    tg_test_clean(h);

    h = tg_test_host(&thinkgate_plugin, "n=6 k=3", tr, 6);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"A\"");
    cr_assert_eq(fake_host_end_ms(h), 30);
    tg_test_clean(h);

    h = tg_test_host(&thinkgate_plugin, "n=6 k=5", tr, 6);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 1, "B wins 3-2 with its first voter");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"A\":2,\"B\":3}");
    cr_assert_eq(fake_host_end_ms(h), 50);
    tg_test_clean(h);
}


Test(ffs, k_skips_traces_that_do_not_qualify)
{
    static const tg_test_trace_t  tr[] = {
        { "B", 5, 1 }, { "-", 8, 0 }, { "A", 10, 0 }, { "A", 12, 0 },
        { "B", 14, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=5 k=2", tr, 5);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 2);
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"A\":2}");
    cr_assert_eq(fake_host_end_ms(h), 12);
    tg_test_clean(h);
}


Test(ffs, fallback_votes_over_any_answer)
{
    /* Nothing ends with "stop" and an answer: vote over what there is. */
    static const tg_test_trace_t  tr[] = {
        { "5", 40, 1 }, { "-", 10, 0 }, { "6", 20, 1 }, { "5", 30, 1 },
        { "!", 8, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=5", tr, 5);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_eq(fake_host_winner(h), 3);
    cr_assert_str_eq(fake_host_summary(h, "fallback"), "\"vote\"");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"6\":1,\"5\":2}");
    cr_assert_eq(fake_host_traces_cancelled(h), 0);
    tg_test_clean(h);

    /* k=3 with only two qualifiers: they and the cut-off one vote. */
    static const tg_test_trace_t  tr2[] = {
        { "7", 10, 0 }, { "8", 20, 0 }, { "8", 30, 1 }
    };
    h = tg_test_host(&thinkgate_plugin, "n=3 k=3", tr2, 3);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 1);
    cr_assert_str_eq(fake_host_summary(h, "fallback"), "\"vote\"");
    tg_test_clean(h);
}


Test(ffs, no_answer_returns_the_first_finisher)
{
    static const tg_test_trace_t  tr[] = {
        { "!", 4, 0 }, { "-", 30, 0 }, { "-", 12, 1 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=3", tr, 3);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_winner(h), 2);
    cr_assert_str_eq(fake_host_summary(h, "fallback"), "\"first_finished\"");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "null");
    tg_test_clean(h);
}


Test(ffs, all_failing_is_502)
{
    static const tg_test_trace_t  tr[] = {
        { "!", 4, 0 }, { "!", 30, 0 }, { "!", 12, 0 }, { "!", 7, 0 }
    };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=4 k=2", tr, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert_eq(fake_host_end_calls(h), 1);
    cr_assert_eq(fake_host_tokens(h), 3 + 16 + 7 + 4);
    tg_test_clean(h);
}


Test(ffs, client_leaving_ends_nothing)
{
    static const tg_test_trace_t  tr[] = { { "1", 50, 0 }, { "2", 60, 0 } };
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, "n=2", tr, 2);

    fake_host_cancel_at(h, 20);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end_calls(h), 0);
    cr_assert_eq(fake_host_traces_cancelled(h), 2);
    cr_assert_eq(fake_host_tokens(h), 2 * 19);
    tg_test_clean(h);
}
