/*
 * thinkgate — Symbolic-MoE's per-request state, shared by its two files:
 * symbolic_moe.c (descriptor, profiles, annotation and keyword mapping),
 * symbolic_moe_experts.c (recruitment, the experts' traces, their
 * replacement, the vote and the summary) and symbolic_moe_pool.c (the
 * LLM annotator and aggregator: prompts, keyword parsing, fallbacks).
 */
#ifndef TG_SYMBOLIC_MOE_H
#define TG_SYMBOLIC_MOE_H

#include <stddef.h>
#include <stdint.h>

#include "thinkgate/plugin.h"
#include "common/answer.h"
#include "common/skills.h"
#include "common/vote.h"

#define TG_MOE_ENV           "THINKGATE_MOE_PROFILES"
#define TG_MOE_MAX_PROFILES  8
#define TG_MOE_MAX_EXPERTS   16
#define TG_MOE_MAX_TRACES    64
#define TG_MOE_MAX_MODELS    32
#define TG_MOE_MAX_BACKENDS  64
#define TG_MOE_KEYWORD_MAX   48     /* bytes of one pool-written keyword */
#define TG_MOE_RATIONALE_MAX 400    /* bytes of an expert's answer text the
                                       aggregator reads */

typedef struct {
    const char  *name;          /* arena copy */
    int          model;         /* index into models */
    uint32_t     in_flight;     /* as pool_backends said, plus ours */
    uint8_t      dead;          /* a trace failed or was refused there */
} tg_moe_backend_t;

typedef struct {
    int          model;         /* index into models */
    int          replaced;      /* model it replaced; -1: none */
    uint32_t     traces;        /* traces started for it */
    uint32_t     failed;        /* of those, failed or refused */
} tg_moe_expert_t;

typedef struct {
    tg_trace_t  *trace;
    int          expert;
    int          backend;
    uint8_t      running;
    uint8_t      done;
    uint8_t      has_answer;
    char         answer[TG_ANSWER_MAX];
    char        *rationale;     /* arena: the tail of its answer text */
} tg_moe_trace_t;

typedef struct {
    const tg_skills_profile_t  *profile;
    tg_answer_opts_t            opts;
    uint32_t                    k;
    uint32_t                    samples;
    double                      temperature;
    double                      min_sim;
    uint64_t                    rng;
    int                         has_seed;
    int64_t                     client_seed;
    const char                 *score_kind;     /* "embed", "lexical" */
    int                         answered;

    /* annotator=POOL: the aux request, and why the lexicon stood in. */
    const char                 *annotator;      /* NULL: the lexicon */
    tg_aux_t                   *annotating;
    tg_timer_t                 *annotate_timer;
    const char                 *annotator_fallback;
    size_t                      kw_dropped;     /* pool keywords over the
                                                   limit, left out */

    /* aggregator=POOL: its live trace, and the vote it stands in for. */
    const char                 *aggregator;     /* NULL: the vote */
    int32_t                     aggregator_tokens;
    const char                 *aggregator_fallback;
    tg_trace_t                 *agg;
    tg_trace_t                 *vote_winner;
    int                         vote_lead;
    tg_vote_t                   vote;

    size_t                      nkw;
    const char                 *kw[TG_SKILLS_MAX_KEYWORDS];
    int                         mapped[TG_SKILLS_MAX_KEYWORDS];

    size_t                      nmodels;
    const char                 *models[TG_MOE_MAX_MODELS];
    double                      weights[TG_MOE_MAX_MODELS];
    uint32_t                    seq[TG_MOE_MAX_MODELS];  /* seeds used */
    int                         scored;     /* weights from skills */
    size_t                      nbackends;
    tg_moe_backend_t            backends[TG_MOE_MAX_BACKENDS];

    size_t                      nexperts;
    tg_moe_expert_t             experts[TG_MOE_MAX_EXPERTS];
    size_t                      ntraces;
    uint32_t                    running;
    uint32_t                    unreplaced;  /* failures nobody took over */
    tg_moe_trace_t              traces[TG_MOE_MAX_TRACES];
} tg_moe_t;

extern const tg_host_api_t  *tg_moe_api;

/* Weights, the draw, the experts' traces; fails the request when none
 * starts.  0 or a negative code. */
int tg_moe_recruit(tg_moe_t *st, tg_req_t *req);

/* A trace's end: its answer, a replacement when it failed, the vote once
 * none runs. */
void tg_moe_trace_ended(tg_moe_t *st, tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);

/* Annotated (by the pool or the lexicon) and mapped: recruit.  Defined
 * in symbolic_moe.c. */
int tg_moe_annotated(tg_moe_t *st, tg_req_t *req);

/* ---- symbolic_moe_pool.c ---- */

/* The annotator's messages (a JSON array) for problem, in the arena;
 * NULL when out of memory. */
char *tg_moe_annotate_prompt(tg_req_t *req, const char *problem,
    size_t len);

/*
 * The keywords in an annotator's reply: text after the last </think>,
 * split at commas, semicolons and line ends; list marks, a "Keywords:"
 * lead, quotes and a final period stripped; lower-cased.  A keyword is
 * 1 to 4 words, 2 to TG_MOE_KEYWORD_MAX - 1 bytes, with a letter and no
 * math or markup ('\\', '{', '}', '$', '=', '<', '>', '|', '#', '^');
 * others are dropped, as are repeats.  Up to max go to out[i] (each
 * TG_MOE_KEYWORD_MAX bytes); *over (may be NULL) counts the good ones
 * past max.  Returns how many (0: nothing usable).
 */
size_t tg_moe_parse_keywords(const char *text, size_t len,
    char (*out)[TG_MOE_KEYWORD_MAX], size_t max, size_t *over);

/* Asks the annotator pool for the problem's keywords; 0, or a negative
 * code when the request cannot start it (the caller falls back). */
int tg_moe_annotate_start(tg_moe_t *st, tg_req_t *req);

/* The annotator did not reply in annotator_timeout_ms: cancelled, the
 * lexicon annotates. */
void tg_moe_annotate_timeout(tg_moe_t *st, tg_req_t *req);

/* The annotator's reply: keywords, or the lexicon with the reason. */
void tg_moe_annotate_result(tg_moe_t *st, tg_req_t *req,
    const tg_aux_result_t *r);

/* The aggregator's messages (a JSON array): the problem and each
 * expert's answer and rationale, in the arena; NULL: out of memory. */
char *tg_moe_aggregate_prompt(const tg_moe_t *st, tg_req_t *req);

/* Starts the aggregator's live trace: 0, or negative (the caller votes). */
int tg_moe_aggregate_start(tg_moe_t *st, tg_req_t *req);

/* The aggregator's trace ended: its answer, or the vote's. */
void tg_moe_aggregate_ended(tg_moe_t *st, tg_req_t *req,
    const tg_trace_end_t *e);

/* Answers with the vote (finish_trace of its winner), the summary
 * written; used by the vote and by the aggregator's fallback. */
void tg_moe_answer_vote(tg_moe_t *st, tg_req_t *req);

/* The summary the vote and the aggregator share (keywords, weights,
 * experts, votes; annotator and aggregator fields). */
void tg_moe_summary(tg_moe_t *st, tg_req_t *req);

#endif /* TG_SYMBOLIC_MOE_H */
