/*
 * thinkgate — DeepPrune (arXiv 2510.08483): sample n traces, judge early
 * prefixes, cancel the traces that are going to say what a running one
 * will say, and vote with the survivors.
 *
 * When a trace reaches prefix_tokens its reasoning so far (the thinking,
 * or the content for a model that does not think) is its prefix.  The
 * first trace there founds cluster 0 with no judge call.  Each later one
 * is judged against the clusters (common/cluster.h): the mean judge score
 * against a cluster's members; above tau it joins the best cluster and is
 * cancelled; otherwise it founds a new cluster and keeps running.  At
 * max_clusters clusters, a trace that matches none joins the most similar
 * one (the paper's cap).  A cluster's first member, its representative,
 * is never cancelled.  The traces that reach prefix_tokens in one loop
 * turn are judged as one round (one score call, one embeddings call, or
 * one llm call per pair, all at once) and placed in the order they got
 * there, each seeing the clusters the earlier ones made.
 *
 * A judge that fails or times out (judge_timeout_ms) never fails the
 * request and never prunes: the traces of that round are kept and vote
 * on their own, the request is "degraded" and judges no more, so a dead
 * judge gives plain self-consistency voting.
 *
 * Voting: vote=weighted gives each representative's answer as many
 * votes as its cluster has members (pruned ones included); every trace
 * outside a cluster (ended before prefix_tokens, or unjudged) votes once.
 * vote=representative gives each of them one vote.  Ties and the winner
 * follow self_consistency (common/samples.h); early_stop=exact (the
 * default) cancels the survivors once no weight still to come can change
 * the result, so the answer is the one waiting for them all would give,
 * for fewer tokens: a representative carries its whole cluster's weight,
 * so a large cluster's answer often settles the vote while the long,
 * lone survivors are still running.  A
 * representative that fails or ends without an answer loses its
 * cluster's votes: its pruned members are gone.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "deepprune.h"

static int tg_dp_load(const tg_host_api_t *api, char *err, size_t err_size);
static void tg_dp_unload(void);
static int tg_dp_start(tg_req_t *req);
static int tg_dp_options(tg_req_t *req, tg_dp_t *st);
static void tg_dp_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d);
static void tg_dp_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_dp_on_aux_result(tg_req_t *req, tg_aux_t *a,
    const tg_aux_result_t *r);
static void tg_dp_on_timer(tg_req_t *req, tg_timer_t *tm, void *data);
static void tg_dp_on_cancel(tg_req_t *req);
static void tg_dp_destroy(tg_req_t *req);
static int tg_dp_slot(tg_dp_t *st, tg_trace_t *t);
static void tg_dp_kick(tg_req_t *req, tg_dp_t *st);
static void tg_dp_round_start(tg_req_t *req, tg_dp_t *st);
static void tg_dp_round_fail(tg_req_t *req, tg_dp_t *st, tg_dp_round_t *r);
static double tg_dp_score(void *data, uint32_t a, uint32_t b);
static void tg_dp_place(tg_req_t *req, tg_dp_t *st, tg_dp_round_t *r,
    uint32_t i);
static uint32_t tg_dp_weight(const tg_dp_t *st, uint32_t i);
static void tg_dp_maybe_answer(tg_req_t *req, tg_dp_t *st);

static const tg_host_api_t  *tg_dp_api;

static const tg_option_t  tg_dp_options_table[] = {
    { "n", TG_OPT_INT, "8", 1, TG_SAMPLES_MAX, NULL,
      "traces sampled" },
    { "prefix_tokens", TG_OPT_INT, "512", 1, 65536, NULL,
      "tokens a trace has when it is judged" },
    { "tau", TG_OPT_DOUBLE, "0.5", 0, 1, NULL,
      "a trace joins (and is cancelled) above this mean judge score" },
    { "max_clusters", TG_OPT_INT, "8", 1, TG_CLUSTER_MAX, NULL,
      "K: at most this many clusters; past it, the most similar is "
      "joined" },
    { "judge", TG_OPT_ENUM, "lexical", 0, 0, "lexical|embed|llm|pool",
      "lexical/embed: the host's score; llm: Yes/No chat judge; pool: "
      "embeddings pool" },
    { "judge_pool", TG_OPT_STRING, NULL, 0, 0, NULL,
      "the pool judge=llm or judge=pool asks" },
    { "judge_timeout_ms", TG_OPT_INT, "10000", 1, 600000, NULL,
      "a judging round not answered by then keeps its traces" },
    { "vote", TG_OPT_ENUM, "weighted", 0, 0, "weighted|representative",
      "a cluster votes with its size, or once" },
    { "early_stop", TG_OPT_ENUM, "exact", 0, 0, "none|exact",
      "exact (default): cancel the survivors once they cannot change the "
      "vote; none: every survivor runs to its end" },
    { "bench", TG_OPT_STRING, NULL, 0, 0, NULL,
      "benchmark fixing the answer format (aime*, gpqa*); unset: any" },
    { "reasoning", TG_OPT_BOOL, "on", 0, 0, NULL,
      "content without </think> is thinking (off for models that do not "
      "think)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "deepprune",
    "1.0",
    "n traces, redundant ones pruned by a judge of early prefixes, "
    "survivors vote",
    tg_dp_options_table,
    sizeof(tg_dp_t),
    tg_dp_load,
    tg_dp_unload,
    tg_dp_start,
    tg_dp_on_delta,
    tg_dp_on_trace_end,
    tg_dp_on_aux_result,
    tg_dp_on_timer,
    tg_dp_on_cancel,
    tg_dp_destroy,
};


static int
tg_dp_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    int  rc = tg_samples_check_api(api, "deepprune", err, err_size);

    if (rc == 0) {
        tg_dp_api = api;
    }
    return rc;
}


static void
tg_dp_unload(void)
{
    tg_dp_api = NULL;
}


static int
tg_dp_start(tg_req_t *req)
{
    tg_dp_t  *st = tg_dp_api->state(req);

    if (tg_samples_init(&st->samples, tg_dp_api, req, "deepprune") != 0
        || tg_samples_answer_opts(&st->samples, req) != 0
        || tg_dp_options(req, st) != 0)
    {
        return -EINVAL;
    }
    return tg_samples_start(&st->samples, req);
}


/* The probe's answer: nothing to do, it only asked whether the host
 * has an embedder. */
static void
tg_dp_embed_probe_cb(tg_req_t *req, void *data, const tg_score_result_t *res)
{
    (void) req;
    (void) data;
    (void) res;
}


/*
 * judge=embed needs the host's embedding score and an embedder in the
 * configuration.  Only a call says whether there is one, so one empty
 * text is embedded at the start (a two-token forward pass, batched with
 * whatever else the loop turn brings): without thinkgate_embedder the
 * request is a 400 naming the directive, before any trace starts.
 */
static const char *
tg_dp_embed_check(tg_req_t *req)
{
    static char               msg[320];
    const tg_host_api_t      *api = tg_dp_api;
    const char               *probe = "";
    size_t                    len = 0;
    int                       rc;

    if (!TG_HOST_HAS(api, score_kind)) {
        return "deepprune: judge=embed needs a host with embedding scores";
    }
    rc = api->score_kind(req, TG_SCORE_KIND_EMBED, &probe, &len, 1,
                         tg_dp_embed_probe_cb, NULL);
    if (rc == 0) {
        return NULL;
    }
    snprintf(msg, sizeof(msg), "deepprune: judge=embed: %s",
             api->last_error(req) ? api->last_error(req) : "refused");
    return msg;
}


static int
tg_dp_options(tg_req_t *req, tg_dp_t *st)
{
    static const char *const  judges[] = { "lexical", "embed", "llm",
                                           "pool" };
    const tg_host_api_t      *api = tg_dp_api;
    const char               *s, *msg = NULL;
    int                       k;

    s = api->opt_str(req, "judge");
    for (k = 0; k < 4 && (s == NULL || strcmp(s, judges[k]) != 0); k++) {
        /* find */
    }
    st->judge = k < 4 ? k : TG_DP_LEXICAL;
    s = api->opt_str(req, "vote");
    st->representative = s != NULL && strcmp(s, "representative") == 0;
    s = api->opt_str(req, "early_stop");
    st->early_stop = s != NULL && strcmp(s, "exact") == 0;
    st->prefix_tokens = (uint32_t) api->opt_int(req, "prefix_tokens");
    st->tau = api->opt_double(req, "tau");
    st->timeout_ms = (uint64_t) api->opt_int(req, "judge_timeout_ms");
    st->judge_pool = api->opt_str(req, "judge_pool");
    if (st->judge_pool != NULL && *st->judge_pool == '\0') {
        st->judge_pool = NULL;
    }
    tg_cluster_init(&st->clusters,
                    (uint32_t) api->opt_int(req, "max_clusters"));

    if (st->judge == TG_DP_EMBED) {
        msg = tg_dp_embed_check(req);
    } else if ((st->judge == TG_DP_LLM || st->judge == TG_DP_POOL)
               && st->judge_pool == NULL)
    {
        msg = "deepprune: judge=llm and judge=pool need judge_pool";
    } else if ((st->judge == TG_DP_LLM || st->judge == TG_DP_POOL)
               && !TG_HOST_HAS(api, kv_limits))
    {
        /* Logprobs and embeddings came with that entry. */
        msg = "deepprune: the host cannot serve judge=llm or judge=pool";
    }
    if (msg != NULL) {
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    return 0;
}


static int
tg_dp_slot(tg_dp_t *st, tg_trace_t *t)
{
    uint32_t  i;

    for (i = 0; i < st->samples.n; i++) {
        if (st->samples.slots[i].trace == t) {
            return (int) i;
        }
    }
    return -1;
}


/* A trace at prefix_tokens gets its prefix and waits for the round that
 * starts once this loop turn's deltas are in. */
static void
tg_dp_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    const tg_host_api_t  *api = tg_dp_api;
    tg_dp_t              *st = api->state(req);
    tg_trace_info_t       ti;
    const char           *text;
    size_t                len, cut;
    char                 *copy;
    int                   i;

    (void) d;
    if (st->samples.answered || (i = tg_dp_slot(st, t)) < 0
        || st->tr[i].phase != TG_DP_NEW || !st->samples.slots[i].running
        || api->trace_info(t, &ti) != 0 || ti.tokens < st->prefix_tokens)
    {
        return;
    }
    if (st->degraded) {
        st->tr[i].phase = TG_DP_UNJUDGED;
        return;
    }
    text = ti.reasoning_len > 0 ? ti.reasoning : ti.content;
    len = ti.reasoning_len > 0 ? ti.reasoning_len : ti.content_len;
    /* The bytes of the first prefix_tokens tokens, as far as an even
     * spread over this delta's tokens tells, cut at a character. */
    cut = (size_t) ((double) len * st->prefix_tokens / ti.tokens);
    while (cut > 0 && cut < len && ((unsigned char) text[cut] & 0xc0) == 0x80)
    {
        cut--;
    }
    copy = api->alloc(req, cut + 1);
    if (copy == NULL) {
        /* Without its prefix it cannot be judged: keep it. */
        st->tr[i].phase = TG_DP_UNJUDGED;
        return;
    }
    memcpy(copy, text, cut);
    copy[cut] = '\0';
    st->tr[i].prefix = copy;
    st->tr[i].prefix_len = cut;
    st->tr[i].phase = TG_DP_QUEUED;
    st->queue[st->nqueue++] = (uint32_t) i;
    tg_dp_kick(req, st);
}


static void
tg_dp_kick(tg_req_t *req, tg_dp_t *st)
{
    if (st->round != NULL || st->kick != NULL) {
        return;     /* the round in flight starts the next when done */
    }
    st->kick = tg_dp_api->timer_start(req, 0, NULL);
    if (st->kick == NULL) {
        tg_dp_round_start(req, st);
    }
}


static void
tg_dp_on_timer(tg_req_t *req, tg_timer_t *tm, void *data)
{
    tg_dp_t        *st = tg_dp_api->state(req);
    tg_dp_round_t  *r = st->round;

    (void) data;
    if (tm == st->kick) {
        st->kick = NULL;
        tg_dp_round_start(req, st);
    } else if (tm == st->timeout) {
        st->timeout = NULL;
        if (r != NULL) {
            tg_dp_api->log(req, TG_LOG_WARN, "deepprune: judge round %u "
                           "timed out after %llu ms", r->id,
                           (unsigned long long) st->timeout_ms);
            tg_dp_round_fail(req, st, r);
        }
    }
}


static void
tg_dp_round_start(tg_req_t *req, tg_dp_t *st)
{
    const tg_host_api_t  *api = tg_dp_api;
    tg_dp_round_t        *r;
    uint32_t              k, m, q, i, nmem, max;

    if (st->samples.answered || st->round != NULL) {
        return;
    }
    if (st->degraded) {
        /* Those that arrived while the failed round ran: kept. */
        for (q = 0; q < st->nqueue; q++) {
            st->tr[st->queue[q]].phase = TG_DP_UNJUDGED;
        }
        st->nqueue = 0;
        return;
    }
    /* The first trace there founds cluster 0 unjudged. */
    while (st->clusters.nclusters == 0 && st->nqueue > 0) {
        i = st->queue[0];
        memmove(st->queue, st->queue + 1, --st->nqueue * sizeof(uint32_t));
        if (st->samples.slots[i].running) {
            tg_cluster_add(&st->clusters, i, 0);
            st->tr[i].phase = TG_DP_PLACED;
        } else {
            st->tr[i].phase = TG_DP_UNJUDGED;
        }
    }
    if (st->nqueue == 0) {
        return;
    }
    r = api->alloc(req, sizeof(*r));
    if (r == NULL) {
        st->judge_failures++;
        tg_dp_round_fail(req, st, NULL);
        return;
    }
    memset(r, 0, sizeof(*r));
    r->api = api;
    r->id = ++st->round_id;
    for (i = 0; i < TG_SAMPLES_MAX; i++) {
        r->row[i] = -1;
    }
    max = st->judge == TG_DP_LLM ? TG_DP_LLM_MEMBERS : TG_CLUSTER_MAX;
    for (k = 0; k < st->clusters.nclusters; k++) {
        nmem = st->clusters.groups[k].size;
        for (m = 0; m < nmem && m < max; m++) {
            i = st->clusters.groups[k].members[m];
            r->row[i] = (int32_t) r->nitems;
            r->items[r->nitems++] = i;
        }
    }
    r->first_pending = r->nitems;
    for (q = 0; q < st->nqueue; q++) {
        i = st->queue[q];
        st->tr[i].phase = TG_DP_JUDGING;
        r->row[i] = (int32_t) r->nitems;
        r->items[r->nitems++] = i;
    }
    st->nqueue = 0;
    r->sim = api->alloc(req, (size_t) r->nitems * r->nitems * sizeof(float));
    if (r->sim == NULL) {
        st->judge_failures++;
        tg_dp_round_fail(req, st, r);
        return;
    }
    for (i = 0; i < r->nitems * r->nitems; i++) {
        r->sim[i] = NAN;
    }
    r->started_ms = api->now_ms();
    st->round = r;
    if (tg_dp_judge_start(api, req, st, r) != 0) {
        tg_dp_round_fail(req, st, r);
        return;
    }
    st->timeout = api->timer_start(req, st->timeout_ms, NULL);
}


/* No verdict for round r (NULL: none could be built): its traces are
 * kept, and the request judges no more.  The failures are counted where
 * they happen. */
static void
tg_dp_round_fail(tg_req_t *req, tg_dp_t *st, tg_dp_round_t *r)
{
    uint32_t  i;

    st->degraded = 1;
    if (r != NULL) {
        tg_dp_judge_cancel(tg_dp_api, req, st, r, 1);
        /* Every pair is NaN now, or was answered: placing finds no
         * verdict for the traces that needed one. */
        tg_dp_round_done(req, r);
        return;
    }
    for (i = 0; i < st->nqueue; i++) {
        st->tr[st->queue[i]].phase = TG_DP_UNJUDGED;
    }
    st->nqueue = 0;
}


static double
tg_dp_score(void *data, uint32_t a, uint32_t b)
{
    tg_dp_round_t  *r = data;

    if (r->row[a] < 0 || r->row[b] < 0) {
        return NAN;
    }
    return r->sim[(size_t) r->row[a] * r->nitems + (size_t) r->row[b]];
}


void
tg_dp_round_done(tg_req_t *req, tg_dp_round_t *r)
{
    const tg_host_api_t  *api = tg_dp_api;
    tg_dp_t              *st = api->state(req);
    uint32_t              row;

    if (st->round != r) {
        return;     /* given up on already */
    }
    st->round = NULL;
    if (st->timeout != NULL) {
        api->timer_stop(req, st->timeout);
        st->timeout = NULL;
    }
    st->judge_ms += (int64_t) (api->now_ms() - r->started_ms);
    for (row = r->first_pending; row < r->nitems; row++) {
        tg_dp_place(req, st, r, r->items[row]);
    }
    if (st->samples.answered) {
        return;
    }
    if (st->nqueue > 0) {
        tg_dp_round_start(req, st);
    }
    tg_dp_maybe_answer(req, st);
}


/* Trace i of round r: joins a cluster (cancelled), founds one, or stays
 * unjudged when it ended meanwhile or a verdict it needs is missing. */
static void
tg_dp_place(tg_req_t *req, tg_dp_t *st, tg_dp_round_t *r, uint32_t i)
{
    const tg_host_api_t   *api = tg_dp_api;
    tg_cluster_verdict_t   verdict;
    tg_trace_info_t        ti;
    double                 mean[TG_CLUSTER_MAX];
    size_t                 max;
    int                    k;

    max = st->judge == TG_DP_LLM ? TG_DP_LLM_MEMBERS : 0;
    if (!st->samples.slots[i].running || st->samples.answered
        || tg_cluster_means(&st->clusters, i, max, tg_dp_score, r, mean) != 0
        || (k = tg_cluster_decide(&st->clusters, mean, st->tau, &verdict)) < 0
        || tg_cluster_add(&st->clusters, i, (uint32_t) k) != 0)
    {
        st->tr[i].phase = TG_DP_UNJUDGED;
        return;
    }
    if (verdict == TG_CLUSTER_FOUND) {
        st->tr[i].phase = TG_DP_PLACED;
        return;
    }
    st->tr[i].phase = TG_DP_PRUNED;
    st->tr[i].pruned_at = api->trace_info(st->samples.slots[i].trace, &ti)
                          == 0 ? ti.tokens : st->prefix_tokens;
    /* A cancelled trace gets no on_trace_end: it leaves the set here. */
    api->trace_cancel(req, st->samples.slots[i].trace);
    st->samples.slots[i].running = 0;
    st->samples.running--;
}


static void
tg_dp_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_dp_t      *st = tg_dp_api->state(req);
    tg_sample_t  *slot = tg_samples_end(&st->samples, t, e);

    if (slot == NULL) {
        return;
    }
    /* A queued or judging trace that ends is placed nowhere: it votes on
     * its own (tg_dp_place sees it is not running). */
    tg_dp_maybe_answer(req, st);
}


static void
tg_dp_on_aux_result(tg_req_t *req, tg_aux_t *a, const tg_aux_result_t *r)
{
    tg_dp_t  *st = tg_dp_api->state(req);

    if (!st->samples.answered) {
        tg_dp_judge_on_aux(tg_dp_api, req, st, a, r);
    }
}


/* Trace i's votes: a representative's cluster size under vote=weighted,
 * else one. */
static uint32_t
tg_dp_weight(const tg_dp_t *st, uint32_t i)
{
    int32_t  k = st->clusters.of[i];

    if (st->representative || k < 0
        || st->clusters.groups[k].members[0] != i)
    {
        return 1;
    }
    return st->clusters.groups[k].size;
}


/*
 * Answers once every survivor ended, or, with early_stop=exact, once the
 * votes still to come cannot change the leader.  Those are the running
 * traces' current weights: a trace that later joins a cluster hands its
 * weight to the representative, so the total still to come never grows.
 */
static void
tg_dp_maybe_answer(tg_req_t *req, tg_dp_t *st)
{
    tg_samples_t  *s = &st->samples;
    tg_vote_t      v;
    uint32_t       i, w, pending = 0;
    int            lead;

    if (s->answered) {
        return;
    }
    tg_vote_init(&v);
    for (i = 0; i < s->ended; i++) {
        const tg_sample_t  *slot = &s->slots[s->by_order[i]];

        if (slot->has_answer) {
            for (w = tg_dp_weight(st, (uint32_t) s->by_order[i]); w > 0; w--) {
                tg_vote_add(&v, slot->answer, i);
            }
        }
    }
    for (i = 0; i < s->n; i++) {
        if (s->slots[i].running) {
            pending += tg_dp_weight(st, i);
        }
    }
    lead = tg_vote_leader(&v);
    if (s->running > 0 && !(st->early_stop && tg_vote_settled(&v, pending))) {
        return;
    }
    if (st->kick != NULL) {
        tg_dp_api->timer_stop(req, st->kick);
        st->kick = NULL;
    }
    if (st->timeout != NULL) {
        tg_dp_api->timer_stop(req, st->timeout);
        st->timeout = NULL;
    }
    if (st->round != NULL) {
        tg_dp_judge_cancel(tg_dp_api, req, st, st->round, 0);
        st->round = NULL;
    }
    tg_dp_summary(tg_dp_api, req, st);
    tg_samples_answer(s, req, &v, lead, lead < 0 ? "first_finished" : NULL,
                      0);
}


static void
tg_dp_on_cancel(tg_req_t *req)
{
    /* The client left: the host cancels every trace and judge call. */
    tg_dp_t  *st = tg_dp_api->state(req);

    st->samples.answered = 1;
}


static void
tg_dp_destroy(tg_req_t *req)
{
    /* Everything lives in the request's state block and arena. */
    (void) req;
}
