"""Memory per connection and after connections (issue 10, "Build what" 4).

- An idle connection costs the server at most 32 KiB (RSS growth over many idle
  connections, divided by their number) for plaintext HTTP/2 and for HTTP/1.1 after a
  large response; measured on a tests/hostile_server.py subprocess under RLIMIT_AS
  (bench/w7_memory.py is the same measurement over 5,000 connections).
- A connection that opens and closes many streams keeps a flat footprint (in memory with
  cno.raw: two engines back to back).
- A closed server connection is freed by reference counting alone, with the cycle
  collector disabled: nothing of cno's is left for the collector.

Linux only (/proc, rlimits). The connection counts are kept small enough for CI.
"""
import asyncio
import gc
import os
import sys
import time
import tracemalloc

import pytest

from hostile_util import (
    GiB, PREFACE, HostileServer, close_all, data, engine_pair, headers,
    open_idle_connections, proc_status_kib, raise_nofile, request_block, settings, settings_ack,
)

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads /proc and sets rlimits")

IDLE_CONNECTIONS = 2000
MAX_KIB_PER_IDLE_CONNECTION = 32


@pytest.mark.slow
@pytest.mark.parametrize("proto", ["h2", "h1"])
def test_memory_per_idle_connection(proto):
    """2,000 idle connections, each after one exchange (HTTP/2: GET /; HTTP/1.1: a 256 KiB
    response read in full, kept alive), cost the server at most 32 KiB each."""
    n, warmup = IDLE_CONNECTIONS, 50
    raise_nofile(n + warmup + 100)
    options = {"idle_timeout": 600.0, "header_timeout": 600.0}
    with HostileServer(options, memory=GiB, nofile=n + warmup + 100) as server:
        socks = []
        try:
            socks += open_idle_connections(server.port, warmup, proto, 256 * 1024)
            time.sleep(0.3)
            before = server.rss_kib()
            try:
                socks += open_idle_connections(server.port, n, proto, 256 * 1024)
            except (OSError, ConnectionError) as e:
                pytest.fail("opening %d idle %s connections failed after %d: %r\n%s" % (
                    n, proto, len(socks) - warmup, e, server.describe()))
            time.sleep(0.5)
            after = server.rss_kib()
        finally:
            close_all(socks)
        per_conn = (after - before) / n
        assert per_conn <= MAX_KIB_PER_IDLE_CONNECTION, (
            "%.1f KiB per idle %s connection (RSS %.1f -> %.1f MiB over %d)\n%s" % (
                per_conn, proto, before / 1024, after / 1024, n, server.describe()))


@pytest.mark.slow
def test_many_streams_keep_a_flat_footprint():
    """200,000 streams opened and completed on one HTTP/2 connection (cno.raw client and
    server back to back) after a warm-up: no growth in RSS (C buffers included), in
    Python's allocated blocks, or (over a shorter traced run) in tracemalloc's count.
    (bench/w7_memory.py runs a million.)"""
    client, server, run = engine_pair()
    run(20000)
    gc.collect()
    rss0, blocks0 = proc_status_kib(os.getpid(), "VmRSS"), sys.getallocatedblocks()
    run(200000)
    gc.collect()
    rss1, blocks1 = proc_status_kib(os.getpid(), "VmRSS"), sys.getallocatedblocks()
    assert not client.open_streams and not server.open_streams
    assert rss1 - rss0 < 512, "RSS grew %d KiB over 200,000 streams" % (rss1 - rss0)
    assert blocks1 - blocks0 < 200, "%d more allocated blocks" % (blocks1 - blocks0)
    tracemalloc.start()
    try:
        run(1000)
        gc.collect()
        m0 = tracemalloc.get_traced_memory()[0]
        run(10000)
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - m0
    finally:
        tracemalloc.stop()
    assert grown < 4096, "tracemalloc: %d bytes more after 10,000 streams" % grown


# -- closed connections freed without the cycle collector -------------------------------------

def _cno_objects(objects, before=frozenset()):
    """Counts by type name of cno's objects among ``objects``, leaving out those whose id
    is in ``before`` (what earlier tests of the session left alive is not this test's)."""
    import cno.aio
    counts = {}
    for o in objects:
        if id(o) in before:
            continue
        t = type(o)
        module = t.__dict__.get("__module__") or ""
        if isinstance(o, cno.aio.Server) or (isinstance(module, str)
                                             and module.startswith("cno")):
            counts[t.__name__] = counts.get(t.__name__, 0) + 1
    return counts


async def _exchange(port, kind):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if kind == "h1":            # a GET answered, then the client closes
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            await reader.readuntil(b"ok")
        elif kind == "h1_close":    # Connection: close, the server closes
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
            await reader.read()
        elif kind == "h1_bad":      # malformed: 400 and closed by the server
            writer.write(b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: x\r\n\r\n")
            await reader.read()
        elif kind == "h1_cut":      # a body cut short: the handler's read fails
            writer.write(b"POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\nabc")
            await asyncio.sleep(0.01)
        elif kind == "h2":          # a GET answered over HTTP/2
            writer.write(PREFACE + settings() + settings_ack() + headers(1, request_block("/")))
            buf = b""
            while b"ok" not in buf:
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
        elif kind == "h2_error":    # DATA on stream 0: GOAWAY(PROTOCOL_ERROR), closed
            writer.write(PREFACE + settings() + settings_ack() + data(0, b"x"))
            await reader.read()
        elif kind == "h2_cut":      # an upload running when the client goes away
            writer.write(PREFACE + settings() + settings_ack()
                         + headers(1, request_block("/upload", "POST"), end_stream=False)
                         + data(1, b"abc"))
            await asyncio.sleep(0.01)
    finally:
        writer.close()


async def _free_run(count):
    import cno
    before = frozenset(id(o) for o in gc.get_objects())

    async def handle(request):
        if request.path == "/upload":
            body = await request.payload.read()
            await request.respond(200, [], str(len(body)).encode())
        else:
            await request.respond(200, [], b"ok")

    service = await cno.serve(handle, "127.0.0.1", 0, idle_timeout=5.0, header_timeout=5.0)
    port = service.sockets[0].getsockname()[1]
    kinds = ["h1", "h1_close", "h1_bad", "h1_cut", "h2", "h2_error", "h2_cut"]
    for i in range(count):
        await _exchange(port, kinds[i % len(kinds)])
    deadline = time.monotonic() + 5
    while service._connections and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    for _ in range(10):             # handler tasks finish, callbacks run
        await asyncio.sleep(0.01)
    open_left = len(service._connections)
    live = _cno_objects(gc.get_objects(), before)
    service.close()
    await service.wait_closed()
    return open_left, live


def test_closed_connections_are_freed_without_the_cycle_collector():
    """With the cycle collector disabled, 210 connections (HTTP/1.1 and HTTP/2, answered,
    closed by either side, ended by protocol errors, cut mid-body) open and close against
    an in-process cno.serve: once they are closed no cno.aio.Server, Request or Payload is
    alive, and a gc.collect() finds nothing of cno's to free (everything went by
    reference counting)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)   # what the collector would free stays in gc.garbage
    try:
        open_left, live = asyncio.run(_free_run(210))
        gc.collect()
        garbage = _cno_objects(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert open_left == 0, "%d connections still open" % open_left
    live.pop("Service", None)
    garbage.pop("Service", None)
    assert not live and not garbage, (
        "cno objects still there after every connection closed: %s; of those, left for "
        "the cycle collector (in unreachable cycles): %s" % (live, garbage))
