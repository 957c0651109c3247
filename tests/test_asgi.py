"""cno.asgi, the ASGI 3 server (docs/asgi.md), end to end: in-process servers queried with
httpx, cno's client, curl and nghttp; and ``python -m cno serve module:app`` as a
subprocess with real Starlette and FastAPI applications.

The HTTP scope is checked key by key against the ASGI HTTP spec (2.4): type, asgi,
http_version, method, scheme, path (percent-decoded, with root_path), raw_path,
query_string, root_path, headers (lower-case bytes, :authority as host), client, server,
state (a copy of what lifespan startup stored), extensions.
"""
import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import cno
import cno.asgi

import asgi_apps
from aio_util import ServeProcess, deadline, require_module, require_tool, run

TESTS = Path(__file__).resolve().parent


@contextlib.asynccontextmanager
async def asgi_server(app=asgi_apps.raw_app, **options):
    """cno.asgi.serve on 127.0.0.1, a free port; yields the base URL."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    options.setdefault("port", 0)
    task = loop.create_task(cno.asgi.serve(app, ready=ready, **options))
    done, _ = await asyncio.wait([ready, task], return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()   # it failed to start: raise why
    sockets = ready.result()
    name = sockets[0].getsockname()
    url = "http://%s:%d" % name[:2] if isinstance(name, tuple) else name
    try:
        yield url
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def httpx_client(http2):
    httpx = require_module("httpx")
    return httpx.AsyncClient(http1=not http2, http2=http2, timeout=10)


# -- the scope ----------------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_scope_key_by_key(http2):
    async with asgi_server() as url, httpx_client(http2) as client:
        r = await client.post(url + "/a%20b/scope?x=1&y=%20", content=b"hello",
                              headers={"X-Custom": "Value"})
        assert r.status_code == 200
        scope = r.json()
    port = int(url.rsplit(":", 1)[1])
    assert scope["type"] == "http"
    assert scope["asgi"] == {"version": "3.0", "spec_version": "2.4"}
    assert scope["http_version"] == ("2" if http2 else "1.1")
    assert scope["method"] == "POST"
    assert scope["scheme"] == "http"
    assert scope["path"] == "/a b/scope"                # percent-decoded
    assert scope["raw_path"] == "/a%20b/scope"          # as sent
    assert scope["query_string"] == "x=1&y=%20"         # as sent, without "?"
    assert scope["root_path"] == ""
    headers = scope["headers"]
    assert headers[0] == ["host", "127.0.0.1:%d" % port]   # (:authority in HTTP/2)
    assert [name for name, _ in headers].count("host") == 1
    assert ["x-custom", "Value"] in headers               # names lower-cased, values kept
    assert not any(name.startswith(":") for name, _ in headers)
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", port]
    assert scope["state"] == {"started": "yes", "pid": os.getpid()}   # lifespan startup
    ext = scope["extensions"]
    assert {"http.response.trailers", "http.response.early_hint",
            "http.response.pathsend"} <= set(ext)
    assert ("http.response.push" in ext) == http2     # HTTP/2 only
    assert scope["body_length"] == 5


@pytest.mark.asyncio
@deadline(20)
async def test_root_path_prefixes_path():
    async with asgi_server(root_path="/api") as url, httpx_client(False) as client:
        scope = (await client.get(url + "/x/scope")).json()
    assert scope["root_path"] == "/api" and scope["path"] == "/api/x/scope"
    assert scope["raw_path"] == "/x/scope"


@pytest.mark.asyncio
@pytest.mark.parametrize("trusted", [True, False])
@deadline(20)
async def test_proxy_headers_only_from_trusted_peers(trusted):
    allow = "127.0.0.1" if trusted else "10.0.0.1"
    async with asgi_server(proxy_headers=True, forwarded_allow_ips=allow) as url, \
            httpx_client(False) as client:
        scope = (await client.get(url + "/scope", headers={
            "X-Forwarded-For": "203.0.113.9, 10.1.2.3", "X-Forwarded-Proto": "https"})).json()
        forwarded = (await client.get(url + "/scope", headers={
            "Forwarded": 'for="[2001:db8::1]:4711";proto=https'})).json()
    if trusted:   # the last hop, written by the proxy we trust
        assert scope["client"] == ["10.1.2.3", 0] and scope["scheme"] == "https"
        assert forwarded["client"] == ["2001:db8::1", 0] and forwarded["scheme"] == "https"
    else:
        assert scope["client"][0] == "127.0.0.1" and scope["scheme"] == "http"
        assert forwarded["client"][0] == "127.0.0.1"


@pytest.mark.asyncio
@pytest.mark.parametrize("alpn", ["h2", "http/1.1"])
@deadline(20)
async def test_tls_scope_and_alpn(certs, alpn):
    curl = require_tool("curl")
    async with asgi_server(certfile=str(certs.cert_file), keyfile=str(certs.key_file)) as url:
        url = url.replace("http://", "https://")
        r = await run(curl, "-s", "--cacert", certs.ca_file,
                      "--http2" if alpn == "h2" else "--http1.1", url + "/scope")
    scope = json.loads(r.out)
    assert scope["scheme"] == "https"
    assert scope["http_version"] == ("2" if alpn == "h2" else "1.1")
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] in (0x0303, 0x0304) and tls["cipher_name"]
    assert tls["client_cert_chain"] == []


# -- request bodies -----------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(30)
async def test_body_streams_in_messages(http2):
    body = os.urandom(1 << 20)
    async with asgi_server() as url, httpx_client(http2) as client:
        r = await client.post(url + "/echo", content=body)
    assert r.status_code == 200 and r.content == body
    assert int(r.headers["x-messages"]) > 1   # more_body: several http.request messages


@pytest.mark.asyncio
@deadline(20)
async def test_expect_100_continue_only_when_the_body_is_read(tmp_path):
    curl = require_tool("curl")
    data = tmp_path / "body"
    data.write_bytes(b"x" * 5000)
    async with asgi_server() as url:
        read = await run(curl, "-sv", "--http1.1", "-H", "Expect: 100-continue",
                         "--data-binary", "@%s" % data, url + "/continue")
        unread = await run(curl, "-sv", "--http1.1", "-H", "Expect: 100-continue",
                           "--expect100-timeout", "5", "--data-binary", "@%s" % data,
                           url + "/slow?ms=10")
    assert read.rc == 0 and read.out == b"got 5000", read.describe()
    assert "HTTP/1.1 100 Continue" in read.errtext, read.describe()
    # RFC 9110 10.1.1: the app answered without asking for the body: no 100 was sent.
    assert unread.rc == 0 and unread.out == b"slow\n", unread.describe()
    assert "100 Continue" not in unread.errtext, unread.describe()


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_disconnect_reaches_a_waiting_receive(http2):
    asgi_apps.events.clear()
    async with asgi_server() as url:
        client = await cno.connect(url + "/", http2=http2 or None)
        response = asyncio.ensure_future(client.request("GET", "/disconnect"))
        await asyncio.sleep(0.2)
        client.close()
        with contextlib.suppress(Exception):
            await response
        for _ in range(100):
            if asgi_apps.events:
                break
            await asyncio.sleep(0.02)
        seen = list(asgi_apps.events)
    assert seen == ["http.disconnect"]
    assert asgi_apps.events[-1] == "shutdown"   # lifespan shutdown, once the server stopped


# -- responses and extensions ---------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_streamed_body_with_trailers(http2):
    async with asgi_server() as url:
        client = await cno.connect(url + "/", http2=http2 or None)
        try:
            response = await client.request("GET", "/stream?n=4", [("te", "trailers")])
            body = await response.payload.read()
        finally:
            client.close()
    assert response.code == 200
    assert body == b"".join(b"chunk %d\n" % i for i in range(4))
    assert response.trailers == [("x-trailer", "done")]


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_early_hints_103(http2):
    async with asgi_server() as url:
        client = await cno.connect(url + "/", http2=http2 or None)
        try:
            response = await client.request("GET", "/early")
            body = await response.payload.read()
        finally:
            client.close()
    assert response.informational == [(103, [("link", "</style.css>; rel=preload; as=style")])]
    assert response.code == 200 and body == b"hinted\n"


@pytest.mark.asyncio
@deadline(20)
async def test_push_over_http2():
    async with asgi_server() as url:
        client = await cno.connect(url + "/", http2=True)
        try:
            response = await client.request("GET", "/push")
            body = await response.payload.read()
            pushes = []
            async for push in response.pushed:
                pushed = await push.response
                pushes.append((push.path, await pushed.payload.read()))
        finally:
            client.close()
    assert body == b"with a push\n"
    assert pushes == [("/pushed", b"I was pushed\n")]


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_pathsend_sends_the_file(http2):
    async with asgi_server() as url, httpx_client(http2) as client:
        r = await client.get(url + "/file")
    assert r.status_code == 200 and r.content == asgi_apps.FILE_BODY
    assert r.headers["content-length"] == str(len(asgi_apps.FILE_BODY))


@pytest.mark.asyncio
@deadline(30)
async def test_push_and_early_hints_on_the_wire_with_nghttp():
    nghttp = require_tool("nghttp")
    async with asgi_server() as url:
        pushed = await run(nghttp, "-nv", url + "/push")
        hinted = await run(nghttp, "-nv", url + "/early")
    assert pushed.rc == 0, pushed.describe()
    assert "recv PUSH_PROMISE frame" in pushed.text and ":path: /pushed" in pushed.text
    assert hinted.rc == 0, hinted.describe()
    assert re.search(r":status: 103\s+.*\s+link: </style.css>", hinted.text, re.S), \
        hinted.describe()


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [[], ["--h1"]], ids=["h2c", "http1.1"])
@deadline(60)
async def test_h2load_all_requests_succeed(flags):
    h2load = require_tool("h2load")
    async with asgi_server() as url:
        r = await run(h2load, "-n", "2000", "-c", "4", "-m", "5", *flags, url + "/echo",
                      timeout=50)
    assert r.rc == 0, r.describe()
    assert "2000 succeeded, 0 failed, 0 errored" in r.text, r.describe()


@pytest.mark.asyncio
@deadline(30)
async def test_cno_get_against_the_asgi_server():
    async with asgi_server() as url:
        r = await run(sys.executable, "-m", "cno", "get", "--http2-prior-knowledge",
                      url + "/stream?n=2")
    assert r.rc == 0 and r.out == b"chunk 0\nchunk 1\n", r.describe()


# -- application errors -----------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_application_errors(http2, caplog):
    httpx = require_module("httpx")
    caplog.set_level(logging.ERROR)
    async with asgi_server() as url, httpx_client(http2) as client:
        assert (await client.get(url + "/raise")).status_code == 500
        assert (await client.get(url + "/no-response")).status_code == 500
        assert (await client.get(url + "/bad-message")).status_code == 500
        assert (await client.get(url + "/bad-headers")).status_code == 500
        upper = await client.get(url + "/upper")
        assert upper.status_code == 200 and upper.headers["x-upper-case"] == "1"
        for path in ("/raise-late", "/half"):   # the head went out: the body must not
            with pytest.raises(httpx.HTTPError):  # look complete (reset / closed)
                await client.get(url + path)
        assert (await client.get(url + "/echo")).status_code == 200   # still serving
    text = caplog.text
    assert "the application fails before responding" in text
    assert "'status' must be an int" in text   # the malformed message names the key
    assert "http.response.start: 'headers'" in text


@pytest.mark.asyncio
@deadline(20)
async def test_body_the_engine_refuses_after_the_head_is_an_error(caplog):
    # HTTP/1.1: the head (content-length: 3) is accepted, the 8-byte body is not. That is
    # the application's error, logged, and the response is cut, not retried or taken for
    # a client that left.
    httpx = require_module("httpx")
    caplog.set_level(logging.ERROR)
    async with asgi_server() as url, httpx_client(False) as client:
        with pytest.raises(httpx.HTTPError):
            await client.get(url + "/wrong-length")
        assert (await client.get(url + "/echo")).status_code == 200
    assert "more data than the content-length announced" in caplog.text


@pytest.mark.asyncio
@deadline(20)
async def test_limit_concurrency_answers_503():
    async with asgi_server(limit_concurrency=1) as url, httpx_client(False) as a, \
            httpx_client(False) as b:
        slow = asyncio.ensure_future(a.get(url + "/slow?ms=500"))
        await asyncio.sleep(0.2)
        busy = await b.get(url + "/echo")
        assert (await slow).status_code == 200
        after = await b.get(url + "/echo")
    assert busy.status_code == 503 and after.status_code == 200


# -- lifespan -------------------------------------------------------------------------------

async def _failing_startup(scope, receive, send):
    assert scope["type"] == "lifespan"
    await receive()
    await send({"type": "lifespan.startup.failed", "message": "no database"})


async def _http_only(scope, receive, send):
    if scope["type"] != "http":
        raise ValueError("only http here")
    await asgi_apps._respond(send, 200, b"fine\n")


@pytest.mark.asyncio
@deadline(20)
async def test_lifespan_failure_and_unsupported():
    with pytest.raises(cno.asgi.LifespanFailure, match="no database"):
        async with asgi_server(_failing_startup):
            pass
    # lifespan "auto": an application that raises on the lifespan scope runs without it;
    # "on": that is an error.
    async with asgi_server(_http_only) as url, httpx_client(False) as client:
        assert (await client.get(url + "/")).text == "fine\n"
    with pytest.raises(cno.asgi.LifespanFailure):
        async with asgi_server(_http_only, lifespan="on"):
            pass


@pytest.mark.asyncio
@deadline(20)
async def test_unix_socket(tmp_path):
    curl = require_tool("curl")
    path = str(tmp_path / "cno.sock")
    async with asgi_server(uds=path):
        r = await run(curl, "-s", "--unix-socket", path, "http://localhost/scope")
    scope = json.loads(r.out)
    assert scope["headers"][0] == ["host", "localhost"]


@pytest.mark.asyncio
@deadline(20)
async def test_inherited_unix_socket_fd(tmp_path):
    # --fd with a listening UNIX socket (as systemd hands over): served, and the
    # "serving on" line names the socket's path.
    curl = require_tool("curl")
    path = str(tmp_path / "inherited.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen()
    async with asgi_server(fd=sock.detach(), port=None):
        r = await run(curl, "-s", "--unix-socket", path, "http://localhost/scope")
    assert json.loads(r.out)["server"] == [path, None]


# -- the demo application (cno.asgi.demo: cno serve without an argument, cno demo) ------------

@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_demo_app_page_push_echo_and_stream(http2):
    from cno.asgi import demo
    body = os.urandom(300000)   # (several http.request messages)
    async with asgi_server(demo.app) as url:
        client = await cno.connect(url + "/", http2=http2)
        try:
            page = await client.request("GET", "/")
            text = (await page.payload.read()).decode()
            pushes = []
            if http2:
                async for push in page.pushed:
                    pushed = await push.response
                    pushes.append((push.path, pushed.code, dict(pushed.headers)["content-type"],
                                   await pushed.payload.read()))
            style = await client.request("GET", "/style.css")
            css = await style.payload.read()
            echo = await client.request("POST", "/echo", [("content-type", "text/plain")], body)
            echoed = await echo.payload.read()
            stream = await client.request("GET", "/stream", [("te", "trailers")])
            chunks = [chunk async for chunk in stream.payload]
        finally:
            client.close()
    assert page.code == 200 and dict(page.headers)["content-type"].startswith("text/html")
    assert '<span class="version">HTTP/%s</span>' % ("2" if http2 else "1.1") in text
    assert '<link rel="stylesheet" href="/style.css">' in text
    assert 'href="/stream"' in text and 'action="/echo"' in text
    assert "It has been running for" in text   # lifespan startup stored the start time
    assert style.code == 200 and b"font-family" in css
    # HTTP/2: the stylesheet was pushed (the push extension), the same as fetched
    assert pushes == ([("/style.css", 200, "text/css; charset=utf-8", css)] if http2 else [])
    assert echo.code == 200 and echoed == body
    assert dict(echo.headers)["content-type"] == "text/plain; charset=utf-8"
    assert stream.code == 200 and b"".join(chunks).count(b"\n") == demo.STREAM_CHUNKS
    assert len(chunks) > 1   # sent as made (STREAM_DELAY apart), not in one piece
    assert stream.trailers == [("x-chunks", str(demo.STREAM_CHUNKS))]


@pytest.mark.asyncio
@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2c"])
@deadline(20)
async def test_demo_app_refuses_large_echoes_and_unknown_paths(http2):
    from cno.asgi import demo
    big = b"x" * (demo.MAX_ECHO + 1)

    async def unannounced():   # (no content-length: HTTP/1.1 sends it chunked)
        for i in range(0, len(big), 65536):
            yield big[i:i + 65536]

    answers = []
    async with asgi_server(demo.app) as url:
        for method, path, data in (("GET", "/nothing", b""), ("POST", "/", b""),
                                   ("GET", "/echo", b""), ("POST", "/echo", big),
                                   ("POST", "/echo", unannounced())):
            # (a fresh connection each: HTTP/1.1 closes one whose body it did not read)
            client = await cno.connect(url + "/", http2=http2)
            try:
                response = await client.request(method, path, [], data)
                answers.append((response.code, dict(response.headers).get("allow"),
                                await response.payload.read()))
            finally:
                client.close()
    too_large = b"the echo takes bodies of up to %d bytes\n" % demo.MAX_ECHO
    assert answers == [(404, None, b"not found: try /\n"),
                       (405, "GET, HEAD", b"GET only here\n"),
                       (405, "POST", b"POST a body to /echo\n"),
                       (413, None, too_large), (413, None, too_large)]


@pytest.mark.asyncio
@deadline(20)
async def test_demo_app_push_on_the_wire_with_nghttp():
    from cno.asgi import demo
    nghttp = require_tool("nghttp")
    async with asgi_server(demo.app) as url:
        r = await run(nghttp, "-nv", url + "/")
    assert r.rc == 0, r.describe()
    assert "recv PUSH_PROMISE frame" in r.text and ":path: /style.css" in r.text, r.describe()


# -- python -m cno serve module:app ------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.asyncio
@deadline(60)
async def test_cli_serves_starlette_over_every_transport():
    require_module("starlette")
    curl = require_tool("curl")
    server = ServeProcess("asgi_apps:starlette_app", "--access-log")
    try:
        for flags, version in ((["--http1.1"], "1.1"), (["--http2-prior-knowledge"], "2"),
                               (["--http2"], "2")):   # --http2: Upgrade: h2c
            r = await run(curl, "-s", *flags, server.url + "/")
            assert json.loads(r.out) == {"greeting": "hello from lifespan",
                                         "http_version": version}, r.describe()
        r = await run(curl, "-s", "--http2-prior-knowledge", "-H", "content-type: application/json",
                      "--data-binary", '{"a": [1, 2]}', server.url + "/echo")
        assert json.loads(r.out) == {"you_sent": {"a": [1, 2]}}, r.describe()
        r = await run(curl, "-s", "--http1.1", server.url + "/stream")
        assert r.out == b"0\n1\n2\n3\n4\n", r.describe()
        r = await run(curl, "-s", "--http2-prior-knowledge", server.url + "/file")
        assert r.out == asgi_apps.FILE_BODY
        r = await run(curl, "-s", "--http1.1", server.url + "/background")
        assert json.loads(r.out) == {"ok": True}
    finally:
        rc = server.stop()
    assert rc == 0, server.output
    assert re.search(r'"GET /stream HTTP/1.1" 200', server.output), server.output


@pytest.mark.slow
@pytest.mark.asyncio
@deadline(60)
async def test_cli_serves_fastapi_to_httpx():
    require_module("fastapi")
    server = ServeProcess("asgi_apps:fastapi_app")
    try:
        async with httpx_client(True) as client:
            r = await client.put(server.url + "/items/7", json={"name": "cup", "price": 2.5})
            assert r.json() == {"id": 7, "name": "cup", "price": 2.5}
            assert (await client.get(server.url + "/items/7")).json() == {"id": 7,
                                                                       "name": "cup"}
            assert (await client.get(server.url + "/stream")).text == "fast\napi\nstream\n"
            assert r.http_version == "HTTP/2"
    finally:
        rc = server.stop()
    assert rc == 0, server.output


@pytest.mark.slow
@pytest.mark.asyncio
@deadline(60)
async def test_cli_graceful_shutdown_finishes_running_requests():
    curl = require_tool("curl")
    server = ServeProcess("asgi_apps:raw_app")
    try:
        slow = asyncio.ensure_future(run(curl, "-s", "--http2-prior-knowledge",
                                         server.url + "/slow?ms=1500"))
        await asyncio.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        r = await slow
        assert r.rc == 0 and r.out == b"slow\n", r.describe()
        await asyncio.sleep(0.3)
        refused = await run(curl, "-s", server.url + "/echo")
        assert refused.rc != 0   # no longer listening
    finally:
        rc = server.stop()
    assert rc == 0, server.output


@pytest.mark.slow
@pytest.mark.asyncio
@deadline(90)
async def test_cli_workers_share_the_port_and_are_restarted():
    curl = require_tool("curl")
    server = ServeProcess("asgi_apps:raw_app", "--workers", "2")
    try:
        def worker_pids():
            return {int(p) for p in re.findall(r"serving on \S+ \(pid (\d+)\)", server.output)}

        async def pids_seen(n, within=30):
            for _ in range(int(within / 0.1)):
                if len(worker_pids()) >= n:
                    return worker_pids()
                await asyncio.sleep(0.1)
            raise AssertionError("workers did not start:\n" + server.output)

        first = await pids_seen(2)
        answered_by = set()
        for _ in range(40):   # new connections land on both workers (SO_REUSEPORT)
            r = await run(curl, "-s", server.url + "/scope")
            answered_by.add(json.loads(r.out)["state"]["pid"])
            if len(answered_by) == 2:
                break
        assert answered_by == first, (answered_by, first)
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        replaced = await pids_seen(3)
        assert victim in replaced and len(replaced - first) == 1
        r = await run(curl, "-s", server.url + "/echo")
        assert r.rc == 0
    finally:
        rc = server.stop()
    assert rc == 0, server.output
    assert "exited" in server.output   # the supervisor said why it started another


@pytest.mark.slow
def test_cli_lifespan_failure_exits_with_a_message():
    r = subprocess.run([sys.executable, "-m", "cno", "serve", "test_asgi:_failing_startup",
                        "--port", "0"], cwd=TESTS, capture_output=True, text=True, timeout=30)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "no database" in r.stderr


def test_cli_bad_application_is_a_usage_error():
    r = subprocess.run([sys.executable, "-m", "cno", "serve", "asgi_apps:nothing_here",
                        "--port", "0"], cwd=TESTS, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot load the application" in r.stderr, r.stderr


def _descendants(pid):
    """The pids of pid's children, their children, ... (Linux: from /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/stat" % entry) as f:
                    stat = f.read()
            except OSError:
                continue
            parents.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


RELOAD_APP = """\
async def app(scope, receive, send):
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": %r})
"""


@pytest.mark.skipif(sys.platform == "win32", reason="stopped with SIGINT")
def test_cli_reload_restarts_the_server_when_the_code_changes(tmp_path):
    require_module("watchfiles")
    import urllib.request
    (tmp_path / "reload_app.py").write_text(RELOAD_APP % b"first\n")
    proc = subprocess.Popen([sys.executable, "-m", "cno", "serve", "reload_app:app", "--reload",
                             "--port", "0"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    lines = []

    def served(count):
        """(port, pid) of the count-th "serving on" line, once it is there."""
        deadline_at = time.monotonic() + 10
        while time.monotonic() < deadline_at:
            found = re.findall(r"serving on http://127\.0\.0\.1:(\d+) \(pid (\d+)\)",
                               "".join(lines))
            if len(found) >= count:
                return tuple(map(int, found[count - 1]))
            time.sleep(0.02)
        raise AssertionError("no server started:\n" + "".join(lines))

    def get(port):
        with urllib.request.urlopen("http://127.0.0.1:%d/" % port, timeout=5) as r:
            return r.read()

    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        port, first = served(1)
        assert get(port) == b"first\n"
        tree = _descendants(proc.pid) if os.path.isdir("/proc/self") else [first]
        assert first in tree
        (tmp_path / "reload_app.py").write_text(RELOAD_APP % b"second version\n")
        (tmp_path / "notes.txt").write_text("not Python: no restart for this")
        same_port, second = served(2)   # a new child on the same socket
        assert same_port == port and second != first and not _alive(first)
        assert get(port) == b"second version\n"
        tree += _descendants(proc.pid) if os.path.isdir("/proc/self") else [second]
        proc.send_signal(signal.SIGINT)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(5)
    output = "".join(lines)
    assert "reload_app.py changed: restarting the server" in output, output
    assert "Traceback" not in output and output.count("serving on") == 2, output
    # the whole tree is gone (the resource tracker goes once its pipe from us closes)
    deadline_at = time.monotonic() + 5
    while any(map(_alive, tree)) and time.monotonic() < deadline_at:
        time.sleep(0.05)
    assert not any(map(_alive, tree)), tree
