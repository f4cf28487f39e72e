/*
 * Compact JSON text of a jansson value, byte for byte what
 * json_dumps(v, JSON_COMPACT) writes, without its per-call costs: jansson
 * builds a hashtable of parents (for cycle detection, keyed by
 * snprintf'ed addresses) and grows its output by small reallocations on
 * every call, which made one reply's json_dumps cost more than the
 * reply's sixteen chunks.  Values here are trees the engine built; they
 * have no cycles.
 */

#ifndef TG_UTIL_JDUMP_H
#define TG_UTIL_JDUMP_H

#include <stdint.h>

#include <jansson.h>

#include "util/buf.h"

/* Appends v's compact text to b.  0, -ENOMEM, or -EINVAL for what
 * jansson cannot write either (NaN or infinite reals, NULL). */
int tg_json_dump(tg_buf_t *b, const json_t *v);

/* Appends a real as json_real(d) is written.  0, -ENOMEM, or -EINVAL
 * (NaN or infinite). */
int tg_json_dump_real(tg_buf_t *b, double d);

/* Appends the compact text of object obj with member key set to the
 * string value (appended last when obj has no such member), byte for
 * byte what dumping a copy with json_object_set_new(copy, key,
 * json_string(value)) writes.  0, -ENOMEM, or -EINVAL (obj not an
 * object). */
int tg_json_dump_with(tg_buf_t *b, const json_t *obj, const char *key,
    const char *value);

/* The same for integer members: obj's text with each keys[i] set to
 * vals[i] (in place, or appended last in the order given), byte for byte
 * what dumping a copy after json_object_set_new(copy, keys[i],
 * json_integer(vals[i])) for i = 0..n-1 writes.  The keys are distinct;
 * n is at most 32.  0, -ENOMEM, or -EINVAL (obj not an object). */
int tg_json_dump_ints(tg_buf_t *b, const json_t *obj, const char *const *keys,
    const int64_t *vals, size_t n);

/* json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) as a malloc'ed string;
 * NULL on failure.  The caller frees it. */
char *tg_json_dumps(const json_t *v);

#endif /* TG_UTIL_JDUMP_H */
