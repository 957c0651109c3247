"""Command line (`cno ...` or `python -m cno ...`).

    python -m cno demo
        starts a server on a free local port, fetches from it over HTTP/2 (with a push)
        and HTTP/1.1, prints what happened, and stops.
    python -m cno serve [--host H] [--port P] [--certfile C --keyfile K] [DIR]
        serves the files in DIR (default: a hello page) over HTTP/1.1 and HTTP/2
        (h2c by prior knowledge or Upgrade; TLS with ALPN given a certificate).
    python -m cno get [--http1 | --http2] [-v] URL
        fetches URL and writes the body to stdout (-v: the response head to stderr).
    python -m cno hpack ":method: GET" ":path: /" "user-agent: demo"
        encodes the headers twice on one connection (the second block hits the dynamic
        table), with and without Huffman, and decodes each block back.
    python -m cno hpack --decode 828684418cf1e3c2e5f23a6ba0ab90f4ff
        decodes a hex header block.
"""
import argparse
import asyncio
import mimetypes
import os
import ssl
import sys

import cno

from cno import hpack


def _parse_header(text):
    name, sep, value = text[1:].partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected 'name: value', got %r" % text)
    return (text[0] + name).strip().lower(), value.strip()


def cmd_hpack(args):
    if args.decode:
        decoder = hpack.Decoder()
        for block in args.decode:
            for name, value in decoder.decode(bytes.fromhex(block)):
                print("%s: %s" % (name, value))
            print("-- table: %d entries, %d bytes" % (len(decoder), decoder.table_bytes))
        return 0
    headers = args.headers or [
        (":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
        (":path", "/"), ("user-agent", "cno-demo/0.1"), ("accept", "*/*"),
    ]
    for huffman in (True, False):
        encoder, decoder = hpack.Encoder(), hpack.Decoder()
        for n in (1, 2):
            block = encoder.encode(headers, huffman=huffman)
            ok = decoder.decode(block) == [tuple(h) for h in headers]
            print("huffman=%s block %d: %3d bytes, decodes back %s: %s"
                  % (huffman, n, len(block), "ok" if ok else "WRONG", block.hex()))
            if not ok:
                return 1
    plain = sum(len(n) + len(v) + 4 for n, v in headers)
    print("(the same headers as HTTP/1.1 text: %d bytes)" % plain)
    return 0


def file_handler(root):
    """A handler serving files under root (GET and HEAD), or a hello page."""
    root = os.path.realpath(root) if root else None

    async def handle(request):
        if request.method not in ("GET", "HEAD"):
            await request.respond(405, [("allow", "GET, HEAD")])
            return
        path = request.path.split("?", 1)[0]
        if root is None:
            body = b"hello from cno over %s\n" % (b"HTTP/2" if request.conn.is_http2 else b"HTTP/1.1")
            await request.respond(200, [("content-type", "text/plain"),
                                        ("content-length", str(len(body)))], body)
            return
        full = os.path.realpath(os.path.join(root, path.lstrip("/")))
        if os.path.isdir(full):
            full = os.path.join(full, "index.html")
        if not full.startswith(root + os.sep) or not os.path.isfile(full):
            await request.respond(404, [("content-type", "text/plain")], b"not found\n")
            return
        with open(full, "rb") as f:
            body = f.read()
        kind = mimetypes.guess_type(full)[0] or "application/octet-stream"
        await request.respond(200, [("content-type", kind), ("content-length", str(len(body)))],
                              body)
    return handle


def cmd_serve(args):
    async def run():
        context = None
        if args.certfile:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(args.certfile, args.keyfile)
        service = await cno.serve(file_handler(args.dir), args.host, args.port, ssl=context)
        where = service.sockets[0].getsockname()
        print("serving %s on %s://%s:%d/ (HTTP/1.1 and HTTP/2; Ctrl-C stops)"
              % (args.dir or "a hello page", "https" if context else "http", where[0], where[1]),
              flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await service.shutdown(timeout=5)
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def cmd_get(args):
    async def run():
        http2 = True if args.http2 else (False if args.http1 else None)
        response = await cno.request("GET", args.url, http2=http2)
        try:
            if args.verbose:
                version = "HTTP/2" if response.conn.is_http2 else "HTTP/1.1"
                print("%s %d" % (version, response.code), file=sys.stderr)
                for name, value in response.headers:
                    print("%s: %s" % (name, value), file=sys.stderr)
            async for chunk in response.payload:
                sys.stdout.buffer.write(chunk)
            sys.stdout.buffer.flush()
        finally:
            response.conn.close()
        return 0 if response.code < 400 else 1
    return asyncio.run(run())


def cmd_demo(args):
    async def handle(request):
        body = await request.payload.read()
        if request.path == "/":
            request.push("GET", "/style.css")
        text = "%s %s over %s, %d byte body\n" % (
            request.method, request.path, "HTTP/2" if request.conn.is_http2 else "HTTP/1.1",
            len(body))
        await request.respond(200, [("content-type", "text/plain")], text.encode(),
                              trailers=[("x-demo", "done")])

    async def run():
        service = await cno.serve(handle, "127.0.0.1", 0)
        port = service.sockets[0].getsockname()[1]
        print("server on http://127.0.0.1:%d/" % port)
        for http2 in (True, False):
            client = await cno.connect("http://127.0.0.1:%d/" % port, http2=http2)
            response = await client.request("GET", "/")
            print("  GET /        -> %d %s" % (response.code, (await response.payload.read()).decode().strip()))
            if client.is_http2:
                async for push in response.pushed:
                    pushed = await push.response
                    print("  pushed %s -> %d %s" % (push.path, pushed.code,
                                                    (await pushed.payload.read()).decode().strip()))
            response = await client.request("POST", "/upload", [], b"x" * 100000)
            print("  POST /upload -> %d %s (trailers %s)" % (
                response.code, (await response.payload.read()).decode().strip(), response.trailers))
            client.close()
        await service.shutdown(timeout=5)
        print("done")
    asyncio.run(run())
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="cno", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="a server and two clients, locally, then exit")
    p.set_defaults(run=cmd_demo)
    p = sub.add_parser("serve", help="serve files over HTTP/1.1 and HTTP/2")
    p.add_argument("dir", nargs="?", help="directory to serve (default: a hello page)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--certfile")
    p.add_argument("--keyfile")
    p.set_defaults(run=cmd_serve)
    p = sub.add_parser("get", help="fetch a URL to stdout")
    p.add_argument("url")
    p.add_argument("--http1", action="store_true", help="HTTP/1.1 only")
    p.add_argument("--http2", action="store_true", help="HTTP/2 (prior knowledge for http:)")
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(run=cmd_get)
    p = sub.add_parser("hpack", help="encode headers or decode a header block")
    p.add_argument("headers", nargs="*", type=_parse_header, help="'name: value'")
    p.add_argument("--decode", nargs="+", metavar="HEX", help="header blocks to decode, in order")
    p.set_defaults(run=cmd_hpack)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
