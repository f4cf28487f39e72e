
/*
 * thinkgate nginx module: what the engine loads and talks to besides the
 * backends, both sent in the configuration document (protocol.h):
 *
 *   thinkgate_plugin NAME [NAME...]     plugins to preload ("plugins")
 *   thinkgate_redis ADDR [db=N] [prefix=STR] [password_env=VAR]
 *                   [connect_timeout=TIME] [timeout=TIME]      ("redis")
 */


#include "ngx_http_thinkgate.h"

#include <sys/un.h>


typedef enum {
    NGX_HTTP_THINKGATE_PARAM_UINT = 0,  /* decimal, min..max */
    NGX_HTTP_THINKGATE_PARAM_MSEC,      /* nginx time, min..max ms */
    NGX_HTTP_THINKGATE_PARAM_KEY,       /* printable, no spaces, max long */
    NGX_HTTP_THINKGATE_PARAM_ENV        /* environment variable name */
} ngx_http_thinkgate_param_e;


/* One NAME=VALUE parameter of a directive: a row of a table. */
typedef struct {
    ngx_str_t                   name;       /* with the "=" */
    ngx_uint_t                  type;       /* ngx_http_thinkgate_param_e */
    ngx_uint_t                  def;        /* default, numbers */
    char                       *def_str;    /* default, strings */
    ngx_uint_t                  min;
    ngx_uint_t                  max;
    size_t                      offset;
    char                       *why;        /* the nginx -t complaint */
} ngx_http_thinkgate_param_t;


static ngx_uint_t ngx_http_thinkgate_plugin_name(ngx_str_t *s);
static ngx_uint_t ngx_http_thinkgate_redis_addr(ngx_str_t *s);
static void ngx_http_thinkgate_redis_defaults(
    ngx_http_thinkgate_redis_t *redis);
static char *ngx_http_thinkgate_redis_params_parse(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_thinkgate_redis_t *redis);
static char *ngx_http_thinkgate_conf_param(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_thinkgate_param_t *param, void *dst,
    ngx_str_t *arg);


static ngx_http_thinkgate_param_t  ngx_http_thinkgate_redis_params[] = {

    /* SELECT after connecting */
    { ngx_string("db="), NGX_HTTP_THINKGATE_PARAM_UINT, 0, NULL,
      0, 65535, offsetof(ngx_http_thinkgate_redis_t, db),
      "db must be 0..65535" },

    /* prepended to every key, so that gateways can share a server */
    { ngx_string("prefix="), NGX_HTTP_THINKGATE_PARAM_KEY, 0, "tg:",
      0, 64, offsetof(ngx_http_thinkgate_redis_t, prefix),
      "a prefix is at most 64 printable characters without spaces" },

    /* the engine reads the password from this variable of its own */
    { ngx_string("password_env="), NGX_HTTP_THINKGATE_PARAM_ENV, 0, "",
      1, 64, offsetof(ngx_http_thinkgate_redis_t, password_env),
      "not an environment variable name" },

    /* connect and handshake */
    { ngx_string("connect_timeout="), NGX_HTTP_THINKGATE_PARAM_MSEC,
      1000, NULL, 1, 60000,
      offsetof(ngx_http_thinkgate_redis_t, connect_timeout),
      "expected a time from 1ms to 60s" },

    /* one command's round trip */
    { ngx_string("timeout="), NGX_HTTP_THINKGATE_PARAM_MSEC,
      200, NULL, 1, 60000,
      offsetof(ngx_http_thinkgate_redis_t, timeout),
      "expected a time from 1ms to 60s" },

    { ngx_null_string, 0, 0, NULL, 0, 0, 0, NULL }
};


char *
ngx_http_thinkgate_conf_plugin(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_str_t   *value, *name;
    ngx_uint_t   i, j;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (!ngx_http_thinkgate_plugin_name(&value[i])) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "a plugin name is 1-64 "
                                          "lowercase letters, digits "
                                          "or \"_\"");
        }

        name = mcf->plugins.elts;

        for (j = 0; j < mcf->plugins.nelts; j++) {
            if (name[j].len == value[i].len
                && ngx_strncmp(name[j].data, value[i].data, value[i].len)
                   == 0)
            {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "plugin listed twice");
            }
        }

        name = ngx_array_push(&mcf->plugins);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    return NGX_CONF_OK;
}


/* [a-z0-9_]{1,64}: the file NAME.so in the engine's plugin directory */

static ngx_uint_t
ngx_http_thinkgate_plugin_name(ngx_str_t *s)
{
    size_t   i;
    u_char   ch;

    if (s->len == 0 || s->len > 64) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        ch = s->data[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9')
              || ch == '_'))
        {
            return 0;
        }
    }

    return 1;
}


char *
ngx_http_thinkgate_conf_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    char                        *rv;
    ngx_str_t                   *value;
    ngx_http_thinkgate_redis_t  *redis;

    if (mcf->redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_thinkgate_redis_addr(&value[1])) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "expected host:port or "
                                      "unix:/path/to/socket");
    }

    redis = ngx_pcalloc(cf->pool, sizeof(ngx_http_thinkgate_redis_t));
    if (redis == NULL) {
        return NGX_CONF_ERROR;
    }

    redis->addr = value[1];

    ngx_http_thinkgate_redis_defaults(redis);

    rv = ngx_http_thinkgate_redis_params_parse(cf, cmd, redis);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mcf->redis = redis;

    return NGX_CONF_OK;
}


/* the defaults come from the parameter table */

static void
ngx_http_thinkgate_redis_defaults(ngx_http_thinkgate_redis_t *redis)
{
    char                        *p;
    ngx_http_thinkgate_param_t  *param;

    for (param = ngx_http_thinkgate_redis_params; param->name.len; param++) {
        p = (char *) redis + param->offset;

        switch (param->type) {

        case NGX_HTTP_THINKGATE_PARAM_UINT:
            *(ngx_uint_t *) p = param->def;
            break;

        case NGX_HTTP_THINKGATE_PARAM_MSEC:
            *(ngx_msec_t *) p = param->def;
            break;

        default:
            ((ngx_str_t *) p)->data = (u_char *) param->def_str;
            ((ngx_str_t *) p)->len = ngx_strlen(param->def_str);
            break;
        }
    }
}


/* the parameters after the address, each once */

static char *
ngx_http_thinkgate_redis_params_parse(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_thinkgate_redis_t *redis)
{
    char                        *rv;
    ngx_str_t                   *value;
    ngx_uint_t                   i, seen;
    ngx_http_thinkgate_param_t  *param;

    value = cf->args->elts;
    seen = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        for (param = ngx_http_thinkgate_redis_params;
             param->name.len;
             param++)
        {
            if (value[i].len >= param->name.len
                && ngx_strncmp(value[i].data, param->name.data,
                               param->name.len)
                   == 0)
            {
                break;
            }
        }

        if (param->name.len == 0) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "unknown parameter");
        }

        if (seen & (1 << (param - ngx_http_thinkgate_redis_params))) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "parameter given twice");
        }

        seen |= 1 << (param - ngx_http_thinkgate_redis_params);

        rv = ngx_http_thinkgate_conf_param(cf, cmd, param, redis, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    return NGX_CONF_OK;
}


/*
 * unix:/absolute/path (fits sun_path), or host:port with a port 1..65535
 * and a host of letters, digits, ".", "-", "_", or "[IPv6]".
 */

static ngx_uint_t
ngx_http_thinkgate_redis_addr(ngx_str_t *s)
{
    u_char     *p, *last, *colon;
    ngx_int_t   port;

    if (s->len > 5 && ngx_strncmp(s->data, "unix:", 5) == 0) {
        return s->data[5] == '/'
               && s->len - 5 < sizeof(((struct sockaddr_un *) 0)->sun_path);
    }

    last = s->data + s->len;

    for (colon = last; colon > s->data; colon--) {
        if (colon[-1] == ':') {
            break;
        }
    }

    if (colon == s->data) {
        return 0;
    }

    port = ngx_atoi(colon, last - colon);
    if (port == NGX_ERROR || port < 1 || port > 65535) {
        return 0;
    }

    last = colon - 1;               /* the ":" */
    p = s->data;

    if (p == last) {
        return 0;
    }

    if (*p == '[') {
        if (last - p < 3 || last[-1] != ']') {
            return 0;
        }

        for (p++; p < last - 1; p++) {
            if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')
                  || (*p >= 'A' && *p <= 'F') || *p == ':' || *p == '.'))
            {
                return 0;
            }
        }

        return 1;
    }

    for ( /* void */ ; p < last; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '-'
              || *p == '_'))
        {
            return 0;
        }
    }

    return 1;
}


/* NAME=VALUE of a parameter table row into dst + param->offset */

static char *
ngx_http_thinkgate_conf_param(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_thinkgate_param_t *param, void *dst, ngx_str_t *arg)
{
    char       *p;
    size_t      i;
    ngx_int_t   n;
    ngx_str_t   v;

    p = (char *) dst + param->offset;

    v.data = arg->data + param->name.len;
    v.len = arg->len - param->name.len;

    switch (param->type) {

    case NGX_HTTP_THINKGATE_PARAM_UINT:
        n = ngx_atoi(v.data, v.len);
        if (n == NGX_ERROR || (ngx_uint_t) n < param->min
            || (ngx_uint_t) n > param->max)
        {
            goto invalid;
        }

        *(ngx_uint_t *) p = n;
        return NGX_CONF_OK;

    case NGX_HTTP_THINKGATE_PARAM_MSEC:
        n = ngx_parse_time(&v, 0);
        if (n == NGX_ERROR || (ngx_uint_t) n < param->min
            || (ngx_uint_t) n > param->max)
        {
            goto invalid;
        }

        *(ngx_msec_t *) p = n;
        return NGX_CONF_OK;

    case NGX_HTTP_THINKGATE_PARAM_KEY:
        if (v.len < param->min || v.len > param->max) {
            goto invalid;
        }

        for (i = 0; i < v.len; i++) {
            if (v.data[i] <= ' ' || v.data[i] >= 0x7f) {
                goto invalid;
            }
        }

        *(ngx_str_t *) p = v;
        return NGX_CONF_OK;

    default: /* NGX_HTTP_THINKGATE_PARAM_ENV */
        if (v.len < param->min || v.len > param->max
            || (v.data[0] >= '0' && v.data[0] <= '9'))
        {
            goto invalid;
        }

        for (i = 0; i < v.len; i++) {
            if (!((v.data[i] >= 'a' && v.data[i] <= 'z')
                  || (v.data[i] >= 'A' && v.data[i] <= 'Z')
                  || (v.data[i] >= '0' && v.data[i] <= '9')
                  || v.data[i] == '_'))
            {
                goto invalid;
            }
        }

        *(ngx_str_t *) p = v;
        return NGX_CONF_OK;
    }

invalid:

    return ngx_http_thinkgate_conf_bad(cf, cmd, arg, param->why);
}
