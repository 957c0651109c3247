"""httpx on cno: ``httpx.AsyncClient(transport=cno.httpx.AsyncTransport(...))``
(docs/acgi.md, "httpx"), against cno's own server (in-process: HTTP/1.1, h2c by prior
knowledge, TLS with ALPN) and hypercorn (a subprocess: those tests are slow).

"The options mean what they mean for httpx.AsyncHTTPTransport. httpx's timeouts map to
the pool's, and cno's errors to httpx's"; "response.http_version is "HTTP/2" or
"HTTP/1.1" and response.extensions["stream_id"] the stream."
"""
import asyncio
import collections
import hashlib
import socket
import ssl

import pytest

import cno
from acgi_peers import Origin
from aio_local import HOST, aio
from aio_util import Certs, require_module

httpx = require_module("httpx")
import cno.httpx  # noqa: E402  (needs httpx)

CHUNK = bytes(range(256)) * 64          # 16 KiB


def sha(data):
    return hashlib.sha256(data).hexdigest()


class App:
    """The cno server's handler (one per test).

    /echo       the request body back; x-length, x-sha256, x-seen (the request's x-* fields)
    /multi      two set-cookie fields and two x-multi fields
    /redirect   302 to /target (?n: a chain of n redirects)
    /status/N   status N
    /never      never answers
    /noread     never reads the body, never answers
    /stream?n=N N chunks of 16 KiB; ``app.stream_end[N]`` says how the writer ended
    /reset      RST_STREAM INTERNAL_ERROR (HTTP/2; HTTP/1.1 closes the connection)
    /hold       waits for ``app.release``
    """

    def __init__(self):
        self.release = asyncio.Event()
        self.stream_end = collections.defaultdict(asyncio.get_running_loop().create_future)

    async def __call__(self, request):
        path, _, query = request.path.partition("?")
        if path == "/echo":
            body = await request.payload.read()
            seen = [(k, v) for k, v in request.headers if k.startswith("x-")]
            await request.respond(200, [("x-length", str(len(body))), ("x-sha256", sha(body)),
                                        ("x-seen", repr(seen)),
                                        ("x-method", request.method)], body)
        elif path == "/multi":
            await request.respond(200, [("set-cookie", "a=1"), ("set-cookie", "b=2"),
                                        ("x-multi", "one"), ("x-multi", "two")], b"multi")
        elif path == "/redirect":
            n = int(query or 1)
            target = "/redirect?%d" % (n - 1) if n > 1 else "/target"
            await request.respond(302, [("location", target)], b"")
        elif path.startswith("/status/"):
            await request.respond(int(path[8:]), [], b"status")
        elif path in ("/never", "/noread"):
            await asyncio.Event().wait()
        elif path == "/stream":
            n = int(query.partition("=")[2] or 100)

            async def chunks():
                for _ in range(n):
                    yield CHUNK
            end = self.stream_end[n]
            try:
                await request.respond(200, [], chunks())
            except BaseException as e:
                end.set_result(e)
                raise
            end.set_result(None)
        elif path == "/reset":
            request.conn.write_reset(request.stream, 0x2)
        elif path == "/hold":
            await self.release.wait()
            await request.respond(200, [], b"held")
        else:
            await request.payload.read()
            await request.respond(200, [], b"ok " + request.path.encode())


def transport_for(srv, **options):
    """The transport reaching ``srv`` in its mode (h2c: http2 only, prior knowledge)."""
    if srv.mode == "h2c":
        options.setdefault("http1", False)
        options.setdefault("http2", True)
    elif srv.mode == "h2tls":
        options.setdefault("http2", True)
    if srv.tls:
        options.setdefault("verify", srv.client_ssl)
    return cno.httpx.AsyncTransport(**options)


MODES = ["h1", "h2c", "h2tls", "h1tls"]
VERSION = {"h1": "HTTP/1.1", "h2c": "HTTP/2", "h2tls": "HTTP/2", "h1tls": "HTTP/1.1"}


@pytest.mark.parametrize("mode", MODES)
@aio()
async def test_get_post_and_headers(mode):
    """GET and POST, multi-valued fields both ways, ``http_version``, ``stream_id``."""
    async with Origin(mode, App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv), timeout=5) as client:
            r = await client.get(srv.url("/echo?q=1"), headers=[("x-a", "1"), ("x-a", "2")])
            assert r.status_code == 200 and r.content == b""
            assert r.http_version == VERSION[mode]
            assert r.headers["x-seen"] == "[('x-a', '1'), ('x-a', '2')]"
            assert r.extensions["stream_id"] % 2 == 1
            r = await client.post(srv.url("/echo"), content=b"x" * 100000)
            assert r.headers["x-length"] == "100000" and r.content == b"x" * 100000
            r = await client.post(srv.url("/echo"), json={"a": [1, 2]})
            assert r.json() == {"a": [1, 2]}
            r = await client.get(srv.url("/multi"))
            assert r.headers.get_list("x-multi") == ["one", "two"]
            assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
            assert dict(r.cookies) == {"a": "1", "b": "2"}


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_streaming_up(mode):
    """"request bodies stream": ``content=`` an async generator (chunked over HTTP/1.1)."""
    parts = [bytes([i]) * 5000 for i in range(200)]
    async with Origin(mode, App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv), timeout=5) as client:
            async def gen():
                for p in parts:
                    yield p
            r = await client.post(srv.url("/echo"), content=gen())
            assert r.headers["x-sha256"] == sha(b"".join(parts))


@pytest.mark.parametrize("mode", ["h1", "h2c", "h2tls"])
@aio()
async def test_streaming_down_partial_read_then_close(mode):
    """"Responses stream (client.stream(...))": ``aiter_bytes`` over a 1.6 MB response;
    then a 16 MB one read partly and closed: the server's writer sees the stream end
    (RST_STREAM CANCEL; HTTP/1.1 closes the connection) and, with max_connections=1,
    the next request gets a slot."""
    app = App()
    async with Origin(mode, app) as srv:
        transport = transport_for(srv, max_connections=1)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            async with client.stream("GET", srv.url("/stream?n=100")) as r:
                got = b"".join([c async for c in r.aiter_bytes()])
            assert got == CHUNK * 100
            async with client.stream("GET", srv.url("/stream?n=1000")) as r:
                assert r.status_code == 200
                first = await r.aiter_raw().__anext__()
                assert first and CHUNK.startswith(first[:100])
            error = await asyncio.wait_for(app.stream_end[1000], 3)
            assert isinstance(error, (cno.StreamReset, cno.ConnectionClosed)), error
            r = await asyncio.wait_for(client.get(srv.url("/after"), timeout=httpx.Timeout(
                5, pool=1)), 3)
            assert r.text == "ok /after"


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_redirects_and_status_errors(mode):
    """``follow_redirects=True`` follows a chain of 302s; ``raise_for_status``."""
    async with Origin(mode, App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv), timeout=5) as client:
            r = await client.get(srv.url("/redirect?3"), follow_redirects=True)
            assert r.status_code == 200 and r.text == "ok /target"
            assert [h.status_code for h in r.history] == [302, 302, 302]
            r = await client.get(srv.url("/redirect"))
            assert r.status_code == 302 and r.next_request.url.path == "/target"
            r = await client.get(srv.url("/status/503"))
            with pytest.raises(httpx.HTTPStatusError) as info:
                r.raise_for_status()
            assert info.value.response.status_code == 503


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_read_timeout(mode):
    """httpx's read timeout is the pool's: ``httpx.ReadTimeout``, waiting for the head
    and waiting for a chunk."""
    async with Origin(mode, App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv),
                                     timeout=httpx.Timeout(5, read=0.2)) as client:
            with pytest.raises(httpx.ReadTimeout):
                await asyncio.wait_for(client.get(srv.url("/never")), 3)


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_write_timeout(mode):
    """httpx's write timeout is the pool's: the server never reads a body larger than
    the windows and socket buffers: ``httpx.WriteTimeout``."""
    big = 32 << 20 if mode == "h1" else 4 << 20
    async with Origin(mode, App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv),
                                     timeout=httpx.Timeout(5, write=0.2)) as client:
            with pytest.raises(httpx.WriteTimeout):
                await asyncio.wait_for(client.post(srv.url("/noread"), content=b"w" * big), 4)


@aio()
async def test_pool_timeout():
    """httpx's pool timeout is the pool's: one connection, held by an open response:
    ``httpx.PoolTimeout``."""
    async with Origin("h1", App()) as srv:
        transport = transport_for(srv, max_connections=1)
        async with httpx.AsyncClient(transport=transport,
                                     timeout=httpx.Timeout(5, pool=0.2)) as client:
            async with client.stream("GET", srv.url("/stream?n=1000")):
                with pytest.raises(httpx.PoolTimeout):
                    await asyncio.wait_for(client.get(srv.url("/")), 3)


@aio()
async def test_connect_timeout():
    """httpx's connect timeout is the pool's (TCP and TLS): a server that accepts and
    never answers the TLS handshake: ``httpx.ConnectTimeout``."""
    silent = []

    async def accept(reader, writer):
        silent.append(writer)

    server = await asyncio.start_server(accept, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(transport=cno.httpx.AsyncTransport(),
                                     timeout=httpx.Timeout(5, connect=0.2)) as client:
            with pytest.raises(httpx.ConnectTimeout):
                await asyncio.wait_for(client.get("https://%s:%d/" % (HOST, port)), 3)
    finally:
        for w in silent:
            w.close()
        server.close()
        await server.wait_closed()


@aio()
async def test_connect_error():
    """A refused port: ``httpx.ConnectError``."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
        async with httpx.AsyncClient(transport=cno.httpx.AsyncTransport()) as client:
            with pytest.raises(httpx.ConnectError):
                await asyncio.wait_for(client.get("http://%s:%d/" % (HOST, port)), 3)


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_server_reset_is_a_remote_protocol_error(mode):
    """"RemoteProtocolError (a reset, a lost connection, a protocol error)"; the client
    goes on working."""
    async with Origin(mode, App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv), timeout=5) as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await asyncio.wait_for(client.get(srv.url("/reset")), 3)
            r = await client.get(srv.url("/after"))
            assert r.text == "ok /after"


@aio()
async def test_unsendable_request_is_a_local_protocol_error():
    """"LocalProtocolError (a request cno cannot send)": a field name with a space."""
    async with Origin("h2c", App()) as srv:
        async with httpx.AsyncClient(transport=transport_for(srv), timeout=5) as client:
            with pytest.raises(httpx.LocalProtocolError):
                await asyncio.wait_for(client.get(srv.url("/"), headers={"bad name": "x"}), 3)
            assert (await client.get(srv.url("/ok"))).text == "ok /ok"


@pytest.mark.parametrize("mode", ["h2c", "h2tls"])
@aio()
async def test_concurrent_requests_share_one_http2_connection(mode):
    """"concurrent requests share HTTP/2 connections": ``asyncio.gather`` of 20, all
    running at once, on one connection (``transport.pool.connections``)."""
    app = App()
    async with Origin(mode, app) as srv:
        transport = transport_for(srv)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            tasks = [asyncio.ensure_future(client.get(srv.url("/hold?%d" % i)))
                     for i in range(20)]
            await asyncio.sleep(0.1)
            assert not any(t.done() for t in tasks)
            app.release.set()
            responses = await asyncio.wait_for(asyncio.gather(*tasks), 5)
            assert {r.text for r in responses} == {"held"}
            assert {r.http_version for r in responses} == {"HTTP/2"}
            assert len({r.extensions["stream_id"] for r in responses}) == 20
            assert [len(c) for c in transport.pool.connections.values()] == [1]
            assert srv.accepted == 1


@aio()
async def test_tls_verify_false_and_ca_file(tmp_path):
    """``verify=False`` accepts an untrusted certificate; ``verify=path`` trusts a CA
    file; the default (system trust store) refuses it: ``httpx.ConnectError``."""
    certs = Certs(tmp_path)
    server_ssl = certs.server_context()
    server_ssl.set_alpn_protocols(["h2", "http/1.1"])
    server = await cno.serve(App(), HOST, 0, ssl=server_ssl)
    url = "https://%s:%d/x" % (HOST, server.sockets[0].getsockname()[1])
    try:
        for verify in (False, str(certs.ca_file)):
            transport = cno.httpx.AsyncTransport(verify=verify, http2=True)
            async with httpx.AsyncClient(transport=transport, timeout=5) as client:
                r = await client.get(url)
                assert (r.text, r.http_version) == ("ok /x", "HTTP/2")
        async with httpx.AsyncClient(transport=cno.httpx.AsyncTransport(), timeout=5) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.get(url)
            assert isinstance(info.value.__cause__.__cause__, ssl.SSLError)
    finally:
        server.close()
        await server.wait_closed()


@pytest.mark.parametrize("http1,http2,want", [(True, False, "HTTP/1.1"),
                                              (False, True, "HTTP/2"),
                                              (True, True, "HTTP/1.1")])
@aio()
async def test_versions_on_plain_http(http1, http2, want):
    """Plain http: ``http2=True, http1=False`` is HTTP/2 by prior knowledge (as in httpx);
    with http1 allowed too, plain http stays HTTP/1.1 (httpx does not upgrade)."""
    async with Origin("h2c", App()) as srv:
        transport = cno.httpx.AsyncTransport(http1=http1, http2=http2)
        async with httpx.AsyncClient(transport=transport, timeout=5) as client:
            r = await client.get(srv.url("/v"))
            assert (r.text, r.http_version) == ("ok /v", want)


def test_neither_version_is_an_error():
    with pytest.raises(ValueError):
        cno.httpx.AsyncTransport(http1=False, http2=False)


# -- hypercorn ----------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2c"])
@aio(30)
async def test_hypercorn(http2, hypercorn_plain):
    """Against hypercorn: GET with a query, POST up and down (1 MiB), a streamed upload,
    20 at once (one connection over HTTP/2), a body cut short by the server is
    ``httpx.RemoteProtocolError`` ("a lost connection")."""
    base = "http://%s:%d" % (HOST, hypercorn_plain.port)
    transport = cno.httpx.AsyncTransport(http1=not http2, http2=http2)
    want = "HTTP/2" if http2 else "HTTP/1.1"
    async with httpx.AsyncClient(transport=transport, timeout=10) as client:
        r = await client.get(base + "/path?a=1&b=2")
        assert r.status_code == 200 and r.http_version == want
        assert r.headers["x-path"] == "/path?a=1&b=2"
        assert r.headers["x-http-version"] == ("2" if http2 else "1.1")
        data = bytes(range(256)) * 4096
        r = await client.post(base + "/echo", content=data)
        assert r.content == data and r.headers["x-body-sha256"] == sha(data)

        async def gen():
            for i in range(64):
                yield data[i * 16384:(i + 1) * 16384]
        r = await client.post(base + "/echo", content=gen())
        assert r.headers["x-body-sha256"] == sha(data)
        async with client.stream("GET", base + "/big") as r:
            assert sha(b"".join([c async for c in r.aiter_bytes()])) == sha(data)
        responses = await asyncio.gather(*[client.get(base + "/n?%d" % i) for i in range(20)])
        assert [r.headers["x-path"] for r in responses] == ["/n?%d" % i for i in range(20)]
        if http2:
            assert [len(c) for c in transport.pool.connections.values()] == [1]
        if not http2:   # (hypercorn takes 5 s to end a failed HTTP/2 stream)
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(base + "/truncated")
