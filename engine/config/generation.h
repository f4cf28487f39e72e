/*
 * Configuration generations.
 *
 * Every nginx worker sends the http-level configuration document when it
 * registers (include/thinkgate/protocol.h).  The engine keeps one
 * generation per distinct document: workers of one nginx configuration
 * share it, and after `nginx -s reload` the new workers get a new one
 * while requests that started on the old one keep it until they end.
 *
 * A generation is reference counted by the registrations and the live
 * requests that use it and freed when the last one lets go.  Per-backend
 * counters (in flight, requests, errors) live outside generations, keyed
 * by backend name and URL, so that max_inflight holds across a reload and
 * status figures survive it.
 */

#ifndef TG_CONFIG_GENERATION_H
#define TG_CONFIG_GENERATION_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "config/health.h"
#include "util/queue.h"

/* Runtime figures of one backend, shared by every generation naming the
 * same backend (same name and URL). */
typedef struct tg_backend_stats_s  tg_backend_stats_t;

struct tg_backend_stats_s {
    char                *name;
    char                *url;
    unsigned             refs;          /* generations using it */
    uint64_t             in_flight;     /* transfers running now */
    uint64_t             requests;      /* transfers started, ever */
    uint64_t             errors;        /* transport failures and 5xx */
    /* The model of the last trace it was given (route/group.h): what a
     * server that swaps models holds now; "" before the first. */
    char                 serving[256];
    /* The ids its own GET /v1/models listed (core/models.c), for backends
     * configured without model=: an array of strings, or NULL while no
     * fetch has answered yet.  Replaced whole by each refresh. */
    json_t              *models;
    int                  models_failed; /* the last fetch failed */
    uint64_t             models_at_ms;  /* loop time of the last answer */
    tg_backend_stats_t **fetching;      /* a running fetch's pointer to
                                           this entry, cleared when it goes */
    /* The circuit breaker (config/health.h), set up by the newest
     * generation naming the backend, and its running active check. */
    tg_health_t          health;
    tg_backend_stats_t **checking;
    tg_queue_t           link;          /* in config->stats */
};

typedef struct {
    const char          *name;
    const char          *url;           /* without a trailing "/" */
    const char          *model;         /* NULL: forward the client's */
    const char          *api_key_env;   /* NULL: no Authorization */
    int64_t              max_inflight;  /* 0: unlimited */
    int64_t              connect_timeout_ms;    /* 0: client default */
    int64_t              idle_timeout_ms;       /* 0: none */
    int                  tls_verify;
    const char          *tls_ca;        /* CA file (PEM); NULL: the
                                           system's */
    int                  native_effort; /* honours reasoning_effort
                                           itself: passed through */
    json_t              *skills;        /* object or NULL; borrowed */
    tg_health_conf_t     health;        /* health= interval= fails= ... */
    tg_backend_stats_t  *stats;
} tg_backend_t;

enum {
    TG_POOL_LEAST_INFLIGHT = 0,
    TG_POOL_ROUND_ROBIN,
    TG_POOL_PREFIX,     /* holder of the longest prompt prefix (serve/prep.h),
                           else least in flight */
    TG_POOL_GROUPED     /* traces wait and go grouped by model
                           (route/group.h) */
};

typedef struct {
    const char          *name;
    tg_backend_t       **backends;
    size_t               nbackends;
    int                  policy;        /* TG_POOL_* */
    int64_t              block;         /* prefix block size, tokens */
    int64_t              ttl_ms;
    int64_t              window_ms;     /* grouped: longest hold */
    unsigned             cursor;        /* round robin position */
} tg_pool_t;

/* A model name that differs from what backends call it: thinkgate_model
 * NAME POOL [model=UPSTREAM].  Strings borrowed from the root. */
typedef struct {
    const char          *name;
    tg_pool_t           *pool;
    const char          *model;         /* upstream name; NULL: the
                                           backend's own (see trace.c) */
} tg_model_alias_t;

/* What a request's "model" names: the pool serving it and, for an alias
 * with model=, the name the backend is sent. */
typedef struct {
    const char          *name;
    tg_pool_t           *pool;
    const char          *upstream;      /* NULL: not renamed by an alias */
    int                  alias;         /* through thinkgate_model */
} tg_model_route_t;

/* The "redis" object of the document (thinkgate_redis); the strings are
 * borrowed from the generation's root. */
typedef struct {
    const char          *addr;          /* "host:port" or "unix:/path" */
    int64_t              db;            /* SELECT; 0..65535 */
    const char          *prefix;        /* of every key; NULL: none */
    const char          *password_env;  /* NULL: no AUTH */
    int64_t              connect_timeout_ms;    /* > 0 */
    int64_t              timeout_ms;    /* one command; > 0 */
} tg_redis_settings_t;

/* The "embedder" object of the document (thinkgate_embedder); path is
 * borrowed from the generation's root. */
typedef struct {
    const char          *path;          /* the model directory */
    int64_t              threads;       /* CPU GEMM threads, 1..64 */
    int                  device;        /* 0 auto, 1 cpu, 2 cuda */
    int64_t              max_batch;     /* texts per model call, 1..4096 */
} tg_embedder_settings_t;

/*
 * One strategy text of the document's "strategies" (each distinct text
 * once per directive): a location's thinkgate_strategy or a
 * thinkgate_effort level's strategy= and options ("ffs n=8"), the
 * directive and where nginx read it, for messages.  The strategy layer
 * checks it when a worker registers and keeps its parsed form in parsed
 * (strategy/host_select.c), freed with the generation through
 * parsed_free.  Strings borrowed from the root.
 */
typedef struct {
    const char          *text;
    const char          *where;         /* "location /x at f.conf:12" */
    const char          *directive;     /* "thinkgate_strategy" (also when
                                           the document leaves it out),
                                           "thinkgate_effort high" */
    void                *parsed;        /* NULL until checked */
    void               (*parsed_free)(void *parsed);
} tg_loc_strategy_t;

/*
 * One entry of the document's "locations": the REQUEST meta members that
 * every request of a location shares (its thinkgate_pass pool,
 * thinkgate_strategy, thinkgate_effort, timeouts, thinkgate_max_body,
 * thinkgate_session), written once by the module and read here once; a
 * request's meta names its entry by "loc" (protocol.h).  Strings and obj
 * borrowed from the root.
 */
typedef struct {
    const char          *pool;          /* NULL: by the request's model */
    const char          *strategy;      /* NULL: none */
    int64_t              timeout_ms;    /* -1: absent */
    int64_t              deadline_ms;   /* -1: absent */
    int64_t              max_body;      /* -1: absent */
    unsigned char        client_strategy;
    unsigned char        session;
    unsigned char        has_effort;    /* obj has "effort" */
    json_t              *obj;           /* the entry itself */
} tg_location_t;

typedef struct tg_config_s      tg_config_t;
typedef struct tg_generation_s  tg_generation_t;

struct tg_generation_s {
    uint32_t             id;
    unsigned             refs;
    tg_config_t         *config;
    char                *doc;           /* canonical text, for dedupe */
    json_t              *root;          /* owns every string above */
    tg_backend_t        *backends;
    size_t               nbackends;
    tg_pool_t           *pools;
    size_t               npools;
    json_t              *plugins;       /* array of names, or NULL */
    json_t              *redis;         /* object, or NULL: no Redis */
    size_t               nplugins;      /* tg_generation_plugin(g, i) */
    tg_redis_settings_t  redis_settings;    /* valid when redis != NULL */
    json_t              *embedder;      /* object, or NULL: none */
    tg_embedder_settings_t  embedder_settings;  /* valid when embedder */
    tg_model_alias_t    *aliases;       /* "models" (thinkgate_model) */
    size_t               naliases;
    tg_loc_strategy_t   *strategies;    /* "strategies" (thinkgate_strategy
                                           texts, each once) */
    size_t               nstrategies;
    tg_location_t       *locations;     /* "locations", by index */
    size_t               nlocations;
    tg_generation_t     *next;
};

/* The engine's set of generations and backend counters. */
struct tg_config_s {
    tg_generation_t     *generations;
    size_t               ngenerations;
    uint32_t             last_id;
    tg_queue_t           stats;         /* tg_backend_stats_t */
    /* The environment variables a document may name (api_key_env,
     * password_env): THINKGATE_* and these (thinkgated --allow-env).
     * The peer sending the document must not read any other. */
    char               **allowed_env;
    size_t               nallowed_env;
};

/* The variable prefix every document may name. */
#define TG_CONFIG_ENV_PREFIX  "THINKGATE_"

/* 1 when a document may name the variable (see allowed_env). */
int tg_config_env_allowed(const tg_config_t *cf, const char *name);

void tg_config_init(tg_config_t *cf);

/* Frees every generation regardless of references (engine exit). */
void tg_config_free(tg_config_t *cf);

/*
 * Parses a configuration document and returns its generation with one
 * reference taken: an existing one when an identical document (same keys
 * and values, in any order) is live, else a new one.  Returns 0, or
 * -EINVAL with a message in err (unknown key, wrong type, bad value,
 * dangling pool member), or -ENOMEM.
 */
int tg_config_acquire(tg_config_t *cf, const char *doc, size_t len,
    tg_generation_t **out, char *err, size_t errlen);

void tg_generation_ref(tg_generation_t *g);
void tg_generation_release(tg_generation_t *g);

/* NULL when absent. */
tg_pool_t *tg_generation_pool(tg_generation_t *g, const char *name);

/* The name of the i-th plugin to preload (i < g->nplugins): [a-z0-9_],
 * 1 to 64 characters, unique in the generation; NULL past the end. */
const char *tg_generation_plugin(const tg_generation_t *g, size_t i);
tg_backend_t *tg_generation_backend(tg_generation_t *g, const char *name);

/*
 * The model names requests may use (config/models.c), in this order:
 * aliases, then for each pool (or only pool "only" when not NULL) each
 * backend's model=, else the ids its own /v1/models listed.  A name is
 * reported once, with its first route.  fn returning non-zero stops the
 * walk and is returned.
 */
int tg_generation_models_each(tg_generation_t *g, tg_pool_t *only,
    int (*fn)(const tg_model_route_t *route, void *data), void *data);

/* The route of the first name equal to model (as listed above):
 * 0, or -ENOENT. */
int tg_generation_model_route(tg_generation_t *g, tg_pool_t *only,
    const char *model, tg_model_route_t *out);

/* A backend of those pools whose names are not known yet (no model=, its
 * /v1/models neither answered nor failed so far), or NULL. */
tg_backend_t *tg_generation_models_pending(tg_generation_t *g,
    tg_pool_t *only);

/* The name backend b is sent for an alias without model=: its model=,
 * else the first id its /v1/models listed, else NULL. */
const char *tg_backend_own_model(const tg_backend_t *b);

#endif /* TG_CONFIG_GENERATION_H */
