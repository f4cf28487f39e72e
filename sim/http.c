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

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "sim.h"

#define TG_SIM_MAX_N 128
#define TG_SIM_MAX_STOPS 16
#define TG_SIM_NO_ANSWER "I have not reached a final answer yet."

typedef struct {
    int          kind;
    const char  *model;
    int          n;
    int          stream;
    int          include_usage;
    uint32_t     max_tokens;
    int          has_seed;
    long long    seed;
    int          logprobs;
    int          top_logprobs;
    const char  *stops[TG_SIM_MAX_STOPS];
    size_t       n_stops;
    int          continue_final;
    /* chat: the last user message and the message to continue */
    char        *user;
    size_t       user_len;
    char        *cont;
    size_t       cont_len;
    /* completions: the raw prompt */
    const char  *prompt;
    size_t       prompt_len;
    /* the rendered prompt, for prompt tokens and the prefix cache */
    struct evbuffer *rendered;
} tg_sim_parsed_t;

typedef struct {
    int         status;
    const char *type;
    const char *param;
    const char *code;
    char        msg[512];
} tg_sim_err_t;

static void tg_sim_http_cb(struct evhttp_request *r, void *arg);

static int
tg_sim_fail(tg_sim_err_t *e, int status, const char *param, const char *code,
            const char *fmt, const char *arg)
{
    e->status = status;
    e->type = status == 429 ? "rate_limit_error"
            : status >= 500 ? "server_error" : "invalid_request_error";
    e->param = param;
    e->code = code;
    snprintf(e->msg, sizeof(e->msg), fmt, arg ? arg : "");
    return -1;
}

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

/* Message content: a string, null, or an array of {"type":"text"} parts
 * (joined).  malloc'd; NULL with *bad set for anything else. */
static char *
tg_sim_content_text(json_t *content, size_t *len, int *bad)
{
    size_t i, n = 0;
    json_t *part;
    char *s;

    *bad = 0;
    if (content == NULL || json_is_null(content)) {
        *len = 0;
        return strdup("");
    }
    if (json_is_string(content)) {
        *len = json_string_length(content);
        s = malloc(*len + 1);
        if (s != NULL)
            memcpy(s, json_string_value(content), *len + 1);
        return s;
    }
    if (!json_is_array(content)) {
        *bad = 1;
        return NULL;
    }
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");

        if (!json_is_string(t)) {
            *bad = 1;
            return NULL;
        }
        n += json_string_length(t);
    }
    s = malloc(n + 1);
    if (s == NULL)
        return NULL;
    n = 0;
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");

        memcpy(s + n, json_string_value(t), json_string_length(t));
        n += json_string_length(t);
    }
    s[n] = '\0';
    *len = n;
    return s;
}

static int
tg_sim_parse_common(tg_sim_t *sim, json_t *body, tg_sim_parsed_t *p,
                    tg_sim_err_t *e)
{
    json_t *v, *so;
    size_t i;

    v = json_object_get(body, "model");
    if (!json_is_string(v))
        return tg_sim_fail(e, 400, "model", NULL,
                           "'model' must be a string naming a model%s",
                           NULL);
    p->model = json_string_value(v);
    if (sim->traces != NULL ? !tg_sim_traces_has_model(sim->traces, p->model)
                            : strcmp(p->model, sim->opt.model) != 0)
        return tg_sim_fail(e, 404, "model", "model_not_found",
                           "The model `%s` does not exist.", p->model);

    p->n = 1;
    if ((v = json_object_get(body, "n")) != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1
            || json_integer_value(v) > TG_SIM_MAX_N)
            return tg_sim_fail(e, 400, "n", NULL, "'n' must be an integer "
                               "from 1 to 128%s", NULL);
        p->n = (int) json_integer_value(v);
    }
    v = json_object_get(body, "max_completion_tokens");
    if (v == NULL || json_is_null(v))
        v = json_object_get(body, "max_tokens");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1
            || json_integer_value(v) > 100000000)
            return tg_sim_fail(e, 400, "max_tokens", NULL, "'max_tokens' "
                               "must be a positive integer%s", NULL);
        p->max_tokens = (uint32_t) json_integer_value(v);
    }
    if ((v = json_object_get(body, "stream")) != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return tg_sim_fail(e, 400, "stream", NULL,
                               "'stream' must be a boolean%s", NULL);
        p->stream = json_is_true(v);
    }
    so = json_object_get(body, "stream_options");
    if (so != NULL && !json_is_null(so)) {
        if (!json_is_object(so))
            return tg_sim_fail(e, 400, "stream_options", NULL,
                               "'stream_options' must be an object%s", NULL);
        v = json_object_get(so, "include_usage");
        if (v != NULL && !json_is_boolean(v) && !json_is_null(v))
            return tg_sim_fail(e, 400, "stream_options.include_usage", NULL,
                               "'include_usage' must be a boolean%s", NULL);
        p->include_usage = json_is_true(v);
    }
    if ((v = json_object_get(body, "stop")) != NULL && !json_is_null(v)) {
        json_t *s;

        if (json_is_string(v)) {
            p->stops[p->n_stops++] = json_string_value(v);
        } else if (json_is_array(v)
                   && json_array_size(v) <= TG_SIM_MAX_STOPS) {
            json_array_foreach(v, i, s) {
                if (!json_is_string(s))
                    break;
                p->stops[p->n_stops++] = json_string_value(s);
            }
            if (i < json_array_size(v))
                return tg_sim_fail(e, 400, "stop", NULL, "'stop' must be a "
                                   "string or a list of strings%s", NULL);
        } else {
            return tg_sim_fail(e, 400, "stop", NULL, "'stop' must be a "
                               "string or a list of at most 16 strings%s",
                               NULL);
        }
    }
    if ((v = json_object_get(body, "seed")) != NULL && !json_is_null(v)) {
        if (!json_is_integer(v))
            return tg_sim_fail(e, 400, "seed", NULL,
                               "'seed' must be an integer%s", NULL);
        p->has_seed = 1;
        p->seed = json_integer_value(v);
    }
    if ((v = json_object_get(body, "temperature")) != NULL
        && !json_is_null(v)
        && (!json_is_number(v) || json_number_value(v) < 0
            || json_number_value(v) > 2))
        return tg_sim_fail(e, 400, "temperature", NULL, "'temperature' must "
                           "be a number from 0 to 2%s", NULL);
    if ((v = json_object_get(body, "top_p")) != NULL && !json_is_null(v)
        && (!json_is_number(v) || json_number_value(v) <= 0
            || json_number_value(v) > 1))
        return tg_sim_fail(e, 400, "top_p", NULL, "'top_p' must be a number "
                           "in (0, 1]%s", NULL);
    return 0;
}

static int
tg_sim_parse_chat(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *msgs = json_object_get(body, "messages"), *m, *v;
    size_t i, n;
    int bad;

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return tg_sim_fail(e, 400, "messages", NULL, "'messages' must be a "
                           "non-empty list of messages%s", NULL);
    n = json_array_size(msgs);
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *rc = json_object_get(m, "reasoning_content");
        char *text;
        size_t len;

        if (role == NULL || (strcmp(role, "system") != 0
                             && strcmp(role, "developer") != 0
                             && strcmp(role, "user") != 0
                             && strcmp(role, "assistant") != 0
                             && strcmp(role, "tool") != 0))
            return tg_sim_fail(e, 400, "messages", NULL, "each message needs "
                               "a role: system, developer, user, assistant "
                               "or tool%s", NULL);
        text = tg_sim_content_text(json_object_get(m, "content"), &len, &bad);
        if (text == NULL)
            return tg_sim_fail(e, bad ? 400 : 500, "messages", NULL,
                               bad ? "message content must be a string or a "
                               "list of text parts%s" : "out of memory%s",
                               NULL);
        if (evbuffer_add_printf(p->rendered, "<|%s|>\n", role) < 0
            || evbuffer_add(p->rendered, text, len) != 0
            || evbuffer_add(p->rendered, "\n", 1) != 0) {
            free(text);
            return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
        }
        if (strcmp(role, "user") == 0) {
            free(p->user);
            p->user = text;
            p->user_len = len;
        } else if (i == n - 1 && strcmp(role, "assistant") == 0) {
            /* The message to continue: thinking first when the client
             * passes it separately, as the recording has it. */
            if (json_is_string(rc)) {
                size_t rl = json_string_length(rc);
                char *both = malloc(rl + len + 1);

                if (both == NULL) {
                    free(text);
                    return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s",
                                       NULL);
                }
                memcpy(both, json_string_value(rc), rl);
                memcpy(both + rl, text, len + 1);
                free(text);
                text = both;
                len += rl;
            }
            p->cont = text;
            p->cont_len = len;
        } else {
            free(text);
        }
    }
    v = json_object_get(body, "continue_final_message");
    if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
        return tg_sim_fail(e, 400, "continue_final_message", NULL,
                           "'continue_final_message' must be a boolean%s",
                           NULL);
    p->continue_final = json_is_true(v);
    if (p->continue_final) {
        if (p->cont == NULL)
            return tg_sim_fail(e, 400, "continue_final_message", NULL,
                               "continue_final_message needs an assistant "
                               "message last%s", NULL);
        if (json_is_true(json_object_get(body, "add_generation_prompt")))
            return tg_sim_fail(e, 400, "add_generation_prompt", NULL,
                               "add_generation_prompt and "
                               "continue_final_message cannot both be "
                               "true%s", NULL);
    }
    if (p->user == NULL)
        return tg_sim_fail(e, 400, "messages", NULL,
                           "'messages' needs a user message%s", NULL);
    v = json_object_get(body, "logprobs");
    if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
        return tg_sim_fail(e, 400, "logprobs", NULL,
                           "'logprobs' must be a boolean%s", NULL);
    p->logprobs = json_is_true(v);
    v = json_object_get(body, "top_logprobs");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > 20)
            return tg_sim_fail(e, 400, "top_logprobs", NULL, "'top_logprobs' "
                               "must be an integer from 0 to 20%s", NULL);
        if (!p->logprobs && json_integer_value(v) > 0)
            return tg_sim_fail(e, 400, "top_logprobs", NULL, "'top_logprobs' "
                               "needs 'logprobs': true%s", NULL);
        p->top_logprobs = (int) json_integer_value(v);
    }
    return 0;
}

static int
tg_sim_parse_completion(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v = json_object_get(body, "prompt");

    if (json_is_array(v) && json_array_size(v) == 1
        && json_is_string(json_array_get(v, 0)))
        v = json_array_get(v, 0);
    if (!json_is_string(v))
        return tg_sim_fail(e, 400, "prompt", NULL, "'prompt' must be a string "
                           "(or a list of one string)%s", NULL);
    p->prompt = json_string_value(v);
    p->prompt_len = json_string_length(v);
    if (evbuffer_add(p->rendered, p->prompt, p->prompt_len) != 0)
        return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
    v = json_object_get(body, "logprobs");
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0
            || json_integer_value(v) > 20)
            return tg_sim_fail(e, 400, "logprobs", NULL, "'logprobs' must be "
                               "an integer from 0 to 20%s", NULL);
        p->logprobs = 1;
        p->top_logprobs = (int) json_integer_value(v);
    }
    return 0;
}

/* The continuation reply: the last answer the prefix states, never more. */
static int
tg_sim_set_continuation(tg_sim_choice_t *c, const char *prefix, size_t len)
{
    char ans[1024];
    size_t n = tg_sim_extract_answer(prefix, len, ans, sizeof(ans));
    size_t cap = n + 16;

    c->own_text = malloc(cap > sizeof(TG_SIM_NO_ANSWER)
                         ? cap : sizeof(TG_SIM_NO_ANSWER));
    if (c->own_text == NULL)
        return -ENOMEM;
    if (n > 0)
        snprintf(c->own_text, cap, "\\boxed{%s}", ans);
    else
        strcpy(c->own_text, TG_SIM_NO_ANSWER);
    if (tg_sim_plan_build(&c->own, c->own_text, strlen(c->own_text), 0, 0)
        != 0)
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

/* Chooses the text of every choice: replay, continuation or synthetic. */
static int
tg_sim_plan_choices(tg_sim_t *sim, tg_sim_parsed_t *p, tg_sim_req_t *req,
                    tg_sim_err_t *e)
{
    tg_sim_problem_t *prob = NULL;
    const char *cont = NULL;
    size_t cont_len = 0, end, plen = 0;
    tg_sim_sample_t *match = NULL;
    uint64_t base;
    int i;

    if (p->kind == TG_SIM_CHAT) {
        if (p->continue_final) {
            cont = p->cont;
            cont_len = p->cont_len;
        }
        if (sim->traces != NULL) {
            prob = tg_sim_traces_find(sim->traces, p->model, p->user,
                                      p->user_len);
            if (prob == NULL)
                return tg_sim_fail(e, 404, "messages", "trace_not_found",
                                   "no recorded trace matches the last user "
                                   "message for model `%s`", p->model);
        }
    } else if (sim->traces != NULL) {
        prob = tg_sim_traces_find_in(sim->traces, p->model, p->prompt,
                                     p->prompt_len, &end);
        if (prob == NULL)
            return tg_sim_fail(e, 404, "prompt", "trace_not_found",
                               "no recorded trace matches: the prompt holds "
                               "no recorded problem of model `%s`",
                               p->model);
        match = tg_sim_traces_match_prefix(prob, p->prompt + end,
                                           p->prompt_len - end, &plen);
        if (match != NULL) {
            cont = p->prompt + end;
            cont_len = p->prompt_len - end;
        }
    } else {
        /* Synthetic completions continue whatever follows <think>. */
        const char *t = NULL, *s = p->prompt;

        while ((s = memmem(s, p->prompt_len - (size_t) (s - p->prompt),
                           "<think>", 7)) != NULL)
            t = s++;
        if (t != NULL) {
            cont = t + 7;
            cont_len = p->prompt_len - (size_t) (cont - p->prompt);
        }
    }

    if (cont != NULL && prob != NULL && match == NULL)
        match = tg_sim_traces_match_prefix(prob, cont, cont_len, &plen);
    base = p->has_seed ? (uint64_t) p->seed : 0;
    if (!p->has_seed && cont == NULL) {
        /* Seedless requests take the next samples in turn. */
        if (prob != NULL) {
            base = prob->next;
            prob->next += (uint64_t) p->n;
        } else {
            base = sim->synth_counter;
            sim->synth_counter += (uint64_t) p->n;
        }
    }
    for (i = 0; i < p->n; i++) {
        tg_sim_choice_t *c = &req->choices[i];
        int rc;

        if (cont != NULL) {
            /* Only the part that matches a recording counts as what the
             * model said; without a match, the client's text itself. */
            rc = match != NULL
                ? tg_sim_set_continuation(c, match->output, plen)
                : tg_sim_set_continuation(c, cont, cont_len);
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

static void
tg_sim_handle_generate(tg_sim_t *sim, struct evhttp_request *r, int kind)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r);
    size_t len = evbuffer_get_length(in), total;
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
    if (tg_sim_parse_common(sim, body, &p, &e) != 0
        || (kind == TG_SIM_CHAT ? tg_sim_parse_chat(body, &p, &e)
                                : tg_sim_parse_completion(body, &p, &e)) != 0)
        goto failed;
    req = tg_sim_req_new(sim, p.n);
    if (req == NULL || (req->model = strdup(p.model)) == NULL) {
        tg_sim_fail(&e, 500, NULL, NULL, "out of memory%s", NULL);
        goto failed;
    }
    req->kind = kind;
    req->stream = p.stream;
    req->include_usage = p.include_usage;
    req->logprobs = p.logprobs;
    req->top_logprobs = p.top_logprobs;
    req->inline_think = sim->opt.think_inline;
    if (tg_sim_plan_choices(sim, &p, req, &e) != 0)
        goto failed;

    len = evbuffer_get_length(p.rendered);
    raw = (const char *) evbuffer_pullup(p.rendered, -1);
    req->prompt_tokens = (uint32_t) ((len + 3) / 4);
    if (req->prompt_tokens == 0)
        req->prompt_tokens = 1;
    if (sim->cache != NULL && raw != NULL) {
        size_t hits = tg_sim_cache_lookup_insert(sim->cache, p.model, raw,
                                                 len, &total);

        sim->stats.prefix_cache_hits += hits;
        sim->stats.prefix_cache_misses += total - hits;
        req->cached_tokens = (uint32_t) (hits * TG_SIM_BLOCK_TOKENS);
        if (req->cached_tokens > req->prompt_tokens)
            req->cached_tokens = req->prompt_tokens;
    }
    snprintf(req->id, sizeof(req->id), "%s-%016llx",
             kind == TG_SIM_CHAT ? "chatcmpl" : "cmpl",
             (unsigned long long) ++sim->req_counter);
    req->created = (long long) time(NULL);
    req->http = r;
    req->conn = evhttp_request_get_connection(r);
    if (tg_sim_submit(sim, req) != 0) {
        req->http = NULL;
        sim->stats.rejected++;
        tg_sim_fail(&e, 429, NULL, "queue_full", "the wait queue is full "
                    "(--max-queue); retry later%s", NULL);
        goto failed;
    }
    sim->stats.requests++;
    json_decref(body);
    free(p.user);
    free(p.cont);
    evbuffer_free(p.rendered);
    return;

failed:
    tg_sim_send_error(r, &e);
    tg_sim_req_free(req);
    if (body != NULL)
        json_decref(body);
    free(p.user);
    free(p.cont);
    if (p.rendered != NULL)
        evbuffer_free(p.rendered);
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
        "\"rejected\":%llu,\"steps\":%llu}\n",
        s->requests, sim->open_streams, sim->running_streams,
        sim->queued_streams, s->tokens_generated, s->tokens_after_close,
        s->cancelled_streams, s->completed_streams, s->prefix_cache_hits,
        s->prefix_cache_misses,
        sim->cache ? tg_sim_cache_size(sim->cache) : (size_t) 0,
        s->rejected, s->steps) < 0)
        evhttp_send_error(r, 500, "out of memory");
    else
        tg_sim_send_json(r, 200, "OK", b);
    if (b != NULL)
        evbuffer_free(b);
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
    if (TG_SIM_PATH("/v1/chat/completions") && post)
        tg_sim_handle_generate(sim, r, TG_SIM_CHAT);
    else if (TG_SIM_PATH("/v1/completions") && post)
        tg_sim_handle_generate(sim, r, TG_SIM_COMPLETION);
    else if (TG_SIM_PATH("/v1/models") && get)
        tg_sim_handle_models(sim, r);
    else if (TG_SIM_PATH("/sim/stats") && get)
        tg_sim_handle_stats(sim, r);
    else if (TG_SIM_PATH("/sim/reset") && post) {
        /* Counters only: open_streams, running and queued are gauges. */
        memset(&sim->stats, 0, sizeof(sim->stats));
        tg_sim_handle_stats(sim, r);
    } else if (TG_SIM_PATH("/health") && get) {
        evhttp_send_reply(r, 200, "OK", NULL);
    } else if (TG_SIM_PATH("/v1/chat/completions")
               || TG_SIM_PATH("/v1/completions") || TG_SIM_PATH("/v1/models")
               || TG_SIM_PATH("/sim/stats") || TG_SIM_PATH("/sim/reset")
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
    if (evhttp_bind_socket(sim->http, sim->opt.listen_host,
                           (ev_uint16_t) sim->opt.listen_port) != 0)
        return -EADDRINUSE;
    return 0;
}
