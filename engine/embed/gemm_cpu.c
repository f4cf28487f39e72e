/*
 * The CPU GEMM backend: the linear layers through our AVX-512 kernel
 * (gemm_avx512.c) where the CPU has it, OpenBLAS's sgemm otherwise and
 * for attention (Debian's libopenblas, whose kernels are chosen at run
 * time for the CPU it meets).  Weights are
 * copied into 64-byte aligned rows at load so that the hot loop never
 * touches the (possibly unaligned) mapping of the model file.  OpenBLAS
 * runs single-threaded: the embedder's pool shares a product's rows out
 * instead, so that GEMMs and the elementwise steps use the same threads
 * and never more than the operator gave.
 */
#include "embed/gemm.h"
#include "embed/gemm_avx512.h"

#include <cblas.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The largest k the own kernel takes (its scratch is on the stack). */
#define TG_GEMM_OWN_MAX_K 2048

struct tg_gemm_weight_s {
    int     n;
    int     k;
    float  *w;                              /* n x k, row-major */
    float  *packed;                         /* for the own kernel, or NULL */
};

typedef struct {
    tg_embed_pool_t    *pool;
    int                 own;                /* own kernel where it fits */
} tg_gemm_cpu_t;

/* One product shared out by rows. */
typedef struct {
    const float            *x;
    const tg_gemm_weight_t *w;
    float                  *y;
    int                     m;
    int                     chunk;
} tg_gemm_cpu_job_t;

static int  tg__cpu_weight(void *ctx, const float *w, int n, int k,
                           tg_gemm_weight_t **out, char *err,
                           size_t err_size);
static void tg__cpu_weight_free(void *ctx, tg_gemm_weight_t *w);
static int  tg__cpu_linear(void *ctx, const float *x, int m,
                           const tg_gemm_weight_t *w, float *y, char *err,
                           size_t err_size);
static int  tg__cpu_batched(void *ctx, int trans_b, int m, int n, int k,
                            float alpha, const float *a, int lda, size_t sa,
                            const float *b, int ldb, size_t sb, float *c,
                            int ldc, size_t sc, int count, char *err,
                            size_t err_size);
static void tg__cpu_close(void *ctx);
static void tg__cpu_linear_unit(void *arg, size_t unit, int worker);

static const tg_gemm_ops_t tg__cpu_ops = {
    "cpu",
    1,
    tg__cpu_weight,
    tg__cpu_weight_free,
    tg__cpu_linear,
    tg__cpu_batched,
    tg__cpu_close
};

int
tg_gemm_cpu_open(tg_embed_pool_t *pool, const tg_gemm_ops_t **ops,
                 void **ctx, char *err, size_t err_size)
{
    tg_gemm_cpu_t  *cpu;

    cpu = calloc(1, sizeof(*cpu));
    if (cpu == NULL) {
        snprintf(err, err_size, "cpu gemm: out of memory");
        return -ENOMEM;
    }
    cpu->pool = pool;
    /* Our AVX-512 kernel where the CPU has it: as fast as OpenBLAS's on
     * large batches and about 10% faster on one short text, since the
     * weight is packed once rather than on every call (measured on a
     * Sapphire Rapids core).  TG_EMBED_GEMM=openblas measures the other. */
    cpu->own = getenv("TG_EMBED_GEMM") == NULL
               || strcmp(getenv("TG_EMBED_GEMM"), "openblas") != 0;
    /* Process-wide: OpenBLAS's own threads would compete with the pool's
     * (and with other embedders'). */
    openblas_set_num_threads(1);
    *ops = &tg__cpu_ops;
    *ctx = cpu;
    return 0;
}

static int
tg__cpu_weight(void *ctx, const float *w, int n, int k,
               tg_gemm_weight_t **out, char *err, size_t err_size)
{
    tg_gemm_weight_t   *wt;
    size_t              bytes = (size_t) n * (size_t) k * sizeof(float);

    wt = calloc(1, sizeof(*wt));
    if (wt == NULL
        || posix_memalign((void **) &wt->w, 64, bytes ? bytes : 64) != 0)
    {
        free(wt);
        snprintf(err, err_size, "cpu gemm: out of memory for a %d x %d "
                 "weight", n, k);
        return -ENOMEM;
    }
    memcpy(wt->w, w, bytes);
    wt->n = n;
    wt->k = k;
    if (((tg_gemm_cpu_t *) ctx)->own && k <= TG_GEMM_OWN_MAX_K
        && tg_gemm_avx512_usable(n, k))
    {
        if (posix_memalign((void **) &wt->packed, 64,
                           tg_gemm_avx512_packed_size(n, k) * sizeof(float))
            != 0)
        {
            free(wt->w);
            free(wt);
            snprintf(err, err_size, "cpu gemm: out of memory for a %d x %d "
                     "weight", n, k);
            return -ENOMEM;
        }
        tg_gemm_avx512_pack(w, n, k, wt->packed);
    }
    *out = wt;
    return 0;
}

static void
tg__cpu_weight_free(void *ctx, tg_gemm_weight_t *w)
{
    (void) ctx;
    if (w != NULL) {
        free(w->packed);
        free(w->w);
        free(w);
    }
}

static void
tg__cpu_linear_unit(void *arg, size_t unit, int worker)
{
    tg_gemm_cpu_job_t  *job = arg;
    int                 r0 = (int) unit * job->chunk;
    int                 rows = job->m - r0;

    (void) worker;
    rows = rows < job->chunk ? rows : job->chunk;
    if (job->w->packed != NULL) {
        float scratch[TG_GEMM_AVX512_MR * (TG_GEMM_OWN_MAX_K + 32)];

        tg_gemm_avx512_run(job->x + (size_t) r0 * job->w->k, rows, job->w->n,
                           job->w->k, job->w->packed,
                           job->y + (size_t) r0 * job->w->n, scratch);
        return;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, job->w->n,
                job->w->k, 1.0f, job->x + (size_t) r0 * job->w->k,
                job->w->k, job->w->w, job->w->k, 0.0f,
                job->y + (size_t) r0 * job->w->n, job->w->n);
}

static int
tg__cpu_linear(void *ctx, const float *x, int m, const tg_gemm_weight_t *w,
               float *y, char *err, size_t err_size)
{
    tg_gemm_cpu_t      *cpu = ctx;
    tg_gemm_cpu_job_t   job = { x, w, y, m, m };
    int                 threads = tg_embed_pool_threads(cpu->pool);

    (void) err;
    (void) err_size;
    if (m <= 0) {
        return 0;
    }
    if (threads > 1) {
        /* Two units a thread, so that a thread slowed by a neighbour is
         * evened out; at least 32 rows, a multiple of 16 (the kernels'
         * row blocks). */
        job.chunk = (m + 2 * threads - 1) / (2 * threads);
        job.chunk = (job.chunk + 15) / 16 * 16;
        job.chunk = job.chunk < 32 ? 32 : job.chunk;
    }
    tg_embed_pool_run(cpu->pool, tg__cpu_linear_unit, &job,
                      (size_t) ((m + job.chunk - 1) / job.chunk));
    return 0;
}

static int
tg__cpu_batched(void *ctx, int trans_b, int m, int n, int k, float alpha,
                const float *a, int lda, size_t sa, const float *b, int ldb,
                size_t sb, float *c, int ldc, size_t sc, int count,
                char *err, size_t err_size)
{
    int i;

    (void) ctx;
    (void) err;
    (void) err_size;
    for (i = 0; i < count; i++) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha,
                    a + (size_t) i * sa, lda, b + (size_t) i * sb, ldb,
                    0.0f, c + (size_t) i * sc, ldc);
    }
    return 0;
}

static void
tg__cpu_close(void *ctx)
{
    free(ctx);
}
