"""The asyncio layer's API (docs/aio.md) over loopback, cno server <-> cno client:
Channel, Payload reads, trailers, concurrency and the server's stream limit, HEAD, large
bodies both ways, Service (shutdown, close, async with), server timeouts, h2c upgrade,
and a basic exchange under uvloop.

Modes: ``h1`` (http2=False), ``h2c`` (prior knowledge), ``h2tls`` (TLS + ALPN, trustme
certificates; skipped without trustme).
"""
import asyncio
import hashlib
import os

import pytest

import cno

from aio_local import HOST, T, aio, get, run, served


MODES = ["h1", "h2c", "h2tls"]


@pytest.fixture(params=MODES)
def mode(request):
    return request.param





def header(headers, name):
    return [v for k, v in headers if k == name]


async def ok(request):
    await request.respond(200, [("content-type", "text/plain")], b"ok")


# -- Channel -------------------------------------------------------------------------------


@aio()
async def test_channel_is_a_queue_and_async_iterator():
    ch = cno.Channel()
    assert isinstance(ch, asyncio.Queue)
    assert hasattr(ch, "__aiter__") and hasattr(ch, "__anext__")
    for i in range(5):
        await ch.put(i)
    assert ch.qsize() == 5
    assert await ch.get() == 0
    ch.close()
    # Items queued before close() are still taken, then iteration ends.
    assert [x async for x in ch] == [1, 2, 3, 4]
    # Iterating a closed, drained channel again ends at once.
    assert [x async for x in ch] == []


@aio()
async def test_channel_put_after_close_raises_broken_pipe():
    ch = cno.Channel(2)
    await ch.put(b"a")
    ch.close()
    with pytest.raises(BrokenPipeError):
        await ch.put(b"b")
    assert [x async for x in ch] == [b"a"]


@aio()
async def test_channel_close_wakes_a_waiting_consumer():
    ch = cno.Channel()
    got = []

    async def consume():
        async for x in ch:
            got.append(x)
        return "ended"

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.01)
    await ch.put(1)
    await asyncio.sleep(0.01)
    assert not task.done()
    ch.close()
    assert await asyncio.wait_for(task, 1) == "ended"
    assert got == [1]


@aio()
async def test_channel_bounded_put_waits_and_loop_accepted():
    ch = cno.Channel(1, loop=asyncio.get_running_loop())
    assert ch.maxsize == 1
    await ch.put(1)
    blocked = asyncio.ensure_future(ch.put(2))
    await asyncio.sleep(0.02)
    assert not blocked.done()
    assert await ch.get() == 1
    await asyncio.wait_for(blocked, 1)
    ch.close()
    assert [x async for x in ch] == [2]


@aio()
async def test_channel_as_request_and_response_body(mode):
    """A Channel fed by another task, as a request body and as a response body."""

    async def handle(request):
        body = await request.payload.read()
        out = cno.Channel(2)

        async def feed():
            for i in range(20):
                await out.put(b"%d," % i)
            out.close()

        feeder = asyncio.ensure_future(feed())
        await request.respond(200, [], out)
        await feeder
        assert body == b"".join(b"[%d]" % i for i in range(20))

    async with served(mode, handle) as peer:
        client = await peer.connect()
        ch = cno.Channel(3)

        async def feed():
            for i in range(20):
                await ch.put(b"[%d]" % i)
                await asyncio.sleep(0)
            ch.close()

        feeder = asyncio.ensure_future(feed())
        response, body = await get(client, "POST", "/", [], ch)
        await feeder
        assert response.code == 200
        assert body == b"".join(b"%d," % i for i in range(20))


# -- Payload -------------------------------------------------------------------------------

PIECES = [b"line1\nli", b"ne2\nrest-of-", b"body"]
WHOLE = b"".join(PIECES)


async def pieces():
    for p in PIECES:
        yield p
        await asyncio.sleep(0.01)


async def respond_in_pieces(request):
    await request.payload.read()
    await request.respond(200, [], pieces())


@aio()
async def test_payload_reads(mode):
    async with served(mode, respond_in_pieces) as peer:
        client = await peer.connect()
        response = await asyncio.wait_for(client.request("GET", "/"), T)
        p = response.payload
        assert isinstance(p, cno.Payload)
        assert not p.at_eof()
        assert await asyncio.wait_for(p.readline(), T) == b"line1\n"
        assert await asyncio.wait_for(p.readexactly(3), T) == b"lin"
        assert await asyncio.wait_for(p.readuntil(b"\n"), T) == b"e2\n"
        rest = b"rest-of-body"
        got = await asyncio.wait_for(p.read(4), T)
        assert 1 <= len(got) <= 4 and rest.startswith(got)
        assert await asyncio.wait_for(p.read(), T) == rest[len(got):]
        assert p.at_eof()
        assert await asyncio.wait_for(p.read(), T) == b""
        assert await asyncio.wait_for(p.read(10), T) == b""


@aio()
async def test_payload_iteration_and_short_readexactly(mode):
    async with served(mode, respond_in_pieces) as peer:
        client = await peer.connect()
        response = await asyncio.wait_for(client.request("GET", "/"), T)
        chunks = []

        async def collect():
            async for chunk in response.payload:
                assert isinstance(chunk, bytes) and chunk
                chunks.append(chunk)

        await asyncio.wait_for(collect(), T)
        assert b"".join(chunks) == WHOLE
        assert response.payload.at_eof()

        response = await asyncio.wait_for(client.request("GET", "/"), T)
        with pytest.raises(EOFError):  # asyncio.IncompleteReadError, as StreamReader
            await asyncio.wait_for(response.payload.readexactly(len(WHOLE) + 1), T)


@aio()
async def test_request_payload_reads_on_the_server(mode):
    """The same reads on ``request.payload``, with a body sent in pieces."""

    async def handle(request):
        p = request.payload
        got = [await p.readline(), await p.readexactly(3), await p.readuntil(b"\n")]
        got.append(b"".join([chunk async for chunk in p]))
        assert p.at_eof()
        await request.respond(200, [], b"|".join(got))

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await get(client, "POST", "/", [], pieces())
        assert response.code == 200
        assert body == b"line1\n|lin|e2\n|rest-of-body"


@aio()
async def test_async_iterable_bodies_both_ways(mode):
    async def gen(n):
        for i in range(n):
            yield b"%05d" % i

    async def handle(request):
        body = await request.payload.read()
        await request.respond(200, [], gen(len(body) // 5))

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await get(client, "PUT", "/", [], gen(300))
        assert response.code == 200
        assert body == b"".join(b"%05d" % i for i in range(300))


# -- trailers --------------------------------------------------------------------------------


@aio()
async def test_response_trailers(mode):
    async def handle(request):
        if request.path == "/none":
            await request.respond(200, [], b"no trailers")
        elif request.path == "/iter":
            await request.respond(200, [], pieces(), trailers=[("x-checksum", "it")])
        else:
            await request.respond(200, [], b"body", trailers=[("x-checksum", "abc"), ("x-n", "2")])

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await get(client, "GET", "/")
        assert body == b"body"
        assert response.trailers == [("x-checksum", "abc"), ("x-n", "2")]
        response, body = await get(client, "GET", "/iter")
        assert body == WHOLE
        assert response.trailers == [("x-checksum", "it")]
        response, body = await get(client, "GET", "/none")
        assert body == b"no trailers"
        assert response.trailers is None


# -- concurrency -----------------------------------------------------------------------------


def counting_handler(state, delay=0.01):
    state.setdefault("now", 0)
    state.setdefault("max", 0)
    state.setdefault("count", 0)

    async def handle(request):
        state["now"] += 1
        state["count"] += 1
        state["max"] = max(state["max"], state["now"])
        try:
            await request.payload.read()
            await asyncio.sleep(delay)
        finally:
            state["now"] -= 1
        await request.respond(200, [], request.path.encode())

    return handle


@pytest.mark.parametrize("mode", ["h2c", "h2tls"])
@aio(timeout=20)
async def test_200_concurrent_requests_on_one_h2_connection(mode):
    state = {}
    async with served(mode, counting_handler(state, 0.02)) as peer:
        client = await peer.connect()

        async def one(i):
            return await get(client, "GET", "/%d" % i)

        results = await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(200))), 15)
        assert [r.code for r, _ in results] == [200] * 200
        assert [b for _, b in results] == [b"/%d" % i for i in range(200)]
        assert state["count"] == 200
        assert state["max"] > 10, "requests did not run concurrently"
        assert len(peer.clients) == 1


@pytest.mark.parametrize("warm", [True, False], ids=["warm", "cold"])
@pytest.mark.parametrize("mode", ["h2c", "h2tls"])
@aio(timeout=20)
async def test_requests_wait_for_max_concurrent_streams(mode, warm):
    """Over the server's max_concurrent_streams, request() waits, it does not fail
    (cold: the 100 requests start right after connect, before any round trip)."""
    state = {}
    async with served(mode, counting_handler(state, 0.02), max_concurrent_streams=5) as peer:
        client = await peer.connect()
        if warm:
            response, _ = await get(client, "GET", "/warm")
            assert response.code == 200
            state["count"] = 0
        results = await asyncio.wait_for(
            asyncio.gather(*(get(client, "GET", "/%d" % i) for i in range(100))), 15)
        assert [r.code for r, _ in results] == [200] * 100
        assert [b for _, b in results] == [b"/%d" % i for i in range(100)]
        assert state["count"] == 100
        # Warm, the client knows the limit. Cold, it may send up to 100 before the
        # server's SETTINGS reach it (RFC 9113 6.5.3; docs/raw.md update_settings), and
        # the server takes them: nothing fails either way.
        assert state["max"] <= (5 if warm else 100), "the server's stream limit was exceeded"
        assert state["max"] >= 2


@aio()
async def test_concurrent_requests_over_http1_run_one_after_another():
    state = {}
    async with served("h1", counting_handler(state, 0.005)) as peer:
        client = await peer.connect()
        results = await asyncio.wait_for(
            asyncio.gather(*(get(client, "POST", "/%d" % i, [], b"x" * i) for i in range(20))), 10)
        assert [r.code for r, _ in results] == [200] * 20
        assert [b for _, b in results] == [b"/%d" % i for i in range(20)]
        assert state["max"] == 1
        assert len(peer.clients) == 1


# -- HEAD ------------------------------------------------------------------------------------


@aio()
async def test_head_response_has_no_body(mode):
    async def handle(request):
        if request.path == "/stream":
            await request.respond(200, [("content-length", str(len(WHOLE)))], pieces())
        else:
            await request.respond(200, [("content-length", "5")], b"hello")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        for path, length in (("/", "5"), ("/stream", str(len(WHOLE)))):
            response, body = await get(client, "HEAD", path)
            assert response.code == 200
            assert header(response.headers, "content-length") == [length]
            assert body == b""
        # The connection is still in step (HTTP/1.1: no body bytes were left on it).
        response, body = await get(client, "GET", "/")
        assert body == b"hello"
        response, body = await get(client, "GET", "/stream")
        assert body == WHOLE


# -- large bodies ----------------------------------------------------------------------------

BIG = 8 << 20


@aio(timeout=30)
async def test_8mib_bodies_both_ways(mode):
    blob = os.urandom(1 << 16) * (BIG >> 16)

    async def handle(request):
        body = await request.payload.read()
        digest = hashlib.sha256(body).hexdigest()
        await request.respond(200, [("x-len", str(len(body))), ("x-sha", digest)], body[::-1])

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await asyncio.wait_for(get(client, "POST", "/", [], blob), 20)
        assert response.code == 200
        assert header(response.headers, "x-len") == [str(BIG)]
        assert header(response.headers, "x-sha") == [hashlib.sha256(blob).hexdigest()]
        assert len(body) == BIG
        assert body == blob[::-1]


# -- Service ---------------------------------------------------------------------------------


@aio()
async def test_service_shutdown_lets_running_requests_finish(mode):
    release = asyncio.Event()
    started = asyncio.Event()

    async def handle(request):
        started.set()
        await release.wait()
        await request.respond(200, [], b"finished")

    async with served(mode, handle) as peer:
        assert isinstance(peer.server, cno.Service)
        client = await peer.connect()
        inflight = asyncio.ensure_future(get(client, "GET", "/slow"))
        await asyncio.wait_for(started.wait(), T)
        shutdown = asyncio.ensure_future(peer.server.shutdown())
        await asyncio.sleep(0.2)
        assert not shutdown.done(), "shutdown() did not wait for the running request"
        assert not inflight.done()
        release.set()
        response, body = await asyncio.wait_for(inflight, T)
        assert response.code == 200
        assert body == b"finished"
        await asyncio.wait_for(shutdown, T)
        # New connections are refused.
        with pytest.raises(OSError):
            await asyncio.wait_for(asyncio.open_connection(HOST, peer.port), T)


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_service_shutdown_timeout_ends_stuck_requests(mode):
    async def handle(request):
        await asyncio.sleep(60)

    async with served(mode, handle) as peer:
        client = await peer.connect()
        inflight = asyncio.ensure_future(client.request("GET", "/stuck"))
        await asyncio.sleep(0.1)
        await asyncio.wait_for(peer.server.shutdown(timeout=0.3), 3)
        with pytest.raises((cno.CnoError, ConnectionError)):
            await asyncio.wait_for(inflight, 3)


@aio()
async def test_service_async_with_and_close():
    server = await cno.serve(ok, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        response = await asyncio.wait_for(cno.request("GET", "http://%s:%d/" % (HOST, port)), T)
        assert response.code == 200
        assert await asyncio.wait_for(response.payload.read(), T) == b"ok"
        response.conn.close()
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(HOST, port), T)

    server = await cno.serve(ok, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await asyncio.wait_for(server.wait_closed(), T)
    with pytest.raises(OSError):
        await asyncio.wait_for(asyncio.open_connection(HOST, port), T)


@aio()
async def test_loopless_and_explicit_loop_forms():
    loop = asyncio.get_running_loop()
    server = await cno.serve(ok, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        for connect in (lambda url, **kw: cno.connect(url, **kw),
                        lambda url, **kw: cno.connect(loop, url, **kw)):
            for http2 in (False, True, None):
                client = await asyncio.wait_for(connect("http://%s:%d/" % (HOST, port), http2=http2), T)
                assert client.loop is loop
                response, body = await get(client)
                assert (response.code, body) == (200, b"ok")
                assert client.is_http2 is (http2 is not False)
                client.close()
        for args in (("GET", "http://%s:%d/" % (HOST, port)),
                     (loop, "GET", "http://%s:%d/" % (HOST, port))):
            response = await asyncio.wait_for(cno.request(*args), T)
            assert response.code == 200
            assert await asyncio.wait_for(response.payload.read(), T) == b"ok"
            response.conn.close()
    finally:
        server.close()


@aio()
async def test_h2c_upgrade():
    """Plain ``http://`` without http2=: the first request asks for ``Upgrade: h2c`` and
    the connection goes on in HTTP/2."""
    seen = []

    async def handle(request):
        seen.append((request.conn.is_http2, request.path, await request.payload.read()))
        await request.respond(200, [], request.path.encode())

    server = await cno.serve(handle, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = await asyncio.wait_for(cno.connect("http://%s:%d/" % (HOST, port)), T)
        assert client.is_http2 is False
        response, body = await get(client, "GET", "/first")
        assert (response.code, body) == (200, b"/first")
        assert client.is_http2 is True
        results = await asyncio.wait_for(asyncio.gather(*(get(client, "GET", "/%d" % i) for i in range(5))), T)
        assert [b for _, b in results] == [b"/%d" % i for i in range(5)]
        assert seen[-1][0] is True
        client.close()
    finally:
        server.close()


# -- server timeouts ---------------------------------------------------------------------------


@pytest.mark.parametrize("start", [b"", b"GET / HTTP/1.1\r\nhost: x\r\n"], ids=["silent", "partial-head"])
@aio()
async def test_header_timeout_closes_the_connection(start):
    server = await cno.serve(ok, HOST, 0, header_timeout=0.3)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(start)  # a head that never ends
        t0 = asyncio.get_running_loop().time()
        data = await asyncio.wait_for(reader.read(), 3)
        elapsed = asyncio.get_running_loop().time() - t0
        assert data == b"" or data.startswith(b"HTTP/1.1 408"), data
        assert 0.2 <= elapsed < 2.5
        writer.close()
    finally:
        server.close()


@aio()
async def test_idle_timeout_closes_an_idle_connection():
    server = await cno.serve(ok, HOST, 0, idle_timeout=0.3)
    port = server.sockets[0].getsockname()[1]
    try:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        assert head.startswith(b"HTTP/1.1 200")
        t0 = asyncio.get_running_loop().time()
        rest = await asyncio.wait_for(reader.read(), 3)  # the body, then EOF when closed
        assert rest in (b"ok", b"2\r\nok\r\n0\r\n\r\n")
        assert asyncio.get_running_loop().time() - t0 < 2.5
        writer.close()
    finally:
        server.close()


# -- uvloop ----------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["h1", "h2c", "h2tls"])
def test_basic_exchange_under_uvloop(mode):
    uvloop = pytest.importorskip("uvloop")

    async def main():
        async def handle(request):
            body = await request.payload.read()
            await request.respond(200, [("x-loop", type(asyncio.get_running_loop()).__module__)],
                                  body.upper(), trailers=[("x-t", "1")])

        async with served(mode, handle) as peer:
            client = await peer.connect()
            response, body = await get(client, "POST", "/", [], b"x" * 300000)
            assert response.code == 200
            assert body == b"X" * 300000
            assert header(response.headers, "x-loop")[0].startswith("uvloop")
            assert response.trailers == [("x-t", "1")]
            results = await asyncio.wait_for(
                asyncio.gather(*(get(client, "GET", "/%d" % i) for i in range(20))), T)
            assert [r.code for r, _ in results] == [200] * 20

    run(main(), 15, loop_factory=uvloop.new_event_loop)


# -- client fixes (issue 8 review) ---------------------------------------------------------------


@pytest.mark.parametrize("url", ["127.0.0.1:8101/", "ftp://127.0.0.1/", "http:///path",
                                 "http://127.0.0.1:0/", "http://127.0.0.1:99999/"])
@aio()
async def test_connect_refuses_urls_it_cannot_reach_as_written(url):
    # A URL without a scheme used to mean http://localhost:80, and port 0 the default port.
    with pytest.raises(ValueError):
        await cno.connect(url)


@aio()
async def test_bytes_request_body_has_content_length_over_http1():
    # A body known in full is framed by Content-Length (RFC 9112 6.2), not chunked:
    # servers that refuse chunked requests (411) accept it.
    seen = []

    async def handle(request):
        seen.append(dict(request.headers))
        await request.respond(200, [], await request.payload.read())

    async with served("h1", handle) as peer:
        client = await peer.connect()
        response, body = await get(client, "POST", "/", [], b"x" * 1000)
        assert body == b"x" * 1000
        assert seen[0].get("content-length") == "1000"
        assert "transfer-encoding" not in seen[0]


@aio()
async def test_protocol_error_reaches_the_request():
    # docs/aio.md: a connection that fails raises the cno.ProtocolError that ended it, not
    # a reset or a generic close.
    async def garbage(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n")

    server = await asyncio.start_server(garbage, HOST, 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = await cno.connect("http://%s:%d/" % (HOST, port), http2=False)
        with pytest.raises(cno.ProtocolError):
            await asyncio.wait_for(client.request("GET", "/"), T)
    finally:
        server.close()


@aio()
async def test_h2c_upgraded_client_raises_its_connection_window():
    # A client that switched to HTTP/2 by Upgrade gets the same 1 MiB connection window as
    # one that started in HTTP/2 (a WINDOW_UPDATE on stream 0 after the peer's SETTINGS).
    from cno import raw

    class Traced(cno.Client):
        updates = []

        def on_frame_send(self, frame):
            if frame.type == raw.CNO_FRAME_WINDOW_UPDATE and frame.stream == 0:
                self.updates.append(int.from_bytes(frame.payload, "big"))

    async with served("h1", ok) as peer:
        client = await cno.connect(peer.url(), protocol_class=Traced)
        await get(client)
        assert client.is_http2
        assert Traced.updates == [(1 << 20) - 65535]
        client.close()


@aio()
async def test_204_with_a_body_is_a_handler_error_and_204_gets_no_length(mode):
    # RFC 9110 8.6: no Content-Length in a 204; 15.3.5: it has no content. A handler that
    # gives one a body gets UsageError before anything is written, so the client sees 500.
    async def handle(request):
        if request.path == "/body":
            await request.respond(204, [], b"not allowed")
        await request.respond(204, [])

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await get(client, "GET", "/")
        assert (response.code, body) == (204, b"")
        assert not header(response.headers, "content-length")
        response, _ = await get(client, "GET", "/body")
        assert response.code == 500


@aio()
async def test_a_refused_response_head_still_answers_500_at_once(mode):
    # A head the engine refuses (a CR LF in a value) raises from respond(); the 500 that
    # follows is not held back in the cork until some later write.
    async def handle(request):
        await request.respond(200, [("x-bad", "a\r\nb")], b"x")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, _ = await get(client, "GET", "/")
        assert response.code == 500


# -- Without waiting: Payload.read_nowait, Request.respond_nowait ---------------------------


async def _until(check, timeout=T):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.001)


@aio()
async def test_read_nowait_and_respond_nowait(mode):
    """read_nowait() gives what has arrived (None before anything, b"" at the end);
    respond_nowait() writes head and body at once, with a content-length."""
    seen = {}
    first = asyncio.Event()

    async def handle(request):
        p = request.payload
        seen["before"] = p.read_nowait()
        first.set()
        seen["first"] = await _until(p.read_nowait)
        seen["rest"] = await _until(p.read_nowait)   # the close: b""
        seen["returned"] = request.respond_nowait(
            200, [("content-type", "text/plain")], seen["first"] * 2)
        assert request.responded

    async with served(mode, handle) as peer:
        client = await peer.connect()
        body = cno.Channel()
        response_task = asyncio.ensure_future(client.request("POST", "/", [], body))
        await asyncio.wait_for(first.wait(), T)
        await body.put(b"abc")
        await asyncio.sleep(0.05)
        body.close()
        response = await asyncio.wait_for(response_task, T)
        assert await asyncio.wait_for(response.payload.read(), T) == b"abcabc"
        assert header(response.headers, "content-length") == ["6"]
    assert seen == {"before": None, "first": b"abc", "rest": b"", "returned": None}


@aio()
async def test_respond_nowait_would_block_behind_an_earlier_http1_response():
    """HTTP/1.1 answers in order: the second of two pipelined requests cannot be
    answered at once while the first is unanswered (WouldBlock, nothing written); the
    awaited respond() waits its turn."""
    release = asyncio.Event()
    outcome = []

    async def handle(request):
        if request.path == "/1":
            await release.wait()
            await request.respond(200, [], b"one")
            return
        try:
            request.respond_nowait(200, [], b"two")
        except cno.WouldBlock:
            outcome.append("would block")
        assert not request.responded
        release.set()
        await request.respond(200, [], b"two")

    async with served("h1", handle) as peer:
        reader, writer = await asyncio.open_connection(HOST, peer.port)
        writer.write(b"GET /1 HTTP/1.1\r\nhost: x\r\n\r\nGET /2 HTTP/1.1\r\nhost: x\r\n"
                     b"connection: close\r\n\r\n")
        data = await asyncio.wait_for(reader.read(), T)
        writer.close()
    assert outcome == ["would block"]
    first, second = data.split(b"HTTP/1.1 200 OK")[1:]
    assert first.endswith(b"\r\n\r\none") and second.endswith(b"\r\n\r\ntwo")
