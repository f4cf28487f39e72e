/*
 * aux_probe — a test plugin for aux requests to real model servers and
 * for kv: it answers like passthrough (one live trace on the request's
 * pool) while, beside it,
 *
 *   judge=POOL   asks POOL a Yes/No question (chat, max_tokens 1,
 *                temperature 0, top_logprobs) and reports P(Yes) through
 *                plugins/common/judge: judge_status, judge_p_yes (JSON
 *                number, or null with judge_p_error when neither Yes nor
 *                No came back), judge_ntop, judge_top (the alternatives),
 *                judge_content, judge_ms, judge_error;
 *   question=    the question (default: a fact everybody agrees on);
 *   embed=POOL   embeds three texts there: embed_status, embed_n,
 *                embed_dim, embed_norm0, embed_cos01 (two near-equal
 *                texts), embed_cos02 (unrelated ones), embed_ms,
 *                embed_error;
 *   kv=on        kv_set then kv_get of one key: kv_set_rc, kv_set_status,
 *                kv_get_rc, kv_get_status, kv_value, kv_error.
 *
 * The request ends (finish) once the trace and every probe came back, so
 * a probe that hangs shows as a request that hangs; a probe's failure
 * never fails the request.  tests/e2e/test_aux_judge.py and test_kv.py.
 */

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "thinkgate/plugin.h"
#include "common/judge.h"


typedef struct {
    int        live_done;
    int        pending;         /* probes not back yet */
    int        answered;
    uint64_t   judge_t0;
    uint64_t   embed_t0;
    char       kv_key[64];
    char       kv_value[64];
} tg_auxp_t;

static int tg_auxp_load(const tg_host_api_t *api, char *err, size_t n);
static void tg_auxp_unload(void);
static int tg_auxp_start(tg_req_t *req);
static void tg_auxp_on_trace_end(tg_req_t *req, tg_trace_t *t,
    const tg_trace_end_t *e);
static void tg_auxp_on_aux(tg_req_t *req, tg_aux_t *a,
    const tg_aux_result_t *r);
static void tg_auxp_on_cancel(tg_req_t *req);
static void tg_auxp_destroy(tg_req_t *req);

static const tg_host_api_t  *api;
static int                   tag_judge, tag_embed;

static const tg_option_t  tg_auxp_options[] = {
    { "judge", TG_OPT_STRING, "", 0, 0, NULL, "pool to ask Yes/No" },
    { "question", TG_OPT_STRING, "Is Paris the capital of France?", 0, 0,
      NULL, "the Yes/No question" },
    { "top", TG_OPT_INT, "10", 1, 20, NULL, "top_logprobs to ask for" },
    { "embed", TG_OPT_STRING, "", 0, 0, NULL, "pool to embed texts on" },
    { "kv", TG_OPT_BOOL, "off", 0, 0, NULL, "kv_set then kv_get" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    "aux_probe",
    "1.0",
    "judge, embeddings and kv probes beside one live trace; test plugin",
    tg_auxp_options,
    sizeof(tg_auxp_t),
    tg_auxp_load,
    tg_auxp_unload,
    tg_auxp_start,
    NULL,
    tg_auxp_on_trace_end,
    tg_auxp_on_aux,
    NULL,
    tg_auxp_on_cancel,
    tg_auxp_destroy,
};


static int
tg_auxp_load(const tg_host_api_t *a, char *err, size_t n)
{
    if (!TG_HOST_HAS(a, kv_limits)) {
        snprintf(err, n, "aux_probe: needs a host with kv_limits");
        return -ENOTSUP;
    }
    api = a;
    return 0;
}


static void
tg_auxp_unload(void)
{
    api = NULL;
}


static void
tg_auxp_maybe_finish(tg_req_t *req, tg_auxp_t *st)
{
    tg_finish_t  fin = { "stop", NULL };

    if (st->answered || !st->live_done || st->pending > 0) {
        return;
    }
    st->answered = 1;
    (void) api->finish(req, &fin);
}


static void
tg_auxp_kv_got(tg_req_t *req, void *data, int status, const char *value,
    size_t len)
{
    tg_auxp_t  *st = data;
    char        v[64];

    (void) api->summary_int(req, "kv_get_status", status);
    if (status == 0) {
        snprintf(v, sizeof(v), "%.*s", (int) (len < 63 ? len : 63), value);
        (void) api->summary_str(req, "kv_value", v);
    }
    st->pending--;
    tg_auxp_maybe_finish(req, st);
}


static void
tg_auxp_kv_set(tg_req_t *req, void *data, int status, const char *value,
    size_t len)
{
    tg_auxp_t  *st = data;
    int         rc;

    (void) value;
    (void) len;
    (void) api->summary_int(req, "kv_set_status", status);
    rc = status == 0 ? api->kv_get(req, st->kv_key, tg_auxp_kv_got, st)
                     : status;
    (void) api->summary_int(req, "kv_get_rc", rc);
    if (rc != 0) {
        (void) api->summary_str(req, "kv_error", api->last_error(req));
        st->pending--;
        tg_auxp_maybe_finish(req, st);
    }
}


static int
tg_auxp_start_kv(tg_req_t *req, tg_auxp_t *st)
{
    const tg_request_info_t  *info = api->request_info(req);
    int                       rc;

    snprintf(st->kv_key, sizeof(st->kv_key), "probe:%llu",
             (unsigned long long) info->id);
    snprintf(st->kv_value, sizeof(st->kv_value), "value-%llu",
             (unsigned long long) info->id);
    (void) api->summary_str(req, "kv_key", st->kv_key);
    rc = api->kv_set(req, st->kv_key, st->kv_value, strlen(st->kv_value),
                     60000, tg_auxp_kv_set, st);
    (void) api->summary_int(req, "kv_set_rc", rc);
    if (rc != 0) {
        (void) api->summary_str(req, "kv_error", api->last_error(req));
        return 0;
    }
    st->pending++;
    return 0;
}


static void
tg_auxp_start_judge(tg_req_t *req, tg_auxp_t *st, const char *pool)
{
    tg_aux_spec_t  spec = { 0 };
    char           msgs[1024], q[512];
    const char    *s;
    size_t         i, k = 0;

    /* The question into a JSON string: quotes and backslashes escaped,
     * control characters dropped. */
    for (s = api->opt_str(req, "question"); *s != '\0' && k + 2 < sizeof(q);
         s++)
    {
        if (*s == '"' || *s == '\\') {
            q[k++] = '\\';
        }
        if ((unsigned char) *s >= 0x20) {
            q[k++] = *s;
        }
    }
    q[k] = '\0';
    i = (size_t) snprintf(msgs, sizeof(msgs),
        "[{\"role\":\"system\",\"content\":\"You are a judge. Answer "
        "with one word: Yes or No.\"},{\"role\":\"user\",\"content\":"
        "\"%s Answer Yes or No.\"}]", q);
    if (i >= sizeof(msgs)) {
        (void) api->summary_str(req, "judge_error", "question too long");
        return;
    }
    spec.pool = pool;
    spec.endpoint = TG_ENDPOINT_CHAT;
    spec.messages_json = msgs;
    spec.max_tokens = 1;
    spec.temperature = 0;
    spec.top_logprobs = (int32_t) api->opt_int(req, "top");
    spec.data = &tag_judge;
    st->judge_t0 = api->now_ms();
    if (api->aux_start(req, &spec) == NULL) {
        (void) api->summary_str(req, "judge_error", api->last_error(req));
        return;
    }
    st->pending++;
}


static void
tg_auxp_start_embed(tg_req_t *req, tg_auxp_t *st, const char *pool)
{
    static const char *const  texts[] = {
        "The answer is 42, so the box holds 42.",
        "The answer is 42; the box holds 42.",
        "Photosynthesis converts light into chemical energy."
    };
    tg_aux_spec_t  spec = { 0 };

    spec.pool = pool;
    spec.endpoint = TG_ENDPOINT_EMBEDDINGS;
    spec.inputs = texts;
    spec.ninputs = 3;
    spec.data = &tag_embed;
    st->embed_t0 = api->now_ms();
    if (api->aux_start(req, &spec) == NULL) {
        (void) api->summary_str(req, "embed_error", api->last_error(req));
        return;
    }
    st->pending++;
}


static int
tg_auxp_start(tg_req_t *req)
{
    tg_auxp_t        *st = api->state(req);
    tg_trace_spec_t   spec = { 0 };
    const char       *pool;

    spec.temperature = -1;
    spec.flags = TG_TRACE_F_LIVE;
    if (api->trace_start(req, &spec) == NULL) {
        (void) api->fail(req, 502, "server_error", api->last_error(req));
        return -EIO;
    }
    pool = api->opt_str(req, "judge");
    if (pool != NULL && pool[0] != '\0') {
        tg_auxp_start_judge(req, st, pool);
    }
    pool = api->opt_str(req, "embed");
    if (pool != NULL && pool[0] != '\0') {
        tg_auxp_start_embed(req, st, pool);
    }
    if (api->opt_bool(req, "kv")) {
        (void) tg_auxp_start_kv(req, st);
    }
    return 0;
}


static void
tg_auxp_on_trace_end(tg_req_t *req, tg_trace_t *t, const tg_trace_end_t *e)
{
    tg_auxp_t  *st = api->state(req);

    (void) t;
    if (e->state != TG_TRACE_DONE) {
        st->answered = 1;
        (void) api->fail(req, 502, "server_error",
                         e->error ? e->error : "the trace failed");
        return;
    }
    st->live_done = 1;
    tg_auxp_maybe_finish(req, st);
}


static void
tg_auxp_judged(tg_req_t *req, const tg_aux_result_t *r)
{
    tg_judge_t  j;
    char        buf[1024], tok[64];
    size_t      i, k = 0;
    int         rc;

    (void) api->summary_int(req, "judge_ntop", (int64_t) r->ntop);
    snprintf(buf, sizeof(buf), "%.*s",
             (int) (r->content_len < 200 ? r->content_len : 200),
             r->content);
    (void) api->summary_str(req, "judge_content", buf);

    /* The alternatives as {"token": logprob, ...}, for the test's log. */
    k = (size_t) snprintf(buf, sizeof(buf), "{");
    for (i = 0; i < r->ntop && k + 96 < sizeof(buf); i++) {
        size_t  n = 0, c;

        for (c = 0; c < r->top[i].token_len && n + 3 < sizeof(tok); c++) {
            unsigned char  ch = (unsigned char) r->top[i].token[c];

            if (ch == '"' || ch == '\\') {
                tok[n++] = '\\';
            }
            tok[n++] = ch < 0x20 ? '?' : (char) ch;
        }
        tok[n] = '\0';
        k += (size_t) snprintf(buf + k, sizeof(buf) - k, "%s\"%s\":%.6g",
                               i ? "," : "", tok, r->top[i].logprob);
    }
    snprintf(buf + k, sizeof(buf) - k, "}");
    if (api->summary_json(req, "judge_top", buf) != 0) {
        (void) api->summary_str(req, "judge_top", "(not JSON)");
    }

    rc = tg_judge_p_yes(r->top, r->ntop, &j);
    if (rc == 0) {
        snprintf(buf, sizeof(buf), "%.9g", j.p_yes);
        (void) api->summary_json(req, "judge_p_yes", buf);
    } else {
        (void) api->summary_json(req, "judge_p_yes", "null");
        (void) api->summary_str(req, "judge_p_error", rc == -ENOENT
                                ? "neither Yes nor No among the top tokens"
                                : "bad arguments");
    }
}


static void
tg_auxp_embedded(tg_req_t *req, const tg_aux_result_t *r)
{
    double  n0 = 0, c01 = 0, c02 = 0;
    char    buf[32];
    size_t  i, d = r->dim;

    (void) api->summary_int(req, "embed_n", (int64_t) r->nvectors);
    (void) api->summary_int(req, "embed_dim", (int64_t) d);
    if (r->vectors == NULL || r->nvectors != 3) {
        return;
    }
    for (i = 0; i < d; i++) {
        n0 += (double) r->vectors[i] * r->vectors[i];
        c01 += (double) r->vectors[i] * r->vectors[d + i];
        c02 += (double) r->vectors[i] * r->vectors[2 * d + i];
    }
    snprintf(buf, sizeof(buf), "%.6f", sqrt(n0));
    (void) api->summary_json(req, "embed_norm0", buf);
    snprintf(buf, sizeof(buf), "%.6f", c01);
    (void) api->summary_json(req, "embed_cos01", buf);
    snprintf(buf, sizeof(buf), "%.6f", c02);
    (void) api->summary_json(req, "embed_cos02", buf);
}


static void
tg_auxp_on_aux(tg_req_t *req, tg_aux_t *a, const tg_aux_result_t *r)
{
    tg_auxp_t   *st = api->state(req);
    int          judge = r->data == &tag_judge;
    const char  *p = judge ? "judge" : "embed";
    char         key[32];

    (void) a;
    snprintf(key, sizeof(key), "%s_status", p);
    (void) api->summary_int(req, key, r->status);
    snprintf(key, sizeof(key), "%s_http", p);
    (void) api->summary_int(req, key, r->http_status);
    snprintf(key, sizeof(key), "%s_ms", p);
    (void) api->summary_int(req, key, (int64_t) (api->now_ms()
                            - (judge ? st->judge_t0 : st->embed_t0)));
    if (r->status != 0) {
        snprintf(key, sizeof(key), "%s_error", p);
        (void) api->summary_str(req, key, r->error ? r->error : "?");
    } else if (judge) {
        tg_auxp_judged(req, r);
    } else {
        tg_auxp_embedded(req, r);
    }
    st->pending--;
    tg_auxp_maybe_finish(req, st);
}


static void
tg_auxp_on_cancel(tg_req_t *req)
{
    (void) req;
}


static void
tg_auxp_destroy(tg_req_t *req)
{
    (void) req;
}
