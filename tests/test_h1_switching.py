"""Switching protocols on an HTTP/1.1 connection (docs/raw.md "Switching protocols"):
HTTP/2 prior knowledge (RFC 9113 3.3), the h2c upgrade (RFC 7540 3.2, 3.2.1; deprecated by
RFC 9113 3.1 but still spoken) on both sides, other upgrades (RFC 9110 7.8) and CONNECT
(RFC 9110 9.3.6) as raw tunnels."""
import struct

import pytest

from cno import errors
from h1_util import (
    answer, b64url, b64url_decode, client, connection_tokens, field_values, get, h11_responses,
    names, pseudo, regular, request, response, send_request, server, settings_payload,
    split_head,
)
from raw_frames import (
    DATA, HEADERS, PREFACE, SETTINGS, SETTINGS_NAMES, ACK, END_STREAM, FrameParser, data,
    headers, literal_block, settings, settings_ack,
)

H2_REQ = [(":method", "GET"), (":scheme", "http"), (":path", "/h2"),
          (":authority", "example.com")]


# ---------------------------------------------------------------------------------------------
# Prior knowledge: RFC 9113 3.3

def check_speaks_h2(c, parser):
    """``c`` (a server) answered the preface with SETTINGS and serves stream 1 in HTTP/2."""
    frames = parser.feed(c.take())
    assert frames and frames[0].type == SETTINGS and not frames[0].flags & ACK, frames
    (h,) = c.heads(1)
    assert (h[2], h[3], h[4]) == (0, "GET", "/h2")
    assert pseudo(h[5])[":authority"] == "example.com"
    c.write_head(1, 200, "", "", [("content-length", "2")], False)
    c.write_data(1, b"ok", True)
    frames = parser.feed(c.take())
    hs = [f for f in frames if f.type == HEADERS]
    assert len(hs) == 1 and hs[0].stream == 1 and (":status", "200") in hs[0].headers
    ds = [f for f in frames if f.type == DATA]
    assert b"".join(f.obj.data for f in ds) == b"ok"
    assert ds[-1].flags & END_STREAM
    assert b"HTTP/1.1" not in b"".join(f.wire for f in frames)


def test_prior_knowledge_switches_to_h2():
    # RFC 9113 3.3: a client with prior knowledge sends the connection preface first.
    c = server()
    assert not c.is_http2
    c.feed(PREFACE + settings() + headers(1, literal_block(H2_REQ), end_stream=True))
    assert c.is_http2
    check_speaks_h2(c, FrameParser())


def test_prior_knowledge_preface_split_byte_by_byte():
    c = server()
    w = PREFACE + settings() + headers(1, literal_block(H2_REQ), end_stream=True)
    for i in range(len(w)):
        c.data_received(w[i:i + 1])
    assert c.is_http2
    check_speaks_h2(c, FrameParser())


def test_prior_knowledge_disallowed():
    # docs/raw.md: with disallow_h2_prior_knowledge the preface is just a bad HTTP/1.1
    # request ("PRI * HTTP/2.0"): an error (400 or 505), no switch.
    c = server(disallow_h2_prior_knowledge=True)
    with pytest.raises(errors.ProtocolError) as ei:
        c.data_received(PREFACE + settings())
    assert getattr(ei.value, "status", None) in (400, 505)
    assert not c.is_http2
    assert c.closed
    assert not c.heads()


def test_prior_knowledge_only_before_first_request():
    # libcno: detection only applies before the first request; afterwards the preface is an
    # HTTP/1.1 error.
    c = server()
    c.feed(get())
    answer(c, 1)
    with pytest.raises(errors.ProtocolError):
        c.data_received(PREFACE + settings())
    assert not c.is_http2


# ---------------------------------------------------------------------------------------------
# h2c upgrade, server: RFC 7540 3.2, 3.2.1

UP_SETTINGS = dict(initial_window_size=10, max_concurrent_streams=7, max_frame_size=20000)


def h2c_request(settings_token=None, extra=(), method="GET", body=b"", h2s=1):
    token = b64url(settings_payload(**UP_SETTINGS)) if settings_token is None else settings_token
    hs = [("Host", "example.com"), ("Connection", "Upgrade, HTTP2-Settings"),
          ("Upgrade", "h2c")] + [("HTTP2-Settings", token)] * h2s + list(extra)
    return request(method, "/h2", hs, body)


def test_h2c_upgrade_server():
    # RFC 7540 3.2: the server answers 101 then sends its connection preface (SETTINGS);
    # 3.2.1: HTTP2-Settings is decoded as a SETTINGS payload and applied (the 101 is the
    # implicit ACK; libcno defect: ignored); the request becomes stream 1, half-closed remote.
    c = server(disallow_h2_upgrade=False)
    c.feed(h2c_request())
    wire = c.take()
    line, fields, rest = split_head(wire)
    assert line == "HTTP/1.1 101 Switching Protocols"
    assert [v.lower() for v in field_values(fields, "upgrade")] == ["h2c"]
    assert "upgrade" in connection_tokens(fields)
    parser = FrameParser()
    frames = parser.feed(rest)
    assert frames and frames[0].type == SETTINGS and not frames[0].flags & ACK, frames
    assert c.is_http2
    # the client preface follows the 101
    c.feed(PREFACE + settings())
    frames += parser.feed(c.take())
    for name, value in UP_SETTINGS.items():
        assert c.remote_settings[name] == value, (name, c.remote_settings)
    (h,) = c.heads(1)
    assert (h[1], h[2], h[3], h[4]) == (1, 0, "GET", "/h2")
    assert pseudo(h[5])[":authority"] == "example.com"
    assert "http2-settings" not in names(h[5]) and "connection" not in names(h[5])
    assert c.of("tail", 1) == [("tail", 1, None)]
    # the response goes out as HTTP/2 on stream 1, within the window HTTP2-Settings gave
    c.write_head(1, 200, "", "", [("content-length", "100")], False)
    assert c.write_data(1, b"x" * 100, True) == 10
    frames = parser.feed(c.take())
    hs = [f for f in frames if f.type == HEADERS]
    assert len(hs) == 1 and hs[0].stream == 1 and (":status", "200") in hs[0].headers
    assert sum(len(f.obj.data) for f in frames if f.type == DATA and f.stream == 1) == 10


def test_h2c_upgrade_server_split_input():
    # the same, with the upgrade request and the preface arriving in one read
    c = server(disallow_h2_upgrade=False)
    c.feed(h2c_request() + PREFACE + settings() + settings_ack())
    assert c.is_http2
    (h,) = c.heads(1)
    assert h[4] == "/h2"
    assert c.remote_settings["max_concurrent_streams"] == 7


def test_h2c_upgrade_ignored_by_default():
    # docs/raw.md: disallow_h2_upgrade defaults to True (RFC 9110 7.8: a server MAY ignore
    # Upgrade): answered in HTTP/1.1.
    c = server()
    c.feed(h2c_request())
    assert not c.is_http2
    assert b"101" not in c.take()
    (h,) = c.heads(1)
    assert h[4] == "/h2"
    answer(c, 1, body=b"h1")
    (msgs,) = h11_responses(c.take(), ["GET"])
    assert msgs[-1].code == 200 and msgs[-1].body == b"h1" and msgs[-1].version == "1.1"
    c.feed(get("/next"))
    assert [x[4] for x in c.heads()] == ["/h2", "/next"]


def test_h2c_upgrade_with_body_not_taken():
    # docs/raw.md: only a request with no body is upgraded.
    c = server(disallow_h2_upgrade=False)
    c.feed(h2c_request(method="POST", extra=[("Content-Length", "5")], body=b"hello"))
    assert not c.is_http2
    assert c.body(1) == b"hello"
    answer(c, 1, body=b"h1")
    (msgs,) = h11_responses(c.take(), ["POST"])
    assert msgs[-1].code == 200 and msgs[-1].body == b"h1"


@pytest.mark.parametrize("h2s", [0, 2])
def test_h2c_upgrade_needs_exactly_one_http2_settings(h2s):
    # RFC 7540 3.2.1: a server MUST NOT upgrade if HTTP2-Settings is absent or present more
    # than once.
    c = server(disallow_h2_upgrade=False)
    c.feed(h2c_request(h2s=h2s))
    assert not c.is_http2
    answer(c, 1, body=b"h1")
    (msgs,) = h11_responses(c.take(), ["GET"])
    assert msgs[-1].code == 200 and msgs[-1].body == b"h1"


def test_h2c_upgrade_only_on_first_request():
    # docs/raw.md: a *first* request (RFC 7540 3.2: the upgraded request is stream 1).
    c = server(disallow_h2_upgrade=False)
    c.feed(get("/1"))
    answer(c, 1)
    c.feed(h2c_request())
    assert not c.is_http2
    answer(c, 3, body=b"h1")
    msgs = h11_responses(c.take(), ["GET", "GET"])
    assert msgs[1][-1].body == b"h1"


# ---------------------------------------------------------------------------------------------
# h2c upgrade, client: RFC 7540 3.2

def test_h2c_upgrade_client():
    # RFC 7540 3.2: the client sends Upgrade: h2c and exactly one HTTP2-Settings (3.2.1:
    # base64url, no padding, listed in Connection); after 101 it sends its preface, and the
    # response to the first request arrives on stream 1 in HTTP/2.
    c = client(disallow_h2_upgrade=False)
    send_request(c, "GET", "/up", [("accept", "*/*")], final=True)
    wire = c.take()
    line, fields, rest = split_head(wire)
    assert line == "GET /up HTTP/1.1"
    assert [v.lower() for v in field_values(fields, "upgrade")] == ["h2c"]
    assert {"upgrade", "http2-settings"} <= connection_tokens(fields)
    (token,) = field_values(fields, "http2-settings")
    assert "=" not in token and "+" not in token and "/" not in token
    payload = b64url_decode(token)
    assert len(payload) % 6 == 0
    for i in range(0, len(payload), 6):
        ident, value = struct.unpack(">HI", payload[i:i + 6])
        if ident in SETTINGS_NAMES:
            assert c.local_settings[SETTINGS_NAMES[ident]] == value
    assert rest == b""
    c.feed(response(101, "Switching Protocols", [("Connection", "Upgrade"), ("Upgrade", "h2c")])
           + settings(max_concurrent_streams=50)
           + headers(1, literal_block([(":status", "200"), ("content-length", "2")]))
           + data(1, b"hi", end_stream=True))
    assert c.is_http2
    finals = [(h[1], h[2]) for h in c.heads() if h[2] != 101]
    assert finals == [(1, 200)]
    assert c.body(1) == b"hi"
    assert c.of("tail", 1) == [("tail", 1, None)]
    assert c.remote_settings["max_concurrent_streams"] == 50
    parser = FrameParser(expect_preface=True)
    frames = parser.feed(c.take())
    assert parser.preface_seen and frames and frames[0].type == SETTINGS, frames
    # the next request is an HTTP/2 stream
    assert c.next_stream == 3
    send_request(c, "GET", "/next")
    hs = [f for f in parser.feed(c.take()) if f.type == HEADERS]
    assert len(hs) == 1 and hs[0].stream == 3 and (":path", "/next") in hs[0].headers


def test_h2c_upgrade_client_refused_continues_h1():
    # RFC 7540 3.2: a server that does not switch answers in HTTP/1.1 (docs/raw.md: handled
    # as HTTP/1.1).
    c = client(disallow_h2_upgrade=False)
    send_request(c, "GET", "/up")
    assert b"h2c" in c.take()
    c.feed(response(200, "OK", [("Content-Length", "2")], b"ok"))
    assert not c.is_http2
    assert [(h[1], h[2]) for h in c.heads()] == [(1, 200)]
    assert c.body(1) == b"ok"
    assert c.of("tail", 1) == [("tail", 1, None)]
    send_request(c, "GET", "/next")
    line, fields, _ = split_head(c.take())
    assert line == "GET /next HTTP/1.1"
    assert not field_values(fields, "upgrade") and not field_values(fields, "http2-settings")


def test_h2c_upgrade_client_not_final_no_upgrade():
    # docs/raw.md: only a first request that is final carries the upgrade.
    c = client(disallow_h2_upgrade=False)
    sid = send_request(c, "POST", "/", [("content-length", "1")], final=False)
    c.write_data(sid, b"x", True)
    _, fields, _ = split_head(c.take())
    assert not field_values(fields, "upgrade") and not field_values(fields, "http2-settings")


def test_h2c_upgrade_client_off_by_default():
    c = client()
    send_request(c)
    _, fields, _ = split_head(c.take())
    assert not field_values(fields, "upgrade") and not field_values(fields, "http2-settings")


# ---------------------------------------------------------------------------------------------
# Other upgrades (RFC 9110 7.8) and CONNECT (RFC 9110 9.3.6): tunnels

WS_REQ = request("GET", "/chat", [("Host", "example.com"), ("Upgrade", "websocket"),
                                  ("Connection", "Upgrade"),
                                  ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
                                  ("Sec-WebSocket-Version", "13")])


def accept_ws(conn, stream):
    # what an application writes (RFC 6455 4.2.2); RFC 9110 7.8: a 101 carries Upgrade and the
    # "upgrade" connection option.
    conn.write_head(stream, 101, "", "", [("upgrade", "websocket"), ("connection", "upgrade"),
                                          ("sec-websocket-accept",
                                           "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")], False)


def test_websocket_upgrade_server_tunnel():
    # RFC 9110 7.8: after 101 the server switches to the protocol in Upgrade, right after the
    # empty line that ends the 101 (docs/raw.md: on_upgrade after on_message_head; a 101 makes
    # a tunnel both ways; final closes).
    c = server()
    c.upgrade_hook = accept_ws
    c.feed(WS_REQ + b"\x81\x85masked")
    kinds = [e[0] for e in c.events]
    assert kinds.index("head") < kinds.index("upgrade")
    assert c.of("upgrade") == [("upgrade", 1)]
    (h,) = c.heads(1)
    assert ("upgrade", "websocket") in regular(h[5])
    line, fields, rest = split_head(c.take())
    assert line == "HTTP/1.1 101 Switching Protocols"
    assert field_values(fields, "upgrade") == ["websocket"]
    assert not field_values(fields, "content-length")
    assert not field_values(fields, "transfer-encoding")
    assert rest == b""
    assert c.body(1) == b"\x81\x85masked"
    c.feed(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(c.heads()) == 1
    assert c.body(1).endswith(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.write_data(1, b"\x81\x02hi", False) == 4
    assert c.take() == b"\x81\x02hi"
    assert not c.of("close")
    c.write_data(1, b"\x88\x00", True)
    assert c.take() == b"\x88\x00"
    assert c.of("close") == [("close",)]


def test_101_carries_connection_upgrade():
    # RFC 9110 7.8: "A sender of Upgrade MUST also send an "Upgrade" connection option in the
    # Connection header field"; the application passed connection: upgrade, so either it is
    # written or the engine writes its own.
    c = server()
    c.upgrade_hook = accept_ws
    c.feed(WS_REQ)
    line, fields, _ = split_head(c.take())
    assert line == "HTTP/1.1 101 Switching Protocols"
    assert "upgrade" in connection_tokens(fields), fields


def test_no_on_upgrade_without_upgrade_header():
    c = server()
    c.feed(get())
    assert not c.of("upgrade")


def test_upgrade_ignored_by_server_continues_h1():
    # RFC 9110 7.8: a server MAY ignore a received Upgrade header field.
    # (the engine may hold the bytes after an Upgrade request until it is answered: they
    # belong to the new protocol if the server switches)
    c = server()
    c.feed(WS_REQ + get("/next"))
    assert c.of("upgrade") == [("upgrade", 1)]
    assert [h[4] for h in c.heads()][:1] == ["/chat"]
    answer(c, 1, body=b"plain")
    assert [h[4] for h in c.heads()] == ["/chat", "/next"]
    assert c.body(1) == b"" and c.body(3) == b""
    answer(c, 3, body=b"next")
    msgs = h11_responses(c.take(), ["GET", "GET"])
    assert [m[-1].body for m in msgs] == [b"plain", b"next"]
    assert not c.closed


def connect_hook(code):
    def hook(conn, stream, _code, method, path, hs):
        if method == "CONNECT":
            if code < 300:
                conn.write_head(stream, code, "", "", [], False)
            else:
                conn.write_head(stream, code, "", "", [("content-length", "0")], True)
    return hook


def test_connect_tunnel_server():
    # RFC 9110 9.3.6: after a 2xx to CONNECT the connection is a tunnel; a server MUST NOT
    # send Transfer-Encoding or Content-Length in that response.
    c = server()
    c.head_hook = connect_hook(200)
    c.feed(request("CONNECT", "example.com:443", [("Host", "example.com:443")]) +
           b"\x16\x03\x01client-hello")
    line, fields, rest = split_head(c.take())
    assert line == "HTTP/1.1 200 OK"
    assert not field_values(fields, "content-length")
    assert not field_values(fields, "transfer-encoding")
    assert rest == b""
    assert c.body(1) == b"\x16\x03\x01client-hello"
    c.feed(b"GET /inner HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(c.heads()) == 1
    assert c.write_data(1, b"server-hello", False) == 12
    assert c.take() == b"server-hello"
    c.write_data(1, b"", True)
    assert c.of("close") == [("close",)]


def test_connect_refused_continues_h1():
    # RFC 9110 9.3.6: only a 2xx makes a tunnel.
    c = server()
    c.head_hook = connect_hook(407)
    c.feed(request("CONNECT", "example.com:443", [("Host", "example.com:443")]) + get("/next"))
    assert [h[4] for h in c.heads()][1:] == ["/next"]
    answer(c, 3, body=b"next")
    msgs = h11_responses(c.take(), ["CONNECT", "GET"])
    assert msgs[0][-1].code == 407 and msgs[1][-1].body == b"next"


def test_websocket_client_and_server_pair():
    # a cno client and a cno server wired together through an Upgrade: bytes flow both ways.
    cl = client()
    sv = server()
    sv.upgrade_hook = accept_ws
    sid = send_request(cl, "GET", "/chat", [("upgrade", "websocket"),
                                            ("sec-websocket-version", "13")], final=True)
    sv.feed(cl.take())
    cl.feed(sv.take())
    assert [(h[1], h[2]) for h in cl.heads()] == [(1, 101)]
    cl.write_data(sid, b"ping", False)
    sv.feed(cl.take())
    assert sv.body(1) == b"ping"
    sv.write_data(1, b"pong", False)
    cl.feed(sv.take())
    assert cl.body(1) == b"pong"
