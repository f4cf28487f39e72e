/*
 * Prefix cache: an LRU of prompt blocks, like vLLM's automatic prefix
 * caching.  A block's key hashes its bytes and the previous block's key
 * (the first is salted with the model), so a block hits only when the whole
 * prefix before it matches.  Nodes live in one array allocated up front:
 * nothing is allocated per request.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

typedef struct {
    uint64_t key;
    int32_t  prev, next;     /* LRU list, most recent at head */
    int32_t  chain;          /* next node in the same bucket */
    int      used;
} tg_sim_cache_node_t;

struct tg_sim_cache_s {
    tg_sim_cache_node_t *nodes;
    int32_t             *buckets;
    size_t               capacity, size, mask;
    int32_t              head, tail;
};

tg_sim_cache_t *
tg_sim_cache_new(size_t capacity)
{
    tg_sim_cache_t *c = calloc(1, sizeof(*c));
    size_t nb = 16, i;

    if (c == NULL)
        return NULL;
    c->capacity = capacity;
    c->head = c->tail = -1;
    while (nb < capacity * 2)
        nb *= 2;
    c->mask = nb - 1;
    c->buckets = malloc(nb * sizeof(*c->buckets));
    c->nodes = calloc(capacity ? capacity : 1, sizeof(*c->nodes));
    if (c->buckets == NULL || c->nodes == NULL) {
        tg_sim_cache_free(c);
        return NULL;
    }
    for (i = 0; i < nb; i++)
        c->buckets[i] = -1;
    return c;
}

void
tg_sim_cache_free(tg_sim_cache_t *c)
{
    if (c == NULL)
        return;
    free(c->nodes);
    free(c->buckets);
    free(c);
}

size_t
tg_sim_cache_size(const tg_sim_cache_t *c)
{
    return c->size;
}

static int32_t
tg_sim_cache_find(tg_sim_cache_t *c, uint64_t key)
{
    int32_t i = c->buckets[key & c->mask];

    while (i >= 0 && c->nodes[i].key != key)
        i = c->nodes[i].chain;
    return i;
}

static void
tg_sim_cache_unlink(tg_sim_cache_t *c, int32_t i)
{
    tg_sim_cache_node_t *n = &c->nodes[i];

    if (n->prev >= 0)
        c->nodes[n->prev].next = n->next;
    else
        c->head = n->next;
    if (n->next >= 0)
        c->nodes[n->next].prev = n->prev;
    else
        c->tail = n->prev;
}

static void
tg_sim_cache_push_front(tg_sim_cache_t *c, int32_t i)
{
    c->nodes[i].prev = -1;
    c->nodes[i].next = c->head;
    if (c->head >= 0)
        c->nodes[c->head].prev = i;
    c->head = i;
    if (c->tail < 0)
        c->tail = i;
}

static void
tg_sim_cache_touch(tg_sim_cache_t *c, uint64_t key)
{
    int32_t i = tg_sim_cache_find(c, key), *pp;

    if (i >= 0) {
        tg_sim_cache_unlink(c, i);
        tg_sim_cache_push_front(c, i);
        return;
    }
    if (c->size < c->capacity) {
        i = (int32_t) c->size++;
    } else {
        /* Evict the least recently used block from its bucket chain. */
        i = c->tail;
        tg_sim_cache_unlink(c, i);
        pp = &c->buckets[c->nodes[i].key & c->mask];
        while (*pp != i)
            pp = &c->nodes[*pp].chain;
        *pp = c->nodes[i].chain;
    }
    c->nodes[i].key = key;
    c->nodes[i].used = 1;
    c->nodes[i].chain = c->buckets[key & c->mask];
    c->buckets[key & c->mask] = i;
    tg_sim_cache_push_front(c, i);
}

size_t
tg_sim_cache_lookup_insert(tg_sim_cache_t *c, const char *model,
                           const char *text, size_t len, size_t *total)
{
    size_t nblocks = len / TG_SIM_BLOCK_BYTES, b, hits = 0;
    uint64_t key = tg_sim_hash(TG_SIM_HASH_INIT, model, strlen(model) + 1);
    uint64_t *keys;
    int chain = 1;

    *total = nblocks;
    if (c == NULL || c->capacity == 0 || nblocks == 0)
        return 0;
    keys = malloc(nblocks * sizeof(*keys));
    for (b = 0; b < nblocks; b++) {
        key = tg_sim_hash(key, text + b * TG_SIM_BLOCK_BYTES,
                          TG_SIM_BLOCK_BYTES);
        if (chain && tg_sim_cache_find(c, key) >= 0)
            hits++;
        else
            chain = 0;
        if (keys != NULL)
            keys[b] = key;
        else
            tg_sim_cache_touch(c, key);
    }
    /* Touch the last block first, so the LRU evicts a prompt's tail before
     * its head, as vLLM does: a head without its tail still hits. */
    for (b = nblocks; keys != NULL && b-- > 0;)
        tg_sim_cache_touch(c, keys[b]);
    free(keys);
    return hits;
}
