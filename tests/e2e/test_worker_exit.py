"""Issue 14: an nginx worker that exits outside a reload (kill -9), with a
stream in flight and idle.

The engine sees the dead peer (its end of the registration socket
closes), cancels that worker's requests (the sim's stream is closed), the
master starts a new worker, which registers, and new requests succeed on
both workers.  The other worker is not disturbed.
"""
import http.client
import json
import os
import re
import signal
import time

import pytest

import harness

pytestmark = harness.needs_module()

CHAT = {"model": "thinkgate-sim",
        "messages": [{"role": "user", "content": "What is 17 + 25?"}],
        "max_tokens": 8}


@pytest.fixture
def gw():
    # 20 ms a token: a 4000-token stream is still running when the worker
    # is killed.
    g = harness.Gateway(sim_args=["--step-ms", "20",
                                  "--step-ms-per-seq", "0"])
    try:
        harness.wait_registered(g.nginx, 2)
        yield g
    except Exception:
        g.dump()
        raise
    finally:
        g.close()


def get_json(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", path)
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def registrations(g):
    # a worker not registered yet answers with an error object
    return get_json(g.nginx.port, "/thinkgate/status").get(
        "engine", {}).get("registrations", 0)


def workers(g):
    """The pids of the nginx master's children (its workers)."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces.
        if int(stat.rsplit(")", 1)[1].split()[1]) == g.nginx.p.pid:
            out.append(int(d))
    return sorted(out)


def worker_of(g, client_port):
    """The worker holding the connection from 127.0.0.1:client_port."""
    inode = None
    with open("/proc/net/tcp") as f:
        for line in f.readlines()[1:]:
            fields = line.split()
            local, remote = fields[1], fields[2]
            if (int(local.split(":")[1], 16) == g.nginx.port
                    and int(remote.split(":")[1], 16) == client_port):
                inode = fields[9]
    assert inode, "no server side for client port %d" % client_port
    for pid in workers(g):
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (pid, fd)) == \
                        "socket:[%s]" % inode:
                    return pid
            except OSError:
                pass
    raise AssertionError("no worker holds socket %s" % inode)


def wait_for(what, cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def post(port, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def recovered(g, dead, survivor):
    """After worker `dead` was killed: a new worker replaced it, both are
    registered, the survivor is untouched, and requests succeed (new
    connections, spread over the workers by the kernel)."""
    new = wait_for("the master started no new worker",
                   lambda: [p for p in workers(g) if p != survivor
                            and p != dead])
    assert dead not in workers(g)
    assert survivor in workers(g)
    wait_for("the engine's registrations never came back to 2 (the dead "
             "worker still counted, or the new one not registered)",
             lambda: registrations(g) == 2)
    wait_for("the engine log does not show worker %d registering" % new[0],
             lambda: re.search(r"worker %d registered" % new[0],
                               g.engine.log()))
    for _ in range(8):
        status, raw = post(g.nginx.port, CHAT)
        assert status == 200, raw
    for stream in (False, True):
        status, raw = post(g.nginx.port, dict(CHAT, stream=stream))
        assert status == 200, raw
    assert get_json(g.sim.port, "/sim/stats")["open_streams"] == 0


def test_worker_killed_with_a_stream_in_flight(gw):
    sock, got = harness.open_stream(
        gw.nginx.port, dict(CHAT, stream=True, max_tokens=4000, seed=7))
    assert get_json(gw.sim.port, "/sim/stats")["open_streams"] == 1
    victim = worker_of(gw, sock.getsockname()[1])
    survivor = next(p for p in workers(gw) if p != victim)

    os.kill(victim, signal.SIGKILL)

    # The client's connection dies with its worker.
    sock.settimeout(10)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    sock.close()
    # The engine cancelled the dead worker's request: the sim's stream is
    # closed at once, not after the 4000 tokens (80 s).
    t0 = time.monotonic()
    wait_for("the sim still streams for a dead worker",
             lambda: get_json(gw.sim.port,
                              "/sim/stats")["open_streams"] == 0,
             timeout=5)
    assert time.monotonic() - t0 < 5
    wait_for("the engine log does not show worker %d gone" % victim,
             lambda: re.search(r"worker %d \(registration \d+\) gone: .*"
                               r"1 requests cancelled" % victim,
                               gw.engine.log()))
    # The status request can reach the replacement worker before it has
    # registered: its answer is then an error object, asked again.
    wait_for("the engine still counts a request in flight",
             lambda: get_json(gw.nginx.port, "/thinkgate/status")
             .get("requests", {}).get("in_flight") == 0)
    recovered(gw, victim, survivor)


def test_idle_worker_killed(gw):
    victim, survivor = workers(gw)
    os.kill(victim, signal.SIGKILL)
    wait_for("the engine log does not show worker %d gone" % victim,
             lambda: re.search(r"worker %d \(registration \d+\) gone: .*"
                               r"0 requests cancelled" % victim,
                               gw.engine.log()))
    recovered(gw, victim, survivor)
