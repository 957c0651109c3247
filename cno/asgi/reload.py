"""``cno serve MODULE:APP --reload``: the server runs in a child process, and a new child
is started whenever a ``.py`` file under the watched directories changes (development
only). Watching is done by the ``watchfiles`` package (``pip install watchfiles``).

The reloader binds the listening socket once and hands it to every child, so the port
stays the same (``--port 0`` too) and connections made while a child restarts wait in
the listen backlog instead of being refused. Each child is a fresh interpreter
(multiprocessing's spawn), which imports the application anew.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
from typing import Any, Iterable, Optional

from cno.asgi.lifespan import LifespanFailure
from cno.asgi.server import Config, _listening_socket, serve
from cno.asgi.workers import run_loop

logger = logging.getLogger("cno.asgi")

POLL = 0.5   # seconds between checks that the child is still alive, while no file changes


def _serve_child(config: Config, sock: socket.socket) -> None:
    """A child's life: serve on the socket the reloader bound (received as a duplicate)."""
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = dataclasses.replace(config, fd=sock.detach())
    try:
        run_loop(serve(config.app, config=config), config.loop)
    except KeyboardInterrupt:
        pass   # (Ctrl-C before the server's own signal handlers were in place)
    except LifespanFailure as e:
        logger.error("cno: %s", e)
        sys.exit(1)
    except Exception:
        logger.exception("cno: the server failed")
        sys.exit(1)


class Reloader:
    """Serves ``config`` in a child process, restarted when a ``.py`` file under ``dirs``
    (default: the current directory) changes, until SIGINT or SIGTERM. Raises
    ImportError if watchfiles is missing, ValueError for a configuration it cannot run
    (``workers`` above 1, a directory that does not exist)."""

    def __init__(self, config: Config, dirs: Iterable[str] = ()) -> None:
        if config.workers > 1:
            raise ValueError("--reload runs one server process: not with --workers")
        self.config = config
        self.dirs = [os.path.abspath(d) for d in dirs] or [os.getcwd()]
        for d in self.dirs:
            if not os.path.isdir(d):
                raise ValueError("--reload-dir: %s: %s" % (
                    "not a directory" if os.path.exists(d) else "no such directory", d))
        try:
            import watchfiles
        except ImportError as e:
            raise ImportError("--reload needs the watchfiles package: "
                              "pip install watchfiles") from e
        self._watchfiles = watchfiles
        self.process: Any = None
        self._context = multiprocessing.get_context("spawn")

    def check_app(self) -> None:
        """Raise ImportError if the application's module cannot be found, without
        running it (the children import it; the reloader does not)."""
        app = self.config.app
        if not isinstance(app, str):
            return
        module = app.partition(":")[0]
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, "")   # where the children will look too (Config.load_app)
        if not module or importlib.util.find_spec(module) is None:
            raise ImportError("no module named %r" % module)

    def _start(self, sock: socket.socket) -> None:
        self.process = self._context.Process(target=_serve_child, args=(self.config, sock),
                                             name="cno-server")
        self.process.start()

    def _stop(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.is_alive():
            process.terminate()   # SIGTERM: the server's graceful shutdown
            process.join((self.config.graceful_timeout or 0) + 5)
            if process.is_alive():
                process.kill()
        process.join()

    def run(self) -> None:
        """Bind, start the first child, and watch; returns after SIGINT or SIGTERM once
        the child has stopped (OSError if the socket cannot be bound)."""
        watchfiles = self._watchfiles
        sock = _listening_socket(self.config)
        stop = threading.Event()

        def on_signal(signum: int, frame: Any) -> None:
            stop.set()

        quiet = logging.getLogger("watchfiles")
        if quiet.level == logging.NOTSET:
            quiet.setLevel(logging.WARNING)   # (not a line per batch of changes at INFO)
        old = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        logger.info("cno: reloader (pid %d): restarting the server when a .py file "
                    "changes under %s", os.getpid(), ", ".join(self.dirs))
        try:
            self._start(sock)
            exited: Optional[int] = None   # the exit code of a child that stopped by itself
            for changes in watchfiles.watch(
                    *self.dirs, watch_filter=watchfiles.PythonFilter(), stop_event=stop,
                    raise_interrupt=False, rust_timeout=int(POLL * 1000),
                    yield_on_timeout=True):
                if changes:
                    paths = sorted({os.path.relpath(path) for _, path in changes})
                    logger.info("cno: %s changed: restarting the server", ", ".join(
                        paths[:3] + (["..."] if len(paths) > 3 else [])))
                    self._stop()
                    self._start(sock)
                    exited = None
                elif exited is None and not stop.is_set() and self.process is not None \
                        and not self.process.is_alive():
                    exited = self.process.exitcode
                    logger.warning("cno: the server exited (code %s); it starts again when "
                                   "a file changes", exited)
        finally:
            self._stop()
            for sig, handler in old.items():
                signal.signal(sig, handler)
            sock.close()
