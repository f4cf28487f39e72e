/*
 * thinkgate — the fake host's virtual clock: fake_host_run() moves time to
 * the next moment something happens and delivers, in this order, the
 * tokens due (on_delta), the trace ends due (on_trace_end) and the jobs
 * due (timers, aux results, score and kv replies).  See fake_host.h.
 */

#include <string.h>

#include "fake_host_int.h"

static uint64_t fake__next_time(fake_host_t *h);
static void fake__deliver(fake_host_t *h, tg_trace_t *t, uint64_t now);
static void fake__end_trace(fake_host_t *h, tg_trace_t *t);
static void fake__run_job(fake_host_t *h, fake_job_t *j);


static uint32_t
fake__tokens_at(const tg_trace_t *t, uint64_t now)
{
    uint64_t  k;

    if (now < t->t0) {
        return 0;
    }
    k = (now - t->t0) / t->mpt;
    return k < t->final ? (uint32_t) k : t->final;
}


static uint64_t
fake__min(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}


/* The next moment something happens; UINT64_MAX when nothing will. */
static uint64_t
fake__next_time(fake_host_t *h)
{
    uint64_t     next = h->cancel_at, tok = UINT64_MAX;
    fake_job_t  *j;
    size_t       i;

    for (i = 0; i < h->ntraces; i++) {
        tg_trace_t  *t = h->traces[i];

        if (!fake__running(t)) {
            continue;
        }
        next = fake__min(next, t->t0 + (uint64_t) t->final * t->mpt);
        if (t->produced < t->final) {
            tok = fake__min(tok, t->t0 + (uint64_t) (t->produced + 1)
                                 * t->mpt);
        }
    }
    if (tok != UINT64_MAX) {
        /* Coalesce up to one step of tokens, never past an end. */
        next = fake__min(next, tok > h->now + h->step ? tok
                                                      : h->now + h->step);
    }
    for (j = h->jobs; j != NULL; j = j->next) {
        if (j->active) {
            next = fake__min(next, j->due);
        }
    }
    return next < h->now ? h->now : next;
}


int
fake_host_run(fake_host_t *h)
{
    const tg_plugin_t  *p = h->plugin;
    fake_job_t         *j;
    uint64_t            now;
    size_t              i;
    int                 rc;

    fake_host_current = h;
    h->now = 0;
    rc = p->start(h);
    if (rc < 0 && h->end == FAKE_END_NONE) {
        fake__violation(h, "start() returned %d without calling fail()", rc);
    }
    if (rc == 0 && h->end == FAKE_END_NONE && h->ntraces == 0
        && h->jobs == NULL)
    {
        fake__violation(h, "start() left nothing to wait for");
    }

    while (!fake__over(h)) {
        now = fake__next_time(h);
        if (now == UINT64_MAX) {
            break;
        }
        h->now = now;
        if (h->cancel_at <= now) {
            h->client_gone = 1;
            if (p->on_cancel != NULL) {
                p->on_cancel(h);
            }
            break;
        }
        for (i = 0; i < h->ntraces && !fake__over(h); i++) {
            if (fake__running(h->traces[i])) {
                fake__deliver(h, h->traces[i], now);
            }
        }
        for (i = 0; i < h->ntraces && !fake__over(h); i++) {
            tg_trace_t  *t = h->traces[i];

            if (fake__running(t) && t->produced == t->final
                && t->t0 + (uint64_t) t->final * t->mpt <= now)
            {
                fake__end_trace(h, t);
            }
        }
        for (j = h->jobs; j != NULL && !fake__over(h); j = j->next) {
            if (j->active && j->due <= now) {
                fake__run_job(h, j);
            }
        }
    }

    if (!fake__over(h)) {
        fake__violation(h, "the request stalled: nothing left to wait for "
                        "and no finish/fail");
    }
    /* The host cancels whatever still runs once the request is over. */
    for (i = 0; i < h->ntraces; i++) {
        if (fake__running(h->traces[i])) {
            h->traces[i]->state = TG_TRACE_CANCELLED;
            h->traces[i]->ended_ms = h->now;
        }
    }
    for (j = h->jobs; j != NULL; j = j->next) {
        j->active = 0;
    }
    if (p->destroy != NULL) {
        p->destroy(h);
    }
    h->destroyed++;
    fake_host_current = NULL;
    return rc < 0 ? rc : 0;
}


static void
fake__deliver(fake_host_t *h, tg_trace_t *t, uint64_t now)
{
    uint32_t    p = fake__tokens_at(t, now);
    size_t      b, total = t->rlen + t->clen;
    tg_delta_t  d;

    if (p <= t->produced) {
        return;
    }
    b = p >= t->s.tokens ? total : (size_t) ((uint64_t) total * p
                                             / t->s.tokens);
    memset(&d, 0, sizeof(d));
    if (t->bytes < t->rlen) {
        d.reasoning = t->s.reasoning + t->bytes;
        d.reasoning_len = (b < t->rlen ? b : t->rlen) - t->bytes;
    }
    if (b > t->rlen) {
        size_t  from = t->bytes > t->rlen ? t->bytes - t->rlen : 0;

        d.content = t->s.content + from;
        d.content_len = b - t->rlen - from;
    }
    d.tokens = p - t->produced;
    if (t->first_token_ms == 0) {
        t->first_token_ms = now;
    }
    t->produced = p;
    t->bytes = b;
    t->state = TG_TRACE_RUNNING;
    if (t->spec.flags & TG_TRACE_F_LIVE) {
        fake__buf_add(h, &h->out_reasoning, d.reasoning ? d.reasoning : "",
                      d.reasoning_len);
        fake__buf_add(h, &h->out_content, d.content ? d.content : "",
                      d.content_len);
    }
    if (h->plugin->on_delta != NULL) {
        h->plugin->on_delta(h, t, &d);
    }
}


static void
fake__end_trace(fake_host_t *h, tg_trace_t *t)
{
    tg_trace_end_t  e;

    memset(&e, 0, sizeof(e));
    t->ended_ms = h->now;
    t->end_order = h->ends++;
    if (t->s.fail_after > 0) {
        t->state = TG_TRACE_FAILED;
        e.http_status = t->s.http_status ? t->s.http_status : 500;
        e.error = t->s.error ? t->s.error : "scripted failure";
    } else {
        t->state = TG_TRACE_DONE;
        t->finish_reason = t->s.finish_reason ? t->s.finish_reason : "stop";
        e.finish_reason = t->finish_reason;
        e.http_status = 200;
    }
    e.state = t->state;
    e.tokens = t->produced;
    if (h->plugin->on_trace_end != NULL) {
        h->plugin->on_trace_end(h, t, &e);
    }
}


static void
fake__run_job(fake_host_t *h, fake_job_t *j)
{
    const tg_plugin_t  *p = h->plugin;
    tg_aux_result_t     r;

    j->active = 0;
    switch (j->kind) {
    case FAKE_JOB_TIMER:
        if (p->on_timer != NULL) {
            p->on_timer(h, (tg_timer_t *) j, j->data);
        }
        break;
    case FAKE_JOB_AUX:
        memset(&r, 0, sizeof(r));
        r.http_status = 200;
        r.content = j->value ? j->value : "";
        r.content_len = j->len;
        r.body = r.content;
        r.body_len = r.content_len;
        r.reasoning = h->aux_reasoning ? h->aux_reasoning : "";
        r.reasoning_len = strlen(r.reasoning);
        r.data = j->data;
        r.finish_reason = j->finish;
        if (j->script != NULL && j->script->status < 0) {
            r.status = j->script->status;
            r.http_status = 502;
            r.error = "scripted aux failure";
        } else if (j->script != NULL) {
            r.top = j->script->top;
            r.ntop = j->script->top != NULL ? j->script->ntop : 0;
        } else if (h->aux_status < 0) {
            r.status = h->aux_status;
            r.http_status = 502;
            r.error = h->aux_error ? h->aux_error : "aux failed";
        } else if (j->endpoint == TG_ENDPOINT_EMBEDDINGS) {
            r.vectors = j->vectors;
            r.nvectors = j->nvectors;
            r.dim = j->dim;
        } else if (h->aux_ntop > 0) {
            r.top = h->aux_top;
            r.ntop = h->aux_ntop;
        }
        if (p->on_aux_result != NULL) {
            p->on_aux_result(h, (tg_aux_t *) j, &r);
        }
        break;
    case FAKE_JOB_SCORE:
        if (j->score_kind_cb != NULL) {
            tg_score_result_t  res = { 0 };

            res.error = "";
            res.kind = j->score_kind;
            res.device = j->score_kind == TG_SCORE_KIND_EMBED ? "fake"
                                                              : "lexical";
            res.n = j->n;
            res.sim = j->sim;
            j->score_kind_cb(h, j->data, &res);
        } else {
            j->score_cb(h, j->data, j->sim, j->n);
        }
        break;
    case FAKE_JOB_KV:
        j->kv_cb(h, j->data, j->status, j->value, j->len);
        break;
    }
}
