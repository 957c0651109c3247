"""Small DATA payloads gathered into one on_message_data (issue 13: W2 with 10-byte frames).

docs/raw.md: on_message_data gets body bytes "as they arrive", and consecutive DATA frames
of one stream whose payloads are small (at most 4 KiB each) and that arrive in one
data_received are handed over together, at most 64 KiB at a time. Nothing else changes:
every other event still comes in wire order (the gathered bytes are delivered before
anything after them is reported), everything gathered is delivered before data_received
returns, flow-control credit and content-length are counted frame by frame, and a
connection that sees frames whole (on_frame) or takes memoryviews (data_views) gets one
delivery per frame as before.
"""
import random

import pytest
from hypothesis import given, settings as hsettings, strategies as st

import cno.raw
from cno import errors

from raw_frames import (
    END_STREAM, FLOW_CONTROL_ERROR, PROTOCOL_ERROR, REQ, WINDOW_UPDATE, data, frame,
    headers, literal_block, make_server, merged_data, ping, recorder_class, rst_stream,
    window_update,
)

PIECE = 4096          # the largest payload that is gathered
MOST = 65536          # gathered bytes are handed over once they reach this much


def gathering_class():
    """The tests' Recorder without on_frame (which asks for per-frame delivery)."""
    class Gathering(recorder_class()):
        on_frame = cno.raw.Connection.on_frame
    return Gathering


def server(**kw):
    c = make_server(cls=gathering_class(), **kw)
    return c


def opened(c, *streams, fields=REQ):
    for sid in streams:
        c.feed(headers(sid, c.block(fields)))
    c.events.clear()
    c.take()


def body(n, seed=0):
    return random.Random(seed).randbytes(n)


def data_events(c):
    return [e for e in c.events if e[0] == "data"]


def test_consecutive_small_frames_are_one_delivery():
    c = server()
    opened(c, 1)
    pieces = [body(10, i) for i in range(100)]
    c.feed(b"".join(data(1, p) for p in pieces))
    assert data_events(c) == [("data", 1, b"".join(pieces))]


def test_end_stream_delivers_before_the_tail():
    c = server()
    opened(c, 1)
    c.feed(data(1, b"a" * 10) + data(1, b"b" * 10) + data(1, b"c" * 5, end_stream=True))
    kinds = [e[0] for e in c.events]
    assert kinds[:2] == ["data", "tail"]
    assert c.events[0] == ("data", 1, b"a" * 10 + b"b" * 10 + b"c" * 5)


def test_streams_interleaved_keep_their_order():
    c = server()
    opened(c, 1, 3)
    c.feed(data(1, b"1a") + data(1, b"1b") + data(3, b"3a") + data(3, b"3b") + data(1, b"1c"))
    assert data_events(c) == [("data", 1, b"1a1b"), ("data", 3, b"3a3b"), ("data", 1, b"1c")]


def test_other_frames_report_after_the_bytes_before_them():
    c = server()
    opened(c, 1)
    c.feed(data(1, b"x" * 7) + ping(b"12345678", ack=True) + data(1, b"y" * 7))
    assert [e for e in c.events if e[0] in ("data", "pong")] == [
        ("data", 1, b"x" * 7), ("pong", b"12345678"), ("data", 1, b"y" * 7)]


def test_a_reset_from_the_peer_comes_after_its_data():
    c = server()
    opened(c, 1)
    c.feed(data(1, b"x" * 9) + data(1, b"z" * 9) + rst_stream(1, 8))
    assert c.events[0] == ("data", 1, b"x" * 9 + b"z" * 9)
    assert c.events[1][:2] == ("end", 1)


def test_each_data_received_delivers_what_it_brought():
    c = server()
    opened(c, 1)
    wire = b"".join(data(1, bytes([i]) * 10) for i in range(10))
    c.data_received(wire[:49])      # two frames and two bytes of the third one
    assert merged_data(c.events) == bytes([0]) * 10 + bytes([1]) * 10 + bytes([2]) * 2
    c.data_received(wire[49:])
    assert merged_data(c.events) == b"".join(bytes([i]) * 10 for i in range(10))
    assert len(data_events(c)) == 2


def test_a_large_payload_goes_alone_after_the_small_ones_before_it():
    c = server()
    opened(c, 1)
    big = body(PIECE + 1, 7)
    c.feed(data(1, b"s" * 10) + data(1, big) + data(1, b"t" * 10))
    assert data_events(c) == [("data", 1, b"s" * 10), ("data", 1, big), ("data", 1, b"t" * 10)]


def test_gathering_stops_at_64_kib():
    c = server(local={"initial_window_size": 1 << 20})
    opened(c, 1)
    c.feed(window_update(0, 1 << 20))
    c.take()
    pieces = [body(PIECE, i) for i in range(40)]          # 160 KiB in 4 KiB frames
    c.feed(b"".join(data(1, p) for p in pieces))
    got = data_events(c)
    assert b"".join(e[2] for e in got) == b"".join(pieces)
    assert [len(e[2]) for e in got] == [MOST, MOST, 40 * PIECE - 2 * MOST]


def test_content_length_overflow_delivers_what_fit_then_resets():
    c = server()
    opened(c, 1, fields=REQ + [("content-length", "25")])
    c.data_received(data(1, b"a" * 10) + data(1, b"b" * 10) + data(1, b"c" * 10))
    assert c.events[0] == ("data", 1, b"a" * 10 + b"b" * 10)
    assert c.events[1] == ("end", 1, PROTOCOL_ERROR, cno.raw.CNO_LOCAL)
    rst = [f for f in c.take() if f.type == 3]
    assert rst and rst[0].error_code == PROTOCOL_ERROR


def test_content_length_short_at_end_stream_resets_after_the_data():
    c = server()
    opened(c, 1, fields=REQ + [("content-length", "25")])
    c.data_received(data(1, b"a" * 10) + data(1, b"b" * 10, end_stream=True))
    assert c.events[0] == ("data", 1, b"a" * 10 + b"b" * 10)
    assert c.events[1] == ("end", 1, PROTOCOL_ERROR, cno.raw.CNO_LOCAL)
    assert not c.of("tail")


def test_stream_window_exceeded_delivers_what_fit_then_resets():
    c = server(local={"initial_window_size": 30}, manual=True)   # (no credit meanwhile)
    opened(c, 1)
    c.data_received(b"".join(data(1, bytes([65 + i]) * 10) for i in range(4)))
    assert c.events[0] == ("data", 1, b"A" * 10 + b"B" * 10 + b"C" * 10)
    assert c.events[1] == ("end", 1, FLOW_CONTROL_ERROR, cno.raw.CNO_LOCAL)


def test_connection_error_comes_after_the_data():
    c = server()
    opened(c, 1)
    with pytest.raises(errors.ProtocolError):
        c.data_received(data(1, b"q" * 10) + data(1, b"r" * 10) + data(0, b"bad"))
    assert data_events(c) == [("data", 1, b"q" * 10 + b"r" * 10)]
    assert c.closed


def test_a_bad_frame_after_a_raising_data_handler_is_not_lost():
    """The handler of the bytes before a bad frame raises: the frame stays unread (as any
    frame after a raising handler), and the next data_received reports it."""
    class Boom(gathering_class()):
        def on_message_data(self, stream, data):
            raise RuntimeError("handler failed")

    c = make_server(cls=Boom)
    opened(c, 1)
    with pytest.raises(RuntimeError):
        c.data_received(data(1, b"q" * 10) + data(0, b"bad"))
    with pytest.raises(errors.ProtocolError):
        c.data_received(ping())
    assert c.closed


def test_connection_error_inside_a_run_stands_when_the_data_handler_raises():
    """An error found in a DATA frame of the gathered stream itself (here: padding longer
    than the frame) is recorded even though delivering the bytes before it raised."""
    class Boom(gathering_class()):
        def on_message_data(self, stream, data):
            raise RuntimeError("handler failed")

    c = make_server(cls=Boom)
    opened(c, 1)
    bad_padding = frame(0, 0x8, 1, bytes([200]) + b"xy")
    with pytest.raises(RuntimeError):
        c.data_received(data(1, b"q" * 10) + bad_padding)
    assert c.closed
    with pytest.raises(errors.ConnectionClosed):
        c.data_received(ping())


def test_a_raising_handler_gets_nothing_twice():
    calls = []

    class Once(gathering_class()):
        def on_message_data(self, stream, data):
            calls.append(bytes(data))
            if len(calls) == 1:
                raise RuntimeError("first delivery fails")

    c = make_server(cls=Once)
    opened(c, 1)
    with pytest.raises(RuntimeError):
        c.data_received(data(1, b"1" * 10) + data(1, b"2" * 10))
    c.data_received(data(1, b"3" * 10))
    assert calls == [b"1" * 10 + b"2" * 10, b"3" * 10]


def test_flow_control_credit_counts_every_frame():
    """Automatic flow control gives back the gathered bytes as it did frame by frame: the
    peer can send a whole default window of 10-byte frames, and more after the updates."""
    c = server()
    opened(c, 1)
    sent = 0
    for _ in range(4):
        c.feed(b"".join(data(1, b"w" * 10) for _ in range(3000)))
        sent += 30000
    updates = [f for f in c.take() if f.type == WINDOW_UPDATE]
    for sid in (0, 1):
        credited = sum(f.window_increment for f in updates if f.stream == sid)
        assert 0 <= sent - credited <= 65535, (sid, sent, credited)
    assert len(merged_data(c.events)) == sent
    assert len(data_events(c)) == 4


def test_on_frame_keeps_one_delivery_per_frame():
    c = make_server()                                   # Recorder: defines on_frame
    opened(c, 1)
    c.feed(data(1, b"a" * 10) + data(1, b"b" * 10))
    assert data_events(c) == [("data", 1, b"a" * 10), ("data", 1, b"b" * 10)]


def test_data_views_keep_one_delivery_per_frame():
    c = server(data_views=True)
    opened(c, 1)
    c.feed(data(1, b"a" * 10) + data(1, b"b" * 10))
    assert data_events(c) == [("data", 1, b"a" * 10), ("data", 1, b"b" * 10)]


def test_padding_and_empty_frames_are_not_body():
    c = server()
    opened(c, 1)
    c.feed(data(1, b"a" * 10, pad=5) + data(1, b"") + data(1, b"b" * 3, pad=0)
           + data(1, b"c", end_stream=True))
    assert c.events[0] == ("data", 1, b"a" * 10 + b"bbb" + b"c")
    assert c.events[1][0] == "tail"


def test_gathered_bytes_are_counted_by_sizeof_only_while_held():
    import sys
    c = server()
    opened(c, 1)
    before = sys.getsizeof(c)
    c.feed(b"".join(data(1, b"m" * 10) for _ in range(50)))
    assert sys.getsizeof(c) - before <= 512     # the gathering buffer keeps a small capacity


# -- equivalence with per-frame delivery ----------------------------------------------------

def merged(events):
    """Adjacent data events of one stream joined: what gathering may change, and no more."""
    out = []
    for e in events:
        if e[0] == "data" and out and out[-1][0] == "data" and out[-1][1] == e[1]:
            out[-1] = ("data", e[1], out[-1][2] + e[2])
        else:
            out.append(e)
    return out


def run_both(wire, cuts, fields_by_stream, **kw):
    """Feed the same bytes, cut the same way, to a gathering server and one that delivers
    each piece as it comes (data_views; on_frame would change more: whole frames)."""
    results = []
    for views in (False, True):
        c = make_server(cls=gathering_class(), data_views=views, **kw)
        for sid, fields in fields_by_stream:
            c.feed(headers(sid, literal_block(fields)))
        c.events.clear()
        c.take()
        error = None
        last = 0
        try:
            for cut in sorted(cuts) + [len(wire)]:
                c.data_received(wire[last:cut])
                last = cut
        except errors.CnoError as e:
            error = (type(e), e.error_code)
        results.append((merged(c.events), bytes(c.wire), error))
    return results


frames_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("data"), st.sampled_from([1, 3]),
                  st.one_of(st.integers(0, 40), st.integers(4090, 4100)), st.booleans(),
                  st.one_of(st.none(), st.integers(0, 20))),
        st.tuples(st.just("ping")),
        st.tuples(st.just("rst"), st.sampled_from([1, 3])),
        st.tuples(st.just("bad"),),
    ),
    min_size=1, max_size=40)


@hsettings(max_examples=150, deadline=None)
@given(frames=frames_strategy, seed=st.integers(0, 1 << 30),
       content_length=st.one_of(st.none(), st.integers(0, 200)))
def test_same_events_and_output_as_per_frame_delivery(frames, seed, content_length):
    rng = random.Random(seed)
    wire = bytearray()
    for f in frames:
        if f[0] == "data":
            _, sid, n, end, pad = f
            wire += data(sid, rng.randbytes(n), end_stream=end and rng.random() < 0.2, pad=pad)
        elif f[0] == "ping":
            wire += ping(rng.randbytes(8))
        elif f[0] == "rst":
            wire += rst_stream(f[1], 8)
        elif rng.random() < 0.3:
            wire += frame(0, 0, 0, b"stream zero")      # a connection error
    cuts = [rng.randrange(len(wire) + 1) for _ in range(rng.randrange(4))]
    extra = [] if content_length is None else [("content-length", str(content_length))]
    gathered, per_frame = run_both(bytes(wire), cuts, [(1, REQ + extra), (3, REQ)])
    assert gathered == per_frame


def test_same_as_per_frame_on_a_large_example():
    rng = random.Random(5)
    wire = b"".join(data(rng.choice([1, 3]), rng.randbytes(rng.randrange(60)))
                    + (ping() if rng.random() < 0.05 else b"") for _ in range(2000))
    gathered, per_frame = run_both(wire, [rng.randrange(len(wire)) for _ in range(30)],
                                   [(1, REQ), (3, REQ)],
                                   local={"initial_window_size": 1 << 20})
    assert gathered == per_frame
    assert gathered[2] is None
