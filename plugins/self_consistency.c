/*
 * thinkgate — self-consistency: sample n traces, extract each one's final
 * answer, answer with the majority.  The baseline every other strategy is
 * measured against.
 *
 * Voting: every trace that ends DONE (finish_reason stop or length: a box
 * written before the cut is still the model's answer) and yields an
 * extractable answer casts one vote; failed traces and traces without an
 * answer do not vote.  Answers are grouped with tg_answer_equal ("1/2"
 * and "0.5" are one answer).  The most votes win; a tie goes to the answer
 * whose first voter finished earliest, and the request is answered with
 * that first voter (finish_trace), so the client gets a whole, real trace.
 *
 * early_stop=exact cancels the running traces as soon as no outcome of
 * them can change the result of voting over all of them: the answer and
 * the winning trace are exactly plain voting's, for fewer tokens.  The
 * "votes" summary then holds the votes cast before the stop.
 *
 * When no trace yields an answer, the first trace to finish is returned
 * and the summary says "fallback": "first_finished".
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "thinkgate/plugin.h"
#include "common/samples.h"

#define TG_SC_MAX_TRACES  TG_SAMPLES_MAX

typedef struct {
    tg_samples_t  samples;
    int           early_stop;
} tg_sc_t;

static int tg_sc_load(const tg_host_api_t *api, char *err, size_t err_size);
static void tg_sc_unload(void);
static int tg_sc_start(tg_req_t *req);
static void tg_sc_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d);
static void tg_sc_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_sc_on_cancel(tg_req_t *req);
static void tg_sc_destroy(tg_req_t *req);

static const tg_host_api_t  *tg_sc_api;

static const tg_option_t  tg_sc_options[] = {
    { "n", TG_OPT_INT, "8", 1, TG_SC_MAX_TRACES, NULL,
      "traces sampled and voted over" },
    { "early_stop", TG_OPT_ENUM, "none", 0, 0, "none|exact",
      "exact: cancel the running traces once they cannot change the vote" },
    { "bench", TG_OPT_STRING, NULL, 0, 0, NULL,
      "benchmark fixing the answer format (aime*: integer 0-999, "
      "gpqa*: letter); unset: any answer" },
    { "reasoning", TG_OPT_BOOL, "on", 0, 0, NULL,
      "content without </think> is thinking, phrases there no answer "
      "(off for models that do not think)" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "self_consistency",
    "1.0",
    "n traces, majority vote on extracted answers",
    tg_sc_options,
    sizeof(tg_sc_t),
    tg_sc_load,
    tg_sc_unload,
    tg_sc_start,
    tg_sc_on_delta,
    tg_sc_on_trace_end,
    NULL,
    NULL,
    tg_sc_on_cancel,
    tg_sc_destroy,
};


static int
tg_sc_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    int  rc = tg_samples_check_api(api, "self_consistency", err, err_size);

    if (rc == 0) {
        tg_sc_api = api;
    }
    return rc;
}


static void
tg_sc_unload(void)
{
    tg_sc_api = NULL;
}


static int
tg_sc_start(tg_req_t *req)
{
    const tg_host_api_t  *api = tg_sc_api;
    tg_sc_t              *st = api->state(req);
    const char           *mode;

    if (tg_samples_init(&st->samples, api, req, "self_consistency") != 0) {
        return -EINVAL;
    }
    mode = api->opt_str(req, "early_stop");
    st->early_stop = mode != NULL && strcmp(mode, "exact") == 0;
    if (tg_samples_answer_opts(&st->samples, req) != 0) {
        return -EINVAL;
    }
    return tg_samples_start(&st->samples, req);
}


static void
tg_sc_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    /* Answers are read once a trace has ended; the host keeps the text. */
    (void) req;
    (void) t;
    (void) d;
}


/*
 * Early stop asks tg_vote_settled() whether the running traces can still
 * change plain voting's result, tie rule included.  That is strictly
 * weaker than "leader > runner-up + running" and cancels earlier with the
 * same result.
 */
static void
tg_sc_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_sc_t    *st = tg_sc_api->state(req);
    tg_vote_t   v;
    int         lead;

    if (tg_samples_end(&st->samples, t, e) == NULL) {
        return;
    }
    tg_samples_vote(&st->samples, 0, &v);
    lead = tg_vote_leader(&v);
    if (st->samples.running == 0
        || (st->early_stop && tg_vote_settled(&v, st->samples.running)))
    {
        tg_samples_answer(&st->samples, req, &v, lead,
                          lead < 0 ? "first_finished" : NULL, 0);
    }
}


static void
tg_sc_on_cancel(tg_req_t *req)
{
    /* The client left: the host cancels every trace and ignores answers. */
    tg_sc_t  *st = tg_sc_api->state(req);

    st->samples.answered = 1;
}


static void
tg_sc_destroy(tg_req_t *req)
{
    /* Everything lives in the request's state block and arena. */
    (void) req;
}
