"""The command line: ``cno ...`` or ``python -m cno ...`` (docs/cli.md).

    cno get [options] URL      fetch a URL, curl style (cno get --help)
    cno serve [options] [MODULE:APP|DIR]
                               serve an ASGI application, the files in DIR, or
                               (no argument) the demo application, over HTTP/1.1 and HTTP/2
    cno demo                   the demo application and two clients, locally, then exit
    cno hpack [HEADER ...]     encode headers with HPACK, or --decode header blocks
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import importlib.util
import mimetypes
import os
import re
import signal
import socket
import ssl
import sys
import time
import urllib.parse
from typing import (Any, Awaitable, BinaryIO, Callable, Iterable, Optional,
                    Sequence, TextIO, Union)

import cno
from cno import hpack, raw
from cno._ws import DEFAULT_MAX_MESSAGE_SIZE
from cno.websocket.connection import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT


# Exit codes: curl's number wherever curl has the same class of error (scripts written
# for curl keep working), and argparse's 2 for usage errors.
OK = 0
OTHER = 1
USAGE = 2
BAD_URL = 3
COULD_NOT_RESOLVE = 6
COULD_NOT_CONNECT = 7
WEIRD_REPLY = 8
HTTP2_ERROR = 16
PARTIAL_BODY = 18
HTTP_ERROR = 22
WRITE_ERROR = 23
READ_ERROR = 26
TIMEOUT = 28
TLS_ERROR = 35
EMPTY_REPLY = 52
LOCAL_CERT_ERROR = 58
CA_CERT_ERROR = 77
STREAM_RESET = 92
INTERRUPTED = 130

EXIT_CODES = {
    OK: "success (whatever the HTTP status, unless -f)",
    OTHER: "unsupported URL scheme (only http and https), or an unexpected error",
    USAGE: "usage error: a bad or conflicting option or -H header; serve: DIR not a directory",
    BAD_URL: "malformed URL: no scheme, no host, or a bad port",
    COULD_NOT_RESOLVE: "could not resolve the host (serve: the --host)",
    COULD_NOT_CONNECT: "could not connect: refused, unreachable (serve: could not listen)",
    WEIRD_REPLY: "the reply is not HTTP/1.1",
    HTTP2_ERROR: "HTTP/2 protocol error: a GOAWAY with an error code, sent or received",
    PARTIAL_BODY: "the connection closed before the end of the body",
    HTTP_ERROR: "HTTP status 400 or above, with -f/--fail",
    WRITE_ERROR: "could not write the output (-o FILE, or stdout)",
    READ_ERROR: "could not read the request body (-d @FILE, -d @-)",
    TIMEOUT: "timed out (--connect-timeout, --max-time)",
    TLS_ERROR: "TLS error: certificate verify failed, handshake failed",
    EMPTY_REPLY: "the server closed the connection without a response",
    LOCAL_CERT_ERROR: "serve: the certificate or key file is missing or bad",
    CA_CERT_ERROR: "--cacert: the file is missing or bad",
    STREAM_RESET: "the server reset the HTTP/2 stream (RST_STREAM)",
    INTERRUPTED: "interrupted (Ctrl-C)",
}


class Failure(Exception):
    """An error reported as one line (``cno: <message>``) and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def _file_error(exc: OSError, path: str, writing: bool = False) -> str:
    """What is wrong with a file, as 'no such file: foo.pem'."""
    if isinstance(exc, FileNotFoundError):
        if writing:   # (the directory it should go in is what is missing)
            return "no such directory: %s" % (os.path.dirname(path) or ".")
        return "no such file: %s" % path
    if isinstance(exc, IsADirectoryError):
        return "is a directory: %s" % path
    if isinstance(exc, PermissionError):
        return "permission denied: %s" % path
    return "%s: %s" % ((exc.strerror or str(exc)).lower(), path)


def _read_file(path: str, code: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise Failure(code, _file_error(e, path)) from e


def _ssl_error(exc: ssl.SSLError) -> str:
    """'no certificate or crl found' of '[X509: NO_CERTIFICATE_OR_CRL_FOUND] no
    certificate or crl found (_ssl.c:4154)'."""
    return re.sub(r"^\[[^]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(exc)) or str(exc)


def _text(value: Any) -> str:
    """A header name or value (str, or bytes as latin-1) as text."""
    return value.decode("latin-1") if isinstance(value, (bytes, bytearray)) else str(value)


def _parse_header(text: str) -> tuple[str, str]:
    name, sep, value = text[1:].partition(":")   # (text[0] may be a pseudo-header's ':')
    if not sep:
        raise argparse.ArgumentTypeError("expected 'name: value', got %r" % text)
    return (text[0] + name).strip().lower(), value.strip()


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a number of seconds above 0, got %r" % text)
    return value


def _optional_seconds(text: str) -> Optional[float]:
    """Seconds, or None for 0 (off)."""
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError("expected a number of seconds, got %r" % text)
    return value or None


def _on_off(text: str) -> bool:
    if text.lower() in ("on", "true", "1", "yes"):
        return True
    if text.lower() in ("off", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError("expected on or off, got %r" % text)


def _port(text: str) -> int:
    value = int(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("expected a port from 0 to 65535, got %r" % text)
    return value


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and epilogs as written; ends every option's help with its
    default (unless the help says it already)."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        text = action.help or ""
        if "(default" in text or not action.option_strings or action.default is argparse.SUPPRESS:
            return text
        return text + (" (default: off)" if action.default is False else " (default: %(default)s)")


# ----------------------------------------------------------------------------------------
# cno hpack

def cmd_hpack(args: argparse.Namespace) -> int:
    if args.decode:
        decoder = hpack.Decoder()
        for block in args.decode:
            for name, value in decoder.decode(bytes.fromhex(block)):
                print("%s: %s" % (name, value))
            print("-- table: %d entries, %d bytes" % (len(decoder), decoder.table_bytes))
        return OK
    headers = args.headers or [
        (":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
        (":path", "/"), ("user-agent", "cno-demo/0.1"), ("accept", "*/*"),
    ]
    for huffman in (True, False):
        encoder, decoder = hpack.Encoder(), hpack.Decoder()
        for n in (1, 2):
            block = encoder.encode(headers, huffman=huffman)
            ok = decoder.decode(block) == [tuple(h) for h in headers]
            print("huffman=%s block %d: %3d bytes, decodes back %s: %s"
                  % (huffman, n, len(block), "ok" if ok else "WRONG", block.hex()))
            if not ok:
                return OTHER
    plain = sum(len(n) + len(v) + 4 for n, v in headers)
    print("(the same headers as HTTP/1.1 text: %d bytes)" % plain)
    return OK


# ----------------------------------------------------------------------------------------
# cno serve

DEMO_APP = "cno.asgi.demo:app"   # what serve runs without an argument, and demo uses


def file_handler(root: str) -> Callable[[cno.Request], Awaitable[None]]:
    """A handler serving files under root (GET and HEAD)."""
    top = os.path.realpath(root)

    async def handle(request: cno.Request) -> None:
        if request.method not in ("GET", "HEAD"):
            await request.respond(405, [("allow", "GET, HEAD")])
            return
        path = request.path.split("?", 1)[0]
        full = os.path.realpath(os.path.join(top, path.lstrip("/")))
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        if not full.startswith(top + os.sep) or not os.path.isfile(full):
            await request.respond(404, [("content-type", "text/plain")], b"not found\n")
            return
        with open(full, "rb") as f:
            body = f.read()
        kind = mimetypes.guess_type(full)[0] or "application/octet-stream"
        await request.respond(200, [("content-type", kind), ("content-length", str(len(body)))],
                              body)
    return handle


def _server_tls(certfile: str, keyfile: Optional[str]) -> ssl.SSLContext:
    for path in (certfile, keyfile):
        if path is not None:
            _read_file(path, LOCAL_CERT_ERROR)   # (for a message that names the file)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(certfile, keyfile)
    except ssl.SSLError as e:
        files = certfile + (" + " + keyfile if keyfile else "")
        raise Failure(LOCAL_CERT_ERROR, "bad certificate or key: %s: %s"
                      % (_ssl_error(e), files)) from e
    return context


def _is_app(target: Optional[str]) -> bool:
    return target is not None and ":" in target and not os.path.exists(target)


def cmd_serve_app(args: argparse.Namespace) -> int:
    """serve MODULE:APP, or the demo application without an argument."""
    from cno.asgi import Config, LifespanFailure, run
    from cno.asgi.reload import Reloader
    import logging
    if args.keyfile and not args.certfile:
        raise Failure(USAGE, "--keyfile needs --certfile")
    if args.reload_dir and not args.reload:
        raise Failure(USAGE, "--reload-dir needs --reload")
    if args.reload and args.dir is None:
        raise Failure(USAGE, "--reload restarts a MODULE:APP when its code changes: "
                             "not for the demo application")
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    target = args.dir or DEMO_APP
    config = Config(
        target, host=args.host, port=args.port, uds=args.uds, fd=args.fd,
        backlog=args.backlog, root_path=args.root_path, lifespan=args.lifespan,
        certfile=args.certfile, keyfile=args.keyfile, ca_certs=args.ca_certs,
        cert_reqs=args.cert_reqs, timeout_keep_alive=args.timeout_keep_alive,
        graceful_timeout=args.graceful_timeout, limit_concurrency=args.limit_concurrency,
        h2_max_concurrent_streams=args.h2_max_concurrent_streams,
        proxy_headers=args.proxy_headers, forwarded_allow_ips=args.forwarded_allow_ips,
        access_log=args.access_log, workers=args.workers, loop=args.loop,
        ws=args.ws, ws_max_size=args.ws_max_size, ws_ping_interval=args.ws_ping_interval,
        ws_ping_timeout=args.ws_ping_timeout,
        ws_per_message_deflate=args.ws_per_message_deflate)
    reloader = None
    if args.reload:
        try:
            reloader = Reloader(config, args.reload_dir)
        except (ImportError, ValueError) as e:
            raise Failure(USAGE, str(e)) from e
    try:
        if reloader is not None:
            reloader.check_app()   # (found, not run: the server processes import it)
        else:
            config.load_app()
    except (ImportError, ValueError) as e:
        raise Failure(USAGE, "cannot load the application %s: %s" % (target, e)) from e
    if args.dir is None:
        logging.getLogger("cno.asgi").info(
            "cno: no MODULE:APP or DIR given: serving the demo application (%s)", DEMO_APP)
    if args.certfile:
        _server_tls(args.certfile, args.keyfile)   # a missing or bad file: a clear error
    if args.loop == "uvloop" and importlib.util.find_spec("uvloop") is None:
        raise Failure(USAGE, "--loop uvloop: uvloop is not installed")
    if args.workers > 1 and (args.uds or args.fd is not None):
        raise Failure(USAGE, "--workers share a TCP port: not with --uds or --fd")
    try:
        if reloader is not None:
            reloader.run()
        else:
            run(config)
    except LifespanFailure as e:
        raise Failure(OTHER, str(e)) from e
    except socket.gaierror as e:
        raise Failure(COULD_NOT_RESOLVE, "could not resolve host: %s" % args.host) from e
    except OSError as e:
        reason = os.strerror(e.errno).lower() if e.errno else str(e)
        raise Failure(COULD_NOT_CONNECT, "%s: %s" % (
            reason, args.uds or "%s:%d" % (args.host, args.port))) from e
    return OK


def cmd_serve(args: argparse.Namespace) -> int:
    if args.dir is None or _is_app(args.dir):
        return cmd_serve_app(args)
    if not os.path.isdir(args.dir):
        problem = "not a directory" if os.path.exists(args.dir) else "no such directory"
        raise Failure(USAGE, "%s: %s" % (problem, args.dir))
    if args.reload or args.reload_dir:
        raise Failure(USAGE, "--reload restarts a MODULE:APP when its code changes: "
                             "not for DIR")
    if args.keyfile and not args.certfile:
        raise Failure(USAGE, "--keyfile needs --certfile")
    context = _server_tls(args.certfile, args.keyfile) if args.certfile else None

    async def run() -> None:
        try:
            service = await cno.serve(file_handler(args.dir), args.host, args.port, ssl=context)
        except socket.gaierror as e:
            raise Failure(COULD_NOT_RESOLVE, "could not resolve host: %s" % args.host) from e
        except OSError as e:
            # (asyncio words it "error while attempting to bind on address ...")
            reason = os.strerror(e.errno).lower() if e.errno else str(e)
            raise Failure(COULD_NOT_CONNECT, "%s: %s:%d" % (reason, args.host, args.port)) from e
        where = service.sockets[0].getsockname()
        print("serving %s on %s://%s:%d/ (HTTP/1.1 and HTTP/2; Ctrl-C stops)"
              % (args.dir, "https" if context else "http", where[0], where[1]),
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await service.shutdown(timeout=5)
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return OK


# ----------------------------------------------------------------------------------------
# cno get

_FRAME_NAMES = {getattr(raw, n): n[len("CNO_FRAME_"):] for n in dir(raw)
                if n.startswith("CNO_FRAME_") and n != "CNO_FRAME_UNKNOWN"}
_ERROR_NAMES = {getattr(raw, n): n[len("CNO_RST_"):] for n in dir(raw) if n.startswith("CNO_RST_")}
_SETTING_NAMES = {getattr(raw, n): n[len("CNO_SETTINGS_"):].lower() for n in dir(raw)
                  if n.startswith("CNO_SETTINGS_")
                  and n not in ("CNO_SETTINGS_UNKNOWN", "CNO_SETTINGS_UNDEFINED")}
_FLAG_NAMES = {   # the flags each frame type defines (RFC 9113 section 6)
    raw.CNO_FRAME_DATA: ((0x1, "END_STREAM"), (0x8, "PADDED")),
    raw.CNO_FRAME_HEADERS: ((0x1, "END_STREAM"), (0x4, "END_HEADERS"), (0x8, "PADDED"),
                            (0x20, "PRIORITY")),
    raw.CNO_FRAME_SETTINGS: ((0x1, "ACK"),),
    raw.CNO_FRAME_PUSH_PROMISE: ((0x4, "END_HEADERS"), (0x8, "PADDED")),
    raw.CNO_FRAME_PING: ((0x1, "ACK"),),
    raw.CNO_FRAME_CONTINUATION: ((0x4, "END_HEADERS"),),
}


def _error_name(code: int) -> str:
    return _ERROR_NAMES.get(code, "0x%x" % code)


def _describe(frame: raw.Frame) -> str:
    """One line for a frame: type, stream, flags, length, and what the control frames say."""
    name = _FRAME_NAMES.get(frame.type, "UNKNOWN(0x%x)" % frame.type)
    known = _FLAG_NAMES.get(frame.type, ())
    flags = [flag for bit, flag in known if frame.flags & bit]
    rest = frame.flags & ~sum(bit for bit, _ in known)
    if rest:
        flags.append("0x%x" % rest)
    p = frame.payload
    text = "%s stream=%d flags=%s length=%d" % (name, frame.stream, "|".join(flags) or "0", len(p))
    if frame.type == raw.CNO_FRAME_SETTINGS and p:
        text += " " + " ".join(
            "%s=%d" % (_SETTING_NAMES.get(int.from_bytes(p[i:i + 2], "big"),
                                          "0x%x" % int.from_bytes(p[i:i + 2], "big")),
                       int.from_bytes(p[i + 2:i + 6], "big"))
            for i in range(0, len(p) - len(p) % 6, 6))
    elif frame.type == raw.CNO_FRAME_WINDOW_UPDATE:
        text += " increment=%d" % (int.from_bytes(p[:4], "big") & 0x7FFFFFFF)
    elif frame.type == raw.CNO_FRAME_RST_STREAM:
        text += " error=%s" % _error_name(int.from_bytes(p[:4], "big"))
    elif frame.type == raw.CNO_FRAME_GOAWAY:
        text += " last_stream=%d error=%s" % (int.from_bytes(p[:4], "big") & 0x7FFFFFFF,
                                              _error_name(int.from_bytes(p[4:8], "big")))
        if p[8:]:
            text += " debug=%r" % p[8:].decode("utf-8", "replace")
    return text


def _take_head(buffer: bytearray) -> Optional[list[str]]:
    """The lines of the HTTP/1.1 head at the start of buffer (taken out of it), or None
    while it is incomplete."""
    end = buffer.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = bytes(buffer[:end])
    del buffer[:end + 4]
    return head.decode("latin-1").split("\r\n")


class _Client(cno.Client):
    """A cno.Client that remembers what explains a failure (bytes received, GOAWAY and
    RST_STREAM codes) and, given a trace stream, prints what is exchanged (-v): HTTP/1.1
    heads as the bytes sent and received, HTTP/2 frames and the heads they carry."""

    def __init__(self, *args: Any, trace: Optional[TextIO] = None, **options: Any) -> None:
        super().__init__(*args, **options)
        self.trace = trace
        self.received = 0
        self.goaway: Optional[tuple[bool, int, str]] = None   # (sent by us, code, debug)
        self.reset: Optional[int] = None   # error code of an RST_STREAM received
        # HTTP/1.1 heads being read out of the bytes (None: not or no longer)
        self._sent_head: Optional[bytearray] = bytearray() if trace else None
        self._received_head: Optional[bytearray] = bytearray() if trace else None
        self._view = memoryview(b"")

    def _say(self, prefix: str, lines: Iterable[str]) -> None:
        if self.trace is not None:
            for line in lines:
                print(prefix + line if line else prefix.rstrip(), file=self.trace)

    def failure(self, url: str, in_body: bool) -> Failure:
        """Why the exchange ended early, from what this connection saw."""
        if self.goaway is not None and self.goaway[1]:
            sent, code, debug = self.goaway
            text = "%s GOAWAY %s%s" % ("sent" if sent else "the server sent", _error_name(code),
                                       " (%s)" % debug if debug else "")
            return Failure(HTTP2_ERROR, "HTTP/2 protocol error: %s: %s" % (text, url))
        if self.reset is not None:
            return Failure(STREAM_RESET, "the server reset the stream: %s: %s"
                           % (_error_name(self.reset), url))
        if in_body:
            return Failure(PARTIAL_BODY, "connection closed before the end of the body: %s" % url)
        if self.is_http2 or not self.received:
            return Failure(EMPTY_REPLY, "empty reply from server: %s" % url)
        return Failure(WEIRD_REPLY, "not an HTTP/1.1 response: %s" % url)

    # -- the connection --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:  # type: ignore[override]
        if self.trace is not None:
            peer = transport.get_extra_info("peername")
            self._say("* ", ["connected to %s port %d" % (peer[0], peer[1])])
            tls = transport.get_extra_info("ssl_object")
            if tls is not None:
                self._say("* ", ["%s, ALPN: %s, cipher %s" % (
                    tls.version(), tls.selected_alpn_protocol() or "none", tls.cipher()[0])])
        super().connection_made(transport)

    def get_buffer(self, sizehint: int) -> memoryview:
        self._view = super().get_buffer(sizehint)
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        self.received += nbytes
        if self._received_head is not None and not self.is_http2:
            self._received_head += self._view[:nbytes]
            while (lines := _take_head(self._received_head)) is not None:
                self._say("< ", lines + [""])
                status = lines[0].split(" ", 2)[1:2]
                code = int(status[0]) if status and status[0].isdigit() else 0
                if not 100 <= code < 200 or code == 101:   # (after a 101 come frames)
                    self._received_head = None
                    break
            if self._received_head is not None and len(self._received_head) > self.max_head_size:
                self._received_head = None   # not a head: no use keeping it
        super().buffer_updated(nbytes)

    def on_writev(self, chunks: Sequence[Union[bytes, memoryview]]) -> None:
        if self._sent_head is not None and not self.is_http2:
            for chunk in chunks:
                self._sent_head += chunk
            lines = _take_head(self._sent_head)
            if lines is not None:
                self._say("> ", lines + [""])
                self._sent_head = None
        super().on_writev(chunks)

    # -- HTTP/2 ----------------------------------------------------------------------------

    def on_frame_send(self, frame: raw.Frame) -> None:
        self._say(">> ", [_describe(frame)])
        if frame.type == raw.CNO_FRAME_GOAWAY:
            self.goaway = (True, int.from_bytes(frame.payload[4:8], "big"),
                           frame.payload[8:].decode("utf-8", "replace"))

    def on_frame(self, frame: raw.Frame) -> None:
        self._say("<< ", [_describe(frame)])
        if frame.type == raw.CNO_FRAME_GOAWAY:
            self.goaway = (False, int.from_bytes(frame.payload[4:8], "big"),
                           frame.payload[8:].decode("utf-8", "replace"))
        elif frame.type == raw.CNO_FRAME_RST_STREAM:
            self.reset = int.from_bytes(frame.payload[:4], "big")

    def write_head(self, stream: int, code: int, method: Union[str, bytes],
                   path: Union[str, bytes], headers: Optional[Iterable[Any]],
                   final: bool) -> None:
        headers = list(headers or ())
        super().write_head(stream, code, method, path, headers, final)
        if self.is_http2:   # (HTTP/1.1 heads are shown as the bytes that went out)
            self._say("> ", ["%s: %s" % (_text(h[0]), _text(h[1]))
                             for h in [(":method", method), (":path", path)] + headers])

    def on_message_head(self, stream: int, code: int, method: Any, path: Any,
                        headers: list[tuple[Any, Any]]) -> None:
        if self.is_http2:
            self._say("< ", [":status: %d" % code]
                      + ["%s: %s" % (_text(n), _text(v)) for n, v in headers])
        super().on_message_head(stream, code, method, path, headers)

    def on_message_tail(self, stream: int, trailers: Optional[list[tuple[Any, Any]]]) -> None:
        self._say("< ", ["%s: %s" % (_text(n), _text(v)) for n, v in trailers or ()])
        super().on_message_tail(stream, trailers)


def _size(n: float) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    i = 0
    while n >= 1024 and i < len(units) - 1:
        n /= 1024
        i += 1
    return "%d B" % n if i == 0 else "%.1f %s" % (n, units[i])


class _Progress:
    """A progress line on stderr for a body of PROGRESS_MIN bytes or more (with a bar
    when the length is known), redrawn at most ten times a second."""

    PROGRESS_MIN = 1 << 20   # smaller bodies come and go before a bar could help

    def __init__(self, stream: TextIO, total: Optional[int]) -> None:
        self.stream = stream
        self.total = total
        self.done = 0
        self.start = self.drawn = time.monotonic()
        self.width = 0   # of the longest line drawn (0: none yet)

    def update(self, n: int) -> None:
        self.done += n
        now = time.monotonic()
        if max(self.total or 0, self.done) >= self.PROGRESS_MIN and (
                not self.width or now - self.drawn >= 0.1):
            self._draw(now)

    def finish(self) -> None:
        if self.width:
            self._draw(time.monotonic())
            self.stream.write("\n")
            self.stream.flush()

    def _draw(self, now: float) -> None:
        self.drawn = now
        rate = "%s/s" % _size(self.done / max(now - self.start, 1e-3))
        if self.total:
            fraction = min(self.done / self.total, 1.0)
            line = "[%-30s] %3d%% %s of %s, %s" % ("#" * int(30 * fraction), 100 * fraction,
                                                   _size(self.done), _size(self.total), rate)
        else:
            line = "%s, %s" % (_size(self.done), rate)
        self.width = max(self.width, len(line))
        self.stream.write("\r" + line.ljust(self.width))
        self.stream.flush()


class _Output:
    """Where the response goes: stdout, or the -o file (made once the response arrives)."""

    def __init__(self, path: Optional[str]) -> None:
        self.path = None if path == "-" else path
        self.file: Optional[BinaryIO] = None

    def _failure(self, exc: OSError) -> Failure:
        if self.path is None and isinstance(exc, BrokenPipeError):
            # Nobody reads stdout any more (cno get ... | head): let the interpreter's
            # last flush go nowhere rather than print a second error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return Failure(WRITE_ERROR, _file_error(exc, self.path or "stdout", writing=True))

    def open(self) -> None:
        try:
            self.file = open(self.path, "wb") if self.path else sys.stdout.buffer
        except OSError as e:
            raise self._failure(e) from e

    def write(self, data: bytes) -> None:
        assert self.file is not None
        try:
            self.file.write(data)
            self.file.flush()   # (what arrived can be read at once: cno get ... | consumer)
        except OSError as e:
            raise self._failure(e) from e

    def close(self) -> None:
        if self.file is not None:
            try:
                self.file.flush()
                if self.path:
                    self.file.close()
            except OSError as e:
                raise self._failure(e) from e


def _parse_url(url: str) -> urllib.parse.SplitResult:
    """The URL, checked: http or https, a host, a valid port."""
    if "://" not in url:
        raise Failure(BAD_URL, "no scheme in URL (use http:// or https://): %s" % url)
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise Failure(BAD_URL, "bad port in URL: %s" % url if "port" in str(e).lower()
                      else "bad URL (%s): %s" % (e, url)) from e
    if parts.scheme not in ("http", "https"):
        raise Failure(OTHER, "unsupported URL scheme %r (http and https only): %s"
                      % (parts.scheme, url))
    if not parts.hostname:
        raise Failure(BAD_URL, "no host in URL: %s" % url)
    if port == 0:
        raise Failure(BAD_URL, "bad port in URL: %s" % url)
    return parts


def _read_data(items: list[str]) -> bytes:
    """-d values: text as given, @FILE a file's bytes, @- stdin; joined with '&' (curl)."""
    parts = []
    for item in items:
        if item == "@-":
            try:
                parts.append(sys.stdin.buffer.read())
            except OSError as e:
                raise Failure(READ_ERROR, _file_error(e, "stdin")) from e
        elif item.startswith("@"):
            parts.append(_read_file(item[1:], READ_ERROR))
        else:
            parts.append(os.fsencode(item))   # (the bytes given, whatever the locale)
    return b"&".join(parts)


def _request_headers(given: list[tuple[str, str]], body: Optional[bytes]) -> list[tuple[str, str]]:
    """cno's defaults (user-agent, accept, and for a body its type and length), each
    replaced by a header of that name given with -H; host becomes :authority."""
    headers = [("user-agent", "cno/%s" % cno.__version__), ("accept", "*/*")]
    if body is not None:
        # (without a length, an HTTP/1.1 body goes chunked, which some servers refuse)
        headers += [("content-type", "application/x-www-form-urlencoded"),
                    ("content-length", str(len(body)))]
    given = [(":authority" if name == "host" else name, value) for name, value in given]
    names = {name for name, _ in given}
    mine = [h for h in headers if h[0] not in names] + given
    return sorted(mine, key=lambda h: not h[0].startswith(":"))   # (HTTP/2: pseudo-headers first)


def _client_tls(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    if args.insecure:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if args.cacert:
        _read_file(args.cacert, CA_CERT_ERROR)   # (for a message that names the file)
        try:
            return ssl.create_default_context(cafile=args.cacert)
        except ssl.SSLError as e:
            raise Failure(CA_CERT_ERROR, "bad CA certificate file: %s: %s"
                          % (_ssl_error(e), args.cacert)) from e
    return None


def _connect_failure(exc: OSError, host: str, where: str, tls: bool) -> Failure:
    """One line and a code for an error from cno.connect."""
    if tls and isinstance(exc, (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)):
        # Connected, then cut during the handshake: a server that does not speak TLS
        # there (cno's drops a ClientHello on a plaintext port at once).
        return Failure(TLS_ERROR, "TLS handshake failed: the server closed the connection "
                       "(not a TLS port?): %s" % where)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return Failure(TLS_ERROR, "certificate verify failed: %s: %s"
                       % (exc.verify_message, where))
    if isinstance(exc, ssl.SSLError):
        return Failure(TLS_ERROR, "TLS handshake failed: %s: %s" % (_ssl_error(exc), where))
    if isinstance(exc, socket.gaierror):
        return Failure(COULD_NOT_RESOLVE, "could not resolve host: %s" % host)
    text = str(exc)
    # A host with several addresses (localhost: ::1 and 127.0.0.1) that all failed
    # differently gives one OSError without an errno that lists them.
    refused = exc.errno == errno.ECONNREFUSED or (
        exc.errno is None and text.startswith("Multiple exceptions")
        and text.count("[Errno") == text.count("[Errno %d]" % errno.ECONNREFUSED))
    if refused:
        return Failure(COULD_NOT_CONNECT, "connection refused: %s" % where)
    reason = os.strerror(exc.errno).lower() if exc.errno else text
    return Failure(COULD_NOT_CONNECT, "could not connect: %s: %s" % (reason, where))


async def _fetch(args: argparse.Namespace, parts: urllib.parse.SplitResult, method: str,
                 headers: list[tuple[str, str]], body: Optional[bytes],
                 context: Optional[ssl.SSLContext], http2: Optional[bool],
                 output: _Output) -> int:
    url = args.url
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    where = "%s:%d" % ("[%s]" % host if ":" in host else host, port)
    trace = sys.stderr if args.verbose else None
    if trace is not None:
        how = ("TLS, ALPN offering %s" % ("http/1.1" if http2 is False else "h2, http/1.1")
               if parts.scheme == "https" else
               {True: "HTTP/2 by prior knowledge", False: "HTTP/1.1",
                None: "HTTP/1.1 asking to upgrade to h2c"}[http2])
        print("* connecting to %s (%s)" % (where, how), file=trace)
    try:
        client = await asyncio.wait_for(
            cno.connect(url, ssl=context, http2=http2, protocol_class=_Client, trace=trace),
            args.connect_timeout)
    except (asyncio.TimeoutError, TimeoutError) as e:
        raise Failure(TIMEOUT, "connection timed out after %g s: %s"
                      % (args.connect_timeout, where)) from e
    except OSError as e:   # (ssl.SSLError and socket.gaierror included)
        raise _connect_failure(e, host, where, parts.scheme == "https") from e
    assert isinstance(client, _Client)
    path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
    with contextlib.closing(client):
        try:
            response = await client.request(method, path, headers, body or b"")
        except cno.UsageError as e:
            raise Failure(USAGE, "cannot send this request: %s" % e) from e
        except cno.CnoError as e:
            raise client.failure(url, in_body=False) from e
        if args.fail and response.code >= 400:
            raise Failure(HTTP_ERROR, "HTTP status %d: %s" % (response.code, url))
        output.open()
        if args.head:
            version = "HTTP/2" if client.is_http2 else "HTTP/1.1"
            output.write("".join(["%s %d\n" % (version, response.code)]
                                 + ["%s: %s\n" % (_text(n), _text(v)) for n, v in response.headers]
                                 + ["\n"]).encode("latin-1"))
            return OK
        length = dict(response.headers).get("content-length", "")
        progress = (_Progress(sys.stderr, int(length) if length.isdigit() else None)
                    if output.path is not None and sys.stderr.isatty() else None)
        try:
            async for chunk in response.payload:
                output.write(chunk)
                if progress is not None:
                    progress.update(len(chunk))
        except cno.CnoError as e:
            raise client.failure(url, in_body=True) from e
        finally:
            if progress is not None:
                progress.finish()
    return OK


def cmd_get(args: argparse.Namespace) -> int:
    parts = _parse_url(args.url)
    if args.head and args.data:
        raise Failure(USAGE, "-I/--head and -d/--data cannot go together (HEAD has no body)")
    if parts.scheme == "https" and (args.http2_prior_knowledge or args.upgrade):
        raise Failure(USAGE, "--http2-prior-knowledge and --upgrade are for http: URLs "
                             "(https: negotiates HTTP/2 with ALPN)")
    body = _read_data(args.data) if args.data else None
    method = args.request or ("HEAD" if args.head else "POST" if body is not None else "GET")
    headers = _request_headers(args.header, body)
    context = _client_tls(args) if parts.scheme == "https" else None
    # http: HTTP/1.1 unless told otherwise (see the help); https: ALPN decides.
    http2 = (False if args.http1_1 else True if args.http2_prior_knowledge
             else None if args.upgrade or parts.scheme == "https" else False)
    output = _Output(args.output)
    try:
        return asyncio.run(asyncio.wait_for(
            _fetch(args, parts, method, headers, body, context, http2, output),
            args.max_time))
    except (asyncio.TimeoutError, TimeoutError) as e:
        raise Failure(TIMEOUT, "operation timed out after %g s: %s"
                      % (args.max_time, args.url)) from e
    finally:
        output.close()


# ----------------------------------------------------------------------------------------
# cno demo

async def _demo_clients(port: int) -> bool:
    """Fetch every endpoint of the demo application over HTTP/2 (the push too) and
    HTTP/1.1, printing a line for each; True if every answer was the expected one."""
    from cno.asgi import demo
    ok = True

    def report(label: str, good: bool, text: str) -> None:
        nonlocal ok
        ok = ok and good
        print("  %-18s -> %s%s" % (label, text, "" if good else "  (UNEXPECTED)"))

    def kind(response: cno.Response) -> str:
        return _text(dict(response.headers).get("content-type", "?")).split(";")[0]

    echo = os.urandom(100000)
    for http2 in (True, False):
        print("HTTP/2:" if http2 else "HTTP/1.1:")
        client = await cno.connect("http://127.0.0.1:%d/" % port, http2=http2)
        with contextlib.closing(client):
            response = await client.request("GET", "/")
            page = (await response.payload.read()).decode("utf-8", "replace")
            seen = re.search(r'<span class="version">([^<]*)</span>', page)
            said = seen[1] if seen else "no version"
            report("GET /", response.code == 200 and said == ("HTTP/2" if http2 else "HTTP/1.1"),
                   "%d %s, %d bytes, says: served over %s"
                   % (response.code, kind(response), len(page), said))
            if client.is_http2:
                pushes = 0
                async for push in response.pushed:
                    pushed = await push.response
                    text = await pushed.payload.read()
                    pushes += 1
                    report("pushed " + _text(push.path), pushed.code == 200 and bool(text),
                           "%d %s, %d bytes" % (pushed.code, kind(pushed), len(text)))
                if not pushes:
                    report("push", False, "nothing pushed")
            response = await client.request("POST", "/echo", [], echo)
            back = await response.payload.read()
            report("POST /echo", response.code == 200 and back == echo,
                   "%d, %d of %d bytes back, %s" % (response.code, len(back), len(echo),
                                                   "the same" if back == echo else "DIFFERENT"))
            started = time.monotonic()
            response = await client.request("GET", "/stream", [("te", "trailers")])
            lines = 0
            async for chunk in response.payload:
                lines += chunk.count(b"\n")
            report("GET /stream", response.code == 200 and lines == demo.STREAM_CHUNKS,
                   "%d, %d lines over %.2f s, trailers: %s" % (
                       response.code, lines, time.monotonic() - started,
                       ", ".join("%s: %s" % t for t in response.trailers or ()) or "none"))
    return ok


def cmd_demo(args: argparse.Namespace) -> int:
    from cno.asgi import serve

    async def run() -> bool:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Any] = loop.create_future()
        server = loop.create_task(serve(DEMO_APP, port=0, ready=ready))
        clients: Optional[asyncio.Task[bool]] = None
        interrupted = False

        def interrupt() -> None:
            nonlocal interrupted
            interrupted = True
            if clients is not None:
                clients.cancel()

        try:
            await asyncio.wait([ready, server], return_when=asyncio.FIRST_COMPLETED)
            if server.done():
                server.result()   # it could not start: raise why
                raise KeyboardInterrupt   # (or it was stopped by a signal)
            # Ctrl-C stops the clients, then the server (in place of serve's handlers).
            for sig in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                    loop.add_signal_handler(sig, interrupt)
            port = ready.result()[0].getsockname()[1]
            print("the demo application (%s, what `cno serve` runs without an argument) "
                  "on http://127.0.0.1:%d/" % (DEMO_APP, port))
            clients = loop.create_task(_demo_clients(port))
            try:
                return await clients
            except asyncio.CancelledError:
                if interrupted:
                    raise KeyboardInterrupt from None
                raise
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
    ok = asyncio.run(run())
    print("done" if ok else "done, but not everything went as expected")
    return OK if ok else OTHER


# ----------------------------------------------------------------------------------------

_GET_DESCRIPTION = """\
Fetch URL and write the body to stdout (or -o FILE), curl style.

https: URLs offer HTTP/2 and HTTP/1.1 with ALPN (h2 first); --http1.1 offers HTTP/1.1
alone. http: URLs use HTTP/1.1 unless told otherwise, as curl does: every server
speaks it, while HTTP/2 without TLS needs the server's support either at once
(--http2-prior-knowledge) or through an Upgrade (--upgrade; h2c Upgrade is deprecated
by RFC 9113 and many servers ignore it)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cno", formatter_class=_HelpFormatter,
        description="HTTP/1.1 and HTTP/2 from the command line, on cno (docs/cli.md).")
    parser.add_argument("--version", action="version", version="cno %s" % cno.__version__)
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of an error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, run: Callable[[argparse.Namespace], int], help: str,
                **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, formatter_class=_HelpFormatter,
                           allow_abbrev=False, **kwargs)
        p.set_defaults(run=run)
        return p

    p = command("get", cmd_get, "fetch a URL, curl style", description=_GET_DESCRIPTION,
                epilog="exit codes:\n" + "\n".join("  %3d  %s" % item
                                                    for item in EXIT_CODES.items()))
    p.add_argument("url", help="an http:// or https:// URL")
    p.add_argument("-X", "--request", metavar="METHOD",
                   help="the request method (default: GET; HEAD with -I; POST with -d)")
    p.add_argument("-H", "--header", action="append", default=[], type=_parse_header,
                   metavar="'NAME: VALUE'",
                   help="a request header; replaces cno's header of that name (Host: sets "
                        ":authority); repeatable (default: user-agent: cno/VERSION, accept: */*)")
    p.add_argument("-d", "--data", action="append", metavar="DATA",
                   help="send DATA as the body (its bytes as given, like curl's --data-binary), "
                        "@FILE for a file's bytes, @- for stdin; several -d are joined with '&'; "
                        "implies POST and content-type: application/x-www-form-urlencoded "
                        "unless -X / -H say otherwise (default: no body)")
    p.add_argument("-o", "--output", metavar="FILE",
                   help="write the body to FILE, made when the response arrives; on a "
                        "terminal, a progress bar shows for bodies of 1 MiB or more "
                        "(default: stdout)")
    p.add_argument("-I", "--head", action="store_true",
                   help="send HEAD and output the response head, not the body")
    p.add_argument("-f", "--fail", action="store_true",
                   help="exit 22 and output nothing when the status is 400 or above "
                        "(without -f such responses are output and exit 0, like curl)")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show on stderr what is exchanged: HTTP/1.1 head lines (> sent, "
                        "< received), HTTP/2 frames (>> sent, << received) and the heads "
                        "they carry")
    p.add_argument("-k", "--insecure", action="store_true",
                   help="https: do not verify the server's certificate")
    p.add_argument("--cacert", metavar="FILE",
                   help="https: verify the server's certificate with the CA certificates "
                        "in FILE (PEM) (default: the system's CA certificates)")
    version = p.add_mutually_exclusive_group()
    version.add_argument("--http1.1", dest="http1_1", action="store_true",
                         help="HTTP/1.1 only (https: ALPN offers http/1.1 alone)")
    version.add_argument("--http2-prior-knowledge", action="store_true",
                         help="http: speak HTTP/2 at once, without asking first")
    version.add_argument("--upgrade", action="store_true",
                         help="http: HTTP/1.1, asking to switch to HTTP/2 (Upgrade: h2c) on "
                              "a request without a body")
    p.add_argument("--connect-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                   help="give up connecting (TCP and TLS handshake) after SECONDS")
    p.add_argument("--max-time", type=_seconds, metavar="SECONDS",
                   help="give up on the whole transfer after SECONDS (default: no limit)")

    p = command("serve", cmd_serve, "serve an ASGI application, or files, over HTTP/1.1 and HTTP/2",
                description="Serve an ASGI application (MODULE:APP) or the files in DIR over\n"
                            "HTTP/1.1 and HTTP/2 (h2c by prior knowledge or Upgrade; TLS with\n"
                            "ALPN given a certificate).")
    p.add_argument("dir", nargs="?", metavar="MODULE:APP|DIR",
                   help="an ASGI application (module:attribute, imported from the current "
                        "directory too), or a directory to serve (default: the demo "
                        "application, as `cno demo` shows it)")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=_port, default=8000,
                   help="the port to listen on (0: any free port)")
    p.add_argument("--certfile", metavar="FILE",
                   help="serve https with this certificate chain (PEM) (default: plain http)")
    p.add_argument("--keyfile", metavar="FILE",
                   help="the certificate's private key (PEM) (default: in --certfile)")
    asgi = p.add_argument_group("ASGI applications")
    asgi.add_argument("--uds", metavar="PATH", help="listen on this UNIX socket instead")
    asgi.add_argument("--fd", type=int, metavar="FD",
                      help="listen on this inherited socket (file descriptor) instead")
    asgi.add_argument("--backlog", type=int, default=2048, help="the listen backlog")
    asgi.add_argument("--root-path", default="", metavar="PATH",
                      help="where the application is mounted (scope root_path)")
    asgi.add_argument("--lifespan", choices=("auto", "on", "off"), default="auto",
                      help="run the lifespan protocol (auto: if the application supports it)")
    asgi.add_argument("--ca-certs", metavar="FILE",
                      help="CA certificates to verify client certificates with (PEM)")
    asgi.add_argument("--cert-reqs", type=int, choices=(0, 1, 2), default=0,
                      help="client certificates: 0 none, 1 optional, 2 required")
    asgi.add_argument("--timeout-keep-alive", type=_seconds, default=5.0, metavar="SECONDS",
                      help="close a connection idle this long")
    asgi.add_argument("--graceful-timeout", type=_seconds, default=30.0, metavar="SECONDS",
                      help="at shutdown, running requests have this long to finish")
    asgi.add_argument("--limit-concurrency", type=int, metavar="N",
                      help="requests running at once; more are answered 503 (default: no limit)")
    asgi.add_argument("--h2-max-concurrent-streams", type=int, default=100, metavar="N",
                      help="HTTP/2 streams a client may have open at once")
    asgi.add_argument("--ws", choices=("auto", "none"), default="auto",
                      help="WebSockets over HTTP/1.1 and HTTP/2 (none: an Upgrade is an "
                           "HTTP request like another)")
    asgi.add_argument("--ws-max-size", type=int, default=DEFAULT_MAX_MESSAGE_SIZE,
                      metavar="BYTES", help="the largest WebSocket message taken (close "
                                            "1009 past it)")
    asgi.add_argument("--ws-ping-interval", type=_optional_seconds, default=DEFAULT_PING_INTERVAL,
                      metavar="SECONDS", help="a keepalive ping this often (0: none)")
    asgi.add_argument("--ws-ping-timeout", type=_optional_seconds, default=DEFAULT_PING_TIMEOUT,
                      metavar="SECONDS", help="the WebSocket closes (1011) if a keepalive "
                                              "ping's pong takes longer (0: no limit)")
    asgi.add_argument("--ws-per-message-deflate", type=_on_off, default=True,
                      metavar="on|off", help="agree to permessage-deflate compression "
                                             "when a client offers it")
    asgi.add_argument("--proxy-headers", action="store_true",
                      help="take the client address and scheme from X-Forwarded-For/-Proto "
                           "and Forwarded, when the peer is in --forwarded-allow-ips")
    asgi.add_argument("--forwarded-allow-ips", default="127.0.0.1", metavar="IPS",
                      help="comma-separated addresses or networks trusted for proxy headers "
                           "(* for all)")
    asgi.add_argument("--access-log", action="store_true",
                      help="log each request (logger cno.access) (default: off)")
    asgi.add_argument("--loop", choices=("auto", "asyncio", "uvloop"), default="auto",
                      help="the event loop (auto: uvloop if installed)")
    asgi.add_argument("--workers", type=int, default=1, metavar="N",
                      help="worker processes sharing the port (SO_REUSEPORT), restarted "
                           "if they die")
    asgi.add_argument("--reload", action="store_true",
                      help="development: serve from a child process, restarted when a .py "
                           "file under the current directory (or --reload-dir) changes; "
                           "needs watchfiles (pip install watchfiles)")
    asgi.add_argument("--reload-dir", action="append", default=[], metavar="DIR",
                      help="with --reload: watch DIR instead of the current directory; "
                           "repeatable (default: the current directory)")

    command("demo", cmd_demo, "the demo application and two clients, locally, then exit",
            description="Serve the demo application (what `cno serve` runs without an\n"
                        "argument) on a free local port, fetch its page (and the pushed\n"
                        "stylesheet), echo and stream over HTTP/2 and HTTP/1.1, print what\n"
                        "happened, and stop.")

    p = command("hpack", cmd_hpack, "encode headers or decode a header block",
                description="Encode headers twice on one connection (the second block hits\n"
                            "the dynamic table), with and without Huffman, and decode each\n"
                            "block back; or decode hex header blocks.")
    p.add_argument("headers", nargs="*", type=_parse_header, metavar="'NAME: VALUE'",
                   help="headers to encode (default: a browser-like GET)")
    p.add_argument("--decode", nargs="+", metavar="HEX",
                   help="header blocks to decode, in order, on one connection (default: encode)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line (argv: the arguments after the program name); the exit code."""
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except Failure as e:
        if args.debug:
            raise
        print("cno: %s" % e, file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        if args.debug:
            raise
        return INTERRUPTED
    except Exception as e:
        if args.debug:
            raise
        print("cno: unexpected error: %s: %s (--debug shows the traceback)"
              % (type(e).__name__, e), file=sys.stderr)
        return OTHER


if __name__ == "__main__":
    sys.exit(main())
