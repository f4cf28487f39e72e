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

    tg_request_t       *requests[TG_CONN_BUCKETS];
    size_t              nrequests;

    /* Requests with output waiting for ring room, in order. */
    tg_request_t       *blocked;
    tg_request_t      **blocked_tail;

    tg_conn_t          *next;
    tg_conn_t          *prev;
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

/* Queues a request to be flushed again when the worker frees room. */
void tg_conn_block(tg_conn_t *conn, tg_request_t *r);

/* Removes a request from the id table and the blocked queue. */
void tg_conn_forget(tg_conn_t *conn, tg_request_t *r);

#endif /* TG_TRANSPORT_CONN_H */
