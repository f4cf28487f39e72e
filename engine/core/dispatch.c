/*
 * Request dispatch: meta, endpoint routing, /models, status, admin,
 * strategy start.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "core/dispatch.h"
#include "core/prep.h"
#include "core/strategy.h"
#include "log.h"
#include "status.h"
#include "transport/conn.h"

static int tg__dispatch_meta(tg_request_t *r, tg_oa_error_t *err);
static void tg__dispatch_api(tg_request_t *r);
static void tg__dispatch_models(tg_request_t *r);


void
tg_dispatch(tg_request_t *r)
{
    tg_oa_error_t  err;

    if (tg__dispatch_meta(r, &err) != 0) {
        tg_log_error("request %llu: %s", (unsigned long long) r->id,
                     err.message);
        tg_request_error(r, &err);
        return;
    }

    switch (r->kind) {

    case TG_KIND_STATUS:
        tg_status_respond(r);
        return;

    case TG_KIND_ADMIN:
        tg_admin_respond(r);
        return;

    default:
        tg__dispatch_api(r);
        return;
    }
}


/* The meta document is written by the module (protocol.h); keys this
 * engine does not know are ignored so that a newer module can add some. */
static int
tg__dispatch_meta(tg_request_t *r, tg_oa_error_t *err)
{
    const char  *kind;
    json_t      *v;

    kind = json_string_value(json_object_get(r->meta, "kind"));
    if (kind == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL,
                        "REQUEST meta has no \"kind\"");
        return -EPROTO;
    }

    if (strcmp(kind, "api") == 0) {
        r->kind = TG_KIND_API;
    } else if (strcmp(kind, "status") == 0) {
        r->kind = TG_KIND_STATUS;
    } else if (strcmp(kind, "admin") == 0) {
        r->kind = TG_KIND_ADMIN;
    } else {
        tg_oa_error_set(err, 500, NULL, NULL, NULL,
                        "REQUEST meta has an unknown kind \"%.64s\"", kind);
        return -EPROTO;
    }

    r->method = json_string_value(json_object_get(r->meta, "method"));
    r->uri = json_string_value(json_object_get(r->meta, "uri"));
    r->args = json_string_value(json_object_get(r->meta, "args"));
    r->pool_name = json_string_value(json_object_get(r->meta, "pool"));

    v = json_object_get(r->meta, "timeout_ms");
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        r->timeout_ms = json_integer_value(v);
    }
    v = json_object_get(r->meta, "max_body");
    r->max_body = json_is_integer(v) && json_integer_value(v) > 0
                  && json_integer_value(v) < TG_REQUEST_MAX_BODY
                  ? (uint64_t) json_integer_value(v) : TG_REQUEST_MAX_BODY;

    if (r->method == NULL) {
        r->method = "GET";
    }
    if (r->uri == NULL) {
        r->uri = "/";
    }
    if (r->args == NULL) {
        r->args = "";
    }

    return 0;
}


static void
tg__dispatch_api(tg_request_t *r)
{
    tg_engine_t          *e = r->engine;
    tg_oa_error_t         err;
    tg_pool_t            *pool;
    int                   endpoint;

    e->requests_total++;
    e->requests_in_flight++;
    r->counted = 1;

    endpoint = tg_oa_endpoint(r->uri, strlen(r->uri));

    if (endpoint == TG_OA_UNKNOWN) {
        tg_oa_error_set(&err, 404, "invalid_request_error",
                        "unknown_url", NULL, "Unknown request URL: %s %.200s",
                        r->method, r->uri);
        goto failed;
    }

    if (endpoint == TG_OA_MODELS) {
        if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "HEAD") != 0) {
            goto not_allowed;
        }
        tg__dispatch_models(r);
        return;
    }

    if (strcmp(r->method, "POST") != 0) {
        goto not_allowed;
    }

    if (tg_oa_parse(&r->oa, endpoint, tg_buf_ptr(&r->body),
                    tg_buf_size(&r->body), &err) != 0)
    {
        goto failed;
    }

    /* The body is parsed; its text is not needed any more. */
    r->body_len = tg_buf_size(&r->body);
    tg_buf_free(&r->body);

    if (r->pool_name == NULL) {
        tg_oa_error_set(&err, 500, "server_error", "no_pool", NULL,
                        "This location names no pool (thinkgate_pass).");
        goto failed;
    }

    pool = tg_generation_pool(r->gen, r->pool_name);
    if (pool == NULL) {
        tg_oa_error_set(&err, 500, "server_error", "no_pool", NULL,
                        "The engine's configuration has no pool \"%.64s\".",
                        r->pool_name);
        goto failed;
    }

    /* The plugin host selects and runs the strategy (passthrough unless
     * the request or the location names another). */
    r->strategy = &tg_strategy_host;
    if (tg_prep_run(r, &err) != 0) {
        goto failed;
    }

    return;

not_allowed:
    tg_oa_error_set(&err, 405, "invalid_request_error", "method_not_allowed",
                    NULL, "Method %s is not allowed on %.200s", r->method,
                    r->uri);

failed:
    tg_request_error(r, &err);
}


/* GET /models: the models this location's pool serves (every backend's
 * when the location names no pool), in OpenAI's list shape.  A backend
 * without a configured model is listed by its name. */
static void
tg__dispatch_models(tg_request_t *r)
{
    tg_generation_t  *g = r->gen;
    tg_pool_t        *pool;
    tg_backend_t     *b;
    json_t           *list, *data, *m, *it;
    const char       *id;
    size_t            i, j, n;
    int               dup;

    pool = r->pool_name ? tg_generation_pool(g, r->pool_name) : NULL;
    n = pool ? pool->nbackends : g->nbackends;

    data = json_array();
    if (data == NULL) {
        goto nomem;
    }

    for (i = 0; i < n; i++) {
        b = pool ? pool->backends[i] : &g->backends[i];
        id = b->model ? b->model : b->name;

        dup = 0;
        json_array_foreach(data, j, it) {
            if (strcmp(json_string_value(json_object_get(it, "id")), id)
                == 0)
            {
                dup = 1;
            }
        }
        if (dup) {
            continue;
        }

        m = json_pack("{s:s, s:s, s:I, s:s}", "id", id, "object", "model",
                      "created", (json_int_t) 0, "owned_by", "thinkgate");
        if (m == NULL || json_array_append_new(data, m) != 0) {
            json_decref(data);
            goto nomem;
        }
    }

    list = json_pack("{s:s, s:o}", "object", "list", "data", data);
    if (list == NULL) {
        goto nomem;
    }

    if (tg_request_json(r, 200, list) == 0) {
        return;
    }

nomem:
    {
        tg_oa_error_t  err;

        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        tg_request_error(r, &err);
    }
}
