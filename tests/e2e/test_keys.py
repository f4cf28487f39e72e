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
        # Until the old workers have stopped accepting, a connection can
        # still reach one of them (seen once in a full run: alice's old
        # key answered 200 after bob's was already refused); within the
        # deadline both old keys must be refused.
        deadline = time.monotonic() + 10
        while (chat(nginx.port, bob)[0] != 401
               or chat(nginx.port, alice)[0] != 401):
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
                       capture_output=True, text=True,
                       env=harness.nginx_env())
    assert p.returncode != 0
    assert "thinkgate_keys" in p.stderr and "line 1" in p.stderr, p.stderr
    conf.write_text(harness.nginx_conf(
        str(tmp_path), harness.free_port(), str(tmp_path / "s.sock"),
        "    thinkgate_keys ldap;\n", ""))
    p = subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c", str(conf)],
                       capture_output=True, text=True,
                       env=harness.nginx_env())
    assert p.returncode != 0
    assert "thinkgate_keys" in p.stderr and "ldap" in p.stderr, p.stderr


AUTH_HTTP = """
    map $http_authorization $idp_user {
        "Bearer idp-alice"  alice;
        "Bearer idp-ghost"  ghost;
        default             "";
    }
"""

AUTH_SERVER = """
        location = /_idp {
            internal;
            proxy_pass http://127.0.0.1:{port}/idp;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
        }
        location = /idp {
            if ($idp_user = "") {
                return 401;
            }
            add_header X-Thinkgate-Key $idp_user;
            return 204;
        }
        location /v1/ {
            auth_request /_idp;
            auth_request_set $tg_key $upstream_http_x_thinkgate_key;
            thinkgate_pass reasoners;
            thinkgate_auth on;
            thinkgate_auth_key $tg_key;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


def test_auth_request_names_the_key(tmp_path):
    """Beside nginx's auth_request: the identity provider's answer names
    the key (a header, through auth_request_set and thinkgate_auth_key);
    its rights apply; a name that is no key is a 401 in OpenAI's shape;
    the provider's own refusal stays its own."""
    path = str(tmp_path / "keys")
    keys(path, "create", "alice", "--models", "thinkgate-sim")
    sim = harness.start_sim("--speed", "0")
    engine = harness.start_engine()
    http_conf = AUTH_HTTP + ("    thinkgate_backend b0 %s;\n"
                             "    thinkgate_pool reasoners b0;\n"
                             "    thinkgate_keys file=%s;\n"
                             % (sim.url, path))
    port = harness.free_port()
    nginx = harness.start_nginx(engine.sock, http_conf,
                                AUTH_SERVER.replace("{port}", str(port)),
                                port=port)
    try:
        harness.wait_registered(nginx)
        code, data, _ = chat(nginx.port, "idp-alice")
        assert code == 200, data
        assert json.loads(data)["thinkgate"]["key"] == "alice"
        code, data, _ = chat(nginx.port, "idp-alice", model="gpt-x")
        assert code == 403, data
        assert json.loads(data)["error"]["code"] == "model_not_allowed"
        code, data, www = chat(nginx.port, "idp-ghost")
        assert code == 401, data
        assert json.loads(data)["error"]["code"] == "invalid_api_key"
        assert www == "Bearer"
        # refused by the provider: nginx's 401, the gateway never asked
        assert chat(nginx.port, "nobody")[0] == 401
    finally:
        for p in (nginx, engine, sim):
            p.cleanup()


def _models(port, key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/v1/models", headers={"Authorization":
                                               "Bearer " + key})
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, data


def test_models_list_follows_the_key(tmp_path):
    """GET /v1/models through an authenticated location lists only the
    names the key may use (a model name, or a pool granting its names),
    the same the chat endpoint lets through; a key without models= sees
    every name, and a missing key is a 401."""
    path = str(tmp_path / "keys")
    one = keys(path, "create", "one", "--models", "alpha-7b")
    pool = keys(path, "create", "pool", "--models", "pb")
    anyk = keys(path, "create", "any")

    sims = [harness.start_sim("--speed", "0", "--model", m)
            for m in ("alpha-7b", "beta-32b")]
    engine = harness.start_engine()
    http_conf = ("    thinkgate_backend a %s model=alpha-7b;\n"
                 "    thinkgate_backend b %s model=beta-32b;\n"
                 "    thinkgate_pool pa a;\n"
                 "    thinkgate_pool pb b;\n"
                 "    thinkgate_model gpt-4o pb model=beta-32b;\n"
                 "    thinkgate_model fast pa;\n"
                 "    thinkgate_keys file=%s;\n"
                 % (sims[0].url, sims[1].url, path))
    server = ("        location /v1/ { thinkgate_pass; thinkgate_auth on; }\n"
              "        location = /thinkgate/status { thinkgate_status; }\n")
    nginx = harness.start_nginx(engine.sock, http_conf, server)
    try:
        harness.wait_registered(nginx)
        seen = {}
        for name, key in (("one", one), ("pool", pool), ("any", anyk)):
            code, data = _models(nginx.port, key)
            assert code == 200, data
            doc = json.loads(data)
            assert doc["object"] == "list"
            seen[name] = sorted(m["id"] for m in doc["data"])
        assert seen["one"] == ["alpha-7b"], seen
        assert seen["pool"] == ["beta-32b", "gpt-4o"], seen
        assert seen["any"] == ["alpha-7b", "beta-32b", "fast", "gpt-4o"], \
            seen

        # what the list shows is what chat lets through, and no more
        for name, key in (("one", one), ("pool", pool)):
            for model in seen["any"]:
                code, data, _ = chat(nginx.port, key, model=model)
                if model in seen[name]:
                    assert code == 200, (name, model, data)
                else:
                    assert code == 403, (name, model, data)
                    assert json.loads(data)["error"]["code"] \
                        == "model_not_allowed"

        code, data = _models(nginx.port, "sk-tg-nope")
        assert code == 401, data
        assert json.loads(data)["error"]["code"] == "invalid_api_key"
    finally:
        for p in [nginx, engine] + sims:
            p.cleanup()
