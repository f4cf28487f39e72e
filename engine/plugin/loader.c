/*
 * Strategy plugin registry: names, versions, reference counts and hot
 * reload.  Opening one file is open.c.
 */

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "loader_int.h"

static int tg__attempt(tg_plugin_registry_t *reg, const char *name,
    tg__plugin_entry_t **entry, char *err, size_t errlen);
static tg__plugin_entry_t *tg__entry_find(const tg_plugin_registry_t *reg,
    const char *name);
static void tg__version_free(tg_plugin_version_t *v);
static tg__plugin_entry_t *tg__entry_new(tg_plugin_registry_t *reg,
    const char *name);
static void tg__version_install(tg__plugin_entry_t *e,
    tg_plugin_version_t *v, const tg__file_id_t *id);
static void tg__attempt_failed(tg_plugin_registry_t *reg,
    tg__plugin_entry_t *e, int rc, const tg__file_id_t *id, const char *msg);


int
tg_plugin_name_valid(const char *name)
{
    size_t  i;

    if (name == NULL) {
        return 0;
    }

    for (i = 0; name[i] != '\0'; i++) {
        if (i == TG_PLUGIN_NAME_MAX
            || !((name[i] >= 'a' && name[i] <= 'z')
                 || (name[i] >= '0' && name[i] <= '9') || name[i] == '_'))
        {
            return 0;
        }
    }

    return i > 0;
}


int
tg_plugin_registry_new(tg_plugin_registry_t **out, const char *dir,
    const tg_host_api_t *api, char *err, size_t errlen)
{
    int                    rc;
    char                   tmpl[4096];
    const char            *tmp;
    struct stat            st;
    tg_plugin_registry_t  *reg;

    if (dir == NULL || api == NULL) {
        return tg__plugin_fail(err, errlen, -EINVAL, "plugin dir and host API "
                        "are required");
    }

    reg = calloc(1, sizeof(*reg));
    if (reg == NULL) {
        return tg__plugin_fail(err, errlen, -ENOMEM, "out of memory");
    }

    reg->api = api;
    tg_queue_init(&reg->entries);

    reg->dir = realpath(dir, NULL);
    if (reg->dir == NULL) {
        rc = -errno;
        tg__plugin_fail(err, errlen, rc, "plugin dir %s: %s", dir,
                        strerror(-rc));
        goto failed;
    }

    if (stat(reg->dir, &st) != 0) {
        rc = -errno;
        tg__plugin_fail(err, errlen, rc, "plugin dir %s: %s", reg->dir,
                 strerror(-rc));
        goto failed;
    }

    if (!S_ISDIR(st.st_mode)) {
        rc = tg__plugin_fail(err, errlen, -ENOTDIR, "plugin dir %s: not a "
                      "directory", reg->dir);
        goto failed;
    }

    /* Private copies live outside the plugin dir, which may be read-only
     * and which operators list; mode 0700 keeps other users out. */
    tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') {
        tmp = "/tmp";
    }

    if ((size_t) snprintf(tmpl, sizeof(tmpl), "%s/thinkgate-plugins.XXXXXX",
                          tmp) >= sizeof(tmpl))
    {
        rc = tg__plugin_fail(err, errlen, -ENAMETOOLONG, "TMPDIR is too long");
        goto failed;
    }

    if (mkdtemp(tmpl) == NULL) {
        rc = -errno;
        tg__plugin_fail(err, errlen, rc, "scratch dir %s: %s", tmpl,
                        strerror(-rc));
        goto failed;
    }

    reg->scratch = strdup(tmpl);
    if (reg->scratch == NULL) {
        (void) rmdir(tmpl);
        rc = tg__plugin_fail(err, errlen, -ENOMEM, "out of memory");
        goto failed;
    }

    *out = reg;

    return 0;

failed:

    free(reg->dir);
    free(reg);
    return rc;
}


void
tg_plugin_registry_set_log(tg_plugin_registry_t *reg, tg_plugin_log_cb cb,
    void *data)
{
    reg->log = cb;
    reg->log_data = data;
}


const char *
tg_plugin_registry_dir(const tg_plugin_registry_t *reg)
{
    return reg->dir;
}


void
tg_plugin_registry_free(tg_plugin_registry_t *reg)
{
    tg__plugin_entry_t   *e;
    tg_plugin_version_t  *v;

    if (reg == NULL) {
        return;
    }

    while (!tg_queue_empty(&reg->entries)) {
        e = tg_queue_data(tg_queue_head(&reg->entries), tg__plugin_entry_t,
                          link);
        tg_queue_remove(&e->link);

        /* Held versions outlive the registry: detached, they unload
         * themselves on their last release. */
        while (!tg_queue_empty(&e->draining)) {
            v = tg_queue_data(tg_queue_head(&e->draining),
                              tg_plugin_version_t, link);
            tg_queue_remove(&v->link);
            v->entry = NULL;
        }

        v = e->current;
        if (v != NULL) {
            v->current = 0;
            v->entry = NULL;
            if (v->refs == 0) {
                tg__version_free(v);
            }
        }

        free(e);
    }

    if (rmdir(reg->scratch) != 0 && reg->log != NULL) {
        tg__plugin_log(reg, TG_LOG_WARN, "plugin scratch dir %s: rmdir: %s",
                reg->scratch, strerror(errno));
    }

    free(reg->scratch);
    free(reg->dir);
    free(reg);
}


static tg__plugin_entry_t *
tg__entry_find(const tg_plugin_registry_t *reg, const char *name)
{
    tg__plugin_entry_t  *e;
    const tg_queue_t    *q;

    for (q = tg_queue_head(&reg->entries);
         q != tg_queue_sentinel(&reg->entries); q = tg_queue_next(q))
    {
        e = tg_queue_data(q, tg__plugin_entry_t, link);
        if (strcmp(e->name, name) == 0) {
            return e;
        }
    }

    return NULL;
}


/* A new entry for name, at the end of reg's list; NULL when out of
 * memory. */
static tg__plugin_entry_t *
tg__entry_new(tg_plugin_registry_t *reg, const char *name)
{
    tg__plugin_entry_t  *e;

    e = calloc(1, sizeof(*e));
    if (e == NULL) {
        return NULL;
    }

    memcpy(e->name, name, strlen(name) + 1);
    e->reg = reg;
    tg_queue_init(&e->draining);
    tg_queue_insert_tail(&reg->entries, &e->link);

    return e;
}


/* v, loaded from the file id, becomes e's current version; the old one
 * is freed, or drains while requests hold it. */
static void
tg__version_install(tg__plugin_entry_t *e, tg_plugin_version_t *v,
    const tg__file_id_t *id)
{
    tg_plugin_version_t  *old;

    v->entry = e;
    v->generation = ++e->generations;
    v->current = 1;

    old = e->current;
    e->current = v;
    e->id = *id;
    e->failed = 0;
    e->failed_rc = 0;
    e->last_error[0] = '\0';

    if (old != NULL) {
        old->current = 0;
        if (old->refs == 0) {
            tg__version_free(old);

        } else {
            tg_queue_insert_head(&e->draining, &old->link);
        }
    }
}


/* A failed load (rc, msg) recorded on e where there is one, and logged. */
static void
tg__attempt_failed(tg_plugin_registry_t *reg, tg__plugin_entry_t *e, int rc,
    const tg__file_id_t *id, const char *msg)
{
    if (e != NULL) {
        e->failed = 1;
        e->failed_rc = rc;
        e->failed_id = *id;
        memcpy(e->last_error, msg, sizeof(e->last_error));
    }

    /* A name that is no plugin at all is the caller's to report (a
     * request naming an unknown strategy must not flood the log). */
    if (e != NULL || (rc != -ENOENT && rc != -EINVAL)) {
        tg__plugin_log(reg, TG_LOG_ERROR, "%s%s", msg,
                e != NULL && e->current != NULL
                ? " (the previous version keeps serving)" : "");
    }
}


/*
 * One load of name, successful or not, recorded on its entry (made here
 * once the file exists).  On success the new version becomes current and
 * the old one drains.  *entry: the entry, or NULL if none exists.
 */
static int
tg__attempt(tg_plugin_registry_t *reg, const char *name,
    tg__plugin_entry_t **entry, char *err, size_t errlen)
{
    int                   rc, fd;
    char                 *real, msg[512];
    struct stat           st;
    tg__file_id_t         id;
    tg__plugin_entry_t   *e;
    tg_plugin_version_t  *v;

    *entry = NULL;
    real = NULL;
    v = NULL;
    fd = -1;
    memset(&id, 0, sizeof(id));

    e = tg_plugin_name_valid(name) ? tg__entry_find(reg, name) : NULL;

    rc = tg__plugin_resolve(reg, name, &real, &id, msg, sizeof(msg));
    if (rc < 0) {
        if (e != NULL) {
            e->failed_stat_rc = rc;
        }
        goto failed;
    }

    if (e == NULL) {
        e = tg__entry_new(reg, name);
        if (e == NULL) {
            rc = tg__plugin_fail(msg, sizeof(msg), -ENOMEM, "out of memory");
            goto failed;
        }
    }

    e->failed_stat_rc = 0;

    /* The identity is taken again from the open file: what is copied is
     * what is recorded, even if the file is replaced meanwhile. */
    fd = open(real, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        tg__plugin_fail(msg, sizeof(msg), rc, "plugin %s: %s", real,
                        strerror(-rc));
        goto failed;
    }

    id.dev = st.st_dev;
    id.ino = st.st_ino;
    id.size = st.st_size;
    id.mtime = st.st_mtim;

    rc = tg__plugin_open(reg, e, real, fd, &v, msg, sizeof(msg));
    if (rc < 0) {
        goto failed;
    }

    tg__version_install(e, v, &id);

    tg__plugin_log(reg, TG_LOG_INFO, "plugin %s: loaded %s version '%s', "
            "generation %llu", name, real, v->plugin.version,
            (unsigned long long) v->generation);

    (void) close(fd);
    free(real);
    *entry = e;

    return 0;

failed:

    if (fd >= 0) {
        (void) close(fd);
    }

    tg__attempt_failed(reg, e, rc, &id, msg);
    *entry = e;

    free(real);
    return tg__plugin_fail(err, errlen, rc, "%s", msg);
}


int
tg_plugin_load(tg_plugin_registry_t *reg, const char *name, char *err,
    size_t errlen)
{
    tg__file_id_t        id;
    tg__plugin_entry_t  *e;

    e = tg_plugin_name_valid(name) ? tg__entry_find(reg, name) : NULL;

    if (e != NULL && e->current != NULL) {
        return 0;
    }

    /* A name whose file was refused stays refused until the file changes:
     * a request naming it must not dlopen it again each time. */
    if (e != NULL && e->failed
        && tg__plugin_resolve(reg, name, NULL, &id, NULL, 0) == 0
        && e->failed_stat_rc == 0 && tg__file_id_eq(&id, &e->failed_id))
    {
        return tg__plugin_fail(err, errlen, e->failed_rc, "%s", e->last_error);
    }

    return tg__attempt(reg, name, &e, err, errlen);
}


int
tg_plugin_load_all(tg_plugin_registry_t *reg)
{
    int                  rc, count;
    DIR                 *d;
    char                 name[TG_PLUGIN_NAME_MAX + 1], err[512];
    size_t               len;
    struct dirent       *de;
    const tg_queue_t    *q;

    d = opendir(reg->dir);
    if (d == NULL) {
        rc = -errno;
        tg__plugin_log(reg, TG_LOG_ERROR, "plugin dir %s: %s", reg->dir,
                strerror(-rc));
        return rc;
    }

    for ( ;; ) {
        errno = 0;
        de = readdir(d);
        if (de == NULL) {
            rc = -errno;
            break;
        }

        len = strlen(de->d_name);
        if (len < 4 || len - 3 > TG_PLUGIN_NAME_MAX
            || strcmp(de->d_name + len - 3, ".so") != 0)
        {
            continue;
        }

        memcpy(name, de->d_name, len - 3);
        name[len - 3] = '\0';

        if (!tg_plugin_name_valid(name)) {
            continue;
        }

        /* Refusals are logged by the attempt itself. */
        (void) tg_plugin_load(reg, name, err, sizeof(err));
    }

    if (closedir(d) != 0 && rc == 0) {
        rc = -errno;
    }

    if (rc < 0) {
        tg__plugin_log(reg, TG_LOG_ERROR, "plugin dir %s: %s", reg->dir,
                strerror(-rc));
        return rc;
    }

    count = 0;
    for (q = tg_queue_head(&reg->entries);
         q != tg_queue_sentinel(&reg->entries); q = tg_queue_next(q))
    {
        count += tg_queue_data(q, tg__plugin_entry_t, link)->current != NULL;
    }

    return count;
}


int
tg_plugin_reload(tg_plugin_registry_t *reg, const char *name, char *err,
    size_t errlen)
{
    tg__plugin_entry_t  *e;

    return tg__attempt(reg, name, &e, err, errlen);
}


int
tg_plugin_refresh(tg_plugin_registry_t *reg)
{
    int                  rc, n;
    char                 err[512];
    tg__file_id_t        id;
    tg__plugin_entry_t  *e, *ee;
    tg_queue_t          *q;

    n = 0;

    for (q = tg_queue_head(&reg->entries);
         q != tg_queue_sentinel(&reg->entries); q = tg_queue_next(q))
    {
        e = tg_queue_data(q, tg__plugin_entry_t, link);
        memset(&id, 0, sizeof(id));
        rc = tg__plugin_resolve(reg, e->name, NULL, &id, err, sizeof(err));

        if (rc < 0) {
            /* Gone or moved outside: report once, keep serving. */
            if (!(e->failed && e->failed_stat_rc == rc)) {
                e->failed = 1;
                e->failed_rc = rc;
                e->failed_stat_rc = rc;
                memcpy(e->last_error, err, sizeof(e->last_error));
                tg__plugin_log(reg, TG_LOG_WARN, "%s%s", err, e->current != NULL
                        ? " (the loaded version keeps serving)" : "");
            }
            continue;
        }

        if (e->failed ? (e->failed_stat_rc == 0
                         && tg__file_id_eq(&id, &e->failed_id))
                      : (e->current != NULL && tg__file_id_eq(&id, &e->id)))
        {
            continue;
        }

        if (tg__attempt(reg, e->name, &ee, err, sizeof(err)) == 0) {
            n++;
        }
    }

    return n;
}


int
tg_plugin_acquire(tg_plugin_registry_t *reg, const char *name,
    tg_plugin_version_t **out, char *err, size_t errlen)
{
    int                  rc;
    tg__plugin_entry_t  *e;

    e = tg_plugin_name_valid(name) ? tg__entry_find(reg, name) : NULL;

    if (e == NULL || e->current == NULL) {
        rc = tg_plugin_load(reg, name, err, errlen);
        if (rc < 0) {
            return rc;
        }

        e = tg__entry_find(reg, name);
        if (e == NULL || e->current == NULL) {
            return tg__plugin_fail(err, errlen, -ENOENT,
                                   "plugin %s: not loaded", name);
        }
    }

    e->current->refs++;
    *out = e->current;

    return 0;
}


static void
tg__version_free(tg_plugin_version_t *v)
{
    tg__plugin_entry_t   *e;

    e = v->entry;
    tg_queue_remove(&v->link);

    if (v->plugin.unload != NULL) {
        v->plugin.unload();
    }

    if (dlclose(v->handle) != 0 && e != NULL) {
        tg__plugin_log(e->reg, TG_LOG_WARN, "plugin %s: dlclose: %s", v->file,
                dlerror());
    }

    if (e != NULL) {
        tg__plugin_log(e->reg, TG_LOG_INFO,
                       "plugin %s: unloaded generation %llu", e->name,
                       (unsigned long long) v->generation);
    }

    free(v->file);
    free(v);
}


void
tg_plugin_release(tg_plugin_version_t *v)
{
    if (v == NULL || v->refs == 0) {
        return;
    }

    v->refs--;

    if (v->refs == 0 && !v->current) {
        tg__version_free(v);
    }
}


const tg_plugin_t *
tg_plugin_version_plugin(const tg_plugin_version_t *v)
{
    return &v->plugin;
}


uint64_t
tg_plugin_version_generation(const tg_plugin_version_t *v)
{
    return v->generation;
}


const char *
tg_plugin_last_error(const tg_plugin_registry_t *reg, const char *name)
{
    tg__plugin_entry_t  *e;

    e = tg_plugin_name_valid(name) ? tg__entry_find(reg, name) : NULL;

    return e != NULL && e->failed ? e->last_error : NULL;
}
