"""cno.raw.Connection against RFC 9113 sections 3-6, frame by frame, with hand-built bytes.

The http2-frame-test-case corpus first (every valid frame accepted in a state where it is
legal and reported to on_frame as it was on the wire; every invalid one rejected with its
error code), then one test per rule of the frame layer.
"""
import pytest

import cno.raw as raw
from cno import errors
from raw_frames import (
    ACK, CANCEL, COMPRESSION_ERROR, CONTINUATION, DATA, END_HEADERS, END_STREAM,
    ENHANCE_YOUR_CALM, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, GOAWAY, HEADERS, NO_ERROR, PING,
    PREFACE, PRIORITY, PROTOCOL_ERROR, PUSH_PROMISE, REQ, RST_STREAM, SETTINGS,
    WINDOW_UPDATE, assert_alive, continuation, data, expect_connection_error, expect_error,
    expect_stream_error, frame, frame_header, goaway, headers, literal_block, load_corpus,
    make_client, make_server, merged_data, open_stream, ping, priority, push_promise,
    push_to_client, recorder_class, request, rst_stream, serialize, settings, settings_ack,
    window_update,
)

CORPUS = dict(load_corpus())

# A valid 13-byte request block (static table + one literal): the corpus' HEADERS and
# PUSH_PROMISE frames carry b"this is dummy", which is not HPACK (RFC 7541) at all.
VALID_13 = bytes([0x82, 0x86, 0x84, 0x41, 0x08]) + b"abcdefgh"
VALID_13_FIELDS = [(":method", "GET"), (":scheme", "http"), (":path", "/"),
                   (":authority", "abcdefgh")]
DUMMY = b"this is dummy"


def wire(name):
    return bytes.fromhex(CORPUS[name]["wire"])


def check_reported(c, w, name=None):
    """on_frame reported the frame ``w`` with the fields the corpus lists, and the reported
    Frame re-serialised is ``w`` byte for byte."""
    matches = [f for f in c.frames_in if serialize(f) == w]
    assert matches, "on_frame never reported %s; got %r" % (w.hex(), c.frames_in)
    f = matches[-1]
    assert isinstance(f.type, int) and isinstance(f.flags, int) and isinstance(f.stream, int)
    if name is not None:
        spec = CORPUS[name]["frame"]
        assert (f.type, f.flags, f.stream, len(f.payload)) == (
            spec["type"], spec["flags"], spec["stream_identifier"], spec["length"])
    return f


def patched(w, stream=None, fragment=None):
    """Corpus wire ``w`` with its stream id and/or the 13-byte dummy fragment replaced."""
    w = bytearray(w)
    if stream is not None:
        w[5:9] = stream.to_bytes(4, "big")
    if fragment is not None:
        i = w.index(DUMMY)
        w[i:i + len(DUMMY)] = fragment
    return bytes(w)


def test_corpus_present():
    from raw_frames import FRAME_TEST_CASE
    assert CORPUS, "http2-frame-test-case not found under %s" % FRAME_TEST_CASE
    assert set(CORPUS) == set(VALID_CASES) | set(ERROR_CASES), \
        "corpus files without a test: %r" % (set(CORPUS) ^ (set(VALID_CASES) | set(ERROR_CASES)))


# ---------------------------------------------------------------------------------------------
# Corpus: valid frames, each in a state where it is legal.

def client_with_push(promised, answered=True):
    """A client with request 1 sent (final) and ``promised`` pushed on it (answered 200)."""
    c = make_client(push=True)
    request(c)
    push_to_client(c, 1, promised, status=answered)
    c.reset_log()
    return c


def corpus_continuation_header():
    # RFC 9113 6.10: CONTINUATION continues a field block; the corpus' fragment becomes the
    # value of a literal whose length prefix ends the HEADERS frame.
    name = "continuation/header"
    c = client_with_push(50, answered=False)
    c.feed(headers(50, bytes([0x88, 0x00, 0x01]) + b"x" + bytes([len(DUMMY)]), end_headers=False),
           wire(name), continuation(50, b""))
    assert ("head", 50, 200, "", "", [("x", "this is dummy")]) in c.events
    # docs/raw.md: on_frame gets the block merged, never the CONTINUATION itself.
    assert [f for f in c.frames_in if f.type == HEADERS and f.stream == 50 and DUMMY in f.payload]
    assert not [f for f in c.frames_in if f.type == CONTINUATION]


def corpus_continuation_normal():
    # RFC 9113 6.10: an empty CONTINUATION without END_HEADERS is legal.
    name = "continuation/normal"
    c = client_with_push(50, answered=False)
    c.feed(headers(50, bytes([0x88, 0x00, 0x01]) + b"x" + bytes([len(DUMMY)]) + DUMMY,
                   end_headers=False), wire(name), continuation(50, b""))
    assert ("head", 50, 200, "", "", [("x", "this is dummy")]) in c.events


def corpus_data_normal():
    # RFC 9113 6.1: a padded DATA frame on an open (pushed) stream; padding stripped.
    name = "data/normal"
    c = client_with_push(2)
    c.feed(wire(name))
    check_reported(c, wire(name), name)
    assert merged_data(c.events, 2) == b"Hello, world!"


def corpus_goaway_normal():
    # RFC 9113 6.8: GOAWAY(last 30, COMPRESSION_ERROR, debug data) received by a server (30
    # is a server-initiated id). The frame is legal; the peer closes the connection.
    name = "goaway/normal"
    c = make_server()
    try:
        c.feed(wire(name))
    except errors.ConnectionClosed:
        pass
    except errors.ProtocolError as e:  # surfacing the peer's error code is acceptable
        assert e.error_code == COMPRESSION_ERROR, e
    check_reported(c, wire(name), name)
    assert not [f for f in c.take(GOAWAY) if f.error_code != NO_ERROR], \
        "answered a legal GOAWAY with an error"
    assert ("close",) in c.events or c.closed


def corpus_headers_normal():
    # RFC 9113 6.2 on a new stream 1; the dummy fragment swapped for valid HPACK (same length).
    name = "headers/normal"
    w = patched(wire(name), fragment=VALID_13)
    c = make_server()
    c.feed(w)
    check_reported(c, w, name)
    [head] = c.of("head")
    assert head[:5] == ("head", 1, 0, "GET", "/")
    assert sorted(head[5]) == sorted([(":scheme", "http"), (":authority", "abcdefgh")])


def corpus_headers_priority():
    # RFC 9113 6.2: PRIORITY + PADDED + END_HEADERS on stream 3 (priority ignored, padding
    # stripped); the dummy fragment swapped for valid HPACK of the same length.
    name = "headers/priority"
    w = patched(wire(name), fragment=VALID_13)
    c = make_server()
    c.feed(w)
    check_reported(c, w, name)
    [head] = c.of("head")
    assert head[:5] == ("head", 3, 0, "GET", "/")


def corpus_ping_normal():
    # RFC 9113 6.7: a PING is answered with an ACK carrying the same opaque data.
    name = "ping/normal"
    c = make_server()
    c.feed(wire(name))
    check_reported(c, wire(name), name)
    acks = c.take(PING)
    assert [(f.flags, f.stream, f.payload) for f in acks] == [(ACK, 0, b"deadbeef")]


def corpus_priority_normal():
    # RFC 9113 6.3: PRIORITY on an idle stream is legal, and ignored.
    name = "priority/normal"
    c = make_server()
    c.feed(wire(name))
    check_reported(c, wire(name), name)
    assert not [f for f in c.take() if f.type in (RST_STREAM, GOAWAY)]
    assert not c.of("start")
    assert_alive(c)


def corpus_push_promise_normal():
    # RFC 9113 6.6: PUSH_PROMISE is only legal on a stream the client opened (odd); the
    # corpus' stream 10 is server-initiated, so it is moved to stream 1, and the dummy
    # fragment swapped for a valid request block. Padding (6 bytes) stripped.
    name = "push_promise/normal"
    w = patched(wire(name), stream=1, fragment=VALID_13)
    c = make_client(push=True)
    request(c)
    c.reset_log()
    c.feed(w)
    check_reported(c, w)
    f = [f for f in c.frames_in if f.type == PUSH_PROMISE][-1]
    spec = CORPUS[name]["frame"]
    assert (f.flags, len(f.payload)) == (spec["flags"], spec["length"])
    [push] = c.of("push")
    assert push[:5] == ("push", 12, 1, "GET", "/")
    assert sorted(push[5]) == sorted([(":scheme", "http"), (":authority", "abcdefgh")])


def corpus_rst_stream_normal():
    # RFC 9113 6.4: RST_STREAM(CANCEL) on the open stream 5 ends it, side REMOTE.
    name = "rst_stream/normal"
    c = make_server()
    open_stream(c, 5)
    c.reset_log()
    c.feed(wire(name))
    check_reported(c, wire(name), name)
    assert ("end", 5, CANCEL, raw.CNO_REMOTE) in c.events
    assert not c.take(RST_STREAM)


def corpus_settings_normal():
    # RFC 9113 6.5: SETTINGS applied, acknowledged, on_settings fired.
    name = "settings/normal"
    c = make_server()
    c.feed(wire(name))
    check_reported(c, wire(name), name)
    assert [(f.flags, f.payload) for f in c.take(SETTINGS)] == [(ACK, b"")]
    assert c.remote_settings["header_table_size"] == 8192
    assert c.remote_settings["max_concurrent_streams"] == 5000
    assert ("settings",) in c.events


def corpus_window_update_normal():
    # RFC 9113 6.9: WINDOW_UPDATE(+1000) on stream 50, which the client may receive once the
    # pushed stream is half-closed (local) (RFC 9113 5.1).
    name = "window_update/normal"
    c = client_with_push(50)
    c.feed(wire(name))
    check_reported(c, wire(name), name)
    assert not [f for f in c.take() if f.type in (RST_STREAM, GOAWAY)]
    assert_alive(c)


VALID_CASES = {
    "continuation/header": corpus_continuation_header,
    "continuation/normal": corpus_continuation_normal,
    "data/normal": corpus_data_normal,
    "goaway/normal": corpus_goaway_normal,
    "headers/normal": corpus_headers_normal,
    "headers/priority": corpus_headers_priority,
    "ping/normal": corpus_ping_normal,
    "priority/normal": corpus_priority_normal,
    "push_promise/normal": corpus_push_promise_normal,
    "rst_stream/normal": corpus_rst_stream_normal,
    "settings/normal": corpus_settings_normal,
    "window_update/normal": corpus_window_update_normal,
}


@pytest.mark.parametrize("name", sorted(VALID_CASES))
def test_corpus_valid(name):
    assert CORPUS[name]["error"] is None
    VALID_CASES[name]()


@pytest.mark.parametrize("name", ["headers/normal", "headers/priority"])
def test_corpus_dummy_header_block_is_compression_error(name):
    # RFC 9113 4.3: a field block that does not decode is a connection error
    # COMPRESSION_ERROR; b"this is dummy" declares a 104-byte literal in 13 bytes.
    c = make_server()
    expect_connection_error(c, wire(name), COMPRESSION_ERROR)


# ---------------------------------------------------------------------------------------------
# Corpus: invalid frames. Each: (setup, bytes appended after the corpus frame, stream whose
# RST_STREAM is an acceptable answer where RFC 9113 makes it a stream error).

def server_stream_1():
    c = make_server()
    open_stream(c, 1)
    c.reset_log()
    return c


def client_stream_1():
    c = make_client(push=True)
    request(c, final=False)
    c.reset_log()
    return c


ERROR_CASES = {
    # 6.1: padding >= payload length: connection PROTOCOL_ERROR.
    "error/data-frame-padding": (server_stream_1, b"", None),
    # 4.2: longer than SETTINGS_MAX_FRAME_SIZE (only the header needs to arrive).
    "error/data-frame-size": (server_stream_1, b"", 2),
    # 6.1: DATA on stream 0.
    "error/data-frame-stream": (make_server, b"", None),
    # 6.8: GOAWAY shorter than 8.
    "error/goaway-frame-size": (make_server, b"", None),
    # 6.8: GOAWAY on a stream.
    "error/goaway-frame-stream": (make_server, b"", None),
    # 6.2: padding >= payload; the frame lacks END_HEADERS, so a CONTINUATION follows.
    "error/headers-frame-padding": (make_server, continuation(1, b""), None),
    # 6.2: HEADERS on stream 0.
    "error/headers-frame-stream": (make_server, continuation(0, b""), None),
    # 6.7: PING of length 4.
    "error/ping-frame-size": (make_server, b"", None),
    # 6.7: PING on a stream.
    "error/ping-frame-stream": (make_server, b"", None),
    # 6.3: PRIORITY of length 8: a stream error FRAME_SIZE_ERROR.
    "error/priority-frame-size": (make_server, b"", 2),
    # 6.3: PRIORITY on stream 0.
    "error/priority-frame-stream": (make_server, b"", None),
    # 6.6: padding >= payload (or too short for the promised id).
    "error/push_promise-frame-padding": (client_stream_1, continuation(1, b""), None),
    # 6.6 / 5.1.1: the promised id must be a valid new server id (even, non-zero).
    "error/push_promise-frame-promised_stream-odd": (client_stream_1, continuation(1, b""), None),
    "error/push_promise-frame-promised_stream-zero": (client_stream_1, continuation(1, b""), None),
    # 6.6: PUSH_PROMISE on stream 0.
    "error/push_promise-frame-stream": (client_stream_1, continuation(0, b""), None),
    # 6.4: RST_STREAM of length 8: connection FRAME_SIZE_ERROR.
    "error/rst_stream-frame-size": (make_server, b"", None),
    # 6.4: RST_STREAM on stream 0.
    "error/rst_stream-frame-stream": (make_server, b"", None),
    # 6.5: SETTINGS ACK with a payload.
    "error/settings-frame-ack-size": (make_server, b"", None),
    # 6.5: SETTINGS length not a multiple of 6.
    "error/settings-frame-size": (make_server, b"", None),
    # 6.5: SETTINGS on a stream.
    "error/settings-frame-stream": (make_server, b"", None),
    # 6.9: increment 0 on a stream: stream error PROTOCOL_ERROR.
    "error/window_update-frame-increment": (server_stream_1, b"", 1),
    # 6.9: WINDOW_UPDATE of length 2: connection FRAME_SIZE_ERROR.
    "error/window_update-frame-size": (server_stream_1, b"", None),
}


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
def test_corpus_error(name):
    setup, suffix, stream = ERROR_CASES[name]
    c = setup()
    codes = set(CORPUS[name]["error"])
    assert codes
    if stream is None:
        expect_connection_error(c, wire(name) + suffix, codes)
    else:
        expect_error(c, wire(name) + suffix, codes, stream=stream)


# ---------------------------------------------------------------------------------------------
# 3.4 Connection preface

def test_client_writes_preface_then_settings():
    # RFC 9113 3.4: the client preface is the magic string followed by SETTINGS.
    c = recorder_class()(server=False)
    c.connection_made(True)
    assert bytes(c.wire).startswith(PREFACE)
    first = c.sent[0]
    assert first.type == SETTINGS and not first.flags & ACK


def test_server_writes_settings_first():
    # RFC 9113 3.4: the server preface is a SETTINGS frame, the first frame it sends.
    c = recorder_class()(server=True)
    c.connection_made(True)
    assert c.sent and c.sent[0].type == SETTINGS and not c.sent[0].flags & ACK
    assert not bytes(c.wire).startswith(PREFACE)


def test_bad_client_preface():
    # RFC 9113 3.4: an invalid preface is a connection error PROTOCOL_ERROR (GOAWAY optional).
    c = recorder_class()(server=True)
    c.connection_made(True)
    c.reset_log()
    expect_connection_error(c, b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n" + settings(),
                            PROTOCOL_ERROR, goaway_required=False)


def test_http1_request_on_h2_server_is_bad_preface():
    # RFC 9113 3.4: an HTTP/1.1 request where the preface belongs.
    c = recorder_class()(server=True)
    c.connection_made(True)
    c.reset_log()
    expect_connection_error(c, b"GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
                            PROTOCOL_ERROR, goaway_required=False)


def test_preface_fed_byte_by_byte():
    # RFC 9113 3.4: the preface may arrive in pieces.
    c = recorder_class()(server=True)
    c.connection_made(True)
    for b in PREFACE + settings(max_concurrent_streams=7):
        c.data_received(bytes([b]))
    assert c.remote_settings["max_concurrent_streams"] == 7
    assert [f for f in c.sent if f.type == SETTINGS and f.flags & ACK]


@pytest.mark.parametrize("first", [ping(), settings_ack(), window_update(0, 100)],
                         ids=["PING", "SETTINGS-ACK", "WINDOW_UPDATE"])
def test_server_first_frame_must_be_settings(first):
    # RFC 9113 3.4: "the first frame the [client] sends MUST be a SETTINGS frame";
    # anything else is a connection error PROTOCOL_ERROR.
    c = recorder_class()(server=True)
    c.connection_made(True)
    c.reset_log()
    expect_connection_error(c, PREFACE + first + settings(), PROTOCOL_ERROR,
                            goaway_required=False)


@pytest.mark.parametrize("first", [ping(), settings_ack()], ids=["PING", "SETTINGS-ACK"])
def test_client_first_frame_must_be_settings(first):
    # RFC 9113 3.4: the server preface "MUST be the first frame the server sends".
    c = recorder_class()(server=False)
    c.connection_made(True)
    c.reset_log()
    expect_connection_error(c, first + settings(), PROTOCOL_ERROR, goaway_required=False)


# ---------------------------------------------------------------------------------------------
# 4.1 / 4.2 Frame format and size

def test_reserved_bit_in_stream_id_ignored():
    # RFC 9113 4.1: the reserved bit "MUST be ignored when receiving".
    c = make_server()
    c.feed(frame(HEADERS, END_HEADERS | END_STREAM, 0x80000001, c.block(REQ)))
    assert [e[1] for e in c.of("head")] == [1]


def test_frame_larger_than_max_frame_size():
    # RFC 9113 4.2: a frame over SETTINGS_MAX_FRAME_SIZE (16384 by default) is a
    # FRAME_SIZE_ERROR; a frame carrying a field block makes it a connection error.
    c = make_server()
    block = literal_block([(":method", "GET"), (":scheme", "https"), (":path", "/"),
                           (":authority", "x"), ("x-big", "a" * 16400)])
    expect_connection_error(c, headers(1, block), FRAME_SIZE_ERROR)


def test_frame_size_checked_from_header_alone():
    # RFC 9113 4.2: an oversized frame is known from its header; no need to buffer it.
    c = server_stream_1()
    expect_error(c, frame_header(2**24 - 1, DATA, 0, 1) + b"x" * 100, FRAME_SIZE_ERROR, stream=1)


def test_max_frame_size_frame_accepted():
    # RFC 9113 4.2: exactly SETTINGS_MAX_FRAME_SIZE is fine.
    c = server_stream_1()
    c.feed(data(1, b"z" * 16384))
    assert merged_data(c.events, 1) == b"z" * 16384


def test_larger_frames_after_raising_max_frame_size():
    # RFC 9113 6.5.2: once our larger SETTINGS_MAX_FRAME_SIZE is acknowledged the peer may
    # send frames up to it.
    c = make_server(local={"max_frame_size": 32768})
    open_stream(c, 1)
    c.feed(data(1, b"z" * 20000))
    assert merged_data(c.events, 1) == b"z" * 20000


def test_unknown_frame_type_ignored_and_reported():
    # RFC 9113 4.1 / 5.5: "Implementations MUST ignore and discard frames of unknown types";
    # docs/raw.md: on_frame still sees them.
    c = server_stream_1()
    c.feed(frame(0xFF, 0xFF, 1, b"xyz"), frame(0x0B, 0, 0, b""), frame(0xA, 0, 7, b"q" * 300))
    assert [(f.type, f.flags, f.stream, f.payload) for f in c.frames_in] == [
        (0xFF, 0xFF, 1, b"xyz"), (0x0B, 0, 0, b""), (0xA, 0, 7, b"q" * 300)]
    assert not c.take()
    assert not c.events
    c.feed(data(1, b"ok", end_stream=True))  # stream 1 unaffected
    assert ("tail", 1, None) in c.events


@pytest.mark.parametrize("flag", [0x02, 0x10, 0x40, 0x80])
def test_unknown_flags_ignored_on_headers(flag):
    # RFC 9113 4.1: "Flags that have no defined semantics for a particular frame type MUST be
    # ignored". HEADERS defines 0x01, 0x04, 0x08 and 0x20 only.
    c = make_server()
    c.feed(frame(HEADERS, END_HEADERS | END_STREAM | flag, 1, c.block(REQ)))
    assert [e[1] for e in c.of("head")] == [1]
    assert not c.take(RST_STREAM)


@pytest.mark.parametrize("flag", [0x02, 0x04, 0x10, 0x20, 0x40, 0x80])
def test_unknown_flags_ignored_on_data(flag):
    # RFC 9113 4.1: DATA defines 0x01 and 0x08 only.
    c = server_stream_1()
    c.feed(frame(DATA, END_STREAM | flag, 1, b"abc"))
    assert merged_data(c.events, 1) == b"abc"
    assert ("tail", 1, None) in c.events
    assert not c.take(RST_STREAM)


def test_unknown_flags_ignored_on_ping():
    # RFC 9113 4.1: PING defines 0x01 only.
    c = make_server()
    c.feed(frame(PING, 0xFE, 0, b"12345678"))
    assert [f.payload for f in c.take(PING) if f.flags & ACK] == [b"12345678"]


# ---------------------------------------------------------------------------------------------
# 6.1 / 6.2 / 6.6 Padding

def test_data_padding_stripped():
    # RFC 9113 6.1: Pad Length and Padding are removed; only the data is delivered.
    c = server_stream_1()
    c.feed(data(1, b"hello", pad=10), data(1, b"", pad=0), data(1, b"!", pad=255, end_stream=True))
    assert merged_data(c.events, 1) == b"hello!"
    assert ("tail", 1, None) in c.events


def test_data_all_padding():
    # RFC 9113 6.1: padding of payload length - 1 leaves an empty, legal DATA frame.
    c = server_stream_1()
    c.feed(frame(DATA, 0x8, 1, bytes([4]) + b"\0" * 4), data(1, b"x", end_stream=True))
    assert merged_data(c.events, 1) == b"x"


def test_headers_padding_stripped():
    # RFC 9113 6.2: a padded HEADERS frame.
    c = make_server()
    c.feed(headers(1, c.block(REQ), pad=33, end_stream=True))
    [head] = c.of("head")
    assert head[:5] == ("head", 1, 0, "GET", "/")


def test_headers_padding_and_priority_stripped():
    # RFC 9113 6.2: PADDED and PRIORITY together.
    c = make_server()
    c.feed(headers(1, c.block(REQ), pad=7, priority=(0, 200, True), end_stream=True))
    [head] = c.of("head")
    assert head[:5] == ("head", 1, 0, "GET", "/")


def test_push_promise_padding_stripped():
    # RFC 9113 6.6: a padded PUSH_PROMISE.
    c = client_stream_1()
    c.feed(push_promise(1, 2, c.block([(":method", "GET"), (":scheme", "https"),
                                       (":path", "/p"), (":authority", "example.com")]), pad=9))
    [push] = c.of("push")
    assert push[:5] == ("push", 2, 1, "GET", "/p")


@pytest.mark.parametrize("pad", [5, 6, 255])
def test_data_padding_too_long(pad):
    # RFC 9113 6.1: "If the length of the padding is the length of the frame payload or
    # greater, the recipient MUST treat this as a connection error of type PROTOCOL_ERROR."
    c = server_stream_1()
    expect_connection_error(c, frame(DATA, 0x8, 1, bytes([pad]) + b"abcd"), PROTOCOL_ERROR)


def test_headers_padding_too_long():
    # RFC 9113 6.2: same rule for HEADERS.
    c = make_server()
    block = c.block(REQ)
    expect_connection_error(
        c, frame(HEADERS, 0x8 | END_HEADERS, 1, bytes([len(block) + 1]) + block), PROTOCOL_ERROR)


def test_push_promise_padding_too_long():
    # RFC 9113 6.6: same rule for PUSH_PROMISE (the promised id counts as payload).
    c = client_stream_1()
    expect_connection_error(
        c, frame(PUSH_PROMISE, 0x8 | END_HEADERS, 1, bytes([9]) + b"\0\0\0\x02" + b"\x82\x84"),
        {PROTOCOL_ERROR, FRAME_SIZE_ERROR})


def test_padded_flag_without_pad_length():
    # RFC 9113 6.1: a PADDED frame too short to hold the Pad Length field.
    c = server_stream_1()
    expect_connection_error(c, frame(DATA, 0x8, 1, b""), {PROTOCOL_ERROR, FRAME_SIZE_ERROR})


# ---------------------------------------------------------------------------------------------
# 6.10 CONTINUATION

def test_continuation_assembly():
    # RFC 9113 6.10 / 4.3: HEADERS + CONTINUATIONs are one field block: one on_message_head;
    # docs/raw.md: on_frame sees one merged HEADERS frame.
    c = make_server()
    block = c.block(REQ + [("x-a", "1" * 50), ("x-b", "2" * 50)])
    parts = [block[:10], block[10:40], block[40:]]
    c.feed(headers(1, parts[0], end_headers=False, end_stream=True),
           continuation(1, parts[1], end_headers=False), continuation(1, parts[2]))
    assert c.of("head") == [("head", 1, 0, "GET", "/", [(":scheme", "https"),
                                                         (":authority", "example.com"),
                                                         ("x-a", "1" * 50), ("x-b", "2" * 50)])]
    assert ("tail", 1, None) in c.events
    hs = [f for f in c.frames_in if f.type == HEADERS]
    assert len(hs) == 1 and hs[0].payload == block
    assert not [f for f in c.frames_in if f.type == CONTINUATION]


def test_continuation_assembly_byte_by_byte():
    # RFC 9113 6.10: the same, delivered one byte at a time.
    c = make_server()
    block = c.block(REQ)
    w = (headers(1, block[:3], end_headers=False) + continuation(1, block[3:5], end_headers=False)
         + continuation(1, block[5:]))
    for b in w:
        c.data_received(bytes([b]))
    assert [e[:5] for e in c.of("head")] == [("head", 1, 0, "GET", "/")]


def test_continuation_on_another_stream():
    # RFC 9113 6.10: a CONTINUATION on a different stream is a connection error PROTOCOL_ERROR.
    c = make_server()
    block = c.block(REQ)
    expect_connection_error(
        c, headers(1, block[:4], end_headers=False) + continuation(3, block[4:]), PROTOCOL_ERROR)


@pytest.mark.parametrize("between", [ping(), data(1, b"x"), headers(3, b"\x82"), priority(5),
                                     window_update(0, 10), frame(0xEE, 0, 0, b"ext")],
                         ids=["PING", "DATA", "HEADERS", "PRIORITY", "WINDOW_UPDATE", "unknown"])
def test_frame_interleaved_in_header_block(between):
    # RFC 9113 6.10 / 4.3: "Any other type of frame" between HEADERS and its last
    # CONTINUATION is a connection error PROTOCOL_ERROR (unknown types too, RFC 9113 5.5).
    c = make_server()
    block = c.block(REQ)
    expect_connection_error(
        c, headers(1, block[:4], end_headers=False) + between + continuation(1, block[4:]),
        PROTOCOL_ERROR)


def test_continuation_without_headers():
    # RFC 9113 6.10: a CONTINUATION not preceded by HEADERS/PUSH_PROMISE/CONTINUATION without
    # END_HEADERS is a connection error PROTOCOL_ERROR.
    c = server_stream_1()
    expect_connection_error(c, continuation(1, b"\x82"), PROTOCOL_ERROR)


def test_continuation_after_end_headers():
    # RFC 9113 6.10: the block already ended.
    c = make_server()
    expect_connection_error(c, headers(1, c.block(REQ)) + continuation(1, b""), PROTOCOL_ERROR)


def test_continuation_on_stream_0():
    # RFC 9113 6.10: CONTINUATION on stream 0.
    c = make_server()
    expect_connection_error(c, headers(1, c.block(REQ)[:2], end_headers=False)
                            + continuation(0, b""), PROTOCOL_ERROR)


def test_push_promise_continuation_assembly():
    # RFC 9113 6.6 / 6.10: a PUSH_PROMISE block split over CONTINUATIONs.
    c = client_stream_1()
    block = c.block([(":method", "GET"), (":scheme", "https"), (":path", "/pp"),
                     (":authority", "example.com")])
    c.feed(push_promise(1, 2, block[:2], end_headers=False), continuation(1, block[2:]))
    assert [e[:5] for e in c.of("push")] == [("push", 2, 1, "GET", "/pp")]


def test_header_block_over_max_header_block_size():
    # docs/raw.md limits: a HEADERS + CONTINUATION block over max_header_block_size is
    # answered with GOAWAY ENHANCE_YOUR_CALM.
    c = make_server(max_header_block_size=4096)
    block = literal_block(REQ + [("x-big", "a" * 6000)])
    expect_connection_error(
        c, headers(1, block[:2000], end_headers=False)
        + continuation(1, block[2000:4000], end_headers=False) + continuation(1, block[4000:]),
        ENHANCE_YOUR_CALM)


def test_header_block_flood_stopped_before_end_headers():
    # docs/raw.md limits (CONTINUATION flood): the limit trips while the block is still open;
    # nothing waits for an END_HEADERS that never comes.
    c = make_server(max_header_block_size=4096)
    w = headers(1, b"\x00" * 1000, end_headers=False)
    w += continuation(1, b"\x00" * 1000, end_headers=False) * 10
    expect_connection_error(c, w, ENHANCE_YOUR_CALM)


def test_header_block_at_max_header_block_size_accepted():
    # docs/raw.md limits: a block within the limit is fine.
    c = make_server(max_header_block_size=4096)
    block = literal_block(REQ + [("x-big", "a" * 3000)])
    assert len(block) < 4096
    c.feed(headers(1, block[:2000], end_headers=False), continuation(1, block[2000:]))
    assert [e[1] for e in c.of("head")] == [1]


def test_too_many_continuations():
    # docs/raw.md limits: more than max_continuations CONTINUATIONs after one HEADERS.
    c = make_server(max_continuations=3)
    block = c.block(REQ)
    w = headers(1, block[:1], end_headers=False)
    w += b"".join(continuation(1, block[i:i + 1], end_headers=False) for i in range(1, 4))
    w += continuation(1, block[4:])
    expect_connection_error(c, w, ENHANCE_YOUR_CALM)


def test_max_continuations_accepted():
    # docs/raw.md limits: exactly max_continuations CONTINUATIONs is fine.
    c = make_server(max_continuations=3)
    block = c.block(REQ)
    w = headers(1, block[:1], end_headers=False)
    w += b"".join(continuation(1, block[i:i + 1], end_headers=False) for i in range(1, 3))
    w += continuation(1, block[3:])
    c.feed(w)
    assert [e[1] for e in c.of("head")] == [1]


# ---------------------------------------------------------------------------------------------
# 6.1 DATA delivered as it arrives

def test_large_data_frame_delivered_per_piece():
    # docs/raw.md: on_message_data fires "as they arrive, not after the whole frame"
    # (for a class without on_frame, which asks for whole frames).
    class Streaming(recorder_class()):
        on_frame = raw.Connection.on_frame
    c = make_server(cls=Streaming)
    open_stream(c, 1)
    c.reset_log()
    body = bytes(range(256)) * 64  # 16 KiB
    w = data(1, body)
    c.data_received(w[:9])
    for i in range(16):
        before = len(c.events)
        piece = w[9 + 1024 * i: 9 + 1024 * (i + 1)]
        c.data_received(piece)
        new = c.events[before:]
        assert new and all(e[0] == "data" and e[1] == 1 for e in new), new
        assert merged_data(new) == piece, "piece %d not delivered on arrival" % i
    assert merged_data(c.events, 1) == body


def test_on_frame_reads_data_frames_whole():
    # docs/raw.md: a class that defines on_frame sees each DATA frame whole.
    c = server_stream_1()
    body = b"x" * 4096
    w = data(1, body)
    for i in range(0, len(w) - 1, 512):
        c.data_received(w[i:min(i + 512, len(w) - 1)])
    assert not c.of("data")
    c.data_received(w[-1:])
    assert merged_data(c.events, 1) == body
    assert c.frames_in[-1].type == 0 and c.frames_in[-1].payload == body


def test_data_accepts_any_buffer():
    # docs/raw.md: data_received takes bytes, bytearray or memoryview.
    c = make_server()
    c.data_received(bytearray(headers(1, c.block(REQ))))
    c.data_received(memoryview(data(1, b"abc")))
    c.data_received(memoryview(b"xx" + data(1, b"def", end_stream=True))[2:])
    assert merged_data(c.events, 1) == b"abcdef"
    assert ("tail", 1, None) in c.events


# ---------------------------------------------------------------------------------------------
# 6.7 PING

def test_ping_acked_with_same_payload():
    # RFC 9113 6.7: "Receivers of a PING frame that does not include an ACK flag MUST send a
    # PING frame with the ACK flag set in response, with an identical frame payload."
    c = make_server()
    c.feed(ping(b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"), ping(b"second!!"))
    assert [(f.flags, f.stream, f.payload) for f in c.take(PING)] == [
        (ACK, 0, b"\x00\x01\x02\x03\xfc\xfd\xfe\xff"), (ACK, 0, b"second!!")]
    assert not c.of("pong")


def test_ping_ack_fires_on_pong_and_is_not_answered():
    # RFC 9113 6.7: "An endpoint MUST NOT respond to PING frames containing [ACK]".
    c = make_client()
    c.write_ping(b"abcdefgh")
    [p] = c.take(PING)
    assert (p.flags, p.payload) == (0, b"abcdefgh")
    c.feed(ping(b"abcdefgh", ack=True))
    assert c.of("pong") == [("pong", b"abcdefgh")]
    assert not c.take()


@pytest.mark.parametrize("length", [0, 7, 9, 16])
def test_ping_bad_length(length):
    # RFC 9113 6.7: a length other than 8 is a connection error FRAME_SIZE_ERROR.
    c = make_server()
    expect_connection_error(c, frame(PING, 0, 0, b"p" * length), FRAME_SIZE_ERROR)


def test_ping_on_stream():
    # RFC 9113 6.7: a PING on a stream is a connection error PROTOCOL_ERROR.
    c = server_stream_1()
    expect_connection_error(c, frame(PING, 0, 1, b"p" * 8), PROTOCOL_ERROR)


def test_control_frame_flood_while_writing_paused():
    # docs/raw.md limits: PINGs whose ACKs the peer does not read (writing_paused) are capped
    # by control_frame_budget.
    c = make_server(control_frame_budget=20)
    c.writing_paused = True
    with pytest.raises(errors.EnhanceYourCalm):
        for _ in range(40):
            c.feed(ping())
    assert c.closed


def test_control_frame_budget_lowered_later():
    # docs/raw.md limits are attributes: lowering one on a running connection takes effect.
    c = make_server()
    c.control_frame_budget = 20
    c.writing_paused = True
    with pytest.raises(errors.EnhanceYourCalm):
        for _ in range(40):
            c.feed(ping())


def test_control_frames_unlimited_while_reading():
    # docs/raw.md limits: the budget applies only while writing_paused.
    c = make_server(control_frame_budget=20)
    for _ in range(100):
        c.feed(ping())
    assert len(c.take(PING)) == 100


# ---------------------------------------------------------------------------------------------
# 6.3 PRIORITY

def test_priority_ignored():
    # RFC 9113 6.3: PRIORITY is validated but has no effect (5.3.2: the scheme is deprecated).
    c = server_stream_1()
    c.feed(priority(1, 0, 256, True), priority(3, 1, 1), priority(9, 0, 16))
    assert not c.take()
    assert not c.events
    assert len([f for f in c.frames_in if f.type == PRIORITY]) == 3


def test_priority_does_not_open_stream():
    # RFC 9113 5.1 / 5.1.1: PRIORITY leaves an idle stream idle, so a lower id may still open.
    c = make_server()
    c.feed(priority(9, 0, 16))
    open_stream(c, 3, end_stream=True)
    assert [e[1] for e in c.of("head")] == [3]


@pytest.mark.parametrize("length", [4, 6])
def test_priority_bad_length(length):
    # RFC 9113 6.3: "A PRIORITY frame with a length other than 5 octets MUST be treated as a
    # stream error of type FRAME_SIZE_ERROR."
    c = server_stream_1()
    expect_error(c, frame(PRIORITY, 0, 1, b"\0" * length), FRAME_SIZE_ERROR, stream=1)


def test_priority_on_stream_0():
    # RFC 9113 6.3: connection error PROTOCOL_ERROR.
    c = make_server()
    expect_connection_error(c, priority(0, 1), PROTOCOL_ERROR)


def test_priority_self_dependency():
    # RFC 9113 5.3.1 (RFC 7540): "A stream cannot depend on itself. An endpoint MUST treat
    # this as a stream error of type PROTOCOL_ERROR."
    c = server_stream_1()
    expect_stream_error(c, priority(1, 1), 1, PROTOCOL_ERROR)
    assert ("end", 1, PROTOCOL_ERROR, raw.CNO_LOCAL) in c.events
    assert_alive(c)


def test_headers_priority_self_dependency():
    # RFC 9113 5.3.1 (RFC 7540): the same in a HEADERS frame's priority block.
    c = make_server()
    expect_stream_error(c, headers(3, c.block(REQ), priority=(3, 16, False)), 3, PROTOCOL_ERROR)
    assert_alive(c)
    open_stream(c, 5, end_stream=True)  # HPACK state still in step
    assert [e[1] for e in c.of("head") if e[1] == 5] == [5]


# ---------------------------------------------------------------------------------------------
# 6.5 SETTINGS

def test_settings_acked_and_applied():
    # RFC 9113 6.5.3: SETTINGS applied in order, then ACKed; docs/raw.md: on_settings.
    c = make_server()
    c.feed(settings(max_concurrent_streams=3, initial_window_size=1000, max_frame_size=20000,
                    header_table_size=100, max_header_list_size=5000))
    assert [(f.flags, f.payload) for f in c.take(SETTINGS)] == [(ACK, b"")]
    rs = c.remote_settings
    assert (rs["max_concurrent_streams"], rs["initial_window_size"], rs["max_frame_size"],
            rs["header_table_size"], rs["max_header_list_size"]) == (3, 1000, 20000, 100, 5000)
    assert c.of("settings") == [("settings",)]


def test_empty_settings_acked():
    # RFC 9113 6.5: an empty SETTINGS frame is valid and acknowledged.
    c = make_server()
    c.feed(settings())
    assert [f.flags for f in c.take(SETTINGS)] == [ACK]


def test_settings_ack_with_payload():
    # RFC 9113 6.5: ACK with a non-empty payload is a connection error FRAME_SIZE_ERROR.
    c = make_server()
    expect_connection_error(c, frame(SETTINGS, ACK, 0, b"\0\x03\0\0\0\x01"), FRAME_SIZE_ERROR)


@pytest.mark.parametrize("length", [1, 5, 7, 13])
def test_settings_length_not_multiple_of_6(length):
    # RFC 9113 6.5: connection error FRAME_SIZE_ERROR.
    c = make_server()
    expect_connection_error(c, frame(SETTINGS, 0, 0, b"\0" * length), FRAME_SIZE_ERROR)


def test_settings_on_stream():
    # RFC 9113 6.5: connection error PROTOCOL_ERROR.
    c = make_server()
    expect_connection_error(c, frame(SETTINGS, 0, 1, b""), PROTOCOL_ERROR)


@pytest.mark.parametrize("value", [2, 0xFFFFFFFF])
def test_settings_enable_push_above_1(value):
    # RFC 9113 6.5.2: "Any value other than 0 or 1 MUST be treated as a connection error of
    # type PROTOCOL_ERROR."
    c = make_server()
    expect_connection_error(c, settings(enable_push=value), PROTOCOL_ERROR)


def test_client_receives_enable_push_1():
    # RFC 9113 6.5.2: "A client MUST treat receipt of a SETTINGS frame with
    # SETTINGS_ENABLE_PUSH set to 1 as a connection error of type PROTOCOL_ERROR."
    c = make_client()
    expect_connection_error(c, settings(enable_push=1), PROTOCOL_ERROR)


@pytest.mark.parametrize("value", [2**31, 0xFFFFFFFF])
def test_settings_initial_window_size_too_large(value):
    # RFC 9113 6.5.2: above 2^31-1 is a connection error FLOW_CONTROL_ERROR.
    c = make_server()
    expect_connection_error(c, settings(initial_window_size=value), FLOW_CONTROL_ERROR)


def test_settings_initial_window_size_max_accepted():
    # RFC 9113 6.5.2: 2^31-1 itself is fine.
    c = make_server()
    c.feed(settings(initial_window_size=2**31 - 1))
    assert c.remote_settings["initial_window_size"] == 2**31 - 1


@pytest.mark.parametrize("value", [0, 16383, 2**24, 0xFFFFFFFF])
def test_settings_max_frame_size_out_of_range(value):
    # RFC 9113 6.5.2: outside 2^14..2^24-1 is a connection error PROTOCOL_ERROR.
    c = make_server()
    expect_connection_error(c, settings(max_frame_size=value), PROTOCOL_ERROR)


@pytest.mark.parametrize("value", [16384, 2**24 - 1])
def test_settings_max_frame_size_bounds_accepted(value):
    c = make_server()
    c.feed(settings(max_frame_size=value))
    assert c.remote_settings["max_frame_size"] == value


def test_settings_enable_connect_protocol_above_1():
    # RFC 8441 section 3: the value MUST be 0 or 1.
    c = make_client()
    expect_connection_error(c, settings(enable_connect_protocol=2), PROTOCOL_ERROR)


def test_settings_unknown_ids_ignored():
    # RFC 9113 6.5.2: "An endpoint that receives a SETTINGS frame with any unknown or
    # unsupported identifier MUST ignore that setting."
    c = make_server()
    before = dict(c.remote_settings)
    c.feed(settings([(0x0, 1), (0x7, 5), (0xA, 9), (0x99, 0xFFFFFFFF), (0xFFFF, 0)]))
    assert [f.flags for f in c.take(SETTINGS)] == [ACK]
    assert c.remote_settings == before


def test_max_frame_size_from_peer_splits_our_data():
    # RFC 9113 4.2: we never send frames above the peer's SETTINGS_MAX_FRAME_SIZE.
    c = make_server(peer_settings={"initial_window_size": 100000})
    open_stream(c, 1, end_stream=True)
    c.write_head(1, 200, "", "", [], False)
    assert c.write_data(1, b"d" * 40000, False) == 40000
    assert max(len(f.payload) for f in c.take(DATA)) <= 16384
    c.feed(settings(max_frame_size=32768))
    c.take()
    assert c.write_data(1, b"e" * 20000, True) == 20000
    sent = c.take(DATA)
    assert sum(len(f.payload) for f in sent) == 20000
    assert max(len(f.payload) for f in sent) <= 32768


def test_header_table_size_zero_from_peer():
    # RFC 7541 4.2 / RFC 9113 6.5.2: after the peer sets SETTINGS_HEADER_TABLE_SIZE=0 our
    # next field block starts with a dynamic table size update to 0 and indexes nothing.
    c = make_server()
    c.feed(settings(header_table_size=0))
    open_stream(c, 1, end_stream=True)
    c.take()
    c.write_head(1, 200, "", "", [("x-custom", "v" * 10), ("server", "cno")], True)
    [h] = c.take(HEADERS)
    assert h.block[0] == 0x20, "no table size update to 0 at the start of the block"
    assert h.headers == [(":status", "200"), ("x-custom", "v" * 10), ("server", "cno")]
    assert c.parser.decoder.header_table_size == 0


# ---------------------------------------------------------------------------------------------
# 6.8 GOAWAY

def test_goaway_sent_by_shutdown():
    # RFC 9113 6.8: GOAWAY carries the last peer-initiated stream id we processed.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    open_stream(c, 3, end_stream=True)
    c.take()
    c.shutdown()
    [g] = c.take(GOAWAY)
    assert (g.stream, g.last_stream_id, g.error_code) == (0, 3, NO_ERROR)


def test_goaway_sent_by_write_reset_0():
    # docs/raw.md: write_reset(0, code) is shutdown with that code.
    c = make_server()
    open_stream(c, 1, end_stream=True)
    c.take()
    c.write_reset(0, ENHANCE_YOUR_CALM)
    [g] = c.take(GOAWAY)
    assert (g.last_stream_id, g.error_code) == (1, ENHANCE_YOUR_CALM)


def test_goaway_received_no_streams_closes():
    # RFC 9113 6.8: GOAWAY(NO_ERROR) with nothing in flight: on_close.
    c = make_client()
    c.feed(goaway(0))
    assert ("close",) in c.events
    with pytest.raises(errors.ConnectionClosed):
        request(c)


def test_goaway_received_with_debug_data():
    # RFC 9113 6.8: additional debug data is opaque and accepted.
    c = make_server()
    c.feed(goaway(0, NO_ERROR, b"debug" * 100))
    check_reported(c, goaway(0, NO_ERROR, b"debug" * 100))
    assert ("close",) in c.events


@pytest.mark.parametrize("length", [0, 4, 7])
def test_goaway_too_short(length):
    # RFC 9113 6.8 / 4.2: a GOAWAY shorter than 8 bytes: FRAME_SIZE_ERROR.
    c = make_server()
    expect_connection_error(c, frame(GOAWAY, 0, 0, b"\0" * length), FRAME_SIZE_ERROR)


def test_goaway_on_stream():
    # RFC 9113 6.8: a GOAWAY on a stream is a connection error PROTOCOL_ERROR.
    c = server_stream_1()
    expect_connection_error(c, frame(GOAWAY, 0, 1, b"\0" * 8), PROTOCOL_ERROR)


# ---------------------------------------------------------------------------------------------
# 6.4 RST_STREAM and 6.9 WINDOW_UPDATE frame format

@pytest.mark.parametrize("length", [0, 3, 5])
def test_rst_stream_bad_length(length):
    # RFC 9113 6.4: connection error FRAME_SIZE_ERROR.
    c = server_stream_1()
    expect_connection_error(c, frame(RST_STREAM, 0, 1, b"\0" * length), FRAME_SIZE_ERROR)


@pytest.mark.parametrize("payload", [b"", b"\0\0\x01", b"\0\0\0\x01\0"], ids=["0", "3", "5"])
def test_window_update_bad_length(payload):
    # RFC 9113 6.9: "A WINDOW_UPDATE frame with a length other than 4 octets MUST be treated
    # as a connection error of type FRAME_SIZE_ERROR."
    c = server_stream_1()
    expect_connection_error(c, frame(WINDOW_UPDATE, 0, 0, payload), FRAME_SIZE_ERROR)


def test_rst_stream_unknown_code_accepted():
    # RFC 9113 7: "Unknown or unsupported error codes MUST NOT trigger any special behavior."
    c = server_stream_1()
    c.feed(rst_stream(1, 0xDEAD))
    assert ("end", 1, 0xDEAD, raw.CNO_REMOTE) in c.events
    assert not c.take()
    assert_alive(c)


# ---------------------------------------------------------------------------------------------
# 4.3 Field blocks

def test_bad_hpack_is_compression_error():
    # RFC 9113 4.3: a field block that cannot be decoded is a connection error
    # COMPRESSION_ERROR.
    c = make_server()
    expect_connection_error(c, headers(1, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
                            COMPRESSION_ERROR)


def test_hpack_table_size_update_above_settings():
    # RFC 7541 6.3 / RFC 9113 4.3: a size update above our SETTINGS_HEADER_TABLE_SIZE.
    c = make_server()
    expect_connection_error(c, headers(1, b"\x3f\xe1\x7f" + c.block(REQ)), COMPRESSION_ERROR)
