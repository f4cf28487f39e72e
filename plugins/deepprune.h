/*
 * thinkgate — DeepPrune's internals, shared by deepprune.c (traces,
 * clustering rounds, the vote) and deepprune_judge.c (the judges).  Not a
 * public header: with deepprune_summary.c (the summary), they are compiled
 * into deepprune.so only.
 */
#ifndef TG_DEEPPRUNE_H
#define TG_DEEPPRUNE_H

#include <stddef.h>
#include <stdint.h>

#include "thinkgate/plugin.h"
#include "common/cluster.h"
#include "common/samples.h"

/* What a trace is to the clustering. */
enum {
    TG_DP_NEW = 0,      /* below prefix_tokens (or ended before) */
    TG_DP_QUEUED,       /* reached it; waits for the next round */
    TG_DP_JUDGING,      /* in the round in flight */
    TG_DP_PLACED,       /* in a cluster; runs only as representative */
    TG_DP_PRUNED,       /* joined a cluster and was cancelled */
    TG_DP_UNJUDGED      /* no verdict (judge failed, or it ended
                           meanwhile): kept, votes on its own */
};

enum { TG_DP_LEXICAL = 0, TG_DP_EMBED, TG_DP_LLM, TG_DP_POOL };

/* The llm judge compares a trace with at most this many members of each
 * cluster (the first ones): one aux call per pair would otherwise grow
 * with the square of n; the mean of a few is the cluster's estimate. */
#define TG_DP_LLM_MEMBERS  4

typedef struct {
    uint8_t      phase;
    uint32_t     pruned_at;     /* tokens when cancelled */
    const char  *prefix;        /* arena copy, judged text */
    size_t       prefix_len;
} tg_dp_trace_t;

typedef struct tg_dp_round_s  tg_dp_round_t;

/* One llm judge call: items a and b (rows of the round). */
typedef struct {
    tg_dp_round_t  *round;
    uint32_t        a, b;
    tg_aux_t       *aux;        /* NULL once answered or cancelled */
} tg_dp_pair_t;

/*
 * One judging round: the members it compares against, then the traces to
 * place, in the order they reached prefix_tokens.  sim[i * nitems + j]
 * is the judge's score of rows i and j, NaN without a verdict.  Rounds
 * live in the arena, so a late reply to a round given up on still finds
 * it (and its id tells it is stale).
 */
struct tg_dp_round_s {
    const tg_host_api_t  *api;      /* for the score callback */
    uint32_t       id;
    uint32_t       nitems;
    uint32_t       items[TG_SAMPLES_MAX];   /* trace index of each row */
    int32_t        row[TG_SAMPLES_MAX];     /* trace index -> row, -1 */
    uint32_t       first_pending;           /* rows from here are placed */
    float         *sim;
    tg_dp_pair_t  *pairs;
    uint32_t       npairs;
    uint32_t       outstanding;             /* llm calls not answered */
    tg_aux_t      *aux;                     /* the pool judge's call */
    uint64_t       started_ms;
};

typedef struct {
    tg_samples_t    samples;
    tg_cluster_t    clusters;
    tg_dp_trace_t   tr[TG_SAMPLES_MAX];
    int             judge;          /* TG_DP_* */
    int             representative; /* vote=representative */
    int             early_stop;
    uint32_t        prefix_tokens;
    double          tau;
    const char     *judge_pool;
    uint64_t        timeout_ms;
    uint32_t        queue[TG_SAMPLES_MAX];  /* TG_DP_QUEUED, in order */
    uint32_t        nqueue;
    tg_dp_round_t  *round;          /* in flight, or NULL */
    uint32_t        round_id;
    tg_timer_t     *kick;           /* starts a round after this turn */
    tg_timer_t     *timeout;        /* gives the round in flight up */
    int64_t         judge_calls;
    int64_t         judge_failures;
    int64_t         judge_ms;
    int             degraded;
} tg_dp_t;

/* deepprune_judge.c: starts the judge calls of round r (0), or returns
 * a negative code with nothing left running.  Calls that cannot start
 * count as judge failures.  The replies end in tg_dp_round_done(). */
int tg_dp_judge_start(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st,
    tg_dp_round_t *r);
/* Cancels the round's calls still outstanding and returns how many; each
 * counts as a judge failure when failed is set (a timeout), not when the
 * request is answered first. */
uint32_t tg_dp_judge_cancel(const tg_host_api_t *api, tg_req_t *req,
    tg_dp_t *st, tg_dp_round_t *r, int failed);
void tg_dp_judge_on_aux(const tg_host_api_t *api, tg_req_t *req,
    tg_dp_t *st, tg_aux_t *a, const tg_aux_result_t *res);

/* deepprune.c: every verdict of r is in (NaN where none came). */
void tg_dp_round_done(tg_req_t *req, tg_dp_round_t *r);

/* deepprune_summary.c: the summary entries, written before the answer. */
void tg_dp_summary(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st);

/* s as a JSON string literal, quotes included, in the arena; NULL when
 * out of memory. */
char *tg_dp_json_str(const tg_host_api_t *api, tg_req_t *req, const char *s,
    size_t len);

#endif /* TG_DEEPPRUNE_H */
