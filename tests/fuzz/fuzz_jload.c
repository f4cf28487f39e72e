/*
 * engine/util/jload.c against jansson: tg_json_loadb must accept exactly
 * what json_loadb(p, n, 0) accepts and build an equal value (jload.h).
 */
#include <jansson.h>

#include "util/jload.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

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
    return 0;
}
