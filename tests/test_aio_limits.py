"""The asyncio server's limits against peers that misbehave (issue 10, docs/aio.md
"Limits"): SETTINGS never acknowledged, bodies that trickle in, responses nobody reads,
pipelined input that piles up, GOAWAYs that must leave before the close, and closed
connections that leave nothing for the cycle collector. In process, on loopback, with
raw sockets as the misbehaving peer and short timeouts."""
import asyncio
import gc
import socket
import struct

import pytest

import cno
from cno.errors import UsageError

from aio_local import HOST, aio

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS, SETTINGS_ACK = b"\0\0\0\x04\0\0\0\0\0", b"\0\0\0\x04\x01\0\0\0\0"
GOAWAY, RST_STREAM = 7, 3
BIG = b"z" * (8 << 20)


def frame(type_, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([type_, flags]) + \
        struct.pack(">I", stream) + payload


def get_headers(stream, end_stream=True):
    # :method GET, :scheme http, :path /, :authority a (static table and a literal)
    block = b"\x82\x86\x84\x41\x01a"
    return frame(1, 0x4 | (0x1 if end_stream else 0), stream, block)


def frames(data):
    """(type, flags, stream, payload) of each whole frame in data (after the preface)."""
    out, pos = [], 0
    while pos + 9 <= len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        if pos + 9 + n > len(data):
            break
        out.append((data[pos + 3], data[pos + 4],
                    int.from_bytes(data[pos + 5:pos + 9], "big") & 0x7FFFFFFF,
                    data[pos + 9:pos + 9 + n]))
        pos += 9 + n
    return out


async def handle(request):
    if request.path == "/big":
        await request.respond(200, [], BIG)
    elif request.path == "/upload":
        body = await request.payload.read()
        await request.respond(200, [], str(len(body)).encode())
    elif request.path == "/slow":
        await asyncio.sleep(1.0)
        await request.respond(200, [], b"late")
    else:
        await request.respond(200, [], b"ok")


class RawPeer:
    """A non-blocking socket driven with the loop's sock_* calls (no asyncio transport)."""

    def __init__(self, loop, sock):
        self.loop, self.sock = loop, sock

    @classmethod
    async def open(cls, port, rcvbuf=None):
        sock = socket.socket()
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, (HOST, port))
        return cls(loop, sock)

    async def send(self, data):
        await self.loop.sock_sendall(self.sock, data)

    async def read_all(self, timeout=5.0):
        """Everything until EOF (or a reset); TimeoutError if it does not end in time."""
        out = bytearray()

        async def reader():
            while True:
                try:
                    chunk = await self.loop.sock_recv(self.sock, 65536)
                except ConnectionResetError:
                    return
                if not chunk:
                    return
                out.extend(chunk)

        await asyncio.wait_for(reader(), timeout)
        return bytes(out)

    def close(self):
        self.sock.close()


async def serve(**options):
    service = await cno.serve(handle, HOST, 0, **options)
    return service, service.sockets[0].getsockname()[1]


def goaway_codes(data):
    return [int.from_bytes(p[4:8], "big") for t, _, _, p in frames(data) if t == GOAWAY]


@aio()
async def test_settings_never_acknowledged_ends_with_settings_timeout():
    # RFC 9113 6.5.3: SETTINGS not acknowledged within a reasonable time -> connection
    # error SETTINGS_TIMEOUT (0x4). docs/aio.md settings_timeout.
    service, port = await serve(settings_timeout=0.3)
    peer = await RawPeer.open(port)
    try:
        await peer.send(PREFACE + SETTINGS)   # our SETTINGS, never an ACK of the server's
        data = await peer.read_all(timeout=3)
        assert goaway_codes(data[len(b""):]) == [0x4]
    finally:
        peer.close()
        service.close()


@aio()
async def test_acknowledged_settings_keep_the_connection():
    service, port = await serve(settings_timeout=0.3, idle_timeout=1.2)
    peer = await RawPeer.open(port)
    try:
        await peer.send(PREFACE + SETTINGS + SETTINGS_ACK)
        await asyncio.sleep(0.8)
        await peer.send(get_headers(1))
        data = await peer.read_all(timeout=3)    # until the idle timeout closes it
        assert [f[0] for f in frames(data) if f[2] == 1][:1] == [1]   # HEADERS answered
        assert 0x4 not in goaway_codes(data)
    finally:
        peer.close()
        service.close()


@aio()
async def test_budget_goaway_is_flushed_before_the_close():
    # Issue 10 finding 8: the GOAWAY of a budget often never reached the attacker (only a
    # FIN or RST did): closing a socket with unread input sends a RST, which destroys
    # what the peer has not read yet. Rapid reset with reset_budget 5, the attacker still
    # sending (4 MB) when the budget breaks, reading only afterwards.
    service, port = await serve(limits={"reset_budget": 5})
    peer = await RawPeer.open(port)
    try:
        burst = b"".join(get_headers(2 * i + 1, end_stream=False)
                         + frame(RST_STREAM, 0, 2 * i + 1, b"\0\0\0\x08")
                         for i in range(100000))
        try:
            await peer.send(PREFACE + SETTINGS + SETTINGS_ACK + burst)
        except (BrokenPipeError, ConnectionResetError):
            pass
        data = await peer.read_all(timeout=5)
        assert goaway_codes(data) == [0xB]      # ENHANCE_YOUR_CALM, then the close
    finally:
        peer.close()
        service.close()


@pytest.mark.parametrize("pipelined", [1, 200])
@aio()
async def test_connection_close_response_survives_unread_pipelined_input(pipelined):
    # RFC 9112 9.6: a server closing right after its last response risks a RST that
    # destroys it; the close is staged (FIN, then input drained). The client pipelined
    # more requests behind a "connection: close" one and reads only afterwards.
    service, port = await serve()
    peer = await RawPeer.open(port)
    try:
        await peer.send(b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"
                        + b"GET / HTTP/1.1\r\nhost: a\r\n\r\n" * pipelined)
        data = await peer.read_all(timeout=5)
        assert data.startswith(b"HTTP/1.1 200 OK\r\n") and data.endswith(b"ok")
    finally:
        peer.close()
        service.close()


@aio()
async def test_unknown_limit_is_refused():
    with pytest.raises(UsageError, match="unknown limit"):
        cno.Server(None, handle, limits={"reset_bugdet": 5})
    s = cno.Server(None, handle, limits={"reset_budget": 5, "stream_error_budget": 7,
                                         "max_header_count": 50})
    assert (s.reset_budget, s.stream_error_budget, s.max_header_count) == (5, 7, 50)


@aio(timeout=20)
async def test_trickling_upload_is_dropped():
    # Issue 10 finding 3: uploads at 1 byte every few seconds were never dropped. A handler
    # awaits the body, the peer moves 10 bytes a second, less than min_progress_rate.
    service, port = await serve(progress_timeout=0.5, min_progress_rate=100)
    peer = await RawPeer.open(port)
    try:
        await peer.send(b"POST /upload HTTP/1.1\r\nhost: a\r\ncontent-length: 1000\r\n\r\n")
        t0 = asyncio.get_running_loop().time()

        async def trickle():
            for _ in range(100):
                await peer.send(b"x")
                await asyncio.sleep(0.1)

        task = asyncio.ensure_future(trickle())
        data = await peer.read_all(timeout=5)
        elapsed = asyncio.get_running_loop().time() - t0
        task.cancel()
        assert data == b""            # dropped, never answered
        assert elapsed < 3.0
    finally:
        peer.close()
        service.close()


@aio(timeout=20)
async def test_steady_upload_and_slow_handler_are_not_dropped():
    # Waiting on the application is not waiting on the peer; a body that arrives at a
    # fair rate passes.
    service, port = await serve(progress_timeout=0.3, min_progress_rate=100)
    try:
        client = await cno.connect("http://%s:%d/" % (HOST, port), http2=False)

        async def body():
            for _ in range(10):
                yield b"y" * 100
                await asyncio.sleep(0.1)

        r = await client.request("POST", "/upload", [], body())
        assert await r.payload.read() == b"1000"
        r = await client.request("GET", "/slow")
        assert await r.payload.read() == b"late"
        client.close()
    finally:
        service.close()


@pytest.mark.parametrize("http2", [False, True])
@aio(timeout=20)
async def test_response_nobody_reads_is_dropped_and_freed(http2):
    # Issue 10 finding 3: non-reading clients of large responses were held open. The
    # writer waits on the transport; the peer reads nothing; after a progress period the
    # connection goes, and the handler's respond() fails instead of waiting forever.
    failures = []

    async def big(request):
        try:
            await request.respond(200, [], BIG)
        except cno.CnoError as e:
            failures.append(e)

    service = await cno.serve(big, HOST, 0, progress_timeout=0.4, min_progress_rate=1000)
    port = service.sockets[0].getsockname()[1]
    peer = await RawPeer.open(port, rcvbuf=4096)
    try:
        if http2:
            window = frame(4, 0, 0, struct.pack(">HI", 4, 0x7FFFFFFF))   # stream windows
            await peer.send(PREFACE + SETTINGS + window + SETTINGS_ACK
                            + frame(8, 0, 0, struct.pack(">I", 0x7FFFFFFF - 65535))
                            + get_headers(1))
        else:
            await peer.send(b"GET /big HTTP/1.1\r\nhost: a\r\n\r\n")
        for _ in range(60):
            await asyncio.sleep(0.1)
            if failures and not service._connections:
                break
        assert failures, "respond() still waiting"
        assert not service._connections
    finally:
        peer.close()
        service.close()


@aio(timeout=20)
async def test_pipelined_input_is_bounded_while_a_response_is_written():
    # Issue 10 finding 5: after GET /big, a client pipelining GETs without reading grew
    # one connection to 3 GB. Reading stops once max_pending_input is buffered unparsed.
    service, port = await serve(max_pending_input=32768, progress_timeout=None)
    peer = await RawPeer.open(port, rcvbuf=4096)
    try:
        await peer.send(b"GET /big HTTP/1.1\r\nhost: a\r\n\r\n")
        await asyncio.sleep(0.2)
        flood = b"GET / HTTP/1.1\r\nhost: a\r\n\r\n" * 4000    # 104 KB per send
        sent = 0

        async def pipeline():
            nonlocal sent
            while True:
                await peer.send(flood)
                sent += len(flood)

        task = asyncio.ensure_future(pipeline())
        await asyncio.sleep(1.0)
        task.cancel()
        [conn] = service._connections
        assert conn.buffered_input <= 32768 + 65536       # the limit plus one read
        assert sent < 20 << 20                            # the sender was stopped too
    finally:
        peer.close()
        service.close()


@aio()
async def test_connections_share_one_read_buffer():
    # Issue 10 part 4: an idle connection holds no read buffer of its own.
    a, b = cno.Server(None, handle), cno.Server(None, handle)
    assert a.get_buffer(-1) is b.get_buffer(-1)


@aio(timeout=30)
async def test_closed_connections_leave_nothing_for_the_cycle_collector():
    # Issue 10 finding 9: closed connections were freed only by the cycle collector. With
    # the collector off, connections that end normally, by the peer's close, by a
    # protocol error, by a budget, and a cno client's, leave no cno object, transport or
    # future behind in reference cycles.
    service, port = await serve(limits={"reset_budget": 2})
    loop = asyncio.get_running_loop()
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            for data in (b"GET / HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
                         b"GET / HTTP/1.1\r\nhost: a\r\ncontent-length: 1\r\n"
                         b"content-length: 2\r\n\r\n",
                         PREFACE + SETTINGS + frame(8, 0, 0, b"\0\0\0\0"),
                         PREFACE + SETTINGS + SETTINGS_ACK + b"".join(
                             get_headers(2 * i + 1, False)
                             + frame(RST_STREAM, 0, 2 * i + 1, b"\0\0\0\x08")
                             for i in range(5))):
                peer = await RawPeer.open(port)
                await peer.send(data)
                await peer.read_all(timeout=3)
                peer.close()
            client = await cno.connect("http://%s:%d/" % (HOST, port))
            r = await client.request("POST", "/upload", [], b"abc")
            assert await r.payload.read() == b"3"
            client.close()
            await client.wait_closed()
            del client, r
        for _ in range(5):
            await asyncio.sleep(0.05)
        assert not service._connections
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [o for o in gc.garbage
                if type(o).__module__.startswith(("cno", "asyncio"))
                or isinstance(o, (asyncio.BaseTransport, asyncio.Future))]
        gc.garbage.clear()
        assert not left, sorted({type(o).__name__ for o in left})
    finally:
        gc.set_debug(0)
        gc.enable()
        service.close()
        del loop
