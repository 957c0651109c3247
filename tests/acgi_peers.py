"""Peers for the tests of cno.acgi's pool, reverse proxy and httpx transport
(tests/test_acgi_pool.py, test_acgi_proxy.py, test_httpx_transport.py).

- :class:`Recorder`: a ``cno.serve`` handler wrapper that counts the server-side
  connections and the requests running at once.
- :class:`GoawayFirst`: ``cno.serve`` whose first HTTP/2 connection answers the client's
  preface with GOAWAY(last-stream-id 0), refusing every request on it (RFC 9113 6.8).
- :class:`CloseOnReuse`: a minimal HTTP/1.1 server (plain asyncio) that answers the first
  request of each connection with keep-alive and closes the connection, without an
  answer, when a second request arrives on it: the race of a server closing an idle
  connection just as the client reuses it.
- :func:`upstream` / :func:`proxy`: the external processes of the proxy tests: a Starlette
  app served by hypercorn (the upstream, written from UPSTREAM_APP), and ``Pool(upstream=)``
  served by uvicorn or hypercorn. Each is an ``aio_util.External`` (a free port, stopped
  with SIGTERM then SIGKILL on exit).
"""
import asyncio
import os
import sys
from pathlib import Path

import cno
from aio_local import tls_contexts
from aio_util import HOST, External, require_module

# -- in-process servers ------------------------------------------------------------------


class Recorder:
    """Wraps a ``cno.serve`` handler: ``connections`` (the server-side connection objects
    that carried requests), ``running`` / ``peak`` (handlers running at once, per
    connection too), ``requests``."""

    def __init__(self, handler):
        self.handler = handler
        self.connections = []
        self.running = 0
        self.peak = 0
        self.peak_per_connection = {}
        self._per_connection = {}
        self.requests = 0

    async def __call__(self, request):
        conn = request.conn
        if conn not in self.connections:
            self.connections.append(conn)
        self.requests += 1
        self.running += 1
        self.peak = max(self.peak, self.running)
        n = self._per_connection[conn] = self._per_connection.get(conn, 0) + 1
        key = self.connections.index(conn)
        self.peak_per_connection[key] = max(self.peak_per_connection.get(key, 0), n)
        try:
            return await self.handler(request)
        finally:
            self.running -= 1
            self._per_connection[conn] -= 1


class Origin:
    """``async with Origin(mode, handler, **options) as srv``: a cno server (``cno.Server``
    with ``options``, as ``cno.serve`` makes it) on 127.0.0.1, port 0, in one mode:
    ``h1`` (plain HTTP/1.1), ``h2c`` (plain, the client speaks HTTP/2 by prior knowledge),
    ``h2tls`` (TLS, ALPN picks h2), ``h1tls`` (TLS, the server offers http/1.1 only).
    ``srv.accepted`` counts the TCP connections it accepted (opened ones, not only those
    that carried requests); ``srv.protocols`` are their server-side objects;
    ``srv.pool_options()`` the ``Pool`` options that reach it in its mode.
    ``declines_upgrade``: answer ``Upgrade: h2c`` requests over HTTP/1.1."""

    def __init__(self, mode, handler, *, declines_upgrade=False, **options):
        self.mode = mode
        self.handler = handler
        self.options = options
        self.declines_upgrade = declines_upgrade
        self.tls = mode.endswith("tls")
        self.accepted = 0
        self.protocols = []
        self.server = None
        self.port = None
        self.server_ssl = self.client_ssl = None
        if self.tls:
            self.server_ssl, self.client_ssl = tls_contexts(("h2", "http/1.1"))
            self.server_ssl.set_alpn_protocols(
                ["http/1.1"] if mode == "h1tls" else ["h2", "http/1.1"])

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    def url(self, path="/"):
        return "%s://%s:%d%s" % (self.scheme, HOST, self.port, path)

    def pool_options(self, **more):
        options = {"h1": {"http2": False}, "h2c": {"http2": True},
                   "h2tls": {"ssl": self.client_ssl}, "h1tls": {"ssl": self.client_ssl}}[self.mode]
        options.update(more)
        return options

    @property
    def http_version(self):
        return "2" if self.mode.startswith("h2") else "1.1"

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        outer = self

        class Server(cno.Server):
            def connection_made(self, transport):
                outer.accepted += 1
                outer.protocols.append(self)
                self.disallow_h2_upgrade = outer.declines_upgrade
                super().connection_made(transport)

        self.server = await loop.create_server(
            lambda: Server(loop, self.handler, **self.options), HOST, 0, ssl=self.server_ssl)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def closed_connections(self, timeout=2.0):
        """Wait until every accepted connection is closed (False if one is still open)."""
        waits = [asyncio.ensure_future(p.wait_closed()) for p in self.protocols]
        if not waits:
            return True
        done, pending = await asyncio.wait(waits, timeout=timeout)
        for w in pending:
            w.cancel()
        return not pending

    async def __aexit__(self, *exc):
        self.server.close()
        for protocol in self.protocols:
            protocol.close()
        await self.server.wait_closed()


class _Listening:
    """What the scripted servers below share: ``self.server`` listening on ``self.port``."""

    server = None
    port = None

    def url(self, path="/"):
        return "http://%s:%d%s" % (HOST, self.port, path)

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()


class GoawayFirst(_Listening):
    """``async with GoawayFirst(handler) as srv``: h2c by prior knowledge on ``srv.port``;
    the first connection sends GOAWAY with last-stream-id 0 as soon as the client's
    preface (its SETTINGS) arrives, so every request on it is refused unprocessed
    (RFC 9113 6.8); later connections serve ``handler``. ``srv.connections`` counts them."""

    def __init__(self, handler):
        self.handler = handler
        self.connections = 0
        self.server = None
        self.port = None

    async def __aenter__(self):
        loop = asyncio.get_running_loop()
        outer = self

        class Server(cno.Server):
            def connection_made(self, transport):
                outer.connections += 1
                self.first = outer.connections == 1
                super().connection_made(transport)

            def on_settings(self):
                if self.first and self.is_http2:
                    self.first = False
                    self.shutdown()   # GOAWAY(last-stream-id 0): nothing was processed

        self.server = await loop.create_server(lambda: Server(loop, self.handler), HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self



class CloseOnReuse(_Listening):
    """``async with CloseOnReuse() as srv``: HTTP/1.1 on ``srv.port``. The first request
    of a connection gets ``200`` with its method and the connection's number, kept alive;
    a second request on the same connection is read and the connection closed without an
    answer. ``srv.seen`` lists (connection number, method, path) of every request head."""

    def __init__(self):
        self.seen = []
        self.connections = 0
        self.server = None
        self.port = None

    async def _serve(self, reader, writer):
        self.connections += 1
        number = self.connections
        try:
            served = 0
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                fields = dict(ln.split(":", 1) for ln in lines[1:] if ":" in ln)
                fields = {k.strip().lower(): v.strip() for k, v in fields.items()}
                if "content-length" in fields:
                    await reader.readexactly(int(fields["content-length"]))
                self.seen.append((number, method, path))
                if served:
                    return   # close, unanswered, as an idle timeout would
                served += 1
                body = ("%s on connection %d" % (method, number)).encode()
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self):
        self.server = await asyncio.start_server(self._serve, HOST, 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self



# -- external processes for the proxy tests ---------------------------------------------

# The upstream: a Starlette app (served by hypercorn). /status tells what the streaming
# endpoints did (bytes each had sent, whether it saw the client go away).
UPSTREAM_APP = r'''
import asyncio, hashlib, json

from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

STATE = {}

def pattern(n):
    block = bytes(range(256)) * 256          # 64 KiB
    while n > 0:
        yield block[:n]
        n -= len(block)

async def echo(request):
    """What the upstream received: method, path, query, headers (all values), body."""
    body = await request.body()
    headers = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]]
    return JSONResponse({"method": request.method, "path": request.url.path,
                         "query": request.url.query, "headers": headers,
                         "http_version": request.scope["http_version"],
                         "body": body.decode("latin-1")},
                        headers={"x-upstream": "1", "connection": "x-hop",
                                 "x-hop": "must not reach the client",
                                 "keep-alive": "timeout=5", "upgrade": "h2c",
                                 "via": "1.1 origin-cache"})

async def upload(request):
    """Reads a streamed request body: its length, sha256 and how many chunks it came in."""
    digest, size, chunks = hashlib.sha256(), 0, 0
    async for chunk in request.stream():
        digest.update(chunk)
        size += len(chunk)
        chunks += 1
    return JSONResponse({"length": size, "sha256": digest.hexdigest(), "chunks": chunks})

async def mirror(scope, receive, send):
    """The request body streamed back as it arrives (full duplex). (Plain ASGI: Starlette's
    StreamingResponse would race request.stream() for receive() with its own disconnect
    listener, which drops body chunks.)"""
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/octet-stream")]})
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        if message.get("body"):
            await send({"type": "http.response.body", "body": message["body"],
                        "more_body": True})
        if not message.get("more_body"):
            break
    await send({"type": "http.response.body", "body": b""})

async def download(request):
    n = int(request.query_params["n"])
    async def gen():
        for block in pattern(n):
            yield block
    return StreamingResponse(gen(), media_type="application/octet-stream")

async def slow(request):
    await asyncio.sleep(float(request.query_params.get("s", "30")))
    return Response(b"late\n")

async def status(request):
    return JSONResponse(STATE)

async def reset(request):
    STATE.clear()
    return JSONResponse({})

async def firehose(scope, receive, send):
    """Streams ?n bytes (default 256 MiB) as fast as the server takes them; STATE[key]
    (key: the query string) records the bytes sent so far, whether the client was seen
    to go away (http.disconnect, or send failing), and whether the response was sent
    to its end."""
    key = scope["query_string"].decode()
    entry = STATE[key] = {"sent": 0, "disconnect": False, "done": False, "error": None}
    n = int(dict(kv.partition("=")[::2] for kv in key.split("&")).get("n", 256 << 20))

    async def watch():
        while (await receive())["type"] != "http.disconnect":
            pass
        entry["disconnect"] = True

    watcher = asyncio.ensure_future(watch())
    try:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for block in pattern(n):
            await asyncio.sleep(0)       # (the watcher runs)
            if entry["disconnect"]:
                return
            await send({"type": "http.response.body", "body": block, "more_body": True})
            entry["sent"] += len(block)
        await send({"type": "http.response.body", "body": b""})
        entry["done"] = True
    except BaseException as e:
        entry["error"] = repr(e)
        raise
    finally:
        await asyncio.sleep(0.5)   # (time for http.disconnect to arrive, if it comes)
        watcher.cancel()

async def trailers(scope, receive, send):
    """A body, then trailers (when the ASGI server offers them and TE: trailers came)."""
    offered = "http.response.trailers" in scope.get("extensions", {})
    te = any(k == b"te" and v == b"trailers" for k, v in scope["headers"])
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200, "trailers": offered,
                "headers": [(b"trailer", b"x-checksum, x-count"),
                            (b"x-te-seen", b"1" if te else b"0"),
                            (b"x-trailers-offered", b"1" if offered else b"0")]})
    await send({"type": "http.response.body", "body": b"the body\n", "more_body": False})
    if offered:
        await send({"type": "http.response.trailers", "more_trailers": False,
                    "headers": [(b"x-checksum", b"abc123"), (b"x-count", b"9")]})

class Raw:
    """A plain ASGI endpoint for a Route (Starlette calls a non-function endpoint as an
    ASGI app)."""
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)

app = Starlette(routes=[
    Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
    Route("/echo/{rest:path}", echo, methods=["GET", "POST"]),
    Route("/upload", upload, methods=["POST", "PUT"]),
    Route("/download", download),
    Route("/mirror", Raw(mirror), methods=["POST", "PUT"]),
    Route("/slow", slow),
    Route("/status", status),
    Route("/reset", reset, methods=["POST"]),
    Route("/firehose", Raw(firehose)),
    Route("/trailers", Raw(trailers), methods=["GET", "POST"]),
])
'''

# The proxy: Pool(upstream=...) as the ASGI app, options from the environment.
PROXY_APP = r'''
import json, os
import cno.acgi

options = json.loads(os.environ.get("CNO_PROXY_OPTIONS", "{}"))
app = cno.acgi.Pool(upstream=os.environ["CNO_UPSTREAM"], **options)
'''


def _env(directory, extra=None):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(directory) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def upstream(directory):
    """hypercorn serving UPSTREAM_APP on plain TCP (HTTP/1.1 and h2c by prior knowledge)."""
    require_module("hypercorn")
    require_module("starlette")
    Path(directory, "cno_upstream_app.py").write_text(UPSTREAM_APP)
    return External(lambda port: [
        sys.executable, "-m", "hypercorn", "cno_upstream_app:app",
        "--bind", "%s:%d" % (HOST, port), "--workers", "1", "--graceful-timeout", "1"],
        cwd=directory, env=_env(directory))


def proxy(directory, server, upstream_url, **options):
    """``Pool(upstream=upstream_url, **options)`` served by ``server``: "uvicorn"
    (HTTP/1.1) or "hypercorn" (HTTP/1.1 and h2c by prior knowledge)."""
    import json

    require_module(server)
    Path(directory, "cno_proxy_app.py").write_text(PROXY_APP)
    env = _env(directory, {"CNO_UPSTREAM": upstream_url,
                           "CNO_PROXY_OPTIONS": json.dumps(options)})

    def argv(port):
        if server == "uvicorn":
            return [sys.executable, "-m", "uvicorn", "cno_proxy_app:app", "--host", HOST,
                    "--port", port, "--no-access-log", "--lifespan", "on",
                    # (else uvicorn puts X-Forwarded-For from 127.0.0.1 into scope["client"])
                    "--no-proxy-headers"]
        return [sys.executable, "-m", "hypercorn", "cno_proxy_app:app",
                "--bind", "%s:%d" % (HOST, port), "--workers", "1", "--graceful-timeout", "1"]

    return External(argv, cwd=directory, env=env)
