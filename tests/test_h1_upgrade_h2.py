"""HTTP/1.1 -> HTTP/2 switches of cno.raw.Connection against python-hyper's h2 (and h11).

- h2c upgrade (RFC 7540 3.2), cno server: an h2 client whose first request is written by
  hand as HTTP/1.1 with "Upgrade: h2c" and h2's HTTP2-Settings; after the 101 both speak
  HTTP/2, the request is stream 1.
- h2c upgrade, cno client: cno's first request carries the upgrade; h11 parses it, h2's
  server side takes the HTTP2-Settings, the 101 is written by hand.
- refusals (the server answers in HTTP/1.1), requests that must not be upgraded, and
  HTTP/2 prior knowledge on a connection started in HTTP/1.1.

Contract: docs/raw.md, "Switching protocols". Harness: tests/h1_pair.py.
"""
import h11
import pytest
from h2.settings import SettingCodes

import cno.raw
from cno.errors import ProtocolError, WouldBlock
from h1_pair import (
    AUTHORITY,
    CnoH1Peer,
    FrameLog,
    H2cClient,
    H2cServer,
    H11Peer,
    body_bytes,
    decode_h2_settings,
    h11_auto_respond,
    header_values,
    one_byte,
    parse_responses,
    pump,
    request_bytes,
    split_head,
    splitter,
    tokens,
)
from h2_pair import PREFACE, H2Peer, cno_auto_respond, h2_auto_respond, pseudo, response_headers

SETTINGS_FRAME = 4
SETTING_NAMES = {1: "header_table_size", 2: "enable_push", 3: "max_concurrent_streams",
                 4: "initial_window_size", 5: "max_frame_size", 6: "max_header_list_size",
                 8: "enable_connect_protocol"}


def upgrading_server(**attrs):
    srv = CnoH1Peer(server=True)
    srv.disallow_h2_upgrade = False
    for k, v in attrs.items():
        setattr(srv, k, v)
    return srv.start()


def upgrading_client():
    c = CnoH1Peer(server=False)
    c.disallow_h2_upgrade = False
    return c.start()


def test_defaults():
    c = cno.raw.Connection(server=True)
    assert c.disallow_h2_upgrade is True
    assert c.disallow_h2_prior_knowledge is False


# ----------------------------------------------------------------------------------------
# cno server, h2 client

def _serve(srv, size_of=lambda path: 5000):
    """cno server: answer each request with a body of size_of(path); record, at each
    head, whether the connection spoke HTTP/2 and the peer's settings."""
    srv.at_head = {}

    def head(p, s, code, method, path, headers):
        p.at_head[s] = (p.is_http2, dict(p.remote_settings))
    srv.handlers["head"] = head
    cno_auto_respond(srv, lambda p, r: (
        200, [("content-type", "text/plain"), ("x-path", r.path)],
        body_bytes(r.path, size_of(r.path)), None))


@pytest.mark.parametrize("split", [None, one_byte], ids=["whole", "one_byte"])
def test_h2c_upgrade_cno_server_h2_client(split):
    srv = upgrading_server()
    _serve(srv)
    cl = H2cClient(path="/first", settings={SettingCodes.INITIAL_WINDOW_SIZE: 1000,
                                            SettingCodes.MAX_HEADER_LIST_SIZE: 50_000,
                                            SettingCodes.ENABLE_PUSH: 0})
    pump(cl, srv, split=split)
    # The 101, written by cno in HTTP/1.1.
    assert cl.info is not None, "no 101: %r" % (cl.h1_response,)
    status_line, headers, after = split_head(srv.tx)
    assert status_line.startswith("HTTP/1.1 101 ")
    assert tokens(headers, "upgrade") == ["h2c"]
    assert "upgrade" in tokens(headers, "connection")
    assert header_values(headers, "content-length") == []
    assert tokens(headers, "transfer-encoding") == []
    # Then HTTP/2: the server's preface (a SETTINGS frame, not an ACK) comes first.
    log = FrameLog()
    log.feed(after)
    assert log.frames and log.frames[0].type == SETTINGS_FRAME and not log.frames[0].flags
    assert cl.upgraded and srv.is_http2
    # The upgraded request is stream 1, delivered after the switch, with the client's
    # HTTP2-Settings already applied.
    assert srv.at_head[1][0] is True
    rs = srv.at_head[1][1]
    assert rs["initial_window_size"] == 1000
    assert rs["max_header_list_size"] == 50_000
    req = srv.request_of(1)
    assert (req.method, req.path, req.body) == ("GET", "/first", b"")
    assert dict(req.headers)[":authority"] == AUTHORITY
    assert [h for h in req.headers if h[0] in ("http2-settings", "connection")] == []
    # h2 got the answer to stream 1 in HTTP/2 (a 5000-byte body through a 1000-byte
    # stream window: cno honoured the HTTP2-Settings).
    h = cl.h2
    (resp,) = h.of("response", 1)
    assert pseudo(resp[2]) == {":status": "200"}
    assert response_headers(resp[2]) == [("content-type", "text/plain"), ("x-path", "/first")]
    assert h.body(1) == body_bytes("/first", 5000)
    assert h.of("ended", 1)
    assert not h.of("reset") and not h.of("goaway")
    # A second request, on stream 3, in HTTP/2.
    upload = body_bytes("upload", 100_000)      # beyond the 65535 initial windows
    s = h.request("POST", "/second", [("content-length", "100000")], upload, scheme="http")
    assert s == 3
    pump(cl, srv, split=split)
    req = srv.request_of(3)
    assert (req.method, req.path, req.body) == ("POST", "/second", upload)
    assert h.body(3) == body_bytes("/second", 5000) and h.of("ended", 3)
    assert srv.end_of(1)[2] == 0 and srv.end_of(3)[2] == 0
    assert not srv.closed


def test_h2c_upgrade_cno_server_then_many_streams():
    srv = upgrading_server()
    _serve(srv, size_of=lambda path: int(path.rsplit("/", 1)[1]) * 997)
    cl = H2cClient(path="/0")
    pump(cl, srv)
    assert cl.upgraded
    streams = [cl.h2.request("GET", "/%d" % k, scheme="http") for k in range(1, 40)]
    pump(cl, srv, split=splitter(4, 3000))
    for k, s in enumerate(streams, 1):
        assert cl.h2.body(s) == body_bytes("/%d" % k, k * 997)
    assert [e[1] for e in srv.of("tail")] == [1] + streams


def test_h2c_upgrade_ignored_by_default_cno_server():
    srv = CnoH1Peer(server=True).start()          # disallow_h2_upgrade is True
    _serve(srv, size_of=lambda path: 10)
    cl = H2cClient(path="/x")
    pump(cl, srv)
    assert not cl.upgraded and cl.info is None
    assert cl.h1_response is not None and cl.h1_response[0] == 200
    assert bytes(cl.h1_body) == body_bytes("/x", 10)
    assert not srv.is_http2
    assert srv.at_head[1][0] is False


def test_h2c_upgrade_with_body_not_upgraded():
    """Only a request with no body is upgraded (docs/raw.md); this one is answered in
    HTTP/1.1."""
    srv = upgrading_server()
    _serve(srv, size_of=lambda path: 7)
    cl = H2cClient(method="POST", path="/post", body=b"payload")
    pump(cl, srv)
    assert not cl.upgraded and not srv.is_http2
    assert cl.h1_response[0] == 200 and bytes(cl.h1_body) == body_bytes("/post", 7)
    assert srv.request_of(1).body == b"payload"


@pytest.mark.parametrize("settings_lines", [0, 2], ids=["no-settings", "two-settings"])
def test_h2c_upgrade_needs_exactly_one_http2_settings(settings_lines):
    srv = upgrading_server()
    _serve(srv, size_of=lambda path: 3)
    value = H2cClient().settings_value.decode()
    headers = [("Host", AUTHORITY), ("Connection", "Upgrade, HTTP2-Settings"),
               ("Upgrade", "h2c")] + [("HTTP2-Settings", value)] * settings_lines
    srv.receive(request_bytes("GET", "/", headers))
    assert not srv.is_http2
    responses, _ = parse_responses(srv.outbound())
    assert [r.status for r in responses] == [200]
    assert responses[0].body == body_bytes("/", 3)


def test_h2c_upgrade_only_on_first_request():
    srv = upgrading_server()
    _serve(srv, size_of=lambda path: 3)
    cl = H2cClient(path="/second")
    srv.receive(request_bytes("GET", "/first", [("Host", AUTHORITY)]))
    srv.receive(cl.request_bytes)
    assert not srv.is_http2
    responses, _ = parse_responses(srv.outbound(), ["GET", "GET"])
    assert [r.status for r in responses] == [200, 200]


# ----------------------------------------------------------------------------------------
# cno client, h2 server

def check_upgrade_request(client, request):
    """cno's first request, as h11 parsed it, offers h2c with our settings."""
    headers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in request.headers]
    assert tokens(headers, "upgrade") == ["h2c"]
    conn = tokens(headers, "connection")
    assert "upgrade" in conn and "http2-settings" in conn
    values = header_values(headers, "http2-settings")
    assert len(values) == 1
    settings = decode_h2_settings(values[0])
    for ident, value in settings.items():
        if ident in SETTING_NAMES:
            assert client.local_settings[SETTING_NAMES[ident]] == value, (ident, settings)
    if 2 in settings:
        assert settings[2] == 0, "CnoPeer defines no on_message_push: enable_push=0"
    return headers


@pytest.mark.parametrize("respond_at_once", [True, False], ids=["at_once", "after_preface"])
@pytest.mark.parametrize("split", [None, one_byte], ids=["whole", "one_byte"])
def test_h2c_upgrade_cno_client_h2_server(respond_at_once, split):
    c = upgrading_client()
    first_body = body_bytes("first", 200_000)   # needs cno's WINDOW_UPDATEs on stream 1

    def on_request(sv):
        sv.accept()
        if respond_at_once:     # stream 1's response in the same write as the 101
            sv.h2.respond(1, 200, [("content-type", "text/plain")], first_body)

    sv = H2cServer(on_request=on_request)
    h2_auto_respond(sv.h2, lambda p, r: (200, [("x-path", r.path)], r.path.encode() * 3,
                                         [("x-trailer", "t")]))
    s = c.request("GET", "/first", [("x-a", "1")])
    assert s == 1
    out = c.outbound()
    head, _, rest = split_head(out)
    assert head == "GET /first HTTP/1.1" and rest == b""
    for piece in (split(out) if split else [out]):
        sv.receive(piece)
    assert sv.request is not None and sv.upgraded
    headers = check_upgrade_request(c, sv.request)
    assert header_values(headers, "host") == [AUTHORITY]
    assert header_values(headers, "x-a") == ["1"]
    pump(c, sv, split=split)
    if not respond_at_once:
        assert c.is_http2 and not c.of("head", 1)
        sv.h2.respond(1, 200, [("content-type", "text/plain")], first_body)
        pump(c, sv, split=split)
    # After the 101, cno wrote the client preface and SETTINGS.
    _, _, after = split_head(c.tx)
    assert after.startswith(PREFACE)
    log = FrameLog(preface=True)
    log.feed(after)
    assert log.frames[0].type == SETTINGS_FRAME and not log.frames[0].flags
    # Stream 1's response arrived as HTTP/2.
    assert c.is_http2
    assert [(e[2], e[5]) for e in c.of("head", 1)] == [(200, [("content-type", "text/plain")])]
    assert c.body(1) == first_body and c.of("tail", 1) == [("tail", 1, None)]
    assert c.end_of(1)[2] == 0
    assert not sv.h2.of("reset") and not sv.h2.of("goaway")
    # More requests, in HTTP/2.
    assert c.next_stream == 3
    s2 = c.request("POST", "/two", [("content-length", "4")], b"body")
    s3 = c.request("GET", "/three")
    assert (s2, s3) == (3, 5)
    pump(c, sv, split=split)
    assert sv.h2.request_of(3).body == b"body"
    assert c.response_of(3) == (200, [("x-path", "/two")], b"/two" * 3, [("x-trailer", "t")])
    assert c.response_of(5) == (200, [("x-path", "/three")], b"/three" * 3, [("x-trailer", "t")])


def test_h2c_upgrade_refused_cno_client_continues_http1():
    c = upgrading_client()
    sv = H11Peer(h11.SERVER)
    h11_auto_respond(sv, lambda p, n, m: (200, [("X-N", str(n))], b"h1 answer %d" % n, None,
                                          n == 1))
    s1 = c.request("GET", "/a")
    pump(c, sv)
    first = sv.message(0).head
    check_upgrade_request(c, h11.Request(method=first[2], target=first[3],
                                         headers=first[4]))
    assert not c.is_http2
    code, headers, body, trailers = c.response_of(s1)
    # (content-length: see test_h1_interop_h11.py::test_content_length_shown_*)
    assert (code, [h for h in headers if h[0] != "content-length"], body, trailers) == (
        200, [("x-n", "0")], b"h1 answer 0", None)
    s2 = c.request("POST", "/b", [], b"chunked up")
    pump(c, sv)
    second = sv.message(1)
    assert header_values(second.head[4], "upgrade") == []
    assert header_values(second.head[4], "http2-settings") == []
    assert second.body == b"chunked up"
    assert c.response_of(s2) == (200, [("x-n", "1")], b"h1 answer 1", None)
    assert not c.is_http2 and (s1, s2) == (1, 3)


def test_h2c_refused_by_h2c_server_in_http1():
    """The same refusal, from the H2cServer wrapper answering through its h11."""
    c = upgrading_client()

    def refuse(sv):
        for ev in (h11.Response(status_code=404, headers=[("Content-Length", "4")]),
                   h11.Data(data=b"nope"), h11.EndOfMessage()):
            sv._out += sv.h11.send(ev)
    sv = H2cServer(on_request=refuse)
    s = c.request("GET", "/")
    pump(c, sv)
    code, headers, body, trailers = c.response_of(s)
    assert (code, body, trailers) == (404, b"nope", None)
    assert not c.is_http2 and not c.closed


def test_h2c_not_offered_on_a_request_with_a_body():
    c = upgrading_client()
    sv = H11Peer(h11.SERVER)
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"", None, False))
    c.request("POST", "/", [("content-length", "3")], b"abc")
    c.request("GET", "/later")
    pump(c, sv)
    for n in (0, 1):
        assert header_values(sv.message(n).head[4], "upgrade") == []
        assert header_values(sv.message(n).head[4], "http2-settings") == []
    assert not c.is_http2


def test_h2c_not_offered_by_default_cno_client():
    c = CnoH1Peer(server=False).start()
    sv = H11Peer(h11.SERVER)
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"", None, False))
    c.request("GET", "/")
    pump(c, sv)
    headers = sv.message(0).head[4]
    assert header_values(headers, "upgrade") == []
    assert header_values(headers, "http2-settings") == []
    assert "upgrade" not in tokens(headers, "connection")


# ----------------------------------------------------------------------------------------
# Prior knowledge

@pytest.mark.parametrize("split", [None, one_byte], ids=["whole", "one_byte"])
def test_h2_prior_knowledge_on_http1_server(split):
    srv = CnoH1Peer(server=True).start()
    _serve(srv, size_of=lambda path: 20_000)
    cl = H2Peer(client_side=True).start()
    pump(cl, srv, split=split)
    assert srv.is_http2
    s = cl.request("GET", "/pk", scheme="http")
    pump(cl, srv, split=split)
    assert cl.body(s) == body_bytes("/pk", 20_000)
    assert srv.request_of(s).path == "/pk"
    assert srv.tx[:9][3] == SETTINGS_FRAME, "the server preface is a SETTINGS frame"


def test_h2_prior_knowledge_disallowed():
    srv = CnoH1Peer(server=True)
    srv.disallow_h2_prior_knowledge = True
    srv.start()
    with pytest.raises(ProtocolError):
        srv.receive(PREFACE)
    assert not srv.is_http2


def test_h2c_upgraded_server_answers_in_any_order():
    """After the switch, HTTP/1.1's in-order answering no longer applies."""
    srv = upgrading_server()
    cl = H2cClient(path="/one")
    pump(cl, srv)
    assert cl.upgraded and srv.is_http2 and srv.of("tail", 1)
    s3 = cl.h2.request("GET", "/three", scheme="http")
    pump(cl, srv)
    assert srv.of("tail", s3)
    srv.respond(s3, 200, [("content-length", "5")], b"three")
    srv.respond(1, 200, [("content-length", "3")], b"one")
    pump(cl, srv)
    assert cl.h2.body(3) == b"three" and cl.h2.body(1) == b"one"
    assert cl.h2.of("ended", 1) and cl.h2.of("ended", 3)


def test_h2c_request_pipelined_behind_upgrade_cno_client():
    """A second request written while the h2c upgrade is pending must not go out as
    HTTP/1.1 behind it: if the server switches, it reads HTTP/2 next (RFC 7540 3.2: the
    client's next bytes are the connection preface). The engine may refuse it
    (WouldBlock) until the answer to the upgrade is known, or hold it and send it as
    HTTP/2; either way both requests get their answers."""
    c = upgrading_client()

    def on_request(sv):
        sv.accept()
        sv.h2.respond(1, 200, [("content-length", "3")], b"one")
    sv = H2cServer(on_request=on_request)
    h2_auto_respond(sv.h2, lambda p, r: (200, [], r.path.encode(), None))
    c.request("GET", "/1")
    try:
        s2 = c.request("GET", "/2")
    except WouldBlock:
        s2 = None
    pump(c, sv)
    assert c.is_http2 and c.body(1) == b"one"
    if s2 is None:
        s2 = c.request("GET", "/2")
        pump(c, sv)
    assert c.response_of(s2)[2] == b"/2"
