/*
 * Reading the configuration document's objects by table: each field is a
 * row (key, kind, required, offset), and the other keys of
 * thinkgate_backend, thinkgate_pool, thinkgate_redis and
 * thinkgate_embedder are the shared schema's (thinkgate/conf_keys.h:
 * type, bounds, default); unknown keys are refused by name so that
 * module and engine stay in step.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"

static const char  *tg__policies[] = TG_CONF_POLICIES;
static const char  *tg__devices[] = TG_CONF_DEVICES;


static int tg__valid_addr(const char *s);
static int tg__read_field(json_t *obj, const tg_config_field_t *f,
    json_t *v, char *slot, const char *where, char *err, size_t errlen);
static int tg__read_url(json_t *obj, const tg_config_field_t *f,
    const char *s, char *slot, const char *where, char *err, size_t errlen);
static int tg__read_str_null(const char *key, json_t *v, char *slot,
    const char *where, char *err, size_t errlen);
static int tg__read_int(const char *key, int64_t min, int64_t max,
    json_t *v, char *slot, const char *where, char *err, size_t errlen);
static int tg__read_key(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen);
static int tg__read_flag(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen);
static int tg__read_skills(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen);
static int tg__read_string(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen);
static int tg__read_word(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen);


int
tg_config_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}


int
tg_config_check_keys(json_t *obj, const char **allowed, const char *where,
    char *err, size_t errlen)
{
    const char  *key;
    json_t      *v;
    size_t       i;

    json_object_foreach(obj, key, v) {
        for (i = 0; allowed[i] != NULL; i++) {
            if (strcmp(allowed[i], key) == 0) {
                break;
            }
        }
        if (allowed[i] == NULL) {
            return tg_config_fail(err, errlen, "unknown key \"%s\" in %s",
                                  key, where);
        }
    }
    return 0;
}


/* -EINVAL naming the first key of obj that is neither a field nor a key
 * of the schema (keys may be NULL). */
static int
tg__check_known(json_t *obj, const tg_config_field_t *fields,
    const tg_conf_key_t *keys, const char *where, char *err, size_t errlen)
{
    const tg_config_field_t  *f;
    const tg_conf_key_t      *k;
    const char               *key;
    json_t                   *v;

    json_object_foreach(obj, key, v) {
        for (f = fields; f->key != NULL; f++) {
            if (strcmp(f->key, key) == 0) {
                break;
            }
        }
        if (f->key != NULL) {
            continue;
        }
        for (k = keys; k != NULL && k->name != NULL; k++) {
            if (strcmp(k->doc_key, key) == 0) {
                break;
            }
        }
        if (k == NULL || k->name == NULL) {
            return tg_config_fail(err, errlen, "unknown key \"%s\" in %s",
                                  key, where);
        }
    }
    return 0;
}


int
tg_config_parse_fields(json_t *obj, const tg_config_field_t *fields, void *dst,
    const char *where, char *err, size_t errlen)
{
    return tg_config_parse_object(obj, fields, NULL, NULL, dst, where, err,
                                  errlen);
}


int
tg_config_parse_object(json_t *obj, const tg_config_field_t *fields,
    const tg_conf_key_t *keys, const size_t *offsets, void *dst,
    const char *where, char *err, size_t errlen)
{
    const tg_config_field_t  *f;
    const tg_conf_key_t      *k;
    size_t                    i;
    json_t                   *v;
    int                       rc;

    if (!json_is_object(obj)) {
        return tg_config_fail(err, errlen, "%s must be an object", where);
    }

    rc = tg__check_known(obj, fields, keys, where, err, errlen);
    if (rc != 0) {
        return rc;
    }

    for (f = fields; f->key != NULL; f++) {
        v = json_object_get(obj, f->key);
        if (v == NULL) {
            if (f->required) {
                return tg_config_fail(err, errlen, "%s: \"%s\" is required",
                                      where, f->key);
            }
            continue;
        }
        rc = tg__read_field(obj, f, v, (char *) dst + f->offset, where, err,
                            errlen);
        if (rc != 0) {
            return rc;
        }
    }

    for (i = 0, k = keys; k != NULL && k->name != NULL; i++, k++) {
        rc = tg__read_key(k, json_object_get(obj, k->doc_key),
                          (char *) dst + offsets[i], where, err, errlen);
        if (rc != 0) {
            return rc;
        }
    }

    return 0;
}


/* One field's value v (present) into slot. */
static int
tg__read_field(json_t *obj, const tg_config_field_t *f, json_t *v,
    char *slot, const char *where, char *err, size_t errlen)
{
    const char  *s;

    switch (f->kind) {

    case TG_CF_STR:
    case TG_CF_URL:
        s = json_string_value(v);
        if (s == NULL || s[0] == '\0') {
            return tg_config_fail(err, errlen,
                                  "%s: \"%s\" must be a non-empty string",
                                  where, f->key);
        }
        if (f->kind == TG_CF_URL) {
            return tg__read_url(obj, f, s, slot, where, err, errlen);
        }
        *(const char **) slot = s;
        return 0;

    case TG_CF_STR_NULL:
        return tg__read_str_null(f->key, v, slot, where, err, errlen);

    case TG_CF_ADDR:
        s = json_string_value(v);
        if (s == NULL || !tg__valid_addr(s)) {
            return tg_config_fail(err, errlen, "%s: \"%s\" must be "
                                  "\"host:port\" or \"unix:/path\"", where,
                                  f->key);
        }
        *(const char **) slot = s;
        return 0;

    default: /* TG_CF_NAMES: resolved by the caller once every backend is
                known */
        return 0;
    }
}


/* A URL (http:// or https://), stored without trailing slashes. */
static int
tg__read_url(json_t *obj, const tg_config_field_t *f, const char *s,
    char *slot, const char *where, char *err, size_t errlen)
{
    json_t  *sv;
    char    *t;

    if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
        return tg_config_fail(err, errlen, "%s: \"url\" must start with "
                              "http:// or https://, not \"%s\"", where, s);
    }
    if (s[strlen(s) - 1] == '/') {
        /* Store it without the trailing slash; the string is ours (the
         * root owns it), so trim a private copy. */
        t = strdup(s);
        if (t == NULL) {
            return -ENOMEM;
        }
        while (t[0] != '\0' && t[strlen(t) - 1] == '/') {
            t[strlen(t) - 1] = '\0';
        }
        sv = json_string(t);
        free(t);
        if (sv == NULL || json_object_set_new(obj, f->key, sv)) {
            return -ENOMEM;
        }
        s = json_string_value(sv);
    }
    *(const char **) slot = s;
    return 0;
}


/* A string or null; "" reads as null. */
static int
tg__read_str_null(const char *key, json_t *v, char *slot, const char *where,
    char *err, size_t errlen)
{
    const char  *s;

    if (json_is_null(v)) {
        return 0;
    }
    s = json_string_value(v);
    if (s == NULL) {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be a string or "
                              "null", where, key);
    }
    *(const char **) slot = s[0] ? s : NULL;
    return 0;
}


/* An integer min..max (max 0: no upper bound). */
static int
tg__read_int(const char *key, int64_t min, int64_t max, json_t *v,
    char *slot, const char *where, char *err, size_t errlen)
{
    if (!json_is_integer(v) || json_integer_value(v) < min
        || (max != 0 && json_integer_value(v) > max))
    {
        if (max != 0) {
            return tg_config_fail(err, errlen, "%s: \"%s\" must be an "
                                  "integer from %lld to %lld", where, key,
                                  (long long) min, (long long) max);
        }
        return tg_config_fail(err, errlen,
                              "%s: \"%s\" must be an integer >= %lld",
                              where, key, (long long) min);
    }
    *(int64_t *) slot = json_integer_value(v);
    return 0;
}


/*
 * One key of the shared schema (thinkgate/conf_keys.h) into slot: v
 * NULL (left out) gives the key's default, or 0 for TG_KEY_DOC_ZERO.
 */
static int
tg__read_key(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen)
{
    switch (k->type) {

    case TG_KEY_NAME:
    case TG_KEY_ENV:
    case TG_KEY_PATH:
    case TG_KEY_FILE:
    case TG_KEY_TEXT:
        return tg__read_string(k, v, slot, where, err, errlen);

    case TG_KEY_FLAG:
        return tg__read_flag(k, v, slot, where, err, errlen);

    case TG_KEY_SKILLS:
        return tg__read_skills(k, v, slot, where, err, errlen);

    case TG_KEY_POLICY:
    case TG_KEY_DEVICE:
        return tg__read_word(k, v, slot, where, err, errlen);

    default: /* TG_KEY_COUNT, TG_KEY_MSEC, TG_KEY_PERCENT */
        if (v == NULL) {
            *(int64_t *) slot = (k->flags & TG_KEY_DOC_ZERO) ? 0 : k->def;
            return 0;
        }
        return tg__read_int(k->doc_key,
                            (k->flags & TG_KEY_DOC_ZERO) ? 0 : k->min, k->max,
                            v, slot, where, err, errlen);
    }
}


/* A string or null ("" reads as null; left out: the key's sdef); PATH
 * and FILE start with "/", TEXT is at most max printable bytes without
 * spaces. */
static int
tg__read_string(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen)
{
    const char  *s;
    size_t       i;
    int          rc;

    *(const char **) slot = k->sdef;
    if (v == NULL) {
        return 0;
    }
    *(const char **) slot = NULL;
    rc = tg__read_str_null(k->doc_key, v, slot, where, err, errlen);
    s = *(const char **) slot;
    if (rc != 0 || s == NULL) {
        return rc;
    }
    if ((k->type == TG_KEY_PATH || k->type == TG_KEY_FILE) && s[0] != '/') {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be a path "
                              "starting with \"/\"", where, k->doc_key);
    }
    if (k->type != TG_KEY_TEXT) {
        return 0;
    }
    for (i = 0; s[i] != '\0'; i++) {
        if ((unsigned char) s[i] <= ' ' || (unsigned char) s[i] >= 0x7f) {
            break;
        }
    }
    if (s[i] != '\0' || (int64_t) i > k->max) {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be at most "
                              "%lld printable characters without spaces",
                              where, k->doc_key, (long long) k->max);
    }
    return 0;
}


/* true or false (0 or 1 accepted) into an int. */
static int
tg__read_flag(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen)
{
    if (v == NULL) {
        *(int *) slot = (int) k->def;
    } else if (json_is_boolean(v)) {
        *(int *) slot = json_is_true(v);
    } else if (json_is_integer(v) && (json_integer_value(v) == 0
                                      || json_integer_value(v) == 1))
    {
        *(int *) slot = (int) json_integer_value(v);
    } else {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be a boolean",
                              where, k->doc_key);
    }
    return 0;
}


/* An object of numbers, or null, kept as the json_t. */
static int
tg__read_skills(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen)
{
    const char  *key;
    json_t      *sv;

    *(json_t **) slot = NULL;
    if (v == NULL || json_is_null(v)) {
        return 0;
    }
    if (!json_is_object(v)) {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be an object "
                              "of numbers", where, k->doc_key);
    }
    json_object_foreach(v, key, sv) {
        if (!json_is_number(sv)) {
            return tg_config_fail(err, errlen, "%s: skill \"%s\" must be a "
                                  "number", where, key);
        }
    }
    *(json_t **) slot = v;
    return 0;
}


/* One of the key's words (tg__policies, tg__devices), as its index. */
static int
tg__read_word(const tg_conf_key_t *k, json_t *v, char *slot,
    const char *where, char *err, size_t errlen)
{
    const char  **words, *s;
    char          names[128];
    size_t        i, len;

    if (v == NULL) {
        *(int *) slot = (int) k->def;
        return 0;
    }
    words = k->type == TG_KEY_DEVICE ? tg__devices : tg__policies;
    s = json_string_value(v);
    for (i = 0; s != NULL && words[i] != NULL; i++) {
        if (strcmp(s, words[i]) == 0) {
            *(int *) slot = (int) i;
            return 0;
        }
    }

    /* "a", "b" or "c" */
    len = 0;
    names[0] = '\0';
    for (i = 0; words[i] != NULL && len < sizeof(names); i++) {
        len += snprintf(names + len, sizeof(names) - len, "%s\"%s\"",
                        i == 0 ? "" : words[i + 1] ? ", " : " or ",
                        words[i]);
    }
    return tg_config_fail(err, errlen, "%s: \"%s\" must be %s", where,
                          k->doc_key, names);
}


/* "unix:/path", or "host:port" / "[v6]:port" with a port 1..65535. */
static int
tg__valid_addr(const char *s)
{
    const char  *colon, *end;
    char        *stop;
    long         port;
    size_t       hlen;

    if (strncmp(s, "unix:", 5) == 0) {
        return s[5] == '/';
    }

    colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0') {
        return 0;
    }
    port = strtol(colon + 1, &stop, 10);
    if (*stop != '\0' || port < 1 || port > 65535 || colon[1] == '-'
        || colon[1] == '+' || colon[1] == ' ')
    {
        return 0;
    }

    hlen = (size_t) (colon - s);
    if (s[0] == '[') {
        end = memchr(s, ']', hlen);
        return end != NULL && end == colon - 1 && hlen > 2;
    }
    return memchr(s, ':', hlen) == NULL
           && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789.-_") == hlen;
}
