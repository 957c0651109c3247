"""h11's Connection (``h11._connection``), implemented in cno.h11._h11 (Cython)."""
from cno.h11._h11 import (
    DEFAULT_MAX_INCOMPLETE_EVENT_SIZE, NEED_DATA, PAUSED, Connection, _body_framing,
    _keep_alive,
)

__all__ = ["Connection", "NEED_DATA", "PAUSED"]
