/*
 * thinkgate — passthrough strategy: one trace, relayed to the client as it
 * streams.  This is the core path's behaviour as a plugin, so the engine
 * has a single way of serving every request.
 *
 * The trace is started with TG_TRACE_F_LIVE: the host forwards its deltas
 * itself, so on_delta has nothing to do.  When the trace ends the request
 * ends with the trace's finish_reason and usage; a trace that fails is a
 * 502 carrying the host's explanation.
 *
 * A client's n > 1 is served as a backend would serve it: n live traces,
 * one per choice (the host gives each its choice index and seed + index),
 * and the request ends once all of them are done, with their usage
 * summed.  Any of them failing fails the request.
 */

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "thinkgate/plugin.h"


typedef struct {
    tg_trace_t  **traces;       /* one per choice, NULL once ended */
    tg_trace_t   *one;          /* traces' storage when n is 1 */
    uint32_t      n;
    uint32_t      done;
} tg_passthrough_t;

static int tg_passthrough_load(const tg_host_api_t *api, char *err,
    size_t err_size);
static void tg_passthrough_unload(void);
static int tg_passthrough_start(tg_req_t *req);
static void tg_passthrough_on_delta(tg_req_t *req, tg_trace_t *t,
    const tg_delta_t *d);
static void tg_passthrough_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_passthrough_on_cancel(tg_req_t *req);
static void tg_passthrough_destroy(tg_req_t *req);

/* The host table of this loaded copy; each copy has its own statics. */
static const tg_host_api_t  *tg_passthrough_api;

/* No options: anything a client passes is refused by the host. */
static const tg_option_t  tg_passthrough_options[] = {
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "passthrough",
    "1.0",
    "one trace, streamed to the client as it comes",
    tg_passthrough_options,
    sizeof(tg_passthrough_t),
    tg_passthrough_load,
    tg_passthrough_unload,
    tg_passthrough_start,
    tg_passthrough_on_delta,
    tg_passthrough_on_trace_end,
    NULL,
    NULL,
    tg_passthrough_on_cancel,
    tg_passthrough_destroy,
};


static int
tg_passthrough_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    /* The table only grows; what matters is that it reaches the last
     * entry this plugin calls. */
    if (!TG_HOST_HAS(api, fail)) {
        snprintf(err, err_size, "passthrough: host API table too old");
        return -ENOTSUP;
    }
    tg_passthrough_api = api;
    return 0;
}


static void
tg_passthrough_unload(void)
{
    tg_passthrough_api = NULL;
}


static int
tg_passthrough_start(tg_req_t *req)
{
    const tg_host_api_t  *api = tg_passthrough_api;
    tg_passthrough_t     *st = api->state(req);
    tg_trace_spec_t       spec = { 0 };
    const char           *why;
    uint32_t              i;

    /* A host older than client_n serves one choice. */
    st->n = TG_HOST_HAS(api, client_n) ? api->client_n(req) : 1;
    if (st->n <= 1) {
        st->n = 1;
        st->traces = &st->one;
    } else {
        st->traces = api->alloc(req, st->n * sizeof(*st->traces));
        if (st->traces == NULL) {
            api->fail(req, 500, "server_error", "out of memory");
            return -ENOMEM;
        }
    }

    spec.temperature = -1;
    /* Nothing is read before the end: a client that does not stream is
     * served from the backend's whole answer (its own usage and errors). */
    spec.flags = TG_TRACE_F_LIVE | TG_TRACE_F_WHOLE;
    for (i = 0; i < st->n; i++) {
        st->traces[i] = api->trace_start(req, &spec);
        if (st->traces[i] == NULL) {
            why = api->last_error(req);
            api->fail(req, 502, "backend_error",
                      why != NULL && *why != '\0' ? why
                                                  : "cannot start a trace");
            return -EIO;
        }
    }
    return 0;
}


static void
tg_passthrough_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    /* The host relays a live trace's deltas itself. */
    (void) req;
    (void) t;
    (void) d;
}


static void
tg_passthrough_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e)
{
    const tg_host_api_t  *api = tg_passthrough_api;
    tg_passthrough_t     *st = api->state(req);
    tg_finish_t           fin = { 0 };
    uint32_t              i;

    for (i = 0; i < st->n && st->traces[i] != t; i++) {
        /* find t */
    }
    if (i == st->n || t == NULL) {
        return;
    }
    st->traces[i] = NULL;

    if (e->state == TG_TRACE_DONE) {
        fin.finish_reason = e->finish_reason != NULL ? e->finish_reason
                                                     : "stop";
        if (st->n == 1) {
            fin.usage_of = t;
        } else if (++st->done < st->n) {
            /* The host closed this choice; the others still run. */
            return;
        }
        /* With several choices each closed with its own reason, and
         * usage_of NULL sums theirs. */
        api->finish(req, &fin);
        return;
    }

    /* The backend broke (or the host gave up on it): the client gets a
     * 502 with the host's reason, whatever was already streamed. */
    api->fail(req, 502, "backend_error",
              e->error != NULL && *e->error != '\0'
              ? e->error
              : e->state == TG_TRACE_CANCELLED ? "the trace was cancelled"
                                               : "the backend failed");
}


static void
tg_passthrough_on_cancel(tg_req_t *req)
{
    /* The host cancels the trace; forget it so nothing refers to it. */
    tg_passthrough_t  *st = tg_passthrough_api->state(req);
    uint32_t           i;

    for (i = 0; i < st->n; i++) {
        st->traces[i] = NULL;
    }
}


static void
tg_passthrough_destroy(tg_req_t *req)
{
    (void) req;
}
