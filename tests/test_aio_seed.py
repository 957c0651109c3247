"""The seed's asyncio examples (seeds/libcno-readme.md, "Python API"), completed into
runnable programs and run as written: a cno server (``cno.Server`` under
``loop.create_server``) and cno clients (``cno.connect``, ``cno.Client`` under
``loop.create_connection``, ``cno.request``) talking over loopback.

Allowed departures from the seed (docs/aio.md): the explicit event loop argument is passed
as ``asyncio.get_running_loop()``; ``cno.Channel(n, loop=...)`` accepts ``loop``.

Modes: ``h1`` (http2=False), ``h2c`` (prior knowledge, http2=True), ``upgrade`` (plain
``http://``, which asks for ``Upgrade: h2c``), ``h2tls`` and ``h1tls`` (TLS with ALPN,
certificates from ``trustme``; skipped when it is not installed). Pushes are checked over
HTTP/2 only, and must arrive (libcno->libcno never received one).
"""
import asyncio
import ssl
import warnings

import pytest

import cno

from aio_local import HOST, T, aio, tls_contexts


class Mode:
    """How a client reaches the server, and what it should end up speaking."""

    def __init__(self, name):
        self.name = name
        self.tls = name.endswith("tls")
        self.h2 = name in ("h2c", "h2tls", "upgrade")
        self.scheme = "https" if self.tls else "http"
        if self.tls:
            alpn = ("h2", "http/1.1") if self.h2 else ("http/1.1",)
            self.server_ssl, self.client_ssl = tls_contexts(alpn)
        else:
            self.server_ssl = self.client_ssl = None
        # cno.connect's http2=: True (prior knowledge), False (HTTP/1.1 only), None (upgrade / ALPN)
        self.http2 = {"h1": False, "h2c": True, "upgrade": None, "h2tls": None, "h1tls": False}[name]

    def connect_kw(self):
        kw = {}
        if self.http2 is not None:
            kw["http2"] = self.http2
        if self.tls:
            kw["ssl"] = self.client_ssl
        return kw


MODES = ["h1", "h2c", "upgrade", "h2tls", "h1tls"]


@pytest.fixture(params=MODES)
def mode(request):
    return Mode(request.param)


# -- the seed's server, as written ---------------------------------------------------------

max_buffered_chunks = 4


def make_handle(log):
    """The seed's handle(), completed: records what it sees in ``log``."""

    async def handle(request: cno.Request):
        entry = {
            "method": request.method,  # :: str
            "path": request.path,  # :: str
            "headers": request.headers,  # :: [(str, str)]
            "conn": request.conn,  # :: cno.Server -- `protocol` (below)
        }
        entry["payload"] = await request.payload.read()
        log.append(entry)

        # Pushed resources inherit :authority and :scheme from the request unless overriden.
        entry["pushed"] = request.push('GET', '/index.css', [('x-extra-header', 'value')])

        all_data_is_available = not request.path.startswith("/channel")
        if all_data_is_available:
            await request.respond(200, [('content-length', '4')], b'!!!\n')
        elif request.path == "/channel-inline":
            # `Channel` is a subclass of `asyncio.Queue`.
            channel = cno.Channel(max_buffered_chunks, loop=request.conn.loop)
            await channel.put(b'!!!')  # this should preferably be done in a separate
            await channel.put(b'\n')   # coroutine, naturally.
            channel.close()
            # Or you can use any async iterable instead.
            await request.respond(200, [], channel)
        else:
            channel = cno.Channel(max_buffered_chunks, loop=request.conn.loop)

            async def feed():
                for chunk in (b'!', b'!', b'!', b'\n'):
                    await channel.put(chunk)
                    await asyncio.sleep(0.001)
                channel.close()

            feeder = asyncio.ensure_future(feed())
            await request.respond(200, [], channel)
            await feeder

    return handle


async def seed_server(event_loop, mode, log):
    handle = make_handle(log)
    make_protocol = lambda: cno.Server(event_loop, handle)  # noqa: E731
    ssl_context = None
    if mode.tls:
        # When using TLS, don't forget to tell clients you support HTTP 2:
        ssl_context = mode.server_ssl
        ssl_context.set_alpn_protocols(['h2', 'http/1.1'])
        if getattr(ssl, "HAS_NPN", False):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                try:
                    ssl_context.set_npn_protocols(['h2', 'http/1.1'])
                except (NotImplementedError, AttributeError):
                    pass
    server = await event_loop.create_server(make_protocol, HOST, 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    return server, port


async def stop(server):
    server.close()
    try:
        await asyncio.wait_for(server.wait_closed(), 2)
    except asyncio.TimeoutError:
        pass


def header(headers, name):
    return [v for k, v in headers if k == name]


# -- the seed's client, as written ---------------------------------------------------------


@aio()
async def test_seed_client_and_server(mode):
    event_loop = asyncio.get_running_loop()
    log = []
    server, port = await seed_server(event_loop, mode, log)
    url = '%s://127.0.0.1:%d/' % (mode.scheme, port)
    try:
        client = await asyncio.wait_for(cno.connect(event_loop, url, **mode.connect_kw()), T)
        assert client.loop is event_loop  # :: asyncio.BaseEventLoop -- `event_loop`
        assert isinstance(client.transport, asyncio.Transport)
        assert isinstance(client.is_http2, bool)
        assert client.scheme == mode.scheme
        assert client.authority == '127.0.0.1:%d' % port
        if mode.name == "upgrade":
            assert client.is_http2 is False  # HTTP/1.1 until the first request upgrades
            first = await asyncio.wait_for(client.request('GET', '/warmup', []), T)
            assert first.code == 200
            assert await asyncio.wait_for(first.payload.read(), T) == b'!!!\n'
        assert client.is_http2 is mode.h2

        response = await asyncio.wait_for(
            client.request('GET', '/', [('user-agent', 'libcno/0.1')]), T)  # cno.Response
        assert isinstance(response, cno.Response)
        assert response.code == 200  # :: int
        assert isinstance(response.headers, list)  # :: [(str, str)]
        assert header(response.headers, 'content-length') == ['4']
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'

        pushes = []

        async def collect():
            async for push in response.pushed:
                push.method   # :: str
                push.path     # :: str
                push.headers  # :: [(str, str)]
                pushes.append((push, await push.response))  # :: cno.Response

        await asyncio.wait_for(collect(), T)

        # What the server saw.
        req = [e for e in log if e["path"] == '/'][0]
        assert req["method"] == 'GET'
        assert ('user-agent', 'libcno/0.1') in req["headers"]
        assert req["headers"][0][0] in (':authority', ':scheme')
        assert dict(req["headers"][:2]) == {':authority': '127.0.0.1:%d' % port,
                                            ':scheme': mode.scheme}
        assert isinstance(req["conn"], cno.Server)
        assert req["conn"].loop is event_loop
        assert req["conn"].is_http2 is mode.h2
        assert req["payload"] == b''

        if mode.h2:
            assert req["pushed"] is True
            assert len(pushes) == 1, "the push promised with the response never arrived"
            push, pushed = pushes[0]
            assert push.method == 'GET'
            assert push.path == '/index.css'
            assert ('x-extra-header', 'value') in push.headers
            assert isinstance(pushed, cno.Response)
            assert pushed.code == 200
            assert await asyncio.wait_for(pushed.payload.read(), T) == b'!!!\n'
            # The pushed request inherited :authority and :scheme, and was served by handle().
            served = [e for e in log if e["path"] == '/index.css']
            assert served, "the server did not serve its own push through handle()"
            assert (':authority', '127.0.0.1:%d' % port) in served[0]["headers"]
            assert (':scheme', mode.scheme) in served[0]["headers"]
            assert ('x-extra-header', 'value') in served[0]["headers"]
        else:
            assert not req["pushed"]  # HTTP/1.1: push() is a no-op returning False
            assert pushes == []

        response = await asyncio.wait_for(client.request('POST', '/whatever', [], b'payload'), T)
        assert response.code == 200
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'
        assert [e["payload"] for e in log if e["method"] == 'POST'] == [b'payload']

        # `request`, like `respond`, also accepts `cno.Channel`s as payload.
        channel = cno.Channel(max_buffered_chunks, loop=event_loop)

        async def feed():
            for chunk in (b'pay', b'lo', b'ad'):
                await channel.put(chunk)
                await asyncio.sleep(0.001)
            channel.close()

        feeder = asyncio.ensure_future(feed())
        response = await asyncio.wait_for(client.request('POST', '/channel', [], channel), T)
        await feeder
        assert response.code == 200
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'
        assert [e["payload"] for e in log if e["method"] == 'POST'] == [b'payload', b'payload']

        response = await asyncio.wait_for(client.request('GET', '/channel-inline'), T)
        assert response.code == 200
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'

        client.close()
        for _ in range(100):
            if client.transport.is_closing():
                break
            await asyncio.sleep(0.01)
        assert client.transport.is_closing()
    finally:
        await stop(server)


@pytest.mark.parametrize("mode", ["h2c", "h2tls"], indirect=True)
@aio()
async def test_seed_push_cancel(mode):
    """``push.cancel()`` instead of ``await push.response``: the connection goes on."""
    event_loop = asyncio.get_running_loop()
    log = []
    server, port = await seed_server(event_loop, mode, log)
    try:
        client = await asyncio.wait_for(cno.connect(
            event_loop, '%s://127.0.0.1:%d/' % (mode.scheme, port), **mode.connect_kw()), T)
        response = await asyncio.wait_for(
            client.request('GET', '/', [('user-agent', 'libcno/0.1')]), T)
        seen = []

        async def collect():
            async for push in response.pushed:
                seen.append((push.method, push.path))
                push.cancel()

        await asyncio.wait_for(collect(), T)
        assert seen == [('GET', '/index.css')]
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'
        # A cancelled push does not disturb the connection.
        again = await asyncio.wait_for(client.request('GET', '/again'), T)
        assert again.code == 200
        assert await asyncio.wait_for(again.payload.read(), T) == b'!!!\n'
        client.close()
    finally:
        await stop(server)


@aio()
async def test_seed_client_protocol(mode):
    """``cno.Client(event_loop, authority=..., scheme=...)`` under ``loop.create_connection``."""
    event_loop = asyncio.get_running_loop()
    log = []
    server, port = await seed_server(event_loop, mode, log)
    try:
        # To simply create an `asyncio.Protocol`:
        if mode.name in ("h2c", "h1"):  # plain http: say which version (else Upgrade: h2c)
            client = cno.Client(event_loop, authority='127.0.0.1:%d' % port, scheme='http',
                                http2=mode.http2)
        else:  # exactly the seed's form
            client = cno.Client(event_loop, authority='127.0.0.1:%d' % port, scheme=mode.scheme)
        assert isinstance(client, asyncio.BaseProtocol)
        kw = {"ssl": mode.client_ssl, "server_hostname": HOST} if mode.tls else {}
        transport, protocol = await asyncio.wait_for(
            event_loop.create_connection(lambda: client, HOST, port, **kw), T)
        assert protocol is client
        assert client.transport is transport
        if mode.name in ("h2c", "h2tls"):
            assert client.is_http2
        response = await asyncio.wait_for(client.request('GET', '/', [('user-agent', 'libcno/0.1')]), T)
        assert response.code == 200
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'
        assert response.conn is client
        assert client.is_http2 is mode.h2
        req = [e for e in log if e["path"] == '/'][0]
        assert (':authority', '127.0.0.1:%d' % port) in req["headers"]
        assert (':scheme', mode.scheme) in req["headers"]
        client.close()
    finally:
        await stop(server)


@aio()
async def test_seed_request_shorthand(mode):
    """``cno.request(event_loop, 'GET', url)`` then ``response.conn.close()``."""
    event_loop = asyncio.get_running_loop()
    log = []
    server, port = await seed_server(event_loop, mode, log)
    try:
        url = '%s://127.0.0.1:%d/path?q=1' % (mode.scheme, port)
        # A shorthand for `cno.connect` followed by `client.request`:
        response = await asyncio.wait_for(
            cno.request(event_loop, 'GET', url, **mode.connect_kw()), T)
        assert response.code == 200
        assert await asyncio.wait_for(response.payload.read(), T) == b'!!!\n'
        assert isinstance(response.conn, cno.Client)
        assert [e["path"] for e in log if e["path"] != '/index.css'] == ['/path?q=1']
        response.conn.close()
        for _ in range(100):
            if response.conn.transport.is_closing():
                break
            await asyncio.sleep(0.01)
        assert response.conn.transport.is_closing()
    finally:
        await stop(server)


@aio()
async def test_seed_channel_loop_argument():
    """``cno.Channel(max_buffered_chunks, loop=...)``: the seed's form works on Python 3.10+
    (libcno's failed there), and the channel is an ``asyncio.Queue``."""
    event_loop = asyncio.get_running_loop()
    channel = cno.Channel(max_buffered_chunks, loop=event_loop)
    assert isinstance(channel, asyncio.Queue)
    assert channel.maxsize == max_buffered_chunks
    await channel.put(b'!!!')
    await channel.put(b'\n')
    channel.close()
    assert [chunk async for chunk in channel] == [b'!!!', b'\n']
