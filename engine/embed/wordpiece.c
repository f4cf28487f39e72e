/*
 * BERT WordPiece tokenizer: the vocabulary (an open-addressing hash table
 * over one block holding vocab.txt) and the encoder.  The encoder streams:
 * it normalizes one code point at a time (wordpiece_norm.c), gathers the
 * current word in a buffer on the stack and turns each finished word into
 * pieces, so that it allocates nothing and stops reading once the ids are
 * full.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wordpiece.h"
#include "wordpiece_int.h"

/* tokenizers' WordPiece max_input_chars_per_word: a longer word is [UNK]. */
#define TG_WP_WORD_MAX 100
/* The vocabulary's own limit: one piece, one line, fits in 16 bits. */
#define TG_WP_PIECE_MAX 0xFFFF

/* One vocabulary slot; id < 0 is empty.  cont marks a "##" piece, whose
 * key is the text after the "##". */
typedef struct {
    uint32_t off;
    uint16_t len;
    uint8_t  cont;
    int32_t  id;
} tg__wp_slot_t;

/* BERT's special tokens, matched in the raw text before normalization as
 * tokenizers does with the added tokens of tokenizer.json ("normalized":
 * false): "[CLS]" in the input is id 101, not "[", "cl", "##s", "]". */
#define TG_WP_SPECIALS 5
static const char *const tg__wp_special_names[TG_WP_SPECIALS] = {
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
};

struct tg_wordpiece_s {
    char          *text;       /* vocab.txt, lines cut at '\n' */
    tg__wp_slot_t *slots;
    size_t         mask;       /* slot count - 1, a power of two - 1 */
    size_t         size;       /* ids: the number of lines */
    size_t         piece_max;  /* longest key in bytes */
    int32_t        special[TG_WP_SPECIALS];  /* ids, -1 if absent */
};

enum { TG_WP_PAD, TG_WP_UNK, TG_WP_CLS, TG_WP_SEP, TG_WP_MASK };

/* The word being gathered: its UTF-8 bytes and where each character
 * starts, up to TG_WP_WORD_MAX characters; nchars keeps counting. */
typedef struct {
    unsigned char bytes[TG_WP_WORD_MAX * 4];
    uint16_t      start[TG_WP_WORD_MAX + 1];
    size_t        nchars;
} tg__wp_word_t;

/* The output: ids[0..n), at most limit ids before the final [SEP]. */
typedef struct {
    int32_t *ids;
    size_t   n;
    size_t   limit;
} tg__wp_out_t;

static void tg__wp_error(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static uint32_t tg__wp_hash(const unsigned char *s, size_t len, int cont);
static int32_t tg__wp_find(const tg_wordpiece_t *wp, const unsigned char *s,
                           size_t len, int cont);
static void tg__wp_insert(tg_wordpiece_t *wp, uint32_t off, size_t len,
                          int cont, int32_t id);
static int tg__wp_read(const char *path, char **out, size_t *len,
                       char *err, size_t err_size);
static int tg__wp_table(tg_wordpiece_t *wp, size_t len,
                        const char *vocab_path, char *err, size_t err_size);
static int tg__wp_index(tg_wordpiece_t *wp, size_t len,
                        const char *vocab_path, char *err, size_t err_size);
static int tg__wp_specials(tg_wordpiece_t *wp, const char *vocab_path,
                           char *err, size_t err_size);
static void tg__wp_emit(tg__wp_out_t *o, int32_t id);
static void tg__wp_flush(const tg_wordpiece_t *wp, tg__wp_word_t *w,
                         tg__wp_out_t *o);
static void tg__wp_push(tg__wp_word_t *w, uint32_t cp);
static int32_t tg__wp_special_at(const tg_wordpiece_t *wp,
                                 const unsigned char *s, size_t len,
                                 size_t *used);

static void
tg__wp_error(char *err, size_t err_size, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || err_size == 0) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* FNV-1a; a "##" piece hashes from another basis than a word start. */
static uint32_t
tg__wp_hash(const unsigned char *s, size_t len, int cont)
{
    uint32_t h = cont ? 0x050C5D1Fu : 0x811C9DC5u;
    size_t   i;

    for (i = 0; i < len; i++) {
        h = (h ^ s[i]) * 0x01000193u;
    }
    return h ^ (h >> 15);
}

static int32_t
tg__wp_find(const tg_wordpiece_t *wp, const unsigned char *s, size_t len,
            int cont)
{
    const tg__wp_slot_t *e;
    size_t               i = tg__wp_hash(s, len, cont) & wp->mask;

    for (;; i = (i + 1) & wp->mask) {
        e = &wp->slots[i];
        if (e->id < 0) {
            return -1;
        }
        if (e->len == len && e->cont == cont
            && memcmp(wp->text + e->off, s, len) == 0)
        {
            return e->id;
        }
    }
}

/* A repeated line keeps the last id, as tokenizers' vocab map does. */
static void
tg__wp_insert(tg_wordpiece_t *wp, uint32_t off, size_t len, int cont,
              int32_t id)
{
    const unsigned char *s = (const unsigned char *) wp->text + off;
    tg__wp_slot_t       *e;
    size_t               i = tg__wp_hash(s, len, cont) & wp->mask;

    for (;; i = (i + 1) & wp->mask) {
        e = &wp->slots[i];
        if (e->id < 0) {
            break;
        }
        if (e->len == len && e->cont == cont && memcmp(wp->text + e->off, s, len) == 0) {
            e->id = id;
            return;
        }
    }
    e->off = off;
    e->len = (uint16_t) len;
    e->cont = (uint8_t) cont;
    e->id = id;
    if (len > wp->piece_max) {
        wp->piece_max = len;
    }
}

static int
tg__wp_read(const char *path, char **out, size_t *len, char *err,
            size_t err_size)
{
    FILE  *f;
    char  *buf = NULL, *grown;
    size_t cap = 0, n = 0, got;
    int    rc;

    f = fopen(path, "rb");
    if (f == NULL) {
        rc = -errno;
        tg__wp_error(err, err_size, "%s: %s", path, strerror(errno));
        return rc;
    }
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 18;
            grown = realloc(buf, cap + 1);
            if (grown == NULL) {
                rc = -ENOMEM;
                tg__wp_error(err, err_size, "%s: out of memory", path);
                goto failed;
            }
            buf = grown;
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            break;
        }
    }
    if (ferror(f)) {
        rc = -EIO;
        tg__wp_error(err, err_size, "%s: read error", path);
        goto failed;
    }
    fclose(f);
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;

failed:
    free(buf);
    fclose(f);
    return rc;
}

/* The hash table for the vocabulary's lines (text, len bytes): at most
 * half full. */
static int
tg__wp_table(tg_wordpiece_t *wp, size_t len, const char *vocab_path,
             char *err, size_t err_size)
{
    size_t  lines = 0, i, slots;

    for (i = 0; i < len; i++) {
        lines += wp->text[i] == '\n';
    }
    lines += wp->text[len - 1] != '\n';
    if (lines > INT32_MAX / 4) {
        tg__wp_error(err, err_size, "%s: too many lines", vocab_path);
        return -EINVAL;
    }
    for (slots = 16; slots < lines * 2; slots *= 2) {
        /* a load factor of at most one half */
    }
    wp->slots = malloc(slots * sizeof(*wp->slots));
    if (wp->slots == NULL) {
        tg__wp_error(err, err_size, "%s: out of memory", vocab_path);
        return -ENOMEM;
    }
    for (i = 0; i < slots; i++) {
        wp->slots[i].id = -1;
    }
    wp->mask = slots - 1;
    return 0;
}

/* Each line of the text a piece, its id the line's index ("##": a word's
 * continuation). */
static int
tg__wp_index(tg_wordpiece_t *wp, size_t len, const char *vocab_path,
             char *err, size_t err_size)
{
    size_t   i, start, end;
    int      cont;
    int32_t  id;

    for (start = 0, id = 0; start < len; start = end + 1, id++) {
        end = start;
        while (end < len && wp->text[end] != '\n') {
            end++;
        }
        wp->text[end] = '\0';   /* the NUL after the last line if none */
        i = end;
        while (i > start && wp->text[i - 1] == '\r') {
            i--;
        }
        if (i - start > TG_WP_PIECE_MAX) {
            tg__wp_error(err, err_size, "%s: line %d is too long",
                         vocab_path, (int) id + 1);
            return -EINVAL;
        }
        cont = i - start >= 2 && wp->text[start] == '#'
               && wp->text[start + 1] == '#';
        tg__wp_insert(wp, (uint32_t) (start + 2 * cont), i - start - 2 * cont,
                      cont, id);
    }
    wp->size = (size_t) id;
    return 0;
}

/* The special tokens' ids; only [MASK] may be missing. */
static int
tg__wp_specials(tg_wordpiece_t *wp, const char *vocab_path, char *err,
                size_t err_size)
{
    int  k;

    for (k = 0; k < TG_WP_SPECIALS; k++) {
        const char *name = tg__wp_special_names[k];

        wp->special[k] = tg__wp_find(wp, (const unsigned char *) name,
                                     strlen(name), 0);
        if (wp->special[k] < 0 && k != TG_WP_MASK) {
            tg__wp_error(err, err_size, "%s: no %s in the vocabulary",
                         vocab_path, name);
            return -EINVAL;
        }
    }
    return 0;
}

int
tg_wordpiece_load(const char *vocab_path, tg_wordpiece_t **out, char *err,
                  size_t err_size)
{
    tg_wordpiece_t *wp;
    size_t          len = 0;
    int             rc;

    if (vocab_path == NULL || out == NULL) {
        tg__wp_error(err, err_size, "wordpiece: no vocabulary path");
        return -EINVAL;
    }
    *out = NULL;
    wp = calloc(1, sizeof(*wp));
    if (wp == NULL) {
        tg__wp_error(err, err_size, "%s: out of memory", vocab_path);
        return -ENOMEM;
    }
    rc = tg__wp_read(vocab_path, &wp->text, &len, err, err_size);
    if (rc < 0) {
        goto failed;
    }
    if (len == 0) {
        rc = -EINVAL;
        tg__wp_error(err, err_size, "%s: empty vocabulary", vocab_path);
        goto failed;
    }
    if (len > UINT32_MAX) {
        rc = -EINVAL;
        tg__wp_error(err, err_size, "%s: too large", vocab_path);
        goto failed;
    }
    rc = tg__wp_table(wp, len, vocab_path, err, err_size);
    if (rc == 0) {
        rc = tg__wp_index(wp, len, vocab_path, err, err_size);
    }
    if (rc == 0) {
        rc = tg__wp_specials(wp, vocab_path, err, err_size);
    }
    if (rc < 0) {
        goto failed;
    }
    *out = wp;
    return 0;

failed:
    tg_wordpiece_free(wp);
    return rc;
}

void
tg_wordpiece_free(tg_wordpiece_t *wp)
{
    if (wp == NULL) {
        return;
    }
    free(wp->slots);
    free(wp->text);
    free(wp);
}

int32_t
tg_wordpiece_cls(const tg_wordpiece_t *wp)
{
    return wp->special[TG_WP_CLS];
}

int32_t
tg_wordpiece_sep(const tg_wordpiece_t *wp)
{
    return wp->special[TG_WP_SEP];
}

int32_t
tg_wordpiece_pad(const tg_wordpiece_t *wp)
{
    return wp->special[TG_WP_PAD];
}

int32_t
tg_wordpiece_unk(const tg_wordpiece_t *wp)
{
    return wp->special[TG_WP_UNK];
}

size_t
tg_wordpiece_vocab_size(const tg_wordpiece_t *wp)
{
    return wp->size;
}

/* Ids past the limit are counted, not written: the caller stops reading
 * input once n reaches limit, and a word that turns out to be [UNK]
 * rewinds n first. */
static void
tg__wp_emit(tg__wp_out_t *o, int32_t id)
{
    if (o->n < o->limit) {
        o->ids[o->n] = id;
    }
    o->n++;
}

/* Greedy longest-match pieces of the gathered word, or one [UNK] when a
 * position matches nothing or the word is over TG_WP_WORD_MAX chars. */
static void
tg__wp_flush(const tg_wordpiece_t *wp, tg__wp_word_t *w, tg__wp_out_t *o)
{
    size_t  first = o->n, from = 0, to, n = w->nchars;
    int32_t id = -1;

    if (n == 0) {
        return;
    }
    w->nchars = 0;
    if (n > TG_WP_WORD_MAX) {
        tg__wp_emit(o, wp->special[TG_WP_UNK]);
        return;
    }
    while (from < n) {
        to = n;
        while (to > from && (size_t) (w->start[to] - w->start[from]) > wp->piece_max) {
            to--;
        }
        for (id = -1; to > from; to--) {
            id = tg__wp_find(wp, w->bytes + w->start[from],
                             (size_t) (w->start[to] - w->start[from]), from > 0);
            if (id >= 0) {
                break;
            }
        }
        if (id < 0) {
            o->n = first;
            tg__wp_emit(o, wp->special[TG_WP_UNK]);
            return;
        }
        tg__wp_emit(o, id);
        from = to;
    }
}

/* Appends a code point to the word; past TG_WP_WORD_MAX only counts. */
static void
tg__wp_push(tg__wp_word_t *w, uint32_t cp)
{
    size_t n = w->nchars++;

    if (n >= TG_WP_WORD_MAX) {
        return;
    }
    if (n == 0) {
        w->start[0] = 0;
    }
    w->start[n + 1] = (uint16_t) (w->start[n]
                                  + tg__wp_utf8_put(cp, w->bytes + w->start[n]));
}

/* The id of a special token spelled at s[0..len), setting *used. */
static int32_t
tg__wp_special_at(const tg_wordpiece_t *wp, const unsigned char *s,
                  size_t len, size_t *used)
{
    size_t n;
    int    k;

    for (k = 0; k < TG_WP_SPECIALS; k++) {
        n = strlen(tg__wp_special_names[k]);
        if (wp->special[k] >= 0 && n <= len
            && memcmp(s, tg__wp_special_names[k], n) == 0)
        {
            *used = n;
            return wp->special[k];
        }
    }
    return -1;
}

int
tg_wordpiece_encode(const tg_wordpiece_t *wp, const char *text, size_t len,
                    int32_t *ids, size_t max_ids)
{
    const unsigned char *s = (const unsigned char *) text;
    tg__wp_word_t        w;
    tg__wp_out_t         o;
    uint32_t             cp, norm[TG_WP_NORM_MAX];
    size_t               pos = 0, used;
    int                  i, k;
    int32_t              id;

    if (wp == NULL || ids == NULL || max_ids < 2 || (text == NULL && len > 0)) {
        return -EINVAL;
    }
    if (max_ids > INT32_MAX) {
        max_ids = INT32_MAX;
    }
    o.ids = ids;
    o.n = 0;
    o.limit = max_ids - 1;
    w.nchars = 0;
    tg__wp_emit(&o, wp->special[TG_WP_CLS]);

    while (pos < len && o.n < o.limit) {
        if (s[pos] == '[') {
            id = tg__wp_special_at(wp, s + pos, len - pos, &used);
            if (id >= 0) {
                tg__wp_flush(wp, &w, &o);
                tg__wp_emit(&o, id);
                pos += used;
                continue;
            }
        }
        pos += tg__wp_utf8_next(s + pos, len - pos, &cp);
        k = tg__wp_normalize(cp, norm);
        for (i = 0; i < k; i++) {
            if (norm[i] == ' ') {
                tg__wp_flush(wp, &w, &o);
            } else if (tg__wp_is_punct(norm[i])) {
                tg__wp_flush(wp, &w, &o);
                tg__wp_push(&w, norm[i]);
                tg__wp_flush(wp, &w, &o);
            } else {
                tg__wp_push(&w, norm[i]);
            }
        }
    }
    tg__wp_flush(wp, &w, &o);
    if (o.n > o.limit) {
        o.n = o.limit;
    }
    o.ids[o.n++] = wp->special[TG_WP_SEP];
    return (int) o.n;
}
