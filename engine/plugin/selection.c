/*
 * Strategy selection: a name and key/value pairs from a request header, a
 * directive's arguments or the request's "thinkgate" JSON object.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loader.h"
#include "options.h"

static int tg__sel_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tg__sel_init(tg_plugin_selection_t *sel, char *err,
    size_t errlen);
static int tg__sel_name(tg_plugin_selection_t *sel, const char *p,
    size_t len, char *err, size_t errlen);
static int tg__sel_pair(tg_plugin_selection_t *sel, const char *key,
    size_t klen, const char *val, size_t vlen, int plain, char *err,
    size_t errlen);
static int tg__sel_item(tg_plugin_selection_t *sel, const char *p,
    size_t len, char *err, size_t errlen);
static int tg__sel_split(const char *text, size_t len, int semicolons,
    tg_plugin_selection_t *out, char *err, size_t errlen);
static int tg__sel_blank(char c);
static int tg__sel_controls(const char *text, size_t len, char *err,
    size_t errlen);
static void tg__sel_trim(const char *text, size_t *s, size_t *e);


static int
tg__sel_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return -EINVAL;
}


static int
tg__sel_blank(char c)
{
    return c == ' ' || c == '\t';
}


static int
tg__sel_init(tg_plugin_selection_t *sel, char *err, size_t errlen)
{
    memset(sel, 0, sizeof(*sel));

    sel->keys = calloc(TG_SELECTION_MAX, sizeof(char *));
    sel->values = calloc(TG_SELECTION_MAX, sizeof(char *));
    if (sel->keys == NULL || sel->values == NULL) {
        tg_plugin_selection_free(sel);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }

    return 0;
}


void
tg_plugin_selection_free(tg_plugin_selection_t *sel)
{
    size_t  i;

    for (i = 0; i < sel->n; i++) {
        free(sel->keys[i]);
        free(sel->values[i]);
    }

    free(sel->keys);
    free(sel->values);
    free(sel->name);
    memset(sel, 0, sizeof(*sel));
}


static int
tg__sel_name(tg_plugin_selection_t *sel, const char *p, size_t len,
    char *err, size_t errlen)
{
    char  name[TG_PLUGIN_NAME_MAX + 1];

    if (len == 0) {
        return tg__sel_fail(err, errlen, "no strategy name");
    }

    if (memchr(p, '=', len) != NULL) {
        return tg__sel_fail(err, errlen,
                            "expected a strategy name before '%.*s'",
                            (int) len, p);
    }

    if (len > TG_PLUGIN_NAME_MAX) {
        return tg__sel_fail(err, errlen, "invalid strategy name '%.*s...' "
                            "(longer than %d)", 32, p, TG_PLUGIN_NAME_MAX);
    }

    memcpy(name, p, len);
    name[len] = '\0';

    if (!tg_plugin_name_valid(name)) {
        return tg__sel_fail(err, errlen, "invalid strategy name '%s' "
                            "(letters a-z, digits and '_')", name);
    }

    sel->name = strdup(name);
    if (sel->name == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }

    return 0;
}


/* plain: the value came from text and must be a plain word. */
static int
tg__sel_pair(tg_plugin_selection_t *sel, const char *key, size_t klen,
    const char *val, size_t vlen, int plain, char *err, size_t errlen)
{
    char    name[TG_PLUGIN_NAME_MAX + 1];
    size_t  i;

    if (klen == 0) {
        return tg__sel_fail(err, errlen, "option without a name before "
                            "'=%.*s'", (int) vlen, val);
    }

    if (klen > TG_PLUGIN_NAME_MAX) {
        return tg__sel_fail(err, errlen, "invalid option name '%.*s...'",
                            32, key);
    }

    memcpy(name, key, klen);
    name[klen] = '\0';

    if (!tg_plugin_name_valid(name)) {
        return tg__sel_fail(err, errlen, "invalid option name '%s' "
                            "(letters a-z, digits and '_')", name);
    }

    if (memchr(val, '\0', vlen) != NULL) {
        return tg__sel_fail(err, errlen, "option '%s': NUL in value", name);
    }

    if (plain) {
        if (vlen == 0) {
            return tg__sel_fail(err, errlen, "option '%s' has no value",
                                name);
        }

        for (i = 0; i < vlen; i++) {
            if (val[i] == '"' || val[i] == '\'') {
                return tg__sel_fail(err, errlen, "option '%s': quotes are "
                                    "not supported in '%.*s'", name,
                                    (int) vlen, val);
            }

            if (tg__sel_blank(val[i]) || (unsigned char) val[i] < 0x20
                || val[i] == 0x7f)
            {
                return tg__sel_fail(err, errlen, "option '%s': blank or "
                                    "control character in value '%.*s'",
                                    name, (int) vlen, val);
            }
        }
    }

    for (i = 0; i < sel->n; i++) {
        if (strcmp(sel->keys[i], name) == 0) {
            return tg__sel_fail(err, errlen, "option '%s' given twice", name);
        }
    }

    if (sel->n == TG_SELECTION_MAX) {
        return tg__sel_fail(err, errlen, "more than %d options",
                            TG_SELECTION_MAX);
    }

    sel->keys[sel->n] = strdup(name);
    sel->values[sel->n] = strndup(val, vlen);
    if (sel->keys[sel->n] == NULL || sel->values[sel->n] == NULL) {
        free(sel->keys[sel->n]);
        free(sel->values[sel->n]);
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }

    sel->n++;

    return 0;
}


/* One "key=value" item, already trimmed. */
static int
tg__sel_item(tg_plugin_selection_t *sel, const char *p, size_t len,
    char *err, size_t errlen)
{
    const char  *eq;

    eq = memchr(p, '=', len);
    if (eq == NULL) {
        return tg__sel_fail(err, errlen, "expected key=value, got '%.*s'",
                            (int) len, p);
    }

    return tg__sel_pair(sel, p, (size_t) (eq - p), eq + 1,
                        len - (size_t) (eq - p) - 1, 1, err, errlen);
}


/*
 * semicolons: items are separated by ';' (blanks around them are
 * dropped); else by runs of blanks.  The first item is the name.
 */
/* Control characters (tab aside) are refused anywhere in the text. */
static int
tg__sel_controls(const char *text, size_t len, char *err, size_t errlen)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        if (((unsigned char) text[i] < 0x20 && text[i] != '\t')
            || text[i] == 0x7f)
        {
            return tg__sel_fail(err, errlen,
                                "control character at offset %zu", i);
        }
    }
    return 0;
}


/* Narrows text[*s .. *e) to leave out blanks at both ends. */
static void
tg__sel_trim(const char *text, size_t *s, size_t *e)
{
    while (*s < *e && tg__sel_blank(text[*s])) {
        (*s)++;
    }
    while (*e > *s && tg__sel_blank(text[*e - 1])) {
        (*e)--;
    }
}


static int
tg__sel_split(const char *text, size_t len, int semicolons,
    tg_plugin_selection_t *out, char *err, size_t errlen)
{
    int          rc;
    size_t       start, s, e, item;
    const char  *semi;

    rc = tg__sel_init(out, err, errlen);
    if (rc < 0) {
        return rc;
    }

    rc = tg__sel_controls(text, len, err, errlen);
    if (rc < 0) {
        goto failed;
    }

    semi = NULL;

    for (start = 0, item = 0; ; item++) {

        if (semicolons) {
            semi = memchr(text + start, ';', len - start);
            e = semi != NULL ? (size_t) (semi - text) : len;
            s = start;
            tg__sel_trim(text, &s, &e);

            if (e == s) {
                rc = item == 0
                     ? tg__sel_fail(err, errlen, "no strategy name")
                     : tg__sel_fail(err, errlen, "empty item after '%.*s'",
                                    (int) start, text);
                goto failed;
            }

        } else {
            s = start;
            while (s < len && tg__sel_blank(text[s])) {
                s++;
            }
            if (s == len) {
                break;
            }
            e = s;
            while (e < len && !tg__sel_blank(text[e])) {
                e++;
            }
        }

        rc = item == 0 ? tg__sel_name(out, text + s, e - s, err, errlen)
                       : tg__sel_item(out, text + s, e - s, err, errlen);
        if (rc < 0) {
            goto failed;
        }

        if (semicolons) {
            if (semi == NULL) {
                break;
            }
            start = (size_t) (semi - text) + 1;

        } else {
            start = e;
        }
    }

    if (out->name == NULL) {
        rc = tg__sel_fail(err, errlen, "no strategy name");
        goto failed;
    }

    return 0;

failed:

    tg_plugin_selection_free(out);
    return rc;
}


int
tg_plugin_selection_parse_header(const char *text, size_t len,
    tg_plugin_selection_t *out, char *err, size_t errlen)
{
    return tg__sel_split(text, len, 1, out, err, errlen);
}


int
tg_plugin_selection_parse_args(const char *text, size_t len,
    tg_plugin_selection_t *out, char *err, size_t errlen)
{
    return tg__sel_split(text, len, 0, out, err, errlen);
}


int
tg_plugin_selection_parse_argv(const char *const *argv, size_t argc,
    tg_plugin_selection_t *out, char *err, size_t errlen)
{
    int     rc;
    size_t  i;

    rc = tg__sel_init(out, err, errlen);
    if (rc < 0) {
        return rc;
    }

    if (argc == 0) {
        rc = tg__sel_fail(err, errlen, "no strategy name");
        goto failed;
    }

    rc = tg__sel_name(out, argv[0], strlen(argv[0]), err, errlen);
    if (rc < 0) {
        goto failed;
    }

    for (i = 1; i < argc; i++) {
        rc = tg__sel_item(out, argv[i], strlen(argv[i]), err, errlen);
        if (rc < 0) {
            goto failed;
        }
    }

    return 0;

failed:

    tg_plugin_selection_free(out);
    return rc;
}


int
tg_plugin_selection_parse_json(const json_t *obj,
    tg_plugin_selection_t *out, char *err, size_t errlen)
{
    int          rc, n;
    char         num[64];
    json_t      *val;
    const char  *key, *text;
    size_t       len;

    rc = tg__sel_init(out, err, errlen);
    if (rc < 0) {
        return rc;
    }

    if (!json_is_object(obj)) {
        rc = tg__sel_fail(err, errlen, "\"thinkgate\" must be an object");
        goto failed;
    }

    /* jansson's iteration macros take a non-const object; nothing here
     * modifies it. */
    json_object_foreach((json_t *) obj, key, val) {

        if (strcmp(key, "strategy") == 0) {
            if (!json_is_string(val)) {
                rc = tg__sel_fail(err, errlen,
                                  "\"strategy\" must be a string");
                goto failed;
            }

            rc = tg__sel_name(out, json_string_value(val),
                              json_string_length(val), err, errlen);
            if (rc < 0) {
                goto failed;
            }

            continue;
        }

        switch (json_typeof(val)) {
        case JSON_INTEGER:
            n = snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
                         json_integer_value(val));
            text = num;
            len = (size_t) n;
            break;
        case JSON_REAL:
            n = snprintf(num, sizeof(num), "%.17g", json_real_value(val));
            text = num;
            len = (size_t) n;
            break;
        case JSON_TRUE:
            text = "true";
            len = 4;
            break;
        case JSON_FALSE:
            text = "false";
            len = 5;
            break;
        case JSON_STRING:
            text = json_string_value(val);
            len = json_string_length(val);
            break;
        default:
            rc = tg__sel_fail(err, errlen, "option '%.64s': value must be a "
                              "number, boolean or string", key);
            goto failed;
        }

        rc = tg__sel_pair(out, key, strlen(key), text, len, 0, err, errlen);
        if (rc < 0) {
            goto failed;
        }
    }

    return 0;

failed:

    tg_plugin_selection_free(out);
    return rc;
}
