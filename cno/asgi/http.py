"""One ASGI HTTP request/response cycle on a :class:`cno.Request` (ASGI 3, HTTP spec 2.4).

The scope is built from what the engine delivered (header fields as bytes, never
converted twice); ``receive()`` reads the request body from the request's payload, which
credits the peer only as the application consumes; ``send()`` holds the response head
until the first body message (as the spec asks), so that a body sent in one message goes
out with its head and a content-length in one write, and streams the rest with the
peer's windows and the transport's backpressure.
"""
from __future__ import annotations

import asyncio
import os
from typing import Any, AsyncIterator, Awaitable, Callable, Optional
from operator import itemgetter
from urllib.parse import unquote_to_bytes

from cno.aio import Body, Request
from cno.errors import ConnectionClosed, StreamReset, UsageError, WouldBlock

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}
BODY_CHUNK = 65536      # request body bytes per http.request message, at most
PATHSEND_CHUNK = 262144   # file bytes read per write for http.response.pathsend

# where the response is
_INIT, _STARTED, _BODY, _TRAILERS, _DONE = range(5)
_LATER = object()   # (Cycle._respond_now: the head cannot go yet)


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client is gone (the stream was reset or the
    connection lost): ASGI 2.4 asks for an OSError subclass."""


class MessageError(RuntimeError):
    """A message the application sent breaks the ASGI HTTP spec (names the key)."""


def _bytes_pairs(headers: Any, key: str) -> list[tuple[bytes, bytes]]:
    """Header pairs as bytes with lower-case names (RFC 9113 8.2.1 wants them so)."""
    try:
        pairs = [(bytes(n).lower(), bytes(v)) for n, v in headers]
    except (TypeError, ValueError):
        raise MessageError("%s: an iterable of [name, value] byte strings, not %r"
                           % (key, headers)) from None
    for name, value in pairs:
        if not name or name.startswith(b":"):
            raise MessageError("%s: invalid header name %r" % (key, name))
    return pairs


_name = itemgetter(0)

# Methods as str without decoding each time (others are decoded).
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH",
                                    "OPTIONS", "CONNECT", "TRACE")}


def build_scope(request: Request, root_path: str, state: Optional[dict[str, Any]],
                extensions: dict[str, Any], client: Any, server: Any, scheme: str,
                http_version: str) -> Message:
    """The HTTP scope of a request whose header fields are bytes (``bytes_headers``)."""
    # The engine gives the pseudo-header fields first (:scheme, and :authority, from
    # Host in HTTP/1.1); the regular fields follow as received.
    fields = request.headers
    host = None
    i = 0
    for name, value in fields:
        if name[0] != 58:   # b":"
            break
        if name == b":authority":
            host = value
        i += 1
    headers = fields[i:]
    # HTTP/2's :authority is HTTP/1.1's Host (RFC 9113 8.3.1); an HTTP/2 request may
    # carry both (the same value, as the RFC asks): one host field then.
    if host is not None and (http_version != "2" or b"host" not in map(_name, headers)):
        headers.insert(0, (b"host", host))
    raw_path, _, query = request.path.partition(b"?")
    # (find, not `in`: bytes.__contains__ tries the operand as an int first, and
    # formats and drops a TypeError each time, on CPython 3.11)
    path = (unquote_to_bytes(raw_path) if raw_path.find(b"%") >= 0 else raw_path).decode(
        "utf-8", "surrogateescape")
    if root_path and not path.startswith(root_path):
        path = root_path + path
    method = request.method
    return {
        "type": "http",
        "asgi": ASGI_VERSION,
        "http_version": http_version,
        "method": _METHODS.get(method) or method.decode("ascii"),
        "scheme": scheme,
        "path": path,
        "raw_path": raw_path,
        "query_string": query,
        "root_path": root_path,
        "headers": headers,
        "client": client,
        "server": server,
        "state": state.copy() if state else {},
        "extensions": extensions,
    }


class Cycle:
    """``receive`` and ``send`` of one request (see the module's docstring).

    Both answer at once when they can, with ``done`` (a completed future) or a completed
    future of the message: no coroutine is made for a message that needs no waiting (a
    whole body in one message, a request body that has arrived). What has to wait goes
    through the coroutines _receive and _send.
    """

    # (defaults at class level: an instance sets them only when they change)
    state = _INIT
    status = 0
    headers: Any = ()
    trailers: Optional[list[tuple[bytes, bytes]]] = None
    want_trailers = False
    body_done = False      # the last http.request message was received
    continue_due = False

    def __init__(self, request: Request, done: "asyncio.Future[None]") -> None:
        self.request = request
        self.done = done
        if not request.payload.at_eof():
            # RFC 9110 10.1.1: 100 (Continue) is sent only when the application first
            # asks for the body, so that a request it answers without reading is never
            # sent.
            self.continue_due = any(n == b"expect" and v.lower() == b"100-continue"
                                    for n, v in request.headers)

    @property
    def complete(self) -> bool:
        return self.state == _DONE

    def receive(self) -> Awaitable[Message]:
        if not self.body_done and not self.continue_due:
            payload = self.request.payload
            try:
                data = payload.read_nowait(BODY_CHUNK)
            except (StreamReset, ConnectionClosed):
                data = None   # (_receive says http.disconnect)
            if data is not None:
                more = not payload.at_eof()
                if not more:
                    self.body_done = True
                ready = self.done.get_loop().create_future()
                ready.set_result({"type": "http.request", "body": data, "more_body": more})
                return ready
        return self._receive()

    async def _receive(self) -> Message:
        request = self.request
        if self.body_done:
            # After the body, receive() waits for the exchange to end: the response sent
            # in full, the stream reset or the connection lost.
            await request.wait_ended()
            return {"type": "http.disconnect"}
        payload = request.payload
        try:
            if self.continue_due:
                self.continue_due = False
                if self.state == _INIT:
                    await request.inform(100)
            data = await payload.read(BODY_CHUNK)
        except (StreamReset, ConnectionClosed):
            self.body_done = True
            return {"type": "http.disconnect"}
        more = not payload.at_eof()
        if not more:
            self.body_done = True
        return {"type": "http.request", "body": data, "more_body": more}

    def send(self, message: Message) -> Awaitable[None]:
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise MessageError("a message is a dict with a 'type', not %r" % (message,)) from None
        if kind == "http.response.start":
            self._start(message)
            return self.done
        if kind == "http.response.body" and self.state == _STARTED and not self.want_trailers:
            body = message.get("body", b"")
            if type(body) is bytes and not message.get("more_body", False):
                # The whole response in one message: head and body in one write.
                try:
                    rest = self._respond_now(body)
                except (StreamReset, ConnectionClosed) as e:
                    raise ClientDisconnected("the client is gone: %s" % e) from None
                if rest is not _LATER:
                    return self.done if rest is None else self._finish(rest)
        return self._send(message)

    def _respond_now(self, body: bytes) -> Any:
        """The whole response now (None), or what writes the rest of its body, or _LATER
        if the head cannot go yet (an earlier HTTP/1.1 response is being written). The
        application's headers go to the engine as they are; if it refuses them, once
        more normalised, then a MessageError that says why."""
        request = self.request
        for normalised in (False, True):
            try:
                rest = request.respond_nowait(self.status, self.headers, body)
            except WouldBlock:
                return _LATER
            except (UsageError, TypeError, ValueError) as e:
                if normalised or request.responded:
                    # (once the head went out, the body was refused: no second try)
                    raise MessageError("http.response: %s" % e) from None
                self.headers = _bytes_pairs(self.headers, "http.response.start: 'headers'")
                continue
            self.state = _DONE
            return rest
        raise AssertionError("unreachable")

    async def _finish(self, rest: Awaitable[None]) -> None:
        try:
            await rest
        except (StreamReset, ConnectionClosed) as e:
            raise ClientDisconnected("the client is gone: %s" % e) from None

    async def _send(self, message: Message) -> None:
        kind = message["type"]
        try:
            if kind == "http.response.body":
                await self._body(message)
            elif kind == "http.response.trailers":
                await self._trailers(message)
            elif kind == "http.response.pathsend":
                await self._pathsend(message)
            elif kind == "http.response.early_hint":
                await self._early_hint(message)
            elif kind == "http.response.push":
                self._push(message)
            else:
                raise MessageError("unknown message type %r for an HTTP scope" % (kind,))
        except (StreamReset, ConnectionClosed) as e:
            raise ClientDisconnected("the client is gone: %s" % e) from None

    def _start(self, message: Message) -> None:
        if self.state != _INIT:
            raise MessageError("http.response.start sent twice")
        try:
            status = message["status"]
        except KeyError:
            raise MessageError("http.response.start: 'status' is missing") from None
        if type(status) is not int or not 200 <= status <= 999:
            raise MessageError("http.response.start: 'status' must be an int from 200 to "
                               "999 (1xx go as extensions), not %r" % (status,))
        self.status = status
        headers = message.get("headers", ())
        # Given to the engine as they are (it checks them, and writes nothing it refuses);
        # normalised only if it refuses them (_head).
        self.headers = headers if type(headers) in (list, tuple) else \
            _bytes_pairs(headers, "http.response.start: 'headers'")
        self.want_trailers = bool(message.get("trailers", False))
        self.state = _STARTED

    async def _body(self, message: Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise MessageError("http.response.body: 'body' must be bytes, not %s"
                               % type(body).__name__)
        more = message.get("more_body", False)
        state = self.state
        request = self.request
        if state == _STARTED:
            if not more and not self.want_trailers:
                self.state = _DONE
                await self._head(body)
                return
            self.state = _BODY
            await self._head(None)
        elif state != _BODY:
            raise MessageError("http.response.body %s" % (
                "before http.response.start" if state == _INIT else "after the body ended"))
        if body:
            await request.write(body)
        if not more:
            if self.want_trailers:
                self.state = _TRAILERS
            else:
                self.state = _DONE
                await request.end()

    async def _head(self, body: Optional[Body]) -> None:
        """The response head with the application's headers as given, and with ``body``
        (bytes, or an async iterable of them) the whole response; if the engine refuses
        the head, once more with the headers normalised (bytes, lower-case names), then a
        MessageError that says why."""
        request = self.request
        for normalised in (False, True):
            try:
                if body is None:
                    await request.start(self.status, self.headers)
                else:
                    await request.respond(self.status, self.headers, body)
                return
            except (UsageError, TypeError, ValueError) as e:
                if normalised or request.responded:
                    # (once the head went out, the body was refused: no second try)
                    raise MessageError("http.response: %s" % e) from None
                self.headers = _bytes_pairs(self.headers, "http.response.start: 'headers'")

    async def _trailers(self, message: Message) -> None:
        if not self.want_trailers or self.state not in (_BODY, _TRAILERS, _STARTED):
            raise MessageError("http.response.trailers without trailers=True in "
                               "http.response.start, or after the response ended")
        if self.state == _STARTED:   # no body at all
            self.state = _BODY
            await self._head(None)
        if self.trailers is None:
            self.trailers = []
        self.trailers.extend(_bytes_pairs(message.get("headers", ()),
                                          "http.response.trailers: 'headers'"))
        if not message.get("more_trailers", False):
            self.state = _DONE
            await self.request.end(self.trailers)

    async def _pathsend(self, message: Message) -> None:
        # ASGI pathsend extension: the file is read and written piece by piece, as the
        # windows and the transport allow; Python never holds it whole.
        path = message.get("path")
        if not isinstance(path, str):
            raise MessageError("http.response.pathsend: 'path' must be a str, not %r" % (path,))
        if self.state != _STARTED:
            raise MessageError("http.response.pathsend needs http.response.start and no body")
        self.state = _DONE
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            headers = _bytes_pairs(self.headers, "http.response.start: 'headers'")
            if not any(n == b"content-length" for n, _ in headers):
                headers.append((b"content-length", b"%d" % size))
            self.headers = headers

            async def pieces() -> AsyncIterator[bytes]:
                while True:
                    chunk = f.read(PATHSEND_CHUNK)
                    if not chunk:
                        return
                    yield chunk

            await self._head(f.read() if size <= PATHSEND_CHUNK else pieces())

    async def _early_hint(self, message: Message) -> None:
        if self.state != _INIT and self.state != _STARTED:
            return   # too late for hints: the response is on its way
        links = message.get("links", ())
        if isinstance(links, (bytes, str)) or not all(isinstance(x, bytes) for x in links):
            raise MessageError("http.response.early_hint: 'links' must be a list of bytes")
        if links:
            await self.request.inform(103, [(b"link", link) for link in links])

    def _push(self, message: Message) -> None:
        path = message.get("path")
        if not isinstance(path, str):
            raise MessageError("http.response.push: 'path' must be a str, not %r" % (path,))
        headers = _bytes_pairs(message.get("headers", ()), "http.response.push: 'headers'")
        self.request.push(b"GET", path.encode("utf-8"), headers)
