/*
 * Fakes of what the plugin host (engine/strategy/host*.c) calls below
 * and beside it: core's request output and traces, the generation's
 * pools, keys, state steps, Redis and the embedder.  tests/unit/
 * test_host.c links the real host against them and drives the traces
 * itself through tg_strategy_host's callbacks.
 *
 * Output is recorded in fake_core: the HEAD status, the DATA bytes, the
 * END figures or the ERROR.  Traces start at once on the one pool
 * (fake_core.pool) and do nothing until the test feeds them.
 */

#ifndef TG_TEST_FAKE_CORE_H
#define TG_TEST_FAKE_CORE_H

#include <jansson.h>

#include "core/request.h"
#include "core/trace.h"
#include "util/buf.h"

#define FAKE_CORE_MAX_TRACES  16

typedef struct {
    tg_pool_t       pool;           /* the only pool, named "p" */
    int             head_status;    /* 0: no HEAD */
    tg_buf_t        data;           /* every DATA byte */
    int             ended;          /* END written */
    json_t         *figures;        /* END's figures (the summary) */
    tg_buf_t        figures_text;   /* or as text (tg_request_end_text) */
    int             errored;        /* ERROR written */
    tg_oa_error_t   error;
    tg_trace_t     *traces[FAKE_CORE_MAX_TRACES];
    size_t          ntraces;
    int             cancelled[FAKE_CORE_MAX_TRACES];
} fake_core_t;

extern fake_core_t  fake_core;

/* Forgets the recorded output and frees the traces. */
void fake_core_reset(void);

#endif /* TG_TEST_FAKE_CORE_H */
