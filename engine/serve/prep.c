/*
 * The state steps before a request's strategy starts: which step runs,
 * prefix routing, the summary.  Sessions are in serve/prep_session.c.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "core/strategy.h"
#include "log.h"
#include "openai/responses.h"
#include "route/pool.h"
#include "serve/prep_int.h"

static int tg__prep_render(tg_request_t *r, tg_buf_t *b);
static void tg__prep_on_lookup(tg_prefix_index_t *idx, int status,
    const tg_prefix_match_t *m, size_t n, int shared, void *data);
static void tg__prep_choose(tg_prep_t *p, const tg_prefix_match_t *m,
    size_t n);
static void tg__prep_rank(tg_prep_t *p, tg_prefix_candidate_t *c,
    size_t n);
static const char *tg__prep_model(const tg_request_t *r);
static int tg__prep_session_id(tg_request_t *r, char *idbuf, size_t size,
    const char **id, size_t *idlen, const char **param, tg_oa_error_t *err);


int
tg_prep_run(tg_request_t *r, tg_oa_error_t *err)
{
    tg_pool_t    *pool;
    tg_prep_t    *p;
    const char   *id, *param, *prev;
    char          idbuf[TG_SESSION_ID_MAX + 1];
    size_t        idlen;
    int           session_on, need_prefix;

    pool = r->pool;
    session_on = r->meta.session;

    if (tg__prep_session_id(r, idbuf, sizeof(idbuf), &id, &idlen, &param,
                            err) != 0)
    {
        return -EINVAL;
    }

    need_prefix = pool != NULL && pool->policy == TG_POOL_PREFIX;
    prev = r->oa.responses ? r->oa.responses->previous : NULL;

    if (id != NULL && r->oa.responses != NULL) {
        tg_oa_error_set(err, 400, "invalid_request_error",
                        "session_needs_chat", param,
                        "Sessions do not apply to /v1/responses: chain "
                        "turns with previous_response_id.");
        return -EINVAL;
    }
    if (id == NULL && !need_prefix && prev == NULL) {
        return r->strategy->start(r, err);
    }

    if (id != NULL && !session_on) {
        tg_oa_error_set(err, 400, "invalid_request_error",
                        "sessions_disabled", param,
                        "Sessions are not enabled on this location "
                        "(thinkgate_session).");
        return -EINVAL;
    }
    if (id != NULL && r->oa.endpoint != TG_OA_CHAT) {
        tg_oa_error_set(err, 400, "invalid_request_error",
                        "session_needs_chat", param,
                        "Sessions work with /v1/chat/completions only.");
        return -EINVAL;
    }

    p = calloc(1, sizeof(*p));
    if (p == NULL) {
        tg_oa_error_set(err, 500, NULL, NULL, NULL, "out of memory");
        return -ENOMEM;
    }
    p->r = r;
    p->pool = pool;
    p->link = tg_shared_of(r->engine, r->gen);
    r->prep = p;

    if (id != NULL) {
        return tg__prep_session(p, id, idlen, err);
    }
    if (prev != NULL) {
        return tg__prep_response_load(p, err);
    }

    tg__prep_route(p);
    return 0;
}


/*
 * The request's session id, if any: the body's "thinkgate": {"session"}
 * wins over the X-Thinkgate-Session header, as for strategies.  The
 * body's is copied into idbuf (size bytes) and taken out of the
 * "thinkgate" object.  *param names the id's source for errors.
 * 0, or -EINVAL with err set.
 */
static int
tg__prep_session_id(tg_request_t *r, char *idbuf, size_t size,
    const char **id, size_t *idlen, const char **param, tg_oa_error_t *err)
{
    json_t  *v;

    *id = NULL;
    *idlen = 0;
    *param = "thinkgate.session";
    v = r->oa.thinkgate ? json_object_get(r->oa.thinkgate, "session") : NULL;
    if (v != NULL && !json_is_null(v)) {
        if (!json_is_string(v)) {
            tg_oa_error_set(err, 400, "invalid_request_error",
                            "invalid_session_id", *param,
                            "\"thinkgate\": {\"session\"} must be a string.");
            return -EINVAL;
        }
        /* An id longer than the buffer is invalid anyway: its length
         * stays, so that the check below refuses it. */
        *idlen = json_string_length(v);
        memcpy(idbuf, json_string_value(v), *idlen < size ? *idlen : size);
        *id = idbuf;
    }
    if (v != NULL) {
        /* The session is this step's: the plugin host reads the rest of
         * the object as the client's strategy choice, and no "thinkgate"
         * object at all when the session was all it held. */
        (void) json_object_del(r->oa.thinkgate, "session");
        if (json_object_size(r->oa.thinkgate) == 0) {
            json_decref(r->oa.thinkgate);
            r->oa.thinkgate = NULL;
        }
    }
    if (*id == NULL) {
        if (r->meta.h_session != NULL) {
            *id = r->meta.h_session;
            *idlen = strlen(r->meta.h_session);
            *param = NULL;
        }
    }
    return 0;
}


/* The model salts the first block: a prefix of one model's cache says
 * nothing about another's. */
static const char *
tg__prep_model(const tg_request_t *r)
{
    return r->oa.model ? r->oa.model : "";
}


/*
 * Prefix routing.  Whatever fails here (no index, out of memory, a
 * prompt shorter than one block) routes by load instead: a stateless
 * request never fails for want of the index.
 */
void
tg__prep_route(tg_prep_t *p)
{
    tg_request_t  *r = p->r;
    tg_buf_t       b = { 0 };
    int            rc;

    if (p->pool == NULL || p->pool->policy != TG_POOL_PREFIX
        || p->link == NULL)
    {
        tg__prep_start(p);
        return;
    }

    /* block and ttl_ms are >= 1: defaults and bounds are config's */
    p->idx = tg_shared_index(p->link, (unsigned) p->pool->block,
                             (uint64_t) p->pool->ttl_ms);
    if (p->idx == NULL || tg__prep_render(r, &b) != 0) {
        tg_buf_free(&b);
        tg__prep_start(p);
        return;
    }
    p->prompt = b.data;         /* b owns nothing more */
    p->prompt_len = tg_buf_size(&b);

    /* A session's backend wins; the record keeps the index in step. */
    if (r->prefer != NULL) {
        (void) tg_prefix_record(p->idx, p->prompt, p->prompt_len,
                                tg__prep_model(r), r->prefer->name);
        tg__prep_start(p);
        return;
    }

    rc = tg_prefix_lookup(p->idx, p->prompt, p->prompt_len,
                          tg__prep_model(r), tg__prep_on_lookup, p,
                          &p->prefix_op);
    if (rc != 0) {
        if (rc != -ENOENT) {
            tg_log_warn("request %llu: prefix lookup: %s",
                        (unsigned long long) r->id, strerror(-rc));
        }
        tg__prep_start(p);
    }
}


static void
tg__prep_on_lookup(tg_prefix_index_t *idx, int status,
    const tg_prefix_match_t *m, size_t n, int shared, void *data)
{
    tg_prep_t  *p = data;

    (void) idx;
    (void) shared;
    p->prefix_op = NULL;

    if (status == -ECANCELED) {
        return;                 /* the engine is stopping */
    }
    if (status == 0) {
        tg__prep_choose(p, m, n);
    }
    tg__prep_start(p);
}


/*
 * The holder of the longest prefix unless overloaded, else the least
 * loaded (tg_prefix_choose).  A choice of a holder, or of anyone for a
 * prompt nobody holds, is recorded at once, so that the next request with
 * this prompt finds it even before this one ends.  A request diverted
 * from an overloaded holder is not recorded: one burst would otherwise
 * make a second holder for the whole TTL, the prompt would alternate
 * between them and take cache room on both.
 */
static void
tg__prep_choose(tg_prep_t *p, const tg_prefix_match_t *m, size_t n)
{
    static const tg_prefix_margin_t  margin = TG_PREFIX_MARGIN_DEFAULT;
    tg_prefix_candidate_t            c[64];
    tg_pool_t                       *pool = p->pool;
    tg_backend_t                    *b;
    size_t                           i, j, nc;
    int                              k, full, held;

    held = 0;
    nc = pool->nbackends < 64 ? pool->nbackends : 64;
    for (i = 0; i < nc; i++) {
        b = pool->backends[i];
        c[i].name = b->name;
        c[i].in_flight = (unsigned) b->stats->in_flight;
        c[i].max_inflight = (unsigned) b->max_inflight;
        c[i].matched_blocks = 0;
        for (j = 0; j < n; j++) {
            if (strcmp(m[j].backend, b->name) == 0) {
                c[i].matched_blocks = m[j].blocks;
                held = 1;
                break;
            }
        }
    }

    if (held) {
        tg__prep_rank(p, c, nc);
    }

    k = tg_prefix_choose(c, nc, &margin);
    if (k < 0) {
        return;                 /* every backend full: the trace says 429 */
    }

    if (c[k].matched_blocks > 0) {
        p->link->to_holder++;
        b = pool->backends[k];
        p->prefix_blocks = c[k].matched_blocks;
        p->routed_by = "prefix";
    } else {
        /* Nobody holds it (or the holder is overloaded): the pool's own
         * pick, whose ties rotate, so that new prompts spread out. */
        b = tg_pool_pick(pool, NULL, 0, &full);
        if (b == NULL) {
            return;
        }
    }

    p->r->prefer = b;
    if (held && c[k].matched_blocks == 0) {
        p->link->diverted++;
    } else {
        (void) tg_prefix_record(p->idx, p->prompt, p->prompt_len,
                                tg__prep_model(p->r), b->name);
    }

    tg_log_debug("request %llu: prefix routing to %s (%u blocks held)",
                 (unsigned long long) p->r->id, b->name, p->prefix_blocks);
}


/*
 * Several backends can hold the same longest prefix (requests that raced
 * before the first record landed, an older diversion).  Sending each
 * request to the least loaded of them would keep the prompt cached on
 * all; instead one is preferred by rendezvous hashing on the prompt's
 * first block and the backend's name, the same choice on every gateway,
 * and the others count one block less, so that they serve it only when
 * the preferred one is overloaded and otherwise age out.
 */
static void
tg__prep_rank(tg_prep_t *p, tg_prefix_candidate_t *c, size_t n)
{
    uint64_t  seed, score, best_score = 0;
    unsigned  longest = 0;
    size_t    i;
    int       best = -1;

    if (tg_prefix_hash_blocks(p->prompt, p->prompt_len,
                              tg__prep_model(p->r), p->idx->conf.block_tokens,
                              &seed, 1) == 0)
    {
        return;
    }
    for (i = 0; i < n; i++) {
        if (c[i].matched_blocks > longest) {
            longest = c[i].matched_blocks;
        }
    }
    for (i = 0; i < n; i++) {
        if (c[i].matched_blocks != longest) {
            continue;
        }
        score = XXH3_64bits_withSeed(c[i].name, strlen(c[i].name), seed);
        if (best < 0 || score > best_score) {
            best = (int) i;
            best_score = score;
        }
    }
    for (i = 0; i < n; i++) {
        if ((int) i != best && c[i].matched_blocks == longest) {
            c[i].matched_blocks--;
        }
    }
}


void
tg__prep_start(tg_prep_t *p)
{
    tg_request_t   *r = p->r;
    tg_oa_error_t   err;

    if (r->closed || r->finished) {
        return;
    }
    if (r->strategy->start(r, &err) != 0) {
        tg_request_error(r, &err);
    }
}


/*
 * The prompt as text, stable across requests and gateways: chat is each
 * message's role, a newline, its text (string content, or the text parts
 * of an array) and a newline; completions is the prompt (strings of an
 * array joined by newlines).  Returns 0, -ENOENT (nothing to render) or
 * -ENOMEM.
 */
static int
tg__prep_render(tg_request_t *r, tg_buf_t *b)
{
    json_t      *msgs, *m, *c, *part;
    const char  *role, *text;
    size_t       i, j;
    int          rc = 0;

    if (r->oa.endpoint == TG_OA_CHAT) {
        msgs = json_object_get(tg_oa_body(&r->oa), "messages");
        json_array_foreach(msgs, i, m) {
            role = json_string_value(json_object_get(m, "role"));
            rc |= tg_buf_printf(b, "%s\n", role ? role : "");
            c = json_object_get(m, "content");
            if (json_is_string(c)) {
                rc |= tg_buf_append(b, json_string_value(c),
                                    json_string_length(c));
            } else if (json_is_array(c)) {
                json_array_foreach(c, j, part) {
                    text = json_string_value(json_object_get(part, "text"));
                    if (text != NULL) {
                        rc |= tg_buf_append(b, text, strlen(text));
                    }
                }
            }
            rc |= tg_buf_append(b, "\n", 1);
        }
    } else {
        c = json_object_get(tg_oa_body(&r->oa), "prompt");
        if (json_is_string(c)) {
            rc |= tg_buf_append(b, json_string_value(c),
                                json_string_length(c));
        } else if (json_is_array(c)) {
            json_array_foreach(c, i, part) {
                if (json_is_string(part)) {
                    rc |= tg_buf_append(b, json_string_value(part),
                                        json_string_length(part));
                    rc |= tg_buf_append(b, "\n", 1);
                }
            }
        }
    }

    if (rc != 0) {
        return -ENOMEM;
    }
    if (tg_buf_size(b) == 0) {
        return -ENOENT;
    }
    return 0;
}


void
tg_prep_close(tg_request_t *r)
{
    tg_prep_t  *p = r->prep;

    if (p == NULL) {
        return;
    }
    r->prep = NULL;

    if (p->prefix_op != NULL) {
        tg_prefix_cancel(p->prefix_op);
    }
    tg__prep_session_close(p);
    tg__prep_response_close(p);
    free(p->prompt);
    free(p);
}


int
tg_prep_summary(const tg_request_t *r, json_t *obj)
{
    const tg_prep_t  *p = r->prep;
    int               rc = 0;

    if (p == NULL) {
        return 0;
    }
    if (p->session) {
        rc |= json_object_set_new(obj, "session", json_string(p->id));
        /* null: unknown (a copy reached Redis, or may have, and its
         * reply was lost); false only when known not stored. */
        rc |= json_object_set_new(obj, "session_stored",
                                  p->stored == -2 ? json_null()
                                  : json_boolean(p->stored > 0));
        if (p->stored <= 0) {
            rc |= json_object_set_new(obj, "session_error",
                                      json_string(p->store_error
                                                  ? p->store_error
                                                  : "not stored"));
        }
        rc |= json_object_set_new(obj, "session_turns",
                                  json_integer(p->turns));
        rc |= json_object_set_new(obj, "session_dropped_turns",
                                  json_integer(p->dropping));
    }
    if (p->routed_by != NULL) {
        rc |= json_object_set_new(obj, "routed_by",
                                  json_string(p->routed_by));
        rc |= json_object_set_new(obj, "prefix_blocks",
                                  json_integer(p->prefix_blocks));
    }
    return rc ? -ENOMEM : 0;
}
