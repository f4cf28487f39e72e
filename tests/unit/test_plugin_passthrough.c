/*
 * passthrough against the fake host: one live trace, its finish_reason
 * and usage, its failure as a 502, and no options; a client's n > 1 as n
 * live traces, finished once all are done with their usage summed.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

Test(passthrough, descriptor)
{
    cr_assert_eq(thinkgate_plugin.abi_version, TG_PLUGIN_ABI_VERSION);
    cr_assert_eq(thinkgate_plugin.size, sizeof(tg_plugin_t));
    cr_assert_str_eq(thinkgate_plugin.signature, TG_PLUGIN_SIGNATURE);
    cr_assert_str_eq(thinkgate_plugin.name, "passthrough");
    cr_assert_not_null(thinkgate_plugin.options);
    cr_assert_null(thinkgate_plugin.options[0].name, "takes no options");
}


Test(passthrough, streams_one_live_trace)
{
    fake_trace_script_t  s = { .reasoning = "Let me think. 1+1 is 2.",
                               .content = "The answer is 2.",
                               .tokens = 12, .start_ms = 30,
                               .ms_per_token = 5 };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    cr_assert_eq(fake_host_add_trace(h, &s), 0);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 1);
    cr_assert(fake_host_trace(h, 0)->flags & TG_TRACE_F_LIVE);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(fake_host_end_calls(h), 1);
    cr_assert_str_eq(fake_host_finish_reason(h), "stop");
    cr_assert_eq(fake_host_usage_tokens(h), 12, "usage is the trace's");
    cr_assert_eq(fake_host_winner(h), 0);
    cr_assert_eq(fake_host_end_ms(h), 30 + 12 * 5);
    /* The live relay carried every byte, split where the model split. */
    cr_assert_str_eq(fake_host_out_reasoning(h), s.reasoning);
    cr_assert_str_eq(fake_host_out_content(h), s.content);
    cr_assert_eq(fake_host_tokens(h), 12);
    cr_assert_eq(fake_host_traces_cancelled(h), 0);
    tg_test_clean(h);
}


Test(passthrough, length_is_passed_on)
{
    fake_trace_script_t  s = { .content = "It goes on and on",
                               .tokens = 5, .finish_reason = "length" };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    fake_host_add_trace(h, &s);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_str_eq(fake_host_finish_reason(h), "length");
    cr_assert_eq(fake_host_usage_tokens(h), 5);
    tg_test_clean(h);
}


Test(passthrough, trace_failure_is_502_with_the_reason)
{
    fake_trace_script_t  s = { .content = "partial output that breaks",
                               .tokens = 40, .fail_after = 7,
                               .http_status = 500,
                               .error = "backend closed the stream" };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    fake_host_add_trace(h, &s);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert_str_eq(fake_host_fail_message(h), "backend closed the stream");
    cr_assert_eq(fake_host_tokens(h), 7, "the partial tokens count");
    cr_assert_eq(fake_host_trace(h, 0)->state, TG_TRACE_FAILED);
    tg_test_clean(h);
}


Test(passthrough, refused_start_is_502)
{
    fake_trace_script_t  s = { .content = "never", .tokens = 3,
                               .refuse_start = 1 };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    fake_host_add_trace(h, &s);
    cr_assert_lt(fake_host_run(h), 0, "start() reports its failure");
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert_str_eq(fake_host_fail_message(h), "backend refused the trace");
    cr_assert_eq(fake_host_traces_started(h), 0);
    tg_test_clean(h);
}


Test(passthrough, client_leaves)
{
    fake_trace_script_t  s = { .content = "a long answer", .tokens = 100 };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    fake_host_add_trace(h, &s);
    fake_host_cancel_at(h, 40);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_NONE);
    cr_assert_eq(fake_host_end_calls(h), 0);
    cr_assert_eq(fake_host_trace(h, 0)->state, TG_TRACE_CANCELLED);
    cr_assert_eq(fake_host_tokens(h), 39, "tokens up to the cancel");
    tg_test_clean(h);
}


Test(passthrough, options_are_refused)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    cr_assert_eq(fake_host_set_options(h, "n=2"), -EINVAL);
    cr_assert(strstr(fake_host_error(h), "unknown option \"n\"") != NULL,
              "%s", fake_host_error(h));
    cr_assert_eq(fake_host_set_options(h, ""), 0);
    fake_host_free(h);
}


/* Three scripted choices that end at different times. */
static void
add_three(fake_host_t *h, int fail_second)
{
    fake_trace_script_t  s[3] = {
        { .reasoning = "Think A.", .content = "A", .tokens = 10,
          .ms_per_token = 3 },
        { .reasoning = "Think B.", .content = "B", .tokens = 20,
          .finish_reason = "length", .ms_per_token = 1 },
        { .content = "C", .tokens = 5, .start_ms = 50 },
    };
    size_t               i;

    if (fail_second) {
        s[1].fail_after = 4;
        s[1].error = "backend broke";
    }
    for (i = 0; i < 3; i++) {
        cr_assert_eq(fake_host_add_trace(h, &s[i]), 0);
    }
}


Test(passthrough, n_choices_are_live_traces)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);
    size_t        i;

    fake_host_set_client_n(h, 3);
    add_three(h, 0);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 3);
    for (i = 0; i < 3; i++) {
        cr_assert(fake_host_trace(h, i)->flags & TG_TRACE_F_LIVE);
        cr_assert_eq(fake_host_trace(h, i)->state, TG_TRACE_DONE);
    }
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(fake_host_end_calls(h), 1);
    cr_assert_eq(fake_host_end_ms(h), 55, "after the last choice ended");
    cr_assert_eq(fake_host_usage_tokens(h), 10 + 20 + 5,
                 "usage is every choice's");
    cr_assert_eq(fake_host_winner(h), -1, "no one trace's usage");
    cr_assert_eq(fake_host_traces_cancelled(h), 0);
    tg_test_clean(h);
}


Test(passthrough, n_one_choice_failing_fails_the_request)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    fake_host_set_client_n(h, 3);
    add_three(h, 1);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_end_calls(h), 1);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert_str_eq(fake_host_fail_message(h), "backend broke");
    cr_assert_eq(fake_host_end_ms(h), 4);
    tg_test_clean(h);
}


Test(passthrough, n_refused_start_is_502)
{
    fake_trace_script_t  ok = { .content = "fine", .tokens = 3 };
    fake_trace_script_t  no = { .content = "never", .tokens = 3,
                                .refuse_start = 1 };
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);

    fake_host_set_client_n(h, 2);
    fake_host_add_trace(h, &ok);
    fake_host_add_trace(h, &no);
    cr_assert_lt(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert_eq(fake_host_traces_started(h), 1);
    tg_test_clean(h);
}


Test(passthrough, n_client_leaves)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    fake_host_set_client_n(h, 3);
    add_three(h, 0);
    fake_host_cancel_at(h, 12);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_NONE);
    cr_assert_eq(fake_host_end_calls(h), 0);
    tg_test_clean(h);
}
