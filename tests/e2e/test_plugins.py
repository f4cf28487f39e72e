"""Strategy plugins through nginx: ffs and self_consistency against the
sim replaying a trace file written here (known lengths and answers), the
streamed multi-trace shape as the openai client parses it, selection
(body > header > location, refusal when client choice is off, unknown
names and options), the abi_probe plugin that calls every host API entry,
loader refusals, and hot reload under load.

The engine runs with a private --plugin-dir holding copies of
build/plugins/*.so and the test plugins, so that tests can replace files.
"""
import glob
import gzip
import http.client
import json
import os
import shutil
import socket
import tempfile
import threading
import time

import openai
import pytest

import engine_client as ec
import harness

GUIDE = "\n\n**Final Answer**\n"

# Two invented problems, eight samples each: (tokens, answer) per sample.
# With seed 0, trace i replays sample i.
PROBLEMS = {
    "Quux has 3 blorps and finds 4 more zarks. How many now?": [
        (60, 42), (40, 42), (90, 42), (24, 7), (70, 42), (50, 13),
        (80, 42), (100, 7)],
    "Frobnitz owns 9 gizmos and loses half a dozen. What remains?": [
        (30, 5), (55, 5), (45, 9), (65, 5), (35, 9), (75, 5), (85, 5),
        (95, 5)],
}
# Long traces (1.2 s at 3 ms a step) to see keep-alives.
SLOW = "Wibble counts 11 wobbles twice over. Result?"
PROBLEMS[SLOW] = [(400 + 10 * i, 11) for i in range(8)]
A, B = list(PROBLEMS)[:2]


def output(i, tokens, answer):
    think = " ".join("w%d" % k for k in range(tokens - 12))
    return "%s so it is %d.</think>\n\nThe answer is \\boxed{%d}." % (
        think, answer, answer)


def write_traces(path):
    with gzip.open(path, "wt") as f:
        for pid, (problem, samples) in enumerate(PROBLEMS.items()):
            for i, (tokens, answer) in enumerate(samples):
                f.write(json.dumps({
                    "model": "Probe", "bench": "invented",
                    "problem_id": str(pid), "sample_id": i,
                    "problem": problem, "answer": answer, "pred": answer,
                    "completion_tokens": tokens, "finish_reason": "STOP",
                    "output": output(i, tokens, answer)}) + "\n")


SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
        }
        location /off/v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy off;
        }
        location /ffs/v1/ {
            thinkgate_pass reasoners;
            thinkgate_strategy ffs n=8;
            thinkgate_client_strategy on;
        }
        location /sc/v1/ {
            thinkgate_pass reasoners;
            thinkgate_strategy self_consistency n=4;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
        location /thinkgate/admin/ {
            thinkgate_admin;
        }
        location /thinkgate/tokadmin/ {
            thinkgate_admin token_file=ADMIN_TOKEN_FILE;
        }
"""

# The token of /thinkgate/tokadmin/ (thinkgate_admin token_file=).
ADMIN_TOKEN = "tg-admin-" + "k3y" * 6


def make_plugin_dir():
    d = tempfile.mkdtemp(prefix="tg-plugins-")
    for so in glob.glob(os.path.join(harness.BUILD, "plugins", "*.so")):
        shutil.copy(so, d)
    tests = os.path.join(harness.BUILD, "tests", "plugins")
    for name in ("abi_probe", "bad_abi", "no_symbol"):
        shutil.copy(os.path.join(tests, name + ".so"), d)
    return d


def deploy(plugin_dir, name, src):
    """Replaces a plugin the way loader.h asks: a new file renamed over
    the old one."""
    tmp = os.path.join(plugin_dir, ".%s.tmp" % name)
    shutil.copy(src, tmp)
    os.rename(tmp, os.path.join(plugin_dir, name + ".so"))


@pytest.fixture(scope="module")
def gw():
    tdir = tempfile.mkdtemp(prefix="tg-plugin-traces-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    pdir = make_plugin_dir()
    token_file = os.path.join(tdir, "admin.token")
    with open(token_file, "w") as f:
        f.write(ADMIN_TOKEN + "\n")
    g = harness.Gateway(sim_args=["--traces", path, "--step-ms", "3",
                                  "--step-ms-per-seq", "0"],
                        server=SERVER.replace("ADMIN_TOKEN_FILE",
                                              token_file),
                        plugin_dir=pdir)
    g.plugin_dir = pdir
    # Every worker registered, so that no first request meets one still
    # connecting (it would rightly get 503).
    deadline = time.monotonic() + 10
    while status_doc(g)["engine"].get("registrations", 0) < 2:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    yield g
    g.close()
    shutil.rmtree(tdir, ignore_errors=True)
    shutil.rmtree(pdir, ignore_errors=True)


def request(gw, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", gw.nginx.port,
                                      timeout=timeout)
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    conn.request(method, path, body=None if body is None
                 else json.dumps(body), headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def chat(gw, problem, prefix="/v1", headers=None, **extra):
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000,
            "messages": [{"role": "user", "content": problem}]}
    body.update(extra)
    status, raw = request(gw, "POST", prefix + "/chat/completions", body,
                          headers)
    return status, json.loads(raw)


def sim_stats(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.sim.port, timeout=5)
    conn.request("GET", "/sim/stats")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def wait_no_open_streams(gw):
    deadline = time.monotonic() + 3
    while sim_stats(gw)["open_streams"] != 0:
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.02)


def lengths(problem):
    return [t for t, _ in PROBLEMS[problem]]


# ---- ffs and self_consistency ---------------------------------------

@pytest.mark.parametrize("problem,winner,answer", [(A, 3, "7"),
                                                   (B, 0, "5")])
def test_ffs_first_finisher_wins(gw, problem, winner, answer):
    before = sim_stats(gw)
    status, doc = chat(gw, problem, thinkgate={"strategy": "ffs", "n": 8})
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["strategy"] == "ffs"
    assert tg["traces_started"] == 8
    assert tg["traces_cancelled"] == 7
    assert tg["winner"] == winner
    assert tg["answer"] == answer
    win_len = lengths(problem)[winner]
    expect = sum(min(n, win_len) for n in lengths(problem))
    # Cancelled traces may have a chunk or two in flight (more on a
    # slow, sanitized engine).
    assert abs(tg["tokens"] - expect) <= max(16, 0.1 * expect), tg
    msg = doc["choices"][0]["message"]
    assert msg["reasoning_content"] + "</think>" + msg["content"] == \
        output(winner, win_len, int(answer))
    assert doc["usage"]["completion_tokens"] == win_len
    assert doc["choices"][0]["finish_reason"] == "stop"
    wait_no_open_streams(gw)
    after = sim_stats(gw)
    assert after["cancelled_streams"] - before["cancelled_streams"] == 7
    gen = after["tokens_generated"] - before["tokens_generated"]
    assert abs(gen - expect) <= 0.1 * expect, (gen, expect)


@pytest.mark.parametrize("problem,winner,answer,votes", [
    (A, 1, "42", {"42": 5, "7": 2, "13": 1}),
    (B, 0, "5", {"5": 6, "9": 2})])
def test_self_consistency_majority(gw, problem, winner, answer, votes):
    status, doc = chat(gw, problem,
                       thinkgate={"strategy": "self_consistency", "n": 8})
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["strategy"] == "self_consistency"
    assert tg["traces_started"] == 8 and tg["traces_cancelled"] == 0
    assert tg["winner"] == winner and tg["answer"] == answer
    assert tg["votes"] == votes
    assert tg["tokens"] == sum(lengths(problem))
    assert doc["usage"]["completion_tokens"] == lengths(problem)[winner]
    wait_no_open_streams(gw)


def test_self_consistency_early_stop_cancels(gw):
    status, doc = chat(gw, B, thinkgate={"strategy": "self_consistency",
                                          "n": 8, "early_stop": "exact"})
    assert status == 200, doc
    tg = doc["thinkgate"]
    assert tg["answer"] == "5" and tg["winner"] == 0
    assert tg["traces_cancelled"] > 0
    assert tg["tokens"] < sum(lengths(B))
    wait_no_open_streams(gw)


@pytest.mark.parametrize("strategy", ["ffs", "self_consistency"])
def test_client_leaving_an_n8_request_closes_every_trace(gw, strategy):
    """Issue 14: a client that leaves an n=8 request mid-stream, through
    the real engine and nginx: all eight backend streams close at once,
    long before the traces (1.2 s and more) would have ended."""
    wait_no_open_streams(gw)
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000,
            "stream": True, "messages": [{"role": "user", "content": SLOW}],
            "thinkgate": {"strategy": strategy, "n": 8}}
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port))
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
    assert sock.recv(65536).startswith(b"HTTP/1.1 200"), strategy
    deadline = time.monotonic() + 3
    while sim_stats(gw)["open_streams"] < 8:
        assert time.monotonic() < deadline, sim_stats(gw)
        time.sleep(0.005)
    closed_at = time.monotonic()
    sock.close()
    while sim_stats(gw)["open_streams"] > 0:
        assert time.monotonic() - closed_at < 3, sim_stats(gw)
        time.sleep(0.005)
    assert time.monotonic() - closed_at < 0.3


def test_completions_endpoint_ffs(gw):
    body = {"model": "Probe", "seed": 0, "prompt": A, "max_tokens": 4000,
            "thinkgate": {"strategy": "ffs", "n": 8}}
    status, raw = request(gw, "POST", "/v1/completions", body)
    doc = json.loads(raw)
    assert status == 200, doc
    assert doc["object"] == "text_completion"
    assert doc["thinkgate"]["winner"] == 3
    assert doc["choices"][0]["text"] == output(3, 24, 7)
    wait_no_open_streams(gw)


def test_streamed_multi_trace_shape(gw):
    client = openai.OpenAI(base_url=gw.url + "/v1", api_key="k",
                           max_retries=0, timeout=30)
    stream = client.chat.completions.create(
        model="Probe", seed=0, max_tokens=4000, stream=True,
        messages=[{"role": "user", "content": A}],
        extra_body={"thinkgate": {"strategy": "ffs", "n": 8}})
    reasoning, content, finish, last = "", "", None, None
    for chunk in stream:
        last = chunk
        for c in chunk.choices:
            reasoning += (c.delta.model_extra or {}).get(
                "reasoning_content") or ""
            content += c.delta.content or ""
            finish = c.finish_reason or finish
    assert reasoning + "</think>" + content == output(3, 24, 7)
    assert finish == "stop"
    assert last.choices == [] and last.usage.completion_tokens == 24
    tg = last.model_extra["thinkgate"]
    assert tg["winner"] == 3 and tg["strategy"] == "ffs"
    wait_no_open_streams(gw)


def test_streamed_keepalives_while_traces_run(gw):
    body = {"model": "Probe", "seed": 0, "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": SLOW}],
            "thinkgate": {"strategy": "self_consistency", "n": 8}}
    status, raw = request(gw, "POST", "/v1/chat/completions", body)
    assert status == 200
    text = raw.decode()
    assert text.startswith(": keep-alive\n\n"), text[:200]
    events = [e for e in text.split("\n\n") if e.startswith("data: ")]
    assert events[-1] == "data: [DONE]"
    final = json.loads(events[-2][6:])
    assert final["choices"] == [] and final["thinkgate"]["answer"] == "11"


def test_passthrough_streams_live(gw):
    status, doc = chat(gw, B)
    assert status == 200
    assert doc["thinkgate"]["strategy"] == "passthrough"
    assert doc["thinkgate"]["traces_started"] == 1
    assert doc["usage"]["completion_tokens"] == lengths(B)[0]


# ---- selection --------------------------------------------------------

def test_selection_precedence(gw):
    # location default
    status, doc = chat(gw, B, prefix="/sc/v1")
    assert doc["thinkgate"]["strategy"] == "self_consistency"
    assert doc["thinkgate"]["traces_started"] == 4
    # header over location
    status, doc = chat(gw, B, prefix="/sc/v1",
                       headers={"X-Thinkgate-Strategy": "ffs; n=2"})
    assert doc["thinkgate"]["strategy"] == "ffs"
    assert doc["thinkgate"]["traces_started"] == 2
    # body over header; the header's options are for another strategy
    status, doc = chat(gw, B, prefix="/sc/v1",
                       headers={"X-Thinkgate-Strategy": "ffs; n=2"},
                       thinkgate={"strategy": "self_consistency", "n": 3})
    assert doc["thinkgate"]["strategy"] == "self_consistency"
    assert doc["thinkgate"]["traces_started"] == 3
    # body options without a name apply to the location's strategy
    status, doc = chat(gw, B, prefix="/sc/v1", thinkgate={"n": 2})
    assert doc["thinkgate"]["strategy"] == "self_consistency"
    assert doc["thinkgate"]["traces_started"] == 2
    # the location's options do not follow another strategy
    status, doc = chat(gw, B, prefix="/sc/v1", thinkgate={"strategy": "ffs"})
    assert doc["thinkgate"]["traces_started"] == 8
    wait_no_open_streams(gw)


def error_of(status, doc, code):
    assert status == code, doc
    assert set(doc) == {"error"}
    return doc["error"]["message"]


def test_client_choice_refused_when_off(gw):
    msg = error_of(*chat(gw, B, prefix="/off/v1",
                         thinkgate={"strategy": "ffs"}), 400)
    assert "disabled" in msg
    msg = error_of(*chat(gw, B, prefix="/off/v1",
                         headers={"X-Thinkgate-Strategy": "ffs"}), 400)
    assert "disabled" in msg
    status, doc = chat(gw, B, prefix="/off/v1")
    assert status == 200 and doc["thinkgate"]["strategy"] == "passthrough"


@pytest.mark.parametrize("kw,needle", [
    ({"thinkgate": {"strategy": "nonesuch"}}, "nonesuch"),
    ({"headers": {"X-Thinkgate-Strategy": "nonesuch; n=2"}}, "nonesuch"),
    ({"thinkgate": {"strategy": "ffs", "nn": 3}}, "nn"),
    ({"thinkgate": {"strategy": "ffs", "n": 999}}, "n"),
    ({"thinkgate": {"strategy": "self_consistency",
                    "early_stop": "sometimes"}}, "early_stop"),
    ({"thinkgate": {"strategy": "passthrough", "n": 2}}, "n"),
    ({"headers": {"X-Thinkgate-Strategy": "ffs; n"}}, "X-Thinkgate"),
])
def test_bad_selection_is_400_naming_it(gw, kw, needle):
    msg = error_of(*chat(gw, B, **kw), 400)
    assert needle in msg


# A location whose thinkgate_strategy its plugin refuses: the engine
# refuses the whole configuration when a worker registers, naming the
# location, the strategy and why; nginx logs it and answers every request
# 503 with the reason (nginx -t cannot know plugin option tables).
BAD_LOCATIONS = [
    ("no_such_plugin", "no_such_plugin"),
    ("ffs nn=3", "unknown option 'nn'"),
    ("ffs n=0", "'n'"),
    ("ffs reasoning=maybe", "'reasoning'"),
]


def refusal_line(g):
    """The error log's "engine refused registration" line, once nginx has
    logged it (10 s at most)."""
    deadline = time.monotonic() + 10
    log = ""
    while "engine refused registration" not in log:
        assert time.monotonic() < deadline, log[-3000:]
        time.sleep(0.05)
        with open(g.nginx.error_log, errors="replace") as f:
            log = f.read()
    return [ln for ln in log.splitlines()
            if "engine refused registration" in ln][0]


def assert_refused(g, why, prefixes=("/bad/v1", "/good/v1")):
    """Every location answers 503 with the engine's reason; the engine
    itself runs on."""
    for prefix in prefixes:
        deadline = time.monotonic() + 10
        while True:
            msg = error_of(*chat(g, B, prefix=prefix), 503)
            # the other worker may not have had its refusal yet: it says
            # only that the engine is unavailable until then
            if "refused this configuration" in msg \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert "refused this configuration" in msg, msg
        assert why in msg, msg
    assert g.engine.poll() is None


@pytest.mark.parametrize("strategy,why", BAD_LOCATIONS,
                         ids=["unknown_strategy", "unknown_option",
                              "out_of_bounds", "wrong_type"])
def test_location_with_bad_strategy_refused_at_registration(strategy, why):
    server = """
        location /good/v1/ { thinkgate_pass reasoners;
                             thinkgate_strategy ffs n=2; }
        location /bad/v1/ { thinkgate_pass reasoners;
                            thinkgate_strategy %s; }
""" % strategy
    g = harness.Gateway(server=server)
    try:
        line = refusal_line(g)
        assert 'thinkgate_strategy "%s"' % strategy in line, line
        assert "location /bad/v1/ at " in line, line
        assert why in line, line
        assert_refused(g, why)
    finally:
        g.close()


def test_loader_refusals_surface(gw):
    msg = error_of(*chat(gw, B, thinkgate={"strategy": "bad_abi"}), 503)
    assert "bad_abi" in msg and "ABI" in msg.upper()
    msg = error_of(*chat(gw, B, thinkgate={"strategy": "no_symbol"}), 503)
    assert "thinkgate_plugin" in msg
    msg = error_of(*chat(gw, B, thinkgate={"strategy": "../ffs"}), 400)
    assert "strategy" in msg


def test_missing_passthrough_is_503_naming_it():
    empty = tempfile.mkdtemp(prefix="tg-noplugins-")
    engine = harness.start_engine(plugin_dir=empty)
    try:
        w = ec.Worker(engine.sock, ec.config([("b0", "http://127.0.0.1:9")],
                                             {"p": ["b0"]}))
        r = w.call("/v1/chat/completions", {
            "model": "m", "messages": [{"role": "user", "content": "x"}]})
        assert r.status == 503
        assert "passthrough" in json.loads(r.error[1])["error"]["message"]
        w.close()
    finally:
        engine.cleanup()
        shutil.rmtree(empty, ignore_errors=True)


# ---- the ABI probe ------------------------------------------------------

PROBE_CHECKS = {
    "request_info", "state_zeroed", "alloc", "opt_int", "opt_double",
    "opt_bool", "opt_str", "reserved_key", "trace_start_bad_pool",
    "trace_start", "one_live", "trace_count", "trace_at", "trace_info",
    "aux_cancel", "timer_stop", "now_ms", "score", "pool_backends", "kv_get",
    "kv_set", "kv_limits", "emit", "trace_cancel", "trace_continue", "trace_end_done",
    "deltas_tokens", "trace_info_end", "continue_done", "continue_text",
    "aux_result", "timer", "score_async", "score_data", "score_matrix",
    "cancelled_quiet", "finish_trace_not_done", "summary_json",
    "summary_str", "score_kind_bad", "score_kind_no_embedder",
    "aux_start_stop_bad", "aux_start_stop", "aux_finish_reason",
    "counter_add_req"}
PROBE = {"strategy": "abi_probe", "n": 3, "ratio": 0.25, "flag": True,
         "mode": "b"}


def status_doc(gw):
    status, raw = request(gw, "GET", "/thinkgate/status")
    assert status == 200
    return json.loads(raw)


def check_probe(tg):
    got = {k[3:]: v for k, v in tg.items() if k.startswith("ok_")}
    assert set(got) == PROBE_CHECKS, set(got) ^ PROBE_CHECKS
    assert [k for k, v in got.items() if v != 1] == []
    assert tg["winner"] == 0 and tg["traces_started"] == 3
    assert tg["probe"] == {"all": [1, 2, 3]} and tg["answer"] == "probe"
    # counter_add_req(): this request's own count, beside the totals;
    # counter_add() from its start() counts for it too
    assert tg["counters"] == {"abi_probe_req_counted": 3,
                              "abi_probe_requests": 1}


def test_abi_probe_every_entry(gw):
    before = status_doc(gw)["counters"]
    destroyed = before.get("abi_probe_destroyed", 0)
    counted = before.get("abi_probe_req_counted", 0)
    status, doc = chat(gw, A, thinkgate=PROBE)
    assert status == 200, doc
    check_probe(doc["thinkgate"])
    assert doc["choices"][0]["message"]["content"].startswith("[probe]")

    body = {"model": "Probe", "seed": 0, "max_tokens": 4000, "stream": True,
            "messages": [{"role": "user", "content": A}],
            "thinkgate": PROBE}
    status, raw = request(gw, "POST", "/v1/chat/completions", body)
    events = [json.loads(e[6:]) for e in raw.decode().split("\n\n")
              if e.startswith("data: {")]
    check_probe(events[-1]["thinkgate"])
    assert events[0]["choices"][0]["delta"]["content"] == "[probe]"

    wait_no_open_streams(gw)
    time.sleep(0.1)
    counters = status_doc(gw)["counters"]
    assert counters["abi_probe_destroyed"] == destroyed + 2
    # the two requests' counter_add_req() counts, summed in the totals
    assert counters["abi_probe_req_counted"] == counted + 6
    assert "abi_probe_reentered" not in counters
    assert "abi_probe_double_finish" not in counters
    assert "abi_probe_bad_state" not in counters


# ---- admin and hot reload -------------------------------------------------

def admin(gw, method, path):
    status, raw = request(gw, method, "/thinkgate/admin" + path)
    return status, json.loads(raw)


def plugin_entry(gw, name):
    status, doc = admin(gw, "GET", "/plugins")
    assert status == 200, doc
    return next(p for p in doc if p["name"] == name)


def test_admin_list_and_reload(gw):
    before = plugin_entry(gw, "passthrough")["generation"]
    status, doc = admin(gw, "POST", "/plugins/passthrough/reload")
    assert status == 200, doc
    assert doc["name"] == "passthrough" and doc["generation"] == before + 1
    status, doc = admin(gw, "POST", "/plugins/nonesuch/reload")
    assert status == 404 and "nonesuch" in doc["error"]["message"]
    status, doc = admin(gw, "POST", "/plugins/bad_abi/reload")
    assert status == 422 and "ABI" in doc["error"]["message"].upper()
    plugins = status_doc(gw)["plugins"]
    assert any(p["name"] == "ffs" and p["current"] for p in plugins)


def test_admin_refuses_a_long_name_and_shows_no_paths(gw):
    """Issue 14, bug 8: a name over 64 characters was cut and its prefix
    reloaded; it is refused whole.  The list and the errors name plugin
    files without the engine's directory."""
    long_name = "passthrough" + "x" * 60
    status, doc = admin(gw, "POST", "/plugins/%s/reload" % long_name)
    assert status == 400, doc
    assert doc["error"]["code"] == "invalid_plugin_name", doc
    assert "64" in doc["error"]["message"], doc
    status, doc = admin(gw, "GET", "/plugins")
    assert status == 200
    for p in doc:
        assert p["file"] is None or "/" not in p["file"], p
        assert gw.plugin_dir not in json.dumps(p), p
    assert plugin_entry(gw, "ffs")["file"] == "ffs.so"
    deploy(gw.plugin_dir, "ffs",
           os.path.join(harness.BUILD, "tests", "plugins", "no_symbol.so"))
    try:
        status, doc = admin(gw, "POST", "/plugins/ffs/reload")
        assert status == 422, doc
        assert gw.plugin_dir not in doc["error"]["message"], doc
        assert "ffs.so" in doc["error"]["message"], doc
        last = plugin_entry(gw, "ffs")["last_error"]
        assert last and gw.plugin_dir not in last, last
    finally:
        deploy(gw.plugin_dir, "ffs",
               os.path.join(harness.BUILD, "plugins", "ffs.so"))
        admin(gw, "POST", "/plugins/ffs/reload")


@pytest.mark.parametrize("auth", [
    None, "Bearer wrong", ADMIN_TOKEN, "Bearer " + ADMIN_TOKEN[:-1],
    "Bearer " + ADMIN_TOKEN + "x", "Basic " + ADMIN_TOKEN])
def test_admin_token_of_its_own(gw, auth):
    """Issue 14, bug 8: an admin location with token_file= answers only
    "Authorization: Bearer TOKEN" with that file's token; anything else is
    an OpenAI-shaped 401 and reloads nothing."""
    gen = plugin_entry(gw, "passthrough")["generation"]
    hdrs = {} if auth is None else {"Authorization": auth}
    for method, path in (("GET", "/plugins"),
                         ("POST", "/plugins/passthrough/reload")):
        status, raw = request(gw, method, "/thinkgate/tokadmin" + path,
                              headers=hdrs)
        assert status == 401, raw
        err = json.loads(raw)["error"]
        assert err["type"] == "invalid_request_error", err
        assert err["code"] == "invalid_admin_token", err
        assert "thinkgate_admin" in err["message"], err
    assert plugin_entry(gw, "passthrough")["generation"] == gen
    good = {"Authorization": "Bearer " + ADMIN_TOKEN}
    status, raw = request(gw, "GET", "/thinkgate/tokadmin/plugins",
                          headers=good)
    assert status == 200, raw
    assert any(p["name"] == "passthrough" for p in json.loads(raw))
    status, raw = request(gw, "POST",
                          "/thinkgate/tokadmin/plugins/passthrough/reload",
                          headers=good)
    assert status == 200, raw
    assert json.loads(raw)["generation"] == gen + 1


def test_bad_reload_keeps_old_version_serving(gw):
    gen = plugin_entry(gw, "self_consistency")["generation"]
    deploy(gw.plugin_dir, "self_consistency",
           os.path.join(harness.BUILD, "tests", "plugins", "bad_abi.so"))
    try:
        status, doc = admin(gw, "POST", "/plugins/self_consistency/reload")
        assert status == 422
        status, doc = chat(gw, B, thinkgate={"strategy": "self_consistency",
                                             "n": 2})
        assert status == 200 and doc["thinkgate"]["answer"] == "5"
        entry = plugin_entry(gw, "self_consistency")
        assert entry["generation"] == gen and entry["last_error"]
    finally:
        deploy(gw.plugin_dir, "self_consistency",
               os.path.join(harness.BUILD, "plugins", "self_consistency.so"))
        admin(gw, "POST", "/plugins/self_consistency/reload")


def test_periodic_refresh_picks_up_a_new_file(gw):
    gen = plugin_entry(gw, "passthrough")["generation"]
    deploy(gw.plugin_dir, "passthrough",
           os.path.join(harness.BUILD, "plugins", "passthrough.so"))
    deadline = time.monotonic() + 5
    while plugin_entry(gw, "passthrough")["generation"] == gen:
        assert time.monotonic() < deadline, "refresh never happened"
        time.sleep(0.1)


def test_hot_reload_under_load(gw):
    """4 clients loop requests while ffs is replaced and reloaded 20
    times: no request fails, and every replaced version is unloaded once
    its last request ended."""
    gen0 = plugin_entry(gw, "ffs")["generation"]
    stop = threading.Event()
    results, failures = [], []

    def client():
        while not stop.is_set():
            try:
                status, doc = chat(gw, B, thinkgate={"strategy": "ffs",
                                                     "n": 4})
                if status != 200 or doc["thinkgate"]["answer"] != "5":
                    failures.append((status, doc))
                results.append(status)
            except Exception as e:      # noqa: BLE001 - any failure counts
                failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    saw_draining = False
    try:
        for _ in range(20):
            deploy(gw.plugin_dir, "ffs",
                   os.path.join(harness.BUILD, "plugins", "ffs.so"))
            status, doc = admin(gw, "POST", "/plugins/ffs/reload")
            assert status == 200, doc
            saw_draining |= bool(doc.get("draining"))
            time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert len(results) >= 20
    entry = plugin_entry(gw, "ffs")
    # The periodic refresh may have loaded the last file once more.
    assert entry["generation"] >= gen0 + 20
    assert entry["draining"] == [] and entry["refs"] == 0
    assert saw_draining, "no reload ever overlapped a running request"
    wait_no_open_streams(gw)
