/*
 * reasoning_effort levels and their rules (core/effort.h).
 *
 * The defaults, chosen for open reasoning models whose traces on hard
 * problems run to several thousand tokens:
 *
 *   minimal   budget=256    a glance: little more than restating the task
 *   low       budget=1024   a short plan, then the answer
 *   medium    budget=4096   most problems' whole thinking fits; runaway
 *                           traces (loops, second-guessing) are cut
 *   high      budget=none strategy=self_consistency n=4 early_stop=exact
 *                           unbounded thinking, four samples voted, the
 *                           vote stopped as soon as it is settled: more
 *                           compute for accuracy, as "high" promises
 *
 * A request without reasoning_effort gets neither: the location's
 * strategy, unbounded, as before.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/effort.h"

/* One row per level: its name and its default rule. */
static const struct {
    const char  *name;
    const char  *def;
} tg__effort_levels[TG_EFFORT_LEVELS] = {
    { "minimal", "budget=256" },
    { "low", "budget=1024" },
    { "medium", "budget=4096" },
    { "high", "budget=none strategy=self_consistency n=4 early_stop=exact" }
};


int
tg_effort_level(const char *name)
{
    int  i;

    for (i = 0; name != NULL && i < TG_EFFORT_LEVELS; i++) {
        if (strcmp(name, tg__effort_levels[i].name) == 0) {
            return i;
        }
    }
    return -1;
}


const char *
tg_effort_name(int level)
{
    return level >= 0 && level < TG_EFFORT_LEVELS
           ? tg__effort_levels[level].name : "";
}


const char *
tg_effort_default(int level)
{
    return level >= 0 && level < TG_EFFORT_LEVELS
           ? tg__effort_levels[level].def : "";
}


/* The rule's first word, w (n bytes): budget=N or budget=none. */
static int
tg__effort_budget(const char *w, size_t n, tg_effort_t *out, char *msg,
    size_t msg_size)
{
    char  *end;
    long   v;

    if (n < 7 || memcmp(w, "budget=", 7) != 0) {
        snprintf(msg, msg_size, "\"%.*s\": the rule starts with "
                 "budget=N or budget=none", (int) n, w);
        return -EINVAL;
    }
    if (n == 11 && memcmp(w + 7, "none", 4) == 0) {
        out->budget = 0;
        return 0;
    }

    errno = 0;
    v = strtol(w + 7, &end, 10);
    if (errno != 0 || end != w + n || v < 1 || v > TG_EFFORT_BUDGET_MAX) {
        snprintf(msg, msg_size, "\"%.*s\": budget is 1..%d "
                 "tokens or none", (int) n, w, TG_EFFORT_BUDGET_MAX);
        return -EINVAL;
    }
    out->budget = (uint32_t) v;
    return 0;
}


/* A later word, w (n bytes), the rule's words-th: strategy=NAME right
 * after the budget, then the strategy's options, each appended to
 * out->strategy (*used bytes so far). */
static int
tg__effort_option(const char *w, size_t n, int words, tg_effort_t *out,
    size_t *used, char *msg, size_t msg_size)
{
    if (words == 1 && n > 9 && memcmp(w, "strategy=", 9) == 0) {
        if (n - 9 >= sizeof(out->strategy)) {
            goto too_long;
        }
        memcpy(out->strategy, w + 9, n - 9);
        *used = n - 9;
        out->strategy[*used] = '\0';
        return 0;
    }

    if (words == 1) {
        snprintf(msg, msg_size, "\"%.*s\": options need strategy=NAME "
                 "right after budget=", (int) n, w);
        return -EINVAL;
    }

    if (n >= 7 && memcmp(w, "budget=", 7) == 0) {
        snprintf(msg, msg_size, "budget is given once");
        return -EINVAL;
    }

    if (*used + 1 + n >= sizeof(out->strategy)) {
        goto too_long;
    }
    out->strategy[(*used)++] = ' ';
    memcpy(out->strategy + *used, w, n);
    *used += n;
    out->strategy[*used] = '\0';
    return 0;

too_long:
    snprintf(msg, msg_size, "the strategy and its options are longer "
             "than %d bytes", TG_EFFORT_STRATEGY_MAX - 1);
    return -EINVAL;
}


int
tg_effort_parse(const char *text, tg_effort_t *out, char *msg,
    size_t msg_size)
{
    const char  *p = text, *w, *eq;
    size_t       n, used = 0;
    int          rc, words = 0;

    out->budget = 0;
    out->strategy[0] = '\0';

    while (*p != '\0') {
        while (*p == ' ') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        w = p;
        while (*p != '\0' && *p != ' ') {
            p++;
        }
        n = (size_t) (p - w);
        eq = memchr(w, '=', n);
        if (eq == NULL || eq == w || eq == w + n - 1) {
            snprintf(msg, msg_size, "\"%.*s\": options are key=value",
                     (int) n, w);
            return -EINVAL;
        }

        if (words == 0) {
            rc = tg__effort_budget(w, n, out, msg, msg_size);
        } else {
            rc = tg__effort_option(w, n, words, out, &used, msg, msg_size);
        }
        if (rc != 0) {
            return rc;
        }
        words++;
    }

    if (words == 0) {
        snprintf(msg, msg_size, "empty rule: expected budget=N or "
                 "budget=none");
        return -EINVAL;
    }
    return 0;
}


int
tg_effort_rule(const json_t *meta, int level, tg_effort_t *out, char *msg,
    size_t msg_size)
{
    const char  *text;

    if (level < 0 || level >= TG_EFFORT_LEVELS) {
        snprintf(msg, msg_size, "unknown effort level %d", level);
        return -EINVAL;
    }
    out->level = level;
    text = json_string_value(json_object_get(json_object_get(meta,
                                 "effort"), tg__effort_levels[level].name));
    return tg_effort_parse(text != NULL ? text : tg__effort_levels[level].def,
                           out, msg, msg_size);
}
