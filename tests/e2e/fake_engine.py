"""A stand-in thinkgated for testing the nginx module without the engine.

Listens on a unix socket, accepts registrations as protocol.h describes
(tg_register_t with the worker's memfd as SCM_RIGHTS, then the
configuration document), maps the region and answers every REQUEST with
frames a test scripts: HEAD, DATA, END or ERROR.  It records each
registration's document and each request's meta and body, so that tests
can check what the module sends.

The ring code is engine_client.Ring, used from the engine's side: read
to_engine, write to_worker.  Every batch written is followed by a
doorbell, and the loop also looks at the rings on a short poll timeout,
so a missed wake-up costs milliseconds, never a hang.
"""
import json
import mmap
import os
import select
import socket
import struct
import tempfile
import threading

import engine_client as ec

REG = struct.Struct("<IIIIQII")     # tg_register_t
REPLY_SIZE = 256                    # tg_register_reply_t


def head(status=200, headers=(("Content-Type", "application/json"),),
         stream=False):
    """A HEAD frame: (type, payload)."""
    lines = "".join("%s: %s\r\n" % hv for hv in headers)
    return (ec.HEAD, struct.pack("<II", status,
                                 ec.HEAD_F_STREAM if stream else 0)
            + lines.encode())


def data(body):
    return (ec.DATA, body if isinstance(body, bytes) else body.encode())


def end(figures=b""):
    """An END frame; figures: dict (NAME=VALUE lines) or raw bytes."""
    if isinstance(figures, dict):
        figures = "".join("%s=%s\n" % kv for kv in figures.items()).encode()
    return (ec.END, figures)


def error(status, body):
    if isinstance(body, dict):
        body = json.dumps(body)
    if isinstance(body, str):
        body = body.encode()
    return (ec.ERROR, struct.pack("<II", status, 0) + body)


def json_response(obj, status=200, figures=b""):
    """HEAD + DATA + END for a JSON body."""
    return [head(status), data(json.dumps(obj)), end(figures)]


class _Conn:
    """One registered worker."""

    def __init__(self, sock, fd, reg, doc):
        self.sock = sock
        self.fd = fd
        self.doc = doc
        self.pid = reg[2]
        self.mm = mmap.mmap(fd, reg[4])
        self.to_engine = ec.Ring(self.mm, "to_engine")
        self.to_worker = ec.Ring(self.mm, "to_worker")
        self.partial = {}           # id -> [meta, body] while MORE
        self.out = []               # frames waiting for room

    def close(self):
        for f in (self.sock.close, self.mm.close, lambda: os.close(self.fd)):
            try:
                f()
            except (OSError, BufferError, ValueError):
                pass


class FakeEngine:
    """Serves in a thread.  responder(meta, body) returns the frames to
    send for a request, as a list of (type, payload); the default answers
    200 with {"ok": true} and no figures."""

    def __init__(self, responder=None, refuse=None):
        self.dir = tempfile.mkdtemp(prefix="tg-fake-engine-")
        # nginx workers run as nobody when the master is root
        os.chmod(self.dir, 0o755)
        self.sock_path = os.path.join(self.dir, "engine.sock")
        self.responder = responder or (
            lambda meta, body: json_response({"ok": True}))
        self.refuse = refuse        # (status, message) to refuse every one
        self.docs = []              # documents, as parsed JSON
        self.requests = []          # (meta, body)
        self.conns = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(self.sock_path)
        os.chmod(self.sock_path, 0o777)
        self.listener.listen(16)
        self.stopping = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    # -- control ---------------------------------------------------------
    def close(self):
        self.stopping = True
        self.thread.join(5)
        for c in self.conns:
            c.close()
        self.listener.close()
        try:
            os.unlink(self.sock_path)
            os.rmdir(self.dir)
        except OSError:
            pass

    def wait_for(self, pred, timeout=10.0):
        """Waits until pred() (called under the lock) is true."""
        with self.cond:
            return self.cond.wait_for(pred, timeout)

    # -- the loop --------------------------------------------------------
    def _loop(self):
        while not self.stopping:
            socks = [self.listener] + [c.sock for c in self.conns]
            try:
                r, _, _ = select.select(socks, [], [], 0.02)
            except (OSError, ValueError):
                r = []
            if self.listener in r:
                self._accept()
            for c in list(self.conns):
                if c.sock in r:
                    try:
                        if not c.sock.recv(4096):
                            raise ConnectionError
                    except BlockingIOError:
                        pass
                    except OSError:
                        with self.cond:
                            self.conns.remove(c)
                        c.close()
                        continue
                self._service(c)

    def _accept(self):
        s, _ = self.listener.accept()
        s.settimeout(5)
        try:
            msg, fds, _, _ = socket.recv_fds(s, REG.size, 1)
            while len(msg) < REG.size:
                more = s.recv(REG.size - len(msg))
                if not more:
                    raise ConnectionError("short registration")
                msg += more
            reg = REG.unpack(msg)
            doc = b""
            while len(doc) < reg[5]:
                more = s.recv(reg[5] - len(doc))
                if not more:
                    raise ConnectionError("short document")
                doc += more
        except (OSError, ConnectionError):
            s.close()
            return
        status, message = self.refuse or (0, "")
        # flags 0: no eventfd doorbells (recv_fds above took the memfd
        # alone), so the worker rings through the socket
        reply = struct.pack("<IIiII", ec.REG_MAGIC, ec.PROTO_VERSION, status,
                            1, 0) + message.encode()[:235]
        s.sendall(reply.ljust(REPLY_SIZE, b"\0"))
        with self.cond:
            try:
                self.docs.append(json.loads(doc))
            except ValueError:
                self.docs.append(doc)
            self.cond.notify_all()
        if status != 0 or not fds:
            s.close()
            for fd in fds:
                os.close(fd)
            return
        s.setblocking(False)
        conn = _Conn(s, fds[0], reg, doc)
        with self.cond:
            self.conns.append(conn)
            self.cond.notify_all()

    def _service(self, c):
        rang = False
        while True:
            frame, wake = c.to_engine.read()
            rang = rang or wake
            if frame is None:
                break
            ftype, flags, fid, payload = frame
            if ftype != ec.REQUEST:
                continue            # WINDOW, CANCEL: nothing to do here
            if fid in c.partial:
                c.partial[fid][1] += payload
            else:
                (mlen,) = struct.unpack_from("<I", payload)
                meta = json.loads(payload[4:4 + mlen])
                c.partial[fid] = [meta, payload[4 + mlen:]]
            if flags & ec.F_MORE:
                continue
            meta, body = c.partial.pop(fid)
            with self.cond:
                self.requests.append((meta, body))
                self.cond.notify_all()
            for ftype, out in self.responder(meta, body):
                c.out.append((ftype, 0, fid, out))
        while c.out:
            if c.to_worker.write(*c.out[0]) is None:
                break
            c.out.pop(0)
            rang = True
        if rang:
            try:
                c.sock.send(ec.DOORBELL)
            except OSError:
                pass
