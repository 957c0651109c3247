#!/usr/bin/env python
"""The W5 endpoint served by cno: ``cno.serve(handle, host, port)`` (docs/aio.md).

GET (any path) -> 200, ``content-type: text/html``, ``content-length: 100`` and the
100-byte body of asgi_app.BODY: the same fields the ASGI app gives hypercorn and uvicorn.
With ``--no-content-length`` only the content-type is given and cno frames the body itself.

    python bench/servers/cno_server.py --port 8000                 # default asyncio loop
    python bench/servers/cno_server.py --port 8000 --loop uvloop
    python bench/servers/cno_server.py --port 8000 --cprofile /tmp/cno.prof   # profile
                                                  # until SIGINT/SIGTERM, then dump stats

Prints ``ready <port>`` on stdout once listening; SIGINT or SIGTERM stops it. Uses this
checkout's cno (the repository root first on sys.path) unless ``--installed``.
"""
import argparse
import asyncio
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

from asgi_app import BODY, CONTENT_TYPE  # noqa: E402  (HERE is sys.path[0])

HEADERS = [("content-type", CONTENT_TYPE), ("content-length", str(len(BODY)))]


async def handle(request):
    await request.respond(200, HEADERS, BODY)


async def serve(cno, host, port):
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    service = await cno.serve(handle, host, port)
    print(f"ready {port} loop={type(loop).__module__}.{type(loop).__name__}", flush=True)
    await stop.wait()
    service.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    ap.add_argument("--installed", action="store_true",
                    help="use the installed cno rather than this checkout's in-place build")
    ap.add_argument("--cprofile", metavar="FILE",
                    help="run under cProfile and write the stats to FILE on exit")
    ap.add_argument("--no-content-length", action="store_true",
                    help="give only the content-type (cno frames the body itself)")
    args = ap.parse_args(argv)
    if args.no_content_length:
        HEADERS[:] = HEADERS[:1]
    if not args.installed:
        sys.path.insert(0, ROOT)
    import cno

    if args.loop == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    if args.cprofile:
        import cProfile
        prof = cProfile.Profile()
        try:
            prof.runcall(asyncio.run, serve(cno, args.host, args.port))
        finally:
            prof.dump_stats(args.cprofile)
    else:
        asyncio.run(serve(cno, args.host, args.port))


if __name__ == "__main__":
    main()
