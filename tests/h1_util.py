"""Helpers for the cno.raw HTTP/1.1 tests (RFC 9112), written from docs/raw.md and the RFCs.

- ``H1Recorder``: a ``cno.raw.Connection`` subclass that logs every event (also
  ``on_upgrade``) in ``events`` and every byte given to ``on_writev`` in ``wire``; ``take()``
  returns what was written since the last ``take()``. Optional per-instance hooks
  (``head_hook``, ``upgrade_hook``, ``tail_hook``) let a test answer synchronously from inside
  an event, as an application would.
- ``server()``/``client()``: a started HTTP/1.1 connection (``connection_made(False)``).
- ``request()``/``response()``: raw request/response bytes, written by hand (so malformed
  messages are as easy as good ones).
- ``expect_error()``: feeding bytes raises ``ProtocolError`` with the documented ``status``,
  and the connection is closed.
- ``split_head()``: the raw start line and field lines of what cno wrote (case preserved).
- ``h11_responses()``/``h11_requests()``: what cno wrote, parsed by h11 as the peer would
  (h11 is used only as an independent parser of cno's output).

Event tuples: ("start", s), ("end", s, code, side), ("head", s, code, method, path, headers),
("data", s, bytes), ("tail", s, trailers), ("upgrade", s), ("close",), ("flow", s),
("settings",), ("pong", data).
"""
import base64
import struct
from collections import namedtuple

import h11
import pytest

import cno.raw as raw
from cno import errors

CRLF = b"\r\n"
# A second request hidden in (or right after) a malformed one: it must never be parsed.
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: evil.example\r\n\r\n"


def _b(x):
    return x.encode("latin-1") if isinstance(x, str) else bytes(x)


def _s(x):
    return x.decode("latin-1") if isinstance(x, (bytes, bytearray, memoryview)) else x


def _copy_headers(hs):
    return None if hs is None else [tuple(h) for h in hs]


# ---------------------------------------------------------------------------------------------
# Raw messages

def request(method="GET", target="/", headers=(("Host", "example.com"),), body=b"",
            version="HTTP/1.1"):
    """A request as raw bytes: ``headers`` are (name, value) pairs written as given (or raw
    ``bytes`` lines), ``body`` appended as is (no framing added)."""
    out = bytearray(_b(method) + b" " + _b(target) + b" " + _b(version) + CRLF)
    for h in headers:
        if isinstance(h, (bytes, str)):
            out += _b(h) + CRLF
        else:
            out += _b(h[0]) + b": " + _b(h[1]) + CRLF
    out += CRLF
    out += _b(body)
    return bytes(out)


def get(target="/", host="example.com", extra=(), version="HTTP/1.1"):
    return request("GET", target, [("Host", host)] + list(extra), version=version)


def response(code=200, reason="OK", headers=(), body=b"", version="HTTP/1.1"):
    out = bytearray(_b(version) + b" " + str(code).encode() + b" " + _b(reason) + CRLF)
    for h in headers:
        if isinstance(h, (bytes, str)):
            out += _b(h) + CRLF
        else:
            out += _b(h[0]) + b": " + _b(h[1]) + CRLF
    out += CRLF
    out += _b(body)
    return bytes(out)


def chunked(*chunks, trailers=(), ext=b""):
    """A chunked body (RFC 9112 7.1): each chunk with its size in hex (and ``ext``), the last
    chunk, the trailer lines and the final CRLF."""
    out = bytearray()
    for c in chunks:
        c = _b(c)
        if c:
            out += b"%x" % len(c) + _b(ext) + CRLF + c + CRLF
    out += b"0" + CRLF
    for name, value in trailers:
        out += _b(name) + b": " + _b(value) + CRLF
    out += CRLF
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Recording connection

class H1Recorder(raw.Connection):
    """Logs events in ``events`` and output in ``wire``. Hooks, when set, run inside the
    event: ``head_hook(conn, stream, code, method, path, headers)``,
    ``upgrade_hook(conn, stream)``, ``tail_hook(conn, stream, trailers)``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.events = []
        self.wire = bytearray()
        self.writev_calls = 0
        self._taken = 0
        self.head_hook = None
        self.upgrade_hook = None
        self.tail_hook = None

    def on_writev(self, chunks):
        self.writev_calls += 1
        for c in chunks:
            self.wire += bytes(c)

    def on_stream_start(self, stream):
        self.events.append(("start", stream))

    def on_stream_end(self, stream, code, side):
        self.events.append(("end", stream, code, side))

    def on_flow_increase(self, stream):
        self.events.append(("flow", stream))

    def on_message_head(self, stream, code, method, path, headers):
        self.events.append(("head", stream, code, method, path, _copy_headers(headers)))
        if self.head_hook is not None:
            self.head_hook(self, stream, code, method, path, headers)

    def on_message_data(self, stream, data):
        self.events.append(("data", stream, bytes(data)))

    def on_message_tail(self, stream, trailers):
        self.events.append(("tail", stream, _copy_headers(trailers)))
        if self.tail_hook is not None:
            self.tail_hook(self, stream, trailers)

    def on_upgrade(self, stream):
        self.events.append(("upgrade", stream))
        if self.upgrade_hook is not None:
            self.upgrade_hook(self, stream)

    def on_pong(self, data):
        self.events.append(("pong", bytes(data)))

    def on_settings(self):
        self.events.append(("settings",))

    def on_close(self):
        self.events.append(("close",))

    # helpers
    def feed(self, *chunks):
        """Feed ``chunks`` (one data_received call each); return the new events."""
        n = len(self.events)
        for c in chunks:
            self.data_received(c)
        return self.events[n:]

    def take(self):
        """Bytes written since the last take()."""
        out = bytes(self.wire[self._taken:])
        self._taken = len(self.wire)
        return out

    def of(self, kind, stream=None):
        return [e for e in self.events if e[0] == kind and (stream is None or e[1] == stream)]

    def heads(self, stream=None):
        return self.of("head", stream)

    def body(self, stream=None):
        return b"".join(e[2] for e in self.of("data", stream))

    def reset_log(self):
        self.take()
        self.events.clear()


def server(settings=None, **attrs):
    """A started HTTP/1.1 server; ``settings`` go to the constructor (e.g.
    max_concurrent_streams), ``attrs`` are set before connection_made."""
    c = H1Recorder(server=True, **(settings or {}))
    for k, v in attrs.items():
        setattr(c, k, v)
    c.connection_made(False)
    c.reset_log()
    return c


def client(settings=None, **attrs):
    c = H1Recorder(server=False, **(settings or {}))
    for k, v in attrs.items():
        setattr(c, k, v)
    c.connection_made(False)
    c.reset_log()
    return c


CLIENT_HEADERS = [(":scheme", "http"), (":authority", "example.com")]


def send_request(c, method="GET", path="/", extra=(), final=True, authority="example.com"):
    """Client side: write a request head on next_stream; returns the stream id."""
    sid = c.next_stream
    c.write_head(sid, 0, method, path,
                 [(":scheme", "http"), (":authority", authority)] + list(extra), final)
    return sid


def answer(c, stream, code=200, headers=(), body=b"", cl=True):
    """Server side: a complete response (with content-length unless ``cl`` is False)."""
    hs = list(headers)
    if cl:
        hs.append(("content-length", str(len(body))))
    if body or not cl:
        c.write_head(stream, code, "", "", hs, False)
        c.write_data(stream, body, True)
    else:
        c.write_head(stream, code, "", "", hs, True)


# ---------------------------------------------------------------------------------------------
# Looking at events

def pseudo(headers):
    return {_s(k): _s(v) for k, v, *_ in headers if _s(k).startswith(":")}


def regular(headers):
    """The non-pseudo header fields as (name, value) str pairs."""
    return [(_s(k), _s(v)) for k, v, *_ in headers if not _s(k).startswith(":")]


def names(headers):
    return [k for k, _ in regular(headers)]


def merge_data(events):
    """Adjacent data events of the same stream merged into one (empty ones dropped)."""
    out = []
    for e in events:
        if e[0] == "data":
            if not e[2]:
                continue
            if out and out[-1][0] == "data" and out[-1][1] == e[1]:
                out[-1] = ("data", e[1], out[-1][2] + e[2])
                continue
        out.append(e)
    return out


# ---------------------------------------------------------------------------------------------
# Errors

def _status_set(status):
    return {status} if isinstance(status, int) else set(status)


def expect_error(c, data, status, smuggle=True):
    """Feeding ``data`` (followed by SMUGGLED when ``smuggle``) raises ProtocolError whose
    ``status`` is in ``status``; the connection is closed; no request for /smuggled was parsed.
    Returns the exception."""
    statuses = _status_set(status)
    before = len(c.events)
    with pytest.raises(errors.ProtocolError) as ei:
        c.data_received(data + (SMUGGLED if smuggle else b""))
    e = ei.value
    assert getattr(e, "status", None) in statuses, \
        "status %r, expected one of %r (%r)" % (getattr(e, "status", None), statuses, e)
    assert c.closed, "connection not closed after %r" % (e,)
    new = c.events[before:]
    assert not [h for h in new if h[0] == "head" and _s(h[4]) == "/smuggled"], new
    # after an error every call raises ConnectionClosed (docs/raw.md, Errors)
    with pytest.raises(errors.ConnectionClosed):
        c.data_received(SMUGGLED)
    assert not [h for h in c.events if h[0] == "head" and _s(h[4]) == "/smuggled"]
    return e


# ---------------------------------------------------------------------------------------------
# What cno wrote

def split_head(wire):
    """(start line, [(name, value)] as written (case kept, value OWS-stripped), rest) of the
    first message head in ``wire``."""
    wire = bytes(wire)
    end = wire.find(b"\r\n\r\n")
    assert end >= 0, "no complete head in %r" % (wire,)
    lines = wire[:end].split(b"\r\n")
    fields = []
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        assert sep, "field line without a colon: %r" % (line,)
        fields.append((name.decode("latin-1"), value.strip(b" \t").decode("latin-1")))
    return lines[0].decode("latin-1"), fields, wire[end + 4:]


def field_values(fields, name):
    """All values of ``name`` (case-insensitive) among (name, value) pairs."""
    return [v for k, v in fields if k.lower() == name.lower()]


def connection_tokens(fields):
    """The lower-cased options of every Connection field (RFC 9110 7.6.1)."""
    out = set()
    for v in field_values(fields, "connection"):
        out.update(t.strip().lower() for t in v.split(",") if t.strip())
    return out


Msg = namedtuple("Msg", "kind code reason method target headers body trailers version")


def _hs(hs):
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in hs]


def _collect(conn, first):
    """The rest of one message after its head event ``first``: (body, trailers)."""
    body = bytearray()
    while True:
        ev = conn.next_event()
        if isinstance(ev, h11.Data):
            body += ev.data
        elif isinstance(ev, h11.EndOfMessage):
            return bytes(body), _hs(ev.headers)
        elif ev is h11.NEED_DATA:
            raise AssertionError("h11: message after %r incomplete" % (first,))
        elif ev is h11.PAUSED or isinstance(ev, h11.ConnectionClosed):
            raise AssertionError("h11: unexpected %r after %r" % (ev, first))


def h11_responses(wire, methods, eof=False):
    """Parse ``wire`` (a server's output) with an h11 client that sent one request per entry of
    ``methods``. Returns, per request, the list of Msg (1xx first, then the final one).
    ``eof``: the connection is closed after ``wire`` (ends close-delimited bodies)."""
    conn = h11.Connection(h11.CLIENT)
    conn.receive_data(bytes(wire))
    if eof:
        conn.receive_data(b"")
    out = []
    for i, method in enumerate(methods):
        if i:
            assert conn.our_state is h11.DONE and conn.their_state is h11.DONE, \
                "h11: cannot start request %d: %r/%r" % (i, conn.our_state, conn.their_state)
            conn.start_next_cycle()
        conn.send(h11.Request(method=method, target="/", headers=[("Host", "example.com")]))
        conn.send(h11.EndOfMessage())
        msgs = []
        while True:
            ev = conn.next_event()
            if isinstance(ev, h11.InformationalResponse):
                msgs.append(Msg("info", ev.status_code, ev.reason.decode("latin-1"), None,
                                None, _hs(ev.headers), b"", [], ev.http_version.decode()))
                if ev.status_code == 101:
                    break
            elif isinstance(ev, h11.Response):
                body, trailers = _collect(conn, ev)
                msgs.append(Msg("response", ev.status_code, ev.reason.decode("latin-1"), None,
                                None, _hs(ev.headers), body, trailers,
                                ev.http_version.decode()))
                break
            else:
                raise AssertionError("h11: expected a response to request %d, got %r"
                                     % (i, ev))
        out.append(msgs)
    return out


def h11_requests(wire, eof=False):
    """Parse ``wire`` (a client's output) with an h11 server, answering each request with an
    empty 200 to move on. Returns the list of request Msg."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(bytes(wire))
    if eof:
        conn.receive_data(b"")
    out = []
    while True:
        ev = conn.next_event()
        if ev is h11.NEED_DATA or isinstance(ev, h11.ConnectionClosed):
            break
        assert isinstance(ev, h11.Request), "h11: expected a request, got %r" % (ev,)
        body, trailers = _collect(conn, ev)
        out.append(Msg("request", None, None, ev.method.decode("latin-1"),
                       ev.target.decode("latin-1"), _hs(ev.headers), body, trailers,
                       ev.http_version.decode()))
        conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
        conn.send(h11.EndOfMessage())
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            break
        conn.start_next_cycle()
    return out


# ---------------------------------------------------------------------------------------------
# HTTP/2 bits for the switching tests

def settings_payload(**named):
    """A SETTINGS frame payload (RFC 9113 6.5.1) from names as in cno's settings dicts."""
    from raw_frames import SETTINGS_IDS
    return b"".join(struct.pack(">HI", SETTINGS_IDS[k], v) for k, v in named.items())


def b64url(payload):
    """token68 for HTTP2-Settings (RFC 7540 3.2.1): base64url without padding."""
    return base64.urlsafe_b64encode(payload).rstrip(b"=").decode("ascii")


def b64url_decode(token):
    token = token.strip()
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
