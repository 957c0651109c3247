#!/usr/bin/env python
"""W5: real servers on loopback under h2load: requests/s, cno vs hypercorn, uvicorn, nghttpd, nginx.

Every server answers the same trivial endpoint: GET / -> 200, ``content-type: text/html``
and the same 100-byte body (bench/servers/asgi_app.BODY). Workloads (h2load, one thread):

- ``h2c``: HTTP/2 over cleartext by prior knowledge, ``h2load -c 10 -m 10`` (10 connections,
  10 concurrent streams each): cno (asyncio loop, uvloop), hypercorn, nghttpd (C);
- ``h1``: HTTP/1.1 keep-alive, ``h2load --h1 -c 10 -m 1`` (10 connections, one request at
  a time on each): cno (asyncio, uvloop), uvicorn (uvloop + httptools), hypercorn, nginx (C);
- ``h1-pipelined``: the same with ``-m 10`` (h2load pipelines 10 requests per connection).

nghttpd speaks only HTTP/2 (it answers HTTP/1.1 with HTTP/2 frames), so the C reference of
the HTTP/1.1 rows is nginx (one process, ``master_process off``, access log off).

    python bench/w5_servers.py              # default run, about 5 minutes
    python bench/w5_servers.py --quick      # smoke run, about 40 s
    python bench/w5_servers.py --markdown   # the tables in the format of bench/results.md
    python bench/w5_servers.py --profile 5  # cno's server under h2c load, py-spy for 5 s

Method: every server is a subprocess started by this script (in its own session, killed
with its process group at the end, also on Ctrl-C or an error), pinned with ``taskset`` to
CPU 1 while h2load runs pinned to CPU 0 (on a machine with 2 CPUs or more). All servers are
started at the beginning and listen on their own loopback port; an idle server takes no
CPU. Each (workload, server) cell is checked with curl (status 200, the body, the response
fields), warmed up and calibrated (a 1000-request run, then one of about 1 s) so that one
timed run takes about ``--seconds`` (default 3). Then ``--reps`` repetitions (default 5):
every repetition runs every cell once, in an order shuffled per repetition (fixed seed).
The rate of a run is h2load's ``req/s`` (requests over the time from the first connect to
the last response). A run is valid only if all N requests are done and succeeded (status
2xx), none errored or timed out, exactly N * 100 bytes of body arrived, and the server
process is still alive; an invalid run is reported and left out of the statistics.
"""
from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import random
import re
import resource
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
sys.path.insert(0, SERVERS_DIR)

from asgi_app import BODY, CONTENT_TYPE  # noqa: E402

HOST = "127.0.0.1"
CONNECTIONS = 10
SERVER_CPU, CLIENT_CPU = 1, 0

WORKLOADS = {
    # name: (h2load flags, expected "Application protocol", description)
    "h2c": (["-c", str(CONNECTIONS), "-m", "10"], "h2c",
            "h2c (prior knowledge), h2load -c 10 -m 10"),
    "h1": (["--h1", "-c", str(CONNECTIONS), "-m", "1"], "http/1.1",
           "HTTP/1.1, h2load --h1 -c 10 -m 1"),
    "h1-pipelined": (["--h1", "-c", str(CONNECTIONS), "-m", "10"], "http/1.1",
                     "HTTP/1.1 pipelined, h2load --h1 -c 10 -m 10"),
}


@dataclass
class Server:
    name: str                      # column / row label
    loop: str                      # event loop as configured (for the table)
    workloads: tuple               # which WORKLOADS it takes part in
    kind: str                      # cno, hypercorn, uvicorn, nghttpd, nginx
    cno_loop: str = ""             # for kind == "cno"
    port: int = 0
    proc: Optional[subprocess.Popen] = None
    log: str = ""
    dead: str = ""                 # why it is out of the run, if it is
    fields: dict = field(default_factory=dict)   # workload -> response field names
    # hypercorn's HTTP/1.1 status line is "HTTP/1.1 200 " (h11 sends an empty reason
    # phrase); h2load's parser then never reports the status and counts every response
    # as failed although it arrived whole. Accepted for this server only, when the
    # curl check saw 200 and every run's body bytes add up.
    empty_reason_h1: bool = False


def all_servers(hypercorn_worker: str) -> list[Server]:
    h1 = ("h1", "h1-pipelined")
    return [
        Server("cno (asyncio)", "asyncio", ("h2c",) + h1, "cno", cno_loop="asyncio"),
        Server("cno (uvloop)", "uvloop", ("h2c",) + h1, "cno", cno_loop="uvloop"),
        Server("hypercorn", f"{hypercorn_worker} worker", ("h2c",) + h1, "hypercorn",
               empty_reason_h1=True),
        Server("cno ASGI", "uvloop", ("h2c",) + h1, "cno-asgi"),
        Server("granian", "uvloop, 1 worker", ("h2c",) + h1, "granian"),
        Server("uvicorn", "uvloop, httptools", h1, "uvicorn"),
        # uvicorn's --http zttp is HTTP/1.1 only (0.55: a prior-knowledge h2c preface is
        # "Invalid HTTP request"), so it takes no part in h2c
        Server("uvicorn (zttp)", "uvloop, zttp", h1, "uvicorn-zttp"),
        Server("nghttpd (C)", "1 thread", ("h2c",), "nghttpd"),
        Server("nginx (C)", "1 process", h1, "nginx"),
    ]


# ---------------------------------------------------------------------------------------
# Processes

_live: list[subprocess.Popen] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def pinned(cmd: list[str], cpu: Optional[int]) -> list[str]:
    return (["taskset", "-c", str(cpu)] + cmd) if cpu is not None else cmd


def can_pin() -> bool:
    if not shutil.which("taskset") or not hasattr(os, "sched_getaffinity"):
        return False
    return {SERVER_CPU, CLIENT_CPU} <= os.sched_getaffinity(0)


def kill_group(p: subprocess.Popen) -> None:
    """SIGTERM to the process group (the server and its children), SIGKILL after 3 s."""
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(3)
        except subprocess.TimeoutExpired:
            pass
    try:   # the group may outlive its leader (hypercorn's worker): make sure
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(3)
    except subprocess.TimeoutExpired:
        pass


def kill_all() -> None:
    while _live:
        kill_group(_live.pop())


def server_command(s: Server, tmp: str, installed: bool) -> tuple[list[str], str]:
    py = sys.executable
    if s.kind == "cno":
        cmd = [py, os.path.join(SERVERS_DIR, "cno_server.py"), "--host", HOST,
               "--port", str(s.port), "--loop", s.cno_loop]
        return cmd + (["--installed"] if installed else []), ROOT
    if s.kind == "cno-asgi":
        # The same ASGI application under `cno serve` (cno.asgi), one process.
        env_path = [] if installed else [ROOT]
        cmd = [py, "-c", "import sys; sys.path[:0] = %r; from cno.cli import main; "
                         "sys.exit(main(sys.argv[1:]))" % (env_path + [SERVERS_DIR],),
               "serve", "asgi_app:app", "--host", HOST, "--port", str(s.port),
               "--loop", "uvloop", "--timeout-keep-alive", "600"]
        return cmd, SERVERS_DIR
    if s.kind == "granian":
        return [py, "-m", "granian", "--interface", "asgi", "--http", "auto", "--loop",
                "uvloop", "--workers", "1", "--no-ws", "--log-level", "warning",
                "--host", HOST, "--port", str(s.port), "asgi_app:app"], SERVERS_DIR
    if s.kind == "hypercorn":
        worker = s.loop.split()[0]
        return [py, "-m", "hypercorn", "--config", os.path.join(SERVERS_DIR, "hypercorn.toml"),
                "--worker-class", worker, "--bind", f"{HOST}:{s.port}",
                "asgi_app:app"], SERVERS_DIR
    if s.kind in ("uvicorn", "uvicorn-zttp"):
        return [py, "-m", "uvicorn", "--app-dir", SERVERS_DIR, "asgi_app:app",
                "--host", HOST, "--port", str(s.port), "--loop", "uvloop",
                "--http", "zttp" if s.kind == "uvicorn-zttp" else "httptools",
                "--no-access-log", "--log-level", "warning"], ROOT
    if s.kind == "nghttpd":
        return ["nghttpd", "--no-tls", "-n", "1", "-a", HOST, "-d", os.path.join(tmp, "www"),
                str(s.port)], tmp
    if s.kind == "nginx":
        conf = os.path.join(tmp, f"nginx-{s.port}.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=s.port, host=HOST,
                                      www=os.path.join(tmp, "www")))
        return ["nginx", "-p", tmp, "-c", conf], tmp
    raise ValueError(s.kind)


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    types {{ text/html html; }}
    default_type text/html;
    keepalive_requests 1000000000;
    client_body_temp_path {tmp}/nginx-tmp;
    proxy_temp_path {tmp}/nginx-tmp;
    fastcgi_temp_path {tmp}/nginx-tmp;
    uwsgi_temp_path {tmp}/nginx-tmp;
    scgi_temp_path {tmp}/nginx-tmp;
    server {{ listen {host}:{port}; root {www}; index index.html; }}
}}
"""


def start(s: Server, tmp: str, installed: bool, pin: bool, timeout: float = 30) -> None:
    s.port = free_port()
    cmd, cwd = server_command(s, tmp, installed)
    s.log = os.path.join(tmp, f"{s.kind}-{s.port}.log")
    logf = open(s.log, "wb")
    s.proc = subprocess.Popen(pinned(cmd, SERVER_CPU if pin else None), cwd=cwd,
                              stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    logf.close()
    _live.append(s.proc)
    deadline = time.monotonic() + timeout
    while True:
        if s.proc.poll() is not None:
            s.dead = f"exited with {s.proc.returncode} at start-up: {log_tail(s)}"
            return
        try:
            with socket.create_connection((HOST, s.port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                s.dead = f"not listening after {timeout:g} s: {log_tail(s)}"
                return
            time.sleep(0.05)
    if s.kind == "cno":   # cno_server.py says which loop it runs once it listens
        while time.monotonic() < deadline:
            m = re.search(r"ready \d+ loop=(\S+)", open(s.log, errors="replace").read())
            if m:
                s.loop = f"{s.cno_loop} ({m.group(1).rpartition('.')[2]})"
                break
            time.sleep(0.05)


def log_tail(s: Server, n: int = 600) -> str:
    try:
        with open(s.log, errors="replace") as f:
            text = f.read().strip()
    except OSError:
        return "(no log)"
    return " | ".join(text[-n:].splitlines()) or "(empty log)"


# ---------------------------------------------------------------------------------------
# h2load

@dataclass
class Run:
    rate: float = 0.0              # h2load's req/s
    seconds: float = 0.0
    cpu_us: float = 0.0            # server CPU time (user + system) per request, us
    client_busy: float = 0.0       # h2load's CPU time over the run's wall time
    invalid: str = ""              # why the run does not count


_RE = {
    "finished": re.compile(r"finished in ([\d.]+)(s|ms|us), ([\d.]+) req/s"),
    "requests": re.compile(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) "
                           r"succeeded, (\d+) failed, (\d+) errored, (\d+) timeout"),
    "status": re.compile(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx"),
    "data": re.compile(r"traffic: .*\((\d+)\) data"),
    "proto": re.compile(r"Application protocol: (\S+)"),
}


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def group_cpu(pgid: int) -> float:
    """CPU seconds (user + system) used so far by the processes of a process group (the
    server, and hypercorn's worker). Linux /proc; 0.0 elsewhere."""
    total = 0
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        return 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        if int(rest[2]) == pgid:
            total += int(rest[11]) + int(rest[12])
    return total / _TICK


def h2load(s: Server, workload: str, n: int, pin: bool) -> Run:
    flags, proto, _ = WORKLOADS[workload]
    cmd = pinned(["h2load", "-n", str(n), *flags, f"http://{HOST}:{s.port}/"],
                 CLIENT_CPU if pin else None)
    cpu0 = group_cpu(s.proc.pid)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120 + n / 500)
    except subprocess.TimeoutExpired:
        return Run(invalid=f"h2load timed out (n={n})")
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = group_cpu(s.proc.pid) - cpu0
    client = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) / max(wall, 1e-9)
    out = p.stdout + p.stderr
    m = {k: r.search(out) for k, r in _RE.items()}
    if s.proc.poll() is not None:
        s.dead = f"exited with {s.proc.returncode} during a run: {log_tail(s)}"
        return Run(invalid=s.dead)
    if not m["finished"] or not m["requests"]:
        return Run(invalid=f"h2load exit {p.returncode}: {' | '.join(out.strip().splitlines()[-4:])}")
    t = float(m["finished"].group(1)) * {"s": 1, "ms": 1e-3, "us": 1e-6}[m["finished"].group(2)]
    run = Run(rate=float(m["finished"].group(3)), seconds=t, cpu_us=cpu * 1e6 / n,
              client_busy=client)
    total, started, done, ok, failed, errored, timeout = map(int, m["requests"].groups())
    two = int(m["status"].group(1)) if m["status"] else -1
    data = int(m["data"].group(1)) if m["data"] else -1
    problems = []
    if m["proto"] is None or m["proto"].group(1) != proto:
        problems.append(f"protocol {m['proto'].group(1) if m['proto'] else '?'} (want {proto})")
    if done != n or errored or timeout:
        problems.append(f"{done}/{n} done, {errored} errored, {timeout} timeout")
    if not (ok == n and two == n):
        if not (s.empty_reason_h1 and workload != "h2c" and failed == n and ok == 0
                and two == 0 and s.fields.get(workload)):
            problems.append(f"{ok} succeeded, {failed} failed, {two} 2xx")
    if data != n * len(BODY):
        problems.append(f"{data} body bytes, want {n * len(BODY)}")
    if problems:
        run.invalid = "; ".join(problems)
    return run


def curl_check(s: Server, workload: str) -> str:
    """'' if the endpoint answers 200 with BODY; records the response field names."""
    if not shutil.which("curl"):
        s.fields[workload] = ["(curl not installed: not checked)"]
        return ""
    opt = "--http2-prior-knowledge" if workload == "h2c" else "--http1.1"
    p = subprocess.run(["curl", "-s", "-S", opt, "-D", "-", "--max-time", "10",
                        f"http://{HOST}:{s.port}/"], capture_output=True, timeout=20)
    head, sep, body = p.stdout.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = lines[0].split()
    if p.returncode or not sep or len(status) < 2 or status[1] != "200" or body != BODY:
        return (f"curl {opt}: exit {p.returncode}, status line {lines[0]!r}, "
                f"{len(body)} body bytes {'(as expected)' if body == BODY else '(not BODY)'}")
    names = [ln.partition(":")[0].lower() for ln in lines[1:] if ln]
    ctype = [ln.partition(":")[2].strip() for ln in lines[1:]
             if ln.lower().startswith("content-type:")]
    if ctype != [CONTENT_TYPE]:
        return f"curl {opt}: content-type {ctype}"
    s.fields[workload] = names
    return ""


# ---------------------------------------------------------------------------------------
# The run

@dataclass
class Cell:
    workload: str
    server: Server
    n: int = 0
    runs: list = field(default_factory=list)


def prepare(cells: list[Cell], seconds: float, pin: bool, log) -> None:
    for c in cells:
        s = c.server
        if s.dead:
            continue
        err = curl_check(s, c.workload)
        if err:
            c.runs.append(Run(invalid="check failed: " + err))
            continue
        r = h2load(s, c.workload, 1000, pin)              # warm-up 1
        if r.invalid:
            c.runs.append(Run(invalid="warm-up: " + r.invalid))
            continue
        n1 = max(1000, round(r.rate * min(1.0, seconds) / 100) * 100)
        r = h2load(s, c.workload, n1, pin)                # warm-up 2, about 1 s
        if r.invalid:
            c.runs.append(Run(invalid="warm-up: " + r.invalid))
            continue
        c.n = max(1000, round(r.rate * seconds / 100) * 100)
        log(f"  {c.workload:13s} {s.name:14s} warm: {r.rate:10,.0f} req/s -> n = {c.n}")


def run_reps(cells: list[Cell], reps: int, pin: bool, log, seed: int = 1) -> None:
    rng = random.Random(seed)
    order = [c for c in cells if c.n]
    t0 = time.monotonic()
    for rep in range(reps):
        rng.shuffle(order)
        for c in order:
            if c.server.dead:
                continue
            r = h2load(c.server, c.workload, c.n, pin)
            c.runs.append(r)
            if r.invalid:
                log(f"  INVALID run: {c.workload} {c.server.name}: {r.invalid}")
        log(f"  repetition {rep + 1}/{reps} ({time.monotonic() - t0:.0f} s)")


# ---------------------------------------------------------------------------------------
# Tables

def rates(c: Cell) -> list[float]:
    return [r.rate for r in c.runs if not r.invalid]


def median(c: Optional[Cell]) -> Optional[float]:
    v = rates(c) if c else []
    return statistics.median(v) if v else None


def fmt_req(c: Cell, H) -> str:
    v = rates(c)
    bad = [r for r in c.runs if r.invalid]
    if not v:
        return "FAILED" if bad or c.server.dead else "n/a"
    out = (f"{H.fmt_rate(statistics.median(v))}/s ({H.fmt_rate(min(v)).split()[0]}"
           f"-{H.fmt_rate(max(v))})")
    if bad:
        out += f", {len(bad)} invalid"
    return out


def ratio(a: Optional[float], b: Optional[float]) -> str:
    return f"{a / b:.2f}x" if a and b else "n/a"


def tables(cells: list[Cell], workloads: list[str], H, markdown: bool) -> list[str]:
    out = []
    for w in workloads:
        wc = [c for c in cells if c.workload == w]
        cno_a = median(next((c for c in wc if c.server.name == "cno (asyncio)"), None))
        cno_u = median(next((c for c in wc if c.server.name == "cno (uvloop)"), None))
        rows = []
        for c in wc:
            m = median(c)
            cpu = [r.cpu_us for r in c.runs if not r.invalid]
            busy = [r.client_busy for r in c.runs if not r.invalid]
            rows.append([c.server.name, c.server.loop, fmt_req(c, H),
                         f"{statistics.median(cpu):.1f} us" if cpu else "-",
                         f"{100 * statistics.median(busy):.0f}%" if busy else "-",
                         str(len(rates(c))), f"{c.n:,}" if c.n else "-",
                         ratio(cno_a, m), ratio(cno_u, m)])
        out.append(H.render_table([WORKLOADS[w][2], "event loop / workers",
                                   "requests/s, median (min-max)", "server CPU / request",
                                   "h2load busy", "runs", "n per run",
                                   "cno (asyncio) / this", "cno (uvloop) / this"],
                                  rows, markdown, right=(3, 4, 5, 6, 7, 8)))
    return out


def targets(cells: list[Cell]) -> list[str]:
    """The issue's targets, judged on the medians of req/s; the ratio of server CPU time
    per request (less sensitive to other load on the machine) is given alongside."""
    def cell(w, name):
        return next((c for c in cells if c.workload == w and c.server.name == name), None)

    def cpu(c):
        v = [r.cpu_us for r in c.runs if not r.invalid] if c else []
        return statistics.median(v) if v else None

    lines = []
    for w, peer, goal, ours, per_cpu in (
            ("h2c", "hypercorn", 15.0, ("cno (uvloop)", "cno (asyncio)"), False),
            ("h1", "uvicorn", 1.2, ("cno (uvloop)", "cno (asyncio)"), False),
            # issue 11: the same ASGI application, judged per server CPU-second
            ("h2c", "granian", 1.25, ("cno ASGI",), True),
            ("h1", "granian", 1.25, ("cno ASGI",), True),
            ("h2c", "hypercorn", 15.0, ("cno ASGI",), True)):
        pc = cell(w, peer)
        if pc is None:
            continue
        p, pcpu = median(pc), cpu(pc)
        parts = []
        for cno in ours:
            cc = cell(w, cno)
            c, ccpu = median(cc), cpu(cc)
            if c and p:
                part = f"{cno} / {peer} = {c / p:.2f}x req/s"
                if not per_cpu:
                    part += f" ({'met' if c / p >= goal else 'NOT met'})"
                if ccpu and pcpu:
                    part += (f", server CPU per request {peer}/{cno.split()[0]} = "
                             f"{pcpu / ccpu:.2f}x (>1: cno uses less)")
                    if per_cpu:
                        part += f" ({'met' if pcpu / ccpu >= goal else 'NOT met'})"
                parts.append(part)
            else:
                parts.append(f"{cno} / {peer}: not measured (no valid runs)")
        lines.append(f"{w}: target {goal:g}x {peer}: " + "; ".join(parts))
    return lines


def tool_version(cmd: list[str]) -> str:
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "not installed"
    return (p.stdout + p.stderr).strip().splitlines()[0] if (p.stdout + p.stderr).strip() \
        else "?"


# ---------------------------------------------------------------------------------------
# Profile: cno's server alone under load, sampled by py-spy (or cProfile)

def profile(seconds: float, workload: str, loop: str, installed: bool, pin: bool,
            tmp: str, native: bool) -> None:
    s = Server(f"cno ({loop})", loop, (workload,), "cno", cno_loop=loop)
    pyspy = shutil.which("py-spy")
    prof_file = os.path.join(tmp, "cno.prof")
    if not pyspy:
        print("py-spy not found: using cProfile inside the server", file=sys.stderr)
        s.kind = "cno"
    start(s, tmp, installed, pin)
    if not pyspy:   # restart under cProfile
        kill_group(s.proc)
        s.proc = None
        cmd = [sys.executable, os.path.join(SERVERS_DIR, "cno_server.py"), "--host", HOST,
               "--port", str(s.port), "--loop", loop, "--cprofile", prof_file]
        s.proc = subprocess.Popen(pinned(cmd + (["--installed"] if installed else []),
                                         SERVER_CPU if pin else None),
                                  cwd=ROOT, start_new_session=True,
                                  stdout=open(s.log, "ab"), stderr=subprocess.STDOUT)
        _live.append(s.proc)
        time.sleep(2)
    if s.dead:
        sys.exit(f"cno server: {s.dead}")
    err = curl_check(s, workload)
    if err:
        sys.exit(f"cno server: {err}")
    r = h2load(s, workload, 2000, pin)
    if r.invalid:
        sys.exit(f"cno server, warm-up: {r.invalid}")
    n = max(2000, int(r.rate * (seconds + 3)))
    flags = WORKLOADS[workload][0]
    load = subprocess.Popen(pinned(["h2load", "-n", str(n), *flags, f"http://{HOST}:{s.port}/"],
                                   CLIENT_CPU if pin else None),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    _live.append(load)
    time.sleep(1)
    raw = os.path.join(tmp, "pyspy.txt")
    if pyspy:
        # --native (C frames of cno's extension, the loop, the kernel calls) needs py-spy
        # to stop the process for each sample; without it, py-spy reads the stacks of the
        # running process (--nonblocking) and C time is charged to the Python caller.
        cmd = [pyspy, "record", "--pid", str(s.proc.pid), "-d", str(int(seconds)),
               "--rate", "250" if native else "500", "--format", "raw", "-o", raw]
        cmd.append("--native" if native else "--nonblocking")
        spy = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
        if not os.path.exists(raw):
            sys.exit(f"py-spy failed (exit {spy.returncode}): {spy.stderr.strip()[-1000:]}")
    out, _ = load.communicate(timeout=600)
    print("\n".join(ln for ln in out.splitlines()
                    if ln.startswith(("finished", "requests:", "Application"))))
    if pyspy:
        report_pyspy(raw)
    else:
        kill_group(s.proc)
        import pstats
        pstats.Stats(prof_file).sort_stats("tottime").print_stats(30)


def report_pyspy(raw: str, top: int = 30) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    selfc: dict = {}
    incl: dict = {}
    total = 0
    with open(raw) as f:
        for ln in f:
            stack, _, cnt = ln.rstrip().rpartition(" ")
            if not stack:
                continue
            k = int(cnt)
            total += k
            frames = [re.sub(r":\d+\)$", ")", fr) for fr in stack.split(";")]
            frames = [fr.replace(ROOT + "/", "") for fr in frames]
            selfc[frames[-1]] = selfc.get(frames[-1], 0) + k
            for fr in set(frames):
                incl[fr] = incl.get(fr, 0) + k
    print(f"\npy-spy: {total} samples\n\nself (top {top}):")
    for fr, k in sorted(selfc.items(), key=lambda x: -x[1])[:top]:
        print(f"  {100 * k / total:5.1f}%  {fr}")
    print(f"\ninclusive (top {top}):")
    for fr, k in sorted(incl.items(), key=lambda x: -x[1])[:top]:
        print(f"  {100 * k / total:5.1f}%  {fr}")
    where: dict = {}
    for fr, k in selfc.items():
        m = re.search(r"\(([^()]*)\)$", fr)
        key = m.group(1) if m else fr
        where[key] = where.get(key, 0) + k
    print("\nself, by file or library:")
    for key, k in sorted(where.items(), key=lambda x: -x[1])[:top]:
        print(f"  {100 * k / total:5.1f}%  {key}")


# ---------------------------------------------------------------------------------------

def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run (about 40 s)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 5, --quick 2)")
    ap.add_argument("--seconds", type=float,
                    help="target duration of one run (default 3, --quick 0.5)")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated, from {', '.join(WORKLOADS)} (default: all)")
    ap.add_argument("--servers", help="comma-separated server kinds to run "
                    "(cno, cno-asgi, granian, hypercorn, uvicorn, nghttpd, nginx; "
                    "default: all)")
    ap.add_argument("--hypercorn-worker", default=None,
                    help="hypercorn --worker-class (default uvloop if installed, else asyncio)")
    ap.add_argument("--no-pin", action="store_true", help="do not use taskset")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--profile", type=float, metavar="SECONDS",
                    help="run cno's server alone under load and sample it with py-spy "
                         "for SECONDS (cProfile if py-spy is missing)")
    ap.add_argument("--profile-workload", choices=list(WORKLOADS), default="h2c")
    ap.add_argument("--profile-loop", choices=["asyncio", "uvloop"], default="uvloop")
    ap.add_argument("--native", action="store_true", help="py-spy --native (C frames too)")
    args = ap.parse_args(argv)
    reps = args.reps or (2 if args.quick else 5)
    seconds = args.seconds or (0.5 if args.quick else 3.0)
    workloads = [w for w in args.workloads.split(",") if w]
    for w in workloads:
        if w not in WORKLOADS:
            ap.error(f"unknown workload {w}")
    if not shutil.which("h2load"):
        sys.exit("h2load not found: apt-get install nghttp2-client")
    pin = not args.no_pin and can_pin()

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(kill_all)
    tmp = tempfile.mkdtemp(prefix="w5-")
    os.makedirs(os.path.join(tmp, "www"))
    os.makedirs(os.path.join(tmp, "nginx-tmp"))
    with open(os.path.join(tmp, "www", "index.html"), "wb") as f:
        f.write(BODY)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    try:
        if args.profile:
            profile(args.profile, args.profile_workload, args.profile_loop, args.installed,
                    pin, tmp, args.native)
            return
        measure(args, workloads, reps, seconds, pin, tmp, log)
    except KeyboardInterrupt:
        log("interrupted: stopping the servers")
        sys.exit(130)
    finally:
        kill_all()
        if args.keep:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def measure(args, workloads, reps, seconds, pin, tmp, log) -> None:
    sys.path.insert(0, HERE)
    import _harness as H
    if not args.installed:
        sys.path.insert(0, ROOT)
    import cno

    try:
        import uvloop  # noqa: F401
        have_uvloop = True
    except ImportError:
        have_uvloop = False
    worker = args.hypercorn_worker or ("uvloop" if have_uvloop else "asyncio")
    servers = all_servers(worker)
    if not have_uvloop:
        servers = [s for s in servers if s.loop != "uvloop"
                   and s.kind not in ("uvicorn", "uvicorn-zttp")]
    if args.servers:
        kinds = set(args.servers.split(","))
        servers = [s for s in servers if s.kind in kinds]
    servers = [s for s in servers if set(s.workloads) & set(workloads)]
    for s in servers:
        exe = {"nghttpd": "nghttpd", "nginx": "nginx"}.get(s.kind)
        if exe and not shutil.which(exe):
            s.dead = f"{exe} not installed"
        if s.kind == "granian" and importlib.util.find_spec("granian") is None:
            s.dead = "granian not installed (pip install granian)"
        if s.kind == "uvicorn-zttp" and importlib.util.find_spec("zttp") is None:
            s.dead = "zttp not installed (pip install zttp)"

    versions = {
        "cno": H.cno_build_info(cno, ROOT),
        "hypercorn": f"{H.dist_version('hypercorn')} (h11 {H.dist_version('h11')}, "
                     f"h2 {H.dist_version('h2')}), --worker-class {worker}, 1 worker, "
                     "keep_alive_max_requests raised (bench/servers/hypercorn.toml)",
        "uvicorn (zttp)": f"{H.dist_version('uvicorn')} with zttp {H.dist_version('zttp')}, "
                          "--loop uvloop --http zttp --no-access-log (HTTP/1.1 only)",
        "uvicorn": f"{H.dist_version('uvicorn')}, --loop uvloop --http httptools "
                   "--no-access-log",
        "granian": f"{H.dist_version('granian')}, --interface asgi --http auto --loop "
                   "uvloop --workers 1",
        "cno ASGI": "cno serve asgi_app:app --loop uvloop (cno.asgi, one process)",
        "httptools / uvloop": f"{H.dist_version('httptools')} / {H.dist_version('uvloop')}",
        "nghttpd": tool_version(["nghttpd", "--version"]) + ", --no-tls, 1 thread (-n 1), "
                   "serving a directory",
        "nginx": tool_version(["nginx", "-v"]) + ", 1 process (master_process off), "
                 "access_log off, keepalive_requests raised",
        "h2load": tool_version(["h2load", "--version"]) + ", 1 thread",
    }
    info = H.machine_info(versions)
    info.append(("pinning", f"servers on CPU {SERVER_CPU}, h2load on CPU {CLIENT_CPU} "
                            "(taskset)" if pin else "none (taskset missing or fewer than 2 "
                                                    "CPUs): numbers are less stable"))
    info.append(("method", f"{reps} interleaved repetitions, one h2load run per server "
                           f"and workload each, ~{seconds:g} s per run; endpoint GET / -> "
                           f"200, content-type {CONTENT_TYPE}, {len(BODY)}-byte body"))

    log(f"starting {len(servers)} servers")
    for s in servers:
        start(s, tmp, args.installed, pin)
        log(f"  {s.name:14s} port {s.port}  " + (f"FAILED: {s.dead}" if s.dead else s.loop))

    cells = [Cell(w, s) for w in workloads for s in servers if w in s.workloads]
    log("checking, warming up, calibrating")
    prepare(cells, seconds, pin, log)
    for c in cells:
        for r in c.runs:
            log(f"  {c.workload} {c.server.name}: {r.invalid}")
    run_reps(cells, reps, pin, log)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    for w in workloads:
        for s in servers:
            if w in s.fields:
                info.append((f"response fields, {w}, {s.name}", ", ".join(s.fields[w])))
    failures = []
    for c in cells:
        bad = [r.invalid for r in c.runs if r.invalid]
        if bad:
            failures.append((f"invalid runs, {c.workload}, {c.server.name}",
                             f"{len(bad)}: " + " || ".join(sorted(set(bad)))[:1500]))
        elif not c.runs and c.server.dead:
            failures.append((f"not run, {c.workload}, {c.server.name}", c.server.dead[:1500]))
    info += failures

    tabs = tables(cells, workloads, H, args.markdown)
    tgt = targets(cells)
    if args.markdown:
        print("Requests/s: median (min-max over repetitions) of h2load's req/s. Ratios are "
              "cno's median over the server's (>1: cno faster).\n")
        print(H.render_info(info, markdown=True) + "\n")
        print("\n\n".join(tabs) + "\n")
        print("\n".join(f"- {t}" for t in tgt))
    else:
        print(H.render_info(info) + "\n")
        print("W5: requests/s, median (min-max) over repetitions; ratios: cno / server\n")
        print("\n\n".join(tabs) + "\n")
        print("\n".join(tgt))


if __name__ == "__main__":
    main()
