"""Helpers for the asyncio layer's loopback tests against real peers (tests/test_aio_peers.py).

Everything listens on 127.0.0.1 only. What a helper starts, it stops, also when the test
fails: cno servers are async context managers run in the test's own event loop (so an
external client run with :func:`run` talks to them while the loop waits for it); external
servers (nghttpd, hypercorn) are plain subprocesses in sync context managers, usable from
module-scoped fixtures; :class:`ServeProcess` runs ``python -m cno serve`` (stopped with
its ``stop()``).

External tools: :func:`require_tool` skips a test when the tool is missing, except in CI
(``CI`` set in the environment), where a missing tool is a failure.
"""
import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

import pytest

HOST = "127.0.0.1"
TESTS = Path(__file__).resolve().parent


# -- tools ---------------------------------------------------------------------------------

def in_ci():
    return bool(os.environ.get("CI"))


def require_tool(name):
    """The tool's path; pytest.skip if it is missing (pytest.fail in CI)."""
    path = shutil.which(name)
    if path is None:
        msg = "%s not installed (.ci/run installs the tools the tests drive)" % name
        if in_ci():
            pytest.fail(msg)
        pytest.skip(msg)
    return path


def require_module(name):
    """import name; pytest.skip if missing (pytest.fail in CI)."""
    try:
        return __import__(name)
    except ImportError as e:
        if in_ci():
            pytest.fail("python module %s missing: %s" % (name, e))
        pytest.skip("python module %s missing: %s" % (name, e))


class Result:
    def __init__(self, argv, rc, out, err):
        self.argv, self.rc, self.out, self.err = argv, rc, out, err

    @property
    def text(self):
        return self.out.decode("utf-8", "replace")

    @property
    def errtext(self):
        return self.err.decode("utf-8", "replace")

    def describe(self):
        return "command: %s\nexit: %s\nstdout (tail):\n%s\nstderr (tail):\n%s" % (
            " ".join(map(str, self.argv)), self.rc, self.text[-3000:], self.errtext[-3000:])

    def check(self):
        assert self.rc == 0, self.describe()
        return self


async def run(*argv, timeout=30, input=None, env=None):
    """Run an external command without blocking the loop; a Result. On timeout the process
    is killed and the test fails with what it printed so far."""
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv),
        stdin=asyncio.subprocess.PIPE if input is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(input), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        pytest.fail("timed out after %ss\n%s" % (timeout, Result(argv, None, out, err).describe()))
    except BaseException:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        raise
    return Result(argv, proc.returncode, out, err)


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


# -- certificates --------------------------------------------------------------------------

class Certs:
    """A throwaway CA and a leaf certificate for 127.0.0.1 / localhost, as files and as
    ssl contexts. ALPN is NOT set on server contexts (cno.serve sets it, docs/aio.md)."""

    def __init__(self, directory):
        d = Path(directory)
        self.dir = d
        self.ca_file = d / "ca.pem"
        self.cert_file = d / "cert.pem"
        self.key_file = d / "key.pem"
        try:
            import trustme
        except ImportError:
            trustme = None
        if trustme is not None:
            ca = trustme.CA()
            leaf = ca.issue_cert(HOST, "localhost")
            ca.cert_pem.write_to_path(str(self.ca_file))
            leaf.private_key_pem.write_to_path(str(self.key_file))
            with open(self.cert_file, "wb") as f:
                for blob in leaf.cert_chain_pems:
                    f.write(blob.bytes())
        else:
            # Fallback: a self-signed certificate from the openssl CLI (it is its own CA).
            exe = require_tool("openssl")
            subprocess.run(
                [exe, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", str(self.key_file), "-out", str(self.cert_file),
                 "-subj", "/CN=localhost",
                 "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                check=True, capture_output=True)
            shutil.copy(self.cert_file, self.ca_file)

    def server_context(self):
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(str(self.cert_file), str(self.key_file))
        return ctx

    def client_context(self, alpn=("h2", "http/1.1")):
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx


# -- a cno server in the test's loop ------------------------------------------------------

class CnoServer:
    """``async with CnoServer(handler, ssl=ctx, **options) as srv``: cno.serve on
    127.0.0.1, port 0. Handler exceptions and errors reported to the loop's exception
    handler are recorded; leaving the block fails the test if there were any (unless
    ``allow_errors``), and always closes the server."""

    def __init__(self, handler, *, ssl=None, allow_errors=False, shutdown=False, **options):
        self.handler = handler
        self.ssl = ssl
        self.options = options
        self.allow_errors = allow_errors
        self.use_shutdown = shutdown
        self.handler_errors = []   # formatted tracebacks
        self.loop_errors = []      # formatted exception-handler contexts
        self.requests = 0
        self.service = None
        self.port = None

    async def _handle(self, request):
        self.requests += 1
        try:
            return await self.handler(request)
        except asyncio.CancelledError:
            self.handler_errors.append("handler cancelled (docs/aio.md: never cancelled "
                                       "because its stream ended): %s %s"
                                       % (request.method, request.path))
            raise
        except BaseException:
            self.handler_errors.append("%s %s:\n%s" % (
                getattr(request, "method", "?"), getattr(request, "path", "?"),
                traceback.format_exc()))
            raise

    def _exception_handler(self, loop, context):
        exc = context.get("exception")
        text = context.get("message", "")
        if exc is not None:
            text += "\n" + "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        self.loop_errors.append(text)
        if self._old_handler is not None:
            self._old_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    @property
    def scheme(self):
        return "https" if self.ssl is not None else "http"

    def url(self, path="/", scheme=None, host=HOST):
        return "%s://%s:%d%s" % (scheme or self.scheme, host, self.port, path)

    def errors(self):
        return self.handler_errors + self.loop_errors

    def report(self):
        errs = self.errors()
        return ("server-side errors:\n" + "\n---\n".join(errs)) if errs else "no server-side errors"

    async def __aenter__(self):
        import cno
        loop = asyncio.get_running_loop()
        self._old_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._exception_handler)
        try:
            self.service = await cno.serve(self._handle, HOST, 0, ssl=self.ssl, **self.options)
            self.port = self.service.sockets[0].getsockname()[1]
        except BaseException:
            loop.set_exception_handler(self._old_handler)
            raise
        return self

    async def __aexit__(self, et, ev, tb):
        loop = asyncio.get_running_loop()
        problem = None
        try:
            if self.use_shutdown:
                await asyncio.wait_for(self.service.shutdown(timeout=2), 10)
            else:
                self.service.close()
                await asyncio.wait_for(self.service.wait_closed(), 10)
        except asyncio.TimeoutError:
            problem = "server did not close within 10 s"
        finally:
            # Let connection_lost callbacks and handler tasks finish reporting.
            await asyncio.sleep(0)
            loop.set_exception_handler(self._old_handler)
        if et is None:
            assert problem is None, problem + "\n" + self.report()
            if not self.allow_errors:
                assert not self.errors(), self.report()
        elif self.errors() and ev is not None:
            # Attach the server side to the failure the test raised.
            try:
                ev.add_note(self.report())
            except AttributeError:  # Python < 3.11
                pass
        return False


# -- external servers ----------------------------------------------------------------------

def wait_port(port, proc, timeout=15.0, log=None):
    """Block until 127.0.0.1:port accepts connections; fail if proc exits first."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError("exited with %s before listening%s" % (
                proc.returncode, (":\n" + log()) if log else ""))
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("not listening on %d after %ss%s" % (
                    port, timeout, (":\n" + log()) if log else ""))
            time.sleep(0.05)


class External:
    """A subprocess server listening on a free port: ``with External(lambda port: argv)
    as ext: ext.port``. Its output goes to a temp file (shown on failure). Stopped with
    SIGTERM, then SIGKILL."""

    def __init__(self, make_argv, cwd=None, env=None, attempts=3, startup=20.0):
        self.make_argv = make_argv
        self.cwd = cwd
        self.env = env
        self.attempts = attempts
        self.startup = startup
        self.proc = None
        self.port = None
        self._log = None

    def log(self):
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read()[-4000:].decode("utf-8", "replace")

    def __enter__(self):
        last = None
        for _ in range(self.attempts):
            self.port = free_port()
            self._log = tempfile.NamedTemporaryFile(prefix="cno-peer-", suffix=".log")
            argv = [str(a) for a in self.make_argv(self.port)]
            self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env,
                                         stdin=subprocess.DEVNULL, stdout=self._log,
                                         stderr=subprocess.STDOUT)
            try:
                wait_port(self.port, self.proc, self.startup, self.log)
                return self
            except RuntimeError as e:
                last = "%s: %s" % (" ".join(argv), e)
                self._stop()
        raise RuntimeError(last)

    def _stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __exit__(self, *exc):
        self._stop()
        return False


class ServeProcess:
    """``python -m cno serve APP --port 0 ...`` from tests/ (so the test apps import); a
    thread collects what it prints, and the port (and http or https) is read from its
    "serving on" line."""

    def __init__(self, app, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cno", "serve", app, "--port", "0", *args],
            cwd=TESTS, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        deadline_at = time.monotonic() + 20
        while time.monotonic() < deadline_at and self.proc.poll() is None:
            m = re.search(r"serving on (https?)://127\.0\.0\.1:(\d+)", self.output)
            if m:
                self.scheme, self.port = m.group(1), int(m.group(2))
                return
            time.sleep(0.02)
        self.proc.kill()
        self._reader.join(5)
        raise AssertionError("cno serve did not start:\n" + self.output)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.port)

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode

    @property
    def output(self):
        return "".join(self.lines)


def nghttpd(directory, certs=None):
    """nghttpd serving directory: h2c by prior knowledge, or TLS (ALPN h2) with certs."""
    exe = require_tool("nghttpd")
    if certs is None:
        return External(lambda port: [exe, "-d", directory, "--no-tls", port])
    return External(lambda port: [exe, "-d", directory, port, certs.key_file, certs.cert_file])


HYPERCORN_APP = r'''
import asyncio
import hashlib

DISCONNECTS = []   # what /until-disconnect saw, reported by /disconnects

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if scope.get("query_string"):
        path += "?" + scope["query_string"].decode("latin-1")
    if scope["path"] == "/truncated":
        # Half a body, then the app fails: hypercorn resets the stream (HTTP/2) or
        # closes the connection (HTTP/1.1) -- the body must not look complete.
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"100000")]})
        await send({"type": "http.response.body", "body": b"x" * 50000, "more_body": True})
        raise RuntimeError("truncated on purpose")
    extensions = scope.get("extensions") or {}
    if scope["path"] == "/until-disconnect":
        # Streams until the client goes away; records the ASGI message that said so.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        gone = asyncio.ensure_future(receive())
        while not gone.done():
            await send({"type": "http.response.body", "body": b"d" * 1000, "more_body": True})
            await asyncio.sleep(0.005)
        DISCONNECTS.append(gone.result()["type"])
        return
    if scope["path"] == "/disconnects":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": ",".join(DISCONNECTS).encode()})
        return
    if scope["path"] == "/trailers":
        # Trailers where hypercorn has them (HTTP/2, and the request said te: trailers).
        trailers = "http.response.trailers" in extensions
        await send({"type": "http.response.start", "status": 200, "trailers": trailers,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"before the trailers"})
        if trailers:
            await send({"type": "http.response.trailers",
                        "headers": [(b"x-checksum", hashlib.sha256(body).hexdigest().encode())]})
        return
    if scope["path"] == "/early-hints":
        if "http.response.early_hint" in extensions:
            await send({"type": "http.response.early_hint", "links": [b"</style.css>"]})
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"hinted"})
        return
    if scope["path"] == "/big":
        out = bytes(range(256)) * 4096          # 1 MiB
    elif scope["method"] == "POST":
        out = body
    else:
        out = ("hello from hypercorn %s %s\n" % (scope["method"], path)).encode()
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"x-method", scope["method"].encode()),
        (b"x-path", path.encode()),
        (b"x-http-version", scope["http_version"].encode()),
        (b"x-scheme", scope["scheme"].encode()),
        (b"x-body-sha256", hashlib.sha256(body).hexdigest().encode()),
        (b"x-body-length", str(len(body)).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})
'''


def hypercorn(directory, certs=None):
    """hypercorn serving HYPERCORN_APP (written into directory): HTTP/1.1 + h2c on plain
    TCP, or TLS with ALPN h2/http/1.1 with certs."""
    require_module("hypercorn")
    Path(directory, "cno_peer_app.py").write_text(HYPERCORN_APP)

    def argv(port):
        a = [sys.executable, "-m", "hypercorn", "cno_peer_app:app",
             "--bind", "%s:%d" % (HOST, port), "--workers", "1"]
        if certs is not None:
            a += ["--certfile", certs.cert_file, "--keyfile", certs.key_file]
        return a

    env = dict(os.environ)
    env["PYTHONPATH"] = str(directory) + os.pathsep + env.get("PYTHONPATH", "")
    return External(argv, cwd=directory, env=env)


# -- misc ----------------------------------------------------------------------------------

def header(headers, name, default=None):
    """The first value of a header (case-insensitive name) in [(str, str)]."""
    name = name.lower()
    for k, v in headers:
        if (k.decode("latin-1") if isinstance(k, bytes) else k).lower() == name:
            return v.decode("latin-1") if isinstance(v, bytes) else v
    return default


def parse_curl_headers(raw):
    """curl -D output -> list of (status_line, [(name, value)]) blocks, one per response
    (1xx and upgrade responses included); trailers sent by an HTTP/2 server appear as
    a block without a status line after the last one."""
    blocks = []
    cur = None
    for line in raw.decode("latin-1").split("\r\n"):
        if line.startswith("HTTP/"):
            cur = (line, [])
            blocks.append(cur)
        elif line and ":" in line:
            if cur is None:
                cur = ("", [])
                blocks.append(cur)
            k, _, v = line.partition(":")
            cur[1].append((k.strip().lower(), v.strip()))
        elif not line:
            cur = None
    return blocks


@contextlib.contextmanager
def tempdir():
    with tempfile.TemporaryDirectory(prefix="cno-aio-") as d:
        yield Path(d)


def deadline(seconds):
    """Decorator for async tests: fail (and unwind, stopping servers) after seconds."""
    import functools

    def deco(fn):
        @functools.wraps(fn)
        async def wrapper(*args, **kwargs):
            task = asyncio.ensure_future(fn(*args, **kwargs))
            done, _ = await asyncio.wait([task], timeout=seconds)
            if not done:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                pytest.fail("test did not finish within %s s" % seconds)
            return task.result()
        return wrapper
    return deco
