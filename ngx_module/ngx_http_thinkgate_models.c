
/*
 * thinkgate nginx module: thinkgate_model NAME POOL [model=UPSTREAM], a
 * model name clients may use that backends call otherwise (or not at
 * all), and the pool that serves it.  The engine lists it in GET
 * /v1/models and routes requests naming it to POOL.
 */


#include "ngx_http_thinkgate.h"


#define NGX_HTTP_THINKGATE_MODEL_MAX  256


static ngx_int_t ngx_http_thinkgate_valid_model(ngx_str_t *s);


/* 1-256 printable ASCII or UTF-8 bytes, no spaces, quotes or backslashes:
 * what OpenAI-compatible servers name models ("Qwen/QwQ-32B", "llama3:8b") */

static ngx_int_t
ngx_http_thinkgate_valid_model(ngx_str_t *s)
{
    size_t  i;

    if (s->len == 0 || s->len > NGX_HTTP_THINKGATE_MODEL_MAX) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        if (s->data[i] <= ' ' || s->data[i] == 0x7f || s->data[i] == '"'
            || s->data[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}


char *
ngx_http_thinkgate_conf_model(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_str_t                   *value;
    ngx_uint_t                   i;
    ngx_http_thinkgate_model_t  *m;

    value = cf->args->elts;

    if (!ngx_http_thinkgate_valid_model(&value[1])) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "a model name is 1-256 characters "
                                      "without spaces, quotes or "
                                      "backslashes");
    }

    m = mcf->models.elts;
    for (i = 0; i < mcf->models.nelts; i++) {
        if (m[i].name.len == value[1].len
            && ngx_strncmp(m[i].name.data, value[1].data, value[1].len) == 0)
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                          "duplicate model name");
        }
    }

    if (!ngx_http_thinkgate_conf_valid_name(&value[2])) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[2],
                                      "bad pool name");
    }

    m = ngx_array_push(&mcf->models);
    if (m == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(m, sizeof(ngx_http_thinkgate_model_t));

    m->name = value[1];
    m->pool = value[2];
    m->file = cf->conf_file->file.name;
    m->line = cf->conf_file->line;

    if (cf->args->nelts == 4) {
        if (value[3].len < 6
            || ngx_strncmp(value[3].data, "model=", 6) != 0)
        {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[3],
                                          "unknown parameter");
        }

        m->model.data = value[3].data + 6;
        m->model.len = value[3].len - 6;

        if (!ngx_http_thinkgate_valid_model(&m->model)) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[3],
                                          "model= needs a model name");
        }
    }

    return NGX_CONF_OK;
}


/* pools may be declared after the models naming them: checked here */

ngx_int_t
ngx_http_thinkgate_check_models(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_uint_t                   i, k;
    ngx_http_thinkgate_pool_t   *pool;
    ngx_http_thinkgate_model_t  *m;

    m = mcf->models.elts;
    pool = mcf->pools.elts;

    for (i = 0; i < mcf->models.nelts; i++) {

        for (k = 0; k < mcf->pools.nelts; k++) {
            if (pool[k].name.len == m[i].pool.len
                && ngx_strncmp(pool[k].name.data, m[i].pool.data,
                               m[i].pool.len)
                   == 0)
            {
                break;
            }
        }

        if (k == mcf->pools.nelts) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"thinkgate_model\" directive: model \"%V\" "
                          "names unknown pool \"%V\" in %V:%ui",
                          &m[i].name, &m[i].pool, &m[i].file, m[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* ,"models":[{"name","pool","model"},...] of the configuration document */

void
ngx_http_thinkgate_json_models(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_uint_t                   i;
    ngx_http_thinkgate_model_t  *m;

    ngx_http_thinkgate_json_key(j, "models");
    ngx_http_thinkgate_json_raw(j, "[");

    m = mcf->models.elts;

    for (i = 0; i < mcf->models.nelts; i++) {
        ngx_http_thinkgate_json_raw(j, i ? ",{" : "{");

        ngx_http_thinkgate_json_key(j, "name");
        ngx_http_thinkgate_json_str(j, &m[i].name);
        ngx_http_thinkgate_json_key(j, "pool");
        ngx_http_thinkgate_json_str(j, &m[i].pool);
        ngx_http_thinkgate_json_key(j, "model");
        ngx_http_thinkgate_json_str(j, &m[i].model);

        ngx_http_thinkgate_json_raw(j, "}");
    }

    ngx_http_thinkgate_json_raw(j, "]");
}
