/*
 * What a backend sends for a plugin trace, turned into what the plugin
 * sees: thinking and answer text, tokens, finish_reason, the end.
 *
 * Thinking comes as delta.reasoning_content (vLLM, DeepSeek) or
 * delta.reasoning (newer vLLM).  A llama.cpp-style backend writes it
 * inline in content instead: content that opens with <think> is thinking
 * until </think>; content that has a </think> without an opening tag (the
 * template put <think> in the prompt) is split there after the fact, for
 * trace_info (deltas already reported stay as they were).  Completions
 * traces keep their raw text as content.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "openai/chunk.h"
#include "strategy/host.h"
#include "util/jload.h"
#include "util/jstr.h"
#include "util/str.h"

#define TG_OPEN_TAG     "<think>"
#define TG_CLOSE_TAG    "</think>"

static void tg__host_add_content(tg_host_trace_t *ht, const char *p,
    size_t n);
static void tg__host_parse_answer(tg_host_trace_t *ht, json_t *doc);
static void tg__host_jappend(tg_buf_t *b, const tg_jval_t *v);
static int tg__host_answer_scan(tg_host_trace_t *ht);
static int tg__host_event_json(tg_host_trace_t *ht, const char *payload,
    size_t len, int *has_usage, int *chunk);
static void tg__host_event_usage(tg_host_trace_t *ht, json_t *doc,
    int *has_usage);
static const char *tg__host_event_choice(json_t *doc, json_t **ch);
static void tg__host_event_delta(tg_host_trace_t *ht, json_t *ch,
    int *chunk);
static const char *tg__host_jtext(tg_host_trace_t *ht, const tg_jval_t *v,
    size_t *n);
static int tg__host_event_bad(tg_host_trace_t *ht, const char *why);
static void tg__host_usage_keep(tg_host_trace_t *ht, const tg_chunk_t *ck);
static int tg__host_event_scan(tg_host_trace_t *ht, const tg_chunk_t *ck,
    int *has_usage, int *chunk);


/* Bytes at the end of b that could start tag: held back from deltas. */
static size_t
tg__host_tag_tail(const tg_buf_t *b, const char *tag)
{
    size_t       n = tg_buf_size(b), k, tl = strlen(tag);
    const char  *p = tg_buf_ptr(b);

    for (k = tl - 1; k > 0; k--) {
        if (k <= n && memcmp(p + n - k, tag, k) == 0) {
            return k;
        }
    }
    return 0;
}


/* Cuts b at its first tag found at or after from: the text after the tag
 * goes to rest (appended).  1 when cut. */
static int
tg__host_cut(tg_buf_t *b, size_t from, tg_buf_t *rest)
{
    const char  *p = tg_buf_ptr(b);
    char        *at;
    size_t       tl = strlen(TG_CLOSE_TAG);

    if (from >= tg_buf_size(b)) {
        return 0;
    }
    at = memmem(p + from, tg_buf_size(b) - from, TG_CLOSE_TAG, tl);
    if (at == NULL) {
        return 0;
    }
    (void) tg_buf_append(rest, at + tl,
                         (size_t) (p + tg_buf_size(b) - (at + tl)));
    b->len = b->start + (size_t) (at - p);
    return 1;
}


static void
tg__host_add_content(tg_host_trace_t *ht, const char *p, size_t n)
{
    size_t       old, skip;
    const char  *s;

    if (ht->hr->r->oa.endpoint != TG_OA_CHAT || ht->aux
        || ht->think == TG_THINK_NATIVE || ht->think == TG_THINK_ANSWER)
    {
        (void) tg_buf_append(&ht->content, p, n);
        return;
    }

    if (ht->think == TG_THINK_INSIDE) {
        old = tg_buf_size(&ht->reasoning);
        (void) tg_buf_append(&ht->reasoning, p, n);
        if (tg__host_cut(&ht->reasoning, old >= 7 ? old - 7 : 0,
                         &ht->content))
        {
            ht->think = TG_THINK_ANSWER;
        }
        return;
    }

    /* Undecided: look for an opening tag at the start, or a closing one
     * anywhere. */
    old = tg_buf_size(&ht->content);
    (void) tg_buf_append(&ht->content, p, n);
    s = tg_buf_ptr(&ht->content);
    for (skip = 0; skip < tg_buf_size(&ht->content)
                   && strchr(" \t\r\n", s[skip]) != NULL; skip++)
    {
        /* leading blanks */
    }
    if (tg_buf_size(&ht->content) - skip >= 7
        && memcmp(s + skip, TG_OPEN_TAG, 7) == 0)
    {
        (void) tg_buf_append(&ht->reasoning, s + skip + 7,
                             tg_buf_size(&ht->content) - skip - 7);
        ht->content.len = ht->content.start;
        ht->c_mark = 0;
        ht->think = TG_THINK_INSIDE;
        if (tg__host_cut(&ht->reasoning, 0, &ht->content)) {
            ht->think = TG_THINK_ANSWER;
        }
        return;
    }
    if (tg_buf_size(&ht->reasoning) == 0) {
        tg_buf_t  rest = { 0 };

        if (tg__host_cut(&ht->content, old >= 7 ? old - 7 : 0, &rest)) {
            /* Thinking without an opening tag: what came before is
             * thinking, already reported as content. */
            (void) tg_buf_append(&ht->reasoning, tg_buf_ptr(&ht->content),
                                 tg_buf_size(&ht->content));
            ht->content.len = ht->content.start;
            (void) tg_buf_append(&ht->content, tg_buf_ptr(&rest),
                                 tg_buf_size(&rest));
            ht->r_mark = tg_buf_size(&ht->reasoning);
            ht->c_mark = 0;
            ht->think = TG_THINK_ANSWER;
        }
        tg_buf_free(&rest);
    }
}


/* A stream event that is not an OpenAI chunk: the trace fails with a
 * 502 naming its backend.  Returns 2 (tg__host_trace_event's). */
static int
tg__host_event_bad(tg_host_trace_t *ht, const char *why)
{
    tg_oa_error_set(&ht->err, 502, "server_error", "bad_backend_response",
                    NULL, "Backend \"%s\" sent a stream event that is not "
                    "an OpenAI chunk: %s.",
                    ht->t->backend ? ht->t->backend->name : "?", why);
    return 2;
}


/* The chunk read by jansson: events the scanner does not answer for
 * (an error, logprobs to relay, unusual shapes).  -1 when it is not a
 * JSON object, 2 for a backend error (ht->err filled), else 1. */
static int
tg__host_event_json(tg_host_trace_t *ht, const char *payload, size_t len,
    int *has_usage, int *chunk)
{
    json_t        *doc, *v, *ch;
    const char    *s, *why;
    json_error_t   jerr;

    doc = tg_json_loadb(payload, len, &jerr);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return tg__host_event_bad(ht, doc == NULL ? jerr.text
                                  : "not a JSON object");
    }

    v = json_object_get(doc, "error");
    if (v != NULL && !json_is_null(v)) {
        s = json_string_value(json_is_object(v) ? json_object_get(v, "message")
                                                : v);
        tg_oa_error_set(&ht->err, 502, "server_error", "backend_error", NULL,
                        "Backend \"%s\" failed mid-stream: %s",
                        ht->t->backend ? ht->t->backend->name : "?",
                        s ? s : "(no message)");
        json_decref(doc);
        return 2;
    }

    tg__host_event_usage(ht, doc, has_usage);

    why = tg__host_event_choice(doc, &ch);
    if (why != NULL) {
        json_decref(doc);
        return tg__host_event_bad(ht, why);
    }
    if (ch != NULL) {
        tg__host_event_delta(ht, ch, chunk);
    }
    json_decref(doc);
    return 1;
}


/* The chunk's model (the first one seen) and usage. */
static void
tg__host_event_usage(tg_host_trace_t *ht, json_t *doc, int *has_usage)
{
    json_t      *v, *usage;
    const char  *s;

    if (ht->model == NULL
        && (s = json_string_value(json_object_get(doc, "model"))) != NULL)
    {
        ht->model = strdup(s);
    }

    usage = json_object_get(doc, "usage");
    if (!json_is_object(usage)) {
        return;
    }
    v = json_object_get(usage, "completion_tokens");
    if (json_is_integer(v)) {
        *has_usage = 1;
        if (json_integer_value(v) + ht->tokens_base > ht->tokens) {
            ht->tokens = (uint32_t) json_integer_value(v) + ht->tokens_base;
        }
    }
    json_decref(ht->usage);
    ht->usage = json_incref(usage);
    ht->usage_dirty = 0;
}


/* The chunk's choice 0 into *ch (NULL when it has none).  A chunk whose
 * shape is not OpenAI's is garbage, never an empty answer (issue 14,
 * bug 5): the reason is returned then, else NULL. */
static const char *
tg__host_event_choice(json_t *doc, json_t **ch)
{
    json_t  *choices, *v, *idx;
    size_t   i;

    *ch = NULL;
    choices = json_object_get(doc, "choices");
    if (choices != NULL && !json_is_array(choices)) {
        return "\"choices\" is not an array";
    }
    json_array_foreach(choices, i, v) {
        if (!json_is_object(v)) {
            return "a choice is not an object";
        }
    }
    json_array_foreach(choices, i, v) {
        idx = json_object_get(v, "index");
        if (idx == NULL || json_integer_value(idx) == 0) {
            *ch = v;
            break;
        }
    }
    return NULL;
}


/* Choice 0's text, thinking, finish_reason and logprobs into the trace;
 * *chunk says whether any text came. */
static void
tg__host_event_delta(tg_host_trace_t *ht, json_t *ch, int *chunk)
{
    json_t      *v, *delta;
    const char  *s;
    size_t       r0 = tg_buf_size(&ht->reasoning);
    size_t       c0 = tg_buf_size(&ht->content);

    if (ht->hr->r->oa.endpoint == TG_OA_CHAT) {
        delta = json_object_get(ch, "delta");
        v = json_object_get(delta, "reasoning_content");
        if (!json_is_string(v)) {
            v = json_object_get(delta, "reasoning");
        }
        if (json_is_string(v) && json_string_length(v) > 0) {
            if (ht->think == TG_THINK_UNKNOWN) {
                ht->think = TG_THINK_NATIVE;
            }
            (void) tg_buf_append(ht->cut_at ? &ht->content
                                            : &ht->reasoning,
                                 json_string_value(v),
                                 json_string_length(v));
        }
        v = json_object_get(delta, "content");
    } else {
        v = json_object_get(ch, "text");
    }
    if (json_is_string(v) && json_string_length(v) > 0) {
        tg__host_add_content(ht, json_string_value(v),
                             json_string_length(v));
    }

    s = json_string_value(json_object_get(ch, "finish_reason"));
    if (s != NULL) {
        tg_str_copy(ht->finish_reason, sizeof(ht->finish_reason), s);
    }
    *chunk = tg_buf_size(&ht->reasoning) != r0
             || tg_buf_size(&ht->content) != c0;

    v = json_object_get(ch, "logprobs");
    if (ht->live && v != NULL && !json_is_null(v)) {
        char  *lp = json_dumps(v, JSON_COMPACT);

        if (lp != NULL) {
            (void) tg_buf_append(&ht->logprobs, lp, strlen(lp));
            free(lp);
        }
    }
}


/* A scanned string's text: in place when it has no escapes, else
 * unescaped into the trace's scratch buffer.  NULL when out of memory. */
static const char *
tg__host_jtext(tg_host_trace_t *ht, const tg_jval_t *v, size_t *n)
{
    ht->scratch.start = ht->scratch.len = 0;
    if (!v->esc) {
        *n = v->n;
        return v->p;
    }
    if (tg_jstr_unescape(&ht->scratch, v->p, v->n) != 0) {
        return NULL;
    }
    *n = tg_buf_size(&ht->scratch);
    return tg_buf_ptr(&ht->scratch);
}


/* The chunk as the scanner read it: the same effects as
 * tg__host_event_json, without a JSON tree. */
static int
tg__host_event_scan(tg_host_trace_t *ht, const tg_chunk_t *ck,
    int *has_usage, int *chunk)
{
    const tg_jval_t  *v;
    const char       *s;
    size_t            n, r0, c0;

    if (ht->model == NULL && ck->model.type == TG_JV_STRING
        && (s = tg__host_jtext(ht, &ck->model, &n)) != NULL)
    {
        ht->model = strndup(s, n);
    }

    if (ck->usage.object) {
        if (ck->completion_tokens.type == TG_JV_INT) {
            *has_usage = 1;
            if (ck->completion_tokens.i + ht->tokens_base > ht->tokens) {
                ht->tokens = (uint32_t) ck->completion_tokens.i
                             + ht->tokens_base;
            }
        }
        tg__host_usage_keep(ht, ck);
    }

    if (!ck->has_choice) {
        return 1;
    }
    r0 = tg_buf_size(&ht->reasoning);
    c0 = tg_buf_size(&ht->content);

    if (ht->hr->r->oa.endpoint == TG_OA_CHAT) {
        v = ck->reasoning_content.type == TG_JV_STRING
            ? &ck->reasoning_content : &ck->reasoning;
        if (v->type == TG_JV_STRING && v->n > 0) {
            if (ht->think == TG_THINK_UNKNOWN) {
                ht->think = TG_THINK_NATIVE;
            }
            /* After a budget cut the thinking is closed: a backend
             * that still calls the continuation reasoning answers. */
            if (v->esc) {
                (void) tg_jstr_unescape(ht->cut_at ? &ht->content
                                                   : &ht->reasoning,
                                        v->p, v->n);
            } else {
                (void) tg_buf_append(ht->cut_at ? &ht->content
                                                : &ht->reasoning,
                                     v->p, v->n);
            }
        }
        v = &ck->content;
    } else {
        v = &ck->text;
    }
    /* A string's contents are never empty once unescaped: the scanner
     * lets no \u0000 through. */
    if (v->type == TG_JV_STRING && v->n > 0
        && (s = tg__host_jtext(ht, v, &n)) != NULL)
    {
        tg__host_add_content(ht, s, n);
    }

    if (ck->finish_reason.type == TG_JV_STRING) {
        s = tg__host_jtext(ht, &ck->finish_reason, &n);
        if (s != NULL) {
            n = n < sizeof(ht->finish_reason) - 1
                ? n : sizeof(ht->finish_reason) - 1;
            memcpy(ht->finish_reason, s, n);
            ht->finish_reason[n] = '\0';
        }
    }
    /* Only a chunk that carried text counts as a token when the backend
     * sends no usage: a closing chunk with a finish_reason and an empty
     * delta generated nothing the client is billed for. */
    *chunk = tg_buf_size(&ht->reasoning) != r0
             || tg_buf_size(&ht->content) != c0;
    return 1;
}


/* A scanned chunk's usage object: its text, and its prompt_tokens. */
static void
tg__host_usage_keep(tg_host_trace_t *ht, const tg_chunk_t *ck)
{
    ht->usage_raw.start = ht->usage_raw.len = 0;
    ht->usage_dirty = tg_buf_append(&ht->usage_raw, ck->usage.p,
                                    ck->usage.n) == 0;
    ht->usage_pt = ck->prompt_tokens.type == TG_JV_INT
                   ? ck->prompt_tokens.i : INT64_MIN;
    ht->usage_ct = ck->completion_tokens.type == TG_JV_INT
                   ? ck->completion_tokens.i : INT64_MIN;
    ht->usage_tt = ck->total_tokens.type == TG_JV_INT
                   ? ck->total_tokens.i : INT64_MIN;
}


int
tg__host_trace_has_usage(const tg_host_trace_t *ht)
{
    return ht->usage_dirty || ht->usage != NULL;
}


int64_t
tg__host_trace_prompt(tg_host_trace_t *ht)
{
    json_t  *v;

    if (ht->usage_dirty) {
        return ht->usage_pt >= 0 ? ht->usage_pt : -1;
    }
    v = json_object_get(ht->usage, "prompt_tokens");
    return json_is_integer(v) && json_integer_value(v) >= 0
           ? json_integer_value(v) : -1;
}


json_t *
tg__host_trace_usage(tg_host_trace_t *ht)
{
    json_t  *u;

    if (ht->usage_dirty) {
        u = tg_json_loadb(tg_buf_ptr(&ht->usage_raw),
                          tg_buf_size(&ht->usage_raw), NULL);
        if (u != NULL) {
            json_decref(ht->usage);
            ht->usage = u;
        }
        ht->usage_dirty = 0;
    }
    return ht->usage;
}


/*
 * One SSE event of a streamed trace.  Returns 1 with d filled (the text
 * and tokens this chunk added), 0 when there is nothing to report, 2 when
 * the backend sent an error (ht->err filled).
 *
 * Chunks are scanned in place (openai/chunk.c); jansson reads only those
 * the scanner leaves to it.
 */
int
tg__host_trace_event(tg_host_trace_t *ht, const char *payload, size_t len,
    tg_delta_t *d)
{
    tg_chunk_t  ck;
    size_t      hold;
    uint32_t    before = ht->tokens;
    int         has_usage = 0, chunk = 0, rc;

    memset(d, 0, sizeof(*d));
    ht->logprobs.start = ht->logprobs.len = 0;

    if (len == 6 && memcmp(payload, "[DONE]", 6) == 0) {
        return 0;
    }
    if (tg_chunk_scan(payload, len, &ck) != 0
        || ck.error.type > TG_JV_NULL
        || (ht->live && ck.logprobs.type > TG_JV_NULL))
    {
        rc = tg__host_event_json(ht, payload, len, &has_usage, &chunk);
    } else {
        rc = tg__host_event_scan(ht, &ck, &has_usage, &chunk);
    }
    if (rc != 1) {
        return rc < 0 ? 0 : rc;
    }

    /* Without usage a chunk that carried text counts as one token. */
    if (!has_usage && chunk) {
        ht->tokens++;
    }
    d->tokens = ht->tokens - before;

    /* What is new since the last report; a possible tag's beginning
     * waits for the next chunk. */
    hold = ht->think == TG_THINK_INSIDE
           ? tg__host_tag_tail(&ht->reasoning, TG_CLOSE_TAG) : 0;
    if (tg_buf_size(&ht->reasoning) > ht->r_mark + hold) {
        d->reasoning = tg_buf_ptr(&ht->reasoning) + ht->r_mark;
        d->reasoning_len = tg_buf_size(&ht->reasoning) - hold - ht->r_mark;
        ht->r_mark += d->reasoning_len;
    }
    hold = ht->think == TG_THINK_UNKNOWN
           && tg_buf_size(&ht->content) > 0
           && tg_buf_size(&ht->content) < 7
           && memcmp(tg_buf_ptr(&ht->content), TG_OPEN_TAG,
                     tg_buf_size(&ht->content)) == 0
           ? tg_buf_size(&ht->content) : 0;
    if (tg_buf_size(&ht->content) > ht->c_mark + hold) {
        d->content = tg_buf_ptr(&ht->content) + ht->c_mark;
        d->content_len = tg_buf_size(&ht->content) - hold - ht->c_mark;
        ht->c_mark += d->content_len;
    }
    if (d->reasoning == NULL) {
        d->reasoning = "";
    }
    if (d->content == NULL) {
        d->content = "";
    }

    if (ht->first_token_ms == 0 && (d->tokens > 0 || d->reasoning_len > 0
                                    || d->content_len > 0))
    {
        ht->first_token_ms = tg__host_now();
    }
    return d->tokens > 0 || d->reasoning_len > 0 || d->content_len > 0
           || ht->finish_reason[0] != '\0';
}


/* Body bytes of a non-streamed answer (aux requests, or a backend that
 * answered a streamed request with plain JSON). */
void
tg__host_trace_data(tg_host_trace_t *ht, const char *p, size_t n)
{
    if (tg_buf_size(&ht->body) + n > TG_REQUEST_MAX_BODY
        || tg_buf_append(&ht->body, p, n) != 0)
    {
        tg_oa_error_set(&ht->err, 502, "server_error", "backend_error", NULL,
                        "The backend's answer is too large.");
    }
}


/* A whole completion (chat or text) into ht's text, tokens and reason. */
static void
tg__host_parse_answer(tg_host_trace_t *ht, json_t *doc)
{
    json_t      *ch, *m, *v;
    const char  *s;

    ch = json_array_get(json_object_get(doc, "choices"), 0);
    m = json_object_get(ch, "message");
    if (m != NULL) {
        v = json_object_get(m, "reasoning_content");
        if (!json_is_string(v)) {
            v = json_object_get(m, "reasoning");
        }
        if (json_is_string(v)) {
            ht->think = TG_THINK_NATIVE;
            (void) tg_buf_append(&ht->reasoning, json_string_value(v),
                                 json_string_length(v));
        }
        v = json_object_get(m, "content");
    } else {
        v = json_object_get(ch, "text");
    }
    if (json_is_string(v)) {
        tg__host_add_content(ht, json_string_value(v), json_string_length(v));
    }
    s = json_string_value(json_object_get(ch, "finish_reason"));
    if (s != NULL) {
        tg_str_copy(ht->finish_reason, sizeof(ht->finish_reason), s);
    }
    if ((s = json_string_value(json_object_get(doc, "model"))) != NULL
        && ht->model == NULL)
    {
        ht->model = strdup(s);
    }
    v = json_object_get(doc, "usage");
    if (json_is_object(v)) {
        json_decref(ht->usage);
        ht->usage = json_incref(v);
        ht->usage_dirty = 0;
        ht->tokens = (uint32_t) json_integer_value(
                         json_object_get(v, "completion_tokens"));
    }
}


/* A scanned string appended to b, unescaped when it has escapes. */
static void
tg__host_jappend(tg_buf_t *b, const tg_jval_t *v)
{
    if (v->esc) {
        (void) tg_jstr_unescape(b, v->p, v->n);
    } else {
        (void) tg_buf_append(b, v->p, v->n);
    }
}


/*
 * A whole completion scanned in place (openai/chunk.c) with the effects
 * tg__host_parse_answer has on a jansson tree of it, which only the
 * usage is still made into (when it is read).  -EINVAL, nothing changed,
 * when the scanner leaves the document to jansson (an "error" member
 * included, so that both paths read the same documents alike).
 */
static int
tg__host_answer_scan(tg_host_trace_t *ht)
{
    tg_chunk_t        ck;
    const tg_jval_t  *v;
    const char       *s;
    size_t            n;

    if (tg_chunk_scan_whole(tg_buf_ptr(&ht->body), tg_buf_size(&ht->body),
                            &ck) != 0
        || ck.error.type != TG_JV_ABSENT)
    {
        return -EINVAL;
    }

    if (ck.has_choice) {
        if (ck.has_message) {
            v = ck.reasoning_content.type == TG_JV_STRING
                ? &ck.reasoning_content : &ck.reasoning;
            if (v->type == TG_JV_STRING) {
                ht->think = TG_THINK_NATIVE;
                tg__host_jappend(&ht->reasoning, v);
            }
            v = &ck.content;
        } else {
            v = &ck.text;
        }
        if (v->type == TG_JV_STRING
            && (s = tg__host_jtext(ht, v, &n)) != NULL)
        {
            tg__host_add_content(ht, s, n);
        }
        if (ck.finish_reason.type == TG_JV_STRING
            && (s = tg__host_jtext(ht, &ck.finish_reason, &n)) != NULL)
        {
            n = n < sizeof(ht->finish_reason) - 1
                ? n : sizeof(ht->finish_reason) - 1;
            memcpy(ht->finish_reason, s, n);
            ht->finish_reason[n] = '\0';
        }
    }
    if (ck.model.type == TG_JV_STRING && ht->model == NULL
        && (s = tg__host_jtext(ht, &ck.model, &n)) != NULL)
    {
        ht->model = strndup(s, n);
    }
    if (ck.usage.object) {
        tg__host_usage_keep(ht, &ck);
        ht->tokens = ck.completion_tokens.type == TG_JV_INT
                     ? (uint32_t) ck.completion_tokens.i : 0;
    }
    return 0;
}


/* The transfer ended (or the host ends it after an error event): the
 * final state, as on_trace_end reports it. */
void
tg__host_trace_ended(tg_host_trace_t *ht, tg_trace_end_t *e)
{
    tg_trace_t  *t = ht->t;
    json_t      *doc;

    ht->ended = 1;
    ht->ended_ms = tg__host_now();
    ht->http_status = (int) t->status;

    if (ht->err.status == 0 && tg_trace_error(t, &ht->err)) {
        ht->state = TG_TRACE_FAILED;

    } else if (ht->err.status != 0) {
        ht->state = TG_TRACE_FAILED;

    } else if (!t->sse_ready && !ht->aux && tg__host_answer_scan(ht) == 0) {
        ht->state = TG_TRACE_DONE;

    } else if (!t->sse_ready) {
        doc = tg_json_loadb(tg_buf_ptr(&ht->body), tg_buf_size(&ht->body),
                            NULL);
        if (json_is_object(doc) && ht->aux
            && tg__host_aux_reply(ht, doc) != 0)
        {
            ht->state = TG_TRACE_FAILED;        /* ht->err says why */

        } else if (json_is_object(doc)) {
            if (!tg__host_aux_is_embed(ht)) {
                tg__host_parse_answer(ht, doc);
            }
            ht->state = TG_TRACE_DONE;
        } else {
            tg_oa_error_set(&ht->err, 502, "server_error", "backend_error",
                            NULL, "Backend \"%s\" sent an answer that is not "
                            "JSON.", t->backend ? t->backend->name : "?");
            ht->state = TG_TRACE_FAILED;
        }
        json_decref(doc);

    } else if (ht->finish_reason[0] != '\0' || t->done_seen) {
        ht->state = TG_TRACE_DONE;

    } else {
        tg_oa_error_set(&ht->err, 502, "server_error", "backend_error", NULL,
                        "Backend \"%s\" ended the stream before the answer "
                        "was complete.", t->backend ? t->backend->name : "?");
        ht->state = TG_TRACE_FAILED;
    }

    memset(e, 0, sizeof(*e));
    e->state = ht->state;
    e->finish_reason = ht->finish_reason[0] ? ht->finish_reason : NULL;
    e->tokens = ht->tokens;
    e->http_status = ht->http_status;
    e->error = ht->state == TG_TRACE_FAILED ? ht->err.message : NULL;

    if (ht->state == TG_TRACE_FAILED) {
        tg_log_debug("request %llu: trace %u failed: %s",
                     (unsigned long long) ht->hr->r->id, ht->index,
                     ht->err.message);
    }
}
