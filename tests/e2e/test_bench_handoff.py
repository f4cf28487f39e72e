"""thinkgate-handoff (bench/handoff.c), which bench/overhead prints beside
its CPU figures: it runs its layouts and reports each as one JSON line.
Nothing here checks a speed."""
import json
import os
import subprocess

import harness

TOOL = os.path.join(harness.BIN, "thinkgate-handoff")


def test_layouts_reported():
    out = subprocess.run([TOOL, "200"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    cpus = sorted(os.sched_getaffinity(0))
    want = ["one CPU", "two CPUs", "scheduler"] if len(cpus) > 1 \
        else ["one CPU", "scheduler"]
    # Each layout with either doorbell: the socket's, then eventfds.
    assert [(d["doorbell"], d["layout"]) for d in docs] == \
        [("socket", w) for w in want] + [("eventfd", w) for w in want]
    for half in (docs[:len(want)], docs[len(want):]):
        assert half[0]["cpus"] == [cpus[0], cpus[0]]
        if len(cpus) > 1:
            assert half[1]["cpus"] == cpus[:2]
    for d in docs:
        assert d["round_trips"] == 200
        assert d["cpu_us_per_round_trip_per_side"] > 0
        assert d["wall_us_per_round_trip"] > 0


def test_bad_count_refused():
    out = subprocess.run([TOOL, "0"], capture_output=True, text=True,
                         timeout=10)
    assert out.returncode == 2
    assert "usage: thinkgate-handoff" in out.stderr
