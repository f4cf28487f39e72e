"""reasoning_effort through nginx, the engine and the sim, with the OpenAI SDK.

The sim replays an invented trace whose thinking states its answer (13)
at once and then goes on for about 600 tokens.  "low" (budget=64 here)
cuts the thinking at the budget and continues it with the end of
thinking and a guide: the client's stream stays one stream, usage says
reasoning tokens within the budget, and the answer arrives.  "high" runs
the default mapping's strategy (self_consistency); an unknown level is a
400 naming the field; a backend with native_effort=on gets the field and
no budget.  A level whose strategy= or options its plugin refuses refuses
the whole configuration when a worker registers, naming the directive and
where it was read.
"""
import types

import openai
import pytest

import harness
from test_plugins import (B, assert_refused, refusal_line, sim_stats,
                          wait_no_open_streams)

PROBLEM = harness.EFFORT_PROBLEM
OUTPUT = harness.EFFORT_OUTPUT
LOW = 64
SLACK = 4           # tokens of the chunk that crossed the budget

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_effort low budget=%d;
            thinkgate_effort minimal budget=16 strategy=passthrough;
        }
        location /native/v1/ {
            thinkgate_pass natives;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
""" % LOW


@pytest.fixture(scope="module")
def gw():
    sim = harness.start_effort_sim()
    http = ("    thinkgate_backend r0 %s max_inflight=1024;\n"
            "    thinkgate_pool reasoners r0;\n"
            "    thinkgate_backend n0 %s native_effort=on;\n"
            "    thinkgate_pool natives n0;\n" % (sim.url, sim.url))
    g = types.SimpleNamespace(sim=sim, procs=[sim])
    try:
        harness.start_engine_nginx(g, http, SERVER)
        base = "http://127.0.0.1:%d" % g.nginx.port
        g.client = openai.OpenAI(base_url=base + "/v1", api_key="k",
                                 max_retries=0, timeout=60)
        g.native = openai.OpenAI(base_url=base + "/native/v1",
                                 api_key="k", max_retries=0, timeout=60)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()


def ask(client, **kw):
    return client.chat.completions.create(
        model="Effort", seed=0, messages=[{"role": "user",
                                           "content": PROBLEM}], **kw)


def test_low_cuts_the_thinking_at_the_budget_and_answers(gw):
    r = ask(gw.client, reasoning_effort="low")
    u = r.usage
    tg = r.model_extra["thinkgate"]
    msg = r.choices[0].message
    assert r.choices[0].finish_reason == "stop"
    assert "13" in (msg.content or ""), msg
    assert LOW <= u.completion_tokens_details.reasoning_tokens <= LOW + SLACK
    assert u.completion_tokens > u.completion_tokens_details.reasoning_tokens
    assert u.total_tokens == u.prompt_tokens + u.completion_tokens
    assert tg["effort"] == "low" and tg["thinking_budget"] == LOW, tg
    assert len(tg["budget_cuts"]) == 1, tg
    assert tg["budget_cuts"][0]["tokens"] == \
        u.completion_tokens_details.reasoning_tokens, tg
    # One trace as the plugin saw it, restarted once behind its back.
    assert tg["traces_started"] == 1 and tg["strategy"] == "passthrough"
    assert OUTPUT.startswith(msg.model_extra["reasoning_content"])
    wait_no_open_streams(gw)


def test_low_streamed_is_one_valid_stream(gw):
    before = sim_stats(gw)
    stream = ask(gw.client, reasoning_effort="low", stream=True,
                 stream_options={"include_usage": True})
    chunks = list(stream)
    thinking = "".join(getattr(c.choices[0].delta, "reasoning_content", "")
                       or "" for c in chunks if c.choices)
    answer = "".join(c.choices[0].delta.content or "" for c in chunks
                     if c.choices)
    finishes = [c.choices[0].finish_reason for c in chunks
                if c.choices and c.choices[0].finish_reason]
    assert len({c.id for c in chunks}) == 1
    assert finishes == ["stop"], finishes
    assert "13" in answer, answer
    assert OUTPUT.startswith(thinking)
    last = chunks[-1]
    assert last.usage.completion_tokens_details.reasoning_tokens <= \
        LOW + SLACK
    assert last.model_extra["thinkgate"]["budget_cuts"], last.model_extra
    wait_no_open_streams(gw)
    after = sim_stats(gw)
    assert after["cancelled_streams"] - before["cancelled_streams"] == 1
    assert after["requests"] - before["requests"] == 2


def test_minimal_uses_its_own_rule(gw):
    r = ask(gw.client, reasoning_effort="minimal")
    tg = r.model_extra["thinkgate"]
    assert tg["thinking_budget"] == 16, tg
    assert r.usage.completion_tokens_details.reasoning_tokens <= 16 + SLACK
    # Cut before the thinking stated 13: the sim's continuation says it
    # has no answer yet, but an answer (content) still arrives.
    assert r.choices[0].message.content, r.choices[0].message


def test_max_completion_tokens_counts_thinking_and_answer(gw):
    r = ask(gw.client, reasoning_effort="low", max_completion_tokens=LOW + 8)
    assert r.usage.completion_tokens <= LOW + 8, r.usage


def test_high_runs_the_configured_strategy(gw):
    r = ask(gw.client, reasoning_effort="high")
    tg = r.model_extra["thinkgate"]
    assert tg["effort"] == "high" and tg["thinking_budget"] is None, tg
    assert tg["strategy"] == "self_consistency", tg
    assert tg["budget_cuts"] == [], tg
    assert "13" in r.choices[0].message.content


def test_no_effort_is_as_before(gw):
    r = ask(gw.client)
    tg = r.model_extra["thinkgate"]
    assert "effort" not in tg and tg["strategy"] == "passthrough", tg
    assert r.usage.completion_tokens > 300, r.usage


@pytest.mark.parametrize("bad", ["extreme", "", 3])
def test_invalid_effort_is_a_400_naming_the_field(gw, bad):
    with pytest.raises(openai.BadRequestError) as e:
        ask(gw.client, reasoning_effort=bad)
    assert e.value.body["param"] == "reasoning_effort", e.value.body
    assert "reasoning_effort" in e.value.body["message"]


def test_native_effort_passes_the_field_through(gw):
    r = ask(gw.native, reasoning_effort="low")
    tg = r.model_extra["thinkgate"]
    assert tg["effort"] == "low" and tg["effort_native"] is True, tg
    assert "budget_cuts" not in tg, tg
    # The sim ignores the field: the whole thinking comes back.
    assert r.usage.completion_tokens > 300, r.usage


# A thinkgate_effort level's strategy= and options are checked against
# the plugin's option table when a worker registers, as thinkgate_strategy
# is: a bad one refuses the configuration (every location then answers
# 503 with the reason) instead of a 500 on each request of that level.
BAD_LEVELS = [
    ("high", "budget=none strategy=no_such_plugin", "no_such_plugin"),
    ("low", "budget=64 strategy=ffs nn=3", "unknown option 'nn'"),
    ("medium", "budget=128 strategy=ffs n=0", "'n'"),
    ("minimal", "budget=16 strategy=ffs reasoning=maybe", "'reasoning'"),
]


@pytest.mark.parametrize("level,rule,why", BAD_LEVELS,
                         ids=["unknown_strategy", "unknown_option",
                              "out_of_bounds", "wrong_type"])
def test_level_with_bad_strategy_refused_at_registration(level, rule, why):
    server = """
        location /good/v1/ { thinkgate_pass reasoners;
                             thinkgate_effort high budget=none
                                              strategy=ffs n=2; }
        location /bad/v1/ {
            thinkgate_pass reasoners;
            thinkgate_effort %s %s;
        }
""" % (level, rule)
    g = harness.Gateway(server=server)
    try:
        line = refusal_line(g)
        text = rule.split("strategy=", 1)[1]
        with open(g.nginx.conf) as f:
            lineno = next(i for i, ln in enumerate(f, 1)
                          if "thinkgate_effort %s %s;" % (level, rule) in ln)
        assert 'thinkgate_effort %s "%s"' % (level, text) in line, line
        assert "(location /bad/v1/ at %s:%d)" % (g.nginx.conf, lineno) \
            in line, line
        assert why in line, line
        assert_refused(g, why)
    finally:
        g.close()
