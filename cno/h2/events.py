"""The events an H2Connection returns, as h2.events has them.

Each is a small object built only when the caller will see it. Events that arrive
together link to each other as h2's do: a RequestReceived that also ended its stream
holds the StreamEnded in ``stream_ended``, and so on.
"""
from __future__ import annotations

from typing import Any

import binascii

from .settings import ChangedSetting, _setting_code_from_int

__all__ = [
    "AlternativeServiceAvailable", "ConnectionTerminated", "DataReceived", "Event",
    "InformationalResponseReceived", "PingAckReceived", "PingReceived", "PriorityUpdated",
    "PushedStreamReceived", "RemoteSettingsChanged", "RequestReceived", "ResponseReceived",
    "SettingsAcknowledged", "StreamEnded", "StreamReset", "TrailersReceived",
    "UnknownFrameReceived", "WindowUpdated",
]


def _hex(data: Any) -> Any:
    """Bytes as hex text for a repr (None stays None)."""
    if data is None:
        return None
    return binascii.hexlify(data).decode("ascii")


class Event:
    """The base class of every cno.h2 event."""

    __slots__ = ()


class _HeadersEvent(Event):
    """A header block arrived on ``stream_id``: ``headers`` (a list of hpack's
    ``HeaderTuple`` / ``NeverIndexedHeaderTuple``, as h2's), and the events it also
    caused (``stream_ended``, ``priority_updated``)."""

    __slots__ = ("stream_id", "headers", "stream_ended", "priority_updated")

    def __init__(self, *, stream_id: Any, headers: Any=None, stream_ended: Any=None,
                 priority_updated: Any=None) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.stream_ended = stream_ended
        self.priority_updated = priority_updated

    def __repr__(self) -> str:
        return "<%s stream_id:%s, headers:%s>" % (type(self).__name__, self.stream_id,
                                                  self.headers)


class RequestReceived(_HeadersEvent):
    """A request's header block arrived (a new stream)."""

    __slots__ = ()


class ResponseReceived(_HeadersEvent):
    """A final response's header block arrived."""

    __slots__ = ()


class TrailersReceived(_HeadersEvent):
    """Trailers arrived (they always end the stream: ``stream_ended`` is set)."""

    __slots__ = ()


class InformationalResponseReceived(Event):
    """A 1xx response's header block arrived (any number may precede the response)."""

    __slots__ = ("stream_id", "headers", "priority_updated")

    def __init__(self, *, stream_id: Any, headers: Any=None, priority_updated: Any=None) -> None:
        self.stream_id = stream_id
        self.headers = headers
        self.priority_updated = priority_updated

    def __repr__(self) -> str:
        return "<InformationalResponseReceived stream_id:%s, headers:%s>" % (
            self.stream_id, self.headers)


class DataReceived(Event):
    """Body bytes arrived: one DATA frame's ``data``, and its ``flow_controlled_length``
    (padding included: what to pass to acknowledge_received_data)."""

    __slots__ = ("stream_id", "data", "flow_controlled_length", "stream_ended")

    def __init__(self, *, stream_id: Any, data: Any=None, flow_controlled_length: Any=None,
                 stream_ended: Any=None) -> None:
        self.stream_id = stream_id
        self.data = data
        self.flow_controlled_length = flow_controlled_length
        self.stream_ended = stream_ended

    def __repr__(self) -> str:
        return "<DataReceived stream_id:%s, flow_controlled_length:%s, data:%s>" % (
            self.stream_id, self.flow_controlled_length,
            _hex(self.data[:20]) if self.data else "")


class WindowUpdated(Event):
    """The peer grew a send window: ``stream_id`` (0: the connection's) by ``delta``."""

    __slots__ = ("stream_id", "delta")

    def __init__(self, *, stream_id: Any, delta: Any=None) -> None:
        self.stream_id = stream_id
        self.delta = delta

    def __repr__(self) -> str:
        return "<WindowUpdated stream_id:%s, delta:%s>" % (self.stream_id, self.delta)


class RemoteSettingsChanged(Event):
    """The peer's SETTINGS arrived (and were acknowledged): ``changed_settings`` maps
    each setting in it to a ChangedSetting."""

    __slots__ = ("changed_settings",)

    def __init__(self) -> None:
        self.changed_settings: dict[Any, ChangedSetting] = {}

    @classmethod
    def from_settings(cls, old_settings: Any, new_settings: Any) -> Any:
        """The event for ``new_settings`` ({code: value}) applied over ``old_settings``."""
        e = cls()
        for code, value in new_settings.items():
            code = _setting_code_from_int(code)
            e.changed_settings[code] = ChangedSetting(code, old_settings.get(code), value)
        return e

    def __repr__(self) -> str:
        return "<RemoteSettingsChanged changed_settings:{%s}>" % ", ".join(
            repr(cs) for cs in self.changed_settings.values())


class PingReceived(Event):
    """A PING arrived (its ACK was queued): ``ping_data``."""

    __slots__ = ("ping_data",)

    def __init__(self, *, ping_data: Any) -> None:
        self.ping_data = ping_data

    def __repr__(self) -> str:
        return "<PingReceived ping_data:%s>" % _hex(self.ping_data)


class PingAckReceived(Event):
    """The ACK of a PING we sent arrived: ``ping_data``."""

    __slots__ = ("ping_data",)

    def __init__(self, *, ping_data: Any) -> None:
        self.ping_data = ping_data

    def __repr__(self) -> str:
        return "<PingAckReceived ping_data:%s>" % _hex(self.ping_data)


class StreamEnded(Event):
    """The peer ended ``stream_id`` (END_STREAM): it sends nothing more on it."""

    __slots__ = ("stream_id",)

    def __init__(self, *, stream_id: Any) -> None:
        self.stream_id = stream_id

    def __repr__(self) -> str:
        return "<StreamEnded stream_id:%s>" % self.stream_id


class StreamReset(Event):
    """``stream_id`` was reset with ``error_code``: by the peer (``remote_reset``) or by
    us in answer to something it did."""

    __slots__ = ("stream_id", "error_code", "remote_reset")

    def __init__(self, *, stream_id: Any, error_code: Any=None, remote_reset: Any=True) -> None:
        self.stream_id = stream_id
        self.error_code = error_code
        self.remote_reset = remote_reset

    def __repr__(self) -> str:
        return "<StreamReset stream_id:%s, error_code:%s, remote_reset:%s>" % (
            self.stream_id, self.error_code, self.remote_reset)


class PushedStreamReceived(Event):
    """A PUSH_PROMISE arrived: ``pushed_stream_id`` on ``parent_stream_id`` with the
    promised request's ``headers`` (header tuples, as in RequestReceived)."""

    __slots__ = ("pushed_stream_id", "parent_stream_id", "headers")

    def __init__(self) -> None:
        self.pushed_stream_id = None
        self.parent_stream_id = None
        self.headers = None

    def __repr__(self) -> str:
        return "<PushedStreamReceived pushed_stream_id:%s, parent_stream_id:%s, headers:%s>" % (
            self.pushed_stream_id, self.parent_stream_id, self.headers)


class SettingsAcknowledged(Event):
    """The peer acknowledged our SETTINGS: ``changed_settings`` now in force."""

    __slots__ = ("changed_settings",)

    def __init__(self) -> None:
        self.changed_settings: dict[Any, ChangedSetting] = {}

    def __repr__(self) -> str:
        return "<SettingsAcknowledged changed_settings:{%s}>" % ", ".join(
            repr(cs) for cs in self.changed_settings.values())


class PriorityUpdated(Event):
    """RFC 7540 priority information arrived for ``stream_id``: ``weight``,
    ``depends_on``, ``exclusive``."""

    __slots__ = ("stream_id", "weight", "depends_on", "exclusive")

    def __init__(self) -> None:
        self.stream_id = None
        self.weight = None
        self.depends_on = None
        self.exclusive = None

    def __repr__(self) -> str:
        return "<PriorityUpdated stream_id:%s, weight:%s, depends_on:%s, exclusive:%s>" % (
            self.stream_id, self.weight, self.depends_on, self.exclusive)


class ConnectionTerminated(Event):
    """The peer sent GOAWAY: ``error_code``, ``last_stream_id``, ``additional_data``."""

    __slots__ = ("error_code", "last_stream_id", "additional_data")

    def __init__(self) -> None:
        self.error_code = None
        self.last_stream_id = None
        self.additional_data = None

    def __repr__(self) -> str:
        return "<ConnectionTerminated error_code:%s, last_stream_id:%s, additional_data:%s>" % (
            self.error_code, self.last_stream_id,
            _hex(self.additional_data[:20] if self.additional_data else None))


class AlternativeServiceAvailable(Event):
    """An ALTSVC frame (RFC 7838) arrived: ``origin`` and ``field_value`` (bytes)."""

    __slots__ = ("origin", "field_value")

    def __init__(self) -> None:
        self.origin = None
        self.field_value = None

    def __repr__(self) -> str:
        return "<AlternativeServiceAvailable origin:%s, field_value:%s>" % (
            (self.origin or b"").decode("utf-8", "ignore"),
            (self.field_value or b"").decode("utf-8", "ignore"))


class UnknownFrameReceived(Event):
    """A frame of a type HTTP/2 does not define arrived (and was ignored): ``frame``."""

    __slots__ = ("frame",)

    def __init__(self, *, frame: Any) -> None:
        self.frame = frame

    def __repr__(self) -> str:
        return "<UnknownFrameReceived>"
