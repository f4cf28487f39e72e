/*
 * Active health checks: GET {origin}{health=} of every backend configured
 * with health=, every health_interval_ms, on the loop through the backend
 * client.  A 2xx within the interval is a success, anything else a
 * failure; each goes to the backend's circuit breaker (config/health.h).
 * While the breaker is open the checks wait for its cool-off; the first
 * one after it is the half-open probe.
 */

#ifndef TG_SERVE_HEALTH_CHECK_H
#define TG_SERVE_HEALTH_CHECK_H

#include "engine.h"

/* How often the timer looks for checks that are due. */
#define TG_HEALTH_TICK_MS  100

/* Starts the timer.  0 or a negative errno. */
int tg_health_check_start(tg_engine_t *e);

/* Stops the timer and frees the checks the backend client dropped when it
 * was freed (call after tg_http_client_free). */
void tg_health_check_stop(tg_engine_t *e);

#endif /* TG_SERVE_HEALTH_CHECK_H */
