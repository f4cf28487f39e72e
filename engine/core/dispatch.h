/*
 * Dispatch of an assembled request by its meta: status, admin, or an
 * OpenAI API call routed to its endpoint and handed to a strategy.
 */

#ifndef TG_CORE_DISPATCH_H
#define TG_CORE_DISPATCH_H

#include "core/request.h"

/* Answers or starts the request; errors are answered, never returned. */
void tg_dispatch(tg_request_t *r);

#endif /* TG_CORE_DISPATCH_H */
