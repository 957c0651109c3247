"""The exceptions cno raises, rooted at :class:`CnoError`.

Protocol errors carry the HTTP/2 error code (RFC 9113 section 7) that a connection sends
when it meets them, so a layer above can answer with the right RST_STREAM or GOAWAY.
"""

__all__ = [
    "CnoError",
    "ProtocolError",
    "FlowControlError",
    "FrameSizeError",
    "EnhanceYourCalm",
    "ConnectionClosed",
    "WouldBlock",
    "InvalidStream",
    "UsageError",
    "HPACKError",
    "HPACKDecodingError",
    "InvalidTableIndex",
    "InvalidTableSizeError",
    "OversizedHeaderListError",
]


# libcno's error numbers (CNO_ERRNO_*), carried as ``errno`` by the errors that map to them.
ERRNO_ASSERTION = 1
ERRNO_NO_MEMORY = 2
ERRNO_PROTOCOL = 4
ERRNO_INVALID_STREAM = 6
ERRNO_WOULD_BLOCK = 7
ERRNO_DISCONNECT = 9


class CnoError(Exception):
    """Base class of every error cno raises."""

    errno = 0


class ProtocolError(CnoError, ValueError):
    """The peer broke the protocol; the connection is dead (GOAWAY was sent).

    ``error_code`` is the HTTP/2 error code (RFC 9113 section 7) sent in that GOAWAY.
    """

    errno = ERRNO_PROTOCOL
    error_code = 0x1  # PROTOCOL_ERROR
    #: HTTP/1.1: the status a server answers with (400, 431, 501, 505), else None.
    status: "int | None" = None

    def __init__(self, message: str = "", error_code: "int | None" = None) -> None:
        super().__init__(message)
        if error_code is not None:
            self.error_code = error_code


class FlowControlError(ProtocolError):
    """The peer overran a flow-control window or overflowed one (RFC 9113 6.9)."""

    error_code = 0x3


class FrameSizeError(ProtocolError):
    """A frame was larger than SETTINGS_MAX_FRAME_SIZE, or of the wrong length for its type."""

    error_code = 0x6


class EnhanceYourCalm(ProtocolError):
    """The peer went over one of the connection's abuse budgets (floods, rapid resets)."""

    error_code = 0xB


class ConnectionClosed(CnoError):
    """The connection is closed, was shut down, or is past a GOAWAY for this stream."""

    errno = ERRNO_DISCONNECT


class WouldBlock(CnoError):
    """Not now: the peer's stream limit is reached (or, in HTTP/1.1, it is not this
    stream's turn). Retry after a stream ends."""

    errno = ERRNO_WOULD_BLOCK


class InvalidStream(CnoError):
    """The stream is unknown, already closed, or closed for writing."""

    errno = ERRNO_INVALID_STREAM


class UsageError(CnoError, ValueError):
    """The call breaks the API's rules (libcno's ASSERTION errors): a bad argument, or a
    call that is not allowed in the connection's current mode or role."""

    errno = ERRNO_ASSERTION


class HPACKError(CnoError):
    """Base class of the HPACK errors (the ``hpack`` package's ``HPACKError``)."""


class HPACKDecodingError(HPACKError, ProtocolError):
    """A header block could not be decoded (RFC 7541); fatal to an HTTP/2 connection."""

    error_code = 0x9  # COMPRESSION_ERROR (RFC 9113 section 4.3)


class InvalidTableIndex(HPACKDecodingError):
    """A header block referred to index 0 or to an index past the end of the table."""


class InvalidTableSizeError(HPACKDecodingError):
    """A dynamic table size update was above the limit we set, or not at a block's start."""


class OversizedHeaderListError(HPACKDecodingError):
    """The decoded header list is larger than ``max_header_list_size`` (RFC 9113 6.5.2).

    The whole block was still decoded, so the decoder's table stays in step with the
    peer's encoder and the connection can go on (answer 431 or RST_STREAM the stream).
    """

    error_code = 0xB  # ENHANCE_YOUR_CALM


class StreamReset(CnoError):
    """The stream ended before its message did: reset by the peer (or by us), or cut by
    the end of the connection. ``code`` is the HTTP/2 error code (RFC 9113 section 7);
    ``remote`` says whether the peer reset it."""

    def __init__(self, code: int = 0x8, message: "str | None" = None, *,
                 remote: bool = True) -> None:
        super().__init__(message or "stream %s (error code %d)" % (
            "reset by the peer" if remote else "reset", code))
        self.code = code
        self.remote = remote

    @property
    def refused(self) -> bool:
        """The peer refused the stream without processing it (REFUSED_STREAM, or above a
        GOAWAY's last-stream-id): a request is safe to retry elsewhere (RFC 9113 8.7)."""
        return self.remote and self.code == 0x7


class WebSocketError(ProtocolError):
    """A WebSocket peer broke RFC 6455 or RFC 7692, or went over a limit. ``code`` is the
    close code to answer with (RFC 6455 7.4.1: 1002 protocol error, 1007 data that does
    not match its type, such as invalid UTF-8 in a text message, 1009 message too big);
    ``reason`` says why, in a few words (it goes in the close frame). ``events`` are
    what the codec's ``feed()`` parsed before the error in the call that raised it (the
    messages the peer sent before breaking the protocol)."""

    def __init__(self, code: int = 1002, reason: str = "") -> None:
        super().__init__(reason or "WebSocket protocol error (close code %d)" % code)
        self.code = code
        self.reason = reason
        self.events: "list[tuple[int, object]]" = []


class HandshakeError(CnoError):
    """A WebSocket opening handshake failed. A server answers ``status`` (400, or 426
    for a version it does not speak, RFC 6455 4.2.2) with ``headers``; a client raises it
    when the server's answer is not a valid acceptance (``status`` is then the status it
    got, or None)."""

    def __init__(self, message: str, status: "int | None" = 400,
                 headers: "list[tuple[bytes, bytes]] | None" = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


class WebSocketClosed(ConnectionClosed):
    """The WebSocket is closed: ``code`` and ``reason`` are the peer's close frame's
    (RFC 6455 7.1.5), or ours when the peer sent none back, or 1006 and "" when the
    connection ended without a close frame."""

    def __init__(self, code: int = 1006, reason: str = "") -> None:
        super().__init__("the WebSocket is closed (code %d%s)"
                         % (code, ": " + reason if reason else ""))
        self.code = code
        self.reason = reason

    @property
    def ok(self) -> bool:
        """A normal closure (1000) or one going away (1001): iteration ends quietly."""
        return self.code in (1000, 1001)
