"""The built-in demo application: what ``cno serve`` runs when given no argument, and
what ``cno demo`` starts a server with and fetches from. Plain ASGI 3, no framework:

- ``GET /``: a small HTML page that says which HTTP version served it, links to the
  other endpoints and references ``/style.css``, which it pushes over HTTP/2 (the
  ``http.response.push`` extension) before the page goes out.
- ``GET /style.css``: the stylesheet (pushed, or fetched like any file).
- ``POST /echo``: the request body back: read with ``receive()`` message by message
  until ``more_body`` is false, then sent back in the same pieces (``more_body``), with
  a ``content-length``. A body above :data:`MAX_ECHO` bytes gets 413: at once when its
  ``content-length`` says so, else once that much has arrived.
- ``GET /stream``: :data:`STREAM_CHUNKS` lines sent :data:`STREAM_DELAY` seconds apart,
  each in its own body message, then a trailer field (``x-chunks``) where the
  ``http.response.trailers`` extension is there.
- lifespan: startup records when the server started (``state["started"]``), which the
  page shows as the server's uptime.

GET and HEAD are accepted wherever GET is; other paths get 404, other methods 405.
"""
from __future__ import annotations

import asyncio
import html
import time
from typing import Sequence

from cno.asgi.http import Message, Receive, Send

MAX_ECHO = 1 << 20      # bytes: POST /echo refuses larger bodies with 413
STREAM_CHUNKS = 5       # lines GET /stream sends...
STREAM_DELAY = 0.1      # ...this many seconds apart

_STYLE = b"""\
body { font-family: system-ui, sans-serif; max-width: 42em; margin: 2em auto; color: #222; }
h1 { font-size: 1.6em; }
code, textarea { font-family: ui-monospace, monospace; }
.version { color: #0a6; font-weight: bold; }
li { margin: 0.4em 0; }
"""

_PAGE = """\
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cno demo</title>
<link rel="stylesheet" href="/style.css">
</head>
<body>
<h1>cno demo</h1>
<p>This page was served over <span class="version">HTTP/{version}</span> by cno's ASGI
server{pushed}.{uptime}</p>
<ul>
<li><a href="/stream">/stream</a>: {chunks} lines, {delay} s apart, each sent as it is
made, then a trailer field.</li>
<li><a href="/style.css">/style.css</a>: this page's stylesheet.</li>
<li>POST /echo: the body back (up to {limit} bytes), e.g.
<code>curl --data-binary @file http://HOST:PORT/echo</code>, or:
<form method="post" action="/echo" enctype="text/plain">
<textarea name="text" rows="3" cols="40">hello, cno</textarea>
<button>echo</button></form></li>
</ul>
<p>Try <code>cno get -v --http2-prior-knowledge http://HOST:PORT/</code> to see the
frames, the push included.</p>
</body>
</html>
"""


async def app(scope: Message, receive: Receive, send: Send) -> None:
    """The demo application (see the module's docstring)."""
    kind = scope["type"]
    if kind == "lifespan":
        await _lifespan(scope, receive, send)
        return
    if kind != "http":
        raise ValueError("the demo application serves HTTP, not %r" % (kind,))
    path, method = scope["path"], scope["method"]
    if path == "/echo":
        if method != "POST":
            await _respond(send, 405, b"POST a body to /echo\n", [(b"allow", b"POST")])
        else:
            await _echo(scope, receive, send)
        return
    routes = {"/": _page, "/style.css": _style, "/stream": _stream}
    handler = routes.get(path)
    if handler is None:
        await _respond(send, 404, b"not found: try /\n")
    elif method not in ("GET", "HEAD"):
        await _respond(send, 405, b"GET only here\n", [(b"allow", b"GET, HEAD")])
    else:
        await handler(scope, send)


async def _lifespan(scope: Message, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if "state" in scope:
                scope["state"]["started"] = time.monotonic()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send: Send, status: int, body: bytes,
                   headers: Sequence[tuple[bytes, bytes]] = (),
                   content_type: bytes = b"text/plain; charset=utf-8") -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type), *headers]})
    await send({"type": "http.response.body", "body": body})


async def _page(scope: Message, send: Send) -> None:
    pushed = False
    if "http.response.push" in scope.get("extensions", {}):
        # Promised before the page goes out, so the client knows about the stylesheet
        # before it reads the page's <link>.
        await send({"type": "http.response.push", "path": "/style.css", "headers": []})
        pushed = True
    started = scope.get("state", {}).get("started")
    uptime = "" if started is None else \
        " It has been running for %d s." % (time.monotonic() - started)
    text = _PAGE.format(
        version=html.escape(scope["http_version"]), uptime=uptime,
        pushed=", which pushed its stylesheet along with it" if pushed else "",
        chunks=STREAM_CHUNKS, delay=STREAM_DELAY, limit=MAX_ECHO)
    await _respond(send, 200, text.encode(), content_type=b"text/html; charset=utf-8")


async def _style(scope: Message, send: Send) -> None:
    await _respond(send, 200, _STYLE, [(b"cache-control", b"max-age=60")],
                   content_type=b"text/css; charset=utf-8")


async def _stream(scope: Message, send: Send) -> None:
    trailers = "http.response.trailers" in scope.get("extensions", {})
    await send({"type": "http.response.start", "status": 200, "trailers": trailers,
                "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                            (b"x-content-type-options", b"nosniff")]})
    started = time.monotonic()
    for i in range(STREAM_CHUNKS):
        if i:
            await asyncio.sleep(STREAM_DELAY)
        line = "chunk %d of %d at +%.2f s\n" % (i + 1, STREAM_CHUNKS, time.monotonic() - started)
        await send({"type": "http.response.body", "body": line.encode(), "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
    if trailers:
        await send({"type": "http.response.trailers",
                    "headers": [(b"x-chunks", b"%d" % STREAM_CHUNKS)]})


async def _echo(scope: Message, receive: Receive, send: Send) -> None:
    announced = None
    # Plain text (what the page's form sends) comes back as text; anything else as
    # bytes, never as the type the client chose (no HTML reflected to a browser).
    content_type = b"application/octet-stream"
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit():
            announced = int(value)
        elif name == b"content-type" and value.lower().startswith(b"text/plain"):
            content_type = b"text/plain; charset=utf-8"
    too_large = b"the echo takes bodies of up to %d bytes\n" % MAX_ECHO
    if announced is not None and announced > MAX_ECHO:
        await _respond(send, 413, too_large)   # (none of the body read)
        return
    pieces, size = [], 0
    while True:
        message = await receive()
        if message["type"] != "http.request":   # http.disconnect: the client left
            return
        piece = message.get("body", b"")
        size += len(piece)
        if size > MAX_ECHO:
            await _respond(send, 413, too_large)
            return
        if piece:
            pieces.append(piece)
        if not message.get("more_body", False):
            break
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", content_type),
                            (b"x-content-type-options", b"nosniff"),
                            (b"content-length", b"%d" % size)]})
    for piece in pieces:   # the body back in the pieces it came in
        await send({"type": "http.response.body", "body": piece, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})
