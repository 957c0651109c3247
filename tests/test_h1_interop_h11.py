"""cno.raw.Connection's HTTP/1.1 against python-hyper's h11, in memory, in both roles.

"cno_server": an h11 client (or bytes written by hand) talking to a cno server;
"cno_client": a cno client talking to an h11 server (or a hand-written server).
The harness is tests/h1_pair.py; the contract is docs/raw.md, "HTTP/1.1".
"""
import random
from collections import namedtuple

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cno.errors as cno_errors
import cno.raw as cno_raw
from cno.errors import ConnectionClosed, ProtocolError, WouldBlock
from cno.raw import CNO_LOCAL, CNO_RST_CANCEL
from h1_pair import (
    AUTHORITY,
    CnoH1Peer,
    body_bytes,
    cno_h11,
    h11_auto_respond,
    header_values,
    one_byte,
    parse_responses,
    pump,
    request_bytes,
    split_head,
    splitter,
    tokens,
)
from h2_pair import cno_auto_respond

FRAMING = ("content-length", "transfer-encoding")


# ----------------------------------------------------------------------------------------
# Helpers

def without(headers, *names):
    return [h for h in headers if h[0] not in names]


def check_written_framing(headers, body_len, cl_given, final_head, response=True):
    """The framing headers a cno peer wrote (as the h11 peer parsed them)."""
    cl = header_values(headers, "content-length")
    te = tokens(headers, "transfer-encoding")
    if cl_given:
        assert cl == [str(body_len)] and te == [], headers
    elif final_head:
        assert te == [], headers
        if response:
            assert cl == ["0"], ("a final response with no body and no content-length "
                                 "gets content-length: 0", headers)
        else:
            assert cl in ([], ["0"]), headers
    else:
        assert te == ["chunked"] and cl == [], headers


def cno_kinds(peer, stream):
    """Event kinds of `stream` at a cno peer, consecutive data events merged."""
    return peer.kinds(stream)


def stream_ids(n):
    return [2 * i + 1 for i in range(n)]


# ----------------------------------------------------------------------------------------
# 200 keep-alive exchanges on one connection, bodies 0 .. 256 KiB, both framings

SIZES = [0, 1, 2, 9, 10, 15, 16, 17, 100, 1023, 1024, 1025, 4095, 4096, 4097, 16383,
         16384, 16385, 65535, 65536, 65537, 100_000, 200_000, 262_144]

Exchange = namedtuple("Exchange", "i method req_size req_chunked req_trailers req_pieces "
                                  "resp_size resp_chunked resp_trailers resp_piece")


def plan_exchanges(seed, n=200):
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i < len(SIZES):             # every size, each way, in both framings
            req_size, resp_size = SIZES[i], SIZES[-1 - i]
        else:
            pick = (lambda: rng.choice(SIZES)) if rng.random() < 0.12 else \
                (lambda: rng.choice(SIZES[:14]))
            req_size, resp_size = pick(), pick()
        req_chunked = bool(i % 2)
        resp_chunked = bool((i // 2) % 2)
        req_tr = [("x-req-trailer", "t%d" % i), ("x-sum", str(req_size))] \
            if req_chunked and i % 3 == 0 else None
        resp_tr = [("x-resp-trailer", "r%d" % i)] if resp_chunked and i % 5 == 0 else None
        method = rng.choice(["POST", "PUT", "PATCH"]) if req_size or req_chunked else \
            rng.choice(["GET", "DELETE", "OPTIONS", "POST"])
        req_pieces = [rng.choice([1, 7, 100, 4096, 16384, 65536, 1 << 20])]
        if req_size > 20_000 and req_pieces[0] < 1000:
            req_pieces = [5000]
        resp_piece = rng.choice([1, 13, 1000, 4096, 65536, 262_144])
        if resp_size > 20_000 and resp_piece < 1000:
            resp_piece = 7000
        out.append(Exchange(i, method, req_size, req_chunked, req_tr, req_pieces,
                            resp_size, resp_chunked, resp_tr, resp_piece))
    return out


def req_body(i, size):
    return body_bytes("req-%d" % i, size)


def resp_body(i, size):
    return body_bytes("resp-%d" % i, size)


def test_keepalive_200_h11_client_cno_server():
    plan = plan_exchanges(1)
    cno, cl = cno_h11("server")
    cno.keep_data_events = False

    def responder(peer, req):
        ex = plan[(req.stream - 1) // 2]
        headers = [("x-seq", str(ex.i)), ("content-type", "application/octet-stream"),
                   ("x-echo-size", str(len(req.body)))]
        if not ex.resp_chunked:
            headers.insert(1, ("content-length", str(ex.resp_size)))
        peer.chunk = ex.resp_piece
        return 200, headers, resp_body(ex.i, ex.resp_size), ex.resp_trailers

    cno_auto_respond(cno, responder, on="tail")
    split = splitter(5, max_piece=70_000)
    for ex in plan:
        user = [("Host", AUTHORITY), ("X-Seq", str(ex.i)), ("Accept", "*/*"),
                ("User-Agent", "h11-interop")]
        body = req_body(ex.i, ex.req_size)
        cl.send_request(ex.method, "/item/%d?q=%d" % (ex.i, ex.i), user, body,
                        trailers=ex.req_trailers, chunked=ex.req_chunked, pieces=ex.req_pieces)
        pump(cl, cno, split=split)
        stream = 2 * ex.i + 1
        # What cno saw.
        req = cno.request_of(stream)
        assert (req.method, req.path) == (ex.method, "/item/%d?q=%d" % (ex.i, ex.i))
        expected = [(":scheme", "http"), (":authority", AUTHORITY), ("x-seq", str(ex.i)),
                    ("accept", "*/*"), ("user-agent", "h11-interop")]
        # (content-length: see test_content_length_shown_*)
        assert without(req.headers, "content-length") == expected, ex
        assert req.body == body, ex
        assert req.trailers == ex.req_trailers, ex
        assert cno_kinds(cno, stream) == ["start", "head", "tail", "end"], ex  # (no data events kept)
        assert cno.end_of(stream)[2] == 0
        # What h11 saw.
        m = cl.message(ex.i)
        assert m.complete, ex
        _, _, status, headers, reason, version = m.head
        assert (status, version) == (200, "1.1")
        assert reason == "OK"
        assert without(headers, *FRAMING) == [("x-seq", str(ex.i)),
                                              ("content-type", "application/octet-stream"),
                                              ("x-echo-size", str(ex.req_size))], ex
        check_written_framing(headers, ex.resp_size, cl_given=not ex.resp_chunked,
                              final_head=ex.resp_chunked and not ex.resp_size
                              and ex.resp_trailers is None)
        assert m.body == resp_body(ex.i, ex.resp_size), ex
        assert m.trailers == (ex.resp_trailers or []), ex
    assert cl.cycle == len(plan)
    assert not cno.of("close") and not cno.closed
    assert not list(cno.open_streams)


def test_keepalive_200_cno_client_h11_server():
    plan = plan_exchanges(2)
    cno, sv = cno_h11("client")
    cno.keep_data_events = False

    def responder(peer, cycle, msg):
        ex = plan[cycle]
        headers = [("X-Seq", str(ex.i)), ("Content-Type", "text/plain"),
                   ("X-Echo-Size", str(len(msg.body)))]
        return (200, headers, resp_body(ex.i, ex.resp_size), ex.resp_trailers,
                ex.resp_chunked)

    h11_auto_respond(sv, responder)
    split = splitter(6, max_piece=70_000)
    for ex in plan:
        body = req_body(ex.i, ex.req_size)
        user = [("x-seq", str(ex.i)), ("accept", "*/*")]
        if not ex.req_chunked:
            user.append(("content-length", str(ex.req_size)))
        cno.chunk = max(1, ex.req_pieces[0])
        assert cno.next_stream == 2 * ex.i + 1
        stream = cno.request(ex.method, "/item/%d" % ex.i, user, body, ex.req_trailers)
        assert stream == 2 * ex.i + 1
        pump(cno, sv, split=split)
        # What h11 saw.
        m = sv.message(ex.i)
        assert m.complete, ex
        _, _, method, target, headers, version = m.head
        assert (method, target, version) == (ex.method, "/item/%d" % ex.i, "1.1")
        assert header_values(headers, "host") == [AUTHORITY]
        assert without(headers, "host", *FRAMING) == [("x-seq", str(ex.i)), ("accept", "*/*")]
        final_head = ex.req_chunked and not ex.req_size and ex.req_trailers is None
        check_written_framing(headers, ex.req_size, cl_given=not ex.req_chunked,
                              final_head=final_head, response=False)
        assert m.body == body, ex
        assert m.trailers == (ex.req_trailers or []), ex
        # What cno saw.
        code, headers, rbody, trailers = cno.response_of(stream)
        assert code == 200
        expected = [("x-seq", str(ex.i)), ("content-type", "text/plain"),
                    ("x-echo-size", str(ex.req_size))]
        # (content-length: see test_content_length_shown_*)
        assert without(headers, "content-length") == expected, ex
        assert rbody == resp_body(ex.i, ex.resp_size), ex
        assert trailers == ex.resp_trailers, ex
        assert cno_kinds(cno, stream) == ["start", "head", "tail", "end"], ex  # (no data events kept)
        assert cno.end_of(stream)[2] == 0
    assert sv.cycle == len(plan)
    assert not cno.of("close")


# ----------------------------------------------------------------------------------------
# Content-Length is not among the fields docs/raw.md says the engine consumes

def test_content_length_shown_to_cno_server():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    cl.send_request("POST", "/", [("Host", AUTHORITY), ("X-A", "1")], b"hello", chunked=False)
    pump(cl, cno)
    assert cno.request_of(1).headers == [(":scheme", "http"), (":authority", AUTHORITY),
                                         ("x-a", "1"), ("content-length", "5")]


def test_content_length_shown_to_cno_client():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [("X-A", "1")], b"hello", None, False))
    s = cno.request("GET", "/")
    pump(cno, sv)
    assert cno.response_of(s)[1] == [("x-a", "1"), ("content-length", "5")]


# ----------------------------------------------------------------------------------------
# Incremental parsing: every byte in its own data_received, both roles

def test_one_byte_delivery_cno_server():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("x-path", r.path)], r.body[::-1],
                                        [("x-n", str(len(r.body)))] if r.path == "/c" else None))
    cl.send_request("POST", "/a", [("Host", AUTHORITY)], b"hello world")
    pump(cl, cno, split=one_byte)
    cl.send_request("POST", "/c", [("Host", AUTHORITY)], b"0123456789" * 30,
                    trailers=[("x-t", "1")], pieces=[1, 2, 3, 300])
    pump(cl, cno, split=one_byte)
    cl.send_request("GET", "/e", [("Host", AUTHORITY)])
    pump(cl, cno, split=one_byte)
    assert cno.request_of(1).body == b"hello world"
    assert cno.request_of(3).body == b"0123456789" * 30
    assert cno.request_of(3).trailers == [("x-t", "1")]
    assert cno.request_of(5).body == b""
    assert cl.message(0).body == b"dlrow olleh"
    assert cl.message(1).body == (b"0123456789" * 30)[::-1]
    assert cl.message(1).trailers == [("x-n", "300")]
    assert cl.message(2).complete and cl.message(2).body == b""


def test_one_byte_delivery_cno_client():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [("x-n", str(n))], m.body * 2,
                                          [("x-tr", "yes")] if n == 1 else None, n >= 1))
    cno.request("POST", "/a", [("content-length", "5")], b"abcde")
    pump(cno, sv, split=one_byte)
    cno.request("POST", "/b", [], b"xyz" * 50, trailers=[("x-q", "q")])
    pump(cno, sv, split=one_byte)
    cno.request("GET", "/c")
    pump(cno, sv, split=one_byte)
    assert cno.response_of(1)[2:] == (b"abcde" * 2, None)
    assert cno.response_of(3)[2:] == (b"xyz" * 100, [("x-tr", "yes")])
    assert cno.response_of(5)[2:] == (b"", None)
    assert sv.message(1).trailers == [("x-q", "q")]


# ----------------------------------------------------------------------------------------
# Pipelining

PIPELINED = [
    ("GET", "/a", b"", None, None),
    ("POST", "/b", b"B" * 1000, None, False),
    ("POST", "/c", b"chunked body", [("x-check", "c")], True),
    ("HEAD", "/d", b"", None, None),
    ("PUT", "/e", b"", None, True),
    ("GET", "/f", b"", None, None),
]


def pipelined_bytes():
    return b"".join(request_bytes(m, p, [("Host", AUTHORITY), ("X-Path", p)], body,
                                  trailers=tr, chunked=ch)
                    for m, p, body, tr, ch in PIPELINED)


def answer_pipelined(cno, stream):
    i = (stream - 1) // 2
    method, path = PIPELINED[i][:2]
    body = ("response to %s %s" % (method, path)).encode()
    if method == "HEAD":
        cno.write_head(stream, 200, "", "", [("content-length", str(len(body)))], True)
    elif i % 2:
        cno.respond(stream, 200, [("x-path", path)], body)                      # chunked
    else:
        cno.respond(stream, 200, [("x-path", path), ("content-length", str(len(body)))], body)


def check_pipelined_responses(data, eof=False):
    responses, _ = parse_responses(data, [m for m, *_ in PIPELINED], eof=eof)
    assert len(responses) == len(PIPELINED), responses
    for (method, path, *_), r in zip(PIPELINED, responses):
        assert r.status == 200
        if method == "HEAD":
            assert r.body == b""
            assert header_values(r.headers, "content-length") == [
                str(len(("response to HEAD %s" % path).encode()))]
        else:
            assert r.body == ("response to %s %s" % (method, path)).encode()
            assert header_values(r.headers, "x-path") == [path]


@pytest.mark.parametrize("split", [None, one_byte], ids=["whole", "one_byte"])
def test_pipelining_cno_server_answers_later_in_order(split):
    cno, _ = cno_h11("server")
    data = pipelined_bytes()
    for piece in (split(data) if split else [data]):
        cno.receive(piece)
    n = len(PIPELINED)
    # Read ahead: every request is there, in order, as streams 1, 3, 5, ...
    assert [e[1] for e in cno.of("head")] == stream_ids(n)
    assert [e[1] for e in cno.of("tail")] == stream_ids(n)
    for (method, path, body, tr, _), s in zip(PIPELINED, stream_ids(n)):
        req = cno.request_of(s)
        assert (req.method, req.path, req.body, req.trailers) == (method, path, body, tr)
    assert cno.outbound() == b""
    # Only the oldest unanswered stream may be answered.
    for s in stream_ids(n)[1:]:
        with pytest.raises(WouldBlock):
            cno.write_head(s, 200, "", "", [("content-length", "0")], True)
    assert cno.outbound() == b""
    for s in stream_ids(n):
        answer_pipelined(cno, s)
        for later in stream_ids(n)[(s + 1) // 2 + 1:]:
            with pytest.raises(WouldBlock):
                cno.write_head(later, 200, "", "", [("content-length", "0")], True)
    check_pipelined_responses(cno.outbound())
    assert [e[1] for e in cno.of("end")] == stream_ids(n)
    assert all(e[2] == 0 for e in cno.of("end"))
    assert not cno.of("close")


def test_pipelining_cno_server_answers_in_handler():
    cno, _ = cno_h11("server")
    cno.handlers["tail"] = lambda p, s, tr: answer_pipelined(p, s)
    cno.receive(pipelined_bytes())
    check_pipelined_responses(cno.outbound())


def test_pipelining_cno_server_answers_at_head_full_duplex():
    """Answering each request as its head arrives (before its body) keeps the order."""
    cno, _ = cno_h11("server")
    cno.handlers["head"] = lambda p, s, code, *rest: answer_pipelined(p, s)
    cno.receive(pipelined_bytes())
    check_pipelined_responses(cno.outbound())
    assert [e[1] for e in cno.of("tail")] == stream_ids(len(PIPELINED))


def test_pipelining_cno_server_read_ahead_limited_by_max_concurrent_streams():
    cno = CnoH1Peer(server=True, max_concurrent_streams=2)
    cno.start()
    cno.receive(pipelined_bytes())
    assert [e[1] for e in cno.of("head")] == [1, 3]
    answer_pipelined(cno, 1)
    assert [e[1] for e in cno.of("head")] == [1, 3, 5]
    for s in stream_ids(len(PIPELINED))[1:]:
        answer_pipelined(cno, s)
    assert [e[1] for e in cno.of("head")] == stream_ids(len(PIPELINED))
    check_pipelined_responses(cno.outbound())


def test_pipelining_h11_client_after_connection_close_ignored():
    """Requests pipelined after one with Connection: close are ignored."""
    cno, _ = cno_h11("server")
    data = (request_bytes("GET", "/1", [("Host", AUTHORITY)])
            + request_bytes("GET", "/2", [("Host", AUTHORITY), ("Connection", "keep-alive, Close")])
            + request_bytes("GET", "/3", [("Host", AUTHORITY)]))
    cno.handlers["tail"] = lambda p, s, tr: p.respond(s, 200, [("content-length", "1")], b"x")
    cno.receive(data)
    assert [e[1] for e in cno.of("head")] == [1, 3]
    out = cno.outbound()
    responses, closed = parse_responses(out, ["GET", "GET", "GET"], eof=True)
    assert len(responses) == 2
    assert "connection" not in dict(responses[0].headers)
    assert "close" in tokens(responses[1].headers, "connection")
    assert cno.of("close") == [("close",)]


def test_pipelining_cno_client():
    cno, sv = cno_h11("client")
    reqs = [("GET", "/a", b""), ("POST", "/b", b"post body"), ("HEAD", "/c", b""),
            ("DELETE", "/d", b""), ("PUT", "/e", b"x" * 70_000), ("GET", "/f", b"")]
    streams = []
    for method, path, body in reqs:
        headers = [("content-length", str(len(body)))] if body else []
        streams.append(cno.request(method, path, headers, body))
    assert streams == stream_ids(len(reqs))
    out = cno.outbound()
    assert out.count(b" HTTP/1.1\r\n") == len(reqs)

    def responder(peer, cycle, msg):
        method, path, body = reqs[cycle]
        rbody = ("%s %s got %d" % (method, path, len(msg.body))).encode()
        if method == "HEAD":
            return 200, [("X-Path", path), ("Content-Length", "77")], b"", None, None
        return 200, [("X-Path", path)], rbody, None, cycle % 2 == 1

    h11_auto_respond(sv, responder)
    sv.receive(out)        # all requests at once; h11 answers them one at a time
    assert sv.cycle == len(reqs)
    pump(cno, sv)
    for (method, path, body), s in zip(reqs, streams):
        code, headers, rbody, _ = cno.response_of(s)
        assert code == 200
        assert header_values(headers, "x-path") == [path]
        if method == "HEAD":
            assert rbody == b""
        else:
            assert rbody == ("%s %s got %d" % (method, path, len(body))).encode()
        assert sv.message(streams.index(s)).body == body
    assert [e[1] for e in cno.of("tail")] == streams


def test_cno_client_next_request_blocked_until_body_complete():
    cno, sv = cno_h11("client")
    s1 = cno.next_stream
    cno.write_head(s1, 0, "POST", "/up", [(":scheme", "http"), (":authority", AUTHORITY),
                                          ("content-length", "6")], False)
    with pytest.raises(WouldBlock):
        cno.write_head(cno.next_stream, 0, "GET", "/next",
                       [(":scheme", "http"), (":authority", AUTHORITY)], True)
    assert cno.write_data(s1, b"abc", False) == 3
    with pytest.raises(WouldBlock):
        cno.write_head(cno.next_stream, 0, "GET", "/next",
                       [(":scheme", "http"), (":authority", AUTHORITY)], True)
    assert cno.write_data(s1, b"def", True) == 3
    s2 = cno.request("GET", "/next")
    assert s2 == s1 + 2
    h11_auto_respond(sv, lambda p, n, m: (200, [], m.body, None, False))
    pump(cno, sv)
    assert sv.message(0).body == b"abcdef"
    assert cno.response_of(s1)[2] == b"abcdef"
    assert cno.response_of(s2)[2] == b""


# ----------------------------------------------------------------------------------------
# Chunked bodies and trailers

def test_trailers_h11_client_to_cno_server():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    trailers = [("X-Checksum", "abc123"), ("X-Count", "3"), ("X-Dup", "1"), ("X-Dup", "2")]
    cl.send_request("POST", "/t", [("Host", AUTHORITY)], b"a" * 10 + b"b" * 20 + b"c" * 30,
                    trailers=trailers, pieces=[10, 20, 30])
    pump(cl, cno)
    req = cno.request_of(1)
    assert req.body == b"a" * 10 + b"b" * 20 + b"c" * 30
    assert req.trailers == [("x-checksum", "abc123"), ("x-count", "3"), ("x-dup", "1"),
                            ("x-dup", "2")]
    assert cno.of("tail", 1) == [("tail", 1, req.trailers)]
    assert cl.message(0).complete


def test_trailers_chunked_no_trailers_is_none():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    cl.send_request("POST", "/t", [("Host", AUTHORITY)], b"xyz", chunked=True)
    pump(cl, cno)
    assert cno.of("tail", 1) == [("tail", 1, None)]


def test_trailers_cno_client_write_tail_to_h11_server():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"", None, False))
    s = cno.next_stream
    cno.write_head(s, 0, "POST", "/t", [(":scheme", "http"), (":authority", AUTHORITY)], False)
    assert cno.write_data(s, b"first,", False) == 6
    assert cno.write_data(s, b"", False) == 0           # must not end the chunked body
    assert cno.write_data(s, b"second", False) == 6
    cno.write_tail(s, [("x-checksum", "deadbeef"), ("x-other", "v")])
    pump(cno, sv)
    m = sv.message(0)
    assert tokens(m.head[4], "transfer-encoding") == ["chunked"]
    assert m.body == b"first,second"
    assert m.trailers == [("x-checksum", "deadbeef"), ("x-other", "v")]
    assert cno.response_of(s)[0] == 200
    # The connection is still usable.
    s2 = cno.request("GET", "/after")
    pump(cno, sv)
    assert sv.message(1).head[3] == "/after"
    assert cno.response_of(s2)[0] == 200


def test_trailers_cno_server_write_tail_to_h11_client():
    cno, cl = cno_h11("server")

    def tail(p, s, tr):
        p.write_head(s, 200, "", "", [("x-a", "1")], False)
        p.write_data(s, b"part1/", False)
        p.write_data(s, b"", False)
        p.write_data(s, b"part2", False)
        p.write_tail(s, [("x-checksum", "ok"), ("grpc-status", "0")])
    cno.handlers["tail"] = tail
    cl.send_request("GET", "/", [("Host", AUTHORITY)])
    pump(cl, cno)
    m = cl.message(0)
    assert m.body == b"part1/part2"
    assert m.trailers == [("x-checksum", "ok"), ("grpc-status", "0")]
    cl.send_request("GET", "/2", [("Host", AUTHORITY)])
    pump(cl, cno)
    assert cl.message(1).complete


def test_trailers_without_body():
    """write_head (not final) then write_tail at once: an empty chunked body with
    trailers."""
    cno, cl = cno_h11("server")

    def tail(p, s, tr):
        p.write_head(s, 200, "", "", [], False)
        p.write_tail(s, [("x-only", "trailer")])
    cno.handlers["tail"] = tail
    cl.send_request("GET", "/", [("Host", AUTHORITY)])
    pump(cl, cno)
    m = cl.message(0)
    assert m.body == b"" and m.trailers == [("x-only", "trailer")]


@pytest.mark.parametrize("trailers", [None, []], ids=["None", "empty"])
def test_write_tail_no_trailers_ends_chunked_body(trailers):
    cno, cl = cno_h11("server")

    def tail(p, s, tr):
        p.write_head(s, 200, "", "", [], False)
        p.write_data(s, b"abc", False)
        p.write_tail(s, trailers)
    cno.handlers["tail"] = tail
    for i in range(2):
        cl.send_request("GET", "/%d" % i, [("Host", AUTHORITY)])
        pump(cl, cno)
        assert cl.message(i).body == b"abc" and cl.message(i).trailers == []


def test_write_tail_on_content_length_body_drops_trailers():
    cno, cl = cno_h11("server")

    def tail(p, s, tr):
        p.write_head(s, 200, "", "", [("content-length", "3")], False)
        p.write_data(s, b"abc", False)
        p.write_tail(s, [("x-dropped", "yes")])
    cno.handlers["tail"] = tail
    for i in range(3):                      # nothing stray is left on the wire
        cl.send_request("GET", "/%d" % i, [("Host", AUTHORITY)])
        pump(cl, cno)
        m = cl.message(i)
        assert (m.body, m.trailers) == (b"abc", [])
    assert b"x-dropped" not in cno.tx


def test_trailers_h11_server_to_cno_client():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [("Content-Type", "text/plain")], b"hi" * 1000,
                                          [("X-Checksum", "abc"), ("Server-Timing", "db;dur=53")],
                                          True))
    s = cno.request("GET", "/")
    pump(cno, sv, split=splitter(3, 100))
    assert cno.response_of(s) == (200, [("content-type", "text/plain")], b"hi" * 1000,
                                  [("x-checksum", "abc"), ("server-timing", "db;dur=53")])


def test_chunked_extensions_skipped():
    cno, _ = cno_h11("server")
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"5;name=value;other\r\nhello\r\n6 ; ext=\"quoted;str\"\r\n world\r\n"
                b"0;last\r\nX-T: 1\r\n\r\n")
    req = cno.request_of(1)
    assert req.body == b"hello world"
    assert req.trailers == [("x-t", "1")]


def test_chunked_upper_case_hex_and_leading_zeros():
    cno, _ = cno_h11("server")
    body = bytes(range(256)) * 2
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0FF\r\n" + body[:255] + b"\r\n101\r\n" + body[255:] + b"\r\n000\r\n\r\n")
    assert cno.request_of(1).body == body


# ----------------------------------------------------------------------------------------
# HTTP/1.0

def test_http10_client_cno_server_unknown_length_closes():
    """An HTTP/1.0 request (by hand: h11 only sends HTTP/1.1); the body of unknown length
    is sent as is, and ends with the connection, which h11 sees."""
    cno, _ = cno_h11("server")
    body = body_bytes("h10", 3000)

    def tail(p, s, tr):
        p.write_head(s, 200, "", "", [("content-type", "text/plain")], False)
        for k in range(0, 3000, 1000):
            assert p.write_data(s, body[k:k + 1000], False) == 1000
        p.write_data(s, b"", True)
    cno.handlers["tail"] = tail
    cno.receive(b"GET /old HTTP/1.0\r\nHost: example.com\r\nUser-Agent: old\r\n\r\n")
    req = cno.request_of(1)
    assert (req.method, req.path) == ("GET", "/old")
    assert cno.of("close") == [("close",)]
    out = cno.outbound()
    status_line, raw_headers, rest = split_head(out)
    assert tokens(raw_headers, "transfer-encoding") == [], "chunked sent to an HTTP/1.0 client"
    assert header_values(raw_headers, "content-length") == []
    assert "close" in tokens(raw_headers, "connection")
    assert rest == body
    # h11: without the EOF, the body is not complete; with it, it is.
    responses, closed = parse_responses(out)
    assert responses == [] or responses[0].trailers is None
    responses, closed = parse_responses(out, eof=True)
    assert [(r.status, r.body) for r in responses] == [(200, body)]
    assert closed


def test_http10_client_cno_server_content_length_still_closes():
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "5")], b"hello", None))
    cno.receive(b"POST / HTTP/1.0\r\nHost: a\r\nContent-Length: 8\r\n\r\nold body")
    assert cno.request_of(1).body == b"old body"
    assert cno.of("close") == [("close",)]
    responses, closed = parse_responses(cno.outbound(), eof=True)
    assert [(r.status, r.body) for r in responses] == [(200, b"hello")]
    assert "close" in tokens(responses[0].headers, "connection")


def test_http10_client_without_host():
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "2")], b"ok", None))
    cno.receive(b"GET /nohost HTTP/1.0\r\n\r\n")
    assert cno.request_of(1).path == "/nohost"
    responses, _ = parse_responses(cno.outbound(), eof=True)
    assert [(r.status, r.body) for r in responses] == [(200, b"ok")]


def test_http10_keep_alive_raw():
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "2")], b"ok", None))
    cno.receive(b"GET /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
    assert not cno.of("close")
    head, headers, rest = split_head(cno.outbound())
    assert "close" not in tokens(headers, "connection")
    assert rest == b"ok"
    assert [h for h in cno.request_of(1).headers if h[0] in ("connection", "keep-alive")] == []
    cno.receive(b"GET /b HTTP/1.0\r\nHost: a\r\nConnection: Keep-Alive\r\n\r\n")
    assert cno.request_of(3).path == "/b"
    assert not cno.of("close")
    head, headers, rest = split_head(cno.outbound())
    assert "close" not in tokens(headers, "connection") and rest == b"ok"
    # HTTP/1.0 without keep-alive: this one is the last.
    cno.receive(b"GET /c HTTP/1.0\r\nHost: a\r\n\r\n")
    assert cno.request_of(5).path == "/c"
    head, headers, rest = split_head(cno.outbound())
    assert "close" in tokens(headers, "connection")
    assert cno.of("close") == [("close",)]


def test_http10_keep_alive_unknown_length_closes():
    cno, _ = cno_h11("server")

    def tail(p, s, tr):
        p.write_head(s, 200, "", "", [], False)
        p.write_data(s, b"until close", True)
    cno.handlers["tail"] = tail
    cno.receive(b"GET /a HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n\r\n")
    head, headers, rest = split_head(cno.outbound())
    assert tokens(headers, "transfer-encoding") == []
    assert "close" in tokens(headers, "connection")
    assert rest == b"until close"
    assert cno.of("close") == [("close",)]


@pytest.mark.parametrize("split", [None, one_byte], ids=["whole", "one_byte"])
def test_http10_response_to_cno_client_until_close(split):
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/old")
    head, headers, _ = split_head(cno.outbound())
    assert head == "GET /old HTTP/1.1"
    body = body_bytes("h10-resp", 5000)
    data = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nServer: old\r\n\r\n" + body
    for piece in (split(data) if split else [data]):
        cno.receive(piece)
    heads = cno.of("head", s)
    assert [(e[2], e[5]) for e in heads] == [(200, [("content-type", "text/plain"),
                                                    ("server", "old")])]
    assert cno.body(s) == body
    assert not cno.of("tail"), "the body of an HTTP/1.0 response ends only at EOF"
    cno.receive_eof()
    assert cno.of("tail", s) == [("tail", s, None)]
    assert cno.end_of(s)[2] == 0, "the response completed at EOF: a normal end"
    assert cno.of("close") == [("close",)]
    kinds = [e[0] for e in cno.events if e[0] in ("tail", "end", "close")]
    assert kinds == ["tail", "end", "close"]


def test_http11_response_until_close_to_cno_client():
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    cno.receive(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nsome ")
    cno.receive(b"bytes")
    assert cno.body(s) == b"some bytes" and not cno.of("tail")
    cno.receive_eof()
    assert cno.of("tail", s) == [("tail", s, None)]
    assert cno.end_of(s)[2] == 0


def test_http10_response_with_content_length_closes_cno_client():
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    cno.receive(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert cno.of("tail", s) == [("tail", s, None)]
    assert cno.body(s) == b"hello"
    assert cno.of("close") == [("close",)], "HTTP/1.0 without keep-alive: the exchange is the last"
    with pytest.raises(ConnectionClosed):
        cno.write_head(cno.next_stream, 0, "GET", "/2",
                       [(":scheme", "http"), (":authority", AUTHORITY)], True)


def test_truncated_content_length_at_eof_cancels_cno_client():
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    cno.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    cno.receive_eof()
    assert not cno.of("tail")
    assert cno.end_of(s)[2:] == (CNO_RST_CANCEL, CNO_LOCAL)
    assert cno.of("close") == [("close",)]


def test_truncated_request_at_eof_cancels_cno_server():
    srv = CnoH1Peer(server=True).start()
    srv.receive(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab")
    assert srv.body(1) == b"ab"
    srv.receive_eof()
    assert not srv.of("tail")
    assert srv.end_of(1)[2:] == (CNO_RST_CANCEL, CNO_LOCAL)
    assert srv.of("close") == [("close",)]


# ----------------------------------------------------------------------------------------
# 100-continue and other 1xx

@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_expect_100_continue_h11_client_cno_server(chunked):
    cno, cl = cno_h11("server")

    def head(p, s, code, method, path, headers):
        if ("expect", "100-continue") in headers:
            p.write_head(s, 100, "", "", [], False)
    cno.handlers["head"] = head
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", str(len(r.body)))], r.body,
                                        None))
    body = b"the body, sent after 100"
    hdrs = [("Host", AUTHORITY), ("Expect", "100-continue")]
    hdrs.append(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(len(body))))
    cl.send(h11.Request(method="POST", target="/upload", headers=hdrs))
    assert cl.conn.client_is_waiting_for_100_continue
    pump(cl, cno)
    assert cl.of("info") == [("info", 0, 100, [])]
    assert not cl.conn.client_is_waiting_for_100_continue
    assert not cno.of("tail")
    # The 100 is a bare head: no framing headers.
    status_line, raw_headers, rest = split_head(cno.tx)
    assert status_line.startswith("HTTP/1.1 100 ")
    assert without(raw_headers, "connection") == [] and rest == b""
    cl.send(h11.Data(data=body), h11.EndOfMessage())
    pump(cl, cno)
    assert cno.request_of(1).body == body
    assert ("expect", "100-continue") in cno.request_of(1).headers
    m = cl.message(0)
    assert m.head[2] == 200 and m.body == body
    assert cno_kinds(cno, 1) == ["start", "head", "data", "tail", "end"]
    # keep-alive goes on
    cl.send_request("GET", "/next", [("Host", AUTHORITY)])
    pump(cl, cno)
    assert cl.message(1).complete and cno.request_of(3).path == "/next"


def test_expect_100_continue_cno_client_h11_server():
    cno, sv = cno_h11("client")
    s = cno.next_stream
    cno.write_head(s, 0, "POST", "/upload", [(":scheme", "http"), (":authority", AUTHORITY),
                                             ("expect", "100-continue"),
                                             ("content-length", "11")], False)
    pump(cno, sv)
    assert sv.conn.they_are_waiting_for_100_continue
    sv.send(h11.InformationalResponse(status_code=100, headers=[]))
    pump(cno, sv)
    assert [(e[2], e[5]) for e in cno.of("head", s)] == [(100, [])]
    assert not cno.of("tail"), "a 1xx never completes the request"
    cno.write_data(s, b"hello world", True)
    h11_auto_respond(sv, lambda p, n, m: (201, [("Location", "/x")], b"made " + m.body, None,
                                          False))
    pump(cno, sv)
    assert sv.message(0).body == b"hello world"
    assert [e[2] for e in cno.of("head", s)] == [100, 201]
    code, headers, body, trailers = cno.response_of(s)
    assert (code, without(headers, "content-length"), body, trailers) == (
        201, [("location", "/x")], b"made hello world", None)
    assert cno_kinds(cno, s) == ["start", "head", "head", "data", "tail", "end"]
    s2 = cno.request("GET", "/again")
    pump(cno, sv)
    assert cno.response_of(s2)[0] == 201


def test_several_1xx_then_final_to_cno_client():
    cno, sv = cno_h11("client")
    s = cno.request("GET", "/page")
    pump(cno, sv)
    sv.send(h11.InformationalResponse(status_code=103, headers=[("Link", "</s.css>; rel=preload")]),
            h11.InformationalResponse(status_code=103, headers=[("Link", "</a.js>; rel=preload")]),
            h11.InformationalResponse(status_code=102, headers=[]))
    pump(cno, sv)
    assert not cno.of("tail")
    sv.send_response(200, [("Content-Type", "text/html")], b"<html>", chunked=True)
    pump(cno, sv)
    heads = [(e[2], e[5]) for e in cno.of("head", s)]
    assert heads == [(103, [("link", "</s.css>; rel=preload")]),
                     (103, [("link", "</a.js>; rel=preload")]), (102, []),
                     (200, [("content-type", "text/html")])]
    assert cno.of("tail") == [("tail", s, None)] and cno.body(s) == b"<html>"


def test_early_hints_cno_server_to_h11_client():
    cno, cl = cno_h11("server")

    def head(p, s, code, *rest):
        p.write_head(s, 103, "", "", [("link", "</s.css>; rel=preload")], False)
        p.write_head(s, 200, "", "", [("content-length", "2")], False)
        p.write_data(s, b"ok", True)
    cno.handlers["head"] = head
    cl.send_request("GET", "/", [("Host", AUTHORITY)])
    pump(cl, cno)
    assert cl.of("info") == [("info", 0, 103, [("link", "</s.css>; rel=preload")])]
    assert cl.message(0).head[2] == 200 and cl.message(0).body == b"ok"


# ----------------------------------------------------------------------------------------
# Connection: close, shutdown

def test_connection_close_from_h11_client():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "3")], b"bye", None))
    cl.send_request("GET", "/", [("Host", AUTHORITY), ("Connection", "close")])
    pump(cl, cno)
    assert [h for h in cno.request_of(1).headers if h[0] == "connection"] == []
    m = cl.message(0)
    assert m.body == b"bye"
    assert "close" in tokens(m.head[3], "connection")
    assert cno.of("close") == [("close",)]
    assert cl.of("closed") and cl.conn.their_state is h11.CLOSED
    assert cno.end_of(1)[2] == 0


def test_connection_close_decided_by_cno_server():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("connection", "close"), ("content-length", "2")],
                                        b"ok", None))
    cl.send_request("GET", "/", [("Host", AUTHORITY)])
    pump(cl, cno)
    m = cl.message(0)
    assert "close" in tokens(m.head[3], "connection")
    assert m.body == b"ok"
    assert cl.conn.our_state in (h11.MUST_CLOSE, h11.CLOSED)
    assert cno.of("close") == [("close",)]
    assert cl.of("closed")


def test_connection_close_from_cno_client():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"last", None, False))
    s = cno.request("GET", "/", [("connection", "close")])
    pump(cno, sv)
    assert "close" in tokens(sv.message(0).head[4], "connection")
    assert cno.response_of(s)[2] == b"last"
    assert cno.of("close") == [("close",)]
    with pytest.raises(ConnectionClosed):
        cno.write_head(cno.next_stream, 0, "GET", "/2",
                       [(":scheme", "http"), (":authority", AUTHORITY)], True)


def test_connection_close_from_h11_server():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [("Connection", "close")], b"last", None, False))
    s = cno.request("GET", "/")
    pump(cno, sv)
    code, headers, body, _ = cno.response_of(s)
    assert (code, body) == (200, b"last")
    assert [h for h in headers if h[0] == "connection"] == []
    assert cno.of("close") == [("close",)]
    assert cno.end_of(s)[2] == 0


def test_shutdown_cno_server_after_exchange_in_progress():
    cno, cl = cno_h11("server")
    cno.handlers["head"] = lambda p, s, *rest: p.shutdown()
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "4")], b"done", None))
    cl.send_request("POST", "/", [("Host", AUTHORITY)], b"body")
    pump(cl, cno)
    m = cl.message(0)
    assert m.body == b"done"
    assert "close" in tokens(m.head[3], "connection")
    assert cno.of("close") == [("close",)]


def test_shutdown_idle_cno_server_closes():
    cno, cl = cno_h11("server")
    cno.shutdown()
    assert cno.of("close") == [("close",)]


def test_input_after_close_is_ignored():
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    cno.data_received(request_bytes("GET", "/", [("Host", AUTHORITY), ("Connection", "close")]))
    assert cno.of("close")
    try:
        cno.data_received(request_bytes("GET", "/2", [("Host", AUTHORITY)]))
    except ConnectionClosed:
        pass
    assert len(cno.of("head")) == 1


# ----------------------------------------------------------------------------------------
# HEAD, 204, 304

def test_head_h11_client_cno_server():
    cno, cl = cno_h11("server")

    def tail(p, s, tr):
        req = p.request_of(s)
        if req.path == "/cl":
            p.write_head(s, 200, "", "", [("content-length", "1234")], True)
        elif req.path == "/nocl":
            p.write_head(s, 200, "", "", [("content-type", "text/plain")], True)
        elif req.path == "/notfinal":
            p.write_head(s, 200, "", "", [("content-type", "text/plain")], False)
            p.write_data(s, b"", True)
        else:
            p.respond(s, 200, [("content-length", "3")], b"get")
    cno.handlers["tail"] = tail
    for i, path in enumerate(["/cl", "/nocl", "/notfinal"]):
        cl.send_request("HEAD", path, [("Host", AUTHORITY)])
        pump(cl, cno)
        m = cl.message(i)
        assert m.complete and m.body == b""
        if path == "/cl":
            assert header_values(m.head[3], "content-length") == ["1234"]
        else:
            assert header_values(m.head[3], "content-length") == [], \
                "no content-length: 0 on an answer to HEAD"
            assert tokens(m.head[3], "transfer-encoding") in ([], ["chunked"])
    cl.send_request("GET", "/get", [("Host", AUTHORITY)])
    pump(cl, cno)
    assert cl.message(3).body == b"get"
    # nothing but heads went out for HEAD
    out = bytes(cno.tx)
    assert out.count(b"HTTP/1.1 200") == 4
    assert out.endswith(b"\r\n\r\nget")
    assert b"0\r\n\r\n" not in out


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_head_cno_client_h11_server(framing):
    cno, sv = cno_h11("client")

    def responder(p, n, m):
        if m.head[2] == "HEAD":
            return 200, [("Content-Length", "5000")] if framing == "content-length" else \
                [("Transfer-Encoding", "chunked")], b"", None, None
        return 200, [], b"the get body", None, False
    h11_auto_respond(sv, responder)
    s = cno.request("HEAD", "/")
    pump(cno, sv)
    assert cno.of("tail", s) == [("tail", s, None)]
    assert cno.body(s) == b""
    s2 = cno.request("GET", "/")
    pump(cno, sv)
    assert cno.response_of(s2)[2] == b"the get body"


@pytest.mark.parametrize("code", [204, 304])
def test_no_content_statuses_h11_server_to_cno_client(code):
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (
        (code, [("Content-Length", "1000")] if code == 304 else [], b"", None, None) if n == 0
        else (200, [], b"next", None, False)))
    s = cno.request("GET", "/")
    pump(cno, sv)
    assert cno.of("tail", s) == [("tail", s, None)] and cno.body(s) == b""
    assert cno.of("head", s)[0][2] == code
    s2 = cno.request("GET", "/2")
    pump(cno, sv)
    assert cno.response_of(s2)[2] == b"next"


def test_no_content_statuses_raw_to_cno_client():
    """204/304 with framing headers that claim a body: no body follows, by the RFC."""
    cno = CnoH1Peer(server=False).start()
    s1 = cno.request("GET", "/1")
    s2 = cno.request("GET", "/2")
    s3 = cno.request("GET", "/3")
    cno.outbound()
    cno.receive(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\nETag: \"x\"\r\n\r\n"
                b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc")
    assert [e[2] for e in cno.of("head")] == [304, 204, 200]
    assert [e[1] for e in cno.of("tail")] == [s1, s2, s3]
    assert cno.body(s1) == cno.body(s2) == b"" and cno.body(s3) == b"abc"


@pytest.mark.parametrize("code", [204, 304])
@pytest.mark.parametrize("final", [True, False])
def test_no_content_statuses_cno_server_to_h11_client(code, final):
    cno, cl = cno_h11("server")

    def tail(p, s, tr):
        if p.request_of(s).path == "/next":
            p.respond(s, 200, [("content-length", "4")], b"next")
            return
        headers = [("etag", '"v1"')] + ([("content-length", "1000")] if code == 304 else [])
        p.write_head(s, code, "", "", headers, final)
        if not final:
            p.write_data(s, b"", True)
    cno.handlers["tail"] = tail
    cl.send_request("GET", "/", [("Host", AUTHORITY)])
    pump(cl, cno)
    m = cl.message(0)
    assert m.head[2] == code and m.body == b"" and m.complete
    cls = header_values(m.head[3], "content-length")
    assert cls == (["1000"] if code == 304 else []), "no content-length: 0 added to %d" % code
    assert tokens(m.head[3], "transfer-encoding") == []
    cl.send_request("GET", "/next", [("Host", AUTHORITY)])
    pump(cl, cno)
    assert cl.message(1).body == b"next"


# ----------------------------------------------------------------------------------------
# Heads: names, values, sizes, counts

def test_request_head_shape_h11_client():
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    cl.send(h11.Request(method="GET", target="/p?a=1&b=%20", headers=[
        ("Host", "Example.ORG:8080"), ("X-Mixed-Case", "Value Keeps Case"),
        ("Connection", "keep-alive"), ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"), ("Accept-Encoding", "gzip, br"),
        ("X-Empty", ""), ("X-Latin1", b"caf\xe9"), ("X-Tab", "a\tb"),
        ("x-a!#$%&'*+-.^_`|~", "token chars")]), h11.EndOfMessage())
    pump(cl, cno)
    _, s, code, method, path, headers = cno.of("head")[0]
    assert (s, code, method, path) == (1, 0, "GET", "/p?a=1&b=%20")
    assert headers == [(":scheme", "http"), (":authority", "Example.ORG:8080"),
                       ("x-mixed-case", "Value Keeps Case"), ("accept-encoding", "gzip, br"),
                       ("x-empty", ""), ("x-latin1", "caf\xe9"), ("x-tab", "a\tb"),
                       ("x-a!#$%&'*+-.^_`|~", "token chars")]


def test_request_absolute_form_authority():
    cno, _ = cno_h11("server")
    cno.receive(b"GET http://origin.example:81/x?y HTTP/1.1\r\nHost: origin.example:81\r\n\r\n")
    headers = cno.of("head")[0][5]
    assert dict(headers)[":authority"] == "origin.example:81"
    assert [h for h in headers if h[0] == "host"] == []


def test_scheme_attribute():
    cno = CnoH1Peer(server=True)
    cno.scheme = "https"
    cno.start()
    cno.receive(request_bytes("GET", "/", [("Host", AUTHORITY)]))
    assert cno.of("head")[0][5][:2] == [(":scheme", "https"), (":authority", AUTHORITY)]


class RawHeadPeer(CnoH1Peer):
    """Keeps on_message_head's arguments as the engine passed them."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.raw_heads = []

    def on_message_head(self, stream, code, method, path, headers):
        self.raw_heads.append((method, path, headers))
        super().on_message_head(stream, code, method, path, headers)


def test_bytes_headers_cno_server():
    peer = RawHeadPeer(server=True)
    peer.bytes_headers = True
    peer.start()
    peer.receive(request_bytes("PUT", "/b", [("Host", "h"), ("X-Y", b"z\xff")], b"1"))
    method, path, headers = peer.raw_heads[0]
    assert (method, path) == (b"PUT", b"/b")
    assert all(type(x) is bytes for h in headers for x in h[:2]), headers
    assert [tuple(h[:2]) for h in headers if h[0] != b"content-length"] == [
        (b":scheme", b"http"), (b":authority", b"h"), (b"x-y", b"z\xff")]


def test_cno_writes_host_and_drops_pseudo_headers():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"", None, False))
    s = cno.next_stream
    cno.write_head(s, 0, "GET", "/x", [(":scheme", "https"), (":authority", "host.example:444"),
                                       ("x-a", "1"), ("accept", "*/*")], True)
    pump(cno, sv)
    m = sv.message(0)
    assert m.head[2:4] == ("GET", "/x")
    assert header_values(m.head[4], "host") == ["host.example:444"]
    assert [n for n, v in m.head[4] if n.startswith(":")] == []
    assert without(m.head[4], "host", *FRAMING) == [("x-a", "1"), ("accept", "*/*")]
    start_line = bytes(sv.rx).split(b"\r\n", 1)[0]
    assert start_line == b"GET /x HTTP/1.1"


@pytest.mark.parametrize("code,reason", [(200, "OK"), (201, None), (404, None), (418, None),
                                         (299, None), (500, None), (599, None)])
def test_reason_phrase_always_written(code, reason):
    cno, cl = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (code, [("content-length", "0")], b"", None))
    cl.send_request("GET", "/", [("Host", AUTHORITY)])
    pump(cl, cno)
    m = cl.message(0)
    assert m.head[2] == code
    assert m.head[5] == "1.1"
    assert m.head[4], "empty reason phrase"
    if reason:
        assert m.head[4] == reason
    assert not [h for h in m.head[3] if h[0].startswith(":")]


@pytest.mark.parametrize("role", ["cno_server", "cno_client"])
def test_large_header_values_both_ways(role):
    big_req = "r" * 30_000
    big_resp = "s" * 60_000
    cno, other = cno_h11("server" if role == "cno_server" else "client")
    if role == "cno_server":
        cno_auto_respond(cno, lambda p, r: (200, [("x-big", big_resp), ("content-length", "2")],
                                            b"ok", None))
        other.send_request("GET", "/", [("Host", AUTHORITY), ("X-Big", big_req),
                                        ("Cookie", "c" * 20_000)])
        pump(other, cno, split=splitter(9, 5000))
        hdrs = cno.request_of(1).headers
        assert dict(hdrs)["x-big"] == big_req and dict(hdrs)["cookie"] == "c" * 20_000
        assert dict(other.message(0).head[3])["x-big"] == big_resp
    else:
        h11_auto_respond(other, lambda p, n, m: (200, [("X-Big", big_resp)], b"ok", None, False))
        s = cno.request("GET", "/", [("x-big", big_req), ("cookie", "c" * 20_000)])
        pump(cno, other, split=splitter(9, 5000))
        assert dict(other.message(0).head[4])["x-big"] == big_req
        assert dict(cno.response_of(s)[1])["x-big"] == big_resp


@pytest.mark.parametrize("role", ["cno_server", "cno_client"])
def test_many_headers_both_ways(role):
    many = [("x-h-%03d" % k, "v%d" % k) for k in range(150)] + \
        [("set-cookie" if role == "cno_client" else "x-dup", "c=%d" % k) for k in range(30)]
    cno, other = cno_h11("server" if role == "cno_server" else "client")
    if role == "cno_server":
        cno_auto_respond(cno, lambda p, r: (200, many + [("content-length", "0")], b"", None))
        other.send_request("GET", "/", [("Host", AUTHORITY)] + many)
        pump(other, cno)
        assert cno.request_of(1).headers[2:] == many
        assert without(other.message(0).head[3], *FRAMING) == many
    else:
        h11_auto_respond(other, lambda p, n, m: (200, many, b"", None, False))
        s = cno.request("GET", "/", many)
        pump(cno, other)
        assert without(other.message(0).head[4], "host", *FRAMING) == many
        assert without(cno.response_of(s)[1], *FRAMING) == many


def test_head_over_max_head_size_431():
    cno, cl = cno_h11("server")
    cl.send_request("GET", "/", [("Host", AUTHORITY), ("X-Huge", "h" * 70_000)])
    with pytest.raises(ProtocolError) as info:
        pump(cl, cno)
    assert info.value.status == 431
    responses, _ = parse_responses(cno.outbound(), eof=True)
    assert [r.status for r in responses] == [431]
    assert "close" in tokens(responses[0].headers, "connection")
    assert cno.closed
    assert not cno.of("head")


def test_max_head_size_attribute():
    srv = CnoH1Peer(server=True)
    srv.max_head_size = 1024
    srv.start()
    srv.receive(request_bytes("GET", "/", [("Host", "a"), ("X-A", "a" * 800)]))
    assert len(srv.of("head")) == 1
    srv.respond(1, 204)
    with pytest.raises(ProtocolError) as info:
        srv.receive(request_bytes("GET", "/", [("Host", "a"), ("X-A", "a" * 2000)]))
    assert info.value.status == 431


def test_response_head_over_max_head_size_cno_client():
    cno, sv = cno_h11("client")
    cno.request("GET", "/")
    pump(cno, sv)
    sv.send_response(200, [("X-Huge", "h" * 70_000)], b"")
    with pytest.raises(ProtocolError):
        pump(cno, sv)


def test_too_many_headers():
    cno, cl = cno_h11("server")
    cl.send_request("GET", "/", [("Host", AUTHORITY)] + [("x-%d" % k, "v") for k in range(300)])
    with pytest.raises(ProtocolError) as info:
        pump(cl, cno)
    assert info.value.status in (400, 431)
    responses, _ = parse_responses(cno.outbound(), eof=True)
    assert [r.status for r in responses] == [info.value.status]


def test_max_header_count_attribute():
    srv = CnoH1Peer(server=True)
    srv.max_header_count = 10
    srv.start()
    srv.receive(request_bytes("GET", "/", [("Host", "a")] + [("x-%d" % k, "v") for k in range(4)]))
    assert len(srv.of("head")) == 1
    srv.respond(1, 204)
    with pytest.raises(ProtocolError):
        srv.receive(request_bytes("GET", "/", [("Host", "a")] + [("x-%d" % k, "v") for k in range(30)]))


# ----------------------------------------------------------------------------------------
# Malformed requests: ProtocolError with a status, and the answer h11 can parse

def raw(head, body=b""):
    return head.replace(b"\n", b"\r\n") + body


BAD_REQUESTS = [
    ("cl-and-te", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: 5\nTransfer-Encoding: chunked\n\n",
                      b"0\r\n\r\n"), 400),
    ("te-and-cl", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\nContent-Length: 5\n\n",
                      b"0\r\n\r\n"), 400),
    ("cl-differ", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: 5\nContent-Length: 6\n\n",
                      b"hello!"), 400),
    ("cl-list-differ", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: 5, 6\n\n", b"hello!"), 400),
    ("cl-plus", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: +5\n\n", b"hello"), 400),
    ("cl-minus", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: -5\n\n", b"hello"), 400),
    ("cl-hex", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: 0x5\n\n", b"hello"), 400),
    ("cl-inner-space", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: 1 2\n\n", b"hello"), 400),
    ("cl-empty", raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: \n\n", b""), 400),
    ("te-last-not-chunked", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked, gzip\n\n",
                                b"0\r\n\r\n"), 400),
    ("te-unknown", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: bogus, chunked\n\n",
                       b"0\r\n\r\n"), 501),
    ("obs-fold", raw(b"GET / HTTP/1.1\nHost: a\nX-A: b\n c\n\n"), 400),
    ("obs-fold-tab", raw(b"GET / HTTP/1.1\nHost: a\nX-A: b\n\tc\n\n"), 400),
    ("space-before-colon", raw(b"GET / HTTP/1.1\nHost : a\n\n"), 400),
    ("tab-before-colon", raw(b"GET / HTTP/1.1\nHost: a\nX-A\t: b\n\n"), 400),
    ("bare-lf-chunk-size", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
                               b"5\nhello\r\n0\r\n\r\n"), 400),
    ("bare-lf-chunk-data", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
                               b"5\r\nhello\n0\r\n\r\n"), 400),
    ("bad-chunk-size", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
                           b"zz\r\nhello\r\n0\r\n\r\n"), 400),
    ("chunk-data-overrun", raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
                               b"5\r\nhelloXX\r\n0\r\n\r\n"), 400),
    ("unknown-version", raw(b"GET / HTTP/3.0\nHost: a\n\n"), 505),
    ("garbage-request-line", raw(b"HELLO\n\n"), 400),
    ("bad-method-char", raw(b"G(T / HTTP/1.1\nHost: a\n\n"), 400),
    ("nul-in-value", raw(b"GET / HTTP/1.1\nHost: a\nX-A: a\x00b\n\n"), 400),
    ("cr-in-value", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n", 400),
    ("no-colon", raw(b"GET / HTTP/1.1\nHost: a\nNoColonHere\n\n"), 400),
    ("empty-name", raw(b"GET / HTTP/1.1\nHost: a\n: v\n\n"), 400),
]


@pytest.mark.parametrize("split", [None, one_byte], ids=["whole", "one_byte"])
@pytest.mark.parametrize("data,status", [b[1:] for b in BAD_REQUESTS],
                         ids=[b[0] for b in BAD_REQUESTS])
def test_malformed_request_gets_status(data, status, split):
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    with pytest.raises(ProtocolError) as info:
        for piece in (split(data) if split else [data]):
            cno.receive(piece)
    assert info.value.status == status
    assert cno.closed
    responses, _ = parse_responses(cno.outbound(), eof=True)
    assert [r.status for r in responses] == [status], "cno's own error answer"
    assert "close" in tokens(responses[0].headers, "connection")
    assert not cno.of("tail")
    with pytest.raises(ConnectionClosed):
        cno.data_received(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")


def test_malformed_after_answered_request():
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "2")], b"ok", None))
    data = request_bytes("GET", "/good", [("Host", "a")]) + BAD_REQUESTS[0][1]
    with pytest.raises(ProtocolError) as info:
        cno.receive(data)
    assert info.value.status == 400
    responses, _ = parse_responses(cno.outbound(), ["GET", "POST"], eof=True)
    assert [r.status for r in responses] == [200, 400]


def test_malformed_while_a_response_is_owed_writes_nothing():
    cno, _ = cno_h11("server")
    data = request_bytes("GET", "/good", [("Host", "a")]) + BAD_REQUESTS[0][1]
    with pytest.raises(ProtocolError) as info:
        cno.receive(data)
    assert info.value.status == 400
    assert cno.of("head", 1)
    assert cno.outbound() == b"", "a 400 written while the response to stream 1 is owed"


def test_bare_lf_head_lines_accepted():
    cno, _ = cno_h11("server")
    cno.receive(b"GET /lf HTTP/1.1\nHost: a\nX-A: b\n\n")
    assert cno.request_of(1).path == "/lf"
    assert dict(cno.request_of(1).headers)["x-a"] == "b"


def test_malformed_response_to_cno_client():
    cno = CnoH1Peer(server=False).start()
    cno.request("GET", "/")
    cno.outbound()
    with pytest.raises(ProtocolError):
        cno.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"0\r\n\r\n")
    assert cno.closed


def test_response_te_not_chunked_read_until_close():
    """RFC 9112 6.3: a response whose last transfer coding is not chunked is read until
    the connection closes (unlike a request, where that is an error)."""
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    cno.receive(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nraw-gzip-bytes")
    cno.receive_eof()
    assert cno.body(s) == b"raw-gzip-bytes"
    assert cno.of("tail", s)


def test_odd_header_values_round_trip():
    """Header values with obs-text and inner whitespace survive a round trip."""
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [("X-R", b"caf\xe9 \t x")], b"", None, False))
    s = cno.request("GET", "/", [("x-q", "a \t b\xff")])
    pump(cno, sv)
    assert dict(sv.message(0).head[4])["x-q"] == "a \t b\xff"
    assert dict(cno.response_of(s)[1])["x-r"] == "caf\xe9 \t x"


# ----------------------------------------------------------------------------------------
# Tunnels: Upgrade (not h2c) and CONNECT, through h11's protocol switching

def test_upgrade_websocket_tunnel_h11_client():
    cno, cl = cno_h11("server")

    def upgrade(p, s):
        p.write_head(s, 101, "", "", [("upgrade", "websocket"), ("connection", "upgrade")], False)
        p.write_data(s, b"server-frame", False)
    cno.handlers["upgrade"] = upgrade
    cl.send(h11.Request(method="GET", target="/ws", headers=[
        ("Host", AUTHORITY), ("Upgrade", "websocket"), ("Connection", "Upgrade")]),
        h11.EndOfMessage())
    pump(cl, cno)
    assert cno.of("upgrade") == [("upgrade", 1)]
    assert cl.of("info") and cl.of("info")[0][2] == 101
    assert cl.conn.our_state is h11.SWITCHED_PROTOCOL
    assert cl.trailing == b"server-frame"
    cno.receive(b"client-frame")
    assert cno.body(1) == b"client-frame"
    cno.write_data(1, b"", True)
    assert cno.of("close")


def test_connect_tunnel_h11_client():
    cno, cl = cno_h11("server")

    def head(p, s, code, method, path, headers):
        assert method == "CONNECT"
        p.write_head(s, 200, "", "", [], False)
    cno.handlers["head"] = head
    cl.send(h11.Request(method="CONNECT", target="origin.example:443",
                        headers=[("Host", "origin.example:443")]), h11.EndOfMessage())
    pump(cl, cno)
    assert cl.of("response")[0][2] == 200
    assert cl.conn.our_state is h11.SWITCHED_PROTOCOL
    assert tokens(split_head(cno.tx)[1], "transfer-encoding") == []
    cno.receive(b"\x16\x03\x01tls-ish")
    assert cno.body(1) == b"\x16\x03\x01tls-ish"
    cno.write_data(1, b"\x16\x03\x03back", False)
    assert cno.outbound().endswith(b"\x16\x03\x03back")


# ----------------------------------------------------------------------------------------
# Tunnels: the 101 itself, and the client side

def test_101_carries_connection_upgrade():
    """RFC 9110 7.8: a sender of Upgrade must also send Connection: upgrade (and RFC 6455
    4.1: a WebSocket client fails the connection without it). The application's own
    connection header is dropped by the engine, so the engine must write this one."""
    cno, cl = cno_h11("server")
    cno.handlers["upgrade"] = lambda p, s: p.write_head(
        s, 101, "", "", [("upgrade", "websocket"), ("connection", "upgrade")], False)
    cl.send(h11.Request(method="GET", target="/ws", headers=[
        ("Host", AUTHORITY), ("Upgrade", "websocket"), ("Connection", "Upgrade")]),
        h11.EndOfMessage())
    pump(cl, cno)
    status_line, headers, _ = split_head(cno.tx)
    assert status_line == "HTTP/1.1 101 Switching Protocols"
    assert tokens(headers, "upgrade") == ["websocket"]
    assert "upgrade" in tokens(headers, "connection"), headers


def test_websocket_upgrade_cno_client_h11_server():
    cno, sv = cno_h11("client")
    s = cno.next_stream
    cno.write_head(s, 0, "GET", "/chat", [(":scheme", "http"), (":authority", AUTHORITY),
                                          ("upgrade", "websocket"),
                                          ("sec-websocket-version", "13")], True)
    pump(cno, sv)
    head = sv.of("request")[0]
    assert tokens(head[4], "upgrade") == ["websocket"]
    assert "upgrade" in tokens(head[4], "connection")
    sv.send(h11.InformationalResponse(status_code=101, headers=[
        ("Upgrade", "websocket"), ("Connection", "Upgrade")]))
    assert sv.conn.our_state is h11.SWITCHED_PROTOCOL
    sv.out += b"\x81\x05hello"            # raw bytes after the 101
    pump(cno, sv)
    assert [e[2] for e in cno.of("head", s)] == [101]
    assert cno.body(s) == b"\x81\x05hello"
    assert cno.write_data(s, b"\x81\x02hi", False) == 4
    assert cno.outbound() == b"\x81\x02hi"


def test_connect_cno_client_h11_server():
    cno, sv = cno_h11("client")
    s = cno.next_stream
    cno.write_head(s, 0, "CONNECT", "", [(":authority", "origin.example:443")], False)
    pump(cno, sv)
    assert sv.of("request")[0][2:4] == ("CONNECT", "origin.example:443")
    sv.send(h11.Response(status_code=200, headers=[]))
    assert sv.conn.our_state is h11.SWITCHED_PROTOCOL
    sv.out += b"server-bytes"
    pump(cno, sv)
    assert cno.body(s) == b"server-bytes"
    cno.write_data(s, b"client-bytes", False)
    pump(cno, sv)
    assert sv.trailing == b"client-bytes"


def test_no_1xx_to_http10_client():
    """RFC 9110 15.2: a server must not send a 1xx response to an HTTP/1.0 client
    (whether the engine drops it or refuses the call, none may reach the wire)."""
    cno, _ = cno_h11("server")

    def head(p, s, *rest):
        try:
            p.write_head(s, 100, "", "", [], False)
        except cno_errors.UsageError:
            pass
    cno.handlers["head"] = head
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "2")], b"ok", None))
    cno.receive(b"POST / HTTP/1.0\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi")
    out = cno.outbound()
    assert out.startswith(b"HTTP/1.1 200 "), out[:40]


# ----------------------------------------------------------------------------------------
# More framing edges

@pytest.mark.parametrize("data,status", [
    (raw(b"POST / HTTP/1.1\nHost: a\nContent-Length: 99999999999999999999\n\n"), 400),
    (raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n", b"ffffffffffffffffff\r\n"), 400),
    (raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n", b" 5\r\nhello\r\n"), 400),
    (raw(b"POST / HTTP/1.1\nHost: a\nTransfer-Encoding: chunked\n\n",
         b"5;" + b"x" * 5000 + b"\r\nhello\r\n"), 400),
    (raw(b"GET  / HTTP/1.1\nHost: a\n\n"), 400),
    (raw(b"GET / HTTP/1.1 \nHost: a\n\n"), 400),
    (raw(b"GET / HTTP/1.1\n\n"), 400),                              # RFC 9112 3.2
    (raw(b"GET / HTTP/1.1\nHost: a\nHost: b\n\n"), 400),            # RFC 9112 3.2
    (raw(b"GET /" + b"a" * 70_000 + b" HTTP/1.1\nHost: a\n\n"), 431),
], ids=["cl-overflow", "chunk-size-overflow", "chunk-size-leading-space", "chunk-line-too-long",
        "double-space", "trailing-space", "no-host", "two-hosts", "long-target"])
def test_more_malformed_requests(data, status):
    cno, _ = cno_h11("server")
    with pytest.raises(ProtocolError) as info:
        cno.receive(data)
    assert info.value.status == status
    responses, _ = parse_responses(cno.outbound(), eof=True)
    assert [r.status for r in responses] == [status]


@pytest.mark.parametrize("te_lines", [
    [b"chunked, chunked"], [b"chunked", b"chunked"],
], ids=["one-line", "two-lines"])
def test_chunked_twice_is_rejected_however_it_is_split(te_lines):
    """RFC 9110 5.3: several field lines are one comma-separated list, so two
    `Transfer-Encoding: chunked` lines are `chunked, chunked` (chunked applied twice,
    RFC 9112 7), a smuggling pattern; both spellings must meet the same fate."""
    cno, _ = cno_h11("server")
    head = b"POST / HTTP/1.1\r\nHost: a\r\n" + b"".join(
        b"Transfer-Encoding: " + v + b"\r\n" for v in te_lines) + b"\r\n"
    with pytest.raises(ProtocolError) as info:
        cno.receive(head + b"5\r\nhello\r\n0\r\n\r\n")
    assert info.value.status == 400


@pytest.mark.parametrize("te", [b"gzip, chunked", b"gzip\r\nTransfer-Encoding: chunked"],
                         ids=["one-line", "two-lines"])
def test_known_coding_then_chunked_is_accepted(te):
    cno, _ = cno_h11("server")
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: " + te +
                b"\r\n\r\n5\r\nhello\r\n0\r\n\r\n")
    req = cno.request_of(1)
    assert req.body == b"hello"
    assert dict(req.headers).get("transfer-encoding") == "gzip"


@pytest.mark.parametrize("cl", [b"Content-Length: 5\r\nContent-Length: 5", b"Content-Length: 5, 5",
                                b"Content-Length: 005"], ids=["two-lines", "list", "zeros"])
def test_same_content_length_repeated_is_accepted(cl):
    cno, _ = cno_h11("server")
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\n" + cl + b"\r\n\r\nhelloGET /2 HTTP/1.1\r\nHost: a\r\n\r\n")
    assert cno.request_of(1).body == b"hello"
    assert cno.request_of(3).path == "/2"


BIG_TRAILERS = (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                b"0\r\nX-Big: " + b"b" * 70_000 + b"\r\n\r\n")


@pytest.mark.parametrize("cuts", [[], [60], [40_000], [66_000], [len(BIG_TRAILERS) - 1]],
                         ids=["whole", "head|trailers", "40000", "66000", "last-byte"])
def test_oversized_trailers_rejected_however_delivered(cuts):
    """The engine limits a trailer section to max_head_size (431) when it arrives in
    pieces; the same bytes must meet the same limit when they arrive at once."""
    cno, _ = cno_h11("server")
    pieces, prev = [], 0
    for cut in cuts + [len(BIG_TRAILERS)]:
        pieces.append(BIG_TRAILERS[prev:cut])
        prev = cut
    with pytest.raises(ProtocolError) as info:
        for piece in pieces:
            cno.receive(piece)
    assert info.value.status == 431


@pytest.mark.parametrize("length", [10 ** 18, 2 ** 62, 2 ** 63 - 1])
def test_content_length_63_bit(length):
    """docs/raw.md: "bodies and chunk sizes are 63-bit"."""
    cno, _ = cno_h11("server")
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\nabc" % length)
    assert cno.body(1) == b"abc" and not cno.of("tail")


@pytest.mark.parametrize("size", [b"fffffffffffffff", b"7fffffffffffffff"])
def test_chunk_size_63_bit(size):
    cno, _ = cno_h11("server")
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" + size +
                b"\r\nabc")
    assert cno.body(1) == b"abc" and not cno.of("tail")


def test_header_value_whitespace_trimmed():
    cno, _ = cno_h11("server")
    cno.receive(b"GET / HTTP/1.1\r\nHost:   a  \r\nX-A: \t padded value \t \r\nX-B:\r\n\r\n")
    assert cno.request_of(1).headers == [(":scheme", "http"), (":authority", "a"),
                                         ("x-a", "padded value"), ("x-b", "")]


def test_options_asterisk_and_connect_authority():
    cno, _ = cno_h11("server")
    cno_auto_respond(cno, lambda p, r: (200, [("content-length", "0")], b"", None))
    cno.receive(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
    assert cno.request_of(1).path == "*"
    srv = CnoH1Peer(server=True).start()
    srv.receive(b"CONNECT origin.example:443 HTTP/1.1\r\nHost: origin.example:443\r\n\r\n")
    assert srv.request_of(1).method == "CONNECT"
    assert dict(srv.request_of(1).headers)[":authority"] == "origin.example:443"


@pytest.mark.parametrize("status_line", [b"HTTP/1.1 200 OK", b"HTTP/1.1 200 ", b"HTTP/1.1 200",
                                         b"HTTP/1.1 200 \xc7a va tr\xe8s bien"])
def test_status_line_reason_variants_to_cno_client(status_line):
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    cno.receive(status_line + b"\r\nContent-Length: 2\r\n\r\nok")
    assert cno.response_of(s)[0] == 200 and cno.body(s) == b"ok"


def test_1xx_with_content_length_has_no_body_cno_client():
    cno = CnoH1Peer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    cno.receive(b"HTTP/1.1 103 Early Hints\r\nContent-Length: 5\r\n\r\n"
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert [e[2] for e in cno.of("head", s)] == [103, 200]
    assert cno.body(s) == b"hello"


def test_server_closes_after_first_of_pipelined_requests():
    """The h11 server answers the first of three pipelined requests with Connection:
    close: the two others were never processed and end like streams above a GOAWAY's
    last-stream-id (REFUSED_STREAM, REMOTE: safe to retry)."""
    cno, sv = cno_h11("client", h11_kw=dict(strict=False))
    h11_auto_respond(sv, lambda p, n, m: (200, [("Connection", "close")], b"only", None, False))
    streams = [cno.request("GET", "/%d" % k) for k in range(3)]
    pump(cno, sv)
    assert cno.response_of(streams[0])[2] == b"only"
    assert cno.end_of(streams[0])[2] == 0
    for s in streams[1:]:
        assert cno.end_of(s)[2:] == (cno_raw.CNO_RST_REFUSED_STREAM, cno_raw.CNO_REMOTE)
        assert not cno.of("head", s)
    assert cno.of("close") == [("close",)]


def test_many_pipelined_requests_beyond_max_concurrent_streams():
    """500 requests in one buffer: parsing pauses at max_concurrent_streams (100) and
    resumes as streams end."""
    cno, _ = cno_h11("server")
    n = 500
    data = b"".join(request_bytes("GET", "/%d" % k, [("Host", "a")]) for k in range(n))
    cno.receive(data)
    assert len(cno.of("head")) == 100
    done = 0
    while done < n:
        heads = cno.of("head")
        for e in heads[done:]:
            s = e[1]
            cno.respond(s, 200, [("content-length", str(len(e[4])))], e[4].encode())
            done += 1
    responses, _ = parse_responses(cno.outbound(), ["GET"] * n)
    assert [r.body for r in responses] == [b"/%d" % k for k in range(n)]


def test_many_pipelined_requests_answered_in_handler():
    cno, _ = cno_h11("server")
    n = 500
    cno.handlers["tail"] = lambda p, s, tr: p.respond(s, 200, [("content-length", "1")], b"x")
    cno.receive(b"".join(request_bytes("POST", "/%d" % k, [("Host", "a")], b"b" * (k % 7))
                         for k in range(n)))
    assert len(cno.of("tail")) == n
    responses, _ = parse_responses(cno.outbound(), ["POST"] * n)
    assert len(responses) == n


class RawDataPeer(CnoH1Peer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.data_types = set()

    def on_message_data(self, stream, data):
        self.data_types.add(type(data))
        super().on_message_data(stream, data)


@pytest.mark.parametrize("kind", [bytearray, memoryview])
def test_input_buffers_reused_by_the_caller(kind):
    """data_received takes any buffer; what the engine keeps of a partial head or body
    must not change when the caller reuses its buffer."""
    srv = RawDataPeer(server=True).start()
    cno_auto_respond(srv, lambda p, r: (200, [("content-length", "0")], b"", None))
    data = bytearray(request_bytes("POST", "/path", [("Host", "a"), ("X-A", "value")],
                                   b"0123456789", chunked=True, trailers=[("x-t", "tv")]))
    for cut in range(1, len(data)):
        srv2 = RawDataPeer(server=True).start()
        buf = bytearray(data[:cut])
        srv2.data_received(kind(buf) if kind is memoryview else buf)
        buf[:] = b"\xff" * len(buf)           # the caller reuses its buffer
        rest = bytearray(data[cut:])
        srv2.data_received(kind(rest) if kind is memoryview else rest)
        rest[:] = b"\xff" * len(rest)
        req = srv2.request_of(1)
        assert (req.path, req.body, req.trailers) == ("/path", b"0123456789", [("x-t", "tv")]), cut
        assert dict(req.headers)["x-a"] == "value"
        assert srv2.data_types <= {bytes}, srv2.data_types
    srv.data_received(kind(data))
    assert srv.request_of(1).body == b"0123456789"


def test_input_buffer_reused_cno_client():
    cno = RawDataPeer(server=False).start()
    s = cno.request("GET", "/")
    cno.outbound()
    data = b"HTTP/1.1 200 OK\r\nX-A: v\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    for cut in (5, 20, 30, 55, 60):
        c = RawDataPeer(server=False).start()
        c.request("GET", "/")
        buf = bytearray(data[:cut])
        c.data_received(buf)
        buf[:] = b"\x00" * cut
        c.data_received(bytearray(data[cut:]))
        assert c.response_of(1) == (200, [("x-a", "v")], b"abc", None), cut
    del s


# ----------------------------------------------------------------------------------------
# More on closing

def test_shutdown_cno_client_after_exchange_in_progress():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"x", None, False))
    s = cno.request("GET", "/")
    cno.shutdown()
    with pytest.raises(ConnectionClosed):
        cno.request("GET", "/2")
    pump(cno, sv)
    assert cno.response_of(s)[2] == b"x"
    assert cno.of("close") == [("close",)]
    assert len(sv.of("request")) == 1


def test_shutdown_cno_server_with_requests_read_ahead():
    """shutdown() after three pipelined requests were read: all three are answered, the
    last with connection: close, then on_close."""
    cno, _ = cno_h11("server")
    cno.receive(b"".join(request_bytes("GET", "/%d" % k, [("Host", "a")]) for k in range(3)))
    cno.shutdown()
    assert not cno.of("close")
    for s in (1, 3, 5):
        cno.respond(s, 200, [("content-length", "1")], b"x")
    responses, _ = parse_responses(cno.outbound(), ["GET"] * 3, eof=True)
    assert [r.body for r in responses] == [b"x"] * 3
    assert ["close" in tokens(r.headers, "connection") for r in responses] == [False, False, True]
    assert cno.of("close") == [("close",)]


def test_close_waits_for_the_request_body():
    """Connection: close with the answer written at the head: on_close only once the
    request body has been read (the exchange is done)."""
    cno, _ = cno_h11("server")
    cno.handlers["head"] = lambda p, s, *rest: p.respond(s, 200, [("content-length", "2")], b"ok")
    cno.receive(b"POST / HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: 10\r\n\r\n01234")
    assert not cno.of("close")
    cno.receive(b"56789")
    assert cno.body(1) == b"0123456789"
    assert cno.of("close") == [("close",)]


# ----------------------------------------------------------------------------------------
# What a cno client writes: no way to split a request through the API

@pytest.mark.parametrize("method,path,authority", [
    ("GET", "/a\r\nX-Injected: 1\r\n\r\nGET /smuggled", "a"),
    ("GET", "/a\nX-Injected: 1", "a"),
    ("GET", "/a b", "a"),
    ("GET /x HTTP/1.1\r\nX-Injected:", "/", "a"),
    ("G T", "/", "a"),
    ("", "/", "a"),
    ("GET", "", "a"),
    ("GET", "/", "a\r\nX-Injected: 1"),
    ("GET", "/", "a b"),
], ids=["crlf-path", "lf-path", "space-path", "crlf-method", "space-method", "empty-method",
        "empty-path", "crlf-authority", "space-authority"])
def test_request_line_and_host_cannot_be_injected(method, path, authority):
    """Header names and values with CR/LF are refused (UsageError); the method, the
    path and :authority (written as Host) must be too, or a request could be split
    (CWE-113). Whatever the engine does, the server must see one well-formed request."""
    cno, sv = cno_h11("client", h11_kw=dict(strict=False))
    try:
        cno.write_head(cno.next_stream, 0, method, path,
                       [(":scheme", "http"), (":authority", authority)], True)
    except ValueError:            # UsageError is a ValueError
        assert cno.outbound() == b""
        return
    pump(cno, sv)
    assert not sv.of("error"), "h11 could not parse: %r" % bytes(sv.rx)
    reqs = sv.of("request")
    assert len(reqs) == 1 and (reqs[0][2], reqs[0][3]) == (method, path), bytes(sv.rx)
    assert not header_values(reqs[0][4], "x-injected"), bytes(sv.rx)


@pytest.mark.parametrize("response", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/9.9 200 OK\r\n\r\n",
    b"HTTX/1.1 200 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: a\x00b\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A : b\r\n\r\n",
], ids=["cl-differ", "cl-letters", "bad-chunk-size", "chunk-overrun", "short-status",
        "long-status", "version", "protocol-name", "no-colon", "nul", "space-before-colon"])
def test_malformed_response_to_cno_client_raises(response):
    cno = CnoH1Peer(server=False).start()
    cno.request("GET", "/")
    cno.outbound()
    with pytest.raises(ProtocolError):
        cno.receive(response)
    assert cno.closed


def test_no_request_after_own_connection_close_cno_client():
    """RFC 9112 9.6: a client that sends the close option must not send further requests
    on that connection (the engine already refuses them after shutdown())."""
    cno, sv = cno_h11("client", h11_kw=dict(strict=False))
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"x", None, False))
    s = cno.request("GET", "/", [("connection", "close")])
    with pytest.raises(ConnectionClosed):
        cno.request("GET", "/2")
    out = cno.outbound()
    assert out.count(b"HTTP/1.1\r\n") == 1, out
    sv.receive(out)
    pump(cno, sv)
    assert cno.response_of(s)[2] == b"x"
    assert cno.of("close") == [("close",)]


def test_server_close_with_requests_read_ahead():
    """The application answers the first of three pipelined requests with connection:
    close. RFC 9112 9.6: the server must close after that response and not process the
    other requests; docs/raw.md: on_close once that exchange is done."""
    cno, _ = cno_h11("server")
    cno.receive(b"".join(request_bytes("GET", "/%d" % k, [("Host", "a")]) for k in range(3)))
    assert [e[1] for e in cno.of("head")] == [1, 3, 5]
    cno.respond(1, 200, [("connection", "close"), ("content-length", "1")], b"x")
    out = cno.outbound()
    assert "close" in tokens(split_head(out)[1], "connection")
    assert cno.of("close") == [("close",)], "on_close after the closing exchange"
    assert cno.end_of(3) is not None and cno.end_of(5) is not None
    try:
        cno.respond(3, 200, [("content-length", "1")], b"y")
    except cno_errors.CnoError:
        pass
    assert cno.outbound() == b"", "a response written after connection: close"


# ----------------------------------------------------------------------------------------
# Bodies that contradict their own Content-Length (the writer is the one who knows: h11
# refuses both; in HTTP/1.1 either one desynchronises the connection)

SMUGGLED_REQUEST = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
SMUGGLED_RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\nsmuggled"


def test_request_body_over_content_length_cannot_smuggle():
    cno, sv = cno_h11("client", h11_kw=dict(strict=False))
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"", None, False))
    s = cno.next_stream
    cno.write_head(s, 0, "POST", "/", [(":scheme", "http"), (":authority", "a"),
                                       ("content-length", "5")], False)
    try:
        cno.write_data(s, b"hello" + SMUGGLED_REQUEST, True)
    except ValueError:
        pass
    try:
        pump(cno, sv)
    except ProtocolError:       # cno then meets the answer to the smuggled request
        pass
    assert b"/smuggled" not in bytes(sv.rx), "bytes beyond content-length were written"
    assert [e[3] for e in sv.of("request")] == ["/"]


def test_response_body_over_content_length_cannot_split():
    cno, _ = cno_h11("server")
    cno.receive(request_bytes("GET", "/1", [("Host", "a")]) + request_bytes("GET", "/2", [("Host", "a")]))
    cno.write_head(1, 200, "", "", [("content-length", "2")], False)
    try:
        cno.write_data(1, b"ok" + SMUGGLED_RESPONSE, True)
    except ValueError:
        pass
    assert b"smuggled" not in cno.outbound(), "bytes beyond content-length were written"


@pytest.mark.parametrize("role", ["cno_client", "cno_server"])
def test_final_body_under_content_length(role):
    """final=True after fewer bytes than content-length: the message cannot end there.
    The engine must refuse (the peer would otherwise read the next message as the rest
    of this body); if it accepts, the peer must still see the next exchange intact."""
    if role == "cno_client":
        cno, sv = cno_h11("client", h11_kw=dict(strict=False))
        h11_auto_respond(sv, lambda p, n, m: (200, [], m.head[3].encode(), None, False))
        s = cno.next_stream
        cno.write_head(s, 0, "POST", "/1", [(":scheme", "http"), (":authority", "a"),
                                            ("content-length", "5")], False)
        try:
            cno.write_data(s, b"hel", True)
        except ValueError:
            return
        cno.request("GET", "/2")
        pump(cno, sv)
        assert [e[2:4] for e in sv.of("request")] == [("POST", "/1"), ("GET", "/2")], bytes(sv.rx)
    else:
        cno, _ = cno_h11("server")
        cno.receive(request_bytes("GET", "/1", [("Host", "a")]) +
                    request_bytes("GET", "/2", [("Host", "a")]))
        cno.write_head(1, 200, "", "", [("content-length", "5")], False)
        try:
            cno.write_data(1, b"hel", True)
        except ValueError:
            return
        cno.respond(3, 200, [("content-length", "2")], b"/2")
        responses, _ = parse_responses(cno.outbound(), ["GET", "GET"])
        assert [r.body for r in responses] == [b"hel", b"/2"]


def test_head_response_body_is_not_written():
    """docs/raw.md: no content after HEAD. Body bytes the application writes anyway must
    not reach the wire (the client would read them as the next response)."""
    cno, _ = cno_h11("server")
    cno.receive(request_bytes("HEAD", "/", [("Host", "a")]))
    cno.write_head(1, 200, "", "", [("content-length", "2")], False)
    try:
        cno.write_data(1, b"ok", True)
    except ValueError:
        pass
    status, headers, rest = split_head(cno.outbound())
    assert rest == b""


# ----------------------------------------------------------------------------------------
# Upgrades that are refused: the connection goes on in HTTP/1.1

def test_upgrade_refused_by_cno_server():
    cno, cl = cno_h11("server")
    cno.handlers["upgrade"] = lambda p, s: p.respond(s, 200, [("content-length", "4")], b"nope")
    cno.handlers["tail"] = lambda p, s, tr: s != 1 and p.respond(s, 200, [], b"next")
    cl.send(h11.Request(method="GET", target="/ws", headers=[
        ("Host", AUTHORITY), ("Upgrade", "websocket"), ("Connection", "Upgrade")]),
        h11.EndOfMessage())
    pump(cl, cno)
    assert cl.message(0).body == b"nope"
    cl.send_request("POST", "/next", [("Host", AUTHORITY)], b"body")
    pump(cl, cno)
    assert cno.request_of(3).body == b"body"
    assert cl.message(1).complete and cl.message(1).body == b"next"


def test_upgrade_refused_by_h11_server():
    cno, sv = cno_h11("client")
    h11_auto_respond(sv, lambda p, n, m: (200, [], b"plain %d" % n, None, False))
    s = cno.next_stream
    cno.write_head(s, 0, "GET", "/ws", [(":scheme", "http"), (":authority", AUTHORITY),
                                        ("upgrade", "websocket")], True)
    pump(cno, sv)
    assert cno.response_of(s)[2] == b"plain 0"
    s2 = cno.request("GET", "/next")
    pump(cno, sv)
    assert cno.response_of(s2)[2] == b"plain 1"


# ----------------------------------------------------------------------------------------
# Property: random exchange sequences, random splits, both roles

message_st = st.fixed_dictionaries({
    "size": st.sampled_from([0, 1, 2, 17, 255, 256, 4096, 5000]),
    "chunked": st.booleans(),
    "trailers": st.booleans(),
    "piece": st.integers(1, 3000),
})
exchange_st = st.tuples(st.sampled_from(["GET", "POST", "HEAD"]), message_st, message_st)


@pytest.mark.parametrize("role", ["cno_server", "cno_client"])
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exchanges=st.lists(exchange_st, min_size=1, max_size=6), seed=st.integers(0, 1000),
       max_piece=st.sampled_from([1, 7, 64, 1500, 100_000]))
def test_property_exchanges(role, exchanges, seed, max_piece):
    split = splitter(seed, max_piece)

    def trailers_of(m, i, kind):
        return [("x-%s-t" % kind, str(i))] if m["chunked"] and m["trailers"] else None

    if role == "cno_server":
        cno, cl = cno_h11("server")

        def responder(p, req):
            i = (req.stream - 1) // 2
            method, _, resp = exchanges[i]
            p.chunk = resp["piece"]
            headers = [] if resp["chunked"] else [("content-length", str(resp["size"]))]
            body = b"" if method == "HEAD" else body_bytes("p%d" % i, resp["size"])
            return 200, headers, body, None if method == "HEAD" else trailers_of(resp, i, "s")
        cno_auto_respond(cno, responder)
        for i, (method, req, resp) in enumerate(exchanges):
            post = method == "POST"
            body = body_bytes("q%d" % i, req["size"]) if post else b""
            cl.send_request(method, "/%d" % i, [("Host", AUTHORITY)], body,
                            trailers=trailers_of(req, i, "c") if post else None,
                            chunked=req["chunked"] if post else None,
                            pieces=[req["piece"]])
            pump(cl, cno, split=split)
            r = cno.request_of(2 * i + 1)
            assert (r.method, r.path, r.body) == (method, "/%d" % i, body)
            assert r.trailers == (trailers_of(req, i, "c") if post else None)
            m = cl.message(i)
            assert m.complete
            if method == "HEAD":
                assert m.body == b""
            else:
                assert m.body == body_bytes("p%d" % i, resp["size"])
                assert m.trailers == (trailers_of(resp, i, "s") or [])
    else:
        cno, sv = cno_h11("client")

        def responder(p, n, msg):
            method, _, resp = exchanges[n]
            body = body_bytes("p%d" % n, resp["size"])
            if method == "HEAD":
                return 200, [("Content-Length", str(resp["size"]))], b"", None, None
            return 200, [], body, trailers_of(resp, n, "s"), resp["chunked"]
        h11_auto_respond(sv, responder)
        for i, (method, req, resp) in enumerate(exchanges):
            body = body_bytes("q%d" % i, req["size"]) if method == "POST" else b""
            headers = [("content-length", str(len(body)))] if body and not req["chunked"] else []
            cno.chunk = req["piece"]
            s = cno.request(method, "/%d" % i, headers, body,
                            trailers_of(req, i, "c") if method == "POST" else None)
            pump(cno, sv, split=split)
            m = sv.message(i)
            assert (m.head[2], m.head[3], m.body) == (method, "/%d" % i, body)
            assert m.trailers == ((trailers_of(req, i, "c") if method == "POST" else None) or [])
            code, _, rbody, rtr = cno.response_of(s)
            assert code == 200
            if method == "HEAD":
                assert rbody == b"" and rtr is None
            else:
                assert rbody == body_bytes("p%d" % i, resp["size"])
                assert rtr == trailers_of(resp, i, "s")
