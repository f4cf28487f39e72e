"""A session's lock lives as long as its request, not longer (issue 14,
bug 1): the lock's lease is short and renewed by a heartbeat while the
request runs.  An engine killed mid-request frees its session within one
lease; a request that runs for several leases keeps its lock.  And an
append whose copy reached Redis while its reply was lost is reported as
unknown (`session_stored: null`), never as "not stored".

A real redis-server, a simulator, real nginx and engines."""
import http.client
import json
import os
import signal
import threading
import time
import uuid

import pytest

import harness

pytestmark = harness.needs_redis()

KEY_PREFIX = "tglock:"
LEASE_MS = 2000
STEP_MS = 100          # a synthetic trace of 100+ tokens: 10+ s
SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_session on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


class Stack:
    """redis-server, one sim (STEP_MS a token), an engine and its nginx."""

    def __init__(self, engine_args=()):
        self.procs = []
        try:
            self.redis = harness.start_redis()
            self.procs.append(self.redis)
            self.sim = harness.start_sim("--step-ms", str(STEP_MS))
            self.procs.append(self.sim)
            self.http = ("    thinkgate_backend b0 %s max_inflight=64;\n"
                         "    thinkgate_pool reasoners b0;\n"
                         "    thinkgate_redis %s prefix=%s "
                         "connect_timeout=500ms timeout=300ms;\n"
                         % (self.sim.url, self.redis.addr, KEY_PREFIX))
            self.engine = harness.start_engine(args=engine_args)
            self.procs.append(self.engine)
            self.nginx = harness.start_nginx(self.engine.sock, self.http,
                                             SERVER)
            self.procs.append(self.nginx)
            harness.wait_registered(self.nginx, 2)
            self.port = self.nginx.port
        except Exception:
            self.close()
            raise

    def restart_engine(self):
        """A new engine on the killed one's socket; nginx reconnects."""
        old = self.engine
        self.engine = harness.start_engine(
            sock_dir=os.path.dirname(old.sock),
            args=old.extra_args)
        self.procs.append(self.engine)

    def lock_key(self, sid):
        return "%ssess:{%s}:lock" % (KEY_PREFIX, sid)

    def turns(self, sid):
        raw = harness.redis_cli(self.redis.port, "LRANGE",
                                "%ssess:{%s}:turns" % (KEY_PREFIX, sid),
                                0, -1)
        return [json.loads("[" + line + "]")[0]["content"]
                for line in raw.splitlines() if line]

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []


@pytest.fixture(scope="module")
def stack():
    s = Stack(engine_args=("--session-lease", str(LEASE_MS)))
    yield s
    s.close()


def turn(stack, sid, question, max_tokens=8):
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(
        {"model": "thinkgate-sim", "max_tokens": max_tokens,
         "messages": [{"role": "user", "content": question}]}),
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer key-a",
                 "X-Thinkgate-Session": sid})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def open_stream(stack, sid, question, max_tokens):
    """A streamed session turn, read up to its first chunk (the session
    is read and locked by then)."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=60)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(
        {"model": "thinkgate-sim", "max_tokens": max_tokens, "stream": True,
         "messages": [{"role": "user", "content": question}]}),
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer key-a",
                 "X-Thinkgate-Session": sid})
    resp = conn.getresponse()
    assert resp.status == 200
    first = resp.readline()
    assert first.startswith(b"data: "), first
    return conn, resp, first


def thinkgate_of(raw):
    tg = None
    for line in raw.decode().splitlines():
        if line.startswith("data: {"):
            tg = json.loads(line[6:]).get("thinkgate", tg)
    assert tg is not None, raw[-400:]
    return tg


def sessions_status(stack):
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    conn.request("GET", "/thinkgate/status")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc["sessions"]


def test_status_reports_the_lease(stack):
    doc = sessions_status(stack)
    assert doc["lease_ms"] == LEASE_MS, doc
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=5)
    conn.request("GET", "/thinkgate/status?format=prometheus")
    text = conn.getresponse().read().decode()
    conn.close()
    assert "\nthinkgate_sessions_unknown_turns_total 0\n" in text
    assert "\nthinkgate_sessions_locks_lost_total 0\n" in text


def test_engine_killed_mid_request_frees_the_session(stack):
    sid = "kill-" + uuid.uuid4().hex
    st, raw = turn(stack, sid, "turn one")
    assert st == 200, raw
    # Many leases of tokens: the engine dies long before the end.
    conn, resp, _ = open_stream(stack, sid, "turn two", 2000)
    pttl = int(harness.redis_cli(stack.redis.port, "PTTL",
                                 stack.lock_key(sid)))
    assert 0 < pttl <= LEASE_MS, pttl
    stack.engine.kill()
    t_kill = time.monotonic()
    conn.close()
    stack.restart_engine()

    # 503 while the workers reconnect, 409 while the dead engine's lock
    # lives out its lease; then the session serves again.
    seen = []
    deadline = t_kill + LEASE_MS / 1000.0 + 10
    while True:
        st, raw = turn(stack, sid, "turn three")
        seen.append(st)
        if st == 200:
            break
        assert st in (409, 503), raw
        assert time.monotonic() < deadline, (
            "session still refused %.1f s after the engine died: %s"
            % (time.monotonic() - t_kill, seen[-5:]))
        time.sleep(0.2)
    tg = json.loads(raw)["thinkgate"]
    assert tg["session_stored"] is True, tg
    assert stack.turns(sid) == ["turn one", "turn three"]


def test_a_request_longer_than_the_lease_keeps_its_lock(stack):
    sid = "long-" + uuid.uuid4().hex
    st, raw = turn(stack, sid, "turn one")
    assert st == 200, raw
    # 120 tokens: 12 s, six leases.  The last probe is at 8 s, so the
    # stream outlives it by 4 s (a busy machine only slows the sim's
    # steps, which lengthens the stream), and the test no longer waits
    # out the whole synthetic trace (170+ tokens, 17 s).
    conn, resp, first = open_stream(stack, sid, "turn two", 120)
    rest = []
    reader = threading.Thread(target=lambda: rest.append(resp.read()))
    reader.start()
    t0 = time.monotonic()
    probes = []
    try:
        for at in (1.0, 2.5, 4.0):      # leases in: 2, 5 and 8 s
            time.sleep(max(0.0, t0 + at * LEASE_MS / 1000.0
                           - time.monotonic()))
            st, raw = turn(stack, sid, "concurrent")
            probes.append((st, reader.is_alive()))
            assert st == 409, raw
            assert json.loads(raw)["error"]["code"] == "session_busy"
            pttl = int(harness.redis_cli(stack.redis.port, "PTTL",
                                         stack.lock_key(sid)))
            assert 0 < pttl <= LEASE_MS, pttl
    finally:
        reader.join(60)
        conn.close()
    # Every probe ran while the first request was still streaming.
    assert probes and all(alive for _, alive in probes), probes
    tg = thinkgate_of(first + rest[0])
    assert tg["session_stored"] is True and tg["session_turns"] == 2, tg
    # Released at the end: the next turn is served at once.
    st, raw = turn(stack, sid, "turn three")
    assert st == 200, raw
    assert stack.turns(sid) == ["turn one", "turn two", "turn three"]


def test_lost_reply_is_reported_unknown_not_lost():
    """Redis frozen (SIGSTOP) while the turn is appended: the engine's
    copy sits in the socket, its reply never comes, and every retry finds
    no connection.  The client must not be told "not stored": once
    Redis runs again it stores that copy."""
    # The default lease: no heartbeat goes out during this short turn,
    # so the append is the first command to meet the frozen Redis.
    s = Stack()
    try:
        sid = "unsure-" + uuid.uuid4().hex
        st, raw = turn(s, sid, "turn one")
        assert st == 200, raw
        conn, resp, first = open_stream(s, sid, "turn two", 5)
        os.kill(s.redis.p.pid, signal.SIGSTOP)
        try:
            rest = resp.read()       # ends once the append gives up
        finally:
            os.kill(s.redis.p.pid, signal.SIGCONT)
        conn.close()
        tg = thinkgate_of(first + rest)
        assert tg["session_stored"] is None, tg
        assert "may or may not have been stored" in tg["session_error"], tg
        # Redis reads the copy it was sent: the turn was stored after
        # all, which "session_stored": false would have denied.  The
        # engine settles it (lua/session_settle.lua) and says so.
        deadline = time.monotonic() + 20
        while sessions_status(s)["unknown_settled_stored"] != 1:
            assert time.monotonic() < deadline, sessions_status(s)
            time.sleep(0.2)
        doc = sessions_status(s)
        assert doc["unknown_turns"] == 1, doc
        assert doc["unknown_settled_not_stored"] == 0, doc
        assert s.turns(sid) == ["turn one", "turn two"]
        # The lock was released with it: the next turn is served.
        deadline = time.monotonic() + 15
        while True:
            st, raw = turn(s, sid, "turn three")
            if st == 200 or time.monotonic() > deadline:
                break
            assert st in (409, 503), raw
            time.sleep(0.3)
        assert st == 200, raw
        assert s.turns(sid) == ["turn one", "turn two", "turn three"]
    finally:
        s.close()
