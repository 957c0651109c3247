"""cno.h2.utilities: the header helpers of h2's ``h2.utilities`` (h2 4.4.1), same names and
behaviour: header validation as h2 applies it (RFC 9113 8.2 and 8.3, plus h2's own rules
on ``Host``/``:authority``), outbound and inbound normalization, UTF-8 encoding of
header lists, and the small helpers h2's connection uses.

The checks raise :class:`cno.h2.exceptions.ProtocolError` in the order h2 raises them.
Unlike h2's generator pipelines, ``validate_headers`` and ``validate_outbound_headers``
check the whole list when called and return a list (h2 checks lazily, as its result is
consumed); the normalization helpers return lists too.

Header tuples: h2 works with the ``hpack`` package's ``HeaderTuple`` and
``NeverIndexedHeaderTuple``; these helpers keep the class of a header they rebuild and
make never-indexed headers with ``hpack``'s class when that package is installed
(cno.hpack's otherwise). Both are honoured by cno's encoder.
"""
from __future__ import annotations

import collections
import re
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional

from cno._core import field_is_valid
from cno._hpack import find_field as _find_field

from .exceptions import FlowControlError, ProtocolError

try:   # h2's header classes are hpack's: hand out those when they exist
    from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple
except ImportError:   # pragma: no cover (hpack is installed wherever h2's tests run)
    from cno.hpack import HeaderTuple, NeverIndexedHeaderTuple  # type: ignore[assignment]

if TYPE_CHECKING:   # pragma: no cover
    from collections.abc import Iterable

Header = Any   # a (name, value) tuple or header tuple; bytes once utf8_encode_headers ran

__all__ = [
    "CONNECTION_HEADERS", "HeaderTuple", "HeaderValidationFlags", "INFORMATIONAL_START",
    "NeverIndexedHeaderTuple", "SIGIL", "SizeLimitDict", "authority_from_headers",
    "extract_method_header", "guard_increment_window", "h2_message",
    "is_informational_response",
    "normalize_inbound_headers", "normalize_outbound_headers", "utf8_encode_headers",
    "validate_headers", "validate_outbound_headers", "validate_request_authority",
]

SIGIL = ord(b":")               # the first byte of a pseudo-header field's name
INFORMATIONAL_START = ord(b"1")  # the first digit of a 1xx :status

#: Connection-specific fields (RFC 9113 8.2.2): rejected when received, dropped when sent.
CONNECTION_HEADERS = frozenset(
    [b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding", b"upgrade"])

_PSEUDO_HEADERS = frozenset(
    [b":method", b":scheme", b":authority", b":path", b":status", b":protocol"])
_REQUEST_PSEUDO = frozenset([b":method", b":scheme", b":authority", b":path", b":protocol"])
_RESPONSE_PSEUDO = frozenset([b":status"])
# Credentials open to dictionary attacks through the compression context: h2 (after
# Firefox and nghttp2) sends them never indexed, and cookies shorter than 20 bytes too.
_SECURE_HEADERS = frozenset([b"authorization", b"proxy-authorization"])
_SHORT_COOKIE = 20


class HeaderValidationFlags(NamedTuple):
    """What kind of header block is being checked: h2 picks the rules by these."""

    is_client: bool
    is_trailer: bool
    is_response_header: bool
    is_push_promise: bool


# ---------------------------------------------------------------------------------------
# Small helpers of h2.utilities

def extract_method_header(headers: Iterable[Header]) -> Optional[bytes]:
    """The value of the first ``:method`` field (bytes; a str one UTF-8 encoded), or None."""
    for name, value in headers:
        if isinstance(value, bytes) and name == b":method":
            return value
        if isinstance(value, str) and name == ":method":
            return value.encode("utf-8")
    return None


def is_informational_response(headers: Iterable[Header]) -> bool:
    """Whether a block of bytes headers is a 1xx response: its ``:status`` (looked for
    among the pseudo-header fields at the front only) starts with 1."""
    for name, value in headers:
        if not name.startswith(b":"):
            return False
        if name == b":status":
            return bool(value.startswith(b"1"))
    return False


def guard_increment_window(current: int, increment: int) -> int:
    """``current + increment``, or FlowControlError if a window would pass 2^31-1
    (RFC 9113 6.9.1)."""
    new = current + increment
    if new > 2**31 - 1:
        raise FlowControlError("a flow-control window would exceed 2^31-1 (RFC 9113 6.9.1)")
    return new


def authority_from_headers(headers: Iterable[Header]) -> Optional[bytes]:
    """The value of the ``:authority`` field of a bytes header list, or None."""
    for name, value in headers:
        if name == b":authority":
            return value  # type: ignore[no-any-return]
    return None


class SizeLimitDict(collections.OrderedDict):  # type: ignore[type-arg]
    """An OrderedDict that keeps at most ``size_limit`` items (None: no limit), dropping
    the oldest ones first (h2 keeps its closed-stream records in one)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._size_limit: Optional[int] = kwargs.pop("size_limit", None)
        super().__init__(*args, **kwargs)
        self._check_size_limit()

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._check_size_limit()

    def _check_size_limit(self) -> None:
        if self._size_limit is not None:
            while len(self) > self._size_limit:
                self.popitem(last=False)


# ---------------------------------------------------------------------------------------
# Encoding and normalization

def _same_kind(header: Header, name: Any, value: Any) -> Header:
    """(name, value) as a header of the kind `header` is: a header tuple class is kept
    (its `indexable` mark with it), anything else becomes a plain tuple."""
    if type(header) is not tuple and hasattr(header, "indexable"):
        return header.__class__(name, value)
    return (name, value)


def _utf8(v: Any) -> bytes:
    return v if isinstance(v, bytes) else v.encode("utf-8")


def utf8_encode_headers(headers: Iterable[Header]) -> list[Header]:
    """The header list with names and values as bytes (str ones UTF-8 encoded), header
    tuple classes kept."""
    return [_same_kind(h, _utf8(h[0]), _utf8(h[1])) for h in headers]


def _secure(header: Header) -> Header:
    """h2's never-indexed rule for an outbound header (see _SECURE_HEADERS)."""
    name = header[0]
    if name in _SECURE_HEADERS or (name == b"cookie" and len(header[1]) < _SHORT_COOKIE):
        return NeverIndexedHeaderTuple(name, header[1])
    return header


def normalize_outbound_headers(headers: Iterable[Header],
                               hdr_validation_flags: Optional[HeaderValidationFlags],
                               should_split_outbound_cookies: bool = False) -> list[Header]:
    """A bytes header list made ready to send, as h2 does: names lower-cased; with
    ``should_split_outbound_cookies`` each ``cookie`` split at ``"; "`` into one field per
    crumb (RFC 9113 8.2.3); names and values stripped of surrounding whitespace;
    connection-specific fields dropped; ``authorization``, ``proxy-authorization`` and
    cookies under 20 bytes made never-indexed. Header tuple classes are kept."""
    out: list[Header] = []
    for header in headers:
        name = header[0].lower()
        if should_split_outbound_cookies and name == b"cookie":
            parts = [_same_kind(header, name, v) for v in header[1].split(b"; ")]
        else:
            parts = [_same_kind(header, name, header[1])]
        for part in parts:
            name = part[0].strip()
            if name in CONNECTION_HEADERS:
                continue
            out.append(_secure(_same_kind(part, name, part[1].strip())))
    return out


def normalize_inbound_headers(headers: Iterable[Header],
                              hdr_validation_flags: Optional[HeaderValidationFlags],
                              ) -> list[Header]:
    """A received bytes header list as h2 hands it out: ``cookie`` fields joined with
    ``"; "`` into one never-indexed field at the end (RFC 9113 8.2.3), the rest in order."""
    if not isinstance(headers, list):
        headers = list(headers)
    first = _find_field(headers, b"cookie")
    if first < 0:
        return headers[:]
    if _find_field(headers, b"cookie", first + 1) < 0:   # one cookie, the usual case
        out = headers[:first]
        out += headers[first + 1:]
        out.append(NeverIndexedHeaderTuple(b"cookie", headers[first][1]))
        return out
    out = []
    cookies: list[bytes] = []
    for header in headers:
        if header[0] == b"cookie":
            cookies.append(header[1])
        else:
            out.append(header)
    if cookies:
        out.append(NeverIndexedHeaderTuple(b"cookie", b"; ".join(cookies)))
    return out


# ---------------------------------------------------------------------------------------
# Validation

def _field_problem(name: bytes, value: bytes) -> Optional[str]:
    """What RFC 9113 8.2.1 finds wrong with a field, as h2 words it, or None. The
    engine's check answers for the usual, valid field; the details only when it fails."""
    if field_is_valid(name, value):
        return None
    for c in name:
        if 0x41 <= c <= 0x5A:
            return "header name %r has an upper-case character" % (name,)
        if c <= 0x20 or c >= 0x7F:
            return "header name %r has the illegal character %r" % (name, chr(c))
    if name.find(b":", 1) != -1:
        return "header name %r has a ':' past its first character" % (name,)
    if value:
        for c in value:
            if c == 0 or c == 0x0A or c == 0x0D:
                return "header value %r has the illegal character %r" % (value, chr(c))
        if value[0] in (0x20, 0x09) or value[-1] in (0x20, 0x09):
            return "header value %r starts or ends with whitespace" % (value,)
    if not name:
        return "Received header name with zero length."
    return None


class _BlockCheck:
    """The checks that need the whole block (8.3's pseudo-header fields, h2's Host and
    :authority rules), fed one header at a time in order, then finished."""

    __slots__ = ("flags", "pseudo", "regular_seen", "method", "authority", "host",
                 "request")

    def __init__(self, flags: HeaderValidationFlags) -> None:
        self.flags = flags
        self.pseudo: set[bytes] = set()
        self.regular_seen = False
        self.method: Optional[bytes] = None
        self.authority: Optional[bytes] = None
        self.host: Optional[bytes] = None
        # Host/:authority and :path are checked in request heads only.
        self.request = not (flags.is_response_header or flags.is_trailer)

    def feed(self, name: bytes, value: bytes) -> None:
        if name[:1] == b":":
            if name in self.pseudo:
                raise ProtocolError("pseudo-header field %r appears twice" % (name,))
            self.pseudo.add(name)
            if self.regular_seen:
                raise ProtocolError("pseudo-header field %r after a regular field" % (name,))
            if name not in _PSEUDO_HEADERS:
                raise ProtocolError("unknown pseudo-header field %r" % (name,))
            if name == b":method":
                self.method = value
        else:
            self.regular_seen = True
        if self.request:
            if name == b":authority":
                self.authority = value
            elif name == b"host":
                if self.host is not None:
                    raise ProtocolError("several Host fields in a request")
                self.host = value
            if name == b":path" and not value:
                raise ProtocolError("empty :path in a request")

    def finish(self) -> None:
        flags, pseudo = self.flags, self.pseudo
        if flags.is_trailer and pseudo:   # RFC 9113 8.1
            raise ProtocolError("pseudo-header in trailer: %r" % (sorted(pseudo),))
        if flags.is_response_header:   # 8.3.2
            self._require(b":status")
            if pseudo & _REQUEST_PSEUDO:
                raise ProtocolError("request pseudo-header fields %r in a response"
                                    % (sorted(pseudo & _REQUEST_PSEUDO),))
        elif not flags.is_trailer:   # 8.3.1; CONNECT: 8.5, RFC 8441 4
            self._require(b":method")
            connect = self.method == b"CONNECT"
            if connect and b":protocol" not in pseudo:
                if b":scheme" in pseudo or b":path" in pseudo:
                    raise ProtocolError("CONNECT must not carry :scheme or :path")
            else:
                self._require(b":scheme")
                self._require(b":path")
            if pseudo & _RESPONSE_PSEUDO:
                raise ProtocolError("response pseudo-header fields %r in a request"
                                    % (sorted(pseudo & _RESPONSE_PSEUDO),))
            if not connect and b":protocol" in pseudo:
                raise ProtocolError(":protocol is only allowed with CONNECT")
        if self.request:
            _check_authority(self.authority, self.host)

    def _require(self, name: bytes) -> None:
        if name not in self.pseudo:
            raise ProtocolError("header block without the mandatory %r field" % (name,))


def _check_authority(authority: Optional[bytes], host: Optional[bytes]) -> None:
    """h2's rule for a request head: an ``:authority`` or a ``Host``, equal if both."""
    if authority is None and host is None:
        raise ProtocolError("request without :authority or Host")
    if authority is not None and host is not None and authority != host:
        raise ProtocolError(":authority %r and Host %r differ" % (authority, host))


def validate_request_authority(headers: Iterable[Header]) -> None:
    """h2's ``Host`` rules alone, for a received request head the engine has checked
    otherwise (cno.raw's validate_inbound_headers): ProtocolError for several ``Host``
    fields, for neither ``:authority`` nor ``Host``, or for the two differing (RFC 9113
    8.3.1 makes the last a SHOULD; the others are h2's)."""
    if not isinstance(headers, list):
        headers = list(headers)
    at = _find_field(headers, b":authority")   # (the engine let one through at most)
    authority: Optional[bytes] = headers[at][1] if at >= 0 else None
    at = _find_field(headers, b"host")
    host: Optional[bytes] = None
    if at >= 0:
        if _find_field(headers, b"host", at + 1) >= 0:
            raise ProtocolError("several Host fields in a request")
        host = headers[at][1]
    _check_authority(authority, host)


_ENGINE_REASONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    # (the engine's reason for a malformed head, as cno.raw words it; h2's message)
    (re.compile(r"\): empty field name$"), lambda m: "Received header name with zero length."),
    (re.compile(r"\): content-length (.*) is not a number$"),
     lambda m: "Invalid content-length header: %s" % m.group(1)),
    (re.compile(r"\): conflicting content-length values (\d+) and (\d+)$"),
     lambda m: "Conflicting content-length headers: %s and %s" % (m.group(1), m.group(2))),
]


def h2_message(engine_message: str) -> str:
    """The message h2 gives for a malformed head the engine reported (its
    malformed_is_connection_error error: "malformed message on stream N (...): reason"),
    where h2's wording differs and is relied on; otherwise the engine's message."""
    for pattern, make in _ENGINE_REASONS:
        m = pattern.search(engine_message)
        if m:
            return make(m)
    return engine_message


def _check_te_and_connection(name: bytes, value: bytes) -> None:
    """RFC 9113 8.2.2: no connection-specific field, and ``te`` only as ``trailers``
    (h2 compares case-insensitively)."""
    if name == b"te" and value.lower() != b"trailers":
        raise ProtocolError("te may only be 'trailers', not %r" % (value,))
    if name in CONNECTION_HEADERS:
        raise ProtocolError("connection-specific field %r (RFC 9113 8.2.2)" % (name,))


def validate_headers(headers: Iterable[Header],
                     hdr_validation_flags: HeaderValidationFlags) -> list[Header]:
    """Check a received bytes header list as h2 does and return it (a list), or raise
    ProtocolError for the first problem: field characters (8.2.1), an empty name, ``te``
    other than trailers and connection-specific fields (8.2.2), pseudo-header fields that
    are duplicated, unknown, after a regular field, missing or not allowed in this kind
    of block (8.3, 8.5, RFC 8441), and in request heads several ``Host`` fields, neither
    ``:authority`` nor ``Host``, the two differing, or an empty ``:path``."""
    headers = list(headers)
    block = _BlockCheck(hdr_validation_flags)
    for header in headers:
        name, value = header[0], header[1]
        problem = _field_problem(name, value)
        if problem is not None:
            raise ProtocolError(problem)
        _check_te_and_connection(name, value)
        block.feed(name, value)
    block.finish()
    return headers


def validate_outbound_headers(headers: Iterable[Header],
                              hdr_validation_flags: HeaderValidationFlags) -> list[Header]:
    """Check a bytes header list about to be sent as h2 does (no character checks: the
    caller's fields go out as given) and return it (a list), or raise ProtocolError:
    ``te`` and connection-specific fields, the pseudo-header and Host/:authority/:path
    rules of :func:`validate_headers`."""
    headers = list(headers)
    block = _BlockCheck(hdr_validation_flags)
    for header in headers:
        name, value = header[0], header[1]
        _check_te_and_connection(name, value)
        block.feed(name, value)
    block.finish()
    return headers
