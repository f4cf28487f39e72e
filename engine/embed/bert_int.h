/*
 * The BERT model's insides, shared by bert.c (loading) and
 * bert_forward.c (the forward pass).  Internal to engine/embed/.
 */
#ifndef TG_EMBED_BERT_INT_H
#define TG_EMBED_BERT_INT_H

#include "embed/bert.h"
#include "embed/bert_ops.h"
#include "embed/pool.h"
#include "embed/safetensors.h"

typedef struct {
    tg_gemm_weight_t   *qkv;                /* 3H x H: query, key, value */
    tg_gemm_weight_t   *attn_out;           /* H x H */
    tg_gemm_weight_t   *inter;              /* I x H */
    tg_gemm_weight_t   *out;                /* H x I */
    float              *qkv_b;              /* 3H */
    float              *attn_out_b;
    float              *ln1_g, *ln1_b;
    float              *inter_b;            /* I */
    float              *out_b;
    float              *ln2_g, *ln2_b;
} tg_bert_layer_t;

struct tg_bert_s {
    tg_st_file_t           *st;
    const tg_gemm_ops_t    *ops;
    void                   *gemm;
    tg_embed_pool_t        *pool;           /* the embedder's */
    const uint8_t          *word;           /* VOCAB x H, in the mapping */
    float                  *pos;            /* POSITIONS x H */
    float                  *type0;          /* H */
    float                  *emb_g, *emb_b;
    float                  *vecs;           /* every small vector above */
    tg_bert_layer_t         layers[TG_BERT_LAYERS];

    /* Scratch grown to the largest batch seen; no allocation per run
     * once it is large enough.  scores: one longest x longest matrix per
     * worker (12 of them for a backend that takes the heads at once). */
    size_t                  cap_tokens;
    size_t                  cap_scores;
    float                  *h, *qkv, *ctx, *tmp, *inter, *scores;
};

#endif /* TG_EMBED_BERT_INT_H */
