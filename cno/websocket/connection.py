"""One open WebSocket, either side: :class:`WebSocket` runs RFC 6455's message flow
(the codec, cno/_ws.pyx, does the framing) over a tunnel the asyncio layer opened: an
HTTP/1.1 connection after its 101, or an HTTP/2 stream after a 2xx to extended CONNECT
(docs/websocket.md).

Reading is pulled by the application: bytes are taken from the tunnel (and so credited
to the peer: HTTP/2 WINDOW_UPDATE, HTTP/1.1 socket reads) only when ``recv()`` has no
message queued, so a slow reader throttles its peer. Pings are answered and pongs noted
as frames are parsed; the keepalive timer parses what has arrived too, so that a pong is
seen while the application is busy elsewhere.
"""
from __future__ import annotations

import asyncio
import collections
import os
from typing import Any, Awaitable, Callable, Optional, Union

from cno._ws import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Codec
from cno.aio.payload import Payload
from cno.errors import CnoError, UsageError, WebSocketClosed, WebSocketError

DEFAULT_PING_INTERVAL = 20.0   # seconds between keepalive pings (None: no pings)
DEFAULT_PING_TIMEOUT = 20.0    # seconds a pong may take before the peer is given up
DEFAULT_CLOSE_TIMEOUT = 10.0   # seconds the closing handshake may take
MAX_QUEUE = 16                 # messages parsed ahead of the application before reading stops

Data = Union[str, bytes, bytearray, memoryview]
Write = Callable[[bytes, bool], Awaitable[None]]   # (frame bytes, end the tunnel)


class WebSocket:
    """An open WebSocket: ``await recv()`` / ``async for message in ws``, ``await
    send(data)`` (str: a text message, bytes: binary), ``await ping()``, ``await
    close(code, reason)``. Made by ``cno.websocket.connect`` (client) and by the ASGI
    server; ``subprotocol`` is the one agreed, ``http2`` whether it rides an HTTP/2
    stream, ``close_code`` and ``close_reason`` say how it ended once it has."""

    close_code: Optional[int] = None
    close_reason = ""

    def __init__(self, codec: Codec, payload: Payload, write: Write, abort: Callable[[], None],
                 *, loop: asyncio.AbstractEventLoop, subprotocol: Optional[str] = None,
                 http2: bool = False, response_headers: Any = (),
                 ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
                 ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
                 close_timeout: float = DEFAULT_CLOSE_TIMEOUT) -> None:
        self._codec = codec
        self._payload = payload
        self._write_tunnel = write
        self._abort_tunnel = abort
        self.loop = loop
        self.subprotocol = subprotocol
        self.http2 = http2
        self.response_headers = response_headers   # (a client: the server's handshake)
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self._queue: "collections.deque[Union[str, bytes]]" = collections.deque()
        self._replies: list[bytes] = []     # pongs owed, written by the next reader or sender
        self._closed: Optional[WebSocketClosed] = None   # what recv() raises once over
        self._ended = False                 # the tunnel is ended (or aborted)
        self._close_received: Optional["asyncio.Future[None]"] = None   # close() waits
        self._lock = asyncio.Lock()         # one frame at a time on the tunnel
        self._pings: dict[bytes, "asyncio.Future[float]"] = {}   # ping() waiters
        self._ping_sent: Optional[float] = None   # an unanswered keepalive ping (loop time)
        self._timer: Optional[asyncio.TimerHandle] = None
        if ping_interval:
            self._timer = loop.call_later(ping_interval, self._keepalive)

    # -- receiving -------------------------------------------------------------------

    async def recv(self) -> Union[str, bytes]:
        """The next message: str (text) or bytes (binary). Raises
        :class:`cno.WebSocketClosed` once the WebSocket is closed."""
        queue = self._queue
        while not queue:
            if self._closed is not None:
                raise self._closed
            payload = self._payload
            try:
                data = payload.read_nowait()
                if data is None:
                    data = await payload.readany()
            except CnoError:
                data = b""   # (the stream was reset or the connection lost)
            if not data:
                self._gone()
                continue
            self._parse(data)
            if self._replies:
                await self._send_replies()
            if self._closed is not None and not self._ended:
                await self._end_tunnel()
        return queue.popleft()

    def __aiter__(self) -> "WebSocket":
        return self

    async def __anext__(self) -> Union[str, bytes]:
        """Messages until the WebSocket closes: normally (1000, 1001), the iteration
        ends; otherwise WebSocketClosed is raised."""
        try:
            return await self.recv()
        except WebSocketClosed as e:
            if e.ok:
                raise StopAsyncIteration from None
            raise

    def _parse(self, data: bytes) -> None:
        """Frames from tunnel bytes: messages queued, pings answered (queued), pongs
        noted, a close frame answered; a protocol error closes with its code."""
        try:
            events: list[tuple[int, Any]] = self._codec.feed(data)
        except WebSocketError as e:
            self._fail(e.code, e.reason)
            return
        queue = self._queue
        for op, value in events:
            if op == OP_TEXT or op == OP_BINARY:
                queue.append(value)
            elif op == OP_PING:
                if not self._codec.close_sent:
                    self._replies.append(self._codec.pong(value))
            elif op == OP_PONG:
                self._pong(value)
            elif op == OP_CLOSE:
                self._peer_closed(value[0], value[1])

    def _pump(self) -> None:
        """Parse what has arrived without waiting (the keepalive's look at pongs), unless
        the application is behind by MAX_QUEUE messages: then the peer waits."""
        if self._closed is not None or len(self._queue) >= MAX_QUEUE:
            return
        try:
            data = self._payload.read_nowait()
        except CnoError:
            data = b""
        if data is None:
            return
        if not data:
            self._gone()
            return
        self._parse(data)
        if self._replies or (self._closed is not None and not self._ended):
            self._background(self._flush_after_pump())

    async def _flush_after_pump(self) -> None:
        if self._replies:
            await self._send_replies()
        if self._closed is not None and not self._ended:
            await self._end_tunnel()

    # -- sending ---------------------------------------------------------------------

    async def send(self, data: Data) -> None:
        """Send a message: str as text, bytes-like as binary. Raises WebSocketClosed
        once the WebSocket is closing or closed."""
        if self._closed is not None or self._codec.close_sent:
            raise self._closed or WebSocketClosed(self.close_code or 1006, self.close_reason)
        frame = self._codec.message(data)
        await self._write(frame)

    async def ping(self, data: bytes = b"") -> "asyncio.Future[float]":
        """Send a ping; returns a future that gets the round-trip time (seconds) when
        its pong arrives (while messages are being received). ``data`` (at most 125
        bytes) defaults to 4 random bytes."""
        if self._closed is not None or self._codec.close_sent:
            raise self._closed or WebSocketClosed(self.close_code or 1006, self.close_reason)
        if not data:
            data = os.urandom(4)
        if data in self._pings:
            raise UsageError("a ping with this payload is already waiting for its pong")
        waiter: "asyncio.Future[float]" = self.loop.create_future()
        self._pings[bytes(data)] = waiter
        await self._write(self._codec.ping(data))
        waiter.sent = self.loop.time()  # type: ignore[attr-defined]
        return waiter

    def _pong(self, data: bytes) -> None:
        # RFC 6455 5.5.3: a pong answers the latest ping; earlier ones are answered with it.
        now = self.loop.time()
        if self._ping_sent is not None:
            self._ping_sent = None
        waiter = self._pings.get(data)
        if waiter is None:
            return   # unsolicited (a heartbeat): nothing to do
        for key in list(self._pings):
            w = self._pings.pop(key)
            if not w.done():
                w.set_result(now - getattr(w, "sent", now))
            if key == data:
                break

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake (RFC 6455 7.1.2): send a close frame, wait (at most
        close_timeout seconds, dropping messages that still arrive) for the peer's, and
        end the tunnel. Nothing happens if the WebSocket is already closed."""
        if self._closed is None and not self._codec.close_sent:
            self.close_code, self.close_reason = code, reason
            try:
                await self._write(self._codec.close(code, reason))
            except (CnoError, OSError):
                self._gone()
        if self._closed is None:
            try:
                await asyncio.wait_for(self._drain(), self.close_timeout)
            except asyncio.TimeoutError:
                self._closed = WebSocketClosed(code, reason)
        if not self._ended:
            await self._end_tunnel()
        self._stop_timer()

    async def _drain(self) -> None:
        while True:
            try:
                await self.recv()
            except WebSocketClosed:
                return

    async def _write(self, frame: bytes) -> None:
        async with self._lock:
            if self._replies:
                frame = b"".join(self._replies) + frame
                self._replies.clear()
            await self._write_tunnel(frame, False)

    async def _send_replies(self) -> None:
        async with self._lock:
            if self._replies:
                frame = b"".join(self._replies)
                self._replies.clear()
                try:
                    await self._write_tunnel(frame, False)
                except (CnoError, OSError):
                    self._gone()

    # -- the end ---------------------------------------------------------------------

    def _peer_closed(self, code: int, reason: str) -> None:
        """A close frame arrived: answer it with the same code (RFC 6455 5.5.1) unless
        ours went first; the WebSocket is closed either way."""
        if not self._codec.close_sent:
            # (1005 means the frame had no code: the answer has none either)
            self._replies.append(self._codec.close(None if code == 1005 else code, ""))
            self.close_code, self.close_reason = code, reason
        elif self.close_code is None:
            self.close_code, self.close_reason = code, reason
        self._closed = WebSocketClosed(code, reason)
        self._stop_timer()

    def _fail(self, code: int, reason: str) -> None:
        """Close after the peer broke the protocol (RFC 6455 7.1.7): our close frame
        with the error's code, then the end of the tunnel."""
        if not self._codec.close_sent:
            try:
                self._replies.append(self._codec.close(code, reason[:120]))
            except (CnoError, ValueError):
                self._replies.append(self._codec.close(code, ""))
        self.close_code, self.close_reason = code, reason
        self._closed = WebSocketClosed(code, reason)
        self._stop_timer()

    def _gone(self) -> None:
        """The tunnel ended without a close frame (RFC 6455 7.1.5: code 1006)."""
        if self._closed is None:
            if self.close_code is None or not self._codec.close_sent:
                self.close_code, self.close_reason = 1006, ""
            self._closed = WebSocketClosed(1006, "")
        self._ended = True
        self._stop_timer()
        for waiter in self._pings.values():
            if not waiter.done():
                waiter.set_exception(self._closed)
        self._pings.clear()

    async def _end_tunnel(self) -> None:
        """End our side of the tunnel: the stream (HTTP/2) or the connection (HTTP/1.1;
        RFC 6455 7.1.1 has the server close TCP first, and a client gains nothing by
        waiting for it after the close frames are exchanged)."""
        if self._ended:
            return
        self._ended = True
        try:
            async with self._lock:
                frame = b"".join(self._replies)
                self._replies.clear()
                await self._write_tunnel(frame, True)
        except (CnoError, OSError):
            self._abort_tunnel()

    def abort(self) -> None:
        """End the tunnel at once, without a closing handshake (code 1006)."""
        self._gone()
        self._abort_tunnel()

    @property
    def closed(self) -> bool:
        """True once the WebSocket is closed (or its tunnel gone)."""
        return self._closed is not None

    # -- keepalive -------------------------------------------------------------------

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _keepalive(self) -> None:
        """Every ping_interval: a ping; a pong not seen within ping_timeout ends the
        WebSocket (1011, as websockets does)."""
        self._timer = None
        if self._closed is not None or self._codec.close_sent:
            return
        self._pump()
        if self._closed is not None:
            return
        now = self.loop.time()
        interval = self.ping_interval or 0.0
        if self._ping_sent is not None:
            if self.ping_timeout and now - self._ping_sent >= self.ping_timeout:
                self._fail(1011, "keepalive ping timeout")
                self._background(self._flush_after_pump())
                return
        else:
            self._ping_sent = now
            self._replies.append(self._codec.ping(b"cno keepalive"))
            self._background(self._send_replies())
        wait = interval if self._ping_sent is None or not self.ping_timeout else \
            min(interval, max(0.0, self._ping_sent + self.ping_timeout - now))
        self._timer = self.loop.call_later(max(wait, 0.01), self._keepalive)

    def _background(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_ignore)


def _ignore(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled():
        task.exception()
