"""Writes the seed corpora fuzz/corpus/<harness>/ from the test suite's own traffic.

Exchanges are driven through the tests' in-memory helpers (tests/h2_pair.py,
tests/h1_pair.py: cno against cno, against h2 and against h11, the h2c upgrade both
ways); what each cno peer receives is captured and turned into the input format of
the harness that plays that peer (see each harness's docstring): HTTP/2 byte streams
are cut into frames and written as records. The HPACK harness gets the header blocks of
tests/data/hpack-test-case and round trips of their header lists; the HTTP/2 harnesses
also get tests/data/http2-frame-test-case's frames. fuzz_pair and fuzz_diff get a few
hand-written inputs; fuzz_ws frames of cno's own WebSocket codec, with and without
permessage-deflate.

    python3 tools/fuzz-seeds.py          # rewrites fuzz/corpus/ (deterministic)

Run from a checkout with cno importable (an in-place build, or installed).
"""
import hashlib
import json
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "fuzz"))

import h2_pair  # noqa: E402
import h1_pair  # noqa: E402
import harness  # noqa: E402
from h2_pair import CnoPeer, CnoPushPeer, H2Peer, body_bytes  # noqa: E402
from h1_pair import CnoH1Peer, H2cClient, H2cServer  # noqa: E402

CORPUS = os.path.join(ROOT, "fuzz", "corpus")
DATA = os.path.join(ROOT, "tests", "data")
MAX_SEED = 4096   # bytes; longer captures are cut at a frame boundary

# -- capture ------------------------------------------------------------------------------------

_orig_receive = CnoPeer.receive


def _recording_receive(self, data):
    rx = self.__dict__.setdefault("_fz_rx", bytearray())
    rx += data
    return _orig_receive(self, data)


CnoPeer.receive = _recording_receive


def received(peer):
    if isinstance(peer, CnoH1Peer):
        return bytes(peer.rx)
    return bytes(peer.__dict__.get("_fz_rx", b""))


# -- the inputs ---------------------------------------------------------------------------------

seeds = {}   # harness -> {bytes}


def add(harness_name, data):
    seeds.setdefault(harness_name, set()).add(bytes(data))


def h2_records(stream_bytes, preface):
    """The frames of an HTTP/2 byte stream as harness records, cut to MAX_SEED."""
    data = stream_bytes
    if preface:
        if not data.startswith(harness.PREFACE):
            return None
        data = data[len(harness.PREFACE):]
    out, pos, size = [], 0, 0
    while len(data) - pos >= 9:
        length = int.from_bytes(data[pos:pos + 3], "big")
        if len(data) - pos < 9 + length:
            break
        type_, flags = data[pos + 3], data[pos + 4]
        sid = int.from_bytes(data[pos + 5:pos + 9], "big")
        payload = data[pos + 9:pos + 9 + length]
        pos += 9 + length
        if harness.SEP in payload:
            payload = payload.replace(harness.SEP, b"\0\0\0\0")
        if type_ == harness.DATA and len(payload) > 64:
            payload = payload[:64]   # bodies add nothing but bytes
            flags &= ~0x8            # (and no longer carry their padding)
        rec = harness.h2_record(type_, flags, sid, payload)
        size += len(rec) + 4
        if size > MAX_SEED:
            break
        out.append(rec)
    return harness.SEP.join(out)


def streams_opened(stream_bytes):
    """Client-initiated streams an HTTP/2 byte stream mentions (for fuzz_h2_client)."""
    sids = set()
    pos = 0
    while len(stream_bytes) - pos >= 9:
        length = int.from_bytes(stream_bytes[pos:pos + 3], "big")
        sid = int.from_bytes(stream_bytes[pos + 5:pos + 9], "big") & 0x7FFFFFFF
        if sid & 1:
            sids.add(sid)
        pos += 9 + length
    return max(sids) // 2 + 1 if sids else 0


def add_h2_server(captured, policy=0, options=0):
    recs = h2_records(captured, preface=True)
    if recs is not None:
        add("fuzz_h2_server", bytes((policy, 0, options)) + recs)


def add_h2_client(captured, push=False):
    n = min(7, streams_opened(captured))
    recs = h2_records(captured, preface=False)
    add("fuzz_h2_client", bytes((n | (16 if push else 0), 0)) + recs)


def add_h1(role, captured, prefix):
    add("fuzz_h1_" + role, bytes(prefix) + captured[:MAX_SEED])


# -- HTTP/2 exchanges ---------------------------------------------------------------------------

def serve(peer, answers):
    """A cno or h2 server peer answers each request by path from `answers`."""
    def responder(p, req):
        return answers.get(req.path, (200, [("content-type", "text/plain")], b"ok", None))
    if isinstance(peer, H2Peer):
        h2_pair.h2_auto_respond(peer, responder)
    else:
        h2_pair.cno_auto_respond(peer, responder)


ANSWERS = {
    "/": (200, [("content-type", "text/html")], b"<html>hello</html>", None),
    "/big": (200, [("content-length", "3000")], body_bytes(1, 3000), None),
    "/trailers": (200, [], b"chunk", [("x-checksum", "1234")]),
    "/empty": (204, [], b"", None),
    "/missing": (404, [("content-length", "9")], b"not found", None),
}


def h2_exchanges(client, server, push=False):
    serve(server, ANSWERS)
    client.request("GET", "/", [("accept", "*/*"), ("user-agent", "seed")])
    client.request("POST", "/upload", [("content-type", "application/json")],
                   body=b'{"a": 1}')
    client.request("GET", "/trailers", [("te", "trailers")])
    h2_pair.pump(client, server)
    client.request("GET", "/big")
    client.request("PUT", "/t", body=b"data", trailers=[("x-t", "v")])
    client.request("GET", "/empty", [("cookie", "a=b"), ("cookie", "c=d")])
    h2_pair.pump(client, server)


def run_h2():
    # cno against cno, plain and with small windows and frames (WINDOW_UPDATE, CONTINUATION).
    for kw in ({}, {"initial_window_size": 1024, "max_frame_size": 16384},
               {"header_table_size": 0}):
        client, server = h2_pair.cno_pair(client_kw=kw, server_kw=kw)
        h2_exchanges(client, server)
        add_h2_server(received(server))
        add_h2_client(received(client))
    # Resets, pings, a GOAWAY.
    client, server = h2_pair.cno_pair()
    sid = client.request("GET", "/slow", end=False)
    client.write_ping(b"12345678")
    h2_pair.pump(client, server)
    client.write_reset(sid, 8)
    client.request("GET", "/after")
    h2_pair.pump(client, server)
    server.shutdown()
    h2_pair.pump(client, server)
    add_h2_server(received(server), policy=harness.Peer.P_AT_HEAD)
    add_h2_client(received(client))
    # Pushes: a cno server pushing to a cno client that accepts them.
    client, server = h2_pair.cno_pair(client_cls=CnoPushPeer)

    def pusher(p, req):
        if req.path == "/":
            p.write_push(req.stream, "GET", "/style.css",
                         [(":scheme", "https"), (":authority", "example.com")])
        return (200, [], b"pushed page", None)
    h2_pair.cno_auto_respond(server, pusher)
    client.request("GET", "/")
    h2_pair.pump(client, server)
    add_h2_client(received(client), push=True)
    # h2 as the client (its own HPACK and framing habits) and as the server.
    for role in ("server", "client"):
        cno_peer, h2_peer = h2_pair.cno_h2(role)
        if role == "server":
            h2_exchanges(h2_peer, cno_peer)
            add_h2_server(received(cno_peer), policy=harness.Peer.P_BODY)
        else:
            h2_exchanges(cno_peer, h2_peer)
            add_h2_client(received(cno_peer))
    # h2 with padding on its DATA frames.
    cno_peer, h2_peer = h2_pair.cno_h2("server", h2_kw={"pad": 7})
    h2_exchanges(h2_peer, cno_peer)
    add_h2_server(received(cno_peer), policy=harness.Peer.P_TRAILERS | harness.Peer.P_BODY)


def frame_test_cases():
    """Single frames from http2-frame-test-case, after a request on stream 1 (server)."""
    base = os.path.join(DATA, "http2-frame-test-case")
    if not os.path.isdir(base):
        return
    request = harness.h2_record(1, 5, 1, bytes.fromhex("82868441") + b"\x0bexample.com")
    for d in sorted(os.listdir(base)):
        full = os.path.join(base, d)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            if not name.endswith(".json"):
                continue
            with open(os.path.join(full, name), encoding="utf-8") as f:
                case = json.load(f)
            wire = bytes.fromhex(case["wire"])
            if len(wire) < 9:
                continue
            length = int.from_bytes(wire[:3], "big")
            rec = harness.h2_record(wire[3], wire[4], int.from_bytes(wire[5:9], "big"),
                                    wire[9:9 + length])
            add("fuzz_h2_server", b"\0\0\0" + request + harness.SEP + rec)


# -- HTTP/1.1 exchanges -------------------------------------------------------------------------

H1_REQUESTS = [
    ("GET", "/", [("host", "example.com"), ("accept", "*/*")], b"", None, None),
    ("POST", "/form", [("host", "example.com"), ("content-type", "text/plain")], b"a=1&b=2",
     None, None),
    ("PUT", "/chunked", [("host", "example.com")], b"chunked body", [("x-sum", "9")], True),
    ("HEAD", "/", [("host", "example.com")], b"", None, None),
    ("GET", "/close", [("host", "example.com"), ("connection", "close")], b"", None, None),
]


def h11_client_to_cno_server(requests, http_version="1.1", policy=0):
    cno_peer, h11_peer = h1_pair.cno_h11("server")

    def responder(p, req):
        return (200, [("content-type", "text/plain")], b"hello " + req.method.encode(),
                None)
    h2_pair.cno_auto_respond(cno_peer, responder)
    for method, target, headers, body, trailers, chunked in requests:
        try:
            h11_peer.send_request(method, target, headers, body, trailers, chunked,
                                  http_version=http_version)
            h1_pair.pump(cno_peer, h11_peer)
        except Exception:
            break
    add_h1("server", received(cno_peer), (policy, 0, 0))


def cno_client_to_h11_server(requests, answers, spec):
    cno_peer, h11_peer = h1_pair.cno_h11("client")
    it = iter(answers)

    def responder(p, cycle, msg):
        status, headers, body, trailers, chunked = next(it)
        return status, headers, body, trailers, chunked
    h1_pair.h11_auto_respond(h11_peer, responder)
    for method, path, headers, body in requests:
        try:
            cno_peer.request(method, path, headers, body)
            h1_pair.pump(cno_peer, h11_peer)
        except Exception:
            break
    add_h1("client", received(cno_peer), (spec, 0))


def run_h1():
    h11_client_to_cno_server(H1_REQUESTS)
    h11_client_to_cno_server(H1_REQUESTS[2:3], policy=harness.Peer.P_BODY)
    h11_client_to_cno_server(H1_REQUESTS[:2], http_version="1.0")
    # Hand-made requests the h11 client would not send (pipelined, odd but valid).
    for wire in [
        b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nTrailer-A: 1\r\n\r\n",
        b"GET http://example.com/abs HTTP/1.1\r\nHost: example.com\r\n\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nraw",
        b"POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    ]:
        add("fuzz_h1_server", bytes((0, 0, 0)) + wire)
        add("fuzz_h1_server", bytes((harness.Peer.P_AT_HEAD | harness.Peer.P_RESET, 3, 1))
            + wire)
    plain = [("content-type", "text/plain")]
    cno_client_to_h11_server(
        [("GET", "/", [], b""), ("POST", "/p", [], b"body"), ("GET", "/3", [], b"")],
        [(200, plain, b"first", None, None), (200, plain, b"chunked!", [("x-t", "1")], True),
         (404, [("content-length", "0")], b"", None, None)], spec=2)
    cno_client_to_h11_server([("HEAD", "/", [], b"")],
                             [(200, [("content-length", "100")], b"", None, None)], spec=4)
    for wire, spec in [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 0),
        (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
         b"3\r\nabc\r\n0\r\nx-t: 1\r\n\r\n", 8),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil the end", 0),
        (b"HTTP/1.1 200 Connection established\r\n\r\ntunnel bytes", 16),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade"
         b"\r\n\r\n\x81\x05hello", 32),
        (b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n", 1),
    ]:
        add("fuzz_h1_client", bytes((spec, 0)) + wire)


# -- h2c ------------------------------------------------------------------------------------------

def run_h2c():
    # An h2 client upgrading to a cno server.
    cno_peer = CnoH1Peer(server=True)
    cno_peer.disallow_h2_upgrade = False
    h2_pair.cno_auto_respond(cno_peer, lambda p, req: (200, [], b"upgraded", None))
    cno_peer.start()
    client = H2cClient()
    h1_pair.pump(client, cno_peer)
    client.h2.request("GET", "/second")
    h1_pair.pump(client, cno_peer)
    add("fuzz_h2c_upgrade", bytes((0, 0)) + received(cno_peer)[:MAX_SEED])
    # A cno client upgrading to an h2 server.
    cno_peer = CnoH1Peer(server=False)
    cno_peer.disallow_h2_upgrade = False
    server = H2cServer()
    h2_pair.h2_auto_respond(server.h2, lambda p, req: (200, [], b"from h2", None))
    cno_peer.start()
    cno_peer.request("GET", "/", [])
    h1_pair.pump(cno_peer, server)
    add("fuzz_h2c_upgrade", bytes((1, 0)) + received(cno_peer)[:MAX_SEED])
    # Prior knowledge: an HTTP/2 client's bytes to a server started in HTTP/1.1.
    for s in sorted(seeds.get("fuzz_h2_server", ()))[:3]:
        wire = harness.PREFACE + h2_frames_of(s[3:])
        add("fuzz_h2c_upgrade", bytes((4 | (s[0] << 4) & 0xF0, 0)) + wire[:MAX_SEED])
    add("fuzz_h2c_upgrade", bytes((0, 0)) + b"GET / HTTP/1.1\r\nHost: a\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n"
        + harness.PREFACE + harness.SETTINGS_EMPTY)


def h2_frames_of(records):
    return harness.h2_frames(harness.split_records(records))


# -- HPACK -----------------------------------------------------------------------------------------

def run_hpack():
    base = os.path.join(DATA, "hpack-test-case")
    if not os.path.isdir(base):
        return
    for d in sorted(os.listdir(base)):
        full = os.path.join(base, d)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full))[:3]:
            if not name.endswith(".json"):
                continue
            with open(os.path.join(full, name), encoding="utf-8") as f:
                story = json.load(f)
            cases = story.get("cases", [])[:6]
            blocks = [bytes.fromhex(c["wire"]) for c in cases if c.get("wire")]
            if blocks and not any(harness.SEP in b for b in blocks):
                add("fuzz_hpack", bytes((0, 0, 128)) + harness.SEP.join(blocks))
                add("fuzz_hpack", bytes((2, 16, 128)) + harness.SEP.join(blocks))
            lists = []
            for c in cases:
                fields = []
                for h in c["headers"]:
                    (n, v), = h.items()
                    fields.append(n.encode("latin-1", "replace") + b":"
                                  + v.encode("latin-1", "replace"))
                lists.append(b"\n".join(fields))
            if lists:
                add("fuzz_hpack", b"\x01" + harness.SEP.join(lists))
                add("fuzz_hpack", b"\x03" + harness.SEP.join([b"#\x00\x40"] + lists[:3]))


# -- pair and differential -------------------------------------------------------------------------

def run_pair():
    # opcodes index fuzz_pair.OPS: 0 request, 1 response, 2 data, 3 tail, 4 deliver,
    # 8 reset, 9 ping, 10 shutdown, 11 settings, 12 push, 13 open_flow, 14 frame.
    REQ, RESP, DATA_, TAIL, DELIVER = 0, 1, 2, 3, 4
    everything = bytes((DELIVER, 3, DELIVER, 2))   # both directions, whole
    plain_get = bytes((REQ, 0, 0, 0, 2, 0))        # GET / final, no extra fields
    post = bytes((REQ, 1, 0, 0, 0, 1, 1, 5))       # POST / not final, content-length: 5
    for options in (0, 1, 1 | 8, 16, 1 | 2 | 4, 32):
        add("fuzz_pair", bytes((options,)) + plain_get + everything
            + bytes((RESP, 0, 0, 0, 1, 0)) + everything)
        add("fuzz_pair", bytes((options,)) + post + bytes((DATA_, 1, 0, 5, 1)) + everything
            + bytes((RESP, 0, 0, 0, 0)) + bytes((DATA_, 0, 0, 200, 3))
            + bytes((DELIVER, 2 | 0)) + bytes((TAIL, 0, 0, 1, 1, 10, 4)) + everything)
        add("fuzz_pair", bytes((options,)) + plain_get + everything
            + bytes((12, 0, 0, 0, 0)) + bytes((9, 1, 1)) + b"pingpong"
            + bytes((11, 0, 3, 4)) + bytes((8, 1, 0, 8)) + bytes((10, 0, 0)) + everything)


def run_ws():
    # fuzz_ws: options, cutting mode, then frames a peer of the other role sent
    from cno._ws import Codec
    for options in (0, 1, 2, 3, 6, 7, 0x1A, 0x1B):
        deflate = {}
        if options & 2:
            bits = (15, 12, 9, 8)[(options >> 3) & 3]
            deflate = dict(deflate=True, server_no_context_takeover=bool(options & 4),
                           client_no_context_takeover=bool(options & 4),
                           server_max_window_bits=bits, client_max_window_bits=bits)
        sender = Codec(not options & 1, **deflate)
        wire = (sender.message("hello") + sender.message(b"\x00\xff" * 40)
                + sender.message("fr\u00e9", fin=False) + sender.ping(b"p")
                + sender.message("agment") + sender.pong(b"") + sender.message("x" * 300)
                + sender.close(1000, "bye"))
        add("fuzz_ws", bytes((options, options * 7 & 0xFF)) + wire)


def run_diff():
    for s in sorted(seeds.get("fuzz_h2_server", ()))[:12]:
        add("fuzz_diff", b"\x00" + s[3:])
    for s in sorted(seeds.get("fuzz_h2_client", ()))[:6]:
        add("fuzz_diff", b"\x01" + s[2:])
    for s in sorted(seeds.get("fuzz_h1_server", ()))[:12]:
        add("fuzz_diff", b"\x02" + s[3:])


# -------------------------------------------------------------------------------------------------

def main():
    run_h2()
    frame_test_cases()
    run_h1()
    run_h2c()
    run_hpack()
    run_pair()
    run_diff()
    run_ws()
    if os.path.isdir(CORPUS):
        shutil.rmtree(CORPUS)
    total = 0
    for name, items in sorted(seeds.items()):
        d = os.path.join(CORPUS, name)
        os.makedirs(d)
        for item in sorted(items):
            with open(os.path.join(d, hashlib.sha1(item).hexdigest()), "wb") as f:
                f.write(item)
            total += len(item)
        print("%-18s %4d seeds, %6d bytes" % (name, len(items), sum(map(len, items))))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
