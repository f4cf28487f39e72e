/*
 * JSON string contents without a JSON library: unescaping what a backend
 * sent, escaping what the engine renders.  Both work on the bytes between
 * the quotes and append to a tg_buf_t, so a caller that keeps its buffer
 * allocates nothing per call once the buffer has grown.
 */

#ifndef TG_UTIL_JSTR_H
#define TG_UTIL_JSTR_H

#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"

/* Appends the text that the string contents s[0..n) (still escaped, as
 * between the quotes of a valid JSON string) stand for: escapes decoded,
 * \uXXXX surrogate pairs joined into UTF-8.  0, -EINVAL for an escape
 * that is not JSON (a lone surrogate, \u0000 as jansson refuses it, an
 * unknown letter), or -ENOMEM.  On error b may hold a partial result. */
int tg_jstr_unescape(tg_buf_t *b, const char *s, size_t n);

/* Appends s[0..n) as JSON string contents (no quotes), byte for byte as
 * jansson's json_dumps writes them with no flags: '"' and '\\' escaped,
 * \b \f \n \r \t by name, other control bytes as \u00XX, everything else
 * (UTF-8 included; '/' too) as it is.  Bytes that are not UTF-8 are
 * passed through, where jansson would refuse the whole document.
 * 0 or -ENOMEM. */
int tg_jstr_escape(tg_buf_t *b, const char *s, size_t n);

/* Appends v in decimal.  0 or -ENOMEM. */
int tg_jstr_int(tg_buf_t *b, int64_t v);

#endif /* TG_UTIL_JSTR_H */
