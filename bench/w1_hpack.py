#!/usr/bin/env python
"""W1: HPACK encode and decode, cno vs jh2 (Rust) vs hpack (pure Python).

A 12-header browser request and an 8-header response, on one connection in each
direction (one encoder and one decoder per direction, so after the first block the
dynamic table is warm), with and without Huffman coding. Reports header blocks/s.

    python bench/w1_hpack.py              # default run, about a minute
    python bench/w1_hpack.py --quick      # smoke run, a few seconds
    python bench/w1_hpack.py --markdown   # the table in the format of bench/results.md

What is timed (see bench/README.md for more):

- one *unit* of work is one connection: a fresh encoder (or decoder) per direction, then
  EXCHANGES request/response exchanges through them, i.e. 2 * EXCHANGES header blocks.
  The constructors are inside the timed region; at 400 blocks per connection they are
  noise. Requests cycle through 8 paths (each with a query string); responses carry a
  content-length that changes every exchange, and a date that changes every 50 exchanges.
- encode: each library gets the input type it takes natively, built outside the timed
  region: cno and hpack get lists of ``(name, value)`` tuples of ``bytes`` (also measured
  with ``str``), jh2 gets ``(bytes, bytes, False)`` triples (it accepts nothing else).
- decode "own wire": each library decodes the blocks its own encoder produced (what it
  would see talking to itself); "hpack wire": all libraries decode the same blocks, those
  hpack's encoder produced, so that encoder policy (what gets indexed) does not skew the
  comparison. "bytes out" is ``decode(data, raw=True)`` (what h2 uses, and jh2's
  default); "str out" is ``raw=False`` (cno's and hpack's default).
- jh2 is measured through ``jh2._hazmat.Encoder/Decoder``, its Rust HPACK; ``jh2.hpack``
  is a pure-Python copy of hpack and is not measured.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

EXCHANGES = 200          # request/response exchanges per connection (one unit of work)
PATHS = [                # cycled through, one per request
    b"/",
    b"/search?q=http2+header+compression&page=2",
    b"/products/4711?ref=home&utm_source=newsletter",
    b"/static/css/site.min.css?v=3f2a9c1e",
    b"/static/js/app.bundle.js?v=3f2a9c1e",
    b"/api/v2/cart/items?session=aa93&limit=20",
    b"/images/hero/banner@2x.webp?w=1440&q=80",
    b"/account/orders?status=open&sort=-date",
]


# ---------------------------------------------------------------------------------------
# The workload

def request_headers(i: int) -> list[tuple[bytes, bytes]]:
    """The i-th request of the connection: 12 fields, as Firefox would send them."""
    path = PATHS[i % len(PATHS)]
    return [
        (b":method", b"GET"),
        (b":scheme", b"https"),
        (b":authority", b"www.example-shop.com"),
        (b":path", path),
        (b"user-agent", b"Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 "
                        b"Firefox/132.0"),
        (b"accept", b"text/html,application/xhtml+xml,application/xml;q=0.9,"
                    b"image/avif,image/webp,*/*;q=0.8"),
        (b"accept-language", b"en-US,en;q=0.5"),
        (b"accept-encoding", b"gzip, deflate, br, zstd"),
        (b"cookie", b"session=7f3a9c2e81b44d6a0c55; theme=dark"),
        (b"upgrade-insecure-requests", b"1"),
        (b"sec-fetch-dest", b"document"),
        (b"sec-fetch-mode", b"navigate"),
    ]


def response_headers(i: int) -> list[tuple[bytes, bytes]]:
    """The i-th response: 8 fields; content-length changes every time, date every 50."""
    k = i % len(PATHS)
    second = i // 50
    return [
        (b":status", b"200"),
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % (1024 + (i * 7919) % 90000)),
        (b"date", b"Sat, 21 Nov 2026 10:%02d:%02d GMT" % (second // 60 % 60, second % 60)),
        (b"server", b"nginx/1.27.2"),
        (b"cache-control", b"private, max-age=0, must-revalidate"),
        (b"etag", b'W/"%08x-%04x"' % (0x5f3a0000 + 977 * k, 0x1b2 + k)),
        (b"vary", b"Accept-Encoding"),
    ]


def exchanges(n: int = EXCHANGES) -> list[tuple[list, list]]:
    """One connection's worth of (request, response) header lists, as bytes pairs."""
    return [(request_headers(i), response_headers(i)) for i in range(n)]


def as_str(seq):
    return [([(n.decode("latin-1"), v.decode("latin-1")) for n, v in rq],
             [(n.decode("latin-1"), v.decode("latin-1")) for n, v in rs]) for rq, rs in seq]


def as_triples(seq):
    return [([(n, v, False) for n, v in rq], [(n, v, False) for n, v in rs])
            for rq, rs in seq]


# ---------------------------------------------------------------------------------------
# Libraries

def load_libs(use_installed: bool):
    if not use_installed and ROOT not in sys.path:
        sys.path.insert(0, ROOT)    # the in-place build of this checkout
    import cno
    import cno.hpack
    import hpack
    import jh2._hazmat
    libs = {
        "cno": (cno.hpack.Encoder, cno.hpack.Decoder),
        "jh2": (jh2._hazmat.Encoder, jh2._hazmat.Decoder),
        "hpack": (hpack.Encoder, hpack.Decoder),
    }
    return libs, cno


def encode_connection(Enc, seq, huffman):
    ce, se = Enc(), Enc()
    return [(ce.encode(rq, huffman), se.encode(rs, huffman)) for rq, rs in seq]


def decode_connection(Dec, wire, raw):
    cd, sd = Dec(), Dec()
    return [(cd.decode(rq, raw), sd.decode(rs, raw)) for rq, rs in wire]


def make_encode(Enc, seq, huffman):
    def run(k):
        for _ in range(k):
            ce = Enc().encode
            se = Enc().encode
            for rq, rs in seq:
                ce(rq, huffman)
                se(rs, huffman)
    return run


def make_decode(Dec, wire, raw):
    def run(k):
        for _ in range(k):
            cd = Dec().decode
            sd = Dec().decode
            for rq, rs in wire:
                cd(rq, raw)
                sd(rs, raw)
    return run


def normalize(block):
    """Decoded block -> list of (bytes, bytes), whatever the library returned."""
    out = []
    for f in block:
        n, v = f[0], f[1]
        out.append((n.encode("latin-1") if isinstance(n, str) else bytes(n),
                    v.encode("latin-1") if isinstance(v, str) else bytes(v)))
    return out


# ---------------------------------------------------------------------------------------
# Set-up, correctness, timing

def prepare(libs):
    """Inputs for every library, every library's wire, and a full cross-check.

    Returns (inputs, wires, sizes): inputs[(lib, "bytes"|"str")] = sequence;
    wires[(lib, huffman)] = list of (request block, response block);
    sizes[(lib, huffman)] = (mean request block bytes, mean response block bytes).
    """
    seq = exchanges()
    inputs = {("cno", "bytes"): seq, ("cno", "str"): as_str(seq),
              ("hpack", "bytes"): seq, ("hpack", "str"): as_str(seq),
              ("jh2", "bytes"): as_triples(seq)}
    wires, sizes = {}, {}
    for huffman in (True, False):
        for lib, (Enc, _) in libs.items():
            w = encode_connection(Enc, inputs[(lib, "bytes")], huffman)
            wires[(lib, huffman)] = w
            sizes[(lib, huffman)] = (sum(len(a) for a, _ in w) / len(w),
                                     sum(len(b) for _, b in w) / len(w))
            if (lib, "str") in inputs:
                w2 = encode_connection(Enc, inputs[(lib, "str")], huffman)
                assert w2 == w, f"{lib}: str and bytes input give different blocks"
        # Every decoder, both output types, on every encoder's wire.
        for wlib in libs:
            for dlib, (_, Dec) in libs.items():
                for raw in (True, False):
                    got = decode_connection(Dec, wires[(wlib, huffman)], raw)
                    for i, ((rq, rs), (grq, grs)) in enumerate(zip(seq, got)):
                        if normalize(grq) != rq or normalize(grs) != rs:
                            raise AssertionError(
                                f"{dlib} decoding {wlib}'s wire (huffman={huffman}, "
                                f"raw={raw}) differs at exchange {i}")
    return inputs, wires, sizes


CASES = [  # (row label, kind, input/output type, whose wire)
    ("encode, bytes in", "encode", "bytes", None),
    ("encode, str in", "encode", "str", None),
    ("decode own wire, bytes out", "decode", True, "own"),
    ("decode own wire, str out", "decode", False, "own"),
    ("decode hpack's wire, bytes out", "decode", True, "hpack"),
]


def build_cells(H, libs, inputs, wires):
    cells = []
    for huffman in (True, False):
        for label, kind, typ, whose in CASES:
            case = (label, huffman)
            for lib, (Enc, Dec) in libs.items():
                if kind == "encode":
                    seq = inputs.get((lib, typ))
                    if seq is None:
                        continue            # jh2 takes bytes only
                    run = make_encode(Enc, seq, huffman)
                else:
                    wire = wires[(lib if whose == "own" else whose, huffman)]
                    run = make_decode(Dec, wire, typ)
                cells.append(H.Cell(case, lib, run, 2 * EXCHANGES))
    return cells


def tables(H, cells, libs, sizes, markdown):
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows = []
    for huffman in (True, False):
        for label, *_ in CASES:
            case = (label, huffman)
            s = {lib: by.get((case, lib)) for lib in libs}
            rows.append([label, "yes" if huffman else "no"]
                        + [H.fmt_cell(s[lib]) for lib in libs]
                        + [H.fmt_ratio(s["cno"], s["jh2"]), H.fmt_ratio(s["cno"], s["hpack"])])
    main = H.render_table(["case", "huffman", *libs, "cno/jh2", "cno/hpack"], rows,
                          markdown, right=(5, 6))
    srows = [[lib] + [f"{sizes[(lib, h)][i]:.1f}" for h in (True, False) for i in (0, 1)]
             for lib in libs]
    size = H.render_table(["encoder", "request (huffman)", "response (huffman)",
                           "request (no huffman)", "response (no huffman)"], srows,
                          markdown, right=(1, 2, 3, 4))
    return main, size


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

    import _harness as H
    libs, cno = load_libs(args.installed)
    versions = {
        "cno": f"{getattr(cno, '__version__', '?')} ({os.path.dirname(cno.__file__)}"
               + (f", git {g}" if (g := H.git_state(ROOT)) else "") + ")",
        "hpack": H.dist_version("hpack"),
        "jh2": H.dist_version("jh2") + " (jh2._hazmat, Rust)",
    }
    ext = [os.path.join(os.path.dirname(cno.__file__), f)
           for f in os.listdir(os.path.dirname(cno.__file__)) if f.startswith("_hpack.")]
    so = [f for f in ext if f.endswith((".so", ".pyd"))]
    pyx = [f for f in ext if f.endswith(".pyx")]
    if so:
        built = max(os.path.getmtime(f) for f in so)
        versions["cno"] += ", _hpack built " + time.strftime("%Y-%m-%d %H:%M",
                                                             time.localtime(built))
        if pyx and max(os.path.getmtime(f) for f in pyx) > built:
            versions["cno"] += " (OLDER than _hpack.pyx: rebuild!)"
    info = H.machine_info(versions)
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches, "
                           f"{EXCHANGES} request/response exchanges per connection, "
                           "GC off while timing"))

    inputs, wires, sizes = prepare(libs)
    print("correctness: every decoder gives back the input on every encoder's wire",
          file=sys.stderr)
    cells = build_cells(H, libs, inputs, wires)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))

    main_t, size_t = tables(H, cells, libs, sizes, args.markdown)
    if args.markdown:
        print("Header blocks/s: median (min-max over repetitions), and median time per "
              "block. Ratios are cno's speed over the peer's (>1: cno faster).\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(main_t + "\n")
        print("Mean block size on the wire, bytes (each encoder, same connection):\n")
        print(size_t)
    else:
        print(H.render_info(info) + "\n")
        print("W1 HPACK: header blocks/s, median (min-max), median time per block; "
              "ratios: cno speed / peer speed\n")
        print(main_t + "\n")
        print("mean block size on the wire (bytes):\n")
        print(size_t)


if __name__ == "__main__":
    main()
