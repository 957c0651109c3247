"""The public API of cno.hpack: a drop-in for the hpack package's Encoder and Decoder, and
the encoder's documented policy (what it indexes, Huffman, size updates)."""
import os
import time

import hpack
import pytest

import cno.hpack
from cno.hpack import (
    DEFAULT_HEADER_TABLE_SIZE,
    DEFAULT_MAX_HEADER_LIST_SIZE,
    Decoder,
    Encoder,
    HeaderTuple,
    InvalidTableIndex,
    InvalidTableSizeError,
    NeverIndexedHeaderTuple,
    OversizedHeaderListError,
)
from hpack_wire import enc_int

REQUEST = [(":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
           (":path", "/index.html"), ("user-agent", "cno-test/1.0"), ("accept", "*/*"),
           ("x-custom", "value")]


def round_trip(headers, **kw):
    return Decoder().decode(Encoder().encode(headers, **kw))


def in_step(e, d):
    return (len(e), e.table_bytes, e.header_table_size) == (
        len(d), d.table_bytes, d.header_table_size)


# ----------------------------------------------------------------------------------------
# Module surface.

def test_exports():
    for name in cno.hpack.__all__:
        assert hasattr(cno.hpack, name)
    for name in ("Encoder", "Decoder", "HeaderTuple", "NeverIndexedHeaderTuple",
                 "HPACKError", "HPACKDecodingError", "InvalidTableIndex",
                 "InvalidTableSizeError", "OversizedHeaderListError"):
        assert name in cno.hpack.__all__
        assert name in hpack.__all__   # the names a drop-in must offer
    assert DEFAULT_HEADER_TABLE_SIZE == 4096
    assert DEFAULT_MAX_HEADER_LIST_SIZE == 65536


def test_header_tuple_classes():
    h = HeaderTuple("a", "b")
    n = NeverIndexedHeaderTuple("a", "b")
    assert h == ("a", "b") == n
    assert isinstance(h, tuple) and isinstance(n, HeaderTuple)
    assert h.indexable is True
    assert n.indexable is False
    assert len(n) == 2 and n[0] == "a" and n[1] == "b"


def test_docstring_example():
    block = Encoder().encode([(":method", "GET"), ("user-agent", "cno")])
    assert Decoder().decode(block) == [(":method", "GET"), ("user-agent", "cno")]


# ----------------------------------------------------------------------------------------
# Encoder input shapes.

def test_encode_returns_bytes_with_huffman_by_default():
    e = Encoder()
    block = e.encode([("x-a", "hello")])
    assert type(block) is bytes
    assert block == Encoder().encode([("x-a", "hello")], huffman=True)
    assert block != Encoder().encode([("x-a", "hello")], huffman=False)


@pytest.mark.parametrize("make", [
    list, tuple, iter,
    lambda hs: [HeaderTuple(n, v) for n, v in hs],
    lambda hs: [hpack.HeaderTuple(n, v) for n, v in hs],
    lambda hs: [(n, v, False) for n, v in hs],
    lambda hs: [[n, v] for n, v in hs],
    lambda hs: [(n.encode(), v.encode()) for n, v in hs],
    lambda hs: [(n.encode(), v) for n, v in hs],
    lambda hs: [(bytearray(n.encode()), memoryview(v.encode())) for n, v in hs],
], ids=["list", "tuple", "iterator", "cno-HeaderTuple", "hpack-HeaderTuple", "3-tuple",
        "lists", "bytes", "mixed", "buffers"])
def test_input_shapes_give_the_same_block(make):
    expected = Encoder().encode(REQUEST)
    assert Encoder().encode(make(REQUEST)) == expected
    assert Decoder().decode(expected) == REQUEST


def test_dict_pseudo_headers_first():
    headers = {"user-agent": "x", ":method": "GET", "accept": "*/*", ":path": "/",
               ":authority": "a.example"}
    assert round_trip(headers) == [(":method", "GET"), (":path", "/"),
                                   (":authority", "a.example"), ("user-agent", "x"),
                                   ("accept", "*/*")]
    bheaders = {b"user-agent": b"x", b":method": b"GET"}
    assert round_trip(bheaders) == [(":method", "GET"), ("user-agent", "x")]


def test_dict_matches_hpack_order():
    headers = {"b": "1", ":status": "200", "a": "2", ":x": "3"}
    ours = round_trip(headers)
    theirs = hpack.Decoder().decode(hpack.Encoder().encode(headers))
    assert ours == [tuple(h) for h in theirs]


def test_int_values_by_str():
    assert round_trip([("content-length", 42), ("x-n", 0), ("x-f", 1.5)]) == [
        ("content-length", "42"), ("x-n", "0"), ("x-f", "1.5")]
    # Same as the hpack package.
    block = hpack.Encoder().encode([("content-length", 42)])
    assert [tuple(h) for h in hpack.Decoder().decode(block)] == [("content-length", "42")]


def test_str_subclass_and_bytes_subclass():
    class S(str):
        pass

    class B(bytes):
        pass

    assert round_trip([(S("x-s"), S("v")), (B(b"x-b"), B(b"w"))]) == [("x-s", "v"),
                                                                       ("x-b", "w")]


def test_str_and_bytes_share_table_entries():
    e = Encoder()
    e.encode([("x-custom", "value")])
    assert e.encode([(b"x-custom", b"value")]) == b"\xbe"
    assert e.encode([("x-custom", b"value")]) == b"\xbe"
    e.encode([(b"x-other", b"\xe9")])
    assert e.encode([("x-other", "\xe9")]) == b"\xbe"


def test_latin1_both_ways():
    value = bytes(range(256))
    block = Encoder().encode([("x-bin", value)])
    assert Decoder().decode(block) == [("x-bin", value.decode("latin-1"))]
    assert Decoder().decode(block, raw=True) == [(b"x-bin", value)]
    assert Encoder().encode([("x-bin", value.decode("latin-1"))]) == block


# ----------------------------------------------------------------------------------------
# Bad input leaves the encoder usable and in step.

BAD_LISTS = {
    "non-latin-1-value": ([("x-new", "1"), ("x-a", "1"), ("x-bad", "caf\xe9 \u20ac")],
                          UnicodeEncodeError),
    "non-latin-1-name": ([("x-new", "1"), ("\u0100", "v")], UnicodeEncodeError),
    "non-latin-1-3-tuple": ([("x-new", "1", False), ("x-bad", "\u2603", True)],
                            UnicodeEncodeError),
    "non-latin-1-header-tuple": ([HeaderTuple("x-new", "1"), HeaderTuple("x", "\U0001F600")],
                                 UnicodeEncodeError),
    "non-latin-1-dict": ({"x-new": "1", "x-bad": "\u20ac"}, UnicodeEncodeError),
    "one-tuple": ([("x-new", "1"), ("x-bad",)], ValueError),
    "four-tuple": ([("x-new", "1"), ("x-bad", "v", True, 1)], ValueError),
    "empty-tuple": ([("x-new", "1"), ()], ValueError),
    "not-a-sequence": ([("x-new", "1"), None], TypeError),
}


@pytest.mark.parametrize("name", sorted(BAD_LISTS))
def test_bad_headers_leave_encoder_in_step(name):
    bad, exc = BAD_LISTS[name]
    e = Encoder()
    first = [("x-a", "1")]
    block1 = e.encode(first)
    e.header_table_size = 256            # pending size update
    with pytest.raises(exc):
        e.encode(bad)
    assert len(e) == 1
    good = [("x-new", "1"), ("x-a", "1")]
    block2 = e.encode(good)
    assert block2.startswith(b"\x3f\xe1\x01")    # the pending update survived
    d = Decoder()                         # never saw the bad block
    assert d.decode(block1) == first
    d.max_allowed_table_size = 256
    assert d.decode(block2) == good
    assert in_step(e, d)
    assert e.encode(good) == b"\xbe\xbf"      # x-new (62) and x-a (63) are indexed


def test_non_latin1_as_bytes_is_fine():
    value = "caf\xe9 \u20ac".encode("utf-8")
    assert Decoder().decode(Encoder().encode([("x", value)]), raw=True) == [(b"x", value)]


# ----------------------------------------------------------------------------------------
# Decoder output and input types.

def test_decode_types():
    block = Encoder().encode([("x-a", b"\xe9\xff"), (":method", "GET")])
    out = Decoder().decode(block)
    assert out == [("x-a", "\xe9\xff"), (":method", "GET")]
    assert all(type(x) is str for h in out for x in h)
    out = Decoder().decode(block, raw=True)
    assert out == [(b"x-a", b"\xe9\xff"), (b":method", b"GET")]
    assert all(type(x) is bytes for h in out for x in h)
    assert all(type(h) is tuple for h in out)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview,
                                  lambda b: memoryview(b"\x00\x00" + b + b"\x00")[2:-1]],
                         ids=["bytes", "bytearray", "memoryview", "memoryview-slice"])
def test_decode_accepts_buffers(wrap):
    block = Encoder().encode(REQUEST)
    assert Decoder().decode(wrap(block)) == REQUEST
    assert Decoder().decode(wrap(block), raw=True) == [(n.encode(), v.encode())
                                                       for n, v in REQUEST]


def test_decode_str_then_raw_same_entries():
    e, d = Encoder(), Decoder()
    assert d.decode(e.encode([("x-a", "\xe91")]), raw=True) == [(b"x-a", b"\xe91")]
    assert d.decode(e.encode([("x-a", "\xe91")])) == [("x-a", "\xe91")]
    assert d.decode(e.encode([("x-b", "2")])) == [("x-b", "2")]
    assert d.decode(b"\xbe\xbf", raw=True) == [(b"x-b", b"2"), (b"x-a", b"\xe91")]


def test_decoder_matches_hpack_on_typical_traffic():
    e = Encoder()
    d, h = Decoder(), hpack.Decoder()
    for i in range(5):
        headers = REQUEST + [("x-request-id", str(i)), ("cookie", "session=%030d" % i)]
        block = e.encode(headers)
        ours = d.decode(block)
        theirs = h.decode(block)
        assert ours == [tuple(x) for x in theirs] == headers


# ----------------------------------------------------------------------------------------
# Sizes.

def test_table_size_properties():
    e, d = Encoder(), Decoder()
    assert e.header_table_size == 4096
    assert d.header_table_size == 4096
    assert d.max_allowed_table_size == 4096
    assert e.max_table_size == 4096
    e.header_table_size = 1000
    assert e.header_table_size == 1000
    d.header_table_size = 1000
    assert d.header_table_size == 1000
    d.max_allowed_table_size = 2000
    assert d.max_allowed_table_size == 2000


def test_encoder_table_capped():
    e = Encoder()
    e.header_table_size = 65536
    assert e.header_table_size == 4096       # documented: reads back the size in use
    assert e.encode([]) == b""
    e = Encoder(max_table_size=65536)
    e.header_table_size = 65536
    assert e.header_table_size == 65536
    assert e.encode([]) == enc_int(65536, 5, 0x20)


def test_encoder_cap_below_default_announced():
    e = Encoder(max_table_size=100)
    assert e.header_table_size == 100
    block = e.encode([(":method", "GET")])
    assert block == b"\x3f\x45\x82"
    d = Decoder()
    d.decode(block)
    assert d.header_table_size == 100


def test_encoder_max_table_size_attribute_caps_table():
    # max_table_size is documented to cap the table whatever the peer allows. It is a
    # writable attribute: writing it must take effect (or it must be read-only).
    e, d = Encoder(), Decoder()
    try:
        e.max_table_size = 100
    except AttributeError:
        return
    for i in range(10):
        headers = [("x-%d" % i, "v")]
        assert d.decode(e.encode(headers)) == headers
        assert e.table_bytes <= 100
        assert e.header_table_size <= 100
        assert in_step(e, d)


def test_decoder_header_table_size_setter_evicts():
    e, d = Encoder(), Decoder()
    d.decode(e.encode([("x-a", "1"), ("x-b", "2")]))
    assert len(d) == 2
    d.header_table_size = 40
    assert len(d) == 1
    assert d.decode(b"\xbe") == [("x-b", "2")]
    d.header_table_size = 0
    assert len(d) == 0 and d.table_bytes == 0


@pytest.mark.parametrize("setter", [
    lambda: setattr(Encoder(), "header_table_size", -1),
    lambda: setattr(Decoder(), "header_table_size", -1),
    lambda: setattr(Decoder(), "max_allowed_table_size", -1),
    lambda: Encoder(max_table_size=-1),
    lambda: Decoder(max_header_list_size=-1),
    lambda: setattr(Decoder(), "max_header_list_size", -1),
    lambda: setattr(Encoder(), "max_table_size", -1),
], ids=["encoder.header_table_size", "decoder.header_table_size",
        "decoder.max_allowed_table_size", "Encoder(max_table_size)",
        "Decoder(max_header_list_size)", "decoder.max_header_list_size",
        "encoder.max_table_size"])
def test_negative_sizes_rejected(setter):
    with pytest.raises(ValueError):
        setter()


def test_negative_size_leaves_encoder_unchanged():
    e = Encoder()
    e.header_table_size = 100
    with pytest.raises(ValueError):
        e.header_table_size = -5
    assert e.header_table_size == 100
    assert e.encode([]) == b"\x3f\x45"


def test_max_header_list_size():
    d = Decoder(max_header_list_size=50)
    assert d.max_header_list_size == 50
    with pytest.raises(OversizedHeaderListError):
        d.decode(Encoder().encode([("x-a", "v" * 20)]))
    d.max_header_list_size = 100
    assert d.max_header_list_size == 100
    assert d.decode(Encoder().encode([("x-a", "v" * 20)])) == [("x-a", "v" * 20)]


def test_max_header_list_size_none_is_unlimited():
    headers = [("x-%d" % i, "v" * 1000) for i in range(200)]   # ~207 KB
    assert Decoder(max_header_list_size=None).decode(Encoder().encode(headers)) == headers
    with pytest.raises(OversizedHeaderListError):
        Decoder().decode(Encoder().encode(headers))


# ----------------------------------------------------------------------------------------
# Huffman only when it is shorter.

def value_h_bit(block, name_len):
    """H bit of the value of a single new-name literal field at the start of block."""
    assert block[0] in (0x00, 0x40, 0x10)
    return block[2 + name_len] & 0x80


def test_huffman_only_when_shorter():
    longer = bytes(range(200, 210))          # long codes: Huffman would be longer
    block = Encoder().encode([(b"x", longer)], huffman=True)
    assert value_h_bit(block, 1) == 0
    assert block.endswith(b"\x0a" + longer)
    block = Encoder().encode([("x", "hello world")], huffman=True)
    assert value_h_bit(block, 1) == 0x80
    assert len(block) < 3 + 1 + len("hello world")
    block = Encoder().encode([("x", "hello world")], huffman=False)
    assert value_h_bit(block, 1) == 0
    assert block == b"\x40\x01x\x0bhello world"


def test_huffman_empty_value_is_plain():
    assert Encoder().encode([("x", "")]) == b"\x40\x01x\x00"


def test_huffman_not_used_when_equal_length():
    # "x" is 7 bits in Huffman: one octet, same as plain, so plain is used.
    assert Encoder().encode([("x", "x")]) == b"\x40\x01x\x01x"


# ----------------------------------------------------------------------------------------
# Dynamic table size updates from the encoder.

def test_size_update_decrease_then_increase():
    e = Encoder()
    e.header_table_size = 100
    e.header_table_size = 4096
    block = e.encode([(":method", "GET")])
    assert block == b"\x3f\x45\x3f\xe1\x1f\x82"
    assert e.encode([(":method", "GET")]) == b"\x82"    # once only


def test_size_update_single_decrease():
    e = Encoder()
    e.header_table_size = 100
    assert e.encode([(":method", "GET")]) == b"\x3f\x45\x82"
    assert e.encode([(":method", "GET")]) == b"\x82"


def test_size_update_no_change():
    e = Encoder()
    e.header_table_size = 4096
    assert e.encode([(":method", "GET")]) == b"\x82"


def test_size_update_several_decreases():
    e = Encoder()
    e.header_table_size = 1000
    e.header_table_size = 100
    e.header_table_size = 200
    assert e.encode([]) == b"\x3f\x45" + enc_int(200, 5, 0x20)


def test_size_update_back_to_previous_value():
    e = Encoder()
    e.header_table_size = 0
    e.header_table_size = 4096
    assert e.encode([]) == b"\x20\x3f\xe1\x1f"


def test_size_update_decoded_in_step():
    e, d = Encoder(), Decoder()
    d.decode(e.encode([("x-a", "1"), ("x-b", "2")]))
    e.header_table_size = 40
    d.max_allowed_table_size = 40
    e.header_table_size = 4096
    d.max_allowed_table_size = 4096
    assert len(e) == 1
    block = e.encode([("x-b", "2"), ("x-a", "1")])
    assert block[:5] == b"\x3f\x09\x3f\xe1\x1f"
    assert d.decode(block) == [("x-b", "2"), ("x-a", "1")]
    assert in_step(e, d)


def test_size_update_zero_disables_indexing():
    e, d = Encoder(), Decoder()
    e.header_table_size = 0
    d.max_allowed_table_size = 0
    for _ in range(3):
        block = e.encode([("x-a", "1")])
        assert d.decode(block) == [("x-a", "1")]
        assert len(e) == 0 == len(d)
    assert block == b"\x00\x03x-a\x011"


# ----------------------------------------------------------------------------------------
# What the encoder indexes.

def test_table_eviction():
    e = Encoder()
    e.header_table_size = 100              # two entries of 36 bytes
    e.encode([("x-a", "1")])
    e.encode([("x-b", "2")])
    assert len(e) == 2 and e.table_bytes == 72
    e.encode([("x-c", "3")])
    assert len(e) == 2 and e.table_bytes == 72
    assert e.encode([("x-c", "3"), ("x-b", "2")]) == b"\xbe\xbf"
    assert e.encode([("x-a", "1")])[0] == 0x40   # evicted: a literal again
    e.header_table_size = 36
    assert len(e) == 1 and e.table_bytes == 36
    e.header_table_size = 0
    assert len(e) == 0 and e.table_bytes == 0


def test_large_field_not_indexed():
    e = Encoder()
    big = "v" * 3100                      # 3 + 3100 + 32 > 3/4 of 4096
    e.encode([("x-a", "1")])
    block = e.encode([("x-big", big)])
    assert block[0] == 0x00
    assert len(e) == 1
    assert e.encode([("x-a", "1")]) == b"\xbe"


def test_repeated_custom_header_indexed():
    e = Encoder()
    first = e.encode([("x-custom", "value")])
    assert first[0] == 0x40
    assert e.encode([("x-custom", "value")]) == b"\xbe"
    e.encode([("x-other", "v")])
    assert e.encode([("x-custom", "value")]) == b"\xbf"


def test_repeated_within_one_block():
    e = Encoder()
    block = e.encode([("x-custom", "value"), ("x-custom", "value")])
    assert block.endswith(b"\xbe")
    assert Decoder().decode(block) == [("x-custom", "value")] * 2


def test_dynamic_name_reuse():
    e = Encoder()
    e.encode([("x-custom", "one")], huffman=False)
    assert e.encode([("x-custom", "two")], huffman=False) == b"\x7e\x03two"


def test_static_table_hits():
    e = Encoder()
    assert e.encode([(":method", "GET"), (":method", "POST"), (":path", "/"),
                     (":path", "/index.html"), (":scheme", "https"), (":status", "404"),
                     ("accept-encoding", "gzip, deflate")]) == bytes(
        [0x82, 0x83, 0x84, 0x85, 0x87, 0x8d, 0x90])
    assert len(e) == 0


@pytest.mark.parametrize("name", ["authorization", "proxy-authorization"])
def test_credentials_never_indexed(name):
    e = Encoder()
    block = e.encode([(name, "Basic dXNlcjpwYXNz")])
    assert block[0] & 0xF0 == 0x10
    assert len(e) == 0
    assert e.encode([(name, "Basic dXNlcjpwYXNz")]) == block
    out = Decoder().decode(block)
    assert out == [(name, "Basic dXNlcjpwYXNz")]
    assert isinstance(out[0], NeverIndexedHeaderTuple)
    assert isinstance(hpack.Decoder().decode(block)[0], hpack.NeverIndexedHeaderTuple)


def test_empty_authorization_never_indexed():
    # ("authorization", "") is a full static entry (23), yet it is sent never-indexed.
    e = Encoder()
    block = e.encode([("authorization", "")])
    assert block == b"\x1f\x08\x00"
    assert isinstance(Decoder().decode(block)[0], NeverIndexedHeaderTuple)


def test_short_cookie_never_indexed_long_cookie_indexed():
    e = Encoder()
    short = e.encode([("cookie", "a" * 19)])
    assert short[0] & 0xF0 == 0x10
    assert len(e) == 0
    long = e.encode([("cookie", "a" * 20)])
    assert long[0] == 0x60      # incremental indexing, static name 32
    assert len(e) == 1
    assert e.encode([("cookie", "a" * 20)]) == b"\xbe"


RARELY_REPEATED = [":path", "content-length", "etag", "location", "set-cookie", "age",
                   "if-modified-since", "if-none-match"]


@pytest.mark.parametrize("name", RARELY_REPEATED)
def test_rarely_repeated_indexed_only_when_seen_again(name):
    # cno/hpack.py: these are indexed only when a value comes back.
    e, d = Encoder(), Decoder()
    first = e.encode([(name, "some-value-123")])
    assert first[0] & 0xF0 == 0x00          # literal without indexing
    assert len(e) == 0
    second = e.encode([(name, "some-value-123")])
    assert second[0] & 0xC0 == 0x40          # seen again: incremental indexing
    assert len(e) == 1
    assert e.encode([(name, "some-value-123")]) == b"\xbe"
    for block in (first, second, b"\xbe"):
        out = d.decode(block)
        assert out == [(name, "some-value-123")]
        assert not isinstance(out[0], NeverIndexedHeaderTuple)
    assert in_step(e, d)


@pytest.mark.parametrize("name", RARELY_REPEATED)
def test_rarely_repeated_distinct_values_not_indexed(name):
    e, d = Encoder(), Decoder()
    for i in range(50):
        block = e.encode([(name, "/distinct/%d" % i)])
        assert block[0] & 0xF0 == 0x00
        assert d.decode(block) == [(name, "/distinct/%d" % i)]
    assert len(e) == 0 == len(d)


def test_path_literal_bytes():
    assert Encoder().encode([(":path", "/sample/path")], huffman=False) == (
        b"\x04\x0c/sample/path")


@pytest.mark.parametrize("make", [
    lambda n, v: (n, v, True),
    lambda n, v: NeverIndexedHeaderTuple(n, v),
    lambda n, v: hpack.NeverIndexedHeaderTuple(n, v),
], ids=["3-tuple", "cno-NeverIndexedHeaderTuple", "hpack-NeverIndexedHeaderTuple"])
def test_sensitive_inputs(make):
    e = Encoder()
    block = e.encode([make("x-secret", "s3cr3t"), make(":method", "GET")])
    assert block[0] & 0xF0 == 0x10
    assert len(e) == 0
    out = Decoder().decode(block)
    assert out == [("x-secret", "s3cr3t"), (":method", "GET")]
    assert all(isinstance(h, NeverIndexedHeaderTuple) for h in out)
    assert all(isinstance(h, hpack.NeverIndexedHeaderTuple)
               for h in hpack.Decoder().decode(block))


def test_sensitive_false_is_indexed():
    e = Encoder()
    assert e.encode([("x-secret", "s3cr3t", False)])[0] == 0x40
    assert len(e) == 1


def test_sensitive_not_sent_as_index_to_existing_entry():
    e = Encoder()
    e.encode([("x-secret", "s3cr3t")])
    block = e.encode([("x-secret", "s3cr3t", True)], huffman=False)
    assert block == b"\x1f\x2f\x06s3cr3t"   # never-indexed, name from dynamic index 62
    assert len(e) == 1


def test_reencoding_decoded_never_indexed():
    decoded = Decoder().decode(Encoder().encode([("x-secret", "v", True), ("x-plain", "w")]))
    assert isinstance(decoded[0], NeverIndexedHeaderTuple)
    assert not isinstance(decoded[1], NeverIndexedHeaderTuple)
    e = Encoder()
    block = e.encode(decoded)
    assert block[0] & 0xF0 == 0x10
    assert len(e) == 1           # only x-plain
    again = Decoder().decode(block)
    assert again == [("x-secret", "v"), ("x-plain", "w")]
    assert isinstance(again[0], NeverIndexedHeaderTuple)
    theirs = hpack.Decoder().decode(block)
    assert isinstance(theirs[0], hpack.NeverIndexedHeaderTuple)
    assert not isinstance(theirs[1], hpack.NeverIndexedHeaderTuple)


def test_decoder_errors_do_not_leak_state_between_instances():
    d1, d2 = Decoder(), Decoder()
    d1.decode(Encoder().encode([("x-a", "1")]))
    with pytest.raises(InvalidTableIndex):
        d2.decode(b"\xbe")
    d2.max_allowed_table_size = 0
    with pytest.raises(InvalidTableSizeError):
        d2.decode(b"\x82")
    assert d1.decode(b"\xbe") == [("x-a", "1")]


def test_reference_counts():
    # The tables own references to the objects they hold, and give them all back.
    import gc
    import sys

    name, value = "x-refcount-" + "n" * 3, b"refcount-value-" + bytes(4)
    before = sys.getrefcount(name), sys.getrefcount(value)
    e = Encoder()
    e.encode([(name, value)])
    # one reference from the table's entry, one from the tuple the encoder remembers as
    # sent (an index next time)
    assert (sys.getrefcount(name), sys.getrefcount(value)) == (before[0] + 2, before[1] + 2)
    e.header_table_size = 0                       # evicted
    assert (sys.getrefcount(name), sys.getrefcount(value)) == before
    e.header_table_size = 4096
    for _ in range(100):
        e.encode([(name, value), ("x-other", "v")])
    del e
    gc.collect()
    assert (sys.getrefcount(name), sys.getrefcount(value)) == before

    d = Decoder()
    out = d.decode(Encoder().encode([("x-a", "value-1")]))
    dname, dvalue = out[0]
    del out
    assert sys.getrefcount(dname) == sys.getrefcount(dvalue) == 3   # local, arg, table
    d.decode(b"\xbe" * 50)
    d.decode(b"\xbe" * 50, raw=True)
    d.header_table_size = 0
    assert sys.getrefcount(dname) == sys.getrefcount(dvalue) == 2


# ---------------------------------------------------------------------------------------------
# Decoder.tuple_types, and cno._hpack.decode_fields (for faces delivering text headers)

def test_decoder_tuple_types():
    e, d = Encoder(), Decoder()
    assert d.tuple_types is None
    fields = [(":method", "GET"), ("x-a", "1"), ("authorization", "s3cret"), ("x-a", "1")]
    blocks = [e.encode(fields), e.encode(fields)]
    plain = d.decode(blocks[0])
    assert [type(h) for h in plain] == [tuple, tuple, NeverIndexedHeaderTuple, tuple]
    d.tuple_types = (hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple)
    typed = d.decode(blocks[1], raw=True)
    assert typed == [tuple(x.encode() for x in f) for f in fields]
    assert [type(h) for h in typed] == [hpack.HeaderTuple, hpack.HeaderTuple,
                                        hpack.NeverIndexedHeaderTuple, hpack.HeaderTuple]
    assert typed[1] is typed[3]   # the same table entry: one object
    with pytest.raises(TypeError):
        d.tuple_types = (dict, tuple)
    assert d.tuple_types == (hpack.HeaderTuple, hpack.NeverIndexedHeaderTuple)


def test_decode_fields_keeps_the_classes():
    from cno._hpack import decode_fields
    fields = [(b":status", b"200"), HeaderTuple(b"server", "é".encode()),
              NeverIndexedHeaderTuple(b"x-s", b"v"), hpack.HeaderTuple(b"a", b"b")]
    for encoding in ("utf-8", "latin-1"):
        out = decode_fields(fields, encoding)
        assert out == [(n.decode(encoding), v.decode(encoding)) for n, v in fields]
        assert [type(h) for h in out] == [type(h) for h in fields]
    with pytest.raises(UnicodeDecodeError):
        decode_fields([(b"x", b"\xff")], "utf-8")


def test_find_field():
    from cno._hpack import find_field
    fields = [(b":a", b"1"), hpack.HeaderTuple(b"cookie", b"x"), ("cookie", "s"),
              NeverIndexedHeaderTuple(b"cookie", b"y"), (b"cookiee", b"z")]
    assert find_field(fields, b"cookie") == 1
    assert find_field(fields, b"cookie", 2) == 3   # (str names never match bytes)
    assert find_field(fields, b"cookie", 4) == -1
    assert find_field(fields, b"cook") == -1
    assert find_field(fields, b"cookie", -3) == 1
    assert find_field([], b"x") == -1


@pytest.mark.parametrize("fields", [
    [(b"a", b"b", b"c")], [[b"a", b"b"]], [time.gmtime(0)],
    # a struct sequence holds hidden items past the tuple's own
    [os.stat_result((b"a", b"b") + (0,) * 8)],
])
def test_decode_fields_refuses_what_it_cannot_rebuild(fields):
    from cno._hpack import decode_fields
    with pytest.raises(TypeError):
        decode_fields(fields, "utf-8")
