"""Aux requests to real model servers, through nginx + engine: the
aux_probe test plugin answers like passthrough on the sim while it

- asks a judge pool served by llama.cpp (llama-cpp-python's server on
  SmolLM2-135M-Instruct, `bash mk/models.sh smollm2`) a Yes/No question
  with top_logprobs and reports P(Yes) from plugins/common/judge;
- embeds three texts on the sim's /v1/embeddings;
- meets dead aux pools (nothing listening; a server that accepts and never
  answers) and must get an error result promptly while the request still
  answers.

The llama.cpp test skips when the model file or llama-cpp-python[server]
is absent (fails when CI=true, unless THINKGATE_NO_LLAMA=1); the others
need only the build."""
import glob
import http.server
import json
import os
import shutil
import tempfile
import threading
import time
import urllib.request

import pytest

import harness

MODEL_FILE = harness.SMOLLM_FILE


def _llama_skip_reason():
    return harness.llama_missing(MODEL_FILE)


SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


def make_plugin_dir():
    d = tempfile.mkdtemp(prefix="tg-aux-plugins-")
    for so in glob.glob(os.path.join(harness.BUILD, "plugins", "*.so")):
        shutil.copy(so, d)
    shutil.copy(os.path.join(harness.BUILD, "tests", "plugins",
                             "aux_probe.so"), d)
    return d


def start_llama():
    return harness.start_llama(MODEL_FILE, n_ctx=512, timeout=90)


class _Scripted(http.server.BaseHTTPRequestHandler):
    """Answers every POST with the server's current body (200)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        body = self.server.body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_scripted():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    srv.body = "{}"
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


class Stack:
    """sim (reasoners, embeddings) + engine + nginx, and optionally
    llama.cpp as the judge pool; dead pools beside them."""

    def __init__(self, llama=None):
        self.procs = []
        self.pdir = make_plugin_dir()
        self.silent = harness.start_bad_backend("silent")
        self.scripted = start_scripted()
        try:
            self.sim = harness.start_sim("--speed", "0")
            self.procs.append(self.sim)
            http = ("    thinkgate_backend r0 %s max_inflight=64;\n"
                    "    thinkgate_pool reasoners r0;\n"
                    "    thinkgate_backend e0 %s;\n"
                    "    thinkgate_pool embedders e0;\n"
                    "    thinkgate_backend dead0 http://127.0.0.1:%d "
                    "connect_timeout=1s idle_timeout=1s;\n"
                    "    thinkgate_pool deadpool dead0;\n"
                    "    thinkgate_backend mute0 http://127.0.0.1:%d "
                    "connect_timeout=1s idle_timeout=1s;\n"
                    "    thinkgate_pool mutepool mute0;\n"
                    "    thinkgate_backend odd0 http://127.0.0.1:%d;\n"
                    "    thinkgate_pool oddpool odd0;\n"
                    % (self.sim.url, self.sim.url, harness.free_port(),
                       self.silent.server_address[1],
                       self.scripted.server_address[1]))
            if llama is not None:
                # SmolLM2 on two shared cores takes seconds per request.
                http += ("    thinkgate_backend judge0 %s model=smollm2 "
                         "idle_timeout=60s;\n"
                         "    thinkgate_pool judge judge0;\n" % llama.url)
            self.engine = harness.start_engine(plugin_dir=self.pdir)
            self.procs.append(self.engine)
            self.nginx = harness.start_nginx(self.engine.sock, http, SERVER)
            self.procs.append(self.nginx)
            harness.wait_registered(self.nginx, 2)
        except Exception:
            self.close()
            raise

    def ask(self, timeout=120, **opts):
        body = {"model": "thinkgate-sim",
                "messages": [{"role": "user", "content": "What is 6*7?"}],
                "max_tokens": 64,
                "thinkgate": dict({"strategy": "aux_probe"}, **opts)}
        req = urllib.request.Request(
            self.nginx.url + "/v1/chat/completions",
            json.dumps(body).encode(), {"Content-Type": "application/json"})
        t0 = time.monotonic()
        with urllib.request.urlopen(req, timeout=timeout) as r:
            doc = json.loads(r.read())
            assert r.status == 200
        return doc, time.monotonic() - t0

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []
        self.silent.shutdown()
        self.scripted.shutdown()
        shutil.rmtree(self.pdir, ignore_errors=True)


def answered(doc):
    """The live trace reached the client (the sim thinks first)."""
    m = doc["choices"][0]["message"]
    return bool(m.get("content") or m.get("reasoning_content")) and \
        doc["choices"][0]["finish_reason"] in ("stop", "length")


@pytest.fixture(scope="module")
def stack():
    s = Stack()
    yield s
    s.close()


def test_embeddings_aux_on_the_sim(stack):
    doc, _ = stack.ask(embed="embedders")
    tg = doc["thinkgate"]
    assert tg["embed_status"] == 0, tg
    assert tg["embed_n"] == 3 and tg["embed_dim"] == 384
    assert abs(tg["embed_norm0"] - 1) < 1e-4
    # Near-equal texts point the same way, unrelated ones do not.
    assert tg["embed_cos01"] > 0.6 > abs(tg["embed_cos02"])
    assert answered(doc)


@pytest.mark.parametrize("pool", ["deadpool", "mutepool"])
def test_dead_aux_pool_is_an_error_not_a_hang(stack, pool):
    doc, took = stack.ask(timeout=30, embed=pool, judge=pool)
    tg = doc["thinkgate"]
    for p in ("judge", "embed"):
        assert tg[p + "_status"] < 0, tg
        assert tg[p + "_error"], tg
        # connect_timeout/idle_timeout=1s bound it, not the 3 s the mute
        # backend keeps quiet nor any default.
        assert tg[p + "_ms"] < 2900, tg
    if pool == "mutepool":
        assert tg["judge_status"] == -110       # -ETIMEDOUT
    assert took < 10
    assert answered(doc)


def _emb(rows):
    return json.dumps({"object": "list", "model": "m", "data": [
        {"object": "embedding", "index": i, "embedding": e}
        for i, e in rows]})


@pytest.mark.parametrize("body,why", [
    ("{not json", "not JSON"),
    ('{"data": "x"}', 'no "data" array'),
    (_emb([(0, [1, 0]), (1, [0, 1])]), "2 embeddings for 3 inputs"),
    (_emb([(0, [1, 0]), (0, [0, 1]), (2, [1, 1])]), "index"),
    (_emb([(0, [1, 0]), (1, [0, 1]), (7, [1, 1])]), "index"),
    (_emb([(0, [1, 0]), (1, [0, 1, 2]), (2, [1, 1])]), "differ in length"),
    (_emb([(0, [1, 0]), (1, ["a", 1]), (2, [1, 1])]), "non-number"),
    (_emb([(0, []), (1, []), (2, [])]), "1 to 65536"),
])
def test_malformed_embeddings_are_an_error_result(stack, body, why):
    stack.scripted.body = body
    doc, _ = stack.ask(embed="oddpool")
    tg = doc["thinkgate"]
    assert tg["embed_status"] < 0, tg
    assert why in tg["embed_error"], tg
    assert answered(doc)


def test_embeddings_rows_follow_index_not_order(stack):
    stack.scripted.body = _emb([(2, [0, 0, 1]), (0, [1, 0, 0]),
                                (1, [0.6, 0.8, 0])])
    tg = stack.ask(embed="oddpool")[0]["thinkgate"]
    assert tg["embed_status"] == 0, tg
    assert tg["embed_dim"] == 3
    assert tg["embed_cos01"] == pytest.approx(0.6)
    assert tg["embed_cos02"] == pytest.approx(0.0)


@pytest.mark.parametrize("body,status,why", [
    ('{"choices": "x"}', -71, "no choices[0]"),
    ('{"choices": [{"message": {"content": "Yes"}, "logprobs": {"content":'
     ' [{"top_logprobs": [{"token": "Yes", "logprob": "high"}]}]}}]}',
     -71, "top_logprobs entry"),
    # No logprobs at all: success, and the helper says neither was seen.
    ('{"choices": [{"message": {"content": "Yes"}}]}', 0, None),
])
def test_malformed_judge_replies(stack, body, status, why):
    stack.scripted.body = body
    doc, _ = stack.ask(judge="oddpool")
    tg = doc["thinkgate"]
    assert tg["judge_status"] == status, tg
    if why:
        assert why in tg["judge_error"], tg
    else:
        assert tg["judge_ntop"] == 0 and tg["judge_p_yes"] is None
        assert "neither" in tg["judge_p_error"]
    assert answered(doc)


def test_aux_to_an_unknown_pool_fails_at_once(stack):
    doc, _ = stack.ask(embed="nosuchpool")
    tg = doc["thinkgate"]
    assert "nosuchpool" in tg["embed_error"]
    assert "embed_status" not in tg


@harness.needs(_llama_skip_reason(), opt_out="THINKGATE_NO_LLAMA")
def test_judge_p_yes_from_smollm2():
    llama = start_llama()
    s = None
    try:
        s = Stack(llama)
        doc, took = s.ask(judge="judge", top=10,
                          question="Is Paris the capital of France?")
        tg = doc["thinkgate"]
        print("SmolLM2 judge: p_yes=%s ntop=%s %s ms, top=%s, request %.1f s"
              % (tg.get("judge_p_yes"), tg.get("judge_ntop"),
                 tg.get("judge_ms"), json.dumps(tg.get("judge_top")), took))
        assert tg["judge_status"] == 0, tg
        assert tg["judge_http"] == 200
        assert tg["judge_ntop"] >= 2
        p = tg["judge_p_yes"]
        assert p is not None and 0 < p < 1, tg
        # The alternatives are the model's own: Yes and No among them.
        words = {t.strip().lower() for t in tg["judge_top"]}
        assert {"yes", "no"} <= words
        assert tg["judge_content"].strip() in tg["judge_top"] or \
            tg["judge_content"] in tg["judge_top"]
    finally:
        if s is not None:
            s.close()
        llama.cleanup()
