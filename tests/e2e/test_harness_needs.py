"""harness.missing / harness.needs: a test whose input is missing skips
on a developer's machine and fails in CI (CI=true), unless the opt-out
the README documents for that input is set."""
import pytest

import conftest
import harness


def outcome(fn):
    try:
        fn()
    except pytest.skip.Exception as e:
        return "skipped", str(e)
    except pytest.fail.Exception as e:
        return "failed", str(e)
    return "ran", ""


@pytest.fixture
def env(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv("TG_TEST_OPT_OUT", raising=False)
    return monkeypatch


def test_missing_skips_outside_ci(env):
    assert outcome(lambda: harness.missing("no frob")) == ("skipped",
                                                          "no frob")


@pytest.mark.parametrize("value", ["true", "TRUE", "1"])
def test_missing_fails_in_ci(env, value):
    env.setenv("CI", value)
    res, msg = outcome(lambda: harness.missing("no frob"))
    assert res == "failed" and "no frob" in msg and "CI=true" in msg


def test_ci_false_is_not_ci(env):
    env.setenv("CI", "false")
    assert outcome(lambda: harness.missing("no frob"))[0] == "skipped"


def test_documented_opt_out_skips_in_ci(env):
    env.setenv("CI", "true")
    env.setenv("TG_TEST_OPT_OUT", "1")
    res, msg = outcome(lambda: harness.missing("no frob",
                                               opt_out="TG_TEST_OPT_OUT"))
    assert res == "skipped" and "TG_TEST_OPT_OUT" in msg
    # The opt-out named but not set: a failure.
    env.delenv("TG_TEST_OPT_OUT")
    assert outcome(lambda: harness.missing(
        "no frob", opt_out="TG_TEST_OPT_OUT"))[0] == "failed"


class _Item:
    def __init__(self, *marks):
        self.marks = [m.mark for m in marks]

    def iter_markers(self, name):
        return [m for m in self.marks if m.name == name]


def test_needs_mark_through_the_setup_hook(env):
    def setup(*marks):
        return outcome(lambda: conftest.pytest_runtest_setup(_Item(*marks)))

    assert setup(harness.needs(None))[0] == "ran"
    assert setup(harness.needs("no frob")) == ("skipped", "no frob")
    env.setenv("CI", "true")
    assert setup(harness.needs(None))[0] == "ran"
    assert setup(harness.needs("no frob"))[0] == "failed"
    env.setenv("TG_TEST_OPT_OUT", "yes")
    assert setup(harness.needs("no frob",
                               opt_out="TG_TEST_OPT_OUT"))[0] == "skipped"
