"""The asyncio client: :class:`Client` (one per connection), :func:`connect`,
:func:`request`, :class:`Response`, :class:`Push` and :class:`StreamReceiver` (the hook
cno.acgi builds its messages on) (docs/aio.md)."""
from __future__ import annotations

import asyncio
import ssl as _ssl
import urllib.parse
from typing import Any, Awaitable, Optional, Union

from cno import raw
from cno.errors import CnoError, ConnectionClosed, StreamReset, WouldBlock
from cno.aio.payload import Channel, Payload
from cno.aio.protocol import ALPN, DEFAULT_MAX_BODY_BUFFER, Body, Headers, _Connection

REFUSED_RETRIES = 2              # times request() sends a refused request again


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
        """The final response head; or a 101 that opened the tunnel an Upgrade request
        asked for (HTTP/1.1), after which ``on_data`` carries the tunnel's bytes."""

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
            if code < 200 and code != 101:   # (101: the tunnel an Upgrade asked for)
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

    def send_data_nowait(self, stream: int, data: Union[bytes, bytearray, memoryview],
                         end_stream: bool = False) -> Optional[Awaitable[None]]:
        """send_data() without waiting when it need not: what the peer's windows and the
        transport take goes now; returns None if all of it went (and the stream ended,
        if asked), else what writes the rest, to be awaited."""
        return self._write_nowait(stream, data, end_stream)

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
