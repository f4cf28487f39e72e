"""docker/entrypoint.sh outside a container, with what `make` built.

The image's entrypoint runs thinkgated and nginx side by side; here it runs
on the host with the build tree's module, engine and plugins (its
THINKGATE_MODULE / _PLUGIN_DIR / _LUA_DIR variables, which default to the
packages' paths in the image), so `make test` checks it on every machine,
docker or not: the configuration it writes from THINKGATE_* variables
passes `nginx -t` and serves a chat and a streamed request; SIGTERM stops
nginx, then the engine, and the script exits 0; an engine that dies takes
nginx with it and the script exits non-zero; a bad variable is refused
before anything starts.  The image itself is tests/e2e/test_docker.py.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

import pytest

import harness

ENTRYPOINT = os.path.join(harness.ROOT, "docker", "entrypoint.sh")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = harness.needs(
    None if os.path.exists(harness.MODULE) and os.path.exists(NGINX)
    else "module not built (make module) or nginx not installed")


class Gateway:
    def __init__(self, sim, extra_env=None):
        # Readable by nginx's workers (nobody, when this runs as root).
        self.run = tempfile.mkdtemp(prefix="tg-entrypoint-")
        os.chmod(self.run, 0o755)
        self.port = harness.free_port()
        env = dict(os.environ)
        env.update({
            "PATH": harness.BIN + os.pathsep + env.get("PATH", ""),
            "THINKGATE_RUN_DIR": self.run,
            "THINKGATE_PORT": str(self.port),
            "THINKGATE_BACKENDS": "sim=%s" % sim.url,
            "THINKGATE_CLIENT_STRATEGY": "on",
            "THINKGATE_WORKERS": "2",
            "THINKGATE_MODULE": harness.MODULE,
            "THINKGATE_PLUGIN_DIR": os.path.join(harness.BUILD, "plugins"),
            "THINKGATE_LUA_DIR": os.path.join(harness.ROOT, "lua"),
            "THINKGATE_LOG_LEVEL": "warn",
        })
        env.update(extra_env or {})
        self.workers = int(env["THINKGATE_WORKERS"])
        self.log_path = os.path.join(self.run, "entrypoint.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["bash", ENTRYPOINT], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.url = "http://127.0.0.1:%d" % self.port

    def output(self):
        with open(self.log_path) as f:
            return f.read()

    def wait_ready(self):
        """Every worker registered: the status request reaches one worker,
        and a request right after it may reach another, still starting."""
        harness.wait_port(self.port, proc=self.proc)
        deadline = time.monotonic() + 10
        want = "thinkgate_engine_registrations %d" % self.workers
        while time.monotonic() < deadline:
            try:
                body = urllib.request.urlopen(
                    self.url + "/thinkgate/status?format=prometheus",
                    timeout=5).read().decode()
            except OSError as e:    # nginx still starting
                body = str(e)
            lines = body.splitlines()
            if "thinkgate_engine_connected 1" in lines and want in lines:
                return
            time.sleep(0.1)
        raise TimeoutError("the engine never registered:\n" + self.output())

    def pids(self):
        """The engine's and nginx master's pids, from the script's log."""
        out = self.output()
        pids = {}
        for name in ("engine", "nginx"):
            tag = "thinkgate-entrypoint: %s started (pid " % name
            i = out.index(tag) + len(tag)
            pids[name] = int(out[i:out.index(",", i)])
        return pids

    def cleanup(self):
        # The whole session, even when the script has exited: nginx's
        # workers outlive a master killed by SIGKILL
        # (test_one_dying_stops_the_other[nginx]), still holding the port.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        self.log.close()
        shutil.rmtree(self.run, ignore_errors=True)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def sim():
    proc = harness.start_sim("--speed", "0")
    yield proc
    proc.stop()


@pytest.fixture
def gateway(sim):
    gws = []

    def make(extra_env=None):
        gw = Gateway(sim, extra_env)
        gws.append(gw)
        return gw
    yield make
    for gw in gws:
        gw.cleanup()


def post(url, body):
    req = urllib.request.Request(url + "/v1/chat/completions",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(req, timeout=30)


def test_serves_and_stops_cleanly_on_sigterm(gateway):
    gw = gateway()
    gw.wait_ready()
    pids = gw.pids()

    models = json.load(urllib.request.urlopen(gw.url + "/v1/models"))
    assert "thinkgate-sim" in [m["id"] for m in models["data"]]

    msgs = [{"role": "user", "content": "What is 17 + 25?"}]
    r = json.load(post(gw.url, {"model": "thinkgate-sim", "max_tokens": 64,
                                "messages": msgs,
                                "thinkgate": {"strategy": "ffs", "n": 4}}))
    assert r["choices"][0]["message"]["role"] == "assistant"
    assert r["thinkgate"]["strategy"] == "ffs"

    lines = post(gw.url, {"model": "thinkgate-sim", "max_tokens": 32,
                          "stream": True, "messages": msgs}
                 ).read().decode().splitlines()
    data = [ln for ln in lines if ln.startswith("data: ")]
    assert len(data) >= 3 and data[-1] == "data: [DONE]"

    gw.proc.send_signal(signal.SIGTERM)
    assert gw.proc.wait(timeout=30) == 0, gw.output()
    out = gw.output()
    assert "nginx exited (status 0)" in out
    assert "engine exited (status 0)" in out
    assert "stopped cleanly" in out
    assert "[alert]" not in out and "exited on signal" not in out, out
    # nginx went first, the engine after it.
    assert out.index("nginx exited") < out.index("engine exited")
    assert not alive(pids["engine"]) and not alive(pids["nginx"])


@pytest.mark.parametrize("victim", ["engine", "nginx"])
def test_one_dying_stops_the_other(gateway, victim):
    gw = gateway()
    gw.wait_ready()
    pids = gw.pids()
    os.kill(pids[victim], signal.SIGKILL)
    assert gw.proc.wait(timeout=30) != 0
    out = gw.output()
    assert "%s exited on its own" % victim in out, out
    other = "nginx" if victim == "engine" else "engine"
    assert "%s exited (status 0)" % other in out, out
    assert not alive(pids[other])


def test_refuses_a_value_that_would_break_nginx_conf(gateway):
    gw = gateway({"THINKGATE_BACKENDS":
                  "sim=http://127.0.0.1:1; thinkgate_plugin x"})
    assert gw.proc.wait(timeout=10) == 2
    assert "THINKGATE_BACKENDS may not hold" in gw.output()
    assert not os.path.exists(os.path.join(gw.run, "engine.sock"))


def test_without_backends_says_what_to_set(gateway):
    gw = gateway({"THINKGATE_BACKENDS": ""})
    assert gw.proc.wait(timeout=10) == 2
    assert "set THINKGATE_BACKENDS" in gw.output()


def test_runs_a_command_given_as_arguments():
    out = subprocess.run(["bash", ENTRYPOINT, "echo", "hello"],
                         capture_output=True, text=True, check=True).stdout
    assert out == "hello\n"
