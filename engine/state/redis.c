/*
 * The Redis connection: resolve, connect, handshake, reconnect with
 * backoff, close (see redis.h for the contract; commands are in
 * redis_cmd.c).
 */

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "state/redis_int.h"

#define TG_REDIS_BACKOFF_MIN_MS   100
#define TG_REDIS_BACKOFF_MAX_MS   5000



typedef struct {
    uv_getaddrinfo_t     req;
    tg_redis_t          *r;          /* NULL once abandoned */
} tg__redis_resolve_t;

static void tg__redis_connect(tg_redis_t *r);
static void tg__redis_open(tg_redis_t *r, const char *ip);
static void tg__redis_on_resolved(uv_getaddrinfo_t *req, int status,
    struct addrinfo *res);
static void tg__redis_on_connect(const redisAsyncContext *ac, int status);
static void tg__redis_on_disconnect(const redisAsyncContext *ac, int status);
static void tg__redis_handshake(tg_redis_t *r, redisAsyncContext *ac,
    redisReply *reply, const char *what);
static void tg__redis_on_auth(redisAsyncContext *ac, void *reply, void *pd);
static void tg__redis_on_select(redisAsyncContext *ac, void *reply, void *pd);
static void tg__redis_on_ping(redisAsyncContext *ac, void *reply, void *pd);
static void tg__redis_on_conn_timer(uv_timer_t *t);
static void tg__redis_on_handle_closed(uv_handle_t *h);
static void tg__redis_abandon_resolve(tg_redis_t *r);
static void tg__redis_free_conf(tg_redis_t *r);
static char *tg__redis_strdup(const char *s, int *failed);


static char *
tg__redis_strdup(const char *s, int *failed)
{
    char  *p;

    if (s == NULL) {
        return NULL;
    }
    p = strdup(s);
    if (p == NULL) {
        *failed = 1;
    }
    return p;
}


int
tg_redis_init(tg_redis_t *r, uv_loop_t *loop, const tg_redis_conf_t *conf)
{
    void        *data = r->data;
    const char  *pw = NULL;
    int          failed = 0, rc;

    memset(r, 0, sizeof(*r));
    tg_queue_init(&r->pending);
    r->data = data;
    r->loop = loop;
    r->state = TG__REDIS_CLOSED;

    if ((conf->unix_path == NULL || conf->unix_path[0] == '\0')
        && (conf->host == NULL || conf->host[0] == '\0'))
    {
        snprintf(r->error, sizeof(r->error), "redis: no host or unix path");
        return -EINVAL;
    }
    if (conf->port < 0 || conf->port > 65535 || conf->db < 0) {
        snprintf(r->error, sizeof(r->error), "redis: bad port or db");
        return -EINVAL;
    }
    if (conf->password_env != NULL && conf->password_env[0] != '\0') {
        pw = getenv(conf->password_env);
        if (pw == NULL) {
            snprintf(r->error, sizeof(r->error),
                     "redis: password variable \"%s\" is not set",
                     conf->password_env);
            return -EINVAL;
        }
    }

    if (conf->unix_path != NULL && conf->unix_path[0] != '\0') {
        r->unix_path = tg__redis_strdup(conf->unix_path, &failed);
    } else {
        r->host = tg__redis_strdup(conf->host, &failed);
    }
    r->prefix = tg__redis_strdup(conf->prefix ? conf->prefix : "", &failed);
    r->user = tg__redis_strdup(conf->user, &failed);
    r->password = tg__redis_strdup(pw, &failed);
    if (failed) {
        tg__redis_free_conf(r);
        snprintf(r->error, sizeof(r->error), "redis: out of memory");
        return -ENOMEM;
    }
    r->prefix_len = strlen(r->prefix);
    r->port = conf->port ? conf->port : 6379;
    r->db = conf->db;
    r->connect_timeout_ms = conf->connect_timeout_ms
                            ? conf->connect_timeout_ms : 1000;
    r->command_timeout_ms = conf->command_timeout_ms
                            ? conf->command_timeout_ms : 250;

    rc = uv_timer_init(loop, &r->conn_timer);
    if (rc != 0) {
        tg__redis_free_conf(r);
        return rc;
    }
    rc = uv_timer_init(loop, &r->cmd_timer);
    if (rc != 0) {
        /* The first timer is closed; nothing else references r. */
        uv_close((uv_handle_t *) &r->conn_timer, NULL);
        tg__redis_free_conf(r);
        return rc;
    }
    r->conn_timer.data = r;
    r->cmd_timer.data = r;
    r->handles_open = 2;
    r->backoff_ms = TG_REDIS_BACKOFF_MIN_MS;
    r->stats.last_error = r->error;

    tg__redis_connect(r);
    return 0;
}


int
tg_redis_conf_addr(tg_redis_conf_t *conf, const char *addr, char *buf,
    size_t size)
{
    char  *host, *colon, *end;
    long   port;

    if (strlen(addr) + 1 > size || addr[0] == '\0') {
        return -EINVAL;
    }
    memcpy(buf, addr, strlen(addr) + 1);
    conf->host = NULL;
    conf->unix_path = NULL;
    conf->port = 0;

    if (strncmp(buf, "unix:", 5) == 0) {
        if (buf[5] == '\0') {
            return -EINVAL;
        }
        conf->unix_path = buf + 5;
        return 0;
    }

    host = buf;
    if (buf[0] == '[') {
        end = strchr(buf, ']');
        if (end == NULL || end == buf + 1) {
            return -EINVAL;
        }
        *end = '\0';
        host = buf + 1;
        colon = (end[1] == ':') ? end + 1 : NULL;
        if (colon == NULL && end[1] != '\0') {
            return -EINVAL;
        }
    } else {
        colon = strrchr(buf, ':');
        if (colon != NULL && strchr(buf, ':') != colon) {
            return -EINVAL;     /* a bare IPv6 address needs brackets */
        }
    }

    if (colon != NULL) {
        *colon = '\0';
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || errno || port < 1
            || port > 65535)
        {
            return -EINVAL;
        }
        conf->port = (int) port;
    }
    if (host[0] == '\0') {
        return -EINVAL;
    }
    conf->host = host;
    return 0;
}


/* One attempt: resolve if needed, connect, then the handshake; the
 * connect timer bounds all of it. */
static void
tg__redis_connect(tg_redis_t *r)
{
    tg__redis_resolve_t  *res;
    struct addrinfo       hints;
    unsigned char         addr[sizeof(struct in6_addr)];
    char                  port[8];
    int                   rc;

    r->state = TG__REDIS_CONNECTING;
    rc = uv_timer_start(&r->conn_timer, tg__redis_on_conn_timer,
                        r->connect_timeout_ms, 0);
    if (rc != 0) {
        snprintf(r->error, sizeof(r->error), "redis: timer: %s",
                 uv_strerror(rc));
        tg__redis_lost(r);
        return;
    }

    if (r->unix_path != NULL
        || inet_pton(AF_INET, r->host, addr) == 1
        || inet_pton(AF_INET6, r->host, addr) == 1)
    {
        tg__redis_open(r, r->host);
        return;
    }

    /* A name: hiredis would resolve it with a blocking getaddrinfo(), so
     * the loop's thread pool does it and hiredis gets the address. */
    res = calloc(1, sizeof(*res));
    if (res == NULL) {
        snprintf(r->error, sizeof(r->error), "redis: out of memory");
        tg__redis_lost(r);
        return;
    }
    res->r = r;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", r->port);
    rc = uv_getaddrinfo(r->loop, &res->req, tg__redis_on_resolved, r->host,
                        port, &hints);
    if (rc != 0) {
        free(res);
        snprintf(r->error, sizeof(r->error), "redis: resolve %s: %s",
                 r->host, uv_strerror(rc));
        tg__redis_lost(r);
        return;
    }
    r->resolve = res;
}


static void
tg__redis_on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    tg__redis_resolve_t  *rs = (tg__redis_resolve_t *) req;
    tg_redis_t           *r = rs->r;
    struct addrinfo      *ai, *pick = NULL;
    char                  ip[INET6_ADDRSTRLEN];
    const void           *a;

    free(rs);
    if (r == NULL) {
        uv_freeaddrinfo(res);
        return;
    }
    r->resolve = NULL;

    if (status != 0) {
        snprintf(r->error, sizeof(r->error), "redis: resolve %s: %s",
                 r->host, uv_strerror(status));
        uv_freeaddrinfo(res);
        tg__redis_lost(r);
        return;
    }

    /* IPv4 first: a server bound to 127.0.0.1 is the common case. */
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        if (ai->ai_family == AF_INET) {
            pick = ai;
            break;
        }
    }
    if (pick == NULL) {
        pick = res;
    }
    a = (pick->ai_family == AF_INET)
        ? (const void *) &((struct sockaddr_in *) pick->ai_addr)->sin_addr
        : (const void *) &((struct sockaddr_in6 *) pick->ai_addr)->sin6_addr;
    if (inet_ntop(pick->ai_family, a, ip, sizeof(ip)) == NULL) {
        snprintf(r->error, sizeof(r->error), "redis: resolve %s: %s",
                 r->host, strerror(errno));
        uv_freeaddrinfo(res);
        tg__redis_lost(r);
        return;
    }
    uv_freeaddrinfo(res);
    tg__redis_open(r, ip);
}


static void
tg__redis_open(tg_redis_t *r, const char *ip)
{
    redisAsyncContext  *ac;

    ac = r->unix_path ? redisAsyncConnectUnix(r->unix_path)
                      : redisAsyncConnect(ip, r->port);
    if (ac == NULL) {
        snprintf(r->error, sizeof(r->error), "redis: out of memory");
        tg__redis_lost(r);
        return;
    }
    if (ac->err) {
        snprintf(r->error, sizeof(r->error), "redis: connect %s: %s",
                 r->unix_path ? r->unix_path : ip, ac->errstr);
        redisAsyncFree(ac);
        tg__redis_lost(r);
        return;
    }
    if (tg__redis_attach(r, ac) != 0) {
        redisAsyncFree(ac);
        snprintf(r->error, sizeof(r->error), "redis: cannot watch socket");
        tg__redis_lost(r);
        return;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, tg__redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, tg__redis_on_disconnect);
    r->ac = ac;
}


static void
tg__redis_on_connect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext  *ac = (redisAsyncContext *) cac;
    tg_redis_t         *r = ac->data;
    const char         *argv[3];
    char                db[16];
    int                 ok = REDIS_OK;

    if (r == NULL || r->ac != ac) {
        return;
    }
    if (status != REDIS_OK) {
        /* hiredis frees the context when this returns. */
        snprintf(r->error, sizeof(r->error), "redis: connect: %s",
                 ac->errstr);
        r->ac = NULL;
        tg__redis_lost(r);
        return;
    }

    r->handshake_left = 1;
    if (r->password != NULL) {
        argv[0] = "AUTH";
        argv[1] = r->user ? r->user : r->password;
        argv[2] = r->password;
        ok |= redisAsyncCommandArgv(ac, tg__redis_on_auth, r,
                                    r->user ? 3 : 2, argv, NULL);
        r->handshake_left++;
    }
    if (r->db != 0) {
        snprintf(db, sizeof(db), "%d", r->db);
        argv[0] = "SELECT";
        argv[1] = db;
        ok |= redisAsyncCommandArgv(ac, tg__redis_on_select, r, 2, argv,
                                    NULL);
        r->handshake_left++;
    }
    argv[0] = "PING";
    ok |= redisAsyncCommandArgv(ac, tg__redis_on_ping, r, 1, argv, NULL);
    if (ok != REDIS_OK) {
        snprintf(r->error, sizeof(r->error), "redis: cannot send handshake");
        tg__redis_drop(r);
        tg__redis_lost(r);
    }
}


static void
tg__redis_on_auth(redisAsyncContext *ac, void *reply, void *pd)
{
    tg__redis_handshake(pd, ac, reply, "AUTH");
}


static void
tg__redis_on_select(redisAsyncContext *ac, void *reply, void *pd)
{
    tg__redis_handshake(pd, ac, reply, "SELECT");
}


static void
tg__redis_on_ping(redisAsyncContext *ac, void *reply, void *pd)
{
    tg__redis_handshake(pd, ac, reply, "PING");
}


static void
tg__redis_handshake(tg_redis_t *r, redisAsyncContext *ac, redisReply *reply,
    const char *what)
{
    if (reply == NULL || r->ac != ac || r->state != TG__REDIS_CONNECTING) {
        return;     /* lost: the disconnect path has it */
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(r->error, sizeof(r->error), "redis: %s: %s", what,
                 reply->str);
        tg__redis_drop(r);
        tg__redis_lost(r);
        return;
    }
    if (--r->handshake_left > 0) {
        return;
    }

    uv_timer_stop(&r->conn_timer);
    r->state = TG__REDIS_READY;
    r->backoff_ms = TG_REDIS_BACKOFF_MIN_MS;
    r->conn_id++;
    if (r->was_ready) {
        r->stats.reconnects++;
    }
    r->was_ready = 1;
    r->error[0] = '\0';
    if (r->unix_path != NULL) {
        tg_log_info("redis: connected to unix:%s db %d", r->unix_path, r->db);
    } else {
        tg_log_info("redis: connected to %s:%d db %d", r->host, r->port,
                    r->db);
    }
}


static void
tg__redis_on_disconnect(const redisAsyncContext *cac, int status)
{
    redisAsyncContext  *ac = (redisAsyncContext *) cac;
    tg_redis_t         *r = ac->data;

    (void) status;
    if (r == NULL || r->ac != ac) {
        return;     /* dropped by us; already handled */
    }
    snprintf(r->error, sizeof(r->error), "redis: connection lost: %s",
             ac->err ? ac->errstr : "closed by server");
    r->ac = NULL;
    tg__redis_lost(r);
}


static void
tg__redis_on_conn_timer(uv_timer_t *t)
{
    tg_redis_t  *r = t->data;

    if (r->state == TG__REDIS_DOWN) {
        tg__redis_connect(r);
        return;
    }
    if (r->state == TG__REDIS_CONNECTING) {
        snprintf(r->error, sizeof(r->error),
                 "redis: no answer within %llu ms of connecting",
                 (unsigned long long) r->connect_timeout_ms);
        tg__redis_drop(r);
        tg__redis_lost(r);
    }
}


static void
tg__redis_abandon_resolve(tg_redis_t *r)
{
    tg__redis_resolve_t  *rs = r->resolve;

    if (rs != NULL) {
        /* The request may already run in the thread pool; its callback
         * then finds no owner and only frees itself. */
        rs->r = NULL;
        r->resolve = NULL;
        (void) uv_cancel((uv_req_t *) &rs->req);
    }
}


/* Frees the connection; pending commands get their callbacks (reply NULL)
 * from inside this call, or right after the hiredis callback running. */
void
tg__redis_drop(tg_redis_t *r)
{
    redisAsyncContext  *ac = r->ac;

    tg__redis_abandon_resolve(r);
    if (ac != NULL) {
        r->ac = NULL;
        redisAsyncFree(ac);
    }
}


/* The attempt failed or the connection is gone: wait, then retry. */
void
tg__redis_lost(tg_redis_t *r)
{
    if (r->state == TG__REDIS_CLOSING || r->state == TG__REDIS_CLOSED) {
        return;
    }
    if (r->state != TG__REDIS_READY) {
        r->stats.connect_failures++;
    }
    r->state = TG__REDIS_DOWN;
    tg_log_warn("%s; retrying in %llu ms", r->error,
                (unsigned long long) r->backoff_ms);
    if (uv_timer_start(&r->conn_timer, tg__redis_on_conn_timer,
                       r->backoff_ms, 0) != 0)
    {
        tg_log_error("redis: cannot arm the retry timer");
    }
    r->backoff_ms *= 2;
    if (r->backoff_ms > TG_REDIS_BACKOFF_MAX_MS) {
        r->backoff_ms = TG_REDIS_BACKOFF_MAX_MS;
    }
}


int
tg_redis_connected(const tg_redis_t *r)
{
    return r->state == TG__REDIS_READY;
}


void
tg_redis_get_stats(const tg_redis_t *r, tg_redis_stats_t *out)
{
    *out = r->stats;
    out->connected = (r->state == TG__REDIS_READY);
    out->mode = out->connected ? "connected"
                : (r->state == TG__REDIS_CONNECTING ? "connecting" : "down");
    out->last_error = r->error;
}


void
tg_redis_close(tg_redis_t *r, tg_redis_close_cb close_cb)
{
    if (r->state == TG__REDIS_CLOSING || r->state == TG__REDIS_CLOSED) {
        return;
    }
    r->state = TG__REDIS_CLOSING;
    r->close_cb = close_cb;

    uv_timer_stop(&r->cmd_timer);
    tg__redis_drop(r);
    while (!tg_queue_empty(&r->pending)) {
        /* Only reachable if hiredis deferred the free (close called from
         * a reply callback); answer now, drop the replies later. */
        tg__redis_finish(tg_queue_data(tg_queue_head(&r->pending),
                                       tg_redis_cmd_t, link),
                         -ECANCELED, NULL);
    }
    uv_close((uv_handle_t *) &r->conn_timer, tg__redis_on_handle_closed);
    uv_close((uv_handle_t *) &r->cmd_timer, tg__redis_on_handle_closed);
}


static void
tg__redis_on_handle_closed(uv_handle_t *h)
{
    tg__redis_handle_gone(h->data);
}


void
tg__redis_handle_gone(tg_redis_t *r)
{
    if (--r->handles_open > 0 || r->state != TG__REDIS_CLOSING) {
        return;
    }
    tg__redis_free_conf(r);
    r->state = TG__REDIS_CLOSED;
    if (r->close_cb != NULL) {
        r->close_cb(r);
    }
}


static void
tg__redis_free_conf(tg_redis_t *r)
{
    free(r->host);
    free(r->unix_path);
    free(r->prefix);
    free(r->user);
    if (r->password != NULL) {
        memset(r->password, 0, strlen(r->password));
        free(r->password);
    }
    r->host = r->unix_path = r->prefix = r->user = r->password = NULL;
}
