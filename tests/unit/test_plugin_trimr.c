/*
 * trimr against the fake host: thoughts found the same whatever the delta
 * boundaries, each trigger (overthinking, underthinking by budget and by
 * thoughts, repetition), the cut as one live stream with the thinking
 * closed and the guide appended, continuations without an answer, the
 * probe and llm verifiers, verdicts that come late, out of order or fail,
 * n > 1 voting, and a client leaving during a probe or a continuation.
 *
 * A scripted thinking is a list of thoughts, each boxing an answer ("-":
 * none); thoughts after the first open with "Wait,".  One token is one
 * byte, so a cut's position is exact.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin_test_util.h"
#include "trimr.h"

extern const tg_plugin_t  thinkgate_plugin;

static char  tg_tt_text[8192];

/* The thinking of answers[0..n): returns tg_tt_text. */
static const char *
tg_tt_thinking(const char *const *answers, size_t n)
{
    size_t  i, len = 0;

    tg_tt_text[0] = '\0';
    for (i = 0; i < n; i++) {
        len += (size_t) snprintf(tg_tt_text + len, sizeof(tg_tt_text) - len,
            "%s step %zu, worked out with care and some more words%s%s%s"
            "\n\n", i == 0 ? "We begin at" : "Wait, redo", i,
            strcmp(answers[i], "-") != 0 ? ". The value is \\boxed{" : ".",
            strcmp(answers[i], "-") != 0 ? answers[i] : "",
            strcmp(answers[i], "-") != 0 ? "}." : "");
    }
    return tg_tt_text;
}


/* A host running opts over one thinking trace (then content), followed by
 * ncont continuation scripts answering cont. */
static fake_host_t *
tg_tt_host(const char *opts, const char *thinking, const char *cont,
    size_t ncont)
{
    fake_host_t          *h = tg_test_new(&thinkgate_plugin);
    fake_trace_script_t   s = { 0 };
    size_t                i;

    cr_assert_eq(fake_host_set_options(h, opts), 0, "%s: %s", opts,
                 fake_host_error(h));
    s.reasoning = thinking;
    s.content = "Done: \\boxed{99}.";
    s.tokens = (uint32_t) (strlen(thinking) + strlen(s.content));
    cr_assert_eq(fake_host_add_trace(h, &s), 0);
    for (i = 0; i < ncont; i++) {
        fake_trace_script_t  c = { 0 };

        c.content = cont;
        c.tokens = 8;
        cr_assert_eq(fake_host_add_trace(h, &c), 0);
    }
    return h;
}


static void
tg_tt_summary_is(fake_host_t *h, const char *key, const char *json)
{
    const char  *v = fake_host_summary(h, key);

    cr_assert_not_null(v, "summary %s missing", key);
    cr_assert_str_eq(v, json, "summary %s: %s, not %s", key, v, json);
}


Test(trimr, descriptor_and_options)
{
    fake_host_t  *h = tg_test_new(&thinkgate_plugin);

    cr_assert_str_eq(thinkgate_plugin.name, "trimr");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "verifier")->def,
                     "probe");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "m")->def, "2");
    /* Only overthinking cuts by default: the other triggers are off. */
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "budget_share")->def,
                     "0");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "max_thoughts")->def,
                     "0");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "repeat_ngram")->def,
                     "0");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "n")->def, "1");
    cr_assert_str_eq(tg_test_option(&thinkgate_plugin, "probe_tokens")->def,
                     "20");
    cr_assert_eq(fake_host_set_options(h, "m=0"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "budget_share=1.5"), -EINVAL);
    cr_assert_eq(fake_host_set_options(h, "verifier=llm"), 0);
    cr_assert_eq(fake_host_run(h), -EINVAL, "llm without verifier_pool");
    cr_assert_eq(fake_host_fail_status(h), 400);
    tg_test_clean(h);
}


/* Thoughts as the watcher reports them. */
typedef struct {
    size_t  n;
    size_t  start[64];
    size_t  end[64];
} tg_tt_thoughts_t;

static void
tg_tt_on_thought(void *data, uint32_t thought, size_t start, size_t end)
{
    tg_tt_thoughts_t  *t = data;

    cr_assert_eq(thought, t->n, "thoughts come in order");
    if (t->n < 64) {
        t->start[t->n] = start;
        t->end[t->n] = end;
    }
    t->n++;
}

static void *
tg_tt_alloc(tg_req_t *req, size_t size)
{
    (void) req;
    return calloc(1, size);     /* freed by the test */
}


/* Feeds text in pieces cut at a and b; returns the repetition flag. */
static int
tg_tt_feed(const char *text, size_t a, size_t b, uint32_t ngram,
    tg_tt_thoughts_t *out)
{
    tg_host_api_t     api = { 0 };
    tg_trimr_watch_t  w;
    size_t            len = strlen(text);
    int               rep = 0;

    api.alloc = tg_tt_alloc;
    memset(out, 0, sizeof(*out));
    cr_assert_eq(tg_trimr_watch_init(&api, NULL, &w, ngram), 0);
    rep |= tg_trimr_watch_feed(&w, text, a, tg_tt_on_thought, out);
    rep |= tg_trimr_watch_feed(&w, text + a, b - a, tg_tt_on_thought, out);
    rep |= tg_trimr_watch_feed(&w, text + b, len - b, tg_tt_on_thought, out);
    free(w.seen);
    return rep;
}


Test(trimr, thoughts_same_at_every_split)
{
    static const char *const  answers[] = { "1", "-", "3", "4", "-" };
    const char               *text;
    char                      buf[8192];
    tg_tt_thoughts_t          whole, part;
    size_t                    a, len;
    int                       rep;

    text = tg_tt_thinking(answers, 5);
    snprintf(buf, sizeof(buf), "%sHmm, so.\n\nAlternatively, try."
             "</think>\n\nWait, after", text);
    len = strlen(buf);
    tg_tt_feed(buf, len, len, 0, &whole);
    /* Five scripted thoughts, "Hmm", "Alternatively" up to </think>;
     * nothing after </think>. */
    cr_assert_eq(whole.n, 7, "%zu thoughts", whole.n);
    cr_assert_eq(whole.start[1], strstr(buf, "Wait, redo step 1") - buf);
    cr_assert_eq(whole.end[6], strstr(buf, "</think>") - buf);
    for (a = 0; a <= len; a++) {
        tg_tt_feed(buf, a, a, 0, &part);
        cr_assert_eq(part.n, whole.n, "split at %zu", a);
        cr_assert_eq(memcmp(part.start, whole.start, sizeof(whole.start)), 0);
        cr_assert_eq(memcmp(part.end, whole.end, sizeof(whole.end)), 0);
    }

    /* Repetition: a 20-word passage twice; ngram 8 needs 15 words again. */
    snprintf(buf, sizeof(buf), "one two three four five six seven eight "
             "nine ten eleven twelve thirteen fourteen fifteen sixteen "
             "seventeen eighteen nineteen twenty. ");
    len = strlen(buf);
    memcpy(buf + len, buf, len);
    buf[2 * len] = '\0';
    len *= 2;
    for (a = 0; a <= len; a += 3) {
        rep = tg_tt_feed(buf, a, a + (len - a) / 2, 8, &part);
        cr_assert_eq(rep, 1, "repetition found, split at %zu", a);
    }
    cr_assert_eq(tg_tt_feed(buf, len / 2, len, 0, &part), 0, "0 is off");
    cr_assert_eq(tg_tt_feed(buf, len / 2 + 20, len, 16, &part), 0,
                 "20 words repeated are not 31");
}


Test(trimr, overthinking_cuts_into_one_stream)
{
    static const char *const  answers[] = { "-", "42", "42", "7", "8" };
    const char               *text = tg_tt_thinking(answers, 5);
    fake_host_t              *h = tg_tt_host("verifier=rule", text,
                                             "\\boxed{42}", 1);
    const char               *out, *cut_at;

    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    cr_assert_eq(fake_host_traces_started(h), 2);
    cr_assert(fake_host_trace(h, 0)->cancelled_by_plugin);
    cr_assert_str_eq(fake_host_continue_append(h),
                     "\n</think>\n\n**Final Answer**\n");
    /* The client saw the thinking up to the cut: past the start of the
     * third thought (its "Wait," made the second one final), not past
     * the fourth; then the continuation's answer, nothing else. */
    out = fake_host_out_reasoning(h);
    cut_at = strstr(text, "Wait, redo step 3");
    cr_assert_eq(strncmp(out, text, strlen(out)), 0, "a prefix");
    cr_assert_geq(strlen(out), (size_t) (cut_at - text));
    cr_assert_lt(strlen(out), (size_t) (cut_at - text) + 8);
    cr_assert_str_eq(fake_host_out_content(h), "\\boxed{42}");
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    tg_tt_summary_is(h, "cuts", "1");
    tg_tt_summary_is(h, "no_answer_cuts", "0");
    tg_tt_summary_is(h, "answer", "\"42\"");
    tg_tt_summary_is(h, "thoughts", "3");
    cr_assert_eq(atoi(fake_host_summary(h, "cut_tokens")),
                 (int) fake_host_trace(h, 0)->tokens);
    tg_test_clean(h);
}


Test(trimr, streak_needs_m_equal_answers_in_a_row)
{
    static const char *const  answers[] = { "1", "2", "2", "-", "3", "3",
                                            "-", "3", "9", "9" };
    const char               *text = tg_tt_thinking(answers, 10);
    fake_host_t              *h = tg_tt_host("verifier=rule m=3", text,
                                             "\\boxed{3}", 1);

    /* 1 | 2 2 | 3 3 (skip) 3: the third 3 is thought 7. */
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_geq(strlen(fake_host_out_reasoning(h)),
                  (size_t) (strstr(text, "Wait, redo step 8") - text));
    cr_assert_lt(strlen(fake_host_out_reasoning(h)),
                 (size_t) (strstr(text, "redo step 9") - text));
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    tg_test_clean(h);

    /* No two equal in a row: it runs to its own end. */
    h = tg_tt_host("verifier=rule", tg_tt_thinking((const char *[]) {
                   "1", "2", "1", "2", "-" }, 5), "x", 0);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 1);
    tg_tt_summary_is(h, "trigger", "\"none\"");
    tg_tt_summary_is(h, "cuts", "0");
    tg_tt_summary_is(h, "answer", "\"99\"");
    cr_assert_str_eq(fake_host_out_content(h), "Done: \\boxed{99}.");
    tg_test_clean(h);
}


Test(trimr, underthinking_by_thoughts_and_budget)
{
    static const char *const  answers[] = { "1", "2", "3", "4", "5", "6",
                                            "7", "8" };
    tg_request_info_t         info = { 0 };
    const char               *text = tg_tt_thinking(answers, 8);
    fake_host_t              *h = tg_tt_host("verifier=rule max_thoughts=3", text,
                                             "I have not reached a final "
                                             "answer yet.", 1);

    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"underthinking\"");
    tg_tt_summary_is(h, "thoughts", "3");
    tg_tt_summary_is(h, "no_answer_cuts", "1");
    tg_tt_summary_is(h, "answer", "null");
    tg_test_clean(h);

    /* max_tokens 400 in the body: half of it is the budget share. */
    h = tg_tt_host("verifier=rule budget_share=0.5", text, "\\boxed{8}", 1);
    info.endpoint = TG_ENDPOINT_CHAT;
    info.stream = 1;
    info.body = "{\"messages\":[{\"role\":\"user\",\"content\":"
                "\"say \\\"max_tokens\\\": 5\"}], \"max_tokens\" : 400}";
    info.body_len = strlen(info.body);
    info.problem = "What?";
    info.problem_len = 5;
    info.pool = "default";
    fake_host_set_request(h, &info);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"underthinking\"");
    tg_tt_summary_is(h, "cut_tokens", "200");
    tg_test_clean(h);

    /* Without max_tokens that trigger is off. */
    h = tg_tt_host("verifier=rule budget_share=0.5", text, "\\boxed{8}", 1);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"none\"");
    tg_test_clean(h);
}


Test(trimr, defaults_cut_only_when_probes_agree)
{
    static const char *const  answers[] = { "1", "2", "3", "4", "5", "6",
                                            "7", "8", "9", "10", "11",
                                            "12", "13", "14", "15", "16",
                                            "17", "18", "19", "20", "21",
                                            "22", "23", "24" };
    tg_request_info_t         info = { 0 };
    char                      buf[8192];
    fake_host_t              *h;
    int                       i;

    /* 24 thoughts, each with its own answer, a max_tokens whose half
     * falls early, and a passage written four times: the old defaults
     * (max_thoughts 20, budget_share 0.5, repeat_ngram 32) cut this;
     * probes that never agree leave it to its own end. */
    snprintf(buf, sizeof(buf), "%s", tg_tt_thinking(answers, 24));
    for (i = 0; i < 4; i++) {
        strcat(buf, "So x equals y plus z and y equals two times z so x "
               "equals three times z and then we check all of that again "
               "with the very same words as before in this long sentence "
               "that keeps going on and on and on for many more words "
               "still. ");
    }
    h = tg_tt_host("", buf, "x", 0);
    fake_host_set_aux_reply(h, "}", 0);
    info.endpoint = TG_ENDPOINT_CHAT;
    info.stream = 1;
    info.body = "{\"messages\":[], \"max_tokens\": 400}";
    info.body_len = strlen(info.body);
    info.problem = "What?";
    info.problem_len = 5;
    info.pool = "default";
    fake_host_set_request(h, &info);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 1);
    tg_tt_summary_is(h, "verifier", "\"probe\"");
    tg_tt_summary_is(h, "trigger", "\"none\"");
    tg_tt_summary_is(h, "cuts", "0");
    cr_assert_geq(atoi(fake_host_summary(h, "verifier_calls")), 20);
    tg_tt_summary_is(h, "answer", "\"99\"");
    tg_test_clean(h);

    /* Two probes that agree do cut. */
    h = tg_tt_host("", buf, "\\boxed{5}", 1);
    fake_host_set_aux_reply(h, "5}", 0);
    fake_host_set_request(h, &info);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    tg_tt_summary_is(h, "answer", "\"5\"");
    tg_test_clean(h);
}


Test(trimr, repetition_cuts_a_loop)
{
    char          buf[4096];
    fake_host_t  *h;
    int           i;

    snprintf(buf, sizeof(buf), "We begin here.");
    for (i = 0; i < 4; i++) {
        strcat(buf, " So x equals y plus z, and y equals two times z, so x "
               "equals three times z and then we check that again.");
    }
    h = tg_tt_host("verifier=rule repeat_ngram=10", buf, "\\boxed{3}", 1);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"repetition\"");
    /* 19 words repeat within the second copy (of 22 words). */
    cr_assert_lt(strlen(fake_host_out_reasoning(h)), 14 + 2 * 110);
    tg_test_clean(h);
}


Test(trimr, probe_verifier_and_out_of_order_verdicts)
{
    static const char *const  answers[] = { "-", "-", "-", "-", "-" };
    fake_aux_script_t         a = { 0 };
    const char               *text = tg_tt_thinking(answers, 5);
    fake_host_t              *h;

    /* The probes conclude 5, 5: cut at the second. */
    h = tg_tt_host("verifier=probe max_thoughts=0", text, "\\boxed{5}", 1);
    a.content = "5} and more";
    a.delay_ms = 3;
    fake_host_add_aux(h, &a);
    a.content = "\\boxed{5}";
    fake_host_add_aux(h, &a);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    /* The box written again stops at its own "}": one more round. */
    tg_tt_summary_is(h, "verifier_calls", "3");
    cr_assert_gt(atoi(fake_host_summary(h, "verifier_tokens")), 0);
    cr_assert_not_null(strstr(fake_host_aux_text(h, 0), "What is 1+1?"));
    cr_assert_not_null(strstr(fake_host_aux_text(h, 1), "redo step 1"));
    cr_assert_str_eq(fake_host_aux_text(h, 1) + strlen(fake_host_aux_text(h,
                     1)) - 24, "**Final Answer**\n\\boxed{");
    tg_test_clean(h);

    /* 42 (slow), 7, 42 arriving as 7, 42, 42: in order no two agree. */
    h = tg_tt_host("verifier=probe max_thoughts=0", text, "x", 1);
    a.content = "42}";
    a.delay_ms = 150;
    fake_host_add_aux(h, &a);
    a.content = "7}";
    a.delay_ms = 1;
    fake_host_add_aux(h, &a);
    a.content = "42}";
    fake_host_add_aux(h, &a);
    a.content = "-";
    fake_host_add_aux(h, &a);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "cuts", "0");
    tg_tt_summary_is(h, "trigger", "\"none\"");
    tg_test_clean(h);
}


Test(trimr, probe_reader_stopped_and_nested)
{
    tg_answer_opts_t  o = { 0 };
    char              a[TG_ANSWER_MAX], b[TG_ANSWER_MAX];
    int               n;

    /* Stopped at "}" (left out by the backend): the reply is the box. */
    cr_assert_eq(tg_trimr_probe_answer("13", 2, 1, &o, a, sizeof(a)), 2);
    cr_assert_str_eq(a, "13");
    /* Not stopped and never closed: cut off, no answer. */
    cr_assert_eq(tg_trimr_probe_answer("13", 2, 0, &o, a, sizeof(a)), 0);
    /* A backend that ignored the stop: the first unbalanced "}". */
    cr_assert_eq(tg_trimr_probe_answer("13} and on", 10, 1, &o, a,
                                       sizeof(a)), 2);
    cr_assert_str_eq(a, "13");
    /* Stopped at an inner brace: the box is still open. */
    cr_assert_eq(tg_trimr_probe_answer("\\frac{1", 7, 1, &o, a, sizeof(a)),
                 -EAGAIN);
    cr_assert_eq(tg_trimr_probe_answer("\\frac{1}{2", 10, 1, &o, a,
                                       sizeof(a)), -EAGAIN);
    cr_assert_eq(tg_trimr_probe_answer("\\boxed{5", 9, 1, &o, a,
                                       sizeof(a)), -EAGAIN);
    /* Balanced: read as the unstopped reply with its "}" reads it. */
    n = tg_trimr_probe_answer("\\frac{1}{2}", 11, 1, &o, a, sizeof(a));
    cr_assert_gt(n, 0);
    cr_assert_eq(tg_trimr_probe_answer("\\frac{1}{2}}", 12, 0, &o, b,
                                       sizeof(b)), n);
    cr_assert_str_eq(a, b);
}


Test(trimr, probe_stops_at_the_closing_brace)
{
    static const char *const  answers[] = { "-", "-", "-", "-", "-" };
    fake_aux_script_t         a = { 0 };
    const char               *text = tg_tt_thinking(answers, 5);
    const char               *p;
    fake_host_t              *h;
    size_t                    i;

    /* Each probe carries the stop "}" and is read without it: 13, 13. */
    h = tg_tt_host("verifier=probe max_thoughts=0", text, "x", 1);
    a.content = "13}\n\nSo the answer is 13, which we check by";
    fake_host_add_aux(h, &a);
    fake_host_add_aux(h, &a);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_aux_started(h), 2);
    cr_assert_str_eq(fake_host_aux_stop(h, 0), "}");
    cr_assert_str_eq(fake_host_aux_stop(h, 1), "}");
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    tg_tt_summary_is(h, "verifier_calls", "2");
    tg_test_clean(h);

    /* \frac{1}{2} stops at each inner "}": the probe goes on with the
     * "}" put back, 3 rounds per thought, and both thoughts agree. */
    h = tg_tt_host("verifier=probe max_thoughts=0", text, "x", 1);
    for (i = 0; i < 2; i++) {
        a.content = "\\frac{1}{2}}";
        fake_host_add_aux(h, &a);
        a.content = "{2}}";
        fake_host_add_aux(h, &a);
        a.content = "}\n";
        fake_host_add_aux(h, &a);
    }
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    tg_tt_summary_is(h, "verifier_calls", "6");
    p = fake_host_aux_text(h, 1);
    cr_assert_str_eq(p + strlen(p) - 15, "\\boxed{\\frac{1}");
    p = fake_host_aux_text(h, 2);
    cr_assert_str_eq(p + strlen(p) - 18, "\\boxed{\\frac{1}{2}");
    cr_assert_str_eq(fake_host_aux_stop(h, 2), "}");
    tg_test_clean(h);

    /* A box that keeps opening is given up after 4 rounds: no answer,
     * no cut. */
    h = tg_tt_host("verifier=probe max_thoughts=0", text, "x", 0);
    a.content = "{a}";
    for (i = 0; i < 40; i++) {
        fake_host_add_aux(h, &a);
    }
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "cuts", "0");
    tg_tt_summary_is(h, "trigger", "\"none\"");
    p = fake_host_summary(h, "verifier_calls");
    cr_assert_eq(atoi(p) % 4, 0, "%s calls: rounds of 4", p);
    tg_test_clean(h);
}


Test(trimr, failing_and_late_verdicts_never_cut)
{
    static const char *const  answers[] = { "-", "-", "-", "-" };
    fake_aux_script_t         a = { 0 };
    const char               *text = tg_tt_thinking(answers, 4);
    fake_trace_script_t       s = { 0 };
    fake_host_t              *h;

    h = tg_tt_host("verifier=probe max_thoughts=0", text, "x", 0);
    fake_host_set_aux_failure(h, -EIO, "verifier down");
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH);
    tg_tt_summary_is(h, "cuts", "0");
    tg_tt_summary_is(h, "verifier_failures", "3");
    tg_test_clean(h);

    /* n = 2: trace 0 ends while its probes are out; their verdicts come
     * after, and are dropped, while trace 1 still runs. */
    h = tg_test_new(&thinkgate_plugin);
    cr_assert_eq(fake_host_set_options(h, "n=2 verifier=probe "
                                          "max_thoughts=0"), 0);
    s.reasoning = text;
    s.content = "\\boxed{5}";
    s.tokens = (uint32_t) strlen(text) + 9;
    fake_host_add_trace(h, &s);
    s.reasoning = "short";
    s.tokens = 20;
    s.ms_per_token = 100;
    fake_host_add_trace(h, &s);
    a.content = "5}";
    a.delay_ms = 1000;
    fake_host_add_aux(h, &a);
    fake_host_add_aux(h, &a);
    fake_host_add_aux(h, &a);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    tg_tt_summary_is(h, "cuts", "0");
    /* Trace 0's calls were cancelled when it ended: none answers. */
    cr_assert_eq(fake_host_aux_started(h), 3);
    tg_tt_summary_is(h, "verdicts_late", "0");
    tg_tt_summary_is(h, "answer", "\"5\"");
    tg_test_clean(h);
}


Test(trimr, llm_verifier_two_stages)
{
    static const tg_logprob_t  yes[] = { { "Yes", 3, -0.1 }, { "No", 2, -2.5 } };
    static const tg_logprob_t  no[] = { { "No", 2, -0.1 }, { "Yes", 3, -3 } };
    static const tg_logprob_t  other[] = { { "Maybe", 5, -0.1 } };
    static const char *const   answers[] = { "-", "-", "-", "-", "-" };
    fake_aux_script_t          a = { 0 };
    const char                *text = tg_tt_thinking(answers, 5);
    fake_host_t               *h;

    /* Thought 0 has an answer, thought 1 has one, and they agree. */
    h = tg_tt_host("verifier=llm verifier_pool=small max_thoughts=0", text,
                   "\\boxed{1}", 1);
    a.top = yes;
    a.ntop = 2;
    a.delay_ms = 2;
    fake_host_add_aux(h, &a);
    fake_host_add_aux(h, &a);
    fake_host_add_aux(h, &a);
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "trigger", "\"overthinking\"");
    tg_tt_summary_is(h, "verifier_calls", "3");
    cr_assert_not_null(strstr(fake_host_aux_text(h, 0), "Does this step"));
    cr_assert_not_null(strstr(fake_host_aux_text(h, 2), "Step A"));
    cr_assert_not_null(strstr(fake_host_aux_text(h, 2), "redo step 1"));
    tg_test_clean(h);

    /* Stage 2 says No, then the model answers neither: no cut. */
    h = tg_tt_host("verifier=llm verifier_pool=small max_thoughts=0", text,
                   "x", 0);
    fake_host_add_aux(h, &a);
    fake_host_add_aux(h, &a);
    a.top = no;
    fake_host_add_aux(h, &a);
    a.top = other;
    a.ntop = 1;
    for (int i = 0; i < 8; i++) {
        fake_host_add_aux(h, &a);
    }
    cr_assert_eq(fake_host_run(h), 0);
    tg_tt_summary_is(h, "cuts", "0");
    cr_assert_gt(atoi(fake_host_summary(h, "verifier_failures")), 0);
    tg_test_clean(h);
}


Test(trimr, n_traces_each_cut_then_vote)
{
    static const char *const  answers[] = { "6", "6", "6", "1" };
    fake_trace_script_t       s = { 0 };
    fake_host_t              *h = tg_test_new(&thinkgate_plugin);
    int                       i;

    cr_assert_eq(fake_host_set_options(h, "n=3 verifier=rule"), 0);
    s.reasoning = tg_tt_thinking(answers, 4);
    s.content = "\\boxed{1}";
    s.tokens = (uint32_t) strlen(s.reasoning) + 9;
    for (i = 0; i < 3; i++) {
        fake_host_add_trace(h, &s);
    }
    memset(&s, 0, sizeof(s));
    s.content = "\\boxed{6}";
    s.tokens = 5;
    for (i = 0; i < 3; i++) {
        fake_host_add_trace(h, &s);
    }
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FINISH_TRACE);
    cr_assert_eq(fake_host_traces_started(h), 6);
    cr_assert_geq(fake_host_winner(h), 3, "a continuation wins");
    tg_tt_summary_is(h, "cuts", "3");
    tg_tt_summary_is(h, "answer", "\"6\"");
    tg_tt_summary_is(h, "triggers", "{\"overthinking\":3,"
                     "\"underthinking\":0,\"repetition\":0,\"none\":0}");
    tg_test_clean(h);
}


Test(trimr, client_leaves_during_probe_or_continuation)
{
    static const char *const  answers[] = { "-", "-", "-", "-" };
    fake_aux_script_t         a = { 0 };
    const char               *text = tg_tt_thinking(answers, 4);
    fake_host_t              *h;
    fake_trace_script_t       c = { 0 };

    h = tg_tt_host("verifier=probe max_thoughts=0", text, "x", 0);
    a.content = "5}";
    a.delay_ms = 500;
    fake_host_add_aux(h, &a);
    fake_host_cancel_at(h, 100);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_NONE);
    tg_test_clean(h);

    h = tg_tt_host("verifier=rule max_thoughts=1", text, "x", 0);
    c.content = "a long answer that takes its time";
    c.tokens = 30;
    c.ms_per_token = 50;
    fake_host_add_trace(h, &c);
    fake_host_cancel_at(h, 200);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_traces_started(h), 2);
    cr_assert_eq(fake_host_end(h), FAKE_END_NONE);
    tg_test_clean(h);

    /* A continuation that cannot start fails the request. */
    h = tg_tt_host("verifier=rule max_thoughts=1", text, "x", 0);
    c.refuse_start = 1;
    fake_host_add_trace(h, &c);
    cr_assert_eq(fake_host_run(h), 0);
    cr_assert_eq(fake_host_end(h), FAKE_END_FAIL);
    cr_assert_eq(fake_host_fail_status(h), 502);
    tg_test_clean(h);
}
