/*
 * Test plugins with one broken descriptor field each, chosen at build
 * time: CASE_bad_sig (another build signature), CASE_small_size (a size
 * smaller than the fields the host reads), CASE_no_start.
 */

#include <thinkgate/plugin.h>

static int bad_desc_start(tg_req_t *req) __attribute__((unused));

TG_PLUGIN_EXPORT = {
    .abi_version = TG_PLUGIN_ABI_VERSION,
#if defined(CASE_small_size)
    .size = 16,
#else
    .size = sizeof(tg_plugin_t),
#endif
#if defined(CASE_bad_sig)
    .signature = "thinkgate-abi-1/ptr4/be",
#else
    .signature = TG_PLUGIN_SIGNATURE,
#endif
    .name = "probe",
#if !defined(CASE_no_start)
    .start = bad_desc_start,
#endif
};


static int
bad_desc_start(tg_req_t *req)
{
    (void) req;
    return 0;
}
