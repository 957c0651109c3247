"""The WebSocket opening handshake as pure functions: both sides, HTTP/1.1 Upgrade
(RFC 6455 section 4) and HTTP/2 extended CONNECT (RFC 8441 sections 4-5), with the
permessage-deflate negotiation (RFC 7692 sections 5 and 7). No I/O: header lists in,
header lists (or a :class:`cno.errors.HandshakeError`) out.

Header lists are ``list[tuple[bytes, bytes]]`` with lower-case names. ``connection`` is
neither read nor written: cno's HTTP/1.1 engine consumes it on input and writes
``connection: upgrade`` itself when a message carries ``upgrade`` (or is a 101).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Iterable, Sequence

from ..errors import HandshakeError, UsageError

__all__ = [
    "GUID",
    "accept_key",
    "new_key",
    "DeflateParams",
    "Offer",
    "read_request",
    "negotiate_deflate",
    "accept_headers",
    "request_headers",
    "check_response",
]

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Headers = list[tuple[bytes, bytes]]
AnyHeaders = Iterable[tuple[bytes | str, bytes | str]]
ExtensionParams = list[tuple[str, str | None]]

# RFC 7230 3.2.6: token = 1*tchar.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# RFC 7692 7.1.2.1/7.1.2.2: 1*DIGIT with a decimal value of 8 to 15 (leading zeros are
# still 1*DIGIT; the length bound keeps int() away from absurd inputs).
_BITS = re.compile(r"0*([0-9]{1,2})")
_OWS = " \t"


def accept_key(key: bytes) -> bytes:
    """``Sec-WebSocket-Accept`` for ``key``: base64(SHA-1(key + GUID)), RFC 6455 4.2.2
    step 5.4."""
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def new_key() -> bytes:
    """A fresh ``Sec-WebSocket-Key``: 16 random bytes, base64-encoded (RFC 6455 4.1:
    "randomly selected", so os.urandom rather than a seeded generator)."""
    return base64.b64encode(os.urandom(16))


# ----------------------------------------------------------------------------------------
# Field helpers


def _b(v: bytes | str) -> bytes:
    return v.encode("latin-1") if isinstance(v, str) else bytes(v)


def _normalise(headers: AnyHeaders) -> Headers:
    return [(_b(n).lower(), _b(v)) for n, v in headers]


def _values(headers: Headers, name: bytes) -> list[bytes]:
    return [v for n, v in headers if n == name]


def _split(value: str, sep: str) -> list[str]:
    """``value`` split at ``sep`` outside quoted strings (RFC 7230 3.2.6: a quoted
    string may hold commas and semicolons, and a backslash escapes one character)."""
    out: list[str] = []
    start = 0
    quoted = escaped = False
    for i, ch in enumerate(value):
        if escaped:
            escaped = False
        elif quoted:
            escaped = ch == "\\"
            quoted = ch != '"'
        elif ch == '"':
            quoted = True
        elif ch == sep:
            out.append(value[start:i])
            start = i + 1
    out.append(value[start:])
    return out


def _split_list(value: str) -> list[str]:
    """A comma list (RFC 7230 7), OWS trimmed, empty elements dropped ("a recipient
    MUST accept and ignore ... empty list elements")."""
    return [e.strip(_OWS) for e in _split(value, ",") if e.strip(_OWS)]


def _list(headers: Headers, name: bytes) -> list[str]:
    """Every element of every ``name`` field: repeated fields are one comma list
    (RFC 7230 3.2.2)."""
    return [e for v in _values(headers, name) for e in _split_list(v.decode("latin-1"))]


def _is_token(s: str) -> bool:
    return _TOKEN.fullmatch(s) is not None


def _unquote(s: str) -> str | None:
    """A quoted-string's content (RFC 7230 3.2.6), or None if malformed."""
    if len(s) < 2 or s[0] != '"' or s[-1] != '"':
        return None
    out: list[str] = []
    it = iter(s[1:-1])
    for ch in it:
        if ch == "\\":
            nxt = next(it, None)
            if nxt is None:
                return None
            out.append(nxt)
        elif ch == '"':
            return None
        else:
            out.append(ch)
    return "".join(out)


def _parse_extension(element: str) -> tuple[str, ExtensionParams]:
    """One element of Sec-WebSocket-Extensions (RFC 6455 9.1):
    extension = extension-token *( ";" extension-param );
    extension-param = token [ "=" (token | quoted-string) ], where a quoted value "after
    quoted-string unescaping MUST conform to the 'token' ABNF". Raises ValueError."""
    parts = _split(element, ";")
    name = parts[0].strip(_OWS)
    if not _is_token(name):
        raise ValueError("bad extension name %r" % name)
    params: ExtensionParams = []
    for part in parts[1:]:
        key, eq, raw = part.partition("=")
        key = key.strip(_OWS)
        if not _is_token(key):
            raise ValueError("bad parameter name %r in extension %s" % (key, name))
        if not eq:
            params.append((key, None))
            continue
        raw = raw.strip(_OWS)
        value = _unquote(raw) if raw.startswith('"') else raw
        if value is None or not _is_token(value):
            raise ValueError("bad value %r for %s in extension %s" % (raw, key, name))
        params.append((key, value))
    return name, params


def _extensions(headers: Headers) -> list[tuple[str, ExtensionParams]]:
    return [_parse_extension(e) for e in _list(headers, b"sec-websocket-extensions")]


def _bits(value: str | None) -> int | None:
    """A window-bits value (RFC 7692 7.1.2: 8 to 15), or None if invalid."""
    m = _BITS.fullmatch(value) if value is not None else None
    if m is None:
        return None
    n = int(m.group(1))
    return n if 8 <= n <= 15 else None


# ----------------------------------------------------------------------------------------
# permessage-deflate parameters


@dataclasses.dataclass(frozen=True)
class DeflateParams:
    """The permessage-deflate parameters both sides agreed on (RFC 7692 7.1)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    # The offer carried server_max_window_bits, so the answer must repeat it even at 15
    # (7.1.2.1: a server "accepts an extension negotiation offer with this parameter by
    # including" it). Not part of the agreement itself, hence kept out of eq and repr.
    _answer_server_bits: bool = dataclasses.field(default=False, repr=False, compare=False,
                                                  kw_only=True)

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(self, name)
            if type(bits) is not int or not 8 <= bits <= 15:
                raise UsageError("%s must be 8 to 15, not %r" % (name, bits))

    def codec_options(self) -> dict[str, object]:
        """The keyword arguments of ``cno._ws.Codec`` for these parameters."""
        return {
            "deflate": True,
            "server_no_context_takeover": self.server_no_context_takeover,
            "client_no_context_takeover": self.client_no_context_takeover,
            "server_max_window_bits": self.server_max_window_bits,
            "client_max_window_bits": self.client_max_window_bits,
        }

    def header(self) -> bytes:
        """The ``sec-websocket-extensions`` value a server answers with. A window of 15
        is the default and left out, except server_max_window_bits when the offer asked
        for it (7.1.2.1)."""
        parts = [b"permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append(b"server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append(b"client_no_context_takeover")
        if self.server_max_window_bits < 15 or self._answer_server_bits:
            parts.append(b"server_max_window_bits=%d" % self.server_max_window_bits)
        if self.client_max_window_bits < 15:
            parts.append(b"client_max_window_bits=%d" % self.client_max_window_bits)
        return b"; ".join(parts)


_DEFLATE = "permessage-deflate"
_DEFLATE_PARAMS = frozenset({"server_no_context_takeover", "client_no_context_takeover",
                             "server_max_window_bits", "client_max_window_bits"})


def _deflate_params(params: ExtensionParams) -> dict[str, str | None] | None:
    """The parameters of one permessage-deflate offer or answer by name, or None when
    one is unknown or repeated (RFC 7692 7: "MUST decline" such an offer, and a client
    "MUST _Fail the WebSocket Connection_" on such a response) or has a value where
    none is allowed (7.1.1.1, 7.1.1.2)."""
    seen: dict[str, str | None] = {}
    for key, value in params:
        key = key.lower()
        if key not in _DEFLATE_PARAMS or key in seen:
            return None
        if key.endswith("_no_context_takeover") and value is not None:
            return None
        seen[key] = value
    return seen


# ----------------------------------------------------------------------------------------
# Server side


@dataclasses.dataclass
class Offer:
    """A client's opening handshake as a server reads it."""

    http2: bool
    key: bytes | None
    subprotocols: list[str]
    extensions: list[tuple[str, list[tuple[str, str | None]]]]


def read_request(method: bytes | str, headers: AnyHeaders, *, http2: bool) -> Offer:
    """Check a WebSocket handshake request (RFC 6455 4.2.1; RFC 8441 4-5) and return
    what it offers. Raises :class:`HandshakeError` with the status to answer: 426 and
    ``sec-websocket-version: 13`` for a version other than 13, else 400."""
    method = _b(method)
    h = _normalise(headers)
    key: bytes | None = None
    if http2:
        # RFC 8441 4: extended CONNECT is ":method" CONNECT with a ":protocol"; 5: its
        # value "MUST" be "websocket" for WebSockets.
        if method != b"CONNECT":
            raise HandshakeError("a WebSocket over HTTP/2 needs CONNECT, not %s"
                                 % method.decode("latin-1"))
        protocol = _values(h, b":protocol")
        if len(protocol) != 1 or protocol[0].strip().lower() != b"websocket":
            raise HandshakeError("a WebSocket CONNECT needs :protocol websocket")
        # RFC 8441 5: Connection and Upgrade "MUST NOT be included in the CONNECT
        # request"; Sec-WebSocket-Key is not processed (":protocol" supersedes it).
        if _values(h, b"upgrade"):
            raise HandshakeError("upgrade is not allowed in an HTTP/2 request")
    else:
        # RFC 6455 4.2.1 item 1: "An HTTP/1.1 or higher GET request".
        if method != b"GET":
            raise HandshakeError("a WebSocket handshake needs GET, not %s"
                                 % method.decode("latin-1"))
        # 4.2.1 item 3: an Upgrade field containing "websocket", "treated as an ASCII
        # case-insensitive value".
        if "websocket" not in (e.lower() for e in _list(h, b"upgrade")):
            raise HandshakeError("no upgrade: websocket")
        # 4.2.1 item 5: a Sec-WebSocket-Key "that, when decoded, is 16 bytes in length";
        # 11.3.1: it "MUST NOT appear more than once in an HTTP request".
        keys = _values(h, b"sec-websocket-key")
        if len(keys) != 1:
            raise HandshakeError("%s sec-websocket-key fields, not one" % len(keys))
        key = keys[0].strip(b" \t")
        try:
            raw = base64.b64decode(key, validate=True)
        except binascii.Error:
            raise HandshakeError("sec-websocket-key is not base64") from None
        if len(raw) != 16:
            raise HandshakeError("sec-websocket-key decodes to %d bytes, not 16" % len(raw))
    # RFC 6455 4.2.1 item 6 and 4.4: version 13, else 426 with the versions we speak
    # (4.2.2: "a |Sec-WebSocket-Version| header field indicating the version(s) the
    # server is capable of understanding"). RFC 8441 5: Sec-WebSocket-Version is used
    # "as defined in [RFC6455]", so HTTP/2 requires it too.
    versions = _list(h, b"sec-websocket-version")
    if versions != ["13"]:
        raise HandshakeError("sec-websocket-version %s, not 13" % (", ".join(versions)
                                                                   or "missing"),
                             status=426, headers=[(b"sec-websocket-version", b"13")])
    # 4.2.1 item 8 and 4.1: Sec-WebSocket-Protocol is a list of tokens (RFC 7230).
    subprotocols = _list(h, b"sec-websocket-protocol")
    for p in subprotocols:
        if not _is_token(p):
            raise HandshakeError("sec-websocket-protocol %r is not a token" % p)
    try:
        extensions = _extensions(h)
    except ValueError as e:
        raise HandshakeError("sec-websocket-extensions: %s" % e) from None
    return Offer(http2=http2, key=key, subprotocols=subprotocols, extensions=extensions)


def negotiate_deflate(offer: Offer, *, enabled: bool = True, server_max_window_bits: int = 15,
                      server_no_context_takeover: bool = False) -> DeflateParams | None:
    """Accept the first acceptable permessage-deflate offer (RFC 7692 5: the server
    "accepts" one element of the list and answers with it), or None."""
    if not enabled:
        return None
    if not 8 <= server_max_window_bits <= 15:
        raise UsageError("server_max_window_bits must be 8 to 15")
    for name, params in offer.extensions:
        if name.lower() != _DEFLATE:
            continue   # other extensions are not ours to answer (RFC 6455 9.1)
        p = _deflate_params(params)
        if p is None:
            continue   # 7: decline an offer with unknown or repeated parameters
        server_bits = server_max_window_bits
        if "server_max_window_bits" in p:
            # 7.1.2.1: the offer's value is a limit; a missing or out-of-range one
            # makes the offer invalid, so it is declined.
            asked = _bits(p["server_max_window_bits"])
            if asked is None:
                continue
            server_bits = min(asked, server_bits)
        client_bits = 15
        if "client_max_window_bits" in p:
            # 7.1.2.2: no value means the client supports the parameter; a value is a
            # hint the server "may ... use ... to avoid allocating an unnecessarily big
            # LZ77 sliding window", which it does. A response value must not exceed it.
            hint = p["client_max_window_bits"]
            if hint is not None:
                bits = _bits(hint)
                if bits is None:
                    continue
                client_bits = bits
        return DeflateParams(
            # 7.1.1.1: accept the client's request, or ask for it ourselves.
            server_no_context_takeover=server_no_context_takeover
            or "server_no_context_takeover" in p,
            # 7.1.1.2: echoed when asked (a server may also send it unasked).
            client_no_context_takeover="client_no_context_takeover" in p,
            server_max_window_bits=server_bits,
            client_max_window_bits=client_bits,
            _answer_server_bits="server_max_window_bits" in p,
        )
    return None


# Names accept_headers writes itself (and connection, which the engine writes); an
# app's extra header of one of these would contradict the handshake. ASGI also says an
# app must not send sec-websocket-protocol in its headers (use "subprotocol").
_SERVER_OWNED = frozenset({b"sec-websocket-accept", b"upgrade", b"sec-websocket-extensions",
                           b"connection", b"sec-websocket-protocol"})


def _with_extra(out: Headers, headers: AnyHeaders, owned: "frozenset[bytes]") -> Headers:
    """The caller's extra fields after the handshake's own; a name the handshake owns is
    a UsageError."""
    for name, value in _normalise(headers):
        if name in owned:
            raise UsageError("%s is written by the handshake, not by the caller"
                             % name.decode("latin-1"))
        out.append((name, value))
    return out


def accept_headers(offer: Offer, *, subprotocol: str | None = None,
                   deflate: DeflateParams | None = None,
                   headers: AnyHeaders = ()) -> Headers:
    """The headers of the response that accepts ``offer``: a 101 over HTTP/1.1 (RFC
    6455 4.2.2 step 5), a 200 over HTTP/2 (RFC 8441 5). Raises :class:`UsageError` for
    a subprotocol the client did not offer or an extra header the handshake owns."""
    out: Headers = []
    if not offer.http2:
        if offer.key is None:
            raise UsageError("an HTTP/1.1 offer needs its sec-websocket-key")
        # 4.2.2 step 5.2 and 5.4 (RFC 8441 5: neither over HTTP/2, the 200 accepts).
        out.append((b"upgrade", b"websocket"))
        out.append((b"sec-websocket-accept", accept_key(offer.key)))
    if subprotocol is not None:
        # 4.2.2 step 4: the selection "MUST be derived from the values that the client
        # sent", and 5.5: at most one.
        if subprotocol not in offer.subprotocols:
            raise UsageError("subprotocol %r was not offered (offered: %s)"
                             % (subprotocol, ", ".join(offer.subprotocols) or "none"))
        out.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
    if deflate is not None:
        out.append((b"sec-websocket-extensions", deflate.header()))
    return _with_extra(out, headers, _SERVER_OWNED)


# ----------------------------------------------------------------------------------------
# Client side

_CLIENT_OWNED = frozenset({b"upgrade", b"connection", b"sec-websocket-key",
                           b"sec-websocket-version", b"sec-websocket-protocol",
                           b"sec-websocket-extensions"})
_OFFER = b"permessage-deflate; client_max_window_bits"


def request_headers(*, http2: bool, key: bytes | None = None, subprotocols: Sequence[str] = (),
                    deflate: bool = True, headers: AnyHeaders = ()) -> Headers:
    """The WebSocket headers of a client's handshake request (RFC 6455 4.1; RFC 8441
    5), then ``headers``. Over HTTP/2 the caller writes the pseudo-headers (``:method``
    CONNECT, ``:protocol`` websocket, ``:scheme``, ``:path``, ``:authority``) and
    ``key`` is not used."""
    out: Headers = []
    if not http2:
        if key is None:
            raise UsageError("an HTTP/1.1 WebSocket request needs a key (new_key())")
        try:
            valid = len(base64.b64decode(key, validate=True)) == 16
        except binascii.Error:
            valid = False
        if not valid:
            raise UsageError("the key must be 16 bytes, base64-encoded (new_key())")
        # 4.1 items 5 and 7 (Connection, item 6, is the engine's).
        out.append((b"upgrade", b"websocket"))
        out.append((b"sec-websocket-key", bytes(key)))
    # 4.1 item 9; RFC 8441 5 keeps it.
    out.append((b"sec-websocket-version", b"13"))
    if subprotocols:
        # 4.1 item 10: "one or more comma-separated subprotocol" tokens.
        for p in subprotocols:
            if not isinstance(p, str) or not _is_token(p):
                raise UsageError("subprotocol %r is not a token" % (p,))
        out.append((b"sec-websocket-protocol", ", ".join(subprotocols).encode("latin-1")))
    if deflate:
        # RFC 7692 7.1.2.2: offering client_max_window_bits lets the server limit our
        # window; we compress with whatever it answers.
        out.append((b"sec-websocket-extensions", _OFFER))
    return _with_extra(out, headers, _CLIENT_OWNED)


def check_response(code: int, headers: AnyHeaders, *, http2: bool, key: bytes | None,
                   subprotocols: Sequence[str], deflate: bool
                   ) -> tuple[str | None, DeflateParams | None]:
    """Check the server's answer to our request (RFC 6455 4.1, end; RFC 8441 5) and
    return the subprotocol and the permessage-deflate parameters it agreed to. Raises
    :class:`HandshakeError` (``status`` = ``code``) when it is not a valid acceptance."""
    h = _normalise(headers)

    def fail(message: str) -> HandshakeError:
        return HandshakeError(message, status=code)

    if http2:
        # RFC 8441 5 and RFC 9110 9.3.6: "Any 2xx (Successful) response indicates that
        # the sender (and all inbound proxies) will switch to tunnel mode".
        if not 200 <= code <= 299:
            raise fail("the server answered %d, not 2xx" % code)
    else:
        if key is None:
            raise UsageError("checking an HTTP/1.1 answer needs the key we sent")
        # 4.1: "If the status code received from the server is not 101, the client
        # handles the response per HTTP [RFC2616] procedures."
        if code != 101:
            raise fail("the server answered %d, not 101" % code)
        # 4.1 item 2: the client MUST fail if |Upgrade| is missing or "contains a value
        # that is not an ASCII case-insensitive match for the value "websocket"".
        if [e.lower() for e in _list(h, b"upgrade")] != ["websocket"]:
            raise fail("no upgrade: websocket in the 101")
        # 4.1 item 4: |Sec-WebSocket-Accept| must be the key's accept value.
        accepts = _values(h, b"sec-websocket-accept")
        if len(accepts) != 1 or accepts[0].strip(b" \t") != accept_key(bytes(key)):
            raise fail("wrong or missing sec-websocket-accept")
    # 4.1 item 6: a subprotocol "that was not present in the client's handshake" fails.
    chosen = _list(h, b"sec-websocket-protocol")
    protocol: str | None = None
    if chosen:
        if len(chosen) != 1 or chosen[0] not in subprotocols:
            raise fail("sec-websocket-protocol %s was not offered" % ", ".join(chosen))
        protocol = chosen[0]
    # 4.1 item 5: an extension "not present in the client's handshake" fails.
    try:
        extensions = _extensions(h)
    except ValueError as e:
        raise fail("sec-websocket-extensions: %s" % e) from None
    if not extensions:
        return protocol, None
    if not deflate or len(extensions) != 1 or extensions[0][0].lower() != _DEFLATE:
        raise fail("extensions that were not offered: %s"
                   % ", ".join(name for name, _ in extensions))
    p = _deflate_params(extensions[0][1])
    if p is None:
        raise fail("unknown, repeated or malformed permessage-deflate parameters")
    # 7.1.2.1: a server may send server_max_window_bits unasked; 8 to 15.
    # 7.1.2.2: client_max_window_bits only if offered (ours always is, with deflate)
    # and, in a response, with a value.
    server_bits = client_bits = 15
    for name in ("server_max_window_bits", "client_max_window_bits"):
        if name in p:
            bits = _bits(p[name])
            if bits is None:
                raise fail("permessage-deflate %s=%s is not 8 to 15" % (name, p[name]))
            if name == "server_max_window_bits":
                server_bits = bits
            else:
                client_bits = bits
    return protocol, DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in p,
        client_no_context_takeover="client_no_context_takeover" in p,
        server_max_window_bits=server_bits,
        client_max_window_bits=client_bits,
    )
