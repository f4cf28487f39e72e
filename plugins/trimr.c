/*
 * thinkgate — TrimR (arXiv 2505.17155): cut a reasoning model's thinking
 * once it has made up its mind, and lead it to its final answer.
 *
 * The thinking is split into thoughts at reflection markers ("Wait",
 * "Hmm", "Alternatively", "Let me check", ... at a paragraph start:
 * common/thoughts.h) as it streams.  Each finished thought goes to the
 * verifier (trimr_verify.c), which says what it answered while the trace
 * goes on.  Three triggers cut a trace:
 *
 *   overthinking   m consecutive thoughts with an answer agree (thoughts
 *                  without one are skipped);
 *   underthinking  no such agreement by budget_share of the request's
 *                  max_tokens (skipped when the request gives none) or
 *                  by max_thoughts thoughts: a forced conclusion;
 *   repetition     a passage of 2 * repeat_ngram - 1 words written again
 *                  word for word (trimr_watch.c): the model loops.
 *
 * By default only overthinking cuts, with the probe verifier and m = 2.
 * The underthinking and repetition triggers cut whether or not the model
 * has settled, which costs accuracy when it gives no early signal, so
 * they are off (0) unless a request sets them.  bench/strategies on the
 * recorded traces, under the sim's plain rule, against the same traces
 * untrimmed: budget_share 0.5 with max_thoughts 20 alone lost 14 points,
 * repeat_ngram 32 alone 1.6, rule with m = 2 alone 11 (the rule reads
 * answers a thought names that the model does not give when led to
 * conclude); probe with m = 2 alone 0.6 to 1.0 over three runs (its
 * verdicts race the stream), at 0.91x the tokens, probes included.
 *
 * The cut is trace_continue() with "\n</think>" and the guide: the host
 * cancels the trace and continues its text (chat with
 * continue_final_message, or completions), so the backend's prefix cache
 * makes it cost no new prefill.  With n = 1 the trace is live and so is
 * its continuation, in the same choice: the client sees one stream, the
 * thinking up to the cut, then the answer (the appended text is the
 * prompt's, never relayed).  With n > 1 every trace is watched and cut
 * on its own, and the final answers vote as in self_consistency
 * (common/samples.h).  A trace whose thinking ends by itself is left
 * alone.  Verifier calls are aux requests and never hold the stream up.
 *
 * Summary: thoughts, verifier, verifier_calls, verifier_failures,
 * verifier_tokens (completion tokens of the verifier calls whose reply
 * came back; the host counts them in "tokens" and "aux_tokens" too),
 * verdicts (replies read), verdicts_late, cuts, trigger (n = 1) and
 * triggers, cut_tokens (tokens of the trace at the cut, summed over traces),
 * no_answer_cuts (continuations that stated no answer), answer.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trimr.h"

#define TG_TRIMR_CLOSE   "\n</think>"

static int tg_trimr_load(const tg_host_api_t *api, char *err,
    size_t err_size);
static void tg_trimr_unload(void);
static int tg_trimr_start(tg_req_t *req);
static int tg_trimr_options(tg_req_t *req, tg_trimr_t *st);
static uint32_t tg_trimr_budget(const tg_request_info_t *info);
static void tg_trimr_on_delta(tg_req_t *req, tg_trace_t *t,
    const tg_delta_t *d);
static void tg_trimr_on_thought(void *data, uint32_t thought, size_t start,
    size_t end);
static void tg_trimr_cut(tg_trimr_t *st, tg_trimr_trace_t *tr, int trigger);
static void tg_trimr_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_trimr_on_aux_result(tg_req_t *req, tg_aux_t *a,
    const tg_aux_result_t *r);
static void tg_trimr_on_cancel(tg_req_t *req);
static void tg_trimr_destroy(tg_req_t *req);
static int tg_trimr_slot(tg_trimr_t *st, tg_trace_t *t);
static void tg_trimr_summary(tg_trimr_t *st);
static void tg_trimr_answer(tg_trimr_t *st, const tg_trace_end_t *e);

static const tg_host_api_t  *tg_trimr_api;

static const char *const  tg_trimr_trigger_names[TG_TRIMR_NTRIGGERS] = {
    "none", "overthinking", "underthinking", "repetition"
};

static const tg_option_t  tg_trimr_options_table[] = {
    { "verifier", TG_OPT_ENUM, "probe", 0, 0, "rule|probe|llm",
      "rule: the answer a thought states; probe: the model asked to "
      "conclude; llm: Yes/No model on verifier_pool" },
    { "verifier_pool", TG_OPT_STRING, NULL, 0, 0, NULL,
      "pool of the llm verifier (required) or of probes (default: the "
      "request's)" },
    { "m", TG_OPT_INT, "2", 1, 64, NULL,
      "cut after this many consecutive thoughts with equal answers" },
    { "budget_share", TG_OPT_DOUBLE, "0", 0, 1, NULL,
      "force a conclusion past this share of max_tokens (0: off)" },
    { "max_thoughts", TG_OPT_INT, "0", 0, 100000, NULL,
      "force a conclusion after this many thoughts (0: off)" },
    { "repeat_ngram", TG_OPT_INT, "0", 0, TG_TRIMR_NGRAM_MAX, NULL,
      "cut when 2n-1 words repeat verbatim (0: off)" },
    { "guide", TG_OPT_STRING, "\\n\\n**Final Answer**\\n", 0, 0, NULL,
      "text after </think> at a cut (\\n is a newline)" },
    { "probe_tokens", TG_OPT_INT, "20", 1, 4096, NULL,
      "tokens a probe may write" },
    { "n", TG_OPT_INT, "1", 1, TG_SAMPLES_MAX, NULL,
      "traces; n > 1: each trimmed, answers voted" },
    { "bench", TG_OPT_STRING, NULL, 0, 0, NULL,
      "benchmark fixing the answer format (aime*, gpqa*); unset: any" },
    { "reasoning", TG_OPT_BOOL, "on", 0, 0, NULL,
      "content without </think> is thinking (off for models that do not "
      "think)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "trimr",
    "1.0",
    "thinking split into thoughts, cut once a verifier sees the answer "
    "settled, the model led to its final answer",
    tg_trimr_options_table,
    sizeof(tg_trimr_t),
    tg_trimr_load,
    tg_trimr_unload,
    tg_trimr_start,
    tg_trimr_on_delta,
    tg_trimr_on_trace_end,
    tg_trimr_on_aux_result,
    NULL,
    tg_trimr_on_cancel,
    tg_trimr_destroy,
};


static int
tg_trimr_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    int  rc = tg_samples_check_api(api, "trimr", err, err_size);

    if (rc == 0) {
        tg_trimr_api = api;
    }
    return rc;
}


static void
tg_trimr_unload(void)
{
    tg_trimr_api = NULL;
}


/* The request's max_tokens (or max_completion_tokens), read from its
 * JSON: a key at the top level is never inside a string, where its quote
 * would be escaped.  0 when there is none. */
static uint32_t
tg_trimr_budget(const tg_request_info_t *info)
{
    static const char *const  keys[] = { "\"max_tokens\"",
                                         "\"max_completion_tokens\"" };
    const char               *p, *end;
    size_t                    k;
    long long                 v;

    if (info == NULL || info->body == NULL) {
        return 0;
    }
    end = info->body + info->body_len;
    for (k = 0; k < 2; k++) {
        for (p = info->body;
             (p = memmem(p, (size_t) (end - p), keys[k], strlen(keys[k])))
             != NULL; p++)
        {
            const char  *q = p + strlen(keys[k]);

            if (p > info->body && p[-1] == '\\') {
                continue;
            }
            while (q < end && (*q == ' ' || *q == '\n' || *q == '\t')) {
                q++;
            }
            if (q >= end || *q != ':') {
                continue;
            }
            for (q++; q < end && (*q == ' ' || *q == '\n'); q++) {
                /* to the value */
            }
            if (q < end && *q >= '0' && *q <= '9') {
                v = strtoll(q, NULL, 10);
                return v > 0 && v < (1ll << 31) ? (uint32_t) v : 0;
            }
        }
    }
    return 0;
}


static int
tg_trimr_options(tg_req_t *req, tg_trimr_t *st)
{
    const tg_host_api_t      *api = tg_trimr_api;
    const tg_request_info_t  *info = api->request_info(req);
    const char               *s, *msg = NULL;
    size_t                    i, len;

    s = api->opt_str(req, "verifier");
    st->verifier = s != NULL && strcmp(s, "probe") == 0 ? TG_TRIMR_PROBE
                   : s != NULL && strcmp(s, "llm") == 0 ? TG_TRIMR_LLM
                   : TG_TRIMR_RULE;
    st->pool = api->opt_str(req, "verifier_pool");
    if (st->pool != NULL && *st->pool == '\0') {
        st->pool = NULL;
    }
    if (st->pool == NULL && st->verifier == TG_TRIMR_PROBE) {
        st->pool = info->pool;
    }
    st->m = (uint32_t) api->opt_int(req, "m");
    st->budget_share = api->opt_double(req, "budget_share");
    st->budget = tg_trimr_budget(info);
    st->max_thoughts = (uint32_t) api->opt_int(req, "max_thoughts");
    st->ngram = (uint32_t) api->opt_int(req, "repeat_ngram");
    st->probe_tokens = (uint32_t) api->opt_int(req, "probe_tokens");
    st->completions = info->endpoint == TG_ENDPOINT_COMPLETIONS;
    st->thought_opts = st->samples.opts;
    st->thought_opts.flags &= ~TG_ANSWER_F_REASONING;

    /* "\n</think>" then the guide, its "\n" escapes made newlines (an
     * option from a header cannot carry one). */
    s = api->opt_str(req, "guide");
    s = s != NULL ? s : "";
    len = strlen(TG_TRIMR_CLOSE) + strlen(s);
    st->guide = api->alloc(req, len + 1);
    if (st->guide == NULL) {
        api->fail(req, 500, "server_error", "trimr: out of memory");
        return -ENOMEM;
    }
    strcpy(st->guide, TG_TRIMR_CLOSE);
    len = strlen(TG_TRIMR_CLOSE);
    for (i = 0; s[i] != '\0'; i++) {
        if (s[i] == '\\' && (s[i + 1] == 'n' || s[i + 1] == '\\')) {
            st->guide[len++] = s[++i] == 'n' ? '\n' : '\\';
        } else {
            st->guide[len++] = s[i];
        }
    }
    st->guide[len] = '\0';
    st->guide_len = len;

    if (st->verifier == TG_TRIMR_LLM && st->pool == NULL) {
        msg = "trimr: verifier=llm needs verifier_pool";
    } else if (st->verifier == TG_TRIMR_PROBE && st->pool == NULL) {
        msg = "trimr: verifier=probe needs a pool";
    } else if (st->verifier == TG_TRIMR_LLM
               && !TG_HOST_HAS(api, kv_limits))
    {
        /* Logprobs in aux results came with that entry. */
        msg = "trimr: the host cannot serve verifier=llm";
    }
    if (msg != NULL) {
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    return 0;
}


static int
tg_trimr_start(tg_req_t *req)
{
    const tg_host_api_t  *api = tg_trimr_api;
    tg_trimr_t           *st = api->state(req);
    tg_trace_spec_t       spec = { 0 };
    const char           *why;
    uint32_t              i;

    st->api = api;
    st->req = req;
    if (tg_samples_init(&st->samples, api, req, "trimr") != 0
        || tg_samples_answer_opts(&st->samples, req) != 0
        || tg_trimr_options(req, st) != 0)
    {
        return -EINVAL;
    }
    st->tr = api->alloc(req, st->samples.n * sizeof(*st->tr));
    if (st->tr == NULL) {
        api->fail(req, 500, "server_error", "trimr: out of memory");
        return -ENOMEM;
    }
    memset(st->tr, 0, st->samples.n * sizeof(*st->tr));
    for (i = 0; i < st->samples.n; i++) {
        st->tr[i].st = st;
        st->tr[i].index = i;
        if (tg_trimr_watch_init(api, req, &st->tr[i].watch, st->ngram) != 0) {
            api->log(req, TG_LOG_WARN, "trimr: out of memory: trace %u "
                     "has no repetition trigger", i);
        }
    }
    if (st->samples.n > 1) {
        return tg_samples_start(&st->samples, req);
    }

    /* One trace, relayed live as it streams; its continuation writes on
     * in its choice. */
    spec.temperature = -1;
    spec.flags = TG_TRACE_F_LIVE;
    st->samples.slots[0].order = -1;
    st->samples.slots[0].trace = api->trace_start(req, &spec);
    if (st->samples.slots[0].trace == NULL) {
        st->samples.answered = 1;
        why = api->last_error(req);
        api->fail(req, 502, "backend_error",
                  why != NULL && *why != '\0' ? why : "no trace started");
        return -EIO;
    }
    st->samples.slots[0].running = 1;
    st->samples.running = 1;
    return 0;
}


static int
tg_trimr_slot(tg_trimr_t *st, tg_trace_t *t)
{
    uint32_t  i;

    for (i = 0; i < st->samples.n; i++) {
        if (st->samples.slots[i].trace == t && st->samples.slots[i].running) {
            return (int) i;
        }
    }
    return -1;
}


/* What the watcher's callback needs: the trace and its text. */
typedef struct {
    tg_trimr_t        *st;
    tg_trimr_trace_t  *tr;
    const char        *text;
    size_t             len;
} tg_trimr_feed_t;


static void
tg_trimr_on_thought(void *data, uint32_t thought, size_t start, size_t end)
{
    tg_trimr_feed_t   *f = data;
    tg_trimr_trace_t  *tr = f->tr;

    (void) thought;
    /* "</think>" ended it: the model concluded by itself.  A cut in this
     * delta already ended the watching.  The host's text and the stream
     * disagree only if it re-split content after the fact: skip. */
    if (tr->phase != TG_TRIMR_THINKING || tg_trimr_watch_ended(&tr->watch)
        || end > f->len)
    {
        return;
    }
    f->st->thoughts++;
    tg_trimr_verify(f->st, tr, tr->thoughts++, f->text, start, end);
}


static void
tg_trimr_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    tg_trimr_t        *st = tg_trimr_api->state(req);
    tg_trimr_trace_t  *tr;
    tg_trimr_feed_t    f;
    tg_trace_info_t    ti;
    const char        *p;
    size_t             len;
    int                i, repeated;

    if (st->samples.answered || (i = tg_trimr_slot(st, t)) < 0
        || st->tr[i].phase != TG_TRIMR_THINKING
        || tg_trimr_api->trace_info(t, &ti) != 0)
    {
        return;
    }
    tr = &st->tr[i];
    if (!st->completions && d->content_len > 0) {
        /* The answer began: the thinking ended by itself. */
        tr->phase = TG_TRIMR_ANSWERING;
        tg_trimr_verify_stop(st, tr);
        return;
    }
    p = st->completions ? d->content : d->reasoning;
    len = st->completions ? d->content_len : d->reasoning_len;
    f.st = st;
    f.tr = tr;
    f.text = st->completions ? ti.content : ti.reasoning;
    f.len = st->completions ? ti.content_len : ti.reasoning_len;
    repeated = tg_trimr_watch_feed(&tr->watch, p != NULL ? p : "", len,
                                   tg_trimr_on_thought, &f);
    if (tr->phase != TG_TRIMR_THINKING) {
        return;     /* cut by the verifier */
    }
    if (tg_trimr_watch_ended(&tr->watch)) {
        tr->phase = TG_TRIMR_ANSWERING;
        tg_trimr_verify_stop(st, tr);
    } else if (repeated) {
        tg_trimr_cut(st, tr, TG_TRIMR_REPEAT);
    } else if ((st->budget > 0 && st->budget_share > 0
                && ti.tokens >= st->budget_share * st->budget)
               || (st->max_thoughts > 0 && tr->thoughts >= st->max_thoughts))
    {
        tg_trimr_cut(st, tr, TG_TRIMR_UNDER);
    }
}


void
tg_trimr_converged(tg_trimr_t *st, tg_trimr_trace_t *tr)
{
    tg_trimr_cut(st, tr, TG_TRIMR_OVER);
}


/* Cancels the trace and continues it with the thinking closed and the
 * guide.  A continuation that cannot start leaves the trace cancelled:
 * it ends as failed. */
static void
tg_trimr_cut(tg_trimr_t *st, tg_trimr_trace_t *tr, int trigger)
{
    const tg_host_api_t  *api = st->api;
    tg_sample_t          *slot = &st->samples.slots[tr->index];
    tg_trace_end_t        e = { 0 };
    tg_trace_info_t       ti;
    tg_trace_t           *nt;

    if (tr->phase != TG_TRIMR_THINKING) {
        return;
    }
    tg_trimr_verify_stop(st, tr);
    tr->phase = TG_TRIMR_CUT;
    tr->trigger = (uint8_t) trigger;
    tr->epoch++;
    tr->cut_tokens = api->trace_info(slot->trace, &ti) == 0 ? ti.tokens : 0;
    st->cuts++;
    st->cut_tokens += tr->cut_tokens;
    st->triggers[trigger]++;
    nt = api->trace_continue(st->req, slot->trace, st->guide, st->guide_len,
                             NULL);
    if (nt != NULL) {
        slot->trace = nt;
        return;
    }
    api->log(st->req, TG_LOG_WARN, "trimr: trace %u not continued: %s",
             tr->index, api->last_error(st->req)
             ? api->last_error(st->req) : "unknown");
    e.state = TG_TRACE_FAILED;
    e.error = "trimr: the continuation could not start";
    tg_trimr_on_trace_end(st->req, slot->trace, &e);
}


static void
tg_trimr_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_trimr_t        *st = tg_trimr_api->state(req);
    tg_trimr_trace_t  *tr;
    tg_trace_info_t    ti;
    tg_answer_opts_t   o;
    const char        *c;
    size_t             think, off, len;
    char               ans[TG_ANSWER_MAX];
    int                i;

    if (st->samples.answered || (i = tg_trimr_slot(st, t)) < 0) {
        return;
    }
    tr = &st->tr[i];
    if (tr->phase == TG_TRIMR_CUT && e->state == TG_TRACE_DONE
        && tg_trimr_api->trace_info(t, &ti) == 0)
    {
        /* The continuation's answer is what follows the last </think>
         * (completions carry the whole text), or all its content. */
        c = ti.content;
        len = ti.content_len;
        if (tg_answer_final_split(c, len, &think, &off)) {
            c += off;
            len -= off;
        }
        o = st->samples.opts;
        o.flags &= ~TG_ANSWER_F_REASONING;
        if (o.format == TG_ANSWER_ANY) {
            /* Any text fits: "I have not reached a final answer yet"
             * would answer "yet".  Only a box is sure to be one. */
            o.flags |= TG_ANSWER_F_BOXED_ONLY;
        }
        if (tg_answer_extract_opts(c, len, &o, ans, sizeof(ans)) <= 0) {
            st->no_answer_cuts++;
        }
    }
    tg_trimr_verify_stop(st, tr);
    tr->phase = TG_TRIMR_ENDED;
    if (tg_samples_end(&st->samples, t, e) == NULL
        || st->samples.running > 0)
    {
        return;
    }
    tg_trimr_answer(st, e);
}


/* Every trace ended: n = 1 ends its live choice, n > 1 votes. */
static void
tg_trimr_answer(tg_trimr_t *st, const tg_trace_end_t *e)
{
    const tg_host_api_t  *api = st->api;
    tg_sample_t          *slot = &st->samples.slots[0];
    tg_finish_t           fin = { 0 };
    tg_vote_t             v;
    int                   lead;

    tg_trimr_summary(st);
    if (st->samples.n > 1) {
        tg_samples_vote(&st->samples, 0, &v);
        lead = tg_vote_leader(&v);
        tg_samples_answer(&st->samples, st->req, &v, lead,
                          lead < 0 ? "first_finished" : NULL, 0);
        return;
    }
    st->samples.answered = 1;
    if (e->state != TG_TRACE_DONE) {
        api->fail(st->req, 502, "backend_error",
                  e->error != NULL && *e->error != '\0' ? e->error
                  : "the backend failed");
        return;
    }
    if (slot->has_answer) {
        api->summary_str(st->req, "answer", slot->answer);
    } else {
        api->summary_json(st->req, "answer", "null");
    }
    /* The live traces' usage summed: the thinking up to the cut and the
     * continuation are one answer to the client. */
    fin.finish_reason = e->finish_reason != NULL ? e->finish_reason : "stop";
    api->finish(st->req, &fin);
}


static void
tg_trimr_summary(tg_trimr_t *st)
{
    const tg_host_api_t  *api = st->api;
    static const char    *const verifiers[] = { "rule", "probe", "llm" };
    char                  json[160];
    int64_t               none = 0;
    uint32_t              i;

    for (i = 0; i < st->samples.n; i++) {
        none += st->samples.slots[i].trace != NULL
                && st->tr[i].trigger == TG_TRIMR_NONE;
    }
    api->summary_int(st->req, "thoughts", st->thoughts);
    api->summary_str(st->req, "verifier", verifiers[st->verifier]);
    api->summary_int(st->req, "verifier_calls", st->calls);
    api->summary_int(st->req, "verifier_failures", st->call_failures);
    api->summary_int(st->req, "verifier_tokens", st->call_tokens);
    api->summary_int(st->req, "verdicts", st->verdicts);
    api->summary_int(st->req, "verdicts_late", st->late);
    api->summary_int(st->req, "cuts", st->cuts);
    api->summary_int(st->req, "cut_tokens", st->cut_tokens);
    api->summary_int(st->req, "no_answer_cuts", st->no_answer_cuts);
    if (st->samples.n == 1) {
        api->summary_str(st->req, "trigger",
                         tg_trimr_trigger_names[st->tr[0].trigger]);
    }
    snprintf(json, sizeof(json), "{\"overthinking\":%lld,\"underthinking\":"
             "%lld,\"repetition\":%lld,\"none\":%lld}",
             (long long) st->triggers[TG_TRIMR_OVER],
             (long long) st->triggers[TG_TRIMR_UNDER],
             (long long) st->triggers[TG_TRIMR_REPEAT], (long long) none);
    api->summary_json(st->req, "triggers", json);
}


static void
tg_trimr_on_aux_result(tg_req_t *req, tg_aux_t *a, const tg_aux_result_t *r)
{
    tg_trimr_t  *st = tg_trimr_api->state(req);

    if (!st->samples.answered) {
        tg_trimr_verify_on_aux(st, a, r);
    }
}


static void
tg_trimr_on_cancel(tg_req_t *req)
{
    /* The client left: the host cancels every trace and verifier call. */
    tg_trimr_t  *st = tg_trimr_api->state(req);

    st->samples.answered = 1;
}


static void
tg_trimr_destroy(tg_req_t *req)
{
    /* Everything lives in the request's state block and arena. */
    (void) req;
}
