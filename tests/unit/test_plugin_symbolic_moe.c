/*
 * symbolic_moe against the fake host, with three backends serving models
 * A, B and C and a profile loaded through THINKGATE_MOE_PROFILES: experts
 * land on their models' backends, no keyword recruits uniformly, a vote
 * tie goes to the strongest expert, a dead expert backend is replaced,
 * and profiles that are missing, bad or not loaded are named.
 */
#include <criterion/criterion.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

#define TG_TEST_PROFILE  "/tmp/tg_test_symbolic_moe.json"

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
    FILE  *f = fopen(path, "w");

    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
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
    cr_assert_eq(fake_host_set_options(h, "aggregator=judge"), -EINVAL);
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

    tg_test_write(TG_TEST_PROFILE ".bad", "{\"format\": 3}");
    setenv("THINKGATE_MOE_PROFILES", TG_TEST_PROFILE ".bad", 1);
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
