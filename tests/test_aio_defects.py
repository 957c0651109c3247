"""One test per defect of libcno's asyncio layer (DESIGN.md section 5, reference/
libcno-semantics.md section 5.3); each fails on libcno's behaviour:

- a 1xx resolved ``client.request()`` (and the final head then killed the connection);
- handler tasks were cancelled as soon as their stream ended (right after ``respond()``);
- a handler exception left the client hanging (no 500, no RST_STREAM);
- trailers were dropped (both ways);
- ``cno.request()`` dropped the query string (and sent an empty path as empty);
- no inbound backpressure: a slow reader let the peer make the process buffer without limit;
- a reset after the response head only fed EOF (a truncated body looked complete), and a
  reset before it surfaced as CancelledError;
- cancelling a request had to be checked: RST_STREAM(CANCEL) at once;
- ``connection_lost`` with open streams raised ConnectionError into the loop's handler.

cno server <-> cno client over loopback, in ``h1`` (http2=False) and ``h2c`` (prior
knowledge) modes; every wait is bounded by asyncio.wait_for.
"""
import asyncio
import gc
import inspect

import pytest

import cno

from aio_local import HOST, T, aio, get, served


MODES = ["h1", "h2c"]

# HTTP/1.1 has no RST_STREAM: a reset there ends the connection, which the client reports
# as one of these (never as a clean, short body).
H1_BROKEN = (cno.StreamReset, cno.ConnectionClosed, cno.ProtocolError)


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


# -- 1xx --------------------------------------------------------------------------------------


@aio()
async def test_1xx_does_not_resolve_request(mode):
    """libcno: the first head (a 1xx) resolved request() with code=100 and an empty body,
    then the final head raised KeyError in data_received and killed the connection."""

    async def handle(request):
        # request.conn is a cno.raw.Connection: send a 103 Early Hints by hand first.
        request.conn.write_head(request.stream, 103, "", "", [("link", "</x>")], False)
        await asyncio.sleep(0.05)
        await request.respond(200, [("content-length", "2")], b"ok")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        for _ in range(2):  # and the connection survives the final head
            response, body = await get(client)
            assert response.code == 200
            assert body == b"ok"
            assert len(response.informational) == 1
            code, headers = response.informational[0]
            assert code == 103
            assert ("link", "</x>") in headers


# -- handler lifetime ---------------------------------------------------------------------------


@aio()
async def test_handler_not_cancelled_after_respond(mode):
    """libcno cancelled the handler's task when its stream ended: any await after
    respond() raised CancelledError."""
    outcomes = []

    async def handle(request):
        await request.respond(200, [("content-length", "2")], b"ok")
        try:
            await asyncio.sleep(0.05)
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            outcomes.append("cancelled")
            raise
        outcomes.append("completed")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await get(client)
        assert (response.code, body) == (200, b"ok")
        for _ in range(100):
            if outcomes:
                break
            await asyncio.sleep(0.02)
        assert outcomes == ["completed"]


# -- handler errors ----------------------------------------------------------------------------


@aio()
async def test_handler_error_before_respond_gives_500(mode):
    """libcno: the stream stayed open and the client waited forever."""

    async def handle(request):
        if request.path == "/raise":
            raise RuntimeError("boom")
        if request.path == "/return":
            return  # returns without responding
        await request.respond(200, [], b"ok")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, _ = await get(client, "GET", "/raise")
        assert response.code == 500
        response, _ = await get(client, "GET", "/return")
        assert response.code == 500
        response, body = await get(client, "GET", "/")  # the connection goes on
        assert (response.code, body) == (200, b"ok")


@pytest.mark.parametrize("how", ["iterable", "channel"])
@aio()
async def test_handler_error_after_head_resets(mode, how):
    """After the head went out, a handler error resets the stream (HTTP/2 RST_STREAM
    INTERNAL_ERROR) or closes the connection (HTTP/1.1); the client's read raises."""

    async def handle(request):
        if request.path == "/ok":
            await request.respond(200, [], b"ok")
        elif how == "iterable":
            async def body():
                yield b"part"
                await asyncio.sleep(0.05)
                raise RuntimeError("boom while streaming")

            await request.respond(200, [], body())
        else:
            channel = cno.Channel()
            asyncio.ensure_future(request.respond(200, [], channel))
            await channel.put(b"part")
            await asyncio.sleep(0.05)
            raise RuntimeError("boom while streaming")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response = await asyncio.wait_for(client.request("GET", "/"), T)
        assert response.code == 200
        with pytest.raises(cno.StreamReset if mode.startswith("h2") else H1_BROKEN) as err:
            await asyncio.wait_for(response.payload.read(), T)
        if mode.startswith("h2"):
            assert err.value.code == 0x2  # INTERNAL_ERROR
            response, body = await get(client, "GET", "/ok")  # only the stream died
            assert (response.code, body) == (200, b"ok")


# -- trailers -----------------------------------------------------------------------------------


@aio()
async def test_response_trailers_reach_the_client(mode):
    """libcno received trailers, then discarded them in on_message_tail."""

    async def handle(request):
        await request.respond(200, [], b"body", trailers=[("x-checksum", "abc")])

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response, body = await get(client)
        assert body == b"body"
        assert response.trailers == [("x-checksum", "abc")]


async def raw_h1_post_with_trailers(port):
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"POST /t HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n"
                 b"5\r\nhello\r\n0\r\nx-checksum: abc\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
    body = await asyncio.wait_for(reader.readexactly(2), T)
    writer.close()
    return int(head.split()[1]), body


async def raw_h2_post_with_trailers(port):
    h2_connection = pytest.importorskip("h2.connection")
    h2_config = pytest.importorskip("h2.config")
    h2_events = pytest.importorskip("h2.events")
    reader, writer = await asyncio.open_connection(HOST, port)
    conn = h2_connection.H2Connection(
        h2_config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    sid = conn.get_next_available_stream_id()
    conn.send_headers(sid, [(":method", "POST"), (":path", "/t"), (":scheme", "http"),
                            (":authority", "x")])
    conn.send_data(sid, b"hello")
    conn.send_headers(sid, [("x-checksum", "abc")], end_stream=True)
    writer.write(conn.data_to_send())
    status, body, ended = None, b"", False
    while not ended:
        data = await asyncio.wait_for(reader.read(65536), T)
        assert data, "connection closed before the response ended"
        for event in conn.receive_data(data):
            if isinstance(event, h2_events.ResponseReceived):
                status = int(dict(event.headers)[":status"])
            elif isinstance(event, h2_events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, sid)
            elif isinstance(event, h2_events.StreamEnded):
                ended = True
        writer.write(conn.data_to_send())
    writer.close()
    return status, body


@aio()
async def test_request_trailers_reach_the_handler(mode):
    """Trailers a client sends are in request.trailers once the body is read (sent here by
    a plain peer: raw HTTP/1.1 bytes, or python-hyper h2)."""
    seen = []

    async def handle(request):
        body = await request.payload.read()
        seen.append((body, request.trailers))
        await request.respond(200, [("content-length", "2")], b"ok")

    async with served(mode, handle) as peer:
        send = raw_h2_post_with_trailers if mode.startswith("h2") else raw_h1_post_with_trailers
        assert await send(peer.port) == (200, b"ok")
        assert seen == [(b"hello", [("x-checksum", "abc")])]


@aio()
async def test_request_trailers_from_cno_client(mode):
    """client.request(..., trailers=...), where the client offers it (docs/aio.md does not
    list it for the client)."""
    seen = []

    async def handle(request):
        body = await request.payload.read()
        seen.append((body, request.trailers))
        await request.respond(200, [], b"ok")

    async with served(mode, handle) as peer:
        client = await peer.connect()
        if "trailers" not in inspect.signature(client.request).parameters:
            pytest.skip("client.request() takes no trailers")
        response = await asyncio.wait_for(
            client.request("POST", "/", [], b"hello", trailers=[("x-checksum", "abc")]), T)
        assert response.code == 200
        assert seen == [(b"hello", [("x-checksum", "abc")])]


# -- query strings ------------------------------------------------------------------------------


@aio()
async def test_request_keeps_query_string():
    """libcno's cno.request() sent only url.path: the query was dropped, and an empty path
    was sent as empty."""
    paths = []

    async def handle(request):
        paths.append(request.path)
        await request.respond(200, [], b"ok")

    async with served("h1", handle) as peer:
        loop = asyncio.get_running_loop()
        base = "http://%s" % peer.authority
        for args, kw in [(("GET", base + "/p?q=1"), {}),
                         ((loop, "GET", base + "/p?q=1&r=%20x"), {}),
                         (("GET", base + "/p?q=1"), {"http2": True}),
                         (("GET", base + "/p?q=1"), {"http2": False}),
                         (("GET", base), {}),
                         (("GET", base + "?q=2"), {"http2": True})]:
            response = await asyncio.wait_for(cno.request(*args, **kw), T)
            assert response.code == 200
            response.conn.close()
        assert paths == ["/p?q=1", "/p?q=1&r=%20x", "/p?q=1", "/p?q=1", "/", "/?q=2"]


# -- backpressure ---------------------------------------------------------------------------------

MiB = 1 << 20


@aio(timeout=20)
async def test_inbound_backpressure_on_the_server(mode):
    """A client posting without end to a handler that reads 1 KiB every 10 ms: what the
    client manages to send stays bounded (about a stream window in HTTP/2; max_body_buffer
    plus socket buffers in HTTP/1.1). libcno buffered everything the peer sent."""
    state = {"fast": False, "stop": False, "sent": 0, "read": 0}

    async def handle(request):
        total = 0
        while True:
            if state["fast"]:
                chunk = await request.payload.read(MiB)
            else:
                chunk = await request.payload.read(1024)
                await asyncio.sleep(0.01)
            if not chunk:
                break
            total += len(chunk)
            state["read"] = total
        await request.respond(200, [], str(total).encode())

    async def producer():
        chunk = b"x" * 65536
        while not state["stop"]:
            state["sent"] += len(chunk)
            yield chunk

    async with served(mode, handle) as peer:
        client = await peer.connect()
        task = asyncio.ensure_future(client.request("POST", "/", [], producer()))
        await asyncio.sleep(0.6)
        early = state["sent"]
        await asyncio.sleep(0.6)
        late = state["sent"]
        assert not task.done()
        limit = 4 * MiB if mode.startswith("h2") else 16 * MiB
        assert late < limit, "client sent %d bytes to a handler that read %d" % (late, state["read"])
        assert late - early < 2 * MiB, "sending did not stall: %d -> %d" % (early, late)
        # Let it finish: everything sent arrives, intact in length.
        state["fast"] = True
        state["stop"] = True
        response = await asyncio.wait_for(task, T)
        assert response.code == 200
        assert int(await asyncio.wait_for(response.payload.read(), T)) == state["sent"]


@aio(timeout=20)
async def test_inbound_backpressure_on_the_client(mode):
    """The reverse: a handler streaming without end to a client that reads 1 KiB every
    10 ms; what the server manages to produce stays bounded."""
    state = {"stop": False, "produced": 0}

    async def handle(request):
        async def body():
            chunk = b"y" * 65536
            while not state["stop"]:
                state["produced"] += len(chunk)
                yield chunk

        await request.respond(200, [], body())

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response = await asyncio.wait_for(client.request("GET", "/"), T)
        loop = asyncio.get_running_loop()
        got = 0
        early = None
        t0 = loop.time()
        while loop.time() - t0 < 1.2:
            got += len(await asyncio.wait_for(response.payload.read(1024), T))
            await asyncio.sleep(0.01)
            if early is None and loop.time() - t0 >= 0.6:
                early = state["produced"]
        late = state["produced"]
        limit = 4 * MiB if mode.startswith("h2") else 16 * MiB
        assert late < limit, "server produced %d bytes for a client that read %d" % (late, got)
        assert late - early < 2 * MiB, "producing did not stall: %d -> %d" % (early, late)
        state["stop"] = True
        rest = await asyncio.wait_for(response.payload.read(), T)
        assert got + len(rest) == state["produced"]


# -- resets ---------------------------------------------------------------------------------------


@aio()
async def test_reset_after_head_raises_stream_reset(mode):
    """libcno: a reset after the head merely fed EOF, so a truncated body looked complete."""

    async def handle(request):
        async def body():
            yield b"x" * 1000
            await asyncio.sleep(0.05)
            request.conn.write_reset(request.stream, 8)  # RST_STREAM(CANCEL) mid-body

        try:
            await request.respond(200, [], body())
        except cno.CnoError:
            pass

    async def read_all(payload):
        return await payload.read()

    async def read_piecewise(payload):
        while await payload.read(100):
            pass

    async with served(mode, handle) as peer:
        for read in (read_all, read_piecewise):
            client = await peer.connect()  # (HTTP/1.1: the reset ends the connection)
            response = await asyncio.wait_for(client.request("GET", "/"), T)
            assert response.code == 200
            with pytest.raises(cno.StreamReset if mode.startswith("h2") else H1_BROKEN) as err:
                await asyncio.wait_for(read(response.payload), T)
            if mode.startswith("h2"):
                assert err.value.code == 8
                again = await asyncio.wait_for(client.request("GET", "/"), T)  # still usable
                assert again.code == 200


@aio()
async def test_reset_before_head_raises_stream_reset(mode):
    """libcno: a reset before the response head surfaced as CancelledError from request()."""

    async def handle(request):
        request.conn.write_reset(request.stream, 8)

    async with served(mode, handle) as peer:
        client = await peer.connect()
        try:
            await asyncio.wait_for(client.request("GET", "/"), T)
        except asyncio.CancelledError:
            pytest.fail("request() raised CancelledError, not StreamReset")
        except (cno.StreamReset if mode.startswith("h2") else H1_BROKEN) as e:
            if mode.startswith("h2"):
                assert e.code == 8
        else:
            pytest.fail("request() returned on a reset stream")


@aio()
async def test_cancelling_request_resets_the_stream_at_once(mode):
    """Cancelling the task awaiting request(): RST_STREAM(CANCEL) goes out at once (HTTP/1.1:
    the connection closes); the handler's pending read raises StreamReset."""
    started = asyncio.Event()
    outcome = []

    async def handle(request):
        if request.path == "/after":
            await request.respond(200, [], b"ok")
            return
        started.set()
        try:
            while await request.payload.read():
                pass
            outcome.append("eof")
        except cno.StreamReset as e:
            outcome.append(("reset", e.code))
        except Exception as e:  # noqa: BLE001
            outcome.append(("error", type(e).__name__))

    async with served(mode, handle) as peer:
        client = await peer.connect()
        body = cno.Channel()
        await body.put(b"first chunk; more never comes")
        task = asyncio.ensure_future(client.request("POST", "/", [], body))
        await asyncio.wait_for(started.wait(), T)
        loop = asyncio.get_running_loop()
        task.cancel()
        t0 = loop.time()
        with pytest.raises(asyncio.CancelledError):
            await task
        while not outcome and loop.time() - t0 < 2:
            await asyncio.sleep(0.005)
        assert outcome, "the server never learned of the cancellation"
        assert loop.time() - t0 < 0.5
        if mode.startswith("h2"):
            assert outcome == [("reset", 8)]
            response, body = await get(client, "GET", "/after")  # the connection goes on
            assert (response.code, body) == (200, b"ok")
        else:
            assert outcome[0] != "eof", "a truncated request body looked complete"


@aio()
async def test_response_cancel_stops_the_server_writer(mode):
    """response.cancel() resets the stream: the server's respond() stops pulling its body."""
    state = {"produced": 0}
    finished = []

    async def handle(request):
        async def body():
            chunk = b"z" * 16384
            while True:
                state["produced"] += len(chunk)
                yield chunk

        try:
            await request.respond(200, [], body())
            finished.append("returned")
        except Exception as e:  # noqa: BLE001
            finished.append(type(e).__name__)

    async with served(mode, handle) as peer:
        client = await peer.connect()
        response = await asyncio.wait_for(client.request("GET", "/"), T)
        assert await asyncio.wait_for(response.payload.read(1000), T)
        response.cancel()
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        while not finished and loop.time() - t0 < 2:
            await asyncio.sleep(0.01)
        assert finished, "respond() kept writing to a cancelled stream"
        produced = state["produced"]
        await asyncio.sleep(0.1)
        assert state["produced"] == produced


# -- connection_lost ------------------------------------------------------------------------------


@pytest.mark.parametrize("side", ["client-aborts", "server-aborts"])
@aio()
async def test_connection_lost_with_open_streams_is_quiet(mode, side):
    """libcno's connection_lost raised ConnectionError('N read-open streams on EOF') into
    the loop's exception handler whenever streams were open. Pending requests fail with
    a cno error instead of hanging."""
    loop = asyncio.get_running_loop()
    calls = []
    loop.set_exception_handler(lambda l, context: calls.append(context))
    conns = []
    n = 3 if mode.startswith("h2") else 1

    async def handle(request):
        conns.append(request.conn)
        await request.payload.read()
        await asyncio.sleep(30)

    async with served(mode, handle) as peer:
        client = await peer.connect()
        tasks = [asyncio.ensure_future(client.request("POST", "/%d" % i, [], b"body"))
                 for i in range(n)]
        for _ in range(200):
            if len(conns) == n:
                break
            await asyncio.sleep(0.01)
        assert len(conns) == n
        if side == "client-aborts":
            client.transport.abort()
        else:
            conns[0].transport.abort()
        for task in tasks:
            with pytest.raises((cno.CnoError, ConnectionError)):
                await asyncio.wait_for(task, T)
        await asyncio.sleep(0.1)
        gc.collect()
        await asyncio.sleep(0.05)
    assert [c.get("message") for c in calls] == [], calls


@aio()
async def test_http1_answer_without_reading_the_body_closes_the_connection():
    """HTTP/1.1: a handler that answers and returns without reading an announced body
    leaves bytes that the next request could only follow, and nobody reads them: the
    connection closes once the response is out, instead of staying open with reading
    paused until a shutdown gives up on it."""
    async def handle(request):
        await request.respond(413, [], b"too large")

    async with served("h1", handle) as peer:
        client = await peer.connect()
        response = await asyncio.wait_for(
            client.request("POST", "/", [], b"x" * (2 << 20)), T)
        assert response.code == 413
        assert await asyncio.wait_for(response.payload.read(), T) == b"too large"
        await asyncio.wait_for(client.wait_closed(), T)
        await asyncio.wait_for(peer.server.shutdown(timeout=30), T)
