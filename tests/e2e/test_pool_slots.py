"""Issue 14: a multi-trace request (ffs, self_consistency n=8) on a pool
with fewer slots than n: two backends with max_inflight=3, six slots.

What the README promises (thinkgate_pool): the request's traces beyond
the free slots wait in the engine and start as slots free, so all n run,
never more than a backend's max_inflight at once, and nothing is left
open.  Before, the request silently ran with 6 of its 8 traces.
"""
import http.client
import json

import pytest

import harness

pytestmark = harness.needs_module()

CAP = 3
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
    g = type("G", (), {})()
    g.procs = []
    try:
        # 5 ms a token: a 64-token trace holds its slot about 0.3 s.
        g.sims = [harness.start_sim("--step-ms", "5",
                                    "--step-ms-per-seq", "0")
                  for _ in range(2)]
        g.procs += g.sims
        http = "".join("    thinkgate_backend b%d %s max_inflight=%d;\n"
                       % (i, s.url, CAP) for i, s in enumerate(g.sims))
        http += "    thinkgate_pool reasoners b0 b1;\n"
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()


def call(port, method, path, body=None, timeout=60):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(method, path, body=None if body is None
                 else json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def sim_stats(sim, reset=False):
    status, raw = call(sim.port, "POST" if reset else "GET",
                       "/sim/reset" if reset else "/sim/stats")
    assert status == 200, raw
    return json.loads(raw)


def backend_requests(gw):
    """Transfers the engine started, all backends together."""
    status, raw = call(gw.nginx.port, "GET", "/thinkgate/status")
    assert status == 200, raw
    return sum(b["requests"] for b in json.loads(raw)["backends"])


def body(strategy, stream=False):
    return {"model": "thinkgate-sim", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "What is 17 + 25?"}],
            "thinkgate": {"strategy": strategy, "n": 8}}


def summary_of(raw, stream):
    if not stream:
        return json.loads(raw)["thinkgate"]
    events = [ln[6:] for ln in raw.decode().split("\n")
              if ln.startswith("data: ")]
    assert events[-1] == "[DONE]", events[-3:]
    docs = [json.loads(e) for e in events[:-1]]
    assert not any("error" in d for d in docs), docs[-3:]
    tg = [d["thinkgate"] for d in docs if "thinkgate" in d]
    assert tg, docs[-3:]
    return tg[-1]


@pytest.mark.parametrize("strategy,stream", [
    ("self_consistency", False), ("ffs", False), ("self_consistency", True)])
def test_n8_on_a_pool_of_six_slots_runs_all_eight(gw, strategy, stream):
    for s in gw.sims:
        sim_stats(s, reset=True)
    status, raw = call(gw.nginx.port, "POST", "/v1/chat/completions",
                       body(strategy, stream))
    assert status == 200, raw
    tg = summary_of(raw, stream)
    assert tg["strategy"] == strategy, tg
    # All eight ran: six at once, two as slots freed.
    assert tg["traces_started"] == 8, tg
    stats = [sim_stats(s) for s in gw.sims]
    assert sum(st["requests"] for st in stats) == 8, stats
    assert sum(st["completed_streams"] + st["cancelled_streams"]
               for st in stats) == 8, stats
    # Never more than a backend's max_inflight at once, and the six slots
    # were all used (the traces were not run one by one).
    for st in stats:
        assert st["peak_open_streams"] <= CAP, stats
    assert sum(st["peak_open_streams"] for st in stats) == 2 * CAP, stats
    # Nothing left open, in the sims or in the engine.
    for st in stats:
        assert st["open_streams"] == 0, stats
    status, raw = call(gw.nginx.port, "GET", "/thinkgate/status")
    doc = json.loads(raw)
    assert doc["requests"]["in_flight"] == 0, doc["requests"]
    assert sorted(b["name"] for b in doc["backends"]) == ["b0", "b1"]
    for b in doc["backends"]:
        assert b["in_flight"] == 0, doc["backends"]


def test_client_leaving_while_traces_wait_leaks_nothing(gw):
    """The client leaves while six traces run and two wait for a slot:
    the six are cancelled, the two never start (a waiting trace of a
    closed request must not take a slot later), and the next request
    still gets all eight."""
    import socket
    import time

    for s in gw.sims:
        sim_stats(s, reset=True)
    started = backend_requests(gw)
    raw = json.dumps(dict(body("self_consistency", stream=True),
                          max_tokens=2000)).encode()
    sock = socket.create_connection(("127.0.0.1", gw.nginx.port),
                                    timeout=30)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\n"
                 b"Content-Length: %d\r\n\r\n%s" % (len(raw), raw))
    deadline = time.monotonic() + 10
    while sum(sim_stats(s)["open_streams"] for s in gw.sims) < 2 * CAP:
        assert time.monotonic() < deadline, [sim_stats(s) for s in gw.sims]
        time.sleep(0.02)
    sock.close()
    deadline = time.monotonic() + 5
    while any(sim_stats(s)["open_streams"] for s in gw.sims):
        assert time.monotonic() < deadline, [sim_stats(s) for s in gw.sims]
        time.sleep(0.02)
    time.sleep(0.5)
    stats = [sim_stats(s) for s in gw.sims]
    assert sum(st["requests"] for st in stats) == 2 * CAP, stats
    assert sum(st["cancelled_streams"] for st in stats) == 2 * CAP, stats
    status, doc = call(gw.nginx.port, "GET", "/thinkgate/status")
    doc = json.loads(doc)
    assert doc["requests"]["in_flight"] == 0, doc["requests"]
    assert all(b["in_flight"] == 0 for b in doc["backends"]), doc
    # The engine launched six transfers, not eight: the two waiting traces
    # left the wait list with their request.
    assert backend_requests(gw) - started == 2 * CAP, doc["backends"]
    status, raw = call(gw.nginx.port, "POST", "/v1/chat/completions",
                       body("self_consistency"))
    assert status == 200, raw
    assert json.loads(raw)["thinkgate"]["traces_started"] == 8, raw
