"""The asyncio protocol both sides share: a ``cno.raw.Connection`` that is an
``asyncio.BufferedProtocol``. Reads land in a per-thread buffer and go straight to the
engine; writes go to the transport with backpressure (the peer's windows, the transport's
pause/resume); closes are staged so the last bytes reach the peer (docs/aio.md)."""
from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
from typing import Any, AsyncIterable, Awaitable, Optional, Sequence, Tuple, Union

from cno import raw
from cno.errors import CnoError, ConnectionClosed, InvalidStream, StreamReset

Headers = Sequence[Tuple[Any, Any]]
Body = Union[bytes, bytearray, memoryview, AsyncIterable[bytes]]

ALPN = ["h2", "http/1.1"]
DEFAULT_MAX_BODY_BUFFER = 65536  # HTTP/1.1 request body bytes buffered before reads pause
CLOSE_GRACE = 2.0                # seconds a closing connection has to take its last bytes
CONNECTION_WINDOW = 1 << 20      # our HTTP/2 connection receive window (streams: 65535)
_READ_BUFFER = 65536
_read_buffers = threading.local()   # one read buffer per thread, shared by its connections
logger = logging.getLogger("cno")
_WRITE_PIECE = 262144            # body bytes handed to the transport per write: an HTTP/1.1
                                 # body (no windows) must not land in its buffer whole


# CPython 3.12.0-3.12.8 and 3.13.0-3.13.1: the selector transport's writelines() never
# pauses the protocol (gh-127655), so a writer would never wait and a peer that does not
# read would grow the buffer without bound. There the chunks go out through write().
_WRITELINES_PAUSES = not ((3, 12) <= sys.version_info[:3] < (3, 12, 9)
                          or (3, 13) <= sys.version_info[:3] < (3, 13, 2))
# asyncio's default writelines() joins its arguments into one bytes (a copy of them all):
# CPython 3.11's selector transport has no other. Where it would run, a chunk this large
# (a body the engine passed by reference: see zero_copy_threshold in docs/raw.md) goes
# to write() on its own, which sends it from the caller's buffer and copies only what the
# socket did not take; smaller chunks around it are joined in groups of about that size,
# so that an HTTP/2 frame header and its 16 KiB payload cost one copy, not a send() each.
_WRITE_ALONE = 65536
_JOINING_WRITELINES = asyncio.WriteTransport.writelines


def _writelines(transport: Any, chunks: Sequence[Any]) -> None:
    """Hand one on_writev's chunks (bytes, or memoryviews of a caller's bytes) to the
    transport: writelines() where it takes them as they are (uvloop: one vectored write;
    newer CPython: sendmsg()), else write() as above."""
    if len(chunks) == 1:
        transport.write(chunks[0])
    elif _WRITELINES_PAUSES and type(transport).writelines is not _JOINING_WRITELINES:
        transport.writelines(chunks)
    else:
        small: list[Any] = []
        size = 0
        for chunk in chunks:
            n = len(chunk)
            if n < _WRITE_ALONE:
                small.append(chunk)
                size += n
                if size < _WRITE_ALONE:
                    continue
                chunk = None   # (a full group: joined copies stay at most ~2 x _WRITE_ALONE)
            if small:
                transport.write(b"".join(small) if len(small) > 1 else small[0])
                small.clear()
                size = 0
            if chunk is not None:
                transport.write(chunk)
        if small:
            transport.write(b"".join(small) if len(small) > 1 else small[0])


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


class _Connection(raw.Connection, asyncio.BufferedProtocol):  # type: ignore[misc]
    """What servers and clients share: transport I/O and writing with backpressure."""

    _batch_requests = False   # an HTTP/2 client's output waits for the iteration's end
    progress_timeout: Optional[float] = None   # the server's slow-peer limit (Server)

    def __init__(self, loop: Optional[asyncio.AbstractEventLoop], server: bool) -> None:
        raw.Connection.__init__(self, server)
        self.loop = loop or asyncio.get_event_loop()
        self.transport: Any = None
        self.manual_flow_control = True
        # futures woken when windows grow or writing resumes (each with the stream whose
        # writer waits: they wake in priority order) / when any stream ends
        self._waiters: "dict[asyncio.Future[None], int]" = {}
        self._ended: "dict[asyncio.Future[None], int]" = {}
        self._max_buffer = DEFAULT_MAX_BODY_BUFFER
        self._h1_buffered = 0         # HTTP/1.1 body bytes received, not yet read
        self._reading_paused = False  # ... stopped reading for that
        self._input_paused = False    # ... or (servers) for pipelined input waiting unparsed
        self._readers_waiting = 0     # body readers waiting for bytes from the peer
        self._lost = False
        self._pending: list[Union[bytes, memoryview]] = []   # output of this loop iteration, written at its end
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

    def on_writev(self, chunks: Sequence[Union[bytes, memoryview]]) -> None:
        # When one read brought several requests, their answers (written by as many
        # handler tasks in this loop iteration) go to the transport in one writelines;
        # so do the requests an HTTP/2 client's tasks write in one iteration; otherwise
        # each write goes at once.
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

    def on_close(self) -> None:
        # (the engine hands out what a cork() held before it closes)
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
            try:
                transport.write_eof()
            except OSError:   # the peer is gone already (ENOTCONN before connection_lost)
                transport.abort()
                return
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
        waiters, self._waiters = self._waiters, {}
        order: Any = waiters
        if len(waiters) > 1 and self.is_http2:
            # Writers resume (their tasks run) in the order their futures are woken: the
            # engine's priority order (RFC 9218, docs/raw.md Priorities); writers of
            # streams already gone first (they only find out).
            rank = {s: i for i, s in enumerate(self.priority_order(set(waiters.values())))}
            order = sorted(waiters, key=lambda w: rank.get(waiters[w], -1))
        for waiter in order:
            if not waiter.done():
                waiter.set_result(None)

    def _stream_ended(self) -> None:
        ended, self._ended = self._ended, {}
        for waiter in ended:
            if not waiter.done():
                waiter.set_result(None)
        self._wake_all()

    async def _wait(self, pool: "dict[asyncio.Future[None], int]",
                    deadline: Optional[float] = None, stream: int = 0) -> None:
        """Until a future of ``pool`` is woken; TimeoutError at ``deadline`` (loop time);
        ``stream``: whose writer waits."""
        if self._lost:
            raise ConnectionClosed("the connection is closed")
        waiter = self.loop.create_future()
        pool[waiter] = stream
        timer = None if deadline is None else self.loop.call_at(deadline, _time_out, waiter)
        try:
            await waiter
        finally:
            pool.pop(waiter, None)
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
                await self._wait(self._waiters, deadline, stream)
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
                await self._wait(self._waiters, deadline, stream)
            # else: the next piece, once the transport takes more (pause_writing)

    def _write_nowait(self, stream: int, data: Union[bytes, bytearray, memoryview],
                      final: bool) -> Optional[Awaitable[None]]:
        """Write what the windows and the transport take now: None if all of data went,
        else what writes the rest (to be awaited)."""
        if self.writing_paused or len(data) > _WRITE_PIECE:
            return self._write(stream, data, final)
        try:
            n = self.write_data(stream, data, final)
        except InvalidStream:
            raise StreamReset(0x8, "stream %d is no longer open" % stream) from None
        self._moved += n
        if n >= len(data):
            return None
        return self._write(stream, memoryview(data).cast("B")[n:], final)

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
            await self._wait(self._waiters, None, stream)
        try:
            self.write_tail(stream, trailers)
        except InvalidStream:
            raise StreamReset(0x8, "stream %d is no longer open" % stream) from None
