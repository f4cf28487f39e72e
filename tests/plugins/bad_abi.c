/* Test plugin: a descriptor from a future ABI (version 99). */

#include <thinkgate/plugin.h>

static int bad_abi_load(const tg_host_api_t *api, char *err, size_t size);
static int bad_abi_start(tg_req_t *req);

TG_PLUGIN_EXPORT = {
    .abi_version = 99,
    .size = sizeof(tg_plugin_t),
    .signature = "thinkgate-abi-99",
    .name = "probe",
    .version = "99",
    .load = bad_abi_load,
    .start = bad_abi_start,
};


static int
bad_abi_load(const tg_host_api_t *api, char *err, size_t size)
{
    (void) err;
    (void) size;
    /* Must never run: the host refuses the version first. */
    api->counter_add("load:bad_abi", 1);
    return 0;
}


static int
bad_abi_start(tg_req_t *req)
{
    (void) req;
    return 0;
}
