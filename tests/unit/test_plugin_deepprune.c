/*
 * deepprune against the fake host: clustering (found, join, cap at K),
 * the cancel of exactly the pruned traces, weighted and representative
 * votes, no pruning without a verdict (llm judge failing, answering no
 * Yes/No, timing out), the pool and llm judges, and option errors.
 *
 * A trace's reasoning is one of a few "lines" of text; the fake host's
 * lexical score (character trigram cosine) is about 1 between traces of
 * one line and near 0 across lines, so the clusters are known.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

typedef struct {
    char         line;      /* 'a', 'b', 'c': which reasoning */
    const char  *answer;
    uint32_t     tokens;
} tg_dp_test_t;

static char  tg_dp_reasoning[3][2048];
static char  tg_dp_content[FAKE_HOST_MAX_TRACES][64];

static fake_host_t *
tg_dp_host(const char *opts, const tg_dp_test_t *tr, size_t n)
{
    static const char *const  words[3] = {
        "alpha beta gamma delta ", "quick brown fox jumps ",
        "0123456789 +-*/ =<> "
    };
    fake_host_t              *h = tg_test_new(&thinkgate_plugin);
    size_t                    i, k;
    char                      all[512];

    /* Unless a test asks for early stopping, every survivor runs to its
     * end, so that clusters and votes are all on show. */
    if (strstr(opts, "early_stop=") == NULL) {
        snprintf(all, sizeof(all), "early_stop=none %s", opts);
        opts = all;
    }
    for (k = 0; k < 3; k++) {
        tg_dp_reasoning[k][0] = '\0';
        while (strlen(tg_dp_reasoning[k]) + 32 < sizeof(tg_dp_reasoning[k])) {
            strcat(tg_dp_reasoning[k], words[k]);
        }
    }
    cr_assert_eq(fake_host_set_options(h, opts), 0, "%s: %s", opts,
                 fake_host_error(h));
    for (i = 0; i < n; i++) {
        fake_trace_script_t  s = { 0 };

        snprintf(tg_dp_content[i], sizeof(tg_dp_content[i]),
                 "So it is \\boxed{%s}.", tr[i].answer);
        s.reasoning = tg_dp_reasoning[tr[i].line - 'a'];
        s.content = tg_dp_content[i];
        s.tokens = tr[i].tokens;
        cr_assert_eq(fake_host_add_trace(h, &s), 0);
    }
    return h;
}


static int
tg_dp_cancelled(const fake_host_t *h, size_t i)
{
    return fake_host_trace(h, i)->cancelled_by_plugin;
}


Test(deepprune, descriptor_and_option_errors)
{
    fake_host_t         *h = tg_test_new(&thinkgate_plugin);
    const tg_option_t   *o = tg_test_option(&thinkgate_plugin, "judge");

    cr_assert_str_eq(thinkgate_plugin.name, "deepprune");
    cr_assert_not_null(o);
    cr_assert_str_eq(o->def, "lexical");
    cr_assert_str_eq(o->choices, "lexical|embed|llm|pool");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "n")->def, "8");
    cr_assert_eq(fake_host_set_options(h, "n=65"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "tau=1.5"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "max_clusters=0"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "vote=plural"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "judge=llm"), 0);
    cr_assert_eq(fake_host_run(h), -EINVAL, "llm without judge_pool");
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "judge_pool") != NULL);
    tg_test_clean(h);

    h = tg_test_new(&thinkgate_plugin);
    cr_assert_eq(fake_host_set_options(h, "judge=embed"), 0);
    cr_assert_eq(fake_host_run(h), -EINVAL);
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "thinkgate_embedder")
              != NULL, "%s", fake_host_fail_message(h));
    cr_assert_eq(fake_host_traces_started(h), 0);
    tg_test_clean(h);
}




Test(deepprune, lexical_founds_joins_and_cancels_exactly_the_pruned)
{
    static const tg_dp_test_t  tr[] = {
        { 'a', "7", 100 }, { 'a', "7", 100 }, { 'b', "5", 100 },
        { 'a', "7", 100 }
    };
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10", tr, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_eq(fake_host_end_calls(h), 1);
    cr_assert_str_eq(fake_host_summary(h, "clusters"),
                     "[{\"size\":3,\"representative\":0,\"answer\":\"7\"},"
                     "{\"size\":1,\"representative\":2,\"answer\":\"5\"}]");
    cr_assert_str_eq(fake_host_summary(h, "pruned"),
                     "[{\"trace\":1,\"tokens\":10},{\"trace\":3,\"tokens\":10}]");
    cr_assert_str_eq(fake_host_summary(h, "traces_pruned"), "2");
    cr_assert_eq(tg_dp_cancelled(h, 0) + tg_dp_cancelled(h, 2), 0);
    cr_assert(tg_dp_cancelled(h, 1) && tg_dp_cancelled(h, 3));
    cr_assert_eq(fake_host_traces_cancelled(h), 2);
    cr_assert_eq(fake_host_tokens(h), 220);
    cr_assert_str_eq(fake_host_summary(h, "judge_calls"), "1");
    cr_assert_str_eq(fake_host_summary(h, "judge_failures"), "0");
    cr_assert_str_eq(fake_host_summary(h, "degraded"), "false");
    cr_assert_str_eq(fake_host_summary(h, "tokens_saved_est"), "null");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"7\":3,\"5\":1}");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    cr_assert_eq(fake_host_winner(h), 0);
    tg_test_clean(h);
}


Test(deepprune, weighted_and_representative_votes)
{
    /* Line a says 7 three times, lines b and c say 5: by size 7 wins 3:2,
     * one vote per representative 5 wins 2:1. */
    static const tg_dp_test_t  tr[] = {
        { 'a', "7", 100 }, { 'a', "7", 100 }, { 'a', "7", 100 },
        { 'b', "5", 60 }, { 'c', "5", 80 }
    };
    fake_host_t  *h = tg_dp_host("n=5 prefix_tokens=10", tr, 5);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    cr_assert_str_eq(fake_host_summary(h, "vote"), "\"weighted\"");
    cr_assert_eq(fake_host_winner(h), 0);
    tg_test_clean(h);

    h = tg_dp_host("n=5 prefix_tokens=10 vote=representative", tr, 5);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"5\"");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"5\":2,\"7\":1}");
    cr_assert_eq(fake_host_winner(h), 3, "5's first finisher");
    tg_test_clean(h);
}


Test(deepprune, cap_at_k_joins_the_most_similar)
{
    static const tg_dp_test_t  tr[] = {
        { 'a', "7", 100 }, { 'b', "5", 100 }, { 'c', "3", 100 }
    };
    fake_host_t  *h = tg_dp_host("n=3 prefix_tokens=10 max_clusters=2", tr,
                                 3);
    const char   *c;

    cr_assert_eq(fake_host_run(h), 0);
    c = fake_host_summary(h, "clusters");
    cr_assert(strstr(c, "\"representative\":0") != NULL, "%s", c);
    cr_assert(strstr(c, "\"representative\":1") != NULL, "%s", c);
    cr_assert(strstr(c, "\"representative\":2") == NULL, "%s", c);
    cr_assert(strstr(c, "\"size\":2") != NULL, "%s", c);
    cr_assert(tg_dp_cancelled(h, 2));
    cr_assert_str_eq(fake_host_summary(h, "traces_pruned"), "1");
    tg_test_clean(h);
}


Test(deepprune, short_traces_are_never_judged_and_vote_once)
{
    static const tg_dp_test_t  tr[] = {
        { 'a', "7", 100 }, { 'a', "7", 100 }, { 'b', "5", 8 },
        { 'b', "5", 9 }
    };
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10", tr, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "clusters"),
                     "[{\"size\":2,\"representative\":0,\"answer\":\"7\"}]");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"5\":2,\"7\":2}");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"5\"",
                     "a tie to the earliest finisher");
    cr_assert_str_eq(fake_host_summary(h, "judge_calls"), "1");
    tg_test_clean(h);
}


static const tg_dp_test_t  tg_dp_four[] = {
    { 'a', "7", 100 }, { 'b', "7", 100 }, { 'c', "5", 100 },
    { 'a', "7", 100 }
};


Test(deepprune, llm_yes_prunes_into_one_cluster)
{
    static const tg_logprob_t  top[] = {
        { "Yes", 3, -0.1 }, { "No", 2, -2.4 }
    };
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10 judge=llm "
                                 "judge_pool=judges", tg_dp_four, 4);

    fake_host_set_aux_top(h, top, 2);
    fake_host_set_aux_reply(h, "Yes", 5);
    cr_assert_eq(fake_host_run(h), 0);
    /* Trace 0 founds unjudged; 1, 2, 3 are judged against it and, being
     * placed in order, against each other: 1+2+3 pairs. */
    cr_assert_str_eq(fake_host_summary(h, "judge_calls"), "6");
    cr_assert_str_eq(fake_host_summary(h, "clusters"),
                     "[{\"size\":4,\"representative\":0,\"answer\":\"7\"}]");
    cr_assert_str_eq(fake_host_summary(h, "judge_ms"), "5");
    cr_assert_str_eq(fake_host_summary(h, "pruned"),
                     "[{\"trace\":1,\"tokens\":15},{\"trace\":2,\"tokens\":15},"
                     "{\"trace\":3,\"tokens\":15}]");
    cr_assert_eq(fake_host_traces_cancelled(h), 3);
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"7\":4}");
    tg_test_clean(h);
}


static void
tg_dp_expect_plain(fake_host_t *h, const char *failures)
{
    size_t  i;

    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    for (i = 0; i < 4; i++) {
        cr_assert_not(tg_dp_cancelled(h, i), "trace %zu pruned without a "
                      "verdict", i);
    }
    cr_assert_eq(fake_host_tokens(h), 400);
    cr_assert_str_eq(fake_host_summary(h, "degraded"), "true");
    cr_assert_str_eq(fake_host_summary(h, "judge_failures"), failures);
    cr_assert_str_eq(fake_host_summary(h, "traces_pruned"), "0");
    cr_assert_str_eq(fake_host_summary(h, "votes"), "{\"7\":3,\"5\":1}");
}


Test(deepprune, judge_failure_degrades_to_plain_voting)
{
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10 judge=llm "
                                 "judge_pool=judges", tg_dp_four, 4);

    fake_host_set_aux_failure(h, -ECONNREFUSED, "connection refused");
    cr_assert_eq(fake_host_run(h), 0);
    tg_dp_expect_plain(h, "6");
    tg_test_clean(h);

    /* A reply with no Yes or No among its logprobs is no verdict. */
    h = tg_dp_host("n=4 prefix_tokens=10 judge=llm judge_pool=judges",
                   tg_dp_four, 4);
    fake_host_set_aux_reply(h, "Maybe", 1);
    cr_assert_eq(fake_host_run(h), 0);
    tg_dp_expect_plain(h, "6");
    tg_test_clean(h);

    h = tg_dp_host("n=4 prefix_tokens=10 judge=pool judge_pool=emb",
                   tg_dp_four, 4);
    fake_host_set_aux_failure(h, -ETIMEDOUT, "timed out");
    cr_assert_eq(fake_host_run(h), 0);
    tg_dp_expect_plain(h, "1");
    tg_test_clean(h);
}


Test(deepprune, judge_timeout_keeps_the_traces)
{
    static const tg_logprob_t  top[] = { { "Yes", 3, -0.01 } };
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10 judge=llm "
                                 "judge_pool=judges judge_timeout_ms=20",
                                 tg_dp_four, 4);

    fake_host_set_aux_top(h, top, 1);
    fake_host_set_aux_reply(h, "Yes", 50);
    cr_assert_eq(fake_host_run(h), 0);
    tg_dp_expect_plain(h, "6");
    cr_assert_str_eq(fake_host_summary(h, "judge_ms"), "20");
    tg_test_clean(h);
}


/* judge=embed with an embedder: the host's score_kind(EMBED) clusters. */
Test(deepprune, embed_judge_clusters_through_score_kind)
{
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10 judge=embed tau=0.8",
                                 tg_dp_four, 4);

    fake_host_set_embedder(h, 1);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "degraded"), "false");
    cr_assert(tg_dp_cancelled(h, 3), "line a again");
    cr_assert_not(tg_dp_cancelled(h, 1));
    cr_assert_not(tg_dp_cancelled(h, 2));
    tg_test_clean(h);
}


Test(deepprune, pool_judge_clusters_by_embeddings)
{
    fake_host_t  *h = tg_dp_host("n=4 prefix_tokens=10 judge=pool "
                                 "judge_pool=emb tau=0.8", tg_dp_four, 4);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "judge_calls"), "1");
    cr_assert_str_eq(fake_host_summary(h, "degraded"), "false");
    cr_assert(tg_dp_cancelled(h, 3), "line a again");
    cr_assert_not(tg_dp_cancelled(h, 1));
    cr_assert_not(tg_dp_cancelled(h, 2));
    tg_test_clean(h);
}


Test(deepprune, early_stop_is_exact_by_default)
{
    const tg_option_t  *o = tg_test_option(&thinkgate_plugin, "early_stop");

    /* The host fills an absent option from the table's default. */
    cr_assert_not_null(o);
    cr_assert_str_eq(o->def, "exact");
}


Test(deepprune, early_stop_exact_answers_as_plain_voting)
{
    static const tg_dp_test_t  tr[] = {
        { 'a', "7", 40 }, { 'a', "7", 100 }, { 'b', "7", 50 },
        { 'c', "5", 300 }, { 'a', "7", 100 }
    };
    fake_host_t  *h = tg_dp_host("n=5 prefix_tokens=10 early_stop=exact",
                                 tr, 5);

    cr_assert_eq(fake_host_run(h), 0);
    /* When trace 0 ends (40 tokens) 7 holds line a's 3 votes against the
     * 2 that lines b and c may still give any rival. */
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    cr_assert_eq(fake_host_end_ms(h), 40);
    cr_assert(fake_host_trace(h, 3)->tokens < 300);
    tg_test_clean(h);
}
