"""The core path end to end: a real nginx with the thinkgate module, the
real engine and the simulator, driven by the official OpenAI client and by
raw HTTP for the error cases."""
import http.client
import json
import os
import signal
import socket
import time

import openai
import pytest

import harness


def sim_stats(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", "/sim/stats")
    body = json.loads(conn.getresponse().read())
    conn.close()
    return body


def post(url_port, path, body, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=timeout)
    hdrs = {"Content-Type": "application/json"}
    hdrs.update(headers or {})
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    conn.request("POST", path, body=data, headers=hdrs)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def error_of(raw):
    doc = json.loads(raw)
    assert set(doc) == {"error"}, doc
    err = doc["error"]
    assert isinstance(err["message"], str) and err["message"]
    assert "type" in err
    return err


CHAT = {"model": "thinkgate-sim",
        "messages": [{"role": "user", "content": "What is 17 + 25?"}],
        "max_tokens": 64}


def wait_registered(nginx, workers, timeout=10.0):
    """Waits until every nginx worker has registered with the engine, so
    that the first request of a test does not meet a worker still
    connecting (it would rightly get 503)."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port, timeout=5)
        conn.request("GET", "/thinkgate/status")
        doc = json.loads(conn.getresponse().read())
        conn.close()
        if doc["engine"].get("registrations", 0) >= workers:
            return
        assert time.monotonic() < deadline, doc
        time.sleep(0.02)


@pytest.fixture(scope="module")
def gw():
    g = harness.Gateway(sim_args=["--step-ms", "2", "--step-ms-per-seq", "0"])
    wait_registered(g.nginx, 2)
    yield g
    g.close()


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="test-key",
                         max_retries=0, timeout=30)


def test_chat_non_streamed(gw):
    r = client(gw).chat.completions.create(**CHAT)
    assert r.object == "chat.completion"
    assert r.choices[0].finish_reason in ("stop", "length")
    text = (r.choices[0].message.content or "") + \
        (getattr(r.choices[0].message, "reasoning_content", None) or "")
    assert text
    assert r.usage.completion_tokens > 0


def test_chat_streamed(gw):
    stream = client(gw).chat.completions.create(
        stream=True, stream_options={"include_usage": True}, **CHAT)
    pieces, reasoning, finish, usage = [], [], None, None
    for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for c in chunk.choices:
            if c.delta.content:
                pieces.append(c.delta.content)
            rc = (c.delta.model_extra or {}).get("reasoning_content")
            if rc:
                reasoning.append(rc)
            if c.finish_reason:
                finish = c.finish_reason
    assert finish in ("stop", "length")
    assert pieces or reasoning
    assert usage is not None and usage.completion_tokens > 0


def test_completions_both_ways(gw):
    c = client(gw)
    r = c.completions.create(model="thinkgate-sim", prompt="What is 2 + 3?",
                             max_tokens=16)
    assert r.object == "text_completion"
    assert r.choices[0].text
    n = 0
    for chunk in c.completions.create(model="thinkgate-sim",
                                      prompt="What is 2 + 3?",
                                      max_tokens=16, stream=True):
        n += len(chunk.choices)
    assert n > 0


def test_models(gw):
    models = [m.id for m in client(gw).models.list()]
    assert models


def status_doc(gw, args=""):
    conn = http.client.HTTPConnection("127.0.0.1", gw.nginx.port, timeout=5)
    conn.request("GET", "/thinkgate/status" + args)
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    assert resp.status == 200, raw
    return raw if args else json.loads(raw)


def test_status_json_and_prometheus(gw):
    """The counters move by exactly what was sent: one answered request,
    one refused (400), and the Prometheus text says the same numbers."""
    doc = status_doc(gw)
    assert doc["engine"]["connected"] is True
    before = doc["requests"]
    b0 = next(b for b in doc["backends"] if b["name"] == "b0")
    status, raw = post(gw.nginx.port, "/v1/chat/completions", CHAT)
    assert status == 200, raw
    status, raw = post(gw.nginx.port, "/v1/chat/completions",
                       dict(CHAT, n=0))
    assert status == 400, raw
    doc = status_doc(gw)
    after = doc["requests"]
    assert after["total"] == before["total"] + 2, (before, after)
    assert after["errors"] == before["errors"] + 1, (before, after)
    assert after["in_flight"] == 0, after
    b0_after = next(b for b in doc["backends"] if b["name"] == "b0")
    assert b0_after["requests"] == b0["requests"] + 1, (b0, b0_after)
    text = status_doc(gw, "?format=prometheus").decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    assert values["thinkgate_engine_connected"] == 1
    # the status request above is not an API request: the same totals
    assert values["thinkgate_requests_total"] == after["total"]
    assert values["thinkgate_requests_errors_total"] == after["errors"]
    assert values['thinkgate_backend_requests_total{backend="b0"}'] \
        == b0_after["requests"]


def test_prometheus_text_parses_with_a_real_parser(gw):
    """Issue 14: the Prometheus text as the official Python client's
    parser reads it (a scrape that parses by eye can still be refused):
    every family once, typed, and the per-backend series labelled."""
    parser = harness.import_or_missing("prometheus_client.parser")
    status, raw = post(gw.nginx.port, "/v1/chat/completions", CHAT)
    assert status == 200, raw
    text = status_doc(gw, "?format=prometheus").decode()
    families = list(parser.text_string_to_metric_families(text))
    names = [f.name for f in families]
    assert len(names) == len(set(names)), sorted(names)
    by_name = {f.name: f for f in families}
    for name, kind in (("thinkgate_engine_connected", "gauge"),
                       ("thinkgate_requests", "counter"),
                       ("thinkgate_requests_in_flight", "gauge"),
                       ("thinkgate_backend_requests", "counter"),
                       ("thinkgate_backend_in_flight", "gauge")):
        assert by_name[name].type == kind, (name, by_name[name].type)
        assert by_name[name].documentation, name
    series = {s.labels.get("backend"): s.value
              for s in by_name["thinkgate_backend_requests"].samples
              if s.name == "thinkgate_backend_requests_total"}
    assert series.get("b0", 0) >= 1, series
    assert by_name["thinkgate_requests"].samples[0].value >= 1


def test_api_key_env_end_to_end_and_the_client_key_never_forwarded():
    """Issue 14: through nginx and the real engine, a backend with
    api_key_env= gets the operator's key from the engine's environment,
    one without gets no Authorization at all, and the client's own
    Authorization reaches neither, streamed or not."""
    keyed = harness.start_bad_backend("record")
    plain = harness.start_bad_backend("record")
    os.environ["THINKGATE_E2E_BACKEND_KEY"] = "sk-operator-secret"
    http = ("    thinkgate_backend keyed http://127.0.0.1:%d "
            "model=thinkgate-sim api_key_env=THINKGATE_E2E_BACKEND_KEY;\n"
            "    thinkgate_backend plain http://127.0.0.1:%d "
            "model=thinkgate-sim;\n"
            "    thinkgate_pool keyed keyed;\n"
            "    thinkgate_pool plain plain;\n"
            % (keyed.server_address[1], plain.server_address[1]))
    server = """
        location /keyed/v1/ { thinkgate_pass keyed; }
        location /plain/v1/ { thinkgate_pass plain; }
        location = /thinkgate/status { thinkgate_status; }
"""
    g = None
    try:
        g = harness.Gateway(http=http, server=server)
        wait_registered(g.nginx, 2)
        for prefix, srv, want in (("/keyed", keyed,
                                   "Bearer sk-operator-secret"),
                                  ("/plain", plain, None)):
            for stream in (False, True):
                status, raw = post(g.nginx.port,
                                   prefix + "/v1/chat/completions",
                                   dict(CHAT, stream=stream),
                                   {"Authorization": "Bearer client-own"})
                assert status == 200, raw
                assert srv.seen and srv.seen[-1] == want, srv.seen
        assert len(keyed.seen) >= 2 and len(plain.seen) >= 2
    finally:
        if g is not None:
            g.close()
        keyed.shutdown()
        plain.shutdown()
        del os.environ["THINKGATE_E2E_BACKEND_KEY"]


def test_one_stalled_trace_among_many_is_cut_by_the_timeout():
    """Issue 14: a self_consistency n=4 request over a pool where one
    backend stalls: thinkgate_timeout (1 s) cuts the stalled traces,
    counted as that backend's errors, and the request answers from the
    others after about a second, not when the silent backend gives up
    (3 s) nor at the deadline."""
    silent = harness.start_bad_backend("silent")
    sim = harness.start_sim("--step-ms", "2", "--step-ms-per-seq", "0")
    http = ("    thinkgate_backend b0 %s;\n"
            "    thinkgate_backend silent http://127.0.0.1:%d;\n"
            "    thinkgate_pool mixed b0 silent;\n"
            % (sim.url, silent.server_address[1]))
    server = """
        location /v1/ {
            thinkgate_pass mixed; thinkgate_timeout 1s;
            thinkgate_strategy self_consistency n=4;
        }
        location = /thinkgate/status { thinkgate_status; }
"""
    engine = harness.start_engine()
    nginx = harness.start_nginx(engine.sock, http, server)
    try:
        wait_registered(nginx, 2)
        t0 = time.monotonic()
        status, raw = post(nginx.port, "/v1/chat/completions", CHAT)
        elapsed = time.monotonic() - t0
        assert status == 200, raw
        assert 0.9 <= elapsed < 2.5, elapsed
        tg = json.loads(raw)["thinkgate"]
        assert tg["traces_started"] == 4, tg
        backends = {b["name"]: b
                    for b in status_of(nginx.port)["backends"]}
        stalled = backends["silent"]
        assert stalled["requests"] >= 1, backends
        assert stalled["errors"] == stalled["requests"], stalled
        assert stalled["in_flight"] == 0, stalled
        assert backends["b0"]["requests"] + stalled["requests"] == 4
        assert backends["b0"]["errors"] == 0, backends["b0"]
    finally:
        nginx.cleanup()
        engine.cleanup()
        sim.cleanup()
        silent.shutdown()


def status_of(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/thinkgate/status")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def test_nginx_reload_keeps_streams_in_flight():
    """Issue 14: nginx -s reload (SIGHUP to the master) while a stream
    runs: the old worker keeps serving it to [DONE] (it must not exit
    with a request in flight), and the new workers register and answer."""
    g = harness.Gateway(sim_args=["--step-ms", "20",
                                  "--step-ms-per-seq", "0"])
    try:
        wait_registered(g.nginx, 2)
        sock, got = harness.open_stream(
            g.nginx.port, dict(CHAT, stream=True, max_tokens=4000, seed=7))
        os.kill(g.nginx.p.pid, signal.SIGHUP)
        time.sleep(1.0)
        # the stream outlived the reload's start (so the test means it)
        assert sim_stats(g.sim)["open_streams"] == 1, sim_stats(g.sim)
        while not got.endswith(b"\r\n0\r\n\r\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        sock.close()
        events = [ln[6:] for ln in got.decode().split("\n")
                  if ln.startswith("data: ")]
        assert events[-1].strip() == "[DONE]", events[-3:]
        assert not any(b'"error"' in e.encode() for e in events), events
        wait_registered(g.nginx, 2)
        for _ in range(5):
            status, raw = post(g.nginx.port, "/v1/chat/completions", CHAT)
            assert status == 200, raw
    finally:
        g.close()


@pytest.mark.parametrize("body,param", [
    (b"{not json", None),
    (b"[1, 2]", None),
    ({"model": "m"}, "messages"),
    ({"model": "m", "messages": "hi"}, "messages"),
    ({"model": "m", "messages": [{"role": 1, "content": "x"}]}, "messages"),
    ({"model": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "n": 0}, "n"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "stream": "yes"}, "stream"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "temperature": 9}, "temperature"),
    ({"model": "m", "messages": [{"role": "user", "content": "x"}],
      "max_tokens": -3}, "max_tokens"),
])
def test_bad_chat_input_is_400(gw, body, param):
    status, raw = post(gw.nginx.port, "/v1/chat/completions", body)
    assert status == 400, raw
    err = error_of(raw)
    if param:
        assert param in (err.get("param") or "") + err["message"]


def test_completions_without_prompt_is_400(gw):
    status, raw = post(gw.nginx.port, "/v1/completions", {"model": "m"})
    assert status == 400
    assert "prompt" in json.dumps(error_of(raw))


def test_unknown_endpoint_is_404(gw):
    status, raw = post(gw.nginx.port, "/v1/embeddingz", CHAT)
    assert status == 404
    error_of(raw)


# Issue 14, bug 8: a user message without content was accepted.
def test_user_message_without_content_is_400(gw):
    body = dict(CHAT, messages=[{"role": "system", "content": "Be brief."},
                                {"role": "user"}])
    status, raw = post(gw.nginx.port, "/v1/chat/completions", body)
    assert status == 400, raw
    err = error_of(raw)
    assert err["param"] == "messages[1].content", err
    assert err["code"] == "missing_required_parameter", err
    assert "messages[1].content" in err["message"], err


# Issue 14, bug 8: any path ending in /chat/completions was served.
@pytest.mark.parametrize("path", ["/v1/x/chat/completions",
                                  "/v1/anything/completions",
                                  "/v1/v2/chat/completions",
                                  "/v1/foo/models"])
def test_only_openai_paths_are_served(gw, path):
    status, raw = post(gw.nginx.port, path, CHAT)
    assert status == 404, raw
    err = error_of(raw)
    assert err["code"] == "unknown_url", err
    assert path in err["message"], err
    # the same request on the real path is served
    status, raw = post(gw.nginx.port, "/v1/chat/completions", CHAT)
    assert status == 200, raw


def test_gateway_still_serves_after_bad_input(gw):
    for _ in range(3):
        post(gw.nginx.port, "/v1/chat/completions", b"\x00\xff{")
    r = client(gw).chat.completions.create(**CHAT)
    assert r.choices


def test_client_disconnect_stops_backend(gw):
    """A client that leaves mid-stream: the sim sees its stream closed
    within 100 ms and generates next to nothing afterwards."""
    sock, got = harness.open_stream(
        gw.nginx.port, dict(CHAT, stream=True, max_tokens=4000), events=5)
    assert sim_stats(gw.sim)["open_streams"] >= 1
    closed_at = time.monotonic()
    sock.close()
    while True:
        st = sim_stats(gw.sim)
        if st["open_streams"] == 0:
            break
        assert time.monotonic() - closed_at < 2.0, st
        time.sleep(0.005)
    elapsed = time.monotonic() - closed_at
    assert elapsed < 0.1, elapsed
    time.sleep(0.1)
    assert sim_stats(gw.sim)["tokens_after_close"] <= 16


@pytest.fixture(scope="module")
def faulty():
    err500 = harness.start_bad_backend("500")
    silent = harness.start_bad_backend("silent")
    garbage = harness.start_bad_backend("garbage")
    badchoices = harness.start_bad_backend("badchoices")
    dead = harness.free_port()
    http_conf = (
        "    thinkgate_backend e500 http://127.0.0.1:%d;\n"
        "    thinkgate_backend silent http://127.0.0.1:%d;\n"
        "    thinkgate_backend dead http://127.0.0.1:%d connect_timeout=1s;\n"
        "    thinkgate_backend garbage http://127.0.0.1:%d;\n"
        "    thinkgate_backend badchoices http://127.0.0.1:%d;\n"
        "    thinkgate_pool p500 e500;\n"
        "    thinkgate_pool psilent silent;\n"
        "    thinkgate_pool pdead dead;\n"
        "    thinkgate_pool pgarbage garbage;\n"
        "    thinkgate_pool pbadchoices badchoices;\n"
        % (err500.server_address[1], silent.server_address[1], dead,
           garbage.server_address[1], badchoices.server_address[1]))
    server = """
        location /garbage/v1/ { thinkgate_pass pgarbage; }
        location /garbage/ffs/v1/ {
            thinkgate_pass pgarbage; thinkgate_strategy ffs n=2;
        }
        location /badchoices/v1/ { thinkgate_pass pbadchoices; }
        location /badchoices/ffs/v1/ {
            thinkgate_pass pbadchoices; thinkgate_strategy ffs n=2;
        }
        location /e500/v1/ { thinkgate_pass p500; }
        location /silent/v1/ { thinkgate_pass psilent; thinkgate_timeout 1s; }
        location /silent/ffs/v1/ {
            thinkgate_pass psilent; thinkgate_timeout 1s;
            thinkgate_strategy ffs n=2;
        }
        location /e500/ffs/v1/ {
            thinkgate_pass p500; thinkgate_strategy ffs n=2;
        }
        location /dead/v1/ { thinkgate_pass pdead; }
        location /small/v1/ { thinkgate_pass p500; thinkgate_max_body 1k; }
        location = /thinkgate/status { thinkgate_status; }
"""
    engine = harness.start_engine()
    nginx = harness.start_nginx(engine.sock, http_conf, server)
    wait_registered(nginx, 2)
    yield nginx
    nginx.cleanup()
    engine.cleanup()
    for b in (err500, silent, garbage, badchoices):
        b.shutdown()


# Issue 14, bug 5: garbage is a 502 naming the backend, never an empty
# answer, in all 8 combinations.
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("path", ["/garbage/v1/", "/garbage/ffs/v1/",
                                  "/badchoices/v1/", "/badchoices/ffs/v1/"])
def test_garbage_from_a_backend_is_502(faulty, path, stream):
    status, raw = post(faulty.port, path + "chat/completions",
                       dict(CHAT, stream=stream))
    assert status == 502, raw
    backend = path.split("/")[1]
    assert ('Backend "%s"' % backend) in error_of(raw)["message"], raw


def test_backend_5xx_is_502_with_its_message(faulty):
    status, raw = post(faulty.port, "/e500/v1/chat/completions", CHAT)
    assert status == 502
    assert "CUDA OOM" in error_of(raw)["message"]


def test_dead_backend_is_502(faulty):
    status, raw = post(faulty.port, "/dead/v1/chat/completions", CHAT)
    assert status == 502
    error_of(raw)


def test_silent_backend_is_504(faulty):
    t0 = time.monotonic()
    status, raw = post(faulty.port, "/silent/v1/chat/completions", CHAT)
    assert status == 504
    error_of(raw)
    assert time.monotonic() - t0 < 2.9


# Issue 14, bug 8: when every trace of a multi-trace strategy fails, the
# client hears it as passthrough says it, with OpenAI's types: 504
# timeout_error backend_timeout for silent backends (it was 502 with the
# type "backend_error" and code null), 502 server_error for a 5xx.
@pytest.mark.parametrize("stream", [False, True])
def test_every_ffs_trace_failing_is_typed_like_passthrough(faulty, stream):
    def failure(path):
        status, raw = post(faulty.port, path, dict(CHAT, stream=stream))
        if stream and status == 200:
            # keep-alive comments went out first (a loaded machine can
            # delay the timeout past the first one): the error ends the
            # stream
            last = raw.decode().strip().split("\n\n")[-1]
            assert last.startswith("data: "), raw
            return json.loads(last[len("data: "):])["error"]
        assert status == 504, raw
        return error_of(raw)

    one = failure("/silent/v1/chat/completions")
    assert one["type"] == "timeout_error", one
    assert one["code"] == "backend_timeout", one
    err = failure("/silent/ffs/v1/chat/completions")
    assert err["type"] == "timeout_error", err
    assert err["code"] == "backend_timeout", err
    assert "all 2 traces failed" in err["message"], err

    status, raw = post(faulty.port, "/e500/ffs/v1/chat/completions", CHAT)
    assert status == 502, raw
    err = error_of(raw)
    assert err["type"] == "server_error", err
    assert err["code"] == "backend_error", err
    assert "CUDA OOM" in err["message"], err


def test_body_over_max_is_413(faulty):
    big = dict(CHAT, messages=[{"role": "user", "content": "x" * 4000}])
    status, raw = post(faulty.port, "/small/v1/chat/completions", big)
    assert status == 413
    error_of(raw)


def test_engine_restart(gw):
    """Engine killed mid-stream: that client gets an error; the next
    request gets 503 at once; once the engine is back, requests succeed
    without touching nginx."""
    c = client(gw)
    stream = c.chat.completions.create(stream=True,
                                       **dict(CHAT, max_tokens=4000))
    it = iter(stream)
    next(it)
    gw.engine.kill()
    with pytest.raises(Exception):
        for _ in it:
            pass
    t0 = time.monotonic()
    status, raw = post(gw.nginx.port, "/v1/chat/completions", CHAT)
    assert status == 503
    assert "engine" in error_of(raw)["message"]
    assert time.monotonic() - t0 < 1.0
    gw.restart_engine()
    deadline = time.monotonic() + 10
    while True:
        status, raw = post(gw.nginx.port, "/v1/chat/completions", CHAT)
        if status == 200:
            break
        assert status == 503, raw
        assert time.monotonic() < deadline, "worker never reconnected"
        time.sleep(0.1)
    assert json.loads(raw)["choices"]
    # Every worker must come back, not just one: both register again,
    # then every request is answered, whichever worker takes it.
    wait_registered(gw.nginx, 2)
    for _ in range(10):
        status, raw = post(gw.nginx.port, "/v1/chat/completions", CHAT)
        assert status == 200, raw


def raw_request(port, path, headers):
    """One POST written byte for byte (http.client refuses these bytes);
    returns (status, body)."""
    body = json.dumps(CHAT).encode()
    req = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
    req += b"Content-Type: application/json\r\n"
    req += b"Content-Length: %d\r\n" % len(body)
    for k, v in headers:
        req += k + b": " + v + b"\r\n"
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(req + b"\r\n" + body)
    out = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        out += chunk
    s.close()
    head, _, rest = out.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    if b"chunked" in head.lower():
        data, rest = b"", rest
        while True:
            size, _, rest = rest.partition(b"\r\n")
            n = int(size, 16)
            if n == 0:
                break
            data, rest = data + rest[:n], rest[n + 2:]
        rest = data
    return status, rest


# Issue 14, bug 4: a surrogate encoded in UTF-8 (ED A0 80) in a header or
# the URI is the client's mistake: 400 in OpenAI's shape, nothing internal.
SURROGATE = b"\xed\xa0\x80"


@pytest.mark.parametrize("where", [
    b"X-Request-Id", b"Authorization", b"X-Thinkgate-Session",
    b"X-Thinkgate-Strategy", b"uri"])
def test_surrogate_in_a_header_or_the_uri_is_400(gw, where):
    if where == b"uri":
        st, raw = raw_request(gw.nginx.port,
                              b"/v1/%ED%A0%80/chat/completions", [])
    else:
        value = (b"Bearer " if where == b"Authorization" else b"") + \
            SURROGATE
        st, raw = raw_request(gw.nginx.port, b"/v1/chat/completions",
                              [(where, value)])
    assert st == 400, raw
    err = error_of(raw)
    assert err["type"] == "invalid_request_error", err
    assert err["code"] == "invalid_encoding", err
    assert "meta" not in err["message"] and "decode" not in \
        err["message"], err


class _ResetSecondRequest:
    """A backend that keeps its first connection alive after one answer,
    reads the second request sent on it and resets the connection (RST,
    no byte of an answer); every later connection is served normally."""

    ANSWER = (b'data: {"choices":[{"index":0,"delta":{"content":"ok"},'
              b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,'
              b'"completion_tokens":1,"total_tokens":4}}\n\n'
              b'data: [DONE]\n\n')

    def __init__(self):
        import threading
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.resets = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import threading
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve,
                             args=(conn, self.connections == 1),
                             daemon=True).start()

    @staticmethod
    def _read_request(conn, buf):
        while b"\r\n\r\n" not in buf:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        n = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                n = int(line.split(b":")[1])
        while len(rest) < n:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b""
            rest += chunk
        return head, rest[n:]

    def _serve(self, conn, first):
        import struct
        buf, served = b"", 0
        try:
            while True:
                head, buf = self._read_request(conn, buf)
                if head is None:
                    return
                if first and served == 1:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                    struct.pack("ii", 1, 0))
                    self.resets += 1
                    return
                conn.sendall(b"HTTP/1.1 200 OK\r\n"
                             b"Content-Type: text/event-stream\r\n"
                             b"Content-Length: %d\r\n\r\n%s"
                             % (len(self.ANSWER), self.ANSWER))
                served += 1
        finally:
            conn.close()


def test_kept_alive_connection_reset_is_retried_on_a_fresh_one():
    """engine/backend/client.c tg__poll_cb once handed curl
    CURL_CSELECT_ERR on libuv's POLLERR, so that a request sent on a
    kept-alive connection the backend then reset failed ("select/poll",
    502) instead of going again on a new connection, as curl does by
    itself.  test_llamacpp.py met it by chance; this backend resets the
    reused connection every time."""
    backend = _ResetSecondRequest()
    # model= so that the engine does not ask /v1/models at registration:
    # that request could take the first connection and leave the chat
    # requests on later ones, never reset (seen once in a full run)
    http_conf = ("    thinkgate_backend rst http://127.0.0.1:%d "
                 "model=rst-model;\n"
                 "    thinkgate_pool prst rst;\n" % backend.port)
    engine = harness.start_engine()
    nginx = harness.start_nginx(engine.sock, http_conf, """
        location /v1/ { thinkgate_pass prst; }
        location = /thinkgate/status { thinkgate_status; }
""", workers=1)
    try:
        wait_registered(nginx, 1)
        for i in range(3):
            status, raw = post(nginx.port, "/v1/chat/completions",
                               dict(CHAT, stream=True))
            assert status == 200, (i, raw)
            assert b'"ok"' in raw, raw
        assert backend.resets == 1, backend.resets
        assert backend.connections >= 2, backend.connections
    finally:
        nginx.cleanup()
        engine.cleanup()
        backend.sock.close()
