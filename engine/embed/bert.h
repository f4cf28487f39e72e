/*
 * The BERT encoder of all-MiniLM-L6-v2 (6 layers, hidden 384, 12 heads,
 * intermediate 1536, GELU, LayerNorm eps 1e-12, 512 positions) read from a
 * safetensors file, and its forward pass from token ids to mean-pooled,
 * L2-normalised sentence embeddings.  Internal to engine/embed/.
 */
#ifndef TG_EMBED_BERT_H
#define TG_EMBED_BERT_H

#include <stddef.h>
#include <stdint.h>

#include "embed/gemm.h"
#include "embed/pool.h"

#define TG_BERT_HIDDEN      384
#define TG_BERT_HEADS       12
#define TG_BERT_HEAD_DIM    32
#define TG_BERT_INTER       1536
#define TG_BERT_LAYERS      6
#define TG_BERT_POSITIONS   512
#define TG_BERT_VOCAB       30522

typedef struct tg_bert_s tg_bert_t;

/* Loads and checks every tensor (name, dtype, shape) of path and hands
 * the weight matrices to the backend; the forward pass spreads its
 * steps over pool's threads. */
int  tg_bert_load(const char *path, const tg_gemm_ops_t *ops, void *gemm,
                  tg_embed_pool_t *pool, tg_bert_t **out, char *err,
                  size_t err_size);
void tg_bert_free(tg_bert_t *b);

/*
 * n sequences of token ids, concatenated in ids, sequence i of lens[i]
 * ids (1 .. TG_BERT_POSITIONS, each id < TG_BERT_VOCAB); writes n rows of
 * TG_BERT_HIDDEN floats, each the mean over its tokens, L2-normalised.
 * Sequences are not padded: the per-token layers run on all tokens of the
 * batch at once, attention runs per sequence over its own length, which
 * is what padding plus an attention mask computes.
 */
int tg_bert_forward(tg_bert_t *b, const int32_t *ids, const size_t *lens,
                    size_t n, float *out, char *err, size_t err_size);

#endif /* TG_EMBED_BERT_H */
