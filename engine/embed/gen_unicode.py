#!/usr/bin/env python3
"""Generates engine/embed/wordpiece_tables.c, the Unicode tables of the
WordPiece tokenizer (wordpiece_norm.c), from Python's unicodedata.

Usage: python3 engine/embed/gen_unicode.py [--reference TOKENIZER_JSON]
                                           [-o engine/embed/wordpiece_tables.c]

Two tables, both sorted ranges for a binary search:

  * the BertNormalizer map of one code point (clean_text, strip_accents,
    lowercase): drop it, turn it into a space, shift it by a constant
    (for every code point of a range, or every other one: the Latin
    upper/lower pairs), map a range to one code point (accented letters
    of one base letter), or replace it by a short sequence.  Code points
    not in the table map to themselves; the CJK spacing and the Hangul
    syllable decomposition are done in C (both are arithmetic).
  * the BertPreTokenizer punctuation: Unicode P* and the ASCII symbols.

The rules follow the `tokenizers` BertNormalizer: drop U+0000, U+FFFD and
Cc/Cf/Co/Cs except \\t \\n \\r; map White_Space to ' '; NFD, then drop Mn;
then Rust's char::to_lowercase (char by char, no final sigma).

With --reference (the model's tokenizer.json, `tokenizers` installed), each
code point is also run through the reference normalizer and pre-tokenizer.
Its crates carry other Unicode versions than this Python (older category
tables, a newer lowercase table); where they disagree the reference wins,
so that ids match it exactly, and the counts are printed.
"""
import argparse
import sys
import unicodedata as ud

MAX_CP = 0x110000
HANGUL_FIRST, HANGUL_LAST = 0xAC00, 0xD7A3

# Rust char::is_whitespace: the White_Space property.
WHITE_SPACE = {0x9, 0xA, 0xB, 0xC, 0xD, 0x20, 0x85, 0xA0, 0x1680, 0x2028,
               0x2029, 0x202F, 0x205F, 0x3000} | set(range(0x2000, 0x200B))

# tokenizers' is_chinese_char; wordpiece_norm.c has the same ranges.  BERT's
# original list starts the fifth range at 0x2B820, tokenizers at 0x2B920.
CJK = [(0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
       (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B920, 0x2CEAF),
       (0xF900, 0xFAFF), (0x2F800, 0x2FA1F)]


def is_cjk(c):
    return any(lo <= c <= hi for lo, hi in CJK)


def skip(c):
    """Code points the tables need not cover: surrogates (never decoded),
    Hangul syllables (decomposed in C)."""
    return 0xD800 <= c <= 0xDFFF or HANGUL_FIRST <= c <= HANGUL_LAST


def normalize(c):
    """The BertNormalizer output for one code point, without CJK spaces."""
    ch = chr(c)
    if c in (0x9, 0xA, 0xD):
        return " "
    if c == 0 or c == 0xFFFD or ud.category(ch) in ("Cc", "Cf", "Co", "Cs"):
        return ""
    if c in WHITE_SPACE:
        return " "
    s = "".join(x for x in ud.normalize("NFD", ch) if ud.category(x) != "Mn")
    return "".join(x.lower() for x in s)


def is_punct(c):
    return (33 <= c <= 47 or 58 <= c <= 64 or 91 <= c <= 96
            or 123 <= c <= 126 or ud.category(chr(c)).startswith("P"))


def reference(path, norm, punct):
    """Replaces entries where the `tokenizers` reference differs."""
    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(path)
    n, p = tok.normalizer, tok.pre_tokenizer
    nd = pd = 0
    for c in range(MAX_CP):
        if skip(c):
            continue
        got = n.normalize_str(chr(c))
        spaced = len(got) == 3 and got[0] == got[2] == " " and got[1] != " "
        if spaced != is_cjk(c):
            sys.exit("gen_unicode: U+%04X: the reference disagrees on the "
                     "CJK ranges; fix CJK here and in wordpiece_norm.c" % c)
        if spaced:
            got = got[1]
        if got != norm[c]:
            norm[c] = got
            nd += 1
        pieces = p.pre_tokenize_str("a" + chr(c) + "a")
        ref = len(pieces) == 3 and pieces[1][0] == chr(c)
        if ref != punct[c]:
            punct[c] = ref
            pd += 1
    print("gen_unicode: unicodedata %s; the reference differs on %d code "
          "points of the normalizer, %d of punctuation; using the reference"
          % (ud.unidata_version, nd, pd), file=sys.stderr)


def map_ranges(norm):
    """Sorted (lo, hi, step, kind, arg) rows and the sequence pool."""
    rows, pool = [], []
    c = 0
    while c < MAX_CP:
        s = norm.get(c)
        if s is None or s == chr(c):
            c += 1
            continue
        if s in ("", " "):
            kind = "TG_WP_DROP" if s == "" else "TG_WP_SPACE"
            hi = c
            while norm.get(hi + 1) == s:
                hi += 1
            rows.append((c, hi, 1, kind, 0))
            c = hi + 1
            continue
        if len(s) > 1:
            rows.append((c, c, 1, "TG_WP_SEQ", len(pool)))
            pool.append(len(s))
            pool.extend(ord(x) for x in s)
            c += 1
            continue
        hi = c
        while norm.get(hi + 1) == s:
            hi += 1
        if hi > c:
            # Accented letters of one base letter: Ã and Å to a.
            rows.append((c, hi, 1, "TG_WP_TO", ord(s)))
            c = hi + 1
            continue
        delta = ord(s) - c

        def shifted(x):
            t = norm.get(x)
            return t is not None and len(t) == 1 and ord(t) - x == delta

        def same(x):
            t = norm.get(x)
            return t is None or t == chr(x)

        hi = c
        while shifted(hi + 1):
            hi += 1
        step = 1
        if hi == c:
            # Every other code point: upper/lower pairs (Latin Extended).
            while shifted(hi + 2) and same(hi + 1):
                hi += 2
                step = 2
        rows.append((c, hi, step, "TG_WP_SHIFT", delta))
        c = hi + 1
    return rows, pool


def punct_ranges(punct):
    out, c = [], 0
    while c < MAX_CP:
        if not punct.get(c):
            c += 1
            continue
        hi = c
        while punct.get(hi + 1):
            hi += 1
        out.append((c, hi))
        c = hi + 1
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference")
    ap.add_argument("-o", default="engine/embed/wordpiece_tables.c")
    a = ap.parse_args()
    norm, punct = {}, {}
    for c in range(MAX_CP):
        if skip(c):
            continue
        norm[c] = normalize(c)
        punct[c] = is_punct(c)
    if a.reference:
        reference(a.reference, norm, punct)
    rows, pool = map_ranges(norm)
    pr = punct_ranges(punct)
    maxseq = max([pool[r[4]] for r in rows if r[3] == "TG_WP_SEQ"] + [1])
    src = "--reference tokenizer.json " if a.reference else ""
    o = ["/* Generated by engine/embed/gen_unicode.py %s(unicodedata %s);"
         % (src, ud.unidata_version),
         " * do not edit.  The tables of wordpiece_norm.c. */",
         '#include "wordpiece_int.h"', "",
         "const tg_wp_map_t tg_wp_map[] = {"]
    for i in range(0, len(rows), 2):
        o.append("   " + "".join(" {0x%05X, 0x%05X, %d, %s, %d}," % r
                                 for r in rows[i:i + 2]))
    o += ["};", "const size_t tg_wp_map_len = %d;" % len(rows), "",
          "/* TG_WP_SEQ rows point here: a length, then the code points. */",
          "const uint32_t tg_wp_seq[] = {"]
    for i in range(0, len(pool), 8):
        o.append("    " + " ".join("0x%X," % x for x in pool[i:i + 8]))
    o += ["};", "",
          "/* Punctuation, first and last code point of each range. */",
          "const uint32_t tg_wp_punct[][2] = {"]
    for i in range(0, len(pr), 4):
        o.append("   " + "".join(" {0x%05X, 0x%05X}," % r for r in pr[i:i + 4]))
    o += ["};", "const size_t tg_wp_punct_len = %d;" % len(pr), "",
          "_Static_assert(%d <= TG_WP_SEQ_MAX, \"a sequence is too long\");"
          % maxseq, ""]
    with open(a.o, "w") as f:
        f.write("\n".join(o))
    print("gen_unicode: %d map rows, %d pool words, %d punctuation ranges, "
          "longest sequence %d" % (len(rows), len(pool), len(pr), maxseq),
          file=sys.stderr)


if __name__ == "__main__":
    main()
