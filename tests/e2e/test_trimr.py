"""trimr through nginx with the sim replaying a trace file written here.

The recorded thinking states its answer (13) in its first two thoughts and
then goes on for a long while; with verifier=rule and m=2 it is cut at the
third thought's marker and continued.  The client gets one SSE stream:
the recorded thinking up to the cut, then the continuation's answer (the
sim's continuation rule: the last answer the prefix states).  The sim
shows the first stream cancelled and, after, no open stream.  With the
defaults (verifier=probe, m=2) the probes' tokens count in the request's
tokens.  A probe asks for the stop "}" and a reply stopped there (the
stop left out, as vLLM and llama.cpp answer) is read as the box: a
recording backend shows the request and answers "13".  A client
leaving during a probe (to a pool that never answers) or during a slow
continuation leaves nothing open.
"""
import gzip
import http.server
import json
import os
import shutil
import socket
import sys
import tempfile
import threading
import time
import types

import pytest

import harness
from test_plugins import request, sim_stats, wait_no_open_streams

PROBLEM = "Quux has 6 zims and gets 7 more. How many zims does Quux have?"
SLOW = "Quux loops forever on 5 zims and 8 more. How many zims now?"
FILLER = " ".join("z%d" % k for k in range(400))
THINKING = (
    "Start: 6 + 7 = 13. So the answer is \\boxed{13}.\n\n"
    "Wait, let me double check: six plus seven is 13, \\boxed{13}.\n\n"
    "Hmm, maybe count one by one. " + FILLER + "\n\n"
    "Wait, yes it is 13.")
OUTPUT = THINKING + "</think>\n\nThe answer is \\boxed{13}."
LLM = "Quux counts 6 zims and 7 more, again and again. How many zims?"
LLM_OUTPUT = "".join(
    "%s6 + 7 = 13, so the answer is 13. %s\n\n"
    % ("" if k == 0 else "Wait, check again: ",
       " ".join("x%d_%d" % (k, j) for j in range(150)))
    for k in range(10)) \
    + "</think>\n\n\\boxed{13}"
SLOW_OUTPUT = ("Let me see. " + " ".join("y%d" % k for k in range(50))
               + "\n\nWait, more. " + " ".join("y%d" % k for k in range(1500))
               + "\n\nWait, 5 + 8 = 13.</think>\n\n\\boxed{13}")


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for pid, (problem, out) in enumerate([(PROBLEM, OUTPUT),
                                              (SLOW, SLOW_OUTPUT),
                                              (LLM, LLM_OUTPUT)]):
            f.write(json.dumps({
                "model": "Trim", "bench": "invented", "problem_id": str(pid),
                "sample_id": 0, "problem": problem, "answer": 13,
                "pred": 13, "completion_tokens": len(out.split()) + 20,
                "finish_reason": "STOP", "output": out}) + "\n")


SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


class _Recorder(http.server.BaseHTTPRequestHandler):
    """A completions backend that keeps every request (path, body) and
    answers "13" with finish_reason "stop", as vLLM answers a probe that
    reached its stop sequence."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        self.server.seen.append((self.path, json.loads(self.rfile.read(n))))
        body = json.dumps({
            "id": "cmpl-rec", "object": "text_completion", "model": "Trim",
            "choices": [{"index": 0, "text": "13", "logprobs": None,
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 1,
                      "total_tokens": 41}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_recorder():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    srv.seen = []
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def gateway(extra_http="", step_ms="3"):
    tdir = tempfile.mkdtemp(prefix="tg-trimr-traces-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    mute = harness.start_bad_backend("silent")
    rec = start_recorder()
    sim = harness.start_sim("--traces", path, "--step-ms", step_ms,
                            "--step-ms-per-seq", "0")
    http = ("    thinkgate_backend r0 %s max_inflight=1024;\n"
            "    thinkgate_pool reasoners r0;\n"
            "    thinkgate_backend mute0 http://127.0.0.1:%d "
            "connect_timeout=1s idle_timeout=5s;\n"
            "    thinkgate_pool mutepool mute0;\n"
            "    thinkgate_backend rec0 http://127.0.0.1:%d;\n"
            "    thinkgate_pool recpool rec0;\n"
            % (sim.url, mute.server_address[1], rec.server_address[1])) \
        + extra_http
    g = types.SimpleNamespace(sim=sim, mute=mute, rec=rec, procs=[sim])
    try:
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()
        mute.shutdown()
        rec.shutdown()
    shutil.rmtree(tdir, ignore_errors=True)


@pytest.fixture(scope="module")
def gw():
    yield from gateway()


def sse(gw, body, timeout=30):
    """POSTs a streamed chat request; returns the parsed events."""
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port), timeout)
    data = json.dumps(body).encode()
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nConnection: close\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    raw = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        raw += chunk
    sock.close()
    head, _, rest = raw.partition(b"\r\n\r\n")
    assert b" 200 " in head.split(b"\r\n")[0], raw[:500]
    if b"chunked" in head.lower():
        body_bytes, rest2 = b"", rest
        while rest2:
            size, _, rest2 = rest2.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            body_bytes += rest2[:n]
            rest2 = rest2[n + 2:]
        rest = body_bytes
    events = [e for e in rest.decode().split("\n\n") if e.strip()]
    assert events[-1] == "data: [DONE]", events[-3:]
    return [json.loads(e[len("data: "):]) for e in events[:-1]]


def test_trimmed_stream_is_thinking_to_the_cut_then_the_answer(gw):
    before = sim_stats(gw)
    events = sse(gw, {
        "model": "Trim", "seed": 0, "max_tokens": 4000, "stream": True,
        "messages": [{"role": "user", "content": PROBLEM}],
        "thinkgate": {"strategy": "trimr", "verifier": "rule"}})
    thinking = "".join(c["delta"].get("reasoning_content") or ""
                       for e in events for c in e["choices"])
    answer = "".join(c["delta"].get("content") or ""
                     for e in events for c in e["choices"])
    finishes = [c["finish_reason"] for e in events for c in e["choices"]
                if c.get("finish_reason")]
    tg = [e["thinkgate"] for e in events if "thinkgate" in e][-1]
    # One choice, one id, one finish.
    assert {c["index"] for e in events for c in e["choices"]} == {0}
    assert len({e["id"] for e in events}) == 1
    assert finishes == ["stop"], finishes
    assert tg["strategy"] == "trimr" and tg["trigger"] == "overthinking", tg
    assert tg["cuts"] == 1 and tg["no_answer_cuts"] == 0, tg
    assert tg["traces_started"] == 2 and tg["traces_cancelled"] == 1, tg
    assert tg["answer"] == "13", tg
    # The recorded thinking up to the cut (just past "Hmm"), the answer.
    assert OUTPUT.startswith(thinking), thinking[-80:]
    cut = THINKING.index("Hmm")
    assert cut <= len(thinking) < cut + 40, (len(thinking), cut)
    assert answer == "\\boxed{13}", answer
    assert 0 < tg["cut_tokens"] < 60, tg
    wait_no_open_streams(gw)
    after = sim_stats(gw)
    assert after["cancelled_streams"] - before["cancelled_streams"] == 1
    assert after["requests"] - before["requests"] == 2
    # Far fewer tokens than the whole recorded trace.
    assert after["tokens_generated"] - before["tokens_generated"] < 80


def test_probe_tokens_count_in_the_requests_tokens(gw):
    """The defaults (verifier=probe, m=2).  Probes decode on the
    reasoning model: the host counts their completion tokens in the
    thinkgate object's tokens, and apart as aux_tokens, which agree with
    trimr's own verifier_tokens."""
    before = sim_stats(gw)
    status, raw = request(gw, "POST", "/v1/chat/completions", {
        "model": "Trim", "seed": 0, "max_tokens": 4000,
        "messages": [{"role": "user", "content": PROBLEM}],
        "thinkgate": {"strategy": "trimr"}})
    assert status == 200, raw[:300]
    doc = json.loads(raw)
    tg = doc["thinkgate"]
    assert tg["trigger"] == "overthinking" and tg["answer"] == "13", tg
    assert tg["verifier_calls"] >= 2 and tg["verifier_failures"] == 0, tg
    assert tg["aux_tokens"] == tg["verifier_tokens"] > 0, tg
    # The client's usage is its choice's: the thinking to the cut and the
    # continuation; the request's tokens add the probes'.
    assert tg["tokens"] == (doc["usage"]["completion_tokens"]
                            + tg["aux_tokens"]), (tg, doc["usage"])
    wait_no_open_streams(gw)
    after = sim_stats(gw)
    assert tg["tokens"] <= after["tokens_generated"] \
        - before["tokens_generated"], (tg, after)


def test_probe_stops_at_the_closing_brace(gw):
    """Each probe asks its pool for a completion of the trace plus
    '**Final Answer**\\n\\boxed{' with the stop "}", so that the model
    does not write probe_tokens past the box; the reply "13" (stopped,
    the "}" left out) is the box's answer: two agree and the trace is
    cut."""
    del gw.rec.seen[:]
    status, raw = request(gw, "POST", "/v1/chat/completions", {
        "model": "Trim", "seed": 0, "max_tokens": 4000,
        "messages": [{"role": "user", "content": PROBLEM}],
        "thinkgate": {"strategy": "trimr", "verifier": "probe",
                      "verifier_pool": "recpool"}})
    assert status == 200, raw[:300]
    tg = json.loads(raw)["thinkgate"]
    assert tg["trigger"] == "overthinking" and tg["answer"] == "13", tg
    assert tg["verifier_calls"] == len(gw.rec.seen) >= 2, tg
    for path, body in gw.rec.seen:
        assert path == "/v1/completions", path
        assert body["stop"] == ["}"], body
        assert body["max_tokens"] == 20 and body["temperature"] == 0, body
        assert body["prompt"].endswith("**Final Answer**\n\\boxed{"), \
            body["prompt"][-80:]
        assert PROBLEM in body["prompt"], body["prompt"][:200]
    wait_no_open_streams(gw)


def leave_after(gw, body, ready):
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"\r\n%s" % (len(data), data))
    deadline = time.monotonic() + 5
    while not ready():
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.01)
    sock.close()
    deadline = time.monotonic() + 3
    while sim_stats(gw)["open_streams"] or established_to(
            gw.mute.server_address[1]):
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.01)


def established_to(port):
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].split(":")[1], 16) == port:
                n += 1
    return n


def test_client_leaving_during_a_probe_leaks_nothing(gw):
    port = gw.mute.server_address[1]
    leave_after(gw, {
        "model": "Trim", "seed": 0, "max_tokens": 4000, "stream": True,
        "messages": [{"role": "user", "content": SLOW}],
        "thinkgate": {"strategy": "trimr", "verifier": "probe",
                      "verifier_pool": "mutepool"}},
        lambda: established_to(port) > 0)


def test_client_leaving_during_a_continuation_leaks_nothing(gw):
    before = sim_stats(gw)["requests"]
    # max_thoughts=1 cuts at the first marker, late in the slow trace;
    # the client leaves once the continuation was asked for.
    leave_after(gw, {
        "model": "Trim", "seed": 0, "max_tokens": 4000, "stream": True,
        "messages": [{"role": "user", "content": SLOW}],
        "thinkgate": {"strategy": "trimr", "verifier": "rule",
                      "max_thoughts": 1}},
        lambda: sim_stats(gw)["requests"] - before >= 2)
    assert sim_stats(gw)["tokens_after_close"] == 0


MODEL_FILE = harness.SMOLLM_FILE


def _llama_skip_reason():
    return harness.llama_missing(MODEL_FILE)


@harness.needs(_llama_skip_reason(), opt_out="THINKGATE_NO_LLAMA")
def test_llm_verifier_with_llama_cpp():
    """verifier=llm on SmolLM2 served by llama.cpp: real first-token
    logprobs in, Yes/No verdicts out, whatever their quality."""
    port = harness.free_port()
    llama = harness.Proc("llamacpp", [
        sys.executable, "-m", "llama_cpp.server", "--model", MODEL_FILE,
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048",
        "--verbose", "False"])
    llama.start()
    gen = None
    try:
        harness.wait_port(port, timeout=90, proc=llama)
        gen = gateway("    thinkgate_backend small0 http://127.0.0.1:%d "
                      "connect_timeout=5s idle_timeout=60s;\n"
                      "    thinkgate_pool small small0;\n" % port,
                      step_ms="30")  # ~50 s of trace: llama.cpp on a
                                   # loaded CPU takes 1-10 s a call
        g = next(gen)
        events = sse(g, timeout=180, body={
            "model": "Trim", "seed": 0, "max_tokens": 8000, "stream": True,
            "messages": [{"role": "user", "content": LLM}],
            "thinkgate": {"strategy": "trimr", "verifier": "llm",
                          "verifier_pool": "small", "m": 2}})
        tg = [e["thinkgate"] for e in events if "thinkgate" in e][-1]
        print("trimr verifier=llm on SmolLM2: %s" % json.dumps(tg))
        assert tg["verifier"] == "llm"
        assert tg["verifier_calls"] >= 2, tg
        # Every reply carried logprobs with a Yes or a No among them.
        assert tg["verifier_failures"] == 0, tg
        # At least one verdict from real logprobs (how many fit in the
        # trace depends on the machine's load).
        assert tg["verdicts"] >= 1, tg
        assert tg["verifier_tokens"] >= tg["verdicts"], tg
        assert tg["trigger"] in ("overthinking", "none"), tg
        wait_no_open_streams(g)
    finally:
        if gen is not None:
            gen.close()
        llama.cleanup()
