#!/usr/bin/env python
"""W3 over HTTP/1.1: requests/s in memory, cno vs h11 (pure Python) vs httptools (llhttp, C)
vs zttp (Zig core).

Three tables:

(a) full cycle: a client and a server of the same library, wired back to back by two
    lists; cno client + cno server vs h11 client + h11 server vs zttp client + zttp
    server. A GET with 10 header lines (Host and 9 others), answered 200 with 5 header
    lines and a 100-byte body. Rows: one request per round trip (keep-alive, the way
    HTTP/1.1 clients work; h11 can do nothing else), and 100 pipelined requests per round
    trip (cno and zttp: h11's client does not pipeline, httptools has no client).
(b) server parse + respond: the server side alone, fed 100 pipelined requests in one
    ``bytes`` chunk (the same prepared bytes for every library), answering each (status
    line, 5 header lines, 100-byte body); the handler keeps the method, the path and the
    header list. cno vs httptools (the minimal protocol object a user writes, as
    uvicorn's httptools protocol does in essence) vs h11 vs zttp (the list of lower-cased
    fields its lazy HeaderBlock gives with ``to_list(lowercase_names=True)``) vs "zttp
    lazy" (keeps the HeaderBlock itself: nothing decoded, less work than the others).
(c) the same chunk and answers, but the handler reads the method, the path and one
    header by name (``user-agent``), and keeps those three: cno (a loop over the list it
    is handed), httptools (``on_header`` compares each lower-cased name), h11 (a loop over
    the Request's headers), zttp (``headers.get(b"user-agent")`` on its lazy
    HeaderBlock). The same header access on every side: zttp's lazy headers at their
    best.

    python bench/w3_h1.py              # default run, about 20 s
    python bench/w3_h1.py --quick      # smoke run, a few seconds
    python bench/w3_h1.py --markdown   # the tables in the format of bench/results.md
    python bench/w3_h1.py --profile 300            # cno's server (b) alone, 300 chunks
    python bench/w3_h1.py --profile 300 --profile-case access      # cno's (c) alone
    python bench/w3_h1.py --profile 300 --profile-case sequential  # cno's (a)

What is timed (see bench/README.md for more):

- one *unit* of work is 100 requests on a connection (pair) that lives for the whole run.
  (a) sequential: 100 round trips, each moving the client's bytes to the server in one
  ``data_received``/``receive_data`` call and the server's bytes back in one call;
  (a) pipelined: the client writes 100 requests, then one move each way; (b), (c) one
  ``data_received``/``feed_data``/``receive_data`` call with the prepared 100-request
  chunk (46.5 KB), the server's output collected in a list and dropped (at the start of
  the next unit: the last unit's is checked after timing).
- the user's code is inside the timed region and does what a user would:
  - cno: ``cno.raw.Connection`` subclasses. Server: ``on_message_head`` keeps
    ``(method, path, headers)``; ``on_message_tail`` answers with ``write_head`` +
    ``write_data(final=True)``; ``on_writev`` extends the transport list. Client: (a)
    ``write_head(next_stream, 0, "GET", path, fields, True)``; ``on_message_head`` keeps
    the status, ``on_message_data`` the body chunks, ``on_message_tail`` checks them.
  - h11: the loop of h11's documentation: ``receive_data``, then ``next_event()`` until
    ``NEED_DATA``, dispatched by ``isinstance``; the server keeps the ``Request`` and on
    ``EndOfMessage`` sends ``Response`` + ``Data`` + ``EndOfMessage`` and calls
    ``start_next_cycle()``; the client sends ``Request`` + ``EndOfMessage``, keeps status
    and body, checks them on ``EndOfMessage`` and calls ``start_next_cycle()``.
  - httptools: a protocol object whose callbacks collect the URL (``on_url``, appended)
    and the headers (``on_header``, names lower-cased as uvicorn does), read the method and
    ``should_keep_alive()`` in ``on_headers_complete``, and in ``on_message_complete``
    build the response with ``b"".join`` over the status line, the header list (name,
    ``b": "``, value, CRLF for each) and the body, appended to the transport list.
  - zttp: ``receive_data``, then ``next_event()`` until ``NEED_DATA``, dispatched by
    ``isinstance``; the server keeps what its table says of the ``Request`` (a GET's
    Request has ``end_stream``: no EndOfMessage follows), answers with ``send_response``
    + ``send_data`` + ``end_message()`` and calls ``start_next_cycle()``, then one
    ``data_to_send()`` per call; the client ``send_request`` + ``end_message()``, keeps
    status and body, checks them on ``EndOfMessage`` and calls ``start_next_cycle()``.
    zttp's client does not decode the response's header values (nothing asks for them),
    where cno's and h11's build the list: zttp does that much less in (a).
- rows ``str`` / ``bytes``: the header lists the user hands to the library (request fields
  in (a), response fields in (a) and (b)) are ``str`` or ``bytes``. What comes out is each
  library's default for the row: cno delivers ``str`` in the ``str`` rows and ``bytes``
  in the ``bytes`` rows (``bytes_headers = True``); h11 and httptools always deliver
  ``bytes``, and the httptools user's code is all ``bytes`` in both rows (same code).
  zttp takes ``bytes`` only: it is in the ``bytes`` rows.
- before timing, every configuration runs two units with recording handlers: each server
  must see the method, path and fields sent (in (c), the method, path and user-agent);
  in (a) each client the status, fields and body sent; in (b) and (c) every server's
  output is parsed with ``httptools.HttpResponseParser`` and must hold exactly 200
  responses 200 OK with the 5 fields and the body. After timing, the last unit of every
  (b) and (c) server is parsed the same way (100 responses); every (a) unit checks its
  100 responses as it runs.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

N = 100                       # requests per unit
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
# After Host, the 9 other header lines of the request (10 in all).
REQUEST_FIELDS = [
    ("user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("accept-language", "en-US,en;q=0.5"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("upgrade-insecure-requests", "1"),
    ("sec-fetch-dest", "document"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-site", "none"),
    ("cookie", "session=7f3a9c2e81b44d6a0c55; theme=dark"),
]
BODY = bytes(range(100))
RESPONSE_FIELDS = [
    ("content-type", "text/plain; charset=utf-8"),
    ("content-length", "100"),
    ("date", "Sat, 21 Nov 2026 10:00:00 GMT"),
    ("server", "w3-bench"),
    ("cache-control", "private, max-age=0"),
]
KINDS = ["str", "bytes"]


def b(x):
    return x.encode("latin-1") if isinstance(x, str) else x


def conv(kind):
    return (lambda x: x) if kind == "str" else b


def pairs(fields, kind):
    c = conv(kind)
    return [(c(n), c(v)) for n, v in fields]


def browser_case(name):
    """'user-agent' -> 'User-Agent', as browsers write names over HTTP/1.1."""
    return "-".join(p[:1].upper() + p[1:] for p in name.split("-"))


def pipelined_chunk():
    """The prepared input of table (b): N GETs back to back, one bytes object. Names in
    browser case (every server must lower-case them)."""
    out = []
    for i in range(N):
        lines = [f"GET {PATHS[i % len(PATHS)]} HTTP/1.1", f"Host: {AUTHORITY}"]
        lines += [f"{browser_case(n)}: {v}" for n, v in REQUEST_FIELDS]
        out.append("\r\n".join(lines) + "\r\n\r\n")
    return "".join(out).encode("latin-1")


# ---------------------------------------------------------------------------------------
# Libraries

def load_libs(use_installed: bool):
    if not use_installed and ROOT not in sys.path:
        sys.path.insert(0, ROOT)    # the in-place build of this checkout
    import cno
    import cno.raw
    import h11
    import httptools
    import zttp
    return cno, h11, httptools, zttp


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
            self.log.append((method, path, headers))
            super().on_message_head(stream, code, method, path, headers)

    class CheckClient(Client):
        def on_message_head(self, stream, code, method, path, headers):
            self.log.append((code, headers))
            super().on_message_head(stream, code, method, path, headers)

    return Server, Client, CheckServer, CheckClient


def cno_access_classes():
    """Table (c)'s server: the handler reads the method, the path and the user-agent
    (found by name in the list cno hands over), and keeps those three."""
    Server = cno_classes()[0]

    class AccessServer(Server):
        def on_message_head(self, stream, code, method, path, headers):
            name = self.ua_name
            for n, v in headers:
                if n == name:
                    self.pending[stream] = (method, path, v)
                    return
            self.pending[stream] = (method, path, None)

    class CheckAccessServer(AccessServer):
        def on_message_head(self, stream, code, method, path, headers):
            super().on_message_head(stream, code, method, path, headers)
            self.log.append(self.pending[stream])

    return AccessServer, CheckAccessServer


def cno_server(kind, check=False, access=False):
    if access:
        AccessServer, CheckAccessServer = cno_access_classes()
        s = (CheckAccessServer if check else AccessServer)(server=True)
        s.ua_name = conv(kind)("user-agent")
    else:
        _, _, CheckServer, _ = classes = cno_classes()
        s = (CheckServer if check else classes[0])(server=True)
    s.bytes_headers = kind == "bytes"
    s.wire, s.pending, s.response, s.log = [], {}, pairs(RESPONSE_FIELDS, kind), []
    s.connection_made(False)
    return s


class CnoPair:
    def __init__(self, kind, check=False):
        _, Client, _, CheckClient = cno_classes()
        c = conv(kind)
        self.req = [(c(":scheme"), c("http")), (c(":authority"), c(AUTHORITY))] \
            + pairs(REQUEST_FIELDS, kind)
        self.paths = [c(p) for p in PATHS]
        self.method = c("GET")
        self.server = cno_server(kind, check)
        self.client = (CheckClient if check else Client)(server=False)
        self.client.bytes_headers = kind == "bytes"
        self.client.wire, self.client.status, self.client.body = [], {}, {}
        self.client.ok, self.client.log = 0, []
        self.client.connection_made(False)
        if self.client.wire or self.server.wire:
            raise AssertionError("cno: output at connection_made in HTTP/1.1")

    def make_run(self, pipelined):
        client, server = self.client, self.server
        cwire, swire = client.wire, server.wire
        write_head = client.write_head
        req, paths, method = self.req, self.paths, self.method
        npaths = len(paths)
        client_received, server_received = client.data_received, server.data_received
        join = b"".join

        def run_sequential(k):
            for _ in range(k):
                client.ok = 0
                for i in range(N):
                    write_head(client.next_stream, 0, method, paths[i % npaths], req, True)
                    data = join(cwire)
                    cwire.clear()
                    server_received(data)
                    data = join(swire)
                    swire.clear()
                    client_received(data)
                if client.ok != N:
                    raise AssertionError(f"cno: {client.ok} good responses of {N}")

        def run_pipelined(k):
            for _ in range(k):
                client.ok = 0
                for i in range(N):
                    write_head(client.next_stream, 0, method, paths[i % npaths], req, True)
                data = join(cwire)
                cwire.clear()
                server_received(data)
                data = join(swire)
                swire.clear()
                client_received(data)
                if client.ok != N:
                    raise AssertionError(f"cno: {client.ok} good responses of {N}")

        return run_pipelined if pipelined else run_sequential


def cno_server_run(kind, chunk, check=False, access=False):
    server = cno_server(kind, check, access)
    wire = server.wire
    received = server.data_received

    def run(k):
        for _ in range(k):
            wire.clear()        # the transport wrote the last unit's output
            received(chunk)
    return server, run


# -- h11: the user's event loops ---------------------------------------------------------

class H11Server:
    """A server connection and its user's handler (h11's documented loop)."""

    def __init__(self, h11, kind, check=False, access=False):
        self.h11 = h11
        self.access = access        # table (c): keep method, target and user-agent only
        self.conn = h11.Connection(h11.SERVER)
        self.Request, self.EndOfMessage = h11.Request, h11.EndOfMessage
        self.Response, self.Data, self.NEED_DATA = h11.Response, h11.Data, h11.NEED_DATA
        self.response = pairs(RESPONSE_FIELDS, kind)
        self.reason = conv(kind)("OK")
        self.wire = []
        self.check = check
        self.log = []
        self.request = None

    def data_received(self, data):
        conn, wire = self.conn, self.wire
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Request):
                if self.access:
                    ua = None
                    for n, v in ev.headers:
                        if n == b"user-agent":
                            ua = v
                            break
                    self.request = (ev.method, ev.target, ua)
                    if self.check:
                        self.log.append(self.request)
                else:
                    self.request = ev
                    if self.check:
                        self.log.append((ev.method, ev.target, list(ev.headers)))
            elif isinstance(ev, self.EndOfMessage):
                wire.append(conn.send(self.Response(status_code=200, headers=self.response,
                                                    reason=self.reason)))
                wire.append(conn.send(self.Data(data=BODY)))
                wire.append(conn.send(self.EndOfMessage()))
                conn.start_next_cycle()
            elif ev is self.h11.PAUSED or isinstance(ev, self.h11.ConnectionClosed):
                raise AssertionError(f"h11 server: unexpected {ev!r}")


class H11Pair:
    def __init__(self, h11, kind, check=False):
        self.h11 = h11
        c = conv(kind)
        # A user builds a Request per request; so do we, from prepared arguments, so that
        # h11's validation of the fields is in the timed region as it would be.
        self.req_args = [dict(method=c("GET"), target=c(p),
                              headers=[(c("host"), c(AUTHORITY))] + pairs(REQUEST_FIELDS, kind))
                         for p in PATHS]
        self.server = H11Server(h11, kind, check)
        self.client = h11.Connection(h11.CLIENT)
        self.cwire = []
        self.check = check
        self.log = []
        self.status, self.body, self.ok = None, [], 0

    def client_received(self, data):
        h11, conn = self.h11, self.client
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is h11.NEED_DATA:
                break
            if isinstance(ev, h11.Response):
                self.status = ev.status_code
                self.body = []
                if self.check:
                    self.log.append((ev.status_code, list(ev.headers)))
            elif isinstance(ev, h11.Data):
                self.body.append(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                if self.status == 200 and b"".join(self.body) == BODY:
                    self.ok += 1
                conn.start_next_cycle()
                break
            else:
                raise AssertionError(f"h11 client: unexpected {ev!r}")

    def make_run(self, pipelined):
        if pipelined:
            return None         # h11's client sends one request at a time
        client, server = self.client, self.server
        Request, EndOfMessage = self.h11.Request, self.h11.EndOfMessage
        cwire, swire = self.cwire, server.wire
        args = self.req_args
        nargs = len(args)
        server_received, client_received = server.data_received, self.client_received
        join = b"".join

        def run(k):
            for _ in range(k):
                self.ok = 0
                for i in range(N):
                    cwire.append(client.send(Request(**args[i % nargs])))
                    cwire.append(client.send(EndOfMessage()))
                    data = join(cwire)
                    cwire.clear()
                    server_received(data)
                    data = join(swire)
                    swire.clear()
                    client_received(data)
                if self.ok != N:
                    raise AssertionError(f"h11: {self.ok} good responses of {N}")
        return run


def h11_server_run(h11, kind, chunk, check=False, access=False):
    server = H11Server(h11, kind, check, access)
    wire = server.wire
    received = server.data_received

    def run(k):
        for _ in range(k):
            wire.clear()        # the transport wrote the last unit's output
            received(chunk)
    return server, run


# -- httptools: the user's protocol object ------------------------------------------------

STATUS_LINE_200 = b"HTTP/1.1 200 OK\r\n"


class HttptoolsServer:
    """The minimal server a user writes on httptools (uvicorn's protocol in essence):
    callbacks collect the request; on_message_complete answers."""

    def __init__(self, httptools, check=False):
        self.parser = httptools.HttpRequestParser(self)
        self.response = pairs(RESPONSE_FIELDS, "bytes")
        self.wire = []
        self.url = b""
        self.headers = []
        self.method = None
        self.keep_alive = True
        self.check = check
        self.log = []

    def data_received(self, data):
        self.parser.feed_data(data)

    # -- parser callbacks
    def on_message_begin(self):
        self.url = b""
        self.headers = []

    def on_url(self, url):
        self.url += url

    def on_header(self, name, value):
        self.headers.append((name.lower(), value))

    def on_headers_complete(self):
        self.method = self.parser.get_method()
        self.keep_alive = self.parser.should_keep_alive()
        if self.check:
            self.log.append((self.method, self.url, self.headers))

    def on_message_complete(self):
        content = [STATUS_LINE_200]
        for name, value in self.response:
            content.extend((name, b": ", value, b"\r\n"))
        if not self.keep_alive:
            content.append(b"connection: close\r\n")
        content.append(b"\r\n")
        content.append(BODY)
        self.wire.append(b"".join(content))


class HttptoolsAccessServer(HttptoolsServer):
    """Table (c): the callbacks keep the URL and the user-agent only."""

    def on_message_begin(self):
        self.url = b""
        self.ua = None

    def on_header(self, name, value):
        if name.lower() == b"user-agent":
            self.ua = value

    def on_headers_complete(self):
        self.method = self.parser.get_method()
        self.keep_alive = self.parser.should_keep_alive()
        if self.check:
            self.log.append((self.method, self.url, self.ua))


def httptools_server_run(httptools, chunk, check=False, access=False):
    server = (HttptoolsAccessServer if access else HttptoolsServer)(httptools, check)
    wire = server.wire
    feed = server.parser.feed_data

    def run(k):
        for _ in range(k):
            wire.clear()        # the transport wrote the last unit's output
            feed(chunk)
    return server, run


# -- zttp: the user's pull loops -----------------------------------------------------------

# What a zttp server's handler keeps of a request (zttp's H1 headers are a lazy
# HeaderBlock: names as received, values decoded only when asked for):
#   "list":   (method, target, headers.to_list(lowercase_names=True)): the list of
#             lower-cased fields the other servers of (a) and (b) keep;
#   "lazy":   (method, target, headers): the HeaderBlock, nothing decoded;
#   "access": (method, target, headers.get(b"user-agent")): table (c).
ZTTP_MODES = ("list", "lazy", "access")


class ZttpServer:
    """A zttp H1 server connection and its user's handler: receive_data, then next_event()
    until NEED_DATA; a request is answered when it ends (``end_stream`` on the Request,
    or its EndOfMessage), then start_next_cycle(); data_to_send() once per call. One
    subclass per mode (ZTTP_MODES), so the timed loop has no branch on the mode."""

    def __init__(self, zttp, check=False):
        self.zttp = zttp
        self.conn = zttp.Connection(zttp.SERVER)
        self.Request, self.EndOfMessage, self.NEED_DATA = (zttp.Request, zttp.EndOfMessage,
                                                           zttp.NEED_DATA)
        self.response = pairs(RESPONSE_FIELDS, "bytes")
        self.wire = []
        self.check = check
        self.log = []
        self.request = None

    def respond(self):
        conn = self.conn
        conn.send_response(200, self.response)
        conn.send_data(BODY)
        conn.end_message()
        conn.start_next_cycle()

    def unexpected(self, ev):
        raise AssertionError(f"zttp server: unexpected {ev!r}")


class ZttpListServer(ZttpServer):
    def data_received(self, data):
        conn = self.conn
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Request):
                self.request = (ev.method, ev.target, ev.headers.to_list(lowercase_names=True))
                if self.check:
                    self.log.append(self.request)
                if ev.end_stream:
                    self.respond()
            elif isinstance(ev, self.EndOfMessage):
                self.respond()
            else:
                self.unexpected(ev)
        self.wire.append(conn.data_to_send())


class ZttpLazyServer(ZttpServer):
    def data_received(self, data):
        conn = self.conn
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Request):
                self.request = (ev.method, ev.target, ev.headers)
                if self.check:
                    self.log.append((ev.method, ev.target,
                                     ev.headers.to_list(lowercase_names=True)))
                if ev.end_stream:
                    self.respond()
            elif isinstance(ev, self.EndOfMessage):
                self.respond()
            else:
                self.unexpected(ev)
        self.wire.append(conn.data_to_send())


class ZttpAccessServer(ZttpServer):
    def data_received(self, data):
        conn = self.conn
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Request):
                self.request = (ev.method, ev.target, ev.headers.get(b"user-agent"))
                if self.check:
                    self.log.append(self.request)
                if ev.end_stream:
                    self.respond()
            elif isinstance(ev, self.EndOfMessage):
                self.respond()
            else:
                self.unexpected(ev)
        self.wire.append(conn.data_to_send())


ZTTP_SERVERS = {"list": ZttpListServer, "lazy": ZttpLazyServer, "access": ZttpAccessServer}


class ZttpPair:
    """(a) for zttp: its client and its server ("list" mode), bytes fields only."""

    def __init__(self, zttp, check=False):
        self.zttp = zttp
        self.Response, self.Data = zttp.Response, zttp.Data
        self.EndOfMessage, self.NEED_DATA = zttp.EndOfMessage, zttp.NEED_DATA
        self.req = [(b"host", b(AUTHORITY))] + pairs(REQUEST_FIELDS, "bytes")
        self.paths = [b(p) for p in PATHS]
        self.server = ZttpListServer(zttp, check)
        self.client = zttp.Connection(zttp.CLIENT)
        self.check = check
        self.log = []
        self.status, self.body, self.ok = None, [], 0

    def client_received(self, data):
        conn = self.client
        conn.receive_data(data)
        while True:
            ev = conn.next_event()
            if ev is self.NEED_DATA:
                break
            if isinstance(ev, self.Response):
                self.status = ev.status_code
                self.body = []
                if self.check:
                    self.log.append((ev.status_code, ev.headers.to_list(lowercase_names=True)))
            elif isinstance(ev, self.Data):
                self.body.append(ev.data)
            elif isinstance(ev, self.EndOfMessage):
                if self.status == 200 and b"".join(self.body) == BODY:
                    self.ok += 1
                conn.start_next_cycle()
            else:
                raise AssertionError(f"zttp client: unexpected {ev!r}")

    def make_run(self, pipelined):
        client, server = self.client, self.server
        send_request, end_message = client.send_request, client.end_message
        data_to_send = client.data_to_send
        swire = server.wire
        req, paths = self.req, self.paths
        npaths = len(paths)
        server_received, client_received = server.data_received, self.client_received
        join = b"".join

        def run_sequential(k):
            for _ in range(k):
                self.ok = 0
                for i in range(N):
                    send_request(b"GET", paths[i % npaths], b"1.1", req)
                    end_message()
                    server_received(data_to_send())
                    data = join(swire)
                    swire.clear()
                    client_received(data)
                if self.ok != N:
                    raise AssertionError(f"zttp: {self.ok} good responses of {N}")

        def run_pipelined(k):
            for _ in range(k):
                self.ok = 0
                for i in range(N):
                    send_request(b"GET", paths[i % npaths], b"1.1", req)
                    end_message()
                server_received(data_to_send())
                data = join(swire)
                swire.clear()
                client_received(data)
                if self.ok != N:
                    raise AssertionError(f"zttp: {self.ok} good responses of {N}")

        return run_pipelined if pipelined else run_sequential


def zttp_server_run(zttp, mode, chunk, check=False):
    server = ZTTP_SERVERS[mode](zttp, check)
    wire = server.wire
    received = server.data_received

    def run(k):
        for _ in range(k):
            wire.clear()        # the transport wrote the last unit's output
            received(chunk)
    return server, run


# ---------------------------------------------------------------------------------------
# Correctness

def norm_request(method, path, fields):
    """(method, path, [(name, value)...]) all bytes; `:authority` counts as `host` (cno
    moves Host there), `:scheme` is dropped (not on the HTTP/1.1 wire)."""
    out = []
    for f in fields:
        n, v = b(f[0]), b(f[1])
        if n == b":authority":
            n = b"host"
        elif n == b":scheme":
            continue
        out.append((n, v))
    return b(method), b(path), out


def want_requests(count):
    want = [norm_request("GET", p, [("host", AUTHORITY)] + REQUEST_FIELDS) for p in PATHS]
    return [want[i % N % len(PATHS)] for i in range(count)]


def want_response():
    return 200, [(b(n), b(v)) for n, v in RESPONSE_FIELDS]


def parse_responses(httptools, data):
    """Every response in ``data``: [(status, [(name, value)...], body)]."""
    class P:
        def __init__(self):
            self.out = []

        def on_message_begin(self):
            self.headers, self.body = [], []

        def on_header(self, name, value):
            self.headers.append((name.lower(), value))

        def on_body(self, body):
            self.body.append(body)

        def on_message_complete(self):
            self.out.append((parser.get_status_code(), self.headers, b"".join(self.body)))

    p = P()
    parser = httptools.HttpResponseParser(p)
    parser.feed_data(data)
    return p.out


def want_access(count):
    """Table (c)'s log: (method, path, user-agent) per request, all bytes."""
    ua = b(dict(REQUEST_FIELDS)["user-agent"])
    return [(b"GET", b(PATHS[i % N % len(PATHS)]), ua) for i in range(count)]


def check_output(name, output, httptools, count):
    """``output`` holds exactly ``count`` responses, 200 with the 5 fields and the body."""
    resps = parse_responses(httptools, output)
    status, fields = want_response()
    if len(resps) != count:
        raise AssertionError(f"{name}: {len(resps)} responses, want {count}")
    for i, (st, hs, body) in enumerate(resps):
        if st != status or body != BODY or hs != fields:
            raise AssertionError(f"{name}: response {i}: {st} {hs} {body[:20]!r}...")


def check_server_side(name, log, output, httptools, count, access=False):
    if access:
        got = [(b(m), b(p), b(ua) if ua is not None else None) for m, p, ua in log]
        want = want_access(count)
    else:
        got = [norm_request(m, p, h) for m, p, h in log]
        want = want_requests(count)
    if got != want:
        bad = next(i for i in range(max(len(got), len(want)))
                   if i >= len(got) or i >= len(want) or got[i] != want[i])
        raise AssertionError(f"{name}: {len(got)} requests seen, want {len(want)}; "
                             f"request {bad}: {got[bad] if bad < len(got) else None} "
                             f"!= {want[bad] if bad < len(want) else None}")
    check_output(name, output, httptools, count)


# Table (b) and (c) servers: (table, column) -> (make (server, run), kinds). zttp takes
# bytes fields only; its column in (b) is "list" mode, "zttp lazy" keeps the HeaderBlock.
def server_cells(h11, httptools, zttp, chunk):
    def both(f):
        return f, KINDS
    return {
        ("b", "cno"): both(lambda kind, check: cno_server_run(kind, chunk, check)),
        ("b", "httptools"): both(lambda kind, check: httptools_server_run(httptools, chunk,
                                                                          check)),
        ("b", "h11"): both(lambda kind, check: h11_server_run(h11, kind, chunk, check)),
        ("b", "zttp"): (lambda kind, check: zttp_server_run(zttp, "list", chunk, check),
                        ["bytes"]),
        ("b", "zttp lazy"): (lambda kind, check: zttp_server_run(zttp, "lazy", chunk, check),
                             ["bytes"]),
        ("c", "cno"): both(lambda kind, check: cno_server_run(kind, chunk, check, True)),
        ("c", "httptools"): both(lambda kind, check: httptools_server_run(
            httptools, chunk, check, True)),
        ("c", "h11"): both(lambda kind, check: h11_server_run(h11, kind, chunk, check, True)),
        ("c", "zttp"): (lambda kind, check: zttp_server_run(zttp, "access", chunk, check),
                        ["bytes"]),
    }


CYCLE_LIBS = ["cno", "h11", "zttp"]


def make_cycle_pair(lib, h11, zttp, kind, check=False):
    """(a)'s pair of the library, or None where it does not take ``kind`` fields."""
    if lib == "cno":
        return CnoPair(kind, check)
    if lib == "h11":
        return H11Pair(h11, kind, check)
    return ZttpPair(zttp, check) if kind == "bytes" else None


def check(h11, httptools, zttp, chunk):
    """Run each configuration for two units with recording handlers. Returns a list of
    deviations found that do not stop the benchmark (notes for the report)."""
    notes = []
    for (table, lib), (make, kinds) in server_cells(h11, httptools, zttp, chunk).items():
        for kind in kinds:
            server, _ = make(kind, True)
            for _ in range(2):
                server.data_received(chunk)
            check_server_side(f"({table}) {lib} ({kind})", server.log, b"".join(server.wire),
                              httptools, 2 * N, access=table == "c")
    for kind in KINDS:
        # (a) client + server
        for lib in CYCLE_LIBS:
            for pipelined in (False, True):
                pair = make_cycle_pair(lib, h11, zttp, kind, True)
                run = pair.make_run(pipelined) if pair is not None else None
                if run is None:
                    continue
                name = f"(a) {lib} ({kind}, {'pipelined' if pipelined else 'sequential'})"
                run(2)
                if lib == "cno":
                    slog, clog = pair.server.log, pair.client.log
                else:
                    slog, clog = pair.server.log, pair.log
                got = [norm_request(m, p, h) for m, p, h in slog]
                if got != want_requests(2 * N):
                    raise AssertionError(f"{name}: server saw {got[:1]}... "
                                         f"({len(got)} requests)")
                status, fields = want_response()
                if len(clog) != 2 * N:
                    raise AssertionError(f"{name}: client saw {len(clog)} responses")
                for st, hs in clog:
                    hs = [(b(n), b(v)) for n, v in hs]
                    if (lib == "cno" and st == status and b"content-length" not in dict(hs)
                            and hs == [f for f in fields if f[0] != b"content-length"]):
                        # docs/raw.md lists the fields the engine consumes, and
                        # content-length is not among them; the timing is still valid.
                        note = ("cno's client does not deliver the response's "
                                "content-length field to on_message_head")
                        if note not in notes:
                            notes.append(note)
                        continue
                    if st != status or hs != fields:
                        raise AssertionError(f"{name}: response {st} {hs}")
    return notes


# ---------------------------------------------------------------------------------------
# Timing

CYCLE_CASES = [("sequential", False), ("pipelined", True)]
B_LIBS = ["cno", "httptools", "h11", "zttp", "zttp lazy"]
C_LIBS = ["cno", "httptools", "h11", "zttp"]


def build_cells(H, h11, httptools, zttp, chunk):
    """The cells, and the servers of (b) and (c) whose output is checked after timing."""
    cells, servers = [], {}
    for kind in KINDS:
        for case, pipelined in CYCLE_CASES:
            for lib in CYCLE_LIBS:
                pair = make_cycle_pair(lib, h11, zttp, kind)
                run = pair.make_run(pipelined) if pair is not None else None
                if run is not None:
                    cells.append(H.Cell(("a", case, kind), lib, run, N))
    for (table, lib), (make, kinds) in server_cells(h11, httptools, zttp, chunk).items():
        for kind in kinds:
            server, run = make(kind, False)
            cells.append(H.Cell((table, "server", kind), lib, run, N))
            servers[(table, lib, kind)] = server
    return cells, servers


def check_after_timing(servers, httptools):
    """Each timed server's list holds its last unit's output: 100 whole responses."""
    for (table, lib, kind), server in servers.items():
        check_output(f"({table}) {lib} ({kind}), last timed unit", b"".join(server.wire),
                     httptools, N)


def tables(H, cells, markdown):
    by = {(c.case, c.lib): H.summarize(c.samples) for c in cells}
    rows_a = []
    peers_a = CYCLE_LIBS[1:]
    for case, _ in CYCLE_CASES:
        for kind in KINDS:
            s = {lib: by.get((("a", case, kind), lib)) for lib in CYCLE_LIBS}
            label = (f"1 request per round trip, {kind} fields" if case == "sequential"
                     else f"{N} pipelined per round trip, {kind} fields")
            rows_a.append([label] + [H.fmt_cell(s[lib]) for lib in CYCLE_LIBS]
                          + [H.fmt_ratio(s["cno"], s[lib]) for lib in peers_a])
    ta = H.render_table(["(a) client + server", *CYCLE_LIBS] + [f"cno/{p}" for p in peers_a],
                        rows_a, markdown, right=tuple(range(4, 4 + len(peers_a))))

    def server_table(table, libs, title):
        rows = []
        for kind in KINDS:
            s = {lib: by.get(((table, "server", kind), lib)) for lib in libs}
            rows.append([f"{kind} fields"] + [H.fmt_cell(s[lib]) for lib in libs]
                        + [H.fmt_ratio(s["cno"], s[lib]) for lib in libs[1:]])
        return H.render_table([title, *libs] + [f"cno/{p}" for p in libs[1:]], rows,
                              markdown, right=tuple(range(1 + len(libs), 2 * len(libs))))

    tb = server_table("b", B_LIBS, "(b) server keeps method, path, header list; 100 "
                                   "pipelined a chunk")
    tc = server_table("c", C_LIBS, "(c) server reads method, path, user-agent; 100 "
                                   "pipelined a chunk")
    return ta, tb, tc


def stale_sources(cno_module):
    """Cython sources (.pyx, .pxi, .pxd) newer than the built _core extension: the HTTP/1.1
    engine lives in _h1.pxi, which the harness's check of _core.pyx alone does not see."""
    pkg = os.path.dirname(cno_module.__file__)
    files = os.listdir(pkg)
    so = [os.path.join(pkg, f) for f in files
          if f.startswith("_core.") and f.endswith((".so", ".pyd"))]
    if not so:
        return []
    built = max(os.path.getmtime(f) for f in so)
    return sorted(f for f in files if f.endswith((".pyx", ".pxi", ".pxd"))
                  and os.path.getmtime(os.path.join(pkg, f)) > built)


def profile(n, case, kind, chunk, libs, lib="cno"):
    """One library alone (cno by default): n units after 20 of warm-up, for callgrind or
    perf. zttp's server is table (b)'s "list" mode, or (c)'s for ``access``."""
    h11, httptools, zttp = libs
    if case in ("server", "access"):
        table = "c" if case == "access" else "b"
        make = server_cells(h11, httptools, zttp, chunk)[(table, lib)][0]
        _, run = make(kind, False)
    else:
        run = make_cycle_pair(lib, h11, zttp, kind).make_run(case == "pipelined")
    run(20)
    t0 = time.perf_counter()
    run(n)
    dt = time.perf_counter() - t0
    print(f"{lib} {case}, {kind} fields: {n} units of {N} requests in {dt:.3f} s "
          f"({n * N / max(dt, 1e-9):,.0f} requests/s)")


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
    ap.add_argument("--profile-case", choices=["server", "access", "sequential", "pipelined"],
                    default="server", help="what --profile runs: table (b)'s server "
                    "(default), table (c)'s (access), or table (a)'s client + server, "
                    "sequential or pipelined")
    ap.add_argument("--profile-kind", choices=KINDS, default="str",
                    help="header field type for --profile (default str)")
    ap.add_argument("--profile-lib", default="cno",
                    choices=["cno", "httptools", "h11", "zttp", "zttp lazy"],
                    help="the library --profile runs (default cno; zttp: bytes fields; "
                    "httptools: server cases only)")
    args = ap.parse_args(argv)
    reps = args.reps or (5 if args.quick else 25)
    target_ms = args.target_ms or (5.0 if args.quick else 50.0)
    warmup_ms = 20.0 if args.quick else 200.0

    cno, h11, httptools, zttp = load_libs(args.installed)
    chunk = pipelined_chunk()
    if args.profile is not None:
        return profile(args.profile, args.profile_case, args.profile_kind, chunk,
                       (h11, httptools, zttp), args.profile_lib)

    import _harness as H
    versions = {"cno": H.cno_build_info(cno, ROOT), "h11": H.dist_version("h11"),
                "httptools": H.dist_version("httptools"), "zttp": H.dist_version("zttp")}
    info = H.machine_info(versions)
    stale = stale_sources(cno)
    if stale:
        info.append(("WARNING", "newer than the _core extension: " + ", ".join(stale)
                     + " (rebuild: python setup.py build_ext --inplace)"))
    info.append(("method", f"{reps} interleaved repetitions of ~{target_ms:g} ms batches, "
                           f"{N} requests per unit on one long-lived connection (pair), "
                           "GC off while timing"))
    info.append(("wire", f"request {len(chunk) // N} bytes (10 header lines), "
                         f"(b) chunk {len(chunk)} bytes"))

    notes = check(h11, httptools, zttp, chunk)
    print("correctness: every server saw the requests sent, every client (and the "
          "response parser) the responses", file=sys.stderr)
    for note in notes:
        print("  deviation: " + note, file=sys.stderr)
        info.append(("deviation", note))
    cells, servers = build_cells(H, h11, httptools, zttp, chunk)
    H.run_interleaved(cells, reps, target_ms, warmup_ms)
    check_after_timing(servers, httptools)
    if hasattr(os, "getloadavg"):
        info.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))

    ta, tb, tc = tables(H, cells, args.markdown)
    if args.markdown:
        print("Requests/s: median (min-max over repetitions), and median time per request. "
              "Ratios are cno's speed over the peer's (>1: cno faster). n/a: zttp takes "
              "bytes fields only.\n")
        print(H.render_info(info, markdown=True) + "\n")
        print(ta + "\n\n" + tb + "\n\n" + tc)
    else:
        print(H.render_info(info) + "\n")
        print("W3 HTTP/1.1: requests/s, median (min-max), median time per request; "
              "ratios: cno speed / peer speed\n")
        print(ta + "\n\n" + tb + "\n\n" + tc)


if __name__ == "__main__":
    main()
