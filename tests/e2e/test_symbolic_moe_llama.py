"""symbolic_moe's LLM pools on a real model: llama.cpp (llama-cpp-python's
server on SmolLM2-135M-Instruct, `bash mk/models.sh smollm2`) is the
annotator and the aggregator pool, in front of the sim's invented experts
of test_symbolic_moe.py.

- Annotator: the model is first asked the plugin's instruction directly
  (greedy, as the plugin asks it), and its reply parsed by
  tools/skill_profile.py; through the gateway the request must then carry
  exactly those keywords, or, when the reply has none, the lexicon's with
  the fallback named.  So the plugin's prompt and parser meet a real
  model's words, and agree with the profile tool's.
- Aggregator: the model's answer comes back as the response (streamed
  and not), with the experts' vote beside it in the summary.

Skips when the model file or llama-cpp-python[server] is absent."""
import json
import os
import shutil
import tempfile
import types
import urllib.request

import pytest

import harness
from test_aux_judge import MODEL_FILE, _llama_skip_reason
from test_plugins import request, wait_no_open_streams
from test_symbolic_moe import ANSWER, PHYSICS, PROFILE, SERVER, write_traces
import skill_profile  # noqa: E402 (test_symbolic_moe puts tools/ on the path)

pytestmark = harness.needs(_llama_skip_reason(),
                           opt_out="THINKGATE_NO_LLAMA")


@pytest.fixture(scope="module")
def gw():
    tdir = tempfile.mkdtemp(prefix="tg-moe-llama-")
    path = os.path.join(tdir, "invented.jsonl.gz")
    write_traces(path)
    prof = os.path.join(tdir, "profile.json")
    with open(prof, "w") as f:
        json.dump(PROFILE, f)
    g = types.SimpleNamespace(procs=[])
    old = os.environ.get("THINKGATE_MOE_PROFILES")
    os.environ["THINKGATE_MOE_PROFILES"] = prof
    try:
        g.sim = harness.start_sim("--traces", path, "--step-ms", "3",
                                  "--step-ms-per-seq", "0")
        g.procs.append(g.sim)
        g.llama = harness.start_llama(MODEL_FILE, n_ctx=2048, timeout=120)
        g.procs.append(g.llama)
        http = "".join("    thinkgate_backend b%s %s model=%s;\n"
                       % (m, g.sim.url, m) for m in ANSWER)
        http += ("    thinkgate_backend llm0 %s model=smollm2 "
                 "idle_timeout=120s;\n" % g.llama.url)
        http += "    thinkgate_pool experts bA bB bC;\n"
        http += "    thinkgate_pool llm llm0;\n"
        # Unused by these tests, but SERVER names it.
        http += "    thinkgate_pool halfdead bB bC;\n"
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        if old is None:
            os.environ.pop("THINKGATE_MOE_PROFILES", None)
        else:
            os.environ["THINKGATE_MOE_PROFILES"] = old
        for p in reversed(g.procs):
            p.cleanup()
        shutil.rmtree(tdir, ignore_errors=True)


def ask_llama(gw, content, max_tokens):
    body = {"model": "smollm2", "temperature": 0, "max_tokens": max_tokens,
            "messages": [{"role": "user", "content": content}]}
    req = urllib.request.Request(
        gw.llama.url + "/v1/chat/completions", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["choices"][0]["message"]["content"] or ""


def moe(gw, stream=False, **tg):
    body = {"model": "any", "seed": 0, "max_tokens": 4000, "stream": stream,
            "messages": [{"role": "user", "content": PHYSICS}],
            "thinkgate": dict({"strategy": "symbolic_moe"}, **tg)}
    status, raw = request(gw, "POST", "/v1/chat/completions", body,
                          timeout=180)
    assert status == 200, raw[:400]
    return raw


def test_annotator_pool_on_smollm2(gw):
    reply = ask_llama(gw, skill_profile.annotator_instruction() + PHYSICS,
                      256)
    want, _ = skill_profile.parse_keywords(reply)
    tg = json.loads(moe(gw, k=1, annotator="llm"))["thinkgate"]
    print("SmolLM2 annotator: reply %r -> keywords %s; gateway: %s %s"
          % (reply, want, tg["annotator"], tg["keywords"]))
    if want:
        assert tg["annotator"] == "pool llm", tg
        assert tg["keywords"] == want, (reply, tg)
    else:
        assert tg["annotator"] == "lexicon", (reply, tg)
        assert "no keyword" in tg["annotator_fallback"], tg
        assert tg["keywords"] == ["physics", "quantum mechanics"], tg
    assert tg["aux_tokens"] > 0, tg
    wait_no_open_streams(gw)


def test_aggregator_pool_on_smollm2(gw):
    doc = json.loads(moe(gw, k=2, aggregator="llm", aggregator_tokens=48))
    tg = doc["thinkgate"]
    text = doc["choices"][0]["message"]["content"] or ""
    print("SmolLM2 aggregator: %r, answer %s, vote %s"
          % (text, tg.get("answer"), tg.get("vote_answer")))
    assert tg["aggregator"] == "pool llm", tg
    assert "aggregator_fallback" not in tg, tg
    assert tg["vote_answer"] == "11", tg
    assert [e["answer"] for e in tg["experts"]] == ["11", "11"], tg
    assert tg["traces_started"] == 3, tg
    # The model's words, not an expert's recording.
    assert text.strip() and text.strip() != "The answer is \\boxed{11}.", text
    assert 0 < doc["usage"]["completion_tokens"] <= 48, doc["usage"]

    raw = moe(gw, stream=True, k=2, aggregator="llm", aggregator_tokens=48)
    events = [json.loads(e[6:]) for e in raw.decode().split("\n\n")
              if e.startswith("data: {")]
    content = "".join(c["delta"].get("content") or ""
                      for ev in events for c in ev["choices"])
    assert content.strip(), events[:3]
    assert events[-1]["thinkgate"]["aggregator"] == "pool llm"
    wait_no_open_streams(gw)
