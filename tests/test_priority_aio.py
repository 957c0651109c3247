"""RFC 9218 priorities in the asyncio server (docs/aio.md): writers waiting for a window or
for the transport resume in the engine's priority order, so a high-urgency response overtakes
low-urgency bulk; and real peers (nghttp, h2load, nghttpd) over loopback."""
import asyncio
import struct

import hpack
import pytest

import cno
import cno.raw
from aio_util import CnoServer, External, deadline, require_tool, run, tempdir
from raw_frames import DATA, PREFACE, REQ, FrameParser, frame, headers, settings, window_update

BODY = 100_000


class FakeTransport:
    """What cno.Server needs of an asyncio transport, in memory: it keeps what is written
    and, past ``high`` buffered bytes, pauses the protocol's writing until ``drain()``."""

    def __init__(self, protocol, high=None):
        self.protocol = protocol
        self.high = high
        self.buffer = bytearray()
        self.paused = False
        self.closing = False

    def get_extra_info(self, name, default=None):
        return default

    def write(self, data):
        self.buffer += data
        if self.high is not None and not self.paused and len(self.buffer) > self.high:
            self.paused = True
            self.protocol.pause_writing()

    def writelines(self, chunks):
        self.write(b"".join(chunks))

    def drain(self):
        """Everything written so far; the buffer is empty again (resume_writing)."""
        data = bytes(self.buffer)
        self.buffer.clear()
        if self.paused:
            self.paused = False
            self.protocol.resume_writing()
        return data

    def get_write_buffer_size(self):
        return len(self.buffer)

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    abort = close

    def can_write_eof(self):
        return True

    def write_eof(self):
        pass

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


def feed(protocol, data):
    """Hand data to a BufferedProtocol as its transport would."""
    view = memoryview(data)
    while view:
        buf = protocol.get_buffer(-1)
        n = min(len(buf), len(view))
        buf[:n] = view[:n]
        protocol.buffer_updated(n)
        view = view[n:]


async def settle():
    """Let every task that can run, run."""
    for _ in range(20):
        await asyncio.sleep(0)


# stream id: its request's priority field. The first writer (stream 1) is the background
# bulk; hand-computed order: urgency 0 non-incremental (5), urgency 0 incremental by id
# (7, 9), urgency 5 (3), urgency 7 (1).
STREAMS = {1: "u=7", 3: "u=5", 5: "u=0", 7: "u=0, i", 9: "u=0, i"}
ORDER = [5, 7, 9, 3, 1]


async def start(high=None, window=0):
    """A cno.Server on a FakeTransport whose handlers each answer with BODY bytes, the
    requests of STREAMS fed (the client's stream windows: 1 MiB; its connection window
    raised by ``window``), the handlers left to run until they wait."""
    async def handle(request):
        await request.respond(200, [], b"x" * BODY)

    server = cno.Server(None, handle, idle_timeout=None, header_timeout=None,
                        settings_timeout=None, progress_timeout=None)
    transport = FakeTransport(server, high)
    server.connection_made(transport)
    enc = hpack.Encoder()
    data = PREFACE + settings(initial_window_size=1 << 20)
    if window:
        data += window_update(0, window)
    for sid, prio in STREAMS.items():
        data += headers(sid, enc.encode(REQ + [("priority", prio)]), end_stream=True)
    feed(server, data)
    await settle()
    return server, transport


def streams_in(parser, data):
    """The streams of the DATA frames in data, each once, in the order they first appear."""
    order = []
    for f in parser.feed(data):
        if f.type == DATA and f.stream not in order:
            order.append(f.stream)
    return order


@pytest.mark.asyncio
@deadline(10)
async def test_writers_resume_in_priority_order_when_the_window_opens():
    server, transport = await start()
    parser = FrameParser()
    assert streams_in(parser, transport.drain()) == [1], "stream 1 took the whole window"
    assert server.priority_order(STREAMS) == ORDER
    feed(server, window_update(0, 1_000_000))
    await settle()
    assert streams_in(parser, transport.drain()) == ORDER
    server.connection_lost(None)


@pytest.mark.asyncio
@deadline(10)
async def test_writers_resume_in_priority_order_when_the_transport_drains():
    # The transport's buffer is the caller's write budget: past 50 KB it pauses writing, and
    # each time it drains the writer with the highest priority goes first (and, its whole
    # body written, fills the buffer again).
    server, transport = await start(high=50_000, window=1 << 24)
    parser = FrameParser()
    assert streams_in(parser, transport.drain()) == [1]
    seen = []
    for _ in range(len(ORDER) - 1):
        await settle()
        seen.append(streams_in(parser, transport.drain()))
    assert seen == [[s] for s in ORDER[:-1]]
    server.connection_lost(None)


@pytest.mark.asyncio
@deadline(10)
async def test_priority_update_changes_who_resumes_first():
    server, transport = await start()
    parser = FrameParser()
    transport.drain()
    update = frame(0x10, 0, 0, struct.pack(">I", 3) + b"u=0")   # 3 before 5 (same urgency)
    feed(server, update + window_update(0, 1_000_000))
    await settle()
    assert streams_in(parser, transport.drain()) == [3, 5, 7, 9, 1]
    server.connection_lost(None)


# -- real peers over loopback ------------------------------------------------------------------

SEEN = {}   # id of the connection -> {path: priority of its stream}


async def record_priority(request):
    conn = request.conn
    SEEN.setdefault(id(conn), {})[request.path] = conn.priority(request.stream)
    await request.respond(200, [("content-type", "text/plain")], b"ok\n")


@pytest.mark.asyncio
@pytest.mark.parametrize("flags", [["-nv"], ["-nvu"]], ids=["prior-knowledge", "upgrade"])
@deadline(30)
async def test_nghttp_priority_field_and_setting(flags):
    # nghttp (1.52: --no-rfc7540-pri sends SETTINGS_NO_RFC7540_PRIORITIES=1; -H adds the
    # field) against cno.serve: the field sets each stream's priority; our setting reaches it.
    exe = require_tool("nghttp")
    SEEN.clear()
    async with CnoServer(record_priority) as srv:
        res = await run(exe, *flags, "--no-rfc7540-pri", "-H", "priority: u=1, i",
                        srv.url("/a"), srv.url("/b"), timeout=20)
        assert res.rc == 0, res.describe() + "\n" + srv.report()
    assert "[SETTINGS_NO_RFC7540_PRIORITIES(0x09):1]" in res.text.split("recv SETTINGS")[1]
    assert "recv GOAWAY" not in res.text, res.describe()
    expected = {"/a": (1, True), "/b": (1, True)}
    if "u" in flags[0]:
        # The upgraded request is read as HTTP/1.1, whose head the engine does not read for
        # priorities (docs/raw.md): it keeps the default.
        expected["/a"] = (3, False)
    assert list(SEEN.values()) == [expected]


@pytest.mark.asyncio
@deadline(30)
async def test_h2load_priority_field():
    exe = require_tool("h2load")
    SEEN.clear()
    async with CnoServer(record_priority) as srv:
        res = await run(exe, "-n", "40", "-c", "2", "-m", "5", "-H", "priority: u=0",
                        srv.url("/h"), timeout=20)
        assert res.rc == 0, res.describe()
    assert "40 succeeded, 0 failed" in res.text, res.describe()
    assert list(SEEN.values()) == [{"/h": (0, False)}] * 2


@pytest.mark.asyncio
@deadline(30)
async def test_client_to_nghttpd():
    # cno's client against nghttpd --no-rfc7540-pri: the priority field goes out, and our
    # PRIORITY_UPDATE frames (which nghttpd 1.52 reads as an unknown extension) break
    # nothing; the bodies arrive whole.
    exe = require_tool("nghttpd")
    with tempdir() as root:
        (root / "big").write_bytes(b"b" * 300_000)
        with External(lambda port: [exe, "-d", root, "--no-tls", "--no-rfc7540-pri", port]) as d:
            reader, writer = await asyncio.open_connection("127.0.0.1", d.port)
            bodies, done = {}, set()

            class Client(cno.raw.Connection):
                def on_writev(self, chunks):
                    writer.writelines(chunks)

                def on_message_data(self, stream, data):
                    bodies[stream] = bodies.get(stream, 0) + len(data)

                def on_message_tail(self, stream, trailers):
                    done.add(stream)

            c = Client(server=False)
            c.connection_made(True)
            base = [(":scheme", "http"), (":authority", "127.0.0.1:%d" % d.port)]
            a = c.next_stream
            c.write_head(a, 0, "GET", "/big", base + [("priority", "u=6")], True)
            b = c.next_stream
            c.write_head(b, 0, "GET", "/big", base + [("priority", "u=2, i")], True)
            c.write_priority(a, 1, True)            # before nghttpd's SETTINGS: sent
            sent_update = False
            while len(done) < 2:
                data = await asyncio.wait_for(reader.read(65536), 10)
                assert data, "nghttpd closed the connection"
                c.data_received(data)
                if not sent_update and a in c.open_streams \
                        and c.remote_settings["no_rfc7540_priorities"] == 1:
                    c.write_priority(a, 0)          # after them, as the setting says
                    sent_update = True
            writer.close()
    assert bodies == {a: 300_000, b: 300_000} and sent_update
    assert not c.closed
