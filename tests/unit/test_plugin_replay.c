/*
 * Replay of recorded traces through self_consistency, ffs and deepprune on
 * the fake host: for every problem of every file in ../shared/traces (or
 * $TG_TRACES_DIR), its recorded samples become the scripted traces (text =
 * output, split at </think> or gpt-oss's final channel as the backend's
 * reasoning parser would; tokens = completion_tokens; all start together
 * and stream one token per ms, a lockstep batch).  Checks that
 *
 *   - ffs (n=8) answers with the shortest trace that ends with "stop" and
 *     an answer, for tokens = sum of min(len_i, len_winner);
 *   - self_consistency (n=8) answers with majority@8 (ties to the earliest
 *     finisher), for the sum of all lengths;
 *   - early_stop=exact gives the same winner for no more tokens;
 *   - deepprune (lexical judge, prefix_tokens=512, several tau, every
 *     survivor to its end) spends no more tokens than self_consistency;
 *
 * the expectations worked out here from the whole recorded outputs, and
 * prints accuracy and tokens per file.  Skipped when there are no traces.
 */

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host.h"
#include "traces_reader.h"

/* Both plugins in one binary: each source defines thinkgate_plugin, so
 * each is renamed on the way in.  Their statics have distinct prefixes. */
#define thinkgate_plugin  tg_replay_sc_plugin
#include "self_consistency.c"
#undef thinkgate_plugin
#define thinkgate_plugin  tg_replay_ffs_plugin
#include "ffs.c"
#undef thinkgate_plugin
#define thinkgate_plugin  tg_replay_dp_plugin
#include "deepprune.c"
#undef thinkgate_plugin

#define TG_REPLAY_N  8

/* deepprune with the lexical judge (the fake host's trigram cosine, the
 * real score's idea), prefix_tokens=512, at these tau. */
static const double  tg_replay_dp_tau[] = { 0.5, 0.8, 0.9, 0.95 };
#define TG_REPLAY_DP  (sizeof(tg_replay_dp_tau) / sizeof(tg_replay_dp_tau[0]))

typedef struct {
    json_t      *json;
    const char  *output;
    size_t       output_len;
    char        *reasoning;     /* before </think>, or all of it */
    const char  *content;       /* the final part, or "" */
    uint32_t     tokens;
    int          stop;          /* recorded as not cut off */
    char         answer[TG_ANSWER_MAX];     /* "" when none */
} tg_replay_sample_t;

typedef struct {
    const char  *name;
    unsigned     problems;
    unsigned     sc_correct, ffs_correct, ffs_fallbacks;
    uint64_t     sc_tokens, exact_tokens, strict_tokens, ffs_tokens;
    unsigned     dp_correct[TG_REPLAY_DP];
    uint64_t     dp_tokens[TG_REPLAY_DP];
} tg_replay_file_t;

typedef struct {
    int       winner;
    uint64_t  tokens;
    char      answer[TG_ANSWER_MAX + 2];
} tg_replay_run_t;

static void
tg_replay_sample(tg_replay_sample_t *s, json_t *j, const char *bench)
{
    json_t            *out = json_object_get(j, "output");
    json_t            *fr = json_object_get(j, "finish_reason");
    tg_answer_opts_t   o;
    size_t             rlen, coff;

    cr_assert(json_is_string(out), "a sample without output");
    s->json = j;
    s->output = json_string_value(out);
    s->output_len = json_string_length(out);
    s->tokens = (uint32_t) json_integer_value(
        json_object_get(j, "completion_tokens"));
    /* Recorded reasons are STOP, UNKNOWN or null (finished) and CUTOFF
     * (max_tokens). */
    s->stop = !(json_is_string(fr)
                && (strcmp(json_string_value(fr), "CUTOFF") == 0
                    || strcmp(json_string_value(fr), "length") == 0));
    /* Split as a reasoning parser would: at </think>, or at gpt-oss's
     * final channel. */
    if (tg_answer_final_split(s->output, s->output_len, &rlen, &coff)) {
        s->content = s->output + coff;
    } else {
        rlen = s->output_len;
        s->content = "";
    }
    s->reasoning = strndup(s->output, rlen);
    cr_assert_not_null(s->reasoning, "out of memory");

    /* The expectation comes from the whole output, as test_answer reads
     * it; the plugins see it split, as a reasoning parser splits it. */
    tg_answer_opts_default(&o);
    o.flags = TG_ANSWER_F_REASONING;
    tg_answer_opts_for_bench(bench, &o);
    if (tg_answer_extract_opts(s->output, s->output_len, &o, s->answer,
                               sizeof(s->answer)) <= 0)
    {
        s->answer[0] = '\0';
    }
}


static void
tg_replay_run(const tg_plugin_t *p, const char *opts,
    const tg_replay_sample_t *s, size_t n, tg_replay_run_t *r)
{
    fake_host_t  *h = fake_host_new(p);
    const char   *a;
    size_t        i;

    cr_assert_not_null(h);
    cr_assert_eq(fake_host_set_options(h, opts), 0, "%s: %s", opts,
                 fake_host_error(h));
    fake_host_set_step(h, 64);
    for (i = 0; i < n; i++) {
        fake_trace_script_t  sc = { 0 };

        sc.reasoning = s[i].reasoning;
        sc.content = s[i].content;
        sc.tokens = s[i].tokens;
        sc.finish_reason = s[i].stop ? "stop" : "length";
        cr_assert_eq(fake_host_add_trace(h, &sc), 0);
    }
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_violations(h), 0, "%s", fake_host_violation(h));
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    r->winner = fake_host_winner(h);
    r->tokens = fake_host_tokens(h);
    a = fake_host_summary(h, "answer");
    snprintf(r->answer, sizeof(r->answer), "%s", a != NULL ? a : "null");
    fake_host_free(h);
}


/* Majority with ties to the earliest finisher (shortest, then first). */
static int
tg_replay_majority(const tg_replay_sample_t *s, size_t n)
{
    size_t    i, j;
    unsigned  count[TG_REPLAY_N] = { 0 }, best_count = 0;
    int       best = -1;

    for (i = 0; i < n; i++) {
        if (s[i].answer[0] == '\0') {
            continue;
        }
        for (j = 0; j < n; j++) {
            count[i] += s[j].answer[0] != '\0'
                        && tg_answer_equal(s[i].answer, s[j].answer);
        }
    }
    for (i = 0; i < n; i++) {
        /* i stands for its answer when no voter of it finished earlier. */
        if (count[i] == 0) {
            continue;
        }
        if (best < 0 || count[i] > best_count
            || (count[i] == best_count
                && s[i].tokens < s[best].tokens
                && !tg_answer_equal(s[i].answer, s[best].answer)))
        {
            best = (int) i;
            best_count = count[i];
        }
        if (tg_answer_equal(s[i].answer, s[best].answer)
            && s[i].tokens < s[best].tokens)
        {
            best = (int) i;
        }
    }
    return best;
}


/*
 * Tokens plain voting would cost with the simpler stopping rule,
 * "leader > runner-up + running", for comparison with the plugin's rule,
 * which also settles ties it can no longer lose.
 */
static uint64_t
tg_replay_strict_tokens(const tg_replay_sample_t *s, size_t n)
{
    size_t    order[TG_REPLAY_N], i, j, k;
    unsigned  count[TG_REPLAY_N] = { 0 }, lead, second;
    uint32_t  stop_at = 0;
    uint64_t  tokens = 0;

    for (i = 0; i < n; i++) {
        for (j = i; j > 0 && s[order[j - 1]].tokens > s[i].tokens; j--) {
            order[j] = order[j - 1];
        }
        order[j] = i;
    }
    for (k = 0; k < n; k++) {
        stop_at = s[order[k]].tokens;
        if (s[order[k]].answer[0] != '\0') {
            for (j = 0; j < k && !(s[order[j]].answer[0] != '\0'
                 && tg_answer_equal(s[order[j]].answer,
                                    s[order[k]].answer)); j++)
            {
                /* the answer's first voter */
            }
            count[j]++;
        }
        lead = second = 0;
        for (j = 0; j <= k; j++) {
            if (count[j] > lead) {
                second = lead;
                lead = count[j];
            } else if (count[j] > second) {
                second = count[j];
            }
        }
        if (lead > second + (n - k - 1)) {
            break;
        }
    }
    for (i = 0; i < n; i++) {
        tokens += s[i].tokens < stop_at ? s[i].tokens : stop_at;
    }
    return tokens;
}


static void
tg_replay_problem(tg_replay_file_t *f, tg_replay_sample_t *s, size_t n,
    const char *bench, const char *gold, const char *pid)
{
    tg_replay_run_t  sc, exact, ffs;
    char             opts[TG_ANSWER_MAX + 64];
    int              want_ffs = -1, want_sc;
    uint64_t         want_tokens = 0, all_tokens = 0;
    size_t           i;

    snprintf(opts, sizeof(opts), "n=%zu bench=%s", n, bench);
    tg_replay_run(&tg_replay_sc_plugin, opts, s, n, &sc);
    tg_replay_run(&tg_replay_ffs_plugin, opts, s, n, &ffs);
    snprintf(opts, sizeof(opts), "n=%zu bench=%s early_stop=exact", n,
             bench);
    tg_replay_run(&tg_replay_sc_plugin, opts, s, n, &exact);

    for (i = 0; i < n; i++) {
        all_tokens += s[i].tokens;
        if (s[i].answer[0] != '\0' && s[i].stop
            && (want_ffs < 0 || s[i].tokens < s[want_ffs].tokens))
        {
            want_ffs = (int) i;
        }
    }
    want_sc = tg_replay_majority(s, n);

    f->problems++;
    if (want_ffs >= 0) {
        for (i = 0; i < n; i++) {
            want_tokens += s[i].tokens < s[want_ffs].tokens
                           ? s[i].tokens : s[want_ffs].tokens;
        }
        cr_expect_eq(ffs.winner, want_ffs, "%s problem %s: ffs chose %d, "
                     "the shortest with an answer is %d", f->name, pid,
                     ffs.winner, want_ffs);
        cr_expect_eq(ffs.tokens, want_tokens, "%s problem %s: ffs tokens",
                     f->name, pid);
    } else {
        f->ffs_fallbacks++;
    }
    if (want_sc >= 0) {
        cr_expect_eq(sc.winner, want_sc, "%s problem %s: majority chose %d, "
                     "expected %d", f->name, pid, sc.winner, want_sc);
    }
    cr_expect_eq(sc.tokens, all_tokens, "%s problem %s", f->name, pid);
    cr_expect_eq(exact.winner, sc.winner, "%s problem %s: early stop "
                 "changed the winner", f->name, pid);
    cr_expect_leq(exact.tokens, sc.tokens, "%s problem %s", f->name, pid);

    f->sc_correct += sc.winner >= 0 && s[sc.winner].answer[0] != '\0'
                     && tg_answer_equal(s[sc.winner].answer, gold);
    f->ffs_correct += ffs.winner >= 0 && s[ffs.winner].answer[0] != '\0'
                      && tg_answer_equal(s[ffs.winner].answer, gold);
    for (i = 0; i < TG_REPLAY_DP; i++) {
        tg_replay_run_t  dp;

        snprintf(opts, sizeof(opts), "n=%zu bench=%s prefix_tokens=512 "
                 "early_stop=none tau=%.2f", n, bench, tg_replay_dp_tau[i]);
        tg_replay_run(&tg_replay_dp_plugin, opts, s, n, &dp);
        cr_expect_leq(dp.tokens, sc.tokens, "%s problem %s", f->name, pid);
        f->dp_correct[i] += dp.winner >= 0 && s[dp.winner].answer[0] != '\0'
                            && tg_answer_equal(s[dp.winner].answer, gold);
        f->dp_tokens[i] += dp.tokens;
    }
    f->sc_tokens += sc.tokens;
    f->exact_tokens += exact.tokens;
    f->strict_tokens += tg_replay_strict_tokens(s, n);
    f->ffs_tokens += ffs.tokens;
}


/* Every problem of the current file: samples grouped by problem_id, in
 * order. */
static void
tg_replay_file(tg_traces_t *tr, tg_replay_file_t *f)
{
    tg_replay_sample_t  s[TG_REPLAY_N];
    json_t             *j, *lines = json_array();
    char                pid[64], cur[64] = "", gold[64];
    char                bench[64] = "";
    size_t              i, k, n = 0;

    cr_assert_not_null(lines);
    while ((j = tg_traces_next(tr)) != NULL) {
        json_array_append_new(lines, j);
    }

    for (i = 0; i <= json_array_size(lines); i++) {
        json_t  *id = NULL;

        j = json_array_get(lines, i);
        if (j != NULL) {
            id = json_object_get(j, "problem_id");
            if (json_is_string(id)) {
                snprintf(pid, sizeof(pid), "%s", json_string_value(id));
            } else {
                snprintf(pid, sizeof(pid), "%lld",
                         (long long) json_integer_value(id));
            }
        }
        if (n > 0 && (j == NULL || strcmp(pid, cur) != 0 || n == TG_REPLAY_N))
        {
            tg_replay_problem(f, s, n, bench, gold, cur);
            for (k = 0; k < n; k++) {
                free(s[k].reasoning);
            }
            n = 0;
        }
        if (j == NULL || (n == 0 && strcmp(pid, cur) == 0)) {
            continue;       /* the end, or a 9th+ sample: unused */
        }
        if (n == 0) {
            json_t  *g = json_object_get(j, "answer");

            snprintf(cur, sizeof(cur), "%s", pid);
            snprintf(bench, sizeof(bench), "%s",
                     json_string_value(json_object_get(j, "bench")) ?: "");
            if (json_is_integer(g)) {
                snprintf(gold, sizeof(gold), "%lld",
                         (long long) json_integer_value(g));
            } else {
                snprintf(gold, sizeof(gold), "%s",
                         json_string_value(g) ?: "");
            }
        }
        tg_replay_sample(&s[n++], j, bench);
    }
    json_decref(lines);
}


static void
tg_replay_print(const tg_replay_file_t *p)
{
    size_t  i;

    cr_assert_gt(p->problems, 0, "%s holds no problems", p->name);
    fprintf(stderr, "replay: %-32s %5u %7.1f%% %12llu %7.1f%% %12llu "
            "%6.3fx %7.3fx %7.3fx\n", p->name, p->problems,
            100.0 * p->sc_correct / p->problems,
            (unsigned long long) p->sc_tokens,
            100.0 * p->ffs_correct / p->problems,
            (unsigned long long) p->ffs_tokens,
            (double) p->ffs_tokens / (double) p->sc_tokens,
            (double) p->exact_tokens / (double) p->sc_tokens,
            (double) p->strict_tokens / (double) p->sc_tokens);
    fprintf(stderr, "replay: %-32s deepprune lexical:", "");
    for (i = 0; i < TG_REPLAY_DP; i++) {
        fprintf(stderr, "  tau %.2f %5.1f%% %5.3fx", tg_replay_dp_tau[i],
                100.0 * p->dp_correct[i] / p->problems,
                (double) p->dp_tokens[i] / (double) p->sc_tokens);
    }
    fprintf(stderr, "\n");
}


Test(replay, recorded_traces, .timeout = 900)
{
    tg_replay_file_t  all = { .name = "all" };
    tg_traces_t       tr;

    tg_traces_open(&tr);
    fprintf(stderr, "replay: %-32s %5s %8s %12s %8s %12s %7s %8s %8s\n",
            "file", "probs", "SC@8", "SC tokens", "FFS@8", "FFS tokens",
            "FFS/SC", "exact/SC", "strict");
    while (tg_traces_next_file(&tr)) {
        tg_replay_file_t  f = { 0 };

        f.name = tr.base;
        tg_replay_file(&tr, &f);
        all.problems += f.problems;
        all.sc_correct += f.sc_correct;
        all.ffs_correct += f.ffs_correct;
        all.ffs_fallbacks += f.ffs_fallbacks;
        all.sc_tokens += f.sc_tokens;
        all.exact_tokens += f.exact_tokens;
        all.strict_tokens += f.strict_tokens;
        all.ffs_tokens += f.ffs_tokens;
        for (size_t i = 0; i < TG_REPLAY_DP; i++) {
            all.dp_correct[i] += f.dp_correct[i];
            all.dp_tokens[i] += f.dp_tokens[i];
        }
        tg_replay_print(&f);
    }
    tg_replay_print(&all);
    fprintf(stderr, "replay: exact/SC: early_stop=exact's tokens over plain "
            "voting's; strict: the same with the rule \"leader > runner-up "
            "+ running\" (the issue's 0.91x); problems without a qualifying "
            "ffs finisher: %u\n", all.ffs_fallbacks);
    tg_traces_close(&tr);
}
