/*
 * A stand-in for libcudart and libcublas, for tests only: the handful of
 * entry points gemm_cuda.c resolves, computed on the CPU in plain
 * column-major loops as cuBLAS defines them.  Built as
 * $(BUILD)/tests/fake_cuda/libcudart.so.13 and libcublas.so.13; with
 * LD_LIBRARY_PATH pointing there, --device cuda runs the real backend code
 * (operand swap, strides, spans, copies) on a machine without a GPU, so
 * tests/e2e/test_embed_model.py can hold it to the CPU path.
 */
#include <stdlib.h>
#include <string.h>

int cudaGetDeviceCount(int *count);
int cudaMalloc(void **p, size_t size);
int cudaFree(void *p);
int cudaMemcpy(void *dst, const void *src, size_t size, int kind);
const char *cudaGetErrorString(int err);
int cublasCreate_v2(void **handle);
int cublasDestroy_v2(void *handle);
int cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k,
                   const float *alpha, const float *a, int lda,
                   const float *b, int ldb, const float *beta, float *c,
                   int ldc);
int cublasSgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k,
                              const float *alpha, const float *a, int lda,
                              long long sa, const float *b, int ldb,
                              long long sb, const float *beta, float *c,
                              int ldc, long long sc, int count);

int
cudaGetDeviceCount(int *count)
{
    *count = 1;
    return 0;
}

int
cudaMalloc(void **p, size_t size)
{
    *p = malloc(size ? size : 1);
    return *p == NULL ? 2 : 0;              /* cudaErrorMemoryAllocation */
}

int
cudaFree(void *p)
{
    free(p);
    return 0;
}

int
cudaMemcpy(void *dst, const void *src, size_t size, int kind)
{
    (void) kind;
    memcpy(dst, src, size);
    return 0;
}

const char *
cudaGetErrorString(int err)
{
    return err ? "fake cuda error" : "no error";
}

int
cublasCreate_v2(void **handle)
{
    static int token;

    *handle = &token;
    return 0;
}

int
cublasDestroy_v2(void *handle)
{
    (void) handle;
    return 0;
}

int
cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k,
               const float *alpha, const float *a, int lda, const float *b,
               int ldb, const float *beta, float *c, int ldc)
{
    int     i, j, p;
    float   sum, x, y;

    (void) h;
    for (j = 0; j < n; j++) {
        for (i = 0; i < m; i++) {
            sum = 0.0f;
            for (p = 0; p < k; p++) {
                x = ta ? a[p + (size_t) i * lda] : a[i + (size_t) p * lda];
                y = tb ? b[j + (size_t) p * ldb] : b[p + (size_t) j * ldb];
                sum += x * y;
            }
            c[i + (size_t) j * ldc] = *alpha * sum
                + (*beta != 0.0f ? *beta * c[i + (size_t) j * ldc] : 0.0f);
        }
    }
    return 0;
}

int
cublasSgemmStridedBatched(void *h, int ta, int tb, int m, int n, int k,
                          const float *alpha, const float *a, int lda,
                          long long sa, const float *b, int ldb,
                          long long sb, const float *beta, float *c, int ldc,
                          long long sc, int count)
{
    int i;

    for (i = 0; i < count; i++) {
        cublasSgemm_v2(h, ta, tb, m, n, k, alpha, a + i * sa, lda,
                       b + i * sb, ldb, beta, c + i * sc, ldc);
    }
    return 0;
}
