/*
 * Strategy plugin loader and registry.
 *
 * A registry serves one plugin directory (the engine's --plugin-dir).  A
 * plugin is loaded by name only, from <dir>/<name>.so, where the name
 * matches [a-z0-9_]{1,64}; a symlink is followed only when its target lies
 * inside the directory.  The descriptor is checked before anything in it
 * is trusted (include/thinkgate/plugin.h): ABI version first, then build
 * signature, size, name, callbacks and option table; then load() runs.
 *
 * Versions.  Every successful load of a name makes a new version with the
 * next generation number (1, 2, ...) and makes it current.  A request
 * holds the version it started on: tg_plugin_acquire() returns the
 * current version with one more reference, tg_plugin_release() drops it.
 * A version that is no longer current is unload()ed and dlclose()d when
 * its last reference goes, never earlier.  A failed (re)load leaves the
 * current version serving and records why (tg_plugin_last_error(), the
 * admin list, the log callback).
 *
 * dlopen() of a path already open returns the copy already mapped, so
 * every load first copies the file to a fresh private path in a scratch
 * directory made at registry creation ($TMPDIR or /tmp), dlopen()s the
 * copy and unlinks it at once.
 *
 * Threading: one event loop; no function here may be called from two
 * threads at once.  Loading does file I/O and runs the plugin's load() on
 * the caller's thread: plugin files are local and small, and a load
 * happens at startup, on first use of a name, on reload and when a
 * changed file is noticed.
 *
 * Return vocabulary: 0 (or a count) on success, negative errno codes on
 * failure with a message in the caller's err buffer.
 */

#ifndef TG_PLUGIN_LOADER_H
#define TG_PLUGIN_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "plugin/abi.h"

#define TG_PLUGIN_NAME_MAX  64

typedef struct tg_plugin_registry_s  tg_plugin_registry_t;
typedef struct tg_plugin_version_s   tg_plugin_version_t;

/* level: 0 error, 1 warn, 2 info, 3 debug (TG_LOG_* of plugin.h). */
typedef void (*tg_plugin_log_cb)(void *data, int level, const char *msg);

/*
 * Creates a registry for dir (made absolute with realpath(); it must be a
 * directory).  api is the host table handed to every plugin's load(); it
 * must outlive the registry and every version.  Nothing is loaded yet.
 * Returns 0, -EINVAL, -ENOENT, -ENOTDIR, -ENOMEM or the errno of a failed
 * system call, with the reason in err.
 */
int tg_plugin_registry_new(tg_plugin_registry_t **out, const char *dir,
    const tg_host_api_t *api, char *err, size_t errlen);

/* Sets where load, reload and refresh report what they did (refusals,
 * reloads).  Without it nothing is logged; errors still reach callers. */
void tg_plugin_registry_set_log(tg_plugin_registry_t *reg,
    tg_plugin_log_cb cb, void *data);

/*
 * Frees the registry.  Current versions nobody holds are unloaded now;
 * versions still held by requests are detached and unloaded by their last
 * tg_plugin_release().  The scratch directory is removed.
 */
void tg_plugin_registry_free(tg_plugin_registry_t *reg);

/* The realpath of the plugin directory. */
const char *tg_plugin_registry_dir(const tg_plugin_registry_t *reg);

/* 1 when name matches [a-z0-9_]{1,64}, else 0. */
int tg_plugin_name_valid(const char *name);

/*
 * Loads name unless a version of it is already current (then 0 and
 * nothing happens).  Returns 0; -EINVAL for a bad name ("path outside the
 * plugin dir"); -ENOENT when there is no such file; -EPERM for a symlink
 * leading outside the directory; -EPROTO for a refused descriptor; the
 * negative code of a failed load(); -ENOMEM or a system call's errno.
 * A refusal of a file that has not changed since is remembered and
 * returned again without reloading it.
 */
int tg_plugin_load(tg_plugin_registry_t *reg, const char *name,
    char *err, size_t errlen);

/* Loads every <name>.so in the directory whose name is valid (others are
 * skipped), logging each refusal.  Returns the number of plugins current
 * afterwards, or a negative errno when the directory cannot be read. */
int tg_plugin_load_all(tg_plugin_registry_t *reg);

/*
 * Loads name again now, whether its file changed or not, and makes the
 * new version current.  On failure the old version (if any) stays current
 * and the reason is returned in err and kept for tg_plugin_last_error().
 */
int tg_plugin_reload(tg_plugin_registry_t *reg, const char *name,
    char *err, size_t errlen);

/*
 * Reloads every plugin whose file changed (device, inode, size or mtime)
 * since its current version was loaded, or since a failed attempt on it.
 * For the engine to call on a new configuration generation and
 * periodically.  Deploy a plugin by writing a new file and rename()ing
 * it over the old one: a file rewritten in place may be seen half
 * written (that attempt fails and the next change is picked up).
 * Returns the number of plugins reloaded; failures are logged, recorded,
 * and leave their old version current.
 */
int tg_plugin_refresh(tg_plugin_registry_t *reg);

/*
 * The current version of name, with one more reference: the request keeps
 * it until tg_plugin_release().  Loads name first when it is not loaded.
 * Returns 0 or what tg_plugin_load() returns.  A function that returns an
 * error never sets *out.
 */
int tg_plugin_acquire(tg_plugin_registry_t *reg, const char *name,
    tg_plugin_version_t **out, char *err, size_t errlen);

/* Drops one reference; the last one on a version that is no longer
 * current unloads it (unload(), dlclose()).  NULL is ignored. */
void tg_plugin_release(tg_plugin_version_t *v);

/*
 * The descriptor of a version: the host's own copy, with fields past the
 * plugin's size zeroed and every callback except load/unload non-NULL
 * (absent ones are no-ops), so callers need no NULL checks.  Valid while
 * the version is held.
 */
const tg_plugin_t *tg_plugin_version_plugin(const tg_plugin_version_t *v);
uint64_t tg_plugin_version_generation(const tg_plugin_version_t *v);

/* The reason of the last failed (re)load of name, or NULL if its last
 * attempt succeeded or it was never tried. */
const char *tg_plugin_last_error(const tg_plugin_registry_t *reg,
    const char *name);


/* ---- the admin list ------------------------------------------------- */

/* One loaded version, as the admin API shows it.  Strings live until the
 * callback returns. */
typedef struct {
    const char         *name;
    const char         *version;        /* the plugin's own version text */
    const char         *description;
    const char         *file;           /* realpath it was loaded from */
    uint64_t            generation;     /* 1 for the first load of name */
    uint64_t            refs;           /* requests holding it now */
    int64_t             loaded_at_ms;   /* wall clock, ms since the epoch */
    int                 current;        /* 0: draining, unloaded when refs
                                           reaches 0 */
    const tg_option_t  *options;        /* the plugin's table */
    const char         *last_error;     /* name's last failure, or NULL */
} tg_plugin_info_t;

/* Calls cb for each version (each name's current version first, then the
 * ones draining), names in load order.  A non-zero return from cb stops
 * the walk and is returned. */
typedef int (*tg_plugin_list_cb)(const tg_plugin_info_t *info, void *data);
int tg_plugin_list(const tg_plugin_registry_t *reg, tg_plugin_list_cb cb,
    void *data);

/*
 * The list as JSON: an array with one object per name,
 *   {"name","version","description","file","generation","refs",
 *    "loaded_at" (ISO 8601 UTC),"loaded_at_ms","options":[{"name","type",
 *    "default","min","max","choices","doc"}],"draining":[{"version",
 *    "generation","refs","loaded_at_ms"}],"last_error"}
 * where version/file/... are null for a name that failed its first load.
 * tg_plugin_list_json returns a new reference or NULL on ENOMEM;
 * tg_plugin_list_json_text returns malloc()ed text (free()) or NULL.
 */
json_t *tg_plugin_list_json(const tg_plugin_registry_t *reg);
/* in with every "DIR/" of the plugin directory left out, into out (len
 * bytes, cut to fit): the admin API shows no absolute path of the
 * engine's host ("file" is "ffs.so"). */
void tg_plugin_public_text(const tg_plugin_registry_t *reg, const char *in,
    char *out, size_t len);
char *tg_plugin_list_json_text(const tg_plugin_registry_t *reg);

#endif /* TG_PLUGIN_LOADER_H */
