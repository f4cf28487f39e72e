/*
 * The engine's embedders: one embed service (score/embed_pool.h) per
 * distinct "embedder" settings of the configuration documents
 * (thinkgate_embedder), kept across generations like the Redis links
 * (core/shared.h): a reload with the same settings keeps the loaded
 * model and its figures; a link no live generation uses is closed at the
 * next registration or at shutdown.
 *
 * The model is opened when the first worker with new settings registers.
 * That blocks the loop once per new setting (the weights are read from
 * disk); an open that fails (a bad file, device=cuda without a GPU)
 * refuses the registration with the embedder's message.
 */

#ifndef TG_CORE_EMBED_LINK_H
#define TG_CORE_EMBED_LINK_H

#include <jansson.h>

#include "engine.h"
#include "score/embed_pool.h"
#include "util/buf.h"

typedef struct tg_embed_link_s  tg_embed_link_t;

struct tg_embed_link_s {
    char                *key;       /* canonical "embedder" JSON */
    tg_embed_pool_t     *pool;
    uint32_t            *gens;      /* ids of the generations using it */
    size_t               ngens;
    size_t               cap;
    tg_embed_link_t     *next;
};

/*
 * Finds or opens the embedder of g's "embedder" settings (none: nothing
 * to do) and notes that g uses it; closes links no live generation uses.
 * device=auto defers to the engine's --score-device.  Returns 0, or a
 * negative errno with err filled: the registration is then refused.
 */
int tg_embed_attach(tg_engine_t *e, tg_generation_t *g, char *err,
    size_t errlen);

/* The embed service of a generation; NULL without thinkgate_embedder. */
tg_embed_pool_t *tg_embed_of(tg_engine_t *e, const tg_generation_t *g);

/* Adds the "embedder" object to a status document (null without one), or
 * its Prometheus lines to b.  Return 0 or -ENOMEM. */
int tg_embed_status_json(const tg_embed_pool_t *p, json_t *doc);
int tg_embed_status_prometheus(const tg_embed_pool_t *p, tg_buf_t *b);

/* Closes every embedder (engine shutdown): waiting jobs are dropped, a
 * running batch is cancelled or waited for by the loop. */
void tg_embed_close_all(tg_engine_t *e);

#endif /* TG_CORE_EMBED_LINK_H */
