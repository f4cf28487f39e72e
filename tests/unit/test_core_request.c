/*
 * core/request.c on its own: the layers around it are fakes.  Below it,
 * the transport (tg_conn_write and its id table), the traces and the
 * configuration generations record what the request asks of them; above
 * it, the request hooks (core/request.h) stand for serve and a fake
 * strategy for the plugin host.  What is checked is what a worker would
 * see: the frames a request writes, in order, under credit and ring room,
 * and that a request leaves its connection and frees what it holds on
 * every way out (answered, cancelled, connection gone, bad frame).
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/request.h"
#include "core/strategy.h"
#include "core/trace.h"
#include "log.h"


/* ---- fakes of the layers below -------------------------------------- */

typedef struct {
    uint16_t    type;
    uint64_t    id;
    uint8_t    *p;
    size_t      n;
} frame_t;

static frame_t       frames[64];
static size_t        nframes;
static int           ring_full;         /* tg_conn_write says -EAGAIN */
static tg_stream_t  *adopted[8];
static size_t        nadopted;
static tg_stream_t  *forgotten[8];
static size_t        nforgotten;
static size_t        nblocked;
static int           gen_refs;
static size_t        traces_cancelled, traces_freed, traces_paused;
static char          events[512];       /* hooks and strategy, in order */

static void
event(const char *what)
{
    strcat(events, what);
    strcat(events, " ");
}


int
tg_conn_write(tg_conn_t *conn, uint16_t type, uint16_t flags, uint64_t id,
    const void *p1, size_t l1, const void *p2, size_t l2)
{
    frame_t  *f;

    (void) flags;
    if (conn->state != TG_CONN_ACTIVE) {
        return -EPIPE;
    }
    if (ring_full) {
        return -EAGAIN;
    }
    cr_assert_lt(nframes, sizeof(frames) / sizeof(frames[0]));
    f = &frames[nframes++];
    f->type = type;
    f->id = id;
    f->n = l1 + l2;
    f->p = malloc(f->n + 1);
    cr_assert_not_null(f->p);
    if (l1 > 0) {
        memcpy(f->p, p1, l1);
    }
    if (l2 > 0) {
        memcpy(f->p + l1, p2, l2);
    }
    f->p[f->n] = '\0';
    return 0;
}


void
tg_conn_adopt(tg_conn_t *conn, tg_stream_t *s)
{
    (void) conn;
    adopted[nadopted++] = s;
}


void
tg_conn_block(tg_conn_t *conn, tg_stream_t *s)
{
    (void) conn;
    if (!s->blocked) {
        s->blocked = 1;
        nblocked++;
    }
}


void
tg_conn_forget(tg_conn_t *conn, tg_stream_t *s)
{
    (void) conn;
    forgotten[nforgotten++] = s;
    s->blocked = 0;
}


void
tg_generation_ref(tg_generation_t *g)
{
    (void) g;
    gen_refs++;
}


void
tg_generation_release(tg_generation_t *g)
{
    (void) g;
    gen_refs--;
}


void
tg_trace_cancel(tg_trace_t *t)
{
    (void) t;
    traces_cancelled++;
}


void
tg_trace_pause(tg_trace_t *t, int paused)
{
    (void) t;
    (void) paused;
    traces_paused++;
}


void
tg_trace_free(tg_trace_t *t)
{
    traces_freed++;
    free(t);
}


void
tg_trace_spares_free(void)
{
    /* this fake keeps no spares */
}


/* ---- fakes of the layers above -------------------------------------- */

static tg_request_t  *ready;            /* the last request on_ready saw */
static size_t         nready;
static char           tapped[1024];     /* what the output tap saw */
static size_t         ntapped;          /* bytes, all of them counted */
static const char    *answer;           /* on_ready replies this, or waits */

static void
fake_on_cancel(tg_request_t *r)
{
    (void) r;
    event("cancel");
}


static void
fake_on_deadline(tg_request_t *r)
{
    (void) r;
    event("deadline");
}


static void
fake_destroy(tg_request_t *r)
{
    cr_assert_not_null(r->strategy_data);
    free(r->strategy_data);
    r->strategy_data = NULL;
    event("destroy");
}


static const tg_strategy_t  fake_strategy = {
    .name = "fake",
    .on_cancel = fake_on_cancel,
    .on_deadline = fake_on_deadline,
    .destroy = fake_destroy,
};

static void
hook_ready(tg_request_t *r)
{
    ready = r;
    nready++;
    event("ready");
    r->strategy = &fake_strategy;
    r->strategy_data = malloc(16);
    if (answer != NULL) {
        cr_assert_eq(tg_request_reply(r, 200, "text/plain", answer,
                                      strlen(answer)), 0);
    }
}


static void
hook_output(tg_request_t *r, const char *p, size_t n)
{
    (void) r;
    if (ntapped + n <= sizeof(tapped)) {
        memcpy(tapped + ntapped, p, n);
    }
    ntapped += n;
}


static void hook_close(tg_request_t *r)  { (void) r; event("close"); }
static void hook_closed(tg_request_t *r) { (void) r; event("closed"); }
static void hook_free(tg_request_t *r)   { (void) r; event("free"); }

static const tg_request_hooks_t  hooks = {
    .on_ready = hook_ready,
    .on_output = hook_output,
    .on_close = hook_close,
    .on_closed = hook_closed,
    .on_free = hook_free,
};


/* ---- the fixture ---------------------------------------------------- */

static uv_loop_t        loop;
static tg_engine_t      engine;
static tg_conn_t        conn;
static tg_generation_t  gen;

static void
setup(void)
{
    size_t  i;

    tg_log_level = TG_LOG_ERROR;
    for (i = 0; i < nframes; i++) {
        free(frames[i].p);
    }
    nframes = nadopted = nforgotten = nblocked = nready = ntapped = 0;
    ring_full = gen_refs = 0;
    traces_cancelled = traces_freed = traces_paused = 0;
    events[0] = '\0';
    ready = NULL;
    answer = "hello";

    cr_assert_eq(uv_loop_init(&loop), 0);
    memset(&engine, 0, sizeof(engine));
    engine.loop = &loop;
    engine.request_hooks = &hooks;
    cr_assert_eq(uv_idle_init(&loop, &engine.reaper), 0);
    engine.reaper.data = &engine;

    memset(&conn, 0, sizeof(conn));
    conn.engine = &engine;
    conn.state = TG_CONN_ACTIVE;
    conn.max_payload = 1 << 20;
    conn.gen = &gen;
}


static void
teardown(void)
{
    tg_request_reap(&engine);
    uv_close((uv_handle_t *) &engine.reaper, NULL);
    (void) uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0);
}


/* A REQUEST frame: meta_len, meta and body bytes (first), or body only. */
static int
request_frame(tg_stream_t *s, uint64_t id, const char *meta,
    const char *body, int more)
{
    static uint8_t   buf[4096];
    tg_frame_view_t  f;
    uint32_t         ml = meta ? (uint32_t) strlen(meta) : 0;
    size_t           n = 0;

    if (meta != NULL) {
        memcpy(buf, &ml, sizeof(ml));
        memcpy(buf + sizeof(ml), meta, ml);
        n = sizeof(ml) + ml;
    }
    memcpy(buf + n, body, strlen(body));
    n += strlen(body);

    f.len = (uint32_t) n;
    f.type = TG_FRAME_REQUEST;
    f.flags = more ? TG_FRAME_F_MORE : 0;
    f.id = id;
    f.payload = buf;
    return tg_request_frame(&conn, s, &f);
}


static int
control_frame(tg_stream_t *s, uint64_t id, uint16_t type, const void *p,
    uint32_t len)
{
    tg_frame_view_t  f;

    f.len = len;
    f.type = type;
    f.flags = 0;
    f.id = id;
    f.payload = p;
    return tg_request_frame(&conn, s, &f);
}


static const char  *meta = "{\"method\":\"POST\","
                           "\"uri\":\"/v1/chat/completions\"}";


TestSuite(core_request, .init = setup, .fini = teardown);


Test(core_request, assembled_answered_closed_freed)
{
    tg_head_t  h;

    cr_assert_eq(request_frame(NULL, 7, meta, "{\"mod", 1), 0);
    cr_assert_eq(nadopted, 1, "the new request joins the id table");
    cr_assert_eq(adopted[0]->id, 7);
    cr_assert_eq(gen_refs, 1, "it holds its generation");
    cr_assert_eq(nready, 0, "not ready while REQUEST frames are due");

    cr_assert_eq(request_frame(adopted[0], 7, NULL, "el\":1}", 0), 0);
    cr_assert_eq(nready, 1);
    cr_assert_str_eq(ready->meta.uri, "/v1/chat/completions");
    cr_assert_eq(tg_buf_size(&ready->body), strlen("{\"model\":1}"));
    cr_assert_eq(memcmp(tg_buf_ptr(&ready->body), "{\"model\":1}", 11), 0);

    /* The worker sees HEAD, DATA, END for id 7, in that order. */
    cr_assert_eq(nframes, 3);
    cr_assert_eq(frames[0].type, TG_FRAME_HEAD);
    cr_assert_eq(frames[0].id, 7);
    memcpy(&h, frames[0].p, sizeof(h));
    cr_assert_eq(h.status, 200);
    cr_assert_str_eq((char *) frames[0].p + sizeof(h),
                     "Content-Type: text/plain\r\n");
    cr_assert_eq(frames[1].type, TG_FRAME_DATA);
    cr_assert_str_eq((char *) frames[1].p, "hello");
    cr_assert_eq(frames[2].type, TG_FRAME_END);

    /* The tap saw the body; END closed the request: serve's hooks around
     * the strategy's destroy, and the request left its connection. */
    cr_assert_eq(ntapped, 5);
    cr_assert_eq(memcmp(tapped, "hello", 5), 0);
    cr_assert_str_eq(events, "ready close closed destroy ");
    cr_assert_eq(nforgotten, 1);
    cr_assert_eq(forgotten[0], adopted[0]);
    cr_assert(uv_is_active((uv_handle_t *) &engine.reaper),
              "the reaper is armed");

    /* Memory goes from the reaper, the generation with it. */
    tg_request_reap(&engine);
    cr_assert_str_eq(events, "ready close closed destroy free ");
    cr_assert_eq(gen_refs, 0);
    cr_assert_null(engine.reap);
}


/* A request freed by the reaper may come back as the next one (the
 * engine keeps a few): it starts as a new one would, its buffers empty,
 * whatever the last one left in them. */
Test(core_request, a_later_request_starts_empty)
{
    tg_request_t  *r;
    tg_head_t      h;

    answer = NULL;
    cr_assert_eq(request_frame(NULL, 7, meta, "{\"first\":true}", 0), 0);
    r = ready;
    cr_assert_eq(tg_request_head(r, 200, 0, "X-A: 1\r\n"), 0);
    ring_full = 1;              /* the answer stays in r->out */
    cr_assert_eq(tg_request_data(r, "left over", 9), 0);
    cr_assert_eq(tg_request_end_text(r, "a=1\n", 4), 0);
    control_frame(adopted[0], 7, TG_FRAME_CANCEL, NULL, 0);
    tg_request_reap(&engine);
    ring_full = 0;

    answer = "second";
    while (nframes > 0) {
        free(frames[--nframes].p);
    }
    cr_assert_eq(request_frame(NULL, 8, meta, "{}", 0), 0);
    cr_assert_eq(ready->id, 8);
    cr_assert_eq(tg_buf_size(&ready->body), 2);
    cr_assert_eq(memcmp(tg_buf_ptr(&ready->body), "{}", 2), 0);
    cr_assert_eq(ready->traces, NULL);
    cr_assert_eq(ready->head_sent, 1);
    cr_assert_eq(nframes, 3);
    memcpy(&h, frames[0].p, sizeof(h));
    cr_assert_str_eq((char *) frames[0].p + sizeof(h),
                     "Content-Type: text/plain\r\n");
    cr_assert_eq(frames[1].n, 6);
    cr_assert_eq(memcmp(frames[1].p, "second", 6), 0);
    cr_assert_eq(frames[2].type, TG_FRAME_END);
    cr_assert_eq(frames[2].n, 0, "no figures of the last request");
}


Test(core_request, data_waits_for_credit_and_room)
{
    static char  big[TG_INITIAL_WINDOW + 100];
    uint32_t     credit = 60;
    tg_stream_t *s;
    tg_request_t *r;

    answer = NULL;
    cr_assert_eq(request_frame(NULL, 3, meta, "{}", 0), 0);
    r = ready;
    s = adopted[0];

    memset(big, 'x', sizeof(big));
    cr_assert_eq(tg_request_head(r, 200, 0, NULL), 0);
    cr_assert_eq(tg_request_data(r, big, sizeof(big)), 0);
    cr_assert_eq(tg_request_end(r, NULL), 0);

    /* The initial window only: the rest and END wait for a WINDOW. */
    cr_assert_eq(nframes, 2);
    cr_assert_eq(frames[1].type, TG_FRAME_DATA);
    cr_assert_eq(frames[1].n, TG_INITIAL_WINDOW);
    cr_assert_eq(ntapped, sizeof(big), "the tap saw it all at once");

    /* 60 bytes of credit: 60 of the 100 left. */
    cr_assert_eq(control_frame(s, 3, TG_FRAME_WINDOW, &credit,
                               sizeof(credit)), 0);
    cr_assert_eq(nframes, 3);
    cr_assert_eq(frames[2].n, 60);

    /* The ring is full when the next credit comes: the request queues as
     * blocked, and room lets it write the rest and END. */
    ring_full = 1;
    credit = 1000;
    cr_assert_eq(control_frame(s, 3, TG_FRAME_WINDOW, &credit,
                               sizeof(credit)), 0);
    cr_assert_eq(nframes, 3);
    cr_assert_eq(nblocked, 1);
    cr_assert(s->blocked);

    ring_full = 0;
    s->blocked = 0;                 /* what the transport does before */
    tg_request_room(s);
    cr_assert_eq(nframes, 5);
    cr_assert_eq(frames[3].type, TG_FRAME_DATA);
    cr_assert_eq(frames[3].n, 40);
    cr_assert_eq(frames[4].type, TG_FRAME_END);
    cr_assert_eq(nforgotten, 1, "done: the request left its connection");
}


Test(core_request, tap_sees_every_data_byte, .description =
     "the output tap sees each tg_request_data call's bytes, in order")
{
    tg_request_t  *r;

    answer = NULL;
    cr_assert_eq(request_frame(NULL, 4, meta, "{}", 0), 0);
    r = ready;
    cr_assert_eq(tg_request_head(r, 200, 0, NULL), 0);
    cr_assert_eq(tg_request_data(r, "data: a\n\n", 9), 0);
    cr_assert_eq(tg_request_data(r, "", 0), 0);
    cr_assert_eq(tg_request_data(r, "data: b\n\n", 9), 0);
    cr_assert_eq(ntapped, 18);
    cr_assert_eq(memcmp(tapped, "data: a\n\ndata: b\n\n", 18), 0);
    cr_assert_eq(nframes, 3);
    cr_assert_str_eq((char *) frames[2].p, "data: b\n\n");

    /* After END nothing more goes out, nor through the tap. */
    cr_assert_eq(tg_request_end(r, NULL), 0);
    cr_assert_eq(tg_request_data(r, "late", 4), -EPIPE);
    cr_assert_eq(ntapped, 18);
}


Test(core_request, end_carries_figures_as_lines, .description =
     "END's payload: NAME=VALUE lines, names folded to [a-z0-9_], "
     "strings as they are up to a NUL, structured values as compact "
     "JSON, null empty, line breaks blanked")
{
    tg_request_t  *r;
    json_t        *fig;

    answer = NULL;
    cr_assert_eq(request_frame(NULL, 5, meta, "{}", 0), 0);
    r = ready;
    cr_assert_eq(tg_request_head(r, 200, 0, NULL), 0);
    fig = json_pack("{s:s, s:I, s:{s:[i,s]}, s:n, s:s#, s:f, s:b}",
                    "Strategy-Name", "a\nb\rc", "tokens", (json_int_t) 42,
                    "obj", "x", 1, "y\n", "none", "nul", "ab\0cd",
                    (size_t) 5, "r", 0.5, "t", 1);
    cr_assert_not_null(fig);
    cr_assert_eq(tg_request_end(r, fig), 0);
    cr_assert_eq(nframes, 2);
    cr_assert_eq(frames[1].type, TG_FRAME_END);
    cr_assert_str_eq((char *) frames[1].p,
                     "strategy_name=a b c\n"
                     "tokens=42\n"
                     "obj={\"x\":[1,\"y\\n\"]}\n"
                     "none=\n"
                     "nul=ab\n"
                     "r=0.5\n"
                     "t=true\n");
}


Test(core_request, cancel_stops_strategy_and_traces)
{
    tg_request_t  *r;
    tg_trace_t    *t;

    answer = NULL;
    cr_assert_eq(request_frame(NULL, 9, meta, "{}", 0), 0);
    r = ready;
    t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    t->req = r;
    r->traces = t;

    /* A CANCEL for another id is nothing to this request. */
    cr_assert_eq(control_frame(NULL, 10, TG_FRAME_CANCEL, NULL, 0), 0);
    cr_assert_str_eq(events, "ready ");

    cr_assert_eq(control_frame(adopted[0], 9, TG_FRAME_CANCEL, NULL, 0), 0);
    cr_assert_str_eq(events, "ready cancel close closed destroy ");
    cr_assert_eq(traces_cancelled, 1);
    cr_assert_eq(traces_freed, 0, "a trace is freed by the reaper only");
    cr_assert_eq(nforgotten, 1);
    cr_assert_eq(nframes, 0, "a cancelled request writes nothing");
    cr_assert_eq(tg_request_head(r, 200, 0, NULL), -EPIPE);

    tg_request_reap(&engine);
    cr_assert_eq(traces_freed, 1);
    cr_assert_eq(gen_refs, 0);
}


Test(core_request, connection_gone_closes_without_cancel)
{
    answer = NULL;
    cr_assert_eq(request_frame(NULL, 11, meta, "{}", 0), 0);
    tg_request_conn_gone(adopted[0]);
    /* The client did not cancel: the strategy is destroyed, not told. */
    cr_assert_str_eq(events, "ready close closed destroy ");
    cr_assert_eq(nforgotten, 1);
    cr_assert_null(ready->conn);
}


Test(core_request, bad_frames)
{
    uint8_t   shortp[2] = { 0, 0 };
    uint32_t  credit = 5;
    tg_head_t h;

    /* meta longer than the frame: a 500 ERROR, never on_ready. */
    cr_assert_eq(control_frame(NULL, 21, TG_FRAME_REQUEST, "\xff\0\0\0{}",
                               6), 0);
    cr_assert_eq(nready, 0);
    cr_assert_eq(nframes, 1);
    cr_assert_eq(frames[0].type, TG_FRAME_ERROR);
    cr_assert_eq(frames[0].id, 21);
    memcpy(&h, frames[0].p, sizeof(h));
    cr_assert_eq(h.status, 500);
    cr_assert_eq(nforgotten, 1, "the ERROR ended the request");

    /* A WINDOW of the wrong size is a protocol error (the connection
     * closes), whoever it is for. */
    cr_assert_eq(control_frame(NULL, 22, TG_FRAME_WINDOW, shortp,
                               sizeof(shortp)), -EPROTO);
    cr_assert_eq(control_frame(NULL, 22, TG_FRAME_WINDOW, &credit,
                               sizeof(credit)), 0);

    /* An unknown frame type is ignored. */
    cr_assert_eq(control_frame(NULL, 23, 99, NULL, 0), 0);
    cr_assert_eq(nframes, 1);
}


Test(core_request, meta_not_json_is_400_or_500)
{
    tg_head_t  h;

    cr_assert_eq(request_frame(NULL, 31, "[1,2]", "", 0), 0);
    cr_assert_eq(nready, 0);
    cr_assert_eq(nframes, 1);
    cr_assert_eq(frames[0].type, TG_FRAME_ERROR);
    memcpy(&h, frames[0].p, sizeof(h));
    cr_assert_eq(h.status, 500);

    /* Not UTF-8 in the meta is the client's: 400 invalid_encoding. */
    cr_assert_eq(request_frame(NULL, 32, "{\"uri\":\"\xc3\x28\"}", "", 0), 0);
    cr_assert_eq(nframes, 2);
    memcpy(&h, frames[1].p, sizeof(h));
    cr_assert_eq(h.status, 400);
    cr_assert_not_null(strstr((char *) frames[1].p + sizeof(h),
                              "invalid_encoding"));
}


Test(core_request, deadline_stops_everything_and_answers_504)
{
    tg_request_t  *r;
    tg_trace_t    *t;
    tg_head_t      h;

    answer = NULL;
    cr_assert_eq(request_frame(NULL, 41, meta, "{}", 0), 0);
    r = ready;
    t = calloc(1, sizeof(*t));
    cr_assert_not_null(t);
    t->req = r;
    r->traces = t;

    r->deadline_ms = 5;
    cr_assert_eq(tg_request_deadline_start(r), 0);
    cr_assert_not_null(r->deadline);
    cr_assert_eq(tg_request_deadline_start(r), 0, "armed once");

    /* The loop runs until the timer fires and the request is closed (its
     * timer handle closed, the reaper armed then run). */
    (void) uv_run(&loop, UV_RUN_DEFAULT);

    cr_assert_str_eq(events, "ready deadline close closed destroy free ");
    cr_assert_geq(traces_cancelled, 1);
    cr_assert_eq(nframes, 1);
    cr_assert_eq(frames[0].type, TG_FRAME_ERROR);
    memcpy(&h, frames[0].p, sizeof(h));
    cr_assert_eq(h.status, 504);
    cr_assert_not_null(strstr((char *) frames[0].p + sizeof(h),
                              "deadline_exceeded"));
    cr_assert_eq(traces_freed, 1, "the reaper ran from the loop");
    cr_assert_eq(gen_refs, 0);
}
