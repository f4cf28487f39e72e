/*
 * What a worker's registration attaches beside the transport's own work
 * (transport/register.c calls these through engine->conn_hooks): the
 * generation's Redis link and embedder before the reply, and once the
 * worker is active the plugin refresh and the backends' model lists.
 */

#ifndef TG_SERVE_REGISTRATION_H
#define TG_SERVE_REGISTRATION_H

#include <stddef.h>

#include "transport/conn.h"

/* on_register: 0, or a negative errno with err filled (refused). */
int tg_serve_register(tg_conn_t *conn, char *err, size_t errlen);

/* on_active. */
void tg_serve_active(tg_conn_t *conn);

#endif /* TG_SERVE_REGISTRATION_H */
