"""WebSockets on loopback against real peers (RFC 6455, RFC 7692, RFC 8441):

- the ``websockets`` package's client against ``cno.asgi.serve`` running ws_apps.echo_app
  (HTTP/1.1, ws:// and wss://);
- the ``websockets`` package's server against ``cno.websocket.connect`` (HTTP/1.1);
- a Starlette endpoint (ws_apps.starlette_app) under ``python -m cno serve`` over
  HTTP/1.1 and HTTP/2 (extended CONNECT), from cno's client and from a client written
  here on the ``h2`` package with ``wsproto``'s frame layer;
- hypercorn's WebSockets over HTTP/2 (h2c by prior knowledge, and TLS with ALPN h2)
  against ``cno.websocket.connect``, one WebSocket per connection and many multiplexed
  on one ``cno.Client``.

Every peer runs on 127.0.0.1 with a free port; subprocess servers are module fixtures,
stopped also when a test fails.
"""
import asyncio
import http
import os
import sys

import pytest

import cno
import cno.websocket

import ws_apps
from aio_local import T, aio
from aio_util import TESTS, External, ServeProcess, require_module
from test_asgi import asgi_server
from test_websocket import Server

websockets = require_module("websockets")
from websockets.asyncio.client import connect as ws_connect  # noqa: E402
from websockets.asyncio.server import serve as ws_serve  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

BIG = 16 * 1024 * 1024          # the 16 MiB messages
LIMIT = 32 * 1024 * 1024        # max_size raised on both sides for them
COMPRESSIBLE = "compressible text, " * 4000


def _big(seed):
    """16 MiB that is not one byte repeated (a shifted or truncated echo would show)."""
    block = bytes((i * 7 + seed) & 0xFF for i in range(65536)) + os.urandom(16)
    return (block * (BIG // len(block) + 1))[:BIG]


async def _wait_for_event(timeout=T):
    """The in-process echo_app's record of its last websocket.disconnect."""
    for _ in range(int(timeout / 0.01)):
        if ws_apps.events:
            return ws_apps.events[-1]
        await asyncio.sleep(0.01)
    raise AssertionError("the application saw no websocket.disconnect")


def _ws_client(server, path="/echo", **options):
    """The websockets package's client to a tests/test_websocket.Server (ws:// or wss://)."""
    options.setdefault("open_timeout", T)
    options.setdefault("proxy", None)
    if server.tls:
        options.setdefault("ssl", server.client_ssl)
    return ws_connect(server.base + path, **options)


# -- the websockets client against cno.asgi.serve ----------------------------------------

@pytest.mark.parametrize("mode", ["h1", "h1tls"])
@aio()
async def test_websockets_client_text_and_binary(mode):
    ws_apps.events.clear()
    async with Server(mode) as server:
        async with _ws_client(server) as ws:
            for message in ("hello", "h\u00e9llo \u2603 \U0001f600", b"\x00\xff" * 5,
                            "x" * 70000, b"y" * 200000, b"", ""):
                await ws.send(message)
                got = await asyncio.wait_for(ws.recv(), T)
                assert got == message and type(got) is type(message)
        assert ws.close_code == 1000
        assert (await _wait_for_event())["code"] == 1000


@aio()
async def test_websockets_client_fragmented_messages():
    """websockets sends an async iterable as one message in fragments; cno reassembles."""
    async def pieces(items):
        for item in items:
            yield item

    async with Server("h1") as server:
        async with _ws_client(server, compression=None) as ws:
            await ws.send(pieces(["frag", "ment", "ed \u00e9", ""]))
            assert await asyncio.wait_for(ws.recv(), T) == "fragmented \u00e9"
            await ws.send(pieces([b"\x01" * 1000, b"\x02" * 70000, b"\x03"]))
            assert await asyncio.wait_for(ws.recv(), T) == \
                b"\x01" * 1000 + b"\x02" * 70000 + b"\x03"
            # with permessage-deflate too (each fragment compressed with a sync flush)
        async with _ws_client(server) as ws:
            assert ws.response.headers.get("sec-websocket-extensions")
            await ws.send(pieces([COMPRESSIBLE, COMPRESSIBLE[::-1]]))
            assert await asyncio.wait_for(ws.recv(), T) == COMPRESSIBLE + COMPRESSIBLE[::-1]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["h1", "h1tls"])
@aio(30)
async def test_websockets_client_16_mib_each_way(mode):
    data = _big(1)
    async with Server(mode, ws_max_size=LIMIT) as server:
        async with _ws_client(server, max_size=LIMIT, compression=None) as ws:
            await asyncio.wait_for(ws.send(data), 10)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert len(got) == BIG and got == data


@aio()
async def test_websockets_client_ping_and_server_keepalive():
    """websockets' ping gets cno's pong; cno's keepalive pings (every 0.05 s, 0.4 s to
    answer) get websockets' pongs, or the server would close with 1011."""
    async with Server("h1", ws_ping_interval=0.05, ws_ping_timeout=0.4) as server:
        async with _ws_client(server, ping_interval=None) as ws:
            pong = await ws.ping(b"from websockets")
            latency = await asyncio.wait_for(pong, T)
            assert 0 <= latency < T
            await asyncio.sleep(0.8)
            await ws.send("still open")
            assert await asyncio.wait_for(ws.recv(), T) == "still open"
            assert ws.close_code is None


@pytest.mark.parametrize("code, reason", [(1000, ""), (4001, "bye"), (1011, "oops")])
@aio()
async def test_websockets_client_gets_the_applications_close(code, reason):
    ws_apps.events.clear()
    async with Server("h1") as server:
        async with _ws_client(server, "/close?code=%d&reason=%s" % (code, reason)) as ws:
            with pytest.raises(ConnectionClosed) as e:
                await asyncio.wait_for(ws.recv(), T)
        assert e.value.rcvd is not None
        assert (e.value.rcvd.code, e.value.rcvd.reason) == (code, reason)
        # websockets echoed the code: the app's receive() after its close says so
        assert (await _wait_for_event())["code"] == code


@aio()
async def test_websockets_client_close_code_reaches_the_application():
    ws_apps.events.clear()
    async with Server("h1") as server:
        ws = await _ws_client(server)
        await ws.send("one")
        assert await asyncio.wait_for(ws.recv(), T) == "one"
        await asyncio.wait_for(ws.close(4321, "done here"), T)
        assert ws.close_code == 4321   # (cno echoed the close frame)
        assert await _wait_for_event() == {"type": "websocket.disconnect", "code": 4321,
                                           "reason": "done here"}


@pytest.mark.parametrize("client, server", [(True, True), (False, True), (True, False)],
                         ids=["both", "client-off", "server-off"])
@aio()
async def test_websockets_client_permessage_deflate(client, server):
    async with Server("h1", ws_per_message_deflate=server) as srv:
        async with _ws_client(srv, compression="deflate" if client else None) as ws:
            extensions = ws.response.headers.get("sec-websocket-extensions") or ""
            assert extensions.startswith("permessage-deflate") is (client and server)
            for message in (COMPRESSIBLE, COMPRESSIBLE.encode() * 3, "short"):
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), T) == message


@aio()
async def test_websockets_client_subprotocol():
    async with Server("h1") as server:
        async with _ws_client(server, "/protocol", subprotocols=["one", "two"]) as ws:
            assert ws.subprotocol == "two"
            assert ws.response.headers["x-extra"] == "yes"
            assert await asyncio.wait_for(ws.recv(), T) == "two"


# -- cno's client against the websockets server ------------------------------------------

class WsServer:
    """``async with WsServer(**serve_options) as srv``: websockets' asyncio server on
    127.0.0.1 running ``handler`` (default: echo); ``srv.seen`` records what handlers
    saw (close codes, request headers, subprotocols)."""

    def __init__(self, handler=None, **options):
        self.handler = handler or self.echo
        self.options = options
        self.seen = []

    async def echo(self, ws):
        self.seen.append(("subprotocol", ws.subprotocol))
        self.seen.append(("extensions",
                          ws.response.headers.get("sec-websocket-extensions")))
        try:
            async for message in ws:
                await ws.send(message)
        except ConnectionClosed:
            pass
        self.seen.append(("closed", ws.close_code, ws.close_reason))

    async def __aenter__(self):
        self.options.setdefault("ping_interval", None)
        self._cm = ws_serve(self.handler, "127.0.0.1", 0, **self.options)
        self.server = await self._cm.__aenter__()
        self.url = "ws://127.0.0.1:%d" % self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        await asyncio.wait_for(self._cm.__aexit__(*exc), T)

    def connect(self, path="/", **options):
        options.setdefault("open_timeout", T)
        return cno.websocket.connect(self.url + path, **options)

    async def wait_seen(self, kind):
        for _ in range(int(T / 0.01)):
            found = [s for s in self.seen if s[0] == kind]
            if found:
                return found[-1]
            await asyncio.sleep(0.01)
        raise AssertionError("the websockets handler recorded no %r: %r" % (kind, self.seen))


@aio()
async def test_cno_client_text_and_binary():
    async with WsServer() as srv:
        async with srv.connect() as ws:
            assert not ws.http2
            for message in ("hello", "h\u00e9llo \u2603 \U0001f600", b"\x00\xff" * 5,
                            "x" * 70000, b"y" * 200000, b"", ""):
                await ws.send(message)
                got = await asyncio.wait_for(ws.recv(), T)
                assert got == message and type(got) is type(message)
        assert ws.close_code == 1000
        assert await srv.wait_seen("closed") == ("closed", 1000, "")


@pytest.mark.parametrize("compression", [None, "deflate"])
@aio()
async def test_cno_client_fragmented_from_the_server(compression):
    async def handler(ws):
        async def pieces(items):
            for item in items:
                yield item
        await ws.send(pieces(["frag", "ment", "ed \u00e9"]))
        await ws.send(pieces([b"\x01" * 100, b"\x02" * 70000, b"", b"\x03"]))
        await ws.send([COMPRESSIBLE, COMPRESSIBLE])   # (an iterable: fragments too)
        await ws.wait_closed()

    async with WsServer(handler, compression=compression) as srv:
        async with srv.connect(compression=compression) as ws:
            assert await asyncio.wait_for(ws.recv(), T) == "fragmented \u00e9"
            assert await asyncio.wait_for(ws.recv(), T) == \
                b"\x01" * 100 + b"\x02" * 70000 + b"\x03"
            assert await asyncio.wait_for(ws.recv(), T) == COMPRESSIBLE * 2


@pytest.mark.slow
@aio(30)
async def test_cno_client_16_mib_each_way():
    data = _big(2)
    async with WsServer(max_size=LIMIT, compression=None) as srv:
        async with srv.connect(max_size=LIMIT, compression=None) as ws:
            await asyncio.wait_for(ws.send(data), 10)
            got = await asyncio.wait_for(ws.recv(), 10)
            assert len(got) == BIG and got == data


@aio()
async def test_cno_client_ping_gets_websockets_pong():
    async with WsServer() as srv:
        async with srv.connect(ping_interval=None) as ws:
            pong = await ws.ping(b"from cno")
            reader = asyncio.ensure_future(ws.recv())   # (pongs are parsed by the reader)
            rtt = await asyncio.wait_for(pong, T)
            assert 0 <= rtt < T
            await ws.send("after the ping")
            assert await asyncio.wait_for(reader, T) == "after the ping"


@aio()
async def test_websockets_server_ping_gets_cno_pong():
    """websockets' server pings; the pong comes from cno's client while it reads."""
    async def handler(ws):
        pong = await ws.ping(b"from websockets")
        latency = await asyncio.wait_for(pong, T)
        await ws.send("pong after %s" % ("ok" if latency >= 0 else "?"))
        await ws.wait_closed()

    async with WsServer(handler) as srv:
        async with srv.connect(ping_interval=None) as ws:
            assert await asyncio.wait_for(ws.recv(), T) == "pong after ok"


@aio()
async def test_cno_client_keepalive_with_websockets():
    """cno's keepalive pings (0.05 s, 0.4 s to answer) get websockets' pongs (else 1011),
    and websockets' keepalive pings get cno's pongs (else websockets closes with 1011)."""
    async with WsServer(ping_interval=0.05, ping_timeout=0.4) as srv:
        async with srv.connect(ping_interval=0.05, ping_timeout=0.4) as ws:
            await asyncio.sleep(0.8)
            assert not ws.closed
            await ws.send("alive")
            assert await asyncio.wait_for(ws.recv(), T) == "alive"
        assert ws.close_code == 1000
        assert await srv.wait_seen("closed") == ("closed", 1000, "")


@pytest.mark.parametrize("code, reason", [(1001, ""), (4002, "server says bye")])
@aio()
async def test_cno_client_gets_the_servers_close(code, reason):
    async def handler(ws):
        await ws.close(code, reason)

    async with WsServer(handler) as srv:
        ws = await srv.connect()
        with pytest.raises(cno.WebSocketClosed) as e:
            await asyncio.wait_for(ws.recv(), T)
        assert (e.value.code, e.value.reason) == (code, reason)
        assert (ws.close_code, ws.close_reason) == (code, reason)


@aio()
async def test_cno_client_close_code_reaches_the_server():
    async with WsServer() as srv:
        ws = await srv.connect()
        await ws.send("one")
        assert await asyncio.wait_for(ws.recv(), T) == "one"
        await asyncio.wait_for(ws.close(4321, "done here"), T)
        assert await srv.wait_seen("closed") == ("closed", 4321, "done here")


@pytest.mark.parametrize("client, server", [(True, True), (False, True), (True, False)],
                         ids=["both", "client-off", "server-off"])
@aio()
async def test_cno_client_permessage_deflate(client, server):
    async with WsServer(compression="deflate" if server else None) as srv:
        async with srv.connect(compression="deflate" if client else None) as ws:
            extensions = dict(ws.response_headers).get(b"sec-websocket-extensions", b"")
            assert extensions.startswith(b"permessage-deflate") is (client and server)
            for message in (COMPRESSIBLE, COMPRESSIBLE.encode() * 3, "short"):
                await ws.send(message)
                assert await asyncio.wait_for(ws.recv(), T) == message
        seen = await srv.wait_seen("extensions")
        assert bool(seen[1] and seen[1].startswith("permessage-deflate")) is (client and server)


@aio()
async def test_cno_client_subprotocol_and_headers():
    async def handler(ws):
        srv.seen.append(("request", dict(ws.request.headers.raw_items())))
        await ws.send(ws.subprotocol or "none")
        await ws.wait_closed()

    async with WsServer(handler, subprotocols=["chat", "superchat"]) as srv:
        async with srv.connect(subprotocols=["v2.other", "superchat"],
                               headers=[("x-who", "cno"), ("origin", "http://example.test"),
                                        (b"cookie", b"a=1")]) as ws:
            assert ws.subprotocol == "superchat"
            assert await asyncio.wait_for(ws.recv(), T) == "superchat"
        request = (await srv.wait_seen("request"))[1]
        assert request["x-who"] == "cno"
        assert request["origin"] == "http://example.test"
        assert request["cookie"] == "a=1"
        assert request["sec-websocket-protocol"] == "v2.other, superchat"


@aio()
async def test_cno_client_no_common_subprotocol_is_refused():
    """websockets 17 refuses an offer with no subprotocol it supports (400): cno's client
    raises HandshakeError with that status."""
    async with WsServer(subprotocols=["chat"]) as srv:
        with pytest.raises(cno.HandshakeError) as e:
            await srv.connect(subprotocols=["other"])
        assert e.value.status == 400
        async with srv.connect(subprotocols=["other", "chat"]) as ws:
            assert ws.subprotocol == "chat"


@aio()
async def test_cno_client_refused_handshake_is_a_handshake_error():
    def refuse(connection, request):
        if request.path == "/secret":
            return connection.respond(http.HTTPStatus.FORBIDDEN, "go away\n")
        return None

    async with WsServer(process_request=refuse) as srv:
        with pytest.raises(cno.HandshakeError) as e:
            await srv.connect("/secret")
        assert e.value.status == 403
        async with srv.connect("/open") as ws:   # (the same server accepts elsewhere)
            await ws.send("fine")
            assert await asyncio.wait_for(ws.recv(), T) == "fine"


# -- Starlette under `cno serve`, over HTTP/1.1 and HTTP/2 --------------------------------

@pytest.fixture(scope="module")
def starlette_server():
    require_module("starlette")
    server = ServeProcess("ws_apps:starlette_app")
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2c"])
@aio()
async def test_starlette_under_cno_serve(starlette_server, http2):
    url = "ws://127.0.0.1:%d/ws" % starlette_server.port
    async with cno.websocket.connect(url, http2=http2, open_timeout=T) as ws:
        assert ws.http2 is http2
        await ws.send("hello")
        assert await asyncio.wait_for(ws.recv(), T) == "starlette: hello"
        await ws.send(b"\x01\x02\x03" * 30000)
        assert await asyncio.wait_for(ws.recv(), T) == (b"\x01\x02\x03" * 30000)[::-1]
    assert ws.close_code == 1000


@aio()
async def test_h2_client_extended_connect_to_cno_serve(starlette_server):
    """A client written here on h2 + wsproto's frames: SETTINGS_ENABLE_CONNECT_PROTOCOL
    advertised, CONNECT with :protocol websocket answered 200, masked frames (one of them
    fragmented) echoed by the Starlette endpoint, the closing handshake, the stream ended."""
    require_module("h2")
    import h2.config
    import h2.connection
    import h2.events
    import h2.exceptions
    import h2.settings
    from wsproto.frame_protocol import FrameProtocol, Opcode

    reader, writer = await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", starlette_server.port), T)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding=None))
    events = []

    async def pump(until):
        """Read and collect h2 events until ``until(event)`` is true for one; returns it."""
        while True:
            for i, event in enumerate(events):
                if until(event):
                    del events[:i + 1]
                    return event
            data = await asyncio.wait_for(reader.read(65536), T)
            assert data, "cno serve closed the connection; events: %r" % (events,)
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length,
                                                   event.stream_id)
                events.append(event)
            writer.write(conn.data_to_send())

    try:
        conn.initiate_connection()
        writer.write(conn.data_to_send())
        settings = await pump(lambda e: isinstance(e, h2.events.RemoteSettingsChanged))
        enable = settings.changed_settings.get(h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL)
        assert enable is not None and enable.new_value == 1
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [
            (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"),
            (b":path", b"/ws"), (b":authority", b"127.0.0.1:%d" % starlette_server.port),
            (b"sec-websocket-version", b"13"),
        ])
        writer.write(conn.data_to_send())
        response = await pump(lambda e: isinstance(e, h2.events.ResponseReceived))
        headers = dict(response.headers)
        assert response.stream_id == stream and headers[b":status"] == b"200", headers
        assert b"sec-websocket-accept" not in headers   # (RFC 8441 5: no key, no accept)

        frames = FrameProtocol(client=True, extensions=[])
        received = []

        async def send(data):
            # (what is sent here stays under the initial 65,535-byte windows)
            size = conn.max_outbound_frame_size
            for i in range(0, len(data), size):
                conn.send_data(stream, data[i:i + size])
            writer.write(conn.data_to_send())

        async def next_frame():
            while not received:
                event = await pump(lambda e: isinstance(
                    e, (h2.events.DataReceived, h2.events.StreamEnded, h2.events.StreamReset)))
                assert isinstance(event, h2.events.DataReceived), event
                frames.receive_bytes(event.data)
                received.extend(frames.received_frames())
            return received.pop(0)

        await send(frames.send_data("hello over h2"))
        frame = await next_frame()
        assert (frame.opcode, frame.payload, frame.message_finished) == \
            (Opcode.TEXT, "starlette: hello over h2", True)
        # a binary message in three fragments, a ping between two of them
        await send(frames.send_data(b"abc", fin=False))
        await send(frames.ping(b"h2 ping"))
        await send(frames.send_data(b"def" * 10000, fin=False))
        await send(frames.send_data(b"!", fin=True))
        frame = await next_frame()
        assert (frame.opcode, frame.payload) == (Opcode.PONG, b"h2 ping")
        payload = b""
        while True:
            frame = await next_frame()
            assert frame.opcode in (Opcode.BINARY, Opcode.CONTINUATION), frame
            payload += frame.payload
            if frame.message_finished:
                break
        assert payload == (b"abc" + b"def" * 10000 + b"!")[::-1]
        # the closing handshake: our close, the server's answer, then the stream ends
        await send(frames.close(4000, "h2 done"))
        frame = await next_frame()
        assert frame.opcode == Opcode.CLOSE and frame.payload[0] == 4000, frame
        # (the server's side of the stream ends after its close frame: END_STREAM, the
        # orderly close of RFC 8441 5; then, if our END_STREAM is not there yet, an
        # RST_STREAM NO_ERROR: test_h2_clean_close_is_not_a_cancel)
        ended = await pump(lambda e: isinstance(e, (h2.events.StreamEnded,
                                                    h2.events.StreamReset)))
        assert isinstance(ended, h2.events.StreamEnded) and ended.stream_id == stream
        try:
            conn.end_stream(stream)
        except h2.exceptions.StreamClosedError:
            pass   # (reset already)
        writer.write(conn.data_to_send())
        # the connection is still good for another request
        conn.send_headers(conn.get_next_available_stream_id(), [
            (b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/nothing"),
            (b":authority", b"127.0.0.1")], end_stream=True)
        writer.write(conn.data_to_send())
        response = await pump(lambda e: isinstance(e, h2.events.ResponseReceived))
        assert dict(response.headers)[b":status"] == b"404"
    finally:
        writer.close()


# -- hypercorn's WebSockets over HTTP/2 against cno's client -------------------------------

def _hypercorn(certs=None):
    require_module("hypercorn")

    def argv(port):
        a = [sys.executable, "-m", "hypercorn", "ws_apps:echo_app",
             "--bind", "127.0.0.1:%d" % port, "--workers", "1"]
        if certs is not None:
            a += ["--certfile", certs.cert_file, "--keyfile", certs.key_file]
        return a

    env = dict(os.environ)
    env["PYTHONPATH"] = str(TESTS) + os.pathsep + env.get("PYTHONPATH", "")
    return External(argv, cwd=TESTS, env=env)


@pytest.fixture(scope="module")
def hypercorn_ws():
    with _hypercorn() as srv:
        yield srv


@pytest.fixture(scope="module")
def hypercorn_ws_tls(certs):
    with _hypercorn(certs) as srv:
        yield srv


def _hypercorn_connect(mode, hypercorn_ws, hypercorn_ws_tls, certs, path="/echo", **options):
    options.setdefault("open_timeout", T)
    if mode == "h2c":
        return cno.websocket.connect("ws://127.0.0.1:%d%s" % (hypercorn_ws.port, path),
                                     http2=True, **options)
    return cno.websocket.connect("wss://127.0.0.1:%d%s" % (hypercorn_ws_tls.port, path),
                                 ssl=certs.client_context(("h2", "http/1.1")), **options)


@pytest.mark.parametrize("compression", [None, "deflate"])
@pytest.mark.parametrize("mode", ["h2c", "h2tls"])
@aio()
async def test_cno_client_to_hypercorn_over_http2(mode, compression, request):
    hc, hc_tls = request.getfixturevalue("hypercorn_ws"), None
    certs = None
    if mode == "h2tls":
        certs = request.getfixturevalue("certs")
        hc_tls = request.getfixturevalue("hypercorn_ws_tls")
    async with _hypercorn_connect(mode, hc, hc_tls, certs, compression=compression) as ws:
        assert ws.http2   # (extended CONNECT on an HTTP/2 stream, not an Upgrade)
        extensions = dict(ws.response_headers).get(b"sec-websocket-extensions", b"")
        assert extensions.startswith(b"permessage-deflate") is (compression == "deflate")
        for message in ("hello", b"\x00\xff" * 5, COMPRESSIBLE, b"z" * 300000, ""):
            await ws.send(message)
            got = await asyncio.wait_for(ws.recv(), T)
            assert got == message and type(got) is type(message)
        rtt = asyncio.ensure_future(ws.recv())
        pong = await ws.ping()
        await asyncio.wait_for(pong, T)
        await ws.send("after the ping")
        assert await asyncio.wait_for(rtt, T) == "after the ping"
    assert ws.close_code == 1000


@aio()
async def test_hypercorn_close_code_reaches_cno_over_http2(hypercorn_ws):
    url = "ws://127.0.0.1:%d/close?code=4001&reason=bye" % hypercorn_ws.port
    ws = await cno.websocket.connect(url, http2=True, open_timeout=T)
    assert ws.http2
    with pytest.raises(cno.WebSocketClosed) as e:
        await asyncio.wait_for(ws.recv(), T)
    assert (e.value.code, e.value.reason) == (4001, "bye")


@aio()
async def test_hypercorn_subprotocol_and_denial_over_http2(hypercorn_ws):
    base = "ws://127.0.0.1:%d" % hypercorn_ws.port
    async with cno.websocket.connect(base + "/protocol", http2=True, open_timeout=T,
                                     subprotocols=["one", "two"]) as ws:
        assert ws.http2 and ws.subprotocol == "two"
        assert await asyncio.wait_for(ws.recv(), T) == "two"
    with pytest.raises(cno.HandshakeError) as e:
        await cno.websocket.connect(base + "/deny", http2=True, open_timeout=T)
    assert e.value.status == 403


@aio(20)
async def test_many_cno_websockets_multiplexed_on_one_connection_to_hypercorn(hypercorn_ws):
    """Ten WebSockets and a request on one HTTP/2 connection (a cno.Client) to hypercorn.

    (The request goes while the WebSockets are open: hypercorn 0.18 forgets a WebSocket's
    stream once it has ended its own side, and the client's END_STREAM that follows
    raises KeyError in hypercorn's protocol/h2.py _handle_events (DataReceived, not
    guarded), which drops the whole connection; cno's client rightly ends its side.)"""
    client = await asyncio.wait_for(
        cno.connect("http://127.0.0.1:%d/" % hypercorn_ws.port, http2=True), T)
    try:
        assert client.is_http2
        sockets = [await cno.websocket.connect(
            "ws://127.0.0.1:%d/echo" % hypercorn_ws.port, client=client, open_timeout=T)
            for _ in range(10)]
        assert all(ws.http2 for ws in sockets)
        assert len({ws._payload._stream for ws in sockets}) == 10

        async def talk(i, ws):
            for j in range(20):
                message = ("%d/%d " % (i, j)) * (1 + 500 * (j % 3))
                await ws.send(message if j % 2 else message.encode())
                got = await ws.recv()
                assert got == (message if j % 2 else message.encode())

        async def get():
            response = await client.request("GET", "/")
            assert response.code == 200
            assert await response.payload.read() == b"http"

        await asyncio.wait_for(asyncio.gather(get(), *(talk(i, ws) for i, ws in
                                                       enumerate(sockets)), get()), 10)
        assert not client.closed
        await asyncio.wait_for(asyncio.gather(*(ws.close(4000 + i)
                                                for i, ws in enumerate(sockets))), T)
        assert [ws.close_code for ws in sockets] == [4000 + i for i in range(10)]
    finally:
        client.close()


@aio()
async def test_h2_clean_close_is_not_a_cancel():
    """RFC 8441 5: RST_STREAM CANCEL stands for a TCP reset (an abortive close). After a
    clean closing handshake cno serve ends its side (END_STREAM) and, if the client's
    END_STREAM is still on its way when the application returns, resets the stream with
    NO_ERROR, never CANCEL."""
    import h2.config
    import h2.connection
    import h2.events
    from wsproto.frame_protocol import FrameProtocol

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass

    async with asgi_server(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            conn.initiate_connection()
            conn.send_headers(1, [(":method", "CONNECT"), (":protocol", "websocket"),
                                  (":scheme", "http"), (":path", "/"),
                                  (":authority", "127.0.0.1"), ("sec-websocket-version", "13")])
            writer.write(conn.data_to_send())
            events = []
            while not any(isinstance(e, h2.events.ResponseReceived) for e in events):
                events += conn.receive_data(await asyncio.wait_for(reader.read(65536), 5))
            # our close frame, without END_STREAM
            conn.send_data(1, FrameProtocol(client=True, extensions=[]).close(1000))
            writer.write(conn.data_to_send())
            events = []
            deadline = asyncio.get_running_loop().time() + 0.5
            while asyncio.get_running_loop().time() < deadline:
                try:
                    data = await asyncio.wait_for(reader.read(65536), 0.1)
                except asyncio.TimeoutError:
                    continue
                if not data:
                    break
                events += conn.receive_data(data)
            assert any(isinstance(e, h2.events.StreamEnded) for e in events), events
            resets = [e for e in events if isinstance(e, h2.events.StreamReset)]
            assert all(e.error_code == 0 for e in resets), resets
        finally:
            writer.close()
