/*
 * engine/util/jload.c against jansson: tg_json_loadb must accept exactly
 * what json_loadb(p, n, 0) accepts and build an equal value (jload.h);
 * the top-level members tg_json_loadb_members notes are the object's,
 * each once, in the text's order, each value's text reading back as the
 * member's value.
 */
#include <jansson.h>
#include <string.h>

#include "util/jload.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
static void tg_fuzz_members(const char *p, size_t n);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_error_t  e1, e2;
    json_t       *fast, *ref;

    fast = tg_json_loadb((const char *) data, size, &e1);
    ref = json_loadb((const char *) data, size, 0, &e2);

    tg_fuzz_check((fast == NULL) == (ref == NULL));
    if (fast != NULL) {
        tg_fuzz_check(json_equal(fast, ref));
        tg_fuzz_check(json_typeof(fast) == json_typeof(ref));
    } else {
        /* Every refusal is jansson's own, with its words. */
        tg_fuzz_check(strcmp(e1.text, e2.text) == 0);
        tg_fuzz_check(e1.position == e2.position);
    }

    json_decref(fast);
    json_decref(ref);
    tg_fuzz_members((const char *) data, size);
    return 0;
}


static void
tg_fuzz_members(const char *p, size_t n)
{
    tg_jmember_t   m[8];
    json_error_t   e;
    json_t        *doc, *v;
    size_t         count, i;
    char           key[256];

    doc = tg_json_loadb_members(p, n, &e, m, 8, &count);
    tg_fuzz_check(count <= 8);
    tg_fuzz_check(count == 0 || json_is_object(doc));
    /* Known members are all of the object's. */
    tg_fuzz_check(count == 0 || count == json_object_size(doc));
    for (i = 0; i < count; i++) {
        tg_fuzz_check(m[i].key + m[i].key_len <= n);
        tg_fuzz_check(m[i].val + m[i].val_len <= n);
        tg_fuzz_check(i == 0 || m[i].key > m[i - 1].val);
        if (m[i].key_len >= sizeof(key)) {
            continue;
        }
        memcpy(key, p + m[i].key, m[i].key_len);
        key[m[i].key_len] = '\0';
        v = json_loadb(p + m[i].val, m[i].val_len, JSON_DECODE_ANY, &e);
        tg_fuzz_check(v != NULL);
        tg_fuzz_check(json_equal(v, json_object_get(doc, key)));
        json_decref(v);
    }
    json_decref(doc);
}
