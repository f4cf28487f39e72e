/*
 * The embedder's worker threads (pool.h): a generation counter under one
 * mutex starts a step, an atomic counter hands out its units, the last
 * worker to finish wakes the caller.  A forward pass is a few hundred
 * short steps, so both sides spin a little (TG_POOL_SPIN) before they
 * sleep: a sleeping thread woken on a busy core can wait a scheduler tick
 * for it, and every step would pay that.
 */
#include "embed/pool.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Polls before sleeping: 4000 pauses are about 20 us on CPUs with a
 * short pause, about 200 us where pause takes some 140 cycles (Skylake-SP
 * and later). */
#define TG_POOL_SPIN 4000

typedef struct {
    tg_embed_pool_t    *pool;
    int                 id;
} tg_embed_worker_t;

struct tg_embed_pool_s {
    int                 threads;
    int                 started;            /* pthreads running */
    pthread_t          *tids;
    tg_embed_worker_t  *workers;
    pthread_mutex_t     mu;
    pthread_cond_t      start;
    pthread_cond_t      done;
    unsigned long       generation;
    int                 busy;               /* workers in this step */
    int                 quit;
    tg_embed_task_fn    fn;
    void               *arg;
    size_t              units;
    size_t              next;               /* atomic */
};

static void *tg__pool_main(void *data);
static void  tg__pool_work(tg_embed_pool_t *p, int id);
static void  tg__pool_pause(void);

static void
tg__pool_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void
tg__pool_work(tg_embed_pool_t *p, int id)
{
    size_t unit;

    for ( ;; ) {
        unit = __atomic_fetch_add(&p->next, 1, __ATOMIC_RELAXED);
        if (unit >= p->units) {
            return;
        }
        p->fn(p->arg, unit, id);
    }
}

static void *
tg__pool_main(void *data)
{
    tg_embed_worker_t  *w = data;
    tg_embed_pool_t    *p = w->pool;
    unsigned long       seen = 0;

    int                 spin;

    pthread_mutex_lock(&p->mu);
    for ( ;; ) {
        if (!p->quit && p->generation == seen) {
            pthread_mutex_unlock(&p->mu);
            for (spin = 0; spin < TG_POOL_SPIN; spin++) {
                if (__atomic_load_n(&p->generation, __ATOMIC_ACQUIRE) != seen
                    || __atomic_load_n(&p->quit, __ATOMIC_ACQUIRE))
                {
                    break;
                }
                tg__pool_pause();
            }
            pthread_mutex_lock(&p->mu);
        }
        while (!p->quit && p->generation == seen) {
            pthread_cond_wait(&p->start, &p->mu);
        }
        if (p->quit) {
            break;
        }
        seen = p->generation;
        pthread_mutex_unlock(&p->mu);
        tg__pool_work(p, w->id);
        pthread_mutex_lock(&p->mu);
        if (__atomic_sub_fetch(&p->busy, 1, __ATOMIC_RELEASE) == 0) {
            pthread_cond_signal(&p->done);
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

int
tg_embed_pool_create(int threads, tg_embed_pool_t **out, char *err,
                     size_t err_size)
{
    tg_embed_pool_t    *p;
    int                 i, rc;

    *out = NULL;
    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        snprintf(err, err_size, "embedder: out of memory");
        return -ENOMEM;
    }
    p->threads = threads < 1 ? 1 : threads;
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    p->tids = calloc((size_t) p->threads, sizeof(*p->tids));
    p->workers = calloc((size_t) p->threads, sizeof(*p->workers));
    if (p->tids == NULL || p->workers == NULL) {
        snprintf(err, err_size, "embedder: out of memory");
        rc = -ENOMEM;
        goto failed;
    }
    for (i = 1; i < p->threads; i++) {
        p->workers[i].pool = p;
        p->workers[i].id = i;
        rc = pthread_create(&p->tids[i], NULL, tg__pool_main,
                            &p->workers[i]);
        if (rc != 0) {
            snprintf(err, err_size, "embedder: pthread_create: %s",
                     strerror(rc));
            rc = -rc;
            goto failed;
        }
        p->started++;
    }
    *out = p;
    return 0;

failed:
    tg_embed_pool_destroy(p);
    return rc;
}

void
tg_embed_pool_destroy(tg_embed_pool_t *p)
{
    int i;

    if (p == NULL) {
        return;
    }
    pthread_mutex_lock(&p->mu);
    __atomic_store_n(&p->quit, 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (i = 1; i <= p->started; i++) {
        pthread_join(p->tids[i], NULL);
    }
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->start);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p->workers);
    free(p);
}

int
tg_embed_pool_threads(const tg_embed_pool_t *p)
{
    return p->threads;
}

void
tg_embed_pool_run(tg_embed_pool_t *p, tg_embed_task_fn fn, void *arg,
                  size_t units)
{
    size_t  u;
    int     spin;

    if (p->started == 0 || units < 2) {
        for (u = 0; u < units; u++) {
            fn(arg, u, 0);
        }
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->arg = arg;
    p->units = units;
    p->next = 0;
    p->busy = p->started;
    __atomic_store_n(&p->generation, p->generation + 1, __ATOMIC_RELEASE);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    tg__pool_work(p, 0);
    for (spin = 0; spin < TG_POOL_SPIN; spin++) {
        if (__atomic_load_n(&p->busy, __ATOMIC_ACQUIRE) == 0) {
            break;
        }
        tg__pool_pause();
    }
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) {
        pthread_cond_wait(&p->done, &p->mu);
    }
    pthread_mutex_unlock(&p->mu);
}
