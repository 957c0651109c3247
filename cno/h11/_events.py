"""h11's event classes (``h11._events``), implemented in cno.h11._h11 (Cython)."""
from cno.h11._h11 import (
    ConnectionClosed, Data, EndOfMessage, Event, InformationalResponse, Request, Response,
)

__all__ = ["Event", "Request", "InformationalResponse", "Response", "Data", "EndOfMessage",
           "ConnectionClosed"]
