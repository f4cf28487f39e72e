/*
 * Continuous batching.  Requests wait in a FIFO until their n streams fit
 * under --max-concurrency, spend their prefill time, then join the running
 * batch.  One timer drives decode steps: each step every running stream
 * gets its next --tokens-per-step tokens, and each streamed request gets
 * one evhttp write for all its choices.  Step time grows with the batch;
 * --speed scales every delay and 0 removes them (the order of events
 * stays the same because steps still alternate with the event loop).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>

#include "sim.h"

/* A connection with this much unsent output skips steps: a slow reader
 * must not make the sim buffer a whole trace per stream. */
#define TG_SIM_BACKPRESSURE (1u << 20)

static void tg_sim_step_cb(evutil_socket_t fd, short what, void *arg);
static void tg_sim_prefill_cb(evutil_socket_t fd, short what, void *arg);
static void tg_sim_close_cb(struct evhttp_connection *conn, void *arg);
static void tg_sim_schedule(tg_sim_t *sim, int after_step);
static void tg_sim_admit_queued(tg_sim_t *sim);
static double tg_sim_swap_ms(tg_sim_t *sim, const tg_sim_req_t *req);
static void tg_sim_finish(tg_sim_t *sim, tg_sim_req_t *req);
static void tg_sim_cancel(tg_sim_t *sim, tg_sim_req_t *req);

double
tg_sim_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + (double) ts.tv_nsec / 1e6;
}

static void
tg_sim_list_push(tg_sim_list_t *l, tg_sim_req_t *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

static void
tg_sim_list_remove(tg_sim_list_t *l, tg_sim_req_t *r)
{
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
}

int
tg_sim_init(tg_sim_t *sim, struct event_base *base)
{
    sim->base = base;
    sim->step_ev = evtimer_new(base, tg_sim_step_cb, sim);
    if (sim->step_ev == NULL)
        return -ENOMEM;
    if (sim->opt.prefix_cache_blocks > 0) {
        sim->cache = tg_sim_cache_new((size_t) sim->opt.prefix_cache_blocks);
        if (sim->cache == NULL) {
            event_free(sim->step_ev);
            sim->step_ev = NULL;
            return -ENOMEM;
        }
    }
    return 0;
}

static void
tg_sim_free_list(tg_sim_list_t *l)
{
    while (l->head != NULL) {
        tg_sim_req_t *r = l->head;

        tg_sim_list_remove(l, r);
        if (r->conn != NULL && !r->closed)
            evhttp_connection_set_closecb(r->conn, NULL, NULL);
        tg_sim_req_free(r);
    }
}

void
tg_sim_destroy(tg_sim_t *sim)
{
    tg_sim_free_list(&sim->queue);
    tg_sim_free_list(&sim->prefill);
    tg_sim_free_list(&sim->running);
    if (sim->step_ev != NULL)
        event_free(sim->step_ev);
    sim->step_ev = NULL;
    tg_sim_cache_free(sim->cache);
    sim->cache = NULL;
    tg_sim_judge_free(sim);
}

tg_sim_req_t *
tg_sim_req_new(tg_sim_t *sim, int n)
{
    tg_sim_req_t *r = calloc(1, sizeof(*r) + (size_t) n * sizeof(r->choices[0]));

    if (r == NULL)
        return NULL;
    r->out = evbuffer_new();
    if (r->out == NULL) {
        free(r);
        return NULL;
    }
    r->sim = sim;
    r->n = n;
    return r;
}

void
tg_sim_req_free(tg_sim_req_t *req)
{
    int i;

    if (req == NULL)
        return;
    for (i = 0; i < req->n; i++) {
        tg_sim_plan_free(&req->choices[i].own);
        free(req->choices[i].own_text);
    }
    if (req->prefill_ev != NULL)
        event_free(req->prefill_ev);
    evbuffer_free(req->out);
    free(req->model);
    free(req);
}

void
tg_sim_choice_limit(tg_sim_choice_t *c, uint32_t max_tokens,
                    const char *const *stops, size_t n_stops)
{
    const tg_sim_plan_t *p = c->plan;
    size_t i, stop_at = p->len;
    int stopped = 0;

    c->end = p->n;
    c->end_byte = p->len;
    c->finish_length = p->finish_length;
    /* vLLM ends at the first stop string and leaves it out of the text. */
    for (i = 0; i < n_stops; i++) {
        size_t sl = strlen(stops[i]);
        const char *hit = sl ? memmem(p->text, p->len, stops[i], sl) : NULL;

        if (hit != NULL && (size_t) (hit - p->text) < stop_at) {
            stop_at = (size_t) (hit - p->text);
            stopped = 1;
        }
    }
    if (stopped) {
        uint32_t t = 0;

        while (t < p->n && p->cuts[t + 1] <= stop_at)
            t++;
        c->end = t < p->n ? t + 1 : p->n;
        c->end_byte = stop_at;
        c->finish_length = 0;
    }
    if (max_tokens > 0 && max_tokens < c->end) {
        c->end = max_tokens;
        c->end_byte = p->cuts[max_tokens];
        c->finish_length = 1;
    }
}

int
tg_sim_submit(tg_sim_t *sim, tg_sim_req_t *req)
{
    int fits = sim->queue.head == NULL
        && (sim->running_streams + req->n <= sim->opt.max_concurrency
            || sim->running_streams == 0);

    if (!fits && sim->queued_streams + req->n > sim->opt.max_queue)
        return -EAGAIN;
    req->n_active = req->n;
    sim->open_streams += req->n;
    if ((unsigned long long) sim->open_streams > sim->stats.peak_open_streams)
        sim->stats.peak_open_streams = (unsigned long long) sim->open_streams;
    if (req->stream && req->http != NULL) {
        struct evkeyvalq *h = evhttp_request_get_output_headers(req->http);

        /* Headers go out at once, as vLLM's do; chunks follow. */
        evhttp_add_header(h, "Content-Type", "text/event-stream");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        evhttp_send_reply_start(req->http, 200, "OK");
    }
    if (req->conn != NULL)
        evhttp_connection_set_closecb(req->conn, tg_sim_close_cb, req);
    req->state = TG_SIM_QUEUED;
    tg_sim_list_push(&sim->queue, req);
    sim->queued_streams += req->n;
    tg_sim_admit_queued(sim);
    return 0;
}

static void
tg_sim_start_running(tg_sim_t *sim, tg_sim_req_t *req)
{
    int i;

    req->state = TG_SIM_RUNNING;
    tg_sim_list_push(&sim->running, req);
    if (req->stream && req->kind == TG_SIM_CHAT) {
        for (i = 0; i < req->n; i++)
            (void) tg_sim_render_role(req, i, req->out);
        if (req->http != NULL)
            evhttp_send_reply_chunk(req->http, req->out);
        evbuffer_drain(req->out, evbuffer_get_length(req->out));
    }
    if (!sim->step_pending)
        tg_sim_schedule(sim, 0);
}

/* --swap-ms, as a server holding one model at a time behaves (llama-swap,
 * Ollama with one slot): a request for another model waits until the
 * running streams have drained (-1: not admitted yet, the FIFO keeps its
 * order), then the load takes MS during which every admitted request
 * waits; the first request loads for free (the server starts with it).
 * Returns the delay before this request's prefill. */
static double
tg_sim_swap_ms(tg_sim_t *sim, const tg_sim_req_t *req)
{
    const char *m = req->model != NULL ? req->model : "";
    double now = tg_sim_now_ms();

    if (sim->opt.swap_ms <= 0)
        return 0;
    if (sim->loaded_model[0] != '\0' && strcmp(sim->loaded_model, m) != 0) {
        if (sim->running_streams > 0)
            return -1;
        sim->stats.model_swaps++;
        sim->loaded_at = now + (sim->opt.speed > 0
                                ? sim->opt.swap_ms / sim->opt.speed : 0);
    }
    snprintf(sim->loaded_model, sizeof(sim->loaded_model), "%s", m);
    return sim->loaded_at > now ? sim->loaded_at - now : 0;
}

static void
tg_sim_admit_queued(tg_sim_t *sim)
{
    while (sim->queue.head != NULL) {
        tg_sim_req_t *req = sim->queue.head;
        double ms, swap;

        if (sim->running_streams + req->n > sim->opt.max_concurrency
            && sim->running_streams > 0)
            break;
        swap = tg_sim_swap_ms(sim, req);
        if (swap < 0)
            break;
        tg_sim_list_remove(&sim->queue, req);
        sim->queued_streams -= req->n;
        sim->running_streams += req->n;
        ms = sim->opt.speed > 0
            ? (double) (req->prompt_tokens - req->cached_tokens) / 1000.0
              * sim->opt.prefill_ms_per_1k / sim->opt.speed
            : 0;
        ms += swap;
        if (ms > 0) {
            struct timeval tv;

            if (req->prefill_ev == NULL)
                req->prefill_ev = evtimer_new(sim->base, tg_sim_prefill_cb,
                                              req);
            if (req->prefill_ev != NULL) {
                tv.tv_sec = (time_t) (ms / 1000);
                tv.tv_usec = (suseconds_t) ((ms - tv.tv_sec * 1000.0) * 1000);
                if (evtimer_add(req->prefill_ev, &tv) == 0) {
                    req->state = TG_SIM_PREFILL;
                    tg_sim_list_push(&sim->prefill, req);
                    continue;
                }
            }
            /* No timer: skip the prefill delay rather than stall. */
        }
        tg_sim_start_running(sim, req);
    }
}

static void
tg_sim_prefill_cb(evutil_socket_t fd, short what, void *arg)
{
    tg_sim_req_t *req = arg;

    (void) fd;
    (void) what;
    tg_sim_list_remove(&req->sim->prefill, req);
    tg_sim_start_running(req->sim, req);
}

static void
tg_sim_schedule(tg_sim_t *sim, int after_step)
{
    double now = tg_sim_now_ms(), dur, at, delay;
    struct timeval tv;

    if (sim->running.head == NULL)
        return;
    if (sim->opt.speed <= 0) {
        dur = 0;
    } else {
        dur = (sim->opt.step_ms
               + sim->opt.step_ms_per_seq * sim->running_streams)
              / sim->opt.speed;
    }
    /* Steps keep to a planned schedule so the time spent rendering a step
     * does not slow the simulated GPU; a sim far behind starts afresh. */
    at = (after_step ? sim->next_step_at : now) + dur;
    if (at < now - dur)
        at = now;
    sim->next_step_at = at;
    delay = at > now ? at - now : 0;
    tv.tv_sec = (time_t) (delay / 1000);
    tv.tv_usec = (suseconds_t) ((delay - tv.tv_sec * 1000.0) * 1000);
    if (evtimer_add(sim->step_ev, &tv) == 0)
        sim->step_pending = 1;
}

static void
tg_sim_step_cb(evutil_socket_t fd, short what, void *arg)
{
    tg_sim_t *sim = arg;

    (void) fd;
    (void) what;
    sim->step_pending = 0;
    tg_sim_step(sim);
    tg_sim_schedule(sim, 1);
}

/* The peer closed its end: recv() sees EOF without consuming data.  evhttp
 * only notices a close when it reads or writes, which for a request it is
 * answering can be much later. */
static int
tg_sim_peer_gone(tg_sim_req_t *req)
{
    struct bufferevent *bev;
    evutil_socket_t fd;
    char c;
    ssize_t r;

    if (req->conn == NULL)
        return 0;
    bev = evhttp_connection_get_bufferevent(req->conn);
    if (bev == NULL || (fd = bufferevent_getfd(bev)) < 0)
        return 0;
    r = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK
                      && errno != EINTR);
}

static int
tg_sim_backpressured(tg_sim_req_t *req)
{
    struct bufferevent *bev;

    if (req->conn == NULL || !req->stream)
        return 0;
    bev = evhttp_connection_get_bufferevent(req->conn);
    return bev != NULL
        && evbuffer_get_length(bufferevent_get_output(bev))
           > TG_SIM_BACKPRESSURE;
}

/* Cancels the request, then drops its connection, which frees the evhttp
 * request. */
static void
tg_sim_drop(tg_sim_t *sim, tg_sim_req_t *req)
{
    struct evhttp_connection *conn = req->conn;

    evhttp_connection_set_closecb(conn, NULL, NULL);
    tg_sim_cancel(sim, req);
    evhttp_connection_free(conn);
}

/* Whether a running request can take this step: 0 when it can, 1 when it
 * is stalled (a hang or a slow reader), -1 when it was dropped (its client
 * left, or an armed fault closes it). */
static int
tg_sim_held(tg_sim_t *sim, tg_sim_req_t *req)
{
    if (req->http != NULL && tg_sim_peer_gone(req)) {
        tg_sim_drop(sim, req);
        return -1;
    }
    /* An armed fault (POST /sim/fault) after its steps: a hang keeps
     * the request open and silent until the client leaves; a close
     * drops the connection mid-answer, as a crashing server does. */
    if (req->fault != TG_SIM_FAULT_NONE
        && req->steps_done >= req->fault_after) {
        if (req->fault == TG_SIM_FAULT_HANG || req->conn == NULL)
            return 1;
        tg_sim_drop(sim, req);
        return -1;
    }
    return tg_sim_backpressured(req) ? 1 : 0;
}

/* Up to tps more tokens of choice i, rendered as a chunk when streamed. */
static void
tg_sim_advance_choice(tg_sim_t *sim, tg_sim_req_t *req, int i, uint32_t tps)
{
    tg_sim_choice_t *c = &req->choices[i];
    uint32_t from = c->pos, to;

    if (c->done)
        return;
    to = from + tps < c->end ? from + tps : c->end;
    c->pos = to;
    sim->stats.tokens_generated += to - from;
    if (req->closed)
        sim->stats.tokens_after_close += to - from;
    if (req->stream)
        (void) tg_sim_render_chunk(req, i, from, to, to == c->end, req->out);
    if (to == c->end) {
        c->done = 1;
        req->n_active--;
        sim->running_streams--;
        sim->open_streams--;
        sim->stats.completed_streams++;
    }
}

/* One step of a request: every choice advances, the chunks go out, and a
 * request whose choices are all done finishes. */
static void
tg_sim_advance(tg_sim_t *sim, tg_sim_req_t *req, uint32_t tps)
{
    int i;

    req->steps_done++;
    for (i = 0; i < req->n; i++)
        tg_sim_advance_choice(sim, req, i, tps);
    if (req->stream && req->http != NULL
        && evbuffer_get_length(req->out) > 0)
        evhttp_send_reply_chunk(req->http, req->out);
    evbuffer_drain(req->out, evbuffer_get_length(req->out));
    if (req->n_active == 0)
        tg_sim_finish(sim, req);
}

/* Requests whose client left during the step are freed now. */
static void
tg_sim_reap_closed(tg_sim_t *sim)
{
    tg_sim_req_t *req, *next;

    for (req = sim->running.head; req != NULL; req = next) {
        next = req->next;
        if (req->closed) {
            tg_sim_list_remove(&sim->running, req);
            tg_sim_req_free(req);
        }
    }
}

void
tg_sim_step(tg_sim_t *sim)
{
    tg_sim_req_t *req, *next;
    uint32_t tps = (uint32_t) sim->opt.tokens_per_step;
    int stalled = 0, stepped = 0, held;

    sim->in_step = 1;
    sim->stats.steps++;
    for (req = sim->running.head; req != NULL; req = next) {
        next = req->next;
        if (req->closed)
            continue;
        held = tg_sim_held(sim, req);
        if (held != 0) {
            stalled += held > 0;
            continue;
        }
        stepped++;
        tg_sim_advance(sim, req, tps);
    }
    sim->in_step = 0;

    tg_sim_reap_closed(sim);
    tg_sim_admit_queued(sim);
    /* Everyone waits on slow readers (or hangs): poll again in a
     * millisecond instead of spinning. */
    if (stalled > 0 && stepped == 0 && sim->opt.speed <= 0)
        sim->next_step_at = tg_sim_now_ms() + 1;
}

static void
tg_sim_finish(tg_sim_t *sim, tg_sim_req_t *req)
{
    tg_sim_list_remove(&sim->running, req);
    req->state = TG_SIM_DONE;
    if (req->http != NULL) {
        evhttp_connection_set_closecb(req->conn, NULL, NULL);
        if (req->stream) {
            (void) tg_sim_render_stream_end(req, req->out);
            evhttp_send_reply_chunk(req->http, req->out);
            evhttp_send_reply_end(req->http);
        } else {
            struct evkeyvalq *h = evhttp_request_get_output_headers(req->http);

            evhttp_add_header(h, "Content-Type", "application/json");
            if (tg_sim_render_full(req, req->out) == 0)
                evhttp_send_reply(req->http, 200, "OK", req->out);
            else
                evhttp_send_error(req->http, 500, "out of memory");
        }
    }
    tg_sim_req_free(req);
}

static void
tg_sim_cancel(tg_sim_t *sim, tg_sim_req_t *req)
{
    int open = req->state == TG_SIM_RUNNING ? req->n_active : req->n;

    sim->stats.cancelled_streams += (unsigned long long) open;
    sim->open_streams -= open;
    req->closed = 1;
    req->http = NULL;
    switch (req->state) {
    case TG_SIM_QUEUED:
        tg_sim_list_remove(&sim->queue, req);
        sim->queued_streams -= req->n;
        tg_sim_req_free(req);
        break;
    case TG_SIM_PREFILL:
        tg_sim_list_remove(&sim->prefill, req);
        sim->running_streams -= req->n;
        tg_sim_req_free(req);
        break;
    case TG_SIM_RUNNING:
        sim->running_streams -= req->n_active;
        req->n_active = 0;
        if (!sim->in_step) {
            tg_sim_list_remove(&sim->running, req);
            tg_sim_req_free(req);
        }
        break;
    default:
        break;
    }
    if (!sim->in_step)
        tg_sim_admit_queued(sim);
}

static void
tg_sim_close_cb(struct evhttp_connection *conn, void *arg)
{
    tg_sim_req_t *req = arg;

    (void) conn;
    tg_sim_cancel(req->sim, req);
}
