"""Property tests (hypothesis): random header lists and table size changes round-trip
through our Encoder and Decoder, and through our Encoder and the hpack package's Decoder;
never-indexed fields stay never-indexed; Huffman strings are canonical and used only when
shorter."""
import hpack
from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cno.hpack import Decoder, Encoder, HeaderTuple, NeverIndexedHeaderTuple
from hpack_wire import check_in_step, read_int

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                      HealthCheck.data_too_large])

# ----------------------------------------------------------------------------------------
# Strategies.

COMMON_NAMES = [":method", ":path", ":authority", ":status", "cookie", "authorization",
                "proxy-authorization", "content-type", "content-length", "set-cookie",
                "user-agent", "accept-encoding", "x-custom", "Authorization", ""]
COMMON_VALUES = ["", "GET", "/", "200", "gzip, deflate", "a" * 19, "a" * 20, "\x00\xff",
                 "text/html; charset=utf-8"]

latin1_text = st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=255), max_size=24)
long_bytes = st.builds(lambda b, n: b * n, st.binary(min_size=1, max_size=4),
                       st.integers(min_value=40, max_value=1300))


def _field(common):
    as_bytes = [c.encode("latin-1") for c in common]
    return st.one_of(
        st.sampled_from(common), st.sampled_from(as_bytes),
        st.binary(max_size=24), latin1_text,
    )


names = _field(COMMON_NAMES)
values = st.one_of(_field(COMMON_VALUES), long_bytes, long_bytes.map(lambda b: b.decode("latin-1")))


def _header(name, value):
    return st.one_of(
        st.tuples(name, value),
        st.tuples(name, value, st.booleans()),
        st.builds(HeaderTuple, name, value),
        st.builds(NeverIndexedHeaderTuple, name, value),
    )


header = _header(names, values)
table_size = st.one_of(st.sampled_from([0, 1, 32, 36, 64, 100, 256, 1000, 4096, 8192, 65536]),
                       st.integers(min_value=0, max_value=6000))


@st.composite
def sessions(draw, max_blocks=6):
    """(encoder cap, [(size changes, headers, huffman, raw), ...]) with repeated headers."""
    cap = draw(st.sampled_from([4096, 4096, 0, 100, 300, 65536]))
    pool = draw(st.lists(header, min_size=1, max_size=8))
    blocks = []
    for _ in range(draw(st.integers(min_value=1, max_value=max_blocks))):
        sizes = draw(st.lists(table_size, max_size=3))
        headers = draw(st.lists(st.one_of(st.sampled_from(pool), header), max_size=12))
        blocks.append((sizes, headers, draw(st.booleans()), draw(st.booleans())))
    return cap, blocks


# ----------------------------------------------------------------------------------------
# What to expect.

def to_bytes(x):
    if isinstance(x, bytes):
        return x
    return x.encode("latin-1")


def expected(headers):
    """[(name bytes, value bytes, never indexed)] our encoder must convey."""
    out = []
    for h in headers:
        name, value = to_bytes(h[0]), to_bytes(h[1])
        if len(h) == 3:
            sensitive = bool(h[2])
        else:
            sensitive = not getattr(h, "indexable", True)
        sensitive = sensitive or name in (b"authorization", b"proxy-authorization") or (
            name == b"cookie" and len(value) < 20)
        out.append((name, value, sensitive))
    return out


def ours(decoded):
    out = []
    for h in decoded:
        never = isinstance(h, NeverIndexedHeaderTuple)
        if not never:
            assert type(h) is tuple
        out.append((to_bytes(h[0]), to_bytes(h[1]), never))
    return out


def theirs(decoded):
    return [(h[0], h[1], isinstance(h, hpack.NeverIndexedHeaderTuple)) for h in decoded]


def apply_sizes(sizes, e, *decoders):
    for s in sizes:
        e.header_table_size = s
        for d in decoders:
            d.max_allowed_table_size = s


# ----------------------------------------------------------------------------------------
# Round trips.

@settings(max_examples=250, **SETTINGS)
@given(sessions())
def test_round_trip_ours(session):
    cap, blocks = session
    e, d = Encoder(max_table_size=cap), Decoder(max_header_list_size=None)
    for sizes, headers, huffman, raw in blocks:
        apply_sizes(sizes, e, d)
        block = e.encode(headers, huffman=huffman)
        got = d.decode(block, raw=raw)
        if raw:
            assert all(type(x) is bytes for h in got for x in h)
        else:
            assert all(type(x) is str for h in got for x in h)
        assert ours(got) == expected(headers)
        check_in_step(e, d)


@settings(max_examples=120, **SETTINGS)
@given(sessions())
def test_round_trip_hpack_decoder(session):
    cap, blocks = session
    e, h = Encoder(max_table_size=cap), hpack.Decoder(max_header_list_size=1 << 40)
    d = Decoder(max_header_list_size=None)
    for sizes, headers, huffman, _ in blocks:
        apply_sizes(sizes, e, h, d)
        block = e.encode(headers, huffman=huffman)
        assert theirs(h.decode(block, raw=True)) == expected(headers)
        assert h.header_table._current_size == e.table_bytes
        assert h.header_table_size == e.header_table_size
        assert ours(d.decode(block, raw=True)) == expected(headers)


@settings(max_examples=150, **SETTINGS)
@given(st.lists(st.tuples(st.lists(table_size, min_size=1, max_size=4),
                          st.lists(header, min_size=1, max_size=6)), min_size=2, max_size=6))
def test_table_size_changes_between_blocks(steps):
    # Every block after some size changes: the encoder's size updates (smallest, then
    # final) keep our decoder and hpack's in step.
    e, d, h = Encoder(), Decoder(max_header_list_size=None), hpack.Decoder(1 << 40)
    for sizes, headers in steps:
        apply_sizes(sizes, e, d, h)
        block = e.encode(headers)
        assert ours(d.decode(block)) == expected(headers)
        assert theirs(h.decode(block, raw=True)) == expected(headers)
        check_in_step(e, d)
        assert h.header_table._current_size == e.table_bytes


SCRIPTED_SIZES = [
    [[100, 4096]], [[0, 4096]], [[0], [4096]], [[0], [0], [100]], [[50, 200, 10, 300]],
    [[4096, 4096]], [[4096, 0, 4096], [4096]], [[36], [35], [72]], [[65536], [4096]],
]


def test_scripted_decrease_then_increase():
    base = [("x-a", "1"), ("x-b", "2"), ("x-c", "3"), ("cookie", "c" * 30)]
    for script in SCRIPTED_SIZES:
        e, d, h = Encoder(), Decoder(), hpack.Decoder()
        for sizes in [[]] + script:
            apply_sizes(sizes, e, d, h)
            block = e.encode(base)
            assert d.decode(block) == base, script
            assert [tuple(x) for x in h.decode(block)] == base, script
            check_in_step(e, d)
            assert h.header_table._current_size == e.table_bytes


# ----------------------------------------------------------------------------------------
# Never-indexed fields through a proxy.

@settings(max_examples=150, **SETTINGS)
@given(st.lists(header, min_size=1, max_size=10), st.booleans())
def test_never_indexed_survives_reencoding(headers, raw):
    want = expected(headers)
    decoded = Decoder(max_header_list_size=None).decode(Encoder().encode(headers), raw=raw)
    assert ours(decoded) == want
    # A proxy re-encodes what it decoded; the next hop must see the same flags.
    block = Encoder().encode(decoded)
    assert ours(Decoder(max_header_list_size=None).decode(block)) == want
    assert theirs(hpack.Decoder(1 << 40).decode(block, raw=True)) == want
    for item, (_, _, never) in zip(decoded, want):
        single = Encoder().encode([item])
        if never:
            assert single[0] & 0xF0 == 0x10
        else:
            assert single[0] & 0xF0 != 0x10


# ----------------------------------------------------------------------------------------
# Huffman: canonical (same bits as the hpack package) and used only when shorter.

@settings(max_examples=400, **SETTINGS)
@given(st.one_of(st.binary(max_size=64), latin1_text.map(lambda s: s.encode("latin-1")),
                 st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-/.:=; ", max_size=64)
                 .map(str.encode), long_bytes),
       st.booleans())
def test_huffman_only_when_shorter_and_canonical(value, huffman):
    block = Encoder().encode([(b"x", value)], huffman=huffman)
    assert block[0] in (0x40, 0x00)
    assert block[1:3] == b"\x01x"          # Huffman of "x" is not shorter than "x"
    h_bit = block[3] & 0x80
    length, pos = read_int(block, 3, 7)
    assert pos + length == len(block)
    coded = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH).encode(value)
    if huffman and len(coded) < len(value):
        assert h_bit
        assert block[pos:] == coded
    else:
        assert not h_bit
        assert block[pos:] == value
    assert Decoder(max_header_list_size=None).decode(block, raw=True) == [(b"x", value)]


# ----------------------------------------------------------------------------------------
# A long seeded session: many blocks over one pair, so the encoder's hash indexes fill
# with stale ids, get rebuilt, and the rings grow and wrap.

def test_long_session_stress():
    import random

    for seed in range(5):
        rng = random.Random(seed)
        pool = []
        for i in range(500):
            name = "x-h%d" % rng.randrange(60)
            if rng.random() < 0.5:
                name = name.encode()
            pool.append((name, "v" * rng.randrange(0, 300) + str(i)))
        pool += [(":path", "/p%d" % i) for i in range(40)]
        pool += [("cookie", "c" * rng.randrange(0, 40)) for _ in range(10)]
        e = Encoder(max_table_size=rng.choice([4096, 65536, 300]))
        d = Decoder(max_header_list_size=None)
        for n in range(6000):
            if rng.random() < 0.05:
                for _ in range(rng.randrange(1, 3)):
                    size = rng.choice([0, 50, 100, 500, 1000, 4096, 8192, 65536,
                                       rng.randrange(70000)])
                    e.header_table_size = size
                    d.max_allowed_table_size = size
            headers = [rng.choice(pool) for _ in range(rng.randrange(0, 15))]
            block = e.encode(headers, huffman=rng.random() < 0.5)
            assert ours(d.decode(block, raw=n % 2 == 0)) == expected(headers), (seed, n)
            assert (len(e), e.table_bytes) == (len(d), d.table_bytes), (seed, n)
