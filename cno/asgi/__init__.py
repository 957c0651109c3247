"""``cno.asgi``: an ASGI 3 server on cno's engine (docs/asgi.md).

    await cno.asgi.serve(app, host="127.0.0.1", port=8000)     # or "module:app"
    python -m cno serve module:app --port 8000                 # the same, from a shell

- :func:`serve` and :class:`Config` (server.py): listening, lifespan, graceful shutdown.
- :class:`Cycle` and :func:`build_scope` (http.py): one HTTP request's scope, receive
  and send, with the trailers, early-hint, pathsend and push extensions.
- :class:`Lifespan` (lifespan.py).
- :func:`run` (workers.py): serve in this process, or in worker processes sharing the
  port under a :class:`Supervisor`.
- :class:`Reloader` (reload.py): ``--reload``, the server in a child process restarted
  when the code changes (with the watchfiles package).
- ``cno.asgi.demo``: the demo application ``cno serve`` runs without an argument.
"""
from cno.asgi.http import ClientDisconnected, Cycle, MessageError, build_scope
from cno.asgi.lifespan import Lifespan, LifespanFailure
from cno.asgi.reload import Reloader
from cno.asgi.server import ASGIServer, Config, serve
from cno.asgi.workers import Supervisor, run, run_loop

__all__ = [
    "ASGIServer", "ClientDisconnected", "Config", "Cycle", "Lifespan", "LifespanFailure",
    "MessageError", "Reloader", "Supervisor", "build_scope", "run", "run_loop", "serve",
]
