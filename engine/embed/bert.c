/*
 * Loading the BERT encoder (bert.h): every tensor checked by name, dtype
 * and shape; Q, K and V fused into one 3H x H weight so that they are one
 * GEMM; the matrices handed to the GEMM backend, the vectors copied into
 * one block.  The forward pass is bert_forward.c.
 */
#include "embed/bert.h"
#include "embed/bert_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H   TG_BERT_HIDDEN
#define I   TG_BERT_INTER

static int tg__bert_vec(tg_bert_t *b, const char *name, size_t n,
                        float **dst, float **next, char *err,
                        size_t err_size);
static int tg__bert_mat(tg_bert_t *b, const char *name, int64_t rows,
                        int64_t cols, float *dst, char *err,
                        size_t err_size);
static int tg__bert_layer(tg_bert_t *b, int l, float **next, char *err,
                          size_t err_size);

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
             tg_embed_pool_t *pool, tg_bert_t **out, char *err,
             size_t err_size)
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
    b->pool = pool;
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

