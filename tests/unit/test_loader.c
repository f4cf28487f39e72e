/*
 * Plugin loader and registry (engine/plugin/): refusals with their
 * messages, reference-counted versions, hot reload, options and the
 * strategy selection parsers.
 *
 * Test plugins are built from tests/plugins/ into TG_TEST_PLUGIN_DIR;
 * each test copies the ones it needs into its own temporary plugin dir,
 * under the name "probe" (the name every test plugin's descriptor has).
 * The plugins count their load() and unload() calls through the host
 * table's counter_add, which the test implements.
 */

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "plugin/loader.h"
#include "plugin/options.h"

#ifndef TG_TEST_PLUGIN_DIR
#define TG_TEST_PLUGIN_DIR "build/tests/plugins"
#endif

#define T_MAX_COUNTERS  32

typedef struct {
    char     name[64];
    int64_t  value;
} t_counter_t;

static t_counter_t            t_counters[T_MAX_COUNTERS];
static size_t                 t_ncounters;
static int                    t_nlogs;
static char                   t_last_log[1024];
static char                   t_dir[256];
static char                   t_outside[256];
static tg_plugin_registry_t  *t_reg;
static tg_host_api_t          t_api;

static void t_counter_add(const char *name, int64_t delta);
static int64_t t_counter(const char *name);
static void t_log(void *data, int level, const char *msg);
static void t_setup(void);
static void t_teardown(void);
static void t_copy(const char *from, const char *to);
static void t_install(const char *built, const char *as);
static void t_rm_dir(const char *dir);


static void
t_counter_add(const char *name, int64_t delta)
{
    size_t  i;

    for (i = 0; i < t_ncounters; i++) {
        if (strcmp(t_counters[i].name, name) == 0) {
            t_counters[i].value += delta;
            return;
        }
    }

    cr_assert(t_ncounters < T_MAX_COUNTERS);
    snprintf(t_counters[t_ncounters].name, sizeof(t_counters[0].name), "%s",
             name);
    t_counters[t_ncounters++].value = delta;
}


static int64_t
t_counter(const char *name)
{
    size_t  i;

    for (i = 0; i < t_ncounters; i++) {
        if (strcmp(t_counters[i].name, name) == 0) {
            return t_counters[i].value;
        }
    }

    return 0;
}


static void
t_log(void *data, int level, const char *msg)
{
    (void) data;
    (void) level;
    t_nlogs++;
    snprintf(t_last_log, sizeof(t_last_log), "%s", msg);
}


static void
t_copy(const char *from, const char *to)
{
    int      in, out;
    char     buf[65536];
    ssize_t  n;

    in = open(from, O_RDONLY);
    cr_assert(in >= 0, "open %s: %s", from, strerror(errno));
    out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(out >= 0, "open %s: %s", to, strerror(errno));

    while ((n = read(in, buf, sizeof(buf))) > 0) {
        cr_assert(write(out, buf, (size_t) n) == n);
    }

    cr_assert(n == 0);
    cr_assert(close(in) == 0);
    cr_assert(close(out) == 0);
}


/* Copies the built plugin <built>.so to <t_dir>/<as>.so through a rename,
 * the way a deploy replaces a file: a new inode every time. */
static void
t_install(const char *built, const char *as)
{
    char  from[PATH_MAX], tmp[PATH_MAX], to[PATH_MAX];

    snprintf(from, sizeof(from), "%s/%s.so", TG_TEST_PLUGIN_DIR, built);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", t_dir, as);
    snprintf(to, sizeof(to), "%s/%s.so", t_dir, as);

    t_copy(from, tmp);
    cr_assert(rename(tmp, to) == 0, "rename: %s", strerror(errno));
}


static void
t_rm_dir(const char *dir)
{
    char  cmd[PATH_MAX + 16];

    if (dir[0] == '\0') {
        return;
    }

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "could not remove %s\n", dir);
    }
}


static void
t_setup(void)
{
    int   rc;
    char  err[512];

    t_ncounters = 0;
    t_nlogs = 0;
    t_outside[0] = '\0';

    snprintf(t_dir, sizeof(t_dir), "/tmp/tg-test-plugins.XXXXXX");
    cr_assert(mkdtemp(t_dir) != NULL);

    t_api.abi_version = TG_PLUGIN_ABI_VERSION;
    t_api.size = sizeof(t_api);
    t_api.counter_add = t_counter_add;

    rc = tg_plugin_registry_new(&t_reg, t_dir, &t_api, err, sizeof(err));
    cr_assert_eq(rc, 0, "registry: %s", err);
    tg_plugin_registry_set_log(t_reg, t_log, NULL);
}


static void
t_teardown(void)
{
    tg_plugin_registry_free(t_reg);
    t_reg = NULL;
    t_rm_dir(t_dir);
    t_rm_dir(t_outside);
}


/* Loads the built plugin as "probe" and expects a refusal naming the
 * file and containing want. */
static void
t_refused(const char *built, int want_rc, const char *want)
{
    int   rc;
    char  err[512], file[PATH_MAX + 16];

    t_install(built, "probe");
    rc = tg_plugin_load(t_reg, "probe", err, sizeof(err));
    cr_assert_eq(rc, want_rc, "%s: rc %d, err %s", built, rc, err);
    cr_assert(strstr(err, want) != NULL, "%s: err '%s' lacks '%s'", built,
              err, want);

    snprintf(file, sizeof(file), "plugin %s/probe.so",
             tg_plugin_registry_dir(t_reg));
    cr_assert(strncmp(err, file, strlen(file)) == 0,
              "err '%s' does not name the file", err);
    cr_assert_str_eq(tg_plugin_last_error(t_reg, "probe"), err);
}


TestSuite(loader, .init = t_setup, .fini = t_teardown);


Test(loader, good_load_and_list)
{
    int                   rc;
    char                  err[512], *text;
    json_t               *arr, *o;
    tg_plugin_version_t  *v;
    const tg_plugin_t    *p;

    t_install("good", "probe");

    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(tg_plugin_version_generation(v), 1);

    p = tg_plugin_version_plugin(v);
    cr_assert_str_eq(p->name, "probe");
    cr_assert_str_eq(p->version, "1.0");
    cr_assert_eq(p->state_size, 16);
    cr_assert(p->start != NULL && p->on_delta != NULL
              && p->on_trace_end != NULL && p->on_aux_result != NULL
              && p->on_timer != NULL && p->on_cancel != NULL
              && p->destroy != NULL);
    p->on_cancel(NULL);     /* the no-op stand-in */
    cr_assert_eq(t_counter("load:1.0"), 1);
    cr_assert_null(tg_plugin_last_error(t_reg, "probe"));

    text = tg_plugin_list_json_text(t_reg);
    cr_assert_not_null(text);
    arr = json_loads(text, 0, NULL);
    free(text);
    cr_assert(json_is_array(arr) && json_array_size(arr) == 1);
    o = json_array_get(arr, 0);
    cr_assert_str_eq(json_string_value(json_object_get(o, "name")), "probe");
    cr_assert_str_eq(json_string_value(json_object_get(o, "version")),
                     "1.0");
    cr_assert_eq(json_integer_value(json_object_get(o, "refs")), 1);
    cr_assert_eq(json_integer_value(json_object_get(o, "generation")), 1);
    cr_assert(strstr(json_string_value(json_object_get(o, "file")),
                     "/probe.so") != NULL);
    cr_assert_eq(json_array_size(json_object_get(o, "options")), 5);
    cr_assert_eq(json_array_size(json_object_get(o, "draining")), 0);
    cr_assert(json_is_null(json_object_get(o, "last_error")));
    json_decref(arr);

    /* Acquiring again does not load again. */
    tg_plugin_release(v);
    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, 0);
    cr_assert_eq(t_counter("load:1.0"), 1);
    tg_plugin_release(v);

    /* The current version is unloaded with the registry. */
    cr_assert_eq(t_counter("unload:1.0"), 0);
    tg_plugin_registry_free(t_reg);
    t_reg = NULL;
    cr_assert_eq(t_counter("unload:1.0"), 1);
}


Test(loader, wrong_abi_names_file_and_versions)
{
    int   rc;
    char  err[512], want[PATH_MAX + 64];

    t_install("bad_abi", "probe");
    rc = tg_plugin_load(t_reg, "probe", err, sizeof(err));
    cr_assert_eq(rc, -EPROTO);

    snprintf(want, sizeof(want), "plugin %s/probe.so: ABI version 99, "
             "engine speaks 1", tg_plugin_registry_dir(t_reg));
    cr_assert_str_eq(err, want);
    cr_assert_eq(t_counter("load:bad_abi"), 0, "load() ran");
    cr_assert_str_eq(t_last_log, want);
}


Test(loader, refusals)
{
    t_refused("no_symbol", -EPROTO, ": no symbol thinkgate_plugin");
    t_refused("load_fails", -EINVAL, "no judge pool configured");
    cr_assert_eq(t_counter("load:load_fails"), 1);
    cr_assert_eq(t_counter("unload:load_fails"), 0);
    t_refused("bad_sig", -EPROTO, "build signature 'thinkgate-abi-1/ptr4/be'"
              ", engine expects '" TG_PLUGIN_SIGNATURE "'");
    t_refused("small_size", -EPROTO, "descriptor size 16, engine reads");
    t_refused("no_start", -EPROTO, "no start() callback");
    t_refused("bad_opt_dup", -EPROTO, "option 'n' appears twice");
    t_refused("bad_opt_type", -EPROTO, "option 'weird': type 42 is unknown");
    t_refused("bad_opt_default", -EPROTO,
              "option 'k': default 'two' is not an integer in 1..8");
    t_refused("bad_opt_bounds", -EPROTO,
              "option 'k': default '100' is out of range 1..8");
    t_refused("bad_opt_enum", -EPROTO,
              "option 'mode': default 'fuzzy' is not one of exact|none");
    t_refused("bad_opt_name", -EPROTO, "name 'top-k' is not");
    t_refused("bad_opt_minmax", -EPROTO, "option 'k': min 10 is above max 1");
}


Test(loader, name_must_match_file)
{
    int   rc;
    char  err[512];

    t_install("good", "other");
    rc = tg_plugin_load(t_reg, "other", err, sizeof(err));
    cr_assert_eq(rc, -EPROTO);
    cr_assert(strstr(err, "/other.so: name 'probe' does not match the file "
                     "name 'other'") != NULL, "%s", err);
}


Test(loader, paths_outside_the_dir)
{
    int                   i, rc;
    char                  err[512], path[PATH_MAX], target[PATH_MAX];
    tg_plugin_version_t  *v;
    static const char    *bad[] = {
        "../x", "a/b", "", "Probe", "probe.so", "/etc/passwd", ".probe",
        "a b",
        "x123456789012345678901234567890123456789012345678901234567890abcd",
    };

    for (i = 0; i < (int) (sizeof(bad) / sizeof(bad[0])); i++) {
        rc = tg_plugin_load(t_reg, bad[i], err, sizeof(err));
        cr_assert_eq(rc, -EINVAL, "%s", bad[i]);
        cr_assert(strstr(err, "path outside the plugin dir") != NULL, "%s",
                  err);
        rc = tg_plugin_acquire(t_reg, bad[i], &v, err, sizeof(err));
        cr_assert_eq(rc, -EINVAL);
    }

    cr_assert_eq(tg_plugin_load(t_reg, NULL, err, sizeof(err)), -EINVAL);

    /* A name of exactly 64 characters is a name. */
    rc = tg_plugin_load(t_reg, "x123456789012345678901234567890123456789012"
                        "345678901234567890abc", err, sizeof(err));
    cr_assert_eq(rc, -ENOENT, "%s", err);
    cr_assert(strstr(err, "no such file") != NULL, "%s", err);

    /* A symlink leading out of the dir. */
    snprintf(t_outside, sizeof(t_outside), "/tmp/tg-test-outside.XXXXXX");
    cr_assert(mkdtemp(t_outside) != NULL);
    snprintf(target, sizeof(target), "%s/probe.so", t_outside);
    t_copy(TG_TEST_PLUGIN_DIR "/good.so", target);
    snprintf(path, sizeof(path), "%s/probe.so", t_dir);
    cr_assert(symlink(target, path) == 0);

    rc = tg_plugin_load(t_reg, "probe", err, sizeof(err));
    cr_assert_eq(rc, -EPERM);
    cr_assert(strstr(err, "path outside the plugin dir") != NULL, "%s", err);
    cr_assert_eq(t_counter("load:1.0"), 0);

    /* A symlink inside the dir is followed. */
    cr_assert(unlink(path) == 0);
    t_install("good", "probe_real");
    cr_assert(symlink("probe_real.so", path) == 0);
    rc = tg_plugin_load(t_reg, "probe", err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
}


Test(loader, missing_file)
{
    int   rc;
    char  err[512], *text;

    rc = tg_plugin_load(t_reg, "nothere", err, sizeof(err));
    cr_assert_eq(rc, -ENOENT);
    cr_assert(strstr(err, "/nothere.so: no such file") != NULL, "%s", err);
    /* Unknown names are the caller's to report. */
    cr_assert_eq(t_nlogs, 0);
    text = tg_plugin_list_json_text(t_reg);
    cr_assert_str_eq(text, "[]");
    free(text);
}


Test(loader, refusal_is_remembered_until_the_file_changes)
{
    int                   rc;
    char                  err[512];
    tg_plugin_version_t  *v;

    t_install("load_fails", "probe");
    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL);
    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert(strstr(err, "no judge pool configured") != NULL, "%s", err);
    cr_assert_eq(t_counter("load:load_fails"), 1, "the same file retried");

    cr_assert_eq(tg_plugin_refresh(t_reg), 0);
    cr_assert_eq(t_counter("load:load_fails"), 1);

    t_install("good", "probe");
    cr_assert_eq(tg_plugin_refresh(t_reg), 1);
    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(tg_plugin_version_generation(v), 1);
    cr_assert_null(tg_plugin_last_error(t_reg, "probe"));
    tg_plugin_release(v);
}


Test(loader, hot_reload_keeps_held_version)
{
    int                   rc;
    char                  err[512];
    json_t               *arr, *drain;
    tg_plugin_version_t  *v1, *v2;

    t_install("good", "probe");
    rc = tg_plugin_acquire(t_reg, "probe", &v1, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(tg_plugin_refresh(t_reg), 0, "nothing changed");

    t_install("good_v2", "probe");
    cr_assert_eq(tg_plugin_refresh(t_reg), 1);
    cr_assert_eq(t_counter("load:2.0"), 1);

    rc = tg_plugin_acquire(t_reg, "probe", &v2, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(tg_plugin_version_plugin(v2)->version, "2.0");
    cr_assert_eq(tg_plugin_version_generation(v2), 2);

    /* The request that started on 1.0 still runs on it. */
    cr_assert_eq(t_counter("unload:1.0"), 0);
    cr_assert_str_eq(tg_plugin_version_plugin(v1)->version, "1.0");

    arr = tg_plugin_list_json(t_reg);
    drain = json_object_get(json_array_get(arr, 0), "draining");
    cr_assert_eq(json_array_size(drain), 1);
    cr_assert_eq(json_integer_value(json_object_get(
        json_array_get(drain, 0), "refs")), 1);
    cr_assert_eq(json_integer_value(json_object_get(
        json_array_get(drain, 0), "generation")), 1);
    json_decref(arr);

    tg_plugin_release(v1);
    cr_assert_eq(t_counter("unload:1.0"), 1);
    cr_assert_eq(t_counter("unload:2.0"), 0);

    arr = tg_plugin_list_json(t_reg);
    drain = json_object_get(json_array_get(arr, 0), "draining");
    cr_assert_eq(json_array_size(drain), 0);
    json_decref(arr);

    tg_plugin_release(v2);
    cr_assert_eq(t_counter("unload:2.0"), 0, "current stays loaded");
}


Test(loader, failed_reload_keeps_old_version)
{
    int                   rc, logs;
    char                  err[512];
    const char           *why;
    tg_plugin_version_t  *v;

    t_install("good", "probe");
    cr_assert_eq(tg_plugin_load(t_reg, "probe", err, sizeof(err)), 0);

    t_install("bad_abi", "probe");
    cr_assert_eq(tg_plugin_refresh(t_reg), 0);
    why = tg_plugin_last_error(t_reg, "probe");
    cr_assert_not_null(why);
    cr_assert(strstr(why, "ABI version 99, engine speaks 1") != NULL, "%s",
              why);
    cr_assert(strstr(t_last_log, "keeps serving") != NULL, "%s", t_last_log);

    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(tg_plugin_version_plugin(v)->version, "1.0");
    cr_assert_eq(tg_plugin_version_generation(v), 1);
    tg_plugin_release(v);

    /* The same bad file is not retried (nor logged) on every refresh. */
    logs = t_nlogs;
    cr_assert_eq(tg_plugin_refresh(t_reg), 0);
    cr_assert_eq(t_nlogs, logs);

    /* An explicit reload tries again and says why. */
    rc = tg_plugin_reload(t_reg, "probe", err, sizeof(err));
    cr_assert_eq(rc, -EPROTO);
    cr_assert(strstr(err, "ABI version 99") != NULL, "%s", err);

    /* A deleted file is reported once; the loaded version serves on. */
    t_install("good_v2", "probe");
    cr_assert_eq(tg_plugin_refresh(t_reg), 1);
    cr_assert_eq(t_counter("unload:1.0"), 1);
    cr_assert_null(tg_plugin_last_error(t_reg, "probe"));

    snprintf(err, sizeof(err), "%s/probe.so", t_dir);
    cr_assert(unlink(err) == 0);
    cr_assert_eq(tg_plugin_refresh(t_reg), 0);
    logs = t_nlogs;
    cr_assert_eq(tg_plugin_refresh(t_reg), 0);
    cr_assert_eq(t_nlogs, logs);
    cr_assert(strstr(tg_plugin_last_error(t_reg, "probe"), "no such file")
              != NULL);
    rc = tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err));
    cr_assert_eq(rc, 0);
    cr_assert_str_eq(tg_plugin_version_plugin(v)->version, "2.0");
    tg_plugin_release(v);
}


Test(loader, reload_now_without_change)
{
    char                  err[512];
    tg_plugin_version_t  *v;

    t_install("good", "probe");
    cr_assert_eq(tg_plugin_load(t_reg, "probe", err, sizeof(err)), 0);
    cr_assert_eq(tg_plugin_reload(t_reg, "probe", err, sizeof(err)), 0,
                 "%s", err);

    /* A fresh copy: its own statics, so its load() ran once. */
    cr_assert_eq(t_counter("load:1.0"), 2);
    cr_assert_eq(t_counter("unload:1.0"), 1, "unheld old version lingers");

    cr_assert_eq(tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err)), 0);
    cr_assert_eq(tg_plugin_version_generation(v), 2);
    tg_plugin_release(v);
}


Test(loader, twenty_reloads_with_interleaved_references)
{
    int                   i, rc;
    char                  err[512];
    json_t               *arr;
    tg_plugin_version_t  *held[21];

    t_install("good", "probe");
    rc = tg_plugin_acquire(t_reg, "probe", &held[0], err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);

    for (i = 1; i <= 20; i++) {
        t_install(i % 2 ? "good_v2" : "good", "probe");
        cr_assert_eq(tg_plugin_refresh(t_reg), 1, "reload %d", i);

        rc = tg_plugin_acquire(t_reg, "probe", &held[i], err, sizeof(err));
        cr_assert_eq(rc, 0, "%s", err);
        cr_assert_eq(tg_plugin_version_generation(held[i]), (uint64_t) i + 1);

        /* Requests end out of order: every third one at once, the others
         * two reloads later. */
        if (i % 3 == 0) {
            tg_plugin_release(held[i]);
            held[i] = NULL;
        }

        if (i >= 2 && held[i - 2] != NULL) {
            tg_plugin_release(held[i - 2]);
            held[i - 2] = NULL;
        }
    }

    for (i = 0; i <= 20; i++) {
        tg_plugin_release(held[i]);
    }

    cr_assert_eq(t_counter("load:1.0") + t_counter("load:2.0"), 21);
    cr_assert_eq(t_counter("unload:1.0") + t_counter("unload:2.0"), 20);

    arr = tg_plugin_list_json(t_reg);
    cr_assert_eq(json_array_size(json_object_get(json_array_get(arr, 0),
                                                 "draining")), 0);
    json_decref(arr);

    tg_plugin_registry_free(t_reg);
    t_reg = NULL;
    cr_assert_eq(t_counter("unload:1.0") + t_counter("unload:2.0"), 21);
}


Test(loader, held_version_outlives_registry)
{
    char                  err[512];
    tg_plugin_version_t  *v;

    t_install("good", "probe");
    cr_assert_eq(tg_plugin_acquire(t_reg, "probe", &v, err, sizeof(err)), 0);

    tg_plugin_registry_free(t_reg);
    t_reg = NULL;
    cr_assert_eq(t_counter("unload:1.0"), 0);
    cr_assert_str_eq(tg_plugin_version_plugin(v)->version, "1.0");

    tg_plugin_release(v);
    cr_assert_eq(t_counter("unload:1.0"), 1);
}


Test(loader, load_all)
{
    char  path[PATH_MAX];

    t_install("good", "probe");
    t_install("bad_abi", "broken");
    snprintf(path, sizeof(path), "%s/Not-A-Name.so", t_dir);
    t_copy(TG_TEST_PLUGIN_DIR "/good.so", path);
    snprintf(path, sizeof(path), "%s/README", t_dir);
    t_copy(TG_TEST_PLUGIN_DIR "/good.so", path);

    cr_assert_eq(tg_plugin_load_all(t_reg), 1);
    cr_assert_eq(t_counter("load:1.0"), 1);
    cr_assert_not_null(tg_plugin_last_error(t_reg, "broken"));
    cr_assert(strstr(t_last_log, "broken.so: ABI version 99") != NULL ||
              strstr(tg_plugin_last_error(t_reg, "broken"), "ABI") != NULL);
}


Test(loader, registry_errors)
{
    int                   rc;
    char                  err[512];
    tg_plugin_registry_t *reg;

    rc = tg_plugin_registry_new(&reg, "/nonexistent/plugins", &t_api, err,
                                sizeof(err));
    cr_assert_eq(rc, -ENOENT);
    cr_assert(strstr(err, "/nonexistent/plugins") != NULL, "%s", err);

    rc = tg_plugin_registry_new(&reg, TG_TEST_PLUGIN_DIR "/good.so", &t_api,
                                err, sizeof(err));
    cr_assert_eq(rc, -ENOTDIR, "%s", err);

    rc = tg_plugin_registry_new(&reg, t_dir, NULL, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL);
}
