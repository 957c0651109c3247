"""cno.h11 (h11 0.16's API on cno's engine) end to end, without the fetched h11 suite:
cno.h11 talking to itself and to the real h11 both ways, received bytes judged the same
way as h11 judges them, and the validation of events users build."""
import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cno.h11 as ch11


def pump(src, dst, events):
    """send events on src, feed the bytes to dst, return dst's events until NEED_DATA."""
    data = b"".join(src.send(e) or b"" for e in events)
    dst.receive_data(data)
    got = []
    while True:
        e = dst.next_event()
        if e in (dst_mod(dst).NEED_DATA, dst_mod(dst).PAUSED):
            return got
        got.append(e)
        if type(e).__name__ == "ConnectionClosed":
            return got


def dst_mod(conn):
    return ch11 if type(conn) is ch11.Connection else h11


def cycle(client_mod, server_mod, req_headers, resp_headers, body, chunked=False):
    """One request/response between a client and a server of the given modules; returns
    what each side received, as (type name, fields) for comparison across modules."""
    c = client_mod.Connection(client_mod.CLIENT)
    s = server_mod.Connection(server_mod.SERVER)
    got_s = pump(c, s, [client_mod.Request(method="POST", target="/up", headers=req_headers),
                        client_mod.Data(data=b"abc"), client_mod.EndOfMessage()])
    got_c = pump(s, c, [server_mod.Response(status_code=200, headers=resp_headers,
                                            reason=b"OK"),
                        server_mod.Data(data=body),
                        server_mod.EndOfMessage(headers=[("X-Trailer", "t")] if chunked
                                                else None)])
    assert c.our_state is client_mod.DONE and c.their_state is client_mod.DONE
    assert s.our_state is server_mod.DONE and s.their_state is server_mod.DONE
    c.start_next_cycle()
    s.start_next_cycle()
    assert c.states == {client_mod.CLIENT: client_mod.IDLE, client_mod.SERVER: client_mod.IDLE}
    return plain(got_s), plain(got_c)


def plain(evs):
    out = []
    for e in evs:
        name = type(e).__name__
        if name in ("Request", "Response", "InformationalResponse", "EndOfMessage"):
            fields = {k: getattr(e, k) for k in ("method", "target", "status_code", "reason",
                                                  "http_version") if hasattr(e, k)}
            fields["headers"] = list(e.headers)
            fields["raw"] = e.headers.raw_items()
        elif name == "Data":
            fields = {"data": bytes(e.data)}
        else:
            fields = {}
        out.append((name, fields))
    return out


REQ = [("Host", "example.com"), ("Content-Length", "3"), ("X-Mixed-Case", "v")]
RESP_CL = [("Content-Length", "5"), ("Server", "t")]
RESP_CHUNKED = [("Transfer-Encoding", "chunked"), ("Server", "t")]


@pytest.mark.parametrize("client_mod,server_mod", [(ch11, ch11), (ch11, h11), (h11, ch11)],
                         ids=["cno-cno", "cno-client-h11-server", "h11-client-cno-server"])
@pytest.mark.parametrize("chunked", [False, True])
def test_cycle_both_ways(client_mod, server_mod, chunked):
    resp = RESP_CHUNKED if chunked else RESP_CL
    got = cycle(client_mod, server_mod, REQ, resp, b"hello", chunked)
    want = cycle(h11, h11, REQ, resp, b"hello", chunked)
    assert got == want
    assert got[0][0][1]["raw"][2] == (b"X-Mixed-Case", b"v")   # case kept on the wire


def test_bytes_match_h11():
    """What cno.h11 writes is byte for byte what h11 writes, through several cycles
    (keep-alive, chunked, an HTTP/1.0 peer, Connection: close)."""
    script = [
        ("client", "Request", dict(method="GET", target="/", headers=[("Host", "a")])),
        ("client", "EndOfMessage", {}),
        ("server", "InformationalResponse", dict(status_code=103, headers=[("Link", "x")])),
        ("server", "Response", dict(status_code=200, headers=[("Content-Type", "t")])),
        ("server", "Data", dict(data=b"0123456789")),
        ("server", "Data", dict(data=b"")),
        ("server", "EndOfMessage", dict(headers=[("Etag", "1")])),
        ("cycle", None, None),
        ("client", "Request", dict(method="HEAD", target="/h", headers=[
            ("Host", "a"), ("Connection", "close")])),
        ("client", "EndOfMessage", {}),
        ("server", "Response", dict(status_code=200, headers=[("Content-Length", "99")])),
        ("server", "EndOfMessage", {}),
        ("client", "ConnectionClosed", {}),
    ]
    out = {}
    for mod in (h11, ch11):
        c, s = mod.Connection(mod.CLIENT), mod.Connection(mod.SERVER)
        wire = []
        for who, kind, kw in script:
            if who == "cycle":
                while c.next_event() not in (mod.NEED_DATA, mod.PAUSED):
                    pass
                c.start_next_cycle()
                s.start_next_cycle()
                continue
            src, dst = (c, s) if who == "client" else (s, c)
            data = src.send(getattr(mod, kind)(**kw))
            wire.append(data)
            if data != b"":
                dst.receive_data(data if data is not None else b"")   # None: closed
            while True:
                e = dst.next_event()
                if e in (mod.NEED_DATA, mod.PAUSED) or type(e) is mod.ConnectionClosed:
                    break
        out[mod] = (wire, c.states, s.states)
    assert out[ch11][0] == out[h11][0]
    assert b"HTTP/1.1 200 \r\n" in out[ch11][0][3]   # an empty reason stays empty
    assert [repr(x) for x in out[ch11][1:]] == [repr(x) for x in out[h11][1:]]


def test_http10_client_gets_close_delimited_response():
    s = ch11.Connection(ch11.SERVER)
    s.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    assert type(s.next_event()) is ch11.Request
    assert type(s.next_event()) is ch11.EndOfMessage
    data = s.send(ch11.Response(status_code=200, headers=[]))
    assert data == b"HTTP/1.1 200 \r\nConnection: close\r\n\r\n"
    assert s.send(ch11.Data(data=b"x")) == b"x"
    assert s.send(ch11.EndOfMessage()) == b""
    assert s.our_state is ch11.MUST_CLOSE


# Received bytes: cno.h11 (the engine's parser) and h11 (its regular expressions) must
# accept and refuse the same inputs with the same events.
ODD_REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\nHost: a\n\n",
    b"GET / HTTP/1.1\r\nHost: a\nX: y\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nFolded: one\r\n two  \r\n\tthree\r\n\r\n",
    b"GET / HTTP/1.1\r\n  folded: x\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nbad : x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nEmpty:\r\nBlank: \t \r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /\x7f HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n",
    b"GET / HTTP/2\r\nHost: a\r\n\r\n",
    b"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b" GET / HTTP/1.1\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"3;ext=1\r\nabc\r\n0\r\nTrailer: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY0\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x01b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nX: a\x0bb\r\n\r\n",
]

ODD_RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 404 Not \t Found\r\n\r\nbody",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 2000 OK\r\n\r\n",
    b"HTTP/1.1 200OK\r\n\r\n",
    b"HTTP/1.1  200 OK\r\n\r\n",
    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"ICY 200 OK\r\n\r\n",
]


def received(mod, role, data, request_first=True):
    conn = mod.Connection(role)
    if role is mod.CLIENT and request_first:
        conn.send(mod.Request(method="GET", target="/", headers=[("Host", "a")]))
        conn.send(mod.EndOfMessage())
    out = []
    # One byte at a time, then EOF: every split point must give the same answer.
    try:
        for i in range(len(data)):
            conn.receive_data(data[i:i + 1])
            while True:
                e = conn.next_event()
                if e in (mod.NEED_DATA, mod.PAUSED):
                    break
                out.append(e)
        conn.receive_data(b"")
        while True:
            e = conn.next_event()
            if e in (mod.NEED_DATA, mod.PAUSED):
                break
            out.append(e)
            if type(e) is mod.ConnectionClosed:
                break
    except mod.RemoteProtocolError as exc:
        return merged(out), ("error", exc.error_status_hint), repr(conn.states)
    return merged(out), None, repr(conn.states)


def merged(evs):
    res = []
    for kind, fields in plain(evs):
        if res and kind == "Data" and res[-1][0] == "Data":
            res[-1] = ("Data", {"data": res[-1][1]["data"] + fields["data"]})
        else:
            res.append((kind, fields))
    return res


@pytest.mark.parametrize("data", ODD_REQUESTS)
def test_requests_judged_as_h11_does(data):
    assert received(ch11, ch11.SERVER, data) == received(h11, h11.SERVER, data)


@pytest.mark.parametrize("data", ODD_RESPONSES)
def test_responses_judged_as_h11_does(data):
    assert received(ch11, ch11.CLIENT, data) == received(h11, h11.CLIENT, data)


def received_whole(mod, role, data):
    """data in one piece, then EOF; a server answers each request, both sides start the
    next cycle when they can, so pipelined and trailing bytes are judged too."""
    conn = mod.Connection(role)
    if role is mod.CLIENT:
        conn.send(mod.Request(method="GET", target="/", headers=[("Host", "a")]))
        conn.send(mod.EndOfMessage())
    out = []
    try:
        conn.receive_data(data)
        for _ in range(2):
            while True:
                e = conn.next_event()
                if e in (mod.NEED_DATA, mod.PAUSED):
                    break
                out.append(e)
                if type(e) is mod.ConnectionClosed:
                    break
            if conn.our_state is mod.DONE and conn.their_state is mod.DONE:
                conn.start_next_cycle()
            elif conn.our_role is mod.SERVER and conn.our_state is mod.SEND_RESPONSE:
                conn.send(mod.Response(status_code=200, headers=[("Content-Length", "0")]))
                conn.send(mod.EndOfMessage())
            conn.receive_data(b"")
    except mod.RemoteProtocolError as exc:
        return (merged(out), ("error", exc.error_status_hint), repr(conn.states),
                conn.trailing_data)
    except mod.LocalProtocolError as exc:
        return merged(out), ("local", exc.error_status_hint), repr(conn.states)
    return merged(out), None, repr(conn.states), conn.trailing_data


STARTS = [b"", b"GET / HTTP/1.1\r\nHost: a\r\n", b"POST / HTTP/1.1\r\nHost: a\r\n",
          b"HTTP/1.1 200 OK\r\n", b"HTTP/1.0 200 OK\r\n"]
PIECES = [b"GET", b"POST", b" ", b"  ", b"/", b"/x", b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0",
          b"\r\n", b"\n", b"Host: a", b"Host:", b"host: b", b"Content-Length: 3",
          b"Content-Length: 0", b"content-length:  3 ,3", b"Transfer-Encoding: chunked",
          b"transfer-encoding: gzip, chunked", b"Connection: close", b"Connection: keep-alive",
          b"Upgrade: x", b"Expect: 100-continue", b"X: \t y \t", b"X:", b"\t", b" folded",
          b"abc", b"3", b"0", b"ff", b";e=1", b"\x00", b"\x01", b"\x7f", b"\xe9", b":", b"a b",
          b"\x0b", b"\r", b"HTTP/1.1 200 OK", b"HTTP/1.1 100 Continue", b"HTTP/1.1 101 Switching",
          b"HTTP/1.0 204", b"HTTP/1.1 304 ", b"200", b"HEAD", b"CONNECT"]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STARTS), st.lists(st.sampled_from(PIECES), max_size=14),
       st.sampled_from(["SERVER", "CLIENT"]))
def test_any_input_judged_as_h11_does(start, pieces, role):
    """Events, errors (with their status hints) and states match h11's for inputs built
    from the pieces h11's rules turn on, fed whole and byte by byte."""
    data = start + b"".join(pieces)
    assert received_whole(ch11, getattr(ch11, role), data) == \
        received_whole(h11, getattr(h11, role), data)
    assert received(ch11, getattr(ch11, role), data) == received(h11, getattr(h11, role), data)


def test_incomplete_event_limit():
    s = ch11.Connection(ch11.SERVER, max_incomplete_event_size=100)
    s.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"y" * 200)
    with pytest.raises(ch11.RemoteProtocolError) as info:
        s.next_event()
    assert info.value.error_status_hint == 431
    assert s.their_state is ch11.ERROR


@pytest.mark.parametrize("make", [
    lambda: ch11.Request(method="GET", target="/", headers=[]),                 # no Host
    lambda: ch11.Request(method="GET", target="/", headers=[("Host", "a")] * 2),
    lambda: ch11.Request(method="G T", target="/", headers=[("Host", "a")]),
    lambda: ch11.Request(method="GET", target="/ x", headers=[("Host", "a")]),
    lambda: ch11.Request(method="GET", target="/", headers=[("Host", "a"), ("X y", "1")]),
    lambda: ch11.Request(method="GET", target="/", headers=[("Host", "a"), ("X", " lead")]),
    lambda: ch11.Request(method="GET", target="/", headers=[("Host", "a"), ("X", "a\r\nb")]),
    lambda: ch11.Request(method="GET", target="/", headers=[("Host", "a"),
                                                            ("Content-Length", "1, 2")]),
    lambda: ch11.Response(status_code=99, headers=[]),
    lambda: ch11.Response(status_code="200", headers=[]),
    lambda: ch11.InformationalResponse(status_code=200, headers=[]),
])
def test_validation_errors(make):
    with pytest.raises(ch11.LocalProtocolError):
        make()


def test_transfer_encoding_other_than_chunked_hints_501():
    with pytest.raises(ch11.LocalProtocolError) as info:
        ch11.Response(status_code=200, headers=[("Transfer-Encoding", "gzip")])
    assert info.value.error_status_hint == 501


def test_events_compare_and_print_like_h11():
    for mod in (h11, ch11):
        r = mod.Request(method="GET", target="/", headers=[("Host", "a"), ("X-Y", "z")])
        assert r == mod.Request(method=b"GET", target=b"/", headers=[(b"host", b"a"),
                                                                      (b"x-y", b"z")])
        assert r != mod.Request(method="PUT", target="/", headers=[("Host", "a")])
        assert r.headers.raw_items() == [(b"Host", b"a"), (b"X-Y", b"z")]
        with pytest.raises(AttributeError) as info:
            r.method = b"PUT"
        assert type(info.value).__name__ == "FrozenInstanceError"
        with pytest.raises(TypeError):
            hash(r)
    assert repr(ch11.Request(method="GET", target="/", headers=[("Host", "a")])) == \
        repr(h11.Request(method="GET", target="/", headers=[("Host", "a")]))
    assert repr(ch11.Data(data=b"x")) == repr(h11.Data(data=b"x"))
    assert repr(ch11.Response(status_code=200, headers=[])) == \
        repr(h11.Response(status_code=200, headers=[]))


def test_send_errors_put_our_state_in_error():
    c = ch11.Connection(ch11.CLIENT)
    c.send(ch11.Request(method="GET", target="/", headers=[("Host", "a"),
                                                           ("Content-Length", "2")]))
    with pytest.raises(ch11.LocalProtocolError):
        c.send(ch11.Data(data=b"abc"))
    assert c.our_state is ch11.ERROR
    with pytest.raises(ch11.LocalProtocolError):
        c.send(ch11.EndOfMessage())


def test_protocol_switch_leaves_trailing_data():
    s = ch11.Connection(ch11.SERVER)
    s.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: ws\r\nConnection: upgrade\r\n\r\n"
                   b"\x81\x00raw")
    assert type(s.next_event()) is ch11.Request
    assert type(s.next_event()) is ch11.EndOfMessage
    assert s.next_event() is ch11.PAUSED
    assert s.their_state is ch11.MIGHT_SWITCH_PROTOCOL
    s.send(ch11.InformationalResponse(status_code=101, headers=[("Upgrade", "ws")]))
    assert s.states == {ch11.CLIENT: ch11.SWITCHED_PROTOCOL,
                        ch11.SERVER: ch11.SWITCHED_PROTOCOL}
    assert s.trailing_data == (b"\x81\x00raw", False)


def test_install_makes_import_h11_resolve_to_cno(tmp_path):
    import subprocess
    import sys
    code = ("import cno.h11; cno.h11.install(); import h11, h11._events; "
            "print(h11.Connection is cno.h11.Connection, h11._events.Request.__module__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["True", "cno.h11._h11"]


def test_events_pickle():
    import pickle
    for e in (ch11.Request(method="GET", target="/", headers=[("Host", "a")]),
              ch11.Response(status_code=200, headers=[("X-A", "b")], reason="OK"),
              ch11.InformationalResponse(status_code=100, headers=[]),
              ch11.Data(data=b"x", chunk_start=True), ch11.EndOfMessage(headers=[("T", "1")]),
              ch11.ConnectionClosed()):
        back = pickle.loads(pickle.dumps(e))
        assert back == e and repr(back) == repr(e)
        if hasattr(e, "headers"):
            assert back.headers.raw_items() == e.headers.raw_items()


def test_connection_can_be_subclassed():
    class Mine(ch11.Connection):
        def send(self, event):
            return b"<" + super().send(event) + b">"
    c = Mine(ch11.CLIENT)
    assert c.send(ch11.Request(method="GET", target="/", headers=[("Host", "a")])) == \
        b"<GET / HTTP/1.1\r\nHost: a\r\n\r\n>"


def test_content_length_past_63_bits_is_refused():
    s = ch11.Connection(ch11.SERVER)
    s.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n")
    with pytest.raises(ch11.RemoteProtocolError):
        s.next_event()
    c = ch11.Connection(ch11.CLIENT)
    with pytest.raises(ch11.LocalProtocolError):
        c.send(ch11.Request(method="POST", target="/", headers=[
            ("Host", "a"), ("Content-Length", str(2 ** 63))]))
    c = ch11.Connection(ch11.CLIENT)
    c.send(ch11.Request(method="POST", target="/", headers=[
        ("Host", "a"), ("Content-Length", str(2 ** 63 - 1))]))
    assert c.our_state is ch11.SEND_BODY


# Event scripts: both sides send random events; bytes, events, errors and states must
# match h11's at every step.
SCRIPT_HEADERS = [("Host", "a"), ("Content-Length", "3"), ("Content-Length", "0"),
                  ("Transfer-Encoding", "chunked"), ("Connection", "close"),
                  ("Connection", "keep-alive"), ("Connection", "Keep-Alive, Upgrade"),
                  ("Upgrade", "websocket"), ("Expect", "100-continue"), ("X-A", "b"),
                  ("host", "c")]
headers_st = st.lists(st.sampled_from(SCRIPT_HEADERS), max_size=4, unique=True)
version_st = st.sampled_from(["1.1", "1.1", "1.0"])
step_st = st.one_of(
    st.tuples(st.just("client"), st.just("Request"), st.fixed_dictionaries(dict(
        method=st.sampled_from(["GET", "HEAD", "POST", "CONNECT"]), target=st.just("/"),
        headers=headers_st, http_version=version_st))),
    st.tuples(st.just("server"), st.just("InformationalResponse"), st.fixed_dictionaries(
        dict(status_code=st.sampled_from([100, 101, 103]), headers=headers_st))),
    st.tuples(st.just("server"), st.just("Response"), st.fixed_dictionaries(dict(
        status_code=st.sampled_from([200, 204, 304, 404]), headers=headers_st,
        reason=st.sampled_from([b"", b"OK"]), http_version=version_st))),
    st.tuples(st.sampled_from(["client", "server"]), st.just("Data"), st.fixed_dictionaries(
        dict(data=st.sampled_from([b"", b"abc", b"xxxxx"])))),
    st.tuples(st.sampled_from(["client", "server"]), st.just("EndOfMessage"),
              st.fixed_dictionaries(dict(headers=st.sampled_from([None, [], [("T", "1")]])))),
    st.tuples(st.sampled_from(["client", "server"]), st.sampled_from(
        ["ConnectionClosed", "start_next_cycle"]), st.just({})),
)


def play(mod, script):
    c, s = mod.Connection(mod.CLIENT), mod.Connection(mod.SERVER)
    log = []
    for who, kind, kw in script:
        src, dst = (c, s) if who == "client" else (s, c)
        if kind == "start_next_cycle":
            try:
                src.start_next_cycle()
                log.append("cycled")
            except mod.LocalProtocolError:
                log.append("cycle refused")
            continue
        try:
            event = getattr(mod, kind)(**kw)
        except mod.LocalProtocolError as exc:
            log.append(("invalid event", exc.error_status_hint))
            continue
        try:
            data = src.send(event)
        # h11 0.16 raises AttributeError where its state machine refuses (Request,
        # CLIENT) for the server (formatting its message); cno.h11 a LocalProtocolError.
        except (mod.LocalProtocolError, AttributeError):
            log.append(("send refused", repr(src.states)))
            continue
        log.append(data)
        if data is None or data:
            try:
                dst.receive_data(data or b"")
            except RuntimeError:   # data after the close we were told of
                log.append("after close")
                continue
        try:
            while True:
                e = dst.next_event()
                if e in (mod.NEED_DATA, mod.PAUSED):
                    log.append(repr(e))
                    break
                log.append(plain([e]))
                if type(e) is mod.ConnectionClosed:
                    break
        except (mod.RemoteProtocolError, AttributeError):
            log.append("receive refused")
        log.append((repr(c.states), repr(s.states), s.they_are_waiting_for_100_continue,
                    c.their_http_version, s.their_http_version, c.trailing_data,
                    s.trailing_data))
    return log


@settings(max_examples=300, deadline=None)
@given(st.lists(step_st, min_size=1, max_size=12))
def test_event_scripts_as_h11(script):
    assert play(ch11, script) == play(h11, script)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300), st.sampled_from(["SERVER", "CLIENT"]),
       st.integers(min_value=1, max_value=64))
def test_any_bytes_give_events_or_remote_protocol_error(data, role, step):
    """h11's invariant: whatever arrives, next_event returns or raises
    RemoteProtocolError, never anything else."""
    conn = ch11.Connection(getattr(ch11, role))
    if role == "CLIENT":
        conn.send(ch11.Request(method="GET", target="/", headers=[("Host", "a")]))
        conn.send(ch11.EndOfMessage())
    try:
        for i in range(0, len(data), step):
            conn.receive_data(data[i:i + step])
            while conn.next_event() not in (ch11.NEED_DATA, ch11.PAUSED):
                if conn.their_state in (ch11.CLOSED, ch11.DONE):
                    break
    except ch11.RemoteProtocolError:
        assert conn.their_state is ch11.ERROR
