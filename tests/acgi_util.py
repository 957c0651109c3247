"""Helpers for the cno.acgi tests (tests/test_acgi.py, tests/test_acgi_hypercorn.py).

- ``open_acgi(peer)``: a ``cno.acgi.Connection`` to an ``aio_local.Peer`` in its mode;
- ``req(url, ...)``: an ``http.request`` message; ``recv``/``until_end``: bounded receives;
- ``ScriptedH2``: an HTTP/2 server written with python-hyper ``h2`` (independent of cno's
  engine) that the test drives event by event: it records every frame-level event the
  client caused (RST_STREAM codes, WINDOW_UPDATEs, trailers) and can answer in ways
  ``cno.serve`` never does (GOAWAY with a low last-stream-id, 100 Continue over HTTP/2,
  a response held back by flow control it measures itself);
- ``ScriptedTCP``: a plain TCP (optionally TLS) server whose connections the test drives
  with ``asyncio`` streams, for hand-written HTTP/1.1 and for connection loss at exact
  points.

Every wait is bounded (``T`` seconds per step).
"""
import asyncio

import h2.config
import h2.connection
import h2.events

import cno
import cno.acgi

from aio_local import HOST, T

def req(url, method="GET", headers=(), body=b"", more_body=False, **extra):
    """An ``http.request`` message (docs/acgi.md, "From the application")."""
    message = {"type": "http.request", "url": url, "method": method,
               "headers": list(headers), "body": body, "more_body": more_body}
    message.update(extra)
    return message


def acgi_kw(peer):
    """open_connection options that reach ``peer`` in its mode."""
    if peer.tls:
        return {"ssl": peer.client_ssl, "http2": None if peer.h2 else False}
    return {"http2": peer.h2}


async def open_acgi(peer, **options):
    kw = acgi_kw(peer)
    kw.update(options)
    conn = await asyncio.wait_for(cno.acgi.open_connection(peer.url(), **kw), T)
    assert conn.http_version == ("h2" if peer.h2 else "h11")
    return conn


async def recv(receive, stream_id=None, timeout=T):
    """One message, within ``timeout`` seconds."""
    if stream_id is None:
        return await asyncio.wait_for(receive(), timeout)
    return await asyncio.wait_for(receive(stream_id), timeout)


def is_last(message):
    """Whether no further message of its stream follows (docs/acgi.md, "Order")."""
    kind = message["type"]
    if kind == "http.stream.disconnect":
        return True
    if kind in ("http.response", "http.response.body"):
        return not message["more_body"]
    return False


async def until_end(receive, stream_id=None, timeout=T):
    """Every message of a stream up to and including its last one."""
    out = []
    while True:
        message = await recv(receive, stream_id, timeout)
        out.append(message)
        if is_last(message):
            return out


def body_of(messages):
    return b"".join(m["body"] for m in messages if m["type"] == "http.response.body")


def header(headers, name):
    """The values of ``name`` in a list of (bytes, bytes)."""
    return [v for k, v in headers if k == name]


# docs/acgi.md, "From ACGI": the exact keys of every message ACGI sends.
KEYS = {
    "http.response.connection": {"type", "http_version", "stream_id"},
    "http.response.informational": {"type", "status_code", "headers", "stream_id"},
    "http.response": {"type", "acgi", "http_version", "status_code", "headers", "more_body",
                      "body", "stream_id"},
    "http.response.body": {"type", "body", "more_body", "stream_id"},
    "http.response.trailers": {"type", "headers", "stream_id"},
    "http.stream.disconnect": {"type", "stream_id", "code", "refused", "clean", "reason"},
}


def check_headers(headers):
    """docs/acgi.md: headers are a list of (bytes, bytes), names lowercase, no pseudo-headers."""
    assert isinstance(headers, list), headers
    for pair in headers:
        assert isinstance(pair, tuple) and len(pair) == 2, pair
        name, value = pair
        assert type(name) is bytes and type(value) is bytes, pair
        assert name == name.lower() and not name.startswith(b":"), pair


def check_message(message, stream_id, h2):
    """One message from ACGI: its exact keys and the types and values docs/acgi.md gives."""
    kind = message["type"]
    assert set(message) == KEYS[kind], message
    assert type(message["stream_id"]) is int and message["stream_id"] == stream_id, message
    if kind == "http.response.connection":
        assert message["http_version"] == ("h2" if h2 else "h11"), message
    elif kind == "http.response.informational":
        assert type(message["status_code"]) is int and 100 <= message["status_code"] < 200
        check_headers(message["headers"])
    elif kind == "http.response":
        assert message["acgi"] == {"version": "1.0"}, message
        assert message["http_version"] == ("2" if h2 else "1.1"), message
        assert type(message["status_code"]) is int and 200 <= message["status_code"] <= 999
        check_headers(message["headers"])
        assert type(message["more_body"]) is bool
        assert isinstance(message["body"], cno.acgi.ResponseBody)
    elif kind == "http.response.body":
        assert type(message["body"]) is bytes and type(message["more_body"]) is bool, message
    elif kind == "http.response.trailers":
        check_headers(message["headers"])
    else:
        code = message["code"]
        assert code is None or type(code) is int, message
        assert type(message["refused"]) is bool and message["clean"] is False, message
        assert type(message["reason"]) is str and message["reason"], message


def check_stream(messages, stream_id, h2):
    """A stream's messages in the order of docs/acgi.md ("Order"): connection,
    informational*, response, then body messages (the last with more_body False, trailers
    just before it) unless the head ended the response; a disconnect may replace the
    rest at any point after the connection message. Returns (response, body bytes,
    trailers, disconnect)."""
    for m in messages:
        check_message(m, stream_id, h2)
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "http.response.connection", kinds
    i = 1
    while i < len(kinds) and kinds[i] == "http.response.informational":
        i += 1
    response = trailers = disconnect = None
    if i < len(kinds) and kinds[i] == "http.response":
        response = messages[i]
        i += 1
        while response["more_body"] and i < len(kinds):
            if kinds[i] == "http.response.trailers":
                trailers = messages[i]["headers"]
                i += 1
                assert i < len(kinds) and kinds[i] == "http.response.body", kinds
                assert not messages[i]["more_body"], "trailers come just before the last body"
            if kinds[i] != "http.response.body":
                break
            i += 1
            if not messages[i - 1]["more_body"]:
                break
            assert messages[i - 1]["body"], "a body message before the last carries bytes"
    if i < len(kinds) and kinds[i] == "http.stream.disconnect":
        disconnect = messages[i]
        i += 1
    assert i == len(kinds), "messages out of order: %r" % kinds
    assert response is not None or disconnect is not None, kinds
    if disconnect is None:
        assert is_last(messages[-1]), kinds
    return response, body_of(messages), trailers, disconnect


class _Waitable:
    """Something tests wait on with ``await x.wait(predicate)``: woken on every change."""

    def __init__(self):
        self._changed = []

    def _wake(self):
        waiters, self._changed = self._changed, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    async def wait(self, predicate, timeout=T):
        """Until ``predicate()`` is true (checked after every change), else fail."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError("timed out waiting for %r" % (predicate,))
            w = loop.create_future()
            self._changed.append(w)
            try:
                await asyncio.wait_for(w, left)
            except asyncio.TimeoutError:
                pass


# -- a scripted HTTP/2 server (python-hyper h2) ----------------------------------------------

class H2ServerConn(asyncio.Protocol):
    """One connection of :class:`ScriptedH2`; ``h2`` is its ``h2.connection.H2Connection``.
    After the test calls h2 methods, ``flush()`` sends what they produced."""

    def __init__(self, owner):
        self.owner = owner
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding=None))
        self.transport = None
        self.events = []
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport
        self.owner.conns.append(self)
        self.h2.initiate_connection()
        self.flush()
        self.owner._wake()

    def data_received(self, data):
        for event in self.h2.receive_data(data):
            self.events.append(event)
            self.owner.events.append((self, event))
            if self.owner.on_event is not None:
                self.owner.on_event(self, event)
        self.flush()
        self.owner._wake()

    def connection_lost(self, exc):
        self.lost = True
        self.owner._wake()

    def flush(self):
        data = self.h2.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def respond(self, stream_id, status=200, headers=(), body=b"", end=True):
        self.h2.send_headers(stream_id, [(b":status", b"%d" % status)] + list(headers),
                             end_stream=end and not body)
        if body:
            self.send_body(stream_id, body, end)
        self.flush()

    def send_body(self, stream_id, body, end=False):
        """DATA frames within the peer's max frame size (flow control is the caller's)."""
        size = self.h2.max_outbound_frame_size
        for i in range(0, len(body), size):
            piece = body[i:i + size]
            self.h2.send_data(stream_id, piece, end_stream=end and i + size >= len(body))
        self.flush()


class ScriptedH2(_Waitable):
    """``async with ScriptedH2(on_event) as srv``: an h2c (or TLS, ALPN h2) server on
    127.0.0.1. ``on_event(conn, event)`` runs for each h2 event; ``srv.events`` lists
    ``(conn, event)`` of every connection."""

    def __init__(self, on_event=None, ssl=None):
        super().__init__()
        self.on_event = on_event
        self.ssl = ssl
        self.conns = []
        self.events = []
        self.server = None
        self.port = None

    def url(self, path="/"):
        return "%s://%s:%d%s" % ("https" if self.ssl else "http", HOST, self.port, path)

    def of(self, kind, stream_id=None):
        """The recorded events of a type (and stream)."""
        return [e for _, e in self.events if isinstance(e, kind)
                and (stream_id is None or getattr(e, "stream_id", None) == stream_id)]

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        if self.ssl is not None:
            self.ssl.set_alpn_protocols(["h2"])
        self.server = await loop.create_server(lambda: H2ServerConn(self), HOST, 0, ssl=self.ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        for conn in self.conns:
            if conn.transport is not None:
                conn.transport.abort()
        self.server.close()
        await asyncio.wait_for(self.server.wait_closed(), T)


# -- a scripted TCP server -------------------------------------------------------------------

class ScriptedTCP(_Waitable):
    """``async with ScriptedTCP(handler) as srv``: ``await handler(reader, writer)`` per
    connection (asyncio streams), on 127.0.0.1 (TLS with ``ssl``)."""

    def __init__(self, handler, ssl=None):
        super().__init__()
        self.handler = handler
        self.ssl = ssl
        self.server = None
        self.port = None
        self.tasks = []
        self.closed = 0   # connections whose handler finished or whose peer went away

    def url(self, path="/"):
        return "%s://%s:%d%s" % ("https" if self.ssl else "http", HOST, self.port, path)

    async def _run(self, reader, writer):
        self.tasks.append(asyncio.current_task())
        try:
            await self.handler(reader, writer)
        finally:
            writer.close()
            self.closed += 1
            self._wake()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._run, HOST, 0, ssl=self.ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=T)
        await asyncio.wait_for(self.server.wait_closed(), T)


async def read_head(reader):
    """An HTTP/1.1 head read by hand: (request line, {lowercase name: value})."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
    lines = head.decode("latin-1").split("\r\n")
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    return lines[0], fields


def ssl_pair(alpn):
    """(server context, client context) from the trustme CA of aio_local."""
    from aio_local import tls_contexts
    return tls_contexts(alpn)


__all__ = [
    "KEYS", "check_headers", "check_message", "check_stream", "req", "acgi_kw", "open_acgi",
    "recv", "is_last", "until_end", "body_of", "header", "ScriptedH2", "ScriptedTCP", "H2ServerConn", "read_head", "ssl_pair",
]
