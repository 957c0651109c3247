#!/usr/bin/env python
"""W3: requests/s through a client and a server wired back to back in memory,
cno vs h2 (pure Python) vs jh2 (h2 with Rust parts).

For each library, a client and a server of that library, connected by two lists (the
"transport"). A batch: the client writes 100 GET requests (10 header fields), the bytes
move to the server, whose event handlers answer each one (200, 5 header fields plus
:status, a 100-byte body), the bytes move back, and the client collects the 100 responses.
Reports requests/s.

    python bench/w3_requests.py              # default run, about 15 s
    python bench/w3_requests.py --quick      # smoke run, a few seconds
    python bench/w3_requests.py --markdown   # the table in the format of bench/results.md
    python bench/w3_requests.py --profile 300   # cno alone, 300 batches, for callgrind/perf

What is timed (see bench/README.md for more):

- one *unit* of work is one batch of 100 concurrent streams on a connection pair that
  lives for the whole run (set up, SETTINGS exchanged, outside the timed region; stream
  ids climb by 200 per batch, far below 2^31 in any run).
- moving bytes: all the bytes one side wrote since the last move are joined and handed to
  the other side in one ``data_received`` / ``receive_data`` call, as one socket read
  would (about 3 KB of requests, 15 KB of responses per batch). The client's WINDOW_UPDATEs
  travel with the next batch's requests.
- the user's code is inside the timed region and does what a user would:
  - client: build nothing (the header lists are prepared, one per path, outside), call
    ``write_head`` / ``send_headers`` 100 times, then on the response events keep the
    status and the body chunks per stream, and on the end of the stream check that the
    status is 200 and the body the expected 100 bytes; h2 and jh2 also call
    ``acknowledge_received_data`` per ``DataReceived`` (cno credits by itself);
  - server: on the request head keep ``(method, path, headers)`` per stream; on the end
    of the request (cno ``on_message_tail``, h2 ``StreamEnded``) answer with the head and
    the body (``write_head`` + ``write_data(final=True)``, ``send_headers`` +
    ``send_data(end_stream=True)``);
  - cno events are methods of ``cno.raw.Connection`` subclasses; h2 and jh2 events are
    dispatched by ``isinstance`` over the list ``receive_data`` returns, then
    ``data_to_send()`` goes to the transport.
- rows: header names and values given as ``str`` (what most code writes) or as ``bytes``.
  What comes out is each library's default: ``str`` for cno, ``bytes`` for h2 and jh2
  (``header_encoding=None``).
- before timing, one batch per library and row runs with recording handlers: the server
  must see the request fields sent (normalized to bytes), the client the response fields,
  status and body.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

STREAMS = 100                 # concurrent requests per batch
AUTHORITY = "www.example-shop.com"
PATHS = [
    "/",
    "/search?q=http2+header+compression&page=2",
    "/products/4711?ref=home&utm_source=newsletter",
    "/static/css/site.min.css?v=3f2a9c1e",
    "/static/js/app.bundle.js?v=3f2a9c1e",
    "/api/v2/cart/items?session=aa93&limit=20",
    "/images/hero/banner@2x.webp?w=1440&q=80",
    "/account/orders?status=open&sort=-date",
]
# 10 fields with the pseudo-headers: :method, :scheme, :authority, :path and these 6.
REQUEST_FIELDS = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("sec-fetch-mode", "navigate"),
    ("cookie", "session=7f3a9c2e81b44d6a0c55; theme=dark"),   # last: h2 moves it there
]
BODY = bytes(range(100))
# :status plus these 5.
RESPONSE_FIELDS = [
    ("content-type", "text/plain; charset=utf-8"),
    ("content-length", "100"),
    ("date", "Sat, 21 Nov 2026 10:00:00 GMT"),
    ("server", "w3-bench"),
    ("cache-control", "private, max-age=0"),
]


def b(x):
    return x.encode("latin-1") if isinstance(x, str) else x


def headers_in(kind):
    """The prepared header lists, per library family, as str or bytes.

    Returns (cno_request_fields, cno_response_fields, [h2 request lists, one per path],
    h2_response_list, [paths])."""
    conv = (lambda x: x) if kind == "str" else b
    pairs = lambda fields: [(conv(n), conv(v)) for n, v in fields]  # noqa: E731
    cno_req = [(conv(":scheme"), conv("https")), (conv(":authority"), conv(AUTHORITY))] \
        + pairs(REQUEST_FIELDS)
    cno_resp = pairs(RESPONSE_FIELDS)
    h2_reqs = [[(conv(":method"), conv("GET")), (conv(":scheme"), conv("https")),
                (conv(":authority"), conv(AUTHORITY)), (conv(":path"), conv(p))]
               + pairs(REQUEST_FIELDS) for p in PATHS]
    h2_resp = [(conv(":status"), conv("200"))] + pairs(RESPONSE_FIELDS)
    return cno_req, cno_resp, h2_reqs, h2_resp, [conv(p) for p in PATHS]


# ---------------------------------------------------------------------------------------
# Libraries

def load_libs(use_installed: bool):
    if not use_installed and ROOT not in sys.path:
        sys.path.insert(0, ROOT)    # the in-place build of this checkout
    import cno
    import cno.raw
    import h2.config
    import h2.connection
    import h2.events
    import jh2.config
    import jh2.connection
    import jh2.events
    return cno, {"h2": h2, "jh2": jh2}


# -- cno: the user's subclasses ----------------------------------------------------------

def cno_classes():
    import cno.raw

    class Server(cno.raw.Connection):
        def on_writev(self, chunks):
            self.wire.extend(chunks)

        def on_message_head(self, stream, code, method, path, headers):
            self.pending[stream] = (method, path, headers)

        def on_message_tail(self, stream, trailers):
            method, path, headers = self.pending.pop(stream)
            self.write_head(stream, 200, "", "", self.response, False)
            self.write_data(stream, BODY, True)

    class Client(cno.raw.Connection):
        def on_writev(self, chunks):
            self.wire.extend(chunks)

        def on_message_head(self, stream, code, method, path, headers):
            self.status[stream] = code
            self.body[stream] = []

        def on_message_data(self, stream, data):
            self.body[stream].append(data)

        def on_message_tail(self, stream, trailers):
            if self.status.pop(stream) == 200 and b"".join(self.body.pop(stream)) == BODY:
                self.ok += 1

    class CheckServer(Server):
        def on_message_head(self, stream, code, method, path, headers):
            self.log.append((stream, method, path, headers))
            super().on_message_head(stream, code, method, path, headers)

    class CheckClient(Client):
        def on_message_head(self, stream, code, method, path, headers):
            self.log.append((stream, code, headers))
            super().on_message_head(stream, code, method, path, headers)

    return Server, Client, CheckServer, CheckClient


class CnoPair:
    def __init__(self, kind, check=False):
        Server, Client, CheckServer, CheckClient = cno_classes()
        self.req, resp, _, _, self.paths = headers_in(kind)
        self.server = (CheckServer if check else Server)(server=True)
        self.client = (CheckClient if check else Client)(server=False)
        self.server.wire, self.server.pending, self.server.response = [], {}, resp
        self.client.wire, self.client.status, self.client.body = [], {}, {}
        self.client.ok = 0
        self.server.log, self.client.log = [], []
        self.client.connection_made(True)
        self.server.connection_made(True)
        for _ in range(3):      # SETTINGS, then the ACKs
            self.move()
        assert self.client.remote_settings["max_concurrent_streams"] >= STREAMS

    def move(self):
        c, s = self.client, self.server
        if c.wire:
            data = b"".join(c.wire)
            c.wire.clear()
            s.data_received(data)
        if s.wire:
            data = b"".join(s.wire)
            s.wire.clear()
            c.data_received(data)

    def make_run(self):
        client, server = self.client, self.server
        cwire, swire = client.wire, server.wire
        write_head = client.write_head
        req, paths = self.req, self.paths
        npaths = len(paths)

        def run(k):
            for _ in range(k):
                client.ok = 0
                for i in range(STREAMS):
                    write_head(client.next_stream, 0, "GET", paths[i % npaths], req, True)
                data = b"".join(cwire)
                cwire.clear()
                server.data_received(data)
                data = b"".join(swire)
                swire.clear()
                client.data_received(data)
                if client.ok != STREAMS:
                    raise AssertionError(f"cno: {client.ok} good responses of {STREAMS}")
        return run


# -- h2 and jh2: the user's event loops --------------------------------------------------

class H2Pair:
    def __init__(self, mod, kind, check=False):
        _, _, self.reqs, self.resp, _ = headers_in(kind)
        self.mod = mod
        ev = mod.events
        self.RequestReceived, self.StreamEnded = ev.RequestReceived, ev.StreamEnded
        self.ResponseReceived, self.DataReceived = ev.ResponseReceived, ev.DataReceived
        self.client = mod.connection.H2Connection(mod.config.H2Configuration(client_side=True))
        self.server = mod.connection.H2Connection(mod.config.H2Configuration(client_side=False))
        self.check = check
        self.log_server, self.log_client = [], []
        self.pending, self.status, self.body = {}, {}, {}
        self.ok = 0
        self.cwire, self.swire = [], []
        self.client.initiate_connection()
        self.server.initiate_connection()
        self.cwire.append(self.client.data_to_send())
        self.swire.append(self.server.data_to_send())
        for _ in range(3):
            self.move()

    def move(self):
        if self.cwire:
            data = b"".join(self.cwire)
            self.cwire.clear()
            self.server_received(data)
        if self.swire:
            data = b"".join(self.swire)
            self.swire.clear()
            self.client_received(data)

    # The user's code: one handler per side, as a protocol's data_received would be.
    def server_received(self, data):
        conn = self.server
        for ev in conn.receive_data(data):
            if isinstance(ev, self.RequestReceived):
                self.pending[ev.stream_id] = ev.headers
                if self.check:
                    self.log_server.append((ev.stream_id, ev.headers))
            elif isinstance(ev, self.StreamEnded):
                headers = self.pending.pop(ev.stream_id)
                conn.send_headers(ev.stream_id, self.resp)
                conn.send_data(ev.stream_id, BODY, end_stream=True)
        out = conn.data_to_send()
        if out:
            self.swire.append(out)

    def client_received(self, data):
        conn = self.client
        for ev in conn.receive_data(data):
            if isinstance(ev, self.ResponseReceived):
                self.status[ev.stream_id] = dict(ev.headers)[b":status"]
                self.body[ev.stream_id] = []
                if self.check:
                    self.log_client.append((ev.stream_id, ev.headers))
            elif isinstance(ev, self.DataReceived):
                self.body[ev.stream_id].append(ev.data)
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, self.StreamEnded):
                if (self.status.pop(ev.stream_id) == b"200"
                        and b"".join(self.body.pop(ev.stream_id)) == BODY):
                    self.ok += 1
        out = conn.data_to_send()
        if out:
            self.cwire.append(out)

    def make_run(self):
        client = self.client
        cwire, swire = self.cwire, self.swire
        reqs = self.reqs
        npaths = len(reqs)
        server_received, client_received = self.server_received, self.client_received
        name = self.mod.__name__

        def run(k):
            for _ in range(k):
                self.ok = 0
                for i in range(STREAMS):
                    client.send_headers(client.get_next_available_stream_id(),
                                        reqs[i % npaths], end_stream=True)
                cwire.append(client.data_to_send())
                data = b"".join(cwire)
                cwire.clear()
                server_received(data)
                data = b"".join(swire)
                swire.clear()
                client_received(data)
                if self.ok != STREAMS:
                    raise AssertionError(f"{name}: {self.ok} good responses of {STREAMS}")
        return run


def make_pair(lib, mods, kind, check=False):
    return CnoPair(kind, check) if lib == "cno" else H2Pair(mods[lib], kind, check)


# ---------------------------------------------------------------------------------------
# Correctness

def norm(fields):
    """(pseudo-header fields as a dict, regular fields as a list), all bytes: the order of
    pseudo-header fields carries no meaning, that of regular fields does."""
    fields = [(b(f[0]), b(f[1])) for f in fields]
    return ({n: v for n, v in fields if n.startswith(b":")},
            [(n, v) for n, v in fields if not n.startswith(b":")])


def check(libs, mods):
    want_req = [norm([(":method", "GET"), (":scheme", "https"), (":authority", AUTHORITY),
                      (":path", p)] + REQUEST_FIELDS) for p in PATHS]
    want_resp = norm([(":status", "200")] + RESPONSE_FIELDS)
    for kind in KINDS:
        for lib in libs:
            pair = make_pair(lib, mods, kind, check=True)
            run = pair.make_run()
            run(2)
            if lib == "cno":
                slog = [(sid, norm([(":method", m), (":path", p)] + h))
                        for sid, m, p, h in pair.server.log]
                clog = [(sid, norm([(":status", str(code))] + h))
                        for sid, code, h in pair.client.log]
            else:
                slog = [(sid, norm(h)) for sid, h in pair.log_server]
                clog = [(sid, norm(h)) for sid, h in pair.log_client]
            assert len(slog) == len(clog) == 2 * STREAMS, f"{lib}: {len(slog)} {len(clog)}"
            for i, (sid, fields) in enumerate(slog):
                if fields != want_req[i % STREAMS % len(PATHS)]:
                    raise AssertionError(f"{lib} ({kind}): request {sid} arrived as {fields}")
            for sid, fields in clog:
                if fields != want_resp:
                    raise AssertionError(f"{lib} ({kind}): response {sid} arrived as {fields}")


# ---------------------------------------------------------------------------------------
# Timing

KINDS = ["str", "bytes"]


def build_cells(H, libs, mods):
    cells = []
    for kind in KINDS:
        for lib in libs:
            cells.append(H.Cell(kind, lib, make_pair(lib, mods, kind).make_run(), STREAMS))
    return cells


def tables(H, cells, libs, markdown):
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows = []
    for kind in KINDS:
        s = {lib: by.get((kind, lib)) for lib in libs}
        rows.append([f"{kind} header fields in"] + [H.fmt_cell(s[lib]) for lib in libs]
                    + [H.fmt_ratio(s["cno"], s["h2"]), H.fmt_ratio(s["cno"], s["jh2"])])
    return H.render_table(["case", *libs, "cno/h2", "cno/jh2"], rows, markdown,
                          right=(4, 5))


def profile(n, kind):
    """cno alone: n batches after 20 of warm-up, for callgrind or perf."""
    pair = CnoPair(kind)
    run = pair.make_run()
    run(20)
    t0 = time.perf_counter()
    run(n)
    dt = time.perf_counter() - t0
    print(f"cno, {kind} fields: {n} batches of {STREAMS} requests in {dt:.3f} s "
          f"({n * STREAMS / dt:,.0f} requests/s)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short smoke run (< 10 s)")
    ap.add_argument("--markdown", action="store_true", help="print markdown tables")
    ap.add_argument("--reps", type=int, help="repetitions (default 25, --quick 5)")
    ap.add_argument("--target-ms", type=float,
                    help="time per batch in ms (default 50, --quick 5)")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    ap.add_argument("--profile", type=int, metavar="N",
                    help="run cno alone for N batches (no peers, no statistics)")
    ap.add_argument("--profile-kind", choices=KINDS, default="str",
                    help="header field type for --profile (default str)")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 25)
    target_ms = args.target_ms or (5.0 if args.quick else 50.0)
    warmup_ms = 20.0 if args.quick else 200.0

    cno, mods = load_libs(args.installed)
    if args.profile:
        return profile(args.profile, args.profile_kind)

    import _harness as H
    libs = ["cno", "h2", "jh2"]
    versions = {"cno": H.cno_build_info(cno, ROOT), "h2": H.dist_version("h2"),
                "jh2": H.dist_version("jh2")}
    info = H.machine_info(versions)
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches, "
                           f"{STREAMS} concurrent requests per batch on one long-lived "
                           "connection pair, GC off while timing"))

    check(libs, mods)
    print("correctness: every server saw the requests sent, every client the responses",
          file=sys.stderr)
    cells = build_cells(H, libs, mods)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))

    table = tables(H, cells, libs, args.markdown)
    if args.markdown:
        print("Requests/s: median (min-max over repetitions), and median time per request "
              "(client and server together). Ratios are cno's speed over the peer's "
              "(>1: cno faster).\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(table)
    else:
        print(H.render_info(info) + "\n")
        print("W3 requests: requests/s, median (min-max), median time per request; "
              "ratios: cno speed / peer speed\n")
        print(table)


if __name__ == "__main__":
    main()
