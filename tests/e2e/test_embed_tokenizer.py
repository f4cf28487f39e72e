"""The C WordPiece tokenizer (engine/embed/wordpiece.c) against the
reference, the `tokenizers` package loading the shipped tokenizer.json.

10,000 texts, generated from a fixed seed: snippets of the recorded traces
(../shared/traces, field output and problem), the same with Unicode mixed
in, random Unicode (accents, combining marks, CJK, Hangul, emoji, Arabic,
zero-width and control characters, NUL, fullwidth forms, any code point),
empty and blank strings, and texts far over the truncation limit.  The
build tool build/tests/wordpiece_ids encodes them all in one run; every id
list must equal the reference's, at max_length 256 (sentence-transformers'
max_seq_length for this model), at 128 (what tokenizer.json itself says)
and untruncated.
"""
import glob
import gzip
import json
import os
import random
import subprocess

import pytest

import harness
from harness import BUILD, TRACES, have_traces

tokenizers = harness.import_or_missing("tokenizers")

MODEL = os.path.join(BUILD, "models", "all-MiniLM-L6-v2")
TOOL = os.path.join(BUILD, "tests", "wordpiece_ids")
SEED = 20240617
COUNT = 10000

# Code point ranges random Unicode draws from, with weights.
RANGES = [
    (0x20, 0x7E, 20),         # ASCII
    (0x00, 0x1F, 3),          # C0 controls, NUL included
    (0x7F, 0x9F, 2),          # DEL, C1 controls
    (0xA0, 0x24F, 10),        # Latin-1, Latin Extended (accents)
    (0x300, 0x36F, 6),        # combining diacritics
    (0x370, 0x52F, 5),        # Greek, Cyrillic
    (0x590, 0x6FF, 5),        # Hebrew, Arabic
    (0x900, 0xDFF, 3),        # Indic scripts
    (0xE00, 0xEFF, 2),        # Thai, Lao
    (0x1E00, 0x1FFF, 4),      # Latin Extended Additional, Greek Extended
    (0x2000, 0x206F, 5),      # spaces, zero-width, general punctuation
    (0x2070, 0x2BFF, 3),      # symbols, arrows, math
    (0x3000, 0x30FF, 5),      # CJK punctuation, kana
    (0x3400, 0x4DBF, 2),      # CJK extension A
    (0x4E00, 0x9FFF, 8),      # CJK unified ideographs
    (0xAC00, 0xD7A3, 4),      # Hangul syllables
    (0xF900, 0xFAFF, 2),      # CJK compatibility ideographs
    (0xFB00, 0xFFFD, 5),      # presentation forms, fullwidth, specials
    (0x1D400, 0x1D7FF, 2),    # mathematical alphanumerics
    (0x1F300, 0x1FAFF, 6),    # emoji
    (0x20000, 0x2FA1F, 2),    # CJK extensions B to F, compatibility supp.
    (0x0, 0x10FFFF, 4),       # anything
]
SPECIAL = ["[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "[cls]", "##",
           "\u0130", "\u200d", "\ufeff", "\u00ad", "\ufffd", "\u0000",
           "e\u0301", "\u1e9e", "\u03a3", "\u2028", "\u3000", "\uff01"]


def load_traces(rng):
    texts = []
    for path in sorted(glob.glob(os.path.join(TRACES, "*.jsonl.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                texts.append(rec.get("problem") or "")
                if rng.random() < 0.15:
                    texts.append(rec.get("output") or "")
    return [t for t in texts if t]


def random_char(rng):
    lo, hi, _ = rng.choices(RANGES, weights=[r[2] for r in RANGES])[0]
    while True:
        c = rng.randint(lo, hi)
        if not 0xD800 <= c <= 0xDFFF:
            return chr(c)


def random_unicode(rng, n):
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.08:
            out.append(rng.choice(SPECIAL))
        elif r < 0.25:
            out.append(" ")
        else:
            out.append(random_char(rng))
    return "".join(out)


def snippet(rng, traces, longest):
    t = rng.choice(traces)
    n = min(len(t), int(rng.paretovariate(1.0) * 40))
    n = min(n, longest)
    start = rng.randint(0, len(t) - n)
    return t[start:start + n]


def make_texts():
    rng = random.Random(SEED)
    traces = load_traces(rng)
    texts = ["", " ", "\t\n\r", "\u0000", "\u200b", "[CLS]", "a" * 100,
             "a" * 101, "\u00e9" * 101, "hello world", "HELLO, World!"]
    while len(texts) < COUNT:
        kind = rng.random()
        if kind < 0.40:
            texts.append(snippet(rng, traces, 4000))
        elif kind < 0.55:
            s = list(snippet(rng, traces, 2000))
            for _ in range(rng.randint(1, 10)):
                s.insert(rng.randint(0, len(s)),
                         random_unicode(rng, rng.randint(1, 5)))
            texts.append("".join(s))
        elif kind < 0.85:
            texts.append(random_unicode(rng, rng.randint(0, 300)))
        elif kind < 0.93:
            # Far over any limit: many words, or very long words.
            parts = [snippet(rng, traces, 20000) for _ in range(5)]
            texts.append(" ".join(parts))
        elif kind < 0.97:
            w = "".join(rng.choice("abcdefghij\u00e9\u4e00")
                        for _ in range(rng.randint(90, 130)))
            texts.append(w + " " + snippet(rng, traces, 200))
        else:
            texts.append(rng.choice(["", " ", "  \t ", "\n\n", "\u3000"]))
    return texts[:COUNT]


@pytest.fixture(scope="module")
def texts():
    if not have_traces():
        harness.missing("no traces in %s" % TRACES)
    return make_texts()


@pytest.mark.parametrize("max_len", [256, 128, None])
def test_ids_match_tokenizers(texts, max_len):
    vocab = os.path.join(MODEL, "vocab.txt")
    if not os.path.exists(vocab):
        harness.missing("no model in %s (make models)" % MODEL)
    if not os.access(TOOL, os.X_OK):
        harness.missing("%s not built" % TOOL)
    tok = tokenizers.Tokenizer.from_file(os.path.join(MODEL,
                                                      "tokenizer.json"))
    tok.no_padding()
    if max_len:
        tok.enable_truncation(max_len)
    else:
        tok.no_truncation()
    want = [e.ids for e in tok.encode_batch(texts)]

    stdin = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in texts)
    run = subprocess.run([TOOL, vocab, str(max_len or 1 << 20)],
                         input=stdin.encode("utf-8"), capture_output=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr.decode(errors="replace")
    got = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert len(got) == len(texts)

    bad = [i for i in range(len(texts)) if got[i] != want[i]]
    print("wordpiece max_len=%s: %d of %d texts agree with tokenizers %s"
          % (max_len, len(texts) - len(bad), len(texts),
             tokenizers.__version__))
    for i in bad[:5]:
        print("text %d: %r\n  want %s\n  got  %s"
              % (i, texts[i][:200], want[i][:40], got[i][:40]))
    assert not bad
