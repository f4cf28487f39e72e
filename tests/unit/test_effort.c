/*
 * core/effort.c: levels, the defaults, the rule parser and the meta's
 * per-location rules.
 */

#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "core/effort.h"


Test(effort, levels_by_name)
{
    cr_assert_eq(tg_effort_level("minimal"), TG_EFFORT_MINIMAL);
    cr_assert_eq(tg_effort_level("high"), TG_EFFORT_HIGH);
    cr_assert_eq(tg_effort_level("extreme"), -1);
    cr_assert_eq(tg_effort_level(NULL), -1);
    cr_assert_str_eq(tg_effort_name(TG_EFFORT_LOW), "low");
    cr_assert_str_eq(tg_effort_name(9), "");
}


Test(effort, defaults_parse_and_rise)
{
    tg_effort_t  e;
    char         msg[256];
    uint32_t     last = 0;
    int          level;

    for (level = 0; level < TG_EFFORT_HIGH; level++) {
        cr_assert_eq(tg_effort_rule(NULL, level, &e, msg, sizeof(msg)), 0,
                     "%s", msg);
        cr_assert_gt(e.budget, last);
        cr_assert_str_eq(e.strategy, "");
        last = e.budget;
    }
    cr_assert_eq(tg_effort_rule(NULL, TG_EFFORT_HIGH, &e, msg, sizeof(msg)),
                 0);
    cr_assert_eq(e.budget, 0);
    cr_assert_str_eq(e.strategy, "self_consistency n=4 early_stop=exact");
}


Test(effort, location_rules_win_per_level)
{
    json_t      *meta = json_pack("{s:{s:s}}", "effort", "low",
                                  "budget=512 strategy=trimr m=3");
    tg_effort_t  e;
    char         msg[256];

    cr_assert_eq(tg_effort_rule(meta, TG_EFFORT_LOW, &e, msg, sizeof(msg)),
                 0, "%s", msg);
    cr_assert_eq(e.level, TG_EFFORT_LOW);
    cr_assert_eq(e.budget, 512);
    cr_assert_str_eq(e.strategy, "trimr m=3");
    cr_assert_eq(tg_effort_rule(meta, TG_EFFORT_MEDIUM, &e, msg,
                                sizeof(msg)), 0);
    cr_assert_eq(e.budget, 4096);
    json_decref(meta);
}


Test(effort, bad_rules_say_why)
{
    static const struct {
        const char  *text;
        const char  *why;
    } bad[] = {
        { "", "empty" },
        { "strategy=ffs", "starts with budget" },
        { "budget=0", "1..1000000" },
        { "budget=1000001", "1..1000000" },
        { "budget=12x", "1..1000000" },
        { "budget=none n=4", "strategy=NAME" },
        { "budget=none strategy=ffs budget=3", "once" },
        { "budget=none strategy=ffs n", "key=value" },
    };
    tg_effort_t  e;
    char         msg[256];
    size_t       i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        cr_assert_eq(tg_effort_parse(bad[i].text, &e, msg, sizeof(msg)),
                     -EINVAL, "%s", bad[i].text);
        cr_assert(strstr(msg, bad[i].why) != NULL, "%s: %s", bad[i].text,
                  msg);
    }
}


Test(effort, strategy_text_is_bounded)
{
    char         text[TG_EFFORT_STRATEGY_MAX + 64];
    tg_effort_t  e;
    char         msg[256];

    strcpy(text, "budget=none strategy=ffs ");
    memset(text + strlen(text), 'k', TG_EFFORT_STRATEGY_MAX);
    strcpy(text + sizeof(text) - 40, "=1");
    cr_assert_eq(tg_effort_parse(text, &e, msg, sizeof(msg)), -EINVAL);
    cr_assert(strstr(msg, "longer") != NULL, "%s", msg);
}
