#!/usr/bin/env python
"""W3: requests/s through a client and a server wired back to back in memory,
cno vs h2 (pure Python) vs jh2 (h2 with Rust parts) vs zttp (Zig core), and the server
side alone.

Table 1, client + server: for each library, a client and a server of that library,
connected by two lists (the "transport"). A batch: the client writes 100 GET requests (10
header fields), the bytes move to the server, whose event handlers answer each one (200,
5 header fields plus :status, a 100-byte body), the bytes move back, and the client
collects the 100 responses. Reports requests/s.

Table 2, server side only: a long-lived server connection per library is fed prepared
``bytes``, one object per unit of 100 GET requests (HEADERS with END_STREAM, encoded by
the reference ``hpack`` encoder with Huffman and its dynamic table, as browsers and
nghttp2 do; the first unit starts with the client's preface, SETTINGS, SETTINGS ACK and a
connection WINDOW_UPDATE). Every library is fed the very same objects, unit after unit;
its handler answers each request as in table 1 and its output is dropped. Reports
requests/s; a second row times a connection's set-up alone (a new connection fed the
prefix), per connection.

    python bench/w3_requests.py              # default run, about 30 s
    python bench/w3_requests.py --quick      # smoke run, a few seconds
    python bench/w3_requests.py --markdown   # the tables in the format of bench/results.md
    python bench/w3_requests.py --profile 300   # cno alone, 300 batches, for callgrind/perf
    python bench/w3_requests.py --profile 300 --profile-case server   # cno's table 2 alone

What is timed (see bench/README.md for more):

- one *unit* of work is one batch of 100 concurrent streams on a connection pair that
  lives for the whole run (set up, SETTINGS exchanged, outside the timed region; stream
  ids climb by 200 per batch, far below 2^31 in any run). Except zttp's: its server
  refuses more than 4096 streams on a connection (ENHANCE_YOUR_CALM, its defence against
  rapid-reset churn), so its pair starts over on a new connection (inside the timed
  region) every 40 batches; table 2 starts every library's server over every 40 units
  (a connection's set-up, timed in table 2's second row, is then under 0.01 of a
  request's time).
- moving bytes: all the bytes one side wrote since the last move are joined and handed to
  the other side in one ``data_received`` / ``receive_data`` call, as one socket read
  would (about 3 KB of requests, 15 KB of responses per batch). The client's WINDOW_UPDATEs
  travel with the next batch's requests.
- the user's code is inside the timed region and does what a user would:
  - client: build nothing (the header lists are prepared, one per path, outside), call
    ``write_head`` / ``send_headers`` 100 times (zttp: ``send_request`` then
    ``end_message()`` on the returned stream: its API has no way to put END_STREAM on the
    HEADERS, so each zttp request is a HEADERS frame plus an empty DATA frame), then on the
    response events keep the status and the body chunks per stream, and on the end of the
    stream check that the status is 200 and the body the expected 100 bytes; h2 and jh2
    also call ``acknowledge_received_data`` per ``DataReceived`` (cno and zttp credit by
    themselves);
  - server: on the request head keep ``(method, path, headers)`` per stream; on the end
    of the request (cno ``on_message_tail``, h2 ``StreamEnded``) answer with the head and
    the body (``write_head`` + ``write_data(final=True)``, ``send_headers`` +
    ``send_data(end_stream=True)``; zttp: ``stream(id)``, ``send_response``,
    ``send_data``, ``end_message()``, which writes an empty DATA frame with END_STREAM
    after the body's, so three frames a response where the others write two);
  - cno events are methods of ``cno.raw.Connection`` subclasses; h2 and jh2 events are
    dispatched by ``isinstance`` over the list ``receive_data`` returns, then
    ``data_to_send()`` goes to the transport; zttp events are pulled with
    ``next_event()`` until ``NEED_DATA`` after ``receive_data``, dispatched by
    ``isinstance``, then ``data_to_send()`` goes to the transport.
- rows: header names and values given as ``str`` (what most code writes) or as ``bytes``.
  What comes out is each library's default: ``str`` for cno, ``bytes`` for h2, jh2 and
  zttp (``header_encoding=None``). zttp takes ``bytes`` only: it is in the ``bytes`` rows.
- zttp's HPACK encoder writes every field as a literal without indexing (a static-table
  name index where one matches, never a full static match), without Huffman coding and
  without the dynamic table: it does less encoding work, and in table 1 the zttp server
  decodes plain literals where the others decode Huffman and table hits. The header
  prints the representations found in each library's response blocks (table 2's output),
  so this is checked on the bytes, not taken from zttp's documentation. In table 2 every
  server decodes the same requests.
- before timing, one batch per library and row runs with recording handlers: the server
  must see the request fields sent (normalized to bytes), the client the response fields,
  status and body; table 2's output is parsed (frames, HPACK) and must hold the 100
  responses, each 200 with the 5 fields and the body, END_STREAM on every stream. After
  timing, the last output of every table 2 cell is parsed again the same way.
"""
from __future__ import annotations

import argparse
import collections
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
    import zttp
    return cno, {"h2": h2, "jh2": jh2, "zttp": zttp}


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

class H2Server:
    """An h2 (or jh2) server connection and its user's handler: what a protocol's
    data_received would do."""

    def __init__(self, mod, resp, check=False):
        ev = mod.events
        self.RequestReceived, self.StreamEnded = ev.RequestReceived, ev.StreamEnded
        self.conn = mod.connection.H2Connection(mod.config.H2Configuration(client_side=False))
        self.resp = resp
        self.check = check
        self.log = []
        self.pending = {}
        self.wire = []
        self.conn.initiate_connection()
        self.wire.append(self.conn.data_to_send())

    def data_received(self, data):
        conn = self.conn
        for ev in conn.receive_data(data):
            if isinstance(ev, self.RequestReceived):
                self.pending[ev.stream_id] = ev.headers
                if self.check:
                    self.log.append((ev.stream_id, ev.headers))
            elif isinstance(ev, self.StreamEnded):
                self.pending.pop(ev.stream_id)      # the request, now answered
                conn.send_headers(ev.stream_id, self.resp)
                conn.send_data(ev.stream_id, BODY, end_stream=True)
        out = conn.data_to_send()
        if out:
            self.wire.append(out)


class H2Pair:
    def __init__(self, mod, kind, check=False):
        _, _, self.reqs, resp, _ = headers_in(kind)
        self.mod = mod
        ev = mod.events
        self.ResponseReceived, self.DataReceived = ev.ResponseReceived, ev.DataReceived
        self.StreamEnded = ev.StreamEnded
        self.client = mod.connection.H2Connection(mod.config.H2Configuration(client_side=True))
        self.srv = H2Server(mod, resp, check)
        self.check = check
        self.log_client = []
        self.status, self.body = {}, {}
        self.ok = 0
        self.cwire, self.swire = [], self.srv.wire
        self.client.initiate_connection()
        self.cwire.append(self.client.data_to_send())
        for _ in range(3):
            self.move()

    @property
    def log_server(self):
        return self.srv.log

    def move(self):
        if self.cwire:
            data = b"".join(self.cwire)
            self.cwire.clear()
            self.srv.data_received(data)
        if self.swire:
            data = b"".join(self.swire)
            self.swire.clear()
            self.client_received(data)

    # The user's code: one handler per side, as a protocol's data_received would be.
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
        server_received, client_received = self.srv.data_received, self.client_received
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


# -- zttp: the user's pull loops ----------------------------------------------------------

# zttp's HTTP/2 server allows 4096 streams per connection in all (its defence against
# rapid-reset churn, CVE-2023-44487), then fails with ENHANCE_YOUR_CALM: its client+server
# pair starts a new connection every 40 batches, table 2 every server every 40 units.
ZTTP_MAX_STREAMS = 4096

class ZttpServer:
    """A zttp server connection and its user's handler: receive_data, then next_event()
    until NEED_DATA; a request is answered when it ends (``end_stream`` on the Request,
    or its EndOfMessage)."""

    def __init__(self, zttp, resp, check=False):
        self.zttp = zttp
        self.Request, self.EndOfMessage = zttp.Request, zttp.EndOfMessage
        self.NEED_DATA = zttp.NEED_DATA
        self.conn = zttp.Connection(zttp.SERVER, zttp.HTTP2)
        self.resp = resp
        self.check = check
        self.log = []
        self.pending = {}
        self.wire = []
        self.conn.initiate_connection()
        self.wire.append(self.conn.data_to_send())

    def respond(self, sid):
        method, path, headers = self.pending.pop(sid)
        stream = self.conn.stream(sid)
        stream.send_response(200, self.resp)
        stream.send_data(BODY)
        stream.end_message()

    def data_received(self, data):
        conn = self.conn
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Request):
                self.pending[ev.stream_id] = (ev.method, ev.target, ev.headers)
                if self.check:
                    self.log.append((ev.stream_id, ev.method, ev.target, ev.headers))
                if ev.end_stream:
                    self.respond(ev.stream_id)
            elif isinstance(ev, self.EndOfMessage):
                self.respond(ev.stream_id)
            elif not isinstance(ev, (self.zttp.Settings, self.zttp.WindowUpdate)):
                raise AssertionError(f"zttp server: unexpected {ev!r}")
        out = conn.data_to_send()
        if out:
            self.wire.append(out)


class ZttpPair:
    def __init__(self, zttp, kind, check=False):
        if kind != "bytes":
            raise ValueError("zttp takes bytes header fields only")
        self.zttp = zttp
        self.Response, self.Data = zttp.Response, zttp.Data
        self.EndOfMessage, self.NEED_DATA = zttp.EndOfMessage, zttp.NEED_DATA
        # zttp's send_request takes the method and the path as arguments and the authority
        # as a `host` field (sent as :authority); :scheme is always https.
        self.req = [(b"host", b(AUTHORITY))] + [(b(n), b(v)) for n, v in REQUEST_FIELDS]
        self.paths = [b(p) for p in PATHS]
        self.resp = [(b(n), b(v)) for n, v in RESPONSE_FIELDS]
        self.check = check
        self.log_client = []
        self.status, self.body = {}, {}
        self.ok = 0
        self.srv = None
        self.connect()

    def connect(self):
        """A new connection pair, SETTINGS exchanged (zttp's server refuses more than
        ZTTP_MAX_STREAMS streams on one connection: make_run reconnects before)."""
        zttp = self.zttp
        log = self.srv.log if self.srv is not None else []
        self.client = zttp.Connection(zttp.CLIENT, zttp.HTTP2)
        self.srv = ZttpServer(zttp, self.resp, self.check)
        self.srv.log = log
        self.cwire, self.swire = [], self.srv.wire
        self.client.initiate_connection()
        self.cwire.append(self.client.data_to_send())
        for _ in range(3):
            self.move()
        self.batches = 0

    @property
    def log_server(self):
        return self.srv.log

    def move(self):
        if self.cwire:
            data = b"".join(self.cwire)
            self.cwire.clear()
            self.srv.data_received(data)
        if self.swire:
            data = b"".join(self.swire)
            self.swire.clear()
            self.client_received(data)

    def client_received(self, data):
        conn = self.client
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Response):
                self.status[ev.stream_id] = ev.status_code
                self.body[ev.stream_id] = []
                if self.check:
                    self.log_client.append((ev.stream_id, ev.status_code, ev.headers))
            elif isinstance(ev, self.Data):
                self.body[ev.stream_id].append(ev.data)
            elif isinstance(ev, self.EndOfMessage):
                if (self.status.pop(ev.stream_id) == 200
                        and b"".join(self.body.pop(ev.stream_id)) == BODY):
                    self.ok += 1
            elif not isinstance(ev, (self.zttp.Settings, self.zttp.WindowUpdate)):
                raise AssertionError(f"zttp client: unexpected {ev!r}")
        out = conn.data_to_send()
        if out:
            self.cwire.append(out)

    def make_run(self):
        req, paths = self.req, self.paths
        npaths = len(paths)
        client_received = self.client_received
        limit = ZTTP_MAX_STREAMS // STREAMS

        def run(k):
            client = self.client
            send_request = client.send_request
            cwire, swire = self.cwire, self.swire
            server_received = self.srv.data_received
            for _ in range(k):
                if self.batches == limit:
                    self.connect()
                    client = self.client
                    send_request = client.send_request
                    cwire, swire = self.cwire, self.swire
                    server_received = self.srv.data_received
                self.batches += 1
                self.ok = 0
                for i in range(STREAMS):
                    send_request(b"GET", paths[i % npaths], b"2", req).end_message()
                cwire.append(client.data_to_send())
                data = b"".join(cwire)
                cwire.clear()
                server_received(data)
                data = b"".join(swire)
                swire.clear()
                client_received(data)
                if self.ok != STREAMS:
                    raise AssertionError(f"zttp: {self.ok} good responses of {STREAMS}")
        return run


def make_pair(lib, mods, kind, check=False):
    if lib == "cno":
        return CnoPair(kind, check)
    if lib == "zttp":
        return ZttpPair(mods["zttp"], kind, check)
    return H2Pair(mods[lib], kind, check)


def supports(lib, kind):
    return lib != "zttp" or kind == "bytes"


# ---------------------------------------------------------------------------------------
# Table 2: the server side alone

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SERVER_KIND = "bytes"           # the response fields table 2's servers are given
FEED_UNITS = ZTTP_MAX_STREAMS // STREAMS    # units of table 2's byte stream per connection


def client_prefix():
    """What a client sends first on table 2's connection: preface, SETTINGS (ENABLE_PUSH
    0), the ACK of the server's SETTINGS, and a WINDOW_UPDATE opening the connection's
    receive window to 2^31-1 (as browsers do), so that no later batch needs to credit."""
    from hyperframe.frame import SettingsFrame, WindowUpdateFrame
    return b"".join([PREFACE, SettingsFrame(0, settings={2: 0}).serialize(),
                     SettingsFrame(0, flags=["ACK"]).serialize(),
                     WindowUpdateFrame(0, window_increment=2 ** 31 - 1 - 65535).serialize()])


def headers_frame(sid, block):
    """A HEADERS frame with END_HEADERS and END_STREAM."""
    return len(block).to_bytes(3, "big") + b"\x01\x05" + sid.to_bytes(4, "big") + block


def client_batches(units=FEED_UNITS):
    """Table 2's byte stream, one ``bytes`` per unit: unit u carries 100 GETs on streams
    200u+1, 200u+3, ..., W3's fields and paths, encoded by one ``hpack.Encoder`` (Huffman,
    dynamic table) as a client would on one connection; unit 0 starts with
    client_prefix(). From unit 1 on, every field is in the encoder's dynamic table and a
    unit's blocks are those of unit 1 (checked for unit 2), so the rest are made from
    them without encoding."""
    import hpack
    enc = hpack.Encoder()

    def blocks():
        return [enc.encode([(":method", "GET"), (":scheme", "https"),
                            (":authority", AUTHORITY), (":path", PATHS[i % len(PATHS)])]
                           + REQUEST_FIELDS) for i in range(STREAMS)]

    def unit(u, bl):
        return b"".join(headers_frame(200 * u + 2 * i + 1, block) for i, block in enumerate(bl))

    first, steady = blocks(), blocks()
    if blocks() != steady:
        raise AssertionError("hpack's encoding of the requests did not settle after one unit")
    return [client_prefix() + unit(0, first)] + [unit(u, steady) for u in range(1, units)]


def server_factory(lib, mods, check=False):
    """A function making a fresh server connection of the library: it has written its
    SETTINGS (into its ``wire``), and its user's handler answers as in table 1."""
    _, cno_resp, _, h2_resp, _ = headers_in(SERVER_KIND)
    if lib == "cno":
        Server, _, CheckServer, _ = cno_classes()
        cls = CheckServer if check else Server

        def make():
            srv = cls(server=True)
            srv.wire, srv.pending, srv.response, srv.log = [], {}, cno_resp, []
            srv.connection_made(True)
            return srv
    elif lib == "zttp":
        zttp, resp = mods["zttp"], [(b(n), b(v)) for n, v in RESPONSE_FIELDS]

        def make():
            return ZttpServer(zttp, resp, check)
    else:
        mod = mods[lib]

        def make():
            return H2Server(mod, h2_resp, check)
    return make


def make_server_run(lib, mods, batches):
    """run(k): the next k units of ``batches`` fed to one long-lived server connection,
    each in one call, its output then dropped (the transport wrote it); after the last
    unit a fresh connection starts over at unit 0. ``last`` keeps the last unit's output
    and number, for the check after timing."""
    make = server_factory(lib, mods)
    state = [None, len(batches)]       # server, next unit
    last = [None]
    n = len(batches)

    def run(k):
        srv, u = state
        wire = srv.wire if srv is not None else None
        for _ in range(k):
            if u == n:
                srv, u = make(), 0
                wire = srv.wire
            wire.clear()
            srv.data_received(batches[u])
            u += 1
        state[0], state[1] = srv, u
        last[0] = (b"".join(wire), u - 1)
    return run, last


def make_setup_run(lib, mods, data):
    """run(k): k fresh server connections, each fed ``data`` (client_prefix())."""
    make = server_factory(lib, mods)

    def run(k):
        for _ in range(k):
            make().data_received(data)
    return run


def hpack_representations(block, counts):
    """Adds to ``counts`` the representations of one HPACK block (RFC 7541 section 6) and
    how its string literals are coded (section 5.2: the H bit)."""
    pos = 0

    def integer(prefix):
        nonlocal pos
        mask = (1 << prefix) - 1
        value = block[pos] & mask
        pos += 1
        if value == mask:
            shift = 0
            while True:
                octet = block[pos]
                pos += 1
                value += (octet & 0x7F) << shift
                shift += 7
                if not octet & 0x80:
                    break
        return value

    def string():
        nonlocal pos
        huffman = block[pos] & 0x80
        length = integer(7)
        pos += length
        counts["Huffman strings" if huffman else "plain strings"] += 1

    while pos < len(block):
        first = block[pos]
        if first & 0x80:                        # 6.1 indexed field
            index = integer(7)
            counts["indexed (dynamic table)" if index > 61 else "indexed (static table)"] += 1
            continue
        if first & 0x40:                        # 6.2.1 literal, incremental indexing
            index = integer(6)
            counts["literal with indexing"] += 1
        elif first & 0x20:                      # 6.3 dynamic table size update
            integer(5)
            counts["table size update"] += 1
            continue
        else:                                   # 6.2.2 / 6.2.3 literal, not indexed
            index = integer(4)
            counts["literal never indexed" if first & 0x10 else "literal without indexing"] += 1
        if index == 0:
            string()
        string()
    if pos != len(block):
        raise AssertionError("HPACK block overrun")


def unit_responses(name, data, u):
    """The responses in one unit's output of a table 2 server: [(stream, HPACK block,
    body)] for streams 200u+1 .. 200u+199, each with one HEADERS, its body and END_STREAM,
    nothing else but SETTINGS and WINDOW_UPDATE frames."""
    blocks, bodies, ended = {}, collections.defaultdict(list), set()
    pos = 0
    while pos < len(data):
        n = int.from_bytes(data[pos:pos + 3], "big")
        ftype, flags = data[pos + 3], data[pos + 4]
        sid = int.from_bytes(data[pos + 5:pos + 9], "big") & 0x7FFFFFFF
        payload = data[pos + 9:pos + 9 + n]
        pos += 9 + n
        if ftype == 1:                                      # HEADERS
            if not flags & 0x4 or flags & 0x28 or sid in blocks:
                raise AssertionError(f"{name}: HEADERS with flags {flags:#x} on stream {sid}")
            blocks[sid] = payload
        elif ftype == 0:                                    # DATA
            if sid not in blocks or sid in ended:
                raise AssertionError(f"{name}: DATA outside a response on stream {sid}")
            bodies[sid].append(payload)
        elif ftype not in (4, 8):                           # SETTINGS, WINDOW_UPDATE
            raise AssertionError(f"{name}: frame type {ftype} on stream {sid}")
        if ftype in (0, 1) and flags & 0x1:
            ended.add(sid)
    if pos != len(data):
        raise AssertionError(f"{name}: truncated frame")
    sids = list(range(200 * u + 1, 200 * u + 2 * STREAMS, 2))
    if sorted(blocks) != sids or sorted(ended) != sids:
        raise AssertionError(f"{name}: {len(blocks)} responses, {len(ended)} ended, "
                             f"want {STREAMS} (unit {u})")
    return [(sid, blocks[sid], b"".join(bodies[sid])) for sid in sids]


def check_unit(name, data, u, decoder, counts=None):
    """A unit's output decoded in full (``decoder``: the connection's HPACK decoder):
    every response is 200 with the 5 fields and the body. Returns its HPACK blocks."""
    want = [(b":status", b"200")] + [(b(n), b(v)) for n, v in RESPONSE_FIELDS]
    out = []
    for sid, block, body in unit_responses(name, data, u):
        fields = decoder.decode(block, raw=True)
        if fields != want or body != BODY:
            raise AssertionError(f"{name}: response on stream {sid}: {fields}, {body[:20]!r}")
        if counts is not None:
            hpack_representations(block, counts)
        out.append(block)
    return out


# ---------------------------------------------------------------------------------------
# Correctness

def norm(fields):
    """(pseudo-header fields as a dict, regular fields as a list), all bytes: the order of
    pseudo-header fields carries no meaning, that of regular fields does."""
    fields = [(b(f[0]), b(f[1])) for f in fields]
    return ({n: v for n, v in fields if n.startswith(b":")},
            [(n, v) for n, v in fields if not n.startswith(b":")])


def norm_zttp_request(method, target, headers):
    """zttp hands :method and :path as attributes, :authority as a `host` field at the end
    of the list, and does not expose :scheme (counted as https, what it was)."""
    pseudo = {b":method": method, b":path": target, b":scheme": b"https"}
    regular = []
    for n, v in headers:
        if n == b"host":
            pseudo[b":authority"] = v
        else:
            regular.append((n, v))
    return pseudo, regular


def check_server_log(name, slog, count):
    want_req = [norm([(":method", "GET"), (":scheme", "https"), (":authority", AUTHORITY),
                      (":path", p)] + REQUEST_FIELDS) for p in PATHS]
    if len(slog) != count:
        raise AssertionError(f"{name}: the server saw {len(slog)} requests, want {count}")
    for i, (sid, fields) in enumerate(slog):
        if fields != want_req[i % STREAMS % len(PATHS)]:
            raise AssertionError(f"{name}: request {sid} arrived as {fields}")


def server_log(lib, srv):
    if lib == "cno":
        return [(sid, norm([(":method", m), (":path", p)] + h)) for sid, m, p, h in srv.log]
    if lib == "zttp":
        return [(sid, norm_zttp_request(m, t, h)) for sid, m, t, h in srv.log]
    return [(sid, norm(h)) for sid, h in srv.log]


def check(libs, mods):
    want_resp = norm([(":status", "200")] + RESPONSE_FIELDS)
    for kind in KINDS:
        for lib in libs:
            if not supports(lib, kind):
                continue
            pair = make_pair(lib, mods, kind, check=True)
            run = pair.make_run()
            run(2)
            if lib == "cno":
                slog = server_log(lib, pair.server)
                clog = [(sid, norm([(":status", str(code))] + h))
                        for sid, code, h in pair.client.log]
            elif lib == "zttp":
                slog = server_log(lib, pair.srv)
                clog = [(sid, norm([(":status", str(code))] + h))
                        for sid, code, h in pair.log_client]
            else:
                slog = server_log(lib, pair.srv)
                clog = [(sid, norm(h)) for sid, h in pair.log_client]
            check_server_log(f"{lib} ({kind})", slog, 2 * STREAMS)
            if len(clog) != 2 * STREAMS:
                raise AssertionError(f"{lib} ({kind}): the client saw {len(clog)} responses")
            for sid, fields in clog:
                if fields != want_resp:
                    raise AssertionError(f"{lib} ({kind}): response {sid} arrived as {fields}")


def check_server_side(libs, mods, batches):
    """Table 2, with recording handlers: over 3 units every server sees the requests and
    answers each (its output decoded with one HPACK decoder); the timed code's output
    holds the same responses. Returns {lib: (reference blocks per unit kind,
    [(HPACK bytes per response, Counter of representations)] for units 0 and 1)}."""
    import hpack
    out = {}
    for lib in libs:
        srv = server_factory(lib, mods, check=True)()
        dec = hpack.Decoder()
        refs, stats = [], []
        for u in range(3):
            srv.wire.clear()
            srv.data_received(batches[u])
            counts = collections.Counter()
            blocks = check_unit(f"{lib} (server side)", b"".join(srv.wire), u, dec, counts)
            refs.append(blocks)
            stats.append((sum(map(len, blocks)) / STREAMS, counts))
        check_server_log(f"{lib} (server side)", server_log(lib, srv), 3 * STREAMS)
        if refs[2] != refs[1]:
            raise AssertionError(f"{lib}: the response blocks of units 1 and 2 differ")
        out[lib] = (refs[:2], stats[:2])
        run, last = make_server_run(lib, mods, batches)
        run(3)
        check_timed_unit(lib, last, refs[:2])
    return out


def check_timed_unit(lib, last, refs):
    """The last unit a timed server ran holds the 100 responses, with the very HPACK
    blocks of the checked run (unit 0's, or from unit 1 on the steady ones) and bodies."""
    data, u = last[0]
    blocks = [block for _, block, body in unit_responses(f"{lib} (server side, timed)", data, u)
              if body == BODY]
    if blocks != refs[min(u, 1)]:
        raise AssertionError(f"{lib} (server side, timed): unit {u} differs from the checked run")


# ---------------------------------------------------------------------------------------
# Timing

KINDS = ["str", "bytes"]
SERVER_CASES = ["requests", "setup"]


def build_cells(H, libs, mods, batches):
    cells, lasts = [], {}
    for kind in KINDS:
        for lib in libs:
            if supports(lib, kind):
                cells.append(H.Cell(kind, lib, make_pair(lib, mods, kind).make_run(), STREAMS))
    prefix = client_prefix()
    for lib in libs:
        run, last = make_server_run(lib, mods, batches)
        cells.append(H.Cell(("server", "requests"), lib, run, STREAMS))
        lasts[lib] = last
        cells.append(H.Cell(("server", "setup"), lib, make_setup_run(lib, mods, prefix), 1))
    return cells, lasts


def tables(H, cells, libs, markdown):
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    peers = libs[1:]
    rows = []
    for kind in KINDS:
        s = {lib: by.get((kind, lib)) for lib in libs}
        rows.append([f"{kind} header fields in"] + [H.fmt_cell(s[lib]) for lib in libs]
                    + [H.fmt_ratio(s["cno"], s[lib]) for lib in peers])
    right = tuple(range(1 + len(libs), 1 + len(libs) + len(peers)))
    t1 = H.render_table(["client + server", *libs] + [f"cno/{lib}" for lib in peers],
                        rows, markdown, right=right)
    rows = []
    for case in SERVER_CASES:
        s = {lib: by.get((("server", case), lib)) for lib in libs}
        label = (f"{STREAMS} requests a unit, one connection, requests/s" if case == "requests"
                 else "connection set-up alone (new connection, preface), connections/s")
        rows.append([label] + [H.fmt_cell(s[lib]) for lib in libs]
                    + [H.fmt_ratio(s["cno"], s[lib]) for lib in peers])
    t2 = H.render_table(["server side only, bytes fields", *libs]
                        + [f"cno/{lib}" for lib in peers], rows, markdown, right=right)
    return t1, t2


def profile(n, kind, case, mods, lib="cno"):
    """One library alone (cno by default): n units after 20 of warm-up, for callgrind or
    perf."""
    if case == "server":
        run, _ = make_server_run(lib, mods, client_batches())
        what = f"{lib} server side ({SERVER_KIND} fields): {n} units of {STREAMS} requests"
    else:
        run = make_pair(lib, mods, kind).make_run()
        what = f"{lib}, {kind} fields: {n} batches of {STREAMS} requests"
    run(20)
    t0 = time.perf_counter()
    run(n)
    dt = time.perf_counter() - t0
    print(f"{what} in {dt:.3f} s ({n * STREAMS / dt:,.0f} requests/s)")


def describe_hpack(hp, libs, unit):
    """'cno 7 B (indexed (dynamic table) 500, ...); ...' per library, for unit 0 or 1."""
    parts = []
    for lib in libs:
        size, counts = hp[lib][1][unit]
        parts.append(f"{lib} {size:.1f} B (" + ", ".join(
            f"{k} {v}" for k, v in sorted(counts.items())) + ")")
    return "; ".join(parts)


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
                    help="run cno alone for N units of 100 requests (no peers, no statistics)")
    ap.add_argument("--profile-case", choices=["cycle", "server"], default="cycle",
                    help="what --profile runs: table 1's client + server (default) or "
                    "table 2's server side, one fresh connection per unit")
    ap.add_argument("--profile-kind", choices=KINDS, default="str",
                    help="header field type for --profile cycle (default str)")
    ap.add_argument("--profile-lib", choices=["cno", "h2", "jh2", "zttp"], default="cno",
                    help="the library --profile runs (default cno; zttp: bytes fields)")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 25)
    target_ms = args.target_ms or (5.0 if args.quick else 50.0)
    warmup_ms = 20.0 if args.quick else 200.0

    cno, mods = load_libs(args.installed)
    if args.profile is not None:
        return profile(args.profile, args.profile_kind, args.profile_case, mods,
                       args.profile_lib)

    import _harness as H
    libs = ["cno", "h2", "jh2", "zttp"]
    versions = {"cno": H.cno_build_info(cno, ROOT), "h2": H.dist_version("h2"),
                "jh2": H.dist_version("jh2"), "zttp": H.dist_version("zttp"),
                "hpack (encodes table 2's requests)": H.dist_version("hpack")}
    info = H.machine_info(versions)
    batches = client_batches()
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches; "
                           f"table 1: {STREAMS} concurrent requests per batch on one "
                           "long-lived connection pair; table 2: one long-lived server "
                           f"connection fed one unit of {STREAMS} requests at a time "
                           f"({len(batches[0])} bytes for the first unit, with the "
                           f"{len(client_prefix())}-byte prefix of the set-up row, then "
                           f"{len(batches[1])}), a new connection every {len(batches)} "
                           "units; GC off while timing"))

    check(libs, mods)
    hp = check_server_side(libs, mods, batches)
    print("correctness: every server saw the requests sent, every client the responses; "
          "table 2's output decoded", file=sys.stderr)
    info.append(("table 2 response HPACK bytes per response and representations, first "
                 "100 responses", describe_hpack(hp, libs, 0)))
    info.append(("the same, next 100 (and every unit after)", describe_hpack(hp, libs, 1)))
    cells, lasts = build_cells(H, libs, mods, batches)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    for lib, last in lasts.items():
        check_timed_unit(lib, last, hp[lib][0])
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))

    t1, t2 = tables(H, cells, libs, args.markdown)
    if args.markdown:
        print("Requests/s: median (min-max over repetitions), and median time per request "
              "(table 1: client and server together; table 2: the server alone). "
              "Ratios are cno's "
              "speed over the peer's (>1: cno faster). n/a: zttp takes bytes fields "
              "only.\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(t1 + "\n\n" + t2)
    else:
        print(H.render_info(info) + "\n")
        print("W3 requests: requests/s, median (min-max), median time per request; "
              "ratios: cno speed / peer speed\n")
        print(t1 + "\n\n" + t2)


if __name__ == "__main__":
    main()
