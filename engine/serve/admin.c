/*
 * The admin interface: plugin list and reload.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "plugin/loader.h"
#include "serve/admin.h"

static void tg__admin_reload(tg_request_t *r, const char *name, size_t len);


void
tg_admin_respond(tg_request_t *r)
{
    tg_oa_error_t  err;
    const char    *uri = r->uri, *p, *end;
    char          *text;
    size_t         n;

    if (r->engine->plugins == NULL) {
        tg_oa_error_set(&err, 503, "server_error", "no_plugins", NULL,
                        "The engine runs without --plugin-dir.");
        tg_request_error(r, &err);
        return;
    }

    n = strlen(uri);
    while (n > 1 && uri[n - 1] == '/') {
        n--;
    }

    if (n >= 8 && memcmp(uri + n - 8, "/plugins", 8) == 0) {
        if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
            goto not_allowed;
        }
        text = tg_plugin_list_json_text(r->engine->plugins);
        if (text == NULL) {
            tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
            tg_request_error(r, &err);
            return;
        }
        tg_request_reply(r, 200, "application/json", text, strlen(text));
        free(text);
        return;
    }

    /* .../plugins/NAME/reload */
    if (n >= 7 && memcmp(uri + n - 7, "/reload", 7) == 0) {
        end = uri + n - 7;
        for (p = end; p > uri && p[-1] != '/'; p--) {
            /* back to the name's start */
        }
        if (p - uri >= 9 && memcmp(p - 9, "/plugins/", 9) == 0 && p < end) {
            if (strcmp(r->method, "POST") != 0) {
                goto not_allowed;
            }
            tg__admin_reload(r, p, (size_t) (end - p));
            return;
        }
    }

    tg_oa_error_set(&err, 404, "invalid_request_error", "not_found", NULL,
                    "Unknown admin URL %.200s: GET .../plugins or POST "
                    ".../plugins/NAME/reload", uri);
    tg_request_error(r, &err);
    return;

not_allowed:
    tg_oa_error_set(&err, 405, "invalid_request_error", "method_not_allowed",
                    NULL, "Method %s is not allowed on %.200s", r->method,
                    uri);
    tg_request_error(r, &err);
}


static void
tg__admin_reload(tg_request_t *r, const char *p, size_t len)
{
    tg_plugin_registry_t  *reg = r->engine->plugins;
    tg_oa_error_t          err;
    json_t                *list, *it, *doc;
    char                   name[TG_PLUGIN_NAME_MAX + 1], msg[512];
    char                   shown[512];
    size_t                 i;
    int                    rc;

    /* A longer name is no plugin's: refused whole, never cut to a
     * prefix that might name another. */
    if (len > TG_PLUGIN_NAME_MAX) {
        tg_oa_error_set(&err, 400, "invalid_request_error",
                        "invalid_plugin_name", NULL,
                        "A plugin name is at most %d characters; this one "
                        "has %zu.", TG_PLUGIN_NAME_MAX, len);
        tg_request_error(r, &err);
        return;
    }
    memcpy(name, p, len);
    name[len] = '\0';

    rc = tg_plugin_reload(reg, name, msg, sizeof(msg));
    if (rc != 0) {
        tg_log_warn("admin: reload of plugin %s refused: %s", name, msg);
        tg_plugin_public_text(reg, msg, shown, sizeof(shown));
        tg_oa_error_set(&err, rc == -ENOENT ? 404 : rc == -EINVAL ? 400
                                                                  : 422,
                        "invalid_request_error", "reload_failed", NULL,
                        "Reload of plugin \"%s\" failed (the current version, "
                        "if any, keeps serving): %s", name, shown);
        tg_request_error(r, &err);
        return;
    }
    tg_log_info("admin: plugin %s reloaded", name);

    /* The new version, as the list shows it. */
    doc = NULL;
    list = tg_plugin_list_json(reg);
    json_array_foreach(list, i, it) {
        if (strcmp(json_string_value(json_object_get(it, "name")) ?: "",
                   name) == 0)
        {
            doc = json_incref(it);
            break;
        }
    }
    json_decref(list);
    if (doc == NULL) {
        doc = json_pack("{s:s}", "name", name);
    }
    if (doc == NULL || tg_request_json(r, 200, doc) != 0) {
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg_request_error(r, &err);
    }
}
