/*
 * core/meta.c: the REQUEST meta read without a JSON tree gives what
 * json_object_get() on jansson's tree of the same text gives, whichever
 * path (the scanner, or jansson and the scanner again) read it; text that
 * is not a JSON object is refused as jansson refuses it.
 */
#include <errno.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "core/meta.h"

static tg_meta_t  m;


static void
t_teardown(void)
{
    tg_meta_free(&m);
    memset(&m, 0, sizeof(m));
}

TestSuite(meta, .fini = t_teardown);


static int
t_read(const char *text)
{
    json_error_t  jerr;

    return tg_meta_read(&m, text, strlen(text), &jerr);
}


/* Every field against jansson's reading of the same text. */
static void
t_same_as_jansson(const char *text)
{
    static const char  *strs[] = { "kind", "method", "uri", "args", "pool",
                                   "strategy", "key", "key_sha256",
                                   "key_store", "key_models",
                                   "key_strategies" };
    static const char  *hdrs[] = { "authorization", "x-thinkgate-strategy",
                                   "x-thinkgate-session", "x-request-id" };
    const char         *got_s[11], *got_h[4], *want;
    json_t             *doc, *v, *h;
    json_error_t        jerr;
    size_t              i;

    doc = json_loads(text, 0, &jerr);
    cr_assert_not_null(doc, "%s", jerr.text);
    cr_assert_eq(t_read(text), 0, "%s", text);

    got_s[0] = m.kind;
    got_s[1] = m.method;
    got_s[2] = m.uri;
    got_s[3] = m.args;
    got_s[4] = m.pool;
    got_s[5] = m.strategy;
    got_s[6] = m.key;
    got_s[7] = m.key_sha256;
    got_s[8] = m.key_store;
    got_s[9] = m.key_models;
    got_s[10] = m.key_strategies;
    for (i = 0; i < 11; i++) {
        want = json_string_value(json_object_get(doc, strs[i]));
        if (want == NULL) {
            cr_assert_null(got_s[i], "%s in %s", strs[i], text);
        } else {
            cr_assert_str_eq(got_s[i], want, "%s in %s", strs[i], text);
        }
    }

    got_h[0] = m.h_authorization;
    got_h[1] = m.h_strategy;
    got_h[2] = m.h_session;
    got_h[3] = m.h_request_id;
    h = json_object_get(doc, "headers");
    for (i = 0; i < 4; i++) {
        want = json_string_value(json_object_get(h, hdrs[i]));
        if (want == NULL) {
            cr_assert_null(got_h[i], "%s in %s", hdrs[i], text);
        } else {
            cr_assert_str_eq(got_h[i], want, "%s in %s", hdrs[i], text);
        }
    }

    v = json_object_get(doc, "timeout_ms");
    cr_assert_eq(m.timeout_ms,
                 json_is_integer(v) ? json_integer_value(v) : -1, "%s", text);
    v = json_object_get(doc, "loc");
    cr_assert_eq(m.loc,
                 json_is_integer(v) ? json_integer_value(v) : -1, "%s", text);
    v = json_object_get(doc, "max_body");
    cr_assert_eq(m.max_body,
                 json_is_integer(v) ? json_integer_value(v) : -1, "%s", text);
    cr_assert_eq(m.client_strategy,
                 json_is_true(json_object_get(doc, "client_strategy")));
    cr_assert_eq(m.session, json_is_true(json_object_get(doc, "session")));
    cr_assert_eq(m.has_effort, json_object_get(doc, "effort") != NULL);
    cr_assert_eq(m.has_key_limits,
                 json_object_get(doc, "key_limits") != NULL);

    /* the tree built on demand is the text's */
    cr_assert(json_equal(tg_meta_json(&m), doc), "%s", text);
    json_decref(doc);
}


Test(meta, reads_what_the_module_writes)
{
    t_same_as_jansson(
        "{\"kind\":\"api\",\"method\":\"POST\",\"uri\":\"/v1/chat/"
        "completions\",\"args\":\"\",\"pool\":\"reasoners\",\"strategy\":"
        "\"deepprune n=8\",\"effort\":{\"low\":\"budget=1024\"},"
        "\"client_strategy\":true,\"timeout_ms\":60000,\"deadline_ms\":0,"
        "\"max_body\":1048576,\"session\":false,\"key\":\"team-a\","
        "\"key_models\":\"m1,m2\",\"key_strategies\":\"\",\"key_limits\":"
        "{\"rpm\":10},\"headers\":{\"authorization\":\"Bearer sk-1\","
        "\"x-thinkgate-session\":\"s1\",\"x-request-id\":\"r\"}}");
    cr_assert_str_eq(m.kind, "api");
    cr_assert_str_eq(m.strategy, "deepprune n=8");
    cr_assert_eq(m.timeout_ms, 60000);
    cr_assert_eq(m.deadline_ms, 0);
    cr_assert_eq(m.client_strategy, 1);
    cr_assert_eq(m.session, 0);
    cr_assert_str_eq(m.h_session, "s1");
    cr_assert_null(m.h_strategy);
}


/* What the module writes now: the location's shared members by index. */
Test(meta, a_location_by_index)
{
    tg_location_t  l;
    json_t        *obj;

    t_same_as_jansson(
        "{\"kind\":\"api\",\"method\":\"POST\",\"uri\":\"/v1/chat/"
        "completions\",\"args\":\"\",\"loc\":3,\"key\":\"team-a\","
        "\"headers\":{\"x-request-id\":\"r\"}}");
    cr_assert_eq(m.loc, 3);
    cr_assert_null(m.pool);
    cr_assert_eq(m.timeout_ms, -1);
    cr_assert_eq(m.has_effort, 0);

    obj = json_pack("{s:{s:s}}", "effort", "low", "budget=64");
    memset(&l, 0, sizeof(l));
    l.pool = "p";
    l.strategy = "ffs n=2";
    l.timeout_ms = 7000;
    l.deadline_ms = -1;
    l.max_body = 2048;
    l.client_strategy = 1;
    l.session = 1;
    l.has_effort = 1;
    l.obj = obj;
    tg_meta_location(&m, &l);
    cr_assert_str_eq(m.pool, "p");
    cr_assert_str_eq(m.strategy, "ffs n=2");
    cr_assert_eq(m.timeout_ms, 7000);
    cr_assert_eq(m.deadline_ms, -1);
    cr_assert_eq(m.max_body, 2048);
    cr_assert_eq(m.client_strategy, 1);
    cr_assert_eq(m.session, 1);
    cr_assert_eq(m.has_effort, 1);
    /* the levels are the location's, not the meta's tree */
    cr_assert_eq(tg_meta_effort(&m), obj);
    /* the request's own text is untouched */
    cr_assert_str_eq(m.key, "team-a");
    cr_assert_str_eq(m.h_request_id, "r");

    l.has_effort = 0;
    tg_meta_location(&m, &l);
    cr_assert_eq(m.has_effort, 0);
    cr_assert_eq(tg_meta_effort(&m), tg_meta_json(&m));
    json_decref(obj);
}


Test(meta, absent_members)
{
    t_same_as_jansson("{}");
    cr_assert_null(m.kind);
    cr_assert_eq(m.timeout_ms, -1);
    cr_assert_eq(m.deadline_ms, -1);
    cr_assert_eq(m.max_body, -1);
    cr_assert_eq(m.has_effort, 0);
    cr_assert_null(m.h_authorization);
    cr_assert_not_null(tg_meta_json(&m));
}


Test(meta, values_of_the_wrong_type_are_absent)
{
    t_same_as_jansson("{\"uri\":5,\"method\":null,\"timeout_ms\":1.5,"
                      "\"max_body\":\"10\",\"client_strategy\":1,"
                      "\"session\":\"true\",\"headers\":[\"x\"],"
                      "\"args\":{\"a\":\"b\"}}");
    cr_assert_null(m.uri);
    cr_assert_eq(m.timeout_ms, -1);
    cr_assert_eq(m.client_strategy, 0);
    t_same_as_jansson("{\"headers\":\"authorization\"}");
    cr_assert_null(m.h_authorization);
}


Test(meta, escapes_are_decoded)
{
    t_same_as_jansson("{\"uri\":\"/a\\\"b\\\\c\\u00e9\\ud83d\\ude00\\/\","
                      "\"headers\":{\"x-thinkgate-strategy\":"
                      "\"self_consistency\\tn=3\"}}");
    cr_assert_str_eq(m.uri, "/a\"b\\c\xc3\xa9\xf0\x9f\x98\x80/");
    cr_assert_str_eq(m.h_strategy, "self_consistency\tn=3");
}


Test(meta, the_last_of_a_member_given_twice_counts)
{
    t_same_as_jansson("{\"uri\":\"/a\",\"uri\":\"/b\",\"session\":true,"
                      "\"session\":false,\"timeout_ms\":5,"
                      "\"timeout_ms\":\"x\"}");
    cr_assert_str_eq(m.uri, "/b");

    cr_assert_eq(m.session, 0);

    /* a second "headers" replaces the first one whole */
    t_same_as_jansson("{\"headers\":{\"authorization\":\"a\","
                      "\"x-request-id\":\"r\"},\"headers\":"
                      "{\"x-request-id\":\"s\"}}");
    cr_assert_null(m.h_authorization);
    cr_assert_str_eq(m.h_request_id, "s");
}


Test(meta, what_the_scanner_leaves_to_jansson)
{
    char  deep[141], text[200];

    /* an escaped key, numbers written long, deep values: read the same
     * from jansson's tree */
    t_same_as_jansson("{\"ki\\u006ed\":\"api\",\"timeout_ms\":12,"
                      "\"x\":1.5E+3,\"headers\":{\"authoriz\\u0061tion\":"
                      "\"Bearer k\"}}");
    cr_assert_str_eq(m.kind, "api");
    cr_assert_str_eq(m.h_authorization, "Bearer k");
    t_same_as_jansson("{\"max_body\":-0,\"deadline_ms\":-7}");
    cr_assert_eq(m.deadline_ms, -7);
    /* keys that stay escaped, numbers past the scanner, deep nesting */
    t_same_as_jansson("{\"\\nuri\":\"/a\",\"timeout_ms\":"
                      "9223372036854775807,\"x\":1e300,\"uri\":\"/b\"}");
    cr_assert_eq(m.timeout_ms, INT64_MAX);
    cr_assert_str_eq(m.uri, "/b");

    memset(deep, '[', 70);
    memset(deep + 70, ']', 70);
    deep[140] = '\0';
    snprintf(text, sizeof(text), "{\"key\":%s,\"kind\":\"api\"}", deep);
    t_same_as_jansson(text);
    cr_assert_str_eq(m.kind, "api");
}


Test(meta, not_an_object_is_refused_as_jansson_refuses_it)
{
    json_error_t  jerr;
    const char   *bad_utf8 = "{\"uri\":\"\xed\xa0\x80\"}";

    cr_assert_eq(t_read("[1,2]"), -EPROTO);
    cr_assert_eq(t_read("\"api\""), -EINVAL);    /* as json_loadb */
    cr_assert_eq(t_read("{\"kind\":\"api\"} x"), -EINVAL);
    cr_assert_eq(t_read("{\"kind\":\"api\""), -EINVAL);
    cr_assert_eq(t_read(""), -EINVAL);
    cr_assert_eq(t_read("{\"uri\":\"a\\u0000b\"}"), -EINVAL);
    cr_assert_eq(t_read("{\"timeout_ms\":99999999999999999999}"), -EINVAL);

    cr_assert_eq(tg_meta_read(&m, bad_utf8, strlen(bad_utf8), &jerr),
                 -EINVAL);
    cr_assert_eq(json_error_code(&jerr), json_error_invalid_utf8);

    /* a refused text leaves nothing behind */
    cr_assert_null(m.store);
    cr_assert_null(tg_meta_json(&m));
}


Test(meta, space_around_the_object)
{
    t_same_as_jansson(" \n{ \"kind\" : \"status\" , \"uri\" : \"/s\" }\t\r\n");
    cr_assert_str_eq(m.kind, "status");
}
