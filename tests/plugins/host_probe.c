/*
 * host_probe — the test plugin of tests/unit/test_host.c, which runs the
 * real plugin host (engine/strategy/host*.c) against fakes of core.
 *
 * start() starts option n traces and counts itself with counter_add_req
 * ("host_probe_started", 1).  Once every trace ended it counts the
 * traces that ended DONE ("host_probe_done", per request and in the
 * totals), sets summary "ended" and answers with the trace whose answer
 * is longest (finish_trace; the first of equals).  With live=on it
 * starts one live trace instead, relayed as it streams, and ends with
 * finish().  on_cancel and
 * destroy count themselves in the totals (counter_add), so that the test
 * sees the host called them; start() also counts "host_probe_old" with
 * counter_add, which the host attributes to the request whose callback
 * calls it.
 */

#include <errno.h>
#include <stdint.h>

#include "thinkgate/plugin.h"

#define TG_HP_MAX  8

typedef struct {
    tg_trace_t  *t[TG_HP_MAX];
    uint32_t     n;
    uint32_t     ended;
    int          live;
} tg_hp_t;

static int tg_hp_load(const tg_host_api_t *api, char *err, size_t n);
static void tg_hp_unload(void);
static int tg_hp_start(tg_req_t *req);
static void tg_hp_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_hp_on_cancel(tg_req_t *req);
static void tg_hp_destroy(tg_req_t *req);

static const tg_host_api_t  *api;

static const tg_option_t  tg_hp_options[] = {
    { "n", TG_OPT_INT, "2", 1, TG_HP_MAX, NULL, "traces to start" },
    { "live", TG_OPT_BOOL, "off", 0, 0, NULL, "one live trace" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    .name = "host_probe",
    .version = "1.0",
    .description = "the plugin host's unit-test plugin",
    .options = tg_hp_options,
    .state_size = sizeof(tg_hp_t),
    .load = tg_hp_load,
    .unload = tg_hp_unload,
    .start = tg_hp_start,
    .on_trace_end = tg_hp_on_trace_end,
    .on_cancel = tg_hp_on_cancel,
    .destroy = tg_hp_destroy,
};


static int
tg_hp_load(const tg_host_api_t *a, char *err, size_t n)
{
    (void) err;
    (void) n;
    if (!TG_HOST_HAS(a, counter_add_req)) {
        return -ENOTSUP;
    }
    api = a;
    return 0;
}


static void
tg_hp_unload(void)
{
    api = NULL;
}


static int
tg_hp_start(tg_req_t *req)
{
    tg_hp_t          *st = api->state(req);
    tg_trace_spec_t   spec = { 0 };
    uint32_t          i;

    st->live = api->opt_bool(req, "live");
    st->n = st->live ? 1 : (uint32_t) api->opt_int(req, "n");
    spec.temperature = -1;
    spec.flags = st->live ? TG_TRACE_F_LIVE : 0;
    for (i = 0; i < st->n; i++) {
        st->t[i] = api->trace_start(req, &spec);
        if (st->t[i] == NULL) {
            api->fail(req, 502, "server_error", api->last_error(req));
            return -EIO;
        }
    }
    api->counter_add("host_probe_old", 1);
    return api->counter_add_req(req, "host_probe_started", 1);
}


static void
tg_hp_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_hp_t          *st = api->state(req);
    tg_trace_info_t   ti;
    tg_trace_t       *best = NULL;
    size_t            best_len = 0;
    int64_t           done = 0;
    uint32_t          i;

    (void) t;
    (void) e;
    if (++st->ended < st->n) {
        return;
    }
    for (i = 0; i < st->n; i++) {
        if (api->trace_info(st->t[i], &ti) != 0
            || ti.state != TG_TRACE_DONE)
        {
            continue;
        }
        done++;
        if (best == NULL || ti.content_len > best_len) {
            best = st->t[i];
            best_len = ti.content_len;
        }
    }
    (void) api->counter_add_req(req, "host_probe_done", done);
    (void) api->summary_int(req, "ended", st->ended);
    if (st->live && best != NULL) {
        (void) api->finish(req, NULL);
        return;
    }
    if (best == NULL) {
        api->fail(req, 502, "server_error", "every trace failed");
        return;
    }
    (void) api->finish_trace(req, best);
}


static void
tg_hp_on_cancel(tg_req_t *req)
{
    (void) req;
    api->counter_add("host_probe_cancelled", 1);
}


static void
tg_hp_destroy(tg_req_t *req)
{
    (void) req;
    api->counter_add("host_probe_destroyed", 1);
}
