"""The receive-window policy of h2.windows: when consumed bytes earn a WINDOW_UPDATE.

cno.h2 keeps one WindowManager per receive window (the connection's and each stream's);
the engine sends the WINDOW_UPDATE frames it decides on.
"""
from __future__ import annotations

from typing import Any

from .exceptions import FlowControlError

#: The largest window HTTP/2 allows (RFC 9113 6.9.1).
LARGEST_FLOW_CONTROL_WINDOW = 2**31 - 1

__all__ = ["LARGEST_FLOW_CONTROL_WINDOW", "WindowManager"]


class WindowManager:
    """One receive window: how much the peer may still send (``current_window_size``),
    the largest it was (``max_window_size``), and the bytes the application processed
    and has not given back yet."""

    __slots__ = ("max_window_size", "current_window_size", "_bytes_processed")

    def __init__(self, max_window_size: int) -> None:
        assert max_window_size <= LARGEST_FLOW_CONTROL_WINDOW
        self.max_window_size = max_window_size
        self.current_window_size = max_window_size
        self._bytes_processed = 0

    def window_consumed(self, size: int) -> None:
        """The peer sent ``size`` flow-controlled bytes: the window shrinks
        (FlowControlError below zero)."""
        self.current_window_size -= size
        if self.current_window_size < 0:
            raise FlowControlError("Flow control window shrunk below 0")

    def window_opened(self, size: int) -> None:
        """The window grew by ``size`` (a WINDOW_UPDATE we sent, or a settings change)."""
        self.current_window_size += size
        if self.current_window_size > LARGEST_FLOW_CONTROL_WINDOW:
            raise FlowControlError("Flow control window mustn't exceed %d"
                                   % LARGEST_FLOW_CONTROL_WINDOW)
        if self.current_window_size > self.max_window_size:
            self.max_window_size = self.current_window_size

    def process_bytes(self, size: int) -> Any:
        """The application processed ``size`` bytes; returns the increment to send now,
        or 0/None when it is not worth a frame yet."""
        self._bytes_processed += size
        return self._maybe_update_window()

    def _maybe_update_window(self) -> Any:
        # A frame once half the window was processed, or, when the window is shut,
        # once 1024 bytes (a quarter of a small window) were: fewer frames for many
        # small DATA frames, and a stalled peer is never left waiting.
        processed = self._bytes_processed
        if not processed:
            return None
        increment = 0
        if processed >= self.max_window_size // 2 or (
                self.current_window_size == 0
                and processed > min(1024, self.max_window_size // 4)):
            increment = min(processed, self.max_window_size - self.current_window_size)
            self._bytes_processed = 0
        self.current_window_size += increment
        return increment
