"""Fuzz a cno client and a cno server wired to each other, the input choosing the API
calls (write_head, write_data, write_tail, write_reset, write_ping, write_push,
shutdown, update_settings, open_flow, write_frame, connection_lost) and their arguments,
and when (and how much of) each side's output reaches the other.

Invariants: no exception but cno's own (UsageError is the answer to a bad argument,
WouldBlock and InvalidStream to a call at the wrong time); the two engines reach
quiescence; body bytes are never altered (what arrives on a stream is a prefix of what
the other side's write_data accepted), and when neither side met an error and the
stream was not reset, a message that arrived whole carries exactly the body that was sent.

Input: options (1 byte: bit 0 HTTP/2 from the start; else HTTP/1.1, where bit 4 lets
both sides use the h2c upgrade; bit 1 client manual flow control; bit 2 server manual
flow control; bit 3 the client accepts pushes; bit 5 bytes_headers on both), then
operations of 1 byte each followed by their arguments (see OPS).

    python fuzz/fuzz_pair.py fuzz/corpus/fuzz_pair -max_len=512
"""
import os

import harness
from harness import ALLOWED, Finding, Peer, ProtocolError

TRACE = bool(os.environ.get("CNO_FUZZ_TRACE"))   # print each operation (triage)
METHODS = ["GET", "POST", "HEAD", "PUT", "CONNECT", "OPTIONS", "DELETE", "G\x01T"]
PATHS = ["/", "/a?b=c", "*", "example.com:443", "", "/sp ace", "/%00", "/" + "x" * 300]
CODES = [200, 204, 304, 100, 103, 101, 404, 500, 199, 0, 1000, 999, 205, 301]
NAMES = ["content-length", "transfer-encoding", "connection", "upgrade", "te", "host",
         ":authority", ":scheme", ":protocol", ":path", "x-a", "X-Upper", "cookie",
         "trailer", "keep-alive", "bad name", "", "content-type", "expect", "http2-settings"]
VALUES = ["0", "5", "10", "chunked", "close", "h2c", "trailers", "example.com", "https",
          "a\r\nb", "a\x00b", " lead", "trail ", "100-continue", "websocket", "-1",
          "99999999999999999999", "gzip, chunked", "x" * 100, "\x7f", "\x01", "keep-alive"]
SETTINGS = ["header_table_size", "enable_push", "max_concurrent_streams",
            "initial_window_size", "max_frame_size", "max_header_list_size",
            "enable_connect_protocol"]
SETTING_VALUES = [0, 1, 2, 3, 100, 16383, 16384, 16385, 65535, 65536, 2 ** 24 - 1, 2 ** 24,
                  2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]


PATTERN = bytes(range(256)) * 100   # body bytes: a slice of this, by stream


class Cursor:
    __slots__ = ("data", "pos")

    def __init__(self, data):
        self.data = data
        self.pos = 0

    def byte(self):
        if self.pos >= len(self.data):
            return 0
        b = self.data[self.pos]
        self.pos += 1
        return b

    def pick(self, seq):
        return seq[self.byte() % len(seq)]

    def take(self, n):
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def more(self):
        return self.pos < len(self.data)


class PairPeer(Peer):
    """Records what arrives, answers nothing by itself (the input does), and tracks what
    its write_data calls accepted."""

    def __init__(self, server, **kw):
        super().__init__(server, **kw)
        self.sent = {}          # stream -> bytearray accepted by write_data
        self.ended_msg = set()  # streams whose outgoing message we ended
        self.pending = bytearray()   # our output not yet delivered to the other side
        self.errors = 0
        self.methods = {}       # client: stream -> the method of our request
        self.upgrades = {}      # client: stream -> our request carried an Upgrade field
        self.lengths = {}       # stream -> our message announced a content-length

    def on_message_head(self, stream, code, method, path, headers):
        self.heads.setdefault(stream, []).append((code, method, path))

    def on_message_tail(self, stream, trailers):
        self.tails[stream] = trailers

    def on_writev(self, chunks):
        for c in chunks:
            self.pending += c


class PushPairPeer(PairPeer):
    """A client that accepts pushes (its class defines on_message_push)."""

    def on_message_push(self, stream, parent, method, path, headers):
        self.heads.setdefault(stream, []).append((0, method, path))


def headers_from(cur):
    fields = []
    for _ in range(cur.byte() % 5):
        fields.append((cur.pick(NAMES), cur.pick(VALUES)))
    return fields


def pick_stream(cur, conn):
    streams = conn.open_streams
    b = cur.byte()
    if not streams or b >= 0xF0:
        return b & 0x0F
    return streams[b % len(streams)]


def deliver(src, dst, limit=None):
    """Moves src's pending output (at most limit bytes) into dst."""
    if not src.pending:
        return False
    if limit is None or limit >= len(src.pending):
        data = bytes(src.pending)
        src.pending.clear()
    else:
        data = bytes(src.pending[:limit])
        del src.pending[:limit]
    if dst.closed:
        return True
    try:
        dst.data_received(data)
    except ALLOWED as e:
        harness.check_after_error(dst, e)
        dst.errors += 1
    return True


def settle(client, server):
    for _ in range(200):
        moved = deliver(client, server)
        moved = deliver(server, client) or moved
        if not moved:
            return
    raise Finding("the two engines kept talking for 200 rounds")


def op_request(cur, client, server):
    method = cur.pick(METHODS)
    path = cur.pick(PATHS)
    fields = [(":scheme", "https"), (":authority", "example.com")]
    flags = cur.byte()
    if flags & 1:
        fields = fields[1:]
    fields += headers_from(cur)
    sid = client.next_stream
    client.write_head(sid, 0, method, path, fields, bool(flags & 2))
    client.methods[sid] = method
    client.lengths[sid] = any(n == "content-length" for n, _ in fields)
    client.upgrades[sid] = any(n == "upgrade" for n, _ in fields)


def op_response(cur, client, server):
    sid = pick_stream(cur, server)
    code = cur.pick(CODES)
    flags = cur.byte()
    fields = headers_from(cur)
    server.write_head(sid, code, "", "", fields, bool(flags & 1))
    server.lengths[sid] = any(n == "content-length" for n, _ in fields)


def op_data(cur, client, server):
    side = client if cur.byte() & 1 else server
    sid = pick_stream(cur, side)
    n = cur.byte()
    flags = cur.byte()
    if flags & 2:
        n *= 97            # up to ~25 KB: past windows and frame sizes
    start = (sid * 7) & 0xFF
    data = PATTERN[start:start + n]
    taken = side.write_data(sid, data, bool(flags & 1))
    if not 0 <= taken <= n:
        raise Finding("write_data returned %r for %d bytes" % (taken, n))
    side.sent.setdefault(sid, bytearray()).extend(data[:taken])
    if flags & 1 and taken == n:
        side.ended_msg.add(sid)


def op_tail(cur, client, server):
    side = client if cur.byte() & 1 else server
    sid = pick_stream(cur, side)
    trailers = headers_from(cur) if cur.byte() & 1 else None
    side.write_tail(sid, trailers)
    side.ended_msg.add(sid)


def op_reset(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.write_reset(pick_stream(cur, side), cur.byte() % 16)


def op_ping(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.write_ping(bytes(cur.take(8)).ljust(8, b"\0") if cur.byte() & 1 else cur.take(3))


def op_shutdown(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.shutdown(cur.byte() % 16)


def op_settings(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.update_settings(**{cur.pick(SETTINGS): cur.pick(SETTING_VALUES)})


def op_push(cur, client, server):
    sid = pick_stream(cur, server)
    server.write_push(sid, cur.pick(METHODS), cur.pick(PATHS),
                      [(":scheme", "https"), (":authority", "example.com")] + headers_from(cur))


def op_flow(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.open_flow(pick_stream(cur, side), cur.byte() * cur.byte() * 4)


def op_frame(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.write_frame(cur.pick([2, 0xA, 0xB, 0xFF, 0, 4]), cur.byte(), pick_stream(cur, side),
                     cur.take(cur.byte() % 16))


def op_deliver(cur, client, server):
    b = cur.byte()
    src, dst = (client, server) if b & 1 else (server, client)
    deliver(src, dst, None if b & 2 else 1 + (b >> 2) * 3)


def op_lost(cur, client, server):
    side = client if cur.byte() & 1 else server
    side.connection_lost()
    side.errors += 1


OPS = [op_request, op_response, op_data, op_tail, op_deliver, op_data, op_response,
       op_deliver, op_reset, op_ping, op_shutdown, op_settings, op_push, op_flow, op_frame,
       op_lost]


def answers_head(conn, sid):
    """conn (a server) answers a HEAD request on sid: the engine accepts body bytes for
    it and sends none (RFC 9110 9.3.2; cno discards them so that one handler can serve
    GET and HEAD alike)."""
    return conn.is_server and any(h[1] in ("HEAD", b"HEAD") for h in conn.heads.get(sid, ()))


SERVER_WRITES = (op_response, op_data, op_tail, op_reset)


def h1_tunnel(client, server, sid):
    """sid's request opened an HTTP/1.1 tunnel (the client got a 2xx to its CONNECT, or a
    101 to its Upgrade). There the request's tail comes at its head (it has no content)
    and the tunnel's bytes follow it, a new stream of bytes (docs/raw.md, "Other upgrades
    and CONNECT"); a tunnel ends with the connection, and what is in flight when one side
    closes is dropped (RFC 9110 9.3.6): so no count of its bytes can be checked."""
    if client.is_http2 or server.is_http2:
        return False
    connect = client.methods.get(sid) in ("CONNECT", b"CONNECT")
    return any(code == 101 or (connect and 200 <= code < 300)
               for code, _, _ in client.heads.get(sid, ()))


def check_bodies(sender, receiver, clean):
    client, server = (receiver, sender) if sender.is_server else (sender, receiver)
    for sid, sent in sender.sent.items():
        got = receiver.bodies.get(sid)
        if got is None:
            got = b""
        if bytes(sent[:len(got)]) != bytes(got):
            raise Finding("stream %d: received %d bytes that are not what was sent (%d)"
                          % (sid, len(got), len(sent)))
        if (clean and sid in receiver.tails and not answers_head(sender, sid) and sid in sender.ended_msg
                and receiver.ended.get(sid, (0, 0))[0] == 0
                and sender.ended.get(sid, (0, 0))[0] == 0
                and not h1_tunnel(client, server, sid)
                and len(got) != len(sent)):
            raise Finding("stream %d: the message ended with %d of %d body bytes"
                          % (sid, len(got), len(sent)))


def one_input(data):
    if not data:
        return
    cur = Cursor(data)
    options = cur.byte()
    h2 = bool(options & 1)
    client = (PushPairPeer if options & 8 else PairPeer)(False)
    server = PairPeer(True)
    for conn, bit in ((client, 2), (server, 4)):
        conn.manual_flow_control = bool(options & bit)
        conn.bytes_headers = bool(options & 32)
        if not h2 and options & 16:
            conn.disallow_h2_upgrade = False
    client.connection_made(h2)
    server.connection_made(h2)
    steps = 0
    while cur.more() and steps < 64:
        steps += 1
        op = OPS[cur.byte() % len(OPS)]
        start = cur.pos
        try:
            op(cur, client, server)
        except ProtocolError as e:
            # The peer's errors come from data_received, with one exception: an HTTP/1.1
            # server parses the requests pipelined behind a stream when that stream ends,
            # so the write that ends it may report an error in them (the connection is
            # then closed like after data_received's). Anything else is a finding.
            if not (server.closed and not server.is_http2 and op in SERVER_WRITES):
                raise Finding("%s raised %r" % (op.__name__, e))
            harness.check_after_error(server, e)
            server.errors += 1
            if TRACE:
                print("  %-12s %-24s -> %r" % (op.__name__, cur.data[start:cur.pos].hex(), e))
        except ALLOWED as e:
            if TRACE:
                print("  %-12s %-24s -> %r" % (op.__name__, cur.data[start:cur.pos].hex(), e))
        else:
            if TRACE:
                print("  %-12s %-24s ok" % (op.__name__, cur.data[start:cur.pos].hex()))
    settle(client, server)
    if TRACE:
        for conn in (client, server):
            print("  %s: sent %r bodies %r tails %r ended %r errors %d" % (
                "server" if conn.is_server else "client",
                {k: len(v) for k, v in conn.sent.items()},
                {k: len(v) for k, v in conn.bodies.items()}, conn.tails, conn.ended,
                conn.errors))
    clean = not client.errors and not server.errors
    check_bodies(client, server, clean)
    check_bodies(server, client, clean)
    for conn in (client, server):
        harness.finish(conn)


if __name__ == "__main__":
    harness.main(one_input)
