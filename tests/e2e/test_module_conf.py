"""`nginx -t` against the thinkgate module: a good configuration passes,
and every directive's bad values fail with a message that names the
directive and the bad value.

Each case writes a private nginx.conf (own pid, error log, temp paths,
loopback port) into a temporary directory and runs
`nginx -t -p DIR -c nginx.conf`.
"""
import http.client
import os
import shutil
import subprocess

import pytest

import harness

MODULE = os.path.join(harness.BUILD, "modules", "ngx_http_thinkgate_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = harness.needs(
    None if os.path.exists(MODULE) and os.path.exists(NGINX)
    else "module not built (make module) or nginx not installed")

MAIN = """
    thinkgate_engine  unix:{dir}/engine.sock ring=256k;
    thinkgate_backend b1 http://127.0.0.1:9 model=m1 max_inflight=8
                      skills=math:0.9,code:0.5;
    thinkgate_backend b2 https://127.0.0.1:9 tls_verify=off
                      api_key_env=TG_KEY connect_timeout=2s idle_timeout=1m;
    thinkgate_pool    p1 b1 b2 policy=round_robin block=32 ttl=10m;
"""

LOCATION = """
        location /v1/ {
            thinkgate_pass p1;
            thinkgate_strategy passthrough n=1;
            thinkgate_client_strategy on;
            thinkgate_timeout 30s;
            thinkgate_max_body 100k;
        }
        location = /thinkgate/status { thinkgate_status; }
"""


def write_conf(dirname, main=MAIN, location=LOCATION, server_extra="",
               http_extra=""):
    port = harness.free_port()
    conf = """
load_module {module};
daemon off;
master_process on;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log debug;
events {{ worker_connections 64; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
{main}
{http_extra}
    server {{
        listen 127.0.0.1:{port};
{server_extra}
{location}
    }}
}}
""".format(module=MODULE, dir=dirname, port=port,
           main=main.format(dir=dirname), location=location,
           server_extra=server_extra, http_extra=http_extra)
    path = os.path.join(dirname, "nginx.conf")
    with open(path, "w") as f:
        f.write(conf)
    return path


def nginx_t(dirname):
    p = subprocess.run([NGINX, "-t", "-p", dirname, "-c", "nginx.conf"],
                       capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout + p.stderr


def check_rejected(tmp_path, directive, bad, **kw):
    write_conf(str(tmp_path), **kw)
    rc, out = nginx_t(str(tmp_path))
    assert rc != 0, out
    assert "[emerg]" in out, out
    assert directive in out, out
    assert bad in out, out


def test_good_config_accepted(tmp_path):
    write_conf(str(tmp_path))
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out
    assert "test is successful" in out


def test_defaults_only_accepted(tmp_path):
    """No thinkgate_engine (default socket), bare backend and pool."""
    main = """
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool p1 b1;
"""
    write_conf(str(tmp_path), main=main,
               location="location / { thinkgate_pass p1; }")
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


def test_pool_before_backend_accepted(tmp_path):
    main = """
    thinkgate_pool p1 b1;
    thinkgate_backend b1 http://127.0.0.1:9;
"""
    write_conf(str(tmp_path), main=main,
               location="location / { thinkgate_pass p1; }")
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


def test_module_without_directives_accepted(tmp_path):
    write_conf(str(tmp_path), main="", location="location / { return 204; }")
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


def test_deadline_off_and_times_accepted(tmp_path):
    location = LOCATION.replace(
        "thinkgate_timeout 30s;",
        "thinkgate_timeout 30s;\n            thinkgate_deadline off;")
    write_conf(str(tmp_path), location=location,
               http_extra="thinkgate_deadline 45m;")
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


def test_max_body_and_timeout_inherit_from_http(tmp_path):
    write_conf(str(tmp_path),
               http_extra="thinkgate_max_body 2m; thinkgate_timeout 1h;",
               server_extra="thinkgate_client_strategy off;")
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


ENGINE_BAD = [
    ("tcp:127.0.0.1:1", "tcp:127.0.0.1:1"),
    ("unix:", "unix:"),
    ("unix:/tmp/x.sock ring=100k", "ring=100k"),
    ("unix:/tmp/x.sock ring=32k", "ring=32k"),
    ("unix:/tmp/x.sock ring=128m", "ring=128m"),
    ("unix:/tmp/x.sock ring=lots", "ring=lots"),
    ("unix:/tmp/x.sock size=1m", "size=1m"),
    ("unix:/" + "x" * 120, "x" * 120),
]


@pytest.mark.parametrize("args,bad", ENGINE_BAD)
def test_engine_rejected(tmp_path, args, bad):
    main = MAIN.replace("thinkgate_engine  unix:{dir}/engine.sock ring=256k;",
                        "thinkgate_engine %s;" % args)
    check_rejected(tmp_path, "thinkgate_engine", bad, main=main)


def test_engine_duplicate_rejected(tmp_path):
    main = MAIN + "    thinkgate_engine unix:/tmp/other.sock;\n"
    check_rejected(tmp_path, "thinkgate_engine", "duplicate", main=main)


BACKEND_BAD = [
    ("b3 ftp://127.0.0.1:9", "ftp://127.0.0.1:9"),
    ("b3 http://", "http://"),
    ("b3 127.0.0.1:9", "127.0.0.1:9"),
    ("b/3 http://127.0.0.1:9", "b/3"),
    ("b1 http://127.0.0.1:9", "b1"),                    # duplicate name
    ("b3 http://127.0.0.1:9 max_inflight=0", "max_inflight=0"),
    ("b3 http://127.0.0.1:9 max_inflight=1000001", "max_inflight=1000001"),
    ("b3 http://127.0.0.1:9 max_inflight=many", "max_inflight=many"),
    ("b3 http://127.0.0.1:9 connect_timeout=0", "connect_timeout=0"),
    ("b3 http://127.0.0.1:9 connect_timeout=soon", "connect_timeout=soon"),
    ("b3 http://127.0.0.1:9 idle_timeout=-1s", "idle_timeout=-1s"),
    ("b3 http://127.0.0.1:9 tls_verify=maybe", "tls_verify=maybe"),
    ("b3 https://127.0.0.1:9 tls_ca=/nonexistent/ca.pem",
     "tls_ca=/nonexistent/ca.pem"),
    ("b3 https://127.0.0.1:9 tls_ca=", "tls_ca="),
    ("b3 https://127.0.0.1:9 tls_ca=/", "tls_ca=/"),            # not a file
    ("b3 http://127.0.0.1:9 api_key_env=1KEY", "api_key_env=1KEY"),
    ("b3 http://127.0.0.1:9 api_key_env=", "api_key_env="),
    ("b3 http://127.0.0.1:9 skills=math:1.5", "skills=math:1.5"),
    ("b3 http://127.0.0.1:9 skills=math", "skills=math"),
    ("b3 http://127.0.0.1:9 skills=math:0.5,", "skills=math:0.5,"),
    ("b3 http://127.0.0.1:9 skills=", "skills="),
    ("b3 http://127.0.0.1:9 model=", "model="),
    ("b3 http://127.0.0.1:9 weight=3", "weight=3"),
    ("b3 http://127.0.0.1:9 health=health", "health=health"),
    ("b3 http://127.0.0.1:9 health=", "health="),
    ("b3 http://127.0.0.1:9 interval=10ms", "interval=10ms"),
    ("b3 http://127.0.0.1:9 interval=often", "interval=often"),
    ("b3 http://127.0.0.1:9 fails=1001", "fails=1001"),
    ("b3 http://127.0.0.1:9 fails=-1", "fails=-1"),
    ("b3 http://127.0.0.1:9 cooloff=0", "cooloff=0"),
    ("b3 http://127.0.0.1:9 error_rate=101%", "error_rate=101%"),
    ("b3 http://127.0.0.1:9 error_rate=half", "error_rate=half"),
]


def test_backend_health_accepted(tmp_path):
    main = MAIN + ("    thinkgate_backend b3 http://127.0.0.1:9 "
                   "health=/health interval=5s fails=3 cooloff=10s "
                   "error_rate=50%;\n"
                   "    thinkgate_backend b4 http://127.0.0.1:9/v1 "
                   "health=/v1/models fails=0;\n")
    write_conf(str(tmp_path), main=main)
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


@pytest.mark.parametrize("args,bad", BACKEND_BAD)
def test_backend_rejected(tmp_path, args, bad):
    main = MAIN + "    thinkgate_backend %s;\n" % args
    check_rejected(tmp_path, "thinkgate_backend", bad, main=main)


def test_backend_tls_ca(tmp_path):
    """tls_ca=FILE: a relative name is under nginx's prefix (-p); a file
    nginx -t cannot read is refused, naming it and why."""
    with open(os.path.join(str(tmp_path), "ca.pem"), "w") as f:
        f.write("-----BEGIN CERTIFICATE-----\n")
    main = MAIN + ("    thinkgate_backend b3 https://127.0.0.1:9 "
                   "tls_ca=ca.pem;\n")
    write_conf(str(tmp_path), main=main)
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out
    main = MAIN + ("    thinkgate_backend b3 https://127.0.0.1:9 "
                   "tls_ca=missing.pem;\n")
    write_conf(str(tmp_path), main=main)
    rc, out = nginx_t(str(tmp_path))
    assert rc != 0, out
    assert 'cannot read "%s"' % os.path.join(str(tmp_path), "missing.pem") \
        in out, out
    assert "No such file" in out, out
    assert "tls_ca must name a readable file" in out, out


POOL_BAD = [
    ("p2 nosuch", "nosuch"),
    ("p1 b1", "p1"),                                    # duplicate name
    ("p2 b1 policy=random", "policy=random"),
    ("p2 b1 block=0", "block=0"),
    ("p2 b1 block=65537", "block=65537"),
    ("p2 b1 block=big", "block=big"),
    ("p2 b1 ttl=0", "ttl=0"),
    ("p2 b1 ttl=forever", "ttl=forever"),
    ("p2 b1 b1", "b1"),                                 # listed twice
    ("p2 b1 shards=2", "shards=2"),
    ("p2 policy=prefix", "p2"),                         # no backend
    ("p2 b1 policy=grouped window=soon", "window=soon"),
    ("p2 b1 policy=grouped window=2h", "window=2h"),
]


@pytest.mark.parametrize("args,bad", POOL_BAD)
def test_pool_rejected(tmp_path, args, bad):
    main = MAIN + "    thinkgate_pool %s;\n" % args
    check_rejected(tmp_path, "thinkgate_pool", bad, main=main)


# nginx -t says what a good value is: the shared schema's message
# (include/thinkgate/conf_keys.h) with the key and its bounds, and an
# unknown parameter is answered with the ones that exist.
MESSAGES = [
    ("thinkgate_backend", "b3 http://127.0.0.1:9 max_inflight=0",
     '"max_inflight=0": max_inflight must be 1..1000000'),
    ("thinkgate_backend", "b3 http://127.0.0.1:9 idle_timeout=0",
     '"idle_timeout=0": expected a positive time such as 5s or 500ms'),
    ("thinkgate_backend", "b3 http://127.0.0.1:9 tls_verify=yes",
     '"tls_verify=yes": tls_verify is on or off'),
    ("thinkgate_backend", "b3 http://127.0.0.1:9 interval=99ms",
     '"interval=99ms": interval is a time from 100ms to 1d'),
    ("thinkgate_backend", "b3 http://127.0.0.1:9 error_rate=101",
     '"error_rate=101": error_rate is a percentage from 0 (off) to 100%'),
    ("thinkgate_backend", "b3 http://127.0.0.1:9 skills=math:2",
     '"skills=math:2": expected skills=NAME:WEIGHT,... with weights '
     'from 0 to 1'),
    ("thinkgate_backend", "b3 http://127.0.0.1:9 weight=3",
     '"weight=3": unknown parameter; known are model=, max_inflight=, '
     'api_key_env=, connect_timeout=, idle_timeout=, tls_verify=, '
     'tls_ca=, native_effort=, skills=, health=, interval=, fails=, '
     'cooloff=, error_rate='),
    ("thinkgate_pool", "p2 b1 block=65537",
     '"block=65537": block must be 1..65536'),
    ("thinkgate_pool", "p2 b1 policy=random",
     '"policy=random": policy is least_inflight, round_robin, prefix or '
     'grouped'),
    ("thinkgate_pool", "p2 b1 window=2h",
     '"window=2h": expected a time up to 1h such as 500ms'),
    ("thinkgate_pool", "p2 b1 shards=2",
     '"shards=2": unknown parameter; known are policy=, block=, ttl=, '
     'window='),
]


@pytest.mark.parametrize("directive,args,message", MESSAGES)
def test_bad_value_message_names_key_and_bounds(tmp_path, directive, args,
                                                message):
    main = MAIN + "    %s %s;\n" % (directive, args)
    check_rejected(tmp_path, directive, message, main=main)


def test_pass_unknown_pool_rejected(tmp_path):
    check_rejected(tmp_path, "thinkgate_pass", "nosuch",
                   location="location / { thinkgate_pass nosuch; }")


def test_pass_without_pools_rejected(tmp_path):
    check_rejected(tmp_path, "thinkgate_pass", "p1", main="",
                   location="location / { thinkgate_pass p1; }")


def test_pass_in_server_rejected(tmp_path):
    check_rejected(tmp_path, "thinkgate_pass", "not allowed",
                   location="thinkgate_pass p1;")


def test_pass_conflicts_with_status(tmp_path):
    check_rejected(tmp_path, "thinkgate_pass", "conflicts",
                   location="location / { thinkgate_status; "
                            "thinkgate_pass p1; }")


LOCATION_BAD = [
    ("thinkgate_timeout", "0"),
    ("thinkgate_timeout", "soon"),
    ("thinkgate_timeout", "8d"),
    ("thinkgate_timeout", "off"),
    ("thinkgate_deadline", "0"),
    ("thinkgate_deadline", "soon"),
    ("thinkgate_deadline", "8d"),
    ("thinkgate_max_body", "0"),
    ("thinkgate_max_body", "2g"),
    ("thinkgate_max_body", "huge"),
    ("thinkgate_strategy", "bad/name"),
    ("thinkgate_strategy", "ffs n8"),
    ("thinkgate_client_strategy", "maybe"),
]


@pytest.mark.parametrize("directive,value", LOCATION_BAD)
def test_location_directive_rejected(tmp_path, directive, value):
    location = ("location / { thinkgate_pass p1; %s %s; }"
                % (directive, value))
    bad = value.split()[-1]
    check_rejected(tmp_path, directive, bad, location=location)


def test_status_takes_no_arguments(tmp_path):
    check_rejected(tmp_path, "thinkgate_status", "invalid number",
                   location="location / { thinkgate_status json; }")


# -- thinkgate_plugin, thinkgate_redis, thinkgate_session, thinkgate_admin --

SERVICES = """
    thinkgate_plugin  ffs self_consistency;
    thinkgate_plugin  passthrough;
    thinkgate_redis   127.0.0.1:6379 db=2 prefix=gw1: password_env=REDIS_PW
                      connect_timeout=2s timeout=100ms;
"""

SERVICE_LOCATIONS = LOCATION + """
        location /sessions/ {
            thinkgate_pass p1;
            thinkgate_session on;
        }
        location /thinkgate/admin/ { thinkgate_admin; }
"""


def test_services_accepted(tmp_path):
    write_conf(str(tmp_path), main=MAIN + SERVICES,
               location=SERVICE_LOCATIONS,
               server_extra="thinkgate_session off;")
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


@pytest.mark.parametrize("addr", [
    "unix:/run/redis/redis.sock", "[::1]:6380", "redis-1.internal:6379",
    "10.0.0.7:1 db=65535 prefix= connect_timeout=60s timeout=1ms"])
def test_redis_forms_accepted(tmp_path, addr):
    write_conf(str(tmp_path), main=MAIN + "    thinkgate_redis %s;\n" % addr)
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


PLUGIN_BAD = [
    ("Ffs", "Ffs"),
    ("ffs self-consistency", "self-consistency"),
    ("../ffs", "../ffs"),
    ("ffs.so", "ffs.so"),
    ("p" * 65, "p" * 65),
    ("ffs ffs", "listed twice"),
]


@pytest.mark.parametrize("args,bad", PLUGIN_BAD)
def test_plugin_rejected(tmp_path, args, bad):
    main = MAIN + "    thinkgate_plugin %s;\n" % args
    check_rejected(tmp_path, "thinkgate_plugin", bad, main=main)


def test_plugin_repeated_across_directives_rejected(tmp_path):
    main = MAIN + "    thinkgate_plugin ffs;\n    thinkgate_plugin sc ffs;\n"
    check_rejected(tmp_path, "thinkgate_plugin", "listed twice", main=main)


def test_plugin_in_location_rejected(tmp_path):
    check_rejected(tmp_path, "thinkgate_plugin", "not allowed",
                   location="location / { thinkgate_plugin ffs; }")


REDIS_BAD = [
    ("localhost", "localhost"),
    ("127.0.0.1", "127.0.0.1"),
    ("127.0.0.1:0", "127.0.0.1:0"),
    ("127.0.0.1:65536", "127.0.0.1:65536"),
    ("127.0.0.1:redis", "127.0.0.1:redis"),
    (":6379", ":6379"),
    ("a:b:6379", "a:b:6379"),
    ("redis://h:6379", "redis://h:6379"),
    ("[::1:6379", "[::1:6379"),
    ("unix:", "unix:"),
    ("unix:relative.sock", "unix:relative.sock"),
    ("unix:/" + "s" * 120, "s" * 120),
    ("h:1 db=-1", "db=-1"),
    ("h:1 db=65536", "db=65536"),
    ("h:1 db=one", "db=one"),
    ("h:1 prefix=" + "k" * 65, "k" * 65),
    ("h:1 password_env=", "password_env="),
    ("h:1 password_env=1PW", "password_env=1PW"),
    ("h:1 password_env=PW-1", "password_env=PW-1"),
    ("h:1 connect_timeout=0", "connect_timeout=0"),
    ("h:1 connect_timeout=61s", "connect_timeout=61s"),
    ("h:1 timeout=soon", "timeout=soon"),
    ("h:1 timeout=0ms", "timeout=0ms"),
    ("h:1 pool_size=4", "pool_size=4"),
    ("h:1 db=1 db=2", "given twice"),
]


@pytest.mark.parametrize("args,bad", REDIS_BAD)
def test_redis_rejected(tmp_path, args, bad):
    main = MAIN + "    thinkgate_redis %s;\n" % args
    check_rejected(tmp_path, "thinkgate_redis", bad, main=main)


def test_redis_duplicate_rejected(tmp_path):
    main = MAIN + "    thinkgate_redis h:1;\n    thinkgate_redis h:2;\n"
    check_rejected(tmp_path, "thinkgate_redis", "duplicate", main=main)


def test_redis_needs_an_address(tmp_path):
    check_rejected(tmp_path, "thinkgate_redis", "invalid number",
                   main=MAIN + "    thinkgate_redis;\n")


def test_session_rejected(tmp_path):
    check_rejected(tmp_path, "thinkgate_session", "maybe",
                   location="location / { thinkgate_pass p1; "
                            "thinkgate_session maybe; }")


def test_admin_token_file_accepted(tmp_path):
    token = tmp_path / "admin.token"
    token.write_text("0123456789abcdef-token\n")
    write_conf(str(tmp_path), location="location / { thinkgate_admin "
                                       "token_file=%s; }" % token)
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


@pytest.mark.parametrize("token,args,bad", [
    (None, "plugins", "expected token_file=PATH"),
    (None, "token_file=a token_file=b", "invalid number"),
    (None, "token_file=/nonexistent/admin.token", "cannot open"),
    ("short\n", None, "shorter than 16 bytes"),
    ("", None, "shorter than 16 bytes"),
    ("0123456789 abcdef\n", None, "blank or a control character"),
])
def test_admin_rejected(tmp_path, token, args, bad):
    """thinkgate_admin takes token_file=PATH only, whose first line is a
    token of 16 printable bytes or more (issue 14, bug 8)."""
    if token is not None:
        (tmp_path / "admin.token").write_text(token)
        args = "token_file=%s" % (tmp_path / "admin.token")
    check_rejected(tmp_path, "thinkgate_admin", bad,
                   location="location / { thinkgate_admin %s; }" % args)


def test_admin_conflicts_with_pass(tmp_path):
    check_rejected(tmp_path, "thinkgate_admin", "conflicts",
                   location="location / { thinkgate_pass p1; "
                            "thinkgate_admin; }")


# -- the document the engine receives ----------------------------------------

def registered_document(http, server="location / { thinkgate_status; }"):
    """Starts nginx (one worker) against the stand-in engine and returns
    the configuration document of its registration."""
    import fake_engine
    engine = fake_engine.FakeEngine()
    nginx = None
    try:
        nginx = harness.start_nginx(engine.sock_path, http, server,
                                    workers=1)
        assert engine.wait_for(lambda: engine.docs), "no registration"
        return engine.docs[0]
    finally:
        if nginx:
            nginx.cleanup()
        engine.close()


def test_document_carries_plugins_redis_and_pool_policy():
    http = """
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_backend b2 http://127.0.0.1:10;
    thinkgate_pool    p1 b1 b2 policy=prefix block=32 ttl=10m;
    thinkgate_pool    p2 b2 policy=round_robin;
    thinkgate_pool    p3 b1 policy=grouped window=250ms;
    thinkgate_plugin  ffs self_consistency;
    thinkgate_plugin  passthrough;
    thinkgate_redis   unix:/run/redis.sock db=2 prefix=gw1:
                      password_env=REDIS_PW connect_timeout=2s timeout=150ms;
"""
    doc = registered_document(http)
    assert set(doc) == {"backends", "pools", "plugins", "redis",
                        "embedder", "models", "strategies", "locations"}
    assert doc["models"] == []
    assert doc["plugins"] == ["ffs", "self_consistency", "passthrough"]
    assert doc["redis"] == {"addr": "unix:/run/redis.sock", "db": 2,
                            "prefix": "gw1:", "password_env": "REDIS_PW",
                            "connect_timeout_ms": 2000, "timeout_ms": 150}
    p1, p2, p3 = doc["pools"]
    assert (p1["policy"], p1["block"], p1["ttl_ms"]) == ("prefix", 32,
                                                         600000)
    assert (p3["policy"], p3["window_ms"]) == ("grouped", 250)
    assert p1["window_ms"] == 1000
    assert (p2["policy"], p2["block"], p2["ttl_ms"]) == ("round_robin", 64,
                                                         600000)


def test_document_defaults_without_plugins_or_redis():
    doc = registered_document("""
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool    p1 b1;
    thinkgate_redis   127.0.0.1:6379;
""")
    assert doc["plugins"] == []
    assert doc["redis"] == {"addr": "127.0.0.1:6379", "db": 0,
                            "prefix": "tg:", "password_env": "",
                            "connect_timeout_ms": 1000, "timeout_ms": 200}
    assert doc["pools"][0]["policy"] == "least_inflight"

    doc = registered_document("")
    assert doc == {"backends": [], "pools": [], "plugins": [],
                   "redis": None, "embedder": None, "models": [],
                   "strategies": [],
                   "locations": [{"client_strategy": False,
                                  "timeout_ms": 600000,
                                  "deadline_ms": 1800000,
                                  "max_body": 1048576, "session": False}]}


def test_document_carries_location_strategies():
    """Each distinct thinkgate_strategy text once, with where nginx read
    it first: the engine checks them against the plugins' option tables
    at registration (test_plugins.py has the refusals)."""
    doc = registered_document("""
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool    p1 b1;
""", server="""
        location /a/ { thinkgate_pass p1; thinkgate_strategy ffs n=2; }
        location /b/ { thinkgate_pass p1; thinkgate_strategy ffs n=2; }
        location /c/ { thinkgate_pass p1; thinkgate_strategy passthrough; }
""")
    strategies = doc["strategies"]
    assert [s["strategy"] for s in strategies] == ["ffs n=2", "passthrough"]
    assert strategies[0]["where"].startswith("location /a/ at ")
    assert strategies[0]["where"].rsplit(":", 1)[1].isdigit()
    assert strategies[1]["where"].startswith("location /c/ at ")
    assert {s["directive"] for s in strategies} == {"thinkgate_strategy"}


def test_document_carries_effort_strategies():
    """A thinkgate_effort level's strategy= and options go into
    "strategies" too, named by directive and level, once per text and
    directive; a level without strategy= adds nothing (test_effort.py has
    the refusals)."""
    doc = registered_document("""
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool    p1 b1;
    thinkgate_effort  high budget=none strategy=ffs n=4;
""", server="""
        location /a/ { thinkgate_pass p1; thinkgate_strategy ffs n=4;
                       thinkgate_effort low budget=64; }
        location /b/ { thinkgate_pass p1;
                       thinkgate_effort minimal budget=16
                                        strategy=passthrough; }
        location /c/ { thinkgate_pass p1;
                       thinkgate_effort high budget=none strategy=ffs n=4; }
""")
    got = [(s["directive"], s["strategy"], s["where"].split(" at ")[0])
           for s in doc["strategies"]]
    assert got == [
        ("thinkgate_effort high", "ffs n=4", doc["strategies"][0]["where"]),
        ("thinkgate_strategy", "ffs n=4", "location /a/"),
        ("thinkgate_effort minimal", "passthrough", "location /b/")], got
    assert doc["strategies"][0]["where"].rsplit(":", 1)[1].isdigit()


def test_requests_name_their_locations_entry():
    """What every request of a location shares (pool, strategy, effort,
    client_strategy, timeouts, max_body, session) is in the document's
    "locations", each distinct set once; a request's meta names its entry
    by "loc" and carries none of those members itself."""
    import fake_engine
    engine = fake_engine.FakeEngine()
    nginx = None
    try:
        nginx = harness.start_nginx(engine.sock_path, """
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool    p1 b1;
    thinkgate_timeout 7s;
""", """
        location /a/ { thinkgate_pass p1; thinkgate_strategy ffs n=2; }
        location /b/ { thinkgate_pass p1; thinkgate_strategy ffs n=2; }
        location /c/ { thinkgate_pass; thinkgate_client_strategy on;
                       thinkgate_effort low budget=64;
                       thinkgate_deadline 9s; thinkgate_max_body 2k; }
        location = /s { thinkgate_status; }
""", workers=1)
        assert engine.wait_for(lambda: engine.docs), "no registration"
        locs = engine.docs[0]["locations"]
        for path in ("/a/x", "/b/x", "/c/x", "/s"):
            conn = http.client.HTTPConnection("127.0.0.1", nginx.port,
                                              timeout=10)
            conn.request("POST" if path != "/s" else "GET", path,
                         body=b"{}" if path != "/s" else None)
            assert conn.getresponse().status == 200
            conn.close()
        assert engine.wait_for(lambda: len(engine.requests) == 4)
        metas = [m for m, _ in engine.requests]
    finally:
        if nginx:
            nginx.cleanup()
        engine.close()

    shared = {"pool", "strategy", "effort", "client_strategy", "timeout_ms",
              "deadline_ms", "max_body", "session"}
    assert all(not shared & set(m) for m in metas), metas
    a, b, c, s = (locs[m["loc"]] for m in metas)
    assert metas[0]["loc"] == metas[1]["loc"]
    assert a == {"pool": "p1", "strategy": "ffs n=2",
                 "client_strategy": False, "timeout_ms": 7000,
                 "deadline_ms": 1800000, "max_body": 1048576,
                 "session": False}, a
    assert c == {"effort": {"low": "budget=64"}, "client_strategy": True,
                 "timeout_ms": 7000, "deadline_ms": 9000, "max_body": 2048,
                 "session": False}, c
    assert "pool" not in s and s["timeout_ms"] == 7000, s
    assert len(locs) == len({m["loc"] for m in metas}), locs


def test_real_engine_accepts_plugins_and_redis():
    """The engine's document reader takes what the module writes."""
    http = """
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool    p1 b1;
    thinkgate_plugin  passthrough;
    thinkgate_redis   127.0.0.1:1 db=1 prefix=t: timeout=50ms;
"""
    engine = harness.start_engine()
    nginx = None
    try:
        nginx = harness.start_nginx(
            engine.sock, http, "location = /s { thinkgate_status; }",
            workers=1)
        import http.client
        import json
        import time
        deadline = time.monotonic() + 10
        while True:
            conn = http.client.HTTPConnection("127.0.0.1", nginx.port,
                                              timeout=5)
            conn.request("GET", "/s")
            body = json.loads(conn.getresponse().read())
            conn.close()
            if body.get("engine", {}).get("connected") is not False:
                break
            assert time.monotonic() < deadline, body
            time.sleep(0.05)
        with open(nginx.error_log) as f:
            log = f.read()
        assert "refused" not in log, log[-3000:]
    finally:
        if nginx:
            nginx.cleanup()
        engine.cleanup()


# -- thinkgate_embedder --------------------------------------------------------

EMBED_MODEL = os.path.join(harness.BUILD, "models", "all-MiniLM-L6-v2")


def fake_model(dirname, header=None, vocab=True, model=True):
    """A model directory: vocab.txt and a model.safetensors whose header
    is the given bytes (default: a well-formed one)."""
    import json
    import struct
    d = os.path.join(dirname, "model")
    os.makedirs(d, exist_ok=True)
    if vocab:
        with open(os.path.join(d, "vocab.txt"), "w") as f:
            f.write("[PAD]\n")
    if model:
        if header is None:
            text = json.dumps({"embeddings.word_embeddings.weight": {
                "dtype": "F32", "shape": [1, 1],
                "data_offsets": [0, 4]}}).encode() + b"   "
            header = struct.pack("<Q", len(text)) + text + b"\0" * 4
        with open(os.path.join(d, "model.safetensors"), "wb") as f:
            f.write(header)
    return d


def embedder_main(args):
    return MAIN + "    thinkgate_embedder %s;\n" % args


def test_embedder_accepted(tmp_path):
    d = fake_model(str(tmp_path))
    write_conf(str(tmp_path), main=embedder_main(
        "%s threads=4 device=cpu max_batch=4096" % d))
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


@harness.needs(None if os.path.exists(EMBED_MODEL)
               else "no model: make models")
def test_embedder_real_model_accepted(tmp_path):
    write_conf(str(tmp_path), main=embedder_main(EMBED_MODEL + "/"))
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


EMBEDDER_BAD = [
    ("{d} threads=0", "threads=0"),
    ("{d} threads=65", "threads must be 1..64"),
    ("{d} max_batch=0", "max_batch=0"),
    ("{d} max_batch=4097", "max_batch must be 1..4096"),
    ("{d} device=gpu", "device must be auto, cpu or cuda"),
    ("{d} batch=4", "unknown parameter"),
    ("{d} threads=2 threads=3", "given twice"),
]


@pytest.mark.parametrize("args,bad", EMBEDDER_BAD)
def test_embedder_params_rejected(tmp_path, args, bad):
    d = fake_model(str(tmp_path))
    check_rejected(tmp_path, "thinkgate_embedder", bad,
                   main=embedder_main(args.format(d=d)))


def test_embedder_duplicate_rejected(tmp_path):
    d = fake_model(str(tmp_path))
    main = embedder_main(d) + "    thinkgate_embedder %s;\n" % d
    check_rejected(tmp_path, "thinkgate_embedder", "duplicate", main=main)


def test_embedder_missing_directory(tmp_path):
    check_rejected(tmp_path, "thinkgate_embedder", "/nonexistent/minilm",
                   main=embedder_main("/nonexistent/minilm"))


def test_embedder_missing_files(tmp_path):
    d = fake_model(str(tmp_path), vocab=False)
    check_rejected(tmp_path, "vocab.txt", "missing",
                   main=embedder_main(d))
    shutil.rmtree(d)
    d = fake_model(str(tmp_path), model=False)
    check_rejected(tmp_path, "model.safetensors", "missing",
                   main=embedder_main(d))


def test_embedder_path_is_a_file(tmp_path):
    d = fake_model(str(tmp_path))
    f = os.path.join(d, "vocab.txt")
    check_rejected(tmp_path, "thinkgate_embedder", "is not a directory",
                   main=embedder_main(f))


@pytest.mark.parametrize("header,why", [
    (b"\x01\x02", "shorter than the 8-byte header length"),
    (b"\xff" * 8 + b"{}", "does not fit the file"),
    (b"\x02" + b"\0" * 7 + b"[]", "not a JSON object"),
    (b"\x0a" + b"\0" * 7 + b'{"a": 1}  ', "no \"embeddings.word_embeddings"),
])
def test_embedder_malformed_safetensors(tmp_path, header, why):
    d = fake_model(str(tmp_path), header=header)
    check_rejected(tmp_path, "model.safetensors", why,
                   main=embedder_main(d))


def test_document_carries_the_embedder(tmp_path):
    d = fake_model(str(tmp_path))
    doc = registered_document("    thinkgate_embedder %s max_batch=8;\n"
                              % d)
    assert doc["embedder"] == {"path": d, "threads": 1, "device": "auto",
                               "max_batch": 8}


def test_models_and_pass_by_model_accepted(tmp_path):
    """thinkgate_model aliases (before the pool they name, too) and a
    location without a pinned pool (thinkgate_pass;)."""
    main = MAIN + """
    thinkgate_model reasoner p1;
    thinkgate_model gpt-4o p2 model=Qwen/Qwen2.5-7B-Instruct;
    thinkgate_model llama3:8b p1;
    thinkgate_pool  p2 b2;
"""
    location = """
        location /v1/ { thinkgate_pass; thinkgate_client_strategy on; }
        location /pinned/v1/ { thinkgate_pass p1; }
"""
    write_conf(str(tmp_path), main=main, location=location)
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


MODEL_BAD = [
    ("m nosuch", "thinkgate_model", "nosuch"),          # unknown pool
    ("m p1 model=", "thinkgate_model", "model="),
    ("m p1 weight=1", "thinkgate_model", "weight=1"),
    ("m p/1", "thinkgate_model", "p/1"),
    ('"a b" p1', "thinkgate_model", "a b"),
    ('"a\\"b" p1', "thinkgate_model", 'a"b'),
    ("m " + "p1 " * 3, "thinkgate_model", "number of arguments"),
    ("m", "thinkgate_model", "number of arguments"),
]


@pytest.mark.parametrize("args,directive,bad", MODEL_BAD)
def test_model_rejected(tmp_path, args, directive, bad):
    main = MAIN + "    thinkgate_model %s;\n" % args
    check_rejected(tmp_path, directive, bad, main=main)


def test_model_duplicate_rejected(tmp_path):
    main = MAIN + "    thinkgate_model m p1;\n    thinkgate_model m p1;\n"
    check_rejected(tmp_path, "thinkgate_model", "duplicate", main=main)


def test_model_in_location_rejected(tmp_path):
    location = LOCATION.replace("thinkgate_pass p1;",
                                "thinkgate_pass p1; thinkgate_model m p1;")
    check_rejected(tmp_path, "thinkgate_model", "not allowed",
                   location=location)


def test_pass_twice_rejected(tmp_path):
    location = LOCATION.replace("thinkgate_pass p1;",
                                "thinkgate_pass; thinkgate_pass p1;")
    check_rejected(tmp_path, "thinkgate_pass", "duplicate",
                   location=location)


def test_document_carries_models():
    doc = registered_document("""
    thinkgate_model   gpt-4o p1 model=Qwen/Qwen2.5-7B-Instruct;
    thinkgate_model   reasoner p1;
    thinkgate_backend b1 http://127.0.0.1:9;
    thinkgate_pool    p1 b1;
""")
    assert doc["models"] == [
        {"name": "gpt-4o", "pool": "p1", "model": "Qwen/Qwen2.5-7B-Instruct"},
        {"name": "reasoner", "pool": "p1", "model": ""}]


def test_effort_and_native_effort_accepted(tmp_path):
    main = MAIN + "    thinkgate_backend b3 http://127.0.0.1:9 " \
                  "native_effort=on;\n    thinkgate_effort low budget=512;\n"
    location = LOCATION.replace(
        "thinkgate_timeout 30s;",
        "thinkgate_timeout 30s;\n"
        "            thinkgate_effort minimal budget=none;\n"
        "            thinkgate_effort high budget=8192 strategy=ffs n=4;")
    write_conf(str(tmp_path), main=main, location=location)
    rc, out = nginx_t(str(tmp_path))
    assert rc == 0, out


EFFORT_BAD = [
    ("extreme budget=10", "extreme"),
    ("low budget=0", "budget=0"),
    ("low budget=1000001", "budget=1000001"),
    ("low budget=lots", "budget=lots"),
    ("low strategy=ffs", "strategy=ffs"),
    ("low budget=10 n=4", "n=4"),
    ("low budget=10 strategy=bad/name", "strategy=bad/name"),
    ("low budget=10 strategy=ffs budget=3", "budget=3"),
    ("low budget=10 strategy=ffs n", "n"),
    ("low budget=10 strategy=ffs x=" + "y" * 506, "longer than 511 bytes"),
]


@pytest.mark.parametrize("args,bad", EFFORT_BAD)
def test_effort_rejected(tmp_path, args, bad):
    check_rejected(tmp_path, "thinkgate_effort", bad,
                   http_extra="    thinkgate_effort %s;\n" % args)


def test_effort_level_duplicate_rejected(tmp_path):
    write_conf(str(tmp_path), http_extra="    thinkgate_effort low budget=1;"
               "\n    thinkgate_effort low budget=2;\n")
    rc, out = nginx_t(str(tmp_path))
    assert rc != 0 and "is duplicate" in out, out


def test_native_effort_rejected(tmp_path):
    main = MAIN + "    thinkgate_backend b3 http://127.0.0.1:9 " \
                  "native_effort=yes;\n"
    check_rejected(tmp_path, "thinkgate_backend", "native_effort=yes",
                   main=main)
