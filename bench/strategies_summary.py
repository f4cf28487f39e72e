"""The summary bench/strategies prints after a single-strategy run (and a
--judge-auroc sweep): per file and pooled, accuracy and tokens next to
self_consistency at the same n, to passthrough (n=1) and self_consistency
n=8, and to the yardstick (majority over k random traces, k = 1..n), all
worked out from the recording alone; the simulated judge's measured AUROC;
the triggers a plugin reports (trimr); deepprune's clusters and pruned
traces per problem.  Plus the plot of a sweep.
"""
import strategies_lib as L
from lib import make_table, print_tables, png_path, plt


def _pct(v):
    return "-" if v is None else "%.1f%%" % (100 * v)


def _pt(v):
    return "-" if v is None else "%+.1f pt" % (100 * v)


def _ratio(v):
    return "-" if v is None else "%.3fx" % v


def _per(v, problems):
    return "-" if v is None or not problems else "%.2f" % (v / problems)


def _auroc(v):
    return "-" if v is None else "%.3f" % v


# The two fixed baselines: (label, n of the yardstick, its point).
BASELINES = (("pt1", 1, 0), ("sc8", 8, -1))


def _counts(recs):
    """The thinkgate counters of bench/strategies' records, summed."""
    out = {}
    for r in recs:
        for name, c in (r.get("triggers") or {}).items():
            out.setdefault("triggers", {})
            out["triggers"][name] = out["triggers"].get(name, 0) + c
        for key in ("cuts_no_answer",) + L.TG_SUMS + L.TG_COUNTS:
            if r.get(key) is not None:
                out[key] = out.get(key, 0) + r[key]
    return out


def rows(results, files, max_tokens):
    """One row per (configuration, file) and one pooled row per
    configuration: dicts with the figures, and the yardsticks used."""
    by_name = {tf.name: tf for tf in files}
    ys = {}
    out = []
    groups = {}

    def yard(tf, n):
        if (tf.name, n) not in ys:
            ys[(tf.name, n)] = L.yardstick(tf, n, max_tokens)
        return ys[(tf.name, n)]

    for cfg, rec in results:
        tf = by_name[rec["file"]]
        y = yard(tf, rec["n"])
        base = {label: yard(tf, n)[i] for label, n, i in BASELINES}
        g = groups.setdefault(id(cfg), {"cfg": cfg, "recs": [], "ys": [],
                                        "base": []})
        g["recs"].append(rec)
        g["ys"].append(y)
        g["base"].append(base)
        out.append(_row(cfg, rec["file"], rec["problems"], rec["correct"],
                        rec["tokens"], y, rec.get("_judge_log"),
                        rec.get("errors", 0), base, _counts([rec]),
                        rec.get("converge")))
    for g in groups.values():
        if len(g["recs"]) < 2:
            continue
        recs = g["recs"]
        # Pooled yardstick: per k, the files' expected figures summed.
        y = [(k, sum(yy[i][1] for yy in g["ys"]),
              sum(yy[i][2] for yy in g["ys"]))
             for i, (k, _, _) in enumerate(g["ys"][0])]
        log = None
        if all(r.get("_judge_log") for r in recs):
            logs = [r["_judge_log"] for r in recs]
            log = {"p_yes": [x for lg in logs for x in lg["p_yes"]],
                   "same": [x for lg in logs for x in lg["same"]]}
        base = {label: (None, sum(b[label][1] for b in g["base"]),
                        sum(b[label][2] for b in g["base"]))
                for label, _, _ in BASELINES}
        out.append(_row(g["cfg"], "pooled", sum(r["problems"] for r in recs),
                        sum(r["correct"] for r in recs),
                        None if any(r["tokens"] is None for r in recs)
                        else sum(r["tokens"] for r in recs), y, log,
                        sum(r.get("errors", 0) for r in recs), base,
                        _counts(recs), recs[0].get("converge")))
    return out


def _row(cfg, name, problems, correct, tokens, y, log, errors, base=None,
         counts=None, converge=None):
    sc_correct, sc_tokens = y[-1][1], y[-1][2]
    acc = correct / problems if problems else None
    on = L.on_yardstick([(k, c / problems, t) for k, c, t in y], tokens) \
        if tokens is not None and problems else None
    r = {"file": name, "config": cfg["config_name"], "n": y[-1][0],
         "judge_auroc": cfg.get("judge_auroc"), "problems": problems,
         "accuracy": acc, "tokens": tokens, "errors": errors,
         "sc_accuracy": sc_correct / problems if problems else None,
         "sc_tokens": round(sc_tokens),
         "tokens_vs_sc": tokens / sc_tokens if tokens and sc_tokens
         else None,
         "yardstick_accuracy": on,
         "vs_yardstick": None if on is None or acc is None else acc - on,
         "yardstick": [{"k": k, "accuracy": c / problems if problems
                        else None, "tokens": round(t)} for k, c, t in y]}
    r["converge"] = converge
    if "effort" in cfg:
        r["effort"] = cfg["effort"] or "none"
        r["thinking_budget"] = cfg.get("budget")
    for label, (_, c, t) in (base or {}).items():
        # Against a baseline worked out from the recording: passthrough
        # (sample 0 alone) and self_consistency n=8.
        r[label + "_accuracy"] = c / problems if problems else None
        r[label + "_tokens"] = round(t)
        r["accuracy_vs_" + label] = None if acc is None or not problems \
            else acc - c / problems
        r["tokens_vs_" + label] = tokens / t if tokens and t else None
    r.update(counts or {})
    if log is not None:
        r["judge_pairs"] = len(log["same"])
        r["judge_pairs_same"] = sum(log["same"])
        r["judge_auroc_measured"] = L.auroc(log["p_yes"], log["same"])
    return r


def _triggers(r):
    t = r.get("triggers")
    if not t:
        return "-"
    return ", ".join("%s %d" % kv for kv in sorted(t.items()))


def report(rs, out_json=None):
    """Prints the summary tables; returns the doc with them.  The judge
    columns appear when a row has a judge, the trigger columns when a
    plugin reported triggers."""
    judge = any(r["judge_auroc"] is not None for r in rs)
    trig = any(r.get("triggers") for r in rs)
    pruned = any(r.get("traces_pruned") is not None for r in rs)
    headers = ["file", "strategy", "accuracy", "tokens", "tokens vs sc@n",
               "sc@n accuracy", "vs pt@1", "tokens vs pt@1", "vs sc@8",
               "tokens vs sc@8"]
    if judge:
        headers += ["judge AUROC set", "measured", "pairs judged"]
    headers += ["yardstick at equal tokens", "vs yardstick"]
    if trig:
        headers += ["triggers", "cuts with no answer", "verifier calls",
                    "verifier tokens"]
    if pruned:
        headers += ["clusters / problem", "pruned / problem"]
    table = []
    for r in rs:
        row = [r["file"], r["config"], _pct(r["accuracy"]),
               "-" if r["tokens"] is None else "{:,}".format(r["tokens"]),
               _ratio(r["tokens_vs_sc"]), _pct(r["sc_accuracy"]),
               _pt(r.get("accuracy_vs_pt1")), _ratio(r.get("tokens_vs_pt1")),
               _pt(r.get("accuracy_vs_sc8")),
               _ratio(r.get("tokens_vs_sc8"))]
        if judge:
            row += ["-" if r["judge_auroc"] is None
                    else "%g" % r["judge_auroc"],
                    _auroc(r.get("judge_auroc_measured")),
                    r.get("judge_pairs", "-")]
        row += [_pct(r["yardstick_accuracy"]), _pt(r["vs_yardstick"])]
        if trig:
            # The plugin's own count where it reports one (it reads the
            # continuation alone), else ours (its answer is empty).
            row += [_triggers(r), r.get("no_answer_cuts",
                                        r.get("cuts_no_answer", "-")),
                    "-" if r.get("verifier_calls") is None
                    else "{:,}".format(r["verifier_calls"]),
                    "-" if r.get("verifier_tokens") is None
                    else "{:,}".format(r["verifier_tokens"])]
        if pruned:
            # deepprune: of the n traces, the clusters the judge kept
            # apart and the traces it cancelled as redundant.
            row += [_per(r.get("clusters_formed"), r["problems"]),
                    _per(r.get("traces_pruned"), r["problems"])]
        table.append(row)
    yard = []
    seen = set()
    for r in rs:
        if (r["file"], r["n"]) in seen:
            continue
        seen.add((r["file"], r["n"]))
        yard.append([r["file"]] + ["%s / %s" % (
            _pct(p["accuracy"]), "{:,}".format(p["tokens"]))
            for p in r["yardstick"]])
    n = max(r["n"] for r in rs)
    effort = _effort_table(rs)
    doc = {"title": "Strategies against the yardstick",
           "tables": effort + [
               make_table("per file and pooled; sc@n, pt@1 (passthrough, "
                          "sample 0), sc@8 and the yardstick are worked out "
                          "from the recording, each trace's answer as the "
                          "plugins' extractor reads it (thinkgate-answers; "
                          "--recorded-answers: the recorder's pred)" + (
                              "; the judge is the sim's SIMULATED judge "
                              "(figures are 'with a judge of AUROC A')"
                              if judge else "") + _converge_note(rs),
                          headers, table),
               make_table("yardstick: majority over k random traces of the "
                          "n (accuracy / tokens, expected over every "
                          "k-subset)", ["file"] + ["k=%d" % k
                                                   for k in range(1, n + 1)],
                          [row + ["-"] * (n + 1 - len(row)) for row in yard])],
           "rows": rs}
    print_tables(doc)
    return doc


def _effort_table(rs):
    """[the reasoning-effort table] when the rows are effort levels (bench
    /strategies --effort), else []: per file and pooled, each level's
    accuracy and tokens, and both against the run without
    reasoning_effort (the level "none", when it ran) and against
    passthrough's sample 0 as recorded."""
    if not any("effort" in r for r in rs):
        return []
    base = {r["file"]: r for r in rs if r.get("effort") == "none"}
    order = {"none": 0, "minimal": 1, "low": 2, "medium": 3, "high": 4}
    files = []
    for r in rs:
        if r["file"] not in files:
            files.append(r["file"])
    # Pooled first, then the files in run order; levels in effort order.
    files.sort(key=lambda f: f != "pooled")
    table = []
    for f in files:
        for r in sorted((r for r in rs if r["file"] == f and "effort" in r),
                        key=lambda r: order.get(r["effort"], 9)):
            b = base.get(f)
            table.append([
                f, r["config"], _pct(r["accuracy"]),
                "-" if r["tokens"] is None else "{:,}".format(r["tokens"]),
                "-" if b is None or b is r or r["accuracy"] is None
                else _pt(r["accuracy"] - b["accuracy"]),
                "-" if b is None or b is r or not r["tokens"]
                or not b["tokens"] else _ratio(r["tokens"] / b["tokens"]),
                _pt(r.get("accuracy_vs_pt1")), _ratio(r.get("tokens_vs_pt1")),
                r.get("budget_cuts", 0), r.get("errors", 0)])
    return [make_table(
        "reasoning_effort under the default thinkgate_effort mapping, per "
        "file and pooled; vs no effort: against the measured run without "
        "reasoning_effort; pt@1: passthrough's sample 0 as recorded"
        + _converge_note(rs),
        ["file", "level", "accuracy", "tokens", "vs no effort",
         "tokens vs no effort", "vs pt@1", "tokens vs pt@1",
         "traces cut at the budget", "errors"], table)]


def _converge_note(rs):
    fs = sorted({r["converge"] for r in rs if r.get("converge")})
    if not fs:
        return "; the sim's plain continuation rule"
    return "; at convergence %s (the sim's SIMULATED model converging at " \
        "F=%s: --converge)" % (", ".join("%g" % f for f in fs),
                               ", ".join("%g" % f for f in fs))


def plot(rs, name="strategies_judge"):
    """Accuracy vs tokens per judge AUROC, one panel per file and the
    pooled one, with the yardstick line; returns the path."""
    pyplot = plt()
    files = []
    for r in rs:
        if r["file"] not in files:
            files.append(r["file"])
    if "pooled" in files:
        files.remove("pooled")
        files.insert(0, "pooled")
    cols = min(len(files), 2)
    nrows = (len(files) + cols - 1) // cols
    fig, axes = pyplot.subplots(nrows, cols, squeeze=False,
                                figsize=(6.4 * cols, 4.8 * nrows))
    cmap = pyplot.get_cmap("viridis")
    for ax, f in zip(axes.flat, files):
        fr = [r for r in rs if r["file"] == f and r["tokens"]]
        if not fr:
            ax.axis("off")
            continue
        y = fr[0]["yardstick"]
        ax.plot([p["tokens"] / 1e6 for p in y],
                [100 * p["accuracy"] for p in y], "-o", color="0.55",
                label="yardstick: majority of k random (k=1..%d)" % len(y))
        for p in y:
            ax.annotate("k=%d" % p["k"], (p["tokens"] / 1e6,
                                          100 * p["accuracy"]),
                        textcoords="offset points", xytext=(-6, -13),
                        fontsize=7, color="0.4")
        aurocs = sorted({r["judge_auroc"] for r in fr
                         if r["judge_auroc"] is not None})
        for r in fr:
            a = r["judge_auroc"]
            c = cmap(aurocs.index(a) / max(1, len(aurocs) - 1)) \
                if a is not None else "C3"
            label = r["config"] if a is None else \
                "judge AUROC %g (measured %s)" % (
                    a, _auroc(r.get("judge_auroc_measured")))
            ax.scatter([r["tokens"] / 1e6], [100 * r["accuracy"]], s=60,
                       color=c, edgecolors="black", linewidths=0.5,
                       zorder=3, label=label)
        ax.set_title("%s (%d problems)" % (f, fr[0]["problems"]))
        ax.set_xlabel("tokens generated (millions, as the sim counts them)")
        ax.set_ylabel("accuracy (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
    for ax in list(axes.flat)[len(files):]:
        ax.axis("off")
    fig.suptitle("deepprune with a SIMULATED judge of set AUROC "
                 "(thinkgate-sim --judge-auroc) vs the yardstick")
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    path = png_path(name)
    fig.savefig(path, dpi=110)
    pyplot.close(fig)
    return path


def write(doc, name="strategies_judge"):
    return L.write_json(name, doc) if doc else None

