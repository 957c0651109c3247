"""The errors of :mod:`cno.acgi`, all :class:`cno.CnoError` subclasses.

Stream-level failures (a reset, a refused request, a lost connection) reach an application
as ``http.stream.disconnect`` messages; these exceptions are for what involves no stream
(a bad message, a connection that could not be opened, a timeout) and for the ``body``
iterator, which has no message to return.
"""
from cno.errors import CnoError, UsageError

__all__ = [
    "AcgiError", "MessageError", "ConnectError", "Timeout", "ConnectTimeout", "ReadTimeout",
    "WriteTimeout", "PoolTimeout",
]


class AcgiError(CnoError):
    """Base class of the errors :mod:`cno.acgi` raises itself."""


class MessageError(AcgiError, UsageError):
    """A message ``send`` or ``receive`` cannot accept: an unknown type, a missing or
    mistyped key, a body after ``more_body=False``, an unknown stream, a second HTTP/1.1
    request while one is running, a url of another origin. Nothing was written for it, and
    the other streams go on. Also a ``ValueError``."""


class ConnectError(AcgiError, OSError):  # type: ignore[misc]  # (errno: int vs int | None)
    """The connection could not be opened (DNS, refused, TLS handshake, certificate).
    The original error is ``__cause__``."""


class Timeout(AcgiError, TimeoutError):  # type: ignore[misc]  # (the same)
    """Base class of the timeouts (also a ``TimeoutError``)."""


class ConnectTimeout(Timeout):
    """The connection (TCP and TLS) was not open within the connect timeout."""


class ReadTimeout(Timeout):
    """No response head, or no next body chunk, within the read timeout."""


class WriteTimeout(Timeout):
    """A request body chunk could not be written within the write timeout (the peer's
    flow-control window or the socket stayed full)."""


class PoolTimeout(Timeout):
    """No connection of the pool had room for the request within the pool timeout."""
