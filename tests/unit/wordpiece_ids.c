/*
 * Test tool for tests/e2e/test_embed_tokenizer.py: reads one JSON string
 * per line on stdin, writes the ids of each as one JSON array per line.
 *
 *   wordpiece_ids VOCAB [MAX_IDS [REPEAT]]
 *
 * MAX_IDS defaults to 256.  With REPEAT > 0 it prints nothing but encodes
 * every text REPEAT times and reports the speed on stderr.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "embed/wordpiece.h"

typedef struct {
    char  **texts;
    size_t *lens;
    size_t  n;
} tg__texts_t;

static int tg__read_texts(tg__texts_t *t);
static double tg__now(void);

static int
tg__read_texts(tg__texts_t *t)
{
    char        *line = NULL;
    size_t       cap = 0, room = 0;
    ssize_t      got;
    json_t      *j;
    json_error_t je;
    void        *grown;

    while ((got = getline(&line, &cap, stdin)) >= 0) {
        if (t->n == room) {
            room = room ? room * 2 : 1024;
            grown = realloc(t->texts, room * sizeof(*t->texts));
            if (grown == NULL) {
                goto nomem;
            }
            t->texts = grown;
            grown = realloc(t->lens, room * sizeof(*t->lens));
            if (grown == NULL) {
                goto nomem;
            }
            t->lens = grown;
        }
        j = json_loadb(line, (size_t) got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
        if (j == NULL || !json_is_string(j)) {
            fprintf(stderr, "wordpiece_ids: line %zu: not a JSON string: %s\n",
                    t->n + 1, j ? "" : je.text);
            json_decref(j);
            free(line);
            return -EINVAL;
        }
        t->lens[t->n] = json_string_length(j);
        t->texts[t->n] = malloc(t->lens[t->n] + 1);
        if (t->texts[t->n] == NULL) {
            json_decref(j);
            goto nomem;
        }
        memcpy(t->texts[t->n], json_string_value(j), t->lens[t->n] + 1);
        json_decref(j);
        t->n++;
    }
    free(line);
    return 0;

nomem:
    free(line);
    fprintf(stderr, "wordpiece_ids: out of memory\n");
    return -ENOMEM;
}

static double
tg__now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int
main(int argc, char **argv)
{
    tg_wordpiece_t *wp = NULL;
    tg__texts_t     t = { NULL, NULL, 0 };
    int32_t        *ids = NULL;
    size_t          max_ids = 256, i, bytes = 0, tokens = 0;
    long            repeat = 0, r;
    double          t0, dt;
    char            err[256];
    int             n, j, rc = 1;

    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: wordpiece_ids VOCAB [MAX_IDS [REPEAT]]\n");
        return 2;
    }
    if (argc > 2) {
        max_ids = strtoul(argv[2], NULL, 10);
    }
    if (argc > 3) {
        repeat = strtol(argv[3], NULL, 10);
    }
    if (tg_wordpiece_load(argv[1], &wp, err, sizeof(err)) < 0) {
        fprintf(stderr, "wordpiece_ids: %s\n", err);
        return 1;
    }
    ids = malloc((max_ids ? max_ids : 1) * sizeof(*ids));
    if (ids == NULL || tg__read_texts(&t) < 0) {
        goto done;
    }
    if (repeat > 0) {
        t0 = tg__now();
        for (r = 0; r < repeat; r++) {
            for (i = 0; i < t.n; i++) {
                n = tg_wordpiece_encode(wp, t.texts[i], t.lens[i], ids, max_ids);
                if (n < 0) {
                    fprintf(stderr, "wordpiece_ids: encode: %s\n", strerror(-n));
                    goto done;
                }
                tokens += (size_t) n;
                bytes += t.lens[i];
            }
        }
        dt = tg__now() - t0;
        fprintf(stderr, "wordpiece_ids: %zu texts x %ld, %zu ids, %zu bytes in %.3f s: "
                "%.0f ids/s, %.1f MB/s\n", t.n, repeat, tokens, bytes, dt,
                (double) tokens / dt, (double) bytes / dt / 1e6);
        rc = 0;
        goto done;
    }
    for (i = 0; i < t.n; i++) {
        n = tg_wordpiece_encode(wp, t.texts[i], t.lens[i], ids, max_ids);
        if (n < 0) {
            fprintf(stderr, "wordpiece_ids: encode: %s\n", strerror(-n));
            goto done;
        }
        putchar('[');
        for (j = 0; j < n; j++) {
            printf(j ? ", %d" : "%d", ids[j]);
        }
        fputs("]\n", stdout);
    }
    rc = fflush(stdout) == 0 ? 0 : 1;

done:
    for (i = 0; i < t.n; i++) {
        free(t.texts[i]);
    }
    free(t.texts);
    free(t.lens);
    free(ids);
    tg_wordpiece_free(wp);
    return rc;
}
