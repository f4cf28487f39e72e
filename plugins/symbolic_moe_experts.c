/*
 * thinkgate — Symbolic-MoE: recruitment, the experts' traces, their
 * replacement, the vote and the summary (see symbolic_moe.c); the
 * aggregator pool is symbolic_moe_pool.c's.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/vote.h"
#include "symbolic_moe.h"

#define TG_MOE_SUMMARY_MAX  16384

/* A bounded JSON writer over the arena buffer of the summary. */
typedef struct {
    char    *p;
    char    *end;
} tg_moe_buf_t;

static int tg_moe_start_trace(tg_moe_t *st, tg_req_t *req, size_t e);
static int tg_moe_pick_backend(const tg_moe_t *st, int model);
static int tg_moe_next_model(const tg_moe_t *st, int current);
static void tg_moe_aggregate(tg_moe_t *st, tg_req_t *req);
static double tg_moe_strength(const tg_moe_t *st, int model);
static char *tg_moe_tail(tg_req_t *req, const char *s, size_t len);
static void tg_moe_put(tg_moe_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void tg_moe_put_str(tg_moe_buf_t *b, const char *s);


int
tg_moe_recruit(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    const char           *kws[TG_SKILLS_MAX_KEYWORDS];
    const char           *why;
    int                   draw[TG_MOE_MAX_EXPERTS];
    size_t                i, nk = 0;
    uint32_t              s;
    char                  msg[320];

    for (i = 0; i < st->nkw; i++) {
        if (st->mapped[i] >= 0) {
            kws[nk++] = st->profile->keywords[st->mapped[i]];
        }
    }
    st->scored = tg_skills_weights(st->profile, st->models, st->nmodels, kws,
                                   nk, st->temperature, st->weights);
    tg_skills_draw(st->weights, st->nmodels, st->k, &st->rng, draw);
    st->nexperts = st->k;
    for (i = 0; i < st->nexperts; i++) {
        st->experts[i].model = draw[i];
        st->experts[i].replaced = -1;
    }
    for (i = 0; i < st->nexperts; i++) {
        for (s = 0; s < st->samples; s++) {
            if (tg_moe_start_trace(st, req, i) != 0) {
                st->unreplaced++;
            }
        }
    }
    if (st->running == 0) {
        st->answered = 1;
        why = api->last_error(req);
        snprintf(msg, sizeof(msg), "symbolic_moe: no expert trace started"
                 "%s%.256s", why != NULL && *why ? ": " : "",
                 why != NULL ? why : "");
        api->fail(req, 502, "backend_error", msg);
        return -EIO;
    }
    return 0;
}


/* The live backend of model with the fewest traces in flight; -1: none. */
static int
tg_moe_pick_backend(const tg_moe_t *st, int model)
{
    size_t  i;
    int     best = -1;

    for (i = 0; i < st->nbackends; i++) {
        if (st->backends[i].model == model && !st->backends[i].dead
            && (best < 0
                || st->backends[i].in_flight < st->backends[best].in_flight))
        {
            best = (int) i;
        }
    }
    return best;
}


/* The next expert for a model whose backends are all dead: the live model
 * of highest weight (first in pool order on ties); -1: none left. */
static int
tg_moe_next_model(const tg_moe_t *st, int current)
{
    size_t  m;
    int     best = -1;

    for (m = 0; m < st->nmodels; m++) {
        if ((int) m == current || tg_moe_pick_backend(st, (int) m) < 0) {
            continue;
        }
        if (best < 0 || st->weights[m] > st->weights[best]) {
            best = (int) m;
        }
    }
    return best;
}


/* One trace of expert e, replacing its backend or its model as needed. */
static int
tg_moe_start_trace(tg_moe_t *st, tg_req_t *req, size_t e)
{
    const tg_host_api_t  *api = tg_moe_api;
    tg_moe_expert_t      *x = &st->experts[e];
    tg_moe_trace_t       *slot;
    tg_trace_spec_t       spec;
    int                   b, m;

    for ( ;; ) {
        b = tg_moe_pick_backend(st, x->model);
        if (b < 0) {
            m = tg_moe_next_model(st, x->model);
            if (m < 0) {
                return -EIO;
            }
            api->log(req, TG_LOG_WARN, "symbolic_moe: no live backend "
                     "serves %s; %s takes over", st->models[x->model],
                     st->models[m]);
            if (x->replaced < 0) {
                x->replaced = x->model;
            }
            x->model = m;
            continue;
        }
        if (st->ntraces == TG_MOE_MAX_TRACES) {
            return -ENOSPC;
        }
        memset(&spec, 0, sizeof(spec));
        spec.backend = st->backends[b].name;
        spec.temperature = -1;
        if (st->has_seed) {
            /* Seeds count per model, so that two experts drawing the same
             * model sample differently (and a replay gives distinct
             * recorded samples). */
            spec.seed_mode = 1;
            spec.seed = st->client_seed + st->seq[x->model];
        }
        st->seq[x->model]++;
        slot = &st->traces[st->ntraces];
        slot->trace = api->trace_start(req, &spec);
        if (slot->trace == NULL) {
            api->log(req, TG_LOG_WARN, "symbolic_moe: backend %s refused a "
                     "trace: %s", st->backends[b].name, api->last_error(req));
            st->backends[b].dead = 1;
            x->failed++;
            continue;
        }
        slot->expert = (int) e;
        slot->backend = b;
        slot->running = 1;
        st->ntraces++;
        st->running++;
        st->backends[b].in_flight++;
        x->traces++;
        return 0;
    }
}


void
tg_moe_trace_ended(tg_moe_t *st, tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e)
{
    const tg_host_api_t  *api = tg_moe_api;
    tg_moe_trace_t       *slot = NULL;
    tg_trace_info_t       ti;
    size_t                i;

    if (st->answered) {
        return;
    }
    if (t == st->agg && t != NULL) {
        tg_moe_aggregate_ended(st, req, e);
        return;
    }
    for (i = 0; i < st->ntraces; i++) {
        if (st->traces[i].trace == t && st->traces[i].running) {
            slot = &st->traces[i];
            break;
        }
    }
    if (slot == NULL) {
        return;
    }
    slot->running = 0;
    st->running--;
    st->backends[slot->backend].in_flight--;
    if (e->state == TG_TRACE_DONE) {
        slot->done = 1;
        if (api->trace_info(t, &ti) == 0) {
            if (tg_answer_extract_split(ti.reasoning, ti.reasoning_len,
                                        ti.content, ti.content_len,
                                        &st->opts, slot->answer,
                                        TG_ANSWER_MAX) > 0)
            {
                slot->has_answer = 1;
            }
            /* What the aggregator reads: the answer text, or the end of
             * the thinking when there is none. */
            slot->rationale = ti.content_len > 0
                ? tg_moe_tail(req, ti.content, ti.content_len)
                : tg_moe_tail(req, ti.reasoning, ti.reasoning_len);
        }
    } else if (e->state == TG_TRACE_FAILED) {
        /* A dead expert backend: the expert goes on elsewhere. */
        api->log(req, TG_LOG_WARN, "symbolic_moe: trace on %s failed: %s",
                 st->backends[slot->backend].name,
                 e->error != NULL ? e->error : "unknown");
        st->backends[slot->backend].dead = 1;
        st->experts[slot->expert].failed++;
        if (tg_moe_start_trace(st, req, (size_t) slot->expert) != 0) {
            st->unreplaced++;
        }
    }
    if (st->running == 0) {
        tg_moe_aggregate(st, req);
    }
}


/* The last TG_MOE_RATIONALE_MAX - 1 bytes of s, starting on a UTF-8
 * sequence's first byte, in the arena; NULL when empty or out of
 * memory. */
static char *
tg_moe_tail(tg_req_t *req, const char *s, size_t len)
{
    size_t  from = 0;
    char   *out;

    if (s == NULL || len == 0) {
        return NULL;
    }
    if (len >= TG_MOE_RATIONALE_MAX) {
        from = len - (TG_MOE_RATIONALE_MAX - 1);
        while (from < len && ((unsigned char) s[from] & 0xC0) == 0x80) {
            from++;
        }
    }
    out = tg_moe_api->alloc(req, len - from + 1);
    if (out != NULL) {
        memcpy(out, s + from, len - from);
        out[len - from] = '\0';
    }
    return out;
}


static double
tg_moe_strength(const tg_moe_t *st, int model)
{
    const tg_skill_model_t  *m = tg_skills_model(st->profile,
                                                 st->models[model]);

    return m != NULL ? m->strength : 0;
}


/*
 * The vote.  A voter's order is its model's strength rank, then its
 * start index: the tally breaks ties by the lowest first voter, so a tie
 * goes to the answer of the strongest expert, and that voter answers.
 * With an aggregator pool, its trace answers instead (the vote stands
 * by in case it fails).
 */
static void
tg_moe_aggregate(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    tg_vote_t            *v = &st->vote;
    uint32_t              order[TG_MOE_MAX_TRACES], rank;
    size_t                i, m;
    int                   mi;
    char                  msg[96];

    tg_vote_init(v);
    for (i = 0; i < st->ntraces; i++) {
        mi = st->backends[st->traces[i].backend].model;
        for (rank = 0, m = 0; m < st->nmodels; m++) {
            double  a = tg_moe_strength(st, (int) m);
            double  b = tg_moe_strength(st, mi);

            rank += a > b || (a == b && (int) m < mi);
        }
        order[i] = rank * TG_MOE_MAX_TRACES + (uint32_t) i;
        if (st->traces[i].has_answer) {
            tg_vote_add(v, st->traces[i].answer, order[i]);
        }
    }
    st->vote_lead = tg_vote_leader(v);
    st->vote_winner = NULL;
    for (i = 0; i < st->ntraces && st->vote_winner == NULL; i++) {
        if (st->vote_lead >= 0
            ? st->traces[i].has_answer
              && order[i] == v->groups[st->vote_lead].first
            : st->traces[i].done)
        {
            st->vote_winner = st->traces[i].trace;
        }
    }
    if (st->vote_winner == NULL) {
        st->answered = 1;
        snprintf(msg, sizeof(msg), "symbolic_moe: all %zu expert traces "
                 "failed", st->ntraces);
        api->fail(req, 502, "backend_error", msg);
        return;
    }
    if (st->aggregator != NULL && tg_moe_aggregate_start(st, req) == 0) {
        return;
    }
    tg_moe_answer_vote(st, req);
}


void
tg_moe_answer_vote(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;

    st->answered = 1;
    tg_moe_summary(st, req);
    if (st->vote_lead >= 0) {
        api->summary_str(req, "answer",
                         st->vote.groups[st->vote_lead].answer);
    } else {
        api->summary_json(req, "answer", "null");
        api->summary_str(req, "fallback", "first_done");
    }
    if (api->finish_trace(req, st->vote_winner) != 0) {
        api->fail(req, 502, "backend_error", "symbolic_moe: cannot return "
                  "the winning trace");
    }
}


static void
tg_moe_put(tg_moe_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(b->p, (size_t) (b->end - b->p), fmt, ap);
    va_end(ap);
    b->p = n < 0 || n >= b->end - b->p ? b->end - 1 : b->p + n;
}


static void
tg_moe_put_str(tg_moe_buf_t *b, const char *s)
{
    tg_moe_put(b, "\"");
    for ( ; s != NULL && *s != '\0'; s++) {
        if (*s == '"' || *s == '\\') {
            tg_moe_put(b, "\\%c", *s);
        } else if ((unsigned char) *s < 0x20) {
            tg_moe_put(b, "\\u%04x", (unsigned) (unsigned char) *s);
        } else {
            tg_moe_put(b, "%c", *s);
        }
    }
    tg_moe_put(b, "\"");
}


static void
tg_moe_summary_keywords(tg_moe_t *st, tg_req_t *req, char *buf)
{
    const tg_host_api_t  *api = tg_moe_api;
    tg_moe_buf_t          b;
    size_t                i, j;

    b = (tg_moe_buf_t) { buf, buf + TG_MOE_SUMMARY_MAX };
    tg_moe_put(&b, "[");
    for (i = 0; i < st->nkw; i++) {
        tg_moe_put(&b, i ? "," : "");
        tg_moe_put_str(&b, st->kw[i]);
    }
    tg_moe_put(&b, "]");
    api->summary_json(req, "keywords", buf);

    b.p = buf;
    tg_moe_put(&b, "{");
    for (i = 0, j = 0; i < st->nkw; i++) {
        if (st->mapped[i] >= 0 && st->score_kind != NULL) {
            tg_moe_put(&b, j++ ? "," : "");
            tg_moe_put_str(&b, st->kw[i]);
            tg_moe_put(&b, ":");
            tg_moe_put_str(&b, st->profile->keywords[st->mapped[i]]);
        }
    }
    tg_moe_put(&b, "}");
    api->summary_json(req, "mapped", buf);
}


static void
tg_moe_summary_weights(tg_moe_t *st, tg_req_t *req, char *buf)
{
    tg_moe_buf_t  b;
    size_t        i;

    b = (tg_moe_buf_t) { buf, buf + TG_MOE_SUMMARY_MAX };
    tg_moe_put(&b, "{");
    for (i = 0; i < st->nmodels; i++) {
        tg_moe_put(&b, i ? "," : "");
        tg_moe_put_str(&b, st->models[i]);
        tg_moe_put(&b, ":%.4f", st->weights[i]);
    }
    tg_moe_put(&b, "}");
    tg_moe_api->summary_json(req, "weights", buf);
}


static void
tg_moe_summary_expert(tg_moe_t *st, tg_moe_buf_t *b, size_t i)
{
    const tg_moe_expert_t  *x = &st->experts[i];
    const char             *backend = NULL;
    tg_vote_t               own;
    size_t                  j;
    int                     lead;

    tg_vote_init(&own);
    for (j = 0; j < st->ntraces; j++) {
        if (st->traces[j].expert == (int) i) {
            backend = st->backends[st->traces[j].backend].name;
            if (st->traces[j].has_answer) {
                tg_vote_add(&own, st->traces[j].answer, (uint32_t) j);
            }
        }
    }
    lead = tg_vote_leader(&own);
    tg_moe_put(b, "%s{\"model\":", i ? "," : "");
    tg_moe_put_str(b, st->models[x->model]);
    tg_moe_put(b, ",\"weight\":%.4f,\"backend\":", st->weights[x->model]);
    if (backend != NULL) {
        tg_moe_put_str(b, backend);
    } else {
        tg_moe_put(b, "null");
    }
    tg_moe_put(b, ",\"traces\":%u,\"failed\":%u,\"answer\":", x->traces,
               x->failed);
    if (lead >= 0) {
        tg_moe_put_str(b, own.groups[lead].answer);
    } else {
        tg_moe_put(b, "null");
    }
    if (x->replaced >= 0) {
        tg_moe_put(b, ",\"replaced\":");
        tg_moe_put_str(b, st->models[x->replaced]);
    }
    tg_moe_put(b, "}");
}


static void
tg_moe_summary_experts(tg_moe_t *st, tg_req_t *req, char *buf)
{
    tg_moe_buf_t  b;
    size_t        i;

    b = (tg_moe_buf_t) { buf, buf + TG_MOE_SUMMARY_MAX };
    tg_moe_put(&b, "[");
    for (i = 0; i < st->nexperts; i++) {
        tg_moe_summary_expert(st, &b, i);
    }
    tg_moe_put(&b, "]");
    if (b.p < b.end - 1) {
        tg_moe_api->summary_json(req, "experts", buf);
    }
}


static void
tg_moe_summary_pools(tg_moe_t *st, tg_req_t *req, char *buf)
{
    const tg_host_api_t  *api = tg_moe_api;

    if (st->annotator != NULL && st->annotator_fallback == NULL) {
        snprintf(buf, TG_MOE_SUMMARY_MAX, "pool %s", st->annotator);
        api->summary_str(req, "annotator", buf);
    } else {
        api->summary_str(req, "annotator", "lexicon");
    }
    if (st->annotator_fallback != NULL) {
        api->summary_str(req, "annotator_fallback", st->annotator_fallback);
    }
    if (st->kw_dropped > 0) {
        api->summary_int(req, "keywords_dropped", (int64_t) st->kw_dropped);
    }
    if (st->aggregator != NULL && st->aggregator_fallback == NULL) {
        snprintf(buf, TG_MOE_SUMMARY_MAX, "pool %s", st->aggregator);
        api->summary_str(req, "aggregator", buf);
    } else {
        api->summary_str(req, "aggregator", "vote");
    }
    if (st->aggregator_fallback != NULL) {
        api->summary_str(req, "aggregator_fallback",
                         st->aggregator_fallback);
    }
}


void
tg_moe_summary(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    char                 *buf = api->alloc(req, TG_MOE_SUMMARY_MAX);

    if (buf == NULL || tg_vote_json(&st->vote, buf, TG_MOE_SUMMARY_MAX) < 0) {
        return;
    }
    api->summary_json(req, "votes", buf);
    tg_moe_summary_keywords(st, req, buf);
    api->summary_str(req, "score_kind", st->score_kind ? st->score_kind
                                                       : "none");
    api->summary_str(req, "recruit", st->scored ? "skills" : "uniform");
    tg_moe_summary_weights(st, req, buf);
    tg_moe_summary_experts(st, req, buf);
    api->summary_int(req, "unreplaced", st->unreplaced);
    tg_moe_summary_pools(st, req, buf);
    if (st->vote_lead >= 0) {
        api->summary_str(req, "vote_answer",
                         st->vote.groups[st->vote_lead].answer);
    } else {
        api->summary_json(req, "vote_answer", "null");
    }
}
