/*
 * Test plugin: a descriptor from another ABI: a future one (version 99),
 * or, built with -DCASE_abi1 (old_abi.so), ABI 1, whose descriptor ended
 * with void *spare[8].
 */

#include <thinkgate/plugin.h>

#if defined(CASE_abi1)
#define BAD_ABI_VERSION  1
#define BAD_ABI_SIG      "thinkgate-abi-1/ptr" TG__STR(__SIZEOF_POINTER__) \
                         "/le"
#define BAD_ABI_SIZE     (sizeof(tg_plugin_t) + 8 * sizeof(void *))
#else
#define BAD_ABI_VERSION  99
#define BAD_ABI_SIG      "thinkgate-abi-99"
#define BAD_ABI_SIZE     sizeof(tg_plugin_t)
#endif

static int bad_abi_load(const tg_host_api_t *api, char *err, size_t size);
static int bad_abi_start(tg_req_t *req);

TG_PLUGIN_EXPORT = {
    .abi_version = BAD_ABI_VERSION,
    .size = BAD_ABI_SIZE,
    .signature = BAD_ABI_SIG,
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
