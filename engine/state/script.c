/*
 * Lua scripts for Redis: read from the lua/ directory at start-up and
 * named by their SHA-1, which is what EVALSHA sends.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "state/redis.h"
#include "state/sha1.h"

#define TG_SCRIPT_MAX  (1024 * 1024)

#ifndef TG_LUA_DIR
#define TG_LUA_DIR  "/usr/share/thinkgate/lua"
#endif


int
tg_redis_script_load(tg_redis_script_t *s, const char *dir, const char *file,
    char *err, size_t errlen)
{
    char         path[PATH_MAX];
    struct stat  st;
    ssize_t      n;
    size_t       got = 0;
    int          fd = -1, rc;

    memset(s, 0, sizeof(*s));
    if ((size_t) snprintf(path, sizeof(path), "%s/%s", dir, file)
        >= sizeof(path))
    {
        snprintf(err, errlen, "script path too long: %s/%s", dir, file);
        return -ENAMETOOLONG;
    }

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        rc = -errno;
        snprintf(err, errlen, "open %s: %s", path, strerror(errno));
        return rc;
    }
    if (fstat(fd, &st) == -1) {
        rc = -errno;
        snprintf(err, errlen, "stat %s: %s", path, strerror(errno));
        goto failed;
    }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0
        || st.st_size > TG_SCRIPT_MAX)
    {
        rc = -EINVAL;
        snprintf(err, errlen, "%s: not a regular file of 1 byte to 1 MiB",
                 path);
        goto failed;
    }

    s->name = strdup(file);
    s->body = malloc((size_t) st.st_size + 1);
    if (s->name == NULL || s->body == NULL) {
        rc = -ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        goto failed;
    }
    while (got < (size_t) st.st_size) {
        n = read(fd, s->body + got, (size_t) st.st_size - got);
        if (n == -1 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            rc = (n == 0) ? -EIO : -errno;
            snprintf(err, errlen, "read %s: %s", path,
                     n == 0 ? "file shrank" : strerror(errno));
            goto failed;
        }
        got += (size_t) n;
    }
    close(fd);
    s->body[got] = '\0';
    s->len = got;
    tg_sha1_hex(s->body, s->len, s->sha);
    return 0;

failed:
    close(fd);
    tg_redis_script_free(s);
    return rc;
}


void
tg_redis_script_free(tg_redis_script_t *s)
{
    free(s->name);
    free(s->body);
    s->name = NULL;
    s->body = NULL;
    s->len = 0;
}


int
tg_redis_default_lua_dir(char *buf, size_t size)
{
    char     exe[PATH_MAX], probe[PATH_MAX + 32];
    char    *slash;
    ssize_t  n;

    n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) {
            *slash = '\0';
            snprintf(probe, sizeof(probe), "%s/../../lua/prefix_lookup.lua",
                     exe);
            if (access(probe, R_OK) == 0) {
                if ((size_t) snprintf(buf, size, "%s/../../lua", exe)
                    >= size)
                {
                    return -ENAMETOOLONG;
                }
                return 0;
            }
        }
    }
    if ((size_t) snprintf(buf, size, "%s", TG_LUA_DIR) >= size) {
        return -ENAMETOOLONG;
    }
    return 0;
}
