"""Body readers and writers' queues: :class:`Payload` (a message body as it arrives,
crediting the peer as it is read) and :class:`Channel` (a closable async queue a
response body can be written through)."""
from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Callable, Optional, Union


from cno.aio.protocol import _READ_BUFFER
from cno.errors import UsageError

if TYPE_CHECKING:
    from cno.aio.protocol import _Connection


class Channel(asyncio.Queue):  # type: ignore[type-arg]
    """An ``asyncio.Queue`` that is an async iterator and can be closed: iteration ends
    once the queue is closed and drained; ``put`` after ``close`` raises BrokenPipeError.
    ``loop`` is accepted for the seed's ``Channel(n, loop=...)`` and ignored."""

    def __init__(self, maxsize: int = 0, *, loop: Any = None) -> None:
        super().__init__(maxsize)
        self.closed = False

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        for getter in self._getters:  # type: ignore[attr-defined]  # (waiting consumers see the end)
            if not getter.done():
                getter.set_result(None)

    def put_nowait(self, item: Any) -> None:
        if self.closed:
            raise BrokenPipeError("the channel is closed")
        super().put_nowait(item)

    async def put(self, item: Any) -> None:
        if self.closed:
            raise BrokenPipeError("the channel is closed")
        await super().put(item)   # (ends in put_nowait, which checks again)

    async def get(self) -> Any:
        """The next item; StopAsyncIteration once closed and empty."""
        while self.empty():
            if self.closed:
                raise StopAsyncIteration
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)  # type: ignore[attr-defined]
            try:
                await getter
            except BaseException:
                getter.cancel()
                try:
                    self._getters.remove(getter)  # type: ignore[attr-defined]
                except ValueError:
                    pass
                if not self.empty() and not getter.cancelled():
                    self._wakeup_next(self._getters)  # type: ignore[attr-defined]
                raise
        return self.get_nowait()

    def __aiter__(self) -> "Channel":
        return self

    async def __anext__(self) -> Any:
        return await self.get()


class Payload:
    """A message body as it arrives (asyncio.StreamReader's reading methods). Each byte
    read is credited back to the peer, so a slow reader throttles its own stream."""

    # (defaults at class level: an instance sets them only when they change; one is
    # made per request)
    _credited = 0     # bytes at the buffer's front already credited (put back)
    _eof = False
    _exc: Optional[BaseException] = None
    _waiter: Optional["asyncio.Future[None]"] = None
    # A tunnel's bytes (a WebSocket): its reader may wait on the peer for as long as the
    # protocol inside likes (it has its own keepalive), so the server's progress check
    # does not count it as waiting.
    _tunnel = False
    _sink: Optional[Callable[[Union[bytes, BaseException]], None]] = None   # (divert)

    def __init__(self, conn: "_Connection", stream: int) -> None:
        self._conn = conn
        self._stream = stream
        self._buffer = bytearray()

    # -- fed by the protocol ---------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        if self._sink is not None:
            self._sink(data)
            return
        self._buffer += data
        self._wake()

    def _feed_eof(self) -> None:
        self._eof = True
        if self._sink is not None:
            self._sink(b"")
        elif self._waiter is not None:
            self._wake()

    def _fail(self, exc: BaseException) -> None:
        if not self._eof:
            self._exc = exc
            if self._sink is not None:
                self._sink(exc)
            else:
                self._wake()

    def divert(self, sink: Callable[[Union[bytes, BaseException]], None]) -> None:
        """Hand what arrives from now on to ``sink`` as it arrives, instead of buffering
        it for the reading methods: ``sink(data)`` for bytes, ``sink(b"")`` at the end,
        ``sink(exc)`` if the stream fails (what read() would raise). What is buffered
        already goes to it at once. The sink runs inside the connection's event
        dispatch: it must not write to the connection nor wait; it credits the peer
        with credit() (what it does not credit, the peer cannot resend: a window
        stays shut, or an HTTP/1.1 connection stops being read)."""
        if self._credited:
            # (bytes a reader put back are credited already: the sink would again)
            raise UsageError("divert() after readuntil() or readline() left bytes behind")
        self._sink = sink
        if self._buffer:
            data = bytes(self._buffer)
            self._buffer.clear()
            sink(data)
        if self._eof:
            sink(b"")
        elif self._exc is not None:
            sink(self._exc)

    def credit(self, n: int) -> None:
        """Credit n bytes a divert() sink took back to the peer (HTTP/2 WINDOW_UPDATE;
        HTTP/1.1 reads resume)."""
        self._conn._consumed(self._stream, n)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._exc is not None:
            raise self._exc
        self._waiter = self._conn.loop.create_future()
        counted = not self._tunnel
        if counted:
            self._conn._readers_waiting += 1   # (the server's progress check sees it)
        try:
            await self._waiter
        finally:
            self._waiter = None
            if counted:
                self._conn._readers_waiting -= 1
        if self._exc is not None and not self._buffer:
            raise self._exc

    def _take(self, n: int) -> bytes:
        buffer = self._buffer
        if n >= len(buffer):   # (all of it: one copy, no slice)
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[:n])
            del buffer[:n]
        if self._credited:
            fresh = len(data) - min(len(data), self._credited)
            self._credited -= len(data) - fresh
        else:
            fresh = len(data)
        self._conn._consumed(self._stream, fresh)
        return data

    def _unread(self, data: Union[bytes, bytearray]) -> None:
        """Put back bytes taken (and so credited) but not returned to the reader."""
        self._buffer[:0] = data
        self._credited += len(data)

    # -- reading ---------------------------------------------------------------------

    def at_eof(self) -> bool:
        return self._eof and not self._buffer

    def exception(self) -> Optional[BaseException]:
        return self._exc

    def read_nowait(self, n: int = -1) -> Optional[bytes]:
        """Without waiting: up to n bytes of what has arrived (all of it if n < 0),
        b"" at the end of the body, or None if nothing is there yet; raises what read()
        would (StreamReset, ConnectionClosed) once nothing is left."""
        if self._buffer:
            return self._take(len(self._buffer) if n < 0 else n)
        if self._eof:
            return b""
        if self._exc is not None:
            raise self._exc
        return None

    # Every method takes data out of the buffer (crediting the peer) as it arrives, even
    # while it waits for more: waiting for more than a window without consuming would
    # wait forever.

    async def read(self, n: int = -1) -> bytes:
        """Up to n bytes (all of the body if n < 0); b"" at the end."""
        if n < 0:
            parts = bytearray()
            while True:
                if self._buffer:
                    parts += self._take(len(self._buffer))
                if self._eof:
                    return bytes(parts)
                await self._wait()
        while not self._buffer and not self._eof:
            await self._wait()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        parts = bytearray()
        while len(parts) < n:
            if self._buffer:
                parts += self._take(n - len(parts))
            elif self._eof:
                raise asyncio.IncompleteReadError(bytes(parts), n)
            else:
                await self._wait()
        return bytes(parts)

    async def readuntil(self, separator: bytes = b"\n", *, limit: int = _READ_BUFFER) -> bytes:
        """Up to and including separator; LimitOverrunError past limit bytes without it."""
        parts = bytearray()
        start = 0
        while True:
            if self._buffer:
                parts += self._take(len(self._buffer))
            i = parts.find(separator, start)
            if i >= 0:
                end = i + len(separator)
                self._unread(parts[end:])
                return bytes(parts[:end])
            if len(parts) > limit:
                self._unread(parts)
                raise asyncio.LimitOverrunError("separator not found within the limit", len(parts))
            if self._eof:
                raise asyncio.IncompleteReadError(bytes(parts), None)
            start = max(0, len(parts) - len(separator) + 1)
            await self._wait()

    async def readline(self) -> bytes:
        try:
            return await self.readuntil(b"\n")
        except asyncio.IncompleteReadError as e:
            return e.partial

    def __aiter__(self) -> "Payload":
        return self

    async def __anext__(self) -> bytes:
        data = await self.read(_READ_BUFFER)
        if not data:
            raise StopAsyncIteration
        return data


# The protocol is also the engine (as in libcno), so asyncio's connection_made(transport)
# and connection_lost(exc) stand beside the engine's methods of those names, which
# they call explicitly: the signatures differ by design.
