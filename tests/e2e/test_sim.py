"""End-to-end tests of thinkgate-sim with the official OpenAI client.

Most tests write their own trace file (problems no other test has seen)
so they run without ../shared; the replay of every recorded trace skips
when ../shared/traces is absent (fails when CI=true: harness.missing).
"""
import glob
import gzip
import json
import os
import re
import socket
import tempfile
import time
import urllib.error
import urllib.request

import openai
import pytest

import harness
from harness import TRACES, have_traces, start_sim

GUIDE = "\n\n**Final Answer**\n"


def post(url, body, raw=False):
    data = body if raw else json.dumps(body).encode()
    req = urllib.request.Request(url, data, {"Content-Type":
                                             "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def stats(sim):
    with urllib.request.urlopen(sim.url + "/sim/stats", timeout=10) as r:
        return json.loads(r.read())


def client(sim):
    return openai.OpenAI(base_url=sim.url + "/v1", api_key="x",
                         max_retries=0)


def extract(text):
    """The rule of sim/README.md, written again independently."""
    best = None
    for m in re.finditer(r"\\boxed\{", text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0 and i - 1 > m.end():
            best = text[m.end():i - 1]
    if best is not None:
        return best
    for m in reversed(list(re.finditer(r"(?i)answer is", text))):
        rest = text[m.end():].lstrip(" :$*")
        if rest.startswith("\\(") or rest.startswith("\\["):
            rest = rest[2:]
        rest = rest.lstrip(" ")
        x = re.match(r"[^\s$,;*]*", rest).group(0)
        x = re.split(r"\\[)\]]", x)[0].rstrip(".!?")
        if x and not x.startswith("\\boxed") \
                and not re.fullmatch(r"[A-Za-z]{2,}", x):
            return x
    return None


def write_traces(path, rows):
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


def own_rows():
    """Eight samples of a made-up problem, lengths 8..71 words."""
    rows = []
    for s in range(8):
        words = 8 * (8 - s) + (s % 3)
        think = " ".join("step%d" % i for i in range(words))
        out = "%s so \\boxed{%d} maybe.\n</think>\n\nFinal: \\boxed{%d}" % (
            think, s, 100 + s)
        rows.append({"model": "Own", "bench": "unit", "problem_id": "0",
                     "sample_id": s,
                     "problem": "Zorblax has 3 flurbs.  How many now?",
                     "answer": 1, "pred": 100 + s,
                     "completion_tokens": words + 20,
                     "finish_reason": "STOP" if s else "CUTOFF",
                     "output": out})
    rows.append(dict(rows[0], problem="A problem with no tag", sample_id=0,
                     output="thinking that never ends " * 5,
                     completion_tokens=30))
    return rows


@pytest.fixture
def own_sim():
    d = tempfile.mkdtemp(prefix="tg-sim-traces-")
    path = os.path.join(d, "own.jsonl.gz")
    write_traces(path, own_rows())
    sim = start_sim("--traces", path, "--speed", "0")
    yield sim
    sim.cleanup()
    os.unlink(path)
    os.rmdir(d)


@pytest.fixture
def synth_sim():
    sim = start_sim("--speed", "0", "--seed", "5")
    yield sim
    sim.cleanup()


def test_help_documents_every_flag():
    import subprocess
    from harness import SIM
    out = subprocess.run([SIM, "--help"],
                         capture_output=True, text=True, check=True).stdout
    for flag in ("--listen", "--traces", "--think-inline",
                 "--tokens-per-step", "--step-ms", "--step-ms-per-seq",
                 "--prefill-ms-per-1k", "--max-concurrency", "--max-queue",
                 "--speed", "--prefix-cache-blocks", "--seed",
                 "--error-rate", "--model", "--converge"):
        assert flag in out


def test_continuous_usage_stats(own_sim):
    """vLLM's stream_options.continuous_usage_stats: every chunk carries
    the usage of its choice so far, rising to the recorded count; without
    include_usage it is ignored, as vLLM does."""
    c = client(own_sim)
    row = own_rows()[2]
    msgs = [{"role": "user", "content": row["problem"]}]
    for kind in ("chat", "completions"):
        seen, last = 0, -1
        if kind == "chat":
            stream = c.chat.completions.create(
                model="Own", messages=msgs, seed=2, stream=True,
                stream_options={"include_usage": True,
                                "continuous_usage_stats": True})
        else:
            stream = c.completions.create(
                model="Own", prompt=row["problem"], seed=2, stream=True,
                stream_options={"include_usage": True,
                                "continuous_usage_stats": True})
        for ch in stream:
            assert ch.usage is not None
            assert ch.usage.completion_tokens >= last
            last = ch.usage.completion_tokens
            seen += 1
        assert seen > 2
        assert last == row["completion_tokens"]
    for ch in c.chat.completions.create(
            model="Own", messages=msgs, seed=2, stream=True,
            stream_options={"continuous_usage_stats": True}):
        assert ch.usage is None
    status, body = post(own_sim.url + "/v1/chat/completions", {
        "model": "Own", "messages": msgs, "stream": True,
        "stream_options": {"include_usage": True,
                           "continuous_usage_stats": "yes"}})
    assert status == 400 and b"continuous_usage_stats" in body


def test_sdk_chat_and_completions(own_sim):
    c = client(own_sim)
    row = own_rows()[3]
    msgs = [{"role": "user", "content": row["problem"]}]
    r = c.chat.completions.create(model="Own", messages=msgs, seed=3)
    m = r.choices[0].message
    assert m.model_extra["reasoning_content"] + "</think>" + m.content \
        == row["output"]
    assert r.usage.completion_tokens == row["completion_tokens"]
    assert r.usage.completion_tokens_details.reasoning_tokens > 0
    assert r.choices[0].finish_reason == "stop"

    reasoning, content, chunks, usage = "", "", 0, None
    for ch in c.chat.completions.create(
            model="Own", messages=msgs, seed=3, stream=True,
            stream_options={"include_usage": True}):
        if ch.usage is not None:
            usage = ch.usage
            assert ch.choices == []
            continue
        d = ch.choices[0].delta
        extra = (d.model_extra or {}).get("reasoning_content")
        if extra or d.content:
            chunks += 1
        reasoning += extra or ""
        content += d.content or ""
    assert reasoning + "</think>" + content == row["output"]
    assert usage.completion_tokens == row["completion_tokens"]
    # One chunk a token, less the dropped </think> token.
    assert chunks == row["completion_tokens"] - 1

    r = c.completions.create(model="Own", prompt=row["problem"], seed=3)
    assert r.choices[0].text == row["output"]
    text = "".join(ch.choices[0].text for ch in c.completions.create(
        model="Own", prompt=row["problem"], seed=3, stream=True,
        max_tokens=5) if ch.choices)
    assert text and row["output"].startswith(text)

    r = c.completions.create(model="Own", prompt=row["problem"], seed=3,
                             max_tokens=3, logprobs=2)
    lp = r.choices[0].logprobs
    assert "".join(lp.tokens) == r.choices[0].text
    assert len(lp.token_logprobs) == len(lp.top_logprobs) == 3

    r = c.chat.completions.create(model="Own", messages=msgs, seed=0)
    assert r.choices[0].finish_reason == "length"  # recorded CUTOFF
    r = c.chat.completions.create(model="Own", messages=msgs, seed=3,
                                  max_tokens=4, logprobs=True,
                                  top_logprobs=2)
    assert r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 4
    assert len(r.choices[0].logprobs.content) == 4
    r = c.chat.completions.create(model="Own", messages=msgs, seed=3,
                                  stop=["step5"])
    assert r.choices[0].message.model_extra["reasoning_content"] \
        == "step0 step1 step2 step3 step4 "
    msgs2 = [{"role": "user", "content": "A problem with no tag"}]
    r = c.chat.completions.create(model="Own", messages=msgs2)
    assert r.choices[0].message.content is None
    assert r.choices[0].message.model_extra["reasoning_content"] \
        == own_rows()[8]["output"]
    assert [m.id for m in c.models.list().data] == ["Own"]


def test_n8_lockstep_fewest_tokens_first(own_sim):
    c = client(own_sim)
    rows = own_rows()[:8]
    order = []
    for ch in c.chat.completions.create(
            model="Own", n=8, seed=0, stream=True,
            messages=[{"role": "user", "content": rows[0]["problem"]}]):
        for choice in ch.choices:
            if choice.finish_reason is not None:
                order.append(choice.index)
    want = sorted(range(8), key=lambda i: (rows[i]["completion_tokens"], i))
    assert order == want


def test_seedless_requests_take_samples_in_turn(own_sim):
    c = client(own_sim)
    rows = own_rows()
    msgs = [{"role": "user", "content": rows[0]["problem"]}]
    got = [c.chat.completions.create(model="Own", messages=msgs)
           .usage.completion_tokens for _ in range(3)]
    assert got == [r["completion_tokens"] for r in rows[:3]]


def test_continuation_rule(own_sim):
    c = client(own_sim)
    row = own_rows()[2]
    cut = row["output"].index(" so \\boxed")
    for prefix, want in ((row["output"][:cut + 20], "\\boxed{2}"),
                         (row["output"][:cut], None)):
        r = c.chat.completions.create(
            model="Own", messages=[
                {"role": "user", "content": row["problem"]},
                {"role": "assistant", "content": prefix + GUIDE}],
            extra_body={"continue_final_message": True,
                        "add_generation_prompt": False})
        text = r.choices[0].message.content
        if want:
            assert text == want
        else:
            assert extract(text) is None
        prompt = "<|user|>" + row["problem"] + "<|assistant|><think>\n" \
            + prefix + GUIDE
        r = c.completions.create(model="Own", prompt=prompt)
        assert r.choices[0].text == text
    # The prefix decides, never the trace's own final answer (\boxed{102}).
    full = row["output"][:row["output"].index("</think>")]
    r = c.completions.create(model="Own", prompt=row["problem"] + full)
    assert r.choices[0].text == "\\boxed{2}"



NOT_REACHED = "I have not reached a final answer yet."
PROBE = "\n\n... **Final Answer**\n\\boxed{"


def continue_both(sim, problem, text, **kw):
    """The reply to text continued as chat (continue_final_message) and
    as completions (bare and with template text): [(shape, text, usage,
    reasoning)]."""
    c = client(sim)
    out = []
    r = c.chat.completions.create(
        model="Own", messages=[{"role": "user", "content": problem},
                               {"role": "assistant", "content": text}],
        extra_body={"continue_final_message": True,
                    "add_generation_prompt": False}, **kw)
    m = r.choices[0].message
    out.append(("chat", m.content, r.usage,
                getattr(m, "reasoning_content", None)))
    for shape, prompt in (
            ("completions", problem + "\n" + text),
            ("completions+template", "<|im_start|>user\n" + problem
             + "\nPut the answer in \\boxed{}.<|im_end|>\n<|im_start|>"
             "assistant\n<think>\n" + text)):
        r = c.completions.create(model="Own", prompt=prompt, **kw)
        out.append((shape, r.choices[0].text, r.usage, None))
    return out


def test_continuation_never_replays(own_sim):
    """A continuation that repeats no recording from its first 32 bytes
    (shorter, whitespace changed, starting mid-trace) gets the rule on
    the client's own text, never a replay of a sample (whose answer part
    says \\boxed{102})."""
    row = own_rows()[2]
    think = row["output"][:row["output"].index("</think>")]
    box = think.index(" so \\boxed")
    shapes = {
        "short": (think[:20], None),
        "short, states an answer": ("It is \\boxed{7}.", "7"),
        "whitespace changed": (think.replace(" ", "  "), "2"),
        "whitespace changed, before the box":
            (think[:box].replace(" ", "  "), None),
        "mid-trace": (think[40:], "2"),
        "mid-trace, before the box": (think[40:box], None),
    }
    for name, (text, want) in shapes.items():
        for guide in ("", GUIDE):
            for shape, got, usage, reasoning in continue_both(
                    own_sim, row["problem"], text + guide):
                where = (name, repr(guide), shape)
                assert got == (NOT_REACHED if want is None
                               else "\\boxed{%s}" % want), where
                assert not reasoning, where
                assert usage.completion_tokens < 20, where
            # The probe's open box gets the answer and "}".
            for shape, got, usage, _ in continue_both(
                    own_sim, row["problem"], text + PROBE, max_tokens=20):
                assert got == (want or "") + "}", (name, shape)
    # Template text alone after the problem is an ordinary prompt: replay.
    c = client(own_sim)
    for tail in ("<|assistant|><think>\n", "\nPlease reason step by step."
                 "<｜Assistant｜><think>\n"):
        r = c.completions.create(model="Own", prompt=row["problem"] + tail,
                                 seed=2)
        assert r.choices[0].text == row["output"], repr(tail)
    # max_tokens caps a probe's reply too.
    r = c.completions.create(model="Own", max_tokens=1,
                             prompt=row["problem"] + think + PROBE)
    assert r.choices[0].finish_reason == "length"
    assert "2}".startswith(r.choices[0].text) and r.usage.completion_tokens \
        == 1


def converge_rows():
    """own_rows, plus a problem whose samples record no answer (pred
    NO_ANSWER) and none (no pred: the sim reads the output's)."""
    rows = own_rows()
    for sid, pred in ((0, "NO_ANSWER"), (1, None)):
        r = dict(rows[sid], problem="Glorp has 5 zits.  How many now?")
        if pred is None:
            del r["pred"]
        else:
            r["pred"] = pred
        rows.append(r)
    return rows


def test_converge():
    """--converge 0.5: a prefix that covers 60% of a sample's thinking
    answers with the recorded final answer (pred 102), one at 40% by the
    rule (nothing stated yet); probes too."""
    d = tempfile.mkdtemp(prefix="tg-sim-traces-")
    path = os.path.join(d, "own.jsonl.gz")
    write_traces(path, converge_rows())
    sim = start_sim("--traces", path, "--speed", "0", "--converge", "0.5")
    try:
        rows = converge_rows()
        row = rows[2]
        think = row["output"][:row["output"].index("</think>")]
        assert think.index("\\boxed") > 0.6 * len(think)
        for share, want in ((0.4, None), (0.6, "102")):
            text = think[:int(share * len(think))]
            for guide in (GUIDE, ""):
                for shape, got, _, _ in continue_both(
                        sim, row["problem"], text + guide, seed=2):
                    assert got == (NOT_REACHED if want is None
                                   else "\\boxed{%s}" % want), (share, shape)
            for shape, got, _, _ in continue_both(
                    sim, row["problem"], text + PROBE, max_tokens=20,
                    seed=2):
                assert got == (want or "") + "}", (share, shape)
        # No recorded answer: not reached; no pred: the output's last box.
        for r, want in ((rows[-2], None), (rows[-1], "101")):
            t = r["output"][:int(0.8 * len(r["output"]))]
            got = continue_both(sim, r["problem"], t + GUIDE,
                                seed=r["sample_id"])[0][1]
            assert got == (NOT_REACHED if want is None
                           else "\\boxed{%s}" % want)
        # A text that repeats no recording keeps the rule.
        got = continue_both(sim, row["problem"], think[40:] + GUIDE)[0][1]
        assert got == "\\boxed{2}"
    finally:
        sim.cleanup()
        os.unlink(path)
        os.rmdir(d)


def test_bad_inputs(own_sim):
    url = own_sim.url + "/v1/chat/completions"
    prob = own_rows()[0]["problem"]
    good = {"model": "Own", "messages": [{"role": "user", "content": prob}]}
    cases = [
        (b"{not json", 400), (b"[1]", 400),
        (dict(good, model=7), 400), (dict(good, model="nope"), 404),
        (dict(good, messages=[]), 400), (dict(good, messages="hi"), 400),
        (dict(good, messages=[{"role": "wizard", "content": "x"}]), 400),
        (dict(good, n=0), 400), (dict(good, n="2"), 400),
        (dict(good, max_tokens=0), 400), (dict(good, stream="yes"), 400),
        (dict(good, stop=[1]), 400), (dict(good, temperature=5), 400),
        (dict(good, top_p=0), 400), (dict(good, seed="x"), 400),
        (dict(good, top_logprobs=3), 400),
        (dict(good, continue_final_message=True), 400),
        (dict(good, messages=[{"role": "user", "content": "unknown"}]),
         404),
    ]
    for body, code in cases:
        st, data = post(url, body, raw=isinstance(body, bytes))
        assert st == code, (body, data)
        err = json.loads(data)["error"]
        assert set(err) >= {"message", "type", "param", "code"}
    st, data = post(own_sim.url + "/v1/completions",
                    {"model": "Own", "prompt": "no problem in here"})
    assert st == 404 and "no recorded trace" in json.loads(data)[
        "error"]["message"]
    st, _ = post(own_sim.url + "/v1/completions", {"model": "Own"})
    assert st == 400
    st, _ = post(own_sim.url + "/nowhere", {})
    assert st == 404
    with pytest.raises(openai.NotFoundError):
        client(own_sim).chat.completions.create(
            model="Own", messages=[{"role": "user", "content": "unknown"}])


def test_embeddings(synth_sim):
    """POST /v1/embeddings: the OpenAI shape, deterministic unit vectors
    (string or list input, optional dimensions), through the SDK too."""
    import math
    url = synth_sim.url + "/v1/embeddings"
    model = "thinkgate-sim"
    texts = ["the cat sat on the mat", "the cat sat on a mat",
             "Quantum chromodynamics of heavy quarks", "the cat sat on the mat"]
    st, data = post(url, {"model": model, "input": texts})
    assert st == 200, data
    doc = json.loads(data)
    assert doc["object"] == "list" and doc["model"] == model
    assert [d["index"] for d in doc["data"]] == [0, 1, 2, 3]
    assert all(d["object"] == "embedding" for d in doc["data"])
    vecs = [d["embedding"] for d in doc["data"]]
    assert all(len(v) == 384 for v in vecs)
    for v in vecs:
        assert abs(math.sqrt(sum(x * x for x in v)) - 1) < 1e-5

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b))
    assert vecs[0] == vecs[3]
    assert cos(vecs[0], vecs[1]) > 0.6
    assert abs(cos(vecs[0], vecs[2])) < 0.3
    u = doc["usage"]
    assert u["prompt_tokens"] == u["total_tokens"] > 0

    # A string input, fewer dimensions; the same text, the same vector.
    st, data = post(url, {"model": model, "input": texts[0],
                          "dimensions": 8})
    assert st == 200
    one = json.loads(data)["data"]
    assert len(one) == 1 and len(one[0]["embedding"]) == 8
    st, again = post(url, {"model": model, "input": [texts[0]],
                           "dimensions": 8, "encoding_format": "float"})
    assert json.loads(again)["data"][0]["embedding"] == one[0]["embedding"]

    r = client(synth_sim).embeddings.create(model=model, input=texts[:2],
                                            encoding_format="float")
    assert [len(d.embedding) for d in r.data] == [384, 384]
    assert r.data[0].embedding == pytest.approx(vecs[0], abs=1e-6)

    bad = [
        ({"model": model}, 400), ({"model": model, "input": []}, 400),
        ({"model": model, "input": [1, 2]}, 400),
        ({"model": model, "input": ["ok", ""]}, 400),
        ({"model": model, "input": 7}, 400),
        ({"model": model, "input": "x", "dimensions": 0}, 400),
        ({"model": model, "input": "x", "dimensions": "8"}, 400),
        ({"model": model, "input": "x", "encoding_format": "base64"}, 400),
        ({"input": "x"}, 400), ({"model": "nope", "input": "x"}, 404),
        (b"{not json", 400),
    ]
    for body, code in bad:
        st, data = post(url, body, raw=isinstance(body, bytes))
        assert st == code, (body, data)
        err = json.loads(data)["error"]
        assert set(err) >= {"message", "type", "param", "code"}
    req = urllib.request.Request(url)
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=10)
    assert e.value.code == 405


def test_queue_full_gets_429():
    sim = start_sim("--max-concurrency", "1", "--max-queue", "0",
                    "--step-ms", "50")
    try:
        s = socket.create_connection(("127.0.0.1", sim.port))
        body = json.dumps({"model": "thinkgate-sim", "stream": True,
                           "messages": [{"role": "user",
                                         "content": "1 2 3 4"}]})
        s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d"
                   "\r\n\r\n%s" % (len(body), body)).encode())
        s.recv(100)
        with pytest.raises(openai.RateLimitError):
            client(sim).chat.completions.create(
                model="thinkgate-sim",
                messages=[{"role": "user", "content": "hi"}])
        s.close()
    finally:
        sim.cleanup()


def test_client_close_stops_generation():
    sim = start_sim("--step-ms", "10")
    try:
        s = socket.create_connection(("127.0.0.1", sim.port))
        body = json.dumps({"model": "thinkgate-sim", "stream": True, "n": 2,
                           "messages": [{"role": "user",
                                         "content": "7 8 9 10"}]})
        s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d"
                   "\r\n\r\n%s" % (len(body), body)).encode())
        got = b""
        while got.count(b"reasoning_content") < 6:
            got += s.recv(65536)
        assert stats(sim)["open_streams"] == 2
        s.close()
        deadline = time.monotonic() + 5
        while stats(sim)["open_streams"] and time.monotonic() < deadline:
            time.sleep(0.02)
        st = stats(sim)
        assert st["open_streams"] == 0
        assert st["cancelled_streams"] == 2
        assert st["completed_streams"] == 0
        assert st["tokens_after_close"] == 0
        before = st["tokens_generated"]
        time.sleep(0.2)
        assert stats(sim)["tokens_generated"] == before
        assert before < 200  # the whole trace is several hundred tokens
        st, data = post(sim.url + "/sim/reset", {})
        st = stats(sim)
        assert st["tokens_generated"] == 0 and st["cancelled_streams"] == 0
    finally:
        sim.cleanup()


def _raw_chat(sim, stream, timeout=5):
    """One chat request on a raw socket; the socket (response unread)."""
    s = socket.create_connection(("127.0.0.1", sim.port), timeout=timeout)
    body = json.dumps({"model": "thinkgate-sim", "stream": stream,
                       "messages": [{"role": "user", "content": "7 8 9 10"}]})
    s.sendall(("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
               "Content-Type: application/json\r\nContent-Length: %d"
               "\r\n\r\n%s" % (len(body), body)).encode())
    return s


def _read_until_close(s):
    got = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return got
        got += chunk


def test_fault_injection():
    """POST /sim/fault: garbage is a 200 that is no OpenAI answer, close
    drops the connection mid-answer, hang goes silent until the client
    leaves; each takes one armed request and leaves no open stream."""
    sim = start_sim("--step-ms", "5")
    try:
        # Bad input changes nothing.
        for bad in ({"mode": "explode"}, {"mode": "hang", "count": -1},
                    {"mode": "close", "after": "3"}, [1]):
            st, data = post(sim.url + "/sim/fault", bad)
            assert st == 400, (bad, data)
            assert "error" in json.loads(data)
        assert stats(sim)["faults_armed"] == 0

        st, data = post(sim.url + "/sim/fault", {"mode": "garbage",
                                                 "count": 2})
        assert st == 200 and json.loads(data)["count"] == 2
        # A request that fails validation does not use up the fault.
        st, _ = post(sim.url + "/v1/chat/completions",
                     {"model": "thinkgate-sim"})
        assert st == 400
        st, data = post(sim.url + "/v1/chat/completions", {
            "model": "thinkgate-sim", "stream": True,
            "messages": [{"role": "user", "content": "1 2 3 4"}]})
        assert st == 200 and data == b"data: {not json\n\ndata: [DONE]\n\n"
        st, data = post(sim.url + "/v1/chat/completions", {
            "model": "thinkgate-sim",
            "messages": [{"role": "user", "content": "1 2 3 4"}]})
        assert st == 200
        with pytest.raises(ValueError):
            json.loads(data)
        # Disarmed after two: the next one is a real answer.
        st, data = post(sim.url + "/v1/chat/completions", {
            "model": "thinkgate-sim",
            "messages": [{"role": "user", "content": "1 2 3 4"}]})
        assert st == 200 and json.loads(data)["choices"][0]["message"]
        assert stats(sim)["faults"] == 2

        # close after 3 steps: headers, role chunk, 3 token chunks, EOF
        # without the terminating chunk or [DONE].
        post(sim.url + "/sim/fault", {"mode": "close", "after": 3})
        got = _read_until_close(_raw_chat(sim, True))
        assert got.startswith(b"HTTP/1.1 200")
        assert got.count(b"reasoning_content") == 3
        assert b"[DONE]" not in got and not got.endswith(b"0\r\n\r\n")
        # non-streamed: EOF with no response at all.
        post(sim.url + "/sim/fault", {"mode": "close", "after": 2})
        assert _read_until_close(_raw_chat(sim, False)) == b""
        st = stats(sim)
        assert st["open_streams"] == 0 and st["cancelled_streams"] == 2

        # hang after 2 steps: the stream stays open and silent.
        post(sim.url + "/sim/fault", {"mode": "hang", "after": 2})
        tokens = stats(sim)["tokens_generated"]
        s = _raw_chat(sim, True, timeout=0.5)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                assert chunk, "the sim closed a hanging request"
                got += chunk
        except socket.timeout:
            pass
        assert got.count(b"reasoning_content") == 2
        steps = stats(sim)["steps"]
        time.sleep(0.1)
        st = stats(sim)
        assert st["open_streams"] == 1 and st["steps"] > steps
        assert st["tokens_generated"] == tokens + 2
        s.close()
        deadline = time.monotonic() + 5
        while stats(sim)["open_streams"] and time.monotonic() < deadline:
            time.sleep(0.02)
        st = stats(sim)
        assert st["open_streams"] == 0 and st["cancelled_streams"] == 3
        assert st["faults"] == 5 and st["faults_armed"] == 0

        # "none" disarms what is left.
        post(sim.url + "/sim/fault", {"mode": "hang", "count": 5})
        st, data = post(sim.url + "/sim/fault", {"mode": "none"})
        assert json.loads(data) == {"mode": "none", "count": 0, "after": 0}
        st, data = post(sim.url + "/v1/chat/completions", {
            "model": "thinkgate-sim",
            "messages": [{"role": "user", "content": "1 2 3 4"}]})
        assert st == 200 and stats(sim)["faults"] == 5
    finally:
        sim.cleanup()


def test_synthetic_same_seed_same_bytes():
    outs = []
    for _ in range(2):
        sim = start_sim("--speed", "0", "--seed", "11")
        try:
            body = {"model": "thinkgate-sim", "n": 3, "seed": 4,
                    "messages": [{"role": "user", "content":
                                  "Sam has 12 apples and 3 bags of 5."}]}
            st, data = post(sim.url + "/v1/chat/completions", body)
            assert st == 200
            d = json.loads(data)
            outs.append(json.dumps([d["choices"], d["usage"]]))
        finally:
            sim.cleanup()
    assert outs[0] == outs[1]
    choices = json.loads(outs[0])[0]
    for ch in choices:
        assert "\\boxed{" in ch["message"]["content"]
        assert re.search(r"\n\n(Wait|Alternatively|Hmm),",
                         ch["message"]["reasoning_content"])


def test_think_inline_and_prefix_cache():
    sim = start_sim("--speed", "0", "--think-inline")
    try:
        c = client(sim)
        msgs = [{"role": "system", "content": "You are careful. " * 40},
                {"role": "user", "content": "Sam has 4 apples."}]
        r1 = c.chat.completions.create(model="thinkgate-sim",
                                       messages=msgs, seed=1)
        r2 = c.chat.completions.create(model="thinkgate-sim",
                                       messages=msgs, seed=1)
        text = r1.choices[0].message.content
        assert "</think>" in text
        assert r1.choices[0].message.model_extra.get(
            "reasoning_content") is None
        assert r2.choices[0].message.content == text
        assert r1.usage.prompt_tokens_details.cached_tokens == 0
        assert r2.usage.prompt_tokens_details.cached_tokens > 0
        st = stats(sim)
        assert st["prefix_cache_hits"] > 0 and st["prefix_cache_misses"] > 0
    finally:
        sim.cleanup()


def recorded():
    rows = []
    for f in sorted(glob.glob(os.path.join(TRACES, "*.jsonl.gz"))):
        with gzip.open(f, "rt") as fh:
            rows += [json.loads(line) for line in fh]
    return rows


def test_replay_every_recorded_trace():
    if not have_traces():
        harness.missing("../shared/traces is absent: no recorded traces")
    sim = start_sim("--traces", TRACES, "--speed", "0",
                    "--tokens-per-step", "64",
                    timeout=harness.TRACES_START_S)
    try:
        groups = {}
        for r in recorded():
            groups.setdefault((r["model"], r["problem"]), []).append(r)
        for (model, problem), rows in groups.items():
            rows.sort(key=lambda r: r["sample_id"])
            body = {"model": model, "n": len(rows), "seed": 0,
                    "messages": [{"role": "user", "content": problem}]}
            st, data = post(sim.url + "/v1/chat/completions", body)
            assert st == 200
            for row, ch in zip(rows, json.loads(data)["choices"]):
                m = ch["message"]
                if "</think>" in row["output"]:
                    text = (m["reasoning_content"] or "") + "</think>" + \
                        (m["content"] or "")
                else:
                    text = m["reasoning_content"]
                assert text == row["output"], (model, row["sample_id"])
                assert ch["finish_reason"] == (
                    "length" if row["finish_reason"] == "CUTOFF" else "stop")
            usage = json.loads(data)["usage"]
            assert usage["completion_tokens"] == sum(
                r["completion_tokens"] for r in rows)
        # Streamed, one token a chunk, one problem of each model.
        seen = set()
        c = client(sim)
        for (model, problem), rows in groups.items():
            if model in seen:
                continue
            seen.add(model)
            row = min(rows, key=lambda r: r["completion_tokens"])
            text, usage = "", None
            for ch in c.completions.create(
                    model=model, prompt=problem, stream=True,
                    seed=sorted(rows, key=lambda r: r["sample_id"])
                    .index(row), stream_options={"include_usage": True}):
                if ch.usage:
                    usage = ch.usage
                text += "".join(x.text for x in ch.choices)
            assert text == row["output"]
            assert abs(usage.completion_tokens - row["completion_tokens"]) \
                <= row["completion_tokens"] // 100
    finally:
        sim.cleanup()


def test_continuation_on_recorded_prefixes():
    if not have_traces():
        harness.missing("../shared/traces is absent: no recorded traces")
    sim = start_sim("--traces", TRACES, "--speed", "0",
                    timeout=harness.TRACES_START_S)
    try:
        c = client(sim)
        rows = [r for r in recorded() if r["sample_id"] < 2]
        for r in rows[::4]:
            out = r["output"]
            for frac in (0.3, 0.9):
                prefix = out[:int(len(out) * frac)]
                want = extract(prefix)
                got = c.completions.create(
                    model=r["model"],
                    prompt=r["problem"] + "\n" + prefix + GUIDE,
                    max_tokens=200).choices[0].text
                if want is None:
                    assert extract(got) is None, got
                else:
                    assert got == "\\boxed{%s}" % want
    finally:
        sim.cleanup()


def test_swap_ms_charges_model_changes():
    """--swap-ms: a request whose model differs from the one admitted
    before it waits the swap before prefill and counts in model_swaps;
    the same model in a row costs nothing."""
    d = tempfile.mkdtemp(prefix="tg-sim-swap-")
    path = os.path.join(d, "two.jsonl.gz")
    rows = own_rows()[:8]
    write_traces(path, rows + [dict(r, model="Other") for r in rows])
    sim = start_sim("--traces", path, "--swap-ms", "800", "--step-ms", "1",
                    "--prefill-ms-per-1k", "0")
    try:
        def ask(model):
            t0 = time.monotonic()
            client(sim).chat.completions.create(
                model=model, max_tokens=4, messages=[
                    {"role": "user", "content": rows[0]["problem"]}])
            return time.monotonic() - t0

        first, same = ask("Own"), ask("Own")
        assert stats(sim)["model_swaps"] == 0
        assert first < 0.6 and same < 0.6
        assert ask("Other") >= 0.8
        assert ask("Other") < 0.6
        assert ask("Own") >= 0.8
        assert stats(sim)["model_swaps"] == 2
    finally:
        sim.cleanup()
        os.unlink(path)
        os.rmdir(d)
