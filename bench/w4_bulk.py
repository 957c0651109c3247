#!/usr/bin/env python
"""W4: 100 MB over one stream in memory, with flow control, cno vs h2 (pure Python) vs
jh2 (h2 with Rust parts) vs zttp (Zig core).

For each library, a client and a server of that library connected by two lists (the
"transport"). One transfer: the client POSTs a 100 MB body (10^8 bytes) on a new stream,
writing 64 KiB at a time as far as the flow-control windows allow and resuming when they
open; the server consumes the body and gives the credit back; bytes are pumped both ways
until the client has the server's 200. Reports MB/s (10^6 bytes of body per second).

    python bench/w4_bulk.py              # default run, about 45 s
    python bench/w4_bulk.py --quick      # smoke run: 10 MB transfers, 3 repetitions
    python bench/w4_bulk.py --markdown   # the table in the format of bench/results.md

What is timed (see bench/README.md for more):

- one *unit* of work is one transfer, on a connection pair that lives for the whole run
  (set up, SETTINGS exchanged, outside the timed region); the stream is new every time.
- rows: the receive windows of the server (stream and connection, the same for every
  library): 65535 (the RFC's initial value, nothing changed) and 1 MiB (the server sends
  SETTINGS_INITIAL_WINDOW_SIZE = 2^20 and a connection WINDOW_UPDATE up to 2^20 at start:
  Go's net/http2 server uses 1 MiB per stream as well). zttp has no API to change its
  receive windows: it is in the 65535 row only.
- the client's code (the user's, inside the timed region): write the request head
  (POST, content-length), then write the body from one 64 KiB block of random bytes,
  repeated: cno, ``write_data`` of up to 64 KiB at a time until it accepts less than
  given, then again from ``on_flow_increase``; h2 and jh2, ``send_data`` of
  ``min(64 KiB, local_flow_control_window, max_outbound_frame_size)`` (h2 refuses more
  than one frame's worth per call) until the window is 0, then again on
  ``WindowUpdated``, and ``data_to_send()`` to the transport after each round; zttp
  likewise, ``send_data`` on the request's ``Stream`` of ``min(64 KiB,
  stream.send_window, connection.send_window)`` (zttp cuts frames by itself and would
  park, copying, what the window does not admit: sized writes never park), again on
  ``WindowUpdate``, ``end_message()`` after the last.
- the server's code: count the body bytes (cno ``on_message_data``; h2
  ``DataReceived``; zttp ``Data``), credit them (cno: its automatic flow control, batched
  WINDOW_UPDATEs; h2: ``acknowledge_received_data`` per ``DataReceived``; zttp: by itself,
  a connection and a stream WINDOW_UPDATE each time half its window is consumed), and
  answer 200 at the end.
- the transport hands over what each side wrote, chunk by chunk as written, without
  copying or re-cutting (cno: one chunk per public call; h2 and zttp: one per
  ``data_to_send``).
- before timing, a 3 MB transfer per library and row checks that the server got exactly
  the bytes sent; every timed transfer checks the byte count and the 200.
"""
from __future__ import annotations

import argparse
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SIZE = 100_000_000            # body bytes per transfer (--quick: 10 MB)
BLOCK = 65536                 # bytes per write call (at most)
WINDOWS = [65535, 1 << 20]    # server receive windows, one row each
BLOCK_BYTES = random.Random(4).randbytes(BLOCK)
AUTHORITY = "upload.example.com"


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


class Stalled(AssertionError):
    """Neither side had anything to send, and the transfer was not finished."""


# -- cno -------------------------------------------------------------------------------

def cno_classes():
    import cno.raw

    class Uploader(cno.raw.Connection):
        def on_writev(self, chunks):
            self.wire.extend(chunks)

        def upload(self, size):
            self.sid = sid = self.next_stream
            self.pos, self.size, self.status, self.done = 0, size, None, False
            self.write_head(sid, 0, "POST", "/upload",
                            [(":scheme", "https"), (":authority", AUTHORITY),
                             ("content-type", "application/octet-stream"),
                             ("content-length", str(size))], False)
            self.send_more()

        def send_more(self):
            pos, size, sid = self.pos, self.size, self.sid
            write_data = self.write_data
            while pos < size:
                off = pos % BLOCK
                want = min(BLOCK - off, size - pos)
                data = BLOCK_BYTES if want == BLOCK else self.view[off:off + want]
                n = write_data(sid, data, pos + want == size)
                pos += n
                if n < want:
                    break
            self.pos = pos

        def on_flow_increase(self, stream):
            if self.pos < self.size:
                self.send_more()

        def on_message_head(self, stream, code, method, path, headers):
            self.status = code

        def on_message_tail(self, stream, trailers):
            self.done = True

    class Receiver(cno.raw.Connection):
        def on_writev(self, chunks):
            self.wire.extend(chunks)

        def on_message_head(self, stream, code, method, path, headers):
            self.received = 0

        def on_message_data(self, stream, data):
            self.received += len(data)

        def on_message_tail(self, stream, trailers):
            self.write_head(stream, 200, "", "", [("content-type", "text/plain")], True)

    class KeepingReceiver(Receiver):
        def on_message_data(self, stream, data):
            self.received += len(data)
            self.body.append(data)

    return Uploader, Receiver, KeepingReceiver


class CnoPair:
    def __init__(self, window, keep=False):
        Uploader, Receiver, KeepingReceiver = cno_classes()
        self.client = Uploader(server=False)
        self.client.wire, self.client.view = [], memoryview(BLOCK_BYTES)
        self.client.pos = self.client.size = 0
        if window == 65535:
            self.server = (KeepingReceiver if keep else Receiver)(server=True)
        else:
            self.server = (KeepingReceiver if keep else Receiver)(
                server=True, initial_window_size=window)
        self.server.wire, self.server.body, self.server.received = [], [], 0
        self.client.connection_made(True)
        self.server.connection_made(True)
        if window > 65535:
            self.server.open_flow(0, window - 65535)
        self.rounds = 0
        for _ in range(3):
            self.pump_once()

    def pump_once(self):
        """Move what each side wrote to the other, chunk by chunk; False if nothing."""
        c, s = self.client, self.server
        moved = False
        if c.wire:
            chunks = c.wire[:]
            c.wire.clear()
            for chunk in chunks:
                s.data_received(chunk)
            moved = True
        if s.wire:
            chunks = s.wire[:]
            s.wire.clear()
            for chunk in chunks:
                c.data_received(chunk)
            moved = True
        return moved

    def make_run(self, size):
        client, server = self.client, self.server
        cwire, swire = client.wire, server.wire
        c_received, s_received = client.data_received, server.data_received
        pair = self

        def run(k):
            rounds = 0
            for _ in range(k):
                client.upload(size)
                while not client.done:
                    if not cwire and not swire:
                        raise Stalled(f"cno: stalled at {client.pos} of {size} bytes sent, "
                                      f"{server.received} received")
                    if cwire:
                        chunks = cwire[:]
                        cwire.clear()
                        for chunk in chunks:
                            s_received(chunk)
                    if swire:
                        chunks = swire[:]
                        swire.clear()
                        for chunk in chunks:
                            c_received(chunk)
                    rounds += 1
                if client.status != 200 or server.received != size:
                    raise AssertionError(f"cno: status {client.status}, {server.received} "
                                         f"bytes received of {size}")
            pair.rounds = rounds / k
        return run


# -- h2 and jh2 -------------------------------------------------------------------------

class H2Pair:
    def __init__(self, mod, window, keep=False):
        self.mod = mod
        ev = mod.events
        self.RequestReceived, self.DataReceived = ev.RequestReceived, ev.DataReceived
        self.StreamEnded, self.ResponseReceived = ev.StreamEnded, ev.ResponseReceived
        self.WindowUpdated = ev.WindowUpdated
        self.client = mod.connection.H2Connection(mod.config.H2Configuration(client_side=True))
        self.server = mod.connection.H2Connection(mod.config.H2Configuration(client_side=False))
        self.cwire, self.swire = [], []
        self.keep, self.body, self.received = keep, [], 0
        self.view = memoryview(BLOCK_BYTES)
        self.pos = self.size = 0
        self.sid, self.status, self.done = None, None, False
        self.client.initiate_connection()
        self.server.initiate_connection()
        if window > 65535:
            self.server.update_settings({mod.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
            self.server.increment_flow_control_window(window - 65535)
        self.cwire.append(self.client.data_to_send())
        self.swire.append(self.server.data_to_send())
        self.rounds = 0
        for _ in range(3):
            self.pump_once()

    def pump_once(self):
        moved = False
        if self.cwire:
            chunks = self.cwire[:]
            self.cwire.clear()
            for chunk in chunks:
                self.server_received(chunk)
            moved = True
        if self.swire:
            chunks = self.swire[:]
            self.swire.clear()
            for chunk in chunks:
                self.client_received(chunk)
            moved = True
        return moved

    # The user's code.
    def upload(self, size):
        conn = self.client
        self.sid = sid = conn.get_next_available_stream_id()
        self.pos, self.size, self.status, self.done = 0, size, None, False
        conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"),
                                (":authority", AUTHORITY), (":path", "/upload"),
                                ("content-type", "application/octet-stream"),
                                ("content-length", str(size))])
        self.send_more()

    def send_more(self):
        conn = self.client
        pos, size, sid = self.pos, self.size, self.sid
        window = conn.local_flow_control_window
        send_data = conn.send_data
        max_frame = conn.max_outbound_frame_size
        while pos < size:
            w = window(sid)
            if w <= 0:
                break
            off = pos % BLOCK
            n = min(BLOCK - off, size - pos, w, max_frame)
            send_data(sid, self.view[off:off + n], end_stream=pos + n == size)
            pos += n
        self.pos = pos
        out = conn.data_to_send()
        if out:
            self.cwire.append(out)

    def client_received(self, data):
        conn = self.client
        for ev in conn.receive_data(data):
            if isinstance(ev, self.WindowUpdated):
                if self.pos < self.size:
                    self.send_more()
            elif isinstance(ev, self.ResponseReceived):
                self.status = dict(ev.headers)[b":status"]
            elif isinstance(ev, self.StreamEnded):
                self.done = True
        out = conn.data_to_send()
        if out:
            self.cwire.append(out)

    def server_received(self, data):
        conn = self.server
        for ev in conn.receive_data(data):
            if isinstance(ev, self.DataReceived):
                self.received += len(ev.data)
                if self.keep:
                    self.body.append(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, self.RequestReceived):
                self.received = 0
            elif isinstance(ev, self.StreamEnded):
                conn.send_headers(ev.stream_id, [(":status", "200"),
                                                 ("content-type", "text/plain")],
                                  end_stream=True)
        out = conn.data_to_send()
        if out:
            self.swire.append(out)

    def make_run(self, size):
        cwire, swire = self.cwire, self.swire
        s_received, c_received = self.server_received, self.client_received
        name = self.mod.__name__

        def run(k):
            rounds = 0
            for _ in range(k):
                self.upload(size)
                while not self.done:
                    if not cwire and not swire:
                        raise Stalled(f"{name}: stalled at {self.pos} of {size} bytes sent, "
                                      f"{self.received} received")
                    if cwire:
                        chunks = cwire[:]
                        cwire.clear()
                        for chunk in chunks:
                            s_received(chunk)
                    if swire:
                        chunks = swire[:]
                        swire.clear()
                        for chunk in chunks:
                            c_received(chunk)
                    rounds += 1
                if self.status != b"200" or self.received != size:
                    raise AssertionError(f"{name}: status {self.status}, {self.received} "
                                         f"bytes received of {size}")
            self.rounds = rounds / k
        return run


# -- zttp -------------------------------------------------------------------------------

class ZttpPair:
    """zttp's client and server; zttp cannot change its receive windows (65535 only)."""

    def __init__(self, zttp, window, keep=False):
        if window != 65535:
            raise ValueError("zttp's receive windows are 65535")
        self.zttp = zttp
        self.client = zttp.Connection(zttp.CLIENT, zttp.HTTP2)
        self.server = zttp.Connection(zttp.SERVER, zttp.HTTP2)
        self.cwire, self.swire = [], []
        self.keep, self.body, self.received = keep, [], 0
        self.view = memoryview(BLOCK_BYTES)
        self.pos = self.size = 0
        self.stream, self.status, self.done = None, None, False
        self.client.initiate_connection()
        self.server.initiate_connection()
        self.cwire.append(self.client.data_to_send())
        self.swire.append(self.server.data_to_send())
        self.rounds = 0
        for _ in range(3):
            self.pump_once()

    def pump_once(self):
        moved = False
        if self.cwire:
            chunks = self.cwire[:]
            self.cwire.clear()
            for chunk in chunks:
                self.server_received(chunk)
            moved = True
        if self.swire:
            chunks = self.swire[:]
            self.swire.clear()
            for chunk in chunks:
                self.client_received(chunk)
            moved = True
        return moved

    # The user's code.
    def upload(self, size):
        self.pos, self.size, self.status, self.done = 0, size, None, False
        self.stream = self.client.send_request(
            b"POST", b"/upload", b"2",
            [(b"host", AUTHORITY.encode()), (b"content-type", b"application/octet-stream"),
             (b"content-length", str(size).encode())])
        self.send_more()

    def send_more(self):
        conn, stream = self.client, self.stream
        pos, size = self.pos, self.size
        send_data = stream.send_data
        while pos < size:
            w = min(stream.send_window, conn.send_window)
            if w <= 0:
                break
            off = pos % BLOCK
            n = min(BLOCK - off, size - pos, w)
            send_data(self.view[off:off + n])
            pos += n
        self.pos = pos
        if pos == size:             # (send_more runs only while pos < size)
            stream.end_message()
        out = conn.data_to_send()
        if out:
            self.cwire.append(out)

    def client_received(self, data):
        zttp, conn = self.zttp, self.client
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is zttp.NEED_DATA:
                break
            if isinstance(ev, zttp.WindowUpdate):
                if self.pos < self.size:
                    self.send_more()
            elif isinstance(ev, zttp.Response):
                self.status = ev.status_code
            elif isinstance(ev, zttp.EndOfMessage):
                self.done = True
        out = conn.data_to_send()
        if out:
            self.cwire.append(out)

    def server_received(self, data):
        zttp, conn = self.zttp, self.server
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is zttp.NEED_DATA:
                break
            if isinstance(ev, zttp.Data):
                self.received += len(ev.data)
                if self.keep:
                    self.body.append(ev.data)
            elif isinstance(ev, zttp.Request):
                self.received = 0
            elif isinstance(ev, zttp.EndOfMessage):
                conn.stream(ev.stream_id).send_response(
                    200, [(b"content-type", b"text/plain")], end_stream=True)
        out = conn.data_to_send()
        if out:
            self.swire.append(out)

    def make_run(self, size):
        cwire, swire = self.cwire, self.swire
        s_received, c_received = self.server_received, self.client_received

        def run(k):
            rounds = 0
            for _ in range(k):
                self.upload(size)
                while not self.done:
                    if not cwire and not swire:
                        raise Stalled(f"zttp: stalled at {self.pos} of {size} bytes sent, "
                                      f"{self.received} received")
                    if cwire:
                        chunks = cwire[:]
                        cwire.clear()
                        for chunk in chunks:
                            s_received(chunk)
                    if swire:
                        chunks = swire[:]
                        swire.clear()
                        for chunk in chunks:
                            c_received(chunk)
                    rounds += 1
                if self.status != 200 or self.received != size:
                    raise AssertionError(f"zttp: status {self.status}, {self.received} "
                                         f"bytes received of {size}")
            self.rounds = rounds / k
        return run


def make_pair(lib, mods, window, keep=False):
    if lib == "zttp":
        return ZttpPair(mods["zttp"], window, keep)
    return CnoPair(window, keep) if lib == "cno" else H2Pair(mods[lib], window, keep)


def supports(lib, window):
    return lib != "zttp" or window == 65535


# ---------------------------------------------------------------------------------------
# Correctness, timing

def check(libs, mods, size=3_000_000):
    want = (BLOCK_BYTES * (size // BLOCK + 1))[:size]
    for window in WINDOWS:
        for lib in libs:
            if not supports(lib, window):
                continue
            pair = make_pair(lib, mods, window, keep=True)
            pair.make_run(size)(1)
            body = pair.server.body if lib == "cno" else pair.body
            got = b"".join(body)
            if got != want:
                raise AssertionError(f"{lib}, window {window}: the server got {len(got)} "
                                     f"bytes, not the {size} sent"
                                     if len(got) != size else
                                     f"{lib}, window {window}: the body differs")


def window_label(w):
    return "65535 (default)" if w == 65535 else f"{w >> 20} MiB"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 MB transfers, 3 repetitions")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 25, --quick 3)")
    ap.add_argument("--size", type=int, help="body bytes per transfer (default 10^8, "
                                             "--quick 10^7)")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    args = ap.parse_args(argv)
    reps = args.reps or (3 if args.quick else 25)
    size = args.size or (10_000_000 if args.quick else SIZE)

    import _harness as H
    cno, mods = load_libs(args.installed)
    libs = ["cno", "h2", "jh2", "zttp"]
    versions = {"cno": H.cno_build_info(cno, ROOT), "h2": H.dist_version("h2"),
                "jh2": H.dist_version("jh2"), "zttp": H.dist_version("zttp")}
    info = H.machine_info(versions)
    info.append(("method", f"{reps} interleaved repetitions of one {size / 1e6:g} MB "
                           f"transfer per library and window, {BLOCK // 1024} KiB writes, "
                           "GC off while timing"))

    check(libs, mods)
    print("correctness: every server got exactly the bytes sent", file=sys.stderr)
    cells, pairs = [], {}
    for window in WINDOWS:
        for lib in libs:
            if not supports(lib, window):
                continue
            pair = make_pair(lib, mods, window)
            pairs[(window, lib)] = pair
            cells.append(H.Cell(window, lib, pair.make_run(size), size))
    # One transfer is far above any batch target: calibration gives k = 1.
    H.run_interleaved(cells, reps, target_ms=1.0, warmup_ms=0.0)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    info.append(("pump rounds per transfer", "; ".join(
        f"{window_label(w)}: " + ", ".join(f"{lib} {pairs[(w, lib)].rounds:.0f}"
                                           for lib in libs if (w, lib) in pairs)
        for w in WINDOWS)))

    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows = []
    for window in WINDOWS:
        s = {lib: by.get((window, lib)) for lib in libs}
        rows.append([window_label(window)]
                    + [f"{H.fmt_mb(s[lib], 1)}, {H.fmt_ns(s[lib].median * size)}"
                       if s[lib] else "n/a" for lib in libs]
                    + [H.fmt_ratio(s["cno"], s[lib]) for lib in libs[1:]])
    table = H.render_table(["receive window", *libs] + [f"cno/{lib}" for lib in libs[1:]],
                           rows, args.markdown, right=tuple(range(1 + len(libs), 2 * len(libs))))
    if args.markdown:
        print("Body MB/s (10^6 bytes): median (min-max over repetitions), and median time "
              f"per {size / 1e6:g} MB transfer. Ratios are cno's speed over the peer's "
              "(>1: cno faster). n/a: zttp cannot change its receive windows.\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(table)
    else:
        print(H.render_info(info) + "\n")
        print("W4 bulk: MB/s, median (min-max), median time per transfer; "
              "ratios: cno speed / peer speed\n")
        print(table)


if __name__ == "__main__":
    main()
