/*
 * The nginx module's reading of an END frame (ngx_module/
 * ngx_http_thinkgate_vars.c): ngx_http_thinkgate_figures() on the payload,
 * then every figure read back through the $thinkgate_NAME handler, as
 * log_format would.  The module is built against nginx's headers (from
 * nginx-dev, configured by mk/module.sh); the few nginx functions it calls
 * are stubbed below, each allocation its own malloc so that ASan sees a
 * byte past it.  The rest of the module's frame handling (HEAD, DATA,
 * ERROR in ngx_http_thinkgate_stream.c) drives nginx's output chain and
 * is not built here.
 */
#include "ngx_http_thinkgate.h"

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

ngx_module_t  ngx_http_thinkgate_module;

/* A pool: every allocation is remembered and freed after the input. */
#define TG_FUZZ_POOL_MAX  1024
static void    *tg_fuzz_allocs[TG_FUZZ_POOL_MAX];
static size_t   tg_fuzz_nallocs;

void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    (void) pool;
    tg_fuzz_check(tg_fuzz_nallocs < TG_FUZZ_POOL_MAX);
    p = malloc(size ? size : 1);
    tg_fuzz_check(p != NULL);
    tg_fuzz_allocs[tg_fuzz_nallocs++] = p;
    return p;
}

void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_pnalloc(pool, size);
}

ngx_array_t *
ngx_array_create(ngx_pool_t *p, ngx_uint_t n, size_t size)
{
    ngx_array_t  *a = ngx_palloc(p, sizeof(ngx_array_t));

    a->elts = ngx_palloc(p, n * size);
    a->nelts = 0;
    a->size = size;
    a->nalloc = n;
    a->pool = p;
    return a;
}

void *
ngx_array_push(ngx_array_t *a)
{
    void  *n;

    if (a->nelts == a->nalloc) {
        n = ngx_palloc(a->pool, 2 * a->nalloc * a->size);
        memcpy(n, a->elts, a->nelts * a->size);
        a->elts = n;
        a->nalloc *= 2;
    }
    return (u_char *) a->elts + a->size * a->nelts++;
}

ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    return strncasecmp((const char *) s1, (const char *) s2, n);
}

u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    (void) fmt;
    return buf;
}

/* The handlers ngx_http_thinkgate_add_variables() registers. */
static ngx_http_variable_t  tg_fuzz_vars[2];
static size_t               tg_fuzz_nvars;

ngx_http_variable_t *
ngx_http_add_variable(ngx_conf_t *cf, ngx_str_t *name, ngx_uint_t flags)
{
    (void) cf;
    (void) flags;
    tg_fuzz_check(tg_fuzz_nvars < 2);
    tg_fuzz_vars[tg_fuzz_nvars].name = *name;
    return &tg_fuzz_vars[tg_fuzz_nvars++];
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    ngx_conf_t  cf;

    (void) argc;
    (void) argv;
    memset(&cf, 0, sizeof(cf));
    tg_fuzz_check(ngx_http_thinkgate_add_variables(&cf) == NGX_OK);
    tg_fuzz_check(tg_fuzz_nvars == 2);
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_http_request_t         r;
    ngx_http_thinkgate_ctx_t   ctx;
    ngx_http_variable_value_t  v;
    ngx_keyval_t              *fig;
    ngx_str_t                  name;
    void                      *ctxs[1];
    u_char                     buf[80];
    ngx_uint_t                 i, k;
    const u_char              *first;
    char                      *payload;

    memset(&r, 0, sizeof(r));
    memset(&ctx, 0, sizeof(ctx));
    ctxs[0] = &ctx;
    r.ctx = ctxs;
    ctx.request = &r;
    payload = tg_fuzz_dup(data, size);

    tg_fuzz_check(ngx_http_thinkgate_figures(&ctx, (u_char *) payload, size)
                  == NGX_OK);
    if (ctx.figures == NULL) {
        goto done;
    }

    fig = ctx.figures->elts;
    for (i = 0; i < ctx.figures->nelts; i++) {
        tg_fuzz_check(fig[i].key.len >= 1 && fig[i].key.len <= 64);
        for (k = 0; k < fig[i].key.len; k++) {
            tg_fuzz_check((fig[i].key.data[k] >= 'a'
                           && fig[i].key.data[k] <= 'z')
                          || (fig[i].key.data[k] >= '0'
                              && fig[i].key.data[k] <= '9')
                          || fig[i].key.data[k] == '_');
        }
        tg_fuzz_check(memchr(fig[i].value.data, '\n', fig[i].value.len)
                      == NULL);

        /* $thinkgate_NAME finds it, with the first value sent. */
        memcpy(buf, "thinkgate_", 10);
        memcpy(buf + 10, fig[i].key.data, fig[i].key.len);
        name.data = buf;
        name.len = 10 + fig[i].key.len;
        memset(&v, 0, sizeof(v));
        tg_fuzz_check(tg_fuzz_vars[1].get_handler(&r, &v, (uintptr_t) &name)
                      == NGX_OK);
        tg_fuzz_check(!v.not_found && v.len == fig[i].value.len);
        first = v.data;
        tg_fuzz_check(first == fig[i].value.data);
    }

done:
    while (tg_fuzz_nallocs > 0) {
        free(tg_fuzz_allocs[--tg_fuzz_nallocs]);
    }
    free(payload);
    return 0;
}
