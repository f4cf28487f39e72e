/*
 * A non-streamed answer as text: the completion object written straight
 * into hr->out (tg_jstr, tg_json_dump) rather than built as a jansson
 * tree and dumped, the same keys in the same order and the same bytes.
 * tg__host_reply_begin writes it up to its choices when the answer is
 * whole; tg__host_reply_rest adds the usage and the "thinkgate" object
 * once a session's turn is stored (host_choice.c) and sends it.  The
 * "thinkgate" object of the common case (only the host's figures) is
 * written as text too, its END figures with it; any other is built
 * (tg__host_summary) and dumped.
 */

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "openai/chunk.h"
#include "strategy/host.h"
#include "util/jdump.h"
#include "util/jstr.h"

static int tg__host_text_str(tg_buf_t *b, tg_buf_t *s, int empty_null);
static int tg__host_choice_text(tg_host_req_t *hr, tg_buf_t *b, uint32_t k,
    const char *finish);
static int tg__host_usage_text(tg_host_req_t *hr, tg_host_trace_t *ht,
    tg_buf_t *b);
static size_t tg__host_fig(char *fig, size_t size, size_t n, const char *s,
    uint64_t v);
static int tg__host_summary_text(tg_host_req_t *hr, tg_host_trace_t *winner,
    const json_t *extra, tg_buf_t *b, char *fig, size_t figsize,
    size_t *figlen);


#define TG_LIT(b, lit)  tg_buf_append(b, lit, sizeof(lit) - 1)


/* s as a quoted JSON string; empty as null where empty_null. */
static int
tg__host_text_str(tg_buf_t *b, tg_buf_t *s, int empty_null)
{
    int  rc = 0;

    if (tg_buf_size(s) == 0) {
        return empty_null ? TG_LIT(b, "null") : TG_LIT(b, "\"\"");
    }
    rc |= TG_LIT(b, "\"");
    rc |= tg_jstr_escape(b, tg_buf_ptr(s), tg_buf_size(s));
    rc |= TG_LIT(b, "\"");
    return rc;
}


/* Choice k of a non-streamed answer, appended to b: {"index": k,
 * "message": {"role", "content", "reasoning_content"} or "text",
 * "logprobs": null, "finish_reason"}, in the order and bytes that dumping
 * the object with tg_json_dump wrote. */
static int
tg__host_choice_text(tg_host_req_t *hr, tg_buf_t *b, uint32_t k,
    const char *finish)
{
    tg_host_choice_t  *c = &hr->choices[k];
    int                rc = 0;

    if (c->closed) {
        finish = c->finish_reason;
    }
    rc |= TG_LIT(b, "{\"index\":");
    rc |= tg_jstr_int(b, (int64_t) k);
    if (hr->r->oa.endpoint == TG_OA_CHAT) {
        rc |= TG_LIT(b, ",\"message\":{\"role\":\"assistant\","
                        "\"content\":");
        rc |= tg__host_text_str(b, &c->content, 1);
        rc |= TG_LIT(b, ",\"reasoning_content\":");
        rc |= tg__host_text_str(b, &c->reasoning, 1);
        rc |= TG_LIT(b, "}");
    } else {
        /* A completion's text is the raw output, thinking included. */
        (void) tg_buf_append(&c->reasoning, tg_buf_size(&c->content)
                                            ? tg_buf_ptr(&c->content) : "",
                             tg_buf_size(&c->content));
        rc |= TG_LIT(b, ",\"text\":");
        rc |= tg__host_text_str(b, &c->reasoning, 0);
    }
    rc |= TG_LIT(b, ",\"logprobs\":null,\"finish_reason\":\"");
    rc |= tg_jstr_escape(b, finish, strlen(finish));
    rc |= TG_LIT(b, "\"}");
    return rc != 0 ? -ENOMEM : 0;
}


/* A non-streamed answer's text up to its choices (its end follows in
 * tg__host_end_rest), rendered into hr->out as text rather than built as
 * a jansson tree and dumped: the same keys in the same order, the same
 * bytes. */
int
tg__host_reply_begin(tg_host_req_t *hr, tg_host_trace_t *usage_of,
    const char *finish)
{
    tg_buf_t    *b = &hr->out;
    const char  *model = tg__host_model(hr, tg__host_model_of(hr, usage_of,
                                                              0));
    uint32_t     k, n = hr->nopen > 1 ? hr->nopen : 1;
    int          rc = 0;

    b->start = b->len = 0;
    rc |= TG_LIT(b, "{\"id\":\"");
    rc |= tg_jstr_escape(b, hr->id, strlen(hr->id));
    rc |= hr->r->oa.endpoint == TG_OA_CHAT
          ? TG_LIT(b, "\",\"object\":\"chat.completion\",\"created\":")
          : TG_LIT(b, "\",\"object\":\"text_completion\",\"created\":");
    rc |= tg_jstr_int(b, hr->created);
    rc |= TG_LIT(b, ",\"model\":\"");
    rc |= tg_jstr_escape(b, model, strlen(model));
    rc |= TG_LIT(b, "\",\"choices\":[");
    for (k = 0; k < n && rc == 0; k++) {
        if (k > 0) {
            rc |= TG_LIT(b, ",");
        }
        rc |= tg__host_choice_text(hr, b, k, finish);
    }
    rc |= TG_LIT(b, "]");
    return rc != 0 ? -ENOMEM : 0;
}


/* The counts a non-streamed answer's usage gets from the trace. */
static const char *const  tg__host_usage_keys[] = { "completion_tokens",
                                                    "total_tokens" };


/* The trace's usage text rewritten member by member (tg_chunk_members):
 * the counts replaced, the rest as the backend wrote it. */
typedef struct {
    tg_buf_t   *b;
    int64_t     vals[2];        /* completion_tokens, total_tokens */
    unsigned    seen;
    int         replace;
    int         first;
} tg__host_usage_w_t;


/* A member's start: the comma after the one before (or the brace), the
 * key and its colon. */
static int
tg__host_usage_key(tg__host_usage_w_t *w, const char *k, size_t n)
{
    int  rc;

    rc = w->first ? TG_LIT(w->b, "{\"") : TG_LIT(w->b, ",\"");
    w->first = 0;
    rc |= tg_buf_append(w->b, k, n);
    return rc | TG_LIT(w->b, "\":");
}


static int
tg__host_usage_member(void *arg, const tg_jval_t *k, const tg_jval_t *v)
{
    tg__host_usage_w_t       *w = arg;
    int                       i, rc;

    for (i = w->replace ? 0 : 2; i < 2; i++) {
        if (k->n == strlen(tg__host_usage_keys[i])
            && memcmp(k->p, tg__host_usage_keys[i], k->n) == 0)
        {
            break;
        }
    }
    rc = tg__host_usage_key(w, k->p, k->n);
    if (i < 2) {
        w->seen |= 1u << i;
        rc |= tg_jstr_int(w->b, w->vals[i]);
    } else {
        rc |= tg_buf_append(w->b, v->p, v->n);
    }
    return rc != 0 ? -ENOMEM : 0;
}


/* Whether a usage text has no space outside its values' own text: then
 * tg__host_usage_raw's rewrite, which drops only the space between
 * members, copies it byte for byte where no count changes. */
static int
tg__host_usage_compact(const tg_buf_t *u)
{
    const char  *p = tg_buf_ptr(u);
    size_t       i, n = tg_buf_size(u);
    uint64_t     x;

    /* Eight bytes at a time: any byte of 0x20 or less (the text was
     * scanned as JSON, so such a byte is space) says no.  A byte of 0x80
     * or more never counts, as it is no space. */
    for (i = 0; i + 8 <= n; i += 8) {
        memcpy(&x, p + i, 8);
        if (((x - 0x2121212121212121ull) & ~x & 0x8080808080808080ull) != 0) {
            return 0;
        }
    }
    for ( ; i < n; i++) {
        if ((unsigned char) p[i] <= ' ') {
            return 0;
        }
    }
    return 1;
}


/* The usage text of a trace whose usage object was scanned and not
 * parsed since: what tg_json_dump_ints below writes, as JSON, without
 * building the object.  0, 1 when it does not apply, or -ENOMEM. */
static int
tg__host_usage_raw(tg_host_trace_t *ht, tg_buf_t *b)
{
    tg__host_usage_w_t        w;
    size_t                    mark = tg_buf_size(b);
    int                       i, rc;

    if (!ht->usage_dirty) {
        return 1;
    }
    w.b = b;
    w.replace = ht->tokens > 0;
    w.vals[0] = ht->tokens;
    /* as json_integer_value(): 0 for a prompt_tokens not an integer */
    w.vals[1] = (ht->usage_pt != INT64_MIN ? ht->usage_pt : 0) + ht->tokens;
    if ((!w.replace || (ht->usage_ct == w.vals[0]
                        && ht->usage_tt == w.vals[1]))
        && tg__host_usage_compact(&ht->usage_raw))
    {
        /* What the rewrite below would write, member for member. */
        return tg_buf_append(b, tg_buf_ptr(&ht->usage_raw),
                             tg_buf_size(&ht->usage_raw)) != 0 ? -ENOMEM : 0;
    }
    w.seen = 0;
    w.first = 1;
    rc = tg_chunk_members(tg_buf_ptr(&ht->usage_raw),
                          tg_buf_size(&ht->usage_raw),
                          tg__host_usage_member, &w);
    for (i = 0; rc == 0 && w.replace && i < 2; i++) {
        if (!(w.seen & (1u << i))) {
            rc |= tg__host_usage_key(&w, tg__host_usage_keys[i],
                                     strlen(tg__host_usage_keys[i]));
            rc |= tg_jstr_int(b, w.vals[i]);
        }
    }
    if (rc == 0) {
        return w.first ? TG_LIT(b, "{}") : TG_LIT(b, "}");
    }
    b->len = b->start + mark;
    return rc == -EINVAL ? 1 : -ENOMEM;
}


/* The usage of a non-streamed answer, appended to b: what dumping
 * tg__host_usage's object writes, without its copy of the trace's usage
 * object where only the counts change. */
static int
tg__host_usage_text(tg_host_req_t *hr, tg_host_trace_t *ht, tg_buf_t *b)
{
    json_t                   *u;
    int64_t                   vals[2];
    int                       rc;

    if (ht != NULL && ht->cut_at == 0) {
        rc = tg__host_usage_raw(ht, b);
        if (rc != 1) {
            return rc;
        }
    }
    u = ht != NULL && ht->cut_at == 0 ? tg__host_trace_usage(ht) : NULL;
    if (json_is_object(u)) {
        if (ht->tokens == 0) {
            return tg_json_dump(b, u);
        }
        vals[0] = ht->tokens;
        vals[1] = json_integer_value(json_object_get(u, "prompt_tokens"))
                  + ht->tokens;
        return tg_json_dump_ints(b, u, tg__host_usage_keys, vals, 2);
    }
    u = tg__host_usage(hr, ht);
    if (u == NULL) {
        return -ENOMEM;
    }
    rc = tg_json_dump(b, u);
    json_decref(u);
    return rc;
}


/* Appends s, or v in decimal (s NULL), to the n bytes of fig; returns
 * the new length, size (full) when it does not fit. */
static size_t
tg__host_fig(char *fig, size_t size, size_t n, const char *s, uint64_t v)
{
    char    d[24];
    size_t  l;

    if (s == NULL) {
        l = sizeof(d);
        do {
            d[--l] = (char) ('0' + v % 10);
            v /= 10;
        } while (v != 0);
        s = d + l;
        l = sizeof(d) - l;
    } else {
        l = strlen(s);
    }
    if (n >= size || size - n <= l) {
        return size;
    }
    memcpy(fig + n, s, l);
    return n + l;
}


/*
 * The "thinkgate" object as text appended to b, and its END figures into
 * fig (*figlen bytes), for the common case only: nothing but the host's
 * own figures (no plugin keys, counters, or extra members) and a strategy
 * name that JSON writes as it is.  The same bytes tg_json_dump and
 * tg_request_end write for the object tg__host_summary builds.  0, 1
 * when the case does not apply (nothing written), or -ENOMEM.
 */
static int
tg__host_summary_text(tg_host_req_t *hr, tg_host_trace_t *winner,
    const json_t *extra, tg_buf_t *b, char *fig, size_t figsize,
    size_t *figlen)
{
    const char       *s = hr->strategy, *src;
    tg_host_trace_t  *a;
    uint64_t          tokens = 0, aux = 0;
    size_t            i, n, sl;
    int               rc = 0;

    if (hr->summary != NULL || hr->counters != NULL
        || json_object_size(extra) != 0 || s == NULL)
    {
        return 1;
    }
    for (sl = 0; s[sl] != '\0'; sl++) {
        if ((unsigned char) s[sl] < 0x20 || (unsigned char) s[sl] >= 0x80
            || s[sl] == '"' || s[sl] == '\\')
        {
            return 1;
        }
    }
    for (i = 0; i < hr->ntraces; i++) {
        tokens += hr->traces[i]->tokens;
    }
    for (a = hr->auxs; a != NULL; a = a->next_aux) {
        aux += a->tokens;
    }
    tokens += aux;
    src = tg__host_usage_source(hr, winner);

    n = tg__host_fig(fig, figsize, 0, "strategy=", 0);
    n = tg__host_fig(fig, figsize, n, s, 0);
    n = tg__host_fig(fig, figsize, n, "\ntraces_started=", 0);
    n = tg__host_fig(fig, figsize, n, NULL, hr->ntraces);
    n = tg__host_fig(fig, figsize, n, "\ntraces_cancelled=", 0);
    n = tg__host_fig(fig, figsize, n, NULL, hr->cancelled);
    n = tg__host_fig(fig, figsize, n, "\ntokens=", 0);
    n = tg__host_fig(fig, figsize, n, NULL, tokens);
    n = tg__host_fig(fig, figsize, n, "\nwinner=", 0);
    if (winner != NULL) {
        n = tg__host_fig(fig, figsize, n, NULL, winner->index);
    }
    n = tg__host_fig(fig, figsize, n, "\nusage_source=", 0);
    n = tg__host_fig(fig, figsize, n, src, 0);
    n = tg__host_fig(fig, figsize, n, "\n", 0);
    if (hr->auxs != NULL) {
        n = tg__host_fig(fig, figsize, n, "aux_tokens=", 0);
        n = tg__host_fig(fig, figsize, n, NULL, aux);
        n = tg__host_fig(fig, figsize, n, "\n", 0);
    }
    if (n >= figsize) {
        return 1;
    }
    *figlen = n;

    rc |= TG_LIT(b, "{\"strategy\":\"");
    rc |= tg_buf_append(b, s, sl);
    rc |= TG_LIT(b, "\",\"traces_started\":");
    rc |= tg_jstr_int(b, (int64_t) hr->ntraces);
    rc |= TG_LIT(b, ",\"traces_cancelled\":");
    rc |= tg_jstr_int(b, (int64_t) hr->cancelled);
    rc |= TG_LIT(b, ",\"tokens\":");
    rc |= tg_jstr_int(b, (int64_t) tokens);
    rc |= TG_LIT(b, ",\"winner\":");
    rc |= winner != NULL ? tg_jstr_int(b, (int64_t) winner->index)
                         : TG_LIT(b, "null");
    rc |= TG_LIT(b, ",\"usage_source\":\"");
    rc |= tg_buf_append(b, src, strlen(src));
    rc |= TG_LIT(b, "\"");
    if (hr->auxs != NULL) {
        rc |= TG_LIT(b, ",\"aux_tokens\":");
        rc |= tg_jstr_int(b, (int64_t) aux);
    }
    rc |= TG_LIT(b, "}");
    return rc != 0 ? -ENOMEM : 0;
}


/* The rest of the answer tg__host_reply_begin rendered: its usage (that
 * of usage_of), the "thinkgate" object (as text when only the host's
 * figures are in it), and the reply with END.  Out of memory is a 500
 * (reported here). */
int
tg__host_reply_rest(tg_host_req_t *hr, tg_host_trace_t *usage_of)
{
    tg_buf_t       *b = &hr->out;
    json_t         *extra, *summary = NULL;
    tg_oa_error_t   err;
    char            fig[512];
    size_t          figlen = 0;
    int             rc = 0;

    extra = tg__host_summary_extra(hr);
    if (extra == NULL) {
        goto nomem;
    }
    rc |= TG_LIT(b, ",\"usage\":");
    rc |= tg__host_usage_text(hr, usage_of, b);
    rc |= TG_LIT(b, ",\"thinkgate\":");
    if (rc == 0) {
        rc = tg__host_summary_text(hr, usage_of, extra, b, fig, sizeof(fig),
                                   &figlen);
    }
    if (rc == 1) {
        summary = tg__host_summary(hr, usage_of, extra);
        rc = summary != NULL ? tg_json_dump(b, summary) : -ENOMEM;
    }
    json_decref(extra);
    rc |= TG_LIT(b, "}");
    if (rc != 0) {
        json_decref(summary);
        goto nomem;
    }
    return tg__host_reply_out(hr, summary, fig, figlen);

nomem:
    tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
    tg__host_error(hr, &err);
    return -ENOMEM;
}


/* A non-streamed answer: doc as a 200 application/json reply, then END
 * with summary.  Takes both; out of memory is a 500 (reported here). */
int
tg__host_reply_json(tg_host_req_t *hr, json_t *doc, json_t *summary)
{
    tg_buf_t       *b = &hr->out;
    tg_oa_error_t   err;
    int             rc;

    /* Rendered into the request's reused buffer, as chunks are. */
    b->start = b->len = 0;
    rc = tg_json_dump(b, doc);
    json_decref(doc);
    if (rc != 0) {
        json_decref(summary);
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg__host_error(hr, &err);
        return -ENOMEM;
    }
    return tg__host_reply_out(hr, summary, NULL, 0);
}


/* The non-streamed answer rendered in hr->out as a 200 application/json
 * reply, then END with summary (taken), or without one with the figures
 * fig (figlen bytes) as END's text. */
int
tg__host_reply_out(tg_host_req_t *hr, json_t *summary, const char *fig,
    size_t figlen)
{
    tg_request_t  *r = hr->r;
    tg_buf_t      *b = &hr->out;
    int            rc;

    rc = tg_request_head(r, 200, 0, "Content-Type: application/json\r\n");
    if (rc == 0) {
        rc = tg_request_data(r, tg_buf_ptr(b), tg_buf_size(b));
    }
    if (rc != 0) {
        json_decref(summary);
        return rc == -EPIPE ? 0 : rc;
    }
    if (summary == NULL) {
        return tg_request_end_text(r, fig, figlen);
    }
    return tg_request_end(r, summary);
}
