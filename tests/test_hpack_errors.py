"""Malformed header blocks: each raises the right cno.hpack error, and nothing crashes."""
import random

import hpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cno
from cno import errors
from cno.hpack import (
    Decoder,
    Encoder,
    HPACKDecodingError,
    HPACKError,
    InvalidTableIndex,
    InvalidTableSizeError,
    NeverIndexedHeaderTuple,
    OversizedHeaderListError,
)
from hpack_wire import enc_int

SPECIFIC = (InvalidTableIndex, InvalidTableSizeError, OversizedHeaderListError)


def lit(name, value, flags=0x00):
    """A literal field with a new name, no Huffman (flags 0x40, 0x00 or 0x10)."""
    return bytes([flags]) + enc_int(len(name), 7) + name + enc_int(len(value), 7) + value


# Blocks that are malformed for a fresh decoder, and the exact class they must raise
# (HPACKDecodingError itself for faults that have no subclass).
MALFORMED = {
    # Truncated integers.
    "int-truncated-indexed": (b"\xff", HPACKDecodingError),
    "int-truncated-continuation": (b"\xff\x80", HPACKDecodingError),
    "int-truncated-continuation-2": (b"\xff\xff\xff", HPACKDecodingError),
    "int-truncated-size-update": (b"\x3f", HPACKDecodingError),
    "int-truncated-size-update-2": (b"\x3f\xe1", HPACKDecodingError),
    "int-truncated-name-index": (b"\x7f", HPACKDecodingError),
    "int-truncated-name-index-4bit": (b"\x0f\x80", HPACKDecodingError),
    "int-truncated-string-length": (b"\x40\x7f", HPACKDecodingError),
    "int-truncated-value-length": (b"\x40\x01a\x7f\x81", HPACKDecodingError),
    # Integers too large or too long.
    "int-overflow-ten-bytes": (b"\xff" + b"\xff" * 10, HPACKDecodingError),
    "int-overflow-ten-bytes-end": (b"\xff" + b"\xff" * 9 + b"\x7f", HPACKDecodingError),
    "int-above-2**32-1-index": (enc_int(2 ** 32, 7, 0x80), HPACKDecodingError),
    "int-2**64-index": (enc_int(2 ** 64, 7, 0x80), HPACKDecodingError),
    "int-above-2**32-1-size-update": (enc_int(2 ** 32, 5, 0x20), HPACKDecodingError),
    "int-above-2**32-1-string-length": (b"\x40" + enc_int(2 ** 32 + 5, 7) + b"abcde",
                                        HPACKDecodingError),
    "int-above-2**32-1-name-index": (enc_int(2 ** 32 + 1, 6, 0x40) + b"\x01a",
                                     HPACKDecodingError),
    "int-too-many-continuations": (b"\xff\x80\x80\x80\x80\x80\x80\x00", HPACKDecodingError),
    "int-too-many-continuations-size": (b"\x3f\x80\x80\x80\x80\x80\x80\x80\x01",
                                        HPACKDecodingError),
    # Huffman: padding longer than 7 bits, padding not all ones, EOS.
    "huffman-padding-8-bits": (b"\x00\x01a\x81\xff", HPACKDecodingError),
    "huffman-padding-8-bits-name": (b"\x00\x81\xff\x01a", HPACKDecodingError),
    "huffman-padding-16-bits": (b"\x00\x01a\x82\xff\xff", HPACKDecodingError),
    "huffman-symbol-then-byte-of-ones": (b"\x00\x01a\x82\x1f\xff", HPACKDecodingError),
    "huffman-padding-zeros": (b"\x00\x01a\x81\x18", HPACKDecodingError),   # 'a' + 000
    "huffman-padding-mixed": (b"\x00\x01a\x81\x1d", HPACKDecodingError),   # 'a' + 101
    "huffman-eos": (b"\x00\x01a\x84\xff\xff\xff\xff", HPACKDecodingError),
    "huffman-eos-then-zeros": (b"\x00\x01a\x84\xff\xff\xff\xfc", HPACKDecodingError),
    "huffman-symbol-eos": (b"\x00\x01a\x85\x1f\xff\xff\xff\xff", HPACKDecodingError),
    "huffman-incomplete-code": (b"\x00\x01a\x81\x00", HPACKDecodingError),
    # Indexes.
    "index-0": (b"\x80", InvalidTableIndex),
    "index-0-after-fields": (b"\x82\x80", InvalidTableIndex),
    "index-62-empty-table": (b"\xbe", InvalidTableIndex),
    "index-127-empty-table": (b"\xff\x00", InvalidTableIndex),
    "index-2**32-1": (enc_int(2 ** 32 - 1, 7, 0x80), InvalidTableIndex),
    "name-index-62-incremental": (b"\x7e\x01a", InvalidTableIndex),
    "name-index-62-without-indexing": (b"\x0f\x2f\x01a", InvalidTableIndex),
    "name-index-62-never-indexed": (b"\x1f\x2f\x01a", InvalidTableIndex),
    "name-index-2**32-1": (enc_int(2 ** 32 - 1, 4, 0x00) + b"\x01a", InvalidTableIndex),
    # Size updates.
    "size-update-after-field": (b"\x82\x3f\xe1\x1f", InvalidTableSizeError),
    "size-update-after-literal": (lit(b"a", b"b") + b"\x20", InvalidTableSizeError),
    "size-update-above-default-limit": (enc_int(4097, 5, 0x20), InvalidTableSizeError),
    "size-update-2**32-1": (enc_int(2 ** 32 - 1, 5, 0x20), InvalidTableSizeError),
    # Strings past the end of the block.
    "name-past-end": (b"\x40\x05abc", HPACKDecodingError),
    "value-past-end": (b"\x00\x01a\x05abcd", HPACKDecodingError),
    "value-missing": (b"\x00\x01a", HPACKDecodingError),
    "value-missing-name-index": (b"\x41", HPACKDecodingError),
    "huffman-value-past-end": (b"\x00\x01a\x83\x1f", HPACKDecodingError),
    "name-length-only": (b"\x40", HPACKDecodingError),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed(name):
    data, cls = MALFORMED[name]
    with pytest.raises(cls) as info:
        Decoder().decode(data)
    if cls is HPACKDecodingError:
        assert not isinstance(info.value, SPECIFIC)
    assert info.value.error_code == 9


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_raw_and_buffers(name):
    data, cls = MALFORMED[name]
    for buf in (bytearray(data), memoryview(data), memoryview(b"xx" + data)[2:]):
        with pytest.raises(cls):
            Decoder().decode(buf, raw=True)


# Controls: the well-formed neighbours of the blocks above decode.
VALID = {
    "int-5-continuations": (b"\x3f\x80\x80\x80\x80\x00", []),           # update to 31
    "int-redundant-zero": (b"\x3f\x81\x00", []),  # update to 32
    "huffman-a": (b"\x00\x01a\x81\x1f", [("a", "a")]),
    "huffman-7-bit-padding": (b"\x00\x01a\x84\x00\x00\x00\x7f", [("a", "00000")]),
    "huffman-empty": (b"\x00\x01a\x80", [("a", "")]),
    "size-update-4096": (b"\x3f\xe1\x1f\x82", [(":method", "GET")]),
    "size-update-twice": (b"\x20\x3f\xe1\x1f\x82", [(":method", "GET")]),
    "index-61": (b"\xbd", [("www-authenticate", "")]),
    "empty-block": (b"", []),
}


@pytest.mark.parametrize("name", sorted(VALID))
def test_valid_neighbours(name):
    data, expected = VALID[name]
    assert Decoder().decode(data) == expected


def test_index_past_dynamic_table():
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40) + lit(b"x-b", b"2", 0x40))
    assert len(d) == 2
    assert d.decode(b"\xbe\xbf") == [("x-b", "2"), ("x-a", "1")]
    with pytest.raises(InvalidTableIndex):
        d.decode(b"\xc0")                  # 62 + len(d)
    with pytest.raises(InvalidTableIndex):
        d.decode(enc_int(64, 6, 0x40) + b"\x01v")
    d2 = Decoder()
    d2.decode(lit(b"x-a", b"1", 0x40) + lit(b"x-b", b"2", 0x40))
    assert d2.decode(enc_int(63, 4, 0x00) + b"\x01v") == [("x-a", "v")]
    with pytest.raises(InvalidTableIndex):
        d2.decode(enc_int(64, 4, 0x00) + b"\x01v")


def test_index_past_table_after_eviction():
    d = Decoder()
    d.header_table_size = 80   # room for two entries of 36 bytes
    d.decode(lit(b"x-a", b"1", 0x40) + lit(b"x-b", b"2", 0x40) + lit(b"x-c", b"3", 0x40))
    assert len(d) == 2
    assert d.decode(b"\xbe\xbf") == [("x-c", "3"), ("x-b", "2")]
    with pytest.raises(InvalidTableIndex):
        d.decode(b"\xc0")


def test_size_update_above_lowered_limit():
    d = Decoder()
    d.max_allowed_table_size = 100
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\x3f\xe1\x1f\x82")     # update to 4096
    d = Decoder()
    d.max_allowed_table_size = 100
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\x3f\x45\x3f\x46\x82")     # 100, then 101


def test_size_update_at_raised_limit():
    d = Decoder()
    d.max_allowed_table_size = 8192
    assert d.decode(enc_int(8192, 5, 0x20) + b"\x82") == [(":method", "GET")]
    assert d.header_table_size == 8192
    with pytest.raises(InvalidTableSizeError):
        Decoder().decode(enc_int(8192, 5, 0x20))


def test_missing_size_update_after_limit_lowered():
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\x82")


def test_missing_size_update_on_empty_table():
    # The requirement follows the size limit, not the table's contents.
    d = Decoder()
    d.max_allowed_table_size = 0
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\x82")


def test_size_update_present_after_limit_lowered():
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    assert d.decode(b"\x3f\x45\xbe") == [("x-a", "1")]
    assert d.header_table_size == 100
    assert len(d) == 1
    assert d.decode(b"\x82") == [(":method", "GET")]   # no update needed any more


def test_size_update_to_zero_after_limit_lowered():
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    assert d.decode(b"\x20\x3f\x45\x82") == [(":method", "GET")]   # 0, then 100
    assert len(d) == 0
    with pytest.raises(InvalidTableIndex):
        d.decode(b"\xbe")


def test_limit_lowered_then_raised_accepts_smallest_then_final():
    # SETTINGS went down to 100 and back up to 4096 before the next block: the peer
    # signals the smallest size, then the final one (RFC 7541 4.2).
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    d.max_allowed_table_size = 4096
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\xbe")                     # no update at all
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    d.max_allowed_table_size = 4096
    assert d.decode(b"\x3f\x45\x3f\xe1\x1f\xbe") == [("x-a", "1")]
    assert d.header_table_size == 4096


def test_limit_lowered_then_raised_rejects_final_size_alone():
    # Only the final size, without the smallest one first, breaks RFC 7541 4.2.
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    d.max_allowed_table_size = 4096
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\x3f\xe1\x1f\xbe")       # 4096 only
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.max_allowed_table_size = 100
    d.max_allowed_table_size = 4096
    with pytest.raises(InvalidTableSizeError):
        d.decode(b"\x3f\xe1\x1f")            # a block of updates that never go low enough


def test_no_size_update_needed_when_limit_not_below_size():
    d = Decoder()
    d.max_allowed_table_size = 4096
    assert d.decode(b"\x82") == [(":method", "GET")]
    d.max_allowed_table_size = 65536
    assert d.decode(b"\x82") == [(":method", "GET")]


def test_size_update_shrinks_table():
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40) + lit(b"x-b", b"2", 0x40))
    assert d.table_bytes == 72
    assert d.decode(enc_int(40, 5, 0x20)) == []
    assert len(d) == 1
    assert d.table_bytes == 36
    assert d.decode(b"\xbe") == [("x-b", "2")]


def test_entry_larger_than_table_empties_it():
    # RFC 7541 4.4: an entry larger than the table empties it, and is not added.
    d = Decoder()
    d.decode(lit(b"x-a", b"1", 0x40))
    d.header_table_size = 60
    assert d.decode(lit(b"x-big", b"v" * 30, 0x40)) == [("x-big", "v" * 30)]
    assert len(d) == 0 and d.table_bytes == 0
    with pytest.raises(InvalidTableIndex):
        d.decode(b"\xbe")
    assert d.decode(lit(b"x-b", b"2", 0x40) + b"\xbe") == [("x-b", "2"), ("x-b", "2")]
    d.header_table_size = 0
    assert d.decode(lit(b"x-c", b"3", 0x40)) == [("x-c", "3")]
    assert len(d) == 0


# ----------------------------------------------------------------------------------------
# max_header_list_size: OversizedHeaderListError leaves the decoder usable.

def test_oversized_header_list_keeps_table_in_step():
    d = Decoder(max_header_list_size=100)
    block = (lit(b"x-a", b"1", 0x40)                 # 36: indexed
             + lit(b"x-big", b"v" * 200, 0x00)       # 237: over the limit
             + lit(b"x-after", b"2", 0x40))          # indexed after the overflow
    with pytest.raises(OversizedHeaderListError) as info:
        d.decode(block)
    assert info.value.error_code == 0xB
    assert isinstance(info.value, HPACKDecodingError)
    assert len(d) == 2
    assert d.table_bytes == 36 + 40
    assert d.decode(b"\xbe") == [("x-after", "2")]
    assert d.decode(b"\xbf", raw=True) == [(b"x-a", b"1")]
    assert d.decode(b"\xbe\xbf") == [("x-after", "2"), ("x-a", "1")]   # 76 <= 100


def test_oversized_header_list_with_encoder():
    e, d = Encoder(), Decoder(max_header_list_size=200)
    first = [("x-a", "1"), ("x-big", "v" * 300), ("x-b", "2")]
    with pytest.raises(OversizedHeaderListError):
        d.decode(e.encode(first))
    second = [("x-a", "1"), ("x-b", "2"), ("x-c", "3")]
    block = e.encode(second)
    # The table is [x-b, x-big, x-a]: both come from the table the failed block built.
    assert block[:2] == b"\xc0\xbe"
    assert d.decode(block) == second
    assert len(d) == len(e)
    assert d.table_bytes == e.table_bytes


def test_header_list_size_limit_is_inclusive():
    # ("x-a", "1") counts 3 + 1 + 32 = 36; (":method", "GET") 7 + 3 + 32 = 42.
    assert Decoder(max_header_list_size=78).decode(lit(b"x-a", b"1", 0x40) + b"\x82") == [
        ("x-a", "1"), (":method", "GET")]
    with pytest.raises(OversizedHeaderListError):
        Decoder(max_header_list_size=77).decode(lit(b"x-a", b"1", 0x40) + b"\x82")
    with pytest.raises(OversizedHeaderListError):
        Decoder(max_header_list_size=41).decode(b"\x82")


def test_header_list_size_counts_each_block_alone():
    d = Decoder(max_header_list_size=42)
    for _ in range(10):
        assert d.decode(b"\x82") == [(":method", "GET")]


def test_header_list_size_default():
    d = Decoder()
    value = b"v" * (65536 - 32 - 3)   # exactly the default limit
    assert d.decode(lit(b"x-v", value), raw=True) == [(b"x-v", value)]
    with pytest.raises(OversizedHeaderListError):
        d.decode(lit(b"x-v", value + b"v"))
    assert d.decode(b"\x82") == [(":method", "GET")]


def test_header_list_size_unlimited():
    d = Decoder(max_header_list_size=None)
    value = b"v" * 300000
    assert d.decode(lit(b"x-v", value) + lit(b"x-w", value), raw=True) == [
        (b"x-v", value), (b"x-w", value)]


# ----------------------------------------------------------------------------------------
# The error classes.

@pytest.mark.parametrize("cls", [HPACKDecodingError, InvalidTableIndex, InvalidTableSizeError,
                                 OversizedHeaderListError])
def test_error_hierarchy(cls):
    assert issubclass(cls, HPACKDecodingError)
    assert issubclass(cls, HPACKError)
    assert issubclass(cls, cno.CnoError)
    assert issubclass(cls, cno.ProtocolError)
    assert issubclass(cls, ValueError)
    if cls is OversizedHeaderListError:
        assert cls.error_code == 0xB   # ENHANCE_YOUR_CALM, documented
    else:
        assert cls.error_code == 0x9   # COMPRESSION_ERROR


def test_error_classes_exported_once():
    for name in ("HPACKError", "HPACKDecodingError", "InvalidTableIndex",
                 "InvalidTableSizeError", "OversizedHeaderListError"):
        import cno.hpack
        assert getattr(cno.hpack, name) is getattr(errors, name)
    assert cno.CnoError is errors.CnoError


def test_decoding_errors_are_not_hpack_package_errors():
    # cno's errors are its own (catching hpack's would not catch them, and vice versa).
    assert not issubclass(HPACKDecodingError, hpack.HPACKError)


def test_decoder_usable_after_error():
    # After an error the connection is dead, but the object must not crash.
    d = Decoder()
    for data, _ in MALFORMED.values():
        try:
            d.decode(data)
        except HPACKDecodingError:
            pass
    d2 = Decoder()
    d2.decode(b"\x3f\xe1\x1f")
    assert d2.decode(b"\x82") == [(":method", "GET")]


# ----------------------------------------------------------------------------------------
# Fuzz-ish: garbage raises only HPACKDecodingError, and agrees with hpack when both accept.

def decode_or_error(d, data, raw):
    try:
        return d.decode(data, raw=raw)
    except HPACKDecodingError as exc:
        return exc


def hpack_decode(data):
    h = hpack.Decoder(max_header_list_size=1 << 40)
    try:
        return [(tuple(x), isinstance(x, hpack.NeverIndexedHeaderTuple))
                for x in h.decode(data, raw=True)]
    except Exception:
        return None


def check_against_hpack(data, got):
    if isinstance(got, Exception):
        return
    ref = hpack_decode(data)
    if ref is not None:
        assert [(tuple(x), isinstance(x, NeverIndexedHeaderTuple)) for x in got] == ref


def seed_blocks():
    e = Encoder()
    blocks = [
        bytes.fromhex("828684410f7777772e6578616d706c652e636f6d"),
        bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff"),
        bytes.fromhex("4883640effc1c0bf"),
        e.encode([(":method", "GET"), ("x-custom", "value"), ("authorization", "secret")]),
        e.encode([("x-custom", "value"), ("cookie", "a" * 30)], huffman=False),
    ]
    return blocks


def mutations(rng, count):
    seeds = seed_blocks()
    for i in range(count):
        kind = i % 4
        if kind == 0:
            yield bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        elif kind == 1:
            # Random bytes biased towards representation prefixes.
            yield bytes(rng.choice((0x80, 0xbe, 0x40, 0x00, 0x10, 0x3f, 0x20, 0xff, 0x7f,
                                    0x0f, 0x81, 0x1f, rng.getrandbits(8)))
                        for _ in range(rng.randrange(1, 24)))
        else:
            data = bytearray(rng.choice(seeds))
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(3)
                if op == 0 and data:
                    data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
                elif op == 1 and data:
                    del data[rng.randrange(len(data)):]
                else:
                    data.insert(rng.randrange(len(data) + 1), rng.getrandbits(8))
            yield bytes(data)


def test_fuzz_fresh_decoder_seeded():
    rng = random.Random(7541)
    for n, data in enumerate(mutations(rng, 4000)):
        got = decode_or_error(Decoder(), data, raw=bool(n & 1))
        if n % 3 == 0:
            check_against_hpack(data, decode_or_error(Decoder(), data, raw=True))


def test_fuzz_shared_decoder_seeded():
    # One decoder through all of them: the table grows, evicts and resizes on garbage.
    rng = random.Random(9113)
    d = Decoder()
    d.max_allowed_table_size = 1 << 20
    for n, data in enumerate(mutations(rng, 3000)):
        decode_or_error(d, data, raw=bool(n % 3 == 0))
        assert 0 <= d.table_bytes <= d.header_table_size
        assert len(d) * 32 <= d.table_bytes


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=64), st.booleans())
def test_fuzz_hypothesis(data, raw):
    got = decode_or_error(Decoder(), data, raw)
    if not raw:
        got = decode_or_error(Decoder(), data, True)
    check_against_hpack(data, got)
