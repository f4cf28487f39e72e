/*
 * thinkgate — the fake host's entries that call the plugin back later:
 * timers, aux requests, score and kv replies.  Each is a job on the
 * host's list, run by the loop (fake_host_loop.c) when it falls due.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_host_int.h"

static int fake__embed(fake_job_t *j, const tg_aux_spec_t *spec);
static fake_job_t *fake__job(fake_host_t *h, int kind, uint64_t delay,
    void *data);
static int fake__job_stop(tg_req_t *req, void *handle, int kind);
static int fake__kv_reply(fake_host_t *h, tg_kv_cb cb, void *data,
    int status, const char *v, size_t len);


static fake_job_t *
fake__job(fake_host_t *h, int kind, uint64_t delay, void *data)
{
    fake_job_t  *j = calloc(1, sizeof(*j));

    if (j == NULL) {
        snprintf(h->err, sizeof(h->err), "out of memory");
        return NULL;
    }
    j->kind = kind;
    j->active = 1;
    j->due = h->now + delay;
    j->data = data;
    if (h->jobs_tail != NULL) {
        h->jobs_tail->next = j;
    } else {
        h->jobs = j;
    }
    h->jobs_tail = j;
    return j;
}


/* Stops a timer or aux job that has not run: -EALREADY once it has. */
static int
fake__job_stop(tg_req_t *req, void *handle, int kind)
{
    fake_job_t  *j = handle;

    (void) req;
    if (j == NULL || j->kind != kind || !j->active) {
        return -EALREADY;
    }
    j->active = 0;
    return 0;
}


/* Hashed character trigrams of each input, L2-normalised. */
static int
fake__embed(fake_job_t *j, const tg_aux_spec_t *spec)
{
    size_t                i, k, c, len, dim;
    const unsigned char  *p;
    float                *v;
    double                norm;

    dim = spec->dimensions > 0 ? (size_t) spec->dimensions : 32;
    j->vectors = calloc(spec->ninputs * dim, sizeof(float));
    if (j->vectors == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < spec->ninputs; i++) {
        p = (const unsigned char *) spec->inputs[i];
        len = spec->input_lens ? spec->input_lens[i] : strlen((char *) p);
        v = j->vectors + i * dim;
        for (k = 0; k + 3 <= len; k++) {
            v[((p[k] * 31u + p[k + 1]) * 31u + p[k + 2]) % dim] += 1;
        }
        norm = 0;
        for (c = 0; c < dim; c++) {
            norm += (double) v[c] * v[c];
        }
        for (c = 0; norm > 0 && c < dim; c++) {
            v[c] = (float) (v[c] / sqrt(norm));
        }
    }
    j->nvectors = spec->ninputs;
    j->dim = dim;
    return 0;
}


tg_aux_t *
fake_aux_start(tg_req_t *req, const tg_aux_spec_t *spec)
{
    fake_host_t              *h = fake__req(req);
    const fake_aux_script_t  *script = NULL;
    const char               *text;
    fake_job_t               *j;

    if (spec == NULL || spec->pool == NULL) {
        snprintf(h->err, sizeof(h->err), "aux spec without a pool");
        return NULL;
    }
    if (fake__check_open(h, "aux_start") != 0
        || fake__pool_known(h, spec->pool) != 0)
    {
        return NULL;
    }
    if (spec->endpoint < TG_ENDPOINT_CHAT
        || spec->endpoint > TG_ENDPOINT_EMBEDDINGS
        || (spec->endpoint == TG_ENDPOINT_EMBEDDINGS
            && (spec->inputs == NULL || spec->ninputs == 0
                || spec->ninputs > TG_AUX_MAX_INPUTS)))
    {
        snprintf(h->err, sizeof(h->err), "aux: bad endpoint or inputs");
        return NULL;
    }
    if (spec->endpoint != TG_ENDPOINT_EMBEDDINGS
        && h->naux < h->naux_scripts)
    {
        script = &h->aux_scripts[h->naux];
    }
    j = fake__job(h, FAKE_JOB_AUX, script ? script->delay_ms : h->aux_delay,
                  spec->data);
    if (j == NULL) {
        return NULL;
    }
    j->endpoint = spec->endpoint;
    j->script = script;
    if (h->naux < FAKE_HOST_MAX_AUX) {
        text = spec->endpoint == TG_ENDPOINT_COMPLETIONS ? spec->prompt
               : spec->messages_json;
        h->aux_text[h->naux] = strdup(text != NULL ? text : "");
    }
    h->naux++;
    if (script != NULL) {
        j->value = strdup(script->content != NULL ? script->content : "");
        if (j->value == NULL) {
            j->active = 0;
            snprintf(h->err, sizeof(h->err), "out of memory");
            return NULL;
        }
        j->len = strlen(j->value);
        return (tg_aux_t *) j;
    }
    if (spec->endpoint == TG_ENDPOINT_EMBEDDINGS
        && fake__embed(j, spec) != 0)
    {
        j->active = 0;
        snprintf(h->err, sizeof(h->err), "out of memory");
        return NULL;
    }
    if (h->aux_reply != NULL) {
        j->value = strdup(h->aux_reply);
        if (j->value == NULL) {
            j->active = 0;
            snprintf(h->err, sizeof(h->err), "out of memory");
            return NULL;
        }
        j->len = strlen(j->value);
    }
    return (tg_aux_t *) j;
}


tg_aux_t *
fake_aux_start_stop(tg_req_t *req, const tg_aux_spec_t *spec,
    const char *const *stop, size_t nstop)
{
    fake_host_t  *h = fake__req(req);
    fake_job_t   *j;
    size_t        i, sl, cut, total = 0;
    const char   *hit;
    char         *joined;

    if (stop == NULL || nstop == 0 || nstop > TG_AUX_MAX_STOP
        || (spec != NULL && spec->endpoint == TG_ENDPOINT_EMBEDDINGS))
    {
        snprintf(h->err, sizeof(h->err), "aux: bad stop sequences");
        return NULL;
    }
    for (i = 0; i < nstop; i++) {
        sl = stop[i] != NULL ? strlen(stop[i]) : 0;
        if (sl == 0 || sl > TG_AUX_MAX_STOP_LEN) {
            snprintf(h->err, sizeof(h->err), "aux: bad stop sequence");
            return NULL;
        }
        total += sl + 1;
    }
    j = (fake_job_t *) fake_aux_start(req, spec);
    if (j == NULL) {
        return NULL;
    }
    joined = malloc(total);
    if (joined == NULL) {
        j->active = 0;
        snprintf(h->err, sizeof(h->err), "out of memory");
        return NULL;
    }
    joined[0] = '\0';
    for (i = 0; i < nstop; i++) {
        if (i > 0) {
            strcat(joined, "|");
        }
        strcat(joined, stop[i]);
    }
    if (h->naux - 1 < FAKE_HOST_MAX_AUX) {
        h->aux_stop[h->naux - 1] = joined;
    } else {
        free(joined);
    }
    /* A backend ends before the first stop it would write. */
    cut = j->len;
    for (i = 0; j->value != NULL && i < nstop; i++) {
        hit = memmem(j->value, j->len, stop[i], strlen(stop[i]));
        if (hit != NULL && (size_t) (hit - j->value) < cut) {
            cut = (size_t) (hit - j->value);
        }
    }
    j->finish = cut < j->len ? "stop" : "length";
    j->len = cut;
    if (j->value != NULL) {
        j->value[cut] = '\0';
    }
    return (tg_aux_t *) j;
}


int
fake_aux_cancel(tg_req_t *req, tg_aux_t *a)
{
    return fake__job_stop(req, a, FAKE_JOB_AUX);
}


tg_timer_t *
fake_timer_start(tg_req_t *req, uint64_t ms, void *data)
{
    if (fake__check_open(req, "timer_start") != 0) {
        return NULL;
    }
    return (tg_timer_t *) fake__job(req, FAKE_JOB_TIMER, ms, data);
}


int
fake_timer_stop(tg_req_t *req, tg_timer_t *tm)
{
    return fake__job_stop(req, tm, FAKE_JOB_TIMER);
}


uint64_t
fake_now_ms(void)
{
    return fake_host_current != NULL ? fake_host_current->now : 0;
}


/* Cosine of hashed character-trigram counts: the real score's idea.  A
 * score job with the matrix computed; NULL and *rc set on failure. */
static fake_job_t *
fake__score_job(tg_req_t *req, const char *const *texts, const size_t *lens,
    size_t n, void *data, int *rc)
{
    enum { DIM = 256 };
    fake_host_t  *h = fake__req(req);
    fake_job_t   *j;
    float        *v;
    size_t        i, k, c;

    if (texts == NULL || lens == NULL || n == 0) {
        *rc = -EINVAL;
        return NULL;
    }
    v = calloc(n * DIM, sizeof(float));
    if (v == NULL) {
        *rc = -ENOMEM;
        return NULL;
    }
    j = fake__job(h, FAKE_JOB_SCORE, 0, data);
    if (j == NULL || (j->sim = calloc(n * n, sizeof(float))) == NULL) {
        if (j != NULL) {
            j->active = 0;
        }
        free(v);
        *rc = -ENOMEM;
        return NULL;
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k + 3 <= lens[i]; k++) {
            const unsigned char  *p = (const unsigned char *) texts[i] + k;

            v[i * DIM + ((p[0] * 31u + p[1]) * 31u + p[2]) % DIM] += 1;
        }
    }
    for (i = 0; i < n; i++) {
        for (k = 0; k < n; k++) {
            double  dot = 0, ni = 0, nk = 0;

            for (c = 0; c < DIM; c++) {
                dot += v[i * DIM + c] * v[k * DIM + c];
                ni += v[i * DIM + c] * v[i * DIM + c];
                nk += v[k * DIM + c] * v[k * DIM + c];
            }
            j->sim[i * n + k] = ni > 0 && nk > 0
                                ? (float) (dot / sqrt(ni * nk)) : 0;
        }
    }
    free(v);
    j->n = n;
    return j;
}


int
fake_score(tg_req_t *req, const char *const *texts, const size_t *lens,
    size_t n, tg_score_cb cb, void *data)
{
    fake_job_t  *j;
    int          rc = 0;

    if (cb == NULL) {
        return -EINVAL;
    }
    j = fake__score_job(req, texts, lens, n, data, &rc);
    if (j == NULL) {
        return rc;
    }
    j->score_cb = cb;
    return 0;
}


/* score_kind: both kinds answer with the trigram cosine; EMBED only when
 * the test said an embedder is there (fake_host_set_embedder), as the
 * engine refuses it without thinkgate_embedder. */
int
fake_score_kind(tg_req_t *req, tg_score_kind_t kind, const char *const *texts,
    const size_t *lens, size_t n, tg_score_kind_cb cb, void *data)
{
    fake_host_t  *h = fake__req(req);
    fake_job_t   *j;
    int           rc = 0;

    if (cb == NULL
        || (kind != TG_SCORE_KIND_LEXICAL && kind != TG_SCORE_KIND_EMBED))
    {
        return -EINVAL;
    }
    if (kind == TG_SCORE_KIND_EMBED && !h->embedder) {
        snprintf(h->err, sizeof(h->err),
                 "no embedder: add thinkgate_embedder PATH;");
        return -ENOTSUP;
    }
    j = fake__score_job(req, texts, lens, n, data, &rc);
    if (j == NULL) {
        return rc;
    }
    j->score_kind_cb = cb;
    j->score_kind = kind;
    return 0;
}


static int
fake__kv_reply(fake_host_t *h, tg_kv_cb cb, void *data, int status,
    const char *v, size_t len)
{
    fake_job_t  *j;

    if (cb == NULL) {
        return 0;
    }
    j = fake__job(h, FAKE_JOB_KV, 0, data);
    if (j == NULL) {
        return -ENOMEM;
    }
    j->kv_cb = cb;
    j->status = status;
    if (v != NULL) {
        j->value = malloc(len + 1);
        if (j->value == NULL) {
            j->active = 0;
            return -ENOMEM;
        }
        memcpy(j->value, v, len);
        j->value[len] = '\0';
        j->len = len;
    }
    return 0;
}


void
fake_kv_limits(size_t *max_key, size_t *max_value)
{
    if (max_key != NULL) {
        *max_key = TG_KV_MAX_KEY;
    }
    if (max_value != NULL) {
        *max_value = TG_KV_MAX_VALUE;
    }
}


/* The engine's checks (strategy/host_kv.c), in its order. */
static int
fake__kv_check(fake_host_t *h, const char *key, tg_kv_cb cb)
{
    size_t  n;

    if (cb == NULL || key == NULL) {
        snprintf(h->err, sizeof(h->err), "kv: no callback or key");
        return -EINVAL;
    }
    n = strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    "0123456789_.:-");
    if (n == 0 || key[n] != '\0' || n > TG_KV_MAX_KEY) {
        snprintf(h->err, sizeof(h->err), "kv: bad key \"%.64s\"", key);
        return -EINVAL;
    }
    return 0;
}


static int
fake__kv_down(fake_host_t *h)
{
    if (h->kv_down) {
        snprintf(h->err, sizeof(h->err), "kv: no Redis is configured");
        return -ENOTCONN;
    }
    return 0;
}


int
fake_kv_get(tg_req_t *req, const char *key, tg_kv_cb cb, void *data)
{
    fake_host_t  *h = fake__req(req);
    size_t        i;
    int           rc;

    if ((rc = fake__kv_check(h, key, cb)) != 0
        || (rc = fake__kv_down(h)) != 0)
    {
        return rc;
    }
    for (i = 0; i < h->nkv; i++) {
        if (strcmp(h->kv[i].key, key) == 0) {
            return fake__kv_reply(h, cb, data, 0, h->kv[i].value,
                                  h->kv[i].len);
        }
    }
    return fake__kv_reply(h, cb, data, -ENOENT, NULL, 0);
}


int
fake_kv_set(tg_req_t *req, const char *key, const char *v, size_t len,
    uint64_t ttl_ms, tg_kv_cb cb, void *data)
{
    fake_host_t  *h = fake__req(req);
    char         *copy;
    void         *p;
    size_t        i;
    int           rc;

    (void) ttl_ms;
    if ((rc = fake__kv_check(h, key, cb)) != 0) {
        return rc;
    }
    if (v == NULL && len > 0) {
        return -EINVAL;
    }
    if (len > TG_KV_MAX_VALUE) {
        snprintf(h->err, sizeof(h->err), "kv_set: value too large");
        return -EMSGSIZE;
    }
    if ((rc = fake__kv_down(h)) != 0) {
        return rc;
    }
    copy = malloc(len + 1);
    if (copy == NULL) {
        return -ENOMEM;
    }
    if (len > 0) {
        memcpy(copy, v, len);
    }
    copy[len] = '\0';
    for (i = 0; i < h->nkv && strcmp(h->kv[i].key, key) != 0; i++) {
        /* find */
    }
    if (i == h->nkv) {
        p = realloc(h->kv, (h->nkv + 1) * sizeof(h->kv[0]));
        if (p == NULL || (h->kv = p, h->kv[i].key = strdup(key)) == NULL) {
            free(copy);
            return -ENOMEM;
        }
        h->kv[i].value = NULL;
        h->nkv++;
    }
    free(h->kv[i].value);
    h->kv[i].value = copy;
    h->kv[i].len = len;
    return fake__kv_reply(h, cb, data, 0, NULL, 0);
}
