"""How cno.Server runs request handlers (docs/aio.md, "How handlers run"): each in an
asyncio Task that is ``asyncio.current_task()`` from its first line to its last; each in
its own copy of the connection's context; never cancelled by cno (a reset or a lost
connection reaches the handler as StreamReset / ConnectionClosed), and answered when
someone else cancels it; on Python 3.12+ the task starts eagerly (a handler that answers
without waiting is done, never scheduled, when the read that brought its request
returns), never inside an engine event. Every test runs on asyncio's loop and uvloop;
the last one runs this file under Python 3.12+ when such an interpreter can build cno.
"""
import asyncio
import contextvars
import glob
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import cno
import raw_frames as rf
from aio_local import HOST, T, get, run, served

EAGER = sys.version_info >= (3, 12)
VAR = contextvars.ContextVar("cno_test_eager", default="unset")


@pytest.fixture(params=["asyncio", "uvloop"])
def loop_factory(request):
    if request.param == "uvloop":
        return pytest.importorskip("uvloop").new_event_loop
    return asyncio.new_event_loop


def collect_errors():
    """The running loop's exception handler records what it is given: a list of
    (message, exception)."""
    errors = []
    asyncio.get_running_loop().set_exception_handler(
        lambda loop, context: errors.append((context.get("message"), context.get("exception"))))
    return errors


# -- raw peers: bytes on a socket, so that what arrives in one read is ours to choose ------

REQUEST = "GET %s HTTP/1.1\r\nhost: t\r\n\r\n"


async def h1_responses(reader, n):
    """[(status, body)] of n HTTP/1.1 responses with a content-length."""
    out = []
    for _ in range(n):
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), T)
        lines = head.decode("latin-1").split("\r\n")
        fields = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        body = await asyncio.wait_for(reader.readexactly(int(fields["content-length"])), T)
        out.append((int(lines[0].split()[1]), body))
    return out


def h2_head(stream, path, end_stream=True):
    return rf.headers(stream, rf.literal_block([(":method", "GET"), (":scheme", "http"),
                                                (":path", path), (":authority", "t")]),
                      end_stream=end_stream)


class H2:
    """A hand-made HTTP/2 client on a socket: frames out as given, frames in parsed."""

    async def open(self, port):
        self.reader, self.writer = await asyncio.open_connection(HOST, port)
        self.parser = rf.FrameParser()
        self.writer.write(rf.PREFACE + rf.settings())
        return self

    def send(self, *frames):
        self.writer.write(b"".join(frames))

    async def until(self, done):
        """Frames until done(frames) is true."""
        while not done(self.parser.frames):
            data = await asyncio.wait_for(self.reader.read(65536), T)
            assert data, "the server closed the connection: %r" % self.parser.frames
            self.parser.feed(data)
        return self.parser.frames

    def of(self, stream):
        return [f for f in self.parser.frames if f.stream == stream]

    def close(self):
        self.writer.close()


def ended(stream):
    return lambda frames: any(f.stream == stream and (f.flags & rf.END_STREAM
                                                      or f.type == rf.RST_STREAM)
                              for f in frames)


# -- current_task() --------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["h1", "h2c"])
def test_current_task_is_one_task_for_the_whole_request(loop_factory, mode):
    seen = {}

    async def handle(request):
        tasks = seen[request.path] = [asyncio.current_task()]
        if request.path == "/sync":   # answers without ever waiting
            await request.respond(200, [], b"sync")
            tasks.append(asyncio.current_task())
            return
        await asyncio.sleep(0)
        tasks.append(asyncio.current_task())
        body = await request.payload.read()
        tasks.append(asyncio.current_task())
        await request.respond(200, [], body)
        tasks.append(asyncio.current_task())

    async def main():
        errors = collect_errors()
        me = asyncio.current_task()
        async with served(mode, handle) as peer:
            client = await peer.connect()
            response, body = await get(client, "GET", "/sync")
            assert (response.code, body) == (200, b"sync")
            response, body = await get(client, "POST", "/async", data=b"async")
            assert (response.code, body) == (200, b"async")
        assert set(seen) == {"/sync", "/async"}
        for tasks in seen.values():
            assert isinstance(tasks[0], asyncio.Task)
            assert all(t is tasks[0] for t in tasks), tasks
            assert tasks[0] is not me and tasks[0].done()
        assert seen["/sync"][0] is not seen["/async"][0]
        assert not errors

    run(main(), loop_factory=loop_factory)


# -- contextvars -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["h1", "h2c"])
def test_each_request_runs_in_a_copy_of_the_servers_context(loop_factory, mode):
    seen = []

    async def handle(request):
        seen.append((request.path, "start", VAR.get()))
        VAR.set(request.path)
        await asyncio.sleep(0)
        seen.append((request.path, "after await", VAR.get()))
        await request.respond(200, [], b"")

    async def main():
        VAR.set("server")   # what serve() is called in
        async with served(mode, handle) as peer:
            VAR.set("changed after serve")   # (not the server's business)
            client = await peer.connect()
            await get(client, path="/1")
            await get(client, path="/2")   # the same connection
            if mode == "h2c":   # at once on one connection
                await asyncio.gather(get(client, path="/3"), get(client, path="/4"))
        assert VAR.get() == "changed after serve"   # no handler's value leaked here
        return seen

    seen = run(main(), loop_factory=loop_factory)
    paths = {p for p, _, _ in seen}
    assert paths == ({"/1", "/2", "/3", "/4"} if mode == "h2c" else {"/1", "/2"})
    for path, when, value in seen:
        assert value == ("server" if when == "start" else path), seen


def test_pipelined_request_does_not_inherit_the_context_of_the_handler_that_parsed_it(
        loop_factory):
    # HTTP/1.1 with one request at a time (max_concurrent_streams=1): /a is answered
    # after a wait, from its task; writing that answer is what lets the engine parse /b,
    # which must still start in the connection's context.
    seen = {}

    async def handle(request):
        seen[request.path] = VAR.get()
        VAR.set(request.path)
        if request.path == "/a":
            await asyncio.sleep(0.01)
        await request.respond(200, [], request.path.encode())

    async def main():
        VAR.set("server")
        async with served("h1", handle, max_concurrent_streams=1) as peer:
            reader, writer = await asyncio.open_connection(HOST, peer.port)
            writer.write("".join(REQUEST % p for p in ("/a", "/b", "/c")).encode())
            responses = await h1_responses(reader, 3)
            writer.close()
        return responses

    responses = run(main(), loop_factory=loop_factory)
    assert responses == [(200, b"/a"), (200, b"/b"), (200, b"/c")]
    assert seen == {"/a": "server", "/b": "server", "/c": "server"}


# -- HTTP/1.1 pipelining: answers in order ---------------------------------------------------

@pytest.mark.parametrize("streams", [1, 100], ids=["parsed-one-by-one", "parsed-at-once"])
def test_pipelined_answers_keep_their_order(loop_factory, streams):
    async def handle(request):
        n = int(request.path[1:])
        if n % 3 == 0:
            await asyncio.sleep(0.01 * (n % 2 + 1))   # later than those behind it
        elif n % 3 == 1:
            await asyncio.sleep(0)
        await request.respond(200, [], request.path.encode())

    async def main():
        errors = collect_errors()
        async with served("h1", handle, max_concurrent_streams=streams) as peer:
            reader, writer = await asyncio.open_connection(HOST, peer.port)
            writer.write("".join(REQUEST % ("/%d" % i) for i in range(12)).encode())
            responses = await h1_responses(reader, 12)
            writer.close()
        assert not errors
        return responses

    responses = run(main(), loop_factory=loop_factory)
    assert responses == [(200, b"/%d" % i) for i in range(12)]


# -- a reset or a lost connection: the handler learns of it, and is not cancelled ------------

def test_stream_reset_before_the_handler_ran(loop_factory):
    # HEADERS and RST_STREAM in one read: the handler starts with its stream already
    # gone; respond() says so (StreamReset); nothing is written for it, nothing reported.
    outcome = {}

    async def handle(request):
        outcome[request.path] = ["ended" if request.ended else "open"]
        try:
            await request.respond(200, [], b"late")
            outcome[request.path].append("answered")
        except cno.StreamReset:
            outcome[request.path].append("StreamReset")
        except asyncio.CancelledError:
            outcome[request.path].append("cancelled")
            raise

    async def main():
        errors = collect_errors()
        async with served("h2c", handle) as peer:
            c = await H2().open(peer.port)
            c.send(h2_head(1, "/gone"), rf.rst_stream(1, rf.CANCEL))
            c.send(h2_head(3, "/next"))
            await c.until(ended(3))
            assert [f.type for f in c.of(1)] == []
            assert [f.headers for f in c.of(3) if f.type == rf.HEADERS][0][0] == (":status", "200")
            c.close()
        assert not errors

    run(main(), loop_factory=loop_factory)
    assert outcome == {"/gone": ["ended", "StreamReset"], "/next": ["open", "answered"]}


def test_stream_reset_while_the_handler_waits(loop_factory):
    outcome = {}

    async def handle(request):
        reading.set()
        seen = outcome[request.path] = []
        try:
            await request.payload.read()
            seen.append("read")
        except cno.StreamReset as e:
            seen.append(("StreamReset", e.code))
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        seen.append(request.ended)

    async def main():
        nonlocal reading
        reading = asyncio.Event()
        errors = collect_errors()
        async with served("h2c", handle) as peer:
            c = await H2().open(peer.port)
            c.send(h2_head(1, "/upload", end_stream=False))
            await asyncio.wait_for(reading.wait(), T)
            c.send(rf.rst_stream(1, rf.CANCEL))
            c.send(h2_head(3, "/next", end_stream=False), rf.data(3, b"", end_stream=True))
            await c.until(ended(3))   # (/next answered: 500, it never responds)
            assert [f.type for f in c.of(1) if f.type != rf.WINDOW_UPDATE] == []
            c.close()
        assert not errors

    reading = None
    run(main(), loop_factory=loop_factory)
    assert outcome == {"/upload": [("StreamReset", rf.CANCEL), True], "/next": ["read", False]}


@pytest.mark.parametrize("mode", ["h1", "h2c"])
def test_connection_lost_while_the_handler_waits(loop_factory, mode):
    outcome = []

    async def handle(request):
        reading.set()
        try:
            await request.payload.read()
            outcome.append("read")
        except (cno.StreamReset, cno.ConnectionClosed) as e:
            outcome.append(type(e).__name__)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        outcome.append(request.ended)
        finished.set()

    async def main():
        nonlocal reading, finished
        reading, finished = asyncio.Event(), asyncio.Event()
        errors = collect_errors()
        async with served(mode, handle) as peer:
            if mode == "h1":
                reader, writer = await asyncio.open_connection(HOST, peer.port)
                writer.write(b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nhalf")
            else:
                c = await H2().open(peer.port)
                c.send(h2_head(1, "/", end_stream=False), rf.data(1, b"half"))
                writer = c.writer
            await asyncio.wait_for(reading.wait(), T)
            writer.transport.abort()
            await asyncio.wait_for(finished.wait(), T)
        assert not errors

    reading = finished = None
    run(main(), loop_factory=loop_factory)
    assert outcome in (["StreamReset", True], ["ConnectionClosed", True])


class Memory(asyncio.Transport):
    """A transport that keeps what is written; reads are handed in by the test."""

    def __init__(self):
        super().__init__()
        self.out = []
        self.closing = False

    def write(self, data):
        self.out.append(bytes(data))

    def writelines(self, chunks):
        self.out.append(b"".join(chunks))

    def get_extra_info(self, name, default=None):
        return default

    def is_closing(self):
        return self.closing

    def close(self):
        self.closing = True

    abort = close

    def get_write_buffer_size(self):
        return 0

    def can_write_eof(self):
        return True

    def write_eof(self):
        pass

    def pause_reading(self):
        pass

    def resume_reading(self):
        pass


def feed(conn, data):
    buf = conn.get_buffer(len(data))
    buf[:len(data)] = data
    conn.buffer_updated(len(data))


def test_connection_lost_in_the_read_that_brought_the_request(loop_factory):
    # The request and the loss in one turn of the loop: on 3.11 the handler has not
    # started yet (its task starts at the next turn), on 3.12+ it has run to its first
    # wait. Either way it learns that the body will not come, and is not cancelled.
    outcome = []

    async def handle(request):
        try:
            await request.payload.read()
            outcome.append("read")
        except (cno.StreamReset, cno.ConnectionClosed) as e:
            outcome.append(type(e).__name__)
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise
        try:
            await request.respond(200, [], b"")
            outcome.append("answered")
        except (cno.StreamReset, cno.ConnectionClosed) as e:
            outcome.append(type(e).__name__)

    async def main():
        errors = collect_errors()
        conn = cno.Server(None, handle)
        transport = Memory()
        conn.connection_made(transport)
        feed(conn, b"POST / HTTP/1.1\r\nhost: t\r\ncontent-length: 10\r\n\r\nhalf")
        conn.connection_lost(None)
        for _ in range(5):
            await asyncio.sleep(0)
        assert not conn._tasks and not errors
        return transport.out

    out = run(main(), loop_factory=loop_factory)
    assert outcome == ["StreamReset", "ConnectionClosed"]
    assert out == []


# -- cancelled by someone else: answered, not reported ---------------------------------------

@pytest.mark.parametrize("mode", ["h1", "h2c"])
@pytest.mark.parametrize("case", ["unanswered", "denied", "self-before-await", "mid-body"])
def test_a_cancelled_handler(loop_factory, mode, case):
    tasks = []

    async def handle(request):
        tasks.append(asyncio.current_task())
        if case == "self-before-await":
            # cancel() inside the part that runs without waiting: the handler goes on
            # to its first await, which raises CancelledError
            asyncio.current_task().cancel()
            try:
                await asyncio.sleep(0)
            except asyncio.CancelledError:
                await request.respond(200, [], b"%d" % asyncio.current_task().cancelling())
            return
        if case == "mid-body":
            await request.start(200)
            await request.write(b"part")
        try:
            await asyncio.Event().wait()   # until cancelled
        except asyncio.CancelledError:
            if case == "denied":
                await request.respond(200, [], b"denied")
                return
            raise

    async def main():
        errors = collect_errors()
        async with served(mode, handle) as peer:
            client = await peer.connect()
            pending = asyncio.ensure_future(client.request("GET", "/", []))
            while not tasks:
                await asyncio.sleep(0)
            if case != "self-before-await":
                if case == "mid-body":
                    response = await asyncio.wait_for(pending, T)
                for _ in range(3):
                    await asyncio.sleep(0)
                tasks[0].cancel()
            if case == "mid-body":
                with pytest.raises((cno.StreamReset, cno.ConnectionClosed)) as info:
                    await asyncio.wait_for(response.payload.read(), T)
                if mode == "h2c":
                    assert info.value.code == 0x2   # INTERNAL_ERROR: the response is broken
                result = None
            else:
                response = await asyncio.wait_for(pending, T)
                result = response.code, await asyncio.wait_for(response.payload.read(), T)
            await asyncio.wait_for(asyncio.wait(tasks), T)
        assert not errors   # a cancellation is not a failure to report
        return result

    result = run(main(), loop_factory=loop_factory)
    assert tasks[0].done()
    assert tasks[0].cancelled() == (case in ("unanswered", "mid-body"))
    assert result == {"unanswered": (500, b""), "denied": (200, b"denied"),
                      "self-before-await": (200, b"1"), "mid-body": None}[case]


# -- exceptions ------------------------------------------------------------------------------

class Oops(Exception):
    pass


@pytest.mark.parametrize("mode", ["h1", "h2c"])
@pytest.mark.parametrize("where", ["before-await", "after-await", "after-head"])
def test_a_handler_that_raises(loop_factory, mode, where):
    async def handle(request):
        if where == "before-await":
            raise Oops(where)
        await asyncio.sleep(0)
        if where == "after-head":
            await request.start(200)
            await request.write(b"part")
        raise Oops(where)

    async def main():
        errors = collect_errors()
        async with served(mode, handle) as peer:
            client = await peer.connect()
            response = await asyncio.wait_for(client.request("GET", "/", []), T)
            if where == "after-head":
                assert response.code == 200
                with pytest.raises((cno.StreamReset, cno.ConnectionClosed)) as info:
                    await asyncio.wait_for(response.payload.read(), T)
                if mode == "h2c":
                    assert info.value.code == 0x2
                else:
                    assert isinstance(info.value, cno.ConnectionClosed)
            else:
                assert response.code == 500
                assert await asyncio.wait_for(response.payload.read(), T) == b""
        assert [type(e) for _, e in errors] == [Oops]
        assert str(errors[0][1]) == where

    run(main(), loop_factory=loop_factory)


# -- when handlers start ---------------------------------------------------------------------

def test_a_handler_that_needs_no_wait_is_done_when_the_read_returns(loop_factory):
    # 3.12+: the task starts eagerly, so the answer is written before the read that
    # brought the request returns, and the task is never scheduled. 3.11 has no eager
    # start: the task runs at the loop's next turn (docs/aio.md).
    seen = {}

    async def handle(request):
        task = asyncio.current_task()
        seen[request.path] = (task, task in asyncio.all_tasks())
        if request.path == "/wait":
            await asyncio.sleep(0)
        await request.respond(200, [], request.path.encode())

    def answered(transport):
        return {f.stream for f in rf.parse_frames(b"".join(transport.out))
                if f.type == rf.HEADERS}

    async def main():
        errors = collect_errors()
        conn = cno.Server(None, handle)
        transport = Memory()
        conn.connection_made(transport)
        feed(conn, rf.PREFACE + rf.settings() + h2_head(1, "/now"))
        if EAGER:
            assert answered(transport) == {1}
            assert not conn._tasks
            now = seen["/now"][0]
            assert now.done() and now not in asyncio.all_tasks()
        else:
            assert answered(transport) == set() and not seen and len(conn._tasks) == 1
        feed(conn, h2_head(3, "/wait"))
        if EAGER:
            assert set(conn._tasks) == {seen["/wait"][0]}   # suspended: its task goes on
        for _ in range(5):
            await asyncio.sleep(0)
        assert answered(transport) == {1, 3}
        assert not conn._tasks and not errors
        assert set(seen) == {"/now", "/wait"}
        assert all(in_all for _, in_all in seen.values())   # a task while it runs
        conn.connection_lost(None)

    run(main(), loop_factory=loop_factory)


def test_a_task_factory_gets_requests_whole_and_the_connection_lives_on(loop_factory):
    # A task factory may start tasks eagerly (3.12's asyncio.eager_task_factory does):
    # the task is made once the engine has delivered the whole request (a GET's end
    # included), not inside the event that announced its head, so that a handler that
    # runs at once sees its request complete, and HTTP/1.1 keeps the connection.
    made = []

    def factory(loop, coro, **kwargs):
        request = coro.cr_frame.f_locals.get("request")
        made.append(request.payload.at_eof() if request is not None else None)
        kwargs.pop("eager_start", None)   # (uvloop passes it; 3.13.0's factory refuses it)
        if EAGER:
            return asyncio.eager_task_factory(loop, coro, **kwargs)
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def handle(request):
        await request.respond(200, [], b"%d" % request.payload.at_eof())

    async def main():
        errors = collect_errors()
        asyncio.get_running_loop().set_task_factory(factory)
        try:
            async with served("h1", handle) as peer:
                client = await peer.connect()
                for _ in range(3):   # one connection
                    response, body = await get(client)
                    assert (response.code, body) == (200, b"1")
                assert not client.lost
        finally:
            asyncio.get_running_loop().set_task_factory(None)
        assert not errors

    run(main(), loop_factory=loop_factory)
    assert made.count(True) == 3 and False not in made


# -- the ASGI server: the same dispatch --------------------------------------------------------

@pytest.mark.parametrize("http2", [False, True], ids=["h1", "h2c"])
def test_asgi_applications_run_the_same_way(loop_factory, http2):
    import cno.asgi
    tasks = {}

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        path = scope["path"]
        tasks[path] = [asyncio.current_task(), VAR.get()]
        VAR.set(path)
        if path == "/cancelled":
            await asyncio.Event().wait()   # until the test cancels the task
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": path.encode()})
        tasks[path].append(asyncio.current_task())

    async def main():
        errors = collect_errors()
        VAR.set("server")
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        server = loop.create_task(cno.asgi.serve(app, port=0, lifespan="off", ready=ready))
        port = (await asyncio.wait_for(ready, T))[0].getsockname()[1]
        try:
            client = await cno.connect("http://%s:%d/" % (HOST, port), http2=http2)
            for path in ("/1", "/2"):
                response, body = await get(client, path=path)
                assert (response.code, body) == (200, path.encode())
            pending = asyncio.ensure_future(get(client, path="/cancelled"))
            while "/cancelled" not in tasks:
                await asyncio.sleep(0)
            tasks["/cancelled"][0].cancel()
            response, body = await pending
            assert (response.code, body) == (500, b"")
            client.close()
        finally:
            server.cancel()
            await asyncio.gather(server, return_exceptions=True)
        assert not errors

    run(main(), loop_factory=loop_factory)
    for path in ("/1", "/2"):
        first, value, last = tasks[path]
        assert isinstance(first, asyncio.Task) and first is last and value == "server"
    assert tasks["/1"][0] is not tasks["/2"][0]
    assert tasks["/cancelled"][0].cancelled()


# -- the same under Python 3.12+ -------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def _newer_python():
    """A Python 3.12+ interpreter other than this one that has what building cno and
    running this file need (Cython, setuptools 77+, pytest, hpack, hyperframe), or None."""
    candidates = [shutil.which("python3.%d" % minor) for minor in (12, 13, 14)]
    pyenv = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates += sorted(glob.glob(os.path.join(pyenv, "versions", "3.1[2-9]*", "bin", "python3")))
    probe = ("import sys, Cython, pytest, setuptools, hpack, hyperframe; "
             "assert sys.version_info >= (3, 12); "
             "assert int(setuptools.__version__.split('.')[0]) >= 77")
    for exe in candidates:
        if exe and os.path.realpath(exe) != os.path.realpath(sys.executable) and \
                subprocess.run([exe, "-c", probe], capture_output=True).returncode == 0:
            return exe
    return None


@pytest.mark.skipif(EAGER, reason="this interpreter runs the eager path itself")
def test_eager_start_under_python_3_12():
    """This file under Python 3.12+ (cno built for it in a temporary directory), where
    handlers start eagerly; skipped where no such interpreter can build cno."""
    if not (ROOT / "cno" / "_core.pyx").is_file():
        pytest.skip("no source tree beside tests/ to build cno from")
    exe = _newer_python()
    if exe is None:
        pytest.skip("no Python 3.12+ with Cython, setuptools>=77, pytest, hpack and hyperframe")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "src"
        shutil.copytree(ROOT / "cno", src / "cno", ignore=shutil.ignore_patterns(
            "*.so", "*.c", "*.html", "__pycache__", "_huffman_table.h"))
        for name in ("setup.py", "pyproject.toml", "README.md", "LICENSE"):
            shutil.copy(ROOT / name, src / name)
        shutil.copytree(ROOT / "tools", src / "tools")
        build = subprocess.run([exe, "setup.py", "build_ext", "--inplace", "-q"], cwd=src,
                               capture_output=True, text=True, timeout=600)
        assert build.returncode == 0, build.stderr[-3000:]
        env = dict(os.environ, PYTHONPATH=str(src))
        env.pop("CNO_TEST_INSTALLED", None)
        where = subprocess.run([exe, "-c", "import cno; print(cno.__file__)"], env=env,
                               cwd=tmp, capture_output=True, text=True)
        assert where.stdout.startswith(str(src)), where.stdout + where.stderr
        tests = subprocess.run(
            [exe, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", __file__,
             "-k", "not under_python"],
            cwd=Path(__file__).parent, env=env, capture_output=True, text=True, timeout=300)
        assert tests.returncode == 0, tests.stdout[-5000:] + tests.stderr[-2000:]
        assert " passed" in tests.stdout
