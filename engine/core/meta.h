/*
 * The REQUEST meta (include/thinkgate/protocol.h), read once per request
 * without a JSON tree: the members the request path reads become C
 * strings, numbers and flags here.  A jansson tree of the same text is
 * built only when something rarer asks for one (tg_meta_json: effort
 * rules, a key's limits).
 *
 * The values are what json_object_get() on a jansson tree of the text
 * would give: a string member that is not a string is NULL, an integer
 * that is not an integer -1, a flag set only by true; a member given
 * twice counts as its last.  Keys this engine does not know are ignored,
 * so that a newer module can add some.
 */

#ifndef TG_CORE_META_H
#define TG_CORE_META_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/generation.h"

typedef struct {
    /* strings, NUL-terminated in store; NULL when absent */
    const char     *kind;
    const char     *method;
    const char     *uri;
    const char     *args;
    const char     *pool;
    const char     *strategy;
    const char     *key;
    const char     *key_sha256;
    const char     *key_store;
    const char     *key_models;
    const char     *key_strategies;
    /* members of "headers" */
    const char     *h_authorization;
    const char     *h_strategy;            /* x-thinkgate-strategy */
    const char     *h_session;             /* x-thinkgate-session */
    const char     *h_request_id;          /* x-request-id */
    /* integers; -1 when absent or not an integer */
    int64_t         timeout_ms;
    int64_t         deadline_ms;
    int64_t         max_body;
    int64_t         loc;                    /* "locations" index */
    /* true, or present at all (has_*) */
    unsigned char   client_strategy;
    unsigned char   session;
    unsigned char   has_effort;
    unsigned char   has_key_limits;

    /* the text (len bytes and a NUL), then room for the strings */
    char           *store;
    size_t          len;
    json_t         *doc;                   /* tg_meta_json's, or NULL */
    json_t         *effort_of;             /* borrowed: the location's
                                               object holding "effort",
                                               or NULL */
} tg_meta_t;

/*
 * Reads the meta text p[0..n) into m, which keeps a copy.  0; -EINVAL when
 * it is not JSON (*jerr says why, as jansson's json_loadb would), -EPROTO
 * when it is JSON but not an object, -ENOMEM.  m needs tg_meta_free()
 * whatever the result.
 */
int tg_meta_read(tg_meta_t *m, const char *p, size_t n, json_error_t *jerr);

/* The meta as a jansson object, parsed on the first call; NULL only when
 * out of memory or without a meta. */
json_t *tg_meta_json(tg_meta_t *m);

/*
 * The location's members (config/generation.h, named by the meta's
 * "loc") in m: pool, strategy, effort, client_strategy, timeout_ms,
 * deadline_ms, max_body and session are the location's, whatever the
 * meta itself said.  l's strings are borrowed (the generation outlives
 * the request).
 */
void tg_meta_location(tg_meta_t *m, const tg_location_t *l);

/* The object whose "effort" holds the location's levels (core/effort.h):
 * the location's, or the meta's own tree.  NULL only when out of
 * memory, or when there is no meta. */
json_t *tg_meta_effort(tg_meta_t *m);

void tg_meta_free(tg_meta_t *m);

#endif /* TG_CORE_META_H */
