/*
 * The status endpoint (kind "status"): engine, request and backend
 * figures as JSON, or Prometheus text when the arguments hold
 * format=prometheus.
 */

#ifndef TG_SERVE_STATUS_H
#define TG_SERVE_STATUS_H

#include "core/request.h"

void tg_status_respond(tg_request_t *r);

#endif /* TG_SERVE_STATUS_H */
