/*
 * Request dispatch: meta, endpoint routing, /models, status, admin,
 * strategy start.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/strategy.h"
#include "log.h"
#include "openai/responses.h"
#include "serve/admin.h"
#include "serve/dispatch.h"
#include "serve/keys.h"
#include "serve/prep.h"
#include "serve/status.h"
#include "strategy/host.h"
#include "transport/conn.h"

static int tg__dispatch_meta(tg_request_t *r, tg_oa_error_t *err);
static void tg__dispatch_api(tg_request_t *r);
static void tg__dispatch_keyed(tg_request_t *r);
static void tg__dispatch_admitted(tg_request_t *r);
static int tg__dispatch_route(tg_request_t *r, tg_oa_error_t *err);
static void tg__dispatch_unknown_model(tg_request_t *r, tg_oa_error_t *err);
static int tg__names_cb(const tg_model_route_t *route, void *data);
static void tg__dispatch_models(tg_request_t *r);

/* GET /v1/models: the list, and the request whose key filters it. */
typedef struct {
    tg_request_t  *r;
    json_t        *data;
} tg__models_t;

static int tg__models_cb(const tg_model_route_t *route, void *data);

/* The valid names an unknown model's 404 lists, up to a length. */
typedef struct {
    char    text[480];
    size_t  len;
    size_t  more;
} tg__names_t;


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
    const char  *kind = r->meta.kind;

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

    /* what the location's requests share, sent once at registration */
    if (r->meta.loc >= 0) {
        if (r->gen == NULL || (uint64_t) r->meta.loc >= r->gen->nlocations) {
            tg_oa_error_set(err, 500, NULL, NULL, NULL,
                            "REQUEST meta names location %lld; the "
                            "configuration has %zu",
                            (long long) r->meta.loc,
                            r->gen != NULL ? r->gen->nlocations : 0);
            return -EPROTO;
        }
        tg_meta_location(&r->meta, &r->gen->locations[r->meta.loc]);
    }

    r->method = r->meta.method;
    r->uri = r->meta.uri;
    r->args = r->meta.args;
    r->pool_name = r->meta.pool;

    if (r->meta.timeout_ms > 0) {
        r->timeout_ms = r->meta.timeout_ms;
    }
    if (r->meta.deadline_ms > 0) {
        r->deadline_ms = r->meta.deadline_ms;
    }
    r->max_body = r->meta.max_body > 0
                  && r->meta.max_body < TG_REQUEST_MAX_BODY
                  ? (uint64_t) r->meta.max_body : TG_REQUEST_MAX_BODY;

    if (r->method == NULL) {
        r->method = "GET";
    }
    if (r->uri == NULL) {
        r->uri = "/";
    }
    if (r->args == NULL) {
        r->args = "";
    }

    return r->kind == TG_KIND_API ? tg_keys_meta(r, err) : 0;
}


static void
tg__dispatch_api(tg_request_t *r)
{
    tg_engine_t          *e = r->engine;
    tg_oa_error_t         err;

    e->requests_total++;
    e->requests_in_flight++;
    r->counted = 1;

    if (tg_request_deadline_start(r) != 0) {
        tg_oa_error_set(&err, 500, NULL, NULL, NULL,
                        "cannot start the deadline timer");
        tg_request_error(r, &err);
        return;
    }

    /* a key kept in Redis is read first: nothing is answered to a
     * request whose key is unknown */
    tg_keys_resolve(r, tg__dispatch_keyed);
}


static void
tg__dispatch_keyed(tg_request_t *r)
{
    tg_oa_error_t         err;
    int                   endpoint;

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

    if (endpoint == TG_OA_RESPONSE_GET) {
        const char  *id;
        size_t       idlen;

        if (strcmp(r->method, "GET") != 0
            && strcmp(r->method, "DELETE") != 0)
        {
            goto not_allowed;
        }
        (void) tg_oa_response_get_id(r->uri, strlen(r->uri), &id, &idlen);
        tg_prep_response_get(r, id, idlen, r->method[0] == 'D');
        return;
    }

    if (strcmp(r->method, "POST") != 0) {
        goto not_allowed;
    }

    if ((endpoint == TG_OA_RESPONSES
         ? tg_oa_responses_parse(&r->oa, tg_buf_ptr(&r->body),
                                 tg_buf_size(&r->body), &err)
         : tg_oa_parse_kept(&r->oa, endpoint, tg_buf_ptr(&r->body),
                            tg_buf_size(&r->body), &err)) != 0)
    {
        goto failed;
    }

    /* The body is parsed; its text stays only where backend bodies are
     * written from it (r->oa.text points into it). */
    r->body_len = tg_buf_size(&r->body);
    if (r->oa.text == NULL) {
        tg_buf_free(&r->body);
    }

    if (tg__dispatch_route(r, &err) != 0
        || tg_keys_allow_model(r, &err) != 0)
    {
        goto failed;
    }

    /* a key over one of its windows is refused before any GPU works */
    tg_keys_admit(r, tg__dispatch_admitted);
    return;

not_allowed:
    tg_oa_error_set(&err, 405, "invalid_request_error", "method_not_allowed",
                    NULL, "Method %s is not allowed on %.200s", r->method,
                    r->uri);

failed:
    tg_request_error(r, &err);
}


static void
tg__dispatch_admitted(tg_request_t *r)
{
    tg_oa_error_t  err;

    /* The plugin host selects and runs the strategy (passthrough unless
     * the request or the location names another). */
    r->strategy = &tg_strategy_host;
    if (tg_prep_run(r, &err) != 0) {
        tg_request_error(r, &err);
    }
}


/*
 * The pool that serves the request.  A location that pins one
 * (thinkgate_pass POOL) serves every model name there, as before; one
 * that does not (thinkgate_pass;) routes by the request's "model" among
 * the names GET /models lists, and an unknown name is a 404 listing the
 * valid ones.  Either way a name that is an alias with model= is renamed
 * on its pool's traces.
 */
static int
tg__dispatch_route(tg_request_t *r, tg_oa_error_t *err)
{
    tg_model_route_t   route;
    tg_pool_t         *pool;
    tg_backend_t      *b;
    int                rc;

    pool = NULL;

    if (r->pool_name != NULL) {
        pool = tg_generation_pool(r->gen, r->pool_name);
        if (pool == NULL) {
            tg_oa_error_set(err, 500, "server_error", "no_pool", NULL,
                            "The engine's configuration has no pool "
                            "\"%.64s\".", r->pool_name);
            return -ENOENT;
        }
        r->pool = pool;
        if (r->oa.model == NULL) {
            return 0;
        }
    }

    if (r->oa.model == NULL) {
        tg_oa_error_set(err, 400, "invalid_request_error", NULL, "model",
                        "You must provide a model parameter.");
        return -EINVAL;
    }

    rc = tg_generation_model_route(r->gen, pool, r->oa.model, &route);

    if (rc == -ENOENT && pool != NULL) {
        return 0;
    }

    if (rc == -ENOENT) {
        b = tg_generation_models_pending(r->gen, NULL);
        if (b != NULL) {
            tg_oa_error_set(err, 503, "server_error", "models_pending",
                            "model", "The model `%.200s` is not known yet: "
                            "backend \"%s\" has not listed its models; "
                            "retry in a moment.", r->oa.model, b->name);
            return -EAGAIN;
        }
        tg__dispatch_unknown_model(r, err);
        return -ENOENT;
    }

    if (rc != 0) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return rc;
    }

    r->pool_name = route.pool->name;
    r->pool = route.pool;
    r->model_pool = route.pool;
    r->model_upstream = route.upstream;
    r->model_alias = route.alias;
    return 0;
}


/* 404 in OpenAI's shape, naming the model and the ones that exist. */
static void
tg__dispatch_unknown_model(tg_request_t *r, tg_oa_error_t *err)
{
    tg__names_t  names;

    memset(&names, 0, sizeof(names));
    (void) tg_generation_models_each(r->gen, NULL, tg__names_cb, &names);

    if (names.len == 0) {
        tg_oa_error_set(err, 404, "invalid_request_error",
                        "model_not_found", "model", "The model `%.200s` "
                        "does not exist: this gateway serves no model yet.",
                        r->oa.model);
        return;
    }

    if (names.more > 0) {
        tg_oa_error_set(err, 404, "invalid_request_error",
                        "model_not_found", "model", "The model `%.200s` "
                        "does not exist. Available models: %s and %zu more "
                        "(GET /v1/models).", r->oa.model, names.text,
                        names.more);
        return;
    }

    tg_oa_error_set(err, 404, "invalid_request_error", "model_not_found",
                    "model", "The model `%.200s` does not exist. Available "
                    "models: %s.", r->oa.model, names.text);
}


static int
tg__names_cb(const tg_model_route_t *route, void *data)
{
    tg__names_t  *names = data;
    size_t        need;

    need = strlen(route->name) + 4;
    if (names->more > 0 || names->len + need >= sizeof(names->text)) {
        names->more++;
        return 0;
    }

    names->len += snprintf(names->text + names->len,
                           sizeof(names->text) - names->len, "%s`%s`",
                           names->len ? ", " : "", route->name);
    return 0;
}


/* GET /models: the names a request may use here, in OpenAI's list shape:
 * the pinned pool's, or every pool's where the location routes by model
 * (config/models.c walks both, so listing and routing agree). */
static void
tg__dispatch_models(tg_request_t *r)
{
    tg_generation_t  *g = r->gen;
    tg_pool_t        *pool;
    json_t           *list, *data;

    tg__models_t      m;

    pool = r->pool_name ? tg_generation_pool(g, r->pool_name) : NULL;

    data = json_array();
    if (data == NULL) {
        goto nomem;
    }

    /* a key with models= sees only the names it may use */
    m.r = r;
    m.data = data;
    if ((r->pool_name == NULL || pool != NULL)
        && tg_generation_models_each(g, pool, tg__models_cb, &m) != 0)
    {
        json_decref(data);
        goto nomem;
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


static int
tg__models_cb(const tg_model_route_t *route, void *data)
{
    tg__models_t  *ms = data;
    json_t        *m;

    if (!tg_keys_may_use(ms->r, route->name,
                         route->pool ? route->pool->name : NULL))
    {
        return 0;
    }
    m = json_pack("{s:s, s:s, s:I, s:s}", "id", route->name, "object",
                  "model", "created", (json_int_t) 0, "owned_by",
                  "thinkgate");
    if (m == NULL || json_array_append_new(ms->data, m) != 0) {
        return -ENOMEM;
    }
    return 0;
}


/* A closing request's key is charged what its traces cost so far, those
 * about to be cancelled included. */
static void
tg__dispatch_close(tg_request_t *r)
{
    tg_keys_close(r, r->strategy_data != NULL ? tg_host_spent(r) : 0);
}


const tg_request_hooks_t  tg_serve_request_hooks = {
    .on_ready = tg_dispatch,
    .on_output = tg_prep_output,
    .on_close = tg__dispatch_close,
    .on_closed = tg_prep_close,
    .on_free = tg_keys_free_request,
};


/* The "thinkgate" object's session and key members. */
static int
tg__dispatch_summary(const tg_request_t *r, json_t *obj, uint64_t spent)
{
    if (tg_prep_summary(r, obj) != 0) {
        return -ENOMEM;
    }
    return tg_keys_summary(r, obj, spent);
}


const tg_host_hooks_t  tg_serve_host_hooks = {
    .allow_strategy = tg_keys_allow_strategy,
    .store = tg_prep_store,
    .response_store = tg_prep_response_store,
    .summary = tg__dispatch_summary,
    .response_summary = tg_prep_response_summary,
};
