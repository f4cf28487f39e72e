/*
 * thinkgate's own AVX-512 GEMM for the linear layers (gemm_avx512.c):
 * y[m x n] = x[m x k] * w^T with w packed once.  Internal to gemm_cpu.c.
 */
#ifndef TG_EMBED_GEMM_AVX512_H
#define TG_EMBED_GEMM_AVX512_H

#include <stddef.h>

/* Rows of the register tile (by 32 columns). */
#define TG_GEMM_AVX512_MR 12

/* The CPU has AVX-512F and the shape fits the kernel. */
int    tg_gemm_avx512_usable(int n, int k);
size_t tg_gemm_avx512_packed_size(int n, int k);       /* floats */
void   tg_gemm_avx512_pack(const float *w, int n, int k, float *packed);
/* scratch: TG_GEMM_AVX512_MR * (k + 32) floats. */
void   tg_gemm_avx512_run(const float *x, int m, int n, int k,
                          const float *packed, float *y, float *scratch);

#endif /* TG_EMBED_GEMM_AVX512_H */
