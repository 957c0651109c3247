"""W7, memory per connection (issue 10): what an idle connection costs a cno.serve server,
and whether a connection that runs a million streams keeps a flat footprint.

1. Idle connections. A server (tests/hostile_server.py, a subprocess under RLIMIT_AS)
   gets N connections (default 5000) that each complete one exchange and then stay open
   and idle:
   - ``h2``: plaintext HTTP/2 by prior knowledge: preface, SETTINGS, SETTINGS ACK, one
     ``GET /`` answered;
   - ``h1``: HTTP/1.1, one ``GET /big?size=BODY`` (default 1 MB, a slice of one shared
     object) read in full, kept alive.
   Each protocol gets a fresh server. Reported: the server's RSS before (after a warm-up of
   50 such connections, kept open) and after the N, and the growth divided by N: KiB per
   idle connection. The issue's target: at most 32 KiB each.
2. A million streams on one connection, in memory: two ``cno.raw`` engines (client and
   server, HTTP/2) wired back to back, 50 requests at a time, each answered with a
   2-byte body. Reported after a warm-up: the growth of this process's RSS, of
   ``sys.getallocatedblocks()`` and (over a shorter traced run, tracemalloc being slow) of
   tracemalloc's traced memory. Flat means: none of them grows with the stream count.

    python bench/w7_memory.py                     # 5000 connections per protocol + 1M streams
    python bench/w7_memory.py --quick             # 500 connections, 100k streams
    python bench/w7_memory.py --n 2000 --protos h2 --streams 0

Options: ``--n``, ``--body``, ``--protos h2,h1``, ``--streams`` (0: skip part 2),
``--traced`` (streams run under tracemalloc, default 20000), ``--memory GiB`` (the
server's RLIMIT_AS, default 4: past it the server fails, the machine does not), ``--installed`` (use the
installed cno instead of this checkout). RLIMIT_NOFILE is raised as needed (both here and
in the server). Run it niced on a shared machine: ``nice python bench/w7_memory.py``.
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "tests")


def idle_connections(proto: str, n: int, body: int, memory_gib: float,
                     warmup: int = 50) -> dict:
    from hostile_util import GiB, HostileServer, close_all, open_idle_connections, raise_nofile
    raise_nofile(n + warmup + 200)
    # Connections live for the whole run: no idle or header timeout gets in the way.
    options = {"idle_timeout": 3600.0, "header_timeout": 3600.0}
    with HostileServer(options, memory=int(memory_gib * GiB), nofile=n + warmup + 200) as server:
        socks = []
        error = None
        try:
            socks += open_idle_connections(server.port, warmup, proto, body)
            time.sleep(0.5)
            before = server.rss_kib()
            t0 = time.monotonic()
            try:
                socks += open_idle_connections(server.port, n, proto, body)
            except (OSError, ConnectionError) as e:   # e.g. the server hit its rlimit
                error = "%s after %d connections: %s" % (type(e).__name__,
                                                         len(socks) - warmup, e)
            took = time.monotonic() - t0
            time.sleep(1.0)
            after = server.rss_kib()
            peak = server.hwm_kib()
            alive = server.alive()
        finally:
            close_all(socks)
        n = len(socks) - warmup
        return {"proto": proto, "n": n, "error": error, "before": before, "after": after, "peak": peak,
                "per_conn": (after - before) / max(n, 1), "took": took, "alive": alive,
                "stderr": server.stderr_text(2000)}


def million_streams(total: int, traced: int, batch: int = 50) -> dict:
    from hostile_util import engine_pair, proc_status_kib
    client, server, run = engine_pair(batch)
    run(20000)   # warm-up: tables, free lists, buffers at their working size
    gc.collect()
    rss0, blocks0 = proc_status_kib(os.getpid(), "VmRSS"), sys.getallocatedblocks()
    t0 = time.monotonic()
    run(total)
    took = time.monotonic() - t0
    gc.collect()
    rss1, blocks1 = proc_status_kib(os.getpid(), "VmRSS"), sys.getallocatedblocks()
    traced_growth = None
    if traced:
        tracemalloc.start()
        run(1000)
        gc.collect()
        m0 = tracemalloc.get_traced_memory()[0]
        run(traced)
        gc.collect()
        traced_growth = tracemalloc.get_traced_memory()[0] - m0
        tracemalloc.stop()
    return {"streams": total, "took": took, "rss_growth_kib": rss1 - rss0,
            "blocks_growth": blocks1 - blocks0, "traced": traced,
            "traced_growth": traced_growth, "open": (len(client.open_streams),
                                                     len(server.open_streams)),
            "last_stream": client.next_stream - 2}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=None, help="idle connections per protocol")
    ap.add_argument("--body", type=int, default=1 << 20, help="HTTP/1.1 response size")
    ap.add_argument("--protos", default="h2,h1")
    ap.add_argument("--streams", type=int, default=None, help="streams on one connection")
    ap.add_argument("--traced", type=int, default=20000)
    ap.add_argument("--memory", type=float, default=4.0,
                    help="the server's RLIMIT_AS in GiB (default 4)")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--installed", action="store_true")
    args = ap.parse_args(argv)
    if not args.installed:
        sys.path.insert(0, ROOT)
    sys.path.insert(0, TESTS)
    n = args.n if args.n is not None else (500 if args.quick else 5000)
    streams = args.streams if args.streams is not None else (100000 if args.quick else 1000000)

    import cno
    from _harness import cno_build_info, machine_info, render_info
    print(render_info(machine_info({"cno": cno_build_info(cno, ROOT)})))
    print()
    ok = True
    for proto in [p for p in args.protos.split(",") if p]:
        r = idle_connections(proto, n, args.body, args.memory)
        what = "plaintext HTTP/2, one GET / each" if proto == "h2" else \
            "HTTP/1.1, one %d-byte response read each, kept alive" % args.body
        print("idle %s connections (%s): %d" % (proto, what, r["n"]))
        print("  server RSS before %.1f MiB, after %.1f MiB (peak %.1f MiB), opened in %.1f s"
              % (r["before"] / 1024, r["after"] / 1024, r["peak"] / 1024, r["took"]))
        print("  => %.1f KiB per idle connection (target: at most 32 KiB)%s"
              % (r["per_conn"], "" if r["alive"] else "  [the server DIED]"))
        if r["error"]:
            print("  stopped early: " + r["error"])
            ok = False
        if not r["alive"] or "Traceback" in r["stderr"]:
            print("  server stderr:\n" + r["stderr"])
        ok = ok and r["alive"] and r["per_conn"] <= 32
        print()
    if streams:
        r = million_streams(streams, args.traced)
        print("one HTTP/2 connection in memory (cno.raw client + server), %d streams "
              "(last id %d) in %.1f s, open after: %s" % (r["streams"], r["last_stream"],
                                                          r["took"], r["open"]))
        print("  RSS growth %d KiB, allocated blocks growth %d" % (r["rss_growth_kib"],
                                                                  r["blocks_growth"]))
        if r["traced_growth"] is not None:
            print("  tracemalloc: %+d bytes over %d more streams" % (r["traced_growth"],
                                                                    r["traced"]))
        flat = r["rss_growth_kib"] < 1024 and r["blocks_growth"] < 1000
        print("  => %s" % ("flat" if flat else "GROWS"))
        ok = ok and flat
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
