/*
 * thinkgate — Symbolic-MoE's LLM pools (see symbolic_moe.c).
 *
 * annotator=POOL: one aux chat request to the pool asks for the query's
 * skill keywords, as the paper's annotator writes them for validation
 * questions; tools/thinkgate-profile asks the same words (it reads the
 * instruction from between the marker comments below) and parses the
 * reply the same way (tools/skill_profile.py).  A failed request or a
 * reply without a usable keyword falls back to the built-in lexicon, and
 * the summary's annotator_fallback says why.
 *
 * aggregator=POOL: once the experts' traces are over, a live trace of
 * the pool reads the question and each expert's final answer with the
 * end of its answer text ("### Model i's response", as in the paper) and
 * writes the final answer, streamed to the client as it comes.  The vote
 * is counted first and stands by: when the aggregator cannot start,
 * fails, or ends without any answer text (a reasoning model cut off while
 * thinking), the vote's winner answers and aggregator_fallback says why.  If
 * part of the aggregator's text was already streamed, a line saying that
 * it failed separates it from the vote's answer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "symbolic_moe.h"

/* annotator prompt begins */
#define TG_MOE_ANNOTATE_INSTRUCTION \
    "List 2-5 short skill keywords (one to three words each) naming the " \
    "knowledge a solver needs for the question below, most important " \
    "first. Reply with the keywords only, comma-separated, nothing else." \
    "\n\nQuestion:\n"
/* annotator prompt ends */

#define TG_MOE_AGGREGATE_INSTRUCTION \
    "Several expert models answered the question below; some of them may " \
    "be wrong. Compare their answers and reasoning, decide which answer " \
    "is right, and write the final answer to the question, ending with " \
    "it in \\boxed{}."

#define TG_MOE_AGG_FAILED \
    "\n\n[symbolic_moe: the aggregator failed; the experts' vote " \
    "follows]\n\n"

static char *tg_moe_messages(tg_req_t *req, const char *text, size_t len);
static int tg_moe_keyword(const char *s, size_t len,
    char out[TG_MOE_KEYWORD_MAX]);
static const char *tg_moe_why(tg_req_t *req, const char *fmt,
    const char *a, const char *b);


/* [{"role":"user","content":text}] in the arena. */
static char *
tg_moe_messages(tg_req_t *req, const char *text, size_t len)
{
    json_t  *doc;
    char    *s, *out = NULL;

    doc = json_pack("[{s:s,s:s%}]", "role", "user", "content", text, len);
    if (doc == NULL) {
        /* Not UTF-8: sent as it is, as the host sends a plugin's text. */
        doc = json_array();
        if (doc != NULL) {
            json_array_append_new(doc, json_pack("{s:s,s:o}", "role", "user",
                "content", json_stringn_nocheck(text, len)));
        }
    }
    s = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (s != NULL) {
        out = tg_moe_api->alloc(req, strlen(s) + 1);
        if (out != NULL) {
            strcpy(out, s);
        }
        free(s);
    }
    return out;
}


/* "fmt" with a and b in the arena, for the summary; a static text when
 * out of memory. */
static const char *
tg_moe_why(tg_req_t *req, const char *fmt, const char *a, const char *b)
{
    char  *s = tg_moe_api->alloc(req, 512);

    if (s == NULL) {
        return "failed";
    }
    snprintf(s, 512, fmt, a != NULL ? a : "", b != NULL ? b : "");
    return s;
}


char *
tg_moe_annotate_prompt(tg_req_t *req, const char *problem, size_t len)
{
    size_t  n = sizeof(TG_MOE_ANNOTATE_INSTRUCTION) - 1;
    char   *text = tg_moe_api->alloc(req, n + len + 1);

    if (text == NULL) {
        return NULL;
    }
    memcpy(text, TG_MOE_ANNOTATE_INSTRUCTION, n);
    if (len > 0) {
        memcpy(text + n, problem, len);
    }
    text[n + len] = '\0';
    return tg_moe_messages(req, text, n + len);
}


/* One candidate keyword, s[0..len) already cut at separators: cleaned
 * into out; 1 when it is a keyword. */
static int
tg_moe_keyword(const char *s, size_t len, char out[TG_MOE_KEYWORD_MAX])
{
    const char  *e = s + len, *c;
    size_t       n = 0, words = 0;
    int          letter = 0, space = 1;

    /* A lead such as "Keywords:" goes; so does a list mark. */
    for (c = e; c > s; c--) {
        if (c[-1] == ':') {
            s = c;
            break;
        }
    }
    for ( ; ; ) {
        while (s < e && isspace((unsigned char) *s)) {
            s++;
        }
        if (s < e && (*s == '-' || *s == '*' || *s == '"' || *s == '\''
                      || *s == '`' || *s == '(' || *s == '['))
        {
            s++;
            continue;
        }
        if (e - s >= 3 && memcmp(s, "\xe2\x80\xa2", 3) == 0) {  /* bullet */
            s += 3;
            continue;
        }
        for (c = s; c < e && isdigit((unsigned char) *c); c++) {
        }
        if (c > s && c < e && (*c == '.' || *c == ')')) {
            s = c + 1;
            continue;
        }
        break;
    }
    /* A closing bracket goes unless it closes one the keyword opened:
     * "(optics)" is optics, "mCPBA (C)" stays whole. */
    while (e > s && (isspace((unsigned char) e[-1]) || e[-1] == '.'
                     || e[-1] == '"' || e[-1] == '\'' || e[-1] == '`'
                     || e[-1] == '*'
                     || (e[-1] == ')' && memchr(s, '(', (size_t) (e - s))
                                         == NULL)
                     || (e[-1] == ']' && memchr(s, '[', (size_t) (e - s))
                                         == NULL)))
    {
        e--;
    }
    if (e - s < 2 || e - s >= TG_MOE_KEYWORD_MAX) {
        return 0;
    }
    for (c = s; c < e; c++) {
        unsigned char  ch = (unsigned char) *c;

        if (strchr("\\{}$=<>|#^", ch) != NULL || ch < 0x20) {
            return 0;
        }
        if (isspace(ch)) {
            if (!space) {
                out[n++] = ' ';
            }
            space = 1;
            continue;
        }
        words += space;
        space = 0;
        letter |= isalpha(ch) || ch >= 0x80;
        out[n++] = (char) tolower(ch);
    }
    while (n > 0 && out[n - 1] == ' ') {
        n--;
    }
    out[n] = '\0';
    return letter && words >= 1 && words <= 4 && n >= 2;
}


size_t
tg_moe_parse_keywords(const char *text, size_t len,
    char (*out)[TG_MOE_KEYWORD_MAX], size_t max, size_t *over)
{
    const char  *p, *e, *cut;
    char         kw[TG_MOE_KEYWORD_MAX];
    size_t       n = 0, i, extra = 0;
    int          dup;

    if (text == NULL) {
        len = 0;
        text = "";
    }
    e = text + len;
    /* Thinking inline: only what follows it is the reply. */
    for (p = text; p + 8 <= e; p++) {
        if (memcmp(p, "</think>", 8) == 0) {
            text = p + 8;
        }
    }
    for (p = text; p < e; p = cut + 1) {
        for (cut = p; cut < e && *cut != ',' && *cut != ';' && *cut != '\n';
             cut++)
        {
        }
        if (!tg_moe_keyword(p, (size_t) (cut - p), kw)) {
            continue;
        }
        for (dup = 0, i = 0; i < n && !dup; i++) {
            dup = strcmp(out[i], kw) == 0;
        }
        if (dup) {
            continue;
        }
        if (n < max) {
            memcpy(out[n++], kw, TG_MOE_KEYWORD_MAX);
        } else {
            extra++;
        }
    }
    if (over != NULL) {
        *over = extra;
    }
    return n;
}


int
tg_moe_annotate_start(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    tg_aux_spec_t             spec;

    memset(&spec, 0, sizeof(spec));
    spec.pool = st->annotator;
    spec.endpoint = TG_ENDPOINT_CHAT;
    spec.messages_json = tg_moe_annotate_prompt(req, info->problem,
                                                info->problem_len);
    spec.max_tokens = (int32_t) api->opt_int(req, "annotator_tokens");
    spec.temperature = 0;
    if (spec.messages_json == NULL) {
        api->fail(req, 500, "server_error", "symbolic_moe: out of memory");
        return -ENOMEM;
    }
    st->annotating = api->aux_start(req, &spec);
    if (st->annotating == NULL) {
        st->annotator_fallback = tg_moe_why(req, "pool %s: %.400s",
                                            st->annotator,
                                            api->last_error(req));
        api->log(req, TG_LOG_WARN, "symbolic_moe: annotator %s",
                 st->annotator_fallback);
        return -EIO;
    }
    /* Without a timer the backend's own timeouts bound the wait. */
    st->annotate_timer = api->timer_start(req,
        (uint64_t) api->opt_int(req, "annotator_timeout_ms"), NULL);
    return 0;
}


void
tg_moe_annotate_timeout(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    char                      ms[32];

    api->aux_cancel(req, st->annotating);
    st->annotating = NULL;
    snprintf(ms, sizeof(ms), "%lld",
             (long long) api->opt_int(req, "annotator_timeout_ms"));
    st->annotator_fallback = tg_moe_why(req, "pool %s: no reply within %s "
                                        "ms", st->annotator, ms);
    api->log(req, TG_LOG_WARN, "symbolic_moe: annotator %s; the lexicon "
             "annotates", st->annotator_fallback);
    st->nkw = tg_skills_annotate(info->problem, info->problem_len, st->kw,
                                 TG_SKILLS_MAX_KEYWORDS);
    tg_moe_annotated(st, req);
}


void
tg_moe_annotate_result(tg_moe_t *st, tg_req_t *req, const tg_aux_result_t *r)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    char                     (*kw)[TG_MOE_KEYWORD_MAX];
    size_t                    n = 0, i;

    kw = api->alloc(req, TG_SKILLS_MAX_KEYWORDS * sizeof(*kw));
    if (r->status != 0) {
        st->annotator_fallback = tg_moe_why(req, "pool %s failed: %.400s",
                                            st->annotator,
                                            r->error != NULL ? r->error
                                                             : "unknown");
    } else if (kw != NULL) {
        n = tg_moe_parse_keywords(r->content, r->content_len, kw,
                                  TG_SKILLS_MAX_KEYWORDS, &st->kw_dropped);
        if (n == 0) {
            st->annotator_fallback = tg_moe_why(req, "pool %s: no keyword "
                                                "in its reply%s",
                                                st->annotator,
                                                r->content_len == 0
                                                ? " (empty)" : "");
        }
    } else {
        st->annotator_fallback = "out of memory";
    }
    if (n == 0) {
        api->log(req, TG_LOG_WARN, "symbolic_moe: annotator %s; the lexicon "
                 "annotates", st->annotator_fallback);
        st->kw_dropped = 0;
        st->nkw = tg_skills_annotate(info->problem, info->problem_len, st->kw,
                                     TG_SKILLS_MAX_KEYWORDS);
    } else {
        for (i = 0; i < n; i++) {
            st->kw[i] = kw[i];
        }
        st->nkw = n;
    }
    tg_moe_annotated(st, req);
}


char *
tg_moe_aggregate_prompt(const tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    const tg_moe_trace_t     *tr, *pick;
    tg_vote_t                 own;
    size_t                    cap, n, i, j, shown = 0;
    int                       lead;
    char                     *text;

    cap = sizeof(TG_MOE_AGGREGATE_INSTRUCTION) + info->problem_len + 64
          + st->nexperts * (TG_ANSWER_MAX + TG_MOE_RATIONALE_MAX + 96);
    text = api->alloc(req, cap);
    if (text == NULL) {
        return NULL;
    }
    n = (size_t) snprintf(text, cap, "%s\n\nQuestion:\n%.*s\n",
                          TG_MOE_AGGREGATE_INSTRUCTION,
                          (int) info->problem_len,
                          info->problem != NULL ? info->problem : "");
    for (i = 0; i < st->nexperts && n < cap; i++) {
        /* The expert's own majority answer, and the text of a trace
         * that gave it (or its first finished one). */
        tg_vote_init(&own);
        pick = NULL;
        for (j = 0; j < st->ntraces; j++) {
            tr = &st->traces[j];
            if (tr->expert == (int) i && tr->has_answer) {
                tg_vote_add(&own, tr->answer, (uint32_t) j);
            }
        }
        lead = tg_vote_leader(&own);
        for (j = 0; j < st->ntraces && pick == NULL; j++) {
            tr = &st->traces[j];
            if (tr->expert == (int) i && tr->done
                && (lead < 0 || (tr->has_answer
                                 && strcmp(tr->answer,
                                           own.groups[lead].answer) == 0)))
            {
                pick = tr;
            }
        }
        if (pick == NULL) {
            continue;       /* every trace of it failed */
        }
        n += (size_t) snprintf(text + n, cap - n, "\n### Model %zu's "
                               "response\nFinal answer: %s\n%s%s\n",
                               ++shown, lead >= 0 ? own.groups[lead].answer
                                                  : "(none stated)",
                               pick->rationale != NULL ? "Its answer ends: "
                                                       : "",
                               pick->rationale != NULL ? pick->rationale
                                                       : "");
    }
    return tg_moe_messages(req, text, n < cap ? n : cap - 1);
}


int
tg_moe_aggregate_start(tg_moe_t *st, tg_req_t *req)
{
    const tg_host_api_t  *api = tg_moe_api;
    tg_trace_spec_t       spec;

    memset(&spec, 0, sizeof(spec));
    spec.pool = st->aggregator;
    spec.messages_json = tg_moe_aggregate_prompt(st, req);
    spec.max_tokens = st->aggregator_tokens;
    spec.temperature = -1;
    spec.flags = TG_TRACE_F_LIVE;
    if (spec.messages_json == NULL) {
        st->aggregator_fallback = "out of memory";
        return -ENOMEM;
    }
    st->agg = api->trace_start(req, &spec);
    if (st->agg == NULL) {
        st->aggregator_fallback = tg_moe_why(req, "pool %s: %.400s",
                                             st->aggregator,
                                             api->last_error(req));
        api->log(req, TG_LOG_WARN, "symbolic_moe: aggregator %s; the vote "
                 "answers", st->aggregator_fallback);
        return -EIO;
    }
    return 0;
}


void
tg_moe_aggregate_ended(tg_moe_t *st, tg_req_t *req, const tg_trace_end_t *e)
{
    const tg_host_api_t      *api = tg_moe_api;
    const tg_request_info_t  *info = api->request_info(req);
    tg_trace_info_t           ti;
    tg_finish_t               fin;
    char                      answer[TG_ANSWER_MAX];
    size_t                    i;
    int                       shown, blank;

    if (api->trace_info(st->agg, &ti) != 0) {
        memset(&ti, 0, sizeof(ti));
    }
    shown = ti.reasoning_len > 0 || ti.content_len > 0;
    for (blank = 1, i = 0; i < ti.content_len && blank; i++) {
        blank = isspace((unsigned char) ti.content[i]);
    }
    if (e->state != TG_TRACE_DONE || blank) {
        /* Failed, or done without a word of answer (a reasoning model
         * cut off while thinking): the vote answers. */
        st->aggregator_fallback = tg_moe_why(req, "pool %s: %.400s",
            st->aggregator, e->state == TG_TRACE_DONE
                            ? "no answer text in its reply"
                            : e->error != NULL ? e->error
                            : e->state == TG_TRACE_CANCELLED ? "cancelled"
                                                             : "failed");
        api->log(req, TG_LOG_WARN, "symbolic_moe: aggregator %s; the vote "
                 "answers", st->aggregator_fallback);
        if (shown && info->stream) {
            api->emit(req, NULL, 0, TG_MOE_AGG_FAILED,
                      sizeof(TG_MOE_AGG_FAILED) - 1);
        }
        tg_moe_answer_vote(st, req);
        return;
    }
    st->answered = 1;
    tg_moe_summary(st, req);
    if (tg_answer_extract_split(ti.reasoning, ti.reasoning_len, ti.content,
                                ti.content_len, &st->opts, answer,
                                sizeof(answer)) > 0)
    {
        api->summary_str(req, "answer", answer);
    } else {
        api->summary_json(req, "answer", "null");
    }
    memset(&fin, 0, sizeof(fin));
    fin.finish_reason = e->finish_reason != NULL && *e->finish_reason
                        ? e->finish_reason : "stop";
    fin.usage_of = st->agg;
    if (api->finish(req, &fin) != 0) {
        api->fail(req, 502, "backend_error", "symbolic_moe: cannot end the "
                  "aggregator's answer");
    }
}
