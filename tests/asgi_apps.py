"""ASGI applications the cno.asgi tests serve (importable as ``asgi_apps:NAME`` by
``python -m cno serve`` run from this directory).

- ``raw_app``: written here against the ASGI spec: /scope (the scope as JSON), /echo
  (the body back, read message by message), /stream (chunks with trailers), /early
  (103 then 200), /push (a pushed /pushed), /file (pathsend), /raise, /raise-late,
  /no-response, /half (returns mid-body), /bad-message, /upper, /bad-headers, /wrong-length, /slow?ms=N, /disconnect (waits
  for http.disconnect and records it), /continue (reads the body after a 100).
- ``starlette_app`` and ``fastapi_app``: real applications from PyPI (JSON routes, a
  streamed response, a FileResponse, a background task, lifespan state).
"""
import asyncio
import json
import os
import tempfile

FILE_BODY = bytes(range(256)) * 4096          # 1 MiB: more than one pathsend piece
FILE_PATH = os.path.join(tempfile.gettempdir(), "cno-asgi-test-file-%d.bin" % os.getpid())
events = []   # what the apps saw that a test checks afterwards (in-process servers)


def _file():
    if not os.path.exists(FILE_PATH) or os.path.getsize(FILE_PATH) != len(FILE_BODY):
        with open(FILE_PATH, "wb") as f:
            f.write(FILE_BODY)
    return FILE_PATH


def _jsonable(scope):
    out = {}
    for k, v in scope.items():
        if k == "headers":
            v = [[n.decode("latin-1"), x.decode("latin-1")] for n, x in v]
        elif isinstance(v, bytes):
            v = v.decode("latin-1")
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


async def _read_body(receive):
    body, messages = b"", 0
    while True:
        message = await receive()
        assert message["type"] == "http.request", message
        messages += 1
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body, messages


async def _respond(send, status, body, headers=()):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"text/plain")] + list(headers)})
    await send({"type": "http.response.body", "body": body})


async def raw_app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = "yes"
                scope["state"]["pid"] = os.getpid()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                events.append("shutdown")
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "http"
    path = scope["path"]
    query = dict(p.split("=", 1) for p in scope["query_string"].decode().split("&") if "=" in p)
    if path.endswith("/scope"):
        body, _ = await _read_body(receive)
        doc = _jsonable(scope)
        doc["body_length"] = len(body)
        await _respond(send, 200, json.dumps(doc).encode(), [(b"x-json", b"1")])
    elif path == "/echo":
        body, messages = await _read_body(receive)
        await _respond(send, 200, body, [(b"x-messages", b"%d" % messages)])
    elif path == "/continue":
        body, _ = await _read_body(receive)
        await _respond(send, 200, b"got %d" % len(body))
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "trailers": True,
                    "headers": [(b"content-type", b"text/plain")]})
        for i in range(int(query.get("n", "3"))):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i,
                        "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        await send({"type": "http.response.trailers", "headers": [(b"x-trailer", b"done")],
                    "more_trailers": False})
    elif path == "/early":
        await send({"type": "http.response.early_hint",
                    "links": [b"</style.css>; rel=preload; as=style"]})
        await _respond(send, 200, b"hinted\n")
    elif path == "/push":
        await send({"type": "http.response.push", "path": "/pushed", "headers": []})
        await _respond(send, 200, b"with a push\n")
    elif path == "/pushed":
        await _respond(send, 200, b"I was pushed\n")
    elif path == "/file":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        await send({"type": "http.response.pathsend", "path": _file()})
    elif path == "/raise":
        raise RuntimeError("the application fails before responding, on purpose")
    elif path == "/raise-late":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("the application fails mid-body, on purpose")
    elif path == "/no-response":
        return
    elif path == "/half":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"half", "more_body": True})
    elif path == "/upper":   # names not in lower case: accepted, sent in lower case
        await _respond(send, 200, b"ok\n", [(b"X-Upper-Case", b"1")])
    elif path == "/bad-headers":
        await send({"type": "http.response.start", "status": 200, "headers": [("a", 1)]})
        await send({"type": "http.response.body", "body": b"never"})
    elif path == "/wrong-length":   # a body longer than the content-length it announced
        await _respond(send, 200, b"too long", [(b"content-length", b"3")])
    elif path == "/bad-message":
        await send({"type": "http.response.start", "status": "200", "headers": []})
    elif path == "/slow":
        await asyncio.sleep(int(query.get("ms", "100")) / 1000)
        await _respond(send, 200, b"slow\n")
    elif path == "/disconnect":
        await _read_body(receive)
        message = await receive()   # blocks until the client goes away
        events.append(message["type"])
    else:
        await _respond(send, 404, b"not found\n")


def _starlette():
    import contextlib

    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import FileResponse, JSONResponse, StreamingResponse
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield {"greeting": "hello from lifespan"}

    async def home(request: Request):
        return JSONResponse({"greeting": request.state.greeting,
                             "http_version": request.scope["http_version"]})

    async def echo(request: Request):
        data = await request.json()
        return JSONResponse({"you_sent": data})

    async def stream(request: Request):
        async def numbers():
            for i in range(5):
                yield b"%d\n" % i
        return StreamingResponse(numbers(), media_type="text/plain")

    async def file(request: Request):
        return FileResponse(_file())

    async def background(request: Request):
        async def note():
            events.append("background ran")
        return JSONResponse({"ok": True}, background=BackgroundTask(note))

    return Starlette(routes=[Route("/", home), Route("/echo", echo, methods=["POST"]),
                             Route("/stream", stream), Route("/file", file),
                             Route("/background", background)], lifespan=lifespan)


def _fastapi():
    import contextlib

    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse
    from pydantic import BaseModel

    @contextlib.asynccontextmanager
    async def lifespan(app):
        app.state.items = {}
        yield

    app = FastAPI(lifespan=lifespan)

    class Item(BaseModel):
        name: str
        price: float

    @app.put("/items/{item_id}")
    async def put_item(item_id: int, item: Item):
        app.state.items[item_id] = item
        return {"id": item_id, "name": item.name, "price": item.price}

    @app.get("/items/{item_id}")
    async def get_item(item_id: int):
        item = app.state.items.get(item_id)
        return {"id": item_id, "name": item.name if item else None}

    @app.get("/stream")
    async def stream():
        async def parts():
            for word in (b"fast", b"api", b"stream"):
                yield word + b"\n"
        return StreamingResponse(parts(), media_type="text/plain")

    return app


def __getattr__(name):
    # Built on first use, so that importing this module needs neither package.
    if name == "starlette_app":
        value = _starlette()
    elif name == "fastapi_app":
        value = _fastapi()
    else:
        raise AttributeError(name)
    globals()[name] = value
    return value
