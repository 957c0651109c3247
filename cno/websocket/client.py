"""The WebSocket client: :func:`connect` opens a WebSocket over a new connection or
over an HTTP/2 :class:`cno.Client` already open (several WebSockets then share it, one
stream each) (docs/websocket.md)."""
from __future__ import annotations

import asyncio
import ssl as _ssl
import urllib.parse
from typing import Any, Awaitable, Generator, Optional, Sequence, Union

from cno._ws import DEFAULT_MAX_MESSAGE_SIZE, Codec
from cno.aio.client import Client, StreamReceiver, connect as http_connect
from cno.aio.payload import Payload
from cno.errors import CnoError, ConnectionClosed, HandshakeError, UsageError
from cno.websocket.connection import (
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, WebSocket,
)
from cno.websocket.handshake import check_response, new_key, request_headers

DEFAULT_OPEN_TIMEOUT = 10.0   # seconds for the connection and the handshake

Header = tuple[Union[str, bytes], Union[str, bytes]]


class _Handshake(StreamReceiver):
    """The stream's events: the response head as a future, then the tunnel's bytes."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.head: "asyncio.Future[tuple[int, list[Any]]]" = client.loop.create_future()
        self.payload = Payload(client, 0)

    def on_response(self, code: int, headers: list[Any]) -> None:
        if not self.head.done():
            self.head.set_result((code, headers))

    def on_data(self, data: bytes) -> None:
        self.payload._feed(data)

    def on_tail(self, trailers: Optional[list[Any]]) -> None:
        self.payload._feed_eof()

    def on_end(self, exc: Optional[CnoError]) -> None:
        exc = exc or ConnectionClosed("the WebSocket's stream ended")
        if not self.head.done():
            self.head.set_exception(exc)
        self.payload._fail(exc)


def _target(url: str) -> tuple[str, str, str]:
    """(http(s) URL of the server, path with query, authority) of a ws(s):// URL."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("ws", "wss"):
        raise ValueError("a WebSocket URL starts with ws:// or wss://, not %r" % (url,))
    if parts.fragment:
        raise ValueError("a WebSocket URL has no fragment (RFC 6455 3): %r" % (url,))
    http = "https" if scheme == "wss" else "http"
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    authority = parts.netloc.rsplit("@", 1)[-1]
    return "%s://%s/" % (http, authority), path, authority


class connect:
    """Open a WebSocket: ``async with cno.websocket.connect(url) as ws`` (closed on
    exit), or ``ws = await cno.websocket.connect(url)``.

    ``url`` is ws:// or wss://. ``client``: an open :class:`cno.Client` to use instead
    of a new connection (HTTP/2 with extended CONNECT: the WebSocket is one of its
    streams; it stays open when the WebSocket closes). Otherwise a new connection is
    made: wss:// offers h2 and http/1.1 by ALPN and uses HTTP/2 if the server agrees and
    advertises SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441), else HTTP/1.1; ws:// uses
    HTTP/1.1 unless ``http2=True`` (prior knowledge). ``subprotocols`` are offered in
    order; ``headers`` are extra request headers; ``compression="deflate"`` offers
    permessage-deflate (None: not). Limits and timers: ``max_size`` (bytes in a message;
    1009 past it), ``ping_interval``, ``ping_timeout``, ``close_timeout``,
    ``open_timeout`` (the connection and the handshake). A refused handshake raises
    :class:`cno.HandshakeError` (``status`` is what the server answered)."""

    def __init__(self, url: str, *, client: Optional[Client] = None,
                 subprotocols: Sequence[str] = (), headers: Sequence[Header] = (),
                 compression: Optional[str] = "deflate", http2: Optional[bool] = None,
                 ssl: Optional[_ssl.SSLContext] = None,
                 max_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 ping_interval: Optional[float] = DEFAULT_PING_INTERVAL,
                 ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT,
                 close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
                 open_timeout: Optional[float] = DEFAULT_OPEN_TIMEOUT) -> None:
        if compression not in (None, "deflate"):
            raise UsageError("compression is 'deflate' or None, not %r" % (compression,))
        self.url = url
        self.client = client
        self.subprotocols = list(subprotocols)
        self.headers = list(headers)
        self.deflate = compression == "deflate"
        self.http2 = http2
        self.ssl = ssl
        self.max_size = max_size
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.open_timeout = open_timeout
        self.websocket: Optional[WebSocket] = None
        _target(url)   # (a bad URL fails here, not when awaited)

    def __await__(self) -> Generator[Any, None, WebSocket]:
        return asyncio.wait_for(self._open(), self.open_timeout).__await__()

    async def __aenter__(self) -> WebSocket:
        self.websocket = await self
        return self.websocket

    async def __aexit__(self, *exc: Any) -> None:
        if self.websocket is not None:
            await self.websocket.close()

    async def _open(self) -> WebSocket:
        server, path, authority = _target(self.url)
        client = self.client
        own = client is None
        if client is None:
            client = await self._connect(server)
        try:
            if client.is_http2:
                await client.settings_received
                if client.remote_settings.get("enable_connect_protocol") != 1:
                    if not own:
                        raise UsageError("the server does not take WebSockets over HTTP/2 "
                                         "(no SETTINGS_ENABLE_CONNECT_PROTOCOL, RFC 8441)")
                    # Over TLS the server chose h2 but cannot carry WebSockets on it:
                    # a new connection, HTTP/1.1 only.
                    client.close()
                    client = await self._connect(server, http2=False)
            return await self._handshake(client, path, authority, own)
        except BaseException:
            if own:
                client.close()
            raise

    async def _connect(self, server: str, http2: Optional[bool] = None) -> Client:
        if http2 is None:
            http2 = self.http2
            if http2 is None and server.startswith("http:"):
                http2 = False   # ws://: HTTP/1.1 (not h2c: its Upgrade would be ours)
        context = self.ssl
        if server.startswith("https:") and context is None:
            context = _ssl.create_default_context()
        return await http_connect(server, ssl=context, http2=http2)

    async def _handshake(self, client: Client, path: str, authority: str,
                         own: bool) -> WebSocket:
        http2 = client.is_http2
        key = None if http2 else new_key()
        fields = request_headers(http2=http2, key=key, subprotocols=self.subprotocols,
                                 deflate=self.deflate, headers=self.headers)
        pseudo: list[Any] = [(b":scheme", _b(client.scheme)),
                             (b":authority", authority.encode())]
        if http2:
            pseudo.append((b":protocol", b"websocket"))
        receiver = _Handshake(client)
        stream = await client.open_stream(b"CONNECT" if http2 else b"GET", path.encode(),
                                          pseudo + fields, receiver)
        receiver.payload._stream = stream
        try:
            code, headers = await receiver.head
        except BaseException:
            client.cancel(stream)
            raise
        pairs = [(_b(n), _b(v)) for n, v in headers]
        try:
            subprotocol, deflate = check_response(
                code, pairs, http2=http2, key=key, subprotocols=self.subprotocols,
                deflate=self.deflate)
        except HandshakeError:
            client.cancel(stream)
            raise
        options: dict[str, Any] = deflate.codec_options() if deflate is not None else {}
        codec = Codec(True, max_message_size=self.max_size, **options)

        async def write_and_close(data: bytes) -> None:
            await client.send_data(stream, data, True)
            client.close()   # (our own connection: it carried this WebSocket only)

        def write(data: bytes, end: bool) -> Optional[Awaitable[None]]:
            if end and own and http2:
                return write_and_close(data)
            return client.send_data_nowait(stream, data, end)

        def abort() -> None:
            client.cancel(stream)
            if own:
                client.close()

        return WebSocket(codec, receiver.payload, write, abort, loop=client.loop,
                         subprotocol=subprotocol, http2=http2, response_headers=pairs,
                         ping_interval=self.ping_interval, ping_timeout=self.ping_timeout,
                         close_timeout=self.close_timeout)


def _b(value: Union[str, bytes]) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")
