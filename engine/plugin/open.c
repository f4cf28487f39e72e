/*
 * Opening one plugin file: resolving <dir>/<name>.so inside the plugin
 * dir, the private copy, dlopen(), the descriptor checks and load().
 */

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "loader_int.h"

static int tg__copy(int from, const char *to, char *err, size_t errlen);
static int64_t tg__now_ms(void);
static int tg__plugin_dlopen(tg_plugin_registry_t *reg, tg__plugin_entry_t *e,
    const char *real, int fd, void **handle, char *err, size_t errlen);
static size_t tg__plugin_sym_size(void *sym);
static int tg__plugin_call_load(tg_plugin_registry_t *reg,
    tg_plugin_version_t *v, const char *real, char *err, size_t errlen);


int
tg__plugin_fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
    va_list  ap;

    if (err != NULL && errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }

    return rc;
}


void
tg__plugin_log(tg_plugin_registry_t *reg, int level, const char *fmt, ...)
{
    char     msg[1024];
    va_list  ap;

    if (reg->log == NULL) {
        return;
    }

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);

    reg->log(reg->log_data, level, msg);
}


static int64_t
tg__now_ms(void)
{
    struct timespec  ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;
    }

    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}


int
tg__file_id_eq(const tg__file_id_t *a, const tg__file_id_t *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size
           && a->mtime.tv_sec == b->mtime.tv_sec
           && a->mtime.tv_nsec == b->mtime.tv_nsec;
}


/*
 * <dir>/<name>.so, its symlinks resolved, must lie inside dir and be a
 * regular file.  Fills *real (malloc()ed; may be NULL) and *id.
 */
int
tg__plugin_resolve(tg_plugin_registry_t *reg, const char *name, char **real,
    tg__file_id_t *id, char *err, size_t errlen)
{
    int          rc;
    char         path[4096], *rp;
    size_t       dlen;
    struct stat  st;

    if (real != NULL) {
        *real = NULL;
    }

    if (!tg_plugin_name_valid(name)) {
        return tg__plugin_fail(err, errlen, -EINVAL,
                               "plugin '%.80s': path outside the plugin dir "
                               "(a name is [a-z0-9_]{1,64})", name);
    }

    if ((size_t) snprintf(path, sizeof(path), "%s/%s.so", reg->dir, name)
        >= sizeof(path))
    {
        return tg__plugin_fail(err, errlen, -ENAMETOOLONG,
                               "plugin %s: path too long", name);
    }

    rp = realpath(path, NULL);
    if (rp == NULL) {
        rc = -errno;
        return tg__plugin_fail(err, errlen, rc, "plugin %s: %s", path,
                        rc == -ENOENT ? "no such file" : strerror(-rc));
    }

    dlen = strlen(reg->dir);
    if (strncmp(rp, reg->dir, dlen) != 0 || rp[dlen] != '/') {
        rc = tg__plugin_fail(err, errlen, -EPERM, "plugin %s: path outside the "
                      "plugin dir (it leads to %s)", path, rp);
        goto failed;
    }

    if (stat(rp, &st) != 0) {
        rc = -errno;
        tg__plugin_fail(err, errlen, rc, "plugin %s: %s", rp, strerror(-rc));
        goto failed;
    }

    if (!S_ISREG(st.st_mode)) {
        rc = tg__plugin_fail(err, errlen, -EINVAL,
                             "plugin %s: not a regular file", rp);
        goto failed;
    }

    id->dev = st.st_dev;
    id->ino = st.st_ino;
    id->size = st.st_size;
    id->mtime = st.st_mtim;

    if (real != NULL) {
        *real = rp;

    } else {
        free(rp);
    }

    return 0;

failed:

    free(rp);
    return rc;
}


/* Copies the open file from to a new file to (which must not exist). */
static int
tg__copy(int from, const char *to, char *err, size_t errlen)
{
    int      fd, rc;
    char     buf[65536];
    ssize_t  n, w, off;

    fd = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        rc = -errno;
        return tg__plugin_fail(err, errlen, rc, "private copy %s: %s", to,
                        strerror(-rc));
    }

    for ( ;; ) {
        n = read(from, buf, sizeof(buf));
        if (n < 0 && errno == EINTR) {
            continue;
        }

        if (n < 0) {
            rc = -errno;
            tg__plugin_fail(err, errlen, rc, "reading plugin: %s",
                            strerror(-rc));
            goto failed;
        }

        if (n == 0) {
            break;
        }

        for (off = 0; off < n; off += w) {
            w = write(fd, buf + off, (size_t) (n - off));
            if (w < 0 && errno == EINTR) {
                w = 0;
                continue;
            }

            if (w < 0) {
                rc = -errno;
                tg__plugin_fail(err, errlen, rc, "private copy %s: %s", to,
                         strerror(-rc));
                goto failed;
            }
        }
    }

    if (close(fd) != 0) {
        rc = -errno;
        (void) unlink(to);
        return tg__plugin_fail(err, errlen, rc, "private copy %s: %s", to,
                        strerror(-rc));
    }

    return 0;

failed:

    (void) close(fd);
    (void) unlink(to);
    return rc;
}


/*
 * Copies the open file fd (the plugin at real) to a fresh private path in
 * the scratch dir and dlopen()s the copy, whose name goes at once.
 */
static int
tg__plugin_dlopen(tg_plugin_registry_t *reg, tg__plugin_entry_t *e,
    const char *real, int fd, void **handle, char *err, size_t errlen)
{
    int    rc;
    char   copy[4096], why[512];

    if ((size_t) snprintf(copy, sizeof(copy), "%s/%s.%llu.so", reg->scratch,
                          e->name, (unsigned long long) ++reg->copies)
        >= sizeof(copy))
    {
        return tg__plugin_fail(err, errlen, -ENAMETOOLONG, "plugin %s: scratch "
                        "path too long", real);
    }

    rc = tg__copy(fd, copy, why, sizeof(why));
    if (rc < 0) {
        return tg__plugin_fail(err, errlen, rc, "plugin %s: %s", real, why);
    }

    *handle = dlopen(copy, RTLD_NOW | RTLD_LOCAL);

    /* The mapping keeps the copy alive; its name is not needed again. */
    if (unlink(copy) != 0) {
        tg__plugin_log(reg, TG_LOG_WARN, "plugin %s: unlink %s: %s", real, copy,
                strerror(errno));
    }

    if (*handle == NULL) {
        return tg__plugin_fail(err, errlen, -ENOEXEC,
                               "plugin %s: dlopen: %s", real, dlerror());
    }

    return 0;
}


/* The symbol's size in the ELF symbol table bounds what may be read;
 * 0 when unknown. */
static size_t
tg__plugin_sym_size(void *sym)
{
    Dl_info           info;
    const ElfW(Sym)  *esym;

    esym = NULL;
    if (dladdr1(sym, &info, (void **) &esym, RTLD_DL_SYMENT) != 0
        && esym != NULL)
    {
        return esym->st_size;
    }

    return 0;
}


/* The plugin's load(), where it has one: 0, or its refusal in err. */
static int
tg__plugin_call_load(tg_plugin_registry_t *reg, tg_plugin_version_t *v,
    const char *real, char *err, size_t errlen)
{
    int   rc;
    char  why[512];

    if (v->plugin.load == NULL) {
        return 0;
    }

    why[0] = '\0';
    rc = v->plugin.load(reg->api, why, sizeof(why));
    why[sizeof(why) - 1] = '\0';

    if (rc < 0) {
        return tg__plugin_fail(err, errlen, rc,
                               "plugin %s: load() refused (%d): %s", real, rc,
                               why[0] != '\0' ? why : "no reason given");
    }

    return 0;
}


/*
 * Copies the open file fd (the plugin at real) to a fresh private path,
 * dlopen()s the copy, checks the descriptor and calls load().
 */
int
tg__plugin_open(tg_plugin_registry_t *reg, tg__plugin_entry_t *e,
    const char *real, int fd, tg_plugin_version_t **out, char *err,
    size_t errlen)
{
    int                   rc;
    void                 *handle, *sym;
    tg_plugin_version_t  *v;

    rc = tg__plugin_dlopen(reg, e, real, fd, &handle, err, errlen);
    if (rc < 0) {
        return rc;
    }

    (void) dlerror();
    sym = dlsym(handle, TG_PLUGIN_SYMBOL);
    if (sym == NULL) {
        rc = tg__plugin_fail(err, errlen, -EPROTO, "plugin %s: no symbol %s",
                      real, TG_PLUGIN_SYMBOL);
        goto failed;
    }

    v = calloc(1, sizeof(*v));
    if (v == NULL) {
        rc = tg__plugin_fail(err, errlen, -ENOMEM, "out of memory");
        goto failed;
    }
    tg_queue_init(&v->link);

    v->handle = handle;
    v->file = strdup(real);
    if (v->file == NULL) {
        free(v);
        rc = tg__plugin_fail(err, errlen, -ENOMEM, "out of memory");
        goto failed;
    }

    rc = tg__plugin_check(sym, tg__plugin_sym_size(sym), real, e->name,
                          &v->plugin, err, errlen);
    if (rc < 0) {
        goto failed_version;
    }

    rc = tg__plugin_call_load(reg, v, real, err, errlen);
    if (rc < 0) {
        goto failed_version;
    }

    v->loaded_at_ms = tg__now_ms();
    *out = v;

    return 0;

failed_version:

    free(v->file);
    free(v);

failed:

    if (dlclose(handle) != 0) {
        tg__plugin_log(reg, TG_LOG_WARN, "plugin %s: dlclose: %s", real,
                       dlerror());
    }

    return rc;
}
