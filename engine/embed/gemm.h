/*
 * The GEMM backends of the embedder: a table of hooks, one per device.
 * Every matrix product of the forward pass is one call through it; the
 * elementwise work (bias, GELU, LayerNorm, softmax) stays on the CPU in
 * bert.c.  All matrices are row-major float32 in host memory as the caller
 * sees them; a device backend moves what it needs.
 *
 * Hooks return 0 or a negative errno code with a message in err.
 */
#ifndef TG_EMBED_GEMM_H
#define TG_EMBED_GEMM_H

#include <stddef.h>

#include "embed/pool.h"

typedef struct tg_gemm_weight_s tg_gemm_weight_t;

typedef struct tg_gemm_ops_s {
    const char *name;                       /* "cpu", "cuda" */
    /* 1: the hooks may run on several threads at once (the forward pass
     * then hands attention out per (sequence, head)); 0: one at a time. */
    int         concurrent;

    /* Takes a copy of the weight w[n x k] (PyTorch Linear layout: out x
     * in), in whatever form the backend multiplies fastest. */
    int  (*weight)(void *ctx, const float *w, int n, int k,
                   tg_gemm_weight_t **out, char *err, size_t err_size);
    void (*weight_free)(void *ctx, tg_gemm_weight_t *w);

    /* y[m x n] = x[m x k] * w^T (ld of x is k, of y is n). */
    int  (*linear)(void *ctx, const float *x, int m,
                   const tg_gemm_weight_t *w, float *y, char *err,
                   size_t err_size);

    /*
     * count products C_i = alpha * A_i * op(B_i), A_i = a + i * sa
     * (m x k, ld lda), B_i = b + i * sb (k x n, ld ldb; n x k when
     * trans_b), C_i = c + i * sc (m x n, ld ldc), overwritten.
     */
    int  (*batched)(void *ctx, int trans_b, int m, int n, int k,
                    float alpha, const float *a, int lda, size_t sa,
                    const float *b, int ldb, size_t sb, float *c, int ldc,
                    size_t sc, int count, char *err, size_t err_size);

    void (*close)(void *ctx);
} tg_gemm_ops_t;

/* The CPU backend (always there): a product's rows are shared out over
 * pool's threads, each running a single-threaded OpenBLAS sgemm. */
int tg_gemm_cpu_open(tg_embed_pool_t *pool, const tg_gemm_ops_t **ops,
                     void **ctx, char *err, size_t err_size);

/* The cuBLAS backend: -ENODEV with err saying why when libcudart or
 * libcublas cannot be loaded or no device answers. */
int tg_gemm_cuda_open(const tg_gemm_ops_t **ops, void **ctx, char *err,
                      size_t err_size);

#endif /* TG_EMBED_GEMM_H */
