/*
 * A read-only view of one .safetensors file: an 8-byte little-endian
 * header length, a JSON header naming every tensor (dtype, shape, byte
 * offsets into the data that follows), then the data.  The file is mapped
 * once; tensors point into the mapping and live as long as the view.
 *
 * Functions return 0 or a negative errno code with a message in err that
 * names the file (and the tensor, where one is concerned).
 */
#ifndef TG_EMBED_SAFETENSORS_H
#define TG_EMBED_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define TG_ST_MAX_DIMS 4

typedef struct tg_st_file_s tg_st_file_t;

typedef struct {
    const char  *name;
    char         dtype[8];                  /* "F32", "I64", ... */
    int          ndim;
    int64_t      shape[TG_ST_MAX_DIMS];
    const void  *data;                      /* into the mapping */
    size_t       size;                      /* bytes */
} tg_st_tensor_t;

/* Maps path and checks the header: valid JSON, every tensor with a known
 * dtype, a shape whose size matches its offsets, offsets inside the file
 * and not overlapping the header. */
int  tg_st_open(const char *path, tg_st_file_t **out, char *err,
                size_t err_size);
void tg_st_close(tg_st_file_t *f);

size_t tg_st_count(const tg_st_file_t *f);
const char *tg_st_path(const tg_st_file_t *f);

/*
 * Finds tensor name with dtype and shape shape[0..ndim); a missing tensor
 * is -ENOENT, a different dtype or shape -EINVAL, each with err naming the
 * file, the tensor, what was expected and what was found.
 */
int tg_st_get(const tg_st_file_t *f, const char *name, const char *dtype,
              int ndim, const int64_t *shape, tg_st_tensor_t *out,
              char *err, size_t err_size);

#endif /* TG_EMBED_SAFETENSORS_H */
