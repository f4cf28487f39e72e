/*
 * Test plugin "score_probe": calls score_kind() on the request's texts
 * (the problem, one text per line) and answers with what came back: the
 * matrix, the device and the kind in the thinkgate summary.  A refused
 * call becomes the error a real strategy would give: 400 for a missing
 * thinkgate_embedder (-ENOTSUP), 503 for a full queue (-EBUSY), 500
 * otherwise, each carrying last_error.  Used by tests/e2e/
 * test_embed_score.py and bench/embed_score.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <thinkgate/plugin.h>

#define SCORE_PROBE_MAX_TEXTS  256

static int score_probe_load(const tg_host_api_t *api, char *err,
    size_t err_size);
static int score_probe_start(tg_req_t *req);
static void score_probe_done(tg_req_t *req, void *data,
    const tg_score_result_t *res);

static const tg_host_api_t  *score_probe_api;

static const tg_option_t  score_probe_options[] = {
    { "kind", TG_OPT_ENUM, "embed", 0, 0, "embed|lexical",
      "which similarity" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

/* The one exported symbol (built with -fvisibility=hidden). */
TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    .name = "score_probe",
    .version = "1.0",
    .description = "score_kind() test plugin",
    .options = score_probe_options,
    .state_size = 0,
    .load = score_probe_load,
    .start = score_probe_start,
};


static int
score_probe_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    if (!TG_HOST_HAS(api, score_kind)) {
        snprintf(err, err_size, "the host has no score_kind()");
        return -ENOTSUP;
    }
    score_probe_api = api;
    return 0;
}


static int
score_probe_start(tg_req_t *req)
{
    const tg_host_api_t      *api = score_probe_api;
    const tg_request_info_t  *info = api->request_info(req);
    const char               *texts[SCORE_PROBE_MAX_TEXTS], *p, *end, *nl;
    size_t                    lens[SCORE_PROBE_MAX_TEXTS], n;
    tg_score_kind_t           kind;
    int                       rc, status;

    kind = strcmp(api->opt_str(req, "kind"), "lexical") == 0
           ? TG_SCORE_KIND_LEXICAL : TG_SCORE_KIND_EMBED;

    n = 0;
    p = info->problem;
    end = p + info->problem_len;
    while (p < end && n < SCORE_PROBE_MAX_TEXTS) {
        nl = memchr(p, '\n', (size_t) (end - p));
        texts[n] = p;
        lens[n] = (size_t) ((nl ? nl : end) - p);
        n++;
        p = nl ? nl + 1 : end;
    }

    rc = api->score_kind(req, kind, texts, lens, n, score_probe_done, NULL);
    if (rc != 0) {
        status = rc == -ENOTSUP ? 400 : rc == -EBUSY ? 503 : 500;
        api->fail(req, status, status == 400 ? "invalid_request_error"
                                             : "server_error",
                  api->last_error(req));
        return rc;
    }
    return 0;
}


static void
score_probe_done(tg_req_t *req, void *data, const tg_score_result_t *res)
{
    const tg_host_api_t  *api = score_probe_api;
    char                  buf[65536];
    size_t                i, len;
    tg_finish_t           fin = { "stop", NULL };

    (void) data;
    if (res->status != 0) {
        api->fail(req, 500, "server_error", res->error);
        return;
    }

    len = 0;
    buf[len++] = '[';
    for (i = 0; i < res->n * res->n && len < sizeof(buf) - 32; i++) {
        len += (size_t) snprintf(buf + len, sizeof(buf) - len, "%s%.6f",
                                 i ? "," : "", res->sim[i]);
    }
    buf[len++] = ']';
    buf[len] = '\0';

    api->summary_json(req, "sim", buf);
    api->summary_str(req, "device", res->device);
    api->summary_str(req, "kind", res->kind == TG_SCORE_KIND_EMBED
                                  ? "embed" : "lexical");
    api->summary_int(req, "n", (int64_t) res->n);
    api->summary_int(req, "dim", (int64_t) res->dim);
    api->emit(req, NULL, 0, "scored", 6);
    api->finish(req, &fin);
}
