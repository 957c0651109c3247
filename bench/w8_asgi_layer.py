#!/usr/bin/env python
"""W8: the ASGI layer's own cost per request, in one process, without sockets.

A cno server protocol is fed, through an in-memory transport, batches of 100 HTTP/2 GET
requests (or 100 pipelined HTTP/1.1 ones) that a cno client wrote once; the event loop
runs until all 100 responses are written. Two servers answer the same 100 bytes
(bench/servers/asgi_app.py's head and body):

- ``raw``: ``cno.Server`` with ``await request.respond(200, HEADERS, BODY)``, the
  handler of bench/servers/cno_server.py;
- ``asgi``: ``cno.asgi``'s connection protocol running asgi_app.app (the server's cost,
  not a framework's: W5 and the tests run Starlette and FastAPI).

Reports µs per request for each and the difference (the ASGI layer's cost), interleaved
repetitions in one process (bench/README.md). What this leaves out: socket I/O, the
selector, the kernel (W5 measures those with h2load).

    python bench/w8_asgi_layer.py                 # about 20 s
    python bench/w8_asgi_layer.py --quick
    python bench/w8_asgi_layer.py --loop uvloop
    python bench/w8_asgi_layer.py --profile asgi  # one server alone under cProfile
    tools/callgrind-w8.sh                         # instructions per request (stable)
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(HERE, "servers"))

STREAMS = 100


class Transport(asyncio.Transport):
    """What the protocol writes goes to ``out``; reads are pushed by the bench."""

    def __init__(self) -> None:
        super().__init__()
        self.out: list[bytes] = []
        self.closing = False

    def write(self, data) -> None:
        self.out.append(bytes(data))

    def writelines(self, chunks) -> None:
        self.out.append(b"".join(chunks))

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 50000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def abort(self) -> None:
        self.closing = True

    def get_write_buffer_size(self) -> int:
        return 0

    def can_write_eof(self) -> bool:
        return True

    def write_eof(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def requests(cno, http2: bool) -> tuple[bytes, bytes]:
    """(connection preface + SETTINGS, one batch of requests) as a cno client writes them."""
    out: list[bytes] = []

    class Client(cno.raw.Connection):
        def on_writev(self, chunks):
            out.append(b"".join(chunks))

    client = Client(server=False)
    client.connection_made(http2)
    if http2:   # the server's SETTINGS: room for both batches at once
        client.data_received(b"\x00\x00\x06\x04\x00\x00\x00\x00\x00\x00\x03"
                             + (4 * STREAMS).to_bytes(4, "big"))
    preface = b"".join(out)
    out.clear()
    batches = []
    for _ in range(2):   # stream ids climb: the second batch is what repeats
        for _ in range(STREAMS):
            stream = client.next_stream
            client.write_head(stream, 0, "GET", "/", [
                (":authority", "localhost:8000"), (":scheme", "http"),
                ("user-agent", "w8"), ("accept", "*/*")], True)
        batches.append(b"".join(out))
        out.clear()
    return preface, batches


class Cell:
    def __init__(self, name: str, cno, http2: bool, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.http2 = http2
        self.loop = loop
        self.times: list[float] = []
        from asgi_app import BODY, CONTENT_TYPE, app
        headers = [("content-type", CONTENT_TYPE), ("content-length", str(len(BODY)))]

        async def handle(request):
            await request.respond(200, headers, BODY)

        if name == "raw":
            self.factory = lambda: cno.Server(loop, handle)
        else:
            import cno.asgi.server as s
            config = s.Config(app, lifespan="off")
            shared = s._Shared(app, config, {})
            self.factory = lambda: s.ASGIServer(loop, shared)
        self.preface, batches = requests(cno, http2)
        self.first, self.batch = batches

    def connect(self) -> None:
        self.conn = self.factory()
        self.transport = Transport()
        self.conn.connection_made(self.transport)
        self.feed(self.preface + self.first)
        self.run()
        self.sent = 1

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            buf = self.conn.get_buffer(len(view))
            n = min(len(buf), len(view))
            buf[:n] = view[:n]
            self.conn.buffer_updated(n)
            view = view[n:]

    def run(self) -> None:
        conn = self.conn
        loop = self.loop
        while conn._requests or conn._tasks:
            loop.run_until_complete(asyncio.sleep(0))
        self.transport.out.clear()

    def unit(self, k: int) -> None:
        """k batches of 100 requests. HTTP/2: the prepared second batch's stream ids
        can be sent once per connection, so every other batch is a new connection's
        first (its preface and SETTINGS included)."""
        for _ in range(k):
            if self.http2 and self.sent >= 2:
                self.connect()
            else:
                self.feed(self.batch)
                self.run()
                self.sent += 1


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--reps", type=int, default=0)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--installed", action="store_true")
    ap.add_argument("--profile", choices=["raw", "asgi"])
    ap.add_argument("--batches", type=int, metavar="K",
                    help="with --profile: run K batches of that server without cProfile "
                         "(for callgrind: instructions per request are the difference "
                         "of two runs over 100 x their difference in K)")
    ap.add_argument("--h1", action="store_true", help="HTTP/1.1 (pipelined) instead of h2")
    args = ap.parse_args(argv)
    if not args.installed:
        sys.path.insert(0, ROOT)
    import cno
    if args.loop == "uvloop":
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    http2 = not args.h1
    names = [args.profile] if args.profile else ["raw", "asgi"]
    cells = [Cell(n, cno, http2, loop) for n in names]
    for c in cells:
        c.connect()
        c.unit(20)   # warm up
    if args.profile and args.batches is not None:
        cells[0].unit(args.batches)
        return
    if args.profile:
        import cProfile
        import pstats
        prof = cProfile.Profile()
        prof.runcall(cells[0].unit, 300)
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        return
    reps = args.reps or (5 if args.quick else 25)
    k = 5 if args.quick else 20
    rng = random.Random(1)
    for _ in range(reps):
        order = list(cells)
        rng.shuffle(order)
        for c in order:
            gc.collect()
            gc.disable()
            t0 = time.perf_counter_ns()
            c.unit(k)
            c.times.append((time.perf_counter_ns() - t0) / (k * STREAMS) / 1000)
            gc.enable()
    print("W8 %s, loop %s, %d reps of %d x %d requests" % (
        "h2c" if http2 else "HTTP/1.1 pipelined", args.loop, reps, k, STREAMS))
    med = {c.name: statistics.median(c.times) for c in cells}
    for c in cells:
        print("  %-6s %6.2f µs/request (min %.2f)" % (c.name, med[c.name], min(c.times)))
    print("  ASGI layer: %.2f µs/request" % (med["asgi"] - med["raw"]))


if __name__ == "__main__":
    main()
