/*
 * thinkgate — reading the recorded traces (see traces_reader.h).
 */

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "needs.h"
#include "traces_reader.h"

static long tg_traces_line(tg_traces_t *t);


const char *
tg_traces_dir(void)
{
    const char  *d = getenv("TG_TRACES_DIR");

    return d != NULL && *d != '\0' ? d : "../shared/traces";
}


void
tg_traces_open(tg_traces_t *t)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->pattern, sizeof(t->pattern), "%s/*.jsonl.gz",
             tg_traces_dir());
    if (glob(t->pattern, 0, NULL, &t->glob) != 0 || t->glob.gl_pathc == 0) {
        globfree(&t->glob);
        TG_TEST_MISSING("no trace files match %s (set TG_TRACES_DIR)",
                     t->pattern);
    }
}


int
tg_traces_next_file(tg_traces_t *t)
{
    const char  *slash;

    if (t->gz != NULL) {
        gzclose(t->gz);
        t->gz = NULL;
    }
    if (t->next >= t->glob.gl_pathc) {
        t->path = t->base = NULL;
        return 0;
    }
    t->path = t->glob.gl_pathv[t->next++];
    slash = strrchr(t->path, '/');
    t->base = slash != NULL ? slash + 1 : t->path;
    t->gz = gzopen(t->path, "rb");
    cr_assert_not_null(t->gz, "cannot open %s", t->path);
    return 1;
}


json_t *
tg_traces_next(tg_traces_t *t)
{
    json_error_t  err;
    json_t       *j;
    long          len;

    while ((len = tg_traces_line(t)) >= 0) {
        if (len <= 1) {
            continue;
        }
        j = json_loadb(t->buf, (size_t) len, 0, &err);
        cr_assert_not_null(j, "%s: bad JSON line: %s", t->base, err.text);
        return j;
    }
    return NULL;
}


void
tg_traces_close(tg_traces_t *t)
{
    if (t->gz != NULL) {
        gzclose(t->gz);
        t->gz = NULL;
    }
    free(t->buf);
    t->buf = NULL;
    t->cap = 0;
    globfree(&t->glob);
    memset(&t->glob, 0, sizeof(t->glob));
}


/* One line of the current file into t->buf, however long; its length,
 * or -1 at the end. */
static long
tg_traces_line(tg_traces_t *t)
{
    size_t  len = 0;
    char   *p;

    for ( ;; ) {
        if (t->cap - len < 65536) {
            p = realloc(t->buf, t->cap ? t->cap * 2 : 1 << 20);
            cr_assert_not_null(p, "out of memory");
            t->buf = p;
            t->cap = t->cap ? t->cap * 2 : 1 << 20;
        }
        if (gzgets(t->gz, t->buf + len, (int) (t->cap - len)) == NULL) {
            return len > 0 ? (long) len : -1;
        }
        len += strlen(t->buf + len);
        if (len > 0 && t->buf[len - 1] == '\n') {
            return (long) len;
        }
    }
}
