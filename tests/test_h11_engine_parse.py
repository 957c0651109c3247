"""The engine's HTTP/1.1 reader and head writer used without a Connection (docs/raw.md,
"HTTP/1.1 without a Connection"): cno._core.parse_h1_head, parse_h1_chunk_line and
write_h1_head."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cno._core import (
    PARSE_REQUEST, PARSE_RESPONSE, PARSE_TRAILERS, parse_h1_chunk_line, parse_h1_head,
    write_h1_head,
)
from cno.errors import ProtocolError, UsageError


def test_request_head_fields_raw_and_in_order():
    data = b"junkPOST /a?b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nX-Y:  v w \r\n\r\nabc"
    end, method, target, version, fields = parse_h1_head(data, 4, PARSE_REQUEST)
    assert data[end:] == b"abc"
    assert (method, target, version) == (b"POST", b"/a?b", b"1.1")
    assert fields == [(b"Host", b"host", b"x"), (b"Content-Length", b"content-length", b"3"),
                      (b"X-Y", b"x-y", b"v w")]


def test_response_heads():
    assert parse_h1_head(b"HTTP/1.0 404 Not  Found\r\n\r\n", 0, PARSE_RESPONSE) == \
        (27, b"1.0", 404, b"Not  Found", [])
    assert parse_h1_head(b"HTTP/1.1 200\nA:b\n\n", 0, PARSE_RESPONSE) == \
        (18, b"1.1", 200, b"", [(b"A", b"a", b"b")])
    assert parse_h1_head(b"HTTP/1.1 204 \r\n\r\n", 0, PARSE_RESPONSE)[3] == b""


def test_incomplete_is_none_at_every_split():
    data = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for i in range(len(data)):
        assert parse_h1_head(data[:i], 0, PARSE_REQUEST) is None
    assert parse_h1_head(bytearray(data), 0, PARSE_REQUEST)[0] == len(data)
    assert parse_h1_head(memoryview(data), 0, PARSE_REQUEST)[0] == len(data)


def test_obs_fold_joined_with_one_space():
    data = b"GET / HTTP/1.1\r\nA: one \r\n  two\r\n\tthree\r\nB: c\r\n\r\n"
    assert parse_h1_head(data)[4] == [(b"A", b"a", b"one  two three"), (b"B", b"b", b"c")]


def test_trailers():
    assert parse_h1_head(b"\r\nrest", 0, PARSE_TRAILERS) == (2, [])
    assert parse_h1_head(b"T: 1\r\n\r\n", 0, PARSE_TRAILERS) == (8, [(b"T", b"t", b"1")])
    assert parse_h1_head(b"T: 1\r\n", 0, PARSE_TRAILERS) is None


@pytest.mark.parametrize("data,kind", [
    (b"\r\n\r\n", PARSE_REQUEST),
    (b"GET  / HTTP/1.1\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1 \r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/11\r\n\r\n", PARSE_REQUEST),
    (b"G(T / HTTP/1.1\r\n\r\n", PARSE_REQUEST),
    (b"GET /\xff HTTP/1.1\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1\r\n folded: x\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1\r\nA : x\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1\r\n: x\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1\r\nno colon\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1\r\nA: x\x00y\r\n\r\n", PARSE_REQUEST),
    (b"GET / HTTP/1.1\r\nA: x\ry\r\n\r\n", PARSE_REQUEST),
    (b"HTTP/1.1 20 OK\r\n\r\n", PARSE_RESPONSE),
    (b"HTTP/1.1 200OK\r\n\r\n", PARSE_RESPONSE),
    (b"HTTP/1.1 200 O\x0cK\r\n\r\n", PARSE_RESPONSE),
    (b"ICY 200 OK\r\n\r\n", PARSE_RESPONSE),
    (b" GET", PARSE_REQUEST),          # incomplete, but nothing valid starts with SP
    (b"\x16\x03\x01", PARSE_REQUEST),  # a TLS ClientHello
])
def test_malformed(data, kind):
    with pytest.raises(ProtocolError) as info:
        parse_h1_head(data, 0, kind)
    assert info.value.status == 400
    # end: past the empty line ending the head, or None if refused before it came.
    if b"\r\n\r\n" in data:
        assert info.value.end == (2 if data.startswith(b"\r\n") else data.index(b"\r\n\r\n") + 4)
    else:
        assert info.value.end is None


def test_other_control_bytes_and_obs_text_pass():
    assert parse_h1_head(b"GET / HTTP/1.1\r\nA: x\x01\x7f\xe9\r\n\r\n")[4] == \
        [(b"A", b"a", b"x\x01\x7f\xe9")]


def test_chunk_lines():
    assert parse_h1_chunk_line(b"1a\r\n") == (4, 26)
    assert parse_h1_chunk_line(b"xx0;name=value \r\n", 2) == (17, 0)
    assert parse_h1_chunk_line(b"FF  \r\n") == (6, 255)
    assert parse_h1_chunk_line(b"7fffffffffffffff\r\n") == (18, 2 ** 63 - 1)
    assert parse_h1_chunk_line(b"1a") is None
    assert parse_h1_chunk_line(b"1a\r") is None
    for bad in (b"\r\n", b"g\r\n", b"1 2\r\n", b"8000000000000000\r\n", b"1a\n\r\n"):
        with pytest.raises(ProtocolError) as info:
            parse_h1_chunk_line(bad + b"next")
        assert info.value.end == len(bad)


def test_start_outside_buffer():
    with pytest.raises(UsageError):
        parse_h1_head(b"abc", 4)
    with pytest.raises(UsageError):
        parse_h1_chunk_line(b"abc", -1)


def test_write_head_host_first_fields_as_given():
    fields = [(b"X-A", b"x-a", b"1"), (b"HOST", b"host", b"h"), (b"x-b", b"x-b", b"")]
    assert write_h1_head((b"GET", b" ", b"/", b" HTTP/1.1\r\n"), fields) == \
        b"GET / HTTP/1.1\r\nHOST: h\r\nX-A: 1\r\nx-b: \r\n\r\n"
    assert write_h1_head((b"HTTP/1.1 200 \r\n",), []) == b"HTTP/1.1 200 \r\n\r\n"
    assert write_h1_head((), [(b"T", b"t", b"v")]) == b"T: v\r\n\r\n"


def test_written_head_parses_back():
    data = b"PUT /x HTTP/1.1\r\nHost: a\r\nContent-Type: t\r\nX-Y: a b\r\n\r\n"
    end, method, target, version, fields = parse_h1_head(data)
    assert write_h1_head((method, b" ", target, b" HTTP/" + version + b"\r\n"), fields) == data


@pytest.mark.parametrize("start,fields", [
    (("GET / HTTP/1.1\r\n",), []),
    ((b"GET / HTTP/1.1\r\n",), [(b"A", b"a")]),
    ((b"GET / HTTP/1.1\r\n",), [("A", "a", "1")]),
    ((b"GET / HTTP/1.1\r\n",), [[b"A", b"a", b"1"]]),
])
def test_write_head_refuses_other_types(start, fields):
    with pytest.raises(UsageError):
        write_h1_head(start, fields)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=200), st.sampled_from([PARSE_REQUEST, PARSE_RESPONSE, PARSE_TRAILERS]))
def test_any_bytes_parse_or_raise_protocol_error(data, kind):
    for blob in (data, b"GET / HTTP/1.1\r\n" + data, b"HTTP/1.1 200 OK\r\n" + data):
        try:
            r = parse_h1_head(blob, 0, kind)
        except ProtocolError as exc:
            assert exc.end is None or 0 < exc.end <= len(blob)
            continue
        assert r is None or 0 < r[0] <= len(blob)
        try:
            r = parse_h1_chunk_line(blob)
        except ProtocolError as exc:
            assert 0 < exc.end <= len(blob)
            continue
        assert r is None or (0 < r[0] <= len(blob) and r[1] >= 0)
