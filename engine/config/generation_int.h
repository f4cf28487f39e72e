/*
 * Internal to config/: the document reader and the backend counter table.
 */

#ifndef TG_CONFIG_GENERATION_INT_H
#define TG_CONFIG_GENERATION_INT_H

#include <thinkgate/conf_keys.h>

#include "config/generation.h"

/* Field kinds of the option tables (config/fields.c): the keys the
 * schema cannot say; the other keys of backends, pools, Redis and the
 * embedder, with their bounds, are the shared schema's
 * (thinkgate/conf_keys.h). */
enum {
    TG_CF_STR,          /* non-empty string */
    TG_CF_STR_NULL,     /* string or null; "" reads as null */
    TG_CF_URL,          /* http:// or https:// string */
    TG_CF_NAMES,        /* array of backend names (pools) */
    TG_CF_ADDR          /* "host:port" or "unix:/path" */
};

typedef struct {
    const char  *key;
    int          kind;
    int          required;
    size_t       offset;
} tg_config_field_t;


/* Reads obj's keys by the table fields (ended by a NULL key) into dst;
 * where names obj in messages.  0, -ENOMEM, or -EINVAL with the reason
 * (unknown key, missing required key, wrong type or value) in err. */
int tg_config_parse_fields(json_t *obj, const tg_config_field_t *fields,
    void *dst, const char *where, char *err, size_t errlen);

/* Reads obj by fields and by the schema's keys (a TG_CONF_KEY_END-ended
 * table; offsets into dst by row): a key left out gets its default
 * (int64_t for numbers, int for flags and policies, const char * for
 * strings, json_t * for skills).  Errors as tg_config_parse_fields. */
int tg_config_parse_object(json_t *obj, const tg_config_field_t *fields,
    const tg_conf_key_t *keys, const size_t *offsets, void *dst,
    const char *where, char *err, size_t errlen);

/* The schema's rows for backends, pools, Redis and the embedder and
 * where each lives in tg_backend_t, tg_pool_t, tg_redis_settings_t and
 * tg_embedder_settings_t (config/document.c). */
extern const tg_conf_key_t  tg_config_backend_keys[];
extern const size_t         tg_config_backend_offsets[];
extern const tg_conf_key_t  tg_config_pool_keys[];
extern const size_t         tg_config_pool_offsets[];
extern const tg_conf_key_t  tg_config_redis_keys[];
extern const size_t         tg_config_redis_offsets[];
extern const tg_conf_key_t  tg_config_embedder_keys[];
extern const size_t         tg_config_embedder_offsets[];

/* -EINVAL when obj has a key not in allowed (NULL-terminated). */
int tg_config_check_keys(json_t *obj, const char **allowed,
    const char *where, char *err, size_t errlen);

/* Formats the reason into err and returns -EINVAL. */
int tg_config_fail(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Reads g->root into g's backends and pools.  0, -ENOMEM, or -EINVAL with
 * the reason in err. */
int tg_generation_parse(tg_generation_t *g, char *err, size_t errlen);

/* Reads the document's "locations" into g; pools are read.  0, -ENOMEM,
 * or -EINVAL with the reason in err (config/locations.c). */
int tg_generation_parse_locations(tg_generation_t *g, char *err,
    size_t errlen);

/* Reads the document's "models" (aliases) into g; pools are read.
 * 0, -ENOMEM, or -EINVAL with the reason in err. */
int tg_generation_parse_models(tg_generation_t *g, char *err,
    size_t errlen);

/* The counters of backend (name, url), created or shared; NULL when out
 * of memory. */
tg_backend_stats_t *tg_backend_stats_get(tg_config_t *cf, const char *name,
    const char *url);
void tg_backend_stats_put(tg_config_t *cf, tg_backend_stats_t *st);

#endif /* TG_CONFIG_GENERATION_INT_H */
