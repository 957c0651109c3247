"""cno.raw.Connection's header knobs (docs/raw.md, "Header knobs"): validate_inbound_headers,
validate_outbound_headers, malformed_is_connection_error and hpack_index_all, each against
the default behaviour it changes."""
import os
import time

import hpack
import pytest

import cno.hpack
import cno.raw as raw
from cno.errors import UsageError
from cno.hpack import NeverIndexedHeaderTuple
from raw_frames import (
    CLIENT_HEADERS, HEADERS, PROTOCOL_ERROR, RESP, RST_STREAM, STREAM_CLOSED, assert_alive,
    data, expect_connection_error, expect_stream_error, headers, literal_block, recorder_class,
    make_client, make_server, open_stream, push_promise, request, window_update,
)

GET = [(":authority", "example.com"), (":path", "/"), (":scheme", "https"), (":method", "GET"),
       ("user-agent", "someua/0.0.1")]

# Requests RFC 9113 8.2/8.3 make malformed (and h2 rejects), each with a :method.
INVALID_REQUESTS = [
    GET + [("Uppercase", "name")],
    GET + [(":late", "pseudo-header")],
    [(":path", "duplicate-pseudo-header")] + GET,
    GET + [("connection", "close")],
    GET + [("transfer-encoding", "gzip")],
    GET + [("te", "chunked")],
    GET + [(" name", "name with leading space")],
    GET + [("name", "value with trailing space ")],
    GET + [("illegal:characters", "value")],
    GET + [("illegal-\r-characters", "value")],
    GET + [("illegal-characters", "some \x00 value")],
    GET + [("", "empty name")],
    [(":protocol", "websocket")] + GET,
    [(":method", "GET"), (":authority", "a")],             # no :scheme, no :path
    [(":status", "200")] + GET,                              # a response pseudo-header
    GET + [("host", "other.example")],                       # not the :authority (8.3.1)
]


def without_first(fields, *names):
    """fields less the first field of each name (what on_message_head leaves in headers)."""
    out, left = [], set(names)
    for f in fields:
        if f[0] in left:
            left.discard(f[0])
        else:
            out.append(f)
    return out


# ---------------------------------------------------------------------------------------------
# validate_inbound_headers

@pytest.mark.parametrize("fields", INVALID_REQUESTS)
def test_inbound_checks_on_by_default(fields):
    c = make_server()
    expect_stream_error(c, headers(1, literal_block(fields), end_stream=True), 1, PROTOCOL_ERROR)


@pytest.mark.parametrize("fields", INVALID_REQUESTS)
def test_inbound_unchecked_request_delivered_as_received(fields):
    c = make_server(validate_inbound_headers=False)
    c.feed(headers(1, literal_block(fields), end_stream=True))
    assert not c.take(RST_STREAM)
    [head] = c.of("head")
    method = next(v for n, v in fields if n == ":method")
    path = next((v for n, v in fields if n == ":path"), "")
    assert head[1:5] == (1, 0, method, path)
    assert head[5] == without_first(fields, ":method", ":path")
    assert c.of("tail") == [("tail", 1, None)]


@pytest.mark.parametrize("fields", [
    [(":path", "/"), (":scheme", "https")],                                  # no :method
    [(":method", "POST"), ("content-length", "x1")],                         # not digits
    [(":method", "POST"), ("content-length", "1"), ("content-length", "2")],  # conflicting
])
def test_inbound_unchecked_still_needs_what_the_engine_reads(fields):
    c = make_server(validate_inbound_headers=False)
    expect_stream_error(c, headers(1, literal_block(fields)), 1, PROTOCOL_ERROR)
    assert not c.of("head")


def test_inbound_unchecked_content_length_still_counted():
    c = make_server(validate_inbound_headers=False)
    c.feed(headers(1, literal_block([(":method", "POST"), ("Content-Type", "x"),
                                     ("content-length", "3")])))
    assert c.of("head")
    expect_stream_error(c, data(1, b"abcd", end_stream=True), 1, PROTOCOL_ERROR)


def test_inbound_unchecked_response_and_trailers():
    c = make_client(validate_inbound_headers=False)
    sid = request(c, final=True)
    fields = [("X-Upper", "1"), (":status", "200"), ("connection", "close"), (":status", "404")]
    c.feed(headers(sid, literal_block(fields)))
    [head] = c.of("head")
    assert head[1:5] == (sid, 200, "", "")
    assert head[5] == [("X-Upper", "1"), ("connection", "close"), (":status", "404")]
    trailers = [(":path", "/"), ("Bad Name", " v ")]
    c.feed(headers(sid, literal_block(trailers), end_stream=True))
    assert c.of("tail") == [("tail", sid, trailers)]


@pytest.mark.parametrize("status", [[], [(":status", "2000")], [(":status", "ok!")],
                                    [(":status", "99")]])
def test_inbound_unchecked_response_still_needs_a_status(status):
    c = make_client(validate_inbound_headers=False)
    sid = request(c, final=True)
    expect_stream_error(c, headers(sid, literal_block(status + [("x", "1")])), sid,
                        PROTOCOL_ERROR)


def test_inbound_unchecked_trailers_must_still_end_the_stream():
    c = make_server(validate_inbound_headers=False)
    open_stream(c, 1)
    expect_stream_error(c, headers(1, literal_block([("x", "1")])), 1, PROTOCOL_ERROR)


def test_inbound_unchecked_push_promise():
    c = make_client(push=True, validate_inbound_headers=False)
    sid = request(c, final=True)
    fields = [(":method", "GET"), ("Upper", "x"), (":path", "/p"), (":path", "/again")]
    c.feed(push_promise(sid, 2, literal_block(fields)))
    [push] = c.of("push")
    assert push[1:6] == (2, sid, "GET", "/p", [("Upper", "x"), (":path", "/again")])


def test_inbound_unchecked_fields_are_not_remembered_as_checked():
    """A field let through unchecked is not taken for a checked one later: the peer's
    indexed field decodes to the same tuple, and the checks, back on, still see it."""
    c = make_server(validate_inbound_headers=False)
    bad = [(":method", "GET"), (":scheme", "https"), (":path", "/"), ("x-bad", "v ")]
    open_stream(c, 1, bad, end_stream=True)
    assert c.of("head") and not c.take(RST_STREAM)
    c.validate_inbound_headers = True
    c.reset_log()
    expect_stream_error(c, headers(3, c.block(bad), end_stream=True), 3, PROTOCOL_ERROR)


# ---------------------------------------------------------------------------------------------
# validate_outbound_headers

INVALID_OUT = [
    [("Upper", "x")],
    [("connection", "close")],
    [("te", "chunked")],
    [("x", " padded ")],
    [("x", "a\r\nb")],
    [("x-ok", "1"), (":authority", "late")],
    [(":status", "200")],
]


@pytest.mark.parametrize("extra", INVALID_OUT)
def test_outbound_checks_on_by_default(extra):
    c = make_client()
    with pytest.raises(UsageError):
        c.write_head(c.next_stream, 0, "GET", "/", CLIENT_HEADERS + extra, True)


@pytest.mark.parametrize("extra", INVALID_OUT)
def test_outbound_unchecked_written_as_given(extra):
    c = make_client(validate_outbound_headers=False)
    sid = request(c, final=True, extra=extra)
    [f] = c.take(HEADERS)
    assert f.stream == sid
    assert [tuple(h) for h in f.headers] == [(":method", "GET"), (":path", "/")] + \
        CLIENT_HEADERS + extra


def test_outbound_unchecked_response_and_trailers():
    c = make_server(validate_outbound_headers=False)
    open_stream(c, 1)
    c.write_head(1, 200, "", "", [("X-Y", "1"), (":path", "/")], False)
    c.write_tail(1, [(":status", "500"), ("connection", "x")])
    hs = c.take(HEADERS)
    assert [list(map(tuple, f.headers)) for f in hs] == [
        [(":status", "200"), ("X-Y", "1"), (":path", "/")],
        [(":status", "500"), ("connection", "x")],
    ]


def test_outbound_unchecked_still_reads_priority():
    c = make_client(validate_outbound_headers=False)
    sid = request(c, final=False, extra=[("priority", "u=1, i")])
    assert c.priority(sid) == (1, True)


@pytest.mark.parametrize("validate", [True, False])
@pytest.mark.parametrize("cls", [NeverIndexedHeaderTuple, hpack.NeverIndexedHeaderTuple])
def test_never_indexed_header_tuples_stay_never_indexed(validate, cls):
    """A NeverIndexedHeaderTuple (cno's or hpack's) given to write_head goes out as a
    never-indexed literal (RFC 7541 6.2.3), like a (name, value, True) triple."""
    c = make_client(validate_outbound_headers=validate)
    request(c, final=True, extra=[cls("x-secret", "s3cret-value-long-enough")])
    [f] = c.take(HEADERS)
    decoded = hpack.Decoder().decode(f.block)   # (the connection's first block)
    secret = [h for h in decoded if h[0] == "x-secret"]
    assert secret == [("x-secret", "s3cret-value-long-enough")]
    assert isinstance(secret[0], hpack.NeverIndexedHeaderTuple)


# ---------------------------------------------------------------------------------------------
# malformed_is_connection_error

def malformed_cases():
    """(name, make the connection, the input that is malformed, the stream)."""
    def server():
        return make_server(malformed_is_connection_error=True)

    def server_open(fields=None):
        def make():
            c = server()
            open_stream(c, 1, fields)
            return c
        return make

    def client_open():
        c = make_client(push=True, malformed_is_connection_error=True)
        request(c, final=True)
        return c

    post = [(":method", "POST"), (":scheme", "https"), (":path", "/"), ("content-length", "2")]
    return [
        ("request field", server, headers(1, literal_block(GET + [("Up", "x")]), True), 1),
        ("content-length and END_STREAM", server,
         headers(1, literal_block(post), end_stream=True), 1),
        ("DATA past content-length", server_open(post), data(1, b"abc"), 1),
        ("DATA short of content-length", server_open(post), data(1, b"a", end_stream=True), 1),
        ("trailers without END_STREAM", server_open(), headers(1, literal_block([("x", "1")])), 1),
        ("trailers with a pseudo-header", server_open(),
         headers(1, literal_block([(":path", "/")]), end_stream=True), 1),
        ("response without :status", client_open, headers(1, literal_block([("x", "1")])), 1),
        ("1xx ending the stream", client_open,
         headers(1, literal_block([(":status", "103")]), end_stream=True), 1),
        ("DATA before the response head", client_open, data(1, b"x"), 1),
        ("push promise fields", client_open,
         push_promise(1, 2, literal_block([(":method", "GET"), (":path", "/"),
                                           (":scheme", "https"), ("Up", "x")])), 2),
    ]


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda case: case[0])
def test_malformed_is_a_stream_error_by_default(case):
    _, make, bad, stream = case
    c = make()
    c.malformed_is_connection_error = False
    expect_stream_error(c, bad, stream, PROTOCOL_ERROR)
    assert_alive(c)


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda case: case[0])
def test_malformed_is_a_connection_error_when_asked(case):
    _, make, bad, stream = case
    c = make()
    e = expect_connection_error(c, bad, PROTOCOL_ERROR)
    assert "stream %d" % stream in str(e)
    assert not c.take(RST_STREAM)


def test_other_stream_errors_stay_stream_errors():
    """Only malformed messages (8.1.1) change: a WINDOW_UPDATE of 0 (6.9), a pushed POST
    (8.4) and DATA on a half-closed stream (5.1) are still stream errors."""
    c = make_server(malformed_is_connection_error=True)
    open_stream(c, 1)
    expect_stream_error(c, window_update(1, 0), 1, PROTOCOL_ERROR)
    open_stream(c, 3, end_stream=True)
    expect_stream_error(c, data(3, b"x"), 3, STREAM_CLOSED)
    c = make_client(push=True, malformed_is_connection_error=True)
    sid = request(c, final=True)
    block = literal_block([(":method", "POST"), (":path", "/"), (":scheme", "https")])
    expect_stream_error(c, push_promise(sid, 2, block), 2, PROTOCOL_ERROR)


# ---------------------------------------------------------------------------------------------
# hpack_index_all on a connection

def test_index_all_follows_the_peer_table_size():
    """With hpack_index_all the encoder takes the peer's SETTINGS_HEADER_TABLE_SIZE as it
    is (no 4096 cap) and announces it as the hpack package does."""
    c = make_client({"header_table_size": 8192}, hpack_index_all=True)
    ref = hpack.Encoder()
    ref.header_table_size = 8192
    for _ in range(2):
        sid = request(c, final=True, extra=[("x-long", "v" * 3000)])
        [f] = c.take(HEADERS)
        want = ref.encode([(":method", "GET"), (":path", "/")] + CLIENT_HEADERS +
                          [("x-long", "v" * 3000)])
        assert f.block == want, sid
    assert c.hpack_index_all


def test_knob_defaults():
    c = raw.Connection()
    assert c.validate_inbound_headers is True
    assert c.validate_outbound_headers is True
    assert c.malformed_is_connection_error is False
    assert c.hpack_index_all is False


# ---------------------------------------------------------------------------------------------
# cno._core.field_is_valid: the engine's received-field check, for faces validating in Python

@pytest.mark.parametrize("name, value, ok", [
    (b"x-a", b"v", True), (b":path", b"/", True), (b":", b"", True), ("x", "v", True),
    (b"x", b"a\tb", True), (b"x", b"", True),
    (b"", b"v", False), (b"X", b"v", False), (b"a:b", b"v", False), (b"::a", b"v", False),
    (b"a b", b"v", False), (b"a\x7f", b"v", False), (b"x", b" v", False), (b"x", b"v\t", False),
    (b"x", b"a\r\nb", False), (b"x", b"a\x00", False), (1, b"v", False), (b"x", None, False),
])
def test_field_is_valid(name, value, ok):
    from cno._core import field_is_valid
    assert field_is_valid(name, value) is ok
    # the same verdict as the engine gives a received request carrying the field
    if isinstance(name, bytes) and isinstance(value, bytes) and name[:1] != b":":
        c = make_server()
        c.feed(headers(1, literal_block(GET + [(name, value)]), end_stream=True))
        assert bool(c.of("head")) is ok


@pytest.mark.parametrize("fields, words", [
    (GET + [("", "v")], "empty field name"),
    (GET + [("x Y", "v")], "invalid field name"),
    (GET + [("te", "gzip")], "te other than trailers"),
    (GET + [("content-length", "1x")], "is not a number"),
    (GET + [("content-length", " 15")], "is not a number"),
    (GET + [("content-length", "15"), ("content-length", "16")],
     "conflicting content-length values 15 and 16"),
    ([(":method", "GET"), ("x", "1"), (":path", "/")], "after a regular field"),
    (GET[:3], "pseudo-header fields missing"),
    (GET + [("host", "other.example")], "differs from :authority"),
])
def test_malformed_messages_say_why(fields, words):
    c = make_server(malformed_is_connection_error=True)
    e = expect_connection_error(c, headers(1, literal_block(fields), end_stream=True),
                                PROTOCOL_ERROR)
    assert "on stream 1" in str(e) and words in str(e), str(e)


def test_malformed_trailers_say_why():
    c = make_server(malformed_is_connection_error=True)
    open_stream(c, 1)
    e = expect_connection_error(
        c, headers(1, literal_block([(":path", "/")]), end_stream=True), PROTOCOL_ERROR)
    assert "pseudo-header in trailers" in str(e)


def test_malformed_push_goaway_names_the_stream_before_it():
    """The GOAWAY for a malformed PUSH_PROMISE does not name the promised stream: it was
    never acted on (RFC 9113 6.8)."""
    c = make_client(push=True, malformed_is_connection_error=True)
    sid = request(c, final=True)
    block = literal_block([(":method", "GET"), (":path", "/"), (":scheme", "https"),
                           ("Up", "x")])
    from cno import errors
    with pytest.raises(errors.ProtocolError):
        c.data_received(push_promise(sid, 2, block))
    [g] = [f for f in c.take() if f.type == 7]
    assert g.last_stream_id == 0 and g.error_code == PROTOCOL_ERROR


# ---------------------------------------------------------------------------------------------
# header_tuple_types: the classes received HTTP/2 fields are instances of

class TypedRecorder(recorder_class(push=True)):
    """Keeps the received header lists themselves (the Recorder copies them to tuples)."""

    def on_message_head(self, stream, code, method, path, headers):
        self.events.append(("head", stream, headers))

    def on_message_tail(self, stream, trailers):
        self.events.append(("tail", stream, trailers))

    def on_message_push(self, stream, parent, method, path, headers):
        self.events.append(("push", stream, headers))


def classes(fields):
    return [type(f) for f in fields]


# A block with a field of each representation (RFC 7541 6.1, 6.2.1, 6.2.2, 6.2.3).
def typed_block(sensitive="s3cret"):
    return (b"\x82"                                            # :method GET, indexed
            + b"\x86\x41\x0bexample.com"                       # :scheme http; :authority, incremental
            + b"\x04\x02/p"                                     # :path /p, without indexing
            + b"\x10\x08x-secret" + bytes([len(sensitive)]) + sensitive.encode())  # never indexed


TYPED = [(":method", "GET"), (":scheme", "http"), (":authority", "example.com"), (":path", "/p"),
         ("x-secret", "s3cret")]


@pytest.mark.parametrize("types", [(hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple),
                                   (cno.hpack.HeaderTuple, cno.hpack.NeverIndexedHeaderTuple)])
@pytest.mark.parametrize("as_bytes", [False, True])
def test_header_tuple_types_request(types, as_bytes):
    c = make_server(cls=TypedRecorder, pseudo_in_headers=True, bytes_headers=as_bytes,
                    header_tuple_types=types)
    assert c.header_tuple_types == types
    field, never = types
    c.feed(headers(1, typed_block(), end_stream=True))
    for sid in (3, 5):   # :authority now from the dynamic table
        c.feed(headers(sid, b"\x82\x86\xbe\x04\x02/p" + typed_block()[-17:], end_stream=True))
    [(_, _, first), (_, _, second), (_, _, third)] = c.of("head")
    want = [tuple(x.encode() if as_bytes else x for x in f) for f in TYPED]
    assert first == second == third == want
    assert classes(first) == classes(second) == classes(third) == [field] * 4 + [never]
    # a field repeated through the table is one object (as plain tuples are: the
    # engine's identity caches depend on it): the static :method, the dynamic :authority
    assert first[0] is second[0] is third[0] and second[2] is third[2]


def test_header_tuple_types_default_is_plain_tuples():
    c = make_server(cls=TypedRecorder, pseudo_in_headers=True)
    assert c.header_tuple_types is None
    c.feed(headers(1, typed_block(), end_stream=True))
    [(_, _, fields)] = c.of("head")
    assert fields == TYPED
    assert classes(fields) == [tuple] * 4 + [cno.hpack.NeverIndexedHeaderTuple]


def test_header_tuple_types_tuple_means_plain():
    c = make_server(cls=TypedRecorder, pseudo_in_headers=True,
                    header_tuple_types=(tuple, tuple))
    c.feed(headers(1, typed_block(), end_stream=True))
    [(_, _, fields)] = c.of("head")
    assert classes(fields) == [tuple] * 5


def test_header_tuple_types_response_trailers_and_push():
    types = (hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple)
    c = make_client(cls=TypedRecorder, header_tuple_types=types, bytes_headers=True)
    sid = request(c, final=True)
    c.feed(push_promise(sid, 2, c.block([(":method", "GET"), (":scheme", "https"),
                                         (":path", "/pushed"), (":authority", "example.com"),
                                         hpack.NeverIndexedHeaderTuple("x-push", "p")])))
    c.feed(headers(sid, c.block([(":status", "200"), ("server", "t"),
                                 hpack.NeverIndexedHeaderTuple("set-cookie", "a=b")])))
    c.feed(headers(sid, c.block([("x-trailer", "1"),
                                 hpack.NeverIndexedHeaderTuple("x-sig", "z")]),
                   end_stream=True))
    [(_, _, pushed)] = c.of("push")
    [(_, _, head)] = c.of("head")
    [(_, _, tail)] = c.of("tail")
    assert pushed[-1] == (b"x-push", b"p") and classes(pushed) == (
        [hpack.HeaderTuple] * (len(pushed) - 1) + [hpack.NeverIndexedHeaderTuple])
    assert head == [(b"server", b"t"), (b"set-cookie", b"a=b")]
    assert classes(head) == [hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple]
    assert tail == [(b"x-trailer", b"1"), (b"x-sig", b"z")]
    assert classes(tail) == [hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple]


def test_header_tuple_types_changed_later_drops_the_cached_instances():
    class A(tuple):
        __slots__ = ()

    class B(tuple):
        __slots__ = ()

    c = make_server(cls=TypedRecorder, pseudo_in_headers=True, header_tuple_types=(A, A))
    c.feed(headers(1, typed_block(), end_stream=True))
    c.header_tuple_types = (B, A)
    c.feed(headers(3, b"\x82\x86\xbe\x04\x02/p", end_stream=True))
    c.header_tuple_types = None
    c.feed(headers(5, b"\x82\x86\xbe\x04\x02/p", end_stream=True))
    [(_, _, a), (_, _, b), (_, _, plain)] = c.of("head")
    assert classes(a) == [A] * 5
    assert classes(b) == [B] * 4
    assert classes(plain) == [tuple] * 4
    assert a[:4] == b == plain


class WithDict(tuple):
    pass


@pytest.mark.parametrize("value", [
    hpack.HeaderTuple, (hpack.HeaderTuple,), [hpack.HeaderTuple, hpack.HeaderTuple],
    (hpack.HeaderTuple, list), (int, tuple), (WithDict, tuple), (tuple, WithDict),
    ("tuple", tuple), (os.stat_result, tuple), (tuple, time.struct_time),
])
def test_header_tuple_types_checked(value):
    c = raw.Connection()
    with pytest.raises(TypeError):
        c.header_tuple_types = value
    assert c.header_tuple_types is None
