"""policy=grouped end to end: one sim serving two models with --swap-ms
(a server that holds one model at a time), a mixed load sent at once
through the gateway; the grouped pool makes the sim swap fewer times than
least_inflight on the same load, every request answers, and a client
that goes away while its trace waits leaves nothing behind.
"""
import gzip
import json
import os
import tempfile
import threading
import time
import urllib.request

import openai
import pytest

import harness

MODELS = ("Own", "Other")
PROBLEM = "Zorblax has 3 flurbs.  How many now?"


def write_traces(path):
    rows = []
    for model in MODELS:
        for s in range(4):
            think = " ".join("step%d" % i for i in range(30 + 5 * s))
            rows.append({"model": model, "bench": "unit", "problem_id": "0",
                         "sample_id": s, "problem": PROBLEM, "answer": 7,
                         "pred": 7, "completion_tokens": 40 + 5 * s,
                         "finish_reason": "STOP",
                         "output": think + "\n</think>\n\n\\boxed{7}"})
    with gzip.open(path, "wt") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")


@pytest.fixture(scope="module")
def traces():
    d = tempfile.mkdtemp(prefix="tg-grouped-")
    path = os.path.join(d, "two.jsonl.gz")
    write_traces(path)
    yield path
    os.unlink(path)
    os.rmdir(d)


def sim_stats(sim):
    with urllib.request.urlopen(sim.url + "/sim/stats", timeout=10) as r:
        return json.loads(r.read())


def run_mixed(traces, policy, n=12):
    """n requests alternating the two models, started together; returns
    the sim's model_swaps and the answers."""
    http = ("    thinkgate_backend b0 %%s;\n"
            "    thinkgate_pool reasoners b0 policy=%s window=5s;\n" % policy)
    procs = []
    try:
        sim = harness.start_sim("--traces", traces, "--swap-ms", "200",
                                "--step-ms", "10", "--step-ms-per-seq", "0")
        procs.append(sim)
        engine = harness.start_engine()
        procs.append(engine)
        nginx = harness.start_nginx(engine.sock, http % sim.url)
        procs.append(nginx)
        harness.wait_registered(nginx)
        client = openai.OpenAI(base_url=nginx.url + "/v1", api_key="x",
                               max_retries=0, timeout=60)
        out = [None] * n

        def ask(i):
            r = client.chat.completions.create(
                model=MODELS[i % 2],
                messages=[{"role": "user", "content": PROBLEM}])
            out[i] = (r.model, r.choices[0].message.content)

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
            time.sleep(0.01)
        for t in threads:
            t.join(60)
        st = sim_stats(sim)
        assert st["open_streams"] == 0
        return st["model_swaps"], out
    except Exception:
        for p in procs:
            print("---- %s log ----\n%s" % (p.name, p.log()[-3000:]))
        raise
    finally:
        for p in reversed(procs):
            p.cleanup()


def test_grouped_swaps_less_than_least_inflight(traces):
    plain, out_plain = run_mixed(traces, "least_inflight")
    grouped, out_grouped = run_mixed(traces, "grouped")
    for out in (out_plain, out_grouped):
        assert all(o is not None for o in out)
        assert [o[0] for o in out] == [MODELS[i % 2] for i in range(12)]
        assert all("7" in o[1] for o in out)
    print("model swaps: least_inflight %d, grouped %d" % (plain, grouped))
    assert plain >= 6, plain
    assert grouped <= 2, grouped


def test_waiting_trace_cancelled_with_its_client(traces):
    """max_inflight=1: the second model's request waits in the engine;
    its client goes away; the first ends and nothing is sent for the
    second (the waiting trace left the list with its request)."""
    http = ("    thinkgate_backend b0 %s max_inflight=1;\n"
            "    thinkgate_pool reasoners b0 policy=grouped window=5s;\n")
    procs = []
    try:
        sim = harness.start_sim("--traces", traces, "--step-ms", "20")
        procs.append(sim)
        engine = harness.start_engine()
        procs.append(engine)
        nginx = harness.start_nginx(engine.sock, http % sim.url)
        procs.append(nginx)
        harness.wait_registered(nginx)
        client = openai.OpenAI(base_url=nginx.url + "/v1", api_key="x",
                               max_retries=0, timeout=60)
        first = []
        t = threading.Thread(target=lambda: first.append(
            client.chat.completions.create(
                model="Own", messages=[{"role": "user",
                                        "content": PROBLEM}])))
        t.start()
        time.sleep(0.2)
        short = openai.OpenAI(base_url=nginx.url + "/v1", api_key="x",
                              max_retries=0, timeout=0.3)
        with pytest.raises(openai.APITimeoutError):
            short.chat.completions.create(
                model="Other", messages=[{"role": "user",
                                          "content": PROBLEM}])
        t.join(30)
        assert first and first[0].model == "Own"
        time.sleep(0.3)
        st = sim_stats(sim)
        assert st["requests"] == 1 and st["open_streams"] == 0, st
    except Exception:
        for p in procs:
            print("---- %s log ----\n%s" % (p.name, p.log()[-3000:]))
        raise
    finally:
        for p in reversed(procs):
            p.cleanup()
