"""thinkgated without nginx: a Python stand-in worker (engine_client.py)
registers over the unix socket, sends REQUEST/CANCEL/WINDOW frames and
reads the answers, against the simulator and misbehaving backends."""
import fcntl
import gzip
import http.client
import json
import os
import shutil
import socket
import tempfile
import time

import pytest

import engine_client as ec
import harness

CHAT = {"model": "thinkgate-sim",
        "messages": [{"role": "user", "content": "What is 17 + 25?"}],
        "max_tokens": 32}


def sim_stats(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=5)
    conn.request("GET", "/sim/stats")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def start_engine(*args):
    proc = harness.Proc("engine", [], env=harness.engine_env())
    sock = os.path.join(proc.workdir, "run", "engine.sock")
    # THINKGATED=path runs another build (e.g. one with ASan).
    binary = os.environ.get("THINKGATED",
                            os.path.join(harness.BIN, "thinkgated"))
    # Every request runs a strategy plugin (passthrough by default).
    proc.argv = [binary, "--socket", sock,
                 "--plugin-dir", harness.PLUGIN_DIR,
                 "--log-level", "debug"] + list(args)
    proc.sock = sock
    proc.start()
    harness.wait_path(sock, proc=proc)
    return proc


@pytest.fixture(scope="module")
def env():
    # No simulated prefill on b0: test_large_body_over_many_frames's
    # 2 MB prompt would otherwise wait 10 s of it (20 ms per 1000 tokens)
    # for nothing it checks; the other prompts here are a few tokens.
    sim = harness.start_sim("--step-ms", "2", "--step-ms-per-seq", "0",
                            "--prefill-ms-per-1k", "0")
    slow = harness.start_sim("--step-ms", "20", "--step-ms-per-seq", "0")
    engine = start_engine()
    e500, e400, silent = (harness.start_bad_backend(m)
                          for m in ("500", "400", "silent"))
    dead = "http://127.0.0.1:%d" % harness.free_port()
    conf = ec.config(
        [("b0", sim.url), ("slow", slow.url),
         {"name": "one", "url": slow.url, "max_inflight": 1},
         ("e500", "http://127.0.0.1:%d" % e500.server_address[1]),
         ("e400", "http://127.0.0.1:%d" % e400.server_address[1]),
         ("silent", "http://127.0.0.1:%d" % silent.server_address[1]),
         {"name": "dead", "url": dead, "connect_timeout_ms": 1000},
         {"name": "dead2", "url": dead + "/", "connect_timeout_ms": 1000},
         {"name": "renamed", "url": sim.url, "model": "thinkgate-sim"}],
        {"p": ["b0"], "slow": ["slow"], "one": ["one"], "e500": ["e500"],
         "e400": ["e400"], "silent": ["silent"], "dead": ["dead", "dead2"],
         "retry": ["dead", "b0"], "renamed": ["renamed"]})
    ns = type("Env", (), {})()
    ns.sim, ns.slow, ns.engine, ns.conf = sim, slow, engine, conf
    ns.worker = ec.Worker(engine.sock, conf)
    yield ns
    ns.worker.close()
    for s in (e500, e400, silent):
        s.shutdown()
    # A clean exit on SIGTERM, with every request and generation freed
    # (under ASan, LeakSanitizer turns a leak into a failing status).
    engine.stop(timeout=10)
    log = engine.log()
    code = engine.p.returncode
    for p in (engine, slow, sim):
        p.cleanup()
    assert code == 0, "engine exit status %s:\n%s" % (code, log[-6000:])


def test_chat_non_streamed(env):
    r = env.worker.call("/v1/chat/completions", CHAT)
    assert r.status == 200 and r.ended, r.error
    assert r.headers["content-type"].startswith("application/json")
    doc = r.json()
    assert doc["object"] == "chat.completion"
    msg = doc["choices"][0]["message"]
    assert (msg.get("content") or "") + (msg.get("reasoning_content") or "")
    assert doc["usage"]["completion_tokens"] > 0
    assert doc["choices"][0]["finish_reason"] in ("stop", "length")
    # END carries NAME=VALUE lines (protocol.h).
    figures = dict(line.split("=", 1) for line in
                   r.end_payload.decode().splitlines())
    assert figures["strategy"] == "passthrough"
    assert figures["traces_started"] == "1"


def test_chat_streamed_keeps_reasoning_usage_finish(env):
    body = dict(CHAT, stream=True, stream_options={"include_usage": True})
    r = env.worker.call("/v1/chat/completions", body)
    assert r.status == 200 and r.stream and r.ended
    assert r.headers["content-type"] == "text/event-stream"
    ev = r.events()
    assert ev[-1] == "[DONE]"
    chunks = [json.loads(e) for e in ev[:-1]]
    assert any(c["choices"] and "reasoning_content" in c["choices"][0]["delta"]
               for c in chunks)
    assert any(c["choices"] and c["choices"][0]["finish_reason"]
               for c in chunks)
    assert chunks[-1]["usage"]["completion_tokens"] > 0


def test_completions_both_ways(env):
    body = {"model": "thinkgate-sim", "prompt": "2 + 3 =", "max_tokens": 8}
    r = env.worker.call("/v1/completions", body)
    assert r.status == 200 and r.json()["object"] == "text_completion"
    r = env.worker.call("/v1/completions", dict(body, stream=True))
    assert r.status == 200 and r.events()[-1] == "[DONE]"


def test_ids_name_the_request(env):
    """chatcmpl-tg / cmpl-tg and the engine's request id in hex, in the
    answer and in every chunk of a stream."""
    rid = env.worker.api("/v1/chat/completions", CHAT)
    r = env.worker.wait(rid, 30)
    assert r.status == 200, r.error
    assert r.json()["id"] == "chatcmpl-tg%x" % rid
    rid = env.worker.api("/v1/chat/completions", dict(CHAT, stream=True))
    r = env.worker.wait(rid, 30)
    chunks = [json.loads(e) for e in r.events()[:-1]]
    assert chunks and {c["id"] for c in chunks} == {"chatcmpl-tg%x" % rid}
    body = {"model": "thinkgate-sim", "prompt": "2 + 3 =", "max_tokens": 8}
    rid = env.worker.api("/v1/completions", body)
    r = env.worker.wait(rid, 30)
    assert r.json()["id"] == "cmpl-tg%x" % rid


def test_model_rewritten_and_thinkgate_stripped(env):
    body = dict(CHAT, model="whatever-the-client-says",
                thinkgate={"strategy": "passthrough"})
    r = env.worker.call("/v1/chat/completions", body, pool="renamed",
                        client_strategy=True)
    assert r.status == 200, r.error
    assert r.json()["model"] == "thinkgate-sim"


def test_models_list(env):
    r = env.worker.call("/v1/models", method="GET", pool=None)
    doc = r.json()
    assert r.status == 200 and doc["object"] == "list"
    ids = [m["id"] for m in doc["data"]]
    # b0 and slow have no model=: they are listed by what their own
    # /v1/models says (asked at registration), never by backend name;
    # the misbehaving backends list nothing
    assert ids == ["thinkgate-sim"], ids
    r = env.worker.call("/v1/models", method="GET", pool="renamed")
    assert [m["id"] for m in r.json()["data"]] == ["thinkgate-sim"]


def test_large_body_over_many_frames(env):
    """A 2 MB body in 4 KiB frames reaches the backend whole: the sim
    counts a prompt token per 4 bytes of the rendered prompt, so the
    2,000,000 bytes over a one-byte message are exactly 500,000 more
    prompt tokens (a lost, repeated or cut frame shows)."""
    def prompt_tokens(text):
        body = dict(CHAT, messages=[{"role": "user", "content": text}],
                    max_tokens=4)
        fid = env.worker.request({"kind": "api", "method": "POST",
                                  "uri": "/v1/chat/completions",
                                  "pool": "p"}, body, chunk=4096)
        r = env.worker.wait(fid)
        assert r.status == 200, r.error
        return r.json()["usage"]["prompt_tokens"]

    small = prompt_tokens("x" * 4)
    big = prompt_tokens("x" * 2_000_004)
    assert big - small == 500_000, (small, big)


@pytest.mark.parametrize("uri,body,param", [
    ("/v1/chat/completions", b"{not json", None),
    ("/v1/chat/completions", b"[1, 2]", None),
    ("/v1/chat/completions", b"\x00\xff{", None),
    ("/v1/chat/completions", {"model": "m"}, "messages"),
    ("/v1/chat/completions", {"messages": "hi"}, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": 1, "content": "x"}]},
     "messages[0].role"),
    ("/v1/chat/completions", dict(CHAT, model=5), "model"),
    ("/v1/chat/completions", dict(CHAT, n=0), "n"),
    ("/v1/chat/completions", dict(CHAT, stream="yes"), "stream"),
    ("/v1/chat/completions", dict(CHAT, temperature=9), "temperature"),
    ("/v1/chat/completions", dict(CHAT, top_p=2), "top_p"),
    ("/v1/chat/completions", dict(CHAT, max_tokens=-3), "max_tokens"),
    ("/v1/chat/completions", dict(CHAT, stop=[1]), "stop"),
    ("/v1/completions", {"model": "m"}, "prompt"),
    ("/v1/completions", {"prompt": 5}, "prompt"),
])
def test_bad_input_is_400(env, uri, body, param):
    r = env.worker.call(uri, body)
    assert r.status == 400 and r.error
    err = r.error_json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"]
    assert err["param"] == param


def test_unknown_endpoint_404_and_wrong_method_405(env):
    r = env.worker.call("/v1/embeddingz", CHAT)
    assert r.status == 404 and r.error_json()["error"]["message"]
    r = env.worker.call("/v1/chat/completions", b"", method="GET")
    assert r.status == 405


def test_backend_5xx_is_502_with_its_message(env):
    r = env.worker.call("/v1/chat/completions", CHAT, pool="e500")
    assert r.status == 502
    assert "CUDA OOM" in r.error_json()["error"]["message"]


def test_backend_400_passes_through(env):
    r = env.worker.call("/v1/chat/completions", CHAT, pool="e400")
    assert r.status == 400
    err = r.error_json()["error"]
    assert "too large" in err["message"] and err["param"] == "max_tokens"


def backend_status(env):
    w = env.worker
    return {b["name"]: b for b in w.wait(w.status()).json()["backends"]}


def test_dead_backends_are_502_naming_the_pool(env):
    """Both dead backends of the pool were tried (each counts a failed
    transfer) before the 502, not the pool given up on unseen."""
    before = backend_status(env)
    t0 = time.monotonic()
    r = env.worker.call("/v1/chat/completions", CHAT, pool="dead")
    assert r.status == 502
    assert '"dead"' in r.error_json()["error"]["message"]
    assert time.monotonic() - t0 < 5
    after = backend_status(env)
    for name in ("dead", "dead2"):
        assert after[name]["requests"] == before[name]["requests"] + 1, \
            (name, before[name], after[name])
        assert after[name]["errors"] == before[name]["errors"] + 1, \
            (name, before[name], after[name])
        assert after[name]["in_flight"] == 0, after[name]


def test_connect_failure_retries_another_backend(env):
    for _ in range(4):
        r = env.worker.call("/v1/chat/completions", CHAT, pool="retry")
        assert r.status == 200, r.error


def test_silent_backend_is_504(env):
    t0 = time.monotonic()
    r = env.worker.call("/v1/chat/completions", CHAT, pool="silent",
                        timeout_ms=500)
    assert r.status == 504, r.error
    assert r.error_json()["error"]["type"] == "timeout_error"
    assert time.monotonic() - t0 < 2.5


def test_pool_full_is_429(env):
    w = env.worker
    first = w.api("/v1/chat/completions",
                  dict(CHAT, stream=True, max_tokens=200), pool="one")
    w.wait(first, until=lambda r: r.status is not None)
    r = w.call("/v1/chat/completions", CHAT, pool="one")
    assert r.status == 429
    assert r.error_json()["error"]["type"] == "rate_limit_error"
    w.cancel(first)


def test_cancel_closes_the_backend_stream(env):
    w = env.worker
    fid = w.api("/v1/chat/completions", dict(CHAT, stream=True,
                                              max_tokens=4000), pool="slow")
    w.wait(fid, until=lambda r: r.body.count(b"data:") >= 3)
    assert sim_stats(env.slow)["open_streams"] >= 1
    w.cancel(fid)
    t0 = time.monotonic()
    while sim_stats(env.slow)["open_streams"] > 0:
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.005)
    assert time.monotonic() - t0 < 0.2
    # Nothing more is sent for a cancelled request.  Frames the engine
    # wrote before it read the CANCEL may still sit in the ring: drain
    # those first (the backend stream is closed, so the engine has acted
    # on the CANCEL by now).
    w.pump(0.1)
    n = len(w.responses[fid].frames)
    w.pump(0.2)
    assert len(w.responses[fid].frames) == n


def test_worker_gone_closes_backend_streams(env):
    w = ec.Worker(env.engine.sock, env.conf)
    fid = w.api("/v1/chat/completions", dict(CHAT, stream=True,
                                              max_tokens=4000), pool="slow")
    w.wait(fid, until=lambda r: r.body.count(b"data:") >= 3)
    w.close()
    t0 = time.monotonic()
    while sim_stats(env.slow)["open_streams"] > 0:
        assert time.monotonic() - t0 < 1.0
        time.sleep(0.005)


def _long_trace_sim():
    """A replay sim with one recorded answer of 4000 tokens: one trace
    (one chunk a token) several times the initial window, sent without
    sleeping (--speed 0): the credit checks wait on the engine, not on
    4 s of decode steps."""
    d = tempfile.mkdtemp(prefix="tg-raw-traces-")
    path = os.path.join(d, "long.jsonl.gz")
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({
            "model": "thinkgate-sim", "problem": "Tell me everything.",
            "output": " ".join("word%d" % i for i in range(3990))
            + "</think>\n\nAll.", "completion_tokens": 4000,
            "finish_reason": "STOP", "sample_id": 0}) + "\n")
    sim = harness.start_sim("--traces", path, "--speed", "0")
    sim.trace_dir = d
    return sim


def test_data_never_exceeds_credit(env):
    """Without WINDOW frames the engine stops at the initial credit and
    pauses the backend; returning credit lets the stream finish."""
    sim = _long_trace_sim()
    w = ec.Worker(env.engine.sock, ec.config([("long", sim.url)],
                                             {"p": ["long"]}))
    try:
        _credit_checks(w)
    finally:
        w.close()
        sim.cleanup()
        shutil.rmtree(sim.trace_dir, ignore_errors=True)


def _credit_checks(w):
    body = {"model": "thinkgate-sim", "prompt": "Tell me everything.",
            "max_tokens": 6000, "stream": True}
    fid = w.api("/v1/completions", body)
    resp = w.responses[fid]
    deadline = time.monotonic() + 20
    while len(resp.body) < ec.INITIAL_WINDOW:
        assert not resp.done(), "answer smaller than the window"
        assert time.monotonic() < deadline
        w.pump(0.05, auto_window=False)
    time.sleep(0.5)
    w.pump(0.05, auto_window=False)
    assert len(resp.body) == ec.INITIAL_WINDOW
    assert not resp.done()
    w.window(fid, 1 << 30)
    r = w.wait(fid, timeout=60)
    assert r.ended and r.events()[-1] == "[DONE]"
    assert len(r.body) > 2 * ec.INITIAL_WINDOW


def _streamed_text(r):
    """The reasoning and content of a streamed answer, checked whole
    (every event JSON, [DONE] last)."""
    events = r.events()
    assert events[-1] == "[DONE]", events[-3:]
    text = []
    for e in events[:-1]:
        for ch in json.loads(e)["choices"]:
            text.append(ch["delta"].get("reasoning_content") or "")
            text.append(ch["delta"].get("content") or "")
    return "".join(text)


def test_slow_worker_does_not_block_others(env):
    """A worker that stops reading its ring must not stall the engine:
    its 64 KiB ring fills (the engine marks itself waiting for room),
    another worker is served meanwhile, and once the lazy one reads, its
    streams finish whole."""
    lazy = ec.Worker(env.engine.sock, env.conf, ring_size=64 * 1024)
    body = dict(CHAT, stream=True, max_tokens=600, seed=7)
    fids = [lazy.api("/v1/chat/completions", body) for _ in range(4)]
    lazy.pump(0)    # sends, reads nothing back
    ring = ec.Ring(lazy.mm, "to_worker")
    deadline = time.monotonic() + 10
    while not ring._get(ec.OFF_WAIT, "<I"):
        assert time.monotonic() < deadline, "the ring never filled"
        time.sleep(0.02)
    used = ring._get(ec.OFF_HEAD) - ring._get(ec.OFF_TAIL)
    assert used > ring.size // 2, used
    r = env.worker.call("/v1/chat/completions", body, timeout=10)
    assert r.status == 200
    want = _streamed_text(r)
    for fid in fids:
        r = lazy.wait(fid, timeout=30)
        assert r.status == 200 and r.ended, r.error
        # the same text as the same request read at once: nothing lost
        # or repeated while the ring was full
        assert _streamed_text(r) == want
    lazy.close()


def test_status_json_and_prometheus(env):
    w = env.worker
    r = w.wait(w.status())
    doc = r.json()
    assert r.status == 200
    assert doc["engine"]["connected"] is True
    assert doc["engine"]["pid"] == env.engine.p.pid
    assert doc["engine"]["registrations"] >= 1
    assert doc["requests"]["total"] >= 1
    assert doc["requests"]["errors"] >= 1
    names = {b["name"]: b for b in doc["backends"]}
    assert names["b0"]["requests"] >= 1 and names["b0"]["in_flight"] == 0
    assert names["e500"]["errors"] >= 1
    r = w.wait(w.status("a=b&format=prometheus"))
    text = r.body.decode()
    assert r.headers["content-type"] == "text/plain; version=0.0.4"
    for needle in ("thinkgate_engine_connected 1", "thinkgate_requests_total ",
                   "thinkgate_requests_in_flight ",
                   'thinkgate_backend_in_flight{backend="b0"} 0',
                   'thinkgate_backend_errors_total{backend="e500"} '):
        assert needle in text, needle


def test_generations_dedupe_and_unknown_keys(env):
    a = ec.Worker(env.engine.sock, env.conf)
    b = ec.Worker(env.engine.sock, json.loads(json.dumps(env.conf)))
    assert a.generation == b.generation == env.worker.generation
    other = ec.config([("b0", env.sim.url)])
    c = ec.Worker(env.engine.sock, other)
    assert c.generation != a.generation
    r = c.call("/v1/chat/completions", CHAT)
    assert r.status == 200
    for w in (a, b, c):
        w.close()

    bad = ec.config([("b0", env.sim.url)])
    bad["backends"][0]["colour"] = "blue"
    with pytest.raises(ec.Refused) as e:
        ec.Worker(env.engine.sock, bad)
    assert '"colour"' in e.value.message
    bad = dict(ec.config([("b0", env.sim.url)]), upstreams=[])
    with pytest.raises(ec.Refused) as e:
        ec.Worker(env.engine.sock, bad)
    assert '"upstreams"' in e.value.message
    with pytest.raises(ec.Refused):
        ec.Worker(env.engine.sock, b"{nope")


def test_requests_named_by_location(env):
    """A meta's "loc" names its location's entry of the document: the
    pool and strategy come from there; an index the document lacks is a
    500 naming it, and a document whose location names an unknown pool is
    refused at registration."""
    shared = {"client_strategy": False, "timeout_ms": 60000,
              "deadline_ms": 0, "max_body": 1048576, "session": False}
    conf = dict(env.conf, locations=[
        dict(shared, pool="p", strategy="ffs n=2"),
        dict(shared, pool="e400")])
    w = ec.Worker(env.engine.sock, conf)
    try:
        meta = {"kind": "api", "method": "POST",
                "uri": "/v1/chat/completions", "args": "", "headers": {}}
        r = w.wait(w.request(dict(meta, loc=0), CHAT))
        assert r.status == 200 and r.ended, r.error
        figures = dict(line.split("=", 1) for line in
                       r.end_payload.decode().splitlines())
        assert (figures["strategy"], figures["traces_started"]) == \
            ("ffs", "2"), figures
        # e400's pool: its backend's 400 passes through
        r = w.wait(w.request(dict(meta, loc=1), CHAT))
        assert r.status == 400, r.error
        r = w.wait(w.request(dict(meta, loc=2), CHAT))
        assert r.status == 500, r.status
        assert "names location 2; the configuration has 2" in \
            r.error_json()["error"]["message"], r.error
    finally:
        w.close()

    bad = dict(env.conf, locations=[{"pool": "nope"}])
    with pytest.raises(ec.Refused) as e:
        ec.Worker(env.engine.sock, bad)
    assert '"locations"[0] names unknown pool "nope"' in e.value.message


def test_unsealable_region_is_refused(env):
    with pytest.raises(ec.Refused) as e:
        ec.Worker(env.engine.sock, env.conf, seal=False, allow_sealing=False)
    assert "sealed" in e.value.message
    # A region the worker only allowed sealing is sealed by the engine.
    w = ec.Worker(env.engine.sock, env.conf, seal=False)
    assert fcntl.fcntl(w.fd, fcntl.F_GET_SEALS) & fcntl.F_SEAL_SHRINK
    w.close()


def test_doorbells_on_the_socket_without_eventfds(env):
    r = env.worker.call("/v1/chat/completions", CHAT)
    assert r.status == 200 and r.ended, r.error
    assert env.worker.reply_flags == 0 and env.worker.socket_doorbells > 0


def test_eventfd_doorbells_both_ways(env):
    # protocol.h, TG_REG_F_EVENTFD: the engine says it took the eventfds,
    # wakes on the worker's (the socket carries nothing from the worker,
    # and the engine polls no ring on a timer) and rings the worker's.
    w = ec.Worker(env.engine.sock, env.conf, eventfd=True)
    try:
        assert w.reply_flags & ec.REG_F_EVENTFD and w.eventfd
        for body in (CHAT, dict(CHAT, stream=True)):
            r = w.call("/v1/chat/completions", body)
            assert r.status == 200 and r.ended, r.error
        assert w.doorbells > 0 and w.socket_doorbells == 0
    finally:
        w.close()


def test_eventfd_doorbells_need_two_eventfds(env):
    rd, wr = os.pipe()
    try:
        for fds in ([rd, wr], [rd], []):
            with pytest.raises(ec.Refused) as e:
                ec.Worker(env.engine.sock, env.conf, eventfd=True,
                          bell_fds=fds)
            assert "followed by two eventfds" in e.value.message
    finally:
        os.close(rd)
        os.close(wr)
    # The refusals cost the others nothing.
    r = env.worker.call("/v1/chat/completions", CHAT)
    assert r.status == 200 and r.ended, r.error


def test_garbage_registration_is_refused(env):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(env.engine.sock)
    s.sendall(b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n" + b"\0" * 64)
    reply = s.recv(256)
    assert reply and b"magic" in reply
    s.close()
    # The engine keeps serving.
    assert env.worker.call("/v1/chat/completions", CHAT).status == 200


def test_sigterm_shuts_down_cleanly():
    engine = start_engine()
    w = ec.Worker(engine.sock, ec.config([("b0", "http://127.0.0.1:9")]))
    engine.stop()
    assert engine.poll() == 0, engine.log()
    assert not os.path.exists(engine.sock)
    w.close()
    engine.cleanup()


def _register_as(uid, gid, sock, conf):
    """Registers from a child process running as uid; returns the engine's
    refusal message, or "" when registered."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        msg = b""
        try:
            os.setgid(gid)
            os.setuid(uid)
            ec.Worker(sock, conf).close()
        except ec.Refused as e:
            msg = e.message.encode() or b"refused"
        except BaseException as e:       # noqa: B902 - report anything
            msg = ("error: %r" % e).encode()
        os.write(w, msg)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uid")
def test_peer_credentials():
    import pwd
    nobody = pwd.getpwnam("nobody")
    conf = ec.config([("b0", "http://127.0.0.1:9")])
    for allow in (False, True):
        engine = start_engine(*(["--allow-user", "nobody"] if allow else []))
        try:
            d = os.path.dirname(engine.sock)
            os.chmod(d, 0o755)
            os.chmod(os.path.dirname(d), 0o755)
            msg = _register_as(nobody.pw_uid, nobody.pw_gid, engine.sock,
                               conf)
            if allow:
                assert msg == "", msg
            else:
                assert "uid %d" % nobody.pw_uid in msg and \
                    "--allow-user" in msg, msg
                # Issue 14, bug 2: refused on the fixed header alone, so
                # that the engine never buffers the document of a peer it
                # refuses (it used to read up to 4 MiB first).
                msg = _header_only_as(nobody.pw_uid, nobody.pw_gid,
                                      engine.sock)
                assert msg.startswith("refused: ") and \
                    "uid %d" % nobody.pw_uid in msg, msg
        finally:
            engine.cleanup()


def _header_only_as(uid, gid, sock):
    """As uid: a registration header announcing a 4 MiB document, and no
    document; returns "refused: MESSAGE" when the engine answers at
    once."""
    import struct
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(sock)
            fd = os.memfd_create("tg-test", os.MFD_CLOEXEC)
            reg = struct.pack("<IIIIQII", ec.REG_MAGIC, ec.PROTO_VERSION,
                              os.getpid(), 1 << 20, 4 << 20, 4 << 20, 0)
            socket.send_fds(s, [reg], [fd])
            reply = b""
            while len(reply) < 256:
                chunk = s.recv(256 - len(reply))
                if not chunk:
                    break
                reply += chunk
            status = struct.unpack_from("<IIiI", reply)[2]
            text = reply[ec.REPLY_MESSAGE:].split(b"\0", 1)[0].decode()
            msg = ("refused: " if status != 0 else "accepted: ") + text
        except BaseException as e:       # noqa: B902 - report anything
            msg = "error: %r" % e
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        out = f.read().decode()
    os.waitpid(pid, 0)
    return out


# -- issue 14, bug 3: which environment variables a peer may name ------------

class _KeyBackend(__import__("http.server").server.BaseHTTPRequestHandler):
    """Records the Authorization header; answers one SSE chunk."""
    protocol_version = "HTTP/1.1"
    seen = []

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        _KeyBackend.seen.append(self.headers.get("Authorization"))
        body = (b'data: {"choices":[{"index":0,"delta":{"content":"ok"},'
                b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _refusal(engine, conf):
    try:
        ec.Worker(engine.sock, conf).close()
    except ec.Refused as e:
        return e.message
    return ""


def test_env_variables_a_peer_may_name():
    import http.server
    import threading
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _KeyBackend)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d" % srv.server_address[1]
    os.environ["THINKGATE_TEST_KEY"] = "sk-prefixed"
    os.environ["TG_OPERATOR_KEY"] = "sk-allowed"
    engine = start_engine("--allow-env", "TG_OPERATOR_KEY")
    try:
        # Any other variable is a registration error naming it, whatever
        # the peer sends: it used to get Bearer /bin/bash for SHELL.
        for var in ("SHELL", "HOME", "THINKGATE_"):
            msg = _refusal(engine, ec.config([("b0", url)],
                                             api_key_env=var))
            assert 'api_key_env "%s" is not allowed' % var in msg, msg
            assert "--allow-env" in msg
        conf = ec.config([("b0", url)])
        conf["redis"] = {"addr": "127.0.0.1:9", "password_env": "PATH"}
        msg = _refusal(engine, conf)
        assert 'password_env "PATH" is not allowed' in msg, msg

        for var, key in (("THINKGATE_TEST_KEY", "sk-prefixed"),
                         ("TG_OPERATOR_KEY", "sk-allowed")):
            w = ec.Worker(engine.sock, ec.config([("b0", url)],
                                                 api_key_env=var))
            try:
                resp = w.call("/v1/chat/completions",
                              dict(CHAT, stream=False))
                assert resp.status == 200
            finally:
                w.close()
            assert _KeyBackend.seen[-1] == "Bearer " + key
    finally:
        engine.cleanup()
        srv.shutdown()
        del os.environ["THINKGATE_TEST_KEY"], os.environ["TG_OPERATOR_KEY"]
