/*
 * The engine's unix socket.
 *
 * Like connections (transport/conn.c) the listener is a plain socket
 * watched by a uv_poll_t: accepted sockets must be read with recvmsg to
 * receive the worker's memfd, so they are never libuv streams.
 *
 * The socket is made world-connectable (0666): nginx workers usually run
 * as an unprivileged user.  Access control is the peer-credential check
 * (SO_PEERCRED at accept: root, our own uid, and --allow-user uids),
 * applied on the registration's fixed header, before any byte of the
 * configuration document is read.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "transport/conn.h"
#include "transport/listener.h"

static void tg__listener_cb(uv_poll_t *poll, int status, int events);


static int
tg__mkdir_parents(const char *path)
{
    char  dir[sizeof(((struct sockaddr_un *) 0)->sun_path)];
    char *p;

    snprintf(dir, sizeof(dir), "%s", path);
    p = strrchr(dir, '/');
    if (p == NULL || p == dir) {
        return 0;
    }
    *p = '\0';

    for (p = dir + 1; *p != '\0'; p++) {
        if (*p != '/') {
            continue;
        }
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
            return -errno;
        }
        *p = '/';
    }

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        return -errno;
    }
    return 0;
}


/* Removes a socket file left by an engine that died, but refuses to steal
 * the socket of one that still answers. */
static int
tg__remove_stale(const struct sockaddr_un *sa)
{
    struct stat  st;
    int          fd, rc;

    if (lstat(sa->sun_path, &st) != 0) {
        return errno == ENOENT ? 0 : -errno;
    }

    if (!S_ISSOCK(st.st_mode)) {
        tg_log_error("%s exists and is not a socket", sa->sun_path);
        return -EEXIST;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        return -errno;
    }
    rc = connect(fd, (const struct sockaddr *) sa, sizeof(*sa));
    close(fd);

    if (rc == 0) {
        tg_log_error("another engine listens on %s", sa->sun_path);
        return -EADDRINUSE;
    }

    if (unlink(sa->sun_path) != 0 && errno != ENOENT) {
        return -errno;
    }

    tg_log_info("removed stale socket %s", sa->sun_path);
    return 0;
}


int
tg_listener_start(tg_engine_t *e)
{
    struct sockaddr_un  sa;
    int                 fd, rc;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(e->socket_path) >= sizeof(sa.sun_path)) {
        tg_log_error("socket path too long: %s", e->socket_path);
        return -ENAMETOOLONG;
    }
    strcpy(sa.sun_path, e->socket_path);

    rc = tg__mkdir_parents(e->socket_path);
    if (rc != 0) {
        tg_log_error("cannot create the directory of %s: %s",
                     e->socket_path, strerror(-rc));
        return rc;
    }

    rc = tg__remove_stale(&sa);
    if (rc != 0) {
        if (rc != -EADDRINUSE && rc != -EEXIST) {
            tg_log_error("%s: %s", e->socket_path, strerror(-rc));
        }
        return rc;
    }

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        rc = -errno;
        tg_log_error("socket: %s", strerror(errno));
        return rc;
    }

    if (bind(fd, (struct sockaddr *) &sa, sizeof(sa)) != 0) {
        rc = -errno;
        tg_log_error("bind %s: %s", e->socket_path, strerror(errno));
        goto failed;
    }

    if (chmod(e->socket_path, 0666) != 0) {
        rc = -errno;
        tg_log_error("chmod %s: %s", e->socket_path, strerror(errno));
        goto failed_unlink;
    }

    if (listen(fd, 511) != 0) {
        rc = -errno;
        tg_log_error("listen %s: %s", e->socket_path, strerror(errno));
        goto failed_unlink;
    }

    rc = uv_poll_init(e->loop, &e->listen_poll, fd);
    if (rc != 0) {
        tg_log_error("uv_poll_init: %s", uv_strerror(rc));
        goto failed_unlink;
    }
    e->listen_poll.data = e;
    e->listen_fd = fd;
    e->listening = 1;

    rc = uv_poll_start(&e->listen_poll, UV_READABLE, tg__listener_cb);
    if (rc != 0) {
        tg_log_error("uv_poll_start: %s", uv_strerror(rc));
        tg_listener_stop(e);
        return rc;
    }

    tg_log_info("listening on %s", e->socket_path);
    return 0;

failed_unlink:
    unlink(e->socket_path);

failed:
    close(fd);
    return rc;
}


static void
tg__listener_close_cb(uv_handle_t *h)
{
    tg_engine_t  *e = h->data;

    close(e->listen_fd);
    e->listen_fd = -1;
}


void
tg_listener_stop(tg_engine_t *e)
{
    if (!e->listening) {
        return;
    }
    e->listening = 0;

    (void) uv_poll_stop(&e->listen_poll);
    uv_close((uv_handle_t *) &e->listen_poll, tg__listener_close_cb);
    unlink(e->socket_path);
}


static void
tg__listener_cb(uv_poll_t *poll, int status, int events)
{
    tg_engine_t  *e = poll->data;
    int           fd, i;

    (void) events;

    if (status < 0) {
        tg_log_error("listener: %s", uv_strerror(status));
        return;
    }

    /* A bounded batch per wake-up keeps one burst from starving the
     * rings. */
    for (i = 0; i < 64; i++) {
        fd = accept4(e->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                tg_log_error("accept: %s", strerror(errno));
            }
            return;
        }

        (void) tg_conn_accept(e, fd);
    }
}
