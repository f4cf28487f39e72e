"""embed_score: the end-to-end cost of score(embed) through nginx and the
engine, for 8 trace prefixes of 512 tokens.

The score_probe test plugin (tests/plugins/score_probe.c) calls
score_kind() on the request's lines and answers with the matrix, so one
request = one score(embed) call of 8 texts: HTTP through nginx, the ring,
the plugin, the embed service's queue, one batch through all-MiniLM-L6-v2
on a libuv worker (thinkgate_embedder threads=N), the 8 x 8 cosines, the
answer.  The texts are real reasoning-trace prefixes read at run time from
../shared/traces/*.jsonl.gz: 512 tokens each at the sim's and prefix
index's 4 bytes a token (2,048 bytes; the model reads the first 256 word
pieces of each, as all-MiniLM-L6-v2 does).

Reported, in one run on one stack:
  - sequential: one call at a time, ms per call (mean, p50, p90), texts/s;
  - concurrent: C clients at once, texts/s, and texts per model call
    (calls of one loop turn share a batch);
  - lexical: the same calls with score(lexical), the gateway's own cost.

The measurement itself, for bench/embed_score and bench/embed:
`embed_score_lib.measure(threads=, calls=, concurrency=)` returns the
figures as a dict.
"""
import concurrent.futures
import glob
import gzip
import http.client
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402

harness = lib.harness
MODEL = os.path.join(lib.BUILD, "models", "all-MiniLM-L6-v2")
PROBE = os.path.join(lib.BUILD, "tests", "plugins", "score_probe.so")
TEXTS = 8
PREFIX_BYTES = 512 * 4

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_strategy score_probe;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


def trace_prefixes(n=TEXTS, nbytes=PREFIX_BYTES):
    """n prefixes of nbytes from different recorded traces (different
    models and problems), one line each."""
    files = sorted(glob.glob(os.path.join(harness.TRACES, "*.jsonl.gz")))
    if not files:
        raise SystemExit("embed_score: no traces in %s" % harness.TRACES)
    out = []
    for i in range(n):
        with gzip.open(files[i % len(files)], "rt") as f:
            for k, line in enumerate(f):
                if k < i // len(files):
                    continue
                text = json.loads(line)["output"]
                if len(text) >= nbytes:
                    break
        out.append(" ".join(text[:nbytes].split()))
    return out


class EmbedStack:
    """sim + engine (score_probe only) + nginx with thinkgate_embedder."""

    def __init__(self, threads, max_batch):
        self.procs = []
        self.pdir = tempfile.mkdtemp(prefix="tg-bench-plugins-")
        shutil.copy(PROBE, self.pdir)
        try:
            sim = harness.start_sim()
            self.procs.append(sim)
            self.engine = harness.start_engine(plugin_dir=self.pdir)
            self.procs.append(self.engine)
            http = ("    thinkgate_backend b0 %s;\n"
                    "    thinkgate_pool reasoners b0;\n"
                    "    thinkgate_embedder %s threads=%d max_batch=%d;\n"
                    % (sim.url, MODEL, threads, max_batch))
            self.nginx = harness.start_nginx(self.engine.sock, http, SERVER)
            self.procs.append(self.nginx)
            deadline = time.monotonic() + 20
            while self.status().get("engine", {}).get("registrations",
                                                      0) < 2:
                if time.monotonic() > deadline:
                    raise RuntimeError("workers did not register")
                time.sleep(0.05)
        except Exception:
            self.close()
            raise

    def status(self):
        try:
            return json.loads(lib.http_json(self.nginx.port, "GET",
                                            "/thinkgate/status")[1])
        except (OSError, ValueError):
            return {}

    def score(self, texts, kind):
        body = {"model": "m", "thinkgate": {"kind": kind},
                "messages": [{"role": "user", "content": "\n".join(texts)}]}
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port,
                                          timeout=120)
        t0 = time.perf_counter()
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        dt = time.perf_counter() - t0
        conn.close()
        if resp.status != 200:
            raise RuntimeError("score(%s): %d %s" % (kind, resp.status,
                                                     raw[:300]))
        return dt, json.loads(raw)["thinkgate"]

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []
        shutil.rmtree(self.pdir, ignore_errors=True)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def measure(threads=1, calls=20, concurrency=4, max_batch=64):
    texts = trace_prefixes()
    st = EmbedStack(threads, max_batch)
    try:
        st.score(texts, "embed")            # warm: first pages of weights
        before = st.status()["embedder"]
        seq = []
        for _ in range(calls):
            dt, tg = st.score(texts, "embed")
            seq.append(dt * 1000)
        mid = st.status()["embedder"]

        t0 = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(concurrency) as ex:
            list(ex.map(lambda _: st.score(texts, "embed"),
                        range(calls)))
        conc_s = time.perf_counter() - t0
        after = st.status()["embedder"]

        lex = []
        for _ in range(calls):
            dt, _ = st.score(texts, "lexical")
            lex.append(dt * 1000)
    finally:
        st.close()

    d_texts = mid["texts"] - before["texts"]
    d_tokens = mid["tokens"] - before["tokens"]
    c_calls = after["batches"] - mid["batches"]
    return {
        "texts_per_call": TEXTS, "prefix_bytes": PREFIX_BYTES,
        "threads": threads, "device": tg["device"], "calls": calls,
        "word_pieces_per_text": d_tokens / d_texts if d_texts else 0,
        "sequential_ms_mean": sum(seq) / len(seq),
        "sequential_ms_p50": pct(seq, 0.5),
        "sequential_ms_p90": pct(seq, 0.9),
        "sequential_texts_per_s": TEXTS * len(seq) / (sum(seq) / 1000),
        # forward passes of the sequential calls, from the status figures
        "model_ms_per_call": (mid["batch_ms_mean"] * mid["batches"]
                              - before["batch_ms_mean"] * before["batches"])
                             / calls,
        "batch_ms_last": mid["batch_ms_last"],
        "concurrency": concurrency,
        "concurrent_texts_per_s": TEXTS * calls / conc_s,
        "concurrent_texts_per_model_call": (
            (after["texts"] - mid["texts"]) / c_calls if c_calls else 0),
        "lexical_ms_mean": sum(lex) / len(lex),
        "lexical_ms_p50": pct(lex, 0.5),
    }
