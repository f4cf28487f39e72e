"""bench/strategies --effort: the requests it builds, and one run through
nginx, the engine and the sim on an invented trace file.

Without --strategy a level is left to the location's default
thinkgate_effort mapping: the request carries reasoning_effort and names
no strategy (high's self_consistency n=4 gets only the answer format), and
"none" is the baseline without the field.  The run checks what the
gateway reports against the mapping the bench labels its figures with
(a difference is counted as a failed request): the low budget cuts traces
and costs fewer tokens than the baseline, high runs self_consistency n=4
early_stop=exact with the tokens the recording predicts.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

import harness

BENCH = os.path.join(harness.ROOT, "bench")
sys.path.insert(0, BENCH)

import strategies_lib as L  # noqa: E402


def problem(bench="aime2024"):
    return L.Problem("M", "What is 6 + 7?", "0", 13, bench)


def test_effort_requests_name_no_strategy():
    low = L.request_body(problem(), L.effort_config("low"), 4000)
    assert low["reasoning_effort"] == "low"
    assert "thinkgate" not in low, low

    high = L.request_body(problem(), L.effort_config("high"), 4000)
    assert high["reasoning_effort"] == "high"
    # The level's strategy runs: the client sends its answer format only.
    assert high["thinkgate"] == {"bench": "aime2024"}, high

    base = L.request_body(problem(), L.effort_config("none"), 4000)
    assert "reasoning_effort" not in base and "thinkgate" not in base, base

    # An unknown answer format is not sent (the plugins refuse it).
    high = L.request_body(problem("quiz"), L.effort_config("high"), 4000)
    assert "thinkgate" not in high, high


def test_effort_check_compares_the_reply_with_the_mapping():
    low = L.effort_config("low")
    ok = {"effort": "low", "thinking_budget": 1024, "strategy":
          "passthrough"}
    assert L.effort_check(low, ok) is None
    assert "thinking_budget" in L.effort_check(
        low, dict(ok, thinking_budget=512))
    assert "effort" in L.effort_check(low, {"strategy": "passthrough"})
    assert "strategy" in L.effort_check(
        L.effort_config("high"), {"effort": "high", "thinking_budget": None,
                                  "strategy": "passthrough"})
    assert "effort" in L.effort_check(L.effort_config("none"), ok)


@pytest.mark.parametrize("argv, says", [
    (["--effort", "extreme"], "--effort takes"),
    (["--effort", "low,low"], "twice"),
    (["--effort", "low", "--n", "4"], "--effort without --strategy"),
])
def test_bad_effort_arguments_are_refused(argv, says):
    r = subprocess.run([sys.executable, os.path.join(BENCH, "strategies"),
                        "--traces", os.devnull] + argv,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and says in r.stderr, r.stderr


def test_effort_levels_through_the_gateway():
    tdir = tempfile.mkdtemp(prefix="tg-bench-effort-")
    try:
        path = L.write_unseen(os.path.join(tdir, "unseen.jsonl.gz"),
                              problems=8, samples=4)
        r = subprocess.run(
            [sys.executable, os.path.join(BENCH, "strategies"),
             "--traces", path, "--effort", "none,low,high", "--json",
             "--concurrency", "8"],
            capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
        recs = {rec["effort"]: rec for rec in
                (json.loads(line) for line in r.stdout.splitlines()
                 if line.startswith("{"))}
    finally:
        shutil.rmtree(tdir, ignore_errors=True)
    assert set(recs) == {"none", "low", "high"}, recs.keys()
    for rec in recs.values():
        assert rec["errors"] == 0 and rec["open_streams"] == 0, rec
        assert rec["problems"] == 8, rec

    none, low, high = recs["none"], recs["low"], recs["high"]
    assert none["strategy"] == "passthrough" and none["n"] == 1
    assert none.get("budget_cuts", 0) == 0
    assert none["within_3pct"], none

    # The invented traces run 800 to 24,000 tokens: most are cut.
    assert low["thinking_budget"] == 1024 and low["strategy"] == \
        "passthrough", low
    assert 0 < low["budget_cuts"] <= 8, low
    assert low["tokens"] < none["tokens"], (low, none)
    assert "expected_tokens" not in low, low

    assert high["thinking_budget"] is None, high
    assert high["strategy"] == "self_consistency" and high["n"] == 4, high
    assert high["early_stop"] == "exact" and high.get("budget_cuts", 0) == 0
    assert high["within_3pct"], high
