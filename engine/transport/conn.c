/*
 * One registration: lifetime, doorbells, ring service.  The handshake is
 * in transport/register.c.
 *
 * The socket is serviced with a uv_poll_t and plain recvmsg/read/write
 * rather than a uv_pipe_t: the registration carries a memfd as
 * SCM_RIGHTS, which libuv's stream reads would not hand over (with ipc
 * off the kernel drops it, with ipc on libuv expects its own framing and
 * only stream handles), and doorbells are single bytes that need no
 * buffering.
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

static void tg__conn_poll_cb(uv_poll_t *poll, int status, int events);
static void tg__conn_bell_cb(uv_poll_t *poll, int status, int events);
static void tg__conn_timer_cb(uv_timer_t *timer);
static void tg__conn_close_cb(uv_handle_t *h);
static void tg__conn_prepare_cb(uv_prepare_t *prepare);
static void tg__conn_check_cb(uv_check_t *check);
static void tg__conn_bell(tg_conn_t *conn);
static int tg__conn_frame(tg_conn_t *conn, const tg_frame_view_t *f);
static tg_stream_t *tg__conn_find(tg_conn_t *conn, uint64_t id);
static int tg__conn_peer(tg_conn_t *conn);
static int tg__conn_start_handles(tg_conn_t *conn);


/* The peer's pid and uid (SO_PEERCRED), and whether the uid may use the
 * engine: root, ours or an --allow-user one.  0 or a negative errno. */
static int
tg__conn_peer(tg_conn_t *conn)
{
    tg_engine_t   *e = conn->engine;
    struct ucred   cred;
    socklen_t      len = sizeof(cred);
    size_t         i;
    int            rc;

    if (getsockopt(conn->fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        rc = -errno;
        tg_log_error("connection %llu: SO_PEERCRED: %s",
                     (unsigned long long) conn->serial, strerror(errno));
        return rc;
    }

    conn->peer_pid = cred.pid;
    conn->peer_uid = cred.uid;
    conn->peer_allowed = cred.uid == 0 || cred.uid == geteuid();
    for (i = 0; i < e->nallowed_uids && !conn->peer_allowed; i++) {
        conn->peer_allowed = cred.uid == e->allowed_uids[i];
    }
    return 0;
}


/* The registration timer, the bell's prepare and check handles, then the
 * watch on the socket.  0 or a libuv error; conn->handles counts those
 * initialised. */
static int
tg__conn_start_handles(tg_conn_t *conn)
{
    tg_engine_t  *e = conn->engine;
    int           rc;

    /* The handles are counted in this order; tg_conn_close relies on it. */
    rc = uv_timer_init(e->loop, &conn->timer);
    if (rc == 0) {
        conn->timer.data = conn;
        conn->handles++;
        rc = uv_prepare_init(e->loop, &conn->bell_prepare);
    }
    if (rc == 0) {
        conn->bell_prepare.data = conn;
        conn->handles++;
        rc = uv_check_init(e->loop, &conn->bell_check);
    }
    if (rc == 0) {
        conn->bell_check.data = conn;
        conn->handles++;
        rc = uv_timer_start(&conn->timer, tg__conn_timer_cb,
                            TG_CONN_REG_TIMEOUT, 0);
    }
    if (rc == 0) {
        rc = uv_poll_start(&conn->poll, UV_READABLE, tg__conn_poll_cb);
    }
    return rc;
}


int
tg_conn_accept(tg_engine_t *e, int fd)
{
    tg_conn_t  *conn;
    int         rc;

    conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        close(fd);
        return -ENOMEM;
    }

    conn->engine = e;
    conn->serial = ++e->next_conn_id;
    conn->fd = fd;
    conn->memfd = -1;
    conn->bell_in = -1;
    conn->bell_out = -1;
    tg_queue_init(&conn->blocked);

    rc = tg__conn_peer(conn);
    if (rc != 0) {
        free(conn);
        close(fd);
        return rc;
    }

    rc = uv_poll_init(e->loop, &conn->poll, fd);
    if (rc != 0) {
        tg_log_error("connection %llu: uv_poll_init: %s",
                     (unsigned long long) conn->serial, uv_strerror(rc));
        free(conn);
        close(fd);
        return rc;
    }
    conn->poll.data = conn;
    conn->handles++;

    rc = tg__conn_start_handles(conn);

    tg_queue_insert_head(&e->conns, &conn->link);

    if (rc != 0) {
        tg_log_error("connection %llu: %s", (unsigned long long) conn->serial,
                     uv_strerror(rc));
        tg_conn_close(conn, "cannot watch the socket");
        return rc;
    }

    tg_log_debug("connection %llu from pid %d uid %u",
                 (unsigned long long) conn->serial, (int) conn->peer_pid,
                 (unsigned) conn->peer_uid);
    return 0;
}


void
tg_conn_close(tg_conn_t *conn, const char *why)
{
    tg_engine_t            *e = conn->engine;
    const tg_conn_hooks_t  *h = e->conn_hooks;
    tg_stream_t            *s;
    size_t                  i;
    int                     was_active;

    if (conn->state == TG_CONN_CLOSING) {
        return;
    }

    was_active = conn->state == TG_CONN_ACTIVE;
    if (was_active) {
        e->nregistrations--;
        tg_log_info("worker %d (registration %llu) gone: %s, %zu requests "
                    "cancelled", (int) conn->peer_pid,
                    (unsigned long long) conn->serial, why, conn->nrequests);
    } else {
        tg_log_debug("connection %llu closed: %s",
                     (unsigned long long) conn->serial, why);
    }

    conn->state = TG_CONN_CLOSING;
    if (was_active) {
        tg_affinity_follow(e);
    }

    for (i = 0; i < TG_CONN_BUCKETS; i++) {
        while ((s = conn->requests[i]) != NULL) {
            if (h != NULL && h->on_close != NULL) {
                h->on_close(s);      /* unlinks s from the table */
            } else {
                tg_conn_forget(conn, s);
            }
        }
    }

    if (uv_is_active((uv_handle_t *) &conn->poll)) {
        (void) uv_poll_stop(&conn->poll);
    }
    if (conn->bell_poll_on) {
        uv_close((uv_handle_t *) &conn->bell_poll, tg__conn_close_cb);
    }
    /* conn->handles counts the handles initialised, in accept's order;
     * no close callback has run yet. */
    if (conn->handles > 3) {
        uv_close((uv_handle_t *) &conn->bell_check, tg__conn_close_cb);
    }
    if (conn->handles > 2) {
        uv_close((uv_handle_t *) &conn->bell_prepare, tg__conn_close_cb);
    }
    if (conn->handles > 1) {
        uv_close((uv_handle_t *) &conn->timer, tg__conn_close_cb);
    }
    if (conn->handles > 0) {
        uv_close((uv_handle_t *) &conn->poll, tg__conn_close_cb);
    }
}


static void
tg__conn_close_cb(uv_handle_t *h)
{
    tg_conn_t  *conn = h->data;

    if (--conn->handles > 0) {
        return;
    }

    tg_queue_remove(&conn->link);

    if (conn->shm != NULL) {
        munmap(conn->shm, conn->shm_size);
    }
    if (conn->memfd >= 0) {
        close(conn->memfd);
    }
    if (conn->bell_in >= 0) {
        close(conn->bell_in);
    }
    if (conn->bell_out >= 0) {
        close(conn->bell_out);
    }
    if (conn->gen != NULL) {
        tg_generation_release(conn->gen);
    }
    tg_buf_free(&conn->conf);
    close(conn->fd);
    free(conn);
}


static void
tg__conn_timer_cb(uv_timer_t *timer)
{
    tg_conn_t  *conn = timer->data;

    if (conn->state == TG_CONN_REGISTERING) {
        tg_log_warn("connection %llu from pid %d: registration not "
                    "completed within %d ms", (unsigned long long)
                    conn->serial, (int) conn->peer_pid, TG_CONN_REG_TIMEOUT);
        tg_conn_close(conn, "registration timeout");
    }
}


static void
tg__conn_poll_cb(uv_poll_t *poll, int status, int events)
{
    tg_conn_t  *conn = poll->data;
    char        buf[256];
    ssize_t     n;

    (void) events;

    if (status < 0) {
        tg_conn_close(conn, uv_strerror(status));
        return;
    }

    if (conn->state == TG_CONN_REGISTERING) {
        tg_conn_read_registration(conn);
        return;
    }

    if (conn->state != TG_CONN_ACTIVE) {
        return;
    }

    /* Every byte is a doorbell; how many does not matter.  A short read
     * took all there was: the poll is level-triggered, so a byte that
     * comes later wakes it again, and reading on to EAGAIN would cost a
     * system call per wake-up for nothing. */
    for ( ;; ) {
        n = read(conn->fd, buf, sizeof(buf));
        if (n > 0) {
            if ((size_t) n < sizeof(buf)) {
                break;
            }
            continue;
        }
        if (n == 0) {
            tg_conn_close(conn, "the worker closed the connection");
            return;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        }
        tg_conn_close(conn, strerror(errno));
        return;
    }

    tg_conn_service(conn);
}


int
tg_conn_start_bells(tg_conn_t *conn)
{
    int  rc;

    rc = uv_poll_init(conn->engine->loop, &conn->bell_poll, conn->bell_in);
    if (rc != 0) {
        return rc;
    }
    conn->bell_poll.data = conn;
    conn->bell_poll_on = 1;
    conn->handles++;
    return uv_poll_start(&conn->bell_poll, UV_READABLE, tg__conn_bell_cb);
}


/* The worker rang its eventfd.  The poll is level-triggered: one read
 * takes the count, however many times it rang, and EAGAIN (another pass
 * took it) is as good. */
static void
tg__conn_bell_cb(uv_poll_t *poll, int status, int events)
{
    tg_conn_t  *conn = poll->data;
    uint64_t    v;
    ssize_t     n;

    (void) events;

    if (status < 0) {
        tg_conn_close(conn, uv_strerror(status));
        return;
    }
    if (conn->state != TG_CONN_ACTIVE) {
        return;
    }
    do {
        n = read(conn->bell_in, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);

    tg_conn_service(conn);
}


void
tg_conn_doorbell(tg_conn_t *conn)
{
    static const uint64_t  one = 1;
    char                   b = TG_DOORBELL;
    ssize_t                n;

    if (conn->bell_out >= 0) {
        /* Fails only when the count would pass 2^64 - 2: the worker has
         * yet to look, and will. */
        do {
            n = write(conn->bell_out, &one, sizeof(one));
        } while (n < 0 && errno == EINTR);
        return;
    }

    do {
        n = send(conn->fd, &b, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);

    /* A full socket buffer already holds doorbells the worker has yet to
     * read; a broken one shows up as EOF on the next read. */
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
        tg_log_debug("worker %d: doorbell: %s", (int) conn->peer_pid,
                     strerror(errno));
    }
}


/*
 * A doorbell is owed once any write of this pass found the ring empty.
 * The check handle rings right after the I/O callbacks of the pass; the
 * prepare handle covers writes from timer, idle and close callbacks,
 * which run after the check phase, before the loop blocks in poll.
 */
void
tg_conn_doorbell_later(tg_conn_t *conn)
{
    if (conn->bell_pending) {
        return;
    }
    conn->bell_pending = 1;

    /* Both only fail for a NULL callback; ring now if they ever do. */
    if (uv_prepare_start(&conn->bell_prepare, tg__conn_prepare_cb) != 0
        || uv_check_start(&conn->bell_check, tg__conn_check_cb) != 0)
    {
        tg__conn_bell(conn);
    }
}


static void
tg__conn_prepare_cb(uv_prepare_t *prepare)
{
    tg__conn_bell(prepare->data);
}


static void
tg__conn_check_cb(uv_check_t *check)
{
    tg__conn_bell(check->data);
}


static void
tg__conn_bell(tg_conn_t *conn)
{
    (void) uv_prepare_stop(&conn->bell_prepare);
    (void) uv_check_stop(&conn->bell_check);

    if (conn->bell_pending) {
        conn->bell_pending = 0;
        if (conn->state == TG_CONN_ACTIVE) {
            tg_conn_doorbell(conn);
        }
    }
}


int
tg_conn_write(tg_conn_t *conn, uint16_t type, uint16_t flags, uint64_t id,
    const void *p1, size_t l1, const void *p2, size_t l2)
{
    int  rc;

    if (conn->state != TG_CONN_ACTIVE) {
        return -EPIPE;
    }

    rc = tg_ring_write(&conn->out, type, flags, id, p1, l1, p2, l2);
    if (rc == 1) {
        tg_conn_doorbell_later(conn);
        rc = 0;
    }
    return rc;
}


void
tg_conn_adopt(tg_conn_t *conn, tg_stream_t *s)
{
    s->hash_next = conn->requests[s->id % TG_CONN_BUCKETS];
    conn->requests[s->id % TG_CONN_BUCKETS] = s;
    conn->nrequests++;
}


void
tg_conn_block(tg_conn_t *conn, tg_stream_t *s)
{
    if (s->blocked) {
        return;
    }
    s->blocked = 1;
    tg_queue_insert_tail(&conn->blocked, &s->blocked_link);
}


void
tg_conn_forget(tg_conn_t *conn, tg_stream_t *s)
{
    tg_stream_t  **pp;

    for (pp = &conn->requests[s->id % TG_CONN_BUCKETS]; *pp != NULL;
         pp = &(*pp)->hash_next)
    {
        if (*pp == s) {
            *pp = s->hash_next;
            conn->nrequests--;
            break;
        }
    }

    if (s->blocked) {
        tg_queue_remove(&s->blocked_link);
        s->blocked = 0;
    }
}


static tg_stream_t *
tg__conn_find(tg_conn_t *conn, uint64_t id)
{
    tg_stream_t  *s;

    for (s = conn->requests[id % TG_CONN_BUCKETS]; s != NULL;
         s = s->hash_next)
    {
        if (s->id == id) {
            return s;
        }
    }
    return NULL;
}


/* Consumes every frame the worker wrote, then retries requests that were
 * waiting for room in the worker's ring. */
void
tg_conn_service(tg_conn_t *conn)
{
    tg_frame_view_t        view;
    const tg_frame_view_t  *f;
    const tg_conn_hooks_t  *h = conn->engine->conn_hooks;
    tg_stream_t            *s;
    tg_queue_t              list, *q;
    int                     err;

    while (conn->state == TG_CONN_ACTIVE) {
        f = tg_ring_peek(&conn->in, &view, &err);
        if (f == NULL) {
            if (err != 0) {
                tg_log_error("worker %d: corrupt frame in its ring",
                             (int) conn->peer_pid);
                tg_conn_close(conn, "protocol error");
                return;
            }
            break;
        }

        if (tg__conn_frame(conn, f) != 0) {
            tg_conn_close(conn, "protocol error");
            return;
        }

        if (tg_ring_consume(&conn->in, f)) {
            tg_conn_doorbell_later(conn);
        }
    }

    /* Each blocked request gets one try; those still without room queue
     * again in order.  The snapshot lives on the stack: whatever is left
     * of it goes back to conn->blocked before returning, so that
     * tg_conn_forget can always unlink a blocked stream. */
    tg_queue_init(&list);
    tg_queue_add(&list, &conn->blocked);

    while (!tg_queue_empty(&list) && conn->state == TG_CONN_ACTIVE) {
        q = tg_queue_head(&list);
        tg_queue_remove(q);
        s = tg_queue_data(q, tg_stream_t, blocked_link);
        s->blocked = 0;
        if (h != NULL && h->on_room != NULL) {
            h->on_room(s);
        }
        if (s->blocked) {
            /* No room again: keep the rest behind it. */
            break;
        }
    }
    tg_queue_add(&conn->blocked, &list);
}


/* A frame for a request goes up to core (on_frame) with the stream of
 * its id, if there is one. */
static int
tg__conn_frame(tg_conn_t *conn, const tg_frame_view_t *f)
{
    const tg_conn_hooks_t  *h = conn->engine->conn_hooks;

    if (h == NULL || h->on_frame == NULL) {
        tg_log_warn("worker %d: frame type %u without a handler ignored",
                    (int) conn->peer_pid, (unsigned) f->type);
        return 0;
    }
    return h->on_frame(conn, tg__conn_find(conn, f->id), f);
}
