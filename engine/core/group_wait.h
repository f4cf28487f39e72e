/*
 * Traces waiting for a backend of a policy=grouped pool (route/group.h
 * has the rule).  One list per engine, oldest first, and one timer: it
 * runs the releases on the next loop turn after anything changed (a
 * trace waits, a transfer ends), never inside the caller's frame, and
 * again when the earliest window ends.  A waiting trace has no backend
 * and no transfer; cancelling it only takes it off the list.
 */

#ifndef TG_CORE_GROUP_WAIT_H
#define TG_CORE_GROUP_WAIT_H

#include "engine.h"

/* Initialises the timer.  0 or a negative errno. */
int tg_group_wait_start(tg_engine_t *e);

/* Closes the timer (at shutdown, after every request was closed). */
void tg_group_wait_stop(tg_engine_t *e);

/* Appends t (its wait fields filled) and asks for a release pass. */
void tg_group_wait_add(tg_engine_t *e, tg_trace_t *t);

/* Takes a waiting t off the list. */
void tg_group_wait_remove(tg_engine_t *e, tg_trace_t *t);

/* Asks for a release pass on the next loop turn, when any trace waits. */
void tg_group_wait_kick(tg_engine_t *e);

#endif /* TG_CORE_GROUP_WAIT_H */
