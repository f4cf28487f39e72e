#!/usr/bin/env python3
"""The prior= option of the auto plugin from recorded traces: per model,
the share of problems whose first finisher (fewest completion tokens of
the first n samples: the sim decodes in lockstep) gave the majority's
answer over those n.

  tools/auto_prior.py [--traces DIR] [--bench aime] [--half even|odd|all]
                      [--n 8]

--half picks problems by position among each model's sorted problem ids
(even: 0, 2, ...), so a prior built on one half can be measured on the
other.  Prints MODEL:AGREEMENT,... on one line.
"""
import argparse
import collections
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import skill_profile as sp  # noqa: E402


def key(pid):
    return (0, int(pid), "") if str(pid).isdigit() else (1, 0, str(pid))


def agreement(rs, n):
    rs = sorted(rs, key=lambda r: (r["completion_tokens"], r["sample_id"]))
    votes, order = collections.Counter(), []
    for r in rs[:n]:
        a = r.get("pred")
        if a is None or str(a).strip() == "":
            continue
        a = str(a).strip()
        votes[a] += 1
        order.append(a)
    if not order:
        return None
    best = max(votes.values())
    return [a for a in order if votes[a] == best][0] == order[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--traces", default=os.path.join(HERE, "..", "..",
                                                     "shared", "traces"))
    ap.add_argument("--bench", default="aime")
    ap.add_argument("--half", default="all", choices=("even", "odd", "all"))
    ap.add_argument("--n", type=int, default=8)
    a = ap.parse_args()
    by = collections.defaultdict(list)
    for r in sp.read_traces(a.traces):
        if sp.bench_of(r) == a.bench:
            by[(r["model"], str(r["problem_id"]))].append(r)
    out = []
    for model in sorted({m for m, _ in by}):
        pids = sorted((p for m, p in by if m == model), key=key)
        if a.half != "all":
            pids = pids[0 if a.half == "even" else 1::2]
        got = [agreement(by[(model, p)], a.n) for p in pids]
        got = [g for g in got if g is not None]
        if got:
            out.append("%s:%.2f" % (model, sum(got) / len(got)))
    print(",".join(out))


if __name__ == "__main__":
    main()
