"""WebSockets end to end between cno's own sides: ``cno.websocket.connect`` against
``cno.asgi.serve`` running tests/ws_apps.py, over HTTP/1.1 (Upgrade, RFC 6455 4) and over
HTTP/2 (extended CONNECT, RFC 8441), plain and TLS: the ASGI websocket scope (spec 2.4),
the handshake's answers (accept, subprotocol, denial with 403 or a full response, 400 and
426 for bad requests), messages both ways, close codes both ways, limits (1009),
keepalive (1011), backpressure, several WebSockets on one HTTP/2 connection."""
import asyncio
import json
import socket

import pytest

import cno
import cno.websocket

import ws_apps
from aio_local import T, aio, tls_contexts
from test_asgi import asgi_server

MODES = ["h1", "h2c", "h2tls", "h1tls"]


class Server:
    """cno.asgi.serve running ws_apps.echo_app (options: Config's), for one mode."""

    def __init__(self, mode, app=ws_apps.echo_app, **options):
        self.mode = mode
        self.tls = mode.endswith("tls")
        self.options = options
        self.app = app
        if self.tls:
            self.server_ssl, self.client_ssl = tls_contexts(
                ("h2", "http/1.1") if mode.startswith("h2") else ("http/1.1",))

    async def __aenter__(self):
        options = dict(self.options)
        if self.tls:
            certs = _cert_files(self.server_ssl)
            options.update(certfile=certs[0], keyfile=certs[1])
        self._ctx = asgi_server(self.app, lifespan="off", **options)
        url = await self._ctx.__aenter__()
        self.base = url.replace("http://", "wss://" if self.tls else "ws://")
        return self

    async def __aexit__(self, *exc):
        await self._ctx.__aexit__(*exc)

    def connect(self, path="/echo", **options):
        options.setdefault("http2", {"h2c": True, "h1tls": False}.get(self.mode))
        if self.tls:
            options.setdefault("ssl", self.client_ssl)
        return cno.websocket.connect(self.base + path, **options)


_CERTS = {}


def _cert_files(context):
    """The trustme certificate as files (cno.asgi.serve takes certfile/keyfile)."""
    import tempfile
    from aio_local import _TLS
    if "files" not in _CERTS:
        cert = _TLS["cert"]
        d = tempfile.mkdtemp(prefix="cno-ws-")
        certfile, keyfile = d + "/cert.pem", d + "/key.pem"
        cert.private_key_pem.write_to_path(keyfile)
        with open(certfile, "wb") as f:
            for blob in cert.cert_chain_pems:
                f.write(blob.bytes())
        _CERTS["files"] = (certfile, keyfile)
    return _CERTS["files"]


@pytest.mark.parametrize("mode", MODES)
@aio(20)
async def test_echo_text_and_binary(mode):
    async with Server(mode) as server:
        async with server.connect() as ws:
            assert ws.http2 is mode.startswith("h2")
            for message in ("hello", "h\u00e9llo \u2603 \U0001f600", b"\x00\xff" * 5,
                            "x" * 70000, b"y" * 200000):
                await ws.send(message)
                got = await asyncio.wait_for(ws.recv(), T)
                assert got == message and type(got) is type(message)
        assert ws.close_code == 1000
        await asyncio.sleep(0.05)
        assert ws_apps.events[-1]["type"] == "websocket.disconnect"
        assert ws_apps.events[-1]["code"] == 1000


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_scope(mode):
    async with Server(mode) as server:
        async with server.connect("/scope?a=1", subprotocols=["chat"],
                                  headers=[("x-who", "test")]) as ws:
            scope = json.loads(await asyncio.wait_for(ws.recv(), T))
            with pytest.raises(cno.WebSocketClosed):
                await ws.recv()
    assert scope["type"] == "websocket"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["scheme"] == "ws"
    assert scope["http_version"] == ("2" if mode == "h2c" else "1.1")
    assert scope["path"] == "/scope" and scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1"
    assert scope["subprotocols"] == ["chat"]
    assert "method" not in scope
    headers = dict(scope["headers"])
    assert headers["x-who"] == "test" and headers["sec-websocket-version"] == "13"
    assert headers["host"].startswith("127.0.0.1:")
    assert not any(name.startswith(":") for name, _ in scope["headers"])
    assert "websocket.http.response" in scope["extensions"]


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_subprotocol_and_extra_headers(mode):
    async with Server(mode) as server:
        async with server.connect("/protocol", subprotocols=["one", "two"]) as ws:
            assert ws.subprotocol == "two"
            assert (b"x-extra", b"yes") in ws.response_headers
            assert await asyncio.wait_for(ws.recv(), T) == "two"


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_close_before_accept_is_a_403(mode):
    async with Server(mode) as server:
        with pytest.raises(cno.HandshakeError) as e:
            await server.connect("/deny")
        assert e.value.status == 403


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_http_response_extension_denies_with_a_response(mode):
    async with Server(mode) as server:
        with pytest.raises(cno.HandshakeError) as e:
            await server.connect("/response")
        assert e.value.status == 418


@pytest.mark.parametrize("code, reason", [(1000, ""), (4001, "bye"), (1011, "oops")])
@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_server_close_codes_reach_the_client(mode, code, reason):
    ws_apps.events.clear()
    async with Server(mode) as server:
        ws = await server.connect("/close?code=%d&reason=%s" % (code, reason))
        with pytest.raises(cno.WebSocketClosed) as e:
            await asyncio.wait_for(ws.recv(), T)
        assert (e.value.code, e.value.reason) == (code, reason)
        assert (ws.close_code, ws.close_reason) == (code, reason)
        await asyncio.sleep(0.05)
        # the server's receive() after its close: the disconnect, with the code echoed
        assert ws_apps.events[-1]["type"] == "websocket.disconnect"
        assert ws_apps.events[-1]["code"] == code


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_client_close_code_reaches_the_application(mode):
    ws_apps.events.clear()
    async with Server(mode) as server:
        ws = await server.connect()
        await ws.send("one")
        assert await ws.recv() == "one"
        await ws.close(4321, "done here")
        for _ in range(100):
            if ws_apps.events:
                break
            await asyncio.sleep(0.01)
        assert ws_apps.events == [{"type": "websocket.disconnect", "code": 4321,
                                   "reason": "done here"}]


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_application_error_closes_with_1011(mode):
    async with Server(mode) as server:
        ws = await server.connect("/raise")
        with pytest.raises(cno.WebSocketClosed) as e:
            await asyncio.wait_for(ws.recv(), T)
        assert e.value.code == 1011


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_message_over_ws_max_size_closes_with_1009(mode):
    async with Server(mode, ws_max_size=1000) as server:
        ws = await server.connect()
        await ws.send(b"x" * 1000)
        assert await ws.recv() == b"x" * 1000
        await ws.send(b"x" * 1001)
        with pytest.raises(cno.WebSocketClosed) as e:
            await asyncio.wait_for(ws.recv(), T)
        assert e.value.code == 1009


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_client_limit_closes_with_1009(mode):
    async with Server(mode) as server:
        ws = await server.connect("/count", max_size=100)
        await ws.send("101")
        with pytest.raises(cno.WebSocketClosed) as e:
            await asyncio.wait_for(ws.recv(), T)
        assert e.value.code == 1009


@pytest.mark.parametrize("deflate", [True, False])
@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_permessage_deflate_on_and_off(mode, deflate):
    async with Server(mode, ws_per_message_deflate=deflate) as server:
        async with server.connect() as ws:
            extensions = dict(ws.response_headers).get(b"sec-websocket-extensions", b"")
            assert extensions.startswith(b"permessage-deflate") is deflate
            text = "compressible " * 5000
            await ws.send(text)
            assert await asyncio.wait_for(ws.recv(), T) == text


@aio()
async def test_many_websockets_share_one_http2_connection():
    async with Server("h2c") as server:
        client = await cno.connect(server.base.replace("ws://", "http://"), http2=True)
        try:
            sockets = [await server.connect(client=client) for _ in range(20)]
            assert len({ws._payload._stream for ws in sockets}) == 20

            async def talk(i, ws):
                for j in range(5):
                    await ws.send("%d/%d" % (i, j))
                    assert await ws.recv() == "%d/%d" % (i, j)
                await ws.close()

            await asyncio.wait_for(asyncio.gather(*(talk(i, ws) for i, ws in enumerate(sockets))), T)
            assert not client.closed   # (the connection outlives its WebSockets)
            response = await client.request("GET", "/")
            assert await response.payload.read() == b"http"
        finally:
            client.close()


@pytest.mark.parametrize("version, status", [(b"12", 426), (None, 426)])
@aio()
async def test_bad_handshakes_get_400_or_426(version, status):
    async with Server("h1") as server:
        port = int(server.base.rsplit(":", 1)[1].rstrip("/"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = (b"GET /echo HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\nconnection: upgrade\r\n"
                b"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
        if version is not None:
            head += b"sec-websocket-version: " + version + b"\r\n"
        writer.write(head + b"\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        assert answer.startswith(b"HTTP/1.1 %d " % status)
        assert b"sec-websocket-version: 13" in answer.lower()
        writer.close()


@aio()
async def test_bad_key_gets_400():
    async with Server("h1") as server:
        port = int(server.base.rsplit(":", 1)[1].rstrip("/"))
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /echo HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                     b"connection: upgrade\r\nsec-websocket-key: short\r\n"
                     b"sec-websocket-version: 13\r\n\r\n")
        answer = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        assert answer.startswith(b"HTTP/1.1 400 ")
        writer.close()


@aio()
async def test_ws_none_leaves_upgrades_to_the_http_scope():
    async with Server("h1", ws="none") as server:
        with pytest.raises(cno.HandshakeError) as e:
            await server.connect()
        assert e.value.status == 200   # the application's HTTP answer


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_keepalive_ping_timeout_closes_with_1011(mode):
    """The server pings every 0.1 s and gives a pong 0.1 s; a client that takes in
    nothing (so never answers) is closed with 1011: the application's receive() gets
    the disconnect with that code."""
    ws_apps.events.clear()
    async with Server(mode, ws_ping_interval=0.1, ws_ping_timeout=0.1) as server:
        ws = await server.connect(ping_interval=None)
        ws._payload.divert(lambda data: None)   # (this client hears nothing)
        for _ in range(100):
            if ws_apps.events:
                break
            await asyncio.sleep(0.02)
        assert ws_apps.events == [{"type": "websocket.disconnect", "code": 1011,
                                   "reason": "keepalive ping timeout"}]
        ws.abort()


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_keepalive_answered_keeps_the_websocket_open(mode):
    async with Server(mode, ws_ping_interval=0.05, ws_ping_timeout=0.2) as server:
        async with server.connect(ping_interval=0.05, ping_timeout=0.2) as ws:
            await asyncio.sleep(0.6)   # (the client's timer parses the server's pings)
            await ws.send("alive")
            assert await asyncio.wait_for(ws.recv(), T) == "alive"
            rtt = await asyncio.wait_for(await ws.ping(), T)
            assert 0 <= rtt < T


@aio()
async def test_backpressure_stops_a_client_the_application_does_not_read():
    """HTTP/2: the application does not call receive(); the server takes MAX_QUEUE
    messages for it, then stops crediting the stream, whose window (H2_WINDOW) fills:
    the client's send waits."""
    async with Server("h2c") as server:
        ws = await server.connect("/idle", compression=None)   # (bytes on the wire)
        sent = 0
        with pytest.raises(asyncio.TimeoutError):
            while sent < 10 ** 7:
                await asyncio.wait_for(ws.send(b"x" * 16384), 0.5)
                sent += 16384
        limit = (cno.websocket.MAX_QUEUE + 1) * 16384 + cno.websocket.connection.H2_WINDOW
        assert limit - 3 * 16384 < sent <= limit, sent
        ws.abort()


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_the_websocket_is_not_dropped_as_a_slow_peer(mode):
    """An idle WebSocket outlives the server's progress timeout and keep-alive timeout."""
    async with Server(mode, timeout_keep_alive=0.2, ws_ping_interval=None) as server:
        async with server.connect(ping_interval=None) as ws:
            await asyncio.sleep(0.7)
            await ws.send("still here")
            assert await asyncio.wait_for(ws.recv(), T) == "still here"


@aio()
async def test_client_url_errors():
    with pytest.raises(ValueError):
        cno.websocket.connect("http://127.0.0.1/")
    with pytest.raises(ValueError):
        cno.websocket.connect("ws://127.0.0.1/#frag")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(OSError):
        await cno.websocket.connect("ws://127.0.0.1:%d/" % port)


@aio()
async def test_messages_before_a_protocol_error_are_delivered():
    """A message and a broken frame in one segment: the application still receives the
    message, then the disconnect (1002); the client gets a close frame with 1002."""
    from cno._ws import Codec
    received = []

    async def app(scope, receive, send):
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            received.append(message)
            if message["type"] == "websocket.disconnect":
                return

    async with asgi_server(app, lifespan="off") as url:
        port = int(url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: websocket\r\n"
                     b"connection: upgrade\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"sec-websocket-version: 13\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)).startswith(
            b"HTTP/1.1 101 ")
        codec = Codec(True)
        writer.write(codec.message("first") + b"\x83\x80" + b"\x00" * 4)   # opcode 3
        events = []
        while not events:
            data = await asyncio.wait_for(reader.read(65536), T)
            assert data
            events += codec.feed(data)
        assert events[0][0] == cno.websocket.OP_CLOSE and events[0][1][0] == 1002
        writer.close()
        for _ in range(100):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert received == [{"type": "websocket.receive", "text": "first"},
                            {"type": "websocket.disconnect", "code": 1002,
                             "reason": "unknown opcode"}]
