/*
 * Text similarity for strategies (plugin.h, api->score): every text
 * becomes a hashed character n-gram vector (TG_SCORE_NGRAM-grams of
 * bytes into TG_SCORE_DIM buckets, FNV-1a, L2-normalized), and the n x n
 * cosine similarities of n texts are one matrix product V * V^T.
 *
 * CPU only for now; the CUDA version (--score-device) keeps this
 * interface.  Pure computation: no loop, no allocation the caller does
 * not see.
 */

#ifndef TG_SCORE_SCORE_H
#define TG_SCORE_SCORE_H

#include <stddef.h>

#define TG_SCORE_NGRAM  3
#define TG_SCORE_DIM    4096

/* The vector of one text into v[TG_SCORE_DIM]; a text shorter than an
 * n-gram hashes whole, an empty one is all zero. */
void tg_score_vector(const char *text, size_t len, float *v);

/*
 * sim[n * n] (row-major) = cosine of every pair of texts: 1 on the
 * diagonal (0 for an empty text).  Returns 0 or -ENOMEM.
 */
int tg_score_matrix(const char *const *texts, const size_t *lens, size_t n,
    float *sim);

#endif /* TG_SCORE_SCORE_H */
