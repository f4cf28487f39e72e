"""The Redis Lua scripts in lua/, each run through `redis-cli --eval`
against a redis-server this module starts on a free loopback port, in a
temporary directory, without persistence.

The scripts' contracts are in their header comments; these tests hold
them to it.  Skipped when redis-server or redis-cli is missing.
"""
import concurrent.futures
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

import harness

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
LUA = os.path.join(ROOT, "lua")
SCRIPTS = ["prefix_lookup.lua", "prefix_record.lua", "session_get.lua",
           "session_append.lua", "session_unlock.lua",
           "session_refresh.lua", "session_settle.lua", "key_admit.lua",
           "key_charge.lua", "key_refund.lua"]

pytestmark = harness.needs_redis()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    def __init__(self, port):
        self.port = port

    def cli(self, *args):
        p = subprocess.run(["redis-cli", "-p", str(self.port), *args],
                           capture_output=True, text=True, timeout=10)
        return p.stdout.rstrip("\n")

    def ev(self, script, keys=(), args=()):
        """(ok, lines): ok is False for an error reply, whose message is
        lines[0]."""
        cmd = ["redis-cli", "-p", str(self.port), "--eval",
               os.path.join(LUA, script), *keys, ",", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        out = p.stdout.rstrip("\n")
        lines = out.split("\n") if out else []
        err = p.returncode != 0 or (lines and re.match(
            r"^(\(error\) )?(ERR|NOTOWNER|SESSIONBUSY|FENCED|WRONGTYPE) ", lines[0]))
        if lines and lines[0].startswith("(error) "):
            lines[0] = lines[0][len("(error) "):]
        return (not err), lines


@pytest.fixture(scope="module")
def server():
    d = tempfile.mkdtemp(prefix="tg-lua-")
    port = _free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", d,
         "--logfile", os.path.join(d, "redis.log")])
    r = Redis(port)
    deadline = time.time() + 10
    while r.cli("PING") != "PONG":
        assert time.time() < deadline, "redis-server did not start"
        assert proc.poll() is None, "redis-server exited"
        time.sleep(0.05)
    yield r
    proc.kill()
    proc.wait()
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def redis(server):
    server.cli("FLUSHALL")
    return server


def keys(n, tag="p"):
    return ["t:blk:%s%02d" % (tag, i) for i in range(n)]


# -- prefix_record.lua ---------------------------------------------------

def test_record_scores_ttl_and_count(redis):
    ok, out = redis.ev("prefix_record.lua", keys(3), ["b0", "60000", "4",
                                                      "1000"])
    assert ok and out == ["3"]
    for k in keys(3):
        assert redis.cli("ZSCORE", k, "b0") == "1000"
        assert 0 < int(redis.cli("PTTL", k)) <= 60000


def test_record_cap_drops_oldest(redis):
    for i, b in enumerate(["b0", "b1", "b2", "b3"]):
        ok, _ = redis.ev("prefix_record.lua", keys(2),
                         [b, "60000", "2", str(1000 + i)])
        assert ok
    for k in keys(2):
        assert redis.cli("ZRANGE", k, "0", "-1").split("\n") == ["b2", "b3"]


def test_record_rerecord_moves_to_newest(redis):
    redis.ev("prefix_record.lua", keys(1), ["b0", "60000", "2", "1000"])
    redis.ev("prefix_record.lua", keys(1), ["b1", "60000", "2", "2000"])
    redis.ev("prefix_record.lua", keys(1), ["b0", "60000", "2", "3000"])
    redis.ev("prefix_record.lua", keys(1), ["b2", "60000", "2", "4000"])
    assert redis.cli("ZRANGE", keys(1)[0], "0", "-1").split("\n") == \
        ["b0", "b2"]


def test_record_server_clock_by_default(redis):
    ok, _ = redis.ev("prefix_record.lua", keys(1), ["b0", "60000", "0"])
    assert ok
    score = int(redis.cli("ZSCORE", keys(1)[0], "b0"))
    assert abs(score - time.time() * 1000) < 60000


@pytest.mark.parametrize("args,msg", [
    (["", "60000", "2"], "empty backend"),
    (["b0", "0", "2"], "bad ttl_ms"),
    (["b0", "soon", "2"], "bad ttl_ms"),
])
def test_record_bad_arguments(redis, args, msg):
    ok, out = redis.ev("prefix_record.lua", keys(1), args)
    assert not ok and msg in out[0]
    assert redis.cli("EXISTS", keys(1)[0]) == "0", "nothing written"


# -- prefix_lookup.lua ---------------------------------------------------

def test_lookup_nothing(redis):
    assert redis.ev("prefix_lookup.lua", keys(3)) == (True, [])
    assert redis.ev("prefix_lookup.lua", []) == (True, [])


def test_lookup_longest_run_per_backend(redis):
    k = keys(5)
    redis.ev("prefix_record.lua", k, ["b0", "60000", "4", "1000"])
    redis.ev("prefix_record.lua", k[:2], ["b1", "60000", "4", "2000"])
    # b2 holds blocks 0, 1 and 3: its run stops at the gap.
    redis.ev("prefix_record.lua", k[:2] + [k[3]], ["b2", "60000", "4",
                                                   "3000"])
    # b3 holds block 2 only: not a prefix holder at all.
    redis.ev("prefix_record.lua", [k[2]], ["b3", "60000", "4", "4000"])
    ok, out = redis.ev("prefix_lookup.lua", k)
    assert ok
    # Most recently recorded on the first block first.
    assert out == ["b2", "2", "b1", "2", "b0", "5"]


def test_lookup_age_filter(redis):
    k = keys(3)
    redis.ev("prefix_record.lua", k, ["old", "600000", "4", "1000"])
    redis.ev("prefix_record.lua", k[:2], ["new", "600000", "4", "9000"])
    redis.ev("prefix_record.lua", [k[2]], ["new", "600000", "4", "2000"])
    ok, out = redis.ev("prefix_lookup.lua", k, ["10000", "5000"])
    assert ok and out == ["new", "2"], "old records and stale blocks ignored"
    ok, out = redis.ev("prefix_lookup.lua", k, ["0", "5000"])
    assert ok and out == ["new", "3", "old", "3"], "no filter without now"


def test_lookup_is_read_only(redis):
    k = keys(2)
    redis.ev("prefix_record.lua", k, ["b0", "60000", "4", "1000"])
    before = redis.cli("PTTL", k[0])
    redis.ev("prefix_lookup.lua", k + ["t:blk:never"])
    assert redis.cli("EXISTS", "t:blk:never") == "0"
    assert int(redis.cli("PTTL", k[0])) <= int(before)


# -- sessions ------------------------------------------------------------

def skeys(sid="s1"):
    return ["t:sess:{%s}" % sid, "t:sess:{%s}:turns" % sid,
            "t:sess:{%s}:lock" % sid]


def get(r, owner, token="", lease="5000", ttl="60000", sid="s1"):
    return r.ev("session_get.lua", skeys(sid), [owner, token, lease, ttl])


def append(r, owner, turn, token="", cap="0", backend="", sid="s1",
           ttl="60000"):
    return r.ev("session_append.lua", skeys(sid),
                [owner, token, ttl, cap, backend, "1234", turn])


def test_session_new_then_stored(redis):
    assert get(redis, "alice") == (True, ["0", "", "0"])
    assert redis.cli("EXISTS", skeys()[0]) == "0", "a read creates nothing"
    assert append(redis, "alice", '{"role":"user","content":"hi"}',
                  backend="b0") == (True, ["1", "0"])
    assert append(redis, "alice", '{"role":"user","content":"2"}') == \
        (True, ["2", "0"])
    ok, out = get(redis, "alice")
    assert ok and out == ["1", "b0", "0", '{"role":"user","content":"hi"}',
                          '{"role":"user","content":"2"}']
    assert redis.cli("HGET", skeys()[0], "owner") == "alice"
    assert redis.cli("HGET", skeys()[0], "created_ms") == "1234"
    assert 0 < int(redis.cli("PTTL", skeys()[1])) <= 60000


def test_session_other_owner(redis):
    append(redis, "alice", "{}")
    ok, out = get(redis, "mallory", token="t2")
    assert not ok and out[0].startswith("NOTOWNER")
    assert redis.cli("EXISTS", skeys()[2]) == "0", "no lock for a stranger"
    ok, out = append(redis, "mallory", "{}")
    assert not ok and out[0].startswith("NOTOWNER")
    assert redis.cli("LLEN", skeys()[1]) == "1", "nothing written"


def test_session_lock(redis):
    assert get(redis, "alice", token="t1", lease="5000")[0]
    assert redis.cli("GET", skeys()[2]) == "t1"
    assert 0 < int(redis.cli("PTTL", skeys()[2])) <= 5000
    ok, out = get(redis, "alice", token="t2")
    assert not ok and out[0].startswith("SESSIONBUSY")
    assert get(redis, "alice", token="t1")[0], "the holder reads again"
    assert get(redis, "alice")[0], "an unlocked read is never refused"
    ok, out = get(redis, "alice", token="t1", lease="0")
    assert not ok and "lease_ms" in out[0]


def test_session_append_releases_only_own_lock(redis):
    get(redis, "alice", token="t1")
    # A request whose lease ran out and was taken over still stores its
    # turn, and leaves the new holder's lock alone.
    assert append(redis, "alice", "{}", token="t9")[0]
    assert redis.cli("GET", skeys()[2]) == "t1"
    assert append(redis, "alice", "{}", token="t1")[0]
    assert redis.cli("EXISTS", skeys()[2]) == "0"
    assert redis.cli("LLEN", skeys()[1]) == "2"


def test_session_cap(redis):
    for i in range(1, 6):
        ok, out = append(redis, "o", '{"n":%d}' % i, cap="3")
        assert ok and out == [str(min(i, 3)), "1" if i > 3 else "0"]
    ok, out = get(redis, "o")
    assert out == ["1", "", "2", '{"n":3}', '{"n":4}', '{"n":5}']


@pytest.mark.parametrize("args,msg", [
    (["", "", "60000", "0", "", "1", "{}"], "empty owner"),
    (["o", "", "0", "0", "", "1", "{}"], "bad ttl_ms"),
    (["o", "", "60000", "0", "", "1", ""], "empty turn"),
])
def test_session_append_bad_arguments(redis, args, msg):
    ok, out = redis.ev("session_append.lua", skeys(), args)
    assert not ok and msg in out[0]
    assert redis.cli("EXISTS", skeys()[1]) == "0"


def test_session_unlock(redis):
    get(redis, "alice", token="t1")
    assert redis.ev("session_unlock.lua", [skeys()[2]], ["t2"]) == \
        (True, ["0"])
    assert redis.cli("GET", skeys()[2]) == "t1"
    assert redis.ev("session_unlock.lua", [skeys()[2]], ["t1"]) == \
        (True, ["1"])
    assert redis.cli("EXISTS", skeys()[2]) == "0"


def test_session_refresh_extends_only_its_own_lock(redis):
    def refresh(token, lease="5000"):
        return redis.ev("session_refresh.lua", [skeys()[2]], [token, lease])

    assert refresh("t1") == (True, ["0"])               # no lock at all
    assert redis.cli("EXISTS", skeys()[2]) == "0", "a refresh creates none"
    get(redis, "alice", token="t1", lease="1000")
    assert refresh("t2") == (True, ["0"])
    assert redis.cli("GET", skeys()[2]) == "t1"
    assert int(redis.cli("PTTL", skeys()[2])) <= 1000
    assert refresh("t1") == (True, ["1"])
    assert 1000 < int(redis.cli("PTTL", skeys()[2])) <= 5000
    ok, out = refresh("t1", "0")
    assert not ok and "bad lease_ms" in out[0]
    ok, out = refresh("", "5000")
    assert ok and out == ["0"]


def settle(r, token, sid="s1", ttl="60000"):
    return r.ev("session_settle.lua", skeys(sid), [token, ttl])


def test_session_append_idempotent_after_another_append(redis):
    """A retry of t1 whose first copy was stored must not store it again
    even when another request appended in between (t1 is no longer the
    last token)."""
    assert append(redis, "alice", '{"n":1}', token="t1")[1][0] == "1"
    assert append(redis, "alice", '{"n":2}', token="t2")[1][0] == "2"
    assert append(redis, "alice", '{"n":1}', token="t1") == (True,
                                                             ["2", "0"])
    assert redis.cli("LLEN", skeys()[1]) == "2"
    for i in range(20):         # only the newest 16 tokens are kept
        append(redis, "alice", '{"m":%d}' % i, token="u%d" % i)
    assert redis.cli("HGET", skeys()[0], "tokens").split() == [
        "u%d" % i for i in range(4, 20)]


def test_session_settle_stored(redis):
    get(redis, "alice", token="t1")
    append(redis, "alice", '{"n":1}', token="t1")
    get(redis, "alice", token="t2")
    assert settle(redis, "t1") == (True, ["1", "1"])
    assert redis.cli("GET", skeys()[2]) == "t2", "only its own lock"


def test_session_settle_not_stored_fences(redis):
    append(redis, "alice", '{"n":1}', token="t0")
    get(redis, "alice", token="t1")
    assert settle(redis, "t1") == (True, ["0", "1"])
    assert redis.cli("EXISTS", skeys()[2]) == "0", "its lock released"
    # A late copy of t1's append is refused; nothing is written.
    ok, out = append(redis, "alice", '{"n":2}', token="t1")
    assert not ok and out[0].startswith("FENCED "), out
    assert redis.cli("LLEN", skeys()[1]) == "1"
    assert settle(redis, "t1") == (True, ["0", "1"]), "settled once"
    assert redis.cli("HGET", skeys()[0], "tokens") == "t0 !t1"


def test_session_settle_of_a_new_session(redis):
    assert settle(redis, "t1", sid="new") == (True, ["0", "0"])
    ttl = int(redis.cli("PTTL", skeys("new")[0]))
    assert 0 < ttl <= 60000
    assert get(redis, "alice", sid="new") == (True, ["0", "", "0"])
    ok, out = append(redis, "alice", '{"n":1}', token="t1", sid="new")
    assert not ok and out[0].startswith("FENCED ")
    assert append(redis, "alice", '{"n":1}', token="t2", sid="new") == (
        True, ["1", "0"])
    assert redis.cli("HGET", skeys("new")[0], "owner") == "alice"


@pytest.mark.parametrize("args,msg", [(["", "1000"], "bad token"),
                                      (["a b", "1000"], "bad token"),
                                      (["t1", "0"], "bad ttl_ms")])
def test_session_settle_bad_arguments(redis, args, msg):
    ok, out = redis.ev("session_settle.lua", skeys(), args)
    assert not ok and msg in out[0]


def test_session_concurrent_appends_lose_nothing(redis):
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        res = list(pool.map(
            lambda i: append(redis, "alice", '{"n":%d}' % i), range(40)))
    assert all(ok for ok, _ in res)
    assert redis.cli("LLEN", skeys()[1]) == "40"
    assert sorted(int(out[0]) for _, out in res) == list(range(1, 41))


# -- key_admit / key_charge ----------------------------------------------

def test_key_windows(redis):
    """Admission counts an admitted request in the request window and
    only reads the token windows; charges add tokens; each window starts
    with its first count (PTTL = its length, not renewed later); a full
    window refuses, naming the one that reopens last with its TTL."""
    k = ["tgt:key:{bob}:req", "tgt:key:{bob}:tok", "tgt:key:{bob}:day"]
    lim = ["2", "100", "1000", "5000"]
    ok, out = redis.ev("key_admit.lua", k, lim)
    assert ok and out == ["0", "0", "1", "0", "0"], out
    assert 4000 < int(redis.cli("PTTL", k[0])) <= 5000
    assert redis.cli("EXISTS", k[1]) == "0", "tokens are only read"
    ok, out = redis.ev("key_charge.lua", k[1:], ["60", "5000", "86400000"])
    assert ok and out == ["60", "60"], out
    assert 4000 < int(redis.cli("PTTL", k[1])) <= 5000
    assert int(redis.cli("PTTL", k[2])) > 86000000
    redis.cli("PEXPIRE", k[1], "3000")
    ok, out = redis.ev("key_charge.lua", k[1:], ["50", "5000", "86400000"])
    assert ok and out == ["110", "110"], out
    assert int(redis.cli("PTTL", k[1])) <= 3000
    # tokens over: refused, and the refused request is not counted
    ok, out = redis.ev("key_admit.lua", k, lim)
    assert ok and out[0] == "2" and 0 < int(out[1]) <= 3000, out
    assert redis.cli("GET", k[0]) == "1"
    # without a token limit it passes: the second request of the window
    ok, out = redis.ev("key_admit.lua", k, ["2", "0", "0", "5000"])
    assert ok and out == ["0", "0", "2", "110", "110"], out
    # requests and day both full: the day reopens last
    ok, out = redis.ev("key_admit.lua", k, ["2", "0", "110", "5000"])
    assert ok and out[0] == "3" and int(out[1]) > 86000000, out
    ok, out = redis.ev("key_admit.lua", k, ["2", "0", "0", "5000"])
    assert ok and out[0] == "1" and 0 < int(out[1]) <= 5000, out
    assert redis.cli("GET", k[0]) == "2"
    # no limits: nothing counted
    ok, out = redis.ev("key_admit.lua", k, ["0", "0", "0", "5000"])
    assert ok and out[0] == "0" and out[2] == "2", out


def test_key_refund(redis):
    """A refund lowers an open request window by one and keeps its TTL;
    a window that ended (no counter) or is at 0 stays as it is, and no
    counter is made."""
    k = ["tgt:key:{ann}:req", "tgt:key:{ann}:tok", "tgt:key:{ann}:day"]
    for _ in range(2):
        ok, out = redis.ev("key_admit.lua", k, ["5", "0", "0", "5000"])
        assert ok and out[0] == "0", out
    redis.cli("PEXPIRE", k[0], "3000")
    ok, out = redis.ev("key_refund.lua", k[:1])
    assert ok and out == ["1"], out
    assert 0 < int(redis.cli("PTTL", k[0])) <= 3000
    ok, out = redis.ev("key_refund.lua", k[:1])
    assert ok and out == ["0"], out
    ok, out = redis.ev("key_refund.lua", k[:1])
    assert ok and out == ["0"], out
    assert redis.cli("GET", k[0]) == "0"
    redis.cli("DEL", k[0])
    ok, out = redis.ev("key_refund.lua", k[:1])
    assert ok and out == ["0"], out
    assert redis.cli("EXISTS", k[0]) == "0"


# -- every script --------------------------------------------------------

@pytest.mark.parametrize("name", SCRIPTS)
def test_keys_only_from_KEYS(name):
    """STYLE habit 12: every key a script touches comes from KEYS[]."""
    text = open(os.path.join(LUA, name)).read()
    code = re.sub(r"--\[\[.*?\]\]", "", text, flags=re.S)
    for m in re.finditer(r"redis\.call\('(\w+)'(?:,\s*([^,)]+))?", code):
        cmd, first = m.group(1), (m.group(2) or "").strip()
        if cmd in ("TIME",):
            continue
        assert first.startswith("KEYS[") or first == "key", \
            "%s: %s %s" % (name, cmd, first)
    assert "ARGV" not in re.sub(r"ARGV\[\d\]", "", code), \
        "%s: ARGV used other than by index" % name


@pytest.mark.parametrize("name", SCRIPTS)
def test_header_documents_contract(name):
    head = open(os.path.join(LUA, name)).read().split("]]")[0]
    assert "KEYS[" in head and "ARGV[" in head and "Returns" in head
