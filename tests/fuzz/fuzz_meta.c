/*
 * engine/core/meta.c against jansson: for any text, tg_meta_read succeeds
 * exactly when json_loadb(p, n, 0) gives an object (a refusal keeps
 * jansson's words), and every field it reads is what json_object_get()
 * on that object gives, whichever path (the chunk scanner, or jansson's
 * tree for what the scanner leaves) read it.
 */
#include <errno.h>

#include <jansson.h>

#include "core/meta.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char  *tg_fuzz_strs[] = {
    "kind", "method", "uri", "args", "pool", "strategy", "key",
    "key_sha256", "key_store", "key_models", "key_strategies"
};

static const char  *tg_fuzz_hdrs[] = {
    "authorization", "x-thinkgate-strategy", "x-thinkgate-session",
    "x-request-id"
};


static void
tg_fuzz_same_str(const char *got, const json_t *v)
{
    const char  *want = json_string_value(v);

    tg_fuzz_check((got == NULL) == (want == NULL));
    tg_fuzz_check(got == NULL || strcmp(got, want) == 0);
}


static void
tg_fuzz_compare(tg_meta_t *m, json_t *doc)
{
    const char  *got[11] = {
        m->kind, m->method, m->uri, m->args, m->pool, m->strategy, m->key,
        m->key_sha256, m->key_store, m->key_models, m->key_strategies
    };
    const char  *goth[4] = {
        m->h_authorization, m->h_strategy, m->h_session, m->h_request_id
    };
    json_t      *v, *h;
    size_t       i;

    for (i = 0; i < 11; i++) {
        tg_fuzz_same_str(got[i], json_object_get(doc, tg_fuzz_strs[i]));
    }
    h = json_object_get(doc, "headers");
    for (i = 0; i < 4; i++) {
        tg_fuzz_same_str(goth[i], json_object_get(h, tg_fuzz_hdrs[i]));
    }

    v = json_object_get(doc, "timeout_ms");
    tg_fuzz_check(m->timeout_ms
                  == (json_is_integer(v) ? json_integer_value(v) : -1));
    v = json_object_get(doc, "deadline_ms");
    tg_fuzz_check(m->deadline_ms
                  == (json_is_integer(v) ? json_integer_value(v) : -1));
    v = json_object_get(doc, "loc");
    tg_fuzz_check(m->loc
                  == (json_is_integer(v) ? json_integer_value(v) : -1));
    v = json_object_get(doc, "max_body");
    tg_fuzz_check(m->max_body
                  == (json_is_integer(v) ? json_integer_value(v) : -1));
    tg_fuzz_check(m->client_strategy
                  == json_is_true(json_object_get(doc, "client_strategy")));
    tg_fuzz_check(m->session == json_is_true(json_object_get(doc, "session")));
    tg_fuzz_check(m->has_effort == (json_object_get(doc, "effort") != NULL));
    tg_fuzz_check(m->has_key_limits
                  == (json_object_get(doc, "key_limits") != NULL));

    /* the tree on demand is the text's */
    tg_fuzz_check(json_equal(tg_meta_json(m), doc));
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_meta_t     m;
    json_error_t  e1, e2;
    json_t       *ref;
    int           rc;

    memset(&m, 0, sizeof(m));
    rc = tg_meta_read(&m, (const char *) data, size, &e1);
    ref = json_loadb((const char *) data, size, 0, &e2);

    if (ref == NULL) {
        /* not JSON: refused with jansson's words */
        tg_fuzz_check(rc == -EINVAL);
        tg_fuzz_check(strcmp(e1.text, e2.text) == 0);

    } else if (!json_is_object(ref)) {
        tg_fuzz_check(rc == -EPROTO);

    } else {
        tg_fuzz_check(rc == 0);
        tg_fuzz_compare(&m, ref);
    }

    json_decref(ref);
    tg_meta_free(&m);
    return 0;
}
