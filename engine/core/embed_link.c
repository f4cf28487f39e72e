/*
 * Embedders: one embed service per distinct "embedder" settings, kept
 * across generations (core/embed_link.h); their status figures.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/embed_link.h"
#include "log.h"

static int tg__embed_note(tg_embed_link_t *l, uint32_t id);
static void tg__embed_sweep(tg_engine_t *e);

static const char  *tg__embed_devices[] = { "auto", "cpu", "cuda" };


int
tg_embed_attach(tg_engine_t *e, tg_generation_t *g, char *err,
    size_t errlen)
{
    const tg_embedder_settings_t  *es = &g->embedder_settings;
    tg_embed_pool_conf_t           pc;
    tg_embed_link_t               *l;
    char                          *key;
    int                            rc;

    if (g->embedder == NULL) {
        tg__embed_sweep(e);
        return 0;
    }
    key = json_dumps(g->embedder, JSON_COMPACT | JSON_SORT_KEYS);
    if (key == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    for (l = e->embeds; l != NULL; l = l->next) {
        if (strcmp(l->key, key) == 0) {
            break;
        }
    }

    if (l == NULL) {
        l = calloc(1, sizeof(*l));
        if (l == NULL) {
            free(key);
            snprintf(err, errlen, "out of memory");
            return -ENOMEM;
        }
        memset(&pc, 0, sizeof(pc));
        pc.path = es->path;
        pc.threads = (int) es->threads;
        /* device=auto (the directive's default) defers to the engine's
         * --score-device, whose default is auto too. */
        pc.device = es->device != 0 ? es->device : e->score_device;
        pc.max_batch = (size_t) es->max_batch;
        rc = tg_embed_pool_open(e->loop, &pc, &l->pool, err, errlen);
        if (rc != 0) {
            free(l);
            free(key);
            return rc;
        }
        l->key = key;
        l->next = e->embeds;
        e->embeds = l;
        if (tg_embed_pool_note(l->pool)[0] != '\0') {
            tg_log_warn("embedder %s: device=%s runs on the CPU: %s",
                        es->path, tg__embed_devices[pc.device],
                        tg_embed_pool_note(l->pool));
        }
        tg_log_info("embedder %s: device %s, threads %d, max_batch %zu",
                    es->path, tg_embed_pool_device(l->pool), pc.threads,
                    pc.max_batch);
    } else {
        free(key);
    }

    rc = tg__embed_note(l, g->id);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }
    tg__embed_sweep(e);
    return 0;
}


static int
tg__embed_note(tg_embed_link_t *l, uint32_t id)
{
    uint32_t  *ids;
    size_t     i;

    for (i = 0; i < l->ngens; i++) {
        if (l->gens[i] == id) {
            return 0;
        }
    }
    if (l->ngens == l->cap) {
        ids = realloc(l->gens, (l->cap ? l->cap * 2 : 4) * sizeof(*ids));
        if (ids == NULL) {
            return -ENOMEM;
        }
        l->gens = ids;
        l->cap = l->cap ? l->cap * 2 : 4;
    }
    l->gens[l->ngens++] = id;
    return 0;
}


/* Forgets generations that are gone and closes embedders nobody uses.
 * Live requests hold their generation, so no live request has a job on
 * a closed embedder. */
static void
tg__embed_sweep(tg_engine_t *e)
{
    tg_embed_link_t  *l, **pp;
    tg_generation_t  *g;
    size_t            i, j;

    for (pp = &e->embeds; (l = *pp) != NULL; ) {
        for (i = 0, j = 0; i < l->ngens; i++) {
            for (g = e->config.generations; g != NULL; g = g->next) {
                if (g->id == l->gens[i]) {
                    l->gens[j++] = l->gens[i];
                    break;
                }
            }
        }
        l->ngens = j;
        if (l->ngens > 0) {
            pp = &l->next;
            continue;
        }
        *pp = l->next;
        tg_log_info("embedder \"%.200s\" unused: closing", l->key);
        tg_embed_pool_close(l->pool);
        free(l->gens);
        free(l->key);
        free(l);
    }
}


tg_embed_pool_t *
tg_embed_of(tg_engine_t *e, const tg_generation_t *g)
{
    tg_embed_link_t  *l;
    size_t            i;

    if (g == NULL || g->embedder == NULL) {
        return NULL;
    }
    for (l = e->embeds; l != NULL; l = l->next) {
        for (i = 0; i < l->ngens; i++) {
            if (l->gens[i] == g->id) {
                return l->pool;
            }
        }
    }
    return NULL;
}


void
tg_embed_close_all(tg_engine_t *e)
{
    tg_embed_link_t  *l, *next;

    for (l = e->embeds, e->embeds = NULL; l != NULL; l = next) {
        next = l->next;
        tg_embed_pool_close(l->pool);
        free(l->gens);
        free(l->key);
        free(l);
    }
}


int
tg_embed_status_json(const tg_embed_pool_t *p, json_t *doc)
{
    tg_embed_pool_stats_t  st;
    json_t                *o;

    if (p == NULL) {
        return json_object_set_new(doc, "embedder", json_null()) ? -ENOMEM
                                                                   : 0;
    }
    tg_embed_pool_stats(p, &st);
    o = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, "
                  "s:I, s:I, s:f, s:f}",
                  "device", tg_embed_pool_device(p),
                  "device_note", tg_embed_pool_note(p),
                  "model", tg_embed_pool_path(p),
                  "max_batch", (json_int_t) tg_embed_pool_max_batch(p),
                  "queue_cap", (json_int_t) tg_embed_pool_max_waiting(p),
                  "batches", (json_int_t) st.batches,
                  "texts", (json_int_t) st.texts,
                  "tokens", (json_int_t) st.tokens,
                  "errors", (json_int_t) st.errors,
                  "rejected", (json_int_t) st.rejected,
                  "queue_depth", (json_int_t) st.waiting,
                  "running", (json_int_t) st.running,
                  "batch_ms_mean", st.batches
                                   ? st.ns_total / 1e6 / st.batches : 0.0,
                  "batch_ms_last", st.ns_last / 1e6);
    if (o == NULL || json_object_set_new(doc, "embedder", o) != 0) {
        return -ENOMEM;
    }
    return 0;
}


int
tg_embed_status_prometheus(const tg_embed_pool_t *p, tg_buf_t *b)
{
    tg_embed_pool_stats_t  st;
    const char            *dev;

    if (p == NULL) {
        return 0;
    }
    tg_embed_pool_stats(p, &st);
    dev = tg_embed_pool_device(p);
    return tg_buf_printf(b,
        "# HELP thinkgate_embed_info The embedder: device that runs it.\n"
        "# TYPE thinkgate_embed_info gauge\n"
        "thinkgate_embed_info{device=\"%s\"} 1\n"
        "# HELP thinkgate_embed_batches_total Model calls.\n"
        "# TYPE thinkgate_embed_batches_total counter\n"
        "thinkgate_embed_batches_total %llu\n"
        "# HELP thinkgate_embed_texts_total Texts embedded.\n"
        "# TYPE thinkgate_embed_texts_total counter\n"
        "thinkgate_embed_texts_total %llu\n"
        "# HELP thinkgate_embed_tokens_total Word pieces embedded.\n"
        "# TYPE thinkgate_embed_tokens_total counter\n"
        "thinkgate_embed_tokens_total %llu\n"
        "# HELP thinkgate_embed_rejected_total Calls refused, queue full.\n"
        "# TYPE thinkgate_embed_rejected_total counter\n"
        "thinkgate_embed_rejected_total %llu\n"
        "# HELP thinkgate_embed_queue_depth Texts waiting for a batch.\n"
        "# TYPE thinkgate_embed_queue_depth gauge\n"
        "thinkgate_embed_queue_depth %zu\n"
        "# HELP thinkgate_embed_batch_seconds Forward pass time.\n"
        "# TYPE thinkgate_embed_batch_seconds summary\n"
        "thinkgate_embed_batch_seconds_sum %.6f\n"
        "thinkgate_embed_batch_seconds_count %llu\n",
        dev, (unsigned long long) st.batches, (unsigned long long) st.texts,
        (unsigned long long) st.tokens, (unsigned long long) st.rejected,
        st.waiting, st.ns_total / 1e9, (unsigned long long) st.batches);
}
