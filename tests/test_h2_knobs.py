"""The engine's knobs for h2-style faces (docs/raw.md, "Knobs for h2-style faces"), each
on cno.raw.Connection directly, against hand-made frames (raw_frames)."""
import hpack
import pytest

import cno.errors
import cno.raw
from raw_frames import (
    CANCEL, COMPRESSION_ERROR, DATA, ENHANCE_YOUR_CALM, FRAME_SIZE_ERROR, GOAWAY, HEADERS,
    PADDED, PING, PREFACE, PRIORITY_FLAG, PROTOCOL_ERROR, REFUSED_STREAM, RST_STREAM,
    SETTINGS, STREAM_CLOSED, WINDOW_UPDATE, continuation, data, frame, frame_header, goaway,
    headers, parse_frames, ping, rst_stream, settings, settings_ack, window_update,
)

REQ = [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"https"),
       (b":authority", b"example.com")]


class Peer(cno.raw.Connection):
    """Collects output and events."""

    def __init__(self, server=True, **knobs):
        super().__init__(server=server)
        self.out = bytearray()
        self.events = []
        for name, value in knobs.items():
            setattr(self, name, value)

    def on_writev(self, chunks):
        self.out += b"".join(chunks)

    def on_message_head(self, stream, code, method, path, hs):
        self.events.append(("head", stream, code, list(hs)))

    def on_message_data(self, stream, payload):
        self.events.append(("data", stream, payload, self.data_frame_length))

    def on_message_tail(self, stream, trailers):
        self.events.append(("tail", stream, trailers))

    def take(self):
        out = bytes(self.out)
        self.out.clear()
        return out


class FramePeer(Peer):
    """... and the frames on_frame sees (which makes DATA arrive whole)."""

    def on_frame(self, f):
        self.events.append(("frame", f.type))


def server(cls=Peer, **knobs):
    s = cls(True, bytes_headers=True, **knobs)
    s.connection_made(True)
    s.data_received(PREFACE + settings() + settings_ack())
    s.take()
    s.events.clear()
    return s


def block(fields):
    return hpack.Encoder().encode(fields)


def test_pseudo_in_headers_both_ways():
    s = server(pseudo_in_headers=True)
    s.data_received(headers(1, block(REQ), end_stream=True))
    assert s.events[0] == ("head", 1, 0, REQ)
    s.write_head(1, 0, b"", b"", [(b":status", b"204"), (b"x", b"1")], True)
    (f,) = parse_frames(s.take())
    assert f.type == HEADERS and hpack.Decoder().decode(f.payload, raw=True) == [
        (b":status", b"204"), (b"x", b"1")]


def test_pseudo_in_headers_off_by_default():
    s = server()
    s.data_received(headers(1, block(REQ), end_stream=True))
    assert s.events[0] == ("head", 1, 0, REQ[2:])


def test_utf8_fields():
    c = Peer(False, pseudo_in_headers=True, utf8_fields=True)
    c.connection_made(True)
    c.take()
    c.write_head(1, 0, b"", b"", REQ + [("x-name", "caf\u00e9")], True)
    (f,) = parse_frames(c.take())
    assert hpack.Decoder().decode(f.payload, raw=True)[-1] == (b"x-name", "café".encode())


def test_frame_data_one_event_per_frame_with_padding():
    s = server(frame_data=True)
    s.data_received(headers(1, block(REQ)) + data(1, b"ab") + data(1, b"cd", pad=3)
                    + data(1, b"", end_stream=True))
    got = [e for e in s.events if e[0] == "data"]
    assert got == [("data", 1, b"ab", 2), ("data", 1, b"cd", 6), ("data", 1, b"", 0)]


def test_frame_data_off_gathers():
    s = server()
    s.data_received(headers(1, block(REQ)) + data(1, b"ab") + data(1, b"cd"))
    assert [e[2] for e in s.events if e[0] == "data"] == [b"abcd"]


def test_flow_exact_credits_only_what_is_opened():
    s = server(manual_flow_control=True, flow_exact=True)
    s.data_received(headers(1, block(REQ)) + data(1, b"x" * 10, pad=5))
    assert s.take() == b""                      # not even the padding is credited
    assert s.windows(1) == (65535, 65535 - 16)
    s.open_flow(1, 7)                            # unbatched: one frame of exactly 7
    s.open_flow(0, 9)
    frames = parse_frames(s.take())
    assert [(f.type, f.stream, f.window_increment) for f in frames] == [
        (WINDOW_UPDATE, 1, 7), (WINDOW_UPDATE, 0, 9)]


def test_settings_order_and_first_settings_in_force():
    c = Peer(False, settings_order=("header_table_size", "enable_push", "max_concurrent_streams"),
             first_settings_in_force=True)
    c.connection_made(True)
    out = c.take()[len(PREFACE):]
    (f,) = parse_frames(out)
    assert f.type == SETTINGS and list(f.payload[i + 1] for i in range(0, len(f.payload), 6))[:3] == [1, 2, 3]
    assert c.settings_unacked == 0
    c.update_settings(max_frame_size=20000, header_table_size=100)
    (f,) = parse_frames(c.take())
    assert [f.payload[1], f.payload[7]] == [5, 1]   # as given, not by id
    c.data_received(settings() + settings_ack())   # the first ACK is for the update
    assert c.local_settings["max_frame_size"] == 20000


def test_defer_preface_and_lenient_start():
    c = Peer(False, defer_preface=True, lenient_start=True, pseudo_in_headers=True)
    c.connection_made(True)
    assert c.take() == b""
    c.preface_settings(max_frame_size=20000)
    assert c.take() == b""
    c.send_preface()
    out = c.take()
    assert out.startswith(PREFACE)
    (f,) = parse_frames(out[len(PREFACE):])
    assert b"\x00\x05\x00\x00\x4e\x20" in f.payload
    with pytest.raises(cno.errors.UsageError):
        c.preface_settings(max_frame_size=30000)
    c.write_head(1, 0, b"", b"", REQ, True)
    c.take()
    # the server's HEADERS before any SETTINGS: accepted
    c.data_received(headers(1, block([(b":status", b"200")]), end_stream=True))
    assert ("head", 1, 200, [(b":status", b"200")]) in [
        (e[0], e[1], e[2], [(bytes(n, "latin-1") if isinstance(n, str) else n,
                             bytes(v, "latin-1") if isinstance(v, str) else v) for n, v in e[3]])
        for e in c.events if e[0] == "head"]


def test_lenient_start_off_requires_settings_first():
    c = Peer(False)
    c.connection_made(True)
    c.write_head(1, 0, "GET", "/", [(":scheme", "https"), (":authority", "a")], True)
    with pytest.raises(cno.errors.ProtocolError):
        c.data_received(headers(1, block([(b":status", b"200")]), end_stream=True))


def test_strict_errors_goaway_with_reason():
    s = server(strict_errors=True)
    s.data_received(headers(1, block(REQ + [(b"content-length", b"3")])))
    with pytest.raises(cno.errors.ProtocolError, match="content-length 3, received 4"):
        s.data_received(data(1, b"abcd"))
    (f,) = parse_frames(s.take())
    assert f.type == GOAWAY and f.error_code == PROTOCOL_ERROR


def test_strict_errors_keeps_half_closed_stream_errors():
    s = server(strict_errors=True)
    s.data_received(headers(1, block(REQ), end_stream=True))
    s.data_received(data(1, b"late"))
    (f,) = parse_frames(s.take())
    assert f.type == RST_STREAM and f.error_code == STREAM_CLOSED


def test_strict_errors_keeps_streams_the_peer_reset_stream_errors():
    s = server(strict_errors=True)
    s.data_received(headers(1, block(REQ)) + headers(3, block(REQ)))
    s.data_received(frame(RST_STREAM, 0, 1, b"\x00\x00\x00\x08"))
    s.take()
    s.data_received(data(1, b"late"))     # 5.1: a stream error, not the connection's
    (f,) = parse_frames(s.take())
    assert f.type == RST_STREAM and f.stream == 1 and f.error_code == STREAM_CLOSED
    s.data_received(data(3, b"still fine"))
    assert not s.closed


def test_stream_errors_without_strict():
    s = server()
    s.data_received(headers(1, block(REQ + [(b"content-length", b"3")])))
    s.data_received(data(1, b"abcd"))
    assert [f.type for f in parse_frames(s.take())] == [RST_STREAM]


def test_control_frames_only():
    s = server(FramePeer, control_frames_only=True)
    s.data_received(headers(1, block(REQ)) + data(1, b"x") + window_update(0, 5))
    assert [e[1] for e in s.events if e[0] == "frame"] == [WINDOW_UPDATE]
    s.data_received(headers(3, block(REQ), priority=(0, 16, False)))
    assert [e[1] for e in s.events if e[0] == "frame"] == [WINDOW_UPDATE, HEADERS]


def test_priority_update_frames_off_is_an_unknown_type():
    s = server(FramePeer, priority_update_frames=False)
    s.data_received(frame(0x10, 0, 1, b"\x00\x00\x00\x01u=0"))   # (on a stream: an error if read)
    assert ("frame", 0x10) in s.events and s.take() == b""
    t = server()
    with pytest.raises(cno.errors.ProtocolError):
        t.data_received(frame(0x10, 0, 1, b"\x00\x00\x00\x01u=0"))


def test_next_head_priority():
    c = Peer(False)
    c.connection_made(True)
    c.take()
    c.next_head_priority = b"\x80\x00\x00\x00\x0f"
    c.write_head(1, 0, "GET", "/", [(":scheme", "https"), (":authority", "a")], True)
    (f,) = parse_frames(c.take())
    assert f.flags & PRIORITY_FLAG and f.payload[:5] == b"\x80\x00\x00\x00\x0f"
    assert c.next_head_priority is None


def test_padded_write_and_chosen_push_id():
    s = server()
    s.data_received(headers(1, block(REQ)))
    s.write_head(1, 200, "", "", [], False)
    s.take()
    s.write_padded(1, b"abc", False, 4)
    (f,) = parse_frames(s.take())
    assert f.type == DATA and f.flags & PADDED and len(f.payload) == 1 + 3 + 4
    assert s.windows(1)[0] == 65535 - 8
    assert s.write_push(1, "GET", "/a", [(":scheme", "https"), (":authority", "a")], 6) == 6
    with pytest.raises(cno.errors.InvalidStream):
        s.write_push(1, "GET", "/b", [(":scheme", "https"), (":authority", "a")], 4)


def test_write_goaway_fields_and_repeat():
    s = server()
    s.write_goaway(0, 7, b"bye")
    s.write_goaway(2, 3, None)
    frames = parse_frames(s.take())
    assert [(f.type, f.last_stream_id, f.error_code, f.additional_data) for f in frames] == [
        (GOAWAY, 7, 0, b"bye"), (GOAWAY, 3, 2, b"")]


def test_stream_state_windows_last_peer_stream():
    s = server()
    assert s.stream_state(1) == (0, False)
    s.data_received(headers(1, block(REQ)))
    assert s.stream_state(1) == (3, False) and s.last_peer_stream == 1
    s.write_head(1, 200, "", "", [], False)
    assert s.stream_state(1) == (3, True)
    s.data_received(data(1, b"", end_stream=True))
    assert s.stream_state(1) == (4, True)
    s.write_data(1, b"", True)
    assert s.stream_state(1) == (6, False)
    with pytest.raises(cno.errors.InvalidStream):
        s.windows(1)


def test_upgraded():
    c = Peer(False)
    c.connection_made(True)
    c.upgraded()
    assert c.stream_state(1) == (5, True)
    s = Peer(True)
    s.connection_made(True)
    s.take()
    s.upgraded(b"\x00\x03\x00\x00\x00\x05")   # MAX_CONCURRENT_STREAMS 5
    assert s.remote_settings["max_concurrent_streams"] == 5 and s.stream_state(1) == (4, False)
    assert s.take() == b""                    # no ACK: the 101 acknowledges them
    with pytest.raises(cno.errors.UsageError):
        s.upgraded()


# -- h2's behaviour where RFC 9113 says otherwise (each knob off: the RFC's) ------------------

def client(cls=Peer, **knobs):
    c = cls(False, bytes_headers=True, **knobs)
    c.connection_made(True)
    c.data_received(settings() + settings_ack())
    c.write_head(1, 0, b"GET", b"/", [(b":scheme", b"https"), (b":authority", b"x")], True)
    c.take()
    c.events.clear()
    return c


def kinds(out):
    return [(f.type, f.stream, f.error_code if f.type in (RST_STREAM, GOAWAY) else None)
            for f in parse_frames(out)]


@pytest.mark.parametrize("knob", [False, True])
def test_reset_late_frames_on_a_stream_we_reset(knob):
    s = server(reset_late_frames=knob)
    s.data_received(headers(1, block(REQ), end_stream=True))
    s.write_reset(1, CANCEL)
    s.take()
    late = headers(1, block(REQ), end_stream=True) + data(1, b"x") * 2
    s.data_received(late)
    # 5.1: frames on a stream we reset are ignored; the knob answers each one.
    assert kinds(s.take()) == ([(RST_STREAM, 1, STREAM_CLOSED)] * 3 if knob else [])
    s.data_received(late)
    assert kinds(s.take()) == ([(RST_STREAM, 1, STREAM_CLOSED)] * 3 if knob else [])
    s.data_received(headers(3, block(REQ), end_stream=True))   # HPACK stayed in step
    assert [e[:2] for e in s.events] == [("head", 1), ("tail", 1), ("head", 3), ("tail", 3)]


@pytest.mark.parametrize("knob", [False, True])
def test_reset_late_frames_on_a_stream_the_peer_reset(knob):
    s = server(strict_errors=True, reset_late_frames=knob)
    s.data_received(headers(1, block(REQ)))
    s.data_received(rst_stream(1, CANCEL))
    s.take()
    s.data_received(data(1, b"x") * 3)
    assert kinds(s.take()) == [(RST_STREAM, 1, STREAM_CLOSED)] * (3 if knob else 1)
    assert not s.closed


@pytest.mark.parametrize("knob", [False, True])
def test_status_101(knob):
    s = server(status_101=knob)
    s.data_received(headers(1, block(REQ)))
    if not knob:
        with pytest.raises(cno.errors.UsageError, match="101"):
            s.write_head(1, 101, b"", b"", [], False)
    else:
        s.write_head(1, 101, b"", b"", [], False)
        (f,) = parse_frames(s.take())
        assert hpack.Decoder().decode(f.payload, raw=True) == [(b":status", b"101")]
    c = client(status_101=knob)
    c.data_received(headers(1, block([(b":status", b"101")])) +
                    headers(1, block([(b":status", b"200")]), end_stream=True))
    if knob:
        assert [e[2] for e in c.events if e[0] == "head"] == [101, 200]
    else:   # malformed (RFC 9113 8.6): the stream is reset
        assert kinds(c.take()) == [(RST_STREAM, 1, PROTOCOL_ERROR)]


@pytest.mark.parametrize("code", [None, PROTOCOL_ERROR])
def test_compression_error_code(code):
    s = server() if code is None else server(compression_error_code=code)
    with pytest.raises(cno.errors.CnoError):
        s.data_received(headers(1, b"\xff\xff\xff\xff"))   # an index past any table
    assert kinds(s.take()) == [(GOAWAY, 0, COMPRESSION_ERROR if code is None else code)]


@pytest.mark.parametrize("code", [None, PROTOCOL_ERROR])
def test_continuation_flood_code(code):
    s = server(max_continuations=2) if code is None else \
        server(max_continuations=2, continuation_flood_code=code)
    s.data_received(headers(1, block(REQ), end_headers=False) +
                    continuation(1, b"", end_headers=False) * 2)
    with pytest.raises(cno.errors.CnoError, match="CONTINUATION"):
        s.data_received(continuation(1, b"", end_headers=False))
    assert kinds(s.take()) == [(GOAWAY, 0, ENHANCE_YOUR_CALM if code is None else code)]


@pytest.mark.parametrize("knob", [False, True])
def test_lenient_frame_size(knob):
    s = server(lenient_frame_size=knob)
    head = frame_header(20000, 0xfa, 0, 0)   # (an unknown type, over the 16384 in force)
    if not knob:
        with pytest.raises(cno.errors.CnoError, match="SETTINGS_MAX_FRAME_SIZE"):
            s.data_received(head + b"x" * 100)
        assert kinds(s.take()) == [(GOAWAY, 0, FRAME_SIZE_ERROR)]
        return
    s.data_received(head + b"x" * 16384)   # no more than a frame's worth: waits
    assert not s.take() and not s.closed
    with pytest.raises(cno.errors.CnoError, match="SETTINGS_MAX_FRAME_SIZE"):
        s.data_received(b"x")
    assert kinds(s.take()) == [(GOAWAY, 0, FRAME_SIZE_ERROR)]


@pytest.mark.parametrize("knob", [False, True])
def test_lenient_protocol(knob):
    s = server(lenient_protocol=knob)   # (never sent SETTINGS_ENABLE_CONNECT_PROTOCOL)
    s.data_received(headers(1, block([(b":method", b"CONNECT"), (b":protocol", b"websocket"),
                                       (b":scheme", b"https"), (b":path", b"/chat"),
                                       (b":authority", b"x")])))
    if knob:
        assert s.events[0][:2] == ("head", 1) and (b":protocol", b"websocket") in s.events[0][3]
    else:   # RFC 8441 3: malformed without the setting
        assert not s.events and kinds(s.take()) == [(RST_STREAM, 1, PROTOCOL_ERROR)]


@pytest.mark.parametrize("knob", [False, True])
def test_data_before_head(knob):
    s = server(data_before_head=knob, enable_push=1)
    s.data_received(headers(1, block(REQ)))
    if not knob:
        with pytest.raises(cno.errors.InvalidStream, match="write_head first"):
            s.write_data(1, b"body", True)
        return
    s.write_data(1, b"body", True)
    assert [(f.type, f.payload) for f in parse_frames(s.take())] == [(DATA, b"body")]


@pytest.mark.parametrize("knob", [False, True])
def test_read_goaways(knob):
    c = client(FramePeer, read_goaways=knob)
    c.data_received(headers(1, block([(b":status", b"200")]), end_stream=True))
    c.events.clear()
    c.data_received(goaway(1) + goaway(1, PROTOCOL_ERROR) + goaway(0))
    assert c.closed
    assert [e for e in c.events if e[0] == "frame"] == [("frame", GOAWAY)] * (3 if knob else 1)
    c.data_received(goaway(0) + ping() + goaway(0))   # only GOAWAY frames, until another
    assert [e for e in c.events if e[0] == "frame"] == [("frame", GOAWAY)] * (4 if knob else 1)
    assert not c.take()   # (the PING was not read: no ACK)


@pytest.mark.parametrize("strict", [False, True])
def test_max_header_list_size_lowered(strict):
    s = server(strict_errors=strict)
    big = REQ + [(b"x-big", b"v" * 100)]
    s.update_settings(max_header_list_size=100)
    s.take()
    s.data_received(headers(1, block(big), end_stream=True))
    if not strict:   # in force at once: the request is refused (safe to retry)
        assert kinds(s.take()) == [(RST_STREAM, 1, REFUSED_STREAM)]
        return
    # A connection error under strict_errors: judged against what the peer acknowledged.
    assert [e[:2] for e in s.events] == [("head", 1), ("tail", 1)]
    s.data_received(settings_ack())
    with pytest.raises(cno.errors.CnoError, match="max_header_list_size"):
        s.data_received(headers(3, block(big), end_stream=True))
    assert kinds(s.take()) == [(GOAWAY, 0, ENHANCE_YOUR_CALM)]


def test_strict_errors_keeps_data_on_a_closed_stream_a_stream_error():
    # RFC 9113 5.1 lets DATA on a closed stream be either; h2 answers it with RST_STREAM
    # (and credits its bytes), HEADERS there ends the connection.
    s = server(strict_errors=True)
    s.data_received(headers(1, block(REQ), end_stream=True))
    s.write_head(1, 200, b"", b"", [], True)   # (stream 1 is gone: ended both ways)
    s.data_received(headers(3, block(REQ)))
    s.take()
    s.data_received(data(1, b"late"))
    assert kinds(s.take()) == [(RST_STREAM, 1, STREAM_CLOSED)] and not s.closed
    s.data_received(data(3, b"still fine"))
    assert s.events[-1][:2] == ("data", 3)


def test_strict_errors_headers_on_a_closed_stream_ends_the_connection():
    s = server(strict_errors=True)
    s.data_received(headers(1, block(REQ), end_stream=True))
    s.write_head(1, 200, b"", b"", [], True)
    s.take()
    with pytest.raises(cno.errors.CnoError):
        s.data_received(headers(1, block(REQ)))
    assert kinds(s.take()) == [(GOAWAY, 0, STREAM_CLOSED)]


def test_reset_late_frames_counts_only_streams_that_were_open():
    # Stream 1 was never opened (3 closed it implicitly, RFC 9113 5.1.1): its DATA is
    # answered each time, but it is not a stream we reset, so HEADERS on it stays the
    # connection error it is for any stream below one opened since.
    s = server(strict_errors=True, reset_late_frames=True)
    s.data_received(headers(3, block(REQ)))
    s.data_received(data(1, b"x") * 2)
    assert kinds(s.take()) == [(RST_STREAM, 1, STREAM_CLOSED)] * 2
    with pytest.raises(cno.errors.CnoError, match="below a higher id"):
        s.data_received(headers(1, block(REQ)))


def test_strict_errors_self_dependency_on_a_reset_stream():
    # A PRIORITY making a stream depend on itself is a PROTOCOL_ERROR stream error (RFC
    # 9113 5.3.1 of RFC 7540, kept); strict_errors ends the connection for it even on a
    # stream we reset (only STREAM_CLOSED errors stay the stream's there).
    s = server(strict_errors=True)
    s.data_received(headers(1, block(REQ)))
    s.write_reset(1, CANCEL)
    s.take()
    with pytest.raises(cno.errors.CnoError):
        s.data_received(frame(0x2, 0, 1, b"\x00\x00\x00\x01\x0f"))
    assert kinds(s.take()) == [(GOAWAY, 0, PROTOCOL_ERROR)]
