"""The hpack-test-case corpus (github.com/http2jp/hpack-test-case).

Decoder: every story encoded by another implementation decodes to its header lists.
Encoder: every raw-data story round-trips through our encoder and our decoder, and
through our encoder and the ``hpack`` package's decoder.
"""
import itertools

import hpack
import pytest

from cno.hpack import Decoder, Encoder
from conftest import ENCODED_STORIES, HPACK_TEST_CASE, RAW_DATA, RAW_STORIES, load_story
from hpack_wire import check_in_step, read_int


def case_headers(case):
    """A case's `headers` (one-key dicts) as a list of (name, value) str pairs."""
    out = []
    for h in case["headers"]:
        assert len(h) == 1
        out.extend(h.items())
    return out


def as_bytes(headers):
    return [(n.encode("latin-1"), v.encode("latin-1")) for n, v in headers]


def test_corpus_present():
    assert HPACK_TEST_CASE.is_dir(), HPACK_TEST_CASE
    dirs = {p.parent.name for p in ENCODED_STORIES}
    assert {"go-hpack", "nghttp2", "nghttp2-16384-4096", "nghttp2-change-table-size",
            "python-hpack"} <= dirs
    assert RAW_DATA not in dirs
    assert len(ENCODED_STORIES) >= 150
    assert len(RAW_STORIES) >= 30


# ----------------------------------------------------------------------------------------
# Decoding other implementations' output.

def decode_story(path, raw_every_other):
    story = load_story(path)
    d = Decoder()
    assert story["cases"]
    for i, case in enumerate(story["cases"]):
        if "header_table_size" in case:
            d.max_allowed_table_size = case["header_table_size"]
        expected = case_headers(case)
        wire = bytes.fromhex(case["wire"])
        raw = raw_every_other and i % 2 == 1
        got = d.decode(wire, raw=raw)
        if raw:
            expected = as_bytes(expected)
        assert got == expected, "case %d (seqno %s)" % (i, case.get("seqno"))
        assert d.table_bytes <= d.header_table_size <= d.max_allowed_table_size


def test_decode_story(encoded_story):
    decode_story(encoded_story, raw_every_other=False)


def test_decode_story_mixed_raw(encoded_story):
    # str and bytes views of the same dynamic entries, made lazily: alternate them.
    decode_story(encoded_story, raw_every_other=True)


# ----------------------------------------------------------------------------------------
# Encoding the raw data.

@pytest.mark.parametrize("huffman", [True, False], ids=["huffman", "plain"])
def test_raw_story_round_trip(raw_story, huffman):
    story = load_story(raw_story)
    e, d = Encoder(), Decoder()
    for i, case in enumerate(story["cases"]):
        headers = case_headers(case)
        block = e.encode(headers, huffman=huffman)
        assert d.decode(block) == headers, "case %d" % i
        check_in_step(e, d)
        if not huffman:
            assert all(b & 0x80 == 0 for b in literal_string_flags(block))


@pytest.mark.parametrize("huffman", [True, False], ids=["huffman", "plain"])
def test_raw_story_round_trip_bytes(raw_story, huffman):
    # Headers given as bytes; decoded raw.
    story = load_story(raw_story)
    e, d = Encoder(), Decoder()
    for i, case in enumerate(story["cases"]):
        headers = as_bytes(case_headers(case))
        assert d.decode(e.encode(headers, huffman=huffman), raw=True) == headers, "case %d" % i
        check_in_step(e, d)


@pytest.mark.parametrize("huffman", [True, False], ids=["huffman", "plain"])
def test_raw_story_hpack_decoder(raw_story, huffman):
    story = load_story(raw_story)
    e, h = Encoder(), hpack.Decoder(max_header_list_size=1 << 30)
    for i, case in enumerate(story["cases"]):
        headers = as_bytes(case_headers(case))
        block = e.encode(headers, huffman=huffman)
        got = h.decode(block, raw=True)
        assert [tuple(x) for x in got] == headers, "case %d" % i
        never = [isinstance(x, hpack.NeverIndexedHeaderTuple) for x in got]
        assert never == [expect_never_indexed(n, v) for n, v in headers], "case %d" % i
        assert h.header_table._current_size == e.table_bytes


def expect_never_indexed(name, value):
    """Our encoder's policy for fields not marked sensitive (cno/hpack.py)."""
    return name in (b"authorization", b"proxy-authorization") or (
        name == b"cookie" and len(value) < 20)


# Table sizes set before each case, in turn, on the encoder (header_table_size) and the
# decoders (max_allowed_table_size), as successive acknowledged SETTINGS would.
SIZE_CHANGES = [[4096], [0], [256], [4096], [100, 4096], [0, 256], [16384], [1365, 2730],
                [], [64], [4096, 0, 4096], [200, 100, 3000]]


@pytest.mark.parametrize("huffman", [True, False], ids=["huffman", "plain"])
def test_raw_story_table_size_changes(raw_story, huffman):
    story = load_story(raw_story)
    e, d, h = Encoder(), Decoder(), hpack.Decoder(max_header_list_size=1 << 30)
    for i, (case, sizes) in enumerate(zip(story["cases"], itertools.cycle(SIZE_CHANGES))):
        before = e.header_table_size
        for size in sizes:
            e.header_table_size = size
            d.max_allowed_table_size = size
            h.max_allowed_table_size = size
        headers = case_headers(case)
        block = e.encode(headers, huffman=huffman)
        updates = leading_size_updates(block)
        if sizes:
            final = min(sizes[-1], e.max_table_size)
            smallest = min(min(sizes), e.max_table_size)
            expected_updates = [final] if smallest == final else [smallest, final]
            if final == before and smallest == final:
                # No change since the last block: an update is allowed, not needed.
                assert updates in ([], expected_updates), "case %d" % i
            else:
                assert updates == expected_updates, "case %d" % i
        else:
            assert updates == [], "case %d" % i
        assert d.decode(block) == headers, "case %d" % i
        assert [tuple(x) for x in h.decode(block)] == headers, "case %d" % i
        check_in_step(e, d)
        assert h.header_table._current_size == e.table_bytes
        assert e.table_bytes <= e.header_table_size


# ----------------------------------------------------------------------------------------
# Wire parsing helpers (a minimal reader, independent of cno).

def leading_size_updates(block):
    out, pos = [], 0
    while pos < len(block) and block[pos] & 0xE0 == 0x20:
        value, pos = read_int(block, pos, 5)
        out.append(value)
    return out


def literal_string_flags(block):
    """The first octet of every string literal in the block (H is its high bit)."""
    flags, pos = [], 0
    while pos < len(block):
        b = block[pos]
        if b & 0x80:
            _, pos = read_int(block, pos, 7)
            continue
        if b & 0xE0 == 0x20:
            _, pos = read_int(block, pos, 5)
            continue
        index, pos = read_int(block, pos, 6 if b & 0x40 else 4)
        for _ in range(1 if index else 2):
            flags.append(block[pos])
            length, pos = read_int(block, pos, 7)
            pos += length
    return flags


def test_wire_helpers():
    # The helpers themselves, on RFC 7541 C.3.3 / C.4.3 and a size update prefix.
    c33 = bytes.fromhex("828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565")
    c43 = bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")
    assert literal_string_flags(c33) == [0x0A, 0x0C]
    assert literal_string_flags(c43) == [0x88, 0x89]
    assert leading_size_updates(b"\x3f\x45\x3f\xe1\x1f\x82") == [100, 4096]
    assert leading_size_updates(c33) == []
