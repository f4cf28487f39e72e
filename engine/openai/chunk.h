/*
 * A streamed completion chunk (chat.completion.chunk or text_completion)
 * scanned for the fields the plugin host reads, without building a JSON
 * tree: every SSE event of every trace passes here, and parsing each
 * with jansson cost more than everything else the engine does.
 *
 * The scanner validates the whole document as JSON the way jansson's
 * json_loadb (no flags) would accept it, and answers only for shapes it
 * is sure of; anything else (an "error" key, a key it reads given twice,
 * a choice without an integer index, escaped keys, numbers jansson might
 * refuse, nesting past TG_CHUNK_MAX_DEPTH, invalid JSON) is -EINVAL, and
 * the caller parses the event with jansson instead, so that behaviour
 * never depends on which path ran.
 */

#ifndef TG_OPENAI_CHUNK_H
#define TG_OPENAI_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#define TG_CHUNK_MAX_DEPTH  64

/* What a value was: absent (no such key) first, so that zeroing a
 * tg_chunk_t leaves every field absent. */
enum {
    TG_JV_ABSENT = 0,
    TG_JV_NULL,
    TG_JV_STRING,           /* p, n: the contents between the quotes */
    TG_JV_INT,              /* i: the value; p, n: the digits */
    TG_JV_OTHER             /* real, bool, object, array: p, n the text */
};

typedef struct {
    const char     *p;
    size_t          n;
    int64_t         i;
    uint8_t         type;   /* TG_JV_* */
    uint8_t         esc;    /* a string with a backslash: unescape it */
    uint8_t         object; /* TG_JV_OTHER that is an object */
} tg_jval_t;

typedef struct {
    tg_jval_t       error;              /* top-level "error" */
    tg_jval_t       model;
    tg_jval_t       usage;              /* the object's whole text */
    tg_jval_t       completion_tokens;  /* usage.completion_tokens */
    tg_jval_t       prompt_tokens;      /* usage.prompt_tokens */
    tg_jval_t       total_tokens;       /* usage.total_tokens (read only
                                           so that it is not given twice) */
    unsigned        has_choice:1;       /* a choice with index 0 (or none)
                                           was found in "choices" */
    unsigned        has_message:1;      /* tg_chunk_scan_whole: that choice
                                           has a "message" (any value) */
    /* That choice's fields (delta's for chat, message's for a whole
     * completion). */
    tg_jval_t       reasoning_content;
    tg_jval_t       reasoning;
    tg_jval_t       content;
    tg_jval_t       text;
    tg_jval_t       finish_reason;
    tg_jval_t       logprobs;
} tg_chunk_t;

/* Scans p[0..n) into c (pointers into p).  0, or -EINVAL when the event
 * is not one the scanner answers for: parse it with jansson. */
int tg_chunk_scan(const char *p, size_t n, tg_chunk_t *c);

/* The same for a whole (non-streamed) completion, as a host reading it
 * with jansson would: the fields of the first element of "choices",
 * whatever its index, from its "message" (has_message set when it has
 * one, an object or not) or its "text". */
int tg_chunk_scan_whole(const char *p, size_t n, tg_chunk_t *c);

/* The members of an object (a chunk's "usage" the scanner accepted, the
 * REQUEST meta), in order: fn gets each key (its contents; an escaped key
 * is -EINVAL) and its value (p, n: its whole text, a string's quotes
 * included; i for an integer) and returns nonzero to stop, which is then
 * returned.  0, or -EINVAL for a text that is not one object the scanner
 * answers for (space may follow it, nothing else). */
int tg_chunk_members(const char *p, size_t n,
    int (*fn)(void *arg, const tg_jval_t *key, const tg_jval_t *val),
    void *arg);

/* The same for an array's elements: fn gets each one's index and value
 * (its whole text, as above).  0, nonzero from fn, or -EINVAL for a text
 * that is not one array the scanner answers for. */
int tg_chunk_elements(const char *p, size_t n,
    int (*fn)(void *arg, size_t index, const tg_jval_t *val), void *arg);

#endif /* TG_OPENAI_CHUNK_H */
