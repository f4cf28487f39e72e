/*
 * Strategy options: checking a request's key/value pairs against a
 * plugin's option table (include/thinkgate/plugin.h, tg_option_t), and
 * parsing the three textual ways a strategy is chosen:
 *
 *   request body     "thinkgate": {"strategy": "ffs", "n": 8, "k": 2}
 *   request header   X-Thinkgate-Strategy: ffs; n=8; k=2
 *   location         thinkgate_strategy ffs n=8 k=2;
 *
 * Values are plain words: no quotes, no spaces, no separators inside.
 */

#ifndef TG_PLUGIN_OPTIONS_H
#define TG_PLUGIN_OPTIONS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "plugin/abi.h"

#define TG_OPT_STRING_MAX   256     /* bytes of a STRING value */
#define TG_OPT_TABLE_MAX    128     /* rows in one table */
#define TG_SELECTION_MAX    64      /* key/value pairs in one selection */

/* One option's value for one request. */
typedef struct {
    const tg_option_t  *opt;        /* the table row */
    int                 set;        /* has a value: given or default */
    int                 given;      /* given by the request */
    int64_t             i;          /* INT; BOOL as 0/1 */
    double              d;          /* DOUBLE; INT converted */
    char                s[TG_OPT_STRING_MAX + 1];  /* the text, canonical
                                       for BOOL ("true"/"false") */
} tg_opt_value_t;

/* Every option of one plugin, in table order. */
typedef struct {
    const tg_plugin_t  *plugin;
    tg_opt_value_t     *v;
    size_t              n;
} tg_opt_values_t;

/*
 * Checks n key/value pairs against p's option table and fills out with
 * one value per row: the pair's, else the row's default, else unset.  A
 * key given twice takes its last value, so callers may concatenate
 * sources in rising precedence.  Errors (-EINVAL, with err naming the
 * option, the value and the bounds): an unknown key ("unknown option 'nn'
 * for strategy ffs"), a value of the wrong type or out of bounds, a
 * STRING longer than TG_OPT_STRING_MAX.  -ENOMEM.  On error out is left
 * empty (safe to free).  Free with tg_opt_values_free().
 */
int tg_plugin_parse_options(const tg_plugin_t *p, const char *const *keys,
    const char *const *values, size_t n, tg_opt_values_t *out,
    char *err, size_t errlen);

void tg_opt_values_free(tg_opt_values_t *vals);

/* The value of name; 0, 0.0, 0 or NULL when the plugin has no such
 * option or it has no value.  get_int of a DOUBLE truncates; get_double
 * of an INT converts; get_str works for every type (the text). */
const tg_opt_value_t *tg_opt_find(const tg_opt_values_t *vals,
    const char *name);
int64_t tg_opt_get_int(const tg_opt_values_t *vals, const char *name);
double tg_opt_get_double(const tg_opt_values_t *vals, const char *name);
int tg_opt_get_bool(const tg_opt_values_t *vals, const char *name);
const char *tg_opt_get_str(const tg_opt_values_t *vals, const char *name);

/* Internal to engine/plugin: parses text as a value of o into v (o's
 * bounds included).  why gets "'x' is not an integer" and the like. */
int tg__opt_parse_value(const tg_option_t *o, const char *text,
    tg_opt_value_t *v, char *why, size_t whylen);
const char *tg__opt_type_name(tg_opt_type_t type);


/* ---- selection ------------------------------------------------------ */

/* A strategy name and its key/value pairs, as text. */
typedef struct {
    char       *name;       /* NULL when a JSON object named none */
    char      **keys;
    char      **values;
    size_t      n;
} tg_plugin_selection_t;

/*
 * "ffs; n=8; k=2": a strategy name, then key=value items, separated by
 * ';' with optional blanks.  Errors (-EINVAL, err says where): no name,
 * a bad name or key ([a-z0-9_]{1,64}), an item without '=', an empty
 * value, quotes, blanks inside a value, an empty item, a duplicate key,
 * more than TG_SELECTION_MAX items.  -ENOMEM.  out is left empty on error.
 */
int tg_plugin_selection_parse_header(const char *text, size_t len,
    tg_plugin_selection_t *out, char *err, size_t errlen);

/* "ffs n=8 k=2": the same, blank-separated (a directive's arguments
 * joined by spaces). */
int tg_plugin_selection_parse_args(const char *text, size_t len,
    tg_plugin_selection_t *out, char *err, size_t errlen);

/* The same from already split words (nginx directive arguments). */
int tg_plugin_selection_parse_argv(const char *const *argv, size_t argc,
    tg_plugin_selection_t *out, char *err, size_t errlen);

/*
 * {"strategy": "ffs", "n": 8, "early_stop": "exact", "trace": true}:
 * "strategy" (optional, a string) is the name; every other member is a
 * pair, its value an integer, real, boolean or string (written as text);
 * null, arrays and objects are refused.  obj must be an object.
 */
int tg_plugin_selection_parse_json(const json_t *obj,
    tg_plugin_selection_t *out, char *err, size_t errlen);

void tg_plugin_selection_free(tg_plugin_selection_t *sel);

#endif /* TG_PLUGIN_OPTIONS_H */
