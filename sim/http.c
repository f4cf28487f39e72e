/*
 * HTTP front: evhttp handlers for the OpenAI endpoints and the /sim
 * endpoints.  Each request is validated completely before anything is
 * queued, so every bad input gets an OpenAI-shaped 400/404 and the scheduler only sees good
 * requests.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "request.h"

static void tg_sim_http_cb(struct evhttp_request *r, void *arg);
static int tg_sim_http_listen(tg_sim_t *sim);

static void
tg_sim_send_json(struct evhttp_request *r, int status, const char *reason,
                 struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(r), "Content-Type",
                      "application/json");
    evhttp_send_reply(r, status, reason, body);
}

static void
tg_sim_send_error(struct evhttp_request *r, const tg_sim_err_t *e)
{
    struct evbuffer *b = evbuffer_new();

    if (b == NULL || tg_sim_render_error(b, e->msg, e->type, e->param,
                                         e->code) != 0) {
        evhttp_send_error(r, 500, "out of memory");
    } else {
        tg_sim_send_json(r, e->status, e->status == 404 ? "Not Found"
                         : e->status == 429 ? "Too Many Requests"
                         : e->status == 405 ? "Method Not Allowed"
                         : "Bad Request", b);
    }
    if (b != NULL)
        evbuffer_free(b);
}

/* The continuation reply (continue.c): never a replay of a sample. */
static int
tg_sim_set_continuation(tg_sim_t *sim, tg_sim_choice_t *c,
                        tg_sim_problem_t *prob, const char *text, size_t len,
                        long long seed)
{
    tg_sim_continue_info_t info;

    c->own_text = tg_sim_continue_reply(prob, text, len, sim->opt.converge,
                                        seed, &info);
    if (c->own_text == NULL
        || tg_sim_plan_build(&c->own, c->own_text, strlen(c->own_text), 0,
                             0) != 0)
        return -ENOMEM;
    c->plan = &c->own;
    return 0;
}

static int
tg_sim_set_synthetic(tg_sim_t *sim, tg_sim_choice_t *c, const char *prompt,
                     size_t len, uint64_t sample)
{
    size_t tl;

    c->own_text = tg_sim_synth_trace(prompt, len, (uint64_t) sim->opt.seed,
                                     sample, sim->opt.error_rate, &tl);
    if (c->own_text == NULL
        || tg_sim_plan_build(&c->own, c->own_text, tl, 0, 1) != 0)
        return -ENOMEM;
    c->plan = &c->own;
    return 0;
}

/* Synthetic completions continue whatever follows the last <think>. */
static void
tg_sim_after_think(tg_sim_parsed_t *p, const char **cont, size_t *cont_len)
{
    const char *t = NULL, *s = p->prompt;

    while ((s = memmem(s, p->prompt_len - (size_t) (s - p->prompt),
                       "<think>", 7)) != NULL)
        t = s++;
    if (t != NULL) {
        *cont = t + 7;
        *cont_len = p->prompt_len - (size_t) (*cont - p->prompt);
    }
}

/* The recorded problem a completion's prompt holds, and the text after it
 * to go on from, if any. */
static int
tg_sim_find_completion(tg_sim_t *sim, tg_sim_parsed_t *p,
                       tg_sim_problem_t **prob, const char **cont,
                       size_t *cont_len, tg_sim_err_t *e)
{
    size_t end, plen;

    *prob = tg_sim_traces_find_in(sim->traces, p->model, p->prompt,
                                  p->prompt_len, &end);
    if (*prob == NULL)
        return tg_sim_fail(e, 404, "prompt", "trace_not_found",
                           "no recorded trace matches: the prompt holds "
                           "no recorded problem of model `%s`",
                           p->model);
    /* Model text after the problem asks to go on from it, whether or
     * not it repeats a recording; template markup alone does not. */
    if (tg_sim_continue_wanted(p->prompt + end, p->prompt_len - end)
        || tg_sim_traces_match_prefix(*prob, p->prompt + end,
                                      p->prompt_len - end, &plen)
           != NULL) {
        *cont = p->prompt + end;
        *cont_len = p->prompt_len - end;
    }
    return 0;
}

/* Where the choices' text comes from: the recorded problem (NULL for
 * synthetic text) and the text to continue (NULL for a fresh answer). */
static int
tg_sim_plan_source(tg_sim_t *sim, tg_sim_parsed_t *p,
                   tg_sim_problem_t **prob, const char **cont,
                   size_t *cont_len, tg_sim_err_t *e)
{
    if (p->kind == TG_SIM_CHAT) {
        if (p->continue_final) {
            *cont = p->cont;
            *cont_len = p->cont_len;
        }
        if (sim->traces != NULL) {
            *prob = tg_sim_traces_find(sim->traces, p->model, p->user,
                                       p->user_len);
            if (*prob == NULL)
                return tg_sim_fail(e, 404, "messages", "trace_not_found",
                                   "no recorded trace matches the last user "
                                   "message for model `%s`", p->model);
        }
    } else if (sim->traces != NULL) {
        return tg_sim_find_completion(sim, p, prob, cont, cont_len, e);
    } else {
        tg_sim_after_think(p, cont, cont_len);
    }
    return 0;
}

/* The first sample's number: the seed, or for a seedless fresh request
 * the next samples in turn. */
static uint64_t
tg_sim_plan_base(tg_sim_t *sim, tg_sim_parsed_t *p, tg_sim_problem_t *prob,
                 const char *cont)
{
    uint64_t base;

    base = p->has_seed ? (uint64_t) p->seed : 0;
    if (!p->has_seed && cont == NULL) {
        if (prob != NULL) {
            base = prob->next;
            prob->next += (uint64_t) p->n;
        } else {
            base = sim->synth_counter;
            sim->synth_counter += (uint64_t) p->n;
        }
    }
    return base;
}

/* Chooses the text of every choice: replay, continuation or synthetic. */
static int
tg_sim_plan_choices(tg_sim_t *sim, tg_sim_parsed_t *p, tg_sim_req_t *req,
                    tg_sim_err_t *e)
{
    tg_sim_problem_t *prob = NULL;
    const char *cont = NULL;
    size_t cont_len = 0;
    uint64_t base;
    int i;

    if (tg_sim_plan_source(sim, p, &prob, &cont, &cont_len, e) != 0)
        return -1;
    base = tg_sim_plan_base(sim, p, prob, cont);
    for (i = 0; i < p->n; i++) {
        tg_sim_choice_t *c = &req->choices[i];
        int rc;

        if (cont != NULL) {
            rc = tg_sim_set_continuation(sim, c, prob, cont, cont_len,
                                         p->has_seed && p->seed >= 0
                                         ? p->seed + i : -1);
        } else if (prob != NULL) {
            tg_sim_sample_t *s = &prob->samples[(base + (uint64_t) i)
                                                % prob->count];

            c->plan = tg_sim_sample_plan(s);
            rc = c->plan != NULL ? 0 : -ENOMEM;
        } else {
            rc = tg_sim_set_synthetic(sim, c, p->kind == TG_SIM_CHAT
                                      ? p->user : p->prompt,
                                      p->kind == TG_SIM_CHAT ? p->user_len
                                      : p->prompt_len,
                                      base + (uint64_t) i);
        }
        if (rc != 0)
            return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
        tg_sim_choice_limit(c, p->max_tokens, p->stops, p->n_stops);
    }
    return 0;
}

/* A request for --judge-model: answered at once, without the scheduler
 * (a one-token reply; its prefill is not modelled). */
static void
tg_sim_handle_judge(tg_sim_t *sim, struct evhttp_request *r, json_t *body,
                    int kind)
{
    struct evbuffer *out = evbuffer_new();
    tg_sim_err_t e;

    memset(&e, 0, sizeof(e));
    if (out == NULL)
        evhttp_send_error(r, 500, "out of memory");
    else if (tg_sim_judge_reply(sim, body, kind, out, &e) != 0)
        tg_sim_send_error(r, &e);
    else
        tg_sim_send_json(r, 200, "OK", out);
    if (out != NULL)
        evbuffer_free(out);
}

/* A 200 whose body is not an OpenAI answer: an SSE event that is not
 * JSON then [DONE], or a JSON document cut short. */
static void
tg_sim_send_garbage(struct evhttp_request *r, int stream)
{
    struct evbuffer *b = evbuffer_new();
    struct evkeyvalq *h = evhttp_request_get_output_headers(r);

    if (b == NULL || evbuffer_add_printf(b, "%s", stream
                                         ? "data: {not json\n\n"
                                           "data: [DONE]\n\n"
                                         : "{\"choices\": [{not json") < 0) {
        evhttp_send_error(r, 500, "out of memory");
    } else {
        evhttp_add_header(h, "Content-Type", stream ? "text/event-stream"
                                                    : "application/json");
        evhttp_send_reply(r, 200, "OK", b);
    }
    if (b != NULL)
        evbuffer_free(b);
}

/* Whether the body names --judge-model. */
static int
tg_sim_for_judge(tg_sim_t *sim, json_t *body)
{
    json_t *model = json_object_get(body, "model");

    return sim->opt.judge_model != NULL && json_is_string(model)
           && strcmp(json_string_value(model), sim->opt.judge_model) == 0;
}

static void
tg_sim_parsed_free(tg_sim_parsed_t *p)
{
    free(p->user);
    free(p->cont);
    if (p->rendered != NULL)
        evbuffer_free(p->rendered);
}

/* A new request from the parsed body, its choices planned; NULL with e
 * filled. */
static tg_sim_req_t *
tg_sim_req_from(tg_sim_t *sim, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    tg_sim_req_t *req = tg_sim_req_new(sim, p->n);

    if (req == NULL || (req->model = strdup(p->model)) == NULL) {
        tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
        tg_sim_req_free(req);
        return NULL;
    }
    req->kind = p->kind;
    req->stream = p->stream;
    req->include_usage = p->include_usage;
    req->continuous_usage = p->continuous_usage;
    req->logprobs = p->logprobs;
    req->top_logprobs = p->top_logprobs;
    req->inline_think = sim->opt.think_inline;
    if (tg_sim_plan_choices(sim, p, req, e) != 0) {
        tg_sim_req_free(req);
        return NULL;
    }
    return req;
}

/* Takes one injected fault (/sim/fault) if any is left.  1 when it was
 * garbage and already answered r; req then is the caller's to free. */
static int
tg_sim_take_fault(tg_sim_t *sim, struct evhttp_request *r, tg_sim_req_t *req)
{
    if (sim->fault_left <= 0)
        return 0;
    sim->fault_left--;
    sim->stats.faults++;
    if (sim->fault_mode == TG_SIM_FAULT_GARBAGE) {
        tg_sim_send_garbage(r, req->stream);
        return 1;
    }
    req->fault = sim->fault_mode;
    req->fault_after = sim->fault_after;
    return 0;
}

/* The prompt's tokens (a quarter of its rendered bytes) and those the
 * prefix cache already holds. */
static void
tg_sim_count_prompt(tg_sim_t *sim, tg_sim_parsed_t *p, tg_sim_req_t *req)
{
    size_t len = evbuffer_get_length(p->rendered), total;
    const char *raw = (const char *) evbuffer_pullup(p->rendered, -1);

    req->prompt_tokens = (uint32_t) ((len + 3) / 4);
    if (req->prompt_tokens == 0)
        req->prompt_tokens = 1;
    if (sim->cache != NULL && raw != NULL) {
        size_t hits = tg_sim_cache_lookup_insert(sim->cache, p->model, raw,
                                                 len, &total);

        sim->stats.prefix_cache_hits += hits;
        sim->stats.prefix_cache_misses += total - hits;
        req->cached_tokens = (uint32_t) (hits * TG_SIM_BLOCK_TOKENS);
        if (req->cached_tokens > req->prompt_tokens)
            req->cached_tokens = req->prompt_tokens;
    }
}

/* Names the request, ties it to r and queues it; -1 with e filled when the
 * wait queue is full. */
static int
tg_sim_queue(tg_sim_t *sim, struct evhttp_request *r, tg_sim_req_t *req,
             tg_sim_err_t *e)
{
    snprintf(req->id, sizeof(req->id), "%s-%016llx",
             req->kind == TG_SIM_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long) ++sim->req_counter);
    req->created = (long long) time(NULL);
    req->http = r;
    req->conn = evhttp_request_get_connection(r);
    if (tg_sim_submit(sim, req) != 0) {
        req->http = NULL;
        sim->stats.rejected++;
        return tg_sim_fail(e, 429, NULL, "queue_full", "the wait queue is "
                           "full (--max-queue); retry later%s", NULL);
    }
    sim->stats.requests++;
    return 0;
}

static void
tg_sim_handle_generate(tg_sim_t *sim, struct evhttp_request *r, int kind)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t len = evbuffer_get_length(in);
    tg_sim_parsed_t p;
    tg_sim_err_t e;
    tg_sim_req_t *req = NULL;
    json_error_t jerr;
    json_t *body;
    const char *raw;

    memset(&p, 0, sizeof(p));
    memset(&e, 0, sizeof(e));
    p.kind = kind;
    raw = (const char *) evbuffer_pullup(in, -1);
    body = json_loadb(raw ? raw : "", len, 0, &jerr);
    p.rendered = evbuffer_new();
    if (p.rendered == NULL) {
        tg_sim_fail(&e, 500, NULL, NULL, "out of memory%s", NULL);
        goto failed;
    }
    if (body == NULL || !json_is_object(body)) {
        tg_sim_fail(&e, 400, NULL, NULL, "the body must be a JSON object: %s",
                    body == NULL ? jerr.text : "not an object");
        goto failed;
    }
    if (tg_sim_for_judge(sim, body)) {
        tg_sim_handle_judge(sim, r, body, kind);
        goto done;
    }
    if (tg_sim_parse_common(sim, body, &p, &e) != 0
        || (kind == TG_SIM_CHAT ? tg_sim_parse_chat(body, &p, &e)
                                : tg_sim_parse_completion(body, &p, &e)) != 0
        || (req = tg_sim_req_from(sim, &p, &e)) == NULL)
        goto failed;
    if (tg_sim_take_fault(sim, r, req)) {
        tg_sim_req_free(req);
        goto done;
    }
    tg_sim_count_prompt(sim, &p, req);
    if (tg_sim_queue(sim, r, req, &e) != 0)
        goto failed;
    goto done;

failed:
    tg_sim_send_error(r, &e);
    tg_sim_req_free(req);
done:
    if (body != NULL)
        json_decref(body);
    tg_sim_parsed_free(&p);
}

static void
tg_sim_handle_embeddings(tg_sim_t *sim, struct evhttp_request *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    struct evbuffer *out = evbuffer_new();
    size_t len = evbuffer_get_length(in);
    const char *raw = (const char *) evbuffer_pullup(in, -1);
    tg_sim_err_t e;

    memset(&e, 0, sizeof(e));
    if (out == NULL)
        evhttp_send_error(r, 500, "out of memory");
    else if (tg_sim_embed_reply(sim, raw, len, out, &e) != 0)
        tg_sim_send_error(r, &e);
    else
        tg_sim_send_json(r, 200, "OK", out);
    if (out != NULL)
        evbuffer_free(out);
}

static void
tg_sim_handle_models(tg_sim_t *sim, struct evhttp_request *r)
{
    struct evbuffer *b = evbuffer_new();
    size_t i, n = sim->traces ? sim->traces->n_models : 1;
    int rc = 0;

    if (b == NULL) {
        evhttp_send_error(r, 500, "out of memory");
        return;
    }
    rc |= evbuffer_add_printf(b, "{\"object\":\"list\",\"data\":[") < 0;
    for (i = 0; i < n; i++) {
        const char *m = sim->traces ? sim->traces->models[i] : sim->opt.model;

        rc |= evbuffer_add_printf(b, "%s{\"id\":", i ? "," : "") < 0;
        rc |= tg_sim_json_str(b, m, strlen(m)) != 0;
        rc |= evbuffer_add_printf(b, ",\"object\":\"model\",\"created\":0,"
                                  "\"owned_by\":\"thinkgate-sim\"}") < 0;
    }
    rc |= evbuffer_add_printf(b, "]}\n") < 0;
    if (rc)
        evhttp_send_error(r, 500, "out of memory");
    else
        tg_sim_send_json(r, 200, "OK", b);
    evbuffer_free(b);
}

static void
tg_sim_handle_stats(tg_sim_t *sim, struct evhttp_request *r)
{
    struct evbuffer *b = evbuffer_new();
    tg_sim_stats_t *s = &sim->stats;

    if (b == NULL || evbuffer_add_printf(b,
        "{\"requests\":%llu,\"open_streams\":%d,\"running\":%d,"
        "\"queued\":%d,\"tokens_generated\":%llu,\"tokens_after_close\":%llu,"
        "\"cancelled_streams\":%llu,\"completed_streams\":%llu,"
        "\"prefix_cache_hits\":%llu,\"prefix_cache_misses\":%llu,"
        "\"prefix_cache_unit\":\"blocks\",\"prefix_cache_blocks\":%zu,"
        "\"rejected\":%llu,\"steps\":%llu,\"judge_requests\":%llu,"
        "\"judge_unmatched\":%llu,\"judge_yes\":%llu,"
        "\"judge_ambiguous\":%llu,\"model_swaps\":%llu,"
        "\"faults\":%llu,\"faults_armed\":%lld,"
        "\"peak_open_streams\":%llu}\n",
        s->requests, sim->open_streams, sim->running_streams,
        sim->queued_streams, s->tokens_generated, s->tokens_after_close,
        s->cancelled_streams, s->completed_streams, s->prefix_cache_hits,
        s->prefix_cache_misses,
        sim->cache ? tg_sim_cache_size(sim->cache) : (size_t) 0,
        s->rejected, s->steps, sim->judge.requests, sim->judge.unmatched,
        sim->judge.yes, sim->judge.ambiguous, s->model_swaps, s->faults,
        sim->fault_left, s->peak_open_streams) < 0)
        evhttp_send_error(r, 500, "out of memory");
    else
        tg_sim_send_json(r, 200, "OK", b);
    if (b != NULL)
        evbuffer_free(b);
}

/*
 * POST /sim/fault {"mode": "hang"|"garbage"|"close"|"none", "count": N,
 * "after": S}: the next N generation requests (default 1) misbehave.
 * hang: after S decode steps the request says nothing more until its
 * client leaves (a streamed one has its headers and role chunk by then);
 * close: after S steps the connection is dropped mid-answer; garbage: a
 * 200 that is not an OpenAI answer, at once.  "none" disarms.  Requests
 * that fail validation do not use up the count.
 */
static void
tg_sim_handle_fault(tg_sim_t *sim, struct evhttp_request *r)
{
    static const char *const modes[] = { "none", "hang", "garbage",
                                         "close" };
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t len = evbuffer_get_length(in), i;
    const char *raw = (const char *) evbuffer_pullup(in, -1);
    json_error_t jerr;
    json_t *body = json_loadb(raw ? raw : "", len, 0, &jerr), *v;
    struct evbuffer *b = NULL;
    const char *mode;
    long long count = 1, after = 0;
    tg_sim_err_t e;

    memset(&e, 0, sizeof(e));
    if (body == NULL || !json_is_object(body)) {
        tg_sim_fail(&e, 400, NULL, NULL, "the body must be a JSON object: %s",
                    body == NULL ? jerr.text : "not an object");
        goto failed;
    }
    v = json_object_get(body, "mode");
    mode = json_is_string(v) ? json_string_value(v) : "";
    for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(mode, modes[i]) == 0)
            break;
    if (i == sizeof(modes) / sizeof(modes[0])) {
        tg_sim_fail(&e, 400, "mode", NULL, "mode must be \"hang\", "
                    "\"garbage\", \"close\" or \"none\"%s", NULL);
        goto failed;
    }
    if ((v = json_object_get(body, "count")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > 1000000000) {
            tg_sim_fail(&e, 400, "count", NULL, "count must be an integer "
                        "from 0 to 1000000000%s", NULL);
            goto failed;
        }
        count = json_integer_value(v);
    }
    if ((v = json_object_get(body, "after")) != NULL) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > 100000000) {
            tg_sim_fail(&e, 400, "after", NULL, "after must be an integer "
                        "from 0 to 100000000%s", NULL);
            goto failed;
        }
        after = json_integer_value(v);
    }
    sim->fault_mode = (int) i;
    sim->fault_left = i == TG_SIM_FAULT_NONE ? 0 : count;
    sim->fault_after = (uint32_t) after;
    b = evbuffer_new();
    if (b == NULL || evbuffer_add_printf(b, "{\"mode\":\"%s\",\"count\":%lld,"
                                         "\"after\":%lld}\n", modes[i],
                                         sim->fault_left, after) < 0)
        evhttp_send_error(r, 500, "out of memory");
    else
        tg_sim_send_json(r, 200, "OK", b);
    if (b != NULL)
        evbuffer_free(b);
    json_decref(body);
    return;

failed:
    tg_sim_send_error(r, &e);
    if (body != NULL)
        json_decref(body);
}

static void
tg_sim_handle_judge_log(tg_sim_t *sim, struct evhttp_request *r)
{
    struct evbuffer *b = evbuffer_new();

    if (b == NULL || tg_sim_judge_render_log(sim, b) != 0)
        evhttp_send_error(r, 500, "out of memory");
    else
        tg_sim_send_json(r, 200, "OK", b);
    if (b != NULL)
        evbuffer_free(b);
}

/*
 * Streams go out as one small write per decode step; with Nagle on, each
 * write after the first waits for the peer's delayed ACK (~40 ms), which
 * no GPU server does (vLLM's uvicorn sets TCP_NODELAY too).  Set per
 * request: cheap, and keep-alive connections just repeat it.
 */
static void
tg_sim_nodelay(struct evhttp_request *r)
{
    struct evhttp_connection *c = evhttp_request_get_connection(r);
    struct bufferevent *bev = c ? evhttp_connection_get_bufferevent(c) : NULL;
    evutil_socket_t fd = bev ? bufferevent_getfd(bev) : -1;
    int one = 1;

    if (fd >= 0)
        (void) setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static void
tg_sim_http_cb(struct evhttp_request *r, void *arg)
{
    tg_sim_t *sim = arg;
    const char *uri = evhttp_request_get_uri(r);
    enum evhttp_cmd_type m = evhttp_request_get_command(r);
    const char *q = strchr(uri, '?');
    size_t plen = q ? (size_t) (q - uri) : strlen(uri);
    tg_sim_err_t e;
    int post = m == EVHTTP_REQ_POST, get = m == EVHTTP_REQ_GET;

#define TG_SIM_PATH(s) (plen == sizeof(s) - 1 && memcmp(uri, s, plen) == 0)
    memset(&e, 0, sizeof(e));
    tg_sim_nodelay(r);
    if (TG_SIM_PATH("/v1/chat/completions") && post)
        tg_sim_handle_generate(sim, r, TG_SIM_CHAT);
    else if (TG_SIM_PATH("/v1/completions") && post)
        tg_sim_handle_generate(sim, r, TG_SIM_COMPLETION);
    else if (TG_SIM_PATH("/v1/embeddings") && post)
        tg_sim_handle_embeddings(sim, r);
    else if (TG_SIM_PATH("/v1/models") && get)
        tg_sim_handle_models(sim, r);
    else if (TG_SIM_PATH("/sim/stats") && get)
        tg_sim_handle_stats(sim, r);
    else if (TG_SIM_PATH("/sim/judge") && get)
        tg_sim_handle_judge_log(sim, r);
    else if (TG_SIM_PATH("/sim/fault") && post)
        tg_sim_handle_fault(sim, r);
    else if (TG_SIM_PATH("/sim/reset") && post) {
        /* Counters only: open_streams, running and queued are gauges. */
        memset(&sim->stats, 0, sizeof(sim->stats));
        tg_sim_judge_reset(sim);
        tg_sim_handle_stats(sim, r);
    } else if (TG_SIM_PATH("/health") && get) {
        evhttp_send_reply(r, 200, "OK", NULL);
    } else if (TG_SIM_PATH("/v1/chat/completions")
               || TG_SIM_PATH("/v1/completions") || TG_SIM_PATH("/v1/models")
               || TG_SIM_PATH("/v1/embeddings")
               || TG_SIM_PATH("/sim/stats") || TG_SIM_PATH("/sim/reset")
               || TG_SIM_PATH("/sim/judge") || TG_SIM_PATH("/sim/fault")
               || TG_SIM_PATH("/health")) {
        tg_sim_fail(&e, 405, NULL, "method_not_allowed",
                    "method not allowed for %s", uri);
        tg_sim_send_error(r, &e);
    } else {
        tg_sim_fail(&e, 404, NULL, "not_found", "no such endpoint: %s", uri);
        tg_sim_send_error(r, &e);
    }
#undef TG_SIM_PATH
}

int
tg_sim_http_setup(tg_sim_t *sim)
{
    sim->http = evhttp_new(sim->base);
    if (sim->http == NULL)
        return -ENOMEM;
    evhttp_set_max_body_size(sim->http, 64 << 20);
    evhttp_set_allowed_methods(sim->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    evhttp_set_gencb(sim->http, tg_sim_http_cb, sim);
    return tg_sim_http_listen(sim);
}

/*
 * evhttp_bind_socket() listens with a backlog of 128: a gateway opening a
 * few hundred backend connections at once (n traces for each of many
 * requests) then sees connects wait for SYN retries, as no GPU server
 * would make it.  Listen ourselves with the system's maximum backlog.
 */
static int
tg_sim_http_listen(tg_sim_t *sim)
{
    struct evutil_addrinfo   hints, *ai = NULL;
    evutil_socket_t          fd;
    char                     port[16];
    int                      one = 1, err;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = EVUTIL_AI_PASSIVE;
    snprintf(port, sizeof(port), "%d", sim->opt.listen_port);
    /* Once, at start-up, before the loop runs: blocking is fine here. */
    if (evutil_getaddrinfo(sim->opt.listen_host, port, &hints, &ai) != 0
        || ai == NULL)
        return -EINVAL;

    fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        err = errno;
        evutil_freeaddrinfo(ai);
        return -err;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0
        || bind(fd, ai->ai_addr, ai->ai_addrlen) != 0
        || listen(fd, SOMAXCONN) != 0)
    {
        err = errno;
        evutil_freeaddrinfo(ai);
        evutil_closesocket(fd);
        return -err;
    }
    evutil_freeaddrinfo(ai);
    if (evhttp_accept_socket(sim->http, fd) != 0) {
        evutil_closesocket(fd);
        return -ENOMEM;
    }
    return 0;
}
