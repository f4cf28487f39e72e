"""kv_get / kv_set against a real Redis through nginx + engine: the
aux_probe plugin (kv=on) sets a key then reads it back and reports both in
the thinkgate summary.  The key lands under the configured prefix +
plugin:aux_probe:; with Redis down the calls say -ENOTCONN and the request
still answers; without thinkgate_redis likewise."""
import json
import time
import urllib.request

import pytest

import harness
from test_aux_judge import SERVER, answered, make_plugin_dir

PREFIX = "tgkv:"
ENOTCONN = -107


class KvStack:
    def __init__(self, redis=None):
        self.procs = []
        self.pdir = make_plugin_dir()
        try:
            self.sim = harness.start_sim("--speed", "0")
            self.procs.append(self.sim)
            http = ("    thinkgate_backend r0 %s;\n"
                    "    thinkgate_pool reasoners r0;\n" % self.sim.url)
            if redis is not None:
                http += ("    thinkgate_redis %s prefix=%s "
                         "connect_timeout=500ms timeout=300ms;\n"
                         % (redis.addr, PREFIX))
            self.engine = harness.start_engine(plugin_dir=self.pdir)
            self.procs.append(self.engine)
            self.nginx = harness.start_nginx(self.engine.sock, http, SERVER)
            self.procs.append(self.nginx)
            harness.wait_registered(self.nginx, 2)
        except Exception:
            self.close()
            raise

    def ask(self):
        body = {"model": "thinkgate-sim", "max_tokens": 32,
                "messages": [{"role": "user", "content": "What is 6*7?"}],
                "thinkgate": {"strategy": "aux_probe", "kv": True}}
        req = urllib.request.Request(
            self.nginx.url + "/v1/chat/completions",
            json.dumps(body).encode(), {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 200
            return json.loads(r.read())

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []
        import shutil
        shutil.rmtree(self.pdir, ignore_errors=True)


def wait_redis(stack, connected, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        with urllib.request.urlopen(stack.nginx.url + "/thinkgate/status",
                                    timeout=5) as r:
            doc = json.loads(r.read())
        if doc.get("redis", {}).get("connected") == connected:
            return
        assert time.monotonic() < deadline, doc.get("redis")
        time.sleep(0.05)


def test_set_then_get_and_redis_down():
    redis = harness.start_redis()
    s = None
    try:
        s = KvStack(redis)
        wait_redis(s, True)
        doc = s.ask()
        tg = doc["thinkgate"]
        assert tg["kv_set_rc"] == 0 and tg["kv_set_status"] == 0, tg
        assert tg["kv_get_rc"] == 0 and tg["kv_get_status"] == 0, tg
        key = tg["kv_key"]
        assert tg["kv_value"] == "value-" + key.split(":")[1]
        assert answered(doc)
        # Where it lives, and that it expires (kv_set with a 60 s TTL).
        full = PREFIX + "plugin:aux_probe:" + key
        assert harness.redis_cli(redis.port, "GET", full) == tg["kv_value"]
        ttl = int(harness.redis_cli(redis.port, "PTTL", full))
        assert 0 < ttl <= 60000

        # Redis stalls during the call: the link's 300 ms deadline answers
        # the plugin (-ETIMEDOUT), the request goes on.
        harness.redis_cli(redis.port, "CLIENT", "PAUSE", "1500", "ALL")
        doc = s.ask()
        tg = doc["thinkgate"]
        assert tg["kv_set_rc"] == 0 and tg["kv_set_status"] == -110, tg
        assert answered(doc)
        time.sleep(1.6)
        wait_redis(s, True)

        # Redis away: -ENOTCONN at the call, no callback, request answered.
        redis.kill()
        wait_redis(s, False)
        doc = s.ask()
        tg = doc["thinkgate"]
        assert tg["kv_set_rc"] == ENOTCONN, tg
        assert "Redis is down" in tg["kv_error"]
        assert "kv_set_status" not in tg and "kv_get_rc" not in tg
        assert answered(doc)

        # Back: works again, without an engine restart.
        redis.restart()
        wait_redis(s, True)
        tg = s.ask()["thinkgate"]
        assert tg["kv_get_status"] == 0 and tg["kv_value"].startswith(
            "value-"), tg
    finally:
        if s is not None:
            s.close()
        redis.cleanup()


def test_without_redis_configured():
    s = KvStack(None)
    try:
        doc = s.ask()
        tg = doc["thinkgate"]
        assert tg["kv_set_rc"] == ENOTCONN, tg
        assert "no Redis is configured" in tg["kv_error"]
        assert answered(doc)
    finally:
        s.close()
