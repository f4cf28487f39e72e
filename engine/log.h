/*
 * thinkgated logging: one line per message on stderr, with a level filter
 * set once from the command line.
 */

#ifndef TG_LOG_H
#define TG_LOG_H

/* The levels are plugin.h's TG_LOG_* (error 0, warn 1, info 2, debug 3),
 * so that plugins' log calls map one to one.  Included the way
 * plugin/abi.h includes it (without the plugins' short handle names):
 * log is below plugin/ in mk/layers.sh's order. */
#ifndef TG_PLUGIN_HOST
#define TG_PLUGIN_HOST  1
#endif
#include <thinkgate/plugin.h>

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
