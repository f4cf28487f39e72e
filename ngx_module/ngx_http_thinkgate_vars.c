
/*
 * thinkgate nginx module: the $thinkgate_* variables.
 *
 * $thinkgate_request_id is the worker's id of the request.  Every other
 * $thinkgate_NAME is a figure the engine sent in the END frame (protocol.h:
 * "NAME=VALUE\n" lines), so that log_format can name whatever a strategy
 * reports without the module knowing the list; a name the engine did not
 * send reads as not found ("-" in the access log).
 */


#include "ngx_http_thinkgate.h"


/* figures kept per request, and bytes of one END payload looked at */
#define NGX_HTTP_THINKGATE_MAX_FIGURES   64
#define NGX_HTTP_THINKGATE_MAX_END       (64 * 1024)


static ngx_int_t ngx_http_thinkgate_request_id_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_thinkgate_figure_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_uint_t ngx_http_thinkgate_figure_name(u_char *p, size_t len);


static ngx_http_variable_t  ngx_http_thinkgate_vars[] = {

    { ngx_string("thinkgate_request_id"), NULL,
      ngx_http_thinkgate_request_id_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

    /* any other $thinkgate_NAME: a figure from END */
    { ngx_string("thinkgate_"), NULL,
      ngx_http_thinkgate_figure_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE|NGX_HTTP_VAR_PREFIX, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_thinkgate_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_thinkgate_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


/*
 * Reads an END payload into the request's figures.  The payload is the
 * engine's word, not trusted: lines whose name is not [a-z0-9_]{1,64} or
 * that lack "=" are skipped, a repeated name keeps its first value, and
 * only the first NGX_HTTP_THINKGATE_MAX_FIGURES figures in the whole
 * lines of the first NGX_HTTP_THINKGATE_MAX_END bytes are kept.
 * Anything else (an engine still sending JSON) yields no figures.
 */

ngx_int_t
ngx_http_thinkgate_figures(ngx_http_thinkgate_ctx_t *ctx,
    const u_char *p, size_t len)
{
    u_char        *q, *last, *eol, *eq;
    ngx_uint_t     i, cut;
    ngx_keyval_t  *kv, *fig;

    if (len == 0) {
        return NGX_OK;
    }

    cut = 0;

    if (len > NGX_HTTP_THINKGATE_MAX_END) {
        len = NGX_HTTP_THINKGATE_MAX_END;
        cut = 1;
    }

    q = ngx_pnalloc(ctx->request->pool, len);
    if (q == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(q, p, len);
    last = q + len;

    ctx->figures = ngx_array_create(ctx->request->pool, 8,
                                    sizeof(ngx_keyval_t));
    if (ctx->figures == NULL) {
        return NGX_ERROR;
    }

    for ( /* void */ ; q < last; q = eol + 1) {

        if (ctx->figures->nelts == NGX_HTTP_THINKGATE_MAX_FIGURES) {
            break;
        }

        eol = ngx_strlchr(q, last, '\n');
        if (eol == NULL) {
            if (cut) {
                /* a line cut short would log a wrong value */
                break;
            }

            eol = last;
        }

        eq = ngx_strlchr(q, eol, '=');

        if (eq == NULL || !ngx_http_thinkgate_figure_name(q, eq - q)) {
            continue;
        }

        fig = ctx->figures->elts;

        for (i = 0; i < ctx->figures->nelts; i++) {
            if (fig[i].key.len == (size_t) (eq - q)
                && ngx_strncmp(fig[i].key.data, q, eq - q) == 0)
            {
                break;
            }
        }

        if (i < ctx->figures->nelts) {
            continue;
        }

        kv = ngx_array_push(ctx->figures);
        if (kv == NULL) {
            return NGX_ERROR;
        }

        kv->key.data = q;
        kv->key.len = eq - q;
        kv->value.data = eq + 1;
        kv->value.len = eol - (eq + 1);
    }

    return NGX_OK;
}


static ngx_uint_t
ngx_http_thinkgate_figure_name(u_char *p, size_t len)
{
    size_t  i;

    if (len == 0 || len > 64) {
        return 0;
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9')
              || p[i] == '_'))
        {
            return 0;
        }
    }

    return 1;
}


static ngx_int_t
ngx_http_thinkgate_request_id_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                    *p;
    ngx_http_thinkgate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_thinkgate_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    v->len = ngx_sprintf(p, "%uL", ctx->id) - p;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}


/* data: the variable's full name, "thinkgate_NAME" (a prefix variable) */

static ngx_int_t
ngx_http_thinkgate_figure_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t *name = (ngx_str_t *) data;

    size_t                     len;
    u_char                    *p;
    ngx_uint_t                 i;
    ngx_keyval_t              *fig;
    ngx_http_thinkgate_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_thinkgate_module);

    if (ctx == NULL || ctx->figures == NULL
        || name->len <= sizeof("thinkgate_") - 1)
    {
        v->not_found = 1;
        return NGX_OK;
    }

    p = name->data + sizeof("thinkgate_") - 1;
    len = name->len - (sizeof("thinkgate_") - 1);

    fig = ctx->figures->elts;

    for (i = 0; i < ctx->figures->nelts; i++) {
        if (fig[i].key.len == len
            && ngx_strncasecmp(fig[i].key.data, p, len) == 0)
        {
            v->len = fig[i].value.len;
            v->valid = 1;
            v->no_cacheable = 0;
            v->not_found = 0;
            v->data = fig[i].value.data;

            return NGX_OK;
        }
    }

    v->not_found = 1;

    return NGX_OK;
}
