"""deepprune through nginx with the sim replaying a trace file written here:
two lines of reasoning (five samples say 42, three say 7), so the lexical
judge's clusters are known; the summary; a dead judge pool that degrades
to plain voting and says so; a client that leaves mid-request closes every
trace (the sim shows 0 open streams) and every judge call (no connection
to the judge pool stays established).
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
from test_plugins import request, sim_stats, wait_no_open_streams

LINES = {42: "w", 7: "q"}
PROBLEM = "Zorp has 6 flims and 7 more. How many flims, times 42 over 13?"
# (tokens, answer) per sample; with seed 0 trace i replays sample i.
SAMPLES = [(60, 42), (70, 7), (80, 42), (90, 42), (65, 7), (75, 42),
           (85, 7), (95, 42)]
# The same two lines, but line 7 is long (its traces end after 1.2 s at
# 3 ms a token): line 42 ends first whatever the load, so early stop is
# decided by its 5 votes alone.
EARLY = "Zorp has 6 flams and 7 more. How many flams, times 42 over 13?"
EARLY_SAMPLES = [(t * 6 if a == 7 else t, a) for t, a in SAMPLES]
SLOW = "Blip counts 400 blops, then 400 more. Which is the count?"
SLOW_SAMPLES = [(600 + 10 * i, 11) for i in range(8)]


def output(tokens, answer, letter):
    think = " ".join("%s%d" % (letter, k) for k in range(tokens - 12))
    return "%s so it is %d.</think>\n\nThe answer is \\boxed{%d}." % (
        think, answer, answer)


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for pid, (problem, samples) in enumerate(
                [(PROBLEM, SAMPLES), (SLOW, SLOW_SAMPLES),
                 (EARLY, EARLY_SAMPLES)]):
            for i, (tokens, answer) in enumerate(samples):
                f.write(json.dumps({
                    "model": "Probe", "bench": "invented",
                    "problem_id": str(pid), "sample_id": i,
                    "problem": problem, "answer": answer, "pred": answer,
                    "completion_tokens": tokens, "finish_reason": "STOP",
                    "output": output(tokens, answer,
                                     LINES.get(answer, "s"))}) + "\n")


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
    tdir = tempfile.mkdtemp(prefix="tg-dp-traces-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    mute = harness.start_bad_backend("silent")
    sim = harness.start_sim("--traces", path, "--step-ms", "3",
                            "--step-ms-per-seq", "0")
    http = ("    thinkgate_backend r0 %s max_inflight=1024;\n"
            "    thinkgate_pool reasoners r0;\n"
            "    thinkgate_backend dead0 http://127.0.0.1:%d "
            "connect_timeout=1s idle_timeout=1s;\n"
            "    thinkgate_pool deadpool dead0;\n"
            "    thinkgate_backend mute0 http://127.0.0.1:%d "
            "connect_timeout=1s idle_timeout=5s;\n"
            "    thinkgate_pool mutepool mute0;\n"
            % (sim.url, harness.free_port(), mute.server_address[1]))
    g = types.SimpleNamespace(sim=sim, mute=mute, procs=[sim])
    try:
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()
        mute.shutdown()
    shutil.rmtree(tdir, ignore_errors=True)


def chat(gw, problem, **tg):
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000,
            "messages": [{"role": "user", "content": problem}],
            "thinkgate": dict({"strategy": "deepprune"}, **tg)}
    status, raw = request(gw, "POST", "/v1/chat/completions", body)
    return status, json.loads(raw)


def test_lexical_prunes_each_line_of_reasoning_to_one_trace(gw):
    # Every survivor to its end, so that both clusters vote.
    status, doc = chat(gw, PROBLEM, n=8, prefix_tokens=20, tau=0.9,
                       early_stop="none")
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["strategy"] == "deepprune"
    assert tg["judge"] == "lexical" and tg["degraded"] is False, tg
    sizes = sorted((c["size"], c["answer"]) for c in tg["clusters"])
    assert sizes == [(3, "7"), (5, "42")], tg
    assert tg["traces_pruned"] == 6 == tg["traces_cancelled"], tg
    assert all(p["tokens"] >= 20 for p in tg["pruned"]), tg
    assert tg["judge_calls"] >= 1 and tg["judge_failures"] == 0, tg
    assert tg["tokens_saved_est"] is None
    assert tg["answer"] == "42", tg
    assert tg["votes"] == {"42": 5, "7": 3}, tg
    # Two traces ran to their end; six stopped near 20 tokens.
    reps = [c["representative"] for c in tg["clusters"]]
    full = sum(SAMPLES[i][0] for i in reps)
    assert full + 6 * 20 <= tg["tokens"] <= full + 6 * 40, tg
    assert "\\boxed{42}" in doc["choices"][0]["message"]["content"]
    wait_no_open_streams(gw)


def test_early_stop_exact_by_default_cancels_the_outvoted_line(gw):
    status, doc = chat(gw, EARLY, n=8, prefix_tokens=20, tau=0.9)
    assert status == 200, doc
    tg = doc["thinkgate"]
    # Line 42's representative (trace 0, 60 tokens) ends with its
    # cluster's 5 votes; line 7's 3 can no longer win: its representative
    # (420+ tokens) is cancelled long before its end and never votes.
    assert tg["answer"] == "42" and tg["votes"] == {"42": 5}, tg
    assert tg["traces_pruned"] == 6 and tg["traces_cancelled"] == 7, tg
    # ... cancelled before half its length (it streams beside trace 0).
    line7 = min(t for t, a in EARLY_SAMPLES if a == 7)
    assert tg["tokens"] < 60 + line7 // 2 + 6 * 40, tg
    wait_no_open_streams(gw)


def test_dead_judge_pool_degrades_to_plain_voting(gw):
    status, doc = chat(gw, PROBLEM, n=8, prefix_tokens=20, judge="llm",
                       judge_pool="deadpool", early_stop="none")
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["degraded"] is True, tg
    assert tg["judge_failures"] >= 1, tg
    assert tg["traces_pruned"] == 0 and tg["traces_cancelled"] == 0, tg
    assert tg["tokens"] == sum(t for t, _ in SAMPLES), tg
    assert tg["votes"] == {"42": 5, "7": 3}, tg
    assert tg["answer"] == "42"
    wait_no_open_streams(gw)


def established_to(port):
    """Established TCP connections to 127.0.0.1:port (client side)."""
    n = 0
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            if fields[3] == "01" and \
                    int(fields[2].split(":")[1], 16) == port:
                n += 1
    return n


def test_client_disconnect_closes_traces_and_judge_calls(gw):
    port = gw.mute.server_address[1]
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": SLOW}],
            "thinkgate": {"strategy": "deepprune", "n": 8,
                          "prefix_tokens": 20, "judge": "llm",
                          "judge_pool": "mutepool",
                          "judge_timeout_ms": 60000}}
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"\r\n%s" % (len(data), data))
    deadline = time.monotonic() + 3
    while established_to(port) == 0:
        assert time.monotonic() < deadline, "no judge call reached the pool"
        time.sleep(0.01)
    assert sim_stats(gw)["open_streams"] >= 1
    sock.close()
    deadline = time.monotonic() + 2
    while sim_stats(gw)["open_streams"] or established_to(port):
        assert time.monotonic() < deadline, (sim_stats(gw),
                                             established_to(port))
        time.sleep(0.01)
