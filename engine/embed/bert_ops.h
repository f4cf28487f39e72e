/*
 * The elementwise steps of the BERT forward pass (bert.c), written so that
 * the compiler vectorises them; bert_ops.c builds them for the baseline
 * x86-64 and for AVX2+FMA / AVX-512 with the best one picked at load.
 * Rows are contiguous; H is TG_BERT_HIDDEN.
 */
#ifndef TG_EMBED_BERT_OPS_H
#define TG_EMBED_BERT_OPS_H

#include <stddef.h>

/* row[j] += a[j] + b[j]. */
void tg_bert_add2(float *row, const float *a, const float *b, size_t n);

/* x[r][j] += bias[j] for rows x cols. */
void tg_bert_bias(float *x, size_t rows, size_t cols, const float *bias);

/* h = LayerNorm(h + y + bias) over each row of H (y, bias may be NULL:
 * h alone), gain g, shift beta, eps 1e-12. */
void tg_bert_layernorm(float *h, const float *y, const float *bias,
                       size_t rows, const float *g, const float *beta);

/* Softmax of each row of s (rows x cols), in place. */
void tg_bert_softmax(float *s, size_t rows, size_t cols);

/* x = GELU(x + bias) with the exact (erf) GELU, rows x cols. */
void tg_bert_gelu(float *x, size_t rows, size_t cols, const float *bias);

/* out[dim] = mean of the rows of h (rows x dim), L2-normalised. */
void tg_bert_mean_norm(const float *h, size_t rows, size_t dim, float *out);

/* The vectorised erf and exp the steps use, exposed for the unit test. */
float tg_bert_erf(float x);
float tg_bert_exp(float x);

#endif /* TG_EMBED_BERT_OPS_H */
