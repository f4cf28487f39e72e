"""auto's staged sampling (first=K) through nginx with the sim replaying a
trace file written here: the first K traces answer alone when they agree;
a dissent starts the rest, which replay the samples of their own index
(the engine seeds trace i with seed + i whenever it starts); nothing is
left open in the sim either way, nor when the client leaves during the
second stage.
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

AGREE = "Quib has 40 quabs and finds 2. How many quabs now?"
DISSENT = "Snarl owns 3 snarks, then 4 more. How many snarks?"
SLOW = "Blorp stacks 900 blips, then 7 more. Which is the count?"
# (tokens, answer) per sample; with seed 0 trace i replays sample i.
SAMPLES = {
    AGREE: [(60, 42), (70, 42), (400, 42), (80, 7), (90, 7), (95, 7),
            (99, 7), (98, 7)],
    # Sample 1 dissents at 70 tokens; samples 3-7 (all 7) then outvote.
    DISSENT: [(60, 42), (70, 7), (400, 42), (50, 7), (55, 7), (58, 7),
              (62, 7), (64, 7)],
    # The same dissent, then a slow second stage to leave during.
    SLOW: [(60, 42), (70, 7), (900, 42)] + [(900, 7)] * 5,
}

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


def output(tokens, answer):
    think = " ".join("w%d" % k for k in range(tokens - 12))
    return "%s so it is %d.</think>\n\nThe answer is \\boxed{%d}." % (
        think, answer, answer)


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for pid, (problem, samples) in enumerate(SAMPLES.items()):
            for i, (tokens, answer) in enumerate(samples):
                f.write(json.dumps({
                    "model": "Probe", "bench": "invented",
                    "problem_id": str(pid), "sample_id": i,
                    "problem": problem, "answer": answer, "pred": answer,
                    "completion_tokens": tokens, "finish_reason": "STOP",
                    "output": output(tokens, answer)}) + "\n")


@pytest.fixture(scope="module")
def gw():
    tdir = tempfile.mkdtemp(prefix="tg-auto-traces-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    sim = harness.start_sim("--traces", path, "--step-ms", "3",
                            "--step-ms-per-seq", "0")
    http = ("    thinkgate_backend r0 %s max_inflight=1024;\n"
            "    thinkgate_pool reasoners r0;\n" % sim.url)
    g = types.SimpleNamespace(sim=sim, procs=[sim])
    try:
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()
    shutil.rmtree(tdir, ignore_errors=True)


def chat(gw, problem, **tg):
    # A prior of 0.5 over 10 requests: the margin rule, nothing explored.
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000,
            "messages": [{"role": "user", "content": problem}],
            "thinkgate": dict({"strategy": "auto", "n": 8, "explore": 0,
                               "prior": "Probe:0.5"}, **tg)}
    status, raw = request(gw, "POST", "/v1/chat/completions", body)
    return status, json.loads(raw)


def test_first_three_agree_and_answer_alone(gw):
    status, doc = chat(gw, AGREE)
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["auto_mode"] == "margin", tg
    assert tg["auto_started"] == 3, tg
    assert tg["traces_started"] == 3 and tg["traces_cancelled"] == 1, tg
    assert tg["votes"] == {"42": 2} and tg["answer"] == "42", tg
    # Samples 0 and 1 in full, sample 2 until the answer.
    assert 60 + 70 <= tg["tokens"] <= 60 + 70 + 70 + 40, tg
    wait_no_open_streams(gw)


def test_dissent_starts_the_rest_on_their_own_samples(gw):
    status, doc = chat(gw, DISSENT)
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["auto_started"] == 8, tg
    assert tg["traces_started"] == 8, tg
    # Traces 3-7 replay samples 3-7 (all "7"): had they replayed 0-2
    # again, "42" would lead.
    assert tg["answer"] == "7", tg
    assert tg["votes"].get("7", 0) >= 3, tg
    assert "\\boxed{7}" in doc["choices"][0]["message"]["content"]
    wait_no_open_streams(gw)


def test_first_zero_starts_all_at_once(gw):
    status, doc = chat(gw, AGREE, first=0)
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert "auto_started" not in tg, tg
    assert tg["traces_started"] == 8, tg
    assert tg["answer"] == "42", tg
    wait_no_open_streams(gw)


def test_client_gone_in_the_second_stage_closes_every_trace(gw):
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": SLOW}],
            "thinkgate": {"strategy": "auto", "n": 8, "explore": 0,
                          "prior": "Probe:0.5"}}
    before = sim_stats(gw)["requests"]
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"\r\n%s" % (len(data), data))
    deadline = time.monotonic() + 5
    # The dissent at 70 tokens starts traces 3-7: 6 streams open.
    while sim_stats(gw)["open_streams"] < 6:
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.01)
    sock.close()
    wait_no_open_streams(gw)
    time.sleep(0.3)
    st = sim_stats(gw)
    assert st["open_streams"] == 0, st
    assert st["requests"] - before == 8, st
