/*
 * BERT forward pass (bert.h).  The per-token layers run on the packed
 * tokens of the whole batch, one GEMM per projection (Q, K and V fused
 * into one); attention runs per sequence over its own length.  With a
 * backend whose hooks may run concurrently (the CPU), every step is
 * shared out over the embedder's pool: attention per (sequence, head),
 * elementwise steps per block of rows, GEMMs per block of rows inside the
 * backend.  Otherwise (cuBLAS) attention is two strided-batched GEMMs per
 * sequence over the 12 heads.  Elementwise work is fused into one pass
 * per step: bias + GELU, bias + residual + LayerNorm.
 */
#include "embed/bert_int.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define H       TG_BERT_HIDDEN
#define I       TG_BERT_INTER
#define D       TG_BERT_HEAD_DIM
#define HEADS   TG_BERT_HEADS

/* Rows of one elementwise unit. */
#define TG_BERT_ROWS 32

typedef struct {
    tg_bert_t              *b;
    const tg_bert_layer_t  *ly;
    const int32_t          *ids;
    const size_t           *lens;
    const size_t           *offs;           /* first token of each text */
    size_t                  tokens;
    size_t                  longest;
    float                   scale;
    int                     rc;             /* first error of a unit */
    char                   *err;
    size_t                  err_size;
} tg_bert_run_t;

static int  tg__bert_reserve(tg_bert_t *b, size_t tokens, size_t longest,
                             char *err, size_t err_size);
static void tg__bert_embed_unit(void *arg, size_t unit, int worker);
static void tg__bert_attn_unit(void *arg, size_t unit, int worker);
static void tg__bert_ln1_unit(void *arg, size_t unit, int worker);
static void tg__bert_gelu_unit(void *arg, size_t unit, int worker);
static void tg__bert_ln2_unit(void *arg, size_t unit, int worker);
static int  tg__bert_attention(tg_bert_run_t *r, size_t n);
static int  tg__bert_layer_fwd(tg_bert_run_t *r, size_t n);

static int
tg__bert_reserve(tg_bert_t *b, size_t tokens, size_t longest, char *err,
                 size_t err_size)
{
    size_t  mats = (size_t) tg_embed_pool_threads(b->pool);
    size_t  scores, per = (size_t) H + 3 * H + H + H + I;
    float  *p;

    mats = mats > HEADS ? mats : HEADS;
    scores = mats * longest * longest;
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

/* Embeddings of one text: word + position + type 0, then LayerNorm. */
static void
tg__bert_embed_unit(void *arg, size_t unit, int worker)
{
    tg_bert_run_t  *r = arg;
    tg_bert_t      *b = r->b;
    size_t          p, t = r->offs[unit];
    float          *row;

    (void) worker;
    for (p = 0; p < r->lens[unit]; p++, t++) {
        row = b->h + t * H;
        memcpy(row, b->word + (size_t) r->ids[t] * H * sizeof(float),
               H * sizeof(float));
        tg_bert_add2(row, b->pos + p * H, b->type0, H);
    }
    tg_bert_layernorm(b->h + r->offs[unit] * H, NULL, NULL, r->lens[unit],
                      b->emb_g, b->emb_b);
}

/*
 * One head of one text: its Q, K, V columns get their bias, then
 * scores = Q K^T / sqrt(d), softmax, ctx = P V into the head's columns.
 * No other unit touches these columns of these rows.
 */
static void
tg__bert_attn_unit(void *arg, size_t unit, int worker)
{
    tg_bert_run_t          *r = arg;
    tg_bert_t              *b = r->b;
    const tg_gemm_ops_t    *ops = b->ops;
    size_t                  i = unit / HEADS, h = unit % HEADS, t, j;
    size_t                  len = r->lens[i];
    float                  *q = b->qkv + r->offs[i] * 3 * H + h * D;
    float                  *s = b->scores + (size_t) worker * r->longest
                                                * r->longest;
    const float            *bias = r->ly->qkv_b + h * D;
    int                     rc, expected = 0;

    for (t = 0; t < len; t++) {
        float *row = q + t * 3 * H;

        for (j = 0; j < D; j++) {
            row[j] += bias[j];
            row[H + j] += bias[H + j];
            row[2 * H + j] += bias[2 * H + j];
        }
    }
    rc = ops->batched(b->gemm, 1, (int) len, (int) len, D, r->scale, q,
                      3 * H, 0, q + H, 3 * H, 0, s, (int) len, 0, 1,
                      r->err, r->err_size);
    if (rc == 0) {
        tg_bert_softmax(s, len, len);
        rc = ops->batched(b->gemm, 0, (int) len, D, (int) len, 1.0f, s,
                          (int) len, 0, q + 2 * H, 3 * H, 0,
                          b->ctx + r->offs[i] * H + h * D, H, 0, 1, r->err,
                          r->err_size);
    }
    if (rc != 0) {
        __atomic_compare_exchange_n(&r->rc, &expected, rc, 0,
                                    __ATOMIC_RELAXED, __ATOMIC_RELAXED);
    }
}

static void
tg__bert_ln1_unit(void *arg, size_t unit, int worker)
{
    tg_bert_run_t  *r = arg;
    size_t          r0 = unit * TG_BERT_ROWS;
    size_t          rows = r->tokens - r0;

    (void) worker;
    rows = rows < TG_BERT_ROWS ? rows : TG_BERT_ROWS;
    tg_bert_layernorm(r->b->h + r0 * H, r->b->tmp + r0 * H,
                      r->ly->attn_out_b, rows, r->ly->ln1_g, r->ly->ln1_b);
}

static void
tg__bert_gelu_unit(void *arg, size_t unit, int worker)
{
    tg_bert_run_t  *r = arg;
    size_t          r0 = unit * TG_BERT_ROWS;
    size_t          rows = r->tokens - r0;

    (void) worker;
    rows = rows < TG_BERT_ROWS ? rows : TG_BERT_ROWS;
    tg_bert_gelu(r->b->inter + r0 * I, rows, I, r->ly->inter_b);
}

static void
tg__bert_ln2_unit(void *arg, size_t unit, int worker)
{
    tg_bert_run_t  *r = arg;
    size_t          r0 = unit * TG_BERT_ROWS;
    size_t          rows = r->tokens - r0;

    (void) worker;
    rows = rows < TG_BERT_ROWS ? rows : TG_BERT_ROWS;
    tg_bert_layernorm(r->b->h + r0 * H, r->b->tmp + r0 * H, r->ly->out_b,
                      rows, r->ly->ln2_g, r->ly->ln2_b);
}

static int
tg__bert_attention(tg_bert_run_t *r, size_t n)
{
    tg_bert_t              *b = r->b;
    const tg_gemm_ops_t    *ops = b->ops;
    size_t                  i;
    int                     rc;

    if (ops->concurrent) {
        tg_embed_pool_run(b->pool, tg__bert_attn_unit, r, n * HEADS);
        return r->rc;
    }
    tg_bert_bias(b->qkv, r->tokens, 3 * H, r->ly->qkv_b);
    for (i = 0; i < n; i++) {
        const float    *q = b->qkv + r->offs[i] * 3 * H;
        int             len = (int) r->lens[i];

        rc = ops->batched(b->gemm, 1, len, len, D, r->scale, q, 3 * H, D,
                          q + H, 3 * H, D, b->scores, len,
                          (size_t) len * len, HEADS, r->err, r->err_size);
        if (rc != 0) {
            return rc;
        }
        tg_bert_softmax(b->scores, (size_t) HEADS * len, len);
        rc = ops->batched(b->gemm, 0, len, D, len, 1.0f, b->scores, len,
                          (size_t) len * len, q + 2 * H, 3 * H, D,
                          b->ctx + r->offs[i] * H, H, D, HEADS, r->err,
                          r->err_size);
        if (rc != 0) {
            return rc;
        }
    }
    return 0;
}

static int
tg__bert_layer_fwd(tg_bert_run_t *r, size_t n)
{
    tg_bert_t              *b = r->b;
    const tg_gemm_ops_t    *ops = b->ops;
    const tg_bert_layer_t  *ly = r->ly;
    size_t                  units = (r->tokens + TG_BERT_ROWS - 1)
                                    / TG_BERT_ROWS;
    int                     m = (int) r->tokens, rc;

    if ((rc = ops->linear(b->gemm, b->h, m, ly->qkv, b->qkv, r->err,
                          r->err_size)) != 0
        || (rc = tg__bert_attention(r, n)) != 0
        || (rc = ops->linear(b->gemm, b->ctx, m, ly->attn_out, b->tmp,
                             r->err, r->err_size)) != 0)
    {
        return rc;
    }
    tg_embed_pool_run(b->pool, tg__bert_ln1_unit, r, units);
    rc = ops->linear(b->gemm, b->h, m, ly->inter, b->inter, r->err,
                     r->err_size);
    if (rc != 0) {
        return rc;
    }
    tg_embed_pool_run(b->pool, tg__bert_gelu_unit, r, units);
    rc = ops->linear(b->gemm, b->inter, m, ly->out, b->tmp, r->err,
                     r->err_size);
    if (rc != 0) {
        return rc;
    }
    tg_embed_pool_run(b->pool, tg__bert_ln2_unit, r, units);
    return 0;
}

int
tg_bert_forward(tg_bert_t *b, const int32_t *ids, const size_t *lens,
                size_t n, float *out, char *err, size_t err_size)
{
    tg_bert_run_t   r;
    size_t         *offs, i, t;
    int             rc, l;

    memset(&r, 0, sizeof(r));
    for (i = 0; i < n; i++) {
        if (lens[i] == 0 || lens[i] > TG_BERT_POSITIONS) {
            snprintf(err, err_size, "embedder: sequence %zu has %zu tokens "
                     "(1..%d)", i, lens[i], TG_BERT_POSITIONS);
            return -EINVAL;
        }
        r.tokens += lens[i];
        r.longest = lens[i] > r.longest ? lens[i] : r.longest;
    }
    for (t = 0; t < r.tokens; t++) {
        if (ids[t] < 0 || ids[t] >= TG_BERT_VOCAB) {
            snprintf(err, err_size, "embedder: token id %d out of range",
                     (int) ids[t]);
            return -EINVAL;
        }
    }
    if (n == 0) {
        return 0;
    }
    rc = tg__bert_reserve(b, r.tokens, r.longest, err, err_size);
    if (rc != 0) {
        return rc;
    }
    offs = malloc(n * sizeof(*offs));
    if (offs == NULL) {
        snprintf(err, err_size, "embedder: out of memory for %zu texts", n);
        return -ENOMEM;
    }
    for (i = 0, t = 0; i < n; t += lens[i], i++) {
        offs[i] = t;
    }
    r.b = b;
    r.ids = ids;
    r.lens = lens;
    r.offs = offs;
    r.scale = 1.0f / sqrtf((float) D);
    r.err = err;
    r.err_size = err_size;
    tg_embed_pool_run(b->pool, tg__bert_embed_unit, &r, n);
    for (l = 0, rc = 0; l < TG_BERT_LAYERS && rc == 0; l++) {
        r.ly = &b->layers[l];
        rc = tg__bert_layer_fwd(&r, n);
    }
    for (i = 0; i < n && rc == 0; i++) {
        tg_bert_mean_norm(b->h + offs[i] * H, lens[i], H, out + i * H);
    }
    free(offs);
    return rc;
}
