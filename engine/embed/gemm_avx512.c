/*
 * thinkgate's own GEMM kernel for the linear layers, AVX-512 only:
 * y[m x n] = x[m x k] * w^T with w packed once at load into panels of 32
 * output columns by 192 inputs, so that the hot loop reads the weight
 * contiguously and never repacks it (OpenBLAS packs it on every call).
 * 12 x 32 register tile: 24 zmm accumulators, two weight loads and
 * twelve broadcasts per 24 FMAs.  Compiled with a target attribute and used only
 * when the CPU says it has AVX-512F (gemm_cpu.c asks); n must be a
 * multiple of 32, k a multiple of 16 (the model's 384, 1152, 1536 are).
 */
#include "embed/gemm_avx512.h"

#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#define MR  TG_GEMM_AVX512_MR
#define NR  32
#define KC  192
#define NC  256

#define TG_AVX512 __attribute__((target("avx512f,fma")))

static size_t
tg__kc(int k)
{
    return k % KC == 0 ? KC : (size_t) k;
}

int
tg_gemm_avx512_usable(int n, int k)
{
#if !defined(__x86_64__)
    (void) n;
    (void) k;
    return 0;
#else
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && n % NR == 0 && k % 16 == 0
           && k > 0;
#endif
}

size_t
tg_gemm_avx512_packed_size(int n, int k)
{
    return (size_t) n * (size_t) k;
}

/* packed[(jp * kblocks + kb)][p][c] = w[jp * 32 + c][kb * KC + p] */
void
tg_gemm_avx512_pack(const float *w, int n, int k, float *packed)
{
    size_t  kc = tg__kc(k), kb, p, c, jp;
    float  *dst = packed;

    for (jp = 0; jp < (size_t) n / NR; jp++) {
        for (kb = 0; kb < (size_t) k / kc; kb++) {
            for (p = 0; p < kc; p++) {
                for (c = 0; c < NR; c++) {
                    *dst++ = w[(jp * NR + c) * (size_t) k + kb * kc + p];
                }
            }
        }
    }
}

#if defined(__x86_64__)

TG_AVX512 static void
tg__avx512_tile(size_t kc, const float *a, size_t lda, const float *b,
                float *c, size_t ldc, int first)
{
    __m512  acc[MR][2], b0, b1, av;
    size_t  p;
    int     r;

    for (r = 0; r < MR; r++) {
        if (first) {
            acc[r][0] = _mm512_setzero_ps();
            acc[r][1] = _mm512_setzero_ps();
        } else {
            acc[r][0] = _mm512_loadu_ps(c + r * ldc);
            acc[r][1] = _mm512_loadu_ps(c + r * ldc + 16);
        }
    }
    for (p = 0; p < kc; p++, b += NR) {
        b0 = _mm512_load_ps(b);
        b1 = _mm512_load_ps(b + 16);
        for (r = 0; r < MR; r++) {
            av = _mm512_set1_ps(a[r * lda + p]);
            acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
        }
    }
    for (r = 0; r < MR; r++) {
        _mm512_storeu_ps(c + r * ldc, acc[r][0]);
        _mm512_storeu_ps(c + r * ldc + 16, acc[r][1]);
    }
}

/*
 * GotoBLAS order: a block of NC columns by KC inputs of the packed weight
 * stays in L2 while every 12-row micro-panel of x (L1) meets each of its
 * 32-column panels.  Rows that do not fill a tile go through a
 * zero-padded copy (a and c), scratch of MR * (k + NR) floats given by
 * the caller.
 */
TG_AVX512 void
tg_gemm_avx512_run(const float *x, int m, int n, int k, const float *packed,
                   float *y, float *scratch)
{
    size_t  kc = tg__kc(k), kblocks = (size_t) k / kc;
    size_t  jc, jend, kb, jp, i, rows, r;
    float  *pa = scratch, *pc = scratch + (size_t) MR * k;

    for (jc = 0; jc < (size_t) n; jc += NC) {
        jend = jc + NC < (size_t) n ? jc + NC : (size_t) n;
        for (kb = 0; kb < kblocks; kb++) {
            for (i = 0; i < (size_t) m; i += MR) {
                const float *a = x + i * k + kb * kc;
                size_t       lda = (size_t) k;

                rows = (size_t) m - i < MR ? (size_t) m - i : MR;
                if (rows < MR) {
                    memset(pa, 0, (size_t) MR * kc * sizeof(float));
                    for (r = 0; r < rows; r++) {
                        memcpy(pa + r * kc, a + r * k, kc * sizeof(float));
                    }
                    a = pa;
                    lda = kc;
                }
                for (jp = jc; jp < jend; jp += NR) {
                    const float *b = packed + (jp / NR) * kblocks * kc * NR
                                     + kb * kc * NR;
                    float       *c = y + i * n + jp;

                    if (rows == MR) {
                        tg__avx512_tile(kc, a, lda, b, c, (size_t) n,
                                        kb == 0);
                        continue;
                    }
                    for (r = 0; r < rows && kb > 0; r++) {
                        memcpy(pc + r * NR, c + r * n, NR * sizeof(float));
                    }
                    tg__avx512_tile(kc, a, lda, b, pc, NR, kb == 0);
                    for (r = 0; r < rows; r++) {
                        memcpy(c + r * n, pc + r * NR, NR * sizeof(float));
                    }
                }
            }
        }
    }
}

#else /* !__x86_64__: never usable, so never called */

void
tg_gemm_avx512_run(const float *x, int m, int n, int k, const float *packed,
                   float *y, float *scratch)
{
    (void) x;
    (void) m;
    (void) n;
    (void) k;
    (void) packed;
    (void) y;
    (void) scratch;
    abort();
}

#endif
