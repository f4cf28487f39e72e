/*
 * The document's "locations" (protocol.h): what every request of a
 * location shares, read once per generation instead of from each
 * request's meta.  The module writes each distinct set once; a request's
 * meta names it by index ("loc").
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/generation.h"
#include "config/generation_int.h"

static const char  *tg__location_keys[] = {
    "pool", "strategy", "effort", "client_strategy", "timeout_ms",
    "deadline_ms", "max_body", "session", NULL
};

static int tg__location_read(tg_generation_t *g, json_t *o,
    tg_location_t *l, const char *where, char *err, size_t errlen);
static int tg__location_int(json_t *o, const char *key, int64_t *dst,
    const char *where, char *err, size_t errlen);
static int tg__location_flag(json_t *o, const char *key,
    unsigned char *dst, const char *where, char *err, size_t errlen);
static int tg__location_effort(json_t *o, const char *where, char *err,
    size_t errlen);


int
tg_generation_parse_locations(tg_generation_t *g, char *err, size_t errlen)
{
    json_t  *a;
    size_t   i, n;
    char     where[48];
    int      rc;

    a = json_object_get(g->root, "locations");
    if (a == NULL) {
        return 0;
    }
    if (!json_is_array(a)) {
        return tg_config_fail(err, errlen, "\"locations\" must be an array");
    }
    n = json_array_size(a);
    if (n == 0) {
        return 0;
    }
    g->locations = calloc(n, sizeof(tg_location_t));
    if (g->locations == NULL) {
        return -ENOMEM;
    }
    for (i = 0; i < n; i++) {
        snprintf(where, sizeof(where), "\"locations\"[%zu]", i);
        rc = tg__location_read(g, json_array_get(a, i), &g->locations[i],
                               where, err, errlen);
        if (rc != 0) {
            return rc;
        }
        g->nlocations = i + 1;
    }
    return 0;
}


static int
tg__location_read(tg_generation_t *g, json_t *o, tg_location_t *l,
    const char *where, char *err, size_t errlen)
{
    json_t  *v;
    size_t   i;
    int      rc;

    if (!json_is_object(o)) {
        return tg_config_fail(err, errlen, "%s must be an object", where);
    }
    rc = tg_config_check_keys(o, tg__location_keys, where, err, errlen);
    if (rc != 0) {
        return rc;
    }
    l->obj = o;

    v = json_object_get(o, "pool");
    if (v != NULL) {
        l->pool = json_string_value(v);
        if (l->pool == NULL || l->pool[0] == '\0') {
            return tg_config_fail(err, errlen, "%s: \"pool\" must be a "
                                  "non-empty string", where);
        }
        for (i = 0; i < g->npools; i++) {
            if (strcmp(g->pools[i].name, l->pool) == 0) {
                break;
            }
        }
        if (i == g->npools) {
            return tg_config_fail(err, errlen, "%s names unknown pool "
                                  "\"%s\"", where, l->pool);
        }
    }
    v = json_object_get(o, "strategy");
    if (v != NULL && (l->strategy = json_string_value(v)) == NULL) {
        return tg_config_fail(err, errlen, "%s: \"strategy\" must be a "
                              "string", where);
    }
    rc = tg__location_effort(o, where, err, errlen);
    if (rc == 0) {
        l->has_effort = json_object_get(o, "effort") != NULL;
        rc = tg__location_int(o, "timeout_ms", &l->timeout_ms, where, err,
                              errlen);
    }
    if (rc == 0) {
        rc = tg__location_int(o, "deadline_ms", &l->deadline_ms, where,
                              err, errlen);
    }
    if (rc == 0) {
        rc = tg__location_int(o, "max_body", &l->max_body, where, err,
                              errlen);
    }
    if (rc == 0) {
        rc = tg__location_flag(o, "client_strategy", &l->client_strategy,
                               where, err, errlen);
    }
    if (rc == 0) {
        rc = tg__location_flag(o, "session", &l->session, where, err,
                               errlen);
    }
    return rc;
}


/* An integer member, at least 0; -1 in dst when absent. */
static int
tg__location_int(json_t *o, const char *key, int64_t *dst,
    const char *where, char *err, size_t errlen)
{
    json_t  *v = json_object_get(o, key);

    *dst = -1;
    if (v == NULL) {
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be an integer "
                              "of at least 0", where, key);
    }
    *dst = json_integer_value(v);
    return 0;
}


/* A boolean member; 0 in dst when absent. */
static int
tg__location_flag(json_t *o, const char *key, unsigned char *dst,
    const char *where, char *err, size_t errlen)
{
    json_t  *v = json_object_get(o, key);

    *dst = 0;
    if (v == NULL) {
        return 0;
    }
    if (!json_is_boolean(v)) {
        return tg_config_fail(err, errlen, "%s: \"%s\" must be true or "
                              "false", where, key);
    }
    *dst = json_is_true(v);
    return 0;
}


/* "effort": an object of strings, a level's rule each (core/effort.h
 * reads them when a request asks for the level). */
static int
tg__location_effort(json_t *o, const char *where, char *err, size_t errlen)
{
    json_t      *e = json_object_get(o, "effort"), *v;
    const char  *level;

    if (e == NULL) {
        return 0;
    }
    if (!json_is_object(e)) {
        return tg_config_fail(err, errlen, "%s: \"effort\" must be an "
                              "object", where);
    }
    json_object_foreach(e, level, v) {
        if (!json_is_string(v)) {
            return tg_config_fail(err, errlen, "%s: \"effort\" level "
                                  "\"%.32s\" must be a string", where,
                                  level);
        }
    }
    return 0;
}
