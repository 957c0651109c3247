"""cno.websocket.handshake: the WebSocket opening handshake on both sides, over HTTP/1.1
(RFC 6455 section 4) and HTTP/2 (RFC 8441 sections 4-5), with permessage-deflate
negotiation (RFC 7692 sections 5 and 7); then the same against real peers (websockets and
wsproto as clients and as servers)."""
import base64

import h11
import pytest
import websockets.client
import websockets.server
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory, ServerPerMessageDeflateFactory,
)
from websockets.protocol import State
from websockets.uri import parse_uri
from wsproto import ConnectionType, WSConnection
from wsproto import events as wse
from wsproto.extensions import PerMessageDeflate

from cno.errors import HandshakeError, UsageError
from cno.websocket.handshake import (
    GUID, DeflateParams, Offer, accept_headers, accept_key, check_response, negotiate_deflate,
    new_key, read_request, request_headers,
)

# RFC 6455 1.3 / 4.2.2: the sample nonce and its accept value.
SAMPLE_KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
SAMPLE_ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def h1_request(*extra, key=SAMPLE_KEY, version=b"13", upgrade=b"websocket"):
    """An HTTP/1.1 handshake as cno's server delivers it (no connection field)."""
    h = [(b"host", b"server.example.com")]
    if upgrade is not None:
        h.append((b"upgrade", upgrade))
    if key is not None:
        h.append((b"sec-websocket-key", key))
    if version is not None:
        h.append((b"sec-websocket-version", version))
    return h + list(extra)


def h2_request(*extra, version=b"13", protocol=b"websocket"):
    h = [(b":method", b"CONNECT"), (b":scheme", b"https"), (b":path", b"/chat"),
         (b":authority", b"server.example.com")]
    if protocol is not None:
        h.insert(1, (b":protocol", protocol))
    if version is not None:
        h.append((b"sec-websocket-version", version))
    return h + list(extra)


def h1_offer(*extra):
    return read_request(b"GET", h1_request(*extra), http2=False)


def ext(value):
    return (b"sec-websocket-extensions", value)


def negotiate(*values, **kwargs):
    return negotiate_deflate(h1_offer(*(ext(v) for v in values)), **kwargs)


def rejected(method, headers, *, http2=False, status=400):
    with pytest.raises(HandshakeError) as info:
        read_request(method, headers, http2=http2)
    assert info.value.status == status
    return info.value


# ---------------------------------------------------------------------------------------
# RFC 6455 1.3, 4.1, 4.2.2 step 5.4: keys


def test_rfc6455_1_3_accept_key_example():
    assert accept_key(SAMPLE_KEY) == SAMPLE_ACCEPT
    assert GUID == b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_rfc6455_4_1_new_key_is_16_random_bytes():
    keys = {new_key() for _ in range(8)}
    assert len(keys) == 8
    for k in keys:
        assert len(base64.b64decode(k, validate=True)) == 16


# ---------------------------------------------------------------------------------------
# RFC 6455 4.2.1: reading an HTTP/1.1 handshake


def test_rfc6455_4_2_1_valid_request():
    offer = read_request(b"GET", h1_request(
        (b"origin", b"http://example.com"),
        (b"sec-websocket-protocol", b"chat, superchat")), http2=False)
    assert offer == Offer(http2=False, key=SAMPLE_KEY, subprotocols=["chat", "superchat"],
                          extensions=[])


def test_rfc6455_4_2_1_str_headers_and_method():
    h = [(n.decode(), v.decode()) for n, v in h1_request()]
    h = [(n.title(), v) for n, v in h]
    assert read_request("GET", h, http2=False).key == SAMPLE_KEY


def test_rfc6455_4_2_1_connection_not_read():
    # The engine consumes connection; its absence (or its value) is no concern here.
    assert h1_offer().key == SAMPLE_KEY
    assert h1_offer((b"connection", b"close")).key == SAMPLE_KEY


@pytest.mark.parametrize("method", [b"POST", b"get", b"CONNECT", b"HEAD"])
def test_rfc6455_4_2_1_method_must_be_get(method):
    assert "GET" in str(rejected(method, h1_request()))


@pytest.mark.parametrize("upgrade", [None, b"h2c", b"websocket2", b"web socket", b""])
def test_rfc6455_4_2_1_upgrade_needs_websocket(upgrade):
    assert "upgrade" in str(rejected(b"GET", h1_request(upgrade=upgrade)))


@pytest.mark.parametrize("upgrade", [b"WebSocket", b"h2c, websocket", b" websocket \t",
                                     b"foo,,WEBSOCKET"])
def test_rfc6455_4_2_1_upgrade_case_insensitive_list(upgrade):
    assert read_request(b"GET", h1_request(upgrade=upgrade), http2=False).key == SAMPLE_KEY


def test_rfc6455_4_2_1_upgrade_in_a_second_field():
    h = h1_request(upgrade=b"foo") + [(b"upgrade", b"websocket")]
    assert read_request(b"GET", h, http2=False).key == SAMPLE_KEY


def test_rfc6455_4_2_1_key_missing():
    assert "sec-websocket-key" in str(rejected(b"GET", h1_request(key=None)))


def test_rfc6455_11_3_1_key_duplicated():
    h = h1_request() + [(b"sec-websocket-key", SAMPLE_KEY)]
    assert "sec-websocket-key" in str(rejected(b"GET", h))


@pytest.mark.parametrize("n", [0, 1, 15, 17, 32])
def test_rfc6455_4_2_1_key_wrong_length(n):
    e = rejected(b"GET", h1_request(key=base64.b64encode(b"k" * n)))
    assert "16" in str(e)


@pytest.mark.parametrize("key", [b"not base64 at all!!!!!!!", b"dGhlIHNhbXBsZSBub25jZQ",
                                 b"dGhlIHNhbXBsZSBub25jZQ==,x", b"dGhl*HNhbXBsZSBub25jZQ=="])
def test_rfc6455_4_2_1_key_not_base64(key):
    rejected(b"GET", h1_request(key=key))


def test_rfc6455_4_2_1_key_ows_trimmed():
    assert read_request(
        b"GET", h1_request(key=b" " + SAMPLE_KEY + b"\t"), http2=False).key == SAMPLE_KEY


@pytest.mark.parametrize("version", [None, b"8", b"12", b"13, 8", b"14", b"", b"013"])
def test_rfc6455_4_4_version_not_13_is_426(version):
    e = rejected(b"GET", h1_request(version=version), status=426)
    assert e.headers == [(b"sec-websocket-version", b"13")]


def test_rfc6455_4_4_version_repeated_field_is_426():
    h = h1_request() + [(b"sec-websocket-version", b"13")]
    assert rejected(b"GET", h, status=426).headers == [(b"sec-websocket-version", b"13")]


def test_rfc6455_4_2_1_version_ows():
    assert read_request(
        b"GET", h1_request(version=b" 13 "), http2=False).key == SAMPLE_KEY


# ---------------------------------------------------------------------------------------
# RFC 8441 4-5: reading an HTTP/2 extended CONNECT


def test_rfc8441_5_valid_request():
    offer = read_request(b"CONNECT", h2_request(
        (b"sec-websocket-protocol", b"chat"),
        ext(b"permessage-deflate; client_max_window_bits")), http2=True)
    assert offer == Offer(http2=True, key=None, subprotocols=["chat"],
                          extensions=[("permessage-deflate", [("client_max_window_bits", None)])])


def test_rfc8441_5_key_not_processed():
    # "do not do the processing of the Sec-WebSocket-Key": any value is ignored.
    offer = read_request(b"CONNECT", h2_request((b"sec-websocket-key", b"junk")), http2=True)
    assert offer.key is None


@pytest.mark.parametrize("method", [b"GET", b"POST", b"connect"])
def test_rfc8441_4_method_must_be_connect(method):
    assert "CONNECT" in str(rejected(method, h2_request(), http2=True))


@pytest.mark.parametrize("protocol", [None, b"h2c", b"websocket2", b""])
def test_rfc8441_5_protocol_must_be_websocket(protocol):
    assert ":protocol" in str(rejected(b"CONNECT", h2_request(protocol=protocol), http2=True))


def test_rfc8441_5_two_protocol_fields():
    h = h2_request() + [(b":protocol", b"websocket")]
    rejected(b"CONNECT", h, http2=True)


def test_rfc8441_5_upgrade_must_not_be_sent():
    rejected(b"CONNECT", h2_request((b"upgrade", b"websocket")), http2=True)


@pytest.mark.parametrize("version", [None, b"8", b"13, 13"])
def test_rfc8441_5_version_13_required(version):
    e = rejected(b"CONNECT", h2_request(version=version), http2=True, status=426)
    assert e.headers == [(b"sec-websocket-version", b"13")]


def test_rfc8441_5_h1_request_over_h2_rejected():
    rejected(b"GET", h1_request(), http2=True)


# ---------------------------------------------------------------------------------------
# Subprotocols: RFC 6455 4.1 item 10, 4.2.1 item 8, 4.2.2 step 4


def test_rfc6455_4_2_1_subprotocols_in_order_across_fields():
    offer = h1_offer((b"sec-websocket-protocol", b"a, b"), (b"sec-websocket-protocol", b" c ,, d"))
    assert offer.subprotocols == ["a", "b", "c", "d"]


@pytest.mark.parametrize("value", [b"chat, super chat", b'"chat"', b"chat; v=1", b"a/b"])
def test_rfc6455_4_2_1_subprotocol_not_a_token(value):
    assert "token" in str(rejected(b"GET", h1_request((b"sec-websocket-protocol", value))))


def test_rfc6455_4_2_2_subprotocol_selected():
    offer = h1_offer((b"sec-websocket-protocol", b"chat, superchat"))
    assert (b"sec-websocket-protocol", b"superchat") in accept_headers(offer, subprotocol="superchat")
    assert not any(n == b"sec-websocket-protocol" for n, _ in accept_headers(offer))


@pytest.mark.parametrize("offered", [b"chat", None])
def test_rfc6455_4_2_2_subprotocol_must_be_offered(offered):
    extra = [(b"sec-websocket-protocol", offered)] if offered else []
    with pytest.raises(UsageError):
        accept_headers(h1_offer(*extra), subprotocol="superchat")


# ---------------------------------------------------------------------------------------
# Sec-WebSocket-Extensions: RFC 6455 9.1 grammar


def test_rfc6455_9_1_extensions_parsed_across_fields():
    offer = h1_offer(ext(b"foo, permessage-deflate; client_max_window_bits"),
                     ext(b'permessage-deflate ; server_max_window_bits = "10" ;'
                         b' client_no_context_takeover, bar; baz="q\\u"'))
    assert offer.extensions == [
        ("foo", []),
        ("permessage-deflate", [("client_max_window_bits", None)]),
        ("permessage-deflate", [("server_max_window_bits", "10"),
                                ("client_no_context_takeover", None)]),
        ("bar", [("baz", "qu")]),
    ]


def test_rfc6455_9_1_quoted_comma_is_not_a_separator():
    # A comma inside a quoted string is malformed only because the unescaped value
    # must be a token; the split itself must not cut there.
    e = rejected(b"GET", h1_request(ext(b'foo; a="x,y", bar')))
    assert "x,y" in str(e)


@pytest.mark.parametrize("value", [
    b"permessage-deflate; =10", b"; x", b"permessage deflate", b'foo; a="unterminated',
    b'foo; a="two words"', b"foo; a=b=c", b'foo; a=""', b"foo; a=", b"foo;; x",
])
def test_rfc6455_9_1_malformed_extensions(value):
    assert "sec-websocket-extensions" in str(rejected(b"GET", h1_request(ext(value))))


# ---------------------------------------------------------------------------------------
# RFC 7692 5, 7.1: negotiating permessage-deflate


def test_rfc7692_5_plain_offer():
    d = negotiate(b"permessage-deflate")
    assert d == DeflateParams()
    assert d.header() == b"permessage-deflate"


def test_rfc7692_5_no_offer_or_disabled():
    assert negotiate_deflate(h1_offer()) is None
    assert negotiate(b"x-webkit-deflate-frame") is None
    assert negotiate(b"permessage-deflate", enabled=False) is None


def test_rfc7692_5_unknown_extensions_ignored():
    assert negotiate(b"foo; bar=1, permessage-deflate, baz") == DeflateParams()


def test_rfc7692_5_first_acceptable_offer_wins():
    d = negotiate(b"permessage-deflate; server_max_window_bits=10, permessage-deflate")
    assert d.server_max_window_bits == 10
    d = negotiate(b"permessage-deflate; client_no_context_takeover",
                  b"permessage-deflate; server_no_context_takeover")
    assert d == DeflateParams(client_no_context_takeover=True)


@pytest.mark.parametrize("bad", [
    b"permessage-deflate; foo",                                        # 7: unknown
    b"permessage-deflate; server_no_context_takeover; server_no_context_takeover",  # 7: twice
    b"permessage-deflate; client_max_window_bits; client_max_window_bits=10",
    b"permessage-deflate; server_no_context_takeover=1",               # 7.1.1.1: no value
    b"permessage-deflate; client_no_context_takeover=true",            # 7.1.1.2: no value
    b"permessage-deflate; server_max_window_bits",                     # 7.1.2.1: needs one
    b"permessage-deflate; server_max_window_bits=7",
    b"permessage-deflate; server_max_window_bits=16",
    b"permessage-deflate; server_max_window_bits=1x",
    b"permessage-deflate; server_max_window_bits=100",
    b"permessage-deflate; client_max_window_bits=7",                   # 7.1.2.2
    b"permessage-deflate; client_max_window_bits=16",
])
def test_rfc7692_7_invalid_offer_declined_next_taken(bad):
    assert negotiate(bad) is None
    assert negotiate(bad + b", permessage-deflate; client_no_context_takeover") == \
        DeflateParams(client_no_context_takeover=True)


def test_rfc7692_7_1_1_1_server_no_context_takeover():
    d = negotiate(b"permessage-deflate; server_no_context_takeover")
    assert d == DeflateParams(server_no_context_takeover=True)
    assert d.header() == b"permessage-deflate; server_no_context_takeover"
    # The server may send it unasked.
    d = negotiate(b"permessage-deflate", server_no_context_takeover=True)
    assert d.header() == b"permessage-deflate; server_no_context_takeover"


def test_rfc7692_7_1_1_2_client_no_context_takeover_echoed():
    d = negotiate(b"permessage-deflate; client_no_context_takeover")
    assert d == DeflateParams(client_no_context_takeover=True)
    assert d.header() == b"permessage-deflate; client_no_context_takeover"


@pytest.mark.parametrize("asked, limit, agreed", [(10, 15, 10), (12, 9, 9), (8, 8, 8), (9, 12, 9)])
def test_rfc7692_7_1_2_1_server_max_window_bits(asked, limit, agreed):
    d = negotiate(b"permessage-deflate; server_max_window_bits=%d" % asked,
                  server_max_window_bits=limit)
    assert d.server_max_window_bits == agreed
    assert d.header() == b"permessage-deflate; server_max_window_bits=%d" % agreed


def test_rfc7692_7_1_2_1_server_max_window_bits_quoted_and_zero_padded():
    assert negotiate(b'permessage-deflate; server_max_window_bits="10"').server_max_window_bits == 10
    assert negotiate(b"permessage-deflate; server_max_window_bits=09").server_max_window_bits == 9


def test_rfc7692_7_1_2_1_asked_15_is_answered():
    # Accepting the parameter means including it, even at the default.
    d = negotiate(b"permessage-deflate; server_max_window_bits=15")
    assert d == DeflateParams()
    assert d.header() == b"permessage-deflate; server_max_window_bits=15"


def test_rfc7692_7_1_2_1_server_limit_unasked():
    d = negotiate(b"permessage-deflate", server_max_window_bits=11)
    assert d.header() == b"permessage-deflate; server_max_window_bits=11"


def test_rfc7692_7_1_2_1_server_limit_checked():
    with pytest.raises(UsageError):
        negotiate(b"permessage-deflate", server_max_window_bits=16)


def test_rfc7692_7_1_2_2_client_max_window_bits_without_value():
    d = negotiate(b"permessage-deflate; client_max_window_bits")
    assert d.client_max_window_bits == 15
    assert d.header() == b"permessage-deflate"


def test_rfc7692_7_1_2_2_client_max_window_bits_hint_used():
    d = negotiate(b"permessage-deflate; client_max_window_bits=10")
    assert d.client_max_window_bits == 10
    assert d.header() == b"permessage-deflate; client_max_window_bits=10"


def test_rfc7692_7_1_2_2_never_sent_unoffered():
    for kwargs in ({}, {"server_max_window_bits": 9, "server_no_context_takeover": True}):
        d = negotiate(b"permessage-deflate", **kwargs)
        assert b"client_max_window_bits" not in d.header()
        assert d.client_max_window_bits == 15


def test_rfc7692_7_1_all_parameters():
    d = negotiate(b"permessage-deflate; server_no_context_takeover; client_no_context_takeover;"
                  b" server_max_window_bits=12; client_max_window_bits=11")
    assert d == DeflateParams(True, True, 12, 11)
    assert d.header() == (b"permessage-deflate; server_no_context_takeover;"
                          b" client_no_context_takeover; server_max_window_bits=12;"
                          b" client_max_window_bits=11")


def test_deflate_params_codec_options_and_checks():
    assert DeflateParams(True, False, 9, 10).codec_options() == {
        "deflate": True, "server_no_context_takeover": True,
        "client_no_context_takeover": False, "server_max_window_bits": 9,
        "client_max_window_bits": 10}
    for bits in (7, 16, 12.0):
        with pytest.raises(UsageError):
            DeflateParams(server_max_window_bits=bits)
        with pytest.raises(UsageError):
            DeflateParams(client_max_window_bits=bits)


# ---------------------------------------------------------------------------------------
# RFC 6455 4.2.2 step 5, RFC 8441 5: the accepting response


def test_rfc6455_4_2_2_accept_headers_h1():
    offer = h1_offer((b"sec-websocket-protocol", b"chat"),
                     ext(b"permessage-deflate; client_max_window_bits"))
    out = accept_headers(offer, subprotocol="chat", deflate=negotiate_deflate(offer),
                         headers=[(b"x-trace", b"1"), ("Set-Cookie", "a=b")])
    assert out == [(b"upgrade", b"websocket"), (b"sec-websocket-accept", SAMPLE_ACCEPT),
                   (b"sec-websocket-protocol", b"chat"),
                   (b"sec-websocket-extensions", b"permessage-deflate"),
                   (b"x-trace", b"1"), (b"set-cookie", b"a=b")]


def test_rfc8441_5_accept_headers_h2():
    offer = read_request(b"CONNECT", h2_request((b"sec-websocket-protocol", b"chat"),
                                                ext(b"permessage-deflate")), http2=True)
    out = accept_headers(offer, subprotocol="chat", deflate=negotiate_deflate(offer))
    assert out == [(b"sec-websocket-protocol", b"chat"),
                   (b"sec-websocket-extensions", b"permessage-deflate")]
    assert accept_headers(offer) == []


@pytest.mark.parametrize("name", [b"sec-websocket-accept", b"upgrade", b"Upgrade",
                                  b"sec-websocket-extensions", b"connection",
                                  b"sec-websocket-protocol"])
def test_accept_headers_owned_names(name):
    with pytest.raises(UsageError):
        accept_headers(h1_offer(), headers=[(name, b"x")])


# ---------------------------------------------------------------------------------------
# RFC 6455 4.1, RFC 8441 5: the client's request


def test_rfc6455_4_1_request_headers_h1():
    out = request_headers(http2=False, key=SAMPLE_KEY, subprotocols=["chat", "superchat"],
                          headers=[("Origin", "http://example.com"), (b"x-a", b"1")])
    assert out == [(b"upgrade", b"websocket"), (b"sec-websocket-key", SAMPLE_KEY),
                   (b"sec-websocket-version", b"13"),
                   (b"sec-websocket-protocol", b"chat, superchat"),
                   (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits"),
                   (b"origin", b"http://example.com"), (b"x-a", b"1")]
    # What we send, our server reads back.
    offer = read_request(b"GET", out, http2=False)
    assert offer.subprotocols == ["chat", "superchat"]
    assert negotiate_deflate(offer) == DeflateParams()


def test_rfc8441_5_request_headers_h2():
    out = request_headers(http2=True, deflate=False)
    assert out == [(b"sec-websocket-version", b"13")]
    out = request_headers(http2=True, subprotocols=["chat"])
    assert out == [(b"sec-websocket-version", b"13"), (b"sec-websocket-protocol", b"chat"),
                   (b"sec-websocket-extensions", b"permessage-deflate; client_max_window_bits")]
    pseudo = [(b":method", b"CONNECT"), (b":protocol", b"websocket")]
    assert read_request(b"CONNECT", pseudo + out, http2=True).subprotocols == ["chat"]


@pytest.mark.parametrize("key", [None, b"short", base64.b64encode(b"x" * 17), b"!" * 24])
def test_rfc6455_4_1_request_key_required_and_valid(key):
    with pytest.raises(UsageError):
        request_headers(http2=False, key=key)


@pytest.mark.parametrize("protocols", [["chat", "super chat"], [""], ["a,b"]])
def test_rfc6455_4_1_request_subprotocols_are_tokens(protocols):
    with pytest.raises(UsageError):
        request_headers(http2=False, key=SAMPLE_KEY, subprotocols=protocols)


@pytest.mark.parametrize("name", ["upgrade", "Connection", "sec-websocket-key",
                                  "sec-websocket-version", "sec-websocket-protocol",
                                  "sec-websocket-extensions"])
def test_request_headers_owned_names(name):
    with pytest.raises(UsageError):
        request_headers(http2=True, headers=[(name, "x")])


# ---------------------------------------------------------------------------------------
# RFC 6455 4.1 (end), RFC 8441 5: checking the server's answer


def h1_answer(*extra, accept=SAMPLE_ACCEPT):
    return [(b"upgrade", b"websocket"), (b"sec-websocket-accept", accept)] + list(extra)


def check(code, headers, *, http2=False, subprotocols=("chat",), deflate=True):
    return check_response(code, headers, http2=http2, key=None if http2 else SAMPLE_KEY,
                          subprotocols=subprotocols, deflate=deflate)


def refused(code, headers, **kwargs):
    with pytest.raises(HandshakeError) as info:
        check(code, headers, **kwargs)
    assert info.value.status == code
    return info.value


def test_rfc6455_4_1_valid_answers():
    assert check(101, h1_answer()) == (None, None)
    assert check(101, h1_answer((b"sec-websocket-protocol", b"chat"), ext(
        b"permessage-deflate; server_no_context_takeover; client_max_window_bits=10"))) == \
        ("chat", DeflateParams(server_no_context_takeover=True, client_max_window_bits=10))
    assert check(101, [(b"Upgrade", b"WebSocket"), (b"Sec-WebSocket-Accept", SAMPLE_ACCEPT)]) \
        == (None, None)


def test_rfc7692_7_1_answers_the_server_may_send_unasked():
    # 7.1.1.1, 7.1.1.2, 7.1.2.1: a server may add these to its answer on its own.
    assert check(101, h1_answer(ext(b"permessage-deflate; client_no_context_takeover;"
                                    b" server_no_context_takeover; server_max_window_bits=9"))) \
        == (None, DeflateParams(True, True, 9, 15))


def test_rfc8441_5_valid_answers():
    assert check(200, [], http2=True) == (None, None)
    assert check(200, [(b"sec-websocket-protocol", b"chat"), ext(b"permessage-deflate")],
                 http2=True) == ("chat", DeflateParams())


@pytest.mark.parametrize("code", [200, 400, 426, 302, 100])
def test_rfc6455_4_1_not_101(code):
    assert "101" in str(refused(code, h1_answer()))


@pytest.mark.parametrize("code", [101, 400, 404, 301])
def test_rfc8441_5_not_2xx(code):
    assert "2xx" in str(refused(code, [], http2=True))


@pytest.mark.parametrize("upgrade", [None, b"h2c", b"websocket, h2c"])
def test_rfc6455_4_1_answer_upgrade(upgrade):
    h = h1_answer()[1:] + ([(b"upgrade", upgrade)] if upgrade else [])
    refused(101, h)


@pytest.mark.parametrize("accept", [accept_key(b"another key"), b"", SAMPLE_KEY])
def test_rfc6455_4_1_wrong_accept(accept):
    assert "accept" in str(refused(101, h1_answer(accept=accept)))


def test_rfc6455_4_1_accept_missing_or_twice():
    refused(101, h1_answer()[:1])
    refused(101, h1_answer((b"sec-websocket-accept", SAMPLE_ACCEPT)))


def test_rfc6455_4_1_accept_needs_the_key():
    with pytest.raises(UsageError):
        check_response(101, h1_answer(), http2=False, key=None, subprotocols=(), deflate=True)


@pytest.mark.parametrize("protocol, offered", [
    (b"superchat", ("chat",)), (b"chat", ()), (b"chat, chat", ("chat",)), (b"Chat", ("chat",))])
def test_rfc6455_4_1_unoffered_subprotocol(protocol, offered):
    refused(101, h1_answer((b"sec-websocket-protocol", protocol)), subprotocols=offered)
    refused(200, [(b"sec-websocket-protocol", protocol)], http2=True, subprotocols=offered)


@pytest.mark.parametrize("value, deflate", [
    (b"permessage-deflate", False),                                   # not offered at all
    (b"foo", True),                                                   # 4.1 item 5
    (b"permessage-deflate, permessage-deflate", True),
    (b"permessage-deflate; client_max_window_bits", True),           # 7.1.2.2: needs a value
    (b"permessage-deflate; client_max_window_bits=16", True),
    (b"permessage-deflate; server_max_window_bits=7", True),
    (b"permessage-deflate; server_max_window_bits", True),
    (b"permessage-deflate; foo=1", True),                             # 7: unknown
    (b"permessage-deflate; server_no_context_takeover; server_no_context_takeover", True),
    (b"permessage-deflate; client_no_context_takeover=1", True),
    (b'permessage-deflate; server_max_window_bits="1 0"', True),
])
def test_rfc7692_7_1_invalid_answer(value, deflate):
    refused(101, h1_answer(ext(value)), deflate=deflate)
    refused(200, [ext(value)], http2=True, deflate=deflate)


# ---------------------------------------------------------------------------------------
# Real peers: their clients against read_request/negotiate_deflate/accept_headers, and
# request_headers/check_response against their servers.


def serve(method, headers, **negotiation):
    offer = read_request(method, headers, http2=False)
    deflate = negotiate_deflate(offer, **negotiation)
    protocol = offer.subprotocols[0] if offer.subprotocols else None
    return accept_headers(offer, subprotocol=protocol, deflate=deflate), deflate


def head(code, reason, headers):
    lines = [b"HTTP/1.1 %d %s" % (code, reason)]
    lines += [n + b": " + v for n, v in headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


@pytest.mark.parametrize("factory, negotiation, agreed", [
    (ClientPerMessageDeflateFactory(), {}, DeflateParams()),
    (ClientPerMessageDeflateFactory(), {"server_max_window_bits": 10},
     DeflateParams(server_max_window_bits=10)),
    (ClientPerMessageDeflateFactory(server_max_window_bits=15), {}, DeflateParams()),
    (ClientPerMessageDeflateFactory(server_max_window_bits=12, client_max_window_bits=11,
                                    server_no_context_takeover=True,
                                    client_no_context_takeover=True),
     {"server_max_window_bits": 9}, DeflateParams(True, True, 9, 11)),
    (ClientPerMessageDeflateFactory(client_max_window_bits=None), {"server_no_context_takeover": True},
     DeflateParams(server_no_context_takeover=True)),
])
def test_websockets_client_accepts_our_answer(factory, negotiation, agreed):
    client = websockets.client.ClientProtocol(parse_uri("ws://example.com/chat"),
                                              extensions=[factory], subprotocols=["chat", "x"])
    request = client.connect()
    client.send_request(request)
    headers = [(n.lower().encode(), v.encode()) for n, v in request.headers.raw_items()]
    answer, deflate = serve(b"GET", [h for h in headers if h[0] != b"connection"], **negotiation)
    assert deflate == agreed
    client.receive_data(head(101, b"Switching Protocols",
                             answer + [(b"connection", b"upgrade")]))
    assert client.handshake_exc is None and client.state is State.OPEN
    assert client.subprotocol == "chat"
    (pmd,) = client.extensions
    # websockets' client names the parameters after its own side (local = client).
    assert (pmd.remote_no_context_takeover, pmd.local_no_context_takeover,
            pmd.remote_max_window_bits, pmd.local_max_window_bits) == \
        (agreed.server_no_context_takeover, agreed.client_no_context_takeover,
         agreed.server_max_window_bits, agreed.client_max_window_bits)


@pytest.mark.parametrize("pmd, negotiation, agreed", [
    (PerMessageDeflate(), {}, DeflateParams()),
    (PerMessageDeflate(client_max_window_bits=10, server_max_window_bits=12),
     {"server_no_context_takeover": True}, DeflateParams(True, False, 12, 10)),
])
def test_wsproto_client_accepts_our_answer(pmd, negotiation, agreed):
    client = WSConnection(ConnectionType.CLIENT)
    data = client.send(wse.Request(host="example.com", target="/chat", extensions=[pmd],
                                   subprotocols=["chat"]))
    server = h11.Connection(h11.SERVER)
    server.receive_data(data)
    request = server.next_event()
    assert isinstance(request, h11.Request)
    fields = [(n, v) for n, v in request.headers.raw_items()]
    answer, deflate = serve(request.method, [(n.lower(), v) for n, v in fields
                                             if n.lower() != b"connection"], **negotiation)
    assert deflate == agreed
    client.receive_data(head(101, b"Switching Protocols",
                             answer + [(b"connection", b"Upgrade")]))
    (event,) = client.events()
    assert isinstance(event, wse.AcceptConnection), event
    assert event.subprotocol == "chat"
    (ext_,) = event.extensions
    assert isinstance(ext_, PerMessageDeflate) and ext_.name == "permessage-deflate"
    assert (ext_.server_no_context_takeover, ext_.client_no_context_takeover,
            ext_.server_max_window_bits, ext_.client_max_window_bits) == \
        (agreed.server_no_context_takeover, agreed.client_no_context_takeover,
         agreed.server_max_window_bits, agreed.client_max_window_bits)


def parse_response(data):
    """A response head by h11 (it reads a 101 as an informational response)."""
    conn = h11.Connection(h11.CLIENT)
    conn.send(h11.Request(method="GET", target="/", headers=[
        ("host", "x"), ("connection", "upgrade"), ("upgrade", "websocket")]))
    conn.send(h11.EndOfMessage())
    conn.receive_data(data)
    event = conn.next_event()
    assert isinstance(event, (h11.Response, h11.InformationalResponse)), event
    # cno's engine consumes connection before the caller sees the head.
    return event.status_code, [(n, v) for n, v in event.headers.raw_items()
                               if n.lower() != b"connection"]


def our_request(key, **kwargs):
    fields = request_headers(http2=False, key=key, **kwargs)
    head = [b"GET /chat HTTP/1.1", b"host: example.com", b"connection: upgrade"]
    return b"\r\n".join(head + [n + b": " + v for n, v in fields]) + b"\r\n\r\n"


@pytest.mark.parametrize("factory, agreed", [
    (ServerPerMessageDeflateFactory(), DeflateParams()),
    (ServerPerMessageDeflateFactory(server_max_window_bits=10, client_max_window_bits=12,
                                    server_no_context_takeover=True,
                                    client_no_context_takeover=True),
     DeflateParams(True, True, 10, 12)),
])
def test_websockets_server_accepts_our_request(factory, agreed):
    key = new_key()
    server = websockets.server.ServerProtocol(extensions=[factory], subprotocols=["chat"])
    server.receive_data(our_request(key, subprotocols=["superchat", "chat"],
                                    headers=[("origin", "http://example.com")]))
    (request,) = server.events_received()
    server.send_response(server.accept(request))
    assert server.handshake_exc is None and server.state is State.OPEN
    code, headers = parse_response(server.data_to_send()[0])
    assert check_response(code, headers, http2=False, key=key, subprotocols=["superchat", "chat"],
                          deflate=True) == ("chat", agreed)


def test_websockets_server_refusal_seen():
    key = new_key()
    server = websockets.server.ServerProtocol()
    server.receive_data(our_request(key))
    (request,) = server.events_received()
    server.send_response(server.reject(403, "no\n"))
    code, headers = parse_response(b"".join(server.data_to_send()))
    with pytest.raises(HandshakeError) as info:
        check_response(code, headers, http2=False, key=key, subprotocols=(), deflate=True)
    assert info.value.status == 403


def test_wsproto_server_accepts_our_request():
    key = new_key()
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(our_request(key, subprotocols=["chat"]))
    (request,) = server.events()
    assert isinstance(request, wse.Request) and request.subprotocols == ["chat"]
    data = server.send(wse.AcceptConnection(subprotocol="chat",
                                            extensions=[PerMessageDeflate(client_max_window_bits=11)]))
    code, headers = parse_response(data)
    assert check_response(code, headers, http2=False, key=key, subprotocols=["chat"],
                          deflate=True) == ("chat", DeflateParams(client_max_window_bits=11))
