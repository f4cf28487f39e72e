/*
 * thinkgate — Symbolic-MoE's per-request state, shared by its two files:
 * symbolic_moe.c (descriptor, profiles, annotation and keyword mapping)
 * and symbolic_moe_experts.c (recruitment, the experts' traces, their
 * replacement, the vote and the summary).
 */
#ifndef TG_SYMBOLIC_MOE_H
#define TG_SYMBOLIC_MOE_H

#include <stddef.h>
#include <stdint.h>

#include "thinkgate/plugin.h"
#include "common/answer.h"
#include "common/skills.h"

#define TG_MOE_ENV           "THINKGATE_MOE_PROFILES"
#define TG_MOE_MAX_PROFILES  8
#define TG_MOE_MAX_EXPERTS   16
#define TG_MOE_MAX_TRACES    64
#define TG_MOE_MAX_MODELS    32
#define TG_MOE_MAX_BACKENDS  64

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

#endif /* TG_SYMBOLIC_MOE_H */
