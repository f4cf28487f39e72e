/*
 * The aux_probe test plugin against the fake host: the aux result fields
 * appended with kv_limits (top logprobs into P(Yes), embedding vectors),
 * an aux failure, and kv set/get and kv without Redis.  The same plugin
 * runs against the real engine in tests/e2e/test_aux_judge.py and
 * test_kv.py; here the fake host's side of those fields is proved.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"

extern const tg_plugin_t  thinkgate_plugin;

static const fake_trace_script_t  one = { .content = "42", .tokens = 3 };


static fake_host_t *
probe(const char *opts)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    cr_assert_eq(fake_host_set_options(h, opts), 0, "%s",
                 fake_host_error(h));
    cr_assert_eq(fake_host_add_trace(h, &one), 0);
    return h;
}


static double
num(fake_host_t *h, const char *key)
{
    const char  *v = fake_host_summary(h, key);

    cr_assert_not_null(v, "summary key %s", key);
    return strtod(v, NULL);
}


Test(aux_probe, judge_p_yes_from_top_logprobs)
{
    tg_logprob_t  top[] = {
        { "No", 2, log(0.5) }, { "Yes", 3, log(0.3) },
        { " yes", 4, log(0.1) }, { "Paris", 5, log(0.1) }
    };
    fake_host_t  *h = probe("judge=judge");

    fake_host_set_aux_reply(h, "No", 10);
    fake_host_set_aux_top(h, top, 4);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(num(h, "judge_status"), 0);
    cr_assert_eq(num(h, "judge_ntop"), 4);
    cr_assert_float_eq(num(h, "judge_p_yes"), 0.4 / 0.9, 1e-6);
    cr_assert_eq(fake_host_violations(h), 0, "%s", fake_host_violation(h));
    tg_test_clean(h);
}


Test(aux_probe, judge_without_logprobs_says_so)
{
    fake_host_t  *h = probe("judge=judge");

    fake_host_set_aux_reply(h, "Yes", 0);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_str_eq(fake_host_summary(h, "judge_p_yes"), "null");
    cr_assert_not_null(fake_host_summary(h, "judge_p_error"));
    tg_test_clean(h);
}


Test(aux_probe, embeddings_vectors)
{
    fake_host_t  *h = probe("embed=emb");

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(num(h, "embed_status"), 0);
    cr_assert_eq(num(h, "embed_n"), 3);
    cr_assert_eq(num(h, "embed_dim"), 32);
    cr_assert_float_eq(num(h, "embed_norm0"), 1.0, 1e-5);
    cr_assert_gt(num(h, "embed_cos01"), num(h, "embed_cos02"));
    tg_test_clean(h);
}


Test(aux_probe, aux_failure_still_answers)
{
    fake_host_t  *h = probe("judge=judge embed=emb");

    fake_host_set_aux_failure(h, -ETIMEDOUT, "nothing within 1 s");
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(num(h, "judge_status"), -ETIMEDOUT);
    cr_assert_eq(num(h, "embed_status"), -ETIMEDOUT);
    cr_assert_str_eq(fake_host_summary(h, "judge_error"),
                     "\"nothing within 1 s\"");
    tg_test_clean(h);
}


Test(aux_probe, kv_set_then_get)
{
    fake_host_t  *h = probe("kv=on");

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(num(h, "kv_set_rc"), 0);
    cr_assert_eq(num(h, "kv_set_status"), 0);
    cr_assert_eq(num(h, "kv_get_status"), 0);
    cr_assert_not_null(strstr(fake_host_summary(h, "kv_value"), "value-"));
    tg_test_clean(h);
}


Test(aux_probe, kv_without_redis)
{
    fake_host_t  *h = probe("kv=on");

    fake_host_set_kv_down(h, 1);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(num(h, "kv_set_rc"), -ENOTCONN);
    cr_assert_null(fake_host_summary(h, "kv_set_status"));
    tg_test_clean(h);
}
