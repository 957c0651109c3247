"""An ASGI 3 server on :class:`cno.Server`: :class:`Config` (what the ``cno serve``
command line fills), :class:`ASGIServer` (one per connection), and :func:`serve`, which
listens, runs the lifespan and shuts down gracefully (docs/asgi.md)."""
from __future__ import annotations

import asyncio
import dataclasses
import importlib
import ipaddress
import logging
import os
import signal
import socket
import ssl
import sys
from typing import Any, Optional, Union

import cno
from cno.asgi._http import DONE, request_scope, scope_template
from cno.asgi.http import ASGIApp, ClientDisconnected, Cycle
from cno.asgi.lifespan import Lifespan
from cno.asgi.websocket import WebSocketCycle, asks_for_websocket
from cno._ws import DEFAULT_MAX_MESSAGE_SIZE
from cno.errors import HandshakeError
from cno.websocket.connection import DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT
from cno.websocket.handshake import read_request

logger = logging.getLogger("cno.asgi")
access_logger = logging.getLogger("cno.access")


@dataclasses.dataclass
class Config:
    """Everything ``cno serve`` and :func:`serve` take; each field's default is what the
    command line defaults to (docs/asgi.md lists them)."""

    app: Union[str, ASGIApp]
    host: str = "127.0.0.1"
    port: int = 8000
    uds: Optional[str] = None           # a UNIX socket path instead of host:port
    fd: Optional[int] = None            # an inherited listening socket instead
    backlog: int = 2048
    root_path: str = ""
    lifespan: str = "auto"              # auto | on | off
    certfile: Optional[str] = None
    keyfile: Optional[str] = None
    ca_certs: Optional[str] = None
    cert_reqs: int = ssl.CERT_NONE
    timeout_keep_alive: float = 5.0     # idle connection timeout (cno.Server idle_timeout)
    header_timeout: float = cno.aio.DEFAULT_HEADER_TIMEOUT
    graceful_timeout: Optional[float] = 30.0   # running requests' time to finish at shutdown
    limit_concurrency: Optional[int] = None    # requests at once; the next get 503
    h2_max_concurrent_streams: int = 100
    limits: dict[str, int] = dataclasses.field(default_factory=dict)   # the engine's
    proxy_headers: bool = False
    forwarded_allow_ips: str = "127.0.0.1"
    access_log: bool = False
    ws: str = "auto"                    # auto | none: WebSockets (HTTP/1.1 and HTTP/2)
    ws_max_size: int = DEFAULT_MAX_MESSAGE_SIZE   # bytes in a WebSocket message (1009 past it)
    ws_ping_interval: Optional[float] = DEFAULT_PING_INTERVAL   # keepalive pings (None: off)
    ws_ping_timeout: Optional[float] = DEFAULT_PING_TIMEOUT     # a pong's time to arrive
    ws_per_message_deflate: bool = True  # permessage-deflate (RFC 7692) when offered
    workers: int = 1                    # processes sharing the port (cno.asgi.run)
    loop: str = "auto"                  # auto | asyncio | uvloop (cno.asgi.run)
    reuse_port: bool = False            # SO_REUSEPORT (what workers bind with)

    def load_app(self) -> ASGIApp:
        """The application: the callable given, or ``module:attribute`` imported."""
        if not isinstance(self.app, str):
            return self.app
        module_name, sep, attr = self.app.partition(":")
        if not sep or not module_name or not attr:
            raise ValueError("an application is given as module:attribute, not %r" % self.app)
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, "")   # as python -m does: the current directory's modules
        module = importlib.import_module(module_name)
        app: Any = module
        for part in attr.split("."):
            try:
                app = getattr(app, part)
            except AttributeError:
                raise ValueError("module %r has no attribute %r" % (module_name, attr)) from None
        if not callable(app):
            raise ValueError("%s is not callable" % self.app)
        return app  # type: ignore[no-any-return]

    def ssl_context(self) -> Optional[ssl.SSLContext]:
        if self.certfile is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        if self.ca_certs:
            context.load_verify_locations(self.ca_certs)
        context.verify_mode = ssl.VerifyMode(self.cert_reqs)
        return context


def _trusted(spec: str) -> tuple[bool, list[Any]]:
    """(trust every peer, networks) from a comma list of addresses/networks or "*"."""
    items = [x.strip() for x in spec.split(",") if x.strip()]
    if "*" in items:
        return True, []
    return False, [ipaddress.ip_network(x, strict=False) for x in items]


def _forwarded_for(headers: list[tuple[bytes, bytes]]) -> tuple[Optional[str], Optional[str]]:
    """(client host, scheme) from X-Forwarded-For/-Proto or RFC 7239 Forwarded: the
    entry nearest to us (the last one), which our trusted proxy wrote."""
    host = proto = None
    for name, value in headers:
        if name == b"forwarded":
            last = value.split(b",")[-1]
            for pair in last.split(b";"):
                key, _, v = pair.strip().partition(b"=")
                v = v.strip(b'"')
                if key.lower() == b"for" and v:
                    host = v.decode("latin-1")
                    if host.startswith("["):
                        host = host[1:host.find("]")] if "]" in host else host[1:]
                    elif host.count(":") == 1:
                        host = host.split(":")[0]
                elif key.lower() == b"proto" and v:
                    proto = v.decode("latin-1").lower()
        elif name == b"x-forwarded-for":
            host = value.split(b",")[-1].strip().decode("latin-1") or host
        elif name == b"x-forwarded-proto":
            proto = value.split(b",")[-1].strip().decode("latin-1").lower() or proto
    return host, proto


class _Shared:
    """What the connections of one server share: the app, the config, the lifespan
    state and the count of requests running (limit_concurrency)."""

    def __init__(self, app: ASGIApp, config: Config, state: dict[str, Any]) -> None:
        self.app = app
        self.config = config
        self.state = state
        self.running = 0
        self.trust_all, self.trusted = _trusted(config.forwarded_allow_ips)

    def trusts(self, host: Optional[str]) -> bool:
        if self.trust_all:
            return True
        if host is None:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in net for net in self.trusted)


class ASGIServer(cno.Server):
    """The protocol of one connection: each request runs the ASGI application."""

    def __init__(self, loop: asyncio.AbstractEventLoop, shared: _Shared) -> None:
        config = shared.config
        super().__init__(loop, None, idle_timeout=config.timeout_keep_alive,
                         header_timeout=config.header_timeout,
                         max_concurrent_streams=config.h2_max_concurrent_streams,
                         limits=config.limits, bytes_headers=True,
                         enable_connect_protocol=config.ws != "none")
        self.shared = shared
        self.websockets = config.ws != "none"
        self.client: Any = None
        self.server_address: Any = None
        self.extensions: dict[str, Any] = {}
        self.url_scheme = "http"
        self.proxied = False
        self.template: dict[str, Any] = {}   # (_template)
        self.template_http2: Optional[bool] = None
        # what send() returns for a message that needed no waiting
        self.done: asyncio.Future[None] = loop.create_future()
        self.done.set_result(None)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        peer = transport.get_extra_info("peername")
        local = transport.get_extra_info("sockname")
        self.client = list(peer[:2]) if isinstance(peer, tuple) else None
        # X-Forwarded-* and Forwarded are read from trusted peers only
        self.proxied = self.shared.config.proxy_headers and self.shared.trusts(
            self.client[0] if self.client else None)
        self.server_address = list(local[:2]) if isinstance(local, tuple) else \
            [local, None] if local else None
        extensions: dict[str, Any] = {
            "http.response.trailers": {}, "http.response.early_hint": {},
            "http.response.pathsend": {},
        }
        sslobj = transport.get_extra_info("ssl_object")
        if sslobj is not None:
            self.url_scheme = "https"
            cert = sslobj.getpeercert(binary_form=True)
            cipher = sslobj.cipher()
            extensions["tls"] = {
                "server_cert": None,
                "client_cert_chain": [ssl.DER_cert_to_PEM_cert(cert)] if cert else [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}.get(
                    sslobj.version() or "", None),
                "cipher_suite": None,
                "cipher_name": cipher[0] if cipher else None,
            }
        self.extensions = extensions
        self._template()

    def _template(self) -> dict[str, Any]:
        """The scope's keys shared by this connection's requests (and HTTP/2's push
        extension, once the connection is HTTP/2: after an h2c upgrade too)."""
        if self.is_http2 and "http.response.push" not in self.extensions:
            self.extensions = dict(self.extensions, **{"http.response.push": {}})
        self.template = scope_template(self.shared.config.root_path, self.extensions,
                                       self.client, self.server_address, self.url_scheme)
        self.template_http2 = self.is_http2
        return self.template

    async def _run(self, request: cno.Request) -> None:
        """The task of one request (cno.Server's, running the application)."""
        shared = self.shared
        config = shared.config
        try:
            limit = config.limit_concurrency
            if limit is not None and shared.running >= limit:
                await request.respond(503, [(b"content-type", b"text/plain; charset=utf-8"),
                                            (b"retry-after", b"1")], b"Service Unavailable\n")
                return
            http2 = self.is_http2
            template = self.template if self.template_http2 is http2 else self._template()
            scope = request_scope(request, template, shared.state,
                                  "2" if http2 else request.http_version)
            if self.proxied:
                host, proto = _forwarded_for(request.headers)
                if host is not None:
                    scope["client"] = [host, 0]
                if proto in ("http", "https"):
                    scope["scheme"] = proto
            if (request.upgrade or (http2 and request.method == b"CONNECT")) \
                    and self.websockets and asks_for_websocket(request, http2):
                await self._websocket(request, scope, http2)
                return
            cycle = Cycle(request, self.done)
            shared.running += 1
            try:
                await shared.app(scope, cycle.receive, cycle.send)
            except ClientDisconnected:
                pass   # the client left: nothing to answer, nothing to report
            finally:
                shared.running -= 1
                if config.access_log:
                    access_logger.info('%s - "%s %s HTTP/%s" %s', _who(scope["client"]),
                                       scope["method"], request.path.decode("latin-1"),
                                       scope["http_version"], cycle.status or 500)
            if cycle.state != DONE and request.responded:
                # Returned in the middle of a streamed body: the client must not take what
                # it got for a whole response (cno resets the stream / closes HTTP/1.1).
                raise RuntimeError("the ASGI application returned before its response ended")
        except Exception as exc:
            self._failed(request, exc)
        except asyncio.CancelledError as exc:
            self._failed(request, exc)   # (as cno.Server's: whoever cancelled is answered)
            raise
        else:
            if not request.responded:
                self._unanswered(request)   # (returned without any response: a 500)
        finally:
            self._over(request)


    async def _websocket(self, request: cno.Request, scope: dict[str, Any],
                         http2: bool) -> None:
        """A WebSocket handshake: checked here (400, 426), then the application runs
        with a websocket scope (cno/asgi/websocket.py)."""
        shared = self.shared
        config = shared.config
        try:
            offer = read_request(request.method, request.headers, http2=http2)
        except HandshakeError as e:
            await request.respond(e.status or 400, e.headers + [
                (b"content-type", b"text/plain; charset=utf-8")], str(e).encode() + b"\n")
            return
        del scope["method"]
        scope["type"] = "websocket"
        scope["scheme"] = "wss" if scope["scheme"] in ("https", "wss") else "ws"
        scope["subprotocols"] = offer.subprotocols
        extensions: dict[str, Any] = {"websocket.http.response": {}}
        if "tls" in self.extensions:
            extensions["tls"] = self.extensions["tls"]
        scope["extensions"] = extensions
        cycle = WebSocketCycle(request, offer, max_size=config.ws_max_size,
                               ping_interval=config.ws_ping_interval,
                               ping_timeout=config.ws_ping_timeout,
                               per_message_deflate=config.ws_per_message_deflate)
        failure: Optional[BaseException] = None
        shared.running += 1
        try:
            await shared.app(scope, cycle.receive, cycle.send)
        except ClientDisconnected:
            pass
        except Exception as exc:
            failure = exc
            self.loop.call_exception_handler({
                "message": "cno: ASGI websocket application failed", "exception": exc,
                "protocol": self})
        finally:
            shared.running -= 1
            await cycle.finish(failure)
            if config.access_log:
                access_logger.info('%s - "WEBSOCKET %s" %s', _who(scope["client"]),
                                   request.path.decode("latin-1"), cycle.status or 500)


def _who(client: Any) -> str:
    return "%s:%s" % (client[0], client[1]) if client else "-"


def _listening_socket(config: Config) -> socket.socket:
    if config.fd is not None:
        sock = socket.socket(fileno=config.fd)
    elif config.uds is not None:
        if os.path.exists(config.uds) and not os.path.isfile(config.uds):
            os.unlink(config.uds)   # a socket left by an earlier run
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(config.uds)
    else:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if config.reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((config.host, config.port))
    sock.setblocking(False)
    return sock


async def serve(app: Union[str, ASGIApp], *, config: Optional[Config] = None,
                ready: Optional[asyncio.Future[Any]] = None, **options: Any) -> None:
    """Serve ``app`` (an ASGI 3 application, or "module:attribute") until SIGINT/SIGTERM
    or until cancelled, then shut down gracefully. ``options`` are :class:`Config`'s
    fields (or pass ``config``). ``ready``, if given, gets the listening sockets."""
    if config is None:
        config = Config(app, **options)
    application = config.load_app()
    lifespan = Lifespan(application, config.lifespan)
    await lifespan.startup()
    loop = asyncio.get_running_loop()
    shared = _Shared(application, config, lifespan.state)
    sock = _listening_socket(config)
    service = await cno.serve(None, sock=sock, ssl=config.ssl_context(),
                              backlog=config.backlog, protocol=lambda: ASGIServer(loop, shared))
    name = service.sockets[0].getsockname()
    where = config.uds or ("%s:%d" % tuple(name[:2]) if isinstance(name, tuple) else name)
    logger.info("cno: serving on %s%s (pid %d)", "https://" if config.certfile else "http://",
                where, os.getpid())
    stop: asyncio.Future[None] = loop.create_future()

    def on_signal() -> None:
        if not stop.done():
            stop.set_result(None)

    signals = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            signals.append(sig)
        except (NotImplementedError, RuntimeError, ValueError):
            pass   # not the main thread, or not supported here
    if ready is not None and not ready.done():
        ready.set_result(service.sockets)
    try:
        await stop
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
        logger.info("cno: shutting down")
        await service.shutdown(timeout=config.graceful_timeout)
        await lifespan.shutdown()
