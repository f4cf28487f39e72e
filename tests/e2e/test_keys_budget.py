"""Budgets and rate limits of client keys (issue 17): a key's token budget
counts what the GPUs spent (every trace of an ffs n=8 request, cancelled
ones included, prompt and completion), lets requests through until the
count passes the budget, then answers 429 with Retry-After in OpenAI's
shape until the window resets; two gateways on one Redis share the
budget; keys kept in Redis (thinkgate_keys redis) are revoked for every
gateway at once; auth_request names the key; Prometheus counts per key
with bounded labels.  Real nginx, engines, sims and redis-server."""
import http.client
import json
import os
import signal
import subprocess
import time

import harness

TOOL = os.path.join(harness.ROOT, "tools", "thinkgate-keys")
BODY = {"model": "thinkgate-sim", "max_tokens": 16,
        "messages": [{"role": "user", "content": "What is 2 + 2?"}]}
FFS8 = {"strategy": "ffs", "n": 8}
PREFIX = "tgkeys:"
WINDOW = 4      # seconds: the keys' short window here (window=)

need_redis = harness.needs_redis()

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_auth on;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


def tool(*args):
    return subprocess.run([TOOL] + list(args), check=True,
                          capture_output=True, text=True).stdout.strip()


def chat(port, key, strategy=None, path="/v1/chat/completions",
         headers=None):
    """(status, headers, JSON document) of one chat completion."""
    h = {"Content-Type": "application/json"}
    if key:
        h["Authorization"] = "Bearer " + key
    h.update(headers or {})
    body = dict(BODY)
    if strategy:
        body["thinkgate"] = strategy
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.request("POST", path, json.dumps(body), h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    try:
        doc = json.loads(data)
    except ValueError:
        doc = {"raw": data.decode(errors="replace")}
    return resp.status, dict(resp.getheaders()), doc


def status(port, prom=False):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("GET", "/thinkgate/status"
                 + ("?format=prometheus" if prom else ""))
    data = conn.getresponse().read().decode()
    conn.close()
    return data if prom else json.loads(data)


def reload(nginx, key):
    """nginx reads its key file again; waits until key is accepted."""
    os.kill(nginx.p.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while True:
        code = chat(nginx.port, key)[0]
        if code == 200:
            break
        # 401: an old worker; 503: a new one still registering
        assert code in (401, 503), code
        assert time.monotonic() < deadline, "reload did not take the key"
        time.sleep(0.1)
    harness.wait_registered(nginx)


def http_conf(sims, keys, redis=None):
    conf = "".join("    thinkgate_backend b%d %s max_inflight=64;\n"
                   % (i, s.url) for i, s in enumerate(sims))
    conf += "    thinkgate_pool reasoners %s;\n" % " ".join(
        "b%d" % i for i in range(len(sims)))
    conf += "    thinkgate_keys %s;\n" % keys
    if redis:
        conf += ("    thinkgate_redis %s prefix=%s connect_timeout=500ms "
                 "timeout=500ms;\n" % (redis.addr, PREFIX))
    return conf


def spent_of(doc):
    return doc["thinkgate"]["key_tokens_spent"]


def check_ffs_cost(doc):
    """An ffs n=8 answer's charge is all 8 traces: their completion tokens
    (the thinkgate object's tokens, cancelled traces included) and 8
    prompts."""
    tg = doc["thinkgate"]
    assert tg["strategy"] == "ffs" and tg["traces_started"] == 8, tg
    prompt = doc["usage"]["prompt_tokens"]
    assert prompt > 0
    assert tg["key_tokens_spent"] == tg["tokens"] + 8 * prompt, (tg, prompt)
    # far more than the answer the client sees
    assert tg["key_tokens_spent"] > doc["usage"]["total_tokens"]
    return tg["key_tokens_spent"]


def check_429(code, headers, doc):
    assert code == 429, (code, doc)
    err = doc["error"]
    assert err["code"] == "rate_limit_exceeded", err
    assert err["type"] == "tokens", err
    assert "`budget`" in err["message"], err
    retry = int(headers["Retry-After"])
    assert 1 <= retry <= WINDOW, headers
    return retry


def test_budget_local_counts_every_trace(tmp_path):
    """Without Redis: a budget of N tokens per window lets ffs n=8
    requests through while the count is under N, then 429 with
    Retry-After; after the window the key is served again."""
    path = str(tmp_path / "keys")
    log = str(tmp_path / "keys.log")
    probe = tool("--file", path, "create", "probe")
    sim = harness.start_sim("--speed", "0")
    engine = harness.start_engine()
    conf = http_conf([sim], "file=" + path) + (
        "    log_format keys '$thinkgate_key $thinkgate_key_tokens_spent "
        "$thinkgate_key_tokens_remaining $status';\n")
    server = SERVER.replace("thinkgate_auth on;", "thinkgate_auth on;\n"
                            "            access_log %s keys;" % log)
    nginx = harness.start_nginx(engine.sock, conf, server)
    try:
        harness.wait_registered(nginx)
        code, _, doc = chat(nginx.port, probe, FFS8)
        assert code == 200, doc
        cost = check_ffs_cost(doc)

        budget_n = cost * 5 // 2
        budget = tool("--file", path, "create", "budget", "--tpm",
                      str(budget_n), "--window", str(WINDOW))
        reload(nginx, budget)
        # the reload's probe request (passthrough) counts too
        time.sleep(WINDOW + 0.5)

        used, passed = 0, 0
        while True:
            code, headers, doc = chat(nginx.port, budget, FFS8)
            if code != 200:
                break
            assert used < budget_n, "admitted over the budget"
            spent = check_ffs_cost(doc)
            assert doc["thinkgate"]["key"] == "budget"
            assert doc["thinkgate"]["key_tokens_remaining"] == max(
                0, budget_n - used - spent)
            used += spent
            passed += 1
            assert passed < 20
        retry = check_429(code, headers, doc)
        assert used >= budget_n
        assert passed == 3, (passed, used, budget_n)
        print("budget %d tokens, ffs n=8 costs %d: %d requests passed "
              "(%d tokens), then 429 Retry-After %d"
              % (budget_n, cost, passed, used, retry))

        # the probe key has no budget: unaffected
        assert chat(nginx.port, probe)[0] == 200
        # the window resets
        time.sleep(retry + 0.2)
        code, _, doc = chat(nginx.port, budget, FFS8)
        assert code == 200, doc
        assert doc["thinkgate"]["key_tokens_remaining"] == max(
            0, budget_n - spent_of(doc))
        st = status(nginx.port)
        assert st["keys"]["limits"] == "local"
        # the access log's $thinkgate_key* variables
        with open(log) as f:
            lines = [ln.split() for ln in f]
        assert ["budget", str(spent_of(doc)),
                str(doc["thinkgate"]["key_tokens_remaining"]),
                "200"] == lines[-1], lines[-1]
        assert lines[0][0] == "probe" and lines[0][2] == "-"
        assert ["budget", "-", "-", "429"] in lines
    finally:
        for p in (nginx, engine, sim):
            p.cleanup()


def redis_used(redis, name):
    v = harness.redis_cli(redis.port, "GET", PREFIX + "key:{%s}:tok" % name)
    return int(v) if v else 0


def wait_used(redis, name, want):
    """The charges of requests already answered reached Redis (a charge
    is sent when the request closes, on that gateway's connection)."""
    deadline = time.monotonic() + 10
    while redis_used(redis, name) != want:
        assert time.monotonic() < deadline, (redis_used(redis, name), want)
        time.sleep(0.02)


@need_redis
def test_budget_shared_by_two_gateways(tmp_path):
    """Two nginx+engine pairs on one Redis share a key's budget: requests
    alternate between them until the shared count passes N, then both
    answer 429, and both serve the key again after the window."""
    path = str(tmp_path / "keys")
    probe = tool("--file", path, "create", "probe")
    redis = harness.start_redis()
    sims = [harness.start_sim("--speed", "0") for _ in range(2)]
    procs = [redis] + sims
    try:
        conf = http_conf(sims, "file=" + path, redis)
        pairs = []
        for _ in range(2):
            engine = harness.start_engine()
            procs.append(engine)
            nginx = harness.start_nginx(engine.sock, conf, SERVER)
            procs.append(nginx)
            harness.wait_registered(nginx)
            pairs.append(nginx)
        a, b = pairs
        deadline = time.monotonic() + 10
        while status(a.port)["keys"]["limits"] != "shared":
            assert time.monotonic() < deadline
            time.sleep(0.05)

        code, _, doc = chat(a.port, probe, FFS8)
        assert code == 200, doc
        cost = check_ffs_cost(doc)
        budget_n = cost * 7 // 2
        budget = tool("--file", path, "create", "budget", "--tpm",
                      str(budget_n), "--window", str(WINDOW))
        reload(a, budget)
        reload(b, budget)
        time.sleep(WINDOW + 0.5)
        assert redis_used(redis, "budget") == 0

        used, passed, turn = 0, [0, 0], 0
        while True:
            gw = pairs[turn % 2]
            code, headers, doc = chat(gw.port, budget, FFS8)
            if code != 200:
                break
            assert used < budget_n
            used += check_ffs_cost(doc)
            passed[turn % 2] += 1
            turn += 1
            wait_used(redis, "budget", used)
            assert turn < 20
        check_429(code, headers, doc)
        assert used >= budget_n
        assert sum(passed) == 4 and passed == [2, 2], passed
        # the other gateway refuses too: the count is shared
        other = pairs[(turn + 1) % 2]
        code, headers, doc = chat(other.port, budget, FFS8)
        retry = check_429(code, headers, doc)
        print("shared budget %d tokens, ffs n=8 costs %d: %s requests "
              "passed on gateways A, B (%d tokens), then 429 on both"
              % (budget_n, cost, passed, used))

        time.sleep(retry + 0.2)
        for gw in pairs:
            code, _, doc = chat(gw.port, budget)
            assert code == 200, doc
        st = status(b.port)
        assert st["keys"]["limits"] == "shared"
    finally:
        for p in reversed(procs):
            p.cleanup()


def start_pairs(procs, conf, server=SERVER, n=2, engine_args=()):
    pairs = []
    for _ in range(n):
        engine = harness.start_engine(args=engine_args)
        procs.append(engine)
        nginx = harness.start_nginx(engine.sock, conf, server)
        procs.append(nginx)
        harness.wait_registered(nginx)
        pairs.append(nginx)
    for gw in pairs:
        deadline = time.monotonic() + 10
        while status(gw.port)["keys"]["limits"] != "shared":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    return pairs


@need_redis
def test_redis_key_store_two_gateways(tmp_path):
    """thinkgate_keys redis: keys made, rotated and revoked with
    tools/thinkgate-keys --redis hold for the next request of every
    gateway on that Redis, without a reload; only digests are stored;
    limits set there are enforced (rpm, tpd)."""
    redis = harness.start_redis()
    sims = [harness.start_sim("--speed", "0")]
    procs = [redis] + sims
    adm = ["--redis", redis.addr, "--prefix", PREFIX]
    try:
        a, b = start_pairs(procs, http_conf(sims, "redis", redis))
        alice = tool(*adm, "create", "alice", "--models", "reasoners")
        for gw in (a, b):
            code, _, doc = chat(gw.port, alice)
            assert code == 200, doc
            assert doc["thinkgate"]["key"] == "alice"
        assert tool(*adm, "list") == "alice models=reasoners"
        dump = subprocess.run(["redis-cli", "-p", str(redis.port),
                               "--scan"], capture_output=True,
                              text=True).stdout
        assert alice not in dump
        for k in dump.split():
            vals = harness.redis_cli(redis.port, "HGETALL", k)
            assert alice not in vals, "stored in clear"

        code, headers, doc = chat(a.port, "sk-tg-unknown")
        assert code == 401, doc
        assert doc["error"]["code"] == "invalid_api_key"
        assert headers.get("WWW-Authenticate") == "Bearer"
        assert chat(b.port, None)[0] == 401

        new = tool(*adm, "rotate", "alice")
        for gw in (a, b):
            assert chat(gw.port, alice)[0] == 401
            assert chat(gw.port, new)[0] == 200
        tool(*adm, "revoke", "alice")
        for gw in (b, a):
            code, _, doc = chat(gw.port, new)
            assert code == 401, doc
        assert tool(*adm, "list") == ""

        # limits kept in Redis: 2 requests per window, shared, counted
        # when admitted
        rpm = tool(*adm, "create", "rpm2", "--rpm", "2", "--window",
                   str(WINDOW))
        assert chat(a.port, rpm)[0] == 200
        assert harness.redis_cli(redis.port, "GET",
                                 PREFIX + "key:{rpm2}:req") == "1"
        code, _, doc = chat(b.port, rpm)
        assert code == 200 and doc["thinkgate"][
            "key_requests_remaining"] == 0, doc
        code, headers, doc = chat(a.port, rpm)
        assert code == 429, doc
        assert doc["error"]["type"] == "requests"
        assert doc["error"]["code"] == "rate_limit_exceeded"
        assert 1 <= int(headers["Retry-After"]) <= WINDOW

        # a day's budget spent: insufficient_quota
        day = tool(*adm, "create", "day1", "--tpd", "1")
        assert chat(b.port, day)[0] == 200
        deadline = time.monotonic() + 10
        while not harness.redis_cli(redis.port, "GET",
                                    PREFIX + "key:{day1}:day"):
            assert time.monotonic() < deadline
            time.sleep(0.02)
        code, headers, doc = chat(a.port, day)
        assert code == 429, doc
        assert doc["error"]["code"] == "insufficient_quota"
        assert doc["error"]["type"] == "insufficient_quota"
        assert int(headers["Retry-After"]) > 3600
    finally:
        for p in reversed(procs):
            p.cleanup()


def test_redis_key_store_needs_redis(tmp_path):
    """nginx -t refuses thinkgate_keys redis without thinkgate_redis, and
    a malformed limit in the key file, naming the directive and value."""
    conf = tmp_path / "nginx.conf"

    def nginx_t(http):
        conf.write_text(harness.nginx_conf(
            str(tmp_path), harness.free_port(), str(tmp_path / "s.sock"),
            http, ""))
        return subprocess.run(["nginx", "-t", "-p", str(tmp_path), "-c",
                               str(conf)], capture_output=True, text=True)

    p = nginx_t("    thinkgate_keys redis;\n")
    assert p.returncode != 0
    assert "thinkgate_keys" in p.stderr and "thinkgate_redis" in p.stderr, \
        p.stderr
    keyfile = tmp_path / "keys"
    keyfile.write_text("alice %s tpm=lots\n" % ("ab" * 32))
    p = nginx_t("    thinkgate_keys file=%s;\n" % keyfile)
    assert p.returncode != 0
    assert "thinkgate_keys" in p.stderr and "line 1" in p.stderr \
        and "tpm=" in p.stderr, p.stderr
    keyfile.write_text("alice %s window=0s\n" % ("ab" * 32))
    p = nginx_t("    thinkgate_keys file=%s;\n" % keyfile)
    assert p.returncode != 0 and "window=" in p.stderr, p.stderr


@need_redis
def test_auth_request_with_redis_keys(tmp_path):
    """auth_request naming a key kept in Redis: the engine reads the
    record by name; revoked there, the name is refused at once."""
    import test_keys
    redis = harness.start_redis()
    sims = [harness.start_sim("--speed", "0")]
    procs = [redis] + sims
    adm = ["--redis", redis.addr, "--prefix", PREFIX]
    try:
        tool(*adm, "create", "alice")
        port = harness.free_port()
        engine = harness.start_engine()
        procs.append(engine)
        nginx = harness.start_nginx(
            engine.sock, test_keys.AUTH_HTTP + http_conf(sims, "redis",
                                                         redis),
            test_keys.AUTH_SERVER.replace("{port}", str(port)), port=port)
        procs.append(nginx)
        harness.wait_registered(nginx)
        deadline = time.monotonic() + 10
        while status(port)["keys"]["limits"] != "shared":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        code, _, doc = chat(port, "idp-alice")
        assert code == 200, doc
        assert doc["thinkgate"]["key"] == "alice"
        tool(*adm, "revoke", "alice")
        code, headers, doc = chat(port, "idp-alice")
        assert code == 401, doc
        assert doc["error"]["code"] == "invalid_api_key"
        assert headers.get("WWW-Authenticate") == "Bearer"
    finally:
        for p in reversed(procs):
            p.cleanup()


def prom_values(port, name):
    out = {}
    for line in status(port, prom=True).splitlines():
        if line.startswith(name + "{key=\""):
            label = line.split('"')[1]
            out[label] = int(line.rsplit(" ", 1)[1])
    return out


def test_prometheus_per_key_counters(tmp_path):
    """Per-key request, token and refusal counters; with --key-labels 2
    the third key seen is counted as key="other" (bounded cardinality);
    a streamed ffs n=8 request the client leaves is still charged with
    what its traces spent."""
    path = str(tmp_path / "keys")
    k = {n: tool("--file", path, "create", n, "--models", "thinkgate-sim")
         for n in ("k1", "k2", "k3")}
    sim = harness.start_sim("--step-ms", "20", "--step-ms-per-seq", "0")
    engine = harness.start_engine(args=["--key-labels", "2"])
    nginx = harness.start_nginx(engine.sock,
                                http_conf([sim], "file=" + path), SERVER)
    try:
        harness.wait_registered(nginx)
        spent = {"k1": 0, "k2": 0, "other": 0}
        for name in ("k1", "k2", "k3", "k1", "k3"):
            code, _, doc = chat(nginx.port, k[name])
            assert code == 200, doc
            spent[name if name != "k3" else "other"] += spent_of(doc)
        body = dict(BODY, model="gpt-x")
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port,
                                          timeout=30)
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Authorization": "Bearer " + k["k3"],
                      "Content-Type": "application/json"})
        assert conn.getresponse().status == 403
        conn.close()

        req = prom_values(nginx.port, "thinkgate_key_requests_total")
        tok = prom_values(nginx.port, "thinkgate_key_tokens_total")
        ref = prom_values(nginx.port, "thinkgate_key_refused_total")
        assert req == {"k1": 2, "k2": 1, "other": 2}, req
        assert set(tok) == {"k1", "k2", "other"}
        assert tok["k1"] == spent["k1"] and tok["k2"] == spent["k2"]
        assert tok["other"] == spent["other"] > 0
        assert ref == {"k1": 0, "k2": 0, "other": 1}, ref

        # a client that leaves a streamed ffs n=8 request: charged anyway
        body = dict(BODY, stream=True, max_tokens=400, thinkgate=FFS8)
        conn = http.client.HTTPConnection("127.0.0.1", nginx.port,
                                          timeout=30)
        conn.request("POST", "/v1/chat/completions", json.dumps(body),
                     {"Authorization": "Bearer " + k["k2"],
                      "Content-Type": "application/json"})
        resp = conn.getresponse()
        assert resp.status == 200
        for _ in range(10):
            assert resp.fp.readline()
        conn.sock.close()
        conn.close()
        deadline = time.monotonic() + 10
        while prom_values(nginx.port,
                          "thinkgate_key_requests_total")["k2"] != 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        left = prom_values(nginx.port, "thinkgate_key_tokens_total")["k2"]
        # 8 traces ran a few steps each: more than one trace's worth
        assert left - tok["k2"] >= 8, (left, tok["k2"])
        assert left - tok["k2"] < 8 * 400
        print("a streamed ffs n=8 request left after 10 lines was charged "
              "%d tokens" % (left - tok["k2"]))
    finally:
        for p in (nginx, engine, sim):
            p.cleanup()


def _strategy_refusals_not_counted(tmp_path, with_redis):
    path = str(tmp_path / "keys")
    key = tool("--file", path, "create", "narrow", "--strategies",
               "passthrough", "--rpm", "2", "--window", "60")
    redis = harness.start_redis() if with_redis else None
    sim = harness.start_sim("--speed", "0")
    procs = ([redis] if redis else []) + [sim]
    try:
        conf = http_conf([sim], "file=" + path, redis)
        if redis:
            gw = start_pairs(procs, conf, n=1)[0]
        else:
            engine = harness.start_engine()
            procs.append(engine)
            gw = harness.start_nginx(engine.sock, conf, SERVER)
            procs.append(gw)
            harness.wait_registered(gw)
            assert status(gw.port)["keys"]["limits"] == "local"
        for _ in range(3):
            code, _, doc = chat(gw.port, key, FFS8)
            assert code == 403, doc
            assert doc["error"]["code"] == "strategy_not_allowed", doc
        if redis:
            # the refunds went to Redis before the next admission
            deadline = time.monotonic() + 10
            name = PREFIX + "key:{narrow}:req"
            while harness.redis_cli(redis.port, "GET", name) not in ("0",
                                                                     ""):
                assert time.monotonic() < deadline
                time.sleep(0.02)
        for left in (1, 0):
            code, _, doc = chat(gw.port, key)
            assert code == 200, doc
            assert doc["thinkgate"]["key_requests_remaining"] == left, doc
        code, headers, doc = chat(gw.port, key)
        assert code == 429, doc
        assert doc["error"]["type"] == "requests", doc
        assert int(headers["Retry-After"]) >= 1
        if redis:
            assert harness.redis_cli(redis.port, "GET", name) == "2"
    finally:
        for p in reversed(procs):
            p.cleanup()


def test_strategy_refusal_not_counted_local(tmp_path):
    """A 403 for a strategy the key may not use is decided after
    admission counted the request: the count is given back, so three
    refusals leave a key with rpm=2 both its requests."""
    _strategy_refusals_not_counted(tmp_path, False)


@need_redis
def test_strategy_refusal_not_counted_redis(tmp_path):
    """The same with the window in Redis (lua/key_refund.lua)."""
    _strategy_refusals_not_counted(tmp_path, True)
