"""Issue 14: a plugin .so overwritten in place (cp over the loaded file,
same inode) rather than renamed, then reloaded through the admin
location.

A process that had dlopen()ed that very file would see its mapped code
change under it (or a SIGBUS for the pages past the truncated end), and a
second dlopen() of the same path would hand back the old, already open
object.  The engine loads a private copy of every plugin (engine/plugin/
open.c), so the overwrite cannot touch what runs, and the reload loads
the new file: the test plugin "probe" (tests/plugins/good.c) says which
version the engine runs (its descriptor's, in the admin list), and its
load() refuses to run twice in one loaded object, as a stale dlopen()
handle would make it.
"""
import glob
import http.client
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

import harness

TEST_PLUGINS = os.path.join(harness.BUILD, "tests", "plugins")
GOOD = os.path.join(TEST_PLUGINS, "good.so")
GOOD_V2 = os.path.join(TEST_PLUGINS, "good_v2.so")

pytestmark = [harness.needs_module(),
              harness.needs(None if os.path.exists(GOOD)
                            and os.path.exists(GOOD_V2)
                            else "build/tests/plugins/good.so and "
                            "good_v2.so not built (make test-e2e builds "
                            "them)")]

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_strategy ffs n=4;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
        location /thinkgate/admin/ {
            thinkgate_admin;
        }
"""

CHAT = {"model": "thinkgate-sim",
        "messages": [{"role": "user", "content": "What is 17 + 25?"}],
        "max_tokens": 32}


@pytest.fixture
def gw():
    pdir = tempfile.mkdtemp(prefix="tg-plugins-")
    for so in glob.glob(os.path.join(harness.BUILD, "plugins", "*.so")):
        shutil.copy(so, pdir)
    shutil.copy(GOOD, os.path.join(pdir, "probe.so"))
    g = harness.Gateway(sim_args=["--step-ms", "2", "--step-ms-per-seq", "0"],
                        server=SERVER, plugin_dir=pdir)
    g.plugin_dir = pdir
    try:
        harness.wait_registered(g.nginx, 2)
        yield g
    except Exception:
        g.dump()
        raise
    finally:
        g.close()
        shutil.rmtree(pdir, ignore_errors=True)


def request(g, method, path, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", g.nginx.port, timeout=30)
    conn.request(method, path, body=None if body is None
                 else json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def entry(g, name):
    status, raw = request(g, "GET", "/thinkgate/admin/plugins")
    assert status == 200, raw
    return next(p for p in json.loads(raw) if p["name"] == name)


def overwrite_in_place(src, dst):
    """cp(1) over the file: O_TRUNC and write into the same inode."""
    ino = os.stat(dst).st_ino
    subprocess.run(["cp", src, dst], check=True, timeout=30)
    assert os.stat(dst).st_ino == ino, "cp replaced the inode"


def test_plugin_overwritten_in_place_then_reloaded(gw):
    first = entry(gw, "probe")
    assert first["version"] == "1.0", first
    engine_pid = gw.engine.p.pid

    # Clients keep ffs busy while its file and probe's are overwritten.
    stop = threading.Event()
    results, failures = [], []

    def client():
        while not stop.is_set():
            try:
                status, raw = request(gw, "POST", "/v1/chat/completions",
                                      CHAT)
                if status != 200:
                    failures.append((status, raw[:300]))
                results.append(status)
            except Exception as e:      # noqa: BLE001 - any failure counts
                failures.append(repr(e))

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        for _ in range(5):
            overwrite_in_place(os.path.join(harness.BUILD, "plugins",
                                            "ffs.so"),
                               os.path.join(gw.plugin_dir, "ffs.so"))
            time.sleep(0.1)
        overwrite_in_place(GOOD_V2, os.path.join(gw.plugin_dir, "probe.so"))
        status, raw = request(gw, "POST",
                              "/thinkgate/admin/plugins/probe/reload")
        assert status == 200, raw
        status, raw = request(gw, "POST",
                              "/thinkgate/admin/plugins/ffs/reload")
        assert status == 200, raw
        time.sleep(0.5)
    finally:
        stop.set()
        for t in threads:
            t.join(60)

    assert gw.engine.poll() is None, gw.engine.log()[-3000:]
    assert gw.engine.p.pid == engine_pid
    assert failures == [], failures[:3]
    assert len(results) >= 3, results
    # The reload loaded the new file; nothing still runs the old one.
    probe = entry(gw, "probe")
    assert probe["version"] == "2.0", probe
    assert probe["generation"] > first["generation"], probe
    assert not probe["last_error"], probe
    assert probe["draining"] == [], probe
    # ffs, overwritten five times under load, still answers.
    for _ in range(3):
        status, raw = request(gw, "POST", "/v1/chat/completions", CHAT)
        assert status == 200, raw
        assert json.loads(raw)["thinkgate"]["strategy"] == "ffs"
