/*
 * thinkgated logging.  stderr is unbuffered; each message is formatted
 * into one buffer and written with a single write(2) so that lines from
 * the engine never interleave mid-line with other writers.
 */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

int  tg_log_level = TG_LOG_INFO;

static const char *tg__log_names[] = { "error", "warn", "info", "debug" };


int
tg_log_level_parse(const char *name)
{
    int  i;

    for (i = 0; i < 4; i++) {
        if (strcmp(name, tg__log_names[i]) == 0) {
            return i;
        }
    }

    return -1;
}


void
tg_log(int level, const char *fmt, ...)
{
    char             line[2048];
    size_t           n;
    int              rc;
    va_list          ap;
    struct timespec  ts;
    struct tm        tm;

    if (level > tg_log_level) {
        return;
    }

    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    n = strftime(line, sizeof(line), "%Y/%m/%d %H:%M:%S", &tm);
    rc = snprintf(line + n, sizeof(line) - n, ".%03ld [%s] thinkgated: ",
                  ts.tv_nsec / 1000000, tg__log_names[level]);
    if (rc > 0) {
        n += (size_t) rc;
    }

    va_start(ap, fmt);
    rc = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);

    if (rc > 0) {
        n += (size_t) rc;
    }
    if (n > sizeof(line) - 2) {
        n = sizeof(line) - 2;
    }
    line[n++] = '\n';

    if (write(STDERR_FILENO, line, n) < 0) {
        /* Nowhere left to report it. */
    }
}
