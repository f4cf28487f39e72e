
/*
 * thinkgate nginx module: the http-level directives thinkgate_engine,
 * thinkgate_backend and thinkgate_pool, checked once the http block is
 * read (pools may name backends declared after them).
 */


#include "ngx_http_thinkgate.h"


static ngx_int_t ngx_http_thinkgate_conf_pool_member(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_thinkgate_pool_t *pool, ngx_str_t *value);


void *
ngx_http_thinkgate_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_thinkgate_main_conf_t  *mcf;

    mcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_thinkgate_main_conf_t));
    if (mcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     mcf->engine = { 0, NULL };
     *     mcf->doc = { 0, NULL };
     *     mcf->redis = NULL;
     *     mcf->enabled = 0;
     */

    mcf->ring_size = NGX_CONF_UNSET_SIZE;

    if (ngx_array_init(&mcf->backends, cf->pool, 4,
                       sizeof(ngx_http_thinkgate_backend_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mcf->pools, cf->pool, 4,
                       sizeof(ngx_http_thinkgate_pool_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mcf->plugins, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mcf->strategies, cf->pool, 4,
                       sizeof(ngx_http_thinkgate_strategy_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mcf->locations, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&mcf->models, cf->pool, 4,
                       sizeof(ngx_http_thinkgate_model_t))
        != NGX_OK)
    {
        return NULL;
    }

    return mcf;
}


char *
ngx_http_thinkgate_init_main_conf(ngx_conf_t *cf, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_str_t                     *name;
    ngx_uint_t                     i, j, k, found;
    ngx_http_thinkgate_pool_t     *pool;
    ngx_http_thinkgate_backend_t  *b;

    if (mcf->engine.data == NULL) {
        ngx_str_set(&mcf->engine, NGX_HTTP_THINKGATE_DEFAULT_ENGINE);
    }

    ngx_conf_init_size_value(mcf->ring_size, 1024 * 1024);

    /* pools may be declared before their backends: check them here */

    pool = mcf->pools.elts;
    b = mcf->backends.elts;

    for (i = 0; i < mcf->pools.nelts; i++) {
        name = pool[i].backends.elts;

        for (j = 0; j < pool[i].backends.nelts; j++) {
            found = 0;

            for (k = 0; k < mcf->backends.nelts; k++) {
                if (b[k].name.len == name[j].len
                    && ngx_strncmp(b[k].name.data, name[j].data, name[j].len)
                       == 0)
                {
                    found = 1;
                    break;
                }
            }

            if (!found) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"thinkgate_pool\" directive: pool \"%V\" "
                              "names unknown backend \"%V\" in %V:%ui",
                              &pool[i].name, &name[j], &pool[i].file,
                              pool[i].line);
                return NGX_CONF_ERROR;
            }
        }
    }

    if (ngx_http_thinkgate_check_models(cf, mcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    if (mcf->keys_redis && mcf->redis == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"thinkgate_keys\" directive: the key store "
                      "\"redis\" needs thinkgate_redis");
        return NGX_CONF_ERROR;
    }

    /* the document is written in postconfiguration, once every location
     * is merged and has its "locations" entry */

    return NGX_CONF_OK;
}


char *
ngx_http_thinkgate_conf_engine(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ssize_t     size;
    ngx_str_t  *value, s;

    if (mcf->engine.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len <= 5 || ngx_strncmp(value[1].data, "unix:", 5) != 0) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "expected unix:/path/to/socket");
    }

    if (value[1].len - 5 >= sizeof(((struct sockaddr_un *) 0)->sun_path)) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "socket path too long");
    }

    mcf->engine.data = value[1].data + 5;
    mcf->engine.len = value[1].len - 5;

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "ring=", 5) != 0) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[2],
                                          "unknown parameter");
        }

        s.data = value[2].data + 5;
        s.len = value[2].len - 5;

        size = ngx_parse_size(&s);
        if (size == NGX_ERROR || !tg_ring_size_valid((uint32_t) size)
            || (size_t) size > TG_RING_MAX_SIZE)
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[2],
                                          "ring must be a power of two "
                                          "from 64k to 64m");
        }

        mcf->ring_size = size;
    }

    mcf->enabled = 1;

    return NGX_CONF_OK;
}


/*
 * thinkgate_backend NAME URL [KEY=VALUE ...]: the keys, their bounds and
 * defaults are the shared schema's (thinkgate/conf_keys.h).
 */

char *
ngx_http_thinkgate_conf_backend(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_int_t                      rc;
    ngx_str_t                     *value;
    ngx_uint_t                     i;
    ngx_http_thinkgate_backend_t  *b;

    value = cf->args->elts;

    if (!ngx_http_thinkgate_conf_valid_name(&value[1])) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "a name is 1-64 letters, digits, "
                                      "\"_\", \"-\" or \".\"");
    }

    b = mcf->backends.elts;
    for (i = 0; i < mcf->backends.nelts; i++) {
        if (b[i].name.len == value[1].len
            && ngx_strncmp(b[i].name.data, value[1].data, value[1].len) == 0)
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                          "duplicate backend name");
        }
    }

    if (!((value[2].len > 7 && ngx_strncmp(value[2].data, "http://", 7) == 0)
          || (value[2].len > 8
              && ngx_strncmp(value[2].data, "https://", 8) == 0)))
    {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[2],
                                      "the URL must start with http:// "
                                      "or https:// and name a host");
    }

    b = ngx_array_push(&mcf->backends);
    if (b == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(b, sizeof(ngx_http_thinkgate_backend_t));

    b->name = value[1];
    b->url = value[2];

    if (ngx_http_thinkgate_keys_defaults(cf, &ngx_http_thinkgate_backend_keys,
                                         b)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    /* without fails=, a backend with health= opens after 3 failures and
     * one without never opens on them */
    b->fails = NGX_CONF_UNSET_UINT;

    for (i = 3; i < cf->args->nelts; i++) {
        rc = ngx_http_thinkgate_keys_param(cf, cmd,
                                           &ngx_http_thinkgate_backend_keys,
                                           b, &value[i]);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_DECLINED) {
            return ngx_http_thinkgate_keys_unknown(cf, cmd,
                                            &ngx_http_thinkgate_backend_keys,
                                            &value[i]);
        }
    }

    ngx_conf_init_uint_value(b->fails, b->health.len ? 3 : 0);

    return NGX_CONF_OK;
}


/*
 * thinkgate_pool NAME BACKEND ... [KEY=VALUE ...]: the keys, their bounds
 * and defaults are the shared schema's; a bare name is a member.
 */

char *
ngx_http_thinkgate_conf_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_int_t                   rc;
    ngx_str_t                  *value;
    ngx_uint_t                  i;
    ngx_http_thinkgate_pool_t  *pool;

    value = cf->args->elts;

    if (!ngx_http_thinkgate_conf_valid_name(&value[1])) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "a name is 1-64 letters, digits, "
                                      "\"_\", \"-\" or \".\"");
    }

    pool = mcf->pools.elts;
    for (i = 0; i < mcf->pools.nelts; i++) {
        if (pool[i].name.len == value[1].len
            && ngx_strncmp(pool[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                          "duplicate pool name");
        }
    }

    pool = ngx_array_push(&mcf->pools);
    if (pool == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(pool, sizeof(ngx_http_thinkgate_pool_t));

    pool->name = value[1];
    pool->file = cf->conf_file->file.name;
    pool->line = cf->conf_file->line;

    if (ngx_http_thinkgate_keys_defaults(cf, &ngx_http_thinkgate_pool_keys,
                                         pool)
        != NGX_OK
        || ngx_array_init(&pool->backends, cf->pool, 4, sizeof(ngx_str_t))
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        rc = ngx_http_thinkgate_keys_param(cf, cmd,
                                           &ngx_http_thinkgate_pool_keys,
                                           pool, &value[i]);
        if (rc == NGX_DECLINED) {
            rc = ngx_http_thinkgate_conf_pool_member(cf, cmd, pool,
                                                     &value[i]);
        }

        if (rc != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (pool->backends.nelts == 0) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "a pool needs at least one backend");
    }

    return NGX_CONF_OK;
}


/* A backend name listed in thinkgate_pool, checked once the http block is
 * read; anything else that is not a key is an unknown parameter. */

static ngx_int_t
ngx_http_thinkgate_conf_pool_member(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_thinkgate_pool_t *pool, ngx_str_t *value)
{
    ngx_str_t   *name;
    ngx_uint_t   j;

    if (ngx_strlchr(value->data, value->data + value->len, '=')
        || !ngx_http_thinkgate_conf_valid_name(value))
    {
        (void) ngx_http_thinkgate_keys_unknown(cf, cmd,
                                               &ngx_http_thinkgate_pool_keys,
                                               value);
        return NGX_ERROR;
    }

    name = pool->backends.elts;
    for (j = 0; j < pool->backends.nelts; j++) {
        if (name[j].len == value->len
            && ngx_strncmp(name[j].data, value->data, value->len) == 0)
        {
            (void) ngx_http_thinkgate_conf_bad(cf, cmd, value,
                                               "backend listed twice");
            return NGX_ERROR;
        }
    }

    name = ngx_array_push(&pool->backends);
    if (name == NULL) {
        return NGX_ERROR;
    }

    *name = *value;

    return NGX_OK;
}
