#!/usr/bin/env python
"""Zero-copy output (docs/raw.md, "Zero-copy output"): what borrowing a write_data payload
saves over copying it, in the engine and through the asyncio server.

    python bench/zero_copy.py engine [--quick]     # where the threshold goes
    python bench/zero_copy.py aio [--quick]        # 1 MB responses on loopback, h2load
    PYTHONPATH=/path/to/other/checkout python bench/zero_copy.py aio --label before

engine: one ``write_data`` call of N bytes (a ``bytes``) on an open response, HTTP/2 (16 KiB
frames) and HTTP/1.1 (chunked), with the payload copied (``zero_copy_threshold`` above N)
or borrowed (0). What on_writev gets is consumed as a transport would: ``keep`` holds the
chunks (a vectored write: uvloop, newer CPython), ``join`` joins them into one bytes
(CPython 3.11's writelines). The peer's windows are refilled by feeding WINDOW_UPDATE
frames after each call (the same cost for both columns). Interleaved repetitions
(bench/_harness.py); the ratio is copy time over borrow time (>1: borrowing is faster).

aio: a cno server (a subprocess, pinned to CPU 1 where there are two) answers ``GET /``
with a 1 MB body (``respond`` with one ``bytes``), on the asyncio loop and on uvloop;
``h2load -n R -c 1`` (HTTP/2 prior knowledge, and ``--h1``) fetches it R times, pinned
to CPU 0. Reported per response: the server's CPU time (user + system, from its
rusage, over the timed run only), h2load's wall time, and the server's peak of
Python-allocated memory over a run of 20 responses above its level before it (tracemalloc,
in a separate traced run): the copies of the body it held at once.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


# -- engine ---------------------------------------------------------------------------------

def engine_cells(sizes, H):
    import cno.raw

    cells = []
    for proto in ("h2", "h1"):
        for size in sizes:
            data = random.Random(size).randbytes(size)
            for consumer in ("keep", "join"):
                for mode, threshold in (("copy", 1 << 62), ("borrow", 0)):
                    run = make_engine_run(cno.raw, proto, data, consumer, threshold)
                    cells.append(H.Cell(f"{proto} {size} {consumer}", mode, run, 1))
    return cells


def make_engine_run(raw, proto, data, consumer, threshold):
    class Sink(raw.Connection):
        def on_writev(self, chunks):
            self.last = chunks if consumer == "keep" else b"".join(chunks)

    conn = Sink(server=True)
    conn.zero_copy_threshold = threshold
    if proto == "h2":
        conn.connection_made(True)
        conn.data_received(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
                           b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")   # preface, SETTINGS
        # HEADERS (stream 1, END_HEADERS): GET / http example.com, HPACK static indexes.
        conn.data_received(b"\x00\x00\x10\x01\x05\x00\x00\x00\x01\x82\x84\x86\x41\x0b"
                           b"example.com")
    else:
        conn.connection_made(False)
        conn.data_received(b"GET / HTTP/1.1\r\nhost: example.com\r\n\r\n")
    conn.write_head(1, 200, "", "", [("content-type", "application/octet-stream")], False)
    n = len(data)
    inc = n.to_bytes(4, "big")
    refill = (b"\x00\x00\x04\x08\x00\x00\x00\x00\x00" + inc
              + b"\x00\x00\x04\x08\x00\x00\x00\x00\x01" + inc)
    write_data, feed = conn.write_data, conn.data_received

    if proto == "h2":
        def run(k):
            for _ in range(k):
                write_data(1, data, False)
                feed(refill)
    else:
        def run(k):
            for _ in range(k):
                write_data(1, data, False)
    run(1)
    assert conn.last, "nothing written"
    return run


def main_engine(args, H):
    sizes = [1024, 4096, 8192, 16384, 32768, 65536, 262144, 1 << 20]
    if args.quick:
        sizes = [4096, 16384, 65536]
    cells = engine_cells(sizes, H)
    H.run_interleaved(cells, args.reps or (3 if args.quick else 15), target_ms=5.0,
                      warmup_ms=20.0)
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows = []
    for case in dict.fromkeys(c.case for c in cells):
        copy, borrow = by[(case, "copy")], by[(case, "borrow")]
        rows.append([*case.split(), H.fmt_ns(copy.median), H.fmt_ns(borrow.median),
                     H.fmt_ratio(borrow, copy)])
    print("write_data of N bytes: median time per call; ratio: copy time / borrow time\n")
    print(H.render_table(["proto", "N", "on_writev", "copy", "borrow", "copy/borrow"], rows,
                         args.markdown, right=(1, 3, 4, 5)))


# -- aio --------------------------------------------------------------------------------------

BODY_SIZE = 1_000_000


def serve(args):
    """The server subprocess: prints its port, then on each SIGUSR1 a line "cpu T peak P":
    its CPU seconds (user + system) and, with --trace, tracemalloc's peak since the last
    such line above the traced memory at that time. Answers until SIGTERM."""
    import asyncio
    if ROOT not in sys.path and "PYTHONPATH" not in os.environ:
        sys.path.insert(0, ROOT)
    import cno
    if args.trace:
        import tracemalloc
        tracemalloc.start()
    if args.loop == "uvloop":
        import uvloop

    body = random.Random(1).randbytes(args.body)
    base = [0]

    def report():
        ru = resource.getrusage(resource.RUSAGE_SELF)
        peak = 0
        if args.trace:
            current, peak = tracemalloc.get_traced_memory()
            peak -= base[0]
            base[0] = current
            tracemalloc.reset_peak()
        print(f"cpu {ru.ru_utime + ru.ru_stime} peak {peak}", flush=True)

    async def handle(request):
        await request.respond(200, [("content-type", "application/octet-stream")], body)

    async def main():
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
        loop.add_signal_handler(signal.SIGUSR1, report)
        kw = {}
        if args.copy:
            def factory():
                conn = cno.Server(loop, handle)
                conn.zero_copy_threshold = 1 << 62
                return conn
            kw["protocol"] = factory
        async with await cno.serve(handle, "127.0.0.1", 0, **kw) as service:
            print(service.sockets[0].getsockname()[1], flush=True)
            await stop

    if args.loop == "uvloop":
        uvloop.run(main())
    else:
        asyncio.run(main())


class ServerProcess:
    def __init__(self, loop, trace, copy, body, cpus):
        cmd = [sys.executable, os.path.abspath(__file__), "serve", "--loop", loop,
               "--body", str(body)] + (["--trace"] if trace else []) \
            + (["--copy"] if copy else [])
        if cpus > 1 and shutil.which("taskset"):
            cmd = ["taskset", "-c", "1"] + cmd
        self.p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True,
                                  start_new_session=True)
        self.port = int(self.p.stdout.readline())

    def mark(self):
        """(CPU seconds so far, traced peak since the last mark)."""
        self.p.send_signal(signal.SIGUSR1)
        out = self.p.stdout.readline().split()
        return float(out[1]), int(out[3])

    def stop(self):
        os.killpg(self.p.pid, signal.SIGTERM)
        self.p.wait(10)


def h2load(port, proto, n, cpus):
    cmd = ["h2load", "-n", str(n), "-c", "1", f"http://127.0.0.1:{port}/"]
    if proto == "h1":
        cmd.insert(1, "--h1")
    if cpus > 1 and shutil.which("taskset"):
        cmd = ["taskset", "-c", "0"] + cmd
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    if f"{n} succeeded" not in out:
        raise AssertionError("h2load: not every request succeeded:\n" + out)
    return wall


def measure(loop, proto, copy, trace, body, n, cpus):
    """(server CPU seconds per response, wall seconds per response, traced peak)."""
    server = ServerProcess(loop, trace, copy, body, cpus)
    try:
        h2load(server.port, proto, 5, cpus)   # warm-up (code paths, buffers)
        cpu0, _ = server.mark()
        wall = h2load(server.port, proto, n, cpus)
        cpu1, peak = server.mark()
    finally:
        server.stop()
    return (cpu1 - cpu0) / n, wall / n, peak


def main_aio(args, H):
    if not shutil.which("h2load"):
        sys.exit("h2load not found (Debian: nghttp2-client)")
    cpus = os.cpu_count() or 1
    n = args.requests or (50 if args.quick else 200)
    reps = args.reps or (3 if args.quick else 7)
    loops = ["asyncio"]
    if importlib.util.find_spec("uvloop"):
        loops.append("uvloop")
    else:
        print("uvloop not installed: asyncio only", file=sys.stderr)
    modes = [False, True] if args.both else [False]
    cases = [(loop, proto, copy) for loop in loops for proto in ("h2", "h1") for copy in modes]
    samples = {c: ([], []) for c in cases}
    rng = random.Random(1)
    for rep in range(reps):
        order = cases[:]
        rng.shuffle(order)
        for case in order:
            cpu, wall, _ = measure(*case, False, args.body, n, cpus)
            samples[case][0].append(cpu)
            samples[case][1].append(wall)
        print(f"\r  repetition {rep + 1}/{reps}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    rows = []
    for case in cases:
        loop, proto, copy = case
        peak = measure(*case, True, args.body, 20, cpus)[2]
        cpu = statistics.median(samples[case][0])
        wall = statistics.median(samples[case][1])
        rows.append([args.label + (" (copy)" if copy else ""), loop, proto,
                     f"{cpu * 1e6:.0f} us", f"{wall * 1e6:.0f} us", f"{peak / 1e6:.2f} MB"])
    print(f"{args.body / 1e6:g} MB responses, {n} per run, median of {reps} runs\n")
    print(H.render_table(["build", "loop", "proto", "server CPU / response",
                          "wall / response", "traced peak"], rows, args.markdown,
                         right=(3, 4, 5)))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["engine", "aio", "serve"])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--reps", type=int)
    ap.add_argument("--requests", type=int, help="aio: responses per run")
    ap.add_argument("--body", type=int, default=BODY_SIZE, help="aio: body bytes")
    ap.add_argument("--both", action="store_true",
                    help="aio: also run each case with zero_copy_threshold out of reach")
    ap.add_argument("--label", default="this build", help="aio: the build's name in the table")
    # (serve, internal)
    ap.add_argument("--loop", default="asyncio")
    ap.add_argument("--trace", action="store_true")
    ap.add_argument("--copy", action="store_true")
    args = ap.parse_args(argv)
    if args.what == "serve":
        return serve(args)
    if ROOT not in sys.path and "PYTHONPATH" not in os.environ:
        sys.path.insert(0, ROOT)
    sys.path.insert(0, HERE)
    import _harness as H
    if args.what == "engine":
        main_engine(args, H)
    else:
        main_aio(args, H)


if __name__ == "__main__":
    main()
