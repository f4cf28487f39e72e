/*
 * The engine's unix socket: creation (parent directory, stale socket,
 * permissions) and accepting workers.
 */

#ifndef TG_TRANSPORT_LISTENER_H
#define TG_TRANSPORT_LISTENER_H

#include "engine.h"

/* Binds e->socket_path and starts accepting.  0 or a negative errno with
 * the reason logged. */
int tg_listener_start(tg_engine_t *e);

/* Stops accepting and removes the socket file. */
void tg_listener_stop(tg_engine_t *e);

#endif /* TG_TRANSPORT_LISTENER_H */
