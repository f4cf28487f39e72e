"""A sim killed under concurrent load, end to end.

Eight client threads send small chat requests, streamed and not, without
pause to a pool of three sims (one decode slot each, so requests also
wait in the sims' queues).  One sim is killed (SIGKILL) in the middle of
it and the load goes on; later it is started again on the same port.

What must hold:
- the killed sim's circuit opens (active checks and failed transfers) and
  it gets no new traces while open;
- every request the killed sim had not started answering (waiting in its
  queue, generating a whole answer not yet sent, or not yet sent to it)
  is retried on another sim and succeeds: 0 client errors among them;
- a request the killed sim was in the middle of answering ends with a
  clean SSE error event after the data it already had, or, when none of
  it had reached the client yet, is a 502 naming the sim (OpenAI's error
  shape either way); at most the one the sim was decoding;
- after the restart the active check closes the circuit and traffic
  comes back to that sim.

The counts are printed (pytest -s) for the notes.
"""
import http.client
import json
import threading
import time

import harness
from test_health import status, wait_state

THREADS = 8


def clean_b0_error(status, data):
    """A 502 in OpenAI's shape naming b0: what a request gets when b0 had
    started answering it (sent a byte of its answer) and none of that had
    reached the client yet."""
    try:
        err = json.loads(data).get("error")
    except ValueError:
        return None
    if (status == 502 and isinstance(err, dict)
            and err.get("code") == "backend_error"
            and '"b0"' in err.get("message", "")):
        return err
    return None


def sim_stats(sim):
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    conn.request("GET", "/sim/stats")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def one_request(port, stream, seq):
    """One chat request: ("ok"|"midstream"|"error", detail)."""
    body = {"model": "thinkgate-sim", "max_tokens": 12, "stream": stream,
            "messages": [{"role": "user",
                          "content": "Load request %d: what is 2 + 2?"
                                     % seq}]}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        if not stream:
            data = resp.read()
            if resp.status != 200:
                err = clean_b0_error(resp.status, data)
                if err is not None:
                    return "midstream", err
                return "error", "whole %d %s" % (resp.status, data[:300])
            doc = json.loads(data)
            if not doc.get("choices"):
                return "error", "no choices: %s" % data[:300]
            return "ok", None
        if resp.status != 200:
            data = resp.read()
            err = clean_b0_error(resp.status, data)
            if err is not None:
                return "midstream", err
            return "error", "%d %s" % (resp.status, data[:300])
        chunks = 0
        done = False
        error = None
        for raw in resp:
            line = raw.decode().rstrip("\r\n")
            if not line.startswith("data: "):
                continue
            payload = line[6:]
            if payload == "[DONE]":
                done = True
                break
            doc = json.loads(payload)
            if "error" in doc:
                error = doc["error"]
                continue
            chunks += 1
        if error is not None:
            clean = (isinstance(error, dict)
                     and isinstance(error.get("message"), str)
                     and "type" in error)
            if chunks > 0 and clean:
                return "midstream", error
            return "error", "stream error after %d chunks: %s" \
                % (chunks, error)
        if not done or chunks == 0:
            return "error", "stream cut after %d chunks" % chunks
        return "ok", None
    except (OSError, http.client.HTTPException, ValueError) as e:
        return "error", repr(e)
    finally:
        conn.close()


def test_sim_killed_under_load():
    sims = [harness.start_sim("--speed", "1", "--step-ms", "15",
                              "--max-concurrency", "1")
            for _ in range(3)]
    http_conf = "".join(
        "    thinkgate_backend b%d %s max_inflight=64 health=/health "
        "interval=200ms fails=2 cooloff=2s;\n" % (i, s.url)
        for i, s in enumerate(sims))
    http_conf += "    thinkgate_pool reasoners b0 b1 b2;\n"
    engine = harness.start_engine()
    nginx = harness.start_nginx(engine.sock, http_conf)
    procs = [nginx, engine] + sims
    lock = threading.Lock()
    results = []
    stop = threading.Event()

    def client(n):
        seq = 0
        while not stop.is_set():
            seq += 1
            outcome = one_request(nginx.port, (n + seq) % 2 == 0,
                                  n * 100000 + seq)
            with lock:
                results.append(outcome)

    try:
        harness.wait_registered(nginx)
        threads = [threading.Thread(target=client, args=(n,), daemon=True)
                   for n in range(THREADS)]
        for th in threads:
            th.start()

        # Load on all three, then b0 dies in the middle of it.
        deadline = time.monotonic() + 30
        while status(nginx.port)["b0"]["requests"] < 10:
            assert time.monotonic() < deadline, "b0 gets no load"
            time.sleep(0.05)
        # ... at a moment when it has requests waiting in its queue
        # (taken, 200 head sent for a stream, no byte of an answer yet).
        # Two waiting make it likely that one is a stream (its head sent).
        deadline = time.monotonic() + 30
        want = 2
        while sim_stats(sims[0])["queued"] < want:
            assert time.monotonic() < deadline, "b0 never queues"
            if time.monotonic() > deadline - 20:
                want = 1
        port0 = sims[0].port
        sims[0].kill()
        with lock:
            at_kill = len(results)
        b0 = wait_state(nginx.port, "b0", "open", timeout=5)
        assert b0["health"]["opened"] == 1, b0

        # While it is open, b0 gets no new trace and the load goes on.  A
        # probe after the cool-off would fail and open it again (opened
        # 2), so equal counts are asked only while it stays open once.
        time.sleep(0.5)
        st = status(nginx.port)
        if st["b0"]["state"] == "open" and st["b0"]["health"]["opened"] == 1:
            assert st["b0"]["requests"] == b0["requests"], \
                "an open backend got traffic"
        with lock:
            while_open = len(results)

        sims[0] = harness.start_sim("--speed", "1", "--step-ms", "15",
                                    "--max-concurrency", "1", port=port0)
        procs.append(sims[0])
        b0 = wait_state(nginx.port, "b0", "closed", timeout=10)
        assert b0["health"]["closed"] >= 1, b0
        served = b0["requests"]
        deadline = time.monotonic() + 30
        while status(nginx.port)["b0"]["requests"] < served + 10:
            assert time.monotonic() < deadline, "no traffic back to b0"
            time.sleep(0.05)

        stop.set()
        for th in threads:
            th.join(90)
            assert not th.is_alive(), "a client thread hangs"

        ok = sum(1 for o, _ in results if o == "ok")
        mid = [d for o, d in results if o == "midstream"]
        other = [d for o, d in results if o == "error"]
        st = status(nginx.port)
        log = engine.log()
        retried = log.count("failed before answering")
        refused = log.count("unreachable: ")
        print("\nsim killed under load: sent=%d (at kill %d) ok=%d "
              "clean errors of requests b0 was answering=%d other errors=%d; "
              "traces b0 had taken, retried elsewhere=%d, refused connects "
              "retried=%d; "
              "b0 opened=%d closed=%d requests=%d errors=%d"
              % (len(results), at_kill, ok, len(mid), len(other), retried,
                 refused,
                 st["b0"]["health"]["opened"],
                 st["b0"]["health"]["closed"], st["b0"]["requests"],
                 st["b0"]["errors"]))
        assert other == [], other[:5]
        assert ok + len(mid) == len(results)
        # At most the one b0 was decoding when it died (one slot); the
        # ones waiting in its queue went to another sim.
        assert len(mid) <= 1, mid
        # A request b0 had taken and not answered is retried as a failure
        # before answering, or, when curl itself tried it again on a fresh
        # connection (a kept-alive one that died before any byte), as a
        # refused connection.
        assert retried + refused >= 1, "no request was retried elsewhere"
        assert ok > while_open > at_kill
        for s in sims:
            assert s.poll() is None
    finally:
        stop.set()
        for p in procs:
            p.cleanup()
