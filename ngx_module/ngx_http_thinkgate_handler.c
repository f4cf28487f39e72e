
/*
 * thinkgate nginx module: the content handler and the frames of one
 * request.  The worker reads the body, hands it to the engine as REQUEST
 * frames; ngx_http_thinkgate_stream.c forwards HEAD / DATA / END / ERROR
 * to the client, flushed once per ring pass, returning WINDOW credit as
 * the bytes leave.
 */


#include "ngx_http_thinkgate.h"


static void ngx_http_thinkgate_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_thinkgate_collect_body(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx, size_t max);
static ngx_int_t ngx_http_thinkgate_refuse(ngx_http_request_t *r,
    ngx_uint_t kind, ngx_http_thinkgate_auth_t *auth);
static ngx_int_t ngx_http_thinkgate_unauthorized(ngx_http_request_t *r,
    ngx_uint_t kind);
static ngx_int_t ngx_http_thinkgate_meta(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx);
static void ngx_http_thinkgate_meta_json_headers(ngx_http_request_t *r,
    ngx_http_thinkgate_json_t *j);
static void ngx_http_thinkgate_cleanup(void *data);
static ngx_int_t ngx_http_thinkgate_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_request_body_filter_pt  ngx_http_next_request_body_filter;


/* meta "kind" by ngx_http_thinkgate_kind_e */
static const char  *ngx_http_thinkgate_kinds[] = {
    "\"api\"", "\"status\"", "\"admin\""
};


static ngx_str_t  ngx_http_thinkgate_meta_headers[] = {
    ngx_string("authorization"),
    ngx_string("x-thinkgate-strategy"),
    ngx_string("x-thinkgate-session"),
    ngx_string("x-request-id"),
    ngx_null_string
};


ngx_int_t
ngx_http_thinkgate_pass_handler(ngx_http_request_t *r)
{
    return ngx_http_thinkgate_start(r, NGX_HTTP_THINKGATE_KIND_API);
}


/* The engine's admin API: the request goes over as it came. */

ngx_int_t
ngx_http_thinkgate_admin_handler(ngx_http_request_t *r)
{
    return ngx_http_thinkgate_start(r, NGX_HTTP_THINKGATE_KIND_ADMIN);
}


/*
 * The refusals due before the body is read: a method the location does
 * not take, a missing or bad key (auth is filled otherwise), no engine,
 * a body over thinkgate_max_body.  NGX_DECLINED when the request goes on.
 */

static ngx_int_t
ngx_http_thinkgate_refuse(ngx_http_request_t *r, ngx_uint_t kind,
    ngx_http_thinkgate_auth_t *auth)
{
    ngx_int_t                       rc;
    ngx_str_t                       msg;
    ngx_uint_t                      methods;
    ngx_http_thinkgate_loc_conf_t  *lcf;

    methods = NGX_HTTP_GET|NGX_HTTP_POST|NGX_HTTP_HEAD;

    if (kind == NGX_HTTP_THINKGATE_KIND_ADMIN) {
        /* the engine decides what the admin API answers to */
        methods |= NGX_HTTP_PUT|NGX_HTTP_DELETE|NGX_HTTP_PATCH;

    } else if (kind == NGX_HTTP_THINKGATE_KIND_API) {
        /* DELETE /v1/responses/{id}; elsewhere the engine answers 405 */
        methods |= NGX_HTTP_DELETE;
    }

    if (!(r->method & methods)) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&msg, "method not allowed");
        return ngx_http_thinkgate_send_error(r, NGX_HTTP_NOT_ALLOWED,
                                             "invalid_request_error", NULL,
                                             &msg);
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_thinkgate_module);

    if (kind == NGX_HTTP_THINKGATE_KIND_API
        && ngx_http_thinkgate_auth(r, auth) != NGX_OK)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_thinkgate_unauthorized(r, kind);
    }

    /* thinkgate_admin token_file=: the admin API's own token */
    if (kind == NGX_HTTP_THINKGATE_KIND_ADMIN && lcf->admin_token != NULL
        && ngx_http_thinkgate_admin_auth(r, lcf->admin_token) != NGX_OK)
    {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_thinkgate_unauthorized(r, kind);
    }

    if (!ngx_http_thinkgate_engine_connected()) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_thinkgate_unavailable(r, kind);
    }

    if (r->headers_in.content_length_n > (off_t) lcf->max_body) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        ngx_str_set(&msg, "request body exceeds thinkgate_max_body");
        return ngx_http_thinkgate_send_error(r,
                                             NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                             "invalid_request_error", NULL,
                                             &msg);
    }

    return NGX_DECLINED;
}


ngx_int_t
ngx_http_thinkgate_start(ngx_http_request_t *r, ngx_uint_t kind)
{
    ngx_int_t                    rc;
    ngx_pool_cleanup_t          *cln;
    ngx_http_thinkgate_ctx_t    *ctx;
    ngx_http_thinkgate_auth_t    auth;
    ngx_http_core_loc_conf_t    *clcf;

    ngx_memzero(&auth, sizeof(ngx_http_thinkgate_auth_t));

    rc = ngx_http_thinkgate_refuse(r, kind, &auth);
    if (rc != NGX_DECLINED) {
        return rc;
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_thinkgate_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->kind = kind;
    ctx->auth = auth;
    ctx->id = ngx_http_thinkgate_engine_next_id();

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_thinkgate_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_thinkgate_module);

    /*
     * Our answer leaves in several small writes (header, frames, last
     * chunk); with Nagle on, each write after the first waits for the
     * client's delayed ACK, some 40 ms.  nginx itself only sets
     * TCP_NODELAY when a connection turns keep-alive.
     */
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (clcf->tcp_nodelay && ngx_tcp_nodelay(r->connection) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_thinkgate_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_thinkgate_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                       rc;
    ngx_str_t                       msg;
    ngx_http_thinkgate_ctx_t       *ctx;
    ngx_http_thinkgate_loc_conf_t  *lcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_thinkgate_module);
    lcf = ngx_http_get_module_loc_conf(r, ngx_http_thinkgate_module);

    rc = ctx->too_large ? NGX_DECLINED
                        : ngx_http_thinkgate_collect_body(r, ctx,
                                                          lcf->max_body);

    if (rc == NGX_DECLINED) {
        ngx_str_set(&msg, "request body exceeds thinkgate_max_body");
        rc = ngx_http_thinkgate_send_error(r,
                                           NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                           "invalid_request_error", NULL,
                                           &msg);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (rc != NGX_OK || ngx_http_thinkgate_meta(r, ctx) != NGX_OK) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_thinkgate_engine_submit(ctx);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_thinkgate_unavailable(r, ctx->kind);
        ngx_http_finalize_request(r, rc);
        return;
    }

    if (rc != NGX_OK) {
        ngx_str_set(&msg, "request line and headers too large for the "
                          "engine ring");
        rc = ngx_http_thinkgate_send_error(r, NGX_HTTP_BAD_REQUEST,
                                           "invalid_request_error", NULL,
                                           &msg);
        ngx_http_finalize_request(r, rc);
        return;
    }

    /* a client that goes away cancels the request (the pool cleanup) */

    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_thinkgate_write_handler;
}


/*
 * postconfiguration: the request body filter, and the configuration
 * document, written now that every location is merged and has its
 * "locations" entry.
 */

ngx_int_t
ngx_http_thinkgate_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_thinkgate_main_conf_t  *mcf;

    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_thinkgate_body_filter;

    mcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_thinkgate_module);

    return ngx_http_thinkgate_conf_doc(cf, mcf);
}


/*
 * Counts the body as it arrives.  A body without Content-Length (chunked)
 * that grows past thinkgate_max_body is still read to its end, so that
 * the client gets the JSON 413 from the body handler, but its bytes are
 * marked consumed and dropped instead of being kept in memory or on disk.
 */

static ngx_int_t
ngx_http_thinkgate_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_chain_t                    *cl, *out, **ll;
    ngx_http_thinkgate_ctx_t       *ctx;
    ngx_http_thinkgate_loc_conf_t  *lcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_thinkgate_module);

    if (ctx == NULL || ctx->request != r) {
        return ngx_http_next_request_body_filter(r, in);
    }

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_thinkgate_module);

    out = NULL;
    ll = &out;

    for (cl = in; cl; cl = cl->next) {

        if (!ctx->too_large) {
            ctx->body_seen += ngx_buf_size(cl->buf);

            if (ctx->body_seen > (off_t) lcf->max_body) {
                ctx->too_large = 1;
            }
        }

        if (ctx->too_large && !cl->buf->last_buf) {
            cl->buf->pos = cl->buf->last;
            continue;
        }

        /* fresh links: the caller still walks its own chain */

        *ll = ngx_alloc_chain_link(r->pool);
        if (*ll == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        (*ll)->buf = cl->buf;
        ll = &(*ll)->next;
    }

    *ll = NULL;

    return ngx_http_next_request_body_filter(r, out);
}


/*
 * The body as one contiguous block: the engine gets it in frames, and
 * bodies nginx buffered to a temporary file are read back once.
 * NGX_DECLINED when it is larger than thinkgate_max_body.
 */

static ngx_int_t
ngx_http_thinkgate_collect_body(ngx_http_request_t *r,
    ngx_http_thinkgate_ctx_t *ctx, size_t max)
{
    u_char       *p;
    off_t         len;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    if (r->request_body == NULL || r->request_body->bufs == NULL) {
        return NGX_OK;
    }

    len = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        len += ngx_buf_size(cl->buf);
    }

    if (len > (off_t) max) {
        return NGX_DECLINED;
    }

    cl = r->request_body->bufs;

    if (cl->next == NULL && ngx_buf_in_memory(cl->buf)) {
        ctx->body = cl->buf->pos;
        ctx->body_len = (size_t) len;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->body = p;
    ctx->body_len = (size_t) len;

    for ( /* void */ ; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            p = ngx_cpymem(p, b->pos, b->last - b->pos);
            continue;
        }

        if (b->in_file && b->file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last
                                                     - b->file_pos),
                              b->file_pos);
            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                              "thinkgate: short read of the request body "
                              "from \"%V\"", &b->file->name);
                return NGX_ERROR;
            }

            p += n;
        }
    }

    return NGX_OK;
}


/* The request headers the engine reads, as the meta's "headers"; left
 * out when the request has none of them. */

static void
ngx_http_thinkgate_meta_json_headers(ngx_http_request_t *r,
    ngx_http_thinkgate_json_t *j)
{
    ngx_str_t        *want;
    ngx_uint_t        i, k, seen;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    /* only the first of repeated headers, so that keys stay unique */

    seen = 0;
    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].hash == 0) {
            continue;
        }

        for (k = 0, want = ngx_http_thinkgate_meta_headers;
             want->len;
             k++, want++)
        {
            if ((seen & (1 << k)) == 0
                && h[i].key.len == want->len
                && ngx_strncasecmp(h[i].key.data, want->data, want->len)
                   == 0)
            {
                if (seen == 0) {
                    ngx_http_thinkgate_json_key(j, "headers");
                    ngx_http_thinkgate_json_raw(j, "{");
                }

                seen |= 1 << k;

                ngx_http_thinkgate_json_key(j, (char *) want->data);
                ngx_http_thinkgate_json_str(j, &h[i].value);
                break;
            }
        }
    }

    if (seen) {
        ngx_http_thinkgate_json_raw(j, "}");
    }
}


/* The REQUEST meta (protocol.h), prefixed with its u32 length. */

static ngx_int_t
ngx_http_thinkgate_meta(ngx_http_request_t *r, ngx_http_thinkgate_ctx_t *ctx)
{
    uint32_t                        len;
    ngx_http_thinkgate_json_t       j;
    ngx_http_thinkgate_loc_conf_t  *lcf;

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_thinkgate_module);

    ngx_http_thinkgate_json_init(&j, r->pool, 1024);
    if (j.failed) {
        return NGX_ERROR;
    }

    j.pos += sizeof(uint32_t);

    ngx_http_thinkgate_json_raw(&j, "{");

    ngx_http_thinkgate_json_key(&j, "kind");
    ngx_http_thinkgate_json_raw(&j, ngx_http_thinkgate_kinds[ctx->kind]);
    ngx_http_thinkgate_json_key(&j, "method");
    ngx_http_thinkgate_json_str(&j, &r->method_name);
    ngx_http_thinkgate_json_key(&j, "uri");
    ngx_http_thinkgate_json_str(&j, &r->uri);

    /* the engine reads no "args" as empty ones */

    if (r->args.len) {
        ngx_http_thinkgate_json_key(&j, "args");
        ngx_http_thinkgate_json_str(&j, &r->args);
    }

    /* the pool, strategy, effort, timeouts, max_body and session: the
     * location's entry of the configuration document */

    ngx_http_thinkgate_json_key(&j, "loc");
    ngx_http_thinkgate_json_uint(&j, lcf->loc);

    /* the key's name, rights and limits: the engine refuses (403, 429)
     * and counts */

    if (ctx->kind == NGX_HTTP_THINKGATE_KIND_API) {
        ngx_http_thinkgate_key_meta(&j, &ctx->auth);
    }

    ngx_http_thinkgate_meta_json_headers(r, &j);

    ngx_http_thinkgate_json_raw(&j, "}");

    if (j.failed) {
        return NGX_ERROR;
    }

    len = (uint32_t) (j.pos - j.start - sizeof(uint32_t));
    ngx_memcpy(j.start, &len, sizeof(uint32_t));

    ctx->meta.data = j.start;
    ctx->meta.len = j.pos - j.start;

    return NGX_OK;
}


static void
ngx_http_thinkgate_cleanup(void *data)
{
    ngx_http_thinkgate_ctx_t  *ctx = data;

    /* the request is destroyed before END: the engine stops its traces */

    ngx_http_thinkgate_engine_forget(ctx, 1);
}


ngx_int_t
ngx_http_thinkgate_unavailable(ngx_http_request_t *r, ngx_uint_t kind)
{
    ngx_str_t                     msg;
    ngx_http_thinkgate_engine_t  *e = &ngx_http_thinkgate_engine;

    if (kind == NGX_HTTP_THINKGATE_KIND_STATUS) {
        return ngx_http_thinkgate_status_offline(r);
    }

    ngx_str_set(&msg, "thinkgate engine unavailable");

    /* a refused configuration says why, so that the client's error
     * names what the operator has to fix */

    if (e->refused != 0 && e->refusal[0] != '\0') {
        msg.len = sizeof("thinkgate engine refused this configuration: ")
                  - 1 + ngx_strlen(e->refusal);
        msg.data = ngx_pnalloc(r->pool, msg.len);
        if (msg.data == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_sprintf(msg.data, "thinkgate engine refused this "
                    "configuration: %s", e->refusal);
    }

    return ngx_http_thinkgate_send_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "engine_unavailable", NULL, &msg);
}


/* 401 as OpenAI answers it, with WWW-Authenticate */

static ngx_int_t
ngx_http_thinkgate_unauthorized(ngx_http_request_t *r, ngx_uint_t kind)
{
    static ngx_str_t  key = ngx_string(
        "Incorrect or missing API key: send \"Authorization: Bearer KEY\" "
        "with a key of this gateway.");
    static ngx_str_t  admin = ngx_string(
        "Incorrect or missing admin token: send \"Authorization: Bearer "
        "TOKEN\" with the token of this location's thinkgate_admin "
        "token_file.");

    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "WWW-Authenticate");
    ngx_str_set(&h->value, "Bearer");

    if (kind == NGX_HTTP_THINKGATE_KIND_ADMIN) {
        return ngx_http_thinkgate_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                             "invalid_request_error",
                                             "invalid_admin_token", &admin);
    }

    return ngx_http_thinkgate_send_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "invalid_request_error",
                                         "invalid_api_key", &key);
}


/*
 * The module's own errors in the shape the engine renders its own
 * (engine/openai/request.c, tg_oa_error_render) and OpenAI answers:
 * {"error": {"message", "type", "param": null, "code"}} and a newline.
 * type and code are plain ASCII words; code NULL: null.
 */

ngx_int_t
ngx_http_thinkgate_error_body(ngx_pool_t *pool, const char *type,
    const char *code, ngx_str_t *message, ngx_str_t *out)
{
    ngx_http_thinkgate_json_t  j;

    ngx_http_thinkgate_json_init(&j, pool, 256);

    ngx_http_thinkgate_json_raw(&j, "{\"error\":{");
    ngx_http_thinkgate_json_key(&j, "message");
    ngx_http_thinkgate_json_str(&j, message);
    ngx_http_thinkgate_json_key(&j, "type");
    ngx_http_thinkgate_json_raw(&j, "\"");
    ngx_http_thinkgate_json_raw(&j, type);
    ngx_http_thinkgate_json_raw(&j, "\",\"param\":null,\"code\":");
    ngx_http_thinkgate_json_raw(&j, code ? "\"" : "null");

    if (code) {
        ngx_http_thinkgate_json_raw(&j, code);
        ngx_http_thinkgate_json_raw(&j, "\"");
    }

    ngx_http_thinkgate_json_raw(&j, "}}\n");

    if (j.failed) {
        return NGX_ERROR;
    }

    out->data = j.start;
    out->len = j.pos - j.start;

    return NGX_OK;
}


ngx_int_t
ngx_http_thinkgate_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, const char *code, ngx_str_t *message)
{
    ngx_str_t  body;

    if (ngx_http_thinkgate_error_body(r->pool, type, code, message, &body)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_thinkgate_send_json(r, status, body.data, body.len);
}


ngx_int_t
ngx_http_thinkgate_send_json(ngx_http_request_t *r, ngx_uint_t status,
    u_char *p, size_t len)
{
    return ngx_http_thinkgate_send_body(r, status, "application/json", p,
                                        len);
}


ngx_int_t
ngx_http_thinkgate_send_body(ngx_http_request_t *r, ngx_uint_t status,
    const char *type, u_char *p, size_t len)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;
    r->headers_out.content_type.data = (u_char *) type;
    r->headers_out.content_type.len = ngx_strlen(type);
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    b->pos = p;
    b->last = p + len;
    b->memory = len ? 1 : 0;
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


