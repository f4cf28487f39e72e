/*
 * Hashed character n-gram similarity on the CPU.
 */

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "score/score.h"


static uint32_t
tg__score_hash(const unsigned char *p, size_t n)
{
    uint32_t  h = 2166136261u;
    size_t    i;

    for (i = 0; i < n; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}


void
tg_score_vector(const char *text, size_t len, float *v)
{
    const unsigned char  *p = (const unsigned char *) text;
    double                norm = 0;
    size_t                i;

    memset(v, 0, TG_SCORE_DIM * sizeof(float));
    if (len == 0) {
        return;
    }
    if (len < TG_SCORE_NGRAM) {
        v[tg__score_hash(p, len) % TG_SCORE_DIM] = 1.0f;
        return;
    }
    for (i = 0; i + TG_SCORE_NGRAM <= len; i++) {
        v[tg__score_hash(p + i, TG_SCORE_NGRAM) % TG_SCORE_DIM] += 1.0f;
    }
    for (i = 0; i < TG_SCORE_DIM; i++) {
        norm += (double) v[i] * v[i];
    }
    norm = sqrt(norm);
    for (i = 0; i < TG_SCORE_DIM; i++) {
        v[i] = (float) (v[i] / norm);
    }
}


int
tg_score_matrix(const char *const *texts, const size_t *lens, size_t n,
    float *sim)
{
    float   *m;
    size_t   i, j, k;
    double   dot;

    if (n == 0) {
        return 0;
    }
    m = malloc(n * TG_SCORE_DIM * sizeof(float));
    if (m == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        tg_score_vector(texts[i], lens[i], m + i * TG_SCORE_DIM);
    }

    /* V * V^T, the upper triangle mirrored. */
    for (i = 0; i < n; i++) {
        for (j = i; j < n; j++) {
            const float  *a = m + i * TG_SCORE_DIM;
            const float  *b = m + j * TG_SCORE_DIM;

            dot = 0;
            for (k = 0; k < TG_SCORE_DIM; k++) {
                dot += (double) a[k] * b[k];
            }
            sim[i * n + j] = (float) dot;
            sim[j * n + i] = (float) dot;
        }
    }
    free(m);
    return 0;
}
