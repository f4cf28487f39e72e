/*
 * Test plugin "judge_probe": runs deepprune's own judges (plugins/
 * deepprune_judge.c, linked in unchanged) on the request's texts and
 * answers with the score matrix, for bench/judge.
 *
 * The request's problem (last user message) is split at ASCII RS (0x1e):
 * the first part is the problem the judged prefixes are attempts at (the
 * llm judge's prompt carries it), every later part one trace prefix.  One
 * judging round compares them all, as deepprune's round does: lexical
 * and embed one score call over every prefix; llm one Yes/No call to
 * judge_pool per pair.  The summary gets "sim" (the n x n matrix, null
 * where the judge gave no verdict), "n", "judge_calls",
 * "judge_failures" and "judge_ms"; a start that fails is the error a
 * request of deepprune would get (400 without thinkgate_embedder).
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "deepprune.h"

#define JUDGE_PROBE_SEP  '\x1e'

typedef struct {
    tg_dp_t            dp;      /* first: the judge code's state */
    tg_request_info_t  info;    /* the request's, problem cut to part 0 */
} judge_probe_t;

static int judge_probe_load(const tg_host_api_t *api, char *err,
    size_t err_size);
static int judge_probe_start(tg_req_t *req);
static void judge_probe_on_aux(tg_req_t *req, tg_aux_t *a,
    const tg_aux_result_t *r);
static const tg_request_info_t *judge_probe_info(tg_req_t *req);

/* The host's table, with request_info() answering the problem part
 * only: the llm judge's prompt takes the problem from it. */
static tg_host_api_t         judge_probe_api;
static const tg_host_api_t  *judge_probe_host;

static const tg_option_t  judge_probe_options[] = {
    { "judge", TG_OPT_ENUM, "lexical", 0, 0, "lexical|embed|llm",
      "deepprune's judge to run" },
    { "judge_pool", TG_OPT_STRING, NULL, 0, 0, NULL,
      "the chat pool judge=llm asks" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    .name = "judge_probe",
    .version = "1.0",
    .description = "deepprune's judges on given prefixes (bench/judge)",
    .options = judge_probe_options,
    .state_size = sizeof(judge_probe_t),
    .load = judge_probe_load,
    .start = judge_probe_start,
    .on_aux_result = judge_probe_on_aux,
};


static int
judge_probe_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    size_t  size = api->size < sizeof(tg_host_api_t) ? api->size
                                                     : sizeof(tg_host_api_t);

    if (!TG_HOST_HAS(api, score_kind) || !TG_HOST_HAS(api, kv_limits)) {
        snprintf(err, err_size, "the host has no score_kind() or aux "
                 "logprobs");
        return -ENOTSUP;
    }
    memset(&judge_probe_api, 0, sizeof(judge_probe_api));
    memcpy(&judge_probe_api, api, size);
    judge_probe_api.request_info = judge_probe_info;
    judge_probe_host = api;
    return 0;
}


static const tg_request_info_t *
judge_probe_info(tg_req_t *req)
{
    judge_probe_t  *ps = judge_probe_host->state(req);

    return &ps->info;
}


static int
judge_probe_start(tg_req_t *req)
{
    const tg_host_api_t  *api = &judge_probe_api;
    judge_probe_t        *ps = api->state(req);
    tg_dp_t              *st = &ps->dp;
    tg_dp_round_t        *r;
    const char           *s, *p, *end, *sep;
    uint32_t              i, n;
    int                   rc, status;

    ps->info = *judge_probe_host->request_info(req);
    p = ps->info.problem;
    end = p + ps->info.problem_len;
    sep = memchr(p, JUDGE_PROBE_SEP, (size_t) (end - p));
    ps->info.problem_len = (size_t) ((sep ? sep : end) - p);

    s = api->opt_str(req, "judge");
    st->judge = strcmp(s, "embed") == 0 ? TG_DP_EMBED
                : strcmp(s, "llm") == 0 ? TG_DP_LLM : TG_DP_LEXICAL;
    st->judge_pool = api->opt_str(req, "judge_pool");
    if (st->judge == TG_DP_LLM && (st->judge_pool == NULL
                                   || *st->judge_pool == '\0'))
    {
        api->fail(req, 400, "invalid_request_error",
                  "judge_probe: judge=llm needs judge_pool");
        return -EINVAL;
    }

    n = 0;
    while (sep != NULL && n < TG_SAMPLES_MAX) {
        p = sep + 1;
        sep = memchr(p, JUDGE_PROBE_SEP, (size_t) (end - p));
        st->tr[n].prefix = p;
        st->tr[n].prefix_len = (size_t) ((sep ? sep : end) - p);
        n++;
    }
    r = api->alloc(req, sizeof(*r));
    if (n < 2 || r == NULL) {
        api->fail(req, 400, "invalid_request_error",
                  "judge_probe: give the problem and at least two "
                  "prefixes, separated by \\u001e");
        return -EINVAL;
    }
    memset(r, 0, sizeof(*r));
    r->api = api;
    r->id = 1;
    r->nitems = n;
    r->first_pending = 1;       /* llm: every pair (a, b), b < a */
    for (i = 0; i < n; i++) {
        r->items[i] = i;
        r->row[i] = (int32_t) i;
    }
    r->sim = api->alloc(req, (size_t) n * n * sizeof(float));
    if (r->sim == NULL) {
        api->fail(req, 500, "server_error", "judge_probe: out of memory");
        return -ENOMEM;
    }
    for (i = 0; i < n * n; i++) {
        r->sim[i] = NAN;
    }
    r->started_ms = api->now_ms();
    st->round = r;
    rc = tg_dp_judge_start(api, req, st, r);
    if (rc != 0) {
        st->round = NULL;
        status = st->judge == TG_DP_EMBED ? 400 : 502;
        api->fail(req, status, status == 400 ? "invalid_request_error"
                                             : "server_error",
                  api->last_error(req) ? api->last_error(req)
                                       : "judge_probe: the judge refused");
        return rc;
    }
    return 0;
}


static void
judge_probe_on_aux(tg_req_t *req, tg_aux_t *a, const tg_aux_result_t *r)
{
    judge_probe_t  *ps = judge_probe_api.state(req);

    if (!ps->dp.samples.answered) {
        tg_dp_judge_on_aux(&judge_probe_api, req, &ps->dp, a, r);
    }
}


/* The judge code's end of a round: the matrix is the answer. */
void
tg_dp_round_done(tg_req_t *req, tg_dp_round_t *r)
{
    const tg_host_api_t  *api = &judge_probe_api;
    judge_probe_t        *ps = api->state(req);
    tg_dp_t              *st = &ps->dp;
    char                  buf[65536];
    size_t                i, len;
    tg_finish_t           fin = { "stop", NULL };

    if (st->round != r || st->samples.answered) {
        return;
    }
    st->round = NULL;
    st->samples.answered = 1;
    st->judge_ms += (int64_t) (api->now_ms() - r->started_ms);

    len = 0;
    buf[len++] = '[';
    for (i = 0; i < (size_t) r->nitems * r->nitems
                && len < sizeof(buf) - 32; i++)
    {
        len += (size_t) (isnan(r->sim[i])
                         ? snprintf(buf + len, sizeof(buf) - len, "%snull",
                                    i ? "," : "")
                         : snprintf(buf + len, sizeof(buf) - len, "%s%.6f",
                                    i ? "," : "", r->sim[i]));
    }
    buf[len++] = ']';
    buf[len] = '\0';

    api->summary_json(req, "sim", buf);
    api->summary_int(req, "n", (int64_t) r->nitems);
    api->summary_int(req, "judge_calls", st->judge_calls);
    api->summary_int(req, "judge_failures", st->judge_failures);
    api->summary_int(req, "judge_ms", st->judge_ms);
    api->emit(req, NULL, 0, "judged", 6);
    api->finish(req, &fin);
}
