/*
 * Prefix index: block hashing, lookups and records through Redis with the
 * local index as fallback, and the routing decision.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <xxhash.h>

#include "state/prefix_int.h"

enum {
    TG__PREFIX_LOOKUP = 0,
    TG__PREFIX_RECORD
};

struct tg_prefix_op_s {
    tg_prefix_index_t    *idx;
    tg_queue_t            link;      /* in idx->ops */
    int                   kind;
    int                   queued;    /* local answer waiting for defer */
    tg_prefix_lookup_cb   cb;
    void                 *data;
    tg_redis_cmd_t       *cmd;
    tg_prefix_match_t     m[TG_PREFIX_MAX_MATCHES];
    size_t                nm;
    size_t                nblocks;
    uint64_t              hash[];
};

static tg_prefix_op_t *tg__prefix_op_new(tg_prefix_index_t *idx, int kind,
    const char *prompt, size_t len, const char *model);
static void tg__prefix_op_free(tg_prefix_op_t *op);
static int tg__prefix_send(tg_prefix_op_t *op, tg_redis_script_t *s,
    int nargs, const char *const *args, tg_redis_cb cb);
static void tg__prefix_on_lookup(tg_redis_t *r, int status,
    redisReply *reply, void *data);
static void tg__prefix_on_record(tg_redis_t *r, int status,
    redisReply *reply, void *data);
static void tg__prefix_answer_locally(tg_prefix_op_t *op);
static void tg__prefix_deliver(tg_prefix_op_t *op, int status, int shared);
static void tg__prefix_on_defer(uv_timer_t *t);
static void tg__prefix_on_closed(uv_handle_t *h);
static uint64_t tg__prefix_wall_ms(void);


int
tg_prefix_init(tg_prefix_index_t *idx, uv_loop_t *loop, tg_redis_t *redis,
    const char *lua_dir, const tg_prefix_conf_t *conf, char *err,
    size_t errlen)
{
    void  *data = idx->data;
    int    rc;

    memset(idx, 0, sizeof(*idx));
    tg_queue_init(&idx->ops);
    idx->data = data;
    idx->loop = loop;
    idx->redis = redis;
    if (conf != NULL) {
        idx->conf = *conf;
    }
    if (idx->conf.block_tokens == 0) {
        idx->conf.block_tokens = 64;
    }
    if (idx->conf.ttl_ms == 0) {
        idx->conf.ttl_ms = 600000;
    }
    if (idx->conf.cap == 0) {
        idx->conf.cap = 4;
    }
    if (idx->conf.max_blocks == 0) {
        idx->conf.max_blocks = 256;
    }
    if (idx->conf.local_entries == 0) {
        idx->conf.local_entries = 65536;
    }
    if (idx->conf.block_tokens > 1 << 20 || idx->conf.max_blocks > 65536
        || idx->conf.local_entries > ((size_t) 1 << 26))
    {
        snprintf(err, errlen, "prefix: block, max_blocks or local_entries "
                 "out of range");
        return -EINVAL;
    }

    if (redis != NULL) {
        rc = tg_redis_script_load(&idx->lookup_script, lua_dir,
                                  "prefix_lookup.lua", err, errlen);
        if (rc != 0) {
            return rc;
        }
        rc = tg_redis_script_load(&idx->record_script, lua_dir,
                                  "prefix_record.lua", err, errlen);
        if (rc != 0) {
            goto failed;
        }
    }
    rc = tg__prefix_local_init(idx);
    if (rc != 0) {
        snprintf(err, errlen, "prefix: out of memory for the local index");
        goto failed;
    }
    rc = uv_timer_init(loop, &idx->defer);
    if (rc != 0) {
        snprintf(err, errlen, "prefix: timer: %s", uv_strerror(rc));
        tg__prefix_local_free(idx);
        goto failed;
    }
    idx->defer.data = idx;
    return 0;

failed:
    tg_redis_script_free(&idx->lookup_script);
    tg_redis_script_free(&idx->record_script);
    return rc;
}


size_t
tg_prefix_hash_blocks(const char *prompt, size_t len, const char *model,
    unsigned block_tokens, uint64_t *out, size_t max)
{
    size_t    bs = (size_t) block_tokens * TG_PREFIX_BYTES_PER_TOKEN, i, n;
    uint64_t  seed;

    if (bs == 0) {
        return 0;
    }
    n = len / bs;
    if (n > max) {
        n = max;
    }
    seed = XXH3_64bits(model ? model : "", model ? strlen(model) : 0);
    for (i = 0; i < n; i++) {
        seed = XXH3_64bits_withSeed(prompt + i * bs, bs, seed);
        out[i] = seed;
    }
    return n;
}


static uint64_t
tg__prefix_wall_ms(void)
{
    struct timespec  ts;

    /* Redis scores are compared across gateways: wall clock, not
     * the loop's monotonic clock. */
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return 0;    /* the script then uses the server's clock */
    }
    return (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
}


static tg_prefix_op_t *
tg__prefix_op_new(tg_prefix_index_t *idx, int kind, const char *prompt,
    size_t len, const char *model)
{
    tg_prefix_op_t  *op;

    op = malloc(sizeof(*op) + idx->conf.max_blocks * sizeof(uint64_t));
    if (op == NULL) {
        return NULL;
    }
    memset(op, 0, sizeof(*op));
    tg_queue_init(&op->link);
    op->idx = idx;
    op->kind = kind;
    op->nblocks = tg_prefix_hash_blocks(prompt, len, model,
                                        idx->conf.block_tokens, op->hash,
                                        idx->conf.max_blocks);
    return op;
}


static void
tg__prefix_link(tg_prefix_op_t *op)
{
    tg_queue_insert_head(&op->idx->ops, &op->link);
}


static void
tg__prefix_op_free(tg_prefix_op_t *op)
{
    tg_queue_remove(&op->link);
    free(op);
}


/* EVALSHA over the op's block keys: "<prefix>blk:<hex>". */
static int
tg__prefix_send(tg_prefix_op_t *op, tg_redis_script_t *s, int nargs,
    const char *const *args, tg_redis_cb cb)
{
    tg_prefix_index_t  *idx = op->idx;
    tg_redis_t         *r = idx->redis;
    size_t              klen = r->prefix_len + 4 + 16 + 1, i;
    const char        **keys;
    char               *p;
    int                 rc;

    keys = malloc(op->nblocks * (sizeof(char *) + klen));
    if (keys == NULL) {
        return -ENOMEM;
    }
    p = (char *) (keys + op->nblocks);
    for (i = 0; i < op->nblocks; i++) {
        snprintf(p, klen, "%sblk:%016llx", r->prefix,
                 (unsigned long long) op->hash[i]);
        keys[i] = p;
        p += klen;
    }
    rc = tg_redis_script_call(r, s, (int) op->nblocks, keys, nargs, args,
                              cb, op, &op->cmd);
    free(keys);
    return rc;
}


int
tg_prefix_lookup(tg_prefix_index_t *idx, const char *prompt, size_t len,
    const char *model, tg_prefix_lookup_cb cb, void *data,
    tg_prefix_op_t **handle)
{
    tg_prefix_op_t  *op;
    const char      *args[2];
    char             now[24], age[24];

    if (cb == NULL || idx->closing || (prompt == NULL && len > 0)) {
        return -EINVAL;
    }
    op = tg__prefix_op_new(idx, TG__PREFIX_LOOKUP, prompt, len, model);
    if (op == NULL) {
        return -ENOMEM;
    }
    if (op->nblocks == 0) {
        free(op);
        return -ENOENT;
    }
    op->cb = cb;
    op->data = data;
    idx->stats.lookups++;

    if (idx->redis != NULL && tg_redis_connected(idx->redis)) {
        snprintf(now, sizeof(now), "%llu",
                 (unsigned long long) tg__prefix_wall_ms());
        snprintf(age, sizeof(age), "%llu",
                 (unsigned long long) idx->conf.ttl_ms);
        args[0] = now;
        args[1] = age;
        if (tg__prefix_send(op, &idx->lookup_script, 2, args,
                            tg__prefix_on_lookup) == 0)
        {
            tg__prefix_link(op);
            if (handle != NULL) {
                *handle = op;
            }
            return 0;
        }
        /* Lost since the check, or out of memory: answer locally. */
    }

    op->nm = tg__prefix_local_lookup(idx, op->hash, op->nblocks, op->m,
                                     TG_PREFIX_MAX_MATCHES);
    op->queued = 1;
    tg__prefix_link(op);
    if (!uv_is_active((uv_handle_t *) &idx->defer)) {
        /* A zero timer: the answer comes on the next loop turn. */
        if (uv_timer_start(&idx->defer, tg__prefix_on_defer, 0, 0) != 0) {
            tg__prefix_op_free(op);
            return -ENOMEM;
        }
    }
    if (handle != NULL) {
        *handle = op;
    }
    return 0;
}


static void
tg__prefix_on_lookup(tg_redis_t *r, int status, redisReply *reply,
    void *data)
{
    tg_prefix_op_t  *op = data;
    size_t           i, n = 0;

    (void) r;
    op->cmd = NULL;
    if (status != 0 || reply->type != REDIS_REPLY_ARRAY
        || reply->elements % 2 != 0)
    {
        op->idx->stats.fallbacks++;
        tg__prefix_answer_locally(op);
        return;
    }
    for (i = 0; i + 1 < reply->elements && n < TG_PREFIX_MAX_MATCHES;
         i += 2)
    {
        redisReply  *name = reply->element[i], *cnt = reply->element[i + 1];

        if (name->type != REDIS_REPLY_STRING
            || cnt->type != REDIS_REPLY_INTEGER || cnt->integer < 1)
        {
            continue;
        }
        op->m[n].backend = name->str;
        op->m[n].blocks = (unsigned) cnt->integer;
        n++;
    }
    op->nm = n;
    tg__prefix_deliver(op, 0, 1);
}


static void
tg__prefix_answer_locally(tg_prefix_op_t *op)
{
    op->nm = tg__prefix_local_lookup(op->idx, op->hash, op->nblocks, op->m,
                                     TG_PREFIX_MAX_MATCHES);
    tg__prefix_deliver(op, 0, 0);
}


static void
tg__prefix_deliver(tg_prefix_op_t *op, int status, int shared)
{
    tg_prefix_index_t  *idx = op->idx;

    if (status == 0) {
        tg__prefix_sort(op->m, op->nm);
        if (op->nm > 0) {
            idx->stats.hits++;
        }
        if (shared) {
            idx->stats.shared_lookups++;
        } else {
            idx->stats.local_lookups++;
        }
    }
    /* Unlinked before the callback, which may close the index. */
    op->queued = 0;
    tg_queue_remove(&op->link);
    op->cb(idx, status, status == 0 ? op->m : NULL, status == 0 ? op->nm : 0,
           shared, op->data);
    free(op);
}


static void
tg__prefix_on_defer(uv_timer_t *t)
{
    tg_prefix_index_t  *idx = t->data;
    tg_prefix_op_t     *op;
    tg_queue_t         *q;
    int                 again = 1;

    /* Restart the scan after each answer: the callback may add or cancel
     * lookups. */
    while (again && !idx->closing) {
        again = 0;
        for (q = tg_queue_head(&idx->ops); q != tg_queue_sentinel(&idx->ops);
             q = tg_queue_next(q))
        {
            op = tg_queue_data(q, tg_prefix_op_t, link);
            if (op->queued) {
                tg__prefix_deliver(op, 0, 0);
                again = 1;
                break;
            }
        }
    }
}


void
tg_prefix_cancel(tg_prefix_op_t *op)
{
    if (op == NULL) {
        return;
    }
    if (op->cmd != NULL) {
        tg_redis_cancel(op->cmd);
    }
    tg__prefix_op_free(op);
}


int
tg_prefix_record(tg_prefix_index_t *idx, const char *prompt, size_t len,
    const char *model, const char *backend)
{
    tg_prefix_op_t  *op;
    const char      *args[4];
    char             ttl[24], cap[16], now[24];
    int              rc;

    if (backend == NULL || backend[0] == '\0' || idx->closing
        || (prompt == NULL && len > 0))
    {
        return -EINVAL;
    }
    op = tg__prefix_op_new(idx, TG__PREFIX_RECORD, prompt, len, model);
    if (op == NULL) {
        return -ENOMEM;
    }
    if (op->nblocks == 0) {
        free(op);
        return -ENOENT;
    }
    idx->stats.records++;

    rc = tg__prefix_local_record(idx, op->hash, op->nblocks, backend);
    if (rc != 0) {
        /* Only the local copy misses it (too many distinct names). */
        idx->stats.local_evictions++;
    }

    if (idx->redis == NULL || !tg_redis_connected(idx->redis)) {
        free(op);
        return 0;
    }
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long) idx->conf.ttl_ms);
    snprintf(cap, sizeof(cap), "%u", idx->conf.cap);
    snprintf(now, sizeof(now), "%llu",
             (unsigned long long) tg__prefix_wall_ms());
    args[0] = backend;
    args[1] = ttl;
    args[2] = cap;
    args[3] = now;
    if (tg__prefix_send(op, &idx->record_script, 4, args,
                        tg__prefix_on_record) != 0)
    {
        idx->stats.record_errors++;
        free(op);
        return 0;
    }
    tg__prefix_link(op);
    return 0;
}


static void
tg__prefix_on_record(tg_redis_t *r, int status, redisReply *reply,
    void *data)
{
    tg_prefix_op_t  *op = data;

    (void) r;
    (void) reply;
    op->cmd = NULL;
    if (status != 0) {
        op->idx->stats.record_errors++;
    }
    tg__prefix_op_free(op);
}


const char *
tg_prefix_mode(const tg_prefix_index_t *idx)
{
    return (idx->redis != NULL && tg_redis_connected(idx->redis))
           ? "shared" : "local";
}


void
tg_prefix_get_stats(const tg_prefix_index_t *idx, tg_prefix_stats_t *out)
{
    *out = idx->stats;
    out->mode = tg_prefix_mode(idx);
}


void
tg_prefix_close(tg_prefix_index_t *idx, tg_prefix_close_cb close_cb)
{
    tg_prefix_op_t  *op;

    if (idx->closing) {
        return;
    }
    idx->closing = 1;
    idx->close_cb = close_cb;
    while (!tg_queue_empty(&idx->ops)) {
        op = tg_queue_data(tg_queue_head(&idx->ops), tg_prefix_op_t, link);
        if (op->cmd != NULL) {
            tg_redis_cancel(op->cmd);
            op->cmd = NULL;
        }
        if (op->kind == TG__PREFIX_LOOKUP) {
            tg__prefix_deliver(op, -ECANCELED, 0);
        } else {
            tg__prefix_op_free(op);
        }
    }
    uv_close((uv_handle_t *) &idx->defer, tg__prefix_on_closed);
}


static void
tg__prefix_on_closed(uv_handle_t *h)
{
    tg_prefix_index_t  *idx = h->data;

    tg__prefix_local_free(idx);
    tg_redis_script_free(&idx->lookup_script);
    tg_redis_script_free(&idx->record_script);
    if (idx->close_cb != NULL) {
        idx->close_cb(idx);
    }
}


int
tg_prefix_choose(const tg_prefix_candidate_t *c, size_t n,
    const tg_prefix_margin_t *margin)
{
    unsigned  abs = margin ? margin->margin_abs : 4;
    unsigned  pct = margin ? margin->margin_pct : 50;
    unsigned  allowed;
    size_t    i;
    int       least = -1, best = -1;

    for (i = 0; i < n; i++) {
        if (c[i].max_inflight != 0 && c[i].in_flight >= c[i].max_inflight) {
            continue;
        }
        if (least < 0 || c[i].in_flight < c[least].in_flight) {
            least = (int) i;
        }
        if (c[i].matched_blocks > 0
            && (best < 0 || c[i].matched_blocks > c[best].matched_blocks
                || (c[i].matched_blocks == c[best].matched_blocks
                    && c[i].in_flight < c[best].in_flight)))
        {
            best = (int) i;
        }
    }
    if (least < 0) {
        return -1;
    }
    if (best < 0) {
        return least;
    }
    allowed = (unsigned) ((uint64_t) c[least].in_flight * pct / 100);
    if (allowed < abs) {
        allowed = abs;
    }
    return (c[best].in_flight - c[least].in_flight > allowed) ? least : best;
}
