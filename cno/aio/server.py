"""The asyncio server: :class:`Server` (one per connection), :class:`Request`,
:class:`Service` and :func:`serve` (docs/aio.md), with the limits against peers that
misbehave (timeouts, progress, pending input)."""
from __future__ import annotations

import asyncio
import collections
import contextvars
import socket
import ssl as _ssl
import sys
from typing import Any, Awaitable, Callable, Optional, Union

from cno import raw
from cno.errors import (
    CnoError, ConnectionClosed, InvalidStream, StreamReset, UsageError, WouldBlock,
)
from cno.aio.payload import Payload
from cno.aio.protocol import (
    _WRITE_PIECE, ALPN, DEFAULT_MAX_BODY_BUFFER, Body, Headers, _Connection,
)

DEFAULT_IDLE_TIMEOUT = 60.0      # seconds without an open stream before a server closes
DEFAULT_HEADER_TIMEOUT = 30.0    # seconds for a started request head to complete
DEFAULT_SETTINGS_TIMEOUT = 10.0  # seconds for an HTTP/2 peer to acknowledge our SETTINGS
DEFAULT_PROGRESS_TIMEOUT = 30.0  # the period over which a peer we wait on must move...
DEFAULT_MIN_PROGRESS_RATE = 512  # ...this many bytes per second (in or out), or be dropped
DEFAULT_MAX_PENDING_INPUT = 65536  # unparsed pipelined HTTP/1.1 input before reads pause


_TASK_NAME = "cno request handler"
# Python 3.12+: a handler's task runs its first step at once (asyncio.Task's eager_start),
# and one that answers without waiting is never scheduled (docs/aio.md, "How handlers run").
_EAGER_START = sys.version_info >= (3, 12)
_CONTENT_LENGTH = ("content-length", b"content-length")
_CONNECT = ("CONNECT", b"CONNECT")
_INHERITED = (":authority", ":scheme", b":authority", b":scheme")   # by pushed requests


class Request:
    """A request a server received; ``await respond(...)`` answers it."""

    # (defaults at class level: an instance sets them only when they change)
    trailers: Optional[list[Any]] = None
    responded = False
    upgrade = False   # HTTP/1.1: the request asks to switch protocols (Upgrade, not h2c)
    _sent_all = False  # end() went out: our side of the stream is closed
    _http_version: Optional[str] = None   # asked of the engine when first read
    # the task running the handler, once it outlives its start (an eager task that
    # finished in its first step is never kept)
    _task: "Optional[asyncio.Task[None]]" = None

    def __init__(self, conn: "Server", stream: int, method: Any, path: Any, headers: list[Any]) -> None:
        self.conn = conn
        self.stream = stream
        self.method = method
        self.path = path
        self.headers = headers
        self.payload = Payload(conn, stream)

    def push(self, method: Any, path: Any, headers: Headers = ()) -> bool:
        """Promise a pushed request (HTTP/2); :authority and :scheme are this request's
        unless given. Returns True if the push was promised."""
        conn = self.conn
        if not conn.is_http2 or conn.closed:
            return False
        given = {h[0] for h in headers}
        inherited = [h for h in self.headers if h[0] in _INHERITED and h[0] not in given]
        try:
            return conn.write_push(self.stream, method, path, inherited + list(headers)) != 0
        except CnoError:
            return False

    async def respond(self, code: int, headers: Headers = (), data: Body = b"", *,
                      trailers: Optional[Headers] = None) -> None:
        """Send the response: data is bytes, a Channel, or any async iterable of bytes."""
        conn = self.conn
        if not trailers and isinstance(data, (bytes, bytearray, memoryview)):
            while True:
                try:
                    rest = self.respond_nowait(code, headers, data)
                    break
                except WouldBlock:   # HTTP/1.1: an earlier request is still being answered
                    await conn._wait(conn._ended)
            if rest is not None:
                await rest
            return
        # (a body to stream, or trailers: the head never ends the response here)
        self._check_final(code, data)
        await self._head(code, headers, False)
        self.responded = True
        conn.uncork()
        await conn._write_body(self.stream, data, trailers)

    def respond_nowait(self, code: int, headers: Headers = (),
                       data: Union[bytes, bytearray, memoryview] = b"",
                       ) -> Optional[Awaitable[None]]:
        """respond() with a bytes body, at once: the head and the body are written now
        (in one write) and None is returned; if the peer's windows or the transport take
        only part of the body, what writes the rest is returned, to be awaited. Raises
        WouldBlock, having written nothing, while the head cannot go out (HTTP/1.1: an
        earlier request's response is still being written)."""
        if code < 200 or (data and (code == 204 or code == 304)):
            self._check_final(code, data)   # (raises)
        if data:
            # The whole body is known: say how long it is (no chunked framing needed).
            for h in headers:
                if h[0] in _CONTENT_LENGTH:
                    break
            else:
                headers = list(headers)
                headers.append(("content-length", str(len(data))))
        final = not data
        conn = self.conn
        stream = self.stream
        conn.cork()
        try:
            conn.write_head(stream, code, "", "", headers, final)
            self.responded = True
            if final:
                return None
            if conn.writing_paused or len(data) > _WRITE_PIECE:
                rest = data
            else:
                n = conn.write_data(stream, data, True)
                conn._moved += n
                if n >= len(data):
                    return None
                rest = memoryview(data)[n:]
        except InvalidStream:
            raise StreamReset(0x8, "stream %d is no longer open" % stream) from None
        finally:
            conn.uncork()   # (also when the engine refused the head: the 500 must go)
        return conn._write(stream, rest, True)

    @staticmethod
    def _check_final(code: int, data: Body) -> None:
        """UsageError for a final response that cannot be sent so."""
        if code in (204, 304) and not (isinstance(data, (bytes, bytearray, memoryview))
                                       and not data):
            # RFC 9110 15.3.5, 15.4.5: these responses end with their head.
            raise UsageError("a %d response has no body" % code)
        if code < 200:
            raise UsageError("respond() sends a final response; 1xx go with inform()")

    async def _head(self, code: int, headers: Headers, final: bool) -> None:
        """Write a head once the engine takes it (HTTP/1.1 answers in order); the
        connection stays corked, so that a body written at once joins the head."""
        conn = self.conn
        while True:
            conn.cork()
            try:
                conn.write_head(self.stream, code, "", "", headers, final)
                return
            except WouldBlock:   # HTTP/1.1: an earlier request is still being answered
                conn.uncork()
                await conn._wait(conn._ended)
            except InvalidStream:
                conn.uncork()
                raise StreamReset(0x8, "stream %d is no longer open" % self.stream) from None
            except BaseException:
                conn.uncork()   # (a head the engine refused: the 500 must not be held back)
                raise

    # -- a response written piece by piece (what an ASGI server needs) -------------------

    async def inform(self, code: int, headers: Headers = ()) -> None:
        """Send an informational response (1xx: 100 Continue, 103 Early Hints) before
        the final one; none goes to an HTTP/1.0 client (RFC 9110 15.2)."""
        if not 100 <= code < 200 or code == 101:
            raise UsageError("inform() sends 1xx responses other than 101, not %d" % code)
        await self._head(code, headers, False)
        self.conn.uncork()

    async def start(self, code: int, headers: Headers = ()) -> None:
        """Send the final response head; the body follows with write() and end()
        (without a content-length it goes chunked over HTTP/1.1).

        A 101 (HTTP/1.1, to a request with an Upgrade header) or a 2xx to CONNECT (and
        to HTTP/2's extended CONNECT, RFC 8441) opens a tunnel instead: ``payload`` then
        reads the peer's bytes, write() sends ours and end() closes it (the connection
        in HTTP/1.1, the stream in HTTP/2)."""
        if code < 200 and code != 101:
            raise UsageError("start() sends the final response; 1xx go with inform()")
        conn = self.conn
        body = self.payload
        tunnel = code == 101 or (code < 300 and self.method in _CONNECT)
        if tunnel:
            if not conn.is_http2:
                # HTTP/1.1: the request (no body) has ended; the tunnel's bytes, which
                # the engine hands out as soon as the head is written, are a new stream
                # of bytes.
                self.payload = Payload(conn, self.stream)
            self.payload._tunnel = True
        try:
            await self._head(code, headers, False)
        except BaseException:
            self.payload = body
            raise
        self.responded = True
        conn.uncork()

    async def write(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Send body bytes after start(), waiting for the peer's windows and for the
        transport to drain; raises StreamReset if the stream is gone."""
        if data:
            await self.conn._write(self.stream, data, False)

    def write_nowait(self, data: Union[bytes, bytearray, memoryview]) -> Optional[Awaitable[None]]:
        """write() without waiting when it need not: what the peer's windows and the
        transport take goes now; returns None if all of it went, else what writes the
        rest, to be awaited (StreamReset if the stream is gone)."""
        return self.conn._write_nowait(self.stream, data, False) if data else None

    async def end(self, trailers: Optional[Headers] = None) -> None:
        """End the body, with trailers if given (dropped where the framing has no room
        for them: an HTTP/1.1 body with a content-length)."""
        if trailers:
            await self.conn._send_trailers(self.stream, trailers)
        else:
            await self.conn._write(self.stream, b"", True)
        self._sent_all = True

    def reset(self, code: int = 0x8) -> None:
        """Abandon the exchange at once: RST_STREAM (HTTP/2, CANCEL by default), or close
        the connection (HTTP/1.1, and its tunnels, have no other way)."""
        conn = self.conn
        if conn.closed or self.stream not in conn.open_streams:
            return
        if conn.is_http2:
            conn.write_reset(self.stream, code)
        else:
            conn._abort()

    @property
    def http_version(self) -> str:
        """"2", "1.1" or "1.0" (what the client spoke in this request); first read while
        the stream is open (the engine knows it per exchange), then kept."""
        version = self._http_version
        if version is None:
            version = self._http_version = self.conn.http_version(self.stream)
        return version

    @property
    def ended(self) -> bool:
        """True once the stream is over: answered in full, reset, or the connection gone."""
        return self.stream not in self.conn._requests

    async def wait_ended(self) -> None:
        """Return once the stream is over (answered in full, reset by the peer, or the
        connection gone): what an ASGI server turns into http.disconnect."""
        try:
            while not self.ended:
                await self.conn._wait(self.conn._ended)
        except ConnectionClosed:
            pass   # the connection is gone, and the stream with it


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
                 limits: Optional[dict[str, int]] = None,
                 bytes_headers: bool = False,
                 enable_connect_protocol: bool = False) -> None:
        super().__init__(loop, True)
        self.handle = handle
        self.bytes_headers = bytes_headers
        self.disallow_h2_upgrade = False
        # RFC 8441 3: with enable_connect_protocol, HTTP/2 clients may open tunnels
        # (WebSockets) with CONNECT and a :protocol
        self.update_settings(max_concurrent_streams=max_concurrent_streams,
                             **({"enable_connect_protocol": 1} if enable_connect_protocol else {}))
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
        # How handlers start (docs/aio.md, "How handlers run"); set by connection_made.
        self._plain_tasks = False   # the loop has no task factory: tasks are made here
        self._deferred = False      # handlers may run at once: never inside an engine event
        self._starting: "collections.deque[Request]" = collections.deque()   # (_deferred)
        self._start_handle: Optional[asyncio.Handle] = None
        # True while a read is parsed or handlers are started: a head parsed meanwhile
        # starts in that call, in the connection's context
        self._dispatching = False
        self._context = contextvars.copy_context()   # each request's task runs in a copy

    def connection_made(self, transport: Any) -> None:
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None:
            self.scheme = "https"
        self._start(transport, sslobj is not None and sslobj.selected_alpn_protocol() == "h2")
        if self._service is not None:
            self._service._connections.add(self)
        self._last_active = self._head_started = self.loop.time()   # the first head is due
        # Without a task factory, request tasks are made here, named: CPython 3.11
        # formats a "Task-<n>" name for each unnamed task (a string per request).
        self._plain_tasks = self.loop.get_task_factory() is None
        # A task that starts eagerly (ours on 3.12+, or a factory's) runs its handler
        # when made: handlers then start once the engine call that delivered their
        # request returns (its END_STREAM, its body bytes delivered), never inside it.
        self._deferred = _EAGER_START or not self._plain_tasks
        # The requests' tasks run in copies of the context the connection began in
        # (not of whatever handler's task a pipelined request was parsed in).
        self._context = contextvars.copy_context()
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
        self._dispatching = True   # (the heads this read brings start here)
        try:
            super().buffer_updated(nbytes)
        except BaseException:
            self._dispatching = False
            if self._starting and self._start_handle is None:
                self._start_later()
            raise
        self._dispatching = False
        if self._heads_in_read > 1:
            self._batch = True
        if not self._input_paused and self.buffered_input > self._max_input \
                and not self.is_http2:
            self._check_input()
        if self._starting:
            self._start_handlers()

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
        if not self._deferred:
            # A task that runs later: made here, and held until _run ends (_over). Inside
            # a read, the current context is the connection's (the Task copies it);
            # otherwise a handler's write parsed this pipelined request, in its context.
            if self._dispatching:
                task = asyncio.Task(self._run(request), loop=self.loop, name=_TASK_NAME)
            else:
                task = asyncio.Task(self._run(request), loop=self.loop, name=_TASK_NAME,
                                    context=self._context.copy())
            request._task = task
            self._tasks.add(task)
            return
        # The engine is inside an event: the message may not be complete (a GET's
        # END_STREAM comes after its head), and a handler's write may be what parsed
        # this pipelined request. Its handler starts once the engine call returns.
        self._starting.append(request)
        if not self._dispatching and self._start_handle is None:
            self._start_later()

    def _start_later(self) -> None:
        # (in a copy of the connection's context: the handler whose write parsed the
        # request is not the one whose context its task copies)
        self._start_handle = self.loop.call_soon(self._start_handlers,
                                                 context=self._context.copy())

    def _start_handlers(self) -> None:
        """Start the tasks of the requests waiting in _starting, in the order they came
        (those that pipelining parses meanwhile join the queue). Runs where the current
        context is the connection's: each task copies it."""
        if self._start_handle is not None:
            self._start_handle.cancel()   # (this call starts them)
            self._start_handle = None
        starting = self._starting
        loop = self.loop
        run = self._run
        tasks = self._tasks
        plain = self._plain_tasks
        self._dispatching = True
        try:
            first = True
            while starting:
                if not first:
                    self._batch = True   # several answers in one turn: one write
                first = False
                request = starting.popleft()
                if plain:
                    # (3.12+) Runs to the handler's first suspension now: a handler that
                    # answers without waiting is done before this returns, and its
                    # task is never scheduled.
                    task = asyncio.Task(run(request), loop=loop, name=_TASK_NAME,
                                        eager_start=True)  # type: ignore[call-arg,unused-ignore]
                else:
                    task = loop.create_task(run(request))
                if not task.done():
                    request._task = task   # (held until _run ends, _over)
                    tasks.add(task)
        finally:
            self._dispatching = False
            if starting and self._start_handle is None:   # (a handler raised BaseException)
                self._start_later()

    def on_upgrade(self, stream: int) -> None:
        request = self._requests.get(stream)
        if request is not None:
            request.upgrade = True

    def on_message_data(self, stream: int, data: bytes) -> None:
        request = self._requests.get(stream)
        if request is not None:
            self._buffered(len(data))
            request.payload._feed(data)

    def on_message_tail(self, stream: int, trailers: Optional[list[Any]]) -> None:
        request = self._requests.get(stream)
        if request is not None:
            if trailers is not None:
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
        """The task of one request (a subclass running something else than
        ``handle`` ends it the same way: _failed or _unanswered, then _over)."""
        try:
            await self.handle(request)
        except Exception as exc:
            self._failed(request, exc)
        except asyncio.CancelledError as exc:
            self._failed(request, exc)   # (cno never cancels it: whoever did is answered)
            raise
        else:
            if not request.responded:
                self._unanswered(request)
        finally:
            self._over(request)

    def _unanswered(self, request: Request) -> None:
        """A handler returned: a request it left without a response gets a 500."""
        if not request.responded and not self.closed and request.stream in self.open_streams:
            self._answer_500(request)

    def _over(self, request: Request) -> None:
        self._tasks.discard(request._task)
        if request.payload._tunnel:
            if not self.closed and request.stream in self.open_streams:
                # A tunnel its handler left open: nobody will carry it any more. If our
                # side ended cleanly (a WebSocket's closing handshake is done, the peer's
                # END_STREAM still on its way), NO_ERROR: RFC 8441 5 reads CANCEL as
                # a TCP reset, an abortive close.
                if self.is_http2:
                    request.reset(0x0 if request._sent_all else 0x8)
                else:
                    self._end_after_error("the tunnel's handler returned")
        elif not request.payload._eof and request.responded and not self._lost \
                and not self.is_http2:
            # HTTP/1.1: the handler answered without reading all of the request's body,
            # and nobody will: the next request could only follow it. Close once the
            # response is out (staged), rather than hold the connection with reading
            # paused until a timeout (or a shutdown's grace) gives up on it.
            self._end_after_error("the request body was left unread")
        # The body's error, raised in the handler, holds a traceback whose frames hold
        # the payload that holds the error: cut it so that the request goes by
        # reference counting (issue 10 item 9).
        failure = request.payload._exc
        if failure is not None:
            failure.__traceback__ = None

    def _failed(self, request: Request, exc: BaseException) -> None:
        """A handler raised (or was cancelled): a 500 if nothing was sent, else the
        stream reset (HTTP/2) or the connection closed (HTTP/1.1)."""
        if not isinstance(exc, (StreamReset, ConnectionClosed, asyncio.CancelledError)):
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
                sock: Optional[socket.socket] = None, backlog: int = 100,
                protocol: Optional[Callable[[], Server]] = None,
                **options: Any) -> Service:
    """Listen on host:port (or on ``sock``, a bound TCP or UNIX socket, instead) and run
    ``handle(request)`` for each request (see docs/aio.md). ``protocol``, if given, makes
    each connection's protocol instead (a Server subclass; handle and options unused)."""
    loop = asyncio.get_running_loop()
    if ssl is not None:
        ssl.set_alpn_protocols(ALPN)
    service = None

    def factory() -> Server:
        conn = Server(loop, handle, **options) if protocol is None else protocol()
        conn._service = service
        return conn

    if sock is not None:
        server = await loop.create_server(factory, sock=sock, ssl=ssl, backlog=backlog)
    else:
        server = await loop.create_server(factory, host, port, ssl=ssl, backlog=backlog)
    service = Service(server)
    return service
