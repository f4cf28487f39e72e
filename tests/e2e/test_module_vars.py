"""The module against a stand-in engine (fake_engine.py): the END figures
as $thinkgate_* log variables, payloads that must not hurt the worker,
the admin location, and what the REQUEST meta carries."""
import http.client
import json
import os
import time

import pytest

import fake_engine as fe
import harness

pytestmark = harness.needs_module(nginx=False)

FIGURES = {"strategy": "ffs", "traces_started": "8",
           "traces_cancelled": "7", "tokens": "1234", "winner": "3",
           "votes": '{"42":2,"41":1}'}

LOG_FORMAT = ("tg:$thinkgate_request_id|$thinkgate_strategy|"
              "$thinkgate_tokens|$thinkgate_traces_started|"
              "$thinkgate_traces_cancelled|$thinkgate_winner|"
              "$thinkgate_votes|$thinkgate_nosuch|$status")

HTTP = """
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool reasoners b1;
    log_format tg '%s';
""" % LOG_FORMAT

SERVER = """
        access_log {log} tg;
        location /v1/ {{
            thinkgate_pass reasoners;
            thinkgate_strategy ffs n=8;
            thinkgate_session on;
        }}
        location /plain/ {{
            thinkgate_pass reasoners;
        }}
        location /thinkgate/admin/ {{
            thinkgate_admin;
        }}
        location = /thinkgate/status {{
            thinkgate_status;
        }}
"""


class Stack:
    """A fake engine and an nginx (one worker) registered with it."""

    def __init__(self, tmp_path, responder=None, engine=True):
        self.log = str(tmp_path / "tg.log")
        self.engine = fe.FakeEngine(responder) if engine else None
        sock = (self.engine.sock_path if engine
                else str(tmp_path / "absent.sock"))
        self.nginx = harness.start_nginx(sock, HTTP,
                                         SERVER.format(log=self.log),
                                         workers=1)
        if engine:
            assert self.engine.wait_for(lambda: len(self.engine.conns) >= 1)

    def close(self):
        self.nginx.cleanup()
        if self.engine:
            self.engine.close()

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.nginx.port,
                                          timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        raw = resp.read()
        conn.close()
        return resp.status, raw

    def log_lines(self, n, timeout=5.0):
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            if os.path.exists(self.log):
                with open(self.log) as f:
                    lines = [ln.rstrip("\n") for ln in f if ln.strip()]
                if len(lines) >= n:
                    return lines
            time.sleep(0.02)
        raise AssertionError("access log has %d lines, wanted %d"
                             % (len(lines), n))

    def error_log(self):
        with open(self.nginx.error_log, errors="replace") as f:
            return f.read()


@pytest.fixture
def stack(tmp_path, request):
    s = Stack(tmp_path, getattr(request, "param", None))
    yield s
    print("---- nginx error.log ----\n" + s.error_log()[-4000:])
    s.close()


def fields(line):
    assert line.startswith("tg:"), line
    return line[3:].split("|")


def figures_responder(figures):
    return lambda meta, body: fe.json_response({"ok": True}, figures=figures)


@pytest.mark.parametrize("stack", [figures_responder(FIGURES)],
                         indirect=True)
def test_end_figures_become_log_variables(stack):
    status, raw = stack.request("POST", "/v1/chat/completions", b"{}",
                                {"Content-Type": "application/json"})
    assert status == 200, raw
    assert json.loads(raw) == {"ok": True}
    (line,) = stack.log_lines(1)
    rid, strategy, tokens, started, cancelled, winner, votes, nosuch, st = \
        fields(line)
    assert int(rid) >= 1
    assert (strategy, tokens, started, cancelled, winner) == \
        ("ffs", "1234", "8", "7", "3")
    # the access log escapes quotes as \x22
    assert votes.replace("\\x22", '"') == FIGURES["votes"]
    assert nosuch == "-"
    assert st == "200"


@pytest.mark.parametrize("stack", [figures_responder(b"")], indirect=True)
def test_empty_end_payload_logs_dashes(stack):
    status, _ = stack.request("GET", "/v1/models")
    assert status == 200
    (line,) = stack.log_lines(1)
    f = fields(line)
    assert int(f[0]) >= 1
    assert f[1:8] == ["-"] * 7


GARBAGE = [
    b'{"strategy":"ffs","tokens":12}',              # today's JSON
    b"\x00\xff\xfe=\n=\n==\n\n\n",
    b"strategy\ntokens\n",                          # no "="
    b"Strategy=upper\nstr-ategy=dash\n" + b"x" * 70 + b"=long\n",
    b"strategy=first\nstrategy=second\ntokens=7",   # repeat, no last \n
    b"tokens=" + b"9" * 100000,                     # longer than kept
    b"\n".join(b"f%d=%d" % (i, i) for i in range(500)),
    bytes(range(256)) * 8,
]


def garbage_responder(meta, body):
    i = int(meta["uri"].rsplit("/", 1)[1])
    return fe.json_response({"i": i}, figures=GARBAGE[i])


@pytest.mark.parametrize("stack", [garbage_responder], indirect=True)
def test_garbage_end_payloads_do_not_hurt_the_worker(stack):
    for i in range(len(GARBAGE)):
        status, raw = stack.request("GET", "/plain/%d" % i)
        assert status == 200, raw
        assert json.loads(raw) == {"i": i}
    lines = stack.log_lines(len(GARBAGE))
    got = [fields(ln) for ln in lines]
    assert got[0][1:3] == ["-", "-"], "JSON is not NAME=VALUE"
    assert got[2][1:3] == ["-", "-"]
    assert got[3][1] == "-", "names are lowercase [a-z0-9_]{1,64}"
    assert got[4][1:3] == ["first", "7"], "first value wins; last line"
    assert got[5][2] == "-", "a figure past the kept bytes is cut off"
    for f in got:
        assert f[-1] == "200"
    log = stack.error_log()
    assert "signal" not in log, log[-3000:]
    assert "[alert]" not in log, log[-3000:]
    # the same worker is still registered and serving
    assert len(stack.engine.conns) == 1
    assert stack.request("GET", "/plain/4")[0] == 200


def test_figures_do_not_leak_between_requests(tmp_path):
    answers = [FIGURES, b""]

    def responder(meta, body):
        return fe.json_response({}, figures=answers.pop(0))

    s = Stack(tmp_path, responder)
    try:
        assert s.request("GET", "/plain/a")[0] == 200
        assert s.request("GET", "/plain/b")[0] == 200
        first, second = [fields(ln) for ln in s.log_lines(2)]
        assert first[1] == "ffs"
        assert second[1] == "-"
        assert first[0] != second[0]
    finally:
        s.close()


@pytest.mark.parametrize("stack", [lambda meta, body: [
    fe.error(429, {"error": {"message": "budget", "type": "budget",
                             "param": None, "code": None}})]],
    indirect=True)
def test_error_frame_has_no_figures(stack):
    status, raw = stack.request("GET", "/plain/x")
    assert status == 429
    assert json.loads(raw)["error"]["message"] == "budget"
    (line,) = stack.log_lines(1)
    assert fields(line)[1] == "-"


# An ERROR frame without a body (the engine could not render its error):
# the module answers in the same OpenAI shape the engine's errors have,
# as the whole answer or as the stream's last event.
BODYLESS = {"message": "thinkgate engine failed this request without a "
                       "reason", "type": "engine_error", "param": None,
            "code": None}


@pytest.mark.parametrize("stack", [lambda meta, body: [fe.error(503, b"")]],
                         indirect=True)
def test_error_frame_without_a_body_is_an_openai_error(stack):
    status, raw = stack.request("GET", "/plain/x")
    assert status == 503, raw
    assert json.loads(raw) == {"error": BODYLESS}


@pytest.mark.parametrize("stack", [lambda meta, body: [
    fe.head(200, (("Content-Type", "text/event-stream"),), stream=True),
    fe.data('data: {"n": 1}\n\n'), fe.error(502, b"")]], indirect=True)
def test_stream_error_frame_without_a_body_is_its_last_event(stack):
    status, raw = stack.request("POST", "/plain/chat/completions", b"{}")
    assert status == 200, raw
    events = [e for e in raw.decode().split("\n\n") if e]
    assert events[0] == 'data: {"n": 1}', events
    assert events[-1].startswith("data: "), events
    assert json.loads(events[-1][len("data: "):]) == {"error": BODYLESS}


# -- admin -----------------------------------------------------------------

def admin_responder(meta, body):
    if meta["kind"] != "admin":
        return fe.json_response({"kind": meta["kind"]})
    return fe.json_response({"method": meta["method"], "uri": meta["uri"],
                             "args": meta.get("args", ""),
                             "body": body.decode(errors="replace")})


@pytest.mark.parametrize("stack", [admin_responder], indirect=True)
def test_admin_is_forwarded_to_the_engine(stack):
    status, raw = stack.request("GET", "/thinkgate/admin/plugins?x=1")
    assert status == 200, raw
    assert json.loads(raw) == {"method": "GET",
                               "uri": "/thinkgate/admin/plugins",
                               "args": "x=1", "body": ""}

    status, raw = stack.request("POST", "/thinkgate/admin/plugins/ffs/reload",
                                b'{"force":true}',
                                {"Content-Type": "application/json"})
    assert status == 200, raw
    assert json.loads(raw)["body"] == '{"force":true}'

    status, raw = stack.request("DELETE", "/thinkgate/admin/plugins/ffs")
    assert status == 200, raw
    assert json.loads(raw)["method"] == "DELETE"

    metas = [m for m, _ in stack.engine.requests]
    assert [m["kind"] for m in metas] == ["admin"] * 3
    assert all("pool" not in m for m in metas)
    # empty args and no header the engine reads: neither member is sent
    assert metas[0]["args"] == "x=1"
    assert all("args" not in m for m in metas[1:]), metas
    assert all("headers" not in m for m in metas), metas


@pytest.mark.parametrize("stack", [admin_responder], indirect=True)
def test_meta_carries_kind_session_and_strategy(stack):
    assert stack.request("POST", "/v1/chat/completions", b"{}")[0] == 200
    assert stack.request("POST", "/plain/chat/completions", b"{}")[0] == 200
    assert stack.request("GET", "/thinkgate/status")[0] == 200
    # what a location's requests share comes once, in the document's
    # "locations"; each meta names its entry by "loc"
    locs = stack.engine.docs[0]["locations"]
    (m1, _), (m2, _), (m3, _) = [
        (dict(locs[m["loc"]], **m), b) for m, b in stack.engine.requests]
    assert (m1["kind"], m1["pool"], m1["session"], m1["strategy"]) == \
        ("api", "reasoners", True, "ffs n=8")
    assert (m2["kind"], m2["session"]) == ("api", False)
    assert "strategy" not in m2
    assert m3["kind"] == "status"


def test_admin_without_engine_is_503(tmp_path):
    s = Stack(tmp_path, engine=False)
    try:
        for method, body in (("GET", None), ("POST", b"{}")):
            status, raw = s.request(method, "/thinkgate/admin/plugins", body)
            assert status == 503, raw
            err = json.loads(raw)["error"]
            assert err["type"] == "engine_unavailable"
            assert err["message"]
    finally:
        s.close()


def test_real_engine_figures_reach_the_log(tmp_path):
    """The real engine's END figures, through a real strategy and the
    sim, end up in the access log."""
    log = str(tmp_path / "tg.log")
    sim = harness.start_sim("--step-ms", "1", "--step-ms-per-seq", "0")
    engine = nginx = None
    try:
        engine = harness.start_engine()
        http = ("    thinkgate_backend b0 %s max_inflight=64;\n"
                "    thinkgate_pool reasoners b0;\n"
                "    log_format tg '%s';\n" % (sim.url, LOG_FORMAT))
        server = """
        access_log %s tg;
        location /v1/ { thinkgate_pass reasoners; }
""" % log
        nginx = harness.start_nginx(engine.sock, http, server, workers=1)
        body = json.dumps({"model": "thinkgate-sim", "max_tokens": 32,
                           "messages": [{"role": "user",
                                         "content": "What is 17 + 25?"}]})
        deadline = time.monotonic() + 10
        while True:
            conn = http_client(nginx.port)
            conn.request("POST", "/v1/chat/completions", body,
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            if resp.status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)    # the worker is still registering
        assert resp.status == 200
        deadline = time.monotonic() + 5
        while True:
            with open(log) as f:
                lines = [fields(ln.rstrip("\n")) for ln in f if ln.strip()]
            if lines and lines[-1][-1] == "200" or \
                    time.monotonic() > deadline:
                break
            time.sleep(0.02)
        f = lines[-1]
        assert f[-1] == "200"
        assert f[1] == "passthrough", f
        assert f[2].isdigit() and int(f[2]) > 0, f
        # traces_started, traces_cancelled, winner (the engine writes
        # these figures as text for a summary of the host's own only)
        assert f[3:6] == ["1", "0", "0"], f
    finally:
        for p in (nginx, engine, sim):
            if p:
                p.cleanup()


def http_client(port):
    return http.client.HTTPConnection("127.0.0.1", port, timeout=30)
