/*
 * The chunk scanner (engine/openai/chunk.c) and the JSON string helpers
 * (engine/util/jstr.c), each compared with jansson: thousands of
 * generated chunks (fields in any order, nested unknown objects, escapes,
 * \uXXXX surrogate pairs, raw UTF-8, several choices), every prefix of
 * some, and random corruptions.  Whenever the scanner answers, it must
 * read what jansson reads; whenever jansson refuses, the scanner must
 * refuse too.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "../../engine/openai/chunk.h"
#include "../../engine/util/jdump.h"
#include "../../engine/util/jstr.h"

typedef struct {
    char    *p;
    size_t   len, cap;
} gen_t;

static unsigned  rng_state = 12345;


static unsigned
rnd(unsigned n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 8) % n;
}


static void
put(gen_t *g, const char *s, size_t n)
{
    if (g->len + n + 1 > g->cap) {
        g->cap = (g->len + n + 1) * 2;
        g->p = realloc(g->p, g->cap);
        cr_assert_not_null(g->p);
    }
    memcpy(g->p + g->len, s, n);
    g->len += n;
    g->p[g->len] = '\0';
}


static void
puts_(gen_t *g, const char *s)
{
    put(g, s, strlen(s));
}


static void
ws(gen_t *g)
{
    static const char  *w[] = { "", "", "", " ", "\n", "\t ", "\r\n " };

    puts_(g, w[rnd(7)]);
}


/* A JSON string literal with escapes, surrogate pairs and raw UTF-8. */
static void
gen_string(gen_t *g)
{
    static const char  *parts[] = {
        "a", "Hello", " ", "think", "<think>", "</think>", "\\n", "\\\"",
        "\\\\", "\\/", "\\t", "\\b\\f\\r", "\\u0041", "\\u00e9", "\\u20AC",
        "\\ud83d\\ude00", "\\uD834\\uDD1E", "\xc3\xa9", "\xe2\x82\xac",
        "\xf0\x9f\x98\x80", "\\u001f", "\\u2028", "42", "{", "}", "[", ","
    };
    unsigned  i, n = rnd(6);

    puts_(g, "\"");
    for (i = 0; i < n; i++) {
        puts_(g, parts[rnd(sizeof(parts) / sizeof(parts[0]))]);
    }
    puts_(g, "\"");
}


static void gen_value(gen_t *g, int depth);


static void
gen_object(gen_t *g, int depth)
{
    unsigned  i, n = rnd(4);

    puts_(g, "{");
    ws(g);
    for (i = 0; i < n; i++) {
        if (i) {
            puts_(g, ",");
            ws(g);
        }
        gen_string(g);
        ws(g);
        puts_(g, ":");
        ws(g);
        gen_value(g, depth + 1);
        ws(g);
    }
    puts_(g, "}");
}


static void
gen_value(gen_t *g, int depth)
{
    static const char  *atoms[] = {
        "null", "true", "false", "0", "-0", "17", "-3", "1.5", "-2.5e-05",
        "1E3", "123456789012", "0.000001", "9007199254740993"
    };
    unsigned  i, n, k = rnd(depth > 3 ? 2 : 4);

    if (k == 0) {
        puts_(g, atoms[rnd(sizeof(atoms) / sizeof(atoms[0]))]);
    } else if (k == 1) {
        gen_string(g);
    } else if (k == 2) {
        gen_object(g, depth);
    } else {
        puts_(g, "[");
        n = rnd(3);
        for (i = 0; i < n; i++) {
            if (i) {
                puts_(g, ",");
            }
            ws(g);
            gen_value(g, depth + 1);
        }
        puts_(g, "]");
    }
}


/* A member "key": value, with the value one of a few typed shapes. */
static void
gen_member(gen_t *g, const char *key, int kind)
{
    puts_(g, "\"");
    puts_(g, key);
    puts_(g, "\"");
    ws(g);
    puts_(g, ":");
    ws(g);
    switch (kind) {
    case 0:
        gen_string(g);
        break;
    case 1:
        puts_(g, rnd(2) ? "null" : "\"stop\"");
        break;
    case 2: {
        char  num[32];

        snprintf(num, sizeof(num), "%u", rnd(5000));
        puts_(g, num);
        break;
    }
    default:
        gen_value(g, 1);
    }
}


/* Members in a random order, separated by commas. */
static void
gen_members(gen_t *g, const char **keys, const int *kinds, unsigned n)
{
    unsigned  order[12], i, j, t, first = 1;

    for (i = 0; i < n; i++) {
        order[i] = i;
    }
    for (i = n; i > 1; i--) {
        j = rnd(i);
        t = order[i - 1];
        order[i - 1] = order[j];
        order[j] = t;
    }
    for (i = 0; i < n; i++) {
        if (rnd(5) == 0) {
            continue;               /* absent */
        }
        if (!first) {
            puts_(g, ",");
        }
        first = 0;
        ws(g);
        gen_member(g, keys[order[i]], kinds[order[i]]);
        ws(g);
    }
}


static int  gen_whole;      /* gen_chunk writes whole completions */


static void
gen_choice(gen_t *g, int index)
{
    static const char  *dk[] = { "role", "reasoning_content", "reasoning",
                                 "content", "tool_calls" };
    static const int    dt[] = { 0, 0, 0, 0, 3 };
    char                num[32];

    puts_(g, "{");
    if (index >= 0) {
        snprintf(num, sizeof(num), "\"index\":%d,", index);
        puts_(g, num);
    }
    if (!gen_whole) {
        puts_(g, "\"delta\":{");
        gen_members(g, dk, dt, 5);
        puts_(g, "},");
    } else if (rnd(6) == 0) {
        puts_(g, "\"message\":null,");
    } else if (rnd(6) != 0) {
        puts_(g, "\"message\":{");
        gen_members(g, dk, dt, 5);
        puts_(g, "},");
    }
    ws(g);
    gen_member(g, "finish_reason", 1);
    puts_(g, ",");
    gen_member(g, rnd(2) ? "text" : "stop_reason", rnd(2) ? 0 : 3);
    if (rnd(4) == 0) {
        puts_(g, ",");
        gen_member(g, "logprobs", rnd(2) ? 1 : 3);
    }
    puts_(g, "}");
}


static void
gen_chunk(gen_t *g)
{
    static const char  *uk[] = { "prompt_tokens", "completion_tokens",
                                 "total_tokens", "details" };
    static const int    ut[] = { 2, 2, 2, 3 };
    unsigned            i, n, k;

    g->len = 0;
    puts_(g, "{");
    ws(g);
    puts_(g, "\"id\":\"chatcmpl-1\",");
    ws(g);
    puts_(g, "\"object\":\"chat.completion.chunk\",\"created\":1700000000");
    if (rnd(3)) {
        puts_(g, ",");
        gen_member(g, "model", rnd(5) ? 0 : 3);
    }
    puts_(g, ",");
    ws(g);
    puts_(g, "\"choices\":[");
    n = rnd(4);
    for (i = 0; i < n; i++) {
        if (i) {
            puts_(g, ",");
        }
        k = rnd(4);
        gen_choice(g, k == 3 ? -1 : (int) k);
    }
    puts_(g, "]");
    k = rnd(4);
    if (k == 1) {
        puts_(g, ",\"usage\":null");
    } else if (k >= 2) {
        puts_(g, ",\"usage\":{");
        gen_members(g, uk, ut, 4);
        puts_(g, "}");
    }
    if (rnd(10) == 0) {
        puts_(g, ",");
        gen_member(g, "error", rnd(2) ? 1 : 3);
    }
    if (rnd(3) == 0) {
        puts_(g, ",");
        gen_member(g, "extra", 3);
    }
    ws(g);
    puts_(g, "}");
    ws(g);
}


/* v as the scanner saw it equals j as jansson read it. */
static void
check_val(const tg_jval_t *v, json_t *j, const char *what, const char *doc)
{
    tg_buf_t  b = { 0 };

    if (j == NULL) {
        cr_assert_eq(v->type, TG_JV_ABSENT, "%s absent in %s", what, doc);
        return;
    }
    if (json_is_null(j)) {
        cr_assert_eq(v->type, TG_JV_NULL, "%s null in %s", what, doc);
        return;
    }
    if (json_is_string(j)) {
        cr_assert_eq(v->type, TG_JV_STRING, "%s string in %s", what, doc);
        cr_assert_eq(tg_jstr_unescape(&b, v->p, v->n), 0);
        cr_assert_eq(tg_buf_size(&b), json_string_length(j), "%s in %s",
                     what, doc);
        cr_assert(memcmp(tg_buf_ptr(&b), json_string_value(j),
                         json_string_length(j)) == 0, "%s in %s", what, doc);
        tg_buf_free(&b);
        return;
    }
    if (json_is_integer(j)) {
        cr_assert_eq(v->type, TG_JV_INT, "%s int in %s", what, doc);
        cr_assert_eq(v->i, json_integer_value(j), "%s in %s", what, doc);
        return;
    }
    cr_assert_eq(v->type, TG_JV_OTHER, "%s other in %s", what, doc);
}


/* jansson's reading of p when the scanner (rc) also accepted it; NULL
 * when either refused, after checking that the scanner never accepts
 * what jansson refuses. */
static json_t *
loaded(int rc, const char *p, size_t n)
{
    json_t  *doc = json_loadb(p, n, 0, NULL);

    if (!json_is_object(doc)) {
        cr_assert_neq(rc, 0, "scanner accepted what jansson refuses: %.*s",
                      (int) n, p);
        json_decref(doc);
        return NULL;
    }
    if (rc != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}


/* tg_chunk_members' callback: the members written back as an object. */
static int
rebuild_member(void *arg, const tg_jval_t *k, const tg_jval_t *v)
{
    tg_buf_t  *b = arg;

    tg_buf_append(b, tg_buf_size(b) > 1 ? ",\"" : "\"",
                  tg_buf_size(b) > 1 ? 2 : 1);
    tg_buf_append(b, k->p, k->n);
    tg_buf_append(b, "\":", 2);
    tg_buf_append(b, v->p, v->n);
    if (v->type == TG_JV_INT) {
        json_t  *i = json_loadb(v->p, v->n, JSON_DECODE_ANY, NULL);

        cr_assert_eq(json_integer_value(i), v->i, "member value %.*s",
                     (int) v->n, v->p);
        json_decref(i);
    }
    return 0;
}


/* The usage object's members, each key with its value's text, make the
 * same object again. */
static void
check_members(const tg_jval_t *u, json_t *usage, const char *p)
{
    tg_buf_t  b = { 0 };
    json_t   *again;

    tg_buf_append(&b, "{", 1);
    cr_assert_eq(tg_chunk_members(u->p, u->n, rebuild_member, &b), 0,
                 "members of the usage in %s", p);
    tg_buf_append(&b, "}", 1);
    again = json_loadb(tg_buf_ptr(&b), tg_buf_size(&b), 0, NULL);
    cr_assert(json_equal(again, usage), "members of the usage in %s: %.*s",
              p, (int) tg_buf_size(&b), tg_buf_ptr(&b));
    json_decref(again);
    tg_buf_free(&b);
}


/* The top-level members both readings must agree on: error, model and
 * usage (its text, its counts and its members). */
static void
check_top(const tg_chunk_t *ck, json_t *doc, const char *p)
{
    json_t  *usage, *u2;

    check_val(&ck->error, json_object_get(doc, "error"), "error", p);
    check_val(&ck->model, json_object_get(doc, "model"), "model", p);
    usage = json_object_get(doc, "usage");
    cr_assert_eq(!!ck->usage.object, json_is_object(usage), "usage in %s",
                 p);
    if (json_is_object(usage)) {
        u2 = json_loadb(ck->usage.p, ck->usage.n, 0, NULL);
        cr_assert(json_equal(u2, usage), "usage text in %s", p);
        json_decref(u2);
        check_val(&ck->completion_tokens,
                  json_object_get(usage, "completion_tokens"),
                  "completion_tokens", p);
        check_val(&ck->prompt_tokens,
                  json_object_get(usage, "prompt_tokens"),
                  "prompt_tokens", p);
        check_val(&ck->total_tokens, json_object_get(usage, "total_tokens"),
                  "total_tokens", p);
        check_members(&ck->usage, usage, p);
    }
}


/* Compares the scanner with jansson on one document; 1 when the scanner
 * answered. */
static int
compare(const char *p, size_t n)
{
    tg_chunk_t   ck;
    json_t      *doc, *ch = NULL, *v, *delta;
    size_t       i;
    int          rc;

    rc = tg_chunk_scan(p, n, &ck);
    doc = loaded(rc, p, n);
    if (doc == NULL) {
        return 0;
    }

    check_top(&ck, doc, p);

    json_array_foreach(json_object_get(doc, "choices"), i, v) {
        json_t  *idx = json_object_get(v, "index");

        if (idx == NULL || json_integer_value(idx) == 0) {
            ch = v;
            break;
        }
    }
    cr_assert_eq(!!ck.has_choice, ch != NULL, "choice in %s", p);
    if (ch != NULL) {
        delta = json_object_get(ch, "delta");
        check_val(&ck.reasoning_content,
                  json_object_get(delta, "reasoning_content"),
                  "reasoning_content", p);
        check_val(&ck.reasoning, json_object_get(delta, "reasoning"),
                  "reasoning", p);
        check_val(&ck.content, json_object_get(delta, "content"), "content",
                  p);
        check_val(&ck.text, json_object_get(ch, "text"), "text", p);
        check_val(&ck.finish_reason, json_object_get(ch, "finish_reason"),
                  "finish_reason", p);
        check_val(&ck.logprobs, json_object_get(ch, "logprobs"), "logprobs",
                  p);
    }
    json_decref(doc);
    return 1;
}


/* Compares tg_chunk_scan_whole with what a reader of jansson's tree of a
 * whole completion takes: the first choice, its message's fields (or
 * its text when it has no message).  1 when the scanner answered. */
static int
compare_whole(const char *p, size_t n)
{
    tg_chunk_t   ck;
    json_t      *doc, *ch, *m;
    int          rc;

    rc = tg_chunk_scan_whole(p, n, &ck);
    doc = loaded(rc, p, n);
    if (doc == NULL) {
        return 0;
    }
    check_top(&ck, doc, p);
    ch = json_array_get(json_object_get(doc, "choices"), 0);
    cr_assert_eq(!!ck.has_choice, ch != NULL, "choice in %s", p);
    if (ch != NULL) {
        m = json_object_get(ch, "message");
        cr_assert_eq(!!ck.has_message, m != NULL, "message in %s", p);
        check_val(&ck.reasoning_content,
                  json_object_get(m, "reasoning_content"),
                  "reasoning_content", p);
        check_val(&ck.reasoning, json_object_get(m, "reasoning"),
                  "reasoning", p);
        check_val(&ck.content, json_object_get(m, "content"), "content", p);
        check_val(&ck.text, json_object_get(ch, "text"), "text", p);
        check_val(&ck.finish_reason, json_object_get(ch, "finish_reason"),
                  "finish_reason", p);
    }
    json_decref(doc);
    return 1;
}


Test(chunk, whole_completions_agree_with_jansson)
{
    static const char  *docs[] = {
        "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\","
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":"
        "{\"role\":\"assistant\",\"content\":null,\"reasoning_content\":"
        "\"Okay, 17\",\"tool_calls\":[]},\"logprobs\":null,"
        "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":7,"
        "\"completion_tokens\":16,\"total_tokens\":23,"
        "\"completion_tokens_details\":{\"reasoning_tokens\":16}}}",
        /* the first choice, whatever its index */
        "{\"choices\":[{\"index\":1,\"text\":\"no\"},{\"index\":0,"
        "\"text\":\"yes\"}]}",
        "{\"choices\":[{\"index\":\"x\",\"message\":null,"
        "\"text\":\"t\"}]}",
    };
    gen_t     g = { 0 };
    unsigned  i, answered = 0, total = 20000;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cr_assert_eq(compare_whole(docs[i], strlen(docs[i])), 1, "%s",
                     docs[i]);
    }
    gen_whole = 1;
    for (i = 0; i < total; i++) {
        gen_chunk(&g);
        answered += (unsigned) compare_whole(g.p, g.len);
    }
    gen_whole = 0;
    cr_assert_gt(answered, total / 2, "answered %u of %u", answered, total);
    free(g.p);
}


Test(chunk, typical_vllm_chunks)
{
    static const char  *docs[] = {
        "{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
        "\"Hi \\\"there\\\"\\n\"},\"logprobs\":null,\"finish_reason\":null}],"
        "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":6,"
        "\"completion_tokens\":1}}",
        "{\"choices\":[{\"delta\":{\"reasoning_content\":\"\\ud83d\\ude00\"},"
        "\"index\":0,\"finish_reason\":\"length\"}]}",
        "{\"choices\":[{\"index\":1,\"text\":\"no\"},{\"index\":0,"
        "\"text\":\"yes\"}]}",
        "{\"choices\":[],\"usage\":{\"completion_tokens\":16}}",
    };
    size_t  i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cr_assert_eq(compare(docs[i], strlen(docs[i])), 1, "%s", docs[i]);
    }
}


Test(chunk, refused_shapes_go_to_jansson)
{
    static const char  *docs[] = {
        "{\"model\":\"a\",\"model\":\"b\"}",            /* duplicate */
        "{\"usage\":{\"prompt_tokens\":1,\"prompt_tokens\":2}}",
        "{\"usage\":{\"total_tokens\":1,\"total_tokens\":2}}",
        "{\"choices\":[{\"index\":\"0\"}]}",            /* odd index */
        "{\"choices\":[1]}",                            /* not an object */
        "{\"mod\\u0065l\":\"x\"}",                      /* escaped key */
        "{\"x\":\"\\u0000\"}",                          /* NUL */
        "{\"x\":\"\\ud800\"}",                          /* lone surrogate */
        "{\"x\":\"\\udc00\\ud800\"}",
        "{\"x\":\"\xc0\xaf\"}",                         /* overlong */
        "{\"x\":\"\xed\xa0\x80\"}",                     /* encoded surrogate */
        "{\"x\":12345678901234567890}",                 /* too big */
        "{\"x\":1e400}",
        "{\"x\":01}", "{\"x\":1.}", "{\"x\":-}", "{\"x\":tru}",
        "{\"x\":1} x", "[1]", "", "{", "{\"x\"}", "{\"x\":1,}",
    };
    tg_chunk_t  ck;
    size_t      i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        cr_assert_neq(tg_chunk_scan(docs[i], strlen(docs[i]), &ck), 0, "%s",
                      docs[i]);
        (void) compare(docs[i], strlen(docs[i]));
    }
}


Test(chunk, nesting_past_the_limit_is_refused)
{
    char        doc[400];
    tg_chunk_t  ck;
    int         i, n = 0;

    n += sprintf(doc + n, "{\"x\":");
    for (i = 0; i < 100; i++) {
        doc[n++] = '[';
    }
    for (i = 0; i < 100; i++) {
        doc[n++] = ']';
    }
    doc[n++] = '}';
    cr_assert_neq(tg_chunk_scan(doc, (size_t) n, &ck), 0);
}


Test(chunk, generated_chunks_agree_with_jansson)
{
    gen_t     g = { 0 };
    unsigned  i, answered = 0, total = 20000;

    for (i = 0; i < total; i++) {
        gen_chunk(&g);
        answered += (unsigned) compare(g.p, g.len);
    }
    /* The generated shapes are ordinary: the scanner answers for most
     * (only the duplicate-free, error-free ones). */
    cr_assert_gt(answered, total / 2, "answered %u of %u", answered, total);
    free(g.p);
}


Test(chunk, prefixes_and_corruptions)
{
    gen_t     g = { 0 };
    char     *m;
    unsigned  i, k, j;

    for (i = 0; i < 300; i++) {
        gen_chunk(&g);
        for (k = 0; k < g.len; k++) {
            (void) compare(g.p, k);
        }
        m = malloc(g.len + 1);
        cr_assert_not_null(m);
        for (k = 0; k < 20; k++) {
            memcpy(m, g.p, g.len + 1);
            for (j = 0; j < 1 + rnd(3); j++) {
                m[rnd((unsigned) g.len)] = (char) "\"\\{}[],:0a \x80\xff\x01u"
                                                  [rnd(16)];
            }
            (void) compare(m, g.len);
        }
        free(m);
    }
    free(g.p);
}


/* Escaping is what json_dumps writes, for any UTF-8 text. */
Test(jstr, escape_matches_json_dumps)
{
    static const char  *pieces[] = {
        "a", "\"", "\\", "/", "\b", "\f", "\n", "\r", "\t", "\x01", "\x1f",
        "\x7f", "\xc3\xa9", "\xe2\x80\xa8", "\xf0\x9f\x98\x80", "<think>",
        " "
    };
    char      text[256], *dumped;
    tg_buf_t  b = { 0 };
    json_t   *s;
    size_t    n;
    unsigned  i, k, cnt;

    for (i = 0; i < 5000; i++) {
        n = 0;
        cnt = rnd(12);
        for (k = 0; k < cnt; k++) {
            const char  *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];

            memcpy(text + n, p, strlen(p));
            n += strlen(p);
        }
        if (rnd(8) == 0) {
            text[n++] = '\0';       /* json_stringn keeps a NUL */
        }
        s = json_stringn(text, n);
        cr_assert_not_null(s);
        dumped = json_dumps(s, JSON_ENCODE_ANY | JSON_COMPACT);
        b.start = b.len = 0;
        cr_assert_eq(tg_jstr_escape(&b, text, n), 0);
        cr_assert_eq(tg_buf_size(&b) + 2, strlen(dumped));
        cr_assert(memcmp(tg_buf_ptr(&b), dumped + 1, tg_buf_size(&b)) == 0,
                  "%s vs %.*s", dumped, (int) tg_buf_size(&b),
                  tg_buf_ptr(&b));
        free(dumped);
        json_decref(s);

        /* And back: unescaping what was escaped gives the text. */
        {
            tg_buf_t  u = { 0 };

            if (memchr(text, '\0', n) == NULL) {
                cr_assert_eq(tg_jstr_unescape(&u, tg_buf_ptr(&b),
                                              tg_buf_size(&b)), 0);
                cr_assert_eq(tg_buf_size(&u), n);
                cr_assert(memcmp(tg_buf_ptr(&u), text, n) == 0);
            }
            tg_buf_free(&u);
        }
    }
    tg_buf_free(&b);
}


Test(jstr, integers_match_json_dumps)
{
    static const int64_t  vals[] = { 0, 1, -1, 9, 10, 1700000000,
                                     INT64_MAX, INT64_MIN, -42 };
    tg_buf_t              b = { 0 };
    char                  ref[32];
    size_t                i;

    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        b.start = b.len = 0;
        cr_assert_eq(tg_jstr_int(&b, vals[i]), 0);
        snprintf(ref, sizeof(ref), "%lld", (long long) vals[i]);
        cr_assert_str_eq(tg_buf_cstr(&b), ref);
    }
    tg_buf_free(&b);
}


Test(jstr, unescape_refuses_what_jansson_refuses)
{
    static const char  *bad[] = { "\\u0000", "\\ud800", "\\udc00",
                                  "\\ud800\\u0041", "\\x", "\\", "\\u12" };
    tg_buf_t            b = { 0 };
    size_t              i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(tg_jstr_unescape(&b, bad[i], strlen(bad[i])), -EINVAL,
                     "%s", bad[i]);
    }
    tg_buf_free(&b);
}


/* tg_json_dumps writes what json_dumps(JSON_COMPACT) writes. */
Test(jdump, matches_json_dumps)
{
    static const double  reals[] = { 0.1, -2.5e-05, 1e20, 1e300, 3.0,
                                     -0.0, 123456.789, 5e-324, 1.5e-7 };
    gen_t     g = { 0 };
    json_t   *v, *o;
    char     *a, *b;
    unsigned  i;

    for (i = 0; i < 5000; i++) {
        g.len = 0;
        puts_(&g, "[");
        gen_value(&g, 0);
        puts_(&g, ",");
        gen_object(&g, 0);
        puts_(&g, "]");
        v = json_loadb(g.p, g.len, 0, NULL);
        if (v == NULL) {
            continue;               /* e.g. a duplicate-free check */
        }
        o = json_object();
        json_object_set_new(o, "r", json_real(reals[i % 9] * (i + 1)));
        json_array_append_new(v, o);
        a = json_dumps(v, JSON_COMPACT);
        b = tg_json_dumps(v);
        cr_assert_not_null(a);
        cr_assert_not_null(b);
        cr_assert_str_eq(b, a);
        free(a);
        free(b);
        json_decref(v);
    }
    free(g.p);
}


/* tg_json_dump_with writes what dumping a copy with one member set to a
 * string writes: in place when the member is there, last when not. */
Test(jdump, with_matches_a_copy_set)
{
    static const char  *keys[] = { "model", "a", "b\"q", "zz" };
    static const char  *vals[] = { "m-1", "caf\xc3\xa9 \"x\"\n", "" };
    gen_t               g = { 0 };
    tg_buf_t            b = { 0 };
    json_t             *v, *copy;
    char               *a;
    unsigned            i;
    const char         *k, *s;

    for (i = 0; i < 2000; i++) {
        g.len = 0;
        gen_object(&g, 0);
        v = json_loadb(g.p, g.len, 0, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            continue;
        }
        k = keys[i % 4];
        s = vals[i % 3];
        if (i % 5 == 0) {
            json_object_set_new(v, k, json_integer(i));
        }
        copy = json_copy(v);
        cr_assert_eq(json_object_set_new(copy, k, json_string(s)), 0);
        a = json_dumps(copy, JSON_COMPACT);
        b.start = b.len = 0;
        cr_assert_eq(tg_json_dump_with(&b, v, k, s), 0);
        cr_assert_str_eq(tg_buf_cstr(&b), a);
        free(a);
        json_decref(copy);
        json_decref(v);
    }
    v = json_array();
    cr_assert_eq(tg_json_dump_with(&b, v, "model", "m"), -EINVAL);
    json_decref(v);
    tg_buf_free(&b);
    free(g.p);
}


/* tg_json_dump_ints writes what dumping a copy with integer members set
 * in order writes: in place when a member is there, last (in the order
 * given) when not; a member of another type is replaced too. */
Test(jdump, ints_match_a_copy_set)
{
    static const char *const  keys[] = { "completion_tokens",
                                         "total_tokens", "a", "b\"q" };
    static const int64_t      vals[] = { 16, -7, INT64_MAX, 0 };
    gen_t                     g = { 0 };
    tg_buf_t                  b = { 0 };
    json_t                   *v, *copy;
    char                     *a;
    unsigned                  i, j, n;

    for (i = 0; i < 2000; i++) {
        g.len = 0;
        gen_object(&g, 0);
        v = json_loadb(g.p, g.len, 0, NULL);
        if (!json_is_object(v)) {
            json_decref(v);
            continue;
        }
        n = i % 5;
        if (i % 3 == 0) {
            json_object_set_new(v, keys[(i / 3) % 4], json_string("x"));
        }
        if (i % 7 == 0) {
            json_object_set_new(v, "total_tokens", json_integer(1));
        }
        copy = json_copy(v);
        for (j = 0; j < n; j++) {
            cr_assert_eq(json_object_set_new(copy, keys[j],
                                             json_integer(vals[j])), 0);
        }
        a = json_dumps(copy, JSON_COMPACT);
        b.start = b.len = 0;
        cr_assert_eq(tg_json_dump_ints(&b, v, keys, vals, n), 0);
        cr_assert_str_eq(tg_buf_cstr(&b), a);
        free(a);
        json_decref(copy);
        json_decref(v);
    }
    v = json_array();
    cr_assert_eq(tg_json_dump_ints(&b, v, keys, vals, 2), -EINVAL);
    json_decref(v);
    tg_buf_free(&b);
    free(g.p);
}
