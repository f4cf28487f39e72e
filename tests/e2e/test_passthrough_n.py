"""A client's n through passthrough: n live traces, one per choice, answered
the way vLLM and OpenAI answer n (choices indexed 0..n-1, a finish chunk
per choice, one usage for all of them), through a real nginx, engine and
simulator with the official OpenAI client.  Seeded requests make each
choice comparable with an n=1 request: choice k is the trace seeded with
seed + k."""
import collections
import http.client
import json

import openai
import pytest

import harness

SERVER = """
        location /v1/ {
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""

MESSAGES = [{"role": "user", "content": "What is 17 + 25?"}]
PROMPT = "What is 2 + 3?"
SEED = 40


@pytest.fixture(scope="module")
def gw():
    g = harness.Gateway(sim_args=["--step-ms", "1", "--step-ms-per-seq", "0"],
                        server=SERVER)
    yield g
    g.close()


def client(gw):
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="test-key",
                         max_retries=0, timeout=30)


def chat(gw, n, seed=SEED, **kw):
    return client(gw).chat.completions.create(
        model="thinkgate-sim", messages=MESSAGES, max_tokens=48, seed=seed,
        n=n, **kw)


def text_of(choice):
    m = choice.message
    return (m.content or "", (m.model_extra or {}).get("reasoning_content")
            or "")


def singles(gw, n):
    """The n=1 answers seeded like choice 0..n-1 of an n request."""
    return [chat(gw, 1, seed=SEED + k) for k in range(n)]


def test_n1_unchanged(gw):
    r = chat(gw, 1)
    assert len(r.choices) == 1 and r.choices[0].index == 0
    assert r.choices[0].finish_reason in ("stop", "length")
    assert any(text_of(r.choices[0]))
    tg = r.model_extra["thinkgate"]
    assert tg["strategy"] == "passthrough" and tg["traces_started"] == 1
    assert tg["winner"] == 0
    assert r.usage.completion_tokens == tg["tokens"] > 0
    assert r.usage.prompt_tokens > 0


def test_chat_n3_non_streamed(gw):
    r = chat(gw, 3)
    assert r.object == "chat.completion"
    assert [c.index for c in r.choices] == [0, 1, 2]
    for c in r.choices:
        assert c.finish_reason in ("stop", "length")
        assert any(text_of(c))
    tg = r.model_extra["thinkgate"]
    assert tg["traces_started"] == 3 and tg["traces_cancelled"] == 0

    # Choice k is the trace seeded seed + k; usage sums the completions
    # and reads the prompt once.
    ones = singles(gw, 3)
    assert [text_of(c) for c in r.choices] == \
        [text_of(o.choices[0]) for o in ones]
    assert [c.finish_reason for c in r.choices] == \
        [o.choices[0].finish_reason for o in ones]
    assert r.usage.completion_tokens == \
        sum(o.usage.completion_tokens for o in ones) == tg["tokens"]
    assert r.usage.prompt_tokens == ones[0].usage.prompt_tokens
    assert r.usage.total_tokens == \
        r.usage.prompt_tokens + r.usage.completion_tokens


def test_chat_n3_streamed(gw):
    stream = chat(gw, 3, stream=True,
                  stream_options={"include_usage": True})
    content = collections.defaultdict(str)
    reasoning = collections.defaultdict(str)
    finishes = collections.defaultdict(list)
    roles = collections.Counter()
    order, usage, after_usage = [], None, 0
    for chunk in stream:
        if usage is not None:
            after_usage += 1
        if chunk.usage:
            assert chunk.choices == []
            usage = chunk.usage
            tg = chunk.model_extra["thinkgate"]
        for c in chunk.choices:
            order.append(c.index)
            assert not finishes[c.index], "text after the choice's finish"
            if c.delta.role:
                roles[c.index] += 1
            content[c.index] += c.delta.content or ""
            reasoning[c.index] += \
                (c.delta.model_extra or {}).get("reasoning_content") or ""
            if c.finish_reason:
                finishes[c.index].append(c.finish_reason)
    assert sorted(set(order)) == [0, 1, 2]
    assert roles == {0: 1, 1: 1, 2: 1}
    assert all(len(finishes[k]) == 1 for k in range(3)), finishes
    assert usage is not None and after_usage == 0

    # The same three answers as the non-streamed request.
    r = chat(gw, 3)
    assert [(content[k], reasoning[k]) for k in range(3)] == \
        [text_of(c) for c in r.choices]
    assert [finishes[k][0] for k in range(3)] == \
        [c.finish_reason for c in r.choices]
    assert usage.completion_tokens == r.usage.completion_tokens
    assert usage.prompt_tokens == r.usage.prompt_tokens
    assert tg["traces_started"] == 3


def test_completions_n3_both_ways(gw):
    c = client(gw)
    kw = dict(model="thinkgate-sim", prompt=PROMPT, max_tokens=24,
              seed=SEED)
    r = c.completions.create(n=3, **kw)
    assert r.object == "text_completion"
    assert [ch.index for ch in r.choices] == [0, 1, 2]
    assert all(ch.text and ch.finish_reason for ch in r.choices)
    ones = [c.completions.create(n=1, **dict(kw, seed=SEED + k))
            for k in range(3)]
    assert [ch.text for ch in r.choices] == [o.choices[0].text for o in ones]
    assert r.usage.completion_tokens == \
        sum(o.usage.completion_tokens for o in ones)

    text = collections.defaultdict(str)
    finishes = collections.Counter()
    usage = None
    for chunk in c.completions.create(n=3, stream=True,
                                      stream_options={"include_usage":
                                                      True}, **kw):
        if chunk.usage:
            usage = chunk.usage
        for ch in chunk.choices:
            text[ch.index] += ch.text or ""
            finishes[ch.index] += ch.finish_reason is not None
    assert [text[k] for k in range(3)] == [ch.text for ch in r.choices]
    assert finishes == {0: 1, 1: 1, 2: 1}
    assert usage.completion_tokens == r.usage.completion_tokens


def test_winner_strategy_answers_one_choice(gw):
    """n is passthrough's: a strategy that picks a winner answers one."""
    conn = http.client.HTTPConnection("127.0.0.1", gw.nginx.port, timeout=30)
    conn.request("POST", "/v1/chat/completions", body=json.dumps({
        "model": "thinkgate-sim", "messages": MESSAGES, "max_tokens": 48,
        "seed": SEED, "n": 3, "thinkgate": {"strategy": "ffs", "n": 2}}),
        headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 200, doc
    assert len(doc["choices"]) == 1 and doc["choices"][0]["index"] == 0
    assert doc["thinkgate"]["strategy"] == "ffs"


def test_gateway_serves_after(gw):
    """Nothing of the n requests lingers: a plain request still works."""
    r = chat(gw, 1, seed=None)
    assert len(r.choices) == 1 and any(text_of(r.choices[0]))
