/*
 * The embed service: one sentence embedder (embed/embed.h) run off the
 * loop for score(EMBED) calls (DESIGN §7).
 *
 * Calls made during one loop turn, from any request, wait in one queue;
 * at the end of the turn (an idle callback) they go to a libuv worker
 * thread as one batch, through the model max_batch texts at a time.
 * While a batch runs, new calls wait, and the next batch takes them all
 * when it ends: one batch in flight per embedder, since the embedder is
 * used by one thread at a time.  The queue is bounded: a call that would
 * put more than max_waiting texts in it fails at once with -EBUSY, so a
 * burst is an error its callers see, never a stall.
 *
 * A job's callback runs on the loop, once, with the job's vectors; a
 * cancelled job's callback never runs (its texts may still be in the
 * running batch: the answer is dropped when the batch comes back).
 * Closing the pool drops waiting jobs without calling them and frees the
 * pool once a running batch is back.
 */

#ifndef TG_SCORE_EMBED_POOL_H
#define TG_SCORE_EMBED_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef struct tg_embed_pool_s  tg_embed_pool_t;
typedef struct tg_embed_job_s   tg_embed_job_t;

/* status 0: vecs holds n x dim normalised rows; else err says why. */
typedef void (*tg_embed_done_cb)(void *data, int status, const char *err,
    const float *vecs, size_t n, size_t dim);

typedef struct {
    const char      *path;          /* the model directory */
    int              threads;       /* CPU GEMM threads, 1..64 */
    int              device;        /* tg_embed_device_t */
    size_t           max_batch;     /* texts per model call, 1..4096 */
    size_t           max_waiting;   /* queue cap in texts; 0: 4 x batch */
} tg_embed_pool_conf_t;

typedef struct {
    uint64_t         batches;       /* model calls */
    uint64_t         texts;
    uint64_t         tokens;        /* word pieces, specials included */
    uint64_t         errors;        /* batches the model failed */
    uint64_t         rejected;      /* calls refused: queue full */
    size_t           waiting;       /* texts queued, not running yet */
    size_t           running;       /* texts in the batch in flight */
    uint64_t         ns_total;      /* forward passes, summed */
    uint64_t         ns_last;       /* the last model call's */
} tg_embed_pool_stats_t;

/*
 * Opens the model (blocking: call it where a pause is acceptable, such as
 * a registration) and returns the pool.  Returns 0, or a negative errno
 * with err naming the file or device and what is wrong (-ENODEV: device
 * cuda without a GPU).
 */
int tg_embed_pool_open(uv_loop_t *loop, const tg_embed_pool_conf_t *conf,
    tg_embed_pool_t **out, char *err, size_t errlen);

/*
 * Queues n texts (copied) for the next batch.  Returns 0 with *job set,
 * or, without calling cb: -EBUSY (the queue is full), -E2BIG (n alone is
 * more than the queue holds), -EINVAL (n is 0), -ENOMEM; err says which.
 */
int tg_embed_pool_submit(tg_embed_pool_t *p, const char *const *texts,
    const size_t *lens, size_t n, tg_embed_done_cb cb, void *data,
    tg_embed_job_t **job, char *err, size_t errlen);

/* The job's callback will not run; its memory goes with its batch. */
void tg_embed_job_cancel(tg_embed_job_t *job);

/* "cpu" or "cuda"; why auto chose the CPU ("" when it did not); the
 * model directory; max_batch and the queue cap. */
const char *tg_embed_pool_device(const tg_embed_pool_t *p);
const char *tg_embed_pool_note(const tg_embed_pool_t *p);
const char *tg_embed_pool_path(const tg_embed_pool_t *p);
size_t tg_embed_pool_max_batch(const tg_embed_pool_t *p);
size_t tg_embed_pool_max_waiting(const tg_embed_pool_t *p);
void tg_embed_pool_stats(const tg_embed_pool_t *p, tg_embed_pool_stats_t *st);

/* Drops waiting jobs; the pool is freed now or when its batch is back. */
void tg_embed_pool_close(tg_embed_pool_t *p);

#endif /* TG_SCORE_EMBED_POOL_H */
