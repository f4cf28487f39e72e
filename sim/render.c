/*
 * OpenAI wire format, as vLLM's OpenAI server writes it.  Chunks are built
 * by hand into the request's evbuffer: at 200k tokens/s a JSON library's
 * tree per chunk would cost more than the rest of the sim.
 */
#include <errno.h>
#include <string.h>

#include <event2/buffer.h>

#include "sim.h"

#define TG_SIM_ADD(out, s) \
    do { if (evbuffer_add((out), "" s, sizeof("" s) - 1) != 0) \
            return -ENOMEM; } \
    while (0)
#define TG_SIM_TRY(e) do { if ((e) < 0) return -ENOMEM; } while (0)

/* The byte range of tokens [from, to) of c, clipped by its stop point. */
static void
tg_sim_range(const tg_sim_choice_t *c, uint32_t from, uint32_t to,
             size_t *a, size_t *b)
{
    *a = c->plan->cuts[from];
    *b = c->plan->cuts[to];
    if (*a > c->end_byte)
        *a = c->end_byte;
    if (*b > c->end_byte)
        *b = c->end_byte;
}

uint32_t
tg_sim_choice_reasoning_tokens(const tg_sim_choice_t *c)
{
    uint32_t r = c->plan->reason_n + c->plan->tag;

    return c->pos < r ? c->pos : r;
}

uint32_t
tg_sim_completion_tokens(const tg_sim_req_t *req)
{
    uint32_t n = 0;
    int i;

    for (i = 0; i < req->n; i++)
        n += req->choices[i].pos;
    return n;
}

/* A synthetic but well-formed log probability for token i. */
static double
tg_sim_logprob(uint32_t i, int rank)
{
    return -0.02 * (double) (1 + i % 7) - 1.5 * rank;
}

/* One entry of a chat answer's logprobs.content: token t, its bytes and
 * its top_logprobs (the token itself first, then made-up alternatives). */
static int
tg_sim_chat_logprob(tg_sim_req_t *req, const tg_sim_choice_t *c, uint32_t t,
                    struct evbuffer *out)
{
    size_t a, b, j;
    int k;

    tg_sim_range(c, t, t + 1, &a, &b);
    TG_SIM_ADD(out, "{\"token\":");
    TG_SIM_TRY(tg_sim_json_str(out, c->plan->text + a, b - a));
    TG_SIM_TRY(evbuffer_add_printf(out, ",\"logprob\":%.4f,\"bytes\":[",
                                   tg_sim_logprob(t, 0)));
    for (j = a; j < b; j++)
        TG_SIM_TRY(evbuffer_add_printf(out, j > a ? ",%u" : "%u",
            (unsigned) (unsigned char) c->plan->text[j]));
    TG_SIM_ADD(out, "],\"top_logprobs\":[");
    for (k = 0; k < req->top_logprobs; k++) {
        if (k > 0)
            TG_SIM_ADD(out, ",");
        TG_SIM_ADD(out, "{\"token\":");
        if (k == 0)
            TG_SIM_TRY(tg_sim_json_str(out, c->plan->text + a, b - a));
        else
            TG_SIM_TRY(evbuffer_add_printf(out, "\"<alt%d>\"", k));
        TG_SIM_TRY(evbuffer_add_printf(out, ",\"logprob\":%.4f,"
                                       "\"bytes\":null}",
                                       tg_sim_logprob(t, k)));
    }
    TG_SIM_ADD(out, "]}");
    return 0;
}

/* A completion's top_logprobs: one object per token, token to logprob. */
static int
tg_sim_completion_top(tg_sim_req_t *req, const tg_sim_choice_t *c,
                      uint32_t from, uint32_t to, struct evbuffer *out)
{
    uint32_t t;
    size_t a, b;
    int k;

    for (t = from; t < to; t++) {
        tg_sim_range(c, t, t + 1, &a, &b);
        if (t > from)
            TG_SIM_ADD(out, ",");
        TG_SIM_ADD(out, "{");
        for (k = 0; k < req->top_logprobs; k++) {
            if (k > 0)
                TG_SIM_TRY(evbuffer_add_printf(out, ",\"<alt%d>\"", k));
            else
                TG_SIM_TRY(tg_sim_json_str(out, c->plan->text + a, b - a));
            TG_SIM_TRY(evbuffer_add_printf(out, ":%.4f",
                                           tg_sim_logprob(t, k)));
        }
        TG_SIM_ADD(out, "}");
    }
    return 0;
}

/* Completions: parallel arrays, the legacy shape. */
static int
tg_sim_completion_logprobs(tg_sim_req_t *req, const tg_sim_choice_t *c,
                           uint32_t from, uint32_t to, struct evbuffer *out)
{
    uint32_t t;
    size_t a, b;

    TG_SIM_ADD(out, "{\"tokens\":[");
    for (t = from; t < to; t++) {
        tg_sim_range(c, t, t + 1, &a, &b);
        if (t > from)
            TG_SIM_ADD(out, ",");
        TG_SIM_TRY(tg_sim_json_str(out, c->plan->text + a, b - a));
    }
    TG_SIM_ADD(out, "],\"token_logprobs\":[");
    for (t = from; t < to; t++)
        TG_SIM_TRY(evbuffer_add_printf(out, t > from ? ",%.4f" : "%.4f",
                                       tg_sim_logprob(t, 0)));
    TG_SIM_ADD(out, "],\"top_logprobs\":[");
    TG_SIM_TRY(tg_sim_completion_top(req, c, from, to, out));
    TG_SIM_ADD(out, "],\"text_offset\":[");
    for (t = from; t < to; t++) {
        tg_sim_range(c, t, t + 1, &a, &b);
        TG_SIM_TRY(evbuffer_add_printf(out, t > from ? ",%zu" : "%zu", a));
    }
    TG_SIM_ADD(out, "]}");
    return 0;
}

static int
tg_sim_render_logprobs(tg_sim_req_t *req, const tg_sim_choice_t *c,
                       uint32_t from, uint32_t to, struct evbuffer *out)
{
    uint32_t t;

    if (!req->logprobs) {
        TG_SIM_ADD(out, "null");
        return 0;
    }
    if (req->kind != TG_SIM_CHAT)
        return tg_sim_completion_logprobs(req, c, from, to, out);
    TG_SIM_ADD(out, "{\"content\":[");
    for (t = from; t < to; t++) {
        if (t > from)
            TG_SIM_ADD(out, ",");
        TG_SIM_TRY(tg_sim_chat_logprob(req, c, t, out));
    }
    TG_SIM_ADD(out, "]}");
    return 0;
}

static int
tg_sim_render_head(tg_sim_req_t *req, int i, struct evbuffer *out)
{
    TG_SIM_TRY(evbuffer_add_printf(out, "data: {\"id\":\"%s\",\"object\":"
        "\"%s\",\"created\":%lld,\"model\":", req->id,
        req->kind == TG_SIM_CHAT ? "chat.completion.chunk"
                                 : "text_completion", req->created));
    TG_SIM_TRY(tg_sim_json_str(out, req->model, strlen(req->model)));
    TG_SIM_TRY(evbuffer_add_printf(out, ",\"choices\":[{\"index\":%d,", i));
    return 0;
}

/* The end of a chunk: "}]" closing choices, then with
 * continuous_usage_stats the usage of choice i so far (vLLM counts per
 * choice), then "}\n\n". */
static int
tg_sim_render_chunk_end(tg_sim_req_t *req, int i, struct evbuffer *out)
{
    uint32_t ct;

    if (!req->continuous_usage) {
        TG_SIM_ADD(out, "}]}\n\n");
        return 0;
    }
    ct = req->choices[i].pos;
    TG_SIM_TRY(evbuffer_add_printf(out, "}],\"usage\":{\"prompt_tokens\":%u,"
        "\"completion_tokens\":%u,\"total_tokens\":%u}}\n\n",
        req->prompt_tokens, ct, req->prompt_tokens + ct));
    return 0;
}

int
tg_sim_render_role(tg_sim_req_t *req, int i, struct evbuffer *out)
{
    TG_SIM_TRY(tg_sim_render_head(req, i, out));
    TG_SIM_ADD(out, "\"delta\":{\"role\":\"assistant\",\"content\":\"\"},"
               "\"logprobs\":null,\"finish_reason\":null");
    return tg_sim_render_chunk_end(req, i, out);
}

int
tg_sim_render_chunk(tg_sim_req_t *req, int i, uint32_t from, uint32_t to,
                    int last, struct evbuffer *out)
{
    tg_sim_choice_t *c = &req->choices[i];
    const tg_sim_plan_t *p = c->plan;
    size_t ra = 0, rb = 0, ca, cb;

    if (req->kind == TG_SIM_CHAT && !req->inline_think) {
        uint32_t rto = to < p->reason_n ? to : p->reason_n;
        uint32_t cfrom = p->reason_n + p->tag;

        if (from < rto)
            tg_sim_range(c, from, rto, &ra, &rb);
        if (cfrom < from)
            cfrom = from;
        if (cfrom > to)
            cfrom = to;
        tg_sim_range(c, cfrom, to, &ca, &cb);
    } else {
        tg_sim_range(c, from, to, &ca, &cb);
    }
    /* A step that only produced the </think> separator shows nothing,
     * as vLLM's reasoning parser drops it. */
    if (!last && ra == rb && ca == cb)
        return 0;

    TG_SIM_TRY(tg_sim_render_head(req, i, out));
    if (req->kind == TG_SIM_CHAT) {
        int comma = 0;

        TG_SIM_ADD(out, "\"delta\":{");
        if (ra < rb) {
            TG_SIM_ADD(out, "\"reasoning_content\":");
            TG_SIM_TRY(tg_sim_json_str(out, p->text + ra, rb - ra));
            comma = 1;
        }
        if (ca < cb) {
            if (comma)
                TG_SIM_ADD(out, ",");
            TG_SIM_ADD(out, "\"content\":");
            TG_SIM_TRY(tg_sim_json_str(out, p->text + ca, cb - ca));
        }
        TG_SIM_ADD(out, "},\"logprobs\":");
    } else {
        TG_SIM_ADD(out, "\"text\":");
        TG_SIM_TRY(tg_sim_json_str(out, p->text + ca, cb - ca));
        TG_SIM_ADD(out, ",\"logprobs\":");
    }
    TG_SIM_TRY(tg_sim_render_logprobs(req, c, from, to, out));
    if (last)
        TG_SIM_TRY(evbuffer_add_printf(out, ",\"finish_reason\":\"%s\"",
            c->finish_length ? "length" : "stop"));
    else
        TG_SIM_ADD(out, ",\"finish_reason\":null");
    return tg_sim_render_chunk_end(req, i, out);
}

static int
tg_sim_render_usage(tg_sim_req_t *req, struct evbuffer *out)
{
    uint32_t ct = tg_sim_completion_tokens(req), rt = 0;
    int i;

    for (i = 0; i < req->n; i++)
        rt += tg_sim_choice_reasoning_tokens(&req->choices[i]);
    TG_SIM_TRY(evbuffer_add_printf(out, "\"usage\":{\"prompt_tokens\":%u,"
        "\"completion_tokens\":%u,\"total_tokens\":%u,"
        "\"prompt_tokens_details\":{\"cached_tokens\":%u}",
        req->prompt_tokens, ct, req->prompt_tokens + ct,
        req->cached_tokens));
    if (req->kind == TG_SIM_CHAT)
        TG_SIM_TRY(evbuffer_add_printf(out, ",\"completion_tokens_details\":"
                                       "{\"reasoning_tokens\":%u}", rt));
    TG_SIM_ADD(out, "}");
    return 0;
}

int
tg_sim_render_stream_end(tg_sim_req_t *req, struct evbuffer *out)
{
    if (req->include_usage) {
        TG_SIM_TRY(evbuffer_add_printf(out, "data: {\"id\":\"%s\","
            "\"object\":\"%s\",\"created\":%lld,\"model\":", req->id,
            req->kind == TG_SIM_CHAT ? "chat.completion.chunk"
                                     : "text_completion", req->created));
        TG_SIM_TRY(tg_sim_json_str(out, req->model, strlen(req->model)));
        TG_SIM_ADD(out, ",\"choices\":[],");
        TG_SIM_TRY(tg_sim_render_usage(req, out));
        TG_SIM_ADD(out, "}\n\n");
    }
    TG_SIM_ADD(out, "data: [DONE]\n\n");
    return 0;
}

int
tg_sim_render_full(tg_sim_req_t *req, struct evbuffer *out)
{
    int i;

    TG_SIM_TRY(evbuffer_add_printf(out, "{\"id\":\"%s\",\"object\":\"%s\","
        "\"created\":%lld,\"model\":", req->id,
        req->kind == TG_SIM_CHAT ? "chat.completion" : "text_completion",
        req->created));
    TG_SIM_TRY(tg_sim_json_str(out, req->model, strlen(req->model)));
    TG_SIM_ADD(out, ",\"choices\":[");
    for (i = 0; i < req->n; i++) {
        tg_sim_choice_t *c = &req->choices[i];
        const tg_sim_plan_t *p = c->plan;
        size_t ra = 0, rb = 0, ca, cb;

        if (req->kind == TG_SIM_CHAT && !req->inline_think) {
            uint32_t rto = c->pos < p->reason_n ? c->pos : p->reason_n;
            uint32_t cfrom = p->reason_n + p->tag;

            if (cfrom > c->pos)
                cfrom = c->pos;
            tg_sim_range(c, 0, rto, &ra, &rb);
            tg_sim_range(c, cfrom, c->pos, &ca, &cb);
        } else {
            tg_sim_range(c, 0, c->pos, &ca, &cb);
        }
        TG_SIM_TRY(evbuffer_add_printf(out, "%s{\"index\":%d,",
                                       i ? "," : "", i));
        if (req->kind == TG_SIM_CHAT) {
            TG_SIM_ADD(out, "\"message\":{\"role\":\"assistant\","
                       "\"content\":");
            if (ca < cb)
                TG_SIM_TRY(tg_sim_json_str(out, p->text + ca, cb - ca));
            else
                TG_SIM_ADD(out, "null");
            TG_SIM_ADD(out, ",\"reasoning_content\":");
            if (ra < rb)
                TG_SIM_TRY(tg_sim_json_str(out, p->text + ra, rb - ra));
            else
                TG_SIM_ADD(out, "null");
            TG_SIM_ADD(out, ",\"tool_calls\":[]},\"logprobs\":");
        } else {
            TG_SIM_ADD(out, "\"text\":");
            TG_SIM_TRY(tg_sim_json_str(out, p->text + ca, cb - ca));
            TG_SIM_ADD(out, ",\"logprobs\":");
        }
        TG_SIM_TRY(tg_sim_render_logprobs(req, c, 0, c->pos, out));
        TG_SIM_TRY(evbuffer_add_printf(out, ",\"finish_reason\":\"%s\"}",
                                       c->finish_length ? "length"
                                                        : "stop"));
    }
    TG_SIM_ADD(out, "],");
    TG_SIM_TRY(tg_sim_render_usage(req, out));
    TG_SIM_ADD(out, "}\n");
    return 0;
}

int
tg_sim_render_error(struct evbuffer *out, const char *message,
                    const char *type, const char *param, const char *code)
{
    TG_SIM_ADD(out, "{\"error\":{\"message\":");
    TG_SIM_TRY(tg_sim_json_str(out, message, strlen(message)));
    TG_SIM_ADD(out, ",\"type\":");
    TG_SIM_TRY(tg_sim_json_str(out, type, strlen(type)));
    TG_SIM_ADD(out, ",\"param\":");
    if (param != NULL)
        TG_SIM_TRY(tg_sim_json_str(out, param, strlen(param)));
    else
        TG_SIM_ADD(out, "null");
    TG_SIM_ADD(out, ",\"code\":");
    if (code != NULL)
        TG_SIM_TRY(tg_sim_json_str(out, code, strlen(code)));
    else
        TG_SIM_ADD(out, "null");
    TG_SIM_ADD(out, "}}\n");
    return 0;
}
