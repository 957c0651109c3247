#!/usr/bin/env python
"""W10: servers' WebSocket echo on loopback: cno serve vs uvicorn and hypercorn.

Every server runs the same ASGI application (bench/servers/asgi_app.py, its websocket
branch: every message sent back as it came). Servers, each a subprocess:

- ``cno serve`` (cno.asgi, uvloop), HTTP/1.1 Upgrade, and the same server over HTTP/2
  (extended CONNECT, RFC 8441, h2c by prior knowledge) as a second row;
- uvicorn (uvloop, httptools) with ``--ws websockets`` and with its default ``--ws auto``
  (websockets-sansio when websockets 14+ is installed);
- hypercorn (uvloop worker; wsproto), HTTP/1.1 and h2c.

The load generator is cno's own WebSocket client (``cno.websocket.connect`` on uvloop),
this script run with ``--client``, a subprocess pinned to another CPU than the server
(``taskset``: server on CPU 0, client on CPU 1). Workloads: echo of 1 KiB and 64 KiB
binary messages over 1 connection (send, wait for the echo, repeat) and over 100
connections at once (each doing the same), for a fixed duration.

    python bench/w10_ws_servers.py              # default run, about 6 minutes
    python bench/w10_ws_servers.py --quick      # smoke run, about 1 minute
    python bench/w10_ws_servers.py --markdown   # the tables in the format of bench/results.md
    python bench/w10_ws_servers.py --servers cno,uvicorn --workloads 1k-1
    python bench/w10_ws_servers.py --profile 5  # cno serve under 1k-100 load, py-spy 5 s
    python bench/w10_ws_servers.py --profile 5 --profile-workload 1k-1 --profile-http2

Method: all servers are started first, each on its own port (an idle server takes no
CPU). Each (workload, server) cell is checked and warmed up once (a short client run
whose echoes are compared byte for byte). Then ``--reps`` repetitions (default 5); in each,
every cell runs once, in an order shuffled per repetition (fixed seed). A run: the client
opens its connections (no compression offered; the handshake answer must agree to no
extension and, for the HTTP/2 rows, ride HTTP/2), warms up for a short while, says
ready; the server's process group CPU time (user + system, /proc) is read, the client
echoes for ``--seconds`` (default 2; the messages in flight when time is up are waited
for and counted), reports, and the CPU time is read again: server CPU per message is
that difference over the messages echoed. Every echo is compared with what was sent.
Reported per cell: messages/s, median (min-max) over repetitions; server CPU-us per
message, median (min-max); the client's CPU use over the run (near 100%: the client is
the limit of messages/s, and server CPU per message is the figure to compare).
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Optional

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SERVERS_DIR = os.path.join(HERE, "servers")
sys.path.insert(0, HERE)

import w5_servers as W5  # noqa: E402  (its process helpers: pinned, kill_group, group_cpu)

HOST = "127.0.0.1"
SERVER_CPU, CLIENT_CPU = 0, 1

WORKLOADS = {
    # name: (message size, connections, description)
    "1k-1": (1024, 1, "1 KiB, 1 connection"),
    "1k-100": (1024, 100, "1 KiB, 100 connections"),
    "64k-1": (65536, 1, "64 KiB, 1 connection"),
    "64k-100": (65536, 100, "64 KiB, 100 connections"),
}


@dataclass
class Server:
    name: str            # process label
    kind: str            # cno, uvicorn-websockets, uvicorn-auto, hypercorn
    port: int = 0
    proc: Optional[subprocess.Popen] = None
    log: str = ""
    dead: str = ""


@dataclass
class Row:
    name: str            # table row
    server: Server
    http2: bool


def all_rows() -> list[Row]:
    cno = Server("cno serve", "cno")
    uv_ws = Server("uvicorn --ws websockets", "uvicorn-websockets")
    uv_auto = Server("uvicorn --ws auto", "uvicorn-auto")
    hyper = Server("hypercorn", "hypercorn")
    return [Row("cno serve, HTTP/1.1", cno, False),
            Row("cno serve, HTTP/2", cno, True),
            Row("uvicorn --ws websockets", uv_ws, False),
            Row(f"uvicorn --ws auto ({uvicorn_auto()})", uv_auto, False),
            Row("hypercorn, HTTP/1.1", hyper, False),
            Row("hypercorn, HTTP/2", hyper, True)]


def uvicorn_auto() -> str:
    """What uvicorn's --ws auto picks here (websockets-sansio, websockets or wsproto)."""
    try:
        from uvicorn.protocols.websockets.auto import AutoWebSocketsProtocol as P
    except ImportError:
        return "not installed"
    return {"WebSocketsSansIOProtocol": "websockets-sansio", "WebSocketProtocol":
            "websockets", "WSProtocol": "wsproto"}.get(P.__name__, P.__name__)


def server_command(s: Server, installed: bool) -> tuple[list[str], str]:
    py = sys.executable
    if s.kind == "cno":
        path = ([] if installed else [ROOT]) + [SERVERS_DIR]
        return [py, "-c", "import sys; sys.path[:0] = %r; from cno.cli import main; "
                          "sys.exit(main(sys.argv[1:]))" % (path,),
                "serve", "asgi_app:app", "--host", HOST, "--port", str(s.port),
                "--loop", "uvloop", "--lifespan", "off", "--timeout-keep-alive", "600",
                "--ws-per-message-deflate", "off"], SERVERS_DIR
    if s.kind.startswith("uvicorn"):
        return [py, "-m", "uvicorn", "--app-dir", SERVERS_DIR, "asgi_app:app",
                "--host", HOST, "--port", str(s.port), "--loop", "uvloop",
                "--http", "httptools", "--ws", s.kind.partition("-")[2],
                "--ws-per-message-deflate", "False", "--lifespan", "off",
                "--no-access-log", "--log-level", "warning"], ROOT
    if s.kind == "hypercorn":
        # (hypercorn agrees to permessage-deflate only when offered; the client does not)
        return [py, "-m", "hypercorn", "--config", os.path.join(SERVERS_DIR, "hypercorn.toml"),
                "--worker-class", "uvloop", "--bind", f"{HOST}:{s.port}",
                "asgi_app:app"], SERVERS_DIR
    raise ValueError(s.kind)


def start(s: Server, tmp: str, installed: bool, pin: bool, timeout: float = 30) -> None:
    s.port = W5.free_port()
    cmd, cwd = server_command(s, installed)
    s.log = os.path.join(tmp, f"{s.kind}-{s.port}.log")
    with open(s.log, "wb") as logf:
        s.proc = subprocess.Popen(W5.pinned(cmd, SERVER_CPU if pin else None), cwd=cwd,
                                  stdout=logf, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, start_new_session=True)
    W5._live.append(s.proc)
    deadline = time.monotonic() + timeout
    while True:
        if s.proc.poll() is not None:
            s.dead = f"exited with {s.proc.returncode} at start-up: {W5.log_tail(s)}"
            return
        try:
            with socket.create_connection((HOST, s.port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                s.dead = f"not listening after {timeout:g} s: {W5.log_tail(s)}"
                return
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------
# The load generator (this script with --client), in its own process

async def client_main(url: str, http2: bool, size: int, conns: int, window: int,
                      seconds: float, warmup: float) -> None:
    """Open ``conns`` WebSockets, echo for ``warmup`` s, print ``ready``, wait for ``go``
    on stdin, echo for ``seconds`` s, print the result as JSON, wait for ``close``,
    close them all."""
    import cno.websocket
    loop = asyncio.get_running_loop()
    payload = bytes(random.Random(size).getrandbits(8) for _ in range(size))

    async def open_one():
        ws = await cno.websocket.connect(url, http2=http2, compression=None,
                                         ping_interval=None, open_timeout=30)
        if ws.http2 is not http2:
            raise RuntimeError(f"the WebSocket rides {'HTTP/2' if ws.http2 else 'HTTP/1.1'}")
        extensions = [v for n, v in ws.response_headers if n == b"sec-websocket-extensions"]
        if extensions:
            raise RuntimeError(f"the server agreed to an extension: {extensions}")
        return ws

    sockets = []
    for i in range(0, conns, 20):   # (20 handshakes at a time: no listen-backlog drops)
        sockets += await asyncio.gather(*(open_one() for _ in range(min(20, conns - i))))

    async def echo(ws, end_at: float) -> int:
        send, recv, now = ws.send, ws.recv, loop.time
        n = 0
        for _ in range(window):
            await send(payload)
        outstanding = window
        while outstanding:
            got = await recv()
            if got != payload:
                raise RuntimeError(f"echo differs: {len(got)} bytes, want {size}")
            n += 1
            outstanding -= 1
            if now() < end_at:
                await send(payload)
                outstanding += 1
        return n

    async def run(duration: float) -> tuple[int, float, float]:
        cpu0, t0 = time.process_time(), time.perf_counter()
        end_at = loop.time() + duration
        counts = await asyncio.gather(*(echo(ws, end_at) for ws in sockets))
        return sum(counts), time.perf_counter() - t0, time.process_time() - cpu0

    await run(warmup)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print("ready", flush=True)
    if (await reader.readline()).strip() != b"go":
        return
    n, wall, cpu = await run(seconds)
    print(json.dumps({"messages": n, "seconds": wall, "client_cpu": cpu}), flush=True)
    await reader.readline()   # close
    await asyncio.wait_for(asyncio.gather(*(ws.close() for ws in sockets)), 30)


# ---------------------------------------------------------------------------------------
# One run, from the parent

@dataclass
class Run:
    rate: float = 0.0          # messages/s
    messages: int = 0
    cpu_us: float = 0.0        # server CPU per message, us
    client_busy: float = 0.0   # client CPU over the run's wall time
    invalid: str = ""


def run_client(row: Row, workload: str, seconds: float, warmup: float, window: int,
               pin: bool, installed: bool, spy=None) -> Run:
    size, conns, _ = WORKLOADS[workload]
    s = row.server
    url = f"ws://{HOST}:{s.port}/echo"
    cmd = [sys.executable, os.path.abspath(__file__), "--client", url, "--size", str(size),
           "--connections", str(conns), "--window", str(window), "--seconds", str(seconds),
           "--warmup", str(warmup)] + (["--http2"] if row.http2 else []) + \
          (["--installed"] if installed else [])
    p = subprocess.Popen(W5.pinned(cmd, CLIENT_CPU if pin else None), cwd=ROOT,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, start_new_session=True)
    W5._live.append(p)
    try:
        line = _readline(p, 60 + warmup)
        if line != "ready":
            return Run(invalid=f"client: {line!r} {_errors(p)}")
        cpu0 = W5.group_cpu(s.proc.pid)
        p.stdin.write("go\n")
        p.stdin.flush()
        if spy is not None:
            spy()
        line = _readline(p, 60 + seconds * 2)
        cpu = W5.group_cpu(s.proc.pid) - cpu0
        if not line.startswith("{"):
            return Run(invalid=f"client: {line!r} {_errors(p)}")
        result = json.loads(line)
        p.stdin.write("close\n")
        p.stdin.flush()
        p.wait(60)
        if p.returncode:
            return Run(invalid=f"client exit {p.returncode}: {_errors(p)}")
        if s.proc.poll() is not None:
            s.dead = f"exited with {s.proc.returncode} during a run: {W5.log_tail(s)}"
            return Run(invalid=s.dead)
        n = result["messages"]
        if not n:
            return Run(invalid="no message echoed")
        return Run(rate=n / result["seconds"], messages=n, cpu_us=cpu * 1e6 / n,
                   client_busy=result["client_cpu"] / result["seconds"])
    except (subprocess.TimeoutExpired, TimeoutError) as e:
        return Run(invalid=f"client timed out: {e}")
    finally:
        W5.kill_group(p)
        if p in W5._live:
            W5._live.remove(p)


def _readline(p: subprocess.Popen, timeout: float) -> str:
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(p.stdout, selectors.EVENT_READ)
    try:
        if not sel.select(timeout):
            raise TimeoutError(f"no answer from the client in {timeout:g} s")
    finally:
        sel.close()
    return p.stdout.readline().strip()


def _errors(p: subprocess.Popen) -> str:
    W5.kill_group(p)
    err = p.stderr.read() if p.stderr else ""
    return " | ".join(err.strip().splitlines()[-4:])


# ---------------------------------------------------------------------------------------
# The run

@dataclass
class Cell:
    workload: str
    row: Row
    runs: list = field(default_factory=list)

    def valid(self) -> list[Run]:
        return [r for r in self.runs if not r.invalid]


def measure(args, workloads, rows, reps, seconds, pin, tmp, log) -> None:
    import _harness as H
    if not args.installed:
        sys.path.insert(0, ROOT)
    import cno

    versions = {
        "cno": H.cno_build_info(cno, ROOT, ("_core", "_hpack", "_ws")),
        "cno serve": "asgi_app:app --loop uvloop --ws-per-message-deflate off "
                     "(one process; the HTTP/2 row: h2c by prior knowledge, extended CONNECT)",
        "uvicorn": f"{H.dist_version('uvicorn')}, --loop uvloop --http httptools "
                   f"--ws-per-message-deflate False --no-access-log; --ws websockets, and "
                   f"--ws auto = {uvicorn_auto()}",
        "websockets / wsproto": f"{H.dist_version('websockets')} / {H.dist_version('wsproto')}",
        "hypercorn": f"{H.dist_version('hypercorn')} (wsproto {H.dist_version('wsproto')}, "
                     "h2 " + H.dist_version('h2') + "), --worker-class uvloop, 1 worker",
        "httptools / uvloop": f"{H.dist_version('httptools')} / {H.dist_version('uvloop')}",
        "load generator": "cno.websocket.connect on uvloop (this script --client), "
                          "compression off, keepalive pings off",
    }
    info = H.machine_info(versions)
    info.append(("pinning", f"servers on CPU {SERVER_CPU}, the client on CPU {CLIENT_CPU} "
                            "(taskset)" if pin else "none (taskset missing or fewer than 2 "
                                                    "CPUs): numbers are less stable"))
    info.append(("method", f"{reps} interleaved repetitions, one client run per server "
                           f"and workload each, {seconds:g} s of echo per run (after "
                           f"{args.warmup:g} s of warm-up on the same connections), "
                           f"{args.window} message(s) in flight per connection; server "
                           "CPU: user + system of its process group over the run"))

    servers = []
    for r in rows:
        if r.server not in servers:
            servers.append(r.server)
    log(f"starting {len(servers)} servers")
    for s in servers:
        start(s, tmp, args.installed, pin)
        log(f"  {s.name:24s} port {s.port}  " + (f"FAILED: {s.dead}" if s.dead else "ok"))

    cells = [Cell(w, r) for w in workloads for r in rows]
    log("checking and warming up")
    for c in cells:
        if c.row.server.dead:
            continue
        r = run_client(c.row, c.workload, min(seconds, 0.5), 0.2, args.window, pin,
                       args.installed)
        if r.invalid:
            c.runs.append(Run(invalid="check: " + r.invalid))
            log(f"  {c.workload} {c.row.name}: {r.invalid}")
        else:
            log(f"  {c.workload:8s} {c.row.name:42s} {r.rate:10,.0f} msg/s, "
                f"{r.cpu_us:6.1f} us CPU/msg")
    rng = random.Random(1)
    order = [c for c in cells if not c.runs]
    t0 = time.monotonic()
    for rep in range(reps):
        rng.shuffle(order)
        for c in order:
            if c.row.server.dead:
                continue
            r = run_client(c.row, c.workload, seconds, args.warmup, args.window, pin,
                           args.installed)
            c.runs.append(r)
            if r.invalid:
                log(f"  INVALID run: {c.workload} {c.row.name}: {r.invalid}")
        log(f"  repetition {rep + 1}/{reps} ({time.monotonic() - t0:.0f} s)")
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    for c in cells:
        bad = [r.invalid for r in c.runs if r.invalid]
        if bad:
            info.append((f"invalid runs, {c.workload}, {c.row.name}",
                         f"{len(bad)}: " + " || ".join(sorted(set(bad)))[:1500]))
        elif not c.runs and c.row.server.dead:
            info.append((f"not run, {c.workload}, {c.row.name}", c.row.server.dead[:1500]))

    tabs = tables(cells, workloads, H, args.markdown)
    tgt = targets(cells)
    if args.markdown:
        print("Messages/s and server CPU-us per message: median (min-max over repetitions). "
              "Ratios: the server's CPU per message over cno serve's (HTTP/1.1) (>1: cno "
              "uses less).\n")
        print(H.render_info(info, markdown=True) + "\n")
        print("\n\n".join(tabs) + "\n")
        print("\n".join(f"- {t}" for t in tgt))
    else:
        print(H.render_info(info) + "\n")
        print("W10: WebSocket echo; median (min-max) over repetitions; ratio: server CPU "
              "per message / cno serve's (HTTP/1.1)\n")
        print("\n\n".join(tabs) + "\n")
        print("\n".join(tgt))


def _med(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def tables(cells, workloads, H, markdown) -> list[str]:
    out = []
    for w in workloads:
        wc = [c for c in cells if c.workload == w]
        base = next((c for c in wc if c.row.name == "cno serve, HTTP/1.1"), None)
        base_cpu = _med([r.cpu_us for r in base.valid()]) if base else None
        rows = []
        for c in wc:
            v = c.valid()
            rates = [r.rate for r in v]
            cpus = [r.cpu_us for r in v]
            busy = [r.client_busy for r in v]
            bad = len(c.runs) - len(v)
            if rates:
                rate = (f"{H.fmt_rate(statistics.median(rates))}/s "
                        f"({H.fmt_rate(min(rates)).split()[0]}-{H.fmt_rate(max(rates))})")
                cpu = (f"{statistics.median(cpus):.1f} us ({min(cpus):.1f}-{max(cpus):.1f})")
            else:
                rate = cpu = "FAILED" if bad or c.row.server.dead else "n/a"
            if bad and rates:
                rate += f", {bad} invalid"
            m = _med(cpus)
            rows.append([c.row.name, rate, cpu,
                         f"{100 * statistics.median(busy):.0f}%" if busy else "-",
                         str(len(v)),
                         f"{m / base_cpu:.2f}x" if m and base_cpu else "n/a"])
        out.append(H.render_table([WORKLOADS[w][2], "messages/s, median (min-max)",
                                   "server CPU / message", "client busy", "runs",
                                   "CPU / message, this / cno"],
                                  rows, markdown, right=(2, 3, 4, 5)))
    return out


def targets(cells) -> list[str]:
    """The issue's target: cno serve at least 2x uvicorn per CPU-second on 1 KiB echo
    (uvicorn's server CPU per message over cno's), for each uvicorn and connection count."""
    lines = []
    for w in ("1k-1", "1k-100"):
        cno = next((c for c in cells if c.workload == w and c.row.name == "cno serve, HTTP/1.1"),
                   None)
        ccpu = _med([r.cpu_us for r in cno.valid()]) if cno else None
        for c in cells:
            if c.workload != w or not c.row.name.startswith("uvicorn"):
                continue
            ucpu = _med([r.cpu_us for r in c.valid()])
            if ccpu and ucpu:
                lines.append(f"{WORKLOADS[w][2]}: target 2x {c.row.name} per CPU-second: "
                             f"{ucpu / ccpu:.2f}x ({'met' if ucpu / ccpu >= 2 else 'NOT met'})")
            else:
                lines.append(f"{WORKLOADS[w][2]}: {c.row.name} / cno: not measured")
    return lines


# ---------------------------------------------------------------------------------------
# Profile: cno serve alone under one workload, sampled by py-spy

def profile(args, pin, tmp) -> None:
    pyspy = shutil.which("py-spy")
    if not pyspy:
        sys.exit("py-spy not found: pip install py-spy")
    row = next(r for r in all_rows() if r.name == "cno serve, HTTP/1.1")
    if args.profile_http2:
        row = next(r for r in all_rows() if r.name == "cno serve, HTTP/2")
    start(row.server, tmp, args.installed, pin)
    if row.server.dead:
        sys.exit(f"cno serve: {row.server.dead}")
    raw = os.path.join(tmp, "pyspy.txt")
    holder = {}

    def spy():
        cmd = [pyspy, "record", "--pid", str(row.server.proc.pid), "-d",
               str(int(args.profile)), "--rate", "250" if args.native else "500",
               "--format", "raw", "-o", raw, "--native" if args.native else "--nonblocking"]
        holder["p"] = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True)

    r = run_client(row, args.profile_workload, args.profile + 2, 0.5, args.window, pin,
                   args.installed, spy=spy)
    if "p" in holder:
        out, err = holder["p"].communicate(timeout=120)
        if not os.path.exists(raw):
            sys.exit(f"py-spy failed: {err.strip()[-1000:]}")
    print(f"{args.profile_workload} {row.name}: {r.rate:,.0f} msg/s, "
          f"{r.cpu_us:.1f} us server CPU per message {r.invalid}")
    W5.report_pyspy(raw)


# ---------------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (about 1 minute)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, --quick 2)")
    ap.add_argument("--seconds", type=float, help="echo time per run (default 2, --quick 0.5)")
    ap.add_argument("--warmup", type=float, help="warm-up per run, on the run's connections "
                    "(default 0.5, --quick 0.2)")
    ap.add_argument("--window", type=int, default=1,
                    help="messages in flight per connection (default 1: send, await the echo)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)")
    ap.add_argument("--servers", help="comma-separated server kinds (cno, "
                    "uvicorn-websockets, uvicorn-auto, hypercorn; default: all)")
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    ap.add_argument("--profile", type=float, metavar="SECONDS",
                    help="cno serve alone under --profile-workload, py-spy for SECONDS")
    ap.add_argument("--profile-workload", choices=list(WORKLOADS), default="1k-100")
    ap.add_argument("--profile-http2", action="store_true",
                    help="profile the HTTP/2 row (extended CONNECT) instead of HTTP/1.1")
    ap.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    # the load generator (internal)
    ap.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    ap.add_argument("--http2", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--connections", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    args.warmup = args.warmup if args.warmup is not None else (0.2 if args.quick else 0.5)

    if args.client:
        if not args.installed:
            sys.path.insert(0, ROOT)
        import uvloop
        uvloop.run(client_main(args.client, args.http2, args.size, args.connections,
                               args.window, args.seconds, args.warmup))
        return

    reps = args.reps or (2 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    rows = all_rows()
    if args.servers:
        kinds = set(args.servers.split(","))
        rows = [r for r in rows if r.server.kind in kinds]
    pin = not args.no_pin and shutil.which("taskset") is not None and \
        hasattr(os, "sched_getaffinity") and {SERVER_CPU, CLIENT_CPU} <= os.sched_getaffinity(0)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(W5.kill_all)
    tmp = tempfile.mkdtemp(prefix="w10-")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.profile:
            profile(args, pin, tmp)
        else:
            measure(args, workloads, rows, reps, seconds, pin, tmp, log)
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
