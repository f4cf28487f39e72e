/*
 * Circuit breakers (engine/config/health.c) and the pool's use of them
 * (engine/route/pool.c): consecutive failures and error rate open,
 * cool-off, one half-open probe, its outcome, cancelled transfers,
 * settings from the configuration document.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "config/generation.h"
#include "config/health.h"
#include "log.h"
#include "route/pool.h"

static tg_health_t  h;

static void
setup(void)
{
    tg_health_conf_t  conf = { NULL, 5000, 3, 1000, 0 };

    tg_log_level = TG_LOG_ERROR;
    memset(&h, 0, sizeof(h));
    tg_health_configure(&h, "b0", &conf);
}


Test(health, opens_after_consecutive_failures, .init = setup)
{
    tg_health_record(&h, TG_HEALTH_FAIL, "refused", 10);
    tg_health_record(&h, TG_HEALTH_FAIL, "refused", 11);
    tg_health_record(&h, TG_HEALTH_OK, NULL, 12);
    tg_health_record(&h, TG_HEALTH_FAIL, "refused", 13);
    tg_health_record(&h, TG_HEALTH_FAIL, "refused", 14);
    cr_assert_eq(h.state, TG_HEALTH_CLOSED, "a success resets the count");
    cr_assert(tg_health_usable(&h, 14));

    tg_health_record(&h, TG_HEALTH_FAIL, "reset", 15);
    cr_assert_eq(h.state, TG_HEALTH_OPEN);
    cr_assert_eq(h.opened, 1);
    cr_assert_str_eq(h.last_error, "reset");
    cr_assert_not(tg_health_usable(&h, 15));
    cr_assert_not(tg_health_usable(&h, 1014));
    cr_assert(tg_health_usable(&h, 1015));
}


Test(health, half_open_probe_closes_or_reopens, .init = setup)
{
    int  i;

    for (i = 0; i < 3; i++) {
        tg_health_record(&h, TG_HEALTH_FAIL, NULL, 0);
    }
    cr_assert_eq(h.state, TG_HEALTH_OPEN);

    /* Outcomes of transfers started before it opened change nothing. */
    tg_health_record(&h, TG_HEALTH_OK, NULL, 500);
    cr_assert_eq(h.state, TG_HEALTH_OPEN);

    tg_health_take(&h, 1000);
    cr_assert_eq(h.state, TG_HEALTH_HALF_OPEN);
    cr_assert_not(tg_health_usable(&h, 1000), "one probe at a time");

    tg_health_record(&h, TG_HEALTH_FAIL, "still down", 1100);
    cr_assert_eq(h.state, TG_HEALTH_OPEN);
    cr_assert_eq(h.opened, 2);
    cr_assert_not(tg_health_usable(&h, 2099));

    tg_health_take(&h, 2100);
    cr_assert_eq(h.state, TG_HEALTH_HALF_OPEN);
    tg_health_record(&h, TG_HEALTH_NEUTRAL, NULL, 2150);
    cr_assert_eq(h.state, TG_HEALTH_HALF_OPEN);
    cr_assert(tg_health_usable(&h, 2150), "a cancelled probe frees the slot");

    tg_health_take(&h, 2200);
    tg_health_record(&h, TG_HEALTH_OK, NULL, 2300);
    cr_assert_eq(h.state, TG_HEALTH_CLOSED);
    cr_assert_eq(h.closed, 1);
    cr_assert_eq(h.consecutive, 0);
}


Test(health, error_rate_opens, .init = setup)
{
    tg_health_conf_t  conf = { NULL, 5000, 0, 1000, 50 };
    int               i;

    tg_health_configure(&h, "b0", &conf);

    for (i = 0; i < 8; i++) {
        tg_health_record(&h, i % 2 ? TG_HEALTH_FAIL : TG_HEALTH_OK, NULL, i);
    }
    cr_assert_eq(h.state, TG_HEALTH_CLOSED, "fewer than 10 outcomes");
    tg_health_record(&h, TG_HEALTH_OK, NULL, 8);
    cr_assert_eq(h.state, TG_HEALTH_CLOSED, "4 of 9");
    tg_health_record(&h, TG_HEALTH_FAIL, NULL, 9);
    cr_assert_eq(h.state, TG_HEALTH_OPEN, "5 of 10");
}


Test(health, off_never_opens, .init = setup)
{
    tg_health_conf_t  conf = { NULL, 5000, 0, 1000, 0 };
    int               i;

    tg_health_configure(&h, "b0", &conf);
    for (i = 0; i < 100; i++) {
        tg_health_record(&h, TG_HEALTH_FAIL, NULL, i);
    }
    cr_assert_eq(h.state, TG_HEALTH_CLOSED);
    cr_assert_eq(h.consecutive, 100);
}


#define DOC "{\"backends\":[{\"name\":\"b0\",\"url\":\"http://h:1\"," \
            "\"health\":\"/health\",\"health_interval_ms\":1000," \
            "\"fails\":2,\"cooloff_ms\":60000,\"error_rate\":0}," \
            "{\"name\":\"b1\",\"url\":\"http://h:2\"}]," \
            "\"pools\":[{\"name\":\"p\",\"backends\":[\"b0\",\"b1\"]}]}"

Test(health, pool_skips_an_open_backend)
{
    tg_config_t       cf;
    tg_generation_t  *g;
    tg_backend_t     *b0, *b1, *b;
    tg_pool_t        *p;
    char              err[256];
    int               full, i;

    tg_log_level = TG_LOG_ERROR;
    tg_config_init(&cf);
    cr_assert_eq(tg_config_acquire(&cf, DOC, strlen(DOC), &g, err,
                                   sizeof(err)), 0, "%s", err);
    b0 = tg_generation_backend(g, "b0");
    b1 = tg_generation_backend(g, "b1");
    p = tg_generation_pool(g, "p");
    cr_assert_str_eq(b0->health.path, "/health");
    cr_assert_eq(b0->health.interval_ms, 1000);
    cr_assert_eq(b1->health.path, NULL);
    cr_assert_eq(b1->health.interval_ms, 5000, "the default");
    cr_assert_eq(b1->stats->health.enabled, 0);

    for (i = 0; i < 2; i++) {
        tg_backend_started(b0);
        tg_backend_finished(b0, 1, "connection refused");
    }
    cr_assert_eq(b0->stats->health.state, TG_HEALTH_OPEN);

    for (i = 0; i < 4; i++) {
        b = tg_pool_pick(p, NULL, 0, &full);
        cr_assert_eq(b, b1, "pick %d", i);
    }

    b = tg_pool_pick(p, &b1, 1, &full);
    cr_assert_null(b);
    cr_assert_eq(full, -1, "the rest is open");

    b = tg_pool_pick_prefer(p, b0, NULL, 0, &full);
    cr_assert_eq(b, b1, "an open preferred backend is passed over");

    tg_generation_release(g);
    tg_config_free(&cf);
}


Test(health, refuses_a_bad_path)
{
    tg_config_t       cf;
    tg_generation_t  *g;
    char              err[256];
    const char       *doc = "{\"backends\":[{\"name\":\"b0\",\"url\":"
                            "\"http://h:1\",\"health\":\"health\"}]}";

    tg_log_level = TG_LOG_ERROR;
    tg_config_init(&cf);
    cr_assert_eq(tg_config_acquire(&cf, doc, strlen(doc), &g, err,
                                   sizeof(err)), -EINVAL);
    cr_assert(strstr(err, "health") != NULL, "%s", err);
    tg_config_free(&cf);
}
