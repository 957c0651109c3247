"""asyncio servers and clients on cno's engine (see docs/aio.md).

Each connection is an ``asyncio.BufferedProtocol`` that is also a ``cno.raw.Connection``:
reads land in a buffer the protocol owns and go straight to the engine, whose events
become requests, responses and body readers here. Backpressure runs both ways: writers
wait for the peer's HTTP/2 windows and for the transport (pause/resume); readers credit
the peer only for what they consumed (manual flow control), and over HTTP/1.1 the
socket stops being read while too much body is buffered.

The package's modules: ``protocol`` (what both sides share: transport I/O, writing with
backpressure, the staged close), ``payload`` (body readers, Channel), ``server``
(Server, Request, serve, the limits against misbehaving peers), ``client`` (Client,
connect, request, Response, Push, StreamReceiver).
"""
from cno.aio.client import (
    REFUSED_RETRIES, Client, Push, Response, StreamReceiver, connect, request,
)
from cno.aio.payload import Channel, Payload
from cno.aio.protocol import (
    ALPN, CLOSE_GRACE, CONNECTION_WINDOW, DEFAULT_MAX_BODY_BUFFER, Body, Headers,
)
from cno.aio.server import (
    DEFAULT_HEADER_TIMEOUT, DEFAULT_IDLE_TIMEOUT, DEFAULT_MAX_PENDING_INPUT,
    DEFAULT_MIN_PROGRESS_RATE, DEFAULT_PROGRESS_TIMEOUT, DEFAULT_SETTINGS_TIMEOUT, Request,
    Server, Service, serve,
)

__all__ = [
    "Channel", "Payload", "Request", "Response", "Push", "Server", "Client", "Service",
    "StreamReceiver",
    "connect", "request", "serve",
    "Body", "Headers",
    "ALPN", "CLOSE_GRACE", "CONNECTION_WINDOW", "DEFAULT_HEADER_TIMEOUT", "DEFAULT_IDLE_TIMEOUT",
    "DEFAULT_MAX_BODY_BUFFER", "DEFAULT_MAX_PENDING_INPUT", "DEFAULT_MIN_PROGRESS_RATE",
    "DEFAULT_PROGRESS_TIMEOUT", "DEFAULT_SETTINGS_TIMEOUT", "REFUSED_RETRIES",
]
