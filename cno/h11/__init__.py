"""cno.h11: python-hyper's h11 0.16 API on cno's HTTP/1.1 engine (see docs/dropin.md).

Heads, trailers and chunk-size lines are parsed by cno's engine; the events, their
validation and h11's state machine are Cython (cno/h11/_h11.pyx). ``install()`` makes
``import h11`` (and ``h11._events`` ...) resolve to this package.
"""
from cno.h11._connection import Connection, NEED_DATA, PAUSED
from cno.h11._events import (
    ConnectionClosed, Data, EndOfMessage, Event, InformationalResponse, Request, Response,
)
from cno.h11._state import (
    CLIENT, CLOSED, DONE, ERROR, IDLE, MIGHT_SWITCH_PROTOCOL, MUST_CLOSE, SEND_BODY,
    SEND_RESPONSE, SERVER, SWITCHED_PROTOCOL,
)
from cno.h11._util import LocalProtocolError, ProtocolError, RemoteProtocolError
from cno.h11._version import __version__

PRODUCT_ID = "python-h11/" + __version__


def install():
    """Make ``import h11`` and its submodules resolve to cno.h11 (cno.dropin.install)."""
    from cno import dropin
    dropin.install("h11")


__all__ = (
    "Connection", "NEED_DATA", "PAUSED", "ConnectionClosed", "Data", "EndOfMessage", "Event",
    "InformationalResponse", "Request", "Response", "CLIENT", "CLOSED", "DONE", "ERROR",
    "IDLE", "MUST_CLOSE", "SEND_BODY", "SEND_RESPONSE", "SERVER", "SWITCHED_PROTOCOL",
    "ProtocolError", "LocalProtocolError", "RemoteProtocolError", "PRODUCT_ID", "install",
)
