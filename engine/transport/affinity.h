/*
 * The event loop on the CPUs of the workers it serves (util/cpu.h says
 * why): after each registration and each worker gone, the loop thread's
 * affinity becomes the union of the registered workers' sets, within the
 * set the engine was started on.  Unpinned workers may run anywhere, so
 * the loop may too: nothing changes unless the operator pins workers
 * (worker_cpu_affinity).  --cpu-affinity off leaves it to the scheduler.
 */

#ifndef TG_TRANSPORT_AFFINITY_H
#define TG_TRANSPORT_AFFINITY_H

#include "engine.h"

/* Follows the registered workers now, if e->cpu_follow. */
void tg_affinity_follow(tg_engine_t *e);

#endif /* TG_TRANSPORT_AFFINITY_H */
