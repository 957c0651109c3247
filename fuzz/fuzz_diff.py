"""Differential fuzzing: the same bytes go to cno and to another implementation playing
the same role, and an input that one of them accepts while the other rejects it as a
connection error is reported, unless its class of difference is one we intend (listed
in fuzz/DIFFERENCES.md and in INTENDED below, each with the RFC's reason).

Input: mode (1 byte, mod 3), then:
- 0, HTTP/2 server: cno against h2 (H2Connection, server side); records cut at
  harness.SEP as in fuzz_h2_server, after the preface and a SETTINGS exchange;
- 1, HTTP/2 client: cno against h2 (client side), each having sent GET / on stream 1;
  records as in fuzz_h2_client;
- 2, HTTP/1.1 server: cno against h11 (server side); raw bytes. Both answer each complete
  request with an empty 200 and read on, as long as h11 can: the comparison ends where
  h11 pauses for a protocol switch (Upgrade, CONNECT) or must close.

Neither HTTP/2 side answers requests. "Rejects" means a connection error: cno's
ProtocolError (GOAWAY) or h2's ProtocolError, h11's RemoteProtocolError. Stream errors
(RST_STREAM) are not compared. Other exceptions from h2 or h11 are their bugs, not
cno's: such inputs are skipped (CNO_FUZZ_DIFF_LOG shows them).

CNO_FUZZ_DIFF_LOG=path: append every difference (intended ones too, marked) to path as
one JSON object per line and go on, instead of stopping at a new one: for surveys.

    python fuzz/fuzz_diff.py fuzz/corpus/fuzz_diff -max_len=2048
"""
import json
import os
import re

import h11
import h2.config
import h2.connection
import h2.events
import h2.exceptions

import harness
from harness import ALLOWED, Finding, Peer, ProtocolError, h2_frames, split_records

LOG = os.environ.get("CNO_FUZZ_DIFF_LOG")
MODES = ("h2-server", "h2-client", "h1-server")


class Quiet(Peer):
    """cno, answering nothing (HTTP/2) and accepting pushes (as the h2 client does)."""

    def answer(self, stream, method, headers):
        pass

    def on_message_push(self, stream, parent, method, path, headers):
        pass


class H1Server(Peer):
    """cno as an HTTP/1.1 server answering each request with an empty 200 at its tail,
    as the h11 side does."""

    def __init__(self):
        super().__init__(True, Peer.P_LENGTH)

    def on_upgrade(self, stream):
        pass


# -- verdicts ---------------------------------------------------------------------------------

def frame_ends(wire, start):
    """Offsets where the frames of wire (from start) end; the last is len(wire)."""
    ends, pos, n = [], start, len(wire)
    while n - pos >= 9:
        end = pos + 9 + int.from_bytes(wire[pos:pos + 3], "big")
        if end > n:
            break
        ends.append(end)
        pos = end
    if not ends or ends[-1] != n:
        ends.append(n)
    return ends


class Verdict:
    """cno's verdict on an input: err (a ProtocolError or None), closed_at (the offset
    of the end of the frame after which cno closed gracefully, GOAWAY and no streams
    left, and ignored the rest; None if it did not), resets (RST_STREAM it sent)."""

    def __init__(self, err, closed_at, output):
        self.err = err
        self.closed_at = closed_at
        self.resets = [f for f in harness.parse_h2_output(output, preface=output.startswith(
            harness.PREFACE)) if f[0] == harness.RST_STREAM] if output else []


def cno_h2(server, wire):
    conn = Quiet(server)
    conn.connection_made(True)
    if not server:
        conn.write_head(1, 0, "GET", "/", [(":scheme", "https"), (":authority", "example.com")],
                        True)
    pos, closed_at, err = 0, None, None
    for end in frame_ends(wire, len(harness.PREFACE) if server else 0):
        try:
            conn.data_received(wire[pos:end])
        except ALLOWED as e:
            if isinstance(e, ProtocolError):
                err = e
            break
        pos = end
        if conn.closed_event and closed_at is None:
            closed_at = end
    return Verdict(err, closed_at, conn.take_output())


def h2_h2(server, wire):
    config = h2.config.H2Configuration(client_side=not server, header_encoding=None)
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    if not server:
        conn.send_headers(1, [(":method", "GET"), (":scheme", "https"),
                              (":authority", "example.com"), (":path", "/")], end_stream=True)
    try:
        conn.receive_data(wire)
    except h2.exceptions.ProtocolError as e:
        return e
    return None


def cno_h1(wire):
    conn = H1Server()
    conn.connection_made(False)
    try:
        conn.data_received(wire)
    except ALLOWED as e:
        if isinstance(e, ProtocolError):
            return e
    return None


def h11_h1(wire):
    """h11's verdict, and how many bytes it judged (it stops at a protocol switch or
    where it must close)."""
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(wire)
    while True:
        try:
            ev = conn.next_event()
        except h11.RemoteProtocolError as e:
            return e, True
        if ev is h11.NEED_DATA:
            return None, True
        if ev is h11.PAUSED:     # a protocol switch, or a connection that must close
            return None, False
        if isinstance(ev, h11.EndOfMessage):
            try:
                conn.send(h11.Response(status_code=200, headers=[("content-length", "0")]))
                conn.send(h11.EndOfMessage())
            except h11.LocalProtocolError:
                return None, False
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
            else:
                return None, False
        if isinstance(ev, h11.ConnectionClosed):
            return None, False


# -- intended differences ---------------------------------------------------------------------
# Each: (mode, the side that rejects, regex on its "Class: message", class name, check or
# None). A check(ctx) must also hold for the input to be skipped: it confirms what the
# class claims (cno reset the stream, h2 rejects too once the frame is complete, ...).
# The names are DIFFERENCES.md's headings. "reported:" classes are deviations we found
# and reported rather than intend; they are skipped so that runs look for new ones.

def cno_reset_a_stream(ctx):
    """cno answered with RST_STREAM (a stream error where the other side ends the
    connection, RFC 9113 8.1.1 / 5.4.2)."""
    return bool(ctx["cno"].resets)


def h2_rejects_whole_frame(ctx):
    """h2 rejects the frame too once all of its announced payload has arrived."""
    m = re.search(r"frame of (\d+) bytes", ctx["message"])
    if not m or int(m.group(1)) > 1 << 24:
        return False
    try:
        return h2_h2(ctx["server"], ctx["wire"] + bytes(int(m.group(1)))) is not None
    except Exception:
        return False


def h11_rejects_when_complete(ctx):
    """h11 was waiting for the rest of the line or head; with the head completed it
    rejects the input as well."""
    try:
        err, _ = h11_h1(ctx["body"] + b"\r\n\r\n")
    except Exception:
        return False
    return err is not None


def frames_of(wire, server):
    pos = len(harness.PREFACE) if server else 0
    out = []
    for end in frame_ends(wire, pos):
        if end - pos >= 9:
            out.append((wire[pos + 3], wire[pos + 4],
                        int.from_bytes(wire[pos + 5:pos + 9], "big") & 0x7FFFFFFF))
        pos = end
    return out


def after_goaway(ctx):
    """h2 stops at a GOAWAY it received; cno goes on serving the streams the GOAWAY
    lets finish (RFC 9113 6.8): the input holds a GOAWAY."""
    return any(t == harness.GOAWAY for t, _, _ in frames_of(ctx["wire"], ctx["server"]))


def cno_rejects_complete_block(ctx):
    """cno checks a HEADERS or PUSH_PROMISE (the promised id too) once its header block
    is complete; h2 at its first frame. With a CONTINUATION ending the block, cno rejects
    it as well."""
    frames = frames_of(ctx["wire"], ctx["server"])
    open_block = [f for f in frames if f[0] in (harness.HEADERS, harness.PUSH_PROMISE)
                  and not f[1] & harness.END_HEADERS]
    if not open_block:
        return False
    end = harness.frame(harness.CONTINUATION, harness.END_HEADERS, open_block[-1][2])
    return cno_h2(ctx["server"], ctx["wire"] + end).err is not None


def strip_frames(wire, server, drop):
    pos = len(harness.PREFACE) if server else 0
    out = [wire[:pos]]
    for end in frame_ends(wire, pos):
        if end - pos < 9 or wire[pos + 3] not in drop:
            out.append(wire[pos:end])
        pos = end
    return b"".join(out)


def h2_fails_on_altsvc(ctx):
    """h2 parses ALTSVC (type 0xa, RFC 7838) and rejects malformed ones; cno does not
    implement it and ignores it as an unknown type (RFC 9113 4.1, 5.5). Without the
    type-0xa frames h2 accepts the input."""
    wire = strip_frames(ctx["wire"], ctx["server"], (0xA,))
    return wire != ctx["wire"] and rejudged(ctx, wire)


def rejudged(ctx, wire):
    """Both verdicts on a changed wire: true if they agree, or differ for an intended
    reason."""
    try:
        ours, theirs = judge_h2(ctx["server"], wire)
    except Exception:
        return False
    if (ours.err is None) == (theirs is None):
        return True
    sub = dict(ctx, wire=wire, cno=ours, rejecter="cno" if ours.err is not None else "h2",
               message=message(ours.err if ours.err is not None else theirs))
    return classify(sub) is not None


def clear_reserved_bits(ctx):
    """hyperframe rejects a WINDOW_UPDATE whose reserved bit is set; RFC 9113 6.9 says
    to ignore that bit, as cno does. With the bits cleared h2 accepts (or differs for an
    intended reason)."""
    wire, pos, out, changed = ctx["wire"], len(harness.PREFACE) if ctx["server"] else 0, [], False
    out.append(wire[:pos])
    for end in frame_ends(wire, pos):
        piece = wire[pos:end]
        if end - pos == 13 and piece[3] == harness.WINDOW_UPDATE and piece[9] & 0x80:
            piece = piece[:9] + bytes((piece[9] & 0x7F,)) + piece[10:]
            changed = True
        out.append(piece)
        pos = end
    return changed and rejudged(ctx, b"".join(out))


def push_on_closed_stream(ctx):
    """The input holds a PUSH_PROMISE on an odd stream (one the client opened)."""
    return any(t == harness.PUSH_PROMISE and sid & 1
               for t, _, sid in frames_of(ctx["wire"], ctx["server"]))


def padding_valid(ctx):
    """Every padded DATA/HEADERS/PUSH_PROMISE frame leaves room for its padding (the
    padding may fill the rest of the payload, RFC 9113 6.1, 6.2, 6.6); hyperframe rejects
    padding that leaves no content."""
    wire, pos, found = ctx["wire"], len(harness.PREFACE) if ctx["server"] else 0, False
    for end in frame_ends(wire, pos):
        if end - pos >= 10 and wire[pos + 3] in (0, 1, 5) and wire[pos + 4] & 0x8:
            length = end - pos - 9
            fixed = 1 + (5 if wire[pos + 3] == 1 and wire[pos + 4] & 0x20 else 0) \
                + (4 if wire[pos + 3] == 5 else 0)
            if wire[pos + 9] > length - fixed:
                return False
            found = True
        pos = end
    return found


def cno_rejects_complete_frame(ctx):
    """h2 checks a frame's header (type against stream id) as soon as it arrives, cno
    once the frame is whole: completed with zeros, cno rejects it as well."""
    wire = ctx["wire"]
    ends = frame_ends(wire, len(harness.PREFACE) if ctx["server"] else 0)
    start = ends[-2] if len(ends) > 1 else (len(harness.PREFACE) if ctx["server"] else 0)
    if len(wire) - start < 9:
        return False
    missing = start + 9 + int.from_bytes(wire[start:start + 3], "big") - len(wire)
    if missing <= 0 or missing > 1 << 15:
        return False
    return cno_h2(ctx["server"], wire + bytes(missing)).err is not None


def other_major(ctx):
    """The request line names an HTTP version whose major is not 1 (HTTP/0.9 style
    numbers, HTTP/2.0 or above as text)."""
    line = ctx["body"].lstrip(b"\r\n").split(b"\n", 1)[0]
    m = re.search(rb" HTTP/(\d)\.\d\r?$", line)
    return m is not None and m.group(1) != b"1"


MALFORMED_H2 = (r"Illegal character|missing mandatory|duplicate pseudo-header|"
                r"pseudo-header field out of sequence|empty :path|Connection-specific header|"
                r"Invalid content-length|header name with zero length|response-only headers|"
                r"does not have an :authority|multiple Host|Trailers must have END_STREAM|"
                r"cannot receive data before headers|Invalid Host|"
                r"Received header value surrounded by whitespace|Received uppercase header name|"
                r"request-only headers|Invalid response status|"
                r"END_STREAM on informational responses|Invalid input StreamInputs\.")

INTENDED = [
    (0, "cno", r"exceeds SETTINGS_MAX_FRAME_SIZE", "frame size checked at the header",
     h2_rejects_whole_frame),
    (1, "cno", r"exceeds SETTINGS_MAX_FRAME_SIZE", "frame size checked at the header",
     h2_rejects_whole_frame),
    (0, "h2", MALFORMED_H2, "malformed message: a stream error", cno_reset_a_stream),
    (1, "h2", MALFORMED_H2, "malformed message: a stream error", cno_reset_a_stream),
    (0, "h2", r"may not depend on itself", "self-dependency: a stream error",
     cno_reset_a_stream),
    (0, "h2", r"Frame data missing or invalid", "PRIORITY of the wrong length: a stream error",
     cno_reset_a_stream),
    (1, "h2", r"Frame data missing or invalid", "PRIORITY of the wrong length: a stream error",
     cno_reset_a_stream),
    (0, "h2", r"StreamIDTooLowError|StreamClosedError",
     "reported: frames on closed streams are stream errors", cno_reset_a_stream),
    (1, "h2", r"StreamIDTooLowError|StreamClosedError",
     "reported: frames on closed streams are stream errors", cno_reset_a_stream),
    (1, "h2", r"Attempted to push on closed stream",
     "reported: frames on closed streams are stream errors", push_on_closed_stream),
    (0, "h2", r"non-compliant data", "WINDOW_UPDATE of 0 on a stream: a stream error",
     cno_reset_a_stream),
    (1, "h2", r"non-compliant data", "WINDOW_UPDATE of 0 on a stream: a stream error",
     cno_reset_a_stream),
    (0, "h2", r"mismatched :authority and Host", "reported: Host differing from :authority",
     None),
    # (several Host fields, which h2 refuses before it compares them: the same question;
    # and the same on a client, in the request of a PUSH_PROMISE)
    (0, "h2", r"multiple Host", "reported: Host differing from :authority", None),
    (1, "h2", r"mismatched :authority and Host|multiple Host",
     "reported: Host differing from :authority", None),
    (0, "h2", r"non-compliant data", "WINDOW_UPDATE's reserved bit", clear_reserved_bits),
    (1, "h2", r"non-compliant data", "WINDOW_UPDATE's reserved bit", clear_reserved_bits),
    (0, "h2", r"does not have an :authority", "requests without :authority", None),
    (0, "h2", r"in state ConnectionState.CLOSED", "frames after a GOAWAY", after_goaway),
    (1, "h2", r"in state ConnectionState.CLOSED", "frames after a GOAWAY", after_goaway),
    (0, "h2", r"non-compliant data|Frame data missing", "header blocks judged when complete",
     cno_rejects_complete_block),
    (1, "h2", r"non-compliant data|Frame data missing", "header blocks judged when complete",
     cno_rejects_complete_block),
    (1, "cno", r"invalid ENABLE_PUSH", "ENABLE_PUSH from a server", None),
    (0, "cno", r"invalid (MAX_FRAME_SIZE|INITIAL_WINDOW_SIZE|ENABLE_PUSH|"
     r"ENABLE_CONNECT_PROTOCOL)|INITIAL_WINDOW_SIZE above", "SETTINGS values out of range",
     None),
    (1, "cno", r"invalid (MAX_FRAME_SIZE|INITIAL_WINDOW_SIZE|ENABLE_CONNECT_PROTOCOL)|"
     r"INITIAL_WINDOW_SIZE above", "SETTINGS values out of range", None),
    (1, "cno", r"invalid promised stream id", "promised stream ids", None),
    (0, "cno", r"NO_RFC7540_PRIORITIES|PRIORITY_UPDATE", "RFC 9218 rules", None),
    (1, "cno", r"NO_RFC7540_PRIORITIES|PRIORITY_UPDATE", "RFC 9218 rules", None),
    (0, "h2", r"Frame data missing or invalid", "ALTSVC is an unknown type", h2_fails_on_altsvc),
    (1, "h2", r"Frame data missing or invalid", "ALTSVC is an unknown type", h2_fails_on_altsvc),
    (0, "h2", r"invalid padding", "padding may fill the payload", padding_valid),
    (1, "h2", r"invalid padding", "padding may fill the payload", padding_valid),
    (0, "h2", r"Received frame with invalid header", "frames judged when whole",
     cno_rejects_complete_frame),
    (1, "h2", r"Received frame with invalid header", "frames judged when whole",
     cno_rejects_complete_frame),
    (1, "h2", r"does not have an :authority", "pushed requests without :authority", None),
    (1, "h2", r"may not depend on itself", "self-dependency: a stream error",
     cno_reset_a_stream),
    (0, "cno", r"GOAWAY raised last-stream-id", "GOAWAY may not raise last-stream-id", None),
    (1, "cno", r"GOAWAY raised last-stream-id", "GOAWAY may not raise last-stream-id", None),
    (0, "cno", r"on idle stream", "frames on idle streams", None),
    (1, "cno", r"on idle stream", "frames on idle streams", None),
    (0, "cno", r"PUSH_PROMISE sent to a server", "PUSH_PROMISE to a server", None),
    (0, "cno", r"HEADERS opening stream .* is not allowed", "streams the peer may not open",
     None),
    (1, "cno", r"HEADERS opening stream .* is not allowed", "streams the peer may not open",
     None),
    (0, "cno", r"expected CONTINUATION", "CONTINUATION expected", None),
    (1, "cno", r"expected CONTINUATION", "CONTINUATION expected", None),
    (0, "cno", r"padding exceeds the frame", "padding longer than the payload", None),
    (1, "cno", r"padding exceeds the frame", "padding longer than the payload", None),
    (2, "cno", r".", "HTTP/1.1 errors found before the head is complete",
     h11_rejects_when_complete),
    (2, "h11", r"no request line received", "empty lines before a request", None),
    (2, "cno", r"malformed header section|invalid Host", "control characters in field values",
     None),
    (2, "cno", r"malformed request target", "request-target grammar", None),
    (2, "cno", r"chunk|bare LF", "chunked framing is strict", None),
    (2, "cno", r"Transfer-Encoding in an HTTP/1.0", "Transfer-Encoding in HTTP/1.0", None),
    (2, "cno", r"unsupported HTTP version", "505 for other major versions", other_major),
    (2, "h11", r"Only Transfer-Encoding: chunked", "transfer codings before chunked", None),
    (2, "h11", r"illegal chunk header: bytearray\(b'0[0-9a-fA-F]{16,}[;\\]",
     "leading zeros in chunk sizes", None),
    (2, "h11", r"illegal request line", "reported: non-ASCII octets in the request-target",
     None),
]


def classify(ctx):
    for mode, side, pattern, name, check in INTENDED:
        if mode == ctx["mode"] and side == ctx["rejecter"] and re.search(pattern, ctx["message"]):
            if check is None or check(ctx):
                return name
    return None


def log(entry):
    with open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")


def differ(ctx, data):
    """A difference: skip it if intended, else report it (or log it)."""
    name = classify(ctx)
    if LOG:
        log({"mode": MODES[ctx["mode"]], "rejected_by": ctx["rejecter"],
             "error": ctx["message"][:300], "intended": name, "input": data.hex()})
        return
    if name is None:
        raise Finding("%s: only %s rejects this input (%s); input %s" % (
            MODES[ctx["mode"]], ctx["rejecter"], ctx["message"], data.hex()))


def judge_h2(server, wire):
    """(cno's Verdict, h2's error or None) on wire. h2 may raise (its own bugs)."""
    theirs = h2_h2(server, wire)
    ours = cno_h2(server, wire)
    if ours.err is None and theirs is not None and ours.closed_at is not None:
        # cno closed gracefully (GOAWAY received, no stream left) and ignores what
        # follows, as documented: compare h2 on what cno read.
        theirs = h2_h2(server, wire[:ours.closed_at])
    return ours, theirs


def message(err):
    return "%s: %s" % (type(err).__name__, err)


def one_input(data):
    if len(data) < 1:
        return
    mode = data[0] % 3
    body = data[1:]
    ctx = {"mode": mode, "body": body}
    if mode < 2:
        server = mode == 0
        settings = harness.SETTINGS_EMPTY + harness.SETTINGS_ACK
        wire = (harness.PREFACE if server else b"") + settings + h2_frames(split_records(body))
        ctx.update(server=server, wire=wire)
        try:
            verdict, theirs = judge_h2(server, wire)
        except Exception as e:    # h2's own bug: not ours to judge
            if LOG:
                log({"mode": MODES[mode], "h2_crash": repr(e)[:300], "input": data.hex()})
            return
        ctx["cno"] = verdict
        ours, other = verdict.err, "h2"
    else:
        try:
            theirs, complete = h11_h1(body)
        except Exception as e:
            if LOG:
                log({"mode": MODES[mode], "h11_crash": repr(e)[:300], "input": data.hex()})
            return
        if not complete and theirs is None:
            return    # h11 stopped judging part way; cno's later verdict has no match
        ours = cno_h1(body)
        other = "h11"
    if (ours is None) == (theirs is None):
        return
    ctx["rejecter"] = "cno" if ours is not None else other
    ctx["message"] = message(ours if ours is not None else theirs)
    differ(ctx, data)


if __name__ == "__main__":
    import h2.frame_buffer
    import h2.stream
    import h11._connection
    import h11._readers
    # Their branches guide the fuzzer too (Python coverage, see harness.main).
    harness.main(one_input, extra=(h2.connection, h2.stream, h2.frame_buffer,
                                   h11._connection, h11._readers))
