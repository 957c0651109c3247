"""One ASGI HTTP request/response cycle on a :class:`cno.Request` (ASGI 3, HTTP spec 2.4).

The scope is built from what the engine delivered (header fields as bytes, never
converted twice); ``receive()`` reads the request body from the request's payload, which
credits the peer only as the application consumes; ``send()`` holds the response head
until the first body message (as the spec asks), so that a body sent in one message goes
out with its head and a content-length in one write, and streams the rest with the
peer's windows and the transport's backpressure.
"""
from __future__ import annotations

import os
from typing import Any, AsyncIterator, Awaitable, Callable, Optional

from cno.aio import Body
from cno.asgi._http import (
    ASGI_VERSION, BODY, BODY_CHUNK, DONE, INIT, STARTED, TRAILERS, ClientDisconnected,
    CycleBase, MessageError, build_scope, bytes_pairs,
)
from cno.errors import ConnectionClosed, StreamReset, UsageError

Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]

PATHSEND_CHUNK = 262144   # file bytes read per write for http.response.pathsend

# (what cno/asgi/_http.pyx defines for this module)
__all__ = ["ASGI_VERSION", "ASGIApp", "BODY_CHUNK", "ClientDisconnected", "Cycle",
           "Message", "MessageError", "PATHSEND_CHUNK", "Receive", "Send", "build_scope"]


async def finish_send(rest: Awaitable[None]) -> None:
    """Await what a send() left to write (the windows or the transport took only part);
    a client gone meanwhile is ClientDisconnected (the websocket scope's too)."""
    try:
        await rest
    except (StreamReset, ConnectionClosed) as e:
        raise ClientDisconnected("the client is gone: %s" % e) from None


class Cycle(CycleBase):
    """``receive`` and ``send`` of one request (see the module's docstring): CycleBase
    (compiled, cno/asgi/_http.pyx) answers at once what needs no waiting (a whole body in
    one message, a request body that has arrived); the coroutines here do the rest."""

    __slots__ = ()   # (no instance dict: one Cycle per request)

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
                if self.state == INIT:
                    await request.inform(100)
            data = await payload.read(BODY_CHUNK)
        except (StreamReset, ConnectionClosed):
            self.body_done = True
            return {"type": "http.disconnect"}
        more = not payload.at_eof()
        if not more:
            self.body_done = True
        return {"type": "http.request", "body": data, "more_body": more}

    def _finish(self, rest: Awaitable[None]) -> Awaitable[None]:
        return finish_send(rest)

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

    async def _body(self, message: Message) -> None:
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise MessageError("http.response.body: 'body' must be bytes, not %s"
                               % type(body).__name__)
        more = message.get("more_body", False)
        state = self.state
        request = self.request
        if state == STARTED:
            if not more and not self.want_trailers:
                self.state = DONE
                await self._head(body)
                return
            self.state = BODY
            await self._head(None)
        elif state != BODY:
            raise MessageError("http.response.body %s" % (
                "before http.response.start" if state == INIT else "after the body ended"))
        if body:
            await request.write(body)
        if not more:
            if self.want_trailers:
                self.state = TRAILERS
            else:
                self.state = DONE
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
                self._refused(e, normalised)

    async def _trailers(self, message: Message) -> None:
        if not self.want_trailers or self.state not in (BODY, TRAILERS, STARTED):
            raise MessageError("http.response.trailers without trailers=True in "
                               "http.response.start, or after the response ended")
        if self.state == STARTED:   # no body at all
            self.state = BODY
            await self._head(None)
        if self.trailers is None:
            self.trailers = []
        self.trailers.extend(bytes_pairs(message.get("headers", ()),
                                          "http.response.trailers: 'headers'"))
        if not message.get("more_trailers", False):
            self.state = DONE
            await self.request.end(self.trailers)

    async def _pathsend(self, message: Message) -> None:
        # ASGI pathsend extension: the file is read and written piece by piece, as the
        # windows and the transport allow; Python never holds it whole.
        path = message.get("path")
        if not isinstance(path, str):
            raise MessageError("http.response.pathsend: 'path' must be a str, not %r" % (path,))
        if self.state != STARTED:
            raise MessageError("http.response.pathsend needs http.response.start and no body")
        self.state = DONE
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            headers = bytes_pairs(self.headers, "http.response.start: 'headers'")
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
        if self.state != INIT and self.state != STARTED:
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
        headers = bytes_pairs(message.get("headers", ()), "http.response.push: 'headers'")
        self.request.push(b"GET", path.encode("utf-8"), headers)
