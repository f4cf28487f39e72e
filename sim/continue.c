/*
 * Continuations: the reply to a request that asks the model to go on from
 * a text it is shown (chat continue_final_message, or a completions prompt
 * with text after the recorded problem).  The reply never replays a
 * recorded sample: it states the last answer the text so far states, or,
 * with --converge F, the sample's own recorded final answer once the text
 * covers the share F of that sample's thinking (a SIMULATED model that has
 * made up its mind after F of its thinking).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define TG_SIM_NO_ANSWER "I have not reached a final answer yet."
#define TG_SIM_TAG_MAX 64

static size_t tg_sim_markup_len(const char *s, const char *end);
static int tg_sim_open_box(const char *text, size_t len);

/*
 * Template markup that a completions prompt may carry between the problem
 * and the model's text: a special token ("<|im_start|>", "<｜Assistant｜>",
 * "<|start|>") with a role word written right after it ("assistant",
 * "model"), or the opening "<think>".  "</think>" is not markup: closing
 * the thinking is the model's text (a guide starts with it).  Returns the
 * markup's length at s, 0 when s does not start one.
 */
static size_t
tg_sim_markup_len(const char *s, const char *end)
{
    const char *q, *close;
    size_t n = (size_t) (end - s);

    if (n >= 7 && memcmp(s, "<think>", 7) == 0)
        return 7;
    if (n < 4 || s[0] != '<')
        return 0;
    if (s[1] == '|')
        close = "|>";
    else if (n >= 7 && memcmp(s + 1, "\xef\xbd\x9c", 3) == 0)
        close = "\xef\xbd\x9c>";   /* DeepSeek's full-width bar */
    else
        return 0;
    q = memmem(s + 2, n - 2 > TG_SIM_TAG_MAX ? TG_SIM_TAG_MAX : n - 2,
               close, strlen(close));
    if (q == NULL)
        return 0;
    q += strlen(close);
    while (q < end && ((*q >= 'a' && *q <= 'z') || (*q >= 'A' && *q <= 'Z')
                       || *q == '_'))
        q++;
    return (size_t) (q - s);
}

int
tg_sim_continue_wanted(const char *text, size_t len)
{
    const char *p = text, *end = text + len, *from = text;

    /* What follows the last markup is the model's; an instruction written
     * between the problem and the assistant's turn is not. */
    while (p < end) {
        size_t m = tg_sim_markup_len(p, end);

        if (m > 0) {
            p += m;
            from = p;
        } else {
            p++;
        }
    }
    for (p = from; p < end; p++) {
        if (*p != ' ' && *p != '\n' && *p != '\t' && *p != '\r')
            return 1;
    }
    return 0;
}

/* Whether text ends inside a \boxed{ that only white space follows: the
 * caller (a probe) opened the box and wants its content and "}". */
static int
tg_sim_open_box(const char *text, size_t len)
{
    while (len > 0 && (text[len - 1] == ' ' || text[len - 1] == '\n'
                       || text[len - 1] == '\t' || text[len - 1] == '\r'))
        len--;
    return len >= 7 && memcmp(text + len - 7, "\\boxed{", 7) == 0;
}

size_t
tg_sim_sample_think_len(const tg_sim_sample_t *s)
{
    const char *t = memmem(s->output, s->output_len, TG_SIM_THINK_END,
                           TG_SIM_THINK_END_LEN);

    return t != NULL ? (size_t) (t - s->output) : s->output_len;
}

char *
tg_sim_continue_reply(tg_sim_problem_t *prob, const char *text, size_t len,
                      double converge, long long seed,
                      tg_sim_continue_info_t *info)
{
    tg_sim_sample_t *s = NULL;
    const char *ans = NULL;
    char buf[1024], *out;
    size_t plen = 0, n = 0, cap;
    int open = tg_sim_open_box(text, len);

    memset(info, 0, sizeof(*info));
    if (prob != NULL)
        s = tg_sim_traces_match_prefix(prob, text, len, &plen);
    if (s != NULL && seed >= 0) {
        /* The request's own trace, when it is as long a match: a gateway
         * continues trace i with the seed that replayed it. */
        tg_sim_sample_t *own = &prob->samples[(uint64_t) seed % prob->count];

        if (own != s && tg_sim_sample_common(own, text, len) == plen)
            s = own;
    }
    if (s != NULL) {
        size_t think = tg_sim_sample_think_len(s);

        info->matched = 1;
        info->prefix_len = plen;
        info->coverage = think > 0 ? (double) plen / (double) think : 1.0;
        if (converge > 0 && info->coverage >= converge) {
            /* The recorded final answer, whatever the prefix states. */
            info->converged = 1;
            ans = s->answer;
            n = ans != NULL ? strlen(ans) : 0;
        } else {
            /* Only the part that matches a recording counts as what the
             * model said. */
            n = tg_sim_extract_answer(s->output, plen, buf, sizeof(buf));
            ans = buf;
        }
    } else {
        /* No recorded sample starts the text: the client's own text is
         * what the model said, never a replay. */
        n = tg_sim_extract_answer(text, len, buf, sizeof(buf));
        ans = buf;
    }
    info->open_box = open;
    info->answered = n > 0;
    cap = n + sizeof(TG_SIM_NO_ANSWER) + 16;
    out = malloc(cap);
    if (out == NULL)
        return NULL;
    if (open)
        /* An empty box states no answer, to the sim's rule and to the
         * plugins' extraction alike. */
        snprintf(out, cap, "%.*s}", (int) n, n > 0 ? ans : "");
    else if (n > 0)
        snprintf(out, cap, "\\boxed{%.*s}", (int) n, ans);
    else
        strcpy(out, TG_SIM_NO_ANSWER);
    return out;
}
