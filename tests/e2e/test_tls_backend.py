"""Issue 14: a backend behind TLS (https://127.0.0.1:PORT).

The sim speaks plain HTTP, so the test puts small TLS-terminating proxies
in front of it, with certificates made at test time by the openssl CLI:
a self-signed one, and two signed by a private CA, one for 127.0.0.1 and
one for another host name.  thinkgate_backend checks the peer by default
(tls_verify=on: libcurl's CURLOPT_SSL_VERIFYPEER and VERIFYHOST) against
the system's CAs, or against tls_ca=FILE (CURLOPT_CAINFO); tls_verify=off
checks nothing.
"""
import http.client
import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import pytest

import harness

pytestmark = [harness.needs_module(),
              harness.needs(None if shutil.which("openssl")
                            else "the openssl CLI is not installed")]

CHAT = {"model": "thinkgate-sim",
        "messages": [{"role": "user", "content": "What is 17 + 25?"}],
        "max_tokens": 64}


class TlsProxy:
    """Accepts TLS on a loopback port and relays the plain bytes to
    127.0.0.1:target.  .handshakes counts the handshakes that completed,
    .refused those that failed (the client rejected the certificate)."""

    def __init__(self, target, cert, key):
        self.target = target
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(64)
        self.port = self.lsock.getsockname()[1]
        self.handshakes = 0
        self.refused = 0
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while not self.closing:
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(raw,),
                             daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(raw, server_side=True)
        except (ssl.SSLError, OSError):
            self.refused += 1
            raw.close()
            return
        self.handshakes += 1
        tls.settimeout(None)
        up = socket.create_connection(("127.0.0.1", self.target))
        threading.Thread(target=self._pump, args=(up, tls),
                         daemon=True).start()
        self._pump(tls, up)

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self):
        self.closing = True
        self.lsock.close()


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   capture_output=True, timeout=60)


def make_certs(d):
    """{name: (cert, key)}: "self" self-signed for 127.0.0.1; "ca" a CA;
    "good" by the CA for IP 127.0.0.1; "other" by the CA for
    other.invalid only."""
    p = lambda n: os.path.join(d, n)        # noqa: E731 - a short alias
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", p("self.key"), "-out", p("self.pem"), "-days", "1",
            "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes",
            "-keyout", p("ca.key"), "-out", p("ca.pem"), "-days", "1",
            "-subj", "/CN=thinkgate test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    for name, san in (("good", "IP:127.0.0.1"),
                      ("other", "DNS:other.invalid")):
        openssl("req", "-newkey", "rsa:2048", "-nodes",
                "-keyout", p(name + ".key"), "-out", p(name + ".csr"),
                "-subj", "/CN=%s" % san.split(":")[1])
        with open(p(name + ".ext"), "w") as f:
            f.write("subjectAltName=%s\n" % san)
        openssl("x509", "-req", "-in", p(name + ".csr"), "-CA", p("ca.pem"),
                "-CAkey", p("ca.key"), "-CAcreateserial", "-days", "1",
                "-extfile", p(name + ".ext"), "-out", p(name + ".pem"))
    return {n: (p(n + ".pem"), p(n + ".key"))
            for n in ("self", "ca", "good", "other")}


SERVER = """
        location /strict/v1/ {
            thinkgate_pass strictpool;
        }
        location /ca/v1/ {
            thinkgate_pass capool;
        }
        location /other/v1/ {
            thinkgate_pass otherpool;
        }
        location /v1/ {
            thinkgate_pass laxpool;
        }
        location = /thinkgate/status {
            thinkgate_status;
        }
"""


@pytest.fixture(scope="module")
def gw():
    tdir = tempfile.mkdtemp(prefix="tg-tls-")
    # Readable by nginx's workers and the engine whatever user they run as.
    os.chmod(tdir, 0o755)
    g = type("G", (), {})()
    g.procs = []
    proxies = []
    try:
        certs = make_certs(tdir)
        g.sim = harness.start_sim("--step-ms", "2", "--step-ms-per-seq", "0")
        g.procs.append(g.sim)
        for name in ("self", "good", "other"):
            proxies.append(TlsProxy(g.sim.port, *certs[name]))
        g.proxy, good, other = proxies
        url = "https://127.0.0.1:%d"
        ca = certs["ca"][0]
        os.chmod(ca, 0o644)
        http = ("    thinkgate_backend strict %s connect_timeout=3s;\n"
                "    thinkgate_backend lax %s tls_verify=off;\n"
                "    thinkgate_backend withca %s tls_ca=%s;\n"
                "    thinkgate_backend othername %s tls_ca=%s;\n"
                "    thinkgate_pool strictpool strict;\n"
                "    thinkgate_pool laxpool lax;\n"
                "    thinkgate_pool capool withca;\n"
                "    thinkgate_pool otherpool othername;\n"
                % (url % g.proxy.port, url % g.proxy.port,
                   url % good.port, ca, url % other.port, ca))
        harness.start_engine_nginx(g, http, SERVER)
        yield g
    finally:
        for p in reversed(g.procs):
            p.cleanup()
        for proxy in proxies:
            proxy.close()
        shutil.rmtree(tdir, ignore_errors=True)


def post(gw, path, body, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", gw.nginx.port,
                                      timeout=timeout)
    conn.request("POST", path, body=json.dumps(body),
                 headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    conn.close()
    return resp.status, raw


def sim_stats(gw):
    conn = http.client.HTTPConnection("127.0.0.1", gw.sim.port, timeout=5)
    conn.request("GET", "/sim/stats")
    doc = json.loads(conn.getresponse().read())
    conn.close()
    return doc


def sim_open_streams(gw):
    return sim_stats(gw)["open_streams"]


@pytest.mark.parametrize("stream", [False, True])
def test_untrusted_certificate_is_a_clean_502_naming_the_backend(gw, stream):
    """tls_verify=on (the default) and a self-signed certificate: the
    handshake is refused, and the client gets at once a 502 naming the
    backend and saying why, not a hang and never the sim's answer."""
    refused = gw.proxy.refused
    t0 = time.monotonic()
    status, raw = post(gw, "/strict/v1/chat/completions",
                       dict(CHAT, stream=stream))
    took = time.monotonic() - t0
    assert status == 502, raw
    err = json.loads(raw)["error"]
    assert "strict" in err["message"], err
    assert "certificate" in err["message"].lower(), err
    assert err["code"] == "backend_unreachable", err
    assert took < 5, took
    # The proxy counts its side of the refused handshake in its own thread.
    deadline = time.monotonic() + 2
    while gw.proxy.refused == refused:
        assert time.monotonic() < deadline, "no handshake was refused"
        time.sleep(0.02)
    assert sim_open_streams(gw) == 0


def test_tls_verify_off_non_streamed(gw):
    """tls_verify=off: the same self-signed backend answers through the
    proxy (curl may keep the connection: one handshake or more)."""
    before = sim_stats(gw)["requests"]
    status, raw = post(gw, "/v1/chat/completions", CHAT)
    assert status == 200, raw
    msg = json.loads(raw)["choices"][0]["message"]
    assert msg.get("content") or msg.get("reasoning_content"), msg
    assert json.loads(raw)["usage"]["completion_tokens"] > 0, raw
    assert sim_stats(gw)["requests"] == before + 1
    assert gw.proxy.handshakes >= 1


def test_tls_verify_off_streamed(gw):
    before = sim_stats(gw)["requests"]
    status, raw = post(gw, "/v1/chat/completions", dict(CHAT, stream=True))
    assert status == 200, raw
    events = [ln[6:] for ln in raw.decode().split("\n")
              if ln.startswith("data: ")]
    assert events[-1] == "[DONE]", events[-3:]
    text = "".join(
        (c["choices"][0]["delta"].get("content") or "")
        + (c["choices"][0]["delta"].get("reasoning_content") or "")
        for c in map(json.loads, events[:-1]) if c.get("choices"))
    assert text, events[:5]
    assert sim_stats(gw)["requests"] == before + 1
    assert gw.proxy.handshakes >= 1
    assert sim_open_streams(gw) == 0


@pytest.mark.parametrize("stream", [False, True])
def test_private_ca_verifies_the_backend(gw, stream):
    """tls_verify=on (the default) with tls_ca= naming the CA that signed
    the backend's certificate: served, streamed and not."""
    before = sim_stats(gw)["requests"]
    status, raw = post(gw, "/ca/v1/chat/completions",
                       dict(CHAT, stream=stream))
    assert status == 200, raw
    if stream:
        assert raw.rstrip().endswith(b"data: [DONE]"), raw[-200:]
    else:
        assert json.loads(raw)["usage"]["completion_tokens"] > 0, raw
    assert sim_stats(gw)["requests"] == before + 1


def test_private_ca_and_another_host_name_is_a_502(gw):
    """The CA is trusted but the certificate names another host: a 502
    naming the backend and the name mismatch, and the sim is never
    asked."""
    before = sim_stats(gw)["requests"]
    status, raw = post(gw, "/other/v1/chat/completions", CHAT)
    assert status == 502, raw
    err = json.loads(raw)["error"]
    assert "othername" in err["message"], err
    assert "host name '127.0.0.1'" in err["message"], err
    assert err["code"] == "backend_unreachable", err
    assert sim_stats(gw)["requests"] == before
