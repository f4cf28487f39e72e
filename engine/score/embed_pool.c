/*
 * The embed service: a queue of score(EMBED) jobs, one batch at a time on
 * a libuv worker thread (score/embed_pool.h).
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed/embed.h"
#include "score/embed_pool.h"
#include "util/cpu.h"
#include "util/queue.h"

enum {
    TG__JOB_WAITING = 0,
    TG__JOB_RUNNING
};

struct tg_embed_job_s {
    tg_embed_pool_t    *pool;
    tg_queue_t          link;       /* in pool->waiting, then ->batch */
    tg_embed_done_cb    cb;
    void               *data;
    size_t              n;
    const char        **texts;      /* into the same allocation */
    size_t             *lens;
    int                 state;      /* TG__JOB_*: RUNNING from the moment
                                       it is taken into the batch */
    unsigned            cancelled:1;
};

struct tg_embed_pool_s {
    uv_loop_t          *loop;
    tg_embedder_t      *emb;
    char               *path;
    size_t              dim;
    size_t              max_batch;
    size_t              max_waiting;

    uv_idle_t           idle;       /* the end of a loop turn */
    uv_work_t           work;
    tg_queue_t          waiting;    /* tg_embed_job_t, in order */
    tg_queue_t          batch;      /* the jobs in flight */
    unsigned            running:1;
    unsigned            closing:1;
    unsigned            idle_closed:1;

    /* The batch in flight: written by the loop before the worker starts
     * and read back after it ends; the worker touches nothing else. */
    const char        **b_texts;
    size_t             *b_lens;
    float              *b_vecs;
    size_t              b_n;
    int                 b_rc;
    char                b_err[256];
    uint64_t            b_calls;
    uint64_t            b_tokens;
    uint64_t            b_ns;
    uint64_t            b_ns_last;

    tg_embed_pool_stats_t  st;
};

static void tg__pool_idle_cb(uv_idle_t *idle);
static void tg__pool_start(tg_embed_pool_t *p);
static void tg__pool_work(uv_work_t *w);
static void tg__pool_after(uv_work_t *w, int status);
static void tg__pool_deliver(tg_embed_pool_t *p, int rc, const char *err);
static void tg__pool_idle_closed(uv_handle_t *h);
static void tg__pool_free(tg_embed_pool_t *p);


int
tg_embed_pool_open(uv_loop_t *loop, const tg_embed_pool_conf_t *conf,
    tg_embed_pool_t **out, char *err, size_t errlen)
{
    tg_embed_opts_t   o;
    tg_embed_pool_t  *p;
    cpu_set_t         loop_cpus;
    int               rc, moved;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, errlen, "embedder: out of memory");
        return -ENOMEM;
    }
    p->loop = loop;
    tg_queue_init(&p->waiting);
    tg_queue_init(&p->batch);
    p->max_batch = conf->max_batch ? conf->max_batch : 64;
    p->max_waiting = conf->max_waiting ? conf->max_waiting
                                       : 4 * p->max_batch;
    p->path = strdup(conf->path);
    if (p->path == NULL) {
        snprintf(err, errlen, "embedder: out of memory");
        rc = -ENOMEM;
        goto failed;
    }

    memset(&o, 0, sizeof(o));
    o.threads = conf->threads;
    o.device = (tg_embed_device_t) conf->device;
    /* Its threads start on the engine's whole CPU set, not the event
     * loop's (util/cpu.h). */
    moved = tg_cpu_enter_base(&loop_cpus);
    rc = tg_embedder_open(conf->path, &o, &p->emb, err, errlen);
    tg_cpu_leave_base(&loop_cpus, moved);
    if (rc != 0) {
        goto failed;
    }
    p->dim = tg_embedder_dim(p->emb);

    rc = uv_idle_init(loop, &p->idle);
    if (rc != 0) {
        snprintf(err, errlen, "embedder: uv_idle_init: %s", uv_strerror(rc));
        goto failed;
    }
    /* Active only while jobs wait for the end of the turn, so it keeps
     * the loop alive exactly as long as there is work. */
    p->idle.data = p;
    p->work.data = p;

    *out = p;
    return 0;

failed:
    tg_embedder_close(p->emb);
    free(p->path);
    free(p);
    return rc;
}


int
tg_embed_pool_submit(tg_embed_pool_t *p, const char *const *texts,
    const size_t *lens, size_t n, tg_embed_done_cb cb, void *data,
    tg_embed_job_t **job, char *err, size_t errlen)
{
    tg_embed_job_t  *j;
    size_t           i, size, len;
    char            *text;

    if (n == 0 || texts == NULL || cb == NULL || p->closing) {
        snprintf(err, errlen, "embedder: no texts");
        return -EINVAL;
    }
    if (n > p->max_waiting) {
        p->st.rejected++;
        snprintf(err, errlen, "embedder: %zu texts in one call, more than "
                 "its queue holds (%zu: 4 x max_batch)", n, p->max_waiting);
        return -E2BIG;
    }
    if (p->st.waiting + n > p->max_waiting) {
        p->st.rejected++;
        snprintf(err, errlen, "embedder busy: %zu texts waiting, %zu more "
                 "would pass its queue cap of %zu (4 x max_batch); try "
                 "again later", p->st.waiting, n, p->max_waiting);
        return -EBUSY;
    }

    /* One allocation: the job, its pointer and length arrays, the text. */
    size = sizeof(*j) + n * (sizeof(char *) + sizeof(size_t));
    for (i = 0; i < n; i++) {
        len = lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0);
        if (len > ((size_t) 1 << 30) - size) {
            snprintf(err, errlen, "embedder: text %zu too long", i);
            return -ENOMEM;
        }
        size += len + 1;
    }
    j = malloc(size);
    if (j == NULL) {
        snprintf(err, errlen, "embedder: out of memory");
        return -ENOMEM;
    }
    memset(j, 0, sizeof(*j));
    j->pool = p;
    j->cb = cb;
    j->data = data;
    j->n = n;
    j->texts = (const char **) (j + 1);
    j->lens = (size_t *) (j->texts + n);
    text = (char *) (j->lens + n);
    for (i = 0; i < n; i++) {
        len = lens ? lens[i] : (texts[i] ? strlen(texts[i]) : 0);
        if (len > 0) {
            memcpy(text, texts[i], len);
        }
        text[len] = '\0';
        j->texts[i] = text;
        j->lens[i] = len;
        text += len + 1;
    }

    tg_queue_insert_tail(&p->waiting, &j->link);
    p->st.waiting += n;
    if (!p->running) {
        (void) uv_idle_start(&p->idle, tg__pool_idle_cb);
    }
    *job = j;
    return 0;
}


void
tg_embed_job_cancel(tg_embed_job_t *job)
{
    tg_embed_pool_t  *p = job->pool;

    if (job->state == TG__JOB_RUNNING) {
        /* The worker reads its texts: freed when the batch is back. */
        job->cancelled = 1;
        return;
    }
    tg_queue_remove(&job->link);
    p->st.waiting -= job->n;
    free(job);
}


/* The end of a loop turn: every call of the turn goes as one batch. */
static void
tg__pool_idle_cb(uv_idle_t *idle)
{
    tg_embed_pool_t  *p = idle->data;

    uv_idle_stop(idle);
    if (!p->running && !tg_queue_empty(&p->waiting)) {
        tg__pool_start(p);
    }
}


/* Takes every waiting job into one batch and hands it to a worker. */
static void
tg__pool_start(tg_embed_pool_t *p)
{
    tg_embed_job_t  *j;
    tg_queue_t      *q;
    size_t           n, i, k;
    int              rc;

    n = p->st.waiting;
    tg_queue_add(&p->batch, &p->waiting);
    p->st.waiting = 0;
    for (q = tg_queue_head(&p->batch); q != tg_queue_sentinel(&p->batch);
         q = tg_queue_next(q))
    {
        tg_queue_data(q, tg_embed_job_t, link)->state = TG__JOB_RUNNING;
    }

    p->b_texts = malloc(n * sizeof(*p->b_texts));
    p->b_lens = malloc(n * sizeof(*p->b_lens));
    p->b_vecs = malloc(n * p->dim * sizeof(*p->b_vecs));
    if (p->b_texts == NULL || p->b_lens == NULL || p->b_vecs == NULL) {
        tg__pool_deliver(p, -ENOMEM, "embedder: out of memory");
        return;
    }
    k = 0;
    for (q = tg_queue_head(&p->batch); q != tg_queue_sentinel(&p->batch);
         q = tg_queue_next(q))
    {
        j = tg_queue_data(q, tg_embed_job_t, link);
        for (i = 0; i < j->n; i++, k++) {
            p->b_texts[k] = j->texts[i];
            p->b_lens[k] = j->lens[i];
        }
    }
    p->b_n = n;
    p->b_rc = 0;
    p->b_err[0] = '\0';
    p->b_calls = 0;
    p->b_tokens = 0;
    p->b_ns = 0;

    rc = uv_queue_work(p->loop, &p->work, tg__pool_work, tg__pool_after);
    if (rc != 0) {
        tg__pool_deliver(p, -EIO, "embedder: cannot queue work");
        return;
    }
    p->running = 1;
    p->st.running = n;
}


/* On the worker thread: the batch through the model, max_batch texts per
 * call, so that one call's activations stay bounded. */
static void
tg__pool_work(uv_work_t *w)
{
    tg_embed_pool_t   *p = w->data;
    tg_embed_stats_t   st;
    size_t             off, m;
    int                rc;

    /* libuv's pool threads began on the loop's CPUs. */
    tg_cpu_thread_base();

    for (off = 0; off < p->b_n; off += m) {
        m = p->b_n - off;
        if (m > p->max_batch) {
            m = p->max_batch;
        }
        memset(&st, 0, sizeof(st));
        rc = tg_embedder_run(p->emb, p->b_texts + off, p->b_lens + off, m,
                             p->b_vecs + off * p->dim, &st, p->b_err,
                             sizeof(p->b_err));
        if (rc != 0) {
            p->b_rc = rc;
            return;
        }
        p->b_calls++;
        p->b_tokens += st.tokens;
        p->b_ns += st.ns;
        p->b_ns_last = st.ns;
    }
}


static void
tg__pool_after(uv_work_t *w, int status)
{
    tg_embed_pool_t  *p = w->data;

    p->running = 0;
    p->st.running = 0;
    p->st.batches += p->b_calls;
    p->st.tokens += p->b_tokens;
    p->st.ns_total += p->b_ns;
    if (p->b_calls > 0) {
        p->st.ns_last = p->b_ns_last;
    }

    if (status == UV_ECANCELED) {
        tg__pool_deliver(p, -ECANCELED, "embedder: the engine is stopping");
    } else if (p->b_rc != 0) {
        p->st.errors++;
        tg__pool_deliver(p, p->b_rc, p->b_err);
    } else {
        p->st.texts += p->b_n;
        tg__pool_deliver(p, 0, "");
    }

    if (p->closing) {
        tg__pool_free(p);
        return;
    }
    /* What queued while the model ran is the next batch, at once. */
    if (!tg_queue_empty(&p->waiting)) {
        tg__pool_start(p);
    }
}


/* Answers the batch's jobs that are still wanted and frees them all. */
static void
tg__pool_deliver(tg_embed_pool_t *p, int rc, const char *err)
{
    tg_embed_job_t  *j;
    size_t           off = 0;

    /* One at a time from the head: a callback may cancel a later job of
     * the batch (it is only marked) or queue new ones (they wait). */
    while (!tg_queue_empty(&p->batch)) {
        j = tg_queue_data(tg_queue_head(&p->batch), tg_embed_job_t, link);
        tg_queue_remove(&j->link);
        if (!j->cancelled && !p->closing) {
            j->cb(j->data, rc, err, rc == 0 ? p->b_vecs + off * p->dim
                                            : NULL,
                  j->n, p->dim);
        }
        off += j->n;
        free(j);
    }
    free(p->b_texts);
    free(p->b_lens);
    free(p->b_vecs);
    p->b_texts = NULL;
    p->b_lens = NULL;
    p->b_vecs = NULL;
    p->b_n = 0;
}


const char *
tg_embed_pool_device(const tg_embed_pool_t *p)
{
    return tg_embedder_device(p->emb);
}


const char *
tg_embed_pool_note(const tg_embed_pool_t *p)
{
    return tg_embedder_device_note(p->emb);
}


const char *
tg_embed_pool_path(const tg_embed_pool_t *p)
{
    return p->path;
}


size_t
tg_embed_pool_max_batch(const tg_embed_pool_t *p)
{
    return p->max_batch;
}


size_t
tg_embed_pool_max_waiting(const tg_embed_pool_t *p)
{
    return p->max_waiting;
}


void
tg_embed_pool_stats(const tg_embed_pool_t *p, tg_embed_pool_stats_t *st)
{
    *st = p->st;
}


void
tg_embed_pool_close(tg_embed_pool_t *p)
{
    tg_embed_job_t  *j;

    p->closing = 1;
    while (!tg_queue_empty(&p->waiting)) {
        j = tg_queue_data(tg_queue_head(&p->waiting), tg_embed_job_t, link);
        tg_queue_remove(&j->link);
        free(j);
    }
    p->st.waiting = 0;

    /* A batch not started yet is called back with UV_ECANCELED; one
     * running holds the loop until it is back, and frees the pool then. */
    if (p->running) {
        (void) uv_cancel((uv_req_t *) &p->work);
    }
    uv_close((uv_handle_t *) &p->idle, tg__pool_idle_closed);
}


static void
tg__pool_idle_closed(uv_handle_t *h)
{
    tg_embed_pool_t  *p = h->data;

    p->idle_closed = 1;
    tg__pool_free(p);
}


/* Frees the pool once both its idle handle is closed and no batch runs
 * (each of the two callbacks tries; the later one frees). */
static void
tg__pool_free(tg_embed_pool_t *p)
{
    if (p->running || !p->idle_closed) {
        return;
    }
    tg_embedder_close(p->emb);
    free(p->path);
    free(p);
}
