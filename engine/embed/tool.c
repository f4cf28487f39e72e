/*
 * thinkgate-embed: sentence embeddings from the command line, with the
 * engine's embedder (embed.h).  Reads one JSON string per line on stdin
 * (or, with --ids, one JSON array of token ids), writes one JSON array of
 * floats per line on stdout.  A bad line is reported on stderr with its
 * number and why, answered with `null` so that output lines stay aligned
 * with input lines, and makes the exit status 1.
 */
#include "embed/embed.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    tg_embedder_t  *e;
    int             ids_mode;
    size_t          batch;
    size_t          n;                      /* lines in this batch */
    char          **texts;
    size_t         *lens;
    int32_t        *ids;                    /* --ids: batch x 512 */
    size_t         *ids_lens;
    int            *bad;                    /* line was bad: print null */
    float          *out;
    tg_embed_stats_t total;
} tg_tool_t;

static int  tg__tool_flush(tg_tool_t *t);
static int  tg__tool_line(tg_tool_t *t, char *line, size_t len,
                          size_t lineno);
static void tg__tool_usage(FILE *f);
static int  tg__tool_device(const char *arg, tg_embed_opts_t *opts);
static int  tg__tool_args(int argc, char **argv, tg_tool_t *t,
                          tg_embed_opts_t *opts, const char **model,
                          int *stats);
static int  tg__tool_alloc(tg_tool_t *t);
static int  tg__tool_read(tg_tool_t *t);
static void tg__tool_free(tg_tool_t *t);

static void
tg__tool_usage(FILE *f)
{
    fprintf(f, "usage: thinkgate-embed [--model DIR] "
            "[--device auto|cpu|cuda] [--threads N] [--batch N] [--ids] "
            "[--stats]\n"
            "  stdin: one JSON string per line (--ids: one JSON array of "
            "token ids)\n"
            "  stdout: one JSON array of floats per line\n");
}

static int
tg__tool_line(tg_tool_t *t, char *line, size_t len, size_t lineno)
{
    json_error_t    jerr;
    json_t         *v, *id;
    size_t          i, k = t->n;
    int             ok = 0;

    t->bad[k] = 1;
    t->texts[k] = NULL;
    t->lens[k] = 0;
    t->ids_lens[k] = 0;
    v = json_loadb(line, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (v == NULL) {
        fprintf(stderr, "thinkgate-embed: line %zu: not JSON: %s\n",
                lineno, jerr.text);
    } else if (!t->ids_mode && !json_is_string(v)) {
        fprintf(stderr, "thinkgate-embed: line %zu: expected a JSON "
                "string\n", lineno);
    } else if (!t->ids_mode) {
        t->lens[k] = json_string_length(v);
        t->texts[k] = malloc(t->lens[k] + 1);
        if (t->texts[k] == NULL) {
            json_decref(v);
            return -ENOMEM;
        }
        memcpy(t->texts[k], json_string_value(v), t->lens[k] + 1);
        ok = 1;
    } else if (!json_is_array(v) || json_array_size(v) < 1
               || json_array_size(v) > 512)
    {
        fprintf(stderr, "thinkgate-embed: line %zu: expected a JSON array "
                "of 1 to 512 token ids\n", lineno);
    } else {
        ok = 1;
        json_array_foreach(v, i, id) {
            if (!json_is_integer(id) || json_integer_value(id) < 0
                || json_integer_value(id) >= 30522)
            {
                fprintf(stderr, "thinkgate-embed: line %zu: element %zu is "
                        "not a token id (0..30521)\n", lineno, i);
                ok = 0;
                break;
            }
            t->ids[k * 512 + i] = (int32_t) json_integer_value(id);
        }
        t->ids_lens[k] = json_array_size(v);
    }
    json_decref(v);
    t->bad[k] = !ok;
    t->n++;
    return ok ? 0 : -EINVAL;
}

static int
tg__tool_flush(tg_tool_t *t)
{
    tg_embed_stats_t    st = { 0, 0, 0 };
    const char         *texts[t->n > 0 ? t->n : 1];
    size_t              lens[t->n > 0 ? t->n : 1];
    size_t              i, j, good = 0, off = 0;
    char                err[512];
    int                 rc;

    for (i = 0; i < t->n; i++) {
        if (t->bad[i]) {
            continue;
        }
        if (t->ids_mode) {
            /* Pack the good sequences to the front of ids. */
            memmove(t->ids + off, t->ids + i * 512,
                    t->ids_lens[i] * sizeof(int32_t));
            lens[good] = t->ids_lens[i];
            off += t->ids_lens[i];
        } else {
            texts[good] = t->texts[i];
            lens[good] = t->lens[i];
        }
        good++;
    }
    if (t->ids_mode) {
        rc = tg_embedder_run_ids(t->e, t->ids, lens, good, t->out, &st,
                                 err, sizeof(err));
    } else {
        rc = tg_embedder_run(t->e, texts, lens, good, t->out, &st, err,
                             sizeof(err));
    }
    if (rc != 0) {
        fprintf(stderr, "thinkgate-embed: %s\n", err);
        return rc;
    }
    t->total.texts += st.texts;
    t->total.tokens += st.tokens;
    t->total.ns += st.ns;
    for (i = 0, good = 0; i < t->n; i++) {
        if (t->bad[i]) {
            fputs("null\n", stdout);
        } else {
            const float *row = t->out + good++ * tg_embedder_dim(t->e);

            putchar('[');
            for (j = 0; j < tg_embedder_dim(t->e); j++) {
                printf(j ? ",%.9g" : "%.9g", (double) row[j]);
            }
            fputs("]\n", stdout);
        }
        free(t->texts[i]);
        t->texts[i] = NULL;
    }
    t->n = 0;
    return 0;
}

static int
tg__tool_device(const char *arg, tg_embed_opts_t *opts)
{
    if (strcmp(arg, "auto") == 0) {
        opts->device = TG_EMBED_DEVICE_AUTO;
    } else if (strcmp(arg, "cpu") == 0) {
        opts->device = TG_EMBED_DEVICE_CPU;
    } else if (strcmp(arg, "cuda") == 0) {
        opts->device = TG_EMBED_DEVICE_CUDA;
    } else {
        fprintf(stderr, "thinkgate-embed: --device %s: expected "
                "auto, cpu or cuda\n", arg);
        return 2;
    }
    return 0;
}

/* The command line into t, opts, *model and *stats: -1 to go on, or the
 * exit status (0 after --help). */
static int
tg__tool_args(int argc, char **argv, tg_tool_t *t, tg_embed_opts_t *opts,
    const char **model, int *stats)
{
    static const struct option longopts[] = {
        { "model", required_argument, NULL, 'm' },
        { "device", required_argument, NULL, 'd' },
        { "threads", required_argument, NULL, 't' },
        { "batch", required_argument, NULL, 'b' },
        { "ids", no_argument, NULL, 'i' },
        { "stats", no_argument, NULL, 's' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    int  c;

    while ((c = getopt_long(argc, argv, "m:d:t:b:ish", longopts, NULL))
           != -1)
    {
        switch (c) {
        case 'm':
            *model = optarg;
            break;
        case 'd':
            if (tg__tool_device(optarg, opts) != 0) {
                return 2;
            }
            break;
        case 't':
            opts->threads = atoi(optarg);
            if (opts->threads < 1 || opts->threads > 1024) {
                fprintf(stderr, "thinkgate-embed: --threads %s: expected "
                        "1..1024\n", optarg);
                return 2;
            }
            break;
        case 'b':
            t->batch = (size_t) atol(optarg);
            if (t->batch < 1 || t->batch > 65536) {
                fprintf(stderr, "thinkgate-embed: --batch %s: expected "
                        "1..65536\n", optarg);
                return 2;
            }
            break;
        case 'i':
            t->ids_mode = 1;
            break;
        case 's':
            *stats = 1;
            break;
        case 'h':
            tg__tool_usage(stdout);
            return 0;
        default:
            tg__tool_usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        tg__tool_usage(stderr);
        return 2;
    }
    return -1;
}

/* The batch's arrays, once the embedder is open: 0 or -ENOMEM. */
static int
tg__tool_alloc(tg_tool_t *t)
{
    t->texts = calloc(t->batch, sizeof(*t->texts));
    t->lens = calloc(t->batch, sizeof(*t->lens));
    t->ids_lens = calloc(t->batch, sizeof(*t->ids_lens));
    t->bad = calloc(t->batch, sizeof(*t->bad));
    t->out = malloc(t->batch * tg_embedder_dim(t->e) * sizeof(float));
    t->ids = t->ids_mode ? malloc(t->batch * 512 * sizeof(int32_t)) : NULL;
    if (t->texts == NULL || t->lens == NULL || t->ids_lens == NULL
        || t->bad == NULL || t->out == NULL
        || (t->ids_mode && t->ids == NULL))
    {
        return -ENOMEM;
    }
    return 0;
}

/* Every line of stdin, answered in batches: 0, 1 when a line was bad,
 * or -1 on a failure that stops the run (reported). */
static int
tg__tool_read(tg_tool_t *t)
{
    char     *line = NULL;
    size_t    cap = 0, lineno = 0;
    ssize_t   len;
    int       rc, status = 0;

    while ((len = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
            len--;
        }
        rc = tg__tool_line(t, line, (size_t) len, lineno);
        if (rc == -ENOMEM) {
            fprintf(stderr, "thinkgate-embed: out of memory\n");
            status = -1;
            break;
        }
        status |= rc != 0;
        if (t->n == t->batch && tg__tool_flush(t) != 0) {
            status = -1;
            break;
        }
    }
    free(line);
    if (status >= 0 && t->n > 0 && tg__tool_flush(t) != 0) {
        status = -1;
    }
    return status;
}

static void
tg__tool_free(tg_tool_t *t)
{
    while (t->n > 0) {
        free(t->texts[--t->n]);
    }
    free(t->texts);
    free(t->lens);
    free(t->ids_lens);
    free(t->bad);
    free(t->out);
    free(t->ids);
    tg_embedder_close(t->e);
}

int
main(int argc, char **argv)
{
    tg_embed_opts_t     opts = { 1, TG_EMBED_DEVICE_AUTO, 0 };
    tg_tool_t           t;
    const char         *model = "build/models/all-MiniLM-L6-v2";
    char                err[512];
    int                 stats = 0, status, rc;

    memset(&t, 0, sizeof(t));
    t.batch = 32;
    rc = tg__tool_args(argc, argv, &t, &opts, &model, &stats);
    if (rc >= 0) {
        return rc;
    }
    rc = tg_embedder_open(model, &opts, &t.e, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "thinkgate-embed: %s\n", err);
        return 1;
    }
    fprintf(stderr, "thinkgate-embed: device %s%s%s%s\n",
            tg_embedder_device(t.e),
            tg_embedder_device_note(t.e)[0] ? " (" : "",
            tg_embedder_device_note(t.e),
            tg_embedder_device_note(t.e)[0] ? ")" : "");
    if (tg__tool_alloc(&t) != 0) {
        fprintf(stderr, "thinkgate-embed: out of memory\n");
        status = 1;
    } else {
        status = tg__tool_read(&t);
        if (status < 0) {
            status = 1;
        } else if (stats) {
            fprintf(stderr, "{\"texts\": %zu, \"tokens\": %zu, "
                    "\"forward_s\": %.6f}\n", t.total.texts, t.total.tokens,
                    (double) t.total.ns / 1e9);
        }
    }
    tg__tool_free(&t);
    if (fflush(stdout) != 0) {
        return 1;
    }
    return status;
}
