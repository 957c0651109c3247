"""The reverse proxy (docs/acgi.md, "The reverse proxy (an ASGI application)") end to end:

    curl --(HTTP/1.1 or h2c)--> uvicorn | hypercorn running Pool(upstream=...)
         --(HTTP/1.1 or h2c)--> hypercorn running a Starlette app (tests/acgi_peers.py)

The upstream app echoes what it received (/echo), digests uploads (/upload), streams
downloads (/download), mirrors a body as it arrives (/mirror), sends trailers
(/trailers), answers late (/slow) and streams without end while recording what it sent
and whether its client went away (/firehose, read back through /status).

Every test here starts external processes (module-scoped, shared by the tests, stopped
at the end): all are marked slow.
"""
import asyncio
import contextlib
import hashlib
import json
import os
import socket

import pytest

import cno.acgi
from acgi_peers import proxy, upstream
from aio_local import HOST, aio
from aio_util import free_port, parse_curl_headers, require_tool, run

pytestmark = pytest.mark.slow

BLOCK = bytes(range(256)) * 256         # the upstream's download pattern, 64 KiB a block


def pattern(n):
    return (BLOCK * (n // len(BLOCK) + 1))[:n]


def sha(data):
    return hashlib.sha256(data).hexdigest()


# -- the processes ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def origin(workdir):
    with upstream(workdir / ".") as srv:
        yield srv


@pytest.fixture(scope="module")
def proxies(workdir, origin):
    """proxies(server, upstream_h2, **options): the proxy process for that setup, started
    once for the module."""
    started = {}
    with contextlib.ExitStack() as stack:
        def get(server, upstream_h2, upstream_url=None, **options):
            key = (server, upstream_h2, upstream_url, tuple(sorted(options.items())))
            if key not in started:
                directory = workdir / ("p%d" % len(started))
                directory.mkdir()
                url = upstream_url or "http://%s:%d" % (HOST, origin.port)
                started[key] = stack.enter_context(
                    proxy(directory, server, url, http2=upstream_h2, **options))
            return started[key]
        yield get


# (proxy server, client protocol, upstream over HTTP/2)
SETUPS = [
    ("uvicorn", "1.1", False),
    ("uvicorn", "1.1", True),
    ("hypercorn", "1.1", False),
    ("hypercorn", "2", True),
    ("hypercorn", "2", False),
    ("hypercorn", "1.1", True),
]
IDS = ["%s-%s-up%s" % (s, "h2c" if c == "2" else "h1", "h2c" if u else "h1")
       for s, c, u in SETUPS]


async def curl(url, *args, version="1.1", tmp_path=None, timeout=20):
    """curl ``url``: (status, header blocks, body bytes, stderr)."""
    exe = require_tool("curl")
    head = tmp_path / "head"
    out = tmp_path / "out"
    flags = ["--http2-prior-knowledge"] if version == "2" else ["--http1.1"]
    res = await run(exe, "-sS", "--max-time", "15", "-o", out, "-D", head,
                    "-w", "%{http_code} %{http_version}", *flags, *args, url, timeout=timeout)
    assert res.rc == 0, res.describe()
    code, got = res.text.split()
    assert got == version, res.describe()
    return int(code), parse_curl_headers(head.read_bytes()), out.read_bytes(), res.errtext


def final(blocks):
    return [b for b in blocks if b[0]][-1][1]


def values(headers, name):
    return [v for k, v in headers if k == name]


async def upstream_status(origin, key):
    async with cno.acgi.Pool() as pool:
        response = await pool.request("GET", "http://%s:%d/status" % (HOST, origin.port))
        return json.loads(await response["body"].read()).get(key)


# -- requests ----------------------------------------------------------------------------

@pytest.mark.parametrize("server,version,upstream_h2", SETUPS, ids=IDS)
@aio(30)
async def test_get(server, version, upstream_h2, proxies, tmp_path):
    """A GET goes to the upstream with its path and query, in the upstream's protocol;
    the answer comes back. Without a body it goes up without one (no chunked framing, no
    content-length): RFC 9110 9.3.1, a GET's content has no defined semantics."""
    px = proxies(server, upstream_h2)
    code, blocks, body, err = await curl(
        "http://%s:%d/echo?a=1&b=x%%20y" % (HOST, px.port), version=version, tmp_path=tmp_path)
    assert code == 200, err
    seen = json.loads(body)
    assert (seen["method"], seen["path"], seen["query"]) == ("GET", "/echo", "a=1&b=x%20y")
    assert seen["http_version"] == ("2" if upstream_h2 else "1.1")
    names = [k for k, _ in seen["headers"]]
    assert "transfer-encoding" not in names and "content-length" not in names, seen
    assert values(final(blocks), "x-upstream") == ["1"]


@pytest.mark.parametrize("server,version,upstream_h2", SETUPS, ids=IDS)
@aio(40)
async def test_large_upload_and_download(server, version, upstream_h2, proxies, tmp_path):
    """"Streaming both ways": 8 MiB up (curl --data-binary @file: content-length; -T:
    PUT; chunked from an HTTP/1.1 client), 8 MiB down, and 8 MiB mirrored by the upstream
    as it arrives (a POST streamed both ways), byte for byte."""
    px = proxies(server, upstream_h2)
    base = "http://%s:%d" % (HOST, px.port)
    data = os.urandom(8 << 20)
    upload = tmp_path / "upload.bin"
    upload.write_bytes(data)
    uploads = [["--data-binary", "@%s" % upload], ["-T", str(upload)]]
    if version == "1.1":
        uploads.append(["--data-binary", "@%s" % upload, "-H", "transfer-encoding: chunked"])
    for flags in uploads:
        code, _, body, err = await curl(base + "/upload", *flags, version=version,
                                        tmp_path=tmp_path)
        assert code == 200, (flags, err)
        got = json.loads(body)
        assert (got["length"], got["sha256"]) == (len(data), sha(data)), flags
    n = (8 << 20) + 123
    code, _, body, err = await curl(base + "/download?n=%d" % n, version=version,
                                    tmp_path=tmp_path)
    assert code == 200 and len(body) == n and sha(body) == sha(pattern(n)), err
    code, _, body, err = await curl(base + "/mirror", "--data-binary", "@%s" % upload,
                                    version=version, tmp_path=tmp_path)
    assert code == 200 and len(body) == len(data) and sha(body) == sha(data), err


@pytest.mark.parametrize("server,version,upstream_h2", SETUPS, ids=IDS)
@aio(30)
async def test_request_fields(server, version, upstream_h2, proxies, origin, tmp_path):
    """RFC 9110 7.6.1: "a proxy MUST ... remove any header or trailer fields ... that are
    listed in the Connection header field", and Proxy-Connection, Keep-Alive, TE,
    Transfer-Encoding, Upgrade; TE: trailers is passed on (docs/acgi.md). 7.6.3: "A proxy
    MUST send an appropriate Via header field ... in each message that it forwards".
    X-Forwarded-For gets the client's address, -Proto the scheme, -Host the client's
    Host; Host is the upstream's."""
    px = proxies(server, upstream_h2)
    hop = ["-H", "te: trailers"]
    if version == "1.1":    # (connection-specific fields are malformed over HTTP/2)
        hop += ["-H", "connection: keep-alive, x-drop", "-H", "x-drop: 1",
                "-H", "keep-alive: timeout=5", "-H", "proxy-connection: keep-alive"]
    code, _, body, err = await curl(
        "http://%s:%d/echo" % (HOST, px.port), *hop, "-H", "via: 1.0 fred",
        "-H", "x-forwarded-for: 10.1.2.3", "-H", "x-kept: yes", version=version,
        tmp_path=tmp_path)
    assert code == 200, err
    seen = json.loads(body)["headers"]
    names = [k for k, _ in seen]
    for name in ("connection", "x-drop", "keep-alive", "proxy-connection",
                 "transfer-encoding", "upgrade"):
        assert name not in names, (name, seen)
    assert values(seen, "x-kept") == ["yes"]
    assert values(seen, "te") == ["trailers"]
    assert values(seen, "via") == ["1.0 fred, %s cno" % version]
    assert values(seen, "x-forwarded-for") == ["10.1.2.3, 127.0.0.1"]
    assert values(seen, "x-forwarded-proto") == ["http"]
    assert values(seen, "x-forwarded-host") == ["%s:%d" % (HOST, px.port)]
    assert values(seen, "host") == ["%s:%d" % (HOST, origin.port)]


@pytest.mark.parametrize("server,version,upstream_h2", SETUPS, ids=IDS)
@aio(30)
async def test_response_fields(server, version, upstream_h2, proxies, tmp_path):
    """Response side of 7.6.1 / 7.6.3: the upstream's Keep-Alive and Upgrade do not
    reach the client; Via gets the protocol the response came in with."""
    px = proxies(server, upstream_h2)
    code, blocks, _, err = await curl("http://%s:%d/echo" % (HOST, px.port),
                                      version=version, tmp_path=tmp_path)
    assert code == 200, err
    headers = final(blocks)
    names = [k for k, _ in headers]
    assert "upgrade" not in names and "keep-alive" not in names, headers
    assert values(headers, "via") == ["1.1 origin-cache, %s cno" % ("2" if upstream_h2 else "1.1")]


@pytest.mark.xfail(strict=True, reason="cno's HTTP/1.1 engine consumes the Connection field "
                   "of a received message: the proxy cannot see which fields it names")
@aio(30)
async def test_response_fields_named_by_connection(proxies, tmp_path):
    """RFC 9110 7.6.1, the response way: the HTTP/1.1 upstream sends ``Connection: x-hop``
    and ``x-hop``; the proxy must drop x-hop."""
    px = proxies("uvicorn", False)
    code, blocks, _, err = await curl("http://%s:%d/echo" % (HOST, px.port), tmp_path=tmp_path)
    assert code == 200, err
    assert "x-hop" not in [k for k, _ in final(blocks)]


@aio(30)
async def test_trailers_end_to_end_over_http2(proxies, tmp_path):
    """"Trailers: when the upstream response announces them (Trailer) and the ASGI server
    offers the http.response.trailers extension, they are forwarded": curl (h2c, TE:
    trailers) -> hypercorn (which offers the extension on HTTP/2) -> h2c upstream."""
    px = proxies("hypercorn", True)
    code, blocks, body, err = await curl("http://%s:%d/trailers" % (HOST, px.port),
                                         "-H", "te: trailers", version="2", tmp_path=tmp_path)
    assert code == 200 and body == b"the body\n", err
    head = final(blocks)
    assert values(head, "x-te-seen") == ["1"] and values(head, "x-trailers-offered") == ["1"]
    # curl shows HTTP/2 trailers as a block of fields after the final head.
    trailers = [kv for status, fields in blocks if not status for kv in fields]
    assert ("x-checksum", "abc123") in trailers and ("x-count", "9") in trailers, blocks


@aio(30)
async def test_no_trailers_without_the_extension(proxies, tmp_path):
    """uvicorn (HTTP/1.1) offers no http.response.trailers: the response still ends
    cleanly, its body whole, without trailers."""
    px = proxies("uvicorn", True)
    code, blocks, body, err = await curl("http://%s:%d/trailers" % (HOST, px.port),
                                         "-H", "te: trailers", tmp_path=tmp_path)
    assert code == 200 and body == b"the body\n", err
    assert not [b for b in blocks if not b[0]], blocks


# -- failures ----------------------------------------------------------------------------

@pytest.mark.parametrize("server", ["uvicorn", "hypercorn"])
@aio(30)
async def test_unreachable_upstream_is_502(server, proxies, tmp_path):
    """"An unreachable upstream is answered 502"."""
    px = proxies(server, False, upstream_url="http://%s:%d" % (HOST, free_port()))
    code, _, body, err = await curl("http://%s:%d/echo" % (HOST, px.port), tmp_path=tmp_path)
    assert code == 502 and b"bad gateway" in body, err


@pytest.mark.parametrize("upstream_h2", [False, True], ids=["up-h1", "up-h2c"])
@aio(30)
async def test_upstream_timeout_is_504(upstream_h2, proxies, origin, tmp_path):
    """"... a timeout 504": the pool's read_timeout (0.5 s) passes before the upstream
    answers (in 5 s)."""
    px = proxies("uvicorn", upstream_h2, read_timeout=0.5)
    loop = asyncio.get_running_loop()
    started = loop.time()
    code, _, body, err = await curl("http://%s:%d/slow?s=5" % (HOST, px.port), tmp_path=tmp_path)
    assert code == 504 and b"timeout" in body, err
    assert loop.time() - started < 4


# -- backpressure and disconnects --------------------------------------------------------

async def open_slow_client(port, path):
    """An HTTP/1.1 client socket that asked for ``path`` and read the head and 64 KiB,
    with a small receive buffer; then it reads nothing more."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
    sock.setblocking(False)
    await loop.sock_connect(sock, (HOST, port))
    await loop.sock_sendall(sock, b"GET %s HTTP/1.1\r\nhost: proxy\r\n\r\n" % path.encode())
    got = b""
    while len(got) < 65536:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 5)
        assert chunk, got[:200]
        got += chunk
    assert got.startswith(b"HTTP/1.1 200"), got[:200]
    return sock


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")   # pragma: no cover


PROXY_SETUPS = [("uvicorn", False), ("uvicorn", True), ("hypercorn", False), ("hypercorn", True)]
PROXY_IDS = ["%s-up%s" % (s, "h2c" if u else "h1") for s, u in PROXY_SETUPS]


@pytest.mark.parametrize("server,upstream_h2", PROXY_SETUPS, ids=PROXY_IDS)
@aio(30)
async def test_slow_client_holds_bounded_memory(server, upstream_h2, proxies, origin):
    """"each response chunk is taken from the upstream (and credited to it) only after
    the ASGI server accepted the previous one, so a slow client holds about one upstream
    window, not the response". A client reads 64 KiB of a 256 MiB response, then nothing:
    the proxy's memory does not grow by the response (less than 48 MiB), and over
    HTTP/1.1 the upstream's writer stops (what it sent stays under 48 MiB, the socket
    buffers on the way). (hypercorn's own HTTP/2 stream buffer is unbounded: with an h2c
    upstream only the proxy's memory says something.)"""
    px = proxies(server, upstream_h2)
    pid = px.proc.pid
    key = "k=slow-%s-%s" % (server, upstream_h2)
    before = rss_kib(pid)
    sock = await open_slow_client(px.port, "/firehose?" + key)
    try:
        previous = None
        for _ in range(20):          # until what the upstream sent stops growing
            await asyncio.sleep(0.15)
            state = await upstream_status(origin, key)
            if state["sent"] == previous and (not upstream_h2 or state["sent"] == 256 << 20):
                break
            previous = state["sent"]
        await asyncio.sleep(0.2)
        grown = rss_kib(pid) - before
        assert grown < 48 << 10, "the proxy grew by %d KiB" % grown
        if not upstream_h2:
            assert state["sent"] < 48 << 20 and not state["done"], state
    finally:
        sock.close()


@pytest.mark.parametrize("server,upstream_h2", PROXY_SETUPS, ids=PROXY_IDS)
@aio(30)
async def test_client_disconnect_resets_the_upstream_stream(server, upstream_h2, proxies,
                                                            origin):
    """"A client that disconnects resets the upstream stream": the upstream streams
    without end; the client reads 64 KiB and closes; the upstream app sees the
    disconnect (RST_STREAM over HTTP/2, the connection closed over HTTP/1.1), and the
    proxy goes on serving."""
    px = proxies(server, upstream_h2)
    key = "k=gone-%s-%s&n=%d" % (server, upstream_h2, 1 << 40)
    sock = await open_slow_client(px.port, "/firehose?" + key)
    sock.close()
    for _ in range(30):
        await asyncio.sleep(0.1)
        state = await upstream_status(origin, key)
        if state["disconnect"]:
            break
    assert state["disconnect"] and not state["done"], state
    async with cno.acgi.Pool() as pool:
        response = await pool.request("GET", "http://%s:%d/echo" % (HOST, px.port))
        assert response["status_code"] == 200
        await response["body"].read()


@aio(30)
async def test_lifespan(workdir, origin):
    """"lifespan: startup is acknowledged; shutdown closes the pool" (uvicorn --lifespan
    on fails to start without the acknowledgement)."""
    directory = workdir / "lifespan"
    directory.mkdir()
    px = proxy(directory, "uvicorn", "http://%s:%d" % (HOST, origin.port))
    with px:
        async with cno.acgi.Pool() as pool:
            response = await pool.request("GET", "http://%s:%d/echo" % (HOST, px.port))
            await response["body"].read()
        px.proc.terminate()
        await asyncio.get_running_loop().run_in_executor(None, px.proc.wait, 10)
        log = px.log()
    assert "Application startup complete" in log, log
    assert "Application shutdown complete" in log, log
