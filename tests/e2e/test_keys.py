"""Client API keys (thinkgate_keys file=, thinkgate_auth): keys made with
tools/thinkgate-keys are accepted, a missing or unknown key is a 401 in
OpenAI's shape, a key without the right to a model or strategy is a 403
naming it, a revoked key is refused after nginx reads the file again, and
nginx -t refuses a malformed key file naming the line.  Budgets and
Redis-kept keys: test_keys_budget.py."""
import http.client
import json
import os
import signal
import subprocess
import time

import harness

TOOL = os.path.join(harness.ROOT, "tools", "thinkgate-keys")
BODY = {"model": "thinkgate-sim", "max_tokens": 8,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}]}


def keys(path, *args):
    return subprocess.run([TOOL, "--file", path] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def chat(port, key=None, strategy=None, model=None):
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    body = dict(BODY)
    if strategy:
        body["thinkgate"] = strategy
    if model:
        body["model"] = model
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/v1/chat/completions", json.dumps(body), h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data, resp.getheader("WWW-Authenticate")


def test_keys_accept_refuse_revoke(tmp_path):
    path = str(tmp_path / "keys")
    alice = keys(path, "create", "alice", "--models", "*")
    bob = keys(path, "create", "bob")
    assert alice.startswith("sk-tg-")
    text = open(path).read()
    assert alice not in text and bob not in text, "stored in clear"
    assert "alice" in keys(path, "list")

    sim = harness.start_sim("--speed", "0")
    engine = harness.start_engine()
    http_conf = ("    thinkgate_backend b0 %s;\n"
                 "    thinkgate_pool reasoners b0;\n"
                 "    thinkgate_keys file=%s;\n" % (sim.url, path))
    server = harness.DEFAULT_SERVER.replace(
        "thinkgate_pass reasoners;", "thinkgate_pass reasoners; "
        "thinkgate_auth on;")
    nginx = harness.start_nginx(engine.sock, http_conf, server)
    try:
        harness.wait_registered(nginx)
        assert chat(nginx.port, alice)[0] == 200
        assert chat(nginx.port, bob)[0] == 200
        for key in (None, "sk-tg-nope"):
            code, data, www = chat(nginx.port, key)
            assert code == 401
            err = json.loads(data)["error"]
            assert err["code"] == "invalid_api_key"
            assert err["type"] == "invalid_request_error"
            assert www == "Bearer"

        keys(path, "revoke", "bob")
        new_alice = keys(path, "rotate", "alice")
        os.kill(nginx.p.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while chat(nginx.port, bob)[0] != 401:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        harness.wait_registered(nginx)
        assert chat(nginx.port, alice)[0] == 401
        assert chat(nginx.port, new_alice)[0] == 200
    finally:
        for p in (nginx, engine, sim):
            p.cleanup()


def test_keys_forbidden_model_and_strategy(tmp_path):
    """403 in OpenAI's shape, naming the model or the strategy, checked
    after routing and strategy selection; a pool name grants its models,
    and a key without models=/strategies= may use any."""
    path = str(tmp_path / "keys")
    other = keys(path, "create", "other", "--models", "gpt-x,gpt-y")
    plain = keys(path, "create", "plain", "--strategies", "passthrough")
    pool = keys(path, "create", "pool", "--models", "reasoners",
                "--strategies", "passthrough,ffs")
    anyk = keys(path, "create", "any")

    sim = harness.start_sim("--speed", "0")
    engine = harness.start_engine()
    http_conf = ("    thinkgate_backend b0 %s;\n"
                 "    thinkgate_pool reasoners b0;\n"
                 "    thinkgate_keys file=%s;\n" % (sim.url, path))
    server = harness.DEFAULT_SERVER.replace(
        "thinkgate_pass reasoners;", "thinkgate_pass reasoners; "
        "thinkgate_auth on; thinkgate_client_strategy on;")
    nginx = harness.start_nginx(engine.sock, http_conf, server)
    ffs = {"strategy": "ffs", "n": 2}
    try:
        harness.wait_registered(nginx)
        code, data, _ = chat(nginx.port, other)
        assert code == 403, data
        err = json.loads(data)["error"]
        assert err["code"] == "model_not_allowed"
        assert err["type"] == "invalid_request_error"
        assert err["param"] == "model"
        assert "thinkgate-sim" in err["message"]
        assert "`other`" in err["message"]

        assert chat(nginx.port, plain)[0] == 200
        code, data, _ = chat(nginx.port, plain, ffs)
        assert code == 403, data
        err = json.loads(data)["error"]
        assert err["code"] == "strategy_not_allowed"
        assert err["type"] == "invalid_request_error"
        assert "`ffs`" in err["message"], err

        code, data, _ = chat(nginx.port, pool, ffs)
        assert code == 200, data
        tg = json.loads(data)["thinkgate"]
        assert tg["strategy"] == "ffs" and tg["key"] == "pool"
        assert chat(nginx.port, anyk, ffs)[0] == 200
        # without Redis, status says the limits are this gateway's own
        st = json.loads(_status(nginx.port))
        assert st["keys"]["limits"] == "local"
    finally:
        for p in (nginx, engine, sim):
            p.cleanup()


def _status(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/thinkgate/status")
    data = conn.getresponse().read()
    conn.close()
    return data


def test_bad_key_file_refused(tmp_path):
    path = tmp_path / "keys"
    path.write_text("alice 1234\n")
    conf = tmp_path / "nginx.conf"
    conf.write_text(harness.nginx_conf(
        str(tmp_path), harness.free_port(), str(tmp_path / "s.sock"),
        "    thinkgate_keys file=%s;\n" % path, ""))
    p = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "thinkgate_keys" in p.stderr and "line 1" in p.stderr, p.stderr
    conf.write_text(harness.nginx_conf(
        str(tmp_path), harness.free_port(), str(tmp_path / "s.sock"),
        "    thinkgate_keys ldap;\n", ""))
    p = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
                       capture_output=True, text=True)
    assert p.returncode != 0
    assert "thinkgate_keys" in p.stderr and "ldap" in p.stderr, p.stderr
