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
#include "common/answer.h"

#define TG_FFS_EXPORT      __attribute__((visibility("default")))
#define TG_FFS_MAX_TRACES  64

typedef struct {
    tg_trace_t  *trace;         /* NULL: never started */
    int32_t      order;         /* finish order; -1 until it ends */
    uint8_t      running;
    uint8_t      done;          /* ended DONE (not failed, not cancelled) */
    uint8_t      has_answer;
    uint8_t      qualified;     /* DONE, "stop" and an answer */
    char         answer[TG_ANSWER_MAX];
} tg_ffs_slot_t;

typedef struct {
    tg_answer_opts_t  opts;
    uint32_t          n;
    uint32_t          running;
    uint32_t          ended;
    uint32_t          k;
    uint32_t          qualified;
    int               answered;     /* finish or fail called, or client gone */
    int32_t           by_order[TG_FFS_MAX_TRACES];    /* slots, finish order */
    tg_ffs_slot_t     slots[TG_FFS_MAX_TRACES];
} tg_ffs_t;

/* Votes per distinct answer; groups are numbered in the order their first
 * voter finished, so a lower group number wins a tie. */
typedef struct {
    uint32_t  ngroups;
    int32_t   rep[TG_FFS_MAX_TRACES];     /* slot of the first voter */
    uint32_t  count[TG_FFS_MAX_TRACES];
} tg_ffs_tally_t;

static int tg_ffs_load(const tg_host_api_t *api, char *err, size_t err_size);
static void tg_ffs_unload(void);
static int tg_ffs_start(tg_req_t *req);
static void tg_ffs_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d);
static void tg_ffs_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_ffs_on_cancel(tg_req_t *req);
static void tg_ffs_destroy(tg_req_t *req);
static int tg_ffs_answer_opts(tg_req_t *req, tg_answer_opts_t *opts);
static int tg_ffs_extract(const tg_trace_info_t *ti,
    const tg_answer_opts_t *opts, char *out);
static void tg_ffs_tally(const tg_ffs_t *st, int qualified_only,
    tg_ffs_tally_t *ty);
static int tg_ffs_leader(const tg_ffs_tally_t *ty);
static void tg_ffs_answer(tg_req_t *req, tg_ffs_t *st,
    const tg_ffs_tally_t *ty, int lead, const char *fallback);
static const char *tg_ffs_votes_json(tg_req_t *req, const tg_ffs_t *st,
    const tg_ffs_tally_t *ty);

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

TG_FFS_EXPORT const tg_plugin_t  thinkgate_plugin = {
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
    { NULL }
};


static int
tg_ffs_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    if (api == NULL || api->abi_version != TG_PLUGIN_ABI_VERSION
        || api->size < offsetof(tg_host_api_t, log) + sizeof(api->log))
    {
        snprintf(err, err_size, "ffs: host API table too old");
        return -ENOTSUP;
    }
    tg_ffs_api = api;
    return 0;
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
    const char           *why = NULL;
    int64_t               n, k;
    uint32_t              i;
    char                  msg[96];

    n = api->opt_int(req, "n");
    if (n < 1 || n > TG_FFS_MAX_TRACES) {
        /* The host checks the table's bounds; this only guards a host
         * that does not. */
        api->fail(req, 400, "invalid_request_error",
                  "ffs: n must be within 1..64");
        return -EINVAL;
    }
    /* The table can only bound k by 64; k <= n depends on both. */
    k = api->opt_int(req, "k");
    if (k < 1 || k > n) {
        snprintf(msg, sizeof(msg), "ffs: k=%lld must be within 1..n (n=%lld)",
                 (long long) k, (long long) n);
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    st->k = (uint32_t) k;
    if (tg_ffs_answer_opts(req, &st->opts) != 0) {
        return -EINVAL;
    }
    st->n = (uint32_t) n;

    for (i = 0; i < st->n; i++) {
        tg_trace_spec_t  spec = { 0 };

        spec.temperature = -1;
        st->slots[i].order = -1;
        st->slots[i].trace = api->trace_start(req, &spec);
        if (st->slots[i].trace == NULL) {
            /* Fewer voters is still an answer; only none is an error. */
            why = api->last_error(req);
            api->log(req, TG_LOG_WARN, "ffs: trace %u of %u "
                     "not started: %s", i, st->n, why ? why : "unknown");
            continue;
        }
        st->slots[i].running = 1;
        st->running++;
    }
    if (st->running == 0) {
        st->answered = 1;
        api->fail(req, 502, "backend_error",
                  why != NULL && *why != '\0' ? why : "no trace started");
        return -EIO;
    }
    return 0;
}


/* The answer format from the options; fails the request on a bad bench. */
static int
tg_ffs_answer_opts(tg_req_t *req, tg_answer_opts_t *opts)
{
    const tg_host_api_t  *api = tg_ffs_api;
    const char           *bench = api->opt_str(req, "bench");
    char                  msg[320];

    tg_answer_opts_default(opts);
    if (api->opt_bool(req, "reasoning")) {
        opts->flags |= TG_ANSWER_F_REASONING;
    }
    if (bench != NULL && *bench != '\0'
        && tg_answer_opts_for_bench(bench, opts) != 0)
    {
        /* A misspelt bench would silently change what counts as an
         * answer, and with it the vote. */
        snprintf(msg, sizeof(msg), "ffs: unknown bench \"%.256s\"",
                 bench);
        api->fail(req, 400, "invalid_request_error", msg);
        return -EINVAL;
    }
    return 0;
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
    const tg_host_api_t  *api = tg_ffs_api;
    tg_ffs_t             *st = api->state(req);
    tg_ffs_slot_t        *slot = NULL;
    tg_trace_info_t       ti;
    tg_ffs_tally_t        ty;
    uint32_t              i;

    if (st->answered) {
        return;
    }
    for (i = 0; i < st->n; i++) {
        if (st->slots[i].trace == t && st->slots[i].running) {
            slot = &st->slots[i];
            break;
        }
    }
    if (slot == NULL) {
        return;
    }
    slot->running = 0;
    slot->order = (int32_t) st->ended;
    st->by_order[st->ended++] = (int32_t) i;
    st->running--;

    if (e->state == TG_TRACE_DONE) {
        slot->done = 1;
        if (api->trace_info(t, &ti) == 0
            && tg_ffs_extract(&ti, &st->opts, slot->answer) > 0)
        {
            slot->has_answer = 1;
            slot->qualified = e->finish_reason != NULL
                              && strcmp(e->finish_reason, "stop") == 0;
            st->qualified += slot->qualified;
        }
    }

    if (st->qualified == st->k) {
        tg_ffs_tally(st, 1, &ty);
        tg_ffs_answer(req, st, &ty, tg_ffs_leader(&ty), NULL);
    } else if (st->running == 0) {
        tg_ffs_tally(st, 0, &ty);
        tg_ffs_answer(req, st, &ty, tg_ffs_leader(&ty),
                      ty.ngroups > 0 ? "vote" : "first_finished");
    }
}


/*
 * The final answer of a trace, by answer.h's rules applied to
 * reasoning + "</think>" + content, without building that text: the last
 * fitting box anywhere (the content's come last), else a phrase in the
 * content, which is all final answer.
 */
static int
tg_ffs_extract(const tg_trace_info_t *ti, const tg_answer_opts_t *opts,
    char *out)
{
    tg_answer_opts_t  o = *opts;
    int               r = 0;

    if (ti->reasoning_len == 0) {
        if (ti->content_len == 0) {
            return 0;
        }
        return tg_answer_extract_opts(ti->content, ti->content_len, &o, out,
                                      TG_ANSWER_MAX);
    }
    o.flags |= TG_ANSWER_F_BOXED_ONLY;
    if (ti->content_len > 0) {
        r = tg_answer_extract_opts(ti->content, ti->content_len, &o, out,
                                   TG_ANSWER_MAX);
    }
    if (r == 0) {
        r = tg_answer_extract_opts(ti->reasoning, ti->reasoning_len, &o, out,
                                   TG_ANSWER_MAX);
    }
    if (r == 0 && ti->content_len > 0) {
        o.flags &= ~(TG_ANSWER_F_BOXED_ONLY | TG_ANSWER_F_REASONING);
        r = tg_answer_extract_opts(ti->content, ti->content_len, &o, out,
                                   TG_ANSWER_MAX);
    }
    return r;
}


/* Votes of the qualified finishers, or of every trace with an answer. */
static void
tg_ffs_tally(const tg_ffs_t *st, int qualified_only, tg_ffs_tally_t *ty)
{
    uint32_t  i, g;

    ty->ngroups = 0;
    for (i = 0; i < st->ended; i++) {
        const tg_ffs_slot_t  *s = &st->slots[st->by_order[i]];

        if (!s->has_answer || (qualified_only && !s->qualified)) {
            continue;
        }
        for (g = 0; g < ty->ngroups; g++) {
            if (tg_answer_equal(st->slots[ty->rep[g]].answer, s->answer)) {
                ty->count[g]++;
                break;
            }
        }
        if (g == ty->ngroups) {
            ty->rep[g] = st->by_order[i];
            ty->count[g] = 1;
            ty->ngroups++;
        }
    }
}


/* Most votes; ties to the lowest group, whose first voter finished first.
 * -1 when nobody voted. */
static int
tg_ffs_leader(const tg_ffs_tally_t *ty)
{
    uint32_t  g;
    int       lead = -1;

    for (g = 0; g < ty->ngroups; g++) {
        if (lead < 0 || ty->count[g] > ty->count[lead]) {
            lead = (int) g;
        }
    }
    return lead;
}


static void
tg_ffs_answer(tg_req_t *req, tg_ffs_t *st, const tg_ffs_tally_t *ty,
    int lead, const char *fallback)
{
    const tg_host_api_t  *api = tg_ffs_api;
    const char           *votes, *why;
    tg_trace_t           *winner = NULL;
    tg_trace_info_t       ti;
    uint32_t              i;
    char                  msg[96];

    st->answered = 1;
    for (i = 0; i < st->n; i++) {
        if (st->slots[i].running) {
            api->trace_cancel(req, st->slots[i].trace);
            st->slots[i].running = 0;
        }
    }

    /* The trace to return: the leader's first voter, else the first trace
     * that ended DONE.  The rest are cancelled first, so that the host
     * stops them before anything else happens. */
    if (lead >= 0) {
        winner = st->slots[ty->rep[lead]].trace;
    } else {
        for (i = 0; i < st->ended; i++) {
            if (st->slots[st->by_order[i]].done) {
                winner = st->slots[st->by_order[i]].trace;
                break;
            }
        }
    }
    if (winner == NULL) {
        snprintf(msg, sizeof(msg), "ffs: all %u traces failed",
                 st->n);
        api->fail(req, 502, "backend_error", msg);
        return;
    }

    votes = tg_ffs_votes_json(req, st, ty);
    if (votes != NULL) {
        api->summary_json(req, "votes", votes);
    }
    if (lead >= 0) {
        api->summary_str(req, "answer", st->slots[ty->rep[lead]].answer);
    } else {
        api->summary_json(req, "answer", "null");
    }
    if (fallback != NULL) {
        api->summary_str(req, "fallback", fallback);
    }
    if (api->trace_info(winner, &ti) == 0) {
        api->summary_int(req, "winner", ti.index);
    }
    if (api->finish_trace(req, winner) != 0) {
        why = api->last_error(req);
        api->fail(req, 502, "backend_error",
                  why != NULL && *why != '\0' ? why : "cannot return a trace");
    }
}


/* {"answer": votes, ...} in the arena; NULL when out of memory. */
static const char *
tg_ffs_votes_json(tg_req_t *req, const tg_ffs_t *st, const tg_ffs_tally_t *ty)
{
    static const char  hex[] = "0123456789abcdef";
    size_t             size = 3;
    uint32_t           g;
    char              *buf, *p;

    for (g = 0; g < ty->ngroups; g++) {
        /* Worst case every byte becomes \u00XX; quotes, colon, comma and
         * up to 10 digits. */
        size += 6 * strlen(st->slots[ty->rep[g]].answer) + 14;
    }
    buf = tg_ffs_api->alloc(req, size);
    if (buf == NULL) {
        tg_ffs_api->log(req, TG_LOG_ERROR, "ffs: out of memory "
                       "for the votes summary");
        return NULL;
    }
    p = buf;
    *p++ = '{';
    for (g = 0; g < ty->ngroups; g++) {
        const unsigned char  *a;

        if (g > 0) {
            *p++ = ',';
        }
        *p++ = '"';
        for (a = (const unsigned char *) st->slots[ty->rep[g]].answer;
             *a != '\0'; a++)
        {
            if (*a == '"' || *a == '\\') {
                *p++ = '\\';
                *p++ = (char) *a;
            } else if (*a < 0x20) {
                *p++ = '\\';
                *p++ = 'u';
                *p++ = '0';
                *p++ = '0';
                *p++ = hex[*a >> 4];
                *p++ = hex[*a & 0xf];
            } else {
                *p++ = (char) *a;
            }
        }
        p += sprintf(p, "\":%u", ty->count[g]);
    }
    *p++ = '}';
    *p = '\0';
    return buf;
}


static void
tg_ffs_on_cancel(tg_req_t *req)
{
    /* The client left: the host cancels every trace and ignores answers. */
    tg_ffs_t  *st = tg_ffs_api->state(req);

    st->answered = 1;
}


static void
tg_ffs_destroy(tg_req_t *req)
{
    /* Everything lives in the request's state block and arena. */
    (void) req;
}
