"""One open WebSocket, either side: :class:`WebSocket` runs RFC 6455's message flow
(the codec, cno/_ws.pyx, does the framing) over a tunnel the asyncio layer opened: an
HTTP/1.1 connection after its 101, or an HTTP/2 stream after a 2xx to extended CONNECT
(docs/websocket.md).

The tunnel's bytes are parsed as they arrive (the payload is diverted to the codec), so
pings are answered and pongs seen whatever the application does; they are credited back
to the peer (HTTP/2 WINDOW_UPDATE, HTTP/1.1 socket reads) only while fewer than
MAX_QUEUE messages wait for the application, so a slow reader stops its peer.
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
MAX_QUEUE = 16                 # messages waiting for the application before the peer is stopped
H2_WINDOW = 262144             # an HTTP/2 WebSocket stream's receive window: a 64 KiB message
                               # must not wait for a WINDOW_UPDATE (the default is 65,535)

Data = Union[str, bytes, bytearray, memoryview]
# The tunnel's writer: (bytes, end the tunnel) -> None once written, or what writes the
# rest (to be awaited) when the windows or the transport take only part.
Write = Callable[[bytes, bool], Optional[Awaitable[None]]]


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
        # while a frame is still going out (the others wait their turn: _send_frame)
        self._writing: Optional["asyncio.Future[None]"] = None
        self._done: "asyncio.Future[None]" = loop.create_future()   # what send() returns
        self._done.set_result(None)                                 # when it wrote at once
        # ping() waiters by payload: (future, when sent)
        self._pings: dict[bytes, tuple["asyncio.Future[float]", float]] = {}
        self._ping_sent: Optional[float] = None   # an unanswered keepalive ping (loop time)
        self._timer: Optional[asyncio.TimerHandle] = None
        self._tasks: "set[asyncio.Future[Any]]" = set()   # (_background's writes)
        self._waiter: Optional["asyncio.Future[None]"] = None   # recv() waiting
        self._held = 0            # bytes parsed but not credited (the application is behind)
        self._flushing = False    # a _flush is scheduled
        if ping_interval:
            self._timer = loop.call_later(ping_interval, self._keepalive)
        payload.divert(self._input)
        if http2:
            payload.credit(H2_WINDOW - 65535)

    # -- receiving -------------------------------------------------------------------

    def _input(self, data: Union[bytes, BaseException]) -> None:
        """The tunnel's bytes as they arrive (Payload.divert's sink): parsed at once, so
        that pings are answered and pongs seen whatever the application does; credited
        back to the peer while fewer than MAX_QUEUE messages wait for the application,
        held (the peer stopped) while more do."""
        if isinstance(data, BaseException) or not data:
            self._gone()   # (the end of the tunnel, or its failure)
        else:
            self._take(data)
            if len(self._queue) < MAX_QUEUE:
                self._payload.credit(len(data))
            else:
                self._held += len(data)
            if (self._replies or self._closed is not None) and not self._flushing:
                # (not from inside the connection's event dispatch: at the next turn)
                self._flushing = True
                self.loop.call_soon(self._background, self._flush())
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def recv_nowait(self) -> Optional[Union[str, bytes]]:
        """A message that has arrived, without waiting, or None if none has. Raises
        :class:`cno.WebSocketClosed` once the WebSocket is closed (and its messages
        are all taken)."""
        queue = self._queue
        if queue:
            if self._held:
                self._release()
            return queue.popleft()
        if self._closed is not None:
            raise self._closed
        return None

    async def recv(self) -> Union[str, bytes]:
        """The next message: str (text) or bytes (binary). Raises
        :class:`cno.WebSocketClosed` once the WebSocket is closed (and its messages
        are all taken)."""
        queue = self._queue
        while not queue:
            if self._closed is not None:
                raise self._closed
            self._waiter = self.loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self._held:
            self._release()
        return queue.popleft()

    def _release(self) -> None:
        if len(self._queue) <= MAX_QUEUE // 2:
            held, self._held = self._held, 0
            self._payload.credit(held)

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

    def _take(self, data: bytes) -> None:
        """Frames from tunnel bytes: messages queued, pings answered (queued), pongs
        noted, a close frame answered; a protocol error closes with its code."""
        failure = None
        try:
            events: list[tuple[int, Any]] = self._codec.feed(data)
        except WebSocketError as e:
            events, failure = e.events, e   # (the messages before the error still count)
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
        if failure is not None:
            self._fail(failure.code, failure.reason)

    async def _flush(self) -> None:
        """Write the replies owed (pongs, the answer to a close); end the tunnel once
        the WebSocket is closed."""
        self._flushing = False
        try:
            if self._replies:
                rest = self._send_frame(b"")
                if rest is not None:
                    await rest
        except (CnoError, OSError):
            self._gone()
        if self._closed is not None and not self._ended:
            await self._end_tunnel()

    # -- sending ---------------------------------------------------------------------

    def send(self, data: Data) -> Awaitable[None]:
        """Send a message: str as text, bytes-like as binary (await it). It goes at once
        when the tunnel takes it; the awaitable then is done already. Raises
        WebSocketClosed once the WebSocket is closing or closed."""
        if self._closed is not None or self._codec.close_sent:
            raise self._closed or WebSocketClosed(self.close_code or 1006, self.close_reason)
        rest = self._send_frame(self._codec.message(data))
        return self._done if rest is None else rest

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
        self._pings[bytes(data)] = (waiter, self.loop.time())
        await self.send_frame(self._codec.ping(data))
        return waiter

    def _pong(self, data: bytes) -> None:
        # RFC 6455 5.5.3: a pong answers the latest ping; earlier ones are answered with it.
        now = self.loop.time()
        self._ping_sent = None
        if data not in self._pings:
            return   # unsolicited (a heartbeat): nothing to do
        for key in list(self._pings):
            waiter, sent = self._pings.pop(key)
            if not waiter.done():
                waiter.set_result(now - sent)
            if key == data:
                break

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """The closing handshake (RFC 6455 7.1.2): send a close frame, wait (at most
        close_timeout seconds, dropping messages that still arrive) for the peer's, and
        end the tunnel. Nothing happens if the WebSocket is already closed."""
        if self._closed is None and not self._codec.close_sent:
            self.close_code, self.close_reason = code, reason
            try:
                await self.send_frame(self._codec.close(code, reason))
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

    async def send_frame(self, frame: bytes) -> None:
        """Write bytes already framed (``Codec``'s output) in turn with the others."""
        rest = self._send_frame(frame)
        if rest is not None:
            await rest

    def _send_frame(self, frame: bytes, end: bool = False) -> Optional[Awaitable[None]]:
        """Write a frame, with the replies owed before it, at once if the tunnel takes
        it (None); else what writes the rest, to be awaited. Frames never interleave:
        while one is still going out, the next waits its turn."""
        if self._writing is not None:
            return self._send_later(frame, end)
        if self._replies:
            frame = b"".join(self._replies) + frame
            self._replies.clear()
        rest = self._write_tunnel(frame, end)
        if rest is None:
            return None
        self._writing = self.loop.create_future()
        return self._finish_write(rest)

    async def _finish_write(self, rest: Awaitable[None]) -> None:
        try:
            await rest
        finally:
            writing, self._writing = self._writing, None
            if writing is not None and not writing.done():
                writing.set_result(None)

    async def _send_later(self, frame: bytes, end: bool) -> None:
        while self._writing is not None:
            await asyncio.shield(self._writing)
        rest = self._send_frame(frame, end)
        if rest is not None:
            await rest

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
        self._wake()

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
        self._wake()

    def _gone(self) -> None:
        """The tunnel ended without a close frame (RFC 6455 7.1.5: code 1006)."""
        if self._closed is None:
            if self.close_code is None or not self._codec.close_sent:
                self.close_code, self.close_reason = 1006, ""
            self._closed = WebSocketClosed(1006, "")
        self._ended = True
        self._stop_timer()
        self._wake()
        for waiter, _ in self._pings.values():
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
            rest = self._send_frame(b"", True)
            if rest is not None:
                await rest
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
        now = self.loop.time()
        interval = self.ping_interval or 0.0
        if self._ping_sent is not None:
            if self.ping_timeout and now - self._ping_sent >= self.ping_timeout:
                self._fail(1011, "keepalive ping timeout")
                self._background(self._flush())
                return
        else:
            self._ping_sent = now
            self._replies.append(self._codec.ping(b"cno keepalive"))
            self._background(self._flush())
        wait = interval if self._ping_sent is None or not self.ping_timeout else \
            min(interval, max(0.0, self._ping_sent + self.ping_timeout - now))
        self._timer = self.loop.call_later(max(wait, 0.01), self._keepalive)

    def _background(self, coro: Awaitable[None]) -> None:
        """Write from a timer callback: a task, held until done (the loop holds
        tasks weakly)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: "asyncio.Future[Any]") -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()   # (a write that failed: the tunnel's end reports it)
