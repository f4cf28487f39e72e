/*
 * The plugin host's asynchronous entries: timers (one uv_timer_t each,
 * closed with the request) and score() (answered on the next loop turn:
 * every call of one turn is computed in one go, score/score.h).
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "score/score.h"
#include "strategy/host.h"

struct tg_host_score_s {
    tg_host_req_t    *hr;           /* NULL once cancelled */
    tg_queue_t        req_link;     /* in hr->scores */
    tg_queue_t        queue_link;   /* in tg__host_score_queue */
    tg_score_cb       cb;
    void             *data;
    size_t            n;
    char            **texts;
    size_t           *lens;
};

static void tg__host_score_free(tg_host_score_t *s);

static uv_idle_t         tg__host_score_idle;
static int               tg__host_score_ready;
static tg_queue_t        tg__host_score_queue = {
    &tg__host_score_queue, &tg__host_score_queue
};


void
tg__host_async_init(uv_loop_t *loop)
{
    if (uv_idle_init(loop, &tg__host_score_idle) == 0) {
        /* It must not keep a stopping loop alive. */
        uv_unref((uv_handle_t *) &tg__host_score_idle);
        tg__host_score_ready = 1;
    }
}


/* Engine shutdown: the score handle goes, so that the loop can close;
 * scores still queued are dropped (their requests are closed). */
void
tg_host_shutdown(void)
{
    tg__host_spares_free();
    while (!tg_queue_empty(&tg__host_score_queue)) {
        tg__host_score_free(tg_queue_data(tg_queue_head(&tg__host_score_queue),
                                          tg_host_score_t, queue_link));
    }
    if (tg__host_score_ready) {
        tg__host_score_ready = 0;
        uv_close((uv_handle_t *) &tg__host_score_idle, NULL);
    }
}


/* ---- timers --------------------------------------------------------- */

static void
tg__host_timer_closed(uv_handle_t *h)
{
    free(h);        /* the tg_host_timer_t: the handle comes first */
}


static void
tg__host_timer_cb(uv_timer_t *t)
{
    tg_host_timer_t  *tm = (tg_host_timer_t *) t;
    tg_host_req_t    *hr = tm->hr;

    tm->hr = NULL;
    if (!tg__host_usable(hr)) {
        return;
    }
    tg__host_enter(hr);
    hr->p->on_timer(tg__host_preq(hr->r), tg__host_ptimer(tm), tm->data);
    tg__host_leave(hr);
}


tg_plugin_timer_t *
tg__host_timer_start(tg_plugin_req_t *req, uint64_t ms, void *data)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_timer_t  *tm;

    if (!tg__host_usable(hr)) {
        if (hr != NULL) {
            tg__host_set_error(hr, "the request is over");
        }
        return NULL;
    }
    tm = calloc(1, sizeof(*tm));
    if (tm == NULL) {
        tg__host_set_error(hr, "out of memory");
        return NULL;
    }
    if (uv_timer_init(hr->r->engine->loop, &tm->timer) != 0) {
        free(tm);
        tg__host_set_error(hr, "cannot create a timer");
        return NULL;
    }
    (void) uv_timer_start(&tm->timer, tg__host_timer_cb, ms, 0);
    tm->hr = hr;
    tm->data = data;
    tm->next = hr->timers;
    hr->timers = tm;
    return tg__host_ptimer(tm);
}


int
tg__host_timer_stop(tg_plugin_req_t *req, tg_plugin_timer_t *ptm)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_timer_t  *tm = tg__host_timer(ptm), *it;

    if (hr == NULL || tm == NULL) {
        return -EINVAL;
    }
    for (it = hr->timers; it != NULL && it != tm; it = it->next) {
        /* only this request's */
    }
    if (it == NULL) {
        tg__host_set_error(hr, "not a timer of this request");
        return -EINVAL;
    }
    if (tm->hr == NULL) {
        tg__host_set_error(hr, "the timer already fired or was stopped");
        return -EALREADY;
    }
    uv_timer_stop(&tm->timer);
    tm->hr = NULL;
    return 0;
}


/* Stops every timer; once the request is being freed, closes them too
 * (their memory goes in the close callback, libuv's rule). */
void
tg__host_timers_stop(tg_host_req_t *hr)
{
    tg_host_timer_t  *tm, *next;

    for (tm = hr->timers; tm != NULL; tm = next) {
        next = tm->next;
        uv_timer_stop(&tm->timer);
        tm->hr = NULL;
        if (hr->freed) {
            uv_close((uv_handle_t *) &tm->timer, tg__host_timer_closed);
        }
    }
    if (hr->freed) {
        hr->timers = NULL;
    }
}


/* ---- score ---------------------------------------------------------- */

static void
tg__host_score_free(tg_host_score_t *s)
{
    size_t  i;

    tg_queue_remove(&s->req_link);
    tg_queue_remove(&s->queue_link);
    for (i = 0; i < s->n; i++) {
        free(s->texts[i]);
    }
    free(s->texts);
    free(s->lens);
    free(s);
}


/* Every score() of the last loop turn, answered in one go. */
static void
tg__host_score_run(uv_idle_t *idle)
{
    tg_host_score_t  *s;
    tg_host_req_t    *hr;
    tg_queue_t        turn;
    float            *sim;

    /* Scores asked for by the callbacks below wait for the next turn. */
    uv_idle_stop(idle);
    tg_queue_init(&turn);
    tg_queue_add(&turn, &tg__host_score_queue);

    while (!tg_queue_empty(&turn)) {
        s = tg_queue_data(tg_queue_head(&turn), tg_host_score_t, queue_link);
        tg_queue_remove(&s->queue_link);
        tg_queue_remove(&s->req_link);
        hr = s->hr;
        if (hr == NULL || !tg__host_usable(hr)) {
            tg__host_score_free(s);
            continue;
        }
        sim = malloc(s->n * s->n * sizeof(float) + 1);
        if (sim == NULL
            || tg_score_matrix((const char *const *) s->texts, s->lens, s->n,
                               sim) != 0)
        {
            /* The plugin still hears back: an empty matrix. */
            free(sim);
            sim = NULL;
            tg_log_error("request %llu: out of memory scoring %zu texts",
                         (unsigned long long) hr->r->id, s->n);
        }
        tg__host_enter(hr);
        s->cb(tg__host_preq(hr->r), s->data, sim, sim ? s->n : 0);
        tg__host_leave(hr);
        free(sim);
        tg__host_score_free(s);
    }
}


int
tg__host_score(tg_plugin_req_t *req, const char *const *texts,
    const size_t *lens, size_t n, tg_score_cb cb, void *data)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_host_score_t  *s;
    size_t            i;

    if (!tg__host_usable(hr) || cb == NULL || (n > 0 && texts == NULL)
        || n > 4096)
    {
        if (hr != NULL) {
            tg__host_set_error(hr, "score: bad arguments or request over");
        }
        return -EINVAL;
    }
    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        goto nomem;
    }
    tg_queue_init(&s->req_link);
    tg_queue_init(&s->queue_link);
    s->texts = calloc(n ? n : 1, sizeof(char *));
    s->lens = calloc(n ? n : 1, sizeof(size_t));
    if (s->texts == NULL || s->lens == NULL) {
        goto nomem;
    }
    for (; s->n < n; s->n++) {
        i = s->n;
        s->lens[i] = lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0);
        s->texts[i] = malloc(s->lens[i] + 1);
        if (s->texts[i] == NULL) {
            goto nomem;
        }
        if (s->lens[i] > 0) {
            memcpy(s->texts[i], texts[i], s->lens[i]);
        }
        s->texts[i][s->lens[i]] = '\0';
    }
    if (!tg__host_score_ready
        || uv_idle_start(&tg__host_score_idle, tg__host_score_run) != 0)
    {
        goto nomem;
    }
    s->hr = hr;
    s->cb = cb;
    s->data = data;
    tg_queue_insert_head(&hr->scores, &s->req_link);
    tg_queue_insert_tail(&tg__host_score_queue, &s->queue_link);
    return 0;

nomem:
    if (s != NULL) {
        tg__host_score_free(s);
    }
    tg__host_set_error(hr, "out of memory");
    return -ENOMEM;
}


/* The request's pending scores are dropped when they come up. */
void
tg__host_scores_cancel(tg_host_req_t *hr)
{
    tg_host_score_t  *s;

    while (!tg_queue_empty(&hr->scores)) {
        s = tg_queue_data(tg_queue_head(&hr->scores), tg_host_score_t,
                          req_link);
        tg_queue_remove(&s->req_link);
        s->hr = NULL;
    }
}
