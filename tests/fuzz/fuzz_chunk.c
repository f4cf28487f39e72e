/*
 * engine/openai/chunk.c: the scanner answers only for documents jansson
 * accepts, its pointers stay inside the input, and the fields it reports
 * are the ones jansson reads from the same text.  Both readings: a
 * streamed chunk (tg_chunk_scan) and a whole non-streamed answer
 * (tg_chunk_scan_whole, a backend's reply read in place).
 */
#include <jansson.h>

#include "openai/chunk.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
tg_fuzz_in_range(const tg_jval_t *v, const char *p, size_t n)
{
    if (v->type == TG_JV_ABSENT) {
        return;
    }
    tg_fuzz_check(v->p >= p && v->p + v->n <= p + n);
}

/* A scanned value against the value jansson built for the same key. */
static void
tg_fuzz_same(const tg_jval_t *v, json_t *j)
{
    if (j == NULL) {
        tg_fuzz_check(v->type == TG_JV_ABSENT);
        return;
    }
    switch (v->type) {
    case TG_JV_NULL:
        tg_fuzz_check(json_is_null(j));
        break;
    case TG_JV_STRING:
        tg_fuzz_check(json_is_string(j));
        if (!v->esc) {
            tg_fuzz_check(json_string_length(j) == v->n
                          && memcmp(json_string_value(j), v->p, v->n) == 0);
        }
        break;
    case TG_JV_INT:
        tg_fuzz_check(json_is_integer(j) && json_integer_value(j) == v->i);
        break;
    case TG_JV_OTHER:
        tg_fuzz_check(!json_is_null(j) && !json_is_string(j));
        tg_fuzz_check(!v->object || json_is_object(j));
        break;
    default:
        tg_fuzz_check(0);
    }
}

/* The pointers of every field the scanner fills stay inside p[0..n). */
static void
tg_fuzz_all_in_range(const tg_chunk_t *c, const char *p, size_t n)
{
    tg_fuzz_in_range(&c->error, p, n);
    tg_fuzz_in_range(&c->model, p, n);
    tg_fuzz_in_range(&c->usage, p, n);
    tg_fuzz_in_range(&c->completion_tokens, p, n);
    tg_fuzz_in_range(&c->prompt_tokens, p, n);
    tg_fuzz_in_range(&c->total_tokens, p, n);
    tg_fuzz_in_range(&c->reasoning_content, p, n);
    tg_fuzz_in_range(&c->reasoning, p, n);
    tg_fuzz_in_range(&c->content, p, n);
    tg_fuzz_in_range(&c->text, p, n);
    tg_fuzz_in_range(&c->finish_reason, p, n);
    tg_fuzz_in_range(&c->logprobs, p, n);
}


/* Every member tg_chunk_members reports lies inside the usage text. */
static int
tg_fuzz_member(void *arg, const tg_jval_t *k, const tg_jval_t *v)
{
    const tg_chunk_t  *c = arg;

    tg_fuzz_check(k->p >= c->usage.p
                  && k->p + k->n <= c->usage.p + c->usage.n);
    tg_fuzz_check(v->p >= c->usage.p && v->n > 0
                  && v->p + v->n <= c->usage.p + c->usage.n);
    return 0;
}


/* jansson's reading of what the scanner accepted: it must be an object,
 * the scanner's pointers inside the input, and the top-level fields
 * (error, model, usage.completion_tokens) jansson's.  The host hands a
 * document with an "error" to jansson; the scanner still says whether
 * there is one. */
static json_t *
tg_fuzz_top(const tg_chunk_t *c, const char *p, size_t size)
{
    json_error_t   err;
    json_t        *doc, *usage;

    doc = json_loadb(p, size, 0, &err);
    tg_fuzz_check(doc != NULL);
    tg_fuzz_check(json_is_object(doc));
    tg_fuzz_all_in_range(c, p, size);
    tg_fuzz_same(&c->error, json_object_get(doc, "error"));
    tg_fuzz_same(&c->model, json_object_get(doc, "model"));
    usage = json_object_get(doc, "usage");
    if (json_is_object(usage)) {
        tg_fuzz_same(&c->completion_tokens,
                     json_object_get(usage, "completion_tokens"));
        tg_fuzz_same(&c->prompt_tokens,
                     json_object_get(usage, "prompt_tokens"));
        tg_fuzz_same(&c->total_tokens,
                     json_object_get(usage, "total_tokens"));
        /* the host rewrites the usage member by member */
        tg_fuzz_check(tg_chunk_members(c->usage.p, c->usage.n,
                                       tg_fuzz_member, (void *) c) == 0);
    }
    return doc;
}


/* A whole answer: accepted only where jansson accepts an object, and its
 * top-level fields and first choice's are jansson's. */
static void
tg_fuzz_whole(const char *p, size_t size)
{
    tg_chunk_t     c;
    json_t        *doc, *choice, *msg;

    memset(&c, 0, sizeof(c));
    if (tg_chunk_scan_whole(p, size, &c) != 0) {
        return;
    }
    doc = tg_fuzz_top(&c, p, size);
    choice = json_array_get(json_object_get(doc, "choices"), 0);
    if (c.has_choice && json_is_object(choice)) {
        tg_fuzz_same(&c.finish_reason,
                     json_object_get(choice, "finish_reason"));
        msg = json_object_get(choice, "message");
        if (c.has_message && json_is_object(msg)) {
            tg_fuzz_same(&c.content, json_object_get(msg, "content"));
            tg_fuzz_same(&c.reasoning_content,
                         json_object_get(msg, "reasoning_content"));
        }
    }
    json_decref(doc);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char    *p = (const char *) data;
    tg_chunk_t     c;
    json_t        *doc, *choices, *choice, *delta;

    tg_fuzz_whole(p, size);

    memset(&c, 0, sizeof(c));
    if (tg_chunk_scan(p, size, &c) != 0) {
        return 0;
    }

    doc = tg_fuzz_top(&c, p, size);

    /* With a single choice, that choice is the one reported. */
    choices = json_object_get(doc, "choices");
    if (json_is_array(choices) && json_array_size(choices) == 1
        && c.has_choice)
    {
        choice = json_array_get(choices, 0);
        tg_fuzz_same(&c.finish_reason,
                     json_object_get(choice, "finish_reason"));
        tg_fuzz_same(&c.text, json_object_get(choice, "text"));
        delta = json_object_get(choice, "delta");
        if (json_is_object(delta)) {
            tg_fuzz_same(&c.content, json_object_get(delta, "content"));
            tg_fuzz_same(&c.reasoning_content,
                         json_object_get(delta, "reasoning_content"));
        }
    }

    json_decref(doc);
    return 0;
}
