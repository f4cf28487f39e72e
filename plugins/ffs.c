/*
 * thinkgate — First-Finish Search: sample n traces and answer with the
 * first one that finishes.  A shorter trace is more often a right one
 * (the model stopped because it was sure), and every other trace is
 * cancelled the moment the winner is known, which is where the tokens are
 * saved.
 *
 * A trace qualifies when it ends DONE with finish_reason "stop" and an
 * extractable answer; one cut off at max_tokens or without an answer does
 * not.  With k = 1 the first qualifier wins.  With k > 1 the request waits
 * for k qualifiers, votes among them (ties to the answer whose first voter
 * finished earliest) and answers with the winning answer's first
 * finisher.  Either way every other trace is cancelled at once.
 *
 * If every trace ends before k qualified, the vote is over whatever
 * answers exist (the summary says "fallback": "vote"); without any answer
 * the first trace that finished is returned ("fallback":
 * "first_finished").  Only when every trace failed is it a 502.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "thinkgate/plugin.h"
#include "common/samples.h"

#define TG_FFS_MAX_TRACES  TG_SAMPLES_MAX

typedef struct {
    tg_samples_t  samples;
    uint32_t      k;
    uint32_t      qualified;    /* ended DONE, "stop" and an answer */
} tg_ffs_t;

static int tg_ffs_load(const tg_host_api_t *api, char *err, size_t err_size);
static void tg_ffs_unload(void);
static int tg_ffs_start(tg_req_t *req);
static void tg_ffs_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d);
static void tg_ffs_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_ffs_on_cancel(tg_req_t *req);
static void tg_ffs_destroy(tg_req_t *req);

static const tg_host_api_t  *tg_ffs_api;

static const tg_option_t  tg_ffs_options[] = {
    { "n", TG_OPT_INT, "8", 1, TG_FFS_MAX_TRACES, NULL,
      "traces sampled at once" },
    { "k", TG_OPT_INT, "1", 1, TG_FFS_MAX_TRACES, NULL,
      "finishers voted among (at most n); 1: the first finisher wins" },
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
    "ffs",
    "1.0",
    "First-Finish Search: n traces, the first to finish wins",
    tg_ffs_options,
    sizeof(tg_ffs_t),
    tg_ffs_load,
    tg_ffs_unload,
    tg_ffs_start,
    tg_ffs_on_delta,
    tg_ffs_on_trace_end,
    NULL,
    NULL,
    tg_ffs_on_cancel,
    tg_ffs_destroy,
};


static int
tg_ffs_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    int  rc = tg_samples_check_api(api, "ffs", err, err_size);

    if (rc == 0) {
        tg_ffs_api = api;
    }
    return rc;
}


static void
tg_ffs_unload(void)
{
    tg_ffs_api = NULL;
}


static int
tg_ffs_start(tg_req_t *req)
{
    const tg_host_api_t  *api = tg_ffs_api;
    tg_ffs_t             *st = api->state(req);
    int64_t               k;
    char                  msg[96];

    if (tg_samples_init(&st->samples, api, req, "ffs") != 0) {
        return -EINVAL;
    }
    /* The table can only bound k by 64; k <= n depends on both. */
    k = api->opt_int(req, "k");
    if (k < 1 || k > st->samples.n) {
        snprintf(msg, sizeof(msg), "ffs: k=%lld must be within 1..n (n=%lld)",
                 (long long) k, (long long) st->samples.n);
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    st->k = (uint32_t) k;
    if (tg_samples_answer_opts(&st->samples, req) != 0) {
        return -EINVAL;
    }
    return tg_samples_start(&st->samples, req);
}


static void
tg_ffs_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    /* Answers are read once a trace has ended; the host keeps the text. */
    (void) req;
    (void) t;
    (void) d;
}


static void
tg_ffs_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_ffs_t     *st = tg_ffs_api->state(req);
    tg_sample_t  *slot;
    tg_vote_t     v;

    slot = tg_samples_end(&st->samples, t, e);
    if (slot == NULL) {
        return;
    }
    st->qualified += slot->has_answer && slot->stop;

    if (st->qualified == st->k) {
        tg_samples_vote(&st->samples, 1, &v);
        tg_samples_answer(&st->samples, req, &v, tg_vote_leader(&v), NULL,
                          TG_SAMPLES_F_WINNER);
    } else if (st->samples.running == 0) {
        tg_samples_vote(&st->samples, 0, &v);
        tg_samples_answer(&st->samples, req, &v, tg_vote_leader(&v),
                          v.ngroups > 0 ? "vote" : "first_finished",
                          TG_SAMPLES_F_WINNER);
    }
}


static void
tg_ffs_on_cancel(tg_req_t *req)
{
    /* The client left: the host cancels every trace and ignores answers. */
    tg_ffs_t  *st = tg_ffs_api->state(req);

    st->samples.answered = 1;
}


static void
tg_ffs_destroy(tg_req_t *req)
{
    /* Everything lives in the request's state block and arena. */
    (void) req;
}
