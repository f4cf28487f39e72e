"""Model names through the gateway, with the official OpenAI SDK.

What a new user does first: list the models, then use each one.  The
first set runs `make run`'s own configuration (conf/thinkgate.conf.in,
rendered as mk/run.sh renders it): every listed id answers, a client's
strategy choice (ffs, n=4) runs, an unknown model is a 404 in OpenAI's
shape naming it and the valid ones.  The second runs two sims serving
different models, one backend with model= and one without (its names come
from its own /v1/models), and checks that a request's "model" picks the
pool, and that an alias with model= renames what the backend is sent.
"""
import http.client
import json
import os
import time

import openai
import pytest

import harness

CONF_IN = os.path.join(harness.ROOT, "conf", "thinkgate.conf.in")
QUESTION = [{"role": "user", "content": "What is 17 + 25?"}]


def render_run_conf(run, port, sim_port, redis_port):
    """conf/thinkgate.conf.in as mk/run.sh writes it, except that nginx
    stays in the foreground (the harness owns the process) and, as root,
    its workers run as nobody (the harness's engine allows them)."""
    with open(CONF_IN) as f:
        text = f.read()
    for key, value in (("@ROOT@", harness.ROOT), ("@RUN@", run),
                       ("@PORT@", str(port)), ("@SIM_PORT@", str(sim_port)),
                       ("@REDIS_PORT@", str(redis_port))):
        text = text.replace(key, value)
    text = text.replace("daemon on;", "daemon off;")
    if os.geteuid() == 0:
        text = "user nobody nogroup;\n" + text
    embedder = os.path.join(harness.BUILD, "models", "all-MiniLM-L6-v2")
    if not os.path.isdir(embedder):
        # `make models` not run: nothing here scores with it.
        text = "\n".join(l for l in text.split("\n")
                         if "thinkgate_embedder" not in l)
    return text


def get_json(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    return resp.status, doc


def wait_models(port, want, timeout=10.0):
    """Waits until GET /v1/models lists want (the engine asks backends
    without model= when the workers register, on its loop)."""
    deadline = time.monotonic() + timeout
    while True:
        status, doc = get_json(port, "/v1/models")
        ids = [m["id"] for m in doc.get("data", [])]
        if status == 200 and set(ids) == set(want):
            return ids
        assert time.monotonic() < deadline, (status, doc)
        time.sleep(0.05)


def sim_requests(sim):
    return get_json(sim.port, "/sim/stats")[1]["requests"]


class Stack:
    """Processes started for one fixture, stopped in reverse."""

    def __init__(self):
        self.procs = []

    def add(self, p):
        self.procs.append(p)
        return p

    def dump(self):
        for p in self.procs:
            print("---- %s log ----\n%s" % (p.name, p.log()[-4000:]))
            err = os.path.join(p.workdir, "error.log")
            if p.name == "nginx" and os.path.exists(err):
                with open(err, errors="replace") as f:
                    print("---- nginx error.log ----\n" + f.read()[-4000:])

    def close(self):
        for p in reversed(self.procs):
            p.cleanup()


def start_nginx_conf(conf_text, workdir, port):
    proc = harness.Proc("nginx", [], workdir=workdir)
    conf = os.path.join(workdir, "nginx.conf")
    with open(conf, "w") as f:
        f.write(conf_text)
    proc.argv = ["nginx", "-p", workdir, "-c", conf]
    proc.start()
    harness.wait_port(port, proc=proc)
    proc.port = port
    proc.url = "http://127.0.0.1:%d" % port
    return proc


@pytest.fixture(scope="module")
def run_gw():
    """make run's configuration: Redis, the sim, the engine, nginx."""
    st = Stack()
    try:
        redis = st.add(harness.start_redis())
        sim = st.add(harness.start_sim("--step-ms", "2",
                                       "--step-ms-per-seq", "0"))
        engine = st.add(harness.start_engine())
        run = os.path.dirname(engine.sock)
        os.makedirs(os.path.join(run, "tmp"), exist_ok=True)
        port = harness.free_port()
        text = render_run_conf(run, port, sim.port, redis.port)
        nginx = st.add(start_nginx_conf(text, run, port))
        harness.wait_registered(nginx)
        st.port, st.sim = port, sim
        st.client = openai.OpenAI(base_url=nginx.url + "/v1",
                                  api_key="none", max_retries=0, timeout=60)
        wait_models(port, ["reasoner", "thinkgate-sim"])
    except Exception:
        st.dump()
        st.close()
        raise
    yield st
    st.close()


def test_make_run_config_renders_like_run_sh():
    text = render_run_conf("/r", 8080, 8081, 8082)
    body = "\n".join(l for l in text.split("\n")
                     if not l.lstrip().startswith("#"))
    assert "@" not in body
    assert "thinkgate_pass;" in text
    assert "thinkgate_client_strategy on;" in text


def test_every_listed_model_answers(run_gw):
    ids = [m.id for m in run_gw.client.models.list()]
    # the sim's own name, from its /v1/models, and make run's alias
    assert sorted(ids) == ["reasoner", "thinkgate-sim"]
    for model in ids:
        r = run_gw.client.chat.completions.create(
            model=model, messages=QUESTION, max_tokens=32)
        assert r.object == "chat.completion"
        msg = r.choices[0].message
        assert msg.content or msg.model_extra.get("reasoning_content")
        # the backend answered for the model it serves
        assert r.model == "thinkgate-sim"


def test_streamed_request_by_model(run_gw):
    chunks = list(run_gw.client.chat.completions.create(
        model="thinkgate-sim", messages=QUESTION, max_tokens=16,
        stream=True))
    assert any(c.choices and c.choices[0].finish_reason for c in chunks)


def test_client_strategy_ffs_n4(run_gw):
    r = run_gw.client.chat.completions.create(
        model="thinkgate-sim", messages=QUESTION, max_tokens=64,
        extra_body={"thinkgate": {"strategy": "ffs", "n": 4}})
    tg = r.model_extra["thinkgate"]
    assert tg["strategy"] == "ffs"
    assert tg["traces_started"] == 4


def test_responses_api_under_make_run(run_gw):
    # make run's /v1/ location serves the Responses API too, its Redis
    # keeps the chain, and the alias routes as for chat.
    c = run_gw.client
    r1 = c.responses.create(model="reasoner", input="What is 17 + 25?",
                            max_output_tokens=64)
    assert r1.object == "response" and r1.output, r1
    assert r1.model_extra["thinkgate"]["response_stored"] is True
    events = list(c.responses.create(model="thinkgate-sim",
                                     input="And plus 1?", stream=True,
                                     previous_response_id=r1.id,
                                     max_output_tokens=64))
    assert events[0].type == "response.created"
    assert events[-1].type in ("response.completed", "response.incomplete")
    assert events[-1].response.previous_response_id == r1.id
    assert c.responses.retrieve(r1.id).id == r1.id


def test_unknown_model_is_404_naming_it(run_gw):
    with pytest.raises(openai.NotFoundError) as ei:
        run_gw.client.chat.completions.create(model="gpt-5",
                                              messages=QUESTION)
    err = ei.value.body
    if "error" in err:
        err = err["error"]
    assert err["code"] == "model_not_found"
    assert err["type"] == "invalid_request_error"
    assert err["param"] == "model"
    assert "`gpt-5`" in err["message"]
    assert "`thinkgate-sim`" in err["message"]
    assert "`reasoner`" in err["message"]


def test_missing_model_is_400(run_gw):
    conn = http.client.HTTPConnection("127.0.0.1", run_gw.port, timeout=10)
    conn.request("POST", "/v1/chat/completions",
                 body=json.dumps({"messages": QUESTION}),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    doc = json.loads(resp.read())
    conn.close()
    assert resp.status == 400
    assert doc["error"]["param"] == "model"


TWO_HTTP = """
    thinkgate_backend a http://127.0.0.1:{a};
    thinkgate_backend b http://127.0.0.1:{b} model=beta-32b;
    thinkgate_pool    pa a;
    thinkgate_pool    pb b;
    thinkgate_model   gpt-4o pb model=beta-32b;
    thinkgate_model   fast pa;
"""

TWO_SERVER = """
        location /v1/ { thinkgate_pass; thinkgate_client_strategy on; }
        location /pinned/v1/ { thinkgate_pass pa; }
        location /pinned-b/v1/ { thinkgate_pass pb; }
        location = /thinkgate/status { thinkgate_status; }
"""


@pytest.fixture(scope="module")
def two_gw():
    """Two sims serving different models, a pool each."""
    st = Stack()
    try:
        sa = st.add(harness.start_sim("--model", "alpha-7b",
                                      "--step-ms", "2"))
        sb = st.add(harness.start_sim("--model", "beta-32b",
                                      "--step-ms", "2"))
        engine = st.add(harness.start_engine())
        nginx = st.add(harness.start_nginx(
            engine.sock, TWO_HTTP.format(a=sa.port, b=sb.port), TWO_SERVER))
        harness.wait_registered(nginx)
        st.port, st.sa, st.sb, st.url = nginx.port, sa, sb, nginx.url
        st.client = openai.OpenAI(base_url=nginx.url + "/v1",
                                  api_key="none", max_retries=0, timeout=60)
        wait_models(nginx.port, ["gpt-4o", "fast", "alpha-7b", "beta-32b"])
    except Exception:
        st.dump()
        st.close()
        raise
    yield st
    st.close()


def ask(gw, model, **kw):
    before = (sim_requests(gw.sa), sim_requests(gw.sb))
    r = gw.client.chat.completions.create(model=model, messages=QUESTION,
                                          max_tokens=16, **kw)
    after = (sim_requests(gw.sa), sim_requests(gw.sb))
    return r, (after[0] - before[0], after[1] - before[1])


def test_two_pools_routed_by_model(two_gw):
    ids = [m.id for m in two_gw.client.models.list()]
    # aliases first, then each pool's: a's from its own /v1/models,
    # b's from model=
    assert ids == ["gpt-4o", "fast", "alpha-7b", "beta-32b"]

    r, served = ask(two_gw, "alpha-7b")
    assert served == (1, 0) and r.model == "alpha-7b"
    r, served = ask(two_gw, "beta-32b")
    assert served == (0, 1) and r.model == "beta-32b"


def test_alias_renames_upstream(two_gw):
    # model= of the alias: the sim serving beta-32b refuses any other name
    r, served = ask(two_gw, "gpt-4o")
    assert served == (0, 1) and r.model == "beta-32b"
    # no model=: the backend's own name (the first its /v1/models lists)
    r, served = ask(two_gw, "fast")
    assert served == (1, 0) and r.model == "alpha-7b"


def test_strategy_on_a_routed_model(two_gw):
    r, served = ask(two_gw, "beta-32b",
                    extra_body={"thinkgate": {"strategy": "ffs", "n": 4}})
    assert r.model_extra["thinkgate"]["traces_started"] == 4
    assert served == (0, 4)


def test_unknown_model_lists_the_valid_ones(two_gw):
    with pytest.raises(openai.NotFoundError) as ei:
        two_gw.client.chat.completions.create(model="gamma",
                                              messages=QUESTION)
    msg = str(ei.value)
    for name in ("gamma", "gpt-4o", "fast", "alpha-7b", "beta-32b"):
        assert "`%s`" % name in msg


def test_pinned_location_lists_its_pool_and_serves_any_name(two_gw):
    status, doc = get_json(two_gw.port, "/pinned/v1/models")
    assert status == 200
    assert [m["id"] for m in doc["data"]] == ["fast", "alpha-7b"]
    pinned = openai.OpenAI(base_url=two_gw.url + "/pinned/v1",
                           api_key="none", max_retries=0, timeout=60)
    # a pinned pool serves what its location names, as before: the alias
    # of that pool is renamed, another name goes through as it is
    r = pinned.chat.completions.create(model="fast", messages=QUESTION,
                                       max_tokens=16)
    assert r.model == "alpha-7b"
    with pytest.raises(openai.NotFoundError) as ei:
        pinned.chat.completions.create(model="beta-32b", messages=QUESTION,
                                       max_tokens=16)
    assert "does not exist" in str(ei.value)


def test_pinned_request_without_a_model_gets_its_backends(two_gw):
    # no "model" in the body, a location pinned to pb: the backend's
    # model= goes in as a member, last (the sim answers only a body naming
    # beta-32b), with or without members the trace sets after it
    for extra in ({}, {"seed": 5, "temperature": 0.5}):
        before = sim_requests(two_gw.sb)
        conn = http.client.HTTPConnection("127.0.0.1", two_gw.port,
                                          timeout=10)
        conn.request("POST", "/pinned-b/v1/chat/completions",
                     body=json.dumps(dict({"messages": QUESTION,
                                           "max_tokens": 8}, **extra)),
                     headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        doc = json.loads(resp.read())
        conn.close()
        assert resp.status == 200, doc
        assert doc["model"] == "beta-32b"
        assert sim_requests(two_gw.sb) == before + 1


def test_reasoning_effort_under_make_run(run_gw):
    # make run's location has no thinkgate_effort lines: the documented
    # defaults hold (low: a 1,024-token thinking budget; high:
    # self_consistency n=4 early_stop=exact, no budget).
    c = run_gw.client
    low = c.chat.completions.create(model="reasoner", messages=QUESTION,
                                    reasoning_effort="low")
    tg = low.model_extra["thinkgate"]
    assert tg["effort"] == "low" and tg["thinking_budget"] == 1024, tg
    details = low.usage.completion_tokens_details
    assert details.reasoning_tokens <= 1024 + 4, low.usage
    assert low.choices[0].message.content, low
    high = c.chat.completions.create(model="reasoner", messages=QUESTION,
                                     reasoning_effort="high",
                                     max_tokens=64)
    tg = high.model_extra["thinkgate"]
    assert tg["effort"] == "high" and tg["strategy"] == "self_consistency"
    assert tg["traces_started"] >= 2, tg
    r = c.responses.create(model="reasoner", input="What is 17 + 25?",
                           reasoning={"effort": "low"})
    assert r.model_extra["thinkgate"]["effort"] == "low"
    assert r.usage.output_tokens_details.reasoning_tokens <= 1024 + 4


def test_another_key_cannot_chain_under_make_run(run_gw):
    r = run_gw.client.responses.create(model="reasoner", input="Hi",
                                       max_output_tokens=16)
    other = run_gw.client.with_options(api_key="another-key")
    with pytest.raises(openai.NotFoundError):
        other.responses.create(model="reasoner", input="And?",
                               previous_response_id=r.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(r.id)
