"""Helpers for the cno.raw HTTP/2 tests, written from RFC 9113 and independent of cno's engine.

- builders for raw frames (``frame``, ``data``, ``headers``, ``settings``, ...) and the client
  preface, so tests can feed hand-made (also malformed) bytes;
- ``Recorder``: a ``cno.raw.Connection`` subclass that logs every event, every frame given to
  ``on_frame``/``on_frame_send`` and every byte handed to ``on_writev``, and parses that output
  back into frames (hyperframe) with the header blocks decoded (hpack), as the peer would;
- ``make_server``/``make_client``: a connection past the handshake, our SETTINGS acknowledged;
- ``expect_connection_error``/``expect_stream_error``/``expect_error``: assert how a connection
  rejected some input.

Only ``import cno.raw`` depends on the engine; this module imports it lazily so the builders work
(and the corpus can be read) without it.
"""
import json
import struct
from pathlib import Path

import hpack
import hyperframe.frame as hf
import pytest

from hpack_wire import enc_int

TESTDATA = Path(__file__).resolve().parent / "data"   # vendored corpora (data/README.md)
FRAME_TEST_CASE = TESTDATA / "http2-frame-test-case"

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
TYPE_NAMES = ["DATA", "HEADERS", "PRIORITY", "RST_STREAM", "SETTINGS", "PUSH_PROMISE", "PING",
              "GOAWAY", "WINDOW_UPDATE", "CONTINUATION"]
# Flags (RFC 9113 section 6).
ACK = END_STREAM = 0x1
END_HEADERS = 0x4
PADDED = 0x8
PRIORITY_FLAG = 0x20
# Error codes (RFC 9113 section 7).
NO_ERROR = 0x0
PROTOCOL_ERROR = 0x1
INTERNAL_ERROR = 0x2
FLOW_CONTROL_ERROR = 0x3
SETTINGS_TIMEOUT = 0x4
STREAM_CLOSED = 0x5
FRAME_SIZE_ERROR = 0x6
REFUSED_STREAM = 0x7
CANCEL = 0x8
COMPRESSION_ERROR = 0x9
CONNECT_ERROR = 0xA
ENHANCE_YOUR_CALM = 0xB
INADEQUATE_SECURITY = 0xC
HTTP_1_1_REQUIRED = 0xD
# SETTINGS identifiers (RFC 9113 6.5.2, RFC 8441 section 3), by the names cno.raw uses.
SETTINGS_IDS = {
    "header_table_size": 1,
    "enable_push": 2,
    "max_concurrent_streams": 3,
    "initial_window_size": 4,
    "max_frame_size": 5,
    "max_header_list_size": 6,
    "enable_connect_protocol": 8,
}
SETTINGS_NAMES = {v: k for k, v in SETTINGS_IDS.items()}

MAX_WINDOW = 2**31 - 1
DEFAULT_WINDOW = 65535
DEFAULT_MAX_FRAME = 16384
MAX_STREAM_ID = 2**31 - 1

# A request head as the tests' peer sends it, and the headers a cno client passes to write_head.
REQ = [(":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "example.com")]
CLIENT_HEADERS = [(":scheme", "https"), (":authority", "example.com")]
RESP = [(":status", "200")]


# ---------------------------------------------------------------------------------------------
# Frame builders: plain bytes, no validation, so malformed frames are as easy as good ones.

def frame_header(length, type, flags, stream):
    return struct.pack(">I", length)[1:] + bytes([type, flags]) + struct.pack(">I", stream)


def frame(type, flags, stream, payload=b""):
    """One frame: the 9-byte header (RFC 9113 4.1) and ``payload`` as given."""
    payload = bytes(payload)
    return frame_header(len(payload), type, flags, stream) + payload


def _padded(body, pad):
    if pad is None:
        return body, 0
    return bytes([pad]) + body + b"\0" * pad, PADDED


def data(stream, payload=b"", end_stream=False, pad=None):
    body, flags = _padded(bytes(payload), pad)
    return frame(DATA, flags | (END_STREAM if end_stream else 0), stream, body)


def headers(stream, block, end_stream=False, end_headers=True, pad=None, priority=None):
    """``priority`` is (depends_on, weight 1..256, exclusive)."""
    body = bytes(block)
    flags = (END_STREAM if end_stream else 0) | (END_HEADERS if end_headers else 0)
    if priority is not None:
        dep, weight, excl = priority
        body = struct.pack(">IB", dep | (0x80000000 if excl else 0), weight - 1) + body
        flags |= PRIORITY_FLAG
    body, pflag = _padded(body, pad)
    return frame(HEADERS, flags | pflag, stream, body)


def continuation(stream, block, end_headers=True):
    return frame(CONTINUATION, END_HEADERS if end_headers else 0, stream, block)


def priority(stream, depends_on=0, weight=16, exclusive=False):
    return frame(PRIORITY, 0, stream,
                 struct.pack(">IB", depends_on | (0x80000000 if exclusive else 0), weight - 1))


def rst_stream(stream, code):
    return frame(RST_STREAM, 0, stream, struct.pack(">I", code))


def settings(pairs=(), **named):
    """SETTINGS with (id, value) ``pairs`` then ``named`` ones (``max_concurrent_streams=1``)."""
    items = list(pairs.items() if isinstance(pairs, dict) else pairs)
    items += [(SETTINGS_IDS[k], v) for k, v in named.items()]
    return frame(SETTINGS, 0, 0, b"".join(struct.pack(">HI", i, v) for i, v in items))


def settings_ack():
    return frame(SETTINGS, ACK, 0)


def push_promise(stream, promised, block, end_headers=True, pad=None):
    body, flags = _padded(struct.pack(">I", promised) + bytes(block), pad)
    return frame(PUSH_PROMISE, flags | (END_HEADERS if end_headers else 0), stream, body)


def ping(opaque=b"\0" * 8, ack=False):
    return frame(PING, ACK if ack else 0, 0, opaque)


def goaway(last_stream, code=NO_ERROR, debug=b""):
    return frame(GOAWAY, 0, 0, struct.pack(">II", last_stream, code) + debug)


def window_update(stream, increment):
    return frame(WINDOW_UPDATE, 0, stream, struct.pack(">I", increment))


def literal_block(fields):
    """An HPACK block of "literal without indexing, new name" fields, no Huffman (RFC 7541
    6.2.2): carries any bytes as they are and leaves the decoder's table alone."""
    out = bytearray()
    for name, value in fields:
        name = name.encode("latin-1") if isinstance(name, str) else bytes(name)
        value = value.encode("latin-1") if isinstance(value, str) else bytes(value)
        out += b"\x00" + enc_int(len(name), 7) + name + enc_int(len(value), 7) + value
    return bytes(out)


def serialize(f):
    """A frame reported by cno (``cno.raw.Frame``) back to the wire: header + payload."""
    return frame(f.type, f.flags, f.stream, bytes(f.payload))


# ---------------------------------------------------------------------------------------------
# Corpus

def load_corpus():
    """[(name, case)] for every http2-frame-test-case JSON file; name: 'error/ping-frame-size'."""
    if not FRAME_TEST_CASE.is_dir():
        return []
    out = []
    for path in sorted(FRAME_TEST_CASE.glob("*/*.json")):
        with open(path, encoding="utf-8") as f:
            out.append(("%s/%s" % (path.parent.name, path.stem), json.load(f)))
    return out


# ---------------------------------------------------------------------------------------------
# What cno wrote

class OutFrame:
    """A frame cno wrote: raw fields, the hyperframe object (``obj``, None for extension types)
    and, for HEADERS/PUSH_PROMISE, the decoded header list once its block is complete."""

    __slots__ = ("type", "flags", "stream", "payload", "obj", "headers", "block")

    def __init__(self, type, flags, stream, payload, obj):
        self.type, self.flags, self.stream = type, flags, stream
        self.payload, self.obj = payload, obj
        self.headers = None
        self.block = None

    def __getattr__(self, name):  # error_code, last_stream_id, window_increment, settings, ...
        obj = object.__getattribute__(self, "obj")
        if obj is None:
            raise AttributeError(name)
        return getattr(obj, name)

    @property
    def wire(self):
        return frame(self.type, self.flags, self.stream, self.payload)

    def __repr__(self):
        t = TYPE_NAMES[self.type] if self.type < 10 else hex(self.type)
        extra = ""
        if self.headers is not None:
            extra = " headers=%r" % (self.headers,)
        elif self.type in (RST_STREAM, GOAWAY):
            extra = " code=%d" % self.obj.error_code
        elif self.type == WINDOW_UPDATE:
            extra = " +%d" % self.obj.window_increment
        elif self.type == SETTINGS:
            extra = " %r" % (dict(self.obj.settings),)
        elif self.type == DATA:
            extra = " len=%d" % len(self.obj.data)
        return "<%s stream=%d flags=%#x%s>" % (t, self.stream, self.flags, extra)


class FrameParser:
    """Splits an HTTP/2 byte stream into frames (hyperframe) and decodes header blocks (hpack),
    in order, as the receiving peer would. Any malformed output fails the test."""

    def __init__(self, expect_preface=False):
        self.expect_preface = expect_preface
        self.buf = bytearray()
        self.frames = []
        self.decoder = hpack.Decoder(max_header_list_size=2**24)
        self.decoder.max_allowed_table_size = 2**16
        self._block = None  # (OutFrame, bytearray) while a header block is incomplete
        self.preface_seen = False

    def feed(self, data):
        self.buf += data
        new = []
        if self.expect_preface and not self.preface_seen:
            if len(self.buf) < len(PREFACE):
                return new
            assert bytes(self.buf[:len(PREFACE)]) == PREFACE, "client output lacks the preface"
            del self.buf[:len(PREFACE)]
            self.preface_seen = True
        pos = 0
        buf = self.buf
        while len(buf) - pos >= 9:
            length = int.from_bytes(buf[pos:pos + 3], "big")
            if len(buf) - pos - 9 < length:
                break
            head = bytes(buf[pos:pos + 9])
            payload = bytes(buf[pos + 9:pos + 9 + length])
            pos += 9 + length
            new.append(self._one(head, payload))
        del buf[:pos]
        self.frames.extend(new)
        return new

    def _one(self, head, payload):
        type, flags = head[3], head[4]
        stream = int.from_bytes(head[5:9], "big") & 0x7FFFFFFF
        assert not head[5] & 0x80, "reserved bit set in a frame cno wrote"
        obj = None
        if type < 10:
            obj, length = hf.Frame.parse_frame_header(memoryview(head))
            try:
                obj.parse_body(memoryview(payload))
            except Exception as e:  # hyperframe's own validation
                raise AssertionError("cno wrote an invalid %s frame: %r" % (TYPE_NAMES[type], e))
        f = OutFrame(type, flags, stream, payload, obj)
        if self._block is not None:
            assert type == CONTINUATION and stream == self._block[0].stream, \
                "cno interleaved %r into a header block (RFC 9113 6.10)" % f
        if type in (HEADERS, PUSH_PROMISE):
            self._block = (f, bytearray(obj.data))
        elif type == CONTINUATION:
            assert self._block is not None, "cno wrote a CONTINUATION without HEADERS"
            self._block[1].extend(obj.data)
        if self._block is not None and flags & END_HEADERS:
            first, block = self._block
            self._block = None
            first.block = bytes(block)
            first.headers = [(k.decode("latin-1"), v.decode("latin-1"))
                             for k, v in self.decoder.decode(first.block, raw=True)]
        return f


def parse_frames(data, expect_preface=False):
    p = FrameParser(expect_preface)
    p.feed(data)
    assert not p.buf, "trailing partial frame"
    return p.frames


# ---------------------------------------------------------------------------------------------
# Recording connection

def _raw():
    import cno.raw
    return cno.raw


class _RecFrame(tuple):
    """A copy of a ``cno.raw.Frame`` taken inside on_frame (its payload may be a view)."""

    __slots__ = ()

    def __new__(cls, type, flags, stream, payload):
        return tuple.__new__(cls, (type, flags, stream, payload))

    type = property(lambda self: self[0])
    flags = property(lambda self: self[1])
    stream = property(lambda self: self[2])
    payload = property(lambda self: self[3])


def _copy_frame(f):
    return _RecFrame(f.type, f.flags, f.stream, bytes(f.payload))


def _copy_headers(hs):
    return None if hs is None else [tuple(h) for h in hs]


_RECORDER_CLASSES = {}


def _recorder_classes():
    """Built once cno.raw imports (so this module loads without the engine)."""
    if _RECORDER_CLASSES:
        return _RECORDER_CLASSES
    raw = _raw()

    class Recorder(raw.Connection):
        """Logs events in ``events``, frames in ``frames_in``/``frames_out``, output in ``out``.

        Defines every event except ``on_message_push`` (see ``PushRecorder``), so a client
        built from it advertises ENABLE_PUSH=0."""

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.events = []
            self.frames_in = []
            self.frames_out = []
            self.out = bytearray()  # not yet parsed (see ``sent``)
            self.wire = bytearray()  # everything written, raw
            self.writev_calls = 0
            self.parser = None
            self.peer_enc = hpack.Encoder()
            self._taken = 0
            self._acked = 0

        # events
        def on_writev(self, chunks):
            self.writev_calls += 1
            for c in chunks:
                b = bytes(c)
                self.out += b
                self.wire += b

        def on_stream_start(self, stream):
            self.events.append(("start", stream))

        def on_stream_end(self, stream, code, side):
            self.events.append(("end", stream, code, side))

        def on_flow_increase(self, stream):
            self.events.append(("flow", stream))

        def on_message_head(self, stream, code, method, path, headers):
            self.events.append(("head", stream, code, method, path, _copy_headers(headers)))

        def on_message_data(self, stream, data):
            self.events.append(("data", stream, bytes(data)))

        def on_message_tail(self, stream, trailers):
            self.events.append(("tail", stream, _copy_headers(trailers)))

        def on_frame(self, frame):
            self.frames_in.append(_copy_frame(frame))

        def on_frame_send(self, frame):
            self.frames_out.append(_copy_frame(frame))

        def on_pong(self, data):
            self.events.append(("pong", bytes(data)))

        def on_settings(self):
            self.events.append(("settings",))

        def on_close(self):
            self.events.append(("close",))

        # helpers
        def feed(self, *chunks):
            self.data_received(b"".join(chunks))

        def block(self, fields, huffman=True):
            """Encode a header block with the peer's (stateful) HPACK encoder."""
            return self.peer_enc.encode(fields, huffman=huffman)

        @property
        def sent(self):
            """Every frame cno wrote so far (preface stripped), parsed."""
            if self.parser is None:
                self.parser = FrameParser(expect_preface=not self.is_server)
            if self.out:
                self.parser.feed(bytes(self.out))
                self.out.clear()
            return self.parser.frames

        def take(self, type=None):
            """Frames written since the last take(), optionally only those of ``type``."""
            frames = self.sent[self._taken:]
            self._taken = len(self.sent)
            return [f for f in frames if type is None or f.type == type]

        def ack_settings(self):
            """Acknowledge every SETTINGS cno wrote and the peer has not acknowledged yet."""
            n = sum(1 for f in self.sent if f.type == SETTINGS and not f.flags & ACK)
            if n > self._acked:
                k = n - self._acked
                self._acked = n
                self.feed(settings_ack() * k)

        def of(self, kind):
            return [e for e in self.events if e[0] == kind]

        def reset_log(self):
            self.take()
            self.events.clear()
            self.frames_in.clear()
            self.frames_out.clear()

    class PushRecorder(Recorder):
        """A Recorder that defines on_message_push (a client then advertises ENABLE_PUSH=1)."""

        def on_message_push(self, stream, parent, method, path, headers):
            self.events.append(("push", stream, parent, method, path, _copy_headers(headers)))

    _RECORDER_CLASSES.update(Recorder=Recorder, PushRecorder=PushRecorder)
    return _RECORDER_CLASSES


def Recorder(*args, **kwargs):
    return _recorder_classes()["Recorder"](*args, **kwargs)


def PushRecorder(*args, **kwargs):
    return _recorder_classes()["PushRecorder"](*args, **kwargs)


def recorder_class(push=False):
    return _recorder_classes()["PushRecorder" if push else "Recorder"]


def make_server(peer_settings=None, local=None, ack=True, cls=None, manual=False, **attrs):
    """A server past the handshake: the preface and the peer's SETTINGS (``peer_settings``, a
    dict by name) fed, our SETTINGS (plus ``local`` via update_settings) acknowledged when
    ``ack``. ``attrs`` are set before connection_made (e.g. ``reset_budget=5``). The event
    and output logs start empty."""
    c = (cls or recorder_class())(server=True)
    if manual:
        c.manual_flow_control = True
    for k, v in attrs.items():
        setattr(c, k, v)
    c.connection_made(True)
    if local:
        c.update_settings(**local)
    c.feed(PREFACE + settings(**(peer_settings or {})))
    if ack:
        c.ack_settings()
    c.reset_log()
    return c


def make_client(peer_settings=None, local=None, ack=True, cls=None, push=False, manual=False,
                **attrs):
    """A client past the handshake (the server's SETTINGS fed, ours acknowledged)."""
    c = (cls or recorder_class(push))(server=False)
    if manual:
        c.manual_flow_control = True
    for k, v in attrs.items():
        setattr(c, k, v)
    c.connection_made(True)
    if local:
        c.update_settings(**local)
    c.feed(settings(**(peer_settings or {})))
    if ack:
        c.ack_settings()
    c.reset_log()
    return c


def open_stream(c, stream, fields=None, end_stream=False):
    """Server side: the peer opens ``stream`` with a request head."""
    c.feed(headers(stream, c.block(fields or REQ), end_stream=end_stream))


def request(c, final=True, method="GET", path="/", extra=()):
    """Client side: write a request on next_stream; returns its id."""
    sid = c.next_stream
    c.write_head(sid, 0, method, path, CLIENT_HEADERS + list(extra), final)
    return sid


def push_to_client(c, parent, promised, status=True, end_stream=False):
    """Client side: the server promises ``promised`` on ``parent`` and (``status``) answers it."""
    c.feed(push_promise(parent, promised, c.block([(":method", "GET"), (":scheme", "https"),
                                                   (":path", "/pushed"),
                                                   (":authority", "example.com")])))
    if status:
        c.feed(headers(promised, c.block(RESP), end_stream=end_stream))


# ---------------------------------------------------------------------------------------------
# Assertions

def _exc_for(code):
    from cno import errors
    return {FLOW_CONTROL_ERROR: errors.FlowControlError,
            FRAME_SIZE_ERROR: errors.FrameSizeError,
            ENHANCE_YOUR_CALM: errors.EnhanceYourCalm,
            COMPRESSION_ERROR: errors.HPACKDecodingError}.get(code, errors.ProtocolError)


def _codes(code):
    return {code} if isinstance(code, int) else set(code)


def expect_connection_error(c, data, code, goaway_required=True):
    """Feeding ``data`` raises a ProtocolError (the right subclass) with ``code`` (an int or a
    set), after writing GOAWAY with that code; the connection is closed."""
    from cno import errors
    codes = _codes(code)
    with pytest.raises(errors.ProtocolError) as ei:
        c.data_received(data)
    e = ei.value
    assert e.error_code in codes, "error_code %r, expected %r (%r)" % (e.error_code, codes, e)
    assert isinstance(e, _exc_for(e.error_code)), "%r should be a %s" % (e, _exc_for(e.error_code))
    gs = c.take(GOAWAY)
    if goaway_required:
        assert gs, "no GOAWAY written before raising %r" % (e,)
    if gs:
        assert gs[-1].error_code == e.error_code, (gs, e)
    assert c.closed
    return e


def expect_stream_error(c, data, stream, code):
    """Feeding ``data`` does not raise; RST_STREAM(``stream``, ``code``) is written, no GOAWAY."""
    codes = _codes(code)
    c.data_received(data)
    out = c.take()
    rst = [f for f in out if f.type == RST_STREAM and f.stream == stream]
    assert rst, "no RST_STREAM on stream %d; wrote %r, events %r" % (stream, out, c.events)
    assert rst[-1].error_code in codes, (rst, codes)
    assert not [f for f in out if f.type == GOAWAY], out
    assert not c.closed
    return rst[-1]


def expect_error(c, data, code, stream=None):
    """Either a connection error with ``code`` or (``stream`` given, where RFC 9113 allows a
    stream error) an RST_STREAM with ``code`` on ``stream``. Returns 'connection' or 'stream'."""
    from cno import errors
    codes = _codes(code)
    try:
        c.data_received(data)
    except errors.ProtocolError as e:
        assert e.error_code in codes, "error_code %r, expected %r (%r)" % (e.error_code, codes, e)
        assert isinstance(e, _exc_for(e.error_code)), e
        gs = c.take(GOAWAY)
        assert gs and gs[-1].error_code == e.error_code, (gs, e)
        assert c.closed
        return "connection"
    out = c.take()
    assert stream is not None, "accepted, expected an error in %r; wrote %r" % (codes, out)
    rst = [f for f in out if f.type == RST_STREAM and f.stream == stream]
    assert rst, "neither a connection error nor RST_STREAM(%d); wrote %r, events %r" % (
        stream, out, c.events)
    assert rst[-1].error_code in codes, (rst, codes)
    return "stream"


def assert_alive(c):
    """The connection still works: a PING gets its ACK, nothing else is raised."""
    c.take()
    c.feed(ping(b"alive?!!"))
    acks = [f for f in c.take(PING) if f.flags & ACK]
    assert acks and acks[-1].opaque_data == b"alive?!!", "connection not answering PINGs"
    assert not c.closed


def merged_data(events, stream=None):
    """The concatenated on_message_data bytes (of ``stream``)."""
    return b"".join(e[2] for e in events if e[0] == "data" and (stream is None or e[1] == stream))
