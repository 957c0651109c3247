"""Connections reused per origin (docs/acgi.md, "The pool").

Each origin (scheme, host, port) has a list of open :class:`Connection` objects. A
request takes a slot on the first one with room (HTTP/2: fewer running streams than the
server's MAX_CONCURRENT_STREAMS; HTTP/1.1: idle), else dials a new one while under
``max_connections``, else waits for a slot. While the first connection to an origin that
may speak HTTP/2 is still being opened, other requests wait for it instead of dialing
more. Slots are counted in one place, ``Connection.active``, which the stream's end
decrements; the pool only wakes its waiters then.
"""
from __future__ import annotations

import asyncio
import collections
import ssl as _ssl
from typing import (
    Any, AsyncIterable, Deque, Dict, Iterable, List, Optional, Set, Tuple, Union,
)

from cno import aio
from cno.acgi.connection import Connection, Message, NotStarted, open_connection, split_url
from cno.acgi.errors import AcgiError, PoolTimeout, ReadTimeout
from cno.errors import ConnectionClosed, StreamReset

__all__ = ["Pool", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_IDLE_TIMEOUT", "DEFAULT_RETRIES"]

DEFAULT_MAX_CONNECTIONS = 10    # per origin (browsers use 6 for HTTP/1.1)
DEFAULT_IDLE_TIMEOUT = 60.0     # seconds an unused connection stays open
DEFAULT_RETRIES = 2             # new attempts for a request the server did not process
# RFC 9110 9.2.2: a request with these methods may be repeated after a lost connection.
IDEMPOTENT = frozenset(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"])

Body = Union[bytes, bytearray, memoryview, AsyncIterable[bytes], Iterable[bytes]]
Origin = Tuple[str, str, int]


class _Origin:
    __slots__ = ("key", "conns", "dialing", "waiters")

    def __init__(self, key: Origin) -> None:
        self.key = key
        self.conns: List[Connection] = []
        self.dialing = 0
        self.waiters: Deque["asyncio.Future[None]"] = collections.deque()


class Pool:
    """Connections reused per origin, for many requests at once.

    ``await pool.request(method, url, headers, body)`` returns the ``http.response``
    message (``status_code``, ``headers``, ``body`` iterator, ...). Options:

    - ``ssl``, ``http2``, ``upgrade``, ``max_body_buffer``: as :func:`open_connection`.
    - ``max_connections``: connections per origin (HTTP/2 multiplexes up to the server's
      MAX_CONCURRENT_STREAMS on each before another is opened).
    - ``idle_timeout``: seconds a connection with no request running stays open.
    - ``retries``: how many times a request the server did not process (REFUSED_STREAM,
      GOAWAY, a reused HTTP/1.1 connection closed before any answer to an idempotent
      request) is sent again on another connection, when its body can be sent again.
    - ``connect_timeout``, ``read_timeout``, ``write_timeout``, ``pool_timeout``:
      defaults for :meth:`request` (seconds, or None for no limit).
    - ``upstream``: the origin the pool forwards to as an ASGI application
      (``await pool(scope, receive, send)``, see :mod:`cno.acgi.proxy`).

    Use it as ``async with cno.acgi.Pool() as pool`` or call ``await pool.aclose()``.
    """

    def __init__(self, *, ssl: Optional[_ssl.SSLContext] = None, http2: Optional[bool] = None,
                 upgrade: bool = False, max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 idle_timeout: Optional[float] = DEFAULT_IDLE_TIMEOUT,
                 retries: int = DEFAULT_RETRIES, connect_timeout: Optional[float] = None,
                 read_timeout: Optional[float] = None, write_timeout: Optional[float] = None,
                 pool_timeout: Optional[float] = None,
                 max_body_buffer: int = aio.DEFAULT_MAX_BODY_BUFFER,
                 upstream: Optional[str] = None, **proxy_options: Any) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.ssl = ssl
        self.http2 = http2
        self.upgrade = upgrade
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.retries = retries
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.write_timeout = write_timeout
        self.pool_timeout = pool_timeout
        self.max_body_buffer = max_body_buffer
        self._origins: Dict[Origin, _Origin] = {}
        self._idle_timers: Dict[Connection, asyncio.TimerHandle] = {}
        # Connections whose limits are not known yet: HTTP/2 before the server's SETTINGS,
        # HTTP/1.1 asking to upgrade before its first answer. Each takes one request.
        self._unsettled: Set[Connection] = set()
        self._closed = False
        self._proxy: Any = None
        if upstream is not None:
            from cno.acgi.proxy import Proxy
            self._proxy = Proxy(self, upstream, **proxy_options)
        elif proxy_options:
            raise TypeError("unexpected options %s" % ", ".join(sorted(proxy_options)))

    # -- requests --------------------------------------------------------------------------

    async def request(self, method: str, url: str, headers: Iterable[Tuple[bytes, bytes]] = (),
                      body: Body = b"", *, trailers: Optional[Iterable[Tuple[bytes, bytes]]] = None,
                      connect_timeout: Any = ..., read_timeout: Any = ...,
                      write_timeout: Any = ..., pool_timeout: Any = ...) -> Message:
        """Send a request and return its ``http.response`` message once the head arrives.

        ``body`` is bytes, or an (async) iterable of bytes streamed as it is produced
        (full duplex: the response may start before it ends). Read the response through
        ``message["body"]`` to its end, or ``await message["body"].aclose()``: the slot it
        holds is freed when the stream ends. Timeouts left out take the pool's defaults.
        A stream the server reset, or a lost connection, raises ``cno.StreamReset`` /
        ``cno.ConnectionClosed``; the errors of ``cno.acgi`` otherwise."""
        if self._closed:
            raise ConnectionClosed("the pool is closed")
        connect_timeout = self.connect_timeout if connect_timeout is ... else connect_timeout
        read_timeout = self.read_timeout if read_timeout is ... else read_timeout
        write_timeout = self.write_timeout if write_timeout is ... else write_timeout
        pool_timeout = self.pool_timeout if pool_timeout is ... else pool_timeout
        key, _, _ = split_url(url)
        replayable = isinstance(body, (bytes, bytearray, memoryview))
        streamed = not replayable or trailers is not None
        message = {"type": "http.request", "url": url, "method": method, "headers": headers,
                   "body": body if not streamed else b"", "more_body": streamed}
        if not isinstance(headers, (list, tuple)):
            message["headers"] = headers = list(headers)
        attempt = 0
        while True:
            conn, reused = await self._acquire(key, connect_timeout, pool_timeout)
            try:
                sid = await conn._request(message, post_connection=False,
                                          write_timeout=write_timeout, reserved=True)
            except NotStarted:
                self._stream_ended(conn)
                continue   # that connection is done: another one
            except BaseException:
                self._stream_ended(conn)
                raise
            stream = conn.streams[sid]
            sender = None
            if streamed:
                sender = asyncio.ensure_future(
                    self._send_body(conn, stream, body, trailers, write_timeout))
                sender.add_done_callback(_retrieve)
            try:
                response = await self._head(conn, sid, sender, read_timeout)
            except BaseException:
                conn._abandon(stream)
                if sender is not None:
                    if sender.done() and not sender.cancelled() and sender.exception():
                        raise sender.exception()   # type: ignore[misc]  # (the cause)
                    sender.cancel()
                raise
            if response["type"] == "http.response":
                response["body"]._sender = sender
                return response
            # http.stream.disconnect before the head: retry what the server never saw.
            if sender is not None:
                if sender.done() and not sender.cancelled() and sender.exception():
                    raise sender.exception()   # type: ignore[misc]
                sender.cancel()
            safe = response["refused"] or (
                reused and response["code"] is None and method in IDEMPOTENT)
            if safe and not streamed and attempt < self.retries:
                attempt += 1
                continue
            raise _disconnect_error(response)

    async def _head(self, conn: Connection, sid: int, sender: "Optional[asyncio.Future[None]]",
                    timeout: Optional[float]) -> Message:
        """The response head, or the ``http.stream.disconnect`` that came instead. The read
        timeout counts once the request is sent: while a streamed body is still going out
        (each write bounded by write_timeout), the server may wait for all of it before
        answering, and an upload that keeps going is not a read timeout."""
        if sender is None or timeout is None:
            return await conn._response(sid, timeout)
        head = asyncio.ensure_future(conn._response(sid, None))
        try:
            pending: "list[asyncio.Future[Any]]" = [head, sender]
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if not head.done():
                if not sender.cancelled() and sender.exception() is not None:
                    raise sender.exception()   # type: ignore[misc]
                await asyncio.wait([head], timeout=timeout)
                if not head.done():
                    raise ReadTimeout("no response from the server within %gs of the "
                                      "request's end" % timeout)
        finally:
            if not head.done():
                head.cancel()
        response = head.result()
        if response["type"] == "http.response":
            response["body"].timeout = timeout
        return response

    async def _send_body(self, conn: Connection, stream: Any, body: Any,
                         trailers: Optional[Iterable[Tuple[bytes, bytes]]],
                         timeout: Optional[float]) -> None:
        """Stream a request body; if producing it fails, the stream is reset."""
        sid = stream.id
        try:
            if isinstance(body, (bytes, bytearray, memoryview)):
                if body:
                    await conn._write(stream, body, False, timeout)
            elif hasattr(body, "__aiter__"):
                async for chunk in body:
                    if chunk:
                        await conn._write(stream, chunk, False, timeout)
            else:
                for chunk in body:
                    if chunk:
                        await conn._write(stream, chunk, False, timeout)
            if trailers is not None:
                await conn._trailers({"type": "http.request.trailers", "stream_id": sid,
                                      "headers": list(trailers)})
            else:
                await conn._write(stream, b"", True, timeout)
        except (StreamReset, ConnectionClosed):
            pass   # the response side reports it
        except BaseException:
            conn._abandon(stream)
            raise

    # -- slots -----------------------------------------------------------------------------

    async def _acquire(self, key: Origin, connect_timeout: Optional[float],
                       pool_timeout: Optional[float]) -> Tuple[Connection, bool]:
        """A connection with a slot reserved for one request (``active`` counts it), and
        whether it served requests before."""
        origin = self._origins.get(key)
        if origin is None:
            origin = self._origins[key] = _Origin(key)
        deadline = None
        while True:
            if self._closed:
                raise ConnectionClosed("the pool is closed")
            for conn in origin.conns:
                if not conn.closed and conn.active < self._room(conn):
                    conn.active += 1
                    timer = self._idle_timers.pop(conn, None)
                    if timer is not None:
                        timer.cancel()
                    return conn, True
            if self._may_dial(origin):
                conn = await self._dial(origin, connect_timeout)
                conn.active += 1
                return conn, False
            if pool_timeout is not None and deadline is None:
                deadline = asyncio.get_running_loop().time() + pool_timeout
            await self._wait_slot(origin, deadline)

    def _room(self, conn: Connection) -> int:
        """How many requests ``conn`` may run now: one until its limits are known (RFC
        9113 5.1.2: the client must not exceed the server's MAX_CONCURRENT_STREAMS, which
        its SETTINGS tell), then the server's limit (HTTP/2) or one (HTTP/1.1)."""
        return 1 if conn in self._unsettled else conn.max_streams

    def _may_dial(self, origin: _Origin) -> bool:
        """Under max_connections, and, for an origin that may speak HTTP/2, not while
        another connection is being opened: until it is open and its limits known (the
        server's SETTINGS; the answer to an upgrade), others wait for it."""
        if len(origin.conns) + origin.dialing >= self.max_connections:
            return False
        if not self._maybe_h2(origin.key):
            return True
        opening = origin.dialing > 0
        for conn in origin.conns:
            if not conn.closed:
                if conn in self._unsettled:
                    opening = True
                elif not conn.client.is_http2:
                    return True    # HTTP/1.1 it is: one connection per running request
        # HTTP/2 (or not known yet): one connection opened at a time; those waiting take
        # its streams rather than each opening a connection of its own.
        return not opening

    def _maybe_h2(self, key: Origin) -> bool:
        if self.http2 is False:
            return False
        return key[0] == "https" or bool(self.http2) or self.upgrade

    async def _dial(self, origin: _Origin, timeout: Optional[float]) -> Connection:
        origin.dialing += 1
        try:
            scheme, host, port = origin.key
            conn = await open_connection(
                "%s://%s:%d/" % (scheme, "[%s]" % host if ":" in host else host, port),
                ssl=self.ssl, http2=self.http2, upgrade=self.upgrade,
                connect_timeout=timeout, max_body_buffer=self.max_body_buffer)
        finally:
            origin.dialing -= 1
            self._wake(origin, all_of_them=True)   # they may use it (HTTP/2), or dial
        if self._closed:
            conn.close()
            raise ConnectionClosed("the pool is closed")
        conn.on_stream_end = self._stream_ended
        origin.conns.append(conn)
        client = conn.client
        if not client.settings_received.done() and (client.is_http2 or (
                self.upgrade and origin.key[0] == "http" and self.http2 is None)):
            self._unsettled.add(conn)
            client.settings_received.add_done_callback(lambda _: self._settled(origin, conn))
        watcher = asyncio.ensure_future(conn.wait_closed())
        watcher.add_done_callback(lambda _: self._gone(origin, conn))
        return conn

    def _settled(self, origin: _Origin, conn: Connection) -> None:
        """``conn``'s limits are known (the server's SETTINGS came; or its first exchange
        ended in HTTP/1.1, the upgrade declined): the requests waiting may use it, or dial."""
        if conn in self._unsettled:
            self._unsettled.discard(conn)
            self._wake(origin, all_of_them=True)

    async def _wait_slot(self, origin: _Origin, deadline: Optional[float]) -> None:
        loop = asyncio.get_running_loop()
        waiter: "asyncio.Future[None]" = loop.create_future()
        origin.waiters.append(waiter)
        timer = None
        if deadline is not None:
            timer = loop.call_at(deadline, _expire, waiter)
        try:
            await waiter
        finally:
            if timer is not None:
                timer.cancel()
            try:
                origin.waiters.remove(waiter)
            except ValueError:
                pass

    def _wake(self, origin: _Origin, all_of_them: bool = False) -> None:
        while origin.waiters:
            waiter = origin.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                if not all_of_them:
                    return

    def _stream_ended(self, conn: Connection) -> None:
        origin = self._origins.get(conn.origin)
        if origin is None:
            return
        if conn in self._unsettled and not conn.client.is_http2:
            self._settled(origin, conn)   # the upgrade was declined: HTTP/1.1 it is
        if origin.waiters:
            self._wake(origin)
        elif conn.active == 0 and self.idle_timeout is not None and not conn.closed:
            self._idle_timers[conn] = conn.client.loop.call_later(
                self.idle_timeout, self._expire_idle, conn)

    def _expire_idle(self, conn: Connection) -> None:
        self._idle_timers.pop(conn, None)
        if conn.active == 0:
            conn.close()

    def _gone(self, origin: _Origin, conn: Connection) -> None:
        if conn in origin.conns:
            origin.conns.remove(conn)
        self._unsettled.discard(conn)
        timer = self._idle_timers.pop(conn, None)
        if timer is not None:
            timer.cancel()
        self._wake(origin, all_of_them=True)   # a waiter may dial now

    # -- the pool itself -------------------------------------------------------------------

    @property
    def connections(self) -> Dict[Origin, List[Connection]]:
        """The open connections, per origin (scheme, host, port)."""
        return {key: list(o.conns) for key, o in self._origins.items() if o.conns}

    async def aclose(self) -> None:
        """Close every connection (streams still running get ``http.stream.disconnect``)."""
        self._closed = True
        conns = [conn for o in self._origins.values() for conn in o.conns]
        for conn in conns:
            conn.close()
        for origin in self._origins.values():
            self._wake(origin, all_of_them=True)
        if conns:
            await asyncio.wait([asyncio.ensure_future(c.wait_closed()) for c in conns], timeout=5)
        for origin in self._origins.values():
            for conn in list(origin.conns):   # (their watchers may not have run yet)
                self._gone(origin, conn)

    async def __aenter__(self) -> "Pool":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        """The pool as an ASGI application: forward to ``upstream`` (cno.acgi.proxy)."""
        if self._proxy is None:
            raise AcgiError("Pool(upstream=...) is needed to serve as an ASGI application")
        await self._proxy(scope, receive, send)


def _retrieve(task: "asyncio.Future[None]") -> None:
    """A body sender's failure surfaces through the response; never logged as lost."""
    if not task.cancelled():
        task.exception()


def _expire(waiter: "asyncio.Future[None]") -> None:
    if not waiter.done():
        waiter.set_exception(PoolTimeout("no connection had room for the request in time"))


def _disconnect_error(message: Message) -> Exception:
    if message["code"] is None:
        return ConnectionClosed(message["reason"])
    return StreamReset(message["code"], message["reason"])
