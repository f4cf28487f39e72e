
/*
 * thinkgate nginx module: the KEY=VALUE parameters of thinkgate_backend,
 * thinkgate_pool, thinkgate_redis and thinkgate_embedder, read and
 * written into the configuration document by the shared schema
 * (include/thinkgate/conf_keys.h); this file holds only where each key
 * lives in the module's structures.
 */


#include "ngx_http_thinkgate.h"


static ngx_int_t ngx_http_thinkgate_keys_find(
    const ngx_http_thinkgate_keys_t *t, ngx_str_t *value);
static const char **ngx_http_thinkgate_keys_words(const tg_conf_key_t *k);
static ngx_int_t ngx_http_thinkgate_keys_value(ngx_conf_t *cf,
    const tg_conf_key_t *k, ngx_str_t *v, void *slot);
static ngx_int_t ngx_http_thinkgate_keys_number(const tg_conf_key_t *k,
    ngx_str_t *v, void *slot);
static ngx_int_t ngx_http_thinkgate_keys_skills(ngx_conf_t *cf,
    ngx_str_t *v, ngx_array_t *skills);
static ngx_int_t ngx_http_thinkgate_keys_env_valid(ngx_str_t *v);
static ngx_int_t ngx_http_thinkgate_keys_file(ngx_conf_t *cf, ngx_str_t *v,
    ngx_str_t *slot);
static ngx_int_t ngx_http_thinkgate_keys_path_valid(ngx_str_t *v,
    size_t max);
static ngx_int_t ngx_http_thinkgate_keys_text_valid(ngx_str_t *v,
    const tg_conf_key_t *k);
static void ngx_http_thinkgate_keys_doc_skills(ngx_http_thinkgate_json_t *j,
    ngx_array_t *skills);


static const char  *ngx_http_thinkgate_policies[] = TG_CONF_POLICIES;
static const char  *ngx_http_thinkgate_devices[] = TG_CONF_DEVICES;


static const tg_conf_key_t  ngx_http_thinkgate_backend_rows[] = {
    TG_CONF_BACKEND_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

/* by row; 0 (the name's place) would be a row left out here */
static const size_t  ngx_http_thinkgate_backend_offsets[TG_CONF_BACKEND_NKEYS]
    = {
    [TG_CONF_B_MODEL] = offsetof(ngx_http_thinkgate_backend_t, model),
    [TG_CONF_B_MAX_INFLIGHT] =
        offsetof(ngx_http_thinkgate_backend_t, max_inflight),
    [TG_CONF_B_API_KEY_ENV] =
        offsetof(ngx_http_thinkgate_backend_t, api_key_env),
    [TG_CONF_B_CONNECT_TIMEOUT] =
        offsetof(ngx_http_thinkgate_backend_t, connect_timeout),
    [TG_CONF_B_IDLE_TIMEOUT] =
        offsetof(ngx_http_thinkgate_backend_t, idle_timeout),
    [TG_CONF_B_TLS_VERIFY] =
        offsetof(ngx_http_thinkgate_backend_t, tls_verify),
    [TG_CONF_B_TLS_CA] = offsetof(ngx_http_thinkgate_backend_t, tls_ca),
    [TG_CONF_B_NATIVE_EFFORT] =
        offsetof(ngx_http_thinkgate_backend_t, native_effort),
    [TG_CONF_B_SKILLS] = offsetof(ngx_http_thinkgate_backend_t, skills),
    [TG_CONF_B_HEALTH] = offsetof(ngx_http_thinkgate_backend_t, health),
    [TG_CONF_B_INTERVAL] =
        offsetof(ngx_http_thinkgate_backend_t, health_interval),
    [TG_CONF_B_FAILS] = offsetof(ngx_http_thinkgate_backend_t, fails),
    [TG_CONF_B_COOLOFF] = offsetof(ngx_http_thinkgate_backend_t, cooloff),
    [TG_CONF_B_ERROR_RATE] =
        offsetof(ngx_http_thinkgate_backend_t, error_rate)
};

static const tg_conf_key_t  ngx_http_thinkgate_pool_rows[] = {
    TG_CONF_POOL_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

static const size_t  ngx_http_thinkgate_pool_offsets[TG_CONF_POOL_NKEYS] = {
    [TG_CONF_P_POLICY] = offsetof(ngx_http_thinkgate_pool_t, policy),
    [TG_CONF_P_BLOCK] = offsetof(ngx_http_thinkgate_pool_t, block),
    [TG_CONF_P_TTL] = offsetof(ngx_http_thinkgate_pool_t, ttl),
    [TG_CONF_P_WINDOW] = offsetof(ngx_http_thinkgate_pool_t, window)
};


static const tg_conf_key_t  ngx_http_thinkgate_redis_rows[] = {
    TG_CONF_REDIS_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

static const size_t  ngx_http_thinkgate_redis_offsets[TG_CONF_REDIS_NKEYS] = {
    [TG_CONF_R_DB] = offsetof(ngx_http_thinkgate_redis_t, db),
    [TG_CONF_R_PREFIX] = offsetof(ngx_http_thinkgate_redis_t, prefix),
    [TG_CONF_R_PASSWORD_ENV] =
        offsetof(ngx_http_thinkgate_redis_t, password_env),
    [TG_CONF_R_CONNECT_TIMEOUT] =
        offsetof(ngx_http_thinkgate_redis_t, connect_timeout),
    [TG_CONF_R_TIMEOUT] = offsetof(ngx_http_thinkgate_redis_t, timeout)
};

static const tg_conf_key_t  ngx_http_thinkgate_embedder_rows[] = {
    TG_CONF_EMBEDDER_KEYS(TG_CONF_KEY_ROW)
    TG_CONF_KEY_END
};

static const size_t
    ngx_http_thinkgate_embedder_offsets[TG_CONF_EMBEDDER_NKEYS] =
{
    [TG_CONF_E_THREADS] = offsetof(ngx_http_thinkgate_embedder_t, threads),
    [TG_CONF_E_DEVICE] = offsetof(ngx_http_thinkgate_embedder_t, device),
    [TG_CONF_E_MAX_BATCH] =
        offsetof(ngx_http_thinkgate_embedder_t, max_batch)
};


const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_backend_keys = {
    ngx_http_thinkgate_backend_rows, ngx_http_thinkgate_backend_offsets
};

const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_pool_keys = {
    ngx_http_thinkgate_pool_rows, ngx_http_thinkgate_pool_offsets
};

const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_redis_keys = {
    ngx_http_thinkgate_redis_rows, ngx_http_thinkgate_redis_offsets
};

const ngx_http_thinkgate_keys_t  ngx_http_thinkgate_embedder_keys = {
    ngx_http_thinkgate_embedder_rows, ngx_http_thinkgate_embedder_offsets
};


/* Every key of the table at its default; strings as sdef or empty,
 * skills none */

ngx_int_t
ngx_http_thinkgate_keys_defaults(ngx_conf_t *cf,
    const ngx_http_thinkgate_keys_t *t, void *conf)
{
    u_char               *slot;
    ngx_uint_t            i;
    const tg_conf_key_t  *k;

    for (i = 0, k = t->rows; k->name; i++, k++) {
        if (t->offsets[i] == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "thinkgate: the key \"%s\" has no place in "
                               "the module's structure", k->name);
            return NGX_ERROR;
        }

        slot = (u_char *) conf + t->offsets[i];

        switch (k->type) {

        case TG_KEY_NAME:
        case TG_KEY_ENV:
        case TG_KEY_PATH:
        case TG_KEY_FILE:
        case TG_KEY_TEXT:
            ngx_str_null((ngx_str_t *) slot);

            if (k->sdef) {
                ((ngx_str_t *) slot)->data = (u_char *) k->sdef;
                ((ngx_str_t *) slot)->len = ngx_strlen(k->sdef);
            }

            break;

        case TG_KEY_SKILLS:
            if (ngx_array_init((ngx_array_t *) slot, cf->pool, 2,
                               sizeof(ngx_http_thinkgate_skill_t))
                != NGX_OK)
            {
                return NGX_ERROR;
            }
            break;

        case TG_KEY_MSEC:
            *(ngx_msec_t *) slot = (ngx_msec_t) k->def;
            break;

        default:
            *(ngx_uint_t *) slot = (ngx_uint_t) k->def;
            break;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK: value is one of the table's KEY=VALUE, read into conf;
 * NGX_DECLINED: it is none of them; NGX_ERROR: a bad value, said with the
 * key's bounds, or no memory.
 */

ngx_int_t
ngx_http_thinkgate_keys_param(ngx_conf_t *cf, ngx_command_t *cmd,
    const ngx_http_thinkgate_keys_t *t, void *conf, ngx_str_t *value)
{
    size_t                len;
    ngx_int_t             rc, i;
    ngx_str_t             v;
    const tg_conf_key_t  *k;

    i = ngx_http_thinkgate_keys_find(t, value);
    if (i == NGX_DECLINED) {
        return NGX_DECLINED;
    }

    k = &t->rows[i];
    len = ngx_strlen(k->name);

    v.data = value->data + len + 1;
    v.len = value->len - len - 1;

    rc = ngx_http_thinkgate_keys_value(cf, k, &v,
                                       (u_char *) conf + t->offsets[i]);

    if (rc == NGX_DECLINED) {
        (void) ngx_http_thinkgate_conf_bad(cf, cmd, value, k->why);
        return NGX_ERROR;
    }

    return rc;
}


/*
 * The directive's arguments from first on are all KEY=VALUE of the table,
 * each given once (thinkgate_redis, thinkgate_embedder).
 */

char *
ngx_http_thinkgate_keys_params(ngx_conf_t *cf, ngx_command_t *cmd,
    const ngx_http_thinkgate_keys_t *t, void *conf, ngx_uint_t first)
{
    uint64_t    seen, bit;
    ngx_int_t   i;
    ngx_str_t  *value;
    ngx_uint_t  n;

    value = cf->args->elts;
    seen = 0;

    for (n = first; n < cf->args->nelts; n++) {
        i = ngx_http_thinkgate_keys_find(t, &value[n]);
        if (i == NGX_DECLINED) {
            return ngx_http_thinkgate_keys_unknown(cf, cmd, t, &value[n]);
        }

        bit = (uint64_t) 1 << i;

        if (seen & bit) {
            return ngx_http_thinkgate_conf_bad(cf, cmd, &value[n],
                                               "parameter given twice");
        }

        seen |= bit;

        if (ngx_http_thinkgate_keys_param(cf, cmd, t, conf, &value[n])
            != NGX_OK)
        {
            return NGX_CONF_ERROR;
        }
    }

    return NGX_CONF_OK;
}


/* The row of the table that value (KEY=VALUE) names, or NGX_DECLINED */

static ngx_int_t
ngx_http_thinkgate_keys_find(const ngx_http_thinkgate_keys_t *t,
    ngx_str_t *value)
{
    size_t                len;
    ngx_int_t             i;
    const tg_conf_key_t  *k;

    for (i = 0, k = t->rows; k->name; i++, k++) {
        len = ngx_strlen(k->name);

        if (value->len > len && value->data[len] == '='
            && ngx_strncmp(value->data, k->name, len) == 0)
        {
            return i;
        }
    }

    return NGX_DECLINED;
}


/* "unknown parameter", with the parameters the table knows */

char *
ngx_http_thinkgate_keys_unknown(ngx_conf_t *cf, ngx_command_t *cmd,
    const ngx_http_thinkgate_keys_t *t, ngx_str_t *value)
{
    u_char               *p, *last;
    u_char                buf[NGX_MAX_CONF_ERRSTR];
    const tg_conf_key_t  *k;

    p = buf;
    last = buf + sizeof(buf) - 1;

    p = ngx_slprintf(p, last, "unknown parameter; known are");

    for (k = t->rows; k->name; k++) {
        p = ngx_slprintf(p, last, "%s %s=", k == t->rows ? "" : ",",
                         k->name);
    }

    *p = '\0';

    return ngx_http_thinkgate_conf_bad(cf, cmd, value, (char *) buf);
}


/* NGX_OK, NGX_DECLINED: not a good value for k, NGX_ERROR: no memory */

static ngx_int_t
ngx_http_thinkgate_keys_value(ngx_conf_t *cf, const tg_conf_key_t *k,
    ngx_str_t *v, void *slot)
{
    ngx_uint_t    n;
    const char  **words;

    switch (k->type) {

    case TG_KEY_NAME:
        if (v->len == 0) {
            return NGX_DECLINED;
        }
        break;

    case TG_KEY_ENV:
        if (!ngx_http_thinkgate_keys_env_valid(v)) {
            return NGX_DECLINED;
        }
        break;

    case TG_KEY_PATH:
        if (!ngx_http_thinkgate_keys_path_valid(v, (size_t) k->max)) {
            return NGX_DECLINED;
        }
        break;

    case TG_KEY_TEXT:
        if (!ngx_http_thinkgate_keys_text_valid(v, k)) {
            return NGX_DECLINED;
        }
        break;

    case TG_KEY_FILE:
        return ngx_http_thinkgate_keys_file(cf, v, slot);

    case TG_KEY_SKILLS:
        return ngx_http_thinkgate_keys_skills(cf, v, slot);

    case TG_KEY_FLAG:
        if (v->len == 2 && ngx_strncmp(v->data, "on", 2) == 0) {
            *(ngx_uint_t *) slot = 1;

        } else if (v->len == 3 && ngx_strncmp(v->data, "off", 3) == 0) {
            *(ngx_uint_t *) slot = 0;

        } else {
            return NGX_DECLINED;
        }

        return NGX_OK;

    case TG_KEY_POLICY:
    case TG_KEY_DEVICE:
        words = ngx_http_thinkgate_keys_words(k);

        for (n = 0; words[n]; n++) {
            if (ngx_strlen(words[n]) == v->len
                && ngx_strncmp(v->data, words[n], v->len) == 0)
            {
                *(ngx_uint_t *) slot = n;
                return NGX_OK;
            }
        }

        return NGX_DECLINED;

    default:
        return ngx_http_thinkgate_keys_number(k, v, slot);
    }

    *(ngx_str_t *) slot = *v;

    return NGX_OK;
}


/* POLICY and DEVICE: the words a value is one of, by index */

static const char **
ngx_http_thinkgate_keys_words(const tg_conf_key_t *k)
{
    return k->type == TG_KEY_DEVICE ? ngx_http_thinkgate_devices
                                    : ngx_http_thinkgate_policies;
}


/*
 * FILE: made absolute (relative names are under nginx's prefix, as
 * nginx's own file directives take them) and readable now, so that
 * nginx -t refuses a missing file instead of every TLS handshake failing
 * later.  The engine reads it as its own user.
 */

static ngx_int_t
ngx_http_thinkgate_keys_file(ngx_conf_t *cf, ngx_str_t *v, ngx_str_t *slot)
{
    ngx_str_t        name;
    ngx_file_info_t  fi;

    if (v->len == 0) {
        return NGX_DECLINED;
    }

    name.len = v->len;
    name.data = ngx_pnalloc(cf->pool, v->len + 1);
    if (name.data == NULL) {
        return NGX_ERROR;
    }
    (void) ngx_cpystrn(name.data, v->data, v->len + 1);

    if (ngx_conf_full_name(cf->cycle, &name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_file_info(name.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "thinkgate: cannot read \"%V\"", &name);
        return NGX_DECLINED;
    }

    if (!ngx_is_file(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "thinkgate: \"%V\" is not a file", &name);
        return NGX_DECLINED;
    }

    if (access((char *) name.data, R_OK) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "thinkgate: cannot read \"%V\"", &name);
        return NGX_DECLINED;
    }

    *slot = name;

    return NGX_OK;
}


/* COUNT, PERCENT and MSEC: a number within the key's bounds */

static ngx_int_t
ngx_http_thinkgate_keys_number(const tg_conf_key_t *k, ngx_str_t *v,
    void *slot)
{
    ngx_int_t  n;
    ngx_str_t  s;

    s = *v;

    if (k->type == TG_KEY_MSEC) {
        n = ngx_parse_time(&s, 0);

    } else {
        if (k->type == TG_KEY_PERCENT && s.len && s.data[s.len - 1] == '%') {
            s.len--;
        }

        n = ngx_atoi(s.data, s.len);
    }

    if (n == NGX_ERROR || n < k->min || (k->max != 0 && n > k->max)) {
        return NGX_DECLINED;
    }

    if (k->type == TG_KEY_MSEC) {
        *(ngx_msec_t *) slot = (ngx_msec_t) n;

    } else {
        *(ngx_uint_t *) slot = (ngx_uint_t) n;
    }

    return NGX_OK;
}


/* skills=math:0.9,code:0.5; weights from 0 to 1, kept in thousandths */

static ngx_int_t
ngx_http_thinkgate_keys_skills(ngx_conf_t *cf, ngx_str_t *v,
    ngx_array_t *skills)
{
    u_char                      *p, *last, *comma, *colon;
    ngx_int_t                    w;
    ngx_str_t                    name;
    ngx_http_thinkgate_skill_t  *sk;

    p = v->data;
    last = v->data + v->len;

    if (p == last) {
        return NGX_DECLINED;
    }

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');
        if (comma == NULL) {
            comma = last;
        }

        colon = ngx_strlchr(p, comma, ':');
        if (colon == NULL) {
            return NGX_DECLINED;
        }

        name.data = p;
        name.len = colon - p;

        if (!ngx_http_thinkgate_conf_valid_name(&name)) {
            return NGX_DECLINED;
        }

        w = ngx_atofp(colon + 1, comma - colon - 1, 3);
        if (w == NGX_ERROR || w > 1000) {
            return NGX_DECLINED;
        }

        sk = ngx_array_push(skills);
        if (sk == NULL) {
            return NGX_ERROR;
        }

        sk->name = name;
        sk->weight = w;

        p = comma + 1;

        if (comma + 1 == last) {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


/* A name as valid_name allows, without "-" or "." or a leading digit */

static ngx_int_t
ngx_http_thinkgate_keys_env_valid(ngx_str_t *v)
{
    return v->len != 0 && ngx_http_thinkgate_conf_valid_name(v)
           && ngx_strlchr(v->data, v->data + v->len, '-') == NULL
           && ngx_strlchr(v->data, v->data + v->len, '.') == NULL
           && !(v->data[0] >= '0' && v->data[0] <= '9');
}


/* "/" then URL path characters: no spaces, quotes, backslashes or
 * controls, at most max bytes. */

static ngx_int_t
ngx_http_thinkgate_keys_path_valid(ngx_str_t *v, size_t max)
{
    size_t  i;

    if (v->len == 0 || v->len > max || v->data[0] != '/') {
        return 0;
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] <= 0x20 || v->data[i] >= 0x7f || v->data[i] == '"'
            || v->data[i] == '\\')
        {
            return 0;
        }
    }

    return 1;
}


/* TEXT: min..max bytes, printable, no spaces */

static ngx_int_t
ngx_http_thinkgate_keys_text_valid(ngx_str_t *v, const tg_conf_key_t *k)
{
    size_t  i;

    if ((int64_t) v->len < k->min || (int64_t) v->len > k->max) {
        return 0;
    }

    for (i = 0; i < v->len; i++) {
        if (v->data[i] <= ' ' || v->data[i] >= 0x7f) {
            return 0;
        }
    }

    return 1;
}


/* Each key of the table as "doc_key":value, after what j holds */

void
ngx_http_thinkgate_keys_doc(ngx_http_thinkgate_json_t *j,
    const ngx_http_thinkgate_keys_t *t, void *conf)
{
    u_char               *slot;
    ngx_uint_t            i;
    const tg_conf_key_t  *k;

    for (i = 0, k = t->rows; k->name; i++, k++) {
        slot = (u_char *) conf + t->offsets[i];

        ngx_http_thinkgate_json_key(j, k->doc_key);

        switch (k->type) {

        case TG_KEY_NAME:
        case TG_KEY_ENV:
        case TG_KEY_PATH:
        case TG_KEY_FILE:
        case TG_KEY_TEXT:
            ngx_http_thinkgate_json_str(j, (ngx_str_t *) slot);
            break;

        case TG_KEY_SKILLS:
            ngx_http_thinkgate_keys_doc_skills(j, (ngx_array_t *) slot);
            break;

        case TG_KEY_FLAG:
            ngx_http_thinkgate_json_raw(j, *(ngx_uint_t *) slot ? "true"
                                                                : "false");
            break;

        case TG_KEY_POLICY:
        case TG_KEY_DEVICE:
            ngx_http_thinkgate_json_raw(j, "\"");
            ngx_http_thinkgate_json_raw(j,
                       ngx_http_thinkgate_keys_words(k)[*(ngx_uint_t *) slot]);
            ngx_http_thinkgate_json_raw(j, "\"");
            break;

        case TG_KEY_MSEC:
            ngx_http_thinkgate_json_uint(j, *(ngx_msec_t *) slot);
            break;

        default:
            ngx_http_thinkgate_json_uint(j, *(ngx_uint_t *) slot);
            break;
        }
    }
}


static void
ngx_http_thinkgate_keys_doc_skills(ngx_http_thinkgate_json_t *j,
    ngx_array_t *skills)
{
    u_char                       buf[32];
    ngx_uint_t                   k;
    ngx_http_thinkgate_skill_t  *sk;

    ngx_http_thinkgate_json_raw(j, "{");

    sk = skills->elts;

    for (k = 0; k < skills->nelts; k++) {
        if (k) {
            ngx_http_thinkgate_json_raw(j, ",");
        }

        ngx_http_thinkgate_json_str(j, &sk[k].name);

        /* a JSON number: 0.9 is written 0.900 */
        *ngx_sprintf(buf, ":%ui.%03ui", sk[k].weight / 1000,
                     sk[k].weight % 1000) = '\0';
        ngx_http_thinkgate_json_raw(j, (char *) buf);
    }

    ngx_http_thinkgate_json_raw(j, "}");
}
