"""Property tests (hypothesis) for HTTP/1.1 in cno.raw (DESIGN.md section 5):

- a scripted conversation (pipelined requests with Content-Length and chunked bodies,
  extensions and trailers; responses with 1xx, 204, HEAD, chunked) gives the same events
  whether fed whole, byte by byte, or split at random points (RFC 9112 is a byte stream:
  framing never depends on how reads are cut);
- whatever cno writes as a server or as a client parses with h11 (an independent RFC 9112
  parser) into the messages that were written, and cno parses it back the same way.
"""
from hypothesis import HealthCheck, given, settings, strategies as st

from h1_util import (
    chunked, client, get, h11_requests, h11_responses, merge_data, regular, request,
    response, send_request, server,
)

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

names_st = st.from_regex(r"x-[a-z0-9]{1,8}", fullmatch=True)
values_st = st.from_regex(r"([!-~]([ !-~]{0,12}[!-~])?)?", fullmatch=True)
fields_st = st.lists(st.tuples(names_st, values_st), max_size=4)
body_st = st.binary(max_size=40)
chunks_st = st.lists(st.binary(min_size=1, max_size=20), max_size=4)


def split_at(data, cuts):
    cuts = sorted(set(c % (len(data) + 1) for c in cuts))
    out, last = [], 0
    for c in cuts + [len(data)]:
        out.append(data[last:c])
        last = c
    return out


def comparable(events):
    return merge_data(events)


# ---------------------------------------------------------------------------------------------
# Server input: any split gives the same events

request_st = st.one_of(
    st.tuples(st.just("get"), fields_st, st.just(b""), st.just(())),
    st.tuples(st.just("cl"), fields_st, body_st, st.just(())),
    st.tuples(st.just("chunked"), fields_st, chunks_st, fields_st),
)


def build_requests(specs):
    out = bytearray()
    for i, (kind, fields, body, trailers) in enumerate(specs):
        hs = [("Host", "example.com")] + list(fields)
        path = "/%d" % i
        if kind == "get":
            out += request("GET", path, hs)
        elif kind == "cl":
            out += request("POST", path, hs + [("Content-Length", str(len(body)))], body)
        else:
            out += request("POST", path, hs + [("Transfer-Encoding", "chunked")],
                           chunked(*body, trailers=trailers, ext=b";ext=%d" % i))
        if i % 2:
            out += b"\r\n"  # RFC 9112 2.2: an empty line before a request-line is ignored
    return bytes(out)


def server_events(chunks):
    c = server()
    for ch in chunks:
        c.data_received(ch)
    return c.events


@SETTINGS
@given(specs=st.lists(request_st, min_size=1, max_size=5),
       cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=12))
def test_server_split_anywhere_same_events(specs, cuts):
    wire = build_requests(specs)
    whole = server_events([wire])
    # what the script says
    heads = [e for e in whole if e[0] == "head"]
    assert [h[4] for h in heads] == ["/%d" % i for i in range(len(specs))]
    for i, (kind, fields, body, trailers) in enumerate(specs):
        sid = 2 * i + 1
        assert [f for f in regular(heads[i][5]) if f[0].startswith("x-")] == \
            [(k, v) for k, v in fields]
        got = b"".join(e[2] for e in whole if e[0] == "data" and e[1] == sid)
        assert got == (b"".join(body) if kind == "chunked" else body)
        tails = [e for e in whole if e[0] == "tail" and e[1] == sid]
        assert tails == [("tail", sid, list(trailers) or None)]
    split = server_events(split_at(wire, cuts))
    assert comparable(split) == comparable(whole)


@settings(max_examples=5, deadline=None)
@given(specs=st.lists(request_st, min_size=3, max_size=4))
def test_server_byte_by_byte_same_events(specs):
    wire = build_requests(specs)
    whole = server_events([wire])
    single = server_events([wire[i:i + 1] for i in range(len(wire))])
    assert comparable(single) == comparable(whole)


# ---------------------------------------------------------------------------------------------
# Client input: any split gives the same events

response_st = st.one_of(
    st.tuples(st.just("cl"), fields_st, body_st, st.just(())),
    st.tuples(st.just("chunked"), fields_st, chunks_st, fields_st),
    st.tuples(st.just("info"), fields_st, body_st, st.just(())),
    st.tuples(st.just("204"), fields_st, st.just(b""), st.just(())),
    st.tuples(st.just("head"), fields_st, st.just(b""), st.just(())),
)


def client_events(specs, chunks):
    c = client()
    for kind, *_ in specs:
        send_request(c, "HEAD" if kind == "head" else "GET", "/")
    for ch in chunks:
        c.data_received(ch)
    return c.events


def build_responses(specs):
    out = bytearray()
    for kind, fields, body, trailers in specs:
        if kind == "cl":
            out += response(200, "OK", list(fields) + [("Content-Length", str(len(body)))], body)
        elif kind == "chunked":
            out += response(200, "OK", list(fields) + [("Transfer-Encoding", "chunked")],
                            chunked(*body, trailers=trailers, ext=b";x"))
        elif kind == "info":
            out += response(100, "Continue")
            out += response(103, "Early Hints", list(fields))
            out += response(201, "Created", [("Content-Length", str(len(body)))], body)
        elif kind == "204":
            out += response(204, "No Content", list(fields))
        else:  # HEAD: a length, no body
            out += response(200, "OK", list(fields) + [("Content-Length", "1234")])
    return bytes(out)


@SETTINGS
@given(specs=st.lists(response_st, min_size=1, max_size=5),
       cuts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=12))
def test_client_split_anywhere_same_events(specs, cuts):
    wire = build_responses(specs)
    whole = client_events(specs, [wire])
    for i, (kind, fields, body, trailers) in enumerate(specs):
        sid = 2 * i + 1
        codes = [e[2] for e in whole if e[0] == "head" and e[1] == sid]
        assert codes == {"info": [100, 103, 201], "204": [204]}.get(kind, [200])
        got = b"".join(e[2] for e in whole if e[0] == "data" and e[1] == sid)
        assert got == (b"".join(body) if kind == "chunked" else body)
        tails = [e for e in whole if e[0] == "tail" and e[1] == sid]
        assert tails == [("tail", sid, list(trailers) or None)]
    split = client_events(specs, split_at(wire, cuts))
    assert comparable(split) == comparable(whole)


@settings(max_examples=5, deadline=None)
@given(specs=st.lists(response_st, min_size=3, max_size=5))
def test_client_byte_by_byte_same_events(specs):
    wire = build_responses(specs)
    whole = client_events(specs, [wire])
    single = client_events(specs, [wire[i:i + 1] for i in range(len(wire))])
    assert comparable(single) == comparable(whole)


# ---------------------------------------------------------------------------------------------
# What cno writes parses with h11 (and with cno) into what was written

CODES = [200, 201, 202, 203, 206, 299, 301, 302, 400, 404, 418, 500, 503, 599]
out_response_st = st.tuples(st.sampled_from(CODES), fields_st, chunks_st,
                            st.sampled_from(["cl", "chunked"]), fields_st)


def write_response(c, sid, code, fields, chunks, mode, trailers):
    body = b"".join(chunks)
    hs = list(fields)
    if mode == "cl":
        hs.append(("content-length", str(len(body))))
    if not chunks and mode == "cl":
        c.write_head(sid, code, "", "", hs, True)
        return
    c.write_head(sid, code, "", "", hs, False)
    for ch in chunks:
        assert c.write_data(sid, ch, False) == len(ch)
    if mode == "chunked" and trailers:
        c.write_tail(sid, trailers)
    else:
        c.write_data(sid, b"", True)


@SETTINGS
@given(resps=st.lists(out_response_st, min_size=1, max_size=4))
def test_server_output_parses_with_h11(resps):
    c = server()
    c.feed(b"".join(get("/%d" % i) for i in range(len(resps))))
    for i, r in enumerate(resps):
        write_response(c, 2 * i + 1, *r)
    wire = c.take()
    parsed = h11_responses(wire, ["GET"] * len(resps))
    for (code, fields, chunks, mode, trailers), msgs in zip(resps, parsed):
        (m,) = msgs
        assert m.code == code
        assert [f for f in m.headers if f[0].startswith("x-")] == list(fields)
        assert m.body == b"".join(chunks)
        assert m.trailers == (list(trailers) if mode == "chunked" else [])
    # and a cno client reads the same
    cl = client()
    for _ in resps:
        send_request(cl)
    cl.data_received(wire)
    for i, (code, fields, chunks, mode, trailers) in enumerate(resps):
        sid = 2 * i + 1
        (h,) = cl.heads(sid)
        assert h[2] == code
        assert [f for f in regular(h[5]) if f[0].startswith("x-")] == list(fields)
        assert cl.body(sid) == b"".join(chunks)
        assert cl.of("tail", sid) == [("tail", sid, (list(trailers) or None)
                                       if mode == "chunked" else None)]


out_request_st = st.tuples(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    st.from_regex(r"/[a-z0-9/._~-]{0,16}(\?[a-z0-9=&]{0,10})?", fullmatch=True),
    fields_st, chunks_st, st.sampled_from(["final", "cl", "chunked"]), fields_st)


def write_request(c, method, path, fields, chunks, mode, trailers):
    body = b"".join(chunks)
    hs = list(fields)
    if mode == "final":
        return send_request(c, method, path, hs, final=True), b"", []
    if mode == "cl":
        hs.append(("content-length", str(len(body))))
    sid = send_request(c, method, path, hs, final=False)
    for ch in chunks:
        assert c.write_data(sid, ch, False) == len(ch)
    if mode == "chunked" and trailers:
        c.write_tail(sid, trailers)
        return sid, body, list(trailers)
    c.write_data(sid, b"", True)
    return sid, body, []


@SETTINGS
@given(reqs=st.lists(out_request_st, min_size=1, max_size=4))
def test_client_output_parses_with_h11(reqs):
    c = client()
    expected = [write_request(c, *r) for r in reqs]
    wire = c.take()
    parsed = h11_requests(wire)
    assert len(parsed) == len(reqs)
    for (method, path, fields, _, _, _), (_, body, trailers), m in zip(reqs, expected, parsed):
        assert (m.method, m.target) == (method, path)
        assert [f for f in m.headers if f[0] == "host"] == [("host", "example.com")]
        assert [f for f in m.headers if f[0].startswith("x-")] == list(fields)
        assert m.body == body
        assert m.trailers == trailers
    # and a cno server reads the same
    s = server()
    s.data_received(wire)
    heads = s.heads()
    assert len(heads) == len(reqs)
    for (method, path, fields, _, _, _), (sid, body, trailers), h in zip(reqs, expected, heads):
        assert (h[1], h[3], h[4]) == (sid, method, path)
        assert [f for f in regular(h[5]) if f[0].startswith("x-")] == list(fields)
        assert s.body(sid) == body
        assert s.of("tail", sid) == [("tail", sid, trailers or None)]
