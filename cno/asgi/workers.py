"""Running the ASGI server: :func:`run` in this process, or ``workers`` processes that
share the port (SO_REUSEPORT: the kernel spreads connections over their listening
sockets) under a supervisor that restarts a worker that dies and stops them all on
SIGINT/SIGTERM."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import os
import signal
import socket
import time
from typing import Any, Awaitable

from cno.asgi.server import Config, serve

logger = logging.getLogger("cno.asgi")

RESTART_WINDOW = 10.0   # seconds: a worker dying this soon after its start counts as a crash
MAX_QUICK_CRASHES = 5   # ...and this many in a row stop the supervisor (no restart loop)


def run_loop(main: Awaitable[None], loop: str = "auto") -> None:
    """Run ``main`` on asyncio's loop or uvloop's (``auto``: uvloop when installed)."""
    if loop not in ("auto", "asyncio", "uvloop"):
        raise ValueError("loop must be 'auto', 'asyncio' or 'uvloop', not %r" % (loop,))
    if loop != "asyncio":
        try:
            import uvloop
        except ImportError:
            if loop == "uvloop":
                raise
        else:
            uvloop.run(main)  # type: ignore[arg-type]
            return
    asyncio.run(main)  # type: ignore[arg-type]


def run(config: Config) -> None:
    """Serve ``config`` until SIGINT/SIGTERM: in this process, or in ``config.workers``
    worker processes under a supervisor."""
    if config.workers <= 1:
        run_loop(serve(config.app, config=config), config.loop)
        return
    Supervisor(config).run()


def _worker(config: Config) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    run_loop(serve(config.app, config=config), config.loop)


class Supervisor:
    """Starts ``config.workers`` processes on one port and keeps that many running."""

    def __init__(self, config: Config) -> None:
        if config.fd is not None or config.uds is not None:
            raise ValueError("workers share a TCP port: --workers does not go with "
                             "--fd or --uds")
        self.config = config
        self.stopping = False
        self.workers: list[tuple[Any, float]] = []   # (process, started at)
        self.quick_crashes = 0
        self._context = multiprocessing.get_context("spawn")

    def _reserve_port(self) -> socket.socket:
        """Bind (not listen) a SO_REUSEPORT socket: it fixes the port (0: a free one) for
        the workers, which bind the same port with SO_REUSEPORT themselves."""
        family = socket.AF_INET6 if ":" in self.config.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.config.host, self.config.port))
        return sock

    def _start(self, worker_config: Config) -> None:
        process = self._context.Process(target=_worker, args=(worker_config,),
                                        name="cno-worker")
        process.start()
        self.workers.append((process, time.monotonic()))

    def run(self) -> None:
        reserved = self._reserve_port()
        port = reserved.getsockname()[1]
        worker_config = dataclasses.replace(self.config, port=port, workers=1, reuse_port=True)
        old = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT,
                                                                    signal.SIGTERM)}
        logger.info("cno: serving on %s://%s:%d with %d workers (supervisor pid %d)",
                    "https" if self.config.certfile else "http", self.config.host, port,
                    self.config.workers, os.getpid())
        try:
            for _ in range(self.config.workers):
                self._start(worker_config)
            while not self.stopping:
                time.sleep(0.1)
                self._replace_dead(worker_config)
        finally:
            self._stop_all()
            for sig, handler in old.items():
                signal.signal(sig, handler)
            reserved.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def _replace_dead(self, worker_config: Config) -> None:
        for entry in list(self.workers):
            process, started = entry
            if process.is_alive():
                continue
            self.workers.remove(entry)
            if self.stopping:
                continue
            quick = time.monotonic() - started < RESTART_WINDOW
            self.quick_crashes = self.quick_crashes + 1 if quick else 0
            logger.warning("cno: worker %s exited (code %s); starting another",
                           process.pid, process.exitcode)
            if self.quick_crashes >= MAX_QUICK_CRASHES:
                logger.error("cno: workers keep dying at start; stopping")
                self.stopping = True
                return
            self._start(worker_config)

    def _stop_all(self) -> None:
        for process, _ in self.workers:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        limit = time.monotonic() + (self.config.graceful_timeout or 0) + 5
        for process, _ in self.workers:
            process.join(max(0.0, limit - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        self.workers.clear()

