"""cno.raw.Connection against python-hyper's h2, in memory, in both roles.

"cno_client": a cno client talking to an h2 server; "cno_server": an h2 client talking to
a cno server. The harness is tests/h2_pair.py. Each test checks docs/raw.md's contract
(and RFC 9113) from the wire's other end, and several pin known libcno defects that cno
must not repeat (see /work/shared/reference/libcno-semantics.md).
"""
import random
import time

import h2.events
import h2.exceptions
import pytest
from h2.settings import SettingCodes

import cno.errors
import cno.raw
from cno.raw import (
    CNO_LOCAL,
    CNO_REMOTE,
    CNO_RST_CANCEL,
    CNO_RST_INTERNAL_ERROR,
    CNO_RST_PROTOCOL_ERROR,
)
from h2_pair import (
    AUTHORITY,
    DATA,
    HEADERS,
    RST_STREAM,
    SCHEME,
    WINDOW_UPDATE,
    CnoPeer,
    CnoPushPeer,
    body_bytes,
    cno_auto_respond,
    cno_h2,
    deliver,
    h2_auto_respond,
    one_byte,
    priority,
    pseudo,
    pump,
    response_headers,
    rst_stream,
    splitter,
    window_update,
)

ROLES = ["cno_client", "cno_server"]


class Pair:
    """A connected cno/h2 pair; `client`/`server` are the peers by role."""

    def __init__(self, role, cno_cls=None, h2_kw=None, cno_kw=None, setup=None):
        self.role = role
        side = "client" if role == "cno_client" else "server"
        self.cno, self.h2 = cno_h2(side, cno_cls, h2_kw, cno_kw, setup)
        if role == "cno_client":
            self.client, self.server = self.cno, self.h2
        else:
            self.client, self.server = self.h2, self.cno

    def pump(self, **kw):
        return pump(self.client, self.server, **kw)

    def clear_logs(self):
        for p in (self.cno, self.h2):
            p.sent.clear()
            p.recv.clear()


def auto_respond(server, responder):
    """Answer every complete request at the server, whichever library it is."""
    if isinstance(server, CnoPeer):
        cno_auto_respond(server, responder, on="tail")
    else:
        h2_auto_respond(server, responder, on="ended")


def response(client, stream):
    """(final code, regular headers, body, trailers, complete, reset) of a response as
    the client saw it."""
    if isinstance(client, CnoPeer):
        heads = [e for e in client.of("head", stream) if e[2] >= 200]
        code, headers = (heads[-1][2], heads[-1][5]) if heads else (None, None)
        tails = client.of("tail", stream)
        end = client.end_of(stream)
        complete = bool(tails) and end is not None and end[2] == 0
        reset = end[2] if end is not None and end[2] else None
        return code, headers, client.body(stream), tails[-1][2] if tails else None, complete, reset
    resp = client.of("response", stream)
    code = int(pseudo(resp[-1][2])[":status"]) if resp else None
    headers = response_headers(resp[-1][2]) if resp else None
    tr = client.of("trailers", stream)
    resets = client.of("reset", stream)
    return (code, headers, client.body(stream), tr[-1][2] if tr else None,
            bool(client.of("ended", stream)), resets[-1][2] if resets else None)


def check_request_head(server, stream, method, path, regular):
    """The server saw this request head: for cno, :authority and :scheme at the front and
    :method/:path moved out; for h2, the four pseudo-headers."""
    if isinstance(server, CnoPeer):
        heads = server.of("head", stream)
        assert len(heads) == 1, heads
        _, _, code, m, p, headers = heads[0]
        assert (code, m, p) == (0, method, path)
        front = headers[:2]
        assert sorted(front) == sorted([(":authority", AUTHORITY), (":scheme", SCHEME)]), headers
        assert headers[2:] == regular
    else:
        (ev,) = server.of("request", stream)
        headers = ev[2]
        assert pseudo(headers) == {":method": method, ":path": path, ":scheme": SCHEME,
                                   ":authority": AUTHORITY}
        assert response_headers(headers) == regular


def cno_events_for(peer, stream):
    return [e for e in peer.events if len(e) > 1 and e[1] == stream and e[0] != "flow"]


# ----------------------------------------------------------------------------------------
# Handshake

@pytest.mark.parametrize("role", ROLES)
def test_handshake_settings(role):
    p = Pair(role)
    # Our defaults reached h2 (docs/raw.md: max_concurrent_streams=100,
    # max_header_list_size=65536, everything else the RFC's).
    rs = p.h2.conn.remote_settings
    assert rs.max_concurrent_streams == 100
    assert rs.max_header_list_size == 65536
    assert rs.initial_window_size == 65535
    assert rs.max_frame_size == 16384
    assert rs.header_table_size == 4096
    # h2's settings reached cno, were applied and acknowledged.
    assert p.cno.of("settings") == [("settings",)]
    assert p.cno.remote_settings["max_concurrent_streams"] == p.h2.conn.local_settings.max_concurrent_streams
    assert p.cno.local_settings["max_concurrent_streams"] == 100
    assert p.cno.is_http2
    assert p.cno.is_client == (role == "cno_client")
    assert p.cno.is_server == (role == "cno_server")
    assert not p.cno.closed
    assert p.h2.of("settings_ack")                      # cno acknowledged h2's SETTINGS
    assert p.cno.recv.count(4) >= 2                     # h2's SETTINGS and its ACK of ours


# ----------------------------------------------------------------------------------------
# 1,000 requests on one connection

def _sizes(seed, n):
    """Mostly small, a few big, up to 1 MiB; the edges pinned at fixed positions."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.008:
            out.append(rng.randint(256 * 1024, 1 << 20))
        elif r < 0.04:
            out.append(rng.randint(16 * 1024, 256 * 1024))
        elif r < 0.35:
            out.append(rng.randint(1, 16 * 1024))
        else:
            out.append(rng.randint(0, 300))
    edges = [0, 1, 16383, 16384, 16385, 65535, 65536, 65537, 1 << 20, (1 << 20) - 1]
    for k, size in enumerate(edges):
        out[k * 97 + 3] = size
    return out


@pytest.mark.parametrize("role", ROLES)
def test_thousand_requests_one_connection(role):
    n, batch = 1000, 100
    req_sizes = _sizes(1, n)
    resp_sizes = _sizes(2, n)
    p = Pair(role)
    for peer in (p.cno, p.h2):
        peer.keep_data_events = False
    client, server = p.client, p.server

    def req_headers(i):
        h = [("x-req", str(i)), ("user-agent", "cno-interop/1.0")]
        if i % 3:
            h.append(("content-length", str(req_sizes[i])))
        if i % 7 == 0:
            h.append(("x-long", "v" * (i % 500 + 1)))
        return h

    def resp_headers(i):
        h = [("content-type", "application/octet-stream"), ("x-resp", str(i))]
        if i % 2:
            h.insert(0, ("content-length", str(resp_sizes[i])))
        return h

    def responder(peer, req):
        i = int(req.path.rsplit("/", 1)[1])
        return 200, resp_headers(i), body_bytes(2 * i + 1, resp_sizes[i]), None

    auto_respond(server, responder)
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        streams = {}
        for i in range(start, start + batch):
            s = client.request("POST", "/item/%d" % i, req_headers(i), body_bytes(2 * i, req_sizes[i]))
            streams[s] = i
        p.pump()
        for s, i in streams.items():
            check_request_head(server, s, "POST", "/item/%d" % i, req_headers(i))
            got = server.body(s)
            assert len(got) == req_sizes[i], (i, s)
            assert got == body_bytes(2 * i, req_sizes[i]), (i, s)
            code, headers, body, trailers, complete, reset = response(client, s)
            assert (code, complete, reset, trailers) == (200, True, None, None), (i, s)
            assert headers == resp_headers(i), (i, s)
            assert len(body) == resp_sizes[i] and body == body_bytes(2 * i + 1, resp_sizes[i]), (i, s)
        if isinstance(p.cno, CnoPeer):
            ends = {e[1]: e for e in p.cno.of("end")}
            assert {s: ends[s][2] for s in streams} == {s: 0 for s in streams}
        for peer in (p.cno, p.h2):
            peer.events.clear()
            peer.bodies.clear()
            peer.sent.clear()
            peer.recv.clear()
    assert not p.cno.closed
    assert p.cno.next_stream == (2 * n + 1 if role == "cno_client" else 2)
    elapsed = time.perf_counter() - t0
    print("%s: 1000 requests in %.2f s" % (role, elapsed))


@pytest.mark.parametrize("role", ROLES)
def test_full_duplex_response_before_request_body(role):
    """The server answers at the request's head, while the request body is still coming."""
    p = Pair(role)
    req_body, resp_body = body_bytes(10, 300_000), body_bytes(11, 200_000)
    if role == "cno_server":
        cno_auto_respond(p.server, lambda peer, req: (200, [("x-early", "1")], resp_body, None), on="head")
    else:
        h2_auto_respond(p.server, lambda peer, req: (200, [("x-early", "1")], resp_body, None), on="request")
    s = p.client.request("PUT", "/up", [("x-a", "1")], req_body)
    p.pump()
    assert p.server.body(s) == req_body
    code, headers, body, trailers, complete, reset = response(p.client, s)
    assert (code, headers, complete, reset) == (200, [("x-early", "1")], True, None)
    assert body == resp_body
    # the cno side ended the stream normally once both directions were done
    assert p.cno.end_of(s)[2] == 0


# ----------------------------------------------------------------------------------------
# Trailers

@pytest.mark.parametrize("role", ROLES)
def test_trailers_both_ways(role):
    p = Pair(role)
    req_tr = [("x-checksum", "abc123"), ("x-count", "3")]
    resp_tr = [("grpc-status", "0"), ("grpc-message", "ok\tfine")]

    def responder(peer, req):
        return 200, [("content-type", "application/grpc")], b"R" * 70_000, resp_tr

    auto_respond(p.server, responder)
    s1 = p.client.request("POST", "/t", [("te", "trailers")], b"Q" * 100_000, trailers=req_tr)
    s2 = p.client.request("POST", "/t2", [], b"", trailers=[("x-only", "trailers")])  # no body
    p.pump()
    for s, tr, size in ((s1, req_tr, 100_000), (s2, [("x-only", "trailers")], 0)):
        req = p.server.request_of(s)
        assert req.trailers == tr
        assert req.body == b"Q" * size
        code, headers, body, trailers, complete, reset = response(p.client, s)
        assert (code, complete, reset) == (200, True, None)
        assert trailers == resp_tr
        assert body == b"R" * 70_000
    # On the cno side the tail event carries the trailers, once, after the data.
    kinds = [e[0] for e in cno_events_for(p.cno, s1) if e[0] in ("head", "data", "tail", "end")]
    assert kinds[-2:] == ["tail", "end"] and kinds.count("tail") == 1


@pytest.mark.parametrize("role", ROLES)
def test_no_trailers_tail_is_none(role):
    """write_tail(stream, None) / an END_STREAM without trailers: the receiver's tail has
    no trailers (h2 gets no TrailersReceived; cno's on_message_tail gets None)."""
    p = Pair(role)
    if role == "cno_client":
        h2_auto_respond(p.h2, lambda peer, req: (204, [], b"", None))
        s = p.cno.next_stream
        p.cno.write_head(s, 0, "POST", "/", [(":scheme", SCHEME), (":authority", AUTHORITY)], False)
        assert p.cno.write_data(s, b"abc", False) == 3
        p.cno.write_tail(s, None)
        p.pump()
        assert p.h2.body(s) == b"abc"
        assert p.h2.of("trailers") == [] and p.h2.of("ended", s)
        assert p.cno.of("tail", s) == [("tail", s, None)]
    else:
        s = p.h2.request("POST", "/", [], b"abc")
        p.pump()
        assert p.cno.of("tail", s) == [("tail", s, None)]
        p.cno.write_head(s, 200, "", "", [], False)
        p.cno.write_data(s, b"xyz", False)
        p.cno.write_tail(s, [])
        p.pump()
        assert p.h2.body(s) == b"xyz" and p.h2.of("ended", s) and not p.h2.of("trailers")
    assert p.cno.end_of(s)[2] == 0


# ----------------------------------------------------------------------------------------
# Resets

def test_h2_server_resets_mid_body():
    """h2 resets a stream while both bodies are in flight: cno fires
    on_stream_end(stream, CANCEL, CNO_REMOTE), no tail; writes to it raise InvalidStream;
    cno's DATA that crossed the RST and h2's answer to it do not hurt the connection."""
    p = Pair("cno_client", h2_kw={"auto_ack": False})
    p.h2.handlers["request"] = lambda h, sid, hdrs: h.respond(sid, 200, [], body_bytes(2, 20_000), end=False)
    s = p.cno.request("POST", "/upload", [], body_bytes(1, 300_000))
    p.pump()
    assert len(p.h2.body(s)) == 65535                   # the upload stalls at the window
    assert [e[0] for e in p.cno.of("head", s)] == ["head"]
    assert p.cno.body(s) == body_bytes(2, 20_000)
    # h2 credits 30000 bytes: cno writes more (it cannot know about the coming RST).
    p.h2.conn.acknowledge_received_data(65535, s)
    deliver(p.h2, p.cno)
    p.cno.flush()
    in_flight = p.cno.outbound()
    assert in_flight
    p.h2.conn.reset_stream(s, error_code=CNO_RST_CANCEL)
    deliver(p.h2, p.cno)
    assert p.cno.end_of(s) == ("end", s, CNO_RST_CANCEL, CNO_REMOTE)
    assert p.cno.of("tail", s) == []
    assert s not in p.cno.pending
    p.h2.receive(in_flight)                            # DATA after h2's RST: h2 copes
    p.h2.auto_ack = True
    p.pump()
    assert p.cno.end_of(s) == ("end", s, CNO_RST_CANCEL, CNO_REMOTE)   # still one end
    with pytest.raises(cno.errors.InvalidStream):
        p.cno.write_data(s, b"x", False)
    with pytest.raises(cno.errors.InvalidStream):
        p.cno.write_tail(s, None)
    # The connection is fine.
    h2_auto_respond(p.h2, lambda peer, req: (200, [("x-ok", "1")], b"fine", None))
    p.h2.handlers.pop("request")
    s2 = p.cno.request("POST", "/again", [], b"y" * 1000)
    p.pump()
    assert response(p.cno, s2)[:5] == (200, [("x-ok", "1")], b"fine", None, True)
    assert not p.cno.closed


def test_h2_client_resets_mid_body():
    p = Pair("cno_server")
    p.cno.handlers["head"] = lambda c, sid, *a: c.respond(sid, 200, [], body_bytes(3, 20_000), end=False)
    s = p.h2.request("POST", "/upload", [], b"", end=False)
    p.h2.send_now(s, body_bytes(4, 30_000))
    p.pump()
    assert p.cno.body(s) == body_bytes(4, 30_000)
    assert p.h2.body(s) == body_bytes(3, 20_000)
    p.cno.write_data(s, b"z" * 10_000, False)          # crosses the RST on the wire
    in_flight = p.cno.outbound()
    p.h2.conn.reset_stream(s, error_code=CNO_RST_CANCEL)
    deliver(p.h2, p.cno)
    assert p.cno.end_of(s) == ("end", s, CNO_RST_CANCEL, CNO_REMOTE)
    assert p.cno.of("tail", s) == []
    p.h2.receive(in_flight)
    p.pump()
    with pytest.raises(cno.errors.InvalidStream):
        p.cno.write_data(s, b"x", True)
    p.cno.handlers.pop("head")
    cno_auto_respond(p.cno, lambda c, req: (200, [], req.body[::-1], None))
    s2 = p.h2.request("POST", "/again", [], b"abc" * 40_000)   # the connection window is fine too
    p.pump()
    assert response(p.h2, s2)[:5] == (200, [], b"cba" * 40_000, None, True)


@pytest.mark.parametrize("role", ROLES)
def test_cno_write_reset_with_late_frames(role):
    """cno resets a stream the peer is still sending on: h2 gets StreamReset with the
    code, cno's on_stream_end(stream, code, CNO_LOCAL) fires once, and h2's DATA /
    WINDOW_UPDATE that were already in flight are ignored (and credited)."""
    code = CNO_RST_CANCEL if role == "cno_client" else CNO_RST_INTERNAL_ERROR
    p = Pair(role)
    if role == "cno_client":
        p.h2.handlers["request"] = lambda h, sid, hdrs: h.respond(sid, 200, [], b"a" * 30_000, end=False)
        s = p.cno.request("GET", "/big")
        p.pump()
        assert p.cno.body(s) == b"a" * 30_000
        p.cno.write_reset(s, code)
        p.h2.send_now(s, b"b" * 30_000)          # in flight when cno reset
    else:
        p.cno.handlers["head"] = lambda c, sid, *a: c.respond(sid, 200, [], b"r" * 40_000, end=False)
        s = p.h2.request("POST", "/up", [], b"", end=False)
        p.h2.send_now(s, b"a" * 30_000)
        p.pump()
        assert p.cno.body(s) == b"a" * 30_000 and p.h2.body(s) == b"r" * 40_000
        p.cno.write_reset(s, code)
        p.h2.send_now(s, b"b" * 30_000)
        p.h2.conn.increment_flow_control_window(20_000, stream_id=s)
    assert p.cno.end_of(s) == ("end", s, code, CNO_LOCAL)
    deliver(p.h2, p.cno)                               # late frames: ignored
    assert p.cno.body(s) == b"a" * 30_000
    assert p.cno.of("tail", s) == []
    deliver(p.cno, p.h2)
    assert p.h2.of("reset", s) == [("reset", s, code, True)]
    # A second reset of a closed stream is a no-op (docs/raw.md).
    before = p.cno.sent.count(RST_STREAM)
    p.cno.write_reset(s, code)
    p.pump()
    assert p.cno.sent.count(RST_STREAM) == before
    # Raw late frames on the reset stream: WINDOW_UPDATE, RST_STREAM, PRIORITY.
    p.cno.receive(window_update(s, 1000) + rst_stream(s, CNO_RST_CANCEL) + priority(s))
    assert p.cno.end_of(s) == ("end", s, code, CNO_LOCAL)
    # The connection still works, and its window was not eaten by the discarded DATA.
    auto_respond(p.server, lambda peer, req: (200, [], req.body, None))
    if role == "cno_client":
        p.h2.handlers.pop("request")
    else:
        p.cno.handlers.pop("head")
    s2 = p.client.request("POST", "/echo", [], body_bytes(5, 150_000))
    p.pump()
    assert response(p.client, s2)[:5] == (200, [], body_bytes(5, 150_000), None, True)
    assert not p.cno.closed


@pytest.mark.parametrize("role", ROLES)
def test_late_frames_on_long_closed_streams(role):
    """WINDOW_UPDATE, RST_STREAM and PRIORITY on a stream that closed 20 streams ago are
    ignored (libcno remembered only the last 10 and killed the connection)."""
    p = Pair(role)
    auto_respond(p.server, lambda peer, req: (200, [], b"ok", None))
    streams = [p.client.request("GET", "/%d" % i) for i in range(25)]
    p.pump()
    assert all(response(p.client, s)[4] for s in streams)
    first = streams[0]
    before = len(p.cno.events)
    p.cno.receive(window_update(first, 100))
    p.cno.receive(rst_stream(first, CNO_RST_CANCEL))
    p.cno.receive(priority(first, 0, 200))
    p.cno.receive(window_update(streams[12], 5) + rst_stream(streams[20], 0))
    assert [e for e in p.cno.events[before:] if e[0] != "flow"] == []
    assert not p.cno.closed
    s = p.client.request("POST", "/after", [], b"x" * 70_000)
    p.pump()
    assert response(p.client, s)[4]


# ----------------------------------------------------------------------------------------
# Server push

def test_cno_server_push_to_h2_client():
    p = Pair("cno_server")
    promised = []

    def responder(c, req):
        if req.path == "/":
            hdrs = [(":scheme", SCHEME), (":authority", AUTHORITY), ("x-push", "1")]
            promised.append(c.write_push(req.stream, "GET", "/style.css", hdrs))
            promised.append(c.write_push(req.stream, "GET", "/app.js", hdrs))
            return 200, [("content-type", "text/html")], b"<html>" * 1000, None
        return 200, [("content-type", "text/plain")], ("pushed " + req.path).encode() * 5000, None

    cno_auto_respond(p.cno, responder)
    s = p.h2.request("GET", "/")
    p.pump()
    assert promised == [2, 4]
    assert p.cno.next_stream == 6
    pushes = p.h2.of("push")
    assert [(e[1], e[2]) for e in pushes] == [(2, s), (4, s)]
    for (_, pid, parent, headers), path in zip(pushes, ("/style.css", "/app.js")):
        assert pseudo(headers) == {":method": "GET", ":path": path, ":scheme": SCHEME,
                                   ":authority": AUTHORITY}
        assert response_headers(headers) == [("x-push", "1")]
        code, rh, body, tr, complete, reset = response(p.h2, pid)
        assert (code, rh, complete, reset) == (200, [("content-type", "text/plain")], True, None)
        assert body == ("pushed " + path).encode() * 5000
    assert response(p.h2, s)[2] == b"<html>" * 1000
    # The server saw the pushed request as a request of its own.
    for pid, path in zip(promised, ("/style.css", "/app.js")):
        assert p.cno.of("start", pid) == [("start", pid)]
        check_request_head(p.cno, pid, "GET", path, [("x-push", "1")])
        assert p.cno.of("tail", pid) == [("tail", pid, None)]
        assert p.cno.end_of(pid)[2] == 0


def test_cno_server_push_reset_by_h2_client():
    p = Pair("cno_server")
    state = {}

    def responder(c, req):
        if req.path == "/":
            state["pid"] = c.write_push(req.stream, "GET", "/huge",
                                        [(":scheme", SCHEME), (":authority", AUTHORITY)])
            return 200, [], b"main", None
        return 200, [], b"H" * 500_000, None

    cno_auto_respond(p.cno, responder)
    p.h2.handlers["push"] = lambda h, pid, parent, hdrs: h.conn.reset_stream(pid, CNO_RST_CANCEL)
    s = p.h2.request("GET", "/")
    p.pump()
    pid = state["pid"]
    assert pid == 2
    assert p.cno.end_of(pid) == ("end", pid, CNO_RST_CANCEL, CNO_REMOTE)
    assert response(p.h2, s)[2:5] == (b"main", None, True)
    assert not p.cno.closed and pid not in p.cno.pending


def test_h2_server_push_to_cno_client():
    p = Pair("cno_client", cno_cls=CnoPushPeer)

    def on_request(h, sid, headers):
        pid = h.push(sid, "GET", "/pushed.js", [("x-p", "1")])
        h.respond(pid, 200, [("content-length", "5")], b"hello")
        h.respond(sid, 200, [], b"index")

    p.h2.handlers["request"] = on_request
    s = p.cno.request("GET", "/")
    p.pump()
    pushes = p.cno.of("push")
    assert len(pushes) == 1
    _, pid, parent, method, path, headers = pushes[0]
    assert (pid, parent, method, path) == (2, s, "GET", "/pushed.js")
    assert sorted(headers[:2]) == sorted([(":authority", AUTHORITY), (":scheme", SCHEME)])
    assert headers[2:] == [("x-p", "1")]
    kinds = [e[0] for e in cno_events_for(p.cno, pid)]
    assert kinds.index("push") < kinds.index("head")
    assert kinds[-3:] == ["data", "tail", "end"] or kinds[-2:] == ["tail", "end"]
    assert response(p.cno, pid)[:5] == (200, [("content-length", "5")], b"hello", None, True)
    assert response(p.cno, s)[:5] == (200, [], b"index", None, True)


@pytest.mark.parametrize("cls,kw,expected", [
    (CnoPeer, {}, 0),
    (CnoPushPeer, {}, 1),
    (CnoPushPeer, {"enable_push": 0}, 0),
], ids=["no_on_message_push", "on_message_push", "constructor_override"])
def test_client_enable_push_advertised(cls, kw, expected):
    """A client advertises ENABLE_PUSH=1 exactly when its class defines on_message_push
    (libcno always advertised 0, so pushes never worked)."""
    p = Pair("cno_client", cno_cls=cls, cno_kw=kw)
    assert p.h2.conn.remote_settings.enable_push == expected
    assert p.cno.local_settings["enable_push"] == expected
    s = p.cno.request("GET", "/")
    p.pump()
    if expected:
        p.h2.push(s, "GET", "/x")                     # h2 accepts: the client allows it
    else:
        with pytest.raises(h2.exceptions.ProtocolError):
            p.h2.push(s, "GET", "/x")


def test_client_enable_push_update_settings():
    p = Pair("cno_client", cno_cls=CnoPushPeer)
    assert p.h2.conn.remote_settings.enable_push == 1
    p.cno.update_settings(enable_push=0)
    p.pump()
    assert p.h2.conn.remote_settings.enable_push == 0
    assert p.cno.local_settings["enable_push"] == 0


def test_cno_server_push_not_possible_returns_zero():
    p = Pair("cno_server")
    s = p.h2.request("GET", "/")
    s3 = p.h2.request("GET", "/3")
    p.pump()
    p.h2.conn.update_settings({SettingCodes.ENABLE_PUSH: 0})
    p.pump()
    assert p.cno.remote_settings["enable_push"] == 0
    n = p.cno.next_stream
    assert p.cno.write_push(s, "GET", "/x", [(":scheme", SCHEME), (":authority", AUTHORITY)]) == 0
    p.cno.respond(s3, 200, [], b"done")
    p.h2.conn.update_settings({SettingCodes.ENABLE_PUSH: 1})
    p.pump()
    # the parent closed for writing: no push either
    assert p.cno.write_push(s3, "GET", "/x", [(":scheme", SCHEME), (":authority", AUTHORITY)]) == 0
    p.pump()
    assert p.cno.sent.count(5) == 0                    # no PUSH_PROMISE went out
    assert p.cno.next_stream == n
    # still possible on the open parent
    assert p.cno.write_push(s, "GET", "/y", [(":scheme", SCHEME), (":authority", AUTHORITY)]) == n


# ----------------------------------------------------------------------------------------
# Flow control

def _transfer_both_ways(p, size=200_000):
    req, resp = body_bytes(20, size), body_bytes(21, size)
    auto_respond(p.server, lambda peer, r: (200, [], resp, None))
    s = p.client.request("POST", "/big", [], req)
    p.pump()
    assert p.server.body(s) == req
    code, headers, body, trailers, complete, reset = response(p.client, s)
    assert (code, complete, reset) == (200, True, None)
    assert body == resp
    return s


@pytest.mark.parametrize("role", ROLES)
def test_small_initial_window_h2_side(role):
    p = Pair(role)
    p.h2.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    p.pump()
    assert p.cno.remote_settings["initial_window_size"] == 1000
    p.clear_logs()
    s = _transfer_both_ways(p)
    sizes = [f.length for f in p.cno.sent.of(DATA, s)]
    assert sizes and max(sizes) <= 1000


@pytest.mark.parametrize("role", ROLES)
def test_small_initial_window_cno_side(role):
    p = Pair(role)
    p.cno.update_settings(initial_window_size=1000)
    assert p.cno.local_settings["initial_window_size"] == 1000
    p.pump()
    assert p.h2.conn.remote_settings.initial_window_size == 1000
    p.clear_logs()
    s = _transfer_both_ways(p)
    sizes = [f.length for f in p.cno.recv.of(DATA, s)]
    assert sizes and max(sizes) <= 1000


@pytest.mark.parametrize("role", ROLES)
def test_window_updates_are_batched(role):
    """Automatic flow control gives credit back in batches: far fewer WINDOW_UPDATEs
    than DATA frames (libcno sent 2 per DATA frame)."""
    p = Pair(role, h2_kw={"data_chunk": 1000})
    p.clear_logs()
    body = body_bytes(30, 200_000)
    if role == "cno_client":
        h2_auto_respond(p.h2, lambda peer, req: (200, [], body, None))
        s = p.cno.request("GET", "/")
    else:
        cno_auto_respond(p.cno, lambda c, req: (200, [], b"", None))
        s = p.h2.request("POST", "/", [], body)
    p.pump()
    got = p.cno.body(s) if role == "cno_client" else p.cno.request_of(s).body
    assert got == body
    n_data = p.cno.recv.count(DATA)
    n_wu = p.cno.sent.count(WINDOW_UPDATE)
    assert n_data >= 200
    assert 0 < n_wu <= n_data // 4, (n_wu, n_data)


def _big_body_stream(p, body, manual_setup=None):
    """Start `body` flowing from h2 to cno; returns the stream."""
    if p.role == "cno_client":
        h2_auto_respond(p.h2, lambda peer, req: (200, [], body, None))
        return p.cno.request("GET", "/big")
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"", None))
    return p.h2.request("POST", "/big", [], body)


def _manual(c):
    c.manual_flow_control = True


@pytest.mark.parametrize("role", ROLES)
def test_manual_flow_control(role):
    p = Pair(role, setup=_manual)
    assert p.cno.manual_flow_control
    p.clear_logs()
    body = body_bytes(40, 300_000)
    s = _big_body_stream(p, body)
    p.pump()
    # Nothing consumed: the peer stops at one window of unread data.
    assert len(p.cno.body(s)) == 65535
    assert p.cno.sent.count(WINDOW_UPDATE) == 0
    credited, rounds = 0, 0
    while not p.cno.of("tail", s):
        rounds += 1
        assert rounds < 100, "stalled at %d of %d bytes" % (len(p.cno.body(s)), len(body))
        consumed = len(p.cno.body(s)) - credited
        assert consumed > 0, "no progress after open_flow"
        p.cno.open_flow(s, consumed)
        credited += consumed
        p.pump()
        assert len(p.cno.body(s)) - credited <= 65535
    assert p.cno.body(s) == body
    assert p.cno.end_of(s)[2] == 0


@pytest.mark.parametrize("role", ROLES)
def test_manual_flow_control_open_flow_per_chunk_is_batched(role):
    """The application credits every chunk as it consumes it (open_flow per
    on_message_data); the transfer completes and h2 receives far fewer WINDOW_UPDATEs
    than it sent DATA frames (libcno: 2 per DATA frame)."""
    p = Pair(role, h2_kw={"data_chunk": 1000}, setup=_manual)
    body = body_bytes(42, 200_000)
    p.cno.handlers["data"] = lambda c, stream, data: c.open_flow(stream, len(data))
    p.clear_logs()
    s = _big_body_stream(p, body)
    p.pump()
    assert p.cno.body(s) == body and p.cno.of("tail", s)
    n_data = p.h2.sent.count(DATA)
    n_wu = p.h2.recv.count(WINDOW_UPDATE)
    assert n_data >= 200
    assert 0 < n_wu <= n_data // 4, (n_wu, n_data)


@pytest.mark.parametrize("role", ROLES)
def test_manual_flow_control_credits_padding(role):
    """Padding is credited automatically in manual mode: the application credits only
    the data it consumed and the transfer still completes."""
    p = Pair(role, h2_kw={"pad": 200, "data_chunk": 700}, setup=_manual)
    body = body_bytes(41, 300_000)
    s = _big_body_stream(p, body)
    credited = 0

    def consume(c, stream, data):
        nonlocal credited
        if stream == s:
            c.open_flow(stream, len(data))
            credited += len(data)

    p.cno.handlers["data"] = consume
    for _ in range(3):
        p.pump()
    assert p.cno.body(s) == body
    assert p.cno.of("tail", s)
    assert credited == len(body)
    assert all(f.flags & 0x8 for f in p.cno.recv.of(DATA, s)[:-1])  # they were padded


@pytest.mark.parametrize("role", ROLES)
def test_manual_flow_control_credits_data_of_reset_streams(role):
    """Data arriving for a stream cno reset is credited to the connection automatically."""
    p = Pair(role, setup=_manual)
    if role == "cno_client":
        a = p.cno.request("GET", "/a")
        p.pump()
        p.cno.write_reset(a, CNO_RST_CANCEL)
        p.h2.respond(a, 200, [], b"A" * 60_000)         # in flight when the RST left
    else:
        a = p.h2.request("POST", "/a", [], b"", end=False)
        p.pump()
        p.cno.write_reset(a, CNO_RST_CANCEL)
        p.h2.send_now(a, b"A" * 60_000)
    deliver(p.h2, p.cno)
    deliver(p.cno, p.h2)
    p.pump()
    assert p.cno.sent.count(RST_STREAM, a) == 1
    assert p.cno.end_of(a) == ("end", a, CNO_RST_CANCEL, CNO_LOCAL)
    assert p.cno.body(a) == b""
    p.cno.handlers["data"] = lambda c, stream, data: c.open_flow(stream, len(data))
    s = _big_body_stream(p, b"B" * 60_000)
    p.pump()
    assert p.cno.body(s) == b"B" * 60_000, len(p.cno.body(s))
    assert p.cno.of("tail", s)


@pytest.mark.parametrize("role", ROLES)
def test_initial_window_change_applies_to_open_streams(role):
    """A SETTINGS_INITIAL_WINDOW_SIZE change moves the send window of open streams
    (RFC 9113 6.9.2); cno reports it with on_flow_increase and write_data accepts more."""
    p = Pair(role, h2_kw={"auto_ack": False})
    p.h2.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 1000})
    p.pump()
    if role == "cno_client":
        s = p.cno.next_stream
        p.cno.write_head(s, 0, "POST", "/", [(":scheme", SCHEME), (":authority", AUTHORITY)], False)
    else:
        s = p.h2.request("GET", "/")
        p.pump()
        p.cno.write_head(s, 200, "", "", [], False)
    assert p.cno.write_data(s, b"x" * 5000, False) == 1000
    assert p.cno.write_data(s, b"x" * 4000, False) == 0
    p.pump()
    flows = len(p.cno.of("flow"))
    p.h2.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 5000})
    p.pump()
    assert len(p.cno.of("flow")) > flows
    assert p.cno.write_data(s, b"x" * 6000, False) == 4000
    # Lowering it below what is in flight makes the window negative: nothing accepted.
    p.h2.conn.update_settings({SettingCodes.INITIAL_WINDOW_SIZE: 100})
    p.pump()
    p.h2.conn.increment_flow_control_window(1000, stream_id=s)
    p.pump()
    assert p.cno.write_data(s, b"x" * 100, False) == 0   # window 100 - 5000 + 1000 < 0
    assert len(p.h2.body(s)) == 5000


# ----------------------------------------------------------------------------------------
# SETTINGS changes mid-connection

def _exchange(p, n, size):
    auto_respond(p.server, lambda peer, req: (200, [("x-n", req.path)], req.body[::-1], None))
    out = []
    for i in range(n):
        body = body_bytes(100 + i, size)
        out.append((p.client.request("POST", "/%d" % i, [("x-i", str(i))], body), body))
    p.pump()
    for i, (s, body) in enumerate(out):
        check_request_head(p.server, s, "POST", "/%d" % i, [("x-i", str(i))])
        assert p.server.body(s) == body
        code, headers, rb, tr, complete, reset = response(p.client, s)
        assert (code, complete, reset) == (200, True, None)
        assert rb == body[::-1]
    return [s for s, _ in out]


@pytest.mark.parametrize("role", ROLES)
def test_settings_change_by_h2(role):
    p = Pair(role)
    _exchange(p, 3, 40_000)
    p.h2.conn.update_settings({
        SettingCodes.MAX_CONCURRENT_STREAMS: 3,
        SettingCodes.INITIAL_WINDOW_SIZE: 1000,
        SettingCodes.HEADER_TABLE_SIZE: 0,
        SettingCodes.MAX_FRAME_SIZE: 32768,
    })
    n_settings = len(p.cno.of("settings"))
    p.pump()
    assert len(p.cno.of("settings")) == n_settings + 1
    rs = p.cno.remote_settings
    assert (rs["max_concurrent_streams"], rs["initial_window_size"], rs["header_table_size"],
            rs["max_frame_size"]) == (3, 1000, 0, 32768)
    p.clear_logs()
    _exchange(p, 3, 40_000)            # h2's decoder now has a 0-byte table: cno must comply
    assert max(f.length for f in p.cno.sent.of(DATA)) <= 1000
    if role == "cno_client":
        streams = [p.cno.request("GET", "/w%d" % i, end=False) for i in range(3)]
        with pytest.raises(cno.errors.WouldBlock):
            p.cno.request("GET", "/w4")
        for s in streams:
            p.cno.write_tail(s, None)
        p.pump()
        p.cno.request("GET", "/w5")                     # a slot is free again
        p.pump()


@pytest.mark.parametrize("role", ROLES)
def test_settings_change_by_cno(role):
    p = Pair(role)
    _exchange(p, 3, 40_000)
    n = len(p.h2.of("settings"))
    p.cno.update_settings(max_concurrent_streams=2, initial_window_size=100_000,
                          header_table_size=256, max_frame_size=32768)
    assert p.cno.local_settings["max_concurrent_streams"] == 2
    p.pump()
    changed = p.h2.of("settings")[n:]
    assert len(changed) == 1
    assert changed[0][1] == {SettingCodes.MAX_CONCURRENT_STREAMS: 2,
                             SettingCodes.INITIAL_WINDOW_SIZE: 100_000,
                             SettingCodes.HEADER_TABLE_SIZE: 256,
                             SettingCodes.MAX_FRAME_SIZE: 32768}
    assert p.cno.of("settings")[-1:] == [("settings",)]  # only the handshake's; not our own
    assert len(p.cno.of("settings")) == 1
    p.clear_logs()
    _exchange(p, 2, 100_000)           # h2 now sends DATA frames up to 32768 bytes
    assert max(f.length for f in p.cno.recv.of(DATA)) > 16384
    if role == "cno_server":
        for i in range(2):
            p.h2.request("GET", "/%d" % i, end=False)
        with pytest.raises(h2.exceptions.TooManyStreamsError):
            p.h2.request("GET", "/x")


# ----------------------------------------------------------------------------------------
# GOAWAY

def test_cno_server_shutdown_with_open_streams():
    p = Pair("cno_server", h2_kw={"survive_goaway": True})
    s1 = p.h2.request("GET", "/1")
    s3 = p.h2.request("GET", "/3")
    s5 = p.h2.request("POST", "/5", [], b"part", end=False)
    p.pump()
    p.cno.shutdown()
    p.pump()
    assert p.h2.of("goaway") == [("goaway", 0, s5)]
    assert p.cno.of("close") == []
    assert not p.cno.closed
    p.cno.respond(s1, 200, [], b"one")
    p.pump()
    assert response(p.h2, s1)[2:5] == (b"one", None, True)
    assert p.cno.of("close") == []
    # A stream above the last-stream-id is not served.
    s7 = p.h2.request("GET", "/7")
    p.pump()
    assert [e for e in p.cno.of("head") if e[1] == s7] == []
    p.h2.send_body(s5, b"-rest", True)
    p.pump()
    assert p.cno.body(s5) == b"part-rest" and p.cno.of("tail", s5)
    p.cno.respond(s3, 200, [], b"three")
    p.pump()
    assert p.cno.of("close") == []
    p.cno.respond(s5, 201, [], b"five")
    p.pump()
    assert response(p.h2, s3)[2:5] == (b"three", None, True)
    assert response(p.h2, s5)[:5] == (201, [], b"five", None, True)
    assert p.cno.of("close") == [("close",)]
    assert p.cno.closed
    for s in (s1, s3, s5):
        assert p.cno.end_of(s)[2] == 0


def test_cno_server_shutdown_idle_closes():
    p = Pair("cno_server")
    s = p.h2.request("GET", "/")
    p.pump()
    p.cno.respond(s, 200, [], b"x")
    p.pump()
    p.cno.shutdown()
    p.pump()
    assert p.h2.of("goaway") == [("goaway", 0, s)]
    assert p.cno.of("close") == [("close",)]
    assert p.cno.closed
    with pytest.raises(cno.errors.ConnectionClosed):
        p.cno.write_ping(b"12345678")


def test_h2_server_goaway_last_stream_zero():
    """GOAWAY with last-stream-id 0 is valid (libcno rejected it): every stream of ours
    ends, no exception, on_close fires; later requests raise ConnectionClosed."""
    p = Pair("cno_client")
    s1 = p.cno.request("GET", "/1")
    s3 = p.cno.request("POST", "/3", [], b"abc", end=False)
    p.pump()
    p.h2.goaway(last_stream_id=0)
    p.pump()
    for s in (s1, s3):
        end = p.cno.end_of(s)
        assert end is not None, s
        assert end[2] != 0, end                        # not a normal end (libcno: NO_ERROR)
    assert p.cno.of("close") == [("close",)]
    assert p.cno.closed
    with pytest.raises(cno.errors.ConnectionClosed):
        p.cno.request("GET", "/more")


def test_h2_server_goaway_lets_lower_streams_finish():
    p = Pair("cno_client", h2_kw={"survive_goaway": True})
    s1 = p.cno.request("GET", "/1")
    s3 = p.cno.request("GET", "/3")
    s5 = p.cno.request("GET", "/5")
    p.pump()
    p.h2.goaway(last_stream_id=s1, keep_open=True)
    p.pump()
    assert p.cno.end_of(s3) is not None and p.cno.end_of(s5) is not None
    assert p.cno.end_of(s3)[2] != 0 and p.cno.end_of(s5)[2] != 0
    assert p.cno.end_of(s1) is None
    assert p.cno.of("close") == []
    with pytest.raises(cno.errors.ConnectionClosed):
        p.cno.request("GET", "/7")
    p.h2.respond(s1, 200, [], b"one" * 30_000)
    p.pump()
    assert response(p.cno, s1)[:5] == (200, [], b"one" * 30_000, None, True)
    assert p.cno.of("close") == [("close",)]


def test_h2_goaway_with_error_code_raises_nothing_on_cno_client():
    """A GOAWAY with an error code ends everything; it is the peer's error, reported by
    ending the streams (docs do not call it a ProtocolError of ours)."""
    p = Pair("cno_client")
    s = p.cno.request("GET", "/")
    p.pump()
    p.h2.goaway(last_stream_id=0, code=CNO_RST_INTERNAL_ERROR)
    out = p.h2.outbound()
    try:
        p.cno.receive(out)
    except cno.errors.ProtocolError:
        pass                                           # acceptable: libcno raised here too
    assert p.cno.end_of(s) is not None
    assert p.cno.closed or p.cno.of("close")


# ----------------------------------------------------------------------------------------
# HEAD, 1xx

@pytest.mark.parametrize("role", ROLES)
def test_head_request_content_length_no_body(role):
    p = Pair(role)
    auto_respond(p.server, lambda peer, req: (200, [("content-length", "1234"), ("x-h", "1")], b"", None))
    s = p.client.request("HEAD", "/file")
    p.pump()
    check_request_head(p.server, s, "HEAD", "/file", [])
    assert response(p.client, s)[:6] == (200, [("content-length", "1234"), ("x-h", "1")], b"", None, True, None)
    assert p.cno.end_of(s)[2] == 0
    assert p.cno.sent.count(RST_STREAM) == 0 and p.cno.recv.count(RST_STREAM) == 0
    # a GET on the same connection is not mistaken for HEAD
    s2 = p.client.request("GET", "/file2")
    p.server.handlers.clear()
    if role == "cno_server":
        p.pump()
        p.cno.respond(s2, 200, [("content-length", "3")], b"abc")
    else:
        p.pump()
        p.h2.respond(s2, 200, [("content-length", "3")], b"abc")
    p.pump()
    assert response(p.client, s2)[:6] == (200, [("content-length", "3")], b"abc", None, True, None)


def test_cno_server_103_then_200():
    p = Pair("cno_server")
    s = p.h2.request("GET", "/")
    p.pump()
    p.cno.write_head(s, 103, "", "", [("link", "</a.css>; rel=preload")], False)
    p.pump()
    p.cno.respond(s, 200, [("x-final", "1")], b"done")
    p.pump()
    kinds = [e[0] for e in p.h2.events if len(e) > 1 and e[1] == s]
    assert kinds[:2] == ["info", "response"]
    assert response_headers(p.h2.of("info", s)[0][2]) == [("link", "</a.css>; rel=preload")]
    assert pseudo(p.h2.of("info", s)[0][2]) == {":status": "103"}
    assert response(p.h2, s)[:5] == (200, [("x-final", "1")], b"done", None, True)
    s2 = p.h2.request("GET", "/x")
    p.pump()
    with pytest.raises(cno.errors.UsageError):            # a 1xx may not be final
        p.cno.write_head(s2, 100, "", "", [], True)


def test_h2_server_100_continue_then_200():
    p = Pair("cno_client")

    def on_request(h, sid, headers):
        h.conn.send_headers(sid, [(":status", "100")])

    p.h2.handlers["request"] = on_request
    s = p.cno.request("POST", "/", [("expect", "100-continue")], b"", end=False)
    p.pump()
    assert [(e[2], e[5]) for e in p.cno.of("head", s)] == [(100, [])]
    p.cno.send_body(s, b"payload", True)
    p.pump()
    assert p.h2.body(s) == b"payload"
    p.h2.respond(s, 200, [("x-a", "b")], b"ok")
    p.pump()
    assert [(e[2], e[3], e[4]) for e in p.cno.of("head", s)] == [(100, "", ""), (200, "", "")]
    assert response(p.cno, s)[:5] == (200, [("x-a", "b")], b"ok", None, True)
    assert len(p.cno.of("tail", s)) == 1


# ----------------------------------------------------------------------------------------
# Header validation

@pytest.mark.parametrize("role", ROLES)
def test_htab_inside_header_value(role):
    """RFC 9110 5.5 allows HTAB inside a field value (libcno rejected it both ways)."""
    p = Pair(role)
    auto_respond(p.server, lambda peer, req: (200, [("x-tab", "c\td")], b"", None))
    s = p.client.request("GET", "/", [("x-tab", "a\tb"), ("x-more", "x \t y")])
    p.pump()
    check_request_head(p.server, s, "GET", "/", [("x-tab", "a\tb"), ("x-more", "x \t y")])
    assert response(p.client, s)[:2] == (200, [("x-tab", "c\td")])
    assert p.cno.sent.count(RST_STREAM) == 0


BAD_REQUEST_HEADERS = {
    "uppercase": [("X-Upper", "1")],
    "connection": [("connection", "keep-alive")],
    "keep-alive": [("keep-alive", "timeout=5")],
    "proxy-connection": [("proxy-connection", "keep-alive")],
    "transfer-encoding": [("transfer-encoding", "chunked")],
    "upgrade": [("upgrade", "websocket")],
    "te-gzip": [("te", "gzip")],
    "lf-in-value": [("x-bad", "a\nb")],
    "cr-in-value": [("x-bad", "a\rb")],
    "nul-in-value": [("x-bad", "a\x00b")],
    "space-in-name": [("x bad", "1")],
    "colon-in-name": [("x:bad", "1")],
    "empty-name": [("", "1")],
}


def _h2_raw_client():
    return Pair("cno_server", h2_kw={"validate_outbound_headers": False,
                                     "normalize_outbound_headers": False,
                                     "validate_inbound_headers": True})


def _check_rejected_and_alive(p, s):
    assert p.h2.of("reset", s) == [("reset", s, CNO_RST_PROTOCOL_ERROR, True)]
    assert [e for e in p.cno.of("head") if e[1] == s] == []
    starts = p.cno.of("start", s)
    if starts:                                         # if it was started, it was ended
        assert p.cno.end_of(s) == ("end", s, CNO_RST_PROTOCOL_ERROR, CNO_LOCAL)
    assert not p.cno.closed
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"alive", None))
    s2 = p.h2.request("GET", "/next", [("x-fine", "1")])
    p.pump()
    assert response(p.h2, s2)[2:5] == (b"alive", None, True)


@pytest.mark.parametrize("name", sorted(BAD_REQUEST_HEADERS))
def test_malformed_request_headers_reset_stream(name):
    p = _h2_raw_client()
    s = p.h2.request("GET", "/", BAD_REQUEST_HEADERS[name])
    p.pump()
    _check_rejected_and_alive(p, s)


BAD_PSEUDO = {
    "pseudo-after-regular": [(":method", "GET"), (":scheme", SCHEME), (":authority", AUTHORITY),
                             ("x-a", "1"), (":path", "/")],
    "missing-path": [(":method", "GET"), (":scheme", SCHEME), (":authority", AUTHORITY)],
    "empty-path": [(":method", "GET"), (":scheme", SCHEME), (":authority", AUTHORITY), (":path", "")],
    "missing-method": [(":scheme", SCHEME), (":authority", AUTHORITY), (":path", "/")],
    "duplicate-method": [(":method", "GET"), (":method", "POST"), (":scheme", SCHEME),
                         (":authority", AUTHORITY), (":path", "/")],
    "unknown-pseudo": [(":method", "GET"), (":scheme", SCHEME), (":authority", AUTHORITY),
                       (":path", "/"), (":foo", "bar")],
    "status-in-request": [(":method", "GET"), (":scheme", SCHEME), (":authority", AUTHORITY),
                          (":path", "/"), (":status", "200")],
}


@pytest.mark.parametrize("name", sorted(BAD_PSEUDO))
def test_malformed_request_pseudo_headers_reset_stream(name):
    p = _h2_raw_client()
    s = p.h2.conn.get_next_available_stream_id()
    p.h2.conn.send_headers(s, BAD_PSEUDO[name], end_stream=True)
    p.pump()
    _check_rejected_and_alive(p, s)


@pytest.mark.parametrize("declared", ["10", "1"])
def test_content_length_mismatch_resets_stream(declared):
    """RFC 9113 8.1.1: a body longer or shorter than content-length is malformed: the
    head may have been delivered, but the message does not end normally."""
    p = _h2_raw_client()
    s = p.h2.request("POST", "/", [("content-length", declared)], b"abc")
    p.pump()
    assert p.h2.of("reset", s) == [("reset", s, CNO_RST_PROTOCOL_ERROR, True)]
    assert p.cno.of("tail", s) == []
    assert p.cno.end_of(s) == ("end", s, CNO_RST_PROTOCOL_ERROR, CNO_LOCAL)
    p.cno.handlers.clear()
    p.cno.events.clear()
    s2 = p.h2.request("GET", "/next")
    p.pump()
    assert p.cno.of("tail", s2) == [("tail", s2, None)]


@pytest.mark.parametrize("bad", [[("X-Upper", "1")], [("connection", "close")],
                                 [("transfer-encoding", "chunked")]],
                         ids=["uppercase", "connection", "transfer-encoding"])
def test_malformed_response_headers_reset_stream(bad):
    p = Pair("cno_client", h2_kw={"validate_outbound_headers": False,
                                  "normalize_outbound_headers": False})
    s = p.cno.request("GET", "/")
    p.pump()
    p.h2.respond(s, 200, bad, b"", end=False)       # h2 keeps the stream open to see the RST
    p.pump()
    assert p.cno.end_of(s) == ("end", s, CNO_RST_PROTOCOL_ERROR, CNO_LOCAL)
    assert [e for e in p.cno.of("head", s)] == []
    assert p.h2.of("reset", s) == [("reset", s, CNO_RST_PROTOCOL_ERROR, True)]
    s2 = p.cno.request("GET", "/2")
    p.pump()
    p.h2.respond(s2, 200, [("x-ok", "1")], b"fine")
    p.pump()
    assert response(p.cno, s2)[:5] == (200, [("x-ok", "1")], b"fine", None, True)


# ----------------------------------------------------------------------------------------
# PING, event argument types

@pytest.mark.parametrize("role", ROLES)
def test_ping_both_ways(role):
    p = Pair(role)
    p.cno.write_ping(b"cnoping!")
    p.pump()
    assert p.cno.of("pong") == [("pong", b"cnoping!")]
    assert p.h2.of("ping") == [("ping", b"cnoping!")]
    p.h2.conn.ping(b"h2-ping!")
    p.pump()
    assert p.h2.of("pong") == [("pong", b"h2-ping!")]
    assert p.cno.of("pong") == [("pong", b"cnoping!")]   # h2's PING is not our pong
    with pytest.raises((cno.errors.UsageError, ValueError)):
        p.cno.write_ping(b"short")


def test_event_argument_types():
    """Events hand over str (latin-1) method, path and header fields, bytes data."""
    seen = []

    class Typed(CnoPeer):
        def on_message_head(self, stream, code, method, path, headers):
            seen.append((type(code), type(method), type(path), type(headers),
                         {(type(h[0]), type(h[1])) for h in headers}))
            super().on_message_head(stream, code, method, path, headers)

        def on_message_data(self, stream, data):
            seen.append(type(data))
            super().on_message_data(stream, data)

    p = Pair("cno_server", cno_cls=Typed)
    p.h2.request("POST", "/p", [(b"x-latin", b"caf\xe9")], b"body")
    p.pump()
    assert seen[0] == (int, str, str, list, {(str, str)})
    assert seen[1] is bytes
    head = p.cno.of("head")[0]
    assert head[5][2:] == [("x-latin", "caf\xe9")]            # latin-1, lossless


# ----------------------------------------------------------------------------------------
# Big header blocks (CONTINUATION), sensitive fields, priority, limits

@pytest.mark.parametrize("role", ROLES)
def test_big_header_blocks_use_continuation(role):
    """Header blocks larger than a frame: cno splits its own into CONTINUATIONs and
    merges the peer's (both ways, trailers included)."""
    p = Pair(role)
    # hex values: Huffman cannot shrink them much (~22 KB and ~16 KB encoded)
    big = [("x-big-%d" % i, body_bytes(200 + i, 2000).hex()) for i in range(12)]
    big_tr = [("x-tr-%d" % i, body_bytes(300 + i, 2000).hex()) for i in range(9)]
    auto_respond(p.server, lambda peer, req: (200, big, b"body", big_tr))
    s = p.client.request("POST", "/", big, b"x", trailers=big_tr)
    p.pump()
    check_request_head(p.server, s, "POST", "/", big)
    assert p.server.request_of(s).trailers == big_tr
    assert response(p.client, s)[:5] == (200, big, b"body", big_tr, True)
    assert p.cno.sent.count(9) >= 2 and p.cno.recv.count(9) >= 2      # CONTINUATIONs both ways


def test_oversized_header_list_refused_not_fatal():
    """A request header list over max_header_list_size (65536) ends that stream with
    REFUSED_STREAM, not the connection (docs/raw.md)."""
    p = _h2_raw_client()
    s = p.h2.request("GET", "/", [("x-huge-%d" % i, "h" * 9000) for i in range(8)])
    p.pump()
    assert p.h2.of("reset", s) == [("reset", s, 7, True)]
    assert [e for e in p.cno.of("head") if e[1] == s] == []
    assert not p.cno.closed
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"alive", None))
    s2 = p.h2.request("GET", "/next", [("x-fine", "1")])
    p.pump()
    assert response(p.h2, s2)[2:5] == (b"alive", None, True)


def test_sensitive_header_is_never_indexed():
    """(name, value, True) is sent as a never-indexed literal (h2 reports it as a
    NeverIndexedHeaderTuple)."""
    from hpack import NeverIndexedHeaderTuple
    p = Pair("cno_client")
    s = p.cno.request("GET", "/", [("authorization", "Bearer s3cret", True), ("x-plain", "v")])
    p.pump()
    (req,) = [e for e in p.h2.raw_events if isinstance(e, h2.events.RequestReceived)]
    kinds = {bytes(h[0]): type(h) for h in req.headers}
    assert kinds[b"authorization"] is NeverIndexedHeaderTuple
    assert kinds[b"x-plain"] is not NeverIndexedHeaderTuple
    check_request_head(p.h2, s, "GET", "/", [("authorization", "Bearer s3cret"), ("x-plain", "v")])


def test_priority_from_h2_is_accepted():
    """HEADERS with the PRIORITY flag and PRIORITY frames (on open, idle and closed
    streams) are parsed and otherwise ignored."""
    p = Pair("cno_server")
    cno_auto_respond(p.cno, lambda c, req: (200, [], req.path.encode(), None))
    s = p.h2.conn.get_next_available_stream_id()
    p.h2.conn.send_headers(s, [(":method", "GET"), (":scheme", SCHEME), (":authority", AUTHORITY),
                               (":path", "/prio")], end_stream=True,
                           priority_weight=200, priority_depends_on=0, priority_exclusive=True)
    p.h2.conn.prioritize(s + 2, weight=10, depends_on=s)       # idle stream
    p.pump()
    p.h2.conn.prioritize(s, weight=20)                          # now closed
    s2 = p.h2.request("GET", "/after")
    p.pump()
    assert p.cno.recv.count(HEADERS) == 2 and p.cno.recv.count(2) == 2
    assert response(p.h2, s)[2:5] == (b"/prio", None, True)
    assert response(p.h2, s2)[2:5] == (b"/after", None, True)
    assert not p.cno.closed


def test_rst_no_error_after_complete_response():
    """RFC 9113 8.1: a server may answer in full and then RST_STREAM(NO_ERROR) the
    request body it does not want: the client keeps the complete response."""
    p = Pair("cno_client", h2_kw={"auto_ack": False})

    def on_request(h, sid, headers):
        h.respond(sid, 413, [("content-length", "8")], b"too big!")
        h.conn.reset_stream(sid, 0)

    p.h2.handlers["request"] = on_request
    s = p.cno.request("POST", "/", [], b"u" * 200_000)
    p.pump()
    assert response(p.cno, s)[:4] == (413, [("content-length", "8")], b"too big!", None)
    assert p.cno.of("tail", s) == [("tail", s, None)]
    assert p.cno.end_of(s)[2] == 0
    assert s not in p.cno.pending
    with pytest.raises(cno.errors.InvalidStream):
        p.cno.write_data(s, b"more", True)


def test_client_stream_limit_would_block():
    p = Pair("cno_client")
    assert p.cno.remote_settings["max_concurrent_streams"] == 100
    streams = [p.cno.request("GET", "/%d" % i) for i in range(100)]
    with pytest.raises(cno.errors.WouldBlock):
        p.cno.request("GET", "/101")
    n = p.cno.next_stream
    p.pump()
    p.h2.respond(streams[5], 200, [], b"")
    p.pump()
    assert p.cno.next_stream == n
    s = p.cno.request("GET", "/101")
    assert s == n
    p.pump()
    assert len(p.h2.of("request")) == 101


def test_settings_take_effect_when_acknowledged():
    """Lowering max_concurrent_streams: streams the peer opened before it saw our SETTINGS
    are not refused (the limit is in force once acknowledged)."""
    p = Pair("cno_server")
    p.cno.update_settings(max_concurrent_streams=1)
    streams = [p.h2.request("GET", "/%d" % i, end=False) for i in range(3)]
    deliver(p.h2, p.cno)            # h2's HEADERS cross our SETTINGS
    p.pump()
    assert p.h2.of("reset") == []
    assert [e[1] for e in p.cno.of("head")] == streams
    assert p.h2.conn.remote_settings.max_concurrent_streams == 1


# ----------------------------------------------------------------------------------------
# Connection errors as h2 sees them: GOAWAY with the right code, then the exception

def _expect_conn_error(p, exc, code, raw):
    with pytest.raises(exc) as info:
        p.cno.receive(raw)
    assert info.value.error_code == code
    assert p.cno.closed
    p.h2.receive(p.cno.outbound())                     # the GOAWAY went out first
    assert p.h2.of("goaway")[-1][1] == code
    with pytest.raises(cno.errors.ConnectionClosed):
        p.cno.write_ping(b"12345678")


@pytest.mark.parametrize("role", ROLES)
def test_connection_window_overflow_is_flow_control_error(role):
    p = Pair(role)
    _expect_conn_error(p, cno.errors.FlowControlError, 3, window_update(0, 2 ** 31 - 1))


def test_stream_window_overflow_resets_stream():
    p = Pair("cno_server")
    s = p.h2.request("GET", "/")
    p.pump()
    p.cno.respond(s, 200, [], b"", end=False)
    p.pump()
    p.cno.receive(window_update(s, 2 ** 31 - 1))
    assert p.cno.end_of(s) == ("end", s, 3, CNO_LOCAL)
    assert not p.cno.closed
    p.pump()
    assert p.h2.of("reset", s) == [("reset", s, 3, True)]


def test_data_over_the_window_is_flow_control_error():
    p = Pair("cno_server", setup=_manual)
    s = p.h2.request("POST", "/", [], b"", end=False)
    p.pump()
    p.h2.send_now(s, b"a" * 65535)
    p.pump()
    assert len(p.cno.body(s)) == 65535
    # h2 would refuse to send more; a misbehaving peer does it anyway.
    from h2_pair import frame
    _expect_conn_error(p, cno.errors.FlowControlError, 3, frame(DATA, 0, s, b"b" * 100))


def test_frame_over_max_frame_size_is_frame_size_error():
    p = Pair("cno_server")
    s = p.h2.request("POST", "/", [], b"", end=False)
    p.pump()
    from h2_pair import frame
    _expect_conn_error(p, cno.errors.FrameSizeError, 6, frame(DATA, 0, s, b"b" * 16385))


@pytest.mark.parametrize("with_data", [False, True], ids=["empty", "after_data"])
def test_end_stream_on_empty_data_frame(with_data):
    """h2's end_stream() ends a message with an empty DATA frame carrying END_STREAM (Go
    and nghttp2 clients do the same): the message ends then, without waiting for more
    bytes."""
    p = Pair("cno_server")
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"got " + req.body, None))
    s = p.h2.request("POST", "/", [], b"", end=False)
    if with_data:
        p.h2.conn.send_data(s, b"abc")
    p.h2.conn.end_stream(s)
    p.pump()
    assert p.cno.of("tail", s) == [("tail", s, None)]
    assert response(p.h2, s)[2:5] == (b"got " + (b"abc" if with_data else b""), None, True)


def test_end_stream_on_empty_data_frame_to_cno_client():
    p = Pair("cno_client")
    s = p.cno.request("GET", "/")
    p.pump()
    p.h2.conn.send_headers(s, [(":status", "200")])
    p.h2.conn.send_data(s, b"abc")
    p.h2.conn.end_stream(s)
    p.pump()
    assert p.cno.of("tail", s) == [("tail", s, None)]
    assert p.cno.end_of(s)[2] == 0


# ----------------------------------------------------------------------------------------
# CONNECT, extended CONNECT

def test_connect_tunnel_from_h2_client():
    p = Pair("cno_server")
    s = p.h2.conn.get_next_available_stream_id()
    p.h2.conn.send_headers(s, [(":method", "CONNECT"), (":authority", "example.com:443")])
    p.pump()
    (head,) = p.cno.of("head", s)
    assert head[2:5] == (0, "CONNECT", "")
    assert head[5] == [(":authority", "example.com:443")]
    p.cno.write_head(s, 200, "", "", [], False)
    p.cno.write_data(s, b"server-hello", False)
    p.h2.conn.send_data(s, b"client-hello")
    p.pump()
    assert p.cno.body(s) == b"client-hello" and p.h2.body(s) == b"server-hello"
    p.h2.conn.send_data(s, b"bye", end_stream=True)
    p.cno.write_tail(s, None)
    p.pump()
    assert p.h2.of("ended", s) and p.cno.of("tail", s)
    assert p.cno.body(s) == b"client-hellobye"


def test_extended_connect_protocol():
    """RFC 8441: with SETTINGS_ENABLE_CONNECT_PROTOCOL=1 a client may send :protocol;
    cno keeps it at the front of the headers."""
    p = Pair("cno_server")
    p.cno.update_settings(enable_connect_protocol=1)
    p.pump()
    assert p.h2.conn.remote_settings.enable_connect_protocol == 1
    s = p.h2.conn.get_next_available_stream_id()
    p.h2.conn.send_headers(s, [(":method", "CONNECT"), (":protocol", "websocket"),
                               (":scheme", "https"), (":path", "/chat"),
                               (":authority", AUTHORITY), ("sec-websocket-version", "13")])
    p.pump()
    (head,) = p.cno.of("head", s)
    assert head[2:5] == (0, "CONNECT", "/chat")
    assert sorted(head[5][:3]) == sorted([(":authority", AUTHORITY), (":scheme", "https"),
                                          (":protocol", "websocket")])
    assert head[5][3:] == [("sec-websocket-version", "13")]


def test_protocol_pseudo_header_refused_without_setting():
    p = _h2_raw_client()
    s = p.h2.conn.get_next_available_stream_id()
    p.h2.conn.send_headers(s, [(":method", "CONNECT"), (":protocol", "websocket"),
                               (":scheme", "https"), (":path", "/chat"), (":authority", AUTHORITY)])
    p.pump()
    _check_rejected_and_alive(p, s)


# ----------------------------------------------------------------------------------------
# Malformed trailers / responses (stream errors), rapid reset

def test_pseudo_header_in_trailers_resets_stream():
    p = _h2_raw_client()
    s = p.h2.request("POST", "/", [], b"abc", trailers=[(":path", "/evil")])
    p.pump()
    assert p.h2.of("reset", s) == [("reset", s, CNO_RST_PROTOCOL_ERROR, True)]
    assert p.cno.of("tail", s) == []
    assert not p.cno.closed


def test_second_headers_without_end_stream_is_malformed():
    """RFC 9113 8.1: a HEADERS after the request head that does not end the stream makes
    the request malformed: a stream error, not a connection error."""
    p = _h2_raw_client()
    s = p.h2.request("POST", "/", [], b"abc", end=False)
    p.pump()
    # h2 refuses to send this; a literal without indexing leaves the HPACK tables alone
    block = b"\x00\x05x-not\x08trailers"
    p.cno.receive(_raw(1, 4, s, block))
    p.pump()
    assert p.h2.of("reset", s) == [("reset", s, CNO_RST_PROTOCOL_ERROR, True)]
    assert not p.cno.closed
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"alive", None))
    s2 = p.h2.request("GET", "/next")
    p.pump()
    assert response(p.h2, s2)[2:5] == (b"alive", None, True)


@pytest.mark.parametrize("status", [[], [(":status", "200"), (":status", "204")], [(":status", "abc")],
                                    [(":status", "200"), (":path", "/")]],
                         ids=["missing", "twice", "not-a-number", "request-pseudo"])
def test_malformed_status_resets_stream(status):
    p = Pair("cno_client", h2_kw={"validate_outbound_headers": False,
                                  "normalize_outbound_headers": False})
    s = p.cno.request("GET", "/")
    p.pump()
    p.h2.conn.send_headers(s, status + [("x-a", "1")])
    p.pump()
    assert p.cno.end_of(s) == ("end", s, CNO_RST_PROTOCOL_ERROR, CNO_LOCAL)
    assert p.cno.of("head", s) == []
    assert not p.cno.closed


def test_rapid_reset_budget():
    """CVE-2023-44487: streams opened and reset at once; completed streams earn budget
    back, so normal traffic never trips it; 1001 rapid resets do (GOAWAY
    ENHANCE_YOUR_CALM)."""
    p = Pair("cno_server")
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"", None))
    for i in range(1200):                              # interleaved with completions: fine
        s = p.h2.request("GET", "/", end=(i % 2 == 0))
        if i % 2:
            p.h2.conn.reset_stream(s, CNO_RST_CANCEL)
        if i % 50 == 49:
            p.pump()
    p.pump()
    assert not p.cno.closed
    with pytest.raises(cno.errors.EnhanceYourCalm):
        for i in range(1200):
            s = p.h2.request("GET", "/", end=False)
            p.h2.conn.reset_stream(s, CNO_RST_CANCEL)
            if i % 50 == 49:
                p.pump()
    assert p.cno.closed
    p.h2.receive(p.cno.outbound())
    assert p.h2.of("goaway")[-1][1] == 0xB


# ----------------------------------------------------------------------------------------
# Connection errors on raw frames (GOAWAY with the right code reaches h2)

# A request header block using only the static table (leaves both HPACK tables alone).
STATIC_BLOCK = bytes([0x82, 0x84, 0x87, 0x01, 11]) + AUTHORITY.encode()


def _raw(type_, flags, stream, payload=b""):
    from h2_pair import frame
    return frame(type_, flags, stream, payload)


def _settings(*pairs):
    import struct
    return _raw(4, 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


CONN_ERRORS = {
    # name: (role, exception, code, raw bytes)
    "continuation-interrupted": ("cno_server", cno.errors.ProtocolError, 1,
                                 _raw(1, 0, 101, STATIC_BLOCK) + _raw(6, 0, 0, b"12345678")),
    "continuation-without-headers": ("cno_server", cno.errors.ProtocolError, 1,
                                     _raw(9, 4, 1, STATIC_BLOCK)),
    "data-on-stream-0": ("cno_server", cno.errors.ProtocolError, 1, _raw(0, 0, 0, b"x")),
    "headers-on-stream-0": ("cno_server", cno.errors.ProtocolError, 1, _raw(1, 5, 0, STATIC_BLOCK)),
    "even-stream-from-client": ("cno_server", cno.errors.ProtocolError, 1, _raw(1, 5, 102, STATIC_BLOCK)),
    "settings-length": ("cno_server", cno.errors.FrameSizeError, 6, _raw(4, 0, 0, b"\0" * 7)),
    "settings-ack-with-payload": ("cno_server", cno.errors.FrameSizeError, 6, _raw(4, 1, 0, b"\0" * 6)),
    "settings-on-stream": ("cno_server", cno.errors.ProtocolError, 1, _raw(4, 0, 1, b"")),
    "ping-length": ("cno_server", cno.errors.FrameSizeError, 6, _raw(6, 0, 0, b"1234567")),
    "ping-on-stream": ("cno_server", cno.errors.ProtocolError, 1, _raw(6, 0, 1, b"12345678")),
    "window-update-zero": ("cno_server", cno.errors.ProtocolError, 1, window_update(0, 0)),
    "window-update-length": ("cno_server", cno.errors.FrameSizeError, 6, _raw(8, 0, 0, b"\0\0\1")),
    "rst-on-idle-stream": ("cno_server", cno.errors.ProtocolError, 1, rst_stream(201, 8)),
    "rst-length": ("cno_server", cno.errors.FrameSizeError, 6, _raw(3, 0, 1, b"\0\0\0")),
    "goaway-on-stream": ("cno_server", cno.errors.ProtocolError, 1, _raw(7, 0, 1, b"\0" * 8)),
    "enable-push-2": ("cno_server", cno.errors.ProtocolError, 1, _settings((2, 2))),
    "window-too-big": ("cno_server", cno.errors.FlowControlError, 3, _settings((4, 2 ** 31))),
    "max-frame-too-small": ("cno_server", cno.errors.ProtocolError, 1, _settings((5, 16383))),
    "server-enable-push-1": ("cno_client", cno.errors.ProtocolError, 1, _settings((2, 1))),
    "push-promise-to-server": ("cno_server", cno.errors.ProtocolError, 1,
                               _raw(5, 4, 1, b"\0\0\0\2" + STATIC_BLOCK)),
    "push-promise-push-disabled": ("cno_client", cno.errors.ProtocolError, 1,
                                   _raw(5, 4, 1, b"\0\0\0\2" + STATIC_BLOCK)),
}


@pytest.mark.parametrize("name", sorted(CONN_ERRORS))
def test_connection_errors_on_raw_frames(name):
    role, exc, code, raw = CONN_ERRORS[name]
    p = Pair(role)
    if role == "cno_client":
        p.cno.request("GET", "/")                      # stream 1 is open (for PUSH_PROMISE)
        p.pump()
    else:
        p.h2.request("GET", "/", end=False)            # stream 1 is open
        p.pump()
    _expect_conn_error(p, exc, code, raw)


def test_unknown_frame_types_and_settings_are_ignored():
    p = Pair("cno_server")
    p.cno.receive(_raw(0xFA, 0xFF, 0, b"whatever") + _raw(0x20, 0, 7, b"") +
                  _settings((0x99, 12345), (0x7, 1)))
    assert not p.cno.closed
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"ok", None))
    s = p.h2.request("GET", "/")
    p.pump()
    assert response(p.h2, s)[2:5] == (b"ok", None, True)


def test_headers_on_lower_stream_id_not_served():
    """RFC 9113 5.1.1: a new stream id must be above every id the peer used; HEADERS on a
    lower (implicitly closed) id is never served (a connection PROTOCOL_ERROR by 5.1.1;
    a STREAM_CLOSED reset is tolerated here)."""
    p = Pair("cno_server")
    p.h2.request("GET", "/", end=False)
    p.pump()
    try:
        p.cno.receive(_raw(1, 5, 301, STATIC_BLOCK) + _raw(1, 5, 201, STATIC_BLOCK))
    except cno.errors.ProtocolError as e:
        assert e.error_code == 1
        return
    assert p.cno.of("head", 301) and p.cno.of("head", 201) == []
    p.cno.outbound()
    assert [f.payload for f in p.cno.sent.of(RST_STREAM, 201)] in ([b"\0\0\0\5"], [b"\0\0\0\1"])


# ----------------------------------------------------------------------------------------
# Incremental parsing of h2's output: padded DATA, CONTINUATION, split anywhere

def _h2_scenario(role, split):
    p = Pair(role, h2_kw={"pad": 7, "data_chunk": 5000})
    big = [("x-%d" % i, body_bytes(i, 1000).hex()) for i in range(24)]
    auto_respond(p.server, lambda peer, req: (200, big, body_bytes(9, 50_000), [("x-t", "1")]))
    streams = [p.client.request("POST", "/%d" % i, big if i == 0 else [("x-i", str(i))],
                                body_bytes(i, 30_000 * i), [("x-q", str(i))]) for i in range(3)]
    pump(p.client, p.server, split=split)
    for st in streams:
        assert response(p.client, st)[4], st
    return p


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("how", ["pieces", "one-byte"])
def test_incremental_delivery_from_h2(role, how):
    whole = _h2_scenario(role, None)
    split = one_byte if how == "one-byte" else splitter(11, 100)
    parts = _h2_scenario(role, split)
    def strip(peer):            # per-stream order (streams may finish in another order)
        by_stream = {}
        for e in peer.events:
            if e[0] not in ("data", "flow"):
                by_stream.setdefault(e[1] if len(e) > 1 else 0, []).append(e)
        return by_stream, {k: bytes(v) for k, v in peer.bodies.items()}
    assert strip(parts.cno) == strip(whole.cno)
    # padded frames were seen, and data arrived in pieces smaller than a frame
    assert any(f.flags & 0x8 for f in whole.cno.recv.of(DATA))
    if how == "one-byte":
        assert max(len(e[2]) for e in parts.cno.of("data")) < 5


# ----------------------------------------------------------------------------------------
# More wire details: padded/prioritized HEADERS, settings crossing data in flight

def test_padded_priority_headers_parsed():
    p = Pair("cno_server")
    pad = 9
    payload = bytes([pad]) + (0x80000000 | 3).to_bytes(4, "big") + bytes([42]) + STATIC_BLOCK + b"\0" * pad
    p.cno.receive(_raw(1, 0x8 | 0x20 | 0x4 | 0x1, 101, payload))
    (head,) = p.cno.of("head", 101)
    assert head[2:5] == (0, "GET", "/")
    assert sorted(head[5]) == sorted([(":authority", AUTHORITY), (":scheme", SCHEME)])
    assert p.cno.of("tail", 101) == [("tail", 101, None)]
    assert not p.cno.closed


@pytest.mark.parametrize("order", ["data_first", "settings_first"])
def test_lower_initial_window_crossing_data_in_flight(order):
    """cno lowers its INITIAL_WINDOW_SIZE while h2 has a window's worth of DATA in flight:
    that data was sent under the old window and is accepted (RFC 9113 6.9.2: the new
    size applies once acknowledged; windows may go negative)."""
    p = Pair("cno_server")
    cno_auto_respond(p.cno, lambda c, req: (200, [], req.body[-10:], None))
    body = body_bytes(50, 200_000)
    s = p.h2.request("POST", "/", [], body)
    in_flight = p.h2.outbound()
    assert len(in_flight) > 65535
    p.cno.update_settings(initial_window_size=1000)
    if order == "data_first":
        p.cno.receive(in_flight)
        deliver(p.cno, p.h2)
    else:
        deliver(p.cno, p.h2)
        p.cno.receive(in_flight)
    p.pump()
    assert not p.cno.closed
    assert p.cno.body(s) == body
    assert response(p.h2, s)[2:5] == (body[-10:], None, True)
    later = [f.length for f in p.cno.recv.of(DATA)][-20:]
    assert max(later) <= 1000


def test_raise_initial_window_mid_stream():
    p = Pair("cno_server")
    cno_auto_respond(p.cno, lambda c, req: (200, [], b"", None))
    s = p.h2.request("POST", "/", [], b"", end=False)
    p.pump()
    p.cno.update_settings(initial_window_size=300_000)
    p.pump()
    assert p.h2.conn.remote_settings.initial_window_size == 300_000
    body = body_bytes(51, 400_000)
    p.h2.send_body(s, body, True)
    p.pump()
    assert p.cno.body(s) == body and p.cno.of("tail", s)


def test_oversized_response_header_list_ends_stream_only():
    p = Pair("cno_client")
    s = p.cno.request("GET", "/")
    p.pump()
    p.h2.respond(s, 200, [("x-huge-%d" % i, "h" * 9000) for i in range(8)], b"", end=False)
    p.pump()
    end = p.cno.end_of(s)
    assert end is not None and end[2] != 0 and p.cno.of("head", s) == []
    assert not p.cno.closed
    s2 = p.cno.request("GET", "/2")
    p.pump()
    p.h2.respond(s2, 200, [("x-ok", "1")], b"fine")
    p.pump()
    assert response(p.cno, s2)[:5] == (200, [("x-ok", "1")], b"fine", None, True)


def test_push_limited_by_client_stream_limit_and_goaway():
    p = Pair("cno_server", h2_kw={"survive_goaway": True})
    p.h2.conn.update_settings({SettingCodes.MAX_CONCURRENT_STREAMS: 1})
    s = p.h2.request("GET", "/")
    p.pump()
    assert p.cno.remote_settings["max_concurrent_streams"] == 1
    first = p.cno.write_push(s, "GET", "/a", [(":scheme", SCHEME), (":authority", AUTHORITY)])
    assert first == 2
    assert p.cno.write_push(s, "GET", "/b", [(":scheme", SCHEME), (":authority", AUTHORITY)]) == 0
    p.cno.respond(first, 200, [], b"pushed")
    p.pump()
    assert response(p.h2, first)[2:5] == (b"pushed", None, True)
    second = p.cno.write_push(s, "GET", "/c", [(":scheme", SCHEME), (":authority", AUTHORITY)])
    assert second == 4                                 # the pushed stream ended: room again
    p.cno.respond(second, 200, [], b"")
    p.pump()
    p.h2.goaway(last_stream_id=0, keep_open=True)      # the client refuses further pushes
    p.pump()
    assert p.cno.write_push(s, "GET", "/d", [(":scheme", SCHEME), (":authority", AUTHORITY)]) == 0
    p.cno.respond(s, 200, [], b"main")
    p.pump()
    assert response(p.h2, s)[2:5] == (b"main", None, True)


@pytest.mark.parametrize("declared", ["10", "1"])
def test_response_content_length_mismatch_resets_stream(declared):
    p = Pair("cno_client")
    s = p.cno.request("GET", "/")
    p.pump()
    p.h2.respond(s, 200, [("content-length", declared)], b"abc", end=False)
    p.h2.conn.send_headers(s, [("x-trailer", "1")], end_stream=True)   # ends the stream
    p.pump()
    assert p.cno.of("tail", s) == []
    assert p.cno.end_of(s) == ("end", s, CNO_RST_PROTOCOL_ERROR, CNO_LOCAL)
    assert not p.cno.closed


def test_304_with_content_length_and_no_body():
    """RFC 9110 8.6: a 304 may carry the representation's content-length; no body follows."""
    p = Pair("cno_client")
    s = p.cno.request("GET", "/", [("if-none-match", '"x"')])
    p.pump()
    p.h2.respond(s, 304, [("content-length", "5000"), ("etag", '"x"')], b"")
    p.pump()
    assert response(p.cno, s)[:6] == (304, [("content-length", "5000"), ("etag", '"x"')], b"", None, True, None)
