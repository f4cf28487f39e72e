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
import subprocess

import pytest

import harness

CONF = os.path.join(harness.ROOT, "conf")
MODULE = os.path.join(harness.BUILD, "modules", "ngx_http_thinkgate_module.so")
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"

EXAMPLES = sorted(glob.glob(os.path.join(CONF, "*.conf")))

needs_module = pytest.mark.skipif(
    not os.path.exists(MODULE) or not os.path.exists(NGINX),
    reason="module not built (make module) or nginx not installed")


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
