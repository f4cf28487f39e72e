/*
 * A trace's backend body written from the client's text: the client's
 * top-level members as they came (openai/request.h keeps where they are),
 * the ones a trace drops left out, the ones it sets written in their
 * place, new ones last.  The members and their order are those the tree
 * path (tg__host_trace_body_as: a copy of the body, json_object_del and
 * json_object_set_new, then a dump) gives, without copying, editing and
 * dumping a tree per trace.
 */

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "strategy/host.h"
#include "util/jdump.h"
#include "util/jstr.h"

/* The members a trace sets, in the order the tree path adds the ones
 * the client did not give. */
enum {
    TG__BODY_MAX_TOKENS = 0,
    TG__BODY_TEMPERATURE,
    TG__BODY_SEED,
    TG__BODY_LOGPROBS,
    TG__BODY_STREAM,
    TG__BODY_STREAM_OPTIONS,
    TG__BODY_NSET
};

static const char *const  tg__body_set_names[TG__BODY_NSET] = {
    "max_tokens", "temperature", "seed", "logprobs", "stream",
    "stream_options"
};

/* What the tree path sets "stream_options" to, as it dumps. */
static const char  tg__body_stream_options[] =
    "{\"include_usage\":true,\"continuous_usage_stats\":true}";

typedef struct {
    tg_host_req_t          *hr;
    const tg_trace_spec_t  *spec;
    uint32_t                index;
    int                     whole;
    unsigned                set;        /* 1 << TG__BODY_*: written */
    unsigned                given;      /* ... and given by the client */
} tg__body_t;


static int
tg__body_is(const tg_jmember_t *m, const char *text, const char *name)
{
    size_t  n = strlen(name);

    return m->key_len == n && memcmp(text + m->key, name, n) == 0;
}


/* Whether the trace leaves the client's member out. */
static int
tg__body_dropped(const tg__body_t *bd, const tg_jmember_t *m,
    const char *text)
{
    return tg__body_is(m, text, "thinkgate") || tg__body_is(m, text, "n")
           || tg__body_is(m, text, "best_of")
           || (!bd->hr->effort_native
               && tg__body_is(m, text, "reasoning_effort"))
           || (bd->spec->max_tokens > 0
               && tg__body_is(m, text, "max_completion_tokens"))
           || (bd->whole && tg__body_is(m, text, "stream_options"));
}


/* Which members the trace sets (the bits of bd->set). */
static void
tg__body_plan(tg__body_t *bd)
{
    const tg_trace_spec_t  *spec = bd->spec;
    tg_host_req_t          *hr = bd->hr;

    bd->set = 1u << TG__BODY_STREAM;
    if (!bd->whole) {
        bd->set |= 1u << TG__BODY_STREAM_OPTIONS;
    }
    if (spec->max_tokens > 0) {
        bd->set |= 1u << TG__BODY_MAX_TOKENS;
    }
    if (spec->temperature >= 0) {
        bd->set |= 1u << TG__BODY_TEMPERATURE;
    }
    if (spec->seed_mode == 1 || hr->info.has_seed) {
        bd->set |= 1u << TG__BODY_SEED;
    }
    if (spec->flags & TG_TRACE_F_LOGPROBS) {
        bd->set |= 1u << TG__BODY_LOGPROBS;
    }
}


/* The value the trace gives member k; val the client's (NULL when it
 * gave none). */
static int
tg__body_value(tg__body_t *bd, int k, tg_buf_t *b, const char *val,
    size_t vlen)
{
    const tg_trace_spec_t  *spec = bd->spec;
    tg_host_req_t          *hr = bd->hr;
    int64_t                 n;

    switch (k) {
    case TG__BODY_MAX_TOKENS:
        return tg_jstr_int(b, spec->max_tokens);
    case TG__BODY_TEMPERATURE:
        return tg_json_dump_real(b, spec->temperature);
    case TG__BODY_SEED:
        /* Distinct samples of one seeded request, reproducibly. */
        return tg_jstr_int(b, spec->seed_mode == 1
                              ? spec->seed
                              : hr->info.seed + (int64_t) bd->index);
    case TG__BODY_LOGPROBS:
        if (hr->r->oa.endpoint == TG_OA_CHAT) {
            return tg_buf_append(b, "true", 4);
        }
        /* A completions request's own count of logprobs stays. */
        if (val != NULL && tg_oa_int(&hr->r->oa, "logprobs", &n)) {
            return tg_buf_append(b, val, vlen);
        }
        return tg_buf_append(b, "1", 1);
    case TG__BODY_STREAM:
        return bd->whole ? tg_buf_append(b, "false", 5)
                         : tg_buf_append(b, "true", 4);
    default:
        return tg_buf_append(b, tg__body_stream_options,
                             sizeof(tg__body_stream_options) - 1);
    }
}


/* One member: `,"key":value` (no comma first), the value the trace's or
 * the client's; the model's place noted. */
static int
tg__body_member(tg__body_t *bd, const tg_jmember_t *m, const char *text,
    tg_buf_t *b, tg_trace_text_t *out)
{
    int  k, rc;

    rc = tg_buf_size(b) > 1 ? tg_buf_append(b, ",\"", 2)
                            : tg_buf_append(b, "\"", 1);
    rc |= tg_buf_append(b, text + m->key, m->key_len);
    rc |= tg_buf_append(b, "\":", 2);
    for (k = 0; k < TG__BODY_NSET; k++) {
        if ((bd->set & (1u << k)) && tg__body_is(m, text, tg__body_set_names[k]))
        {
            bd->given |= 1u << k;
            return rc | tg__body_value(bd, k, b, text + m->val, m->val_len);
        }
    }
    if (tg__body_is(m, text, "model")) {
        out->model_at = tg_buf_size(b);
        out->model_len = m->val_len;
    }
    return rc | tg_buf_append(b, text + m->val, m->val_len);
}


/*
 * The body of trace number index as text, when it can be written from
 * the client's members: 0 with out filled, 1 when it cannot (the body
 * changed since it was parsed, or the trace replaces messages or
 * continues an answer: the tree path writes it), -ENOMEM.
 */
int
tg__host_trace_text(tg_host_req_t *hr, const tg_trace_spec_t *spec,
    uint32_t index, int whole, tg_trace_text_t *out)
{
    const tg_oa_request_t  *oa = &hr->r->oa;
    tg__body_t              bd = { hr, spec, index, whole, 0, 0 };
    tg_buf_t                b = { 0 };
    size_t                  i;
    int                     k, rc;

    if (oa->text == NULL || oa->nmembers == 0 || spec->messages_json != NULL
        || spec->assistant_prefix != NULL)
    {
        return 1;
    }
    memset(out, 0, sizeof(*out));
    tg__body_plan(&bd);

    rc = tg_buf_append(&b, "{", 1);
    for (i = 0; i < oa->nmembers && rc == 0; i++) {
        if (!tg__body_dropped(&bd, &oa->members[i], oa->text)) {
            rc = tg__body_member(&bd, &oa->members[i], oa->text, &b, out);
        }
    }
    for (k = 0; k < TG__BODY_NSET && rc == 0; k++) {
        if ((bd.set & (1u << k)) && !(bd.given & (1u << k))) {
            rc = tg_buf_size(&b) > 1 ? tg_buf_append(&b, ",\"", 2)
                                     : tg_buf_append(&b, "\"", 1);
            rc |= tg_buf_append(&b, tg__body_set_names[k],
                                strlen(tg__body_set_names[k]));
            rc |= tg_buf_append(&b, "\":", 2);
            rc |= tg__body_value(&bd, k, &b, NULL, 0);
        }
    }
    rc |= tg_buf_append(&b, "}", 1);
    if (rc != 0 || tg_buf_cstr(&b) == NULL) {
        tg_buf_free(&b);
        tg__host_set_error(hr, "out of memory");
        return -ENOMEM;
    }
    if (out->model_len == 0) {
        out->model_at = tg_buf_size(&b) - 1;
    }
    out->len = tg_buf_size(&b);
    out->p = b.data;
    return 0;
}
