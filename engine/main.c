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
#include "util/cpu.h"

/* The calls up the layers: transport -> core and serve, core -> serve. */
static const tg_conn_hooks_t  tg__conn_hooks = {
    .on_register = tg_serve_register,
    .on_active = tg_serve_active,
    .on_frame = tg_request_frame,
    .on_room = tg_request_room,
    .on_close = tg_request_conn_gone,
};

static void tg__usage(FILE *f);
static int tg__arg_socket(tg_engine_t *e, char *arg);
static int tg__arg_allow_user(tg_engine_t *e, char *arg);
static int tg__arg_allow_env(tg_engine_t *e, char *arg);
static int tg__arg_plugin_dir(tg_engine_t *e, char *arg);
static int tg__arg_cpu_affinity(tg_engine_t *e, char *arg);
static int tg__arg_log_level(tg_engine_t *e, char *arg);
static int tg__arg_score_device(tg_engine_t *e, char *arg);
static int tg__arg_lua_dir(tg_engine_t *e, char *arg);
static int tg__arg_number(const char *arg, unsigned long min,
    unsigned long max, unsigned long *n);
static int tg__arg_key_labels(tg_engine_t *e, char *arg);
static int tg__arg_session_lease(tg_engine_t *e, char *arg);
static int tg__arg_help(tg_engine_t *e, char *arg);
static int tg__check_args(tg_engine_t *e);
static int tg__parse_args(tg_engine_t *e, int argc, char **argv);
static void tg__signal_cb(uv_signal_t *sig, int signum);
static int tg__plugins_start(tg_engine_t *e);
static int tg__loop_start(tg_engine_t *e, uv_loop_t *loop);
static int tg__timers_start(tg_engine_t *e);
static void tg__engine_free(tg_engine_t *e);


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
        "  --cpu-affinity MODE      workers (default): the event loop\n"
        "                           runs on the CPUs of the registered\n"
        "                           workers (all of them unless nginx\n"
        "                           pins its workers with\n"
        "                           worker_cpu_affinity), so that their\n"
        "                           hand-offs stay on one CPU; off: where\n"
        "                           the scheduler puts it\n"
        "  --help                   this text\n");
}


/* One command-line option: its long name, whether it takes a value and
 * the function that stores it in the engine (0 or a negative errno, with
 * the message on stderr). */
typedef struct {
    const char  *name;
    int          has_arg;
    int        (*set)(tg_engine_t *e, char *arg);
} tg__arg_t;

/* getopt_long's value for row i of tg__args: past every short option. */
#define TG__ARG_VAL  256

static const tg__arg_t  tg__args[] = {
    { "socket", required_argument, tg__arg_socket },
    { "allow-user", required_argument, tg__arg_allow_user },
    { "allow-env", required_argument, tg__arg_allow_env },
    { "plugin-dir", required_argument, tg__arg_plugin_dir },
    { "log-level", required_argument, tg__arg_log_level },
    { "score-device", required_argument, tg__arg_score_device },
    { "lua-dir", required_argument, tg__arg_lua_dir },
    { "key-labels", required_argument, tg__arg_key_labels },
    { "session-lease", required_argument, tg__arg_session_lease },
    { "cpu-affinity", required_argument, tg__arg_cpu_affinity },
    { "help", no_argument, tg__arg_help },
};

#define TG__NARGS  (sizeof(tg__args) / sizeof(tg__args[0]))


static int
tg__arg_socket(tg_engine_t *e, char *arg)
{
    e->socket_path = arg;
    return 0;
}


static int
tg__arg_allow_user(tg_engine_t *e, char *arg)
{
    struct passwd  *pw;
    uid_t          *uids;

    errno = 0;
    pw = getpwnam(arg);
    if (pw == NULL) {
        fprintf(stderr, "thinkgated: --allow-user: no user \"%s\"\n", arg);
        return -EINVAL;
    }
    uids = realloc(e->allowed_uids, (e->nallowed_uids + 1) * sizeof(uid_t));
    if (uids == NULL) {
        return -ENOMEM;
    }
    e->allowed_uids = uids;
    e->allowed_uids[e->nallowed_uids++] = pw->pw_uid;
    return 0;
}


static int
tg__arg_allow_env(tg_engine_t *e, char *arg)
{
    char  **names;

    names = realloc(e->config.allowed_env,
                    (e->config.nallowed_env + 1) * sizeof(char *));
    if (names == NULL) {
        return -ENOMEM;
    }
    e->config.allowed_env = names;
    e->config.allowed_env[e->config.nallowed_env++] = arg;
    return 0;
}


static int
tg__arg_plugin_dir(tg_engine_t *e, char *arg)
{
    e->plugin_dir = arg;
    return 0;
}


static int
tg__arg_log_level(tg_engine_t *e, char *arg)
{
    int  level;

    (void) e;
    level = tg_log_level_parse(arg);
    if (level < 0) {
        fprintf(stderr, "thinkgated: --log-level must be error, "
                "warn, info or debug, not \"%s\"\n", arg);
        return -EINVAL;
    }
    tg_log_level = level;
    return 0;
}


static int
tg__arg_score_device(tg_engine_t *e, char *arg)
{
    if (strcmp(arg, "auto") == 0) {
        e->score_device = TG_SCORE_AUTO;
    } else if (strcmp(arg, "cpu") == 0) {
        e->score_device = TG_SCORE_CPU;
    } else if (strcmp(arg, "cuda") == 0) {
        e->score_device = TG_SCORE_CUDA;
    } else {
        fprintf(stderr, "thinkgated: --score-device must be auto, "
                "cpu or cuda, not \"%s\"\n", arg);
        return -EINVAL;
    }
    return 0;
}


static int
tg__arg_lua_dir(tg_engine_t *e, char *arg)
{
    if (strlen(arg) >= sizeof(e->lua_dir)) {
        fprintf(stderr, "thinkgated: --lua-dir is too long\n");
        return -EINVAL;
    }
    strcpy(e->lua_dir, arg);
    return 0;
}


/* A decimal number from min to max into *n: 0, or -EINVAL. */
static int
tg__arg_number(const char *arg, unsigned long min, unsigned long max,
    unsigned long *n)
{
    char  *end;

    errno = 0;
    *n = strtoul(arg, &end, 10);
    if (arg[0] == '\0' || arg[0] == '-' || *end != '\0' || errno != 0
        || *n < min || *n > max)
    {
        return -EINVAL;
    }
    return 0;
}


static int
tg__arg_key_labels(tg_engine_t *e, char *arg)
{
    unsigned long  n;

    if (tg__arg_number(arg, 0, 100000, &n) != 0) {
        fprintf(stderr, "thinkgated: --key-labels must be a number "
                "from 0 to 100000, not \"%s\"\n", arg);
        return -EINVAL;
    }
    e->key_labels = (unsigned) n;
    return 0;
}


static int
tg__arg_session_lease(tg_engine_t *e, char *arg)
{
    unsigned long  n;

    if (tg__arg_number(arg, 1000, 600000, &n) != 0) {
        fprintf(stderr, "thinkgated: --session-lease must be a "
                "number of milliseconds from 1000 to 600000, not "
                "\"%s\"\n", arg);
        return -EINVAL;
    }
    e->session_lease_ms = n;
    return 0;
}


static int
tg__arg_cpu_affinity(tg_engine_t *e, char *arg)
{
    if (strcmp(arg, "workers") == 0) {
        e->cpu_follow = 1;
    } else if (strcmp(arg, "off") == 0) {
        e->cpu_follow = 0;
    } else {
        fprintf(stderr, "thinkgated: --cpu-affinity must be workers or "
                "off, not \"%s\"\n", arg);
        return -EINVAL;
    }
    return 0;
}


static int
tg__arg_help(tg_engine_t *e, char *arg)
{
    (void) e;
    (void) arg;
    tg__usage(stdout);
    exit(0);
}


/* What the options leave for the defaults and the required: the lua/
 * directory found, a socket given. */
static int
tg__check_args(tg_engine_t *e)
{
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


static int
tg__parse_args(tg_engine_t *e, int argc, char **argv)
{
    int             c, rc;
    size_t          i;
    struct option   opts[TG__NARGS + 1];

    for (i = 0; i < TG__NARGS; i++) {
        opts[i].name = tg__args[i].name;
        opts[i].has_arg = tg__args[i].has_arg;
        opts[i].flag = NULL;
        opts[i].val = TG__ARG_VAL + (int) i;
    }
    memset(&opts[TG__NARGS], 0, sizeof(struct option));

    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            return tg__arg_help(e, NULL);
        }

        if (c < TG__ARG_VAL || c >= TG__ARG_VAL + (int) TG__NARGS) {
            tg__usage(stderr);
            return -EINVAL;
        }

        rc = tg__args[c - TG__ARG_VAL].set(e, optarg);
        if (rc != 0) {
            return rc;
        }
    }

    if (optind < argc) {
        fprintf(stderr, "thinkgated: unexpected argument \"%s\"\n",
                argv[optind]);
        return -EINVAL;
    }

    return tg__check_args(e);
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
    tg_request_timers_close();
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


/* The loop, the engine's hooks, the key table, the backend client and
 * the signal handles: 0, or 1 with the error logged. */
static int
tg__loop_start(tg_engine_t *e, uv_loop_t *loop)
{
    int  rc;

    rc = uv_loop_init(loop);
    if (rc != 0) {
        tg_log_error("uv_loop_init: %s", uv_strerror(rc));
        return 1;
    }
    e->loop = loop;
    e->started_ms = uv_now(loop);
    e->conn_hooks = &tg__conn_hooks;
    e->request_hooks = &tg_serve_request_hooks;
    e->host_hooks = &tg_serve_host_hooks;
    e->keys = tg_keys_new(e->key_labels);
    if (e->keys == NULL) {
        tg_log_error("out of memory");
        return 1;
    }

    e->http = tg_http_client_new(loop);
    if (e->http == NULL) {
        tg_log_error("cannot initialize the backend client (libcurl)");
        return 1;
    }

    if (uv_idle_init(loop, &e->reaper) != 0
        || uv_signal_init(loop, &e->sigterm) != 0
        || uv_signal_init(loop, &e->sigint) != 0)
    {
        tg_log_error("cannot create libuv handles");
        return 1;
    }
    e->reaper.data = e;
    e->sigterm.data = e;
    e->sigint.data = e;

    if (uv_signal_start(&e->sigterm, tg__signal_cb, SIGTERM) != 0
        || uv_signal_start(&e->sigint, tg__signal_cb, SIGINT) != 0)
    {
        tg_log_error("cannot watch SIGTERM and SIGINT");
        return 1;
    }

    return 0;
}


/* The grouped pools', model list and health check timers: 0, or 1 with
 * the error logged. */
static int
tg__timers_start(tg_engine_t *e)
{
    int  rc;

    rc = tg_group_wait_start(e);
    if (rc != 0) {
        tg_log_error("cannot start the grouped pools' timer: %s",
                     uv_strerror(rc));
        return 1;
    }

    rc = tg_model_fetch_start(e);
    if (rc != 0) {
        tg_log_error("cannot start the model list timer: %s",
                     uv_strerror(rc));
        return 1;
    }

    rc = tg_health_check_start(e);
    if (rc != 0) {
        tg_log_error("cannot start the health check timer: %s",
                     uv_strerror(rc));
        return 1;
    }

    return 0;
}


/* What the engine holds after its loop has closed. */
static void
tg__engine_free(tg_engine_t *e)
{
    /* Versions still held were released with their requests. */
    if (e->plugins != NULL) {
        tg_plugin_registry_free(e->plugins);
    }
    tg_config_free(&e->config);
    tg_keys_free(e->keys);
    free(e->allowed_uids);
    free(e->config.allowed_env);
}


int
main(int argc, char **argv)
{
    tg_engine_t  e;
    uv_loop_t    loop;
    int          rc;

    memset(&e, 0, sizeof(e));
    e.key_labels = TG_KEY_LABELS;
    e.cpu_follow = 1;
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

    /* Before any thread starts: they all begin on this set. */
    rc = tg_cpu_save_base();
    if (rc != 0) {
        tg_log_warn("cannot read the engine's CPU set (%s): the event loop "
                    "stays where the scheduler puts it", strerror(-rc));
    }

    if (tg__loop_start(&e, &loop) != 0
        || tg__plugins_start(&e) != 0
        || tg__timers_start(&e) != 0
        || tg_listener_start(&e) != 0)
    {
        return 1;
    }

    tg_log_info("engine started (pid %d, plugin dir %s)", (int) getpid(),
                e.plugin_dir ? e.plugin_dir : "(none)");

    rc = uv_run(&loop, UV_RUN_DEFAULT);

    /* Requests closed during shutdown wait in the reap list. */
    tg_request_reap(&e);
    tg_request_spares_free();

    rc = uv_loop_close(&loop);
    if (rc != 0) {
        tg_log_warn("loop closed with handles left: %s", uv_strerror(rc));
    }

    tg__engine_free(&e);
    tg_log_info("engine stopped");
    return 0;
}
