#!/usr/bin/env python
"""Run only cno's side of W1 in a loop, for a profiler (perf, valgrind --tool=callgrind).

    python bench/profile_w1.py encode                 # 2000 connections, huffman on
    python bench/profile_w1.py decode --plain --str   # no huffman; str in / str out
    python bench/profile_w1.py encode -n 50           # short, for callgrind

One connection is 200 request/response exchanges (400 header blocks), exactly as in
bench/w1_hpack.py. Prints ns/block at the end (meaningless under valgrind).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import w1_hpack as W  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("op", choices=["encode", "decode"])
    ap.add_argument("-n", "--connections", type=int, default=2000)
    ap.add_argument("--plain", action="store_true", help="no Huffman coding")
    ap.add_argument("--str", action="store_true",
                    help="encode: str input; decode: str output (default: bytes)")
    ap.add_argument("--installed", action="store_true", help="use the installed cno")
    args = ap.parse_args()
    libs, cno = W.load_libs(args.installed)
    Enc, Dec = libs["cno"]
    huffman = not args.plain
    seq = W.exchanges()
    if args.op == "encode":
        run = W.make_encode(Enc, W.as_str(seq) if args.str else seq, huffman)
    else:
        run = W.make_decode(Dec, W.encode_connection(Enc, seq, huffman), not args.str)
    t = time.perf_counter_ns()
    run(args.connections)
    t = time.perf_counter_ns() - t
    print(f"cno {args.op} ({cno.__file__}): {t / (args.connections * 2 * W.EXCHANGES):.0f}"
          " ns/block", file=sys.stderr)


if __name__ == "__main__":
    main()
