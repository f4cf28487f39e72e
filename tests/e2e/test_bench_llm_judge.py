"""bench/strategies --llm-judge: deepprune through nginx and the engine
with a real model as its judge, SmolLM2-135M-Instruct on llama.cpp's
server, on an invented trace file cut to its first problems
(--max-problems), at a decode pace slow enough for a CPU judge.  The run
must get verdicts (judge calls that neither failed nor timed out, in
rounds that completed), lose no request and leave no stream open.

Skips when the model file or llama-cpp-python[server] is absent (a
failure in CI), or with THINKGATE_NO_LLAMA=1."""
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


@pytest.mark.parametrize("argv, says", [
    (["--strategy", "ffs", "--llm-judge"], "for --strategy deepprune"),
    (["--strategy", "deepprune", "--llm-judge", "--judge-auroc", "0.8"],
     "two judges"),
    (["--strategy", "deepprune", "--max-problems", "0"], "1 or more"),
])
def test_bad_judge_arguments_are_refused(argv, says):
    r = subprocess.run([sys.executable, os.path.join(BENCH, "strategies"),
                        "--traces", os.devnull] + argv,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and says in r.stderr, r.stderr


def test_keep_first_keeps_the_lowest_ids_in_file_order():
    tf = L.TraceFile.__new__(L.TraceFile)
    tf.problems = [L.Problem("M", "q", str(i), 1, "b")
                   for i in (7, 2, 10, 1)]
    L.keep_first(tf, 2)
    assert [p.problem_id for p in tf.problems] == ["2", "1"]


@harness.needs(L.llm_judge_missing(), opt_out="THINKGATE_NO_LLAMA")
def test_deepprune_with_smollm2_as_its_judge():
    tdir = tempfile.mkdtemp(prefix="tg-bench-llm-judge-")
    try:
        path = L.write_unseen(os.path.join(tdir, "unseen.jsonl.gz"),
                              problems=5, samples=4)
        r = subprocess.run(
            [sys.executable, os.path.join(BENCH, "strategies"),
             "--traces", path, "--strategy", "deepprune", "--n", "4",
             "--llm-judge", "--max-problems", "2",
             "--opt", "prefix_tokens=64", "--opt", "judge_timeout_ms=120000",
             "--json", "--concurrency", "2",
             # 200 tokens a second a trace, up to 4,000: 20 s, time for
             # the model's verdicts (a second or two each on this CPU)
             "--tokens-per-step", "1", "--step-ms", "5",
             "--max-tokens", "4000"],
            capture_output=True, text=True, timeout=900)
        assert r.returncode == 0, r.stderr[-3000:]
        recs = [json.loads(line) for line in r.stdout.splitlines()
                if line.startswith("{")]
    finally:
        shutil.rmtree(tdir, ignore_errors=True)
    assert len(recs) == 1, r.stdout[-2000:]
    rec = recs[0]
    assert rec["judge"] == "smollm2", rec
    assert rec["problems"] == 2, rec
    assert rec["errors"] == 0 and rec["open_streams"] == 0, rec
    # verdicts from the model: asked, answered in rounds that completed
    # while the traces ran (judge_ms counts those), none failed
    assert rec.get("judge_calls", 0) > 0, rec
    assert rec.get("judge_ms", 0) > 0, rec
    assert rec.get("judge_failures", 0) == 0, rec
    assert rec.get("judge_degraded", 0) == 0, rec
