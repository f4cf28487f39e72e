/*
 * thinkgate — n sampled traces that vote (see samples.h).
 */
#include "samples.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char *tg__samples_votes_json(tg_samples_t *s, tg_req_t *req,
    const tg_vote_t *v);

/* The vote tally must hold an answer for every sample. */
_Static_assert(TG_SAMPLES_MAX <= TG_VOTE_MAX, "a tally per sample");


int
tg_samples_check_api(const tg_host_api_t *api, const char *name, char *err,
    size_t err_size)
{
    if (!TG_HOST_HAS(api, log)) {
        snprintf(err, err_size, "%s: host API table too old", name);
        return -ENOTSUP;
    }
    return 0;
}


int
tg_samples_init(tg_samples_t *s, const tg_host_api_t *api, tg_req_t *req,
    const char *name)
{
    int64_t  n;
    char     msg[96];

    s->api = api;
    s->name = name;
    n = api->opt_int(req, "n");
    if (n < 1 || n > TG_SAMPLES_MAX) {
        /* The host checks the table's bounds; this only guards a host
         * that does not. */
        snprintf(msg, sizeof(msg), "%s: n must be within 1..%d", name,
                 TG_SAMPLES_MAX);
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    s->n = (uint32_t) n;
    return 0;
}


int
tg_samples_answer_opts(tg_samples_t *s, tg_req_t *req)
{
    const tg_host_api_t  *api = s->api;
    const char           *bench = api->opt_str(req, "bench");
    char                  msg[320];

    tg_answer_opts_default(&s->opts);
    if (api->opt_bool(req, "reasoning")) {
        s->opts.flags |= TG_ANSWER_F_REASONING;
    }
    if (bench == NULL || *bench == '\0') {
        /* Without a bench, the problem itself says whether it offers
         * lettered options; then only a letter is an answer, so that
         * "**Answer" or a stray number never wins the vote. */
        const tg_request_info_t *info = api->request_info(req);

        if (info != NULL && info->problem != NULL) {
            tg_answer_opts_for_problem(info->problem, info->problem_len,
                                       &s->opts);
        }
    } else if (tg_answer_opts_for_bench(bench, &s->opts) != 0) {
        /* A misspelt bench would silently change what counts as an
         * answer, and with it the vote. */
        snprintf(msg, sizeof(msg), "%s: unknown bench \"%.256s\"", s->name,
                 bench);
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    return 0;
}


int
tg_samples_start(tg_samples_t *s, tg_req_t *req)
{
    return tg_samples_start_upto(s, req, s->n);
}


int
tg_samples_start_upto(tg_samples_t *s, tg_req_t *req, uint32_t upto)
{
    const tg_host_api_t  *api = s->api;
    const char           *why = NULL;
    int                   first = s->started == 0;
    uint32_t              i;

    if (upto > s->n) {
        upto = s->n;
    }
    for (i = s->started; i < upto; i++) {
        tg_trace_spec_t  spec = { 0 };

        spec.temperature = -1;
        s->slots[i].order = -1;
        s->slots[i].trace = api->trace_start(req, &spec);
        if (s->slots[i].trace == NULL) {
            /* Fewer voters is still an answer; only none is an error. */
            why = api->last_error(req);
            api->log(req, TG_LOG_WARN, "%s: trace %u of %u not started: %s",
                     s->name, i, s->n, why ? why : "unknown");
            continue;
        }
        s->slots[i].running = 1;
        s->running++;
    }
    if (upto > s->started) {
        s->started = upto;
    }
    if (first && s->running == 0) {
        s->answered = 1;
        api->fail(req, 502, "backend_error",
                  why != NULL && *why != '\0' ? why : "no trace started");
        return -EIO;
    }
    return 0;
}


tg_sample_t *
tg_samples_end(tg_samples_t *s, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_sample_t      *slot = NULL;
    tg_trace_info_t   ti;
    uint32_t          i;

    if (s->answered) {
        return NULL;
    }
    for (i = 0; i < s->n; i++) {
        if (s->slots[i].trace == t && s->slots[i].running) {
            slot = &s->slots[i];
            break;
        }
    }
    if (slot == NULL) {
        return NULL;
    }
    slot->running = 0;
    slot->order = (int32_t) s->ended;
    s->by_order[s->ended++] = (int32_t) i;
    s->running--;

    if (e->state == TG_TRACE_DONE) {
        slot->done = 1;
        slot->stop = e->finish_reason != NULL
                     && strcmp(e->finish_reason, "stop") == 0;
        if (s->api->trace_info(t, &ti) == 0
            && tg_answer_extract_split(ti.reasoning, ti.reasoning_len,
                                       ti.content, ti.content_len, &s->opts,
                                       slot->answer, TG_ANSWER_MAX) > 0)
        {
            slot->has_answer = 1;
        }
    }
    return slot;
}


void
tg_samples_vote(const tg_samples_t *s, int stop_only, tg_vote_t *v)
{
    uint32_t  i;

    tg_vote_init(v);
    for (i = 0; i < s->ended; i++) {
        const tg_sample_t  *slot = &s->slots[s->by_order[i]];

        if (slot->has_answer && (!stop_only || slot->stop)) {
            tg_vote_add(v, slot->answer, i);
        }
    }
}


tg_sample_t *
tg_samples_voter(tg_samples_t *s, const tg_vote_t *v, int g)
{
    return &s->slots[s->by_order[v->groups[g].first]];
}


void
tg_samples_answer(tg_samples_t *s, tg_req_t *req, const tg_vote_t *v,
    int lead, const char *fallback, unsigned flags)
{
    const tg_host_api_t  *api = s->api;
    const char           *votes, *why;
    tg_trace_t           *winner = NULL;
    tg_trace_info_t       ti;
    uint32_t              i;
    char                  msg[96];

    s->answered = 1;
    for (i = 0; i < s->n; i++) {
        if (s->slots[i].running) {
            api->trace_cancel(req, s->slots[i].trace);
            s->slots[i].running = 0;
        }
    }

    /* The trace to return: the leader's first voter, else the first trace
     * that ended DONE.  The rest are cancelled first, so that the host
     * stops them before anything else happens. */
    if (lead >= 0) {
        winner = tg_samples_voter(s, v, lead)->trace;
    } else {
        for (i = 0; i < s->ended; i++) {
            if (s->slots[s->by_order[i]].done) {
                winner = s->slots[s->by_order[i]].trace;
                break;
            }
        }
    }
    if (winner == NULL) {
        snprintf(msg, sizeof(msg), "%s: all %u traces failed", s->name,
                 s->n);
        api->fail(req, 502, "backend_error", msg);
        return;
    }

    votes = tg__samples_votes_json(s, req, v);
    if (votes != NULL) {
        api->summary_json(req, "votes", votes);
    }
    if (lead >= 0) {
        api->summary_str(req, "answer", v->groups[lead].answer);
    } else {
        api->summary_json(req, "answer", "null");
    }
    if (fallback != NULL) {
        api->summary_str(req, "fallback", fallback);
    }
    if ((flags & TG_SAMPLES_F_WINNER) && api->trace_info(winner, &ti) == 0) {
        api->summary_int(req, "winner", ti.index);
    }
    if (api->finish_trace(req, winner) != 0) {
        why = api->last_error(req);
        api->fail(req, 502, "backend_error",
                  why != NULL && *why != '\0' ? why : "cannot return a trace");
    }
}


/* v as JSON in the arena; NULL when out of memory. */
static const char *
tg__samples_votes_json(tg_samples_t *s, tg_req_t *req, const tg_vote_t *v)
{
    size_t  len = tg_vote_json_len(v);
    char   *buf = s->api->alloc(req, len + 1);

    if (buf == NULL || tg_vote_json(v, buf, len + 1) < 0) {
        s->api->log(req, TG_LOG_ERROR, "%s: out of memory for the votes "
                    "summary", s->name);
        return NULL;
    }
    return buf;
}
