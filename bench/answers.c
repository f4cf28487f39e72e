/*
 * thinkgate-answers: the answer the strategies' own extractor
 * (plugins/common/answer.c) reads in each recorded trace, so that
 * bench/strategies builds its baselines (majority@n, the yardstick) from
 * the same answers the plugins vote with, not from the recorder's `pred`.
 *
 *   thinkgate-answers FILE.jsonl[.gz] ...
 *
 * One JSON line per input line, in order:
 *   {"file": BASENAME, "line": N, "answer": "..." | null}
 * Options as the voting plugins take them for a request of
 * bench/strategies: the line's bench sets the answer format, and
 * "reasoning" is on (the plugins' default), so musings in thinking that
 * was cut off are not answers, boxes still are.  A line
 * that is not a JSON object with a string `output` is an error naming the
 * file and line; the exit status is then 1.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <zlib.h>

#include "common/answer.h"


/* Reads one line of any length into *buf; 0 at the end, -1 on error. */
static int
tg__read_line(gzFile f, char **buf, size_t *cap, size_t *len)
{
    *len = 0;
    for ( ;; ) {
        if (*cap - *len < 2) {
            size_t  ncap = *cap ? *cap * 2 : 65536;
            char   *nb = realloc(*buf, ncap);

            if (nb == NULL) {
                return -1;
            }
            *buf = nb;
            *cap = ncap;
        }
        if (gzgets(f, *buf + *len, (int) (*cap - *len)) == NULL) {
            return *len > 0 ? 1 : (gzeof(f) ? 0 : -1);
        }
        *len += strlen(*buf + *len);
        if (*len > 0 && (*buf)[*len - 1] == '\n') {
            return 1;
        }
    }
}


/* The answer of one trace line; -1 (with msg) when the line is bad. */
static int
tg__line_answer(const char *line, char *out, size_t size, char *msg,
    size_t msize)
{
    tg_answer_opts_t  o;
    json_error_t      jerr;
    json_t           *j, *output, *bench;
    int               r;

    j = json_loads(line, 0, &jerr);
    if (j == NULL || !json_is_object(j)) {
        snprintf(msg, msize, "not a JSON object (%s)",
                 j == NULL ? jerr.text : "other JSON");
        json_decref(j);
        return -1;
    }
    output = json_object_get(j, "output");
    if (!json_is_string(output)) {
        snprintf(msg, msize, "no string \"output\"");
        json_decref(j);
        return -1;
    }
    tg_answer_opts_default(&o);
    bench = json_object_get(j, "bench");
    if (json_is_string(bench)
        && tg_answer_opts_for_bench(json_string_value(bench), &o) != 0)
    {
        /* Unknown to the plugins too: bench/strategies then sends no
         * bench, so read it as plain text. */
        tg_answer_opts_default(&o);
    }
    o.flags |= TG_ANSWER_F_REASONING;
    r = tg_answer_extract_opts(json_string_value(output),
                               json_string_length(output), &o, out, size);
    json_decref(j);
    if (r < 0) {
        snprintf(msg, msize, "extraction failed (%d)", r);
        return -1;
    }
    if (r == 0) {
        out[0] = '\0';
    }
    return 0;
}


static int
tg__file(const char *path)
{
    const char  *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char         ans[TG_ANSWER_MAX], msg[256];
    char        *buf = NULL;
    size_t       cap = 0, len;
    unsigned     lineno = 0;
    json_t      *rec;
    gzFile       f;
    int          r, rc = 0;

    f = gzopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "thinkgate-answers: %s: %s\n", path,
                strerror(errno ? errno : ENOMEM));
        return 1;
    }
    while ((r = tg__read_line(f, &buf, &cap, &len)) > 0) {
        lineno++;
        if (strspn(buf, " \t\r\n") == len) {
            continue;
        }
        if (tg__line_answer(buf, ans, sizeof(ans), msg, sizeof(msg)) != 0) {
            fprintf(stderr, "thinkgate-answers: %s line %u: %s\n", path,
                    lineno, msg);
            rc = 1;
            break;
        }
        rec = json_pack("{s:s, s:I, s:o}", "file", base,
                        "line", (json_int_t) lineno, "answer",
                        ans[0] ? json_string(ans) : json_null());
        if (rec == NULL || json_dumpf(rec, stdout, JSON_COMPACT) != 0) {
            fprintf(stderr, "thinkgate-answers: %s line %u: cannot write "
                    "its answer\n", path, lineno);
            json_decref(rec);
            rc = 1;
            break;
        }
        json_decref(rec);
        putchar('\n');
    }
    if (r < 0) {
        fprintf(stderr, "thinkgate-answers: %s: read error after line %u\n",
                path, lineno);
        rc = 1;
    }
    gzclose(f);
    free(buf);
    return rc;
}


int
main(int argc, char **argv)
{
    int  i, rc = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: thinkgate-answers FILE.jsonl[.gz] ...\n");
        return 2;
    }
    for (i = 1; i < argc && rc == 0; i++) {
        rc = tg__file(argv[i]);
    }
    if (fflush(stdout) != 0) {
        rc = 1;
    }
    return rc;
}
