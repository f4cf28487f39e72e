"""thinkgate_deadline (issue 14, bug 6): thinkgate_timeout bounds only a
backend's silence, so a backend that trickles a chunk now and then held a
request for as long as it liked.  The deadline bounds the whole request:
past it the client gets 504 deadline_exceeded (an SSE error event when a
stream had begun) and every backend stream is closed.

The sim plays the trickling backend: one token every 200 ms, and a
synthetic trace of thousands of tokens would run for many minutes.  The
idle timeout (thinkgate_timeout) is 10 s, so what cuts at 1.25 s is the
deadline (short, so that the six cut requests cost seconds, not half a
minute: the test is about what the cut does, not how long it takes); passthrough without streaming asks the sim for its whole answer
(silent until done), where the deadline cuts just the same."""
import http.client
import json
import time

import pytest

import harness

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_timeout 10s;
            thinkgate_deadline 1250ms;
        }
        location /ffs/v1/ {
            thinkgate_pass reasoners;
            thinkgate_timeout 10s;
            thinkgate_deadline 1250ms;
            thinkgate_strategy ffs n=4;
        }
        location /sc/v1/ {
            thinkgate_pass reasoners;
            thinkgate_timeout 10s;
            thinkgate_deadline 1250ms;
            thinkgate_strategy self_consistency n=4;
        }
        location /off/v1/ {
            thinkgate_pass reasoners;
            thinkgate_deadline off;
        }
        location = /thinkgate/status { thinkgate_status; }
"""

CHAT = {"model": "thinkgate-sim", "max_tokens": 100000,
        "messages": [{"role": "user", "content": "What is 17 + 25?"}]}


@pytest.fixture(scope="module")
def gw():
    g = harness.Gateway(sim_args=["--step-ms", "200",
                                  "--step-ms-per-seq", "0"],
                        server=SERVER)
    harness.wait_registered(g.nginx)
    yield g
    g.close()


def sim_open_streams(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.sim.port, timeout=5)
    conn.request("GET", "/sim/stats")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc["open_streams"]


def wait_no_open_streams(gw):
    until = time.monotonic() + 3
    while sim_open_streams(gw) != 0:
        assert time.monotonic() < until, "backend streams left open"
        time.sleep(0.02)


def post(gw, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", gw.nginx.port,
                                      timeout=30)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, resp.getheader("Content-Type"), raw


def check_deadline_error(err):
    assert err["type"] == "timeout_error", err
    assert err["code"] == "deadline_exceeded", err
    assert "1250 ms" in err["message"], err


@pytest.mark.parametrize("prefix", ["/v1", "/ffs/v1", "/sc/v1"])
def test_trickling_backend_is_cut_non_streamed(gw, prefix):
    status, ctype, raw = post(gw, prefix + "/chat/completions", CHAT)
    assert status == 504, raw
    assert ctype.startswith("application/json"), ctype
    doc = json.loads(raw)
    assert set(doc) == {"error"}, doc
    check_deadline_error(doc["error"])
    wait_no_open_streams(gw)


@pytest.mark.parametrize("prefix", ["/v1", "/ffs/v1", "/sc/v1"])
def test_trickling_backend_is_cut_streamed(gw, prefix):
    status, ctype, raw = post(gw, prefix + "/chat/completions",
                              dict(CHAT, stream=True))
    if status == 504:
        # nothing had reached the client yet: a plain JSON error
        check_deadline_error(json.loads(raw)["error"])
    else:
        assert status == 200, raw
        assert ctype.startswith("text/event-stream"), ctype
        events = [e[len("data: "):] for e in
                  raw.decode().strip().split("\n\n")
                  if e.startswith("data: ")]
        assert events, raw
        last = json.loads(events[-1])
        assert set(last) == {"error"}, last
        check_deadline_error(last["error"])
        for e in events[:-1]:
            assert "error" not in json.loads(e), e
    if prefix == "/v1":
        # passthrough relays the trickle: chunks came before the error
        assert status == 200 and raw.count(b"data: ") >= 3, raw
    wait_no_open_streams(gw)


def test_request_within_the_deadline_is_served(gw):
    status, _, raw = post(gw, "/v1/chat/completions",
                          dict(CHAT, max_tokens=2))
    assert status == 200, raw
    assert json.loads(raw)["choices"][0]["finish_reason"] == "length"


def test_deadline_off(gw):
    """off: only thinkgate_timeout (10 min by default) applies; the
    request (9 tokens, 1.8 s) outlives the other locations' 1.25 s
    deadline."""
    status, _, raw = post(gw, "/off/v1/chat/completions",
                          dict(CHAT, max_tokens=9))
    assert status == 200, raw
    assert json.loads(raw)["usage"]["completion_tokens"] == 9
