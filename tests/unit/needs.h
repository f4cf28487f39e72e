/*
 * A unit test whose input is missing (redis-server, the model files, the
 * recorded traces) is skipped on a developer's machine; in CI (CI=true,
 * which .ci/run sets) it fails instead, so that a CI machine that lost an
 * input does not pass by skipping what the test was meant to prove.
 * The e2e suite follows the same rule (tests/e2e/harness.py, missing()).
 */

#ifndef TG_TEST_NEEDS_H
#define TG_TEST_NEEDS_H

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <criterion/criterion.h>

static inline int
tg_test_in_ci(void)
{
    const char  *v = getenv("CI");

    return v != NULL && (strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0
                         || strcasecmp(v, "yes") == 0);
}

/* TG_TEST_MISSING("format", args...): the format must be a literal. */
#define TG_TEST_MISSING(...)                                                 \
    do {                                                                     \
        if (tg_test_in_ci()) {                                               \
            cr_assert_fail("CI=true and a needed input is missing: "        \
                           __VA_ARGS__);                                     \
        }                                                                    \
        cr_skip_test(__VA_ARGS__);                                           \
    } while (0)

#endif /* TG_TEST_NEEDS_H */
