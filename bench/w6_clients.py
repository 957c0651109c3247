#!/usr/bin/env python
"""W6: HTTP clients on loopback: client CPU time per request and requests/s.

10,000 GETs over 10 concurrent asyncio tasks, against a fast local server running in
another process pinned to the other CPU, from every client side by side in this process:

- ``h2c`` (HTTP/2 by prior knowledge) against nghttpd (C, one thread, serving a file);
- ``h1`` (HTTP/1.1 keep-alive) against cno's own server (``servers/cno_server.py``).

Clients (each as a user writes it; the exact calls are in the table header):

- ``httpx``: httpx with its own transport (httpcore; ``h2`` for HTTP/2, ``h11`` for 1.1),
  ``httpx.AsyncClient(http1=False, http2=True)`` for h2c, ``AsyncClient()`` for HTTP/1.1;
- ``httpx-cno``: httpx on ``cno.httpx.AsyncTransport(http2=True, http1=False)`` /
  ``AsyncTransport()``;
- ``pool``: ``cno.acgi.Pool(http2=True / False)`` directly: ``await pool.request("GET",
  url)``, then ``await response["body"].read()``;
- ``niquests``: ``niquests.AsyncSession(disable_http1=True)`` for h2c (prior knowledge:
  with HTTP/1.1 disabled, urllib3-future speaks HTTP/2 on a plain socket; its HTTP/2 is
  jh2) and ``AsyncSession()`` for HTTP/1.1;
- ``aiohttp``: ``aiohttp.ClientSession()`` (HTTP/1.1 only).

    python bench/w6_clients.py              # default run, about 5 minutes
    python bench/w6_clients.py --quick      # smoke run, about 30 s
    python bench/w6_clients.py --markdown   # the tables in the format of bench/results.md
    python bench/w6_clients.py --profile pool --profile-workload h2c   # py-spy, by layer

Method: one *run* is one client on one workload: a fresh event loop and a fresh client
(so a fresh set of connections), a warm-up of 20 requests per task (the connections open
then; not timed), ``gc.collect()``, then ``--requests`` GETs spread over
``--concurrency`` tasks (each task awaits one request at a time and reads its whole
body), timed with ``time.process_time()`` (the client process's CPU time, user +
system, all threads) and ``time.perf_counter()`` (wall), then the client is closed.
Every response must be 200 with exactly the served 100-byte body, or the run is
invalid. Before the repetitions every (client, workload) cell is checked once (the
negotiated protocol, the body). Then ``--reps`` repetitions run every cell once each, in
an order shuffled per repetition (fixed seed). The garbage collector stays on (as a
user runs the client). Reported per cell: the median and min-max over repetitions of
requests/s and of client CPU per request, the median wall time of a run, the client's
busy share (CPU over wall), the server's CPU per request (its process group, from
/proc), and ratios of CPU per request against httpx's own transport and niquests.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import gc
import os
import random
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import w5_servers as W5  # noqa: E402  (servers, pinning, /proc CPU, py-spy report)
from w5_servers import BODY  # noqa: E402

HOST = W5.HOST
SERVER_CPU, CLIENT_CPU = W5.SERVER_CPU, W5.CLIENT_CPU
WARMUP_PER_TASK = 20

WORKLOADS = {
    # name: (server kind, path, protocol every client must report, table title)
    "h2c": ("nghttpd", "/", "HTTP/2",
            "h2c (prior knowledge) against nghttpd (C, 1 thread)"),
    "h1": ("cno", "/", "HTTP/1.1",
           "HTTP/1.1 keep-alive against cno's server"),
}


# ---------------------------------------------------------------------------------------
# The clients: open(workload) -> session, fetch(session, url) -> (status, body),
# version(session, url) -> protocol string ("HTTP/2" / "HTTP/1.1"), close(session).

@dataclass
class Client:
    key: str                       # for --clients and --profile
    name: str                      # row label
    dist: str                      # distribution whose version the header gives
    workloads: tuple
    calls: dict                    # workload -> the constructor, as text
    open: Callable[[str], Awaitable[Any]]
    fetch: Callable[[Any, str], Awaitable[tuple]]
    version: Callable[[Any, str], Awaitable[str]]
    close: Callable[[Any], Awaitable[None]]


async def _httpx_open(workload):
    import httpx
    if workload == "h2c":
        return httpx.AsyncClient(http1=False, http2=True)
    return httpx.AsyncClient()


async def _httpx_cno_open(workload):
    import httpx
    import cno.httpx
    if workload == "h2c":
        return httpx.AsyncClient(transport=cno.httpx.AsyncTransport(http2=True, http1=False))
    return httpx.AsyncClient(transport=cno.httpx.AsyncTransport())


async def _httpx_fetch(client, url):
    r = await client.get(url)
    return r.status_code, r.content


async def _httpx_version(client, url):
    r = await client.get(url)
    return r.http_version


async def _httpx_close(client):
    await client.aclose()


async def _pool_open(workload):
    import cno.acgi
    return cno.acgi.Pool(http2=workload == "h2c")


async def _pool_fetch(pool, url):
    r = await pool.request("GET", url)
    return r["status_code"], await r["body"].read()


async def _pool_version(pool, url):
    r = await pool.request("GET", url)
    await r["body"].read()
    return {"2": "HTTP/2", "1.1": "HTTP/1.1"}.get(r["http_version"], r["http_version"])


async def _pool_close(pool):
    await pool.aclose()


async def _niquests_open(workload):
    import niquests
    if workload == "h2c":
        return niquests.AsyncSession(disable_http1=True)
    return niquests.AsyncSession()


async def _niquests_fetch(session, url):
    r = await session.get(url)
    return r.status_code, r.content


async def _niquests_version(session, url):
    r = await session.get(url)
    return {20: "HTTP/2", 11: "HTTP/1.1", 30: "HTTP/3"}.get(r.http_version, str(r.http_version))


async def _niquests_close(session):
    await session.close()


async def _aiohttp_open(workload):
    import aiohttp
    return aiohttp.ClientSession()


async def _aiohttp_fetch(session, url):
    async with session.get(url) as r:
        return r.status, await r.read()


async def _aiohttp_version(session, url):
    async with session.get(url) as r:
        await r.read()
        return "HTTP/%d.%d" % (r.version.major, r.version.minor)


async def _aiohttp_close(session):
    await session.close()


CLIENTS = [
    Client("httpx", "httpx (own transport)", "httpx", ("h2c", "h1"),
           {"h2c": "httpx.AsyncClient(http1=False, http2=True)", "h1": "httpx.AsyncClient()"},
           _httpx_open, _httpx_fetch, _httpx_version, _httpx_close),
    Client("httpx-cno", "httpx + cno.httpx.AsyncTransport", "httpx", ("h2c", "h1"),
           {"h2c": "httpx.AsyncClient(transport=cno.httpx.AsyncTransport(http2=True, "
                   "http1=False))",
            "h1": "httpx.AsyncClient(transport=cno.httpx.AsyncTransport())"},
           _httpx_cno_open, _httpx_fetch, _httpx_version, _httpx_close),
    Client("pool", "cno.acgi.Pool", "cno", ("h2c", "h1"),
           {"h2c": "cno.acgi.Pool(http2=True)", "h1": "cno.acgi.Pool(http2=False)"},
           _pool_open, _pool_fetch, _pool_version, _pool_close),
    Client("niquests", "niquests", "niquests", ("h2c", "h1"),
           {"h2c": "niquests.AsyncSession(disable_http1=True)", "h1": "niquests.AsyncSession()"},
           _niquests_open, _niquests_fetch, _niquests_version, _niquests_close),
    Client("aiohttp", "aiohttp", "aiohttp", ("h1",),
           {"h1": "aiohttp.ClientSession()"},
           _aiohttp_open, _aiohttp_fetch, _aiohttp_version, _aiohttp_close),
]
IMPORTS = {"httpx": ["httpx"], "httpx-cno": ["httpx", "cno.httpx"], "pool": ["cno.acgi"],
           "niquests": ["niquests"], "aiohttp": ["aiohttp"]}


# ---------------------------------------------------------------------------------------
# One run

@dataclass
class Run:
    cpu_us: float = 0.0            # client CPU (user + system) per request, us
    sys_share: float = 0.0         # system time / (user + system)
    wall: float = 0.0              # seconds for the timed requests
    rate: float = 0.0              # requests / wall
    server_us: float = 0.0         # server CPU per request, us
    conns: int = 0                 # client connections to the server at the end
    version: str = ""              # protocol the client reported (check run only)
    invalid: str = ""


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def in_loop(kind: str, coro) -> Any:
    loop = new_loop(kind)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(coro)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


async def drive(fetch, session, url: str, n: int, concurrency: int) -> list:
    """n requests over `concurrency` tasks, each awaiting one at a time; the bad answers."""
    per, extra = divmod(n, concurrency)
    bad: list = []

    async def worker(k: int) -> None:
        for _ in range(k):
            status, body = await fetch(session, url)
            if status != 200 or body != BODY:
                bad.append((status, len(body)))

    await asyncio.gather(*[worker(per + (i < extra)) for i in range(concurrency)])
    return bad


def established(port: int) -> int:
    """This process's established TCP connections to `port` (Linux /proc; 0 elsewhere)."""
    inodes = set()
    try:
        for fd in os.listdir("/proc/self/fd"):
            try:
                link = os.readlink("/proc/self/fd/" + fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        return 0
    n = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for ln in lines:
            parts = ln.split()
            if (parts[3] == "01" and int(parts[2].rsplit(":", 1)[1], 16) == port
                    and parts[9] in inodes):
                n += 1
    return n


async def one_run(client: Client, workload: str, url: str, port: int, n: int,
                  concurrency: int, server_pgid: int, check: bool) -> Run:
    session = await client.open(workload)
    run = Run()
    try:
        if check:
            run.version = await client.version(session, url)
        bad = await drive(client.fetch, session, url, WARMUP_PER_TASK * concurrency,
                          concurrency)
        if bad:
            run.invalid = f"warm-up: {len(bad)} bad answers, e.g. {bad[0]}"
            return run
        gc.collect()
        srv0 = W5.group_cpu(server_pgid)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        c0 = time.process_time()
        t0 = time.perf_counter()
        bad = await drive(client.fetch, session, url, n, concurrency)
        t1 = time.perf_counter()
        c1 = time.process_time()
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        srv1 = W5.group_cpu(server_pgid)
        run.conns = established(port)
    finally:
        await client.close(session)
    user = ru1.ru_utime - ru0.ru_utime
    system = ru1.ru_stime - ru0.ru_stime
    run.cpu_us = (c1 - c0) * 1e6 / n
    run.sys_share = system / (user + system) if user + system > 0 else 0.0
    run.wall = t1 - t0
    run.rate = n / run.wall
    run.server_us = (srv1 - srv0) * 1e6 / n
    if bad:
        run.invalid = f"{len(bad)} of {n} answers bad, e.g. (status, body length) {bad[0]}"
    return run


def run_cell(client: Client, workload: str, server: W5.Server, n: int, concurrency: int,
             loop: str, check: bool = False) -> Run:
    url = f"http://{HOST}:{server.port}{WORKLOADS[workload][1]}"
    try:
        run = in_loop(loop, one_run(client, workload, url, server.port, n, concurrency,
                                    server.proc.pid, check))
    except Exception as e:   # noqa: BLE001 - reported as an invalid run
        return Run(invalid=f"{type(e).__name__}: {e}"[:500])
    if server.proc.poll() is not None:
        server.dead = f"exited with {server.proc.returncode}: {W5.log_tail(server)}"
        run.invalid = server.dead
    return run


# ---------------------------------------------------------------------------------------
# The run, the tables

@dataclass
class Cell:
    workload: str
    client: Client
    server: W5.Server
    check: Optional[Run] = None
    runs: list = field(default_factory=list)

    def valid(self) -> list:
        return [r for r in self.runs if not r.invalid]


def med(values: list) -> Optional[float]:
    return statistics.median(values) if values else None


def cpu_median(c: Optional[Cell]) -> Optional[float]:
    return med([r.cpu_us for r in c.valid()]) if c else None


def fmt_us(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}"


def per_rep_ratios(a: Cell, b: Cell) -> list:
    """b's CPU per request over a's, repetition by repetition (both valid)."""
    return [rb.cpu_us / ra.cpu_us for ra, rb in zip(a.runs, b.runs)
            if not ra.invalid and not rb.invalid and ra.cpu_us > 0]


def tables(cells: list, workloads: list, H, markdown: bool) -> list:
    out = []
    for w in workloads:
        wc = [c for c in cells if c.workload == w]
        httpx_c = next((c for c in wc if c.client.key == "httpx"), None)
        niq_c = next((c for c in wc if c.client.key == "niquests"), None)
        rows = []
        for c in wc:
            v = c.valid()
            bad = len(c.runs) - len(v)
            if not v:
                rows.append([c.client.name, c.check.version if c.check else "-", "-",
                             "FAILED" if c.runs or c.check else "n/a"] + ["-"] * 8)
                continue
            rates = [r.rate for r in v]
            cpus = [r.cpu_us for r in v]
            cpu = statistics.median(cpus)
            rate_s = (f"{H.fmt_rate(statistics.median(rates))}/s "
                      f"({H.fmt_rate(min(rates)).split()[0]}-{H.fmt_rate(max(rates))})")
            if bad:
                rate_s += f", {bad} invalid"
            conns = sorted({r.conns for r in v})
            rows.append([
                c.client.name, c.check.version if c.check else "?",
                "/".join(map(str, conns)), rate_s,
                f"{fmt_us(cpu)} us ({fmt_us(min(cpus))}-{fmt_us(max(cpus))})",
                f"{100 * statistics.median([r.sys_share for r in v]):.0f}%",
                f"{statistics.median([r.wall for r in v]):.2f} s",
                f"{100 * statistics.median([r.cpu_us * r.rate / 1e6 for r in v]):.0f}%",
                f"{statistics.median([r.server_us for r in v]):.1f} us",
                str(len(v)),
                _ratio(cpu_median(httpx_c), cpu),
                _ratio(cpu_median(niq_c), cpu),
            ])
        out.append(H.render_table(
            [WORKLOADS[w][3], "protocol", "conns", "requests/s, median (min-max)",
             "client CPU / request, median (min-max)", "of which system", "wall / run",
             "client busy", "server CPU / request", "runs", "httpx (own) CPU / this",
             "niquests CPU / this"],
            rows, markdown, right=(2, 4, 5, 6, 7, 8, 9, 10, 11)))
    return out


def _ratio(peer: Optional[float], this: Optional[float]) -> str:
    return f"{peer / this:.2f}x" if peer and this else "n/a"


def targets(cells: list) -> list:
    """Issue 9's targets, on client CPU per request (ratio of the medians; the range is
    the per-repetition ratio, both clients measured in the same repetition)."""
    def cell(w, key):
        return next((c for c in cells if c.workload == w and c.client.key == key), None)

    lines = []
    for ours, peer, goal in (("httpx-cno", "httpx", 3.0), ("pool", "niquests", 2.0)):
        for w in WORKLOADS:
            a, b = cell(w, ours), cell(w, peer)
            if a is None or b is None:
                continue
            ca, cb = cpu_median(a), cpu_median(b)
            if not ca or not cb:
                lines.append(f"{w}: {a.client.name} vs {b.client.name}: not measured")
                continue
            reps = per_rep_ratios(a, b)
            span = f" (per repetition {min(reps):.2f}-{max(reps):.2f}x)" if reps else ""
            lines.append(
                f"{w}: target {a.client.name} at most 1/{goal:g} of {b.client.name}'s CPU per "
                f"request: {cb:,.1f} / {ca:,.1f} us = {cb / ca:.2f}x{span}: "
                f"{'met' if cb / ca >= goal else 'NOT met'}")
    return lines


def measure(args, workloads: list, clients: list, reps: int, n: int, pin: bool, tmp: str,
            log) -> None:
    import _harness as H
    import cno

    servers = {}
    for w in workloads:
        kind = WORKLOADS[w][0]
        if kind in servers:
            continue
        if kind == "nghttpd":
            s = W5.Server("nghttpd (C)", "1 thread", ("h2c",), "nghttpd")
            if not shutil.which("nghttpd"):
                sys.exit("nghttpd not found: apt-get install nghttp2-server")
        else:
            s = W5.Server(f"cno ({args.server_loop})", args.server_loop, ("h1",), "cno",
                          cno_loop=args.server_loop)
        W5.start(s, tmp, args.installed, pin)
        if s.dead:
            sys.exit(f"{s.name}: {s.dead}")
        err = W5.curl_check(s, w)
        if err:
            sys.exit(f"{s.name}: {err}")
        servers[kind] = s
        log(f"  {s.name} on port {s.port}")
    if pin:
        os.sched_setaffinity(0, {CLIENT_CPU})

    versions = {"cno": H.cno_build_info(cno, ROOT)}
    for c in clients:
        if c.dist != "cno" and c.dist not in versions:
            versions[c.dist] = H.dist_version(c.dist)
    deps = [("httpx's own transport", ["httpcore", "h2", "h11", "anyio"]),
            ("niquests", ["urllib3-future", "jh2"]), ("aiohttp", ["multidict", "yarl"])]
    for label, names in deps:
        if any(c.dist == label.split("'")[0] for c in clients):
            versions[f"{label} uses"] = ", ".join(f"{d} {H.dist_version(d)}" for d in names)
    if any(c.key == "httpx" for c in clients):
        # httpcore's current_async_library() runs `import sniffio` several times per
        # request; when sniffio is missing (httpx and httpcore do not require it, and
        # recent anyio, 4.16 here, no longer does), every such import searches sys.path
        # again and fails: about 0.5 ms per request here. Say which case was measured.
        sniffio = H.dist_version("sniffio")
        versions["sniffio"] = (sniffio if sniffio != "not installed" else
                               "not installed (httpcore then retries `import sniffio`, a "
                               "sys.path search, on every lock setup: see bench/results.md)")
    versions["client event loop"] = args.loop + (
        f" (uvloop {H.dist_version('uvloop')})" if args.loop == "uvloop" else "")
    for s in servers.values():
        if s.kind == "nghttpd":
            versions["h2c server"] = (W5.tool_version(["nghttpd", "--version"])
                                      + ", --no-tls, 1 thread (-n 1), serving a 100-byte file")
        else:
            versions["HTTP/1.1 server"] = (f"bench/servers/cno_server.py (cno.serve), "
                                           f"{s.loop} loop, 100-byte body")
    info = H.machine_info(versions)
    info.append(("pinning", f"servers on CPU {SERVER_CPU}, this client process on CPU "
                            f"{CLIENT_CPU}" if pin else
                 "none (taskset missing or fewer than 2 CPUs): numbers are less stable"))
    info.append(("method", f"{reps} interleaved repetitions; a run = a fresh client "
                           f"(fresh connections), {WARMUP_PER_TASK * args.concurrency} "
                           f"warm-up requests, then {n:,} GETs over {args.concurrency} "
                           "tasks (one request at a time each, whole body read), timed "
                           "with time.process_time() and perf_counter(); GC on"))

    cells = [Cell(w, c, servers[WORKLOADS[w][0]]) for w in workloads for c in clients
             if w in c.workloads]
    log("checking every cell (protocol, body)")
    for c in cells:
        r = run_cell(c.client, c.workload, c.server, 20 * args.concurrency,
                     args.concurrency, args.loop, check=True)
        c.check = r
        want = WORKLOADS[c.workload][2]
        if not r.invalid and r.version != want:
            r.invalid = f"spoke {r.version}, not {want}"
        log(f"  {c.workload:4s} {c.client.name:34s} "
            + (f"INVALID: {r.invalid}" if r.invalid else
               f"{r.version}, {r.conns} connection(s), {r.cpu_us:,.0f} us CPU/request"))
    live = [c for c in cells if not c.check.invalid]

    rng = random.Random(1)
    order = list(live)
    t0 = time.monotonic()
    for rep in range(reps):
        rng.shuffle(order)
        for c in order:
            if c.server.dead:
                c.runs.append(Run(invalid=f"server gone: {c.server.dead}"))
                continue
            r = run_cell(c.client, c.workload, c.server, n, args.concurrency, args.loop)
            c.runs.append(r)
            if r.invalid:
                log(f"  INVALID run: {c.workload} {c.client.name}: {r.invalid}")
        log(f"  repetition {rep + 1}/{reps} ({time.monotonic() - t0:.0f} s)")
    # Every live cell has exactly `reps` entries, in repetition order (per_rep_ratios).
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    for w in workloads:
        for c in clients:
            if w in c.workloads:
                info.append((f"client, {w}, {c.name}", c.calls[w]))
        s = servers[WORKLOADS[w][0]]
        if w in s.fields:
            info.append((f"response fields, {w}, {s.name}", ", ".join(s.fields[w])))
    for c in cells:
        if c.check and c.check.invalid:
            info.append((f"not run, {c.workload}, {c.client.name}", c.check.invalid))
        bad = [r.invalid for r in c.runs if r.invalid]
        if bad:
            info.append((f"invalid runs, {c.workload}, {c.client.name}",
                         f"{len(bad)}: " + " || ".join(sorted(set(bad)))[:1500]))

    tabs = tables(cells, workloads, H, args.markdown)
    tgt = targets(cells)
    if args.markdown:
        print("Client CPU per request (user + system time of the client process over the "
              "timed requests) and requests/s: median (min-max over repetitions). Ratios "
              "are the peer's median CPU per request over this client's (>1: this client "
              "uses less).\n")
        print(H.render_info(info, markdown=True) + "\n")
        print("\n\n".join(tabs) + "\n")
        print("\n".join(f"- {t}" for t in tgt))
    else:
        print(H.render_info(info) + "\n")
        print("W6: client CPU per request and requests/s, median (min-max) over "
              "repetitions; ratios: peer CPU / this\n")
        print("\n\n".join(tabs) + "\n")
        print("\n".join(tgt))


# ---------------------------------------------------------------------------------------
# Profile: one client alone, sampled by py-spy, time split by layer

LAYERS = [
    # (layer, regex on a py-spy frame's "(file:line)" or "(library)" part), first match
    # from the leaf up decides; frames matching none (the rest of the standard library,
    # the interpreter) are charged to the nearest owning frame above them.
    ("GC", r"gcmodule\.c"),
    ("socket and epoll calls (kernel included)", r"socketmodule\.c|selectmodule\.c"),
    ("cno engine (_core, _hpack)", r"cno/_core\.pyx|cno/_hpack\.pyx|cno/_h1\.pxi|cno/_.*\.pxd"
                                   r"|_core\.cpython|_hpack\.cpython"),
    ("cno.aio (asyncio protocol, Client)", r"cno/aio/|cno/raw\.py"),
    ("cno.acgi (Pool, Connection)", r"cno/acgi/"),
    ("cno.httpx (the transport)", r"cno/httpx\.py"),
    ("httpx (above the transport)", r"(^|/)httpx/"),
    ("urllib3-future + jh2", r"(^|/)(urllib3|urllib3_future|jh2|qh3)/|_hazmat"),
    ("httpcore + h2/hpack/h11 (httpx's own transport)",
     r"(^|/)(httpcore|h2|h11|hpack|hyperframe)/"),
    ("anyio / sniffio", r"(^|/)(anyio|sniffio)/"),
    ("niquests", r"(^|/)niquests/"),
    ("aiohttp (+ multidict, yarl)", r"(^|/)(aiohttp|multidict|yarl|propcache|aiohappyeyeballs)/"),
    ("asyncio (event loop, tasks, transports)",
     r"(^|/)asyncio/|_asynciomodule\.c|(^|/)selectors\.py|uvloop"),
    ("the benchmark's loop (w6_clients.py)", r"w6_clients\.py"),
]


def layer_of(frames: list) -> tuple:
    """(layer, owning frame) of one sampled stack (frames root first)."""
    if any("gcmodule.c" in fr or "gc_collect" in fr for fr in frames):
        return "GC", "gc"
    for fr in reversed(frames):
        m = re.search(r"\(([^()]*)\)$", fr)
        where = m.group(1) if m else fr
        for name, rx in _LAYER_RX:
            if rx.search(where):
                return name, re.sub(r":\d+\)$", ")", fr)
    return "other (interpreter start-up, unowned)", "?"


_LAYER_RX = [(name, re.compile(rx)) for name, rx in LAYERS[1:]]


def report_layers(raw: str, cpu_us: Optional[float], top: int = 6) -> None:
    """Samples per layer (the leaf-most frame that belongs to one), in us per request
    when the unprofiled CPU per request is known; the main owning frames of each."""
    counts: dict = {}
    owners: dict = {}
    total = others = 0
    with open(raw) as f:
        for ln in f:
            stack, _, cnt = ln.rstrip().rpartition(" ")
            if not stack:
                continue
            k = int(cnt)
            if "w6_clients.py" not in stack:
                # Not the event loop's thread (e.g. an idle executor thread, which py-spy
                # --native may count as active): left out.
                others += k
                continue
            total += k
            name, owner = layer_of(stack.split(";"))
            counts[name] = counts.get(name, 0) + k
            owners.setdefault(name, {})
            owners[name][owner] = owners[name].get(owner, 0) + k
    if not total:
        print("no samples")
        return
    if others:
        print(f"\n{others} samples of other threads than the event loop's left out")
    print(f"\nwhere the client's time goes, by layer ({total} samples; a sample goes to "
          "the leaf-most frame of a known layer, so the standard library and the "
          "interpreter count for their caller; client CPU per request, unprofiled: "
          f"{f'{cpu_us:.1f} us' if cpu_us else 'unknown'}):")
    for name, k in sorted(counts.items(), key=lambda x: -x[1]):
        us = f"{cpu_us * k / total:7.1f} us/request" if cpu_us else ""
        print(f"  {100 * k / total:5.1f}%  {us}  {name}")
        for owner, j in sorted(owners[name].items(), key=lambda x: -x[1])[:top]:
            us = f"{cpu_us * j / total:7.1f} us" if cpu_us else ""
            print(f"          {us}  {100 * j / total:5.1f}%  {owner}")


def child(args) -> None:
    """--child: one client alone, looping until killed (the profiled process)."""
    client = next(c for c in CLIENTS if c.key == args.child)
    url = args.child_url

    async def go():
        session = await client.open(args.child_workload)
        try:
            await drive(client.fetch, session, url, WARMUP_PER_TASK * args.concurrency,
                        args.concurrency)
            block = 2000
            i = 0
            while True:
                c0 = time.process_time()
                bad = await drive(client.fetch, session, url, block, args.concurrency)
                cpu = (time.process_time() - c0) * 1e6 / block
                print(f"block {i} {cpu:.2f} {len(bad)}", flush=True)
                i += 1
        finally:
            await client.close(session)

    in_loop(args.loop, go())


def profile(args, pin: bool, tmp: str, log) -> None:
    client = next((c for c in CLIENTS if c.key == args.profile), None)
    if client is None:
        sys.exit(f"--profile: one of {', '.join(c.key for c in CLIENTS)}")
    w = args.profile_workload
    if w not in client.workloads:
        sys.exit(f"{client.name} does not run {w}")
    kind = WORKLOADS[w][0]
    s = (W5.Server("nghttpd (C)", "1 thread", ("h2c",), "nghttpd") if kind == "nghttpd" else
         W5.Server(f"cno ({args.server_loop})", args.server_loop, ("h1",), "cno",
                   cno_loop=args.server_loop))
    W5.start(s, tmp, args.installed, pin)
    if s.dead:
        sys.exit(f"{s.name}: {s.dead}")
    url = f"http://{HOST}:{s.port}{WORKLOADS[w][1]}"
    cmd = [sys.executable, os.path.abspath(__file__), "--child", client.key,
           "--child-workload", w, "--child-url", url, "--concurrency", str(args.concurrency),
           "--loop", args.loop] + (["--installed"] if args.installed else [])
    proc = subprocess.Popen(W5.pinned(cmd, CLIENT_CPU if pin else None), cwd=ROOT,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    W5._live.append(proc)
    base = []
    for ln in proc.stdout:          # three unprofiled blocks first: the reference CPU
        if ln.startswith("block"):
            base.append(float(ln.split()[2]))
            if len(base) >= 4:
                break
    if proc.poll() is not None:
        sys.exit("the client exited early")
    cpu_us = statistics.median(base[1:]) if len(base) > 1 else None
    log(f"{client.name}, {w}: {cpu_us:.1f} us CPU per request unprofiled (median of "
        f"{len(base) - 1} blocks of 2000)")
    pyspy = shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not os.path.exists(pyspy):
        sys.exit("py-spy not found: pip install py-spy")
    raw = os.path.join(tmp, "pyspy.txt")
    cmd = [pyspy, "record", "--pid", str(proc.pid), "-d", str(int(args.profile_seconds)),
           "--rate", "250" if args.native else "500", "--format", "raw", "-o", raw,
           "--native" if args.native else "--nonblocking"]
    # Keep reading the child's output, or its pipe fills and it blocks.
    import threading
    during: list = []
    reader = threading.Thread(target=lambda: [during.append(ln) for ln in proc.stdout],
                              daemon=True)
    reader.start()
    spy = subprocess.run(cmd, capture_output=True, text=True, timeout=args.profile_seconds + 120)
    W5.kill_group(proc)
    if not os.path.exists(raw):
        sys.exit(f"py-spy failed (exit {spy.returncode}): {spy.stderr.strip()[-1000:]}")
    slowed = [float(ln.split()[2]) for ln in during if ln.startswith("block")]
    if slowed:
        log(f"while sampled: {statistics.median(slowed):.1f} us CPU per request "
            f"({len(slowed)} blocks)")
    W5.report_pyspy(raw, top=15)
    report_layers(raw, cpu_us)


# ---------------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (about 30 s)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--requests", type=int,
                    help="timed requests per run (default 10000, --quick 2000)")
    ap.add_argument("--concurrency", type=int, default=10, help="concurrent tasks (default 10)")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, --quick 2)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)")
    ap.add_argument("--clients", default=",".join(c.key for c in CLIENTS),
                    help="comma-separated, from %s (default: all)"
                         % ", ".join(c.key for c in CLIENTS))
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio",
                    help="the clients' event loop (default asyncio)")
    ap.add_argument("--server-loop", choices=["asyncio", "uvloop"], default="uvloop",
                    help="event loop of cno's HTTP/1.1 server (default uvloop)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--profile", metavar="CLIENT",
                    help="run CLIENT alone and sample it with py-spy; time split by layer")
    ap.add_argument("--profile-workload", choices=list(WORKLOADS), default="h2c")
    ap.add_argument("--profile-seconds", type=float, default=10.0)
    ap.add_argument("--no-native", dest="native", action="store_false",
                    help="py-spy without --native (C time charged to the Python caller)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-workload", help=argparse.SUPPRESS)
    ap.add_argument("--child-url", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if not args.installed:
        sys.path.insert(0, ROOT)
    if args.child:
        child(args)
        return
    reps = args.reps or (2 if args.quick else 5)
    n = args.requests or (2000 if args.quick else 10000)
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    keys = [k for k in args.clients.split(",") if k]
    clients = []
    for k in keys:
        c = next((c for c in CLIENTS if c.key == k), None)
        if c is None:
            ap.error(f"unknown client {k}")
        try:
            for mod in IMPORTS[k]:
                __import__(mod)
        except ImportError as e:
            print(f"{c.name}: not installed ({e}): left out", file=sys.stderr)
            continue
        clients.append(c)
    pin = not args.no_pin and W5.can_pin()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(W5.kill_all)
    tmp = tempfile.mkdtemp(prefix="w6-")
    os.makedirs(os.path.join(tmp, "www"))
    with open(os.path.join(tmp, "www", "index.html"), "wb") as f:
        f.write(BODY)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.profile:
            profile(args, pin, tmp, log)
            return
        measure(args, workloads, clients, reps, n, pin, tmp, log)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        sys.exit(130)
    finally:
        W5.kill_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
