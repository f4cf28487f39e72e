/*
 * The WordPiece tokenizer (engine/embed/wordpiece.h) on the real
 * all-MiniLM-L6-v2 vocabulary: hand cases whose ids come from the
 * `tokenizers` package with the shipped tokenizer.json, truncation,
 * argument and load errors, invalid UTF-8 and a random-bytes fuzz loop
 * (run under ASan/UBSan by make test).  The vocabulary is read from
 * $TG_WORDPIECE_VOCAB or build/models/all-MiniLM-L6-v2/vocab.txt; without
 * it the tests that need it skip (make test fetches it: mk/models.sh).
 * tests/e2e/test_embed_tokenizer.py compares 10,000 texts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "needs.h"
#include "embed/wordpiece.h"

#define TG_TEST_MAX 256

static tg_wordpiece_t *wp;

static const char *
vocab_path(void)
{
    const char *p = getenv("TG_WORDPIECE_VOCAB");

    return p != NULL && *p != '\0' ? p : "build/models/all-MiniLM-L6-v2/vocab.txt";
}

static void
setup(void)
{
    char err[256];
    int  rc;

    if (access(vocab_path(), R_OK) != 0) {
        return;
    }
    rc = tg_wordpiece_load(vocab_path(), &wp, err, sizeof(err));
    cr_assert_eq(rc, 0, "load: %s", err);
}

static void
teardown(void)
{
    tg_wordpiece_free(wp);
    wp = NULL;
}

static void
need_vocab(void)
{
    if (wp == NULL) {
        TG_TEST_MISSING("no vocabulary at %s: run `bash mk/models.sh minilm`",
                     vocab_path());
    }
}

/* Encodes text (len bytes) and compares with want[0..n). */
static void
check(const char *text, size_t len, const int32_t *want, size_t n)
{
    int32_t ids[TG_TEST_MAX];
    int     got, i;

    got = tg_wordpiece_encode(wp, text, len, ids, TG_TEST_MAX);
    cr_assert_eq(got, (int) n, "%s: %d ids, want %zu", text, got, n);
    for (i = 0; i < got; i++) {
        cr_assert_eq(ids[i], want[i], "%s: id %d is %d, want %d", text, i,
                     ids[i], want[i]);
    }
}

#define CHECK(text, ...) do {                                              \
        static const int32_t want_[] = { __VA_ARGS__ };                    \
        check(text, sizeof(text) - 1, want_, sizeof(want_) / sizeof(*want_)); \
    } while (0)

TestSuite(wordpiece, .init = setup, .fini = teardown);

Test(wordpiece, specials)
{
    need_vocab();
    cr_assert_eq(tg_wordpiece_cls(wp), 101);
    cr_assert_eq(tg_wordpiece_sep(wp), 102);
    cr_assert_eq(tg_wordpiece_pad(wp), 0);
    cr_assert_eq(tg_wordpiece_unk(wp), 100);
    cr_assert_eq(tg_wordpiece_vocab_size(wp), 30522);
}

Test(wordpiece, ascii)
{
    need_vocab();
    CHECK("", 101, 102);
    CHECK(" \t\n ", 101, 102);
    CHECK("hello world", 101, 7592, 2088, 102);
    CHECK("HELLO, World!", 101, 7592, 1010, 2088, 999, 102);
    CHECK("unaffable tokenization", 101, 14477, 20961, 3468, 19204, 3989, 102);
    CHECK("x^2+y_1=3.14", 101, 1060, 1034, 1016, 1009, 1061, 1035, 1015, 1027,
          1017, 1012, 2403, 102);
    CHECK("tab\tnew\nline\x01" "ctl", 101, 21628, 2047, 2240, 6593, 2140, 102);
    CHECK("a\0b", 101, 11113, 102);
    CHECK("##ing [cls]", 101, 1001, 1001, 13749, 1031, 18856, 2015, 1033, 102);
}

Test(wordpiece, special_tokens_in_text)
{
    need_vocab();
    CHECK("[CLS] x [MASK]y", 101, 101, 1060, 103, 1061, 102);
}

Test(wordpiece, unicode)
{
    need_vocab();
    CHECK("H\xc3\xa9llo na\xc3\xafve caf\xc3\xa9", 101, 7592, 15743, 7668, 102);
    /* CJK ideographs are words of their own; Chinese punctuation too. */
    CHECK("\xe5\x8c\x97\xe4\xba\xac\xe5\xa4\xa7\xe5\xad\xa6\xe3\x80\x82",
          101, 1781, 1755, 1810, 1817, 1636, 102);
    /* U+0130 lower-cases to i + U+0307, the mark goes with the accents. */
    CHECK("\xc4\xb0stanbul", 101, 9960, 102);
    /* Zero-width space and soft hyphen are dropped (Cf). */
    CHECK("a\xe2\x80\x8b" "b\xc2\xad" "c", 101, 5925, 102);
    /* Fullwidth letters are not folded (no NFKC); U+FF01 is punctuation. */
    CHECK("\xef\xbc\xa8\xef\xbd\x89\xef\xbc\x81", 101, 100, 1986, 102);
    /* Char-wise lower case: no final sigma. */
    CHECK("\xce\xa3\xce\x99\xce\xa3\xce\xa5\xce\xa6\xce\x9f\xce\xa3", 101, 1173, 18199,
          29733, 29735, 29736, 29730, 29733, 102);
    CHECK("\xf0\x9f\x98\x80 ok", 101, 100, 7929, 102);
    /* Hangul syllables decompose to jamo. */
    CHECK("\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4", 101, 1469, 30006, 30021, 29991,
          30014, 30020, 29999, 30008, 102);
}

/* A word of 100 characters is split into pieces, one of 101 is [UNK]
 * (max_input_chars_per_word), counted in characters, not bytes. */
Test(wordpiece, long_word_is_unk)
{
    char    text[202];
    int32_t ids[64];
    int     n, i;

    need_vocab();
    memset(text, 'a', 101);
    n = tg_wordpiece_encode(wp, text, 100, ids, 64);
    cr_assert_gt(n, 2);
    for (i = 1; i < n - 1; i++) {
        cr_assert_neq(ids[i], 100);
    }
    check(text, 101, (const int32_t[]) { 101, 100, 102 }, 3);
    for (i = 0; i < 101; i++) {
        memcpy(text + 2 * i, "\xc3\xa9", 2);
    }
    n = tg_wordpiece_encode(wp, text, 200, ids, 64);
    cr_assert_eq(n, 52);
    cr_assert_eq(ids[1], 25212);    /* "eeee" then "##ee": the accents went */
    check(text, 202, (const int32_t[]) { 101, 100, 102 }, 3);
}

Test(wordpiece, truncation)
{
    static const char word[] = "word ";
    int32_t           ids[TG_TEST_MAX];
    char             *text;
    size_t            i, len = 300 * (sizeof(word) - 1);
    int               n;

    need_vocab();
    text = malloc(len);
    cr_assert_not_null(text);
    for (i = 0; i < 300; i++) {
        memcpy(text + i * (sizeof(word) - 1), word, sizeof(word) - 1);
    }
    n = tg_wordpiece_encode(wp, text, len, ids, 8);
    cr_assert_eq(n, 8);
    cr_assert_eq(ids[0], 101);
    for (i = 1; i < 7; i++) {
        cr_assert_eq(ids[i], 2773);
    }
    cr_assert_eq(ids[7], 102);
    n = tg_wordpiece_encode(wp, text, len, ids, 2);
    cr_assert_eq(n, 2);
    cr_assert_eq(ids[1], 102);
    n = tg_wordpiece_encode(wp, text, len, ids, TG_TEST_MAX);
    cr_assert_eq(n, TG_TEST_MAX);
    cr_assert_eq(ids[TG_TEST_MAX - 1], 102);
    free(text);
}

Test(wordpiece, bad_arguments)
{
    int32_t ids[4];

    need_vocab();
    cr_assert_eq(tg_wordpiece_encode(wp, "a", 1, ids, 1), -EINVAL);
    cr_assert_eq(tg_wordpiece_encode(NULL, "a", 1, ids, 4), -EINVAL);
    cr_assert_eq(tg_wordpiece_encode(wp, NULL, 1, ids, 4), -EINVAL);
    cr_assert_eq(tg_wordpiece_encode(wp, NULL, 0, ids, 4), 2);
}

Test(wordpiece, invalid_utf8)
{
    need_vocab();
    /* Invalid bytes read as U+FFFD, which the normalizer drops. */
    CHECK("ab\xff" "cd", 101, 5925, 2094, 102);
    CHECK("ab\xc0\xaf" "cd", 101, 5925, 2094, 102);     /* overlong '/' */
    CHECK("ab\xed\xa0\x80" "cd", 101, 5925, 2094, 102); /* surrogate */
    CHECK("ab\xf4\x90\x80\x80" "cd", 101, 5925, 2094, 102); /* > U+10FFFF */
    CHECK("abcd\xe4\xb8", 101, 5925, 2094, 102);       /* cut short */
}

Test(wordpiece, load_errors)
{
    char            path[] = "/tmp/tg_wordpiece_XXXXXX", err[256];
    tg_wordpiece_t *w = NULL;
    FILE           *f;
    int             fd;

    cr_assert_eq(tg_wordpiece_load("/nonexistent/vocab.txt", &w, err, sizeof(err)),
                 -ENOENT);
    cr_assert_null(w);
    cr_assert_not_null(strstr(err, "/nonexistent/vocab.txt"));

    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(tg_wordpiece_load(path, &w, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "empty"), "%s", err);

    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[PAD]\n[UNK]\n[SEP]\nhello\n", f);
    fclose(f);
    cr_assert_eq(tg_wordpiece_load(path, &w, err, sizeof(err)), -EINVAL);
    cr_assert_not_null(strstr(err, "[CLS]"), "%s", err);

    /* A tiny vocabulary without a final newline, with CRLF lines. */
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhel\r\n##lo", f);
    fclose(f);
    cr_assert_eq(tg_wordpiece_load(path, &w, err, sizeof(err)), 0, "%s", err);
    {
        int32_t ids[8];

        cr_assert_eq(tg_wordpiece_vocab_size(w), 6);
        cr_assert_eq(tg_wordpiece_encode(w, "Hello hi", 8, ids, 8), 5);
        cr_assert_eq(ids[1], 4);
        cr_assert_eq(ids[2], 5);
        cr_assert_eq(ids[3], 1);
    }
    tg_wordpiece_free(w);
    unlink(path);
}

/* Random bytes, biased towards UTF-8 lead bytes and special-token text:
 * every result is well formed.  ASan/UBSan catch what the asserts miss. */
Test(wordpiece, fuzz)
{
    static const char alphabet[] = "[CLS][SEP]##aZ \t\xc3\xa9\xe4\xb8\x80\xf0\x9f\x98";
    unsigned char     buf[600];
    int32_t           ids[64];
    uint64_t          x = 0x9E3779B97F4A7C15u;
    size_t            len, i, max;
    int               iter, n, k;

    need_vocab();
    for (iter = 0; iter < 20000; iter++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        len = x % sizeof(buf);
        max = 2 + (x >> 20) % 62;
        for (i = 0; i < len; i++) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf[i] = (x & 3) ? (unsigned char) (x >> 24)
                             : (unsigned char) alphabet[(x >> 24) % (sizeof(alphabet) - 1)];
        }
        n = tg_wordpiece_encode(wp, (const char *) buf, len, ids, max);
        cr_assert(n >= 2 && (size_t) n <= max, "n=%d max=%zu", n, max);
        cr_assert_eq(ids[0], 101);
        cr_assert_eq(ids[n - 1], 102);
        for (k = 0; k < n; k++) {
            cr_assert(ids[k] >= 0 && (size_t) ids[k] < tg_wordpiece_vocab_size(wp));
        }
    }
}
