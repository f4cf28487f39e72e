/*
 * The registry as the admin API shows it: a walk over every loaded
 * version, and the same as JSON.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loader_int.h"
#include "options.h"

static void tg__list_info(const tg__plugin_entry_t *e,
    const tg_plugin_version_t *v, tg_plugin_info_t *info);
static json_t *tg__list_options(const tg_option_t *opts);
static json_t *tg__list_entry(const tg_plugin_registry_t *reg,
    const tg__plugin_entry_t *e);
static int tg__list_set(json_t *obj, const char *key, json_t *val);
static json_t *tg__list_time(int64_t ms);
static json_t *tg__list_str(const char *s);
static json_t *tg__list_public(const tg_plugin_registry_t *reg,
    const char *s);


static void
tg__list_info(const tg__plugin_entry_t *e, const tg_plugin_version_t *v,
    tg_plugin_info_t *info)
{
    info->name = e->name;
    info->version = v->plugin.version;
    info->description = v->plugin.description;
    info->file = v->file;
    info->generation = v->generation;
    info->refs = v->refs;
    info->loaded_at_ms = v->loaded_at_ms;
    info->current = v->current;
    info->options = v->plugin.options;
    info->last_error = e->failed ? e->last_error : NULL;
}


int
tg_plugin_list(const tg_plugin_registry_t *reg, tg_plugin_list_cb cb,
    void *data)
{
    int                         rc;
    tg_plugin_info_t            info;
    const tg__plugin_entry_t   *e;
    const tg_plugin_version_t  *v;
    const tg_queue_t           *qe, *qv;

    for (qe = tg_queue_head(&reg->entries);
         qe != tg_queue_sentinel(&reg->entries); qe = tg_queue_next(qe))
    {
        e = tg_queue_data(qe, tg__plugin_entry_t, link);
        if (e->current != NULL) {
            tg__list_info(e, e->current, &info);
            rc = cb(&info, data);
            if (rc != 0) {
                return rc;
            }
        }

        for (qv = tg_queue_head(&e->draining);
             qv != tg_queue_sentinel(&e->draining); qv = tg_queue_next(qv))
        {
            v = tg_queue_data(qv, tg_plugin_version_t, link);
            tg__list_info(e, v, &info);
            rc = cb(&info, data);
            if (rc != 0) {
                return rc;
            }
        }
    }

    return 0;
}


/* json_object_set_new that also owns val on failure (val may be NULL:
 * an earlier allocation failed). */
static int
tg__list_set(json_t *obj, const char *key, json_t *val)
{
    if (val == NULL) {
        return -ENOMEM;
    }

    return json_object_set_new(obj, key, val) == 0 ? 0 : -ENOMEM;
}


/* Plugin texts and paths need not be UTF-8; an admin list that fails on
 * one would hide every plugin. */
static json_t *
tg__list_str(const char *s)
{
    json_t  *j;

    if (s == NULL) {
        return json_null();
    }

    j = json_string(s);

    return j != NULL ? j : json_string("(not UTF-8)");
}


void
tg_plugin_public_text(const tg_plugin_registry_t *reg, const char *in,
    char *out, size_t len)
{
    size_t       dl, k = 0;
    const char  *p = in, *at;

    if (len == 0) {
        return;
    }
    dl = reg != NULL && reg->dir != NULL ? strlen(reg->dir) : 0;
    while (*p != '\0' && k + 1 < len) {
        at = dl > 0 ? strstr(p, reg->dir) : NULL;
        if (at == NULL) {
            while (*p != '\0' && k + 1 < len) {
                out[k++] = *p++;
            }
            break;
        }
        while (p < at && k + 1 < len) {
            out[k++] = *p++;
        }
        if (p != at) {
            break;                          /* out is full */
        }
        if (at[dl] == '/') {
            p = at + dl + 1;
        } else {
            /* DIR followed by something else ("DIR-old/x.so") is no
             * path under it: one byte on, and the next DIR/ after it
             * is still left out */
            out[k++] = *p++;
        }
    }
    out[k] = '\0';
}


/* A text the admin API shows: the plugin directory's path left out. */
static json_t *
tg__list_public(const tg_plugin_registry_t *reg, const char *s)
{
    char  buf[1024];

    if (s == NULL) {
        return json_null();
    }
    tg_plugin_public_text(reg, s, buf, sizeof(buf));
    return tg__list_str(buf);
}


static json_t *
tg__list_time(int64_t ms)
{
    char       buf[64];
    time_t     t;
    struct tm  tm;

    t = (time_t) (ms / 1000);
    if (gmtime_r(&t, &tm) == NULL
        || strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    {
        return json_null();
    }

    return json_string(buf);
}


static json_t *
tg__list_options(const tg_option_t *opts)
{
    int                 rc;
    size_t              i;
    json_t             *arr, *o;
    const tg_option_t  *row;

    arr = json_array();
    if (arr == NULL || opts == NULL) {
        return arr;
    }

    for (i = 0; opts[i].name != NULL; i++) {
        row = &opts[i];

        o = json_object();
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(o);
            goto failed;
        }

        rc = tg__list_set(o, "name", json_string(row->name));
        rc |= tg__list_set(o, "type",
                           json_string(tg__opt_type_name(row->type)));
        rc |= tg__list_set(o, "default", row->def != NULL
                           ? tg__list_str(row->def) : json_null());

        if (row->type == TG_OPT_INT) {
            rc |= tg__list_set(o, "min", json_integer((json_int_t) row->min));
            rc |= tg__list_set(o, "max", json_integer((json_int_t) row->max));

        } else if (row->type == TG_OPT_DOUBLE) {
            rc |= tg__list_set(o, "min", json_real(row->min));
            rc |= tg__list_set(o, "max", json_real(row->max));
        }

        if (row->type == TG_OPT_ENUM) {
            rc |= tg__list_set(o, "choices", tg__list_str(row->choices));
        }

        rc |= tg__list_set(o, "doc", tg__list_str(row->doc != NULL
                                                 ? row->doc : ""));
        if (rc != 0) {
            goto failed;
        }
    }

    return arr;

failed:

    json_decref(arr);
    return NULL;
}


static json_t *
tg__list_entry(const tg_plugin_registry_t *reg, const tg__plugin_entry_t *e)
{
    int                         rc;
    json_t                     *o, *draining, *d;
    const tg_plugin_version_t  *v, *cur;
    const tg_queue_t           *q;

    o = json_object();
    if (o == NULL) {
        return NULL;
    }

    cur = e->current;
    rc = tg__list_set(o, "name", json_string(e->name));

    if (cur != NULL) {
        rc |= tg__list_set(o, "version", tg__list_str(cur->plugin.version));
        rc |= tg__list_set(o, "description",
                           tg__list_str(cur->plugin.description));
        rc |= tg__list_set(o, "file", tg__list_public(reg, cur->file));
        rc |= tg__list_set(o, "generation",
                           json_integer((json_int_t) cur->generation));
        rc |= tg__list_set(o, "refs", json_integer((json_int_t) cur->refs));
        rc |= tg__list_set(o, "loaded_at", tg__list_time(cur->loaded_at_ms));
        rc |= tg__list_set(o, "loaded_at_ms",
                           json_integer((json_int_t) cur->loaded_at_ms));
        rc |= tg__list_set(o, "options",
                           tg__list_options(cur->plugin.options));

    } else {
        rc |= tg__list_set(o, "version", json_null());
        rc |= tg__list_set(o, "file", json_null());
        rc |= tg__list_set(o, "generation", json_null());
        rc |= tg__list_set(o, "refs", json_integer(0));
    }

    draining = json_array();
    rc |= tg__list_set(o, "draining", draining);
    if (rc != 0) {
        goto failed;
    }

    for (q = tg_queue_head(&e->draining); q != tg_queue_sentinel(&e->draining);
         q = tg_queue_next(q))
    {
        v = tg_queue_data(q, tg_plugin_version_t, link);
        d = json_object();
        if (d == NULL || json_array_append_new(draining, d) != 0) {
            json_decref(d);
            goto failed;
        }

        rc = tg__list_set(d, "version", tg__list_str(v->plugin.version));
        rc |= tg__list_set(d, "generation",
                           json_integer((json_int_t) v->generation));
        rc |= tg__list_set(d, "refs", json_integer((json_int_t) v->refs));
        rc |= tg__list_set(d, "loaded_at_ms",
                           json_integer((json_int_t) v->loaded_at_ms));
        if (rc != 0) {
            goto failed;
        }
    }

    rc = tg__list_set(o, "last_error", e->failed
                      ? tg__list_public(reg, e->last_error) : json_null());
    if (rc != 0) {
        goto failed;
    }

    return o;

failed:

    json_decref(o);
    return NULL;
}


json_t *
tg_plugin_list_json(const tg_plugin_registry_t *reg)
{
    json_t                    *arr, *o;
    const tg__plugin_entry_t  *e;
    const tg_queue_t          *q;

    arr = json_array();
    if (arr == NULL) {
        return NULL;
    }

    for (q = tg_queue_head(&reg->entries);
         q != tg_queue_sentinel(&reg->entries); q = tg_queue_next(q))
    {
        e = tg_queue_data(q, tg__plugin_entry_t, link);
        o = tg__list_entry(reg, e);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return NULL;
        }
    }

    return arr;
}


char *
tg_plugin_list_json_text(const tg_plugin_registry_t *reg)
{
    char    *text;
    json_t  *arr;

    arr = tg_plugin_list_json(reg);
    if (arr == NULL) {
        return NULL;
    }

    text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);

    return text;
}
