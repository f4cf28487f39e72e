/*
 * thinkgate — DeepPrune's judges (see deepprune.h): each fills a round's
 * score matrix, leaving NaN where it gave no verdict.
 *
 *   lexical  one host score() call over every text of the round (the
 *            host batches the calls of one loop turn);
 *   pool     one embeddings aux call over them; the score is the cosine
 *            of the two vectors;
 *   llm      one chat aux call per pair, all at once, asking for one
 *            token with top_logprobs; the score is P(Yes) (common/
 *            judge.h).  The problem and both prefixes go in verbatim: a
 *            simulated judge finds the recorded traces by them.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "deepprune.h"
#include "common/judge.h"

static void tg_dp_score_cb(tg_req_t *req, void *data, const float *sim,
    size_t n);
static int tg_dp_llm_start(const tg_host_api_t *api, tg_req_t *req,
    tg_dp_t *st, tg_dp_round_t *r);
static char *tg_dp_llm_messages(const tg_host_api_t *api, tg_req_t *req,
    const tg_dp_t *st, uint32_t a, uint32_t b);
static int tg_dp_pool_result(tg_dp_round_t *r, const tg_aux_result_t *res);

#define TG_DP_LLM_INSTRUCTION \
    "Two attempts at the same problem were cut off early. Judge from " \
    "their beginnings whether they are heading to the same final answer."


int
tg_dp_judge_start(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st,
    tg_dp_round_t *r)
{
    const char   **texts;
    size_t        *lens;
    tg_aux_spec_t  spec = { 0 };
    uint32_t       i;

    if (st->judge == TG_DP_LLM) {
        return tg_dp_llm_start(api, req, st, r);
    }
    texts = api->alloc(req, r->nitems * sizeof(*texts));
    lens = api->alloc(req, r->nitems * sizeof(*lens));
    if (texts == NULL || lens == NULL) {
        st->judge_failures++;
        return -ENOMEM;
    }
    for (i = 0; i < r->nitems; i++) {
        texts[i] = st->tr[r->items[i]].prefix;
        lens[i] = st->tr[r->items[i]].prefix_len;
    }
    st->judge_calls++;
    if (st->judge == TG_DP_LEXICAL) {
        if (api->score(req, texts, lens, r->nitems, tg_dp_score_cb, r) != 0) {
            st->judge_failures++;
            return -EIO;
        }
        r->outstanding = 1;
        return 0;
    }
    spec.pool = st->judge_pool;
    spec.endpoint = TG_ENDPOINT_EMBEDDINGS;
    spec.inputs = texts;
    spec.input_lens = lens;
    spec.ninputs = r->nitems;
    spec.data = r;
    r->aux = api->aux_start(req, &spec);
    if (r->aux == NULL) {
        api->log(req, TG_LOG_WARN, "deepprune: judge pool \"%s\": %s",
                 st->judge_pool, api->last_error(req));
        st->judge_failures++;
        return -EIO;
    }
    return 0;
}


static void
tg_dp_score_cb(tg_req_t *req, void *data, const float *sim, size_t n)
{
    tg_dp_round_t  *r = data;
    tg_dp_t        *st = r->api->state(req);

    if (st->round != r || st->samples.answered) {
        return;     /* given up on, or the request is answered */
    }
    r->outstanding = 0;
    if (sim != NULL && n == r->nitems) {
        memcpy(r->sim, sim, n * n * sizeof(float));
    } else {
        st->judge_failures++;
        st->degraded = 1;
    }
    tg_dp_round_done(req, r);
}


/* One call per pair of a row to place with any row before it: the rows
 * it may be compared with once the earlier ones are placed. */
static int
tg_dp_llm_start(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st,
    tg_dp_round_t *r)
{
    tg_aux_spec_t  spec = { 0 };
    tg_dp_pair_t  *p;
    uint32_t       a, b;

    r->npairs = 0;
    for (a = r->first_pending; a < r->nitems; a++) {
        r->npairs += a;
    }
    r->pairs = api->alloc(req, r->npairs * sizeof(*r->pairs));
    if (r->pairs == NULL) {
        st->judge_failures++;
        return -ENOMEM;
    }
    p = r->pairs;
    for (a = r->first_pending; a < r->nitems; a++) {
        for (b = 0; b < a; b++, p++) {
            p->round = r;
            p->a = a;
            p->b = b;
            p->aux = NULL;
            spec.pool = st->judge_pool;
            spec.endpoint = TG_ENDPOINT_CHAT;
            spec.messages_json = tg_dp_llm_messages(api, req, st,
                                                    r->items[b],
                                                    r->items[a]);
            spec.max_tokens = 1;
            spec.temperature = 0;
            spec.top_logprobs = 10;
            spec.data = p;
            if (spec.messages_json != NULL) {
                p->aux = api->aux_start(req, &spec);
            }
            if (p->aux == NULL) {
                /* No verdict for this pair; the rest may still place
                 * the traces that do not need it. */
                st->judge_failures++;
                st->degraded = 1;
                continue;
            }
            st->judge_calls++;
            r->outstanding++;
        }
    }
    return r->outstanding > 0 ? 0 : -EIO;
}


/* A single user message: the instruction, the problem, prefix A (the
 * earlier trace), prefix B, and the question. */
static char *
tg_dp_llm_messages(const tg_host_api_t *api, tg_req_t *req,
    const tg_dp_t *st, uint32_t a, uint32_t b)
{
    const tg_request_info_t  *info = api->request_info(req);
    const char               *problem = info ? info->problem : NULL;
    size_t                    plen = problem ? info->problem_len : 0;
    size_t                    len;
    char                     *text, *json, *out;
    int                       w;

    len = sizeof(TG_DP_LLM_INSTRUCTION) + plen + st->tr[a].prefix_len
          + st->tr[b].prefix_len + 200;
    text = api->alloc(req, len);
    if (text == NULL) {
        return NULL;
    }
    w = snprintf(text, len, "%s\n\nProblem:\n%.*s\n\nReasoning A:\n%.*s\n\n"
                 "Reasoning B:\n%.*s\n\nWill A and B reach the same final "
                 "answer? Answer Yes or No.", TG_DP_LLM_INSTRUCTION,
                 (int) plen, problem ? problem : "",
                 (int) st->tr[a].prefix_len, st->tr[a].prefix,
                 (int) st->tr[b].prefix_len, st->tr[b].prefix);
    if (w < 0 || (size_t) w >= len) {
        return NULL;
    }
    json = tg_dp_json_str(api, req, text, (size_t) w);
    if (json == NULL) {
        return NULL;
    }
    len = strlen(json) + 40;
    out = api->alloc(req, len);
    if (out == NULL) {
        return NULL;
    }
    snprintf(out, len, "[{\"role\":\"user\",\"content\":%s}]", json);
    return out;
}


void
tg_dp_judge_on_aux(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st,
    tg_aux_t *a, const tg_aux_result_t *res)
{
    tg_dp_round_t  *r;
    tg_dp_pair_t   *p;
    tg_judge_t      j;
    float           score = NAN;

    (void) a;
    if (st->judge == TG_DP_POOL) {
        r = res->data;
        if (r == NULL || r->aux == NULL || st->round != r) {
            return;
        }
        r->aux = NULL;
        if (tg_dp_pool_result(r, res) != 0) {
            api->log(req, TG_LOG_WARN, "deepprune: judge pool \"%s\": %s",
                     st->judge_pool, res->error ? res->error : "no vectors");
            st->judge_failures++;
            st->degraded = 1;
        }
        tg_dp_round_done(req, r);
        return;
    }
    p = res->data;
    if (p == NULL || p->aux == NULL) {
        return;
    }
    p->aux = NULL;
    r = p->round;
    r->outstanding--;
    if (res->status == 0 && tg_judge_p_yes(res->top, res->ntop, &j) == 0) {
        score = (float) j.p_yes;
    } else {
        if (st->judge_failures++ == 0) {
            api->log(req, TG_LOG_WARN, "deepprune: judge pool \"%s\" gave "
                     "no verdict: %s", st->judge_pool,
                     res->status != 0 && res->error ? res->error
                     : "no Yes/No among the top logprobs");
        }
        st->degraded = 1;
    }
    r->sim[(size_t) p->a * r->nitems + p->b] = score;
    r->sim[(size_t) p->b * r->nitems + p->a] = score;
    if (r->outstanding == 0 && st->round == r) {
        tg_dp_round_done(req, r);
    }
}


/* The cosines of an embeddings reply; -EPROTO (the matrix left NaN)
 * when it is not one row per text. */
static int
tg_dp_pool_result(tg_dp_round_t *r, const tg_aux_result_t *res)
{
    const float  *v = res->vectors;
    uint32_t      i, k;
    size_t        c, dim = res->dim;
    double        dot, ni, nk;

    if (res->status != 0 || v == NULL || res->nvectors != r->nitems
        || dim == 0)
    {
        return -EPROTO;
    }
    for (i = 0; i < r->nitems; i++) {
        for (k = 0; k < r->nitems; k++) {
            dot = ni = nk = 0;
            for (c = 0; c < dim; c++) {
                dot += (double) v[i * dim + c] * v[k * dim + c];
                ni += (double) v[i * dim + c] * v[i * dim + c];
                nk += (double) v[k * dim + c] * v[k * dim + c];
            }
            r->sim[(size_t) i * r->nitems + k] =
                ni > 0 && nk > 0 ? (float) (dot / sqrt(ni * nk)) : 0;
        }
    }
    return 0;
}


uint32_t
tg_dp_judge_cancel(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st,
    tg_dp_round_t *r, int failed)
{
    uint32_t  i, n = 0;

    for (i = 0; r->pairs != NULL && i < r->npairs; i++) {
        if (r->pairs[i].aux != NULL) {
            api->aux_cancel(req, r->pairs[i].aux);
            r->pairs[i].aux = NULL;
            r->outstanding--;
            n++;
        }
    }
    if (r->aux != NULL) {
        api->aux_cancel(req, r->aux);
        r->aux = NULL;
        n++;
    }
    if (st->judge == TG_DP_LEXICAL && r->outstanding > 0) {
        /* The score call cannot be cancelled; its late answer finds the
         * round stale. */
        r->outstanding = 0;
        n++;
    }
    if (failed) {
        st->judge_failures += n;
    }
    return n;
}
