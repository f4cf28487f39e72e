/*
 * util/jload.c must build exactly what json_loadb(p, n, 0, err) builds:
 * the same acceptance, the same value, the same error text.  Checked on
 * hand-picked edge cases and on many generated and mutated documents.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "util/jload.h"

static unsigned long  tg_test_seed = 12345;


static unsigned
tg_test_rand(void)
{
    tg_test_seed = tg_test_seed * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned) (tg_test_seed >> 33);
}


/* Compares both parsers on one input; returns 1 when they agree. */
static int
tg_test_agree(const char *p, size_t n)
{
    json_error_t  e1, e2;
    json_t       *a, *b;
    int           same;

    a = tg_json_loadb(p, n, &e1);
    b = json_loadb(p, n, 0, &e2);

    if (a == NULL || b == NULL) {
        same = (a == NULL && b == NULL && strcmp(e1.text, e2.text) == 0);
    } else {
        same = json_equal(a, b);
    }

    if (!same) {
        fprintf(stderr, "jload disagrees on: %.*s\n  ours: %s\n  jansson: %s\n",
                (int) (n > 200 ? 200 : n), p, a ? "value" : e1.text,
                b ? "value" : e2.text);
    }

    json_decref(a);
    json_decref(b);
    return same;
}


static const char *tg_test_cases[] = {
    "{}", "[]", "null", "true", "false", "0", "-0", "1.5", "1e3", "-1E-3",
    "123456789012345678", "1234567890123456789", "99999999999999999999",
    "1.7976931348623157e309", "0.1e-400", "01", "1.", ".5", "+1", "-",
    "\"\\u00e9\"", "\"\\ud83d\\ude00\"", "\"\\ud83d\"", "\"\\udc00\"",
    "\"\\u0000\"", "\"\xc3\xa9\"", "\"\xc3\"", "\"\xe0\x80\x80\"",
    "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\x01\"", "\"a\\qb\"",
    "{\"a\":1,\"a\":2}", "{\"k\\u0041\":1}", "{\"a\" 1}", "{\"a\":1,}",
    "[1,2,]", "[1 2]", "{\"a\":[{\"b\":null}]}", "  {\"x\" : [ 1 , 2 ] }  ",
    "{\"x\":1} trailing", "", "   ", "[[[[[[[[[[]]]]]]]]]]", "\"unterminated",
    "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"max_tokens\":16,\"temperature\":0.7,\"stream\":false}",
};


Test(jload, edge_cases)
{
    size_t  i;

    for (i = 0; i < sizeof(tg_test_cases) / sizeof(tg_test_cases[0]); i++) {
        cr_expect(tg_test_agree(tg_test_cases[i], strlen(tg_test_cases[i])),
                  "case %zu", i);
    }
}


Test(jload, deep_nesting_falls_back_alike)
{
    char    buf[400];
    size_t  i, depth;

    for (depth = 60; depth <= 130; depth += 5) {
        for (i = 0; i < depth; i++) {
            buf[i] = '[';
        }
        for (i = 0; i < depth; i++) {
            buf[depth + i] = ']';
        }
        cr_expect(tg_test_agree(buf, 2 * depth), "depth %zu", depth);
    }
}


static const char *tg_test_pieces[] = {
    "{", "}", "[", "]", ",", ":", "\"", "\\", "\"k\"", "\"v\"", "1", "-2",
    "3.25", "4e5", "123456789012345678901", "true", "false", "null", " ",
    "\\u00e9", "\\ud83d\\ude00", "\xc3\xa9", "\xe2\x82\xac", "\\n", "\\\"",
    "\"content\":", "\"role\":\"user\"", "{\"a\":[1,2,{\"b\":\"c\"}]}",
};


Test(jload, generated_and_mutated_documents)
{
    char      doc[512];
    size_t    len, i, np;
    unsigned  round, k;
    int       bad = 0;

    np = sizeof(tg_test_pieces) / sizeof(tg_test_pieces[0]);

    for (round = 0; round < 200000 && bad < 5; round++) {
        len = 0;
        k = 1 + tg_test_rand() % 24;

        for (i = 0; i < k; i++) {
            const char *piece = tg_test_pieces[tg_test_rand() % np];
            size_t      pl = strlen(piece);

            if (len + pl >= sizeof(doc)) {
                break;
            }
            memcpy(doc + len, piece, pl);
            len += pl;
        }

        /* Some rounds mutate a byte, others cut the tail. */
        if (len > 0 && tg_test_rand() % 3 == 0) {
            doc[tg_test_rand() % len] = (char) (tg_test_rand() & 0xff);
        }
        if (len > 0 && tg_test_rand() % 4 == 0) {
            len = tg_test_rand() % len;
        }

        if (!tg_test_agree(doc, len)) {
            bad++;
        }
    }

    cr_expect(bad == 0, "%d disagreements", bad);
}


Test(jload, valid_documents_take_values_alike)
{
    json_t   *v, *o;
    char     *text;
    unsigned  round;

    /* Documents jansson itself wrote: both parsers must rebuild them. */
    for (round = 0; round < 5000; round++) {
        o = json_object();
        cr_assert(o != NULL);
        json_object_set_new(o, "n", json_integer((json_int_t) tg_test_rand()
                                                 * (round % 7 ? 1 : -1)));
        json_object_set_new(o, "r", json_real((double) tg_test_rand() / 7.0));
        json_object_set_new(o, "s", json_string(round % 2 ? "caf\xc3\xa9 \"q\""
                                                          : "\xf0\x9f\x98\x80"));
        v = json_array();
        json_array_append_new(v, json_true());
        json_array_append_new(v, json_null());
        json_object_set_new(o, "a", v);

        text = json_dumps(o, round % 2 ? JSON_COMPACT : JSON_INDENT(2));
        cr_assert(text != NULL);
        cr_expect(tg_test_agree(text, strlen(text)));
        free(text);
        json_decref(o);
    }
}


/* The count of top-level members tg_json_loadb_members notes for text
 * (with at most max), after checking that the value is json_loadb's. */
static size_t
t_members(const char *text, tg_jmember_t *m, size_t max)
{
    json_error_t   e1, e2;
    json_t        *a, *b;
    size_t         n = 99;

    a = tg_json_loadb_members(text, strlen(text), &e1, m, max, &n);
    b = json_loadb(text, strlen(text), 0, &e2);
    cr_assert((a == NULL) == (b == NULL), "%s", text);
    cr_assert(a == NULL || json_equal(a, b), "%s", text);
    json_decref(a);
    json_decref(b);
    return n;
}


Test(jload, top_level_members_are_noted_where_they_are)
{
    const char    *t = " {\"a\": 1 , \"bc\":[1,{\"a\":2}],\"d\":\"x\\\"y\"} ";
    tg_jmember_t   m[4];

    cr_assert_eq(t_members(t, m, 4), 3);
    cr_assert_eq(m[0].key_len, 1);
    cr_assert_eq(memcmp(t + m[0].key, "a", 1), 0);
    cr_assert_eq(m[0].val_len, 1);
    cr_assert_eq(memcmp(t + m[0].val, "1", 1), 0);
    cr_assert_eq(memcmp(t + m[1].key, "bc", 2), 0);
    cr_assert_eq(m[1].val_len, strlen("[1,{\"a\":2}]"));
    cr_assert_eq(memcmp(t + m[1].val, "[1,{\"a\":2}]", m[1].val_len), 0);
    cr_assert_eq(m[2].val_len, strlen("\"x\\\"y\""));
    cr_assert_eq(memcmp(t + m[2].val, "\"x\\\"y\"", m[2].val_len), 0);

    /* Not known: more than max, a key given twice (jansson keeps the
     * last), not an object, what only jansson reads (an escaped key),
     * invalid JSON. */
    cr_assert_eq(t_members(t, m, 2), 0);
    cr_assert_eq(t_members("{\"a\":1,\"b\":2,\"a\":3}", m, 4), 0);
    cr_assert_eq(t_members("[{\"a\":1}]", m, 4), 0);
    cr_assert_eq(t_members("{\"\\u0061\":1}", m, 4), 0);
    cr_assert_eq(t_members("{\"a\":1,}", m, 4), 0);
    cr_assert_eq(t_members("{}", m, 4), 0);
    /* Nested keys given twice are the value's business. */
    cr_assert_eq(t_members("{\"a\":{\"b\":1,\"b\":2}}", m, 4), 1);
}
