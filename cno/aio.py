"""asyncio servers and clients on cno's engine (see docs/aio.md).

Each connection is an ``asyncio.BufferedProtocol`` that is also a ``cno.raw.Connection``:
reads land in a buffer the protocol owns and go straight to the engine, whose events
become requests, responses and body readers here. Backpressure runs both ways: writers
wait for the peer's HTTP/2 windows and for the transport (pause/resume); readers credit
the peer only for what they consumed (manual flow control), and over HTTP/1.1 the
socket stops being read while too much body is buffered.
"""
from __future__ import annotations

import asyncio
import logging
import socket
import ssl as _ssl
import sys
import threading
import urllib.parse
from typing import Any, AsyncIterable, Iterable, Optional, Sequence, Tuple, Union

from cno import raw
from cno.errors import (
    CnoError, ConnectionClosed, InvalidStream, StreamReset, UsageError, WouldBlock,
)

Headers = Sequence[Tuple[Any, Any]]
Body = Union[bytes, bytearray, memoryview, AsyncIterable[bytes]]

__all__ = [
    "Channel", "Payload", "Request", "Response", "Push", "Server", "Client", "Service",
    "StreamReceiver",
    "connect", "request", "serve",
]

ALPN = ["h2", "http/1.1"]
DEFAULT_IDLE_TIMEOUT = 60.0      # seconds without an open stream before a server closes
DEFAULT_HEADER_TIMEOUT = 30.0    # seconds for a started request head to complete
DEFAULT_MAX_BODY_BUFFER = 65536  # HTTP/1.1 request body bytes buffered before reads pause
DEFAULT_SETTINGS_TIMEOUT = 10.0  # seconds for an HTTP/2 peer to acknowledge our SETTINGS
DEFAULT_PROGRESS_TIMEOUT = 30.0  # the period over which a peer we wait on must move...
DEFAULT_MIN_PROGRESS_RATE = 512  # ...this many bytes per second (in or out), or be dropped
DEFAULT_MAX_PENDING_INPUT = 65536  # unparsed pipelined HTTP/1.1 input before reads pause
CLOSE_GRACE = 2.0                # seconds a closing connection has to take its last bytes
CONNECTION_WINDOW = 1 << 20      # our HTTP/2 connection receive window (streams: 65535)
_READ_BUFFER = 65536
_read_buffers = threading.local()   # one read buffer per thread, shared by its connections
logger = logging.getLogger("cno")
REFUSED_RETRIES = 2              # times request() sends a refused request again
_WRITE_PIECE = 262144            # body bytes handed to the transport per write: an HTTP/1.1
                                 # body (no windows) must not land in its buffer whole


# CPython 3.12.0-3.12.8 and 3.13.0-3.13.1: the selector transport's writelines() never
# pauses the protocol (gh-127655), so a writer would never wait and a peer that does not
# read would grow the buffer without bound. There the chunks go out as one write().
_WRITELINES_PAUSES = not ((3, 12) <= sys.version_info[:3] < (3, 12, 9)
                          or (3, 13) <= sys.version_info[:3] < (3, 13, 2))


def _writelines(transport: Any, chunks: Sequence[bytes]) -> None:
    if _WRITELINES_PAUSES:
        transport.writelines(chunks)
    else:
        transport.write(b"".join(chunks))


def _read_buffer() -> memoryview:
    """The calling thread's read buffer. Connections share it: the engine copies what it
    keeps (an incomplete tail, body bytes), and nothing else runs between a transport's
    get_buffer() and its buffer_updated(), so an idle connection holds no read buffer."""
    try:
        view: memoryview = _read_buffers.view
    except AttributeError:
        view = _read_buffers.view = memoryview(bytearray(_READ_BUFFER))
    return view


def _time_out(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError("timed out waiting to write"))


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

    def __init__(self, conn: "_Connection", stream: int) -> None:
        self._conn = conn
        self._stream = stream
        self._buffer = bytearray()
        self._credited = 0     # bytes at the buffer's front already credited (put back)
        self._eof = False
        self._exc: Optional[BaseException] = None
        self._waiter: Optional["asyncio.Future[None]"] = None

    # -- fed by the protocol ---------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        self._buffer += data
        self._wake()

    def _feed_eof(self) -> None:
        self._eof = True
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        if not self._eof:
            self._exc = exc
            self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        if self._exc is not None:
            raise self._exc
        self._waiter = self._conn.loop.create_future()
        self._conn._readers_waiting += 1   # (the server's progress check sees it)
        try:
            await self._waiter
        finally:
            self._waiter = None
            self._conn._readers_waiting -= 1
        if self._exc is not None and not self._buffer:
            raise self._exc

    def _take(self, n: int) -> bytes:
        data = bytes(self._buffer[:n])
        del self._buffer[:n]
        fresh = len(data) - min(len(data), self._credited)
        self._credited -= len(data) - fresh
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
class _Connection(raw.Connection, asyncio.BufferedProtocol):  # type: ignore[misc]
    """What servers and clients share: transport I/O and writing with backpressure."""

    _batch_requests = False   # an HTTP/2 client's output waits for the iteration's end
    progress_timeout: Optional[float] = None   # the server's slow-peer limit (Server)

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop], server: bool) -> None:
        raw.Connection.__init__(self, server)
        self.loop = loop or asyncio.get_event_loop()
        self.transport: Any = None
        self.manual_flow_control = True
        # futures woken when windows grow or writing resumes / when any stream ends
        self._waiters: "set[asyncio.Future[None]]" = set()
        self._ended: "set[asyncio.Future[None]]" = set()
        self._max_buffer = DEFAULT_MAX_BODY_BUFFER
        self._h1_buffered = 0         # HTTP/1.1 body bytes received, not yet read
        self._reading_paused = False  # ... stopped reading for that
        self._input_paused = False    # ... or (servers) for pipelined input waiting unparsed
        self._readers_waiting = 0     # body readers waiting for bytes from the peer
        self._lost = False
        self._corked: Optional[list[bytes]] = None   # a list while writes go out as one
        self._pending: list[bytes] = []   # output of this loop iteration, written at its end
        self._pending_size = 0
        self._flush_handle: Optional[asyncio.Handle] = None
        self._batch = False           # several requests came in one read: batch the answers
        self._window_opened = False   # our HTTP/2 connection window was raised
        self._failure: Optional[CnoError] = None   # the protocol error that ended it
        self.close_reason: Optional[str] = None    # why we ended it, when we did
        self._moved = 0               # body bytes received, and written as the peer let us
        self._grace: Optional[asyncio.TimerHandle] = None   # aborts a close that hangs
        self._lingering = False       # our FIN is sent; input is dropped until the peer's
        # wait_closed()'s future, made when first asked for
        self._lost_waiter: Optional["asyncio.Future[None]"] = None

    # -- asyncio.BufferedProtocol ------------------------------------------------------

    def _start(self, transport: Any, is_http2: bool) -> None:
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except (OSError, AttributeError):
                pass
        raw.Connection.connection_made(self, is_http2)
        if is_http2:
            self._open_window()

    def _open_window(self) -> None:
        self._window_opened = True
        self.open_flow(0, CONNECTION_WINDOW - 65535)

    def on_settings(self) -> None:
        # A connection that switched to HTTP/2 (h2c Upgrade, prior knowledge) gets its
        # larger connection window once the peer's first SETTINGS arrive.
        if not self._window_opened and self.is_http2 and not self.closed:
            self._open_window()

    def get_buffer(self, sizehint: int) -> memoryview:
        return _read_buffer()

    def buffer_updated(self, nbytes: int) -> None:
        if self._lingering:
            return   # closing: input is read only to be dropped
        try:
            raw.Connection.data_received(self, _read_buffer()[:nbytes])
        except CnoError as e:
            # What the requests and readers still running will see (without the
            # traceback, whose frames would tie this protocol into a reference cycle).
            self._failure = e.with_traceback(None)
            self._end_after_error("protocol error: %s" % e)

    def eof_received(self) -> bool:
        return False   # close the transport: half-open connections are not supported

    def connection_lost(self, exc: Optional[BaseException]) -> None:  # type: ignore[override]
        self._lost = True
        if self._grace is not None:
            self._grace.cancel()
            self._grace = None
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._pending.clear()
        # CPython's selector transport holds a bound method of itself (_read_ready_cb): a
        # reference cycle that only the cycle collector would free. It is never called
        # once the transport is closed (its reader is gone), so cut it here.
        if getattr(self.transport, "_read_ready_cb", None) is not None:
            self.transport._read_ready_cb = None
        try:
            raw.Connection.connection_lost(self)
        except CnoError:
            pass
        self._wake_all()
        if self._lost_waiter is not None and not self._lost_waiter.done():
            self._lost_waiter.set_result(None)

    @property
    def lost(self) -> bool:
        """True once the transport is gone (closed by either side, or lost)."""
        return self._lost

    async def wait_closed(self) -> None:
        """Return once the connection is gone (closed by either side, or lost)."""
        if not self._lost:
            if self._lost_waiter is None:
                self._lost_waiter = self.loop.create_future()
            await asyncio.shield(self._lost_waiter)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        if self._lingering and not self._lost:
            self.transport.resume_reading()   # (paused by _linger) drop what came meanwhile
        self._wake_all()

    # -- engine events shared by both sides --------------------------------------------

    def on_writev(self, chunks: Sequence[bytes]) -> None:
        # When one read brought several requests, their answers (written by as many
        # handler tasks in this loop iteration) go to the transport in one writelines;
        # so do the requests an HTTP/2 client's tasks write in one iteration; otherwise
        # each write goes at once.
        if self._corked is not None:
            self._corked.extend(chunks)
            return
        if not self._batch and not self._pending and not (
                self._batch_requests and self.is_http2):
            transport = self.transport
            if transport is not None and not transport.is_closing():
                _writelines(transport, chunks)
            return
        self._pending.extend(chunks)
        for chunk in chunks:
            self._pending_size += len(chunk)
        if self._pending_size >= _READ_BUFFER:
            # Bulk data goes out now, so that the transport's buffer (and with it
            # pause_writing, the writers' backpressure) sees it.
            if self._flush_handle is not None:
                self._flush_handle.cancel()
            self._flush()
        elif self._flush_handle is None:
            self._flush_handle = self.loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self._batch = False
        self._pending_size = 0
        chunks, self._pending = self._pending, []
        transport = self.transport
        if chunks and transport is not None and not transport.is_closing():
            _writelines(transport, chunks)

    def _cork(self) -> None:
        self._corked = []

    def _uncork(self) -> None:
        chunks, self._corked = self._corked, None
        if chunks:
            self.on_writev(chunks)

    def on_close(self) -> None:
        if self._corked:
            self._uncork()   # what is still held back goes out before the close
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        self._linger()

    def _linger(self) -> None:
        """Close once the output is out, staged (RFC 9112 9.6): FIN after the last
        bytes, then input is read and dropped until the peer's FIN, for at most
        CLOSE_GRACE seconds. Closing a socket with unread input sends a TCP RST, which
        can destroy the last response or the GOAWAY before the peer reads it."""
        transport = self.transport
        if transport is None or transport.is_closing() or self._lingering or self._lost:
            return
        if transport.can_write_eof():
            self._lingering = True
            transport.write_eof()
            if self.writing_paused:
                # The peer is not reading what we wrote (a flood that broke a budget):
                # its input waits in the kernel until it reads (resume_writing), rather
                # than being read and dropped as fast as it can send.
                transport.pause_reading()
            elif self._reading_paused or self._input_paused:
                transport.resume_reading()
            self._grace = self.loop.call_later(CLOSE_GRACE, self._grace_over)
        else:   # (TLS: close_notify, then the close)
            transport.close()
            if transport.get_write_buffer_size():
                self._grace = self.loop.call_later(CLOSE_GRACE, self._grace_over)

    def _grace_over(self) -> None:
        """A closing connection whose output is still queued waits on the peer to read it
        (the GOAWAY saying why sits behind what a flooding peer did not read); the
        progress timeout drops it if it reads too slowly. Otherwise it is cut now."""
        self._grace = None
        transport = self.transport
        if transport is not None and transport.get_write_buffer_size() \
                and self.progress_timeout:
            self._grace = self.loop.call_later(CLOSE_GRACE, self._grace_over)
            return
        self._abort()

    def on_flow_increase(self, stream: int) -> None:
        self._wake_all()

    def close(self) -> None:
        """Close the connection (what was written goes out first)."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        if self.transport is not None:
            self.transport.abort()

    def _end_after_error(self, reason: str) -> None:
        """Close after a protocol error or a broken limit: what the engine wrote (the
        GOAWAY saying why) goes out first; the close is staged (_linger)."""
        if self.close_reason is None:
            self.close_reason = reason
            logger.info("cno: closing %s: %s", self._peer_name(), reason)
        self.on_close()

    def _drop(self, reason: str) -> None:
        """End a connection whose peer stopped taking part: nothing more can reach it."""
        if self.close_reason is None:
            self.close_reason = reason
            logger.info("cno: dropping %s: %s", self._peer_name(), reason)
        self._abort()

    def _peer_name(self) -> str:
        peer = self.transport.get_extra_info("peername") if self.transport else None
        return "connection from %s:%s" % peer[:2] if peer else "connection"

    # -- helpers ----------------------------------------------------------------------

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _stream_ended(self) -> None:
        ended, self._ended = self._ended, set()
        for waiter in ended:
            if not waiter.done():
                waiter.set_result(None)
        self._wake_all()

    async def _wait(self, pool: "set[asyncio.Future[None]]",
                    deadline: Optional[float] = None) -> None:
        """Until a future of ``pool`` is woken; TimeoutError at ``deadline`` (loop time)."""
        if self._lost:
            raise ConnectionClosed("the connection is closed")
        waiter = self.loop.create_future()
        pool.add(waiter)
        timer = None if deadline is None else self.loop.call_at(deadline, _time_out, waiter)
        try:
            await waiter
        finally:
            pool.discard(waiter)
            if timer is not None:
                timer.cancel()

    def _buffered(self, n: int) -> None:
        self._moved += n
        if not self.is_http2:
            self._h1_buffered += n
            if self._h1_buffered > self._max_buffer and not self._reading_paused:
                self._reading_paused = True
                if not self._input_paused:
                    self.transport.pause_reading()

    def _consumed(self, stream: int, n: int) -> None:
        if not n or self._lost:
            return
        if self.is_http2:
            try:
                self.open_flow(stream, n)
            except CnoError:
                pass
        else:
            self._h1_buffered -= n
            if self._reading_paused and self._h1_buffered <= self._max_buffer // 2:
                self._reading_paused = False
                if not self._input_paused:
                    self.transport.resume_reading()

    async def _write(self, stream: int, data: Union[bytes, bytearray, memoryview],
                     final: bool, deadline: Optional[float] = None) -> None:
        """Write all of data, waiting for flow control and the transport as needed (until
        ``deadline``, loop time, if given: TimeoutError)."""
        view = memoryview(data).cast("B") if not isinstance(data, bytes) else data
        while True:
            if self.writing_paused:
                await self._wait(self._waiters, deadline)
                continue
            piece = view if len(view) <= _WRITE_PIECE else memoryview(view)[:_WRITE_PIECE]
            try:
                n = self.write_data(stream, piece, final and piece is view)
            except InvalidStream:
                raise StreamReset(0x8, "stream %d is no longer open" % stream) from None
            self._moved += n
            if n >= len(view):
                return
            view = memoryview(view)[n:]
            if n < len(piece):
                # until a window grows or the stream ends
                await self._wait(self._waiters, deadline)
            # else: the next piece, once the transport takes more (pause_writing)

    async def _write_body(self, stream: int, data: Body, trailers: Optional[Headers]) -> None:
        """Send a body (bytes, or an async iterable of bytes) and end the message."""
        if isinstance(data, (bytes, bytearray, memoryview)):
            await self._write(stream, data, not trailers)
        else:
            async for chunk in data:
                if chunk:
                    await self._write(stream, chunk, False)
            if not trailers:
                await self._write(stream, b"", True)
        if trailers:
            await self._send_trailers(stream, trailers)

    async def _send_trailers(self, stream: int, trailers: Headers) -> None:
        while self.writing_paused:
            await self._wait(self._waiters)
        try:
            self.write_tail(stream, trailers)
        except InvalidStream:
            raise StreamReset(0x8, "stream %d is no longer open" % stream) from None


# ----------------------------------------------------------------------------------------
# Server

class Request:
    """A request a server received; ``await respond(...)`` answers it."""

    def __init__(self, conn: "Server", stream: int, method: Any, path: Any, headers: list[Any]) -> None:
        self.conn = conn
        self.stream = stream
        self.method = method
        self.path = path
        self.headers = headers
        self.payload = Payload(conn, stream)
        self.trailers: Optional[list[Any]] = None
        self.responded = False

    def push(self, method: Any, path: Any, headers: Headers = ()) -> bool:
        """Promise a pushed request (HTTP/2); :authority and :scheme are this request's
        unless given. Returns True if the push was promised."""
        conn = self.conn
        if not conn.is_http2 or conn.closed:
            return False
        given = {h[0] for h in headers}
        inherited = [h for h in self.headers if h[0] in (":authority", ":scheme")
                     and h[0] not in given]
        try:
            return conn.write_push(self.stream, method, path, inherited + list(headers)) != 0
        except CnoError:
            return False

    async def respond(self, code: int, headers: Headers = (), data: Body = b"", *,
                      trailers: Optional[Headers] = None) -> None:
        """Send the response: data is bytes, a Channel, or any async iterable of bytes."""
        conn = self.conn
        simple = isinstance(data, (bytes, bytearray, memoryview))
        if code in (204, 304) and not (simple and not data):
            # RFC 9110 15.3.5, 15.4.5: these responses end with their head.
            raise UsageError("a %d response has no body" % code)
        final = simple and not data and not trailers
        if isinstance(data, (bytes, bytearray, memoryview)) and data and not trailers \
                and code >= 200:
            # The whole body is known: say how long it is (no chunked framing needed).
            if not any(h[0] in ("content-length", b"content-length") for h in headers):
                headers = list(headers)
                headers.append(("content-length", str(len(data))))
        while True:
            conn._cork()   # the head and a body that fits go out in one write
            try:
                conn.write_head(self.stream, code, "", "", headers, final)
                break
            except WouldBlock:   # HTTP/1.1: an earlier request is still being answered
                conn._uncork()
                await conn._wait(conn._ended)
            except InvalidStream:
                conn._uncork()
                raise StreamReset(0x8, "stream %d is no longer open" % self.stream) from None
            except BaseException:
                conn._uncork()   # (a head the engine refused: the 500 must not be held back)
                raise
        try:
            if code >= 200:
                self.responded = True
                if (isinstance(data, (bytes, bytearray, memoryview)) and data and not trailers
                        and not conn.writing_paused and len(data) <= _WRITE_PIECE):
                    n = conn.write_data(self.stream, data, True)
                    conn._moved += n
                    if n >= len(data):
                        return
                    data = memoryview(data)[n:]
        finally:
            conn._uncork()
        if not final and code >= 200:
            await conn._write_body(self.stream, data, trailers)


# The engine limits a server's ``limits`` may set, on each connection (docs/raw.md).
_ENGINE_LIMITS = frozenset({
    "reset_budget", "stream_error_budget", "empty_frame_budget", "control_frame_budget",
    "max_continuations", "max_header_block_size", "max_head_size", "max_header_count",
    "max_chunk_line",
})


class Server(_Connection):
    """The server protocol: ``handle(request)`` runs as a task for each request."""

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None, handle: Any = None, *,
                 idle_timeout: Optional[float] = DEFAULT_IDLE_TIMEOUT,
                 header_timeout: Optional[float] = DEFAULT_HEADER_TIMEOUT,
                 max_concurrent_streams: int = 100,
                 max_body_buffer: int = DEFAULT_MAX_BODY_BUFFER,
                 settings_timeout: Optional[float] = DEFAULT_SETTINGS_TIMEOUT,
                 progress_timeout: Optional[float] = DEFAULT_PROGRESS_TIMEOUT,
                 min_progress_rate: int = DEFAULT_MIN_PROGRESS_RATE,
                 max_pending_input: int = DEFAULT_MAX_PENDING_INPUT,
                 limits: Optional[dict[str, int]] = None) -> None:
        super().__init__(loop, True)
        self.handle = handle
        self.disallow_h2_upgrade = False
        self.update_settings(max_concurrent_streams=max_concurrent_streams)
        for name, value in (limits or {}).items():
            if name not in _ENGINE_LIMITS:
                raise UsageError("unknown limit %r (known: %s)"
                                 % (name, ", ".join(sorted(_ENGINE_LIMITS))))
            setattr(self, name, value)
        self.idle_timeout = idle_timeout
        self.header_timeout = header_timeout
        self.settings_timeout = settings_timeout
        self.progress_timeout = progress_timeout
        self.min_progress_rate = min_progress_rate
        self._max_buffer = max_body_buffer
        self._max_input = max_pending_input
        self._settings_since: Optional[float] = None   # our SETTINGS seen unacknowledged
        self._window_start: Optional[float] = None     # a period of waiting on the peer
        self._window_mark = 0          # bytes moved when that period began
        self._requests: dict[int, Request] = {}
        self._tasks: "set[asyncio.Task[None]]" = set()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._last_active = 0.0       # when the last stream ended (or the connection began)
        self._heads_in_read = 0
        self._head_started: Optional[float] = None    # when input began arriving while idle
        self._service = None

    def connection_made(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None:
            self.scheme = "https"
        self._start(transport, sslobj is not None and sslobj.selected_alpn_protocol() == "h2")
        if self._service is not None:
            self._service._connections.add(self)
        self._last_active = self._head_started = self.loop.time()   # the first head is due
        self._schedule_check()

    def connection_lost(self, exc: Optional[BaseException]) -> None:  # type: ignore[override]
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        super().connection_lost(exc)
        if self._service is not None:
            self._service._connections.discard(self)
            self._service._wake()

    def buffer_updated(self, nbytes: int) -> None:
        if self._head_started is None and not self._requests:
            self._head_started = self.loop.time()
        self._heads_in_read = 0
        super().buffer_updated(nbytes)
        if self._heads_in_read > 1:
            self._batch = True
        if not self._input_paused and self.buffered_input > self._max_input \
                and not self.is_http2:
            self._check_input()

    # -- timeouts: one timer per connection, checking deadlines that requests move
    # (cheaper than cancelling and re-arming a timer for each request) ------------------

    def _deadline(self) -> Optional[float]:
        deadlines = []
        if not self._requests:
            if self.idle_timeout:
                deadlines.append(self._last_active + self.idle_timeout)
            if self.header_timeout and self._head_started is not None:
                deadlines.append(self._head_started + self.header_timeout)
        return min(deadlines) if deadlines else None

    def _tick(self) -> Optional[float]:
        """How often the timer looks: half the shortest timeout, so that a period of
        waiting on the peer is judged at most half a period late."""
        timeouts = [t for t in (self.idle_timeout, self.header_timeout, self.settings_timeout,
                                self.progress_timeout) if t]
        return min(timeouts) / 2 if timeouts else None

    def _schedule_check(self) -> None:
        tick = self._tick()
        if tick is not None and self._timer is None:
            self._timer = self.loop.call_later(tick, self._check_timeouts)

    def _check_timeouts(self) -> None:
        self._timer = None
        if self._lost:
            return
        now = self.loop.time()
        deadline = self._deadline()
        if deadline is not None and now >= deadline:
            # idle too long, or a request head too slow to arrive
            self.close_reason = "idle_timeout" if self._head_started is None \
                else "header_timeout"
            self.close()
            return
        if self.settings_timeout and self.is_http2 and self.settings_unacked \
                and not self.closed:
            if self._settings_since is None:
                self._settings_since = now
            elif now - self._settings_since >= self.settings_timeout:
                # RFC 9113 6.5.3: "If the sender of a SETTINGS frame does not receive an
                # acknowledgment within a reasonable amount of time, it MAY issue a
                # connection error of type SETTINGS_TIMEOUT."
                raw.Connection.shutdown(self, 0x4)
                self._end_after_error("settings_timeout")
                return
        else:
            self._settings_since = None
        if self.progress_timeout and self._check_progress(now):
            return
        tick = self._tick()
        if tick is not None:
            self._timer = self.loop.call_at(min(deadline, now + tick) if deadline is not None
                                            else now + tick, self._check_timeouts)

    def _waiting_on_peer(self) -> bool:
        """Whether the connection waits for the peer: to send a body a handler awaits, to
        open a flow-control window a writer needs, or to read what is written."""
        transport = self.transport
        return bool(self._readers_waiting or self._waiters
                    or (transport is not None and transport.get_write_buffer_size()))

    def _check_progress(self, now: float) -> bool:
        """Drop a peer we wait on that moved fewer than min_progress_rate bytes a second
        over a progress_timeout period (slow-read and slow-body attacks); True if so."""
        if not self._waiting_on_peer():
            self._window_start = None
            return False
        # Only body bytes count: control frames (WINDOW_UPDATEs of one byte, PINGs) are
        # not progress, or a peer dribbling its window (CVE-2019-9511) would pass.
        moved = self._moved - self.transport.get_write_buffer_size()
        if self._window_start is None:
            self._window_start, self._window_mark = now, moved
            return False
        period = now - self._window_start
        assert self.progress_timeout is not None
        if period < self.progress_timeout:
            return False
        if moved - self._window_mark < self.min_progress_rate * period:
            self._drop("progress_timeout")
            return True
        self._window_start, self._window_mark = now, moved
        return False

    # -- reading: stop while pipelined input waits -----------------------------------

    def _check_input(self) -> None:
        """HTTP/1.1: while a request is answered, the requests pipelined behind it wait
        unparsed; past max_pending_input, stop reading the socket until they are taken.
        (With no request open, the engine's own limits bound an incomplete head.)"""
        if self.transport is None or self._lost:
            return
        pending = self.buffered_input
        if not self._input_paused:
            if pending > self._max_input and self._requests:
                self._input_paused = True
                if not self._reading_paused:
                    self.transport.pause_reading()
        elif pending <= self._max_input // 2 or not self._requests:
            self._input_paused = False
            if not self._reading_paused:
                self.transport.resume_reading()

    # -- engine events -----------------------------------------------------------------

    def on_message_head(self, stream: int, code: int, method: Any, path: Any,
                        headers: list[Any]) -> None:
        self._head_started = None
        self._heads_in_read += 1
        request = Request(self, stream, method, path, headers)
        self._requests[stream] = request
        task = self.loop.create_task(self._run(request))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def on_message_data(self, stream: int, data: bytes) -> None:
        request = self._requests.get(stream)
        if request is not None:
            self._buffered(len(data))
            request.payload._feed(data)

    def on_message_tail(self, stream: int, trailers: Optional[list[Any]]) -> None:
        request = self._requests.get(stream)
        if request is not None:
            request.trailers = trailers
            request.payload._feed_eof()

    def on_stream_end(self, stream: int, code: int, side: int) -> None:
        request = self._requests.pop(stream, None)
        if request is not None and not request.payload._eof:
            request.payload._fail(StreamReset(code or 0x8))
        if self._ended or self._waiters:
            self._stream_ended()
        if not self._requests:
            self._last_active = self.loop.time()
        if self._input_paused:
            self.loop.call_soon(self._check_input)   # once the engine took what it could

    async def _run(self, request: Request) -> None:
        try:
            await self.handle(request)
        except Exception as exc:
            self._failed(request, exc)
        else:
            if not request.responded and not self.closed and request.stream in self.open_streams:
                self._answer_500(request)
        finally:
            # The body's error, raised in the handler, holds a traceback whose frames
            # hold the payload that holds the error: cut it so that the request goes by
            # reference counting (issue 10 item 9).
            failure = request.payload._exc
            if failure is not None:
                failure.__traceback__ = None

    def _failed(self, request: Request, exc: BaseException) -> None:
        if not isinstance(exc, (StreamReset, ConnectionClosed)):
            self.loop.call_exception_handler({
                "message": "cno: request handler failed", "exception": exc, "protocol": self})
        if self.closed or request.stream not in self.open_streams:
            return
        if not request.responded:
            self._answer_500(request)
        elif self.is_http2:
            self.write_reset(request.stream, 0x2)   # INTERNAL_ERROR
        else:
            self._abort()   # HTTP/1.1 has no other way to say the response is broken

    def _answer_500(self, request: Request) -> None:
        try:
            self.write_head(request.stream, 500, "", "", [("content-length", "0")], True)
            request.responded = True
        except CnoError:
            if self.is_http2:
                self.write_reset(request.stream, 0x2)
            else:
                self._abort()

    def shutdown(self, code: int = 0) -> None:
        """Graceful shutdown: no new requests; those running finish, then the
        connection closes."""
        if not self.closed:
            raw.Connection.shutdown(self, code)


class Service:
    """What ``cno.serve`` returns: a listening server and its connections."""

    def __init__(self, server: asyncio.AbstractServer) -> None:
        self.server = server
        self._connections: "set[Server]" = set()
        self._waiter: Optional["asyncio.Future[None]"] = None

    @property
    def sockets(self) -> Any:
        return self.server.sockets  # type: ignore[attr-defined]

    def close(self) -> None:
        """Stop accepting connections (open ones go on; see shutdown)."""
        self.server.close()

    async def wait_closed(self) -> None:
        await self.server.wait_closed()

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done() and not self._connections:
            self._waiter.set_result(None)

    async def shutdown(self, timeout: Optional[float] = None) -> None:
        """Stop accepting, ask every connection to finish (GOAWAY / Connection: close),
        wait for them to close (abort the rest after timeout seconds)."""
        self.server.close()
        for conn in list(self._connections):
            conn.shutdown()
        if self._connections:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await asyncio.wait_for(asyncio.shield(self._waiter), timeout)
            except asyncio.TimeoutError:
                for conn in list(self._connections):
                    conn._abort()
        await self.server.wait_closed()

    async def __aenter__(self) -> "Service":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown(timeout=10)


async def serve(handle: Any, host: Optional[str] = None, port: int = 0, *,
                ssl: Optional[_ssl.SSLContext] = None, loop: Any = None,
                **options: Any) -> Service:
    """Listen on host:port and run ``handle(request)`` for each request (see docs/aio.md)."""
    loop = asyncio.get_running_loop()
    if ssl is not None:
        ssl.set_alpn_protocols(ALPN)
    service = None

    def factory() -> Server:
        protocol = Server(loop, handle, **options)
        protocol._service = service
        return protocol

    server = await loop.create_server(factory, host, port, ssl=ssl)
    service = Service(server)
    return service


# ----------------------------------------------------------------------------------------
# Client

class Response:
    """A response head and its body reader; the body may still be arriving."""

    def __init__(self, conn: "Client", stream: int, code: int, headers: list[Any],
                 payload: Payload, pushed: Channel, informational: list[Any]) -> None:
        self.conn = conn
        self.stream = stream
        self.code = code
        self.headers = headers
        self.payload = payload
        self.pushed = pushed
        self.informational = informational
        self.trailers: Optional[list[Any]] = None

    def cancel(self, code: int = 0x8) -> None:
        """Reset the stream (HTTP/2), or close the connection (HTTP/1.1)."""
        self.conn._cancel(self.stream, code)


class Push:
    """A pushed request promised with a response; ``await push.response`` for its answer."""

    def __init__(self, conn: "Client", stream: int, method: Any, path: Any,
                 headers: list[Any]) -> None:
        self.conn = conn
        self.stream = stream
        self.method = method
        self.path = path
        self.headers = headers
        self.response: "asyncio.Future[Response]" = conn.loop.create_future()
        # (a push nobody awaits must not log "exception was never retrieved")
        self.response.add_done_callback(lambda f: f.cancelled() or f.exception())

    def cancel(self) -> None:
        self.conn._cancel(self.stream, 0x8)


class StreamReceiver:
    """What a client stream's events go to (``Client.open_stream``): override the methods
    you need. ``Client.request`` uses one that builds a :class:`Response`; ``cno.acgi``
    turns them into messages. They run inside the engine's event dispatch: do not await,
    do not write to the connection from them."""

    def on_informational(self, code: int, headers: list[Any]) -> None:
        """A 1xx response head (never the final one)."""

    def on_response(self, code: int, headers: list[Any]) -> None:
        """The final response head."""

    def on_data(self, data: bytes) -> None:
        """Response body bytes. They count against the stream's window (HTTP/2) or the
        read buffer (HTTP/1.1) until ``client.consumed(stream, n)`` credits them back."""

    def on_tail(self, trailers: Optional[list[Any]]) -> None:
        """The response is complete; ``trailers`` is a list or None."""

    def on_push(self, push: "Push") -> None:
        """A push promised with this stream's response (HTTP/2, if push is enabled)."""

    def on_end(self, exc: Optional[CnoError]) -> None:
        """The stream is gone: ``exc`` is None after a complete exchange, a
        :class:`cno.StreamReset` (``code``, ``remote``, ``refused``) if it was reset, or
        :class:`cno.ConnectionClosed` if the connection ended first."""


class _Exchange(StreamReceiver):
    """The receiver behind ``Client.request``: a future for the Response, its Payload."""

    __slots__ = ("client", "future", "payload", "pushed", "informational", "response")

    def __init__(self, conn: "Client", stream: int, future: "asyncio.Future[Response]") -> None:
        self.client = conn
        self.future = future
        self.payload = Payload(conn, stream)
        self.pushed = Channel()
        self.informational: list[Any] = []
        self.response: Optional[Response] = None

    def on_informational(self, code: int, headers: list[Any]) -> None:
        self.informational.append((code, headers))   # 1xx never ends a request

    def on_response(self, code: int, headers: list[Any]) -> None:
        payload = self.payload
        self.response = Response(self.client, payload._stream, code, headers, payload,
                                 self.pushed, self.informational)
        if not self.future.done():
            self.future.set_result(self.response)

    def on_data(self, data: bytes) -> None:
        self.payload._feed(data)

    def on_tail(self, trailers: Optional[list[Any]]) -> None:
        if self.response is not None:
            self.response.trailers = trailers
        self.payload._feed_eof()

    def on_push(self, push: "Push") -> None:
        if not self.pushed.closed:
            self.pushed.put_nowait(push)

    def on_end(self, exc: Optional[CnoError]) -> None:
        exc = exc or ConnectionClosed("stream %d ended without a response" % self.payload._stream)
        if not self.future.done():
            self.future.set_exception(exc)
        self.payload._fail(exc)
        self.pushed.close()


class _PushReceiver(_Exchange):
    """A pushed stream: its response resolves ``push.response``; it has no pushes."""

    def __init__(self, conn: "Client", push: Push) -> None:
        super().__init__(conn, push.stream, push.response)


class Client(_Connection):
    """The client protocol; ``await client.request(...)`` sends a request.

    Below ``request()``, the stream-level methods ``open_stream``, ``send_data``,
    ``send_trailers``, ``consumed`` and ``cancel`` drive one stream at a time, with the
    stream's events going to a :class:`StreamReceiver` (what ``cno.acgi`` builds on)."""

    # Requests that several tasks start in one loop iteration leave in one write (one
    # syscall, not one each); a lone request waits for the end of its iteration only.
    _batch_requests = True

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop] = None,
                 authority: Optional[str] = None, scheme: Optional[str] = None, *,
                 http2: Optional[bool] = None, max_body_buffer: int = DEFAULT_MAX_BODY_BUFFER,
                 enable_push: bool = True, bytes_headers: bool = False) -> None:
        super().__init__(loop, False)
        self.authority = authority
        self.scheme = scheme or "http"
        self._http2 = http2
        self._max_buffer = max_body_buffer
        self._receivers: dict[int, StreamReceiver] = {}
        self._connected = self.loop.create_future()
        # Done once the server's first SETTINGS arrived (its preface, RFC 9113 3.4): from
        # then on remote_settings, max_concurrent_streams first, are the server's own.
        self.settings_received: "asyncio.Future[None]" = self.loop.create_future()
        self.bytes_headers = bytes_headers
        if not enable_push:
            self.update_settings(enable_push=0)

    def on_message_push(self, stream: int, parent: int, method: Any, path: Any,
                        headers: list[Any]) -> None:
        push = Push(self, stream, method, path, headers)
        self._receivers[stream] = _PushReceiver(self, push)
        receiver = self._receivers.get(parent)
        if receiver is not None:
            receiver.on_push(push)

    def connection_made(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        alpn = sslobj.selected_alpn_protocol() if sslobj is not None else None
        if sslobj is not None:
            self.scheme = "https"
            is_http2 = alpn == "h2"
        else:
            is_http2 = self._http2 is True
            # Plain HTTP: unless told otherwise, ask the server to switch (h2c).
            self.disallow_h2_upgrade = self._http2 is not None
        self._start(transport, is_http2)
        if not self._connected.done():
            self._connected.set_result(None)

    def connection_lost(self, exc: Optional[BaseException]) -> None:  # type: ignore[override]
        super().connection_lost(exc)   # the engine ends its open streams (on_stream_end)
        for stream in list(self._receivers):
            self._end(stream, self._failure or ConnectionClosed("the connection was lost"))

    # -- engine events -----------------------------------------------------------------

    def on_settings(self) -> None:
        super().on_settings()
        if not self.settings_received.done():
            self.settings_received.set_result(None)

    def on_message_head(self, stream: int, code: int, method: Any, path: Any,
                        headers: list[Any]) -> None:
        receiver = self._receivers.get(stream)
        if receiver is not None:
            if code < 200:
                receiver.on_informational(code, headers)
            else:
                receiver.on_response(code, headers)

    def on_message_data(self, stream: int, data: bytes) -> None:
        receiver = self._receivers.get(stream)
        if receiver is not None:
            self._buffered(len(data))
            receiver.on_data(data)

    def on_message_tail(self, stream: int, trailers: Optional[list[Any]]) -> None:
        receiver = self._receivers.get(stream)
        if receiver is not None:
            receiver.on_tail(trailers)

    def on_stream_end(self, stream: int, code: int, side: int) -> None:
        exc: Optional[CnoError]
        if self._lost and side == raw.CNO_LOCAL:
            exc = self._failure or ConnectionClosed("the connection was lost")
        elif code:
            exc = StreamReset(code, remote=side == raw.CNO_REMOTE)
        else:
            exc = None
        self._end(stream, exc)
        self._stream_ended()

    def _end(self, stream: int, exc: Optional[CnoError]) -> None:
        receiver = self._receivers.pop(stream, None)
        if receiver is not None:
            receiver.on_end(exc)

    # -- streams -----------------------------------------------------------------------

    async def open_stream(self, method: Any, path: Any, headers: Headers,
                          receiver: StreamReceiver, *, end_stream: bool = False) -> int:
        """Write a request head as is (no :scheme or :authority added) on a new stream
        and return its id; the stream's events go to ``receiver``. Waits while the
        server's stream limit is reached, and over HTTP/1.1 while an exchange runs.
        Raises ConnectionClosed if the connection is closed."""
        while True:
            if self.closed:
                raise ConnectionClosed("the connection is closed")
            if not self.is_http2 and self._receivers:
                # HTTP/1.1: one exchange at a time (no pipelining, which many servers
                # handle badly); the next request goes once this response is complete.
                await self._wait(self._ended)
                continue
            stream = self.next_stream
            try:
                self.write_head(stream, 0, method, path, headers, end_stream)
            except WouldBlock:   # the server's stream limit, or HTTP/1.1's one at a time
                await self._wait(self._ended)
                continue
            self._receivers[stream] = receiver
            return stream

    async def send_data(self, stream: int, data: Union[bytes, bytearray, memoryview],
                        end_stream: bool = False, *, timeout: Optional[float] = None) -> None:
        """Write request body bytes on ``stream``, waiting for the peer's flow-control
        windows and for the transport (at most ``timeout`` seconds in all: TimeoutError,
        with what did not fit unwritten). Raises StreamReset if the stream is gone.
        Bytes that fit at once go without suspending."""
        deadline = None if timeout is None else self.loop.time() + timeout
        await self._write(stream, data, end_stream, deadline)

    async def send_trailers(self, stream: int, trailers: Headers) -> None:
        """End the request on ``stream`` with trailers (HTTP/2; chunked HTTP/1.1)."""
        await self._send_trailers(stream, trailers)

    def consumed(self, stream: int, n: int) -> None:
        """Credit ``n`` bytes of ``stream``'s response body back to the peer (HTTP/2
        WINDOW_UPDATE; HTTP/1.1 resumes reading the socket)."""
        self._consumed(stream, n)

    def cancel(self, stream: int, code: int = 0x8) -> None:
        """Reset the stream (HTTP/2 RST_STREAM, CANCEL by default), or close the
        connection (HTTP/1.1 has no other way to abandon an exchange)."""
        self._cancel(stream, code)

    def _cancel(self, stream: int, code: int) -> None:
        if self.closed or stream not in self.open_streams:
            return
        if self.is_http2:
            self.write_reset(stream, code)
        else:
            self._abort()

    # -- requests ----------------------------------------------------------------------

    async def request(self, method: Any, path: Any, headers: Headers = (), data: Body = b"", *,
                      trailers: Optional[Headers] = None) -> Response:
        """Send a request and return its Response once the final head arrives."""
        headers = list(headers)
        names = {h[0] for h in headers}
        if ":authority" not in names and self.authority:
            headers.insert(0, (":authority", self.authority))
        if ":scheme" not in names:
            headers.insert(0, (":scheme", self.scheme))
        simple = isinstance(data, (bytes, bytearray, memoryview))
        final = simple and not data and not trailers
        if isinstance(data, (bytes, bytearray, memoryview)) and data and not trailers \
                and not any(h[0] in ("content-length", b"content-length") for h in headers):
            headers.append(("content-length", str(memoryview(data).nbytes)))   # not chunked
        body = data
        for attempt in range(REFUSED_RETRIES + 1):
            future: "asyncio.Future[Response]" = self.loop.create_future()
            exchange = _Exchange(self, 0, future)
            stream = await self.open_stream(method, path, headers, exchange, end_stream=final)
            exchange.payload._stream = stream
            data, sender, done = body, None, final
            try:
                if (isinstance(data, (bytes, bytearray, memoryview)) and data and not trailers
                        and not self.writing_paused):
                    n = self.write_data(stream, data, True)   # most bodies fit at once
                    data = memoryview(data)[n:]
                    done = not data
                if not done:
                    sender = self.loop.create_task(self._write_body(stream, data, trailers))
                    sender.add_done_callback(lambda t: t.cancelled() or t.exception())
                return await future
            except StreamReset as e:
                # RFC 9113 8.7: a refused stream was not processed; a body we still hold
                # whole can go again (e.g. requests sent before the server's SETTINGS
                # told its stream limit).
                if not (e.refused and simple and attempt < REFUSED_RETRIES):
                    raise
            except asyncio.CancelledError:
                if sender is not None:
                    sender.cancel()
                self._cancel(stream, 0x8)   # RST_STREAM(CANCEL) at once
                raise
        raise AssertionError("unreachable")


async def connect(loop_or_url: Any = None, url: Optional[str] = None, *,
                  ssl: Optional[_ssl.SSLContext] = None, http2: Optional[bool] = None,
                  ssl_hostname: Optional[str] = None, protocol_class: type[Client] = Client,
                  **options: Any) -> Client:
    """Open a client connection to url (see docs/aio.md); ``connect(loop, url)`` too.
    ``protocol_class`` is the Client subclass to make (one overriding ``on_frame``, say);
    it is called as ``protocol_class(loop, authority, scheme, http2=http2, **options)``."""
    if url is None:
        url = loop_or_url
    loop = asyncio.get_running_loop()
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("the URL must start with http:// or https://, got %r" % (url,))
    try:
        port = parts.port
    except ValueError:
        raise ValueError("bad port in URL %r" % (url,)) from None
    host = parts.hostname
    if not host or port == 0:
        raise ValueError("no host in URL %r" % (url,) if not host else
                         "bad port in URL %r" % (url,))
    port = port or (443 if scheme == "https" else 80)
    context = None
    if scheme == "https":
        context = ssl if ssl is not None else _ssl.create_default_context()
        context.set_alpn_protocols(ALPN if http2 is not False else ["http/1.1"])
    authority = parts.netloc.rsplit("@", 1)[-1]
    _, client = await loop.create_connection(
        lambda: protocol_class(loop, authority, scheme, http2=http2, **options), host, port,
        ssl=context, server_hostname=(ssl_hostname or host) if context else None)
    return client


async def request(*args: Any, headers: Headers = (), data: Body = b"", **options: Any) -> Response:
    """``connect`` and ``client.request`` in one: request(method, url, headers, data),
    or request(loop, method, url, ...). The query string is sent; response.conn is the
    connection (close it when done)."""
    if args and not isinstance(args[0], str):
        args = args[1:]   # the seed's explicit loop
    method, url = args[0], args[1]
    if len(args) > 2:
        headers = args[2]
    if len(args) > 3:
        data = args[3]
    client = await connect(url, **options)
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    try:
        return await client.request(method, path, headers, data)
    except BaseException:
        client.close()
        raise
