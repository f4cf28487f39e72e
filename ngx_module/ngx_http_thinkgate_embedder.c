
/*
 * thinkgate nginx module: the engine's sentence embedder, sent in the
 * configuration document ("embedder"):
 *
 *   thinkgate_embedder PATH [threads=N] [device=auto|cpu|cuda]
 *                      [max_batch=N]
 *
 * nginx -t checks what it can without loading the model: PATH is a
 * directory holding vocab.txt and model.safetensors, and the latter's
 * header is well formed (an 8-byte little-endian length, then that many
 * bytes of a JSON object naming the word embeddings).  The engine opens
 * the model when a worker registers and refuses the configuration, with
 * the reason in the error log, when it cannot (device=cuda without a
 * GPU, a tensor of the wrong shape).  The keys, their bounds and
 * defaults are the shared schema's (thinkgate/conf_keys.h).
 */


#include "ngx_http_thinkgate.h"


/* the largest safetensors header read at nginx -t: MiniLM's is 9 KB */
#define NGX_HTTP_THINKGATE_ST_HEADER_MAX  (16 * 1024 * 1024)


static char *ngx_http_thinkgate_embedder_dir(ngx_conf_t *cf,
    ngx_command_t *cmd, ngx_http_thinkgate_embedder_t *emb, ngx_str_t *arg);
static char *ngx_http_thinkgate_embedder_file(ngx_conf_t *cf,
    ngx_str_t *dir, const char *name, ngx_str_t *file);
static char *ngx_http_thinkgate_embedder_header(ngx_conf_t *cf,
    ngx_str_t *file);
static uint64_t ngx_http_thinkgate_embedder_le64(u_char *p);
static char *ngx_http_thinkgate_embedder_json(u_char *hdr, size_t len);


char *
ngx_http_thinkgate_conf_embedder(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_thinkgate_main_conf_t *mcf = conf;

    char                           *rv;
    ngx_str_t                      *value, file;
    ngx_http_thinkgate_embedder_t  *emb;

    if (mcf->embedder) {
        return "is duplicate";
    }

    value = cf->args->elts;

    emb = ngx_pcalloc(cf->pool, sizeof(ngx_http_thinkgate_embedder_t));
    if (emb == NULL) {
        return NGX_CONF_ERROR;
    }

    if (ngx_http_thinkgate_keys_defaults(cf,
                                         &ngx_http_thinkgate_embedder_keys,
                                         emb)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    rv = ngx_http_thinkgate_keys_params(cf, cmd,
                                        &ngx_http_thinkgate_embedder_keys,
                                        emb, 2);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_thinkgate_embedder_dir(cf, cmd, emb, &value[1]);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_thinkgate_embedder_file(cf, &emb->path, "vocab.txt",
                                          &file);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_thinkgate_embedder_file(cf, &emb->path,
                                          "model.safetensors", &file);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    rv = ngx_http_thinkgate_embedder_header(cf, &file);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    mcf->embedder = emb;

    return NGX_CONF_OK;
}


/* the model directory, relative to the prefix like other paths */

static char *
ngx_http_thinkgate_embedder_dir(ngx_conf_t *cf, ngx_command_t *cmd,
    ngx_http_thinkgate_embedder_t *emb, ngx_str_t *arg)
{
    ngx_file_info_t  fi;

    emb->path = *arg;

    while (emb->path.len > 1 && emb->path.data[emb->path.len - 1] == '/') {
        emb->path.len--;
    }

    if (emb->path.len == 0
        || ngx_conf_full_name(cf->cycle, &emb->path, 0) != NGX_OK)
    {
        return ngx_http_thinkgate_conf_bad(cf, cmd, arg,
                                           "not a directory path");
    }

    if (ngx_file_info(emb->path.data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "\"%V\" directive: model directory \"%V\" "
                           "cannot be read", &cmd->name, &emb->path);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_dir(&fi)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" directive: \"%V\" is not a directory "
                           "(expected the model directory holding "
                           "model.safetensors and vocab.txt)",
                           &cmd->name, &emb->path);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* dir/name must be a regular, non-empty file */

static char *
ngx_http_thinkgate_embedder_file(ngx_conf_t *cf, ngx_str_t *dir,
    const char *name, ngx_str_t *file)
{
    size_t           len;
    ngx_file_info_t  fi;

    len = ngx_strlen(name);

    file->len = dir->len + 1 + len;
    file->data = ngx_pnalloc(cf->pool, file->len + 1);
    if (file->data == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_sprintf(file->data, "%V/%s%Z", dir, name);

    if (ngx_file_info(file->data, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "thinkgate_embedder: model file \"%V\" is "
                           "missing or cannot be read", file);
        return NGX_CONF_ERROR;
    }

    if (!ngx_is_file(&fi) || ngx_file_size(&fi) == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "thinkgate_embedder: model file \"%V\" is not "
                           "a regular non-empty file", file);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/*
 * safetensors: u64 little-endian N, then N bytes of JSON (an object,
 * padded with spaces), then the tensor data.  A wrong N is the usual
 * sign of a truncated download or a file that is not safetensors.
 */

static char *
ngx_http_thinkgate_embedder_header(ngx_conf_t *cf, ngx_str_t *file)
{
    char             *why;
    u_char            len8[8], *hdr;
    off_t             size;
    ssize_t           n;
    uint64_t          hlen;
    ngx_fd_t          fd;
    ngx_file_info_t   fi;

    fd = ngx_open_file(file->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "thinkgate_embedder: cannot open \"%V\"", file);
        return NGX_CONF_ERROR;
    }

    hdr = NULL;
    why = NULL;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
        why = "cannot stat it";
        goto done;
    }

    size = ngx_file_size(&fi);

    n = ngx_read_fd(fd, len8, 8);
    if (n != 8) {
        why = "shorter than the 8-byte header length";
        goto done;
    }

    hlen = ngx_http_thinkgate_embedder_le64(len8);

    if (hlen < 2 || hlen > (uint64_t) size - 8) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "thinkgate_embedder: \"%V\": header length %uL "
                           "does not fit the file (%O bytes): not a "
                           "safetensors file, or truncated",
                           file, hlen, size);
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    if (hlen > NGX_HTTP_THINKGATE_ST_HEADER_MAX) {
        why = "header longer than 16 MiB";
        goto done;
    }

    hdr = ngx_alloc((size_t) hlen, cf->log);
    if (hdr == NULL) {
        ngx_close_file(fd);
        return NGX_CONF_ERROR;
    }

    n = ngx_read_fd(fd, hdr, (size_t) hlen);
    if (n != (ssize_t) hlen) {
        why = "cannot read the JSON header";
        goto done;
    }

    why = ngx_http_thinkgate_embedder_json(hdr, (size_t) hlen);

done:

    if (hdr) {
        ngx_free(hdr);
    }

    ngx_close_file(fd);

    if (why) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "thinkgate_embedder: \"%V\": %s", file, why);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the header's length: 8 bytes, little-endian */

static uint64_t
ngx_http_thinkgate_embedder_le64(u_char *p)
{
    uint64_t    v;
    ngx_uint_t  i;

    v = 0;

    for (i = 0; i < 8; i++) {
        v |= (uint64_t) p[i] << (8 * i);
    }

    return v;
}


/* the header's JSON (hdr, len bytes): an object naming BERT's word
 * embeddings; NULL, or what is wrong with it */

static char *
ngx_http_thinkgate_embedder_json(u_char *hdr, size_t len)
{
    u_char  *last;

    /* writers pad the header with spaces to align the data */

    last = hdr + len;

    while (last > hdr && (last[-1] == ' ' || last[-1] == '\0')) {
        last--;
    }

    if (hdr[0] != '{' || last == hdr || last[-1] != '}') {
        return "the header is not a JSON object";
    }

    if (ngx_strlcasestrn(hdr, last,
                         (u_char *) "\"embeddings.word_embeddings.weight\"",
                         sizeof("\"embeddings.word_embeddings.weight\"")
                         - 2)
        == NULL)
    {
        return "no \"embeddings.word_embeddings.weight\" tensor: not a BERT "
               "sentence-embedding model";
    }

    return NULL;
}
