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

/*
 * Criterion runs each test in a worker process and does not count a leak
 * report printed at the worker's exit as a failure; the leak-sensitive
 * tests therefore ask LeakSanitizer themselves, once the registry is
 * gone and every version unloaded.  Plain builds check the counters only.
 */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define t_assert_no_leaks() \
    cr_assert_eq(__lsan_do_recoverable_leak_check(), 0, "leaks (see above)")
#else
#define t_assert_no_leaks()
#endif

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
static void t_finish(void);


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


/* Ends a registry test: frees the registry (unloading what nobody holds)
 * and, under ASan, checks that nothing leaked. */
static void
t_finish(void)
{
    tg_plugin_registry_free(t_reg);
    t_reg = NULL;
    t_assert_no_leaks();
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
    /* The plugin directory's path is not shown (issue 14, bug 8). */
    cr_assert_str_eq(json_string_value(json_object_get(o, "file")),
                     "probe.so");
    cr_assert_eq(json_array_size(json_object_get(o, "options")), 5);
    {
        json_t  *n = json_array_get(json_object_get(o, "options"), 0);

        cr_assert_str_eq(json_string_value(json_object_get(n, "name")), "n");
        cr_assert_str_eq(json_string_value(json_object_get(n, "type")),
                         "int");
        cr_assert_str_eq(json_string_value(json_object_get(n, "default")),
                         "8");
        cr_assert_eq(json_integer_value(json_object_get(n, "max")), 64);
    }
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

    t_finish();
}


Test(loader, wrong_abi_names_file_and_versions)
{
    int   rc;
    char  err[512], want[PATH_MAX + 64];

    t_install("bad_abi", "probe");
    rc = tg_plugin_load(t_reg, "probe", err, sizeof(err));
    cr_assert_eq(rc, -EPROTO);

    snprintf(want, sizeof(want), "plugin %s/probe.so: ABI version 99, "
             "engine speaks %u", tg_plugin_registry_dir(t_reg),
             TG_PLUGIN_ABI_VERSION);
    cr_assert_str_eq(err, want);
    cr_assert_eq(t_counter("load:bad_abi"), 0, "load() ran");
    cr_assert_str_eq(t_last_log, want);

    t_finish();
}


/* ABI 2 retired tg_plugin_t's spare[8]: a plugin built for ABI 1 is
 * refused before anything in it runs, naming both versions. */
Test(loader, abi1_plugin_refused_naming_both_versions)
{
    char  err[512], want[PATH_MAX + 64];

    cr_assert_eq(TG_PLUGIN_ABI_VERSION, 2);
    t_install("old_abi", "probe");
    cr_assert_eq(tg_plugin_load(t_reg, "probe", err, sizeof(err)),
                 -EPROTO);
    snprintf(want, sizeof(want), "plugin %s/probe.so: ABI version 1, "
             "engine speaks 2", tg_plugin_registry_dir(t_reg));
    cr_assert_str_eq(err, want);
    cr_assert_eq(t_counter("load:bad_abi"), 0, "load() ran");

    t_finish();
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

    t_finish();
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

    t_finish();
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

    t_finish();
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

    t_finish();
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

    t_finish();
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

    t_finish();
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
    cr_assert(strstr(why, "ABI version 99, engine speaks ") != NULL, "%s",
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

    t_finish();
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

    t_finish();
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
    t_assert_no_leaks();

    t_finish();
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
    t_assert_no_leaks();

    t_finish();
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

    t_finish();
}


/* The admin API's texts name plugin files without the directory: every
 * "DIR/" goes, also after a "DIR" that is not followed by a slash (issue
 * 14, bug 8: the rest of such a text was copied whole). */
Test(loader, public_text_leaves_out_every_dir)
{
    char  in[3 * PATH_MAX], out[3 * PATH_MAX], want[3 * PATH_MAX];
    char *dir = realpath(t_dir, NULL);

    cr_assert_not_null(dir);
    snprintf(in, sizeof(in), "%s-old/x.so and %s/ffs.so: bad ABI in "
             "%s/ffs.so", dir, dir, dir);
    snprintf(want, sizeof(want), "%s-old/x.so and ffs.so: bad ABI in "
             "ffs.so", dir);
    tg_plugin_public_text(t_reg, in, out, sizeof(out));
    cr_assert_str_eq(out, want);

    snprintf(in, sizeof(in), "%s/a.so", dir);
    tg_plugin_public_text(t_reg, in, out, 4);
    cr_assert_str_eq(out, "a.s", "cut to fit");
    tg_plugin_public_text(t_reg, "no path", out, sizeof(out));
    cr_assert_str_eq(out, "no path");
    free(dir);
    t_finish();
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


/* ---- options ---------------------------------------------------------- */

static const tg_option_t  t_options[] = {
    { "n", TG_OPT_INT, "8", 1, 64, NULL, "traces to start" },
    { "temperature", TG_OPT_DOUBLE, "0.6", 0, 2, NULL, "sampling" },
    { "early_stop", TG_OPT_BOOL, "off", 0, 0, NULL, "stop early" },
    { "tag", TG_OPT_STRING, NULL, 0, 0, NULL, "free text" },
    { "mode", TG_OPT_ENUM, "exact", 0, 0, "exact|none|fuzzy", "vote" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

static const tg_plugin_t  t_ffs = {
    TG_PLUGIN_HEADER,
    .name = "ffs",
    .options = t_options,
};


/* Parses one key=value against t_ffs and expects err to equal want (or
 * success when want is NULL). */
static void
t_option(const char *key, const char *value, const char *want)
{
    int              rc;
    char             err[512];
    const char      *keys[1], *values[1];
    tg_opt_values_t  vals;

    keys[0] = key;
    values[0] = value;
    err[0] = '\0';

    rc = tg_plugin_parse_options(&t_ffs, keys, values, 1, &vals, err,
                                 sizeof(err));
    if (want == NULL) {
        cr_assert_eq(rc, 0, "%s=%s: %s", key, value, err);
        tg_opt_values_free(&vals);
        return;
    }

    cr_assert_eq(rc, -EINVAL, "%s=%s accepted", key, value);
    cr_assert_str_eq(err, want);
    cr_assert_null(vals.v);
    tg_opt_values_free(&vals);
}


Test(options, defaults_and_values)
{
    int              rc;
    char             err[512];
    tg_opt_values_t  vals;
    static const char *keys[] = { "n", "early_stop", "tag", "n" };
    static const char *values[] = { "4", "on", "a-b_c", "16" };

    rc = tg_plugin_parse_options(&t_ffs, NULL, NULL, 0, &vals, err,
                                 sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(vals.n, 5);
    cr_assert_eq(tg_opt_get_int(&vals, "n"), 8);
    cr_assert_float_eq(tg_opt_get_double(&vals, "temperature"), 0.6, 1e-12);
    cr_assert_eq(tg_opt_get_bool(&vals, "early_stop"), 0);
    cr_assert_str_eq(tg_opt_get_str(&vals, "early_stop"), "false");
    cr_assert_null(tg_opt_get_str(&vals, "tag"), "no default, no value");
    cr_assert_str_eq(tg_opt_get_str(&vals, "mode"), "exact");
    cr_assert_eq(tg_opt_find(&vals, "n")->given, 0);
    cr_assert_eq(tg_opt_get_int(&vals, "nope"), 0);
    cr_assert_null(tg_opt_get_str(&vals, "nope"));
    tg_opt_values_free(&vals);

    /* Given values win over defaults; a key given twice keeps the last
     * (sources concatenated in rising precedence). */
    rc = tg_plugin_parse_options(&t_ffs, keys, values, 4, &vals, err,
                                 sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(tg_opt_get_int(&vals, "n"), 16);
    cr_assert_float_eq(tg_opt_get_double(&vals, "n"), 16.0, 1e-12);
    cr_assert_str_eq(tg_opt_get_str(&vals, "n"), "16");
    cr_assert_eq(tg_opt_get_bool(&vals, "early_stop"), 1);
    cr_assert_str_eq(tg_opt_get_str(&vals, "early_stop"), "true");
    cr_assert_str_eq(tg_opt_get_str(&vals, "tag"), "a-b_c");
    cr_assert_eq(tg_opt_find(&vals, "tag")->given, 1);
    tg_opt_values_free(&vals);

    /* A plugin without options takes none. */
    {
        tg_plugin_t  bare = { TG_PLUGIN_HEADER, .name = "bare" };

        rc = tg_plugin_parse_options(&bare, NULL, NULL, 0, &vals, err,
                                     sizeof(err));
        cr_assert_eq(rc, 0);
        cr_assert_eq(vals.n, 0);
        tg_opt_values_free(&vals);
        rc = tg_plugin_parse_options(&bare, keys, values, 1, &vals, err,
                                     sizeof(err));
        cr_assert_eq(rc, -EINVAL);
        cr_assert_str_eq(err, "unknown option 'n' for strategy bare");
    }

    t_assert_no_leaks();
}


/* A plugin without options given none (passthrough, every request)
 * holds no values and allocates none; given one, it is refused. */
Test(options, none_declared_none_given)
{
    tg_plugin_t      p = t_ffs;
    tg_opt_values_t  vals;
    const char      *keys[1] = { "n" }, *values[1] = { "2" };
    char             err[512];

    p.options = NULL;
    cr_assert_eq(tg_plugin_parse_options(&p, NULL, NULL, 0, &vals, err,
                                         sizeof(err)), 0, "%s", err);
    cr_assert_eq(vals.plugin, &p);
    cr_assert_eq(vals.n, 0);
    cr_assert_null(vals.v);
    cr_assert_null(tg_opt_find(&vals, "n"));
    tg_opt_values_free(&vals);

    cr_assert_eq(tg_plugin_parse_options(&p, keys, values, 1, &vals, err,
                                         sizeof(err)), -EINVAL);
    cr_assert_str_eq(err, "unknown option 'n' for strategy ffs");
}


Test(options, accepted_forms)
{
    t_option("n", "1", NULL);
    t_option("n", "64", NULL);
    t_option("temperature", "0", NULL);
    t_option("temperature", "2.0", NULL);
    t_option("temperature", "1e-3", NULL);
    t_option("early_stop", "true", NULL);
    t_option("early_stop", "1", NULL);
    t_option("early_stop", "off", NULL);
    t_option("early_stop", "false", NULL);
    t_option("early_stop", "0", NULL);
    t_option("tag", "", NULL);
    t_option("mode", "fuzzy", NULL);

    t_assert_no_leaks();
}


Test(options, every_error)
{
    char  long_tag[300];

    t_option("nn", "8", "unknown option 'nn' for strategy ffs");
    t_option("n", "abc", "option 'n' for strategy ffs: 'abc' is not an "
             "integer in 1..64");
    t_option("n", "", "option 'n' for strategy ffs: '' is not an integer "
             "in 1..64");
    t_option("n", "8x", "option 'n' for strategy ffs: '8x' is not an "
             "integer in 1..64");
    t_option("n", " 8", "option 'n' for strategy ffs: ' 8' is not an "
             "integer in 1..64");
    t_option("n", "2.5", "option 'n' for strategy ffs: '2.5' is not an "
             "integer in 1..64");
    t_option("n", "0", "option 'n' for strategy ffs: '0' is out of range "
             "1..64");
    t_option("n", "65", "option 'n' for strategy ffs: '65' is out of range "
             "1..64");
    t_option("n", "-1", "option 'n' for strategy ffs: '-1' is out of range "
             "1..64");
    t_option("n", "99999999999999999999", "option 'n' for strategy ffs: "
             "'99999999999999999999' is out of range 1..64");
    t_option("temperature", "hot", "option 'temperature' for strategy ffs: "
             "'hot' is not a number in 0..2");
    t_option("temperature", "nan", "option 'temperature' for strategy ffs: "
             "'nan' is not a number in 0..2");
    t_option("temperature", "inf", "option 'temperature' for strategy ffs: "
             "'inf' is not a number in 0..2");
    t_option("temperature", "2.5", "option 'temperature' for strategy ffs: "
             "'2.5' is out of range 0..2");
    t_option("temperature", "-0.1", "option 'temperature' for strategy ffs: "
             "'-0.1' is out of range 0..2");
    t_option("early_stop", "yes", "option 'early_stop' for strategy ffs: "
             "'yes' is not a boolean (on/off, true/false, 1/0)");
    t_option("mode", "best", "option 'mode' for strategy ffs: 'best' is not "
             "one of exact|none|fuzzy");
    t_option("mode", "", "option 'mode' for strategy ffs: '' is not one of "
             "exact|none|fuzzy");
    t_option("mode", "exac", "option 'mode' for strategy ffs: 'exac' is not "
             "one of exact|none|fuzzy");

    memset(long_tag, 'x', 257);
    long_tag[257] = '\0';
    t_option("tag", long_tag, "option 'tag' for strategy ffs: value of 257 "
             "bytes is longer than 256");
    long_tag[256] = '\0';
    t_option("tag", long_tag, NULL);

    t_assert_no_leaks();
}


/* ---- selection -------------------------------------------------------- */

static void
t_sel_ok(const tg_plugin_selection_t *sel, const char *name, size_t n,
    const char *const *kv)
{
    size_t  i;

    if (name == NULL) {
        cr_assert_null(sel->name);
    } else {
        cr_assert_str_eq(sel->name, name);
    }

    cr_assert_eq(sel->n, n);
    for (i = 0; i < n; i++) {
        cr_assert_str_eq(sel->keys[i], kv[2 * i]);
        cr_assert_str_eq(sel->values[i], kv[2 * i + 1]);
    }
}


static void
t_header_bad(const char *text, const char *want)
{
    int                    rc;
    char                   err[512];
    tg_plugin_selection_t  sel;

    rc = tg_plugin_selection_parse_header(text, strlen(text), &sel, err,
                                          sizeof(err));
    cr_assert_eq(rc, -EINVAL, "'%s' accepted", text);
    cr_assert_str_eq(err, want, "for '%s'", text);
    cr_assert_null(sel.name);
    cr_assert_null(sel.keys);
}


Test(selection, header)
{
    int                    rc, i;
    char                   err[512], many[1024];
    size_t                 off;
    tg_plugin_selection_t  sel;
    static const char     *kv[] = { "n", "8", "k", "2" };

    rc = tg_plugin_selection_parse_header("ffs; n=8; k=2", 13, &sel, err,
                                          sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 2, kv);
    tg_plugin_selection_free(&sel);

    rc = tg_plugin_selection_parse_header(" ffs ;n=8 ;\tk=2\t", 16, &sel,
                                          err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 2, kv);
    tg_plugin_selection_free(&sel);

    rc = tg_plugin_selection_parse_header("passthrough", 11, &sel, err,
                                          sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "passthrough", 0, NULL);
    tg_plugin_selection_free(&sel);

    /* len bounds the text: what follows is not read. */
    rc = tg_plugin_selection_parse_header("ffs; n=8; k=2", 8, &sel, err,
                                          sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 1, kv);
    tg_plugin_selection_free(&sel);

    t_header_bad("", "no strategy name");
    t_header_bad("   ", "no strategy name");
    t_header_bad("; n=8", "no strategy name");
    t_header_bad("n=8", "expected a strategy name before 'n=8'");
    t_header_bad("FFS", "invalid strategy name 'FFS' (letters a-z, digits "
                 "and '_')");
    t_header_bad("../ffs", "invalid strategy name '../ffs' (letters a-z, "
                 "digits and '_')");
    t_header_bad("ffs; n", "expected key=value, got 'n'");
    t_header_bad("ffs; n=", "option 'n' has no value");
    t_header_bad("ffs; =8", "option without a name before '=8'");
    t_header_bad("ffs;; n=8", "empty item after 'ffs;'");
    t_header_bad("ffs; n=8;", "empty item after 'ffs; n=8;'");
    t_header_bad("ffs; n=\"8\"", "option 'n': quotes are not supported in "
                 "'\"8\"'");
    t_header_bad("ffs; n='8'", "option 'n': quotes are not supported in "
                 "''8''");
    t_header_bad("ffs; n=8 9", "option 'n': blank or control character in "
                 "value '8 9'");
    t_header_bad("ffs; N=8", "invalid option name 'N' (letters a-z, digits "
                 "and '_')");
    t_header_bad("ffs; n=1; n=2", "option 'n' given twice");
    t_header_bad("ffs; n=1\r\n", "control character at offset 8");

    off = (size_t) snprintf(many, sizeof(many), "ffs");
    for (i = 0; i <= TG_SELECTION_MAX; i++) {
        off += (size_t) snprintf(many + off, sizeof(many) - off, ";o%d=1", i);
    }
    t_header_bad(many, "more than 64 options");

    t_assert_no_leaks();
}


Test(selection, args_and_argv)
{
    int                    rc;
    char                   err[512];
    tg_plugin_selection_t  sel;
    static const char     *kv[] = { "n", "8", "k", "2" };
    static const char     *argv[] = { "ffs", "n=8", "k=2" };
    static const char     *bad_argv[] = { "ffs", "n=8", "k" };

    rc = tg_plugin_selection_parse_args("ffs n=8 k=2", 11, &sel, err,
                                        sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 2, kv);
    tg_plugin_selection_free(&sel);

    rc = tg_plugin_selection_parse_args("  ffs \t n=8   k=2  ", 19, &sel,
                                        err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 2, kv);
    tg_plugin_selection_free(&sel);

    rc = tg_plugin_selection_parse_args("  ", 2, &sel, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(err, "no strategy name");

    rc = tg_plugin_selection_parse_args("ffs n=8;k=2", 11, &sel, err,
                                        sizeof(err));
    cr_assert_eq(rc, 0, "a ';' is part of a word here: %s", err);
    cr_assert_str_eq(sel.values[0], "8;k=2");
    tg_plugin_selection_free(&sel);

    rc = tg_plugin_selection_parse_args("ffs n = 8", 9, &sel, err,
                                        sizeof(err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(err, "expected key=value, got 'n'");

    rc = tg_plugin_selection_parse_argv(argv, 3, &sel, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 2, kv);
    tg_plugin_selection_free(&sel);

    rc = tg_plugin_selection_parse_argv(bad_argv, 3, &sel, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(err, "expected key=value, got 'k'");

    rc = tg_plugin_selection_parse_argv(argv, 0, &sel, err, sizeof(err));
    cr_assert_eq(rc, -EINVAL);
    cr_assert_str_eq(err, "no strategy name");

    t_assert_no_leaks();
}


static void
t_json_bad(const char *text, const char *want)
{
    int                    rc;
    char                   err[512];
    json_t                *j;
    tg_plugin_selection_t  sel;

    j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    cr_assert_not_null(j, "%s", text);
    rc = tg_plugin_selection_parse_json(j, &sel, err, sizeof(err));
    json_decref(j);
    cr_assert_eq(rc, -EINVAL, "'%s' accepted", text);
    cr_assert_str_eq(err, want);
    cr_assert_null(sel.name);
}


Test(selection, json)
{
    int                    rc;
    char                   err[512];
    json_t                *j;
    tg_plugin_selection_t  sel;
    static const char     *kv[] = {
        "n", "8", "temperature", "0.5", "early_stop", "true",
        "stop", "false", "mode", "exact match"
    };

    j = json_loads("{\"strategy\":\"ffs\",\"n\":8,\"temperature\":0.5,"
                   "\"early_stop\":true,\"stop\":false,"
                   "\"mode\":\"exact match\"}", JSON_PRESERVE_ORDER, NULL);
    cr_assert_not_null(j);
    rc = tg_plugin_selection_parse_json(j, &sel, err, sizeof(err));
    json_decref(j);
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, "ffs", 5, kv);
    tg_plugin_selection_free(&sel);

    /* Parameters without a strategy: the caller picks the name. */
    j = json_loads("{\"n\":8}", 0, NULL);
    rc = tg_plugin_selection_parse_json(j, &sel, err, sizeof(err));
    json_decref(j);
    cr_assert_eq(rc, 0, "%s", err);
    t_sel_ok(&sel, NULL, 1, kv);
    tg_plugin_selection_free(&sel);

    t_json_bad("[1]", "\"thinkgate\" must be an object");
    t_json_bad("\"ffs\"", "\"thinkgate\" must be an object");
    t_json_bad("{\"strategy\":8}", "\"strategy\" must be a string");
    t_json_bad("{\"strategy\":\"\"}", "no strategy name");
    t_json_bad("{\"strategy\":\"a/b\"}", "invalid strategy name 'a/b' "
               "(letters a-z, digits and '_')");
    t_json_bad("{\"strategy\":\"ffs\",\"n\":null}", "option 'n': value must "
               "be a number, boolean or string");
    t_json_bad("{\"strategy\":\"ffs\",\"n\":[8]}", "option 'n': value must "
               "be a number, boolean or string");
    t_json_bad("{\"strategy\":\"ffs\",\"n\":{}}", "option 'n': value must "
               "be a number, boolean or string");
    t_json_bad("{\"strategy\":\"ffs\",\"Top K\":1}", "invalid option name "
               "'Top K' (letters a-z, digits and '_')");
    t_json_bad("{\"strategy\":\"ffs\",\"tag\":\"a\\u0000b\"}",
               "option 'tag': NUL in value");

    t_assert_no_leaks();
}


Test(selection, end_to_end_against_a_table)
{
    int                    rc;
    char                   err[512];
    tg_opt_values_t        vals;
    tg_plugin_selection_t  sel;

    rc = tg_plugin_selection_parse_header("ffs; n=12; mode=none", 20, &sel,
                                          err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    rc = tg_plugin_parse_options(&t_ffs, (const char *const *) sel.keys,
                                 (const char *const *) sel.values, sel.n,
                                 &vals, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_eq(tg_opt_get_int(&vals, "n"), 12);
    cr_assert_str_eq(tg_opt_get_str(&vals, "mode"), "none");
    cr_assert_float_eq(tg_opt_get_double(&vals, "temperature"), 0.6, 1e-12);
    tg_opt_values_free(&vals);
    tg_plugin_selection_free(&sel);

    t_assert_no_leaks();
}
