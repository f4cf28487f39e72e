/*
 * The cuBLAS GEMM backend.  libcudart and libcublas are loaded with dlopen
 * when an embedder asks for a GPU, so building thinkgate and running the
 * CPU path need neither the CUDA toolkit nor a driver.  Weights are copied
 * to the device once; each product moves its activations in and its
 * result out (the elementwise steps stay on the CPU, bert.c).
 *
 * cuBLAS is column-major: a row-major C = A op(B) is computed as the
 * column-major C^T = op(B)^T A^T, that is the same buffers with the
 * operands swapped.
 */
#include "embed/gemm.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The few CUDA and cuBLAS types the backend uses, as their ABI has them. */
typedef int   tg_cuda_err_t;
typedef int   tg_cublas_status_t;
typedef void *tg_cublas_handle_t;

#define TG_CUDA_H2D     1                   /* cudaMemcpyHostToDevice */
#define TG_CUDA_D2H     2                   /* cudaMemcpyDeviceToHost */
#define TG_CUBLAS_OP_N  0
#define TG_CUBLAS_OP_T  1

struct tg_gemm_weight_s {
    int     n;
    int     k;
    float  *dev;                            /* n x k, row-major */
};

typedef struct {
    void   *cudart;
    void   *cublas;
    tg_cublas_handle_t handle;

    tg_cuda_err_t (*get_device_count)(int *);
    tg_cuda_err_t (*malloc_)(void **, size_t);
    tg_cuda_err_t (*free_)(void *);
    tg_cuda_err_t (*memcpy_)(void *, const void *, size_t, int);
    const char   *(*error_string)(tg_cuda_err_t);
    tg_cublas_status_t (*create)(tg_cublas_handle_t *);
    tg_cublas_status_t (*destroy)(tg_cublas_handle_t);
    tg_cublas_status_t (*sgemm)(tg_cublas_handle_t, int, int, int, int,
                                int, const float *, const float *, int,
                                const float *, int, const float *, float *,
                                int);
    tg_cublas_status_t (*sgemm_batched)(tg_cublas_handle_t, int, int, int,
                                        int, int, const float *,
                                        const float *, int, long long,
                                        const float *, int, long long,
                                        const float *, float *, int,
                                        long long, int);

    /* Device scratch for activations, grown as needed. */
    float  *buf[3];
    size_t  cap[3];
} tg_gemm_cuda_t;

static int  tg__cuda_weight(void *ctx, const float *w, int n, int k,
                            tg_gemm_weight_t **out, char *err,
                            size_t err_size);
static void tg__cuda_weight_free(void *ctx, tg_gemm_weight_t *w);
static int  tg__cuda_linear(void *ctx, const float *x, int m,
                            const tg_gemm_weight_t *w, float *y, char *err,
                            size_t err_size);
static int  tg__cuda_batched(void *ctx, int trans_b, int m, int n, int k,
                             float alpha, const float *a, int lda,
                             size_t sa, const float *b, int ldb, size_t sb,
                             float *c, int ldc, size_t sc, int count,
                             char *err, size_t err_size);
static void tg__cuda_close(void *ctx);
static int  tg__cuda_buf(tg_gemm_cuda_t *cu, int i, size_t floats,
                         char *err, size_t err_size);
static int  tg__cuda_copy(tg_gemm_cuda_t *cu, void *dst, const void *src,
                          size_t bytes, int kind, char *err,
                          size_t err_size);

static const tg_gemm_ops_t tg__cuda_ops = {
    "cuda",
    0,
    tg__cuda_weight,
    tg__cuda_weight_free,
    tg__cuda_linear,
    tg__cuda_batched,
    tg__cuda_close
};

static const char *
tg__cuda_err_name(int code)
{
    switch (code) {
    case 35:  return "insufficient driver";
    case 100: return "no device";
    case 999: return "unknown error";
    default:  return "see the CUDA runtime's error codes";
    }
}

int
tg_gemm_cuda_open(const tg_gemm_ops_t **ops, void **ctx, char *err,
                  size_t err_size)
{
    static const char *const cudart_names[] = {
        "libcudart.so.13", "libcudart.so.12", "libcudart.so", NULL };
    static const char *const cublas_names[] = {
        "libcublas.so.13", "libcublas.so.12", "libcublas.so", NULL };
    tg_gemm_cuda_t *cu;
    const char     *missing = NULL;
    int             count = 0, rc, i;

    cu = calloc(1, sizeof(*cu));
    if (cu == NULL) {
        snprintf(err, err_size, "cuda: out of memory");
        return -ENOMEM;
    }
    for (i = 0; cudart_names[i] != NULL && cu->cudart == NULL; i++) {
        cu->cudart = dlopen(cudart_names[i], RTLD_NOW | RTLD_LOCAL);
    }
    for (i = 0; cublas_names[i] != NULL && cu->cublas == NULL; i++) {
        cu->cublas = dlopen(cublas_names[i], RTLD_NOW | RTLD_LOCAL);
    }
    if (cu->cudart == NULL || cu->cublas == NULL) {
        snprintf(err, err_size, "no CUDA: cannot load %s (%s)",
                 cu->cudart == NULL ? "libcudart.so.13" : "libcublas.so.13",
                 dlerror());
        rc = -ENODEV;
        goto failed;
    }
#define TG_SYM(lib, field, name) \
    do { \
        *(void **) &cu->field = dlsym(cu->lib, name); \
        if (cu->field == NULL && missing == NULL) { \
            missing = name; \
        } \
    } while (0)
    TG_SYM(cudart, get_device_count, "cudaGetDeviceCount");
    TG_SYM(cudart, malloc_, "cudaMalloc");
    TG_SYM(cudart, free_, "cudaFree");
    TG_SYM(cudart, memcpy_, "cudaMemcpy");
    TG_SYM(cudart, error_string, "cudaGetErrorString");
    TG_SYM(cublas, create, "cublasCreate_v2");
    TG_SYM(cublas, destroy, "cublasDestroy_v2");
    TG_SYM(cublas, sgemm, "cublasSgemm_v2");
    TG_SYM(cublas, sgemm_batched, "cublasSgemmStridedBatched");
#undef TG_SYM
    if (missing != NULL) {
        snprintf(err, err_size, "no CUDA: symbol %s not found", missing);
        rc = -ENODEV;
        goto failed;
    }
    rc = cu->get_device_count(&count);
    if (rc != 0 || count < 1) {
        if (rc != 0) {
            snprintf(err, err_size, "no CUDA device: cudaGetDeviceCount "
                     "returned %d (%s)", rc, tg__cuda_err_name(rc));
        } else {
            snprintf(err, err_size, "no CUDA device: cudaGetDeviceCount "
                     "found none");
        }
        rc = -ENODEV;
        goto failed;
    }
    rc = cu->create(&cu->handle);
    if (rc != 0) {
        snprintf(err, err_size, "cuda: cublasCreate_v2 returned %d", rc);
        cu->handle = NULL;
        rc = -ENODEV;
        goto failed;
    }
    *ops = &tg__cuda_ops;
    *ctx = cu;
    return 0;

failed:
    tg__cuda_close(cu);
    return rc;
}

static void
tg__cuda_close(void *ctx)
{
    tg_gemm_cuda_t *cu = ctx;
    int             i;

    if (cu == NULL) {
        return;
    }
    for (i = 0; i < 3; i++) {
        if (cu->buf[i] != NULL) {
            cu->free_(cu->buf[i]);
        }
    }
    if (cu->handle != NULL) {
        cu->destroy(cu->handle);
    }
    /* The libraries stay loaded (dlopen counts references, a second
     * embedder finds them there): unloading the CUDA runtime or the C++
     * runtime it pulls in is not safe while anything of them may run, and
     * it loses their static buffers. */
    free(cu);
}

static int
tg__cuda_copy(tg_gemm_cuda_t *cu, void *dst, const void *src, size_t bytes,
              int kind, char *err, size_t err_size)
{
    tg_cuda_err_t rc;

    rc = cu->memcpy_(dst, src, bytes, kind);
    if (rc != 0) {
        snprintf(err, err_size, "cuda: cudaMemcpy of %zu bytes: %s", bytes,
                 cu->error_string(rc));
        return -EIO;
    }
    return 0;
}

static int
tg__cuda_buf(tg_gemm_cuda_t *cu, int i, size_t floats, char *err,
             size_t err_size)
{
    tg_cuda_err_t rc;

    if (floats <= cu->cap[i]) {
        return 0;
    }
    if (cu->buf[i] != NULL) {
        cu->free_(cu->buf[i]);
        cu->buf[i] = NULL;
        cu->cap[i] = 0;
    }
    rc = cu->malloc_((void **) &cu->buf[i], floats * sizeof(float));
    if (rc != 0) {
        cu->buf[i] = NULL;
        snprintf(err, err_size, "cuda: cudaMalloc of %zu bytes: %s",
                 floats * sizeof(float), cu->error_string(rc));
        return -EIO;
    }
    cu->cap[i] = floats;
    return 0;
}

static int
tg__cuda_weight(void *ctx, const float *w, int n, int k,
                tg_gemm_weight_t **out, char *err, size_t err_size)
{
    tg_gemm_cuda_t     *cu = ctx;
    tg_gemm_weight_t   *wt;
    size_t              bytes = (size_t) n * (size_t) k * sizeof(float);
    tg_cuda_err_t       rc;

    wt = calloc(1, sizeof(*wt));
    if (wt == NULL) {
        snprintf(err, err_size, "cuda: out of memory");
        return -ENOMEM;
    }
    rc = cu->malloc_((void **) &wt->dev, bytes);
    if (rc != 0) {
        snprintf(err, err_size, "cuda: cudaMalloc of %zu bytes: %s", bytes,
                 cu->error_string(rc));
        free(wt);
        return -EIO;
    }
    if (tg__cuda_copy(cu, wt->dev, w, bytes, TG_CUDA_H2D, err, err_size)) {
        cu->free_(wt->dev);
        free(wt);
        return -EIO;
    }
    wt->n = n;
    wt->k = k;
    *out = wt;
    return 0;
}

static void
tg__cuda_weight_free(void *ctx, tg_gemm_weight_t *w)
{
    tg_gemm_cuda_t *cu = ctx;

    if (w != NULL) {
        cu->free_(w->dev);
        free(w);
    }
}

static int
tg__cuda_linear(void *ctx, const float *x, int m, const tg_gemm_weight_t *w,
                float *y, char *err, size_t err_size)
{
    tg_gemm_cuda_t *cu = ctx;
    size_t          xs = (size_t) m * w->k, ys = (size_t) m * w->n;
    const float     one = 1.0f, zero = 0.0f;
    int             rc;

    if ((rc = tg__cuda_buf(cu, 0, xs, err, err_size)) != 0
        || (rc = tg__cuda_buf(cu, 2, ys, err, err_size)) != 0
        || (rc = tg__cuda_copy(cu, cu->buf[0], x, xs * sizeof(float),
                               TG_CUDA_H2D, err, err_size)) != 0)
    {
        return rc;
    }
    /* Row-major y = x w^T is column-major y^T = w x^T: w is stored k x n
     * column-major (ld k), so it goes transposed. */
    rc = cu->sgemm(cu->handle, TG_CUBLAS_OP_T, TG_CUBLAS_OP_N, w->n, m,
                   w->k, &one, w->dev, w->k, cu->buf[0], w->k, &zero,
                   cu->buf[2], w->n);
    if (rc != 0) {
        snprintf(err, err_size, "cuda: cublasSgemm_v2 (%d x %d x %d) "
                 "returned %d", m, w->n, w->k, rc);
        return -EIO;
    }
    return tg__cuda_copy(cu, y, cu->buf[2], ys * sizeof(float), TG_CUDA_D2H,
                         err, err_size);
}

static int
tg__cuda_batched(void *ctx, int trans_b, int m, int n, int k, float alpha,
                 const float *a, int lda, size_t sa, const float *b, int ldb,
                 size_t sb, float *c, int ldc, size_t sc, int count,
                 char *err, size_t err_size)
{
    tg_gemm_cuda_t *cu = ctx;
    const float     zero = 0.0f;
    size_t          an, bn, cn;
    int             rc;

    /* The spans of host memory the count matrices cover. */
    an = (size_t) (count - 1) * sa + (size_t) (m - 1) * lda + k;
    bn = trans_b ? (size_t) (count - 1) * sb + (size_t) (n - 1) * ldb + k
                 : (size_t) (count - 1) * sb + (size_t) (k - 1) * ldb + n;
    cn = (size_t) (count - 1) * sc + (size_t) (m - 1) * ldc + n;
    if ((rc = tg__cuda_buf(cu, 0, an, err, err_size)) != 0
        || (rc = tg__cuda_buf(cu, 1, bn, err, err_size)) != 0
        || (rc = tg__cuda_buf(cu, 2, cn, err, err_size)) != 0
        || (rc = tg__cuda_copy(cu, cu->buf[0], a, an * sizeof(float),
                               TG_CUDA_H2D, err, err_size)) != 0
        || (rc = tg__cuda_copy(cu, cu->buf[1], b, bn * sizeof(float),
                               TG_CUDA_H2D, err, err_size)) != 0)
    {
        return rc;
    }
    /* C may be strided into a wider matrix: unless the count matrices
     * tile their span (heads side by side in ctx), bring the gaps along
     * so that copying the span back does not overwrite them. */
    if (!(ldc == n && sc == (size_t) m * ldc)
        && !(sc == (size_t) n && (size_t) n * count == (size_t) ldc))
    {
        rc = tg__cuda_copy(cu, cu->buf[2], c, cn * sizeof(float),
                           TG_CUDA_H2D, err, err_size);
        if (rc != 0) {
            return rc;
        }
    }
    rc = cu->sgemm_batched(cu->handle,
                           trans_b ? TG_CUBLAS_OP_T : TG_CUBLAS_OP_N,
                           TG_CUBLAS_OP_N, n, m, k, &alpha, cu->buf[1], ldb,
                           (long long) sb, cu->buf[0], lda, (long long) sa,
                           &zero, cu->buf[2], ldc, (long long) sc, count);
    if (rc != 0) {
        snprintf(err, err_size, "cuda: cublasSgemmStridedBatched (%d x %d "
                 "x %d, %d) returned %d", m, n, k, count, rc);
        return -EIO;
    }
    return tg__cuda_copy(cu, c, cu->buf[2], cn * sizeof(float), TG_CUDA_D2H,
                         err, err_size);
}
