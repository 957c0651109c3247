"""cno.acgi.Pool end to end (docs/acgi.md, "The pool"), against cno's own server over
HTTP/1.1, h2c (prior knowledge and Upgrade) and TLS (ALPN), against hand-made servers
that refuse or drop requests (tests/acgi_peers.py), and against nghttpd.

Every test runs on a fresh event loop (``@aio()``) with servers on 127.0.0.1, port 0.
What a test checks is quoted from docs/acgi.md (or the RFC) beside it.
"""
import asyncio
import hashlib
import socket
import ssl

import pytest

import cno
import cno.acgi
from acgi_peers import CloseOnReuse, GoawayFirst, Origin
from aio_local import HOST, aio
from aio_util import External, require_tool

ALL_MODES = ["h1", "h2c", "h2tls", "h1tls"]
H2_MODES = ["h2c", "h2tls"]
CHUNK = bytes(range(256)) * 64          # 16 KiB


def sha(data):
    return hashlib.sha256(data).hexdigest()


def fields(headers):
    """{name: value} of a (bytes, bytes) header list, as str."""
    return {n.decode("latin-1"): v.decode("latin-1") for n, v in headers}


class App:
    """The cno server handler of these tests, one per test (its state is the test's).

    /                 "ok <path>"
    /echo             the request body back; x-length, x-sha256, x-trailers (request trailers)
    /duplex           each request chunk echoed as it arrives, then trailers
    /hold             waits for ``app.release`` (counts ``app.holding``), then "held"
    /never            never answers
    /stall            a head and 100 bytes, then nothing
    /noread           never reads the request body, never answers
    /stream?n=N       N chunks of 16 KiB; ``app.stream_error`` says how it ended
    /trailers         a body, then trailers
    /close            answers with Connection: close
    /refuse?k         REFUSED_STREAM for the first attempt of each k (HTTP/2)
    """

    def __init__(self):
        self.release = asyncio.Event()
        self.holding = 0
        self.held = asyncio.Event()      # set when ``hold_target`` requests are holding
        self.hold_target = None
        self.attempts = {}
        self.stream_error = asyncio.get_running_loop().create_future()
        self.errors = []

    async def __call__(self, request):
        try:
            await self.handle(request)
        except (cno.StreamReset, cno.ConnectionClosed):
            raise
        except Exception as e:   # pragma: no cover - shown by the test that sees it
            self.errors.append(repr(e))
            raise

    async def handle(self, request):
        path, _, query = request.path.partition("?")
        if path == "/echo":
            body = await request.payload.read()
            await request.respond(200, [("x-length", str(len(body))), ("x-sha256", sha(body)),
                                        ("x-trailers", repr(request.trailers))], body)
        elif path == "/duplex":
            async def echo():
                async for chunk in request.payload:
                    yield chunk
            await request.respond(200, [], echo(), trailers=[("x-done", "1")])
        elif path == "/hold":
            self.holding += 1
            if self.hold_target is not None and self.holding >= self.hold_target:
                self.held.set()
            try:
                await self.release.wait()
            finally:
                self.holding -= 1
            await request.respond(200, [], b"held")
        elif path in ("/never", "/noread"):
            await asyncio.Event().wait()
        elif path == "/stall":
            async def stall():
                yield b"x" * 100
                await asyncio.Event().wait()
            await request.respond(200, [], stall())
        elif path == "/stream":
            n = int(query.partition("=")[2] or 1000)

            async def chunks():
                for _ in range(n):
                    yield CHUNK
            try:
                await request.respond(200, [], chunks())
            except BaseException as e:
                if not self.stream_error.done():
                    self.stream_error.set_result(e)
                raise
            if not self.stream_error.done():
                self.stream_error.set_result(None)
        elif path == "/trailers":
            await request.payload.read()
            await request.respond(200, [("trailer", "x-checksum")], b"the body\n",
                                  trailers=[("x-checksum", "abc123")])
        elif path == "/close":
            await request.respond(200, [("connection", "close")], b"bye")
        elif path == "/refuse":
            n = self.attempts[query] = self.attempts.get(query, 0) + 1
            if n == 1:
                request.conn.write_reset(request.stream, 0x7)   # REFUSED_STREAM
                return
            body = await request.payload.read()
            await request.respond(200, [], b"attempt %d, %d bytes" % (n, len(body)))
        else:
            await request.payload.read()
            await request.respond(200, [], b"ok " + path.encode())


async def fetch(pool, method, url, *args, **kwargs):
    response = await pool.request(method, url, *args, **kwargs)
    return response, await response["body"].read()


async def within(awaitable, seconds=3.0):
    return await asyncio.wait_for(awaitable, seconds)


# -- reuse ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ALL_MODES)
@aio()
async def test_sequential_requests_reuse_one_connection(mode):
    """"A request takes the first connection of its origin with room: an HTTP/2
    connection running fewer streams than the server's SETTINGS_MAX_CONCURRENT_STREAMS,
    or an idle HTTP/1.1 connection (kept alive)." """
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            for i in range(5):
                response, body = await fetch(pool, "GET", srv.url("/n%d" % i))
                assert (response["status_code"], body) == (200, b"ok /n%d" % i)
                assert response["http_version"] == srv.http_version
            assert srv.accepted == 1
            (conns,) = pool.connections.values()
            assert len(conns) == 1
            assert list(pool.connections) == [(srv.scheme, HOST, srv.port)]


@pytest.mark.parametrize("mode", H2_MODES)
@aio()
async def test_h2_concurrent_requests_share_one_connection(mode):
    """50 requests at once, the server allowing 100 streams: all on one connection, all
    running at once. The pool is cold: "While the first connection to an origin that may
    speak HTTP/2 (https, or http2=True ...) is being opened, other requests wait for it
    rather than opening more." """
    app = App()
    app.hold_target = 50
    async with Origin(mode, app) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            tasks = [asyncio.ensure_future(fetch(pool, "GET", srv.url("/hold?%d" % i)))
                     for i in range(50)]
            await within(app.held.wait())          # 50 handlers are running at once
            app.release.set()
            for response, body in await within(asyncio.gather(*tasks)):
                assert body == b"held" and response["http_version"] == "2"
            assert srv.accepted == 1
            assert [len(c) for c in pool.connections.values()] == [1]


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@aio()
async def test_h2_small_max_concurrent_streams_opens_more_connections(warm):
    """The server allows 4 streams per connection (SETTINGS_MAX_CONCURRENT_STREAMS):
    50 requests at once spread over more than one connection, never more than
    ``max_connections`` (5), never more than 4 streams on any one (RFC 9113 5.1.2: "An
    endpoint MUST NOT exceed the limit set by its peer"). Cold: the pool's first burst
    comes before the server's SETTINGS arrive, and must not exceed them either."""
    app = App()
    app.hold_target = 20
    async with Origin("h2c", app, max_concurrent_streams=4) as srv:
        async with cno.acgi.Pool(http2=True, max_connections=5) as pool:
            if warm:
                await fetch(pool, "GET", srv.url("/warm"))
            tasks = [asyncio.ensure_future(fetch(pool, "GET", srv.url("/hold?%d" % i)))
                     for i in range(50)]
            await within(app.held.wait())          # 5 connections x 4 streams
            await asyncio.sleep(0.05)              # (no 21st may start)
            assert app.holding == 20
            app.release.set()
            for _, body in await within(asyncio.gather(*tasks)):
                assert body == b"held"
            assert 1 < srv.accepted <= 5
            for protocol in srv.protocols:
                assert protocol.local_settings["max_concurrent_streams"] == 4


@aio()
async def test_h2_above_100_streams_opens_a_second_connection():
    """Past the server's 100 streams (cno's default), a request does not queue behind the
    full connection: "Otherwise it opens another while the origin has fewer than
    max_connections"."""
    app = App()
    app.hold_target = 120
    async with Origin("h2c", app) as srv:
        async with cno.acgi.Pool(http2=True) as pool:
            tasks = [asyncio.ensure_future(fetch(pool, "GET", srv.url("/hold?%d" % i)))
                     for i in range(120)]
            await within(app.held.wait())
            app.release.set()
            await within(asyncio.gather(*tasks))
            # One connection is opened at a time for HTTP/2 (docs/acgi.md, the pool):
            # the 20 past the first connection's 100 share the second one, rather than
            # each opening a connection of its own.
            assert srv.accepted == 2


@aio()
async def test_h1_concurrent_requests_open_up_to_max_connections_and_queue():
    """HTTP/1.1 runs one exchange per connection: 10 requests at once with
    ``max_connections=3`` open 3 connections, run 3 at a time, the rest wait for a slot."""
    app = App()
    app.hold_target = 3
    async with Origin("h1", app) as srv:
        async with cno.acgi.Pool(http2=False, max_connections=3) as pool:
            tasks = [asyncio.ensure_future(fetch(pool, "GET", srv.url("/hold?%d" % i)))
                     for i in range(10)]
            await within(app.held.wait())
            await asyncio.sleep(0.05)
            assert app.holding == 3 and srv.accepted == 3
            app.release.set()
            for response, body in await within(asyncio.gather(*tasks)):
                assert body == b"held" and response["http_version"] == "1.1"
            assert srv.accepted == 3
            assert [len(c) for c in pool.connections.values()] == [3]


@pytest.mark.parametrize("mode", ["h2tls", "h2c", "h2c-upgrade", "h1tls"])
@aio()
async def test_first_connection_is_waited_for(mode):
    """"While the first connection to an origin that may speak HTTP/2 (https, or
    http2=True, or upgrade=True) is being opened, other requests wait for it rather than
    opening more." 20 requests at once on a cold pool open exactly one connection (for
    h1tls, TLS offering http/1.1 only: one exchange at a time, so more follow once it is
    open, never before)."""
    app = App()
    upgrade = mode == "h2c-upgrade"
    async with Origin("h2c" if upgrade else mode, app) as srv:
        options = {"upgrade": True} if upgrade else srv.pool_options()
        async with cno.acgi.Pool(**options) as pool:
            opened = []          # at each dial: how many connections were open before
            real_dial = pool._dial

            async def dial(origin, timeout):
                before = len(opened) and sum(1 for c in opened if c is not None)
                opened.append(None)
                conn = await real_dial(origin, timeout)
                opened[opened.index(None)] = conn
                dials.append(before)
                return conn

            dials = []
            pool._dial = dial
            results = await within(asyncio.gather(
                *[fetch(pool, "GET", srv.url("/%d" % i)) for i in range(20)]))
            assert [body for _, body in results] == [b"ok /%d" % i for i in range(20)]
            if mode == "h1tls":
                # One exchange per connection: more are dialed, only once the first is open.
                assert sorted(dials)[:2] == [0, 1] and srv.accepted > 1, dials
                assert {r["http_version"] for r, _ in results} == {"1.1"}
            else:
                assert srv.accepted == 1 and dials == [0], dials
                assert {r["http_version"] for r, _ in results} == {"2"}


@aio()
async def test_declined_upgrade_then_http1_connections():
    """``upgrade=True`` and a server that declines (answers over HTTP/1.1): once the
    first answer shows the connection stays HTTP/1.1, the waiting requests open more
    (up to max_connections) and all complete."""
    app = App()
    async with Origin("h1", app, declines_upgrade=True) as srv:
        async with cno.acgi.Pool(upgrade=True, max_connections=4) as pool:
            results = await within(asyncio.gather(
                *[fetch(pool, "GET", srv.url("/%d" % i)) for i in range(12)]))
            assert [body for _, body in results] == [b"ok /%d" % i for i in range(12)]
            assert {r["http_version"] for r, _ in results} == {"1.1"}
            assert 1 < srv.accepted <= 4


# -- timeouts and errors -------------------------------------------------------------------

@aio()
async def test_pool_timeout():
    """"... or waits for a slot (PoolTimeout after pool_timeout)"; the slot comes back
    when the holding response is closed."""
    async with Origin("h1", App()) as srv:
        async with cno.acgi.Pool(http2=False, max_connections=1, pool_timeout=0.2) as pool:
            holder = await pool.request("GET", srv.url("/stall"))
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(cno.acgi.PoolTimeout) as info:
                await within(pool.request("GET", srv.url("/")))
            assert 0.15 < loop.time() - started < 2
            assert isinstance(info.value, TimeoutError)
            await holder["body"].aclose()
            response, body = await within(fetch(pool, "GET", srv.url("/")))
            assert body == b"ok /"


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_read_timeout_waiting_for_the_head(mode):
    """"read_timeout (the response head, then each body chunk: ReadTimeout)"; the
    abandoned request leaves the pool usable."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(read_timeout=0.2, **srv.pool_options()) as pool:
            with pytest.raises(cno.acgi.ReadTimeout):
                await within(pool.request("GET", srv.url("/never")))
            _, body = await within(fetch(pool, "GET", srv.url("/after")))
            assert body == b"ok /after"

            async def small():      # a streamed body, all sent: then the head is late
                yield b"abc"
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(cno.acgi.ReadTimeout):
                await within(pool.request("POST", srv.url("/never"), [], small()))
            assert loop.time() - started < 1


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_read_timeout_mid_body(mode):
    """A head and 100 bytes, then nothing: the next chunk times out (ReadTimeout)."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(read_timeout=0.2, **srv.pool_options()) as pool:
            response = await within(pool.request("GET", srv.url("/stall")))
            body = response["body"]
            assert await within(body.__anext__()) == b"x" * 100
            with pytest.raises(cno.acgi.ReadTimeout):
                await within(body.__anext__())
            await body.aclose()
            _, data = await within(fetch(pool, "GET", srv.url("/after")))
            assert data == b"ok /after"


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_read_timeout_starts_once_the_request_body_is_sent(mode):
    """An upload that keeps making progress for longer than read_timeout is not a read
    timeout: the server answers after the whole body, as most do; the read timeout bounds
    the wait for the response head once there is nothing left to send (httpx's meaning:
    "the maximum duration to wait for a chunk of data to be received")."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(read_timeout=0.3, **srv.pool_options()) as pool:
            async def slow_body():
                for _ in range(8):
                    yield b"z" * 1000
                    await asyncio.sleep(0.08)
            response, body = await within(fetch(pool, "POST", srv.url("/echo"), [], slow_body()))
            assert fields(response["headers"])["x-length"] == "8000"


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@pytest.mark.parametrize("kind", ["bytes", "iterator"])
@aio()
async def test_write_timeout(mode, kind):
    """"write_timeout (each request body write that waits for the peer's window or the
    socket: WriteTimeout)": the server never reads the body; it is larger than the HTTP/2
    windows and the sockets' buffers. docs/acgi.md: send "waits for the peer's flow-control
    window and the socket, never buffering the body whole"."""
    big = 32 << 20 if mode == "h1" else 4 << 20
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(write_timeout=0.2, read_timeout=5, **srv.pool_options()) as pool:
            if kind == "bytes":
                body = b"w" * big
            else:
                async def gen():
                    for _ in range(big // len(CHUNK)):
                        yield CHUNK
                body = gen()
            with pytest.raises(cno.acgi.WriteTimeout):
                await within(pool.request("POST", srv.url("/noread"), [], body))


@aio()
async def test_connect_timeout():
    """"connect_timeout (TCP and TLS: ConnectTimeout)": a server that accepts and never
    answers the TLS handshake."""
    silent = []

    async def accept(reader, writer):
        silent.append(writer)     # keep it open, say nothing

    server = await asyncio.start_server(accept, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with cno.acgi.Pool(connect_timeout=0.2) as pool:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(cno.acgi.ConnectTimeout) as info:
                await within(pool.request("GET", "https://%s:%d/" % (HOST, port)))
            assert 0.15 < loop.time() - started < 2
            assert isinstance(info.value, TimeoutError) and silent
            assert pool.connections == {}
    finally:
        for w in silent:
            w.close()
        server.close()
        await server.wait_closed()


@aio()
async def test_connect_error_on_a_refused_port():
    """"ConnectError (also OSError): the connection could not be opened" (the OSError is
    its __cause__)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]      # bound, not listening: connections are refused
        async with cno.acgi.Pool() as pool:
            with pytest.raises(cno.acgi.ConnectError) as info:
                await within(pool.request("GET", "http://%s:%d/" % (HOST, port)))
            assert isinstance(info.value, OSError)
            assert isinstance(info.value.__cause__, ConnectionRefusedError)
            assert pool.connections == {}


@aio()
async def test_tls_certificate_error_is_a_connect_error():
    """A certificate the context does not trust: ConnectError, its cause an SSLError."""
    async with Origin("h2tls", App()) as srv:
        async with cno.acgi.Pool(ssl=ssl.create_default_context()) as pool:
            with pytest.raises(cno.acgi.ConnectError) as info:
                await within(pool.request("GET", srv.url("/")))
            assert isinstance(info.value.__cause__, ssl.SSLError)


# -- expiry ----------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_idle_connection_expires(mode):
    """"A connection with no request running closes after idle_timeout seconds": it
    leaves ``pool.connections``; the next request opens a new one."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(idle_timeout=0.2, **srv.pool_options()) as pool:
            await fetch(pool, "GET", srv.url("/"))
            (conn,), = pool.connections.values()
            await within(conn.wait_closed(), 2)
            assert await srv.closed_connections()
            assert pool.connections == {}
            _, body = await within(fetch(pool, "GET", srv.url("/again")))
            assert body == b"ok /again" and srv.accepted == 2


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_connection_busy_longer_than_idle_timeout_stays(mode):
    """Idle means "no request running": a response read slowly past idle_timeout keeps
    its connection."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(idle_timeout=0.1, **srv.pool_options()) as pool:
            response = await pool.request("GET", srv.url("/stream?n=4"))
            await asyncio.sleep(0.25)
            assert len((await within(response["body"].read()))) == 4 * len(CHUNK)
            assert srv.accepted == 1


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_connection_the_server_closed_leaves_the_pool(mode):
    """"Connections the server closed ... take no new requests and leave the pool": cno's
    server closes idle connections after its own idle_timeout (GOAWAY on HTTP/2)."""
    async with Origin(mode, App(), idle_timeout=0.1) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            await fetch(pool, "GET", srv.url("/"))
            (conn,), = pool.connections.values()
            await within(conn.wait_closed(), 2)
            await asyncio.sleep(0)
            assert pool.connections == {}
            _, body = await within(fetch(pool, "GET", srv.url("/again")))
            assert body == b"ok /again" and srv.accepted == 2


@aio()
async def test_connection_close_leaves_the_pool():
    """"Connections ... that received ... Connection: close take no new requests and
    leave the pool" (RFC 9112 9.6)."""
    async with Origin("h1", App()) as srv:
        async with cno.acgi.Pool(http2=False) as pool:
            response, body = await fetch(pool, "GET", srv.url("/close"))
            assert body == b"bye"
            for _ in range(10):
                if not pool.connections:
                    break
                await asyncio.sleep(0.01)
            assert pool.connections == {}
            _, body = await within(fetch(pool, "GET", srv.url("/next")))
            assert body == b"ok /next" and srv.accepted == 2


@aio()
async def test_goaway_shutdown_leaves_the_pool():
    """A server shutting down gracefully (GOAWAY): the connection takes no new requests;
    the request running on it completes (RFC 9113 6.8); the next goes to a new one."""
    app = App()
    app.hold_target = 1
    async with Origin("h2c", app) as srv:
        async with cno.acgi.Pool(http2=True) as pool:
            running = asyncio.ensure_future(fetch(pool, "GET", srv.url("/hold")))
            await within(app.held.wait())
            srv.protocols[0].shutdown()               # GOAWAY, the running stream goes on
            await asyncio.sleep(0.05)                 # (it arrives)
            _, body = await within(fetch(pool, "GET", srv.url("/next")))
            assert body == b"ok /next" and srv.accepted == 2
            app.release.set()
            _, body = await within(running)
            assert body == b"held"


# -- retries -------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", H2_MODES)
@aio()
async def test_refused_stream_is_retried(mode):
    """"A request the server did not process is sent again ..., when its body is bytes: a
    stream refused by REFUSED_STREAM" (RFC 9113 8.7: "REFUSED_STREAM ... indicates that
    the stream is being closed prior to any processing having occurred")."""
    app = App()
    async with Origin(mode, app) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            response, body = await within(fetch(pool, "POST", srv.url("/refuse?a"), [], b"data"))
            assert (response["status_code"], body) == (200, b"attempt 2, 4 bytes")
            assert app.attempts == {"a": 2}


@aio()
async def test_refused_stream_not_retried_without_retries():
    """``retries=0``: the refusal reaches the caller as cno.StreamReset, ``refused``."""
    app = App()
    async with Origin("h2c", app) as srv:
        async with cno.acgi.Pool(http2=True, retries=0) as pool:
            with pytest.raises(cno.StreamReset) as info:
                await within(pool.request("GET", srv.url("/refuse?a")))
            assert info.value.refused and info.value.code == 0x7
            assert app.attempts == {"a": 1}


@aio()
async def test_streamed_body_is_not_retried():
    """Only "when its body is bytes (it can be sent again)": a streamed body that was
    refused raises cno.StreamReset (refused), the server saw it once."""
    app = App()
    async with Origin("h2c", app) as srv:
        async with cno.acgi.Pool(http2=True) as pool:
            async def body():
                yield b"da"
                yield b"ta"
            with pytest.raises(cno.StreamReset) as info:
                await within(pool.request("POST", srv.url("/refuse?a"), [], body()))
            assert info.value.refused
            assert app.attempts == {"a": 1}


@aio()
async def test_goaway_refused_requests_are_retried_on_a_new_connection():
    """Streams above a GOAWAY's last-stream-id were not processed (RFC 9113 6.8): the
    server's first connection says GOAWAY(0) at once; 5 requests sent on it go again on
    one new connection and succeed."""
    seen = []

    async def handler(request):
        body = await request.payload.read()
        seen.append(request.path)
        await request.respond(200, [], b"%s %d" % (request.path.encode(), len(body)))

    async with GoawayFirst(handler) as srv:
        async with cno.acgi.Pool(http2=True) as pool:
            results = await within(asyncio.gather(
                *[fetch(pool, "POST", srv.url("/%d" % i), [], b"xyz") for i in range(5)]))
            assert [body for _, body in results] == [b"/%d 3" % i for i in range(5)]
            assert sorted(seen) == ["/%d" % i for i in range(5)]
            assert srv.connections == 2


@pytest.mark.parametrize("method,retried", [("GET", True), ("PUT", True), ("DELETE", True),
                                            ("POST", False), ("PATCH", False)])
@aio()
async def test_reused_http1_connection_closed_on_reuse(method, retried):
    """"an idempotent request (RFC 9110 9.2.2) whose reused HTTP/1.1 connection closed
    before any answer (the server closed it as it was reused)" is sent again; others
    raise cno.ConnectionClosed (the server may have acted on them)."""
    async with CloseOnReuse() as srv:
        async with cno.acgi.Pool(http2=False) as pool:
            _, body = await fetch(pool, "GET", srv.url("/first"))
            assert body == b"GET on connection 1"
            if retried:
                _, body = await within(fetch(pool, method, srv.url("/second"), [], b"x"))
                assert body == ("%s on connection 2" % method).encode()
                assert srv.seen[1:] == [(1, method, "/second"), (2, method, "/second")]
            else:
                with pytest.raises(cno.ConnectionClosed):
                    await within(pool.request(method, srv.url("/second"), [], b"x"))
                assert srv.seen[1:] == [(1, method, "/second")]


# -- streaming ----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ALL_MODES)
@aio()
async def test_async_generator_body(mode):
    """"body is bytes, or an iterable or async iterable of bytes streamed as it is
    produced" (chunked over HTTP/1.1: no content-length)."""
    parts = [bytes([i]) * (1000 + i) for i in range(100)]
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            async def agen():
                for p in parts:
                    yield p
            response, body = await within(fetch(pool, "POST", srv.url("/echo"), [], agen()))
            assert body == b"".join(parts)
            assert fields(response["headers"])["x-sha256"] == sha(body)
            response, body = await within(fetch(pool, "PUT", srv.url("/echo"), [], iter(parts)))
            assert body == b"".join(parts)


@pytest.mark.parametrize("mode", ALL_MODES)
@aio()
async def test_full_duplex(mode):
    """"full duplex (the response may begin before the request body ends)": the echo of
    each chunk is read before the next chunk is produced."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            queue = asyncio.Queue()

            async def body():
                while True:
                    chunk = await queue.get()
                    if chunk is None:
                        return
                    yield chunk

            queue.put_nowait(b"ping 0")
            response = await within(pool.request("POST", srv.url("/duplex"), [], body()))
            chunks = response["body"].__aiter__()
            for i in range(5):
                assert await within(chunks.__anext__()) == b"ping %d" % i
                queue.put_nowait(b"ping %d" % (i + 1))
            queue.put_nowait(None)
            assert [c async for c in chunks] == [b"ping 5"]
            assert response["body"].trailers == [(b"x-done", b"1")]


@pytest.mark.parametrize("mode", ALL_MODES)
@aio()
async def test_trailers_both_ways(mode):
    """Response trailers land in ``body.trailers``; ``trailers=`` ends the request body
    with trailers (HTTP/2; chunked over HTTP/1.1, RFC 9112 7.1.2)."""
    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            response, body = await within(fetch(pool, "POST", srv.url("/trailers"), [], b""))
            assert body == b"the body\n"
            assert response["body"].trailers == [(b"x-checksum", b"abc123")]
            response, body = await within(fetch(
                pool, "POST", srv.url("/echo"), [], b"payload",
                trailers=[(b"x-request-checksum", b"42")]))
            assert body == b"payload"
            assert fields(response["headers"])["x-trailers"] == "[('x-request-checksum', '42')]"


@pytest.mark.parametrize("mode", ["h1", "h2c", "h2tls"])
@aio()
async def test_aclose_of_an_unread_body_frees_the_slot_and_resets(mode):
    """"Read response["body"] to its end or await response["body"].aclose(): the request
    holds its connection slot until its stream ends." A 16 MiB response closed after one
    chunk: the server's writer sees the stream reset (HTTP/2 RST_STREAM CANCEL; HTTP/1.1
    closes the connection), and with max_connections=1 the next request is not blocked."""
    app = App()
    async with Origin(mode, app) as srv:
        async with cno.acgi.Pool(max_connections=1, pool_timeout=1,
                                 **srv.pool_options()) as pool:
            response = await within(pool.request("GET", srv.url("/stream?n=1000")))
            assert await within(response["body"].__anext__())
            await response["body"].aclose()
            error = await within(app.stream_error)
            assert isinstance(error, (cno.StreamReset, cno.ConnectionClosed)), error
            if mode != "h1":
                assert isinstance(error, cno.StreamReset) and error.code == 0x8
            _, body = await within(fetch(pool, "GET", srv.url("/next")))
            assert body == b"ok /next"
            assert srv.accepted == (2 if mode == "h1" else 1)


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_failing_body_generator_raises_its_own_exception(mode):
    """"A failing request body iterator [raises] its own exception"; the pool stays
    usable."""
    class Boom(Exception):
        pass

    async with Origin(mode, App()) as srv:
        async with cno.acgi.Pool(**srv.pool_options()) as pool:
            async def body():
                yield b"some"
                await asyncio.sleep(0.01)
                raise Boom("the producer failed")
            with pytest.raises(Boom):
                response = await within(pool.request("POST", srv.url("/echo"), [], body()))
                await response["body"].read()
            _, data = await within(fetch(pool, "GET", srv.url("/after")))
            assert data == b"ok /after"


@aio()
async def test_failing_body_generator_before_the_first_chunk():
    """The iterator fails before yielding anything (HTTP/2): its exception, not a reset."""
    async with Origin("h2c", App()) as srv:
        async with cno.acgi.Pool(http2=True) as pool:
            async def body():
                raise KeyError("no data")
                yield b""   # pragma: no cover
            with pytest.raises(KeyError):
                await within(pool.request("POST", srv.url("/echo"), [], body()))


# -- closing the pool ---------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_aclose_closes_every_connection(mode):
    """"await pool.aclose() closes them all" (the server sees each connection end);
    requests after it raise, as do those waiting for a slot."""
    app = App()
    app.hold_target = 3
    # Three requests fill the pool: 3 connections (HTTP/1.1), or the 3 streams the
    # server allows on the one connection (HTTP/2); a fourth waits for a slot.
    async with Origin(mode, app, max_concurrent_streams=3) as srv:
        pool = cno.acgi.Pool(max_connections=3 if mode == "h1" else 1, **srv.pool_options())
        held = [asyncio.ensure_future(pool.request("GET", srv.url("/hold?%d" % i)))
                for i in range(3)]
        await within(app.held.wait())
        waiting = asyncio.ensure_future(pool.request("GET", srv.url("/waits")))
        # Another origin too.
        other = await pool.request("GET", srv.url("/").replace(HOST, "localhost"))
        await other["body"].read()
        await asyncio.sleep(0.02)
        assert not waiting.done() and len(pool.connections) == 2
        accepted = srv.accepted
        await within(pool.aclose())
        assert pool.connections == {}
        assert await srv.closed_connections()
        for task in held + [waiting]:
            with pytest.raises(cno.ConnectionClosed):
                await within(task)
        with pytest.raises(cno.ConnectionClosed):
            await within(pool.request("GET", srv.url("/")))
        assert srv.accepted == accepted     # nothing was dialed after aclose


# -- nghttpd ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    d = tmp_path_factory.mktemp("docroot")
    (d / "file.bin").write_bytes(bytes(range(256)) * 1200)     # 300 KiB
    return d


@pytest.mark.slow
@aio(30)
async def test_nghttpd_small_stream_limit(docroot):
    """nghttpd with MAX_CONCURRENT_STREAMS 3: 40 downloads at once over at most 2
    connections all complete, byte for byte."""
    exe = require_tool("nghttpd")
    want = (docroot / "file.bin").read_bytes()
    with External(lambda port: [exe, "-d", docroot, "--no-tls", "-m", "3", port]) as srv:
        url = "http://%s:%d/file.bin" % (HOST, srv.port)
        async with cno.acgi.Pool(http2=True, max_connections=2) as pool:
            results = await within(asyncio.gather(
                *[fetch(pool, "GET", url + "?%d" % i) for i in range(40)]), 20)
            for response, body in results:
                assert response["status_code"] == 200 and response["http_version"] == "2"
                assert body == want
            assert sum(len(c) for c in pool.connections.values()) <= 2
