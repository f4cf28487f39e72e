"""Settings shared by the e2e tests.

pytest.ini gives every test 300 s (pytest-timeout).  The files below hold
tests that may legitimately run longer on a busy 2-core machine, each for
the reason given; they get their own limit here so that no test file
needs to repeat it.  A `@pytest.mark.timeout` on a test still wins, and
`--timeout N` / PYTEST_TIMEOUT=N changes the default for a run.

`make test-e2e` runs the files on E2E_JOBS pytest-xdist workers at once,
each file whole on one worker (--dist loadfile, --no-loadscope-reorder):
a worker takes the next file in collection order when it is done with
one, so the files with a LONGER limit are collected first, longest first,
and the short ones fill in behind them.  E2E_JOBS=1 runs them in the
usual order without xdist.
"""
import os

# numpy's OpenBLAS (test_embed_model.py's float64 reference) starts a
# thread per core that spins while it waits for work; beside other busy
# processes (the other xdist workers, the programs under test) that made
# the reference 5 to 20 times slower than one thread (measured: 36 s
# against 1.9 s for 12 texts with both cores busy).  Set before any test
# module imports numpy; thinkgate-embed sets one thread itself.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402

import harness  # noqa: E402

LONGER = {
    # builds the Docker image (minutes); its own subprocess limit is 3600 s
    "test_docker.py": 3700,
    # thinkgate-embed over hundreds of texts, subprocess limits of 300 s
    "test_embed_model.py": 900,
    # 10,000 texts through two tokenizers at three lengths
    "test_embed_tokenizer.py": 900,
    # llama.cpp loading SmolLM2 (up to 90 s) and CPU generation
    "test_llamacpp.py": 900,
    # SmolLM2 as a judge: 5-10 s a call, 120 s allowed each
    "test_aux_judge.py": 900,
    # deepprune with SmolLM2 as its judge over 2 problems of 4 traces
    "test_bench_llm_judge.py": 900,
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        limit = LONGER.get(os.path.basename(str(item.fspath)))
        if limit and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(limit))
    if hasattr(config, "workerinput"):
        # An xdist worker: every worker sorts alike (xdist checks that
        # they all collected the same list), a stable sort keeps each
        # file's own order.
        items.sort(key=lambda item: -LONGER.get(
            os.path.basename(str(item.fspath)), 0))


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tg_needs(reason, opt_out): a needed input is missing "
        "when reason is not None: skip, or fail in CI (harness.missing)")


def pytest_runtest_setup(item):
    for mark in item.iter_markers("tg_needs"):
        if mark.kwargs.get("reason"):
            harness.missing(mark.kwargs["reason"], mark.kwargs.get("opt_out"))
