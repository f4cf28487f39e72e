/*
 * Reading the configuration document's objects by table: each field is a
 * row (key, kind, required, offset, bounds); unknown keys are refused by
 * name so that module and engine stay in step.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"

static const char  *tg__devices[] = {
    "auto", "cpu", "cuda", NULL
};

static const char  *tg__policies[] = {
    "least_inflight", "round_robin", "prefix", "grouped", NULL
};


static int tg__valid_addr(const char *s);


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


int
tg_config_parse_fields(json_t *obj, const tg_config_field_t *fields, void *dst,
    const char *where, char *err, size_t errlen)
{
    const tg_config_field_t  *f;
    const char         *key, *s;
    json_t             *v, *sv;
    size_t              i;
    char               *slot;

    if (!json_is_object(obj)) {
        return tg_config_fail(err, errlen, "%s must be an object", where);
    }

    json_object_foreach(obj, key, v) {
        for (f = fields; f->key != NULL; f++) {
            if (strcmp(f->key, key) == 0) {
                break;
            }
        }
        if (f->key == NULL) {
            return tg_config_fail(err, errlen, "unknown key \"%s\" in %s",
                                  key, where);
        }
    }

    for (f = fields; f->key != NULL; f++) {
        v = json_object_get(obj, f->key);
        slot = (char *) dst + f->offset;

        if (v == NULL) {
            if (f->required) {
                return tg_config_fail(err, errlen, "%s: \"%s\" is required",
                                      where, f->key);
            }
            continue;
        }

        switch (f->kind) {

        case TG_CF_STR:
        case TG_CF_URL:
            s = json_string_value(v);
            if (s == NULL || s[0] == '\0') {
                return tg_config_fail(err, errlen,
                                      "%s: \"%s\" must be a non-empty string",
                                      where, f->key);
            }
            if (f->kind == TG_CF_URL && strncmp(s, "http://", 7) != 0
                && strncmp(s, "https://", 8) != 0)
            {
                return tg_config_fail(err, errlen, "%s: \"url\" must start with "
                                      "http:// or https://, not \"%s\"", where, s);
            }
            if (f->kind == TG_CF_URL && s[strlen(s) - 1] == '/') {
                /* Store it without the trailing slash; the string is
                 * ours (the root owns it), so trim a private copy. */
                char  *t = strdup(s);

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
            break;

        case TG_CF_STR_NULL:
            if (json_is_null(v)) {
                break;
            }
            s = json_string_value(v);
            if (s == NULL) {
                return tg_config_fail(err, errlen,
                                      "%s: \"%s\" must be a string or null",
                                      where, f->key);
            }
            *(const char **) slot = s[0] ? s : NULL;
            break;

        case TG_CF_INT:
            if (!json_is_integer(v) || json_integer_value(v) < f->min
                || (f->max != 0 && json_integer_value(v) > f->max))
            {
                if (f->max != 0) {
                    return tg_config_fail(err, errlen, "%s: \"%s\" must be an "
                                          "integer from %lld to %lld", where,
                                          f->key, (long long) f->min,
                                          (long long) f->max);
                }
                return tg_config_fail(err, errlen,
                                      "%s: \"%s\" must be an integer >= %lld",
                                      where, f->key, (long long) f->min);
            }
            *(int64_t *) slot = json_integer_value(v);
            break;

        case TG_CF_ADDR:
            s = json_string_value(v);
            if (s == NULL || !tg__valid_addr(s)) {
                return tg_config_fail(err, errlen, "%s: \"%s\" must be "
                                      "\"host:port\" or \"unix:/path\"", where,
                                      f->key);
            }
            *(const char **) slot = s;
            break;

        case TG_CF_BOOL:
            if (json_is_boolean(v)) {
                *(int *) slot = json_is_true(v);
            } else if (json_is_integer(v) && (json_integer_value(v) == 0
                                              || json_integer_value(v) == 1))
            {
                *(int *) slot = (int) json_integer_value(v);
            } else {
                return tg_config_fail(err, errlen, "%s: \"%s\" must be a boolean",
                                      where, f->key);
            }
            break;

        case TG_CF_SKILLS:
            if (json_is_null(v)) {
                break;
            }
            if (!json_is_object(v)) {
                return tg_config_fail(err, errlen, "%s: \"%s\" must be an object "
                                      "of numbers", where, f->key);
            }
            json_object_foreach(v, key, sv) {
                if (!json_is_number(sv)) {
                    return tg_config_fail(err, errlen, "%s: skill \"%s\" must be "
                                          "a number", where, key);
                }
            }
            *(json_t **) slot = v;
            break;

        case TG_CF_POLICY:
            s = json_string_value(v);
            for (i = 0; s != NULL && tg__policies[i] != NULL; i++) {
                if (strcmp(s, tg__policies[i]) == 0) {
                    break;
                }
            }
            if (s == NULL || tg__policies[i] == NULL) {
                return tg_config_fail(err, errlen, "%s: \"policy\" must be "
                                      "\"least_inflight\", \"round_robin\", "
                                      "\"prefix\" or \"grouped\"", where);
            }
            *(int *) slot = (int) i;
            break;

        case TG_CF_DEVICE:
            s = json_string_value(v);
            for (i = 0; s != NULL && tg__devices[i] != NULL; i++) {
                if (strcmp(s, tg__devices[i]) == 0) {
                    break;
                }
            }
            if (s == NULL || tg__devices[i] == NULL) {
                return tg_config_fail(err, errlen, "%s: \"%s\" must be \"auto\", "
                                      "\"cpu\" or \"cuda\"", where, f->key);
            }
            *(int *) slot = (int) i;
            break;

        case TG_CF_NAMES:
            /* Resolved by tg__parse_pool_members once every backend is
             * known. */
            break;
        }
    }

    return 0;
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
