/*
 * Strategy options: values checked against a plugin's option table.
 */

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

static int tg__opt_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tg__opt_enum_has(const char *choices, const char *word);
static void tg__opt_bounds(const tg_option_t *o, char *buf, size_t len);
static int tg__opt_parse_int(const tg_option_t *o, const char *text,
    tg_opt_value_t *v, char *why, size_t whylen);
static int tg__opt_parse_double(const tg_option_t *o, const char *text,
    tg_opt_value_t *v, char *why, size_t whylen);
static int tg__opt_parse_bool(const char *text, tg_opt_value_t *v,
    const char **canon, char *why, size_t whylen);
static int tg__opt_parse_pairs(const tg_plugin_t *p, size_t rows,
    const char *const *keys, const char *const *values, size_t n,
    tg_opt_value_t *v, char *err, size_t errlen);


static int
tg__opt_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return -EINVAL;
}


const char *
tg__opt_type_name(tg_opt_type_t type)
{
    switch (type) {
    case TG_OPT_INT:
        return "int";
    case TG_OPT_DOUBLE:
        return "double";
    case TG_OPT_BOOL:
        return "bool";
    case TG_OPT_STRING:
        return "string";
    case TG_OPT_ENUM:
        return "enum";
    }

    return NULL;
}


/* Whether word is one of the '|'-separated words of choices. */
static int
tg__opt_enum_has(const char *choices, const char *word)
{
    const char  *p, *bar;
    size_t       len, wlen;

    wlen = strlen(word);
    if (choices == NULL || wlen == 0) {
        return 0;
    }

    for (p = choices; ; p = bar + 1) {
        bar = strchr(p, '|');
        len = bar != NULL ? (size_t) (bar - p) : strlen(p);

        if (len == wlen && memcmp(p, word, len) == 0) {
            return 1;
        }

        if (bar == NULL) {
            return 0;
        }
    }
}


static void
tg__opt_bounds(const tg_option_t *o, char *buf, size_t len)
{
    if (o->type == TG_OPT_INT) {
        snprintf(buf, len, "%.0f..%.0f", o->min, o->max);

    } else {
        snprintf(buf, len, "%g..%g", o->min, o->max);
    }
}


/* An integer option's text: a plain decimal word within the bounds. */
static int
tg__opt_parse_int(const tg_option_t *o, const char *text, tg_opt_value_t *v,
    char *why, size_t whylen)
{
    char       *end, bounds[96];
    long long   ll;

    /* strtoll accepts leading blanks and '+': neither is a plain word,
     * so the first character must be a digit or '-'. */
    if (text[0] != '-' && (text[0] < '0' || text[0] > '9')) {
        goto not_int;
    }

    errno = 0;
    ll = strtoll(text, &end, 10);
    if (*end != '\0') {
        goto not_int;
    }

    if (errno == ERANGE || (double) ll < o->min || (double) ll > o->max) {
        tg__opt_bounds(o, bounds, sizeof(bounds));
        return tg__opt_fail(why, whylen, "'%s' is out of range %s",
                            text, bounds);
    }

    v->i = ll;
    v->d = (double) ll;
    return 0;

not_int:

    tg__opt_bounds(o, bounds, sizeof(bounds));
    return tg__opt_fail(why, whylen, "'%s' is not an integer in %s", text,
                        bounds);
}


/* A double option's text: a finite number within the bounds. */
static int
tg__opt_parse_double(const tg_option_t *o, const char *text,
    tg_opt_value_t *v, char *why, size_t whylen)
{
    char    *end, bounds[96];
    double   d;

    if (text[0] == '\0' || text[0] == ' ' || text[0] == '\t'
        || text[0] == '+')
    {
        goto not_number;
    }

    errno = 0;
    d = strtod(text, &end);
    if (*end != '\0' || !isfinite(d)) {
        goto not_number;
    }

    if (d < o->min || d > o->max) {
        tg__opt_bounds(o, bounds, sizeof(bounds));
        return tg__opt_fail(why, whylen, "'%s' is out of range %s",
                            text, bounds);
    }

    v->d = d;
    v->i = (int64_t) d;
    return 0;

not_number:

    tg__opt_bounds(o, bounds, sizeof(bounds));
    return tg__opt_fail(why, whylen, "'%s' is not a number in %s", text,
                        bounds);
}


/* A boolean option's text: on/off, true/false or 1/0.  *canon is the
 * canonical text, so that get_str agrees whichever form came in. */
static int
tg__opt_parse_bool(const char *text, tg_opt_value_t *v, const char **canon,
    char *why, size_t whylen)
{
    if (strcmp(text, "on") == 0 || strcmp(text, "true") == 0
        || strcmp(text, "1") == 0)
    {
        v->i = 1;

    } else if (strcmp(text, "off") == 0 || strcmp(text, "false") == 0
               || strcmp(text, "0") == 0)
    {
        v->i = 0;

    } else {
        return tg__opt_fail(why, whylen,
                            "'%s' is not a boolean (on/off, true/false, "
                            "1/0)", text);
    }

    v->d = (double) v->i;
    *canon = v->i ? "true" : "false";
    return 0;
}


int
tg__opt_parse_value(const tg_option_t *o, const char *text,
    tg_opt_value_t *v, char *why, size_t whylen)
{
    size_t  len;
    int     rc;

    len = strlen(text);

    switch (o->type) {

    case TG_OPT_INT:
        rc = tg__opt_parse_int(o, text, v, why, whylen);
        break;

    case TG_OPT_DOUBLE:
        rc = tg__opt_parse_double(o, text, v, why, whylen);
        break;

    case TG_OPT_BOOL:
        rc = tg__opt_parse_bool(text, v, &text, why, whylen);
        len = strlen(text);
        break;

    case TG_OPT_STRING:
        if (len > TG_OPT_STRING_MAX) {
            return tg__opt_fail(why, whylen,
                                "value of %zu bytes is longer than %d",
                                len, TG_OPT_STRING_MAX);
        }
        rc = 0;
        break;

    case TG_OPT_ENUM:
        if (!tg__opt_enum_has(o->choices, text)) {
            return tg__opt_fail(why, whylen, "'%s' is not one of %s", text,
                                o->choices != NULL ? o->choices : "(none)");
        }

        if (len > TG_OPT_STRING_MAX) {
            return tg__opt_fail(why, whylen, "value longer than %d bytes",
                                TG_OPT_STRING_MAX);
        }
        rc = 0;
        break;

    default:
        return tg__opt_fail(why, whylen, "option type %d is unknown",
                            (int) o->type);
    }

    if (rc != 0) {
        return rc;
    }

    memcpy(v->s, text, len + 1);
    v->set = 1;

    return 0;
}


/* The given key/value pairs into v (rows of p's table): 0 or a negative
 * errno with err set. */
static int
tg__opt_parse_pairs(const tg_plugin_t *p, size_t rows,
    const char *const *keys, const char *const *values, size_t n,
    tg_opt_value_t *v, char *err, size_t errlen)
{
    int                 rc;
    char                why[512];
    size_t              i, j;
    const char         *strategy = p->name != NULL ? p->name : "?";
    const tg_option_t  *o;

    for (i = 0; i < n; i++) {
        for (j = 0; j < rows; j++) {
            if (strcmp(keys[i], p->options[j].name) == 0) {
                break;
            }
        }

        if (j == rows) {
            return tg__opt_fail(err, errlen,
                                "unknown option '%s' for strategy %s",
                                keys[i], strategy);
        }

        o = &p->options[j];
        rc = tg__opt_parse_value(o, values[i], &v[j], why, sizeof(why));
        if (rc < 0) {
            tg__opt_fail(err, errlen, "option '%s' for strategy %s: %s",
                         o->name, strategy, why);
            return rc;
        }

        v[j].given = 1;
    }

    return 0;
}


int
tg_plugin_parse_options(const tg_plugin_t *p, const char *const *keys,
    const char *const *values, size_t n, tg_opt_values_t *out,
    char *err, size_t errlen)
{
    int                 rc;
    char                why[512];
    size_t              j, rows;
    const char         *strategy;
    tg_opt_value_t     *v;
    const tg_option_t  *o;

    memset(out, 0, sizeof(*out));
    strategy = p->name != NULL ? p->name : "?";

    rows = 0;
    if (p->options != NULL) {
        while (p->options[rows].name != NULL) {
            rows++;
        }
    }

    /* A plugin without options, given none (passthrough's every
     * request): nothing to hold, nothing to allocate. */
    if (rows == 0 && n == 0) {
        out->plugin = p;
        return 0;
    }

    /* calloc(0) may return NULL; one spare row keeps NULL an error only. */
    v = calloc(rows + 1, sizeof(tg_opt_value_t));
    if (v == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }

    for (j = 0; j < rows; j++) {
        v[j].opt = &p->options[j];
    }

    /* The pairs first, so that the default of a given option is never
     * parsed (and a table checked at load time cannot fail here). */
    rc = tg__opt_parse_pairs(p, rows, keys, values, n, v, err, errlen);
    if (rc < 0) {
        goto failed;
    }

    for (j = 0; j < rows; j++) {
        o = &p->options[j];
        if (v[j].given || o->def == NULL) {
            continue;
        }

        rc = tg__opt_parse_value(o, o->def, &v[j], why, sizeof(why));
        if (rc < 0) {
            tg__opt_fail(err, errlen,
                         "default of option '%s' for strategy %s: %s",
                         o->name, strategy, why);
            goto failed;
        }
    }

    out->plugin = p;
    out->v = v;
    out->n = rows;

    return 0;

failed:

    free(v);
    return rc;
}


void
tg_opt_values_free(tg_opt_values_t *vals)
{
    free(vals->v);
    memset(vals, 0, sizeof(*vals));
}


const tg_opt_value_t *
tg_opt_find(const tg_opt_values_t *vals, const char *name)
{
    size_t  i;

    if (vals == NULL || name == NULL) {
        return NULL;
    }

    for (i = 0; i < vals->n; i++) {
        if (strcmp(vals->v[i].opt->name, name) == 0) {
            return vals->v[i].set ? &vals->v[i] : NULL;
        }
    }

    return NULL;
}


int64_t
tg_opt_get_int(const tg_opt_values_t *vals, const char *name)
{
    const tg_opt_value_t  *v;

    v = tg_opt_find(vals, name);

    return v != NULL ? v->i : 0;
}


double
tg_opt_get_double(const tg_opt_values_t *vals, const char *name)
{
    const tg_opt_value_t  *v;

    v = tg_opt_find(vals, name);
    if (v == NULL || v->opt->type == TG_OPT_STRING
        || v->opt->type == TG_OPT_ENUM)
    {
        return 0.0;
    }

    return v->d;
}


int
tg_opt_get_bool(const tg_opt_values_t *vals, const char *name)
{
    const tg_opt_value_t  *v;

    v = tg_opt_find(vals, name);
    if (v == NULL || v->opt->type == TG_OPT_STRING
        || v->opt->type == TG_OPT_ENUM)
    {
        return 0;
    }

    return v->i != 0;
}


const char *
tg_opt_get_str(const tg_opt_values_t *vals, const char *name)
{
    const tg_opt_value_t  *v;

    v = tg_opt_find(vals, name);

    return v != NULL ? v->s : NULL;
}
