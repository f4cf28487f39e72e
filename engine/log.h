/*
 * thinkgated logging: one line per message on stderr, with a level filter
 * set once from the command line.
 */

#ifndef TG_LOG_H
#define TG_LOG_H

enum {
    TG_LOG_ERROR = 0,
    TG_LOG_WARN  = 1,
    TG_LOG_INFO  = 2,
    TG_LOG_DEBUG = 3
};

extern int  tg_log_level;

/* Returns the level for a name ("error", "warn", "info", "debug") or -1. */
int tg_log_level_parse(const char *name);

void tg_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define tg_log_error(...)  tg_log(TG_LOG_ERROR, __VA_ARGS__)
#define tg_log_warn(...)   tg_log(TG_LOG_WARN, __VA_ARGS__)
#define tg_log_info(...)   tg_log(TG_LOG_INFO, __VA_ARGS__)
#define tg_log_debug(...)                                                    \
    do {                                                                     \
        if (tg_log_level >= TG_LOG_DEBUG) {                                  \
            tg_log(TG_LOG_DEBUG, __VA_ARGS__);                               \
        }                                                                    \
    } while (0)

#endif /* TG_LOG_H */
