/*
 * Fakes of core and its neighbours for the plugin host's unit test (see
 * fake_core.h).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embed_link.h"
#include "core/shared.h"
#include "fake_core.h"
#include "score/embed_pool.h"
#include "state/redis.h"

fake_core_t  fake_core = { .pool = { .name = "p" } };


void
fake_core_reset(void)
{
    size_t  i;

    for (i = 0; i < fake_core.ntraces; i++) {
        json_decref(fake_core.traces[i]->body);
        free(fake_core.traces[i]->text.p);
        free(fake_core.traces[i]);
        fake_core.traces[i] = NULL;
        fake_core.cancelled[i] = 0;
    }
    fake_core.ntraces = 0;
    tg_buf_free(&fake_core.data);
    json_decref(fake_core.figures);
    fake_core.figures = NULL;
    tg_buf_free(&fake_core.figures_text);
    fake_core.head_status = 0;
    fake_core.ended = 0;
    fake_core.errored = 0;
    memset(&fake_core.error, 0, sizeof(fake_core.error));
}


/* ---- core/request.h: output ------------------------------------------ */

int
tg_request_head(tg_request_t *r, int status, unsigned flags,
    const char *headers)
{
    (void) flags;
    (void) headers;
    if (fake_core.head_status != 0 || fake_core.ended || fake_core.errored) {
        return -EPIPE;
    }
    fake_core.head_status = status;
    r->head_pending = 1;        /* as core queues it */
    return 0;
}


int
tg_request_data(tg_request_t *r, const void *p, size_t n)
{
    (void) r;
    if (fake_core.ended || fake_core.errored) {
        return -EPIPE;
    }
    return tg_buf_append(&fake_core.data, p, n);
}


int
tg_request_end(tg_request_t *r, json_t *figures)
{
    (void) r;
    if (fake_core.ended || fake_core.errored) {
        json_decref(figures);
        return -EPIPE;
    }
    fake_core.ended = 1;
    fake_core.figures = figures;
    return 0;
}


int
tg_request_end_text(tg_request_t *r, const char *figures, size_t n)
{
    (void) r;
    if (fake_core.ended || fake_core.errored) {
        return -EPIPE;
    }
    fake_core.ended = 1;
    fake_core.figures_text.start = fake_core.figures_text.len = 0;
    return tg_buf_append(&fake_core.figures_text, figures, n);
}


int
tg_request_error(tg_request_t *r, const tg_oa_error_t *err)
{
    (void) r;
    if (fake_core.ended || fake_core.errored) {
        return -EPIPE;
    }
    fake_core.errored = 1;
    fake_core.error = *err;
    return 0;
}


/* ---- core/trace.h ---------------------------------------------------- */

int
tg_trace_start_on(tg_request_t *r, tg_pool_t *pool, tg_backend_t *only,
    int endpoint, json_t *body, int stream, tg_trace_t **out,
    tg_oa_error_t *err)
{
    tg_trace_t  *t;

    (void) only;
    if (fake_core.ntraces == FAKE_CORE_MAX_TRACES) {
        tg_oa_error_set(err, 429, NULL, NULL, NULL, "fake: no slot");
        return -EBUSY;
    }
    t = calloc(1, sizeof(*t));
    if (t == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    t->req = r;
    t->index = (unsigned) fake_core.ntraces;
    t->pool = pool;
    t->endpoint = endpoint;
    t->stream = stream;
    t->body = json_incref(body);
    fake_core.traces[fake_core.ntraces++] = t;
    *out = t;
    return 0;
}


/* A written body is kept as the trace's text and read into its tree as
 * well, so that a test reads either. */
int
tg_trace_start_text(tg_request_t *r, tg_pool_t *pool, tg_backend_t *only,
    int endpoint, tg_trace_text_t *text, int stream, tg_trace_t **out,
    tg_oa_error_t *err)
{
    json_t  *body;
    int      rc;

    body = json_loadb(text->p, text->len, 0, NULL);
    if (body == NULL) {
        free(text->p);
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "fake: the written "
                        "body is not JSON");
        return -EINVAL;
    }
    rc = tg_trace_start_on(r, pool, only, endpoint, body, stream, out, err);
    json_decref(body);
    if (rc != 0) {
        free(text->p);
        return rc;
    }
    (*out)->text = *text;
    return 0;
}


int
tg_trace_restart(tg_trace_t *t, json_t *body, tg_oa_error_t *err)
{
    (void) t;
    (void) body;
    tg_oa_error_set(err, 500, NULL, NULL, NULL, "fake: no restart");
    return -ENOTSUP;
}


void
tg_trace_cancel(tg_trace_t *t)
{
    fake_core.cancelled[t->index]++;
    t->ended = 1;
}


int
tg_trace_error(tg_trace_t *t, tg_oa_error_t *err)
{
    if (t->rc == 0 && t->status >= 200 && t->status < 300) {
        return 0;
    }
    tg_oa_error_set(err, 502, "server_error", NULL, NULL,
                    "fake: trace %u failed", t->index);
    return 1;
}


/* ---- config/generation.h --------------------------------------------- */

tg_pool_t *
tg_generation_pool(tg_generation_t *g, const char *name)
{
    (void) g;
    return name != NULL && strcmp(name, fake_core.pool.name) == 0
           ? &fake_core.pool : NULL;
}


tg_backend_t *
tg_generation_backend(tg_generation_t *g, const char *name)
{
    (void) g;
    (void) name;
    return NULL;
}


/* serve/ (client keys, sessions, stored responses) is reached through
 * engine->host_hooks, left NULL here: no key, no session, nothing stored. */


/* ---- Redis and the embedder: not configured --------------------------- */

tg_shared_t *
tg_shared_of(tg_engine_t *e, const tg_generation_t *g)
{
    (void) e;
    (void) g;
    return NULL;
}


int
tg_redis_connected(const tg_redis_t *r)
{
    (void) r;
    return 0;
}


int
tg_redis_command(tg_redis_t *r, int argc, const char **argv,
    const size_t *argvlen, tg_redis_cb cb, void *data,
    tg_redis_cmd_t **handle)
{
    (void) r;
    (void) argc;
    (void) argv;
    (void) argvlen;
    (void) cb;
    (void) data;
    (void) handle;
    return -ENOTCONN;
}


void
tg_redis_cancel(tg_redis_cmd_t *c)
{
    (void) c;
}


tg_embed_pool_t *
tg_embed_of(tg_engine_t *e, const tg_generation_t *g)
{
    (void) e;
    (void) g;
    return NULL;
}


const char *
tg_embed_pool_device(const tg_embed_pool_t *p)
{
    (void) p;
    return "cpu";
}


int
tg_embed_pool_submit(tg_embed_pool_t *p, const char *const *texts,
    const size_t *lens, size_t n, tg_embed_done_cb cb, void *data,
    tg_embed_job_t **job, char *err, size_t errlen)
{
    (void) p;
    (void) texts;
    (void) lens;
    (void) n;
    (void) cb;
    (void) data;
    (void) job;
    snprintf(err, errlen, "fake: no embedder");
    return -ENOTSUP;
}


void
tg_embed_job_cancel(tg_embed_job_t *job)
{
    (void) job;
}
