
/*
 * thinkgate nginx module: types shared by the module's files.
 *
 *   ngx_http_thinkgate_module.c    location directives, module hooks
 *   ngx_http_thinkgate_backends.c  thinkgate_engine, _backend, _pool
 *   ngx_http_thinkgate_conf_keys.c their KEY=VALUE parameters by the
 *                                  shared schema (thinkgate/conf_keys.h)
 *   ngx_http_thinkgate_conf_doc.c  JSON writer, the configuration document
 *   ngx_http_thinkgate_engine.c    engine connection and registration
 *   ngx_http_thinkgate_ring.c      frames in and out of the rings
 *   ngx_http_thinkgate_handler.c   content handler, body, REQUEST meta
 *   ngx_http_thinkgate_stream.c    HEAD/DATA/END/ERROR to the client
 *   ngx_http_thinkgate_status.c    thinkgate_status
 *   ngx_http_thinkgate_services.c  thinkgate_plugin, thinkgate_redis
 *   ngx_http_thinkgate_embedder.c  thinkgate_embedder
 *   ngx_http_thinkgate_models.c    thinkgate_model
 *   ngx_http_thinkgate_vars.c      $thinkgate_* variables, END figures
 */


#ifndef _NGX_HTTP_THINKGATE_H_INCLUDED_
#define _NGX_HTTP_THINKGATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <thinkgate/ring.h>
#include <thinkgate/protocol.h>
#include <thinkgate/conf_keys.h>


#define NGX_HTTP_THINKGATE_DEFAULT_ENGINE  "/run/thinkgate/engine.sock"


typedef enum {
    NGX_HTTP_THINKGATE_KIND_API = 0,
    NGX_HTTP_THINKGATE_KIND_STATUS,
    NGX_HTTP_THINKGATE_KIND_ADMIN
} ngx_http_thinkgate_kind_e;


typedef struct {
    ngx_str_t                   name;
    ngx_uint_t                  weight;     /* thousandths, 0..1000 */
} ngx_http_thinkgate_skill_t;


typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   url;
    ngx_str_t                   model;
    ngx_str_t                   api_key_env;
    ngx_uint_t                  max_inflight;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  idle_timeout;
    ngx_uint_t                  tls_verify;
    ngx_str_t                   tls_ca;     /* absolute path, or empty */
    ngx_uint_t                  native_effort;  /* reasoning_effort
                                                   passed through */
    ngx_array_t                 skills;     /* ngx_http_thinkgate_skill_t */
    ngx_str_t                   health;     /* check path; empty: none */
    ngx_msec_t                  health_interval;
    ngx_uint_t                  fails;      /* 0: no circuit breaking */
    ngx_msec_t                  cooloff;
    ngx_uint_t                  error_rate; /* percent; 0: off */
} ngx_http_thinkgate_backend_t;


typedef struct {
    ngx_str_t                   name;
    ngx_array_t                 backends;   /* ngx_str_t */
    ngx_uint_t                  policy;     /* TG_CONF_POLICIES index */
    ngx_uint_t                  block;
    ngx_msec_t                  ttl;
    ngx_msec_t                  window;     /* policy=grouped: longest
                                               hold of a trace */
    ngx_str_t                   file;       /* where it was declared */
    ngx_uint_t                  line;
} ngx_http_thinkgate_pool_t;


/* thinkgate_model NAME POOL [model=UPSTREAM] */
typedef struct {
    ngx_str_t                   name;
    ngx_str_t                   pool;
    ngx_str_t                   model;      /* empty: the backend's own */
    ngx_str_t                   file;       /* where it was declared */
    ngx_uint_t                  line;
} ngx_http_thinkgate_model_t;


/* one line of the thinkgate_keys file: the key itself is never kept */
typedef struct {
    ngx_str_t                   name;
    u_char                      hash[32];   /* SHA-256 of the key */
    ngx_str_t                   models;     /* "a,b" or "*"; empty: all */
    ngx_str_t                   strategies; /* the same */
    ngx_uint_t                  rpm;        /* requests per window; 0: no
                                               limit */
    ngx_uint_t                  tpm;        /* tokens per window */
    ngx_uint_t                  tpd;        /* tokens per day */
    ngx_msec_t                  window;     /* 0: 60 s */
} ngx_http_thinkgate_key_t;


/* The key of an API request, as thinkgate_auth found it. */
typedef struct {
    ngx_http_thinkgate_key_t   *key;        /* from the key file */
    ngx_str_t                   name;       /* Redis store: named by
                                               thinkgate_auth_key */
    u_char                      sha[64];    /* Redis store: the bearer
                                               token's SHA-256, hex */
    ngx_uint_t                  redis;      /* the engine looks it up */
} ngx_http_thinkgate_auth_t;


/*
 * A strategy text the configuration names, for the engine to check
 * against its plugin when a worker registers (the document's
 * "strategies"): a location's thinkgate_strategy, or the strategy=
 * of a thinkgate_effort level with its options.
 */
typedef struct {
    ngx_str_t                   text;       /* "ffs n=8" */
    ngx_str_t                   where;      /* "location /x/ at FILE:LINE" */
    const char                 *directive;  /* "thinkgate_strategy",
                                               "thinkgate_effort high" */
} ngx_http_thinkgate_strategy_t;


/* thinkgate_redis ADDR [db=] [prefix=] [password_env=] [...timeout=];
 * the keys' types, bounds and defaults are thinkgate/conf_keys.h's */
typedef struct {
    ngx_str_t                   addr;       /* host:port or unix:/path */
    ngx_uint_t                  db;
    ngx_str_t                   prefix;
    ngx_str_t                   password_env;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;
} ngx_http_thinkgate_redis_t;


/* thinkgate_embedder PATH [threads=] [device=] [max_batch=]; the keys
 * are thinkgate/conf_keys.h's */
typedef struct {
    ngx_str_t                   path;       /* the model directory */
    ngx_uint_t                  threads;
    ngx_uint_t                  device;     /* 0 auto, 1 cpu, 2 cuda */
    ngx_uint_t                  max_batch;
} ngx_http_thinkgate_embedder_t;


typedef struct {
    ngx_str_t                   engine;     /* unix socket path */
    size_t                      ring_size;
    ngx_array_t                 backends;   /* ngx_http_thinkgate_backend_t */
    ngx_array_t                 pools;      /* ngx_http_thinkgate_pool_t */
    ngx_array_t                 plugins;    /* ngx_str_t, to preload */
    ngx_array_t                 models;     /* ngx_http_thinkgate_model_t */
    ngx_array_t                 strategies; /* ngx_http_thinkgate_strategy_t:
                                               each distinct strategy text
                                               of a directive and where it
                                               was read first */
    ngx_http_thinkgate_redis_t *redis;      /* NULL: no thinkgate_redis */
    ngx_http_thinkgate_embedder_t *embedder;    /* NULL: none */
    ngx_array_t                *keys;       /* ngx_http_thinkgate_key_t;
                                               NULL: no key file */
    ngx_flag_t                  keys_redis; /* thinkgate_keys redis */
    ngx_array_t                 locations;  /* ngx_str_t: each distinct
                                               "locations" entry of the
                                               document, as JSON */
    ngx_str_t                   doc;        /* configuration document */
    ngx_uint_t                  enabled;    /* a location uses the engine */
} ngx_http_thinkgate_main_conf_t;


/* reasoning_effort levels: minimal, low, medium, high */
#define NGX_HTTP_THINKGATE_EFFORT_LEVELS  4

typedef struct {
    ngx_str_t                   pool;       /* thinkgate_pass; empty: by
                                               the request's model */
    ngx_str_t                   strategy;   /* "name k=v ..." */
    ngx_str_t                   effort[NGX_HTTP_THINKGATE_EFFORT_LEVELS];
                                            /* thinkgate_effort, by level:
                                               "budget=N [strategy=...]" */
    ngx_flag_t                  client_strategy;
    ngx_flag_t                  session;
    ngx_flag_t                  auth;       /* thinkgate_auth */
    ngx_http_complex_value_t   *auth_key;   /* thinkgate_auth_key: the
                                               key's name, from
                                               auth_request; NULL: the
                                               bearer token */
    ngx_msec_t                  timeout;
    ngx_msec_t                  deadline;   /* thinkgate_deadline; 0: off */
    size_t                      max_body;
    u_char                     *admin_token;    /* thinkgate_admin
                                               token_file=: the token's
                                               SHA-256; NULL: none */
    ngx_str_t                   pass_file;  /* where thinkgate_pass is */
    ngx_uint_t                  pass_line;
    ngx_uint_t                  pass;       /* thinkgate_pass given */
    ngx_uint_t                  serves;     /* thinkgate_pass, _status or
                                               _admin given here */
    ngx_uint_t                  loc;        /* its "locations" index */
} ngx_http_thinkgate_loc_conf_t;


/* A growing JSON text in a pool (old storage stays in the pool). */
typedef struct {
    u_char                     *start;
    u_char                     *pos;
    u_char                     *end;
    ngx_pool_t                 *pool;
    ngx_uint_t                  failed;
} ngx_http_thinkgate_json_t;


typedef struct ngx_http_thinkgate_ctx_s  ngx_http_thinkgate_ctx_t;


/* One frame the worker still has to write into the to_engine ring. */
typedef struct {
    ngx_queue_t                 queue;
    ngx_http_thinkgate_ctx_t   *ctx;        /* REQUEST; NULL for control */
    uint64_t                    id;
    uint16_t                    type;       /* CANCEL or WINDOW */
    uint32_t                    value;      /* WINDOW credit */
} ngx_http_thinkgate_out_t;


struct ngx_http_thinkgate_ctx_s {
    ngx_rbtree_node_t           node;       /* key: request id */
    uint64_t                    id;
    ngx_http_request_t         *request;
    ngx_uint_t                  kind;
    ngx_http_thinkgate_auth_t   auth;       /* thinkgate_auth */

    ngx_str_t                   meta;       /* u32 length + JSON */
    u_char                     *body;
    size_t                      body_len;
    size_t                      body_sent;
    off_t                       body_seen;  /* by the body filter */

    ngx_http_thinkgate_out_t    out;        /* queued REQUEST frames */

    /*
     * Output.  Frames of one ring pass are copied into "pending" and go
     * to nginx in one output_filter call when the pass ends (a
     * non-streamed answer waits there for END, up to a cap).  Buffers
     * nginx still has to write are "busy"; written ones go to "free"
     * without their memory, which goes back to the pool at once.
     */
    ngx_queue_t                 pass;       /* in the engine's pass list */
    ngx_chain_t                *pending;
    ngx_chain_t               **pending_end;
    ngx_buf_t                  *pending_buf;    /* last of pending */
    size_t                      pending_len;    /* DATA bytes in it */
    ngx_chain_t                *free;
    ngx_chain_t                *busy;
    uint64_t                    handed;     /* DATA bytes given to nginx */
    uint64_t                    credited;   /* WINDOW credit returned */
    off_t                       sent_mark;  /* c->sent at the send timer */

    ngx_array_t                *figures;    /* ngx_keyval_t, from END */

    unsigned                    too_large:1;
    unsigned                    in_tree:1;
    unsigned                    queued:1;
    unsigned                    meta_sent:1;
    unsigned                    sent:1;     /* all REQUEST frames written */
    unsigned                    headed:1;
    unsigned                    stream:1;
    unsigned                    hold:1;     /* header waits for END */
    unsigned                    newlines:2; /* ending the DATA so far */
    unsigned                    in_pass:1;
    unsigned                    done:1;
};


#define NGX_HTTP_THINKGATE_KEEPER_PERIOD  60000


typedef enum {
    NGX_HTTP_THINKGATE_DISCONNECTED = 0,
    NGX_HTTP_THINKGATE_REGISTERING,
    NGX_HTTP_THINKGATE_CONNECTED
} ngx_http_thinkgate_state_e;


/* The worker's one engine connection (ngx_http_thinkgate_engine.c). */

typedef struct {
    ngx_http_thinkgate_main_conf_t  *mcf;
    ngx_log_t                       *log;
    ngx_connection_t                *c;
    ngx_uint_t                       state;

    int                              memfd;
    /* eventfd doorbells (protocol.h, TG_REG_F_EVENTFD): -1 without */
    int                              bell_out;      /* we ring the engine */
    int                              bell_in;       /* it rings us ... */
    ngx_connection_t                *bell_c;        /* ... watched here */
    tg_shm_t                        *shm;
    size_t                           shm_size;
    tg_ring_t                        to_engine;
    tg_ring_t                        to_worker;

    tg_register_t                    reg;
    size_t                           reg_sent;
    tg_register_reply_t              reply;
    size_t                           reply_got;

    ngx_event_t                      reconnect;
    ngx_msec_t                       backoff;
    ngx_uint_t                       failures;
    int32_t                          refused;   /* last refusal logged */
    /* the engine's reason, kept for the 503s while it refuses us */
    u_char                           refusal[sizeof(((tg_register_reply_t *)
                                                      0)->message)];

    /* keeps a gracefully exiting worker alive while requests run */
    ngx_event_t                      keeper;

    ngx_rbtree_t                     tree;
    ngx_rbtree_node_t                sentinel;
    ngx_uint_t                       inflight;

    ngx_queue_t                      out;
    ngx_queue_t                      free_out;

    /* requests with output from the ring pass under way */
    ngx_queue_t                      pass;

    /* one doorbell per event-loop pass, rung by a posted event */
    ngx_event_t                      bell_event;

    uint64_t                         next_id;
    unsigned                         bell:1;
} ngx_http_thinkgate_engine_t;


extern ngx_module_t                  ngx_http_thinkgate_module;
extern ngx_http_thinkgate_engine_t   ngx_http_thinkgate_engine;


/* ngx_http_thinkgate_module.c */
char *ngx_http_thinkgate_conf_bad(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, const char *why);
ngx_int_t ngx_http_thinkgate_conf_valid_name(ngx_str_t *s);
ngx_int_t ngx_http_thinkgate_conf_is_option(ngx_str_t *v);
char *ngx_http_thinkgate_conf_join(ngx_conf_t *cf, ngx_uint_t first,
    ngx_str_t *out);
ngx_int_t ngx_http_thinkgate_strategy_record(ngx_conf_t *cf,
    ngx_str_t *text, const char *directive);

/* ngx_http_thinkgate_effort.c */
char *ngx_http_thinkgate_effort(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
void ngx_http_thinkgate_effort_meta(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_loc_conf_t *lcf);
ngx_int_t ngx_http_thinkgate_location_index(ngx_conf_t *cf,
    ngx_http_thinkgate_loc_conf_t *lcf);

/* ngx_http_thinkgate_backends.c */
void *ngx_http_thinkgate_create_main_conf(ngx_conf_t *cf);
char *ngx_http_thinkgate_init_main_conf(ngx_conf_t *cf, void *conf);
char *ngx_http_thinkgate_conf_engine(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_thinkgate_conf_backend(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_thinkgate_conf_pool(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_thinkgate_conf_keys.c: a schema's rows and, by row, where
 * each key lives in the module's structure */
typedef struct {
    const tg_conf_key_t        *rows;
    const size_t               *offsets;
} ngx_http_thinkgate_keys_t;

extern const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_backend_keys;
extern const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_pool_keys;
extern const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_redis_keys;
extern const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_embedder_keys;

ngx_int_t ngx_http_thinkgate_keys_defaults(ngx_conf_t *cf,
    const ngx_http_thinkgate_keys_t *t, void *conf);
ngx_int_t ngx_http_thinkgate_keys_param(ngx_conf_t *cf, ngx_command_t *cmd,
    const ngx_http_thinkgate_keys_t *t, void *conf, ngx_str_t *value);
char *ngx_http_thinkgate_keys_unknown(ngx_conf_t *cf, ngx_command_t *cmd,
    const ngx_http_thinkgate_keys_t *t, ngx_str_t *value);
char *ngx_http_thinkgate_keys_params(ngx_conf_t *cf, ngx_command_t *cmd,
    const ngx_http_thinkgate_keys_t *t, void *conf, ngx_uint_t first);
void ngx_http_thinkgate_keys_doc(ngx_http_thinkgate_json_t *j,
    const ngx_http_thinkgate_keys_t *t, void *conf);

/* ngx_http_thinkgate_keys.c */
char *ngx_http_thinkgate_conf_keys(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_thinkgate_conf_auth_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_thinkgate_auth(ngx_http_request_t *r,
    ngx_http_thinkgate_auth_t *auth);
ngx_int_t ngx_http_thinkgate_admin_token_load(ngx_conf_t *cf,
    ngx_http_thinkgate_loc_conf_t *lcf, ngx_str_t *value);
ngx_int_t ngx_http_thinkgate_admin_auth(ngx_http_request_t *r,
    u_char *hash);
void ngx_http_thinkgate_key_meta(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_auth_t *auth);

/* ngx_http_thinkgate_conf_doc.c */
void ngx_http_thinkgate_json_init(ngx_http_thinkgate_json_t *j,
    ngx_pool_t *pool, size_t size);
void ngx_http_thinkgate_json_raw(ngx_http_thinkgate_json_t *j,
    const char *s);
void ngx_http_thinkgate_json_bytes(ngx_http_thinkgate_json_t *j,
    u_char *p, size_t len);
void ngx_http_thinkgate_json_str(ngx_http_thinkgate_json_t *j,
    ngx_str_t *s);
void ngx_http_thinkgate_json_key(ngx_http_thinkgate_json_t *j,
    const char *key);
void ngx_http_thinkgate_json_uint(ngx_http_thinkgate_json_t *j,
    uint64_t n);
ngx_int_t ngx_http_thinkgate_conf_doc(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf);

/* ngx_http_thinkgate_engine.c */
ngx_int_t ngx_http_thinkgate_engine_init(ngx_cycle_t *cycle,
    ngx_http_thinkgate_main_conf_t *mcf);
void ngx_http_thinkgate_engine_exit(ngx_cycle_t *cycle);
ngx_uint_t ngx_http_thinkgate_engine_connected(void);
ngx_uint_t ngx_http_thinkgate_engine_inflight(void);
uint64_t ngx_http_thinkgate_engine_next_id(void);

/* ngx_http_thinkgate_ring.c */
ngx_int_t ngx_http_thinkgate_engine_service(void);
void ngx_http_thinkgate_engine_bell(void);
void ngx_http_thinkgate_engine_bell_handler(ngx_event_t *ev);
void ngx_http_thinkgate_engine_pass(ngx_http_thinkgate_ctx_t *ctx);
ngx_int_t ngx_http_thinkgate_engine_submit(ngx_http_thinkgate_ctx_t *ctx);
void ngx_http_thinkgate_engine_control(ngx_http_thinkgate_ctx_t *ctx,
    uint16_t type, uint32_t value);
void ngx_http_thinkgate_engine_forget(ngx_http_thinkgate_ctx_t *ctx,
    ngx_uint_t cancel);

/* ngx_http_thinkgate_handler.c */
ngx_int_t ngx_http_thinkgate_postconfiguration(ngx_conf_t *cf);
ngx_int_t ngx_http_thinkgate_pass_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_thinkgate_admin_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_thinkgate_start(ngx_http_request_t *r,
    ngx_uint_t kind);
ngx_int_t ngx_http_thinkgate_unavailable(ngx_http_request_t *r,
    ngx_uint_t kind);
ngx_int_t ngx_http_thinkgate_error_body(ngx_pool_t *pool, const char *type,
    const char *code, ngx_str_t *message, ngx_str_t *out);
ngx_int_t ngx_http_thinkgate_send_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, const char *code,
    ngx_str_t *message);
ngx_int_t ngx_http_thinkgate_send_json(ngx_http_request_t *r,
    ngx_uint_t status, u_char *p, size_t len);
ngx_int_t ngx_http_thinkgate_send_body(ngx_http_request_t *r,
    ngx_uint_t status, const char *type, u_char *p, size_t len);

/* ngx_http_thinkgate_stream.c */
void ngx_http_thinkgate_frame(ngx_http_thinkgate_ctx_t *ctx,
    const tg_frame_view_t *f);
void ngx_http_thinkgate_pass_end(ngx_http_thinkgate_ctx_t *ctx);
void ngx_http_thinkgate_fail(ngx_http_thinkgate_ctx_t *ctx);
void ngx_http_thinkgate_write_handler(ngx_http_request_t *r);

/* ngx_http_thinkgate_services.c */
char *ngx_http_thinkgate_conf_plugin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_thinkgate_conf_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_thinkgate_embedder.c */
char *ngx_http_thinkgate_conf_embedder(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);

/* ngx_http_thinkgate_models.c */
char *ngx_http_thinkgate_conf_model(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_thinkgate_check_models(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf);
void ngx_http_thinkgate_json_models(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf);

/* ngx_http_thinkgate_vars.c */
ngx_int_t ngx_http_thinkgate_add_variables(ngx_conf_t *cf);
ngx_int_t ngx_http_thinkgate_figures(ngx_http_thinkgate_ctx_t *ctx,
    const u_char *p, size_t len);

/* ngx_http_thinkgate_status.c */
ngx_int_t ngx_http_thinkgate_status_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_thinkgate_status_offline(ngx_http_request_t *r);


#endif /* _NGX_HTTP_THINKGATE_H_INCLUDED_ */
