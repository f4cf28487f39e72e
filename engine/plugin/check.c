/*
 * Checking a plugin's descriptor before anything in it is trusted: the
 * ABI version first (read alone), then the signature, the size, the name,
 * the callbacks and the option table.
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "loader_int.h"
#include "options.h"

/* Every ABI-2 descriptor has the fields up to destroy; those appended
 * after it read as zero when the plugin's size stops before them. */
#define TG__PLUGIN_MIN_SIZE \
    (offsetof(tg_plugin_t, destroy) + sizeof(((tg_plugin_t *) 0)->destroy))

static int tg__check_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int tg__check_options(const tg_option_t *opts, char *why,
    size_t whylen);

/* No-ops for the callbacks a plugin leaves NULL, so that the engine can
 * call every one without checking. */
static void tg__nop_delta(tg_plugin_req_t *req, tg_plugin_trace_t *t,
    const tg_delta_t *d);
static void tg__nop_trace_end(tg_plugin_req_t *req, tg_plugin_trace_t *t,
    const tg_trace_end_t *e);
static void tg__nop_aux(tg_plugin_req_t *req, tg_plugin_aux_t *a,
    const tg_aux_result_t *r);
static void tg__nop_timer(tg_plugin_req_t *req, tg_plugin_timer_t *tm,
    void *data);
static void tg__nop_req(tg_plugin_req_t *req);
static int tg__check_abi(const void *sym, size_t sym_size, const char *file,
    uint32_t *size, char *err, size_t errlen);
static void tg__check_defaults(tg_plugin_t *copy);


static int
tg__check_fail(char *err, size_t errlen, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return -EPROTO;
}


static void
tg__nop_delta(tg_plugin_req_t *req, tg_plugin_trace_t *t, const tg_delta_t *d)
{
    (void) req;
    (void) t;
    (void) d;
}


static void
tg__nop_trace_end(tg_plugin_req_t *req, tg_plugin_trace_t *t,
    const tg_trace_end_t *e)
{
    (void) req;
    (void) t;
    (void) e;
}


static void
tg__nop_aux(tg_plugin_req_t *req, tg_plugin_aux_t *a, const tg_aux_result_t *r)
{
    (void) req;
    (void) a;
    (void) r;
}


static void
tg__nop_timer(tg_plugin_req_t *req, tg_plugin_timer_t *tm, void *data)
{
    (void) req;
    (void) tm;
    (void) data;
}


static void
tg__nop_req(tg_plugin_req_t *req)
{
    (void) req;
}


/* What the descriptor at sym (sym_size bytes, 0: unknown) must be before
 * it is copied: this ABI, this build's signature and a size the engine
 * can read.  *size: the size it declares. */
static int
tg__check_abi(const void *sym, size_t sym_size, const char *file,
    uint32_t *size, char *err, size_t errlen)
{
    uint32_t            abi;
    const tg_plugin_t  *p;

    *size = 0;

    /* The version is all an unknown ABI promises to have; read it (and
     * nothing else) first. */
    if (sym_size != 0 && sym_size < sizeof(uint32_t)) {
        return tg__check_fail(err, errlen, "plugin %s: symbol %s is %zu "
                              "bytes, not a descriptor", file,
                              TG_PLUGIN_SYMBOL, sym_size);
    }

    memcpy(&abi, sym, sizeof(abi));
    if (abi != TG_PLUGIN_ABI_VERSION) {
        return tg__check_fail(err, errlen, "plugin %s: ABI version %u, "
                              "engine speaks %u", file, abi,
                              TG_PLUGIN_ABI_VERSION);
    }

    if (sym_size != 0 && sym_size < TG__PLUGIN_MIN_SIZE) {
        return tg__check_fail(err, errlen, "plugin %s: descriptor is %zu "
                              "bytes, engine reads %zu", file, sym_size,
                              TG__PLUGIN_MIN_SIZE);
    }

    p = sym;

    if (p->signature == NULL || strcmp(p->signature, TG_PLUGIN_SIGNATURE) != 0)
    {
        return tg__check_fail(err, errlen, "plugin %s: build signature "
                              "'%.64s', engine expects '%s'", file,
                              p->signature != NULL ? p->signature : "(null)",
                              TG_PLUGIN_SIGNATURE);
    }

    *size = p->size;
    if (*size < TG__PLUGIN_MIN_SIZE
        || (sym_size != 0 && *size > sym_size))
    {
        return tg__check_fail(err, errlen, "plugin %s: descriptor size %u, "
                              "engine reads %zu", file, *size,
                              TG__PLUGIN_MIN_SIZE);
    }

    return 0;
}


/* The copy's optional fields: empty strings and no-op callbacks where the
 * plugin gives none. */
static void
tg__check_defaults(tg_plugin_t *copy)
{
    if (copy->version == NULL) {
        copy->version = "";
    }

    if (copy->description == NULL) {
        copy->description = "";
    }

    copy->on_delta = copy->on_delta ? copy->on_delta : tg__nop_delta;
    copy->on_trace_end = copy->on_trace_end ? copy->on_trace_end
                                            : tg__nop_trace_end;
    copy->on_aux_result = copy->on_aux_result ? copy->on_aux_result
                                              : tg__nop_aux;
    copy->on_timer = copy->on_timer ? copy->on_timer : tg__nop_timer;
    copy->on_cancel = copy->on_cancel ? copy->on_cancel : tg__nop_req;
    copy->destroy = copy->destroy ? copy->destroy : tg__nop_req;
}


int
tg__plugin_check(const void *sym, size_t sym_size, const char *file,
    const char *name, tg_plugin_t *copy, char *err, size_t errlen)
{
    int       rc;
    char      why[768];
    uint32_t  size;

    rc = tg__check_abi(sym, sym_size, file, &size, err, errlen);
    if (rc < 0) {
        return rc;
    }

    /* A newer plugin's extra fields are ignored; the fields an older one
     * ends before read as zero. */
    memset(copy, 0, sizeof(*copy));
    memcpy(copy, sym, size < sizeof(*copy) ? size : sizeof(*copy));

    if (copy->name == NULL || strcmp(copy->name, name) != 0) {
        return tg__check_fail(err, errlen, "plugin %s: name '%.64s' does "
                              "not match the file name '%s'", file,
                              copy->name != NULL ? copy->name : "(null)",
                              name);
    }

    if (copy->start == NULL) {
        return tg__check_fail(err, errlen, "plugin %s: no start() callback",
                              file);
    }

    if (tg__check_options(copy->options, why, sizeof(why)) < 0) {
        return tg__check_fail(err, errlen, "plugin %s: option table: %s",
                              file, why);
    }

    tg__check_defaults(copy);

    return 0;
}


static int
tg__check_options(const tg_option_t *opts, char *why, size_t whylen)
{
    size_t              i, j;
    char                msg[384];
    const tg_option_t  *o;
    tg_opt_value_t      v;

    if (opts == NULL) {
        return 0;
    }

    for (i = 0; opts[i].name != NULL; i++) {
        o = &opts[i];

        if (i == TG_OPT_TABLE_MAX) {
            snprintf(why, whylen, "more than %d rows (no NULL-name row at "
                     "the end?)", TG_OPT_TABLE_MAX);
            return -1;
        }

        if (!tg_plugin_name_valid(o->name)) {
            snprintf(why, whylen, "row %zu: name '%.64s' is not "
                     "[a-z0-9_]{1,64}", i, o->name);
            return -1;
        }

        for (j = 0; j < i; j++) {
            if (strcmp(opts[j].name, o->name) == 0) {
                snprintf(why, whylen, "option '%s' appears twice", o->name);
                return -1;
            }
        }

        if (tg__opt_type_name(o->type) == NULL) {
            snprintf(why, whylen, "option '%s': type %d is unknown",
                     o->name, (int) o->type);
            return -1;
        }

        if ((o->type == TG_OPT_INT || o->type == TG_OPT_DOUBLE)
            && !(o->min <= o->max))
        {
            snprintf(why, whylen, "option '%s': min %g is above max %g",
                     o->name, o->min, o->max);
            return -1;
        }

        if (o->type == TG_OPT_ENUM
            && (o->choices == NULL || o->choices[0] == '\0'
                || strstr(o->choices, "||") != NULL
                || o->choices[0] == '|'
                || o->choices[strlen(o->choices) - 1] == '|'))
        {
            snprintf(why, whylen, "option '%s': enum without choices or "
                     "with an empty one", o->name);
            return -1;
        }

        if (o->def == NULL) {
            continue;
        }

        memset(&v, 0, sizeof(v));
        if (tg__opt_parse_value(o, o->def, &v, msg, sizeof(msg)) < 0) {
            snprintf(why, whylen, "option '%s': default %s", o->name, msg);
            return -1;
        }
    }

    return 0;
}
