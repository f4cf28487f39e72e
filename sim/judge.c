/*
 * A SIMULATED Yes/No judge of known quality (--judge-model NAME
 * --judge-auroc A): requests for model NAME ask whether two reasoning
 * prefixes will reach the same final answer.  The sim finds the recorded
 * problem and the two recorded samples the prefixes come from, looks up
 * their recorded final answers (tg_sim_sample_t.answer) and draws the
 * answer so that, over many pairs, P(Yes) separates "same answer" from
 * "different" with AUROC A.
 *
 * The draw is binormal: the logit z is N(+mu/2, 1) for a pair with the
 * same answer and N(-mu/2, 1) otherwise, mu = sqrt(2) Phi^-1(A), so that
 * P(z_same > z_diff) = Phi(mu / sqrt(2)) = A.  Centring the classes on 0
 * makes P(Yes) = 0.5 the threshold of equal error rates.  The normal
 * comes from a hash of (problem, the two sample ids in either order,
 * --judge-seed): the same pair gets the same answer at any prefix length.
 *
 * Nothing here reads the prefixes' words: the judge knows only the two
 * recorded answers.  Figures made with it are "with a judge of AUROC A".
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <jansson.h>

#include "request.h"

#define TG_SIM_JUDGE_ANCHOR  32          /* as continuation's anchor */
#define TG_SIM_JUDGE_MIN     8           /* bytes a short prefix needs */
#define TG_SIM_JUDGE_LOG_MAX (4u << 20)  /* pairs kept for /sim/judge */

static const char tg_sim_judge_mark_a[] = "Reasoning A:";
static const char tg_sim_judge_mark_b[] = "Reasoning B:";

static double tg_sim_judge_phi(double x);
static tg_sim_sample_t *tg_sim_judge_find(tg_sim_problem_t *p,
                                          const char *text, size_t len,
                                          size_t *end, size_t *plen,
                                          int *tie);
static int tg_sim_judge_log_add(tg_sim_t *sim, double p_yes, int same);

static double
tg_sim_judge_phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

double
tg_sim_judge_mu(double auroc)
{
    double lo = -40, hi = 40, mid;
    int i;

    /* Phi^-1 by bisection: run once at start-up, so plain is fine. */
    for (i = 0; i < 200; i++) {
        mid = (lo + hi) / 2;
        if (tg_sim_judge_phi(mid) < auroc)
            lo = mid;
        else
            hi = mid;
    }
    return sqrt(2.0) * (lo + hi) / 2;
}

int
tg_sim_judge_same(const tg_sim_sample_t *a, const tg_sim_sample_t *b)
{
    return a->answer != NULL && b->answer != NULL
           && strcmp(a->answer, b->answer) == 0;
}

/* splitmix64's finalizer: FNV alone mixes its last bytes poorly. */
static uint64_t
tg_sim_judge_mix(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

uint64_t
tg_sim_judge_key(const tg_sim_problem_t *p, long long sid_a,
                 long long sid_b, long long seed)
{
    long long ids[3];
    uint64_t h = tg_sim_hash(TG_SIM_HASH_INIT, p->model,
                             strlen(p->model) + 1);

    ids[0] = sid_a < sid_b ? sid_a : sid_b;
    ids[1] = sid_a < sid_b ? sid_b : sid_a;
    ids[2] = seed;
    h = tg_sim_hash(h, p->norm, p->norm_len);
    return tg_sim_judge_mix(tg_sim_hash(h, ids, sizeof(ids)));
}

double
tg_sim_judge_z(double mu, int same, uint64_t key)
{
    uint64_t h2 = tg_sim_judge_mix(key ^ 0x9e3779b97f4a7c15ULL);
    /* Two uniforms in (0, 1) from 53 bits each, then Box-Muller. */
    double u1 = ((double) (key >> 11) + 0.5) / 9007199254740992.0;
    double u2 = ((double) (h2 >> 11) + 0.5) / 9007199254740992.0;
    double n = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);

    return (same ? mu / 2 : -mu / 2) + n;
}

/*
 * The recorded sample whose output starts earliest in text, the longest
 * match among those starting there.  A sample counts where its first 32
 * bytes occur, or where the text (after white space) starts with at least
 * 8 of its bytes; the match extends as far as text and output agree, as
 * continuation's prefix match.
 * Samples that agree beyond the prefix cannot be told apart by it: the
 * first (lowest sample_id) is taken and *tie is set.
 */
static tg_sim_sample_t *
tg_sim_judge_find(tg_sim_problem_t *p, const char *text, size_t len,
                  size_t *end, size_t *plen, int *tie)
{
    tg_sim_sample_t *best = NULL;
    size_t best_at = 0, best_len = 0, i, lead = 0;

    while (lead < len && (text[lead] == ' ' || text[lead] == '\n'
                          || text[lead] == '\t' || text[lead] == '\r'))
        lead++;
    for (i = 0; i < p->count; i++) {
        tg_sim_sample_t *s = &p->samples[i];
        size_t alen = s->output_len, at = lead, k = 0;
        const char *hit = text + lead;

        /* A prefix shorter than the anchor still counts where the text
         * starts with it. */
        while (at + k < len && k < s->output_len && hit[k] == s->output[k])
            k++;
        if (k < TG_SIM_JUDGE_MIN && k < s->output_len) {
            if (alen > TG_SIM_JUDGE_ANCHOR)
                alen = TG_SIM_JUDGE_ANCHOR;
            hit = alen > 0 ? memmem(text, len, s->output, alen) : NULL;
            if (hit == NULL)
                continue;
            at = (size_t) (hit - text);
            for (k = 0; at + k < len && k < s->output_len
                        && hit[k] == s->output[k]; k++)
                ;
        }
        if (best == NULL || at < best_at || (at == best_at && k > best_len)) {
            best = s;
            best_at = at;
            best_len = k;
            *tie = 0;
        } else if (at == best_at && k == best_len) {
            *tie = 1;
        }
    }
    *end = best_at + best_len;
    *plen = best_len;
    return best;
}

int
tg_sim_judge_match(tg_sim_traces_t *t, const char *text, size_t len,
                   tg_sim_problem_t **p, tg_sim_sample_t **a,
                   tg_sim_sample_t **b, size_t *a_len, size_t *b_len,
                   int *ambiguous)
{
    const char *ma, *mb = NULL;
    size_t head = len, i, best_score = 0, best_plen = 0;
    int found_problem = 0, ta = 0, tb = 0;

    *p = NULL;
    *a = *b = NULL;
    *a_len = *b_len = 0;
    *ambiguous = 0;
    ma = memmem(text, len, tg_sim_judge_mark_a, sizeof(tg_sim_judge_mark_a)
                - 1);
    if (ma != NULL) {
        ma += sizeof(tg_sim_judge_mark_a) - 1;
        mb = memmem(ma, len - (size_t) (ma - text), tg_sim_judge_mark_b,
                    sizeof(tg_sim_judge_mark_b) - 1);
    }
    if (mb != NULL)
        head = (size_t) (ma - text);    /* the problem comes before A */

    /* Problems of every model with this text: the one whose samples
     * match the prefixes best. */
    for (i = 0; i < t->n_problems; i++) {
        tg_sim_problem_t *q = t->problems[i];
        size_t plen = strlen(q->problem), end, la, lb, at;
        const char *hit = memmem(text, head, q->problem, plen);
        tg_sim_sample_t *sa, *sb;

        if (hit == NULL || plen == 0)
            continue;
        found_problem = 1;
        if (mb != NULL) {
            const char *bs = mb + sizeof(tg_sim_judge_mark_b) - 1;

            sa = tg_sim_judge_find(q, ma, (size_t) (mb - ma), &end, &la,
                                   &ta);
            sb = tg_sim_judge_find(q, bs, len - (size_t) (bs - text), &end,
                                   &lb, &tb);
        } else {
            at = (size_t) (hit - text) + plen;
            sa = tg_sim_judge_find(q, text + at, len - at, &end, &la, &ta);
            at += end;
            sb = sa == NULL ? NULL
                 : tg_sim_judge_find(q, text + at, len - at, &end, &lb,
                                     &tb);
        }
        if (sa == NULL || sb == NULL)
            continue;
        if (la + lb > best_score
            || (la + lb == best_score && plen > best_plen)) {
            best_score = la + lb;
            best_plen = plen;
            *p = q;
            *a = sa;
            *b = sb;
            *a_len = la;
            *b_len = lb;
            *ambiguous = ta || tb;
        }
    }
    return *p != NULL ? 0 : found_problem ? -2 : -1;
}

int
tg_sim_judge_init(tg_sim_t *sim, char *err, size_t errlen)
{
    if (sim->opt.judge_model == NULL)
        return 0;
    if (sim->traces == NULL) {
        snprintf(err, errlen, "--judge-model needs --traces: the judge "
                 "reads the recorded final answers");
        return -1;
    }
    sim->judge_mu = tg_sim_judge_mu(sim->opt.judge_auroc);
    return 0;
}

void
tg_sim_judge_reset(tg_sim_t *sim)
{
    tg_sim_judge_log_t *l = &sim->judge;

    l->n = 0;
    l->requests = l->unmatched = l->yes = l->dropped = l->ambiguous = 0;
}

void
tg_sim_judge_free(tg_sim_t *sim)
{
    free(sim->judge.p_yes);
    free(sim->judge.same);
    memset(&sim->judge, 0, sizeof(sim->judge));
}

static int
tg_sim_judge_log_add(tg_sim_t *sim, double p_yes, int same)
{
    tg_sim_judge_log_t *l = &sim->judge;

    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 1024;
        double *np;
        unsigned char *ns;

        if (nc > TG_SIM_JUDGE_LOG_MAX) {
            l->dropped++;
            return 0;
        }
        np = realloc(l->p_yes, nc * sizeof(*np));
        if (np == NULL)
            return -1;
        l->p_yes = np;
        ns = realloc(l->same, nc);
        if (ns == NULL)
            return -1;
        l->same = ns;
        l->cap = nc;
    }
    l->p_yes[l->n] = p_yes;
    l->same[l->n++] = (unsigned char) same;
    return 0;
}

int
tg_sim_judge_render_log(tg_sim_t *sim, struct evbuffer *out)
{
    tg_sim_judge_log_t *l = &sim->judge;
    size_t i;

    if (evbuffer_add_printf(out, "{\"judge_model\":") < 0
        || (sim->opt.judge_model != NULL
            ? tg_sim_json_str(out, sim->opt.judge_model,
                              strlen(sim->opt.judge_model))
            : evbuffer_add_printf(out, "null") < 0)
        || evbuffer_add_printf(out, ",\"judge_auroc\":%.6g,\"judge_seed\":"
                               "%lld,\"pairs\":%zu,\"dropped\":%llu,"
                               "\"p_yes\":[", sim->opt.judge_auroc,
                               sim->opt.judge_seed, l->n, l->dropped) < 0)
        return -1;
    for (i = 0; i < l->n; i++)
        if (evbuffer_add_printf(out, "%s%.6g", i ? "," : "",
                                l->p_yes[i]) < 0)
            return -1;
    if (evbuffer_add_printf(out, "],\"same\":[") < 0)
        return -1;
    for (i = 0; i < l->n; i++)
        if (evbuffer_add_printf(out, "%s%d", i ? "," : "", l->same[i]) < 0)
            return -1;
    return evbuffer_add_printf(out, "]}\n") < 0 ? -1 : 0;
}

/* Every message's text joined (string contents and text parts): the
 * prefixes may sit in a system message as well as the user's. */
static char *
tg_sim_judge_chat_text(json_t *messages, size_t *len)
{
    struct evbuffer *b = evbuffer_new();
    json_t *m, *c, *part;
    size_t i, j;
    char *s = NULL;

    if (b == NULL)
        return NULL;
    json_array_foreach(messages, i, m) {
        c = json_object_get(m, "content");
        if (json_is_string(c)) {
            if (evbuffer_add(b, json_string_value(c), json_string_length(c))
                != 0 || evbuffer_add(b, "\n", 1) != 0)
                goto done;
        }
        json_array_foreach(json_is_array(c) ? c : NULL, j, part) {
            json_t *t = json_object_get(part, "text");

            if (json_is_string(t)
                && (evbuffer_add(b, json_string_value(t),
                                 json_string_length(t)) != 0
                    || evbuffer_add(b, "\n", 1) != 0))
                goto done;
        }
    }
    *len = evbuffer_get_length(b);
    s = malloc(*len + 1);
    if (s != NULL) {
        evbuffer_remove(b, s, *len);
        s[*len] = '\0';
    }
done:
    evbuffer_free(b);
    return s;
}

static const char *const tg_sim_judge_tok[2] = { "Yes", "No" };
static const char *const tg_sim_judge_bytes[2] = { "89,101,115", "78,111" };

/* One alternative: chat {"token","logprob","bytes"}, completions
 * "token": logprob. */
static int
tg_sim_judge_render_alt(struct evbuffer *out, int kind, int t, double lp)
{
    if (kind != TG_SIM_CHAT)
        return evbuffer_add_printf(out, "\"%s\":%.6f", tg_sim_judge_tok[t],
                                   lp) < 0 ? -1 : 0;
    return evbuffer_add_printf(out, "{\"token\":\"%s\",\"logprob\":%.6f,"
                               "\"bytes\":[%s]}", tg_sim_judge_tok[t], lp,
                               tg_sim_judge_bytes[t]) < 0 ? -1 : 0;
}

/* The reply: one token, "Yes" or "No", with both in top_logprobs. */
static int
tg_sim_judge_render(tg_sim_t *sim, int kind, const char *model, int top,
                    double z, size_t prompt_len, struct evbuffer *out)
{
    double lp[2];
    int f = z >= 0 ? 0 : 1, k, rc = 0;
    unsigned long long ptok = (prompt_len + 3) / 4;

    lp[0] = -log1p(exp(-z));
    lp[1] = -log1p(exp(z));
    rc |= evbuffer_add_printf(out, "{\"id\":\"%s-judge-%016llx\",\"object\":"
                              "\"%s\",\"created\":%lld,\"model\":",
                              kind == TG_SIM_CHAT ? "chatcmpl" : "cmpl",
                              (unsigned long long) ++sim->req_counter,
                              kind == TG_SIM_CHAT ? "chat.completion"
                                                  : "text_completion",
                              (long long) time(NULL)) < 0;
    rc |= tg_sim_json_str(out, model, strlen(model));
    if (kind == TG_SIM_CHAT)
        rc |= evbuffer_add_printf(out, ",\"choices\":[{\"index\":0,"
                                  "\"message\":{\"role\":\"assistant\","
                                  "\"content\":\"%s\",\"reasoning_content\":"
                                  "null},\"logprobs\":",
                                  tg_sim_judge_tok[f]) < 0;
    else
        rc |= evbuffer_add_printf(out, ",\"choices\":[{\"index\":0,"
                                  "\"text\":\"%s\",\"logprobs\":",
                                  tg_sim_judge_tok[f]) < 0;
    if (top < 0)
        rc |= evbuffer_add_printf(out, "null") < 0;
    else if (kind == TG_SIM_CHAT)
        rc |= evbuffer_add_printf(out, "{\"content\":[{\"token\":\"%s\","
                                  "\"logprob\":%.6f,\"bytes\":[%s],"
                                  "\"top_logprobs\":[", tg_sim_judge_tok[f],
                                  lp[f], tg_sim_judge_bytes[f]) < 0;
    else
        rc |= evbuffer_add_printf(out, "{\"tokens\":[\"%s\"],"
                                  "\"token_logprobs\":[%.6f],"
                                  "\"text_offset\":[0],\"top_logprobs\":[{",
                                  tg_sim_judge_tok[f], lp[f]) < 0;
    /* The likelier first, as a model ranks them. */
    for (k = 0; k < top && k < 2; k++) {
        if (k > 0)
            rc |= evbuffer_add_printf(out, ",") < 0;
        rc |= tg_sim_judge_render_alt(out, kind, k ? 1 - f : f,
                                      lp[k ? 1 - f : f]);
    }
    if (top >= 0)
        rc |= evbuffer_add_printf(out, kind == TG_SIM_CHAT ? "]}]}"
                                                           : "}]}") < 0;
    rc |= evbuffer_add_printf(out, ",\"finish_reason\":\"stop\"}],"
                              "\"usage\":{\"prompt_tokens\":%llu,"
                              "\"completion_tokens\":1,\"total_tokens\":"
                              "%llu}}\n", ptok, ptok + 1) < 0;
    return rc ? -1 : 0;
}

/* A judge request's logprobs: -1 none, else how many alternatives. */
static int
tg_sim_judge_top(json_t *body, int kind, tg_sim_err_t *e)
{
    json_t *lp = json_object_get(body, "logprobs");
    json_t *top = json_object_get(body, "top_logprobs");

    if (kind != TG_SIM_CHAT) {
        if (lp == NULL || json_is_null(lp))
            return -1;
        if (!json_is_integer(lp) || json_integer_value(lp) < 0)
            return tg_sim_fail(e, 400, "logprobs", NULL, "'logprobs' must "
                               "be a non-negative integer%s", NULL) - 1;
        return (int) (json_integer_value(lp) > 20 ? 20
                      : json_integer_value(lp));
    }
    if (lp != NULL && !json_is_null(lp) && !json_is_boolean(lp))
        return tg_sim_fail(e, 400, "logprobs", NULL, "'logprobs' must be a "
                           "boolean%s", NULL) - 1;
    if (!json_is_true(lp))
        return -1;
    if (top == NULL || json_is_null(top))
        return 0;
    if (!json_is_integer(top) || json_integer_value(top) < 0
        || json_integer_value(top) > 20)
        return tg_sim_fail(e, 400, "top_logprobs", NULL, "'top_logprobs' "
                           "must be an integer from 0 to 20%s", NULL) - 1;
    return (int) json_integer_value(top);
}

int
tg_sim_judge_reply(tg_sim_t *sim, json_t *body, int kind,
                   struct evbuffer *out, tg_sim_err_t *e)
{
    json_t *v;
    char *text = NULL;
    size_t len = 0, la, lb;
    tg_sim_problem_t *p;
    tg_sim_sample_t *a, *b;
    int top, same, rc, ambiguous;
    double z;

    v = json_object_get(body, "stream");
    if (json_is_true(v))
        return tg_sim_fail(e, 400, "stream", NULL, "the simulated judge "
                           "answers non-streamed requests only%s", NULL);
    v = json_object_get(body, "n");
    if (v != NULL && !json_is_null(v)
        && !(json_is_integer(v) && json_integer_value(v) == 1))
        return tg_sim_fail(e, 400, "n", NULL, "the simulated judge answers "
                           "with n = 1 only%s", NULL);
    top = tg_sim_judge_top(body, kind, e);
    if (top < -1)
        return -1;
    if (kind == TG_SIM_CHAT) {
        v = json_object_get(body, "messages");
        if (!json_is_array(v) || json_array_size(v) == 0)
            return tg_sim_fail(e, 400, "messages", NULL, "'messages' must "
                               "be a non-empty array%s", NULL);
        text = tg_sim_judge_chat_text(v, &len);
    } else {
        v = json_object_get(body, "prompt");
        if (!json_is_string(v))
            return tg_sim_fail(e, 400, "prompt", NULL, "the simulated judge "
                               "takes 'prompt' as one string%s", NULL);
        text = strndup(json_string_value(v), json_string_length(v));
        len = json_string_length(v);
    }
    if (text == NULL)
        return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);

    rc = tg_sim_judge_match(sim->traces, text, len, &p, &a, &b, &la, &lb,
                            &ambiguous);
    free(text);
    if (rc != 0) {
        sim->judge.unmatched++;
        return tg_sim_fail(e, 400, kind == TG_SIM_CHAT ? "messages"
                           : "prompt", "judge_unmatched", "%s", rc == -1
                           ? "the simulated judge found no recorded problem "
                             "(verbatim) in the prompt"
                           : "the simulated judge found the recorded problem"
                             " but not two recorded trace prefixes (after "
                             "\"Reasoning A:\" and \"Reasoning B:\", or after"
                             " the problem)");
    }
    same = tg_sim_judge_same(a, b);
    z = tg_sim_judge_z(sim->judge_mu, same,
                       tg_sim_judge_key(p, a->sample_id, b->sample_id,
                                        sim->opt.judge_seed));
    if (tg_sim_judge_render(sim, kind, json_string_value(
                                json_object_get(body, "model")),
                            top, z, len, out) != 0
        || tg_sim_judge_log_add(sim, 1.0 / (1.0 + exp(-z)), same) != 0)
        return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
    sim->judge.requests++;
    sim->judge.yes += z >= 0;
    sim->judge.ambiguous += ambiguous;
    return 0;
}
