#!/usr/bin/env python
"""W2: a server fed many DATA frames, cno vs h2 (pure Python) vs jh2 (h2 with Rust parts)
vs zttp (Zig core).

One server connection per library, set up outside the timed region: it has received the
client preface, the client's SETTINGS, the ACK of its own SETTINGS and the HEADERS of one
request (POST, no END_STREAM) on stream 1. The timed region feeds it DATA frames for that
stream (16 KiB payloads, or 10-byte payloads) in 64 KiB chunks, as a transport would hand
them over. Reports payload MB/s (10^6 bytes) and frames/s.

    python bench/w2_data_in.py              # default run, about 20 s
    python bench/w2_data_in.py --quick      # smoke run, a few seconds
    python bench/w2_data_in.py --markdown   # the tables in the format of bench/results.md

What is timed (see bench/README.md for more):

- one *unit* of work is one round of DATA frames (64 frames of 16 KiB, 1 MiB on the wire,
  or 13797 frames of 10 bytes, 256 KiB on the wire), already serialized and cut into 64 KiB ``bytes`` chunks
  outside the timed region (the last chunk of a round is short: the round ends on a frame
  boundary, so that rounds can follow each other on the same stream forever). Chunk
  boundaries fall inside frames, as they would from a socket.
- flow control: each server raises its own receive windows first, to 2^31-1 for the
  stream (SETTINGS_INITIAL_WINDOW_SIZE, acknowledged by the fed bytes) and the connection
  (WINDOW_UPDATE), and then credits consumed data as a user would: cno by itself (its
  automatic flow control), h2 and jh2 by ``acknowledge_received_data`` for every
  ``DataReceived`` event. The fed byte stream stands for a sender that received those
  WINDOW_UPDATEs; the server never sees more than its window. zttp has no API to change
  its receive windows (no SETTINGS, no WINDOW_UPDATE call): it keeps the RFC's 65535 and
  credits by itself as it hands out data (a connection and a stream WINDOW_UPDATE each
  time about half the window is consumed, so it writes more frames than the others; the
  header counts them). Its window never runs out: it credits while it parses.
- the user's code is inside the timed region and does what a user would: cno, a
  ``cno.raw.Connection`` subclass whose ``on_message_data`` adds ``len(data)`` to a
  counter and whose ``on_writev`` hands the output to the "transport" (a list); h2 and
  jh2, a loop over the events ``receive_data`` returns (``isinstance`` dispatch, the counter,
  the acknowledgement), then ``data_to_send()`` to the same list; zttp, ``receive_data``
  then ``next_event()`` until ``NEED_DATA`` (``isinstance`` dispatch, the counter), then
  ``data_to_send()`` to the same list.
- before timing, a separate server per library receives two rounds with a handler that
  keeps the bytes: they must equal the payloads sent, in order, and the server's output
  must hold nothing but SETTINGS, SETTINGS ACK and WINDOW_UPDATE frames. After timing, each
  timed server's byte counter must equal the payload of the rounds it was fed.
"""
from __future__ import annotations

import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

CHUNK = 65536                   # bytes per data_received / receive_data call
ROUND = {16384: 64, 10: 13797}  # DATA frames per unit of work (1 MiB and 256 KiB of wire)
WINDOW = 2 ** 31 - 1            # the receive windows every server sets up
PAYLOADS = [16384, 10]          # DATA payload sizes, one case each
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
REQUEST = [(b":method", b"POST"), (b":scheme", b"https"), (b":authority", b"example.com"),
           (b":path", b"/upload"), (b"content-type", b"application/octet-stream"),
           (b"user-agent", b"w2-bench/1.0")]


# ---------------------------------------------------------------------------------------
# Libraries and their servers

def load_libs(use_installed: bool):
    if not use_installed and ROOT not in sys.path:
        sys.path.insert(0, ROOT)    # the in-place build of this checkout
    import cno
    import cno.raw
    import h2.config
    import h2.connection
    import h2.events
    import h2.settings
    import jh2.config
    import jh2.connection
    import jh2.events
    import jh2.settings
    import zttp
    return cno, {"h2": h2, "jh2": jh2, "zttp": zttp}


def make_cno_server(cno, keep_bytes=False):
    """A cno server that counts (or keeps) the body bytes it is given."""
    import cno.raw

    if keep_bytes:
        class Server(cno.raw.Connection):
            def on_message_data(self, stream, data):
                self.received += len(data)
                self.body.append(data)
                self.deliveries += 1

            def on_writev(self, chunks):
                self.outbox.extend(chunks)
    else:
        class Server(cno.raw.Connection):
            def on_message_data(self, stream, data):
                self.received += len(data)

            def on_writev(self, chunks):
                self.outbox.extend(chunks)

    srv = Server(server=True, initial_window_size=WINDOW)
    srv.received = 0
    srv.body = []
    srv.deliveries = 0
    srv.outbox = []
    srv.connection_made(True)
    srv.open_flow(0, WINDOW - 65535)
    return srv


class H2Server:
    """h2 or jh2 (same API): the connection, and the user's event loop."""

    def __init__(self, mod, keep_bytes=False):
        self.mod = mod
        self.conn = mod.connection.H2Connection(mod.config.H2Configuration(client_side=False))
        self.conn.initiate_connection()
        self.conn.update_settings({mod.settings.SettingCodes.INITIAL_WINDOW_SIZE: WINDOW})
        self.conn.increment_flow_control_window(WINDOW - 65535)
        self.received = 0
        self.body = []
        self.deliveries = 0
        self.keep_bytes = keep_bytes
        self.requests = []
        self.outbox = [self.conn.data_to_send()]

    def data_received(self, data):
        """What a user's protocol does with bytes from the socket (checking version)."""
        conn = self.conn
        ev_mod = self.mod.events
        for ev in conn.receive_data(data):
            if isinstance(ev, ev_mod.DataReceived):
                self.received += len(ev.data)
                if self.keep_bytes:
                    self.body.append(ev.data)
                    self.deliveries += 1
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, ev_mod.RequestReceived):
                self.requests.append(ev.stream_id)
            elif isinstance(ev, (ev_mod.StreamReset, ev_mod.ConnectionTerminated)):
                raise AssertionError(f"unexpected event {ev}")
        out = conn.data_to_send()
        if out:
            self.outbox.append(out)


class ZttpServer:
    """zttp: the connection, and the user's pull loop (its receive windows stay at 65535:
    zttp has no call to raise them, and credits by itself)."""

    def __init__(self, zttp, keep_bytes=False):
        self.zttp = zttp
        self.conn = zttp.Connection(zttp.SERVER, zttp.HTTP2)
        self.conn.initiate_connection()
        self.received = 0
        self.body = []
        self.deliveries = 0
        self.keep_bytes = keep_bytes
        self.requests = []
        self.outbox = [self.conn.data_to_send()]

    def data_received(self, data):
        """What a user's protocol does with bytes from the socket (checking version)."""
        zttp, conn = self.zttp, self.conn
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is zttp.NEED_DATA:
                break
            if isinstance(ev, zttp.Data):
                self.received += len(ev.data)
                if self.keep_bytes:
                    self.body.append(ev.data)
                    self.deliveries += 1
            elif isinstance(ev, zttp.Request):
                self.requests.append(ev.stream_id)
            elif isinstance(ev, (zttp.RstStream, zttp.GoAway, zttp.ConnectionClosed)):
                raise AssertionError(f"unexpected event {ev}")
        out = conn.data_to_send()
        if out:
            self.outbox.append(out)


def make_feed_zttp(srv: ZttpServer):
    """The timed loop for zttp: ZttpServer.data_received minus the bookkeeping."""
    conn = srv.conn
    Data, NEED_DATA = srv.zttp.Data, srv.zttp.NEED_DATA
    receive_data, next_event = conn.receive_data, conn.next_event
    data_to_send = conn.data_to_send
    outbox = srv.outbox

    def feed(chunks):
        n = 0
        for chunk in chunks:
            receive_data(chunk)
            while True:
                ev = next_event()
                if ev is NEED_DATA:
                    break
                if isinstance(ev, Data):
                    n += len(ev.data)
            out = data_to_send()
            if out:
                outbox.append(out)
        srv.received += n
    return feed


def make_feed_h2(srv: H2Server):
    """The timed loop for h2/jh2: the same user code as H2Server.data_received, minus
    the correctness bookkeeping."""
    conn = srv.conn
    DataReceived = srv.mod.events.DataReceived
    receive_data = conn.receive_data
    ack = conn.acknowledge_received_data
    data_to_send = conn.data_to_send
    outbox = srv.outbox

    def feed(chunks):
        n = 0
        for chunk in chunks:
            for ev in receive_data(chunk):
                if isinstance(ev, DataReceived):
                    n += len(ev.data)
                    ack(ev.flow_controlled_length, ev.stream_id)
            out = data_to_send()
            if out:
                outbox.append(out)
        srv.received += n
    return feed


def make_feed_cno(srv):
    data_received = srv.data_received

    def feed(chunks):
        for chunk in chunks:
            data_received(chunk)
    return feed


# ---------------------------------------------------------------------------------------
# The byte streams

def frames_of(data: bytes):
    """(type, flags, stream, payload length) of every frame in data (a server's output)."""
    out, pos = [], 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        out.append((data[pos + 3], data[pos + 4],
                    int.from_bytes(data[pos + 5:pos + 9], "big") & 0x7FFFFFFF, n))
        pos += 9 + n
    assert pos == len(data), "truncated frame in the server's output"
    return out


def prefix_for(server_out: bytes) -> bytes:
    """What the client sends before the body: preface, its SETTINGS, an ACK for each
    SETTINGS the server sent, and the request's HEADERS (stream 1, no END_STREAM)."""
    from hyperframe.frame import HeadersFrame, SettingsFrame
    import hpack
    acks = sum(1 for t, f, _, _ in frames_of(server_out) if t == 4 and not f & 1)
    out = [PREFACE, SettingsFrame(0, settings={2: 0}).serialize()]
    out += [SettingsFrame(0, flags=["ACK"]).serialize()] * acks
    out.append(HeadersFrame(1, hpack.Encoder().encode(REQUEST),
                            flags=["END_HEADERS"]).serialize())
    return b"".join(out)


def make_round(payload: int, seed: int = 1):
    """(chunks, payloads, frames): one round of DATA frames on stream 1, cut in CHUNKs."""
    from hyperframe.frame import DataFrame
    rng = random.Random(seed * 1000 + payload)
    frames = ROUND[payload]
    payloads = [rng.randbytes(payload) for _ in range(frames)]
    wire = b"".join(DataFrame(1, p).serialize() for p in payloads)
    chunks = [wire[i:i + CHUNK] for i in range(0, len(wire), CHUNK)]
    return chunks, payloads, frames


# ---------------------------------------------------------------------------------------
# Set-up, correctness, timing

def start(lib, cno, mods, keep_bytes=False):
    """A server of the library that has received everything up to the body."""
    if lib == "cno":
        srv = make_cno_server(cno, keep_bytes)
        out = b"".join(srv.outbox)
        srv.outbox.clear()
        srv.data_received(prefix_for(out))
        assert srv.open_streams == [1], f"cno: open streams {srv.open_streams}"
    elif lib == "zttp":
        srv = ZttpServer(mods["zttp"], keep_bytes)
        out = b"".join(srv.outbox)
        srv.outbox.clear()
        srv.data_received(prefix_for(out))
        assert srv.requests == [1], f"zttp: requests {srv.requests}"
    else:
        srv = H2Server(mods[lib], keep_bytes)
        out = b"".join(srv.outbox)
        srv.outbox.clear()
        srv.data_received(prefix_for(out))
        assert srv.requests == [1], f"{lib}: requests {srv.requests}"
    srv.outbox.clear()
    return srv


def check(libs, cno, mods, rounds):
    """Every library's server, fed two rounds of each case, gives back the payloads."""
    notes = {}
    for payload, (chunks, payloads, frames) in rounds.items():
        want = b"".join(payloads) * 2
        for lib in libs:
            srv = start(lib, cno, mods, keep_bytes=True)
            for _ in range(2):
                for chunk in chunks:
                    srv.data_received(chunk)
            got = b"".join(srv.body)
            if got != want:
                raise AssertionError(f"{lib}, {payload}-byte frames: the body differs "
                                     f"({len(got)} bytes received, {len(want)} sent)")
            written = frames_of(b"".join(srv.outbox))
            kinds = {t for t, *_ in written}
            if not kinds <= {4, 8}:
                raise AssertionError(f"{lib}, {payload}-byte frames: the server wrote "
                                     f"frame types {sorted(kinds)}")
            updates = sum(1 for t, *_ in written if t == 8)
            notes[(lib, payload)] = (srv.deliveries / (2 * frames), updates / (2 * frames))
    return notes


def build_cells(H, libs, cno, mods, rounds):
    cells, servers = [], {}
    for payload, (chunks, payloads, frames) in rounds.items():
        for lib in libs:
            srv = start(lib, cno, mods)
            feed = (make_feed_cno(srv) if lib == "cno" else
                    make_feed_zttp(srv) if lib == "zttp" else make_feed_h2(srv))
            fed = [0]

            def run(k, feed=feed, chunks=chunks, fed=fed, outbox=srv.outbox):
                for _ in range(k):
                    feed(chunks)
                fed[0] += k
                outbox.clear()    # the transport wrote it out
            cells.append(H.Cell(payload, lib, run, frames))
            servers[(payload, lib)] = (srv, fed, sum(map(len, payloads)))
    return cells, servers


def check_counts(servers):
    for (payload, lib), (srv, fed, per_round) in servers.items():
        if srv.received != fed[0] * per_round:
            raise AssertionError(f"{lib}, {payload}-byte frames: {srv.received} body bytes "
                                 f"delivered, {fed[0] * per_round} fed")


def case_label(payload):
    return "16 KiB" if payload == 16384 else f"{payload} B"


def tables(H, cells, libs, rounds, markdown):
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows = []
    for payload in rounds:
        s = {lib: by.get((payload, lib)) for lib in libs}
        ratios = [H.fmt_ratio(s["cno"], s[lib]) for lib in libs[1:]]
        rows.append([case_label(payload), "MB/s"] + [H.fmt_mb(s[lib], payload) for lib in libs]
                    + ratios)
        rows.append([case_label(payload), "frames/s"]
                    + [H.fmt_cell(s[lib]) for lib in libs] + ratios)
    return H.render_table(["DATA payload", "unit", *libs] + [f"cno/{lib}" for lib in libs[1:]],
                          rows, markdown, right=tuple(range(2 + len(libs), 1 + 2 * len(libs))))


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
    cno, mods = load_libs(args.installed)
    libs = ["cno", "h2", "jh2", "zttp"]
    versions = {"cno": H.cno_build_info(cno, ROOT), "h2": H.dist_version("h2"),
                "jh2": H.dist_version("jh2"), "zttp": H.dist_version("zttp"),
                "hyperframe": H.dist_version("hyperframe")}
    info = H.machine_info(versions)
    rounds = {p: make_round(p) for p in PAYLOADS}
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches, "
                           f"{CHUNK // 1024} KiB chunks, one unit = one round of "
                           + ", ".join(f"{r[2]} frames of {case_label(p)}"
                                       for p, r in rounds.items())
                           + f", receive windows {WINDOW} (zttp: 65535, it cannot change "
                           "them), GC off while timing"))

    notes = check(libs, cno, mods, rounds)
    print("correctness: every server delivered the payloads in order and wrote only "
          "SETTINGS and WINDOW_UPDATE", file=sys.stderr)
    cells, servers = build_cells(H, libs, cno, mods, rounds)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    check_counts(servers)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    deliveries = "; ".join(f"{case_label(p)}: " + ", ".join(
        f"{lib} {notes[(lib, p)][0]:.4g}" for lib in libs) for p in rounds)
    # (cno hands consecutive small payloads of a stream over together: docs/raw.md)
    info.append(("body deliveries per DATA frame", deliveries))
    updates = "; ".join(f"{case_label(p)}: " + ", ".join(
        f"{lib} {notes[(lib, p)][1] * 1000:.1f}" for lib in libs) for p in rounds)
    info.append(("WINDOW_UPDATE frames written per 1000 DATA frames", updates))

    table = tables(H, cells, libs, rounds, args.markdown)
    if args.markdown:
        print("Payload MB/s (10^6 bytes) and DATA frames/s: median (min-max over "
              "repetitions), and median time per frame. Ratios are cno's speed over the "
              "peer's (>1: cno faster).\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(table)
    else:
        print(H.render_info(info) + "\n")
        print("W2 DATA in: payload MB/s and frames/s, median (min-max), median time per "
              "frame; ratios: cno speed / peer speed\n")
        print(table)


if __name__ == "__main__":
    main()
