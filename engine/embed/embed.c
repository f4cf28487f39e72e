/*
 * The embedder (embed.h): tokenizer + BERT forward pass + a GEMM backend
 * chosen by device.  Scratch (token ids) is kept on the embedder and grown
 * to the largest batch, so a steady stream of batches allocates nothing.
 */
#include "embed/embed.h"
#include "embed/bert.h"
#include "embed/gemm.h"
#include "embed/pool.h"
#include "embed/wordpiece.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Tokens of one forward pass: bounds the activations (15 KB a token,
 * 60 MB at most) whatever the number of texts of one call. */
#define TG_EMBED_CHUNK_TOKENS 4096

struct tg_embedder_s {
    tg_wordpiece_t         *wp;
    tg_bert_t              *bert;
    tg_embed_pool_t        *pool;
    const tg_gemm_ops_t    *ops;
    void                   *gemm;
    size_t                  max_tokens;
    char                    note[192];      /* why auto fell back to cpu */
    int32_t                *ids;
    size_t                 *lens;
    size_t                  cap_texts;
};

static int tg__embed_config(const char *dir, char *err, size_t err_size);
static int tg__embed_grow(tg_embedder_t *e, size_t n, char *err,
                          size_t err_size);
static uint64_t tg__embed_now_ns(void);

static uint64_t
tg__embed_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* config.json is optional; when present it must describe the model this
 * code implements. */
static int
tg__embed_config(const char *dir, char *err, size_t err_size)
{
    static const struct { const char *key; json_int_t want; } keys[] = {
        { "hidden_size", TG_BERT_HIDDEN },
        { "num_hidden_layers", TG_BERT_LAYERS },
        { "num_attention_heads", TG_BERT_HEADS },
        { "intermediate_size", TG_BERT_INTER },
        { "max_position_embeddings", TG_BERT_POSITIONS },
        { "vocab_size", TG_BERT_VOCAB },
    };
    json_error_t    jerr;
    json_t         *cfg, *v;
    char            path[4096];
    size_t          i;
    int             rc = 0;

    snprintf(path, sizeof(path), "%s/config.json", dir);
    cfg = json_load_file(path, 0, &jerr);
    if (cfg == NULL) {
        if (access(path, F_OK) != 0) {
            return 0;
        }
        snprintf(err, err_size, "%s: %s (line %d)", path, jerr.text,
                 jerr.line);
        return -EINVAL;
    }
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        v = json_object_get(cfg, keys[i].key);
        if (!json_is_integer(v) || json_integer_value(v) != keys[i].want) {
            snprintf(err, err_size, "%s: \"%s\" is not %lld: not the "
                     "all-MiniLM-L6-v2 shape this embedder implements",
                     path, keys[i].key, (long long) keys[i].want);
            rc = -EINVAL;
            break;
        }
    }
    v = json_object_get(cfg, "hidden_act");
    if (rc == 0 && v != NULL && (!json_is_string(v)
                                 || strcmp(json_string_value(v), "gelu")))
    {
        snprintf(err, err_size, "%s: \"hidden_act\" is not \"gelu\"", path);
        rc = -EINVAL;
    }
    json_decref(cfg);
    return rc;
}

int
tg_embedder_open(const char *model_dir, const tg_embed_opts_t *opts,
                 tg_embedder_t **out, char *err, size_t err_size)
{
    tg_embed_opts_t     o = { 0, TG_EMBED_DEVICE_AUTO, 0 };
    tg_embedder_t      *e;
    char                path[4096];
    int                 rc;

    *out = NULL;
    if (opts != NULL) {
        o = *opts;
    }
    if (o.max_tokens == 0) {
        o.max_tokens = TG_EMBED_MAX_TOKENS;
    }
    if (o.max_tokens < 2 || o.max_tokens > TG_BERT_POSITIONS) {
        snprintf(err, err_size, "max_tokens %zu outside 2..%d",
                 o.max_tokens, TG_BERT_POSITIONS);
        return -EINVAL;
    }
    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        snprintf(err, err_size, "embedder: out of memory");
        return -ENOMEM;
    }
    e->max_tokens = o.max_tokens;
    rc = tg__embed_config(model_dir, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    snprintf(path, sizeof(path), "%s/vocab.txt", model_dir);
    rc = tg_wordpiece_load(path, &e->wp, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    if (tg_wordpiece_vocab_size(e->wp) != TG_BERT_VOCAB) {
        snprintf(err, err_size, "%s: %zu pieces, the model has %d", path,
                 tg_wordpiece_vocab_size(e->wp), TG_BERT_VOCAB);
        rc = -EINVAL;
        goto failed;
    }
    rc = tg_embed_pool_create(o.threads, &e->pool, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    if (o.device != TG_EMBED_DEVICE_CPU) {
        rc = tg_gemm_cuda_open(&e->ops, &e->gemm, e->note, sizeof(e->note));
        if (rc != 0 && o.device == TG_EMBED_DEVICE_CUDA) {
            snprintf(err, err_size, "device=cuda: %s", e->note);
            goto failed;
        }
    }
    if (e->ops == NULL) {
        rc = tg_gemm_cpu_open(e->pool, &e->ops, &e->gemm, err, err_size);
        if (rc != 0) {
            goto failed;
        }
    }
    snprintf(path, sizeof(path), "%s/model.safetensors", model_dir);
    rc = tg_bert_load(path, e->ops, e->gemm, e->pool, &e->bert, err,
                      err_size);
    if (rc != 0) {
        goto failed;
    }
    *out = e;
    return 0;

failed:
    tg_embedder_close(e);
    return rc;
}

void
tg_embedder_close(tg_embedder_t *e)
{
    if (e == NULL) {
        return;
    }
    /* The weights belong to the backend context: free them first. */
    tg_bert_free(e->bert);
    if (e->ops != NULL) {
        e->ops->close(e->gemm);
    }
    tg_embed_pool_destroy(e->pool);
    tg_wordpiece_free(e->wp);
    free(e->ids);
    free(e->lens);
    free(e);
}

size_t
tg_embedder_dim(const tg_embedder_t *e)
{
    (void) e;
    return TG_BERT_HIDDEN;
}

const char *
tg_embedder_device(const tg_embedder_t *e)
{
    return e->ops->name;
}

const char *
tg_embedder_device_note(const tg_embedder_t *e)
{
    return strcmp(e->ops->name, "cpu") == 0 ? e->note : "";
}

static int
tg__embed_grow(tg_embedder_t *e, size_t n, char *err, size_t err_size)
{
    int32_t    *ids;
    size_t     *lens;

    if (n <= e->cap_texts) {
        return 0;
    }
    ids = malloc(n * e->max_tokens * sizeof(*ids));
    lens = malloc(n * sizeof(*lens));
    if (ids == NULL || lens == NULL) {
        free(ids);
        free(lens);
        snprintf(err, err_size, "embedder: out of memory for %zu texts", n);
        return -ENOMEM;
    }
    free(e->ids);
    free(e->lens);
    e->ids = ids;
    e->lens = lens;
    e->cap_texts = n;
    return 0;
}

int
tg_embedder_run_ids(tg_embedder_t *e, const int32_t *ids,
                    const size_t *lens, size_t n, float *out,
                    tg_embed_stats_t *stats, char *err, size_t err_size)
{
    uint64_t    start = tg__embed_now_ns();
    size_t      i, first, tokens, total = 0, off = 0, off0;
    int         rc;

    for (first = 0; first < n; first = i) {
        tokens = 0;
        off0 = off;
        for (i = first; i < n; i++) {
            if (i > first && tokens + lens[i] > TG_EMBED_CHUNK_TOKENS) {
                break;
            }
            tokens += lens[i];
            off += lens[i];
        }
        rc = tg_bert_forward(e->bert, ids + off0, lens + first, i - first,
                             out + first * TG_BERT_HIDDEN, err, err_size);
        if (rc != 0) {
            return rc;
        }
        total += tokens;
    }
    if (stats != NULL) {
        stats->texts = n;
        stats->tokens = total;
        stats->ns = tg__embed_now_ns() - start;
    }
    return 0;
}

int
tg_embedder_run(tg_embedder_t *e, const char *const *texts,
                const size_t *lens, size_t n, float *out,
                tg_embed_stats_t *stats, char *err, size_t err_size)
{
    size_t  i, off = 0;
    int     rc;

    rc = tg__embed_grow(e, n, err, err_size);
    if (rc != 0) {
        return rc;
    }
    for (i = 0; i < n; i++) {
        rc = tg_wordpiece_encode(e->wp, texts[i], lens[i], e->ids + off,
                                 e->max_tokens);
        if (rc < 0) {
            snprintf(err, err_size, "embedder: text %zu: tokenizer "
                     "failed (%s)", i, strerror(-rc));
            return rc;
        }
        e->lens[i] = (size_t) rc;
        off += (size_t) rc;
    }
    return tg_embedder_run_ids(e, e->ids, e->lens, n, out, stats, err,
                               err_size);
}
