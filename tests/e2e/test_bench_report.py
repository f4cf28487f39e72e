"""bench/report.py writes README.md's Performance section only from JSON
files of one run on one commit (issue 14, item 6), and bench/lib.py
stamps every benchmark's JSON with both.  No servers: the report runs on
JSON files written here."""
import json
import os
import subprocess
import sys

import pytest

import harness

REPORT = os.path.join(harness.ROOT, "bench", "report.py")
README = """# x

## Performance

<!-- bench:begin -->
old section
<!-- bench:end -->
"""


def bench_doc(run_id, commit, title):
    doc = {"title": title, "tables": [{"caption": "c", "headers": ["a", "b"],
                                       "rows": [["x", "1"]]}]}
    if run_id is not None:
        doc["run_id"] = run_id
    if commit is not None:
        doc["commit"] = commit
    return doc


@pytest.fixture
def bench_dir(tmp_path):
    d = tmp_path / "bench"
    d.mkdir()
    (tmp_path / "README.md").write_text(README)
    return d


def write(d, name, doc):
    (d / (name + ".json")).write_text(json.dumps(doc))


def report(d):
    return subprocess.run([sys.executable, REPORT, "--dir", str(d),
                           "--readme", str(d.parent / "README.md")],
                          capture_output=True, text=True, timeout=60)


def test_one_run_renders_and_names_it(bench_dir):
    write(bench_dir, "overhead", bench_doc("bench-1", "abc123", "Overhead"))
    write(bench_dir, "relay", bench_doc("bench-1", "abc123", "Relay"))
    # make soak's file is not a benchmark: another run, left out.
    write(bench_dir, "soak", bench_doc("single-9", "fff999", "Soak"))
    r = report(bench_dir)
    assert r.returncode == 0, r.stderr
    readme = (bench_dir.parent / "README.md").read_text()
    assert "old section" not in readme
    assert "### Overhead" in readme and "### Relay" in readme
    assert "Soak" not in readme
    assert "`bench-1`" in readme and "`abc123`" in readme


@pytest.mark.parametrize("other", [("bench-2", "abc123"),
                                   ("bench-1", "def456"),
                                   ("bench-1", "abc123+dirty")])
def test_different_runs_or_commits_are_refused(bench_dir, other):
    write(bench_dir, "overhead", bench_doc("bench-1", "abc123", "Overhead"))
    write(bench_dir, "relay", bench_doc(other[0], other[1], "Relay"))
    r = report(bench_dir)
    assert r.returncode == 2
    assert "refusing" in r.stderr and "different runs or commits" in r.stderr
    # Which file has which run and commit is named.
    assert "overhead.json" in r.stderr and "relay.json" in r.stderr
    assert other[0] in r.stderr and other[1] in r.stderr
    assert (bench_dir.parent / "README.md").read_text() == README


@pytest.mark.parametrize("missing", [(None, "abc123"), ("bench-1", None)])
def test_json_without_run_or_commit_is_refused(bench_dir, missing):
    write(bench_dir, "overhead", bench_doc("bench-1", "abc123", "Overhead"))
    write(bench_dir, "scale", bench_doc(missing[0], missing[1], "Scale"))
    r = report(bench_dir)
    assert r.returncode == 2
    assert "scale.json record no run_id or commit" in r.stderr
    assert (bench_dir.parent / "README.md").read_text() == README


def test_unreadable_json_is_refused(bench_dir):
    write(bench_dir, "overhead", bench_doc("bench-1", "abc123", "Overhead"))
    (bench_dir / "relay.json").write_text("{not json")
    r = report(bench_dir)
    assert r.returncode == 2 and "relay.json cannot be read" in r.stderr
    assert (bench_dir.parent / "README.md").read_text() == README


def test_lib_stamps_commit_and_run_id(tmp_path):
    """bench/lib.write_json records the checkout's commit and the run id
    `make bench` exports (TG_BENCH_RUN_ID)."""
    code = ("import json, sys; sys.path.insert(0, %r); import lib; "
            "lib.OUT = %r; p = lib.write_json('x', {'title': 't'}); "
            "print(open(p).read())"
            % (os.path.join(harness.ROOT, "bench"), str(tmp_path)))
    env = dict(os.environ, TG_BENCH_RUN_ID="bench-test-42")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["run_id"] == "bench-test-42"
    head = subprocess.run(["git", "-C", harness.ROOT, "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert doc["commit"] in (head, head + "+dirty")
    # Without the variable, a run of its own.
    env.pop("TG_BENCH_RUN_ID")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True,
                       text=True, timeout=60, env=env)
    assert json.loads(r.stdout)["run_id"].startswith("single-")
