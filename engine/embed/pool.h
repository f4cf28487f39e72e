/*
 * The embedder's worker threads: `threads - 1` pthreads plus the caller
 * share the units of one parallel step (rows of a GEMM, (sequence, head)
 * pairs of attention, rows of LayerNorm), then the caller returns.  One
 * pool per embedder, so the CPU backend and the elementwise steps never
 * oversubscribe the cores the operator gave (threads=N); OpenBLAS itself
 * runs single-threaded inside each unit.
 */
#ifndef TG_EMBED_POOL_H
#define TG_EMBED_POOL_H

#include <stddef.h>

typedef struct tg_embed_pool_s tg_embed_pool_t;

/* fn(arg, unit, worker): worker is 0 (the caller) .. threads - 1, so that
 * a step can give each worker its own scratch. */
typedef void (*tg_embed_task_fn)(void *arg, size_t unit, int worker);

/* threads >= 1; 1 starts no thread.  -ENOMEM / -EAGAIN with err. */
int  tg_embed_pool_create(int threads, tg_embed_pool_t **out, char *err,
                          size_t err_size);
void tg_embed_pool_destroy(tg_embed_pool_t *p);
int  tg_embed_pool_threads(const tg_embed_pool_t *p);

/* Runs fn for every unit in [0, units) and returns when all are done.
 * Not reentrant: one run at a time per pool. */
void tg_embed_pool_run(tg_embed_pool_t *p, tg_embed_task_fn fn, void *arg,
                       size_t units);

#endif /* TG_EMBED_POOL_H */
