/*
 * Redis links: one connection, session store and set of prefix indexes
 * per distinct "redis" settings, kept across generations.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/shared.h"
#include "log.h"

static tg_shared_t *tg__shared_new(tg_engine_t *e, tg_generation_t *g,
    const char *key, char *err, size_t errlen);
static int tg__shared_note(tg_shared_t *s, uint32_t id);
static void tg__shared_sweep(tg_engine_t *e);
static void tg__shared_close(tg_shared_t *s);
static void tg__shared_closed_one(tg_shared_t *s);
static void tg__shared_on_index_closed(tg_prefix_index_t *idx);
static void tg__shared_on_redis_closed(tg_redis_t *r);


int
tg_shared_attach(tg_engine_t *e, tg_generation_t *g, char *err,
    size_t errlen)
{
    tg_shared_t  *s;
    char         *key;
    int           rc;

    key = g->redis != NULL ? json_dumps(g->redis, JSON_COMPACT
                                        | JSON_SORT_KEYS)
                           : strdup("");
    if (key == NULL) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }

    for (s = e->shared; s != NULL; s = s->next) {
        if (strcmp(s->key, key) == 0) {
            break;
        }
    }

    if (s == NULL) {
        s = tg__shared_new(e, g, key, err, errlen);
        if (s == NULL) {
            free(key);
            return -EINVAL;
        }
        s->next = e->shared;
        e->shared = s;
    } else {
        free(key);
    }

    rc = tg__shared_note(s, g->id);
    if (rc != 0) {
        snprintf(err, errlen, "out of memory");
        return rc;
    }

    tg__shared_sweep(e);
    return 0;
}


static tg_shared_t *
tg__shared_new(tg_engine_t *e, tg_generation_t *g, const char *key,
    char *err, size_t errlen)
{
    const tg_redis_settings_t  *rs = &g->redis_settings;
    tg_redis_conf_t             rc;
    tg_session_conf_t           sc;
    tg_shared_t                *s;
    char                        addr[512];

    s = calloc(1, sizeof(*s));
    if (s == NULL) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->engine = e;
    s->key = (char *) key;

    if (g->redis != NULL) {
        memset(&rc, 0, sizeof(rc));
        if (tg_redis_conf_addr(&rc, rs->addr, addr, sizeof(addr)) != 0) {
            snprintf(err, errlen, "redis: bad address \"%.200s\"", rs->addr);
            goto failed;
        }
        rc.db = (int) rs->db;
        rc.prefix = rs->prefix;
        rc.password_env = (rs->password_env && rs->password_env[0])
                          ? rs->password_env : NULL;
        rc.connect_timeout_ms = (uint64_t) rs->connect_timeout_ms;
        rc.command_timeout_ms = (uint64_t) rs->timeout_ms;

        s->redis.data = s;
        if (tg_redis_init(&s->redis, e->loop, &rc) != 0) {
            snprintf(err, errlen, "%s", s->redis.error);
            goto failed;
        }
        s->has_redis = 1;

        memset(&sc, 0, sizeof(sc));
        sc.lease_ms = e->session_lease_ms;
        s->sessions.data = s;
        if (tg_session_store_init(&s->sessions, &s->redis, e->lua_dir,
                                  &sc, err, errlen) != 0)
        {
            /* Without its scripts the store answers 503; prefix routing
             * still works. */
            tg_log_error("sessions unavailable: %s", err);
        } else {
            s->sessions_ok = 1;
        }
        /* Without them key windows are this gateway's own. */
        if (tg_redis_script_load(&s->keys_admit, e->lua_dir,
                                 "key_admit.lua", err, errlen) != 0
            || tg_redis_script_load(&s->keys_charge, e->lua_dir,
                                    "key_charge.lua", err, errlen) != 0
            || tg_redis_script_load(&s->keys_refund, e->lua_dir,
                                    "key_refund.lua", err, errlen) != 0)
        {
            tg_log_error("key limits not shared: %s", err);
            tg_redis_script_free(&s->keys_admit);
            tg_redis_script_free(&s->keys_charge);
            tg_redis_script_free(&s->keys_refund);
        }
        tg_log_info("redis %s (db %d, prefix \"%s\"): connecting",
                    rs->addr, rc.db, rc.prefix ? rc.prefix : "");
    }

    return s;

failed:
    free(s);
    return NULL;
}


static int
tg__shared_note(tg_shared_t *s, uint32_t id)
{
    uint32_t  *ids;
    size_t     i;

    for (i = 0; i < s->ngens; i++) {
        if (s->gens[i] == id) {
            return 0;
        }
    }
    if (s->ngens == s->cap) {
        ids = realloc(s->gens, (s->cap ? s->cap * 2 : 4) * sizeof(*ids));
        if (ids == NULL) {
            return -ENOMEM;
        }
        s->gens = ids;
        s->cap = s->cap ? s->cap * 2 : 4;
    }
    s->gens[s->ngens++] = id;
    return 0;
}


/* Forgets generations that are gone and closes links nobody uses.  Live
 * requests hold their generation, so no request uses a closed link. */
static void
tg__shared_sweep(tg_engine_t *e)
{
    tg_shared_t      *s, **pp;
    tg_generation_t  *g;
    size_t            i, j;

    for (pp = &e->shared; (s = *pp) != NULL; ) {
        for (i = 0, j = 0; i < s->ngens; i++) {
            for (g = e->config.generations; g != NULL; g = g->next) {
                if (g->id == s->gens[i]) {
                    s->gens[j++] = s->gens[i];
                    break;
                }
            }
        }
        s->ngens = j;

        if (s->ngens > 0) {
            pp = &s->next;
            continue;
        }
        *pp = s->next;
        tg_log_info("redis link \"%.200s\" unused: closing", s->key);
        tg__shared_close(s);
    }
}


tg_shared_t *
tg_shared_of(tg_engine_t *e, const tg_generation_t *g)
{
    tg_shared_t  *s;
    size_t        i;

    for (s = e->shared; s != NULL; s = s->next) {
        for (i = 0; i < s->ngens; i++) {
            if (s->gens[i] == g->id) {
                return s;
            }
        }
    }
    return NULL;
}


tg_prefix_index_t *
tg_shared_index(tg_shared_t *s, unsigned block, uint64_t ttl_ms)
{
    tg_shared_index_t  *x;
    tg_prefix_conf_t    pc;
    char                err[256];

    for (x = s->indexes; x != NULL; x = x->next) {
        if (x->block == block && x->ttl_ms == ttl_ms) {
            return &x->idx;
        }
    }

    x = calloc(1, sizeof(*x));
    if (x == NULL) {
        return NULL;
    }
    memset(&pc, 0, sizeof(pc));
    pc.block_tokens = block;
    pc.ttl_ms = ttl_ms;

    x->link = s;
    x->block = block;
    x->ttl_ms = ttl_ms;
    x->idx.data = x;
    if (tg_prefix_init(&x->idx, s->engine->loop,
                       s->has_redis ? &s->redis : NULL, s->engine->lua_dir,
                       &pc, err, sizeof(err)) != 0)
    {
        tg_log_error("prefix index (block %u): %s", block, err);
        free(x);
        return NULL;
    }
    x->next = s->indexes;
    s->indexes = x;
    return &x->idx;
}


tg_session_store_t *
tg_shared_sessions(tg_shared_t *s)
{
    return (s != NULL && s->sessions_ok) ? &s->sessions : NULL;
}


const char *
tg_shared_mode(const tg_shared_t *s)
{
    if (s == NULL || !s->has_redis) {
        return "off";
    }
    return tg_redis_connected(&s->redis) ? "shared" : "local";
}


/* Each index, then the connection, closes through a callback; the link's
 * memory goes with the last one. */
static void
tg__shared_close(tg_shared_t *s)
{
    tg_shared_index_t  *x;

    s->closing = 1;     /* held until every close is started */

    for (x = s->indexes; x != NULL; x = x->next) {
        s->closing++;
        tg_prefix_close(&x->idx, tg__shared_on_index_closed);
    }
    if (s->sessions_ok) {
        tg_session_store_close(&s->sessions);
        s->sessions_ok = 0;
    }
    if (s->has_redis) {
        s->closing++;
        tg_redis_close(&s->redis, tg__shared_on_redis_closed);
    }
    tg__shared_closed_one(s);
}


static void
tg__shared_on_index_closed(tg_prefix_index_t *idx)
{
    tg_shared_index_t  *x = idx->data;

    tg__shared_closed_one(x->link);
}


static void
tg__shared_on_redis_closed(tg_redis_t *r)
{
    tg__shared_closed_one(r->data);
}


static void
tg__shared_closed_one(tg_shared_t *s)
{
    tg_shared_index_t  *x, *next;

    if (--s->closing > 0) {
        return;
    }
    for (x = s->indexes; x != NULL; x = next) {
        next = x->next;
        free(x);
    }
    tg_redis_script_free(&s->keys_admit);
    tg_redis_script_free(&s->keys_charge);
    tg_redis_script_free(&s->keys_refund);
    free(s->gens);
    free(s->key);
    free(s);
}


void
tg_shared_close_all(tg_engine_t *e)
{
    tg_shared_t  *s, *next;

    for (s = e->shared, e->shared = NULL; s != NULL; s = next) {
        next = s->next;
        tg__shared_close(s);
    }
}
