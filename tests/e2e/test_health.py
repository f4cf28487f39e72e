"""Backend health: circuit breaking and active checks, end to end.

Two sims behind one pool.  With active checks (health=/health), a sim
killed is found by the checks, its circuit opens, every request goes to
the other sim and no client sees an error; restarted on the same port,
the first check after the cool-off is the half-open probe and closes the
circuit, and traffic comes back to it.  Without active checks, failed
transfers (connections refused, retried on the other sim) open the
circuit, and after the cool-off a real request is the probe.  The status
location shows each backend's state and transitions, in JSON and for
Prometheus.
"""
import http.client
import json
import time

import harness

BODY = {"model": "thinkgate-sim", "max_tokens": 8,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}]}


def status(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/thinkgate/status")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return {b["name"]: b for b in doc["backends"]}


def prometheus(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/thinkgate/status?format=prometheus")
    text = conn.getresponse().read().decode()
    conn.close()
    return text


def chat(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/chat/completions", json.dumps(BODY),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def wait_state(port, name, state, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        b = status(port)[name]
        if b["state"] == state:
            return b
        if time.monotonic() > deadline:
            raise AssertionError("backend %s stays %s: %s"
                                 % (name, b["state"], b))
        time.sleep(0.05)


def gateway(params):
    sims = [harness.start_sim("--speed", "0") for _ in range(2)]
    http_conf = "".join(
        "    thinkgate_backend b%d %s max_inflight=64 %s;\n"
        % (i, s.url, params) for i, s in enumerate(sims))
    http_conf += "    thinkgate_pool reasoners b0 b1;\n"
    engine = harness.start_engine()
    nginx = harness.start_nginx(engine.sock, http_conf)
    harness.wait_registered(nginx)
    return sims, [nginx, engine] + sims, nginx


def close(procs):
    for p in procs:
        p.cleanup()


def test_active_checks_open_and_close():
    sims, procs, nginx = gateway(
        "health=/health interval=200ms fails=2 cooloff=1s")
    try:
        for _ in range(6):
            assert chat(nginx.port)[0] == 200
        st = status(nginx.port)
        assert st["b0"]["state"] == "closed"
        assert st["b0"]["health"]["check"] == "/health"
        assert st["b0"]["health"]["breaker"] is True
        wait_checks = time.monotonic() + 5
        while status(nginx.port)["b0"]["health"]["checks"] < 2:
            assert time.monotonic() < wait_checks
            time.sleep(0.05)

        port0 = sims[0].port
        sims[0].stop()
        b0 = wait_state(nginx.port, "b0", "open", timeout=5)
        assert b0["health"]["opened"] == 1
        assert b0["health"]["last_error"].startswith("health check")
        before = b0["requests"]

        for _ in range(10):
            code, data = chat(nginx.port)
            assert code == 200, data
        st = status(nginx.port)
        assert st["b0"]["requests"] == before, "an open backend got traffic"
        assert st["b0"]["state"] == "open"
        assert st["b1"]["state"] == "closed"
        assert 'thinkgate_backend_state{backend="b0"} 2' \
            in prometheus(nginx.port)

        # Back on the same port: after the cool-off the next check is the
        # half-open probe, and it closes the circuit.
        sims[0] = harness.start_sim("--speed", "0", port=port0)
        procs.append(sims[0])
        b0 = wait_state(nginx.port, "b0", "closed", timeout=10)
        assert b0["health"]["opened"] == 1
        assert b0["health"]["closed"] == 1
        before = b0["requests"]
        for _ in range(10):
            assert chat(nginx.port)[0] == 200
        assert status(nginx.port)["b0"]["requests"] > before
        assert 'thinkgate_backend_circuit_closed_total{backend="b0"} 1' \
            in prometheus(nginx.port)
    finally:
        close(procs)


def test_passive_breaking_and_request_probe():
    sims, procs, nginx = gateway("fails=2 cooloff=1s")
    try:
        assert chat(nginx.port)[0] == 200
        assert status(nginx.port)["b0"]["health"]["check"] is None

        port0 = sims[0].port
        sims[0].stop()
        for _ in range(10):
            code, data = chat(nginx.port)
            assert code == 200, data    # refused, retried on b1
        b0 = status(nginx.port)["b0"]
        assert b0["state"] == "open", b0
        assert b0["health"]["opened"] == 1
        errors = b0["errors"]
        for _ in range(5):
            assert chat(nginx.port)[0] == 200
        assert status(nginx.port)["b0"]["errors"] == errors

        sims[0] = harness.start_sim("--speed", "0", port=port0)
        procs.append(sims[0])
        time.sleep(1.1)
        for _ in range(6):
            assert chat(nginx.port)[0] == 200
        b0 = status(nginx.port)["b0"]
        assert b0["state"] == "closed", b0
        assert b0["health"]["closed"] == 1
    finally:
        close(procs)


def test_every_backend_open_is_502():
    sims, procs, nginx = gateway("fails=1 cooloff=60s")
    try:
        for s in sims:
            s.stop()
        code, data = chat(nginx.port)
        assert code == 502
        for name in ("b0", "b1"):
            wait_state(nginx.port, name, "open", timeout=2)
        code, data = chat(nginx.port)
        assert code == 502, data
        err = json.loads(data)["error"]
        assert err["code"] == "backend_down"
        assert "reasoners" in err["message"]
    finally:
        close(procs)
