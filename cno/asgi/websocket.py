"""The ASGI ``websocket`` scope (ASGI 3, WebSocket spec 2.4) on a :class:`cno.Request`
that asks for a WebSocket: an HTTP/1.1 ``Upgrade: websocket`` or an HTTP/2 extended
CONNECT with ``:protocol websocket`` (RFC 8441), with the ``websocket.http.response``
extension (a handshake denied with a real HTTP response).

The handshake is checked before the application runs (a malformed one gets its 400 or
426 from the server); ``websocket.accept`` answers it (101, or 200 over HTTP/2) and from
then on a :class:`cno.websocket.WebSocket` carries the messages: ``receive()`` takes one
message from the tunnel at a time (a slow application stops the peer: HTTP/1.1 reads
pause, HTTP/2 windows stay shut), ``send()`` waits for the transport and the windows.
"""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Optional

from cno._ws import Codec
from cno.asgi._http import ClientDisconnected, MessageError, bytes_pairs
from cno.asgi.http import finish_send
from cno.errors import (
    CnoError, ConnectionClosed, StreamReset, UsageError, WebSocketClosed,
)
from cno.websocket.connection import WebSocket, Write
from cno.websocket.handshake import Offer, accept_headers, negotiate_deflate

Message = dict[str, Any]

# where the exchange is
CONNECTING, CONNECTED, RESPONSE, CLOSED = range(4)


def asks_for_websocket(request: Any, http2: bool) -> bool:
    """Whether a request (bytes header fields) is a WebSocket handshake: HTTP/2's CONNECT
    with ``:protocol websocket``, HTTP/1.1's ``Upgrade`` naming websocket (other upgrades
    are HTTP requests the application answers)."""
    if http2:
        if request.method != b"CONNECT":
            return False
        for name, value in request.headers:
            if name == b":protocol":
                return bool(value.lower() == b"websocket")
            if not name.startswith(b":"):
                return False
        return False
    for name, value in request.headers:
        if name == b"upgrade":
            return b"websocket" in [t.strip().lower() for t in value.split(b",")]
    return False


class WebSocketCycle:
    """``receive`` and ``send`` of one ASGI websocket scope (see the module's docstring).
    ``options`` are the WebSocket's limits and timers (the server's --ws-* settings)."""

    def __init__(self, request: Any, offer: Offer, *, max_size: int,
                 ping_interval: Optional[float], ping_timeout: Optional[float],
                 per_message_deflate: bool) -> None:
        self.request = request
        self.loop = request.conn.loop
        self.offer = offer
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.per_message_deflate = per_message_deflate
        self.state = CONNECTING
        self.connect_sent = False
        self.websocket: Optional[WebSocket] = None
        self.status: Optional[int] = None   # what the handshake got (access log)
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.close_code: Optional[int] = None

    # -- receive ---------------------------------------------------------------------

    def receive(self) -> Awaitable[Message]:
        """A message that has arrived comes in a future that is done already (no
        coroutine); the rest wait in _receive."""
        websocket = self.websocket
        if websocket is not None and self.state == CONNECTED:
            try:
                data = websocket.recv_nowait()
            except WebSocketClosed:
                data = None   # (_receive reports it)
            if data is not None:
                message: "asyncio.Future[Message]" = self.loop.create_future()
                message.set_result({"type": "websocket.receive", "text": data}
                                   if type(data) is str else
                                   {"type": "websocket.receive", "bytes": data})
                return message
        return self._receive()

    async def _receive(self) -> Message:
        if not self.connect_sent:
            self.connect_sent = True
            return {"type": "websocket.connect"}
        websocket = self.websocket
        if websocket is None:
            if self.state == CONNECTING:
                raise MessageError("receive() before websocket.accept: the handshake is "
                                   "answered with websocket.accept, websocket.close or "
                                   "websocket.http.response.start")
            # (denied or closed before the handshake ended)
            await self.request.wait_ended()
            return {"type": "websocket.disconnect", "code": self.close_code or 1006,
                    "reason": ""}
        try:
            data = await websocket.recv()
        except WebSocketClosed as e:
            self.state = CLOSED
            return {"type": "websocket.disconnect", "code": e.code, "reason": e.reason}
        if type(data) is str:
            return {"type": "websocket.receive", "text": data}
        return {"type": "websocket.receive", "bytes": data}

    # -- send ------------------------------------------------------------------------

    def send(self, message: Message) -> Awaitable[None]:
        """websocket.send goes at once when the transport takes it (a future that is
        done already); the rest, and what must wait, in _send_message."""
        if message["type"] == "websocket.send" and self.state == CONNECTED:
            websocket = self.websocket
            assert websocket is not None
            try:
                rest = websocket.send(self._data(message))
            except WebSocketClosed:
                raise ClientDisconnected("the WebSocket is closed") from None
            except (StreamReset, ConnectionClosed) as e:
                raise ClientDisconnected("the client is gone: %s" % e) from None
            # (a future is the one that is done already: the frame went)
            return rest if isinstance(rest, asyncio.Future) else finish_send(rest)
        return self._send_message(message)


    async def _send_message(self, message: Message) -> None:
        kind = message["type"]
        try:
            if kind == "websocket.send":
                self._data(message)   # (raises: sent in the wrong state)
            elif kind == "websocket.accept":
                await self._accept(message)
            elif kind == "websocket.close":
                await self._close(message)
            elif kind == "websocket.http.response.start":
                self._response_start(message)
            elif kind == "websocket.http.response.body":
                await self._response_body(message)
            else:
                raise MessageError("unknown message type %r for a websocket scope" % (kind,))
        except (StreamReset, ConnectionClosed) as e:
            raise ClientDisconnected("the client is gone: %s" % e) from None

    def _data(self, message: Message) -> Any:
        """websocket.send's text or bytes (MessageError if it has neither, or comes
        before the accept; ClientDisconnected after the close)."""
        if self.state != CONNECTED:
            if self.state == CONNECTING:
                raise MessageError("websocket.send before websocket.accept")
            # ASGI 2.4: send() on a closed connection raises an OSError subclass
            raise ClientDisconnected("the WebSocket is closed")
        data = message.get("bytes")
        if data is None:
            data = message.get("text")
            if not isinstance(data, str):
                raise MessageError("websocket.send: 'bytes' or 'text' must be given")
        elif not isinstance(data, (bytes, bytearray, memoryview)):
            raise MessageError("websocket.send: 'bytes' must be bytes, not %s"
                               % type(data).__name__)
        return data

    async def _accept(self, message: Message) -> None:
        if self.state != CONNECTING:
            raise MessageError("websocket.accept once, before anything else is sent")
        subprotocol = message.get("subprotocol")
        if subprotocol is not None and not isinstance(subprotocol, str):
            raise MessageError("websocket.accept: 'subprotocol' must be a str or None")
        extra = bytes_pairs(message.get("headers", ()), "websocket.accept: 'headers'")
        offer = self.offer
        deflate = negotiate_deflate(offer, enabled=self.per_message_deflate)
        try:
            headers = accept_headers(offer, subprotocol=subprotocol, deflate=deflate,
                                     headers=extra)
        except UsageError as e:
            raise MessageError("websocket.accept: %s" % e) from None
        request = self.request
        code = 200 if offer.http2 else 101
        await request.start(code, headers)
        self.status = code
        self.state = CONNECTED
        options: dict[str, Any] = deflate.codec_options() if deflate is not None else {}
        codec = Codec(False, max_message_size=self.max_size, **options)
        self.websocket = WebSocket(
            codec, request.payload, _tunnel_writer(request), request.reset,
            loop=request.conn.loop, subprotocol=subprotocol, http2=offer.http2,
            ping_interval=self.ping_interval, ping_timeout=self.ping_timeout)

    async def _close(self, message: Message) -> None:
        code = message.get("code", 1000)
        reason = message.get("reason") or ""
        if not isinstance(code, int) or not isinstance(reason, str):
            raise MessageError("websocket.close: 'code' must be an int, 'reason' a str")
        if self.state == CONNECTING:
            # ASGI: a close before the accept denies the handshake with a 403.
            self.close_code = code
            await self._deny(403, [], b"")
            return
        if self.state == CONNECTED and self.websocket is not None:
            self.state = CLOSED
            try:
                await self.websocket.close(code, reason)
            except CnoError:
                pass
        # (after the close, or after a disconnect: nothing more to do)

    def _response_start(self, message: Message) -> None:
        if self.state != CONNECTING:
            raise MessageError("websocket.http.response.start before websocket.accept only")
        status = message.get("status")
        if not isinstance(status, int) or not 100 <= status <= 999 or status == 101:
            raise MessageError("websocket.http.response.start: 'status' must be an HTTP "
                               "status code, not %r" % (status,))
        self.status = status
        self.response_headers = bytes_pairs(message.get("headers", ()),
                                            "websocket.http.response.start: 'headers'")
        self.state = RESPONSE

    async def _response_body(self, message: Message) -> None:
        if self.state != RESPONSE:
            raise MessageError("websocket.http.response.body needs "
                               "websocket.http.response.start first")
        body = message.get("body", b"")
        if not isinstance(body, (bytes, bytearray, memoryview)):
            raise MessageError("websocket.http.response.body: 'body' must be bytes")
        request = self.request
        more = message.get("more_body", False)
        if not request.responded:
            if not more:
                self.state = CLOSED
                await request.respond(self.status or 500, self.response_headers, bytes(body))
                return
            await request.start(self.status or 500, self.response_headers)
        if body:
            await request.write(body)
        if not more:
            self.state = CLOSED
            await request.end()

    async def _deny(self, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        self.state = CLOSED
        self.status = status
        request = self.request
        if not request.responded:
            await request.respond(status, headers, body)

    async def finish(self, failure: Optional[BaseException]) -> None:
        """The application returned (or raised ``failure``): a handshake it never
        answered is denied (403, or 500 after an error), a WebSocket it left open is
        closed (1000, or 1011 after an error), a denial it left half-sent is reset."""
        request = self.request
        if self.state == CONNECTING:
            await self._deny(500 if failure is not None else 403, [], b"")
        elif self.state == RESPONSE or (self.state == CLOSED and self.websocket is None
                                        and request.responded and not request.ended):
            request.reset()
        elif self.websocket is not None:
            # (closed already, close() still sends the answer owed and ends the tunnel)
            self.state = CLOSED
            try:
                await self.websocket.close(1011 if failure is not None else 1000,
                                           "" if failure is None else "server error")
            except CnoError:
                pass


def _tunnel_writer(request: Any) -> Write:
    """What a WebSocket writes its frames with: the request's tunnel."""
    async def write_and_end(data: bytes) -> None:
        if data:
            await request.write(data)
        await request.end()

    def write(data: bytes, end: bool) -> Optional[Awaitable[None]]:
        return write_and_end(data) if end else request.write_nowait(data)
    return write

