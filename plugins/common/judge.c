/*
 * thinkgate — P(Yes) of a Yes/No judge from first-token logprobs
 * (judge.h).
 */

#include <errno.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "common/judge.h"


int
tg_judge_token(const char *token, size_t len)
{
    const unsigned char  *p = (const unsigned char *) token;

    if (token == NULL) {
        return 0;
    }
    /* Leading white space and tokenizers' space markers: "\u2581" is
     * E2 96 81, "\u0120" (GPT-2's visible space) C4 A0. */
    for ( ;; ) {
        if (len > 0 && (p[0] == ' ' || p[0] == '\t' || p[0] == '\n')) {
            p++;
            len--;
        } else if (len >= 3 && p[0] == 0xe2 && p[1] == 0x96 && p[2] == 0x81) {
            p += 3;
            len -= 3;
        } else if (len >= 2 && p[0] == 0xc4 && p[1] == 0xa0) {
            p += 2;
            len -= 2;
        } else {
            break;
        }
    }
    if (len == 3 && strncasecmp((const char *) p, "yes", 3) == 0) {
        return 1;
    }
    if (len == 2 && strncasecmp((const char *) p, "no", 2) == 0) {
        return -1;
    }
    return 0;
}


int
tg_judge_p_yes(const tg_logprob_t *top, size_t n, tg_judge_t *out)
{
    double  max = -INFINITY, lp, yes = 0, no = 0;
    size_t  i, matched = 0;
    int     kind;

    if (out == NULL || (top == NULL && n > 0)) {
        return -EINVAL;
    }
    /* Summed relative to the largest matching logprob, so that two
     * answers both far down the list (-800 each) still compare. */
    for (i = 0; i < n; i++) {
        lp = top[i].logprob;
        if (!isnan(lp) && tg_judge_token(top[i].token, top[i].token_len)
            && fmin(lp, 0) > max)
        {
            max = fmin(lp, 0);
        }
    }
    for (i = 0; i < n; i++) {
        lp = top[i].logprob;
        kind = isnan(lp) ? 0 : tg_judge_token(top[i].token,
                                              top[i].token_len);
        if (kind == 0) {
            continue;
        }
        matched++;
        if (kind > 0) {
            yes += exp(fmin(lp, 0) - max);
        } else {
            no += exp(fmin(lp, 0) - max);
        }
    }

    out->matched = matched;
    if (matched == 0 || isinf(max)) {
        out->yes = out->no = 0;
        out->p_yes = NAN;
        return -ENOENT;
    }
    out->p_yes = yes / (yes + no);
    out->yes = yes * exp(max);
    out->no = no * exp(max);
    return 0;
}
