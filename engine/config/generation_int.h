/*
 * Internal to config/: the document reader and the backend counter table.
 */

#ifndef TG_CONFIG_GENERATION_INT_H
#define TG_CONFIG_GENERATION_INT_H

#include "config/generation.h"

/* Reads g->root into g's backends and pools.  0, -ENOMEM, or -EINVAL with
 * the reason in err. */
int tg_generation_parse(tg_generation_t *g, char *err, size_t errlen);

/* The counters of backend (name, url), created or shared; NULL when out
 * of memory. */
tg_backend_stats_t *tg_backend_stats_get(tg_config_t *cf, const char *name,
    const char *url);
void tg_backend_stats_put(tg_config_t *cf, tg_backend_stats_t *st);

#endif /* TG_CONFIG_GENERATION_INT_H */
