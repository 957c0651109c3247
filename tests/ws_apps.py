"""ASGI websocket applications the WebSocket tests serve (importable as ``ws_apps:NAME``
by ``python -m cno serve`` run from this directory).

- ``echo_app``: a websocket scope by path: /echo (each message back, as received),
  /close?code=N&reason=R (accepts, then closes so), /deny (websocket.close before
  accept: 403), /response (websocket.http.response: a 418 with a body), /scope (sends
  the scope as JSON, then closes), /protocol (accepts the client's last subprotocol, with
  an extra header), /idle (accepts, reads nothing for a second, then until the end), /raise (raises
  after the accept), /count (sends N messages of N bytes, N from the first message).
  Other HTTP requests get a 200 "http".
- ``starlette_app``: a Starlette WebSocketRoute /ws echoing text and bytes.
"""
import asyncio
import json

events = []   # what the apps saw that a test checks afterwards (in-process servers)


def _jsonable(scope):
    out = {}
    for key, value in scope.items():
        if key == "headers":
            value = [[n.decode("latin-1"), v.decode("latin-1")] for n, v in value]
        elif isinstance(value, bytes):
            value = value.decode("latin-1")
        elif key == "state":
            value = sorted(value)
        out[key] = value
    return out


async def echo_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"http"})
        return
    path = scope["path"]
    assert (await receive())["type"] == "websocket.connect"
    if path == "/deny":
        await send({"type": "websocket.close", "code": 4003})
        return
    if path == "/response":
        await send({"type": "websocket.http.response.start", "status": 418,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"tea"})
        return
    if path == "/protocol":
        await send({"type": "websocket.accept", "subprotocol": scope["subprotocols"][-1],
                    "headers": [(b"x-extra", b"yes")]})
        await send({"type": "websocket.send", "text": scope["subprotocols"][-1]})
        await send({"type": "websocket.close"})
        return
    await send({"type": "websocket.accept"})
    if path == "/scope":
        await send({"type": "websocket.send", "text": json.dumps(_jsonable(scope))})
        await send({"type": "websocket.close", "code": 1000})
        return
    if path == "/close":
        query = dict(p.split("=") for p in scope["query_string"].decode().split("&"))
        await send({"type": "websocket.close", "code": int(query["code"]),
                    "reason": query.get("reason", "")})
        message = await receive()
        events.append(message)
        return
    if path == "/raise":
        raise RuntimeError("the application failed")
    if path == "/idle":
        await asyncio.sleep(1.0)    # (reads nothing for a second)
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if path == "/count":
        message = await receive()
        n = int(message["text"])
        for _ in range(n):
            await send({"type": "websocket.send", "bytes": b"x" * n})
        await send({"type": "websocket.close"})
        return
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            events.append(message)
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


def _starlette():
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute
    from starlette.websockets import WebSocketDisconnect

    async def ws(websocket):
        await websocket.accept()
        try:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                if message.get("text") is not None:
                    await websocket.send_text("starlette: " + message["text"])
                else:
                    await websocket.send_bytes(message["bytes"][::-1])
        except WebSocketDisconnect:
            return

    return Starlette(routes=[WebSocketRoute("/ws", ws)])


try:
    starlette_app = _starlette()
except ImportError:   # (the tests that serve it skip)
    starlette_app = None
