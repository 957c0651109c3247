"""cno.acgi (docs/acgi.md) against hypercorn, a real ASGI server in its own process:
HTTP/1.1, h2c by prior knowledge and by Upgrade, TLS with ALPN h2 and http/1.1.

hypercorn runs tests/aio_util.HYPERCORN_APP (echo, /big, /truncated, /until-disconnect,
/disconnects, /trailers, /early-hints). What hypercorn cannot show -- a connection lost
at a chosen phase, a RST_STREAM with a chosen code -- is tested in process against cno's
server and scripted servers (tests/test_acgi.py). Marked slow: each module starts two
hypercorn processes (CI runs them).
"""
import asyncio
import hashlib
import signal

import pytest

import cno
import cno.acgi
from cno.acgi import MessageError

from acgi_util import body_of, check_stream, header, is_last, recv, req, until_end
from aio_local import T, aio
from aio_util import hypercorn

pytestmark = pytest.mark.slow

MODES = ["h1", "h2c", "h2tls", "h1tls"]


class Target:
    """Where and how to reach hypercorn in one mode."""

    def __init__(self, mode, plain, tls, certs):
        self.mode = mode
        self.h2 = mode.startswith("h2")
        if mode.endswith("tls"):
            self.base = "https://127.0.0.1:%d" % tls.port
            self.kw = {"ssl": certs.client_context(), "http2": None if self.h2 else False}
        else:
            self.base = "http://127.0.0.1:%d" % plain.port
            self.kw = {"http2": self.h2}

    def url(self, path="/"):
        return self.base + path

    async def open(self, **options):
        kw = dict(self.kw, **options)
        conn = await asyncio.wait_for(cno.acgi.open_connection(self.url(), **kw), T)
        assert conn.http_version == ("h2" if self.h2 else "h11")
        return conn


def _target(request, hypercorn_plain, hypercorn_tls, certs):
    return Target(request.param, hypercorn_plain, hypercorn_tls, certs)


@pytest.fixture(params=MODES)
def target(request, hypercorn_plain, hypercorn_tls, certs):
    return _target(request, hypercorn_plain, hypercorn_tls, certs)


@pytest.fixture(params=["h2c", "h2tls"])
def h2target(request, hypercorn_plain, hypercorn_tls, certs):
    return _target(request, hypercorn_plain, hypercorn_tls, certs)


@pytest.fixture(params=["h1", "h1tls"])
def h1target(request, hypercorn_plain, hypercorn_tls, certs):
    return _target(request, hypercorn_plain, hypercorn_tls, certs)


def sha(data):
    return hashlib.sha256(data).hexdigest().encode()


BIG = bytes(range(256)) * 4096   # /big: 1 MiB


# -- a GET, a streamed POST, the two ways to read ------------------------------------------


@aio()
async def test_get(target):
    """docs/acgi.md, "Messages": every message of a GET, with its exact keys and types;
    the url's path and query are the request target (hypercorn echoes them)."""
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/hello?x=1&y=%20z"), headers=[(b"Accept", b"*/*")]))
        assert sid == 1
        messages = await until_end(conn.receive, sid)
    response, body, _, disconnect = check_stream(messages, sid, target.h2)
    assert disconnect is None and response["status_code"] == 200
    assert header(response["headers"], b"x-http-version") == [b"2" if target.h2 else b"1.1"]
    assert header(response["headers"], b"x-path") == [b"/hello?x=1&y=%20z"]
    assert header(response["headers"], b"x-scheme") == [target.base.split(":")[0].encode()]
    assert body == b"hello from hypercorn GET /hello?x=1&y=%20z\n"


@aio()
async def test_streamed_post(target):
    """docs/acgi.md: http.request with more_body=True, then http.request.body messages;
    hypercorn receives the whole body (its sha-256 and length come back)."""
    parts = [b"%05d;" % i * 300 for i in range(60)]
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/echo"), "POST", body=parts[0], more_body=True))
        for i, part in enumerate(parts[1:], 1):
            await conn.send({"type": "http.request.body", "body": part,
                             "more_body": i < len(parts) - 1, "stream_id": sid})
        response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, target.h2)
    whole = b"".join(parts)
    assert header(response["headers"], b"x-body-sha256") == [sha(whole)]
    assert header(response["headers"], b"x-body-length") == [str(len(whole)).encode()]
    assert body == whole


@aio()
async def test_big_response_as_messages_and_through_the_iterator(target):
    """docs/acgi.md, "Two ways to read a body": 1 MiB (more than the 65,535-byte HTTP/2
    stream window: it flows only as the application takes it) as http.response.body
    messages, then through ``body.read()``; both intact."""
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/big")))
        _, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, target.h2)
        assert body == BIG
        sid = await conn.send(req(target.url("/big")))
        await recv(conn.receive, sid)
        response = await recv(conn.receive, sid)
        assert response["type"] == "http.response"
        assert await asyncio.wait_for(response["body"].read(), T) == BIG
        with pytest.raises(MessageError):
            await conn.receive(sid)


@aio()
async def test_large_streamed_upload(target):
    """docs/acgi.md: request bodies go out as the server's windows and the socket allow:
    4 MiB in 64 KiB messages, all of it reaching hypercorn."""
    chunks = [bytes([i % 251]) * 65536 for i in range(64)]
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/upload"), "POST", more_body=True))
        for i, chunk in enumerate(chunks):
            await asyncio.wait_for(conn.send({"type": "http.request.body", "body": chunk,
                                              "more_body": i < len(chunks) - 1,
                                              "stream_id": sid}), T)
        response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, target.h2)
    assert header(response["headers"], b"x-body-sha256") == [sha(b"".join(chunks))]
    assert len(body) == 4 << 20


# -- concurrency -----------------------------------------------------------------------------


@aio()
async def test_ten_concurrent_requests_from_ten_tasks(h2target):
    """docs/acgi.md, "Concurrency": ten tasks, one HTTP/2 connection, each with
    receive(stream_id): every task gets its own response."""
    conn = await h2target.open()

    async def one(i):
        sid = await conn.send(req(h2target.url("/echo?i=%d" % i), "POST",
                                  body=b"<%d>" % i * (1000 * (i + 1))))
        response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, True)
        return sid, i, response, body

    try:
        results = await asyncio.wait_for(asyncio.gather(*[one(i) for i in range(10)]), T)
    finally:
        conn.close()
    assert sorted(r[0] for r in results) == list(range(1, 21, 2))
    for sid, i, response, body in results:
        assert header(response["headers"], b"x-path") == [b"/echo?i=%d" % i]
        assert body == b"<%d>" % i * (1000 * (i + 1))


@aio()
async def test_ten_concurrent_requests_one_task_bare_receive(h2target):
    """docs/acgi.md: the seed's bare receive() takes the next message of any stream; the
    stream_id on each tells them apart."""
    async with await h2target.open() as conn:
        paths = {}
        for i in range(10):
            paths[await conn.send(req(h2target.url("/big" if i % 3 == 0 else "/p%d" % i)))] = i
        per_stream = {sid: [] for sid in paths}
        running = set(paths)
        while running:
            message = await recv(conn.receive)
            per_stream[message["stream_id"]].append(message)
            if is_last(message):
                running.discard(message["stream_id"])
    for sid, i in paths.items():
        _, body, _, _ = check_stream(per_stream[sid], sid, True)
        assert body == (BIG if i % 3 == 0 else b"hello from hypercorn GET /p%d\n" % i)


@aio()
async def test_http1_requests_one_after_another(h1target):
    """docs/acgi.md: HTTP/1.1 exchanges are numbered 1, 3, 5 on one kept-alive connection;
    a request while one runs is a MessageError."""
    async with await h1target.open() as conn:
        for expected in (1, 3, 5):
            sid = await conn.send(req(h1target.url("/n%d" % expected)))
            assert sid == expected
            with pytest.raises(MessageError):
                await conn.send(req(h1target.url("/meanwhile")))
            _, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, False)
            assert body == b"hello from hypercorn GET /n%d\n" % expected


# -- disconnects and resets ----------------------------------------------------------------------


async def disconnects_seen(target):
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/disconnects")))
        body = body_of(await until_end(conn.receive, sid))
        return body.split(b",") if body else []


@aio()
async def test_client_disconnect_mid_response(target):
    """docs/acgi.md: the application's http.stream.disconnect resets the stream (HTTP/2
    RST_STREAM CANCEL; HTTP/1.1 closes the connection). hypercorn's application then
    receives ``http.disconnect`` (ASGI), which it records; over HTTP/2 the connection goes
    on."""
    before = len(await disconnects_seen(target))
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/until-disconnect")))
        await recv(conn.receive, sid)
        assert (await recv(conn.receive, sid))["type"] == "http.response"
        assert (await recv(conn.receive, sid))["type"] == "http.response.body"
        await conn.send({"type": "http.stream.disconnect", "stream_id": sid})
        with pytest.raises(MessageError):
            await conn.receive(sid)
        if target.h2:
            sid = await conn.send(req(target.url("/still")))
            assert body_of(await until_end(conn.receive, sid)) == b"hello from hypercorn GET /still\n"
        else:
            await asyncio.wait_for(conn.wait_closed(), T)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + T
    while True:
        seen = await disconnects_seen(target)
        if len(seen) > before or loop.time() > deadline:
            break
        await asyncio.sleep(0.02)
    assert seen[before:] == [b"http.disconnect"]


@aio()
async def test_truncated_http1_response_is_a_disconnect(h1target):
    """hypercorn closes an HTTP/1.1 connection whose application failed mid-body (50,000 of
    100,000 announced bytes): docs/acgi.md, http.stream.disconnect with code None ("None
    when the connection ended"), after the bytes that came; the iterator raises
    cno.ConnectionClosed. (Over HTTP/2 hypercorn leaves such a stream open, with neither
    END_STREAM nor RST_STREAM: nothing a client can tell apart from a slow server.)"""
    for how in ("messages", "iterator"):
        async with await h1target.open() as conn:
            sid = await conn.send(req(h1target.url("/truncated")))
            if how == "messages":
                messages = await until_end(conn.receive, sid)
                response, body, _, disconnect = check_stream(messages, sid, False)
                assert response is not None and len(body) == 50000
                assert disconnect is not None and disconnect["code"] is None
                assert disconnect["refused"] is False
            else:
                await recv(conn.receive, sid)
                response = await recv(conn.receive, sid)
                with pytest.raises(cno.ConnectionClosed):
                    await asyncio.wait_for(response["body"].read(), T)


@aio()
async def test_request_refused_during_graceful_shutdown(tmp_path):
    """A server reset from hypercorn: during its graceful shutdown (SIGTERM) it answers a
    new HTTP/2 request with RST_STREAM(NO_ERROR) while the running stream goes on: docs/
    acgi.md, http.stream.disconnect with that code (0), refused False (only REFUSED_STREAM
    or GOAWAY say "not processed", RFC 9113 8.7). Own hypercorn process."""
    with hypercorn(tmp_path) as srv:
        target_url = "http://127.0.0.1:%d" % srv.port
        async with await asyncio.wait_for(cno.acgi.open_connection(target_url, http2=True), T) as conn:
            running = await conn.send(req(target_url + "/until-disconnect"))
            await recv(conn.receive, running)
            await recv(conn.receive, running)
            srv.proc.send_signal(signal.SIGTERM)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + T
            while True:   # requests complete until hypercorn's worker sees the signal
                assert loop.time() < deadline, "hypercorn never refused a request"
                sid = await conn.send(req(target_url + "/late"))
                messages = await until_end(conn.receive, sid)
                _, _, _, disconnect = check_stream(messages, sid, True)
                if disconnect is not None:
                    break
                await asyncio.sleep(0.02)
            assert disconnect["code"] == 0 and disconnect["refused"] is False
            await conn.send({"type": "http.stream.disconnect", "stream_id": running})


# -- trailers, 1xx -------------------------------------------------------------------------------


@aio()
async def test_response_trailers(h2target):
    """hypercorn sends trailers over HTTP/2 to a request with ``te: trailers`` (RFC 9113
    8.1, 8.2.2): docs/acgi.md, http.response.trailers just before the last
    http.response.body; through the iterator, body.trailers."""
    async with await h2target.open() as conn:
        sid = await conn.send(req(h2target.url("/trailers"), "POST", body=b"checked",
                                  headers=[(b"te", b"trailers")]))
        messages = await until_end(conn.receive, sid)
        _, body, trailers, _ = check_stream(messages, sid, True)
        assert body == b"before the trailers"
        assert trailers == [(b"x-checksum", sha(b"checked"))]
        assert [m["type"] for m in messages][-2:] == ["http.response.trailers",
                                                      "http.response.body"]
        sid = await conn.send(req(h2target.url("/trailers"), headers=[(b"te", b"trailers")]))
        await recv(conn.receive, sid)
        response_body = (await recv(conn.receive, sid))["body"]
        assert await asyncio.wait_for(response_body.read(), T) == b"before the trailers"
        assert response_body.trailers == [(b"x-checksum", sha(b""))]


@aio()
async def test_100_continue(h1target):
    """hypercorn answers ``expect: 100-continue`` with 100 Continue over HTTP/1.1 (RFC 9110
    10.1.1): docs/acgi.md, http.response.informational (status_code 100) before the
    application sends the body; then the final response. (hypercorn does not over
    HTTP/2.)"""
    async with await h1target.open() as conn:
        sid = await conn.send(req(h1target.url("/echo"), "POST", more_body=True,
                                  headers=[(b"expect", b"100-continue")]))
        first = [await recv(conn.receive, sid), await recv(conn.receive, sid)]
        assert [m["type"] for m in first] == ["http.response.connection",
                                              "http.response.informational"]
        assert first[1]["status_code"] == 100
        await conn.send({"type": "http.request.body", "body": b"after the 100", "stream_id": sid})
        messages = first + await until_end(conn.receive, sid)
    _, body, _, _ = check_stream(messages, sid, False)
    assert body == b"after the 100"


@aio()
async def test_103_early_hints(h2target):
    """hypercorn's ASGI early-hint extension sends 103 over HTTP/2 (RFC 8297): an
    http.response.informational with its link header, then the final response."""
    async with await h2target.open() as conn:
        sid = await conn.send(req(h2target.url("/early-hints")))
        messages = await until_end(conn.receive, sid)
    _, body, _, _ = check_stream(messages, sid, True)
    hints = [m for m in messages if m["type"] == "http.response.informational"]
    assert [(m["status_code"], header(m["headers"], b"link")) for m in hints] == [
        (103, [b"</style.css>"])]
    assert body == b"hinted"


# -- bad messages, connect ----------------------------------------------------------------------


@aio()
async def test_bad_messages_leave_the_running_stream_working(target):
    """docs/acgi.md, "Errors": each bad message raises MessageError, "Nothing was written
    for it; other streams go on"."""
    async with await target.open() as conn:
        sid = await conn.send(req(target.url("/echo"), "POST", body=b"a", more_body=True))
        port = int(target.base.rsplit(":", 1)[1])
        for bad in ({"type": "http.request.body", "body": "str", "stream_id": sid},
                    {"type": "http.request.body", "body": b"x", "stream_id": sid + 2},
                    {"type": "http.nonsense"},
                    req("http://localhost:%d/" % port),
                    req(target.url("/"), headers=[("str", "headers")])):
            with pytest.raises(MessageError):
                await conn.send(bad)
        await conn.send({"type": "http.request.body", "body": b"b", "stream_id": sid})
        _, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, target.h2)
        assert body == b"ab"
        sid = await conn.send(req(target.url("/next")))
        assert sid == 3


@aio()
async def test_connect_runs_the_application(target):
    """docs/acgi.md: connect opens the connection (TLS with ALPN when https: hypercorn picks
    h2, or HTTP/1.1 with http2=False), returns what the application returns."""
    async def application(receive, send):
        sid = await send(req(target.url("/app")))
        messages = await until_end(receive, sid)
        return messages[0]["http_version"], body_of(messages)

    result = await asyncio.wait_for(cno.acgi.connect(target.url(), application, **target.kw), T)
    assert result == ("h2" if target.h2 else "h11", b"hello from hypercorn GET /app\n")


@aio()
async def test_upgrade_to_h2c(hypercorn_plain):
    """docs/acgi.md: http:// with upgrade=True asks to switch with ``Upgrade: h2c`` on the
    first request (RFC 7540 3.2); hypercorn agrees: that response and the next requests
    are HTTP/2."""
    url = "http://127.0.0.1:%d" % hypercorn_plain.port
    async with await asyncio.wait_for(cno.acgi.open_connection(url, upgrade=True), T) as conn:
        sid = await conn.send(req(url + "/first"))
        messages = await until_end(conn.receive, sid)
        assert messages[0]["http_version"] == "h11" and messages[1]["http_version"] == "2"
        assert body_of(messages) == b"hello from hypercorn GET /first\n"
        assert conn.http_version == "h2"
        sid = await conn.send(req(url + "/second"))
        assert sid == 3
        response, _, _, _ = check_stream(await until_end(conn.receive, sid), sid, True)
        assert header(response["headers"], b"x-http-version") == [b"2"]
