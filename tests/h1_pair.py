"""In-memory HTTP/1.1 harness: a cno peer and an h11 peer wired back to back, no sockets.

- ``CnoH1Peer``: ``h2_pair.CnoPeer`` started in HTTP/1.1 (``connection_made(False)``). It
  records the same event tuples as CnoPeer (plus ``("upgrade", stream)``) and keeps the
  raw bytes it sent / received in ``tx`` / ``rx``. When ``on_close`` fires the harness
  "closes the transport": its remaining output is delivered, then EOF, and nothing more
  reaches it (``dropped`` counts the bytes that would have).
- ``H11Peer``: python-hyper's sans-IO ``h11.Connection`` (client or server) behind the same
  interface; records events (see below), starts the next cycle by itself once both sides
  are DONE (``auto_cycle``), and closes its transport once both sides must close
  (``auto_close``).
- ``H2cClient`` / ``H2cServer``: h2 peers (``h2_pair.H2Peer``) that reach HTTP/2 through
  an HTTP/1.1 ``Upgrade: h2c`` exchange (RFC 7540 3.2).
- ``pump(a, b)``: moves bytes, and EOFs, both ways until nothing moves; bounded.

Every peer has ``receive(data)``, ``receive_eof()``, ``outbound()``, ``flush()`` and
``wants_eof()`` (its transport is closed: EOF goes to the other side once its output is
out); pump() also takes an ``h2_pair.H2Peer``, which has neither EOF method.

h11 event tuples (``cycle`` counts request/response exchanges from 0; headers are lists
of ``(str, str)`` with lower-case names, as h11 reports them)::

    ("request", cycle, method, target, headers, http_version)
    ("response", cycle, status, headers, reason, http_version)
    ("info", cycle, status, headers)
    ("data", cycle, bytes)          (only with keep_data_events; bodies[cycle] always)
    ("eom", cycle, trailers)        ("closed", cycle)
"""
import base64
import struct
from collections import namedtuple

import h11

from h2_pair import (  # noqa: F401  (re-exported for the tests)
    AUTHORITY,
    FrameLog,
    H2Peer,
    PumpError,
    CnoPeer,
    body_bytes,
    norm_headers,
    one_byte,
    splitter,
    to_str,
)

H11_LIMIT = 1 << 22   # max_incomplete_event_size for h11 peers: big heads are tested


# ----------------------------------------------------------------------------------------
# The cno side.

class CnoH1Peer(CnoPeer):
    """A CnoPeer that speaks HTTP/1.1 (and HTTP/2 after a switch). See the module doc."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.tx = bytearray()
        self.rx = bytearray()
        self.auto_close = True
        self.transport_closed = False
        self.eof_received = False

    def start(self):
        self.connection_made(False)
        return self

    def receive(self, data):
        if self.transport_closed or self.closed:
            self.dropped += len(data)
            return
        self.rx += data
        self.data_received(data)

    def receive_eof(self):
        if self.transport_closed or self.closed:
            return
        self.eof_received = True
        self.connection_lost()

    def outbound(self):
        if not self.outbox:
            return b""
        out = b"".join(self.outbox)
        self.outbox.clear()
        self.tx += out
        return out

    def wants_eof(self):
        return self.transport_closed

    def on_close(self):
        super().on_close()
        if self.auto_close:
            self.transport_closed = True

    def on_upgrade(self, stream):
        self._ev(("upgrade", stream))

    def response_of(self, stream):
        """(code, headers, body, trailers) of the final response on `stream` (client)."""
        heads = [e for e in self.of("head", stream) if e[2] >= 200]
        assert len(heads) == 1, "%d final heads on stream %d: %r" % (len(heads), stream,
                                                                     self.of("head", stream))
        tails = self.of("tail", stream)
        return heads[0][2], heads[0][5], self.body(stream), tails[-1][2] if tails else None


# ----------------------------------------------------------------------------------------
# The h11 side.

Message = namedtuple("Message", "head body trailers complete")


def _hdrs(headers):
    return [(to_str(n), to_str(v)) for n, v in headers]


class H11Peer:
    """h11.Connection with the pump interface. `role` is h11.CLIENT or h11.SERVER.

    handlers: {kind: fn(peer, *event[1:])}, called right after an event is recorded (a
    server answers in its "eom" handler). strict: an h11 RemoteProtocolError propagates
    (else it is recorded as ("error", cycle, exc) and the peer stops reading).
    """

    def __init__(self, role, auto_cycle=True, auto_close=True, strict=True,
                 keep_data_events=False):
        self.role = role
        self.conn = h11.Connection(role, max_incomplete_event_size=H11_LIMIT)
        self.auto_cycle = auto_cycle
        self.auto_close = auto_close
        self.strict = strict
        self.keep_data_events = keep_data_events
        self.events = []
        self.handlers = {}
        self.bodies = {}
        self.cycle = 0
        self.out = bytearray()
        self.tx = bytearray()
        self.rx = bytearray()
        self.closing = False     # our transport is closed (EOF goes out)
        self.dropped = 0
        self.eof_received = False
        self._draining = False

    # -- sending -------------------------------------------------------------------------

    def send(self, *events):
        for ev in events:
            data = self.conn.send(ev)
            if data:
                self.out += data
        self._drain()

    def send_request(self, method, target, headers, body=b"", trailers=None,
                     chunked=None, pieces=None, http_version="1.1"):
        """A whole request: `chunked` None picks Content-Length for a body without trailers."""
        self.send(*message_events(h11.Request, dict(method=method, target=target,
                                                    http_version=http_version),
                                  headers, body, trailers, chunked, pieces))

    def send_response(self, status, headers, body=b"", trailers=None, chunked=None,
                      pieces=None, reason=b""):
        self.send(*message_events(h11.Response, dict(status_code=status, reason=reason),
                                  headers, body, trailers, chunked, pieces))

    def close(self):
        self.closing = True

    # -- the pump's side -----------------------------------------------------------------

    def flush(self):
        pass

    def outbound(self):
        out = bytes(self.out)
        self.out.clear()
        self.tx += out
        return out

    def wants_eof(self):
        if not self.closing and self.auto_close:
            closing_states = (h11.MUST_CLOSE, h11.CLOSED)
            if self.conn.our_state in closing_states and self.conn.their_state in closing_states:
                self.closing = True
        return self.closing

    def receive(self, data):
        if self.closing or self.conn.their_state is h11.ERROR:
            self.dropped += len(data)
            return
        self.rx += data
        self.conn.receive_data(bytes(data))
        self._drain()

    def receive_eof(self):
        if self.eof_received or self.conn.their_state is h11.ERROR:
            return
        self.eof_received = True
        if self.conn.their_state is h11.SWITCHED_PROTOCOL:
            return
        self.conn.receive_data(b"")
        self._drain()

    # -- events --------------------------------------------------------------------------

    def _ev(self, ev):
        self.events.append(ev)
        handler = self.handlers.get(ev[0])
        if handler is not None:
            handler(self, *ev[1:])

    def _maybe_cycle(self):
        c = self.conn
        if self.auto_cycle and c.our_state is h11.DONE and c.their_state is h11.DONE:
            c.start_next_cycle()
            self.cycle += 1

    def _drain(self):
        if self._draining:
            return
        self._draining = True
        try:
            while True:
                self._maybe_cycle()
                if self.conn.their_state is h11.ERROR:
                    return
                try:
                    ev = self.conn.next_event()
                except h11.RemoteProtocolError as exc:
                    if self.strict:
                        raise
                    self._ev(("error", self.cycle, exc))
                    return
                if ev is h11.NEED_DATA or ev is h11.PAUSED:
                    return
                self._record(ev)
                if type(ev) is h11.ConnectionClosed:
                    return
        finally:
            self._draining = False

    def _record(self, ev):
        n = self.cycle
        if type(ev) is h11.Request:
            self.bodies[n] = bytearray()
            self._ev(("request", n, to_str(ev.method), to_str(ev.target), _hdrs(ev.headers),
                      to_str(ev.http_version)))
        elif type(ev) is h11.Response:
            self.bodies[n] = bytearray()
            self._ev(("response", n, ev.status_code, _hdrs(ev.headers), to_str(ev.reason),
                      to_str(ev.http_version)))
        elif type(ev) is h11.InformationalResponse:
            self._ev(("info", n, ev.status_code, _hdrs(ev.headers)))
        elif type(ev) is h11.Data:
            self.bodies.setdefault(n, bytearray()).extend(ev.data)
            if self.keep_data_events:
                self._ev(("data", n, bytes(ev.data)))
        elif type(ev) is h11.EndOfMessage:
            self._ev(("eom", n, _hdrs(ev.headers)))
        elif type(ev) is h11.ConnectionClosed:
            self._ev(("closed", n))
        else:  # pragma: no cover
            self._ev((type(ev).__name__, n))

    # -- queries -------------------------------------------------------------------------

    def of(self, kind, cycle=None):
        return [e for e in self.events if e[0] == kind and (cycle is None or e[1] == cycle)]

    def message(self, cycle):
        """The request (server) or final response (client) of exchange `cycle`."""
        kind = "request" if self.role is h11.SERVER else "response"
        heads = self.of(kind, cycle)
        eoms = self.of("eom", cycle)
        return Message(heads[-1] if heads else None, bytes(self.bodies.get(cycle, b"")),
                       eoms[-1][2] if eoms else None, bool(eoms))

    @property
    def trailing(self):
        """Bytes after a protocol switch (h11's trailing_data)."""
        return self.conn.trailing_data[0]


def message_events(cls, kw, headers, body=b"", trailers=None, chunked=None, pieces=None):
    """h11 events for one message: head (framing header added), Data pieces, EndOfMessage.

    chunked: None = no framing header for an empty message, else Content-Length unless
    there are trailers; True = Transfer-Encoding: chunked; False = Content-Length.
    pieces: sizes of the Data events (cycled)."""
    headers = list(headers)
    if chunked is None and not body and trailers is None:
        pass
    elif chunked or (chunked is None and trailers is not None):
        headers.append(("Transfer-Encoding", "chunked"))
    else:
        headers.append(("Content-Length", str(len(body))))
    evs = [cls(headers=headers, **kw)]
    pos, i = 0, 0
    pieces = pieces or [len(body) or 1]
    while pos < len(body):
        n = max(1, pieces[i % len(pieces)])
        evs.append(h11.Data(data=body[pos:pos + n]))
        pos += n
        i += 1
    evs.append(h11.EndOfMessage(headers=list(trailers or [])))
    return evs


def request_bytes(method, target, headers, body=b"", trailers=None, chunked=None,
                  http_version="1.1", pieces=None):
    """One request serialised by a fresh h11 client (for pipelining by hand)."""
    c = h11.Connection(h11.CLIENT)
    out = b""
    for ev in message_events(h11.Request, dict(method=method, target=target,
                                               http_version=http_version),
                             headers, body, trailers, chunked, pieces):
        out += c.send(ev) or b""
    return out


ParsedResponse = namedtuple("ParsedResponse", "status headers reason version body trailers infos")


def parse_responses(data, methods=("GET",), eof=False):
    """Parse `data` (a server's output) as the responses to requests with `methods`, in
    order, with an h11 client. Returns a list of ParsedResponse (fewer if data ends) and
    whether h11 saw the connection end (ConnectionClosed)."""
    c = h11.Connection(h11.CLIENT, max_incomplete_event_size=H11_LIMIT)
    c.receive_data(bytes(data))
    if eof:
        c.receive_data(b"")
    out = []
    closed = False
    for i, method in enumerate(methods):
        if i:
            if c.our_state is not h11.DONE or c.their_state is not h11.DONE:
                break
            c.start_next_cycle()
        c.send(h11.Request(method=method, target="/", headers=[("host", AUTHORITY)]))
        c.send(h11.EndOfMessage())
        head, body, infos, trailers = None, bytearray(), [], None
        while True:
            ev = c.next_event()
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                break
            if type(ev) is h11.InformationalResponse:
                infos.append((ev.status_code, _hdrs(ev.headers)))
            elif type(ev) is h11.Response:
                head = ev
            elif type(ev) is h11.Data:
                body += ev.data
            elif type(ev) is h11.EndOfMessage:
                trailers = _hdrs(ev.headers)
                break
            elif type(ev) is h11.ConnectionClosed:
                closed = True
                break
        if head is None:
            break
        out.append(ParsedResponse(head.status_code, _hdrs(head.headers), to_str(head.reason),
                                  to_str(head.http_version), bytes(body), trailers, infos))
        if trailers is None:
            break
    if eof and not closed:
        try:
            while True:
                ev = c.next_event()
                if type(ev) is h11.ConnectionClosed:
                    closed = True
                    break
                if ev is h11.NEED_DATA or ev is h11.PAUSED:
                    break
        except h11.RemoteProtocolError:
            pass
    return out, closed


def split_head(data):
    """(status line, [(name, value)] lower-cased names, rest) of a raw HTTP/1.x head."""
    data = bytes(data)
    end = data.index(b"\r\n\r\n")
    lines = data[:end].split(b"\r\n")
    headers = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers.append((name.decode("latin-1").lower(), value.strip().decode("latin-1")))
    return lines[0].decode("latin-1"), headers, data[end + 4:]


def header_values(headers, name):
    return [v for n, v in headers if n == name]


def tokens(headers, name):
    """The comma-separated tokens of every `name` header, lower-cased."""
    out = []
    for v in header_values(headers, name):
        out += [t.strip().lower() for t in v.split(",") if t.strip()]
    return out


# ----------------------------------------------------------------------------------------
# h2 peers that arrive through an Upgrade: h2c exchange.

def decode_h2_settings(value):
    """The {id: value} pairs of an HTTP2-Settings header value (base64url, RFC 7540 3.2.1)."""
    if isinstance(value, str):
        value = value.encode("latin-1")
    raw = base64.urlsafe_b64decode(value + b"=" * (-len(value) % 4))
    assert len(raw) % 6 == 0, "HTTP2-Settings payload of %d bytes" % len(raw)
    return dict(struct.unpack(">HI", raw[i:i + 6]) for i in range(0, len(raw), 6))


class H2cClient:
    """An h2 client that starts with an HTTP/1.1 request carrying Upgrade: h2c.

    The request bytes are built by hand. The answer is parsed by an h11 client that
    "sent" the same request; a 101 switches to `h2` (an H2Peer) and the bytes after the
    101 head go to it; any other answer is recorded in `h1_response`.
    """

    def __init__(self, path="/", method="GET", extra_headers=(), body=b"", settings=None,
                 settings_header=None, connection="Upgrade, HTTP2-Settings", **h2_kw):
        self.h2 = H2Peer(client_side=True, **h2_kw)
        if settings:
            import h2.settings
            self.h2.conn.local_settings = h2.settings.Settings(client=True,
                                                               initial_values=settings)
        value = self.h2.conn.initiate_upgrade_connection()
        self.settings_value = value if settings_header is None else settings_header
        headers = [("Host", AUTHORITY), ("Connection", connection), ("Upgrade", "h2c"),
                   ("HTTP2-Settings", to_str(self.settings_value))] + list(extra_headers)
        if body:
            headers.append(("Content-Length", str(len(body))))
        head = "%s %s HTTP/1.1\r\n" % (method, path)
        head += "".join("%s: %s\r\n" % (n, v) for n, v in headers) + "\r\n"
        self.request_bytes = head.encode("latin-1") + body
        self.h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=H11_LIMIT)
        self.h11.send(h11.Request(method=method, target=path, headers=headers))
        if body:
            self.h11.send(h11.Data(data=body))
        self.h11.send(h11.EndOfMessage())
        self.upgraded = False
        self.info = None            # the 101, as (status, headers)
        self.h1_response = None     # a non-101 answer: (status, headers)
        self.h1_body = bytearray()
        self.h1_done = False
        self._out = bytearray(self.request_bytes)
        self.rx = bytearray()
        self.eof_received = False
        self.closing = False

    # pump interface
    def flush(self):
        if self.upgraded:
            self.h2.flush()

    def outbound(self):
        out = bytes(self._out)
        self._out.clear()
        if self.upgraded:
            out += self.h2.outbound()
        return out

    def wants_eof(self):
        return self.closing

    def receive(self, data):
        self.rx += data
        if self.upgraded:
            self.h2.receive(data)
            return
        self.h11.receive_data(bytes(data))
        self._drain()

    def receive_eof(self):
        self.eof_received = True
        if not self.upgraded:
            self.h11.receive_data(b"")
            self._drain()

    def _drain(self):
        while not self.upgraded:
            ev = self.h11.next_event()
            if ev is h11.NEED_DATA:
                return
            if ev is h11.PAUSED:
                if self.h11.their_state is h11.SWITCHED_PROTOCOL:
                    self.upgraded = True
                    rest = self.h11.trailing_data[0]
                    if rest:
                        self.h2.receive(rest)
                return
            if type(ev) is h11.InformationalResponse:
                if ev.status_code == 101:
                    self.info = (101, _hdrs(ev.headers))
            elif type(ev) is h11.Response:
                self.h1_response = (ev.status_code, _hdrs(ev.headers))
            elif type(ev) is h11.Data:
                self.h1_body += ev.data
            elif type(ev) is h11.EndOfMessage:
                self.h1_done = True
            elif type(ev) is h11.ConnectionClosed:
                return


class H2cServer:
    """An h2 server reached through Upgrade: h2c. The first request is parsed with h11
    (`request`: the h11.Request, `request_body`); `on_request(self)` then decides: call
    accept() (writes the 101 by hand + h2's preface; stream 1 is the request) or answer in
    HTTP/1.1 through `h11` yourself. With no on_request, accept() is called."""

    UPGRADE_101 = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"

    def __init__(self, on_request=None, **h2_kw):
        self.h2 = H2Peer(client_side=False, **h2_kw)
        self.h11 = h11.Connection(h11.SERVER, max_incomplete_event_size=H11_LIMIT)
        self.on_request = on_request
        self.request = None
        self.request_body = bytearray()
        self.upgraded = False
        self._out = bytearray()
        self.rx = bytearray()
        self.closing = False
        self.eof_received = False

    def accept(self):
        value = header_values(_hdrs(self.request.headers), "http2-settings")[0]
        self.h2.conn.initiate_upgrade_connection(value.encode("latin-1"))
        self._out += self.UPGRADE_101
        self._out += self.h2.outbound()
        self.upgraded = True
        rest = self.h11.trailing_data[0]
        if rest:
            self.h2.receive(rest)

    def flush(self):
        if self.upgraded:
            self.h2.flush()

    def outbound(self):
        out = bytes(self._out)
        self._out.clear()
        if self.upgraded:
            out += self.h2.outbound()
        return out

    def wants_eof(self):
        return self.closing

    def receive(self, data):
        self.rx += data
        if self.upgraded:
            self.h2.receive(data)
            return
        self.h11.receive_data(bytes(data))
        while self.request is None or not self.upgraded:
            ev = self.h11.next_event()
            if ev is h11.NEED_DATA or ev is h11.PAUSED:
                return
            if type(ev) is h11.Request:
                self.request = ev
            elif type(ev) is h11.Data:
                self.request_body += ev.data
            elif type(ev) is h11.EndOfMessage:
                if self.on_request is None:
                    self.accept()
                else:
                    self.on_request(self)
                return

    def receive_eof(self):
        self.eof_received = True


# ----------------------------------------------------------------------------------------
# Wiring.

def pump(a, b, max_rounds=20_000, split=None):
    """Move bytes (then EOF, once a side closed its transport) between a and b until
    nothing moves. Returns the number of rounds; raises PumpError past max_rounds.
    split(data) -> pieces: deliver each buffer in those pieces."""
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
            wants_eof = getattr(src, "wants_eof", None)
            if wants_eof is not None and wants_eof() and not getattr(src, "_eof_delivered", False):
                src._eof_delivered = True
                receive_eof = getattr(dst, "receive_eof", None)
                if receive_eof is not None:
                    receive_eof()
                moved = True
        if not moved:
            return rounds
    raise PumpError("no quiescence after %d rounds" % max_rounds)


def cno_h11(cno_role, setup=None, cno_kw=None, h11_kw=None):
    """A started (cno peer, h11 peer) pair; cno_role is "client" or "server"."""
    c = CnoH1Peer(server=(cno_role == "server"), **(cno_kw or {}))
    h = H11Peer(h11.SERVER if cno_role == "client" else h11.CLIENT, **(h11_kw or {}))
    if setup:
        setup(c)
    c.start()
    return c, h


def h11_auto_respond(peer, responder):
    """An h11 server answers each complete request: responder(peer, cycle, Message)
    returns (status, headers, body, trailers, chunked) or None (no answer now)."""
    def handler(p, cycle, trailers):
        answer = responder(p, cycle, p.message(cycle))
        if answer is not None:
            status, headers, body, trailers, chunked = answer
            p.send_response(status, headers, body, trailers, chunked)
    peer.handlers["eom"] = handler
