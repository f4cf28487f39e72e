/*
 * The host API table handed to every plugin (include/thinkgate/plugin.h),
 * and the entries that are the request's own: info, state, arena,
 * options, summary, pools, log, counters.  Traces, output, timers
 * and score live in host_trace.c, host_output.c and host_async.c.
 *
 * now_ms and counter_add take no request, so the engine they act on is
 * kept here once (tg_host_init): the one loop of the process, and so are
 * the counters' totals.  counter_add_req adds to the same totals and to
 * the request's own "counters" summary object; so does counter_add when
 * a request's callback calls it (tg__host_current).
 */

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strategy/host.h"

struct tg_host_block_s {
    tg_host_block_t  *next;
    max_align_t       align[];      /* the memory handed out */
};

static tg_engine_t      *tg__host_engine;
static json_t           *tg__host_counters;


void
tg_host_init(tg_engine_t *e)
{
    tg__host_engine = e;
    tg__host_async_init(e->loop);
}


uint64_t
tg__host_now(void)
{
    return tg__host_engine ? uv_now(tg__host_engine->loop) : 0;
}


static uint64_t
tg__host_now_ms(void)
{
    return tg__host_now();
}


static const tg_request_info_t *
tg__host_request_info(tg_plugin_req_t *req)
{
    tg_host_req_t  *hr = tg__host_of(req);
    tg_oa_error_t   err;

    if (hr == NULL) {
        return NULL;
    }
    if (tg__host_info_text(hr) != 0 && tg__host_usable(hr)) {
        /* As when the texts were rendered before start(): a 500; the
         * plugin reads empty texts and its next calls are refused. */
        tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
        hr->answered = 1;
        tg__host_cancel_all(hr);
        tg__host_error(hr, &err);
    }
    return &hr->info;
}


static void *
tg__host_state(tg_plugin_req_t *req)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? hr->state : NULL;
}


static void *
tg__host_alloc(tg_plugin_req_t *req, size_t size)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_block_t  *b;

    if (hr == NULL || size > ((size_t) 1 << 30)) {
        return NULL;
    }
    b = malloc(sizeof(*b) + (size ? size : 1));
    if (b == NULL) {
        tg__host_set_error(hr, "out of memory");
        return NULL;
    }
    b->next = hr->arena;
    hr->arena = b;
    return b->align;
}


void
tg__host_arena_free(tg_host_req_t *hr)
{
    tg_host_block_t  *b, *next;

    for (b = hr->arena; b != NULL; b = next) {
        next = b->next;
        free(b);
    }
    hr->arena = NULL;
}


static const char *
tg__host_last_error(tg_plugin_req_t *req)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? hr->error : "not a request";
}


/* ---- options -------------------------------------------------------- */

static int64_t
tg__host_opt_int(tg_plugin_req_t *req, const char *name)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? tg_opt_get_int(&hr->opts, name) : 0;
}


static double
tg__host_opt_double(tg_plugin_req_t *req, const char *name)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? tg_opt_get_double(&hr->opts, name) : 0;
}


static int
tg__host_opt_bool(tg_plugin_req_t *req, const char *name)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? tg_opt_get_bool(&hr->opts, name) : 0;
}


static const char *
tg__host_opt_str(tg_plugin_req_t *req, const char *name)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr ? tg_opt_get_str(&hr->opts, name) : NULL;
}


/* ---- summary -------------------------------------------------------- */

static int
tg__host_summary_set(tg_plugin_req_t *req, const char *key, json_t *v)
{
    tg_host_req_t  *hr = tg__host_of(req);
    static const char *const reserved[] = {
        "strategy", "traces_started", "traces_cancelled", "tokens",
        "aux_tokens", "counters", NULL
    };
    size_t          i;

    if (hr == NULL || v == NULL) {
        json_decref(v);
        if (hr != NULL) {
            tg__host_set_error(hr, "out of memory or not JSON");
        }
        return hr ? -EINVAL : -EINVAL;
    }
    if (key == NULL || !tg_plugin_name_valid(key)) {
        json_decref(v);
        tg__host_set_error(hr, "summary key \"%.64s\" is not "
                           "[a-z0-9_]{1,64}", key ? key : "(null)");
        return -EINVAL;
    }
    for (i = 0; reserved[i] != NULL; i++) {
        if (strcmp(key, reserved[i]) == 0) {
            json_decref(v);
            tg__host_set_error(hr, "summary key \"%s\" is the host's",
                               key);
            return -EPERM;
        }
    }
    if (hr->summary == NULL && (hr->summary = json_object()) == NULL) {
        json_decref(v);
        return -ENOMEM;
    }
    return json_object_set_new(hr->summary, key, v) == 0 ? 0 : -ENOMEM;
}


static int
tg__host_summary_int(tg_plugin_req_t *req, const char *key, int64_t v)
{
    return tg__host_summary_set(req, key, json_integer(v));
}


static int
tg__host_summary_str(tg_plugin_req_t *req, const char *key, const char *v)
{
    return tg__host_summary_set(req, key, v ? json_string(v) : json_null());
}


static int
tg__host_summary_json(tg_plugin_req_t *req, const char *key, const char *json)
{
    return tg__host_summary_set(req, key, json
                                ? json_loads(json, JSON_DECODE_ANY, NULL)
                                : NULL);
}


/* ---- pools, log, counters ----------------------------------------- */

static size_t
tg__host_pool_backends(tg_plugin_req_t *req, const char *pool_name,
    tg_backend_info_t *out, size_t max)
{
    tg_host_req_t      *hr = tg__host_of(req);
    tg_pool_t          *pool;
    tg_backend_t       *b;
    tg_skill_t         *sk;
    const char         *key;
    json_t             *v;
    size_t              i, k;

    if (hr == NULL) {
        return 0;
    }
    pool = pool_name ? tg_generation_pool(hr->r->gen, pool_name)
                     : hr->r->pool;
    if (pool == NULL) {
        tg__host_set_error(hr, "no pool \"%.64s\"",
                           pool_name ? pool_name : "(request's)");
        return 0;
    }
    for (i = 0; i < pool->nbackends && i < max && out != NULL; i++) {
        b = pool->backends[i];
        memset(&out[i], 0, sizeof(out[i]));
        out[i].name = b->name;
        out[i].model = b->model;
        out[i].in_flight = (uint32_t) b->stats->in_flight;
        out[i].max_inflight = (uint32_t) b->max_inflight;
        k = json_object_size(b->skills);
        sk = k ? tg__host_alloc(req, k * sizeof(*sk)) : NULL;
        if (sk != NULL) {
            k = 0;
            json_object_foreach(b->skills, key, v) {
                sk[k].name = key;
                sk[k].level = json_number_value(v);
                k++;
            }
            out[i].skills = sk;
            out[i].nskills = k;
        }
    }
    return pool->nbackends;
}


static void
tg__host_log(tg_plugin_req_t *req, int level, const char *fmt, ...)
{
    tg_host_req_t  *hr = tg__host_of(req);
    char            msg[1024];
    va_list         ap;

    if (level < TG_LOG_ERROR || level > TG_LOG_DEBUG || level > tg_log_level
        || fmt == NULL)
    {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    tg_log(level, "request %llu [%s]: %s",
           hr ? (unsigned long long) hr->r->id : 0ULL,
           hr && hr->strategy ? hr->strategy : "?", msg);
}


/* Adds delta to name in *obj (created on first use): 0 or -ENOMEM. */
static int
tg__host_count(json_t **obj, const char *name, int64_t delta)
{
    json_t  *v;

    if (*obj == NULL && (*obj = json_object()) == NULL) {
        return -ENOMEM;
    }
    v = json_object_get(*obj, name);
    if (v != NULL) {
        json_integer_set(v, json_integer_value(v) + delta);
        return 0;
    }
    return json_object_set_new(*obj, name, json_integer(delta)) == 0
           ? 0 : -ENOMEM;
}


static void
tg__host_counter_add(const char *name, int64_t delta)
{
    tg_host_req_t  *hr = tg__host_current();

    if (name == NULL || !tg_plugin_name_valid(name)) {
        return;
    }
    (void) tg__host_count(&tg__host_counters, name, delta);
    if (hr != NULL) {
        (void) tg__host_count(&hr->counters, name, delta);
    }
}


static int
tg__host_counter_add_req(tg_plugin_req_t *req, const char *name, int64_t delta)
{
    tg_host_req_t  *hr = tg__host_of(req);

    if (hr == NULL) {
        return -EINVAL;
    }
    if (name == NULL || !tg_plugin_name_valid(name)) {
        tg__host_set_error(hr, "counter name \"%.64s\" is not "
                           "[a-z0-9_]{1,64}", name ? name : "(null)");
        return -EINVAL;
    }
    if (tg__host_count(&tg__host_counters, name, delta) != 0
        || tg__host_count(&hr->counters, name, delta) != 0)
    {
        tg__host_set_error(hr, "out of memory");
        return -ENOMEM;
    }
    return 0;
}


static uint32_t
tg__host_client_n(tg_plugin_req_t *req)
{
    tg_host_req_t  *hr = tg__host_of(req);

    return hr != NULL && hr->nchoices > 0 ? hr->nchoices : 1;
}


/* The plugins' counters into obj (status JSON). */
int
tg_host_counters_json(json_t *obj)
{
    return tg__host_counters ? json_object_update(obj, tg__host_counters)
                             : 0;
}


const tg_host_api_t  tg_host_api = {
    TG_PLUGIN_ABI_VERSION,
    sizeof(tg_host_api_t),
    tg__host_request_info,
    tg__host_state,
    tg__host_alloc,
    tg__host_last_error,
    tg__host_opt_int,
    tg__host_opt_double,
    tg__host_opt_bool,
    tg__host_opt_str,
    tg__host_trace_start,
    tg__host_trace_cancel,
    tg__host_trace_continue,
    tg__host_trace_info,
    tg__host_trace_count,
    tg__host_trace_at,
    tg__host_aux_start,
    tg__host_aux_cancel,
    tg__host_emit,
    tg__host_finish,
    tg__host_finish_trace,
    tg__host_fail,
    tg__host_summary_int,
    tg__host_summary_str,
    tg__host_summary_json,
    tg__host_timer_start,
    tg__host_timer_stop,
    tg__host_now_ms,
    tg__host_score,
    tg__host_pool_backends,
    tg__host_kv_get,
    tg__host_kv_set,
    tg__host_log,
    tg__host_counter_add,
    tg__host_client_n,
    tg__host_kv_limits,
    tg__host_score_kind,
    tg__host_aux_start_stop,
    tg__host_counter_add_req
};
