"""A peer speaking another protocol to a plaintext cno server is dropped on its first bytes,
not after the header timeout (issue 8): a TLS client (``https://`` against an ``http`` port)
fails at once instead of hanging."""
import asyncio
import ssl

import pytest

import cno
from aio_local import HOST, aio

# Long enough that only the early rejection can explain a close within FAST.
HEADER_TIMEOUT = 30.0
FAST = 1.0


async def _ok(request):
    await request.respond(200, [], b"ok")


class _Plaintext:
    """``async with _Plaintext() as port``: a cno server with a long header timeout."""

    async def __aenter__(self):
        self.service = await cno.serve(_ok, HOST, 0, header_timeout=HEADER_TIMEOUT)
        return self.service.sockets[0].getsockname()[1]

    async def __aexit__(self, *exc):
        self.service.close()


async def _closed_within(reader, seconds):
    """Everything the server sent before it closed, or a failure if it is still open."""
    data = await asyncio.wait_for(reader.read(), seconds)
    assert reader.at_eof()
    return data


@aio()
async def test_tls_client_hello_on_plaintext_port_closed_at_once():
    async with _Plaintext() as port:
        reader, writer = await asyncio.open_connection(HOST, port)
        # The first bytes of a real ClientHello: handshake record, TLS 1.0 record version.
        writer.write(bytes.fromhex("16030100c4010000c00303") + bytes(32))
        started = asyncio.get_running_loop().time()
        assert await _closed_within(reader, FAST) == b""   # no HTTP answer to a TLS peer
        assert asyncio.get_running_loop().time() - started < FAST
        writer.close()


@aio()
async def test_binary_garbage_gets_400_and_close_at_once():
    async with _Plaintext() as port:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"\x00\x01\x02\x03")
        data = await _closed_within(reader, FAST)
        assert data.startswith(b"HTTP/1.1 400 "), data
        writer.close()


@aio()
async def test_https_client_against_plaintext_port_fails_fast():
    async with _Plaintext() as port:
        started = asyncio.get_running_loop().time()
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            await asyncio.wait_for(cno.connect("https://%s:%d/" % (HOST, port)), FAST * 2)
        assert asyncio.get_running_loop().time() - started < FAST
