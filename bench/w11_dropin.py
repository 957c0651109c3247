#!/usr/bin/env python
"""W11: the drop-in faces against the packages they stand in for, through the same user
code: cno.h2 vs h2 (pure Python) vs jh2 (h2 with Rust parts) on W3 and W2 written against
h2's API, and cno.h11 vs h11 on W3 written against h11's API.

    python bench/w11_dropin.py              # default run, about 40 s
    python bench/w11_dropin.py --quick      # smoke run, a few seconds
    python bench/w11_dropin.py --markdown   # the tables in the format of bench/results.md

Every library runs in this one process, side by side, through the same code: cno.h2 and
cno.h11 are imported as themselves (no cno.dropin: the real h2 and h11 are here too), and
the code is handed a module object, as a program that does `import h2` would be. A
library that does not import is reported missing, and the others still run.

What is timed (see bench/README.md for more):

- W3, h2 API: W3's client + server cycle (bench/w3_requests.py's ``H2Pair``: a client and
  a server of the same library on one long-lived connection pair; a batch is 100 GETs
  with 10 fields, each answered 200 with 5 fields and a 100-byte body when its request
  ends; the client keeps status and body per stream, checks them when the stream ends and
  acknowledges the data), its server handler also reading each request's ``:path`` from
  the ``RequestReceived`` event (a loop over ``ev.headers``), as any server does. Rows:
  header fields given as ``str`` or ``bytes``; events carry ``bytes``
  (``header_encoding=None``, h2's default).
- W2, h2 API: bench/w2_data_in.py's server (h2's ``H2Server`` and feed loop), fed DATA
  frames of 16 KiB and of 10 bytes in 64 KiB chunks on one stream, crediting each
  ``DataReceived`` with ``acknowledge_received_data``; payload MB/s and frames/s.
- W3, h11 API: bench/w3_h1.py's ``H11Pair`` (keep-alive, one request per round trip: the
  client ``send``s a ``Request`` and an ``EndOfMessage``, the server answers each request
  with ``Response``, ``Data`` and ``EndOfMessage`` and ``start_next_cycle()``, the client
  reads status and body), its server reading the method, the target and ``user-agent``
  from each ``Request`` (w3_h1.py's table (c) handler). Rows: fields as ``str`` or
  ``bytes``.
- the checks of W2 and W3 run first on every library (bytes delivered in order; every
  response 200 with its body); here also: the paths the server read are the paths sent.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
if HERE not in sys.path:
    sys.path.insert(0, HERE)

import w2_data_in as w2          # noqa: E402  (W2's server, feed loop, byte streams, checks)
import w3_h1                     # noqa: E402  (W3 over HTTP/1.1: h11's client and server)
import w3_requests as w3         # noqa: E402  (W3: h2's client and server)

# The libraries compared, the face first: (name shown, module imported, its submodules
# the user code uses).
H2_LIBS = [("cno.h2", "cno.h2"), ("h2", "h2"), ("jh2", "jh2")]
H2_SUBMODULES = ("config", "connection", "events", "settings")
H11_LIBS = [("cno.h11", "cno.h11"), ("h11", "h11")]
TARGETS = [("W3 h2 API", "cno.h2", "h2", 10.0), ("W3 h2 API", "cno.h2", "jh2", 4.0),
           ("W3 h11 API", "cno.h11", "h11", 10.0)]     # issue 14


def load(names, submodules=()):
    """{name: module} of those that import, {name: reason} of the others."""
    found, missing = {}, {}
    for name, module in names:
        try:
            mod = importlib.import_module(module)
            for sub in submodules:
                importlib.import_module(module + "." + sub)
        except ImportError as e:
            missing[name] = f"{type(e).__name__}: {e}"
            continue
        if not module.startswith("cno.") and mod.__name__ != module:
            # cno.dropin is installed in this process: `import h2` is cno's face
            raise SystemExit(f"{module} is {mod.__name__} here: run without cno.dropin")
        found[name] = mod
    return found, missing


# -- W3, h2 API --------------------------------------------------------------------------

class PathServer(w3.H2Server):
    """W3's h2 server, its handler also reading each request's ``:path`` (kept until the
    request ends, logged when checking)."""

    def data_received(self, data):
        conn = self.conn
        for ev in conn.receive_data(data):
            if isinstance(ev, self.RequestReceived):
                path = None
                for name, value in ev.headers:
                    if name == b":path":
                        path = value
                        break
                self.pending[ev.stream_id] = path
                if self.check:
                    self.log.append(path)
            elif isinstance(ev, self.StreamEnded):
                self.pending.pop(ev.stream_id)
                conn.send_headers(ev.stream_id, self.resp)
                conn.send_data(ev.stream_id, w3.BODY, end_stream=True)
        out = conn.data_to_send()
        if out:
            self.wire.append(out)


def h2_pair(mod, kind, check=False):
    """W3's H2Pair with PathServer's handler. The pair's server is made by H2Pair (it has
    exchanged SETTINGS with the client already); only its handler changes, so its class
    becomes PathServer, which adds no state."""
    pair = w3.H2Pair(mod, kind, check)
    pair.srv.__class__ = PathServer
    return pair


def check_h2_w3(libs):
    want = [w3.b(w3.PATHS[i % len(w3.PATHS)]) for i in range(w3.STREAMS)]
    for name, mod in libs.items():
        for kind in w3.KINDS:
            pair = h2_pair(mod, kind, check=True)
            pair.make_run()(1)      # raises unless every response is 200 with the body
            if pair.srv.log != want:
                raise AssertionError(f"{name}, {kind} fields: the server read other paths")


# -- W3, h11 API -------------------------------------------------------------------------

def h11_pair(mod, kind, check=False):
    """W3-h1's H11Pair, its server the handler that reads method, target and user-agent
    (a fresh h11 connection: nothing was exchanged yet)."""
    pair = w3_h1.H11Pair(mod, kind, check)
    pair.server = w3_h1.H11Server(mod, kind, check, access=True)
    return pair


def check_h11_w3(libs):
    c = w3_h1.b
    ua = c(dict(w3_h1.REQUEST_FIELDS)["user-agent"])
    want = [(b"GET", c(w3_h1.PATHS[i % len(w3_h1.PATHS)]), ua) for i in range(w3_h1.N)]
    for name, mod in libs.items():
        for kind in w3_h1.KINDS:
            pair = h11_pair(mod, kind, check=True)
            pair.make_run(False)(1)     # raises unless every response is 200 with the body
            if pair.server.log != want:
                raise AssertionError(f"{name}, {kind} fields: the server read "
                                     f"{pair.server.log[:1]}, want {want[:1]}")
            if [s for s, _ in pair.log] != [200] * w3_h1.N:
                raise AssertionError(f"{name}, {kind} fields: statuses {pair.log[:1]}")


# -- cells and tables ----------------------------------------------------------------------

def build_cells(H, h2_libs, h11_libs, rounds):
    cells = []
    for kind in w3.KINDS:
        for name, mod in h2_libs.items():
            cells.append(H.Cell(("w3-h2", kind), name, h2_pair(mod, kind).make_run(),
                                w3.STREAMS))
        for name, mod in h11_libs.items():
            cells.append(H.Cell(("w3-h11", kind), name, h11_pair(mod, kind).make_run(False),
                                w3_h1.N))
    # W2's cells as w2_data_in.py makes them (its own names: lib is the key into mods)
    w2_cells, servers = w2.build_cells(H, list(h2_libs), None, h2_libs, rounds)
    for c in w2_cells:
        c.case = ("w2", c.case)
    return cells + w2_cells, servers


def table(H, by, case_rows, libs, missing, markdown, unit=None):
    """Rows of cells per library (missing ones say so) and the face's ratio over each
    peer's (>1: the face is faster)."""
    face, peers = libs[0], libs[1:]
    rows = []
    for label, case, fmt in case_rows:
        s = {lib: by.get((case, lib)) for lib in libs}
        rows.append([label] + [("missing" if lib in missing else fmt(s[lib])) for lib in libs]
                    + [H.fmt_ratio(s[face], s[lib]) for lib in peers])
    right = tuple(range(1 + len(libs), 1 + len(libs) + len(peers)))
    return H.render_table([unit or "", *libs] + [f"{face}/{lib}" for lib in peers], rows,
                          markdown, right=right)


def targets(H, by, missing):
    out = []
    for workload, face, peer, want in TARGETS:
        case = ("w3-h2" if "h2" in workload else "w3-h11", "bytes")
        a, b = by.get((case, face)), by.get((case, peer))
        if a is None or b is None:
            out.append((f"target {face} >= {want:g}x {peer} ({workload}, bytes fields)",
                        "not measured: " + ", ".join(x for x in (face, peer) if x in missing)))
            continue
        ratio = b.median / a.median
        lo, hi = b.lo / a.hi, b.hi / a.lo
        out.append((f"target {face} >= {want:g}x {peer} ({workload}, bytes fields)",
                    f"{ratio:.2f}x (range {lo:.2f}-{hi:.2f}): "
                    + ("met" if ratio >= want else "MISSED")))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (< 10 s)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 25, --quick 5)")
    ap.add_argument("--target-ms", type=float,
                    help="time per batch in ms (default 50, --quick 5)")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 25)
    target_ms = args.target_ms or (5.0 if args.quick else 50.0)
    warmup_ms = 20.0 if args.quick else 200.0

    if not args.installed and ROOT not in sys.path:
        sys.path.insert(0, ROOT)        # the in-place build of this checkout
    import _harness as H
    import cno
    h2_libs, missing = load(H2_LIBS, H2_SUBMODULES)
    h11_libs, missing_h11 = load(H11_LIBS)
    missing.update(missing_h11)
    versions = {"cno": H.cno_build_info(cno, ROOT), "h2": H.dist_version("h2"),
                "jh2": H.dist_version("jh2"), "h11": H.dist_version("h11"),
                "hyperframe (W2's frames)": H.dist_version("hyperframe")}
    versions.update({f"{name} MISSING": why for name, why in missing.items()})
    info = H.machine_info(versions)
    rounds = {p: w2.make_round(p) for p in w2.PAYLOADS}
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches; "
                           f"W3: {w3.STREAMS} requests a unit (h2: concurrent streams, one "
                           "connection pair; h11: sequential round trips, keep-alive); W2: "
                           + ", ".join(f"{r[2]} frames of {w2.case_label(p)}"
                                       for p, r in rounds.items())
                           + f" a unit in {w2.CHUNK // 1024} KiB chunks; GC off while timing"))

    check_h2_w3(h2_libs)
    check_h11_w3(h11_libs)
    w2.check(list(h2_libs), None, h2_libs, rounds)
    print("correctness: W3 responses and the paths read, W2 payloads in order, on every "
          "library", file=sys.stderr)
    cells, servers = build_cells(H, h2_libs, h11_libs, rounds)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    w2.check_counts(servers)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    info += targets(H, by, missing)

    h2_names, h11_names = [n for n, _ in H2_LIBS], [n for n, _ in H11_LIBS]
    t1 = table(H, by, [(f"{kind} header fields in", ("w3-h2", kind), H.fmt_cell)
                       for kind in w3.KINDS], h2_names, missing, args.markdown,
               "W3 h2 API, requests/s")
    rows = []
    for p in rounds:
        rows.append((f"{w2.case_label(p)} DATA, MB/s", ("w2", p),
                     lambda s, p=p: H.fmt_mb(s, p)))
        rows.append((f"{w2.case_label(p)} DATA, frames/s", ("w2", p), H.fmt_cell))
    t2 = table(H, by, rows, h2_names, missing, args.markdown, "W2 h2 API")
    t3 = table(H, by, [(f"{kind} header fields in", ("w3-h11", kind), H.fmt_cell)
                       for kind in w3_h1.KINDS], h11_names, missing, args.markdown,
               "W3 h11 API, requests/s")
    if args.markdown:
        print("Requests/s (W3) and payload MB/s and DATA frames/s (W2): median (min-max over "
              "repetitions), and median time per item. Ratios are the face's speed over "
              "the peer's (>1: the face faster).\n")
        print(H.render_info(info, markdown=True) + "\n")
    else:
        print(H.render_info(info) + "\n")
        print("W11: median (min-max), median time per item; ratios: face speed / peer speed\n")
    print(t1 + "\n\n" + t2 + "\n\n" + t3)


if __name__ == "__main__":
    main()
