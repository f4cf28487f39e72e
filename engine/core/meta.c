/*
 * The REQUEST meta read once, without a JSON tree (core/meta.h).  The
 * chunk scanner (openai/chunk.h) walks the members and vouches that the
 * text is JSON jansson would accept; what it will not answer for (an
 * escaped key, deep nesting, a number jansson might refuse) goes through
 * jansson, and the fields are then taken from jansson's tree, with the
 * same rules, so that the result never depends on which path ran.
 */

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "core/meta.h"
#include "openai/chunk.h"
#include "util/buf.h"
#include "util/jload.h"
#include "util/jstr.h"

enum {
    TG__META_STR,           /* const char * */
    TG__META_INT,           /* int64_t */
    TG__META_TRUE,          /* unsigned char: 1 for true */
    TG__META_HAS,           /* unsigned char: 1 when present */
    TG__META_HEADERS        /* an object of TG__META_STR members */
};

typedef struct {
    const char  *name;
    size_t       len;
    int          type;
    size_t       off;
} tg__meta_key_t;

#define TG__META_KEY(name, type, field)                                      \
    { name, sizeof(name) - 1, type, offsetof(tg_meta_t, field) }

static const tg__meta_key_t  tg__meta_keys[] = {
    TG__META_KEY("kind", TG__META_STR, kind),
    TG__META_KEY("method", TG__META_STR, method),
    TG__META_KEY("uri", TG__META_STR, uri),
    TG__META_KEY("args", TG__META_STR, args),
    TG__META_KEY("pool", TG__META_STR, pool),
    TG__META_KEY("strategy", TG__META_STR, strategy),
    TG__META_KEY("key", TG__META_STR, key),
    TG__META_KEY("key_sha256", TG__META_STR, key_sha256),
    TG__META_KEY("key_store", TG__META_STR, key_store),
    TG__META_KEY("key_models", TG__META_STR, key_models),
    TG__META_KEY("key_strategies", TG__META_STR, key_strategies),
    TG__META_KEY("timeout_ms", TG__META_INT, timeout_ms),
    TG__META_KEY("deadline_ms", TG__META_INT, deadline_ms),
    TG__META_KEY("max_body", TG__META_INT, max_body),
    TG__META_KEY("loc", TG__META_INT, loc),
    TG__META_KEY("client_strategy", TG__META_TRUE, client_strategy),
    TG__META_KEY("session", TG__META_TRUE, session),
    TG__META_KEY("effort", TG__META_HAS, has_effort),
    TG__META_KEY("key_limits", TG__META_HAS, has_key_limits),
    TG__META_KEY("headers", TG__META_HEADERS, h_authorization),
    { NULL, 0, 0, 0 }
};

static const tg__meta_key_t  tg__meta_headers[] = {
    TG__META_KEY("authorization", TG__META_STR, h_authorization),
    TG__META_KEY("x-thinkgate-strategy", TG__META_STR, h_strategy),
    TG__META_KEY("x-thinkgate-session", TG__META_STR, h_session),
    TG__META_KEY("x-request-id", TG__META_STR, h_request_id),
    { NULL, 0, 0, 0 }
};

typedef struct {
    tg_meta_t              *m;
    const tg__meta_key_t   *keys;
    char                   *arena;      /* the strings' next byte */
} tg__meta_scan_t;

/* A member's value as either reading gives it to tg__meta_set. */
typedef struct {
    const char             *str;        /* a string's text, unescaped;
                                           NULL: not a string */
    size_t                  len;
    int64_t                 i;
    unsigned                is_int:1;
    unsigned                is_true:1;
} tg__meta_val_t;

static int tg__meta_store(tg_meta_t *m, const char *p, size_t n,
    tg__meta_scan_t *s);
static const tg__meta_key_t *tg__meta_key(const tg__meta_key_t *keys,
    const char *name, size_t len);
static int tg__meta_member(void *arg, const tg_jval_t *key,
    const tg_jval_t *val);
static void tg__meta_set(tg__meta_scan_t *s, const tg__meta_key_t *k,
    const tg__meta_val_t *v);
static void tg__meta_no_headers(tg_meta_t *m);
static int tg__meta_fallback(tg_meta_t *m, const char *p, size_t n,
    json_error_t *jerr);
static void tg__meta_tree(tg__meta_scan_t *s, json_t *o);


int
tg_meta_read(tg_meta_t *m, const char *p, size_t n, json_error_t *jerr)
{
    tg__meta_scan_t  s;
    int              rc;

    tg_meta_free(m);

    rc = tg__meta_store(m, p, n, &s);
    if (rc == 0) {
        rc = tg_chunk_members(m->store, n, tg__meta_member, &s);
    }
    if (rc == -EINVAL) {
        rc = tg__meta_fallback(m, p, n, jerr);
    }
    if (rc != 0) {
        tg_meta_free(m);
    }
    return rc;
}


/*
 * A fresh store for p[0..n): the text, then the strings, each at most as
 * long as its quoted text (escapes only shorten), so n more bytes hold
 * them all; every field absent.
 */
static int
tg__meta_store(tg_meta_t *m, const char *p, size_t n, tg__meta_scan_t *s)
{
    memset(m, 0, sizeof(*m));
    m->timeout_ms = -1;
    m->deadline_ms = -1;
    m->max_body = -1;
    m->loc = -1;

    m->store = malloc(2 * n + 2);
    if (m->store == NULL) {
        return -ENOMEM;
    }
    memcpy(m->store, p, n);
    m->store[n] = '\0';
    m->len = n;

    s->m = m;
    s->keys = tg__meta_keys;
    s->arena = m->store + n + 1;
    return 0;
}


static const tg__meta_key_t *
tg__meta_key(const tg__meta_key_t *keys, const char *name, size_t len)
{
    const tg__meta_key_t  *k;

    for (k = keys; k->name != NULL; k++) {
        if (k->len == len && memcmp(k->name, name, len) == 0) {
            return k;
        }
    }
    return NULL;
}


/* One member as the scanner read it (an escaped key never comes). */
static int
tg__meta_member(void *arg, const tg_jval_t *key, const tg_jval_t *val)
{
    tg__meta_scan_t       *s = arg;
    tg__meta_scan_t        in;
    tg__meta_val_t         v;
    const tg__meta_key_t  *k;
    tg_buf_t               b;

    k = tg__meta_key(s->keys, key->p, key->n);
    if (k == NULL) {
        return 0;
    }

    if (k->type == TG__META_HEADERS) {
        /* the last "headers" given is the one that counts */
        tg__meta_no_headers(s->m);
        if (!val->object) {
            return 0;
        }
        in = *s;
        in.keys = tg__meta_headers;
        if (tg_chunk_members(val->p, val->n, tg__meta_member, &in) != 0) {
            return -EINVAL;
        }
        s->arena = in.arena;
        return 0;
    }

    memset(&v, 0, sizeof(v));
    memset(&b, 0, sizeof(b));
    if (val->type == TG_JV_STRING) {
        /* tg_chunk_members gives the value's whole text, quotes included */
        v.str = val->p + 1;
        v.len = val->n - 2;
        if (val->esc) {
            if (tg_jstr_unescape(&b, v.str, v.len) != 0
                || memchr(tg_buf_ptr(&b), '\0', tg_buf_size(&b)) != NULL)
            {
                /* \u0000 or worse: jansson says what */
                tg_buf_free(&b);
                return -EINVAL;
            }
            v.str = tg_buf_ptr(&b);
            v.len = tg_buf_size(&b);
        }
    }
    v.is_int = val->type == TG_JV_INT;
    v.i = v.is_int ? val->i : 0;
    v.is_true = val->type == TG_JV_OTHER && val->n == 4
                && memcmp(val->p, "true", 4) == 0;

    tg__meta_set(s, k, &v);
    tg_buf_free(&b);
    return 0;
}


/* A member of a known key other than "headers", whichever reading gave
 * it: strings go to the arena. */
static void
tg__meta_set(tg__meta_scan_t *s, const tg__meta_key_t *k,
    const tg__meta_val_t *v)
{
    char         *field = (char *) s->m + k->off;
    const char  **str = (const char **) (void *) field;

    switch (k->type) {
    case TG__META_STR:
        *str = NULL;
        if (v->str != NULL) {
            memcpy(s->arena, v->str, v->len);
            s->arena[v->len] = '\0';
            *str = s->arena;
            s->arena += v->len + 1;
        }
        break;
    case TG__META_INT:
        *(int64_t *) (void *) field = v->is_int ? v->i : -1;
        break;
    case TG__META_TRUE:
        *(unsigned char *) field = v->is_true;
        break;
    default:                                    /* TG__META_HAS */
        *(unsigned char *) field = 1;
        break;
    }
}


static void
tg__meta_no_headers(tg_meta_t *m)
{
    const tg__meta_key_t  *h;

    for (h = tg__meta_headers; h->name != NULL; h++) {
        *(const char **) (void *) ((char *) m + h->off) = NULL;
    }
}


/*
 * What the scanner would not answer for, jansson decides: not JSON, or
 * not an object, is the caller's error; an object's fields are taken from
 * jansson's tree, which is kept for tg_meta_json.
 */
static int
tg__meta_fallback(tg_meta_t *m, const char *p, size_t n, json_error_t *jerr)
{
    tg__meta_scan_t  s;
    json_t          *doc;

    doc = tg_json_loadb(p, n, jerr);
    if (doc == NULL) {
        return -EINVAL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        return -EPROTO;
    }

    tg_meta_free(m);
    if (tg__meta_store(m, p, n, &s) != 0) {
        json_decref(doc);
        return -ENOMEM;
    }
    m->doc = doc;
    tg__meta_tree(&s, doc);
    return 0;
}


/* The members of a jansson object, with tg__meta_member's rules (its
 * strings are no longer than their text: the arena holds them). */
static void
tg__meta_tree(tg__meta_scan_t *s, json_t *o)
{
    tg__meta_scan_t        in;
    tg__meta_val_t         v;
    const tg__meta_key_t  *k;
    const char            *key;
    json_t                *x;

    json_object_foreach(o, key, x) {
        k = tg__meta_key(s->keys, key, strlen(key));
        if (k == NULL) {
            continue;
        }
        if (k->type == TG__META_HEADERS) {
            tg__meta_no_headers(s->m);
            in = *s;
            in.keys = tg__meta_headers;
            tg__meta_tree(&in, x);      /* nothing when not an object */
            s->arena = in.arena;
            continue;
        }
        memset(&v, 0, sizeof(v));
        if (json_is_string(x)) {
            v.str = json_string_value(x);
            v.len = json_string_length(x);
        }
        v.is_int = json_is_integer(x);
        v.i = v.is_int ? json_integer_value(x) : 0;
        v.is_true = json_is_true(x);
        tg__meta_set(s, k, &v);
    }
}


void
tg_meta_location(tg_meta_t *m, const tg_location_t *l)
{
    m->pool = l->pool;
    m->strategy = l->strategy;
    m->timeout_ms = l->timeout_ms;
    m->deadline_ms = l->deadline_ms;
    m->max_body = l->max_body;
    m->client_strategy = l->client_strategy;
    m->session = l->session;
    m->has_effort = l->has_effort;
    m->effort_of = l->has_effort ? l->obj : NULL;
}


json_t *
tg_meta_effort(tg_meta_t *m)
{
    return m->effort_of != NULL ? m->effort_of : tg_meta_json(m);
}


json_t *
tg_meta_json(tg_meta_t *m)
{
    if (m->doc == NULL && m->store != NULL) {
        m->doc = tg_json_loadb(m->store, m->len, NULL);
    }
    return m->doc;
}


void
tg_meta_free(tg_meta_t *m)
{
    free(m->store);
    m->store = NULL;
    m->len = 0;
    json_decref(m->doc);
    m->doc = NULL;
    m->effort_of = NULL;
}
