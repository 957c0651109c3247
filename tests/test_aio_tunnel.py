"""Tunnels through the asyncio layer (what WebSockets ride on): a server's start(101)
to an HTTP/1.1 Upgrade, and its 200 to an HTTP/2 extended CONNECT (RFC 8441), carry
bytes both ways through ``request.payload`` / ``request.write`` on the server and a
StreamReceiver / ``send_data`` on the client."""
import asyncio

import pytest

import cno
from aio_local import T, aio, served


class Tunnel(cno.aio.StreamReceiver):
    """A client end: the head as a future, the bytes in a Payload."""

    def __init__(self, client):
        self.client = client
        self.head = client.loop.create_future()
        self.payload = None

    def on_response(self, code, headers):
        self.payload = cno.Payload(self.client, self.stream)
        self.head.set_result((code, headers))

    def on_data(self, data):
        self.payload._feed(data)

    def on_tail(self, trailers):
        self.payload._feed_eof()

    def on_end(self, exc):
        if not self.head.done():
            self.head.set_exception(exc or cno.ConnectionClosed("no response"))
        if self.payload is not None:
            self.payload._fail(exc or cno.ConnectionClosed("ended"))


async def echo(request):
    """Answer the tunnel request, then echo its bytes until the peer ends them."""
    if request.http_version == "2":
        assert request.method == "CONNECT"
        assert (":protocol", "echo") in request.headers
        await request.start(200)
    else:
        assert ("upgrade", "echo") in request.headers
        await request.start(101, [("upgrade", "echo")])
    while True:
        try:
            data = await request.payload.read(65536)
        except cno.StreamReset:
            return
        if not data:
            break
        await request.write(data.upper())
    await request.end()


async def open_tunnel(client, peer):
    tunnel = Tunnel(client)
    if client.is_http2:
        await asyncio.wait_for(client.settings_received, T)
        assert client.remote_settings["enable_connect_protocol"] == 1
        headers = [(":scheme", "http"), (":authority", peer.authority), (":protocol", "echo")]
        method = "CONNECT"
    else:
        headers = [(":scheme", "http"), (":authority", peer.authority), ("upgrade", "echo")]
        method = "GET"
    tunnel.stream = await client.open_stream(method, "/t", headers, tunnel)
    return tunnel


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_tunnel_carries_bytes_both_ways(mode):
    async with served(mode, echo, enable_connect_protocol=True) as peer:
        client = await peer.connect()
        tunnel = await open_tunnel(client, peer)
        code, headers = await asyncio.wait_for(tunnel.head, T)
        assert code == (200 if mode == "h2c" else 101)
        big = b"x" * 300000   # more than a window and a read buffer
        for data in (b"hello", big):
            # (sent while read: the echo blocks on our window while we do not read)
            sent = asyncio.ensure_future(client.send_data(tunnel.stream, data))
            got = await asyncio.wait_for(tunnel.payload.readexactly(len(data)), T)
            assert got == data.upper()
            await sent
        await client.send_data(tunnel.stream, b"", True)
        if mode == "h2c":   # the stream is half-closed: the server ends its side too
            assert await asyncio.wait_for(tunnel.payload.read(), T) == b""
        else:               # HTTP/1.1 has no half-close: ending the tunnel closes it
            assert client.closed


@aio()
async def test_h1_tunnel_takes_bytes_sent_with_the_head():
    """Bytes right behind the Upgrade request (in the same segment) reach the tunnel."""
    async with served("h1", echo) as peer:
        reader, writer = await asyncio.open_connection("127.0.0.1", peer.port)
        writer.write(b"GET / HTTP/1.1\r\nhost: x\r\nupgrade: echo\r\nconnection: upgrade\r\n\r\n"
                     b"early")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        assert head.startswith(b"HTTP/1.1 101 ")
        assert await asyncio.wait_for(reader.readexactly(5), T) == b"EARLY"
        writer.close()


@aio()
async def test_extended_connect_needs_the_setting():
    """RFC 8441 3: without SETTINGS_ENABLE_CONNECT_PROTOCOL the server advertises 0 and a
    :protocol request is refused (a stream error: PROTOCOL_ERROR)."""
    async with served("h2c", echo) as peer:
        client = await peer.connect()
        await asyncio.wait_for(client.settings_received, T)
        assert client.remote_settings.get("enable_connect_protocol", 0) == 0
        tunnel = Tunnel(client)
        headers = [(":scheme", "http"), (":authority", peer.authority), (":protocol", "echo")]
        with pytest.raises(cno.CnoError):
            tunnel.stream = await client.open_stream("CONNECT", "/t", headers, tunnel)
            await asyncio.wait_for(tunnel.head, T)


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_an_idle_tunnel_outlives_the_progress_timeout(mode):
    """A tunnel's reader waiting on the peer is not a slow peer: the server's progress
    check (which drops peers that move fewer than min_progress_rate bytes a second)
    leaves it alone; its protocol has its own keepalive."""
    async with served(mode, echo, enable_connect_protocol=True, progress_timeout=0.2,
                      min_progress_rate=10 ** 6) as peer:
        client = await peer.connect()
        tunnel = await open_tunnel(client, peer)
        await asyncio.wait_for(tunnel.head, T)
        await asyncio.sleep(0.6)
        await client.send_data(tunnel.stream, b"still here")
        assert await asyncio.wait_for(tunnel.payload.readexactly(10), T) == b"STILL HERE"


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@aio()
async def test_a_tunnel_left_open_by_its_handler_ends(mode):
    async def leave(request):
        await request.start(200 if request.http_version == "2" else 101,
                            [] if request.http_version == "2" else [("upgrade", "echo")])

    async with served(mode, leave, enable_connect_protocol=True) as peer:
        client = await peer.connect()
        tunnel = await open_tunnel(client, peer)
        await asyncio.wait_for(tunnel.head, T)
        if mode == "h2c":   # RST_STREAM(CANCEL)
            with pytest.raises(cno.StreamReset):
                await asyncio.wait_for(tunnel.payload.read(), T)
        else:               # the connection closes: the end of the tunnel's bytes
            assert await asyncio.wait_for(tunnel.payload.read(), T) == b""
            await asyncio.wait_for(client.wait_closed(), T)


@aio()
async def test_101_only_answers_an_upgrade():
    failures = []

    async def wrong(request):
        try:
            await request.start(101)
        except cno.UsageError as e:
            failures.append(e)
            await request.respond(200, data=b"no")

    async with served("h1", wrong) as peer:
        client = await peer.connect()
        response = await client.request("GET", "/")
        assert response.code == 200 and await response.payload.read() == b"no"
        assert len(failures) == 1
