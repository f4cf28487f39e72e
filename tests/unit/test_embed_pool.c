/*
 * The embed service (engine/score/embed_pool.c) against a stand-in for
 * the embedder (embed/embed.h): calls of one loop turn form one batch,
 * max_batch texts per model call, a full queue is -EBUSY at once, a job
 * cancelled while its batch runs is never called back, closing with a
 * batch running frees everything once it is back (ASan checks).
 */

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "embed/embed.h"
#include "score/embed_pool.h"

#define FAKE_DIM  4

struct tg_embedder_s {
    int  unused;
};

static struct tg_embedder_s  fake;
static size_t                fake_calls[64];
static size_t                fake_ncalls;
static int                   fake_fail;


int
tg_embedder_open(const char *model_dir, const tg_embed_opts_t *opts,
    tg_embedder_t **out, char *err, size_t err_size)
{
    (void) opts;
    if (strcmp(model_dir, "/missing") == 0) {
        snprintf(err, err_size, "/missing/vocab.txt: no such file");
        return -ENOENT;
    }
    *out = &fake;
    return 0;
}


void
tg_embedder_close(tg_embedder_t *e)
{
    (void) e;
}


size_t
tg_embedder_dim(const tg_embedder_t *e)
{
    (void) e;
    return FAKE_DIM;
}


const char *
tg_embedder_device(const tg_embedder_t *e)
{
    (void) e;
    return "cpu";
}


const char *
tg_embedder_device_note(const tg_embedder_t *e)
{
    (void) e;
    return "";
}


/* Text "k" (a digit) becomes the unit vector e_(k mod 4). */
int
tg_embedder_run(tg_embedder_t *e, const char *const *texts,
    const size_t *lens, size_t n, float *out, tg_embed_stats_t *stats,
    char *err, size_t err_size)
{
    size_t  i;

    (void) e;
    (void) lens;
    usleep(20000);
    if (fake_fail) {
        snprintf(err, err_size, "cublasSgemm failed");
        return -EIO;
    }
    fake_calls[fake_ncalls++ % 64] = n;
    memset(out, 0, n * FAKE_DIM * sizeof(float));
    for (i = 0; i < n; i++) {
        out[i * FAKE_DIM + (size_t) (texts[i][0] - '0') % FAKE_DIM] = 1.0f;
    }
    stats->texts = n;
    stats->tokens = 3 * n;
    stats->ns = 1000000;
    return 0;
}


typedef struct {
    int     calls;
    int     status;
    size_t  n;
    float   first[FAKE_DIM];
} answer_t;


static void
on_done(void *data, int status, const char *err, const float *vecs,
    size_t n, size_t dim)
{
    answer_t  *a = data;

    (void) err;
    a->calls++;
    a->status = status;
    a->n = n;
    if (status == 0) {
        cr_assert_eq(dim, FAKE_DIM);
        memcpy(a->first, vecs, sizeof(a->first));
    }
}


static uv_loop_t        loop;
static tg_embed_pool_t *pool;
static const char      *three[] = { "1", "2", "3" };


static void
setup(void)
{
    tg_embed_pool_conf_t  c = { "/m", 1, 0, 2, 0 };
    char                  err[256];

    fake_ncalls = 0;
    fake_fail = 0;
    cr_assert_eq(uv_loop_init(&loop), 0);
    cr_assert_eq(tg_embed_pool_open(&loop, &c, &pool, err, sizeof(err)), 0,
                 "%s", err);
}


static void
teardown(void)
{
    if (pool != NULL) {
        tg_embed_pool_close(pool);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(uv_loop_close(&loop), 0, "every handle closed");
}


Test(embed_pool, open_failure_names_the_file)
{
    tg_embed_pool_conf_t  c = { "/missing", 1, 0, 2, 0 };
    tg_embed_pool_t      *p;
    uv_loop_t             l;
    char                  err[256];

    cr_assert_eq(uv_loop_init(&l), 0);
    cr_assert_eq(tg_embed_pool_open(&l, &c, &p, err, sizeof(err)), -ENOENT);
    cr_assert_not_null(strstr(err, "vocab.txt"));
    cr_assert_null(p);
    cr_assert_eq(uv_loop_close(&l), 0);
}


Test(embed_pool, one_turn_is_one_batch_of_max_batch_calls,
     .init = setup, .fini = teardown)
{
    answer_t               a = { 0 }, b = { 0 };
    tg_embed_job_t        *ja, *jb;
    tg_embed_pool_stats_t  st;
    char                   err[256];

    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 3, on_done, &a,
                                      &ja, err, sizeof(err)), 0);
    cr_assert_eq(tg_embed_pool_submit(pool, three + 1, NULL, 1, on_done, &b,
                                      &jb, err, sizeof(err)), 0);
    cr_assert_eq(a.calls + b.calls, 0, "never called from submit");
    uv_run(&loop, UV_RUN_DEFAULT);

    cr_assert_eq(a.calls, 1);
    cr_assert_eq(b.calls, 1);
    cr_assert_eq(a.n, 3);
    cr_assert_eq(a.first[1], 1.0f, "row 0 of a is text \"1\"");
    cr_assert_eq(b.first[2], 1.0f, "b's row is its own text \"2\"");
    /* 4 texts of one turn, 2 per model call */
    cr_assert_eq(fake_ncalls, 2);
    cr_assert_eq(fake_calls[0], 2);
    cr_assert_eq(fake_calls[1], 2);
    tg_embed_pool_stats(pool, &st);
    cr_assert_eq(st.batches, 2);
    cr_assert_eq(st.texts, 4);
    cr_assert_eq(st.tokens, 12);
    cr_assert_eq(st.waiting, 0);
}


Test(embed_pool, a_full_queue_is_ebusy_at_once, .init = setup,
     .fini = teardown)
{
    answer_t         a = { 0 };
    tg_embed_job_t  *j;
    const char      *nine[9] = { "1", "1", "1", "1", "1", "1", "1", "1",
                                 "1" };
    char             err[256];
    int              i;

    /* max_batch 2: the queue holds 8 texts */
    cr_assert_eq(tg_embed_pool_submit(pool, nine, NULL, 9, on_done, &a, &j,
                                      err, sizeof(err)), -E2BIG);
    for (i = 0; i < 4; i++) {
        cr_assert_eq(tg_embed_pool_submit(pool, nine, NULL, 2, on_done, &a,
                                          &j, err, sizeof(err)), 0);
    }
    cr_assert_eq(tg_embed_pool_submit(pool, nine, NULL, 1, on_done, &a, &j,
                                      err, sizeof(err)), -EBUSY);
    cr_assert_not_null(strstr(err, "queue cap of 8"), "%s", err);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.calls, 4, "refused calls are never called back");
}


Test(embed_pool, cancelled_while_running_is_dropped, .init = setup,
     .fini = teardown)
{
    answer_t         a = { 0 }, b = { 0 }, c = { 0 };
    tg_embed_job_t  *ja, *jb, *jc;
    char             err[256];

    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 2, on_done, &a,
                                      &ja, err, sizeof(err)), 0);
    /* the idle callback starts the batch; the next turn cancels a */
    uv_run(&loop, UV_RUN_NOWAIT);
    tg_embed_job_cancel(ja);
    /* b waits for the next batch and is cancelled there; c runs */
    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 1, on_done, &b,
                                      &jb, err, sizeof(err)), 0);
    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 1, on_done, &c,
                                      &jc, err, sizeof(err)), 0);
    tg_embed_job_cancel(jb);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.calls, 0);
    cr_assert_eq(b.calls, 0);
    cr_assert_eq(c.calls, 1);
}


Test(embed_pool, model_errors_reach_every_job, .init = setup,
     .fini = teardown)
{
    answer_t         a = { 0 };
    tg_embed_job_t  *j;
    char             err[256];

    fake_fail = 1;
    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 3, on_done, &a, &j,
                                      err, sizeof(err)), 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.calls, 1);
    cr_assert_eq(a.status, -EIO);
}


Test(embed_pool, close_with_a_batch_running, .init = setup,
     .fini = teardown)
{
    answer_t         a = { 0 }, b = { 0 };
    tg_embed_job_t  *j;
    char             err[256];

    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 3, on_done, &a, &j,
                                      err, sizeof(err)), 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    cr_assert_eq(tg_embed_pool_submit(pool, three, NULL, 1, on_done, &b, &j,
                                      err, sizeof(err)), 0);
    tg_embed_pool_close(pool);
    pool = NULL;
    uv_run(&loop, UV_RUN_DEFAULT);
    cr_assert_eq(a.calls + b.calls, 0, "a closed pool calls nobody back");
}
