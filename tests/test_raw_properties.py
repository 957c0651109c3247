"""Property tests (hypothesis) for cno.raw.Connection:

- a scripted conversation's input split at random points, or fed byte by byte, gives the same
  events (and the same frames out, WINDOW_UPDATE timing aside) as fed whole;
- whatever cno writes parses as HTTP/2 frames (hyperframe, via raw_frames.FrameParser) and is
  accepted by python-hyper's h2 as a peer, both as server and as client.
"""
import hpack
import pytest
from h2.config import H2Configuration
from h2.connection import H2Connection
from h2 import events as h2e
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from raw_frames import (
    PREFACE, REQ, RESP, WINDOW_UPDATE, continuation, data, frame, goaway, headers, ping,
    priority, push_promise, recorder_class, rst_stream, settings, settings_ack, window_update,
)

FAST = hsettings(max_examples=60, deadline=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _server_script():
    enc = hpack.Encoder()
    # encoded in the order they are sent: the dynamic table is shared
    blk1 = enc.encode(REQ + [("user-agent", "prop/1.0"), ("x-long", "l" * 300)])
    blk3 = enc.encode(REQ + [("x-three", "3")])
    trailers = enc.encode([("x-checksum", "abc")])
    post = enc.encode([(":method", "POST"), (":scheme", "https"), (":path", "/post"),
                       (":authority", "example.com"), ("content-length", "10")])
    blk7 = enc.encode(REQ + [("x-seven", "7")])
    return b"".join([
        PREFACE, settings(initial_window_size=100000, max_concurrent_streams=50), settings_ack(),
        headers(1, blk1[:20], end_headers=False), continuation(1, blk1[20:200], end_headers=False),
        continuation(1, blk1[200:]),
        data(1, bytes(range(256)) * 20), data(1, b"padded" * 50, pad=20),
        ping(b"pingpong"),
        headers(3, blk3, end_stream=True, pad=5, priority=(1, 32, False)),
        priority(9, 3, 100), frame(0x0C, 0x5, 0, b"extension"),
        window_update(0, 1000), window_update(1, 500),
        data(1, b"a" * 16000), data(1, b"b" * 4000),
        headers(1, trailers, end_stream=True),
        headers(5, post), data(5, b"0123456789", end_stream=True),
        headers(7, blk7), rst_stream(7, 8),
        settings(header_table_size=2048),
        ping(b"12345678", ack=True),
        goaway(7),
    ])


def _client_script():
    enc = hpack.Encoder()
    return b"".join([
        settings(max_concurrent_streams=10, initial_window_size=70000), settings_ack(),
        headers(1, enc.encode([(":status", "103"), ("link", "</a>")])),
        headers(1, enc.encode(RESP + [("content-type", "text/plain")])),
        data(1, b"hello " * 1000),
        push_promise(1, 2, enc.encode([(":method", "GET"), (":scheme", "https"),
                                       (":path", "/pushed"), (":authority", "example.com")]),
                     pad=3),
        headers(2, enc.encode(RESP)), data(2, b"pushed body", end_stream=True),
        headers(1, enc.encode([("x-trailer", "t")]), end_stream=True),
        headers(3, enc.encode(RESP + [("content-length", "4")])),
        data(3, b"four", end_stream=True),
        ping(b"clientpi"),
        window_update(0, 12345),
        goaway(3),
    ])


SERVER_SCRIPT = _server_script()
CLIENT_SCRIPT = _client_script()


def _normalise(events):
    """Adjacent on_message_data events of one stream merged (a split frame may be delivered
    in several pieces)."""
    out = []
    for e in events:
        if e[0] == "data" and out and out[-1][0] == "data" and out[-1][1] == e[1]:
            out[-1] = ("data", e[1], out[-1][2] + e[2])
        elif e[0] == "data" and not e[2]:
            continue
        else:
            out.append(e)
    return out


def _run(server, pieces):
    if server:
        c = recorder_class()(server=True)
        c.connection_made(True)
    else:
        c = recorder_class(push=True)(server=False)
        c.connection_made(True)
        c.write_head(1, 0, "GET", "/", [(":scheme", "https"), (":authority", "example.com")],
                     True)
        c.write_head(3, 0, "POST", "/p", [(":scheme", "https"), (":authority", "example.com")],
                     False)
        c.write_data(3, b"request body", True)
    for p in pieces:
        c.data_received(p)
    frames_in = [(f.type, f.flags, f.stream, None if f.type == 0 else f.payload)
                 for f in c.frames_in]
    out = [(f.type, f.flags, f.stream, f.payload) for f in c.sent if f.type != WINDOW_UPDATE]
    return _normalise(c.events), frames_in, out


def _split(script, points):
    points = sorted(set(p for p in points if 0 < p < len(script)))
    bounds = [0] + points + [len(script)]
    return [script[a:b] for a, b in zip(bounds, bounds[1:])]


@pytest.fixture(scope="module")
def server_whole():
    return _run(True, [SERVER_SCRIPT])


@pytest.fixture(scope="module")
def client_whole():
    return _run(False, [CLIENT_SCRIPT])


def test_server_script_sane(server_whole):
    events, frames_in, out = server_whole
    kinds = [e[0] for e in events]
    assert kinds.count("head") == 4 and ("tail", 1, [("x-checksum", "abc")]) in events
    assert ("pong", b"12345678") in events
    assert ("end", 7, 8, 0) in events
    assert any(f[0] == 0x0C for f in frames_in)


def test_client_script_sane(client_whole):
    events, _, _ = client_whole
    assert [(e[1], e[2]) for e in events if e[0] == "head"] == [(1, 103), (1, 200), (2, 200),
                                                                (3, 200)]
    assert [e[1] for e in events if e[0] == "push"] == [2]
    assert ("tail", 1, [("x-trailer", "t")]) in events


@FAST
@given(st.lists(st.integers(0, len(SERVER_SCRIPT)), max_size=40))
def test_server_split_anywhere(server_whole, points):
    # docs/raw.md / DESIGN 5: any input split at random points gives the same events.
    assert _run(True, _split(SERVER_SCRIPT, points)) == server_whole


@FAST
@given(st.lists(st.integers(0, len(CLIENT_SCRIPT)), max_size=40))
def test_client_split_anywhere(client_whole, points):
    assert _run(False, _split(CLIENT_SCRIPT, points)) == client_whole


def test_server_byte_by_byte(server_whole):
    assert _run(True, [bytes([b]) for b in SERVER_SCRIPT]) == server_whole


def test_client_byte_by_byte(client_whole):
    assert _run(False, [bytes([b]) for b in CLIENT_SCRIPT]) == client_whole


def test_memoryview_pieces(server_whole):
    mv = memoryview(bytearray(SERVER_SCRIPT))
    assert _run(True, [mv[i:i + 777] for i in range(0, len(mv), 777)]) == server_whole


# ---------------------------------------------------------------------------------------------
# h2 accepts what cno writes

names = st.from_regex(r"x-[a-z0-9][a-z0-9-]{0,15}", fullmatch=True)
values = st.one_of(st.just(""), st.from_regex(r"[!-~]([ -~\t]{0,40}[!-~])?", fullmatch=True))
fields = st.lists(st.tuples(names, values), max_size=8)
bodies = st.binary(max_size=150000)
chunk_sizes = st.lists(st.integers(1, 40000), min_size=1, max_size=6)


def _h2_pump(h, c, evs):
    """Move bytes both ways until quiet; h2 acknowledges data as it arrives."""
    for _ in range(100):
        moved = False
        out = bytes(c.wire[c._h2_pos:])
        c._h2_pos = len(c.wire)
        if out:
            moved = True
            for ev in h.receive_data(out):
                evs.append(ev)
                if isinstance(ev, h2e.DataReceived) and ev.flow_controlled_length:
                    h.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
        back = h.data_to_send()
        if back:
            moved = True
            c.data_received(back)
        if not moved:
            return


def _write_all(h, c, evs, stream, body, sizes, final):
    i = 0
    k = 0
    while i < len(body):
        n = sizes[k % len(sizes)]
        k += 1
        chunk = body[i:i + n]
        last = final and i + len(chunk) == len(body)
        sent = c.write_data(stream, chunk, last)
        assert 0 <= sent <= len(chunk)
        i += sent
        _h2_pump(h, c, evs)
        if sent == 0:
            assert c.write_data(stream, chunk, last) > 0, "stalled: window never reopened"


@FAST
@given(fields, bodies, chunk_sizes, st.one_of(st.none(), fields.filter(bool)))
def test_h2_client_accepts_cno_server(hdrs, body, sizes, trailers):
    h = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    h.initiate_connection()
    h.send_headers(1, [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
                       (b":authority", b"example.com")], end_stream=True)
    c = recorder_class()(server=True)
    c._h2_pos = 0
    c.connection_made(True)
    evs = []
    c.data_received(h.data_to_send())
    _h2_pump(h, c, evs)
    assert [e[:5] for e in c.of("head")] == [("head", 1, 0, "GET", "/")]
    c.write_head(1, 200, "", "", hdrs, not body and not trailers)
    _h2_pump(h, c, evs)
    _write_all(h, c, evs, 1, body, sizes, not trailers)
    if trailers:
        c.write_tail(1, trailers)
    _h2_pump(h, c, evs)
    c.sent  # every frame parses (hyperframe) and every block decodes (hpack)
    [resp] = [e for e in evs if isinstance(e, h2e.ResponseReceived)]
    enc = [(k.encode(), v.encode("latin-1")) for k, v in hdrs]
    assert list(resp.headers) == [(b":status", b"200")] + enc
    assert b"".join(e.data for e in evs if isinstance(e, h2e.DataReceived)) == body
    got_trailers = [e for e in evs if isinstance(e, h2e.TrailersReceived)]
    if trailers:
        assert list(got_trailers[0].headers) == [(k.encode(), v.encode()) for k, v in trailers]
    assert [e for e in evs if isinstance(e, h2e.StreamEnded)]


@FAST
@given(fields, bodies, chunk_sizes, st.one_of(st.none(), fields.filter(bool)))
def test_h2_server_accepts_cno_client(hdrs, body, sizes, trailers):
    h = H2Connection(H2Configuration(client_side=False, header_encoding=None))
    h.initiate_connection()
    c = recorder_class()(server=False)
    c._h2_pos = 0
    c.connection_made(True)
    evs = []
    _h2_pump(h, c, evs)
    final = not body and not trailers
    c.write_head(1, 0, "POST", "/upload?x=1", [(":scheme", "https"),
                                               (":authority", "example.com")] + hdrs, final)
    _h2_pump(h, c, evs)
    _write_all(h, c, evs, 1, body, sizes, not trailers)
    if trailers:
        c.write_tail(1, trailers)
    _h2_pump(h, c, evs)
    c.sent
    [req] = [e for e in evs if isinstance(e, h2e.RequestReceived)]
    d = dict(req.headers)
    assert (d[b":method"], d[b":path"], d[b":scheme"], d[b":authority"]) == (
        b"POST", b"/upload?x=1", b"https", b"example.com")
    assert [hd for hd in req.headers if not hd[0].startswith(b":")] == [
        (k.encode(), v.encode("latin-1")) for k, v in hdrs]
    assert b"".join(e.data for e in evs if isinstance(e, h2e.DataReceived)) == body
    assert [e for e in evs if isinstance(e, h2e.StreamEnded)]
    # and h2's answer comes back through cno
    h.send_headers(1, [(b":status", b"201"), (b"x-r", b"1")], end_stream=True)
    _h2_pump(h, c, evs)
    assert [(e[1], e[2], e[5]) for e in c.of("head")] == [(1, 201, [("x-r", "1")])]


@FAST
@given(st.lists(st.sampled_from(["ping", "settings", "reset", "push", "priority", "frame"]),
                max_size=12))
def test_h2_accepts_cno_control_frames(ops):
    # Pings, settings changes, resets, pushes and extension frames from cno, as h2 sees them.
    h = H2Connection(H2Configuration(client_side=True, header_encoding=None))
    h.initiate_connection()
    c = recorder_class()(server=True)
    c._h2_pos = 0
    c.connection_made(True)
    evs = []
    sid = 1
    for op in ops:
        h.send_headers(sid, [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/"),
                             (b":authority", b"example.com")], end_stream=True)
        _h2_pump(h, c, evs)
        if op == "ping":
            c.write_ping(b"%08d" % sid)
        elif op == "settings":
            c.update_settings(max_concurrent_streams=50 + sid, initial_window_size=60000 + sid)
        elif op == "reset":
            c.write_reset(sid, 8)
        elif op == "push":
            p = c.write_push(sid, "GET", "/p%d" % sid, [(":scheme", "https"),
                                                        (":authority", "example.com")])
            if p:
                c.write_head(p, 200, "", "", [], True)
        elif op == "priority":
            c.write_frame(2, 0, sid, b"\0\0\0\0\x10")
        elif op == "frame":
            c.write_frame(0xB, 0, 0, b"ext")
        if op != "reset":
            c.write_head(sid, 200, "", "", [("x-op", op)], True)
        _h2_pump(h, c, evs)
        sid += 2
    c.sent
    assert len([e for e in evs if isinstance(e, h2e.ResponseReceived)]) == \
        len([o for o in ops if o != "reset"]) + len([e for e in evs
                                                    if isinstance(e, h2e.PushedStreamReceived)])
