"""In-memory HTTP/2 harness: endpoints wired back to back with no sockets.

- ``CnoPeer``: a ``cno.raw.Connection`` subclass that records its events as tuples in
  ``self.events`` and collects what ``on_writev`` hands it in an outbox. It defines every
  event method except ``on_message_push`` (so a client of this class advertises
  ENABLE_PUSH=0); ``CnoPushPeer`` adds it.
- ``H2Peer``: python-hyper's ``h2.connection.H2Connection`` behind the same interface.
- ``pump(a, b)``: moves bytes both ways (and retries blocked body writes) until nothing is
  left; raises ``PumpError`` if that does not happen within a bounded number of rounds.

Both peers share:

``start()``, ``receive(data)``, ``outbound()``, ``flush()`` (the pump's side), and
``request(...)``, ``respond(...)``, ``send_body(...)`` (a body writer that loops on the flow
control windows), ``events`` (tuples, see below), ``handlers`` (``{kind: fn(peer, *args)}``,
called right after an event of that kind is recorded, so a server can answer requests),
``bodies`` (``{stream: bytearray}``), ``sent`` / ``recv`` (``FrameLog`` of every frame out / in).

cno event tuples::

    ("start", stream)                      ("end", stream, code, side)
    ("head", stream, code, method, path, headers)
    ("data", stream, bytes)                ("tail", stream, trailers or None)
    ("push", stream, parent, method, path, headers)
    ("flow", stream)  ("settings",)  ("pong", data)  ("close",)

h2 event tuples::

    ("request", stream, headers)  ("response", stream, headers)  ("info", stream, headers)
    ("data", stream, bytes)  ("trailers", stream, headers)  ("ended", stream)
    ("reset", stream, code, remote)  ("push", promised, parent, headers)
    ("window", stream, delta)  ("settings", {code: value})  ("settings_ack",)
    ("ping", data)  ("pong", data)  ("goaway", code, last_stream_id)  ("priority", stream)

Headers in events are normalized to lists of ``(str, str)`` (latin-1), trailers likewise.
"""
import struct
from collections import namedtuple

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from h2.connection import ConnectionState

import cno.raw

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
AUTHORITY = "example.com"
SCHEME = "https"

# Frame types (RFC 9113 section 6), for FrameLog look-ups.
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
FLAG_END_STREAM = 0x1
FLAG_ACK = 0x1


class PumpError(AssertionError):
    """The two peers kept talking past the round limit."""


# ----------------------------------------------------------------------------------------
# Small helpers.

def to_str(x):
    if isinstance(x, str):
        return x
    if isinstance(x, (bytes, bytearray, memoryview)):
        return bytes(x).decode("latin-1")
    return x


def norm_headers(headers):
    """A header list (tuples of str/bytes, maybe 3-tuples) as a list of (str, str)."""
    if headers is None:
        return None
    return [(to_str(h[0]), to_str(h[1])) for h in headers]


def frame(type_, flags, stream, payload=b""):
    """One raw HTTP/2 frame (RFC 9113 4.1), for injecting frames a library would not send."""
    return (struct.pack(">I", len(payload))[1:] + bytes([type_, flags])
            + struct.pack(">I", stream & 0x7FFFFFFF) + payload)


def window_update(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def rst_stream(stream, code):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def priority(stream, depends_on=0, weight=15):
    return frame(PRIORITY, 0, stream, struct.pack(">IB", depends_on, weight))


def body_bytes(seed, size):
    """Deterministic pseudo-random bytes: body `seed` of `size` bytes."""
    import random
    return random.Random(seed).randbytes(size)


RawFrame = namedtuple("RawFrame", "type flags stream length payload")


class FrameLog:
    """Parses one direction of an HTTP/2 byte stream into frames (independently of the
    libraries under test). DATA payloads are not kept (only their length)."""

    def __init__(self, preface=False):
        self._buf = bytearray()
        self._preface = preface
        self.frames = []

    def feed(self, data):
        if not data:
            return
        buf = self._buf
        buf += data
        if self._preface:
            if len(buf) < len(PREFACE):
                return
            assert bytes(buf[:len(PREFACE)]) == PREFACE, "bad client preface"
            del buf[:len(PREFACE)]
            self._preface = False
        pos, end = 0, len(buf)
        while end - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if end - pos < 9 + length:
                break
            type_, flags = buf[pos + 3], buf[pos + 4]
            stream = int.from_bytes(buf[pos + 5:pos + 9], "big") & 0x7FFFFFFF
            payload = b"" if type_ == DATA else bytes(buf[pos + 9:pos + 9 + length])
            self.frames.append(RawFrame(type_, flags, stream, length, payload))
            pos += 9 + length
        del buf[:pos]

    def of(self, type_, stream=None):
        return [f for f in self.frames
                if f.type == type_ and (stream is None or f.stream == stream)]

    def count(self, type_, stream=None):
        return len(self.of(type_, stream))

    def clear(self):
        self.frames.clear()


Request = namedtuple("Request", "stream method path headers body trailers")


# ----------------------------------------------------------------------------------------
# The cno side.

_BASE_HAS_INIT = cno.raw.Connection.__init__ is not object.__init__


class CnoPeer(cno.raw.Connection):
    """A cno.raw.Connection that records its events and collects its output.

    Construct it like cno.raw.Connection (``CnoPeer(server=False)``); set attributes such
    as ``manual_flow_control`` before ``start()``.
    """

    chunk = 256 * 1024  # the most write_data is offered at once

    def __init__(self, *args, **kwargs):
        if _BASE_HAS_INIT:
            super().__init__(*args, **kwargs)
        self.events = []
        self.handlers = {}
        self.outbox = []
        self.writev_calls = 0
        self.bodies = {}
        self.pending = {}            # stream -> [data, offset, final, trailers]
        self.keep_data_events = True
        self.dropped = 0             # bytes received after the connection closed
        self.sent = FrameLog(preface=self.is_client)
        self.recv = FrameLog(preface=self.is_server)

    # -- transport side ---------------------------------------------------------------

    def start(self):
        self.connection_made(True)
        return self

    def receive(self, data):
        if self.closed:
            self.dropped += len(data)   # the transport is gone: nobody reads these bytes
            return
        self.recv.feed(data)
        self.data_received(data)

    def outbound(self):
        if not self.outbox:
            return b""
        out = b"".join(self.outbox)
        self.outbox.clear()
        self.sent.feed(out)
        return out

    # -- events --------------------------------------------------------------------------

    def _ev(self, ev):
        self.events.append(ev)
        handler = self.handlers.get(ev[0])
        if handler is not None:
            handler(self, *ev[1:])

    def on_writev(self, chunks):
        self.writev_calls += 1
        # Copy now: the chunks may be views of buffers the engine reuses.
        self.outbox.append(b"".join(chunks))

    def on_stream_start(self, stream):
        self._ev(("start", stream))

    def on_stream_end(self, stream, code, side):
        self.pending.pop(stream, None)
        self._ev(("end", stream, code, side))

    def on_flow_increase(self, stream):
        self._ev(("flow", stream))

    def on_message_head(self, stream, code, method, path, headers):
        self._ev(("head", stream, code, to_str(method), to_str(path), norm_headers(headers)))

    def on_message_data(self, stream, data):
        data = bytes(data)
        self.bodies.setdefault(stream, bytearray()).extend(data)
        if self.keep_data_events:
            self._ev(("data", stream, data))
        else:
            handler = self.handlers.get("data")
            if handler is not None:
                handler(self, stream, data)

    def on_message_tail(self, stream, trailers):
        self._ev(("tail", stream, norm_headers(trailers)))

    def on_pong(self, data):
        self._ev(("pong", bytes(data)))

    def on_settings(self):
        self._ev(("settings",))

    def on_close(self):
        self._ev(("close",))

    # -- writing -------------------------------------------------------------------------

    def request(self, method, path, headers=(), body=b"", trailers=None, end=True,
                authority=AUTHORITY, scheme=SCHEME):
        """Send a request on next_stream; returns the stream id."""
        stream = self.next_stream
        final = end and not body and trailers is None
        hdrs = [(":scheme", scheme), (":authority", authority)] + list(headers)
        self.write_head(stream, 0, method, path, hdrs, final)
        if not final:
            self.send_body(stream, body, end, trailers)
        return stream

    def respond(self, stream, code, headers=(), body=b"", trailers=None, end=True):
        final = end and not body and trailers is None
        self.write_head(stream, code, "", "", list(headers), final)
        if not final:
            self.send_body(stream, body, end, trailers)

    def send_body(self, stream, data, final=True, trailers=None):
        """Write `data` (then `trailers`, or END_STREAM if `final`) as the windows allow;
        what they do not accept now is retried by flush()."""
        if not data and not final and trailers is None:
            return
        self.pending[stream] = [bytes(data), 0, final, trailers]
        self.flush_stream(stream)

    def flush(self):
        for stream in list(self.pending):
            self.flush_stream(stream)

    def flush_stream(self, stream):
        p = self.pending.get(stream)
        if p is None:
            return
        data, off, final, trailers = p
        while True:
            chunk = data[off:off + self.chunk]
            last = off + len(chunk) >= len(data)
            fin = final and last and trailers is None
            if chunk or fin:
                n = self.write_data(stream, chunk, fin)
                assert 0 <= n <= len(chunk), "write_data returned %r for %d bytes" % (n, len(chunk))
                off += n
                if n < len(chunk):
                    p[1] = off
                    return
            if last:
                break
        self.pending.pop(stream, None)
        if trailers is not None:
            self.write_tail(stream, trailers)

    # -- queries -------------------------------------------------------------------------

    def of(self, kind, stream=None):
        return [e for e in self.events if e[0] == kind and (stream is None or e[1] == stream)]

    def kinds(self, stream):
        """The kinds of the events of `stream`, in order (data events merged)."""
        out = []
        for e in self.events:
            if len(e) > 1 and e[0] not in ("flow",) and e[1] == stream:
                if not (e[0] == "data" and out and out[-1] == "data"):
                    out.append(e[0])
        return out

    def body(self, stream):
        return bytes(self.bodies.get(stream, b""))

    def end_of(self, stream):
        ends = self.of("end", stream)
        assert len(ends) <= 1, "on_stream_end fired %d times for stream %d" % (len(ends), stream)
        return ends[0] if ends else None

    def request_of(self, stream):
        heads = [e for e in self.of("head", stream) if e[2] == 0]
        tails = self.of("tail", stream)
        h = heads[-1]
        return Request(stream, h[3], h[4], h[5], self.body(stream),
                       tails[-1][2] if tails else None)


class CnoPushPeer(CnoPeer):
    """A CnoPeer whose class defines on_message_push (a client of it accepts pushes)."""

    def on_message_push(self, stream, parent, method, path, headers):
        self._ev(("push", stream, parent, to_str(method), to_str(path), norm_headers(headers)))


def cno_auto_respond(peer, responder, on="tail"):
    """Answer every request `peer` (a cno server) receives: `responder(peer, Request)`
    returns (code, headers, body, trailers) or None (no answer). `on="head"` answers as
    soon as the head arrives (full duplex; the body is then empty in the Request)."""
    def handler(p, stream, *rest):
        if on == "head" and rest[0] != 0:
            return
        req = p.request_of(stream)
        answer = responder(p, req)
        if answer is not None:
            code, headers, body, trailers = answer
            p.respond(stream, code, headers, body, trailers)
    peer.handlers[on] = handler


# ----------------------------------------------------------------------------------------
# The h2 side.

class H2Peer:
    """h2's H2Connection with the CnoPeer interface.

    config: extra H2Configuration arguments (validate_outbound_headers=False, ...).
    auto_ack: acknowledge received data at once (h2 then sends WINDOW_UPDATEs itself).
    data_chunk: the largest DATA payload to send (default: the peer's max frame size).
    pad: padding length for every DATA frame sent (None: no padding).
    survive_goaway: h2 refuses every frame after a GOAWAY; with this set, the peer keeps
        the connection open after receiving one (or after goaway(..., keep_open=True)) so
        streams below the last-stream-id can finish, as RFC 9113 6.8 allows.
    """

    def __init__(self, client_side, auto_ack=True, data_chunk=None, pad=None,
                 survive_goaway=False, **config):
        config.setdefault("header_encoding", None)
        self.config = h2.config.H2Configuration(client_side=client_side, **config)
        self.conn = h2.connection.H2Connection(config=self.config)
        self.client_side = client_side
        self.auto_ack = auto_ack
        self.data_chunk = data_chunk
        self.pad = pad
        self.survive_goaway = survive_goaway
        self.events = []
        self.raw_events = []
        self.handlers = {}
        self.bodies = {}
        self.pending = {}
        self.keep_data_events = True
        self.dropped = 0
        self._stash = b""
        self._inbuf = bytearray()
        self._preface_seen = client_side
        self.sent = FrameLog(preface=client_side)
        self.recv = FrameLog(preface=not client_side)

    # -- transport side ---------------------------------------------------------------

    def start(self):
        self.conn.initiate_connection()
        return self

    @property
    def closed(self):
        return self.conn.state_machine.state == ConnectionState.CLOSED

    def _reopen(self):
        self.conn.state_machine.state = (ConnectionState.CLIENT_OPEN if self.client_side
                                         else ConnectionState.SERVER_OPEN)

    def receive(self, data):
        if self.closed:
            self.dropped += len(data)
            return
        self.recv.feed(data)
        if not self.survive_goaway:
            self._handle(self.conn.receive_data(bytes(data)))
            return
        # Feed frame by frame so that a GOAWAY can be survived.
        buf = self._inbuf
        buf += data
        pos = 0
        if not self._preface_seen:
            if len(buf) < len(PREFACE):
                return
            self._handle(self.conn.receive_data(bytes(buf[:len(PREFACE)])))
            pos = len(PREFACE)
            self._preface_seen = True
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos < 9 + length:
                break
            unit = bytes(buf[pos:pos + 9 + length])
            pos += 9 + length
            if unit[3] == GOAWAY:
                self._stash += self.conn.data_to_send()  # h2 drops its output on GOAWAY
                events = self.conn.receive_data(unit)
                self._reopen()
            else:
                events = self.conn.receive_data(unit)
            self._handle(events)
        del buf[:pos]

    def outbound(self):
        out = self._stash + self.conn.data_to_send()
        self._stash = b""
        self.sent.feed(out)
        return out

    # -- events --------------------------------------------------------------------------

    def _ev(self, ev):
        self.events.append(ev)
        handler = self.handlers.get(ev[0])
        if handler is not None:
            handler(self, *ev[1:])

    def _handle(self, events):
        E = h2.events
        for ev in events:
            if not isinstance(ev, E.DataReceived):
                self.raw_events.append(ev)     # (data is in bodies)
            if isinstance(ev, E.RequestReceived):
                self._ev(("request", ev.stream_id, norm_headers(ev.headers)))
            elif isinstance(ev, E.ResponseReceived):
                self._ev(("response", ev.stream_id, norm_headers(ev.headers)))
            elif isinstance(ev, E.InformationalResponseReceived):
                self._ev(("info", ev.stream_id, norm_headers(ev.headers)))
            elif isinstance(ev, E.TrailersReceived):
                self._ev(("trailers", ev.stream_id, norm_headers(ev.headers)))
            elif isinstance(ev, E.DataReceived):
                self.bodies.setdefault(ev.stream_id, bytearray()).extend(ev.data)
                if self.auto_ack and ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                if self.keep_data_events:
                    self._ev(("data", ev.stream_id, bytes(ev.data)))
                else:
                    handler = self.handlers.get("data")
                    if handler is not None:
                        handler(self, ev.stream_id, bytes(ev.data))
            elif isinstance(ev, E.StreamEnded):
                self._ev(("ended", ev.stream_id))
            elif isinstance(ev, E.StreamReset):
                self.pending.pop(ev.stream_id, None)
                self._ev(("reset", ev.stream_id, int(ev.error_code), ev.remote_reset))
            elif isinstance(ev, E.PushedStreamReceived):
                self._ev(("push", ev.pushed_stream_id, ev.parent_stream_id,
                          norm_headers(ev.headers)))
            elif isinstance(ev, E.WindowUpdated):
                self._ev(("window", ev.stream_id, ev.delta))
            elif isinstance(ev, E.RemoteSettingsChanged):
                self._ev(("settings", {int(k): v.new_value for k, v in ev.changed_settings.items()}))
            elif isinstance(ev, E.SettingsAcknowledged):
                self._ev(("settings_ack",))
            elif isinstance(ev, E.PingReceived):
                self._ev(("ping", ev.ping_data))
            elif isinstance(ev, E.PingAckReceived):
                self._ev(("pong", ev.ping_data))
            elif isinstance(ev, E.ConnectionTerminated):
                self._ev(("goaway", int(ev.error_code), ev.last_stream_id))
            elif isinstance(ev, E.PriorityUpdated):
                self._ev(("priority", ev.stream_id))
            else:
                self._ev((type(ev).__name__,))

    # -- writing -------------------------------------------------------------------------

    def request(self, method, path, headers=(), body=b"", trailers=None, end=True,
                authority=AUTHORITY, scheme=SCHEME):
        stream = self.conn.get_next_available_stream_id()
        final = end and not body and trailers is None
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + list(headers)
        self.conn.send_headers(stream, hdrs, end_stream=final)
        if not final:
            self.send_body(stream, body, end, trailers)
        return stream

    def respond(self, stream, code, headers=(), body=b"", trailers=None, end=True):
        final = end and not body and trailers is None
        self.conn.send_headers(stream, [(":status", str(code))] + list(headers), end_stream=final)
        if not final:
            self.send_body(stream, body, end, trailers)

    def push(self, parent, method, path, headers=(), authority=AUTHORITY, scheme=SCHEME):
        promised = self.conn.get_next_available_stream_id()
        hdrs = [(":method", method), (":scheme", scheme), (":authority", authority),
                (":path", path)] + list(headers)
        self.conn.push_stream(parent, promised, hdrs)
        return promised

    def goaway(self, last_stream_id=None, code=0, keep_open=False):
        """Send GOAWAY; keep_open lets this side go on serving streams below the id."""
        self.conn.close_connection(error_code=code, last_stream_id=last_stream_id)
        if keep_open:
            self._reopen()

    def send_now(self, stream, data, end_stream=False):
        """DATA frames for all of `data` at once (the caller knows the windows allow it)."""
        size = self.conn.max_outbound_frame_size
        for off in range(0, len(data), size):
            chunk = data[off:off + size]
            self.conn.send_data(stream, chunk, end_stream=end_stream and off + size >= len(data))

    def send_body(self, stream, data, final=True, trailers=None):
        if not data and not final and trailers is None:
            return
        self.pending[stream] = [bytes(data), 0, final, trailers]
        self.flush_stream(stream)

    def flush(self):
        for stream in list(self.pending):
            self.flush_stream(stream)

    def flush_stream(self, stream):
        p = self.pending.get(stream)
        if p is None:
            return
        data, off, final, trailers = p
        conn = self.conn
        overhead = 0 if self.pad is None else self.pad + 1
        try:
            while off < len(data):
                window = conn.local_flow_control_window(stream)
                size = min(window, conn.max_outbound_frame_size, self.data_chunk or 1 << 30) - overhead
                if size <= 0:
                    p[1] = off
                    return
                chunk = data[off:off + size]
                off += len(chunk)
                fin = final and off >= len(data) and trailers is None
                conn.send_data(stream, chunk, end_stream=fin, pad_length=self.pad)
            del self.pending[stream]
            if trailers is not None:
                conn.send_headers(stream, trailers, end_stream=True)
            elif final and not data:
                conn.end_stream(stream)
        except h2.exceptions.StreamClosedError:
            self.pending.pop(stream, None)

    # -- queries -------------------------------------------------------------------------

    def of(self, kind, stream=None):
        return [e for e in self.events if e[0] == kind and (stream is None or e[1] == stream)]

    def body(self, stream):
        return bytes(self.bodies.get(stream, b""))

    def request_of(self, stream):
        headers = self.of("request", stream)[-1][2]
        pseudo = dict(h for h in headers if h[0].startswith(":"))
        regular = [h for h in headers if not h[0].startswith(":")]
        tr = self.of("trailers", stream)
        return Request(stream, pseudo.get(":method"), pseudo.get(":path"), regular,
                       self.body(stream), tr[-1][2] if tr else None)


def h2_auto_respond(peer, responder, on="ended"):
    """Answer every request `peer` (an h2 server) receives once it has ended (or at its
    head with on="request"): `responder(peer, Request)` returns (code, headers, body,
    trailers) or None."""
    def handler(p, stream, *rest):
        if stream % 2 == 0:
            return
        answer = responder(p, p.request_of(stream))
        if answer is not None:
            code, headers, body, trailers = answer
            p.respond(stream, code, headers, body, trailers)
    peer.handlers[on] = handler


def response_headers(headers):
    """Regular headers of an h2 response/request event (pseudo-headers split off)."""
    return [h for h in headers if not h[0].startswith(":")]


def pseudo(headers):
    return dict(h for h in headers if h[0].startswith(":"))


# ----------------------------------------------------------------------------------------
# Wiring.

def pump(a, b, max_rounds=200_000, split=None):
    """Move bytes between a and b (and retry blocked writes) until both are quiet.
    Returns the number of rounds. split(data) -> list of pieces: deliver each buffer in
    those pieces (to exercise incremental parsing)."""
    for rounds in range(max_rounds):
        moved = False
        for src, dst in ((a, b), (b, a)):
            src.flush()
            out = src.outbound()
            if out:
                if split is None:
                    dst.receive(out)
                else:
                    for piece in split(out):
                        dst.receive(piece)
                moved = True
        if not moved:
            return rounds
    raise PumpError("no quiescence after %d rounds" % max_rounds)


def splitter(seed, max_piece=64):
    """split(data) for pump(): random pieces of 1..max_piece bytes (seeded)."""
    import random
    rng = random.Random(seed)

    def split(data):
        out, pos = [], 0
        while pos < len(data):
            n = rng.randint(1, max_piece)
            out.append(data[pos:pos + n])
            pos += n
        return out
    return split


def one_byte(data):
    return [data[i:i + 1] for i in range(len(data))]


def deliver(src, dst):
    """Move what src has written so far to dst (one direction, no flushing)."""
    out = src.outbound()
    if out:
        dst.receive(out)
    return len(out)


def connect(client, server):
    """Start both sides and exchange prefaces and SETTINGS; returns (client, server)."""
    client.start()
    server.start()
    pump(client, server)
    return client, server


def cno_h2(cno_role, cno_cls=None, h2_kw=None, cno_kw=None, setup=None):
    """A connected (cno peer, h2 peer) pair; cno_role is "client" or "server".

    setup(cno_peer) runs before the handshake (e.g. to set manual_flow_control)."""
    h2_kw = dict(h2_kw or {})
    if cno_role == "client":
        c = (cno_cls or CnoPeer)(server=False, **(cno_kw or {}))
        h = H2Peer(client_side=False, **h2_kw)
        if setup:
            setup(c)
        connect(c, h)
    else:
        c = (cno_cls or CnoPeer)(server=True, **(cno_kw or {}))
        h = H2Peer(client_side=True, **h2_kw)
        if setup:
            setup(c)
        connect(h, c)
    return c, h


def cno_pair(client_cls=None, server_cls=None, client_kw=None, server_kw=None, setup=None):
    """A connected (cno client, cno server) pair."""
    c = (client_cls or CnoPeer)(server=False, **(client_kw or {}))
    s = (server_cls or CnoPeer)(server=True, **(server_kw or {}))
    if setup:
        setup(c, s)
    connect(c, s)
    return c, s
