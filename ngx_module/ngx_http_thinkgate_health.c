
/*
 * thinkgate nginx module: the health parameters of thinkgate_backend,
 * health=PATH interval=TIME fails=N cooloff=TIME error_rate=N%, read
 * from a parameter table; the engine runs the checks and the circuit
 * breaker (engine/config/health.h).
 */


#include "ngx_http_thinkgate.h"


typedef enum {
    NGX_HTTP_THINKGATE_HEALTH_PATH = 0,
    NGX_HTTP_THINKGATE_HEALTH_TIME,
    NGX_HTTP_THINKGATE_HEALTH_COUNT,
    NGX_HTTP_THINKGATE_HEALTH_PERCENT
} ngx_http_thinkgate_health_kind_e;


typedef struct {
    ngx_str_t                   prefix;     /* "name=" */
    ngx_uint_t                  kind;
    ngx_uint_t                  min;
    ngx_uint_t                  max;
    size_t                      offset;
    const char                 *why;
} ngx_http_thinkgate_health_param_t;


static ngx_int_t ngx_http_thinkgate_health_path_valid(ngx_str_t *v);


static ngx_http_thinkgate_health_param_t  ngx_http_thinkgate_health_params[]
    = {

    { ngx_string("health="), NGX_HTTP_THINKGATE_HEALTH_PATH, 0, 0,
      offsetof(ngx_http_thinkgate_backend_t, health),
      "health is a path such as /health or /v1/models" },

    { ngx_string("interval="), NGX_HTTP_THINKGATE_HEALTH_TIME, 100, 86400000,
      offsetof(ngx_http_thinkgate_backend_t, health_interval),
      "interval is a time from 100ms to 1d" },

    { ngx_string("fails="), NGX_HTTP_THINKGATE_HEALTH_COUNT, 0, 1000,
      offsetof(ngx_http_thinkgate_backend_t, fails),
      "fails is 0 (off) to 1000" },

    { ngx_string("cooloff="), NGX_HTTP_THINKGATE_HEALTH_TIME, 100, 86400000,
      offsetof(ngx_http_thinkgate_backend_t, cooloff),
      "cooloff is a time from 100ms to 1d" },

    { ngx_string("error_rate="), NGX_HTTP_THINKGATE_HEALTH_PERCENT, 0, 100,
      offsetof(ngx_http_thinkgate_backend_t, error_rate),
      "error_rate is a percentage from 0 (off) to 100%" },

    { ngx_null_string, 0, 0, 0, 0, NULL }
};


void
ngx_http_thinkgate_health_init(ngx_http_thinkgate_backend_t *b)
{
    ngx_str_null(&b->health);
    b->health_interval = NGX_CONF_UNSET_MSEC;
    b->fails = NGX_CONF_UNSET_UINT;
    b->cooloff = NGX_CONF_UNSET_MSEC;
    b->error_rate = NGX_CONF_UNSET_UINT;
}


/* The defaults, in one place: without fails=, a backend with health=
 * opens after 3 failures and one without never opens on them. */
void
ngx_http_thinkgate_health_finish(ngx_http_thinkgate_backend_t *b)
{
    ngx_conf_init_msec_value(b->health_interval, 5000);
    ngx_conf_init_uint_value(b->fails, b->health.len ? 3 : 0);
    ngx_conf_init_msec_value(b->cooloff, 10000);
    ngx_conf_init_uint_value(b->error_rate, 0);
}


/* NGX_OK: value was a health parameter, read into b; NGX_DECLINED: it is
 * none; NGX_ERROR: a bad value, said. */
ngx_int_t
ngx_http_thinkgate_conf_health(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_thinkgate_backend_t *b, ngx_str_t *value)
{
    u_char                             *slot;
    ngx_int_t                           n;
    ngx_str_t                           v;
    ngx_http_thinkgate_health_param_t  *p;

    for (p = ngx_http_thinkgate_health_params; p->prefix.len; p++) {
        if (value->len >= p->prefix.len
            && ngx_strncmp(value->data, p->prefix.data, p->prefix.len) == 0)
        {
            break;
        }
    }

    if (p->prefix.len == 0) {
        return NGX_DECLINED;
    }

    v.data = value->data + p->prefix.len;
    v.len = value->len - p->prefix.len;
    slot = (u_char *) b + p->offset;

    switch (p->kind) {

    case NGX_HTTP_THINKGATE_HEALTH_PATH:
        if (!ngx_http_thinkgate_health_path_valid(&v)) {
            goto invalid;
        }
        *(ngx_str_t *) slot = v;
        return NGX_OK;

    case NGX_HTTP_THINKGATE_HEALTH_TIME:
        n = ngx_parse_time(&v, 0);
        break;

    case NGX_HTTP_THINKGATE_HEALTH_PERCENT:
        if (v.len && v.data[v.len - 1] == '%') {
            v.len--;
        }
        n = ngx_atoi(v.data, v.len);
        break;

    default: /* NGX_HTTP_THINKGATE_HEALTH_COUNT */
        n = ngx_atoi(v.data, v.len);
        break;
    }

    if (n == NGX_ERROR || (ngx_uint_t) n < p->min
        || (ngx_uint_t) n > p->max)
    {
        goto invalid;
    }

    if (p->kind == NGX_HTTP_THINKGATE_HEALTH_TIME) {
        *(ngx_msec_t *) slot = (ngx_msec_t) n;

    } else {
        *(ngx_uint_t *) slot = (ngx_uint_t) n;
    }

    return NGX_OK;

invalid:

    (void) ngx_http_thinkgate_conf_bad(cf, cmd, value, p->why);
    return NGX_ERROR;
}


void
ngx_http_thinkgate_health_doc(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_backend_t *b)
{
    ngx_http_thinkgate_json_key(j, "health");
    ngx_http_thinkgate_json_str(j, &b->health);
    ngx_http_thinkgate_json_key(j, "health_interval_ms");
    ngx_http_thinkgate_json_uint(j, b->health_interval);
    ngx_http_thinkgate_json_key(j, "fails");
    ngx_http_thinkgate_json_uint(j, b->fails);
    ngx_http_thinkgate_json_key(j, "cooloff_ms");
    ngx_http_thinkgate_json_uint(j, b->cooloff);
    ngx_http_thinkgate_json_key(j, "error_rate");
    ngx_http_thinkgate_json_uint(j, b->error_rate);
}


/* "/" then URL path characters: no spaces, quotes, backslashes or
 * controls, at most 512 bytes. */
static ngx_int_t
ngx_http_thinkgate_health_path_valid(ngx_str_t *v)
{
    size_t  i;

    if (v->len == 0 || v->len > 512 || v->data[0] != '/') {
        return 0;
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] <= 0x20 || v->data[i] >= 0x7f || v->data[i] == '"'
            || v->data[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}
