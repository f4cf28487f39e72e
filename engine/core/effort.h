/*
 * reasoning_effort for any model: what a request's level (OpenAI's
 * minimal, low, medium, high) makes the gateway do.  Each level maps to a
 * thinking budget in tokens (budget forcing, arXiv 2501.19393: the
 * thinking is cut there and the model led to its final answer;
 * strategy/host_budget.c) and optionally to a strategy that runs instead
 * of the location's.  The location's thinkgate_effort directives arrive
 * in the REQUEST meta as "effort": {"low": "budget=512 ...", ...}; levels
 * it does not name keep the defaults below, which live only here.
 */

#ifndef TG_CORE_EFFORT_H
#define TG_CORE_EFFORT_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <thinkgate/protocol.h>

enum {
    TG_EFFORT_MINIMAL = 0,
    TG_EFFORT_LOW,
    TG_EFFORT_MEDIUM,
    TG_EFFORT_HIGH,
    TG_EFFORT_LEVELS
};

#define TG_EFFORT_BUDGET_MAX    1000000

/* One level's rule. */
typedef struct {
    int         level;                  /* TG_EFFORT_* */
    uint32_t    budget;                 /* thinking tokens; 0: none */
    char        strategy[TG_EFFORT_STRATEGY_MAX];  /* "NAME k=v ..." or
                                                      "": the location's */
} tg_effort_t;

/* TG_EFFORT_* for a level's name, or -1. */
int tg_effort_level(const char *name);
const char *tg_effort_name(int level);

/* The level's default rule, as thinkgate_effort would write it. */
const char *tg_effort_default(int level);

/* Parses "budget=N|none [strategy=NAME] [k=v ...]" into out (its level
 * set by the caller).  0, or -EINVAL with msg saying what is wrong. */
int tg_effort_parse(const char *text, tg_effort_t *out, char *msg,
    size_t msg_size);

/* The rule of level for a request: the meta's "effort" entry for it (the
 * location's thinkgate_effort), else the default.  0, or -EINVAL with msg
 * (the location's text is bad: the server's error). */
int tg_effort_rule(const json_t *meta, int level, tg_effort_t *out,
    char *msg, size_t msg_size);

#endif /* TG_CORE_EFFORT_H */
