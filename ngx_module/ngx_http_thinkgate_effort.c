/*
 * thinkgate_effort LEVEL budget=N|none [strategy=NAME] [k=v ...]
 *
 * What a request's reasoning_effort (minimal, low, medium, high) does in
 * this location: a thinking budget in tokens, after which the engine cuts
 * the thinking and leads the model to its answer, and optionally the
 * strategy (with its options) that runs instead of thinkgate_strategy.
 * The arguments after LEVEL are kept as one space-separated string and
 * sent in the REQUEST meta ("effort": {"low": "budget=1024", ...}); the
 * engine applies its documented defaults to the levels not given here
 * (engine/core/effort.c), so that the defaults live in one place, the
 * one that also serves clients without nginx.  A level's strategy= with
 * its options also goes into the configuration document's "strategies",
 * as thinkgate_strategy's text does: the engine checks it against the
 * plugin's option table when a worker registers and refuses the
 * configuration naming the directive and where it was read, instead of
 * answering every request of that level with a 500.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_thinkgate.h"


static char *ngx_http_thinkgate_effort_options(ngx_conf_t *cf,
    ngx_command_t *cmd);
static char *ngx_http_thinkgate_effort_strategy(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_uint_t level, ngx_str_t *rule);


static ngx_str_t  ngx_http_thinkgate_effort_levels[] = {
    ngx_string("minimal"),
    ngx_string("low"),
    ngx_string("medium"),
    ngx_string("high")
};

/* the directive as the engine's refusal names it, by level */
static const char  *ngx_http_thinkgate_effort_directives[] = {
    "thinkgate_effort minimal",
    "thinkgate_effort low",
    "thinkgate_effort medium",
    "thinkgate_effort high"
};

static ngx_conf_num_bounds_t  ngx_http_thinkgate_effort_budget_bounds = {
    ngx_conf_check_num_bounds, 1, 1000000
};


char *
ngx_http_thinkgate_effort(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_loc_conf_t  *lcf = conf;

    char        *rv;
    ngx_int_t    n;
    ngx_str_t   *value, *field, v;
    ngx_uint_t   level;

    value = cf->args->elts;

    for (level = 0; level < NGX_HTTP_THINKGATE_EFFORT_LEVELS; level++) {
        if (value[1].len == ngx_http_thinkgate_effort_levels[level].len
            && ngx_strncmp(value[1].data,
                           ngx_http_thinkgate_effort_levels[level].data,
                           value[1].len)
               == 0)
        {
            break;
        }
    }

    if (level == NGX_HTTP_THINKGATE_EFFORT_LEVELS) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "the level is minimal, low, medium "
                                      "or high");
    }

    field = &lcf->effort[level];

    if (field->data) {
        return "is duplicate for this level";
    }

    if (value[2].len < 8 || ngx_strncmp(value[2].data, "budget=", 7) != 0) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[2],
                                      "expected budget=N or budget=none");
    }

    v.data = value[2].data + 7;
    v.len = value[2].len - 7;

    if (!(v.len == 4 && ngx_strncmp(v.data, "none", 4) == 0)) {
        n = ngx_atoi(v.data, v.len);
        if (n == NGX_ERROR
            || n < ngx_http_thinkgate_effort_budget_bounds.low
            || n > ngx_http_thinkgate_effort_budget_bounds.high)
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[2],
                                          "budget is 1..1000000 tokens "
                                          "or none");
        }
    }

    rv = ngx_http_thinkgate_effort_options(cf, cmd);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_thinkgate_conf_join(cf, 2, field);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    return ngx_http_thinkgate_effort_strategy(cf, cmd, level, field);
}


/*
 * The level's strategy= and options, "NAME k=v ...", as the engine runs
 * them (a tail of the rule), held to the engine's length and recorded for
 * its check at registration; nothing when the rule names no strategy.
 */

static char *
ngx_http_thinkgate_effort_strategy(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_uint_t level, ngx_str_t *rule)
{
    size_t      skip;
    ngx_str_t  *value, text;

    value = cf->args->elts;

    if (cf->args->nelts < 4) {
        return NGX_CONF_OK;
    }

    /* "budget=... strategy=" */
    skip = value[2].len + 1 + sizeof("strategy=") - 1;

    text.data = rule->data + skip;
    text.len = rule->len - skip;

    if (text.len >= TG_EFFORT_STRATEGY_MAX) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[3],
                                      "the strategy and its options are "
                                      "longer than 511 bytes");
    }

    if (ngx_http_thinkgate_strategy_record(cf, &text,
                                  ngx_http_thinkgate_effort_directives[level])
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* After budget=: [strategy=NAME [KEY=VALUE ...]] */

static char *
ngx_http_thinkgate_effort_options(ngx_conf_t *cf, ngx_command_t *cmd)
{
    ngx_str_t   *value, v;
    ngx_uint_t   i;

    value = cf->args->elts;

    for (i = 3; i < cf->args->nelts; i++) {
        if (!ngx_http_thinkgate_conf_is_option(&value[i])) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "options are key=value");
        }

        if (ngx_strncmp(value[i].data, "budget=", 7) == 0) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "budget is given once");
        }

        if (value[i].len > 9
            && ngx_strncmp(value[i].data, "strategy=", 9) == 0)
        {
            if (i != 3) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "strategy= follows budget=");
            }

            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

            if (!ngx_http_thinkgate_conf_valid_name(&v)) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "bad strategy name");
            }

        } else if (i == 3) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "options need strategy=NAME "
                                          "first");
        }
    }

    return NGX_CONF_OK;
}


/* The levels' rules as the meta's "effort" object, or nothing when the
 * location sets none (the engine's defaults apply). */

void
ngx_http_thinkgate_effort_meta(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_loc_conf_t *lcf)
{
    u_char      *p;
    ngx_uint_t   level, any;

    any = 0;

    for (level = 0; level < NGX_HTTP_THINKGATE_EFFORT_LEVELS; level++) {
        if (lcf->effort[level].len == 0) {
            continue;
        }

        if (!any) {
            ngx_http_thinkgate_json_key(j, "effort");
            ngx_http_thinkgate_json_raw(j, "{");
            any = 1;
        }

        /* the level names are plain ASCII, as json_key wants them */
        p = ngx_http_thinkgate_effort_levels[level].data;
        ngx_http_thinkgate_json_key(j, (const char *) p);
        ngx_http_thinkgate_json_str(j, &lcf->effort[level]);
    }

    if (any) {
        ngx_http_thinkgate_json_raw(j, "}");
    }
}
