
/*
 * thinkgate nginx module: a small JSON writer and the http-level
 * configuration document sent to the engine at registration (protocol.h).
 */


#include "ngx_http_thinkgate.h"


static ngx_int_t ngx_http_thinkgate_json_reserve(
    ngx_http_thinkgate_json_t *j, size_t n);
static void ngx_http_thinkgate_json_backends(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf);
static void ngx_http_thinkgate_json_pools(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf);
static void ngx_http_thinkgate_json_locations(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf);
static void ngx_http_thinkgate_json_strategies(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf);
static void ngx_http_thinkgate_json_plugins(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf);
static void ngx_http_thinkgate_json_redis(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_redis_t *redis);
static void ngx_http_thinkgate_json_embedder(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_embedder_t *emb);


void
ngx_http_thinkgate_json_init(ngx_http_thinkgate_json_t *j, ngx_pool_t *pool,
    size_t size)
{
    j->pool = pool;
    j->failed = 0;
    j->start = ngx_pnalloc(pool, size);

    if (j->start == NULL) {
        j->failed = 1;
        j->pos = NULL;
        j->end = NULL;
        return;
    }

    j->pos = j->start;
    j->end = j->start + size;
}


static ngx_int_t
ngx_http_thinkgate_json_reserve(ngx_http_thinkgate_json_t *j, size_t n)
{
    u_char  *p;
    size_t   size, used;

    if (j->failed) {
        return NGX_ERROR;
    }

    if ((size_t) (j->end - j->pos) >= n) {
        return NGX_OK;
    }

    used = j->pos - j->start;
    size = (j->end - j->start) * 2;

    if (size < used + n) {
        size = used + n;
    }

    /* the old block stays in the pool until the pool goes */

    p = ngx_pnalloc(j->pool, size);
    if (p == NULL) {
        j->failed = 1;
        return NGX_ERROR;
    }

    ngx_memcpy(p, j->start, used);

    j->start = p;
    j->pos = p + used;
    j->end = p + size;

    return NGX_OK;
}


void
ngx_http_thinkgate_json_raw(ngx_http_thinkgate_json_t *j, const char *s)
{
    size_t  len;

    len = ngx_strlen(s);

    if (ngx_http_thinkgate_json_reserve(j, len) != NGX_OK) {
        return;
    }

    j->pos = ngx_cpymem(j->pos, s, len);
}


/*
 * A JSON string.  Quotes, backslashes and control characters are escaped;
 * bytes that are not valid UTF-8 become U+FFFD, so that the engine's JSON
 * parser never refuses what a client sent in a header.
 */

void
ngx_http_thinkgate_json_bytes(ngx_http_thinkgate_json_t *j, u_char *p,
    size_t len)
{
    u_char          *last, *q;
    uint32_t         ch;
    static u_char    hex[] = "0123456789abcdef";

    /* at most 6 bytes per input byte, plus the quotes */

    if (ngx_http_thinkgate_json_reserve(j, len * 6 + 2) != NGX_OK) {
        return;
    }

    last = p + len;
    *j->pos++ = '"';

    while (p < last) {

        if (*p < 0x80) {
            ch = *p++;

            if (ch == '"' || ch == '\\') {
                *j->pos++ = '\\';
                *j->pos++ = (u_char) ch;

            } else if (ch == '\n') {
                *j->pos++ = '\\';
                *j->pos++ = 'n';

            } else if (ch == '\r') {
                *j->pos++ = '\\';
                *j->pos++ = 'r';

            } else if (ch == '\t') {
                *j->pos++ = '\\';
                *j->pos++ = 't';

            } else if (ch < 0x20 || ch == 0x7f) {
                j->pos = ngx_cpymem(j->pos, "\\u00", 4);
                *j->pos++ = hex[ch >> 4];
                *j->pos++ = hex[ch & 0xf];

            } else {
                *j->pos++ = (u_char) ch;
            }

            continue;
        }

        q = p;
        ch = ngx_utf8_decode(&p, last - p);

        if (ch > 0x10ffff) {
            /* invalid or truncated: skip one byte */
            p = q + 1;
            j->pos = ngx_cpymem(j->pos, "\\ufffd", 6);
            continue;
        }

        j->pos = ngx_cpymem(j->pos, q, p - q);
    }

    *j->pos++ = '"';
}


void
ngx_http_thinkgate_json_str(ngx_http_thinkgate_json_t *j, ngx_str_t *s)
{
    ngx_http_thinkgate_json_bytes(j, s->data, s->len);
}


/* ,"key": or "key": after an opening brace */

void
ngx_http_thinkgate_json_key(ngx_http_thinkgate_json_t *j, const char *key)
{
    size_t  len;

    len = ngx_strlen(key);

    if (ngx_http_thinkgate_json_reserve(j, len + 4) != NGX_OK) {
        return;
    }

    if (j->pos > j->start && j->pos[-1] != '{' && j->pos[-1] != '[') {
        *j->pos++ = ',';
    }

    *j->pos++ = '"';
    j->pos = ngx_cpymem(j->pos, key, len);
    *j->pos++ = '"';
    *j->pos++ = ':';
}


void
ngx_http_thinkgate_json_uint(ngx_http_thinkgate_json_t *j, uint64_t n)
{
    if (ngx_http_thinkgate_json_reserve(j, NGX_INT64_LEN) != NGX_OK) {
        return;
    }

    j->pos = ngx_sprintf(j->pos, "%uL", n);
}


ngx_int_t
ngx_http_thinkgate_conf_doc(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_http_thinkgate_json_t  j;

    ngx_http_thinkgate_json_init(&j, cf->pool, 1024);

    ngx_http_thinkgate_json_raw(&j, "{\"backends\":[");

    ngx_http_thinkgate_json_backends(&j, mcf);
    ngx_http_thinkgate_json_raw(&j, "],\"pools\":[");
    ngx_http_thinkgate_json_pools(&j, mcf);

    ngx_http_thinkgate_json_raw(&j, "],\"plugins\":[");
    ngx_http_thinkgate_json_plugins(&j, mcf);
    ngx_http_thinkgate_json_raw(&j, "]");

    ngx_http_thinkgate_json_key(&j, "redis");
    ngx_http_thinkgate_json_redis(&j, mcf->redis);

    ngx_http_thinkgate_json_key(&j, "embedder");
    ngx_http_thinkgate_json_embedder(&j, mcf->embedder);

    ngx_http_thinkgate_json_models(&j, mcf);
    ngx_http_thinkgate_json_strategies(&j, mcf);
    ngx_http_thinkgate_json_locations(&j, mcf);

    ngx_http_thinkgate_json_raw(&j, "}");

    if (j.failed) {
        return NGX_ERROR;
    }

    mcf->doc.data = j.start;
    mcf->doc.len = j.pos - j.start;

    return NGX_OK;
}


/*
 * A location's "locations" entry (protocol.h): the REQUEST meta members
 * that every request there shares, so that a request's meta names the
 * entry by index instead of carrying them.  Locations that share every
 * value share an entry.
 */

ngx_int_t
ngx_http_thinkgate_location_index(ngx_conf_t *cf,
    ngx_http_thinkgate_loc_conf_t *lcf)
{
    ngx_str_t                       *loc, *text;
    ngx_uint_t                       i;
    ngx_http_thinkgate_json_t        j;
    ngx_http_thinkgate_main_conf_t  *mcf;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_thinkgate_module);

    ngx_http_thinkgate_json_init(&j, cf->pool, 256);
    ngx_http_thinkgate_json_raw(&j, "{");

    /* without a pool the engine routes by the request's model */

    if (lcf->pool.len) {
        ngx_http_thinkgate_json_key(&j, "pool");
        ngx_http_thinkgate_json_str(&j, &lcf->pool);
    }

    if (lcf->strategy.len) {
        ngx_http_thinkgate_json_key(&j, "strategy");
        ngx_http_thinkgate_json_str(&j, &lcf->strategy);
    }

    ngx_http_thinkgate_effort_meta(&j, lcf);

    ngx_http_thinkgate_json_key(&j, "client_strategy");
    ngx_http_thinkgate_json_raw(&j, lcf->client_strategy ? "true" : "false");
    ngx_http_thinkgate_json_key(&j, "timeout_ms");
    ngx_http_thinkgate_json_uint(&j, lcf->timeout);
    ngx_http_thinkgate_json_key(&j, "deadline_ms");
    ngx_http_thinkgate_json_uint(&j, lcf->deadline);

    /* the engine bounds a session's history with it */
    ngx_http_thinkgate_json_key(&j, "max_body");
    ngx_http_thinkgate_json_uint(&j, lcf->max_body);
    ngx_http_thinkgate_json_key(&j, "session");
    ngx_http_thinkgate_json_raw(&j, lcf->session ? "true" : "false");
    ngx_http_thinkgate_json_raw(&j, "}");

    if (j.failed) {
        return NGX_ERROR;
    }

    loc = mcf->locations.elts;

    for (i = 0; i < mcf->locations.nelts; i++) {
        if ((size_t) (j.pos - j.start) == loc[i].len
            && ngx_memcmp(loc[i].data, j.start, loc[i].len) == 0)
        {
            lcf->loc = i;
            return NGX_OK;
        }
    }

    text = ngx_array_push(&mcf->locations);
    if (text == NULL) {
        return NGX_ERROR;
    }

    text->data = j.start;
    text->len = j.pos - j.start;
    lcf->loc = mcf->locations.nelts - 1;

    return NGX_OK;
}


/* "locations": the entries above, by index */

static void
ngx_http_thinkgate_json_locations(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_str_t   *loc;
    ngx_uint_t   i;

    loc = mcf->locations.elts;

    ngx_http_thinkgate_json_key(j, "locations");
    ngx_http_thinkgate_json_raw(j, "[");

    for (i = 0; i < mcf->locations.nelts; i++) {
        if (i) {
            ngx_http_thinkgate_json_raw(j, ",");
        }

        if (ngx_http_thinkgate_json_reserve(j, loc[i].len) != NGX_OK) {
            return;
        }

        j->pos = ngx_cpymem(j->pos, loc[i].data, loc[i].len);
    }

    ngx_http_thinkgate_json_raw(j, "]");
}


/* "strategies": each distinct strategy text of thinkgate_strategy and
 * thinkgate_effort, the directive and where it was read, for the engine
 * to check at registration */

static void
ngx_http_thinkgate_json_strategies(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_uint_t                      i;
    ngx_http_thinkgate_strategy_t  *s;

    s = mcf->strategies.elts;

    ngx_http_thinkgate_json_key(j, "strategies");
    ngx_http_thinkgate_json_raw(j, "[");

    for (i = 0; i < mcf->strategies.nelts; i++) {
        ngx_http_thinkgate_json_raw(j, i ? ",{" : "{");
        ngx_http_thinkgate_json_key(j, "strategy");
        ngx_http_thinkgate_json_str(j, &s[i].text);
        ngx_http_thinkgate_json_key(j, "where");
        ngx_http_thinkgate_json_str(j, &s[i].where);
        /* plain ASCII, as json_key wants it */
        ngx_http_thinkgate_json_key(j, "directive");
        ngx_http_thinkgate_json_raw(j, "\"");
        ngx_http_thinkgate_json_raw(j, s[i].directive);
        ngx_http_thinkgate_json_raw(j, "\"");
        ngx_http_thinkgate_json_raw(j, "}");
    }

    ngx_http_thinkgate_json_raw(j, "]");
}


/* The plugin names, comma-separated */

static void
ngx_http_thinkgate_json_plugins(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_str_t   *name;
    ngx_uint_t   i;

    name = mcf->plugins.elts;

    for (i = 0; i < mcf->plugins.nelts; i++) {
        if (i) {
            ngx_http_thinkgate_json_raw(j, ",");
        }

        ngx_http_thinkgate_json_str(j, &name[i]);
    }
}


/* thinkgate_redis's object, or null: the address, then the schema's
 * keys */

static void
ngx_http_thinkgate_json_redis(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_redis_t *redis)
{
    if (redis == NULL) {
        ngx_http_thinkgate_json_raw(j, "null");
        return;
    }

    ngx_http_thinkgate_json_raw(j, "{");
    ngx_http_thinkgate_json_key(j, "addr");
    ngx_http_thinkgate_json_str(j, &redis->addr);
    ngx_http_thinkgate_keys_doc(j, &ngx_http_thinkgate_redis_keys, redis);
    ngx_http_thinkgate_json_raw(j, "}");
}


/* thinkgate_embedder's object, or null: the model directory, then the
 * schema's keys */

static void
ngx_http_thinkgate_json_embedder(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_embedder_t *emb)
{
    if (emb == NULL) {
        ngx_http_thinkgate_json_raw(j, "null");
        return;
    }

    ngx_http_thinkgate_json_raw(j, "{");
    ngx_http_thinkgate_json_key(j, "path");
    ngx_http_thinkgate_json_str(j, &emb->path);
    ngx_http_thinkgate_keys_doc(j, &ngx_http_thinkgate_embedder_keys, emb);
    ngx_http_thinkgate_json_raw(j, "}");
}


/* The backends' objects: name and URL, then the schema's keys */

static void
ngx_http_thinkgate_json_backends(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_uint_t                     i;
    ngx_http_thinkgate_backend_t  *b;

    b = mcf->backends.elts;

    for (i = 0; i < mcf->backends.nelts; i++) {
        ngx_http_thinkgate_json_raw(j, i ? ",{" : "{");

        ngx_http_thinkgate_json_key(j, "name");
        ngx_http_thinkgate_json_str(j, &b[i].name);
        ngx_http_thinkgate_json_key(j, "url");
        ngx_http_thinkgate_json_str(j, &b[i].url);
        ngx_http_thinkgate_keys_doc(j, &ngx_http_thinkgate_backend_keys,
                                    &b[i]);
        ngx_http_thinkgate_json_raw(j, "}");
    }
}


/* The pools' objects: name and members, then the schema's keys */

static void
ngx_http_thinkgate_json_pools(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_main_conf_t *mcf)
{
    ngx_str_t                  *name;
    ngx_uint_t                  i, k;
    ngx_http_thinkgate_pool_t  *pool;

    pool = mcf->pools.elts;

    for (i = 0; i < mcf->pools.nelts; i++) {
        ngx_http_thinkgate_json_raw(j, i ? ",{" : "{");

        ngx_http_thinkgate_json_key(j, "name");
        ngx_http_thinkgate_json_str(j, &pool[i].name);

        ngx_http_thinkgate_json_key(j, "backends");
        ngx_http_thinkgate_json_raw(j, "[");

        name = pool[i].backends.elts;

        for (k = 0; k < pool[i].backends.nelts; k++) {
            if (k) {
                ngx_http_thinkgate_json_raw(j, ",");
            }

            ngx_http_thinkgate_json_str(j, &name[k]);
        }

        ngx_http_thinkgate_json_raw(j, "]");

        ngx_http_thinkgate_keys_doc(j, &ngx_http_thinkgate_pool_keys,
                                    &pool[i]);

        ngx_http_thinkgate_json_raw(j, "}");
    }
}
