/*
 * hiredis event hooks on a libuv poll handle.
 */

#include <errno.h>
#include <stdlib.h>

#include "log.h"
#include "state/redis_int.h"

/*
 * Event hooks for hiredis, after hiredis's adapters/libuv.h with two
 * differences.  libuv reports POLLERR (a refused or reset connection) as
 * an error status and stops the handle; the stock adapter ignores it, so
 * a refused connect would only be noticed by the connect timer.  Here an
 * error is handed to hiredis as readiness and its own read or write finds
 * the socket error.  And the poll handle is counted among r's handles, so
 * that tg_redis_close() completes only once it is closed too.
 */
typedef struct {
    uv_poll_t            poll;
    redisAsyncContext   *ac;         /* NULL once hiredis cleaned up */
    tg_redis_t          *r;
    int                  events;
} tg__redis_ev_t;

static void tg__redis_ev_poll(uv_poll_t *h, int status, int events);
static void tg__redis_ev_update(tg__redis_ev_t *ev);
static void tg__redis_ev_add_read(void *p);
static void tg__redis_ev_del_read(void *p);
static void tg__redis_ev_add_write(void *p);
static void tg__redis_ev_del_write(void *p);
static void tg__redis_ev_cleanup(void *p);
static void tg__redis_ev_closed(uv_handle_t *h);


int
tg__redis_attach(tg_redis_t *r, redisAsyncContext *ac)
{
    tg__redis_ev_t  *ev;
    int              rc;

    ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        return -ENOMEM;
    }
    rc = uv_poll_init(r->loop, &ev->poll, ac->c.fd);
    if (rc != 0) {
        free(ev);       /* not initialized: nothing to close */
        return rc;
    }
    ev->poll.data = ev;
    ev->ac = ac;
    ev->r = r;
    r->handles_open++;
    ac->ev.data = ev;
    ac->ev.addRead = tg__redis_ev_add_read;
    ac->ev.delRead = tg__redis_ev_del_read;
    ac->ev.addWrite = tg__redis_ev_add_write;
    ac->ev.delWrite = tg__redis_ev_del_write;
    ac->ev.cleanup = tg__redis_ev_cleanup;
    return 0;
}


static void
tg__redis_ev_poll(uv_poll_t *h, int status, int events)
{
    tg__redis_ev_t  *ev = h->data;

    if (status < 0) {
        events = ev->events;
    }
    if (ev->ac != NULL && (events & UV_READABLE)) {
        redisAsyncHandleRead(ev->ac);
    }
    if (ev->ac != NULL && (events & UV_WRITABLE)) {
        redisAsyncHandleWrite(ev->ac);
    }
    if (status < 0 && ev->ac != NULL) {
        /* libuv stopped the handle; hiredis still wants its events. */
        tg__redis_ev_update(ev);
    }
}


static void
tg__redis_ev_update(tg__redis_ev_t *ev)
{
    if (ev->events != 0) {
        if (uv_poll_start(&ev->poll, ev->events, tg__redis_ev_poll) != 0) {
            tg_log_error("redis: cannot watch the socket");
        }
    } else {
        uv_poll_stop(&ev->poll);
    }
}


static void
tg__redis_ev_add_read(void *p)
{
    tg__redis_ev_t  *ev = p;

    ev->events |= UV_READABLE;
    tg__redis_ev_update(ev);
}


static void
tg__redis_ev_del_read(void *p)
{
    tg__redis_ev_t  *ev = p;

    ev->events &= ~UV_READABLE;
    tg__redis_ev_update(ev);
}


static void
tg__redis_ev_add_write(void *p)
{
    tg__redis_ev_t  *ev = p;

    ev->events |= UV_WRITABLE;
    tg__redis_ev_update(ev);
}


static void
tg__redis_ev_del_write(void *p)
{
    tg__redis_ev_t  *ev = p;

    ev->events &= ~UV_WRITABLE;
    tg__redis_ev_update(ev);
}


static void
tg__redis_ev_cleanup(void *p)
{
    tg__redis_ev_t  *ev = p;

    ev->ac = NULL;
    uv_close((uv_handle_t *) &ev->poll, tg__redis_ev_closed);
}


static void
tg__redis_ev_closed(uv_handle_t *h)
{
    tg__redis_ev_t  *ev = h->data;
    tg_redis_t      *r = ev->r;

    free(ev);
    tg__redis_handle_gone(r);
}

