/*
 * Unit tests for thinkgate-sim's logic: options, tokenization, answer
 * extraction, the prefix cache, synthetic traces, trace loading and the
 * batching scheduler (driven without HTTP).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <zlib.h>

#include "sim.h"

/* ---- options ---------------------------------------------------------- */

Test(sim_options, defaults_and_flags)
{
    tg_sim_options_t o;
    char err[256];
    char *argv[] = { "sim", "--listen", "0.0.0.0:9000", "--think-inline",
                     "--tokens-per-step=16", "--speed", "0", "--model", "m",
                     NULL };

    cr_assert_eq(tg_sim_options_parse(&o, 1, argv, err, sizeof(err)), 0);
    cr_assert_str_eq(o.listen_host, "127.0.0.1");
    cr_assert_eq(o.listen_port, 8000);
    cr_assert_eq(o.think_inline, 0);
    cr_assert_eq(o.tokens_per_step, 1);
    cr_assert_float_eq(o.step_ms, 20.0, 1e-9);
    cr_assert_str_eq(o.model, "thinkgate-sim");
    cr_assert_eq(tg_sim_options_parse(&o, 9, argv, err, sizeof(err)), 0);
    cr_assert_str_eq(o.listen_host, "0.0.0.0");
    cr_assert_eq(o.listen_port, 9000);
    cr_assert_eq(o.think_inline, 1);
    cr_assert_eq(o.tokens_per_step, 16);
    cr_assert_float_eq(o.speed, 0.0, 1e-9);
    cr_assert_str_eq(o.model, "m");
}

Test(sim_options, rejects_bad_input)
{
    tg_sim_options_t o;
    char err[256];
    char *a1[] = { "sim", "--nope", NULL };
    char *a2[] = { "sim", "--tokens-per-step", "0", NULL };
    char *a3[] = { "sim", "--listen", "nohost", NULL };
    char *a4[] = { "sim", "--speed", NULL };
    char *a5[] = { "sim", "--help", NULL };

    cr_assert_eq(tg_sim_options_parse(&o, 2, a1, err, sizeof(err)), -1);
    cr_assert(strstr(err, "--nope") != NULL);
    cr_assert_eq(tg_sim_options_parse(&o, 3, a2, err, sizeof(err)), -1);
    cr_assert(strstr(err, "tokens-per-step") != NULL);
    cr_assert_eq(tg_sim_options_parse(&o, 3, a3, err, sizeof(err)), -1);
    cr_assert_eq(tg_sim_options_parse(&o, 2, a4, err, sizeof(err)), -1);
    cr_assert_eq(tg_sim_options_parse(&o, 2, a5, err, sizeof(err)), 1);
}

/* ---- tokenization ----------------------------------------------------- */

static void
check_cut(const char *text, uint32_t k)
{
    size_t len = strlen(text);
    uint32_t *s = calloc(k + 1, sizeof(*s));
    uint32_t i;

    cr_assert_eq(tg_sim_cut(text, len, k, s), 0);
    cr_assert_eq(s[0], 0);
    for (i = 0; i < k; i++) {
        uint32_t end = i + 1 < k ? s[i + 1] : (uint32_t) len;

        cr_assert(end >= s[i]);
        /* No token starts inside a UTF-8 sequence. */
        if (s[i] < len)
            cr_assert_neq(((unsigned char) text[s[i]]) & 0xc0, 0x80);
    }
    free(s);
}

Test(sim_text, cut_any_count)
{
    const char *t = "Okay, let me think. The answer is \\boxed{42} \u00d7 "
                    "\u2212 caf\u00e9!\n\nWait, done.";
    uint32_t k;

    for (k = 1; k < 80; k++)
        check_cut(t, k);
}

Test(sim_text, plan_exact_count_and_tag)
{
    const char *t = "Thinking about it carefully.\n</think>\n\nAnswer: 7.";
    tg_sim_plan_t p;
    uint32_t n;

    /* From 3: thinking, the tag and the answer need a token each. */
    for (n = 3; n < 60; n++) {
        cr_assert_eq(tg_sim_plan_build(&p, t, strlen(t), n, 1), 0);
        cr_assert_eq(p.n, n, "n=%u got %u", n, p.n);
        cr_assert_eq(p.tag, 1);
        cr_assert_eq(p.cuts[p.reason_n], strlen("Thinking about it "
                                                "carefully.\n"));
        cr_assert_eq(p.cuts[p.reason_n + 1], p.cuts[p.reason_n] + 8);
        cr_assert_eq(p.cuts[p.n], strlen(t));
        tg_sim_plan_free(&p);
    }
    /* Without the tag everything is thinking. */
    cr_assert_eq(tg_sim_plan_build(&p, "no tag here", 11, 4, 1), 0);
    cr_assert_eq(p.tag, 0);
    cr_assert_eq(p.reason_n, 4);
    tg_sim_plan_free(&p);
    /* Natural count for text the sim writes itself. */
    cr_assert_eq(tg_sim_count_pieces("Hello, world!", 13), 4);
}

Test(sim_text, extract_answer)
{
    char out[64];

    const char *t = "so \\boxed{1} then \\boxed{\\frac{1}{2}} ok";

    cr_assert_eq(tg_sim_extract_answer(t, strlen(t), out, sizeof(out)),
                 strlen("\\frac{1}{2}"));
    cr_assert_str_eq(out, "\\frac{1}{2}");
    cr_assert_eq(tg_sim_extract_answer(t, strlen(t) - 4, out, sizeof(out)),
                 1, "an unclosed last box falls back to the one before");
    cr_assert_gt(tg_sim_extract_answer("The answer is 12. Then the answer "
        "is $204$.", 43, out, sizeof(out)), 0);
    cr_assert_str_eq(out, "204");
    cr_assert_eq(tg_sim_extract_answer("no result \\boxed{unclosed", 25,
                                       out, sizeof(out)), 0);
    cr_assert_eq(tg_sim_extract_answer("nothing", 7, out, sizeof(out)), 0);
    t = "the answer is 4. So the final answer is \\boxed{";
    cr_assert_eq(tg_sim_extract_answer(t, strlen(t), out, sizeof(out)), 1,
                 "an open box after 'answer is' states nothing");
    cr_assert_str_eq(out, "4");
    t = "The answer is B. So the answer is the number of ways";
    cr_assert_eq(tg_sim_extract_answer(t, strlen(t), out, sizeof(out)), 1,
                 "a word after 'answer is' states nothing");
    cr_assert_str_eq(out, "B");
}

Test(sim_text, norm_ws)
{
    size_t n;
    char *s = tg_sim_norm_ws("  a \n\t b  c ", 12, &n);

    cr_assert_str_eq(s, "a b c");
    cr_assert_eq(n, 5);
    free(s);
}

/* ---- prefix cache ----------------------------------------------------- */

Test(sim_cache, hits_and_eviction)
{
    tg_sim_cache_t *c = tg_sim_cache_new(8);
    char text[64 * 6], other[64 * 6];
    size_t total;

    memset(text, 'a', sizeof(text));
    memset(other, 'b', sizeof(other));
    cr_assert_eq(tg_sim_cache_lookup_insert(c, "m", text, sizeof(text),
                                            &total), 0);
    cr_assert_eq(total, 6);
    cr_assert_eq(tg_sim_cache_lookup_insert(c, "m", text, sizeof(text),
                                            &total), 6);
    /* Another model never shares blocks. */
    cr_assert_eq(tg_sim_cache_lookup_insert(c, "x", text, 128, &total), 0);
    cr_assert_eq(tg_sim_cache_lookup_insert(c, "m", other, sizeof(other),
                                            &total), 0);
    cr_assert_leq(tg_sim_cache_size(c), 8);
    cr_assert_lt(tg_sim_cache_lookup_insert(c, "m", text, sizeof(text),
                                            &total), 6);
    tg_sim_cache_free(c);
}

/* ---- synthetic -------------------------------------------------------- */

Test(sim_synth, deterministic_and_structured)
{
    long long ans;
    char *p = tg_sim_synth_problem(7, 3, &ans);
    size_t l1, l2, l3;
    char *a = tg_sim_synth_trace(p, strlen(p), 7, 0, 0.0, &l1);
    char *b = tg_sim_synth_trace(p, strlen(p), 7, 0, 0.0, &l2);
    char *c = tg_sim_synth_trace(p, strlen(p), 7, 1, 1.0, &l3);
    char got[64], want[64];

    cr_assert_eq(l1, l2);
    cr_assert_eq(memcmp(a, b, l1), 0);
    cr_assert(strstr(a, "</think>") != NULL);
    tg_sim_extract_answer(a, l1, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld", ans);
    cr_assert_str_eq(got, want, "error rate 0 must be right");
    tg_sim_extract_answer(c, l3, got, sizeof(got));
    cr_assert_str_neq(got, want, "error rate 1 must be wrong");
    free(a);
    free(b);
    free(c);
    free(p);
}

Test(sim_synth, correct_traces_shorter_on_average)
{
    size_t right = 0, wrong = 0, l, i;

    for (i = 0; i < 200; i++) {
        char *p = tg_sim_synth_problem(1, i, NULL);
        char *t = tg_sim_synth_trace(p, strlen(p), 1, i, 0.0, &l);

        right += l;
        free(t);
        t = tg_sim_synth_trace(p, strlen(p), 1, i, 1.0, &l);
        wrong += l;
        free(t);
        free(p);
    }
    cr_assert_lt(right, wrong);
}

/* ---- traces ----------------------------------------------------------- */

static char *
write_traces(void)
{
    static char path[] = "/tmp/tg-sim-unit-XXXXXX.jsonl.gz";
    int fd = mkstemps(path, 9);
    gzFile gz;

    cr_assert_geq(fd, 0);
    gz = gzdopen(fd, "wb");
    cr_assert_not_null(gz);
    gzputs(gz, "{\"model\": \"M\", \"problem\": \"What is  1+1?\", "
           "\"sample_id\": 1, \"completion_tokens\": 9, \"finish_reason\": "
           "\"STOP\", \"output\": \"Two, since \\\\boxed{2}.</think>The "
           "answer is \\\\boxed{2}.\"}\n");
    gzputs(gz, "{\"model\": \"M\", \"problem\": \"What is 1+1?\", "
           "\"sample_id\": 0, \"completion_tokens\": 30, \"finish_reason\": "
           "\"CUTOFF\", \"output\": \"Hmm, maybe the answer is 3. Wait\"}\n");
    gzclose(gz);
    return path;
}

Test(sim_traces, load_find_and_prefix)
{
    char err[256];
    char *path = write_traces();
    tg_sim_traces_t *t = tg_sim_traces_load(path, err, sizeof(err));
    tg_sim_problem_t *p;
    tg_sim_sample_t *s;
    const tg_sim_plan_t *plan;
    size_t end, plen;
    const char *prompt = "<user>What is  1+1?<assistant><think>\nHmm, maybe "
                         "the answer is 3. Wait, no";

    cr_assert_not_null(t, "%s", err);
    cr_assert_eq(t->n_samples, 2);
    cr_assert(tg_sim_traces_has_model(t, "M"));
    p = tg_sim_traces_find(t, "M", "What is 1+1?\n", 13);
    cr_assert_not_null(p);
    cr_assert_eq(p->count, 2);
    cr_assert_eq(p->samples[0].sample_id, 0);
    cr_assert_null(tg_sim_traces_find(t, "other", "What is 1+1?", 12));
    cr_assert_eq(tg_sim_traces_find(t, "M", "Solve: What is 1+1? Think.",
                                    26), p);
    plan = tg_sim_sample_plan(&p->samples[1]);
    cr_assert_eq(plan->n, 9);
    cr_assert_eq(plan->tag, 1);
    plan = tg_sim_sample_plan(&p->samples[0]);
    cr_assert_eq(plan->n, 30);
    cr_assert(plan->finish_length);

    cr_assert_eq(tg_sim_traces_find_in(t, "M", prompt, strlen(prompt),
                                       &end), p);
    s = tg_sim_traces_match_prefix(p, prompt + end, strlen(prompt) - end,
                                   &plen);
    cr_assert_eq(s, &p->samples[0]);
    cr_assert_eq(plen, strlen("Hmm, maybe the answer is 3. Wait"));
    tg_sim_traces_free(t);
    unlink(path);
}

/* ---- continuation ----------------------------------------------------- */

Test(sim_continue, wanted_after_the_problem)
{
    static const char *const wanted[] = {
        "\nOkay, so", "<|im_start|>assistant\n<think>\nOkay",
        "<\xef\xbd\x9c" "Assistant\xef\xbd\x9c><think>\nx", "</think>",
        "\nPlease reason.\n<|assistant|>so 5", "<|user|> x <b>",
    };
    static const char *const template_only[] = {
        "", " \n", "<think>\n", "<|im_end|>\n<|im_start|>assistant\n",
        "\nPlease reason step by step.<\xef\xbd\x9c" "Assistant\xef\xbd\x9c>"
        "<think>\n", "<|start|>assistant<|channel|>analysis<|message|>",
    };
    size_t i;

    for (i = 0; i < sizeof(wanted) / sizeof(wanted[0]); i++)
        cr_assert(tg_sim_continue_wanted(wanted[i], strlen(wanted[i])),
                  "%s", wanted[i]);
    for (i = 0; i < sizeof(template_only) / sizeof(template_only[0]); i++)
        cr_assert_not(tg_sim_continue_wanted(template_only[i],
                                             strlen(template_only[i])),
                      "%s", template_only[i]);
}

static void
check_reply(tg_sim_problem_t *p, const char *text, double converge,
            const char *want)
{
    tg_sim_continue_info_t info;
    char *got = tg_sim_continue_reply(p, text, strlen(text), converge, -1,
                                      &info);

    cr_assert_not_null(got);
    cr_assert_str_eq(got, want, "converge %g, text %s", converge, text);
    free(got);
}

Test(sim_continue, converge_and_probe)
{
    static const char think[] = "First we add the groups one at a time, then "
        "we check the sum again and again until it stays put; \\boxed{5} ok";
    static char path[] = "/tmp/tg-sim-unit-XXXXXX.jsonl.gz";
    char err[256], text[512];
    int fd = mkstemps(path, 9);
    size_t at40 = (sizeof(think) - 1) * 4 / 10;
    size_t at60 = (sizeof(think) - 1) * 6 / 10;
    tg_sim_traces_t *t;
    tg_sim_problem_t *p;
    gzFile gz;

    cr_assert_geq(fd, 0);
    gz = gzdopen(fd, "wb");
    cr_assert_not_null(gz);
    gzputs(gz, "{\"model\": \"M\", \"problem\": \"Q?\", \"pred\": 7, "
           "\"output\": \"First we add the groups one at a time, then we "
           "check the sum again and again until it stays put; \\\\boxed{5} "
           "ok</think>\\\\boxed{7}\"}\n");
    gzclose(gz);
    t = tg_sim_traces_load(path, err, sizeof(err));
    cr_assert_not_null(t, "%s", err);
    p = t->problems[0];
    cr_assert_eq(tg_sim_sample_think_len(&p->samples[0]), sizeof(think) - 1);

    /* The plain rule: nothing stated before the box, 5 after it. */
    snprintf(text, sizeof(text), "%.*s\n\n**Final Answer**\n", (int) at60,
             think);
    check_reply(p, text, 0, "I have not reached a final answer yet.");
    check_reply(p, think, 0, "\\boxed{5}");
    /* At convergence 0.5: 40% of the thinking is the rule, 60% the
     * recorded answer (7, not the 5 the thinking states). */
    check_reply(p, text, 0.5, "\\boxed{7}");
    check_reply(p, think, 0.5, "\\boxed{7}");
    snprintf(text, sizeof(text), "%.*s\n\n**Final Answer**\n", (int) at40,
             think);
    check_reply(p, text, 0.5, "I have not reached a final answer yet.");
    /* A probe's open box gets the answer and "}"; "}" alone with none. */
    snprintf(text, sizeof(text), "%.*s ... **Final Answer**\n\\boxed{",
             (int) at40, think);
    check_reply(p, text, 0.5, "}");
    snprintf(text, sizeof(text), "%.*s ... The answer is \\boxed{ ",
             (int) at60, think);
    check_reply(p, text, 0.5, "7}");
    check_reply(p, text, 0, "}");
    /* Text that repeats no recording (here mid-trace) keeps the rule. */
    check_reply(p, think + 20, 0.5, "\\boxed{5}");
    check_reply(NULL, "so \\boxed{3}. Then", 0.5, "\\boxed{3}");
    tg_sim_traces_free(t);
    unlink(path);
}

/* ---- scheduler -------------------------------------------------------- */

static tg_sim_t *
new_sim(struct event_base **base)
{
    tg_sim_t *sim = calloc(1, sizeof(*sim));
    char err[128];
    char *argv[] = { "sim", "--speed", "0", "--max-concurrency", "4",
                     "--max-queue", "4", NULL };

    *base = event_base_new();
    cr_assert_eq(tg_sim_options_parse(&sim->opt, 7, argv, err,
                                      sizeof(err)), 0);
    cr_assert_eq(tg_sim_init(sim, *base), 0);
    return sim;
}

Test(sim_sched, lockstep_and_limits)
{
    struct event_base *base;
    tg_sim_t *sim = new_sim(&base);
    tg_sim_req_t *r = tg_sim_req_new(sim, 3), *q, *full;
    tg_sim_plan_t plans[3];
    const char *texts[3] = { "a b c d e f", "a b", "a b c d" };
    const char *stops[] = { " d" };
    int i;

    r->stream = 1;
    r->model = strdup("m");
    for (i = 0; i < 3; i++) {
        cr_assert_eq(tg_sim_plan_build(&plans[i], texts[i],
                                       strlen(texts[i]), 0, 0), 0);
        r->choices[i].plan = &plans[i];
        tg_sim_choice_limit(&r->choices[i], 0, NULL, 0);
    }
    tg_sim_choice_limit(&r->choices[0], 0, stops, 1);
    cr_assert_eq(r->choices[0].end, 4);
    cr_assert_eq(r->choices[0].end_byte, 5);
    tg_sim_choice_limit(&r->choices[0], 5, NULL, 0);
    cr_assert_eq(r->choices[0].end, 5);
    cr_assert(r->choices[0].finish_length);

    cr_assert_eq(tg_sim_submit(sim, r), 0);
    cr_assert_eq(sim->running_streams, 3);
    q = tg_sim_req_new(sim, 2);
    q->model = strdup("m");
    for (i = 0; i < 2; i++) {
        q->choices[i].plan = &plans[1];
        tg_sim_choice_limit(&q->choices[i], 0, NULL, 0);
    }
    cr_assert_eq(tg_sim_submit(sim, q), 0);
    cr_assert_eq(sim->queued_streams, 2, "3 + 2 > 4: it waits");
    full = tg_sim_req_new(sim, 3);
    cr_assert_eq(tg_sim_submit(sim, full), -EAGAIN);
    tg_sim_req_free(full);

    /* Two tokens for "a b": that stream ends first, the others go on. */
    tg_sim_step(sim);
    cr_assert_eq(sim->stats.tokens_generated, 3);
    tg_sim_step(sim);
    cr_assert_eq(sim->stats.completed_streams, 1);
    cr_assert_eq(sim->queued_streams, 0, "a freed slot admits the queue");
    for (i = 0; i < 10; i++)
        tg_sim_step(sim);
    cr_assert_eq(sim->stats.completed_streams, 5);
    cr_assert_eq(sim->open_streams, 0);
    cr_assert_eq(sim->running_streams, 0);
    cr_assert_eq(sim->stats.tokens_generated, 5 + 2 + 4 + 2 + 2);
    for (i = 0; i < 3; i++)
        tg_sim_plan_free(&plans[i]);
    tg_sim_destroy(sim);
    event_base_free(base);
    free(sim);
}

/* ---- simulated judge -------------------------------------------------- */

Test(sim_judge, mu_and_binormal_auroc)
{
    static const double targets[] = { 0.6, 0.8, 0.95 };
    size_t t;

    cr_assert_float_eq(tg_sim_judge_mu(0.5), 0.0, 1e-9);
    /* Phi^-1(0.8) = 0.841621 */
    cr_assert_float_eq(tg_sim_judge_mu(0.8), sqrt(2.0) * 0.841621, 1e-5);
    for (t = 0; t < sizeof(targets) / sizeof(targets[0]); t++) {
        double mu = tg_sim_judge_mu(targets[t]), zs[400], zd[400];
        size_t i, j, wins = 0;

        /* Keys as different pairs give them: P(z_same > z_diff). */
        for (i = 0; i < 400; i++) {
            zs[i] = tg_sim_judge_z(mu, 1, tg_sim_hash(1, &i, sizeof(i)));
            zd[i] = tg_sim_judge_z(mu, 0, tg_sim_hash(2, &i, sizeof(i)));
        }
        for (i = 0; i < 400; i++)
            for (j = 0; j < 400; j++)
                wins += zs[i] > zd[j];
        cr_assert_float_eq((double) wins / (400.0 * 400.0), targets[t],
                           0.03, "target %g", targets[t]);
    }
}

static char *
write_judge_traces(void)
{
    static char path[] = "/tmp/tg-sim-judge-XXXXXX.jsonl";
    int fd = mkstemps(path, 6);
    FILE *f;

    cr_assert_geq(fd, 0);
    f = fdopen(fd, "w");
    cr_assert_not_null(f);
    /* Samples 0 and 1 share their first bytes; 3 has no pred field. */
    fputs("{\"model\":\"M\",\"problem\":\"Add 2 and 5.\",\"sample_id\":0,"
          "\"pred\":7,\"output\":\"Adding two and five slowly gives seven "
          "in the end.\"}\n"
          "{\"model\":\"M\",\"problem\":\"Add 2 and 5.\",\"sample_id\":1,"
          "\"pred\":\" 8 \",\"output\":\"Adding two and five slowly gives "
          "eight, I think.\"}\n"
          "{\"model\":\"M\",\"problem\":\"Add 2 and 5.\",\"sample_id\":2,"
          "\"pred\":\"NO_ANSWER\",\"output\":\"Unsure what to do here, "
          "let me think about it.\"}\n"
          "{\"model\":\"M\",\"problem\":\"Add 2 and 5.\",\"sample_id\":3,"
          "\"output\":\"So the answer is \\\\boxed{7} surely.\"}\n", f);
    fclose(f);
    return path;
}

Test(sim_judge, match_answers_and_keys)
{
    char err[256];
    char *path = write_judge_traces();
    tg_sim_traces_t *t = tg_sim_traces_load(path, err, sizeof(err));
    tg_sim_problem_t *p;
    tg_sim_sample_t *a, *b;
    size_t la, lb;
    int amb;
    const char *q = "Problem:\nAdd 2 and 5.\n\nReasoning A:\nAdding two and "
                    "five slowly gives eight\n\nReasoning B:\nSo the answer "
                    "is \\boxed{7}\n\nWill A and B reach the same final "
                    "answer? Answer Yes or No.";
    const char *bare = "Add 2 and 5. First: Adding two and five slowly "
                       "gives seven. Second: Unsure what to do here, let me "
                       "think";

    cr_assert_not_null(t, "%s", err);
    p = t->problems[0];
    cr_assert_str_eq(p->samples[0].answer, "7");
    cr_assert_str_eq(p->samples[1].answer, "8");
    cr_assert_null(p->samples[2].answer);
    cr_assert_str_eq(p->samples[3].answer, "7");   /* extracted */
    cr_assert(tg_sim_judge_same(&p->samples[0], &p->samples[3]));
    cr_assert_not(tg_sim_judge_same(&p->samples[0], &p->samples[1]));
    cr_assert_not(tg_sim_judge_same(&p->samples[2], &p->samples[2]));

    cr_assert_eq(tg_sim_judge_match(t, q, strlen(q), &p, &a, &b, &la, &lb,
                                    &amb), 0);
    cr_assert_eq(a->sample_id, 1);
    cr_assert_eq(b->sample_id, 3);
    cr_assert_eq(la, strlen("Adding two and five slowly gives eight"));
    cr_assert_not(amb);
    /* Without the section marks: the first two prefixes after the
     * problem.  "...gives seven" is also sample 1's up to "gives ". */
    cr_assert_eq(tg_sim_judge_match(t, bare, strlen(bare), &p, &a, &b, &la,
                                    &lb, &amb), 0);
    cr_assert_eq(a->sample_id, 0);
    cr_assert_eq(b->sample_id, 2);
    /* A prefix both 0 and 1 start with is 0's, and says so. */
    q = "Problem:\nAdd 2 and 5.\nReasoning A:\nAdding two and five\n"
        "Reasoning B:\nUnsure what";
    cr_assert_eq(tg_sim_judge_match(t, q, strlen(q), &p, &a, &b, &la, &lb,
                                    &amb), 0);
    cr_assert_eq(a->sample_id, 0);
    cr_assert(amb);
    q = "Problem:\nAdd 3 and 5.\nReasoning A:\nx\nReasoning B:\ny";
    cr_assert_eq(tg_sim_judge_match(t, q, strlen(q), &p, &a, &b, &la, &lb,
                                    &amb), -1);
    q = "Problem:\nAdd 2 and 5.\nReasoning A:\nAdding two and five\n"
        "Reasoning B:\nnothing recorded";
    cr_assert_eq(tg_sim_judge_match(t, q, strlen(q), &p, &a, &b, &la, &lb,
                                    &amb), -2);

    /* Order-independent, seed-dependent. */
    p = t->problems[0];
    cr_assert_eq(tg_sim_judge_key(p, 1, 3, 0), tg_sim_judge_key(p, 3, 1, 0));
    cr_assert_neq(tg_sim_judge_key(p, 1, 3, 0), tg_sim_judge_key(p, 1, 3, 1));
    cr_assert_neq(tg_sim_judge_key(p, 1, 3, 0), tg_sim_judge_key(p, 1, 2, 0));
    tg_sim_traces_free(t);
    unlink(path);
}
