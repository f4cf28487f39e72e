"""Pieces of bench/strategies: reading trace files, the figures a strategy
must reach on them (worked out from the recordings alone, independently of
the gateway), the sim + engine + nginx stack, and the client that sends
every problem through nginx.

Expected figures, per problem, for the n traces a request starts (trace i
replays recorded sample i mod count, since the request carries seed 0 and
the engine gives trace i the seed 0 + i):

  ffs (k=1)         the shortest trace that qualifies (recorded finish not
                    a cut-off, and a recorded answer: `pred` not null,
                    "" or NO_ANSWER) wins, ties to the lower sample; tokens
                    = sum of min(len_i, len_winner).  k > 1: the first k
                    qualifiers vote (ties to the answer whose first voter
                    finished first).  No qualifier: every trace runs out,
                    the answers vote, tokens = sum of all lengths.
  self_consistency  majority over the answers of all n (ties to the answer
                    whose first voter finished first = shortest), tokens =
                    sum of all lengths; early_stop=exact stops at the first
                    finish after which the running traces can no longer
                    change that result (the plugin's rule), tokens = sum of
                    min(len_i, len_at_stop).
  passthrough       sample 0, its length.
  anything else     not worked out (trimr's cuts depend on its verifier
                    and on the sim's continuation rule): printed "-".

"Finished first" is "fewest tokens": the sim decodes every running stream
of a batch in lockstep, so the shortest trace ends first.
"""
import collections
import glob
import gzip
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
sys.path.insert(0, HERE)

import harness  # noqa: E402

BUILD = os.path.join(ROOT, "build")
PLUGIN_DIR = os.path.join(BUILD, "plugins")
OUT = os.path.join(BUILD, "bench")
SHARED_TRACES = os.environ.get("TG_TRACES_DIR") or os.path.abspath(
    os.path.join(ROOT, "..", "shared", "traces"))

EMBED_MODEL = os.path.join(BUILD, "models", "all-MiniLM-L6-v2")
NO_ANSWER = (None, "", "NO_ANSWER", "NONE", "None")
CUTOFF = ("CUTOFF", "length", "LENGTH")

# plugins/common/answer.c's table of answer formats: prefix -> (kind, lo,
# hi); the bench option is passed to the plugins only for names it knows
# (another name is a 400 there).
BENCH_FORMATS = [
    ("aime", "int", 0, 999), ("gsm8k", "int", None, None),
    ("gpqa", "choice", 4, None), ("mmlu-pro", "choice", 10, None),
    ("mmlu_pro", "choice", 10, None), ("mmlu", "choice", 4, None),
    ("arc", "choice", 5, None), ("math", "any", None, None),
    ("amc", "any", None, None),
]


def bench_format(bench):
    """"int999" (aime), "int", "choice", "any", or None (unknown)."""
    b = (bench or "").lower()
    for prefix, kind, lo, hi in BENCH_FORMATS:
        if b.startswith(prefix):
            return "int999" if kind == "int" and hi == 999 else kind
    return None


# ---- answers --------------------------------------------------------------

_TEXT_RE = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")
_FRAC_RE = re.compile(r"\\frac\{(-?\d+)\}\{(-?\d+)\}")


def normalize(ans):
    """A canonical string for one answer, close to plugins/common's
    tg_answer_normalize: spacing, $, \\left/\\right, \\text{}, \\dfrac,
    numeric \\frac{a}{b} -> a/b, "x = 5" -> 5, leading zeros, thousands
    commas and trailing .0 on numbers."""
    if ans is None:
        return ""
    s = str(ans).strip()
    for a, b in (("\\left", ""), ("\\right", ""), ("\\!", ""), ("\\,", ""),
                 ("\\;", ""), ("\\ ", ""), ("$", ""), ("\\dfrac", "\\frac"),
                 ("\\tfrac", "\\frac"), ("^\\circ", ""), ("^{\\circ}", ""),
                 ("\\%", ""), ("%", "")):
        s = s.replace(a, b)
    s = _TEXT_RE.sub(r"\1", s)
    s = re.sub(r"\s+", "", s)
    if re.match(r"^[A-Za-z]\w*=", s):
        s = s.split("=", 1)[1]
    m = re.match(r"^\(([A-Za-z])\)$", s)
    if m:
        s = m.group(1)
    s = _FRAC_RE.sub(r"\1/\2", s)
    if re.match(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$", s):
        s = s.replace(",", "")
    m = re.match(r"^(-?)(\d+)(?:\.(\d*))?$", s)
    if m:
        sign, whole, frac = m.group(1), m.group(2).lstrip("0") or "0", \
            (m.group(3) or "").rstrip("0")
        s = sign + whole + ("." + frac if frac else "")
        if s == "-0":
            s = "0"
    return s


def _number(s):
    """Value of a normalized rational ("12", "0.5", "1/2"), else None."""
    from fractions import Fraction
    try:
        if re.match(r"^-?\d+(\.\d+)?$", s):
            return Fraction(s)
        m = re.match(r"^(-?\d+)/(\d+)$", s)
        if m and int(m.group(2)) != 0:
            return Fraction(int(m.group(1)), int(m.group(2)))
    except (ValueError, ZeroDivisionError):
        pass
    return None


def has_answer(pred):
    return not (pred is None or (isinstance(pred, str)
                                 and pred.strip() in NO_ANSWER))


def answers_equal(a, b):
    """tg_answer_equal's idea: the same after normalization, or the same
    rational value; no answer equals nothing."""
    if not has_answer(a) or not has_answer(b):
        return False
    na, nb = normalize(a), normalize(b)
    if not na or not nb:
        return False
    if na == nb:
        return True
    va, vb = _number(na), _number(nb)
    return va is not None and va == vb


def fits(ans, kind):
    """Whether a raw answer fits a bench's format (plugins/common's
    tg_answer_fits): aime is an integer 0-999, a choice one letter."""
    a = normalize(ans)
    if not a:
        return False
    if kind == "int":
        return re.match(r"^-?\d+$", a) is not None
    if kind == "int999":
        return re.match(r"^\d+$", a) is not None and int(a) <= 999
    if kind == "choice":
        return re.match(r"^[A-Za-z]$", a) is not None
    return True


def boxes(text):
    """Contents of every complete \\boxed{...} (nested braces) in text."""
    out = []
    for m in re.finditer(r"\\(?:boxed|fbox)\s*\{", text or ""):
        i, depth = m.end(), 1
        while i < len(text) and depth:
            if text[i] == "{":
                depth += 1
            elif text[i] == "}":
                depth -= 1
            i += 1
        if depth == 0:
            out.append(text[m.end():i - 1])
    return out


def answer_of_message(msg, kind=None):
    """The final answer of a returned chat message, by answer.h's rules:
    the last box that fits the format, in the content, else in the
    thinking; else "answer is X" in the content."""
    content = msg.get("content") or ""
    reasoning = msg.get("reasoning_content") or ""
    for text in (content, reasoning):
        fit = [b for b in boxes(text) if fits(b, kind)]
        if fit:
            return fit[-1]
    for m in reversed(list(re.finditer(r"answer is[:\s$*\\(]*([^\s$,;*]+)",
                                       content, re.I))):
        a = m.group(1).rstrip(".!?")
        if fits(a, kind):
            return a
    return None


# ---- trace files ----------------------------------------------------------

Sample = collections.namedtuple("Sample", "sample_id tokens pred stop")


class Problem:
    def __init__(self, model, problem, problem_id, answer, bench):
        self.model = model
        self.problem = problem
        self.problem_id = problem_id
        self.answer = answer
        self.bench = bench
        self.samples = []


class TraceFile:
    """One .jsonl / .jsonl.gz file of recorded traces, problems in file
    order, each one's samples ordered by sample_id (as the sim orders
    them)."""

    def __init__(self, path, answers="extractor"):
        self.path = os.path.abspath(path)
        self.name = os.path.basename(path)
        self.problems = []
        # Each sample's answer: by default what the plugins' own
        # extractor reads in it (thinkgate-answers), so that majority@n
        # and the yardstick count the answers the strategies vote with;
        # "recorded" keeps the recorder's pred.
        ours = extracted_answers(self.path) if answers == "extractor" \
            else None
        self.answers = answers
        opener = gzip.open if path.endswith(".gz") else open
        index = {}
        lines = 0
        with opener(path, "rt", encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                r = json.loads(line)
                if ours is not None:
                    r["pred"] = ours[lineno]
                lines += 1
                key = (r["model"], norm_ws(r["problem"]))
                p = index.get(key)
                if p is None:
                    p = Problem(r["model"], r["problem"],
                                r.get("problem_id", str(len(index))),
                                r.get("answer"), r.get("bench"))
                    index[key] = p
                    self.problems.append(p)
                tokens = r.get("completion_tokens")
                if tokens is None:
                    # Without the field the sim counts its own pieces;
                    # this is only an estimate.
                    tokens = max(1, len(re.findall(r"\s*\S+", r["output"])))
                p.samples.append(Sample(
                    r.get("sample_id", len(p.samples)), int(tokens),
                    r.get("pred"),
                    str(r.get("finish_reason")) not in CUTOFF))
        for p in self.problems:
            p.samples.sort(key=lambda s: s.sample_id)
        self.lines = lines
        self.keys = set(index)
        self.bench = next((p.bench for p in self.problems if p.bench), None)


ANSWERS_TOOL = os.path.join(BUILD, "bin", "thinkgate-answers")


def extracted_answers(path):
    """{line number: answer or None} as the plugins' extractor reads each
    trace of the file (bench/answers.c, built by make)."""
    if not os.access(ANSWERS_TOOL, os.X_OK):
        raise SystemExit("%s is not built (make); --recorded-answers uses "
                         "the recorder's pred instead" % ANSWERS_TOOL)
    out = subprocess.run([ANSWERS_TOOL, path], check=True,
                         stdout=subprocess.PIPE).stdout
    res = {}
    for line in out.splitlines():
        rec = json.loads(line)
        res[rec["line"]] = rec["answer"]
    return res


def norm_ws(s):
    return " ".join(s.split())


def trace_files(path):
    """The trace files a --traces argument names, sorted."""
    if os.path.isdir(path):
        out = sorted(glob.glob(os.path.join(path, "*.jsonl"))
                     + glob.glob(os.path.join(path, "*.jsonl.gz")))
    elif os.path.exists(path):
        out = [path]
    else:
        raise FileNotFoundError(path)
    return out


# ---- expected figures -----------------------------------------------------

Expect = collections.namedtuple("Expect", "winner answer tokens correct note")


def keep_first(tf, m):
    """Keeps tf's first m problems in numeric order of their ids (a
    sample for a slow judge; the recording's figures then cover those
    only)."""
    keep = {id(p) for p in sorted(tf.problems, key=_problem_key)[:m]}
    tf.problems = [p for p in tf.problems if id(p) in keep]


def _problem_key(p):
    pid = str(p.problem_id)
    return (0, int(pid), "") if pid.isdigit() else (1, 0, pid)


def keep_half(tf, half):
    """Keeps tf's problems at even or odd positions of its problem ids in
    numeric order (tools/auto_prior.py --half's split)."""
    ordered = sorted(tf.problems, key=_problem_key)
    keep = {id(p) for p in ordered[0 if half == "even" else 1::2]}
    tf.problems = [p for p in tf.problems if id(p) in keep]


def _traces(p, n, max_tokens):
    """(index, tokens, answer-or-None, stop) of the n traces of a request."""
    out = []
    for i in range(n):
        s = p.samples[i % len(p.samples)]
        tokens, stop, pred = s.tokens, s.stop, s.pred
        if tokens > max_tokens:
            tokens, stop = max_tokens, False
        out.append((i, tokens, pred if has_answer(pred) else None, stop))
    return out


def _vote(voters):
    """Leader of voters (in finish order): (answer, first voter index);
    ties to the group whose first voter finished first."""
    groups = []     # [answer, count, first index]
    for i, _, a, _ in voters:
        for g in groups:
            if answers_equal(g[0], a):
                g[1] += 1
                break
        else:
            groups.append([a, 1, i])
    if not groups:
        return None, None, groups
    lead = groups[0]
    for g in groups[1:]:
        if g[1] > lead[1]:
            lead = g
    return lead[0], lead[2], groups


def _settled(groups, lead, running):
    """self_consistency's early_stop=exact rule (tg_sc_settled)."""
    c = lead[1]
    if running > c:
        return False
    li = groups.index(lead)
    for gi, g in enumerate(groups):
        if g is lead:
            continue
        if g[1] + running > c or (g[1] + running == c and gi < li):
            return False
    return True


def expect(p, strategy, n=8, k=1, early_stop="none", max_tokens=40000):
    """The winner, answer, tokens and correctness a strategy must reach on
    problem p, from the recording alone."""
    traces = _traces(p, n, max_tokens)
    order = sorted(traces, key=lambda t: (t[1], t[0]))
    total = sum(t[1] for t in traces)
    note = ""
    if strategy == "passthrough":
        t = traces[0]
        return Expect(0, t[2], t[1], answers_equal(t[2], p.answer), "")
    if strategy == "ffs":
        qual = []
        for t in order:
            if t[2] is not None and t[3]:
                qual.append(t)
                if len(qual) == k:
                    ans, win, _ = _vote(qual)
                    tokens = sum(min(x[1], t[1]) for x in traces)
                    return Expect(win, ans, tokens,
                                  answers_equal(ans, p.answer), "")
        ans, win, _ = _vote([t for t in order if t[2] is not None])
        if win is None:
            win, note = order[0][0], "first_finished"
        else:
            note = "vote"
        return Expect(win, ans, total, answers_equal(ans, p.answer), note)
    if strategy == "self_consistency":
        ans, win, groups = _vote([t for t in order if t[2] is not None])
        tokens = total
        if early_stop == "exact":
            done = []
            for j, t in enumerate(order):
                done.append(t)
                a, w, gs = _vote([x for x in done if x[2] is not None])
                if w is None:
                    continue
                lead = next(g for g in gs if g[2] == w)
                if _settled(gs, lead, len(order) - j - 1):
                    tokens = sum(min(x[1], t[1]) for x in traces)
                    break
        if win is None:
            win, note = order[0][0], "first_finished"
        return Expect(win, ans, tokens, answers_equal(ans, p.answer), note)
    return None


def expect_file(tf, cfg, max_tokens=40000):
    """Per-problem Expect list and totals for a file and a configuration
    ({"strategy", "n", "k", "early_stop"}), or None for a strategy whose
    figures cannot be worked out from the recording (or a thinking budget:
    its cuts are answered by the sim's continuation rule)."""
    if cfg.get("budget"):
        return None
    ex = [expect(p, cfg["strategy"], cfg.get("n", 8), cfg.get("k", 1),
                 cfg.get("early_stop", "none"), max_tokens)
          for p in tf.problems]
    if any(e is None for e in ex):
        return None
    return ex


# ---- reasoning effort -------------------------------------------------------

# The engine's default thinkgate_effort mapping (engine/core/effort.c,
# README "Reasoning effort"): level -> (thinking budget or None, the
# strategy that runs instead of the location's or None, its options).
# The bench configures nothing for effort, as a user keeping the defaults
# would; these rows only name the configuration and the expected figures,
# and every reply's thinkgate object is checked against them.
EFFORT_LEVELS = ("minimal", "low", "medium", "high")
EFFORT_DEFAULTS = {
    "minimal": (256, None, {}),
    "low": (1024, None, {}),
    "medium": (4096, None, {}),
    "high": (None, "self_consistency", {"n": 4, "early_stop": "exact"}),
}


def effort_config(level, location_strategy="passthrough"):
    """The configuration a request with reasoning_effort=level runs under
    the default mapping in a location whose strategy is
    location_strategy: {"effort", "budget", "strategy", "n",
    "early_stop", "client_strategy": False} (the strategy is the
    location's, never named by the client, so that the level's own
    strategy applies); "none" (no reasoning_effort field): the location's
    strategy, unbounded."""
    if level == "none":
        return {"strategy": location_strategy, "n": 1,
                "client_strategy": False, "effort": None, "budget": None}
    budget, strategy, options = EFFORT_DEFAULTS[level]
    cfg = {"effort": level, "budget": budget,
           "strategy": strategy or location_strategy, "n": 1,
           "client_strategy": False}
    cfg.update(options)
    return cfg


def effort_check(cfg, tg):
    """None when a reply's thinkgate object shows the level and budget the
    configuration expects, else what differs."""
    if "effort" not in cfg:
        return None
    want = cfg["effort"]
    if want is None:
        return None if "effort" not in tg else \
            "effort %r reported for a request without one" % tg["effort"]
    if tg.get("effort") != want:
        return "effort %r reported, %r sent" % (tg.get("effort"), want)
    if tg.get("effort_native"):
        return "the backend got the level natively (native_effort)"
    if tg.get("thinking_budget") != cfg.get("budget"):
        return "thinking_budget %r reported, %r expected (the default " \
               "mapping)" % (tg.get("thinking_budget"), cfg.get("budget"))
    if not cfg.get("client_strategy", True) \
            and tg.get("strategy") not in (None, cfg["strategy"]):
        return "strategy %r ran, %r expected" % (tg.get("strategy"),
                                                cfg["strategy"])
    return None


# ---- yardstick and judge quality ------------------------------------------

def yardstick(tf, n, max_tokens=40000):
    """Majority over k random traces of the n a request starts, k = 1..n,
    worked out exactly from the recording (every k-subset of the n traces,
    equally likely): [(k, correct, tokens)], correct the expected number
    of problems right, tokens the expected sum of the k traces' lengths.
    Ties go to the answer whose first voter is shortest, as _vote."""
    import itertools
    out = []
    for k in range(1, n + 1):
        correct = tokens = 0.0
        for p in tf.problems:
            traces = _traces(p, n, max_tokens)
            subsets = list(itertools.combinations(traces, k))
            for sub in subsets:
                order = sorted(sub, key=lambda t: (t[1], t[0]))
                ans, _, _ = _vote([t for t in order if t[2] is not None])
                correct += answers_equal(ans, p.answer) / len(subsets)
                tokens += sum(t[1] for t in sub) / len(subsets)
        out.append((k, correct, tokens))
    return out


def on_yardstick(points, tokens):
    """The yardstick's accuracy at equal tokens: linear between its
    points; None outside them (a point left of k=1 or right of k=n
    cannot be placed)."""
    for (_, a0, t0), (_, a1, t1) in zip(points, points[1:]):
        if t0 <= tokens <= t1:
            return a0 + (a1 - a0) * ((tokens - t0) / (t1 - t0)
                                     if t1 > t0 else 0.0)
    return None


def auroc(scores, labels):
    """P(score of a positive > score of a negative), ties count half;
    None without both kinds."""
    pos = sum(1 for x in labels if x)
    neg = len(labels) - pos
    if not pos or not neg:
        return None
    pairs = sorted(zip(scores, labels))
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        rank_sum += (i + 1 + j) / 2.0 * sum(1 for _, x in pairs[i:j] if x)
        i = j
    return (rank_sum - pos * (pos + 1) / 2.0) / (pos * neg)


# ---- the processes --------------------------------------------------------

# The simulated judge (thinkgate-sim --judge-model): its model name and
# the pool the gateway reaches it through.
JUDGE_MODEL = "thinkgate-sim-judge"
JUDGE_POOL = "judge"

# A real judge (--llm-judge): SmolLM2-135M-Instruct (mk/models.sh) served
# by llama.cpp (llama-cpp-python[server]), reached through the same pool.
LLM_JUDGE_FILE = harness.SMOLLM_FILE
LLM_JUDGE_MODEL = "smollm2"


def llm_judge_missing():
    """Why the llama.cpp judge cannot run here, or None."""
    return harness.llama_missing(LLM_JUDGE_FILE)

SERVER = """
        location /v1/ {{
            thinkgate_pass reasoners;
            thinkgate_client_strategy on;
            thinkgate_timeout {timeout}s;
        }}
        location = /thinkgate/status {{
            thinkgate_status;
        }}
"""


class Stack:
    """thinkgate-sim replaying the given trace files, thinkgated with
    build/plugins, one nginx worker with a client-strategy location."""

    def __init__(self, files, sim_args=(), inflight=4096, timeout_s=600,
                 workers=1, plugins=(), judge_model=None, embedder=None,
                 llm_judge=False):
        self.procs = []
        self.tmp = None
        try:
            if len(files) == 1:
                traces = files[0]
            else:
                # The sim takes one file or one directory: link the files
                # into a private one.
                self.tmp = tempfile.mkdtemp(prefix="tg-strategies-")
                for f in files:
                    os.symlink(os.path.abspath(f),
                               os.path.join(self.tmp, os.path.basename(f)))
                traces = self.tmp
            self.sim = harness.start_sim("--traces", traces, *sim_args)
            self.procs.append(self.sim)
            self.engine = harness.start_engine(args=["--log-level", "warn"])
            self.procs.append(self.engine)
            http = ("    thinkgate_backend sim %s max_inflight=%d;\n"
                    "    thinkgate_pool reasoners sim;\n"
                    % (self.sim.url, inflight))
            if judge_model:
                # The same sim plays the judge (--judge-model): a backend
                # whose model= names it, in a pool of its own.
                http += ("    thinkgate_backend judge %s model=%s "
                         "max_inflight=%d;\n"
                         "    thinkgate_pool %s judge;\n"
                         % (self.sim.url, judge_model, inflight, JUDGE_POOL))
            if llm_judge:
                # SmolLM2 on llama.cpp's server, one request at a time
                # (it queues the rest): deepprune's Yes/No prompt holds
                # two prefixes.
                self.llama = harness.start_llama(LLM_JUDGE_FILE, n_ctx=4096,
                                                 timeout=120)
                self.procs.append(self.llama)
                http += ("    thinkgate_backend judge %s model=%s "
                         "idle_timeout=600s;\n"
                         "    thinkgate_pool %s judge;\n"
                         % (self.llama.url, LLM_JUDGE_MODEL, JUDGE_POOL))
            if embedder:
                # judge=embed: the engine's all-MiniLM-L6-v2
                # ("MODEL_DIR [threads=N ...]", thinkgate_embedder's
                # arguments).
                http += "    thinkgate_embedder %s;\n" % embedder
            # Preload the plugins in use (a module without the directive
            # loads them on demand).
            load = [p for p in plugins if os.path.exists(
                os.path.join(PLUGIN_DIR, p + ".so"))]
            try:
                self.nginx = harness.start_nginx(
                    self.engine.sock, http + (
                        "    thinkgate_plugin %s;\n" % " ".join(load)
                        if load else ""),
                    SERVER.format(timeout=timeout_s), workers=workers)
            except RuntimeError as e:
                if "unknown directive" not in str(e):
                    raise
                self.nginx = harness.start_nginx(
                    self.engine.sock, http,
                    SERVER.format(timeout=timeout_s), workers=workers)
            self.procs.append(self.nginx)
            self.port = self.nginx.port
            self.wait_ready()
        except Exception:
            self.close()
            raise

    def wait_ready(self, timeout=15.0):
        """Until the nginx worker has registered with the engine: before
        that, requests get 503 "engine unavailable"."""
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            c = http.client.HTTPConnection("127.0.0.1", self.port,
                                           timeout=5)
            try:
                c.request("GET", "/v1/models")
                r = c.getresponse()
                r.read()
                if r.status == 200:
                    return
                last = r.status
            except (OSError, http.client.HTTPException) as e:
                last = e
            finally:
                c.close()
            time.sleep(0.05)
        raise RuntimeError("the gateway did not answer /v1/models with 200 "
                           "in %.0f s (last: %s)" % (timeout, last))

    def sim_call(self, method, path):
        c = http.client.HTTPConnection("127.0.0.1", self.sim.port,
                                       timeout=30)
        try:
            c.request(method, path)
            r = c.getresponse()
            return json.loads(r.read())
        finally:
            c.close()

    def stats(self):
        return self.sim_call("GET", "/sim/stats")

    def judge_log(self):
        """The sim judge's answers since the last reset: {p_yes, same}."""
        return self.sim_call("GET", "/sim/judge")

    def reset(self):
        return self.sim_call("POST", "/sim/reset")

    def wait_idle(self, timeout=10.0):
        """Stats once the sim holds no stream (or the timeout passed)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.stats()
            if st.get("open_streams", 0) == 0 or time.monotonic() > deadline:
                return st
            time.sleep(0.05)

    def dump(self, out=sys.stderr):
        for p in self.procs:
            print("---- %s log ----\n%s" % (p.name, p.log()[-3000:]),
                  file=out)
        try:
            with open(self.nginx.error_log, errors="replace") as f:
                print("---- nginx error.log ----\n" + f.read()[-3000:],
                      file=out)
        except (OSError, AttributeError):
            pass

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()
        self.procs = []
        if self.tmp:
            for f in os.listdir(self.tmp):
                os.unlink(os.path.join(self.tmp, f))
            os.rmdir(self.tmp)
            self.tmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def sim_groups(files):
    """Splits loaded trace files into groups that one sim can replay
    together: no two files of a group record the same problem of the same
    model (the sim would pool their samples)."""
    groups = []
    for tf in files:
        for g in groups:
            if not any(tf.keys & o.keys for o in g):
                g.append(tf)
                break
        else:
            groups.append([tf])
    return groups


# ---- output and limits ----------------------------------------------------

def raise_nofile(want=65536):
    """Raises the soft RLIMIT_NOFILE (children inherit it)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


# machine() and write_json() are bench/lib.py's: one JSON format for
# every benchmark.
from lib import machine, write_json  # noqa: E402,F401


# ---- the client -----------------------------------------------------------

# The strategies whose option table has `bench` (the answer format): the
# request names the file's benchmark to them, as a client that knows it
# would.  auto was missing here, so its votes took answers no AIME
# problem can have (an integer past 999) where self_consistency, told the
# format, did not.
BENCH_OPTION = ("ffs", "self_consistency", "deepprune", "trimr", "auto",
                "symbolic_moe")

# The strategies without an `n` option (symbolic_moe sizes its run by k
# experts and samples each): the request names none for them.
NO_N_OPTION = ("passthrough", "symbolic_moe")


def thinkgate_field(cfg, bench):
    """The request's "thinkgate" object, or None when it would be empty.
    A configuration with client_strategy false (an effort level left to
    the location) names no strategy and none of its n, k, early_stop."""
    tg = {}
    if cfg.get("client_strategy", True):
        tg["strategy"] = cfg["strategy"]
        if cfg["strategy"] not in NO_N_OPTION:
            tg["n"] = cfg.get("n", 8)
        if cfg.get("k", 1) != 1:
            tg["k"] = cfg["k"]
        if cfg.get("early_stop", "none") != "none":
            tg["early_stop"] = cfg["early_stop"]
    if bench and cfg.get("bench", True) and bench_format(bench) \
            and cfg["strategy"] in BENCH_OPTION:
        tg["bench"] = bench
    for key, v in (cfg.get("extra") or {}).items():
        tg[key] = v
    return tg or None


def request_body(p, cfg, max_tokens):
    body = {"model": p.model,
            "messages": [{"role": "user", "content": p.problem}],
            "max_tokens": max_tokens, "seed": 0}
    tg = thinkgate_field(cfg, p.bench)
    if tg is not None:
        body["thinkgate"] = tg
    if cfg.get("effort"):
        body["reasoning_effort"] = cfg["effort"]
    return body


def post(conn, body, timeout):
    data = json.dumps(body).encode()
    conn.request("POST", "/v1/chat/completions", body=data,
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    raw = r.read()
    try:
        doc = json.loads(raw)
    except ValueError:
        doc = {"error": {"message": raw[:300].decode(errors="replace")}}
    return r.status, doc


def send_all(port, bodies, concurrency, timeout=900, ramp_s=0.01):
    """Sends every body (chat completion) through nginx, concurrency at a
    time, keep-alive per client thread.  The first `concurrency` requests
    start ramp_s apart, so that the sim accepts each request's traces
    together rather than hundreds of connections in one burst (its listen
    backlog is libevent's 128; a dropped SYN costs a 1 s retransmit, and
    a trace that starts late no longer finishes in length order).
    Returns [(status, doc)] in the order of bodies."""
    results = [None] * len(bodies)
    nxt = [0]
    lock = threading.Lock()

    def worker(delay):
        conn = None
        time.sleep(delay)
        while True:
            with lock:
                i = nxt[0]
                nxt[0] += 1
            if i >= len(bodies):
                break
            for attempt in range(2):
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", port,
                                                      timeout=timeout)
                try:
                    results[i] = post(conn, bodies[i], timeout)
                    break
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = None
                    results[i] = (0, {"error": {"message": repr(e)}})
        if conn is not None:
            conn.close()

    threads = [threading.Thread(target=worker, args=(i * ramp_s,),
                                daemon=True)
               for i in range(max(1, min(concurrency, len(bodies))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def measured_answer(doc, kind=None):
    """(answer, winner, thinkgate object) of one chat completion: the
    plugin's own answer when the thinkgate object has one, else the one
    extracted from the returned message."""
    tg = doc.get("thinkgate") or {}
    if "answer" in tg:
        ans = tg["answer"]
    else:
        try:
            ans = answer_of_message(doc["choices"][0]["message"], kind)
        except (KeyError, IndexError, TypeError):
            ans = None
    return ans, tg.get("winner"), tg


# Per-problem counters a plugin may report in its thinkgate object (trimr;
# deepprune's traces_pruned), summed per file when present.
TG_SUMS = ("cut_tokens", "verifier_calls", "verifier_tokens",
           "no_answer_cuts", "traces_pruned", "judge_calls", "judge_ms",
           "judge_failures")
# Counters thinkgate_counts() works out itself (the host's budget_cuts
# list, deepprune's clusters list, counted), summed the same way.
TG_COUNTS = ("budget_cuts", "clusters_formed", "judge_degraded")


def thinkgate_counts(tgs_and_answers):
    """What the plugins' thinkgate objects say about triggers, read
    generically: {"triggers": {name: count} (per request from `trigger`,
    or per trace from a `triggers` object), "cuts_no_answer": requests
    cut (n = 1) whose answer came back empty, the sums of TG_SUMS,
    budget_cuts: the traces reasoning_effort's budget cut, and
    clusters_formed: deepprune's clusters};
    only the keys some object carried."""
    out = {}
    triggers = collections.Counter()
    no_answer = 0
    sums = {}
    for tg, ans in tgs_and_answers:
        if "trigger" in tg:
            trig = str(tg["trigger"])
            triggers[trig] += 1
            if trig not in ("none", "None") and not has_answer(ans):
                no_answer += 1
        elif isinstance(tg.get("triggers"), dict):
            # Several traces (trimr n > 1): each trace's trigger, counted.
            for trig, c in tg["triggers"].items():
                if isinstance(c, int) and not isinstance(c, bool):
                    triggers[str(trig)] += c
        for key in TG_SUMS:
            v = tg.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                sums[key] = sums.get(key, 0) + v
        if isinstance(tg.get("budget_cuts"), list):
            # reasoning_effort's budget forcing: the traces cut.
            sums["budget_cuts"] = sums.get("budget_cuts", 0) \
                + len(tg["budget_cuts"])
        if tg.get("degraded") is True:
            # deepprune: a judge that failed or timed out; no more pruning.
            sums["judge_degraded"] = sums.get("judge_degraded", 0) + 1
        if isinstance(tg.get("clusters"), list):
            # deepprune: the lines of reasoning its judge told apart.
            sums["clusters_formed"] = sums.get("clusters_formed", 0) \
                + len(tg["clusters"])
    if triggers:
        out["triggers"] = dict(triggers)
        out["cuts_no_answer"] = no_answer
    out.update(sums)
    return out


def run_file(stack, tf, cfg, concurrency, max_tokens=40000,
             tokens_per_step=1):
    """Sends every problem of tf through the gateway with configuration
    cfg; returns the per-file record (measured and expected)."""
    bodies = [request_body(p, cfg, max_tokens) for p in tf.problems]
    before = stack.wait_idle()
    stack.reset()
    t0 = time.monotonic()
    res = send_all(stack.port, bodies, concurrency)
    wall = time.monotonic() - t0
    st = stack.wait_idle()
    ex = expect_file(tf, cfg, max_tokens)

    n = len(tf.problems)
    correct = errors = counted = 0
    engine_tokens = 0
    mismatches = []
    err_samples = []
    tgs = []
    for i, (p, (status, doc)) in enumerate(zip(tf.problems, res)):
        if status != 200 or "error" in doc:
            errors += 1
            if len(err_samples) < 3:
                err_samples.append("%s: %s" % (
                    status, (doc.get("error") or {}).get("message")))
            continue
        ans, winner, tg = measured_answer(doc, bench_format(p.bench))
        bad = effort_check(cfg, tg)
        if bad is not None:
            # Not the configuration the record would be labelled with.
            errors += 1
            if len(err_samples) < 3:
                err_samples.append("problem %s: %s" % (p.problem_id, bad))
            continue
        tgs.append((tg, ans))
        ok = answers_equal(ans, p.answer)
        correct += ok
        if isinstance(tg.get("tokens"), int):
            engine_tokens += tg["tokens"]
            counted += 1
        if ex is not None:
            e = ex[i]
            if (winner is not None and winner != e.winner) \
                    or not (answers_equal(ans, e.answer)
                            or (not has_answer(ans)
                                and not has_answer(e.answer))):
                lens = [p.samples[j % len(p.samples)].tokens
                        for j in range(cfg.get("n", 8))]
                step = (lambda j: None if not isinstance(j, int)
                        or not 0 <= j < len(lens)
                        else -(-lens[j] // tokens_per_step))
                mismatches.append({
                    # Decode steps between the two winners' last tokens:
                    # 0, the same step, whose order is the event loop's;
                    # 1, the traces of a request (one HTTP request each)
                    # can start a step apart.
                    "steps_apart": None if step(winner) is None
                    or step(e.winner) is None
                    else abs(step(winner) - step(e.winner)),
                    "problem_id": p.problem_id, "winner": winner,
                    "expected_winner": e.winner, "answer": ans,
                    "expected_answer": e.answer,
                    "lengths": lens,
                    "thinkgate": tg})
    rec = {"file": tf.name, "strategy": cfg["strategy"],
           "n": 1 if cfg["strategy"] == "passthrough" else cfg.get("n", 8),
           "problems": n, "correct": correct,
           "accuracy": round(correct / n, 4) if n else 0.0,
           "tokens": st.get("tokens_generated"),
           "tokens_after_cancel": st.get("tokens_after_close"),
           "wall_s": round(wall, 2)}
    if cfg.get("k", 1) != 1:
        rec["k"] = cfg["k"]
    if cfg.get("early_stop", "none") != "none":
        rec["early_stop"] = cfg["early_stop"]
    if "effort" in cfg:
        rec["effort"] = cfg["effort"] or "none"
        rec["thinking_budget"] = cfg.get("budget")
    rec["errors"] = errors
    if err_samples:
        rec["error_samples"] = err_samples
    # Tokens the sim generated that never reached the engine (the
    # thinkgate object's tokens): produced between the plugin's cancel and
    # the sim seeing the connection close.
    full = counted == n and errors == 0
    rec["engine_tokens"] = engine_tokens if full else None
    rec["tokens_unread"] = (st.get("tokens_generated", 0) - engine_tokens
                            if full else None)
    rec["open_streams"] = st.get("open_streams")
    rec["open_streams_before"] = before.get("open_streams")
    rec["cancelled_streams"] = st.get("cancelled_streams")
    rec["completed_streams"] = st.get("completed_streams")
    rec["sim_requests"] = st.get("requests")
    rec.update(thinkgate_counts(tgs))
    if ex is not None:
        et = sum(e.tokens for e in ex)
        ec = sum(e.correct for e in ex)
        rec["expected_correct"] = ec
        rec["expected_accuracy"] = round(ec / n, 4) if n else 0.0
        rec["expected_tokens"] = et
        rec["token_diff"] = (round((rec["tokens"] - et) / et, 4)
                             if et and rec["tokens"] is not None else None)
        rec["within_3pct"] = (rec["token_diff"] is not None
                              and abs(rec["token_diff"]) <= 0.03)
        rec["mismatches"] = mismatches
    return rec


# ---- trace files the plugins have never seen --------------------------------

_ITEMS = ["apples", "marbles", "stamps", "coins", "tiles", "beads"]
_WORDS = ("so the total is then we check it again carefully and the sum "
          "stays the same unless the groups differ which they do not "
          "hmm let me recount each group one more time to be sure").split()


def _reasoning(rng, tokens, stated):
    """About `tokens` words of musing that states the answers in `stated`
    (the last one last)."""
    parts, n = [], 0
    per = max(1, tokens // (len(stated) + 1))
    for j, a in enumerate(stated):
        while n < per * (j + 1) - 12:
            w = rng.choice(_WORDS)
            parts.append(w)
            n += 1
        parts.append("\n\nWait, so far that gives %d.\n\n" % a)
        n += 8
    while n < tokens:
        parts.append(rng.choice(_WORDS))
        n += 1
    return " ".join(parts)


def write_unseen(path, problems=24, samples=8, seed=7, model="Unseen",
                 bench="aime-unseen"):
    """Writes a trace file in ../shared/traces' format with invented
    problems (integer answers 0-999) and invented traces: lengths 800 to
    24,000 tokens, wrong traces longer on average, some without an answer
    (pred NO_ANSWER: thinking cut off, or an answer part without a box),
    some cut off (finish_reason CUTOFF) with an early box.  Returns the
    path."""
    import random
    rng = random.Random(seed)
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for pi in range(problems):
            a, b, c = rng.randint(10, 99), rng.randint(2, 9), \
                rng.randint(3, 19)
            d = rng.randint(1, a)
            gold = a + b * c - d
            item = rng.choice(_ITEMS)
            text = ("Problem %d. Sam has %d %s. Sam gets %d bags with %d %s "
                    "in each, then gives away %d %s. How many %s does Sam "
                    "have now? Give the answer as an integer from 0 to 999."
                    % (pi, a, item, b, c, item, d, item, item))
            p_right = rng.uniform(0.2, 0.9)
            for si in range(samples):
                right = rng.random() < p_right
                kind = rng.random()
                if right:
                    tokens = int(rng.uniform(800, 14000))
                    ans = gold
                else:
                    tokens = int(rng.uniform(2500, 24000))
                    ans = (gold + rng.choice([-3, -1, 1, 2, 7, 10, 100])) \
                        % 1000
                stated = [(ans + rng.randint(-9, 9)) % 1000
                          for _ in range(rng.randint(0, 3))]
                finish = "STOP"
                if kind < 0.06:
                    # Thinking cut off at the budget: no </think>, no answer.
                    out = _reasoning(rng, tokens, stated)
                    pred, finish = "NO_ANSWER", "CUTOFF"
                elif kind < 0.10:
                    # Finished, but the answer part never boxes a number.
                    out = (_reasoning(rng, tokens - 40, stated)
                           + "</think>\n\nI could not settle on a single "
                           "value for this problem.")
                    pred = "NO_ANSWER"
                elif kind < 0.14:
                    # Boxed before the cut-off; the recording says CUTOFF.
                    out = (_reasoning(rng, tokens - 20, stated)
                           + " so \\boxed{%d} and then" % ans)
                    pred, finish = ans, "CUTOFF"
                else:
                    box = rng.choice(["\\boxed{%d}", "\\boxed{ %d }",
                                      "\\boxed{%03d}"]) % ans
                    out = (_reasoning(rng, tokens - 60, stated)
                           + " The answer is %s.\n" % box + "</think>\n\n"
                           "Sam ends with %d - so the answer is "
                           "$\\boxed{%d}$." % (ans, ans))
                    pred = ans
                f.write(json.dumps({
                    "model": model, "bench": bench, "problem_id": str(pi),
                    "sample_id": si, "problem": text, "answer": gold,
                    "pred": pred, "completion_tokens": tokens,
                    "finish_reason": finish, "output": out}) + "\n")
    return path
