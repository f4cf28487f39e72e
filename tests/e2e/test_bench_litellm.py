"""The LiteLLM peer of `make bench`: mk/litellm.sh's skip path and the
rows bench/overhead, bench/relay and bench/report.py make of its runs.

Nothing here measures speed: the runs are made-up documents of the shape
the benchmarks write, and the checks are on which rows appear and how
their ratios are computed.  LiteLLM itself is never started.
"""
import json
import os
import shutil
import subprocess
import sys
from importlib.machinery import SourceFileLoader
from importlib.util import module_from_spec, spec_from_loader

import pytest

import harness

BENCH = os.path.join(harness.ROOT, "bench")
sys.path.insert(0, BENCH)

import lib  # noqa: E402
import report  # noqa: E402


def load(name):
    loader = SourceFileLoader("bench_" + name, os.path.join(BENCH, name))
    mod = module_from_spec(spec_from_loader(loader.name, loader))
    loader.exec_module(mod)
    return mod


overhead = load("overhead")
relay = load("relay")


def ov_run(target, conc, p50, p99, rps, cpu_us):
    return {"target": target, "concurrency": conc, "p50_ms": p50,
            "p99_ms": p99, "rps": rps, "gateway_cpu_us_per_req": cpu_us,
            "client_cpu_share": 0.05, "errors": 0}


def ov_doc(with_litellm):
    runs = [ov_run("direct", 1, 0.10, 0.20, 5000.0, 0.0),
            ov_run("proxy_pass", 1, 0.14, 0.30, 4000.0, 50.0),
            ov_run("thinkgate", 1, 0.30, 0.60, 2000.0, 200.0)]
    if with_litellm:
        runs.append(ov_run("litellm", 1, 12.10, 20.20, 80.0, 12000.0))
    # one run of one commit, as bench/report.py requires
    return {"title": "Overhead", "concurrency": [1], "runs": runs,
            "setup": {"litellm": "litellm[proxy]==X, 1 uvicorn worker"},
            "run_id": "test-run", "commit": "0123456"}


def rows_of(table, col=1):
    return {r[col]: r for r in table["rows"]}


def test_overhead_rows_per_gateway_with_litellm():
    ratios, raw = overhead.make_tables(ov_doc(True))
    assert ratios["headers"][:4] == ["concurrency", "gateway",
                                     "added p50 ms", "x pp"]
    rows = rows_of(ratios)
    assert list(rows) == ["proxy_pass", "thinkgate", "litellm"]
    # added p50 over direct, and its multiple of proxy_pass's (0.04 ms)
    assert rows["litellm"][2] == "12.0"
    assert rows["litellm"][3] == "300"
    assert rows["thinkgate"][3] == "5.00"
    # req/s against proxy_pass: 80 / 4000 keeps two significant digits
    assert rows["litellm"][6] == "0.02"
    assert rows["thinkgate"][6] == "0.50"
    # gateway CPU per request against proxy_pass's
    assert rows["litellm"][7] == "12000" and rows["litellm"][8] == "240"
    assert "litellm" in [r[0] for r in raw["rows"]]


def test_overhead_without_litellm_has_no_litellm_row():
    ratios, raw = overhead.make_tables(ov_doc(False))
    assert list(rows_of(ratios)) == ["proxy_pass", "thinkgate"]
    assert "litellm" not in [r[0] for r in raw["rows"]]


def test_overhead_other_layout_and_handoff_tables():
    doc = ov_doc(False)
    doc["setup"]["layout"] = "free: every process where the scheduler"
    doc["other_layout"] = "placed: nginx workers on CPUs 0"
    doc["other_concurrency"] = [1]
    doc["other_runs"] = [ov_run("direct", 1, 0.10, 0.20, 5000.0, 1.0),
                        ov_run("proxy_pass", 1, 0.15, 0.30, 4000.0, 60.0),
                        ov_run("thinkgate", 1, 0.30, 0.60, 2000.0, 150.0)]
    doc["handoff"] = [
        {"doorbell": "socket", "layout": "one CPU", "cpus": [0, 0],
         "round_trips": 10, "cpu_us_per_round_trip_per_side": 6.0,
         "wall_us_per_round_trip": 12.0},
        {"doorbell": "eventfd", "layout": "two CPUs", "cpus": [0, 1],
         "round_trips": 10, "cpu_us_per_round_trip_per_side": 30.0,
         "wall_us_per_round_trip": 80.0},
        # an earlier run's line, without the doorbell: the socket's
        {"layout": "scheduler", "cpus": [-1, -1], "round_trips": 10,
         "cpu_us_per_round_trip_per_side": 7.0,
         "wall_us_per_round_trip": 14.0}]
    free, placed, raw, handoff = overhead.make_tables(doc)
    assert free["caption"].endswith("layout: free")
    assert placed["caption"].startswith("The same in the placed layout")
    assert "proxy_pass's too" in placed["caption"]
    assert rows_of(free)["thinkgate"][8] == "4.00"     # 200 / 50
    assert rows_of(placed)["thinkgate"][8] == "2.50"   # 150 / 60
    layouts = [(r[0], r[2]) for r in raw["rows"]]
    assert ("thinkgate", "placed") in layouts
    assert ("thinkgate", "free") in layouts
    assert handoff["headers"][:2] == ["doorbell", "layout"]
    assert [r[:2] for r in handoff["rows"]] == [
        ["socket", "one CPU"], ["eventfd", "two CPUs"],
        ["socket", "scheduler"]]
    assert handoff["rows"][1][2] == "0,1"


def test_placement_leaves_cpus_for_sim_and_wrk():
    cpus = sorted(os.sched_getaffinity(0))
    place = lib.placement(1)
    if len(cpus) < 2:
        assert place is None
        return
    assert place["gateway"] == {cpus[0]}
    assert place["rest"] == set(cpus[1:])
    assert place["affinity"] == "1" + "0" * cpus[0]
    assert lib.placement(len(cpus)) is None


def relay_run(target, tps, cpu_mtok, rss=None):
    lt = target == "litellm"
    return {"target": target, "tokens_per_s": tps, "events_per_s": tps // 16,
            "nginx_cpu_s_per_mtok": 0.0 if lt else cpu_mtok / 2,
            "engine_cpu_s_per_mtok": 0.0 if lt else cpu_mtok / 2,
            "gateway_cpu_s_per_mtok": cpu_mtok,
            "nginx_peak_rss_mib": 6.0,
            "engine_peak_rss_mib": 17.0 if target == "thinkgate" else None,
            "litellm_peak_rss_mib": rss, "client_cpu_share": 0.1,
            "sim_cpu_share": 0.2, "drain_after_s": 0.25, "errors": 0}


def test_relay_rows_per_gateway_with_litellm():
    runs = [relay_run("direct", 1000000, 0.0),
            relay_run("proxy_pass", 800000, 0.08),
            relay_run("thinkgate", 600000, 0.16),
            relay_run("litellm", 2000, 80.0, rss=380.0)]
    ratios, raw = relay.make_tables({"groups": [
        {"tokens_per_step": 16, "runs": runs}]})
    rows = rows_of(ratios)
    assert list(rows) == ["proxy_pass", "thinkgate", "litellm"]
    assert rows["litellm"][3] == "0.0025"   # 2,000 / 800,000 tokens/s
    assert rows["litellm"][5] == "1000"     # 80 / 0.08 CPU s per Mtok
    assert rows["thinkgate"][5] == "2.00"
    raw_rows = rows_of(raw)
    hdr = raw["headers"]
    lt = dict(zip(hdr, raw_rows["litellm"]))
    # nginx's and the engine's columns do not apply to LiteLLM's row
    assert lt["nginx CPU s/Mtok"] == "-" and lt["engine CPU s/Mtok"] == "-"
    assert lt["gateway CPU s/Mtok"] == "80.0"
    assert lt["LiteLLM peak RSS MiB"] == "380"
    assert dict(zip(hdr, raw_rows["thinkgate"]))["LiteLLM peak RSS MiB"] \
        == "-"


def test_report_renders_litellm_rows_and_skip_line(tmp_path):
    doc = ov_doc(True)
    doc["tables"] = overhead.make_tables(doc)
    (tmp_path / "overhead.json").write_text(json.dumps(doc))
    skipped = ov_doc(False)
    skipped["title"] = "Relay"
    skipped["setup"] = {"litellm": "skipped: no network"}
    skipped["tables"] = overhead.make_tables(skipped)
    (tmp_path / "relay.json").write_text(json.dumps(skipped))
    text = report.render(str(tmp_path))
    over, rel = text.split("### Relay")
    assert "| 1 | litellm | 12.0 | 300 |" in over
    assert "- litellm: litellm[proxy]==X, 1 uvicorn worker" in over
    assert "litellm |" not in rel
    assert "- litellm: skipped: no network" in rel


def test_litellm_missing_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(lib, "LITELLM_DIR", str(tmp_path))
    monkeypatch.setattr(lib, "LITELLM_BIN", str(tmp_path / "venv/bin/x"))
    assert lib.litellm_missing().startswith("not installed")
    (tmp_path / "skipped").write_text("pip could not install it\n")
    assert lib.litellm_missing().startswith("pip could not install it")
    assert "mk/litellm.sh" in lib.litellm_missing()


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_install_script_without_an_index_skips_cleanly(tmp_path):
    """No package index (pip pointed at a closed loopback port): one
    skip line, exit 0, the reason on file, no venv left behind; --check
    then fails."""
    env = dict(os.environ, BUILD=str(tmp_path),
               PIP_INDEX_URL="http://127.0.0.1:%d/simple"
               % harness.free_port(),
               PIP_NO_CACHE_DIR="1", PIP_FIND_LINKS="")
    script = os.path.join(harness.ROOT, "mk", "litellm.sh")
    r = subprocess.run(["bash", script], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "litellm: skipped: " in r.stdout
    why = (tmp_path / "litellm" / "skipped").read_text()
    assert why.strip() and why.strip() in r.stdout
    assert not (tmp_path / "litellm" / "venv").exists()
    assert not (tmp_path / "litellm" / "installed").exists()
    r = subprocess.run(["bash", script, "--check"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1
