"""Zero-copy output and borrowed input (issue 13, part 3; docs/raw.md "Zero-copy output"
and "Body bytes as memoryviews").

Output: a write_data payload of at least ``zero_copy_threshold`` bytes reaches on_writev
as slices of the caller's buffer (or the caller's ``bytes`` itself), never copied; the
wire is byte for byte what the copying path writes (HTTP/2 frames, HTTP/1.1 chunked and
content-length bodies), one on_writev per public call, cork() included. Mutable buffers
are copied unless ``borrow_buffers`` is set. Input: with ``data_views``, on_message_data
gets read-only memoryviews of what data_received was given. The asyncio layer hands large
borrowed chunks to the transport as they are (tests at the end, both loops).
"""
import asyncio

import pytest

import cno
import cno.raw
from cno.aio import protocol as aio_protocol

from aio_local import get, run, served

NEVER = 1 << 62          # a zero_copy_threshold no payload reaches: the copying path
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


class Rec(cno.raw.Connection):
    """Records each on_writev's chunks (the objects themselves) and the body bytes in."""

    def __init__(self, server=True, **settings):
        super().__init__(server, **settings)
        self.calls = []
        self.body = bytearray()
        self.seen = []       # (type, readonly, bytes) of each on_message_data, in the callback
        self.kept = []       # the data objects themselves

    def on_writev(self, chunks):
        self.calls.append(list(chunks))

    def on_message_data(self, stream, data):
        self.body += data
        self.seen.append((type(data), getattr(data, "readonly", None), bytes(data)))
        self.kept.append(data)

    def take(self):
        calls, self.calls = self.calls, []
        return calls


def wire(calls):
    return b"".join(bytes(c) for call in calls for c in call)


def pump(a, b):
    for _ in range(100):
        moved = False
        for x, y in ((a, b), (b, a)):
            for call in x.take():
                for chunk in call:
                    y.data_received(chunk)
                moved = True
        if not moved:
            return
    raise AssertionError("pump: no end")


def h2_server(threshold, **client_settings):
    """An HTTP/2 server with a GET on stream 1 to answer (head not yet written)."""
    client, server = Rec(False, **client_settings), Rec(True)
    server.zero_copy_threshold = threshold
    client.connection_made(True)
    server.connection_made(True)
    pump(client, server)
    client.write_head(1, 0, "GET", "/", [(":scheme", "http"), (":authority", "x")], True)
    pump(client, server)
    server.take()
    return server, client


def h1_server(threshold, request=b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"):
    server = Rec(True)
    server.zero_copy_threshold = threshold
    server.connection_made(False)
    server.data_received(request)
    server.take()
    return server


def borrowed(calls, data):
    """The chunks that are data itself or views of its buffer."""
    base = data.obj if isinstance(data, memoryview) else data
    return [c for call in calls for c in call
            if c is data or (isinstance(c, memoryview) and c.obj is base)]


def payload(n, seed=7):
    return bytes((i * 131 + seed) & 0xFF for i in range(n))


# -- HTTP/2 ---------------------------------------------------------------------------------

KINDS = {
    "bytes": lambda b: b,
    "memoryview": lambda b: memoryview(b),
    "memoryview-offset": lambda b: memoryview(b"xyz" + b)[3:],
    "bytearray": lambda b: bytearray(b),
    "memoryview-bytearray": lambda b: memoryview(bytearray(b)),
}
IMMUTABLE = {"bytes", "memoryview", "memoryview-offset"}


def h2_scenario(threshold, data, final, **client_settings):
    server, _ = h2_server(threshold, **client_settings)
    server.write_head(1, 200, "", "", [("content-type", "x/y")], False)
    head = server.take()
    sent = server.write_data(1, data, final)
    return sent, head, server.take()


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("final", [False, True], ids=["open", "final"])
@pytest.mark.parametrize("size,settings", [
    (16383, {}),                                   # below the default threshold: copied
    (16384, {}),                                   # at it: one frame, borrowed
    (16385, {}),                                   # two frames
    (50000, {"max_frame_size": 20000}),            # frames of another size
    (50000, {"max_frame_size": 65536}),            # one frame of 50000
    (100000, {"initial_window_size": 1 << 20}),    # the connection window takes 65535
    (30000, {"initial_window_size": 20000}),       # the stream window takes 20000
], ids=["16383", "16384", "16385", "50000-frames-20000", "50000-one-frame",
        "100000-conn-window", "30000-stream-window"])
def test_h2_wire_equals_copying_path(size, settings, final, kind):
    original = payload(size)
    data = KINDS[kind](original)
    sent_copy, head_copy, copy = h2_scenario(NEVER, KINDS[kind](original), final, **settings)
    sent, head, out = h2_scenario(cno.raw.DEFAULT_ZERO_COPY_THRESHOLD, data, final, **settings)
    assert sent == sent_copy
    assert wire(head) == wire(head_copy)
    assert len(out) == len(copy) == 1                # one on_writev per public call
    assert wire(out) == wire(copy)
    views = borrowed(out, data)
    if kind in IMMUTABLE and sent >= cno.raw.DEFAULT_ZERO_COPY_THRESHOLD:
        assert sum(len(v) for v in views) == sent    # the whole payload, none of it copied
        assert b"".join(bytes(v) for v in views) == original[:sent]
        frames = -(-sent // settings.get("max_frame_size", 16384))
        others = [c for c in out[0] if not any(c is v for v in views)]
        assert all(type(c) is bytes for c in others)
        assert sum(len(c) for c in others) == 9 * frames
        if kind == "bytes" and sent == size and frames == 1:
            assert any(c is data for c in out[0])    # the caller's bytes object itself
    else:
        assert views == []
        assert all(type(c) is bytes for c in out[0])


@pytest.mark.parametrize("threshold", [0, 1, 5000, 5001])
def test_threshold_is_inclusive(threshold):
    data = payload(5000)
    _, _, out = h2_scenario(threshold, data, False)
    assert bool(borrowed(out, data)) is (threshold <= 5000)
    _, _, copy = h2_scenario(NEVER, data, False)
    assert wire(out) == wire(copy)


def test_threshold_default_and_attribute():
    conn = cno.raw.Connection()
    assert conn.zero_copy_threshold == cno.raw.DEFAULT_ZERO_COPY_THRESHOLD == 16384
    assert conn.borrow_buffers is False and conn.data_views is False


@pytest.mark.parametrize("size", [0, 1, 100])
def test_small_and_empty_writes_with_threshold_zero(size):
    """Threshold 0 borrows every non-empty payload; an empty one is just a frame header."""
    data = payload(size)
    for final in (False, True):
        _, _, out = h2_scenario(0, data, final)
        _, _, copy = h2_scenario(NEVER, data, final)
        assert wire(out) == wire(copy)
        assert (len(borrowed(out, data)) == 1) is (size > 0)


def test_h2_partial_write_then_rest():
    """A write the windows cut short borrows what went; the rest is borrowed later."""
    data = payload(100000)
    server, client = h2_server(0, initial_window_size=1 << 20)
    copy_server, copy_client = h2_server(NEVER, initial_window_size=1 << 20)
    for s in (server, copy_server):
        s.write_head(1, 200, "", "", [], False)
    n = server.write_data(1, data, True)
    assert n == copy_server.write_data(1, data, True) == 65535
    first = server.calls[-1]
    assert [bytes(v) for v in borrowed([first], data)] and \
        b"".join(bytes(v) for v in borrowed([first], data)) == data[:n]
    for s, c in ((server, client), (copy_server, copy_client)):
        pump(s, c)
        c.open_flow(0, 1 << 20)
        pump(c, s)
    rest = memoryview(data)[n:]
    assert server.write_data(1, rest, True) == copy_server.write_data(1, rest, True) == 100000 - n
    assert b"".join(bytes(v) for v in borrowed(server.calls[-1:], rest)) == data[n:]
    assert wire(server.calls) == wire(copy_server.calls)
    pump(server, client)
    assert bytes(client.body) == data


def test_cork_holds_borrowed_chunks_for_one_writev():
    a, b = payload(40000, 1), payload(20000, 2)
    outs = []
    for threshold in (cno.raw.DEFAULT_ZERO_COPY_THRESHOLD, NEVER):
        server, client = h2_server(threshold)
        server.cork()
        server.write_head(1, 200, "", "", [("content-type", "x/y")], False)
        server.write_data(1, a, False)
        server.write_data(1, b, True)
        assert server.calls == []
        server.uncork()
        assert len(server.calls) == 1
        outs.append(server.calls[:])
        pump(server, client)
        assert bytes(client.body) == a + b
    zero, copy = outs
    assert wire(zero) == wire(copy)
    assert b"".join(bytes(v) for v in borrowed(zero, a)) == a
    assert b"".join(bytes(v) for v in borrowed(zero, b)) == b


def test_held_chunks_count_in_getsizeof():
    """While cork() holds borrowed chunks, the connection's size says so."""
    import sys
    data = payload(100000)
    server, _ = h2_server(0, initial_window_size=1 << 20)
    server.write_head(1, 200, "", "", [], False)
    idle = sys.getsizeof(server)
    server.cork()
    assert server.write_data(1, data, False) == 65535
    assert sys.getsizeof(server) >= idle + 65535
    server.uncork()
    assert sys.getsizeof(server) < idle + 65535


def test_caller_may_release_its_memoryview():
    """The chunks are the engine's own views of the buffer: releasing the caller's
    memoryview (while corked, before on_writev) leaves them valid."""
    data = payload(40000)
    server, client = h2_server(0)
    server.write_head(1, 200, "", "", [], False)
    server.cork()
    view = memoryview(data)
    server.write_data(1, view, True)
    view.release()
    server.uncork()
    pump(server, client)
    assert bytes(client.body) == data


def test_mutable_buffers_are_copied_unless_borrow_buffers():
    data = bytearray(payload(20000))
    server, _ = h2_server(0)
    server.write_head(1, 200, "", "", [], False)
    server.take()
    server.write_data(1, data, False)
    assert borrowed(server.calls, data) == []
    server.borrow_buffers = True
    server.write_data(1, data, False)
    views = borrowed(server.calls[-1:], data)
    assert b"".join(bytes(v) for v in views) == data
    # What borrowing means: the chunks see later changes (the caller must wait).
    data[0] ^= 0xFF
    assert views[0][0] == data[0]


def test_views_count_bytes_whatever_the_format():
    """Chunks are one-dimensional unsigned-byte views: len() is their size in bytes
    (what the asyncio layer's pending-output accounting adds up)."""
    raw = payload(40000)
    data = memoryview(raw).cast("I")
    server, client = h2_server(0)
    server.write_head(1, 200, "", "", [], False)
    assert server.write_data(1, data, True) == 40000
    for c in server.calls[-1]:
        if isinstance(c, memoryview):
            assert c.format == "B" and c.ndim == 1 and len(c) == c.nbytes
    assert sum(len(c) for c in server.calls[-1]) == len(wire(server.calls[-1:]))
    pump(server, client)
    assert bytes(client.body) == raw


def test_on_frame_send_still_sees_the_payload():
    class Frames(Rec):
        def on_frame_send(self, frame):
            self.frames.append(frame)

    data = payload(40000)
    client, server = Rec(False), Frames(True)
    server.frames = []
    server.zero_copy_threshold = 0
    client.connection_made(True)
    server.connection_made(True)
    pump(client, server)
    client.write_head(1, 0, "GET", "/", [(":scheme", "http"), (":authority", "x")], True)
    pump(client, server)
    server.write_head(1, 200, "", "", [], False)
    server.write_data(1, data, True)
    (frame,) = [f for f in server.frames if f.type == cno.raw.CNO_FRAME_DATA]
    assert frame.payload == data and frame.flags == 1
    pump(server, client)
    assert bytes(client.body) == data


def test_head_response_drops_the_body():
    for threshold in (0, NEVER):
        client, server = Rec(False), Rec(True)
        server.zero_copy_threshold = threshold
        client.connection_made(True)
        server.connection_made(True)
        pump(client, server)
        client.write_head(1, 0, "HEAD", "/", [(":scheme", "http"), (":authority", "x")], True)
        pump(client, server)
        server.write_head(1, 200, "", "", [], False)
        server.take()
        data = payload(40000)
        assert server.write_data(1, data, True) == 40000
        assert borrowed(server.calls, data) == []
        assert wire(server.calls) == b"\x00\x00\x00\x00\x01\x00\x00\x00\x01"


# -- HTTP/1.1 -------------------------------------------------------------------------------

H1_CASES = {
    # name: (request, response headers, writes as (size, final))
    "chunked": (b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", [],
                [(40000, False), (100, False), (20000, True)]),
    "chunked-final-empty": (b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", [],
                            [(40000, False), (0, True)]),
    "content-length": (b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", [("content-length", "60100")],
                       [(40000, False), (100, False), (20000, True)]),
    "content-length-one": (b"GET / HTTP/1.1\r\nhost: x\r\n\r\n", [("content-length", "40000")],
                           [(40000, True)]),
    "http10-until-close": (b"GET / HTTP/1.0\r\n\r\n", [], [(40000, False), (20000, True)]),
    "head": (b"HEAD / HTTP/1.1\r\nhost: x\r\n\r\n", [("content-length", "40000")],
             [(40000, True)]),
}


def h1_scenario(threshold, case, kind, cork):
    request, headers, writes = H1_CASES[case]
    server = h1_server(threshold, request)
    datas = [KINDS[kind](payload(n, i)) for i, (n, _) in enumerate(writes)]
    if cork:
        server.cork()
    server.write_head(1, 200, "", "", headers, False)
    for data, (_, final) in zip(datas, writes):
        server.write_data(1, data, final)
    if cork:
        server.uncork()
    return server.take(), datas


@pytest.mark.parametrize("cork", [False, True], ids=["plain", "corked"])
@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("case", sorted(H1_CASES))
def test_h1_wire_equals_copying_path(case, kind, cork):
    copy, _ = h1_scenario(NEVER, case, kind, cork)
    out, datas = h1_scenario(cno.raw.DEFAULT_ZERO_COPY_THRESHOLD, case, kind, cork)
    assert len(out) == len(copy)                  # one on_writev per call that wrote
    if cork:
        assert len(out) == 1
    assert wire(out) == wire(copy)
    for data in datas:
        views = borrowed(out, data)
        if kind in IMMUTABLE and len(data) >= 16384 and case != "head":
            assert len(views) == 1 and bytes(views[0]) == bytes(data)
            if kind == "bytes":
                assert views[0] is data
        else:
            assert views == []


def test_h1_chunked_framing_around_a_borrowed_chunk():
    server = h1_server(0)
    server.write_head(1, 200, "", "", [], False)
    server.take()
    data = payload(20000)
    server.write_data(1, data, True)
    (call,) = server.take()
    assert call == [b"4E20\r\n", data, b"\r\n0\r\n\r\n"]
    assert call[1] is data


# -- borrowed input (data_views) ------------------------------------------------------------

def test_data_views_h2():
    data = payload(50000)
    client, server = Rec(False), Rec(True)
    server.data_views = True
    client.connection_made(True)
    server.connection_made(True)
    pump(client, server)
    client.write_head(1, 0, "POST", "/", [(":scheme", "http"), (":authority", "x")], False)
    client.write_data(1, data, True)
    feed = wire(client.take())
    server.data_received(feed)
    assert bytes(server.body) == data
    assert server.seen and all(t is memoryview and ro for t, ro, _ in server.seen)
    assert b"".join(b for _, _, b in server.seen) == data
    assert all(v.obj is feed for v in server.kept)   # slices of the input, not copies


def test_data_views_see_a_reused_buffer_change():
    """The views are the caller's buffer, not copies: valid only during the callback
    when the caller reuses its buffer (as the asyncio layer's read buffer is)."""
    server = h1_server(NEVER, b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 8\r\n\r\n")
    server.data_views = True
    buf = bytearray(b"abcdefgh")
    server.data_received(buf)
    assert server.seen == [(memoryview, True, b"abcdefgh")]
    buf[:] = b"ABCDEFGH"
    assert bytes(server.kept[0]) == b"ABCDEFGH"
    with pytest.raises(TypeError):
        server.kept[0][0] = 1    # read-only


def test_data_views_from_buffered_input():
    """A frame header split across reads is buffered with what follows: the payload is
    then delivered from a copy, still as a memoryview, with the right bytes."""
    data = payload(3000)
    client, server = Rec(False), Rec(True)
    server.data_views = True
    client.connection_made(True)
    server.connection_made(True)
    pump(client, server)
    client.write_head(1, 0, "POST", "/", [(":scheme", "http"), (":authority", "x")], False)
    pump(client, server)
    client.write_data(1, data, True)
    feed = wire(client.take())
    server.data_received(feed[:5])
    server.data_received(feed[5:])
    assert [t for t, _, _ in server.seen] == [memoryview]
    assert bytes(server.body) == data and server.kept[0].obj is not feed


@pytest.mark.parametrize("body,expect", [
    (b"content-length: 11\r\n\r\nhello world", b"hello world"),
    (b"transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", b"hello world"),
], ids=["content-length", "chunked"])
@pytest.mark.parametrize("views", [False, True], ids=["bytes", "views"])
def test_data_views_h1(body, expect, views):
    server = Rec(True)
    server.data_views = views
    server.connection_made(False)
    feed = b"POST / HTTP/1.1\r\nhost: x\r\n" + body
    server.data_received(feed)
    assert bytes(server.body) == expect
    assert {t for t, _, _ in server.seen} == {memoryview if views else bytes}
    if views:
        assert all(v.obj is feed for v in server.kept)


# -- the asyncio layer ------------------------------------------------------------------------

class JoiningTransport(asyncio.WriteTransport):
    """A transport with asyncio's default writelines (which joins, as on CPython 3.11)."""

    def __init__(self):
        super().__init__()
        self.writes = []

    def write(self, data):
        self.writes.append(data)


class VectorTransport(JoiningTransport):
    def writelines(self, chunks):
        self.writes.append(("writelines", chunks))


def test_writelines_large_chunks_go_alone_where_writelines_joins():
    big = memoryview(payload(100000))
    frame = memoryview(payload(16384))
    t = JoiningTransport()
    chunks = [b"h" * 9, big, b"a" * 9, frame, b"b" * 9]
    aio_protocol._writelines(t, chunks)
    assert t.writes[0] == b"h" * 9
    assert t.writes[1] is big                       # no copy
    assert t.writes[2] == b"a" * 9 + bytes(frame) + b"b" * 9
    assert len(t.writes) == 3


def test_writelines_joins_in_bounded_groups():
    """HTTP/2 frames (header + 16 KiB view) are joined about 64 KiB at a time."""
    frames = []
    for i in range(20):
        frames += [b"%09d" % i, memoryview(payload(16384, i))]
    t = JoiningTransport()
    aio_protocol._writelines(t, frames)
    assert b"".join(t.writes) == b"".join(bytes(c) for c in frames)
    assert all(len(w) < 2 * aio_protocol._WRITE_ALONE for w in t.writes)
    assert len(t.writes) > 1


def test_writelines_single_and_vectored():
    t = VectorTransport()
    one = memoryview(payload(100))
    aio_protocol._writelines(t, [one])
    assert t.writes == [one] and t.writes[0] is one
    chunks = [b"x", memoryview(payload(100000))]
    aio_protocol._writelines(t, chunks)
    if aio_protocol._WRITELINES_PAUSES:
        assert t.writes[1] == ("writelines", chunks)
    else:   # (3.12.0-3.12.8, 3.13.0-3.13.1: writelines never pauses; write() does)
        assert t.writes[1:] == [b"x", chunks[1]]


BIG = payload(1_000_000, 3)
MID = payload(300_000, 4)


def loop_factories():
    out = [pytest.param(asyncio.new_event_loop, id="asyncio")]
    try:
        import uvloop
        out.append(pytest.param(uvloop.new_event_loop, id="uvloop"))
    except ImportError:   # (a test extra: installed where the tests run)
        out.append(pytest.param(None, id="uvloop", marks=pytest.mark.skip("no uvloop")))
    return out


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@pytest.mark.parametrize("loop_factory", loop_factories())
def test_aio_large_responses_borrowed_end_to_end(loop_factory, mode):
    """Large bodies reach on_writev as views of the handler's bytes; none is copied whole
    (HTTP/2: a stream window's small remainder, below the threshold, may be)."""
    seen, copied = [], []

    async def main():
        loop = asyncio.get_running_loop()

        async def handle(request):
            if request.path == "/big":
                await request.respond(200, [], BIG)
            elif request.path == "/mid":
                await request.start(200, [])
                await request.write(memoryview(MID))
                await request.write(MID)
                await request.end()
            else:
                await request.respond(200, [], bytearray(MID))   # copied: mutable

        class Watching(cno.Server):
            def on_writev(self, chunks):
                for c in chunks:
                    if c is MID or (isinstance(c, memoryview) and (c.obj is BIG or c.obj is MID)):
                        seen.append(len(c))
                    elif len(c) >= cno.raw.DEFAULT_ZERO_COPY_THRESHOLD:
                        copied.append(len(c))
                super().on_writev(chunks)

        async with served(mode, handle, protocol=lambda: Watching(loop, handle)) as peer:
            client = await peer.connect()
            exact = mode == "h1"
            response, body = await get(client, "GET", "/big")
            assert response.code == 200 and body == BIG
            assert sum(seen) == len(BIG) if exact else sum(seen) > 0.9 * len(BIG)
            response, body = await get(client, "GET", "/mid")
            assert response.code == 200 and body == MID + MID
            assert sum(seen) == len(BIG) + 2 * len(MID) if exact else sum(seen) > 0.9 * len(BIG)
            assert copied == []
            seen.clear()
            response, body = await get(client, "GET", "/copied")
            assert response.code == 200 and body == MID
            assert seen == [] and sum(copied) >= len(MID) - 65535

    run(main(), 20, loop_factory=loop_factory)
