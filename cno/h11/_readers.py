"""h11's readers (``h11._readers``): each parses one kind of input from a
:class:`~cno.h11._receivebuffer.ReceiveBuffer` with cno.h11's own reading code (heads,
trailers and chunk-size lines by cno's engine)."""
from typing import Iterable, Optional

from cno.h11._h11 import (
    ChunkedReader, ContentLengthReader, Http10Reader, decode_header_lines, expect_nothing,
    maybe_read_from_IDLE_client, maybe_read_from_SEND_RESPONSE_server,
)
from cno.h11._state import CLIENT, CLOSED, DONE, IDLE, MUST_CLOSE, SEND_BODY, SEND_RESPONSE, SERVER
from cno.h11._util import LocalProtocolError

__all__ = ["READERS"]


def _obsolete_line_fold(lines: Iterable[bytes]) -> Iterable[bytes]:
    """Lines with each obs-fold line (starting with SP or HTAB) joined to the one before
    it by one SP (RFC 9112 5.2)."""
    last: Optional[bytes] = None
    for line in lines:
        stripped = line.lstrip(b" \t")
        if len(stripped) != len(line):
            if last is None:
                raise LocalProtocolError("continuation line at start of headers")
            if not isinstance(last, bytearray):
                last = bytearray(last)
            last += b" "
            last += stripped
        else:
            if last is not None:
                yield last
            last = line
    if last is not None:
        yield last


def _decode_header_lines(lines):
    """(name, value) pairs of field lines (no line ends)."""
    return iter(decode_header_lines(lines))


READERS = {
    (CLIENT, IDLE): maybe_read_from_IDLE_client,
    (SERVER, IDLE): maybe_read_from_SEND_RESPONSE_server,
    (SERVER, SEND_RESPONSE): maybe_read_from_SEND_RESPONSE_server,
    (CLIENT, DONE): expect_nothing,
    (CLIENT, MUST_CLOSE): expect_nothing,
    (CLIENT, CLOSED): expect_nothing,
    (SERVER, DONE): expect_nothing,
    (SERVER, MUST_CLOSE): expect_nothing,
    (SERVER, CLOSED): expect_nothing,
    SEND_BODY: {
        "chunked": ChunkedReader,
        "content-length": ContentLengthReader,
        "http/1.0": Http10Reader,
    },
}
