/*
 * thinkgate — TrimR's internals, shared by trimr.c (traces, triggers, the
 * cut, the vote), trimr_watch.c (what a trace's thinking is doing:
 * thoughts and repetition) and trimr_verify.c (what each thought
 * answered: the rule, probe and llm verifiers).  Not a public header:
 * they are compiled into trimr.so only.
 */
#ifndef TG_TRIMR_H
#define TG_TRIMR_H

#include <stddef.h>
#include <stdint.h>

#include "thinkgate/plugin.h"
#include "common/answer.h"
#include "common/samples.h"
#include "common/thoughts.h"

/* Thoughts of one trace whose verdicts may be outstanding at once; a
 * newer thought that finds them all taken gives up the oldest (its call
 * is cancelled and it counts as no answer), so a slow verifier costs
 * verdicts, never memory or the stream. */
#define TG_TRIMR_RING        8
/* What the llm verifier reads of a thought: its last bytes, where the
 * paper finds the intermediate answer. */
#define TG_TRIMR_TAIL        480
/* Largest repeat_ngram; the rolling hash keeps that many word hashes. */
#define TG_TRIMR_NGRAM_MAX   256
/* n-gram hashes one trace remembers (an open-addressing table): past
 * three quarters of it, n-grams are still looked up but no longer added. */
#define TG_TRIMR_SEEN        8192

enum { TG_TRIMR_RULE = 0, TG_TRIMR_PROBE, TG_TRIMR_LLM };

/* Why a trace was cut; TG_TRIMR_NONE while it was not. */
enum {
    TG_TRIMR_NONE = 0,
    TG_TRIMR_OVER,          /* m consecutive equal answers */
    TG_TRIMR_UNDER,         /* past the budget share or max_thoughts */
    TG_TRIMR_REPEAT,        /* a passage repeated word for word */
    TG_TRIMR_NTRIGGERS
};

/* A trace's place in its life. */
enum {
    TG_TRIMR_THINKING = 0,  /* watched; may be cut */
    TG_TRIMR_ANSWERING,     /* its thinking ended on its own */
    TG_TRIMR_CUT,           /* cut: its continuation runs */
    TG_TRIMR_ENDED
};

/* A thought's verdict. */
enum {
    TG_TRIMR_V_FREE = 0,    /* ring slot unused */
    TG_TRIMR_V_PENDING,     /* stage 1 (or the probe) outstanding */
    TG_TRIMR_V_NONE,        /* no answer: skipped by the streak */
    TG_TRIMR_V_ANSWER,      /* an answer (text below) */
    TG_TRIMR_V_COMPARING    /* llm: stage 2 against the reference */
};

typedef struct tg_trimr_s  tg_trimr_t;

/* One verifier call in flight, in the arena: the aux data pointer. */
typedef struct {
    uint32_t    trace;      /* slot index */
    uint32_t    thought;    /* the thought it judges */
    uint32_t    epoch;      /* the trace's epoch when it started */
    uint8_t     stage;      /* 1 or 2 (llm), 0 otherwise */
    uint8_t     rounds;     /* probe: calls so far for this thought */
    const char *prompt;     /* probe: the prompt sent, in the arena */
    size_t      prompt_len;
    size_t      box;        /* probe: where the box's text starts in it */
} tg_trimr_call_t;

typedef struct {
    uint32_t    thought;    /* thought number */
    uint8_t     verdict;    /* TG_TRIMR_V_* */
    uint8_t     equal;      /* llm stage 2: 1 equal, 0 not */
    tg_aux_t   *aux;        /* the call in flight, or NULL */
    size_t      len;
    char        text[TG_TRIMR_TAIL];    /* answer, or (llm) the tail */
} tg_trimr_slot_t;

/* The watcher: thoughts and repetition of one trace's thinking. */
typedef struct {
    tg_thought_splitter_t  split;
    size_t                 thought_start;   /* offset of the current one */
    uint32_t               ngram;           /* 0: repetition off */
    uint64_t               word_hash;       /* the word being read */
    int                    in_word;
    uint64_t               words[TG_TRIMR_NGRAM_MAX];  /* ring */
    uint64_t               nwords;
    uint64_t               gram;            /* hash of the last ngram */
    uint64_t               pow;             /* base^(ngram - 1) */
    uint32_t               run;             /* n-grams seen before, in a row */
    uint32_t               nseen;
    uint64_t              *seen;            /* arena, TG_TRIMR_SEEN */
    int                    repeated;        /* the run reached ngram */
} tg_trimr_watch_t;

/* Called by the watcher for each finished thought, [start, end) of the
 * thinking stream. */
typedef void (*tg_trimr_thought_cb)(void *data, uint32_t thought,
    size_t start, size_t end);

typedef struct {
    tg_trimr_t        *st;
    uint32_t           index;       /* slot in st->tr */
    uint8_t            phase;       /* TG_TRIMR_THINKING, ... */
    uint8_t            trigger;     /* TG_TRIMR_NONE, ... */
    uint32_t           epoch;       /* bumped at the cut: calls before it
                                       are stale */
    tg_trimr_watch_t   watch;
    uint32_t           thoughts;    /* finished thoughts */
    uint32_t           next_eval;   /* first thought not yet evaluated */
    uint32_t           streak;      /* consecutive equal answers */
    size_t             ref_len;
    char               ref[TG_TRIMR_TAIL];  /* the streak's answer */
    tg_trimr_slot_t    ring[TG_TRIMR_RING];
    uint32_t           cut_tokens;
    size_t             src_len;     /* bytes of thinking fed */
} tg_trimr_trace_t;

struct tg_trimr_s {
    const tg_host_api_t  *api;
    tg_req_t             *req;
    tg_samples_t          samples;
    tg_trimr_trace_t     *tr;           /* samples.n of them, arena */
    int                   verifier;     /* TG_TRIMR_RULE, ... */
    const char           *pool;         /* verifier and probe pool */
    uint32_t              m;
    double                budget_share;
    uint32_t              budget;       /* tokens; 0: unknown */
    uint32_t              max_thoughts;
    uint32_t              ngram;
    uint32_t              probe_tokens;
    char                 *guide;        /* "</think>" + the guide */
    size_t                guide_len;
    int                   completions;  /* thinking is in content */
    tg_answer_opts_t      thought_opts; /* phrases count in a thought */
    /* Summary figures. */
    int64_t               thoughts;
    int64_t               calls;
    int64_t               call_failures;
    int64_t               call_tokens;
    int64_t               verdicts;     /* replies read (Yes/No or box) */
    int64_t               late;         /* verdicts dropped as stale */
    int64_t               cuts;
    int64_t               no_answer_cuts;
    int64_t               cut_tokens;
    int64_t               triggers[TG_TRIMR_NTRIGGERS];
};

/* trimr_watch.c */
int tg_trimr_watch_init(const tg_host_api_t *api, tg_req_t *req,
    tg_trimr_watch_t *w, uint32_t ngram);
/* Feeds thinking; cb sees each thought that ended.  Returns 1 when a
 * repetition was found (the caller cuts), else 0. */
int tg_trimr_watch_feed(tg_trimr_watch_t *w, const char *p, size_t len,
    tg_trimr_thought_cb cb, void *data);
/* 1 once "</think>" was fed. */
int tg_trimr_watch_ended(const tg_trimr_watch_t *w);

/* trimr_verify.c */
/* Judges thought k of trace tr, [start, end) of its thinking text. */
void tg_trimr_verify(tg_trimr_t *st, tg_trimr_trace_t *tr, uint32_t k,
    const char *text, size_t start, size_t end);
void tg_trimr_verify_on_aux(tg_trimr_t *st, tg_aux_t *a,
    const tg_aux_result_t *r);
/* Cancels every call of tr still outstanding and empties its ring. */
void tg_trimr_verify_stop(tg_trimr_t *st, tg_trimr_trace_t *tr);
/* The answer read from a probe's reply ("" when none): the box the
 * probe opened, closed by the reply, or, when stopped (the backend ended
 * it at the stop sequence "}", which it leaves out), by that stop.
 * -EAGAIN: stopped inside a nested brace ("\frac{1"), the box still
 * open. */
int tg_trimr_probe_answer(const char *reply, size_t len, int stopped,
    const tg_answer_opts_t *opts, char *out, size_t out_size);

/* trimr.c: the streak of tr reached m (overthinking). */
void tg_trimr_converged(tg_trimr_t *st, tg_trimr_trace_t *tr);

#endif /* TG_TRIMR_H */
