"""The harness the asyncio tests share: a fresh event loop per test, TLS contexts from a
trustme CA, and a cno server with its clients in one mode (h1, h2c, h2tls, ...)."""
import asyncio
import functools
import ssl

import pytest

import cno

HOST = "127.0.0.1"
T = 5.0  # seconds for any single step

try:
    import trustme
except ImportError:  # pragma: no cover
    trustme = None


def run(main, timeout=15.0, loop_factory=None):
    """Run ``main`` on a fresh loop with an overall timeout; cancel leftovers, close."""
    loop = (loop_factory or asyncio.new_event_loop)()
    try:
        return loop.run_until_complete(asyncio.wait_for(main, timeout))
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for t in pending:
                t.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=2))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def aio(timeout=15.0):
    """Make an ``async def`` test a plain one, run by :func:`run` (fixtures still work)."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            return run(fn(*args, **kwargs), timeout)

        return wrapper

    return deco


_TLS = {}


def tls_contexts(alpn):
    """(server context, client context) for 127.0.0.1, from a trustme CA made once."""
    if trustme is None:
        pytest.skip("trustme is not installed")
    if not _TLS:
        ca = trustme.CA()
        _TLS["ca"], _TLS["cert"] = ca, ca.issue_cert(HOST, "localhost")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    _TLS["cert"].configure_cert(server)
    client = ssl.create_default_context()
    _TLS["ca"].configure_trust(client)
    client.set_alpn_protocols(list(alpn))
    return server, client


class Peer:
    """A cno server started with ``cno.serve`` and the clients connected to it, in one mode."""

    def __init__(self, mode):
        self.mode = mode
        self.tls = mode.endswith("tls")
        self.h2 = mode.startswith("h2")
        self.scheme = "https" if self.tls else "http"
        if self.tls:
            self.server_ssl, self.client_ssl = tls_contexts(
                ("h2", "http/1.1") if self.h2 else ("http/1.1",))
        else:
            self.server_ssl = self.client_ssl = None
        self.server = None
        self.port = None
        self.clients = []

    async def serve(self, handle, **options):
        self.server = await cno.serve(handle, HOST, 0, ssl=self.server_ssl, **options)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.server

    @property
    def authority(self):
        return "%s:%d" % (HOST, self.port)

    def url(self, path="/"):
        return "%s://%s%s" % (self.scheme, self.authority, path)

    def connect_kw(self):
        if self.tls:
            return {"ssl": self.client_ssl, "http2": None if self.h2 else False}
        return {"http2": self.h2}

    async def connect(self):
        client = await asyncio.wait_for(cno.connect(self.url(), **self.connect_kw()), T)
        self.clients.append(client)
        assert client.is_http2 is self.h2
        return client

    async def aclose(self):
        for client in self.clients:
            client.close()
        if self.server is not None:
            self.server.close()
            try:
                await asyncio.wait_for(self.server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass



def served(mode, handle, **options):
    """``async with served(mode, handle) as peer``: a running server, closed afterwards."""

    class _Ctx:
        async def __aenter__(self):
            self.peer = Peer(mode)
            await self.peer.serve(handle, **options)
            return self.peer

        async def __aexit__(self, *exc):
            await self.peer.aclose()

    return _Ctx()


async def get(client, method="GET", path="/", headers=(), data=b""):
    """(response, body) of one request."""
    response = await asyncio.wait_for(client.request(method, path, list(headers), data), T)
    body = await asyncio.wait_for(response.payload.read(), T)
    return response, body
