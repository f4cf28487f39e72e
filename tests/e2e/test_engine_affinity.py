"""The engine's event loop follows the CPUs of the nginx workers it serves
(--cpu-affinity workers, the default; engine/transport/affinity.h): on
the workers' CPUs when nginx pins them (worker_cpu_affinity), back on its
own set when they are gone, left alone with --cpu-affinity off."""

import os
import subprocess
import time

import pytest

import harness

pytestmark = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2,
    reason="needs two CPUs to tell a pinned loop from a free one")


def cpus(pid):
    return os.sched_getaffinity(pid)


def wait_cpus(pid, want, timeout=10.0):
    deadline = time.monotonic() + timeout
    while cpus(pid) != want:
        if time.monotonic() > deadline:
            raise AssertionError("engine loop on %s, not %s"
                                 % (sorted(cpus(pid)), sorted(want)))
        time.sleep(0.02)


def pinned_nginx(engine, masks):
    """nginx with len(masks) workers, worker i on the CPUs of masks[i]
    (nginx's bit strings, CPU 0 rightmost)."""
    http = ("    thinkgate_backend b0 http://127.0.0.1:9 max_inflight=8;\n"
            "    thinkgate_pool reasoners b0;\n")
    ng = harness.start_nginx(engine.sock, http, workers=len(masks))
    # worker_cpu_affinity is a main-context directive: rewrite and restart.
    ng.stop()
    with open(ng.conf) as f:
        conf = f.read()
    conf = conf.replace("worker_processes %d;" % len(masks),
                        "worker_processes %d;\nworker_cpu_affinity %s;"
                        % (len(masks), " ".join(masks)), 1)
    with open(ng.conf, "w") as f:
        f.write(conf)
    ng.start()
    harness.wait_port(ng.port, proc=ng)
    harness.wait_registered(ng, workers=len(masks))
    return ng


def cpu_list(cpus):
    """The engine's list form of a sorted set of CPUs ("0-3,6")."""
    out, i = [], 0
    while i < len(cpus):
        j = i
        while j + 1 < len(cpus) and cpus[j + 1] == cpus[j] + 1:
            j += 1
        out.append(str(cpus[i]) if i == j else "%d-%d" % (cpus[i], cpus[j]))
        i = j + 1
    return ",".join(out)


def mask(cpu):
    return "1" + "0" * cpu


def test_loop_follows_pinned_workers_and_returns_when_they_go():
    base = sorted(os.sched_getaffinity(0))
    a, b = base[0], base[1]
    engine = harness.start_engine()
    ng = None
    try:
        start = cpus(engine.p.pid)
        assert start == set(base)
        ng = pinned_nginx(engine, [mask(a)])
        wait_cpus(engine.p.pid, {a})
        assert "event loop on CPUs %d (the registered workers')" % a \
            in engine.log()
        ng.cleanup()
        ng = None
        # the worker gone: back on everything the engine was started on
        wait_cpus(engine.p.pid, set(base))
        assert "event loop on CPUs %s (all the engine's)" % cpu_list(base) \
            in engine.log()
        # two workers on two CPUs: the loop may run on either
        ng = pinned_nginx(engine, [mask(a), mask(b)])
        wait_cpus(engine.p.pid, {a, b} if {a, b} != set(base) else set(base))
    finally:
        if ng:
            ng.cleanup()
        engine.cleanup()


def test_loop_stays_within_the_engines_own_set():
    base = sorted(os.sched_getaffinity(0))
    a, b = base[0], base[1]
    # the engine started on CPU b only; its worker pinned to CPU a
    engine = harness.Proc("engine", [], env=harness.engine_env())
    os.chmod(engine.workdir, 0o755)
    sock = os.path.join(engine.workdir, "engine.sock")
    engine.argv = ["taskset", "-c", str(b),
                   os.path.join(harness.BIN, "thinkgated"), "--socket", sock,
                   "--plugin-dir", harness.PLUGIN_DIR]
    if os.geteuid() == 0:
        engine.argv += ["--allow-user", "nobody"]
    engine.sock = sock
    engine.start()
    ng = None
    try:
        harness.wait_path(sock, proc=engine)
        ng = pinned_nginx(engine, [mask(a)])
        time.sleep(0.3)
        # nothing to move: the loop is already on all the engine may use
        assert cpus(engine.p.pid) == {b}
        assert "event loop on CPUs" not in engine.log()
    finally:
        if ng:
            ng.cleanup()
        engine.cleanup()


def test_off_leaves_the_loop_where_it_was():
    base = set(os.sched_getaffinity(0))
    engine = harness.start_engine(args=["--cpu-affinity", "off"])
    ng = None
    try:
        ng = pinned_nginx(engine, [mask(min(base))])
        time.sleep(0.3)
        assert cpus(engine.p.pid) == base
        assert "event loop on CPUs" not in engine.log()
    finally:
        if ng:
            ng.cleanup()
        engine.cleanup()


def test_bad_value_is_refused():
    r = subprocess.run([os.path.join(harness.BIN, "thinkgated"),
                        "--socket", "/tmp/tg-never.sock",
                        "--cpu-affinity", "sometimes"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2
    assert "--cpu-affinity must be workers or off, not \"sometimes\"" \
        in r.stderr
    assert not os.path.exists("/tmp/tg-never.sock")
