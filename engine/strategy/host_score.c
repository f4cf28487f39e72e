/*
 * The plugin host's score_kind(): LEXICAL through score()'s queue
 * (host_async.c), EMBED through the generation's embed service
 * (score/embed_pool.h), answered with a tg_score_result_t.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/embed_link.h"
#include "strategy/host.h"

/* A score_kind() call in flight: the plugin's callback and its request
 * (NULL once the request is over: the answer is then dropped). */
struct tg_host_embed_s {
    tg_host_req_t      *hr;
    tg_queue_t          link;           /* in hr->embeds */
    tg_embed_job_t     *job;            /* EMBED; NULL for LEXICAL */
    tg_score_kind_cb    cb;
    void               *data;
    const char         *device;
};

static void tg__host_score_lexical_cb(tg_plugin_req_t *req, void *data,
    const float *sim, size_t n);
static void tg__host_score_embed_cb(void *data, int status, const char *err,
    const float *vecs, size_t n, size_t dim);
static void tg__host_embed_unlink(tg_host_embed_t *he);


int
tg__host_score_kind(tg_plugin_req_t *req, tg_score_kind_t kind,
    const char *const *texts, const size_t *lens, size_t n,
    tg_score_kind_cb cb, void *data)
{
    tg_host_req_t    *hr = tg__host_of(req);
    tg_embed_pool_t  *pool;
    tg_host_embed_t  *he;
    char              err[256];
    int               rc;

    if (!tg__host_usable(hr) || cb == NULL || n == 0 || texts == NULL
        || n > 4096
        || (kind != TG_SCORE_KIND_LEXICAL && kind != TG_SCORE_KIND_EMBED))
    {
        if (hr != NULL) {
            tg__host_set_error(hr, "score_kind: bad arguments (1 to 4096 "
                               "texts, a known kind) or request over");
        }
        return -EINVAL;
    }

    pool = NULL;
    if (kind == TG_SCORE_KIND_EMBED) {
        pool = tg_embed_of(hr->r->engine, hr->r->gen);
        if (pool == NULL) {
            tg__host_set_error(hr, "score(embed) needs an embedder: add "
                               "\"thinkgate_embedder PATH;\" to the http "
                               "block of nginx.conf");
            return -ENOTSUP;
        }
    }

    he = calloc(1, sizeof(*he));
    if (he == NULL) {
        tg__host_set_error(hr, "out of memory");
        return -ENOMEM;
    }
    tg_queue_init(&he->link);
    he->hr = hr;
    he->cb = cb;
    he->data = data;

    if (pool == NULL) {
        he->device = "lexical";
        rc = tg__host_score(req, texts, lens, n, tg__host_score_lexical_cb,
                            he);
        if (rc != 0) {
            free(he);
            return rc;
        }
    } else {
        he->device = tg_embed_pool_device(pool);
        rc = tg_embed_pool_submit(pool, texts, lens, n,
                                  tg__host_score_embed_cb, he, &he->job, err,
                                  sizeof(err));
        if (rc != 0) {
            free(he);
            tg__host_set_error(hr, "%s", err);
            return rc;
        }
    }
    tg_queue_insert_head(&hr->embeds, &he->link);
    return 0;
}


/* score()'s answer, turned into a result; score() already dropped it
 * when the request was over. */
static void
tg__host_score_lexical_cb(tg_plugin_req_t *req, void *data, const float *sim,
    size_t n)
{
    tg_host_embed_t    *he = data;
    tg_score_result_t   res;

    (void) req;
    memset(&res, 0, sizeof(res));
    res.kind = TG_SCORE_KIND_LEXICAL;
    res.device = he->device;
    if (sim == NULL) {
        res.status = -ENOMEM;
        res.error = "out of memory";
    } else {
        res.error = "";
        res.n = n;
        res.sim = sim;
    }
    tg__host_embed_unlink(he);
    /* score()'s runner already entered the request. */
    he->cb(tg__host_preq(he->hr->r), he->data, &res);
    free(he);
}


/* The embed service's answer, on the loop: the cosines of normalised
 * vectors are their dot products. */
static void
tg__host_score_embed_cb(void *data, int status, const char *err,
    const float *vecs, size_t n, size_t dim)
{
    tg_host_embed_t    *he = data;
    tg_host_req_t      *hr = he->hr;
    tg_score_result_t   res;
    float              *sim = NULL;
    size_t              i, j, k;
    double              dot;

    he->job = NULL;         /* the service frees it */
    if (hr == NULL || !tg__host_usable(hr)) {
        tg__host_embed_unlink(he);
        free(he);
        return;
    }
    memset(&res, 0, sizeof(res));
    res.kind = TG_SCORE_KIND_EMBED;
    res.device = he->device;
    res.status = status;
    res.error = err;
    if (status == 0) {
        sim = malloc(n * n * sizeof(float));
        if (sim == NULL) {
            res.status = -ENOMEM;
            res.error = "out of memory";
        } else {
            for (i = 0; i < n; i++) {
                for (j = i; j < n; j++) {
                    dot = 0.0;
                    for (k = 0; k < dim; k++) {
                        dot += (double) vecs[i * dim + k] * vecs[j * dim + k];
                    }
                    sim[i * n + j] = (float) dot;
                    sim[j * n + i] = (float) dot;
                }
            }
            res.n = n;
            res.sim = sim;
            res.dim = dim;
            res.vectors = vecs;
        }
    }
    tg__host_embed_unlink(he);
    tg__host_enter(hr);
    he->cb(tg__host_preq(hr->r), he->data, &res);
    tg__host_leave(hr);
    free(sim);
    free(he);
}


static void
tg__host_embed_unlink(tg_host_embed_t *he)
{
    tg_queue_remove(&he->link);
}


/* The request is over: its EMBED answers are dropped (the service keeps
 * a running batch's texts until it is back); LEXICAL ones are dropped by
 * score()'s own cancel, which frees nothing of ours, so free them here. */
void
tg__host_embeds_cancel(tg_host_req_t *hr)
{
    tg_host_embed_t  *he;

    while (!tg_queue_empty(&hr->embeds)) {
        he = tg_queue_data(tg_queue_head(&hr->embeds), tg_host_embed_t, link);
        tg_queue_remove(&he->link);
        if (he->job != NULL) {
            tg_embed_job_cancel(he->job);
        }
        free(he);
    }
}
