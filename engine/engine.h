/*
 * The engine: one process, one libuv loop, serving every registered nginx
 * worker.  This struct holds what is engine-wide: the loop, the backend
 * client, configuration generations, counters and the list of
 * registrations.  Each component reaches it through its own back-pointer
 * (conn->engine, request->engine); there is no global.
 */

#ifndef TG_ENGINE_H
#define TG_ENGINE_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

#include <uv.h>

#include "backend/client.h"
#include "config/generation.h"
#include "util/queue.h"

typedef struct tg_engine_s   tg_engine_t;
typedef struct tg_conn_s     tg_conn_t;
/* Not the plugin ABI's types: plugins see tg_plugin_req_t and
 * tg_plugin_trace_t (plugin/abi.h), which the host converts. */
typedef struct tg_req_s      tg_request_t;
typedef struct tg_trace_s    tg_trace_t;
typedef struct tg_plugin_registry_s  tg_plugin_registry_t;
typedef struct tg_shared_s   tg_shared_t;
typedef struct tg_embed_link_s  tg_embed_link_t;
typedef struct tg_model_fetch_s  tg_model_fetch_t;
typedef struct tg_health_check_s  tg_health_check_t;
typedef struct tg_keys_s     tg_keys_t;
typedef struct tg_request_hooks_s  tg_request_hooks_t;
typedef struct tg_conn_hooks_s     tg_conn_hooks_t;
typedef struct tg_host_hooks_s     tg_host_hooks_t;

enum {
    TG_SCORE_AUTO = 0,
    TG_SCORE_CPU,
    TG_SCORE_CUDA
};

struct tg_engine_s {
    uv_loop_t          *loop;
    tg_http_client_t   *http;
    tg_config_t         config;

    /* Command line. */
    const char         *socket_path;
    const char         *plugin_dir;
    int                 score_device;       /* TG_SCORE_* */
    uid_t              *allowed_uids;       /* besides 0 and our own */
    size_t              nallowed_uids;

    /* Listener: a raw non-blocking socket watched by a poll handle (see
     * transport/listener.c for why not uv_pipe_t). */
    int                 listen_fd;
    uv_poll_t           listen_poll;
    int                 listening;

    /* The calls that go up the layers (serve -> strategy -> core ->
     * transport): each lower layer calls the one above only through the
     * table it declares, and main.c fills them in
     * (transport/conn.h, core/request.h, strategy/host.h). */
    const tg_conn_hooks_t     *conn_hooks;
    const tg_request_hooks_t  *request_hooks;
    const tg_host_hooks_t     *host_hooks;

    uv_signal_t         sigterm;
    uv_signal_t         sigint;
    int                 stopping;

    /* Requests are closed at once but freed from an idle callback, so that
     * no callback frame still on the stack can touch freed memory. */
    uv_idle_t           reaper;
    tg_request_t       *reap;

    tg_queue_t          conns;              /* registrations, all states,
                                               newest first */
    size_t              nregistrations;     /* registered (active) */

    uint64_t            started_ms;         /* uv_now at start */
    uint64_t            requests_total;     /* api requests, ever */
    uint64_t            requests_in_flight;
    uint64_t            requests_errors;    /* answered with status >= 400
                                               or ended by ERROR */
    uint64_t            next_conn_id;

    /* Strategy plugins (--plugin-dir): NULL without a directory.  The
     * timer looks for changed files every TG_PLUGIN_REFRESH_MS; a new
     * configuration generation (nginx -s reload) does it at once. */
    tg_plugin_registry_t *plugins;
    uv_timer_t          plugin_timer;
    uint32_t            plugins_seen_gen;   /* last generation refreshed */
    /* Redis links, one per distinct "redis" settings (core/shared.h),
     * and the directory their Lua scripts are read from (--lua-dir). */
    tg_shared_t        *shared;
    char                lua_dir[PATH_MAX];
    /* Embedders, one per distinct "embedder" settings
     * (core/embed_link.h). */
    tg_embed_link_t    *embeds;
    /* Model lists of backends without model= (serve/model_fetch.h): the
     * refresh timer and the GET /v1/models in flight. */
    uv_timer_t          models_timer;
    tg_queue_t          model_fetches;      /* tg_model_fetch_t */
    /* Traces waiting for a policy=grouped pool, oldest first, and the
     * timer that releases them (core/group_wait.h). */
    tg_queue_t          group_waiters;      /* tg_trace_t wait_link */
    size_t              group_waiting;
    uv_timer_t          group_timer;
    /* Active health checks (serve/health_check.h). */
    uv_timer_t          health_timer;
    tg_queue_t          health_checks;      /* tg_health_check_t */
    /* Client keys' local windows and metrics (serve/keys.h); created on
     * first use. */
    tg_keys_t          *keys;
    unsigned            key_labels;         /* --key-labels */
    /* A session lock's lease without its heartbeat (--session-lease),
     * 0: TG_SESSION_LEASE_MS. */
    uint64_t            session_lease_ms;
    /* --cpu-affinity workers (1, the default) or off (0):
     * transport/affinity.h. */
    unsigned            cpu_follow;
};

#define TG_PLUGIN_REFRESH_MS  2000

#endif /* TG_ENGINE_H */
