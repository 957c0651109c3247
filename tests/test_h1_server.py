"""cno.raw.Connection as an HTTP/1.1 server (RFC 9112, RFC 9110), against docs/raw.md's
"HTTP/1.1" section: parsing requests, writing responses, keep-alive, pipelining, limits."""
import pytest

import cno.raw as raw
from cno import errors
from h1_util import (
    SMUGGLED, answer, chunked, connection_tokens, expect_error, field_values, get,
    h11_responses, merge_data, names, pseudo, regular, request, server, split_head,
)


def only_head(c, stream=1):
    hs = c.heads(stream)
    assert len(hs) == 1, c.events
    return hs[0]


def rejected(data, status, strict_response=True, **attrs):
    """A fresh server rejects ``data`` (a SMUGGLED request right after it is never parsed) with
    ProtocolError(status); it wrote that response itself with connection: close
    (docs/raw.md Errors: no earlier response was owed). With ``strict_response`` False (errors
    found in a body, after the head was delivered) the response is checked only if written."""
    c = server(**attrs)
    e = expect_error(c, data, status)
    wire = c.take()
    if strict_response or wire:
        assert wire, "no %s response written for %r" % (e.status, data)
        (msgs,) = h11_responses(wire, ["GET"], eof=True)
        assert msgs[-1].code == e.status, (wire, e)
        assert "close" in connection_tokens(msgs[-1].headers), wire
    return c, e


# ---------------------------------------------------------------------------------------------
# RFC 9112 3.2: request-target forms; Host becomes :authority

def test_origin_form():
    # RFC 9112 3.2.1: origin-form (absolute-path [ "?" query ]) and Host -> :authority.
    c = server()
    ev = c.feed(b"GET /where?q=now HTTP/1.1\r\nHost: www.example.org\r\nAccept: */*\r\n\r\n")
    assert ev[0] == ("start", 1), ev
    _, sid, code, method, path, hs = only_head(c)
    assert (sid, code, method, path) == (1, 0, "GET", "/where?q=now")
    assert pseudo(hs) == {":scheme": "http", ":authority": "www.example.org"}
    # docs/raw.md: :scheme and :authority at the front, Host removed
    assert {hs[0][0], hs[1][0]} == {":scheme", ":authority"}, hs
    assert regular(hs) == [("accept", "*/*")]
    assert c.of("tail", 1) == [("tail", 1, None)]


def test_scheme_attribute():
    # docs/raw.md: :scheme is the ``scheme`` attribute (default "http").
    c = server(scheme="https")
    c.feed(get())
    assert pseudo(only_head(c)[5])[":scheme"] == "https"


def test_absolute_form_authority_from_target():
    # RFC 9112 3.2.2: with an absolute-form target the server MUST ignore Host and use the
    # target's authority.
    c = server()
    c.feed(request("GET", "http://www.example.org/pub/WWW/TheProject.html?x=1",
                   [("Host", "other.example")]))
    _, _, _, method, path, hs = only_head(c)
    assert method == "GET"
    assert pseudo(hs)[":authority"] == "www.example.org"
    # assumption: the path is given in origin-form (as in HTTP/2), or kept whole
    assert path in ("/pub/WWW/TheProject.html?x=1",
                    "http://www.example.org/pub/WWW/TheProject.html?x=1"), path
    assert "host" not in names(hs)


def test_authority_form_connect():
    # RFC 9112 3.2.3: authority-form, only for CONNECT.
    c = server()
    c.feed(request("CONNECT", "www.example.com:80", [("Host", "www.example.com:80")]))
    _, _, _, method, path, hs = only_head(c)
    assert method == "CONNECT"
    assert pseudo(hs)[":authority"] == "www.example.com:80"
    assert path in ("www.example.com:80", ""), path


def test_asterisk_form_options():
    # RFC 9112 3.2.4: asterisk-form "*", only for a server-wide OPTIONS.
    c = server()
    c.feed(request("OPTIONS", "*", [("Host", "www.example.org:8001")]))
    _, _, _, method, path, hs = only_head(c)
    assert (method, path) == ("OPTIONS", "*")
    assert pseudo(hs)[":authority"] == "www.example.org:8001"


def test_leading_empty_lines_ignored():
    # RFC 9112 2.2: a server SHOULD ignore at least one empty line (CRLF) received prior to
    # the request-line.
    c = server()
    c.feed(b"\r\n" + get("/a"))
    answer(c, 1)
    c.feed(b"\r\n" + get("/b"))
    assert [h[4] for h in c.heads()] == ["/a", "/b"]


def test_bare_lf_line_endings_accepted():
    # RFC 9112 2.2: a recipient MAY recognize a single LF as a line terminator (docs/raw.md:
    # a bare LF ending a head line is accepted).
    c = server()
    c.feed(b"GET /lf HTTP/1.1\nHost: example.com\nX-A: 1\n\n")
    _, _, _, method, path, hs = only_head(c)
    assert (method, path) == ("GET", "/lf")
    assert regular(hs) == [("x-a", "1")]


def test_missing_host_http11_is_400():
    # RFC 9112 3.2: a server MUST respond 400 to an HTTP/1.1 request that lacks Host.
    rejected(b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", 400)


@pytest.mark.parametrize("second", ["other.example", "example.com"])
def test_two_host_headers_is_400(second):
    # RFC 9112 3.2: ... and to any request with more than one Host field line.
    rejected(request(headers=[("Host", "example.com"), ("Host", second)]), 400)


def test_http10_without_host_is_fine():
    # RFC 9112 3.2: only HTTP/1.1 requests must carry Host.
    c = server()
    c.feed(b"GET /old HTTP/1.0\r\nAccept: */*\r\n\r\n")
    _, _, _, method, path, hs = only_head(c)
    assert (method, path) == ("GET", "/old")
    assert "host" not in names(hs)


# ---------------------------------------------------------------------------------------------
# RFC 9112 5, RFC 9110 5: field lines

def test_header_names_lowercased_values_kept():
    # RFC 9110 5.1: field names are case-insensitive (docs/raw.md: delivered lower-cased);
    # values are not changed.
    c = server()
    c.feed(request(headers=[("HOST", "example.com"), ("X-Custom-Header", "MiXeD Value"),
                            ("aCCept", "text/HTML")]))
    hs = only_head(c)[5]
    assert regular(hs) == [("x-custom-header", "MiXeD Value"), ("accept", "text/HTML")]
    assert pseudo(hs)[":authority"] == "example.com"


@pytest.mark.parametrize("name", [b"Bad Name", b"bad@name", b"bad(name)", b"bad\x01name",
                                  b"bad\"name", b"", b"bad/name"])
def test_field_name_must_be_token(name):
    # RFC 9110 5.1: field-name = token (RFC 9110 5.6.2: tchar); RFC 9112 5 / 3: invalid field
    # lines make the request invalid: 400.
    rejected(b"GET / HTTP/1.1\r\nHost: example.com\r\n" + name + b": x\r\n\r\n", 400)


@pytest.mark.parametrize("line", [b"X-Foo : bar", b"X-Foo\t: bar", b"Host : example.com"])
def test_whitespace_before_colon_is_400(line):
    # RFC 9112 5.1: a server MUST reject, with 400, any request message that contains
    # whitespace between a header field name and colon.
    head = b"GET / HTTP/1.1\r\n"
    if not line.startswith(b"Host"):
        head += b"Host: example.com\r\n"
    rejected(head + line + b"\r\n\r\n", 400)


@pytest.mark.parametrize("fold", [b" continued", b"\tcontinued"])
def test_obs_fold_is_400(fold):
    # RFC 9112 5.2: a server that receives obs-fold in a request MUST either reject it with
    # 400 or replace it with SP (docs/raw.md: an error).
    rejected(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Folded: first\r\n" + fold +
             b"\r\n\r\n", 400)


@pytest.mark.parametrize("value", [b"a\rb", b"a\x00b", b"a\nb", b"\r"])
def test_cr_lf_nul_in_value_is_400(value):
    # RFC 9110 5.5: a recipient of CR, LF or NUL within a field value MUST either reject the
    # message or replace them with SP (we expect a rejection).
    rejected(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Bad: " + value + b"\r\n\r\n", 400)


def test_htab_and_obs_text_inside_value_ok():
    # RFC 9110 5.5: field-content allows HTAB between visible characters, and obs-text.
    c = server()
    c.feed(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Tab: a\tb\t\tc\r\nX-Latin: caf\xe9\r\n\r\n")
    assert regular(only_head(c)[5]) == [("x-tab", "a\tb\t\tc"), ("x-latin", "caf\xe9")]


def test_ows_trimmed():
    # RFC 9112 5.1: field-line = field-name ":" OWS field-value OWS; the OWS is not part of
    # the value.
    c = server()
    c.feed(b"GET / HTTP/1.1\r\nHost:   example.com \t\r\nX-A:\t \tvalue with  inner \t\r\n"
           b"X-Empty:\r\nX-Spaces:    \r\n\r\n")
    hs = only_head(c)[5]
    assert pseudo(hs)[":authority"] == "example.com"
    assert regular(hs) == [("x-a", "value with  inner"), ("x-empty", ""), ("x-spaces", "")]


def test_bytes_headers():
    # docs/raw.md: bytes_headers delivers names, values, method and path as bytes.
    c = server(bytes_headers=True)
    c.feed(request("POST", "/b", [("Host", "example.com"), ("X-A", "1"),
                                  ("Content-Length", "0")]))
    _, _, _, method, path, hs = only_head(c)
    assert (method, path) == (b"POST", b"/b")
    assert all(type(k) is bytes and type(v) is bytes for k, v, *_ in hs), hs
    assert (b"x-a", b"1") in [tuple(h[:2]) for h in hs]


def test_connection_headers_consumed():
    # docs/raw.md: connection, keep-alive, proxy-connection are consumed by the engine
    # (RFC 9110 7.6.1: connection options are hop-by-hop).
    c = server()
    c.feed(request(headers=[("Host", "example.com"), ("Connection", "keep-alive"),
                            ("Keep-Alive", "timeout=5"), ("Proxy-Connection", "keep-alive"),
                            ("X-Kept", "1")]))
    assert regular(only_head(c)[5]) == [("x-kept", "1")]


# ---------------------------------------------------------------------------------------------
# RFC 9112 6: message body

def test_content_length_body():
    # RFC 9112 6.3 (6): Content-Length gives the body length in octets.
    c = server()
    c.feed(request("POST", "/up", [("Host", "example.com"), ("Content-Length", "11")],
                   b"hello world"))
    hs = only_head(c)[5]
    assert field_values(regular(hs), "content-length") == ["11"]
    assert c.body(1) == b"hello world"
    assert c.of("tail") == [("tail", 1, None)]
    kinds = [e[0] for e in c.events if e[0] in ("head", "data", "tail")]
    assert kinds[0] == "head" and kinds[-1] == "tail"


def test_content_length_zero_no_data():
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Content-Length", "0")]))
    assert c.body() == b""
    assert c.of("tail") == [("tail", 1, None)]


def test_request_without_length_has_no_body():
    # RFC 9112 6.3 (7): a request with neither Content-Length nor Transfer-Encoding has a
    # body of length zero; the next bytes are the next request.
    c = server()
    c.feed(get("/a") + get("/b"))
    assert [h[4] for h in c.heads()] == ["/a", "/b"]
    assert c.body() == b""


def test_chunked_body_extensions_and_trailers():
    # RFC 9112 7.1: chunked coding; 7.1.1: unrecognized chunk extensions are ignored;
    # 7.1.2: trailer fields (docs/raw.md: delivered to on_message_tail).
    c = server()
    body = (b"5;name=value\r\nhello\r\n6;a;b=\"q d\"\r\n world\r\n0;last=1\r\n"
            b"X-Trailer: yes\r\nX-Other: 2\r\n\r\n")
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                   body))
    hs = only_head(c)[5]
    assert "transfer-encoding" not in names(hs)  # only "chunked": consumed (docs/raw.md)
    assert c.body(1) == b"hello world"
    assert c.of("tail") == [("tail", 1, [("x-trailer", "yes"), ("x-other", "2")])]


def test_chunked_body_without_trailers_tail_none():
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                   chunked(b"abc", b"defg")))
    assert c.body(1) == b"abcdefg"
    assert c.of("tail") == [("tail", 1, None)]


def test_chunked_uppercase_hex_and_leading_zeros():
    # RFC 9112 7.1: chunk-size = 1*HEXDIG (either case, any number of digits).
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                   b"000A\r\n0123456789\r\n0000\r\n\r\n"))
    assert c.body(1) == b"0123456789"
    assert len(c.of("tail")) == 1


def test_chunked_is_case_insensitive():
    # RFC 9112 7: transfer-coding names are case-insensitive.
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "Chunked")],
                   chunked(b"abc")))
    assert c.body(1) == b"abc"
    assert len(c.of("tail")) == 1


def test_content_length_body_delivered_incrementally():
    # docs/raw.md: body bytes delivered as they arrive (one on_message_data per arrival).
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Content-Length", "11")], b"hel"))
    assert c.of("data") == [("data", 1, b"hel")]
    assert c.feed(b"lo") == [("data", 1, b"lo")]
    new = c.feed(b" world")
    assert new[0] == ("data", 1, b" world")
    assert ("tail", 1, None) in new


def test_chunked_body_delivered_incrementally():
    # the part of a chunk that arrived is delivered before the rest of the chunk.
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                   b"b\r\nhello"))
    assert c.body(1) == b"hello"
    assert not c.of("tail")
    new = c.feed(b" world\r\n")
    assert merge_data(new) == [("data", 1, b" world")]
    new = c.feed(b"0\r\n\r\n")
    assert ("tail", 1, None) in new and not merge_data(new)[0][0] == "data", new


# ---------------------------------------------------------------------------------------------
# Version, limits

@pytest.mark.parametrize("version", [b"HTTP/3.0", b"HTTP/2.0"])
def test_unknown_version_505(version):
    # RFC 9110 15.6.6: 505 refuses the major version of the request (docs/raw.md: 505 for an
    # unknown version).
    rejected(b"GET / " + version + b"\r\nHost: example.com\r\n\r\n", 505)


def test_head_over_max_head_size_431():
    # RFC 6585 5: 431 Request Header Fields Too Large; docs/raw.md: max_head_size; cno writes
    # that response with connection: close.
    rejected(request(headers=[("Host", "example.com"), ("X-Big", "a" * 2000)]), 431,
             max_head_size=1024)


def test_incomplete_head_over_max_head_size_431():
    # the limit holds while the head is still arriving (no unbounded buffering).
    c = server(max_head_size=1024)
    with pytest.raises(errors.ProtocolError) as ei:
        c.data_received(b"GET / HTTP/1.1\r\nHost: example.com\r\nX-Big: " + b"a" * 1500)
    assert getattr(ei.value, "status", None) == 431
    assert c.closed


def test_head_under_max_head_size_accepted():
    c = server(max_head_size=1024)
    c.feed(request(headers=[("Host", "example.com"), ("X-Big", "a" * 900)]))
    assert len(c.heads()) == 1


def test_default_limits_exist():
    # docs/raw.md: defaults in cno.raw.DEFAULT_*.
    c = server()
    assert c.max_head_size == 65536
    assert c.max_header_count == 256
    assert c.max_chunk_line == 4096


def test_header_count_over_limit():
    # docs/raw.md: max_header_count; RFC 6585 5 (431) or RFC 9112 (400).
    c, e = rejected(request(headers=[("Host", "example.com")] +
                            [("X-H%d" % i, "v") for i in range(11)]), (431, 400),
                    max_header_count=10)


def test_header_count_at_limit_accepted():
    c = server(max_header_count=10)
    c.feed(request(headers=[("Host", "example.com")] + [("X-H%d" % i, "v") for i in range(9)]))
    assert len(c.heads()) == 1


@pytest.mark.parametrize("size", [b"8000000000000000", b"F" * 16, b"1" + b"0" * 16,
                                  b"FFFFFFFFFFFFFFFFFFFF"])
def test_chunk_size_past_63_bits_400(size):
    # A chunk size above 2^63 - 1 would overflow the engine's signed 64-bit count (found by
    # the ASan/UBSan fuzzer): 400, not a negative size or a wrapped one.
    rejected(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                     size + b"\r\nhello\r\n0\r\n\r\n"), 400, strict_response=False)


def test_chunk_size_many_leading_zeros_accepted():
    # RFC 9112 7.1: leading zeros do not count against the limit.
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                   b"0" * 40 + b"5\r\nhello\r\n" + b"0" * 30 + b"\r\n\r\n"))
    assert c.body(1) == b"hello"
    assert len(c.of("tail")) == 1


def test_chunk_line_over_max_chunk_line_400():
    # docs/raw.md: max_chunk_line bounds a chunk-size line with its extensions.
    c, e = rejected(request("POST", "/", [("Host", "example.com"),
                                          ("Transfer-Encoding", "chunked")],
                            b"5;" + b"x" * 200 + b"\r\nhello\r\n0\r\n\r\n"),
                    400, strict_response=False, max_chunk_line=100)


def test_incomplete_chunk_line_over_max_chunk_line_400():
    c = server(max_chunk_line=100)
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")]))
    with pytest.raises(errors.ProtocolError) as ei:
        c.data_received(b"5;" + b"x" * 300)
    assert getattr(ei.value, "status", None) == 400
    assert c.closed


def test_chunk_line_with_extensions_under_limit_ok():
    c = server(max_chunk_line=100)
    c.feed(request("POST", "/", [("Host", "example.com"), ("Transfer-Encoding", "chunked")],
                   b"5;" + b"x" * 60 + b"\r\nhello\r\n0\r\n\r\n"))
    assert c.body(1) == b"hello"


@pytest.mark.parametrize("cl", [str(2**63), str(2**64), "9" * 20, "9" * 40])
def test_huge_content_length_400(cl):
    # RFC 9112 6.3 (5): an invalid Content-Length is unrecoverable, 400; docs/raw.md:
    # bodies are 63-bit.
    rejected(request("POST", "/", [("Host", "example.com"), ("Content-Length", cl)]), 400)


@pytest.mark.parametrize("cl", [str(2**63 - 1), "0" * 18 + "3"])
def test_content_length_19_digits_accepted(cl):
    # RFC 9110 8.6: Content-Length = 1*DIGIT; docs/raw.md: bodies are 63-bit, so every value
    # below 2^63 (and any number of leading zeros) is a valid length.
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Content-Length", cl)], b"abc"))
    assert len(c.heads()) == 1
    assert c.body(1) == b"abc"
    assert bool(c.of("tail")) == (int(cl) == 3)


# ---------------------------------------------------------------------------------------------
# Streams

def test_streams_numbered_and_ended():
    # docs/raw.md: each exchange is a stream 1, 3, 5, ...; it ends (code 0) once the request
    # was read and the response written.
    c = server()
    c.feed(get("/a"))
    assert c.open_streams == [1]
    assert not c.of("end")
    answer(c, 1, body=b"x")
    assert [e[:3] for e in c.of("end")] == [("end", 1, 0)]
    c.feed(get("/b"))
    assert [h[1] for h in c.heads()] == [1, 3]
    answer(c, 3)
    assert [e[:3] for e in c.of("end")] == [("end", 1, 0), ("end", 3, 0)]
    assert c.open_streams == []
    assert not c.of("close") and not c.closed


def test_stream_not_ended_before_request_body_read():
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Content-Length", "4")], b"ab"))
    answer(c, 1, body=b"ok")
    assert not c.of("end")
    c.feed(b"cd")
    assert [e[:3] for e in c.of("end")] == [("end", 1, 0)]


# ---------------------------------------------------------------------------------------------
# Writing responses: RFC 9112 4 (status line), 6 (framing)

@pytest.mark.parametrize("code,reason", [(200, "OK"), (404, "Not Found"),
                                         (503, "Service Unavailable"), (201, "Created")])
def test_status_line_with_reason(code, reason):
    # RFC 9112 4: status-line = HTTP-version SP status-code SP [ reason-phrase ]
    # (docs/raw.md: a reason phrase is always written).
    c = server()
    c.feed(get())
    answer(c, 1, code)
    line, _, _ = split_head(c.take())
    assert line == "HTTP/1.1 %d %s" % (code, reason)


def test_unknown_code_gets_some_reason():
    c = server()
    c.feed(get())
    answer(c, 1, 599)
    line, _, _ = split_head(c.take())
    assert line.startswith("HTTP/1.1 599 ") and line[len("HTTP/1.1 599 "):].strip(), line


def test_written_header_names_lowercase():
    # docs/raw.md: names are lower case, including the ones the engine adds.
    c = server()
    c.feed(get() + get())
    c.write_head(1, 200, "", "", [("x-a", "1"), ("content-type", "text/plain")], False)
    c.write_data(1, b"abc", True)
    answer(c, 3, body=b"")
    wire = c.take()
    for part in wire.split(b"\r\n\r\n"):
        if part.startswith(b"HTTP/1.1"):
            _, fields, _ = split_head(part + b"\r\n\r\n")
            assert all(k == k.lower() for k, _ in fields), fields
    _, fields, _ = split_head(wire)
    assert ("x-a", "1") in fields and ("content-type", "text/plain") in fields


def test_content_length_given_raw_body():
    # RFC 9112 6.2: with Content-Length, the body is the raw octets.
    c = server()
    c.feed(get())
    c.write_head(1, 200, "", "", [("content-length", "5")], False)
    assert c.write_data(1, b"hel", False) == 3
    assert c.write_data(1, b"lo", True) == 2
    line, fields, rest = split_head(c.take())
    assert field_values(fields, "content-length") == ["5"]
    assert not field_values(fields, "transfer-encoding")
    assert rest == b"hello"


def test_not_final_no_length_http11_chunked():
    # RFC 9112 6.1 / 7.1: without a length, a body to an HTTP/1.1 peer is sent chunked.
    c = server()
    c.feed(get())
    c.write_head(1, 200, "", "", [("content-type", "text/plain")], False)
    c.write_data(1, b"hello ", False)
    c.write_data(1, b"world", False)
    c.write_data(1, b"", True)
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert field_values(fields, "transfer-encoding") == ["chunked"]
    assert not field_values(fields, "content-length")
    assert rest.endswith(b"0\r\n\r\n")
    (msgs,) = h11_responses(wire, ["GET"])
    assert msgs[-1].body == b"hello world"
    assert not c.of("close")


def test_http10_peer_never_chunked():
    # RFC 9112 6.1: a server MUST NOT send chunked to an HTTP/1.0 client; the body is then
    # delimited by closing the connection, announced with connection: close (libcno defect:
    # chunked sent to HTTP/1.0 peers).
    c = server()
    c.feed(b"GET / HTTP/1.0\r\n\r\n")
    c.write_head(1, 200, "", "", [("content-type", "text/plain")], False)
    c.write_data(1, b"hello ", False)
    assert not c.of("close")
    c.write_data(1, b"world", True)
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert not field_values(fields, "transfer-encoding")
    assert "close" in connection_tokens(fields)
    assert rest == b"hello world"
    assert c.of("close") == [("close",)]
    (msgs,) = h11_responses(wire, ["GET"], eof=True)
    assert msgs[-1].body == b"hello world"


def test_http10_peer_with_content_length():
    c = server()
    c.feed(b"GET / HTTP/1.0\r\n\r\n")
    answer(c, 1, body=b"abc")
    _, fields, rest = split_head(c.take())
    assert rest == b"abc"
    assert "close" in connection_tokens(fields)
    assert c.of("close") == [("close",)]


def test_final_no_body_gets_content_length_0():
    # RFC 9110 8.6 / docs/raw.md: a final response with no body gets content-length: 0, so
    # that the peer does not wait for a close-delimited body.
    c = server()
    c.feed(get())
    c.write_head(1, 200, "", "", [("x-a", "1")], True)
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert field_values(fields, "content-length") == ["0"]
    assert rest == b""
    (msgs,) = h11_responses(wire, ["GET"])
    assert msgs[-1].code == 200 and msgs[-1].body == b""


@pytest.mark.parametrize("code", [204, 304])
def test_204_304_no_content_length_added(code):
    # RFC 9110 8.6: a server MUST NOT send Content-Length in a 204; a 304's would describe the
    # selected representation, not 0. No body either (RFC 9112 6.3 (1)).
    c = server()
    c.feed(get())
    c.write_head(1, code, "", "", [("etag", '"x"')], True)
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert "0" not in field_values(fields, "content-length")
    assert not field_values(fields, "transfer-encoding")
    assert rest == b""
    (msgs,) = h11_responses(wire, ["GET"])
    assert msgs[-1].code == code


def test_204_not_final_still_no_chunked_body():
    # RFC 9112 6.3 (1): a 204 cannot carry a body: no chunked framing is written.
    c = server()
    c.feed(get() + get())
    c.write_head(1, 204, "", "", [], False)
    c.write_data(1, b"", True)
    answer(c, 3, body=b"next")
    wire = c.take()
    _, fields, _ = split_head(wire)
    assert not field_values(fields, "transfer-encoding")
    msgs = h11_responses(wire, ["GET", "GET"])
    assert [m[-1].code for m in msgs] == [204, 200]
    assert msgs[1][-1].body == b"next"


def test_head_response_body_suppressed():
    # RFC 9110 9.3.2: the response to HEAD carries no content (docs/raw.md: write_data still
    # reports the length as sent).
    c = server()
    c.feed(request("HEAD", "/") + get("/next"))
    c.write_head(1, 200, "", "", [("content-length", "5")], False)
    assert c.write_data(1, b"hello", True) == 5
    answer(c, 3, body=b"next")
    wire = c.take()
    assert b"hello" not in wire
    msgs = h11_responses(wire, ["HEAD", "GET"])
    assert msgs[0][-1].body == b"" and msgs[1][-1].body == b"next"
    assert field_values(msgs[0][-1].headers, "content-length") == ["5"]


def test_head_response_no_length_no_chunk_bytes():
    c = server()
    c.feed(request("HEAD", "/") + get("/next"))
    c.write_head(1, 200, "", "", [("content-type", "text/plain")], False)
    assert c.write_data(1, b"abc", False) == 3
    c.write_data(1, b"", True)
    answer(c, 3, body=b"next")
    wire = c.take()
    _, fields, rest = split_head(wire)
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n"), rest  # nothing between the two heads
    msgs = h11_responses(wire, ["HEAD", "GET"])
    assert msgs[1][-1].body == b"next"


def test_head_response_final_no_content_length_0():
    # docs/raw.md: no content-length: 0 is added to an answer to HEAD (it would misstate the
    # GET representation's length).
    c = server()
    c.feed(request("HEAD", "/"))
    c.write_head(1, 200, "", "", [], True)
    _, fields, rest = split_head(c.take())
    assert "0" not in field_values(fields, "content-length")
    assert rest == b""


def test_100_continue_separate_head():
    # RFC 9110 10.1.1 / 15.2.1: a 100 (Continue) interim response, then the final one.
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Expect", "100-continue"),
                                 ("Content-Length", "5")]))
    assert len(c.heads()) == 1
    c.write_head(1, 100, "", "", [], False)
    interim = c.take()
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    c.feed(b"hello")
    assert c.body(1) == b"hello"
    answer(c, 1, body=b"done")
    wire = interim + c.take()
    (msgs,) = h11_responses(wire, ["POST"])
    assert [(m.kind, m.code) for m in msgs] == [("info", 100), ("response", 200)]
    assert msgs[1].body == b"done"


def test_103_early_hints_then_200():
    # RFC 8297: 103 Early Hints, an interim response with Link fields, before the final one.
    c = server()
    c.feed(get())
    c.write_head(1, 103, "", "", [("link", "</style.css>; rel=preload; as=style")], False)
    c.write_head(1, 200, "", "", [("content-length", "2")], False)
    c.write_data(1, b"ok", True)
    wire = c.take()
    line, fields, rest = split_head(wire)
    assert line.startswith("HTTP/1.1 103 ") and line[13:].strip()
    assert ("link", "</style.css>; rel=preload; as=style") in fields
    assert not field_values(fields, "content-length")
    assert not field_values(fields, "transfer-encoding")
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n")
    (msgs,) = h11_responses(wire, ["GET"])
    assert [(m.kind, m.code) for m in msgs] == [("info", 103), ("response", 200)]
    assert msgs[1].body == b"ok"


@pytest.mark.parametrize("value", ["close", "keep-alive, close", "Close", "foo,  CLOSE ,bar"])
def test_connection_close_from_client(value):
    # RFC 9112 9.6: a server that receives "close" MUST initiate a close of the connection
    # after it sends the response, and SHOULD send "close" itself; RFC 9110 7.6.1: the field
    # is a comma list of case-insensitive options (libcno defect: exact match only).
    c = server()
    c.feed(request(headers=[("Host", "example.com"), ("Connection", value)]))
    assert len(c.heads()) == 1
    assert not c.of("close")
    c.write_head(1, 200, "", "", [("content-length", "3")], False)
    assert not c.of("close")
    c.write_data(1, b"bye", True)
    _, fields, rest = split_head(c.take())
    assert "close" in connection_tokens(fields)
    assert rest == b"bye"
    assert c.of("close") == [("close",)]
    assert c.events.index(("close",)) > c.events.index(c.heads()[0])


def test_input_after_close_ignored():
    # RFC 9112 9.6: a server MUST NOT process further requests after "close" (docs/raw.md:
    # input after that is ignored).
    c = server()
    c.feed(get(extra=[("Connection", "close")]) + get("/late"))
    assert [h[4] for h in c.heads()] == ["/"]
    answer(c, 1)
    c.data_received(get("/later"))
    assert [h[4] for h in c.heads()] == ["/"]
    assert c.of("close") == [("close",)]


def test_http10_closes_after_exchange():
    # RFC 9112 9.3: HTTP/1.0 without keep-alive is not persistent.
    c = server()
    c.feed(b"GET / HTTP/1.0\r\nHost: example.com\r\n\r\n")
    answer(c, 1, body=b"x")
    _, fields, _ = split_head(c.take())
    assert "close" in connection_tokens(fields)
    assert c.of("close") == [("close",)]


def test_http10_keep_alive_persists():
    # RFC 9112 9.3 / C.2.2: an HTTP/1.0 request with the keep-alive option persists.
    c = server()
    c.feed(b"GET /1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    answer(c, 1, body=b"one")
    _, fields, rest = split_head(c.take())
    assert "close" not in connection_tokens(fields)
    assert rest == b"one"
    assert not c.of("close")
    c.feed(b"GET /2 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert [h[4] for h in c.heads()] == ["/1", "/2"]
    assert not c.closed


def test_http11_persistent_by_default():
    # RFC 9112 9.3: HTTP/1.1 defaults to persistent connections.
    c = server()
    for i in range(3):
        c.feed(get("/%d" % i))
        answer(c, 2 * i + 1, body=b"r%d" % i)
    wire = c.take()
    assert b"close" not in wire.lower()
    msgs = h11_responses(wire, ["GET"] * 3)
    assert [m[-1].body for m in msgs] == [b"r0", b"r1", b"r2"]
    assert not c.of("close")


def test_application_connection_close_header():
    # A server may decide to close: connection: close in its own response ends the connection.
    c = server()
    c.feed(get())
    answer(c, 1, headers=[("connection", "close")], body=b"x")
    _, fields, _ = split_head(c.take())
    assert "close" in connection_tokens(fields)
    assert c.of("close") == [("close",)]


def test_shutdown_closes_after_exchange_in_progress():
    # docs/raw.md: shutdown() closes after the exchanges in progress, writing connection: close.
    c = server()
    c.feed(get())
    c.shutdown()
    assert not c.of("close")
    answer(c, 1, body=b"x")
    _, fields, _ = split_head(c.take())
    assert "close" in connection_tokens(fields)
    assert c.of("close") == [("close",)]


def test_write_tail_trailers_when_chunked():
    # RFC 9112 7.1.2: last-chunk, then the trailer section, then CRLF.
    c = server()
    c.feed(get(extra=[("TE", "trailers")]))
    c.write_head(1, 200, "", "", [("trailer", "x-checksum")], False)
    c.write_data(1, b"abc", False)
    c.write_tail(1, [("x-checksum", "900150983cd24fb0"), ("x-two", "2")])
    wire = c.take()
    assert wire.endswith(b"\r\n0\r\nx-checksum: 900150983cd24fb0\r\nx-two: 2\r\n\r\n"), wire
    (msgs,) = h11_responses(wire, ["GET"])
    assert msgs[-1].body == b"abc"
    assert msgs[-1].trailers == [("x-checksum", "900150983cd24fb0"), ("x-two", "2")]
    assert [e[:3] for e in c.of("end")] == [("end", 1, 0)]


def test_write_tail_without_trailers_ends_chunked():
    c = server()
    c.feed(get())
    c.write_head(1, 200, "", "", [], False)
    c.write_data(1, b"abc", False)
    c.write_tail(1, None)
    wire = c.take()
    assert wire.endswith(b"3\r\nabc\r\n0\r\n\r\n"), wire


def test_write_tail_drops_trailers_without_chunked():
    # docs/raw.md: write_tail drops trailers when the body is not chunked.
    c = server()
    c.feed(get() + get("/2"))
    c.write_head(1, 200, "", "", [("content-length", "3")], False)
    c.write_data(1, b"abc", False)
    c.write_tail(1, [("x-checksum", "1")])
    answer(c, 3, body=b"two")
    wire = c.take()
    assert b"x-checksum" not in wire
    msgs = h11_responses(wire, ["GET", "GET"])
    assert [m[-1].body for m in msgs] == [b"abc", b"two"]


# ---------------------------------------------------------------------------------------------
# Pipelining: RFC 9112 9.3.2

def test_pipelined_requests_in_one_read():
    # RFC 9112 9.3.2: a server MAY process pipelined requests in parallel if they all have
    # safe methods; it MUST send the responses in the order the requests were received.
    c = server()
    c.feed(get("/1") + request("POST", "/2", [("Host", "example.com"),
                                              ("Content-Length", "3")], b"abc") + get("/3"))
    assert [(h[1], h[3], h[4]) for h in c.heads()] == [(1, "GET", "/1"), (3, "POST", "/2"),
                                                       (5, "GET", "/3")]
    assert c.body(3) == b"abc"
    assert [e[1] for e in c.of("tail")] == [1, 3, 5]


def test_answer_out_of_order_would_block():
    c = server()
    c.feed(get("/1") + get("/3") + get("/5"))
    with pytest.raises(errors.WouldBlock):
        c.write_head(3, 200, "", "", [("content-length", "0")], True)
    with pytest.raises(errors.WouldBlock):
        c.write_head(5, 200, "", "", [("content-length", "0")], True)
    assert c.take() == b""
    assert not c.closed


def test_answer_in_order_bytes_in_order():
    c = server()
    c.feed(get("/1") + get("/3") + get("/5"))
    for sid in (1, 3, 5):
        answer(c, sid, body=b"r%d" % sid)
    msgs = h11_responses(c.take(), ["GET"] * 3)
    assert [m[-1].body for m in msgs] == [b"r1", b"r3", b"r5"]


def test_next_answer_may_start_when_previous_head_done():
    # stream 3's head may be written once stream 1's response is complete, not before.
    c = server()
    c.feed(get("/1") + get("/3"))
    c.write_head(1, 200, "", "", [("content-length", "2")], False)
    with pytest.raises(errors.WouldBlock):
        c.write_head(3, 200, "", "", [("content-length", "0")], True)
    c.write_data(1, b"ok", True)
    c.write_head(3, 200, "", "", [("content-length", "0")], True)
    msgs = h11_responses(c.take(), ["GET"] * 2)
    assert [m[-1].body for m in msgs] == [b"ok", b""]


def test_pipelining_limited_by_max_concurrent_streams():
    # docs/raw.md: requests are read ahead up to max_concurrent_streams open streams; more
    # input waits in the buffer "and is parsed as streams end" (no new data_received needed).
    c = server(settings=dict(max_concurrent_streams=1))
    c.feed(get("/1") + get("/3") + get("/5"))
    assert [h[4] for h in c.heads()] == ["/1"]
    answer(c, 1, body=b"a")
    assert [h[4] for h in c.heads()] == ["/1", "/3"]
    answer(c, 3, body=b"b")
    assert [h[4] for h in c.heads()] == ["/1", "/3", "/5"]
    answer(c, 5, body=b"c")
    msgs = h11_responses(c.take(), ["GET"] * 3)
    assert [m[-1].body for m in msgs] == [b"a", b"b", b"c"]


def test_pipelining_limit_two():
    c = server(settings=dict(max_concurrent_streams=2))
    c.feed(b"".join(get("/%d" % i) for i in range(5)))
    assert [h[1] for h in c.heads()] == [1, 3]
    answer(c, 1)
    assert [h[1] for h in c.heads()] == [1, 3, 5]
    c.data_received(b"")  # harmless
    assert [h[1] for h in c.heads()] == [1, 3, 5]
    answer(c, 3)
    answer(c, 5)
    assert [h[1] for h in c.heads()] == [1, 3, 5, 7, 9]


# ---------------------------------------------------------------------------------------------
# More of RFC 9112 3 (request line, Host), 8 (incomplete messages), and writing rules

@pytest.mark.parametrize("host", [b"exa mple.com", b"user@example.com", b"example.com:abc",
                                  b"example.com/evil"])
def test_invalid_host_value_400(host):
    # RFC 9112 3.2: a server MUST respond 400 to a request with "a Host header field with an
    # invalid field value" (Host = uri-host [ ":" port ], RFC 9110 7.2).
    rejected(b"GET / HTTP/1.1\r\nHost: " + host + b"\r\n\r\n", 400)


@pytest.mark.parametrize("host", ["", "[::1]:8080", "example.com:8080", "192.0.2.1",
                                  "xn--bcher-kva.example"])
def test_valid_host_values_accepted(host):
    # RFC 9110 7.2: an empty Host is allowed when the target URI has no authority.
    c = server()
    c.feed(request(headers=[("Host", host)]))
    assert pseudo(only_head(c)[5])[":authority"] == host


@pytest.mark.parametrize("line", [b"G(ET / HTTP/1.1", b"GET / HTTP/1.1 extra",
                                  b"GET /a b HTTP/1.1", b"GET /a\x01b HTTP/1.1",
                                  b" GET / HTTP/1.1", b"GET / http/1.1", b"GET /",
                                  b"GET / HTTP/01.1", b"GET / HTTP/1.10"])
def test_malformed_request_line_400(line):
    # RFC 9112 3: request-line = method SP request-target SP HTTP-version; method is a token
    # (RFC 9110 9.1); 2.3: HTTP-version = "HTTP/" DIGIT "." DIGIT (case-sensitive). Invalid
    # request-lines get 400.
    rejected(line + b"\r\nHost: example.com\r\n\r\n", (400, 505))


def test_no_error_response_when_earlier_response_owed():
    # docs/raw.md: the server writes the error response itself only when no earlier response
    # is still owed (the answer to /1 would be lost or mixed up otherwise).
    c = server()
    with pytest.raises(errors.ProtocolError) as ei:
        c.data_received(get("/1") + b"GET /2 HTTP/1.1\r\nHost: example.com\r\nX : y\r\n\r\n")
    assert getattr(ei.value, "status", None) == 400
    assert [h[4] for h in c.heads()] == ["/1"]
    assert c.take() == b""
    assert c.closed


def test_incomplete_request_body_at_eof():
    # RFC 9112 8: a message whose Content-Length body is cut short by the close is
    # incomplete: no on_message_tail; the stream ends abnormally (docs/raw.md: connection_lost
    # ends open streams with CANCEL).
    c = server()
    c.feed(request("POST", "/", [("Host", "example.com"), ("Content-Length", "10")], b"abc"))
    c.connection_lost()
    assert not c.of("tail")
    assert [e[2] for e in c.of("end", 1)] == [raw.CNO_RST_CANCEL]
    assert c.of("close") == [("close",)]


def test_response_header_injection_rejected():
    # RFC 9110 5.5: CR/LF/NUL are not allowed in field values (response splitting).
    c = server()
    c.feed(get())
    with pytest.raises(errors.UsageError):
        c.write_head(1, 200, "", "", [("x-a", "a\r\nset-cookie: evil=1")], True)
    with pytest.raises(errors.UsageError):
        c.write_head(1, 200, "", "", [("x a", "b")], True)
    assert c.take() == b""


def test_uppercase_header_name_lowercased_or_refused():
    # docs/raw.md: "Names must be lower case" (HTTP/2 raises UsageError for "X-A"); the same
    # call in HTTP/1.1 must not silently differ: either UsageError or a lower-case name.
    c = server()
    c.feed(get())
    try:
        c.write_head(1, 200, "", "", [("X-Upper", "1")], True)
    except errors.UsageError:
        assert c.take() == b""
        return
    _, fields, _ = split_head(c.take())
    assert ("x-upper", "1") in fields, fields


def test_no_1xx_to_http10_client():
    # RFC 9110 15.2: "a server MUST NOT send a 1xx response to an HTTP/1.0 client".
    c = server()
    c.feed(b"GET / HTTP/1.0\r\n\r\n")
    try:
        c.write_head(1, 103, "", "", [("link", "</a.css>; rel=preload")], False)
    except errors.UsageError:
        pass
    answer(c, 1, body=b"ok")
    wire = c.take()
    assert wire.startswith(b"HTTP/1.1 200 OK\r\n"), wire
    assert b" 103 " not in wire


def test_output_coalesced_once_per_call():
    # docs/raw.md: on_writev at most once per public call (output is coalesced), also when
    # responses are written from inside on_message_head during one data_received.
    c = server()
    c.head_hook = lambda conn, sid, *_: answer(conn, sid, body=b"r%d" % sid)
    c.feed(get("/1") + get("/2") + get("/3"))
    assert c.writev_calls == 1
    msgs = h11_responses(c.take(), ["GET"] * 3)
    assert [m[-1].body for m in msgs] == [b"r1", b"r3", b"r5"]


# ---------------------------------------------------------------------------------------------
# The wrong protocol is refused at its first bytes, not after the header timeout

TLS_CLIENT_HELLO_START = bytes.fromhex("160301020001") + b"\x00\x01\xfc\x03\x03"


@pytest.mark.parametrize("first", [TLS_CLIENT_HELLO_START, b"\x16", b"\x16\x03"])
def test_tls_client_hello_closed_at_once(first):
    # A TLS ClientHello (RFC 8446 5.1: record type 22, version 0x03xx) on a plaintext port
    # can never become a request: the connection ends on its first bytes, with no HTTP
    # answer (the peer speaks TLS and could not read one).
    c = server()
    with pytest.raises(errors.ProtocolError):
        c.data_received(first)
    assert c.closed
    assert c.take() == b""
    assert c.heads() == []


@pytest.mark.parametrize("first", [b"\x00\x01", b"\x80", b"{\"json\": 1}", b"GET\t/", b"(",
                                   b"SSH-2.0-OpenSSH_9.2\r", b"G\xffET"])
def test_bytes_that_cannot_start_a_request_line_400_at_once(first):
    # RFC 9112 3: request-line = method SP ...; method = token (RFC 9110 9.1). A byte that is
    # neither tchar nor the SP after the method is a malformed request line now, without
    # waiting for a CRLF that may never come: 400 and the connection closes.
    c = server()
    e = expect_error(c, first, 400, smuggle=False)
    assert c.heads() == []
    assert c.take().startswith(b"HTTP/1.1 400 "), e


@pytest.mark.parametrize("first", [b"G", b"GET", b"GET ", b"GET /partial", b"PRI * HTTP/2",
                                   b"M-SEARCH", b"\r\n", b"\r"])
def test_incomplete_valid_prefix_waits(first):
    # The early check rejects only what can never become a request line: a valid prefix
    # (or the HTTP/2 preface's start) waits for more bytes.
    c = server()
    c.data_received(first)
    assert not c.closed
    assert c.take() == b""


@pytest.mark.parametrize("ctl", [0x01, 0x08, 0x0B, 0x0C, 0x1F, 0x7F])
def test_written_value_with_control_character_is_usage_error(ctl):
    # RFC 9110 5.5: a field value holds no control character but HTAB; our own parser
    # rejects such a message, so writing one is the caller's error, and nothing is written.
    c = server()
    c.feed(get())
    with pytest.raises(errors.UsageError):
        c.write_head(1, 200, "", "", [("x-a", "a" + chr(ctl) + "b")], True)
    assert c.take() == b""
    c.write_head(1, 200, "", "", [("x-a", "a\tb")], True)   # HTAB inside is fine
    assert b"x-a: a\tb\r\n" in c.take()


@pytest.mark.parametrize("code", [204, 304])
def test_body_after_no_content_response_is_usage_error(code):
    # RFC 9110 15.3.5 / 15.4.5: a 204 or 304 has no content; bytes written after its head
    # would be read as the next response. Empty data still ends the message.
    c = server()
    c.feed(get() + get())
    c.write_head(1, code, "", "", [], False)
    head = c.take()
    with pytest.raises(errors.UsageError):
        c.write_data(1, b"body", True)
    assert c.take() == b""
    c.write_data(1, b"", True)
    answer(c, 3, body=b"ok")
    first, second = h11_responses(head + c.take(), ["GET", "GET"])
    assert (first[-1].code, first[-1].body) == (code, b"")
    assert (second[-1].code, second[-1].body) == (200, b"ok")
