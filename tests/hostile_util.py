"""Helpers for the hostile-peer tests (tests/test_hostile.py) and bench/w7_memory.py.

- :class:`HostileServer`: tests/hostile_server.py as a subprocess under a memory rlimit
  (RLIMIT_AS, 1 GiB by default), so a regression that grows memory fails with a
  MemoryError in the server instead of eating the machine; its RSS (VmRSS) and peak RSS
  (VmHWM) read from /proc, its stderr kept in a file.
- Raw HTTP/2 frame builders written from RFC 9113 (``frame``, ``settings``, ``headers``,
  ...) and stateless HPACK header blocks (``request_block``: static-table references and
  literals that never touch the dynamic table, so any block can be sent in any order).
- :class:`H2Peer`: a raw-socket HTTP/2 client for attacks. Its output goes through a
  non-blocking buffer (``queue`` / ``pump``), so a server that stops reading never leaves
  half a frame behind; it may never read (``rcvbuf`` small), and later ``drain()`` what the
  server sent and how the connection ended.
- :class:`H1Peer`: the same for HTTP/1.1 bytes.
- ``engine_pair()``: a recording-free cno.raw client and server in memory (memory runs).
- :class:`GoodClient`: a thread doing a GET every ~50 ms over its own keep-alive
  connection (HTTP/1.1 or HTTP/2), recording latencies and failures: the well-behaved
  client that must keep getting answers while an attack runs.

Everything talks to 127.0.0.1 only.
"""
import errno
import json
import os
import resource
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HOST = "127.0.0.1"
SERVER_SCRIPT = Path(__file__).resolve().parent / "hostile_server.py"
GiB = 1 << 30
MiB = 1 << 20

# -- the server subprocess --------------------------------------------------------------

def proc_status_kib(pid, field):
    """A /proc/<pid>/status field in KiB (VmRSS, VmHWM, ...); -1 if the process is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return -1


def engine_pair(batch=50):
    """A cno.raw HTTP/2 client and server back to back in memory, recording nothing (for
    memory measurements over a great many streams): returns (client, server, run), run(n)
    doing n GETs answered with 2 bytes, ``batch`` requests per round trip."""
    import cno.raw

    class Peer(cno.raw.Connection):
        def on_writev(self, chunks):
            self.out.extend(chunks)

    class ServerPeer(Peer):
        def on_message_head(self, stream, code, method, path, headers):
            self.write_head(stream, 200, "", "", [("content-length", "2")], False)
            self.write_data(stream, b"ok", True)

    client, server = Peer(server=False), ServerPeer(server=True)
    client.out, server.out = [], []
    client.connection_made(True)
    server.connection_made(True)

    def move():
        while client.out or server.out:
            if client.out:
                chunk = b"".join(client.out)
                client.out.clear()
                server.data_received(chunk)
            if server.out:
                chunk = b"".join(server.out)
                server.out.clear()
                client.data_received(chunk)

    head = [(":scheme", "http"), (":authority", "t")]

    def run(n):
        for _ in range(n // batch):
            for _ in range(batch):
                client.write_head(client.next_stream, 0, "GET", "/", head, True)
            move()

    move()
    return client, server, run


def raise_nofile(n):
    """Raise this process's RLIMIT_NOFILE soft limit to at least n (up to the hard limit);
    returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


class ServerStartError(RuntimeError):
    pass


class HostileServer:
    """``tests/hostile_server.py`` with the given options, under RLIMIT_AS = ``memory``.

    Use as a context manager (or ``start()`` / ``stop()``). ``port``, ``pid``,
    ``rss_kib()``, ``hwm_kib()`` (peak RSS), ``alive()``, ``stderr_text()``.
    """

    def __init__(self, options=None, *, memory=GiB, nofile=None, drop_unknown=False,
                 python=None, nice=0):
        self.options = dict(options or {})
        self.memory = memory
        self.nofile = nofile
        self.drop_unknown = drop_unknown
        self.python = python or sys.executable
        self.nice = nice
        self.proc = None
        self.port = None
        self._stderr = None
        self.returncode = None

    def _preexec(self):
        if self.memory:
            resource.setrlimit(resource.RLIMIT_AS, (self.memory, self.memory))
        if self.nofile:
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = self.nofile if hard == resource.RLIM_INFINITY else min(self.nofile, hard)
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
        if self.nice:
            os.nice(self.nice)

    def start(self, timeout=20.0):
        self._stderr = tempfile.TemporaryFile()
        argv = [self.python, str(SERVER_SCRIPT)]
        if self.drop_unknown:
            argv.append("--drop-unknown")
        argv.append(json.dumps(self.options))
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        # The server imports the same cno as the test process.
        import cno
        root = str(Path(cno.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, preexec_fn=self._preexec, env=env)
        deadline = time.monotonic() + timeout
        line = b""
        fd = self.proc.stdout.fileno()
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise ServerStartError("the server printed no port within %.0f s; stderr:\n%s"
                                       % (timeout, self.stderr_text()))
            r, _, _ = select.select([fd], [], [], min(left, 0.2))
            if r:
                chunk = os.read(fd, 64)
                if not chunk:
                    self.proc.wait(5)
                    self.returncode = self.proc.returncode
                    raise ServerStartError(
                        "the server exited (status %s) before listening; options %s; stderr:\n%s"
                        % (self.proc.returncode, json.dumps(self.options), self.stderr_text()))
                line += chunk
        self.port = int(line)
        return self

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def rss_kib(self):
        return proc_status_kib(self.proc.pid, "VmRSS")

    def hwm_kib(self):
        return proc_status_kib(self.proc.pid, "VmHWM")

    def stderr_text(self, limit=6000):
        if self._stderr is None:
            return ""
        self._stderr.flush()
        self._stderr.seek(0)
        data = self._stderr.read()
        text = data.decode("utf-8", "replace")
        return text if len(text) <= limit else "...\n" + text[-limit:]

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.returncode = self.proc.returncode
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def describe(self):
        return ("server pid %s options %s alive %s rss %s KiB peak %s KiB\nstderr:\n%s"
                % (self.proc.pid if self.proc else None, json.dumps(self.options),
                   self.alive(), self.rss_kib() if self.alive() else "-",
                   self.hwm_kib() if self.alive() else "-", self.stderr_text()))

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


# -- HTTP/2 frames (RFC 9113) ------------------------------------------------------------

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
              "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
ACK = END_STREAM = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, \
    STREAM_CLOSED, FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR, \
    CONNECT_ERROR, ENHANCE_YOUR_CALM = range(12)
SETTINGS_IDS = {"header_table_size": 1, "enable_push": 2, "max_concurrent_streams": 3,
                "initial_window_size": 4, "max_frame_size": 5, "max_header_list_size": 6}
MAX_STREAM_ID = (1 << 31) - 1


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + struct.pack(">BBI", ftype, flags, stream) \
        + bytes(payload)


def settings(**values):
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", SETTINGS_IDS[k], v)
                                          for k, v in values.items()))


def settings_ack():
    return frame(SETTINGS, ACK, 0)


def headers(stream, block, end_stream=True, end_headers=True, priority=None):
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    if priority is not None:   # (depends_on, weight, exclusive)
        dep, weight, excl = priority
        block = struct.pack(">IB", dep | (0x80000000 if excl else 0), weight) + bytes(block)
        flags |= PRIORITY_FLAG
    return frame(HEADERS, flags, stream, block)


def continuation(stream, block, end_headers=False):
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream, block)


def data(stream, payload=b"", end_stream=False):
    return frame(DATA, END_STREAM if end_stream else 0, stream, payload)


def rst_stream(stream, code=CANCEL):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def ping(payload=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, payload)


def priority(stream, depends_on, weight=15, exclusive=False):
    return frame(PRIORITY, 0, stream,
                 struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight))


def window_update(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def goaway(last_stream=0, code=NO_ERROR, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream, code) + debug)


# -- HPACK, by hand (RFC 7541): stateless blocks and the dynamic-table tricks -------------

def hpack_int(value, prefix_bits, first=0):
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_string(s):
    s = s.encode("latin-1") if isinstance(s, str) else bytes(s)
    return hpack_int(len(s), 7) + s


def literal(name, value, index_name=0, indexing=False):
    """A literal field: without indexing (0000xxxx) or with incremental indexing
    (01xxxxxx, added to the dynamic table); name by static index when index_name."""
    if indexing:
        head = hpack_int(index_name, 6, 0x40)
    else:
        head = hpack_int(index_name, 4, 0x00)
    return head + (b"" if index_name else hpack_string(name)) + hpack_string(value)


def indexed(index):
    return hpack_int(index, 7, 0x80)


_STATIC_METHOD = {"GET": 2, "POST": 3}


def request_block(path="/", method="GET", authority="localhost", extra=()):
    """A request head as an HPACK block that never touches the dynamic table."""
    out = bytearray()
    out += indexed(_STATIC_METHOD[method]) if method in _STATIC_METHOD \
        else literal(None, method, index_name=2)
    out += indexed(6)   # :scheme http
    out += indexed(4) if path == "/" else literal(None, path, index_name=4)
    out += literal(None, authority, index_name=1)
    for name, value in extra:
        out += literal(name, value)
    return bytes(out)


def response_status(block, decoder):
    """The :status of a response head block, decoded with ``decoder`` (an
    ``hpack.Decoder`` that has seen every earlier block of the connection)."""
    for name, value in decoder.decode(block):
        if name in (":status", b":status"):
            return int(value)
    return None


def _new_decoder():
    import hpack
    d = hpack.Decoder()
    d.max_header_list_size = 1 << 24
    return d


def _header_block(flags, payload):
    if flags & PADDED:
        payload = payload[1:len(payload) - payload[0]]
    if flags & PRIORITY_FLAG:
        payload = payload[5:]
    return payload


# -- raw peers ---------------------------------------------------------------------------

class _Peer:
    """A raw socket with a non-blocking output buffer and input kept as bytes."""

    def __init__(self, port, rcvbuf=None, sndbuf=None, connect_timeout=5.0):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        if sndbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
        s.settimeout(connect_timeout)
        s.connect((HOST, port))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.setblocking(False)
        self.sock = s
        self.out = bytearray()
        self.inbuf = bytearray()
        self.received = 0          # bytes read from the socket
        self.sent = 0              # bytes the kernel took
        self.end = None            # None (open), "eof", "reset" (or an errno name)
        self.send_error = None     # the error a send met (EPIPE, ECONNRESET)

    # output

    def queue(self, data):
        self.out += data

    def pump(self, timeout=0.0):
        """Send what is queued, waiting up to timeout for the socket to take it. True once
        the buffer is empty; False while the server is not taking our bytes."""
        deadline = time.monotonic() + timeout
        while self.out:
            if self.send_error is not None:
                return False
            try:
                n = self.sock.send(self.out[:1 << 20])
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                select.select([], [self.sock], [], min(left, 0.05))
                continue
            except OSError as e:
                self.send_error = errno.errorcode.get(e.errno, str(e))
                return False
            del self.out[:n]
            self.sent += n
        return True

    def send(self, data, timeout=5.0):
        self.queue(data)
        return self.pump(timeout)

    def send_slowly(self, data, step=1, interval=0.2, until=None):
        """Send data step bytes at a time, one step per interval; stops early when the
        connection ends (then returns False) or at ``until`` (monotonic time)."""
        for i in range(0, len(data), step):
            if until is not None and time.monotonic() >= until:
                return True
            if not self.send(data[i:i + step], timeout=interval):
                return False
            self.poll(0)
            if self.end is not None:
                return False
            time.sleep(interval)
        return True

    # input

    def poll(self, timeout=0.0):
        """Read what has arrived (waiting up to timeout for something); returns the number
        of bytes read, and sets ``end`` when the connection ended."""
        if self.end is not None:
            return 0
        got = 0
        deadline = time.monotonic() + timeout
        while True:
            try:
                chunk = self.sock.recv(1 << 20)
            except BlockingIOError:
                left = deadline - time.monotonic()
                if got or left <= 0:
                    break
                select.select([self.sock], [], [], min(left, 0.05))
                continue
            except OSError as e:
                self.end = "reset" if e.errno == errno.ECONNRESET else \
                    errno.errorcode.get(e.errno, str(e))
                break
            if not chunk:
                self.end = "eof"
                break
            self.inbuf += chunk
            self.received += len(chunk)
            got += len(chunk)
            self._parse()
        return got

    def _parse(self):
        pass

    def wait_end(self, timeout):
        """Read (and send what is queued) until the connection ends or timeout; the end
        ("eof", "reset") or None."""
        deadline = time.monotonic() + timeout
        while self.end is None:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if self.out:   # (what is still queued goes too: acknowledgements, requests)
                self.pump(0)
            self.poll(min(left, 0.2))
        return self.end

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class H2Peer(_Peer):
    """A raw HTTP/2 client. ``frames`` holds every frame read as (type, flags, stream,
    payload); ``handshake()`` sends the preface and SETTINGS and acknowledges the server's."""

    def __init__(self, port, **kwargs):
        super().__init__(port, **kwargs)
        self.frames = []
        self.status = {}          # {stream: :status of its first head}
        self._decoder = _new_decoder()
        self._block = None        # (stream, fragments) while CONTINUATIONs are due
        self.server_settings_seen = False
        self.auto_ack = True      # acknowledge the server's SETTINGS as they arrive (when read)

    def _parse(self):
        buf = self.inbuf
        pos = 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            ftype, flags, stream = struct.unpack_from(">BBI", buf, pos + 3)
            payload = bytes(buf[pos + 9:pos + 9 + length])
            pos += 9 + length
            stream &= 0x7FFFFFFF
            self.frames.append((ftype, flags, stream, payload))
            if ftype in (HEADERS, CONTINUATION):
                self._head(ftype, flags, stream, payload)
            if ftype == SETTINGS and not flags & ACK:
                self.server_settings_seen = True
                if self.auto_ack:
                    self.queue(settings_ack())
        del buf[:pos]

    def handshake(self, ack=True, wait=True, timeout=5.0, **settings_values):
        """Preface + SETTINGS; with wait, read until the server's SETTINGS arrived (and,
        with ack, acknowledge them)."""
        self.auto_ack = ack
        self.send(PREFACE + settings(**settings_values))
        if wait:
            deadline = time.monotonic() + timeout
            while not self.server_settings_seen and self.end is None:
                if time.monotonic() >= deadline:
                    raise AssertionError("no SETTINGS from the server within %.1f s" % timeout)
                self.poll(0.1)
            self.pump(1.0)
        return self

    def drain(self, timeout):
        """Read (answering nothing but the SETTINGS ACK) until the connection ends or
        timeout; returns ``end``."""
        return self.wait_end(timeout)

    def goaways(self):
        """[(last_stream_id, error_code)] of the GOAWAY frames read."""
        return [struct.unpack(">II", p[:8]) for t, f, s, p in self.frames if t == GOAWAY]

    def goaway_code(self):
        g = self.goaways()
        return g[-1][1] if g else None

    def resets(self):
        """{stream: code} of the RST_STREAM frames read."""
        return {s: struct.unpack(">I", p)[0] for t, f, s, p in self.frames if t == RST_STREAM}

    def _head(self, ftype, flags, stream, payload):
        if ftype == HEADERS:
            self._block = (stream, [_header_block(flags, payload)])
        elif self._block is not None:
            self._block[1].append(payload)
        if flags & END_HEADERS and self._block is not None:
            sid, parts = self._block
            self._block = None
            try:
                status = response_status(b"".join(parts), self._decoder)
            except Exception as e:   # noqa: BLE001 - recorded, the test decides
                status = "undecodable: %r" % e
            self.status.setdefault(sid, status)

    def statuses(self):
        """{stream: :status} of the response heads read (first head per stream)."""
        return dict(self.status)

    def ended_streams(self):
        """Streams with an END_STREAM (DATA or HEADERS) or RST_STREAM from the server."""
        return {s for t, f, s, p in self.frames
                if (t in (DATA, HEADERS) and f & END_STREAM) or t == RST_STREAM}

    def summary(self):
        counts = {}
        for t, f, s, p in self.frames:
            name = TYPE_NAMES[t] if t < len(TYPE_NAMES) else "type%d" % t
            counts[name] = counts.get(name, 0) + 1
        return "end=%s received=%d sent=%d frames=%s goaways=%s send_error=%s" % (
            self.end, self.received, self.sent, counts, self.goaways(), self.send_error)

    def request(self, stream, path="/", method="GET", end_stream=True, extra=()):
        self.queue(headers(stream, request_block(path, method, extra=extra), end_stream))


class H1Peer(_Peer):
    """A raw HTTP/1.1 client: ``text`` is everything read."""

    @property
    def text(self):
        return bytes(self.inbuf)

    def status_codes(self):
        import re
        return [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", bytes(self.inbuf))]

    def summary(self):
        return "end=%s received=%d sent=%d send_error=%s head=%r" % (
            self.end, self.received, self.sent, self.send_error, bytes(self.inbuf[:200]))


def attack_loop(peer, make_batch, duration, read=True, max_batches=None, block_limit=0.3):
    """Queue ``make_batch(i)`` again and again for ``duration`` seconds (or max_batches),
    pumping the socket; with read, poll the input between batches. Stops early when the
    connection ends, a send fails, or (read=False) the server stopped taking our bytes for
    ``block_limit`` s. Returns why it stopped: "time", "count", "ended", "blocked",
    "send_error"."""
    deadline = time.monotonic() + duration
    i = 0
    while True:
        if time.monotonic() >= deadline:
            return "time"
        if max_batches is not None and i >= max_batches:
            return "count"
        if len(peer.out) < (1 << 20):
            peer.queue(make_batch(i))
            i += 1
        ok = peer.pump(0 if len(peer.out) < (1 << 20) else block_limit)
        if peer.send_error is not None:
            return "send_error"
        if not ok and len(peer.out) >= (1 << 20):
            if not peer.pump(block_limit):
                if peer.send_error is not None:
                    return "send_error"
                return "blocked"
        if read:
            peer.poll(0)
            if peer.end is not None:
                return "ended"


# -- the well-behaved client --------------------------------------------------------------

class GoodClient(threading.Thread):
    """GET ``path`` every ``interval`` s over one keep-alive connection (reconnecting when
    the server closed it between requests), until ``stop()``. ``latencies`` of the answered
    requests, ``failures`` [(time, reason)]. A request that fails on a reused connection
    before any byte of its answer arrived is retried once on a new connection (as any
    client does after a keep-alive race); failing again is a failure."""

    def __init__(self, port, proto="h1", path="/", interval=0.05, timeout=5.0):
        super().__init__(daemon=True)
        self.port, self.proto, self.path = port, proto, path
        self.interval, self.timeout = interval, timeout
        self.latencies = []
        self.failures = []
        self.reconnects = 0
        self._stop_event = threading.Event()
        self._sock = None
        self._buf = b""
        self._fresh = True
        self._next_stream = 1
        self.started_at = None

    # connection handling

    def _connect(self):
        self._close()
        s = socket.create_connection((HOST, self.port), timeout=self.timeout)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(self.timeout)
        self._sock, self._buf, self._fresh, self._next_stream = s, b"", True, 1
        self._decoder = _new_decoder()
        if self.proto == "h2":
            s.sendall(PREFACE + settings(enable_push=0) + window_update(0, 1 << 30))

    def _close(self):
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def _recv(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("eof")
        self._buf += chunk

    # one request

    def _get_h1(self):
        self._sock.sendall(b"GET %s HTTP/1.1\r\nHost: good\r\n\r\n" % self.path.encode())
        while b"\r\n\r\n" not in self._buf:
            self._recv()
        head, _, rest = self._buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"connection" and b"close" in value.lower():
                close = True
        self._buf = rest
        while len(self._buf) < length:
            self._recv()
        self._buf = self._buf[length:]
        if close:
            self._close()
        return status

    def _get_h2(self):
        stream = self._next_stream
        self._next_stream += 2
        self._sock.sendall(headers(stream, request_block(self.path)))
        status = None
        while True:
            while len(self._buf) < 9 or len(self._buf) < 9 + int.from_bytes(self._buf[:3], "big"):
                self._recv()
            length = int.from_bytes(self._buf[:3], "big")
            ftype, flags, sid = struct.unpack(">BBI", self._buf[3:9])
            payload = self._buf[9:9 + length]
            self._buf = self._buf[9 + length:]
            sid &= 0x7FFFFFFF
            if ftype == SETTINGS and not flags & ACK:
                self._sock.sendall(settings_ack())
            elif ftype == PING and not flags & ACK:
                self._sock.sendall(ping(payload, ack=True))
            elif ftype == GOAWAY:
                last, code = struct.unpack(">II", payload[:8])
                if stream > last or code:
                    raise ConnectionError("GOAWAY last=%d code=%d" % (last, code))
            if sid == stream:
                if ftype == RST_STREAM:
                    raise ConnectionError("RST_STREAM %d" % struct.unpack(">I", payload)[0])
            if ftype == HEADERS:   # (every block: the decoder's table must follow)
                st = response_status(_header_block(flags, payload), self._decoder)
                if sid == stream and status is None:
                    status = st
            if sid == stream:
                if ftype == DATA and payload:
                    self._sock.sendall(window_update(stream, len(payload)) if
                                       not flags & END_STREAM else b"")
                if ftype in (HEADERS, DATA) and flags & END_STREAM:
                    return status

    def _once(self):
        if self._sock is None:
            self._connect()
        reused = not self._fresh
        self._fresh = False
        try:
            return self._get_h2() if self.proto == "h2" else self._get_h1()
        except (ConnectionError, OSError) as e:
            if reused and not isinstance(e, socket.timeout) and not self._buf:
                self.reconnects += 1
                self._connect()
                self._fresh = False
                return self._get_h2() if self.proto == "h2" else self._get_h1()
            raise

    def run(self):
        self.started_at = time.monotonic()
        while not self._stop_event.is_set():
            t0 = time.monotonic()
            try:
                status = self._once()
                if status != 200:
                    raise ConnectionError("status %s" % status)
                self.latencies.append(time.monotonic() - t0)
            except Exception as e:   # noqa: BLE001 - every failure is recorded
                self.failures.append((round(time.monotonic() - self.started_at, 2),
                                      "%s: %s" % (type(e).__name__, e)))
                self._close()
            self._stop_event.wait(self.interval)
        self._close()

    def stop(self):
        self._stop_event.set()
        self.join(self.timeout + 2)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def report(self):
        worst = max(self.latencies) if self.latencies else None
        return "good client (%s): %d answered, worst %.3f s, %d failures %s, %d reconnects" % (
            self.proto, len(self.latencies), worst or 0.0, len(self.failures),
            self.failures[:5], self.reconnects)

    def check(self, deadline=3.0, min_answers=3):
        """No failures, at least min_answers answered, the worst latency under deadline."""
        assert not self.failures, self.report()
        assert len(self.latencies) >= min_answers, self.report()
        assert max(self.latencies) < deadline, self.report()


# -- many idle connections (memory per connection) ----------------------------------------

def _read_h2_response(sock, stream=1, timeout=10.0):
    """Read frames until stream ends (END_STREAM); returns the bytes read."""
    buf = b""
    deadline = time.monotonic() + timeout
    while True:
        pos = 0
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            ftype, flags, sid = struct.unpack(">BBI", buf[pos + 3:pos + 9])
            pos += 9 + length
            if ftype == GOAWAY:
                raise ConnectionError("GOAWAY from the server")
            if sid == stream and ftype == RST_STREAM:
                raise ConnectionError("RST_STREAM from the server")
            if sid == stream and ftype in (HEADERS, DATA) and flags & END_STREAM:
                return buf
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk


def _read_h1_response(sock, timeout=30.0):
    """Read one HTTP/1.1 response with a Content-Length body; returns the body length."""
    buf = bytearray()
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        buf += chunk
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    got = len(rest)
    while got < length:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the server closed the connection mid-body")
        got += len(chunk)
    return length


def open_idle_connections(port, n, proto, body_size=1 << 20, batch=100):
    """Open n connections and leave them idle, each after one completed exchange:

    - ``h2``: preface, SETTINGS, SETTINGS ACK, ``GET /`` answered (plaintext HTTP/2);
    - ``h1``: ``GET /big?size=body_size`` read in full, kept alive.

    Returns the list of sockets (the caller closes them)."""
    socks = []
    for start in range(0, n, batch):
        group = []
        for _ in range(min(batch, n - start)):
            s = socket.create_connection((HOST, port), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if proto == "h2":
                # (our ACK may precede the server's SETTINGS on the wire: the server
                # writes them as the connection starts, so they are outstanding)
                s.sendall(PREFACE + settings(enable_push=0) + settings_ack()
                          + headers(1, request_block("/")))
            else:
                s.sendall(b"GET /big?size=%d HTTP/1.1\r\nHost: idle\r\n\r\n" % body_size)
            group.append(s)
        for s in group:
            if proto == "h2":
                _read_h2_response(s)
            else:
                _read_h1_response(s)
        socks.extend(group)
    return socks


def close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass
