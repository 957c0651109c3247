"""The W5 endpoint as an ASGI app, for hypercorn and uvicorn.

GET (any path) -> 200, ``content-type: text/html``, ``content-length: 100`` and the
100-byte BODY (the same bytes cno_server.py sends and nghttpd/nginx serve from a file).
The lifespan protocol is answered so that neither server logs a warning.

W10 (bench/w10_ws_servers.py): a websocket scope is accepted (no subprotocol, no extra
headers) and every message is sent back as it came, text as text and bytes as bytes,
until the client's close.

    uvicorn --app-dir bench/servers asgi_app:app --loop uvloop --http httptools --no-access-log
    hypercorn --config bench/servers/hypercorn.toml --worker-class uvloop asgi_app:app
"""

# 100 bytes: 99 printable bytes and a newline.
BODY = (b"<p>W5: a trivial endpoint, the same 100 bytes from every server under test.</p>"
        b"\n").ljust(99, b"-") + b"\n"
assert len(BODY) == 100
CONTENT_TYPE = "text/html"

_HEADERS = [(b"content-type", CONTENT_TYPE.encode()), (b"content-length", b"100")]
_START = {"type": "http.response.start", "status": 200, "headers": _HEADERS}
_BODY = {"type": "http.response.body", "body": BODY}
_ACCEPT = {"type": "websocket.accept"}


async def app(scope, receive, send):
    if scope["type"] == "http":
        await send(_START)
        await send(_BODY)
    elif scope["type"] == "websocket":
        await receive()   # websocket.connect
        await send(_ACCEPT)
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return   # websocket.disconnect
            data = message.get("bytes")
            if data is not None:
                await send({"type": "websocket.send", "bytes": data})
            else:
                await send({"type": "websocket.send", "text": message["text"]})
    elif scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
