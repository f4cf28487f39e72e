/*
 * Model lists of backends configured without model=: GET {url}/v1/models,
 * asked when a generation naming the backend registers and refreshed on a
 * timer, on the loop through the backend client (never blocking it).  The
 * ids land in the backend's shared counters entry (tg_backend_stats_t
 * models), where config/models.c reads them for GET /v1/models and for
 * routing by a request's "model".
 */

#ifndef TG_SERVE_MODEL_FETCH_H
#define TG_SERVE_MODEL_FETCH_H

#include "engine.h"

/* A list is asked again this long after its last answer; a backend that
 * failed is asked again at the next tick. */
#define TG_MODELS_REFRESH_MS  30000
#define TG_MODELS_TICK_MS     5000

/* Starts the refresh timer.  0 or a negative errno. */
int tg_model_fetch_start(tg_engine_t *e);

/* Asks every backend of g without model= whose list is not known yet and
 * not being asked already. */
void tg_model_fetch_attach(tg_engine_t *e, tg_generation_t *g);

/* Stops the timer and frees the fetches the backend client dropped when
 * it was freed (call after tg_http_client_free). */
void tg_model_fetch_stop(tg_engine_t *e);

#endif /* TG_SERVE_MODEL_FETCH_H */
