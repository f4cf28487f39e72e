"""Skill profiles for Symbolic-MoE (arXiv 2503.05641), from recorded
traces: the lexicon annotator, the LLM annotator (an OpenAI-compatible
endpoint), the profile, recruitment and the split of problems into a
profile half and a held-out half.

The lexicon is the plugin's own table, read out of plugins/common/lexicon.c
(the rows between its marker comments), so the tool and the plugin
annotate a problem with the same keywords.  Recruitment follows the
plugin (plugins/common/skills.c) step for step, random draws included
(splitmix64), so a seed picks the same experts in both.
"""
import gzip
import json
import math
import os
import re
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
LEXICON_C = os.path.join(ROOT, "plugins", "common", "lexicon.c")
POOL_C = os.path.join(ROOT, "plugins", "symbolic_moe_pool.c")
KEYWORD_MAX = 48       # TG_MOE_KEYWORD_MAX: bytes of a keyword, NUL included
FORMAT = "thinkgate-profile/1"
MAX_KEYWORDS = 5


# ---- the lexicon ------------------------------------------------------------

def load_lexicon(path=LEXICON_C):
    """[(keyword, domain, [stem, ...])] in the C table's order."""
    with open(path) as f:
        text = f.read()
    body = text.split("/* lexicon rows begin */", 1)[1]
    body = body.split("/* lexicon rows end */", 1)[0]
    rows = []
    for m in re.finditer(r'\{\s*"([^"]+)",\s*"([^"]+)",((?:\s*"[^"]*")+)\s*\}',
                         body):
        stems = "".join(re.findall(r'"([^"]*)"', m.group(3)))
        rows.append((m.group(1), m.group(2), stems.split("|")))
    if not rows:
        raise ValueError("%s: no lexicon rows between the markers" % path)
    return rows


def _stem_hits(low, stem):
    """Occurrences of stem at a word start in low (lower-case text)."""
    n = 0
    start = 0
    while True:
        i = low.find(stem, start)
        if i < 0:
            return n
        if i == 0 or not low[i - 1].isalnum():
            n += 1
        start = i + 1


def annotate(lexicon, text):
    """2 to 5 keywords for text, or [] when no stem matches: the domain
    of the best subfield first, then the subfields by hits (ties: table
    order), at most 4, each with at least half the best one's hits."""
    low = text.lower()
    hits = []
    for i, (kw, dom, stems) in enumerate(lexicon):
        h = sum(_stem_hits(low, s) for s in stems if s)
        if h > 0:
            hits.append((-h, i))
    if not hits:
        return []
    hits.sort()
    best = -hits[0][0]
    subs = [lexicon[i][0] for h, i in hits[:MAX_KEYWORDS - 1]
            if -h * 2 >= best]
    return [lexicon[hits[0][1]][1]] + subs


# ---- the LLM annotator (as plugins/symbolic_moe_pool.c) ---------------------

def annotator_instruction(path=POOL_C):
    """The annotator's instruction, read out of the plugin's source (the
    C string between its marker comments), so both ask the same words."""
    with open(path) as f:
        text = f.read()
    body = text.split("/* annotator prompt begins */", 1)[1]
    body = body.split("/* annotator prompt ends */", 1)[0]
    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', body)
    if not parts:
        raise ValueError("%s: no instruction between the markers" % path)
    esc = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: esc[m.group(1)], "".join(parts))


_SPACE = " \t\n\v\f\r"
_LEAD = "-*\"'`(["
_TRAIL = ".\"'`*"


def _keyword(item):
    """One cleaned keyword, or None (tg_moe_keyword)."""
    b = item.encode()
    if b":" in b:
        b = b[b.rindex(b":") + 1:]
    while True:
        b = b.lstrip(_SPACE.encode())
        if b[:1] and b[:1] in _LEAD.encode():
            b = b[1:]
            continue
        if b.startswith("\u2022".encode()):
            b = b[3:]
            continue
        m = re.match(rb"[0-9]+[.)]", b)
        if m:
            b = b[m.end():]
            continue
        break
    while b and (chr(b[-1]) in _SPACE + _TRAIL
                 or (b[-1:] == b")" and b"(" not in b)
                 or (b[-1:] == b"]" and b"[" not in b)):
        b = b[:-1]
    if len(b) < 2 or len(b) >= KEYWORD_MAX:
        return None
    if any(c in b"\\{}$=<>|#^" or c < 0x20 for c in b):
        return None
    words = b.split()
    letter = any(chr(c).isalpha() and c < 0x80 or c >= 0x80 for c in b)
    out = b" ".join(words)
    out = bytes(c + 32 if 65 <= c <= 90 else c for c in out)
    if not letter or not 1 <= len(words) <= 4 or len(out) < 2:
        return None
    return out.decode("utf-8", "replace")


def parse_keywords(text, limit=MAX_KEYWORDS):
    """(keywords, over): the reply's keywords as the plugin parses them
    (tg_moe_parse_keywords): what follows the last </think>, cut at
    commas, semicolons and line ends, cleaned, repeats dropped, the first
    limit kept; over counts the good ones past them."""
    text = (text or "").rsplit("</think>", 1)[-1]
    out, over = [], 0
    for item in re.split(r"[,;\n]", text):
        kw = _keyword(item)
        if kw is None or kw in out:
            continue
        if len(out) < limit:
            out.append(kw)
        else:
            over += 1
    return out, over


class PoolAnnotator:
    """Annotates problems through an OpenAI-compatible server: url is its
    base ("http://host:port" or ".../v1"), model the model to ask (None:
    the first of its /v1/models).  Calling it with a problem gives
    (keywords, None), or ([], why) when the request failed or its reply
    held no keyword; the caller falls back to the lexicon."""

    def __init__(self, url, model=None, max_tokens=256, timeout=120):
        base = url.rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise ValueError("annotator %r: neither lexicon nor an http(s) "
                             "URL" % url)
        self.base = base if base.endswith("/v1") else base + "/v1"
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.instruction = annotator_instruction()
        self.model = model or self._first_model()

    def _first_model(self):
        try:
            with urllib.request.urlopen(self.base + "/models",
                                        timeout=self.timeout) as r:
                return json.load(r)["data"][0]["id"]
        except (OSError, ValueError, KeyError, IndexError) as e:
            raise ValueError("annotator %s: cannot list its models (%s); "
                             "name one with --annotator-model"
                             % (self.base, e))

    def __call__(self, problem):
        body = {"model": self.model, "temperature": 0,
                "max_tokens": self.max_tokens,
                "messages": [{"role": "user",
                              "content": self.instruction + problem}]}
        req = urllib.request.Request(
            self.base + "/chat/completions", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                doc = json.load(r)
            content = doc["choices"][0]["message"].get("content") or ""
        except urllib.error.HTTPError as e:
            return [], "HTTP %d" % e.code
        except (OSError, ValueError, KeyError, IndexError, TypeError) as e:
            return [], "failed: %s" % e
        kws, _ = parse_keywords(content)
        if not kws:
            return [], "no keyword in its reply%s" % (
                " (empty)" if not content else "")
        return kws, None


# ---- traces and the split -------------------------------------------------------

def read_traces(path):
    """Every record of a trace file or of every *.jsonl[.gz] in a folder."""
    files = [path]
    if os.path.isdir(path):
        files = sorted(os.path.join(path, f) for f in os.listdir(path)
                       if f.endswith((".jsonl", ".jsonl.gz")))
    rows = []
    for fn in files:
        opener = gzip.open if fn.endswith(".gz") else open
        with opener(fn, "rt") as f:
            rows.extend(json.loads(line) for line in f if line.strip())
    return rows


def bench_of(row):
    b = row["bench"].lower()
    return "gpqa" if b.startswith("gpqa") else "aime" if b.startswith("aime") \
        else b


def _pid_key(pid):
    return (0, int(pid), "") if str(pid).isdigit() else (1, 0, str(pid))


def split_half(rows, half):
    """The problems of one half: per bench, problem ids in numeric order,
    even positions are half "profile", odd positions half "held-out"."""
    keep = set()
    for b in {bench_of(r) for r in rows}:
        pids = sorted({r["problem_id"] for r in rows if bench_of(r) == b},
                      key=_pid_key)
        pick = pids[0::2] if half == "profile" else pids[1::2]
        keep.update((b, p) for p in pick)
    return [r for r in rows if (bench_of(r), r["problem_id"]) in keep]


def correct(row):
    return row.get("pred") is not None \
        and str(row["pred"]).strip() == str(row["answer"]).strip()


# ---- profiles -----------------------------------------------------------------

def build_profiles(rows, lexicon, annotator="lexicon", pool=None,
                   log=None):
    """{"format", "annotator", "problems", "models": {model: {"strength",
    "samples", "skills": {keyword: value}}}}.  Every recorded sample adds
    +1 to each keyword of its problem when right and -1 when wrong,
    divided by the model's samples of that problem, so that a problem
    weighs 1 however many samples it has; strength is the accuracy over
    all samples.  With pool (a PoolAnnotator) the LLM writes each
    problem's keywords, the lexicon standing in where it fails
    ("annotator_fallbacks" counts them; log(problem_id, why) hears
    each)."""
    if annotator != "lexicon" and pool is None:
        raise ValueError("annotator=%s: lexicon, or an http(s) URL of an "
                         "OpenAI-compatible server" % annotator)
    fallbacks = 0
    per = {}
    for r in rows:
        per.setdefault((r["model"], bench_of(r), r["problem_id"]), []).append(r)
    kw_cache = {}
    models = {}
    for (model, b, pid), rs in sorted(per.items()):
        key = (b, pid)
        if key not in kw_cache:
            kws = why = None
            if pool is not None:
                kws, why = pool(rs[0]["problem"])
            if not kws:
                if why is not None:
                    fallbacks += 1
                    if log is not None:
                        log("%s/%s" % key, why)
                kws = annotate(lexicon, rs[0]["problem"])
            kw_cache[key] = kws
        m = models.setdefault(model, {"right": 0, "samples": 0, "skills": {}})
        right = sum(1 for r in rs if correct(r))
        m["right"] += right
        m["samples"] += len(rs)
        v = (2.0 * right - len(rs)) / len(rs)
        for kw in kw_cache[key]:
            m["skills"][kw] = m["skills"].get(kw, 0.0) + v
    out = {}
    for model, m in sorted(models.items()):
        out[model] = {
            "strength": round(m["right"] / m["samples"], 6),
            "samples": m["samples"],
            "skills": {k: round(v, 6) for k, v in sorted(m["skills"].items())},
        }
    prof = {"format": FORMAT, "annotator": annotator,
            "problems": len(kw_cache), "models": out}
    if pool is not None:
        prof["annotator"] = "pool"
        prof["annotator_url"] = pool.base
        prof["annotator_model"] = pool.model
        prof["annotator_fallbacks"] = fallbacks
    return prof


# ---- recruitment (as plugins/common/skills.c) ---------------------------------

MASK64 = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.s = seed & MASK64

    def next(self):
        self.s = (self.s + 0x9E3779B97F4A7C15) & MASK64
        z = self.s
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
        return z ^ (z >> 31)

    def uniform(self):
        """[0, 1) with 53 bits, as tg_skills_uniform()."""
        return (self.next() >> 11) * (1.0 / 9007199254740992.0)


def weights(profiles, models, keywords, temperature):
    """{model: weight} over models: score = the sum of a model's profile
    values over keywords, non-positive scores dropped, softmax of
    score x strength / T.  Uniform over models when no score is
    positive (no keyword, or nobody good at them)."""
    scores = {}
    for m in models:
        p = profiles["models"].get(m)
        if p is None:
            continue
        s = sum(p["skills"].get(k, 0.0) for k in keywords)
        if s > 0:
            scores[m] = s * p["strength"] / temperature
    if not scores:
        return {m: 1.0 / len(models) for m in models}
    top = max(scores.values())
    ex = {m: math.exp(v - top) for m, v in scores.items()}
    tot = sum(ex.values())
    return {m: ex[m] / tot for m in models if m in ex}


def draw(w, k, rng):
    """k experts drawn with replacement from the weights (in the order of
    w's keys)."""
    names = list(w)
    out = []
    for _ in range(k):
        u = rng.uniform()
        acc = 0.0
        pick = names[-1]
        for n in names:
            acc += w[n]
            if u < acc:
                pick = n
                break
        out.append(pick)
    return out
