"""RFC 7541 Appendix C examples, byte for byte, plus integer and Huffman (Appendix B) checks.

Every hex string below is also decoded with the ``hpack`` package (test_vectors_*_hpack),
so a typo in a vector shows up as a failure of the vector itself, not of cno.
"""
import hpack
import pytest
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH

from cno.hpack import Decoder, Encoder, InvalidTableIndex, NeverIndexedHeaderTuple
from hpack_wire import enc_int


def hx(s):
    return bytes.fromhex("".join(s.split()))


def hpack_huffman(data):
    return HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(data)


# ----------------------------------------------------------------------------------------
# The vectors (RFC 7541 Appendix C).

C2 = {
    # name: (wire, headers, entries after, table bytes after, never indexed)
    "C.2.1": ("400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572",
              ("custom-key", "custom-header"), 1, 55, False),
    "C.2.2": ("040c 2f73 616d 706c 652f 7061 7468", (":path", "/sample/path"), 0, 0, False),
    "C.2.3": ("1008 7061 7373 776f 7264 0673 6563 7265 74", ("password", "secret"), 0, 0, True),
    "C.2.4": ("82", (":method", "GET"), 0, 0, False),
}

REQUESTS = [
    [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com")],
    [(":method", "GET"), (":scheme", "http"), (":path", "/"), (":authority", "www.example.com"),
     ("cache-control", "no-cache")],
    [(":method", "GET"), (":scheme", "https"), (":path", "/index.html"),
     (":authority", "www.example.com"), ("custom-key", "custom-value")],
]
REQUEST_TABLE = [(1, 57), (2, 110), (3, 164)]

C3 = [
    "8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
    "8286 84be 5808 6e6f 2d63 6163 6865",
    "8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65",
]
C4 = [
    "8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff",
    "8286 84be 5886 a8eb 1064 9cbf",
    "8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf",
]

RESPONSES = [
    [(":status", "302"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
     ("location", "https://www.example.com")],
    [(":status", "307"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:21 GMT"),
     ("location", "https://www.example.com")],
    [(":status", "200"), ("cache-control", "private"), ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
     ("location", "https://www.example.com"), ("content-encoding", "gzip"),
     ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1")],
]
RESPONSE_TABLE = [(4, 222), (4, 222), (3, 215)]
# The dynamic table after the third response: index 62, 63, 64.
RESPONSE_FINAL_TABLE = [
    ("set-cookie", "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1"),
    ("content-encoding", "gzip"),
    ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
]

C5 = [
    """4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
       2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
       6c65 2e63 6f6d""",
    "4803 3330 37c1 c0bf",
    """88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
       54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
       5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
       3d31""",
]
C6 = [
    """4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
       2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3""",
    "4883 640e ffc1 c0bf",
    """88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
       77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
       9587 3160 65c0 03ed 4ee5 b106 3d50 07""",
]

SEQUENCES = {
    "C.3": (C3, REQUESTS, REQUEST_TABLE, 4096),
    "C.4": (C4, REQUESTS, REQUEST_TABLE, 4096),
    "C.5": (C5, RESPONSES, RESPONSE_TABLE, 256),
    "C.6": (C6, RESPONSES, RESPONSE_TABLE, 256),
}


# ----------------------------------------------------------------------------------------
# The vectors themselves, checked with the hpack package.

@pytest.mark.parametrize("name", sorted(C2))
def test_vectors_c2_hpack(name):
    wire, header, _, table_bytes, _ = C2[name]
    d = hpack.Decoder()
    assert [tuple(h) for h in d.decode(hx(wire))] == [header]
    assert d.header_table._current_size == table_bytes


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_vectors_sequences_hpack(name):
    wires, lists, tables, size = SEQUENCES[name]
    d = hpack.Decoder()
    d.header_table_size = size
    for wire, expected, (_, table_bytes) in zip(wires, lists, tables):
        assert [tuple(h) for h in d.decode(hx(wire))] == expected
        assert d.header_table._current_size == table_bytes


def test_reference_int_encoder_matches_c1():
    assert enc_int(10, 5) == b"\x0a"
    assert enc_int(1337, 5) == b"\x1f\x9a\x0a"
    assert enc_int(42, 8) == b"\x2a"


# ----------------------------------------------------------------------------------------
# C.1 Integer representation, through the representations that carry integers.

def test_c1_1_ten_with_5_bit_prefix_decoder():
    # A table size update has a 5-bit prefix: 001 + 01010.
    d = Decoder()
    assert d.decode(b"\x2a") == []
    assert d.header_table_size == 10


def test_c1_1_ten_with_5_bit_prefix_encoder():
    e = Encoder()
    e.header_table_size = 10
    assert e.encode([]) == b"\x2a"


def test_c1_2_1337_with_5_bit_prefix_decoder():
    d = Decoder()
    assert d.decode(b"\x3f\x9a\x0a") == []
    assert d.header_table_size == 1337


def test_c1_2_1337_with_5_bit_prefix_encoder():
    e = Encoder()
    e.header_table_size = 1337
    assert e.encode([]) == b"\x3f\x9a\x0a"


def test_c1_3_42_at_octet_boundary():
    # The closest HPACK has to an 8-bit prefix is a string length (7-bit prefix): 42
    # fits it, so the length octet is 0x2a, as in C.1.3.
    value = "a" * 42
    block = Encoder().encode([("x-a", value)], huffman=False)
    assert block == b"\x40\x03x-a\x2a" + value.encode()
    assert Decoder().decode(block) == [("x-a", value)]


@pytest.mark.parametrize("size", [0, 1, 30, 31, 32, 127, 158, 159, 160, 1337, 4095, 4096])
def test_size_update_integers_both_ways(size):
    wire = enc_int(size, 5, 0x20)
    e = Encoder()
    e.header_table_size = size
    if size == 4096:
        assert e.encode([]) == b""   # no change, no update
    else:
        assert e.encode([]) == wire
    d = Decoder()
    d.header_table_size = 1   # so that every size is a change
    assert d.decode(wire) == []
    assert d.header_table_size == size


@pytest.mark.parametrize("length", [0, 1, 126, 127, 128, 254, 255, 256, 16383, 16384, 70000])
def test_string_length_integers_both_ways(length):
    value = b"\xfe" * length   # 0xfe has a long Huffman code: never Huffman-encoded
    block = Encoder().encode([(b"x-v", value)])
    prefix = b"\x40" if length + 3 + 32 <= 3072 else b"\x00"
    assert block == prefix + b"\x03x-v" + enc_int(length, 7) + value
    assert Decoder(max_header_list_size=None).decode(block, raw=True) == [(b"x-v", value)]


@pytest.mark.parametrize("index", [1, 2, 61, 62, 126, 127, 128, 200])
def test_indexed_field_integers(index):
    # Fill the table with 200 entries x-0 .. x-199 (x-199 is newest: index 62).
    e = Encoder(max_table_size=65536)
    d = Decoder()
    e.header_table_size = d.max_allowed_table_size = 65536
    assert e.header_table_size == 65536
    headers = [("x-%d" % i, "v") for i in range(200)]
    d.decode(e.encode(headers))
    wire = enc_int(index, 7, 0x80)
    if index <= 61:
        expected = Decoder().decode(wire)
    else:
        expected = [headers[199 - (index - 62)]]
        assert e.encode(expected) == wire
    assert d.decode(wire) == expected


# ----------------------------------------------------------------------------------------
# C.2 Header field representations.

@pytest.mark.parametrize("name", sorted(C2))
def test_c2_decode(name):
    wire, header, entries, table_bytes, never = C2[name]
    d = Decoder()
    out = d.decode(hx(wire))
    assert out == [header]
    assert isinstance(out[0], NeverIndexedHeaderTuple) == never
    if not never:
        assert type(out[0]) is tuple
    assert len(d) == entries
    assert d.table_bytes == table_bytes
    if entries:
        assert d.decode(b"\xbe") == [header]
    else:
        with pytest.raises(InvalidTableIndex):
            d.decode(b"\xbe")


def test_c2_1_encoder_matches_rfc():
    # Our policy agrees here: a new custom name is sent with incremental indexing.
    e = Encoder()
    assert e.encode([("custom-key", "custom-header")], huffman=False) == hx(C2["C.2.1"][0])
    assert len(e) == 1
    assert e.table_bytes == 55


def test_c2_2_encoder_matches_rfc():
    # :path is sent without indexing, with the static name index 4.
    e = Encoder()
    assert e.encode([(":path", "/sample/path")], huffman=False) == hx(C2["C.2.2"][0])
    assert len(e) == 0
    assert e.table_bytes == 0


def test_c2_3_encoder_matches_rfc():
    e = Encoder()
    assert e.encode([("password", "secret", True)], huffman=False) == hx(C2["C.2.3"][0])
    assert len(e) == 0


def test_c2_4_encoder_matches_rfc():
    e = Encoder()
    assert e.encode([(":method", "GET")]) == b"\x82"
    assert e.encode([(":method", "GET")], huffman=False) == b"\x82"
    assert len(e) == 0


# ----------------------------------------------------------------------------------------
# C.3 - C.6 Request and response sequences, one decoder each.

@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_sequence_decode(name):
    wires, lists, tables, size = SEQUENCES[name]
    d = Decoder()
    if size != 4096:
        d.header_table_size = size   # as in the RFC: no size update on the wire
    for wire, expected, (entries, table_bytes) in zip(wires, lists, tables):
        assert d.decode(hx(wire)) == expected
        assert len(d) == entries
        assert d.table_bytes == table_bytes
        assert d.header_table_size == size


@pytest.mark.parametrize("name", ["C.5", "C.6"])
def test_sequence_decode_final_table(name):
    wires, _, _, _ = SEQUENCES[name]
    d = Decoder()
    d.header_table_size = 256
    for wire in wires:
        d.decode(hx(wire))
    assert d.decode(b"\xbe\xbf\xc0") == RESPONSE_FINAL_TABLE
    assert d.decode(b"\xbe\xbf\xc0", raw=True) == [
        (n.encode(), v.encode()) for n, v in RESPONSE_FINAL_TABLE]
    with pytest.raises(InvalidTableIndex):
        d.decode(b"\xc1")


def test_c3_final_table():
    d = Decoder()
    for wire in C3:
        d.decode(hx(wire))
    assert d.decode(b"\xbe\xbf\xc0") == [
        ("custom-key", "custom-value"), ("cache-control", "no-cache"),
        (":authority", "www.example.com")]


@pytest.mark.parametrize("name,huffman", [("C.3", False), ("C.4", True)])
def test_request_sequence_encoder_matches_rfc(name, huffman):
    # For these requests our policy makes the same choices as the RFC's encoder.
    wires, lists, tables, _ = SEQUENCES[name]
    e = Encoder()
    for wire, headers, (entries, table_bytes) in zip(wires, lists, tables):
        assert e.encode(headers, huffman=huffman) == hx(wire)
        assert len(e) == entries
        assert e.table_bytes == table_bytes


@pytest.mark.parametrize("huffman", [False, True])
def test_response_sequence_encoder_round_trip(huffman):
    # Our encoder does not index `location` or `set-cookie`, so its bytes differ from
    # C.5/C.6: check by round trip through our decoder and the hpack package's.
    e = Encoder()
    e.header_table_size = 256
    d = Decoder()
    d.max_allowed_table_size = 256
    h = hpack.Decoder()
    h.max_allowed_table_size = 256
    for i, headers in enumerate(RESPONSES):
        block = e.encode(headers, huffman=huffman)
        if i == 0:
            assert block.startswith(b"\x3f\xe1\x01")   # size update to 256
        else:
            assert block[0] & 0xE0 != 0x20
        assert d.decode(block) == headers
        assert [tuple(x) for x in h.decode(block)] == headers
        assert len(e) == len(d)
        assert e.table_bytes == d.table_bytes == h.header_table._current_size
        assert e.table_bytes <= 256


# ----------------------------------------------------------------------------------------
# Appendix B: the Huffman code, every symbol.

ALL_BYTES = bytes(range(256))


def test_huffman_decode_every_symbol():
    # Every byte value, in several orders, Huffman-coded by the hpack package.
    d = Decoder()
    for value in (ALL_BYTES, ALL_BYTES[::-1], ALL_BYTES[1::2] + ALL_BYTES[::2]):
        coded = hpack_huffman(value)
        block = b"\x00\x03x-h" + enc_int(len(coded), 7, 0x80) + coded
        assert d.decode(block, raw=True) == [(b"x-h", value)]
        assert d.decode(block) == [("x-h", value.decode("latin-1"))]


@pytest.mark.parametrize("symbol", range(256))
def test_huffman_encode_every_symbol(symbol):
    # 40 'a's (5 bits each) make Huffman shorter even for a 30-bit symbol.
    value = bytes([symbol]) + b"a" * 40
    coded = hpack_huffman(value)
    assert len(coded) < len(value)
    block = Encoder().encode([(b"x-h", value)])
    assert block == b"\x40\x03x-h" + enc_int(len(coded), 7, 0x80) + coded
    assert Decoder().decode(block, raw=True) == [(b"x-h", value)]


def test_huffman_decode_short_strings_exhaustive():
    # Every 1- and 2-octet Huffman string, and random 3- and 4-octet ones: accepted or
    # rejected (EOS, bad padding) exactly as the hpack package's decoder does, with the
    # same output.
    import random

    from hpack.huffman_table import decode_huffman

    from cno.hpack import HPACKDecodingError

    def reference(s):
        try:
            return decode_huffman(s)
        except Exception:
            return None

    d = Decoder()
    rng = random.Random(5)
    samples = [x.to_bytes(1, "big") for x in range(256)]
    samples += [x.to_bytes(2, "big") for x in range(65536)]
    samples += [rng.getrandbits(8 * n).to_bytes(n, "big") for n in (3, 4) for _ in range(10000)]
    mismatches = []
    for s in samples:
        try:
            ours = d.decode(b"\x00\x01a" + bytes([0x80 | len(s)]) + s, raw=True)[0][1]
        except HPACKDecodingError:
            ours = None
        if ours != reference(s):
            mismatches.append(s.hex())
    assert mismatches == []
    assert len(d) == 0
