/*
 * thinkgated: the thinkgate engine.  Command line, signals, the loop.
 * Everything else lives in the components (transport/, core/, ...), so
 * that unit tests link them without this file.
 */

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/embed_link.h"
#include "core/group_wait.h"
#include "core/request.h"
#include "core/shared.h"
#include "engine.h"
#include "log.h"
#include "plugin/loader.h"
#include "serve/health_check.h"
#include "serve/dispatch.h"
#include "serve/keys.h"
#include "serve/model_fetch.h"
#include "serve/registration.h"
#include "strategy/host.h"
#include "transport/conn.h"
#include "transport/listener.h"

/* The calls up the layers: transport -> core and serve, core -> serve. */
static const tg_conn_hooks_t  tg__conn_hooks = {
    .on_register = tg_serve_register,
    .on_active = tg_serve_active,
    .on_frame = tg_request_frame,
    .on_room = tg_request_room,
    .on_close = tg_request_conn_gone,
};

static void tg__usage(FILE *f);
static int tg__parse_args(tg_engine_t *e, int argc, char **argv);
static void tg__signal_cb(uv_signal_t *sig, int signum);
static int tg__plugins_start(tg_engine_t *e);


static void
tg__usage(FILE *f)
{
    fprintf(f,
        "usage: thinkgated --socket PATH [options]\n"
        "\n"
        "  --socket PATH            unix socket nginx workers register on\n"
        "                           (required; the directory is created)\n"
        "  --allow-user NAME        also accept workers running as NAME\n"
        "                           (repeatable; root and our own user are\n"
        "                           always accepted)\n"
        "  --allow-env NAME         configurations may name the variable\n"
        "                           NAME in api_key_env= / password_env=\n"
        "                           (repeatable; THINKGATE_* always may)\n"
        "  --plugin-dir DIR         strategy plugins load only from DIR\n"
        "  --log-level LEVEL        error, warn, info (default), debug\n"
        "  --score-device DEV       auto (default), cpu, cuda: the\n"
        "                           embedder's device where\n"
        "                           thinkgate_embedder says device=auto\n"
        "  --lua-dir DIR            Redis scripts (default: the checkout's\n"
        "                           or installed lua/ directory)\n"
        "  --key-labels N           client keys with their own Prometheus\n"
        "                           series (default 100; later keys are\n"
        "                           counted as key=\"other\")\n"
        "  --session-lease MS       a session lock's lease (default 10000,\n"
        "                           1000 to 600000): renewed every third\n"
        "                           of it while its request runs, so an\n"
        "                           engine that dies frees a session\n"
        "                           after at most this long\n"
        "  --help                   this text\n");
}


static int
tg__parse_args(tg_engine_t *e, int argc, char **argv)
{
    static const struct option  opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "allow-user", required_argument, NULL, 'u' },
        { "allow-env", required_argument, NULL, 'E' },
        { "plugin-dir", required_argument, NULL, 'p' },
        { "log-level", required_argument, NULL, 'l' },
        { "score-device", required_argument, NULL, 'd' },
        { "lua-dir", required_argument, NULL, 'L' },
        { "key-labels", required_argument, NULL, 'K' },
        { "session-lease", required_argument, NULL, 'S' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 }
    };
    struct passwd  *pw;
    uid_t          *uids;
    char          **names;
    char           *end;
    unsigned long   n;
    int             c, level;

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {

        case 's':
            e->socket_path = optarg;
            break;

        case 'u':
            errno = 0;
            pw = getpwnam(optarg);
            if (pw == NULL) {
                fprintf(stderr, "thinkgated: --allow-user: no user \"%s\"\n",
                        optarg);
                return -EINVAL;
            }
            uids = realloc(e->allowed_uids,
                           (e->nallowed_uids + 1) * sizeof(uid_t));
            if (uids == NULL) {
                return -ENOMEM;
            }
            e->allowed_uids = uids;
            e->allowed_uids[e->nallowed_uids++] = pw->pw_uid;
            break;

        case 'E':
            names = realloc(e->config.allowed_env,
                            (e->config.nallowed_env + 1) * sizeof(char *));
            if (names == NULL) {
                return -ENOMEM;
            }
            e->config.allowed_env = names;
            e->config.allowed_env[e->config.nallowed_env++] = optarg;
            break;

        case 'p':
            e->plugin_dir = optarg;
            break;

        case 'l':
            level = tg_log_level_parse(optarg);
            if (level < 0) {
                fprintf(stderr, "thinkgated: --log-level must be error, "
                        "warn, info or debug, not \"%s\"\n", optarg);
                return -EINVAL;
            }
            tg_log_level = level;
            break;

        case 'd':
            if (strcmp(optarg, "auto") == 0) {
                e->score_device = TG_SCORE_AUTO;
            } else if (strcmp(optarg, "cpu") == 0) {
                e->score_device = TG_SCORE_CPU;
            } else if (strcmp(optarg, "cuda") == 0) {
                e->score_device = TG_SCORE_CUDA;
            } else {
                fprintf(stderr, "thinkgated: --score-device must be auto, "
                        "cpu or cuda, not \"%s\"\n", optarg);
                return -EINVAL;
            }
            break;

        case 'L':
            if (strlen(optarg) >= sizeof(e->lua_dir)) {
                fprintf(stderr, "thinkgated: --lua-dir is too long\n");
                return -EINVAL;
            }
            strcpy(e->lua_dir, optarg);
            break;

        case 'K':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (optarg[0] == '\0' || optarg[0] == '-' || *end != '\0'
                || errno != 0 || n > 100000)
            {
                fprintf(stderr, "thinkgated: --key-labels must be a number "
                        "from 0 to 100000, not \"%s\"\n", optarg);
                return -EINVAL;
            }
            e->key_labels = (unsigned) n;
            break;

        case 'S':
            errno = 0;
            n = strtoul(optarg, &end, 10);
            if (optarg[0] == '\0' || optarg[0] == '-' || *end != '\0'
                || errno != 0 || n < 1000 || n > 600000)
            {
                fprintf(stderr, "thinkgated: --session-lease must be a "
                        "number of milliseconds from 1000 to 600000, not "
                        "\"%s\"\n", optarg);
                return -EINVAL;
            }
            e->session_lease_ms = n;
            break;

        case 'h':
            tg__usage(stdout);
            exit(0);

        default:
            tg__usage(stderr);
            return -EINVAL;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "thinkgated: unexpected argument \"%s\"\n",
                argv[optind]);
        return -EINVAL;
    }

    if (e->lua_dir[0] == '\0'
        && tg_redis_default_lua_dir(e->lua_dir, sizeof(e->lua_dir)) != 0)
    {
        fprintf(stderr, "thinkgated: cannot find the lua/ directory; "
                "give --lua-dir\n");
        return -EINVAL;
    }

    if (e->socket_path == NULL || e->socket_path[0] == '\0') {
        fprintf(stderr, "thinkgated: --socket PATH is required\n");
        tg__usage(stderr);
        return -EINVAL;
    }

    return 0;
}


static void
tg__signal_cb(uv_signal_t *sig, int signum)
{
    tg_engine_t  *e = sig->data;
    tg_conn_t    *c;
    tg_queue_t   *q, *next;

    if (e->stopping) {
        return;
    }
    e->stopping = 1;

    tg_log_info("%s: shutting down", strsignal(signum));

    tg_listener_stop(e);

    for (q = tg_queue_head(&e->conns); q != tg_queue_sentinel(&e->conns);
         q = next)
    {
        next = tg_queue_next(q);
        c = tg_queue_data(q, tg_conn_t, link);
        tg_conn_close(c, "engine shutting down");
    }

    /* Closing requests cancelled their transfers; the client goes now,
     * then every remaining handle, so that the loop runs dry. */
    tg_http_client_free(e->http);
    e->http = NULL;
    tg_model_fetch_stop(e);
    tg_group_wait_stop(e);
    tg_health_check_stop(e);

    if (e->plugins != NULL) {
        uv_close((uv_handle_t *) &e->plugin_timer, NULL);
    }
    tg_host_shutdown();
    /* No request is left to hear from an embedder. */
    tg_embed_close_all(e);

    /* Closed requests released their session locks; Redis goes last. */
    tg_shared_close_all(e);

    uv_close((uv_handle_t *) &e->sigterm, NULL);
    uv_close((uv_handle_t *) &e->sigint, NULL);
    uv_close((uv_handle_t *) &e->reaper, NULL);
}


static void
tg__plugins_log(void *data, int level, const char *msg)
{
    (void) data;
    tg_log(level, "plugins: %s", msg);
}


static void
tg__plugins_timer_cb(uv_timer_t *t)
{
    tg_engine_t  *e = t->data;

    /* stat() of a few files: cheap enough for the loop. */
    (void) tg_plugin_refresh(e->plugins);
}


/* The plugin registry of --plugin-dir, every plugin loaded, and the
 * timer that notices changed files. */
static int
tg__plugins_start(tg_engine_t *e)
{
    char  err[512];
    int   rc;

    tg_host_init(e);
    if (e->plugin_dir == NULL) {
        tg_log_warn("no --plugin-dir: every API request will be refused");
        return 0;
    }

    rc = tg_plugin_registry_new(&e->plugins, e->plugin_dir, &tg_host_api,
                                err, sizeof(err));
    if (rc != 0) {
        tg_log_error("--plugin-dir %s: %s", e->plugin_dir, err);
        return rc;
    }
    tg_plugin_registry_set_log(e->plugins, tg__plugins_log, NULL);

    rc = tg_plugin_load_all(e->plugins);
    if (rc < 0) {
        tg_log_error("--plugin-dir %s: cannot read it: %s", e->plugin_dir,
                     strerror(-rc));
        return rc;
    }
    tg_log_info("%d strategy plugins loaded from %s", rc,
                tg_plugin_registry_dir(e->plugins));

    e->plugin_timer.data = e;
    if (uv_timer_init(e->loop, &e->plugin_timer) != 0
        || uv_timer_start(&e->plugin_timer, tg__plugins_timer_cb,
                          TG_PLUGIN_REFRESH_MS, TG_PLUGIN_REFRESH_MS) != 0)
    {
        tg_log_error("cannot start the plugin refresh timer");
        return -ENOMEM;
    }
    return 0;
}


int
main(int argc, char **argv)
{
    tg_engine_t  e;
    uv_loop_t    loop;
    int          rc;

    memset(&e, 0, sizeof(e));
    e.key_labels = TG_KEY_LABELS;
    e.listen_fd = -1;
    tg_config_init(&e.config);
    tg_queue_init(&e.conns);
    tg_queue_init(&e.group_waiters);
    tg_queue_init(&e.model_fetches);
    tg_queue_init(&e.health_checks);

    if (tg__parse_args(&e, argc, argv) != 0) {
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);

    rc = uv_loop_init(&loop);
    if (rc != 0) {
        tg_log_error("uv_loop_init: %s", uv_strerror(rc));
        return 1;
    }
    e.loop = &loop;
    e.started_ms = uv_now(&loop);
    e.conn_hooks = &tg__conn_hooks;
    e.request_hooks = &tg_serve_request_hooks;
    e.host_hooks = &tg_serve_host_hooks;
    e.keys = tg_keys_new(e.key_labels);
    if (e.keys == NULL) {
        tg_log_error("out of memory");
        return 1;
    }

    e.http = tg_http_client_new(&loop);
    if (e.http == NULL) {
        tg_log_error("cannot initialize the backend client (libcurl)");
        return 1;
    }

    if (uv_idle_init(&loop, &e.reaper) != 0
        || uv_signal_init(&loop, &e.sigterm) != 0
        || uv_signal_init(&loop, &e.sigint) != 0)
    {
        tg_log_error("cannot create libuv handles");
        return 1;
    }
    e.reaper.data = &e;
    e.sigterm.data = &e;
    e.sigint.data = &e;

    if (uv_signal_start(&e.sigterm, tg__signal_cb, SIGTERM) != 0
        || uv_signal_start(&e.sigint, tg__signal_cb, SIGINT) != 0)
    {
        tg_log_error("cannot watch SIGTERM and SIGINT");
        return 1;
    }

    if (tg__plugins_start(&e) != 0) {
        return 1;
    }

    rc = tg_group_wait_start(&e);
    if (rc != 0) {
        tg_log_error("cannot start the grouped pools' timer: %s",
                     uv_strerror(rc));
        return 1;
    }

    rc = tg_model_fetch_start(&e);
    if (rc != 0) {
        tg_log_error("cannot start the model list timer: %s",
                     uv_strerror(rc));
        return 1;
    }

    rc = tg_health_check_start(&e);
    if (rc != 0) {
        tg_log_error("cannot start the health check timer: %s",
                     uv_strerror(rc));
        return 1;
    }

    if (tg_listener_start(&e) != 0) {
        return 1;
    }

    tg_log_info("engine started (pid %d, plugin dir %s)", (int) getpid(),
                e.plugin_dir ? e.plugin_dir : "(none)");

    rc = uv_run(&loop, UV_RUN_DEFAULT);

    /* Requests closed during shutdown wait in the reap list. */
    tg_request_reap(&e);

    rc = uv_loop_close(&loop);
    if (rc != 0) {
        tg_log_warn("loop closed with handles left: %s", uv_strerror(rc));
    }

    /* Versions still held were released with their requests above. */
    if (e.plugins != NULL) {
        tg_plugin_registry_free(e.plugins);
    }
    tg_config_free(&e.config);
    tg_keys_free(e.keys);
    free(e.allowed_uids);
    free(e.config.allowed_env);
    tg_log_info("engine stopped");
    return 0;
}
