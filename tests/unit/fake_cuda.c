/*
 * A stand-in for libcudart and libcublas, for tests only: the handful of
 * entry points gemm_cuda.c resolves, computed on the CPU with cuBLAS's
 * column-major contract (operands packed so that each C(i,j) is one
 * contiguous dot product; the plain triple loop took two minutes of
 * make test).  Built as $(BUILD)/tests/fake_cuda/libcudart.so.13 and libcublas.so.13; with
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

/* Copies op(X) for one operand into rows of k contiguous floats: row r is
 * row r of op(A) (rows = m) or column r of op(B) (rows = n), so that every
 * C(i,j) is a dot product of two contiguous rows.  Column-major X with
 * leading dimension ld; "trans" as cuBLAS means it. */
static float *
fake_pack(const float *x, int ld, int rows, int k, int row_major_src)
{
    float  *out;
    int     r, p;

    out = malloc((size_t) rows * k * sizeof(float) + 1);
    if (out == NULL) {
        return NULL;
    }
    for (r = 0; r < rows; r++) {
        for (p = 0; p < k; p++) {
            out[(size_t) r * k + p] = row_major_src
                ? x[p + (size_t) r * ld] : x[r + (size_t) p * ld];
        }
    }
    return out;
}

int
cublasSgemm_v2(void *h, int ta, int tb, int m, int n, int k,
               const float *alpha, const float *a, int lda, const float *b,
               int ldb, const float *beta, float *c, int ldc)
{
    float  *pa, *pb, *ra, *rb, sum;
    int     i, j, p;

    (void) h;
    /* op(A)(i,p) = ta ? A(p,i) : A(i,p); op(B)(p,j) = tb ? B(j,p) : B(p,j) */
    pa = fake_pack(a, lda, m, k, ta);
    pb = fake_pack(b, ldb, n, k, !tb);
    if (pa == NULL || pb == NULL) {
        free(pa);
        free(pb);
        return 3;                               /* ALLOC_FAILED */
    }
    for (j = 0; j < n; j++) {
        rb = pb + (size_t) j * k;
        for (i = 0; i < m; i++) {
            ra = pa + (size_t) i * k;
            sum = 0.0f;
#pragma omp simd reduction(+:sum)
            for (p = 0; p < k; p++) {
                sum += ra[p] * rb[p];
            }
            c[i + (size_t) j * ldc] = *alpha * sum
                + (*beta != 0.0f ? *beta * c[i + (size_t) j * ldc] : 0.0f);
        }
    }
    free(pa);
    free(pb);
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
