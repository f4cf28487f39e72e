/*
 * Elementwise steps of the forward pass (bert_ops.h).  erf and exp are
 * branch-free polynomials rather than libm calls so that the loops that
 * use them vectorise; target_clones builds each loop for the baseline
 * x86-64, x86-64-v3 (AVX2, FMA) and x86-64-v4 (AVX-512), picked once at
 * load by the CPU the binary meets.  The reductions carry `omp simd`
 * (-fopenmp-simd, no OpenMP runtime) so that they vectorise without
 * -ffast-math; their order changes, their accuracy does not suffer.
 */
#include "embed/bert_ops.h"
#include "embed/bert.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define TG_CLONES \
    __attribute__((target_clones("default", "arch=x86-64-v3", \
                                 "arch=x86-64-v4")))
#else
#define TG_CLONES
#endif

#define TG_LN_EPS 1e-12f

/*
 * erf(x) as x P(x^2) / Q(x^2) on [-4, 4] (beyond that it is +-1 in
 * float): the rational approximation Eigen uses, within a few ulp.
 */
static inline float
tg__erf(float x)
{
    float x2, p, q;

    x = x > 4.0f ? 4.0f : (x < -4.0f ? -4.0f : x);
    x2 = x * x;
    p = -2.72614225801306e-10f;
    p = p * x2 + 2.77068142495902e-08f;
    p = p * x2 + -2.10102402082508e-06f;
    p = p * x2 + -5.69250639462346e-05f;
    p = p * x2 + -7.34990630326855e-04f;
    p = p * x2 + -2.95459980854025e-03f;
    p = p * x2 + -1.60960333262415e-02f;
    q = -1.45660718464996e-05f;
    q = q * x2 + -2.13374055278905e-04f;
    q = q * x2 + -1.68282697438203e-03f;
    q = q * x2 + -7.37332916720468e-03f;
    q = q * x2 + -1.42647390514189e-02f;
    return x * p / q;
}

/*
 * exp(x) for x <= 0 .. 88: x = k ln2 + r with |r| <= ln2 / 2, e^r by its
 * degree-7 Taylor polynomial (relative error below 2e-8), 2^k by building
 * the exponent bits.  Inputs below -87 give 0's neighbour, not a denormal.
 */
static inline float
tg__exp(float x)
{
    const float shift = 12582912.0f;        /* 1.5 * 2^23: rounds to int */
    float       k, r, p, s;
    int32_t     bits;

    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    k = (x * 1.44269504088896341f + shift) - shift;
    r = x - k * 0.693145751953125f;
    r = r - k * 1.42860682030941723212e-6f;
    p = 1.0f / 5040.0f;
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    bits = ((int32_t) k + 127) << 23;
    memcpy(&s, &bits, sizeof(s));
    return p * s;
}

float
tg_bert_erf(float x)
{
    return tg__erf(x);
}

float
tg_bert_exp(float x)
{
    return tg__exp(x);
}

TG_CLONES void
tg_bert_add2(float *row, const float *a, const float *b, size_t n)
{
    size_t j;

    for (j = 0; j < n; j++) {
        row[j] += a[j] + b[j];
    }
}

TG_CLONES void
tg_bert_bias(float *x, size_t rows, size_t cols, const float *bias)
{
    size_t r, j;

    for (r = 0; r < rows; r++, x += cols) {
        for (j = 0; j < cols; j++) {
            x[j] += bias[j];
        }
    }
}

TG_CLONES void
tg_bert_layernorm(float *h, const float *y, const float *bias, size_t rows,
                  const float *g, const float *beta)
{
    size_t  r, j;
    float   mean, var, rstd, d;

    for (r = 0; r < rows; r++, h += TG_BERT_HIDDEN) {
        if (y != NULL) {
            for (j = 0; j < TG_BERT_HIDDEN; j++) {
                h[j] += y[j] + bias[j];
            }
            y += TG_BERT_HIDDEN;
        }
        mean = 0.0f;
#pragma omp simd reduction(+:mean)
        for (j = 0; j < TG_BERT_HIDDEN; j++) {
            mean += h[j];
        }
        mean /= TG_BERT_HIDDEN;
        var = 0.0f;
#pragma omp simd reduction(+:var)
        for (j = 0; j < TG_BERT_HIDDEN; j++) {
            d = h[j] - mean;
            var += d * d;
        }
        rstd = 1.0f / sqrtf(var / TG_BERT_HIDDEN + TG_LN_EPS);
        for (j = 0; j < TG_BERT_HIDDEN; j++) {
            h[j] = (h[j] - mean) * rstd * g[j] + beta[j];
        }
    }
}

TG_CLONES void
tg_bert_softmax(float *s, size_t rows, size_t cols)
{
    size_t  r, j;
    float   max, sum, inv;

    for (r = 0; r < rows; r++, s += cols) {
        max = s[0];
#pragma omp simd reduction(max:max)
        for (j = 1; j < cols; j++) {
            max = s[j] > max ? s[j] : max;
        }
#pragma omp simd
        for (j = 0; j < cols; j++) {
            s[j] = tg__exp(s[j] - max);
        }
        sum = 0.0f;
#pragma omp simd reduction(+:sum)
        for (j = 0; j < cols; j++) {
            sum += s[j];
        }
        inv = 1.0f / sum;
#pragma omp simd
        for (j = 0; j < cols; j++) {
            s[j] *= inv;
        }
    }
}

TG_CLONES void
tg_bert_gelu(float *x, size_t rows, size_t cols, const float *bias)
{
    size_t  r, j;
    float   v;

    for (r = 0; r < rows; r++, x += cols) {
        for (j = 0; j < cols; j++) {
            v = x[j] + bias[j];
            x[j] = 0.5f * v * (1.0f + tg__erf(v * 0.70710678118654752f));
        }
    }
}

void
tg_bert_mean_norm(const float *h, size_t rows, size_t dim, float *out)
{
    double  norm = 0.0;
    size_t  r, j;
    float   inv;

    for (j = 0; j < dim; j++) {
        out[j] = 0.0f;
    }
    for (r = 0; r < rows; r++, h += dim) {
        for (j = 0; j < dim; j++) {
            out[j] += h[j];
        }
    }
    for (j = 0; j < dim; j++) {
        out[j] /= (float) rows;
        norm += (double) out[j] * out[j];
    }
    /* sentence-transformers' Normalize divides by max(norm, 1e-12). */
    norm = sqrt(norm);
    inv = (float) (1.0 / (norm > 1e-12 ? norm : 1e-12));
    for (j = 0; j < dim; j++) {
        out[j] *= inv;
    }
}
