/*
 * abi_probe — a test plugin that calls every entry of the host API in one
 * request and reports what each returned in the summary ("thinkgate"
 * object): ok_<check> is 1 when the host kept plugin.h's promise, 0 when
 * not.  tests/e2e/test_plugins.py checks every key.
 *
 * The request: trace 0 is live (streamed to the client) and wins; trace 1
 * is cancelled once it wrote some text and continued with a guide;
 * an aux request answers (its thinking checked against the reply's
 * body), another is cancelled; a timer fires, another is
 * stopped; score() compares three texts.  The request finishes with
 * trace 0 once all of that came back.
 *
 * Every callback checks it was not called from inside a host function
 * (a flag set around each call); destroy() counts itself in the engine's
 * counters (abi_probe_destroyed), so the test sees it ran.
 */

#include <errno.h>
#include <math.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "thinkgate/plugin.h"

#define TG_PROBE_GUIDE   "\n\n**Final Answer**\n"

typedef struct {
    tg_trace_t  *t0, *t1, *t2;
    tg_aux_t    *aux;
    tg_timer_t  *timer;
    int          t0_done, t2_done, aux_done, timer_done, score_done;
    int          answered;
    uint32_t     t0_tokens_seen;
    uint32_t     t1_deltas_after_cancel;
    uint32_t     magic;
} tg_probe_t;

static int tg_probe_load(const tg_host_api_t *api, char *err, size_t n);
static void tg_probe_unload(void);
static int tg_probe_start(tg_req_t *req);
static void tg_probe_on_delta(tg_req_t *req, tg_trace_t *t,
    const tg_delta_t *d);
static void tg_probe_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_probe_on_aux(tg_req_t *req, tg_aux_t *a,
    const tg_aux_result_t *r);
static void tg_probe_kv_cb(tg_req_t *req, void *data, int status,
    const char *value, size_t len);
static void tg_probe_on_timer(tg_req_t *req, tg_timer_t *tm, void *data);
static void tg_probe_on_cancel(tg_req_t *req);
static void tg_probe_destroy(tg_req_t *req);

static const tg_host_api_t  *api;
static int                   in_host;   /* inside a host call */
static int                   dummy_data;

/* Every host call goes through H(), so that a callback can tell whether
 * the host called it from inside one of its own functions. */
#define H(call)  (in_host++, tg_probe_tmp = (intptr_t) (call), in_host--, \
                  tg_probe_tmp)
#define HV(call) do { in_host++; call; in_host--; } while (0)
static intptr_t  tg_probe_tmp;

static const tg_option_t  tg_probe_options[] = {
    { "n", TG_OPT_INT, "2", 1, 8, NULL, "a number" },
    { "ratio", TG_OPT_DOUBLE, "0.5", 0, 1, NULL, "a ratio" },
    { "flag", TG_OPT_BOOL, "off", 0, 0, NULL, "a flag" },
    { "mode", TG_OPT_ENUM, "a", 0, 0, "a|b", "a mode" },
    { "label", TG_OPT_STRING, "none", 0, 0, NULL, "a label" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "abi_probe",
    "1.0",
    "calls every host API entry; test plugin",
    tg_probe_options,
    sizeof(tg_probe_t),
    tg_probe_load,
    tg_probe_unload,
    tg_probe_start,
    tg_probe_on_delta,
    tg_probe_on_trace_end,
    tg_probe_on_aux,
    tg_probe_on_timer,
    tg_probe_on_cancel,
    tg_probe_destroy,
};


static void
ok(tg_req_t *req, const char *name, int good)
{
    char  key[64];

    snprintf(key, sizeof(key), "ok_%s", name);
    HV(api->summary_int(req, key, good ? 1 : 0));
}


/* A callback entered while a host function runs breaks plugin.h. */
static void
entered(tg_req_t *req)
{
    if (in_host) {
        HV(api->counter_add("abi_probe_reentered", 1));
        HV(api->log(req, TG_LOG_ERROR, "abi_probe: callback from inside "
                    "a host call"));
    }
}


static int
tg_probe_load(const tg_host_api_t *a, char *err, size_t n)
{
    if (!TG_HOST_HAS(a, counter_add_req)) {
        snprintf(err, n, "abi_probe: needs the whole host API table");
        return -ENOTSUP;
    }
    api = a;
    return 0;
}


static void
tg_probe_unload(void)
{
    api = NULL;
}


/* Never called: every score_kind() of the probe is refused. */
static void
tg_probe_kind_cb(tg_req_t *req, void *data, const tg_score_result_t *res)
{
    (void) data;
    (void) res;
    ok(req, "score_kind_cb_called", 0);
}


static void
tg_probe_score_cb(tg_req_t *req, void *data, const float *sim, size_t n)
{
    tg_probe_t  *st = api->state(req);

    entered(req);
    ok(req, "score_async", st->score_done == 1);
    ok(req, "score_data", data == &dummy_data);
    ok(req, "score_matrix", sim != NULL && n == 3
       && fabsf(sim[0] - 1.0f) < 1e-4f && fabsf(sim[1] - 1.0f) < 1e-4f
       && sim[2] < 0.5f && fabsf(sim[2] - sim[6]) < 1e-6f);
    st->score_done = 2;
}


/* Never called: every kv call of the probe is refused at once. */
static void
tg_probe_kv_cb(tg_req_t *req, void *data, int status, const char *value,
    size_t len)
{
    (void) data;
    (void) status;
    (void) value;
    (void) len;
    ok(req, "kv_no_callback", 0);
}


static void
tg_probe_maybe_finish(tg_req_t *req, tg_probe_t *st)
{
    int  rc;

    if (st->answered || !st->t0_done || !st->t2_done || !st->aux_done
        || !st->timer_done || st->score_done != 2)
    {
        return;
    }
    st->answered = 1;
    ok(req, "cancelled_quiet", st->t1_deltas_after_cancel == 0);

    /* A cancelled trace cannot win. */
    rc = (int) H(api->finish_trace(req, st->t1));
    ok(req, "finish_trace_not_done", rc == -EINVAL);
    ok(req, "summary_json", H(api->summary_json(req, "probe",
                                                "{\"all\":[1,2,3]}")) == 0);
    ok(req, "summary_str", H(api->summary_str(req, "answer", "probe")) == 0);
    rc = (int) H(api->finish_trace(req, st->t0));
    if (rc != 0) {
        HV(api->fail(req, 500, "server_error", api->last_error(req)));
        return;
    }
    /* Already answered: refused, nothing sent. */
    if (H(api->finish(req, NULL)) != -EALREADY) {
        HV(api->counter_add("abi_probe_double_finish", 1));
    }
}


static int
tg_probe_start(tg_req_t *req)
{
    const tg_request_info_t  *info;
    tg_probe_t               *st;
    tg_trace_spec_t           spec;
    tg_aux_spec_t             aux;
    tg_trace_info_t           ti;
    tg_backend_info_t         bi[8];
    tg_timer_t               *tm2;
    const char               *texts[3] = { "abc abc abc", "abc abc abc",
                                           "xyz qrs tuv" };
    char                     *mem, msgs[1024], esc[512];
    size_t                    i, j, nb;
    int                       rc;

    entered(req);
    info = (const tg_request_info_t *) H(api->request_info(req));
    st = (tg_probe_t *) H(api->state(req));
    ok(req, "request_info", info != NULL && info->strategy != NULL
       && strcmp(info->strategy, "abi_probe") == 0 && info->body_len > 0
       && info->problem_len > 0 && info->pool != NULL && info->id > 0
       && H(api->client_n(req)) == 1);
    ok(req, "state_zeroed", st != NULL && st->magic == 0 && st->t0 == NULL);
    st->magic = 0x9e3779b9u;

    mem = (char *) H(api->alloc(req, 100));
    ok(req, "alloc", mem != NULL
       && (uintptr_t) mem % alignof(max_align_t) == 0);
    if (mem != NULL) {
        memset(mem, 0x5a, 100);
    }

    ok(req, "opt_int", H(api->opt_int(req, "n")) == 3);
    in_host++;
    ok(req, "opt_double", fabs(api->opt_double(req, "ratio") - 0.25) < 1e-9);
    in_host--;
    ok(req, "opt_bool", H(api->opt_bool(req, "flag")) == 1);
    ok(req, "opt_str", strcmp((const char *) H(api->opt_str(req, "mode")),
                              "b") == 0
       && strcmp((const char *) H(api->opt_str(req, "label")), "none") == 0);

    rc = (int) H(api->summary_int(req, "tokens", 1));
    ok(req, "reserved_key", rc < 0
       && ((const char *) H(api->last_error(req)))[0] != '\0'
       && H(api->summary_int(req, "counters", 1)) == -EPERM);

    memset(&spec, 0, sizeof(spec));
    spec.temperature = -1;
    spec.pool = "no_such_pool";
    ok(req, "trace_start_bad_pool",
       H(api->trace_start(req, &spec)) == 0
       && strstr((const char *) H(api->last_error(req)), "no_such_pool"));

    /* Trace 0: live, the winner.  Trace 1: logprobs, cancelled later. */
    spec.pool = NULL;
    spec.flags = TG_TRACE_F_LIVE;
    spec.data = &dummy_data;
    st->t0 = (tg_trace_t *) H(api->trace_start(req, &spec));
    spec.flags = TG_TRACE_F_LOGPROBS;
    spec.data = NULL;
    spec.seed_mode = 1;
    spec.seed = 1;
    st->t1 = (tg_trace_t *) H(api->trace_start(req, &spec));
    ok(req, "trace_start", st->t0 != NULL && st->t1 != NULL);
    if (st->t0 == NULL || st->t1 == NULL) {
        HV(api->fail(req, 502, "backend_error", api->last_error(req)));
        return -EIO;
    }
    spec.flags = TG_TRACE_F_LIVE;
    ok(req, "one_live", H(api->trace_start(req, &spec)) == 0);

    ok(req, "trace_count", H(api->trace_count(req)) == 2);
    ok(req, "trace_at", (tg_trace_t *) H(api->trace_at(req, 0)) == st->t0
       && (tg_trace_t *) H(api->trace_at(req, 1)) == st->t1
       && H(api->trace_at(req, 2)) == 0);
    rc = (int) H(api->trace_info(st->t0, &ti));
    ok(req, "trace_info", rc == 0 && ti.index == 0 && ti.data == &dummy_data
       && (ti.state == TG_TRACE_RUNNING || ti.state == TG_TRACE_QUEUED)
       && ti.ended_ms == 0 && ti.backend != NULL);

    /* Aux: one answers, one is cancelled at once. */
    j = 0;
    for (i = 0; i < info->problem_len && j + 7 < sizeof(esc); i++) {
        char  c = info->problem[i];

        if (c == '"' || c == '\\') {
            esc[j++] = '\\';
            esc[j++] = c;
        } else if ((unsigned char) c >= 0x20) {
            esc[j++] = c;
        }
    }
    esc[j] = '\0';
    snprintf(msgs, sizeof(msgs), "[{\"role\":\"user\",\"content\":\"%s\"}]",
             esc);
    memset(&aux, 0, sizeof(aux));
    aux.pool = info->pool;
    aux.endpoint = TG_ENDPOINT_CHAT;
    aux.messages_json = msgs;
    aux.max_tokens = 200;
    aux.temperature = 0;
    aux.top_logprobs = 2;
    aux.data = &dummy_data;
    st->aux = (tg_aux_t *) H(api->aux_start(req, &aux));
    {
        tg_aux_t  *a2 = (tg_aux_t *) H(api->aux_start(req, &aux));

        ok(req, "aux_cancel", st->aux != NULL && a2 != NULL
           && H(api->aux_cancel(req, a2)) == 0
           && H(api->aux_cancel(req, a2)) == -EALREADY);
    }
    {
        static const char *const  stop[] = { "}", "\n\n", "", "x", "y" };
        static const char *const  empty[] = { "" };
        tg_aux_t                 *a3;

        /* Bad stop lists are refused, naming why; a good one starts. */
        const char               *e;

        ok(req, "aux_start_stop_bad",
           H(api->aux_start_stop(req, &aux, stop, 0)) == 0
           && H(api->aux_start_stop(req, &aux, stop, 5)) == 0
           && H(api->aux_start_stop(req, &aux, empty, 1)) == 0
           && (e = (const char *) H(api->last_error(req))) != NULL
           && strstr(e, "stop") != NULL);
        a3 = (tg_aux_t *) H(api->aux_start_stop(req, &aux, stop, 2));
        ok(req, "aux_start_stop", a3 != NULL
           && H(api->aux_cancel(req, a3)) == 0);
    }

    st->timer = (tg_timer_t *) H(api->timer_start(req, 20, &dummy_data));
    tm2 = (tg_timer_t *) H(api->timer_start(req, 10, NULL));
    ok(req, "timer_stop", tm2 != NULL && H(api->timer_stop(req, tm2)) == 0
       && H(api->timer_stop(req, tm2)) == -EALREADY);
    ok(req, "now_ms", H(api->now_ms()) > 0);

    rc = (int) H(api->score(req, texts, NULL, 3, tg_probe_score_cb,
                            &dummy_data));
    st->score_done = rc == 0;
    ok(req, "score", rc == 0);

    /* No thinkgate_embedder here: refused at once, naming the directive,
     * and the callback (NULL would crash) is never called. */
    rc = (int) H(api->score_kind(req, TG_SCORE_KIND_EMBED, texts, NULL, 3,
                                 NULL, NULL));
    ok(req, "score_kind_bad", rc == -EINVAL
       && H(api->score_kind(req, (tg_score_kind_t) 7, texts, NULL, 3,
                            tg_probe_kind_cb, NULL)) == -EINVAL);
    rc = (int) H(api->score_kind(req, TG_SCORE_KIND_EMBED, texts, NULL, 3,
                                 tg_probe_kind_cb, NULL));
    ok(req, "score_kind_no_embedder", rc == -ENOTSUP
       && strstr((const char *) H(api->last_error(req)),
                 "thinkgate_embedder") != NULL);

    nb = (size_t) H(api->pool_backends(req, NULL, bi, 8));
    ok(req, "pool_backends", nb >= 1 && bi[0].name != NULL
       && bi[0].name[0] != '\0');

    /* No Redis here: -ENOTCONN and no callback; bad keys are refused
     * first, whatever the link (tests/e2e/test_kv.py has Redis). */
    ok(req, "kv_get", H(api->kv_get(req, "k", tg_probe_kv_cb, NULL))
                      == -ENOTCONN
       && H(api->kv_get(req, "bad key", tg_probe_kv_cb, NULL)) == -EINVAL
       && H(api->kv_get(req, "k", NULL, NULL)) == -EINVAL);
    ok(req, "kv_set", H(api->kv_set(req, "k", "v", 1, 0, tg_probe_kv_cb,
                                    NULL)) == -ENOTCONN);
    if (TG_HOST_HAS(api, kv_limits)) {
        size_t  max_key = 0, max_value = 0;

        HV(api->kv_limits(&max_key, &max_value));
        ok(req, "kv_limits", max_key == TG_KV_MAX_KEY
           && max_value == TG_KV_MAX_VALUE);
    }
    HV(api->log(req, TG_LOG_INFO, "abi_probe: started %u traces",
                (unsigned) api->trace_count(req)));
    HV(api->counter_add("abi_probe_requests", 1));
    /* 3 in this request's summary and in the totals; the bad name
     * counts nowhere. */
    ok(req, "counter_add_req",
       H(api->counter_add_req(req, "abi_probe_req_counted", 2)) == 0
       && H(api->counter_add_req(req, "abi_probe_req_counted", 1)) == 0
       && H(api->counter_add_req(req, "Bad Name", 1)) == -EINVAL
       && H(api->counter_add_req(NULL, "abi_probe_req_counted", 1))
          == -EINVAL);

    ok(req, "emit", H(api->emit(req, "", 0, "[probe]", 7)) == 0);
    return 0;
}


static void
tg_probe_on_delta(tg_req_t *req, tg_trace_t *t, const tg_delta_t *d)
{
    tg_probe_t       *st = api->state(req);
    tg_trace_info_t   ti;

    entered(req);
    if (t == st->t0) {
        st->t0_tokens_seen += d->tokens;
        return;
    }
    if (t != st->t1) {
        return;
    }
    if (st->t2 != NULL) {
        st->t1_deltas_after_cancel++;
        return;
    }
    if (H(api->trace_info(t, &ti)) != 0
        || ti.reasoning_len + ti.content_len < 80)
    {
        return;
    }

    /* Enough text to continue: cancel, and continue with a guide. */
    ok(req, "trace_cancel", H(api->trace_cancel(req, t)) == 0
       && H(api->trace_cancel(req, t)) == -EALREADY);
    st->t2 = (tg_trace_t *) H(api->trace_continue(req, t, TG_PROBE_GUIDE,
                                                  strlen(TG_PROBE_GUIDE),
                                                  NULL));
    ok(req, "trace_continue", st->t2 != NULL
       && H(api->trace_count(req)) == 3
       && (tg_trace_t *) H(api->trace_at(req, 2)) == st->t2);
    if (st->t2 == NULL) {
        st->t2_done = 1;
        tg_probe_maybe_finish(req, st);
    }
}


static void
tg_probe_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_probe_t       *st = api->state(req);
    tg_trace_info_t   ti;

    entered(req);
    if (t == st->t1) {
        /* Ended before it wrote enough to be cancelled: no continuation
         * to wait for. */
        ok(req, "trace_cancel", 0);
        st->t2_done = 1;
    } else if (t == st->t0) {
        st->t0_done = 1;
        ok(req, "trace_end_done", e->state == TG_TRACE_DONE
           && e->tokens > 0 && e->finish_reason != NULL);
        ok(req, "deltas_tokens", st->t0_tokens_seen == e->tokens);
        ok(req, "trace_info_end", H(api->trace_info(t, &ti)) == 0
           && ti.state == TG_TRACE_DONE && ti.ended_ms >= ti.started_ms
           && ti.reasoning_len + ti.content_len > 0);
    } else if (t == st->t2) {
        st->t2_done = 1;
        ok(req, "continue_done", e->state == TG_TRACE_DONE);
        /* The continuation's text carries the guide it continued. */
        ok(req, "continue_text", H(api->trace_info(t, &ti)) == 0
           && ti.index == 2
           && (strstr(ti.reasoning, "Final Answer") != NULL
               || strstr(ti.content, "Final Answer") != NULL));
    }
    tg_probe_maybe_finish(req, st);
}


static void
tg_probe_on_aux(tg_req_t *req, tg_aux_t *a, const tg_aux_result_t *r)
{
    tg_probe_t  *st = api->state(req);

    entered(req);
    /* The reply's thinking is there exactly when the backend sent it. */
    ok(req, "aux_result", a == st->aux && r->status == 0
       && r->http_status == 200 && r->data == &dummy_data
       && r->content_len > 0 && r->body_len > 0
       && strstr(r->body, "\"choices\"") != NULL
       && r->reasoning != NULL
       && (r->reasoning_len > 0)
          == (strstr(r->body, "\"reasoning_content\":\"") != NULL
              || strstr(r->body, "\"reasoning\":\"") != NULL));
    ok(req, "aux_finish_reason", r->finish_reason != NULL
       && (strcmp(r->finish_reason, "stop") == 0
           || strcmp(r->finish_reason, "length") == 0));
    st->aux_done = 1;
    tg_probe_maybe_finish(req, st);
}


static void
tg_probe_on_timer(tg_req_t *req, tg_timer_t *tm, void *data)
{
    tg_probe_t  *st = api->state(req);

    entered(req);
    ok(req, "timer", tm == st->timer && data == &dummy_data
       && H(api->timer_stop(req, tm)) == -EALREADY);
    st->timer_done = 1;
    tg_probe_maybe_finish(req, st);
}


static void
tg_probe_on_cancel(tg_req_t *req)
{
    tg_probe_t  *st = api->state(req);

    entered(req);
    st->answered = 1;
    HV(api->counter_add("abi_probe_cancelled", 1));
}


static void
tg_probe_destroy(tg_req_t *req)
{
    tg_probe_t  *st = api->state(req);

    entered(req);
    HV(api->counter_add(st != NULL && st->magic == 0x9e3779b9u
                        ? "abi_probe_destroyed" : "abi_probe_bad_state", 1));
}
