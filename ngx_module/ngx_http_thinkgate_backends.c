
/*
 * thinkgate nginx module: the http-level directives thinkgate_engine,
 * thinkgate_backend and thinkgate_pool, checked once the http block is
 * read (pools may name backends declared after them).
 */


#include "ngx_http_thinkgate.h"


static char *ngx_http_thinkgate_conf_skills(ngx_conf_t *cf,
    ngx_http_thinkgate_backend_t *b, ngx_str_t *value);


/* policy= of thinkgate_pool; the values are ngx_http_thinkgate_policy_e,
 * in the order of ngx_http_thinkgate_policies[] (conf_doc.c). */
static ngx_conf_enum_t  ngx_http_thinkgate_pool_policies[] = {
    { ngx_string("least_inflight"),
      NGX_HTTP_THINKGATE_POLICY_LEAST_INFLIGHT },
    { ngx_string("round_robin"), NGX_HTTP_THINKGATE_POLICY_ROUND_ROBIN },
    { ngx_string("prefix"), NGX_HTTP_THINKGATE_POLICY_PREFIX },
    { ngx_string("grouped"), NGX_HTTP_THINKGATE_POLICY_GROUPED },
    { ngx_null_string, 0 }
};


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

    if (ngx_http_thinkgate_conf_doc(cf, mcf) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

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


char *
ngx_http_thinkgate_conf_backend(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    char                          *rv;
    ngx_int_t                      n, rc;
    ngx_str_t                     *value, v;
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

    /* the per-backend defaults */
    b->max_inflight = 64;
    b->connect_timeout = 5000;
    b->idle_timeout = 60000;
    b->tls_verify = 1;
    ngx_http_thinkgate_health_init(b);

    if (ngx_array_init(&b->skills, cf->pool, 2,
                       sizeof(ngx_http_thinkgate_skill_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 3; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "model=", 6) == 0) {
            b->model.data = value[i].data + 6;
            b->model.len = value[i].len - 6;

            if (b->model.len == 0) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "empty model");
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "max_inflight=", 13) == 0) {
            n = ngx_atoi(value[i].data + 13, value[i].len - 13);
            if (n == NGX_ERROR || n < 1 || n > 1000000) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "max_inflight must be "
                                              "1..1000000");
            }

            b->max_inflight = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "api_key_env=", 12) == 0) {
            v.data = value[i].data + 12;
            v.len = value[i].len - 12;

            if (v.len == 0 || !ngx_http_thinkgate_conf_valid_name(&v)
                || ngx_strlchr(v.data, v.data + v.len, '-')
                || ngx_strlchr(v.data, v.data + v.len, '.')
                || (v.data[0] >= '0' && v.data[0] <= '9'))
            {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "not an environment "
                                              "variable name");
            }

            b->api_key_env = v;
            continue;
        }

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0
            || ngx_strncmp(value[i].data, "idle_timeout=", 13) == 0)
        {
            v.data = (u_char *) ngx_strlchr(value[i].data,
                                            value[i].data + value[i].len,
                                            '=') + 1;
            v.len = value[i].data + value[i].len - v.data;

            n = ngx_parse_time(&v, 0);
            if (n == NGX_ERROR || n < 1) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "expected a positive time "
                                              "such as 5s or 500ms");
            }

            if (value[i].data[0] == 'c') {
                b->connect_timeout = n;

            } else {
                b->idle_timeout = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "tls_verify=", 11) == 0
            || ngx_strncmp(value[i].data, "native_effort=", 14) == 0)
        {
            v.data = (u_char *) ngx_strlchr(value[i].data,
                                            value[i].data + value[i].len,
                                            '=') + 1;
            v.len = value[i].data + value[i].len - v.data;

            if (v.len == 2 && ngx_strncmp(v.data, "on", 2) == 0) {
                n = 1;

            } else if (v.len == 3 && ngx_strncmp(v.data, "off", 3) == 0) {
                n = 0;

            } else {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              value[i].data[0] == 't'
                                              ? "tls_verify is on or off"
                                              : "native_effort is on or "
                                                "off");
            }

            if (value[i].data[0] == 't') {
                b->tls_verify = n;

            } else {
                b->native_effort = n;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "skills=", 7) == 0) {
            rv = ngx_http_thinkgate_conf_skills(cf, b, &value[i]);
            if (rv != NGX_CONF_OK) {
                return rv;
            }

            continue;
        }

        rc = ngx_http_thinkgate_conf_health(cf, cmd, b, &value[i]);
        if (rc == NGX_ERROR) {
            return NGX_CONF_ERROR;
        }

        if (rc == NGX_OK) {
            continue;
        }

        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                      "unknown parameter");
    }

    ngx_http_thinkgate_health_finish(b);

    return NGX_CONF_OK;
}


/* skills=math:0.9,code:0.5; weights from 0 to 1, kept in thousandths */

static char *
ngx_http_thinkgate_conf_skills(ngx_conf_t *cf, ngx_http_thinkgate_backend_t *b,
    ngx_str_t *value)
{
    u_char                      *p, *last, *comma, *colon;
    ngx_int_t                    w;
    ngx_str_t                    name;
    ngx_http_thinkgate_skill_t  *sk;

    p = value->data + 7;
    last = value->data + value->len;

    if (p == last) {
        goto invalid;
    }

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        colon = ngx_strlchr(p, comma, ':');
        if (colon == NULL) {
            goto invalid;
        }

        name.data = p;
        name.len = colon - p;

        if (!ngx_http_thinkgate_conf_valid_name(&name)) {
            goto invalid;
        }

        w = ngx_atofp(colon + 1, comma - colon - 1, 3);
        if (w == NGX_ERROR || w > 1000) {
            goto invalid;
        }

        sk = ngx_array_push(&b->skills);
        if (sk == NULL) {
            return NGX_CONF_ERROR;
        }

        sk->name = name;
        sk->weight = w;

        p = comma + 1;

        if (comma + 1 == last) {
            goto invalid;
        }
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"thinkgate_backend\" directive: invalid value "
                       "\"%V\": expected skills=NAME:WEIGHT,... with "
                       "weights from 0 to 1", value);
    return NGX_CONF_ERROR;
}


char *
ngx_http_thinkgate_conf_pool(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_int_t                   n;
    ngx_str_t                  *value, *name, v;
    ngx_uint_t                  i, j;
    ngx_http_thinkgate_pool_t  *pool;
    ngx_conf_enum_t            *e;

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

    /* the per-pool defaults */
    pool->policy = NGX_HTTP_THINKGATE_POLICY_LEAST_INFLIGHT;
    pool->block = 64;
    pool->ttl = 600000;
    pool->window = 1000;

    if (ngx_array_init(&pool->backends, cf->pool, 4, sizeof(ngx_str_t))
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "policy=", 7) == 0) {
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;

            for (e = ngx_http_thinkgate_pool_policies; e->name.len; e++) {
                if (e->name.len == v.len
                    && ngx_strncmp(e->name.data, v.data, v.len) == 0)
                {
                    break;
                }
            }

            if (e->name.len == 0) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "policy is least_inflight, "
                                              "round_robin, prefix or "
                                              "grouped");
            }

            pool->policy = e->value;

            continue;
        }

        if (ngx_strncmp(value[i].data, "block=", 6) == 0) {
            n = ngx_atoi(value[i].data + 6, value[i].len - 6);
            if (n == NGX_ERROR || n < 1 || n > 65536) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "block must be 1..65536");
            }

            pool->block = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;

            n = ngx_parse_time(&v, 0);
            if (n == NGX_ERROR || n > 3600000) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "expected a time up to 1h "
                                              "such as 500ms");
            }

            pool->window = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "ttl=", 4) == 0) {
            v.data = value[i].data + 4;
            v.len = value[i].len - 4;

            n = ngx_parse_time(&v, 0);
            if (n == NGX_ERROR || n < 1) {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "expected a positive time "
                                              "such as 600s");
            }

            pool->ttl = n;
            continue;
        }

        if (ngx_strlchr(value[i].data, value[i].data + value[i].len, '=')
            || !ngx_http_thinkgate_conf_valid_name(&value[i]))
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "unknown parameter");
        }

        name = pool->backends.elts;
        for (j = 0; j < pool->backends.nelts; j++) {
            if (name[j].len == value[i].len
                && ngx_strncmp(name[j].data, value[i].data, value[i].len)
                   == 0)
            {
                return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                              "backend listed twice");
            }
        }

        name = ngx_array_push(&pool->backends);
        if (name == NULL) {
            return NGX_CONF_ERROR;
        }

        *name = value[i];
    }

    if (pool->backends.nelts == 0) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "a pool needs at least one backend");
    }

    return NGX_CONF_OK;
}
