/*
 * thinkgate backend client: one transfer (a curl easy handle) and its
 * callbacks.  See client.c for the loop side and client.h for the rules.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

static size_t tg__write_cb(char *p, size_t size, size_t n, void *userp);
static size_t tg__header_cb(char *p, size_t size, size_t n, void *userp);
static int tg__prereq_cb(void *userp, char *primary_ip, char *local_ip,
    int primary_port, int local_port);
static void tg__http_head(tg_http_t *h);
static void tg__idle_arm(tg_http_t *h);
static void tg__idle_cb(uv_timer_t *timer);
static void tg__http_finish(tg_http_t *h, int rc, const char *err);
static void tg__http_release(tg_http_t *h);
static void tg__http_close_cb(uv_handle_t *handle);
static int tg__http_setopts(tg_http_t *h, const tg_http_req_t *req);


tg_http_t *
tg__curl_start(tg_http_client_t *c, const tg_http_req_t *req,
    const tg_http_cb_t *cb, void *data)
{
    tg_http_t  *h;

    if (c == NULL || c->closing || req == NULL || req->url == NULL
        || cb == NULL || (req->body == NULL && req->body_len != 0))
    {
        return NULL;
    }

    h = calloc(1, sizeof(*h));
    if (h == NULL) {
        return NULL;
    }
    h->kind = TG__HTTP_CURL;
    h->client = c;
    h->cb = *cb;
    h->data = data;
    h->idle_ms = req->idle_timeout_ms > 0 ? req->idle_timeout_ms : 0;
    tg_queue_init(&h->link);
    tg_queue_init(&h->pending);

    h->easy = c->nspare > 0 ? c->spare[--c->nspare] : curl_easy_init();
    if (h->easy == NULL) {
        goto failed;
    }
    if (tg__http_setopts(h, req) != 0) {
        goto failed;
    }

    /* The timer is the last thing that can fail: from here on memory is
     * released in its close callback. */
    if (uv_timer_init(c->loop, &h->idle) != 0) {
        goto failed;
    }
    h->idle.data = h;
    c->nhandles++;
    tg_queue_insert_tail(&c->transfers, &h->link);
    c->nactive++;

    if (c->in_curl > 0) {
        /* curl refuses curl_multi_add_handle from inside its callbacks. */
        h->add = 1;
        tg__client_defer(c, h);
        return h;
    }

    if (curl_multi_add_handle(c->multi, h->easy) != CURLM_OK) {
        tg__http_release(h);
        return NULL;
    }
    h->added = 1;
    return h;

failed:
    if (h->easy != NULL) {
        curl_easy_cleanup(h->easy);
    }
    curl_slist_free_all(h->headers);
    free(h);
    return NULL;
}


static int
tg__http_setopts(tg_http_t *h, const tg_http_req_t *req)
{
    CURL               *e = h->easy;
    struct curl_slist  *l;
    char               *auth = NULL;
    size_t              n;
    int                 rc = 0;

#define TG__SETOPT(opt, val)                                                  \
    if (curl_easy_setopt(e, opt, val) != CURLE_OK) { return -1; }

    TG__SETOPT(CURLOPT_URL, req->url);
    TG__SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
    TG__SETOPT(CURLOPT_PRIVATE, (void *) h);
    TG__SETOPT(CURLOPT_ERRORBUFFER, h->errbuf);
    TG__SETOPT(CURLOPT_NOSIGNAL, 1L);
    TG__SETOPT(CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_1_1);
    TG__SETOPT(CURLOPT_TCP_NODELAY, 1L);
    TG__SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    TG__SETOPT(CURLOPT_WRITEFUNCTION, tg__write_cb);
    TG__SETOPT(CURLOPT_WRITEDATA, (void *) h);
    TG__SETOPT(CURLOPT_HEADERFUNCTION, tg__header_cb);
    TG__SETOPT(CURLOPT_HEADERDATA, (void *) h);
    TG__SETOPT(CURLOPT_PREREQFUNCTION, tg__prereq_cb);
    TG__SETOPT(CURLOPT_PREREQDATA, (void *) h);
    TG__SETOPT(CURLOPT_CLOSESOCKETFUNCTION, tg__client_close_socket);
    TG__SETOPT(CURLOPT_CLOSESOCKETDATA, (void *) h->client);
    TG__SETOPT(CURLOPT_SSL_VERIFYPEER, req->tls_verify ? 1L : 0L);
    TG__SETOPT(CURLOPT_SSL_VERIFYHOST, req->tls_verify ? 2L : 0L);
    if (req->tls_ca != NULL) {
        TG__SETOPT(CURLOPT_CAINFO, req->tls_ca);
    }
    if (req->connect_timeout_ms > 0) {
        TG__SETOPT(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
    }
    if (req->body != NULL) {
        /* The size first: COPYPOSTFIELDS copies that many bytes. */
        TG__SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
        TG__SETOPT(CURLOPT_COPYPOSTFIELDS, req->body);
    }
#undef TG__SETOPT

    /* An empty "Expect:" stops curl from waiting for 100-continue on large
     * bodies, which LLM servers do not send. */
    l = curl_slist_append(NULL, "Expect:");
    if (l == NULL) {
        return -1;
    }
    h->headers = l;
    if (req->body != NULL) {
        l = curl_slist_append(h->headers, "Content-Type: application/json");
        if (l == NULL) {
            return -1;
        }
    }
    l = curl_slist_append(h->headers, req->stream
                          ? "Accept: text/event-stream"
                          : "Accept: application/json");
    if (l == NULL) {
        return -1;
    }
    if (req->api_key != NULL && req->api_key[0] != '\0') {
        n = strlen(req->api_key) + sizeof("Authorization: Bearer ");
        auth = malloc(n);
        if (auth == NULL) {
            return -1;
        }
        snprintf(auth, n, "Authorization: Bearer %s", req->api_key);
        l = curl_slist_append(h->headers, auth);
        /* The key must not linger in freed heap memory. */
        memset(auth, 0, n);
        free(auth);
        if (l == NULL) {
            return -1;
        }
    }
    if (curl_easy_setopt(e, CURLOPT_HTTPHEADER, h->headers) != CURLE_OK) {
        rc = -1;
    }
    return rc;
}


/* Deferred curl_multi_add_handle of a transfer started inside curl. */
void
tg__http_add(tg_http_t *h)
{
    if (curl_multi_add_handle(h->client->multi, h->easy) != CURLM_OK) {
        tg__http_finish(h, -EIO, "curl_multi_add_handle failed");
        return;
    }
    h->added = 1;
}


void
tg__curl_pause(tg_http_t *h, int paused)
{
    if (h == NULL || h->cancelled || h->finishing) {
        return;
    }
    if (paused) {
        /* curl is told on its next write (CURL_WRITEFUNC_PAUSE); it then
         * stops reading the socket. */
        h->paused = 1;
        uv_timer_stop(&h->idle);
        return;
    }
    if (!h->paused) {
        return;
    }
    h->paused = 0;
    if (h->curl_paused) {
        h->resume = 1;
        tg__client_defer(h->client, h);
    } else {
        tg__idle_arm(h);
    }
}


/* From the pending queue, with client->in_curl raised. */
void
tg__http_unpause(tg_http_t *h)
{
    if (h->paused || !h->curl_paused) {
        return;
    }
    h->curl_paused = 0;
    tg__idle_arm(h);
    /* May call tg__write_cb at once with the data curl held back. */
    (void) curl_easy_pause(h->easy, CURLPAUSE_CONT);
}


void
tg__curl_cancel(tg_http_t *h)
{
    if (h == NULL || h->cancelled || h->finishing) {
        return;
    }
    h->cancelled = 1;
    uv_timer_stop(&h->idle);
    if (h->added && h->client->in_curl > 0) {
        /* Removed as soon as curl returns; its callbacks for h abort. */
        tg__client_defer(h->client, h);
        return;
    }
    tg__http_remove(h);
}


/* Detaches from curl, closing the connection, and frees; no callback. */
void
tg__http_remove(tg_http_t *h)
{
    if (h->added) {
        /* An unfinished HTTP/1.1 transfer leaves its connection closed;
         * FORBID_REUSE makes sure of it. */
        (void) curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 1L);
        (void) curl_multi_remove_handle(h->client->multi, h->easy);
        h->added = 0;
    }
    tg__http_release(h);
}


/* A CURLMSG_DONE for h. */
void
tg__http_done(tg_http_t *h, CURLcode result)
{
    const char  *err = NULL;
    int          rc = 0;

    if (h->cancelled) {
        tg__http_remove(h);
        return;
    }

    if (result != CURLE_OK) {
        err = h->errbuf[0] != '\0' ? h->errbuf : curl_easy_strerror(result);
        /* A kept-alive connection found closed is retried by curl on a
         * fresh one: a refusal there is a refusal too. */
        if (!h->sent || result == CURLE_COULDNT_CONNECT) {
            rc = -ECONNREFUSED;
        } else if (result == CURLE_OPERATION_TIMEDOUT) {
            rc = -ETIMEDOUT;
        } else {
            rc = -EIO;
        }
    }

    (void) curl_multi_remove_handle(h->client->multi, h->easy);
    h->added = 0;

    if (rc == 0 && !h->head_done) {
        tg__http_head(h);
        if (h->cancelled) {
            /* tg_http_cancel released it (not in curl, not added); the
             * memory lives until the close callback. */
            return;
        }
    }
    tg__http_finish(h, rc, err);
}


static void
tg__http_finish(tg_http_t *h, int rc, const char *err)
{
    if (h->added) {
        (void) curl_easy_setopt(h->easy, CURLOPT_FORBID_REUSE, 1L);
        (void) curl_multi_remove_handle(h->client->multi, h->easy);
        h->added = 0;
    }
    h->finishing = 1;
    uv_timer_stop(&h->idle);
    if (h->cb.on_done != NULL) {
        h->cb.on_done(h, rc, err, h->data);
    }
    tg__http_release(h);
}


static void
tg__http_release(tg_http_t *h)
{
    tg_http_client_t  *c = h->client;

    tg_queue_remove(&h->link);
    if (h->queued) {
        tg_queue_remove(&h->pending);
        h->queued = 0;
    }
    c->nactive--;
    uv_timer_stop(&h->idle);
    if (!h->added && !c->closing && c->nspare < TG_HTTP_SPARE_MAX) {
        /* Back to its defaults; curl's connections and caches live in
         * the multi handle, not here. */
        curl_easy_reset(h->easy);
        c->spare[c->nspare++] = h->easy;
    } else {
        curl_easy_cleanup(h->easy);
    }
    h->easy = NULL;
    uv_close((uv_handle_t *) &h->idle, tg__http_close_cb);
}


static void
tg__http_close_cb(uv_handle_t *handle)
{
    tg_http_t         *h = handle->data;
    tg_http_client_t  *c = h->client;

    curl_slist_free_all(h->headers);
    free(h);
    tg__client_handle_closed(c);
}


static void
tg__http_head(tg_http_t *h)
{
    long   status = 0;
    char  *ct = NULL;

    h->head_done = 1;
    (void) curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
    (void) curl_easy_getinfo(h->easy, CURLINFO_CONTENT_TYPE, &ct);
    if (h->cb.on_head != NULL) {
        h->cb.on_head(h, status, ct, h->data);
    }
}


/* (Re)starts the idle clock from now.  Called per received chunk, so it
 * must stay cheap: the timer is re-armed lazily in tg__idle_cb. */
static void
tg__idle_arm(tg_http_t *h)
{
    if (h->idle_ms == 0 || !h->sent || h->paused || h->cancelled) {
        return;
    }
    h->last_rx = uv_now(h->client->loop);
    if (!uv_is_active((uv_handle_t *) &h->idle)) {
        (void) uv_timer_start(&h->idle, tg__idle_cb, h->idle_ms, 0);
    }
}


static void
tg__idle_cb(uv_timer_t *timer)
{
    tg_http_t  *h = timer->data;
    uint64_t    now = uv_now(h->client->loop);
    char        err[96];

    if (now - h->last_rx < (uint64_t) h->idle_ms) {
        (void) uv_timer_start(&h->idle, tg__idle_cb,
                              h->idle_ms - (now - h->last_rx), 0);
        return;
    }
    snprintf(err, sizeof(err), "no data from the server for %ld ms",
             h->idle_ms);
    tg__http_finish(h, -ETIMEDOUT, err);
}


static int
tg__prereq_cb(void *userp, char *primary_ip, char *local_ip,
    int primary_port, int local_port)
{
    tg_http_t  *h = userp;

    (void) primary_ip; (void) local_ip; (void) primary_port;
    (void) local_port;

    h->sent = 1;
    tg__idle_arm(h);
    return CURL_PREREQFUNC_OK;
}


static size_t
tg__header_cb(char *p, size_t size, size_t n, void *userp)
{
    tg_http_t  *h = userp;
    long        status = 0;

    (void) size;    /* always 1 */

    if (h->cancelled) {
        return 0;
    }
    tg__idle_arm(h);

    /* The blank line ends a header block; 1xx blocks are not final. */
    if (!h->head_done && (n == 2 || n == 1) && (p[0] == '\r' || p[0] == '\n'))
    {
        (void) curl_easy_getinfo(h->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 200 || status == 0) {
            tg__http_head(h);
            if (h->cancelled) {
                return 0;
            }
        }
    }
    return n;
}


static size_t
tg__write_cb(char *p, size_t size, size_t n, void *userp)
{
    tg_http_t  *h = userp;

    (void) size;    /* always 1 */

    if (h->cancelled) {
        return 0;
    }
    if (h->paused) {
        h->curl_paused = 1;
        uv_timer_stop(&h->idle);
        return CURL_WRITEFUNC_PAUSE;
    }
    tg__idle_arm(h);
    if (!h->head_done) {
        tg__http_head(h);
        if (h->cancelled) {
            return 0;
        }
        if (h->paused) {
            h->curl_paused = 1;
            uv_timer_stop(&h->idle);
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    if (h->cb.on_body != NULL && n > 0) {
        h->cb.on_body(h, p, n, h->data);
    }
    return h->cancelled ? 0 : n;
}
