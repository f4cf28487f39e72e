/*
 * reasoning_effort in the host (core/effort.h): the level a request asks
 * for, and budget forcing (s1, arXiv 2501.19393) for every strategy.
 *
 * Budget forcing lives in the host, not in a plugin: any strategy's
 * traces (passthrough's one, self_consistency's n, trimr's watched ones)
 * are held to the budget without a line of plugin code, and the plugin
 * keeps its tg_trace_t: when a trace's thinking reaches the budget, the
 * host restarts the trace's transfer (core/trace.h tg_trace_restart) as a
 * continuation of its text so far, "\n</think>", and a guide to the final
 * answer, the way trace_continue() does it for trimr.  The plugin and the
 * client see one trace whose thinking stops at the budget and whose
 * answer follows; the guide is the prompt's, never relayed.
 *
 * Usage reports the trace as OpenAI does: prompt_tokens of the first
 * transfer (the continuation's prompt holds the thinking again),
 * completion_tokens thinking plus answer, and completion_tokens_details.
 * reasoning_tokens the thinking at the cut.
 *
 * A pool whose every backend says native_effort gets reasoning_effort
 * passed through and no budget; otherwise the field is the gateway's and
 * is not sent on.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy/host.h"

#define TG_BUDGET_GUIDE  "\n</think>\n\n**Final Answer**\n"
#define TG_THINK_END     "</think>"

static int tg__host_thinking(tg_host_trace_t *ht);
static int tg__host_native(tg_request_t *r);
static int tg__host_budget_spec(tg_host_trace_t *ht, tg_trace_spec_t *s);


/* Whether every backend of the request's pool honours reasoning_effort. */
static int
tg__host_native(tg_request_t *r)
{
    tg_pool_t  *pool = r->pool;
    size_t      i;

    if (pool == NULL || pool->nbackends == 0) {
        return 0;
    }
    for (i = 0; i < pool->nbackends; i++) {
        if (!pool->backends[i]->native_effort) {
            return 0;
        }
    }
    return 1;
}


int
tg__host_effort(tg_host_req_t *hr, tg_effort_t *rule, tg_oa_error_t *err)
{
    tg_request_t  *r = hr->r;
    const char    *name;
    json_t        *meta;
    char           msg[256], word[32];

    memset(rule, 0, sizeof(*rule));
    hr->effort = -1;
    name = tg_oa_str(&r->oa, "reasoning_effort", word, sizeof(word));
    if (name == NULL) {
        return 0;
    }
    /* The request was validated: the name is a level. */
    hr->effort = tg_effort_level(name);
    if (tg__host_native(r)) {
        hr->effort_native = 1;
        return 0;
    }
    /* the location's levels, in a tree built for this only */
    meta = NULL;
    if (r->meta.has_effort && (meta = tg_meta_effort(&r->meta)) == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    if (tg_effort_rule(meta, hr->effort, rule, msg, sizeof(msg)) != 0) {
        tg_oa_error_set(err, 500, "server_error", "invalid_effort", NULL,
                        "This location's thinkgate_effort %s is invalid: "
                        "%s", name, msg);
        return -EINVAL;
    }
    hr->budget = rule->budget;
    return 0;
}


/* Whether ht is still thinking: chat with thinking and no answer yet, or
 * a completion whose text has not closed its thinking. */
static int
tg__host_thinking(tg_host_trace_t *ht)
{
    if (ht->hr->r->oa.endpoint == TG_OA_CHAT) {
        return ht->think != TG_THINK_ANSWER
               && tg_buf_size(&ht->content) == 0
               && tg_buf_size(&ht->reasoning) > 0;
    }
    return tg_buf_size(&ht->content) > 0
           && memmem(tg_buf_ptr(&ht->content), tg_buf_size(&ht->content),
                     TG_THINK_END, strlen(TG_THINK_END)) == NULL;
}


/* The continuation's spec: the trace's own, with what is left of its
 * token limit.  0, or 1 when the limit ends the trace anyway. */
static int
tg__host_budget_spec(tg_host_trace_t *ht, tg_trace_spec_t *s)
{
    json_t      *body = tg_oa_body(&ht->hr->r->oa), *v;
    json_int_t   limit = 0;

    memset(s, 0, sizeof(*s));
    s->pool = ht->spec.pool;
    s->backend = ht->spec.backend;
    s->messages_json = ht->spec.messages_json;
    s->temperature = ht->spec.temperature;
    s->seed_mode = ht->spec.seed_mode;
    s->seed = ht->spec.seed;
    s->flags = ht->spec.flags;

    /* max_completion_tokens keeps OpenAI's meaning, thinking and answer
     * together: the continuation gets what is left. */
    if (ht->spec.max_tokens > 0) {
        limit = ht->spec.max_tokens;
    } else if (json_is_integer(v = json_object_get(body,
                                   "max_completion_tokens"))
               || json_is_integer(v = json_object_get(body,
                                      "max_tokens")))
    {
        limit = json_integer_value(v);
    }
    if (limit > 0 && limit <= (json_int_t) ht->tokens) {
        return 1;
    }
    s->max_tokens = limit > 0 ? (int32_t) (limit - ht->tokens) : 0;
    return 0;
}


int
tg__host_budget_check(tg_host_trace_t *ht)
{
    tg_host_req_t   *hr = ht->hr;
    tg_request_t    *r = hr->r;
    tg_trace_spec_t  s;
    tg_buf_t         prefix = { 0 };
    tg_oa_error_t    err;
    json_t          *body, *v;
    int              rc;

    if (hr->budget == 0 || ht->aux || ht->ended || ht->cut_at > 0
        || ht->tokens < hr->budget || !tg__host_thinking(ht))
    {
        return 0;
    }

    if (tg__host_budget_spec(ht, &s) != 0) {
        return 0;               /* the limit ends it anyway */
    }

    tg__host_prefix_text(ht, &prefix);
    if (tg_buf_append(&prefix, TG_BUDGET_GUIDE, strlen(TG_BUDGET_GUIDE))
        != 0)
    {
        tg_buf_free(&prefix);
        return -ENOMEM;
    }
    s.assistant_prefix = tg_buf_cstr(&prefix);
    s.assistant_prefix_len = tg_buf_size(&prefix);

    body = tg__host_trace_body(hr, &s, ht->index);
    tg_buf_free(&prefix);
    if (body == NULL) {
        return -ENOMEM;
    }

    /* The first transfer's figures, before the continuation's replace
     * them. */
    v = tg__host_trace_usage(ht);
    ht->prompt_tokens = json_is_integer(json_object_get(v, "prompt_tokens"))
                        ? json_integer_value(json_object_get(v,
                                                 "prompt_tokens"))
                        : -1;
    ht->cut_at = ht->tokens;
    ht->tokens_base = ht->tokens;
    ht->finish_reason[0] = '\0';
    if (ht->think != TG_THINK_NATIVE) {
        ht->think = TG_THINK_ANSWER;
    }
    hr->budget_cuts++;

    tg_log_debug("request %llu: trace %u cut at the thinking budget "
                 "(%u tokens of %u)", (unsigned long long) r->id, ht->index,
                 ht->cut_at, hr->budget);

    rc = tg_trace_restart(ht->t, body, &err);
    json_decref(body);
    if (rc != 0) {
        ht->err = err;
        return rc;
    }
    return 0;
}


void
tg__host_budget_usage(tg_host_trace_t *ht, json_t *u)
{
    json_int_t  pt;

    if (ht == NULL || ht->cut_at == 0 || u == NULL) {
        return;
    }
    if (ht->prompt_tokens >= 0) {
        (void) json_object_set_new(u, "prompt_tokens",
                                   json_integer(ht->prompt_tokens));
    }
    pt = json_integer_value(json_object_get(u, "prompt_tokens"));
    (void) json_object_set_new(u, "completion_tokens",
                               json_integer(ht->tokens));
    (void) json_object_set_new(u, "total_tokens",
                               json_integer(pt + ht->tokens));
    (void) json_object_set_new(u, "completion_tokens_details",
                               json_pack("{s:I}", "reasoning_tokens",
                                         (json_int_t) ht->cut_at));
}


int
tg__host_budget_summary(tg_host_req_t *hr, json_t *o)
{
    json_t  *cuts;
    size_t   i;
    int      rc = 0;

    if (hr->effort < 0) {
        return 0;
    }
    rc |= json_object_set_new(o, "effort",
                              json_string(tg_effort_name(hr->effort)));
    if (hr->effort_native) {
        return rc | json_object_set_new(o, "effort_native", json_true());
    }
    rc |= json_object_set_new(o, "thinking_budget",
                              hr->budget ? json_integer(hr->budget)
                                         : json_null());
    cuts = json_array();
    for (i = 0; cuts != NULL && i < hr->ntraces; i++) {
        if (hr->traces[i]->cut_at > 0) {
            rc |= json_array_append_new(cuts, json_pack("{s:I, s:I}",
                      "trace", (json_int_t) i,
                      "tokens", (json_int_t) hr->traces[i]->cut_at));
        }
    }
    rc |= json_object_set_new(o, "budget_cuts", cuts);
    return rc != 0 ? -ENOMEM : 0;
}
