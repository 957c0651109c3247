"""The exceptions cno.h2 raises, named and arranged as h2.exceptions's."""
from __future__ import annotations

from typing import Any

from .errors import ErrorCodes


class H2Error(Exception):
    """The root of every cno.h2 exception."""


class ProtocolError(H2Error):
    """Something broke the HTTP/2 protocol: the peer, or a call that would make us."""

    #: The error code a GOAWAY for this error carries.
    error_code = ErrorCodes.PROTOCOL_ERROR


class FrameTooLargeError(ProtocolError):
    """A frame is larger than the receiver's SETTINGS_MAX_FRAME_SIZE."""

    error_code = ErrorCodes.FRAME_SIZE_ERROR


class FrameDataMissingError(ProtocolError):
    """A frame is shorter than its type requires."""

    error_code = ErrorCodes.FRAME_SIZE_ERROR


class TooManyStreamsError(ProtocolError):
    """Opening a stream would pass the peer's SETTINGS_MAX_CONCURRENT_STREAMS."""


class FlowControlError(ProtocolError):
    """A flow-control window would be overrun or overflow."""

    error_code = ErrorCodes.FLOW_CONTROL_ERROR


class StreamIDTooLowError(ProtocolError):
    """A new stream's id is not above every id already used by that side."""

    def __init__(self, stream_id: int, max_stream_id: int) -> None:
        #: The id that was refused.
        self.stream_id = stream_id
        #: The highest id in use.
        self.max_stream_id = max_stream_id

    def __str__(self) -> str:
        return "StreamIDTooLowError: %d is lower than %d" % (self.stream_id, self.max_stream_id)


class NoAvailableStreamIDError(ProtocolError):
    """Every stream id of this side was used: open a new connection."""


class NoSuchStreamError(ProtocolError):
    """A call named a stream that was never opened."""

    def __init__(self, stream_id: int) -> None:
        #: The stream named.
        self.stream_id = stream_id


class StreamClosedError(NoSuchStreamError):
    """A call or a frame concerns a stream that is closed."""

    def __init__(self, stream_id: int) -> None:
        #: The stream named.
        self.stream_id = stream_id
        #: The code of the RST_STREAM this answers to a frame (STREAM_CLOSED).
        self.error_code = ErrorCodes.STREAM_CLOSED
        # (events that happened before the error, for the frame handlers)
        self._events: list[Any] = []


class InvalidSettingsValueError(ProtocolError, ValueError):
    """A setting was given a value out of its range."""

    def __init__(self, msg: str, error_code: Any) -> None:
        super().__init__(msg)
        self.error_code = error_code


class InvalidBodyLengthError(ProtocolError):
    """A body was longer or shorter than its content-length."""

    def __init__(self, expected: int, actual: int) -> None:
        #: What content-length announced.
        self.expected_length = expected
        #: What arrived.
        self.actual_length = actual

    def __str__(self) -> str:
        return "InvalidBodyLengthError: Expected %d bytes, received %d" % (
            self.expected_length, self.actual_length)


class UnsupportedFrameError(ProtocolError):
    """A frame arrived that cno.h2 cannot handle."""


class RFC1122Error(H2Error):
    """A call the RFC allows but that cno.h2, like h2, refuses (RFC 1122's latitude)."""


class DenialOfServiceError(ProtocolError):
    """The peer looks like it is trying to exhaust our resources."""

    error_code = ErrorCodes.ENHANCE_YOUR_CALM
