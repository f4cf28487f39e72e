"""Process harness shared by the end-to-end tests.

Starts real programs (thinkgate-sim, thinkgated, nginx, redis-server) on
loopback ports chosen at random, waits until they listen, and stops them,
printing their logs when a test fails.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.join(ROOT, "build")
BIN = os.path.join(BUILD, "bin")
SHARED = os.path.abspath(os.path.join(ROOT, "..", "shared"))
TRACES = os.path.join(SHARED, "traces")


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
                               % proc.returncode)
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
            raise RuntimeError("process exited with %s" % proc.returncode)
        if os.path.exists(path):
            return
        time.sleep(0.02)
    raise TimeoutError("%s did not appear" % path)


class Proc:
    """One child process with its output in a log file."""

    def __init__(self, name, argv, workdir=None, env=None):
        self.name = name
        self.argv = argv
        self.workdir = workdir or tempfile.mkdtemp(prefix="tg-%s-" % name)
        self.log_path = os.path.join(self.workdir, name + ".log")
        self.env = env
        self.p = None

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

    def stop(self, timeout=5.0):
        if not self.p or self.p.poll() is not None:
            return
        os.killpg(self.p.pid, signal.SIGTERM)
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


def start_sim(*args, port=None):
    """Starts build/bin/thinkgate-sim on a free loopback port."""
    port = port or free_port()
    proc = Proc("sim", [os.path.join(BIN, "thinkgate-sim"),
                        "--listen", "127.0.0.1:%d" % port] + list(args))
    proc.start()
    wait_port(port, proc=proc)
    proc.port = port
    proc.url = "http://127.0.0.1:%d" % port
    return proc
