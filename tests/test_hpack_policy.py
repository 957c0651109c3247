"""Encoder(index_all=True) is byte-identical to the hpack package's Encoder with its
defaults (hypothesis, over sessions of header lists and table size changes), and the
default policy is untouched by the knob; Connection.hpack_index_all reaches the engine's
encoder."""
import hpack
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cno.raw
from cno.hpack import Decoder, Encoder

SETTINGS = dict(deadline=None, max_examples=300,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Names and values as bytes (h2 hands hpack UTF-8 bytes), and ASCII str, which both
# encoders turn into the same bytes. Static-table names and values come often, so full
# and name matches in both tables are common.
NAMES = [b":method", b":path", b":authority", b":status", b":scheme", b"cookie",
         b"authorization", b"proxy-authorization", b"content-length", b"etag", b"age",
         b"set-cookie", b"accept-encoding", b"user-agent", b"x-a", b"x-b", b""]
VALUES = [b"", b"GET", b"POST", b"/", b"200", b"204", b"gzip, deflate", b"a" * 19,
          b"a" * 20, b"\x00\xff\x80", b"text/html"]

field = st.one_of(st.sampled_from(VALUES), st.binary(max_size=20))
name = st.one_of(st.sampled_from(NAMES), st.binary(max_size=12))
long_value = st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=3),
                       st.integers(min_value=100, max_value=5000))
value = st.one_of(field, field, long_value)


def ascii_or_bytes(b):
    return st.sampled_from([b, b.decode("ascii")]) if b.isascii() else st.just(b)


@st.composite
def header(draw, pool):
    """One header in one of the forms h2 may hand the encoder."""
    n, v = draw(st.sampled_from(pool)) if pool and draw(st.booleans()) else (draw(name), draw(value))
    n, v = draw(ascii_or_bytes(n)), draw(ascii_or_bytes(v))
    # (hpack honours only its own HeaderTuple classes; cno's encoder reads `indexable`
    # off any tuple, so cno's classes would differ on purpose: not drawn here)
    form = draw(st.integers(min_value=0, max_value=3))
    if form == 0:
        return (n, v)
    if form == 1:
        return (n, v, draw(st.booleans()))
    if form == 2:
        return hpack.NeverIndexedHeaderTuple(n, v)
    return hpack.HeaderTuple(n, v)


@st.composite
def sessions(draw):
    """A list of steps: ("size", n) sets header_table_size, ("block", headers, huffman)
    encodes. Some blocks reuse the very tuple objects of earlier ones (the engine's
    identity cache for plain (name, value) lists)."""
    pool = draw(st.lists(st.tuples(name, value), max_size=8))
    steps, seen = [], []
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        if draw(st.integers(min_value=0, max_value=3)) == 0:
            size = draw(st.one_of(st.sampled_from([0, 32, 64, 100, 4096, 8192, 65536]),
                                  st.integers(min_value=0, max_value=9000)))
            steps.append(("size", size))
            continue
        if seen and draw(st.booleans()):
            headers = draw(st.sampled_from(seen))
        else:
            headers = draw(st.lists(header(pool), max_size=10))
            if draw(st.booleans()):   # a plain list of exact (bytes, bytes) tuples
                headers = [(h[0] if isinstance(h[0], bytes) else h[0].encode(),
                            h[1] if isinstance(h[1], bytes) else h[1].encode()) for h in headers]
            seen.append(headers)
        steps.append(("block", headers, draw(st.sampled_from([True, True, False]))))
    return steps


def run_both(steps, ours):
    theirs = hpack.Encoder()
    decoder = Decoder(max_header_list_size=None)
    decoder.max_allowed_table_size = 1 << 20
    for step in steps:
        if step[0] == "size":
            ours.header_table_size = step[1]
            if theirs.header_table_size != step[1]:   # (see test_size_set_twice)
                theirs.header_table_size = step[1]
            continue
        _, headers, huffman = step
        got = ours.encode(headers, huffman=huffman)
        want = theirs.encode(headers, huffman=huffman)
        assert got == want, (headers, got.hex(), want.hex())
        decoder.decode(got)   # (and it is a valid block)
        assert ours.header_table_size == theirs.header_table_size
        assert ours.table_bytes == theirs.header_table._current_size
        assert len(ours) == len(theirs.header_table.dynamic_entries)


@settings(**SETTINGS)
@given(sessions())
def test_index_all_matches_hpack(steps):
    run_both(steps, Encoder(index_all=True))


@settings(**SETTINGS)
@given(sessions(), st.sampled_from([0, 100, 1000]))
def test_index_all_ignores_the_cap(steps, cap):
    """max_table_size is cno's own cap: index_all does not apply it."""
    run_both(steps, Encoder(max_table_size=cap, index_all=True))


def test_examples():
    """The cases the hypothesis test must cover, spelled out."""
    e, h = Encoder(index_all=True), hpack.Encoder()
    blocks = [
        [(b":method", b"GET"), (b":path", b"/x"), (b"authorization", b"secret")],
        [(b"authorization", b"secret"), (b"cookie", b"a=1")],    # indexed now
        [hpack.NeverIndexedHeaderTuple(b"authorization", b"secret")],   # full match: index
        [(b"content-length", b"5"), (b"x", b""), (b"", b"")],    # Huffman even when longer
        [(b"x-big", b"v" * 5000)],                                # larger than the table
    ]
    for block in blocks:
        assert e.encode(block) == h.encode(block)
    assert len(e) == 0   # the entry larger than the table emptied it (RFC 7541 4.4)


def test_size_updates_as_hpack_sends_them():
    """hpack sends every changed size, in order, at the next block."""
    e, h = Encoder(index_all=True), hpack.Encoder()
    for sizes in ([100, 200, 50], [50], [300], [8192, 4096], [0, 4096], [4096]):
        for s in sizes:
            e.header_table_size = s
            h.header_table_size = s
        block = [(b"x-a", b"1"), (b":path", b"/")]
        assert e.encode(block) == h.encode(block)
    assert e.encode([]) == h.encode([]) == b""


def test_size_set_twice():
    """The one deliberate difference: hpack drops the queued size updates when the size
    in use is set again before the next block, and the peer's table then falls out of
    step; cno still sends them."""
    e, h, d = Encoder(index_all=True), hpack.Encoder(), Decoder()
    d.max_allowed_table_size = 8192
    for s in (8192, 8192):
        e.header_table_size = s
        h.header_table_size = s
    block = [(b"x-a", b"v" * 5000), (b"x-a", b"v" * 5000)]
    assert h.encode(block)[:1] != b"\x3f"       # hpack: no size update ...
    got = e.encode(block)
    assert got[:3] == b"\x3f\xe1\x3f"           # ... cno: 8192
    assert d.decode(got) == [("x-a", "v" * 5000)] * 2


def test_default_policy_unchanged():
    """Without the knob: authorization never indexed, Huffman only when shorter, cap
    applied, one update down and one up."""
    e = Encoder()
    assert e.encode([("authorization", "x")]) == b"\x1f\x08\x01x"
    assert e.encode([("x", "")]) == b"\x40\x01x\x00"
    e.header_table_size = 100
    e.header_table_size = 50
    e.header_table_size = 8192
    assert e.encode([]) == b"\x3f\x13\x3f\xe1\x1f"   # 50, then 4096 (the cap)
    assert e.header_table_size == 4096


def test_switching_modes_keeps_the_table_and_owed_updates():
    e, h = Encoder(), hpack.Encoder()
    d = Decoder()
    d.max_allowed_table_size = 8192
    assert d.decode(e.encode([(b"x-a", b"1")])) == [("x-a", "1")]
    h.encode([(b"x-a", b"1")])
    for size in (100, 200):
        e.header_table_size = size
        h.header_table_size = size
    e.index_all = True     # the updates cno's policy owed (100, 200) go out as hpack's
    block = e.encode([(b"x-a", b"1"), (b"x-b", b"2")])
    assert block == h.encode([(b"x-a", b"1"), (b"x-b", b"2")])
    assert d.decode(block) == [("x-a", "1"), ("x-b", "2")]
    e.header_table_size = 8192          # no cap in index_all ...
    assert e.header_table_size == 8192
    e.index_all = False                 # ... and back under it
    assert e.header_table_size == 4096
    block = e.encode([(b"x-b", b"2")])
    assert block[:3] == b"\x3f\xe1\x1f"   # the update to 4096 the peer is owed first
    assert d.decode(block) == [("x-b", "2")]
    assert d.header_table_size == 4096


def test_connection_knob():
    """hpack_index_all reaches the engine's encoder, before or after connection_made."""
    sent = []

    class Client(cno.raw.Connection):
        def on_writev(self, chunks):
            sent.extend(bytes(c) for c in chunks)

    c = Client(server=False)
    assert c.hpack_index_all is False
    c.hpack_index_all = True
    c.connection_made(True)
    del sent[:]
    headers = [(":scheme", "https"), (":authority", "a"), ("authorization", "x")]
    c.write_head(1, 0, "GET", "/", headers, True)
    h = hpack.Encoder()
    want = h.encode([(":method", "GET"), (":path", "/")] + headers)
    assert b"".join(sent)[9:] == want
    c.hpack_index_all = False
    assert c.hpack_index_all is False
