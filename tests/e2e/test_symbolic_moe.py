"""symbolic_moe through nginx, with one sim replaying three invented models
(each answers its own number, so an answer tells which model served it)
behind one gateway backend per model (thinkgate_backend ... model=NAME)
and a profile loaded through THINKGATE_MOE_PROFILES: experts land on the
backends of their models, a query without keywords recruits uniformly, a
dead expert backend is replaced by the next expert, a client disconnect
closes every trace.  Also: one sim over all recorded trace files serves
every recorded model by name (issue 12, item 5).
"""
import gzip
import http.client
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

PHYSICS = ("A spin-1/2 particle sits in a quantum well. Which eigenstate "
           "has the lowest energy, in units of the well depth?")
PLAIN = "Blip has some blops. Say a number."
SLOW = "Zorp counts flims; a quantum of flims is how many?"
ANSWER = {"A": 11, "B": 22, "C": 33}


def output(tokens, answer):
    think = " ".join("w%d" % k for k in range(tokens - 12))
    return "%s so it is %d.</think>\n\nThe answer is \\boxed{%d}." % (
        think, answer, answer)


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for pid, (problem, tokens) in enumerate(
                [(PHYSICS, 40), (PLAIN, 40), (SLOW, 3000)]):
            for model, answer in ANSWER.items():
                for i in range(4):
                    f.write(json.dumps({
                        "model": model, "bench": "invented",
                        "problem_id": str(pid), "sample_id": i,
                        "problem": problem, "answer": answer, "pred": answer,
                        "completion_tokens": tokens + i,
                        "finish_reason": "STOP",
                        "output": output(tokens + i, answer)}) + "\n")


PROFILE = {"format": "thinkgate-profile/1", "annotator": "lexicon",
           "models": {
               "A": {"strength": 0.8, "skills": {"physics": 6,
                                                 "quantum mechanics": 4}},
               "B": {"strength": 0.5, "skills": {"physics": 2}},
               "C": {"strength": 0.9, "skills": {"physics": -3}}}}

SERVER = """
        location /v1/ {
            thinkgate_pass experts;
            thinkgate_client_strategy on;
        }
        location /halfdead/v1/ {
            thinkgate_pass halfdead;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


@pytest.fixture(scope="module")
def gw():
    tdir = tempfile.mkdtemp(prefix="tg-moe-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    prof = os.path.join(tdir, "profile.json")
    with open(prof, "w") as f:
        json.dump(PROFILE, f)
    sim = harness.start_sim("--traces", path, "--step-ms", "3",
                            "--step-ms-per-seq", "0")
    dead = harness.free_port()
    http = "".join("    thinkgate_backend b%s %s model=%s;\n" % (m, sim.url, m)
                   for m in ANSWER)
    http += ("    thinkgate_backend deadA http://127.0.0.1:%d model=A "
             "connect_timeout=1s;\n" % dead)
    http += "    thinkgate_pool experts bA bB bC;\n"
    http += "    thinkgate_pool halfdead deadA bB bC;\n"
    g = types.SimpleNamespace(sim=sim, procs=[sim])
    old = os.environ.get("THINKGATE_MOE_PROFILES")
    os.environ["THINKGATE_MOE_PROFILES"] = prof
    try:
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        if old is None:
            os.environ.pop("THINKGATE_MOE_PROFILES", None)
        else:
            os.environ["THINKGATE_MOE_PROFILES"] = old
        for p in reversed(g.procs):
            p.cleanup()
    shutil.rmtree(tdir, ignore_errors=True)


def chat(gw, problem, headers=None, **tg):
    body = {"model": "any", "seed": 0, "max_tokens": 4000,
            "messages": [{"role": "user", "content": problem}],
            "thinkgate": dict({"strategy": "symbolic_moe"}, **tg)}
    status, raw = request(gw, "POST", "/v1/chat/completions", body,
                          headers=headers)
    return status, json.loads(raw)


def test_experts_land_on_their_models_backends(gw):
    status, doc = chat(gw, PHYSICS, k=3, samples=2, seed=1)
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["strategy"] == "symbolic_moe"
    assert tg["keywords"] == ["physics", "quantum mechanics"], tg
    assert tg["recruit"] == "skills" and tg["score_kind"] == "lexical", tg
    assert tg["traces_started"] == 6, tg
    for e in tg["experts"]:
        assert e["model"] == "A" and e["backend"] == "bA", tg
        assert e["answer"] == "11" and e["traces"] == 2, tg
    assert tg["answer"] == "11"
    assert "\\boxed{11}" in doc["choices"][0]["message"]["content"]
    wait_no_open_streams(gw)


def test_uniform_recruits_and_each_expert_answers_as_its_model(gw):
    seen = set()
    for seed in range(6):
        status, doc = chat(gw, PLAIN, k=3, seed=seed)
        assert status == 200, doc
        tg = doc["thinkgate"]
        assert tg["keywords"] == [] and tg["recruit"] == "uniform", tg
        for e in tg["experts"]:
            assert e["backend"] == "b" + e["model"], tg
            assert e["answer"] == str(ANSWER[e["model"]]), tg
            seen.add(e["model"])
    assert len(seen) >= 2, seen
    wait_no_open_streams(gw)


def test_dead_expert_backend_is_replaced(gw):
    # A is recruited, but the pool's only A backend is dead: B, next by
    # weight, takes over.
    body = {"model": "any", "seed": 0, "max_tokens": 4000,
            "messages": [{"role": "user", "content": PHYSICS}],
            "thinkgate": {"strategy": "symbolic_moe", "k": 1}}
    status, raw = request(gw, "POST", "/halfdead/v1/chat/completions", body)
    doc = json.loads(raw)
    assert status == 200, doc
    tg = doc["thinkgate"]
    e = tg["experts"][0]
    assert e["model"] == "B" and e["replaced"] == "A", tg
    assert e["backend"] == "bB" and e["answer"] == "22", tg
    assert tg["answer"] == "22"
    wait_no_open_streams(gw)


def test_client_disconnect_closes_every_trace(gw):
    body = {"model": "any", "seed": 0, "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": SLOW}],
            "thinkgate": {"strategy": "symbolic_moe", "k": 3, "samples": 2}}
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"\r\n%s" % (len(data), data))
    deadline = time.monotonic() + 3
    while sim_stats(gw)["open_streams"] < 6:
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.01)
    sock.close()
    deadline = time.monotonic() + 2
    while sim_stats(gw)["open_streams"]:
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.01)


@pytest.mark.skipif(not harness.have_traces(), reason="no ../shared/traces")
def test_one_sim_serves_every_recorded_model():
    rows = {}
    for fn in sorted(os.listdir(harness.TRACES)):
        if fn.endswith(".jsonl.gz"):
            with gzip.open(os.path.join(harness.TRACES, fn), "rt") as f:
                r = json.loads(f.readline())
                rows.setdefault(r["model"], r)
    sim = harness.start_sim("--traces", harness.TRACES)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=60)
        conn.request("GET", "/v1/models")
        models = {m["id"] for m in json.loads(conn.getresponse().read())
                  ["data"]}
        assert set(rows) <= models and len(rows) == 8, (rows.keys(), models)
        for model, r in rows.items():
            conn.request("POST", "/v1/chat/completions", body=json.dumps({
                "model": model, "seed": r.get("sample_id", 0),
                "max_tokens": 8, "messages": [
                    {"role": "user", "content": r["problem"]}]}),
                headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            doc = json.loads(resp.read())
            assert resp.status == 200, (model, doc)
            msg = doc["choices"][0]["message"]
            text = (msg.get("reasoning_content") or "") + \
                (msg.get("content") or "")
            assert doc["model"] == model, doc
            assert text.split()[:1] == r["output"].split()[:1], (model, text)
        conn.close()
    finally:
        sim.cleanup()
