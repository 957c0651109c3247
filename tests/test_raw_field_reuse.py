"""The engine's field fast paths (issue 13) keep RFC 9113 8.2's rules.

- The HPACK decoder hands out one (name, value) tuple per table entry, so a field the peer
  repeats by index decodes to the same object every time (no allocation).
- The engine remembers, by identity, a few regular fields that passed the checks of
  RFC 9113 8.2 and does not check them again; the tuples the caller writes go to the
  encoder as they are. A remembered field still counts as a regular field (a
  pseudo-header after it is malformed, 8.3), a remembered tuple holds one reference until
  the connection goes, and long fields are not remembered.
- The delivered header list is the decoded one without :method and :path (or :status).
"""
import gc
import sys

import hypothesis
import hypothesis.strategies as st
import pytest

import cno
import cno.errors
import cno.hpack
import cno.raw as raw
import h1_util
from raw_frames import (
    PROTOCOL_ERROR, STREAM_CLOSED, assert_alive, data, expect_stream_error, headers,
    make_client, make_server, recorder_class,
)

UA = ("user-agent", "field-reuse-test/1.0")
ACCEPT = ("accept", "text/html")


def request_fields(path="/", extra=(UA, ACCEPT)):
    return [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
            (":path", path), *extra]


@pytest.mark.parametrize("raw_mode", [False, True], ids=["str", "bytes"])
def test_indexed_fields_decode_to_one_tuple_per_entry(raw_mode):
    enc, dec = cno.hpack.Encoder(), cno.hpack.Decoder()
    fields = request_fields()
    first = dec.decode(enc.encode(fields), raw=raw_mode)
    second = dec.decode(enc.encode(fields), raw=raw_mode)
    assert first == second
    assert [type(t) for t in second] == [tuple] * len(fields)
    # :method GET and :scheme https are static entries; the rest were indexed by the
    # first block and come back as references to the dynamic table.
    for a, b in zip(first[:2], second[:2]):
        assert a is b
    for a, b in zip(first[2:], second[2:]):
        assert b == a
    third = dec.decode(enc.encode(fields), raw=raw_mode)
    for a, b in zip(second, third):
        assert a is b, (a, b)


def test_shared_tuples_are_released_with_the_table():
    enc, dec = cno.hpack.Encoder(), cno.hpack.Decoder()
    fields = [("x-one", "a" * 40)]
    dec.decode(enc.encode(fields))
    t = dec.decode(enc.encode(fields))[0]
    base = sys.getrefcount(t)
    dec.header_table_size = 0        # evicts the entry, and the tuple it cached
    assert sys.getrefcount(t) == base - 1


def test_server_delivers_the_same_fields_whatever_the_pseudo_header_order():
    c = make_server()
    orders = [
        [(":path", "/p"), (":authority", "example.com"), (":method", "GET"),
         (":scheme", "https"), UA],
        [(":scheme", "https"), (":method", "GET"), (":path", "/p"), UA, ACCEPT],
        [(":method", "GET"), (":path", "/p"), (":scheme", "https"), UA],
    ]
    for i, fields in enumerate(orders):
        sid = 1 + 2 * i
        c.feed(headers(sid, c.block(fields), end_stream=True))
        head = c.of("head")[-1]
        assert head[:5] == ("head", sid, 0, "GET", "/p")
        assert head[5] == [f for f in fields if f[0] not in (":method", ":path")]
    assert_alive(c)


def test_a_remembered_field_still_counts_as_regular():
    """RFC 9113 8.3: pseudo-header fields come before the regular ones; a regular field the
    engine already checked (and so does not check again) still closes the pseudo part."""
    c = make_server()
    c.feed(headers(1, c.block(request_fields()), end_stream=True))
    assert c.of("head")
    late = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), UA,
            (":path", "/late")]
    expect_stream_error(c, headers(3, c.block(late), end_stream=True), 3, PROTOCOL_ERROR)
    assert_alive(c)


@pytest.mark.parametrize("bad", [
    ("connection", "keep-alive"),
    ("user-agent", " padded"),
    ("te", "gzip"),
    ("User-Agent", "x"),
], ids=["connection-specific", "padded-value", "te-not-trailers", "upper-case-name"])
def test_checks_still_apply_after_valid_fields_were_remembered(bad):
    c = make_server()
    c.feed(headers(1, c.block(request_fields()), end_stream=True))
    c.feed(headers(3, c.block(request_fields()), end_stream=True))
    assert len(c.of("head")) == 2
    expect_stream_error(c, headers(5, c.block(request_fields(extra=(UA, ACCEPT, bad))),
                                   end_stream=True), 5, PROTOCOL_ERROR)
    assert_alive(c)


@pytest.mark.parametrize("fields", [
    [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
     (":path", "/"), (":path", "/")],
    [(":method", "GET"), (":method", "GET"), (":scheme", "https"),
     (":authority", "example.com"), (":path", "/")],
    [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
     (":scheme", "https"), (":path", "/")],
], ids=["path-twice", "method-twice", "scheme-twice"])
def test_remembered_pseudo_headers_still_count_once(fields):
    """8.3: each pseudo-header field at most once, also when its tuple was remembered from
    an earlier request (the same table entry decodes to the same tuple)."""
    c = make_server()
    c.feed(headers(1, c.block(request_fields()), end_stream=True))
    c.feed(headers(3, c.block(request_fields()), end_stream=True))
    assert len(c.of("head")) == 2
    expect_stream_error(c, headers(5, c.block(fields), end_stream=True), 5, PROTOCOL_ERROR)
    assert_alive(c)


def test_many_remembered_pseudo_headers_keep_their_kinds():
    """More pseudo-header tuples than the engine remembers (each path and authority a
    table entry of its own, so one tuple each): every request still gets its own method,
    path and authority, whichever ones the cache kept or dropped."""
    c = make_server(local={"max_concurrent_streams": 1000})
    for i in range(300):
        sid = 1 + 2 * i
        method = ("GET", "HEAD", "DELETE")[i % 3]
        fields = [(":method", method), (":scheme", ("https", "http")[i % 2]),
                  (":authority", "a%d.example" % (i % 37)), (":path", "/p%d" % (i % 53))]
        c.feed(headers(sid, c.block(fields), end_stream=True))
        head = c.of("head")[-1]
        assert head[:5] == ("head", sid, 0, method, "/p%d" % (i % 53)), head
        assert head[5] == fields[1:3], head
        c.write_head(sid, 200, "", "", [], True)
    assert_alive(c)


def test_a_remembered_pseudo_header_after_a_regular_field_is_malformed():
    c = make_server()
    for sid in (1, 3):
        c.feed(headers(sid, c.block(request_fields("/x")), end_stream=True))
    late = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"), UA,
            (":path", "/x")]          # the remembered :path tuple, after user-agent
    expect_stream_error(c, headers(5, c.block(late), end_stream=True), 5, PROTOCOL_ERROR)
    assert_alive(c)


def test_a_pseudo_header_with_a_bad_value_is_refused_every_time():
    c = make_server()
    bad = request_fields("/a b\r")[:3] + [(":path", "/a\r\nb")]
    for sid in (1, 3):
        expect_stream_error(c, headers(sid, c.block(bad), end_stream=True), sid,
                            PROTOCOL_ERROR)
    assert_alive(c)


def test_protocol_is_not_remembered_across_a_settings_change():
    """:protocol is allowed only while SETTINGS_ENABLE_CONNECT_PROTOCOL is on (RFC 8441):
    its tuple is looked at on every request, never remembered as valid."""
    c = make_server(local={"enable_connect_protocol": 1})
    ws = [(":method", "CONNECT"), (":protocol", "websocket"), (":scheme", "https"),
          (":authority", "example.com"), (":path", "/chat")]
    c.feed(headers(1, c.block(ws)))
    assert c.of("head")[-1][3] == "CONNECT"
    c.update_settings(enable_connect_protocol=0)
    c.ack_settings()
    expect_stream_error(c, headers(3, c.block(ws)), 3, PROTOCOL_ERROR)


def test_delivered_header_lists_are_ordinary_lists():
    """The decoded list is made with room for a usual block; it behaves as any list, and a
    block longer than that room is delivered whole."""
    import copy
    import pickle

    kept = []

    class Keep(raw.Connection):
        def on_message_head(self, stream, code, method, path, fields):
            kept.append(fields)

    c = Keep(server=True)
    c.connection_made(True)
    enc = cno.hpack.Encoder()
    c.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\0\0\0\4\0\0\0\0\0")
    many = [("x-field-%d" % i, "v%d" % i) for i in range(40)]
    for sid, extra in ((1, [UA]), (3, many)):
        block = enc.encode(request_fields(extra=extra))
        c.data_received(headers(sid, block, end_stream=True))
    short, long = kept
    assert short == request_fields(extra=[UA])[1:3] + [UA]
    assert long == request_fields(extra=many)[1:3] + many
    for fields in (short, long):
        n = len(fields)
        fields.append(("x-more", "1"))
        fields.extend([("x-a", "b")] * 50)
        del fields[:3]
        assert len(fields) == n + 51 - 3
        assert pickle.loads(pickle.dumps(fields)) == fields
        assert copy.copy(fields) == fields
        fields.sort()
        fields.clear()
        assert fields == []


def test_a_stream_ended_is_not_found_again():
    """The engine remembers the last stream it looked up: once that stream ended, a frame
    for it is a frame on a closed stream (RFC 9113 5.1), not a write to a stale one."""
    c = make_server()
    c.feed(headers(1, c.block(request_fields()), end_stream=True))
    c.write_head(1, 200, "", "", [], True)
    with pytest.raises(cno.errors.InvalidStream):
        c.write_data(1, b"late", True)
    expect_stream_error(c, data(1, b"late"), 1, STREAM_CLOSED)


def test_content_length_is_read_every_time():
    """content-length is never skipped: a repeated one still binds the body (8.1.1)."""
    c = make_server()
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", "example.com"),
              (":path", "/"), ("content-length", "3")]
    for sid in (1, 3):   # 3 bytes promised, none sent
        expect_stream_error(c, headers(sid, c.block(fields), end_stream=True), sid,
                            PROTOCOL_ERROR)
    assert_alive(c)


def test_a_content_length_written_back_is_still_read_when_it_comes_in_again():
    """A written content-length is remembered for writing only: echoing the tuple a
    request decoded to (the same object the next request's index gives) does not make
    inbound parsing skip it (8.1.1 binds the body every time)."""
    got = []

    class Echo(recorder_class()):
        def on_message_head(self, stream, code, method, path, fields):
            got.append(fields)
            super().on_message_head(stream, code, method, path, fields)

    c = make_server(cls=Echo)
    fields = [(":method", "POST"), (":scheme", "https"), (":authority", "example.com"),
              (":path", "/"), ("content-length", "3")]
    for sid in (1, 3):   # (the second one refers to the table entry the first one made)
        c.feed(headers(sid, c.block(fields)) + data(sid, b"abc", end_stream=True))
        length = [f for f in got[-1] if f[0] == "content-length"][0]
        c.write_head(sid, 200, "", "", [length], False)   # echoed: remembered as written
        c.write_data(sid, b"xyz", True)
    c.feed(headers(5, c.block(fields)))
    assert [f for f in got[-1] if f[0] == "content-length"][0] is length   # the same tuple
    expect_stream_error(c, data(5, b"abcd", end_stream=True), 5, PROTOCOL_ERROR)
    assert_alive(c)


def test_te_other_than_trailers_is_refused_when_written():
    """RFC 9113 8.2.2: te "MUST NOT contain any value other than 'trailers'"."""
    c = make_client()
    c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), ("te", "trailers")], True)
    with pytest.raises(cno.UsageError, match="te"):
        c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), ("te", "gzip")], True)


def test_client_response_fields_without_status():
    c = make_client()
    for _ in range(2):
        sid = c.next_stream
        c.write_head(sid, 0, "GET", "/", [(":scheme", "https"), (":authority", "a")], True)
        resp = [(":status", "200"), ("content-type", "text/plain"), ("x-a", "1")]
        c.feed(headers(sid, c.block(resp), end_stream=True))
        head = c.of("head")[-1]
        assert head[:3] == ("head", sid, 200)
        assert head[5] == resp[1:]


def test_written_fields_checked_once_still_close_the_pseudo_part():
    c = make_client()
    ua = ("user-agent", "x")
    c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), ua], True)
    c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), ua], True)
    with pytest.raises(cno.UsageError, match="pseudo-header"):
        c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), ua,
                                                    (":authority", "a")], True)
    with pytest.raises(cno.UsageError, match="invalid value"):
        c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), ua,
                                                    ("x-bad", "a\r\nb")], True)


def test_written_fields_go_out_unchanged():
    """The caller's tuples are encoded as they are: the same block as a copy would give."""
    fields = [(":scheme", "https"), ("user-agent", "x"), (b"accept", b"*/*"),
              ("cookie", "a=b", True)]
    blocks = []
    for reuse in (True, False):
        c = make_client()
        c.write_head(c.next_stream, 0, "GET", "/",
                     fields if reuse else [tuple(list(f)) for f in fields], True)
        c.write_head(c.next_stream, 0, "GET", "/", fields, True)
        blocks.append(b"".join(f.payload for f in c.take()))
    assert blocks[0] == blocks[1]


def test_request_method_field_follows_the_method_given():
    """The :method field of the last request is reused while the method is the same
    object; any other method (an equal copy too) gets a field of its own."""
    c = make_client()
    get = "GET"
    methods = [get, get, "POST", "".join(["GE", "T"]), b"PUT", get]
    for m in methods:
        c.write_head(c.next_stream, 0, m, "/", [(":scheme", "https"),
                                                (":authority", "example.com")], True)
    dec = cno.hpack.Decoder()
    sent = [dict(dec.decode(f.payload, raw=True))[b":method"] for f in c.take()]
    assert sent == [b"GET", b"GET", b"POST", b"GET", b"PUT", b"GET"]


def test_remembered_tuples_hold_one_reference_until_the_connection_goes():
    short = ("x-short", "v")
    long = ("x-long", "v" * 300)      # over the length worth remembering
    base_short, base_long = sys.getrefcount(short), sys.getrefcount(long)
    c = make_client()
    c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), short, long], True)
    # one reference for the checked fields, one for the HPACK encoder's sent indexes
    assert sys.getrefcount(short) == base_short + 2
    assert sys.getrefcount(long) == base_long
    c.write_head(c.next_stream, 0, "GET", "/", [(":scheme", "https"), short, long], True)
    assert sys.getrefcount(short) == base_short + 2
    del c
    gc.collect()
    assert sys.getrefcount(short) == base_short


# -- HTTP/1.1 ----------------------------------------------------------------------------

def h1_heads(c):
    return [e for e in c.events if e[0] == "head"]


def test_h1_repeated_lines_give_the_same_tuple():
    line = ("User-Agent", "field-reuse-test/1.0 (a browser, more or less)")
    c = h1_util.server()
    c.data_received(h1_util.get("/a", extra=[line]) + h1_util.get("/b", extra=[line]))
    c2 = h1_util.server()
    c2.data_received(h1_util.get("/c", extra=[line]))
    fields = [e[5] for e in h1_heads(c) + h1_heads(c2)]
    ua = [[f for f in fs if f[0] == "user-agent"][0] for fs in fields]
    assert ua[0] == ("user-agent", line[1])
    assert ua[0] is ua[1] is ua[2]


def test_h1_scheme_and_authority_follow_the_connection_and_the_request():
    """:scheme and :authority of requests read over HTTP/1.1 are reused tuples while they
    stay the same, and new ones when the scheme, the Host or bytes_headers change."""
    c = h1_util.server()
    c.data_received(h1_util.get("/1", host="a.example") + h1_util.get("/2", host="a.example"))
    c.scheme = "https"
    c.data_received(h1_util.get("/3", host="b.example"))
    c.bytes_headers = True
    c.data_received(h1_util.get("/4", host="b.example"))
    heads = [e[5][:2] for e in h1_heads(c)]
    assert heads == [
        [(":scheme", "http"), (":authority", "a.example")],
        [(":scheme", "http"), (":authority", "a.example")],
        [(":scheme", "https"), (":authority", "b.example")],
        [(b":scheme", b"https"), (b":authority", b"b.example")],
    ]
    assert heads[0][0] is heads[1][0] and heads[0][1] is heads[1][1]


def test_h1_a_line_that_differs_inside_is_parsed_again():
    """The line cache compares whole lines: a line of the same length whose first and last
    bytes match a cached one, with a control character inside, is still refused
    (RFC 9110 5.5)."""
    good = "x-test: " + "a" * 40
    bad = "x-test: " + "a" * 20 + "\x01" + "a" * 19
    c = h1_util.server()
    c.data_received(h1_util.request(headers=[("Host", "a"), good]))
    assert len(h1_heads(c)) == 1
    h1_util.expect_error(c, h1_util.request(headers=[("Host", "a"), bad]), 400)


def test_h1_fields_the_engine_acts_on_are_read_every_time():
    body_line = ("Content-Length", "3")
    c = h1_util.server()
    c.data_received(h1_util.request("POST", headers=[("Host", "a"), body_line], body=b"abc")
                    + h1_util.request("POST", headers=[("Host", "a"), body_line],
                                      body=b"xyz"))
    data = [e[1:] for e in h1_util.merge_data(c.events) if e[0] == "data"]
    assert data == [(1, b"abc"), (3, b"xyz")]
    # a second Host line is refused every time (RFC 9112 3.2), not served from a cache
    h1_util.expect_error(c, h1_util.request(headers=[("Host", "a"), ("Host", "a")]), 400)


@pytest.mark.parametrize("bytes_headers", [False, True], ids=["str", "bytes"])
def test_h1_written_fields_go_out_the_same_every_time(bytes_headers):
    conv = (lambda s: s.encode()) if bytes_headers else (lambda s: s)
    fields = [(conv("content-type"), conv("text/plain")), (conv("X-Upper"), conv("v")),
              (conv("server"), conv("w3"))]
    c = h1_util.server()
    c.data_received(h1_util.get("/1") + h1_util.get("/2") + h1_util.get("/3"))
    wires = []
    for sid in (1, 3, 5):
        h1_util.answer(c, sid, headers=fields, body=b"hi")
        wires.append(h1_util.split_head(c.take())[1])
    assert wires[0] == wires[1] == wires[2]
    assert wires[0] == [("content-type", "text/plain"), ("x-upper", "v"), ("server", "w3"),
                        ("content-length", "2")]


def test_h1_content_length_written_is_noted_every_time():
    """The engine acts on content-length (no chunked framing then): never remembered."""
    c = h1_util.server()
    c.data_received(h1_util.get("/1") + h1_util.get("/2"))
    cl = ("content-length", "2")
    for sid in (1, 3):
        c.write_head(sid, 200, "", "", [cl], False)
        c.write_data(sid, b"ok", True)
        start, fields, rest = h1_util.split_head(c.take())
        assert ("transfer-encoding", "chunked") not in fields
        assert rest == b"ok"


def test_h1_the_first_content_length_written_counts_and_a_bad_one_is_refused():
    c = h1_util.server()
    c.data_received(h1_util.get("/1") + h1_util.get("/2"))
    with pytest.raises(cno.UsageError, match="invalid content-length"):
        c.write_head(1, 200, "", "", [("content-length", "2x")], False)
    c.write_head(1, 200, "", "", [("content-length", "3"), ("x-a", "b")], False)
    with pytest.raises(cno.UsageError):
        c.write_data(1, b"four", True)            # more than the 3 bytes announced
    c.write_data(1, b"abc", True)


# -- HPACK encoder: fields sent as an index, remembered by identity ------------------------

POOL = [(":method", "GET"), (":path", "/"), ("accept", "*/*"), ("user-agent", "u" * 30),
        ("x-a", "1"), ("x-b", "2" * 60), ("x-c", "3" * 200), ("cookie", "k=v"),
        ("x-big", "b" * 300), (b"x-bytes", b"v"), ("accept-encoding", "gzip, deflate")]


@hypothesis.settings(max_examples=200, deadline=None)
@hypothesis.given(
    blocks=st.lists(st.lists(st.integers(0, len(POOL) - 1), max_size=8), max_size=12),
    table=st.sampled_from([0, 64, 200, 4096]),
    resize_at=st.integers(0, 12))
def test_encoder_reusing_tuples_writes_what_copies_would(blocks, table, resize_at):
    """The same tuple objects again and again, against fresh equal tuples each time: the
    wire is identical, through evictions and table size changes (RFC 7541 4.3, 6.3)."""
    reused, fresh = cno.hpack.Encoder(), cno.hpack.Encoder()
    for enc in (reused, fresh):
        enc.header_table_size = table
    for k, block in enumerate(blocks):
        if k == resize_at:
            for enc in (reused, fresh):
                enc.header_table_size = 100
        fields = [POOL[i] for i in block]
        a = reused.encode(fields)
        b = fresh.encode([tuple(list(f)) for f in fields])
        assert a == b


def test_encoder_holds_one_reference_per_remembered_tuple():
    field = ("x-remembered", "v")
    base = sys.getrefcount(field)
    enc = cno.hpack.Encoder()
    enc.encode([field])
    enc.encode([field])
    assert sys.getrefcount(field) == base + 1
    del enc
    gc.collect()
    assert sys.getrefcount(field) == base


def test_priority_fields_are_read_every_time():
    """RFC 9218 4: each request's priority field sets that stream's priority, even when
    the peer repeats it by index (the same tuple), and when the caller writes the same
    tuple again."""
    c = make_server()
    prio = ("priority", "u=1, i")
    for sid in (1, 3):
        c.feed(headers(sid, c.block(request_fields(extra=(UA, prio)))))
        assert c.priority(sid) == (1, True)
    client = make_client()
    for _ in range(2):
        sid = client.next_stream
        client.write_head(sid, 0, "GET", "/", [(":scheme", "https"), prio], False)
        assert client.priority(sid) == (1, True)
