/*
 * thinkgate — n sampled traces that vote, shared by the strategies that
 * sample in parallel and answer with one of the samples (self-consistency,
 * FFS).
 *
 * The set starts n traces with the client's settings, records the order
 * in which they end and, for each that ends DONE, its final answer
 * (answer.h's rules over its thinking and content, in the format the
 * "bench" and "reasoning" options ask for).  The strategy decides when to
 * answer and with which vote; tg_samples_answer() then cancels the rest,
 * fills the summary and returns the chosen sample with finish_trace().
 *
 * The set lives in the plugin's per-request state (zeroed by the host)
 * and calls the host through the table given to tg_samples_init().  The
 * plugin's option table must hold "n" (INT), "bench" (STRING) and
 * "reasoning" (BOOL).  Functions that fail the request return a negative
 * code after calling api->fail(); messages start with the plugin's name.
 */
#ifndef TG_SAMPLES_H
#define TG_SAMPLES_H

#include <stddef.h>
#include <stdint.h>

#include "thinkgate/plugin.h"
#include "answer.h"
#include "vote.h"

/* Most traces one set samples. */
#define TG_SAMPLES_MAX  64

typedef struct {
    tg_trace_t  *trace;         /* NULL: never started */
    int32_t      order;         /* finish order; -1 until it ends */
    uint8_t      running;
    uint8_t      done;          /* ended DONE (not failed, not cancelled) */
    uint8_t      stop;          /* done with finish_reason "stop" */
    uint8_t      has_answer;
    char         answer[TG_ANSWER_MAX];     /* "" without one */
} tg_sample_t;

typedef struct {
    const tg_host_api_t  *api;
    const char           *name;     /* the plugin's, for messages */
    tg_answer_opts_t      opts;
    uint32_t              n;
    uint32_t              started;  /* slots asked for so far (0..n) */
    uint32_t              running;
    uint32_t              ended;
    int                   answered; /* finish or fail called, or client
                                       gone: no more callbacks matter */
    int32_t               by_order[TG_SAMPLES_MAX];  /* slots, finish order */
    tg_sample_t           slots[TG_SAMPLES_MAX];
} tg_samples_t;

/* For the plugin's load(): 0 when api is this ABI's and reaches every
 * entry the set calls, else -ENOTSUP with "NAME: host API table too old"
 * in err. */
int tg_samples_check_api(const tg_host_api_t *api, const char *name,
    char *err, size_t err_size);

/* Keeps api and name (a string that outlives the request) and reads the
 * "n" option; fails the request with 400 when it is out of 1..64. */
int tg_samples_init(tg_samples_t *s, const tg_host_api_t *api, tg_req_t *req,
    const char *name);

/* The answer format from the "bench" and "reasoning" options; fails the
 * request with 400 on an unknown bench. */
int tg_samples_answer_opts(tg_samples_t *s, tg_req_t *req);

/* Starts the n traces.  Fewer is fine; none fails the request with 502
 * and returns -EIO. */
int tg_samples_start(tg_samples_t *s, tg_req_t *req);

/* Starts the slots not asked for yet, in slot order, until `upto` (at
 * most n) have been: tg_samples_start() is upto = n.  A later call starts
 * more of them; the host numbers traces in start order, so slot i is
 * still the request's trace i.  The first call fails the request with
 * 502 and returns -EIO when none starts; a later one that starts none
 * returns 0 (the running ones still answer). */
int tg_samples_start_upto(tg_samples_t *s, tg_req_t *req, uint32_t upto);

/* Records the end of trace t and reads its answer.  The sample, or NULL
 * when the request is answered or t is not one of the running samples. */
tg_sample_t *tg_samples_end(tg_samples_t *s, tg_trace_t *t,
    const tg_trace_end_t *e);

/* The votes of every sample with an answer, or only of those that
 * stopped by themselves (stop_only), in finish order. */
void tg_samples_vote(const tg_samples_t *s, int stop_only, tg_vote_t *v);

/* The sample that voted first for group g of v. */
tg_sample_t *tg_samples_voter(tg_samples_t *s, const tg_vote_t *v, int g);

/* tg_samples_answer() flags. */
#define TG_SAMPLES_F_WINNER  0x1    /* put the winner's index in the
                                       summary ("winner") */

/*
 * Answers the request: cancels every running sample, then returns the
 * first voter of group lead of v, or without a leader (-1) the first
 * sample that ended DONE, with finish_trace(); 502 when every sample
 * failed.  The summary gets "votes" (v as JSON), "answer" (null without a
 * leader) and "fallback" when fallback is not NULL.
 */
void tg_samples_answer(tg_samples_t *s, tg_req_t *req, const tg_vote_t *v,
    int lead, const char *fallback, unsigned flags);

#endif /* TG_SAMPLES_H */
