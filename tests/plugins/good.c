/*
 * Test plugin "probe": a well-formed descriptor with one option of each
 * type.  Built twice, with VERSION "1.0" and "2.0", for the reload tests.
 * It reports load() and unload() through the host's counter_add, so the
 * test sees which copies were loaded and unloaded.
 */

#include <errno.h>
#include <stdio.h>

#include <thinkgate/plugin.h>

#ifndef VERSION
#define VERSION "1.0"
#endif

static int good_load(const tg_host_api_t *api, char *err, size_t err_size);
static void good_unload(void);
static int good_start(tg_req_t *req);

static const tg_host_api_t  *good_api;
static int                   good_loads;

static const tg_option_t  good_options[] = {
    { "n", TG_OPT_INT, "8", 1, 64, NULL, "traces to start" },
    { "temperature", TG_OPT_DOUBLE, "0.6", 0, 2, NULL, "sampling" },
    { "early_stop", TG_OPT_BOOL, "off", 0, 0, NULL, "stop early" },
    { "tag", TG_OPT_STRING, NULL, 0, 0, NULL, "free text" },
    { "mode", TG_OPT_ENUM, "exact", 0, 0, "exact|none|fuzzy", "vote" },
    { NULL, 0, NULL, 0, 0, NULL, NULL }
};

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    .name = "probe",
    .version = VERSION,
    .description = "loader test plugin",
    .options = good_options,
    .state_size = 16,
    .load = good_load,
    .unload = good_unload,
    .start = good_start,
};


static int
good_load(const tg_host_api_t *api, char *err, size_t err_size)
{
    /* Each loaded copy has its own statics; a second load() of the same
     * copy means the host dlopen()ed a path already open. */
    if (++good_loads != 1) {
        snprintf(err, err_size, "this copy was loaded before");
        return -EEXIST;
    }

    good_api = api;
    good_api->counter_add("load:" VERSION, 1);

    return 0;
}


static void
good_unload(void)
{
    good_api->counter_add("unload:" VERSION, 1);
}


static int
good_start(tg_req_t *req)
{
    (void) req;
    return 0;
}
