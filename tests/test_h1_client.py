"""cno.raw.Connection as an HTTP/1.1 client (RFC 9112, RFC 9110), against docs/raw.md's
"HTTP/1.1" section: writing requests, reading responses (lengths, 1xx, HEAD/204/304,
close-delimited bodies), pipelining, tunnels."""
import pytest

import cno.raw as raw
from cno import errors
from h1_util import (
    CLIENT_HEADERS, chunked, client, connection_tokens, field_values, h11_requests,
    merge_data, names, regular, response, send_request, split_head,
)


def resp_heads(c, stream=None):
    return [(h[1], h[2]) for h in c.heads(stream)]


# ---------------------------------------------------------------------------------------------
# Writing requests: RFC 9112 3 (request line), 3.2 (Host), 6 (framing)

def test_request_line_and_host():
    # RFC 9112 3: request-line = method SP request-target SP HTTP-version; 3.2: Host carries
    # :authority and SHOULD be the first field line; other pseudo-headers are not written.
    c = client()
    assert c.next_stream == 1
    c.write_head(1, 0, "GET", "/path?q=1",
                 [(":scheme", "http"), (":authority", "example.com:8080"),
                  ("accept", "*/*"), ("user-agent", "cno-test")], True)
    assert c.of("start") == [("start", 1)]
    assert c.next_stream == 3
    line, fields, rest = split_head(c.take())
    assert line == "GET /path?q=1 HTTP/1.1"
    assert fields[0][0].lower() == "host" and fields[0][1] == "example.com:8080", fields
    assert not [k for k, _ in fields if k.startswith(":")], fields
    assert ("accept", "*/*") in fields and ("user-agent", "cno-test") in fields
    # RFC 9110 8.6: no Content-Length (nor chunked) on a GET without content
    assert not field_values(fields, "content-length")
    assert not field_values(fields, "transfer-encoding")
    assert rest == b""


def test_request_parses_with_h11():
    c = client()
    send_request(c, "GET", "/a/b?c=d", [("x-a", "1")])
    (m,) = h11_requests(c.take())
    assert (m.method, m.target, m.body) == ("GET", "/a/b?c=d", b"")
    assert ("host", "example.com") in m.headers and ("x-a", "1") in m.headers


def test_post_without_length_is_chunked():
    # RFC 9112 6.1 / 7.1: a body of unknown length to an HTTP/1.1 server is sent chunked.
    c = client()
    sid = send_request(c, "POST", "/upload", [("content-type", "text/plain")], final=False)
    assert c.write_data(sid, b"abc", False) == 3
    assert c.write_data(sid, b"de", True) == 2
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert field_values(fields, "transfer-encoding") == ["chunked"]
    assert rest.endswith(b"0\r\n\r\n")
    (m,) = h11_requests(wire)
    assert (m.method, m.target, m.body) == ("POST", "/upload", b"abcde")


def test_post_with_content_length_raw():
    # RFC 9112 6.2: with Content-Length, the body is the raw octets.
    c = client()
    sid = send_request(c, "POST", "/", [("content-length", "5")], final=False)
    assert c.write_data(sid, b"hel", False) == 3
    assert c.write_data(sid, b"lo", True) == 2
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert field_values(fields, "content-length") == ["5"]
    assert not field_values(fields, "transfer-encoding")
    assert rest == b"hello"
    (m,) = h11_requests(wire)
    assert m.body == b"hello"


def test_request_trailers_when_chunked():
    # RFC 9112 7.1.2: the trailer section follows the last chunk.
    c = client()
    sid = send_request(c, "POST", "/", [("trailer", "x-sum")], final=False)
    c.write_data(sid, b"abc", False)
    c.write_tail(sid, [("x-sum", "6")])
    wire = c.take()
    assert wire.endswith(b"0\r\nx-sum: 6\r\n\r\n"), wire
    (m,) = h11_requests(wire)
    assert m.body == b"abc" and m.trailers == [("x-sum", "6")]


# ---------------------------------------------------------------------------------------------
# Reading responses: RFC 9112 6.3

def test_response_content_length():
    # RFC 9112 6.3 (6)
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Content-Length", "5"), ("Content-Type", "text/plain")],
                    b"hello"))
    (h,) = c.heads(1)
    assert h[:5] == ("head", 1, 200, "", "")
    assert regular(h[5]) == [("content-length", "5"), ("content-type", "text/plain")]
    assert c.body(1) == b"hello"
    assert c.of("tail") == [("tail", 1, None)]
    assert [e[:3] for e in c.of("end")] == [("end", 1, 0)]


def test_response_chunked_with_trailers():
    # RFC 9112 7.1, 7.1.1 (extensions ignored), 7.1.2 (trailers)
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Transfer-Encoding", "chunked")],
                    b"3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nX-Sum: 5\r\n\r\n"))
    (h,) = c.heads(1)
    assert "transfer-encoding" not in names(h[5])
    assert c.body(1) == b"abcde"
    assert c.of("tail") == [("tail", 1, [("x-sum", "5")])]


def test_response_close_delimited():
    # RFC 9112 6.3 (8): a response with neither Content-Length nor Transfer-Encoding is read
    # until the connection closes (docs/raw.md: on_message_tail then).
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Content-Type", "text/plain")], b"abc"))
    c.feed(b"def")
    assert c.body(1) == b"abcdef"
    assert not c.of("tail")
    c.connection_lost()
    assert c.of("tail") == [("tail", 1, None)]
    assert c.of("close") == [("close",)]
    assert c.events.index(("tail", 1, None)) < c.events.index(("close",))
    assert [e[2] for e in c.of("end", 1)] == [0], c.events


def test_response_transfer_encoding_not_chunked_is_close_delimited():
    # RFC 9112 6.3 (4): in a response whose Transfer-Encoding does not end in chunked, the
    # body is read until the server closes the connection.
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Transfer-Encoding", "gzip")], b"\x1f\x8b123"))
    assert c.body(1) == b"\x1f\x8b123"
    assert not c.of("tail")
    c.connection_lost()
    assert c.of("tail") == [("tail", 1, None)]


def test_head_response_no_body_even_with_content_length():
    # RFC 9112 6.3 (1): a response to HEAD ends at the empty line whatever its fields say.
    c = client()
    send_request(c, "HEAD", "/")
    send_request(c, "GET", "/next")
    c.feed(response(200, "OK", [("Content-Length", "5")]) +
           response(200, "OK", [("Content-Length", "3")], b"abc"))
    assert resp_heads(c) == [(1, 200), (3, 200)]
    assert c.body(1) == b"" and c.body(3) == b"abc"
    assert [e[1] for e in c.of("tail")] == [1, 3]


@pytest.mark.parametrize("code,reason", [(204, "No Content"), (304, "Not Modified")])
def test_204_304_no_body_even_with_content_length(code, reason):
    # RFC 9112 6.3 (1): 1xx, 204 and 304 responses cannot contain a body.
    c = client()
    send_request(c)
    send_request(c, "GET", "/next")
    c.feed(response(code, reason, [("Content-Length", "5")]) +
           response(200, "OK", [("Content-Length", "3")], b"abc"))
    assert resp_heads(c) == [(1, code), (3, 200)]
    assert c.body(1) == b"" and c.body(3) == b"abc"
    assert [e[1] for e in c.of("tail")] == [1, 3]


def test_1xx_then_final():
    # RFC 9110 15.2: a client MUST be able to parse one or more 1xx responses before the final
    # one; docs/raw.md: on_message_head fires once per 1xx; a 1xx never completes a request.
    c = client()
    sid = send_request(c, "POST", "/", [("content-length", "2"), ("expect", "100-continue")],
                       final=False)
    c.feed(response(100, "Continue"))
    assert resp_heads(c) == [(1, 100)]
    assert not c.of("tail") and not c.of("end")
    c.write_data(sid, b"ok", True)
    c.feed(response(103, "Early Hints", [("Link", "</a.css>; rel=preload")]))
    assert resp_heads(c) == [(1, 100), (1, 103)]
    assert regular(c.heads()[1][5]) == [("link", "</a.css>; rel=preload")]
    assert not c.of("tail") and not c.of("end")
    c.feed(response(200, "OK", [("Content-Length", "4")], b"done"))
    assert resp_heads(c) == [(1, 100), (1, 103), (1, 200)]
    assert c.body(1) == b"done"
    assert c.of("tail") == [("tail", 1, None)]
    assert [e[:3] for e in c.of("end")] == [("end", 1, 0)]


def test_1xx_all_in_one_read():
    c = client()
    send_request(c)
    c.feed(response(100, "Continue") + response(102, "Processing") +
           response(103, "Early Hints", [("Link", "</x>")]) +
           response(200, "OK", [("Content-Length", "0")]))
    assert resp_heads(c) == [(1, 100), (1, 102), (1, 103), (1, 200)]
    assert c.of("tail") == [("tail", 1, None)]


def test_response_header_names_lowercased_connection_consumed():
    # RFC 9110 5.1 (case-insensitive names); docs/raw.md: connection/keep-alive consumed.
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Content-Length", "0"), ("X-Thing", "A B"),
                                ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5")]))
    (h,) = c.heads(1)
    assert regular(h[5]) == [("content-length", "0"), ("x-thing", "A B")]
    assert not c.of("close")


def test_pipelined_responses_matched_in_order():
    # RFC 9112 9.3.2: responses come in the order of the requests.
    c = client()
    ids = [send_request(c, "GET", "/%d" % i) for i in range(3)]
    assert ids == [1, 3, 5]
    wire = c.take()
    assert [m.target for m in h11_requests(wire)] == ["/0", "/1", "/2"]
    c.feed(response(200, "OK", [("Content-Length", "2")], b"r0") +
           response(404, "Not Found", [("Content-Length", "2")], b"r1") +
           response(200, "OK", [("Transfer-Encoding", "chunked")], chunked(b"r2")))
    assert resp_heads(c) == [(1, 200), (3, 404), (5, 200)]
    assert [c.body(s) for s in ids] == [b"r0", b"r1", b"r2"]
    assert [e[1] for e in c.of("tail")] == ids


def test_new_request_would_block_until_body_complete():
    # docs/raw.md: a client may send a request once the previous request's body is complete.
    c = client()
    sid = send_request(c, "POST", "/", final=False)
    c.write_data(sid, b"part", False)
    with pytest.raises(errors.WouldBlock):
        send_request(c, "GET", "/next")
    c.write_data(sid, b"", True)
    assert send_request(c, "GET", "/next") == 3
    ms = h11_requests(c.take())
    assert [(m.method, m.target, m.body) for m in ms] == [("POST", "/", b"part"),
                                                        ("GET", "/next", b"")]


def test_connection_close_in_response():
    # RFC 9112 9.6: a client that receives "close" MUST stop sending requests on it; docs/raw.md:
    # on_close once the exchange is done.
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Connection", "close"), ("Content-Length", "3")], b"a"))
    assert not c.of("close")
    c.feed(b"bc")
    assert c.of("tail") == [("tail", 1, None)]
    assert c.of("close") == [("close",)]
    with pytest.raises(errors.CnoError):
        send_request(c, "GET", "/more")


def test_connection_close_in_our_request():
    # RFC 9112 9.6: a client that sends "close" MUST NOT send further requests; the connection
    # closes after the response (docs/raw.md).
    c = client()
    send_request(c, extra=[("connection", "close")])
    _, fields, _ = split_head(c.take())
    assert "close" in connection_tokens(fields)
    c.feed(response(200, "OK", [("Content-Length", "1")], b"x"))
    assert c.of("close") == [("close",)]


def test_http10_response_closes():
    # RFC 9112 9.3: an HTTP/1.0 response without keep-alive is not persistent.
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Content-Length", "2")], b"ok", version="HTTP/1.0"))
    assert c.body(1) == b"ok"
    assert c.of("tail") == [("tail", 1, None)]
    assert c.of("close") == [("close",)]


def test_response_with_conflicting_lengths_is_error():
    # RFC 9112 6.3 (5): a user agent that receives a response with an invalid Content-Length
    # MUST close the connection and discard the response.
    c = client()
    send_request(c)
    with pytest.raises(errors.ProtocolError):
        c.data_received(response(200, "OK", [("Content-Length", "5"),
                                             ("Content-Length", "6")], b"hello!"))
    assert c.closed
    assert not c.of("tail")


def test_response_body_delivered_incrementally():
    c = client()
    send_request(c)
    c.feed(response(200, "OK", [("Content-Length", "6")], b"ab"))
    assert c.of("data") == [("data", 1, b"ab")]
    assert merge_data(c.feed(b"cd")) == [("data", 1, b"cd")]
    assert ("tail", 1, None) in c.feed(b"ef")


# ---------------------------------------------------------------------------------------------
# Tunnels: RFC 9110 7.8 (Upgrade), 9.3.6 (CONNECT)

WS_HEADERS = [("upgrade", "websocket"), ("connection", "upgrade"),
              ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="), ("sec-websocket-version", "13")]
WS_101 = response(101, "Switching Protocols", [("Upgrade", "websocket"), ("Connection", "Upgrade")])


def test_101_to_upgrade_request_tunnel():
    # RFC 9110 7.8 / 15.2.2: after 101 the connection speaks the new protocol (docs/raw.md:
    # later bytes arrive as on_message_data, write_data sends raw bytes). The request itself
    # has no content, so it is written final.
    c = client()
    sid = send_request(c, "GET", "/chat", WS_HEADERS, final=True)
    _, fields, rest = split_head(c.take())
    assert field_values(fields, "upgrade") == ["websocket"]
    # RFC 9110 7.8: a sender of Upgrade MUST also send the "upgrade" connection option
    assert "upgrade" in connection_tokens(fields)
    assert rest == b""
    c.feed(WS_101 + b"\x81\x05hello")
    assert resp_heads(c) == [(1, 101)]
    assert c.body(1) == b"\x81\x05hello"
    c.feed(b"HTTP/1.1 200 OK\r\n\r\n")  # not a response any more: tunnel bytes
    assert c.body(1) == b"\x81\x05helloHTTP/1.1 200 OK\r\n\r\n"
    assert len(c.heads()) == 1
    assert c.write_data(sid, b"\x81\x03abc", False) == 5
    assert c.take() == b"\x81\x03abc"
    c.write_data(sid, b"", True)
    assert c.of("close") == [("close",)]


def test_101_tunnel_raw_after_not_final_upgrade_request():
    # docs/raw.md: after a 101 to its Upgrade request, a client's write_data "sends raw
    # bytes"; that holds whether or not the request head was written final.
    c = client()
    sid = send_request(c, "GET", "/chat", WS_HEADERS, final=False)
    c.take()
    c.feed(WS_101)
    assert resp_heads(c) == [(1, 101)]
    c.write_data(sid, b"\x81\x03abc", False)
    assert c.take() == b"\x81\x03abc"


def test_upgrade_request_not_chunked():
    # RFC 9110 7.8: the server switches only after reading the request's content, so a
    # not-final Upgrade request must not announce a chunked body (assumption: docs/raw.md's
    # "not final -> chunked" does not apply to Upgrade requests, as in libcno, which wrote
    # chunked only for messages with neither content-length nor upgrade).
    c = client()
    send_request(c, "GET", "/chat", WS_HEADERS, final=False)
    _, fields, rest = split_head(c.take())
    assert not field_values(fields, "transfer-encoding")
    assert rest == b""


def test_2xx_to_connect_tunnel():
    # RFC 9110 9.3.6: CONNECT has no content; after a 2xx the connection is a tunnel.
    c = client()
    sid = c.next_stream
    c.write_head(sid, 0, "CONNECT", "example.com:443", [(":authority", "example.com:443")],
                 False)
    line, fields, rest = split_head(c.take())
    assert line == "CONNECT example.com:443 HTTP/1.1"
    assert field_values(fields, "host") == ["example.com:443"]
    assert not field_values(fields, "transfer-encoding")
    assert not field_values(fields, "content-length")
    c.feed(response(200, "Connection Established") + b"\x16\x03\x01server-hello")
    assert resp_heads(c) == [(1, 200)]
    assert c.body(1) == b"\x16\x03\x01server-hello"
    assert c.write_data(sid, b"client-bytes", False) == len(b"client-bytes")
    assert c.take() == b"client-bytes"
    c.feed(b"GET / HTTP/1.1\r\n\r\n")
    assert len(c.heads()) == 1
    assert c.body(1).endswith(b"GET / HTTP/1.1\r\n\r\n")


def test_non_2xx_to_connect_not_a_tunnel():
    # RFC 9110 9.3.6: any other response is an ordinary response; the connection stays HTTP.
    c = client()
    c.write_head(1, 0, "CONNECT", "example.com:443", [(":authority", "example.com:443")],
                 False)
    c.feed(response(407, "Proxy Authentication Required", [("Content-Length", "4")], b"auth"))
    assert resp_heads(c) == [(1, 407)]
    assert c.body(1) == b"auth"
    assert c.of("tail") == [("tail", 1, None)]


# ---------------------------------------------------------------------------------------------
# Incomplete and malformed responses; request-line and Host rules when writing

@pytest.mark.parametrize("resp", [
    response(200, "OK", [("Content-Length", "10")], b"abc"),
    response(200, "OK", [("Transfer-Encoding", "chunked")], b"5\r\nabc"),
    response(200, "OK", [("Transfer-Encoding", "chunked")], b"3\r\nabc\r\n"),
])
def test_incomplete_response_at_eof(resp):
    # RFC 9112 8: a response cut short (fewer octets than Content-Length, or no last chunk) is
    # incomplete: it must not look complete (no on_message_tail; the stream ends abnormally).
    c = client()
    send_request(c)
    c.feed(resp)
    c.connection_lost()
    assert c.body(1) == b"abc"
    assert not c.of("tail")
    assert [e[2] for e in c.of("end", 1)] == [raw.CNO_RST_CANCEL]


@pytest.mark.parametrize("line", [b"HTTP/1.1 200", b"HTTP/1.1 200 ", b"HTTP/1.1 200 Whatever"])
def test_status_line_reason_optional(line):
    # RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]; a client
    # SHOULD ignore the reason-phrase (and tolerate its absence).
    c = client()
    send_request(c)
    c.feed(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert resp_heads(c) == [(1, 200)]


@pytest.mark.parametrize("line", [b"HTTP/1.1 2000 OK", b"HTTP/1.1 20 OK", b"ICY 200 OK",
                                  b"HTTP/1.1 abc OK", b"HTTP/1.1 099 Low"])
def test_malformed_status_line(line):
    # RFC 9112 4: status-code = 3DIGIT (100-599 in RFC 9110 15).
    c = client()
    send_request(c)
    with pytest.raises(errors.ProtocolError):
        c.data_received(line + b"\r\nContent-Length: 0\r\n\r\n")
    assert c.closed
    assert not c.heads()


def test_unsolicited_response_is_error():
    # RFC 9112 9.3.2 / 9.1: responses answer requests in order; one with no request pending
    # cannot be matched.
    c = client()
    with pytest.raises(errors.ProtocolError):
        c.data_received(response(200, "OK", [("Content-Length", "0")]))
    assert not c.heads()


@pytest.mark.parametrize("method,path", [("GET", "/a\r\nx-injected: 1"), ("GET", "/a b"),
                                         ("GET\r\nX: y", "/"), ("", "/")])
def test_request_line_injection_refused(method, path):
    # RFC 9112 3: request-line = method SP request-target SP HTTP-version CRLF; method is a
    # token, request-target has no whitespace or CTL. A path or method that breaks the line
    # would let a caller split requests (the field values are already checked: UsageError).
    c = client()
    with pytest.raises(errors.UsageError):
        c.write_head(1, 0, method, path, CLIENT_HEADERS, True)
    assert c.take() == b""


def test_header_value_injection_refused():
    # RFC 9110 5.5: no CR/LF/NUL in field values (docs/raw.md: UsageError).
    c = client()
    with pytest.raises(errors.UsageError):
        send_request(c, extra=[("x-a", "1\r\ntransfer-encoding: chunked")])
    assert c.take() == b""


def test_authority_injection_refused():
    # :authority becomes the Host field value: the same rule applies (RFC 9110 5.5, 7.2).
    c = client()
    with pytest.raises(errors.UsageError):
        send_request(c, authority="example.com\r\nx-injected: 1")
    assert c.take() == b""


def test_refused_request_does_not_use_a_stream_id():
    # docs/raw.md: exchanges are streams 1, 3, 5, ... "in the order the requests are sent";
    # a write_head that raised sent nothing, so the next request is still stream 1 (else the
    # client's ids and the server's, counted from the requests it receives, disagree).
    c = client()
    with pytest.raises(errors.UsageError):
        send_request(c, extra=[("x-a", "bad\r\nvalue")])
    assert c.next_stream == 1
    assert send_request(c) == 1


def test_empty_path_written_as_slash_or_refused():
    # RFC 9112 3.2.1: "If the target URI's path component is empty, the client MUST send "/"
    # as the path within the origin-form".
    c = client()
    try:
        c.write_head(1, 0, "GET", "", CLIENT_HEADERS, True)
    except errors.UsageError:
        assert c.take() == b""
        return
    line, _, _ = split_head(c.take())
    assert line == "GET / HTTP/1.1"


def test_host_always_sent():
    # RFC 9112 3.2: "A client MUST send a Host header field in all HTTP/1.1 request messages"
    # (docs/raw.md: a client's headers must hold :authority): refuse, or write a Host.
    c = client()
    try:
        c.write_head(1, 0, "GET", "/", [(":scheme", "http")], True)
    except errors.UsageError:
        assert c.take() == b""
        return
    _, fields, _ = split_head(c.take())
    assert len(field_values(fields, "host")) == 1, fields


def test_never_two_host_fields():
    # RFC 9112 3.2: a request with more than one Host field line is answered 400; the engine
    # writes Host from :authority, so a "host" header passed as well is refused or merged.
    c = client()
    try:
        send_request(c, extra=[("host", "other.example")])
    except errors.UsageError:
        assert c.take() == b""
        return
    _, fields, _ = split_head(c.take())
    assert len(field_values(fields, "host")) == 1, fields


@pytest.mark.parametrize("first", [b"\x15\x03\x03\x00\x02\x02\x46", b"SSH-2.0", b"<html>",
                                   b"\x00\x00\x12\x04\x00"])
def test_response_that_cannot_be_http1_error_at_once(first):
    # RFC 9112 4: status-line = HTTP-version SP ...; HTTP-version starts with "HTTP/". A peer
    # answering in another protocol (a TLS alert, SSH banner, HTTP/2 frames) is an error on its
    # first bytes, not after a timeout.
    c = client()
    send_request(c)
    with pytest.raises(errors.ProtocolError):
        c.data_received(first)
    assert c.closed


@pytest.mark.parametrize("first", [b"H", b"HTTP", b"HTTP/1.1 2"])
def test_response_prefix_waits(first):
    c = client()
    send_request(c)
    c.data_received(first)
    assert not c.closed
