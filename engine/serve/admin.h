/*
 * The admin interface (meta kind "admin", nginx's thinkgate_admin
 * location).  Matched on the URI's end, so the location may live under
 * any prefix:
 *
 *   GET  .../plugins                 the plugin list (loader.h's JSON)
 *   POST .../plugins/NAME/reload     load NAME's file again now: 200 with
 *                                    the new version, or the reason (404
 *                                    no such plugin, 422 refused; the old
 *                                    version keeps serving)
 */

#ifndef TG_SERVE_ADMIN_H
#define TG_SERVE_ADMIN_H

#include "core/request.h"

void tg_admin_respond(tg_request_t *r);

#endif /* TG_SERVE_ADMIN_H */
