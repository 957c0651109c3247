#!/usr/bin/env python
"""W12: hypercorn's own server on the real h2 and h11 vs on cno's drop-ins, under h2load.

The same hypercorn, the same app, the same settings, run two ways:

- ``hypercorn``: ``python -m hypercorn ...`` (h2 + hpack + hyperframe, h11);
- ``hypercorn on cno``: ``python -m cno.dropin -m hypercorn ...`` (its ``import h2`` and
  ``import h11`` are cno.h2 and cno.h11; its worker, a process hypercorn spawns, gets
  them too).

    python bench/w12_hypercorn.py              # default run, about 1 minute
    python bench/w12_hypercorn.py --quick      # smoke run, about 15 s
    python bench/w12_hypercorn.py --markdown   # the tables in the format of bench/results.md

Everything else is W5's (bench/w5_servers.py, whose code this uses): the endpoint
(bench/servers/asgi_app.py: GET / -> 200, 100-byte body), hypercorn's command line and
settings (bench/servers/hypercorn.toml, ``--worker-class`` uvloop if installed, 1
worker), the workloads (``h2c``: ``h2load -c 10 -m 10``; ``h1``: ``h2load --h1 -c 10 -m
1``), pinning (servers on CPU 1, h2load on CPU 0), the curl check, warm-up and
calibration, interleaved repetitions, the validity rules of a run (hypercorn's HTTP/1.1
status line has an empty reason phrase, which h2load counts as failed: accepted when the
body bytes add up, as in W5) and server CPU time per request. Before the runs, each
server's processes are checked to be what they claim: cno's extension is mapped in the
drop-in's (its worker's) memory and in none of the plain hypercorn's.
"""
from __future__ import annotations

import argparse
import atexit
import os
import shutil
import signal
import statistics
import sys
import tempfile
from dataclasses import dataclass

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import w5_servers as w5     # noqa: E402

WORKLOADS = ["h2c", "h1"]
TARGET = ("h2c", 1.3)       # issue 14: hypercorn at least 1.3x faster on h2c with the drop-in


@dataclass
class Hypercorn(w5.Server):
    dropin: bool = False        # run under python -m cno.dropin


_w5_command = w5.server_command


def server_command(s, tmp, installed):
    """W5's hypercorn command, under ``python -m cno.dropin`` for the drop-in server."""
    cmd, cwd = _w5_command(s, tmp, installed)
    if getattr(s, "dropin", False):
        py = cmd.index(sys.executable)
        cmd[py + 1:py + 1] = ["-m", "cno.dropin"]
    return cmd, cwd


# W5's start() builds its command line with w5.server_command: this one adds the drop-in.
w5.server_command = server_command


def group_pids(pgid):
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rpartition(")")[2].split()[2]) == pgid:
                        pids.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return pids


def maps_cno(s) -> bool:
    """Whether a process of the server's group has cno's _core extension mapped."""
    for pid in group_pids(s.proc.pid):
        try:
            with open(f"/proc/{pid}/maps") as f:
                if any("/cno/_core." in line for line in f):
                    return True
        except OSError:
            pass
    return False


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (about 15 s)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, --quick 2)")
    ap.add_argument("--seconds", type=float,
                    help="target duration of one run (default 3, --quick 0.5)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help="comma-separated, from h2c, h1, h1-pipelined (default h2c,h1)")
    ap.add_argument("--worker", default=None,
                    help="hypercorn --worker-class (default uvloop if installed, else asyncio)")
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 3.0)
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in w5.WORKLOADS:
            ap.error(f"unknown workload {w}")
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client")
    pin = not args.no_pin and w5.can_pin()

    import _harness as H
    if not args.installed:
        sys.path.insert(0, ROOT)
        # the servers import this checkout's cno too
        os.environ["PYTHONPATH"] = os.pathsep.join(
            [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    import cno
    try:
        import uvloop  # noqa: F401
        worker = args.worker or "uvloop"
    except ImportError:
        worker = args.worker or "asyncio"

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(w5.kill_all)
    tmp = tempfile.mkdtemp(prefix="w12-")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    servers = [Hypercorn("hypercorn", f"{worker} worker", tuple(workloads), "hypercorn",
                         empty_reason_h1=True),
               Hypercorn("hypercorn on cno", f"{worker} worker", tuple(workloads),
                         "hypercorn", empty_reason_h1=True, dropin=True)]
    try:
        versions = {
            "cno": H.cno_build_info(cno, ROOT),
            "hypercorn": f"{H.dist_version('hypercorn')}, --worker-class {worker}, 1 worker, "
                         "bench/servers/hypercorn.toml",
            "h2 / hpack / hyperframe / h11": " / ".join(
                H.dist_version(p) for p in ("h2", "hpack", "hyperframe", "h11")),
            "h2load": w5.tool_version(["h2load", "--version"]) + ", 1 thread",
        }
        info = H.machine_info(versions)
        info.append(("pinning", f"servers on CPU {w5.SERVER_CPU}, h2load on CPU "
                                f"{w5.CLIENT_CPU} (taskset)" if pin else
                     "none (taskset missing or fewer than 2 CPUs): numbers are less stable"))
        info.append(("method", f"{reps} interleaved repetitions, one h2load run per server "
                               f"and workload each, ~{seconds:g} s per run (W5's method)"))
        for s in servers:
            w5.start(s, tmp, args.installed, pin)
            log(f"  {s.name:18s} port {s.port}  " + (f"FAILED: {s.dead}" if s.dead else s.loop))
        cells = [w5.Cell(w, s) for w in workloads for s in servers]
        w5.prepare(cells, seconds, pin, log)
        for s in servers:      # after the warm-up: the worker has imported its h2 and h11
            if not s.dead and maps_cno(s) != s.dropin:
                s.dead = ("cno's extension is %s in its processes"
                          % ("missing" if s.dropin else "mapped"))
                log(f"  {s.name}: {s.dead}")
        w5.run_reps(cells, reps, pin, log)
        if hasattr(os, "getloadavg"):
            info.append(("load average at end",
                         " ".join(f"{x:.2f}" for x in os.getloadavg())))
        for c in cells:
            bad = [r.invalid for r in c.runs if r.invalid]
            if bad:
                info.append((f"invalid runs, {c.workload}, {c.server.name}",
                             f"{len(bad)}: " + " || ".join(sorted(set(bad)))[:1000]))
        for s in servers:
            if s.dead:
                info.append((f"out of the run, {s.name}", s.dead[:1000]))

        rows, lines = [], []
        for w in workloads:
            real, face = (next(c for c in cells if c.workload == w and c.server is s)
                          for s in servers)
            cpu = {}
            for c in (real, face):
                v = [r.cpu_us for r in c.runs if not r.invalid]
                cpu[c.server.name] = statistics.median(v) if v else None
                rows.append([w5.WORKLOADS[w][2], c.server.name, w5.fmt_req(c, H),
                             f"{cpu[c.server.name]:.1f} us" if v else "-",
                             str(len(w5.rates(c))), f"{c.n:,}" if c.n else "-"])
            a, b = w5.median(face), w5.median(real)
            ca, cb = cpu[face.server.name], cpu[real.server.name]
            line = f"{w}: hypercorn on cno / hypercorn = {w5.ratio(a, b)} req/s"
            if ca and cb:
                line += f", server CPU per request {cb / ca:.2f}x less"
            if w == TARGET[0]:
                line += (f" (target {TARGET[1]:g}x: "
                         + ("met" if a and b and a / b >= TARGET[1] else "NOT met") + ")")
            lines.append(line)
        table = H.render_table(["workload", "server", "requests/s, median (min-max)",
                                "server CPU / request", "runs", "n per run"], rows,
                               args.markdown, right=(2, 3, 4, 5))
        if args.markdown:
            print("Requests/s: median (min-max over repetitions) of h2load's req/s; server "
                  "CPU per request from /proc (10 ms ticks).\n")
            print(H.render_info(info, markdown=True) + "\n")
            print(table + "\n")
            print("\n".join(f"- {ln}" for ln in lines))
        else:
            print(H.render_info(info) + "\n")
            print(table + "\n")
            print("\n".join(lines))
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        sys.exit(130)
    finally:
        w5.kill_all()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
