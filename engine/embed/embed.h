/*
 * Sentence embeddings inside the engine: all-MiniLM-L6-v2 (BERT, 6 layers,
 * hidden 384, 12 heads) read straight from its model.safetensors and
 * vocab.txt, forward pass in float32, mean pooling over the attention mask,
 * L2 normalisation (DESIGN §7).
 *
 * Every matrix product is one GEMM call through a small backend table:
 * cuBLAS when a GPU is present (libcublas/libcudart loaded with dlopen at
 * run time, so building and the CPU path need no driver), the CPU path
 * otherwise.  The CPU path is the reference; cuBLAS agrees within float
 * tolerance.
 *
 * tg_embedder_run() is blocking and meant for worker threads (the engine
 * calls it from its thread pool, never on the loop; thinkgate-embed calls
 * it directly).  One embedder may be used by one thread at a time per
 * device context; the engine serialises batches per embedder.  Returns 0
 * or a negative errno code with the reason in err.
 */
#ifndef TG_EMBED_EMBED_H
#define TG_EMBED_EMBED_H

#include <stddef.h>
#include <stdint.h>

#define TG_EMBED_MAX_TOKENS  256    /* word pieces per text, [CLS]/[SEP] in */

typedef enum {
    TG_EMBED_DEVICE_AUTO = 0,       /* cuda when a GPU answers, else cpu */
    TG_EMBED_DEVICE_CPU,
    TG_EMBED_DEVICE_CUDA            /* a clear error when no GPU */
} tg_embed_device_t;

typedef struct tg_embedder_s tg_embedder_t;

typedef struct {
    int                 threads;    /* worker threads of a run; 0: 1 */
    tg_embed_device_t   device;
    size_t              max_tokens; /* 0: TG_EMBED_MAX_TOKENS */
} tg_embed_opts_t;

/* What one run did (filled by tg_embedder_run when non-NULL). */
typedef struct {
    size_t      texts;
    size_t      tokens;             /* word pieces, specials included */
    uint64_t    ns;                 /* wall time of the forward pass */
} tg_embed_stats_t;

/*
 * Opens the model directory (model.safetensors + vocab.txt; config.json
 * optional, checked when present).  A missing or malformed file is an
 * error that names the file and what is wrong (bad header, a tensor
 * missing or of the wrong shape or dtype).  device=cuda without a GPU is
 * -ENODEV with err saying why (e.g. "no CUDA device: cudaGetDeviceCount
 * returned 35 (insufficient driver)").
 */
int  tg_embedder_open(const char *model_dir, const tg_embed_opts_t *opts,
                      tg_embedder_t **out, char *err, size_t err_size);
void tg_embedder_close(tg_embedder_t *e);

/* The embedding size (384) and the device really used: "cpu" or "cuda". */
size_t      tg_embedder_dim(const tg_embedder_t *e);
const char *tg_embedder_device(const tg_embedder_t *e);

/*
 * Embeds n texts into out[n * dim] (row-major, each row L2-normalised; an
 * empty text is embedded like any other: [CLS] [SEP]).  Texts of one call
 * go through the model as one batch (up to a few thousand tokens at a
 * time; each text's attention runs over its own length, which is what
 * padding to the longest with an attention mask computes).  Returns 0,
 * -ENOMEM, or -EIO on a device error (err says which call failed).
 */
int tg_embedder_run(tg_embedder_t *e, const char *const *texts,
                    const size_t *lens, size_t n, float *out,
                    tg_embed_stats_t *stats, char *err, size_t err_size);

/*
 * The forward pass alone, from token ids: n sequences concatenated in ids,
 * sequence i of lens[i] ids (1 .. 512, [CLS] ... [SEP] as the tokenizer
 * makes them, each id below the vocabulary size), into out[n * dim].
 * -EINVAL with err saying which sequence or id is wrong.
 */
int tg_embedder_run_ids(tg_embedder_t *e, const int32_t *ids,
                        const size_t *lens, size_t n, float *out,
                        tg_embed_stats_t *stats, char *err, size_t err_size);

/* Why device=auto chose the CPU ("" when it did not fall back), e.g. "no
 * CUDA device: cudaGetDeviceCount returned 35 (insufficient driver)". */
const char *tg_embedder_device_note(const tg_embedder_t *e);

#endif /* TG_EMBED_EMBED_H */
