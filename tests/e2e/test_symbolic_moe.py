"""symbolic_moe through nginx, with one sim replaying three invented models
(each answers its own number, so an answer tells which model served it)
behind one gateway backend per model (thinkgate_backend ... model=NAME)
and a profile loaded through THINKGATE_MOE_PROFILES: experts land on the
backends of their models, a query without keywords recruits uniformly, a
dead expert backend is replaced by the next expert, a client disconnect
closes every trace.  Also: one sim over all recorded trace files serves
every recorded model by name (issue 12, item 5).

The LLM pools run on the same sim, as two more invented models whose
recordings are their replies: the sim replays the recording of the
problem an instruction wraps, so "annot" answers the annotator's prompt
about PLAIN with keywords and the one about PHYSICS with an answer
(garbage to a keyword parser), and "agg" answers the aggregator's prompt
about PHYSICS with 22 where the experts' vote says 11.  A dead aggregator
pool gives the vote's answer, and the summary says so.
"""
import gzip
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import types

import pytest

import harness
from test_plugins import request, sim_stats, wait_no_open_streams

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import skill_profile  # noqa: E402

PHYSICS = ("A spin-1/2 particle sits in a quantum well. Which eigenstate "
           "has the lowest energy, in units of the well depth?")
PLAIN = "Blip has some blops. Say a number."
SLOW = "Zorp counts flims; a quantum of flims is how many?"
ANSWER = {"A": 11, "B": 22, "C": 33}


def output(tokens, answer):
    think = " ".join("w%d" % k for k in range(tokens - 12))
    return "%s so it is %d.</think>\n\nThe answer is \\boxed{%d}." % (
        think, answer, answer)


# The pools' replies, as recordings: (model, problem, thinking, reply).
POOL_REPLIES = [
    ("annot", PLAIN, "Which fields does this need?",
     "Quantum mechanics, optics"),
    ("annot", PHYSICS, "The lowest level is the ground state.",
     "The answer is \\boxed{11}."),
    ("agg", PHYSICS, "Models 1 to 3 say 11; checking the well depth again.",
     "The experts are wrong: the answer is \\boxed{22}."),
]


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for model, problem, think, reply in POOL_REPLIES:
            f.write(json.dumps({
                "model": model, "bench": "invented", "problem_id": "pool",
                "sample_id": 0, "problem": problem, "answer": None,
                "pred": None, "finish_reason": "STOP",
                "output": think + "</think>\n\n" + reply}) + "\n")
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
    http += "    thinkgate_backend bannot %s model=annot;\n" % sim.url
    http += "    thinkgate_backend bagg %s model=agg;\n" % sim.url
    http += ("    thinkgate_backend deadagg http://127.0.0.1:%d model=agg "
             "connect_timeout=1s;\n" % dead)
    http += "    thinkgate_pool experts bA bB bC;\n"
    http += "    thinkgate_pool halfdead deadA bB bC;\n"
    http += "    thinkgate_pool annotators bannot;\n"
    http += "    thinkgate_pool aggregators bagg;\n"
    http += "    thinkgate_pool deadaggregators deadagg;\n"
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


@harness.needs(None if harness.have_traces() else "no ../shared/traces")
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


# ---- the LLM pools ---------------------------------------------------

def test_annotator_pool_writes_the_keywords(gw):
    # Without it PLAIN has no keyword (uniform); the pool's keywords map
    # onto A's "quantum mechanics", so A answers.
    status, doc = chat(gw, PLAIN, k=3, seed=1, annotator="annotators")
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["annotator"] == "pool annotators", tg
    assert "annotator_fallback" not in tg, tg
    assert tg["keywords"] == ["quantum mechanics", "optics"], tg
    assert tg["mapped"] == {"quantum mechanics": "quantum mechanics"}, tg
    assert tg["recruit"] == "skills", tg
    assert {e["model"] for e in tg["experts"]} == {"A"}, tg
    assert tg["answer"] == "11" and tg["aggregator"] == "vote", tg
    assert tg["aux_tokens"] > 0, tg
    wait_no_open_streams(gw)


@pytest.mark.parametrize("problem,why", [
    (PHYSICS, "no keyword in its reply"),      # it answered instead
    (SLOW, "failed"),                          # the sim has no recording
])
def test_annotator_pool_garbage_or_failure_falls_back(gw, problem, why):
    body = {"model": "any", "seed": 0, "max_tokens": 4000,
            "messages": [{"role": "user", "content": problem}],
            "thinkgate": {"strategy": "symbolic_moe", "k": 1,
                          "annotator": "annotators"}}
    if problem == SLOW:
        body["max_tokens"] = 8       # the experts' traces are long
    status, raw = request(gw, "POST", "/v1/chat/completions", body)
    doc = json.loads(raw)
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["annotator"] == "lexicon", tg
    assert "pool annotators" in tg["annotator_fallback"], tg
    assert why in tg["annotator_fallback"], tg
    if problem == PHYSICS:
        assert tg["keywords"] == ["physics", "quantum mechanics"], tg
    wait_no_open_streams(gw)


def test_aggregator_pool_writes_the_answer(gw):
    status, doc = chat(gw, PHYSICS, k=3, seed=1, aggregator="aggregators")
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["aggregator"] == "pool aggregators", tg
    assert tg["vote_answer"] == "11" and tg["answer"] == "22", tg
    assert [e["answer"] for e in tg["experts"]] == ["11"] * 3, tg
    assert tg["traces_started"] == 4, tg
    msg = doc["choices"][0]["message"]
    assert msg["content"] == "\n\n" + POOL_REPLIES[2][3], msg
    assert doc["model"] == "agg", doc
    wait_no_open_streams(gw)


def test_aggregator_pool_streams_its_answer(gw):
    body = {"model": "any", "seed": 0, "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": PHYSICS}],
            "thinkgate": {"strategy": "symbolic_moe", "k": 2,
                          "aggregator": "aggregators"}}
    status, raw = request(gw, "POST", "/v1/chat/completions", body)
    assert status == 200, raw[:300]
    events = [json.loads(e[6:]) for e in raw.decode().split("\n\n")
              if e.startswith("data: {")]
    reasoning = content = ""
    chunks = 0
    for ev in events:
        for c in ev["choices"]:
            reasoning += c["delta"].get("reasoning_content") or ""
            content += c["delta"].get("content") or ""
            chunks += bool(c["delta"].get("content"))
    assert reasoning == POOL_REPLIES[2][2], reasoning
    assert content == "\n\n" + POOL_REPLIES[2][3], content
    assert chunks > 1, "streamed as it came, not in one piece"
    tg = events[-1]["thinkgate"]
    assert tg["answer"] == "22" and tg["aggregator"] == "pool aggregators"
    wait_no_open_streams(gw)


def test_dead_aggregator_pool_gives_the_vote(gw):
    status, doc = chat(gw, PHYSICS, k=3, seed=1,
                       aggregator="deadaggregators")
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["aggregator"] == "vote", tg
    assert "pool deadaggregators" in tg["aggregator_fallback"], tg
    assert tg["answer"] == "11" == tg["vote_answer"], tg
    assert "\\boxed{11}" in doc["choices"][0]["message"]["content"]
    wait_no_open_streams(gw)


@pytest.mark.parametrize("opt", ["annotator", "aggregator"])
def test_unknown_pool_is_a_400(gw, opt):
    status, doc = chat(gw, PHYSICS, **{opt: "nosuchpool"})
    assert status == 400, doc
    assert "nosuchpool" in doc["error"]["message"], doc


# ---- thinkgate-profile with an LLM annotator ------------------------------

def test_profile_tool_parses_keywords_as_the_plugin():
    # The same cases the plugin's unit test reads.
    with open(os.path.join(ROOT, "tests", "unit", "moe_keywords.json")) as f:
        cases = json.load(f)["cases"]
    assert len(cases) > 10
    for c in cases:
        assert skill_profile.parse_keywords(c["reply"]) == \
            (c["keywords"], c["over"]), c
    assert "List 2-5 short skill keywords" in \
        skill_profile.annotator_instruction()


def run_profile(*args):
    return subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "thinkgate-profile")]
        + list(args), capture_output=True, text=True, timeout=60)


def test_profile_tool_annotates_through_an_endpoint(gw, tmp_path):
    # annot writes keywords for PLAIN, an answer (garbage) for PHYSICS:
    # the lexicon annotates that one, and stderr says so.
    path = tmp_path / "val.jsonl"
    with open(path, "w") as f:
        for model, problem, pred in [("A", PLAIN, 1), ("B", PLAIN, 2),
                                     ("A", PHYSICS, 1)]:
            f.write(json.dumps({"model": model, "bench": "invented",
                                "problem_id": str(len(problem)),
                                "problem": problem, "answer": 1,
                                "pred": pred}) + "\n")
    out = tmp_path / "prof.json"
    r = run_profile("--traces", str(path), "--annotator", gw.sim.url,
                    "--annotator-model", "annot", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert "annotator no keyword in its reply; the lexicon" in r.stderr, \
        r.stderr
    prof = json.loads(out.read_text())
    assert prof["annotator"] == "pool" and prof["annotator_model"] == "annot"
    assert prof["annotator_fallbacks"] == 1, prof
    assert prof["models"]["A"]["skills"] == {
        "quantum mechanics": 2.0, "optics": 1.0, "physics": 1.0}, prof
    assert prof["models"]["B"]["skills"] == {
        "quantum mechanics": -1.0, "optics": -1.0}, prof


@pytest.mark.parametrize("annotator,needle", [
    ("ftp://x", "neither lexicon nor an http(s) URL"),
    ("http://127.0.0.1:1", "cannot list its models"),
])
def test_profile_tool_refuses_a_bad_annotator(tmp_path, annotator, needle):
    path = tmp_path / "val.jsonl"
    path.write_text(json.dumps({"model": "A", "bench": "invented",
                                "problem_id": "1", "problem": PLAIN,
                                "answer": 1, "pred": 1}) + "\n")
    r = run_profile("--traces", str(path), "--annotator", annotator,
                    "-o", str(tmp_path / "p.json"))
    assert r.returncode != 0 and needle in r.stderr, r.stderr
    assert not (tmp_path / "p.json").exists()


def test_symbolic_moe_under_the_responses_api(gw):
    """Issue 16: every strategy under both APIs; symbolic_moe needs its
    profiles, which this fixture's engine has."""
    import openai
    c = openai.OpenAI(base_url="http://127.0.0.1:%d/v1" % gw.nginx.port,
                      api_key="k", max_retries=0, timeout=60)
    extra = {"thinkgate": {"strategy": "symbolic_moe", "k": 3,
                           "samples": 2, "seed": 1}}
    r = c.responses.create(model="any", input=PHYSICS, store=False,
                           max_output_tokens=4000, extra_body=extra)
    tg = r.model_extra["thinkgate"]
    assert tg["strategy"] == "symbolic_moe" and tg["answer"] == "11", tg
    assert all(e["model"] == "A" for e in tg["experts"]), tg
    assert "\\boxed{11}" in r.output_text
    events = list(c.responses.create(model="any", input=PHYSICS,
                                     store=False, max_output_tokens=4000,
                                     stream=True, extra_body=extra))
    assert events[0].type == "response.created"
    assert events[-1].type == "response.completed", events[-1]
    assert "\\boxed{11}" in events[-1].response.output_text
    wait_no_open_streams(gw)
