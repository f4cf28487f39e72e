"""Every example in conf/ passes `nginx -t` with the module built here.

The examples are written for a packaged install (/usr/lib/nginx/modules,
/run, /var/log/nginx, www-data, port 443 with certificates); the test
rewrites only those machine paths (module, pid, logs, user, listen, TLS)
into a private directory and keeps every thinkgate directive as it is.
The Prometheus scrape config and the Grafana dashboard are checked for
the metric names the status location exports.
"""
import glob
import json
import os
import re
import shutil
import socket
import subprocess
import time

import pytest

import harness

CONF = os.path.join(harness.ROOT, "conf")
MODULE = os.path.join(harness.BUILD, "modules", "ngx_http_thinkgate_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

EXAMPLES = sorted(glob.glob(os.path.join(CONF, "*.conf")))

needs_module = harness.needs(
    None if os.path.exists(MODULE) and os.path.exists(NGINX)
    else "module not built (make module) or nginx not installed")


def localize(text, d, port):
    text = re.sub(r"^user [^;]*;", "", text, flags=re.M)
    text = re.sub(r"^pid [^;]*;", "pid %s/nginx.pid;" % d, text, flags=re.M)
    text = re.sub(r"^error_log \S+", "error_log %s/error.log" % d, text,
                  flags=re.M)
    text = re.sub(r"^load_module [^;]*;", "load_module %s;" % MODULE, text,
                  flags=re.M)
    text = re.sub(r"access_log /var/log/nginx/access.log",
                  "access_log %s/access.log" % d, text)
    text = re.sub(r"listen [^;]*;", "listen 127.0.0.1:%d;" % port, text)
    text = re.sub(r"^\s*ssl_certificate(_key)? [^;]*;", "", text, flags=re.M)
    temps = "".join("    %s_temp_path %s/%s;\n" % (t, d, t) for t in
                    ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return text.replace("http {\n", "http {\n" + temps, 1)


@needs_module
@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_example_passes_nginx_t(tmp_path, path):
    with open(path) as f:
        text = f.read()
    d = str(tmp_path)
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(localize(text, d, harness.free_port()))
    p = subprocess.run([NGINX, "-t", "-p", d, "-c", conf],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "test is successful" in p.stderr


# Issue 14, bug 8: nginx's own 400s reached OpenAI clients as HTML.  Each
# example (and the `make run` configuration) sends them as OpenAI errors
# through error_page; nginx runs the localized example for real.
BAD_REQUESTS = [
    ("header over 8 KB", 400, "bad_request",
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Big: "
     + b"a" * 9000 + b"\r\nContent-Length: 0\r\n\r\n"),
    ("NUL in a header", 400, "bad_request",
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n"
     b"Content-Length: 0\r\n\r\n"),
    ("Content-Length with Transfer-Encoding", 400, "bad_request",
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    ("malformed request line", 400, "bad_request",
     b"POST /v1/chat/completions HTTP/1.1 junk\r\nHost: x\r\n\r\n"),
    ("URI too long", 414, "uri_too_long",
     b"GET /v1/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    ("unknown Transfer-Encoding", 501, "unsupported_transfer_encoding",
     b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
     b"Transfer-Encoding: gzip\r\n\r\n"),
]


def raw_exchange(port, data):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except socket.timeout:
        pass
    s.close()
    return out


def run_template(text, d):
    """conf/thinkgate.conf.in with its @...@ fields filled as mk/run.sh
    does (nothing listens behind them: only nginx answers here)."""
    for k, v in (("@ROOT@", harness.ROOT), ("@RUN@", d), ("@PORT@", "80"),
                 ("@SIM_PORT@", "9"), ("@REDIS_PORT@", "9")):
        text = text.replace(k, v)
    # its own temporary paths: localize() writes them
    text = re.sub(r"^\s*\w+_temp_path [^;]*;", "", text, flags=re.M)
    return text.replace("daemon on;", "")


@needs_module
@pytest.mark.parametrize("path", EXAMPLES + [os.path.join(CONF,
                                                          "thinkgate.conf.in")],
                         ids=os.path.basename)
def test_nginx_rejections_are_openai_errors(tmp_path, path):
    with open(path) as f:
        text = f.read()
    d = str(tmp_path)
    if path.endswith(".in"):
        text = run_template(text, d)
    os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
    os.chmod(d, 0o755)
    port = harness.free_port()
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(localize(text, d, port))
    proc = subprocess.Popen([NGINX, "-p", d, "-c", conf, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        harness.wait_port(port, timeout=10)
        for what, status, code, data in BAD_REQUESTS:
            raw = raw_exchange(port, data)
            head, _, body = raw.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 %d" % status), (what, raw[:300])
            assert b"Content-Type: application/json" in head, (what, head)
            doc = json.loads(body)
            assert set(doc) == {"error"}, (what, doc)
            assert doc["error"]["code"] == code, (what, doc)
            assert doc["error"]["type"] == "invalid_request_error", doc
            assert doc["error"]["message"], doc
        # the error locations are internal: not a page anyone can fetch
        raw = raw_exchange(port, b"GET /thinkgate/error/400 HTTP/1.1\r\n"
                                 b"Host: x\r\nConnection: close\r\n\r\n")
        assert raw.startswith(b"HTTP/1.1 404"), raw[:200]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_examples_are_there():
    names = {os.path.basename(p) for p in EXAMPLES}
    assert {"production.conf", "vllm.conf", "models.conf",
            "strategies.conf", "redis-gateways.conf"} <= names
    assert os.path.exists(os.path.join(CONF, "prometheus.yml"))


def exported_metrics():
    names = set()
    for src in glob.glob(os.path.join(harness.ROOT, "engine", "**", "*.c"),
                         recursive=True):
        with open(src, errors="replace") as f:
            names |= set(re.findall(r'"(thinkgate_[a-z_]+)', f.read()))
    return names


def test_grafana_dashboard_uses_exported_metrics():
    with open(os.path.join(CONF, "grafana-dashboard.json")) as f:
        dash = json.load(f)
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = set(m for e in exprs for m in re.findall(r"thinkgate_[a-z_]+", e))
    assert used, exprs
    assert used <= exported_metrics(), used - exported_metrics()


def test_prometheus_scrapes_the_status_location():
    with open(os.path.join(CONF, "prometheus.yml")) as f:
        text = f.read()
    assert "metrics_path: /thinkgate/status" in text
    assert "format: [prometheus]" in text
