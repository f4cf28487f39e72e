/*
 * The plugin host (engine/strategy/host*.c), linked as it is, with the
 * real plugin loader and a real plugin (tests/plugins/host_probe.c)
 * against fakes of core (fake_core.c): the test plays core's part,
 * starting the request through tg_strategy_host and feeding its traces
 * SSE events and ends, and reads what the host wrote to the client.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "fake_core.h"
#include "strategy/host.h"
#include "util/jdump.h"

static uv_loop_t      t_loop;
static tg_engine_t    t_engine;
static tg_request_t   t_req;
static tg_generation_t  *t_gen;     /* the requests' generation, or NULL */

static void t_setup(void);
static void t_teardown(void);
static int t_start_body(const char *strategy, int endpoint, const char *body,
    int keep, tg_oa_error_t *err);


static void
t_setup(void)
{
    char  err[512];

    cr_assert_eq(uv_loop_init(&t_loop), 0);
    memset(&t_engine, 0, sizeof(t_engine));
    t_engine.loop = &t_loop;
    cr_assert_eq(tg_plugin_registry_new(&t_engine.plugins,
                                        TG_TEST_PLUGIN_DIR, &tg_host_api,
                                        err, sizeof(err)), 0, "%s", err);
    tg_host_init(&t_engine);
}


/* The request's end as core has it: the host's state destroyed (its
 * traces freed, or kept for the next request), the request's own parts
 * freed, what the fakes recorded forgotten. */
static void
t_end_request(void)
{
    if (t_req.strategy_data != NULL) {
        tg_strategy_host.destroy(&t_req);
    }
    tg_meta_free(&t_req.meta);
    tg_oa_request_free(&t_req.oa);
    memset(&t_req, 0, sizeof(t_req));
    fake_core_reset();
}


static void
t_teardown(void)
{
    t_end_request();
    t_gen = NULL;
    tg_host_shutdown();
    (void) uv_run(&t_loop, UV_RUN_NOWAIT);
    tg_plugin_registry_free(t_engine.plugins);
    (void) uv_loop_close(&t_loop);
}


/* The REQUEST meta of a location whose thinkgate_strategy is strategy. */
static void
t_meta(const char *strategy)
{
    json_t        *m;
    json_error_t   jerr;
    char          *text;

    m = json_pack("{s:s}", "strategy", strategy);
    cr_assert_not_null(m);
    text = json_dumps(m, 0);
    json_decref(m);
    cr_assert_not_null(text);
    cr_assert_eq(tg_meta_read(&t_req.meta, text, strlen(text), &jerr), 0,
                 "%s", jerr.text);
    free(text);
    cr_assert_str_eq(t_req.meta.strategy, strategy);
}


/* A chat request (streamed or not) for strategy (the location's
 * thinkgate_strategy), started: 0, or the host's error code with err
 * filled. */
static int
t_start_as(const char *strategy, int stream, tg_oa_error_t *err)
{
    char  body[256];

    snprintf(body, sizeof(body), "{\"model\": \"m\", \"stream\": %s, "
             "\"messages\": [{\"role\": \"user\", \"content\": "
             "\"What is six times seven?\"}]}", stream ? "true" : "false");
    return t_start_body(strategy, TG_OA_CHAT, body, 0, err);
}


/* A request of endpoint with body for strategy, started; keep reads it
 * as dispatch does, its text kept (body must then outlive the
 * request). */
static int
t_start_body(const char *strategy, int endpoint, const char *body, int keep,
    tg_oa_error_t *err)
{
    memset(&t_req, 0, sizeof(t_req));
    t_req.engine = &t_engine;
    t_req.id = 7;
    t_req.pool_name = "p";
    t_req.pool = tg_generation_pool(NULL, "p");   /* dispatch's, faked */
    t_req.gen = t_gen;
    t_meta(strategy);
    cr_assert_eq(keep ? tg_oa_parse_kept(&t_req.oa, endpoint, body,
                                         strlen(body), err)
                      : tg_oa_parse(&t_req.oa, endpoint, body, strlen(body),
                                    err), 0, "%s", err->message);
    t_req.strategy = &tg_strategy_host;
    return tg_strategy_host.start(&t_req, err);
}


static int
t_start(const char *strategy, tg_oa_error_t *err)
{
    return t_start_as(strategy, 0, err);
}


static tg_trace_t *
t_trace(size_t i)
{
    cr_assert_lt(i, fake_core.ntraces);
    return fake_core.traces[i];
}


/* One SSE chunk of trace i carrying content. */
static void
t_delta(size_t i, const char *content)
{
    tg_trace_t  *t = t_trace(i);
    char        *s;
    json_t      *chunk;

    t->status = 200;
    t->sse_ready = 1;
    chunk = json_pack("{s:s, s:[{s:i, s:{s:s}, s:n}]}", "object",
                      "chat.completion.chunk", "choices", "index", 0,
                      "delta", "content", content, "finish_reason");
    s = json_dumps(chunk, 0);
    json_decref(chunk);
    cr_assert_not_null(s);
    t->bytes += strlen(s);
    tg_strategy_host.on_event(t, "message", s, strlen(s));
    free(s);
}


/* Trace i's last chunk (finish_reason stop, its usage) and its end. */
static void
t_done(size_t i, int completion_tokens)
{
    tg_trace_t  *t = t_trace(i);
    char        *s;
    json_t      *chunk;

    chunk = json_pack("{s:s, s:[{s:i, s:{}, s:s}], s:{s:i, s:i, s:i}}",
                      "object", "chat.completion.chunk", "choices",
                      "index", 0, "delta", "finish_reason", "stop",
                      "usage", "prompt_tokens", 10, "completion_tokens",
                      completion_tokens, "total_tokens",
                      10 + completion_tokens);
    s = json_dumps(chunk, 0);
    json_decref(chunk);
    cr_assert_not_null(s);
    t->bytes += strlen(s);
    tg_strategy_host.on_event(t, "message", s, strlen(s));
    free(s);
    tg_strategy_host.on_event(t, "message", "[DONE]", 6);
    t->done_seen = 1;
    t->ended = 1;
    tg_strategy_host.on_trace_end(t);
}


/* Trace i fails: the backend connection broke before it answered. */
static void
t_fail(size_t i)
{
    tg_trace_t  *t = t_trace(i);

    t->rc = -ECONNRESET;
    t->status = 0;
    t->ended = 1;
    tg_strategy_host.on_trace_end(t);
}


/* The engine-wide total of a plugin counter (the status page's). */
static json_int_t
t_total(const char *name)
{
    json_t      *o = json_object();
    json_int_t   v;

    cr_assert_eq(tg_host_counters_json(o), 0);
    v = json_integer_value(json_object_get(o, name));
    json_decref(o);
    return v;
}


/* The JSON answer the client got. */
static json_t *
t_answer(void)
{
    json_t        *doc;
    json_error_t   jerr;

    cr_assert_eq(fake_core.head_status, 200);
    cr_assert(fake_core.ended, "no END");
    doc = json_loadb(tg_buf_ptr(&fake_core.data),
                     tg_buf_size(&fake_core.data), 0, &jerr);
    cr_assert_not_null(doc, "%s", jerr.text);
    return doc;
}


/* The first choice's message content in an answer. */
static const char *
t_content(json_t *doc)
{
    return json_string_value(json_object_get(json_object_get(
        json_array_get(json_object_get(doc, "choices"), 0), "message"),
        "content"));
}


TestSuite(host, .init = t_setup, .fini = t_teardown);


Test(host, n_traces_their_output_and_the_summary)
{
    tg_oa_error_t  err;
    json_t        *doc, *tg, *want;
    size_t         i;

    cr_assert_eq(t_start("host_probe n=3", &err), 0, "%s", err.message);

    /* The plugin's n traces, on the request's pool, as chat requests
     * for the client's messages. */
    cr_assert_eq(fake_core.ntraces, 3);
    for (i = 0; i < 3; i++) {
        cr_assert_eq(t_trace(i)->pool, &fake_core.pool);
        cr_assert_eq(t_trace(i)->endpoint, TG_OA_CHAT);
        cr_assert_str_eq(json_string_value(json_object_get(
            json_array_get(json_object_get(t_trace(i)->body, "messages"),
                           0), "content")), "What is six times seven?");
    }
    cr_assert_eq(fake_core.head_status, 0, "nothing before the answer");

    t_delta(0, "42");
    t_delta(1, "six times seven ");
    t_delta(1, "is 42");
    t_delta(2, "7");
    t_done(0, 1);
    t_done(2, 1);
    cr_assert_eq(fake_core.head_status, 0, "answered before the last end");
    t_done(1, 5);

    /* finish_trace() with the longest answer: trace 1's text, whole. */
    doc = t_answer();
    cr_assert_str_eq(t_content(doc), "six times seven is 42");
    cr_assert_str_eq(json_string_value(json_object_get(doc, "object")),
                     "chat.completion");

    /* The summary, in the answer and as END's figures. */
    tg = json_object_get(doc, "thinkgate");
    cr_assert(json_equal(tg, fake_core.figures), "END figures differ");
    cr_assert_str_eq(json_string_value(json_object_get(tg, "strategy")),
                     "host_probe");
    cr_assert_eq(json_integer_value(json_object_get(tg, "traces_started")),
                 3);
    cr_assert_eq(json_integer_value(json_object_get(tg, "winner")), 1);
    cr_assert_eq(json_integer_value(json_object_get(tg, "tokens")), 7);
    cr_assert_eq(json_integer_value(json_object_get(tg, "ended")), 3);
    cr_assert_eq(json_integer_value(json_object_get(tg, "traces_cancelled")),
                 0);

    /* counter_add_req(): the request's own counts in its summary ... */
    want = json_pack("{s:i, s:i, s:i}", "host_probe_started", 1,
                     "host_probe_done", 3, "host_probe_old", 1);
    cr_assert(json_equal(json_object_get(tg, "counters"), want),
              "counters differ");
    json_decref(want);
    json_decref(doc);
    /* ... and in the engine-wide totals. */
    cr_assert_eq(t_total("host_probe_started"), 1);
    cr_assert_eq(t_total("host_probe_done"), 3);
    cr_assert_eq(t_total("host_probe_old"), 1);
    cr_assert_eq(fake_core.cancelled[0] + fake_core.cancelled[1]
                 + fake_core.cancelled[2], 0, "ended traces cancelled");

    tg_strategy_host.destroy(&t_req);
    cr_assert_null(t_req.strategy_data);
    cr_assert_eq(t_total("host_probe_destroyed"), 1);
}


Test(host, totals_add_up_over_requests_summaries_stay_per_request)
{
    tg_oa_error_t  err;
    json_t        *counters;
    int            k;

    for (k = 0; k < 2; k++) {
        cr_assert_eq(t_start("host_probe n=2", &err), 0, "%s",
                     err.message);
        t_delta(0, "a");
        t_delta(1, "bb");
        t_done(0, 1);
        t_done(1, 1);
        counters = json_object_get(fake_core.figures, "counters");
        cr_assert_eq(json_integer_value(json_object_get(counters,
                         "host_probe_done")), 2, "request %d", k);
        cr_assert_eq(json_integer_value(json_object_get(counters,
                         "host_probe_started")), 1, "request %d", k);
        t_teardown();
        if (k == 0) {
            /* The totals are the engine's: keep them across requests. */
            cr_assert_eq(t_total("host_probe_done"), 2);
            t_setup();
        }
    }
    cr_assert_eq(t_total("host_probe_done"), 4);
    cr_assert_eq(t_total("host_probe_started"), 2);
    cr_assert_eq(t_total("host_probe_destroyed"), 2);
    t_setup();      /* for the fixture's teardown */
}


Test(host, a_failed_trace_does_not_win)
{
    tg_oa_error_t  err;
    json_t        *doc, *tg;

    cr_assert_eq(t_start("host_probe n=2", &err), 0, "%s", err.message);
    t_delta(0, "a longer answer that breaks");
    t_fail(0);
    t_delta(1, "short");
    t_done(1, 2);

    doc = t_answer();
    cr_assert_str_eq(t_content(doc), "short");
    tg = json_object_get(doc, "thinkgate");
    cr_assert_eq(json_integer_value(json_object_get(tg, "winner")), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(tg,
                     "counters"), "host_probe_done")), 1);
    json_decref(doc);
}


/* Trace i's last chunk with usage as the backend wrote it, and its end. */
static void
t_done_usage(size_t i, const char *usage)
{
    tg_trace_t  *t = t_trace(i);
    char         s[512];
    int          n;

    n = snprintf(s, sizeof(s), "{\"object\":\"chat.completion.chunk\","
                 "\"choices\":[{\"index\":0,\"delta\":{},"
                 "\"finish_reason\":\"stop\"}],\"usage\":%s}", usage);
    cr_assert_lt((size_t) n, sizeof(s));
    t->bytes += (size_t) n;
    tg_strategy_host.on_event(t, "message", s, (size_t) n);
    tg_strategy_host.on_event(t, "message", "[DONE]", 6);
    t->done_seen = 1;
    t->ended = 1;
    tg_strategy_host.on_trace_end(t);
}


/* The bytes after "usage": in the answer the client got, up to the
 * summary. */
static void
t_usage_text(char *out, size_t size)
{
    const char  *p = tg_buf_ptr(&fake_core.data), *u, *e;
    size_t       n = tg_buf_size(&fake_core.data);

    u = memmem(p, n, ",\"usage\":", 9);
    cr_assert_not_null(u, "no usage");
    u += 9;
    e = memmem(u, n - (size_t) (u - p), ",\"thinkgate\":", 13);
    cr_assert_not_null(e, "no summary after the usage");
    cr_assert_lt((size_t) (e - u), size);
    memcpy(out, u, (size_t) (e - u));
    out[e - u] = '\0';
}


Test(host, the_answers_usage_is_the_backends_own_with_only_the_counts_set)
{
    static const struct {
        const char  *backend;
        const char  *client;
    } cases[] = {
        /* counts that agree, no space: the very text */
        { "{\"prompt_tokens\":10,\"completion_tokens\":2,"
          "\"total_tokens\":12,\"prompt_tokens_details\":"
          "{\"cached_tokens\":0}}",
          "{\"prompt_tokens\":10,\"completion_tokens\":2,"
          "\"total_tokens\":12,\"prompt_tokens_details\":"
          "{\"cached_tokens\":0}}" },
        /* space between members goes, a value's own stays */
        { "{ \"prompt_tokens\": 10, \"completion_tokens\": 2,"
          " \"total_tokens\": 12, \"x\": [1, 2] }",
          "{\"prompt_tokens\":10,\"completion_tokens\":2,"
          "\"total_tokens\":12,\"x\":[1, 2]}" },
        /* a total that does not add up is set, in its place */
        { "{\"prompt_tokens\":10,\"total_tokens\":99,"
          "\"completion_tokens\":2}",
          "{\"prompt_tokens\":10,\"total_tokens\":12,"
          "\"completion_tokens\":2}" },
        /* no total: added after the rest */
        { "{\"prompt_tokens\":10,\"completion_tokens\":2}",
          "{\"prompt_tokens\":10,\"completion_tokens\":2,"
          "\"total_tokens\":12}" },
    };
    tg_oa_error_t  err;
    char           got[512];
    size_t         k;

    for (k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        cr_assert_eq(t_start("host_probe n=1", &err), 0, "%s",
                     err.message);
        t_delta(0, "42");
        t_done_usage(0, cases[k].backend);
        t_usage_text(got, sizeof(got));
        cr_assert_str_eq(got, cases[k].client, "case %zu", k);
        t_teardown();
        t_setup();
    }
}


Test(host, a_later_request_starts_from_empty_traces)
{
    tg_oa_error_t  err;
    json_t        *doc, *usage;

    /* A first request whose traces fill their buffers, then ends; its
     * freed traces may be kept and handed to the next request. */
    cr_assert_eq(t_start("host_probe n=2", &err), 0, "%s", err.message);
    t_delta(0, "a first answer, long enough to be noticed");
    t_delta(1, "another first answer");
    t_done_usage(0, "{\"prompt_tokens\":10,\"completion_tokens\":9,"
                 "\"total_tokens\":19,\"extra\":1}");
    t_done(1, 4);
    t_end_request();

    cr_assert_eq(t_start("host_probe n=1", &err), 0, "%s", err.message);
    t_delta(0, "x");
    t_done(0, 1);
    doc = t_answer();
    cr_assert_str_eq(t_content(doc), "x");
    usage = json_pack("{s:i, s:i, s:i}", "prompt_tokens", 10,
                      "completion_tokens", 1, "total_tokens", 11);
    cr_assert(json_equal(json_object_get(doc, "usage"), usage),
              "usage is not the second request's own");
    json_decref(usage);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(doc,
                     "thinkgate"), "tokens")), 1);
    json_decref(doc);
}


Test(host, client_gone_cancels_the_traces_and_answers_nothing)
{
    tg_oa_error_t  err;

    cr_assert_eq(t_start("host_probe n=2", &err), 0, "%s", err.message);
    t_delta(0, "partial");

    tg_strategy_host.on_cancel(&t_req);
    cr_assert_eq(t_total("host_probe_cancelled"), 1);
    /* Core closes the request next: the host cancels what still runs. */
    tg_strategy_host.destroy(&t_req);
    cr_assert_eq(fake_core.cancelled[0], 1);
    cr_assert_eq(fake_core.cancelled[1], 1);
    cr_assert_eq(t_total("host_probe_destroyed"), 1);
    cr_assert_eq(t_total("host_probe_done"), 0);
    cr_assert_eq(fake_core.head_status, 0);
    cr_assert(!fake_core.ended && !fake_core.errored,
              "output after the client left");
}


Test(host, counter_add_req_refuses_what_it_cannot_count)
{
    tg_oa_error_t     err;
    tg_plugin_req_t  *req;

    cr_assert_eq(t_start("host_probe n=1", &err), 0, "%s", err.message);
    req = tg__host_preq(&t_req);

    cr_assert_eq(tg_host_api.counter_add_req(NULL, "x", 1), -EINVAL);
    cr_assert_eq(tg_host_api.counter_add_req(req, "Not-A-Name", 1),
                 -EINVAL);
    cr_assert(strstr(tg_host_api.last_error(req), "Not-A-Name") != NULL,
              "%s", tg_host_api.last_error(req));
    cr_assert_eq(t_total("Not-A-Name"), 0);
    /* "counters" in the summary is the host's. */
    cr_assert_eq(tg_host_api.summary_int(req, "counters", 1), -EPERM);

    /* The old entry, called outside the request's callbacks, counts the
     * totals only. */
    tg_host_api.counter_add("host_probe_extra", 2);
    cr_assert_eq(tg_host_api.counter_add_req(req, "host_probe_extra", 3),
                 0);
    cr_assert_eq(t_total("host_probe_extra"), 5);

    t_delta(0, "x");
    t_done(0, 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(
                     fake_core.figures, "counters"), "host_probe_extra")),
                 3);
}


/* The client's bytes so far, as a string. */
static const char *
t_out(void)
{
    return tg_buf_size(&fake_core.data) ? tg_buf_cstr(&fake_core.data) : "";
}


Test(host, a_live_trace_streams_to_the_client_as_it_comes)
{
    tg_oa_error_t  err;
    const char    *out, *last;
    json_t        *doc;
    json_error_t   jerr;

    cr_assert_eq(t_start_as("host_probe live=on", 1, &err), 0, "%s",
                 err.message);
    cr_assert_eq(fake_core.ntraces, 1);
    cr_assert(json_is_true(json_object_get(t_trace(0)->body, "stream")));

    /* Each delta goes out as it arrives, before the trace ends. */
    t_delta(0, "forty");
    cr_assert_eq(fake_core.head_status, 200);
    cr_assert(strstr(t_out(), "\"content\":\"forty\"") != NULL, "%s",
              t_out());
    t_delta(0, "-two");
    cr_assert(strstr(t_out(), "\"content\":\"-two\"") != NULL, "%s",
              t_out());
    cr_assert(!fake_core.ended);

    t_done(0, 2);
    out = t_out();
    cr_assert(fake_core.ended, "no END");
    cr_assert(strstr(out, "\"finish_reason\":\"stop\"") != NULL, "%s",
              out);
    cr_assert_str_eq(out + strlen(out) - 14, "data: [DONE]\n\n");

    /* The last chunk before [DONE] carries the summary, as END's
     * figures. */
    last = strstr(out, "data: [DONE]");
    while (last > out && last[-1] == '\n') {
        last--;
    }
    while (last > out && !(last[-1] == '\n' && strncmp(last, "data: ", 6)
                                                 == 0))
    {
        last--;
    }
    doc = json_loadb(last + 6, strcspn(last + 6, "\n"), 0, &jerr);
    cr_assert_not_null(doc, "%s: %s", jerr.text, last);
    cr_assert(json_equal(json_object_get(doc, "thinkgate"),
                         fake_core.figures), "%s", last);
    json_decref(doc);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(
                     fake_core.figures, "counters"), "host_probe_done")), 1);
    cr_assert_eq(json_integer_value(json_object_get(fake_core.figures,
                                                    "traces_started")), 1);
}


static void
t_text(tg_loc_strategy_t *s, const char *text)
{
    if (s->parsed != NULL) {
        s->parsed_free(s->parsed);
        s->parsed = NULL;
    }
    s->text = text;
}


/*
 * A location's thinkgate_strategy is checked when a worker registers: a
 * text its plugin refuses names itself, where nginx read it and why; one
 * that passes is kept parsed with the generation, and a request with
 * that text runs it, also after its plugin was reloaded (the options are
 * checked again against the new version's table).
 */
Test(host, location_strategies_are_checked_at_registration)
{
    tg_generation_t    g;
    tg_loc_strategy_t  s[2];
    tg_oa_error_t      err;
    char               msg[240];
    size_t             i;

    memset(&g, 0, sizeof(g));
    memset(s, 0, sizeof(s));
    g.strategies = s;
    g.nstrategies = 2;
    s[0].text = "host_probe n=3";
    s[0].where = "location /a/ at t.conf:1";
    s[1].text = "host_probe n=99";
    s[1].where = "location /b/ at t.conf:2";

    cr_assert_eq(tg_host_check_strategies(t_engine.plugins, &g, msg,
                                          sizeof(msg)), -EINVAL);
    cr_assert(strstr(msg, "thinkgate_strategy \"host_probe n=99\" "
                     "(location /b/ at t.conf:2): option 'n'") != NULL,
              "%s", msg);
    /* parsed once: another text needs its entry afresh */
    t_text(&s[1], "no_such_strategy");
    cr_assert_eq(tg_host_check_strategies(t_engine.plugins, &g, msg,
                                          sizeof(msg)), -ENOENT);
    cr_assert(strstr(msg, "\"no_such_strategy\" (location /b/") != NULL,
              "%s", msg);
    t_text(&s[1], "host_probe nn=1");
    cr_assert_eq(tg_host_check_strategies(t_engine.plugins, &g, msg,
                                          sizeof(msg)), -EINVAL);
    cr_assert(strstr(msg, "unknown option 'nn'") != NULL, "%s", msg);

    t_text(&s[1], "host_probe live=on");
    cr_assert_eq(tg_host_check_strategies(t_engine.plugins, &g, msg,
                                          sizeof(msg)), 0, "%s", msg);
    cr_assert_not_null(s[0].parsed);
    cr_assert_not_null(s[1].parsed);

    /* A request of this generation runs the location's options. */
    t_gen = &g;
    cr_assert_eq(t_start("host_probe n=3", &err), 0, "%s", err.message);
    cr_assert_eq(fake_core.ntraces, 3);
    tg_strategy_host.destroy(&t_req);
    tg_meta_free(&t_req.meta);
    tg_oa_request_free(&t_req.oa);
    fake_core_reset();

    /* A new version of the plugin: the options pass its table again. */
    cr_assert_eq(tg_plugin_reload(t_engine.plugins, "host_probe", msg,
                                  sizeof(msg)), 0, "%s", msg);
    cr_assert_eq(t_start("host_probe n=3", &err), 0, "%s", err.message);
    cr_assert_eq(fake_core.ntraces, 3);
    tg_strategy_host.destroy(&t_req);

    for (i = 0; i < 2; i++) {
        s[i].parsed_free(s[i].parsed);
    }
}


/* Client bodies as jansson writes them (compact, keys in order), each
 * with members a trace drops, sets or keeps. */
static const struct {
    int          endpoint;
    const char  *body;
} t_bodies[] = {
    { TG_OA_CHAT, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
      "\"content\":\"hi\"}],\"n\":3,\"best_of\":2,\"thinkgate\":null,"
      "\"max_completion_tokens\":50,\"stream_options\":{\"include_usage\":"
      "false},\"seed\":7,\"temperature\":0.5,\"stream\":false,"
      "\"logprobs\":false,\"top_p\":0.90000000000000002}" },
    { TG_OA_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"}],"
      "\"stream\":true,\"user\":\"u\\\"v\",\"reasoning_effort\":\"low\"}" },
    { TG_OA_COMPLETIONS, "{\"model\":\"m\",\"prompt\":\"p\",\"logprobs\":3,"
      "\"max_tokens\":9,\"stream\":true,\"echo\":false}" },
    { TG_OA_COMPLETIONS, "{\"prompt\":[\"a\",\"b\"],\"logprobs\":null,"
      "\"max_completion_tokens\":4}" },
};


/* The trace's body as the host writes it from the client's text, against
 * the tree path's dump, for one spec. */
static void
t_check_text(size_t b, const tg_trace_spec_t *spec, uint32_t index,
    int whole)
{
    tg_host_req_t    *hr = t_req.strategy_data;
    tg_trace_text_t   text;
    tg_buf_t          dump = { 0 };
    json_t           *tree;

    tree = tg__host_trace_body_as(hr, spec, index, whole);
    cr_assert_not_null(tree);
    cr_assert_eq(tg_json_dump(&dump, tree), 0);
    json_decref(tree);
    cr_assert_eq(tg__host_trace_text(hr, spec, index, whole, &text), 0);
    cr_assert(text.len == tg_buf_size(&dump)
              && memcmp(text.p, tg_buf_ptr(&dump), text.len) == 0,
                 "body %zu, max_tokens %d, temperature %g, seed_mode %d, "
                 "flags %x, index %u, whole %d:\n%.*s\n%.*s", b,
                 spec->max_tokens, spec->temperature, spec->seed_mode,
                 spec->flags, index, whole, (int) text.len, text.p,
                 (int) tg_buf_size(&dump), tg_buf_ptr(&dump));
    /* The model's place: its value, or the closing brace. */
    if (t_req.oa.model != NULL) {
        cr_assert_eq(text.model_len, 3);
        cr_assert_eq(memcmp(text.p + text.model_at, "\"m\"", 3), 0);
    } else {
        cr_assert_eq(text.model_len, 0);
        cr_assert_eq(text.model_at, text.len - 1);
        cr_assert_eq(text.p[text.model_at], '}');
    }
    free(text.p);
    tg_buf_free(&dump);
}


Test(host, a_trace_body_written_from_the_clients_text_is_the_tree_paths)
{
    static const int32_t  max_tokens[] = { 0, 100 };
    static const double   temperature[] = { -1, 0.25 };
    tg_trace_spec_t       spec;
    tg_oa_error_t         err;
    size_t                b, i;

    for (b = 0; b < sizeof(t_bodies) / sizeof(t_bodies[0]); b++) {
        cr_assert_eq(t_start_body("host_probe n=1", t_bodies[b].endpoint,
                                  t_bodies[b].body, 1, &err), 0, "%s",
                     err.message);
        for (i = 0; i < 64; i++) {
            memset(&spec, 0, sizeof(spec));
            spec.max_tokens = max_tokens[i & 1];
            spec.temperature = temperature[(i >> 1) & 1];
            spec.seed_mode = (i >> 2) & 1;
            spec.seed = 42;
            spec.flags = (i >> 3) & 1 ? TG_TRACE_F_LOGPROBS : 0;
            t_check_text(b, &spec, (uint32_t) ((i >> 4) & 1) * 3,
                         (int) (i >> 5) & 1);
        }
        t_end_request();
    }
}


Test(host, a_trace_body_goes_by_the_tree_when_the_text_cannot_say_it)
{
    tg_host_req_t    *hr;
    tg_trace_spec_t   spec;
    tg_trace_text_t   text;
    tg_oa_error_t     err;

    cr_assert_eq(t_start_body("host_probe n=1", t_bodies[0].endpoint,
                              t_bodies[0].body, 1, &err), 0, "%s",
                 err.message);
    /* The request's trace went out as text, read back the same. */
    cr_assert_not_null(t_trace(0)->text.p);
    cr_assert(json_is_true(json_object_get(t_trace(0)->body, "stream")));
    cr_assert_null(json_object_get(t_trace(0)->body, "thinkgate"));
    hr = t_req.strategy_data;
    memset(&spec, 0, sizeof(spec));
    spec.temperature = -1;
    spec.messages_json = "[]";
    cr_assert_eq(tg__host_trace_text(hr, &spec, 0, 0, &text), 1);
    spec.messages_json = NULL;
    spec.assistant_prefix = "so far";
    spec.assistant_prefix_len = 6;
    cr_assert_eq(tg__host_trace_text(hr, &spec, 0, 0, &text), 1);
    spec.assistant_prefix = NULL;
    /* A body changed after parsing (a session's history) has no text. */
    cr_assert_not_null(tg_oa_body(&t_req.oa));
    tg_oa_body_changed(&t_req.oa);
    cr_assert_eq(tg__host_trace_text(hr, &spec, 0, 0, &text), 1);
    t_end_request();

    /* Without its text kept, a request's traces go by the tree. */
    cr_assert_eq(t_start_body("host_probe n=1", t_bodies[0].endpoint,
                              t_bodies[0].body, 0, &err), 0, "%s",
                 err.message);
    cr_assert_null(t_trace(0)->text.p);
}
