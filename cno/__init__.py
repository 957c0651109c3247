"""cno: a fast, correct, socketless HTTP/1.1 + HTTP/2 engine, with asyncio servers and
clients on top.

- :mod:`cno.raw`: the engine with libcno's event API (docs/raw.md).
- asyncio: :func:`serve`, :class:`Server`, :func:`connect`, :class:`Client`,
  :func:`request`, :class:`Channel` (docs/aio.md).
- :mod:`cno.hpack`: HPACK (RFC 7541), a drop-in for the ``hpack`` package.
"""
from cno.aio import (
    Channel,
    Client,
    Payload,
    Push,
    Request,
    Response,
    Server,
    Service,
    connect,
    request,
    serve,
)
from cno.errors import (
    CnoError,
    ConnectionClosed,
    HandshakeError,
    InvalidStream,
    ProtocolError,
    StreamReset,
    UsageError,
    WebSocketClosed,
    WebSocketError,
    WouldBlock,
)

__version__ = "0.1.0.dev0"
__all__ = [
    "Channel", "Client", "Payload", "Push", "Request", "Response", "Server", "Service",
    "connect", "request", "serve",
    "CnoError", "ConnectionClosed", "HandshakeError", "InvalidStream", "ProtocolError",
    "StreamReset", "UsageError", "WebSocketClosed", "WebSocketError", "WouldBlock",
    "__version__",
]
