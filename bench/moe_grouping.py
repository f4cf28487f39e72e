"""bench/moe --grouping: model swaps and latency of policy=grouped against
least_inflight on the same mixed load, through the real gateway.

One thinkgate-sim replays the recorded traces of every model in --traces
with --swap-ms (a server holding one model at a time, llama.cpp/Ollama
style); one pool holds it (max_inflight=--inflight).  The load: --requests
passthrough requests, each for a model drawn at random (seeded) among the
recorded ones, asking a recorded problem of that model, arriving at
--rate per second (Poisson, seeded); max_tokens caps each answer so a run
stays short.  The sim decodes --inflight streams at once; least_inflight
sends everything (the sim queues the rest in arrival order), grouped
holds the rest in the engine (max_inflight=--inflight).  The same
schedule runs under each policy.  Reported: the
sim's model_swaps, client-side latency p50/p90/mean, wall time.
"""
import gzip
import json
import os
import random
import sys
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import lib  # noqa: E402
from lib import harness  # noqa: E402


def problems_by_model(traces):
    """{model: [problem text, ...]} from every trace file in traces."""
    out = {}
    for fn in sorted(os.listdir(traces)):
        if not fn.endswith((".jsonl", ".jsonl.gz")):
            continue
        opener = gzip.open if fn.endswith(".gz") else open
        with opener(os.path.join(traces, fn), "rt") as f:
            for line in f:
                r = json.loads(line)
                if r.get("sample_id", 0) == 0:
                    out.setdefault(r["model"], []).append(r["problem"])
    return out


def schedule(probs, n, rate, seed):
    rng = random.Random(seed)
    models = sorted(probs)
    at, out = 0.0, []
    for _ in range(n):
        m = rng.choice(models)
        out.append((at, m, rng.choice(probs[m])))
        at += rng.expovariate(rate)
    return out


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p * len(xs)))] if xs else 0.0


def run_policy(a, policy, sched):
    # The sim decodes --inflight streams at once and queues the rest
    # (FIFO, in arrival order).  least_inflight sends everything on (a
    # max_inflight there would answer 429 beyond it); grouped holds the
    # rest in the engine, where it can reorder them, so its backend has
    # max_inflight equal to the sim's slots.
    limit = " max_inflight=%d" % a.inflight if policy == "grouped" else ""
    http = ("    thinkgate_backend b0 %%s%s;\n"
            "    thinkgate_pool reasoners b0 policy=%s window=%s;\n"
            % (limit, policy, a.window))
    procs = []
    try:
        sim = harness.start_sim("--traces", a.traces, "--swap-ms",
                                str(a.swap_ms), "--step-ms", str(a.step_ms),
                                "--step-ms-per-seq", "0",
                                "--max-concurrency", str(a.inflight))
        procs.append(sim)
        engine = harness.start_engine()
        procs.append(engine)
        nginx = harness.start_nginx(engine.sock, http % sim.url)
        procs.append(nginx)
        harness.wait_registered(nginx)
        lat = [None] * len(sched)
        t0 = time.monotonic()

        def ask(i, model, problem):
            body = json.dumps({"model": model, "max_tokens": a.max_tokens,
                               "messages": [{"role": "user",
                                             "content": problem}]}).encode()
            req = urllib.request.Request(
                nginx.url + "/v1/chat/completions", body,
                {"Content-Type": "application/json"})
            s = time.monotonic()
            with urllib.request.urlopen(req, timeout=300) as r:
                r.read()
            lat[i] = (time.monotonic() - s) * 1000.0

        threads = []
        for i, (at, model, problem) in enumerate(sched):
            delay = t0 + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            t = threading.Thread(target=ask, args=(i, model, problem))
            t.start()
            threads.append(t)
        for t in threads:
            t.join(600)
        wall = time.monotonic() - t0
        st = json.loads(lib.http_json(sim.port, "GET", "/sim/stats")[1])
        done = [x for x in lat if x is not None]
        return {"policy": policy, "requests": len(sched),
                "answered": len(done), "model_swaps": st["model_swaps"],
                "latency_p50_ms": round(pct(done, 0.5)),
                "latency_p90_ms": round(pct(done, 0.9)),
                "latency_mean_ms": round(sum(done) / max(1, len(done))),
                "wall_s": round(wall, 2)}
    finally:
        for p in reversed(procs):
            p.cleanup()


def main(a):
    probs = problems_by_model(a.traces)
    if not probs:
        sys.exit("bench/moe --grouping: no traces in %s" % a.traces)
    sched = schedule(probs, a.requests, a.rate, a.seed)
    res = [run_policy(a, p, sched) for p in ("least_inflight", "grouped")]
    if a.json:
        for r in res:
            print(json.dumps(r))
    else:
        print("bench/moe --grouping: %d requests over %d models at %g/s "
              "(seed %d), sim --swap-ms %d --step-ms %g, max_tokens %d, "
              "max_inflight %d, window %s"
              % (a.requests, len(probs), a.rate, a.seed, a.swap_ms,
                 a.step_ms, a.max_tokens, a.inflight, a.window))
        print("%-15s %8s %6s %8s %8s %8s %7s" % (
            "policy", "answered", "swaps", "p50 ms", "p90 ms", "mean ms",
            "wall s"))
        for r in res:
            print("%-15s %8d %6d %8d %8d %8d %7.2f" % (
                r["policy"], r["answered"], r["model_swaps"],
                r["latency_p50_ms"], r["latency_p90_ms"],
                r["latency_mean_ms"], r["wall_s"]))
    lib.write_json("moe_grouping", {"results": res, "requests": a.requests,
                                    "rate": a.rate, "seed": a.seed,
                                    "swap_ms": a.swap_ms})
