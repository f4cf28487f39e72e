/*
 * Dispatch of an assembled request by its meta: status, admin, or an
 * OpenAI API call routed to its endpoint and handed to a strategy.
 */

#ifndef TG_SERVE_DISPATCH_H
#define TG_SERVE_DISPATCH_H

#include "core/request.h"
#include "strategy/host.h"

/* Answers or starts the request; errors are answered, never returned. */
void tg_dispatch(tg_request_t *r);

/* serve's side of a request's turns (core/request.h), for
 * engine->request_hooks: dispatch when assembled, sessions watch the
 * output, keys are charged and sessions released at close. */
extern const tg_request_hooks_t  tg_serve_request_hooks;

/* serve's side of the plugin host (strategy/host.h), for
 * engine->host_hooks: key rights, session and response stores, their
 * members of the "thinkgate" object. */
extern const tg_host_hooks_t  tg_serve_host_hooks;

#endif /* TG_SERVE_DISPATCH_H */
