"""An httpx transport on cno (docs/acgi.md, "httpx"): HTTP/1.1 and HTTP/2 through
:class:`cno.acgi.Pool`.

    import httpx, cno.httpx
    async with httpx.AsyncClient(transport=cno.httpx.AsyncTransport(http2=True)) as client:
        response = await client.get("https://example.com/")

httpx is an optional dependency (``pip install cno[httpx]``); the maintained ``httpx2``
fork, which keeps the transport API, works as well.
"""
from __future__ import annotations

import ssl as _ssl
from typing import Any, Dict, Optional, Union

try:
    import httpx
except ImportError:  # pragma: no cover - the fork, which keeps the transport API
    import httpx2 as httpx  # type: ignore[import-not-found,no-redef,unused-ignore]

from cno.acgi import errors as acgi_errors
from cno.acgi.pool import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Pool
from cno.errors import ConnectionClosed, ProtocolError, StreamReset, UsageError

__all__ = ["AsyncTransport"]


# cno's errors and the httpx classes they become, the most specific first.
_ERRORS: "list[tuple[type[BaseException], Any]]" = [
    (acgi_errors.ConnectTimeout, httpx.ConnectTimeout),
    (acgi_errors.ReadTimeout, httpx.ReadTimeout),
    (acgi_errors.WriteTimeout, httpx.WriteTimeout),
    (acgi_errors.PoolTimeout, httpx.PoolTimeout),
    (acgi_errors.ConnectError, httpx.ConnectError),
    (UsageError, httpx.LocalProtocolError),      # MessageError included
    (ProtocolError, httpx.RemoteProtocolError),
    (StreamReset, httpx.RemoteProtocolError),
    (ConnectionClosed, httpx.RemoteProtocolError),
    (OSError, httpx.ReadError),
]


def _as_httpx(exc: Exception, request: "httpx.Request") -> Optional[Exception]:
    """The httpx exception for one of cno's, or None."""
    for cls, theirs in _ERRORS:
        if isinstance(exc, cls):
            return theirs(str(exc), request=request)   # type: ignore[no-any-return]
    return None


class _ResponseStream(httpx.AsyncByteStream):
    """The body iterator of the response as httpx's stream (one object per response, no
    generator: this runs once per chunk)."""

    def __init__(self, body: Any, request: "httpx.Request") -> None:
        self._body = body
        self._request = request

    def __aiter__(self) -> "_ResponseStream":
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._body.__anext__()   # type: ignore[no-any-return]
        except StopAsyncIteration:
            raise
        except Exception as e:
            mapped = _as_httpx(e, self._request)
            if mapped is None:
                raise
            raise mapped from e

    async def aclose(self) -> None:
        await self._body.aclose()


class AsyncTransport(httpx.AsyncBaseTransport):
    """An ``httpx.AsyncBaseTransport`` whose connections are cno's.

    ``verify`` (True, False, a CA bundle path, or an ``ssl.SSLContext``), ``cert`` (a
    client certificate file, or a (certfile, keyfile) pair), ``http1``/``http2`` as in
    ``httpx.AsyncHTTPTransport`` (HTTP/2 by ALPN on https; ``http2`` alone on http:
    prior knowledge), ``max_connections`` per origin, ``keepalive_expiry`` (seconds),
    ``retries``; or an existing ``pool``. Timeouts come from each request (httpx's
    ``timeout=``)."""

    def __init__(self, *, verify: Union[bool, str, _ssl.SSLContext] = True,
                 cert: Any = None, http1: bool = True, http2: bool = False,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS,
                 keepalive_expiry: Optional[float] = DEFAULT_IDLE_TIMEOUT, retries: int = 0,
                 pool: Optional[Pool] = None) -> None:
        if not http1 and not http2:
            raise ValueError("at least one of http1 and http2 must be enabled")
        if pool is None:
            pool = Pool(ssl=_context(verify, cert), http2=None if http1 and http2 else http2,
                        max_connections=max_connections, idle_timeout=keepalive_expiry,
                        retries=retries)
        self.pool = pool

    async def handle_async_request(self, request: "httpx.Request") -> "httpx.Response":
        timeouts: Dict[str, Optional[float]] = request.extensions.get("timeout", {})
        stream = request.stream
        if isinstance(stream, httpx.ByteStream):
            body: Any = b"".join(stream)   # known in full: sent at once (and retried)
        else:
            body = stream
        try:
            message = await self.pool.request(
                request.method, str(request.url), request.headers.raw, body,
                connect_timeout=timeouts.get("connect"), read_timeout=timeouts.get("read"),
                write_timeout=timeouts.get("write"), pool_timeout=timeouts.get("pool"))
        except Exception as e:
            mapped = _as_httpx(e, request)
            if mapped is None:
                raise
            raise mapped from e
        return httpx.Response(
            message["status_code"], headers=message["headers"],
            stream=_ResponseStream(message["body"], request),
            extensions={"http_version": b"HTTP/2" if message["http_version"] == "2"
                        else b"HTTP/1.1", "stream_id": message["stream_id"]})

    async def aclose(self) -> None:
        await self.pool.aclose()


def _context(verify: Union[bool, str, _ssl.SSLContext], cert: Any) -> _ssl.SSLContext:
    if isinstance(verify, _ssl.SSLContext):
        context = verify
    elif verify is False:
        context = _ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = _ssl.CERT_NONE
    elif isinstance(verify, str):
        context = _ssl.create_default_context(cafile=verify)
    else:
        context = _ssl.create_default_context()
    if cert is not None:
        if isinstance(cert, str):
            context.load_cert_chain(cert)
        else:
            context.load_cert_chain(*cert)
    return context
