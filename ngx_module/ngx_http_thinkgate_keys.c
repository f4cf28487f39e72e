
/*
 * thinkgate nginx module: client API keys.  thinkgate_keys file=PATH
 * reads the key file when the configuration is read (nginx -t refuses a
 * malformed one, naming the line); thinkgate_auth on checks each API
 * request's bearer token against the SHA-256 digests in it.  Keys are
 * never held in clear.  File lines:
 *
 *     NAME SHA256HEX [models=A,B|*] [strategies=X,Y|*]
 *                    [rpm=N] [tpm=N] [tpd=N] [window=DURATION]
 *
 * thinkgate_keys redis keeps the keys in Redis (tools/thinkgate-keys
 * --redis): the bearer token's SHA-256 goes to the engine, which reads
 * the key's record on every request (engine/serve/keys.h).
 * thinkgate_auth_key VALUE names the key instead of a bearer token, for
 * an identity provider behind nginx's auth_request.  thinkgate_admin
 * token_file=PATH gives an admin location a token of its own.
 */


#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "ngx_http_thinkgate.h"


#define NGX_HTTP_THINKGATE_KEY_LINE    4096
#define NGX_HTTP_THINKGATE_KEY_FIELDS  8
#define NGX_HTTP_THINKGATE_ADMIN_TOKEN_MIN  16


static ngx_int_t ngx_http_thinkgate_auth_named(ngx_http_request_t *r,
    ngx_http_thinkgate_loc_conf_t *lcf, ngx_http_thinkgate_main_conf_t *mcf,
    ngx_http_thinkgate_auth_t *auth);
static ngx_int_t ngx_http_thinkgate_keys_load(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf, ngx_str_t *path);
static ngx_int_t ngx_http_thinkgate_keys_line(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf, u_char *p, size_t len,
    ngx_str_t *path, ngx_uint_t line);
static ngx_int_t ngx_http_thinkgate_keys_split(ngx_conf_t *cf, u_char *p,
    size_t len, ngx_str_t *word, ngx_uint_t *nwords);
static ngx_uint_t ngx_http_thinkgate_keys_named(
    ngx_http_thinkgate_main_conf_t *mcf, ngx_str_t *name);
static const char *ngx_http_thinkgate_keys_field(
    ngx_http_thinkgate_key_t *k, ngx_str_t *w);
static ngx_int_t ngx_http_thinkgate_keys_hex(u_char *dst, u_char *src,
    size_t len);


#define NGX_HTTP_THINKGATE_KEY_LIST      0
#define NGX_HTTP_THINKGATE_KEY_DURATION  1
#define NGX_HTTP_THINKGATE_KEY_NUMBER    2


/* the fields a key file line may have after the digest */

typedef struct {
    ngx_str_t                   name;       /* with the "=" */
    ngx_uint_t                  type;
    size_t                      offset;     /* in ngx_http_thinkgate_key_t */
    const char                 *why;        /* a bad value's complaint */
} ngx_http_thinkgate_key_field_t;


static ngx_http_thinkgate_key_field_t  ngx_http_thinkgate_key_fields[] = {
    { ngx_string("models="), NGX_HTTP_THINKGATE_KEY_LIST,
      offsetof(ngx_http_thinkgate_key_t, models), NULL },
    { ngx_string("strategies="), NGX_HTTP_THINKGATE_KEY_LIST,
      offsetof(ngx_http_thinkgate_key_t, strategies), NULL },
    { ngx_string("window="), NGX_HTTP_THINKGATE_KEY_DURATION,
      offsetof(ngx_http_thinkgate_key_t, window),
      "window= must be a duration such as 60s or 10m" },
    { ngx_string("rpm="), NGX_HTTP_THINKGATE_KEY_NUMBER,
      offsetof(ngx_http_thinkgate_key_t, rpm),
      "rpm=, tpm= and tpd= take a whole number" },
    { ngx_string("tpm="), NGX_HTTP_THINKGATE_KEY_NUMBER,
      offsetof(ngx_http_thinkgate_key_t, tpm),
      "rpm=, tpm= and tpd= take a whole number" },
    { ngx_string("tpd="), NGX_HTTP_THINKGATE_KEY_NUMBER,
      offsetof(ngx_http_thinkgate_key_t, tpd),
      "rpm=, tpm= and tpd= take a whole number" },
    { ngx_null_string, 0, 0, NULL }
};


char *
ngx_http_thinkgate_conf_keys(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    ngx_str_t  *value, path;

    if (mcf->keys != NULL || mcf->keys_redis) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* thinkgate_redis may come later: init_main_conf checks it is there */
    if (value[1].len == 5 && ngx_strncmp(value[1].data, "redis", 5) == 0) {
        mcf->keys_redis = 1;
        return NGX_CONF_OK;
    }

    if (value[1].len <= 5 || ngx_strncmp(value[1].data, "file=", 5) != 0) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "unknown key store: expected "
                                      "redis or file=PATH");
    }

    path.data = value[1].data + 5;
    path.len = value[1].len - 5;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    mcf->keys = ngx_array_create(cf->pool, 8,
                                 sizeof(ngx_http_thinkgate_key_t));
    if (mcf->keys == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_thinkgate_keys_load(cf, mcf, &path) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_thinkgate_keys_load(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf, ngx_str_t *path)
{
    FILE        *f;
    char         buf[NGX_HTTP_THINKGATE_KEY_LINE];
    size_t       len;
    ngx_int_t    rc;
    ngx_uint_t   line;

    /* read once, when the configuration is read: never on a request */
    f = fopen((char *) path->data, "r");
    if (f == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"thinkgate_keys\" directive: cannot open the "
                           "key file \"%V\"", path);
        return NGX_ERROR;
    }

    rc = NGX_OK;

    for (line = 1; fgets(buf, sizeof(buf), f) != NULL; line++) {
        len = ngx_strlen(buf);

        if (len && buf[len - 1] == '\n') {
            len--;

        } else if (len == sizeof(buf) - 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"thinkgate_keys\" directive: line %ui of "
                               "\"%V\" is too long", line, path);
            rc = NGX_ERROR;
            break;
        }

        rc = ngx_http_thinkgate_keys_line(cf, mcf, (u_char *) buf, len,
                                          path, line);
        if (rc != NGX_OK) {
            break;
        }
    }

    fclose(f);

    return rc;
}


static ngx_int_t
ngx_http_thinkgate_keys_line(ngx_conf_t *cf,
    ngx_http_thinkgate_main_conf_t *mcf, u_char *p, size_t len,
    ngx_str_t *path, ngx_uint_t line)
{
    ngx_str_t                  word[NGX_HTTP_THINKGATE_KEY_FIELDS];
    ngx_int_t                  rc;
    ngx_uint_t                 n, i;
    const char                *why;
    ngx_http_thinkgate_key_t  *k;

    rc = ngx_http_thinkgate_keys_split(cf, p, len, word, &n);
    if (rc == NGX_ERROR) {
        return NGX_ERROR;
    }

    if (rc == NGX_DECLINED) {
        why = "too many fields";
        goto invalid;
    }

    if (n == 0) {
        return NGX_OK;
    }

    if (n < 2) {
        why = "expected NAME SHA256HEX [models=...] [strategies=...] "
              "[rpm=N] [tpm=N] [tpd=N] [window=DURATION]";
        goto invalid;
    }

    if (!ngx_http_thinkgate_conf_valid_name(&word[0])) {
        why = "a key name is 1-64 letters, digits, \"_\", \"-\" or \".\"";
        goto invalid;
    }

    if (ngx_http_thinkgate_keys_named(mcf, &word[0])) {
        why = "duplicate key name";
        goto invalid;
    }

    k = ngx_array_push(mcf->keys);
    if (k == NULL) {
        return NGX_ERROR;
    }

    ngx_memzero(k, sizeof(ngx_http_thinkgate_key_t));
    k->name = word[0];

    if (word[1].len != 64
        || ngx_http_thinkgate_keys_hex(k->hash, word[1].data, 64) != NGX_OK)
    {
        why = "the key's SHA-256 digest must be 64 hex digits";
        goto invalid;
    }

    for (i = 2; i < n; i++) {
        why = ngx_http_thinkgate_keys_field(k, &word[i]);
        if (why) {
            goto invalid;
        }
    }

    return NGX_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"thinkgate_keys\" directive: invalid line %ui of "
                       "\"%V\": %s", line, path, why);
    return NGX_ERROR;
}


/* a line's words (up to "#") into word[], copied into the pool:
 * NGX_DECLINED when there are more than NGX_HTTP_THINKGATE_KEY_FIELDS */

static ngx_int_t
ngx_http_thinkgate_keys_split(ngx_conf_t *cf, u_char *p, size_t len,
    ngx_str_t *word, ngx_uint_t *nwords)
{
    u_char      *last, *s;
    ngx_uint_t   n;

    last = p + len;
    n = 0;
    *nwords = 0;

    while (p < last) {
        while (p < last && (*p == ' ' || *p == '\t' || *p == '\r')) {
            p++;
        }

        if (p == last || *p == '#') {
            break;
        }

        if (n == NGX_HTTP_THINKGATE_KEY_FIELDS) {
            return NGX_DECLINED;
        }

        s = p;
        while (p < last && *p != ' ' && *p != '\t' && *p != '\r') {
            p++;
        }

        word[n].data = ngx_pstrdup(cf->pool, &(ngx_str_t) { p - s, s });
        word[n].len = p - s;
        if (word[n].data == NULL) {
            return NGX_ERROR;
        }
        n++;
    }

    *nwords = n;

    return NGX_OK;
}


/* 1 when a key of that name was read already */

static ngx_uint_t
ngx_http_thinkgate_keys_named(ngx_http_thinkgate_main_conf_t *mcf,
    ngx_str_t *name)
{
    ngx_uint_t                 i;
    ngx_http_thinkgate_key_t  *keys;

    keys = mcf->keys->elts;
    for (i = 0; i < mcf->keys->nelts; i++) {
        if (keys[i].name.len == name->len
            && ngx_strncmp(keys[i].name.data, name->data, name->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


/* one "name=value" field after the digest into k: NULL, or why not */

static const char *
ngx_http_thinkgate_keys_field(ngx_http_thinkgate_key_t *k, ngx_str_t *w)
{
    ngx_str_t                        v;
    ngx_int_t                        num;
    ngx_msec_t                       ms;
    ngx_http_thinkgate_key_field_t  *f;

    for (f = ngx_http_thinkgate_key_fields; f->name.len; f++) {
        if (w->len > f->name.len
            && ngx_strncmp(w->data, f->name.data, f->name.len) == 0)
        {
            break;
        }
    }

    if (f->name.len == 0) {
        return "unknown field (models=, strategies=, rpm=, tpm=, tpd= "
               "or window=)";
    }

    v.data = w->data + f->name.len;
    v.len = w->len - f->name.len;

    switch (f->type) {

    case NGX_HTTP_THINKGATE_KEY_LIST:
        *(ngx_str_t *) ((char *) k + f->offset) = v;
        break;

    case NGX_HTTP_THINKGATE_KEY_DURATION:
        ms = ngx_parse_time(&v, 0);
        if (ms == (ngx_msec_t) NGX_ERROR || ms == 0) {
            return f->why;
        }
        *(ngx_msec_t *) ((char *) k + f->offset) = ms;
        break;

    default: /* NGX_HTTP_THINKGATE_KEY_NUMBER */
        num = ngx_atoi(v.data, v.len);
        if (num == NGX_ERROR) {
            return f->why;
        }
        *(ngx_uint_t *) ((char *) k + f->offset) = (ngx_uint_t) num;
        break;
    }

    return NULL;
}


static ngx_int_t
ngx_http_thinkgate_keys_hex(u_char *dst, u_char *src, size_t len)
{
    ngx_int_t  n;
    size_t     i;

    for (i = 0; i < len; i += 2) {
        n = ngx_hextoi(src + i, 2);
        if (n == NGX_ERROR) {
            return NGX_ERROR;
        }

        dst[i / 2] = (u_char) n;
    }

    return NGX_OK;
}


/* thinkgate_auth_key VALUE: the key's name, from a variable that
 * auth_request_set fills from the identity provider's answer */

char *
ngx_http_thinkgate_conf_auth_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_thinkgate_loc_conf_t *lcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (lcf->auth_key != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        return ngx_http_thinkgate_conf_bad(cf, cmd, &value[1],
                                      "expected a value naming the key, "
                                      "such as $thinkgate_key_name");
    }

    lcf->auth_key = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (lcf->auth_key == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = lcf->auth_key;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* A key named by the identity provider (thinkgate_auth_key): no bearer
 * token to check, the name must be a configured key's. */

static ngx_int_t
ngx_http_thinkgate_auth_named(ngx_http_request_t *r,
    ngx_http_thinkgate_loc_conf_t *lcf, ngx_http_thinkgate_main_conf_t *mcf,
    ngx_http_thinkgate_auth_t *auth)
{
    ngx_str_t                  name;
    ngx_uint_t                 i;
    ngx_http_thinkgate_key_t  *keys;

    if (ngx_http_complex_value(r, lcf->auth_key, &name) != NGX_OK
        || !ngx_http_thinkgate_conf_valid_name(&name))
    {
        return NGX_DECLINED;
    }

    if (mcf->keys_redis) {
        auth->name = name;
        auth->redis = 1;
        return NGX_OK;
    }

    keys = mcf->keys->elts;

    for (i = 0; i < mcf->keys->nelts; i++) {
        if (keys[i].name.len == name.len
            && ngx_strncmp(keys[i].name.data, name.data, name.len) == 0)
        {
            auth->key = &keys[i];
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/*
 * The key of an API request: NGX_OK with auth filled (auth->key NULL and
 * auth->redis 0 when the location does not check keys), or NGX_DECLINED
 * when it has none or an unknown one (the caller answers 401).  A key
 * kept in Redis is only named here; the engine looks it up.
 */
ngx_int_t
ngx_http_thinkgate_auth(ngx_http_request_t *r,
    ngx_http_thinkgate_auth_t *auth)
{
    u_char                          *p, digest[SHA256_DIGEST_LENGTH];
    size_t                           len;
    ngx_uint_t                       i;
    ngx_table_elt_t                 *h;
    ngx_http_thinkgate_key_t        *keys;
    ngx_http_thinkgate_loc_conf_t   *lcf;
    ngx_http_thinkgate_main_conf_t  *mcf;

    ngx_memzero(auth, sizeof(ngx_http_thinkgate_auth_t));

    lcf = ngx_http_get_module_loc_conf(r, ngx_http_thinkgate_module);
    mcf = ngx_http_get_module_main_conf(r, ngx_http_thinkgate_module);

    if (!lcf->auth) {
        return NGX_OK;
    }

    if (mcf->keys == NULL && !mcf->keys_redis) {
        return NGX_DECLINED;
    }

    if (lcf->auth_key != NULL) {
        return ngx_http_thinkgate_auth_named(r, lcf, mcf, auth);
    }

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_DECLINED;
    }

    p = h->value.data + 7;
    len = h->value.len - 7;

    (void) SHA256(p, len, digest);

    if (mcf->keys_redis) {
        ngx_hex_dump(auth->sha, digest, sizeof(digest));
        auth->redis = 1;
        return NGX_OK;
    }

    keys = mcf->keys->elts;

    /* compare every digest whole: the time says nothing of the key */
    for (i = 0; i < mcf->keys->nelts; i++) {
        if (CRYPTO_memcmp(keys[i].hash, digest, sizeof(digest)) == 0) {
            auth->key = &keys[i];
        }
    }

    return auth->key ? NGX_OK : NGX_DECLINED;
}


/*
 * thinkgate_admin token_file=PATH: the file's first line is the admin
 * token (at least NGX_HTTP_THINKGATE_ADMIN_TOKEN_MIN printable bytes, no
 * blank); it is read when the configuration is read and kept only as its
 * SHA-256.
 */
ngx_int_t
ngx_http_thinkgate_admin_token_load(ngx_conf_t *cf,
    ngx_http_thinkgate_loc_conf_t *lcf, ngx_str_t *value)
{
    FILE       *f;
    char        buf[NGX_HTTP_THINKGATE_KEY_LINE];
    size_t      len, i;
    ngx_str_t   path;
    const char *why;

    if (value->len <= 11
        || ngx_strncmp(value->data, "token_file=", 11) != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"thinkgate_admin\" directive: unknown "
                           "parameter \"%V\": expected token_file=PATH",
                           value);
        return NGX_ERROR;
    }

    path.data = value->data + 11;
    path.len = value->len - 11;

    if (ngx_conf_full_name(cf->cycle, &path, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    f = fopen((char *) path.data, "r");
    if (f == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"thinkgate_admin\" directive: cannot open the "
                           "token file \"%V\"", &path);
        return NGX_ERROR;
    }

    len = 0;
    if (fgets(buf, sizeof(buf), f) != NULL) {
        len = ngx_strlen(buf);
    }
    fclose(f);

    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) {
        len--;
    }

    why = NULL;
    if (len < NGX_HTTP_THINKGATE_ADMIN_TOKEN_MIN) {
        why = "is shorter than 16 bytes";
    }
    for (i = 0; why == NULL && i < len; i++) {
        if (buf[i] <= ' ' || buf[i] == 0x7f) {
            why = "holds a blank or a control character";
        }
    }

    if (why == NULL) {
        lcf->admin_token = ngx_palloc(cf->pool, SHA256_DIGEST_LENGTH);
        if (lcf->admin_token == NULL) {
            OPENSSL_cleanse(buf, sizeof(buf));
            return NGX_ERROR;
        }
        (void) SHA256((u_char *) buf, len, lcf->admin_token);
    }

    OPENSSL_cleanse(buf, sizeof(buf));

    if (why != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"thinkgate_admin\" directive: the first line "
                           "of \"%V\" %s", &path, why);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* NGX_OK when the request's bearer token is the admin token whose
 * SHA-256 is hash; the digests are compared whole, in constant time. */
ngx_int_t
ngx_http_thinkgate_admin_auth(ngx_http_request_t *r, u_char *hash)
{
    u_char           digest[SHA256_DIGEST_LENGTH];
    ngx_table_elt_t *h;

    h = r->headers_in.authorization;

    if (h == NULL || h->value.len <= 7
        || ngx_strncasecmp(h->value.data, (u_char *) "Bearer ", 7) != 0)
    {
        return NGX_DECLINED;
    }

    (void) SHA256(h->value.data + 7, h->value.len - 7, digest);

    return CRYPTO_memcmp(digest, hash, sizeof(digest)) == 0 ? NGX_OK
                                                          : NGX_DECLINED;
}


/* The key's part of the REQUEST meta (protocol.h): its name, rights and
 * limits from the file, or what the engine looks up in Redis. */
void
ngx_http_thinkgate_key_meta(ngx_http_thinkgate_json_t *j,
    ngx_http_thinkgate_auth_t *auth)
{
    ngx_str_t                  sha;
    ngx_http_thinkgate_key_t  *k = auth->key;

    if (auth->redis) {
        ngx_http_thinkgate_json_key(j, "key_store");
        ngx_http_thinkgate_json_raw(j, "\"redis\"");

        if (auth->name.len) {
            ngx_http_thinkgate_json_key(j, "key");
            ngx_http_thinkgate_json_str(j, &auth->name);

        } else {
            sha.data = auth->sha;
            sha.len = sizeof(auth->sha);
            ngx_http_thinkgate_json_key(j, "key_sha256");
            ngx_http_thinkgate_json_str(j, &sha);
        }

        return;
    }

    if (k == NULL) {
        return;
    }

    ngx_http_thinkgate_json_key(j, "key");
    ngx_http_thinkgate_json_str(j, &k->name);
    ngx_http_thinkgate_json_key(j, "key_models");
    ngx_http_thinkgate_json_str(j, &k->models);
    ngx_http_thinkgate_json_key(j, "key_strategies");
    ngx_http_thinkgate_json_str(j, &k->strategies);

    ngx_http_thinkgate_json_key(j, "key_limits");
    ngx_http_thinkgate_json_raw(j, "{");
    ngx_http_thinkgate_json_key(j, "rpm");
    ngx_http_thinkgate_json_uint(j, k->rpm);
    ngx_http_thinkgate_json_key(j, "tpm");
    ngx_http_thinkgate_json_uint(j, k->tpm);
    ngx_http_thinkgate_json_key(j, "tpd");
    ngx_http_thinkgate_json_uint(j, k->tpd);
    ngx_http_thinkgate_json_key(j, "window_ms");
    ngx_http_thinkgate_json_uint(j, k->window ? k->window : 60000);
    ngx_http_thinkgate_json_raw(j, "}");
}
