/*
 * Prefix index: which backend recently served a prompt's leading blocks,
 * so that a request goes where the LLM server's prefix cache already
 * holds its prompt (DESIGN §6, issue 5).
 *
 * A rendered prompt is cut into fixed blocks of block_tokens tokens,
 * counted as TG_PREFIX_BYTES_PER_TOKEN bytes each (no tokenizer here:
 * block=64 is 256 bytes).  Only whole blocks count, since a server caches
 * whole blocks too; at most max_blocks are looked at.  Block i's hash is
 * XXH3_64bits_withSeed(block i, seed = hash of block i-1), block 0's seed
 * is XXH3_64bits(model), so one hash names a whole prefix of one model.
 * Redis keys are "<prefix>blk:<16 hex digits>".
 *
 * With Redis connected the index is shared (lua/prefix_lookup.lua and
 * lua/prefix_record.lua, one round trip each); otherwise, or when a
 * lookup fails, a local in-memory index with the same semantics answers.
 * Records go to both, so the local index is warm when Redis goes away.
 */

#ifndef TG_STATE_PREFIX_H
#define TG_STATE_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "state/redis.h"
#include "util/queue.h"

#define TG_PREFIX_BYTES_PER_TOKEN  4
#define TG_PREFIX_LOCAL_CAP        8     /* backends per block, local */
#define TG_PREFIX_MAX_MATCHES      32
#define TG_PREFIX_MAX_NAMES        256   /* distinct backends, local */

typedef struct tg_prefix_index_s  tg_prefix_index_t;
typedef struct tg_prefix_op_s     tg_prefix_op_t;

typedef struct {
    unsigned   block_tokens;   /* 0: 64 */
    uint64_t   ttl_ms;         /* 0: 600000; a record older than this
                                  does not count */
    unsigned   cap;            /* backends kept per block, 0: 4 (local
                                  at most TG_PREFIX_LOCAL_CAP) */
    unsigned   max_blocks;     /* 0: 256 (64 KiB at block=64) */
    size_t     local_entries;  /* local blocks, 0: 65536; rounded up to a
                                  power of two */
} tg_prefix_conf_t;

typedef struct {
    const char  *backend;      /* valid during the callback only */
    unsigned     blocks;       /* leading blocks held, >= 1 */
} tg_prefix_match_t;

typedef struct {
    const char  *mode;         /* "shared" (Redis) or "local" */
    uint64_t     lookups;
    uint64_t     hits;         /* lookups where a backend held >= 1 block */
    uint64_t     shared_lookups;
    uint64_t     local_lookups;
    uint64_t     fallbacks;    /* Redis lookups answered locally */
    uint64_t     records;
    uint64_t     record_errors;   /* Redis records that failed */
    uint64_t     local_evictions;
} tg_prefix_stats_t;

/*
 * status 0, or -ECANCELED (tg_prefix_close).  m[n]: the backends that
 * hold the first block, longest first; shared: 1 when Redis answered.
 */
typedef void (*tg_prefix_lookup_cb)(tg_prefix_index_t *idx, int status,
    const tg_prefix_match_t *m, size_t n, int shared, void *data);
typedef void (*tg_prefix_close_cb)(tg_prefix_index_t *idx);

typedef struct tg__prefix_slot_s  tg__prefix_slot_t;

/* Embedded by the owner; fields below data are private. */
struct tg_prefix_index_s {
    void               *data;
    uv_loop_t          *loop;
    tg_redis_t         *redis;     /* NULL: local only */
    tg_prefix_conf_t    conf;
    tg_redis_script_t   lookup_script;
    tg_redis_script_t   record_script;

    tg__prefix_slot_t  *slots;
    size_t              mask;
    char               *names[TG_PREFIX_MAX_NAMES];

    uv_timer_t          defer;     /* delivers local answers */
    tg_queue_t          ops;       /* every pending op, newest first */
    int                 closing;
    tg_prefix_close_cb  close_cb;
    tg_prefix_stats_t   stats;
};

/*
 * redis may be NULL (no Redis configured); lua_dir is only read then
 * (prefix_lookup.lua, prefix_record.lua, read at once).  Returns 0 or a
 * negative errno with a message in err.
 */
int tg_prefix_init(tg_prefix_index_t *idx, uv_loop_t *loop,
    tg_redis_t *redis, const char *lua_dir, const tg_prefix_conf_t *conf,
    char *err, size_t errlen);

/* Pending lookups get -ECANCELED from inside this call; close_cb runs
 * from the loop when idx may be freed.  Close before the tg_redis_t. */
void tg_prefix_close(tg_prefix_index_t *idx, tg_prefix_close_cb close_cb);

/*
 * Chained hashes of prompt's whole blocks, at most max entries.  Returns
 * the number of blocks (0 for a prompt shorter than one block).
 */
size_t tg_prefix_hash_blocks(const char *prompt, size_t len,
    const char *model, unsigned block_tokens, uint64_t *out, size_t max);

/*
 * Asks who holds the prompt's prefix.  The callback always comes from the
 * loop, never before this returns.  *op, when op is not NULL, may be
 * given to tg_prefix_cancel() until then.  Returns 0, -EINVAL, -ENOMEM,
 * or -ENOENT: the prompt has no whole block (no callback; route by load).
 */
int tg_prefix_lookup(tg_prefix_index_t *idx, const char *prompt, size_t len,
    const char *model, tg_prefix_lookup_cb cb, void *data,
    tg_prefix_op_t **op);

void tg_prefix_cancel(tg_prefix_op_t *op);

/*
 * Records that backend now serves this prompt: locally at once, and in
 * Redis when connected (fire and forget; failures are counted).  Returns
 * 0, -ENOENT (no whole block), -EINVAL or -ENOMEM.
 */
int tg_prefix_record(tg_prefix_index_t *idx, const char *prompt, size_t len,
    const char *model, const char *backend);

/* "shared" while Redis is connected, else "local". */
const char *tg_prefix_mode(const tg_prefix_index_t *idx);

void tg_prefix_get_stats(const tg_prefix_index_t *idx,
    tg_prefix_stats_t *out);

/*
 * Routing decision (pure).  A candidate at its max_inflight (when not 0)
 * is not eligible.  Among the eligible, the holder of the longest prefix
 * is chosen unless its in_flight exceeds the least loaded one's by more
 * than max(margin_abs, least's in_flight * margin_pct / 100); then, and
 * when nobody holds a block, the least in flight (first on ties).
 */
typedef struct {
    const char  *name;
    unsigned     in_flight;
    unsigned     max_inflight;     /* 0: unbounded */
    unsigned     matched_blocks;
} tg_prefix_candidate_t;

typedef struct {
    unsigned     margin_abs;       /* default 4 */
    unsigned     margin_pct;       /* default 50 */
} tg_prefix_margin_t;

#define TG_PREFIX_MARGIN_DEFAULT  { 4, 50 }

/* Returns the chosen index, or -1 when no candidate is eligible. */
int tg_prefix_choose(const tg_prefix_candidate_t *c, size_t n,
    const tg_prefix_margin_t *margin);

#endif /* TG_STATE_PREFIX_H */
