/*
 * auto against the fake host: exploration until min_explored, the rule a
 * model's learned agreement picks (ffs, margin, exact), a prior from
 * profile data, the model from the pool's backends, kv down.  The
 * plugin's counts are per process (Criterion forks each test), so one
 * test runs several requests, one fake host each.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

/* The first finisher (20 tokens) agrees with the majority "4". */
static const tg_test_trace_t  agree[] = {
    { "4", 20, 0 }, { "4", 30, 0 }, { "4", 40, 0 }, { "7", 50, 0 },
    { "4", 60, 0 }, { "7", 70, 0 }, { "4", 80, 0 }, { "4", 90, 0 }
};

/* The first finisher (10 tokens) says "9", the majority "4". */
static const tg_test_trace_t  disagree[] = {
    { "9", 10, 0 }, { "4", 30, 0 }, { "4", 40, 0 }, { "9", 50, 0 },
    { "4", 60, 0 }, { "4", 70, 0 }, { "5", 80, 0 }, { "4", 90, 0 }
};

static const char *
run(const char *opts, const tg_test_trace_t *tr, const char **answer,
    size_t *cancelled)
{
    static char   mode[32], ans[32];
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, opts, tr, 8);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    snprintf(mode, sizeof(mode), "%s", fake_host_summary(h, "auto_mode"));
    snprintf(ans, sizeof(ans), "%s", fake_host_summary(h, "answer"));
    *answer = ans;
    *cancelled = fake_host_traces_cancelled(h);
    tg_test_clean(h);
    return mode;
}

Test(auto_plugin, descriptor_and_option_bounds)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    cr_assert_str_eq(thinkgate_plugin.name, "auto");
    cr_assert_eq(fake_host_set_options(h, "explore=1.5"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "hi=2"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "margin=0"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "early_stop=exact"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=8 explore=0 hi=0.8 lo=0.5 "
                                       "margin=3 prior=a:0.5,b:1"), 0);
    fake_host_free(h);
}

Test(auto_plugin, explores_then_uses_ffs_where_first_agrees)
{
    const char  *ans;
    size_t       cancelled;

    cr_assert_str_eq(run("min_explored=2 explore=0", agree, &ans,
                         &cancelled), "\"explore\"");
    cr_assert_str_eq(ans, "\"4\"");
    cr_assert_eq(cancelled, 0, "an explored request votes over all");
    cr_assert_str_eq(run("min_explored=2 explore=0", agree, &ans,
                         &cancelled), "\"explore\"");
    /* 2 of 2 agreed: the first finisher wins, the rest are cancelled. */
    cr_assert_str_eq(run("min_explored=2 explore=0", agree, &ans,
                         &cancelled), "\"ffs\"");
    cr_assert_str_eq(ans, "\"4\"");
    cr_assert_eq(cancelled, 7);
}

Test(auto_plugin, margin_where_first_disagrees)
{
    const char  *ans;
    size_t       cancelled;

    (void) run("min_explored=1 explore=0 first=0", disagree, &ans,
               &cancelled);
    /* Agreement 0 >= lo 0: the margin rule.  After 9,4,4 the lead is 1;
     * after the 4th (9) it is 0; 4 then 4 make it 2: stop at the 6th,
     * before the majority is settled, with the majority's answer. */
    cr_assert_str_eq(run("min_explored=1 explore=0 first=0", disagree,
                         &ans, &cancelled), "\"margin\"");
    cr_assert_str_eq(ans, "\"4\"");
    cr_assert_eq(cancelled, 2);
}

Test(auto_plugin, prior_below_lo_is_exact_and_explore_share)
{
    const char  *ans;
    size_t       cancelled;
    const char  *o = "prior=other:0.99,fake-model:0.2 prior_n=10 lo=0.5 "
                     "explore=0.5 first=0";

    /* Prior 0.2 over 10 counts: no exploring needed; exact voting. */
    cr_assert_str_eq(run(o, disagree, &ans, &cancelled), "\"exact\"");
    cr_assert_str_eq(ans, "\"4\"");
    cr_assert_gt(cancelled, 0, "exact stops once the vote is settled");
    /* explore=0.5: every second request of the model explores. */
    cr_assert_str_eq(run(o, disagree, &ans, &cancelled), "\"explore\"");
    cr_assert_str_eq(run(o, disagree, &ans, &cancelled), "\"exact\"");
}

Test(auto_plugin, model_from_the_pool_and_kv_down)
{
    static const tg_backend_info_t  b = { "b0", "R1", 0, 0, NULL, 0 };
    tg_request_info_t  info;
    fake_host_t       *h = tg_test_host(&thinkgate_plugin,
                                        "prior=R1:0.95", agree, 8);

    memset(&info, 0, sizeof(info));
    info.endpoint = TG_ENDPOINT_CHAT;
    info.model = "";
    info.pool = "reasoners";
    info.strategy = "auto";
    fake_host_set_request(h, &info);
    fake_host_set_backends(h, &b, 1);
    fake_host_set_kv_down(h, 1);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "auto_mode"), "\"ffs\"");
    cr_assert_str_eq(fake_host_summary(h, "auto_agreement_pct"), "95");
    tg_test_clean(h);
}

/* The two shortest traces agree: with first=3 they answer alone. */
static const tg_test_trace_t  early_agree[] = {
    { "4", 10, 0 }, { "4", 20, 0 }, { "7", 300, 0 }, { "7", 30, 0 },
    { "7", 40, 0 }, { "7", 50, 0 }, { "7", 60, 0 }, { "7", 70, 0 }
};

/* The second finisher dissents: all 8 vote, and "7" wins. */
static const tg_test_trace_t  early_dissent[] = {
    { "4", 10, 0 }, { "7", 20, 0 }, { "4", 300, 0 }, { "7", 30, 0 },
    { "7", 40, 0 }, { "7", 50, 0 }, { "5", 60, 0 }, { "7", 70, 0 }
};

/* The first three end without an answer: the rest start. */
static const tg_test_trace_t  early_none[] = {
    { "-", 10, 0 }, { "-", 20, 0 }, { "-", 30, 0 }, { "3", 30, 0 },
    { "3", 40, 0 }, { "8", 50, 0 }, { "3", 60, 0 }, { "3", 70, 0 }
};

static void
staged(const char *opts, const tg_test_trace_t *tr, const char *mode,
    const char *answer, size_t started, size_t cancelled, const char *st)
{
    fake_host_t  *h = tg_test_host(&thinkgate_plugin, opts, tr, 8);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_str_eq(fake_host_summary(h, "auto_mode"), mode);
    cr_assert_str_eq(fake_host_summary(h, "answer"), answer);
    cr_assert_eq(fake_host_traces_started(h), started);
    cr_assert_eq(fake_host_traces_cancelled(h), cancelled);
    if (st != NULL) {
        cr_assert_str_eq(fake_host_summary(h, "auto_started"), st);
    } else {
        cr_assert_null(fake_host_summary(h, "auto_started"));
    }
    tg_test_clean(h);
}

Test(auto_plugin, first_traces_that_agree_answer_alone)
{
    /* Margin 2 after "4", "4": the third of the first three is
     * cancelled and the other five never start. */
    staged("prior=fake-model:0.5", early_agree, "\"margin\"", "\"4\"", 3,
           1, "3");
    /* first=0: all 8 at once; the same two finishers answer. */
    staged("prior=fake-model:0.5 first=0", early_agree, "\"margin\"",
           "\"4\"", 8, 6, NULL);
}

Test(auto_plugin, a_dissent_starts_the_rest)
{
    /* "4" then "7": the other five start (at 20 ms) and vote; "7" leads
     * by 2 once traces 3 and 4 are in (7 x3 vs 4 x1). */
    staged("prior=fake-model:0.5 first=3", early_dissent, "\"margin\"",
           "\"7\"", 8, 4, "8");
    /* exact: the same dissent starts the rest; 7 x4 against 4 x1 with
     * three to come is no settlement (a tie goes to "4", first to
     * arrive); after "5" two are to come and 7 has won. */
    staged("prior=fake-model:0.2 lo=0.5 first=3", early_dissent,
           "\"exact\"", "\"7\"", 8, 2, "8");
}

Test(auto_plugin, first_without_answers_starts_the_rest)
{
    staged("prior=fake-model:0.5 first=3", early_none, "\"margin\"",
           "\"3\"", 8, 3, "8");
    /* Explored and ffs requests start all n at once whatever first. */
    staged("min_explored=1 first=3", early_none, "\"explore\"", "\"3\"",
           8, 0, NULL);
    staged("prior=fake-model:0.95 first=3", early_agree, "\"ffs\"",
           "\"4\"", 8, 7, NULL);
}

Test(auto_plugin, first_option_bounds)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    cr_assert_eq(fake_host_set_options(h, "first=65"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "first=-1"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=4 first=8"), 0,
                 "first >= n starts all n at once");
    fake_host_free(h);
}
