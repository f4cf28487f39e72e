"""End-to-end tests of thinkgate-sim's SIMULATED judge (--judge-model,
--judge-auroc, --judge-seed; sim/judge.c): over many pairs of recorded
trace prefixes, its P(Yes) separates "same recorded final answer" from
"different" with the AUROC it was given; the same pair and seed give the
same answer; misuse is a 400 that says what was not found.

The recorded-trace tests skip when ../shared/traces is absent (fail when
CI=true: harness.missing).
"""
import gzip
import json
import math
import os
import tempfile
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness
from harness import TRACES, have_traces, start_sim

JUDGE = "sim-judge"
# Files with many pairs of both kinds (Qwen3-235B often states no answer).
FILES = ["R1.gpqa-even.jsonl.gz", "Qwen3-235B.gpqa-even.jsonl.gz"]
NO_ANSWER = (None, "", "NO_ANSWER", "NONE", "None")


def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def prompt(problem, a, b):
    """The deepprune plugin's judge question (judge=llm)."""
    return ("Problem:\n%s\n\nReasoning A:\n%s\n\nReasoning B:\n%s\n\n"
            "Will A and B reach the same final answer? Answer Yes or No."
            % (problem, a, b))


def judge_body(problem, a, b, model=JUDGE):
    return {"model": model, "max_tokens": 1, "temperature": 0,
            "logprobs": True, "top_logprobs": 10,
            "messages": [{"role": "user", "content": prompt(problem, a, b)}]}


def p_yes(doc):
    top = doc["choices"][0]["logprobs"]["content"][0]["top_logprobs"]
    lp = {t["token"]: t["logprob"] for t in top}
    return math.exp(lp["Yes"])


def auroc(scores, labels):
    """Mann-Whitney: P(score of a positive > score of a negative), ties
    half."""
    pairs = sorted(zip(scores, labels))
    pos = sum(labels)
    neg = len(labels) - pos
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mid = (i + 1 + j) / 2.0         # mean 1-based rank of the tie run
        rank_sum += mid * sum(lab for _, lab in pairs[i:j])
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


def answer(pred):
    if isinstance(pred, str):
        pred = pred.strip()
    return None if pred in NO_ANSWER else str(pred)


def sample_of(prefix, rows):
    """The recorded sample a prefix is: the longest common prefix, ties
    (samples that agree beyond the prefix) to the lowest sample_id."""
    best, best_len = None, -1
    for r in rows:
        k = len(os.path.commonprefix([prefix, r["output"]]))
        if k > best_len:
            best, best_len = r, k
    return best


def recorded_pairs():
    """(problem, prefix A, prefix B, same) for every pair of samples of
    every problem of FILES; prefixes of varying length, split at
    </think> as the plugin's reasoning text.  same: the recorded `pred`s
    of the samples the prefixes identify are equal answers."""
    out = []
    for name in FILES:
        probs = {}
        with gzip.open(os.path.join(TRACES, name), "rt") as f:
            for line in f:
                r = json.loads(line)
                probs.setdefault(r["problem"], []).append(r)
        for problem, rows in probs.items():
            rows.sort(key=lambda r: r["sample_id"])
            for i in range(len(rows)):
                for j in range(i + 1, len(rows)):
                    cut = 600 + 97 * ((i + 3 * j) % 11)
                    pa = rows[i]["output"].split("</think>")[0][:cut]
                    pb = rows[j]["output"].split("</think>")[0][:cut + 50]
                    sa = answer(sample_of(pa, rows).get("pred"))
                    sb = answer(sample_of(pb, rows).get("pred"))
                    out.append((problem, pa, pb,
                                int(sa is not None and sa == sb)))
    return out


def judge_all(sim, pairs):
    with ThreadPoolExecutor(8) as ex:
        res = list(ex.map(lambda p: post(sim.url + "/v1/chat/completions",
                                         judge_body(*p[:3])), pairs))
    assert all(st == 200 for st, _ in res), [d for st, d in res
                                             if st != 200][:2]
    return [p_yes(d) for _, d in res]


@pytest.fixture(scope="module")
def pairs():
    if not have_traces():
        harness.missing("../shared/traces is absent: no recorded traces")
    return recorded_pairs()


def traces_dir():
    d = tempfile.mkdtemp(prefix="tg-judge-traces-")
    for name in FILES:
        os.symlink(os.path.join(TRACES, name), os.path.join(d, name))
    return d


@pytest.mark.parametrize("target", [0.6, 0.8, 0.95])
def test_judge_auroc_on_recorded_pairs(pairs, target):
    d = traces_dir()
    sim = start_sim("--traces", d, "--judge-model", JUDGE,
                    "--judge-auroc", str(target))
    try:
        scores = judge_all(sim, pairs)
        labels = [p[3] for p in pairs]
        assert 300 < sum(labels) < len(labels) - 300
        measured = auroc(scores, labels)
        assert abs(measured - target) <= 0.03, (target, measured)
        # The sim logged the same pairs, with the same answers' equality.
        log = get(sim.url + "/sim/judge")
        assert log["pairs"] == len(pairs)
        assert sum(log["same"]) == sum(labels)
        assert abs(auroc(log["p_yes"], log["same"]) - measured) < 2e-3
        st = get(sim.url + "/sim/stats")
        assert st["judge_requests"] == len(pairs)
        assert st["judge_unmatched"] == 0
        assert st["requests"] == 0      # no trace was replayed
    finally:
        sim.cleanup()
        for name in FILES:
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def test_judge_deterministic_and_seeded(pairs):
    sub = pairs[::7]
    d = traces_dir()
    sims = [start_sim("--traces", d, "--judge-model", JUDGE, "--judge-seed",
                      str(seed)) for seed in (0, 0, 1)]
    try:
        runs = [judge_all(s, sub) for s in sims]
        assert runs[0] == runs[1]
        differ = sum(1 for x, y in zip(runs[0], runs[2]) if x != y)
        assert differ > 0.9 * len(sub)
        # The same pair in the other order, with other prefix lengths,
        # gets the same answer.
        problem, a, b, _ = sub[0]
        st, doc = post(sims[0].url + "/v1/chat/completions",
                       judge_body(problem, b[:300], a[:900]))
        assert st == 200 and p_yes(doc) == runs[0][0]
    finally:
        for s in sims:
            s.cleanup()
        for name in FILES:
            os.unlink(os.path.join(d, name))
        os.rmdir(d)


def own_traces(path):
    rows = []
    for s, (ans, text) in enumerate([
            ("7", "First I add the numbers carefully, which gives seven."),
            ("7", "Let me count on my fingers: one, two, ... seven in all."),
            ("NO_ANSWER", "Hmm, this is hard and I will not finish it."),
            ("9", "Multiplying instead, which is wrong, I get nine here.")]):
        rows.append({"model": "M", "problem": "What is 3 + 4?",
                     "sample_id": s, "pred": ans, "completion_tokens": 20,
                     "output": text + " </think> \\boxed{%s}" % ans})
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows


def test_judge_shape_misuse_and_completions(tmp_path):
    path = str(tmp_path / "own.jsonl.gz")
    rows = own_traces(path)
    sim = start_sim("--traces", path, "--judge-model", JUDGE,
                    "--judge-auroc", "0.9")
    try:
        st, doc = post(sim.url + "/v1/chat/completions",
                       judge_body("What is 3 + 4?", rows[0]["output"][:30],
                                  rows[1]["output"][:40]))
        assert st == 200, doc
        ch = doc["choices"][0]
        assert doc["object"] == "chat.completion" and doc["model"] == JUDGE
        assert ch["message"]["content"] in ("Yes", "No")
        assert ch["finish_reason"] == "stop"
        first = ch["logprobs"]["content"][0]
        top = first["top_logprobs"]
        assert [t["token"] for t in top] == (
            ["Yes", "No"] if ch["message"]["content"] == "Yes"
            else ["No", "Yes"])
        assert first["token"] == ch["message"]["content"]
        assert abs(sum(math.exp(t["logprob"]) for t in top) - 1) < 1e-5
        assert doc["usage"]["completion_tokens"] == 1
        # Without logprobs: none in the reply.
        body = judge_body("What is 3 + 4?", rows[0]["output"][:30],
                          rows[3]["output"][:30])
        del body["logprobs"], body["top_logprobs"]
        st, doc = post(sim.url + "/v1/chat/completions", body)
        assert st == 200 and doc["choices"][0]["logprobs"] is None
        # A sample that states no answer equals nothing, itself included.
        st, doc = post(sim.url + "/v1/chat/completions",
                       judge_body("What is 3 + 4?", rows[2]["output"][:35],
                                  rows[2]["output"][:20]))
        assert st == 200
        assert get(sim.url + "/sim/judge")["same"] == [1, 0, 0]
        # Completions: the same answer, the legacy logprobs shape.
        st, doc = post(sim.url + "/v1/completions", {
            "model": JUDGE, "max_tokens": 1, "logprobs": 2,
            "prompt": prompt("What is 3 + 4?", rows[0]["output"][:30],
                             rows[1]["output"][:40])})
        assert st == 200, doc
        c = doc["choices"][0]
        assert doc["object"] == "text_completion"
        assert set(c["logprobs"]["top_logprobs"][0]) == {"Yes", "No"}
        # Misuse: no recorded problem, or fewer than two prefixes.
        st, doc = post(sim.url + "/v1/chat/completions",
                       judge_body("What is 5 + 5?", "a", "b"))
        assert st == 400 and doc["error"]["code"] == "judge_unmatched"
        assert "no recorded problem" in doc["error"]["message"]
        st, doc = post(sim.url + "/v1/chat/completions",
                       judge_body("What is 3 + 4?", rows[0]["output"][:30],
                                  "Something nobody recorded."))
        assert st == 400 and "two recorded trace prefixes" in \
            doc["error"]["message"]
        st, doc = post(sim.url + "/v1/chat/completions",
                       dict(judge_body("What is 3 + 4?", "x", "y"),
                            stream=True))
        assert st == 400 and doc["error"]["param"] == "stream"
        s = get(sim.url + "/sim/stats")
        assert (s["judge_requests"], s["judge_unmatched"]) == (4, 2)
        # The trace model still replays; /sim/reset clears the judge log.
        st, doc = post(sim.url + "/v1/chat/completions", {
            "model": "M", "seed": 1,
            "messages": [{"role": "user", "content": "What is 3 + 4?"}]})
        assert st == 200
        assert doc["choices"][0]["message"]["content"].strip() == \
            "\\boxed{7}"
        post(sim.url + "/sim/reset", {})
        assert get(sim.url + "/sim/judge")["pairs"] == 0
        assert get(sim.url + "/sim/stats")["judge_requests"] == 0
    finally:
        sim.cleanup()


def test_judge_needs_traces():
    with pytest.raises(Exception):
        start_sim("--judge-model", JUDGE)
