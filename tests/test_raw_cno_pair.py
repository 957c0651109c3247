"""cno.raw.Connection client against cno.raw.Connection server, in memory.

The essentials of tests/test_raw_interop_h2.py with cno on both ends (bodies, trailers,
push, resets, small windows, SETTINGS changes, GOAWAY, PING), plus what only shows with
cno on both ends: output coalescing (one on_writev per public call), per-class event
lookup, on_frame / write_frame, exceptions raised by event methods, API errors.
"""
import random

import pytest

import cno.errors
import cno.raw
from cno.raw import (
    CNO_LOCAL,
    CNO_REMOTE,
    CNO_RST_CANCEL,
    CNO_RST_INTERNAL_ERROR,
)
from h2_pair import (
    AUTHORITY,
    CONTINUATION,
    DATA,
    HEADERS,
    RST_STREAM,
    SCHEME,
    WINDOW_UPDATE,
    CnoPeer,
    CnoPushPeer,
    body_bytes,
    cno_auto_respond,
    cno_pair,
    deliver,
    one_byte,
    pump,
    splitter,
    window_update,
)

BASE = [(":scheme", SCHEME), (":authority", AUTHORITY)]


def echo(c, req):
    return 200, [("x-path", req.path)], req.body[::-1], req.trailers


def complete(peer, stream):
    end = peer.end_of(stream)
    return bool(peer.of("tail", stream)) and end is not None and end[2] == 0


def final_head(peer, stream):
    heads = [e for e in peer.of("head", stream) if e[2] >= 200]
    assert len(heads) == 1, peer.of("head", stream)
    return heads[0]


# ----------------------------------------------------------------------------------------
# Requests, bodies, trailers

def test_next_stream_ids():
    c, s = cno_pair()
    assert (c.next_stream, s.next_stream) == (1, 2)
    assert c.is_client and not c.is_server and s.is_server and not s.is_client
    assert c.is_http2 and s.is_http2
    ids = [c.request("GET", "/%d" % i) for i in range(4)]
    assert ids == [1, 3, 5, 7] and c.next_stream == 9
    assert [e for e in c.events if e[0] == "start"] == [("start", i) for i in ids]


def test_requests_with_bodies():
    rng = random.Random(7)
    sizes = [rng.choice([0, 1, rng.randint(2, 5000), rng.randint(5000, 300_000)]) for _ in range(300)]
    sizes[:6] = [0, 16384, 16385, 65535, 65536, 1 << 20]
    c, s = cno_pair()
    for p in (c, s):
        p.keep_data_events = False
    cno_auto_respond(s, echo)
    for start in range(0, len(sizes), 100):
        streams = {}
        for i in range(start, min(start + 100, len(sizes))):
            tr = [("x-sum", str(sizes[i]))] if i % 5 == 0 else None
            hdrs = [("x-i", str(i)), ("x-sens", "secret", True), (b"x-bytes", b"v\xff")]
            streams[c.request("POST", "/p/%d" % i, hdrs, body_bytes(i, sizes[i]), tr)] = (i, tr)
        pump(c, s)
        for st, (i, tr) in streams.items():
            req = s.request_of(st)
            assert (req.method, req.path) == ("POST", "/p/%d" % i)
            assert req.headers == BASE + [("x-i", str(i)), ("x-sens", "secret"), ("x-bytes", "v\xff")]
            assert req.body == body_bytes(i, sizes[i])
            assert req.trailers == tr
            head = final_head(c, st)
            assert (head[2], head[3], head[4], head[5]) == (200, "", "", [("x-path", "/p/%d" % i)])
            assert c.body(st) == body_bytes(i, sizes[i])[::-1]
            assert c.of("tail", st) == [("tail", st, tr)]
            assert complete(c, st) and complete(s, st)
        for p in (c, s):
            p.events.clear()
            p.bodies.clear()
    assert not c.closed and not s.closed


def test_trailers_both_ways_and_tail_none():
    c, s = cno_pair()
    cno_auto_respond(s, lambda p, req: (200, [], b"data", [("grpc-status", "0"), ("x-t", "a\tb")]))
    st = c.request("POST", "/", [], b"q" * 1000, [("x-req-tr", "1")])
    st2 = c.request("POST", "/2", [], b"", [])               # empty trailers: just END_STREAM
    pump(c, s)
    assert s.of("tail", st) == [("tail", st, [("x-req-tr", "1")])]
    assert c.of("tail", st) == [("tail", st, [("grpc-status", "0"), ("x-t", "a\tb")])]
    assert s.sent.count(HEADERS, st) == 2 and c.sent.count(HEADERS, st2) == 1
    # write_tail(stream, []) is a bare END_STREAM (an empty DATA frame, last on the wire)
    assert c.sent.of(DATA, st2)[-1].flags & 1
    assert s.of("tail", st2) == [("tail", st2, None)]


def test_head_and_1xx():
    c, s = cno_pair()
    st = c.request("HEAD", "/")
    st2 = c.request("POST", "/", [("expect", "100-continue")], b"", end=False)
    pump(c, s)
    s.respond(st, 200, [("content-length", "1000")])
    s.write_head(st2, 100, "", "", [], False)
    s.write_head(st2, 103, "", "", [("link", "</x>")], False)
    pump(c, s)
    assert complete(c, st) and c.body(st) == b""
    assert [(e[2], e[5]) for e in c.of("head", st2)] == [(100, []), (103, [("link", "</x>")])]
    c.send_body(st2, b"body", True)
    pump(c, s)
    s.respond(st2, 200, [], b"ok")
    pump(c, s)
    assert [e[2] for e in c.of("head", st2)] == [100, 103, 200]
    assert complete(c, st2) and c.body(st2) == b"ok"
    st3 = c.request("GET", "/x")
    pump(c, s)
    with pytest.raises(cno.errors.UsageError):             # a 1xx may not be final
        s.write_head(st3, 100, "", "", [], True)


# ----------------------------------------------------------------------------------------
# Push

def test_push_pair():
    c, s = cno_pair(client_cls=CnoPushPeer)
    assert s.remote_settings["enable_push"] == 1
    promised = []

    def responder(p, req):
        if req.path == "/":
            promised.append(p.write_push(req.stream, "GET", "/a.css", BASE + [("x-p", "1")]))
            return 200, [], b"index", None
        return 200, [("content-type", "text/css")], b"a{}" * 30_000, None

    cno_auto_respond(s, responder)
    st = c.request("GET", "/")
    pump(c, s)
    (pid,) = promised
    assert pid == 2 and s.next_stream == 4
    assert c.of("push") == [("push", pid, st, "GET", "/a.css", BASE + [("x-p", "1")])]
    kinds = [e[0] for e in c.events if len(e) > 1 and e[1] == pid and e[0] != "flow"]
    assert kinds[0] in ("start", "push") and kinds.index("push") < kinds.index("head")
    assert "start" in kinds and kinds[-2:] == ["tail", "end"]
    assert final_head(c, pid)[5] == [("content-type", "text/css")]
    assert c.body(pid) == b"a{}" * 30_000 and complete(c, pid)
    assert complete(c, st) and c.body(st) == b"index"
    # on the server, the pushed request looked like any request
    assert s.request_of(pid)[1:] == ("GET", "/a.css", BASE + [("x-p", "1")], b"", None)
    assert s.of("start", pid) == [("start", pid)]


def test_push_refused_by_client_without_on_message_push():
    c, s = cno_pair()
    assert c.local_settings["enable_push"] == 0
    assert s.remote_settings["enable_push"] == 0
    st = c.request("GET", "/")
    pump(c, s)
    assert s.write_push(st, "GET", "/x", BASE) == 0
    assert s.next_stream == 2
    pump(c, s)
    assert s.sent.count(5) == 0


def test_push_cancelled_by_client():
    c, s = cno_pair(client_cls=CnoPushPeer)
    c.handlers["push"] = lambda p, pid, parent, *a: p.write_reset(pid, CNO_RST_CANCEL)

    def responder(p, req):
        if req.path == "/big":
            return 200, [], b"P" * 400_000, None
        assert p.write_push(req.stream, "GET", "/big", BASE) == 2
        return 200, [], b"main", None

    cno_auto_respond(s, responder)
    st = c.request("GET", "/")
    pump(c, s)
    assert s.end_of(2) == ("end", 2, CNO_RST_CANCEL, CNO_REMOTE)
    assert c.end_of(2) == ("end", 2, CNO_RST_CANCEL, CNO_LOCAL)
    assert complete(c, st) and c.body(st) == b"main"
    assert len(c.body(2)) <= 65535


# ----------------------------------------------------------------------------------------
# Resets

def test_client_resets_response_in_flight():
    c, s = cno_pair()
    s.handlers["head"] = lambda p, st, *a: p.respond(st, 200, [], body_bytes(1, 1 << 20))
    st = c.request("GET", "/big")
    deliver(c, s)
    deliver(s, c)                                      # head + one window of data
    assert len(c.body(st)) == 65535
    s.receive(c.outbound())                            # the client's WINDOW_UPDATEs
    s.flush()
    in_flight = s.outbound()                           # more DATA, crossing the RST
    assert in_flight
    c.write_reset(st, CNO_RST_CANCEL)
    assert c.end_of(st) == ("end", st, CNO_RST_CANCEL, CNO_LOCAL)
    c.receive(in_flight)
    assert len(c.body(st)) == 65535 and c.of("tail", st) == []
    deliver(c, s)
    assert s.end_of(st) == ("end", st, CNO_RST_CANCEL, CNO_REMOTE)
    assert st not in s.pending
    with pytest.raises(cno.errors.InvalidStream):
        s.write_data(st, b"x", True)
    pump(c, s)
    s.handlers.clear()
    cno_auto_respond(s, echo)
    st2 = c.request("POST", "/again", [], body_bytes(2, 200_000))
    pump(c, s)
    assert complete(c, st2) and c.body(st2) == body_bytes(2, 200_000)[::-1]
    assert len(c.of("end", st)) == 1 and len(s.of("end", st)) == 1


def test_server_resets_upload_in_flight():
    c, s = cno_pair()
    st = c.request("POST", "/up", [], body_bytes(3, 1 << 20))
    deliver(c, s)
    assert len(s.body(st)) == 65535
    deliver(s, c)                                      # WINDOW_UPDATEs
    c.flush()
    in_flight = c.outbound()
    s.write_reset(st, CNO_RST_INTERNAL_ERROR)
    assert s.end_of(st) == ("end", st, CNO_RST_INTERNAL_ERROR, CNO_LOCAL)
    s.receive(in_flight)
    assert len(s.body(st)) == 65535 and s.of("tail", st) == []
    deliver(s, c)
    assert c.end_of(st) == ("end", st, CNO_RST_INTERNAL_ERROR, CNO_REMOTE)
    assert st not in c.pending
    pump(c, s)
    cno_auto_respond(s, echo)
    st2 = c.request("POST", "/again", [], body_bytes(4, 200_000))
    pump(c, s)
    assert complete(c, st2)
    # late frames on long-closed streams are harmless
    s.receive(window_update(st, 10) + window_update(st2, 10))
    c.receive(window_update(st, 10) + window_update(st2, 10))
    pump(c, s)
    assert not c.closed and not s.closed


# ----------------------------------------------------------------------------------------
# Flow control and settings

def test_small_windows_pair():
    c, s = cno_pair()
    c.update_settings(initial_window_size=1000)
    s.update_settings(initial_window_size=1000)
    pump(c, s)
    assert c.remote_settings["initial_window_size"] == 1000
    assert s.remote_settings["initial_window_size"] == 1000
    cno_auto_respond(s, echo)
    body = body_bytes(5, 200_000)
    st = c.request("POST", "/", [], body)
    pump(c, s)
    assert s.body(st) == body and c.body(st) == body[::-1] and complete(c, st)
    assert max(f.length for f in c.sent.of(DATA, st)) <= 1000
    assert max(f.length for f in s.sent.of(DATA, st)) <= 1000


def test_window_updates_batched_pair():
    c, s = cno_pair()
    c.chunk = 1000                      # the client writes 1000-byte DATA frames
    cno_auto_respond(s, lambda p, req: (204, [], b"", None))
    st = c.request("POST", "/", [], body_bytes(6, 200_000))
    pump(c, s)
    assert complete(c, st)
    n_data, n_wu = s.recv.count(DATA), s.sent.count(WINDOW_UPDATE)
    assert n_data >= 200
    assert 0 < n_wu <= n_data // 4, (n_wu, n_data)


def test_flow_increase_event_and_short_writes():
    c, s = cno_pair()
    st = c.next_stream
    c.write_head(st, 0, "POST", "/", BASE, False)
    assert c.write_data(st, b"a" * 100_000, False) == 65535
    assert c.write_data(st, b"a" * 10, False) == 0
    n = len(c.of("flow"))
    pump(c, s)
    flows = c.of("flow")[n:]
    assert flows and {e[1] for e in flows} <= {0, st}
    assert c.write_data(st, b"b" * 100_000, True) > 0


def test_manual_flow_control_pair():
    def setup(c, s):
        c.manual_flow_control = True
    c, s = cno_pair(setup=setup)
    body = body_bytes(7, 300_000)
    cno_auto_respond(s, lambda p, req: (200, [], body, None))
    st = c.request("GET", "/")
    pump(c, s)
    assert len(c.body(st)) == 65535
    credited = 0
    for _ in range(50):
        if c.of("tail", st):
            break
        n = len(c.body(st)) - credited
        c.open_flow(st, n)
        credited += n
        pump(c, s)
    assert c.body(st) == body and complete(c, st)


def test_open_flow_zero_grows_connection_window_only():
    def setup(c, s):
        c.manual_flow_control = True
    c, s = cno_pair(setup=setup)
    cno_auto_respond(s, lambda p, req: (200, [], b"x" * 100_000, None))
    a = c.request("GET", "/a")
    pump(c, s)
    assert len(c.body(a)) == 65535                     # both windows exhausted
    c.sent.clear()
    c.open_flow(0, 50_000)                             # connection only: a stays blocked
    pump(c, s)
    assert len(c.body(a)) == 65535
    assert {f.stream for f in c.sent.of(WINDOW_UPDATE)} == {0}
    b = c.request("GET", "/b")
    pump(c, s)
    assert len(c.body(b)) == 50_000                    # b used the connection credit
    credited = {a: 0, b: 0}
    for _ in range(20):
        for st in (a, b):
            n = len(c.body(st)) - credited[st]
            if n:
                c.open_flow(st, n)
                credited[st] += n
        pump(c, s)
    assert c.body(a) == b"x" * 100_000 and complete(c, a)
    assert c.body(b) == b"x" * 100_000 and complete(c, b)


def test_settings_change_pair():
    c, s = cno_pair()
    cno_auto_respond(s, echo)
    st = c.request("POST", "/before", [("x-h", "v" * 100)], b"1" * 50_000)
    pump(c, s)
    assert complete(c, st)
    n_c, n_s = len(c.of("settings")), len(s.of("settings"))
    s.update_settings(max_concurrent_streams=2, header_table_size=0, max_frame_size=65536,
                      initial_window_size=30_000)
    c.update_settings(header_table_size=128, max_frame_size=32768, initial_window_size=200_000)
    pump(c, s)
    assert len(c.of("settings")) == n_c + 1 and len(s.of("settings")) == n_s + 1
    assert c.remote_settings["max_concurrent_streams"] == 2
    assert c.remote_settings["header_table_size"] == 0
    assert c.remote_settings["max_frame_size"] == 65536
    assert s.remote_settings["max_frame_size"] == 32768
    assert s.local_settings["max_concurrent_streams"] == 2
    c.sent.clear()
    s.sent.clear()
    a = c.request("POST", "/a", [("x-h", "v" * 100)], b"2" * 100_000)
    b = c.request("POST", "/b", [("x-h", "v" * 100)], b"3" * 100_000)
    with pytest.raises(cno.errors.WouldBlock):
        c.request("GET", "/c")
    pump(c, s)
    assert complete(c, a) and complete(c, b)
    assert s.body(a) == b"2" * 100_000 and c.body(b) == b"3" * 100_000
    assert max(f.length for f in c.sent.of(DATA)) <= 30_000
    assert max(f.length for f in s.sent.of(DATA)) <= 32768
    d = c.request("GET", "/d")                         # slots are free again
    pump(c, s)
    assert complete(c, d)


# ----------------------------------------------------------------------------------------
# GOAWAY, EOF

def test_goaway_with_in_flight_streams():
    c, s = cno_pair()
    s1 = c.request("GET", "/1")
    s3 = c.request("POST", "/3", [], b"part", end=False)
    pump(c, s)
    s.shutdown()
    s5 = c.request("GET", "/5")                        # crosses the GOAWAY
    deliver(c, s)
    assert s.of("head", s5) == []
    deliver(s, c)
    end5 = c.end_of(s5)
    assert end5 is not None and end5[2] != 0
    assert c.end_of(s1) is None and c.end_of(s3) is None
    with pytest.raises(cno.errors.ConnectionClosed):
        c.request("GET", "/7")
    pump(c, s)
    s.respond(s1, 200, [], b"one")
    pump(c, s)
    assert complete(c, s1)
    assert s.of("close") == [] and c.of("close") == []
    c.send_body(s3, b"-rest", True)
    pump(c, s)
    s.respond(s3, 200, [], b"three")
    pump(c, s)
    assert complete(c, s3) and s.body(s3) == b"part-rest"
    assert s.of("close") == [("close",)] and c.of("close") == [("close",)]
    assert s.closed and c.closed


def test_connection_lost_ends_open_streams():
    c, s = cno_pair()
    a = c.request("GET", "/a")
    b = c.request("POST", "/b", [], b"x", end=False)
    pump(c, s)
    s.connection_lost()
    assert s.end_of(a) == ("end", a, CNO_RST_CANCEL, CNO_LOCAL)
    assert s.end_of(b) == ("end", b, CNO_RST_CANCEL, CNO_LOCAL)
    assert s.of("close") == [("close",)] and s.closed
    with pytest.raises(cno.errors.ConnectionClosed):
        s.respond(a, 200)
    c.connection_lost()
    assert c.end_of(a)[2:] == (CNO_RST_CANCEL, CNO_LOCAL)
    assert c.of("close") == [("close",)]


CLOSED_CALLS = {
    "write_head": lambda p: p.write_head(1, 200, "", "", [], True),
    "write_data": lambda p: p.write_data(1, b"x", True),
    "write_tail": lambda p: p.write_tail(1, None),
    "write_reset": lambda p: p.write_reset(1, CNO_RST_CANCEL),
    "write_ping": lambda p: p.write_ping(b"12345678"),
    "write_push": lambda p: p.write_push(1, "GET", "/", BASE),
    "open_flow": lambda p: p.open_flow(1, 10),
    "data_received": lambda p: p.data_received(b"\0\0\0\4\1\0\0\0\0"),  # a SETTINGS ACK
    "update_settings": lambda p: p.update_settings(max_concurrent_streams=5),
}


@pytest.mark.parametrize("call", sorted(CLOSED_CALLS))
def test_calls_on_closed_connection_raise(call):
    """docs/raw.md: ConnectionClosed for any call on a closed connection (closing
    calls, shutdown and connection_lost, are left out: idempotent is fine)."""
    c, s = cno_pair()
    c.request("GET", "/")
    pump(c, s)
    s.connection_lost()
    assert s.closed
    with pytest.raises(cno.errors.ConnectionClosed):
        CLOSED_CALLS[call](s)
    assert s.outbox == []


# ----------------------------------------------------------------------------------------
# PING, output coalescing, event lookup, frames, errors

def test_ping_pong():
    c, s = cno_pair()
    c.write_ping(b"\x00\x01\x02\x03\x04\x05\x06\x07")
    s.write_ping(bytearray(b"server!!"))
    pump(c, s)
    assert c.of("pong") == [("pong", b"\x00\x01\x02\x03\x04\x05\x06\x07")]
    assert s.of("pong") == [("pong", b"server!!")]
    assert c.sent.count(6) == 2 and s.sent.count(6) == 2   # a PING and an ACK each


def test_output_coalescing():
    """One on_writev per public call that writes anything, however many frames."""
    c = CnoPeer(server=False)
    s = CnoPeer(server=True)

    def calls(peer, fn, *args, **kwargs):
        before = peer.writev_calls
        fn(*args, **kwargs)
        return peer.writev_calls - before

    assert calls(c, c.connection_made, True) == 1
    assert calls(s, s.connection_made, True) == 1
    assert calls(s, s.receive, c.outbound()) == 1       # SETTINGS ACK
    assert calls(c, c.receive, s.outbound()) == 1
    assert calls(s, s.receive, c.outbound()) <= 1
    big = [("x-%d" % i, body_bytes(i, 1500).hex()) for i in range(20)]     # ~40 KB
    st = c.next_stream
    assert calls(c, c.write_head, st, 0, "POST", "/", BASE + big, False) == 1
    assert c.sent.count(CONTINUATION) == 0
    out = c.outbound()
    assert c.sent.count(CONTINUATION) >= 2
    assert calls(c, c.write_data, st, b"d" * 60_000, False) == 1          # 4 DATA frames
    assert len(c.outbox) == 1 and c.outbound() and c.sent.count(DATA) == 4
    assert calls(c, c.write_tail, st, [("x-t", "1")]) == 1
    assert calls(c, c.write_ping, b"12345678") == 1
    assert calls(c, c.update_settings, header_table_size=1024) == 1
    s.receive(out + c.outbound())
    # one data_received with 5 PINGs and 10 requests answered from the event handler
    s.handlers["head"] = lambda p, stream, *a: p.respond(stream, 200, [("x", "y")], b"r" * 100)
    burst = b"".join(bytes.fromhex("000008060000000000") + b"pingpong" for _ in range(5))
    for i in range(10):
        c.request("GET", "/%d" % i)
    burst += c.outbound()
    before = s.writev_calls
    s.receive(burst)
    assert s.writev_calls - before == 1
    out = s.outbound()
    c.receive(out)
    assert len([f for f in c.recv.frames if f.type == 6 and f.flags & 1]) == 5 + 1
    assert c.sent.count(RST_STREAM) == 0
    assert calls(c, c.write_reset, st, CNO_RST_CANCEL) == 1
    assert calls(s, s.shutdown) == 1
    # chunks are a list of bytes-like objects
    seen = []

    class Probe(CnoPeer):
        def on_writev(self, chunks):
            seen.append((type(chunks), {type(x) for x in chunks}))
            super().on_writev(chunks)

    p = Probe(server=False)
    p.connection_made(True)
    assert seen and seen[0][0] is list
    assert all(issubclass(t, (bytes, bytearray, memoryview)) for t in seen[0][1])


def test_subclass_defined_after_instantiation_gets_its_events():
    """libcno's binding cached the callbacks per class through inherited lookup: a
    subclass instantiated after its parent never had its own events called."""
    c0, s0 = cno_pair()                                 # CnoPeer instantiated first

    class Later(CnoPeer):
        def on_message_head(self, stream, code, method, path, headers):
            self.later = getattr(self, "later", []) + [(stream, method, path)]
            super().on_message_head(stream, code, method, path, headers)

    class LaterPush(CnoPeer):                          # defines an event CnoPeer does not
        def on_message_push(self, stream, parent, method, path, headers):
            self.pushes = getattr(self, "pushes", []) + [(stream, parent, path)]

    c, s = cno_pair(client_cls=LaterPush, server_cls=Later)
    assert c.local_settings["enable_push"] == 1
    st = c.request("GET", "/x")
    pump(c, s)
    assert s.later == [(st, "GET", "/x")]
    assert s.write_push(st, "GET", "/p", BASE) == 2
    pump(c, s)
    assert c.pushes == [(2, st, "/p")]
    # the parent's instances are unaffected
    st0 = c0.request("GET", "/y")
    pump(c0, s0)
    assert not hasattr(s0, "later") and s0.of("head", st0)
    assert c0.local_settings["enable_push"] == 0

    class Later2(Later):                               # overriding again
        def on_message_head(self, stream, code, method, path, headers):
            self.later2 = True

    c2, s2 = cno_pair(server_cls=Later2)
    c2.request("GET", "/z")
    pump(c2, s2)
    assert s2.later2 is True and not hasattr(s2, "later")


def _framed():
    frames_in, frames_out = [], []

    class Framed(CnoPeer):
        def on_frame(self, frame):
            frames_in.append((frame.type, frame.flags, frame.stream, bytes(frame.payload)))

        def on_frame_send(self, frame):
            frames_out.append((frame.type, frame.stream))

    return Framed, frames_in, frames_out


def test_on_frame_sees_headers_once_merged():
    """docs/raw.md: CONTINUATIONs already merged: the HEADERS is reported once, with the
    fragments appended and END_HEADERS set."""
    Framed, frames_in, frames_out = _framed()
    c, s = cno_pair(server_cls=Framed)
    big = [("x-%d" % i, body_bytes(i, 1500).hex()) for i in range(20)]
    st = c.request("GET", "/", big)
    pump(c, s)
    assert c.sent.count(CONTINUATION) >= 2
    headers = [f for f in frames_in if f[0] == HEADERS]
    assert CONTINUATION not in [f[0] for f in frames_in]
    assert len(headers) == 1, [(f[1], len(f[3])) for f in headers]
    assert headers[0][1] & 0x4 and headers[0][2] == st
    assert len(headers[0][3]) == sum(f.length for f in c.sent.frames if f.stream == st)
    assert s.of("head", st)
    assert (4, 0) in frames_out                        # the server's own SETTINGS / ACK


def test_write_frame_extension_and_priority():
    Framed, frames_in, frames_out = _framed()
    c, s = cno_pair(server_cls=Framed)
    st = c.request("GET", "/")
    c.write_frame(0xBB, 0x3, 0, b"extension")
    c.write_frame(cno.raw.CNO_FRAME_PRIORITY, 0, st + 2, bytes.fromhex("0000000010"))
    pump(c, s)
    assert (0xBB, 0x3, 0, b"extension") in frames_in
    assert (2, 0, st + 2, bytes.fromhex("0000000010")) in frames_in
    assert not s.closed and s.of("head", st)
    with pytest.raises(cno.errors.UsageError):
        c.write_frame(cno.raw.CNO_FRAME_DATA, 0, st, b"x")
    with pytest.raises(cno.errors.UsageError):
        c.write_frame(0xBB, 0, 0, b"x" * 16385)          # over the peer's max frame size
    f = cno.raw.Frame(1, 4, 3, b"abc")
    assert (f.type, f.flags, f.stream, bytes(f.payload)) == (1, 4, 3, b"abc")


class Boom(Exception):
    pass


def test_exception_in_event_reaches_caller_unchanged():
    c, s = cno_pair()

    def explode(p, *args):
        raise Boom("from on_message_head")

    s.handlers["head"] = explode
    c.request("GET", "/")
    with pytest.raises(Boom) as info:
        deliver(c, s)
    assert str(info.value) == "from on_message_head"


def test_api_errors():
    c, s = cno_pair()
    with pytest.raises(cno.errors.InvalidStream):
        c.write_data(99, b"x", False)                  # unknown stream
    with pytest.raises(cno.errors.InvalidStream):
        s.write_head(1, 200, "", "", [], True)          # no such request
    st = c.request("GET", "/")                          # final: closed for writing
    with pytest.raises(cno.errors.InvalidStream):
        c.write_data(st, b"x", True)
    with pytest.raises(cno.errors.UsageError):
        c.write_head(c.next_stream, 0, "GET", "/", BASE + [("X-Upper", "1")], True)
    with pytest.raises(cno.errors.UsageError):
        c.write_push(st, "GET", "/", BASE)              # server only
    with pytest.raises(cno.errors.UsageError):
        c.write_ping(b"1234567")
    with pytest.raises(cno.errors.UsageError):
        c.update_settings(max_frame_size=100)          # RFC 9113 6.5.2: >= 16384
    with pytest.raises(cno.errors.UsageError):
        c.update_settings(enable_push=2)
    assert issubclass(cno.errors.UsageError, ValueError)
    c.write_reset(12345, CNO_RST_CANCEL)               # unknown stream: no-op
    pump(c, s)
    assert c.sent.count(RST_STREAM) == 0
    assert not c.closed and not s.closed


# ----------------------------------------------------------------------------------------
# Incremental parsing: the same conversation delivered whole, in random pieces, byte by byte

def _scenario(split):
    c, s = cno_pair(client_cls=CnoPushPeer)
    big = [("x-%d" % i, body_bytes(i, 1000).hex()) for i in range(24)]        # CONTINUATIONs

    def responder(p, req):
        if req.path == "/push":
            p.write_push(req.stream, "GET", "/pushed", BASE)
        return 200, [("x-r", req.path)] + (big if req.path == "/big" else []), \
            body_bytes(len(req.path), 70_000 if req.path != "/pushed" else 10), [("x-t", "1")]

    cno_auto_respond(s, responder)
    streams = [c.request("POST", "/big", big, body_bytes(1, 100_000), [("x-q", "2")]),
               c.request("GET", "/push"),
               c.request("POST", "/", [], b"", [])]
    c.write_ping(b"pingping")
    pump(c, s, split=split)
    return c, s


def _log(peer):
    """Events per stream, in order (streams may finish in another order), and bodies."""
    by_stream = {}
    for e in peer.events:
        if e[0] not in ("data", "flow"):
            by_stream.setdefault(e[1] if len(e) > 1 else 0, []).append(e)
    return by_stream, {k: bytes(v) for k, v in peer.bodies.items()}


@pytest.mark.parametrize("how", ["pieces-1", "pieces-2", "pieces-3", "one-byte"])
def test_incremental_delivery_same_events(how):
    c0, s0 = _scenario(None)
    assert complete(c0, 1) and complete(c0, 3) and complete(c0, 2)
    split = one_byte if how == "one-byte" else splitter(int(how[-1]), 40)
    c1, s1 = _scenario(split)
    assert _log(c1) == _log(c0)
    assert _log(s1) == _log(s0)


# ----------------------------------------------------------------------------------------
# Re-entrancy: event handlers that reset, shut down, write

def test_reset_from_on_message_data_stops_delivery():
    c, s = cno_pair()
    cno_auto_respond(s, lambda p, req: (200, [], body_bytes(8, 200_000), None))
    got = []

    def on_data(p, stream, data):
        got.append((stream, len(data)))
        p.write_reset(stream, CNO_RST_CANCEL)

    c.handlers["data"] = on_data
    st = c.request("GET", "/")
    other = c.request("GET", "/other")
    pump(c, s)
    assert [g for g in got if g[0] == st] == [(st, 16384)]   # nothing after the reset
    assert c.end_of(st) == ("end", st, CNO_RST_CANCEL, CNO_LOCAL)
    assert s.end_of(st) == ("end", st, CNO_RST_CANCEL, CNO_REMOTE)
    assert c.end_of(other) is not None                  # reset by the same handler
    assert not c.closed and not s.closed
    c.handlers.clear()
    st3 = c.request("GET", "/3")
    pump(c, s)
    assert complete(c, st3) and c.body(st3) == body_bytes(8, 200_000)


def test_shutdown_from_on_message_head_mid_buffer():
    """The server shuts down while handling the first of three requests that arrived in
    one buffer: each stream is either served to the end or refused, and both sides agree."""
    c, s = cno_pair()
    cno_auto_respond(s, lambda p, req: (200, [], b"ok", None))
    s.handlers["start"] = lambda p, stream: p.shutdown() if stream == 1 else None
    streams = [c.request("GET", "/%d" % i) for i in range(3)]
    pump(c, s)
    served = [st for st in streams if s.of("head", st)]
    assert served and served == streams[:len(served)]
    for st in streams:
        if st in served:
            assert complete(c, st) and c.body(st) == b"ok"
        else:
            assert c.end_of(st) is not None and c.end_of(st)[2] != 0 and not c.of("head", st)
    assert s.of("close") == [("close",)] and c.of("close") == [("close",)]


def test_client_shutdown_lets_its_requests_finish():
    c, s = cno_pair()
    st = c.request("POST", "/", [], b"x" * 100_000)
    deliver(c, s)
    c.shutdown()
    pump(c, s)
    assert s.of("head", st)
    s.respond(st, 200, [], b"y" * 100_000)
    pump(c, s)
    assert complete(c, st) and c.body(st) == b"y" * 100_000
    assert c.of("close") == [("close",)]


# ----------------------------------------------------------------------------------------
# Abuse budgets (docs/raw.md limits)

PING = bytes.fromhex("000008060000000000") + b"pingpong"


@pytest.mark.parametrize("when", ["before_start", "after_start"])
def test_control_frame_budget_only_while_writing_paused(when):
    """PING/SETTINGS floods count only while writing_paused (the peer does not read our
    replies). The limits are attributes: set before or after connection_made."""
    def setup(c, s):
        if when == "before_start":
            s.control_frame_budget = 50
    c, s = cno_pair(setup=setup)
    if when == "after_start":
        s.control_frame_budget = 50
    assert s.control_frame_budget == 50
    s.receive(PING * 200)                              # reading our replies: no limit
    assert not s.closed
    s.outbound()
    s.writing_paused = True
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(PING * 60)
    assert s.closed


def test_empty_frame_budget():
    c, s = cno_pair()
    st = c.request("POST", "/", [], b"", end=False)
    deliver(c, s)
    empty = bytes.fromhex("000000000000000001")        # empty DATA on stream 1
    one = bytes.fromhex("000001000000000001") + b"x"
    s.receive((empty * 50 + one * 50) * 5)             # things that carry data earn budget
    assert not s.closed
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(empty * 101)


def test_continuation_flood():
    c, s = cno_pair()
    block = bytes([0x82, 0x84, 0x87, 0x01, 11]) + AUTHORITY.encode()
    head = bytes.fromhex("000001") + b"\x01\x00" + (1).to_bytes(4, "big") + block[:1]
    conts = b"".join(bytes.fromhex("000001") + b"\x09\x00" + (1).to_bytes(4, "big") + bytes([b])
                     for b in block[1:])
    s.receive(head + conts[:-10] + bytes.fromhex("000001") + b"\x09\x04" + (1).to_bytes(4, "big") +
              conts[-1:])
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(bytes.fromhex("000001") + b"\x01\x00" + (3).to_bytes(4, "big") + b"\x82" +
                  (bytes.fromhex("000000") + b"\x09\x00" + (3).to_bytes(4, "big")) * 65)


def _low_budget(attr, value):
    def setup(c, s):
        setattr(s, attr, value)
    return setup


def test_lowered_empty_frame_budget_is_enforced():
    """Limits are attributes: one lowered before connection_made is the one enforced."""
    c, s = cno_pair(setup=_low_budget("empty_frame_budget", 5))
    assert s.empty_frame_budget == 5
    st = c.request("POST", "/", [], b"", end=False)
    deliver(c, s)
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(bytes.fromhex("000000000000000001") * 6)


def test_lowered_reset_budget_is_enforced():
    c, s = cno_pair(setup=_low_budget("reset_budget", 5))
    assert s.reset_budget == 5
    with pytest.raises(cno.errors.EnhanceYourCalm):
        for i in range(6):
            st = c.request("GET", "/", end=False)
            c.write_reset(st, CNO_RST_CANCEL)
            deliver(c, s)


def test_lowered_control_frame_budget_is_enforced_without_other_traffic():
    c, s = cno_pair()
    s.control_frame_budget = 5
    s.writing_paused = True
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(PING * 6)


def test_lowered_header_limits_are_enforced():
    """max_continuations and max_header_block_size, lowered, are enforced (EnhanceYourCalm)."""
    block = bytes([0x82, 0x84, 0x87, 0x01, 11]) + AUTHORITY.encode()

    def headers_in_pieces(stream, n_pieces):
        step = -(-len(block) // n_pieces)
        pieces = [block[i:i + step] for i in range(0, len(block), step)]
        out = b""
        for k, piece in enumerate(pieces):
            type_ = 1 if k == 0 else 9
            flags = (4 if k == len(pieces) - 1 else 0) | (1 if k == 0 else 0)
            out += len(piece).to_bytes(3, "big") + bytes([type_, flags]) + stream.to_bytes(4, "big") + piece
        return out

    c, s = cno_pair(setup=_low_budget("max_continuations", 2))
    s.receive(headers_in_pieces(1, 3))                 # HEADERS + 2 CONTINUATIONs: fine
    assert s.of("head", 1)
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(headers_in_pieces(3, 4))             # HEADERS + 3 CONTINUATIONs
    c, s = cno_pair(setup=_low_budget("max_header_block_size", 10))
    with pytest.raises(cno.errors.EnhanceYourCalm):
        s.receive(headers_in_pieces(1, 1))             # 16 bytes


@pytest.mark.parametrize("frame_hex", ["000000000100000001", "00000100090000000100",
                                       "000004000900000001030000" + "00"],
                         ids=["empty", "padding-only", "padding-only-3"])
def test_data_frame_without_data_ending_the_input_ends_the_message(frame_hex):
    """A DATA frame with END_STREAM and no data (empty, or only padding), last in the
    bytes handed to data_received: the message ends now, not when more bytes come."""
    c, s = cno_pair()
    c.request("POST", "/", [], b"", end=False)
    deliver(c, s)
    s.receive(bytes.fromhex(frame_hex))
    assert s.of("tail", 1) == [("tail", 1, None)]


def test_lower_initial_window_with_credit_held_back():
    """The receiver lowers INITIAL_WINDOW_SIZE while it holds back part of a stream's
    credit (automatic batching): the sender's window goes negative and the credit must
    still reach it, or the stream stalls forever."""
    c, s = cno_pair()
    st = c.request("POST", "/", [], b"", end=False)
    pump(c, s)
    c.send_body(st, b"x" * 40_000, False)
    pump(c, s)
    assert len(s.body(st)) == 40_000
    s.update_settings(initial_window_size=1000)
    pump(c, s)
    c.send_body(st, b"y" * 20_000, True)
    pump(c, s)
    assert s.body(st) == b"x" * 40_000 + b"y" * 20_000
    assert s.of("tail", st) == [("tail", st, None)]


def test_bytes_headers_and_open_streams():
    seen = []

    class Raw(CnoPeer):
        def on_message_head(self, stream, code, method, path, headers):
            seen.append((method, path, headers))
            super().on_message_head(stream, code, method, path, headers)

    def setup(c, s):
        s.bytes_headers = True
    c, s = cno_pair(server_cls=Raw, setup=setup)
    assert s.bytes_headers and not c.bytes_headers
    a = c.request("GET", "/a", [("x-v", "caf\xe9")])
    b = c.request("POST", "/b", [], b"x", end=False)
    pump(c, s)
    assert seen[0] == (b"GET", b"/a", [(b":scheme", b"https"), (b":authority", b"example.com"),
                                       (b"x-v", b"caf\xe9")])
    assert sorted(s.open_streams) == [a, b] and sorted(c.open_streams) == [a, b]
    s.respond(a, 200)
    pump(c, s)
    assert list(s.open_streams) == [b] and list(c.open_streams) == [b]
