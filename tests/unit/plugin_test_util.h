/*
 * thinkgate — what the plugin unit tests share on top of the fake host:
 * a request of scripted voters built from a short table, the end-of-test
 * check, a seeded random generator and option lookup.
 *
 * Helpers assert with Criterion: call them from inside a Test().
 */
#ifndef TG_PLUGIN_TEST_UTIL_H
#define TG_PLUGIN_TEST_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "fake_host.h"

/*
 * A scripted voter.  answer: "A", "17", ... is boxed in the content; "-"
 * has no answer; "!" fails half way.  length: 1 ends it with
 * finish_reason "length" (cut off at max_tokens).
 */
typedef struct {
    const char  *answer;
    uint32_t     tokens;
    int          length;
} tg_test_trace_t;

/* A host for plugin with its load() checked. */
fake_host_t *tg_test_new(const tg_plugin_t *plugin);

/* A host for plugin with options opts (asserted valid) and the n voters
 * of tr scripted in order.  The texts stay valid until the next call. */
fake_host_t *tg_test_host(const tg_plugin_t *plugin, const char *opts,
    const tg_test_trace_t *tr, size_t n);
/* The same with voter i's first token delayed by start_ms[i]. */
fake_host_t *tg_test_host_at(const tg_plugin_t *plugin, const char *opts,
    const tg_test_trace_t *tr, const uint64_t *start_ms, size_t n);

/* Expects no ABI misuse and one destroy(), then frees h. */
void tg_test_clean(fake_host_t *h);

/* xorshift64: the next value of the sequence seeded by *s (not 0). */
uint64_t tg_test_rand(uint64_t *s);

/* The row of the plugin's option table named name; NULL when none. */
const tg_option_t *tg_test_option(const tg_plugin_t *plugin,
    const char *name);

#endif /* TG_PLUGIN_TEST_UTIL_H */
