"""trimr through nginx with the sim replaying a trace file written here.

The recorded thinking states its answer (13) in its first two thoughts and
then goes on for a long while; with verifier=rule and m=2 it is cut at the
third thought's marker and continued.  The client gets one SSE stream:
the recorded thinking up to the cut, then the continuation's answer (the
sim's continuation rule: the last answer the prefix states).  The sim
shows the first stream cancelled and, after, no open stream.  A client
leaving during a probe (to a pool that never answers) or during a slow
continuation leaves nothing open.
"""
import gzip
import json
import os
import shutil
import socket
import tempfile
import time
import types

import pytest

import harness
from test_plugins import sim_stats, wait_no_open_streams

PROBLEM = "Quux has 6 zims and gets 7 more. How many zims does Quux have?"
SLOW = "Quux loops forever on 5 zims and 8 more. How many zims now?"
FILLER = " ".join("z%d" % k for k in range(400))
THINKING = (
    "Start: 6 + 7 = 13. So the answer is \\boxed{13}.\n\n"
    "Wait, let me double check: six plus seven is 13, \\boxed{13}.\n\n"
    "Hmm, maybe count one by one. " + FILLER + "\n\n"
    "Wait, yes it is 13.")
OUTPUT = THINKING + "</think>\n\nThe answer is \\boxed{13}."
SLOW_OUTPUT = ("Let me see. " + " ".join("y%d" % k for k in range(1500))
               + "\n\nWait, 5 + 8 = 13.</think>\n\n\\boxed{13}")


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for pid, (problem, out) in enumerate([(PROBLEM, OUTPUT),
                                              (SLOW, SLOW_OUTPUT)]):
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


@pytest.fixture(scope="module")
def gw():
    tdir = tempfile.mkdtemp(prefix="tg-trimr-traces-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    mute = harness.start_bad_backend("silent")
    sim = harness.start_sim("--traces", path, "--step-ms", "3",
                            "--step-ms-per-seq", "0")
    http = ("    thinkgate_backend r0 %s max_inflight=1024;\n"
            "    thinkgate_pool reasoners r0;\n"
            "    thinkgate_backend mute0 http://127.0.0.1:%d "
            "connect_timeout=1s idle_timeout=5s;\n"
            "    thinkgate_pool mutepool mute0;\n"
            % (sim.url, mute.server_address[1]))
    g = types.SimpleNamespace(sim=sim, mute=mute, procs=[sim])
    try:
        g.engine = harness.start_engine()
        g.procs.append(g.engine)
        g.nginx = harness.start_nginx(g.engine.sock, http, SERVER)
        g.procs.append(g.nginx)
        harness.wait_registered(g.nginx, 2)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()
        mute.shutdown()
    shutil.rmtree(tdir, ignore_errors=True)


def sse(gw, body):
    """POSTs a streamed chat request; returns the parsed events."""
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port), 30)
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
        "thinkgate": {"strategy": "trimr", "max_thoughts": 0}})
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
                      "verifier_pool": "mutepool", "max_thoughts": 0}},
        lambda: established_to(port) > 0)


def test_client_leaving_during_a_continuation_leaks_nothing(gw):
    before = sim_stats(gw)["requests"]
    # max_thoughts=1 cuts at the first marker, late in the slow trace;
    # the client leaves once the continuation was asked for.
    leave_after(gw, {
        "model": "Trim", "seed": 0, "max_tokens": 4000, "stream": True,
        "messages": [{"role": "user", "content": SLOW}],
        "thinkgate": {"strategy": "trimr", "max_thoughts": 1}},
        lambda: sim_stats(gw)["requests"] - before >= 2)
    assert sim_stats(gw)["tokens_after_close"] == 0
