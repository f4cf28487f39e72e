/*
 * BERT forward pass (bert.h).  The per-token layers run on the packed
 * tokens of the whole batch (one GEMM per projection, Q, K and V fused
 * into one); attention runs per sequence as two strided-batched GEMMs over
 * the 12 heads.  Elementwise work is fused into one pass per step: bias +
 * GELU, bias + residual + LayerNorm.
 */
#include "embed/bert.h"
#include "embed/bert_ops.h"
#include "embed/safetensors.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H   TG_BERT_HIDDEN
#define I   TG_BERT_INTER

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
    const uint8_t          *word;           /* VOCAB x H, in the mapping */
    float                  *pos;            /* POSITIONS x H */
    float                  *type0;          /* H */
    float                  *emb_g, *emb_b;
    float                  *vecs;           /* every small vector above */
    tg_bert_layer_t         layers[TG_BERT_LAYERS];

    /* Scratch grown to the largest batch seen; no allocation per run
     * once it is large enough. */
    size_t                  cap_tokens;
    size_t                  cap_scores;
    float                  *h, *qkv, *ctx, *tmp, *inter, *scores;
};

static int tg__bert_vec(tg_bert_t *b, const char *name, size_t n,
                        float **dst, float **next, char *err,
                        size_t err_size);
static int tg__bert_mat(tg_bert_t *b, const char *name, int64_t rows,
                        int64_t cols, float *dst, char *err,
                        size_t err_size);
static int tg__bert_layer(tg_bert_t *b, int l, float **next, char *err,
                          size_t err_size);
static int tg__bert_reserve(tg_bert_t *b, size_t tokens, size_t longest,
                            char *err, size_t err_size);

static int
tg__bert_vec(tg_bert_t *b, const char *name, size_t n, float **dst,
             float **next, char *err, size_t err_size)
{
    tg_st_tensor_t  t;
    int64_t         shape[1] = { (int64_t) n };
    int             rc;

    rc = tg_st_get(b->st, name, "F32", 1, shape, &t, err, err_size);
    if (rc != 0) {
        return rc;
    }
    memcpy(*next, t.data, n * sizeof(float));
    *dst = *next;
    *next += n;
    return 0;
}

static int
tg__bert_mat(tg_bert_t *b, const char *name, int64_t rows, int64_t cols,
             float *dst, char *err, size_t err_size)
{
    tg_st_tensor_t  t;
    int64_t         shape[2] = { rows, cols };
    int             rc;

    rc = tg_st_get(b->st, name, "F32", 2, shape, &t, err, err_size);
    if (rc == 0) {
        memcpy(dst, t.data, t.size);
    }
    return rc;
}

static int
tg__bert_layer(tg_bert_t *b, int l, float **next, char *err, size_t err_size)
{
    static const char *const qkv[3] = { "query", "key", "value" };
    tg_bert_layer_t    *ly = &b->layers[l];
    char                name[96];
    float              *w, *bias;
    int                 rc, j;

    w = malloc((size_t) 3 * H * I * sizeof(float));
    if (w == NULL) {
        snprintf(err, err_size, "%s: out of memory", tg_st_path(b->st));
        return -ENOMEM;
    }
#define TG_NAME(fmt, ...) \
    (snprintf(name, sizeof(name), "encoder.layer.%d." fmt, l, __VA_ARGS__), \
     name)
    for (j = 0; j < 3; j++) {
        rc = tg__bert_mat(b, TG_NAME("attention.self.%s.weight", qkv[j]),
                          H, H, w + (size_t) j * H * H, err, err_size);
        if (rc != 0) {
            goto failed;
        }
        rc = tg__bert_vec(b, TG_NAME("attention.self.%s.bias", qkv[j]), H,
                          &bias, next, err, err_size);
        if (rc != 0) {
            goto failed;
        }
        if (j == 0) {
            ly->qkv_b = bias;
        }
    }
    rc = b->ops->weight(b->gemm, w, 3 * H, H, &ly->qkv, err, err_size);
    if (rc != 0
        || (rc = tg__bert_mat(b, TG_NAME("%s.weight",
                                         "attention.output.dense"),
                              H, H, w, err, err_size)) != 0
        || (rc = b->ops->weight(b->gemm, w, H, H, &ly->attn_out, err,
                                err_size)) != 0
        || (rc = tg__bert_mat(b, TG_NAME("%s.weight", "intermediate.dense"),
                              I, H, w, err, err_size)) != 0
        || (rc = b->ops->weight(b->gemm, w, I, H, &ly->inter, err,
                                err_size)) != 0
        || (rc = tg__bert_mat(b, TG_NAME("%s.weight", "output.dense"),
                              H, I, w, err, err_size)) != 0
        || (rc = b->ops->weight(b->gemm, w, H, I, &ly->out, err,
                                err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.bias", "attention.output.dense"),
                              H, &ly->attn_out_b, next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.weight",
                                         "attention.output.LayerNorm"),
                              H, &ly->ln1_g, next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.bias",
                                         "attention.output.LayerNorm"),
                              H, &ly->ln1_b, next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.bias", "intermediate.dense"),
                              I, &ly->inter_b, next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.bias", "output.dense"),
                              H, &ly->out_b, next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.weight", "output.LayerNorm"),
                              H, &ly->ln2_g, next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, TG_NAME("%s.bias", "output.LayerNorm"),
                              H, &ly->ln2_b, next, err, err_size)) != 0)
    {
        goto failed;
    }
#undef TG_NAME
    free(w);
    return 0;

failed:
    free(w);
    return rc;
}

int
tg_bert_load(const char *path, const tg_gemm_ops_t *ops, void *gemm,
             tg_bert_t **out, char *err, size_t err_size)
{
    tg_st_tensor_t  t;
    tg_bert_t      *b;
    float          *next;
    int64_t         shape[2];
    size_t          nvecs;
    int             rc, l;

    *out = NULL;
    b = calloc(1, sizeof(*b));
    /* Every bias and LayerNorm vector, in one block. */
    nvecs = (size_t) TG_BERT_POSITIONS * H + 3 * H
            + (size_t) TG_BERT_LAYERS * (3 * H + 6 * H + I);
    if (b == NULL || (b->vecs = malloc(nvecs * sizeof(float))) == NULL) {
        snprintf(err, err_size, "%s: out of memory", path);
        rc = -ENOMEM;
        goto failed;
    }
    b->ops = ops;
    b->gemm = gemm;
    rc = tg_st_open(path, &b->st, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    shape[0] = TG_BERT_VOCAB;
    shape[1] = H;
    rc = tg_st_get(b->st, "embeddings.word_embeddings.weight", "F32", 2,
                   shape, &t, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    b->word = t.data;
    next = b->vecs;
    b->pos = next;
    next += (size_t) TG_BERT_POSITIONS * H;
    rc = tg__bert_mat(b, "embeddings.position_embeddings.weight",
                      TG_BERT_POSITIONS, H, b->pos, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    /* token_type_embeddings is [2, H]; only type 0 is used. */
    shape[0] = 2;
    rc = tg_st_get(b->st, "embeddings.token_type_embeddings.weight", "F32",
                   2, shape, &t, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    b->type0 = next;
    memcpy(next, t.data, H * sizeof(float));
    next += H;
    if ((rc = tg__bert_vec(b, "embeddings.LayerNorm.weight", H, &b->emb_g,
                           &next, err, err_size)) != 0
        || (rc = tg__bert_vec(b, "embeddings.LayerNorm.bias", H, &b->emb_b,
                              &next, err, err_size)) != 0)
    {
        goto failed;
    }
    for (l = 0; l < TG_BERT_LAYERS; l++) {
        rc = tg__bert_layer(b, l, &next, err, err_size);
        if (rc != 0) {
            goto failed;
        }
    }
    *out = b;
    return 0;

failed:
    tg_bert_free(b);
    return rc;
}

void
tg_bert_free(tg_bert_t *b)
{
    tg_bert_layer_t    *ly;
    int                 l;

    if (b == NULL) {
        return;
    }
    for (l = 0; l < TG_BERT_LAYERS; l++) {
        ly = &b->layers[l];
        b->ops->weight_free(b->gemm, ly->qkv);
        b->ops->weight_free(b->gemm, ly->attn_out);
        b->ops->weight_free(b->gemm, ly->inter);
        b->ops->weight_free(b->gemm, ly->out);
    }
    free(b->h);
    free(b->scores);
    tg_st_close(b->st);
    free(b->vecs);
    free(b);
}

static int
tg__bert_reserve(tg_bert_t *b, size_t tokens, size_t longest, char *err,
                 size_t err_size)
{
    size_t  scores = (size_t) TG_BERT_HEADS * longest * longest;
    size_t  per = (size_t) H + 3 * H + H + H + I;
    float  *p;

    if (tokens > b->cap_tokens) {
        /* h, qkv, ctx, tmp and inter in one block. */
        if (posix_memalign((void **) &p, 64, tokens * per * sizeof(float))
            != 0)
        {
            snprintf(err, err_size, "embedder: out of memory for %zu "
                     "tokens", tokens);
            return -ENOMEM;
        }
        free(b->h);
        b->h = p;
        b->qkv = b->h + tokens * H;
        b->ctx = b->qkv + tokens * 3 * H;
        b->tmp = b->ctx + tokens * H;
        b->inter = b->tmp + tokens * H;
        b->cap_tokens = tokens;
    }
    if (scores > b->cap_scores) {
        if (posix_memalign((void **) &p, 64, scores * sizeof(float)) != 0) {
            snprintf(err, err_size, "embedder: out of memory for a "
                     "%zu-token attention", longest);
            return -ENOMEM;
        }
        free(b->scores);
        b->scores = p;
        b->cap_scores = scores;
    }
    return 0;
}

int
tg_bert_forward(tg_bert_t *b, const int32_t *ids, const size_t *lens,
                size_t n, float *out, char *err, size_t err_size)
{
    const tg_gemm_ops_t    *ops = b->ops;
    tg_bert_layer_t        *ly;
    size_t                  i, t, p, tokens = 0, longest = 0, off;
    float                   scale = 1.0f / sqrtf((float) TG_BERT_HEAD_DIM);
    float                  *row;
    int                     rc, l, m;

    for (i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > TG_BERT_POSITIONS) {
            snprintf(err, err_size, "embedder: sequence %zu has %zu tokens "
                     "(1..%d)", i, lens[i], TG_BERT_POSITIONS);
            return -EINVAL;
        }
        tokens += lens[i];
        longest = lens[i] > longest ? lens[i] : longest;
    }
    for (t = 0; t < tokens; t++) {
        if (ids[t] < 0 || ids[t] >= TG_BERT_VOCAB) {
            snprintf(err, err_size, "embedder: token id %d out of range",
                     (int) ids[t]);
            return -EINVAL;
        }
    }
    if (n == 0) {
        return 0;
    }
    rc = tg__bert_reserve(b, tokens, longest, err, err_size);
    if (rc != 0) {
        return rc;
    }

    /* Embeddings: word + position + type 0, then LayerNorm. */
    for (i = 0, t = 0; i < n; i++) {
        for (p = 0; p < lens[i]; p++, t++) {
            row = b->h + t * H;
            memcpy(row, b->word + (size_t) ids[t] * H * sizeof(float),
                   H * sizeof(float));
            tg_bert_add2(row, b->pos + p * H, b->type0, H);
        }
    }
    tg_bert_layernorm(b->h, NULL, NULL, tokens, b->emb_g, b->emb_b);

    m = (int) tokens;
    for (l = 0; l < TG_BERT_LAYERS; l++) {
        ly = &b->layers[l];
        rc = ops->linear(b->gemm, b->h, m, ly->qkv, b->qkv, err, err_size);
        if (rc != 0) {
            return rc;
        }
        tg_bert_bias(b->qkv, tokens, 3 * H, ly->qkv_b);
        for (i = 0, off = 0; i < n; off += lens[i], i++) {
            /* scores[h] = Q_h K_h^T / sqrt(d), then P_h V_h into ctx. */
            const float *q = b->qkv + off * 3 * H;
            int          len = (int) lens[i];

            rc = ops->batched(b->gemm, 1, len, len, TG_BERT_HEAD_DIM, scale,
                              q, 3 * H, TG_BERT_HEAD_DIM, q + H, 3 * H,
                              TG_BERT_HEAD_DIM, b->scores, len,
                              (size_t) len * len, TG_BERT_HEADS, err,
                              err_size);
            if (rc != 0) {
                return rc;
            }
            tg_bert_softmax(b->scores, (size_t) TG_BERT_HEADS * len, len);
            rc = ops->batched(b->gemm, 0, len, TG_BERT_HEAD_DIM, len, 1.0f,
                              b->scores, len, (size_t) len * len, q + 2 * H,
                              3 * H, TG_BERT_HEAD_DIM, b->ctx + off * H, H,
                              TG_BERT_HEAD_DIM, TG_BERT_HEADS, err,
                              err_size);
            if (rc != 0) {
                return rc;
            }
        }
        rc = ops->linear(b->gemm, b->ctx, m, ly->attn_out, b->tmp, err,
                         err_size);
        if (rc != 0) {
            return rc;
        }
        tg_bert_layernorm(b->h, b->tmp, ly->attn_out_b, tokens, ly->ln1_g,
                          ly->ln1_b);
        rc = ops->linear(b->gemm, b->h, m, ly->inter, b->inter, err,
                         err_size);
        if (rc != 0) {
            return rc;
        }
        tg_bert_gelu(b->inter, tokens, I, ly->inter_b);
        rc = ops->linear(b->gemm, b->inter, m, ly->out, b->tmp, err,
                         err_size);
        if (rc != 0) {
            return rc;
        }
        tg_bert_layernorm(b->h, b->tmp, ly->out_b, tokens, ly->ln2_g,
                          ly->ln2_b);
    }

    for (i = 0, off = 0; i < n; off += lens[i], i++) {
        tg_bert_mean_norm(b->h + off * H, lens[i], H, out + i * H);
    }
    return 0;
}
