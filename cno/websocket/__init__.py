"""``cno.websocket``: WebSockets (RFC 6455) over HTTP/1.1 Upgrade and HTTP/2 extended
CONNECT (RFC 8441), with permessage-deflate (RFC 7692) (docs/websocket.md).

    async with cno.websocket.connect("wss://example.com/chat") as ws:
        await ws.send("hello")
        async for message in ws:
            ...

- :func:`connect` (client.py): the client, over its own connection or a shared HTTP/2
  :class:`cno.Client`.
- :class:`WebSocket` (connection.py): an open WebSocket, either side (the ASGI server's
  websocket scope runs on it too).
- :class:`Codec` (the compiled ``cno._ws``): the sans-I/O framing, for those who bring
  their own I/O.
- ``cno.websocket.handshake``: the opening handshake's checks and headers, both sides.
"""
from cno._ws import (
    DEFAULT_MAX_MESSAGE_SIZE, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, Codec,
)
from cno.errors import HandshakeError, WebSocketClosed, WebSocketError
from cno.websocket.client import DEFAULT_OPEN_TIMEOUT, connect
from cno.websocket.connection import (
    DEFAULT_CLOSE_TIMEOUT, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT, MAX_QUEUE, WebSocket,
)

__all__ = [
    "Codec", "DEFAULT_CLOSE_TIMEOUT", "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_OPEN_TIMEOUT",
    "DEFAULT_PING_INTERVAL", "DEFAULT_PING_TIMEOUT", "HandshakeError", "MAX_QUEUE",
    "OP_BINARY", "OP_CLOSE", "OP_CONT", "OP_PING", "OP_PONG", "OP_TEXT", "WebSocket",
    "WebSocketClosed", "WebSocketError", "connect",
]
