"""Shared pieces of the benchmarks: starting sim + engine + nginx on
loopback, running wrk, reading CPU and memory from /proc, writing
build/bench/NAME.json.

Every benchmark starts its own processes on free loopback ports and stops
them at the end; nothing here touches a process it did not start.
"""
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness  # noqa: E402

BUILD = os.path.join(ROOT, "build")
OUT = os.path.join(BUILD, "bench")
WRK_DIR = os.path.join(HERE, "wrk")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def raise_nofile(want=65536):
    """Raises RLIMIT_NOFILE as far as the hard limit allows; children
    (sim, engine, nginx) inherit it.  Returns the soft limit now in
    force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < want:
        try:
            # Root may raise the hard limit too (up to fs.nr_open).
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, want))
            hard = want
        except (ValueError, OSError):
            pass
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---- /proc readings -------------------------------------------------------

def cpu_seconds(pid):
    """utime + stime of one process, in seconds (0 when it is gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # fields[0] is field 3 (state); utime is field 14, stime field 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_kib(pid):
    """VmRSS of one process in KiB."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """Direct children of pid (nginx master -> workers)."""
    out = []
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def descendants(pid):
    """Every process below pid (LiteLLM's uvicorn workers and whatever
    they start), children first met first."""
    out, todo = [], [pid]
    while todo:
        kids = children(todo.pop())
        out += kids
        todo += kids
    return out


def total_cpu(pids):
    return sum(cpu_seconds(p) for p in pids)


class CpuMeter:
    """CPU seconds used by a fixed set of processes between start() and
    stop()."""

    def __init__(self, groups):
        self.groups = groups  # name -> list of pids

    def start(self):
        self.t0 = time.monotonic()
        self.c0 = {k: total_cpu(v) for k, v in self.groups.items()}
        return self

    def stop(self):
        wall = time.monotonic() - self.t0
        used = {k: round(total_cpu(v) - self.c0[k], 3)
                for k, v in self.groups.items()}
        return wall, used


class PeakRss:
    """Samples the summed VmRSS of groups of processes every interval
    seconds on a thread and keeps the peak, in KiB."""

    def __init__(self, groups, interval=0.1):
        import threading
        self.groups = groups
        self.interval = interval
        self.peak = {k: 0 for k in groups}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            for k, pids in self.groups.items():
                self.peak[k] = max(self.peak[k],
                                   sum(rss_kib(p) for p in pids))
            if self._stop.wait(self.interval):
                return

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        self._thread.join()
        return {k: round(v / 1024, 1) for k, v in self.peak.items()}


# ---- the processes under test --------------------------------------------

NGINX_CONF = """
daemon off;
master_process on;
worker_processes {workers};
{affinity}
worker_rlimit_nofile {nofile};
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
{user}
load_module {module};

events {{ worker_connections {worker_connections}; }}

http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;

    thinkgate_engine unix:{sock}{ring};
    thinkgate_backend b0 http://127.0.0.1:{sim_port} max_inflight={inflight};
    thinkgate_pool reasoners b0;

    upstream sim {{
        server 127.0.0.1:{sim_port};
        keepalive 1024;
        keepalive_requests 1000000;
    }}

    # (c) thinkgate passthrough
    server {{
        listen 127.0.0.1:{tg_port} backlog=4096;
        location /v1/ {{ thinkgate_pass reasoners; }}
        location = /thinkgate/status {{ thinkgate_status; }}
    }}

    # (b) plain nginx proxying, set up as one would for an LLM server:
    # HTTP/1.1 with upstream keep-alive, no response buffering (SSE).
    server {{
        listen 127.0.0.1:{pp_port} backlog=4096;
        location /v1/ {{
            proxy_pass http://sim;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 600s;
        }}
    }}
}}
"""


def start_sim(args):
    """thinkgate-sim on a free port; TG_BENCH_SIM names another binary
    (an A/B build) instead of build/bin/thinkgate-sim."""
    alt = os.environ.get("TG_BENCH_SIM")
    if not alt:
        return harness.start_sim(*args)
    port = harness.free_port()
    proc = harness.Proc("sim", [alt, "--listen", "127.0.0.1:%d" % port]
                        + list(args))
    proc.start()
    harness.wait_port(port, proc=proc)
    proc.port = port
    proc.url = "http://127.0.0.1:%d" % port
    return proc


# ---- LiteLLM, the peer gateway -------------------------------------------

LITELLM_DIR = os.path.join(BUILD, "litellm")
LITELLM_BIN = os.path.join(LITELLM_DIR, "venv", "bin", "litellm")
LITELLM_WORKERS = 1


def litellm_version():
    """The pinned package mk/litellm.sh installed, or None."""
    try:
        with open(os.path.join(LITELLM_DIR, "installed")) as f:
            return f.read().strip() or None
    except OSError:
        return None


def litellm_missing():
    """None when mk/litellm.sh has installed the LiteLLM proxy, else one
    line saying why its rows are skipped."""
    if os.access(LITELLM_BIN, os.X_OK) and litellm_version():
        return None
    try:
        with open(os.path.join(LITELLM_DIR, "skipped")) as f:
            why = f.read().strip()
    except OSError:
        why = "not installed"
    return "%s (run `bash mk/litellm.sh`; `make bench` does)" % why


def start_litellm(sim_url, models, workers=LITELLM_WORKERS, timeout=180):
    """The LiteLLM proxy on a free loopback port, every name in models
    routed to the sim as an OpenAI-compatible server (provider `openai/`,
    api_base).  No database, no master key, no callbacks, telemetry
    vetoed, logs at ERROR, the model cost map read from the package (no
    fetch); otherwise its defaults, uvicorn with `workers` processes.
    It refuses to start without a master key, so it gets a random one:
    clients send `Authorization: Bearer` p.key (lib.run_wrk's auth=).
    Waits until /health/liveliness answers."""
    import secrets
    port = harness.free_port()
    p = harness.Proc("litellm", [])
    # YAML is a superset of JSON: the config is written as JSON.
    conf = os.path.join(p.workdir, "config.yaml")
    with open(conf, "w") as f:
        json.dump({
            "model_list": [{"model_name": m, "litellm_params": {
                "model": "openai/" + m, "api_base": sim_url + "/v1",
                "api_key": "none"}} for m in models],
            "litellm_settings": {"set_verbose": False},
            "general_settings": {"disable_spend_logs": True},
        }, f, indent=1)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("LITELLM_", "DATABASE_", "OPENAI_",
                                "REDIS_", "PROMETHEUS_"))}
    key = "sk-" + secrets.token_hex(32)
    env.update({"LITELLM_MASTER_KEY": key,
                "LITELLM_TELEMETRY_DISABLED": "true",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True",
                "LITELLM_LOG": "ERROR",
                "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1"})
    p.env = env
    p.argv = [LITELLM_BIN, "--config", conf, "--host", "127.0.0.1",
              "--port", str(port), "--num_workers", str(workers)]
    if workers > 1:
        # uvicorn's supervisor restarts a worker that does not answer its
        # ping in 5 s: on a busy 2-core machine that is one still
        # importing, or one busy serving.
        p.argv += ["--timeout_worker_healthcheck", "120"]
    p.start()
    p.port = port
    p.url = "http://127.0.0.1:%d" % port
    p.workers = workers
    p.key = key
    deadline = time.monotonic() + timeout
    while True:
        if p.poll() is not None:
            log = p.log()[-3000:]
            p.cleanup()
            raise RuntimeError("litellm exited with %s before serving:\n%s"
                               % (p.poll(), log))
        try:
            if http_json(port, "GET", "/health/liveliness",
                         timeout=2)[0] == 200:
                break
        except OSError:
            pass
        if time.monotonic() > deadline:
            log = p.log()[-3000:]
            p.cleanup()
            raise RuntimeError("litellm did not serve in %d s:\n%s"
                               % (timeout, log))
        time.sleep(0.2)
    # With several workers the first to answer is not the last started.
    t0 = time.monotonic()
    while (len(descendants(p.p.pid)) < (workers if workers > 1 else 0)
           and time.monotonic() - t0 < 30):
        time.sleep(0.1)
    return p


def placement(workers):
    """CPU placement for a gateway benchmark: nginx worker i on CPU i of
    this process's set (the engine's loop follows its workers), the sim
    and the load generator on the CPUs left.  None when there are no CPUs
    left over for them.  Returns {"affinity": worker_cpu_affinity's
    argument, "gateway": set, "rest": set}."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) <= workers:
        return None
    gateway, rest = cpus[:workers], cpus[workers:]
    masks = ["1" + "0" * c for c in gateway]
    return {"affinity": " ".join(masks), "gateway": set(gateway),
            "rest": set(rest)}


class Placed:
    """While in effect: the stack's sim and this process (so every wrk it
    starts) on place["rest"], LiteLLM's processes on place["gateway"] as
    nginx's workers are.  Puts this process back on exit."""

    def __init__(self, stack, place):
        self.stack, self.place = stack, place

    def __enter__(self):
        self.saved = os.sched_getaffinity(0)
        if self.place:
            os.sched_setaffinity(self.stack.sim.p.pid, self.place["rest"])
            for pid in self.stack.pids().get("litellm", []):
                try:
                    os.sched_setaffinity(pid, self.place["gateway"])
                except OSError:
                    pass        # a uvicorn child that just exited
            os.sched_setaffinity(0, self.place["rest"])
        return self

    def __exit__(self, *exc):
        os.sched_setaffinity(0, self.saved)


def litellm_setup(stack, workers):
    """The `setup` line for LiteLLM in a benchmark's JSON: how it ran, or
    why it did not."""
    if not workers:
        return "left out (--litellm-workers 0)"
    if not stack.litellm:
        return "skipped: %s" % stack.litellm_skip
    return ("%s, %d uvicorn worker%s, `openai/` provider with api_base the "
            "sim, master key, no database, telemetry off, logs at ERROR; "
            "its CPU is all its python processes'"
            % (litellm_version(), workers, "" if workers == 1 else "s"))


class Stack:
    """sim + thinkgated + one nginx serving both (b) proxy_pass and (c)
    thinkgate_pass, on two ports of the same workers; with litellm= a
    list of model names, also (d) the LiteLLM proxy in front of the same
    sim (self.litellm is None and self.litellm_skip says why when it is
    not installed)."""

    def __init__(self, sim_args, workers=1, worker_connections=4096,
                 inflight=1024, ring=None, litellm=None,
                 litellm_workers=LITELLM_WORKERS, affinity=None):
        self.procs = []
        self.litellm = None
        self.litellm_skip = None
        try:
            self.sim = start_sim(sim_args)
            self.procs.append(self.sim)
            self.engine = harness.start_engine()
            self.procs.append(self.engine)
            self.tg_port = harness.free_port()
            self.pp_port = harness.free_port()
            p = harness.Proc("nginx", [])
            os.chmod(p.workdir, 0o755)
            conf = os.path.join(p.workdir, "nginx.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(
                    workers=workers, dir=p.workdir,
                    affinity="worker_cpu_affinity %s;" % affinity
                    if affinity else "",
                    nofile=min(max(worker_connections * 2 + 64, 1024),
                               resource.getrlimit(
                                   resource.RLIMIT_NOFILE)[1]),
                    worker_connections=worker_connections,
                    user="user nobody nogroup;" if os.geteuid() == 0 else "",
                    module=harness.MODULE, sock=self.engine.sock,
                    ring=" ring=%s" % ring if ring else "",
                    sim_port=self.sim.port, inflight=inflight,
                    tg_port=self.tg_port, pp_port=self.pp_port))
            p.argv = ["nginx", "-p", p.workdir, "-c", conf]
            p.start()
            self.procs.append(p)
            self.nginx = p
            try:
                harness.wait_port(self.tg_port, proc=p)
                harness.wait_port(self.pp_port, proc=p)
            except Exception as e:
                raise RuntimeError("nginx did not start: %s\n%s\n%s" % (
                    e, p.log(), self.nginx_error_log()))
            self.workers = self._wait_workers(workers)
            self.urls = {
                "direct": "http://127.0.0.1:%d" % self.sim.port,
                "proxy_pass": "http://127.0.0.1:%d" % self.pp_port,
                "thinkgate": "http://127.0.0.1:%d" % self.tg_port,
            }
            if litellm:
                self.litellm_skip = litellm_missing()
                if self.litellm_skip is None:
                    self.litellm = start_litellm(self.sim.url, litellm,
                                                 litellm_workers)
                    self.procs.append(self.litellm)
                    self.urls["litellm"] = self.litellm.url
        except Exception:
            self.close()
            raise

    def _wait_workers(self, n):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            w = children(self.nginx.p.pid)
            if len(w) >= n:
                return w
            time.sleep(0.05)
        raise RuntimeError("nginx started %d of %d workers"
                           % (len(children(self.nginx.p.pid)), n))

    def nginx_error_log(self):
        try:
            with open(os.path.join(self.nginx.workdir, "error.log"),
                      errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def dead(self):
        """Names and exit codes of the processes that are no longer
        running, with the tail of their logs."""
        out = []
        for p in self.procs:
            if p.poll() is not None:
                out.append({"name": p.name, "exit": p.poll(),
                            "log": p.log()[-1500:]})
        return out

    def pids(self):
        out = {"nginx": list(self.workers), "engine": [self.engine.p.pid],
               "sim": [self.sim.p.pid]}
        if self.litellm:
            # Its python processes: the server and, with several workers,
            # uvicorn's worker processes under it.
            out["litellm"] = ([self.litellm.p.pid]
                              + descendants(self.litellm.p.pid))
        return out

    def dump(self):
        for p in self.procs:
            print("---- %s log ----\n%s" % (p.name, p.log()[-3000:]))
        print("---- nginx error.log ----\n" + self.nginx_error_log())

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.dump()
        self.close()


def http_json(port, method, path, body=None, timeout=10, headers=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    c.request(method, path, body=json.dumps(body) if body else None,
              headers=dict({"Content-Type": "application/json"},
                           **(headers or {})))
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def wait_idle(stack, timeout=20.0, quiet_cpu=0.02, step=0.25):
    """Waits until the last run's work is gone: the sim has no open
    stream, thinkgate none in flight, and nginx and the engine use less
    than quiet_cpu CPU seconds per step.  Returns the seconds waited (a
    gateway still relaying for clients that left shows here)."""
    t0 = time.monotonic()
    pids = stack.pids()
    busy = pids["nginx"] + pids["engine"] + pids.get("litellm", [])
    while time.monotonic() - t0 < timeout:
        c0 = total_cpu(busy)
        time.sleep(step)
        if total_cpu(busy) - c0 >= quiet_cpu:
            continue
        try:
            if sim_stats(stack).get("open_streams", 0):
                continue
            doc = json.loads(http_json(stack.tg_port, "GET",
                                       "/thinkgate/status", timeout=2)[1])
            if (doc.get("requests") or {}).get("in_flight", 0):
                continue
        except (OSError, ValueError):
            continue
        return round(time.monotonic() - t0, 2)
    return round(time.monotonic() - t0, 2)


def sim_stats(stack):
    return json.loads(http_json(stack.sim.port, "GET", "/sim/stats")[1])


# ---- wrk -----------------------------------------------------------------

def run_wrk(url, script, connections, duration_s, threads=1, args=(),
            timeout_s=10, auth=None):
    """Runs wrk with one of bench/wrk/*.lua, whose done() prints one JSON
    line starting with WRKJSON.  Returns that document plus the client's
    own CPU seconds (from wait4's rusage).  auth: a bearer token sent on
    every request (LiteLLM's key)."""
    argv = ["wrk", "-t", str(threads), "-c", str(connections),
            "-d", "%ds" % max(1, round(duration_s)),
            "--timeout", "%ds" % timeout_s]
    if auth:
        argv += ["-H", "Authorization: Bearer " + auth]
    argv += ["-s", os.path.join(WRK_DIR, script), url, "--"] + list(args)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT)
    out = b""
    deadline = time.monotonic() + duration_s + timeout_s + 20
    os.set_blocking(p.stdout.fileno(), False)
    while True:
        chunk = p.stdout.read()
        if chunk:
            out += chunk
        r = os.wait4(p.pid, os.WNOHANG)
        if r[0] == p.pid:
            rest = p.stdout.read()
            out += rest or b""
            usage = r[2]
            p.returncode = os.waitstatus_to_exitcode(r[1])
            break
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            raise RuntimeError("wrk did not finish:\n" + out.decode())
        time.sleep(0.05)
    text = out.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("WRKJSON "):
            doc = json.loads(line[len("WRKJSON "):])
            break
    else:
        raise RuntimeError("wrk printed no summary (rc %s):\n%s"
                           % (p.returncode, text))
    doc["client_cpu_s"] = round(usage.ru_utime + usage.ru_stime, 3)
    return doc


# ---- output --------------------------------------------------------------

def table(headers, rows):
    """Plain-text table, right-aligned numbers."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for n, r in enumerate(cells):
        lines.append("  ".join(c.rjust(w) if n and i else c.ljust(w)
                               for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def make_table(caption, headers, rows):
    """A table as benchmarks store it in their JSON ("tables"), so that
    the terminal and bench/report.py show the same cells."""
    return {"caption": caption, "headers": [str(h) for h in headers],
            "rows": [[fmt(c) for c in r] for r in rows]}


def print_tables(doc):
    print("== " + doc.get("title", doc.get("benchmark", "")))
    for t in doc.get("tables", []):
        print()
        print(t["caption"])
        print(table(t["headers"], t["rows"]))
    print()


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        if abs(v) >= 100:
            return "%.0f" % v
        if abs(v) >= 10:
            return "%.1f" % v
        return "%.2f" % v
    return str(v)


def ratio_cell(a, b):
    """a / b as a table cell: two decimals, or two significant digits
    below 0.1 (LiteLLM against proxy_pass); None ("-") when b is 0 or
    either is missing."""
    if a is None or not b:
        return None
    x = a / b
    return "%.2g" % x if abs(x) < 0.1 else round(x, 2)


def machine():
    """What the figures were measured on."""
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True,
                             text=True).stderr.strip()
    return {"cpus": os.cpu_count(), "cpu_model": model, "nginx": nginx_v,
            "kernel": os.uname().release}


def commit():
    """The checkout's commit, "+dirty" when tracked files differ from it
    ("unknown" outside a git checkout)."""
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain",
                                "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


# One id for every benchmark of one `make bench` (bench/bench.mk sets
# TG_BENCH_RUN_ID); a benchmark run by hand gets one of its own, so that
# bench/report.py never mixes it with another run.
RUN_ID = os.environ.get("TG_BENCH_RUN_ID") or "single-%s-%d" % (
    time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()), os.getpid())


def write_json(name, doc):
    os.makedirs(OUT, exist_ok=True)
    doc.setdefault("benchmark", name)
    doc.setdefault("commit", commit())
    doc.setdefault("run_id", RUN_ID)
    doc.setdefault("time", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                         time.gmtime()))
    doc.setdefault("machine", machine())
    path = os.path.join(OUT, name + ".json")
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    os.replace(path + ".tmp", path)
    return path


def plt():
    """matplotlib with a file-only backend."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as pyplot
    return pyplot


def png_path(name):
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name + ".png")
