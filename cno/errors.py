"""The exceptions cno raises, rooted at :class:`CnoError`.

Protocol errors carry the HTTP/2 error code (RFC 9113 section 7) that a connection sends
when it meets them, so a layer above can answer with the right RST_STREAM or GOAWAY.
"""

__all__ = [
    "CnoError",
    "ProtocolError",
    "HPACKError",
    "HPACKDecodingError",
    "InvalidTableIndex",
    "InvalidTableSizeError",
    "OversizedHeaderListError",
]


class CnoError(Exception):
    """Base class of every error cno raises."""


class ProtocolError(CnoError, ValueError):
    """The peer broke the protocol. ``error_code`` is the HTTP/2 error code to send."""

    error_code = 0x1  # PROTOCOL_ERROR


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
