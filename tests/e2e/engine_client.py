"""A stand-in nginx worker for testing thinkgated without nginx.

Registers over the engine's unix socket exactly like the module does
(include/thinkgate/protocol.h): a memfd with two rings (ring.h) passed with
SCM_RIGHTS, the configuration document, then doorbells.  Sends REQUEST,
CANCEL and WINDOW frames and reads HEAD, DATA, END and ERROR back.

The ring counters are read and written with one aligned 8-byte access each
(ctypes): struct.pack_into writes a "<Q" a byte at a time, and the engine,
reading head between two of those bytes, saw a torn value (after a carry,
head behind tail) and rightly dropped the registration as corrupt.

Python cannot issue sequentially consistent atomics, so the doorbell rules
are followed as written but every wait also wakes up on a short poll
timeout and looks at the rings again: a missed doorbell costs a few
milliseconds, never a hang.
"""
import ctypes
import fcntl
import json
import mmap
import os
import select
import socket
import struct
import time

SHM_MAGIC = 0x48534754
REG_MAGIC = 0x47455254
PROTO_VERSION = 2
DOORBELL = b"D"
REG_F_EVENTFD = 0x0001              # tg_register_t.flags, the reply's
REPLY_MESSAGE = 20                  # tg_register_reply_t.message's offset
INITIAL_WINDOW = 256 * 1024

PAD, REQUEST, CANCEL, WINDOW = 0, 1, 2, 3
HEAD, DATA, END, ERROR = 16, 17, 18, 19
F_MORE = 0x0001
HEAD_F_STREAM = 0x0001

# Layout of tg_shm_t and tg_ring_ctl_t (x86-64, checked by the C header's
# alignment rules: every counter on its own 64-byte line).
SHM_HDR = 448
CTL = {"to_engine": 64, "to_worker": 256}
OFF_HEAD, OFF_TAIL, OFF_WAIT, OFF_SIZE, OFF_DATA = 0, 64, 128, 132, 136
FRAME = struct.Struct("<IHHQ")          # len, type, flags, id


def align8(n):
    return (n + 7) & ~7


class Ring:
    """One ring of the region, seen from one side."""

    def __init__(self, mm, name):
        self.mm = mm
        self.ctl = CTL[name]
        self.size = struct.unpack_from("<I", mm, self.ctl + OFF_SIZE)[0]
        self.data = struct.unpack_from("<I", mm, self.ctl + OFF_DATA)[0]

    def _get(self, off, fmt="<Q"):
        # One aligned load: never a mix of two values the peer stored.
        ctype = ctypes.c_uint64 if fmt == "<Q" else ctypes.c_uint32
        return ctype.from_buffer(self.mm, self.ctl + off).value

    def _put(self, off, v, fmt="<Q"):
        # One aligned store (struct.pack_into writes byte by byte).
        ctype = ctypes.c_uint64 if fmt == "<Q" else ctypes.c_uint32
        ctype.from_buffer(self.mm, self.ctl + off).value = v

    def max_payload(self):
        return self.size // 4 - FRAME.size

    def write(self, ftype, flags, fid, payload=b""):
        """1: written, ring the doorbell; 0: written; None: no room."""
        if len(payload) > self.max_payload():
            raise ValueError("payload too large for one frame")
        head = self._get(OFF_HEAD)
        old = head
        need = align8(FRAME.size + len(payload))
        off = head & (self.size - 1)
        room = self.size - off
        pad = room if need > room else 0
        for retried in (0, 1):
            tail = self._get(OFF_TAIL)
            if self.size - (head - tail) >= need + pad:
                break
            if retried:
                return None
            self._put(OFF_WAIT, 1, "<I")
        if pad:
            if pad >= FRAME.size:
                FRAME.pack_into(self.mm, self.data + off,
                                pad - FRAME.size, PAD, 0, 0)
            head += pad
            off = 0
        FRAME.pack_into(self.mm, self.data + off, len(payload), ftype,
                        flags, fid)
        start = self.data + off + FRAME.size
        self.mm[start:start + len(payload)] = payload
        self._put(OFF_HEAD, head + need)
        return 1 if self._get(OFF_TAIL) == old else 0

    def read(self):
        """Returns (frame tuple or None, wake_producer)."""
        wake = False
        while True:
            tail = self._get(OFF_TAIL)
            head = self._get(OFF_HEAD)
            if head == tail:
                return None, wake
            off = tail & (self.size - 1)
            if self.size - off < FRAME.size:
                self._put(OFF_TAIL, tail + (self.size - off))
                continue
            ln, ftype, flags, fid = FRAME.unpack_from(self.mm, self.data + off)
            if align8(FRAME.size + ln) > head - tail or \
                    off + FRAME.size + ln > self.size:
                raise RuntimeError("corrupt frame in to_worker ring")
            start = self.data + off + FRAME.size
            payload = bytes(self.mm[start:start + ln])
            self._put(OFF_TAIL, tail + align8(FRAME.size + ln))
            if self._get(OFF_WAIT, "<I"):
                self._put(OFF_WAIT, 0, "<I")
                wake = True
            if ftype == PAD:
                continue
            return (ftype, flags, fid, payload), wake


class Refused(Exception):
    def __init__(self, status, message):
        super().__init__("registration refused (%d): %s" % (status, message))
        self.status = status
        self.message = message


class Response:
    def __init__(self):
        self.status = None
        self.flags = 0
        self.headers = {}
        self.body = b""
        self.ended = False          # END frame
        self.error = None           # (status, body) of an ERROR frame
        self.end_payload = b""
        self.frames = []

    @property
    def stream(self):
        return bool(self.flags & HEAD_F_STREAM)

    def json(self):
        return json.loads(self.body)

    def error_json(self):
        return json.loads(self.error[1]) if self.error else None

    def events(self):
        """SSE data payloads of a streamed body."""
        out = []
        for block in self.body.decode().split("\n\n"):
            data = [ln[5:].lstrip(" ") for ln in block.split("\n")
                    if ln.startswith("data:")]
            if data:
                out.append("\n".join(data))
        return out

    def done(self):
        return self.ended or self.error is not None


class Worker:
    """One registration, as one nginx worker."""

    def __init__(self, sock_path, conf, ring_size=1 << 20, timeout=5.0,
                 seal=True, allow_sealing=True, eventfd=False,
                 bell_fds=None):
        """eventfd: ring through two eventfds (protocol.h,
        TG_REG_F_EVENTFD) rather than the socket; bell_fds: the
        descriptors to pass after the memfd instead of fresh eventfds."""
        self.conf = conf
        self.bell_out = self.bell_in = None
        self.eventfd = False
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(sock_path)
        self.shm_size = SHM_HDR + 2 * ring_size
        self.fd = os.memfd_create("thinkgate-test", os.MFD_CLOEXEC | (
            os.MFD_ALLOW_SEALING if allow_sealing else 0))
        os.ftruncate(self.fd, self.shm_size)
        if seal:
            fcntl.fcntl(self.fd, fcntl.F_ADD_SEALS,
                        fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
        self.mm = mmap.mmap(self.fd, self.shm_size)
        # tg_shm_init
        struct.pack_into("<IIII", self.mm, 0, SHM_MAGIC, PROTO_VERSION,
                         ring_size, 0)
        for i, name in enumerate(("to_engine", "to_worker")):
            c = CTL[name]
            struct.pack_into("<II", self.mm, c + OFF_SIZE, ring_size,
                             SHM_HDR + i * ring_size)
        self.to_engine = Ring(self.mm, "to_engine")
        self.to_worker = Ring(self.mm, "to_worker")
        doc = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
        fds = [self.fd]
        if eventfd:
            if bell_fds is None:
                self.bell_out = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                self.bell_in = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                bell_fds = [self.bell_out, self.bell_in]
            fds += bell_fds
        reg = struct.pack("<IIIIQII", REG_MAGIC, PROTO_VERSION, os.getpid(),
                          ring_size, self.shm_size, len(doc),
                          REG_F_EVENTFD if eventfd else 0)
        socket.send_fds(self.sock, [reg], fds)
        try:
            self.sock.sendall(doc)
        except (BrokenPipeError, ConnectionResetError):
            # A refused peer is answered on the header alone and the
            # connection closed (issue 14, bug 2): the reply is there.
            pass
        reply = b""
        while len(reply) < 256:
            try:
                chunk = self.sock.recv(256 - len(reply))
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                raise ConnectionError("engine closed during registration")
            reply += chunk
        magic, version, status, gen, flags = struct.unpack_from("<IIiII",
                                                                reply)
        message = reply[REPLY_MESSAGE:].split(b"\0", 1)[0].decode()
        if status != 0:
            self.close()
            raise Refused(status, message)
        self.generation = gen
        self.reply_flags = flags
        self.eventfd = bool(flags & REG_F_EVENTFD) and self.bell_in is not None
        self.sock.setblocking(False)
        self.next_id = 1
        self.doorbells = 0          # eventfd doorbells seen
        self.socket_doorbells = 0   # doorbell bytes on the socket
        self.responses = {}
        self.pending_out = []       # frames waiting for room

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.mm.close()
        except (OSError, AttributeError, BufferError):
            pass
        for fd in (self.fd, self.bell_out, self.bell_in):
            try:
                if fd is not None:
                    os.close(fd)
            except OSError:
                pass

    # -- sending ---------------------------------------------------------
    def _ring(self):
        if self.eventfd:
            os.eventfd_write(self.bell_out, 1)
            return
        try:
            self.sock.send(DOORBELL)
        except BlockingIOError:
            pass

    def _send(self, ftype, flags, fid, payload=b""):
        self.pending_out.append((ftype, flags, fid, payload))
        self._flush_out()

    def _flush_out(self):
        while self.pending_out:
            rc = self.to_engine.write(*self.pending_out[0])
            if rc is None:
                return
            self.pending_out.pop(0)
            if rc == 1:
                self._ring()

    def request(self, meta, body=b"", fid=None, chunk=None):
        """Sends one request; body split over MORE frames as needed."""
        fid = fid or self.next_id
        self.next_id = max(self.next_id, fid) + 1
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        m = json.dumps(meta).encode()
        first = struct.pack("<I", len(m)) + m
        limit = chunk or self.to_engine.max_payload()
        room = max(0, limit - len(first))
        part, rest = body[:room], body[room:]
        self._send(REQUEST, F_MORE if rest else 0, fid, first + part)
        while rest:
            part, rest = rest[:limit], rest[limit:]
            self._send(REQUEST, F_MORE if rest else 0, fid, part)
        self.responses[fid] = Response()
        return fid

    def api(self, uri, body=None, method="POST", pool="p", timeout_ms=None,
            **extra):
        meta = {"kind": "api", "method": method, "uri": uri, "args": "",
                "pool": pool, "client_strategy": False, "session": False,
                "headers": {}}
        if timeout_ms is not None:
            meta["timeout_ms"] = timeout_ms
        meta.update(extra)
        return self.request(meta, body if body is not None else b"")

    def status(self, args=""):
        return self.request({"kind": "status", "method": "GET",
                             "uri": "/thinkgate/status", "args": args})

    def cancel(self, fid):
        self._send(CANCEL, 0, fid)

    def window(self, fid, n):
        self._send(WINDOW, 0, fid, struct.pack("<I", n))

    # -- receiving -------------------------------------------------------
    def pump(self, timeout=0.05, auto_window=True):
        """Waits for a doorbell (or the timeout), then drains the ring.
        Returns the frames read."""
        watch = [self.sock] + ([self.bell_in] if self.eventfd else [])
        r, _, _ = select.select(watch, [], [], timeout)
        if self.sock in r:
            try:
                got = self.sock.recv(4096)
                if not got:
                    raise ConnectionError("engine closed the connection")
                self.socket_doorbells += len(got)
            except BlockingIOError:
                pass
        if self.eventfd and self.bell_in in r:
            self.doorbells += 1
            try:
                os.eventfd_read(self.bell_in)
            except BlockingIOError:
                pass
        self._flush_out()
        got = []
        while True:
            frame, wake = self.to_worker.read()
            if wake:
                self._ring()
            if frame is None:
                break
            got.append(frame)
            self._apply(frame, auto_window)
        return got

    def _apply(self, frame, auto_window):
        ftype, flags, fid, payload = frame
        resp = self.responses.setdefault(fid, Response())
        resp.frames.append((ftype, len(payload)))
        if ftype == HEAD:
            resp.status, resp.flags = struct.unpack_from("<II", payload)
            for line in payload[8:].decode().split("\r\n"):
                if ":" in line:
                    k, v = line.split(":", 1)
                    resp.headers[k.strip().lower()] = v.strip()
        elif ftype == DATA:
            resp.body += payload
            if auto_window:
                self.window(fid, len(payload))
        elif ftype == END:
            resp.ended = True
            resp.end_payload = payload
        elif ftype == ERROR:
            status, _ = struct.unpack_from("<II", payload)
            resp.error = (status, payload[8:])
            if resp.status is None:
                resp.status = status

    def wait(self, fid, timeout=30.0, auto_window=True, until=None):
        """Pumps until the response of fid is complete (or until(resp))."""
        deadline = time.monotonic() + timeout
        resp = self.responses[fid]
        while not (until(resp) if until else resp.done()):
            if time.monotonic() > deadline:
                raise TimeoutError("no complete answer for request %d: %r"
                                   % (fid, resp.frames[-10:]))
            self.pump(0.05, auto_window)
        return resp

    def call(self, *a, timeout=30.0, **kw):
        return self.wait(self.api(*a, **kw), timeout)


def config(backends, pools=None, **backend_defaults):
    """A configuration document with every key present, as the module
    writes it.  backends: list of (name, url) or dicts."""
    bl = []
    for b in backends:
        if isinstance(b, tuple):
            b = {"name": b[0], "url": b[1]}
        d = {"name": None, "url": None, "model": None, "max_inflight": 0,
             "api_key_env": None, "connect_timeout_ms": 5000,
             "idle_timeout_ms": 60000, "tls_verify": True, "skills": {}}
        d.update(backend_defaults)
        d.update(b)
        bl.append(d)
    if pools is None:
        pools = {"p": [b["name"] for b in bl]}
    pl = [{"name": n, "backends": m, "policy": "least_inflight",
           "block": 16, "ttl_ms": 600000} for n, m in pools.items()]
    return {"backends": bl, "pools": pl}
