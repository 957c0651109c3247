"""ACGI: an ASGI-style message interface for HTTP clients (docs/acgi.md).

The request logic is an application ``async def application(receive, send)`` exchanging
plain dict messages with the connection::

    async def application(receive, send):
        stream_id = await send({"type": "http.request", "url": "https://example.com/",
                                "method": "GET", "headers": [], "body": b"",
                                "more_body": False})
        while True:
            message = await receive(stream_id)
            ...

    result = await cno.acgi.connect("https://example.com/", application)

- :func:`connect`, :func:`open_connection`, :class:`Connection`: one connection.
- :class:`ResponseBody`: the ``body`` iterator of ``http.response``.
- :class:`Pool`: connections reused per origin; also an ASGI reverse-proxy application.
- Errors: :class:`AcgiError` and its subclasses (all ``cno.CnoError``).
"""
from cno.acgi.connection import (
    ACGI_VERSION, Application, Connection, Message, Receive, ResponseBody, Send, connect,
    open_connection,
)
from cno.acgi.pool import Pool
from cno.acgi.errors import (
    AcgiError, ConnectError, ConnectTimeout, MessageError, PoolTimeout, ReadTimeout, Timeout,
    WriteTimeout,
)

__all__ = [
    "ACGI_VERSION", "Application", "Connection", "Message", "Receive", "ResponseBody", "Send",
    "connect", "open_connection", "Pool",
    "AcgiError", "ConnectError", "ConnectTimeout", "MessageError", "PoolTimeout", "ReadTimeout",
    "Timeout", "WriteTimeout",
]
