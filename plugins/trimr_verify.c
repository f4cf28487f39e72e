/*
 * thinkgate — TrimR's verifiers: what each finished thought answered, and
 * whether the answers of consecutive thoughts agree (trimr.h).
 *
 *   rule   the answer the thought states (common/answer.h, phrases
 *          included: a thought is read on its own), at once;
 *   probe  the reasoning model is asked to conclude: a completions aux
 *          call whose prompt is the problem, the thinking up to the end
 *          of the thought and "... **Final Answer**\n\boxed{", for
 *          probe_tokens tokens; the box it closes is the answer
 *          (Dynasor-CoT's probe).  Where the host has aux_start_stop the
 *          call stops at "}" so that the model does not write on after
 *          the box; a stop that closed a nested brace ("\frac{1") is
 *          continued, the "}" put back, by up to TG_TRIMR_PROBE_ROUNDS
 *          calls in all (each a few tokens on a cached prefix);
 *   llm    a Yes/No model on verifier_pool, read from first-token
 *          logprobs (common/judge.h): stage 1 "does this thought end
 *          with a final answer?", and for a thought that does, stage 2
 *          "do these two thoughts reach the same answer?" against the
 *          streak's reference thought.  The "answer" compared is the
 *          thought's last TG_TRIMR_TAIL bytes, where the paper reads it.
 *
 * Calls run while the trace goes on streaming.  Verdicts are evaluated in
 * thought order whatever order they arrive in: the streak walks the ring
 * from next_eval and stops at the first thought still waiting.  A thought
 * without an answer is skipped (it neither extends nor breaks the
 * streak); an answer that differs from the reference starts a new streak
 * of 1.  A call that fails, or answers neither Yes nor No, is no answer
 * (stage 1, probe) or "different" (stage 2): a broken verifier never
 * cuts.  A verdict for a thought given up on, or for a trace that was cut
 * or ended meanwhile, is dropped and counted as late.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trimr.h"
#include "common/judge.h"

#define TG_TRIMR_PROBE_OPEN   "\n\n... **Final Answer**\n\\boxed{"
#define TG_TRIMR_TOP_LOGPROBS 5
#define TG_TRIMR_PROBE_ROUNDS 4

static void tg_trimr_eval(tg_trimr_t *st, tg_trimr_trace_t *tr);
static void tg_trimr_slot_free(tg_trimr_t *st, tg_trimr_slot_t *s);
static int tg_trimr_call(tg_trimr_t *st, tg_trimr_trace_t *tr,
    tg_trimr_slot_t *s, uint8_t stage, const tg_aux_spec_t *spec,
    const tg_trimr_call_t *probe);
static int tg_trimr_probe(tg_trimr_t *st, tg_trimr_trace_t *tr,
    tg_trimr_slot_t *s, const char *text, size_t end);
static int tg_trimr_probe_send(tg_trimr_t *st, tg_trimr_trace_t *tr,
    tg_trimr_slot_t *s, const char *prompt, size_t len, size_t box,
    uint8_t rounds);
static int tg_trimr_ask(tg_trimr_t *st, tg_trimr_trace_t *tr,
    tg_trimr_slot_t *s, uint8_t stage);
static char *tg_trimr_json_str(tg_trimr_t *st, char *out, const char *s,
    size_t len);
static int64_t tg_trimr_reply_tokens(const tg_aux_result_t *r);
static int tg_trimr_probe_reply(tg_trimr_t *st, tg_trimr_trace_t *tr,
    tg_trimr_slot_t *s, const tg_trimr_call_t *c,
    const tg_aux_result_t *r);


static void
tg_trimr_slot_free(tg_trimr_t *st, tg_trimr_slot_t *s)
{
    if (s->aux != NULL) {
        st->api->aux_cancel(st->req, s->aux);
    }
    memset(s, 0, sizeof(*s));
}


void
tg_trimr_verify_stop(tg_trimr_t *st, tg_trimr_trace_t *tr)
{
    size_t  i;

    for (i = 0; i < TG_TRIMR_RING; i++) {
        tg_trimr_slot_free(st, &tr->ring[i]);
    }
    tr->next_eval = tr->thoughts;
}


void
tg_trimr_verify(tg_trimr_t *st, tg_trimr_trace_t *tr, uint32_t k,
    const char *text, size_t start, size_t end)
{
    tg_trimr_slot_t  *s;
    size_t            from;
    int               n;

    if (k - tr->next_eval >= TG_TRIMR_RING) {
        /* The ring is full of outstanding thoughts: the oldest gives up
         * its call and counts as no answer, so the order holds. */
        s = &tr->ring[tr->next_eval % TG_TRIMR_RING];
        tg_trimr_slot_free(st, s);
        s->thought = tr->next_eval;
        s->verdict = TG_TRIMR_V_NONE;
        tg_trimr_eval(st, tr);
        if (tr->phase != TG_TRIMR_THINKING) {
            return;
        }
    }
    s = &tr->ring[k % TG_TRIMR_RING];
    tg_trimr_slot_free(st, s);
    s->thought = k;
    s->verdict = TG_TRIMR_V_NONE;

    switch (st->verifier) {
    case TG_TRIMR_RULE:
        n = tg_answer_extract_opts(text + start, end - start,
                                   &st->thought_opts, s->text,
                                   TG_ANSWER_MAX);
        if (n > 0) {
            s->len = (size_t) n;
            s->verdict = TG_TRIMR_V_ANSWER;
        }
        break;
    case TG_TRIMR_PROBE:
        if (tg_trimr_probe(st, tr, s, text, end) == 0) {
            s->verdict = TG_TRIMR_V_PENDING;
        }
        break;
    default:
        /* The tail, cut at a character. */
        from = end - start > TG_TRIMR_TAIL - 1 ? end - (TG_TRIMR_TAIL - 1)
                                               : start;
        while (from < end && ((unsigned char) text[from] & 0xc0) == 0x80) {
            from++;
        }
        s->len = end - from;
        memcpy(s->text, text + from, s->len);
        s->text[s->len] = '\0';
        if (tg_trimr_ask(st, tr, s, 1) == 0) {
            s->verdict = TG_TRIMR_V_PENDING;
        }
        break;
    }
    tg_trimr_eval(st, tr);
}


/* Walks the verdicts in thought order as far as they are in. */
static void
tg_trimr_eval(tg_trimr_t *st, tg_trimr_trace_t *tr)
{
    tg_trimr_slot_t  *s;
    int               equal;

    while (tr->phase == TG_TRIMR_THINKING && tr->next_eval < tr->thoughts) {
        s = &tr->ring[tr->next_eval % TG_TRIMR_RING];
        if (s->verdict == TG_TRIMR_V_FREE || s->verdict == TG_TRIMR_V_PENDING
            || (s->verdict == TG_TRIMR_V_COMPARING && s->aux != NULL))
        {
            return;
        }
        if (s->verdict == TG_TRIMR_V_ANSWER && tr->ref_len > 0
            && st->verifier == TG_TRIMR_LLM)
        {
            /* Stage 2 needs the reference, known only now. */
            s->verdict = TG_TRIMR_V_COMPARING;
            if (tg_trimr_ask(st, tr, s, 2) == 0) {
                return;
            }
            s->equal = 0;
        }
        if (s->verdict == TG_TRIMR_V_ANSWER
            || s->verdict == TG_TRIMR_V_COMPARING)
        {
            equal = tr->ref_len == 0 ? 0
                    : s->verdict == TG_TRIMR_V_COMPARING ? s->equal
                    : tg_answer_equal(tr->ref, s->text);
            if (equal) {
                tr->streak++;
            } else {
                tr->streak = 1;
                memcpy(tr->ref, s->text, s->len + 1);
                tr->ref_len = s->len;
            }
        }
        tg_trimr_slot_free(st, s);
        tr->next_eval++;
        if (tr->streak >= st->m) {
            tg_trimr_converged(st, tr);
            return;
        }
    }
}


/* Starts one aux call for slot s (probe: a probe's prompt and round,
 * sent with the stop "}" where the host can); 0, or a negative code
 * (counted as a failure: the thought then has no answer). */
static int
tg_trimr_call(tg_trimr_t *st, tg_trimr_trace_t *tr, tg_trimr_slot_t *s,
    uint8_t stage, const tg_aux_spec_t *spec, const tg_trimr_call_t *probe)
{
    static const char *const  stop[] = { "}" };
    tg_trimr_call_t          *c = st->api->alloc(st->req, sizeof(*c));
    tg_aux_spec_t             sp = *spec;

    if (c == NULL) {
        st->call_failures++;
        return -ENOMEM;
    }
    c->trace = tr->index;
    c->thought = s->thought;
    c->epoch = tr->epoch;
    c->stage = stage;
    c->rounds = probe != NULL ? probe->rounds : 0;
    c->prompt = probe != NULL ? probe->prompt : NULL;
    c->prompt_len = probe != NULL ? probe->prompt_len : 0;
    c->box = probe != NULL ? probe->box : 0;
    sp.data = c;
    s->aux = probe != NULL && TG_HOST_HAS(st->api, aux_start_stop)
             ? st->api->aux_start_stop(st->req, &sp, stop, 1)
             : st->api->aux_start(st->req, &sp);
    if (s->aux == NULL) {
        st->api->log(st->req, TG_LOG_WARN, "trimr: verifier call not "
                     "started: %s", st->api->last_error(st->req)
                     ? st->api->last_error(st->req) : "unknown");
        st->call_failures++;
        return -EIO;
    }
    st->calls++;
    return 0;
}


static int
tg_trimr_probe(tg_trimr_t *st, tg_trimr_trace_t *tr, tg_trimr_slot_t *s,
    const char *text, size_t end)
{
    const tg_request_info_t  *info = st->api->request_info(st->req);
    const char               *sep = st->completions ? "" : "\n<think>\n";
    size_t                    plen = info->problem_len, len;
    char                     *prompt;

    /* A raw prompt: an aux call cannot continue an assistant message, so
     * a chat request's thinking follows its problem as a template would
     * put it.  A completions request's prompt is already raw. */
    len = plen + strlen(sep) + end + sizeof(TG_TRIMR_PROBE_OPEN);
    prompt = st->api->alloc(st->req, len);
    if (prompt == NULL) {
        st->call_failures++;
        return -ENOMEM;
    }
    snprintf(prompt, len, "%.*s%s%.*s%s", (int) plen,
             info->problem != NULL ? info->problem : "", sep, (int) end,
             text, TG_TRIMR_PROBE_OPEN);
    return tg_trimr_probe_send(st, tr, s, prompt, len - 1, len - 1, 1);
}


/* A probe's call number rounds: prompt[len] (its box opened at box). */
static int
tg_trimr_probe_send(tg_trimr_t *st, tg_trimr_trace_t *tr, tg_trimr_slot_t *s,
    const char *prompt, size_t len, size_t box, uint8_t rounds)
{
    tg_aux_spec_t    spec = { 0 };
    tg_trimr_call_t  probe = { 0 };

    spec.pool = st->pool;
    spec.endpoint = TG_ENDPOINT_COMPLETIONS;
    spec.prompt = prompt;
    spec.max_tokens = (int32_t) st->probe_tokens;
    spec.temperature = 0;
    probe.rounds = rounds;
    probe.prompt = prompt;
    probe.prompt_len = len;
    probe.box = box;
    return tg_trimr_call(st, tr, s, 0, &spec, &probe);
}


/* s as a JSON string literal into out (6 * len + 3 bytes); its end. */
static char *
tg_trimr_json_str(tg_trimr_t *st, char *out, const char *s, size_t len)
{
    static const char  hex[] = "0123456789abcdef";
    unsigned char      c;
    size_t             i;

    (void) st;
    *out++ = '"';
    for (i = 0; i < len; i++) {
        c = (unsigned char) s[i];
        if (c == '"' || c == '\\') {
            *out++ = '\\';
            *out++ = (char) c;
        } else if (c == '\n') {
            *out++ = '\\';
            *out++ = 'n';
        } else if (c < 0x20) {
            memcpy(out, "\\u00", 4);
            out[4] = hex[c >> 4];
            out[5] = hex[c & 15];
            out += 6;
        } else {
            *out++ = (char) c;
        }
    }
    *out++ = '"';
    *out = '\0';
    return out;
}


/* The llm verifier's question: stage 1 about s, stage 2 about the
 * reference and s. */
static int
tg_trimr_ask(tg_trimr_t *st, tg_trimr_trace_t *tr, tg_trimr_slot_t *s,
    uint8_t stage)
{
    static const char  q1[] = "Here is the end of one step of a model's "
        "reasoning about a problem:\n\n";
    static const char  q1e[] = "\n\nDoes this step state a final answer "
        "to the problem? Answer Yes or No.";
    static const char  q2[] = "Two steps of reasoning about one problem "
        "end as follows.\n\nStep A:\n";
    static const char  q2m[] = "\n\nStep B:\n";
    static const char  q2e[] = "\n\nDo steps A and B reach the same final "
        "answer? Answer Yes or No.";
    tg_aux_spec_t      spec = { 0 };
    char               text[sizeof(q2) + sizeof(q2m) + sizeof(q2e)
                            + 2 * TG_TRIMR_TAIL];
    char              *msg, *p;
    int                n;

    if (stage == 1) {
        n = snprintf(text, sizeof(text), "%s%s%s", q1, s->text, q1e);
    } else {
        n = snprintf(text, sizeof(text), "%s%s%s%s%s", q2, tr->ref, q2m,
                     s->text, q2e);
    }
    msg = st->api->alloc(st->req, 6 * (size_t) n + 64);
    if (n < 0 || msg == NULL) {
        st->call_failures++;
        return -ENOMEM;
    }
    p = msg + sprintf(msg, "[{\"role\":\"user\",\"content\":");
    p = tg_trimr_json_str(st, p, text, (size_t) n);
    strcpy(p, "}]");
    spec.pool = st->pool;
    spec.endpoint = TG_ENDPOINT_CHAT;
    spec.messages_json = msg;
    spec.max_tokens = 1;
    spec.temperature = 0;
    spec.top_logprobs = TG_TRIMR_TOP_LOGPROBS;
    return tg_trimr_call(st, tr, s, stage, &spec, NULL);
}


/* Completion tokens of an aux reply: its usage, else an estimate of
 * four bytes a token (a backend that sends no usage still cost GPU). */
static int64_t
tg_trimr_reply_tokens(const tg_aux_result_t *r)
{
    static const char  key[] = "\"completion_tokens\"";
    const char        *p, *end;

    if (r->body != NULL && r->body_len > 0) {
        end = r->body + r->body_len;
        p = memmem(r->body, r->body_len, key, sizeof(key) - 1);
        if (p != NULL) {
            for (p += sizeof(key) - 1;
                 p < end && (*p == ' ' || *p == ':' || *p == '\n'); p++)
            {
                /* to the number */
            }
            if (p < end && *p >= '0' && *p <= '9') {
                return strtoll(p, NULL, 10);
            }
        }
    }
    return (int64_t) ((r->content_len + 3) / 4);
}


int
tg_trimr_probe_answer(const char *reply, size_t len, int stopped,
    const tg_answer_opts_t *opts, char *out, size_t out_size)
{
    tg_answer_opts_t  o = *opts;
    size_t            i, depth = 0;
    int               n;

    out[0] = '\0';
    /* A model that writes the box again: read it as a box; stopped
     * before that box closed, it goes on below (-EAGAIN). */
    if (memmem(reply, len, "\\boxed", 6) != NULL) {
        o.flags |= TG_ANSWER_F_BOXED_ONLY;
        n = tg_answer_extract_opts(reply, len, &o, out, out_size);
        if (n > 0 || !stopped) {
            return n > 0 ? n : 0;
        }
        out[0] = '\0';
    }
    for (i = 0; i < len; i++) {
        if (reply[i] == '{') {
            depth++;
        } else if (reply[i] == '}' && depth-- == 0) {
            break;
        }
    }
    if (i == len && (!stopped || depth > 0)) {
        /* Stopped at an inner "}": the box goes on.  Else cut off, no
         * answer. */
        return stopped ? -EAGAIN : 0;
    }
    n = tg_answer_normalize(reply, i, out, out_size);
    if (n <= 0 || !tg_answer_fits(out, (size_t) n, opts)) {
        out[0] = '\0';
        return 0;
    }
    return n;
}


/* A probe's reply read: the answer's length, 0 for none, or -EAGAIN when
 * the next round was started (the stop closed a nested brace). */
static int
tg_trimr_probe_reply(tg_trimr_t *st, tg_trimr_trace_t *tr,
    tg_trimr_slot_t *s, const tg_trimr_call_t *c, const tg_aux_result_t *r)
{
    const char  *box = r->content;
    char        *buf, *next;
    size_t       blen = r->content_len, done, len;
    int          stopped, n;

    stopped = TG_HOST_HAS(st->api, aux_start_stop)
              && r->finish_reason != NULL
              && strcmp(r->finish_reason, "stop") == 0;
    /* The box so far: what earlier rounds wrote (the prompt's end), then
     * this reply. */
    done = c->prompt != NULL ? c->prompt_len - c->box : 0;
    if (done > 0) {
        buf = st->api->alloc(st->req, done + r->content_len + 1);
        if (buf == NULL) {
            st->call_failures++;
            return 0;
        }
        memcpy(buf, c->prompt + c->box, done);
        memcpy(buf + done, r->content, r->content_len);
        box = buf;
        blen = done + r->content_len;
    }
    n = tg_trimr_probe_answer(box, blen, stopped, &st->samples.opts,
                              s->text, TG_ANSWER_MAX);
    if (n != -EAGAIN) {
        return n;
    }
    if (c->prompt == NULL || c->rounds >= TG_TRIMR_PROBE_ROUNDS) {
        return 0;       /* nested past reason: no answer */
    }
    /* Go on from the reply, with the "}" the backend left out put back. */
    len = c->prompt_len + r->content_len;
    next = st->api->alloc(st->req, len + 2);
    if (next == NULL) {
        st->call_failures++;
        return 0;
    }
    memcpy(next, c->prompt, c->prompt_len);
    memcpy(next + c->prompt_len, r->content, r->content_len);
    next[len] = '}';
    next[len + 1] = '\0';
    if (tg_trimr_probe_send(st, tr, s, next, len + 1, c->box,
                            (uint8_t) (c->rounds + 1)) != 0)
    {
        return 0;
    }
    return -EAGAIN;
}


void
tg_trimr_verify_on_aux(tg_trimr_t *st, tg_aux_t *a, const tg_aux_result_t *r)
{
    tg_trimr_call_t   *c = r->data;
    tg_trimr_trace_t  *tr;
    tg_trimr_slot_t   *s;
    tg_judge_t         j;
    int                n, ok;

    if (c == NULL || c->trace >= st->samples.n) {
        return;
    }
    st->call_tokens += tg_trimr_reply_tokens(r);
    tr = &st->tr[c->trace];
    s = &tr->ring[c->thought % TG_TRIMR_RING];
    if (tr->epoch != c->epoch || tr->phase != TG_TRIMR_THINKING
        || s->aux != a || s->thought != c->thought)
    {
        st->late++;
        return;
    }
    s->aux = NULL;
    ok = r->status == 0;
    if (!ok) {
        st->call_failures++;
    }
    if (st->verifier == TG_TRIMR_PROBE) {
        n = ok ? tg_trimr_probe_reply(st, tr, s, c, r) : 0;
        if (n == -EAGAIN) {
            return;     /* continued: the next round answers */
        }
        s->len = n > 0 ? (size_t) n : 0;
        st->verdicts += ok;
        s->verdict = n > 0 ? TG_TRIMR_V_ANSWER : TG_TRIMR_V_NONE;
    } else {
        if (ok && tg_judge_p_yes(r->top, r->ntop, &j) != 0) {
            st->call_failures++;    /* neither Yes nor No: no verdict */
            ok = 0;
        }
        st->verdicts += ok;
        if (c->stage == 2) {
            s->equal = ok && j.p_yes >= 0.5;
        } else {
            s->verdict = ok && j.p_yes >= 0.5 ? TG_TRIMR_V_ANSWER
                                              : TG_TRIMR_V_NONE;
        }
    }
    tg_trimr_eval(st, tr);
}
