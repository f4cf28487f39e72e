
/*
 * thinkgate nginx module: what the engine loads and talks to besides the
 * backends, both sent in the configuration document (protocol.h):
 *
 *   thinkgate_plugin NAME [NAME...]     plugins to preload ("plugins")
 *   thinkgate_redis ADDR [db=N] [prefix=STR] [password_env=VAR]
 *                   [connect_timeout=TIME] [timeout=TIME]      ("redis")
 *
 * thinkgate_redis's keys, their bounds and defaults are the shared
 * schema's (thinkgate/conf_keys.h), as the engine reads them.
 */


#include "ngx_http_thinkgate.h"

#include <sys/un.h>


static ngx_uint_t ngx_http_thinkgate_plugin_name(ngx_str_t *s);
static ngx_uint_t ngx_http_thinkgate_redis_addr(ngx_str_t *s);


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

    if (ngx_http_thinkgate_keys_defaults(cf, &ngx_http_thinkgate_redis_keys,
                                         redis)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_thinkgate_keys_params(cf, cmd,
                                        &ngx_http_thinkgate_redis_keys,
                                        redis, 2);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mcf->redis = redis;

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
