/*
 * The choices of the plugin host's response, and its end.
 *
 * A response has one choice, or the client's n when a strategy runs
 * several live traces (plugin.h, "Live traces and choices"): each live
 * trace writes one choice, chunks carry the choice's index, and with
 * several choices each closes with its own finish chunk when its trace
 * ends DONE.  The end: a finish chunk for every choice still open, one
 * usage chunk (choices [], usage, the "thinkgate" object) and
 * "data: [DONE]"; not streamed, one completion with a choice per index.
 * Usage for n choices is what OpenAI reports: completion tokens summed,
 * the prompt once.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strategy.h"
#include "strategy/host.h"
#include "util/jdump.h"
#include "util/str.h"

static int tg__host_choice_close(tg_host_req_t *hr, uint32_t choice,
    tg_host_trace_t *model_of, const char *finish);
static void tg__host_end_stored(tg_request_t *r, void *data);
static int tg__host_end_rest(tg_host_req_t *hr);


int
tg__host_choices_init(tg_host_req_t *hr)
{
    int64_t  n;

    /* The request was validated: n, when given, is 1..128. */
    hr->nchoices = tg_oa_int(&hr->r->oa, "n", &n) && n > 1 ? (uint32_t) n
                                                             : 1;
    if (hr->nchoices == 1) {
        /* The kept choice: its buffers were emptied (choices_free). */
        hr->choices = &hr->keep.choice;
        return 0;
    }
    hr->choices = calloc(hr->nchoices, sizeof(*hr->choices));
    return hr->choices != NULL ? 0 : -ENOMEM;
}


/* A kept choice's buffer up to this size stays for the next request. */
#define TG__HOST_KEEP_CHOICE  (16 * 1024)

void
tg__host_choices_free(tg_host_req_t *hr)
{
    tg_host_choice_t  *c = &hr->keep.choice;
    tg_buf_t           bufs[2];
    uint32_t           k;

    if (hr->choices == c) {
        bufs[0] = c->reasoning;
        bufs[1] = c->content;
        for (k = 0; k < 2; k++) {
            if (bufs[k].cap > TG__HOST_KEEP_CHOICE) {
                tg_buf_free(&bufs[k]);
            }
            tg_buf_clear(&bufs[k]);
        }
        memset(c, 0, sizeof(*c));
        c->reasoning = bufs[0];
        c->content = bufs[1];
        hr->choices = NULL;
        return;
    }
    for (k = 0; hr->choices != NULL && k < hr->nchoices; k++) {
        tg_buf_free(&hr->choices[k].reasoning);
        tg_buf_free(&hr->choices[k].content);
    }
    free(hr->choices);
    hr->choices = NULL;
}


/* The choice a new live trace writes (plugin.h, "Live traces and
 * choices"): a continuation's own, the next one while fewer than n are
 * open, else the first open one whose live trace is over. */
int
tg__host_choice_pick(tg_host_req_t *hr, tg_host_trace_t *from,
    uint32_t *choice)
{
    tg_host_choice_t  *c;
    uint32_t           k;

    if (from != NULL && from->live) {
        c = &hr->choices[from->choice];
        if (!c->closed && (c->live == from || c->live->ended)) {
            *choice = from->choice;
            return 0;
        }
    }
    if (hr->nopen < hr->nchoices) {
        *choice = hr->nopen;
        return 0;
    }
    for (k = 0; k < hr->nopen; k++) {
        c = &hr->choices[k];
        if (!c->closed && (c->live == NULL || c->live->ended)) {
            *choice = k;
            return 0;
        }
    }
    if (hr->nchoices == 1) {
        tg__host_set_error(hr, "trace %u is already live: one live trace "
                           "at a time", hr->choices[0].live->index);
    } else {
        tg__host_set_error(hr, "each of the %u choices the client asked "
                           "for has a live trace running", hr->nchoices);
    }
    return -EBUSY;
}


/* ht, just started live, writes choice from now on. */
void
tg__host_choice_take(tg_host_req_t *hr, tg_host_trace_t *ht, uint32_t choice)
{
    ht->live = 1;
    ht->choice = choice;
    hr->choices[choice].live = ht;
    if (choice == hr->nopen) {
        hr->nopen++;
    }
}


/* A live trace ended DONE on its own: with several choices, its choice
 * closes now (plugin.h); with one, the plugin's finish() closes it. */
int
tg__host_live_ended(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    tg_host_choice_t  *c = &hr->choices[ht->choice];
    int                rc;

    if (hr->nchoices < 2 || ht->state != TG_TRACE_DONE || c->closed
        || c->live != ht)
    {
        return 0;
    }
    rc = tg__host_live_rest(hr, ht);
    if (rc == 0) {
        rc = tg__host_choice_close(hr, ht->choice, ht,
                                   ht->finish_reason[0] ? ht->finish_reason
                                                        : "stop");
    }
    return rc == -EPIPE ? 0 : rc;
}


/* A choice's end: its finish chunk (streamed) or its finish_reason. */
static int
tg__host_choice_close(tg_host_req_t *hr, uint32_t choice,
    tg_host_trace_t *model_of, const char *finish)
{
    tg_host_choice_t  *c = &hr->choices[choice];

    c->closed = 1;
    snprintf(c->finish_reason, sizeof(c->finish_reason), "%s", finish);
    if (!hr->r->oa.stream) {
        return 0;
    }
    return tg__host_chunk(hr, choice, model_of, "", 0, "", 0, finish, NULL);
}


/* The usage reported: the trace's last usage object, or its count; for
 * no trace, the live traces' completion tokens summed and the first
 * one's prompt (the prompt is read once for n choices). */
json_t *
tg__host_usage(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    uint64_t    n = 0, cut = 0;
    json_int_t  pt = -1;
    size_t      i;

    if (ht != NULL && tg__host_trace_usage(ht) != NULL) {
        /* Shallow: only top-level counts are replaced. */
        json_t  *u = json_copy(ht->usage);

        /* Continuous usage counts the tag-only steps too; the final
         * count is the trace's. */
        if (u != NULL && ht->tokens > 0) {
            json_int_t  pt = json_integer_value(json_object_get(u,
                                                    "prompt_tokens"));

            json_object_set_new(u, "completion_tokens",
                                json_integer(ht->tokens));
            json_object_set_new(u, "total_tokens",
                                json_integer(pt + ht->tokens));
        }
        tg__host_budget_usage(ht, u);
        return u;
    }
    if (ht != NULL) {
        n = ht->tokens;
    } else {
        for (i = 0; i < hr->ntraces; i++) {
            tg_host_trace_t  *t = hr->traces[i];

            if (!t->live) {
                continue;
            }
            n += t->tokens;
            cut += t->cut_at;
            if (pt < 0 && t->cut_at > 0) {
                pt = t->prompt_tokens;
            } else if (pt < 0 && tg__host_trace_usage(t) != NULL) {
                pt = json_integer_value(json_object_get(t->usage,
                                                        "prompt_tokens"));
            }
        }
    }
    pt = pt < 0 ? 0 : pt;
    if (cut > 0) {
        /* Budget cuts: the thinking of the choices that were cut. */
        return json_pack("{s:I, s:I, s:I, s:{s:I}}", "prompt_tokens", pt,
                         "completion_tokens", (json_int_t) n,
                         "total_tokens", pt + (json_int_t) n,
                         "completion_tokens_details", "reasoning_tokens",
                         (json_int_t) cut);
    }
    return json_pack("{s:I, s:I, s:I}", "prompt_tokens", pt,
                     "completion_tokens", (json_int_t) n,
                     "total_tokens", pt + (json_int_t) n);
}


/* Where the usage's counts come from: "backend" (its usage objects),
 * "counted" (a backend that sends none in streams, such as llama.cpp's
 * Python server: one completion token per chunk that carried text, and
 * prompt_tokens 0, unknown), or "mixed" over several choices. */
const char *
tg__host_usage_source(tg_host_req_t *hr, tg_host_trace_t *ht)
{
    size_t   i, with = 0, without = 0;

    if (ht != NULL) {
        return tg__host_trace_has_usage(ht) ? "backend" : "counted";
    }
    for (i = 0; i < hr->ntraces; i++) {
        if (!hr->traces[i]->live) {
            continue;
        }
        if (tg__host_trace_has_usage(hr->traces[i])) {
            with++;
        } else {
            without++;
        }
    }
    return without == 0 ? "backend" : with == 0 ? "counted" : "mixed";
}


/* A trace's prompt tokens as its usage says (a budget cut's
 * continuation prefilled its own, larger prompt: both count); -1 when
 * no usage arrived. */
static int64_t
tg__host_prompt_of(tg_host_trace_t *ht)
{
    int64_t   p;

    p = tg__host_trace_prompt(ht);
    if (p < 0) {
        return ht->cut_at && ht->prompt_tokens >= 0 ? ht->prompt_tokens
                                                    : -1;
    }
    if (ht->cut_at && ht->prompt_tokens >= 0) {
        p += ht->prompt_tokens;
    }
    return p;
}


uint64_t
tg_host_spent(tg_request_t *r)
{
    tg_host_req_t    *hr = r->strategy_data;
    tg_host_trace_t  *a;
    uint64_t          total = 0;
    int64_t           known = 0, p;
    size_t            i;

    if (hr == NULL) {
        return 0;
    }
    /* the traces of one request share its prompt: one that ended
     * without usage (cancelled) prefilled as much as the others */
    for (i = 0; i < hr->ntraces; i++) {
        p = tg__host_prompt_of(hr->traces[i]);
        if (p > known) {
            known = p;
        }
    }
    for (i = 0; i < hr->ntraces; i++) {
        p = tg__host_prompt_of(hr->traces[i]);
        total += hr->traces[i]->tokens + (uint64_t) (p >= 0 ? p : known);
    }
    for (a = hr->auxs; a != NULL; a = a->next_aux) {
        p = tg__host_prompt_of(a);
        total += a->tokens + (uint64_t) (p >= 0 ? p : 0);
    }
    return total;
}


/* The "thinkgate" object: the host's figures, the plugin's keys, then
 * what the state steps did (session, prefix routing: serve/prep.h).
 * tokens is every completion token the request cost: its traces' and its
 * aux requests' (a probe or a judge decodes on a GPU too), the latter
 * also as aux_tokens when it made any (as their usage says; one
 * cancelled before its reply counts none). */
json_t *
tg__host_summary(tg_host_req_t *hr, tg_host_trace_t *winner,
    json_t *extra)
{
    json_t            *o;
    tg_host_trace_t   *a;
    uint64_t           tokens = 0, aux = 0;
    size_t             i;

    for (i = 0; i < hr->ntraces; i++) {
        tokens += hr->traces[i]->tokens;
    }
    for (a = hr->auxs; a != NULL; a = a->next_aux) {
        aux += a->tokens;
    }
    tokens += aux;
    /* Built key by key: json_pack parses its format and checks every
     * literal key as UTF-8 on each call. */
    o = json_object();
    if (o == NULL
        || json_object_set_new_nocheck(o, "strategy",
                                       json_string(hr->strategy))
        || json_object_set_new_nocheck(o, "traces_started",
                                       json_integer((json_int_t) hr->ntraces))
        || json_object_set_new_nocheck(o, "traces_cancelled",
                                       json_integer((json_int_t)
                                                    hr->cancelled))
        || json_object_set_new_nocheck(o, "tokens",
                                       json_integer((json_int_t) tokens))
        || json_object_set_new_nocheck(o, "winner",
                                       winner ? json_integer(winner->index)
                                              : json_null())
        || json_object_set_new_nocheck(o, "usage_source",
                                       json_string(tg__host_usage_source(
                                           hr, winner)))
        || (hr->auxs != NULL
            && json_object_set_new_nocheck(o, "aux_tokens",
                                           json_integer((json_int_t) aux))))
    {
        json_decref(o);
        return NULL;
    }
    if (hr->summary != NULL) {
        (void) json_object_update(o, hr->summary);
    }
    if (hr->counters != NULL
        && json_object_set_nocheck(o, "counters", hr->counters) != 0)
    {
        json_decref(o);
        return NULL;
    }
    if (json_object_update(o, extra) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}


/* What the budget and serve (tg__host_up_summary) add to the "thinkgate"
 * object, gathered in an object of their own that tg__host_summary then
 * merges (they only set members: the same result as setting them on the
 * object itself); NULL when out of memory. */
json_t *
tg__host_summary_extra(tg_host_req_t *hr)
{
    json_t  *x = json_object();

    if (x == NULL || tg__host_budget_summary(hr, x) != 0
        || tg__host_up_summary(hr->r, x, tg_host_spent(hr->r)) != 0)
    {
        json_decref(x);
        return NULL;
    }
    return x;
}


/* The trace whose model choice k names: the reported one, else (several
 * choices) the choice's own live trace, else none (the client's). */
tg_host_trace_t *
tg__host_model_of(tg_host_req_t *hr, tg_host_trace_t *usage_of, uint32_t k)
{
    if (usage_of != NULL || hr->nchoices < 2) {
        return usage_of;
    }
    return hr->choices[k].live;
}


/*
 * The response's end in two steps: the choices are closed (streamed) or
 * rendered (not streamed); then a session request stores its turn (the
 * answer of choice 0, given to it as text when not streamed) and waits
 * for Redis to confirm it (serve/prep.h), so that the "thinkgate" object
 * says whether it was stored; then the rest goes out.
 */
int
tg__host_end(tg_host_req_t *hr, tg_host_trace_t *usage_of, const char *finish)
{
    tg_request_t  *r = hr->r;
    tg_buf_t      *a;
    const char    *answer = NULL;
    size_t         alen = 0;
    uint32_t       k, n = hr->nopen > 1 ? hr->nopen : 1;
    int            rc = 0;
    tg_oa_error_t  err;

    hr->end_usage_of = usage_of;
    tg_str_copy(hr->end_finish, sizeof(hr->end_finish), finish);
    if (r->oa.stream) {
        for (k = 0; k < n && rc == 0; k++) {
            if (!hr->choices[k].closed) {
                rc = tg__host_choice_close(hr, k,
                                           tg__host_model_of(hr, usage_of,
                                                             k),
                                           finish);
            }
        }
        if (rc != 0) {
            return rc == -EPIPE ? 0 : rc;
        }
    } else {
        if (tg__host_reply_begin(hr, usage_of, finish) != 0) {
            tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
            tg__host_error(hr, &err);
            return -ENOMEM;
        }
        /* Choice 0's text as the client reads it: a completion's text
         * (thinking included, joined by tg__host_choice_text), else the
         * message's content. */
        a = r->oa.endpoint == TG_OA_CHAT ? &hr->choices[0].content
                                         : &hr->choices[0].reasoning;
        alen = tg_buf_size(a);
        answer = alen ? tg_buf_ptr(a) : "";
    }

    if (tg__host_up_store(r, answer, alen, tg__host_end_stored, hr) == 0) {
        return 0;               /* the rest when Redis has answered */
    }
    return tg__host_end_rest(hr);
}


static void
tg__host_end_stored(tg_request_t *r, void *data)
{
    tg_host_req_t  *hr = data;

    if (r->closed || hr->closing) {
        return;
    }
    tg__host_enter(hr);
    (void) tg__host_end_rest(hr);
    tg__host_leave(hr);
}


/* The usage, the "thinkgate" object and END. */
static int
tg__host_end_rest(tg_host_req_t *hr)
{
    tg_request_t     *r = hr->r;
    tg_host_trace_t  *usage_of = hr->end_usage_of;
    json_t           *summary, *usage = NULL, *extra;
    int               rc = 0, chat = r->oa.endpoint == TG_OA_CHAT;
    tg_oa_error_t     err;

    if (!r->oa.stream && r->oa.responses == NULL) {
        return tg__host_reply_rest(hr, usage_of);
    }
    extra = tg__host_summary_extra(hr);
    summary = extra != NULL ? tg__host_summary(hr, usage_of, extra) : NULL;
    json_decref(extra);
    usage = tg__host_usage(hr, usage_of);
    if (summary == NULL || usage == NULL) {
        goto nomem;
    }
    if (r->oa.responses != NULL) {
        return tg__host_resp_end(hr, summary, usage);
    }

    /* Streamed: the usage chunk and [DONE]. */
    rc = tg__host_send_json(hr, json_pack("{s:s, s:s, s:I, s:s, "
        "s:[], s:O, s:O}", "id", hr->id,
        "object", chat ? "chat.completion.chunk" : "text_completion",
        "created", (json_int_t) hr->created,
        "model", tg__host_model(hr, tg__host_model_of(hr, usage_of, 0)),
        "choices", "usage", usage, "thinkgate", summary));
    if (rc == 0) {
        rc = tg_request_data(r, "data: [DONE]\n\n", 14);
    }
    json_decref(usage);
    if (rc != 0) {
        json_decref(summary);
        return rc == -EPIPE ? 0 : rc;
    }
    return tg_request_end(r, summary);

nomem:
    json_decref(summary);
    json_decref(usage);
    tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
    tg__host_error(hr, &err);
    return -ENOMEM;
}
