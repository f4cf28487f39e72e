/*
 * thinkgate — DeepPrune's report (see deepprune.h): the "thinkgate"
 * summary entries and the JSON strings they and the llm judge's prompt
 * need.
 */

#include <stdio.h>
#include <string.h>

#include "deepprune.h"


/*
 * The summary: clusters (size, representative, its answer), the pruned
 * traces and their tokens when cancelled, the judge's calls, time and
 * failures, and whether it degraded to plain voting.  tokens_saved_est
 * is null: the tokens a pruned trace would have generated are unknown
 * here (a backend does not say how long a cancelled generation would
 * have run).
 */
void
tg_dp_summary(const tg_host_api_t *api, tg_req_t *req, tg_dp_t *st)
{
    static const char *const  judges[] = { "lexical", "embed", "llm",
                                           "pool" };
    const tg_cluster_t       *c = &st->clusters;
    size_t                    cap, len = 0;
    uint32_t                  k, i, rep, npruned = 0;
    char                     *buf, *ans;
    int                       w;

    cap = 64 + (size_t) c->nclusters * (80 + 6 * TG_ANSWER_MAX)
          + (size_t) st->samples.n * 40;
    buf = api->alloc(req, cap);
    if (buf == NULL) {
        api->log(req, TG_LOG_ERROR, "deepprune: out of memory for the "
                 "summary");
        return;
    }
    buf[len++] = '[';
    for (k = 0; k < c->nclusters; k++) {
        rep = c->groups[k].members[0];
        ans = NULL;
        if (st->samples.slots[rep].has_answer) {
            ans = tg_dp_json_str(api, req, st->samples.slots[rep].answer,
                                 strlen(st->samples.slots[rep].answer));
        }
        w = snprintf(buf + len, cap - len, "%s{\"size\":%u,"
                     "\"representative\":%u,\"answer\":%s}",
                     k > 0 ? "," : "", c->groups[k].size, rep,
                     ans != NULL ? ans : "null");
        len += w > 0 && (size_t) w < cap - len ? (size_t) w : 0;
    }
    snprintf(buf + len, cap - len, "]");
    api->summary_json(req, "clusters", buf);

    len = 0;
    buf[len++] = '[';
    for (i = 0; i < st->samples.n; i++) {
        if (st->tr[i].phase != TG_DP_PRUNED) {
            continue;
        }
        w = snprintf(buf + len, cap - len, "%s{\"trace\":%u,\"tokens\":%u}",
                     npruned++ > 0 ? "," : "", i, st->tr[i].pruned_at);
        len += w > 0 && (size_t) w < cap - len ? (size_t) w : 0;
    }
    snprintf(buf + len, cap - len, "]");
    api->summary_json(req, "pruned", buf);
    api->summary_int(req, "traces_pruned", npruned);
    api->summary_str(req, "judge", judges[st->judge]);
    api->summary_str(req, "vote", st->representative ? "representative"
                                                     : "weighted");
    api->summary_int(req, "prefix_tokens", st->prefix_tokens);
    api->summary_int(req, "judge_calls", st->judge_calls);
    api->summary_int(req, "judge_ms", st->judge_ms);
    api->summary_int(req, "judge_failures", st->judge_failures);
    api->summary_json(req, "degraded", st->degraded ? "true" : "false");
    api->summary_json(req, "tokens_saved_est", "null");
}


char *
tg_dp_json_str(const tg_host_api_t *api, tg_req_t *req, const char *s,
    size_t len)
{
    static const char  hex[] = "0123456789abcdef";
    char              *out = api->alloc(req, 6 * len + 3), *p;
    unsigned char      ch;
    size_t             i;

    if (out == NULL) {
        return NULL;
    }
    p = out;
    *p++ = '"';
    for (i = 0; i < len; i++) {
        ch = (unsigned char) s[i];
        if (ch == '"' || ch == '\\') {
            *p++ = '\\';
            *p++ = (char) ch;
        } else if (ch == '\n') {
            *p++ = '\\';
            *p++ = 'n';
        } else if (ch < 0x20) {
            *p++ = '\\';
            *p++ = 'u';
            *p++ = '0';
            *p++ = '0';
            *p++ = hex[ch >> 4];
            *p++ = hex[ch & 0xf];
        } else {
            *p++ = (char) ch;
        }
    }
    *p++ = '"';
    *p = '\0';
    return out;
}
