
/*
 * thinkgate nginx module: the worker's side of the engine transport.
 *
 * One connection per worker to the engine's unix socket, one shared region
 * (a fresh memfd per registration) holding the two rings of ring.h, and
 * the registration of protocol.h.  Requests in flight are kept in an
 * rbtree keyed by their id; frames from the engine are dispatched by id.
 * Frames that find the to_engine ring full wait in a FIFO queue until the
 * engine rings because it freed room.
 *
 * Nothing here blocks: the socket is non-blocking and driven by nginx
 * events, reconnection is an nginx timer with backoff.
 */


#include "ngx_http_thinkgate.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>


#define NGX_HTTP_THINKGATE_BACKOFF_MIN    100
#define NGX_HTTP_THINKGATE_BACKOFF_MAX    2000
#define NGX_HTTP_THINKGATE_REG_TIMEOUT    5000


static void ngx_http_thinkgate_engine_connect(void);
static int ngx_http_thinkgate_engine_socket(void);
static void ngx_http_thinkgate_engine_register(void);
static ngx_int_t ngx_http_thinkgate_engine_map(void);
static void ngx_http_thinkgate_engine_attach(struct msghdr *msg,
    char *space);
static ngx_int_t ngx_http_thinkgate_engine_send_reg(void);
static ngx_int_t ngx_http_thinkgate_engine_read_reply(void);
static void ngx_http_thinkgate_engine_read_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_thinkgate_engine_bells(void);
static void ngx_http_thinkgate_engine_bell_in_handler(ngx_event_t *ev);
static void ngx_http_thinkgate_engine_close_bells(void);
static ngx_int_t ngx_http_thinkgate_engine_registered(ngx_event_t *ev);
static ngx_uint_t ngx_http_thinkgate_engine_drained(ngx_event_t *ev,
    ssize_t n, size_t size);
static void ngx_http_thinkgate_engine_write_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_thinkgate_engine_reg_sent(void);
static void ngx_http_thinkgate_engine_reconnect_handler(ngx_event_t *ev);
static void ngx_http_thinkgate_engine_keeper_handler(ngx_event_t *ev);
static void ngx_http_thinkgate_engine_close(void);
static void ngx_http_thinkgate_engine_disconnect(const char *why);


ngx_http_thinkgate_engine_t  ngx_http_thinkgate_engine;


ngx_int_t
ngx_http_thinkgate_engine_init(ngx_cycle_t *cycle,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    ngx_memzero(e, sizeof(ngx_http_thinkgate_engine_t));

    e->mcf = mcf;
    e->log = cycle->log;
    e->memfd = -1;
    e->bell_out = -1;
    e->bell_in = -1;
    e->backoff = NGX_HTTP_THINKGATE_BACKOFF_MIN;
    e->next_id = 1;

    ngx_rbtree_init(&e->tree, &e->sentinel, ngx_rbtree_insert_value);
    ngx_queue_init(&e->out);
    ngx_queue_init(&e->free_out);
    ngx_queue_init(&e->pass);

    e->bell_event.handler = ngx_http_thinkgate_engine_bell_handler;
    e->bell_event.log = cycle->log;
    e->bell_event.data = e;

    e->reconnect.handler = ngx_http_thinkgate_engine_reconnect_handler;
    e->reconnect.log = cycle->log;
    e->reconnect.data = e;
    e->reconnect.cancelable = 1;

    e->keeper.handler = ngx_http_thinkgate_engine_keeper_handler;
    e->keeper.log = cycle->log;
    e->keeper.data = e;

    ngx_http_thinkgate_engine_connect();

    return NGX_OK;
}


void
ngx_http_thinkgate_engine_exit(ngx_cycle_t *cycle)
{
    ngx_queue_t                  *q;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->mcf == NULL) {
        return;
    }

    ngx_http_thinkgate_engine_close();

    while (!ngx_queue_empty(&e->free_out)) {
        q = ngx_queue_head(&e->free_out);
        ngx_queue_remove(q);
        ngx_free(q);
    }

    e->mcf = NULL;
}


ngx_uint_t
ngx_http_thinkgate_engine_connected(void)
{
    return ngx_http_thinkgate_engine.state == NGX_HTTP_THINKGATE_CONNECTED;
}


ngx_uint_t
ngx_http_thinkgate_engine_inflight(void)
{
    return ngx_http_thinkgate_engine.inflight;
}


uint64_t
ngx_http_thinkgate_engine_next_id(void)
{
    return ngx_http_thinkgate_engine.next_id++;
}


static void
ngx_http_thinkgate_engine_connect(void)
{
    int                           fd;
    ngx_connection_t             *c;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (ngx_http_thinkgate_engine_map() != NGX_OK) {
        goto failed;
    }

    fd = ngx_http_thinkgate_engine_socket();
    if (fd == -1) {
        goto failed;
    }

    c = ngx_get_connection(fd, e->log);
    if (c == NULL) {
        close(fd);
        goto failed;
    }

    e->c = c;

    c->data = e;
    c->read->handler = ngx_http_thinkgate_engine_read_handler;
    c->write->handler = ngx_http_thinkgate_engine_write_handler;
    c->read->log = e->log;
    c->write->log = e->log;

    if (ngx_add_conn) {
        if (ngx_add_conn(c) == NGX_ERROR) {
            goto failed;
        }

    } else if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
        goto failed;
    }

    ngx_http_thinkgate_engine_register();

    return;

failed:

    ngx_http_thinkgate_engine_close();
    e->failures++;

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&e->reconnect, e->backoff);
        e->backoff = ngx_min(e->backoff * 2, NGX_HTTP_THINKGATE_BACKOFF_MAX);
    }
}


/* a non-blocking socket connected to the engine, or -1 (logged) */

static int
ngx_http_thinkgate_engine_socket(void)
{
    int                           fd;
    size_t                        len;
    ngx_err_t                     err;
    ngx_uint_t                    level;
    struct sockaddr_un            sun;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd == -1) {
        ngx_log_error(NGX_LOG_ALERT, e->log, ngx_socket_errno,
                      "thinkgate: socket() failed");
        return -1;
    }

    ngx_memzero(&sun, sizeof(struct sockaddr_un));
    sun.sun_family = AF_UNIX;
    len = ngx_min(e->mcf->engine.len, sizeof(sun.sun_path) - 1);
    ngx_memcpy(sun.sun_path, e->mcf->engine.data, len);

    /* a unix socket connects at once or fails; EAGAIN means backlog full */

    if (connect(fd, (struct sockaddr *) &sun, sizeof(struct sockaddr_un))
        == -1)
    {
        err = ngx_socket_errno;

        level = e->failures ? NGX_LOG_INFO : NGX_LOG_WARN;
        ngx_log_error(level, e->log, err,
                      "thinkgate: connect() to engine \"unix:%V\" failed",
                      &e->mcf->engine);
        close(fd);
        return -1;
    }

    return fd;
}


/* the registration header, its timeout and the first send on the new
 * connection */

static void
ngx_http_thinkgate_engine_register(void)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    e->state = NGX_HTTP_THINKGATE_REGISTERING;

    e->reg.magic = TG_REG_MAGIC;
    e->reg.version = TG_PROTO_VERSION;
    e->reg.pid = (uint32_t) ngx_pid;
    e->reg.ring_size = (uint32_t) e->mcf->ring_size;
    e->reg.shm_size = e->shm_size;
    e->reg.conf_len = (uint32_t) e->mcf->doc.len;
    e->reg.flags = (e->bell_out != -1) ? TG_REG_F_EVENTFD : 0;
    e->reg_sent = 0;
    e->reply_got = 0;

    ngx_add_timer(e->c->read, NGX_HTTP_THINKGATE_REG_TIMEOUT);
    e->c->read->cancelable = 1;

    if (ngx_http_thinkgate_engine_send_reg() == NGX_ERROR) {
        ngx_http_thinkgate_engine_disconnect("registration send failed");
    }
}


/* A fresh shared region for each registration. */

static ngx_int_t
ngx_http_thinkgate_engine_map(void)
{
    void                         *p;
    uint32_t                      ring;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    ring = (uint32_t) e->mcf->ring_size;
    e->shm_size = tg_shm_size(ring);

    e->memfd = memfd_create("thinkgate", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (e->memfd == -1) {
        ngx_log_error(NGX_LOG_ALERT, e->log, ngx_errno,
                      "thinkgate: memfd_create() failed");
        return NGX_ERROR;
    }

    if (ftruncate(e->memfd, e->shm_size) == -1) {
        ngx_log_error(NGX_LOG_ALERT, e->log, ngx_errno,
                      "thinkgate: ftruncate(%uz) failed", e->shm_size);
        return NGX_ERROR;
    }

    /* the size is final: the engine may rely on it (and seal it too) */

    if (fcntl(e->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) == -1) {
        ngx_log_error(NGX_LOG_ALERT, e->log, ngx_errno,
                      "thinkgate: sealing the shared region failed");
        return NGX_ERROR;
    }

    p = mmap(NULL, e->shm_size, PROT_READ | PROT_WRITE, MAP_SHARED,
             e->memfd, 0);
    if (p == MAP_FAILED) {
        ngx_log_error(NGX_LOG_ALERT, e->log, ngx_errno,
                      "thinkgate: mmap(%uz) failed", e->shm_size);
        return NGX_ERROR;
    }

    e->shm = p;
    tg_shm_init(e->shm, ring);

    /* the doorbells' eventfds; without them the socket rings */

    e->bell_out = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    e->bell_in = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);

    if (e->bell_out == -1 || e->bell_in == -1) {
        ngx_log_error(NGX_LOG_WARN, e->log, ngx_errno,
                      "thinkgate: eventfd() failed, doorbells go through "
                      "the socket");
        ngx_http_thinkgate_engine_close_bells();
    }
    e->to_engine = tg_shm_ring(e->shm, &e->shm->to_engine);
    e->to_worker = tg_shm_ring(e->shm, &e->shm->to_worker);

    return NGX_OK;
}


/* The memfd, and the doorbells' eventfds when there are, as SCM_RIGHTS
 * in space (room for three). */

static void
ngx_http_thinkgate_engine_attach(struct msghdr *msg, char *space)
{
    int                           fds[3], nfds;
    struct cmsghdr               *cmsg;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    fds[0] = e->memfd;
    fds[1] = e->bell_out;
    fds[2] = e->bell_in;
    nfds = (e->reg.flags & TG_REG_F_EVENTFD) ? 3 : 1;

    msg->msg_control = space;
    msg->msg_controllen = CMSG_SPACE(sizeof(int) * nfds);

    cmsg = CMSG_FIRSTHDR(msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
    ngx_memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * nfds);
}


/* tg_register_t with the memfd (and the doorbells' eventfds) attached,
 * then the document. */

static ngx_int_t
ngx_http_thinkgate_engine_send_reg(void)
{
    ssize_t                       n;
    size_t                        off;
    ngx_err_t                     err;
    struct iovec                  iov[2];
    struct msghdr                 msg;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;
    union {
        struct cmsghdr            cm;
        char                      space[CMSG_SPACE(sizeof(int) * 3)];
    } cmsgbuf;

    while (e->reg_sent < sizeof(tg_register_t) + e->mcf->doc.len) {

        ngx_memzero(&msg, sizeof(struct msghdr));
        msg.msg_iov = iov;

        if (e->reg_sent < sizeof(tg_register_t)) {
            iov[0].iov_base = (u_char *) &e->reg + e->reg_sent;
            iov[0].iov_len = sizeof(tg_register_t) - e->reg_sent;
            iov[1].iov_base = e->mcf->doc.data;
            iov[1].iov_len = e->mcf->doc.len;
            msg.msg_iovlen = e->mcf->doc.len ? 2 : 1;

        } else {
            off = e->reg_sent - sizeof(tg_register_t);
            iov[0].iov_base = e->mcf->doc.data + off;
            iov[0].iov_len = e->mcf->doc.len - off;
            msg.msg_iovlen = 1;
        }

        if (e->reg_sent == 0) {
            ngx_memzero(&cmsgbuf, sizeof(cmsgbuf));
            ngx_http_thinkgate_engine_attach(&msg, cmsgbuf.space);
        }

        n = sendmsg(e->c->fd, &msg, MSG_NOSIGNAL);

        if (n == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EAGAIN || err == NGX_EINTR) {
                e->c->write->ready = 0;

                if (ngx_handle_write_event(e->c->write, 0) != NGX_OK) {
                    return NGX_ERROR;
                }

                return NGX_AGAIN;
            }

            ngx_log_error(NGX_LOG_WARN, e->log, err,
                          "thinkgate: sendmsg() to engine failed");
            return NGX_ERROR;
        }

        e->reg_sent += n;
    }

    /* the engine holds its own mapping now; ours stays until disconnect */

    if (e->memfd != -1) {
        close(e->memfd);
        e->memfd = -1;
    }

    return ngx_http_thinkgate_engine_reg_sent();
}


/*
 * Only the registration writes with write events; doorbells are single
 * bytes sent with MSG_DONTWAIT.  An edge-triggered EPOLLOUT left armed
 * would wake the worker each time the engine reads a doorbell (the
 * socket's send space changes): one wake-up more per request for nothing.
 */
static ngx_int_t
ngx_http_thinkgate_engine_reg_sent(void)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->c->write->active
        && ngx_del_event(e->c->write, NGX_WRITE_EVENT, NGX_CLEAR_EVENT)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_thinkgate_engine_read_reply(void)
{
    ssize_t                       n;
    ngx_err_t                     err;
    ngx_uint_t                    level;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    while (e->reply_got < sizeof(tg_register_reply_t)) {
        n = recv(e->c->fd, (u_char *) &e->reply + e->reply_got,
                 sizeof(tg_register_reply_t) - e->reply_got, 0);

        if (n == 0) {
            ngx_log_error(NGX_LOG_WARN, e->log, 0,
                          "thinkgate: engine closed during registration");
            return NGX_ERROR;
        }

        if (n == -1) {
            err = ngx_socket_errno;

            if (err == NGX_EAGAIN || err == NGX_EINTR) {
                return NGX_AGAIN;
            }

            ngx_log_error(NGX_LOG_WARN, e->log, err,
                          "thinkgate: recv() from engine failed");
            return NGX_ERROR;
        }

        e->reply_got += n;
    }

    e->reply.message[sizeof(e->reply.message) - 1] = '\0';

    if (e->reply.magic != TG_REG_MAGIC) {
        ngx_log_error(NGX_LOG_ERR, e->log, 0,
                      "thinkgate: bad registration reply from engine");
        return NGX_ERROR;
    }

    if (e->reply.status != 0) {
        /* the same refusal every backoff period is logged once loudly */
        level = (e->reply.status != e->refused) ? NGX_LOG_ERR : NGX_LOG_INFO;
        e->refused = e->reply.status;
        ngx_cpystrn(e->refusal, (u_char *) e->reply.message,
                    sizeof(e->refusal));

        ngx_log_error(level, e->log, 0,
                      "thinkgate: engine refused registration "
                      "(status %D, engine protocol %uD, ours %uD): %s",
                      e->reply.status, e->reply.version,
                      (uint32_t) TG_PROTO_VERSION, e->reply.message);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * While registering: the rest of the registration out, the engine's reply
 * in.  NGX_OK once registered; otherwise the caller returns (the
 * connection is closed on an error).
 */

static ngx_int_t
ngx_http_thinkgate_engine_registered(ngx_event_t *ev)
{
    ngx_int_t                     rc;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->reg_sent < sizeof(tg_register_t) + e->mcf->doc.len) {
        /* the engine answers only after the whole document */
        rc = ngx_http_thinkgate_engine_send_reg();

        if (rc == NGX_ERROR) {
            ngx_http_thinkgate_engine_disconnect("sendmsg failed");
            return NGX_ERROR;
        }
    }

    rc = ngx_http_thinkgate_engine_read_reply();

    if (rc == NGX_AGAIN) {
        if (ngx_handle_read_event(ev, 0) != NGX_OK) {
            ngx_http_thinkgate_engine_disconnect("event failed");
        }

        return NGX_AGAIN;
    }

    if (rc == NGX_ERROR) {
        ngx_http_thinkgate_engine_disconnect(NULL);
        return NGX_ERROR;
    }

    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ngx_http_thinkgate_engine_bells() != NGX_OK) {
        ngx_http_thinkgate_engine_disconnect("event failed");
        return NGX_ERROR;
    }

    e->state = NGX_HTTP_THINKGATE_CONNECTED;
    e->backoff = NGX_HTTP_THINKGATE_BACKOFF_MIN;

    ngx_log_error(NGX_LOG_NOTICE, e->log, 0,
                  "thinkgate: registered with engine \"unix:%V\", "
                  "generation %uD", &e->mcf->engine,
                  e->reply.generation);
    e->failures = 0;
    e->refused = 0;
    e->refusal[0] = '\0';

    return NGX_OK;
}


static void
ngx_http_thinkgate_engine_read_handler(ngx_event_t *ev)
{
    u_char                        buf[256];
    ssize_t                       n;
    ngx_err_t                     err;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (ev->timedout) {
        ngx_http_thinkgate_engine_disconnect("registration timed out");
        return;
    }

    if (e->state == NGX_HTTP_THINKGATE_REGISTERING
        && ngx_http_thinkgate_engine_registered(ev) != NGX_OK)
    {
        return;
    }

    /*
     * doorbells: drain them all, then look at both rings.  As in
     * ngx_unix_recv(): with EPOLLRDHUP a short read took all there was and
     * a byte that comes later is a new edge, so no recv() to EAGAIN is
     * needed, unless the engine's close is already pending (it would
     * raise no new edge).
     */

    for ( ;; ) {
        n = recv(e->c->fd, buf, sizeof(buf), 0);

        if (n > 0) {
            if (ngx_http_thinkgate_engine_drained(ev, n, sizeof(buf))) {
                break;
            }

            continue;
        }

        if (n == 0) {
            ngx_http_thinkgate_engine_disconnect("engine closed the "
                                                 "connection");
            return;
        }

        err = ngx_socket_errno;

        if (err == NGX_EINTR) {
            continue;
        }

        if (err == NGX_EAGAIN) {
            break;
        }

        ngx_log_error(NGX_LOG_WARN, e->log, err,
                      "thinkgate: recv() from engine failed");
        ngx_http_thinkgate_engine_disconnect(NULL);
        return;
    }

    ev->ready = 0;

    if (ngx_handle_read_event(ev, 0) != NGX_OK) {
        ngx_http_thinkgate_engine_disconnect("event failed");
        return;
    }

    if (ngx_http_thinkgate_engine_service() != NGX_OK) {
        ngx_http_thinkgate_engine_disconnect("corrupt frame in ring");
    }
}


/*
 * Registered: when the engine took the eventfds (its reply's flags), the
 * one it rings is watched; otherwise both go and the socket rings.
 * Watched edge-triggered, an eventfd needs no read: every write the
 * engine makes is a new edge, and the count it leaves behind matters to
 * no one.  Where events are level-triggered the handler reads it.
 */

static ngx_int_t
ngx_http_thinkgate_engine_bells(void)
{
    ngx_connection_t             *c;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (!(e->reply.flags & TG_REG_F_EVENTFD) || e->bell_in == -1) {
        ngx_http_thinkgate_engine_close_bells();
        return NGX_OK;
    }

    c = ngx_get_connection(e->bell_in, e->log);
    if (c == NULL) {
        return NGX_ERROR;
    }

    e->bell_in = -1;                /* c owns it now */
    e->bell_c = c;

    c->data = e;
    c->read->handler = ngx_http_thinkgate_engine_bell_in_handler;
    c->read->log = e->log;
    c->write->log = e->log;

    if (ngx_add_event(c->read, NGX_READ_EVENT,
                      (ngx_event_flags & NGX_USE_CLEAR_EVENT)
                      ? NGX_CLEAR_EVENT : NGX_LEVEL_EVENT)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_thinkgate_engine_bell_in_handler(ngx_event_t *ev)
{
    uint64_t                      v;
    ngx_connection_t             *c = ev->data;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (!(ngx_event_flags & NGX_USE_CLEAR_EVENT)) {
        (void) read(c->fd, &v, sizeof(v));
    }

    if (e->state != NGX_HTTP_THINKGATE_CONNECTED) {
        return;
    }

    if (ngx_http_thinkgate_engine_service() != NGX_OK) {
        ngx_http_thinkgate_engine_disconnect("corrupt frame in ring");
    }
}


static void
ngx_http_thinkgate_engine_close_bells(void)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->bell_c) {
        ngx_close_connection(e->bell_c);
        e->bell_c = NULL;
    }

    if (e->bell_in != -1) {
        close(e->bell_in);
        e->bell_in = -1;
    }

    if (e->bell_out != -1) {
        close(e->bell_out);
        e->bell_out = -1;
    }
}


/* A read of n bytes into size left nothing behind it (see above). */

static ngx_uint_t
ngx_http_thinkgate_engine_drained(ngx_event_t *ev, ssize_t n, size_t size)
{
#if (NGX_HAVE_EPOLLRDHUP)
    if ((ngx_event_flags & NGX_USE_EPOLL_EVENT) && ngx_use_epoll_rdhup) {
        return (size_t) n < size && !ev->pending_eof;
    }
#endif

    return 0;
}


static void
ngx_http_thinkgate_engine_write_handler(ngx_event_t *ev)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->state != NGX_HTTP_THINKGATE_REGISTERING
        || e->reg_sent >= sizeof(tg_register_t) + e->mcf->doc.len)
    {
        return;
    }

    if (ngx_http_thinkgate_engine_send_reg() == NGX_ERROR) {
        ngx_http_thinkgate_engine_disconnect("sendmsg failed");
    }
}


static void
ngx_http_thinkgate_engine_reconnect_handler(ngx_event_t *ev)
{
    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    ngx_http_thinkgate_engine_connect();
}


static void
ngx_http_thinkgate_engine_keeper_handler(ngx_event_t *ev)
{
    if (ngx_http_thinkgate_engine.inflight) {
        ngx_add_timer(ev, NGX_HTTP_THINKGATE_KEEPER_PERIOD);
    }
}


static void
ngx_http_thinkgate_engine_close(void)
{
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (e->c) {
        ngx_close_connection(e->c);
        e->c = NULL;
    }

    if (e->shm) {
        munmap(e->shm, e->shm_size);
        e->shm = NULL;
    }

    if (e->memfd != -1) {
        close(e->memfd);
        e->memfd = -1;
    }

    ngx_http_thinkgate_engine_close_bells();

    if (e->bell_event.posted) {
        ngx_delete_posted_event(&e->bell_event);
    }

    e->bell = 0;
    e->state = NGX_HTTP_THINKGATE_DISCONNECTED;
}


/*
 * The engine is gone (or never answered): every request in flight fails,
 * queued frames are dropped, and a reconnection is scheduled.
 */

static void
ngx_http_thinkgate_engine_disconnect(const char *why)
{
    ngx_uint_t                    level;
    ngx_queue_t                  *q;
    ngx_connection_t             *c;
    ngx_rbtree_node_t            *node;
    ngx_http_thinkgate_ctx_t     *ctx;
    ngx_http_thinkgate_out_t     *out;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (why) {
        level = (e->state == NGX_HTTP_THINKGATE_CONNECTED) ? NGX_LOG_ERR
                                                           : NGX_LOG_WARN;
        ngx_log_error(level, e->log, 0,
                      "thinkgate: engine \"unix:%V\": %s, %ui request(s) "
                      "in flight fail", &e->mcf->engine, why, e->inflight);
    }

    ngx_http_thinkgate_engine_close();

    while (!ngx_queue_empty(&e->out)) {
        q = ngx_queue_head(&e->out);
        ngx_queue_remove(q);

        out = ngx_queue_data(q, ngx_http_thinkgate_out_t, queue);

        if (out->ctx) {
            out->ctx->queued = 0;

        } else {
            ngx_queue_insert_tail(&e->free_out, q);
        }
    }

    while (e->tree.root != e->tree.sentinel) {
        node = ngx_rbtree_min(e->tree.root, e->tree.sentinel);
        ctx = (ngx_http_thinkgate_ctx_t *) node;

        ngx_rbtree_delete(&e->tree, node);
        ctx->in_tree = 0;

        if (--e->inflight == 0 && e->keeper.timer_set) {
            ngx_del_timer(&e->keeper);
        }

        c = ctx->request->connection;
        ngx_http_thinkgate_fail(ctx);
        ngx_http_run_posted_requests(c);
    }

    e->failures++;

    if (!ngx_exiting && !ngx_terminate && !ngx_quit) {
        ngx_add_timer(&e->reconnect, e->backoff);
        e->backoff = ngx_min(e->backoff * 2, NGX_HTTP_THINKGATE_BACKOFF_MAX);
    }
}


