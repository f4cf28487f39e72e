"""Process harness shared by the end-to-end tests.

Starts real programs (thinkgate-sim, thinkgated, nginx, redis-server) on
loopback ports chosen at random, waits until they listen, and stops them,
printing their logs when a test fails.
"""
import gzip
import http.server
import json
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
BIN = os.path.join(BUILD, "bin")
# THINKGATE_SIM=path runs another build of the sim (mk/san-e2e.sh: ASan).
SIM = os.environ.get("THINKGATE_SIM", os.path.join(BIN, "thinkgate-sim"))
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
TRACES = os.path.join(SHARED, "traces")


# -- needed inputs ----------------------------------------------------------
#
# A test whose input is missing (a program, a built artefact, a model,
# ../shared/traces, a Python package) is skipped on a developer's machine,
# but in CI (CI=true; .ci/run sets it) that is a failure: a CI machine
# that lost an input must not pass by skipping what it was meant to prove.
# The opt-outs the README documents stay skips everywhere:
# THINKGATE_NO_LLAMA=1 (the llama.cpp tests) and THINKGATE_DOCKER_TEST=0,
# or docker unable to run here (test_docker.py).

def in_ci():
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def missing(reason, opt_out=None):
    """Ends the calling test (or module, or fixture): skipped, or failed
    in CI.  opt_out: an environment variable the README documents for
    running without this input; when it is set the test skips even in
    CI."""
    if opt_out and os.environ.get(opt_out):
        pytest.skip("%s is set: %s" % (opt_out, reason),
                    allow_module_level=True)
    if in_ci():
        pytest.fail("CI=true and a needed input is missing: %s" % reason,
                    pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def needs(reason, opt_out=None):
    """A mark (pytestmark or a decorator): reason None runs the test, a
    reason is missing(reason, opt_out) when the test starts
    (conftest.py)."""
    return pytest.mark.tg_needs(reason=reason, opt_out=opt_out)


def needs_redis():
    return needs(None if shutil.which("redis-server")
                 and shutil.which("redis-cli")
                 else "redis-server / redis-cli not installed")


def needs_module(nginx=True):
    """The thinkgate module built, and nginx installed."""
    if not os.path.exists(MODULE):
        return needs("module not built (make module)")
    if nginx and not (shutil.which("nginx")
                      or os.path.exists("/usr/sbin/nginx")):
        return needs("nginx not installed")
    return needs(None)


def import_or_missing(name, opt_out=None):
    """pytest.importorskip, with missing()'s CI rule."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError as e:
        missing("python module %s is absent: %s" % (name, e), opt_out)


# How long a sim loading every recorded trace may take to listen: 37 s
# measured for the ASan sim of mk/san-e2e.sh on a loaded machine (load 16
# on 2 cores), past wait_port's 10 s.
TRACES_START_S = 120.0


def have_traces():
    return os.path.isdir(TRACES) and any(
        f.endswith(".jsonl.gz") for f in os.listdir(TRACES))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s before listening"
                               % proc.poll())
        try:
            with socket.create_connection(("127.0.0.1", port), 0.2):
                return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError("nothing listens on port %d" % port)


def wait_path(path, timeout=10.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("process exited with %s" % proc.poll())
        if os.path.exists(path):
            return
        time.sleep(0.02)
    raise TimeoutError("%s did not appear" % path)


# How long a process gets after SIGTERM before SIGKILL.
# THINKGATE_STOP_S=seconds raises it (mk/san-e2e.sh: a process under ASan
# checks for leaks at exit, which a SIGKILL would cut short: an idle ASan
# nginx took 2.5 s to exit at load 16).
STOP_S = float(os.environ.get("THINKGATE_STOP_S", "5"))


class Proc:
    """One child process with its output in a log file."""

    def __init__(self, name, argv, workdir=None, env=None):
        self.name = name
        self.argv = argv
        self.workdir = workdir or tempfile.mkdtemp(prefix="tg-%s-" % name)
        self.log_path = os.path.join(self.workdir, name + ".log")
        self.env = env
        self.p = None
        self.stop_signal = signal.SIGTERM

    def start(self):
        log = open(self.log_path, "ab")
        self.p = subprocess.Popen(self.argv, stdout=log, stderr=log,
                                  stdin=subprocess.DEVNULL,
                                  env=self.env, start_new_session=True)
        log.close()
        return self

    def poll(self):
        return self.p.poll()

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.p and self.p.poll() is None:
            os.killpg(self.p.pid, sig)
            self.p.wait(10)

    def stop(self, timeout=None):
        if not self.p or self.p.poll() is not None:
            return
        timeout = STOP_S if timeout is None else max(timeout, STOP_S)
        os.killpg(self.p.pid, self.stop_signal)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_sim(*args, port=None, timeout=60.0, workdir=None):
    """Starts build/bin/thinkgate-sim on a free loopback port and waits up
    to timeout seconds for it to listen.  It listens once its trace files
    are read: all of ../shared/traces takes about 15 s on a loaded 2-core
    box, hence the long default.  Its log goes to workdir (a fresh
    directory by default), which cleanup() removes."""
    port = port or free_port()
    proc = Proc("sim", [SIM,
                        "--listen", "127.0.0.1:%d" % port] + list(args),
                workdir=workdir)
    proc.start()
    try:
        wait_port(port, timeout=timeout, proc=proc)
    except Exception:
        # Not left running (two timed-out ASan sims outlived their run).
        proc.cleanup()
        raise
    proc.port = port
    proc.url = "http://127.0.0.1:%d" % port
    return proc


# The invented trace of test_effort.py and test_responses.py: thinking
# that states its answer (13) at once and then goes on for about 600
# tokens, so that a thinking budget has something to cut.
EFFORT_PROBLEM = ("Zork has 6 quibs and finds 7 more. "
                  "How many quibs has Zork?")
EFFORT_THINKING = ("6 + 7 = 13, so the answer is \\boxed{13}.\n\n"
                   "Hmm, let me recount slowly. "
                   + " ".join("q%d" % k for k in range(600))
                   + "\n\nYes, 13.")
EFFORT_OUTPUT = EFFORT_THINKING + "</think>\n\nThe answer is \\boxed{13}."


def start_effort_sim():
    """A sim replaying four samples of EFFORT_PROBLEM, each EFFORT_OUTPUT
    (model "Effort"), a token a millisecond; the trace file lives in the
    sim's directory, removed by its cleanup()."""
    workdir = tempfile.mkdtemp(prefix="tg-effort-sim-")
    path = os.path.join(workdir, "invented.jsonl.gz")
    try:
        with gzip.open(path, "wt") as f:
            for k in range(4):
                f.write(json.dumps({
                    "model": "Effort", "bench": "invented",
                    "problem_id": "0", "sample_id": k,
                    "problem": EFFORT_PROBLEM, "answer": 13, "pred": 13,
                    "completion_tokens": len(EFFORT_OUTPUT.split()) + 20,
                    "finish_reason": "STOP",
                    "output": EFFORT_OUTPUT}) + "\n")
        return start_sim("--traces", path, "--step-ms", "1",
                         "--step-ms-per-seq", "0", workdir=workdir)
    except Exception:
        shutil.rmtree(workdir, ignore_errors=True)
        raise


# THINKGATE_MODULE=path loads another build of the module (mk/san-e2e.sh:
# the one with ASan+UBSan), and THINKGATE_NGINX_PRELOAD=path is preloaded
# into every nginx the harness starts (the sanitizer runtime, which must
# come before every other library), with THINKGATE_NGINX_ASAN_OPTIONS
# appended to its ASAN_OPTIONS.
MODULE = os.environ.get("THINKGATE_MODULE",
                        os.path.join(BUILD, "modules",
                                     "ngx_http_thinkgate_module.so"))


def nginx_env():
    """The environment for an nginx: this one, with
    THINKGATE_NGINX_PRELOAD as LD_PRELOAD and THINKGATE_NGINX_ASAN_OPTIONS
    after ASAN_OPTIONS when they are set."""
    env = dict(os.environ)
    preload = env.get("THINKGATE_NGINX_PRELOAD")
    if preload:
        env["LD_PRELOAD"] = preload
    extra = env.get("THINKGATE_NGINX_ASAN_OPTIONS")
    if extra:
        env["ASAN_OPTIONS"] = ":".join(
            o for o in (env.get("ASAN_OPTIONS"), extra) if o)
    return env


# THINKGATE_PLUGIN_DIR=path: the strategy plugins of another build.
PLUGIN_DIR = os.environ.get("THINKGATE_PLUGIN_DIR",
                            os.path.join(BUILD, "plugins"))

NGINX_CONF = """
daemon off;
master_process on;
worker_processes {workers};
pid {dir}/nginx.pid;
error_log {dir}/error.log {log_level};
{user}
load_module {module};

events {{ worker_connections 4096; }}

http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;

    thinkgate_engine unix:{sock};
{http}
    server {{
        listen 127.0.0.1:{port};
{server}
    }}
}}
"""

DEFAULT_SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


# What debian/thinkgate.service, docker/entrypoint.sh and `make run` give
# the engine: glibc's per-thread cache keeps 64 freed chunks per size (the
# service file says why).  Tests and benchmarks run the engine as it ships.
ENGINE_TUNABLES = "glibc.malloc.tcache_count=64"


def engine_env():
    """The environment to start thinkgated in: this one, with
    ENGINE_TUNABLES unless GLIBC_TUNABLES is already set."""
    env = dict(os.environ)
    env.setdefault("GLIBC_TUNABLES", ENGINE_TUNABLES)
    return env


def start_engine(sock_dir=None, args=(), plugin_dir=None):
    """Starts build/bin/thinkgated on a socket in a fresh directory, with
    plugins from plugin_dir (default build/plugins)."""
    proc = Proc("engine", [], env=engine_env())
    # nginx workers run as nobody when the master is root: they must reach
    # the socket.
    os.chmod(proc.workdir, 0o755)
    sock = os.path.join(sock_dir or proc.workdir, "engine.sock")
    # THINKGATED=path runs another build (e.g. one with ASan).
    argv = [os.environ.get("THINKGATED", os.path.join(BIN, "thinkgated")),
            "--socket", sock,
            "--plugin-dir", plugin_dir or PLUGIN_DIR]
    if os.geteuid() == 0:
        argv += ["--allow-user", "nobody"]
    proc.argv = argv + list(args)
    proc.sock = sock
    proc.extra_args = list(args)
    proc.plugin_dir = plugin_dir
    proc.start()
    wait_path(sock, proc=proc)
    return proc


def nginx_conf(workdir, port, sock, http="", server=DEFAULT_SERVER,
               workers=2, log_level="info"):
    return NGINX_CONF.format(
        workers=workers, dir=workdir, log_level=log_level,
        user="user nobody nogroup;" if os.geteuid() == 0 else "",
        module=MODULE, sock=sock, http=http, port=port, server=server)


def start_nginx(sock, http, server=DEFAULT_SERVER, port=None, workers=2):
    """Starts a private nginx (foreground master) with the thinkgate
    module, talking to the engine at sock."""
    port = port or free_port()
    proc = Proc("nginx", [], env=nginx_env())
    conf = os.path.join(proc.workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(nginx_conf(proc.workdir, port, sock, http, server, workers))
    os.chmod(proc.workdir, 0o755)
    proc.argv = ["nginx", "-p", proc.workdir, "-c", conf]
    proc.conf = conf
    if os.environ.get("THINKGATE_NGINX_PRELOAD"):
        # A graceful stop: on SIGTERM the master SIGKILLs the workers still
        # there after ~1.5 s, which cuts their leak check at exit short.
        proc.stop_signal = signal.SIGQUIT
    proc.start()
    try:
        wait_port(port, proc=proc)
    except Exception as e:
        log = proc.log()
        proc.cleanup()
        raise RuntimeError("nginx did not start: %s\n%s" % (e, log))
    proc.port = port
    proc.url = "http://127.0.0.1:%d" % port
    proc.error_log = os.path.join(proc.workdir, "error.log")
    return proc


class Gateway:
    """sim + engine + nginx, started together, stopped in reverse."""

    def __init__(self, sim_args=(), http=None, server=DEFAULT_SERVER,
                 backends=1, engine_args=(), plugin_dir=None):
        self.procs = []
        try:
            self.sims = [start_sim(*sim_args) for _ in range(backends)]
            self.procs += self.sims
            self.sim = self.sims[0]
            if http is None:
                http = "".join(
                    "    thinkgate_backend b%d %s max_inflight=1024;\n"
                    % (i, s.url) for i, s in enumerate(self.sims))
                http += "    thinkgate_pool reasoners %s;\n" % " ".join(
                    "b%d" % i for i in range(len(self.sims)))
            self.http = http
            self.engine = start_engine(args=engine_args,
                                       plugin_dir=plugin_dir)
            self.procs.append(self.engine)
            self.nginx = start_nginx(self.engine.sock, http, server)
            self.procs.append(self.nginx)
            self.url = self.nginx.url
        except Exception:
            self.dump()
            self.close()
            raise

    def restart_engine(self):
        sock_dir = os.path.dirname(self.engine.sock)
        self.engine.stop()
        self.engine = start_engine(sock_dir=sock_dir,
                                   args=self.engine.extra_args,
                                   plugin_dir=self.engine.plugin_dir)
        self.procs.append(self.engine)

    def dump(self):
        for p in self.procs:
            print("---- %s log ----\n%s" % (p.name, p.log()[-4000:]))
            if p.name == "nginx" and os.path.exists(
                    os.path.join(p.workdir, "error.log")):
                with open(os.path.join(p.workdir, "error.log"),
                          errors="replace") as f:
                    print("---- nginx error.log ----\n" + f.read()[-4000:])

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []


def start_redis(port=None):
    """Starts a throwaway redis-server on a loopback port (no persistence).
    proc.restart() starts it again on the same port, empty."""
    port = port or free_port()
    proc = Proc("redis", ["redis-server", "--port", str(port),
                          "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no", "--daemonize", "no"])
    proc.start()
    wait_port(port, proc=proc)
    proc.port = port
    proc.addr = "127.0.0.1:%d" % port

    def restart():
        proc.kill()
        proc.start()
        wait_port(port, proc=proc)
    proc.restart = restart
    return proc


def open_stream(port, body, events=3, timeout=30):
    """POSTs body (a dict) to /v1/chat/completions on a raw socket and
    reads until `events` SSE data lines have arrived: a client in the
    middle of a stream, to be killed, left or read on.  Returns (socket,
    bytes read so far)."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n"
                 b"\r\n%s" % (len(data), data))
    got = b""
    while got.count(b"data:") < events:
        chunk = sock.recv(65536)
        assert chunk, got
        got += chunk
    return sock, got


def redis_cli(port, *args):
    """One redis-cli command; its stdout, stripped."""
    out = subprocess.run(["redis-cli", "-p", str(port)] + [str(a)
                                                           for a in args],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip()


def wait_registered(nginx, workers=2, timeout=10.0):
    """Waits until every nginx worker has registered with the engine, so
    that a first request does not meet a worker still connecting (it
    would rightly get 503)."""
    import http.client
    import json
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", nginx.port,
                                              timeout=5)
            conn.request("GET", "/thinkgate/status")
            doc = json.loads(conn.getresponse().read())
            conn.close()
            if doc.get("engine", {}).get("registrations", 0) >= workers:
                return
        except (OSError, ValueError):
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("nginx workers did not all register")
        time.sleep(0.02)


# Streams of events that are not OpenAI chunks, then [DONE].
_GARBAGE = {"garbage": '{not json', "badchoices": '{"choices":"x"}'}


def start_engine_nginx(g, http, server=DEFAULT_SERVER):
    """An engine and an nginx registered with it, appended to g.procs (a
    fixture's namespace, cleaned up in reverse by its caller) and set as
    g.engine and g.nginx."""
    g.engine = start_engine()
    g.procs.append(g.engine)
    g.nginx = start_nginx(g.engine.sock, http, server)
    g.procs.append(g.nginx)
    wait_registered(g.nginx, 2)


class _BadBackend(http.server.BaseHTTPRequestHandler):
    """500 with a message, 400 with a message, silence, or a stream of
    garbage (_GARBAGE)."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        mode = self.server.mode
        if mode == "record":
            self.server.seen.append(self.headers.get("Authorization"))
            body = (b'data: {"choices":[{"index":0,"delta":{"content":'
                    b'"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if mode == "silent":
            time.sleep(3)
            return
        if mode in _GARBAGE:
            body = ("data: %s\n\ndata: [DONE]\n\n" % _GARBAGE[mode]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        status = 500 if mode == "500" else 400
        body = json.dumps({"error": {
            "message": "backend exploded: CUDA OOM" if status == 500
            else "max_tokens is too large for this model",
            "type": "server_error" if status == 500
            else "invalid_request_error",
            "param": None if status == 500 else "max_tokens"}}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def start_bad_backend(mode):
    """A misbehaving backend on a free loopback port: mode "500" (an error
    with a message), "400" (a client error naming max_tokens), "silent"
    (reads the request, says nothing for 3 s), "garbage" or "badchoices"
    (a 200 stream whose event is not an OpenAI chunk, then [DONE]), or
    "record" (answers "ok", keeps each request's Authorization header, or
    None, in .seen).  shutdown() stops it."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _BadBackend)
    srv.mode = mode
    srv.seen = []
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


# SmolLM2-135M-Instruct (mk/models.sh smollm2): the real model of the
# llama.cpp tests and of bench/strategies --llm-judge.
SMOLLM_FILE = os.path.join(BUILD, "models", "smollm2",
                           "SmolLM2-135M-Instruct.Q4_1.gguf")


def llama_missing(model_file, fetch="bash mk/models.sh smollm2"):
    """Why llama.cpp's server cannot run model_file here, or None."""
    if not os.path.isfile(model_file):
        return "model file %s is absent (%s)" % (model_file, fetch)
    for mod in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette",
                "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(mod) is None:
            return ("python module %s is absent: llama-cpp-python[server] "
                    "is not installed (mk/deps.sh prints why)" % mod)
    return None


def start_llama(model_file, n_ctx=512, timeout=90):
    """llama.cpp's OpenAI-compatible server (llama-cpp-python) on
    model_file, on a free port; .url and .port set.  Raises with the
    server's log when it does not come up."""
    port = free_port()
    proc = Proc("llamacpp", [
        sys.executable, "-m", "llama_cpp.server",
        "--model", model_file, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", str(n_ctx), "--verbose", "False"])
    proc.start()
    try:
        wait_port(port, timeout=timeout, proc=proc)
    except Exception as e:
        log = proc.log()
        proc.cleanup()
        raise RuntimeError("llama_cpp.server did not start: %s\n%s"
                           % (e, log[-4000:]))
    proc.port = port
    proc.url = "http://127.0.0.1:%d" % port
    return proc
