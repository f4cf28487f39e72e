/*
 * thinkgate — reading the recorded traces the unit tests replay: every
 * *.jsonl.gz file in $TG_TRACES_DIR, or ../shared/traces when it is unset,
 * one JSON object a line (a sample: problem_id, bench, output,
 * completion_tokens, finish_reason, answer, pred, ...).
 *
 * Helpers assert with Criterion: call them from inside a Test().  A test
 * that opens the traces is skipped, with a message naming the pattern,
 * when no file matches.
 */
#ifndef TG_TRACES_READER_H
#define TG_TRACES_READER_H

#include <glob.h>
#include <jansson.h>
#include <stddef.h>
#include <zlib.h>

typedef struct {
    char         pattern[4096];
    glob_t       glob;
    size_t       next;      /* index of the next file to open */
    const char  *path;      /* the current file */
    const char  *base;      /* its name, without the directory */
    gzFile       gz;
    char        *buf;       /* the current line */
    size_t       cap;
} tg_traces_t;

/* The directory read: $TG_TRACES_DIR, or ../shared/traces. */
const char *tg_traces_dir(void);

/* Finds the trace files; skips the calling test when there are none. */
void tg_traces_open(tg_traces_t *t);

/* Opens the next file (t->path, t->base): 1, or 0 after the last. */
int tg_traces_next_file(tg_traces_t *t);

/* The next sample of the current file, blank lines skipped (the caller
 * owns the reference); NULL at the end of the file. */
json_t *tg_traces_next(tg_traces_t *t);

/* Releases everything; t may be closed once opened, at any point. */
void tg_traces_close(tg_traces_t *t);

#endif /* TG_TRACES_READER_H */
