"""The stream states and inputs of h2.stream (RFC 9113 5.1), as enums.

cno.h2 keeps stream state in cno's engine; these name the states H2Connection reports
and the inputs h2's state machine is described by.
"""
from __future__ import annotations

from enum import Enum, IntEnum

__all__ = ["StreamClosedBy", "StreamInputs", "StreamState"]


class StreamState(IntEnum):
    """RFC 9113 5.1's stream states."""

    IDLE = 0
    RESERVED_REMOTE = 1
    RESERVED_LOCAL = 2
    OPEN = 3
    HALF_CLOSED_REMOTE = 4
    HALF_CLOSED_LOCAL = 5
    CLOSED = 6


class StreamInputs(Enum):
    """What can happen to a stream: frames sent and received."""

    SEND_HEADERS = 0
    SEND_PUSH_PROMISE = 1
    SEND_RST_STREAM = 2
    SEND_DATA = 3
    SEND_WINDOW_UPDATE = 4
    SEND_END_STREAM = 5
    RECV_HEADERS = 6
    RECV_PUSH_PROMISE = 7
    RECV_RST_STREAM = 8
    RECV_DATA = 9
    RECV_WINDOW_UPDATE = 10
    RECV_END_STREAM = 11
    RECV_CONTINUATION = 12
    SEND_INFORMATIONAL_HEADERS = 13
    RECV_INFORMATIONAL_HEADERS = 14
    SEND_ALTERNATIVE_SERVICE = 15
    RECV_ALTERNATIVE_SERVICE = 16
    UPGRADE_CLIENT = 17
    UPGRADE_SERVER = 18


class StreamClosedBy(Enum):
    """How a stream came to be closed."""

    SEND_END_STREAM = 0
    RECV_END_STREAM = 1
    SEND_RST_STREAM = 2
    RECV_RST_STREAM = 3
