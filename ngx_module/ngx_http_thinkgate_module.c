
/*
 * thinkgate nginx module: directives, configuration and module hooks.
 */


#include "ngx_http_thinkgate.h"


typedef struct {
    ngx_uint_t                  min;
    ngx_uint_t                  max;
    ngx_uint_t                  off;        /* "off" allowed, stored as 0 */
} ngx_http_thinkgate_bounds_t;


static void *ngx_http_thinkgate_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_thinkgate_merge_loc_conf(ngx_conf_t *cf,
    void *parent, void *child);
static char *ngx_http_thinkgate_pass(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_thinkgate_content(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_thinkgate_conf_admin(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_thinkgate_strategy(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_thinkgate_msec_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_thinkgate_size_slot(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static ngx_int_t ngx_http_thinkgate_init_process(ngx_cycle_t *cycle);
static void ngx_http_thinkgate_exit_process(ngx_cycle_t *cycle);


/* content handlers of the handler-only directives, as cmd->post */
static ngx_http_handler_pt  ngx_http_thinkgate_status_post =
    ngx_http_thinkgate_status_handler;
static ngx_http_handler_pt  ngx_http_thinkgate_admin_post =
    ngx_http_thinkgate_admin_handler;


static ngx_http_thinkgate_bounds_t  ngx_http_thinkgate_timeout_bounds = {
    1, 7 * 24 * 3600 * 1000, 0
};

static ngx_http_thinkgate_bounds_t  ngx_http_thinkgate_deadline_bounds = {
    1, 7 * 24 * 3600 * 1000, 1
};

static ngx_http_thinkgate_bounds_t  ngx_http_thinkgate_max_body_bounds = {
    1, 1024 * 1024 * 1024, 0
};


static ngx_command_t  ngx_http_thinkgate_commands[] = {

    /* thinkgate_engine unix:PATH [ring=SIZE] */
    { ngx_string("thinkgate_engine"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_thinkgate_conf_engine,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_backend NAME URL [model=] [max_inflight=] [api_key_env=]
     *     [connect_timeout=] [idle_timeout=] [tls_verify=] [tls_ca=]
     *     [skills=] [health=] [interval=] [fails=] [cooloff=] [error_rate=]
     */
    { ngx_string("thinkgate_backend"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_thinkgate_conf_backend,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_pool NAME BACKEND... [policy=] [block=] [ttl=] [window=] */
    { ngx_string("thinkgate_pool"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_thinkgate_conf_pool,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_plugin NAME...: plugins the engine loads up front */
    { ngx_string("thinkgate_plugin"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_thinkgate_conf_plugin,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_redis ADDR [db=] [prefix=] [password_env=]
     *     [connect_timeout=] [timeout=] */
    { ngx_string("thinkgate_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_thinkgate_conf_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_embedder PATH [threads=] [device=] [max_batch=] */
    { ngx_string("thinkgate_embedder"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_thinkgate_conf_embedder,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_model NAME POOL [model=UPSTREAM]: a model name and where */
    { ngx_string("thinkgate_model"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE23,
      ngx_http_thinkgate_conf_model,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* thinkgate_pass [POOL]: the location is served by the engine, from
     * POOL or, without one, from the pool serving the request's model */
    { ngx_string("thinkgate_pass"),
      NGX_HTTP_LOC_CONF|NGX_HTTP_LIF_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_thinkgate_pass,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* backend silent this long: the engine answers 504 */
    { ngx_string("thinkgate_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_thinkgate_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, timeout),
      &ngx_http_thinkgate_timeout_bounds },

    /* the whole request, however the backend trickles: the engine
     * answers 504 deadline_exceeded; "off" for none */
    { ngx_string("thinkgate_deadline"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_thinkgate_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, deadline),
      &ngx_http_thinkgate_deadline_bounds },

    /* larger request bodies get 413 without reaching the engine */
    { ngx_string("thinkgate_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_thinkgate_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, max_body),
      &ngx_http_thinkgate_max_body_bounds },

    /* JSON status, or Prometheus text with ?format=prometheus */
    { ngx_string("thinkgate_status"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_thinkgate_content,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_thinkgate_status_post },

    /* the engine's admin API (plugins, reload), forwarded as it comes;
     * token_file=PATH: only with "Authorization: Bearer" that token */
    { ngx_string("thinkgate_admin"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS|NGX_CONF_TAKE1,
      ngx_http_thinkgate_conf_admin,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      &ngx_http_thinkgate_admin_post },

    /* thinkgate_strategy NAME [k=v ...]: the location's default strategy */
    { ngx_string("thinkgate_strategy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_thinkgate_strategy,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, strategy),
      NULL },

    /* thinkgate_effort LEVEL budget=N|none [strategy=NAME k=v ...]: what
     * a request's reasoning_effort does here */
    { ngx_string("thinkgate_effort"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_2MORE,
      ngx_http_thinkgate_effort,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    /* whether a request may choose another strategy */
    { ngx_string("thinkgate_client_strategy"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, client_strategy),
      NULL },

    /* whether requests may name a stored conversation (Redis) */
    { ngx_string("thinkgate_session"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, session),
      NULL },

    /* thinkgate_keys file=PATH: client API keys, stored hashed */
    { ngx_string("thinkgate_keys"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_thinkgate_conf_keys,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    /* whether API requests need a key of thinkgate_keys */
    { ngx_string("thinkgate_auth"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_thinkgate_loc_conf_t, auth),
      NULL },

    /* thinkgate_auth_key VALUE: the key's name instead of a bearer token
     * (auth_request_set fills the variable) */
    { ngx_string("thinkgate_auth_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_thinkgate_conf_auth_key,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_thinkgate_module_ctx = {
    ngx_http_thinkgate_add_variables,      /* preconfiguration */
    ngx_http_thinkgate_postconfiguration,  /* postconfiguration */

    ngx_http_thinkgate_create_main_conf,   /* create main configuration */
    ngx_http_thinkgate_init_main_conf,     /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_thinkgate_create_loc_conf,    /* create location configuration */
    ngx_http_thinkgate_merge_loc_conf      /* merge location configuration */
};


ngx_module_t  ngx_http_thinkgate_module = {
    NGX_MODULE_V1,
    &ngx_http_thinkgate_module_ctx,        /* module context */
    ngx_http_thinkgate_commands,           /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_thinkgate_init_process,       /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_thinkgate_exit_process,       /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static void *
ngx_http_thinkgate_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_thinkgate_loc_conf_t  *conf;

    conf = ngx_pcalloc(cf->pool, sizeof(ngx_http_thinkgate_loc_conf_t));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->pool = { 0, NULL };
     *     conf->strategy = { 0, NULL };
     *     conf->effort[] = { 0, NULL } each;
     *     conf->pass_file = { 0, NULL };
     *     conf->admin_token = NULL;
     *     conf->pass_line = 0;
     *     conf->pass = 0;
     */

    conf->client_strategy = NGX_CONF_UNSET;
    conf->session = NGX_CONF_UNSET;
    conf->auth = NGX_CONF_UNSET;
    conf->auth_key = NGX_CONF_UNSET_PTR;
    conf->timeout = NGX_CONF_UNSET_MSEC;
    conf->deadline = NGX_CONF_UNSET_MSEC;
    conf->max_body = NGX_CONF_UNSET_SIZE;

    return conf;
}


static char *
ngx_http_thinkgate_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_thinkgate_loc_conf_t *prev = parent;
    ngx_http_thinkgate_loc_conf_t *conf = child;

    ngx_uint_t                       i;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_thinkgate_pool_t       *pool;
    ngx_http_thinkgate_main_conf_t  *mcf;

    ngx_conf_merge_str_value(conf->strategy, prev->strategy, "");

    /* each level on its own; the engine's defaults fill the rest */
    for (i = 0; i < NGX_HTTP_THINKGATE_EFFORT_LEVELS; i++) {
        ngx_conf_merge_str_value(conf->effort[i], prev->effort[i], "");
    }

    ngx_conf_merge_value(conf->client_strategy, prev->client_strategy, 0);
    ngx_conf_merge_value(conf->session, prev->session, 0);
    ngx_conf_merge_value(conf->auth, prev->auth, 0);
    ngx_conf_merge_ptr_value(conf->auth_key, prev->auth_key, NULL);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 600000);
    /* 30 minutes: longer than any generation a backend should take,
     * short enough that a trickling one frees its slot */
    ngx_conf_merge_msec_value(conf->deadline, prev->deadline, 1800000);
    ngx_conf_merge_size_value(conf->max_body, prev->max_body,
                              1024 * 1024);

    if (conf->serves && ngx_http_thinkgate_location_index(cf, conf) != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    if (!conf->pass) {
        return NGX_CONF_OK;
    }

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_thinkgate_module);
    pool = mcf->pools.elts;

    for (i = 0; conf->pool.len && i < mcf->pools.nelts; i++) {
        if (pool[i].name.len == conf->pool.len
            && ngx_strncmp(pool[i].name.data, conf->pool.data,
                           conf->pool.len)
               == 0)
        {
            break;
        }
    }

    if (conf->pool.len && i == mcf->pools.nelts) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"thinkgate_pass\" directive: unknown pool \"%V\" "
                      "in %V:%ui", &conf->pool, &conf->pass_file,
                      conf->pass_line);
        return NGX_CONF_ERROR;
    }

    /*
     * thinkgate_max_body replaces client_max_body_size here, so that an
     * oversized body gets an OpenAI-shaped 413 from this module rather
     * than nginx's HTML page.
     */

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->client_max_body_size = 0;

    return NGX_CONF_OK;
}


char *
ngx_http_thinkgate_conf_bad(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_str_t *value, const char *why)
{
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"%V\" directive: invalid value \"%V\": %s",
                       &cmd->name, value, why);
    return NGX_CONF_ERROR;
}


ngx_int_t
ngx_http_thinkgate_conf_valid_name(ngx_str_t *s)
{
    size_t   i;
    u_char   ch;

    if (s->len == 0 || s->len > 64) {
        return 0;
    }

    for (i = 0; i < s->len; i++) {
        ch = s->data[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
              || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'
              || ch == '.'))
        {
            return 0;
        }
    }

    return 1;
}


/* KEY=VALUE with a key of at least one byte and a value of at least one */

ngx_int_t
ngx_http_thinkgate_conf_is_option(ngx_str_t *v)
{
    return v->len >= 3 && v->data[0] != '='
           && ngx_strlchr(v->data, v->data + v->len, '=') != NULL;
}


/* The directive's arguments from the first-th on, joined by spaces into
 * out (in cf->pool), as thinkgate_strategy and thinkgate_effort keep them */

char *
ngx_http_thinkgate_conf_join(ngx_conf_t *cf, ngx_uint_t first,
    ngx_str_t *out)
{
    u_char      *d;
    size_t       len;
    ngx_str_t   *value;
    ngx_uint_t   i;

    value = cf->args->elts;
    len = 0;

    for (i = first; i < cf->args->nelts; i++) {
        len += value[i].len + 1;
    }

    d = ngx_pnalloc(cf->pool, len);
    if (d == NULL) {
        return NGX_CONF_ERROR;
    }

    out->data = d;

    for (i = first; i < cf->args->nelts; i++) {
        if (i > first) {
            *d++ = ' ';
        }

        d = ngx_cpymem(d, value[i].data, value[i].len);
    }

    out->len = d - out->data;

    return NGX_CONF_OK;
}


static char *
ngx_http_thinkgate_pass(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_loc_conf_t *tlcf = conf;

    ngx_str_t                       *value;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_thinkgate_main_conf_t  *mcf;

    if (tlcf->pass) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && !ngx_http_thinkgate_conf_valid_name(&value[1]))
    {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1], "bad pool name");
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "conflicts with another content handler";
    }

    clcf->handler = ngx_http_thinkgate_pass_handler;

    /* without a pool the engine routes by the request's "model" */
    if (cf->args->nelts == 2) {
        tlcf->pool = value[1];
    }

    tlcf->pass = 1;
    tlcf->serves = 1;
    tlcf->pass_file = cf->conf_file->file.name;
    tlcf->pass_line = cf->conf_file->line;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_thinkgate_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


/* thinkgate_status, thinkgate_admin: cmd->post is the content handler */

static char *
ngx_http_thinkgate_content(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_loc_conf_t *tlcf = conf;

    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_thinkgate_main_conf_t  *mcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    if (clcf->handler) {
        return "conflicts with another content handler";
    }

    clcf->handler = *(ngx_http_handler_pt *) cmd->post;
    tlcf->serves = 1;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_thinkgate_module);
    mcf->enabled = 1;

    return NGX_CONF_OK;
}


/* thinkgate_admin [token_file=PATH] */

static char *
ngx_http_thinkgate_conf_admin(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_loc_conf_t *lcf = conf;

    char       *rv;
    ngx_str_t  *value;

    rv = ngx_http_thinkgate_content(cf, cmd, conf);
    if (rv != NGX_CONF_OK || cf->args->nelts == 1) {
        return rv;
    }

    value = cf->args->elts;

    if (ngx_http_thinkgate_admin_token_load(cf, lcf, &value[1]) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* thinkgate_strategy NAME [k=v ...], kept as one space-separated string */

static char *
ngx_http_thinkgate_strategy(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_str_t   *value, *field;
    ngx_uint_t   i;

    field = (ngx_str_t *) (p + cmd->offset);

    if (field->data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (!ngx_http_thinkgate_conf_valid_name(&value[1])) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "bad strategy name");
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (!ngx_http_thinkgate_conf_is_option(&value[i])) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[i],
                                          "options are key=value");
        }
    }

    if (ngx_http_thinkgate_conf_join(cf, 1, field) != NGX_CONF_OK
        || ngx_http_thinkgate_strategy_record(cf, field,
                                              "thinkgate_strategy")
           != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * A strategy text (thinkgate_strategy's, or a thinkgate_effort level's
 * strategy= and options) goes into the configuration document's
 * "strategies", once per distinct text and directive, with where it was
 * read: the engine checks its options against the plugin's table when a
 * worker registers, which nginx -t cannot (it has no plugins), and
 * refuses the configuration naming the directive and the place.
 */

ngx_int_t
ngx_http_thinkgate_strategy_record(ngx_conf_t *cf, ngx_str_t *text,
    const char *directive)
{
    u_char                          *p;
    size_t                           len;
    ngx_uint_t                       i;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_thinkgate_strategy_t   *s;
    ngx_http_thinkgate_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_thinkgate_module);
    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);

    s = mcf->strategies.elts;

    for (i = 0; i < mcf->strategies.nelts; i++) {
        if (s[i].text.len == text->len
            && ngx_strncmp(s[i].text.data, text->data, text->len) == 0
            && ngx_strcmp(s[i].directive, directive) == 0)
        {
            return NGX_OK;
        }
    }

    len = sizeof("location  at :") - 1 + clcf->name.len
          + cf->conf_file->file.name.len + NGX_INT_T_LEN;

    p = ngx_pnalloc(cf->pool, len);
    s = ngx_array_push(&mcf->strategies);
    if (p == NULL || s == NULL) {
        return NGX_ERROR;
    }

    s->text = *text;
    s->directive = directive;
    s->where.data = p;

    if (clcf->name.len) {
        p = ngx_sprintf(p, "location %V at ", &clcf->name);
    }

    p = ngx_sprintf(p, "%V:%ui", &cf->conf_file->file.name,
                    cf->conf_file->line);

    s->where.len = p - s->where.data;

    return NGX_OK;
}


static char *
ngx_http_thinkgate_msec_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    ngx_int_t                     n;
    ngx_str_t                    *value;
    ngx_msec_t                   *field;
    ngx_http_thinkgate_bounds_t  *bounds;

    field = (ngx_msec_t *) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;
    bounds = cmd->post;

    if (bounds->off && value[1].len == 3
        && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        *field = 0;
        return NGX_CONF_OK;
    }

    n = ngx_parse_time(&value[1], 0);
    if (n == NGX_ERROR || (ngx_uint_t) n < bounds->min
        || (ngx_uint_t) n > bounds->max)
    {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      bounds->off
                                      ? "expected \"off\" or a time from "
                                        "1ms to 7d"
                                      : "expected a time from 1ms to 7d");
    }

    *field = n;

    return NGX_CONF_OK;
}


static char *
ngx_http_thinkgate_size_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    char  *p = conf;

    size_t                       *field;
    ssize_t                       n;
    ngx_str_t                    *value;
    ngx_http_thinkgate_bounds_t  *bounds;

    field = (size_t *) (p + cmd->offset);

    if (*field != NGX_CONF_UNSET_SIZE) {
        return "is duplicate";
    }

    value = cf->args->elts;
    bounds = cmd->post;

    n = ngx_parse_size(&value[1]);
    if (n == NGX_ERROR || (size_t) n < bounds->min
        || (size_t) n > bounds->max)
    {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "expected a size from 1 to 1g");
    }

    *field = n;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_thinkgate_init_process(ngx_cycle_t *cycle)
{
    ngx_http_thinkgate_main_conf_t  *mcf;

    if (ngx_process != NGX_PROCESS_WORKER
        && ngx_process != NGX_PROCESS_SINGLE)
    {
        return NGX_OK;
    }

    mcf = ngx_http_cycle_get_module_main_conf(cycle,
                                              ngx_http_thinkgate_module);
    if (mcf == NULL || !mcf->enabled) {
        return NGX_OK;
    }

    return ngx_http_thinkgate_engine_init(cycle, mcf);
}


static void
ngx_http_thinkgate_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_thinkgate_engine_exit(cycle);
}
