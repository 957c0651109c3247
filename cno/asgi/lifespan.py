"""The ASGI lifespan protocol: ``startup`` before the first connection is accepted,
``shutdown`` after the last one closed, with a ``state`` dict the application fills at
startup and every request scope gets a shallow copy of."""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Optional

from cno.asgi.http import ASGI_VERSION, ASGIApp, Message

logger = logging.getLogger("cno.asgi")


class LifespanFailure(Exception):
    """The application failed its startup (or shutdown): the message says how."""


class Lifespan:
    """Runs the application's lifespan task. ``mode``: "on" (an application that does
    not support lifespan is an error), "auto" (it may raise at once: then lifespan is
    off), "off" (never sent)."""

    def __init__(self, app: ASGIApp, mode: str = "auto") -> None:
        if mode not in ("auto", "on", "off"):
            raise ValueError("lifespan must be 'auto', 'on' or 'off', not %r" % (mode,))
        self.app = app
        self.mode = mode
        self.state: dict[str, Any] = {}
        self.supported = mode != "off"
        self._task: Optional[asyncio.Task[None]] = None
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._error: Optional[BaseException] = None
        self._started = False   # startup completed: later failures are errors

    async def _run(self) -> None:
        scope = {"type": "lifespan", "asgi": ASGI_VERSION, "state": self.state}
        try:
            await self.app(scope, self._to_app.get, self._from_app.put)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:
            self._error = exc
            if self.mode == "auto" and not self._started:
                logger.info("cno: the application does not support lifespan (%s: %s); "
                            "going on without it", type(exc).__name__, exc)
            else:
                logger.error("cno: the lifespan task failed", exc_info=exc)
        finally:
            await self._from_app.put({"type": "lifespan.ended"})

    async def _exchange(self, kind: str) -> None:
        await self._to_app.put({"type": "lifespan." + kind})
        reply = await self._from_app.get()
        rtype = reply.get("type")
        if rtype == "lifespan.%s.complete" % kind:
            return
        if rtype == "lifespan.%s.failed" % kind:
            raise LifespanFailure("the application's %s failed: %s"
                                  % (kind, reply.get("message", "") or "(no message)"))
        # The task ended without answering: in "auto" mode, at startup, that is an
        # application without lifespan support (it raised or returned on the scope).
        if kind == "startup" and self.mode == "auto":
            self.supported = False
            return
        error = self._error
        raise LifespanFailure("the application's lifespan task %s before %s completed%s"
                              % ("failed" if error else "returned", kind,
                                 ": %s: %s" % (type(error).__name__, error) if error else ""))

    async def startup(self) -> None:
        """Send lifespan.startup and wait for the answer (LifespanFailure if it failed)."""
        if not self.supported:
            return
        self._task = asyncio.get_running_loop().create_task(self._run())
        await self._exchange("startup")
        self._started = True

    async def shutdown(self) -> None:
        """Send lifespan.shutdown and wait for the answer (LifespanFailure if it failed)."""
        if not self.supported or self._task is None:
            return
        try:
            if not self._task.done():
                await self._exchange("shutdown")
        finally:
            if not self._task.done():
                self._task.cancel()
                try:
                    await self._task
                except BaseException:
                    pass
