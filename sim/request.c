/*
 * Parsing and validating generation requests.  Every check names the
 * parameter, so a client sees which one was wrong.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "request.h"

int
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

/* 'model': a string naming a recorded model, or the --model. */
static int
tg_sim_parse_model(tg_sim_t *sim, json_t *body, tg_sim_parsed_t *p,
                   tg_sim_err_t *e)
{
    json_t *v = json_object_get(body, "model");

    if (!json_is_string(v))
        return tg_sim_fail(e, 400, "model", NULL,
                           "'model' must be a string naming a model%s",
                           NULL);
    p->model = json_string_value(v);
    if (sim->traces != NULL ? !tg_sim_traces_has_model(sim->traces, p->model)
                            : strcmp(p->model, sim->opt.model) != 0)
        return tg_sim_fail(e, 404, "model", "model_not_found",
                           "The model `%s` does not exist.", p->model);
    return 0;
}

/* 'n' and 'max_completion_tokens' (or the older 'max_tokens'). */
static int
tg_sim_parse_counts(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v;

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
    return 0;
}

/* 'stream' and 'stream_options'. */
static int
tg_sim_parse_stream(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v, *so;

    if ((v = json_object_get(body, "stream")) != NULL && !json_is_null(v)) {
        if (!json_is_boolean(v))
            return tg_sim_fail(e, 400, "stream", NULL,
                               "'stream' must be a boolean%s", NULL);
        p->stream = json_is_true(v);
    }
    so = json_object_get(body, "stream_options");
    if (so == NULL || json_is_null(so))
        return 0;
    if (!json_is_object(so))
        return tg_sim_fail(e, 400, "stream_options", NULL,
                           "'stream_options' must be an object%s", NULL);
    v = json_object_get(so, "include_usage");
    if (v != NULL && !json_is_boolean(v) && !json_is_null(v))
        return tg_sim_fail(e, 400, "stream_options.include_usage", NULL,
                           "'include_usage' must be a boolean%s", NULL);
    p->include_usage = json_is_true(v);
    /* vLLM's continuous_usage_stats: usage in every chunk, so that a
     * client that cancels still knows how many tokens it received.
     * Like vLLM, it only applies together with include_usage. */
    v = json_object_get(so, "continuous_usage_stats");
    if (v != NULL && !json_is_boolean(v) && !json_is_null(v))
        return tg_sim_fail(e, 400, "stream_options.continuous_usage_stats",
                           NULL, "'continuous_usage_stats' must be a "
                           "boolean%s", NULL);
    p->continuous_usage = p->include_usage && json_is_true(v);
    return 0;
}

/* 'stop': a string or a list of at most TG_SIM_MAX_STOPS strings. */
static int
tg_sim_parse_stop(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v, *s;
    size_t i;

    if ((v = json_object_get(body, "stop")) == NULL || json_is_null(v))
        return 0;
    if (json_is_string(v)) {
        p->stops[p->n_stops++] = json_string_value(v);
    } else if (json_is_array(v) && json_array_size(v) <= TG_SIM_MAX_STOPS) {
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
    return 0;
}

/* 'seed' (kept), 'temperature' and 'top_p' (checked only). */
static int
tg_sim_parse_sampling(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v;

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

int
tg_sim_parse_common(tg_sim_t *sim, json_t *body, tg_sim_parsed_t *p,
                    tg_sim_err_t *e)
{
    if (tg_sim_parse_model(sim, body, p, e) != 0
        || tg_sim_parse_counts(body, p, e) != 0
        || tg_sim_parse_stream(body, p, e) != 0
        || tg_sim_parse_stop(body, p, e) != 0
        || tg_sim_parse_sampling(body, p, e) != 0)
        return -1;
    return 0;
}

/* The assistant message to continue: its reasoning_content, when the
 * client passes it separately, goes first, as the recording has it.  -1
 * when out of memory (text is then freed). */
static int
tg_sim_with_reasoning(json_t *rc, char **text, size_t *len)
{
    size_t rl;
    char *both;

    if (!json_is_string(rc))
        return 0;
    rl = json_string_length(rc);
    both = malloc(rl + *len + 1);
    if (both == NULL) {
        free(*text);
        return -1;
    }
    memcpy(both, json_string_value(rc), rl);
    memcpy(both + rl, *text, *len + 1);
    free(*text);
    *text = both;
    *len += rl;
    return 0;
}

static int
tg_sim_role_known(const char *role)
{
    return role != NULL && (strcmp(role, "system") == 0
                            || strcmp(role, "developer") == 0
                            || strcmp(role, "user") == 0
                            || strcmp(role, "assistant") == 0
                            || strcmp(role, "tool") == 0);
}

/* One message: rendered into p->rendered; the last user message kept in
 * p->user, a final assistant message in p->cont. */
static int
tg_sim_parse_message(json_t *m, int last, tg_sim_parsed_t *p,
                     tg_sim_err_t *e)
{
    const char *role = json_string_value(json_object_get(m, "role"));
    char *text;
    size_t len;
    int bad;

    if (!tg_sim_role_known(role))
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
    } else if (last && strcmp(role, "assistant") == 0) {
        if (tg_sim_with_reasoning(json_object_get(m, "reasoning_content"),
                                  &text, &len) != 0)
            return tg_sim_fail(e, 500, NULL, NULL, "out of memory%s", NULL);
        p->cont = text;
        p->cont_len = len;
    } else {
        free(text);
    }
    return 0;
}

/* 'continue_final_message': needs an assistant message last, and not
 * add_generation_prompt too. */
static int
tg_sim_parse_continue(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v = json_object_get(body, "continue_final_message");

    if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
        return tg_sim_fail(e, 400, "continue_final_message", NULL,
                           "'continue_final_message' must be a boolean%s",
                           NULL);
    p->continue_final = json_is_true(v);
    if (!p->continue_final)
        return 0;
    if (p->cont == NULL)
        return tg_sim_fail(e, 400, "continue_final_message", NULL,
                           "continue_final_message needs an assistant "
                           "message last%s", NULL);
    if (json_is_true(json_object_get(body, "add_generation_prompt")))
        return tg_sim_fail(e, 400, "add_generation_prompt", NULL,
                           "add_generation_prompt and "
                           "continue_final_message cannot both be "
                           "true%s", NULL);
    return 0;
}

/* 'logprobs' and 'top_logprobs' (0 to 20, and only with logprobs). */
static int
tg_sim_parse_logprobs(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *v = json_object_get(body, "logprobs");

    if (v != NULL && !json_is_null(v) && !json_is_boolean(v))
        return tg_sim_fail(e, 400, "logprobs", NULL,
                           "'logprobs' must be a boolean%s", NULL);
    p->logprobs = json_is_true(v);
    v = json_object_get(body, "top_logprobs");
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0
        || json_integer_value(v) > 20)
        return tg_sim_fail(e, 400, "top_logprobs", NULL, "'top_logprobs' "
                           "must be an integer from 0 to 20%s", NULL);
    if (!p->logprobs && json_integer_value(v) > 0)
        return tg_sim_fail(e, 400, "top_logprobs", NULL, "'top_logprobs' "
                           "needs 'logprobs': true%s", NULL);
    p->top_logprobs = (int) json_integer_value(v);
    return 0;
}

int
tg_sim_parse_chat(json_t *body, tg_sim_parsed_t *p, tg_sim_err_t *e)
{
    json_t *msgs = json_object_get(body, "messages"), *m;
    size_t i, n;

    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return tg_sim_fail(e, 400, "messages", NULL, "'messages' must be a "
                           "non-empty list of messages%s", NULL);
    n = json_array_size(msgs);
    json_array_foreach(msgs, i, m) {
        if (tg_sim_parse_message(m, i == n - 1, p, e) != 0)
            return -1;
    }
    if (tg_sim_parse_continue(body, p, e) != 0)
        return -1;
    if (p->user == NULL)
        return tg_sim_fail(e, 400, "messages", NULL,
                           "'messages' needs a user message%s", NULL);
    return tg_sim_parse_logprobs(body, p, e);
}

int
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

