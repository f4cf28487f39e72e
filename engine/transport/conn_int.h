/*
 * Functions shared by the two halves of a worker connection:
 * transport/conn.c (lifetime, doorbells, rings) and transport/register.c
 * (the handshake).
 */

#ifndef TG_TRANSPORT_CONN_INT_H
#define TG_TRANSPORT_CONN_INT_H

#include "transport/conn.h"

/* Reads what the socket holds of the registration; registers (or refuses
 * and closes) once it is complete. */
void tg_conn_read_registration(tg_conn_t *conn);

/* Consumes the worker's frames, then retries blocked requests. */
void tg_conn_service(tg_conn_t *conn);

/* Watches the eventfd doorbells a registration passed: 0 or a libuv
 * error. */
int tg_conn_start_bells(tg_conn_t *conn);

/* One doorbell to the worker: 1 on its eventfd, or a byte. */
void tg_conn_doorbell(tg_conn_t *conn);

/* Rings once at the end of this loop pass (see tg_conn_write). */
void tg_conn_doorbell_later(tg_conn_t *conn);

#endif /* TG_TRANSPORT_CONN_INT_H */
