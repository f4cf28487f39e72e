/*
 * Internals of the plugin registry, shared by the files of engine/plugin/
 * and nobody else.
 */

#ifndef TG_PLUGIN_LOADER_INT_H
#define TG_PLUGIN_LOADER_INT_H

#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "loader.h"
#include "util/queue.h"

typedef struct tg__plugin_entry_s  tg__plugin_entry_t;

/* What tells a changed file from the same one. */
typedef struct {
    dev_t               dev;
    ino_t               ino;
    off_t               size;
    struct timespec     mtime;
} tg__file_id_t;

struct tg_plugin_version_s {
    tg_plugin_t          plugin;        /* host copy of the descriptor */
    tg__plugin_entry_t  *entry;         /* NULL once the registry is gone */
    void                *handle;        /* dlopen() */
    char                *file;          /* realpath loaded from */
    uint64_t             generation;
    uint64_t             refs;          /* requests holding it */
    int                  current;       /* the registry holds it too */
    int64_t              loaded_at_ms;
    tg_queue_t           link;          /* in entry->draining */
};

/* One plugin name: its current version and the old ones still held. */
struct tg__plugin_entry_s {
    char                  name[TG_PLUGIN_NAME_MAX + 1];
    tg_plugin_registry_t *reg;
    tg_plugin_version_t  *current;      /* NULL until a load succeeds */
    tg_queue_t            draining;     /* old versions still held */
    tg__file_id_t         id;           /* current's file */
    uint64_t              generations;  /* successful loads so far */

    /* The last attempt failed: its code, and the file it failed on (or
     * the code of a failed stat), so that the same bad file is neither
     * retried by refresh nor reloaded on every acquire. */
    int                   failed;
    int                   failed_rc;
    int                   failed_stat_rc;
    tg__file_id_t         failed_id;
    char                  last_error[512];

    tg_queue_t            link;         /* in reg->entries */
};

struct tg_plugin_registry_s {
    char                 *dir;          /* realpath, no trailing '/' */
    char                 *scratch;      /* private copies go here */
    const tg_host_api_t  *api;
    tg_plugin_log_cb      log;
    void                 *log_data;
    tg_queue_t            entries;      /* in order of first load */
    uint64_t              copies;       /* names of private copies */
};

/* open.c */
int tg__plugin_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void tg__plugin_log(tg_plugin_registry_t *reg, int level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int tg__file_id_eq(const tg__file_id_t *a, const tg__file_id_t *b);

/* <dir>/<name>.so, symlinks resolved, must lie inside dir and be a
 * regular file: fills *real (malloc()ed; real may be NULL) and *id. */
int tg__plugin_resolve(tg_plugin_registry_t *reg, const char *name,
    char **real, tg__file_id_t *id, char *err, size_t errlen);

/* Copies the open file fd (the plugin at real) to a fresh private path,
 * dlopen()s the copy, checks the descriptor, calls load(): a new version
 * not yet attached to e. */
int tg__plugin_open(tg_plugin_registry_t *reg, tg__plugin_entry_t *e,
    const char *real, int fd, tg_plugin_version_t **out, char *err,
    size_t errlen);

/* check.c: validates the descriptor at p (sym_size bytes, 0: unknown)
 * and fills copy.  -EPROTO with "plugin FILE: ..." in err. */
int tg__plugin_check(const void *p, size_t sym_size, const char *file,
    const char *name, tg_plugin_t *copy, char *err, size_t errlen);

#endif /* TG_PLUGIN_LOADER_INT_H */
