"""Unmodified programs written against h2 and h11, run on cno's drop-ins over real sockets.

- hypercorn's own server under ``python -m cno.dropin -m hypercorn`` (its HTTP/2 is
  cno.h2, its HTTP/1.1 cno.h11), serving a small ASGI app, driven by curl (h2c by prior
  knowledge, h2c by Upgrade from HTTP/1.1, HTTP/1.1) and h2load (h2c and HTTP/1.1);
- httpx (its transport httpcore drives h2 and h11) under ``python -m cno.dropin`` as the
  client, with http2=True, against nghttpd (h2c) and against cno's own server (h2c, and
  HTTP/1.1 through cno.h11).

Every program runs in a subprocess with short timeouts; each reports which modules
``h2`` and ``h11`` were, so a test cannot pass on the real packages by mistake.
"""
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import cno

from aio_util import (HOST, HYPERCORN_APP, ServeProcess, External, nghttpd, require_module,
                      require_tool)

CNO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(cno.__file__)))
BIG = bytes(range(256)) * 4096                      # what HYPERCORN_APP's /big answers
UPLOAD = bytes(range(251)) * 800                    # 200,800 bytes: past a 64 KiB window

pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(m) for m in ("cno.h2", "cno.h11")),
    reason="the drop-in faces cno.h2 and cno.h11 are not built yet")


def env_with(*paths):
    """os.environ with this cno (and paths) first on PYTHONPATH."""
    old = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return dict(os.environ, PYTHONPATH=os.pathsep.join([*map(str, paths), CNO_ROOT] + old))


def run(argv, timeout=30, **kw):
    """subprocess.run, text output; fails the test with both outputs on a non-zero exit."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True,
                          timeout=timeout, **kw)
    assert proc.returncode == 0, "%s\nexit %s\nstdout:\n%s\nstderr:\n%s" % (
        " ".join(map(str, argv)), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


# -- hypercorn on the drop-ins --------------------------------------------------------------

# HYPERCORN_APP (tests/aio_util.py), plus /dropin: which modules h2 and h11 are in the server.
DROPIN_APP = HYPERCORN_APP + r'''
import sys
_app = app

async def app(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/dropin":
        body = ("h2=%s h11=%s" % (sys.modules["h2"].__name__,
                                  sys.modules["h11"].__name__)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"x-http-version", scope["http_version"].encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await _app(scope, receive, send)
'''


@pytest.fixture(scope="module")
def hypercorn_dropin(tmp_path_factory):
    """hypercorn 0.18 (HTTP/1.1 and h2c on one plain port), run by python -m cno.dropin."""
    require_module("hypercorn")
    directory = tmp_path_factory.mktemp("hypercorn-dropin")
    (directory / "dropin_app.py").write_text(DROPIN_APP)

    def argv(port):
        return [sys.executable, "-m", "cno.dropin", "-m", "hypercorn", "dropin_app:app",
                "--bind", "%s:%d" % (HOST, port), "--workers", "1"]

    with External(argv, cwd=directory, env=env_with(directory)) as server:
        yield server


def curl(*args, timeout=20):
    exe = require_tool("curl")
    return run([exe, "-sS", "--max-time", "15", *args], timeout=timeout)


def url(server, path):
    return "http://%s:%d%s" % (HOST, server.port, path)


def test_hypercorn_runs_on_the_dropins(hypercorn_dropin):
    out = curl("--http2-prior-knowledge", url(hypercorn_dropin, "/dropin"))
    assert out.stdout == "h2=cno.h2 h11=cno.h11"


@pytest.mark.parametrize("mode, version", [
    ("--http2-prior-knowledge", "2"),   # h2c: cno.h2 alone
    ("--http2", "2"),                   # Upgrade: h2c from cno.h11 to cno.h2 (RFC 7540 3.2)
    ("--http1.1", "1.1"),               # cno.h11 alone
])
def test_hypercorn_curl(hypercorn_dropin, tmp_path, mode, version):
    upload = tmp_path / "upload.bin"
    upload.write_bytes(UPLOAD)
    # One curl per request: curl 7.88 fails the second request it sends on a reused
    # h2c connection ("Error in the HTTP2 framing layer"), whatever the server.
    # Through an Upgrade, curl 7.88 fails when more than its 32 KiB buffer follows the 101
    # in one read ("connection buffer size is too small"), as a loaded machine may make
    # happen with any server: the large response goes over the other two modes only.
    last = ("/path?q=2", "get2.txt") if mode == "--http2" else ("/big", "big.bin")
    heads = ""
    for path, name, extra in (("/path?q=1", "get.txt", ()),
                              ("/upload", "post.bin", ("--data-binary", "@%s" % upload)),
                              last + ((),)):
        heads += curl(mode, "-D", "-", "-o", str(tmp_path / name), *extra,
                      url(hypercorn_dropin, path)).stdout.lower()
    if mode == "--http2":
        # curl offers the Upgrade on the GETs only (not on a request with a body)
        assert heads.count("http/1.1 101 ") == 2, heads
        assert heads.count("x-http-version: 2\n") == 2, heads
        assert heads.count("x-http-version: 1.1\n") == 1, heads
    else:
        assert heads.count("x-http-version: %s\n" % version) == 3, heads
    assert "x-path: /path?q=1\n" in heads and "x-method: post\n" in heads, heads
    assert "x-body-sha256: %s\n" % hashlib.sha256(UPLOAD).hexdigest() in heads, heads
    assert (tmp_path / "get.txt").read_text() == "hello from hypercorn GET /path?q=1\n"
    assert (tmp_path / "post.bin").read_bytes() == UPLOAD
    if mode == "--http2":
        assert (tmp_path / "get2.txt").read_text() == "hello from hypercorn GET /path?q=2\n"
    else:
        assert (tmp_path / "big.bin").read_bytes() == BIG


H2LOAD_RE = re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                       r"(\d+) failed, (\d+) errored, (\d+) timeout")


@pytest.mark.parametrize("protocol", ["h2c", "http/1.1"])   # about 1 s each
def test_hypercorn_h2load(hypercorn_dropin, protocol):
    exe = require_tool("h2load")
    n = 3000
    args = ["-c", "4", "-m", "10"] if protocol == "h2c" else ["--h1", "-c", "4"]
    out = run([exe, "-n", n, "-T", "10", *args, url(hypercorn_dropin, "/")], timeout=90)
    m = H2LOAD_RE.search(out.stdout)
    assert m, out.stdout
    total, started, done, succeeded, failed, errored, timeout = map(int, m.groups())
    assert (done, errored, timeout) == (n, 0, 0), out.stdout
    assert "Application protocol: %s" % protocol in out.stdout, out.stdout
    body = len("hello from hypercorn GET /\n")
    data = re.search(r"traffic: .*\((\d+)\) data", out.stdout)
    assert data and int(data.group(1)) == n * body, out.stdout
    if protocol == "h2c":
        assert succeeded == n and "%d 2xx" % n in out.stdout, out.stdout
    else:
        # hypercorn's HTTP/1.1 status line is "HTTP/1.1 200 " (h11 sends an empty reason
        # phrase, and so does cno.h11 in its place): h2load's parser then reports no
        # status and counts the response failed, though it arrived whole (the data count)
        assert succeeded == n or (failed == n and "0 2xx" in out.stdout), out.stdout


# -- httpx (httpcore) on the drop-ins, as a client -----------------------------------------

CLIENT = r'''
"""client.py MODE HTTP1 BASE REQUESTS [CAFILE]: httpx, HTTP/1.1 only (HTTP1 1: h11
alone) or HTTP/2 only (h2c by prior knowledge); with CAFILE (https), both, ALPN choosing;
prints JSON."""
import asyncio
import hashlib
import json
import ssl
import sys

import httpx

CA = sys.argv[5] if len(sys.argv) > 5 else None
OPTIONS = {"timeout": 10}
if CA:
    OPTIONS["verify"] = ssl.create_default_context(cafile=CA)


def payload(n):
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def describe(r):
    return {"status": r.status_code, "version": r.http_version, "length": len(r.content),
            "sha256": hashlib.sha256(r.content).hexdigest(),
            "headers": {k: v for k, v in r.headers.items() if k.startswith("x-")}}


async def run_async(http1, base, requests):
    async with httpx.AsyncClient(http1=http1 or bool(CA), http2=not http1, **OPTIONS) as client:
        # all at once: one HTTP/2 connection multiplexes them
        return [describe(r) for r in await asyncio.gather(*[
            client.request(m, base + p, content=payload(n) if n else None)
            for m, p, n in requests])]


def run_sync(http1, base, requests):
    with httpx.Client(http1=http1 or bool(CA), http2=not http1, **OPTIONS) as client:
        return [describe(client.request(m, base + p, content=payload(n) if n else None))
                for m, p, n in requests]


mode, http1, base, requests = sys.argv[1], sys.argv[2] == "1", sys.argv[3], sys.argv[4]
requests = json.loads(requests)
out = asyncio.run(run_async(http1, base, requests)) if mode == "async" \
    else run_sync(http1, base, requests)
print(json.dumps({"h2": getattr(sys.modules.get("h2"), "__name__", None),
                  "h11": getattr(sys.modules.get("h11"), "__name__", None),
                  "responses": out}))
'''


@pytest.fixture(scope="module")
def client_script(tmp_path_factory):
    require_module("httpx")
    require_module("h2")        # httpx's http2=True checks that h2 is installed
    path = tmp_path_factory.mktemp("httpx-client") / "client.py"
    path.write_text(CLIENT)
    return path


def httpx_dropin(script, mode, base, requests, http1=False, ca=None):
    """Runs httpx on the drop-ins; its JSON report, checked to be on cno's faces."""
    argv = [sys.executable, "-m", "cno.dropin", script, mode, "1" if http1 else "0", base,
            json.dumps(requests), *([ca] if ca else [])]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env_with())
    assert proc.returncode == 0, "exit %s\nstdout:\n%s\nstderr:\n%s" % (
        proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    report = json.loads(proc.stdout)
    assert report["h11"] == "cno.h11", report
    # httpcore imports h2 whenever it is installed, HTTP/1.1 only or not
    assert report["h2"] == "cno.h2", report
    assert len(report["responses"]) == len(requests)
    return report["responses"]


def expect(response, version, body):
    assert (response["status"], response["version"]) == (200, version), response
    assert (response["length"], response["sha256"]) == \
        (len(body), hashlib.sha256(body).hexdigest()), response


@pytest.fixture(scope="module")
def nghttpd_server(tmp_path_factory):
    directory = tmp_path_factory.mktemp("nghttpd-root")
    (directory / "index.html").write_bytes(b"x" * 100)
    (directory / "big.bin").write_bytes(BIG + b"tail")
    with nghttpd(directory) as server:
        yield server


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_httpx_h2c_nghttpd(client_script, nghttpd_server, mode):
    base = url(nghttpd_server, "")
    requests = [["GET", "/index.html", 0], ["GET", "/big.bin", 0]] * 5
    for response, (_, path, _) in zip(
            httpx_dropin(client_script, mode, base, requests), requests):
        expect(response, "HTTP/2", b"x" * 100 if path == "/index.html" else BIG + b"tail")


@pytest.fixture(scope="module")
def cno_server():
    """python -m cno serve tests/asgi_apps.py's raw_app: HTTP/1.1 and h2c on one port."""
    server = ServeProcess("asgi_apps:raw_app")
    yield server
    server.stop()


REQUESTS = [["GET", "/file", 0], ["POST", "/echo", len(UPLOAD)], ["GET", "/stream?n=5", 0],
            ["GET", "/nothing", 0], ["POST", "/echo", 1]] * 3


def expect_raw_app(responses, version):
    """tests/asgi_apps.py raw_app's answers to REQUESTS."""
    for response, (method, path, n) in zip(responses, REQUESTS):
        if path == "/file":
            expect(response, version, BIG)
        elif path == "/echo":
            expect(response, version, UPLOAD[:n])
        elif path.startswith("/stream"):
            expect(response, version, b"".join(b"chunk %d\n" % i for i in range(5)))
        else:
            assert (response["status"], response["version"]) == (404, version), response


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("http1", [False, True],
                         ids=["h2c", "http1.1"])
def test_httpx_cno_server(client_script, cno_server, mode, http1):
    responses = httpx_dropin(client_script, mode, cno_server.url, REQUESTS, http1=http1)
    expect_raw_app(responses, "HTTP/1.1" if http1 else "HTTP/2")


@pytest.fixture(scope="module")
def cno_tls_server(certs):
    """The same over TLS: ALPN offers h2 and http/1.1."""
    server = ServeProcess("asgi_apps:raw_app", "--certfile", str(certs.cert_file),
                          "--keyfile", str(certs.key_file))
    yield server
    server.stop()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_httpx_tls_alpn_cno_server(client_script, cno_tls_server, certs, mode):
    # httpx offers h2 and http/1.1 and the server picks h2: cno.h2 over TLS
    assert cno_tls_server.scheme == "https"
    responses = httpx_dropin(client_script, mode, cno_tls_server.url, REQUESTS,
                             ca=str(certs.ca_file))
    expect_raw_app(responses, "HTTP/2")
