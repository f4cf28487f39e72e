/*
 * symbolic_moe against the fake host, with three backends serving models
 * A, B and C and a profile loaded through THINKGATE_MOE_PROFILES: experts
 * land on their models' backends, no keyword recruits uniformly, a vote
 * tie goes to the strongest expert, a dead expert backend is replaced,
 * and profiles that are missing, bad or not loaded are named.  The LLM
 * pools: the annotator's prompt and keyword parsing (good, empty,
 * garbage, too many), its fallback to the lexicon, the aggregator's
 * prompt, its answer streamed live, and its fallback to the vote.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "plugin_test_util.h"
#include "symbolic_moe.h"

extern const tg_plugin_t  thinkgate_plugin;

/* Criterion runs tests in parallel processes: each writes its own file
 * (named by its pid), whole, then renames it into place. */
#define TG_TEST_PROFILE  tg_test_path("")

static const char *
tg_test_path(const char *suffix)
{
    static char  path[128];

    snprintf(path, sizeof(path), "/tmp/tg_test_symbolic_moe.%ld.json%s",
             (long) getpid(), suffix);
    return path;
}


static void
tg_test_remove(void)
{
    unlink(tg_test_path(""));
    unlink(tg_test_path(".bad"));
}


TestSuite(symbolic_moe, .fini = tg_test_remove);

static const tg_backend_info_t  tg_test_backends[] = {
    { "bA", "A", 0, 8, NULL, 0 },
    { "bB", "B", 0, 8, NULL, 0 },
    { "bC", "C", 0, 8, NULL, 0 },
};

static const char  *tg_test_physics = "A spin-1/2 particle in a quantum "
    "well: which eigenstate has the lowest energy?";


static void
tg_test_write(const char *path, const char *text)
{
    char   tmp[160];
    FILE  *f;

    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(rename(tmp, path), 0);
}


static void
tg_test_profile(void)
{
    tg_test_write(TG_TEST_PROFILE, "{\"format\":\"thinkgate-profile/1\","
        "\"models\":{"
        "\"A\":{\"strength\":0.8,\"skills\":{\"physics\":6,"
        "\"quantum mechanics\":4}},"
        "\"B\":{\"strength\":0.5,\"skills\":{\"physics\":1}},"
        "\"C\":{\"strength\":0.9,\"skills\":{\"physics\":-3}}}}");
    setenv("THINKGATE_MOE_PROFILES", TG_TEST_PROFILE, 1);
}


static fake_host_t *
tg_test_moe(const char *opts, const char *problem, const tg_test_trace_t *tr,
    size_t n)
{
    tg_request_info_t  info = { 0 };
    fake_host_t       *h;

    tg_test_profile();
    h = tg_test_host(&thinkgate_plugin, opts, tr, n);
    info.endpoint = TG_ENDPOINT_CHAT;
    info.problem = problem;
    info.problem_len = strlen(problem);
    info.pool = "experts";
    info.has_seed = 1;
    info.seed = 0;
    info.id = 7;
    fake_host_set_request(h, &info);
    fake_host_set_backends(h, tg_test_backends, 3);
    return h;
}


Test(symbolic_moe, descriptor_and_options)
{
    fake_host_t  *h;

    tg_test_profile();
    h = tg_test_new(&thinkgate_plugin);
    cr_assert_str_eq(thinkgate_plugin.name, "symbolic_moe");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "k")->def, "3");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "temperature")->def,
                     "0.5");
    cr_assert_eq(fake_host_set_options(h, "k=0"), -EINVAL);
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "annotator")->def,
                     "lexicon");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "aggregator")->def,
                     "vote");
    cr_assert_eq(fake_host_set_options(h, "annotator_tokens=3"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "n=3"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "k=4 samples=2 seed=5 "
                 "aggregator=vote min_sim=0.3"), 0);
    fake_host_free(h);
}


Test(symbolic_moe, experts_land_on_their_backends)
{
    tg_test_trace_t    tr[6];
    fake_host_t       *h;
    const char        *experts;
    size_t             i;

    for (i = 0; i < 6; i++) {
        tr[i] = (tg_test_trace_t) { "7", 10, 0 };
    }
    h = tg_test_moe("k=3 samples=2 seed=1", tg_test_physics, tr, 6);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 6);
    for (i = 0; i < 6; i++) {
        /* A: e^(10 x 0.8 / 0.5) against B: e^1: A, by far. */
        cr_assert_str_eq(fake_host_trace(h, i)->backend, "bA");
        cr_assert_eq(fake_host_trace(h, i)->seed_mode, 1);
        cr_assert_eq(fake_host_trace(h, i)->seed, (int64_t) i,
                     "seeds count per model");
    }
    cr_assert_str_eq(fake_host_summary(h, "keywords"),
                     "[\"physics\",\"quantum mechanics\"]");
    cr_assert_str_eq(fake_host_summary(h, "recruit"), "\"skills\"");
    cr_assert_str_eq(fake_host_summary(h, "score_kind"), "\"lexical\"");
    cr_assert_str_eq(fake_host_summary(h, "mapped"), "{\"physics\":"
                     "\"physics\",\"quantum mechanics\":\"quantum mechanics\"}");
    experts = fake_host_summary(h, "experts");
    cr_assert(strstr(experts, "{\"model\":\"A\",\"weight\":1.0000,"
              "\"backend\":\"bA\",\"traces\":2,\"failed\":0,"
              "\"answer\":\"7\"}") != NULL, "%s", experts);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    tg_test_clean(h);
}


Test(symbolic_moe, embedder_maps_keywords)
{
    tg_test_trace_t  tr[3] = { { "7", 5, 0 }, { "7", 5, 0 }, { "7", 5, 0 } };
    fake_host_t     *h = tg_test_moe("", tg_test_physics, tr, 3);

    fake_host_set_embedder(h, 1);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "score_kind"), "\"embed\"");
    cr_assert_str_eq(fake_host_summary(h, "recruit"), "\"skills\"");
    tg_test_clean(h);
}


Test(symbolic_moe, no_keyword_recruits_uniformly)
{
    tg_test_trace_t  tr[3] = { { "7", 5, 0 }, { "7", 5, 0 }, { "7", 5, 0 } };
    fake_host_t     *h = tg_test_moe("", "Hello there.", tr, 3);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "keywords"), "[]");
    cr_assert_str_eq(fake_host_summary(h, "recruit"), "\"uniform\"");
    cr_assert_str_eq(fake_host_summary(h, "weights"),
                     "{\"A\":0.3333,\"B\":0.3333,\"C\":0.3333}");
    tg_test_clean(h);
}


Test(symbolic_moe, vote_tie_goes_to_the_strongest)
{
    static const double  strength[] = { 0.8, 0.5, 0.9 };
    tg_test_trace_t      tr[2] = { { "1", 5, 0 }, { "2", 5, 0 } };
    fake_host_t         *h;
    const char          *b0, *b1, *want;
    char                 opts[32];
    int                  seed, mixed = 0;

    for (seed = 0; seed < 12; seed++) {
        snprintf(opts, sizeof(opts), "k=2 seed=%d", seed);
        h = tg_test_moe(opts, "Hello there.", tr, 2);
        cr_assert_eq(fake_host_run(h), 0);
        b0 = fake_host_trace(h, 0)->backend;
        b1 = fake_host_trace(h, 1)->backend;
        want = strength[b1[1] - 'A'] > strength[b0[1] - 'A'] ? "\"2\""
                                                             : "\"1\"";
        mixed += strcmp(b0, b1) != 0;
        cr_assert_str_eq(fake_host_summary(h, "answer"), want,
                         "seed %d: %s %s", seed, b0, b1);
        tg_test_clean(h);
    }
    cr_assert(mixed > 0, "some draw mixed two models");
}


Test(symbolic_moe, dead_backend_replaced_by_next_expert)
{
    tg_test_trace_t  tr[2] = { { "!", 10, 0 }, { "7", 5, 0 } };
    fake_host_t     *h = tg_test_moe("k=1", tg_test_physics, tr, 2);
    const char      *experts;

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_trace(h, 0)->backend, "bA");
    cr_assert_eq(fake_host_trace(h, 0)->state, TG_TRACE_FAILED);
    cr_assert_str_eq(fake_host_trace(h, 1)->backend, "bB",
                     "B has the next weight");
    experts = fake_host_summary(h, "experts");
    cr_assert(strstr(experts, "\"model\":\"B\"") != NULL, "%s", experts);
    cr_assert(strstr(experts, "\"replaced\":\"A\"") != NULL, "%s", experts);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    tg_test_clean(h);
}


Test(symbolic_moe, every_backend_dead_is_reported)
{
    tg_test_trace_t  tr[3] = { { "!", 4, 0 }, { "!", 4, 0 }, { "!", 4, 0 } };
    fake_host_t     *h = tg_test_moe("k=1", tg_test_physics, tr, 3);

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    cr_assert(strstr(fake_host_fail_message(h), "failed") != NULL);
    tg_test_clean(h);
}


Test(symbolic_moe, profiles_not_loaded_or_bad_are_named)
{
    tg_test_trace_t  tr[1] = { { "7", 5, 0 } };
    fake_host_t     *h = tg_test_moe("profiles=/other.json", tg_test_physics,
                                     tr, 1);

    cr_assert_eq(fake_host_run(h), -EINVAL);
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "/other.json") != NULL);
    fake_host_free(h);

    tg_test_write(tg_test_path(".bad"), "{\"format\": 3}");
    setenv("THINKGATE_MOE_PROFILES", tg_test_path(".bad"), 1);
    cr_assert_null(fake_host_new(&thinkgate_plugin), "a bad file refuses "
                   "the load");
    setenv("THINKGATE_MOE_PROFILES", "", 1);
    h = fake_host_new(&thinkgate_plugin);
    fake_host_add_trace(h, &(fake_trace_script_t) { .content = "7" });
    cr_assert_eq(fake_host_run(h), -EINVAL);
    cr_assert_eq(fake_host_fail_status(h), 500);
    cr_assert(strstr(fake_host_fail_message(h), "THINKGATE_MOE_PROFILES")
              != NULL);
    fake_host_free(h);
}


/* ---- the LLM pools ---- */

static fake_host_t *
tg_test_pools(const char *opts, const char *problem, const tg_test_trace_t *tr,
    size_t n)
{
    fake_host_t  *h = tg_test_moe(opts, problem, tr, n);

    fake_host_set_pools(h, "experts annot agg");
    return h;
}


/* The keywords parsed from reply, joined by '|'. */
static size_t
tg_test_parse(const char *reply, char *joined, size_t size, size_t *over)
{
    char    kw[TG_SKILLS_MAX_KEYWORDS][TG_MOE_KEYWORD_MAX];
    size_t  n, i, len = 0;

    n = tg_moe_parse_keywords(reply, strlen(reply), kw,
                              TG_SKILLS_MAX_KEYWORDS, over);
    joined[0] = '\0';
    for (i = 0; i < n; i++) {
        len += (size_t) snprintf(joined + len, size - len, "%s%s",
                                 i ? "|" : "", kw[i]);
    }
    return n;
}


/* The cases tools/skill_profile.py is tested on too (make runs the
 * tests from the top of the tree). */
#define TG_TEST_KEYWORD_CASES  "tests/unit/moe_keywords.json"

Test(symbolic_moe, keyword_parsing)
{
    json_t        *doc, *c, *want;
    json_error_t   jerr;
    char           joined[512], expect[512];
    size_t         i, j, n, over, len;

    doc = json_load_file(TG_TEST_KEYWORD_CASES, 0, &jerr);
    cr_assert_not_null(doc, "%s: %s (run from the top of the tree)",
                       TG_TEST_KEYWORD_CASES, jerr.text);
    cr_assert_gt(json_array_size(json_object_get(doc, "cases")), 10);
    json_array_foreach(json_object_get(doc, "cases"), i, c) {
        const char  *reply = json_string_value(json_object_get(c, "reply"));

        want = json_object_get(c, "keywords");
        expect[0] = '\0';
        for (j = 0, len = 0; j < json_array_size(want); j++) {
            len += (size_t) snprintf(expect + len, sizeof(expect) - len,
                "%s%s", j ? "|" : "",
                json_string_value(json_array_get(want, j)));
        }
        over = 99;
        n = tg_test_parse(reply, joined, sizeof(joined), &over);
        cr_assert_str_eq(joined, expect, "case %zu: %s", i, reply);
        cr_assert_eq(n, json_array_size(want), "case %zu", i);
        cr_assert_eq(over, (size_t) json_integer_value(
                         json_object_get(c, "over")), "case %zu", i);
    }
    json_decref(doc);
    cr_assert_eq(tg_moe_parse_keywords(NULL, 0, NULL, 0, NULL), 0);
}


Test(symbolic_moe, annotator_pool_writes_the_keywords)
{
    tg_test_trace_t  tr[3] = { { "7", 5, 0 }, { "7", 5, 0 }, { "7", 5, 0 } };
    fake_host_t     *h = tg_test_pools("annotator=annot", tg_test_physics,
                                       tr, 3);
    json_t          *msgs;
    const char      *content;

    fake_host_set_aux_reply(h, "Keywords: Quantum mechanics, optics", 5);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_aux_started(h), 1);
    msgs = json_loads(fake_host_aux_text(h, 0), 0, NULL);
    cr_assert_not_null(msgs, "%s", fake_host_aux_text(h, 0));
    content = json_string_value(json_object_get(json_array_get(msgs, 0),
                                                "content"));
    cr_assert(strstr(content, "List 2-5 short skill keywords") != NULL);
    cr_assert(strstr(content, tg_test_physics) != NULL, "%s", content);
    json_decref(msgs);
    cr_assert_str_eq(fake_host_summary(h, "keywords"),
                     "[\"quantum mechanics\",\"optics\"]");
    cr_assert_str_eq(fake_host_summary(h, "annotator"), "\"pool annot\"");
    cr_assert_null(fake_host_summary(h, "annotator_fallback"));
    /* quantum mechanics maps (A's), optics does not: A is recruited. */
    cr_assert_str_eq(fake_host_summary(h, "mapped"), "{\"quantum "
                     "mechanics\":\"quantum mechanics\"}");
    cr_assert_str_eq(fake_host_trace(h, 0)->backend, "bA");
    tg_test_clean(h);
}


Test(symbolic_moe, annotator_keeps_five_and_says_how_many_it_dropped)
{
    tg_test_trace_t  tr[3] = { { "7", 5, 0 }, { "7", 5, 0 }, { "7", 5, 0 } };
    fake_host_t     *h = tg_test_pools("annotator=annot", tg_test_physics,
                                       tr, 3);

    fake_host_set_aux_reply(h, "a1 x, b2 x, c3 x, d4 x, e5 x, f6 x", 1);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "keywords"), "[\"a1 x\",\"b2 x\","
                     "\"c3 x\",\"d4 x\",\"e5 x\"]");
    cr_assert_str_eq(fake_host_summary(h, "keywords_dropped"), "1");
    cr_assert_str_eq(fake_host_summary(h, "recruit"), "\"uniform\"");
    tg_test_clean(h);
}


Test(symbolic_moe, annotator_garbage_empty_or_failed_falls_back_to_lexicon)
{
    static const char  *why[3] = { "no keyword in its reply",
                                   "no keyword in its reply (empty)",
                                   "failed: backend down" };
    tg_test_trace_t     tr[3] = { { "7", 5, 0 }, { "7", 5, 0 },
                                  { "7", 5, 0 } };
    fake_host_t        *h;
    const char         *fb;
    int                 i;

    for (i = 0; i < 3; i++) {
        h = tg_test_pools("annotator=annot", tg_test_physics, tr, 3);
        if (i == 0) {
            fake_host_set_aux_reply(h, "So it is \\boxed{11}. The answer "
                                    "is 11 because of the well depth.", 1);
        } else if (i == 1) {
            fake_host_set_aux_reply(h, "", 1);
        } else {
            fake_host_set_aux_failure(h, -EIO, "backend down");
        }
        cr_assert_eq(fake_host_run(h), 0);
        cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
        cr_assert_str_eq(fake_host_summary(h, "keywords"),
                         "[\"physics\",\"quantum mechanics\"]", "case %d", i);
        cr_assert_str_eq(fake_host_summary(h, "annotator"), "\"lexicon\"");
        fb = fake_host_summary(h, "annotator_fallback");
        cr_assert_not_null(fb, "case %d", i);
        cr_assert(strstr(fb, "pool annot") != NULL, "%s", fb);
        cr_assert(strstr(fb, why[i]) != NULL, "case %d: %s", i, fb);
        tg_test_clean(h);
    }
}


Test(symbolic_moe, annotator_too_slow_falls_back_to_lexicon)
{
    tg_test_trace_t  tr[3] = { { "7", 5, 0 }, { "7", 5, 0 }, { "7", 5, 0 } };
    fake_host_t     *h = tg_test_pools("annotator=annot "
                                       "annotator_timeout_ms=500",
                                       tg_test_physics, tr, 3);

    fake_host_set_aux_reply(h, "optics", 5000);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "keywords"),
                     "[\"physics\",\"quantum mechanics\"]");
    cr_assert_str_eq(fake_host_summary(h, "annotator_fallback"),
                     "\"pool annot: no reply within 500 ms\"");
    cr_assert_lt(fake_host_end_ms(h), 5000, "the experts did not wait");
    tg_test_clean(h);
}


Test(symbolic_moe, unknown_pools_are_a_400)
{
    tg_test_trace_t  tr[1] = { { "7", 5, 0 } };
    fake_host_t     *h;

    h = tg_test_pools("annotator=nosuch", tg_test_physics, tr, 1);
    cr_assert_eq(fake_host_run(h), -EINVAL);
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "annotator \"nosuch\"")
              != NULL, "%s", fake_host_fail_message(h));
    cr_assert_eq(fake_host_traces_started(h), 0);
    cr_assert_eq(fake_host_aux_started(h), 0);
    fake_host_free(h);

    h = tg_test_pools("aggregator=nosuch", tg_test_physics, tr, 1);
    cr_assert_eq(fake_host_run(h), -EINVAL);
    cr_assert_eq(fake_host_fail_status(h), 400);
    cr_assert(strstr(fake_host_fail_message(h), "aggregator \"nosuch\"")
              != NULL, "%s", fake_host_fail_message(h));
    cr_assert_eq(fake_host_traces_started(h), 0);
    fake_host_free(h);
}


/* Three experts answering 7, 7 and 9 (k=3, uniform: a problem without
 * keywords), then the aggregator's script; the client streams. */
static fake_host_t *
tg_test_aggregated(const fake_trace_script_t *agg)
{
    static const tg_test_trace_t  tr[3] = { { "7", 6, 0 }, { "7", 6, 0 },
                                            { "9", 6, 0 } };
    fake_host_t                  *h;

    tg_request_info_t             info = { 0 };

    h = tg_test_pools("k=3 seed=2 aggregator=agg", "Hello there.", tr, 3);
    info.endpoint = TG_ENDPOINT_CHAT;
    info.stream = 1;
    info.problem = "Hello there.";
    info.problem_len = strlen(info.problem);
    info.pool = "experts";
    info.has_seed = 1;
    info.id = 7;
    fake_host_set_request(h, &info);
    cr_assert_eq(fake_host_add_trace(h, agg), 0);
    return h;
}


Test(symbolic_moe, aggregator_prompt_and_streamed_answer)
{
    fake_trace_script_t  agg = { 0 };
    fake_host_t         *h;
    json_t              *msgs;
    const char          *content, *experts;

    agg.reasoning = "Model 3 checked the units. ";
    agg.content = "The experts split; it is \\boxed{9}.";
    agg.tokens = 12;
    h = tg_test_aggregated(&agg);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 4);
    cr_assert_str_eq(fake_host_trace(h, 3)->pool, "agg");
    cr_assert(fake_host_trace(h, 3)->flags & TG_TRACE_F_LIVE);
    cr_assert_null(fake_host_trace(h, 0)->pool, "experts: the request's");

    msgs = json_loads(fake_host_trace(h, 3)->messages_json, 0, NULL);
    cr_assert_not_null(msgs);
    content = json_string_value(json_object_get(json_array_get(msgs, 0),
                                                "content"));
    cr_assert(strstr(content, "Question:\nHello there.") != NULL, "%s",
              content);
    cr_assert(strstr(content, "### Model 1's response\nFinal answer: 7\n")
              != NULL, "%s", content);
    cr_assert(strstr(content, "### Model 3's response\nFinal answer: 9\n"
              "Its answer ends: So it is \\boxed{9}.") != NULL, "%s",
              content);
    cr_assert_null(strstr(content, "### Model 4"));
    json_decref(msgs);

    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_str_eq(fake_host_out_content(h), agg.content);
    cr_assert_str_eq(fake_host_out_reasoning(h), agg.reasoning);
    cr_assert_eq(fake_host_usage_tokens(h), 12, "usage of the aggregator");
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"9\"");
    cr_assert_str_eq(fake_host_summary(h, "vote_answer"), "\"7\"");
    cr_assert_str_eq(fake_host_summary(h, "aggregator"), "\"pool agg\"");
    cr_assert_null(fake_host_summary(h, "aggregator_fallback"));
    experts = fake_host_summary(h, "experts");
    cr_assert(strstr(experts, "\"answer\":\"9\"") != NULL, "%s", experts);
    cr_assert(strstr(experts, "\"answer\":\"7\"") != NULL, "%s", experts);
    tg_test_clean(h);
}


Test(symbolic_moe, aggregator_failure_falls_back_to_the_vote)
{
    fake_trace_script_t  agg = { 0 };
    fake_host_t         *h;
    const char          *fb;
    int                  refused;

    for (refused = 0; refused < 2; refused++) {
        memset(&agg, 0, sizeof(agg));
        agg.content = "The experts split; the right one is";
        agg.tokens = 12;
        agg.fail_after = 5;
        agg.error = "connection reset";
        agg.refuse_start = refused;
        h = tg_test_aggregated(&agg);
        cr_assert_eq(fake_host_run(h), 0);
        cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
        cr_assert(fake_host_winner(h) < 2, "a voter for 7 answers");
        cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
        cr_assert_str_eq(fake_host_summary(h, "aggregator"), "\"vote\"");
        fb = fake_host_summary(h, "aggregator_fallback");
        cr_assert_not_null(fb);
        cr_assert(strstr(fb, "pool agg") != NULL, "%s", fb);
        cr_assert(strstr(fb, refused ? "refused" : "connection reset")
                  != NULL, "%s", fb);
        /* What went out before the failure stays; a line says so. */
        cr_assert(strstr(fake_host_out_content(h), "\\boxed{7}") != NULL);
        cr_assert_eq(strstr(fake_host_out_content(h), "aggregator failed")
                     != NULL, !refused, "%s", fake_host_out_content(h));
        tg_test_clean(h);
    }
}


Test(symbolic_moe, aggregator_without_answer_text_falls_back_to_the_vote)
{
    fake_trace_script_t  agg = { 0 };
    fake_host_t         *h;

    agg.reasoning = "Let me weigh model 1 against model 3 and";
    agg.content = "  \n";
    agg.tokens = 10;
    agg.finish_reason = "length";
    h = tg_test_aggregated(&agg);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_str_eq(fake_host_summary(h, "answer"), "\"7\"");
    cr_assert_str_eq(fake_host_summary(h, "aggregator_fallback"),
                     "\"pool agg: no answer text in its reply\"");
    cr_assert(strstr(fake_host_out_content(h), "aggregator failed") != NULL);
    tg_test_clean(h);
}
