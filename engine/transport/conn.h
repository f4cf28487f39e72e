/*
 * One registration: an nginx worker connected over the engine's unix
 * socket, with its shared-memory ring pair (include/thinkgate/ring.h,
 * protocol.h).
 *
 * The connection starts in TG_CONN_REGISTERING: it reads the tg_register_t
 * (with the memfd as SCM_RIGHTS) and the configuration document, checks
 * peer credentials, maps and checks the region, acquires the generation
 * and answers.  Then it is TG_CONN_ACTIVE: every readable event drains the
 * doorbell bytes and services the rings.
 */

#ifndef TG_TRANSPORT_CONN_H
#define TG_TRANSPORT_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <thinkgate/protocol.h>
#include <thinkgate/ring.h>

#include "engine.h"
#include "util/buf.h"

#define TG_CONN_BUCKETS     256         /* request id hash buckets */
#define TG_CONN_MAX_CONF    (4u << 20)  /* configuration document cap */
#define TG_CONN_REG_TIMEOUT 5000        /* ms to complete registration */

typedef struct tg_stream_s  tg_stream_t;

/*
 * A request as the transport sees it: its id and the links of its
 * connection's id table and blocked queue.  Core embeds one in each
 * request; the transport knows nothing else of it.
 */
struct tg_stream_s {
    uint64_t        id;
    tg_stream_t    *hash_next;          /* conn's id table */
    tg_queue_t      blocked_link;       /* conn's blocked queue */
    unsigned        blocked:1;          /* blocked_link is in a queue */
};

/*
 * What the layers above do at a connection's turns: main.c puts the
 * table in engine->conn_hooks.  The transport calls up through it only.
 */
struct tg_conn_hooks_s {
    /* The configuration is read and conn->gen acquired, before the
     * reply: attach what the generation needs.  0, or a negative errno
     * with err filled: the registration is refused with it. */
    int   (*on_register)(tg_conn_t *conn, char *err, size_t errlen);
    /* The worker got its reply and the connection is active. */
    void  (*on_active)(tg_conn_t *conn);
    /* One frame of the worker's ring: s is the stream of its id, NULL when
     * none is in the table (tg_conn_adopt puts a new one there).  0, or a
     * negative errno: a protocol error, the connection closes. */
    int   (*on_frame)(tg_conn_t *conn, tg_stream_t *s,
                      const tg_frame_view_t *f);
    /* The worker freed room in its ring: s, blocked, may write again. */
    void  (*on_room)(tg_stream_t *s);
    /* The connection is going: s must leave it (tg_conn_forget). */
    void  (*on_close)(tg_stream_t *s);
};

enum {
    TG_CONN_REGISTERING = 0,
    TG_CONN_ACTIVE,
    TG_CONN_CLOSING
};

struct tg_conn_s {
    tg_engine_t        *engine;
    uint64_t            serial;         /* for logs */
    int                 state;          /* TG_CONN_* */
    int                 fd;
    uv_poll_t           poll;
    uv_timer_t          timer;          /* registration deadline */
    uv_prepare_t        bell_prepare;   /* rings a pending doorbell ... */
    uv_check_t          bell_check;     /* ... once per loop pass */
    int                 handles;        /* open libuv handles */
    int                 bell_pending;   /* a write found the ring empty */

    /* Eventfd doorbells (protocol.h, TG_REG_F_EVENTFD); -1 while the
     * socket carries them. */
    int                 bell_in;        /* the worker rings us */
    int                 bell_out;       /* we ring the worker */
    uv_poll_t           bell_poll;      /* watches bell_in */
    int                 bell_poll_on;   /* bell_poll initialised */

    /* Peer. */
    pid_t               peer_pid;
    uid_t               peer_uid;
    int                 peer_allowed;

    /* Registration in progress. */
    tg_register_t       reg;
    size_t              reg_got;        /* bytes of reg read */
    tg_buf_t            conf;
    int                 memfd;

    /* Active registration. */
    tg_shm_t           *shm;
    size_t              shm_size;
    tg_ring_t           in;             /* to_engine: we consume */
    tg_ring_t           out;            /* to_worker: we produce */
    uint32_t            max_payload;    /* of out, fixed at registration */
    tg_generation_t    *gen;

    tg_stream_t        *requests[TG_CONN_BUCKETS];
    size_t              nrequests;

    /* Requests with output waiting for ring room, in order. */
    tg_queue_t          blocked;

    tg_queue_t          link;           /* in engine->conns */
};

/* Takes ownership of an accepted socket.  0 or a negative errno (the fd
 * is then closed). */
int tg_conn_accept(tg_engine_t *engine, int fd);

/* Starts closing: cancels every request, closes the handles; memory goes
 * in the close callbacks. */
void tg_conn_close(tg_conn_t *conn, const char *why);

/*
 * Writes one frame to the worker (payload p1[l1] + p2[l2]); when the ring
 * turned non-empty the doorbell rings once, at the end of this loop pass,
 * so that HEAD, DATA and END written in one pass cost one wake-up.  Returns 0, -EAGAIN (no room:
 * the worker rings once it consumed; see tg_conn_block), -EMSGSIZE, or
 * -EPIPE when the connection is closing.
 */
int tg_conn_write(tg_conn_t *conn, uint16_t type, uint16_t flags,
    uint64_t id, const void *p1, size_t l1, const void *p2, size_t l2);

/* Puts a new stream (s->id set) in the connection's id table. */
void tg_conn_adopt(tg_conn_t *conn, tg_stream_t *s);

/* Queues a stream to be offered room again (on_room) when the worker
 * frees some. */
void tg_conn_block(tg_conn_t *conn, tg_stream_t *s);

/* Removes a stream from the id table and the blocked queue. */
void tg_conn_forget(tg_conn_t *conn, tg_stream_t *s);

#endif /* TG_TRANSPORT_CONN_H */
