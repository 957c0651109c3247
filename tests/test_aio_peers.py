"""The asyncio layer (docs/aio.md) against real peers, over loopback.

- curl, nghttp, h2load and httpx as clients of ``cno.serve``;
- ``cno.connect`` / ``cno.request`` as clients of nghttpd and hypercorn.

HTTP/1.1, h2c by prior knowledge, h2c by Upgrade, and TLS with ALPN (self-signed
certificate from tests/aio_util.Certs). The cno server runs in the test's event loop;
external clients run with asyncio subprocesses so the loop keeps serving. Helpers and
the server app for hypercorn are in tests/aio_util.py.
"""
import asyncio
import hashlib
import os
import re

import pytest

import cno
from aio_util import (
    CnoServer,
    External,
    deadline,
    header,
    nghttpd,
    parse_curl_headers,
    require_module,
    require_tool,
    run,
    tempdir,
)

BIG = bytes(range(256)) * 4096                                   # 1 MiB
UPLOAD = hashlib.sha256(b"seed").digest() * (300000 // 32)       # 300000 bytes
STREAM_CHUNKS = [b"%06d:" % i + b"x" * 1000 + b"\n" for i in range(300)]
STREAMED = b"".join(STREAM_CHUNKS)
CSS = b"body { color: #c0ffee }\n"
TRAILER_BODY = b"the body before the trailers\n"
CHECKSUM = hashlib.sha256(TRAILER_BODY).hexdigest()


# -- the cno server's app --------------------------------------------------------------------

async def app(request):
    """The handler every cno server here runs."""
    path, _, query = request.path.partition("?")
    params = dict(kv.partition("=")[::2] for kv in query.split("&") if kv)
    # ?n=N: /stream and /gen send only the first N chunks.
    chunks = STREAM_CHUNKS[:int(params["n"])] if "n" in params else STREAM_CHUNKS
    base = [
        ("content-type", "application/octet-stream"),
        ("x-method", request.method),
        ("x-path", request.path),
        ("x-http2", "1" if request.conn.is_http2 else "0"),
    ]
    if path == "/":
        await request.respond(200, [("content-type", "text/plain")], b"hello\n")
    elif path == "/echo":
        body = await request.payload.read()
        await request.respond(200, base + [("x-body-length", str(len(body)))], body)
    elif path == "/echo-lines":
        # Payload.readline / readexactly on a body arriving in pieces.
        lines = []
        while True:
            line = await request.payload.readline()
            if not line:
                break
            lines.append(line)
        await request.respond(200, base + [("x-lines", str(len(lines)))], b"".join(lines))
    elif path == "/stream":
        channel = cno.Channel(4)

        async def produce():
            for chunk in chunks:
                await channel.put(chunk)
            channel.close()

        producer = asyncio.ensure_future(produce())
        try:
            await request.respond(200, base, channel)
        finally:
            if not producer.done():
                producer.cancel()
        await producer
    elif path == "/gen":
        async def gen():
            for chunk in chunks:
                yield chunk
        await request.respond(200, base, gen())
    elif path == "/push":
        pushed = request.push("GET", "/pushed.css", [("x-extra", "1")])
        await request.respond(200, base + [("x-pushed", "1" if pushed else "0")],
                              b'<link rel="stylesheet" href="/pushed.css">\n')
    elif path == "/pushed.css":
        await request.respond(200, [("content-type", "text/css"),
                                    ("x-extra-seen", header(request.headers, "x-extra", "-"))],
                              CSS)
    elif path == "/trailers":
        await request.respond(200, base, TRAILER_BODY, trailers=[("x-checksum", CHECKSUM)])
    elif path == "/slow":
        # ?ms: sleep before answering; counts how many run at once (app.running/peak).
        app.running += 1
        app.peak = max(app.peak, app.running)
        try:
            await asyncio.sleep(int(params.get("ms", 300)) / 1000)
        finally:
            app.running -= 1
        await request.respond(200, base, b"slept\n")
    elif path == "/raise-before":
        raise RuntimeError("handler failed before respond (on purpose)")
    elif path == "/no-response":
        return
    elif path == "/raise-after":
        async def failing():
            yield b"a" * 1000
            await asyncio.sleep(0.05)
            raise RuntimeError("handler failed after the head (on purpose)")
        await request.respond(200, base, failing())
    elif path == "/big":
        await request.respond(200, base, BIG)
    elif path.startswith("/big-"):
        await request.respond(200, base, BIG[:int(path[5:])])
    else:
        await request.respond(404, [("content-type", "text/plain")], b"not found\n")


app.running = app.peak = 0


# -- fixtures ----------------------------------------------------------------------------------

@pytest.fixture
def upload_file(tmp_path):
    p = tmp_path / "upload.bin"
    p.write_bytes(UPLOAD)
    return p


@pytest.fixture(scope="module")
def docroot(tmp_path_factory):
    d = tmp_path_factory.mktemp("docroot")
    (d / "file.bin").write_bytes(os.urandom(300000))   # > 65535: needs WINDOW_UPDATEs
    (d / "index.html").write_bytes(b"<html>" + b"i" * 1000 + b"</html>\n")
    (d / "style.css").write_bytes(CSS)
    return d


@pytest.fixture(scope="module")
def nghttpd_plain(docroot):
    with nghttpd(docroot) as srv:
        yield srv


@pytest.fixture(scope="module")
def nghttpd_tls(docroot, certs):
    with nghttpd(docroot, certs) as srv:
        yield srv


@pytest.fixture(scope="module")
def nghttpd_push(docroot):
    exe = require_tool("nghttpd")
    with External(lambda port: [exe, "-d", docroot, "--no-tls",
                                "--push=/index.html=/style.css", port]) as srv:
        yield srv


def sha(b):
    return hashlib.sha256(b).hexdigest()


# -- curl -> cno server ----------------------------------------------------------------------

# (id, tls, curl flags, expected %{http_version})
CURL_MODES = [
    ("h2c-prior-knowledge", False, ["--http2-prior-knowledge"], "2"),
    ("h2c-upgrade", False, ["--http2"], "2"),
    ("http1.1", False, ["--http1.1"], "1.1"),
    ("tls-alpn-h2", True, [], "2"),
    ("tls1.2-alpn-h2", True, ["--tlsv1.2", "--tls-max", "1.2"], "2"),
    ("tls-http1.1", True, ["--http1.1"], "1.1"),
]


async def curl(srv, certs, flags, path, *extra, tmp_path, timeout=30):
    """One curl request; (http_version, code, header blocks, body)."""
    exe = require_tool("curl")
    body_file = tmp_path / "curl-body"
    head_file = tmp_path / "curl-head"
    argv = [exe, "-sS", "--max-time", "10", "-o", body_file, "-D", head_file,
            "-w", "%{http_version} %{http_code}", *flags, *extra]
    if srv.ssl is not None:
        argv += ["--cacert", certs.ca_file]
    argv.append(srv.url(path))
    res = await run(*argv, timeout=timeout)
    assert res.rc == 0, res.describe() + "\n" + srv.report()
    version, code = res.text.split()
    return (version, int(code), parse_curl_headers(head_file.read_bytes()),
            body_file.read_bytes(), res)


def final_headers(blocks):
    """The last block with a status line (1xx / 101 blocks come before it)."""
    return [b for b in blocks if b[0]][-1]


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", CURL_MODES, ids=[m[0] for m in CURL_MODES])
@deadline(30)
async def test_curl_get(mode, certs, tmp_path):
    _, tls, flags, want = mode
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        version, code, blocks, body, res = await curl(
            srv, certs, flags, "/echo?q=1&r=%20x", tmp_path=tmp_path)
        assert (version, code) == (want, 200), res.describe()
        status, headers = final_headers(blocks)
        assert header(headers, "x-method") == "GET"
        assert header(headers, "x-path") == "/echo?q=1&r=%20x"
        assert header(headers, "x-http2") == ("1" if want == "2" else "0")
        assert header(headers, "content-type") == "application/octet-stream"
        assert body == b""
        if mode[0] == "h2c-upgrade":
            # RFC 9113 3.2 / RFC 7540 3.2: 101 Switching Protocols, then the response.
            assert blocks[0][0].startswith("HTTP/1.1 101"), blocks


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", CURL_MODES, ids=[m[0] for m in CURL_MODES])
@deadline(30)
async def test_curl_post(mode, certs, tmp_path, upload_file):
    _, tls, flags, want = mode
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        version, code, blocks, body, res = await curl(
            srv, certs, flags, "/echo", "--data-binary", "@%s" % upload_file,
            "-H", "content-type: application/octet-stream", tmp_path=tmp_path)
        if mode[0] == "h2c-upgrade":
            # A request with a body may be upgraded or not (RFC 7540 3.2); either way
            # the body must arrive whole.
            assert version in ("1.1", "2"), res.describe()
        else:
            assert version == want, res.describe()
        assert code == 200
        _, headers = final_headers(blocks)
        assert header(headers, "x-method") == "POST"
        assert header(headers, "x-body-length") == str(len(UPLOAD))
        assert len(body) == len(UPLOAD) and body == UPLOAD


@pytest.mark.asyncio
@pytest.mark.parametrize("path,expected", [("/big", BIG), ("/stream", STREAMED), ("/gen", STREAMED)],
                         ids=["big-bytes", "channel", "async-generator"])
@pytest.mark.parametrize("mode", CURL_MODES, ids=[m[0] for m in CURL_MODES])
@deadline(30)
async def test_curl_download(mode, path, expected, certs, tmp_path):
    _, tls, flags, want = mode
    if mode[0] == "h2c-upgrade":
        # curl 7.88 cannot take more than 32 KiB in the read that carries the 101 ("connection
        # buffer size is too small to store data following HTTP Upgrade response header");
        # a server may legally send a full 64 KiB window there. Smaller bodies here;
        # nghttp -u (test_nghttp_download_and_upload) covers the large ones.
        if path == "/big":
            expected, path = expected[:20000], "/big-20000"
        else:
            expected, path = b"".join(STREAM_CHUNKS[:15]), path + "?n=15"
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        version, code, blocks, body, res = await curl(srv, certs, flags, path, tmp_path=tmp_path)
        assert (version, code) == (want, 200), res.describe()
        assert len(body) == len(expected) and sha(body) == sha(expected)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", CURL_MODES, ids=[m[0] for m in CURL_MODES])
@deadline(30)
async def test_curl_trailers(mode, certs, tmp_path):
    _, tls, flags, want = mode
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        version, code, blocks, body, res = await curl(srv, certs, flags, "/trailers",
                                                      tmp_path=tmp_path)
        assert (version, code) == (want, 200), res.describe()
        assert body == TRAILER_BODY
        # curl hands trailers to the header callback: they follow the final head in -D.
        fields = [kv for _, hs in blocks for kv in hs]
        assert ("x-checksum", CHECKSUM) in fields, blocks
        if want == "1.1":
            _, headers = final_headers(blocks)
            assert header(headers, "transfer-encoding") == "chunked", headers


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", [m for m in CURL_MODES if m[3] == "2" and m[1]],
                         ids=[m[0] for m in CURL_MODES if m[3] == "2" and m[1]])
@deadline(30)
async def test_curl_parallel_multiplexed(mode, certs, tmp_path):
    """20 transfers in one curl (-Z): multiplexed on one HTTP/2 connection. TLS only:
    curl 7.88's -Z with --http2-prior-knowledge fails all but the first transfer with
    "(16) Error in the HTTP2 framing layer" against nghttpd too (a curl bug)."""
    _, tls, flags, want = mode
    exe = require_tool("curl")
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        argv = [exe, "-sS", "--max-time", "20", "-Z", "--parallel-max", "20",
                "-w", "%{http_version} %{http_code} %{num_connects}\\n", *flags]
        if tls:
            argv += ["--cacert", certs.ca_file]
        paths = ["/stream?i=%d" % i if i % 2 else "/big?i=%d" % i for i in range(20)]
        for i, p in enumerate(paths):
            argv += [srv.url(p), "-o", tmp_path / ("out%d" % i)]
        res = (await run(*argv, timeout=30))
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        lines = res.text.split("\n")
        lines = [ln.split() for ln in lines if ln]
        assert len(lines) == 20, res.describe()
        assert all(ln[:2] == [want, "200"] for ln in lines), res.describe()
        assert sum(int(ln[2]) for ln in lines) <= 2, "expected one connection: " + res.text
        for i, p in enumerate(paths):
            got = (tmp_path / ("out%d" % i)).read_bytes()
            assert sha(got) == sha(STREAMED if i % 2 else BIG), p


@pytest.mark.asyncio
@pytest.mark.parametrize("flags,want,tls", [(["--http1.1"], "1.1", False), ([], "2", True),
                                            (["--http1.1"], "1.1", True)],
                         ids=["http1.1", "tls-h2", "tls-http1.1"])
@deadline(30)
async def test_curl_keepalive_sequence(flags, want, tls, certs, tmp_path):
    """Several URLs in one curl run: one connection, requests one after another. (Not
    h2c by prior knowledge: curl 7.88 fails every transfer after the first on a reused
    prior-knowledge connection, "(16) Error in the HTTP2 framing layer", nghttpd too.)"""
    exe = require_tool("curl")
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        argv = [exe, "-sS", "--max-time", "20",
                "-w", "%{http_version} %{http_code} %{num_connects}\\n", *flags]
        if tls:
            argv += ["--cacert", certs.ca_file]
        for i in range(5):
            argv += [srv.url("/echo?n=%d" % i), "-o", tmp_path / ("o%d" % i)]
            argv += [srv.url("/trailers?n=%d" % i), "-o", tmp_path / ("t%d" % i)]
        res = await run(*argv, timeout=30)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        lines = [ln.split() for ln in res.text.split("\n") if ln]
        assert [ln[:2] for ln in lines] == [[want, "200"]] * 10, res.describe()
        assert sum(int(ln[2]) for ln in lines) == 1, "expected one connection: " + res.text
        for i in range(5):
            assert (tmp_path / ("t%d" % i)).read_bytes() == TRAILER_BODY


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [["--http1.1", "-H", "connection: close"], ["--http1.0"]],
                         ids=["connection-close", "http1.0"])
@pytest.mark.parametrize("path,post", [("/", False), ("/echo", True), ("/big", False),
                                       ("/stream", False)],
                         ids=["small", "echo-post", "big", "channel"])
@deadline(30)
async def test_curl_http1_connection_close(flags, path, post, tmp_path, upload_file):
    """A request that ends the connection (Connection: close, or HTTP/1.0 without
    keep-alive): the whole response must go out before the server closes (RFC 9112 9.6).
    An HTTP/1.0 response without content-length is delimited by the close, so a lost
    body would look complete: check the bytes."""
    exe = require_tool("curl")
    want = {"/": b"hello\n", "/echo": UPLOAD, "/big": BIG, "/stream": STREAMED}[path]
    async with CnoServer(app) as srv:
        extra = ["--data-binary", "@%s" % upload_file] if post else []
        res = await run(exe, "-sS", "--max-time", "10", *flags, *extra, "-o", tmp_path / "b",
                        "-D", tmp_path / "h", "-w", "%{http_code} %{size_download}",
                        srv.url(path), timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        assert res.text == "200 %d" % len(want), res.describe()
        assert (tmp_path / "b").read_bytes() == want
        _, headers = final_headers(parse_curl_headers((tmp_path / "h").read_bytes()))
        if "--http1.0" not in flags:
            assert header(headers, "connection") == "close", headers


@pytest.mark.asyncio
@deadline(30)
async def test_curl_head_has_no_body(tmp_path):
    """docs/aio.md: a response to HEAD sends no body (HTTP/1.1: curl would otherwise see
    the bytes as garbage before the next response)."""
    exe = require_tool("curl")
    async with CnoServer(app) as srv:
        # HTTP/1.1: two HEADs on one connection; body bytes would corrupt the second.
        res = await run(exe, "-sS", "--max-time", "10", "-I", "--http1.1",
                        "-w", "%{http_code} %{size_download} %{num_connects}\\n",
                        srv.url("/big"), "-o", os.devnull, srv.url("/"), "-o", os.devnull,
                        timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        assert res.text == "200 0 1\n200 0 0\n", res.describe()
        # HTTP/2 (one URL per run, see test_curl_keepalive_sequence).
        res = await run(exe, "-sS", "--max-time", "10", "-I", "--http2-prior-knowledge",
                        "-w", "%{http_code} %{size_download}\\n",
                        srv.url("/big"), "-o", os.devnull, timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        assert res.text == "200 0\n", res.describe()


# -- nghttp -> cno server --------------------------------------------------------------------

STATUS_RE = re.compile(r"recv \(stream_id=(\d+)\) :status: (\d+)")


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [["-nv"], ["-nvu"]], ids=["prior-knowledge", "upgrade"])
@deadline(30)
async def test_nghttp_get(flags):
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        res = await run(exe, *flags, srv.url("/"), timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        statuses = STATUS_RE.findall(res.text)
        assert [s for _, s in statuses] == ["200"], res.describe()
        if "u" in flags[0]:
            assert "HTTP Upgrade success" in res.text, res.describe()
            assert statuses[0][0] == "1", res.describe()   # the upgraded request is stream 1
        assert "recv GOAWAY" not in res.text, res.describe()


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [["-v"], ["-vu"]], ids=["prior-knowledge", "upgrade"])
@deadline(30)
async def test_nghttp_push(flags):
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        res = await run(exe, *flags, srv.url("/push"), timeout=20)
        out = res.text
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        assert "recv PUSH_PROMISE frame" in out, res.describe()
        m = re.search(r"promised_stream_id=(\d+)", out)
        assert m, res.describe()
        promised = m.group(1)
        assert int(promised) % 2 == 0, res.describe()   # server-initiated: even
        # The promise carries the request: inherited :authority and :scheme, our extra field.
        # nghttp prints the promised request's fields just before the frame line.
        lines = out.splitlines()
        i = next(i for i, ln in enumerate(lines) if "recv PUSH_PROMISE frame" in ln)
        fields = []
        while i > 0 and re.search(r"recv \(stream_id=\d+\) ", lines[i - 1]):
            i -= 1
            fields.insert(0, lines[i].split(") ", 1)[1])
        promise_block = "\n".join(fields)
        assert ":path: /pushed.css" in promise_block, promise_block
        assert ":method: GET" in promise_block, promise_block
        assert ":authority: 127.0.0.1:%d" % srv.port in promise_block, promise_block
        assert ":scheme: http" in promise_block, promise_block
        assert "x-extra: 1" in promise_block, promise_block
        statuses = dict(STATUS_RE.findall(out))
        assert statuses.get(promised) == "200", res.describe()
        assert "recv (stream_id=%s) x-extra-seen: 1" % promised in out, res.describe()
        assert "x-pushed: 1" in out, res.describe()
        # The pushed body itself is printed to stdout (no -n).
        assert CSS.decode() in out, res.describe()


@pytest.mark.asyncio
@deadline(30)
async def test_nghttp_push_disabled():
    """With SETTINGS_ENABLE_PUSH=0 (nghttp --no-push) push() returns False and nothing is
    promised (RFC 9113 6.5.2, 8.4)."""
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        res = await run(exe, "-v", "--no-push", srv.url("/push"), timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        assert "PUSH_PROMISE" not in res.text, res.describe()
        assert "x-pushed: 0" in res.text, res.describe()


@pytest.mark.asyncio
@deadline(30)
async def test_nghttp_trailers():
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        res = await run(exe, "-v", srv.url("/trailers"), timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        out = res.text
        sid = STATUS_RE.findall(out)[0][0]
        line = "recv (stream_id=%s) x-checksum: %s" % (sid, CHECKSUM)
        assert line in out, res.describe()
        # The trailers come after the body, in a HEADERS frame that ends the stream.
        assert out.index(line) > out.index("recv DATA frame"), res.describe()
        after = out[out.index(line):]
        assert re.search(r"recv HEADERS frame <[^>]*stream_id=%s>\s*; END_STREAM" % sid, after), \
            res.describe()
        assert TRAILER_BODY.decode() in out


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [[], ["-u"]], ids=["prior-knowledge", "upgrade"])
@deadline(30)
async def test_nghttp_download_and_upload(flags, tmp_path, upload_file):
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        res = await run(exe, *flags, srv.url("/big"), timeout=20)
        assert res.rc == 0, res.errtext + srv.report()
        assert sha(res.out) == sha(BIG)
        res = await run(exe, *flags, srv.url("/stream"), timeout=20)
        assert res.rc == 0, res.errtext + srv.report()
        assert res.out == STREAMED
        if not flags:   # nghttp cannot combine -u with -d
            res = await run(exe, "-d", upload_file, srv.url("/echo"), timeout=20)
            assert res.rc == 0, res.errtext + srv.report()
            assert sha(res.out) == sha(UPLOAD)
            lines = b"".join(b"line %d\n" % i for i in range(20000))
            (tmp_path / "lines").write_bytes(lines)
            res = await run(exe, "-d", tmp_path / "lines", srv.url("/echo-lines"), timeout=20)
            assert res.rc == 0, res.errtext + srv.report()
            assert res.out == lines


@pytest.mark.asyncio
@deadline(30)
async def test_nghttp_many_streams_small_window():
    """nghttp with a 2^10 byte stream window (-w 10) and connection window (-W 10): the
    server must wait for WINDOW_UPDATEs between chunks (docs/aio.md respond())."""
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        urls = [srv.url("/big?i=%d" % i) for i in range(4)] + \
               [srv.url("/stream?i=%d" % i) for i in range(4)]
        res = await run(exe, "-w", "10", "-W", "10", *urls, timeout=25)
        assert res.rc == 0, res.errtext + srv.report()
        # Bodies of concurrent streams are interleaved on stdout: compare the total.
        assert len(res.out) == 4 * len(BIG) + 4 * len(STREAMED)
        assert res.out.count(b"\xff") == 4 * BIG.count(b"\xff")


@pytest.mark.asyncio
@deadline(30)
async def test_nghttp_max_concurrent_streams():
    """max_concurrent_streams=2 is announced in SETTINGS and holds from the first frame:
    nghttp sends its six HEADERS before our SETTINGS reach it, and the streams past two
    are refused with REFUSED_STREAM, never processed (RFC 9113 5.1.2, 8.7); those it sends
    after our SETTINGS arrived wait for a free stream. Never more than two run at once."""
    exe = require_tool("nghttp")
    app.running = app.peak = 0
    async with CnoServer(app, max_concurrent_streams=2) as srv:
        urls = [srv.url("/slow?ms=150&i=%d" % i) for i in range(6)]
        res = await run(exe, "-nv", *urls, timeout=20)
        assert "[SETTINGS_MAX_CONCURRENT_STREAMS(0x03):2]" in res.text, res.describe()
        answered = [s for _, s in STATUS_RE.findall(res.text)]
        refused = res.text.count("error_code=REFUSED_STREAM")
        assert set(answered) <= {"200"} and len(answered) >= 2, res.describe()
        assert len(answered) + refused == 6, res.describe()
        assert srv.requests == len(answered)
        assert app.peak <= 2, app.peak


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [["--http1.1"], ["--http2-prior-knowledge"]], ids=["http1.1", "h2c"])
@deadline(30)
async def test_curl_handler_failures(flags, tmp_path):
    """docs/aio.md: a handler raising before respond() -> 500; returning without
    responding -> 500; raising after the head went out -> stream reset (HTTP/2) or
    connection closed (HTTP/1.1): curl must see an error, not a complete body."""
    exe = require_tool("curl")
    async with CnoServer(app, allow_errors=True) as srv:
        for path in ("/raise-before", "/no-response"):
            res = await run(exe, "-sS", "--max-time", "10", *flags, "-o", tmp_path / "b",
                            "-w", "%{http_code}", srv.url(path), timeout=20)
            assert (res.rc, res.text) == (0, "500"), res.describe() + "\n" + srv.report()
        res = await run(exe, "-sS", "--max-time", "10", *flags, "-o", tmp_path / "b",
                        "-w", "%{http_code}", srv.url("/raise-after"), timeout=20)
        # HTTP/1.1 chunked body cut short: 18 (partial file); HTTP/2 RST_STREAM: 92
        # (stream error) or 16 (framing layer), per curl version.
        assert res.rc in (18, 16, 92, 56), res.describe() + "\n" + srv.report()
        assert res.text == "200", res.describe()
        # The server still serves after all that.
        res = await run(exe, "-sS", "--max-time", "10", *flags, srv.url("/"), timeout=20)
        assert (res.rc, res.out) == (0, b"hello\n"), res.describe() + "\n" + srv.report()
    joined = "\n".join(srv.handler_errors)
    assert "before respond (on purpose)" in joined and "after the head (on purpose)" in joined, \
        srv.report()
    assert not any("cancelled" in e for e in srv.handler_errors), srv.report()


@pytest.mark.asyncio
@deadline(30)
async def test_nghttp_handler_raises_after_head():
    """HTTP/2: the stream is reset with INTERNAL_ERROR; the connection lives on."""
    exe = require_tool("nghttp")
    async with CnoServer(app, allow_errors=True) as srv:
        res = await run(exe, "-v", srv.url("/raise-after"), srv.url("/"), timeout=20)
        out = res.text
        assert re.search(r"recv RST_STREAM frame <[^>]*stream_id=(\d+)>\s*\(error_code="
                         r"INTERNAL_ERROR\(0x02\)\)", out), res.describe() + "\n" + srv.report()
        assert "recv GOAWAY" not in out, res.describe()
        assert "hello\n" in out, res.describe()


@pytest.mark.asyncio
@deadline(30)
async def test_nghttp_shutdown_finishes_running_streams():
    """shutdown(): GOAWAY, the running stream still completes, then the server closes."""
    exe = require_tool("nghttp")
    async with CnoServer(app) as srv:
        task = asyncio.ensure_future(run(exe, "-v", srv.url("/slow?ms=800"), timeout=20))
        for _ in range(200):
            if app.running:
                break
            await asyncio.sleep(0.01)
        assert app.running == 1, "the request never reached the handler"
        await asyncio.wait_for(srv.service.shutdown(timeout=5), 10)
        res = await task
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        out = res.text
        assert "recv GOAWAY frame" in out, res.describe()
        assert "slept" in out, res.describe()
        assert out.index("recv GOAWAY frame") < out.index("slept"), res.describe()


@pytest.mark.asyncio
@deadline(30)
async def test_curl_http1_shutdown_finishes_running_request(tmp_path):
    """shutdown() on HTTP/1.1: the running request completes with Connection: close."""
    exe = require_tool("curl")
    async with CnoServer(app) as srv:
        task = asyncio.ensure_future(run(exe, "-sS", "--http1.1", "-D", "-",
                                         srv.url("/slow?ms=800"), timeout=20))
        for _ in range(200):
            if app.running:
                break
            await asyncio.sleep(0.01)
        assert app.running == 1, "the request never reached the handler"
        await asyncio.wait_for(srv.service.shutdown(timeout=5), 10)
        res = await task
        assert res.rc == 0, res.describe() + "\n" + srv.report()
        assert res.text.endswith("slept\n"), res.describe()
        blocks = parse_curl_headers(res.out.split(b"\r\n\r\n")[0] + b"\r\n")
        assert header(final_headers(blocks)[1], "connection") == "close", res.describe()


# -- h2load -> cno server --------------------------------------------------------------------

REQUESTS_RE = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                         r"(\d+) failed, (\d+) errored, (\d+) timeout")


def h2load_counts(res):
    m = REQUESTS_RE.search(res.text)
    assert m, res.describe()
    keys = ("total", "started", "done", "succeeded", "failed", "errored", "timeout")
    return dict(zip(keys, map(int, m.groups())))


async def h2load(srv, n, *args, timeout=60):
    exe = require_tool("h2load")
    res = await run(exe, "-n", n, *args, srv.url("/" if "-d" not in args else "/echo"),
                    timeout=timeout)
    counts = h2load_counts(res)
    assert (counts["succeeded"], counts["failed"], counts["errored"]) == (n, 0, 0), \
        res.describe() + "\n" + srv.report()
    assert "2xx" in res.text and ("%d 2xx" % n) in res.text, res.describe()
    return res


@pytest.mark.slow
@pytest.mark.asyncio
@deadline(75)
async def test_h2load_h2c():
    async with CnoServer(app) as srv:
        await h2load(srv, 20000, "-c", "10", "-m", "10")
        assert srv.requests == 20000


@pytest.mark.slow
@pytest.mark.asyncio
@deadline(60)
async def test_h2load_h1():
    async with CnoServer(app) as srv:
        res = await h2load(srv, 5000, "--h1", "-c", "10")
        assert "Application protocol: http/1.1" in res.text, res.describe()


@pytest.mark.slow
@pytest.mark.asyncio
@deadline(60)
async def test_h2load_tls_and_upload(certs, tmp_path):
    small = tmp_path / "small.bin"
    small.write_bytes(os.urandom(20000))
    async with CnoServer(app, ssl=certs.server_context()) as srv:
        res = await h2load(srv, 3000, "-c", "4", "-m", "10")
        assert "TLS Protocol" in res.text and "Application protocol: h2" in res.text, \
            res.describe()
        await h2load(srv, 1000, "-c", "4", "-m", "10", "-d", small)


# -- httpx -> cno server ---------------------------------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["http1", "h2c-prior-knowledge", "tls-h2", "tls-http1"])
@deadline(30)
async def test_httpx(kind, certs):
    httpx = require_module("httpx")
    if kind != "http1":
        require_module("h2")
    tls = kind.startswith("tls")
    kwargs = {}
    if kind == "h2c-prior-knowledge":
        kwargs = dict(http1=False, http2=True)
    elif kind == "tls-h2":
        kwargs = dict(http2=True)
    want = "HTTP/1.1" if kind.endswith("http1") else "HTTP/2"
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        async with httpx.AsyncClient(verify=certs.client_context(alpn=None) if tls else True,
                                     timeout=20, **kwargs) as client:
            r = await client.get(srv.url("/echo?a=1"))
            assert r.http_version == want
            assert r.status_code == 200
            assert r.headers["x-method"] == "GET" and r.headers["x-path"] == "/echo?a=1"
            assert r.headers["x-http2"] == ("1" if want == "HTTP/2" else "0")
            assert r.content == b""
            r = await client.post(srv.url("/echo"), content=UPLOAD)
            assert (r.status_code, r.http_version) == (200, want)
            assert r.content == UPLOAD
            r = await client.get(srv.url("/stream"))
            assert r.content == STREAMED
            r = await client.get(srv.url("/nope"))
            assert r.status_code == 404
            # Concurrent requests (multiplexed over HTTP/2, pooled over HTTP/1.1).
            rs = await asyncio.gather(*[client.post(srv.url("/echo?i=%d" % i),
                                                    content=b"%d" % i * 1000)
                                        for i in range(30)])
            for i, r in enumerate(rs):
                assert r.status_code == 200 and r.content == b"%d" % i * 1000
                assert r.headers["x-path"] == "/echo?i=%d" % i
            # A streamed request body (unknown length: chunked over HTTP/1.1).
            async def body():
                for c in STREAM_CHUNKS:
                    yield c
            r = await client.post(srv.url("/echo"), content=body())
            assert r.content == STREAMED


# -- cno client -> nghttpd -------------------------------------------------------------------

@pytest.mark.asyncio
@deadline(30)
async def test_client_nghttpd_h2c(nghttpd_plain, docroot):
    want = (docroot / "file.bin").read_bytes()
    url = "http://127.0.0.1:%d/" % nghttpd_plain.port
    client = await cno.connect(url, http2=True)
    try:
        assert client.is_http2
        assert client.scheme == "http"
        assert client.authority == "127.0.0.1:%d" % nghttpd_plain.port
        response = await client.request("GET", "/file.bin", [("user-agent", "cno-test")])
        assert response.code == 200
        assert header(response.headers, "content-length") == str(len(want))
        assert header(response.headers, "server", "").startswith("nghttpd")
        body = await response.payload.read()
        assert len(body) == len(want) and body == want
        # Many concurrent streams on the one connection.
        responses = await asyncio.gather(*[client.request("GET", "/file.bin?i=%d" % i)
                                           for i in range(20)])
        bodies = await asyncio.gather(*[r.payload.read() for r in responses])
        assert all(r.code == 200 for r in responses)
        assert all(b == want for b in bodies)
        r = await client.request("GET", "/missing")
        assert r.code == 404
        await r.payload.read()
        r = await client.request("HEAD", "/file.bin")
        assert r.code == 200 and await r.payload.read() == b""
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_client_nghttpd_tls(nghttpd_tls, docroot, certs):
    want = (docroot / "file.bin").read_bytes()
    client = await cno.connect("https://127.0.0.1:%d/" % nghttpd_tls.port,
                               ssl=certs.client_context())
    try:
        assert client.is_http2
        assert client.scheme == "https"
        assert client.transport.get_extra_info("ssl_object").selected_alpn_protocol() == "h2"
        response = await client.request("GET", "/file.bin")
        assert response.code == 200
        chunks = []
        async for chunk in response.payload:
            chunks.append(chunk)
        assert b"".join(chunks) == want
        assert response.payload.at_eof()
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_request_nghttpd_tls_default_context(nghttpd_tls, docroot, certs, monkeypatch):
    """cno.request with the default context (ssl.create_default_context(), which reads
    SSL_CERT_FILE) and cno's own ALPN: h2 with nghttpd, which speaks nothing else."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certs.ca_file))
    want = (docroot / "index.html").read_bytes()
    response = await cno.request("GET", "https://127.0.0.1:%d/index.html?x=1" % nghttpd_tls.port)
    try:
        assert response.conn.is_http2
        assert response.code == 200
        assert await response.payload.read() == want
    finally:
        response.conn.close()


@pytest.mark.asyncio
@deadline(30)
async def test_request_nghttpd_tls_untrusted(nghttpd_tls):
    """Without the CA the default context refuses the self-signed certificate."""
    with pytest.raises(Exception) as info:
        response = await cno.request("GET", "https://127.0.0.1:%d/" % nghttpd_tls.port)
        response.conn.close()
    assert "certificate" in repr(info.value).lower() or isinstance(info.value, OSError), \
        repr(info.value)


@pytest.mark.asyncio
@deadline(30)
async def test_client_nghttpd_push(nghttpd_push, docroot):
    """nghttpd pushes /style.css with /index.html: response.pushed yields it."""
    client = await cno.connect("http://127.0.0.1:%d/" % nghttpd_push.port, http2=True)
    try:
        response = await client.request("GET", "/index.html")
        assert response.code == 200
        assert await response.payload.read() == (docroot / "index.html").read_bytes()
        pushes = []
        async for push in response.pushed:
            pushes.append(push)
        assert [(p.method, p.path) for p in pushes] == [("GET", "/style.css")]
        assert header(pushes[0].headers, ":authority") in (None, "127.0.0.1:%d" % nghttpd_push.port)
        pushed = await pushes[0].response
        assert pushed.code == 200
        assert await pushed.payload.read() == CSS
    finally:
        client.close()


# -- cno client -> hypercorn -----------------------------------------------------------------

async def check_hypercorn(client, want_version, scheme="http"):
    r = await client.request("GET", "/hello?q=1", [("user-agent", "cno-test")])
    assert r.code == 200
    assert header(r.headers, "x-http-version") == want_version
    assert header(r.headers, "x-scheme") == scheme
    assert header(r.headers, "x-path") == "/hello?q=1"
    assert await r.payload.read() == b"hello from hypercorn GET /hello?q=1\n"
    # POST with a body: bytes.
    r = await client.request("POST", "/echo", [("content-type", "application/octet-stream")],
                             UPLOAD)
    assert r.code == 200
    assert header(r.headers, "x-body-length") == str(len(UPLOAD))
    assert await r.payload.read() == UPLOAD
    # POST with a Channel body.
    channel = cno.Channel()

    async def produce():
        for c in STREAM_CHUNKS:
            await channel.put(c)
        channel.close()

    producer = asyncio.ensure_future(produce())
    r = await client.request("POST", "/echo", [], channel)
    await producer
    assert r.code == 200 and header(r.headers, "x-body-sha256") == sha(STREAMED)
    assert await r.payload.read() == STREAMED

    # POST with an async generator body.
    async def gen():
        for c in STREAM_CHUNKS[:50]:
            yield c
    r = await client.request("POST", "/echo", [], gen())
    assert await r.payload.read() == b"".join(STREAM_CHUNKS[:50])
    # A big download.
    r = await client.request("GET", "/big")
    assert sha(await r.payload.read()) == sha(BIG)
    # Several at once (concurrent on HTTP/2, queued on HTTP/1.1).
    rs = await asyncio.gather(*[client.request("POST", "/echo?i=%d" % i, [], b"%d;" % i * 500)
                                for i in range(10)])
    for i, r in enumerate(rs):
        assert header(r.headers, "x-path") == "/echo?i=%d" % i
        assert await r.payload.read() == b"%d;" % i * 500


@pytest.mark.asyncio
@deadline(30)
async def test_client_hypercorn_http1(hypercorn_plain):
    client = await cno.connect("http://127.0.0.1:%d/" % hypercorn_plain.port, http2=False)
    try:
        assert not client.is_http2
        await check_hypercorn(client, "1.1")
        assert not client.is_http2
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_client_hypercorn_h2c_prior_knowledge(hypercorn_plain):
    client = await cno.connect("http://127.0.0.1:%d/" % hypercorn_plain.port, http2=True)
    try:
        assert client.is_http2
        await check_hypercorn(client, "2")
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_client_hypercorn_h2c_upgrade(hypercorn_plain):
    """http2=None on http: the first request carries Upgrade: h2c; hypercorn accepts, so
    the connection is HTTP/2 from then on."""
    client = await cno.connect("http://127.0.0.1:%d/" % hypercorn_plain.port)
    try:
        r = await client.request("GET", "/first")
        assert r.code == 200
        assert await r.payload.read() == b"hello from hypercorn GET /first\n"
        assert client.is_http2
        await check_hypercorn(client, "2")
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_client_hypercorn_tls(hypercorn_tls, certs):
    client = await cno.connect("https://127.0.0.1:%d/" % hypercorn_tls.port,
                               ssl=certs.client_context())
    try:
        assert client.is_http2
        await check_hypercorn(client, "2", scheme="https")
    finally:
        client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("method,path,body,want", [
    ("GET", "/big", b"", BIG), ("POST", "/echo", UPLOAD, UPLOAD)], ids=["get-big", "post-echo"])
@deadline(30)
async def test_client_hypercorn_http1_connection_close(hypercorn_plain, method, path, body, want):
    """Our request says Connection: close: the whole response is still read."""
    client = await cno.connect("http://127.0.0.1:%d/" % hypercorn_plain.port, http2=False)
    try:
        r = await client.request(method, path, [("connection", "close")], body)
        assert r.code == 200
        got = await r.payload.read()
        assert len(got) == len(want) and got == want
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_client_hypercorn_http1_truncated_body(hypercorn_plain):
    """hypercorn closes the connection after 50000 of 100000 bytes: reading the body must
    raise (docs/aio.md: "a truncated body never looks complete")."""
    client = await cno.connect("http://127.0.0.1:%d/" % hypercorn_plain.port, http2=False)
    try:
        r = await client.request("GET", "/truncated")
        assert r.code == 200
        with pytest.raises(cno.CnoError):
            body = await r.payload.read()
            pytest.fail("read() returned %d bytes instead of raising" % len(body))
    finally:
        client.close()


@pytest.mark.asyncio
@deadline(30)
async def test_request_hypercorn_query_string(hypercorn_plain):
    response = await cno.request("GET", "http://127.0.0.1:%d/path?q=1&x=%%20y" % hypercorn_plain.port)
    try:
        assert response.code == 200
        assert header(response.headers, "x-path") == "/path?q=1&x=%20y"
        assert await response.payload.read() == b"hello from hypercorn GET /path?q=1&x=%20y\n"
    finally:
        response.conn.close()


# -- cno client -> cno server, through real sockets ------------------------------------------

@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["http1", "h2c-prior-knowledge", "h2c-upgrade", "tls"])
@deadline(30)
async def test_cno_to_cno(kind, certs):
    tls = kind == "tls"
    async with CnoServer(app, ssl=certs.server_context() if tls else None) as srv:
        http2 = {"http1": False, "h2c-prior-knowledge": True}.get(kind)
        kwargs = {"ssl": certs.client_context()} if tls else {"http2": http2}
        client = await cno.connect(srv.url("/"), **kwargs)
        try:
            r = await client.request("GET", "/trailers")
            assert await r.payload.read() == TRAILER_BODY
            assert ("x-checksum", CHECKSUM) in (r.trailers or []), r.trailers
            assert client.is_http2 == (kind != "http1")
            assert header(r.headers, "x-http2") == ("0" if kind == "http1" else "1")
            r = await client.request("POST", "/echo?z=1", [], UPLOAD)
            assert r.code == 200 and await r.payload.read() == UPLOAD
            assert header(r.headers, "x-path") == "/echo?z=1"
            r = await client.request("GET", "/stream")
            assert await r.payload.read() == STREAMED
            if kind != "http1":
                r = await client.request("GET", "/push")
                assert header(r.headers, "x-pushed") == "1"
                assert await r.payload.read()
                pushes = [p async for p in r.pushed]
                assert [(p.method, p.path) for p in pushes] == [("GET", "/pushed.css")]
                pr = await pushes[0].response
                assert await pr.payload.read() == CSS
                assert header(pr.headers, "x-extra-seen") == "1"
        finally:
            client.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["http1", "h2c-prior-knowledge"])
@deadline(30)
async def test_cno_to_cno_server_failure_after_head(kind):
    """The handler fails mid-body: HTTP/2 -> StreamReset (code INTERNAL_ERROR = 2) from the
    payload read; HTTP/1.1 -> the connection closes and the read raises. Never a short
    body that looks complete."""
    async with CnoServer(app, allow_errors=True) as srv:
        client = await cno.connect(srv.url("/"), http2=(kind != "http1"))
        try:
            r = await client.request("GET", "/raise-after")
            assert r.code == 200
            if kind == "http1":
                with pytest.raises(cno.CnoError):
                    body = await r.payload.read()
                    pytest.fail("read() returned %d bytes" % len(body))
            else:
                with pytest.raises(cno.StreamReset) as info:
                    await r.payload.read()
                assert info.value.code == 2
                # The connection survives a stream reset.
                r = await client.request("GET", "/")
                assert await r.payload.read() == b"hello\n"
        finally:
            client.close()
