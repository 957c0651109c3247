"""The command line (cno/cli.py, docs/cli.md), end to end against real local servers.

``cli.main([...])`` runs in-process (it calls asyncio.run), so the servers run on an event
loop in a thread of their own: a cno server (HTTP/1.1, h2c by prior knowledge or Upgrade),
the same over TLS with a trustme CA, and raw TCP servers that misbehave on purpose.
A few tests run ``python -m cno`` where only a separate process shows the behaviour
(the real exit code, a closed stdout, Ctrl-C).
"""
import asyncio
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import cno
import cno.asgi.demo
from cno import cli, raw

from aio_util import HOST, Certs, require_module

BIG = bytes(range(256)) * 8192   # 2 MiB: above the progress bar's threshold
ROOT = Path(__file__).resolve().parents[1]
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"   # an empty HTTP/2 SETTINGS frame


async def app(request):
    """/echo: the request as text; /status/N; /big; /trailers; /reset; /truncated; /stall."""
    path = request.path
    if path.startswith("/status/"):
        await request.respond(int(path[8:]), [("content-type", "text/plain")], b"status page\n")
    elif path == "/big":
        await request.respond(200, [("content-type", "application/octet-stream")], BIG)
    elif path == "/trailers":
        await request.respond(200, [], b"body\n", trailers=[("x-checksum", "42")])
    elif path == "/reset":
        request.conn.write_reset(request.stream, raw.CNO_RST_REFUSED_STREAM)
    elif path in ("/truncated", "/stall"):
        async def body():
            yield b"x" * 10
            if path == "/stall":
                await asyncio.Event().wait()
            raise RuntimeError("the body stops here on purpose")
        await request.respond(200, [("content-length", "100000")], body())
    else:
        body = await request.payload.read()
        lines = ["method=%s" % request.method, "path=%s" % request.path,
                 "version=%s" % ("HTTP/2" if request.conn.is_http2 else "HTTP/1.1")]
        lines += ["%s: %s" % h for h in request.headers]
        text = ("\n".join(lines) + "\n\n").encode() + body
        await request.respond(200, [("content-type", "text/plain"),
                                    ("x-method", request.method)], text)


class Servers:
    """An event loop in a thread with the servers the tests talk to."""

    def __init__(self, tmp):
        self.certs = Certs(tmp)
        self.loop = asyncio.new_event_loop()
        # (the handlers that fail on purpose would log tracebacks)
        self.loop.set_exception_handler(lambda loop, context: None)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers = []
        self.http = self._port(cno.serve(app, HOST, 0))
        self.https = self._port(cno.serve(app, HOST, 0, ssl=self.certs.server_context()))

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(5)

    def _port(self, coro):
        server = self._call(coro)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]

    def raw(self, reply):
        """A TCP server that reads the request's first bytes, then writes reply and waits
        for the client to close (reply None: writes nothing, ever; b"": closes); its port."""
        async def handle(reader, writer):
            try:
                await reader.read(65536)
                if reply is None:
                    await asyncio.Event().wait()
                writer.write(reply)
                while reply and await reader.read(65536):
                    pass
            finally:
                writer.close()
        return self._port(asyncio.start_server(handle, HOST, 0))

    def close(self):
        async def stop():
            for server in self.servers:
                server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        self._call(stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    servers = Servers(tmp_path_factory.mktemp("certs"))
    yield servers
    servers.close()


def url(port, path="/echo", scheme="http"):
    return "%s://%s:%d%s" % (scheme, HOST, port, path)


def run(capsys, *argv):
    """(exit code, stdout, stderr) of cli.main(argv)."""
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def fails(capsys, code, message, *argv):
    """Run argv, expect exit code and a one-line ``cno: `` error matching message."""
    got, out, err = run(capsys, *argv)
    assert (got, out) == (code, ""), err
    assert err.count("\n") == 1 and err.startswith("cno: "), err
    assert re.search(message, err), err
    return err


# Separate processes: their stdout is a pipe, buffered unless the environment says otherwise.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}


def cno_process(*argv, wait=True):
    """python -m cno argv: its CompletedProcess, or (wait=False) the running Popen, killed
    after 10 s whatever happens."""
    if wait:
        return subprocess.run([sys.executable, "-m", "cno", *argv], capture_output=True,
                              timeout=10, env=ENV)
    proc = subprocess.Popen([sys.executable, "-m", "cno", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    timer = threading.Timer(10, proc.kill)
    timer.daemon = True
    timer.start()
    return proc


def closed_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]   # nothing listens there once s is closed


# -- the parser ---------------------------------------------------------------------------

def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0
    assert capsys.readouterr().out == "cno %s\n" % cno.__version__


@pytest.mark.parametrize("command", ["get", "serve", "demo", "hpack"])
def test_every_option_has_help_with_its_default(capsys, command):
    with pytest.raises(SystemExit):
        cli.main([command, "--help"])
    text = capsys.readouterr().out
    options = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    entries = re.split(r"\n(?=  -)", options.strip("\n"))
    assert len(entries) > (12 if command == "get" else 0)
    for entry in entries:
        if not entry.lstrip().startswith("-h"):
            assert "(default: " in " ".join(entry.split()), entry


def test_get_help_lists_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["get", "--help"])
    text = capsys.readouterr().out
    for code, meaning in cli.EXIT_CODES.items():
        assert re.search(r"\n +%d  %s" % (code, re.escape(meaning[:30])), text), code


def test_docs_list_every_get_option_and_exit_code(capsys):
    doc = (ROOT / "docs" / "cli.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", doc, re.M))
    assert sorted(map(int, table)) == sorted(cli.EXIT_CODES)
    with pytest.raises(SystemExit):
        cli.main(["get", "--help"])
    options = re.findall(r"^  (-.*?)(?:  |$)", capsys.readouterr().out, re.M)
    names = {name.split()[0] for entry in options for name in entry.split(", ")}
    assert len(names) > 15
    for name in names - {"-h", "--help"}:
        assert "`%s" % name in doc, name


def test_bad_option_values_are_usage_errors(capsys):
    for argv in (["get", "-H", "no colon", url(1)], ["get", "--max-time", "0", url(1)],
                 ["get", "--http1.1", "--upgrade", url(1)], ["serve", "--port", "70000"],
                 ["get", "--http2", url(1)]):   # (no abbreviations: --http2 is not an option)
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == cli.USAGE
        assert "error:" in capsys.readouterr().err


# -- URLs ---------------------------------------------------------------------------------

def test_url_without_scheme_is_refused(capsys, srv):
    # (it used to go to localhost:80)
    fails(capsys, cli.BAD_URL,
          r"no scheme in URL \(use http:// or https://\): 127\.0\.0\.1:\d+/echo$",
          "get", "%s:%d/echo" % (HOST, srv.http))


def test_only_http_and_https(capsys):
    fails(capsys, cli.OTHER, r"unsupported URL scheme 'ftp'", "get", "ftp://example.com/")


@pytest.mark.parametrize("bad", ["http://x:99999/", "http://x:0/", "http://x:port/"])
def test_bad_port(capsys, bad):
    fails(capsys, cli.BAD_URL, r"^cno: bad port in URL: %s$" % re.escape(bad), "get", bad)


def test_no_host(capsys):
    fails(capsys, cli.BAD_URL, r"no host in URL: http:///x", "get", "http:///x")


# -- requests -----------------------------------------------------------------------------

def test_get_http_is_http1_by_default(capsys, srv):
    code, out, err = run(capsys, "get", url(srv.http, "/echo?q=1"))
    assert (code, err) == (0, "")
    assert out.startswith("method=GET\npath=/echo?q=1\nversion=HTTP/1.1\n")
    assert "user-agent: cno/%s\n" % cno.__version__ in out and "accept: */*\n" in out


@pytest.mark.parametrize("option", ["--http2-prior-knowledge", "--upgrade"])
def test_get_h2c(capsys, srv, option):
    code, out, err = run(capsys, "get", option, url(srv.http))
    assert (code, err) == (0, "")
    assert "version=HTTP/2\n" in out


def test_https_alpn_h2_by_default_http1_on_request(capsys, srv):
    ca = str(srv.certs.ca_file)
    code, out, _ = run(capsys, "get", "--cacert", ca, url(srv.https, scheme="https"))
    assert code == 0 and "version=HTTP/2\n" in out
    code, out, _ = run(capsys, "get", "--cacert", ca, "--http1.1", url(srv.https, scheme="https"))
    assert code == 0 and "version=HTTP/1.1\n" in out


def test_http1_1_on_http(capsys, srv):
    assert "version=HTTP/1.1\n" in run(capsys, "get", "--http1.1", url(srv.http))[1]


def test_h2c_options_are_for_http_urls(capsys, srv):
    for option in ("--http2-prior-knowledge", "--upgrade"):
        fails(capsys, cli.USAGE, r"are for http: URLs", "get", option,
              url(srv.https, scheme="https"))


def test_method(capsys, srv):
    assert run(capsys, "get", "-X", "PUT", url(srv.http))[1].startswith("method=PUT\n")
    assert run(capsys, "get", "--request", "DELETE", "--http2-prior-knowledge",
               url(srv.http))[1].startswith("method=DELETE\n")


def test_headers(capsys, srv):
    for version in ("--http1.1", "--http2-prior-knowledge"):
        code, out, err = run(capsys, "get", version, "-H", "X-One: 1", "--header", "x-two:  two ",
                             "-H", "User-Agent: mine", "-H", "Host: example.test", url(srv.http))
        assert code == 0, err
        assert "x-one: 1\n" in out and "x-two: two\n" in out and "user-agent: mine\n" in out
        assert "cno/" not in out and ":authority: example.test\n" in out
    fails(capsys, cli.USAGE, r"^cno: cannot send this request: invalid header name 'bad name'",
          "get", "-H", "bad name: x", url(srv.http))


def test_data(capsysbinary, srv, tmp_path):
    code, out, _ = run(capsysbinary, "get", "-d", "a=1", url(srv.http))
    assert code == 0 and out.startswith(b"method=POST\n")
    assert b"content-type: application/x-www-form-urlencoded\n" in out
    assert b"content-length: 3\n" in out and out.endswith(b"\n\na=1")
    body = tmp_path / "body.bin"
    body.write_bytes(b"\x00\xffbinary\r\n")
    code, out, _ = run(capsysbinary, "get", "-X", "PUT", "-H", "content-type: x/y", "--data",
                       "@%s" % body, "-d", "b=2", "--http2-prior-knowledge", url(srv.http))
    assert out.startswith(b"method=PUT\n") and b"content-type: x/y\n" in out
    assert out.endswith(b"\n\n\x00\xffbinary\r\n&b=2")


def test_data_from_stdin(capsys, srv, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"from stdin")))
    code, out, _ = run(capsys, "get", "-d", "@-", url(srv.http))
    assert code == 0 and out.startswith("method=POST\n") and out.endswith("\n\nfrom stdin")


def test_data_file_missing(capsys, srv, tmp_path):
    fails(capsys, cli.READ_ERROR, r"^cno: no such file: .*nothing-here\n$",
          "get", "-d", "@%s" % (tmp_path / "nothing-here"), url(srv.http))


def test_output(capsys, srv, tmp_path):
    out_file = tmp_path / "out.bin"
    code, out, err = run(capsys, "get", "-o", str(out_file), url(srv.http, "/big"))
    assert (code, out, err) == (0, "", "")   # (stderr is no terminal: no progress bar)
    assert out_file.read_bytes() == BIG


def test_output_bad_path(capsys, srv, tmp_path):
    fails(capsys, cli.WRITE_ERROR, r"^cno: no such directory: .*no-dir\n$",
          "get", "-o", str(tmp_path / "no-dir" / "out"), url(srv.http))
    fails(capsys, cli.WRITE_ERROR, r"^cno: is a directory: ", "get", "-o", str(tmp_path),
          url(srv.http))


def test_head(capsys, srv):
    code, out, err = run(capsys, "get", "-I", url(srv.http))
    assert (code, err) == (0, "")
    assert out.startswith("HTTP/1.1 200\n") and "x-method: HEAD\n" in out and out.endswith("\n\n")
    code, out, _ = run(capsys, "get", "--head", "--http2-prior-knowledge", url(srv.http))
    assert out.startswith("HTTP/2 200\n") and "x-method: HEAD\n" in out
    fails(capsys, cli.USAGE, r"cannot go together", "get", "-I", "-d", "x", url(srv.http))


def test_fail(capsys, srv):
    assert run(capsys, "get", url(srv.http, "/status/404")) == (0, "status page\n", "")
    fails(capsys, cli.HTTP_ERROR, r"^cno: HTTP status 404: http://.*/status/404\n$",
          "get", "-f", url(srv.http, "/status/404"))
    assert run(capsys, "get", "--fail", url(srv.http, "/status/302"))[0] == 0


# -- -v -----------------------------------------------------------------------------------

def test_verbose_http1(capsys, srv):
    code, out, err = run(capsys, "get", "-v", url(srv.http, "/status/200"))
    assert (code, out) == (0, "status page\n")
    lines = err.splitlines()
    assert lines[0] == "* connecting to %s:%d (HTTP/1.1)" % (HOST, srv.http)
    assert lines[1] == "* connected to %s port %d" % (HOST, srv.http)
    assert lines[2] == "> GET /status/200 HTTP/1.1"
    assert "> host: %s:%d" % (HOST, srv.http) in lines and "> accept: */*" in lines
    assert "< HTTP/1.1 200 OK" in lines and "< content-length: 12" in lines
    assert ">>" not in err


def test_verbose_http2_frames_and_heads(capsys, srv):
    code, out, err = run(capsys, "get", "--verbose", "--http2-prior-knowledge",
                         url(srv.http, "/trailers"))
    assert (code, out) == (0, "body\n")
    for pattern in [
        r">> SETTINGS stream=0 flags=0 length=\d+ .*max_concurrent_streams=\d+.*",
        r">> WINDOW_UPDATE stream=0 flags=0 length=4 increment=\d+",
        r"<< SETTINGS stream=0 flags=ACK length=0",
        r">> HEADERS stream=1 flags=END_STREAM\|END_HEADERS length=\d+\n"
        r"> :method: GET\n> :path: /trailers\n> :scheme: http",
        r"<< HEADERS stream=1 flags=END_HEADERS length=\d+\n< :status: 200",
        r"<< DATA stream=1 flags=0 length=5",
        r"<< HEADERS stream=1 flags=END_STREAM\|END_HEADERS length=\d+\n< x-checksum: 42",
    ]:
        assert re.search("^%s$" % pattern, err, re.M), pattern
    assert "\n> GET" not in err   # (no HTTP/1.1 lines)


def test_verbose_upgrade(capsys, srv):
    code, _, err = run(capsys, "get", "-v", "--upgrade", url(srv.http))
    assert code == 0
    assert "> upgrade: h2c\n" in err
    assert re.search(r"< HTTP/1.1 101 Switching Protocols\n(.*\n)*<< SETTINGS", err)
    assert re.search(r"<< HEADERS stream=1 .*\n< :status: 200\n", err)


def test_verbose_tls(capsys, srv):
    code, _, err = run(capsys, "get", "-v", "-k", url(srv.https, scheme="https"))
    assert code == 0
    assert "(TLS, ALPN offering h2, http/1.1)" in err
    assert re.search(r"^\* TLSv1\.[23], ALPN: h2, cipher \S+$", err, re.M)


# -- TLS ----------------------------------------------------------------------------------

def test_tls_verify_failure_without_cacert_or_insecure(capsys, srv):
    fails(capsys, cli.TLS_ERROR,
          r"^cno: certificate verify failed: .*: 127\.0\.0\.1:%d\n$" % srv.https,
          "get", url(srv.https, scheme="https"))


def test_cacert_and_insecure(capsys, srv):
    for option in (["--cacert", str(srv.certs.ca_file)], ["-k"], ["--insecure"]):
        assert run(capsys, "get", *option, url(srv.https, "/status/200", "https")) \
            == (0, "status page\n", "")


def test_cacert_missing_or_bad(capsys, srv, tmp_path):
    https = url(srv.https, scheme="https")
    fails(capsys, cli.CA_CERT_ERROR, r"^cno: no such file: nothing\.pem\n$",
          "get", "--cacert", "nothing.pem", https)
    fails(capsys, cli.CA_CERT_ERROR, r"^cno: bad CA certificate file: .*: .*key\.pem\n$",
          "get", "--cacert", str(srv.certs.key_file), https)


def test_tls_handshake_failure(capsys, srv):
    port = srv.raw(b"HTTP/1.1 400 Bad Request\r\n\r\n")
    fails(capsys, cli.TLS_ERROR, r"^cno: TLS handshake failed: .*: 127\.0\.0\.1:%d\n$" % port,
          "get", url(port, scheme="https"))


def test_https_to_a_plaintext_cno_port_fails_at_once(capsys, srv):
    # issue 8: cno's server drops a TLS ClientHello on a plaintext port at its first
    # bytes (docs/raw.md "The wrong protocol"), so `get https://` there fails in well
    # under a second instead of waiting for the 30 s header timeout.
    started = time.monotonic()
    fails(capsys, cli.TLS_ERROR, r"^cno: TLS handshake failed: .*: 127\.0\.0\.1:%d\n$"
          % srv.http, "get", url(srv.http, scheme="https"))
    assert time.monotonic() - started < 1.0


# -- network errors -----------------------------------------------------------------------

def test_connection_refused(capsys):
    port = closed_port()
    fails(capsys, cli.COULD_NOT_CONNECT, r"^cno: connection refused: 127\.0\.0\.1:%d\n$" % port,
          "get", url(port))


def test_could_not_resolve(capsys):
    fails(capsys, cli.COULD_NOT_RESOLVE, r"^cno: could not resolve host: nosuch\.invalid\n$",
          "get", "http://nosuch.invalid/")


def test_connect_timeout(capsys, srv):
    port = srv.raw(None)   # (accepts, never answers the TLS handshake)
    fails(capsys, cli.TIMEOUT,
          r"^cno: connection timed out after 0\.2 s: 127\.0\.0\.1:%d\n$" % port,
          "get", "--connect-timeout", "0.2", url(port, scheme="https"))


def test_max_time(capsys, srv, tmp_path):
    # (the body stalls after 10 bytes; -o keeps them off stdout)
    fails(capsys, cli.TIMEOUT, r"^cno: operation timed out after 0\.2 s: http://.*/stall\n$",
          "get", "--max-time", "0.2", "-o", str(tmp_path / "out"), url(srv.http, "/stall"))


def test_empty_reply(capsys, srv):
    fails(capsys, cli.EMPTY_REPLY, r"^cno: empty reply from server: ", "get", url(srv.raw(b"")))


def test_not_http1(capsys, srv):
    fails(capsys, cli.WEIRD_REPLY, r"^cno: not an HTTP/1\.1 response: ",
          "get", url(srv.raw(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")))


def test_http2_protocol_error_sent(capsys, srv):
    continuation = b"\x00\x00\x05\x09\x04\x00\x00\x00\x01abcde"   # with no HEADERS before
    fails(capsys, cli.HTTP2_ERROR, r"^cno: HTTP/2 protocol error: sent GOAWAY PROTOCOL_ERROR: ",
          "get", "--http2-prior-knowledge", url(srv.raw(SETTINGS + continuation)))


def test_http2_goaway_received(capsys, srv):
    goaway = b"\x00\x00\x11\x07\x00\x00\x00\x00\x00" + bytes(7) + b"\x0bcalm down"
    fails(capsys, cli.HTTP2_ERROR,
          r"^cno: HTTP/2 protocol error: the server sent GOAWAY ENHANCE_YOUR_CALM \(calm down\): ",
          "get", "--http2-prior-knowledge", url(srv.raw(SETTINGS + goaway)))


def test_stream_reset(capsys, srv):
    fails(capsys, cli.STREAM_RESET, r"^cno: the server reset the stream: REFUSED_STREAM: ",
          "get", "--http2-prior-knowledge", url(srv.http, "/reset"))


def test_truncated_body(capsys, srv):
    # HTTP/1.1: the connection closes 10 bytes into a 100000-byte body.
    code, out, err = run(capsys, "get", url(srv.http, "/truncated"))
    assert (code, out) == (cli.PARTIAL_BODY, "x" * 10)
    assert err == "cno: connection closed before the end of the body: %s\n" % url(
        srv.http, "/truncated")
    code, out, err = run(capsys, "get", "--http2-prior-knowledge", url(srv.http, "/truncated"))
    assert (code, out) == (cli.STREAM_RESET, "x" * 10)
    assert err.startswith("cno: the server reset the stream: INTERNAL_ERROR: ")


# -- the progress bar ---------------------------------------------------------------------

def test_progress_bar_on_a_terminal_for_a_large_body(capsys, srv, tmp_path, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    out_file = tmp_path / "big"
    code, out, err = run(capsys, "get", "-o", str(out_file), url(srv.http, "/big"))
    assert (code, out) == (0, "")
    assert err.startswith("\r[") and err.endswith("\n") and err.count("\n") == 1
    last = err.rstrip().rsplit("\r", 1)[1]
    assert re.match(r"\[#{30}\] 100% 2\.0 MiB of 2\.0 MiB, [\d.]+ \S+/s$", last), last
    # small bodies, and bodies going to stdout, get none
    assert run(capsys, "get", "-o", str(out_file), url(srv.http, "/status/200"))[2] == ""
    assert run(capsys, "get", url(srv.http, "/status/200"))[2] == ""


# -- --debug and unexpected errors ----------------------------------------------------------

def test_debug_shows_the_traceback(capsys):
    port = closed_port()
    with pytest.raises(cli.Failure) as e:
        cli.main(["--debug", "get", url(port)])
    assert e.value.code == cli.COULD_NOT_CONNECT
    assert isinstance(e.value.__cause__, ConnectionRefusedError)


def test_unexpected_error_is_one_line(capsys, srv, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")
    monkeypatch.setattr(cno, "connect", broken)
    fails(capsys, cli.OTHER,
          r"^cno: unexpected error: RuntimeError: boom \(--debug shows the traceback\)\n$",
          "get", url(srv.http))


# -- serve --------------------------------------------------------------------------------

def test_serve_refuses_a_missing_or_non_directory_dir(capsys, tmp_path):
    fails(capsys, cli.USAGE, r"^cno: no such directory: .*missing\n$",
          "serve", str(tmp_path / "missing"))
    (tmp_path / "file").write_text("x")
    fails(capsys, cli.USAGE, r"^cno: not a directory: .*file\n$", "serve", str(tmp_path / "file"))


def test_serve_busy_port(capsys):
    with socket.socket() as s:
        s.bind((HOST, 0))
        s.listen()
        port = s.getsockname()[1]
        fails(capsys, cli.COULD_NOT_CONNECT, r"^cno: address already in use: 127\.0\.0\.1:%d\n$"
              % port, "serve", "--port", str(port))


def test_serve_bad_host(capsys):
    fails(capsys, cli.COULD_NOT_RESOLVE, r"^cno: could not resolve host: nosuch\.invalid\n$",
          "serve", "--host", "nosuch.invalid", "--port", "0")


def test_serve_certificate_and_key_files(capsys, srv, tmp_path):
    fails(capsys, cli.LOCAL_CERT_ERROR, r"^cno: no such file: nothing\.pem\n$",
          "serve", "--certfile", "nothing.pem")
    fails(capsys, cli.LOCAL_CERT_ERROR, r"^cno: no such file: nokey\.pem\n$",
          "serve", "--certfile", str(srv.certs.cert_file), "--keyfile", "nokey.pem")
    fails(capsys, cli.LOCAL_CERT_ERROR, r"^cno: bad certificate or key: .*: .*ca\.pem\n$",
          "serve", "--certfile", str(srv.certs.cert_file), "--keyfile", str(srv.certs.ca_file))
    fails(capsys, cli.USAGE, r"^cno: --keyfile needs --certfile\n$",
          "serve", "--keyfile", str(srv.certs.key_file))


def test_serve_reload_usage_errors(capsys, tmp_path):
    fails(capsys, cli.USAGE, r"^cno: --reload runs one server process: not with --workers\n$",
          "serve", "mod:app", "--reload", "--workers", "2")
    fails(capsys, cli.USAGE, r"^cno: --reload-dir needs --reload\n$",
          "serve", "mod:app", "--reload-dir", str(tmp_path))
    fails(capsys, cli.USAGE, r"^cno: --reload-dir: no such directory: .*missing\n$",
          "serve", "mod:app", "--reload", "--reload-dir", str(tmp_path / "missing"))
    fails(capsys, cli.USAGE, r"^cno: --reload restarts a MODULE:APP when its code changes: "
          r"not for DIR\n$", "serve", str(tmp_path), "--reload")
    fails(capsys, cli.USAGE, r"^cno: --reload restarts a MODULE:APP when its code changes: "
          r"not for the demo application\n$", "serve", "--reload")


def test_serve_reload_without_watchfiles_says_how_to_get_it(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "watchfiles", None)   # (import watchfiles fails)
    fails(capsys, cli.USAGE, r"^cno: --reload needs the watchfiles package: "
          r"pip install watchfiles\n$", "serve", "mod:app", "--reload")


def test_serve_reload_finds_the_module_without_running_it(capsys, tmp_path, monkeypatch):
    require_module("watchfiles")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))
    (tmp_path / "cno_reload_probe.py").write_text("raise SystemExit('imported')\n")
    fails(capsys, cli.USAGE, r"^cno: cannot load the application cno_reload_nothing:app: "
          r"no module named 'cno_reload_nothing'\n$",
          "serve", "cno_reload_nothing:app", "--reload")
    # found, not imported: the module that would exit at import did not run here (a bad
    # --host ends the run before the reloader starts a server)
    fails(capsys, cli.COULD_NOT_RESOLVE, r"^cno: could not resolve host: nosuch\.invalid\n$",
          "serve", "cno_reload_probe:app", "--reload", "--host", "nosuch.invalid")
    assert "cno_reload_probe" not in sys.modules


def test_serve_without_argument_serves_the_demo_app():
    proc = cno_process("serve", "--port", "0", wait=False)
    try:
        lines = []
        while not lines or "serving on" not in lines[-1]:
            line = proc.stderr.readline().decode()
            assert line, "".join(lines)
            lines.append(line)
        assert lines[0] == "cno: no MODULE:APP or DIR given: serving the demo application " \
                           "(cno.asgi.demo:app)\n", lines
        port = int(re.search(r"serving on http://127\.0\.0\.1:(\d+) ", lines[-1])[1])
        got = asyncio.run(_demo_exchanges(port))
        nghttp = shutil.which("nghttp")
        if nghttp:   # the push on the wire
            wire = subprocess.run([nghttp, "-nv", url(port, "/")], capture_output=True,
                                  timeout=10, text=True).stdout
            assert "recv PUSH_PROMISE frame" in wire and ":path: /style.css" in wire, wire
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert got["page2"][0] == 200 and '<span class="version">HTTP/2</span>' in got["page2"][1]
    assert got["page1"][0] == 200 and '<span class="version">HTTP/1.1</span>' in got["page1"][1]
    assert got["pushed"] == [("/style.css", 200, got["style"])] and b"font-family" in got["style"]
    assert got["echo"] == (200, bytes(range(256)) * 400)
    assert got["stream"] == (200, cno.asgi.demo.STREAM_CHUNKS, [("x-chunks", "5")])
    assert proc.returncode == 0
    assert b"Traceback" not in proc.stderr.read()


async def _demo_exchanges(port):
    """What the demo application answers over HTTP/2 and HTTP/1.1."""
    got = {}
    for http2 in (True, False):
        client = await cno.connect("http://%s:%d/" % (HOST, port), http2=http2)
        try:
            page = await client.request("GET", "/")
            got["page2" if http2 else "page1"] = (page.code, (await page.payload.read()).decode())
            if http2:
                got["pushed"] = []
                async for push in page.pushed:
                    pushed = await push.response
                    got["pushed"].append((push.path, pushed.code, await pushed.payload.read()))
                style = await client.request("GET", "/style.css")
                got["style"] = await style.payload.read()
                echo = await client.request("POST", "/echo", [], bytes(range(256)) * 400)
                got["echo"] = (echo.code, await echo.payload.read())
            else:
                stream = await client.request("GET", "/stream", [("te", "trailers")])
                body = await stream.payload.read()
                got["stream"] = (stream.code, body.count(b"\n"), stream.trailers)
        finally:
            client.close()
    return got


def test_serve_dir_over_tls(srv, tmp_path):
    (tmp_path / "hello.txt").write_text("hello file\n")
    proc = cno_process("serve", "--port", "0", "--certfile", str(srv.certs.cert_file),
                       "--keyfile", str(srv.certs.key_file), str(tmp_path), wait=False)
    try:
        line = proc.stdout.readline().decode()
        port = int(re.search(r"on https://127\.0\.0\.1:(\d+)/", line)[1])
        got = cno_process("get", "--cacert", str(srv.certs.ca_file),
                          url(port, "/hello.txt", "https"))
        assert (got.returncode, got.stdout, got.stderr) == (0, b"hello file\n", b"")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0 and proc.stderr.read() == b""


# -- demo and hpack -----------------------------------------------------------------------

def test_demo(capsys):
    # the demo application (cno/asgi/demo.py), what `cno serve` runs without an argument
    code, out, _ = run(capsys, "demo")
    assert code == 0 and out.endswith("\ndone\n")
    assert re.match(r"the demo application \(cno\.asgi\.demo:app, .*\) on "
                    r"http://127\.0\.0\.1:\d+/\n", out)
    http2, http1 = out.split("\nHTTP/2:\n")[1].split("\nHTTP/1.1:\n")
    for part, version in ((http2, "HTTP/2"), (http1, "HTTP/1.1")):
        assert re.search(r"^  GET / +-> 200 text/html, \d+ bytes, says: served over %s$"
                         % version, part, re.M), out
        assert re.search(r"^  POST /echo +-> 200, 100000 of 100000 bytes back, the same$",
                         part, re.M), out
        assert re.search(r"^  GET /stream +-> 200, 5 lines over 0\.\d+ s, trailers: "
                         r"x-chunks: 5$", part, re.M), out
    assert re.search(r"^  pushed /style\.css +-> 200 text/css, \d+ bytes$", http2, re.M), out
    assert "pushed" not in http1 and "UNEXPECTED" not in out


def test_hpack(capsys):
    code, out, _ = run(capsys, "hpack", ":method: GET", "user-agent: demo")
    assert code == 0 and out.count("decodes back ok") == 4
    code, out, _ = run(capsys, "hpack", "--decode", "828684418cf1e3c2e5f23a6ba0ab90f4ff")
    assert code == 0 and out.startswith(":method: GET\n:scheme: http\n:path: /\n")
    assert ":authority: www.example.com\n" in out


# -- a separate process -------------------------------------------------------------------



def test_process_exit_code_and_one_line():
    port = closed_port()
    got = cno_process("get", url(port))
    assert (got.returncode, got.stdout) == (cli.COULD_NOT_CONNECT, b"")
    assert got.stderr == b"cno: connection refused: 127.0.0.1:%d\n" % port
    got = cno_process("--debug", "get", url(port))
    assert got.returncode == 1
    assert b"Traceback" in got.stderr and b"ConnectionRefusedError" in got.stderr


def test_process_stdout_closed(srv):
    proc = cno_process("get", url(srv.http, "/big"), wait=False)
    assert len(proc.stdout.read(10)) == 10
    proc.stdout.close()   # (like `cno get ... | head -c 10`)
    assert proc.wait(10) == cli.WRITE_ERROR
    assert proc.stderr.read() == b"cno: broken pipe: stdout\n"


def test_process_interrupted(srv):
    proc = cno_process("get", url(srv.http, "/stall"), wait=False)
    assert proc.stdout.read(10) == b"x" * 10   # (the body is written as it arrives)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(10) == cli.INTERRUPTED
    assert proc.stderr.read() == b""
