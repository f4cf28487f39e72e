/*
 * thinkgate — Symbolic-MoE (arXiv 2503.05641): read the skills a query
 * needs, recruit expert models whose profiles are strong in them, run
 * their traces on the backends serving those models and vote.
 *
 * Profiles: tools/thinkgate-profile writes them (plugins/common/skills.h
 * has the format).  A plugin must not read files in callbacks, and load()
 * gets no arguments, so load() reads every file named in the engine's
 * environment variable THINKGATE_MOE_PROFILES (':'-separated paths); a
 * missing or bad file refuses the load with the file named, and the
 * engine keeps the old version serving.  The option profiles=PATH picks
 * one of them (default: the first); a path not loaded is a 400.
 *
 * Per request: the problem is annotated with the built-in lexicon, or,
 * with annotator=POOL, by an LLM of that pool (an aux request asking for
 * 2-5 short skill keywords; symbolic_moe_pool.c), falling back to the
 * lexicon when that fails or its reply holds no usable keyword; its
 * keywords are mapped onto the profile's by score_kind(EMBED) cosine (the
 * engine's MiniLM), or LEXICAL when the engine has no embedder (or it is
 * busy or failed); a keyword maps when the nearest reaches min_sim.  The
 * candidates are the models that the request's pool's backends serve
 * (pool_backends); weights and the seeded draw of k experts with
 * replacement are skills.h's, uniform when no keyword maps.  Each expert
 * runs `samples` traces on a backend serving its model (the least busy),
 * with seed client seed + how many traces that model already had, so
 * that recorded samples replay distinct.  A trace that fails or is
 * refused marks its backend dead and is replaced: on another backend of
 * the same model, else by the next expert (the live model of highest
 * weight); with none left it is reported in the summary.  The vote is
 * self-consistency's, but ties go to the answer whose strongest expert
 * is strongest (profile strength), and the request is answered with that
 * expert's trace.  With aggregator=POOL, a live trace of that pool
 * reads the question and every expert's answer and writes the final one,
 * streamed to the client; when it fails the vote answers (summary:
 * aggregator_fallback).  The summary adds keywords, mapped, score_kind,
 * weights, experts (model, backend, weight, traces, answer, replaced),
 * votes and answer; annotator and aggregator say which ran.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinkgate/plugin.h"
#include "common/answer.h"
#include "common/skills.h"
#include "common/vote.h"
#include "symbolic_moe.h"

static int tg_moe_load(const tg_host_api_t *api, char *err, size_t err_size);
static void tg_moe_unload(void);
static int tg_moe_start(tg_req_t *req);
static void tg_moe_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_moe_on_aux_result(tg_req_t *req, tg_aux_t *a,
    const tg_aux_result_t *r);
static void tg_moe_on_timer(tg_req_t *req, tg_timer_t *tm, void *data);
static int tg_moe_pools(tg_moe_t *st, tg_req_t *req);
static void tg_moe_on_cancel(tg_req_t *req);
static void tg_moe_destroy(tg_req_t *req);
static int tg_moe_score(tg_moe_t *st, tg_req_t *req, tg_score_kind_t kind);
static void tg_moe_scored(tg_req_t *req, void *data,
    const tg_score_result_t *res);
static void tg_moe_scored_lexical(tg_req_t *req, void *data,
    const float *sim, size_t n);

const tg_host_api_t        *tg_moe_api;
static tg_skills_profile_t  tg_moe_profiles[TG_MOE_MAX_PROFILES];
static size_t               tg_moe_nprofiles;

static const tg_option_t  tg_moe_options[] = {
    { "profiles", TG_OPT_STRING, NULL, 0, 0, NULL,
      "profile file, one of THINKGATE_MOE_PROFILES (default: the first)" },
    { "k", TG_OPT_INT, "3", 1, TG_MOE_MAX_EXPERTS, NULL,
      "experts drawn, with replacement" },
    { "samples", TG_OPT_INT, "1", 1, 16, NULL,
      "traces per recruited expert" },
    { "temperature", TG_OPT_DOUBLE, "0.5", 0.01, 100, NULL,
      "softmax temperature of the recruitment weights" },
    { "seed", TG_OPT_INT, "-1", -1, 9.0e15, NULL,
      "seed of the draw; -1: the client's seed, else the request id" },
    { "min_sim", TG_OPT_DOUBLE, "0.5", 0, 1, NULL,
      "least cosine for a query keyword to map onto a profile keyword" },
    { "annotator", TG_OPT_STRING, "lexicon", 0, 0, NULL,
      "lexicon: the built-in one; else a pool whose LLM writes the "
      "query's skill keywords (the lexicon when it fails)" },
    { "annotator_tokens", TG_OPT_INT, "256", 16, 32768, NULL,
      "max_tokens of the annotator's reply" },
    { "annotator_timeout_ms", TG_OPT_INT, "10000", 1, 600000, NULL,
      "the lexicon annotates when the pool has not replied by then" },
    { "aggregator", TG_OPT_STRING, "vote", 0, 0, NULL,
      "vote: majority over extracted answers, ties to the strongest; "
      "else a pool whose LLM writes the final answer from the experts' "
      "(the vote when it fails)" },
    { "aggregator_tokens", TG_OPT_INT, "0", 0, 1000000, NULL,
      "max_tokens of the aggregator's answer; 0: the client's" },
    { "bench", TG_OPT_STRING, NULL, 0, 0, NULL,
      "benchmark fixing the answer format (aime*, gpqa*); unset: any" },
    { "reasoning", TG_OPT_BOOL, "on", 0, 0, NULL,
      "content without </think> is thinking (off for plain models)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "symbolic_moe",
    "1.0",
    "recruit expert models by skill profile, vote over their answers",
    tg_moe_options,
    sizeof(tg_moe_t),
    tg_moe_load,
    tg_moe_unload,
    tg_moe_start,
    NULL,
    tg_moe_on_trace_end,
    tg_moe_on_aux_result,
    tg_moe_on_timer,
    tg_moe_on_cancel,
    tg_moe_destroy,
};


static int
tg_moe_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    const char  *env = getenv(TG_MOE_ENV);
    char         path[1024];
    size_t       len;
    int          rc;

    if (!TG_HOST_HAS(api, log)) {
        snprintf(err, err_size, "symbolic_moe: host API table too old");
        return -ENOTSUP;
    }
    tg_moe_unload();
    while (env != NULL && *env != '\0') {
        len = strcspn(env, ":");
        if (len > 0 && tg_moe_nprofiles == TG_MOE_MAX_PROFILES) {
            snprintf(err, err_size, "symbolic_moe: %s names more than %d "
                     "profile files", TG_MOE_ENV, TG_MOE_MAX_PROFILES);
            tg_moe_unload();
            return -E2BIG;
        }
        if (len > 0) {
            snprintf(path, sizeof(path), "%.*s", (int) len, env);
            /* Blocking, once per load: never in a request's callbacks. */
            rc = tg_skills_profile_load(path,
                                        &tg_moe_profiles[tg_moe_nprofiles],
                                        err, err_size);
            if (rc != 0) {
                tg_moe_unload();
                return rc;
            }
            tg_moe_nprofiles++;
        }
        env += len + (env[len] == ':');
    }
    tg_moe_api = api;
    return 0;
}


static void
tg_moe_unload(void)
{
    size_t  i;

    for (i = 0; i < tg_moe_nprofiles; i++) {
        tg_skills_profile_free(&tg_moe_profiles[i]);
    }
    tg_moe_nprofiles = 0;
}


/* The profile the request names; fails it when there is none. */
static const tg_skills_profile_t *
tg_moe_profile(tg_req_t *req)
{
    const char  *name = tg_moe_api->opt_str(req, "profiles");
    char         msg[400];
    size_t       i;

    if (tg_moe_nprofiles == 0) {
        snprintf(msg, sizeof(msg), "symbolic_moe: no skill profile loaded "
                 "(set %s in the engine's environment)", TG_MOE_ENV);
        tg_moe_api->fail(req, 500, "server_error", msg);
        return NULL;
    }
    if (name == NULL || *name == '\0') {
        return &tg_moe_profiles[0];
    }
    for (i = 0; i < tg_moe_nprofiles; i++) {
        if (strcmp(tg_moe_profiles[i].path, name) == 0) {
            return &tg_moe_profiles[i];
        }
    }
    snprintf(msg, sizeof(msg), "symbolic_moe: profiles \"%.200s\" is not "
             "loaded (not in %s)", name, TG_MOE_ENV);
    tg_moe_api->fail(req, 400, "invalid_request_error", msg);
    return NULL;
}


static int
tg_moe_answer_opts(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    const char               *bench = api->opt_str(req, "bench");
    char                      msg[320];

    tg_answer_opts_default(&st->opts);
    if (api->opt_bool(req, "reasoning")) {
        st->opts.flags |= TG_ANSWER_F_REASONING;
    }
    if (bench == NULL || *bench == '\0') {
        if (info != NULL && info->problem != NULL) {
            tg_answer_opts_for_problem(info->problem, info->problem_len,
                                       &st->opts);
        }
    } else if (tg_answer_opts_for_bench(bench, &st->opts) != 0) {
        snprintf(msg, sizeof(msg), "symbolic_moe: unknown bench \"%.256s\"",
                 bench);
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    return 0;
}


/* The candidate models: those the pool's backends serve, in order. */
static int
tg_moe_candidates(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    tg_backend_info_t     b[TG_MOE_MAX_BACKENDS];
    size_t                n, i, m;
    char                 *s;

    n = api->pool_backends(req, api->request_info(req)->pool, b,
                           TG_MOE_MAX_BACKENDS);
    for (i = 0; i < n && i < TG_MOE_MAX_BACKENDS; i++) {
        if (b[i].model == NULL || *b[i].model == '\0' || b[i].name == NULL) {
            continue;
        }
        for (m = 0; m < st->nmodels; m++) {
            if (strcmp(st->models[m], b[i].model) == 0) {
                break;
            }
        }
        if (m == st->nmodels) {
            if (m == TG_MOE_MAX_MODELS) {
                continue;
            }
            s = api->alloc(req, strlen(b[i].model) + 1);
            if (s == NULL) {
                break;
            }
            st->models[st->nmodels++] = strcpy(s, b[i].model);
        }
        s = api->alloc(req, strlen(b[i].name) + 1);
        if (s == NULL) {
            break;
        }
        st->backends[st->nbackends].name = strcpy(s, b[i].name);
        st->backends[st->nbackends].model = (int) m;
        st->backends[st->nbackends++].in_flight = b[i].in_flight;
    }
    if (st->nbackends == 0) {
        api->fail(req, 502, "backend_error", "symbolic_moe: no backend of "
                  "the pool names the model it serves (thinkgate_backend "
                  "... model=NAME)");
        return -EIO;
    }
    return 0;
}


static int
tg_moe_start(tg_req_t *req)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    tg_moe_t                 *st = api->state(req);
    int64_t                   seed = api->opt_int(req, "seed");
    int                       rc;

    st->profile = tg_moe_profile(req);
    if (st->profile == NULL) {
        return -EINVAL;
    }
    if (tg_moe_answer_opts(st, req) != 0) {
        return -EINVAL;
    }
    st->k = (uint32_t) api->opt_int(req, "k");
    st->samples = (uint32_t) api->opt_int(req, "samples");
    st->temperature = api->opt_double(req, "temperature");
    st->min_sim = api->opt_double(req, "min_sim");
    st->rng = seed >= 0 ? (uint64_t) seed
              : info->has_seed ? (uint64_t) info->seed : info->id;
    st->has_seed = info->has_seed;
    st->client_seed = info->seed;
    if (tg_moe_candidates(st, req) != 0) {
        return -EIO;
    }
    rc = tg_moe_pools(st, req);
    if (rc != 0) {
        return rc;
    }
    if (st->annotator != NULL) {
        rc = tg_moe_annotate_start(st, req);
        if (rc == 0 || rc == -ENOMEM) {
            return rc;
        }
    }
    st->nkw = tg_skills_annotate(info->problem, info->problem_len, st->kw,
                                 TG_SKILLS_MAX_KEYWORDS);
    return tg_moe_annotated(st, req);
}


/* The annotator and aggregator options: "lexicon" / "vote", or a pool
 * of this configuration (else a 400 naming it). */
static int
tg_moe_pools(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    static const char    *opt[2] = { "annotator", "aggregator" };
    static const char    *own[2] = { "lexicon", "vote" };
    const char           *v, **slot;
    char                 *copy;
    tg_backend_info_t     b;
    char                  msg[320];
    int                   i;

    for (i = 0; i < 2; i++) {
        v = api->opt_str(req, opt[i]);
        slot = i == 0 ? &st->annotator : &st->aggregator;
        *slot = NULL;
        if (v == NULL || *v == '\0' || strcmp(v, own[i]) == 0) {
            continue;
        }
        if (api->pool_backends(req, v, &b, 1) == 0) {
            snprintf(msg, sizeof(msg), "symbolic_moe: %s \"%.128s\" is "
                     "neither \"%s\" nor a pool with backends",
                     opt[i], v, own[i]);
            api->fail(req, 400, "invalid_request_error", msg);
            return -EINVAL;
        }
        copy = api->alloc(req, strlen(v) + 1);
        if (copy == NULL) {
            api->fail(req, 500, "server_error", "symbolic_moe: out of "
                      "memory");
            return -ENOMEM;
        }
        *slot = strcpy(copy, v);
    }
    st->aggregator_tokens = (int32_t) api->opt_int(req,
                                                   "aggregator_tokens");
    return 0;
}


int
tg_moe_annotated(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    size_t                i;
    int                   rc;

    for (i = 0; i < TG_SKILLS_MAX_KEYWORDS; i++) {
        st->mapped[i] = -1;
    }
    if (st->nkw == 0 || st->profile->nkeywords == 0) {
        return tg_moe_recruit(st, req);
    }
    if (TG_HOST_HAS(api, score_kind)) {
        /* -ENOTSUP (no thinkgate_embedder) or -EBUSY: lexical. */
        rc = tg_moe_score(st, req, TG_SCORE_KIND_EMBED);
        if (rc == 0 || rc == -ENOMEM) {
            return rc;
        }
    }
    return tg_moe_score(st, req, TG_SCORE_KIND_LEXICAL);
}


/* Asks for the cosines of the query keywords and the profile's. */
static int
tg_moe_score(tg_moe_t *st, tg_req_t *req, tg_score_kind_t kind)
{
    const tg_host_api_t  *api = tg_moe_api;
    size_t                n = st->nkw + st->profile->nkeywords, i;
    const char          **texts = api->alloc(req, n * sizeof(char *));
    size_t               *lens = api->alloc(req, n * sizeof(size_t));
    int                   rc;

    if (texts == NULL || lens == NULL) {
        api->fail(req, 500, "server_error", "symbolic_moe: out of memory");
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        texts[i] = i < st->nkw ? st->kw[i]
                               : st->profile->keywords[i - st->nkw];
        lens[i] = strlen(texts[i]);
    }
    st->score_kind = kind == TG_SCORE_KIND_EMBED ? "embed" : "lexical";
    if (TG_HOST_HAS(api, score_kind)) {
        rc = api->score_kind(req, kind, texts, lens, n, tg_moe_scored, st);
    } else {
        rc = api->score(req, texts, lens, n, tg_moe_scored_lexical, st);
    }
    if (rc != 0 && kind == TG_SCORE_KIND_LEXICAL) {
        /* Without cosines nothing maps: recruit at random. */
        api->log(req, TG_LOG_WARN, "symbolic_moe: keyword scoring failed: "
                 "%s", api->last_error(req));
        st->score_kind = "none";
        return tg_moe_recruit(st, req);
    }
    return rc;
}


static void
tg_moe_scored(tg_req_t *req, void *data, const tg_score_result_t *res)
{
    tg_moe_t  *st = data;

    if (res->status != 0 && res->kind == TG_SCORE_KIND_EMBED) {
        tg_moe_api->log(req, TG_LOG_WARN, "symbolic_moe: embedding the "
                        "keywords failed (%s); lexical instead", res->error);
        tg_moe_score(st, req, TG_SCORE_KIND_LEXICAL);
        return;
    }
    tg_moe_scored_lexical(req, data, res->status == 0 ? res->sim : NULL,
                          res->n);
}


static void
tg_moe_scored_lexical(tg_req_t *req, void *data, const float *sim, size_t n)
{
    tg_moe_t  *st = data;
    size_t     i;

    if (sim != NULL && n == st->nkw + st->profile->nkeywords) {
        tg_skills_map(sim, st->nkw, st->profile->nkeywords, st->min_sim,
                      st->mapped);
    } else {
        for (i = 0; i < st->nkw; i++) {
            st->mapped[i] = -1;
        }
    }
    tg_moe_recruit(st, req);
}


static void
tg_moe_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_moe_t  *st = tg_moe_api->state(req);

    tg_moe_trace_ended(st, req, t, e);
}


static void
tg_moe_on_aux_result(tg_req_t *req, tg_aux_t *a, const tg_aux_result_t *r)
{
    tg_moe_t  *st = tg_moe_api->state(req);

    if (a == st->annotating && !st->answered) {
        st->annotating = NULL;
        if (st->annotate_timer != NULL) {
            tg_moe_api->timer_stop(req, st->annotate_timer);
            st->annotate_timer = NULL;
        }
        tg_moe_annotate_result(st, req, r);
    }
}


static void
tg_moe_on_timer(tg_req_t *req, tg_timer_t *tm, void *data)
{
    tg_moe_t  *st = tg_moe_api->state(req);

    (void) data;
    if (tm == st->annotate_timer && st->annotating != NULL
        && !st->answered)
    {
        st->annotate_timer = NULL;
        tg_moe_annotate_timeout(st, req);
    }
}


static void
tg_moe_on_cancel(tg_req_t *req)
{
    /* The client left: the host cancels every trace. */
    tg_moe_t  *st = tg_moe_api->state(req);

    st->answered = 1;
}


static void
tg_moe_destroy(tg_req_t *req)
{
    /* Everything lives in the state block and the request's arena. */
    (void) req;
}
