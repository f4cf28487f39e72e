/* Test plugin: load() refuses with a reason; unload() must then not run. */

#include <errno.h>
#include <stdio.h>

#include <thinkgate/plugin.h>

static int load_fails_load(const tg_host_api_t *api, char *err, size_t size);
static void load_fails_unload(void);
static int load_fails_start(tg_req_t *req);

static const tg_host_api_t  *load_fails_api;

TG_PLUGIN_EXPORT = {
    TG_PLUGIN_HEADER,
    .name = "probe",
    .version = "bad",
    .load = load_fails_load,
    .unload = load_fails_unload,
    .start = load_fails_start,
};


static int
load_fails_load(const tg_host_api_t *api, char *err, size_t size)
{
    load_fails_api = api;
    api->counter_add("load:load_fails", 1);
    snprintf(err, size, "no judge pool configured");
    return -EINVAL;
}


static void
load_fails_unload(void)
{
    load_fails_api->counter_add("unload:load_fails", 1);
}


static int
load_fails_start(tg_req_t *req)
{
    (void) req;
    return 0;
}
