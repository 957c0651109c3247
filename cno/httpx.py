"""An httpx transport on cno (docs/acgi.md, "httpx"): HTTP/1.1 and HTTP/2 through
:class:`cno.acgi.Pool`.

    import httpx, cno.httpx
    async with httpx.AsyncClient(transport=cno.httpx.AsyncTransport(http2=True)) as client:
        response = await client.get("https://example.com/")

httpx is an optional dependency (``pip install cno[httpx]``); the maintained ``httpx2``
fork, which keeps the transport API, works as well.
"""
from __future__ import annotations

import contextlib
import ssl as _ssl
from typing import Any, AsyncIterator, Dict, Iterator, Optional, Union

try:
    import httpx
except ImportError:  # pragma: no cover - the fork, which keeps the transport API
    import httpx2 as httpx  # type: ignore[import-not-found,no-redef,unused-ignore]

from cno.acgi import errors as acgi_errors
from cno.acgi.pool import DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_CONNECTIONS, Pool
from cno.errors import ConnectionClosed, ProtocolError, StreamReset, UsageError

__all__ = ["AsyncTransport"]


@contextlib.contextmanager
def _mapped(request: "httpx.Request") -> Iterator[None]:
    """cno's errors as httpx's (the most specific class first)."""
    try:
        yield
    except acgi_errors.ConnectTimeout as e:
        raise httpx.ConnectTimeout(str(e), request=request) from e
    except acgi_errors.ReadTimeout as e:
        raise httpx.ReadTimeout(str(e), request=request) from e
    except acgi_errors.WriteTimeout as e:
        raise httpx.WriteTimeout(str(e), request=request) from e
    except acgi_errors.PoolTimeout as e:
        raise httpx.PoolTimeout(str(e), request=request) from e
    except acgi_errors.ConnectError as e:
        raise httpx.ConnectError(str(e), request=request) from e
    except acgi_errors.MessageError as e:
        raise httpx.LocalProtocolError(str(e), request=request) from e
    except UsageError as e:
        raise httpx.LocalProtocolError(str(e), request=request) from e
    except (ProtocolError, StreamReset) as e:
        raise httpx.RemoteProtocolError(str(e), request=request) from e
    except ConnectionClosed as e:
        raise httpx.RemoteProtocolError(str(e), request=request) from e
    except OSError as e:
        raise httpx.ReadError(str(e), request=request) from e


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, body: Any, request: "httpx.Request") -> None:
        self._body = body
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for chunk in self._body:
                yield chunk

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
        with _mapped(request):
            message = await self.pool.request(
                request.method, str(request.url), request.headers.raw, body,
                connect_timeout=timeouts.get("connect"), read_timeout=timeouts.get("read"),
                write_timeout=timeouts.get("write"), pool_timeout=timeouts.get("pool"))
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
