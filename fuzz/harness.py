"""What the harnesses in fuzz/ share (see fuzz/README.md).

- ``Peer``: a ``cno.raw.Connection`` that records what arrives (heads, bodies, tails,
  stream ends), collects its output, and, as a server, answers every request in one of a
  few ways chosen per input (``policy``): right at the head or at the tail, with or
  without a body, trailers, an interim 1xx, 204/304, a push, a reset.
- ``chunks(data, mode)``: cuts the bytes a peer sends into the pieces ``data_received``
  gets (whole, per byte, or pseudo-random sizes seeded by ``mode``).
- ``feed(conn, data, mode)``: the driver. It applies the rule every harness checks: only
  cno's own errors (``CnoError``, which ``HPACKDecodingError`` is one of) may leave the
  engine; after a protocol error the connection must be closed and stay closed.
  Anything else (another exception, a sanitizer report, a crash, a hang past libFuzzer's
  ``-timeout``) is a finding.
- ``split_records(data)``: the structured inputs: records cut at ``SEP`` so that
  libFuzzer's insertions and deletions inside a record keep the rest in place.
- ``h2_frames(records)``: HTTP/2 frames built from records (lengths always right).
- ``main(one_input)``: the atheris entry point every harness ends with.

Coverage comes from the C of a sanitized build (tools/fuzz-build.sh) and from the
harnesses' own Python code (``instrument``). Against a normal build only the latter
guides the fuzzer; the harnesses still run and check the rule (the tests' smoke runs).
"""
import os
import struct
import sys

import cno.raw
from cno.errors import CnoError, ConnectionClosed, ProtocolError
from cno.hpack import HPACKDecodingError

ALLOWED = (CnoError, HPACKDecodingError)   # HPACKDecodingError is a CnoError; explicit
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SEP = b"\xa5\x5a\xc3\x3c"                   # record separator of the structured inputs

# HTTP/2 frame types and flags (RFC 9113 section 6).
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, \
    WINDOW_UPDATE, CONTINUATION = range(10)
END_STREAM = ACK = 0x1
END_HEADERS = 0x4


class Finding(AssertionError):
    """An invariant the harness checks was broken (not an exception from cno)."""


def frame(type_, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes((type_, flags)) \
        + struct.pack(">I", sid & 0xFFFFFFFF) + payload


SETTINGS_EMPTY = frame(SETTINGS, 0, 0)
SETTINGS_ACK = frame(SETTINGS, ACK, 0)


# -- the recording, answering connection -------------------------------------------------------

class Peer(cno.raw.Connection):
    """A connection that records its events and (as a server) answers requests.

    ``policy`` (an int, bits below) picks how a server answers; 0 answers 200 with a
    short body at the request's tail.
    """

    P_AT_HEAD = 1        # answer in on_message_head instead of on_message_tail
    P_BODY = 2           # a body (two write_data calls) instead of a final head
    P_TRAILERS = 4       # end with write_tail(trailers) instead of final data
    P_INTERIM = 8        # a 103 first
    P_NO_CONTENT = 16    # 204 (and 304 for a GET with if-none-match)
    P_PUSH = 32          # HTTP/2: push one resource first
    P_RESET = 64         # reset every third stream instead of answering
    P_LENGTH = 128       # announce content-length

    def __init__(self, server=True, policy=0, **settings):
        # cno.raw.Connection takes server and settings in __init__ (its __cinit__ accepts
        # anything): pass them on.
        super().__init__(server, **settings)
        self.policy = policy
        self.out = []
        self.heads = {}
        self.bodies = {}
        self.tails = {}
        self.ended = {}
        self.answered = set()
        self.closed_event = False

    # -- output ---------------------------------------------------------------------------

    def on_writev(self, chunks):
        self.out.extend(chunks)

    def take_output(self):
        out = b"".join(self.out)
        self.out.clear()
        return out

    # -- events ---------------------------------------------------------------------------

    def on_message_head(self, stream, code, method, path, headers):
        self.heads.setdefault(stream, []).append((code, method, path))
        if self.is_server and self.policy & self.P_AT_HEAD:
            self.answer(stream, method, headers)

    def on_message_data(self, stream, data):
        body = self.bodies.get(stream)
        if body is None:
            self.bodies[stream] = body = bytearray()
        body += data

    def on_message_tail(self, stream, trailers):
        self.tails[stream] = trailers
        if self.is_server and not self.policy & self.P_AT_HEAD:
            head = self.heads.get(stream)
            self.answer(stream, head[-1][1] if head else "GET", None)

    def on_stream_end(self, stream, code, side):
        self.ended[stream] = (code, side)

    def on_close(self):
        self.closed_event = True

    def on_upgrade(self, stream):
        # Accept every other protocol switch (a tunnel), refuse the rest as usual.
        if self.policy & self.P_RESET:
            try:
                self.write_head(stream, 101, "", "", [("upgrade", "x")], False)
                self.answered.add(stream)
            except ALLOWED:
                pass

    # -- the server's answer --------------------------------------------------------------

    def answer(self, stream, method, headers):
        if stream in self.answered or self.closed:
            return
        self.answered.add(stream)
        p = self.policy
        try:
            if p & self.P_RESET and stream % 3 == 0:
                self.write_reset(stream, 8)
                return
            if p & self.P_PUSH and self.is_http2 and stream & 1:
                self.write_push(stream, "GET", "/pushed", [(":scheme", "https"),
                                                           (":authority", "x")])
            if p & self.P_INTERIM:
                self.write_head(stream, 103, "", "", [("link", "</a>; rel=preload")], False)
            if p & self.P_NO_CONTENT:
                code = 304 if method == "GET" else 204
                self.write_head(stream, code, "", "", [("x", "y")], True)
                return
            body = b"hello, " + (method.encode("latin-1") if isinstance(method, str)
                                 else bytes(method or b""))
            fields = [("content-type", "text/plain")]
            if p & self.P_LENGTH and not p & self.P_TRAILERS:
                fields.append(("content-length", str(len(body))))
            if not p & self.P_BODY:
                self.write_head(stream, 200, "", "",
                                [("content-length", "0")] if p & self.P_LENGTH else fields,
                                True)
                return
            self.write_head(stream, 200, "", "", fields, False)
            if method == "HEAD":
                self.write_tail(stream, None)
                return
            self.write_data(stream, body[:3], False)
            if p & self.P_TRAILERS:
                self.write_data(stream, body[3:], False)
                self.write_tail(stream, [("x-checksum", "abc")])
            else:
                self.write_data(stream, body[3:], True)
        except ALLOWED:
            pass


class PushPeer(Peer):
    """A client that accepts pushes (its class defines on_message_push)."""

    def on_message_push(self, stream, parent, method, path, headers):
        self.heads.setdefault(stream, []).append((0, method, path))


# -- cutting and feeding ------------------------------------------------------------------------

def chunks(data, mode):
    """The pieces data_received gets: mode 0 whole, 1 one byte at a time (short inputs
    only), else pseudo-random sizes 1..(mode * 4) from a small LCG seeded by mode."""
    n = len(data)
    if mode == 0 or n <= 1:
        return [data]
    if mode == 1 and n <= 512:
        return [data[i:i + 1] for i in range(n)]
    limit = max(2, (mode & 0x3F) * 4)
    state = mode * 2654435761 & 0xFFFFFFFF
    out, pos = [], 0
    while pos < n:
        state = (state * 1103515245 + 12345) & 0x7FFFFFFF
        step = 1 + (state >> 8) % limit
        out.append(data[pos:pos + step])
        pos += step
    return out


def feed(conn, data, mode=0):
    """Feeds data to conn in chunks; returns the CnoError that ended it, or None.
    Anything but cno's errors propagates (a finding)."""
    if conn.closed:
        return None
    for piece in chunks(data, mode):
        try:
            conn.data_received(piece)
        except ALLOWED as e:
            check_after_error(conn, e)
            return e
    return None


def check_after_error(conn, err):
    """After a protocol error the connection is closed and every call says so."""
    if isinstance(err, ProtocolError):
        if not conn.closed:
            raise Finding("ProtocolError %r left the connection open" % err)
        try:
            conn.data_received(b"x")
        except ConnectionClosed:
            pass
        else:
            raise Finding("data_received after a ProtocolError did not raise ConnectionClosed")


def finish(conn):
    """connection_lost at the end of an input: allowed to say the connection is closed."""
    try:
        conn.connection_lost()
    except ALLOWED:
        pass


# -- structured inputs --------------------------------------------------------------------------

def split_records(data):
    return data.split(SEP)


RAW_TYPE = 0xFF   # a record of this type is raw bytes (a broken frame header, garbage)


def h2_frames(records):
    """Each record: type (1 byte), flags (1), stream id (4, big-endian), payload (the
    rest); the length is the payload's. A record shorter than 6 bytes or of type 0xFF is
    sent as raw bytes, so lengths can still be wrong."""
    out = []
    for r in records:
        if len(r) < 6 or r[0] == RAW_TYPE:
            out.append(r[1:] if r[:1] == b"\xff" else r)
            continue
        out.append(frame(r[0], r[1], int.from_bytes(r[2:6], "big"), r[6:]))
    return b"".join(out)


def h2_record(type_, flags, sid, payload):
    """The record for one frame (what tools/fuzz-seeds.py writes)."""
    return bytes((type_, flags)) + struct.pack(">I", sid) + payload


def parse_h2_output(data, preface=False):
    """Checks that what cno wrote is a sequence of whole frames (after the client preface
    when preface is set); returns the frames as (type, flags, stream, payload)."""
    pos = 0
    if preface:
        if not data.startswith(PREFACE):
            raise Finding("client output does not start with the preface")
        pos = len(PREFACE)
    frames = []
    n = len(data)
    while pos < n:
        if n - pos < 9:
            raise Finding("output ends inside a frame header")
        length = int.from_bytes(data[pos:pos + 3], "big")
        end = pos + 9 + length
        if end > n:
            raise Finding("output ends inside a frame payload")
        frames.append((data[pos + 3], data[pos + 4],
                       int.from_bytes(data[pos + 5:pos + 9], "big"), data[pos + 9:end]))
        pos = end
    return frames


# -- entry point --------------------------------------------------------------------------------

def instrument(*modules):
    """atheris-instruments the Python functions of the given modules (and their classes'
    methods): the harnesses' own branches (which events fired, which answer went out)
    then count as coverage. Against a normal build that is all the coverage there is, and
    it is what keeps the seed corpus from being dropped as "uninteresting"."""
    import types

    import atheris
    seen = set()
    for mod in modules:
        for obj in list(vars(mod).values()):
            funcs = []
            if isinstance(obj, types.FunctionType):
                funcs.append(obj)
            elif isinstance(obj, type) and obj.__module__ == mod.__name__:
                funcs.extend(v for v in vars(obj).values() if isinstance(v, types.FunctionType))
            for f in funcs:
                if getattr(f, "__module__", None) == mod.__name__ and id(f) not in seen:
                    seen.add(id(f))
                    atheris.instrument_func(f)


def main(one_input, argv=None, extra=()):
    """Runs the harness under atheris (libFuzzer's flags on the command line)."""
    import atheris
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    # Python coverage: on by default for a normal build (the only guide there), off for a
    # sanitized one (the C's coverage guides it, and the Python hooks cost 4x the speed).
    # CNO_FUZZ_PYCOV=0/1 overrides.
    default = "0" if os.environ.get("CNO_FUZZ_SANITIZED") else "1"
    if os.environ.get("CNO_FUZZ_PYCOV", default) == "1":
        instrument(sys.modules[__name__], sys.modules[one_input.__module__], *extra)
    atheris.Setup(list(sys.argv if argv is None else argv), one_input)
    atheris.Fuzz()
