"""One HTTP connection driven by ACGI messages (docs/acgi.md).

A :class:`Connection` wraps a :class:`cno.Client` (HTTP/1.1 or HTTP/2, with headers as
bytes and manual flow control) and gives the application the seed's two callables:
``send(message)`` and ``receive(stream_id=None)``. Each stream is a
:class:`cno.aio.StreamReceiver` that turns the engine's events into messages in the
stream's inbox; a message is handed out once, to whichever asks first: ``receive`` (for
that stream, or for any stream: the oldest message), or the stream's ``body`` iterator.
Response body bytes are credited to the peer only when their message is handed out, so a
slow application throttles its own stream (HTTP/2 windows; HTTP/1.1 stops reading).
"""
from __future__ import annotations

import asyncio
import collections
import functools
import ssl as _ssl
import urllib.parse
from typing import (
    Any, Awaitable, Callable, Deque, Dict, Iterable, List, Mapping, Optional, Tuple, TypeVar,
)

from cno import aio
from cno.acgi.errors import ConnectError, ConnectTimeout, MessageError, ReadTimeout, WriteTimeout
from cno.errors import CnoError, ConnectionClosed, InvalidStream, StreamReset, UsageError

__all__ = [
    "ACGI_VERSION", "Connection", "ResponseBody", "connect", "open_connection",
    "Message", "Receive", "Send", "Application",
]

#: The ``acgi`` key of every ``http.response`` message.
ACGI_VERSION = {"version": "1.0"}

Message = Dict[str, Any]
Receive = Callable[..., Awaitable[Message]]
Send = Callable[[Mapping[str, Any]], Awaitable[Optional[int]]]
T = TypeVar("T")
Application = Callable[[Receive, Send], Awaitable[T]]

DEFAULT_PORTS = {"http": 80, "https": 443}
# RFC 9113 8.2.2: connection-specific fields are never sent over HTTP/2 (an intermediary
# translating an HTTP/1.1 message removes them); framing is the engine's business.
_NOT_OVER_H2 = frozenset([b"connection", b"keep-alive", b"proxy-connection",
                          b"transfer-encoding", b"upgrade"])
_SET_BY_ACGI = frozenset([b":method", b":path", b":scheme"])
# A stream's consumer, chosen by the first use (docs/acgi.md, "Two ways to read a body").
_UNCLAIMED, _MESSAGES, _ITERATOR = 0, 1, 2
# Messages that carry the rest of a response: receiving one claims the stream's chunks.
_CLAIMING = frozenset(["http.response.body", "http.response.trailers", "http.stream.disconnect"])


def _origin(scheme: str, host: str, port: Optional[int]) -> Tuple[str, str, int]:
    return scheme, host.lower(), port or DEFAULT_PORTS[scheme]


def split_url(url: Any) -> Tuple[Tuple[str, str, int], str, str]:
    """(origin, authority, request target) of an absolute http(s) URL; the fragment is
    dropped (RFC 9110 4.2.4: it never goes on the wire)."""
    if not isinstance(url, str):
        raise MessageError("'url' must be a str, got %s" % type(url).__name__)
    return _split_url(url)


@functools.lru_cache(maxsize=1024)   # (a client asks for the same URLs again and again)
def _split_url(url: str) -> Tuple[Tuple[str, str, int], str, str]:
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise MessageError("bad url %r: %s" % (url, e)) from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise MessageError("the url must be absolute, http:// or https://, got %r" % url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    authority = parts.netloc.rsplit("@", 1)[-1]
    return _origin(scheme, parts.hostname, port), authority, target


def _key(message: Mapping[str, Any], name: str, kind: Any, default: Any = ..., what: str = "") -> Any:
    try:
        value = message[name]
    except KeyError:
        if default is ...:
            raise MessageError("%s message without %r" % (message["type"], name)) from None
        return default
    if not isinstance(value, kind):
        raise MessageError("%r of %s must be %s, got %s" % (
            name, message["type"], what or getattr(kind, "__name__", kind), type(value).__name__))
    return value


_BYTES = (bytes, bytearray, memoryview)


def _fields(given: Any) -> Iterable[Tuple[bytes, bytes]]:
    """The [name, value] pairs of a message's ``headers``, checked, names lowercased."""
    try:
        pairs = iter(given)
    except TypeError:
        raise MessageError("'headers' must be an iterable of [name, value] pairs") from None
    for pair in pairs:
        try:
            name, value = pair
        except (TypeError, ValueError):
            raise MessageError("a header must be a [name, value] pair, got %r" % (pair,)) from None
        if not isinstance(name, _BYTES) or not isinstance(value, _BYTES):
            raise MessageError("header names and values are bytes, got %r" % (pair,))
        yield bytes(name).lower(), bytes(value)


class _Stream(aio.StreamReceiver):
    """One request/response exchange: the engine's events become messages in ``inbox``."""

    __slots__ = ("conn", "id", "inbox", "waiters", "mode", "request_open", "response",
                 "response_done", "ended", "reset", "uncredited", "unhanded")

    def __init__(self, conn: "Connection") -> None:
        self.conn = conn
        self.id = 0
        self.inbox: Deque[Tuple[int, Message]] = collections.deque()
        self.waiters: Deque["asyncio.Future[Message]"] = collections.deque()
        self.mode = _UNCLAIMED
        self.request_open = False       # the client may still send body (more_body=True)
        self.response: Optional[Message] = None
        self.response_done = False
        self.ended = False              # the engine's stream is gone
        self.reset: Optional[CnoError] = None   # why it ended early, if it did
        self.uncredited = 0             # body bytes in the inbox, not yet credited
        self.unhanded: Optional[Message] = None   # the last message posted, if not handed yet

    # -- engine events (they never await) ----------------------------------------------

    def on_informational(self, code: int, headers: list[Any]) -> None:
        self.conn._post(self, {"type": "http.response.informational", "status_code": code,
                               "headers": headers, "stream_id": self.id})

    def on_response(self, code: int, headers: list[Any]) -> None:
        message = {"type": "http.response", "acgi": ACGI_VERSION,
                   "http_version": "2" if self.conn.client.is_http2 else "1.1",
                   "status_code": code, "headers": headers, "more_body": True,
                   "body": None, "stream_id": self.id}
        message["body"] = ResponseBody(self, message)
        self.response = message
        self.conn._post(self, message)

    def on_data(self, data: bytes) -> None:
        if data:
            self.uncredited += len(data)
            self.conn._post(self, {"type": "http.response.body", "body": data,
                                   "more_body": True, "stream_id": self.id})

    def on_tail(self, trailers: Optional[list[Any]]) -> None:
        self.response_done = True
        if trailers:
            self.conn._post(self, {"type": "http.response.trailers", "headers": trailers,
                                   "stream_id": self.id})
        elif self.unhanded is not None and self.unhanded["type"] in ("http.response",
                                                                    "http.response.body"):
            # The last message has not reached the application yet (it is queued, or
            # given to a waiter that has not resumed): it becomes the final one, rather
            # than an empty message after it (a HEADERS or DATA frame with END_STREAM).
            self.unhanded["more_body"] = False
            return
        self.conn._post(self, {"type": "http.response.body", "body": b"", "more_body": False,
                               "stream_id": self.id})

    def on_end(self, exc: Optional[CnoError]) -> None:
        self.ended = True
        conn = self.conn
        conn.active -= 1
        if exc is None and not self.response_done:
            # The engine reports RST_STREAM(NO_ERROR) as a normal end (code 0), but the
            # response is incomplete: the peer reset it (RFC 9113 8.1).
            exc = StreamReset(0, "stream reset by the peer (NO_ERROR) before its "
                                 "response was complete")
        if exc is not None:
            self.reset = exc
            if not self.response_done:
                refused = isinstance(exc, StreamReset) and exc.refused
                code = exc.code if isinstance(exc, StreamReset) else None
                conn._post(self, {"type": "http.stream.disconnect", "stream_id": self.id,
                                  "code": code, "clean": False, "refused": refused,
                                  "reason": str(exc)})
        if not self.inbox and not self.waiters and not self.request_open:
            conn._forget(self)   # (kept while the application may still send on it)
        if conn.on_stream_end is not None:
            conn.on_stream_end(conn)


class ResponseBody:
    """The ``body`` of an ``http.response`` message: an async iterator over the response's
    remaining chunks (bytes). It and ``http.response.body`` messages are two ways to read
    the same chunks: the first one used claims them (docs/acgi.md). After the end,
    ``trailers`` holds the response's trailers (or None). A reset or lost connection
    raises :class:`cno.StreamReset` / :class:`cno.ConnectionClosed` from the iteration.
    ``timeout`` (seconds, or None) bounds each wait for a chunk (ReadTimeout)."""

    __slots__ = ("_stream", "_message", "_done", "_sender", "trailers", "timeout")

    def __init__(self, stream: _Stream, message: Message) -> None:
        self._stream = stream
        self._message = message
        self._done = False
        self._sender: Optional["asyncio.Future[None]"] = None   # a request body still going out
        self.trailers: Optional[list[Any]] = None
        self.timeout: Optional[float] = None

    @property
    def stream_id(self) -> int:
        return self._stream.id

    def __aiter__(self) -> "ResponseBody":
        return self

    async def __anext__(self) -> bytes:
        stream = self._stream
        if stream.mode == _MESSAGES:
            raise MessageError("stream %d's body is being received as http.response.body "
                               "messages: use one or the other" % stream.id)
        stream.mode = _ITERATOR
        while not self._done:
            if not self._message["more_body"]:
                self._done = True
                break
            message = await stream.conn._next(stream, self.timeout)
            kind = message["type"]
            if kind == "http.response.body":
                if not message["more_body"]:
                    self._done = True
                if message["body"]:
                    return message["body"]   # type: ignore[no-any-return]
            elif kind == "http.response.trailers":
                self.trailers = message["headers"]
            elif kind == "http.stream.disconnect":
                self._done = True
                raise stream.reset or ConnectionClosed(message["reason"])
        raise StopAsyncIteration

    async def read(self) -> bytes:
        """The rest of the body, joined."""
        return b"".join([chunk async for chunk in self])

    async def aclose(self) -> None:
        """Stop reading: the stream is reset (CANCEL) unless it is complete, and what is
        queued for it is dropped (and credited back to the peer)."""
        self._done = True
        if self._sender is not None:
            self._sender.cancel()
        self._stream.conn._abandon(self._stream)


class Connection:
    """One HTTP/1.1 or HTTP/2 connection, driven by ACGI messages.

    ``await send(message)`` takes the client's messages (``http.request`` returns the new
    stream's id); ``await receive()`` returns the next message of any stream and
    ``await receive(stream_id)`` the next one of that stream. Open one with
    :func:`open_connection`, or let :func:`connect` or :class:`cno.acgi.Pool` do it."""

    def __init__(self, client: aio.Client, origin: Tuple[str, str, int], authority: str) -> None:
        self.client = client
        self.origin = origin
        self.authority = authority.encode("latin-1")
        self.scheme = origin[0].encode("latin-1")
        self.streams: Dict[int, _Stream] = {}
        self.active = 0                 # streams open in the engine, plus reserved slots
        self.retired = False            # no new requests here (the pool's verdict)
        self.on_stream_end: Optional[Callable[["Connection"], None]] = None
        self._seq = 0
        self._any: Deque["asyncio.Future[Message]"] = collections.deque()
        self._loop = client.loop
        self._watch: Optional["asyncio.Future[None]"] = None

    # -- what the connection is ------------------------------------------------------------

    @property
    def http_version(self) -> str:
        """``"h2"`` or ``"h11"`` (the names of ``http.response.connection``)."""
        return "h2" if self.client.is_http2 else "h11"

    @property
    def closed(self) -> bool:
        """No new request can start here (closed, lost, or past a GOAWAY)."""
        return self.retired or self.client.draining

    @property
    def max_streams(self) -> int:
        """How many requests may run at once: the server's MAX_CONCURRENT_STREAMS on
        HTTP/2, one on HTTP/1.1."""
        if not self.client.is_http2:
            return 1
        return int(self.client.remote_settings["max_concurrent_streams"])

    def close(self) -> None:
        """End the connection: GOAWAY (HTTP/2), then the transport closes; every stream
        still running gets ``http.stream.disconnect``."""
        client = self.client
        self.retired = True
        if not client.closed and not client.lost:
            try:
                if client.is_http2:
                    client.shutdown()
            except CnoError:
                pass
        client.close()

    async def wait_closed(self) -> None:
        await self.client.wait_closed()

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.close()

    # -- send ------------------------------------------------------------------------------

    async def send(self, message: Mapping[str, Any]) -> Optional[int]:
        """Take a message from the client; ``http.request`` returns its stream id."""
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise MessageError("a message is a mapping with a 'type' key, got %r"
                               % (message,)) from None
        if kind == "http.request":
            return await self._request(message)
        if kind == "http.request.body":
            await self._body(message)
        elif kind == "http.request.trailers":
            await self._trailers(message)
        elif kind == "http.stream.disconnect":
            stream = self._stream_of(message, opened=False)
            self._abandon(stream)
        else:
            raise MessageError("unknown message type %r" % (kind,))
        return None

    async def _response(self, sid: int, timeout: Optional[float] = None) -> Message:
        """The ``http.response`` of a stream (1xx heads skipped), or the
        ``http.stream.disconnect`` that came instead: what the pool waits for."""
        stream = self.streams[sid]
        while True:
            message = await self._next(stream, timeout)
            kind = message["type"]
            if kind == "http.response":
                message["body"].timeout = timeout
                return message
            if kind == "http.stream.disconnect":
                return message

    async def _request(self, message: Mapping[str, Any], *, post_connection: bool = True,
                       write_timeout: Optional[float] = None, reserved: bool = False) -> int:
        """Start a request. ``reserved``: the caller counted it in ``active`` already.
        Whatever fails before the stream exists gives the slot back."""
        origin, _, target = split_url(_key(message, "url", str))
        if origin != self.origin:
            raise MessageError("the url %r is not on this connection's origin %s://%s:%d"
                               % (message["url"], *self.origin))
        method = _key(message, "method", str)
        body = _key(message, "body", _BYTES, b"", "bytes")
        more_body = _key(message, "more_body", bool, False)
        headers = self._request_headers(_key(message, "headers", object, ()),
                                        None if more_body else len(body))
        client = self.client
        if not reserved:
            if self.closed:
                raise ConnectionClosed("the connection is closed")
            if not client.is_http2 and self.active:
                raise MessageError("an HTTP/1.1 exchange is still running on this connection "
                                   "(requests go one after another)")
            self.active += 1
        stream = _Stream(self)
        try:
            sid = await client.open_stream(method, target, headers, stream,
                                           end_stream=not body and not more_body)
        except ConnectionClosed as e:
            self.active -= 1
            self.retired = True
            raise NotStarted(str(e)) from None
        except BaseException as e:
            self.active -= 1
            if isinstance(e, UsageError) and not isinstance(e, MessageError):
                # The engine refused the head (a method, target or field it cannot
                # write, e.g. CR LF in a value) before writing any of it.
                raise MessageError(str(e)) from e
            raise
        stream.id = sid
        stream.request_open = bool(body) or more_body
        self.streams[sid] = stream
        if post_connection:
            self._post(stream, {"type": "http.response.connection",
                                "http_version": self.http_version, "stream_id": sid})
        if body:
            try:
                await self._write(stream, body, not more_body, write_timeout)
            except BaseException:
                # The caller never learns the id: nothing of this stream may linger.
                self._abandon(stream)
                raise
        return sid

    def _request_headers(self, given: Any, length: Optional[int]) -> List[Tuple[bytes, bytes]]:
        """The head the engine writes: :scheme and :authority first (Host becomes
        :authority), names lowercased, connection-specific fields left out over HTTP/2,
        transfer-encoding left out (framing is the engine's: chunked over HTTP/1.1
        unless there is a content-length), content-length when the whole body is known."""
        authority = self.authority
        h2 = self.client.is_http2
        out: List[Tuple[bytes, bytes]] = []
        for name, value in _fields(given):
            if name == b"host" or name == b":authority":
                authority = value
            elif name in _SET_BY_ACGI:
                raise MessageError("%r comes from the message's url and method" % name)
            elif name == b"content-length":
                if length is not None and value.strip() != str(length).encode():
                    # (caught before anything is written: HTTP/1.1 would be left waiting)
                    raise MessageError("content-length %r, but the whole body has %d bytes"
                                       % (value, length))
                length = None
                out.append((name, value))
            elif name == b"transfer-encoding" or (h2 and (
                    name in _NOT_OVER_H2 or (name == b"te" and value.lower() != b"trailers"))):
                continue
            else:
                out.append((name, value))
        head = [(b":scheme", self.scheme), (b":authority", authority)]
        if length:
            head.append((b"content-length", str(length).encode()))
        return head + out

    async def _write(self, stream: _Stream, data: Any, final: bool,
                     timeout: Optional[float] = None) -> None:
        """Send body bytes on a stream, waiting for windows and the transport; a stream the
        peer ended after a complete response takes (and drops) them silently."""
        if stream.ended:
            if final or not stream.response_done:
                self._request_ended(stream)
            if stream.response_done:
                return   # RFC 9113 8.1: the server needs no more of the request
            raise stream.reset or ConnectionClosed("stream %d has ended" % stream.id)
        try:
            await self.client.send_data(stream.id, data, final, timeout=timeout)
        except TimeoutError:
            raise WriteTimeout("could not write the request body within %ss"
                               % timeout) from None
        except MessageError:
            raise
        except UsageError as e:   # e.g. more bytes than the request's content-length
            raise MessageError(str(e)) from e
        except (StreamReset, ConnectionClosed, InvalidStream) as e:
            self._request_ended(stream)
            if stream.ended and stream.response_done:
                return
            raise stream.reset or e
        if final:
            self._request_ended(stream)

    def _request_ended(self, stream: _Stream) -> None:
        """The application can send no more on a stream: forget the stream if nothing is
        left to receive either (it stays known while its request is open, so that late
        body messages are dropped or raise the reset, docs/acgi.md)."""
        stream.request_open = False
        if stream.ended and not stream.inbox and not stream.waiters:
            self._forget(stream)

    async def _body(self, message: Mapping[str, Any]) -> None:
        stream = self._stream_of(message, opened=True)
        body = _key(message, "body", _BYTES, b"", "bytes")
        more_body = _key(message, "more_body", bool, False)
        await self._write(stream, body, not more_body)

    async def _trailers(self, message: Mapping[str, Any]) -> None:
        stream = self._stream_of(message, opened=True)
        trailers = list(_fields(_key(message, "headers", object)))
        if stream.ended:
            await self._write(stream, b"", True)
            return
        stream.request_open = False
        try:
            await self.client.send_trailers(stream.id, trailers)
        except UsageError as e:   # a field the engine cannot write; nothing was written
            stream.request_open = True
            raise MessageError(str(e)) from e
        self._request_ended(stream)

    def _stream_of(self, message: Mapping[str, Any], opened: bool) -> _Stream:
        """The stream a client message is for: its stream_id, or the only candidate."""
        sid = message.get("stream_id")
        if sid is None:
            candidates = [s for s in self.streams.values() if s.request_open or not opened]
            if len(candidates) != 1:
                raise MessageError("%s without a stream_id, and %d streams it could be for"
                                   % (message["type"], len(candidates)))
            stream = candidates[0]
        else:
            if not isinstance(sid, int):
                raise MessageError("'stream_id' must be an int, got %r" % (sid,))
            found = self.streams.get(sid)
            if found is None:
                raise MessageError("%s for stream %d, which is not open here"
                                   % (message["type"], sid))
            stream = found
        if opened and not stream.request_open:
            raise MessageError("%s on stream %d after its request ended (more_body=False)"
                               % (message["type"], stream.id))
        return stream

    def _abandon(self, stream: _Stream) -> None:
        """The client is done with a stream: reset it if still open, drop its messages."""
        if not stream.ended:
            self.client.cancel(stream.id)   # RST_STREAM(CANCEL); HTTP/1.1 closes
        stream.mode = _ITERATOR   # nothing of it reaches receive() any more
        self._forget(stream)

    # -- receive ---------------------------------------------------------------------------

    async def receive(self, stream_id: Optional[int] = None) -> Message:
        """The next message of ``stream_id``, or of any stream (the oldest queued)."""
        if stream_id is None:
            return await self._next_any()
        stream = self.streams.get(stream_id)
        if stream is None:
            raise MessageError("no stream %r here (unknown, or ended with every message "
                               "received)" % (stream_id,))
        if stream.mode == _ITERATOR:
            raise MessageError("stream %d's body is being read through its body iterator"
                               % stream_id)
        return await self._next(stream)

    def _post(self, stream: _Stream, message: Message) -> None:
        """A message for the client: to a waiter of its stream, else of any stream
        (unless an iterator claimed the stream), else into the stream's inbox."""
        stream.unhanded = message
        while stream.waiters:
            waiter = stream.waiters.popleft()
            if not waiter.done():
                waiter.set_result(message)
                return
        if stream.mode != _ITERATOR:
            while self._any:
                waiter = self._any.popleft()
                if not waiter.done():
                    waiter.set_result(message)
                    return
        self._seq += 1
        stream.inbox.append((self._seq, message))

    def _handed(self, stream: _Stream, message: Message) -> Message:
        """A message reaches the client: its body bytes are credited to the peer now."""
        if stream.unhanded is message:
            stream.unhanded = None
        kind = message["type"]
        if kind in _CLAIMING:
            if stream.mode == _UNCLAIMED:
                stream.mode = _MESSAGES
            if kind == "http.response.body":
                # (bytes of a stream already forgotten were credited then)
                n = min(len(message["body"]), stream.uncredited)
                if n:
                    stream.uncredited -= n
                    self.client.consumed(stream.id, n)
        if stream.ended and not stream.inbox and not stream.request_open:
            self._forget(stream)
        return message

    async def _next(self, stream: _Stream, timeout: Optional[float] = None) -> Message:
        if stream.inbox:
            return self._handed(stream, stream.inbox.popleft()[1])
        if stream.ended:
            raise MessageError("stream %d has ended; it has no more messages" % stream.id)
        waiter: "asyncio.Future[Message]" = self._loop.create_future()
        stream.waiters.append(waiter)
        timer = None if timeout is None else self._loop.call_later(
            timeout, _expire, waiter, "no response from the server within %gs" % timeout)
        try:
            message = await waiter
        except BaseException:
            self._withdraw(stream, stream.waiters, waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()
        return self._handed(stream, message)

    async def _next_any(self) -> Message:
        best = None
        for stream in self.streams.values():
            if stream.inbox and stream.mode != _ITERATOR and (
                    best is None or stream.inbox[0][0] < best.inbox[0][0]):
                best = stream
        if best is not None:
            return self._handed(best, best.inbox.popleft()[1])
        if self.client.lost:
            raise ConnectionClosed("the connection is closed and no message is left")
        waiter: "asyncio.Future[Message]" = self._loop.create_future()
        self._any.append(waiter)
        self._watch_loss()
        try:
            message = await waiter
        except BaseException:
            self._withdraw(None, self._any, waiter)
            raise
        owner = self.streams.get(message["stream_id"])
        return self._handed(owner, message) if owner is not None else message

    def _withdraw(self, stream: Optional[_Stream], waiters: Deque["asyncio.Future[Message]"],
                  waiter: "asyncio.Future[Message]") -> None:
        """A wait was cancelled: a message already given to it goes back to the front."""
        if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
            message = waiter.result()
            owner = stream or self.streams.get(message["stream_id"])
            if owner is not None:
                owner.inbox.appendleft((0, message))
        else:
            try:
                waiters.remove(waiter)
            except ValueError:
                pass

    def _watch_loss(self) -> None:
        """Bare receive() waiters must not outlive the connection when no stream is left
        to end them: they get ConnectionClosed when it goes."""
        if self._watch is None:
            self._watch = asyncio.ensure_future(self.client.wait_closed())
            self._watch.add_done_callback(self._lost)

    def _lost(self, _: Any) -> None:
        waiters, self._any = self._any, collections.deque()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(ConnectionClosed("the connection is closed"))

    def _forget(self, stream: _Stream) -> None:
        if self.streams.get(stream.id) is stream:
            del self.streams[stream.id]
        while stream.waiters:   # (an iterator or receive() of a stream given up on)
            waiter = stream.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(StreamReset(0x8, "stream %d was abandoned" % stream.id,
                                                 remote=False))
        if stream.uncredited:   # dropped unread: the connection window gets it back
            self.client.consumed(stream.id, stream.uncredited)
            stream.uncredited = 0
        stream.inbox.clear()


class NotStarted(ConnectionClosed):
    """The connection took no new request (closed, or past a GOAWAY / Connection: close):
    nothing of the request was written, so it can go elsewhere."""


def _expire(waiter: "asyncio.Future[Message]", text: str) -> None:
    if not waiter.done():
        waiter.set_exception(ReadTimeout(text))


async def open_connection(url: str, *, ssl: Optional[_ssl.SSLContext] = None,
                          http2: Optional[bool] = None, upgrade: bool = False,
                          connect_timeout: Optional[float] = None,
                          ssl_hostname: Optional[str] = None,
                          max_body_buffer: int = aio.DEFAULT_MAX_BODY_BUFFER) -> Connection:
    """Open a connection to ``url``'s origin (docs/acgi.md, "Connecting"):

    - https: TLS (``ssl``, else the system's default trust) with ALPN ``h2``/``http/1.1``
      (``http2=False``: HTTP/1.1 only; ``http2=True``: h2 only).
    - http: HTTP/1.1; ``http2=True`` speaks HTTP/2 by prior knowledge, ``upgrade=True``
      asks the server to switch with ``Upgrade: h2c`` on the first request.

    Raises ConnectError (ConnectTimeout after ``connect_timeout`` seconds)."""
    try:
        origin, authority, _ = split_url(url)
    except MessageError as e:
        raise ValueError(str(e)) from None
    if origin[0] == "https":
        mode = http2   # ALPN decides, unless HTTP/1.1 only
    else:
        mode = True if http2 else (None if upgrade and http2 is None else False)
    opening = aio.connect("%s://%s/" % (origin[0], authority), ssl=ssl, http2=mode,
                          ssl_hostname=ssl_hostname, enable_push=False, bytes_headers=True,
                          max_body_buffer=max_body_buffer)
    try:
        if connect_timeout is None:
            client = await opening
        else:
            client = await asyncio.wait_for(opening, connect_timeout)
    except asyncio.TimeoutError:
        raise ConnectTimeout("no connection to %s within %ss" % (authority, connect_timeout)) from None
    except (OSError, _ssl.SSLError) as e:
        raise ConnectError("cannot connect to %s: %s" % (authority, e.strerror or e)) from e
    if http2 and not client.is_http2:
        client.close()
        raise ConnectError("%s did not agree to HTTP/2 (ALPN)" % authority)
    return Connection(client, origin, authority)


async def connect(url: str, application: Callable[[Receive, Send], Awaitable[T]], *,
                  ssl: Optional[_ssl.SSLContext] = None, http2: Optional[bool] = None,
                  upgrade: bool = False, connect_timeout: Optional[float] = None,
                  **options: Any) -> T:
    """Open a connection to ``url``'s origin, run ``application(receive, send)`` on it and
    return what it returns; the connection is closed afterwards, also when it raises."""
    conn = await open_connection(url, ssl=ssl, http2=http2, upgrade=upgrade,
                                 connect_timeout=connect_timeout, **options)
    try:
        return await application(conn.receive, conn.send)
    finally:
        conn.close()
