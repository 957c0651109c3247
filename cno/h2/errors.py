"""HTTP/2 error codes (RFC 9113 section 7), as h2.errors has them."""
from __future__ import annotations

from typing import Any

import enum

__all__ = ["ErrorCodes"]


class ErrorCodes(enum.IntEnum):
    """The error codes of RST_STREAM and GOAWAY frames (RFC 9113 7)."""

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    SETTINGS_TIMEOUT = 0x4
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    CONNECT_ERROR = 0xA
    ENHANCE_YOUR_CALM = 0xB
    INADEQUATE_SECURITY = 0xC
    HTTP_1_1_REQUIRED = 0xD


def _member_or_int(enum_class: Any, value: int) -> Any:
    """enum_class's member for value, else the int itself (an extension's code or
    setting, which h2 hands out as a plain int too)."""
    try:
        return enum_class(value)
    except ValueError:
        return value


def _error_code_from_int(code: int) -> Any:
    """An ErrorCodes member for a known code, else the int itself."""
    return _member_or_int(ErrorCodes, code)
