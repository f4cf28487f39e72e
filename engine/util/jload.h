/*
 * JSON text to a jansson value, the same value json_loadb(p, n, 0, err)
 * makes, without its lexer: jansson reads a byte at a time through a
 * stream of callbacks and checks UTF-8 as it goes, which made parsing a
 * request's small meta, body and usage documents most of the engine's
 * JSON cost.
 *
 * The fast path answers only for documents it is sure of: valid UTF-8,
 * keys without escapes, integers of up to 18 digits, finite reals,
 * nesting up to TG_JLOAD_MAX_DEPTH.  Anything else, valid or not, goes to
 * json_loadb itself, so that what is accepted, the value built and the
 * error text never depend on which path ran.
 */

#ifndef TG_UTIL_JLOAD_H
#define TG_UTIL_JLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define TG_JLOAD_MAX_DEPTH  64

/* json_loadb(p, n, 0, err): a new reference, or NULL with err filled. */
json_t *tg_json_loadb(const char *p, size_t n, json_error_t *err);

/* A top-level member of an object's text: the key's contents (between
 * its quotes; never escaped) and the value's whole text, as offsets into
 * the text parsed. */
typedef struct {
    uint32_t    key;
    uint32_t    key_len;
    uint32_t    val;
    uint32_t    val_len;
} tg_jmember_t;

/*
 * tg_json_loadb, also noting where the top-level object's members are:
 * *count is how many of m[0..max) were filled, in the text's order, or
 * 0 when they are not known (the fast path did not answer, the value is
 * not an object, a key is given twice, or there are more than max).
 */
json_t *tg_json_loadb_members(const char *p, size_t n, json_error_t *err,
    tg_jmember_t *m, size_t max, size_t *count);

#endif /* TG_UTIL_JLOAD_H */
