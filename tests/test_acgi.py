"""cno.acgi (docs/acgi.md) end to end against cno's own server (``cno.serve``) in process,
and against scripted servers (python-hyper h2, hand-written HTTP/1.1) for what cno's
server never does (GOAWAY with a low last-stream-id, 100 Continue over HTTP/2, exact
RST_STREAM codes and WINDOW_UPDATEs seen on the wire).

Modes: ``h1`` (http2=False), ``h2c`` (prior knowledge), ``h2tls`` (TLS, ALPN h2),
``h1tls`` (TLS, ALPN http/1.1). Each check quotes the rule of docs/acgi.md (or the RFC)
it tests. Every step is bounded by ``T`` seconds; nothing sleeps longer than a poll.
"""
import asyncio
import hashlib
import socket
import ssl

import h2.events
import pytest

import cno
import cno.acgi
from cno.acgi import MessageError

from acgi_util import (
    ScriptedH2, ScriptedTCP, body_of, check_stream, header, is_last, open_acgi, read_head,
    recv, req, until_end,
)
from aio_local import HOST, T, aio, served, tls_contexts
from aio_util import free_port

MODES = ["h1", "h2c", "h2tls", "h1tls"]
H2_MODES = ["h2c", "h2tls"]
CANCEL, REFUSED_STREAM, INTERNAL_ERROR, ENHANCE_YOUR_CALM = 0x8, 0x7, 0x2, 0xB


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture(params=["h1", "h2c"])
def plain(request):
    """The two plaintext modes (what TLS adds is covered by the tests over ``mode``)."""
    return request.param


@pytest.fixture(params=H2_MODES)
def h2mode(request):
    return request.param


def is_h2(mode):
    return mode.startswith("h2")


def sha(data):
    return hashlib.sha256(data).hexdigest()


async def settle(probe, rounds=3, step=0.01, limit=1.0):
    """Poll ``probe()`` until it returns the same value ``rounds`` times in a row (a
    producer stalled by backpressure), within ``limit`` seconds; returns that value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    last, same = probe(), 0
    while same < rounds and loop.time() < deadline:
        await asyncio.sleep(step)
        now = probe()
        same = same + 1 if now == last else 0
        last = now
    return last


async def echo(request):
    """The body back, with what the server saw in x- headers."""
    body = await request.payload.read()
    fields = dict(request.headers)
    await request.respond(200, [
        ("x-method", request.method), ("x-path", request.path),
        ("x-content-length", fields.get("content-length", "none")),
        ("x-trailers", repr(request.trailers)), ("x-sha", sha(body)),
    ], body)


# -- a GET, a streamed POST, the exact messages -------------------------------------------------


@aio()
async def test_get_every_message_and_key(mode):
    """docs/acgi.md, "Messages": send(http.request) returns the stream id; the stream's
    messages are http.response.connection (http_version "h11"/"h2", the same stream_id),
    http.response (acgi {"version": "1.0"}, http_version "1.1"/"2", status_code int,
    headers as lowercase bytes pairs, more_body, body, stream_id), http.response.body
    messages, the last with more_body False. The url's path and query are the target,
    its fragment is dropped (RFC 9110 4.2.4); header names are lowercased."""
    seen = []

    async def handle(request):
        seen.append((request.method, request.path, request.headers))
        await request.respond(200, [("content-type", "text/plain"), ("x-answer", "42")],
                              b"hello acgi")

    async with served(mode, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await asyncio.wait_for(conn.send(req(
                peer.url("/p/q?x=1&y=%20#fragment"),
                headers=[(b"Accept", b"text/plain"), [b"x-list", b"pair as a list"]])), T)
            assert type(sid) is int and sid == 1
            messages = await until_end(conn.receive, sid)
    assert messages[0] == {"type": "http.response.connection",
                           "http_version": "h2" if is_h2(mode) else "h11", "stream_id": sid}
    response, body, trailers, disconnect = check_stream(messages, sid, is_h2(mode))
    assert disconnect is None and trailers is None
    assert response["status_code"] == 200 and response["more_body"] is True
    assert header(response["headers"], b"x-answer") == [b"42"]
    assert header(response["headers"], b"content-type") == [b"text/plain"]
    assert body == b"hello acgi"
    method, path, headers = seen[0]
    assert (method, path) == ("GET", "/p/q?x=1&y=%20")
    assert ("accept", "text/plain") in headers and ("x-list", "pair as a list") in headers
    assert (":authority", peer.authority) in headers
    assert ("content-length", "0") not in headers   # no body: nothing to announce


@aio()
async def test_streamed_post(mode):
    """docs/acgi.md: http.request with more_body=True, then http.request.body messages
    (stream_id may be left out when exactly one stream's request is open); the server
    gets the whole body. With more_body the length is unknown: no content-length is added
    (HTTP/1.1 uses chunked framing); with the whole body in http.request, one is added."""
    parts = [b"first part;", b"", bytearray(b"second part;"), memoryview(b"x" * 70000), b"end"]
    whole = b"".join(bytes(p) for p in parts)
    async with served(mode, echo) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/upload"), "POST", body=parts[0], more_body=True))
            await conn.send({"type": "http.request.body", "body": parts[1], "more_body": True,
                             "stream_id": sid})
            await conn.send({"type": "http.request.body", "body": parts[2], "more_body": True})
            await conn.send({"type": "http.request.body", "body": parts[3], "more_body": True,
                             "stream_id": sid})
            assert await conn.send({"type": "http.request.body", "body": parts[4],
                                    "stream_id": sid}) is None   # more_body defaults to False
            response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid,
                                                is_h2(mode))
            assert body == whole
            assert header(response["headers"], b"x-method") == [b"POST"]
            assert header(response["headers"], b"x-content-length") == [b"none"]

            sid = await conn.send(req(peer.url("/whole"), "POST", body=b"all at once"))
            response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid,
                                                is_h2(mode))
            assert body == b"all at once"
            assert header(response["headers"], b"x-content-length") == [b"11"]


@aio()
async def test_response_read_as_body_messages(mode):
    """docs/acgi.md: a streamed response arrives as http.response.body messages, every
    chunk in order, the last with more_body False."""
    chunks = [b"%04d:" % i + b"z" * 3000 for i in range(40)]

    async def handle(request):
        async def gen():
            for c in chunks:
                yield c
                await asyncio.sleep(0)
        await request.respond(200, [], gen())

    async with served(mode, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            messages = await until_end(conn.receive, sid)
    _, body, _, disconnect = check_stream(messages, sid, is_h2(mode))
    assert disconnect is None and body == b"".join(chunks)
    assert sum(m["type"] == "http.response.body" for m in messages) > 1


@aio()
async def test_response_read_through_the_body_iterator(mode):
    """docs/acgi.md, "Two ways to read a body": ``async for chunk in message["body"]``
    yields non-empty bytes until the end; ``await body.read()`` joins the rest. From then
    on the stream belongs to the iterator: receive(stream_id) raises MessageError."""
    chunks = [b"%04d:" % i + b"y" * 5000 for i in range(30)]

    async def handle(request):
        async def gen():
            for c in chunks:
                yield c
                await asyncio.sleep(0)
        await request.respond(200, [("x-n", str(len(chunks)))], gen())

    async with served(mode, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/a")))
            assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
            response = await recv(conn.receive, sid)
            assert response["type"] == "http.response" and response["more_body"]
            body = response["body"]
            assert isinstance(body, cno.acgi.ResponseBody) and body.stream_id == sid
            got = []
            async for chunk in body:
                assert type(chunk) is bytes and chunk
                got.append(chunk)
            assert b"".join(got) == b"".join(chunks)
            assert body.trailers is None
            assert [c async for c in body] == []   # ended: iterating again yields nothing
            with pytest.raises(MessageError):
                await recv(conn.receive, sid)

            # read(): the same, joined; after one chunk was taken by the iterator.
            sid = await conn.send(req(peer.url("/b")))
            assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
            body = (await recv(conn.receive, sid))["body"]
            first = await asyncio.wait_for(body.__anext__(), T)
            rest = await asyncio.wait_for(body.read(), T)
            assert first + rest == b"".join(chunks)
            assert await body.read() == b""


@pytest.mark.parametrize("method,status", [("HEAD", 200), ("GET", 204), ("GET", 304),
                                           ("GET", 200)])
@aio()
async def test_response_ended_by_its_head_has_more_body_false(plain, method, status):
    """docs/acgi.md, http.response: more_body is "False when the response ended with its
    head (HEAD, 204, 304, an empty body): no body message follows" -- also when the
    application is already waiting in receive() when the head arrives. RFC 9110 9.3.2,
    15.3.5, 15.4.5: no content after HEAD, 204, 304."""
    release = asyncio.Event()

    async def handle(request):
        await release.wait()
        if method == "HEAD":
            await request.respond(200, [("content-length", "5")], b"")
        else:
            await request.respond(status, [], b"")

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            for waiting in (True, False):
                release.clear()
                sid = await conn.send(req(peer.url("/"), method))
                assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
                if waiting:
                    task = asyncio.ensure_future(recv(conn.receive, sid))
                    await asyncio.sleep(0)
                    release.set()
                    response = await task
                else:
                    release.set()
                    await asyncio.sleep(0.02)
                    response = await recv(conn.receive, sid)
                assert response["status_code"] == status
                assert response["more_body"] is False, "a body message would follow"
                check_stream([{"type": "http.response.connection", "stream_id": sid,
                               "http_version": conn.http_version}, response], sid, is_h2(plain))
                assert await asyncio.wait_for(response["body"].read(), T) == b""
                # Nothing follows: the stream is finished.
                with pytest.raises(MessageError):
                    await recv(conn.receive, sid)


# -- concurrency ---------------------------------------------------------------------------------


def gathered(n, answer):
    """A handler that holds every request until ``n`` are running at once (so they truly
    overlap on the connection), then answers them in reverse order of arrival."""
    arrived = []
    all_in = asyncio.Event()

    async def handle(request):
        body = await request.payload.read()
        mine = asyncio.Event()
        arrived.append(mine)
        if len(arrived) == n:
            all_in.set()
        await asyncio.wait_for(all_in.wait(), T)
        index = arrived.index(mine)
        if index < n - 1:
            await asyncio.wait_for(arrived[index + 1].wait(), T)   # reverse order
        await answer(request, body)
        mine.set()

    return handle


async def answer_path(request, body):
    await request.respond(200, [("x-path", request.path)],
                          (request.path + ":").encode() * 2000 + body)


@aio()
async def test_ten_concurrent_requests_from_ten_tasks(h2mode):
    """docs/acgi.md, "Concurrency": over HTTP/2 any number of tasks send requests on one
    connection at once; each uses the stream id send returned and ``receive(stream_id)``
    never takes another stream's message (issue 9: demultiplexed by stream_id)."""
    async with served(h2mode, gathered(10, answer_path)) as peer:
        conn = await open_acgi(peer)

        async def one(i):
            path = "/task/%d" % i
            sid = await conn.send(req(peer.url(path), "POST", body=b"<%d>" % i))
            messages = await until_end(conn.receive, sid)
            response, body, _, _ = check_stream(messages, sid, True)
            return sid, path, response, body

        try:
            results = await asyncio.wait_for(asyncio.gather(*[one(i) for i in range(10)]), T)
        finally:
            conn.close()
    assert sorted(sid for sid, _, _, _ in results) == list(range(1, 21, 2))
    for i, (sid, path, response, body) in enumerate(results):
        assert header(response["headers"], b"x-path") == [path.encode()]
        assert body == (path + ":").encode() * 2000 + b"<%d>" % i


@aio()
async def test_ten_concurrent_requests_one_task_bare_receive(h2mode):
    """docs/acgi.md: the seed's bare ``receive()`` returns the next message of any stream,
    every message tagged with its stream_id; per stream the order holds."""
    async with served(h2mode, gathered(10, answer_path)) as peer:
        async with await open_acgi(peer) as conn:
            paths = {}
            for i in range(10):
                sid = await conn.send(req(peer.url("/bare/%d" % i)))
                paths[sid] = "/bare/%d" % i
            per_stream = {sid: [] for sid in paths}
            open_ = set(paths)
            while open_:
                message = await recv(conn.receive)
                per_stream[message["stream_id"]].append(message)
                if is_last(message):
                    open_.discard(message["stream_id"])
            # Nothing is left, and the connection is still there: a bare receive waits.
            waiting = asyncio.ensure_future(conn.receive())
            await asyncio.sleep(0.01)
            assert not waiting.done()
            waiting.cancel()
    for sid, messages in per_stream.items():
        response, body, _, _ = check_stream(messages, sid, True)
        assert header(response["headers"], b"x-path") == [paths[sid].encode()]
        assert body == (paths[sid] + ":").encode() * 2000


@aio()
async def test_stream_ids_1_3_5(mode):
    """docs/acgi.md: "over HTTP/1.1 the exchanges are numbered 1, 3, 5, ... as on HTTP/2";
    HTTP/1.1 requests go one after another on one connection (keep-alive)."""
    conns = set()

    async def handle(request):
        conns.add(request.conn)
        await request.respond(200, [], request.path.encode())

    async with served(mode, handle) as peer:
        async with await open_acgi(peer) as conn:
            for i, expected in enumerate([1, 3, 5]):
                sid = await conn.send(req(peer.url("/%d" % i)))
                assert sid == expected
                _, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, is_h2(mode))
                assert body == b"/%d" % i
            # docs/acgi.md: max_streams is the server's MAX_CONCURRENT_STREAMS (cno's
            # default is 100) on HTTP/2, one on HTTP/1.1.
            assert conn.max_streams == (100 if is_h2(mode) else 1)
    assert len(conns) == 1, "one connection for the three requests"


@aio()
async def test_send_waits_for_max_concurrent_streams(h2mode):
    """docs/acgi.md: "On HTTP/2, when the server's SETTINGS_MAX_CONCURRENT_STREAMS is
    reached, it waits for a stream to end" (RFC 9113 5.1.2); conn.max_streams tells it."""
    release = asyncio.Event()

    async def handle(request):
        if request.path != "/warm":
            await release.wait()
        await request.respond(200, [], b"ok")

    async with served(h2mode, handle, max_concurrent_streams=2) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/warm")))    # the server's SETTINGS are in
            await until_end(conn.receive, sid)
            assert conn.max_streams == 2
            first = [await conn.send(req(peer.url("/%d" % i))) for i in range(2)]
            third = asyncio.ensure_future(conn.send(req(peer.url("/third"))))
            await asyncio.sleep(0.02)
            assert not third.done(), "a third stream went past the server's limit"
            release.set()
            sid3 = await asyncio.wait_for(third, T)
            for sid in first + [sid3]:
                _, body, _, disconnect = check_stream(await until_end(conn.receive, sid), sid, True)
                assert disconnect is None and body == b"ok"


# -- two ways to read a body ------------------------------------------------------------------


def streaming(chunks, release=None):
    async def handle(request):
        async def gen():
            for i, c in enumerate(chunks):
                if i == 1 and release is not None:
                    await release.wait()
                yield c
        await request.respond(200, [], gen())
    return handle


@aio()
async def test_iterating_after_a_body_message_raises(plain):
    """docs/acgi.md, "Two ways to read a body": receiving an http.response.body of the
    stream claims it for messages: "iterating body then raises MessageError"; the
    messages go on."""
    chunks = [b"a" * 100, b"b" * 100, b"c" * 100]
    release = asyncio.Event()   # (the rest after the first message: not in the same read)
    async with served(plain, streaming(chunks, release)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            response = await recv(conn.receive, sid)
            first = await recv(conn.receive, sid)
            assert first["type"] == "http.response.body"
            with pytest.raises(MessageError):
                await response["body"].__anext__()
            with pytest.raises(MessageError):
                await response["body"].read()
            release.set()
            rest = await until_end(conn.receive, sid)
            assert first["body"] + body_of(rest) == b"".join(chunks)


@aio()
async def test_receive_after_the_iterator_started_raises(plain):
    """docs/acgi.md: once the iterator is used, "receive(stream_id) raises MessageError";
    the iterator still gets every chunk."""
    chunks = [b"a" * 100, b"b" * 100, b"c" * 100]
    async with served(plain, streaming(chunks)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            body = (await recv(conn.receive, sid))["body"]
            first = await asyncio.wait_for(body.__anext__(), T)
            with pytest.raises(MessageError):
                await recv(conn.receive, sid)
            assert first + await asyncio.wait_for(body.read(), T) == b"".join(chunks)


@aio()
async def test_bare_receive_skips_an_iterator_stream(h2mode):
    """docs/acgi.md: an iterator-claimed stream's messages go to the iterator only:
    "receive() skips the stream" -- a bare receive() gets the other streams' messages,
    never a chunk of the claimed one, whether queued before or arriving while it waits."""
    release = asyncio.Event()
    chunks = [b"A" * 1000, b"B" * 1000, b"C" * 1000]

    async def handle(request):
        if request.path == "/claimed":
            await streaming(chunks, release)(request)
        else:
            await release.wait()
            await request.respond(200, [], b"other")

    async with served(h2mode, handle) as peer:
        async with await open_acgi(peer) as conn:
            claimed = await conn.send(req(peer.url("/claimed")))
            assert (await recv(conn.receive, claimed))["type"] == "http.response.connection"
            body = (await recv(conn.receive, claimed))["body"]
            first = await asyncio.wait_for(body.__anext__(), T)
            other = await conn.send(req(peer.url("/other")))
            # A bare receive waits while the claimed stream's chunks arrive: it gets only
            # the other stream's messages.
            bare = []

            async def take():
                while True:
                    message = await conn.receive()
                    bare.append(message)
                    if is_last(message):
                        return

            taker = asyncio.ensure_future(take())
            await asyncio.sleep(0.01)
            release.set()
            await asyncio.wait_for(taker, T)
            rest = await asyncio.wait_for(body.read(), T)
    assert first + rest == b"".join(chunks)
    assert {m["stream_id"] for m in bare} == {other}
    _, got, _, _ = check_stream(bare, other, True)
    assert got == b"other"


# -- the client's http.stream.disconnect ---------------------------------------------------------


def endless_upload_sink(outcome):
    """A handler that answers at once with a body that never ends, then reads the
    request body (still open): what ends the read is what the client did."""
    async def handle(request):
        if request.path == "/after":
            await request.respond(200, [], b"still here")
            return
        outcome["conn"] = request.conn
        channel = cno.Channel(1)
        responding = asyncio.ensure_future(request.respond(200, [], channel))
        responding.add_done_callback(lambda t: t.cancelled() or t.exception())
        await channel.put(b"z" * 1000)
        try:
            while await request.payload.read():
                pass
            outcome["read"] = "eof"
        except cno.StreamReset as e:
            outcome["read"] = ("reset", e.code)
        except cno.CnoError as e:
            outcome["read"] = type(e).__name__
        channel.close()
    return handle


@pytest.mark.parametrize("how", ["message", "aclose"])
@aio()
async def test_client_disconnect_mid_response(mode, how):
    """docs/acgi.md, http.stream.disconnect from the application: "If it is still open it
    is reset (HTTP/2 RST_STREAM with CANCEL; HTTP/1.1 has no other way than closing the
    connection); whatever is queued for it is dropped". ``body.aclose()`` does the same.
    The server's read of the request body ends with StreamReset(CANCEL); over HTTP/2 the
    connection goes on, over HTTP/1.1 it closes."""
    outcome = {}
    async with served(mode, endless_upload_sink(outcome)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), "POST", body=b"up", more_body=True))
            await recv(conn.receive, sid)
            response = await recv(conn.receive, sid)
            assert response["type"] == "http.response" and response["more_body"]
            if how == "message":
                assert (await recv(conn.receive, sid))["type"] == "http.response.body"
                assert await conn.send({"type": "http.stream.disconnect", "stream_id": sid}) is None
            else:
                assert await asyncio.wait_for(response["body"].__anext__(), T)
                await asyncio.wait_for(response["body"].aclose(), T)
            with pytest.raises(MessageError):   # dropped: nothing more of it reaches us
                await recv(conn.receive, sid)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + T
            while "read" not in outcome and loop.time() < deadline:
                await asyncio.sleep(0.005)
            assert outcome.get("read") == ("reset", CANCEL)
            if is_h2(mode):
                assert not conn.closed and not outcome["conn"]._lost
                sid = await conn.send(req(peer.url("/after")))
                _, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, True)
                assert body == b"still here"
            else:
                await asyncio.wait_for(outcome["conn"].wait_closed(), T)
                await asyncio.wait_for(conn.wait_closed(), T)
                assert conn.closed
                with pytest.raises(cno.ConnectionClosed):
                    await conn.send(req(peer.url("/after")))


@aio()
async def test_disconnect_is_rst_stream_cancel_and_credits_the_connection_window():
    """On the wire (a python-hyper h2 server): the disconnect is RST_STREAM with CANCEL
    (RFC 9113 6.4, 7), and "its unread body bytes are credited back to the connection
    window" (docs/acgi.md): twelve streams left with 60000 unread bytes each (720000,
    more than half of the 1 MiB connection window) get the connection window back."""
    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            c.respond(event.stream_id, 200, [], b"u" * 60000, end=False)

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            for i in range(12):
                sid = await conn.send(req(srv.url("/%d" % i)))
                assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
                assert (await recv(conn.receive, sid))["type"] == "http.response"
                await conn.send({"type": "http.stream.disconnect", "stream_id": sid})
                await srv.wait(lambda: srv.of(h2.events.StreamReset, sid))
                assert [e.error_code for e in srv.of(h2.events.StreamReset, sid)] == [CANCEL]
            window = srv.conns[0].h2
            await srv.wait(lambda: window.outbound_flow_control_window > (1 << 20) - 720000)
            # And the connection still carries a response.
            sid = await conn.send(req(srv.url("/last")))
            assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
            assert (await recv(conn.receive, sid))["type"] == "http.response"


# -- a server reset ----------------------------------------------------------------------------


def resetting(code, after_head):
    async def handle(request):
        if request.path == "/ok":
            await request.respond(200, [], b"ok")
            return
        if after_head:
            request.conn.write_head(request.stream, 200, "", "", [], False)
            request.conn.write_data(request.stream, b"part", False)
            await asyncio.sleep(0)
        request.conn.write_reset(request.stream, code)
    return handle


@pytest.mark.parametrize("code,after_head", [(INTERNAL_ERROR, False), (ENHANCE_YOUR_CALM, True),
                                             (CANCEL, True)])
@aio()
async def test_server_reset_gives_disconnect_with_its_code(h2mode, code, after_head):
    """docs/acgi.md, http.stream.disconnect from ACGI: the stream ended before its response
    was complete; ``code`` is the RST_STREAM's error code, ``refused`` False (the server
    processed it), ``clean`` False, ``reason`` a text. The connection goes on."""
    async with served(h2mode, resetting(code, after_head)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            messages = await until_end(conn.receive, sid)
            response, body, _, disconnect = check_stream(messages, sid, True)
            assert disconnect is not None, [m["type"] for m in messages]
            assert disconnect["code"] == code
            assert disconnect["refused"] is False and disconnect["clean"] is False
            assert (response is not None) == after_head
            assert body == (b"part" if after_head else b"")
            with pytest.raises(MessageError):   # the stream is finished
                await recv(conn.receive, sid)
            sid = await conn.send(req(peer.url("/ok")))
            assert check_stream(await until_end(conn.receive, sid), sid, True)[1] == b"ok"


@aio()
async def test_server_reset_raises_stream_reset_from_the_iterator(h2mode):
    """docs/acgi.md: iterating body, "A reset ... raises cno.StreamReset (.code,
    .refused)" -- after the chunks that came before it (a truncated body never looks
    complete)."""
    async with served(h2mode, resetting(ENHANCE_YOUR_CALM, True)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            body = (await recv(conn.receive, sid))["body"]
            got = []
            with pytest.raises(cno.StreamReset) as err:
                async for chunk in body:
                    got.append(chunk)
            assert got == [b"part"]
            assert err.value.code == ENHANCE_YOUR_CALM and err.value.refused is False


@aio()
async def test_refused_stream_gives_refused_true(h2mode):
    """RFC 9113 8.7: REFUSED_STREAM means the request was not processed; docs/acgi.md:
    ``refused`` True, "safe to retry elsewhere", ``code`` 7."""
    async with served(h2mode, resetting(REFUSED_STREAM, False)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            _, _, _, disconnect = check_stream(await until_end(conn.receive, sid), sid, True)
            assert disconnect["code"] == REFUSED_STREAM and disconnect["refused"] is True


@aio()
async def test_goaway_refuses_streams_above_its_last_stream_id():
    """RFC 9113 6.8: streams above a GOAWAY's last-stream-id were not processed; docs/
    acgi.md: their disconnect has code REFUSED_STREAM (7) and refused True; the streams
    below it complete; a new request on the connection raises cno.ConnectionClosed."""
    got = []

    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            got.append(event.stream_id)
            if len(got) == 2:
                c.respond(got[0], 200, [], b"processed")
                c.h2.close_connection(last_stream_id=got[0])

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            first = await conn.send(req(srv.url("/1")))
            second = await conn.send(req(srv.url("/2")))
            _, _, _, refused = check_stream(await until_end(conn.receive, second), second, True)
            assert refused is not None
            assert refused["code"] == REFUSED_STREAM and refused["refused"] is True
            _, body, _, disconnect = check_stream(await until_end(conn.receive, first), first, True)
            assert disconnect is None and body == b"processed"
            assert conn.closed
            with pytest.raises(cno.ConnectionClosed):
                await asyncio.wait_for(conn.send(req(srv.url("/3"))), T)


@aio()
async def test_server_shutdown_lets_the_running_request_finish(plain):
    """cno's Service.shutdown: GOAWAY (HTTP/2) or Connection: close (HTTP/1.1); the
    running request completes normally (never a disconnect), then a new request raises
    cno.ConnectionClosed (docs/acgi.md, "Concurrency")."""
    release = asyncio.Event()
    running = asyncio.Event()

    async def handle(request):
        running.set()
        await release.wait()
        await request.respond(200, [], b"finished")

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await asyncio.wait_for(running.wait(), T)
            shutdown = asyncio.ensure_future(peer.server.shutdown())
            await asyncio.sleep(0.01)
            release.set()
            _, body, _, disconnect = check_stream(await until_end(conn.receive, sid), sid,
                                                  is_h2(plain))
            assert disconnect is None and body == b"finished"
            await asyncio.wait_for(shutdown, T)
            await asyncio.wait_for(conn.wait_closed(), T)
            with pytest.raises(cno.ConnectionClosed):
                await conn.send(req(peer.url("/")))


# -- trailers ------------------------------------------------------------------------------------


async def with_trailers(request):
    body = await request.payload.read()
    await request.respond(200, [("content-type", "text/plain")], body or b"the body\n",
                          trailers=[("x-checksum", sha(body)), ("x-status", "done")])


@aio()
async def test_response_trailers_as_messages(mode):
    """docs/acgi.md: "http.response.trailers: the response's trailers, just before its
    last http.response.body" (HTTP/2 trailing HEADERS, RFC 9113 8.1; HTTP/1.1 chunked
    trailer section, RFC 9112 7.1.2)."""
    async with served(mode, with_trailers) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), headers=[(b"te", b"trailers")]))
            messages = await until_end(conn.receive, sid)
    _, body, trailers, _ = check_stream(messages, sid, is_h2(mode))
    assert body == b"the body\n"
    assert trailers == [(b"x-checksum", sha(b"").encode()), (b"x-status", b"done")]
    assert [m["type"] for m in messages][-2:] == ["http.response.trailers", "http.response.body"]


@aio()
async def test_response_trailers_through_the_iterator(mode):
    """docs/acgi.md: with the iterator, "Trailers land in body.trailers" (None without)."""
    async with served(mode, with_trailers) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            body = (await recv(conn.receive, sid))["body"]
            assert body.trailers is None
            assert await asyncio.wait_for(body.read(), T) == b"the body\n"
            assert body.trailers == [(b"x-checksum", sha(b"").encode()), (b"x-status", b"done")]


@aio()
async def test_request_trailers_reach_the_server(mode):
    """docs/acgi.md: "http.request.trailers: headers, stream_id: ends the request with
    trailers (HTTP/2; HTTP/1.1 with chunked framing)"; after it the request is over, so
    more body or trailers are a MessageError."""
    async with served(mode, echo) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), "POST", body=b"payload", more_body=True))
            await conn.send({"type": "http.request.body", "body": b" and more",
                             "more_body": True, "stream_id": sid})
            assert await conn.send({"type": "http.request.trailers", "stream_id": sid,
                                    "headers": [(b"X-Digest", b"abc"), [b"x-n", b"2"]]}) is None
            with pytest.raises(MessageError):
                await conn.send({"type": "http.request.body", "body": b"late", "stream_id": sid})
            with pytest.raises(MessageError):
                await conn.send({"type": "http.request.trailers", "stream_id": sid,
                                 "headers": [(b"x-again", b"1")]})
            response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid,
                                                is_h2(mode))
    assert body == b"payload and more"
    assert header(response["headers"], b"x-trailers") == [
        repr([("x-digest", "abc"), ("x-n", "2")]).encode()]


# -- 1xx -----------------------------------------------------------------------------------------


async def continuing(request):
    """cno's server never answers ``expect: 100-continue`` by itself: the handler sends
    the 100 through the engine (request.conn is a cno.raw.Connection)."""
    if dict(request.headers).get("expect", "").lower() == "100-continue":
        request.conn.write_head(request.stream, 100, "", "", [], False)
    else:
        request.conn.write_head(request.stream, 103, "", "", [("link", "</style.css>")], False)
    body = await request.payload.read()
    await request.respond(200, [], b"got " + body)


@aio()
async def test_100_continue_arrives_before_the_body_is_sent(mode):
    """RFC 9110 10.1.1: a client that sent ``expect: 100-continue`` waits for 100 before
    the body; docs/acgi.md: "http.response.informational: status_code (100-199), headers,
    stream_id. A 1xx response: never the final one". Here the body goes only after the
    100 arrived, and the final response follows."""
    async with served(mode, continuing) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), "PUT", more_body=True,
                                      headers=[(b"expect", b"100-continue")]))
            connection = await recv(conn.receive, sid)
            informational = await recv(conn.receive, sid)   # nothing of the body sent yet
            assert informational["type"] == "http.response.informational"
            assert informational["status_code"] == 100
            await conn.send({"type": "http.request.body", "body": b"the body", "stream_id": sid})
            messages = [connection, informational] + await until_end(conn.receive, sid)
    response, body, _, _ = check_stream(messages, sid, is_h2(mode))
    assert response["status_code"] == 200 and body == b"got the body"


@aio()
async def test_103_early_hints_then_the_final_response(plain):
    """RFC 8297: 103 Early Hints before the final response; docs/acgi.md: informational,
    never the final one, with its headers."""
    async with served(plain, continuing) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            messages = await until_end(conn.receive, sid)
    response, body, _, _ = check_stream(messages, sid, is_h2(plain))
    hints = [m for m in messages if m["type"] == "http.response.informational"]
    assert [(m["status_code"], header(m["headers"], b"link")) for m in hints] == [
        (103, [b"</style.css>"])]
    assert response["status_code"] == 200 and body == b"got "


# -- flow control and backpressure ------------------------------------------------------------

CHUNK = 16384
BIG = 4 << 20
# HTTP/1.1 has no window: what a stalled sender has out is the socket buffers of both
# kernels (autotuned to several MiB on loopback, so the tests pin them to 32 KiB), the
# transports' buffers (asyncio's TLS layer keeps about 1 MiB), and max_body_buffer.
H1_SLACK = 2 << 20


def small_socket_buffer(transport, option):
    sock = transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, option, 32768)


@aio()
async def test_slow_reader_holds_the_server_writer_back(mode):
    """docs/acgi.md, "Flow control and backpressure": "Response bytes are credited to the
    server only when their message reaches the application": a slow application holds at
    most one HTTP/2 stream window (65,535 bytes, RFC 9113 6.9.2) beyond what it received,
    or over HTTP/1.1 the socket stops being read (the server stalls long before the end).
    Reading on then gets the whole body, intact."""
    state = {"produced": 0}

    async def handle(request):
        small_socket_buffer(request.conn.transport, socket.SO_SNDBUF)

        async def gen():
            for i in range(BIG // CHUNK):
                state["produced"] += CHUNK
                yield bytes([i % 251]) * CHUNK
        await request.respond(200, [], gen())

    async with served(mode, handle) as peer:
        conn = await open_acgi(peer)
        small_socket_buffer(conn.client.transport, socket.SO_RCVBUF)
        try:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            assert (await recv(conn.receive, sid))["more_body"]
            parts = []
            received = 0
            while received < 100000:
                message = await recv(conn.receive, sid)
                parts.append(message["body"])
                received += len(message["body"])
            stalled = await settle(lambda: state["produced"])
            if is_h2(mode):
                assert stalled <= received + 65535 + CHUNK, (stalled, received)
            else:
                assert stalled <= received + H1_SLACK, (stalled, received)
            messages = await until_end(conn.receive, sid)
        finally:
            conn.close()
    body = b"".join(parts) + body_of(messages)
    assert len(body) == BIG and state["produced"] == BIG
    assert all(body[i] == (i // CHUNK) % 251 for i in range(0, BIG, CHUNK))


@aio()
async def test_large_request_body_waits_for_the_server(mode):
    """docs/acgi.md: "Request bodies go out as the server's windows and the socket allow;
    send waits meanwhile" -- "never buffering the body whole": while the server does not
    read, the sends stall (HTTP/2: within the server's 65,535-byte stream window) and
    little sits in the transport; once it reads, the whole body arrives intact."""
    go = asyncio.Event()

    async def handle(request):
        small_socket_buffer(request.conn.transport, socket.SO_RCVBUF)
        await go.wait()
        body = await request.payload.read()
        await request.respond(200, [("x-sha", sha(body))], str(len(body)).encode())

    chunks = [bytes([i % 251]) * CHUNK for i in range(BIG // CHUNK)]
    async with served(mode, handle) as peer:
        conn = await open_acgi(peer)
        small_socket_buffer(conn.client.transport, socket.SO_SNDBUF)
        try:
            sid = await conn.send(req(peer.url("/"), "POST", more_body=True))
            sent = [0]

            async def upload():
                for i, chunk in enumerate(chunks):
                    await conn.send({"type": "http.request.body", "body": chunk,
                                     "more_body": i < len(chunks) - 1, "stream_id": sid})
                    sent[0] += len(chunk)

            task = asyncio.ensure_future(upload())
            stalled = await settle(lambda: sent[0])
            assert not task.done()
            if is_h2(mode):
                assert stalled <= 65535
            else:
                assert stalled <= H1_SLACK
            assert conn.client.transport.get_write_buffer_size() < (1 << 20)
            go.set()
            await asyncio.wait_for(task, T)
            response, body, _, _ = check_stream(await until_end(conn.receive, sid), sid,
                                                is_h2(mode))
        finally:
            conn.close()
    assert body == str(BIG).encode()
    assert header(response["headers"], b"x-sha") == [sha(b"".join(chunks)).encode()]


# -- bad messages ----------------------------------------------------------------------------------


def other(url, scheme=None, host=None, port=None):
    """url with another scheme, host or port (same path)."""
    import urllib.parse
    parts = urllib.parse.urlsplit(url)
    netloc = "%s:%s" % (host or parts.hostname, port or parts.port)
    return urllib.parse.urlunsplit((scheme or parts.scheme, netloc, parts.path, "", ""))


def bad_request(**changes):
    def make(ctx):
        message = req(ctx["url"], "POST", body=b"x")
        for k, v in changes.items():
            if v is _DROP:
                del message[k]
            else:
                message[k] = v(ctx) if callable(v) else v
        return message
    return make


_DROP = object()

# (id, kind, message maker): "request" messages are checked with no other request in the
# way on HTTP/1.1; "body" ones with a running stream whose request is open; "ended" ones
# with a stream whose request ended (more_body False).
BAD_MESSAGES = [
    ("not-a-mapping", "request", lambda ctx: [("type", "http.request")]),
    ("none", "request", lambda ctx: None),
    ("a-string", "request", lambda ctx: "http.request"),
    ("no-type", "request", bad_request(type=_DROP)),
    ("type-none", "request", bad_request(type=None)),
    ("unknown-type", "request", bad_request(type="http.response")),
    ("asgi-disconnect-name", "request", lambda ctx: {"type": "http.disconnect"}),
    ("missing-url", "request", bad_request(url=_DROP)),
    ("missing-method", "request", bad_request(method=_DROP)),
    ("url-bytes", "request", bad_request(url=lambda ctx: ctx["url"].encode())),
    ("method-bytes", "request", bad_request(method=b"POST")),
    ("headers-str-pairs", "request", bad_request(headers=[("accept", "text/plain")])),
    ("header-value-str", "request", bad_request(headers=[(b"accept", "text/plain")])),
    ("headers-not-iterable", "request", bad_request(headers=5)),
    ("header-three-items", "request", bad_request(headers=[(b"a", b"b", b"c")])),
    ("header-name-with-space", "request", bad_request(headers=[(b"x y", b"1")])),
    ("header-value-with-crlf", "request", bad_request(headers=[(b"x", b"1\r\nx-injected: 1")])),
    ("content-length-not-the-body's", "request", bad_request(headers=[(b"content-length",
                                                                        b"10")])),
    ("body-str", "request", bad_request(body="text")),
    ("body-none", "request", bad_request(body=None)),
    ("more-body-int", "request", bad_request(more_body=1)),
    ("more-body-none", "request", bad_request(more_body=None)),
    ("url-other-host", "request", bad_request(url=lambda ctx: other(ctx["url"], host="localhost"))),
    ("url-other-port", "request", bad_request(url=lambda ctx: other(ctx["url"], port=free_port()))),
    ("url-other-scheme", "request", bad_request(
        url=lambda ctx: other(ctx["url"], scheme="https" if ctx["url"].startswith("http:")
                              else "http"))),
    ("url-relative", "request", bad_request(url="/relative/path")),
    ("url-scheme-relative", "request", bad_request(url=lambda ctx: ctx["url"].split(":", 1)[1])),
    ("url-ftp", "request", bad_request(url=lambda ctx: "ftp" + ctx["url"][ctx["url"].index(":"):])),
    ("path-in-headers", "request", bad_request(headers=[(b":path", b"/other")])),
    ("method-in-headers", "request", bad_request(headers=[(b":method", b"GET")])),
    ("scheme-in-headers", "request", bad_request(headers=[(b":scheme", b"https")])),
    ("body-body-str", "body", lambda ctx: {"type": "http.request.body", "body": "text",
                                           "stream_id": ctx["running"]}),
    ("body-more-body-str", "body", lambda ctx: {"type": "http.request.body", "body": b"",
                                                "more_body": "yes", "stream_id": ctx["running"]}),
    ("body-stream-id-str", "body", lambda ctx: {"type": "http.request.body", "body": b"x",
                                                "stream_id": str(ctx["running"])}),
    ("body-stream-id-float", "body", lambda ctx: {"type": "http.request.body", "body": b"x",
                                                  "stream_id": float(ctx["running"])}),
    ("body-unknown-stream", "body", lambda ctx: {"type": "http.request.body", "body": b"x",
                                                 "stream_id": 99}),
    ("trailers-unknown-stream", "body", lambda ctx: {"type": "http.request.trailers",
                                                     "headers": [], "stream_id": 99}),
    ("trailers-str-headers", "body", lambda ctx: {"type": "http.request.trailers",
                                                  "headers": [("x-t", "1")],
                                                  "stream_id": ctx["running"]}),
    ("trailers-headers-not-iterable", "body", lambda ctx: {"type": "http.request.trailers",
                                                           "headers": 5,
                                                           "stream_id": ctx["running"]}),
    ("trailer-value-with-crlf", "body", lambda ctx: {"type": "http.request.trailers",
                                                     "headers": [(b"x-t", b"1\r\nx-i: 1")],
                                                     "stream_id": ctx["running"]}),
    ("trailers-no-headers", "body", lambda ctx: {"type": "http.request.trailers",
                                                 "stream_id": ctx["running"]}),
    ("disconnect-unknown-stream", "body", lambda ctx: {"type": "http.stream.disconnect",
                                                       "stream_id": 99}),
    ("body-after-more-body-false", "ended", lambda ctx: {"type": "http.request.body",
                                                         "body": b"late",
                                                         "stream_id": ctx["ended"]}),
    ("trailers-after-more-body-false", "ended", lambda ctx: {"type": "http.request.trailers",
                                                             "headers": [(b"x-t", b"1")],
                                                             "stream_id": ctx["ended"]}),
]


@pytest.mark.parametrize("case", BAD_MESSAGES, ids=[c[0] for c in BAD_MESSAGES])
@aio()
async def test_bad_message_raises_message_error_and_other_streams_go_on(plain, case):
    """docs/acgi.md, "Errors": MessageError (a ValueError and a cno.UsageError) when "send
    ... got a message it cannot take: not a mapping with a type, an unknown type, a
    missing or mistyped key, a url on another origin, ... a body or trailers after
    more_body=False, an unknown or finished stream_id ... Nothing was written for it;
    other streams go on." -- the streams running beside it complete, and the next request
    gets the next stream id (no stream was opened for the bad one)."""
    _, kind, make = case
    gate = asyncio.Event()

    async def handle(request):
        body = await request.payload.read()
        if request.path == "/ended":
            await gate.wait()
        await request.respond(200, [], request.path.encode() + b":" + body)

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            ctx = {"url": peer.url("/bad")}
            if is_h2(plain) or kind == "body":
                ctx["running"] = await conn.send(req(peer.url("/running"), "POST",
                                                     body=b"begun;", more_body=True))
            if is_h2(plain) or kind == "ended":
                ctx["ended"] = await conn.send(req(peer.url("/ended"), "POST", body=b"all"))
            message = make(ctx)
            with pytest.raises(MessageError) as err:
                await asyncio.wait_for(conn.send(message), T)
            assert isinstance(err.value, ValueError) and isinstance(err.value, cno.UsageError)
            assert isinstance(err.value, cno.acgi.AcgiError)
            if "running" in ctx:
                await conn.send({"type": "http.request.body", "body": b"end",
                                 "stream_id": ctx["running"]})
                _, body, _, disconnect = check_stream(
                    await until_end(conn.receive, ctx["running"]), ctx["running"], is_h2(plain))
                assert disconnect is None and body == b"/running:begun;end"
            gate.set()
            if "ended" in ctx:
                _, body, _, disconnect = check_stream(
                    await until_end(conn.receive, ctx["ended"]), ctx["ended"], is_h2(plain))
                assert disconnect is None and body == b"/ended:all"
            sid = await conn.send(req(peer.url("/next")))
            assert sid == 1 + 2 * sum(k in ctx for k in ("running", "ended"))
            assert check_stream(await until_end(conn.receive, sid), sid, is_h2(plain))[1] == b"/next:"


@aio()
async def test_second_http1_request_while_one_runs_is_a_message_error(plain):
    """docs/acgi.md: "On HTTP/1.1 a request while an exchange is still running is a
    MessageError" (no pipelining); over HTTP/2 the same is a second stream."""
    gate = asyncio.Event()

    async def handle(request):
        await gate.wait()
        await request.respond(200, [], request.path.encode())

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            first = await conn.send(req(peer.url("/first")))
            if is_h2(plain):
                second = await conn.send(req(peer.url("/second")))
            else:
                with pytest.raises(MessageError):
                    await conn.send(req(peer.url("/second")))
            gate.set()
            assert check_stream(await until_end(conn.receive, first), first,
                                is_h2(plain))[1] == b"/first"
            if not is_h2(plain):   # once the exchange is over, the next one goes
                second = await conn.send(req(peer.url("/second")))
            assert second == 3
            assert body_of(await until_end(conn.receive, second)) == b"/second"


@aio()
async def test_receive_of_an_unknown_stream_raises(plain):
    """docs/acgi.md: "an unknown or finished stream_id" is a MessageError, from receive too;
    a stream whose every message was received is finished."""
    async with served(plain, echo) as peer:
        async with await open_acgi(peer) as conn:
            with pytest.raises(MessageError):
                await conn.receive(1)        # no request yet
            sid = await conn.send(req(peer.url("/")))
            with pytest.raises(MessageError):
                await conn.receive(sid + 2)  # not opened
            await until_end(conn.receive, sid)
            with pytest.raises(MessageError):
                await conn.receive(sid)      # finished


@aio()
async def test_body_without_stream_id_when_two_requests_are_open(h2mode):
    """docs/acgi.md: http.request.body's stream_id "may be left out when exactly one
    stream's request is still open" -- with two open it is a MessageError."""
    async with served(h2mode, echo) as peer:
        async with await open_acgi(peer) as conn:
            a = await conn.send(req(peer.url("/a"), "POST", more_body=True))
            b = await conn.send(req(peer.url("/b"), "POST", more_body=True))
            with pytest.raises(MessageError):
                await conn.send({"type": "http.request.body", "body": b"which?"})
            await conn.send({"type": "http.request.body", "body": b"A", "stream_id": a})
            await conn.send({"type": "http.request.body", "body": b"B"})   # only b is open now
            assert body_of(await until_end(conn.receive, a)) == b"A"
            assert body_of(await until_end(conn.receive, b)) == b"B"


# -- connection loss -----------------------------------------------------------------------------

LOSS_PHASES = ["after-request-head", "after-response-head", "mid-body"]


def losing(phase, state):
    """Close the connection from the server at ``phase`` of the response."""
    async def handle(request):
        state["conn"] = request.conn
        if phase != "after-request-head":
            request.conn.write_head(request.stream, 200, "", "", [], False)
        if phase == "mid-body":
            request.conn.write_data(request.stream, b"part of it", False)
        request.conn.close()
    return handle


async def assert_all_closed(conn, peer_url):
    """docs/acgi.md, "Concurrency": after the end "a bare receive() with nothing left
    raises cno.ConnectionClosed, as does send of a request on a closed connection"."""
    await asyncio.wait_for(conn.wait_closed(), T)
    assert conn.closed
    with pytest.raises(cno.ConnectionClosed):
        await recv(conn.receive)
    with pytest.raises(cno.ConnectionClosed):
        await asyncio.wait_for(conn.send(req(peer_url)), T)


@pytest.mark.parametrize("phase", LOSS_PHASES)
@aio()
async def test_connection_lost_during_a_response(mode, phase):
    """docs/acgi.md: "Every wait ends when the connection does: streams still running get
    http.stream.disconnect (code None)", refused False (nothing says the request was not
    processed), clean False; then the stream is finished."""
    state = {}
    async with served(mode, losing(phase, state)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            messages = await until_end(conn.receive, sid)
            response, body, _, disconnect = check_stream(messages, sid, is_h2(mode))
            assert disconnect is not None, [m["type"] for m in messages]
            assert disconnect["code"] is None and disconnect["refused"] is False
            assert (response is not None) == (phase != "after-request-head")
            assert body == (b"part of it" if phase == "mid-body" else b"")
            with pytest.raises(MessageError):
                await recv(conn.receive, sid)
            await assert_all_closed(conn, peer.url("/"))


@aio()
async def test_connection_lost_mid_body_raises_from_the_iterator(mode):
    """docs/acgi.md: iterating body, "A reset or lost connection raises cno.StreamReset
    ... or cno.ConnectionClosed" -- a lost connection is ConnectionClosed, after the
    chunks that arrived."""
    state = {}
    async with served(mode, losing("mid-body", state)) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            body = (await recv(conn.receive, sid))["body"]
            got = []
            with pytest.raises(cno.ConnectionClosed):
                async for chunk in body:
                    got.append(chunk)
            assert b"".join(got) == b"part of it"


@pytest.mark.parametrize("waiting", ["bare-receive", "nothing"])
@aio()
async def test_connection_lost_before_any_request(mode, waiting):
    """The server closes a connection on which nothing was sent: a bare receive() waiting
    with no stream at all ends with cno.ConnectionClosed (docs/acgi.md: "Every wait ends
    when the connection does"), and so does a later send of a request."""
    tls = None
    if mode.endswith("tls"):
        tls, client_ssl = tls_contexts(("h2", "http/1.1") if is_h2(mode) else ("http/1.1",))
        tls.set_alpn_protocols(["h2"] if is_h2(mode) else ["http/1.1"])
    close = asyncio.Event()

    async def handler(reader, writer):
        await close.wait()

    async with ScriptedTCP(handler, ssl=tls) as srv:
        kw = {"ssl": client_ssl, "http2": None if is_h2(mode) else False} if tls else \
            {"http2": is_h2(mode)}
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), **kw), T) as conn:
            task = asyncio.ensure_future(conn.receive()) if waiting == "bare-receive" else None
            await asyncio.sleep(0.01)
            assert task is None or not task.done()
            close.set()
            if task is not None:
                with pytest.raises(cno.ConnectionClosed):
                    await asyncio.wait_for(task, T)
            await assert_all_closed(conn, srv.url("/"))


@aio()
async def test_connection_lost_while_a_bare_receive_waits_between_requests(plain):
    """A bare receive() waiting after every stream ended, when the server goes."""
    state = {}

    async def handle(request):
        state["conn"] = request.conn
        await request.respond(200, [], b"ok")

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await until_end(conn.receive, sid)
            task = asyncio.ensure_future(conn.receive())
            await asyncio.sleep(0.01)
            assert not task.done()
            state["conn"].close()
            with pytest.raises(cno.ConnectionClosed):
                await asyncio.wait_for(task, T)
            await assert_all_closed(conn, peer.url("/"))


@aio()
async def test_connection_lost_while_send_waits(mode):
    """docs/acgi.md: send of a body "waits for the peer's flow-control window and the
    socket"; when the connection goes meanwhile that wait ends with cno.ConnectionClosed
    ("on a stream reset before its response completed they raise cno.StreamReset (or
    cno.ConnectionClosed)") and the stream gets its disconnect (code None)."""
    state = {}
    reading = asyncio.Event()

    async def handle(request):
        state["conn"] = request.conn
        reading.set()
        await asyncio.sleep(T)   # never reads the body

    async with served(mode, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), "POST", more_body=True))
            await asyncio.wait_for(reading.wait(), T)
            sent = [0]

            async def upload():
                while True:
                    await conn.send({"type": "http.request.body", "body": b"w" * (1 << 18),
                                     "more_body": True, "stream_id": sid})
                    sent[0] += 1

            task = asyncio.ensure_future(upload())
            await settle(lambda: sent[0])
            assert not task.done(), "send never waited"
            state["conn"].close()
            with pytest.raises(cno.ConnectionClosed):
                await asyncio.wait_for(task, T)
            _, _, _, disconnect = check_stream(await until_end(conn.receive, sid), sid,
                                               is_h2(mode))
            assert disconnect is not None and disconnect["code"] is None
            await assert_all_closed(conn, peer.url("/"))


@aio()
async def test_closing_the_connection_ends_every_wait(plain):
    """docs/acgi.md: conn.close() -- "every stream still running gets
    http.stream.disconnect": tasks waiting in receive(stream_id) wake with it."""
    async def handle(request):
        await asyncio.sleep(T)

    async with served(plain, handle) as peer:
        conn = await open_acgi(peer)
        n = 3 if is_h2(plain) else 1
        sids = [await conn.send(req(peer.url("/%d" % i))) for i in range(n)]
        for sid in sids:
            assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
        waiting = [asyncio.ensure_future(conn.receive(sid)) for sid in sids]
        await asyncio.sleep(0.01)
        conn.close()
        for sid, task in zip(sids, waiting):
            message = await asyncio.wait_for(task, T)
            assert message["type"] == "http.stream.disconnect" and message["code"] is None
        await assert_all_closed(conn, peer.url("/"))


# -- connect(), open_connection() ----------------------------------------------------------------


@aio()
async def test_connect_returns_what_the_application_returns_and_closes(mode):
    """docs/acgi.md: connect "returns await application(receive, send), and closes the
    connection afterwards"; the server sees the close."""
    conns = []

    async def handle(request):
        conns.append(request.conn)
        await request.respond(200, [], b"result")

    async def application(receive, send):
        sid = await send(req(peer.url("/")))
        while True:
            message = await receive(sid)
            if message["type"] == "http.response":
                return await message["body"].read(), message["http_version"]

    async with served(mode, handle) as peer:
        kw = {"ssl": peer.client_ssl, "http2": None if is_h2(mode) else False} if peer.tls \
            else {"http2": is_h2(mode)}
        result = await asyncio.wait_for(cno.acgi.connect(peer.url("/"), application, **kw), T)
        assert result == (b"result", "2" if is_h2(mode) else "1.1")
        await asyncio.wait_for(conns[0].wait_closed(), T)


@aio()
async def test_connect_closes_when_the_application_raises(plain):
    """docs/acgi.md: the connection is closed "also when the application raises"; the
    application's exception comes out unchanged; the server's running request sees the
    end (its read of the request body raises)."""
    seen = {}

    async def handle(request):
        seen["conn"] = request.conn
        try:
            await request.payload.read()
            seen["read"] = "eof"
        except cno.CnoError as e:
            seen["read"] = type(e).__name__

    class Boom(Exception):
        pass

    boom = Boom("application failed")

    async def application(receive, send):
        sid = await send(req(peer.url("/"), "POST", body=b"half", more_body=True))
        await receive(sid)
        while "conn" not in seen:
            await asyncio.sleep(0.005)
        raise boom

    async with served(plain, handle) as peer:
        with pytest.raises(Boom) as err:
            await asyncio.wait_for(cno.acgi.connect(peer.url("/"), application,
                                                    http2=is_h2(plain)), T)
        assert err.value is boom
        await asyncio.wait_for(seen["conn"].wait_closed(), T)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + T
        while "read" not in seen and loop.time() < deadline:
            await asyncio.sleep(0.005)
        assert seen["read"] == "StreamReset"


@aio()
async def test_connect_sends_goaway_when_the_application_ends():
    """docs/acgi.md: "closes the connection afterwards (GOAWAY on HTTP/2)" (RFC 9113 6.8)."""
    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            c.respond(event.stream_id, 200, [], b"x")

    async def application(receive, send):
        sid = await send(req(srv.url("/")))
        return body_of(await until_end(receive, sid))

    async with ScriptedH2(on_event) as srv:
        assert await asyncio.wait_for(cno.acgi.connect(srv.url(), application, http2=True),
                                      T) == b"x"
        await srv.wait(lambda: srv.conns and srv.conns[0].lost)
        assert srv.of(h2.events.ConnectionTerminated)


@aio()
async def test_upgrade_h2c_on_the_first_request():
    """docs/acgi.md: http:// with upgrade=True "asks to switch with Upgrade: h2c on the
    first request" (RFC 7540 3.2); http.response.connection tells "the protocol the
    request head was written in" (h11), the response came over HTTP/2 ("2"), and the next
    request is an HTTP/2 stream (3)."""
    async def handle(request):
        await request.respond(200, [], b"v2" if request.conn.is_http2 else b"v1")

    async with served("h1", handle) as peer:
        async with await asyncio.wait_for(cno.acgi.open_connection(peer.url(), upgrade=True), T) as conn:
            assert conn.http_version == "h11"
            sid = await conn.send(req(peer.url("/")))
            messages = await until_end(conn.receive, sid)
            assert [(m["type"], m.get("http_version")) for m in messages][:2] == [
                ("http.response.connection", "h11"), ("http.response", "2")]
            assert body_of(messages) == b"v2"
            assert conn.http_version == "h2"
            sid = await conn.send(req(peer.url("/")))
            assert sid == 3
            _, body, _, _ = check_stream(await until_end(conn.receive, sid), sid, True)
            assert body == b"v2"


@aio()
async def test_read_timeout_of_the_body_iterator(plain):
    """docs/acgi.md: "body.timeout (seconds) bounds each wait (ReadTimeout)", a Timeout and
    a TimeoutError."""
    async def handle(request):
        request.conn.write_head(request.stream, 200, "", "", [], False)
        request.conn.write_data(request.stream, b"first", False)
        await asyncio.sleep(T)

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await recv(conn.receive, sid)
            body = (await recv(conn.receive, sid))["body"]
            body.timeout = 0.05
            assert await asyncio.wait_for(body.__anext__(), T) == b"first"
            with pytest.raises(cno.acgi.ReadTimeout) as err:
                await asyncio.wait_for(body.__anext__(), T)
            assert isinstance(err.value, TimeoutError) and isinstance(err.value, cno.acgi.Timeout)


@aio()
async def test_connect_error_on_a_refused_port():
    """docs/acgi.md: "Failing to connect raises ConnectError (the OSError ... is its
    __cause__)"; ConnectError is also an OSError and a cno.CnoError."""
    port = free_port()
    for opener in (lambda u: cno.acgi.open_connection(u),
                   lambda u: cno.acgi.connect(u, None)):
        with pytest.raises(cno.acgi.ConnectError) as err:
            await asyncio.wait_for(opener("http://%s:%d/" % (HOST, port)), T)
        assert isinstance(err.value, OSError) and isinstance(err.value, cno.CnoError)
        assert isinstance(err.value.__cause__, ConnectionRefusedError)


@pytest.mark.parametrize("problem", ["untrusted", "wrong-name"])
@aio()
async def test_connect_error_on_a_certificate_failure(problem):
    """docs/acgi.md: ``ssl`` defaults to the system's trust store, ``ssl_hostname``
    overrides the name checked; a certificate that fails is a ConnectError whose
    __cause__ is the ssl.SSLError."""
    async with served("h2tls", echo) as peer:
        if problem == "untrusted":
            kw = {}   # the default context: the test CA is not in the system's store
        else:
            kw = {"ssl": peer.client_ssl, "ssl_hostname": "not-the-name.example"}
        with pytest.raises(cno.acgi.ConnectError) as err:
            await asyncio.wait_for(cno.acgi.open_connection(peer.url(), **kw), T)
        assert isinstance(err.value.__cause__, ssl.SSLCertVerificationError)


@aio()
async def test_connect_error_when_http2_is_required_but_not_agreed():
    """docs/acgi.md table: https with http2=True: "TLS, HTTP/2 or ConnectError"."""
    server_ssl, client_ssl = tls_contexts(("h2", "http/1.1"))
    server_ssl.set_alpn_protocols(["http/1.1"])

    async def handler(reader, writer):
        await reader.read()

    async with ScriptedTCP(handler, ssl=server_ssl) as srv:
        with pytest.raises(cno.acgi.ConnectError):
            await asyncio.wait_for(cno.acgi.open_connection(srv.url(), ssl=client_ssl,
                                                            http2=True), T)


@aio()
async def test_connect_timeout():
    """docs/acgi.md: "ConnectTimeout after connect_timeout seconds" (TCP and TLS): a
    listening socket that never accepts completes the TCP handshake in the kernel's
    backlog but never the TLS one."""
    listener = socket.socket()
    try:
        listener.bind((HOST, 0))
        listener.listen(8)
        url = "https://%s:%d/" % (HOST, listener.getsockname()[1])
        loop = asyncio.get_running_loop()
        for opener in (lambda: cno.acgi.open_connection(url, connect_timeout=0.1),
                       lambda: cno.acgi.connect(url, None, connect_timeout=0.1)):
            t0 = loop.time()
            with pytest.raises(cno.acgi.ConnectTimeout) as err:
                await asyncio.wait_for(opener(), T)
            assert loop.time() - t0 < 1.0
            assert isinstance(err.value, TimeoutError) and isinstance(err.value, cno.CnoError)
    finally:
        listener.close()


# -- more of the contract ------------------------------------------------------------------------


@aio()
async def test_a_complete_response_survives_the_connection_end(plain):
    """docs/acgi.md: "A response that completed is never followed by a disconnect": the
    server answers and closes; the queued messages are still received whole (by
    receive(stream_id) and by a bare receive), then receive() raises ConnectionClosed."""
    async def handle(request):
        await request.respond(200, [], b"complete")
        request.conn.close()

    async with served(plain, handle) as peer:
        for bare in (False, True):
            async with await open_acgi(peer) as conn:
                sid = await conn.send(req(peer.url("/")))
                await asyncio.wait_for(conn.wait_closed(), T)
                messages = await until_end(conn.receive, None if bare else sid)
                _, body, _, disconnect = check_stream(messages, sid, is_h2(plain))
                assert disconnect is None and body == b"complete"
                with pytest.raises(cno.ConnectionClosed):
                    await recv(conn.receive)


@aio()
async def test_early_response_then_reset_no_error_drops_the_rest_of_the_upload():
    """RFC 9113 8.1: "A server can send a complete response prior to the client sending an
    entire request ... the server MAY request that the client abort transmission of a
    request without error by sending a RST_STREAM with an error code of NO_ERROR";
    docs/acgi.md: the completed response is not followed by a disconnect, and "further
    http.request.body messages on such a stream are accepted and dropped"."""
    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            c.respond(event.stream_id, 413, [], b"too large, stop")
            c.h2.reset_stream(event.stream_id, 0)
            c.flush()

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            sid = await conn.send(req(srv.url("/"), "POST", body=b"start", more_body=True))
            response, body, _, disconnect = check_stream(await until_end(conn.receive, sid),
                                                         sid, True)
            assert disconnect is None
            assert response["status_code"] == 413 and body == b"too large, stop"
            await asyncio.wait_for(conn.send({"type": "http.request.body", "body": b"more",
                                              "more_body": True, "stream_id": sid}), T)
            await asyncio.wait_for(conn.send({"type": "http.request.body", "body": b"end",
                                              "stream_id": sid}), T)
            with pytest.raises(MessageError):   # and now the request is over
                await conn.send({"type": "http.request.body", "body": b"x", "stream_id": sid})


@aio()
async def test_settings_disable_push_and_h2_drops_connection_specific_fields():
    """docs/acgi.md: "Push is disabled (SETTINGS_ENABLE_PUSH = 0) on every ACGI
    connection"; over HTTP/2 connection, keep-alive, proxy-connection, transfer-encoding,
    upgrade and a te other than trailers "are left out (RFC 9113 8.2.2)"; host replaces
    the url's authority (:authority, RFC 9113 8.3.1); :method, :path, :scheme come from
    the message."""
    heads = []

    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            heads.append(event.headers)
            c.respond(event.stream_id, 200, [], b"ok")

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            for te in (b"gzip", b"trailers"):
                sid = await conn.send(req(srv.url("/path?q"), "OPTIONS", headers=[
                    (b"Connection", b"keep-alive"), (b"keep-alive", b"5"),
                    (b"proxy-connection", b"x"), (b"transfer-encoding", b"chunked"),
                    (b"upgrade", b"h2c"), (b"te", te), (b"Host", b"example.com:8443"),
                    (b"x-kept", b"yes")]))
                await until_end(conn.receive, sid)
            assert srv.conns[0].h2.remote_settings.enable_push == 0
    for head, te in zip(heads, (b"gzip", b"trailers")):
        fields = dict(head)
        assert fields[b":method"] == b"OPTIONS" and fields[b":path"] == b"/path?q"
        assert fields[b":scheme"] == b"http" and fields[b":authority"] == b"example.com:8443"
        assert b"host" not in fields and fields[b"x-kept"] == b"yes"
        for name in (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding",
                     b"upgrade"):
            assert name not in fields
        assert fields.get(b"te") == (b"trailers" if te == b"trailers" else None)


@aio()
async def test_same_origin_spellings_are_accepted(plain):
    """docs/acgi.md: the url is "on the connection's origin (scheme, host and port ...)":
    scheme and host compare case-insensitively (RFC 3986 6.2.2.1), userinfo is not part of
    the origin and never sent."""
    seen = []

    async def handle(request):
        seen.append((request.path, dict(request.headers)[":authority"]))
        await request.respond(200, [], b"ok")

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            for url in ("HTTP://%s/upper" % peer.authority,
                        "http://user:pw@%s/userinfo" % peer.authority):
                sid = await conn.send(req(url))
                assert body_of(await until_end(conn.receive, sid)) == b"ok"
    assert seen == [("/upper", peer.authority), ("/userinfo", peer.authority)]


@aio()
async def test_a_cancelled_receive_loses_nothing(plain):
    """A task waiting in receive() that is cancelled takes no message with it: the stream's
    next receive gets the response (asyncio cancellation, docs/acgi.md "Concurrency")."""
    gate = asyncio.Event()

    async def handle(request):
        await gate.wait()
        await request.respond(200, [], b"after the cancel")

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            assert (await recv(conn.receive, sid))["type"] == "http.response.connection"
            for waiting in (conn.receive(sid), conn.receive()):
                task = asyncio.ensure_future(waiting)
                await asyncio.sleep(0.01)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
            gate.set()
            _, body, _, _ = check_stream(
                [{"type": "http.response.connection", "stream_id": sid,
                  "http_version": conn.http_version}] + await until_end(conn.receive, sid),
                sid, is_h2(plain))
            assert body == b"after the cancel"


@pytest.mark.parametrize("received_first", [True, False])
@aio()
async def test_body_after_an_early_reset_raises_stream_reset(plain, received_first):
    """docs/acgi.md: further http.request.body messages "on a stream reset before its
    response completed ... raise cno.StreamReset (or cno.ConnectionClosed)" -- also once
    the application has received the disconnect (the stream is not "unknown": its request
    is still open)."""
    async def handle(request):
        if request.path == "/later":
            await request.respond(200, [], b"")
        elif request.conn.is_http2:
            request.conn.write_reset(request.stream, INTERNAL_ERROR)
        else:
            request.conn.close()

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), "POST", body=b"start", more_body=True))
            if received_first:
                _, _, _, disconnect = check_stream(await until_end(conn.receive, sid), sid,
                                                   is_h2(plain))
                assert disconnect["code"] == (INTERNAL_ERROR if is_h2(plain) else None)
            else:
                # Wait until the reset has arrived, receiving nothing of stream sid: over
                # HTTP/2 the answer to a later stream comes after it (one TCP stream).
                if is_h2(plain):
                    later = await conn.send(req(peer.url("/later")))
                    await until_end(conn.receive, later)
                else:
                    await asyncio.wait_for(conn.wait_closed(), T)
            with pytest.raises(cno.StreamReset if is_h2(plain) else cno.ConnectionClosed) as err:
                await asyncio.wait_for(conn.send({"type": "http.request.body", "body": b"more",
                                                  "more_body": True, "stream_id": sid}), T)
            if is_h2(plain):
                assert err.value.code == INTERNAL_ERROR


@aio()
async def test_finished_streams_are_forgotten(plain):
    """A stream is dropped once both sides are over (every message received, the request
    ended or disconnected), whatever the order: ``conn.streams`` ends empty, and every
    finished id is "unknown or finished" to receive (docs/acgi.md, "Errors")."""
    async def handle(request):
        if request.path == "/early":
            await request.respond(200, [], b"answered before the body")
            await request.payload.read()
        elif request.path == "/reset" and request.conn.is_http2:
            request.conn.write_reset(request.stream, INTERNAL_ERROR)
        else:
            await echo(request)

    async with served(plain, handle) as peer:
        async with await open_acgi(peer) as conn:
            done = []
            sid = await conn.send(req(peer.url("/get")))
            await until_end(conn.receive, sid)
            done.append(sid)
            sid = await conn.send(req(peer.url("/early"), "POST", body=b"a", more_body=True))
            await until_end(conn.receive, sid)                 # response first ...
            await conn.send({"type": "http.request.body", "body": b"z", "stream_id": sid})
            done.append(sid)                                   # ... then the end of the body
            sid = await conn.send(req(peer.url("/iter"), "POST", body=b"it"))
            await recv(conn.receive, sid)
            assert await (await recv(conn.receive, sid))["body"].read() == b"it"
            done.append(sid)
            sid = await conn.send(req(peer.url("/gone"), "POST", body=b"x", more_body=True))
            await recv(conn.receive, sid)
            await conn.send({"type": "http.stream.disconnect", "stream_id": sid})
            done.append(sid)
            if is_h2(plain):
                sid = await conn.send(req(peer.url("/reset"), "POST", body=b"x", more_body=True))
                await until_end(conn.receive, sid)
                with pytest.raises(cno.StreamReset):
                    await conn.send({"type": "http.request.body", "body": b"y", "stream_id": sid})
                done.append(sid)
                assert conn.streams == {}
            for sid in done:
                with pytest.raises(MessageError):
                    await conn.receive(sid)


@pytest.mark.parametrize("waiting", [True, False])
@aio()
async def test_reset_with_no_error_before_the_response_is_a_disconnect(waiting):
    """RFC 9113 8.1, 7: RST_STREAM with NO_ERROR before the response is complete still ends
    the stream early (hypercorn sends it to requests that arrive during its graceful
    shutdown): docs/acgi.md, the stream "ended before its response was complete" ->
    http.stream.disconnect with code 0, refused False -- never a wait that hangs, nor a
    stream that just vanishes."""
    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            if event.stream_id == 3:   # after the head: some body, then the reset
                c.respond(event.stream_id, 200, [], b"part", end=False)
            c.h2.reset_stream(event.stream_id, 0)
            c.flush()

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            for path in ("/before-head", "/after-head"):
                sid = await conn.send(req(srv.url(path)))
                if not waiting:
                    await srv.wait(lambda: srv.of(h2.events.RequestReceived, sid))
                    await asyncio.sleep(0.02)
                messages = await until_end(conn.receive, sid)
                response, body, _, disconnect = check_stream(messages, sid, True)
                assert disconnect is not None, [m["type"] for m in messages]
                assert disconnect["code"] == 0 and disconnect["refused"] is False
                assert (response is not None) == (path == "/after-head")
                assert body == (b"part" if path == "/after-head" else b"")


@pytest.mark.parametrize("head", [b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n",
                                  b"HTTP/1.0 200 OK\r\n\r\n"], ids=["1.1-close", "1.0"])
@aio()
async def test_close_delimited_http1_body_is_complete(head):
    """RFC 9112 6.3 (8): a response without Content-Length or chunked framing ends when the
    server closes: a complete response (final http.response.body, more_body False), not a
    disconnect; then the connection is closed. (An HTTP/1.0 server's response is still
    reported with http_version "1.1": docs/acgi.md knows only "1.1" and "2".)"""
    async def handler(reader, writer):
        await read_head(reader)
        writer.write(head + b"until the end")
        await writer.drain()

    async with ScriptedTCP(handler) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=False), T) as conn:
            sid = await conn.send(req(srv.url("/")))
            response, body, _, disconnect = check_stream(await until_end(conn.receive, sid),
                                                         sid, False)
            assert disconnect is None and body == b"until the end"
            await assert_all_closed(conn, srv.url("/"))


@aio()
async def test_cancelled_send_waiting_for_a_stream_slot_opens_nothing(h2mode):
    """A send(http.request) waiting for the server's MAX_CONCURRENT_STREAMS that is
    cancelled writes nothing: the next request gets the next stream id and completes."""
    release = asyncio.Event()

    async def handle(request):
        if request.path == "/hold":
            await release.wait()
        await request.respond(200, [], request.path.encode())

    async with served(h2mode, handle, max_concurrent_streams=1) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/warm")))
            await until_end(conn.receive, sid)
            assert conn.max_streams == 1
            hold = await conn.send(req(peer.url("/hold")))
            waiting = asyncio.ensure_future(conn.send(req(peer.url("/cancelled"))))
            await asyncio.sleep(0.01)
            assert not waiting.done()
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            release.set()
            assert body_of(await until_end(conn.receive, hold)) == b"/hold"
            sid = await conn.send(req(peer.url("/next")))
            assert sid == hold + 2
            assert body_of(await until_end(conn.receive, sid)) == b"/next"


@aio()
async def test_a_protocol_error_of_the_server_ends_the_connection():
    """docs/acgi.md, "Errors": "A protocol error of the peer ends the connection (GOAWAY);
    its streams get http.stream.disconnect" (code None: the connection ended). A DATA
    frame on stream 0 is a connection error of type PROTOCOL_ERROR (RFC 9113 6.1)."""
    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            c.h2.send_headers(event.stream_id, [(b":status", b"200")])
            c.flush()

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            sid = await conn.send(req(srv.url("/")))
            await recv(conn.receive, sid)
            assert (await recv(conn.receive, sid))["type"] == "http.response"
            waiting = asyncio.ensure_future(conn.receive(sid))
            await asyncio.sleep(0.01)
            srv.conns[0].transport.write(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA, stream 0
            disconnect = await asyncio.wait_for(waiting, T)
            assert disconnect["type"] == "http.stream.disconnect" and disconnect["code"] is None
            await srv.wait(lambda: srv.of(h2.events.ConnectionTerminated))
            assert [e.error_code for e in srv.of(h2.events.ConnectionTerminated)] == [0x1]
            await assert_all_closed(conn, srv.url("/"))


@aio()
async def test_closed_is_true_past_a_goaway_while_streams_run():
    """Connection.closed: "No new request can start here (closed, lost, or past a
    GOAWAY)" -- also while the streams below the GOAWAY's last-stream-id still run, and
    before a send has tried (what a pool looks at to pick a connection); send of a request
    already raises cno.ConnectionClosed then."""
    def on_event(c, event):
        if isinstance(event, h2.events.RequestReceived):
            c.h2.send_headers(event.stream_id, [(b":status", b"200")])
            c.flush()
            # GOAWAY, last-stream-id 1, NO_ERROR; stream 1 goes on.
            c.transport.write(b"\x00\x00\x08\x07\x00\x00\x00\x00\x00"
                              b"\x00\x00\x00\x01\x00\x00\x00\x00")

    async with ScriptedH2(on_event) as srv:
        async with await asyncio.wait_for(cno.acgi.open_connection(srv.url(), http2=True), T) as conn:
            sid = await conn.send(req(srv.url("/")))
            await recv(conn.receive, sid)
            assert (await recv(conn.receive, sid))["type"] == "http.response"
            # (the GOAWAY came with the head; a round trip later it surely arrived)
            stream = srv.conns[0]
            stream.h2.ping(b"12345678")
            stream.flush()
            await srv.wait(lambda: srv.of(h2.events.PingAckReceived))
            closed_before_any_send = conn.closed
            with pytest.raises(cno.ConnectionClosed):
                await asyncio.wait_for(conn.send(req(srv.url("/2"))), T)
            assert closed_before_any_send


@aio()
async def test_body_beyond_the_announced_content_length_is_a_message_error():
    # docs/acgi.md Errors: a message the engine cannot write is a MessageError (here more
    # body than the request's own content-length announced, RFC 9110 8.6; the HTTP/1.1
    # writer enforces it, the HTTP/2 one does not yet).
    async with served("h1", echo) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/"), "POST", [(b"content-length", b"3")],
                                      body=b"ab", more_body=True))
            with pytest.raises(MessageError):
                await conn.send({"type": "http.request.body", "stream_id": sid,
                                 "body": b"cdef", "more_body": False})


@aio()
async def test_connection_as_async_context_manager_closes(plain):
    # docs/acgi.md Connecting: ``async with await open_connection(url) as conn`` closes it.
    async with served(plain, echo) as peer:
        async with await open_acgi(peer) as conn:
            sid = await conn.send(req(peer.url("/")))
            await until_end(conn.receive, sid)
            assert not conn.closed
        assert conn.closed
        await asyncio.wait_for(conn.wait_closed(), T)
