"""cno.raw.Connection against RFC 9113 sections 8.1-8.5 (HTTP semantics in HTTP/2): field
validation, pseudo-headers, CONNECT and extended CONNECT (RFC 8441), content-length, 1xx,
header list size, and the shapes of on_message_head / on_message_push arguments."""
import pytest

import cno.raw as raw
from raw_frames import (
    CLIENT_HEADERS, HEADERS, PROTOCOL_ERROR, REFUSED_STREAM, RESP, RST_STREAM, SETTINGS,
    assert_alive, continuation, data, expect_connection_error, expect_error,
    expect_stream_error, headers, literal_block, make_client, make_server, merged_data,
    open_stream, push_promise, push_to_client, recorder_class, request,
)

GET = [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "example.com")]


def check_malformed(c, stream, w):
    """RFC 9113 8.1.1: a malformed message is a stream error PROTOCOL_ERROR: RST_STREAM, no
    head for it, on_stream_end(stream, PROTOCOL_ERROR, CNO_LOCAL) if it was started, and
    the connection lives on."""
    started = ("start", stream) in c.events
    c.reset_log()
    expect_stream_error(c, w, stream, PROTOCOL_ERROR)
    assert not [e for e in c.events if e[0] in ("head", "tail", "push") and e[1] == stream], \
        c.events
    if started or ("start", stream) in c.events:
        assert ("end", stream, PROTOCOL_ERROR, raw.CNO_LOCAL) in c.events, c.events
    else:
        assert not [e for e in c.of("end") if e[1] == stream], c.events
    assert_alive(c)


def check_request_rejected(fields, end_stream=True):
    c = make_server()
    check_malformed(c, 1, headers(1, literal_block(fields), end_stream=end_stream))
    # the next request is fine (and the HPACK state in step)
    open_stream(c, 3, GET + [("x-ok", "1")], end_stream=True)
    assert [e[5][-1] for e in c.of("head") if e[1] == 3] == [("x-ok", "1")]


def check_request_accepted(fields):
    c = make_server()
    c.feed(headers(1, literal_block(fields), end_stream=True))
    assert not c.take(RST_STREAM), "rejected a valid request %r" % (fields,)
    heads = [e for e in c.of("head") if e[1] == 1]
    assert len(heads) == 1, c.events
    return heads[0]


# ---------------------------------------------------------------------------------------------
# 8.2.1 Field validity

def test_htab_inside_value_accepted():
    # RFC 9113 8.2.1 / RFC 9110 5.5: HTAB is allowed inside a value (known libcno defect:
    # rejected).
    head = check_request_accepted(GET + [("x-tab", "a\tb"), ("user-agent", "x\t\ty")])
    assert head[5][-2:] == [("x-tab", "a\tb"), ("user-agent", "x\t\ty")]


def test_visible_and_obs_text_values_accepted():
    # RFC 9113 8.2.1: only NUL, CR, LF (and edge whitespace) are forbidden.
    head = check_request_accepted(GET + [("x-v", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \x80\xff")])
    assert head[5][-1] == ("x-v", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~ \x80\xff")


@pytest.mark.parametrize("name", ["X-Upper", "x-uPper", "Content-Type"])
def test_uppercase_name(name):
    # RFC 9113 8.2.1: "A field name MUST NOT contain characters in the ranges 0x41-0x5a".
    check_request_rejected(GET + [(name, "1")])


@pytest.mark.parametrize("name", ["x y", "x\x00y", "x\ry", "x\ny", "x\x7fy", "x\xe9", "", ":"],
                         ids=["space", "nul", "cr", "lf", "del", "nonascii", "empty", "colon"])
def test_invalid_name_characters(name):
    # RFC 9113 8.2.1: names must not contain 0x00-0x20, 0x41-0x5a, 0x7f-0xff (RFC 9110 token).
    check_request_rejected(GET + [(name, "1")])


@pytest.mark.parametrize("value", ["a\rb", "a\nb", "a\x00b", "\r", "ab\n"],
                         ids=["cr", "lf", "nul", "only-cr", "trailing-lf"])
def test_cr_lf_nul_in_value(value):
    # RFC 9113 8.2.1: "A field value MUST NOT contain the zero value (ASCII NUL, 0x00), line
    # feed (ASCII LF, 0x0a), or carriage return (ASCII CR, 0x0d) at any position."
    check_request_rejected(GET + [("x-bad", value)])


@pytest.mark.parametrize("value", [" a", "a ", "\ta", "a\t", " "],
                         ids=["lead-sp", "trail-sp", "lead-tab", "trail-tab", "only-sp"])
def test_leading_trailing_whitespace_in_value(value):
    # RFC 9113 8.2.1: "A field value MUST NOT start or end with an ASCII whitespace character
    # (ASCII SP or HTAB, 0x20 or 0x09)."
    check_request_rejected(GET + [("x-bad", value)])


def test_empty_value_accepted():
    # RFC 9113 8.2.1: an empty value is valid.
    head = check_request_accepted(GET + [("x-empty", "")])
    assert head[5][-1] == ("x-empty", "")


# ---------------------------------------------------------------------------------------------
# 8.2.2 Connection-specific fields

@pytest.mark.parametrize("field", [("connection", "keep-alive"), ("keep-alive", "timeout=5"),
                                   ("proxy-connection", "keep-alive"),
                                   ("transfer-encoding", "chunked"), ("upgrade", "websocket")],
                         ids=lambda f: f[0])
def test_connection_specific_fields(field):
    # RFC 9113 8.2.2: a message containing connection-specific fields is malformed (known
    # libcno defect: only "connection" was rejected).
    check_request_rejected(GET + [field])


@pytest.mark.parametrize("value", ["gzip", "trailers, gzip", "Trailers2", ""])
def test_te_other_than_trailers(value):
    # RFC 9113 8.2.2: "TE ... MUST NOT contain any value other than 'trailers'".
    check_request_rejected(GET + [("te", value)])


def test_te_trailers_accepted():
    head = check_request_accepted(GET + [("te", "trailers")])
    assert ("te", "trailers") in head[5]


# ---------------------------------------------------------------------------------------------
# 8.3 Pseudo-header fields

@pytest.mark.parametrize("missing", [":method", ":scheme", ":path"])
def test_request_missing_pseudo_header(missing):
    # RFC 9113 8.3.1: "All HTTP/2 requests MUST include exactly one valid value for the
    # :method, :scheme, and :path pseudo-header fields, unless ... CONNECT".
    check_request_rejected([f for f in GET if f[0] != missing])


def test_request_empty_path():
    # RFC 9113 8.3.1: ":path ... MUST NOT be empty" for http/https URIs.
    check_request_rejected([(":method", "GET"), (":scheme", "https"), (":path", ""),
                            (":authority", "example.com")])


def test_request_authority_optional():
    # RFC 9113 8.3.1: :authority may be omitted (a Host header is allowed instead).
    head = check_request_accepted([(":method", "GET"), (":scheme", "https"), (":path", "/"),
                                   ("host", "example.com")])
    assert head[3:5] == ("GET", "/")


@pytest.mark.parametrize("host", ["other.example", "example.com.evil", "example.co",
                                  "example.com:8443", "exampleXcom"])
def test_request_host_differing_from_authority(host):
    # RFC 9113 8.3.1: "A server SHOULD treat a request as malformed if it contains a Host
    # header field that identifies an entity that differs from the entity in the
    # ':authority' pseudo-header field."
    check_request_rejected(GET + [("host", host)])


@pytest.mark.parametrize("scheme, host", [("https", "example.com"), ("https", "EXAMPLE.Com"),
                                          ("https", "example.com:443"),
                                          ("http", "example.com:80")])
def test_request_host_naming_the_authority(scheme, host):
    # 8.3.1: compared as RFC 3986 6.2.3 normalizes them: host names case-insensitively, a
    # port the scheme implies may be left out.
    fields = [(":scheme", scheme) if n == ":scheme" else (n, v) for n, v in GET]
    head = check_request_accepted(fields + [("host", host)])
    assert head[5][-1] == ("host", host)


def test_request_host_checked_against_each_authority():
    # The same host tuple (HPACK hands out one per table entry) meets a new :authority.
    c = make_server()
    for sid, authority in ((1, "example.com"), (3, "example.com"), (5, "other.example")):
        fields = [(n, authority if n == ":authority" else v) for n, v in GET]
        w = headers(sid, c.block(fields + [("host", "example.com")]), end_stream=True)
        if sid < 5:
            c.feed(w)
        else:
            expect_stream_error(c, w, sid, PROTOCOL_ERROR)
    assert [e[1] for e in c.of("head")] == [1, 3]
    assert_alive(c)


@pytest.mark.parametrize("extra", [(":foo", "bar"), (":status", "200"), (":x", "")],
                         ids=["unknown", "status-in-request", "empty-unknown"])
def test_request_unknown_pseudo_header(extra):
    # RFC 9113 8.3: "Endpoints MUST treat a request or response that contains undefined or
    # invalid pseudo-header fields as malformed"; :status is response-only.
    check_request_rejected(GET + [extra])


@pytest.mark.parametrize("dup", [":method", ":scheme", ":path", ":authority"])
def test_request_duplicate_pseudo_header(dup):
    # RFC 9113 8.3.1: "exactly one valid value" / "The same pseudo-header field name MUST NOT
    # appear more than once in a field block."
    value = dict(GET)[dup]
    check_request_rejected(GET + [(dup, value)])


def test_pseudo_header_after_regular_field():
    # RFC 9113 8.3: "All pseudo-header fields MUST appear in a field block before all regular
    # field lines."
    check_request_rejected(GET[:2] + [("x-a", "1")] + GET[2:])


def test_pseudo_header_in_request_trailers():
    # RFC 9113 8.1: "Trailers MUST NOT include pseudo-header fields".
    c = make_server()
    open_stream(c, 1)
    c.feed(data(1, b"abc"))
    check_malformed(c, 1, headers(1, literal_block([(":path", "/x")]), end_stream=True))


def test_pseudo_header_in_response_trailers():
    c = make_client()
    request(c)
    c.feed(headers(1, c.block(RESP)), data(1, b"abc"))
    check_malformed(c, 1, headers(1, literal_block([(":status", "200")]), end_stream=True))


def test_response_without_status():
    # RFC 9113 8.3.2: a response without :status is malformed.
    c = make_client()
    request(c)
    check_malformed(c, 1, headers(1, literal_block([("content-type", "text/plain")]),
                                  end_stream=True))
    assert request(c) == 3  # the connection still opens streams


@pytest.mark.parametrize("fields", [
    [(":status", "200"), (":status", "200")],
    [(":status", "200"), (":path", "/")],
    [("x-a", "1"), (":status", "200")],
    [(":status", "2000")],
    [(":status", "abc")],
], ids=["duplicate", "request-pseudo", "after-regular", "four-digits", "not-a-number"])
def test_malformed_response_pseudo_headers(fields):
    # RFC 9113 8.3 / 8.3.2: :status exactly once, first, a 3-digit code; no request fields.
    c = make_client()
    request(c)
    check_malformed(c, 1, headers(1, literal_block(fields), end_stream=True))


def test_uppercase_name_in_response():
    c = make_client()
    request(c)
    check_malformed(c, 1, headers(1, literal_block(RESP + [("Server", "x")]), end_stream=True))


# ---------------------------------------------------------------------------------------------
# 8.5 CONNECT and RFC 8441 extended CONNECT

def test_connect_accepted():
    # RFC 9113 8.5: CONNECT has :method and :authority only, and DATA flows on the stream.
    c = make_server()
    c.feed(headers(1, literal_block([(":method", "CONNECT"), (":authority", "example.com:443")])))
    [head] = c.of("head")
    assert head[1:4] == (1, 0, "CONNECT")
    assert (":authority", "example.com:443") in head[5]
    c.write_head(1, 200, "", "", [], False)
    c.feed(data(1, b"tunnelled bytes"))
    assert merged_data(c.events, 1) == b"tunnelled bytes"
    assert c.write_data(1, b"back", False) == 4


@pytest.mark.parametrize("extra", [(":scheme", "https"), (":path", "/")])
def test_connect_with_scheme_or_path(extra):
    # RFC 9113 8.5: "The :scheme and :path pseudo-header fields MUST be omitted."
    check_request_rejected([(":method", "CONNECT"), (":authority", "example.com:443"), extra],
                           end_stream=False)


def test_connect_without_authority():
    # RFC 9113 8.5: ":authority ... contains the host and port to connect to" - required
    # (known libcno defect: accepted without it).
    check_request_rejected([(":method", "CONNECT")], end_stream=False)


WS = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
      (":path", "/chat"), (":authority", "example.com")]


def test_extended_connect_when_advertised():
    # RFC 8441 section 4: with SETTINGS_ENABLE_CONNECT_PROTOCOL=1 sent (and acknowledged),
    # a CONNECT with :protocol, :scheme and :path is valid; docs/raw.md: :protocol stays at
    # the front of the headers.
    c = make_server(local={"enable_connect_protocol": 1})
    c.feed(headers(1, literal_block(WS + [("sec-websocket-version", "13")])))
    [head] = c.of("head")
    assert head[1:5] == (1, 0, "CONNECT", "/chat")
    assert sorted(head[5][:3]) == [(":authority", "example.com"), (":protocol", "websocket"),
                                   (":scheme", "https")]
    assert head[5][-1] == ("sec-websocket-version", "13")


def test_extended_connect_not_advertised():
    # RFC 8441 section 3/4: :protocol is only allowed after we advertised
    # SETTINGS_ENABLE_CONNECT_PROTOCOL=1; otherwise the request is malformed.
    check_request_rejected(WS, end_stream=False)


@pytest.mark.parametrize("missing", [":scheme", ":path"])
def test_extended_connect_requires_scheme_and_path(missing):
    # RFC 8441 section 4: "On requests that contain the :protocol pseudo-header field, the
    # :scheme and :path pseudo-header fields of the target URI MUST also be included."
    c = make_server(local={"enable_connect_protocol": 1})
    check_malformed(c, 1, headers(1, literal_block([f for f in WS if f[0] != missing])))


def test_server_advertises_enable_connect_protocol():
    c = make_server(local={"enable_connect_protocol": 1})
    assert c.local_settings["enable_connect_protocol"] == 1


# ---------------------------------------------------------------------------------------------
# 8.1.1 content-length

def test_content_length_exceeded_by_data():
    # RFC 9113 8.1.1: content-length must equal the DATA payload; more DATA than declared is
    # malformed as soon as it arrives (known libcno defect: only caught at END_STREAM).
    c = make_server()
    open_stream(c, 1, GET + [("content-length", "10")])
    c.feed(data(1, b"12345"))
    check_malformed(c, 1, data(1, b"123456"))
    assert len(merged_data(c.events, 1)) <= 10


def test_content_length_end_stream_early():
    # RFC 9113 8.1.1: END_STREAM before content-length bytes arrived.
    c = make_server()
    open_stream(c, 1, GET + [("content-length", "10")])
    check_malformed(c, 1, data(1, b"12345", end_stream=True))


def test_content_length_headers_end_stream():
    # RFC 9113 8.1.1: a request with content-length 5 that ends with its HEADERS.
    c = make_server()
    check_malformed(c, 1, headers(1, c.block(GET + [("content-length", "5")]), end_stream=True))


def test_content_length_exact():
    c = make_server()
    open_stream(c, 1, GET + [("content-length", "10")])
    c.feed(data(1, b"12345"), data(1, b"67890", end_stream=True))
    assert merged_data(c.events, 1) == b"1234567890"
    assert ("tail", 1, None) in c.events
    assert not c.take(RST_STREAM)


@pytest.mark.parametrize("value", ["abc", "-1", "1 0", "5, 6"])
def test_content_length_invalid(value):
    # RFC 9113 8.1.1 / RFC 9110 8.6: a content-length that is not a number cannot match.
    check_request_rejected(GET + [("content-length", value)], end_stream=False)


def test_response_content_length_mismatch():
    # RFC 9113 8.1.1, response side.
    c = make_client()
    request(c)
    c.feed(headers(1, c.block(RESP + [("content-length", "3")])))
    check_malformed(c, 1, data(1, b"four", end_stream=True))


def test_head_response_content_length_without_data():
    # RFC 9110 9.3.2 / RFC 9113 8.1.1: a HEAD response has no content whatever its
    # content-length says.
    c = make_client()
    sid = c.next_stream
    c.write_head(sid, 0, "HEAD", "/", CLIENT_HEADERS, True)
    c.feed(headers(sid, c.block(RESP + [("content-length", "100")]), end_stream=True))
    assert [e[2] for e in c.of("head")] == [200]
    assert ("tail", sid, None) in c.events
    assert not c.take(RST_STREAM)


@pytest.mark.parametrize("status", ["204", "304"])
def test_no_content_status_with_content_length(status):
    # RFC 9110 8.6: 204/304 responses carry no content.
    c = make_client()
    request(c)
    c.feed(headers(1, c.block([(":status", status), ("content-length", "7")]),
                   end_stream=True))
    assert [e[2] for e in c.of("head")] == [int(status)]
    assert not c.take(RST_STREAM)


# ---------------------------------------------------------------------------------------------
# 8.1 Informational responses

def test_informational_responses_each_fire_head():
    # RFC 9113 8.1: any number of 1xx HEADERS before the final response; docs/raw.md:
    # on_message_head fires once per 1xx too.
    c = make_client()
    request(c)
    c.feed(headers(1, c.block([(":status", "100")])),
           headers(1, c.block([(":status", "103"), ("link", "</a.css>; rel=preload")])),
           headers(1, c.block(RESP)), data(1, b"ok", end_stream=True))
    assert [(e[1], e[2]) for e in c.of("head")] == [(1, 100), (1, 103), (1, 200)]
    assert c.of("head")[1][5] == [("link", "</a.css>; rel=preload")]
    assert c.of("tail") == [("tail", 1, None)]
    assert merged_data(c.events, 1) == b"ok"


def test_informational_with_end_stream():
    # RFC 9113 8.1: "A HEADERS frame with the END_STREAM flag set that carries an
    # informational status code is malformed".
    c = make_client()
    request(c)
    check_malformed(c, 1, headers(1, c.block([(":status", "100")]), end_stream=True))


def test_server_sends_informational_then_final():
    # RFC 9113 8.1 on the sending side: write_head(1xx, final=False) then the final head.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    c.write_head(1, 103, "", "", [("link", "</s.js>")], False)
    c.write_head(1, 200, "", "", [], True)
    hs = c.take(HEADERS)
    assert [h.headers[0] for h in hs] == [(":status", "103"), (":status", "200")]
    assert [bool(h.flags & 1) for h in hs] == [False, True]


# ---------------------------------------------------------------------------------------------
# 6.5.2 SETTINGS_MAX_HEADER_LIST_SIZE

def big_request_block(c, value_len):
    return c.block(GET + [("x-big", "v" * value_len)], huffman=False)


def test_header_list_over_default_limit_refused():
    # RFC 9113 6.5.2 / docs/raw.md: a header list over max_header_list_size (65536 by
    # default) ends that stream with REFUSED_STREAM, not the connection (known libcno
    # defect: ignored); the block is still decoded.
    c = make_server()
    block = big_request_block(c, 70000)
    w = headers(1, block[:16000], end_headers=False, end_stream=True)
    for i in range(16000, len(block), 16000):
        w += continuation(1, block[i:i + 16000], end_headers=i + 16000 >= len(block))
    expect_stream_error(c, w, 1, REFUSED_STREAM)
    assert not c.of("head")
    assert_alive(c)
    open_stream(c, 3, GET + [("x-after", "1")], end_stream=True)
    assert [e[5][-1] for e in c.of("head")] == [("x-after", "1")]


def header_list_size(fields):
    # RFC 9113 6.5.2: name + value + 32 per field, uncompressed.
    return sum(len(k) + len(v) + 32 for k, v in fields)


def test_header_list_size_boundary():
    # RFC 9113 6.5.2: exactly the advertised size is acceptable, one byte more is not.
    c = make_server(local={"max_header_list_size": 1000})
    base = header_list_size(GET + [("x-pad", "")])
    ok = GET + [("x-pad", "p" * (1000 - base))]
    assert header_list_size(ok) == 1000
    c.feed(headers(1, literal_block(ok), end_stream=True))
    assert [e[1] for e in c.of("head")] == [1]
    too_big = GET + [("x-pad", "p" * (1001 - base))]
    expect_stream_error(c, headers(3, literal_block(too_big), end_stream=True), 3,
                        REFUSED_STREAM)
    assert [e[1] for e in c.of("head")] == [1]


def test_header_list_size_counts_per_field_overhead():
    # RFC 9113 6.5.2: the 32-byte per-field overhead counts: 30 one-byte fields are ~1000.
    c = make_server(local={"max_header_list_size": 1000})
    fields = GET + [("x%d" % i, "v") for i in range(25)]
    assert sum(len(k) + len(v) for k, v in fields) < 300 < 1000 < header_list_size(fields)
    expect_stream_error(c, headers(1, literal_block(fields), end_stream=True), 1, REFUSED_STREAM)


def test_max_header_list_size_advertised():
    # docs/raw.md: our default max_header_list_size is 65536, and it is sent.
    c = make_server()
    assert c.local_settings["max_header_list_size"] == 65536
    s = recorder_class()(server=True)
    s.connection_made(True)
    [f] = s.take(SETTINGS)
    assert dict(f.settings).get(6) == 65536
    assert dict(f.settings).get(3) == 100


def test_response_header_list_over_limit():
    # RFC 9113 6.5.2: the limit protects a client too; the stream ends, the connection lives.
    c = make_client(local={"max_header_list_size": 500})
    request(c)
    request(c)
    c.reset_log()
    c.feed(headers(1, literal_block(RESP + [("x-big", "b" * 600)]), end_stream=True))
    rst = c.take(RST_STREAM)
    assert [r.stream for r in rst] == [1]
    assert not c.of("head")
    assert_alive(c)
    c.feed(headers(3, c.block(RESP), end_stream=True))
    assert [e[1] for e in c.of("head")] == [3]


# ---------------------------------------------------------------------------------------------
# on_message_head / on_message_push argument shapes (docs/raw.md)

def test_request_head_shape():
    # docs/raw.md: code 0; method and path as str, removed from headers; :authority and
    # :scheme at the front; regular fields in order; names and values str.
    c = make_server()
    c.feed(headers(1, c.block([(":method", "POST"), (":scheme", "https"), (":path", "/a?b=c"),
                               (":authority", "example.com"), ("content-type", "text/plain"),
                               ("x-two", "2"), ("x-one", "1")])))
    [(_, stream, code, method, path, hs)] = c.of("head")
    assert (stream, code, method, path) == (1, 0, "POST", "/a?b=c")
    assert type(code) is int and type(method) is str and type(path) is str
    assert isinstance(hs, list) and all(type(h) is tuple and len(h) == 2 for h in hs)
    assert all(type(k) is str and type(v) is str for k, v in hs)
    assert hs[:2] in ([(":scheme", "https"), (":authority", "example.com")],
                      [(":authority", "example.com"), (":scheme", "https")])
    assert hs[2:] == [("content-type", "text/plain"), ("x-two", "2"), ("x-one", "1")]


def test_response_head_shape():
    # docs/raw.md: code is the status as int; method and path ""; :status removed.
    c = make_client()
    request(c)
    c.feed(headers(1, c.block([(":status", "404"), ("content-type", "text/html"),
                               ("set-cookie", "a=1"), ("set-cookie", "b=2")]), end_stream=True))
    [(_, stream, code, method, path, hs)] = c.of("head")
    assert (stream, code, method, path) == (1, 404, "", "")
    assert type(code) is int
    assert hs == [("content-type", "text/html"), ("set-cookie", "a=1"), ("set-cookie", "b=2")]


def test_headers_latin1_roundtrip():
    # docs/raw.md: str is latin-1 (lossless for any byte 0x80-0xff).
    c = make_server()
    c.feed(headers(1, literal_block(GET + [("x-bytes", b"caf\xe9 \xff")]), end_stream=True))
    [head] = c.of("head")
    assert head[5][-1] == ("x-bytes", "caf\xe9 \xff")


def test_push_shape():
    # docs/raw.md: on_message_push(stream, parent, method, path, headers), then the pushed
    # response arrives as on_message_head on the promised stream.
    c = make_client(push=True)
    request(c)
    push_to_client(c, 1, 2)
    [(_, stream, parent, method, path, hs)] = c.of("push")
    assert (stream, parent, method, path) == (2, 1, "GET", "/pushed")
    assert sorted(hs) == [(":authority", "example.com"), (":scheme", "https")]
    assert [(e[1], e[2]) for e in c.of("head")] == [(2, 200)]
    assert ("start", 2) in c.events


def test_push_promise_with_invalid_request_refused():
    # RFC 9113 8.4: a promised request must be safe and cacheable, without content; one that
    # is malformed or unsafe (POST) is a stream error PROTOCOL_ERROR on the promised stream.
    c = make_client(push=True)
    request(c)
    c.reset_log()
    w = push_promise(1, 2, literal_block([(":method", "POST"), (":scheme", "https"),
                                          (":path", "/"), (":authority", "example.com")]))
    expect_error(c, w, PROTOCOL_ERROR, stream=2)
    assert not c.of("push")


def test_push_promise_when_push_disabled():
    # RFC 9113 6.6 / 8.4: PUSH_PROMISE after we sent ENABLE_PUSH=0 is a connection error
    # PROTOCOL_ERROR (a Recorder without on_message_push advertises 0).
    c = make_client()
    request(c)
    expect_connection_error(c, push_promise(1, 2, c.block(GET)), PROTOCOL_ERROR)


def test_client_rejects_request_headers_as_response():
    # RFC 9113 8.3.2: a response carrying request pseudo-headers is malformed.
    c = make_client()
    request(c)
    check_malformed(c, 1, headers(1, literal_block(GET), end_stream=True))
