/*
 * thinkgate — a Yes/No judge read from a model's first-token logprobs.
 *
 * A judge model is asked a question whose answer is "Yes" or "No" (an aux
 * chat request with top_logprobs, tg_aux_result_t.top).  Its first token
 * says what it thinks; how sure it is lies in the probability mass on
 * the two answers, which sampling one token would throw away.  The mass
 * of every variant a tokenizer may produce is summed: any letter case,
 * with or without a leading space, or a tokenizer's space marker
 * (SentencePiece U+2581, byte-level BPE U+0120) - " yes", "YES", "Yes",
 * "\u2581No" - and P(Yes) = yes / (yes + no).
 *
 * Nothing here allocates, keeps state or depends on the engine.
 */
#ifndef TG_JUDGE_H
#define TG_JUDGE_H

#include <stddef.h>

#include "thinkgate/plugin.h"

typedef struct {
    double  p_yes;      /* yes / (yes + no) */
    double  yes;        /* probability mass on Yes variants */
    double  no;         /* on No variants */
    size_t  matched;    /* entries that were one or the other */
} tg_judge_t;

/*
 * Reads n alternatives of the first token into out.  Returns 0; -ENOENT
 * when no entry is a Yes or a No (the model answered something else, or
 * the backend sent no logprobs: n == 0), out->p_yes then NaN - never a
 * silent 0.5; -EINVAL for NULL arguments.  Entries whose logprob is not
 * a number are skipped; a logprob above 0 counts as 0 (probability 1).
 */
int tg_judge_p_yes(const tg_logprob_t *top, size_t n, tg_judge_t *out);

/* 1 when token (len bytes) is a Yes variant, -1 a No variant, else 0. */
int tg_judge_token(const char *token, size_t len);

#endif /* TG_JUDGE_H */
