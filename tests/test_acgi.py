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
        conn = await open_acgi(peer)
        try:
            sid = await asyncio.wait_for(conn.send(req(
                peer.url("/p/q?x=1&y=%20#fragment"),
                headers=[(b"Accept", b"text/plain"), [b"x-list", b"pair as a list"]])), T)
            assert type(sid) is int and sid == 1
            messages = await until_end(conn.receive, sid)
        finally:
            conn.close()
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
        conn = await open_acgi(peer)
        try:
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
        finally:
            conn.close()


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
        conn = await open_acgi(peer)
        try:
            sid = await conn.send(req(peer.url("/")))
            messages = await until_end(conn.receive, sid)
        finally:
            conn.close()
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
        conn = await open_acgi(peer)
        try:
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
        finally:
            conn.close()


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
        conn = await open_acgi(peer)
        try:
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
        finally:
            conn.close()
