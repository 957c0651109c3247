"""A cno.serve server for the hostile-peer tests (tests/test_hostile.py) and the memory
benchmark (bench/w7_memory.py), run as a subprocess so that a memory regression hits the
rlimit its parent sets instead of the machine.

    python tests/hostile_server.py '{"header_timeout": 1.0, "limits": {"reset_budget": 100}}'

The JSON object's items are passed to ``cno.serve(...)`` as keyword options, unchanged.
The server listens on 127.0.0.1, port 0, and prints its port on stdout (one line). A
``Server`` is built once with the options before listening, so that an option the server
does not know fails at startup (exit status 2, the error on stderr) rather than on each
connection. ``--drop-unknown`` (before the JSON) drops such options with a warning instead:
for looking at what an older server does, never in the tests.

Routes:

- ``/``        200 "ok"
- ``/big``     200, one shared 10 MB ``bytes`` object (the same object for every response);
               ``/big?size=N``: a memoryview of its first N bytes
- ``/upload``  reads the whole request body, answers its length (decimal)
- ``/stream``  a streamed body: 64 chunks of 16 KiB from an async generator
- ``/_stats``  JSON: {"rss_kib", "hwm_kib", "connections", "requests"} (diagnostics)
- anything else 404

SIGTERM / SIGINT end it (exit status 0).
"""
import asyncio
import inspect
import json
import os
import signal
import sys

import cno
import cno.aio

BIG = b"x" * (10 * 1024 * 1024)
CHUNK = b"s" * 16384
STATS = {"requests": 0}
SERVICE = None


def proc_status_kib(field, pid="self"):
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


async def stream_body():
    for _ in range(64):
        yield CHUNK
        await asyncio.sleep(0)


async def handle(request):
    STATS["requests"] += 1
    path = request.path.split("?", 1)[0]
    if path == "/":
        await request.respond(200, [("content-type", "text/plain")], b"ok")
    elif path == "/big":
        body = BIG
        if "?size=" in request.path:   # a prefix of the same object, not a copy
            body = memoryview(BIG)[:int(request.path.split("?size=", 1)[1])]
        await request.respond(200, [("content-type", "application/octet-stream")], body)
    elif path == "/upload":
        body = await request.payload.read()
        await request.respond(200, [("content-type", "text/plain")], str(len(body)).encode())
    elif path == "/stream":
        await request.respond(200, [("content-type", "application/octet-stream")],
                              stream_body())
    elif path == "/_stats":
        stats = {"rss_kib": proc_status_kib("VmRSS"), "hwm_kib": proc_status_kib("VmHWM"),
                 "connections": len(SERVICE._connections) if SERVICE is not None else -1,
                 "requests": STATS["requests"]}
        await request.respond(200, [("content-type", "application/json")],
                              json.dumps(stats).encode())
    else:
        await request.respond(404, [("content-type", "text/plain")], b"not found")


def check_options(loop, options, drop_unknown):
    """Build one Server with the options: an unknown option fails here, at startup."""
    while True:
        try:
            cno.aio.Server(loop, handle, **options)
            return options
        except TypeError as e:
            if not drop_unknown:
                raise
            params = inspect.signature(cno.aio.Server).parameters
            unknown = [k for k in options if k not in params]
            if not unknown:
                raise
            print("hostile_server: dropping options this server does not take: %s (%s)"
                  % (unknown, e), file=sys.stderr, flush=True)
            options = {k: v for k, v in options.items() if k not in unknown}


async def main(options, drop_unknown):
    global SERVICE
    loop = asyncio.get_running_loop()
    try:
        options = check_options(loop, options, drop_unknown)
    except TypeError as e:
        print("hostile_server: the server does not take these options: %s" % e,
              file=sys.stderr, flush=True)
        sys.exit(2)
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    SERVICE = await cno.serve(handle, "127.0.0.1", 0, **options)
    port = SERVICE.sockets[0].getsockname()[1]
    sys.stdout.write("%d\n" % port)
    sys.stdout.flush()
    await stop
    SERVICE.close()


if __name__ == "__main__":
    args = sys.argv[1:]
    drop = "--drop-unknown" in args
    args = [a for a in args if a != "--drop-unknown"]
    opts = json.loads(args[0]) if args else {}
    if not isinstance(opts, dict):
        sys.exit("hostile_server: the options must be a JSON object")
    asyncio.run(main(opts, drop))
