/* Test plugin: a good descriptor under the wrong symbol name. */

#include <thinkgate/plugin.h>

static int no_symbol_start(tg_req_t *req);

const tg_plugin_t  thinkgate_plugin_v2 = {
    TG_PLUGIN_HEADER,
    .name = "probe",
    .start = no_symbol_start,
};


static int
no_symbol_start(tg_req_t *req)
{
    (void) req;
    return 0;
}
