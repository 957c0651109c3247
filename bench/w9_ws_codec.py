#!/usr/bin/env python
"""W9: the WebSocket codec, cno._ws.Codec vs websockets (sans-I/O) vs wsproto.

Parse one frame, and encode one frame, of a 1 KiB binary, a 64 KiB binary and a 1 KiB
text message. Reports frames/s.

    python bench/w9_ws_codec.py              # default run, about 40 s
    python bench/w9_ws_codec.py --quick      # smoke run, a few seconds
    python bench/w9_ws_codec.py --markdown   # the tables in the format of bench/results.md
    python bench/w9_ws_codec.py --profile parse-64k --n 200000   # cno alone, for callgrind

What is timed (see bench/README.md):

- parse: a server receiving a masked frame from a client (the direction that has to
  unmask). One unit is one whole frame handed to the library in one call and turned into
  the library's message (or frame) object: cno ``Codec.feed(frame)`` -> ``[(OP, payload)]``;
  websockets ``Frame.parse`` (its generator) driven by a ``StreamReader`` (what
  ``Protocol.receive_data`` runs, without the protocol's bookkeeping) and, as a second
  column, ``Protocol.receive_data`` + ``events_received()``; wsproto
  ``FrameProtocol.receive_bytes`` + ``received_frames()`` (what ``WSConnection`` runs,
  without its event objects). websockets' C ``apply_mask`` (``websockets.speedups``) is
  active, the run stops if it is not.
- text: cno and wsproto validate UTF-8 and hand out ``str``; websockets' sans-I/O layer
  hands out the payload as bytes and leaves decoding to its I/O layer, so its text rows
  include ``data.decode()`` (the same work: a ``str`` from validated UTF-8).
- encode: a server sending unmasked, a client sending masked (a fresh key per frame for
  every library: cno and websockets from ``os.urandom``, wsproto from ``os.urandom``).
  cno ``Codec.message(payload)``; websockets ``Frame(...).serialize(mask=...)`` and
  ``Protocol.send_binary/send_text`` + ``data_to_send()``; wsproto
  ``FrameProtocol.send_data``. The payloads (bytes, or str for text) are built outside
  the timed region.
- Before timing, every parser must return the payload of every frame, and every
  library's encoded frames must parse back (with cno) to the payload.
"""
from __future__ import annotations

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CASES = [  # (label, kind, payload size)
    ("binary 1 KiB", "binary", 1024),
    ("binary 64 KiB", "binary", 65536),
    ("text 1 KiB", "text", 1024),
]
LIBS = ["cno", "websockets", "websockets Protocol", "wsproto"]


def payload(kind, size):
    if kind == "binary":
        return os.urandom(size)
    # Mostly ASCII with some 2- and 3-byte characters, as chat or JSON text would be.
    unit = "The quick brown fox jumps over the lazy dog; é à ü € 0123456789. "
    text = (unit * (size // len(unit.encode()) + 1))
    while len(text.encode()) > size:
        text = text[:-1]
    return text + "x" * (size - len(text.encode()))


def load(use_installed):
    if not use_installed and ROOT not in sys.path:
        sys.path.insert(0, ROOT)
    import cno
    import cno._ws
    return cno


# ---------------------------------------------------------------------------------------
# Parsers: each returns run(k) that parses `wire` (one frame) k times.

def cno_parse(wire, kind):
    from cno._ws import Codec
    feed = Codec(False).feed

    def run(k):
        for _ in range(k):
            feed(wire)
    return run, lambda: feed(wire)[0][1]


def websockets_parse(wire, kind):
    from websockets.frames import Frame
    from websockets.streams import StreamReader
    reader = StreamReader()
    feed_data, read_exact, parse = reader.feed_data, reader.read_exact, Frame.parse
    text = kind == "text"

    def one():
        feed_data(wire)
        gen = parse(read_exact, mask=True, max_size=None, extensions=None)
        try:
            next(gen)
        except StopIteration as done:
            data = done.value.data
            return data.decode() if text else data
        raise AssertionError("incomplete frame")

    def run(k):
        for _ in range(k):
            feed_data(wire)
            gen = parse(read_exact, mask=True, max_size=None, extensions=None)
            try:
                next(gen)
            except StopIteration as done:
                if text:
                    done.value.data.decode()
    return run, one


def websockets_protocol_parse(wire, kind):
    from websockets.protocol import Protocol, Side
    p = Protocol(Side.SERVER, max_size=None)
    receive, events = p.receive_data, p.events_received
    text = kind == "text"

    def one():
        receive(wire)
        data = events()[0].data
        return data.decode() if text else data

    def run(k):
        for _ in range(k):
            receive(wire)
            if text:
                events()[0].data.decode()
            else:
                events()
    return run, one


def wsproto_parse(wire, kind):
    from wsproto.frame_protocol import FrameProtocol
    p = FrameProtocol(False, [])
    receive, frames = p.receive_bytes, p.received_frames

    def one():
        receive(wire)
        return [f.payload for f in frames()][0]

    def run(k):
        for _ in range(k):
            receive(wire)
            for _f in frames():
                pass
    return run, one


PARSERS = {"cno": cno_parse, "websockets": websockets_parse,
           "websockets Protocol": websockets_protocol_parse, "wsproto": wsproto_parse}


# ---------------------------------------------------------------------------------------
# Encoders: run(k) encodes `data` k times as a client (masked) or a server.

def cno_encode(data, client):
    from cno._ws import Codec
    message = Codec(client).message

    def run(k):
        for _ in range(k):
            message(data)
    return run, lambda: message(data)


def websockets_encode(data, client):
    from websockets.frames import Frame, Opcode
    op = Opcode.TEXT if isinstance(data, str) else Opcode.BINARY
    is_text = isinstance(data, str)

    def one():
        return Frame(op, data.encode() if is_text else data).serialize(mask=client)

    def run(k):
        for _ in range(k):
            Frame(op, data.encode() if is_text else data).serialize(mask=client)
    return run, one


def websockets_protocol_encode(data, client):
    from websockets.protocol import Protocol, Side
    p = Protocol(Side.CLIENT if client else Side.SERVER, max_size=None)
    is_text = isinstance(data, str)
    send = p.send_text if is_text else p.send_binary
    out = p.data_to_send

    def one():
        send(data.encode() if is_text else data)
        return b"".join(out())

    def run(k):
        for _ in range(k):
            send(data.encode() if is_text else data)
            out()
    return run, one


def wsproto_encode(data, client):
    from wsproto.frame_protocol import FrameProtocol
    send = FrameProtocol(client, []).send_data

    def run(k):
        for _ in range(k):
            send(data, True)
    return run, lambda: send(data, True)


ENCODERS = {"cno": cno_encode, "websockets": websockets_encode,
            "websockets Protocol": websockets_protocol_encode, "wsproto": wsproto_encode}


# ---------------------------------------------------------------------------------------

def build(H):
    from cno._ws import Codec
    cells = []
    for label, kind, size in CASES:
        data = payload(kind, size)
        wire = Codec(True).message(data)            # a client's masked frame
        for lib, make in PARSERS.items():
            run, one = make(wire, kind)
            got = one()
            assert got == data, f"{lib} parsed {label} wrong"
            cells.append(H.Cell((label, "parse"), lib, run, 1))
        for client in (False, True):
            side = "encode, client (masked)" if client else "encode, server"
            for lib, make in ENCODERS.items():
                run, one = make(data, client)
                frame = one()
                got = Codec(not client).feed(frame)
                assert got == [(1 if kind == "text" else 2, data)], f"{lib} encoded {label} wrong"
                cells.append(H.Cell((label, side), lib, run, 1))
    return cells


def tables(H, cells, markdown):
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows = []
    ops = ["parse", "encode, server", "encode, client (masked)"]
    for op in ops:
        for label, kind, size in CASES:
            case = (label, op)
            s = {lib: by.get((case, lib)) for lib in LIBS}
            best_ws = min((s["websockets"], s["websockets Protocol"]), key=lambda x: x.median)
            rows.append([op, label] + [H.fmt_cell(s[lib]) for lib in LIBS]
                        + [H.fmt_ratio(s["cno"], best_ws), H.fmt_ratio(s["cno"], s["wsproto"])])
    return H.render_table(["operation", "case", *LIBS, "cno/websockets", "cno/wsproto"],
                          rows, markdown, right=(6, 7))


def profile(name, n):
    """cno alone in a loop (for callgrind: instruction counts per frame)."""
    from cno._ws import Codec
    label = {"parse-1k": 0, "parse-64k": 1, "parse-text": 2}[name]
    _, kind, size = CASES[label]
    wire = Codec(True).message(payload(kind, size))
    feed = Codec(False).feed
    for _ in range(n):
        feed(wire)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 25, --quick 5)")
    ap.add_argument("--target-ms", type=float, help="time per batch in ms (default 50, --quick 5)")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    ap.add_argument("--profile", choices=["parse-1k", "parse-64k", "parse-text"],
                    help="run cno's parser alone --n times (for valgrind --tool=callgrind)")
    ap.add_argument("--n", type=int, default=100000)
    args = ap.parse_args(argv)
    cno = load(args.installed)
    if args.profile:
        profile(args.profile, args.n)
        return
    reps = args.reps or (5 if args.quick else 25)
    target_ms = args.target_ms or (5.0 if args.quick else 50.0)
    warmup_ms = 20.0 if args.quick else 200.0

    import _harness as H
    import websockets.frames
    import websockets.speedups   # noqa: F401  (the run stops here if they are missing)
    if websockets.frames.apply_mask is not websockets.speedups.apply_mask:
        sys.exit("websockets' C speedups are not active")
    versions = {
        "cno": H.cno_build_info(cno, ROOT, ("_ws",)),
        "websockets": H.dist_version("websockets") + " (C speedups active)",
        "wsproto": H.dist_version("wsproto"),
    }
    info = H.machine_info(versions)
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches, "
                           "one frame per call, GC off while timing"))
    cells = build(H)
    print("correctness: every parser returns every payload; every encoder's frames parse "
          "back", file=sys.stderr)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    table = tables(H, cells, args.markdown)
    if args.markdown:
        print("Frames/s: median (min-max over repetitions), and median time per frame. "
              "Ratios are cno's speed over the peer's (>1: cno faster); websockets: the "
              "faster of its two paths.\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(table)
    else:
        print(H.render_info(info) + "\n")
        print("W9 WebSocket codec: frames/s, median (min-max), median time per frame; "
              "ratios: cno speed / peer speed (websockets: its faster path)\n")
        print(table)


if __name__ == "__main__":
    main()
