import asyncio
from typing import Any, Awaitable, Optional

from typing_extensions import Self, disjoint_base

from cno.aio import Request

ASGI_VERSION: dict[str, str]
BODY_CHUNK: int
INIT: int
STARTED: int
BODY: int
TRAILERS: int
DONE: int

class ClientDisconnected(OSError): ...
class MessageError(RuntimeError): ...

def bytes_pairs(headers: Any, key: str) -> list[tuple[bytes, bytes]]: ...
def scope_template(root_path: str, extensions: dict[str, Any], client: Any, server: Any,
                   scheme: str) -> dict[str, Any]: ...
def request_scope(request: Request, template: dict[str, Any],
                  state: Optional[dict[str, Any]], http_version: str) -> dict[str, Any]: ...
def build_scope(request: Request, root_path: str, state: Optional[dict[str, Any]],
                extensions: dict[str, Any], client: Any, server: Any, scheme: str,
                http_version: str) -> dict[str, Any]: ...

@disjoint_base
class CycleBase:
    request: Request
    done: asyncio.Future[None]
    state: int
    status: int
    headers: Any
    trailers: Optional[list[tuple[bytes, bytes]]]
    want_trailers: bool
    body_done: bool
    continue_due: bool
    def __new__(cls, request: Request, done: asyncio.Future[None]) -> Self: ...
    @property
    def complete(self) -> bool: ...
    def receive(self) -> Awaitable[dict[str, Any]]: ...
    def send(self, message: dict[str, Any]) -> Awaitable[None]: ...
    def _start(self, message: dict[str, Any]) -> None: ...
    # the subclass's coroutines
    def _receive(self) -> Awaitable[dict[str, Any]]: ...
    def _send(self, message: dict[str, Any]) -> Awaitable[None]: ...
    def _finish(self, rest: Awaitable[None]) -> Awaitable[None]: ...
