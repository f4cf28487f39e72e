/*
 * The per-code-point steps of the WordPiece tokenizer: UTF-8, the
 * BertNormalizer and the BertPreTokenizer's punctuation test.  ASCII is
 * decided inline; everything else is a binary search in the tables that
 * gen_unicode.py generates, plus the two arithmetic cases the tables leave
 * out (CJK spacing, Hangul syllables).
 *
 * Normalizing code point by code point leaves out one step of NFD, the
 * canonical reordering of combining marks.  Nearly all marks are dropped
 * anyway; those kept (spacing marks with a combining class, marks newer
 * than the reference's tables) occur in no vocabulary piece, so a word
 * holding one is [UNK] in either order and the ids do not change.
 */
#include "wordpiece_int.h"

#define TG_WP_REPLACEMENT 0xFFFDu

/* Hangul syllable decomposition (Unicode 3.12). */
#define TG_WP_HANGUL_S    0xAC00u
#define TG_WP_HANGUL_L    0x1100u
#define TG_WP_HANGUL_V    0x1161u
#define TG_WP_HANGUL_T    0x11A7u
#define TG_WP_HANGUL_TN   28u
#define TG_WP_HANGUL_NN   (21u * 28u)
#define TG_WP_HANGUL_SN   (19u * 21u * 28u)

static int tg__wp_is_cjk(uint32_t cp);
static int tg__wp_map_one(uint32_t cp, uint32_t *out);

size_t
tg__wp_utf8_next(const unsigned char *s, size_t len, uint32_t *cp)
{
    uint32_t c = s[0], min;
    size_t   n, i;

    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        c &= 0x1F;
        min = 0x80;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        c &= 0x0F;
        min = 0x800;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        c &= 0x07;
        min = 0x10000;
    } else {
        goto invalid;
    }
    if (n > len) {
        goto invalid;
    }
    for (i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            goto invalid;
        }
        c = (c << 6) | (s[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        goto invalid;
    }
    *cp = c;
    return n;

invalid:
    *cp = TG_WP_REPLACEMENT;
    return 1;
}

size_t
tg__wp_utf8_put(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char) cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char) (0xC0 | (cp >> 6));
        out[1] = (unsigned char) (0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char) (0xE0 | (cp >> 12));
        out[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
        out[2] = (unsigned char) (0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (unsigned char) (0xF0 | (cp >> 18));
    out[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
    out[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
    out[3] = (unsigned char) (0x80 | (cp & 0x3F));
    return 4;
}

/* tokenizers' is_chinese_char (0x2B920, where BERT's list has 0x2B820);
 * gen_unicode.py has the same list and checks it against the reference. */
static int
tg__wp_is_cjk(uint32_t cp)
{
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF)
           || (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F)
           || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF)
           || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

/* The table's mapping of a non-ASCII code point, without CJK spaces. */
static int
tg__wp_map_one(uint32_t cp, uint32_t *out)
{
    const tg_wp_map_t *r;
    size_t             lo = 0, hi = tg_wp_map_len, mid;
    uint32_t           i, n;

    if (cp - TG_WP_HANGUL_S < TG_WP_HANGUL_SN) {
        cp -= TG_WP_HANGUL_S;
        out[0] = TG_WP_HANGUL_L + cp / TG_WP_HANGUL_NN;
        out[1] = TG_WP_HANGUL_V + (cp % TG_WP_HANGUL_NN) / TG_WP_HANGUL_TN;
        if (cp % TG_WP_HANGUL_TN == 0) {
            return 2;
        }
        out[2] = TG_WP_HANGUL_T + cp % TG_WP_HANGUL_TN;
        return 3;
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (tg_wp_map[mid].hi < cp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    if (lo == tg_wp_map_len) {
        goto same;
    }
    r = &tg_wp_map[lo];
    if (cp < r->lo || (cp - r->lo) % r->step != 0) {
        goto same;
    }
    switch (r->kind) {
    case TG_WP_DROP:
        return 0;
    case TG_WP_SPACE:
        out[0] = ' ';
        return 1;
    case TG_WP_SHIFT:
        out[0] = (uint32_t) ((int32_t) cp + r->arg);
        return 1;
    case TG_WP_TO:
        out[0] = (uint32_t) r->arg;
        return 1;
    default:
        n = tg_wp_seq[r->arg];
        for (i = 0; i < n; i++) {
            out[i] = tg_wp_seq[r->arg + 1 + i];
        }
        return (int) n;
    }

same:
    out[0] = cp;
    return 1;
}

int
tg__wp_normalize(uint32_t cp, uint32_t *out)
{
    int n;

    if (cp < 0x80) {
        if (cp >= 'A' && cp <= 'Z') {
            out[0] = cp + ('a' - 'A');
            return 1;
        }
        if (cp == '\t' || cp == '\n' || cp == '\r') {
            out[0] = ' ';
            return 1;
        }
        if (cp < 0x20 || cp == 0x7F) {
            return 0;
        }
        out[0] = cp;
        return 1;
    }
    if (!tg__wp_is_cjk(cp)) {
        return tg__wp_map_one(cp, out);
    }
    out[0] = ' ';
    n = tg__wp_map_one(cp, out + 1);
    out[n + 1] = ' ';
    return n + 2;
}

int
tg__wp_is_punct(uint32_t cp)
{
    size_t lo = 0, hi = tg_wp_punct_len, mid;

    if (cp < 0x80) {
        return (cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64)
               || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126);
    }
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        if (tg_wp_punct[mid][1] < cp) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return lo < tg_wp_punct_len && cp >= tg_wp_punct[lo][0];
}
