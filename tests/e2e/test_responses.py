"""/v1/responses through nginx, the engine, the sim and Redis, with the
official OpenAI SDK.

The gateway translates a Responses request into chat completions for the
backend and renders the answer as a response object or the Responses
stream events; stored responses (the default) live in Redis, bound to the
API key that made them, so that previous_response_id chains turns.  The
sim replays the invented trace of test_effort.py
(harness.start_effort_sim: thinking that states 13 at once, then about
600 tokens more), so that reasoning.effort "low" has thinking to cut.
"""
import json
import time
import types

import openai
import pytest

import harness
from test_plugins import sim_stats, wait_no_open_streams

pytestmark = harness.needs_redis()

PROBLEM = harness.EFFORT_PROBLEM
OUTPUT = harness.EFFORT_OUTPUT
LOW = 64
SLACK = 4
KEY_PREFIX = "tgresp:"

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
            thinkgate_effort low budget=%d;
        }
        location /broken/v1/ {
            thinkgate_pass broken;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
""" % LOW


@pytest.fixture(scope="module")
def gw():
    g = types.SimpleNamespace(procs=[])
    try:
        g.redis = harness.start_redis()
        g.procs.append(g.redis)
        g.sim = harness.start_effort_sim()
        g.procs.append(g.sim)
        g.bad = harness.start_bad_backend("500")
        http = ("    thinkgate_backend r0 %s max_inflight=1024;\n"
                "    thinkgate_pool reasoners r0;\n"
                "    thinkgate_backend e500 http://127.0.0.1:%d;\n"
                "    thinkgate_pool broken e500;\n"
                "    thinkgate_redis %s prefix=%s connect_timeout=500ms "
                "timeout=300ms;\n" % (g.sim.url, g.bad.server_address[1],
                                       g.redis.addr, KEY_PREFIX))
        harness.start_engine_nginx(g, http, SERVER)
        g.base = "http://127.0.0.1:%d" % g.nginx.port
        g.client = client(g, "key-one")
        g.other = client(g, "key-two")
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()
        if getattr(g, "bad", None) is not None:
            g.bad.shutdown()


def client(g, key):
    return openai.OpenAI(base_url=g.base + "/v1", api_key=key,
                         max_retries=0, timeout=60)


def create(g, c=None, **kw):
    kw.setdefault("input", PROBLEM)
    return (c or g.client).responses.create(model="Effort", **kw)


def reasoning_text(resp):
    items = [o for o in resp.output if o.type == "reasoning"]
    if not items:
        return ""
    item = items[0]
    return "".join(p.text for p in (item.content or [])) + \
        "".join(p.text for p in item.summary)


# -- create, not streamed and streamed ---------------------------------------

def test_create_plain(gw):
    r = create(gw)
    tg = r.model_extra["thinkgate"]
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.status == "completed" and r.error is None
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert "13" in r.output_text, r.output_text
    assert OUTPUT.startswith(reasoning_text(r))
    u = r.usage
    assert u.input_tokens > 0 and u.output_tokens > 300, u
    assert u.total_tokens == u.input_tokens + u.output_tokens
    assert u.output_tokens_details.reasoning_tokens >= 0
    assert tg["strategy"] == "passthrough" and tg["traces_started"] == 1
    assert tg["response_stored"] is True, tg
    assert r.store is True and r.previous_response_id is None
    wait_no_open_streams(gw)


def test_create_streamed_every_event_parses(gw):
    events = list(create(gw, stream=True))
    types_ = [e.type for e in events]
    assert types_[:2] == ["response.created", "response.in_progress"]
    assert types_[-1] == "response.completed", types_[-5:]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # Every event became its own SDK class, not a generic model.
    assert all(type(e).__name__.startswith("Response") for e in events), \
        {type(e).__name__ for e in events}
    for t in ("response.output_item.added", "response.content_part.added",
              "response.output_text.delta", "response.output_text.done",
              "response.content_part.done", "response.output_item.done",
              "response.reasoning_text.delta"):
        assert t in types_, (t, sorted(set(types_)))
    final = events[-1].response
    text = "".join(e.delta for e in events
                   if e.type == "response.output_text.delta")
    thought = "".join(e.delta for e in events
                      if e.type == "response.reasoning_text.delta")
    assert text == final.output_text and "13" in text
    assert thought == reasoning_text(final) and OUTPUT.startswith(thought)
    assert final.status == "completed"
    assert final.usage.output_tokens > 300
    assert final.model_extra["thinkgate"]["strategy"] == "passthrough"
    assert len({e.response.id for e in events
                if e.type in ("response.created", "response.in_progress",
                              "response.completed")}) == 1
    wait_no_open_streams(gw)


def test_client_leaving_mid_stream_cancels_its_traces(gw):
    # The trace thinks for about 600 tokens: it is still running when
    # the client leaves after its first reasoning delta.
    before = sim_stats(gw)
    stream = create(gw, stream=True)
    for ev in stream:
        if ev.type == "response.reasoning_text.delta":
            break
    stream.close()
    wait_no_open_streams(gw)
    after = sim_stats(gw)
    assert after["cancelled_streams"] - before["cancelled_streams"] >= 1
    # The gateway goes on serving.
    assert create(gw).status == "completed"


def test_stream_helper_accumulates_the_same_response(gw):
    # responses.stream() checks the events' order and indexes as it
    # builds the response from them.
    with gw.client.responses.stream(model="Effort", input=PROBLEM) as s:
        for _ in s:
            pass
        final = s.get_final_response()
    assert "13" in final.output_text
    assert final.output[0].type == "reasoning"


def test_input_items_and_instructions(gw):
    r = create(gw, instructions="Answer with a number.",
               input=[{"type": "message", "role": "developer",
                       "content": "Be brief."},
                      {"role": "user", "content": [
                          {"type": "input_text", "text": PROBLEM}]}])
    assert r.status == "completed" and "13" in r.output_text
    assert r.instructions == "Answer with a number."


def test_reasoning_summary_carries_the_reasoning(gw):
    r = create(gw, reasoning={"summary": "auto"})
    item = r.output[0]
    assert item.type == "reasoning" and item.summary, item
    assert OUTPUT.startswith(item.summary[0].text)
    events = list(create(gw, reasoning={"summary": "auto"}, stream=True))
    kinds = {e.type for e in events}
    assert "response.reasoning_summary_text.delta" in kinds, kinds
    assert "response.reasoning_summary_part.done" in kinds, kinds


def test_max_output_tokens_is_incomplete(gw):
    r = create(gw, max_output_tokens=16)
    assert r.status == "incomplete", r.status
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.usage.output_tokens <= 16
    events = list(create(gw, max_output_tokens=16, stream=True))
    assert events[-1].type == "response.incomplete"
    wait_no_open_streams(gw)


# -- effort and strategies -----------------------------------------------------

def test_effort_low_cuts_the_thinking(gw):
    r = create(gw, reasoning={"effort": "low"})
    tg = r.model_extra["thinkgate"]
    assert tg["effort"] == "low" and tg["thinking_budget"] == LOW, tg
    assert LOW <= r.usage.output_tokens_details.reasoning_tokens \
        <= LOW + SLACK, r.usage
    assert "13" in r.output_text
    assert r.reasoning.effort == "low"
    wait_no_open_streams(gw)


def test_effort_low_streamed(gw):
    events = list(create(gw, reasoning={"effort": "low"}, stream=True))
    final = events[-1].response
    assert final.status == "completed"
    assert final.usage.output_tokens_details.reasoning_tokens <= LOW + SLACK
    assert "13" in final.output_text
    assert final.model_extra["thinkgate"]["budget_cuts"]
    wait_no_open_streams(gw)


def test_effort_high_runs_the_configured_strategy(gw):
    r = create(gw, reasoning={"effort": "high"})
    tg = r.model_extra["thinkgate"]
    assert tg["effort"] == "high" and tg["strategy"] == "self_consistency"
    assert tg["traces_started"] > 1, tg
    assert "13" in r.output_text


# symbolic_moe needs skill profiles in the engine's environment, under
# either API (test_symbolic_moe.py); every other strategy runs here with
# its defaults.
N_OPT = {"ffs": 3, "self_consistency": 3}
ONE_TRACE = ("passthrough", "trimr")


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("strategy", ["passthrough", "ffs",
                                      "self_consistency", "deepprune",
                                      "trimr", "auto"])
def test_every_strategy_answers_under_responses(gw, strategy, stream):
    extra = {"thinkgate": {"strategy": strategy}}
    if strategy in N_OPT:
        extra["thinkgate"]["n"] = N_OPT[strategy]
    r = create(gw, stream=stream, extra_body=extra)
    if stream:
        events = list(r)
        assert events[-1].type == "response.completed"
        assert [e.sequence_number for e in events] == \
            list(range(len(events)))
        r = events[-1].response
    tg = r.model_extra["thinkgate"]
    assert tg["strategy"] == strategy, tg
    if strategy in N_OPT:
        assert tg["traces_started"] == N_OPT[strategy], tg
    elif strategy in ONE_TRACE:
        assert tg["traces_started"] == 1, tg
    else:
        assert tg["traces_started"] > 1, tg
    assert "13" in r.output_text, r.output_text
    assert r.usage.output_tokens > 0
    wait_no_open_streams(gw)


# -- stored responses, chains, keys ----------------------------------------------

def test_previous_response_id_chains_two_turns(gw):
    r1 = create(gw, instructions="Count quibs.")
    # The sim answers the problem it recorded: the second turn asks it
    # again, on top of the first.
    r2 = create(gw, previous_response_id=r1.id)
    assert r2.status == "completed" and r2.previous_response_id == r1.id
    assert r2.model_extra["thinkgate"]["response_stored"] is True
    # The stored conversation: both turns, answers without thinking, and
    # no instructions (they are the request's own).
    doc = json.loads(harness.redis_cli(gw.redis.port, "GET",
                                       KEY_PREFIX + "resp:" + r2.id))
    msgs = doc["messages"]
    assert [m["role"] for m in msgs] == ["user", "assistant", "user",
                                         "assistant"], msgs
    assert msgs[0]["content"] == msgs[2]["content"] == PROBLEM
    assert msgs[1]["content"] == r1.output_text
    assert msgs[3]["content"] == r2.output_text
    # A third turn streamed on the chain.
    events = list(create(gw, previous_response_id=r2.id, stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.previous_response_id == r2.id


def test_retrieve_returns_the_stored_response(gw):
    r = create(gw, metadata={"run": "x"})
    got = gw.client.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    assert got.usage.output_tokens == r.usage.output_tokens
    assert got.metadata == {"run": "x"}


def test_another_key_gets_404(gw):
    r = create(gw)
    with pytest.raises(openai.NotFoundError):
        gw.other.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as e:
        create(gw, gw.other, previous_response_id=r.id)
    assert e.value.body["param"] == "previous_response_id", e.value.body
    # Its owner still can.
    assert create(gw, previous_response_id=r.id).status \
        == "completed"


def test_a_key_without_bearer_is_another_owner(gw):
    """"Authorization: key-one" is not "Bearer key-one" (issue 14, 8)."""
    r = create(gw)
    bare = openai.OpenAI(base_url=gw.base + "/v1", api_key="unused",
                         max_retries=0, timeout=60,
                         default_headers={"Authorization": "key-one"})
    with pytest.raises(openai.NotFoundError):
        bare.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError):
        bare.responses.create(model="Effort", input=PROBLEM,
                              previous_response_id=r.id)
    assert gw.client.responses.retrieve(r.id).id == r.id


def test_delete_is_the_owners_only(gw):
    r = create(gw)
    with pytest.raises(openai.NotFoundError):
        gw.other.responses.delete(r.id)
    assert gw.client.responses.retrieve(r.id).id == r.id
    gw.client.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError):
        gw.client.responses.retrieve(r.id)
    with pytest.raises(openai.NotFoundError) as e:
        create(gw, previous_response_id=r.id)
    assert e.value.body["param"] == "previous_response_id"
    # DELETE means nothing elsewhere.
    with pytest.raises(openai.APIStatusError) as e:
        gw.client.delete("/chat/completions", cast_to=object)
    assert e.value.status_code == 405


def test_unknown_id_is_404(gw):
    with pytest.raises(openai.NotFoundError):
        gw.client.responses.retrieve("resp_doesnotexist")
    with pytest.raises(openai.NotFoundError) as e:
        create(gw, previous_response_id="resp_doesnotexist")
    assert e.value.body["param"] == "previous_response_id", e.value.body


def test_store_false_is_not_stored(gw):
    r = create(gw, store=False)
    assert r.store is False
    assert "response_stored" not in r.model_extra["thinkgate"]
    with pytest.raises(openai.NotFoundError):
        gw.client.responses.retrieve(r.id)


# -- what is not supported says so -------------------------------------------------

@pytest.mark.parametrize("kw, param", [
    ({"tools": [{"type": "function", "name": "f", "parameters": {}}]},
     "tools"),
    ({"tool_choice": "required"}, "tool_choice"),
    ({"input": [{"role": "user", "content": [
        {"type": "input_image", "image_url": "http://x/y.png"}]}]},
     "input[0].content[0]"),
    ({"input": [{"type": "function_call_output", "call_id": "c",
                 "output": "1"}]}, "input[0]"),
    ({"text": {"format": {"type": "json_object"}}}, "text"),
    ({"background": True}, "background"),
    ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
    ({"extra_body": {"frobnicate": 1}}, "frobnicate"),
    ({"input": 3}, "input"),
])
def test_unsupported_is_a_clear_400(gw, kw, param):
    with pytest.raises(openai.BadRequestError) as e:
        create(gw, **kw)
    assert e.value.body["param"] == param, e.value.body
    assert e.value.body["message"], e.value.body


@pytest.mark.parametrize("stream", [False, True])
def test_a_failing_backend_is_a_502_with_its_message(gw, stream):
    broken = openai.OpenAI(base_url=gw.base + "/broken/v1", api_key="k",
                           max_retries=0, timeout=30)
    with pytest.raises(openai.APIStatusError) as e:
        r = broken.responses.create(model="Effort", input=PROBLEM,
                                    stream=stream)
        if stream:
            list(r)
    assert e.value.status_code == 502
    assert "CUDA OOM" in e.value.body["message"], e.value.body


def test_sessions_do_not_apply(gw):
    with pytest.raises(openai.BadRequestError) as e:
        create(gw, extra_body={"thinkgate": {"session": "s1"}})
    assert "previous_response_id" in e.value.body["message"]


# -- Redis away ----------------------------------------------------------------------

def status(g):
    c = client(g, "k")
    return c.get(g.base + "/thinkgate/status", cast_to=object)


def wait_redis(g, connected, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status(g)["redis"]["connected"] is connected:
            return
        time.sleep(0.1)
    raise AssertionError("redis connected stayed %s" % (not connected))


def test_redis_down_503_for_chained_turns_only(gw):
    r1 = create(gw)
    gw.redis.kill()
    try:
        wait_redis(gw, False)
        # A turn that chains nothing still works, unstored.
        r = create(gw)
        assert r.status == "completed" and "13" in r.output_text
        tg = r.model_extra["thinkgate"]
        assert tg["response_stored"] is False and \
            tg["response_store_error"], tg
        events = list(create(gw, stream=True))
        assert events[-1].type == "response.completed"
        # A chained turn, and GET, need the store: 503, never a turn
        # without its history.
        with pytest.raises(openai.InternalServerError) as e:
            create(gw, previous_response_id=r1.id)
        assert e.value.status_code == 503
        assert "response store unavailable" in e.value.body["message"]
        with pytest.raises(openai.InternalServerError) as e:
            create(gw, previous_response_id=r1.id,
                   stream=True)
        assert e.value.status_code == 503
        with pytest.raises(openai.InternalServerError) as e:
            gw.client.responses.retrieve(r1.id)
        assert e.value.status_code == 503
    finally:
        gw.redis.restart()
    wait_redis(gw, True)
    # A fresh Redis is empty: the old id is gone (404), new chains work.
    with pytest.raises(openai.NotFoundError) as e:
        create(gw, previous_response_id=r1.id)
    assert e.value.body["param"] == "previous_response_id", e.value.body
    r = create(gw)
    assert create(gw, previous_response_id=r.id).status == "completed"
    wait_no_open_streams(gw)
