/*
 * thinkgate — shared helpers of the plugin unit tests (see
 * plugin_test_util.h).
 */

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "plugin_test_util.h"

/* The scripted contents; the fake host keeps pointers to them. */
static char  tg_test_texts[FAKE_HOST_MAX_TRACES][64];


fake_host_t *
tg_test_new(const tg_plugin_t *plugin)
{
    fake_host_t  *h = fake_host_new(plugin);

    cr_assert_not_null(h);
    return h;
}


fake_host_t *
tg_test_host(const tg_plugin_t *plugin, const char *opts,
    const tg_test_trace_t *tr, size_t n)
{
    return tg_test_host_at(plugin, opts, tr, NULL, n);
}


fake_host_t *
tg_test_host_at(const tg_plugin_t *plugin, const char *opts,
    const tg_test_trace_t *tr, const uint64_t *start_ms, size_t n)
{
    fake_host_t  *h = tg_test_new(plugin);
    size_t        i;

    cr_assert_leq(n, FAKE_HOST_MAX_TRACES);
    cr_assert_eq(fake_host_set_options(h, opts), 0, "%s: %s", opts,
                 fake_host_error(h));
    for (i = 0; i < n; i++) {
        fake_trace_script_t  s = { 0 };

        if (tr[i].answer[0] == '-' || tr[i].answer[0] == '!') {
            snprintf(tg_test_texts[i], sizeof(tg_test_texts[i]),
                     "I could not decide.");
        } else {
            snprintf(tg_test_texts[i], sizeof(tg_test_texts[i]),
                     "So it is \\boxed{%s}.", tr[i].answer);
        }
        s.reasoning = "Let me think about this carefully. ";
        s.content = tg_test_texts[i];
        s.tokens = tr[i].tokens;
        s.start_ms = start_ms != NULL ? start_ms[i] : 0;
        s.finish_reason = tr[i].length ? "length" : "stop";
        if (tr[i].answer[0] == '!') {
            s.fail_after = tr[i].tokens / 2 + 1;
            s.error = "backend went away";
        }
        cr_assert_eq(fake_host_add_trace(h, &s), 0);
    }
    return h;
}


void
tg_test_clean(fake_host_t *h)
{
    cr_expect_eq(fake_host_violations(h), 0, "ABI misuse: %s",
                 fake_host_violation(h));
    cr_expect_eq(fake_host_destroyed(h), 1);
    fake_host_free(h);
}


uint64_t
tg_test_rand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}


const tg_option_t *
tg_test_option(const tg_plugin_t *plugin, const char *name)
{
    const tg_option_t  *o;

    for (o = plugin->options; o != NULL && o->name != NULL; o++) {
        if (strcmp(o->name, name) == 0) {
            return o;
        }
    }
    return NULL;
}
