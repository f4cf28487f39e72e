"""`nginx -t` against the thinkgate module: a good configuration passes,
and every directive's bad values fail with a message that names the
directive and the bad value.

Each case writes a private nginx.conf (own pid, error log, temp paths,
loopback port) into a temporary directory and runs
`nginx -t -p DIR -c nginx.conf`.
"""
import os
import shutil
import subprocess

import pytest

import harness

MODULE = os.path.join(harness.BUILD, "modules", "ngx_http_thinkgate_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

pytestmark = pytest.mark.skipif(
    not os.path.exists(MODULE) or not os.path.exists(NGINX),
    reason="module not built (make module) or nginx not installed")

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
    ("b3 http://127.0.0.1:9 api_key_env=1KEY", "api_key_env=1KEY"),
    ("b3 http://127.0.0.1:9 api_key_env=", "api_key_env="),
    ("b3 http://127.0.0.1:9 skills=math:1.5", "skills=math:1.5"),
    ("b3 http://127.0.0.1:9 skills=math", "skills=math"),
    ("b3 http://127.0.0.1:9 skills=math:0.5,", "skills=math:0.5,"),
    ("b3 http://127.0.0.1:9 skills=", "skills="),
    ("b3 http://127.0.0.1:9 model=", "model="),
    ("b3 http://127.0.0.1:9 weight=3", "weight=3"),
]


@pytest.mark.parametrize("args,bad", BACKEND_BAD)
def test_backend_rejected(tmp_path, args, bad):
    main = MAIN + "    thinkgate_backend %s;\n" % args
    check_rejected(tmp_path, "thinkgate_backend", bad, main=main)


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
]


@pytest.mark.parametrize("args,bad", POOL_BAD)
def test_pool_rejected(tmp_path, args, bad):
    main = MAIN + "    thinkgate_pool %s;\n" % args
    check_rejected(tmp_path, "thinkgate_pool", bad, main=main)


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
