"""A reverse proxy as an ASGI application, on a :class:`cno.acgi.Pool` (docs/acgi.md).

``Pool(upstream="http://127.0.0.1:9000")`` is an ASGI 3 application: each HTTP request it
gets is forwarded to the upstream origin, streamed both ways with backpressure (a chunk
is taken from the upstream only after the ASGI server accepted the previous one, so a
slow client holds about one upstream window of memory), with the hop-by-hop fields
removed and Via / X-Forwarded-* added (RFC 9110 7.6), and trailers passed on when the
ASGI server offers the ``http.response.trailers`` extension.
"""
from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, Iterable, List, Set, Tuple, Union

from cno.acgi.connection import split_url
from cno.acgi.errors import AcgiError, ConnectError, Timeout
from cno.errors import CnoError

__all__ = ["Proxy", "HOP_BY_HOP"]

# RFC 9110 7.6.1: a proxy removes these, and every field the Connection header names.
HOP_BY_HOP = frozenset([b"connection", b"proxy-connection", b"keep-alive", b"te",
                        b"transfer-encoding", b"upgrade"])

Headers = List[Tuple[bytes, bytes]]


def forwardable(headers: Iterable[Tuple[bytes, bytes]]) -> Headers:
    """``headers`` without the hop-by-hop fields (RFC 9110 7.6.1)."""
    named: Set[bytes] = set()
    fields = [(bytes(n).lower(), bytes(v)) for n, v in headers]
    for name, value in fields:
        if name == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    return [(n, v) for n, v in fields if n not in HOP_BY_HOP and n not in named]


class Proxy:
    """The ASGI application behind ``Pool(upstream=...)``.

    Options: ``preserve_host`` (send the client's Host upstream instead of the
    upstream's authority; default False, X-Forwarded-Host carries it either way),
    ``via`` (the pseudonym in Via, default ``"cno"``)."""

    def __init__(self, pool: Any, upstream: str, *, preserve_host: bool = False,
                 via: str = "cno") -> None:
        self.pool = pool
        origin, authority, path = split_url(upstream)
        self.upstream = "%s://%s" % (origin[0], authority)
        self.prefix = path.rstrip("/")
        self.preserve_host = preserve_host
        self.via = via.encode("latin-1")

    async def __call__(self, scope: Dict[str, Any], receive: Callable[[], Awaitable[Dict[str, Any]]],
                       send: Callable[[Dict[str, Any]], Awaitable[None]]) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            raise AcgiError("the proxy forwards HTTP requests only, not %r" % kind)
        target = self.prefix + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope.get("query_string"):
            target += "?" + scope["query_string"].decode("latin-1")
        headers = self._request_headers(scope)
        client = _Client(receive)
        try:
            body = await client.request_body()
            response = await self.pool.request(scope["method"], self.upstream + target,
                                               headers, body)
        except ClientGone:
            return
        except Timeout:   # (before OSError: a Timeout is a TimeoutError, hence an OSError)
            await _answer(send, 504, b"gateway timeout\n")
            return
        except (ConnectError, OSError):
            await _answer(send, 502, b"bad gateway: the upstream is unreachable\n")
            return
        except CnoError:
            await _answer(send, 502, b"bad gateway: the upstream failed\n")
            return
        stream = response["body"]
        trailers_ok = "http.response.trailers" in scope.get("extensions", {}) and any(
            n == b"trailer" for n, _ in response["headers"])
        watcher = asyncio.ensure_future(client.watch(stream))
        try:
            await send({"type": "http.response.start", "status": response["status_code"],
                        "headers": self._response_headers(response), "trailers": trailers_ok})
            async for chunk in stream:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            if trailers_ok:
                await send({"type": "http.response.trailers",
                            "headers": forwardable(stream.trailers or ()),
                            "more_trailers": False})
        except CnoError:
            if not client.gone:
                raise   # the upstream failed mid-response: the ASGI server aborts it
        finally:
            watcher.cancel()
            await stream.aclose()   # unless complete, the upstream stream is reset

    def _request_headers(self, scope: Dict[str, Any]) -> Headers:
        headers = forwardable(scope["headers"])
        host = next((v for n, v in headers if n == b"host"), None)
        out = [(n, v) for n, v in headers
               if n not in (b"host", b"via", b"x-forwarded-for", b"x-forwarded-proto",
                            b"x-forwarded-host")]
        if self.preserve_host and host is not None:
            out.append((b"host", host))
        # RFC 9110 7.6.3: Via gets the protocol the request came in with.
        version = scope.get("http_version", "1.1").encode()
        via = [v for n, v in headers if n == b"via"]
        out.append((b"via", b", ".join(via + [version + b" " + self.via])))
        client = scope.get("client")
        forwarded = [v for n, v in headers if n == b"x-forwarded-for"]
        if client:
            forwarded.append(str(client[0]).encode())
        if forwarded:
            out.append((b"x-forwarded-for", b", ".join(forwarded)))
        out.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        if host is not None:
            out.append((b"x-forwarded-host", host))
        if any(n == b"te" and v.strip().lower() == b"trailers" for n, v in scope["headers"]):
            out.append((b"te", b"trailers"))   # end to end in effect: gRPC needs it
        return out

    def _response_headers(self, response: Dict[str, Any]) -> Headers:
        headers = forwardable(response["headers"])
        via = [v for n, v in headers if n == b"via"]
        version = response["http_version"].encode()
        return [(n, v) for n, v in headers if n != b"via"] + [
            (b"via", b", ".join(via + [version + b" " + self.via]))]

    async def _lifespan(self, receive: Callable[[], Awaitable[Dict[str, Any]]],
                        send: Callable[[Dict[str, Any]], Awaitable[None]]) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.pool.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


class ClientGone(AcgiError):
    """The ASGI client disconnected while its request was being forwarded."""


class _Client:
    """The ASGI side of one forwarded request: its body, and whether it went away."""

    def __init__(self, receive: Callable[[], Awaitable[Dict[str, Any]]]) -> None:
        self.receive = receive
        self.gone = False
        self.body_done = asyncio.Event()

    async def request_body(self) -> Union[bytes, AsyncIterator[bytes]]:
        """The request body for the upstream, from the ``http.request`` messages: bytes
        when the first message holds all of it (no body at all, as for most GETs, goes
        up without one: no chunked framing, and the request can be retried), else an
        async iterator streaming it as the ASGI server delivers it."""
        message = await self.receive()
        if message["type"] == "http.disconnect":
            self.gone = True
            raise ClientGone("the client went away before its request")
        chunk: bytes = message.get("body", b"")
        if not message.get("more_body", False):
            self.body_done.set()
            return chunk
        return self.body(chunk)

    async def body(self, first: bytes = b"") -> AsyncIterator[bytes]:
        """The rest of the request body, from ``http.request`` messages."""
        if first:
            yield first
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.gone = True
                raise ClientGone("the client went away during its request body")
            chunk: bytes = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                self.body_done.set()
                return

    async def watch(self, stream: Any) -> None:
        """Once the body is in, ``receive()`` says only http.disconnect (ASGI): then
        the upstream stream is reset, not read to its end for nobody."""
        await self.body_done.wait()
        while (await self.receive())["type"] != "http.disconnect":
            pass
        self.gone = True
        await stream.aclose()


async def _answer(send: Callable[[Dict[str, Any]], Awaitable[None]], status: int,
                  text: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain"),
                            (b"content-length", str(len(text)).encode())]})
    await send({"type": "http.response.body", "body": text})
