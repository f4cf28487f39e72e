"""score_kind(EMBED) through nginx and the engine with the real
all-MiniLM-L6-v2 (thinkgate_embedder): the score_probe test plugin scores
the request's lines and reports the matrix and device in its thinkgate
summary.  Paraphrases score above unrelated texts; the device is the CPU
here; status figures move; a burst over the queue cap is a clear 503 and
the engine stays up; without the directive the call is a 400 naming it;
device=cuda without a GPU is refused at registration with the reason in
nginx's error log.
"""
import concurrent.futures
import http.client
import json
import os
import shutil
import tempfile
import time

import pytest

import harness

MODEL = os.path.join(harness.BUILD, "models", "all-MiniLM-L6-v2")

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

PARAPHRASES = [
    "The cat sat on the mat.",
    "A cat was sitting on the rug.",
    "Quarterly revenue rose by eight percent.",
    "Sales for the quarter went up 8%.",
]

pytestmark = harness.needs(
    None if os.path.exists(os.path.join(MODEL, "model.safetensors"))
    else "no model: run `make models` (mk/models.sh)")


def have_gpu():
    return os.path.exists("/dev/nvidia0") or shutil.which("nvidia-smi")


def plugin_dir():
    d = tempfile.mkdtemp(prefix="tg-plugins-")
    shutil.copy(os.path.join(harness.BUILD, "tests", "plugins",
                             "score_probe.so"), d)
    return d


def gateway(embedder, engine_env=None):
    pdir = plugin_dir()
    sim = harness.start_sim()
    http = ("    thinkgate_backend b0 %s;\n"
            "    thinkgate_pool reasoners b0;\n" % sim.url)
    if embedder:
        http += "    thinkgate_embedder %s;\n" % embedder
    g = harness.Gateway.__new__(harness.Gateway)
    g.procs = [sim]
    g.sims = [sim]
    g.sim = sim
    try:
        saved = dict(os.environ)
        os.environ.update(engine_env or {})
        try:
            g.engine = harness.start_engine(plugin_dir=pdir)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        g.procs.append(g.engine)
        g.nginx = harness.start_nginx(g.engine.sock, http, SERVER)
        g.procs.append(g.nginx)
        g.url = g.nginx.url
    except Exception:
        g.dump()
        g.close()
        raise
    g.pdir = pdir
    return g


def close(g):
    g.close()
    shutil.rmtree(g.pdir, ignore_errors=True)


def request(g, method, path, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", g.nginx.port,
                                      timeout=timeout)
    conn.request(method, path, None if body is None else json.dumps(body),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, json.loads(raw)


def score(g, texts, kind=None):
    body = {"model": "m", "messages": [{"role": "user",
                                        "content": "\n".join(texts)}]}
    if kind:
        body["thinkgate"] = {"kind": kind}
    return request(g, "POST", "/v1/chat/completions", body)


def wait_registered(g, workers=2):
    deadline = time.monotonic() + 20
    while True:
        try:
            status, doc = request(g, "GET", "/thinkgate/status")
            if status == 200 and doc["engine"]["registrations"] >= workers:
                return doc
        except (OSError, ValueError, KeyError):
            pass
        assert time.monotonic() < deadline, "workers did not register"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def gw():
    g = gateway("%s max_batch=4" % MODEL)
    wait_registered(g)
    yield g
    close(g)


def test_paraphrases_score_higher(gw):
    status, doc = score(gw, PARAPHRASES)
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["device"] == "cpu" and tg["kind"] == "embed"
    assert tg["n"] == 4 and tg["dim"] == 384
    sim = [tg["sim"][i * 4:(i + 1) * 4] for i in range(4)]
    for i in range(4):
        assert abs(sim[i][i] - 1.0) < 1e-3
    # each paraphrase pair above every cross pair
    low = max(sim[0][2], sim[0][3], sim[1][2], sim[1][3])
    assert sim[0][1] > low + 0.2, sim
    assert sim[2][3] > low + 0.2, sim


def test_lexical_kind_still_answers(gw):
    status, doc = score(gw, PARAPHRASES[:2], kind="lexical")
    assert status == 200, doc
    assert doc["thinkgate"]["device"] == "lexical"
    assert doc["thinkgate"]["kind"] == "lexical"


def test_status_figures_move(gw):
    _, before = request(gw, "GET", "/thinkgate/status")
    emb = before["embedder"]
    assert emb["device"] == "cpu" and emb["model"] == MODEL
    assert emb["max_batch"] == 4 and emb["queue_cap"] == 16
    status, _ = score(gw, PARAPHRASES + ["one more", "and another"])
    assert status == 200
    _, after = request(gw, "GET", "/thinkgate/status")
    a, b = before["embedder"], after["embedder"]
    assert b["texts"] == a["texts"] + 6
    assert b["batches"] >= a["batches"] + 2      # 6 texts, 4 per call
    assert b["tokens"] > a["tokens"]
    assert b["batch_ms_last"] > 0 and b["queue_depth"] == 0
    conn = http.client.HTTPConnection("127.0.0.1", gw.nginx.port, timeout=10)
    conn.request("GET", "/thinkgate/status?format=prometheus")
    text = conn.getresponse().read().decode()
    assert 'thinkgate_embed_info{device="cpu"} 1' in text
    assert "thinkgate_embed_texts_total %d" % b["texts"] in text


def test_burst_over_queue_cap_is_a_clear_error(gw):
    long_text = " ".join("word%d reasoning step" % i for i in range(120))
    texts = [long_text + " %d" % i for i in range(8)]
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        got = list(ex.map(lambda _: score(gw, texts), range(16)))
    codes = [s for s, _ in got]
    assert set(codes) <= {200, 503}, codes
    assert 200 in codes and 503 in codes, codes
    busy = [d for s, d in got if s == 503]
    assert all("embedder busy" in d["error"]["message"]
               and "queue cap of 16" in d["error"]["message"]
               for d in busy), busy[0]
    # the engine is alive and answers at once
    status, doc = score(gw, PARAPHRASES[:2])
    assert status == 200, doc
    _, st = request(gw, "GET", "/thinkgate/status")
    assert st["embedder"]["rejected"] >= len(busy)
    assert gw.engine.poll() is None


def test_without_directive_is_400_naming_it():
    g = gateway(None)
    try:
        wait_registered(g)
        status, doc = score(g, PARAPHRASES[:2])
        assert status == 400, doc
        assert "thinkgate_embedder" in doc["error"]["message"]
        _, st = request(g, "GET", "/thinkgate/status")
        assert st["embedder"] is None
        # lexical needs no model
        status, doc = score(g, PARAPHRASES[:2], kind="lexical")
        assert status == 200, doc
    finally:
        close(g)


@pytest.mark.skipif(have_gpu(), reason="a GPU is present")
def test_device_cuda_without_gpu_is_refused_at_registration():
    g = gateway("%s device=cuda" % MODEL)
    try:
        deadline = time.monotonic() + 10
        log = ""
        # Both workers refused (each logs its first refusal), so that
        # whichever takes the request has the engine's reason.
        while log.count("engine refused registration") < 2:
            assert time.monotonic() < deadline, log
            time.sleep(0.05)
            with open(g.nginx.error_log, errors="replace") as f:
                log = f.read()
        assert "engine refused registration" in log
        status, doc = score(g, PARAPHRASES[:2])
        assert status == 503, doc
        msg = doc["error"]["message"]
        assert "refused this configuration" in msg and "device=cuda" in msg
        assert g.engine.poll() is None
    finally:
        close(g)


def long_texts(n, words=150):
    return [" ".join("token%d thought %d" % (i, k) for k in range(words))
            for i in range(n)]


def send_and_leave(g, texts):
    """Sends a score request and closes the connection before the answer:
    nginx cancels the request while its texts are in the model."""
    import socket
    body = json.dumps({"model": "m", "messages": [
        {"role": "user", "content": "\n".join(texts)}]}).encode()
    s = socket.create_connection(("127.0.0.1", g.nginx.port))
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
              % len(body) + body)
    time.sleep(0.05)
    s.close()


def test_client_gone_while_its_batch_runs(gw):
    _, before = request(gw, "GET", "/thinkgate/status")
    for _ in range(3):
        send_and_leave(gw, long_texts(8))
    # the batches finish and their answers are dropped; the engine serves on
    deadline = time.monotonic() + 30
    while True:
        _, st = request(gw, "GET", "/thinkgate/status")
        e = st["embedder"]
        if e["running"] == 0 and e["queue_depth"] == 0 \
                and st["requests"]["in_flight"] == 0:
            break
        assert time.monotonic() < deadline, e
        time.sleep(0.05)
    assert e["texts"] > before["embedder"]["texts"]
    status, doc = score(gw, PARAPHRASES[:2])
    assert status == 200, doc
    assert gw.engine.poll() is None


def test_engine_stops_cleanly_with_a_batch_running():
    g = gateway("%s max_batch=2" % MODEL)
    try:
        wait_registered(g)
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            fut = ex.submit(score, g, long_texts(8))
            deadline = time.monotonic() + 10
            while request(g, "GET", "/thinkgate/status")[1]["embedder"][
                    "running"] == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            g.engine.p.send_signal(15)
            assert g.engine.p.wait(timeout=20) == 0, g.engine.log()
            status, _ = fut.result(timeout=20)
            assert status >= 500
        assert "shutting down" in g.engine.log()
    finally:
        close(g)


FAKE_CUDA = os.path.join(harness.BUILD, "tests", "fake_cuda")


@harness.needs(None if os.path.isdir(FAKE_CUDA)
               else "no CUDA stand-in (tests/unit/fake_cuda.c)")
def test_device_cuda_through_the_engine(gw):
    """device=cuda with build/tests/fake_cuda's stand-in for libcudart and
    libcublas: the engine's cuBLAS path end to end, its device named in the
    answer and status, its matrix the CPU path's within float tolerance."""
    g = gateway("%s device=cuda" % MODEL,
                engine_env={"LD_LIBRARY_PATH": FAKE_CUDA})
    try:
        wait_registered(g)
        status, doc = score(g, PARAPHRASES)
        assert status == 200, doc
        assert doc["thinkgate"]["device"] == "cuda"
        _, st = request(g, "GET", "/thinkgate/status")
        assert st["embedder"]["device"] == "cuda"
        _, cpu = score(gw, PARAPHRASES)
        diff = max(abs(a - b) for a, b in zip(doc["thinkgate"]["sim"],
                                              cpu["thinkgate"]["sim"]))
        assert diff < 1e-4, diff
    finally:
        close(g)
