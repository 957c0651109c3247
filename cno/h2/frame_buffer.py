"""FrameBuffer: iterate over HTTP/2 bytes frame by frame, as h2.frame_buffer does.

cno.h2 does not use it (cno's engine parses frames); it is here for code that reads
frames itself, e.g. to look at what data_to_send() returned. It needs the
``hyperframe`` package, whose frame objects it yields.
"""
from __future__ import annotations

from typing import Any

from .exceptions import FrameDataMissingError, FrameTooLargeError, ProtocolError

#: The most CONTINUATION frames one header block may have.
CONTINUATION_BACKLOG = 64

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

__all__ = ["CONTINUATION_BACKLOG", "FrameBuffer"]


class FrameBuffer:
    """Bytes in (:meth:`add_data`), hyperframe frames out (iteration), a header block's
    CONTINUATIONs merged into its HEADERS or PUSH_PROMISE. ``server``: the input starts
    with the client preface, which is checked and dropped. ``max_frame_size`` bounds
    frames (FrameTooLargeError)."""

    def __init__(self, server: bool = False) -> None:
        self._data = bytearray()
        self.max_frame_size = 0
        self._preamble = _PREFACE if server else b""
        self._headers_buffer: list[Any] = []

    def add_data(self, data: Any) -> None:
        """Append bytes (any buffer)."""
        view = memoryview(data)
        if self._preamble:
            k = min(len(self._preamble), len(view))
            if bytes(view[:k]) != self._preamble[:k]:
                raise ProtocolError("Invalid HTTP/2 preamble.")
            self._preamble = self._preamble[k:]
            view = view[k:]
        self._data += view

    def __iter__(self) -> Any:
        return self

    def __next__(self) -> Any:
        from hyperframe.exceptions import InvalidDataError, InvalidFrameError
        from hyperframe.frame import ContinuationFrame, Frame, HeadersFrame, PushPromiseFrame
        while True:
            if len(self._data) < 9:
                raise StopIteration
            try:
                f, length = Frame.parse_frame_header(memoryview(self._data)[:9])
            except (InvalidDataError, InvalidFrameError) as err:
                raise ProtocolError("Received frame with invalid header: %s" % err) from err
            if len(self._data) < 9 + length:
                raise StopIteration
            if length > self.max_frame_size:
                raise FrameTooLargeError("Received overlong frame: length %d, max %d"
                                         % (length, self.max_frame_size))
            try:
                f.parse_body(memoryview(bytes(self._data[9:9 + length])))
            except InvalidDataError as err:
                raise ProtocolError("Received frame with non-compliant data") from err
            except InvalidFrameError as err:
                raise FrameDataMissingError("Frame data missing or invalid") from err
            del self._data[:9 + length]   # (in place: the bytearray stays the same object)
            if self._headers_buffer:
                first = self._headers_buffer[0]
                if not isinstance(f, ContinuationFrame) or f.stream_id != first.stream_id:
                    raise ProtocolError("Invalid frame during header block.")
                self._headers_buffer.append(f)
                if len(self._headers_buffer) > CONTINUATION_BACKLOG:
                    raise ProtocolError("Too many continuation frames received.")
                if "END_HEADERS" not in f.flags:
                    continue
                first.flags.add("END_HEADERS")
                first.data = b"".join(x.data for x in self._headers_buffer)
                self._headers_buffer = []
                return first
            if isinstance(f, (HeadersFrame, PushPromiseFrame)) and "END_HEADERS" not in f.flags:
                self._headers_buffer.append(f)
                continue
            return f
