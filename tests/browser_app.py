"""A page with a dozen sub-resources, for the real-browser test (tests/test_browser.py):
``python -m cno serve browser_app:app --certfile ... --access-log``; a plain ASGI 3 app.

``/`` first announces some resources in a ``103 Early Hints`` response (HINTED), waits
(HINT_WAIT), then sends the page. The page links the stylesheets (one @imports another,
which sets a background image), classic, async, deferred and module scripts (one module
imports another), and images (PNG, GIF, SVG). Every resource is served with its content
type and ``x-content-type-options: nosniff``, so the browser refuses a script or a
stylesheet served with a wrong one, and is cacheable (Chromium hands a hinted resource
to the page through its cache: without it, the page asks for it again). When the page has loaded, its script writes into
``<pre id=result>`` (JSON) what the browser saw: the navigation's and every resource's
``nextHopProtocol`` and ``initiatorType``, which scripts ran, whether the stylesheets
applied and the images decoded; ``chromium --headless --dump-dom`` prints it.
"""
import asyncio
import struct
import zlib


def _png(width, height, rgb):
    """A valid RGB PNG of one colour."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    row = b"\x00" + bytes(rgb) * width          # filter type 0, then the pixels
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(row * height))
            + chunk(b"IEND", b""))


def _gif(rgb):
    """A valid 1x1 GIF89a of one colour."""
    return (b"GIF89a" + struct.pack("<HH", 1, 1) + b"\x80\x00\x00"   # global table of 2
            + bytes(rgb) + b"\x00\x00\x00"
            + b",\x00\x00\x00\x00\x01\x00\x01\x00\x00"               # image descriptor
            + b"\x02\x02D\x01\x00;")                                 # LZW data, trailer


CSS = "text/css; charset=utf-8"
JS = "text/javascript; charset=utf-8"

# path -> (content type, body): the page's sub-resources (what the test expects to see).
RESOURCES = {
    "/css/base.css": (CSS, b"body { margin: 0; font-family: sans-serif; }\n"
                           b"#base-check { width: 11px; }\n"),
    "/css/layout.css": (CSS, b'@import url("/css/theme.css");\n'
                             b"#layout-check { width: 12px; }\n"),
    "/css/theme.css": (CSS, b"#theme-check { width: 13px; height: 4px;\n"
                            b"  background: url(/img/bg.gif) repeat; }\n"),
    "/js/app.js": (JS, b"window.ran = (window.ran || []).concat(['app.js']);\n"),
    "/js/util.js": (JS, b"window.ran = (window.ran || []).concat(['util.js']);\n"),
    "/js/async.js": (JS, b"window.ran = (window.ran || []).concat(['async.js']);\n"),
    "/js/main.mjs": (JS, b"import { name } from '/js/dep.mjs';\n"
                         b"window.ran = (window.ran || []).concat(['main.mjs', name]);\n"),
    "/js/dep.mjs": (JS, b"export const name = 'dep.mjs';\n"),
    "/img/logo.png": ("image/png", _png(16, 8, (200, 30, 30))),
    "/img/dot.gif": ("image/gif", _gif((30, 200, 30))),
    "/img/icon.svg": ("image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" '
                                       b'height="10"><circle cx="5" cy="5" r="4" '
                                       b'fill="#36c"/></svg>\n'),
    "/img/bg.gif": ("image/gif", _gif((30, 30, 200))),
}

# Announced by the 103 before the page (Link values, RFC 8288; "as" says what to fetch as).
HINTED = {
    "/css/base.css": b"</css/base.css>; rel=preload; as=style",
    "/js/app.js": b"</js/app.js>; rel=preload; as=script",
    "/img/logo.png": b"</img/logo.png>; rel=preload; as=image",
}

# Over HTTP/2, / holds the page after the 103 until a browser has asked for every hinted
# resource (at most HINT_WAIT seconds: a browser that ignores the hints gets the page
# then, and the test sees the order it asked in); over HTTP/1.1 (where Chromium ignores
# 103) it waits HINT_DELAY.
HINT_WAIT = 3.0
HINT_DELAY = 0.2
_asked: dict = {}   # path -> how many times it was requested

PAGE = b"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>cno browser test</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/css/base.css">
<link rel="stylesheet" href="/css/layout.css">
<script src="/js/util.js"></script>
<script src="/js/app.js" defer></script>
<script src="/js/async.js" async></script>
<script type="module" src="/js/main.mjs"></script>
</head>
<body>
<h1>cno serve, in a browser</h1>
<div id="base-check"></div><div id="layout-check"></div><div id="theme-check"></div>
<img src="/img/logo.png" alt="png"> <img src="/img/dot.gif" alt="gif">
<img src="/img/icon.svg" alt="svg">
<pre id="result">not loaded</pre>
<script>
window.addEventListener("load", function () {
  function entry(e) {
    return {name: new URL(e.name).pathname, protocol: e.nextHopProtocol,
            initiator: e.initiatorType || null};
  }
  var result = {
    navigation: performance.getEntriesByType("navigation").map(entry),
    resources: performance.getEntriesByType("resource").map(entry),
    ran: (window.ran || []).slice().sort(),
    widths: ["base-check", "layout-check", "theme-check"].map(function (id) {
      return document.getElementById(id).getBoundingClientRect().width;
    }),
    images: Array.prototype.map.call(document.images, function (img) {
      return [new URL(img.src).pathname, img.naturalWidth, img.naturalHeight];
    })
  };
  document.getElementById("result").textContent = JSON.stringify(result);
});
</script>
</body>
</html>
"""


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send, status, content_type, body):
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"cache-control", b"max-age=600"),
    ]})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await _lifespan(receive, send)
    assert scope["type"] == "http"
    path = scope["path"]
    if scope["method"] != "GET":
        return await _respond(send, 405, "text/plain", b"GET only\n")
    _asked[path] = _asked.get(path, 0) + 1
    if path == "/":
        if "http.response.early_hint" in scope.get("extensions", {}):
            before = {p: _asked.get(p, 0) for p in HINTED}
            await send({"type": "http.response.early_hint", "links": list(HINTED.values())})
            # (a browser's navigation says so: sec-fetch-mode; curl's request does not)
            if scope["http_version"] == "2" \
                    and (b"sec-fetch-mode", b"navigate") in scope["headers"]:
                deadline = asyncio.get_running_loop().time() + HINT_WAIT
                while any(_asked.get(p, 0) == n for p, n in before.items()) \
                        and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
            else:
                await asyncio.sleep(HINT_DELAY)
        return await _respond(send, 200, "text/html; charset=utf-8", PAGE)
    if path in RESOURCES:
        return await _respond(send, 200, *RESOURCES[path])
    await _respond(send, 404, "text/plain", b"not found\n")
