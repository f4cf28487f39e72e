/*
 * The status endpoint.  Backends are those of the generation the asking
 * worker registered with (what its nginx.conf names); their counters are
 * engine-wide (config/generation.h).
 */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "core/embed_link.h"
#include "core/shared.h"
#include "plugin/loader.h"
#include "serve/keys.h"
#include "serve/status.h"
#include "strategy/host.h"
#include "util/buf.h"


static int
tg__status_wants_prometheus(const char *args)
{
    const char  *p;
    size_t       n = strlen("format=prometheus");

    for (p = args; (p = strstr(p, "format=prometheus")) != NULL; p += n) {
        if ((p == args || p[-1] == '&') && (p[n] == '\0' || p[n] == '&')) {
            return 1;
        }
    }
    return 0;
}


/* Prometheus label values escape backslash, quote and newline. */
static int
tg__prom_label(tg_buf_t *b, const char *s)
{
    int  rc = 0;

    for ( ; *s != '\0' && rc == 0; s++) {
        if (*s == '\\' || *s == '"') {
            rc = tg_buf_printf(b, "\\%c", *s);
        } else if (*s == '\n') {
            rc = tg_buf_append(b, "\\n", 2);
        } else {
            rc = tg_buf_append(b, s, 1);
        }
    }
    return rc;
}


/* The k-th per-backend figure of the Prometheus table below. */
static uint64_t
tg__status_backend_figure(const tg_backend_stats_t *st, size_t k)
{
    switch (k) {
    case 0:
        return st->in_flight;
    case 1:
        return st->requests;
    case 2:
        return st->errors;
    case 3:
        return (uint64_t) st->health.state;
    case 4:
        return st->health.opened;
    case 5:
        return st->health.closed;
    default:
        return st->health.check_failures;
    }
}


static int
tg__status_prometheus(tg_request_t *r, tg_buf_t *b)
{
    tg_engine_t      *e = r->engine;
    tg_generation_t  *g = r->gen;
    tg_backend_t     *be;
    size_t            i;
    int               rc;
    static const struct {
        const char  *name;
        const char  *type;
        const char  *help;
    } per_backend[] = {
        { "thinkgate_backend_in_flight", "gauge",
          "Transfers running on the backend." },
        { "thinkgate_backend_requests_total", "counter",
          "Transfers started on the backend." },
        { "thinkgate_backend_errors_total", "counter",
          "Transport failures and 5xx answers of the backend." },
            { "thinkgate_backend_state", "gauge",
          "Circuit breaker: 0 closed, 1 half-open, 2 open." },
        { "thinkgate_backend_circuit_opened_total", "counter",
          "Times the backend's circuit opened." },
        { "thinkgate_backend_circuit_closed_total", "counter",
          "Times the backend's circuit closed again after a probe." },
        { "thinkgate_backend_health_check_failures_total", "counter",
          "Active health checks of the backend that failed." },
};
    size_t            k;

    rc = tg_buf_printf(b,
        "# HELP thinkgate_engine_connected Whether the engine answers.\n"
        "# TYPE thinkgate_engine_connected gauge\n"
        "thinkgate_engine_connected 1\n"
        "# HELP thinkgate_engine_uptime_seconds Seconds since the engine "
        "started.\n"
        "# TYPE thinkgate_engine_uptime_seconds gauge\n"
        "thinkgate_engine_uptime_seconds %llu\n"
        "# HELP thinkgate_engine_generations Live configuration "
        "generations.\n"
        "# TYPE thinkgate_engine_generations gauge\n"
        "thinkgate_engine_generations %zu\n"
        "# HELP thinkgate_engine_registrations Registered nginx workers.\n"
        "# TYPE thinkgate_engine_registrations gauge\n"
        "thinkgate_engine_registrations %zu\n"
        "# HELP thinkgate_requests_total API requests received.\n"
        "# TYPE thinkgate_requests_total counter\n"
        "thinkgate_requests_total %llu\n"
        "# HELP thinkgate_requests_in_flight API requests being served.\n"
        "# TYPE thinkgate_requests_in_flight gauge\n"
        "thinkgate_requests_in_flight %llu\n"
        "# HELP thinkgate_requests_errors_total API requests answered with "
        "an error.\n"
        "# TYPE thinkgate_requests_errors_total counter\n"
        "thinkgate_requests_errors_total %llu\n",
        (unsigned long long) ((uv_now(e->loop) - e->started_ms) / 1000),
        e->config.ngenerations, e->nregistrations,
        (unsigned long long) e->requests_total,
        (unsigned long long) e->requests_in_flight,
        (unsigned long long) e->requests_errors);

    if (rc == 0) {
        rc = tg_shared_status_prometheus(tg_shared_of(e, g), b);
    }
    if (rc == 0) {
        rc = tg_embed_status_prometheus(tg_embed_of(e, g), b);
    }
    if (rc == 0) {
        rc = tg_keys_status_prometheus(r, b);
    }

    for (k = 0; rc == 0 && k < sizeof(per_backend) / sizeof(per_backend[0]);
         k++)
    {
        rc = tg_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n",
                           per_backend[k].name, per_backend[k].help,
                           per_backend[k].name, per_backend[k].type);

        for (i = 0; rc == 0 && i < g->nbackends; i++) {
            uint64_t  v;

            be = &g->backends[i];
            v = tg__status_backend_figure(be->stats, k);

            rc = tg_buf_printf(b, "%s{backend=\"", per_backend[k].name);
            if (rc == 0) {
                rc = tg__prom_label(b, be->name);
            }
            if (rc == 0) {
                rc = tg_buf_printf(b, "\"} %llu\n", (unsigned long long) v);
            }
        }
    }

    return rc;
}


/* One loaded version: name, version, generation, live requests; draining
 * versions (replaced, still serving requests) are listed too. */
static int
tg__status_plugin(const tg_plugin_info_t *info, void *data)
{
    json_t  *list = data, *p;

    p = json_pack("{s:s, s:s?, s:I, s:I, s:b}", "name", info->name,
                  "version", info->version,
                  "generation", (json_int_t) info->generation,
                  "requests", (json_int_t) info->refs,
                  "current", info->current);
    if (p == NULL || json_array_append_new(list, p) != 0) {
        return -ENOMEM;
    }
    return 0;
}


/* One backend's counters and health, now being the health clock's time. */
static json_t *
tg__status_backend(tg_backend_t *be, uint64_t now)
{
    tg_health_t  *h = &be->stats->health;

    return json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:s, s:{s:b, s:s?, "
                     "s:I, s:I, s:I, s:I, s:I, s:I, s:s?}}",
                     "name", be->name, "url", be->url,
                     "in_flight", (json_int_t) be->stats->in_flight,
                     "max_inflight", (json_int_t) be->max_inflight,
                     "requests", (json_int_t) be->stats->requests,
                     "errors", (json_int_t) be->stats->errors,
                     "state", tg_health_state_name(h->state),
                     "health",
                     "breaker", h->enabled,
                     "check", be->health.path,
                     "consecutive_failures", (json_int_t) h->consecutive,
                     "opened", (json_int_t) h->opened,
                     "closed", (json_int_t) h->closed,
                     "checks", (json_int_t) h->checks,
                     "check_failures", (json_int_t) h->check_failures,
                     "state_for_ms", (json_int_t) (now - h->since_ms),
                     "last_error", h->last_error[0] ? h->last_error : NULL);
}


/* The generation's backends, an array; NULL when out of memory. */
static json_t *
tg__status_backends(tg_generation_t *g)
{
    json_t    *backends, *b;
    uint64_t   now;
    size_t     i;

    now = tg_health_now_ms();

    backends = json_array();
    if (backends == NULL) {
        return NULL;
    }

    for (i = 0; i < g->nbackends; i++) {
        b = tg__status_backend(&g->backends[i], now);
        if (b == NULL || json_array_append_new(backends, b) != 0) {
            json_decref(backends);
            return NULL;
        }
    }
    return backends;
}


/* The embedder's, Redis's and the keys' parts of doc: 0, or -ENOMEM. */
static int
tg__status_parts(tg_request_t *r, json_t *doc)
{
    tg_engine_t      *e = r->engine;
    tg_generation_t  *g = r->gen;

    if (tg_embed_status_json(tg_embed_of(e, g), doc) != 0
        || tg_shared_status_json(tg_shared_of(e, g), doc) != 0
        || tg_keys_status_json(r, doc) != 0)
    {
        return -ENOMEM;
    }
    return 0;
}


static json_t *
tg__status_json(tg_request_t *r)
{
    tg_engine_t      *e = r->engine;
    tg_generation_t  *g = r->gen;
    json_t           *backends, *plugins, *counters, *doc;

    backends = tg__status_backends(g);
    if (backends == NULL) {
        return NULL;
    }

    plugins = json_array();
    counters = json_object();
    if (plugins == NULL || counters == NULL
        || (e->plugins != NULL
            && tg_plugin_list(e->plugins, tg__status_plugin, plugins) != 0)
        || tg_host_counters_json(counters) != 0)
    {
        json_decref(plugins);
        json_decref(counters);
        json_decref(backends);
        return NULL;
    }

    doc = json_pack("{s:{s:b, s:I, s:I, s:I, s:I, s:I}, "
                     "s:{s:I, s:I, s:I}, s:o, s:o, s:o}",
                     "engine",
                     "connected", 1,
                     "pid", (json_int_t) getpid(),
                     "uptime_s", (json_int_t) ((uv_now(e->loop)
                                                - e->started_ms) / 1000),
                     "generations", (json_int_t) e->config.ngenerations,
                     "generation", (json_int_t) g->id,
                     "registrations", (json_int_t) e->nregistrations,
                     "requests",
                     "total", (json_int_t) e->requests_total,
                     "in_flight", (json_int_t) e->requests_in_flight,
                     "errors", (json_int_t) e->requests_errors,
                     "backends", backends,
                     "plugins", plugins,
                     "counters", counters);
    if (doc != NULL && tg__status_parts(r, doc) != 0) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}


void
tg_status_respond(tg_request_t *r)
{
    tg_buf_t       b = { 0 };
    json_t        *doc;
    tg_oa_error_t  err;

    if (tg__status_wants_prometheus(r->args)) {
        if (tg__status_prometheus(r, &b) == 0) {
            tg_request_reply(r, 200, "text/plain; version=0.0.4",
                             tg_buf_ptr(&b), tg_buf_size(&b));
            tg_buf_free(&b);
            return;
        }
        tg_buf_free(&b);

    } else {
        doc = tg__status_json(r);
        if (doc != NULL) {
            tg_request_json(r, 200, doc);
            return;
        }
    }

    tg_oa_error_set(&err, 500, NULL, NULL, NULL, "out of memory");
    tg_request_error(r, &err);
}
