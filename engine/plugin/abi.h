/*
 * The plugin ABI (include/thinkgate/plugin.h) as the engine includes it:
 * without the short handle names tg_req_t, tg_trace_t, tg_aux_t and
 * tg_timer_t, which are the plugins' own (the engine's tg_trace_t is its
 * transfer, engine.h).  The host speaks tg_plugin_*_t at the ABI and
 * converts to its own types inside (strategy/host.h).  Engine code
 * includes this file, never <thinkgate/plugin.h> directly.
 */

#ifndef TG_PLUGIN_ABI_H
#define TG_PLUGIN_ABI_H

#ifndef TG_PLUGIN_HOST
#define TG_PLUGIN_HOST  1
#endif
#include <thinkgate/plugin.h>

#endif /* TG_PLUGIN_ABI_H */
