/*
 * The embedder (engine/embed/): the safetensors reader's error paths on
 * hand-made files (truncated, bad header JSON, offsets out of the file,
 * wrong dtype or shape: each error names the file and the tensor), a model
 * directory whose weights do not fit, device=cuda without a GPU, the
 * vectorised erf/exp against libm, and a few real embeddings (shape, unit
 * norm, batch = one by one).  The real model is read from
 * $TG_EMBED_MODEL or build/models/all-MiniLM-L6-v2; without it the tests
 * that need it skip (make test fetches it: mk/models.sh).
 * tests/e2e/test_embed_model.py checks the numbers against references.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "needs.h"
#include "embed/bert_ops.h"
#include "embed/embed.h"
#include "embed/safetensors.h"

static char tmpdir[64];

static const char *
model_dir(void)
{
    const char *p = getenv("TG_EMBED_MODEL");

    return p != NULL && *p != '\0' ? p : "build/models/all-MiniLM-L6-v2";
}

static int
have_model(void)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/model.safetensors", model_dir());
    return access(path, R_OK) == 0;
}

static void
setup(void)
{
    strcpy(tmpdir, "/tmp/tg-test-embed-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void
teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    cr_assert_eq(system(cmd), 0);
}

/* Writes a safetensors file: the header as given, then data_len bytes. */
static const char *
write_st(const char *name, const char *header, size_t data_len,
         int64_t hlen_override)
{
    static char path[128];
    uint64_t    hlen = hlen_override >= 0 ? (uint64_t) hlen_override
                                          : strlen(header);
    uint8_t     len8[8];
    FILE       *f;
    size_t      i;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    f = fopen(path, "wb");
    cr_assert_not_null(f);
    for (i = 0; i < 8; i++) {
        len8[i] = (uint8_t) (hlen >> (8 * i));
    }
    cr_assert_eq(fwrite(len8, 1, 8, f), 8);
    cr_assert_eq(fwrite(header, 1, strlen(header), f), strlen(header));
    for (i = 0; i < data_len; i++) {
        fputc(0, f);
    }
    cr_assert_eq(fclose(f), 0);
    return path;
}

static int
open_err(const char *path, char *err, size_t size)
{
    tg_st_file_t   *f = NULL;
    int             rc;

    rc = tg_st_open(path, &f, err, size);
    cr_assert(rc != 0 || f != NULL);
    tg_st_close(f);
    return rc;
}

TestSuite(safetensors, .init = setup, .fini = teardown);

Test(safetensors, truncated_and_bad_headers)
{
    char        err[512];
    const char *p;

    p = write_st("short.safetensors", "", 0, 0);
    cr_assert_eq(truncate(p, 5), 0);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, p) != NULL && strstr(err, "too short"), "%s", err);

    p = write_st("long.safetensors", "{}", 0, 4096);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "header length 4096"), "%s", err);

    p = write_st("json.safetensors", "{\"a\": [1, 2", 0, -1);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "header is not a JSON object"), "%s", err);

    p = write_st("array.safetensors", "[1, 2]", 0, -1);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);

    cr_assert_eq(open_err("/nonexistent.safetensors", err, sizeof(err)),
                 -ENOENT);
    cr_assert(strstr(err, "/nonexistent.safetensors"), "%s", err);
}

Test(safetensors, tensor_entries)
{
    char        err[512];
    const char *p;

    p = write_st("off.safetensors", "{\"w\": {\"dtype\": \"F32\", \"shape\": "
                 "[4], \"data_offsets\": [0, 16]}}", 8, -1);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "tensor \"w\"") && strstr(err, "truncated"),
              "%s", err);

    p = write_st("size.safetensors", "{\"w\": {\"dtype\": \"F32\", "
                 "\"shape\": [5], \"data_offsets\": [0, 16]}}", 16, -1);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "tensor \"w\"") && strstr(err, "5 elements"),
              "%s", err);

    p = write_st("dtype.safetensors", "{\"w\": {\"dtype\": \"Q4\", "
                 "\"shape\": [4], \"data_offsets\": [0, 4]}}", 4, -1);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "unknown dtype \"Q4\""), "%s", err);

    p = write_st("entry.safetensors", "{\"w\": {\"dtype\": \"F32\"}}", 0,
                 -1);
    cr_assert_eq(open_err(p, err, sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "tensor \"w\""), "%s", err);
}

Test(safetensors, get_checks_dtype_and_shape)
{
    tg_st_file_t   *f;
    tg_st_tensor_t  t;
    int64_t         shape[2] = { 2, 3 }, other[2] = { 3, 2 };
    char            err[512];
    const char     *p;

    p = write_st("ok.safetensors", "{\"__metadata__\": {\"format\": \"pt\"},"
                 " \"a.weight\": {\"dtype\": \"F32\", \"shape\": [2, 3], "
                 "\"data_offsets\": [0, 24]}, \"ids\": {\"dtype\": \"I64\", "
                 "\"shape\": [2], \"data_offsets\": [24, 40]}}  ", 40, -1);
    cr_assert_eq(tg_st_open(p, &f, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(tg_st_count(f), 2);
    cr_assert_eq(tg_st_get(f, "a.weight", "F32", 2, shape, &t, err,
                           sizeof(err)), 0, "%s", err);
    cr_assert_eq(t.size, 24);
    cr_assert_eq(tg_st_get(f, "a.weight", "F32", 2, other, &t, err,
                           sizeof(err)), -EINVAL);
    cr_assert(strstr(err, p) && strstr(err, "\"a.weight\"")
              && strstr(err, "shape [2, 3], expected [3, 2]"), "%s", err);
    cr_assert_eq(tg_st_get(f, "ids", "F32", 1, shape, &t, err, sizeof(err)),
                 -EINVAL);
    cr_assert(strstr(err, "\"ids\": dtype I64, expected F32"), "%s", err);
    cr_assert_eq(tg_st_get(f, "nope", "F32", 1, shape, &t, err,
                           sizeof(err)), -ENOENT);
    cr_assert(strstr(err, "\"nope\" missing"), "%s", err);
    tg_st_close(f);
}

Test(safetensors, model_dir_with_wrong_weights)
{
    tg_embed_opts_t     opts = { 1, TG_EMBED_DEVICE_CPU, 0 };
    tg_embedder_t      *e = NULL;
    char                err[512], vocab[512], link[128];

    if (!have_model()) {
        TG_TEST_MISSING("no model in %s", model_dir());
    }
    snprintf(vocab, sizeof(vocab), "%s/vocab.txt", model_dir());
    if (vocab[0] != '/') {
        char cwd[256];

        cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
        snprintf(vocab, sizeof(vocab), "%s/%s/vocab.txt", cwd, model_dir());
    }
    snprintf(link, sizeof(link), "%s/vocab.txt", tmpdir);
    cr_assert_eq(symlink(vocab, link), 0);
    write_st("model.safetensors", "{\"embeddings.word_embeddings.weight\": "
             "{\"dtype\": \"F32\", \"shape\": [2, 384], \"data_offsets\": "
             "[0, 3072]}}", 3072, -1);
    cr_assert_eq(tg_embedder_open(tmpdir, &opts, &e, err, sizeof(err)),
                 -EINVAL);
    cr_assert_null(e);
    cr_assert(strstr(err, "model.safetensors")
              && strstr(err, "\"embeddings.word_embeddings.weight\": shape "
                        "[2, 384], expected [30522, 384]"), "%s", err);
}

Test(embed, cuda_without_gpu_is_enodev)
{
    tg_embed_opts_t     opts = { 1, TG_EMBED_DEVICE_CUDA, 0 };
    tg_embedder_t      *e = NULL;
    char                err[512];
    int                 rc;

    if (!have_model()) {
        TG_TEST_MISSING("no model in %s", model_dir());
    }
    rc = tg_embedder_open(model_dir(), &opts, &e, err, sizeof(err));
    if (rc == 0) {
        cr_assert_str_eq(tg_embedder_device(e), "cuda");
        tg_embedder_close(e);
        cr_skip_test("a GPU answered");
    }
    cr_assert_eq(rc, -ENODEV, "%d: %s", rc, err);
    cr_assert(strstr(err, "device=cuda: no CUDA"), "%s", err);
}

Test(embed, erf_and_exp_match_libm)
{
    double  worst_erf = 0.0, worst_exp = 0.0, d;
    float   x;

    for (x = -6.0f; x <= 6.0f; x += 0.001f) {
        d = fabs((double) tg_bert_erf(x) - erf((double) x));
        worst_erf = d > worst_erf ? d : worst_erf;
    }
    for (x = -80.0f; x <= 0.0f; x += 0.01f) {
        d = fabs((double) tg_bert_exp(x) / exp((double) x) - 1.0);
        worst_exp = d > worst_exp ? d : worst_exp;
    }
    cr_assert_lt(worst_erf, 1e-6, "erf off by %g", worst_erf);
    cr_assert_lt(worst_exp, 1e-6, "exp off by %g", worst_exp);
    cr_assert_eq(tg_bert_exp(-1000.0f) < 1e-37f, 1);
}

Test(embed, shape_norm_and_batching)
{
    static const char *const texts[] = {
        "The answer is 42.", "", "Zürich naïve café 東京 🙂",
        "The answer is 42."
    };
    tg_embed_opts_t     opts = { 1, TG_EMBED_DEVICE_AUTO, 0 };
    tg_embed_stats_t    st;
    tg_embedder_t      *e;
    size_t              lens[4], i, j;
    float               all[4 * 384], one[384];
    double              norm;
    char                err[512];

    if (!have_model()) {
        TG_TEST_MISSING("no model in %s", model_dir());
    }
    cr_assert_eq(tg_embedder_open(model_dir(), &opts, &e, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(tg_embedder_dim(e), 384);
    if (strcmp(tg_embedder_device(e), "cpu") == 0) {
        cr_assert_neq(tg_embedder_device_note(e)[0], '\0');
    }
    for (i = 0; i < 4; i++) {
        lens[i] = strlen(texts[i]);
    }
    cr_assert_eq(tg_embedder_run(e, texts, lens, 4, all, &st, err,
                                 sizeof(err)), 0, "%s", err);
    cr_assert_eq(st.texts, 4);
    cr_assert_gt(st.tokens, 8);
    for (i = 0; i < 4; i++) {
        norm = 0.0;
        for (j = 0; j < 384; j++) {
            cr_assert(isfinite(all[i * 384 + j]));
            norm += (double) all[i * 384 + j] * all[i * 384 + j];
        }
        cr_assert_float_eq(norm, 1.0, 1e-5);
        /* The same text alone gives the same vector as in the batch. */
        cr_assert_eq(tg_embedder_run(e, &texts[i], &lens[i], 1, one, NULL,
                                     err, sizeof(err)), 0, "%s", err);
        for (j = 0; j < 384; j++) {
            cr_assert_float_eq(one[j], all[i * 384 + j], 1e-6);
        }
    }
    /* Texts 0 and 3 are the same: the same vector wherever it sits in the
     * batch (to float rounding: a BLAS may take another kernel path for
     * another row block, as OpenBLAS does on CPUs without AVX-512). */
    for (j = 0; j < 384; j++) {
        cr_assert_float_eq(all[j], all[3 * 384 + j], 1e-6);
    }
    cr_assert_eq(tg_embedder_run(e, texts, lens, 0, all, NULL, err,
                                 sizeof(err)), 0);
    tg_embedder_close(e);
}

Test(embed, threads_agree_with_one)
{
    static const char *const texts[] = {
        "Three threads share the rows and the heads.", "short",
        "A longer text, so that the batch has more rows than one unit of "
        "thirty-two rows holds: the quick brown fox jumps over the lazy "
        "dog, again and again, until the tokens run past a block or two."
    };
    tg_embed_opts_t     one = { 1, TG_EMBED_DEVICE_CPU, 0 };
    tg_embed_opts_t     three = { 3, TG_EMBED_DEVICE_CPU, 0 };
    tg_embedder_t      *e1, *e3;
    size_t              lens[3], i;
    float               a[3 * 384], b[3 * 384];
    char                err[512];

    if (!have_model()) {
        TG_TEST_MISSING("no model in %s", model_dir());
    }
    for (i = 0; i < 3; i++) {
        lens[i] = strlen(texts[i]);
    }
    cr_assert_eq(tg_embedder_open(model_dir(), &one, &e1, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(tg_embedder_open(model_dir(), &three, &e3, err,
                                  sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(tg_embedder_device(e3), "cpu");
    cr_assert_str_eq(tg_embedder_device_note(e3), "");
    cr_assert_eq(tg_embedder_run(e1, texts, lens, 3, a, NULL, err,
                                 sizeof(err)), 0, "%s", err);
    cr_assert_eq(tg_embedder_run(e3, texts, lens, 3, b, NULL, err,
                                 sizeof(err)), 0, "%s", err);
    for (i = 0; i < 3 * 384; i++) {
        cr_assert_float_eq(a[i], b[i], 1e-6, "component %zu", i);
    }
    tg_embedder_close(e3);
    tg_embedder_close(e1);
}

/* The own AVX-512 kernel (where the CPU has it) and OpenBLAS agree. */
Test(embed, own_kernel_agrees_with_openblas)
{
    static const char *const texts[] = {
        "Nine rows do not fill a tile of twelve.",
        "Padding the edge rows with zeros keeps the sums exact: the "
        "quick brown fox jumps over the lazy dog, twice, to make rows."
    };
    tg_embed_opts_t     opts = { 2, TG_EMBED_DEVICE_CPU, 0 };
    tg_embedder_t      *e;
    size_t              lens[2] = { strlen(texts[0]), strlen(texts[1]) }, i;
    float               own[2 * 384], ref[2 * 384];
    char                err[512];

    if (!have_model()) {
        TG_TEST_MISSING("no model in %s", model_dir());
    }
    cr_assert_eq(tg_embedder_open(model_dir(), &opts, &e, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(tg_embedder_run(e, texts, lens, 2, own, NULL, err,
                                 sizeof(err)), 0, "%s", err);
    tg_embedder_close(e);
    cr_assert_eq(setenv("TG_EMBED_GEMM", "openblas", 1), 0);
    cr_assert_eq(tg_embedder_open(model_dir(), &opts, &e, err, sizeof(err)),
                 0, "%s", err);
    cr_assert_eq(tg_embedder_run(e, texts, lens, 2, ref, NULL, err,
                                 sizeof(err)), 0, "%s", err);
    tg_embedder_close(e);
    for (i = 0; i < 2 * 384; i++) {
        cr_assert_float_eq(own[i], ref[i], 1e-5, "component %zu", i);
    }
}
