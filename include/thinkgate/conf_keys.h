/*
 * The schema of thinkgate_backend, thinkgate_pool, thinkgate_redis and
 * thinkgate_embedder, written once and read by both sides of the
 * configuration document (protocol.h):
 *
 *   - the nginx module parses KEY=VALUE parameters by it (name, type,
 *     bounds; why is nginx -t's message for a bad value), starts every
 *     object from its defaults and writes each key into the document
 *     under doc_key (ngx_module/ngx_http_thinkgate_conf_keys.c);
 *   - the engine reads the document by it, with the same bounds, and
 *     gives a key a document leaves out the same default
 *     (engine/config/document.c).
 *
 * Each list is an X-macro: X(ID, name, doc_key, type, min, max, default,
 * string default, flags, why).  Expand it with TG_CONF_KEY_ID for an
 * enum of row numbers and with TG_CONF_KEY_ROW for the table; each side
 * keeps its own offsets by row number.  The keys the table cannot say (a
 * backend's name and URL, a pool's name and members, Redis's address,
 * the embedder's model directory) stay with the directives' own code.
 */

#ifndef THINKGATE_CONF_KEYS_H
#define THINKGATE_CONF_KEYS_H

#include <stdint.h>

typedef enum {
    TG_KEY_NAME = 0,    /* a non-empty string */
    TG_KEY_ENV,         /* an environment variable's name */
    TG_KEY_COUNT,       /* an integer, min..max */
    TG_KEY_MSEC,        /* a time (5s, 500ms), min..max ms; the document
                           holds milliseconds */
    TG_KEY_PERCENT,     /* an integer min..max, "%" allowed after it */
    TG_KEY_FLAG,        /* on or off; the document holds true or false */
    TG_KEY_PATH,        /* a URL path starting with "/" */
    TG_KEY_FILE,        /* a file nginx -t can read; the document holds
                           its absolute path */
    TG_KEY_SKILLS,      /* NAME:WEIGHT,... weights 0..1; the document holds
                           {"NAME": WEIGHT, ...} */
    TG_KEY_POLICY,      /* one of TG_CONF_POLICIES; default and value are
                           its index */
    TG_KEY_TEXT,        /* min..max printable bytes without spaces */
    TG_KEY_DEVICE       /* one of TG_CONF_DEVICES; default and value are
                           its index */
} tg_conf_key_type_e;

/*
 * A document may hold 0 for this key, meaning none (no limit, the HTTP
 * client's own timeout), and a document leaving it out gets 0: what
 * hand-written documents (tests, tools) rely on.  The module never sends
 * 0 for it; its parameter keeps min..max.
 */
#define TG_KEY_DOC_ZERO  0x1

typedef struct {
    const char  *name;          /* the parameter: name=VALUE */
    const char  *doc_key;       /* its key in the document */
    int          type;          /* tg_conf_key_type_e */
    int64_t      min;           /* COUNT, MSEC, PERCENT */
    int64_t      max;           /* 0: no upper bound */
    int64_t      def;           /* when left out: numbers, words */
    const char  *sdef;          /* when left out: strings; 0: none */
    unsigned     flags;         /* TG_KEY_DOC_ZERO */
    const char  *why;           /* what a good value is, said to the user */
} tg_conf_key_t;


#define TG_CONF_KEY_ID(id, name, doc_key, type, min, max, def, sdef, flags, \
                       why)                                                 \
    TG_CONF_##id,

#define TG_CONF_KEY_ROW(id, name, doc_key, type, min, max, def, sdef, flags,\
                        why)                                                \
    { name, doc_key, type, min, max, def, sdef, flags, why },

#define TG_CONF_KEY_END  { 0, 0, 0, 0, 0, 0, 0, 0, 0 }


/*
 * thinkgate_backend NAME URL [KEY=VALUE ...].  fails= defaults to 3 when
 * health= is given (the module's rule); a document always carries it.
 */
#define TG_CONF_BACKEND_KEYS(X)                                              \
    X(B_MODEL, "model", "model", TG_KEY_NAME, 0, 0, 0, 0, 0,                 \
      "empty model")                                                         \
    X(B_MAX_INFLIGHT, "max_inflight", "max_inflight", TG_KEY_COUNT,          \
      1, 1000000, 64, 0, TG_KEY_DOC_ZERO,                                    \
      "max_inflight must be 1..1000000")                                     \
    X(B_API_KEY_ENV, "api_key_env", "api_key_env", TG_KEY_ENV, 0, 0, 0, 0, 0, \
      "not an environment variable name")                                    \
    X(B_CONNECT_TIMEOUT, "connect_timeout", "connect_timeout_ms",            \
      TG_KEY_MSEC, 1, 0, 5000, 0, TG_KEY_DOC_ZERO,                           \
      "expected a positive time such as 5s or 500ms")                        \
    X(B_IDLE_TIMEOUT, "idle_timeout", "idle_timeout_ms",                     \
      TG_KEY_MSEC, 1, 0, 60000, 0, TG_KEY_DOC_ZERO,                          \
      "expected a positive time such as 5s or 500ms")                        \
    X(B_TLS_VERIFY, "tls_verify", "tls_verify", TG_KEY_FLAG, 0, 1, 1, 0, 0,  \
      "tls_verify is on or off")                                             \
    X(B_TLS_CA, "tls_ca", "tls_ca", TG_KEY_FILE, 0, 0, 0, 0, 0,              \
      "tls_ca must name a readable file of CA certificates (PEM)")           \
    X(B_NATIVE_EFFORT, "native_effort", "native_effort", TG_KEY_FLAG,        \
      0, 1, 0, 0, 0, "native_effort is on or off")                           \
    X(B_SKILLS, "skills", "skills", TG_KEY_SKILLS, 0, 1000, 0, 0, 0,         \
      "expected skills=NAME:WEIGHT,... with weights from 0 to 1")            \
    X(B_HEALTH, "health", "health", TG_KEY_PATH, 0, 512, 0, 0, 0,            \
      "health is a path such as /health or /v1/models")                      \
    X(B_INTERVAL, "interval", "health_interval_ms", TG_KEY_MSEC,             \
      100, 86400000, 5000, 0, 0, "interval is a time from 100ms to 1d")      \
    X(B_FAILS, "fails", "fails", TG_KEY_COUNT, 0, 1000, 0, 0, 0,             \
      "fails is 0 (off) to 1000")                                            \
    X(B_COOLOFF, "cooloff", "cooloff_ms", TG_KEY_MSEC,                       \
      100, 86400000, 10000, 0, 0, "cooloff is a time from 100ms to 1d")      \
    X(B_ERROR_RATE, "error_rate", "error_rate", TG_KEY_PERCENT,              \
      0, 100, 0, 0, 0, "error_rate is a percentage from 0 (off) to 100%")

/* thinkgate_pool NAME BACKEND ... [KEY=VALUE ...] */
#define TG_CONF_POOL_KEYS(X)                                                 \
    X(P_POLICY, "policy", "policy", TG_KEY_POLICY, 0, 3, 0, 0, 0,            \
      "policy is least_inflight, round_robin, prefix or grouped")            \
    X(P_BLOCK, "block", "block", TG_KEY_COUNT, 1, 65536, 64, 0, 0,           \
      "block must be 1..65536")                                              \
    X(P_TTL, "ttl", "ttl_ms", TG_KEY_MSEC, 1, 0, 600000, 0, 0,               \
      "expected a positive time such as 600s")                               \
    X(P_WINDOW, "window", "window_ms", TG_KEY_MSEC, 0, 3600000, 1000, 0, 0,  \
      "expected a time up to 1h such as 500ms")

/*
 * thinkgate_redis ADDR [KEY=VALUE ...]: prefix= is prepended to every
 * key, so that gateways can share a server (empty: none); the engine
 * reads the password from its own environment variable password_env=.
 */
#define TG_CONF_REDIS_KEYS(X)                                                \
    X(R_DB, "db", "db", TG_KEY_COUNT, 0, 65535, 0, 0, 0,                     \
      "db must be 0..65535")                                                 \
    X(R_PREFIX, "prefix", "prefix", TG_KEY_TEXT, 0, 64, 0, "tg:", 0,         \
      "a prefix is at most 64 printable characters without spaces")         \
    X(R_PASSWORD_ENV, "password_env", "password_env", TG_KEY_ENV,            \
      0, 0, 0, 0, 0, "not an environment variable name")                     \
    X(R_CONNECT_TIMEOUT, "connect_timeout", "connect_timeout_ms",            \
      TG_KEY_MSEC, 1, 60000, 1000, 0, 0, "expected a time from 1ms to 60s") \
    X(R_TIMEOUT, "timeout", "timeout_ms", TG_KEY_MSEC, 1, 60000, 200, 0, 0,  \
      "expected a time from 1ms to 60s")

/*
 * thinkgate_embedder PATH [KEY=VALUE ...]: threads= of OpenBLAS for one
 * forward pass; device=auto takes cuBLAS when a GPU answers (the
 * engine's --score-device decides); max_batch= texts per model call.
 */
#define TG_CONF_EMBEDDER_KEYS(X)                                             \
    X(E_THREADS, "threads", "threads", TG_KEY_COUNT, 1, 64, 1, 0, 0,         \
      "threads must be 1..64")                                               \
    X(E_DEVICE, "device", "device", TG_KEY_DEVICE, 0, 2, 0, 0, 0,            \
      "device must be auto, cpu or cuda")                                    \
    X(E_MAX_BATCH, "max_batch", "max_batch", TG_KEY_COUNT, 1, 4096, 64, 0,   \
      0, "max_batch must be 1..4096")

enum {
    TG_CONF_BACKEND_KEYS(TG_CONF_KEY_ID)
    TG_CONF_BACKEND_NKEYS
};

enum {
    TG_CONF_POOL_KEYS(TG_CONF_KEY_ID)
    TG_CONF_POOL_NKEYS
};

enum {
    TG_CONF_REDIS_KEYS(TG_CONF_KEY_ID)
    TG_CONF_REDIS_NKEYS
};

enum {
    TG_CONF_EMBEDDER_KEYS(TG_CONF_KEY_ID)
    TG_CONF_EMBEDDER_NKEYS
};

/* policy=: the values, by index (the engine's TG_POOL_*) */
#define TG_CONF_POLICIES                                                     \
    { "least_inflight", "round_robin", "prefix", "grouped", 0 }

/* device=: the values, by index (0 auto, 1 cpu, 2 cuda) */
#define TG_CONF_DEVICES  { "auto", "cpu", "cuda", 0 }

#endif /* THINKGATE_CONF_KEYS_H */
