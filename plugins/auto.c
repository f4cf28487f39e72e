/*
 * thinkgate — auto: a stopping rule per model, learned from how often the
 * first trace to finish agrees with the majority of all n.
 *
 * For each model (the request's "model", else the model of the pool's
 * first backend) the plugin keeps two counts: requests explored and, of
 * those, requests whose first finisher's answer was the majority's.  An
 * explored request runs plain voting over all n traces (self-consistency)
 * and updates the counts; every explore-th request of a model is explored
 * (explore=0.1: one in ten), and so is every request while the model has
 * fewer than min_explored, prior included.  Otherwise, with agreement
 * a = (agree + prior x prior_n) / (explored + prior_n):
 *   a >= hi       ffs: the first trace that stops with an answer wins;
 *   a >= lo       margin: stop once the leading answer has `margin` votes
 *                 more than any other (or the vote is settled);
 *   below         exact: self_consistency early_stop=exact (the answer
 *                 is plain voting's).
 * Every rule cancels the other traces when it answers.
 *
 * first=K (staged sampling, after adaptive-consistency): the margin and
 * exact rules start K traces only, and the other n - K once one of them
 * dissents (ends without an answer, or a second answer appears) or all K
 * have ended without a decision.  A question the first traces agree on is
 * answered from them alone; one they disagree on gets all n.  The traces
 * not started yet count as votes still to come, so "settled" means
 * settled over all n.  Explored and ffs requests start all n at once.
 *
 * prior= starts models from profile data ("R1:0.93,QwQ:0.87", as
 * tools/auto_prior.py prints it from recorded traces), counted as prior_n
 * explored requests.  The counts live in this plugin's memory and, when
 * the gateway has Redis, under kv key "m:<model>" ("agree explored"):
 * read once per model before its first request here, written after each
 * explored request (the last writer wins across gateways).
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "thinkgate/plugin.h"
#include "common/samples.h"

#define TG_AUTO_MODELS      64
#define TG_AUTO_NAME        128

enum { TG_AUTO_EXPLORE = 0, TG_AUTO_FFS, TG_AUTO_MARGIN, TG_AUTO_EXACT };

static const char  *tg_auto_modes[] = { "explore", "ffs", "margin", "exact" };

/* One model's counts; kv says whether Redis was asked already. */
typedef struct {
    char      name[TG_AUTO_NAME];
    uint64_t  agree;
    uint64_t  explored;
    uint64_t  requests;
    int       kv;           /* 0 not asked, 1 asking, 2 done */
} tg_auto_model_t;

typedef struct {
    tg_samples_t      samples;
    tg_auto_model_t  *model;
    int               mode;
    int               started;
    uint32_t          first;        /* traces started first; n: all */
    double            agreement;
} tg_auto_t;

static int tg_auto_load(const tg_host_api_t *api, char *err, size_t err_size);
static void tg_auto_unload(void);
static int tg_auto_start(tg_req_t *req);
static void tg_auto_on_delta(tg_req_t *req, tg_trace_t *t,
    const tg_delta_t *d);
static void tg_auto_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_auto_on_cancel(tg_req_t *req);
static void tg_auto_destroy(tg_req_t *req);
static int tg_auto_begin(tg_req_t *req);
static void tg_auto_kv_got(tg_req_t *req, void *data, int status,
    const char *value, size_t len);
static void tg_auto_kv_set(tg_req_t *req, void *data, int status,
    const char *value, size_t len);
static void tg_auto_learn(tg_req_t *req, tg_auto_t *st, int lead);

static const tg_host_api_t  *tg_auto_api;
static tg_auto_model_t       tg_auto_models[TG_AUTO_MODELS];
static size_t                tg_auto_nmodels;

static const tg_option_t  tg_auto_options[] = {
    { "n", TG_OPT_INT, "8", 1, TG_SAMPLES_MAX, NULL,
      "traces sampled per request" },
    { "explore", TG_OPT_DOUBLE, "0.1", 0, 1, NULL,
      "share of a model's requests that vote over all n to learn" },
    { "min_explored", TG_OPT_INT, "5", 0, 1000000, NULL,
      "explore every request until a model has this many (prior "
      "included)" },
    { "hi", TG_OPT_DOUBLE, "0.9", 0, 1, NULL,
      "agreement from which the first finisher wins (ffs)" },
    { "lo", TG_OPT_DOUBLE, "0", 0, 1, NULL,
      "agreement from which the margin rule stops; below it exact" },
    { "margin", TG_OPT_INT, "2", 1, TG_SAMPLES_MAX, NULL,
      "votes the leader needs over any other answer (margin rule)" },
    { "first", TG_OPT_INT, "3", 0, TG_SAMPLES_MAX, NULL,
      "margin/exact start this many traces, the rest on a dissent or "
      "when they are done undecided; 0: all n at once" },
    { "prior", TG_OPT_STRING, NULL, 0, 0, NULL,
      "MODEL:AGREEMENT,... from profile data (tools/auto_prior.py)" },
    { "prior_n", TG_OPT_INT, "10", 0, 1000000, NULL,
      "explored requests a prior counts as" },
    { "model", TG_OPT_STRING, NULL, 0, 0, NULL,
      "the model to learn for; unset: the request's, else the pool's" },
    { "bench", TG_OPT_STRING, NULL, 0, 0, NULL,
      "benchmark fixing the answer format (aime*, gpqa*); unset: any" },
    { "reasoning", TG_OPT_BOOL, "on", 0, 0, NULL,
      "content without </think> is thinking" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "auto",
    "1.0",
    "per model: ffs, margin stop or exact early stop, from learned "
    "first-finisher agreement",
    tg_auto_options,
    sizeof(tg_auto_t),
    tg_auto_load,
    tg_auto_unload,
    tg_auto_start,
    tg_auto_on_delta,
    tg_auto_on_trace_end,
    NULL,
    NULL,
    tg_auto_on_cancel,
    tg_auto_destroy,
};


static int
tg_auto_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    int  rc = tg_samples_check_api(api, "auto", err, err_size);

    if (rc == 0 && (api->kv_get == NULL || api->kv_set == NULL
                    || api->pool_backends == NULL))
    {
        snprintf(err, err_size, "auto: host API table too old");
        rc = -ENOTSUP;
    }
    /* The counts outlive a reload of the same file only through kv: a
     * new version is a new copy of this table, starting empty. */
    if (rc == 0) {
        tg_auto_api = api;
    }
    return rc;
}


static void
tg_auto_unload(void)
{
    tg_auto_api = NULL;
}


/* The model's entry, made on first sight; NULL when the table is full
 * (the request then votes like exact without learning). */
static tg_auto_model_t *
tg_auto_model(const char *name)
{
    tg_auto_model_t  *m;
    size_t            i;

    for (i = 0; i < tg_auto_nmodels; i++) {
        if (strcmp(tg_auto_models[i].name, name) == 0) {
            return &tg_auto_models[i];
        }
    }
    if (tg_auto_nmodels == TG_AUTO_MODELS || strlen(name) >= TG_AUTO_NAME) {
        return NULL;
    }
    m = &tg_auto_models[tg_auto_nmodels++];
    snprintf(m->name, sizeof(m->name), "%s", name);
    return m;
}


/* The prior agreement of model in "A:0.9,B:0.5"; -1 when none. */
static double
tg_auto_prior(const char *prior, const char *model)
{
    const char  *p, *colon, *end;
    size_t       len = strlen(model), seg;

    for (p = prior; p != NULL && *p != '\0'; p = end ? end + 1 : NULL) {
        end = strchr(p, ',');
        seg = end != NULL ? (size_t) (end - p) : strlen(p);
        colon = memrchr(p, ':', seg);
        if (colon != NULL && (size_t) (colon - p) == len
            && memcmp(p, model, len) == 0)
        {
            return atof(colon + 1);
        }
    }
    return -1;
}


/* The kv key of a model: "m:" and the name with every byte outside
 * [A-Za-z0-9_.:-] as '_'. */
static void
tg_auto_key(const tg_auto_model_t *m, char *key, size_t size)
{
    size_t  i;
    char    c;

    snprintf(key, size, "m:%s", m->name);
    for (i = 2; key[i] != '\0'; i++) {
        c = key[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '_' || c == '.'
              || c == ':' || c == '-'))
        {
            key[i] = '_';
        }
    }
}


static int
tg_auto_start(tg_req_t *req)
{
    const tg_host_api_t      *api = tg_auto_api;
    const tg_request_info_t  *info = api->request_info(req);
    tg_auto_t                *st = api->state(req);
    tg_backend_info_t         b;
    const char               *name;
    char                      key[TG_AUTO_NAME + 8];

    if (tg_samples_init(&st->samples, api, req, "auto") != 0
        || tg_samples_answer_opts(&st->samples, req) != 0)
    {
        return -EINVAL;
    }

    name = api->opt_str(req, "model");
    if (name == NULL || name[0] == '\0') {
        name = info->model;
    }
    if ((name == NULL || name[0] == '\0') && info->pool != NULL
        && api->pool_backends(req, info->pool, &b, 1) > 0)
    {
        name = b.model;
    }
    st->model = tg_auto_model(name != NULL ? name : "");

    /* Redis is asked once per model before deciding; a request that
     * finds the ask in flight decides from memory. */
    if (st->model != NULL && st->model->kv == 0) {
        tg_auto_key(st->model, key, sizeof(key));
        st->model->kv = 1;
        if (api->kv_get(req, key, tg_auto_kv_got, st->model) == 0) {
            return 0;
        }
        st->model->kv = 2;
    }
    return tg_auto_begin(req);
}


static void
tg_auto_kv_got(tg_req_t *req, void *data, int status, const char *value,
    size_t len)
{
    tg_auto_model_t     *m = data;
    unsigned long long   agree, explored;
    char                 buf[64];

    m->kv = 2;
    if (status == 0 && len < sizeof(buf)) {
        memcpy(buf, value, len);
        buf[len] = '\0';
        if (sscanf(buf, "%llu %llu", &agree, &explored) == 2
            && agree <= explored && explored > m->explored)
        {
            m->agree = agree;
            m->explored = explored;
        }
    }
    (void) tg_auto_begin(req);
}


static void
tg_auto_kv_set(tg_req_t *req, void *data, int status, const char *value,
    size_t len)
{
    (void) data;
    (void) value;
    (void) len;
    if (status != 0) {
        tg_auto_api->log(req, TG_LOG_INFO, "auto: kv set failed: %d",
                         status);
    }
}


/* Decides the rule from the model's counts and starts the samples. */
static int
tg_auto_begin(tg_req_t *req)
{
    const tg_host_api_t  *api = tg_auto_api;
    tg_auto_t            *st = api->state(req);
    tg_auto_model_t      *m = st->model;
    double                prior, n, explore, every;
    int64_t               prior_n;

    st->started = 1;
    st->mode = TG_AUTO_EXACT;
    st->agreement = -1;

    if (m != NULL) {
        prior = tg_auto_prior(api->opt_str(req, "prior"), m->name);
        prior_n = prior >= 0 ? api->opt_int(req, "prior_n") : 0;
        n = (double) m->explored + (double) prior_n;
        explore = api->opt_double(req, "explore");
        every = explore > 0 ? 1.0 / explore : 0;
        m->requests++;

        if (n > 0) {
            st->agreement = ((double) m->agree + prior * (double) prior_n)
                            / n;
        }
        if (n < (double) api->opt_int(req, "min_explored")
            || (every > 0
                && m->requests % (uint64_t) (every + 0.5) == 0))
        {
            st->mode = TG_AUTO_EXPLORE;
        } else if (st->agreement >= api->opt_double(req, "hi")) {
            st->mode = TG_AUTO_FFS;
        } else if (st->agreement >= api->opt_double(req, "lo")) {
            st->mode = TG_AUTO_MARGIN;
        }
    }

    st->first = st->samples.n;
    if ((st->mode == TG_AUTO_MARGIN || st->mode == TG_AUTO_EXACT)
        && api->opt_int(req, "first") > 0
        && (uint32_t) api->opt_int(req, "first") < st->samples.n)
    {
        st->first = (uint32_t) api->opt_int(req, "first");
    }
    if (api->summary_str(req, "auto_mode", tg_auto_modes[st->mode]) != 0
        || (st->agreement >= 0
            && api->summary_int(req, "auto_agreement_pct",
                                (int64_t) (st->agreement * 100 + 0.5)) != 0))
    {
        /* The summary is informative; a full one is not a failure. */
        api->log(req, TG_LOG_DEBUG, "auto: summary full");
    }
    return tg_samples_start_upto(&st->samples, req, st->first);
}


static void
tg_auto_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    /* Answers are read once a trace has ended. */
    (void) req;
    (void) t;
    (void) d;
}


/* The leader's lead over the runner-up, in votes. */
static uint32_t
tg_auto_lead(const tg_vote_t *v, int lead)
{
    int  second = tg_vote_runner_up(v);

    if (lead < 0) {
        return 0;
    }
    return v->groups[lead].count
           - (second >= 0 ? v->groups[second].count : 0);
}


static void
tg_auto_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    const tg_host_api_t  *api = tg_auto_api;
    tg_auto_t            *st = api->state(req);
    tg_sample_t          *s;
    tg_vote_t             v;
    uint32_t              pending;
    int                   lead, done;

    s = tg_samples_end(&st->samples, t, e);
    if (s == NULL) {
        return;
    }

    if (st->mode == TG_AUTO_FFS && s->stop && s->has_answer) {
        tg_vote_init(&v);
        (void) tg_vote_add(&v, s->answer, 0);
        tg_samples_answer(&st->samples, req, &v, 0, NULL, 0);
        return;
    }

    tg_samples_vote(&st->samples, 0, &v);
    lead = tg_vote_leader(&v);
    /* Votes still to come: the running traces and those not started. */
    pending = st->samples.running + st->samples.n - st->samples.started;
    done = pending == 0;

    switch (st->mode) {
    case TG_AUTO_MARGIN:
        done = done || tg_vote_settled(&v, pending)
               || tg_auto_lead(&v, lead)
                  >= (uint32_t) api->opt_int(req, "margin");
        break;
    case TG_AUTO_EXACT:
        done = done || tg_vote_settled(&v, pending);
        break;
    default:
        break;
    }
    if (!done && st->samples.started < st->samples.n
        && (!s->has_answer || v.ngroups > 1 || st->samples.running == 0))
    {
        /* The first ones dissent, or ended undecided: all n vote. */
        (void) tg_samples_start_upto(&st->samples, req, st->samples.n);
        done = st->samples.running == 0;
    }
    if (!done) {
        return;
    }
    if (st->first < st->samples.n
        && api->summary_int(req, "auto_started",
                            (int64_t) st->samples.started) != 0)
    {
        api->log(req, TG_LOG_DEBUG, "auto: summary full");
    }
    if (st->mode == TG_AUTO_EXPLORE) {
        tg_auto_learn(req, st, lead);
    }
    tg_samples_answer(&st->samples, req, &v, lead,
                      lead < 0 ? "first_finished" : NULL, 0);
}


/* An explored request: did the first answer agree with the majority? */
static void
tg_auto_learn(tg_req_t *req, tg_auto_t *st, int lead)
{
    tg_auto_model_t  *m = st->model;
    char              key[TG_AUTO_NAME + 8], val[48];
    int               n;

    if (m == NULL || lead < 0) {
        return;
    }
    m->explored++;
    /* Groups are ordered by their first voter: group 0 holds the first
     * answer to arrive. */
    if (lead == 0) {
        m->agree++;
    }
    tg_auto_key(m, key, sizeof(key));
    n = snprintf(val, sizeof(val), "%llu %llu",
                 (unsigned long long) m->agree,
                 (unsigned long long) m->explored);
    if (tg_auto_api->kv_set(req, key, val, (size_t) n, 0, tg_auto_kv_set,
                            NULL) != 0)
    {
        tg_auto_api->log(req, TG_LOG_DEBUG, "auto: counts kept in memory");
    }
}


static void
tg_auto_on_cancel(tg_req_t *req)
{
    tg_auto_t  *st = tg_auto_api->state(req);

    st->samples.answered = 1;
}


static void
tg_auto_destroy(tg_req_t *req)
{
    /* Everything lives in the request's state block and arena. */
    (void) req;
}
