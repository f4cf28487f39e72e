/*
 * Registration handshake of a worker connection (protocol.h): read the
 * tg_register_t with its memfd and the configuration document, check the
 * peer, map and check the region, acquire the generation, reply.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "transport/conn.h"
#include "transport/affinity.h"
#include "transport/conn_int.h"

static void tg__conn_take_fds(tg_conn_t *conn, struct msghdr *msg);
static int tg__conn_check_header(tg_conn_t *conn);
static void tg__conn_register(tg_conn_t *conn);
static int tg__conn_map_shm(tg_conn_t *conn);
static int tg__conn_bells(tg_conn_t *conn);
static int tg__conn_is_eventfd(int fd);
static void tg__conn_refuse_peer(tg_conn_t *conn);
static void tg__conn_reply(tg_conn_t *conn, int status, const char *msg,
    uint32_t flags);


/* Reads the tg_register_t (with the memfd) and the configuration that
 * follows, never past them. */
void
tg_conn_read_registration(tg_conn_t *conn)
{
    struct msghdr    msg;
    struct iovec     iov;
    char             cbuf[CMSG_SPACE(sizeof(int) * 4)];
    char             chunk[65536];
    size_t           want;
    ssize_t          n;

    for ( ;; ) {
        if (conn->reg_got < sizeof(tg_register_t)) {
            iov.iov_base = (char *) &conn->reg + conn->reg_got;
            iov.iov_len = sizeof(tg_register_t) - conn->reg_got;
        } else {
            want = conn->reg.conf_len - tg_buf_size(&conn->conf);
            if (want == 0) {
                break;
            }
            iov.iov_base = chunk;
            iov.iov_len = want < sizeof(chunk) ? want : sizeof(chunk);
        }

        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf;
        msg.msg_controllen = sizeof(cbuf);

        n = recvmsg(conn->fd, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            }
            tg_conn_close(conn, strerror(errno));
            return;
        }
        if (n == 0) {
            tg_conn_close(conn, "closed during registration");
            return;
        }

        tg__conn_take_fds(conn, &msg);

        if (conn->reg_got < sizeof(tg_register_t)) {
            conn->reg_got += (size_t) n;
            if (conn->reg_got < sizeof(tg_register_t)) {
                continue;
            }

            if (tg__conn_check_header(conn) != 0) {
                return;
            }
        } else if (tg_buf_append(&conn->conf, chunk, (size_t) n) != 0) {
            tg__conn_reply(conn, -ENOMEM, "out of memory", 0);
            return;
        }
    }

    tg__conn_register(conn);
}


/* Keeps the first three descriptors passed (the memfd, then the eventfd
 * doorbells' two when there are) and closes any other. */
static void
tg__conn_take_fds(tg_conn_t *conn, struct msghdr *msg)
{
    struct cmsghdr  *cm;
    size_t           i, nfds;
    int             *fds;

    for (cm = CMSG_FIRSTHDR(msg); cm != NULL;
         cm = CMSG_NXTHDR(msg, cm))
    {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        fds = (int *) CMSG_DATA(cm);
        nfds = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (i = 0; i < nfds; i++) {
            if (conn->memfd < 0) {
                conn->memfd = fds[i];
            } else if (conn->bell_in < 0) {
                conn->bell_in = fds[i];
            } else if (conn->bell_out < 0) {
                conn->bell_out = fds[i];
            } else {
                close(fds[i]);
            }
        }
    }
}


/* The tg_register_t's checks, before any of the document is read: 0, or
 * -1 with the refusal sent. */
static int
tg__conn_check_header(tg_conn_t *conn)
{
    if (conn->reg.magic != TG_REG_MAGIC) {
        tg__conn_reply(conn, -EPROTO, "bad registration magic", 0);
        return -1;
    }
    if (conn->reg.version != TG_PROTO_VERSION) {
        char  m[128];

        snprintf(m, sizeof(m), "protocol version %u, the engine "
                 "speaks %u", conn->reg.version, TG_PROTO_VERSION);
        tg__conn_reply(conn, -EPROTO, m, 0);
        return -1;
    }
    /* Before any byte of the document is buffered: a refused
     * peer costs the engine nothing (issue 14, bug 2). */
    if (!conn->peer_allowed) {
        tg__conn_refuse_peer(conn);
        return -1;
    }
    if (conn->reg.conf_len > TG_CONN_MAX_CONF) {
        tg__conn_reply(conn, -EMSGSIZE, "configuration document "
                       "too large", 0);
        return -1;
    }
    return 0;
}


/* The peer's uid (SO_PEERCRED at accept) is not root, ours or an
 * --allow-user one. */
static void
tg__conn_refuse_peer(tg_conn_t *conn)
{
    char  msg[160];

    tg_log_warn("refused a worker with uid %u (pid %d); allow it with "
                "--allow-user", (unsigned) conn->peer_uid,
                (int) conn->peer_pid);
    snprintf(msg, sizeof(msg), "uid %u is not allowed to use this engine "
             "(thinkgated --allow-user)", (unsigned) conn->peer_uid);
    tg__conn_reply(conn, -EACCES, msg, 0);
}


static void
tg__conn_register(tg_conn_t *conn)
{
    tg_engine_t  *e = conn->engine;
    char          msg[240];
    int           rc;

    if (!conn->peer_allowed) {
        tg__conn_refuse_peer(conn);
        return;
    }

    if (tg__conn_map_shm(conn) != 0 || tg__conn_bells(conn) != 0) {
        return;
    }

    rc = tg_config_acquire(&e->config, tg_buf_ptr(&conn->conf),
                           tg_buf_size(&conn->conf), &conn->gen, msg,
                           sizeof(msg));
    if (rc != 0) {
        if (rc == -ENOMEM) {
            snprintf(msg, sizeof(msg), "out of memory");
        }
        tg_log_error("worker %d: configuration refused: %s",
                     (int) conn->peer_pid, msg);
        tg__conn_reply(conn, rc, msg, 0);
        return;
    }
    tg_buf_free(&conn->conf);

    /* What the generation needs beside the engine (its Redis link, its
     * embedder): the layer above attaches it or refuses. */
    if (e->conn_hooks != NULL && e->conn_hooks->on_register != NULL) {
        rc = e->conn_hooks->on_register(conn, msg, sizeof(msg));
        if (rc != 0) {
            tg_log_error("worker %d: configuration refused: %s",
                         (int) conn->peer_pid, msg);
            tg__conn_reply(conn, rc, msg, 0);
            return;
        }
    }

    conn->in = tg_shm_ring(conn->shm, &conn->shm->to_engine);
    conn->out = tg_shm_ring(conn->shm, &conn->shm->to_worker);
    conn->max_payload = tg_ring_max_payload(&conn->out);

    conn->state = TG_CONN_ACTIVE;
    e->nregistrations++;
    (void) uv_timer_stop(&conn->timer);

    tg__conn_reply(conn, 0, NULL,
                   conn->bell_in >= 0 ? TG_REG_F_EVENTFD : 0);
    if (conn->state != TG_CONN_ACTIVE) {
        return;
    }

    tg_log_info("worker %d registered (registration %llu, rings %u bytes, "
                "generation %u)", (int) conn->peer_pid,
                (unsigned long long) conn->serial, conn->reg.ring_size,
                conn->gen->id);

    if (e->conn_hooks != NULL && e->conn_hooks->on_active != NULL) {
        e->conn_hooks->on_active(conn);
    }
    tg_affinity_follow(e);

    /* Frames may already wait. */
    tg_conn_service(conn);
}


/* Sends the reply; a refusal closes the connection.  Everything the
 * worker sent has been read by now, so closing does not reset the reply
 * away. */
static void
tg__conn_reply(tg_conn_t *conn, int status, const char *msg, uint32_t flags)
{
    tg_register_reply_t  reply;
    ssize_t              n;

    memset(&reply, 0, sizeof(reply));
    reply.magic = TG_REG_MAGIC;
    reply.version = TG_PROTO_VERSION;
    reply.status = status;
    reply.generation = conn->gen ? conn->gen->id : 0;
    reply.flags = flags;
    if (msg != NULL) {
        snprintf(reply.message, sizeof(reply.message), "%s", msg);
    }

    do {
        n = send(conn->fd, &reply, sizeof(reply), MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);

    if (n != (ssize_t) sizeof(reply)) {
        tg_conn_close(conn, "cannot send the registration reply");
        return;
    }

    if (status != 0) {
        /* Unread input would make close() send a reset that can destroy
         * the reply before the peer reads it: discard what is there. */
        char  sink[4096];
        int   i;

        for (i = 0; i < 64; i++) {
            if (recv(conn->fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0) {
                break;
            }
        }

        tg_log_warn("connection %llu from pid %d refused: %s",
                    (unsigned long long) conn->serial, (int) conn->peer_pid,
                    msg ? msg : "");
        tg_conn_close(conn, "registration refused");
    }
}


/*
 * Checks the memfd the worker passed and maps it: sizes, seals, the
 * region's own check.  0, or -1 with the refusal sent.
 */
static int
tg__conn_map_shm(tg_conn_t *conn)
{
    struct stat   st;
    void         *p;
    char          msg[240];
    int           seals;

    if (conn->memfd < 0) {
        tg__conn_reply(conn, -EPROTO, "no shared memory descriptor was "
                       "passed (SCM_RIGHTS)", 0);
        return -1;
    }

    if (!tg_ring_size_valid(conn->reg.ring_size)
        || conn->reg.shm_size < tg_shm_size(conn->reg.ring_size)
        || conn->reg.shm_size > 2 * (uint64_t) TG_RING_MAX_SIZE + 65536)
    {
        tg__conn_reply(conn, -EPROTO, "bad ring or region size", 0);
        return -1;
    }

    if (fstat(conn->memfd, &st) != 0) {
        snprintf(msg, sizeof(msg), "fstat on the shared memory: %s",
                 strerror(errno));
        tg__conn_reply(conn, -errno, msg, 0);
        return -1;
    }
    if ((uint64_t) st.st_size < conn->reg.shm_size) {
        tg__conn_reply(conn, -EPROTO, "shared memory smaller than "
                       "announced", 0);
        return -1;
    }

    /* The worker seals the region against shrinking and growing
     * (protocol.h); a region that could shrink under our mapping would
     * make the engine fault.  Sealing it here covers a worker that only
     * allowed sealing. */
    (void) fcntl(conn->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
    seals = fcntl(conn->memfd, F_GET_SEALS);
    if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
        tg__conn_reply(conn, -EPROTO, "the shared memory is not sealed "
                       "against shrinking (memfd_create with "
                       "MFD_ALLOW_SEALING, then F_ADD_SEALS)", 0);
        return -1;
    }

    p = mmap(NULL, conn->reg.shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
             conn->memfd, 0);
    if (p == MAP_FAILED) {
        snprintf(msg, sizeof(msg), "mmap of the shared memory: %s",
                 strerror(errno));
        tg__conn_reply(conn, -errno, msg, 0);
        return -1;
    }
    conn->shm = p;
    conn->shm_size = conn->reg.shm_size;

    if (tg_shm_check(conn->shm, conn->shm_size) != 0
        || conn->shm->ring_size != conn->reg.ring_size)
    {
        tg__conn_reply(conn, -EPROTO, "the shared region fails its check "
                       "(magic, version or layout)", 0);
        return -1;
    }
    return 0;
}


/*
 * The doorbells' eventfds, when the worker asked for them
 * (TG_REG_F_EVENTFD): both there and eventfds, made non-blocking and
 * watched.  Without the flag any passed beside the memfd are closed and
 * the socket rings.  0, or -1 with the refusal sent.
 */
static int
tg__conn_bells(tg_conn_t *conn)
{
    char  msg[160];
    int   rc, i, *fd[2] = { &conn->bell_in, &conn->bell_out };

    if (!(conn->reg.flags & TG_REG_F_EVENTFD)) {
        for (i = 0; i < 2; i++) {
            if (*fd[i] >= 0) {
                close(*fd[i]);
                *fd[i] = -1;
            }
        }
        return 0;
    }

    for (i = 0; i < 2; i++) {
        if (*fd[i] < 0 || !tg__conn_is_eventfd(*fd[i])) {
            tg__conn_reply(conn, -EPROTO, "eventfd doorbells asked for "
                           "(TG_REG_F_EVENTFD), but the memfd is not "
                           "followed by two eventfds", 0);
            return -1;
        }
        (void) fcntl(*fd[i], F_SETFL, fcntl(*fd[i], F_GETFL) | O_NONBLOCK);
    }

    rc = tg_conn_start_bells(conn);
    if (rc != 0) {
        snprintf(msg, sizeof(msg), "cannot watch the doorbell eventfd: %s",
                 uv_strerror(rc));
        tg__conn_reply(conn, -EIO, msg, 0);
        return -1;
    }
    return 0;
}


/* Whether fd is an eventfd, as /proc names it. */
static int
tg__conn_is_eventfd(int fd)
{
    char     path[64], link[64];
    ssize_t  n;

    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    n = readlink(path, link, sizeof(link) - 1);
    if (n < 0) {
        return 0;
    }
    link[n] = '\0';
    return strcmp(link, "anon_inode:[eventfd]") == 0;
}
