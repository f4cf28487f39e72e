/*
 * The safetensors reader (safetensors.h): one mmap, one JSON parse, a
 * table of tensors checked against the file size before anyone reads them.
 */
#include "embed/safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* A header larger than this is not a model we know (the format caps it at
 * 100 MB; ours is about 20 KB). */
#define TG_ST_MAX_HEADER (100u << 20)

struct tg_st_file_s {
    char            *path;
    const uint8_t   *map;
    size_t           map_size;
    json_t          *header;                /* keeps the names alive */
    size_t           count;
    tg_st_tensor_t  *tensors;
};

static size_t tg__st_dtype_size(const char *dtype);
static int tg__st_tensor(tg_st_file_t *f, const char *name, json_t *v,
                         size_t data_off, tg_st_tensor_t *t, char *err,
                         size_t err_size);
static int tg__st_map(tg_st_file_t *f, const char *path, char *err,
                      size_t err_size);
static int tg__st_tensors(tg_st_file_t *f, uint64_t hlen, char *err,
                          size_t err_size);
static void tg__st_shape_str(int ndim, const int64_t *shape, char *buf,
                             size_t size);

static size_t
tg__st_dtype_size(const char *dtype)
{
    static const struct { const char *name; size_t size; } dtypes[] = {
        { "F64", 8 }, { "F32", 4 }, { "F16", 2 }, { "BF16", 2 },
        { "I64", 8 }, { "I32", 4 }, { "I16", 2 }, { "I8", 1 },
        { "U64", 8 }, { "U32", 4 }, { "U16", 2 }, { "U8", 1 },
        { "BOOL", 1 }, { "F8_E4M3", 1 }, { "F8_E5M2", 1 },
    };
    size_t i;

    for (i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++) {
        if (strcmp(dtypes[i].name, dtype) == 0) {
            return dtypes[i].size;
        }
    }
    return 0;
}

static int
tg__st_tensor(tg_st_file_t *f, const char *name, json_t *v, size_t data_off,
              tg_st_tensor_t *t, char *err, size_t err_size)
{
    json_t      *dtype, *shape, *offs, *dim;
    size_t       esize, i, begin, end, n = 1;
    json_int_t   d;

    dtype = json_object_get(v, "dtype");
    shape = json_object_get(v, "shape");
    offs = json_object_get(v, "data_offsets");
    if (!json_is_object(v) || !json_is_string(dtype) || !json_is_array(shape)
        || !json_is_array(offs) || json_array_size(offs) != 2
        || !json_is_integer(json_array_get(offs, 0))
        || !json_is_integer(json_array_get(offs, 1)))
    {
        snprintf(err, err_size, "%s: tensor \"%s\": header entry needs "
                 "dtype, shape and two data_offsets", f->path, name);
        return -EINVAL;
    }
    esize = tg__st_dtype_size(json_string_value(dtype));
    if (esize == 0 || strlen(json_string_value(dtype)) >= sizeof(t->dtype)) {
        snprintf(err, err_size, "%s: tensor \"%s\": unknown dtype \"%s\"",
                 f->path, name, json_string_value(dtype));
        return -EINVAL;
    }
    if (json_array_size(shape) > TG_ST_MAX_DIMS) {
        snprintf(err, err_size, "%s: tensor \"%s\": %zu dimensions, at most "
                 "%d supported", f->path, name, json_array_size(shape),
                 TG_ST_MAX_DIMS);
        return -EINVAL;
    }
    t->name = name;
    strcpy(t->dtype, json_string_value(dtype));
    t->ndim = (int) json_array_size(shape);
    json_array_foreach(shape, i, dim) {
        d = json_is_integer(dim) ? json_integer_value(dim) : -1;
        if (d < 0 || (d > 0 && n > SIZE_MAX / (size_t) d)) {
            snprintf(err, err_size, "%s: tensor \"%s\": bad dimension %zu",
                     f->path, name, i);
            return -EINVAL;
        }
        t->shape[i] = d;
        n *= (size_t) d;
    }
    d = json_integer_value(json_array_get(offs, 0));
    begin = (size_t) d;
    end = (size_t) json_integer_value(json_array_get(offs, 1));
    if (d < 0 || json_integer_value(json_array_get(offs, 1)) < d
        || end > f->map_size - data_off)
    {
        snprintf(err, err_size, "%s: tensor \"%s\": data_offsets [%lld, "
                 "%lld] outside the %zu data bytes (file truncated?)",
                 f->path, name, (long long) d,
                 (long long) json_integer_value(json_array_get(offs, 1)),
                 f->map_size - data_off);
        return -EINVAL;
    }
    if (n > SIZE_MAX / esize || end - begin != n * esize) {
        snprintf(err, err_size, "%s: tensor \"%s\": %zu data bytes for "
                 "%zu elements of %s", f->path, name, end - begin, n,
                 t->dtype);
        return -EINVAL;
    }
    t->data = f->map + data_off + begin;
    t->size = end - begin;
    return 0;
}

/* path mapped read-only into f (map, map_size): at least the 8 bytes of
 * the header's length. */
static int
tg__st_map(tg_st_file_t *f, const char *path, char *err, size_t err_size)
{
    struct stat  st;
    int          fd, rc;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        rc = -errno;
        snprintf(err, err_size, "%s: %s", path, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return rc;
    }
    if (st.st_size < 8) {
        snprintf(err, err_size, "%s: %lld bytes, too short for a "
                 "safetensors header", path, (long long) st.st_size);
        close(fd);
        return -EINVAL;
    }
    f->map_size = (size_t) st.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (f->map == MAP_FAILED) {
        rc = -errno;
        f->map = NULL;
        snprintf(err, err_size, "%s: mmap: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    close(fd);
    return 0;
}

/* Every tensor the header (hlen bytes) names, but its metadata. */
static int
tg__st_tensors(tg_st_file_t *f, uint64_t hlen, char *err, size_t err_size)
{
    const char  *key;
    json_t      *v;
    int          rc;

    f->tensors = calloc(json_object_size(f->header) + 1,
                        sizeof(*f->tensors));
    if (f->tensors == NULL) {
        snprintf(err, err_size, "%s: out of memory", f->path);
        return -ENOMEM;
    }
    json_object_foreach(f->header, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            continue;
        }
        rc = tg__st_tensor(f, key, v, 8 + (size_t) hlen,
                           &f->tensors[f->count], err, err_size);
        if (rc != 0) {
            return rc;
        }
        f->count++;
    }
    return 0;
}

int
tg_st_open(const char *path, tg_st_file_t **out, char *err, size_t err_size)
{
    tg_st_file_t    *f;
    json_error_t     jerr;
    uint64_t         hlen = 0;
    int              rc, i;

    *out = NULL;
    f = calloc(1, sizeof(*f));
    if (f == NULL || (f->path = strdup(path)) == NULL) {
        snprintf(err, err_size, "%s: out of memory", path);
        rc = -ENOMEM;
        goto failed;
    }
    rc = tg__st_map(f, path, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    for (i = 7; i >= 0; i--) {
        hlen = (hlen << 8) | f->map[i];
    }
    if (hlen < 2 || hlen > TG_ST_MAX_HEADER || hlen > f->map_size - 8) {
        snprintf(err, err_size, "%s: header length %llu does not fit the "
                 "%zu-byte file (truncated or not safetensors)", path,
                 (unsigned long long) hlen, f->map_size);
        rc = -EINVAL;
        goto failed;
    }
    f->header = json_loadb((const char *) f->map + 8, hlen, 0, &jerr);
    if (f->header == NULL || !json_is_object(f->header)) {
        snprintf(err, err_size, "%s: header is not a JSON object: %s", path,
                 f->header ? "another JSON value" : jerr.text);
        rc = -EINVAL;
        goto failed;
    }
    rc = tg__st_tensors(f, hlen, err, err_size);
    if (rc != 0) {
        goto failed;
    }
    *out = f;
    return 0;

failed:
    tg_st_close(f);
    return rc;
}

void
tg_st_close(tg_st_file_t *f)
{
    if (f == NULL) {
        return;
    }
    if (f->map != NULL) {
        munmap((void *) f->map, f->map_size);
    }
    json_decref(f->header);
    free(f->tensors);
    free(f->path);
    free(f);
}

size_t
tg_st_count(const tg_st_file_t *f)
{
    return f->count;
}

const char *
tg_st_path(const tg_st_file_t *f)
{
    return f->path;
}

static void
tg__st_shape_str(int ndim, const int64_t *shape, char *buf, size_t size)
{
    size_t  used = 0;
    int     i;

    buf[0] = '\0';
    for (i = 0; i < ndim && used < size; i++) {
        used += (size_t) snprintf(buf + used, size - used, "%s%lld",
                                  i ? ", " : "", (long long) shape[i]);
    }
}

int
tg_st_get(const tg_st_file_t *f, const char *name, const char *dtype,
          int ndim, const int64_t *shape, tg_st_tensor_t *out, char *err,
          size_t err_size)
{
    const tg_st_tensor_t   *t = NULL;
    char                    want[64], have[64];
    size_t                  i;

    for (i = 0; i < f->count; i++) {
        if (strcmp(f->tensors[i].name, name) == 0) {
            t = &f->tensors[i];
            break;
        }
    }
    if (t == NULL) {
        snprintf(err, err_size, "%s: tensor \"%s\" missing", f->path, name);
        return -ENOENT;
    }
    if (strcmp(t->dtype, dtype) != 0) {
        snprintf(err, err_size, "%s: tensor \"%s\": dtype %s, expected %s",
                 f->path, name, t->dtype, dtype);
        return -EINVAL;
    }
    if (t->ndim != ndim
        || memcmp(t->shape, shape, (size_t) ndim * sizeof(*shape)) != 0)
    {
        tg__st_shape_str(ndim, shape, want, sizeof(want));
        tg__st_shape_str(t->ndim, t->shape, have, sizeof(have));
        snprintf(err, err_size, "%s: tensor \"%s\": shape [%s], expected "
                 "[%s]", f->path, name, have, want);
        return -EINVAL;
    }
    *out = *t;
    return 0;
}
