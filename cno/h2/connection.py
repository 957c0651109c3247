"""H2Connection: h2's connection object on cno's HTTP/2 engine.

The frame work (parsing, HPACK, stream states, flow-control windows, output framing) is
cno's engine (cno._core.Connection), driven with the knobs docs/raw.md lists for
h2-style faces: header lists that carry their pseudo-header fields, received fields as
hpack's HeaderTuple / NeverIndexedHeaderTuple (cno.hpack's without hpack), one data event
per DATA frame, exact manual flow control, GOAWAY for the peer's stream errors. This module
turns the engine's events into h2's event objects, its errors into h2's exceptions, and
keeps what h2 shows that the engine has no need of (the settings objects, the
connection state machine, the receive-window policy).
"""
from __future__ import annotations

from typing import Any

import base64
import enum
import re
import struct

from cno import errors as _cno_errors
from cno._core import Connection as _Core
from cno._hpack import decode_fields as _decode_fields, find_field as _find_field

from .config import H2Configuration
from .errors import ErrorCodes, _error_code_from_int
from .events import (
    AlternativeServiceAvailable, ConnectionTerminated, DataReceived,
    InformationalResponseReceived, PingAckReceived, PingReceived, PriorityUpdated,
    PushedStreamReceived, RemoteSettingsChanged, RequestReceived, ResponseReceived,
    SettingsAcknowledged, StreamEnded, StreamReset, TrailersReceived, UnknownFrameReceived,
    WindowUpdated,
)
from .exceptions import (
    DenialOfServiceError, FlowControlError, FrameDataMissingError, InvalidBodyLengthError,
    InvalidSettingsValueError, FrameTooLargeError, NoAvailableStreamIDError,
    NoSuchStreamError, ProtocolError, RFC1122Error, StreamClosedError, StreamIDTooLowError,
    TooManyStreamsError,
)
from .settings import SettingCodes, Settings, _setting_code_from_int
from . import utilities
from .windows import WindowManager

__all__ = ["ConnectionInputs", "ConnectionState", "H2Connection", "H2ConnectionStateMachine"]


class ConnectionState(enum.Enum):
    """The connection's state, as h2's connection state machine has it."""

    IDLE = 0
    CLIENT_OPEN = 1
    SERVER_OPEN = 2
    CLOSED = 3


class ConnectionInputs(enum.Enum):
    """What can happen to a connection: frames sent and received."""

    SEND_HEADERS = 0
    SEND_PUSH_PROMISE = 1
    SEND_DATA = 2
    SEND_GOAWAY = 3
    SEND_WINDOW_UPDATE = 4
    SEND_PING = 5
    SEND_SETTINGS = 6
    SEND_RST_STREAM = 7
    SEND_PRIORITY = 8
    RECV_HEADERS = 9
    RECV_PUSH_PROMISE = 10
    RECV_DATA = 11
    RECV_GOAWAY = 12
    RECV_WINDOW_UPDATE = 13
    RECV_PING = 14
    RECV_SETTINGS = 15
    RECV_RST_STREAM = 16
    RECV_PRIORITY = 17
    SEND_ALTERNATIVE_SERVICE = 18
    RECV_ALTERNATIVE_SERVICE = 19


class AllowedStreamIDs(enum.IntEnum):
    """Which parity of stream ids a side opens."""

    EVEN = 0
    ODD = 1


def _transitions() -> Any:
    """h2's connection transitions as {(state, input): next state}."""
    i, s = ConnectionInputs, ConnectionState
    quiet = (i.SEND_SETTINGS, i.RECV_SETTINGS, i.SEND_WINDOW_UPDATE, i.RECV_WINDOW_UPDATE,
             i.SEND_PING, i.RECV_PING, i.SEND_PRIORITY, i.RECV_PRIORITY)
    table = {(s.IDLE, x): s.IDLE for x in quiet}
    table[(s.IDLE, i.SEND_HEADERS)] = s.CLIENT_OPEN
    table[(s.IDLE, i.RECV_HEADERS)] = s.SERVER_OPEN
    table[(s.IDLE, i.SEND_ALTERNATIVE_SERVICE)] = s.SERVER_OPEN
    table[(s.IDLE, i.RECV_ALTERNATIVE_SERVICE)] = s.CLIENT_OPEN
    # An open connection takes every input but the other role's pushes and ALTSVC.
    for state, barred in ((s.CLIENT_OPEN, (i.SEND_PUSH_PROMISE, i.SEND_ALTERNATIVE_SERVICE)),
                          (s.SERVER_OPEN, (i.RECV_PUSH_PROMISE,))):
        for x in i:
            if x not in barred:
                table[(state, x)] = state
    for state in s:
        table[(state, i.SEND_GOAWAY)] = s.CLOSED
        table[(state, i.RECV_GOAWAY)] = s.CLOSED
    return table


class H2ConnectionStateMachine:
    """The connection-level state machine h2 exposes as ``H2Connection.state_machine``:
    ``state``, and :meth:`process_input`, which moves it or raises ProtocolError (and
    the connection is CLOSED then)."""

    _transitions = _transitions()

    def __init__(self) -> None:
        self.state = ConnectionState.IDLE

    def process_input(self, input_: Any) -> Any:
        """Apply ``input_`` (a ConnectionInputs); returns the events it makes (none)."""
        if not isinstance(input_, ConnectionInputs):
            raise ValueError("Input must be an instance of ConnectionInputs")
        target = self._transitions.get((self.state, input_))
        if target is None:
            old = self.state
            self.state = ConnectionState.CLOSED
            raise ProtocolError("Invalid input %s in state %s" % (input_, old))
        self.state = target
        return []


_CLOSED = ConnectionState.CLOSED
_IDLE, _RESERVED_REMOTE, _RESERVED_LOCAL, _OPEN, _HALF_REMOTE, _HALF_LOCAL, _GONE = range(7)

# The classes of received header fields, as h2's: the hpack package's HeaderTuple and
# NeverIndexedHeaderTuple (never-indexed literals, RFC 7541 6.2.3) when it is installed,
# cno.hpack's otherwise (chosen once, in cno.h2.utilities); the engine builds them.
_HEADER_TUPLE_TYPES = (utilities.HeaderTuple, utilities.NeverIndexedHeaderTuple)

# The settings h2 sends in its first SETTINGS frame, in its order.
_FIRST_SETTINGS = ("header_table_size", "enable_push", "initial_window_size",
                   "max_frame_size", "enable_connect_protocol", "max_concurrent_streams",
                   "max_header_list_size")
_SETTING_NAMES = {
    SettingCodes.HEADER_TABLE_SIZE: "header_table_size",
    SettingCodes.ENABLE_PUSH: "enable_push",
    SettingCodes.MAX_CONCURRENT_STREAMS: "max_concurrent_streams",
    SettingCodes.INITIAL_WINDOW_SIZE: "initial_window_size",
    SettingCodes.MAX_FRAME_SIZE: "max_frame_size",
    SettingCodes.MAX_HEADER_LIST_SIZE: "max_header_list_size",
    SettingCodes.ENABLE_CONNECT_PROTOCOL: "enable_connect_protocol",
}

_ERRORS = {
    ErrorCodes.FLOW_CONTROL_ERROR: FlowControlError,
    ErrorCodes.FRAME_SIZE_ERROR: FrameTooLargeError,
    ErrorCodes.ENHANCE_YOUR_CALM: DenialOfServiceError,
}


_BODY_LENGTH = re.compile(r"content-length (\d+), received (\d+)")
_STREAM = re.compile(r"stream (\d+):")
_SETTING = re.compile(r"\b(HEADER_TABLE_SIZE|ENABLE_PUSH|MAX_CONCURRENT_STREAMS|INITIAL_WINDOW_SIZE|"
                      r"MAX_FRAME_SIZE|MAX_HEADER_LIST_SIZE|ENABLE_CONNECT_PROTOCOL)\b")


_TOO_LOW = re.compile(r"stream (\d+) opened below a higher id")
_ON_IDLE = re.compile(r"^(DATA|WINDOW_UPDATE) on idle stream (\d+)$")


def _h2_error(exc: Any, face: Any=None) -> Any:
    """The h2 exception for an engine error (its GOAWAY, if any, was written)."""
    code: Any = getattr(exc, "error_code", None)
    if isinstance(exc, _cno_errors.ConnectionClosed):
        return ProtocolError(str(exc))
    text = str(exc)
    if text.startswith("malformed message"):
        # (h2's wording where its users rely on it: cno.h2.utilities.h2_message)
        text = utilities.h2_message(text)
    if "max_concurrent_streams" in text:
        return TooManyStreamsError(text)
    if _SETTING.search(text) and "overflows" not in text:
        return InvalidSettingsValueError(text, error_code=_error_code_from_int(code))
    if code == ErrorCodes.FRAME_SIZE_ERROR and "exceeds" not in text:
        return FrameDataMissingError(text)
    if text.endswith("on stream 0"):
        return ProtocolError("Received frame with invalid header: " + text)
    m = _TOO_LOW.search(text)
    if m:
        return StreamIDTooLowError(int(m.group(1)), face.highest_inbound_stream_id)
    m = _ON_IDLE.match(text)
    if m and (m.group(1) != "DATA" or face.state_machine.state is not ConnectionState.IDLE
              or face._engine.last_peer_stream):
        # h2 looks such a frame's stream up and finds none (its connection state machine
        # refuses DATA first while no stream was ever opened: a plain ProtocolError)
        return NoSuchStreamError(int(m.group(2)))
    m = _BODY_LENGTH.search(text)
    if m:
        return InvalidBodyLengthError(int(m.group(1)), int(m.group(2)))
    if code == ErrorCodes.STREAM_CLOSED:
        m = _STREAM.match(text)
        if m:
            return StreamClosedError(int(m.group(1)))
    cls = _ERRORS.get(code, ProtocolError)
    err = cls(text)
    if code is not None and cls is ProtocolError:
        err.error_code = _error_code_from_int(code)
    return err


class _Engine(_Core):
    """cno's engine with event methods that collect h2 events into ``events``."""

    face: H2Connection
    out: bytearray
    events: list[Any]
    last: Any
    prio: Any
    prio_after_end: bool
    quiet: bool
    goaway_seen: bool
    consuming: bool
    join_cookies: bool
    client_side: bool
    check_authority: bool
    last_push: int

    def on_writev(self, chunks: Any) -> Any:
        self.out += b"".join(chunks) if len(chunks) != 1 else chunks[0]

    def on_message_head(self, stream: Any, code: Any, method: Any, path: Any, headers: Any) -> Any:
        if self.quiet:
            return   # (our own push: the engine reports the promised request to us)
        if not self.client_side and self.check_authority:
            _check_authority(headers, stream)
        enc = self.face.config.header_encoding
        if self.join_cookies:
            headers = _join_cookies(headers)
        if enc:
            headers = _decode_fields(headers, enc)
        ev: Any
        if not self.client_side:
            ev = RequestReceived(stream_id=stream, headers=headers)
        elif code < 200:
            ev = InformationalResponseReceived(stream_id=stream, headers=headers)
        else:
            ev = ResponseReceived(stream_id=stream, headers=headers)
            self.face._requests.pop(stream, None)   # (ALTSVC on it is ignored now)
        self.events.append(ev)
        self.last = ev
        prio = self.prio
        if prio is not None:
            ev.priority_updated = prio
            if not self.prio_after_end:
                self.events.append(prio)
                self.prio = None

    def on_message_data(self, stream: Any, data: Any) -> Any:
        ev: Any = DataReceived(stream_id=stream, data=data,
                          flow_controlled_length=self.data_frame_length)
        self.events.append(ev)
        self.last = ev

    def on_message_tail(self, stream: Any, trailers: Any) -> Any:
        if self.quiet:
            return
        ended = StreamEnded(stream_id=stream)
        if trailers is not None:
            if self.join_cookies:
                trailers = _join_cookies(trailers)
            enc = self.face.config.header_encoding
            if enc:
                trailers = _decode_fields(trailers, enc)
            ev = TrailersReceived(stream_id=stream, headers=trailers, stream_ended=ended)
            self.events.append(ev)
            prio = self.prio
            if prio is not None:
                ev.priority_updated = prio
        else:
            last = self.last
            if last is not None and last.stream_id == stream and hasattr(last, "stream_ended"):
                last.stream_ended = ended
        self.events.append(ended)
        self.last = None
        if self.prio is not None:
            self.events.append(self.prio)
            self.prio = None

    def on_message_push(self, stream: Any, parent: Any, method: Any, path: Any, headers: Any) -> Any:
        if self.check_authority:
            _check_authority(headers, self.last_push)
        self.last_push = stream
        if self.join_cookies:
            headers = _join_cookies(headers)
        enc = self.face.config.header_encoding
        if enc:
            headers = _decode_fields(headers, enc)
        self.face._requests[stream] = headers   # (its :authority is an ALTSVC origin)
        ev = PushedStreamReceived()
        ev.pushed_stream_id = stream
        ev.parent_stream_id = parent
        ev.headers = headers
        self.events.append(ev)

    def on_stream_end(self, stream: Any, code: Any, side: Any) -> Any:
        if code:
            self.face._requests.pop(stream, None)   # (reset before its response)
        if self.quiet:
            return   # (the caller's own reset, or its GOAWAY)
        if side == 0:   # CNO_REMOTE: the peer reset it
            if not self.goaway_seen:
                self.events.append(StreamReset(stream_id=stream,
                                               error_code=_error_code_from_int(code),
                                               remote_reset=True))
        elif code and self.consuming:   # we reset it for something the peer did
            self.events.append(StreamReset(stream_id=stream, error_code=_error_code_from_int(code),
                                           remote_reset=False))

    def on_pong(self, data: Any) -> Any:
        self.events.append(PingAckReceived(ping_data=data))

    def on_frame(self, frame: Any) -> Any:
        t = frame.type
        face = self.face
        if t == 0x1:   # HEADERS with priority information (RFC 9113 6.2)
            if not frame.flags & 0x20:
                return
            payload = frame.payload
            at = 1 if frame.flags & 0x8 else 0
            self.prio = _priority_event(frame.stream, payload[at:at + 5])
            self.prio_after_end = bool(frame.flags & 0x1)
        elif t == 0x2:
            if len(frame.payload) == 5:
                self.events.append(_priority_event(frame.stream, frame.payload))
        elif t == 0x4:
            ack: Any
            if frame.flags & 0x1:
                ack = SettingsAcknowledged()
                ack.changed_settings = face.local_settings.acknowledge()
                self.events.append(ack)
                return
            new = {}
            payload = frame.payload
            for at in range(0, len(payload) - 5, 6):
                key, value = struct.unpack_from(">HI", payload, at)
                new[_setting_code_from_int(key)] = value
            remote = face.remote_settings
            for k, v in new.items():
                remote._propose(k, v)   # (the engine checks the values: a bad one ends the call)
            self.events.append(RemoteSettingsChanged.from_settings(remote, new))
            remote.acknowledge()
        elif t == 0x6:
            if not frame.flags & 0x1 and len(frame.payload) == 8:
                self.events.append(PingReceived(ping_data=frame.payload))
        elif t == 0x7:
            payload = frame.payload
            if len(payload) >= 8:
                last, code = struct.unpack_from(">II", payload)
                ev: Any = ConnectionTerminated()
                ev.error_code = _error_code_from_int(code)
                ev.last_stream_id = last & 0x7FFFFFFF
                ev.additional_data = payload[8:] or None
                self.events.append(ev)
                self.goaway_seen = True
                face.state_machine.state = _CLOSED
                face._out.clear()   # (h2 drops what was queued: the peer is going away)
        elif t == 0x8:
            if len(frame.payload) == 4:
                delta = struct.unpack(">I", frame.payload)[0] & 0x7FFFFFFF
                sid = frame.stream
                if delta and (not sid or self.stream_state(sid)[0] not in (0, 6)) \
                        and self.windows(sid)[0] + delta <= 0x7FFFFFFF:
                    # (none for a stream closed or idle: the frame changes nothing)
                    self.events.append(WindowUpdated(stream_id=sid, delta=delta))
        elif t == 0xA:
            self._altsvc(frame)
        elif t > 0xA:
            self.events.append(UnknownFrameReceived(frame=_extension_frame(frame)))

    def _altsvc(self, frame: Any) -> Any:
        """An ALTSVC frame (RFC 7838 4): an event for a client, ignored by a server."""
        if not self.client_side:
            return
        payload = frame.payload
        if len(payload) < 2:
            return
        n = struct.unpack_from(">H", payload)[0]
        origin, value = payload[2:2 + n], payload[2 + n:]
        if frame.stream:
            if origin:
                return   # 4: an origin on a stream is ignored
            origin = None
            for n, v in self.face._requests.get(frame.stream, ()):
                if n == b":authority" or n == ":authority":
                    origin = v if type(v) is bytes else v.encode("utf-8")
                    break
            if origin is None:
                return
        elif not origin:
            return
        ev = AlternativeServiceAvailable()
        ev.origin = origin
        ev.field_value = value
        self.events.append(ev)


def _priority_event(stream: Any, five: Any) -> Any:
    """A PriorityUpdated from the 5 bytes of RFC 7540 priority fields."""
    ev: Any = PriorityUpdated()
    dep, weight = struct.unpack(">IB", five)
    ev.stream_id = stream
    ev.depends_on = dep & 0x7FFFFFFF
    ev.weight = weight + 1
    ev.exclusive = bool(dep >> 31)
    return ev


class _AuthorityError(Exception):
    """A received head broke h2's Host rules: the ProtocolError to raise, and the
    last-stream-id of the GOAWAY that ends the connection."""

    def __init__(self, error: ProtocolError, last_stream: int) -> None:
        self.error = error
        self.last_stream = last_stream


def _check_authority(headers: Any, last_stream: int) -> None:
    """cno.h2.utilities.validate_request_authority on a received request head."""
    try:
        utilities.validate_request_authority(headers)
    except ProtocolError as exc:
        raise _AuthorityError(exc, last_stream) from None


def _priority_fields(stream_id: Any, weight: Any, depends_on: Any, exclusive: Any) -> Any:
    """RFC 7540 5.3's priority fields (5 bytes), h2's defaults for what is None: weight
    16, no dependency, not exclusive. ProtocolError for a weight outside 1-256 or a
    stream depending on itself."""
    if depends_on == stream_id:
        raise ProtocolError("Stream %d may not depend on itself" % stream_id)
    if weight is not None and not 1 <= weight <= 256:
        raise ProtocolError("Weight must be between 1 and 256, not %d" % weight)
    dep = (depends_on or 0) | (0x80000000 if exclusive else 0)
    return struct.pack(">IB", dep, 15 if weight is None else weight - 1)


def _extension_frame(frame: Any) -> Any:
    """A frame of a type HTTP/2 does not define, as h2 reports it (hyperframe's
    ExtensionFrame when hyperframe is installed, else cno.raw.Frame)."""
    try:
        from hyperframe.frame import ExtensionFrame
    except ImportError:   # pragma: no cover
        return frame
    f = ExtensionFrame(type=frame.type, stream_id=frame.stream, flag_byte=frame.flags,
                       body=frame.payload)
    return f


def _join_cookies(headers: Any) -> Any:
    """RFC 9113 8.2.3: cookie crumbs joined into one field ("; "), as h2 hands it out:
    a NeverIndexedHeaderTuple after the other fields
    (utilities.normalize_inbound_headers); `headers` itself when it has no cookie."""
    if _find_field(headers, b"cookie") < 0:
        return headers
    return utilities.normalize_inbound_headers(headers, None)


class H2Connection:
    """An HTTP/2 connection, h2's API: feed bytes with :meth:`receive_data` (it returns
    events), call the ``send_*`` methods, take the bytes to send with
    :meth:`data_to_send`. ``config``: an H2Configuration (a client by default)."""

    #: The largest stream id (RFC 9113 5.1.1).
    HIGHEST_ALLOWED_STREAM_ID = 2**31 - 1
    #: The largest WINDOW_UPDATE increment (RFC 9113 6.9).
    MAX_WINDOW_INCREMENT = 2**31 - 1
    #: SETTINGS_MAX_HEADER_LIST_SIZE sent by default.
    DEFAULT_MAX_HEADER_LIST_SIZE = 2**16
    DEFAULT_MAX_OUTBOUND_FRAME_SIZE = 65535
    DEFAULT_MAX_INBOUND_FRAME_SIZE = 2**24

    def __init__(self, config: Any=None) -> None:
        self.config = config if config is not None else H2Configuration(client_side=True)
        client = self.config.client_side
        self.state_machine = H2ConnectionStateMachine()
        # (the state in which sending headers and data needs no transition check)
        self._open_state = ConnectionState.CLIENT_OPEN if client else ConnectionState.SERVER_OPEN
        self.local_settings = Settings(client=client, initial_values={
            SettingCodes.MAX_CONCURRENT_STREAMS: 100,
            SettingCodes.MAX_HEADER_LIST_SIZE: self.DEFAULT_MAX_HEADER_LIST_SIZE,
        })
        self.remote_settings = Settings(client=not client)
        self._out = bytearray()
        self._requests: dict[int, Any] = {}   # client: stream -> request fields, until the response
        self._skipped: list[tuple[int, int]] = []   # our stream ids passed over, as ranges          # client: stream -> :authority sent (ALTSVC origins)
        self._windows: dict[int, WindowManager] = {}              # stream -> WindowManager (made when first needed)
        self._conn_window = WindowManager(65535)
        e = self._engine = _Engine(server=not client, enable_push=1 if client else 0,
                                   max_concurrent_streams=100,
                                   max_header_list_size=self.DEFAULT_MAX_HEADER_LIST_SIZE,
                                   no_rfc7540_priorities=0)
        e.face = self
        e.client_side = client
        e.out = self._out
        e.events = []
        e.last = None
        e.prio = None
        e.prio_after_end = False
        e.quiet = False
        e.goaway_seen = False
        e.consuming = False
        e.join_cookies = self.config.normalize_inbound_headers
        e.check_authority = self.config.validate_inbound_headers
        e.last_push = 0
        e.bytes_headers = True
        e.manual_flow_control = True
        e.pseudo_in_headers = True
        e.utf8_fields = True
        e.frame_data = True
        e.flow_exact = True
        e.lenient_start = True
        e.first_settings_in_force = True
        e.strict_errors = True
        e.control_frames_only = True
        # h2's behaviour where its tests pin it down and RFC 9113 says otherwise
        # (docs/dropin.md, "Where cno.h2 follows h2 rather than the RFC"):
        e.reset_late_frames = True
        e.status_101 = True
        e.lenient_protocol = True
        e.lenient_frame_size = True
        e.data_before_head = not client
        e.read_goaways = True
        e.compression_error_code = e.continuation_flood_code = ErrorCodes.PROTOCOL_ERROR
        e.max_continuations = 63   # (h2 allows 64 frames to a header block, HEADERS included)
        e.settings_order = _FIRST_SETTINGS
        e.priority_update_frames = False
        e.header_tuple_types = _HEADER_TUPLE_TYPES
        e.validate_inbound_headers = self.config.validate_inbound_headers
        e.validate_outbound_headers = False   # (checked here first, as h2 does)
        e.malformed_is_connection_error = True
        e.hpack_index_all = True
        e.defer_preface = True
        e.connection_made(True)
        self._started = False

    # -- properties ------------------------------------------------------------------

    @property
    def open_outbound_streams(self) -> int:
        """How many streams we opened are open now."""
        return self._count_open(self.config.client_side)

    @property
    def open_inbound_streams(self) -> int:
        """How many streams the peer opened are open now."""
        return self._count_open(not self.config.client_side)

    def _count_open(self, odd: Any) -> int:
        parity = 1 if odd else 0
        e = self._engine
        n = 0
        for sid in e.open_streams:
            if sid & 1 == parity:
                state = e.stream_state(sid)[0]
                if state != _RESERVED_LOCAL and state != _RESERVED_REMOTE:
                    n += 1
        return n

    @property
    def inbound_flow_control_window(self) -> int:
        """How much the peer may still send on the connection."""
        return self._engine.windows(0)[1]

    @property
    def outbound_flow_control_window(self) -> int:
        """How much we may still send on the connection."""
        return self._engine.windows(0)[0]

    @property
    def max_outbound_frame_size(self) -> int:
        """The largest frame we may send (the peer's SETTINGS_MAX_FRAME_SIZE)."""
        return self.remote_settings.max_frame_size

    @property
    def encoder(self) -> Any:
        """The connection's HPACK encoder (cno.hpack's Encoder, as h2's is hpack's), for
        inspection: ``header_table_size`` follows the peer's SETTINGS_HEADER_TABLE_SIZE.
        Changing it would put the peer's table out of step."""
        return self._engine.encoder

    @property
    def decoder(self) -> Any:
        """The connection's HPACK decoder (cno.hpack's Decoder), for inspection:
        ``header_table_size`` is the size the peer's encoder chose, ``max_header_list_size``
        the limit in force."""
        return self._engine.decoder

    @property
    def max_inbound_frame_size(self) -> int:
        """The largest frame the peer may send us (our SETTINGS_MAX_FRAME_SIZE)."""
        return self.local_settings.max_frame_size

    @property
    def highest_inbound_stream_id(self) -> int:
        """The highest stream id the peer opened."""
        return self._highest(False)

    @property
    def highest_outbound_stream_id(self) -> int:
        """The highest stream id we opened."""
        return self._highest(True)

    def _highest(self, ours: Any) -> int:
        e = self._engine
        if ours:
            nxt = e.next_stream
            return nxt - 2 if nxt > 2 else 0
        return e.last_peer_stream

    # -- starting ----------------------------------------------------------------------

    def initiate_connection(self) -> None:
        """Queue what starts the connection: a client's preface, and our SETTINGS."""
        self.state_machine.process_input(ConnectionInputs.SEND_SETTINGS)
        e = self._engine
        # local_settings may have been changed or replaced (httpcore does): the first
        # SETTINGS frame lists what it holds now, in its order.
        order = []
        for code, value in self.local_settings.items():
            name = _SETTING_NAMES.get(code)
            if name is not None:
                order.append(name)
                try:
                    e.preface_settings(**{name: value})
                except _cno_errors.CnoError as exc:
                    raise _h2_error(exc, self) from None
        e.settings_order = tuple(order)
        e.send_preface()

    def initiate_upgrade_connection(self, settings_header: Any=None) -> Any:
        """Start a connection upgraded from HTTP/1.1 (h2c): a client gets the value for
        its HTTP2-Settings header; a server passes the one it received. Stream 1 is the
        upgraded request (half-closed on the client's side)."""
        self.initiate_connection()
        e = self._engine
        value = None
        raw = None
        if self.config.client_side:
            body = b"".join(struct.pack(">HI", k, v) for k, v in self.local_settings.items())
            value = base64.urlsafe_b64encode(body)
            sm_input = ConnectionInputs.SEND_HEADERS
        else:
            if settings_header:
                raw = base64.urlsafe_b64decode(settings_header)
                new = {}
                for at in range(0, len(raw) - 5, 6):
                    key, v = struct.unpack_from(">HI", raw, at)
                    new[_setting_code_from_int(key)] = v
                self.remote_settings.update(new)
                self.remote_settings.acknowledge()
            sm_input = ConnectionInputs.RECV_HEADERS
        try:
            e.upgraded(raw)
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None
        self.state_machine.process_input(sm_input)
        return value

    def get_next_available_stream_id(self) -> int:
        """The id our next new stream should have (odd for a client, even for a
        server); NoAvailableStreamIDError once ids are used up."""
        nxt = self._engine.next_stream
        if nxt > self.HIGHEST_ALLOWED_STREAM_ID:
            raise NoAvailableStreamIDError("Exhausted allowed stream IDs")
        return nxt

    # -- sending -----------------------------------------------------------------------

    def _headers_out(self, headers: Any, kind: Any) -> Any:
        """The header list as the engine writes it: normalized and validated as the
        configuration asks (h2's rules for a block of this ``kind``: _REQUEST,
        _RESPONSE, _TRAILERS or _PUSH), str encoded as UTF-8."""
        cfg = self.config
        if cfg.validate_outbound_headers or cfg.normalize_outbound_headers:
            if type(headers) is list and _usual(headers, kind, cfg.split_outbound_cookies):
                return headers   # (h2's rules would leave it as it is)
            return _prepare_headers(self, headers, kind)
        return headers   # (the engine sends str fields UTF-8 encoded: utf8_fields)

    def send_headers(self, stream_id: Any, headers: Any, end_stream: Any=False, priority_weight: Any=None,
                     priority_depends_on: Any=None, priority_exclusive: Any=None) -> None:
        """Send a header block on ``stream_id``: a request (client, new stream), a
        response or a 1xx (server), or trailers (``end_stream`` must be True)."""
        e = self._engine
        state, head_sent = e.stream_state(stream_id)
        client = self.config.client_side
        prio = None
        if priority_weight is not None or priority_depends_on is not None \
                or priority_exclusive is not None:
            if not client:
                raise RFC1122Error("Servers SHOULD NOT prioritize streams.")
            prio = _priority_fields(stream_id, priority_weight, priority_depends_on,
                                    priority_exclusive)
        sm = self.state_machine
        if sm.state is not self._open_state:
            sm.process_input(ConnectionInputs.SEND_HEADERS)
        if state == _IDLE:
            kind = _REQUEST
        elif head_sent:
            kind = _TRAILERS
        else:
            kind = _RESPONSE
        fields = self._headers_out(headers, kind) if state != _GONE else None
        e.next_head_priority = prio
        try:
            if state == _IDLE:
                if (stream_id & 1) != (1 if client else 0):
                    raise ProtocolError("Invalid stream ID %d" % stream_id)
                if not client:
                    raise ProtocolError("a server cannot open stream %d" % stream_id)
                nxt = e.next_stream
                e.write_head(stream_id, 0, b"", b"", fields, end_stream)
                if stream_id > nxt:
                    self._skipped.append((nxt, stream_id - 2))
                self._requests[stream_id] = fields   # (its :authority is an ALTSVC origin)
            elif state == _GONE:
                if (stream_id & 1) == (1 if client else 0) and any(
                        lo <= stream_id <= hi for lo, hi in self._skipped):
                    # an id we passed over: it can never be used now (RFC 9113 5.1.1)
                    raise StreamIDTooLowError(stream_id, self.highest_outbound_stream_id)
                raise StreamClosedError(stream_id)
            elif head_sent:
                if not end_stream:
                    raise ProtocolError("Trailers must have END_STREAM set")
                if state == _HALF_LOCAL:
                    raise StreamClosedError(stream_id)
                e.write_tail(stream_id, fields)
            else:
                if state == _HALF_LOCAL:
                    raise StreamClosedError(stream_id)
                e.write_head(stream_id, 0, b"", b"", fields, end_stream)
        except _cno_errors.WouldBlock:
            # (the engine counts our open streams against the peer's limit)
            raise TooManyStreamsError("Max outbound streams is %d, %d open" % (
                self.remote_settings.max_concurrent_streams, self.open_outbound_streams)) from None
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None
        finally:
            e.next_head_priority = None

    def send_data(self, stream_id: Any, data: Any, end_stream: Any=False, pad_length: Any=None) -> None:
        """Send ``data`` on ``stream_id`` as one DATA frame; FlowControlError if the
        windows cannot take it, FrameTooLargeError if one frame cannot."""
        size = len(data)
        if pad_length is not None:
            if type(pad_length) is not int:
                raise TypeError("pad_length must be an int")
            if pad_length < 0 or pad_length > 255:
                raise ValueError("pad_length must be within range: [0, 255]")
            size += pad_length + 1
        window = self.local_flow_control_window(stream_id)
        if size > 0 and size > window:
            raise FlowControlError("Cannot send %d bytes, flow control window is %d"
                                   % (size, window))
        if size > self.max_outbound_frame_size:
            raise FrameTooLargeError("Cannot send frame size %d, max frame size is %d"
                                     % (size, self.max_outbound_frame_size))
        sm = self.state_machine
        if sm.state is not self._open_state:
            sm.process_input(ConnectionInputs.SEND_DATA)
        e = self._engine
        state, head_sent = e.stream_state(stream_id)
        if state == _HALF_LOCAL or state == _GONE:
            raise StreamClosedError(stream_id)
        if not head_sent and not self._data_may_lead(state):
            raise ProtocolError("stream %d: send headers first" % stream_id)
        try:
            if pad_length is None:
                e.write_data(stream_id, data, end_stream)
            else:
                e.write_padded(stream_id, data, end_stream, pad_length)
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None

    def end_stream(self, stream_id: Any) -> None:
        """End ``stream_id`` on our side (an empty DATA frame with END_STREAM)."""
        self.state_machine.process_input(ConnectionInputs.SEND_DATA)
        self._stream_or_raise(stream_id)
        state, head_sent = self._engine.stream_state(stream_id)
        if state == _HALF_LOCAL:
            raise StreamClosedError(stream_id)
        if not head_sent and not self._data_may_lead(state):
            raise ProtocolError("stream %d: send headers first" % stream_id)
        try:
            self._engine.write_data(stream_id, b"", True)
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None

    def _data_may_lead(self, state: int) -> bool:
        """h2 lets a server send DATA on a request's stream before the response's
        HEADERS (its stream states allow it; the peer sees a malformed response, RFC 9113
        8.1): the engine's data_before_head knob, set for a server."""
        return not self.config.client_side and (state == _OPEN or state == _HALF_REMOTE)

    def _stream_or_raise(self, stream_id: Any) -> Any:
        """The stream's state; NoSuchStreamError for one never opened, StreamClosedError
        for one closed (h2's _get_stream_by_id)."""
        state = self._engine.stream_state(stream_id)[0]
        if state == _IDLE:
            raise NoSuchStreamError(stream_id)
        if state == _GONE:
            raise StreamClosedError(stream_id)
        return state

    def increment_flow_control_window(self, increment: Any, stream_id: Any=None) -> None:
        """Grow a receive window by ``increment`` at once (WINDOW_UPDATE): the stream's,
        or the connection's when ``stream_id`` is None."""
        if not 1 <= increment <= self.MAX_WINDOW_INCREMENT:
            raise ValueError("Flow control increment must be between 1 and %d"
                             % self.MAX_WINDOW_INCREMENT)
        self.state_machine.process_input(ConnectionInputs.SEND_WINDOW_UPDATE)
        e = self._engine
        sid = stream_id or 0
        if sid:
            self._stream_or_raise(sid)
        if e.windows(sid)[1] + increment > self.MAX_WINDOW_INCREMENT:
            raise FlowControlError("Flow control window mustn't exceed %d"
                                   % self.MAX_WINDOW_INCREMENT)
        try:
            e.open_flow(sid, increment)
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None
        wm = self._windows.get(sid) if sid else self._conn_window
        if wm is not None:
            wm.max_window_size = max(wm.max_window_size, e.windows(sid)[1])

    def push_stream(self, stream_id: Any, promised_stream_id: Any, request_headers: Any) -> None:
        """Server: promise ``promised_stream_id`` (even) on ``stream_id`` with the pushed
        request's headers (PUSH_PROMISE)."""
        if not self.remote_settings.enable_push:
            raise ProtocolError("Remote peer has disabled stream push")
        self.state_machine.process_input(ConnectionInputs.SEND_PUSH_PROMISE)
        self._stream_or_raise(stream_id)
        if stream_id % 2 == 0:
            raise ProtocolError("Cannot recursively push streams.")
        e = self._engine
        if promised_stream_id & 1 or promised_stream_id <= self.highest_outbound_stream_id:
            if promised_stream_id & 1:
                raise ProtocolError("Invalid stream ID %d" % promised_stream_id)
            raise StreamIDTooLowError(promised_stream_id, self.highest_outbound_stream_id)
        fields = self._headers_out(request_headers, _PUSH)
        e.quiet = True
        try:
            got = e.write_push(stream_id, b"", b"", fields, promised_stream_id)
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None
        finally:
            e.quiet = False
        if not got:
            raise ProtocolError("cannot push on stream %d" % stream_id)

    def ping(self, opaque_data: Any) -> None:
        """Send a PING with 8 bytes of ``opaque_data``."""
        if not isinstance(opaque_data, bytes) or len(opaque_data) != 8:
            raise ValueError("Invalid value for ping data: %r" % (opaque_data,))
        self.state_machine.process_input(ConnectionInputs.SEND_PING)
        self._engine.write_ping(opaque_data)

    def reset_stream(self, stream_id: Any, error_code: Any=0) -> None:
        """Reset ``stream_id`` (RST_STREAM with ``error_code``)."""
        self.state_machine.process_input(ConnectionInputs.SEND_RST_STREAM)
        self._stream_or_raise(stream_id)
        e = self._engine
        e.quiet = True
        try:
            e.write_reset(stream_id, int(error_code))
        finally:
            e.quiet = False

    def close_connection(self, error_code: Any=0, additional_data: Any=None, last_stream_id: Any=None) -> None:
        """Send GOAWAY: the connection is done (``error_code``, optional debug data,
        ``last_stream_id`` by default the highest the peer opened)."""
        self.state_machine.process_input(ConnectionInputs.SEND_GOAWAY)
        if additional_data is not None:
            assert isinstance(additional_data, bytes)
        e = self._engine
        if last_stream_id is None:
            last_stream_id = self.highest_inbound_stream_id
        e.quiet = True
        try:
            e.write_goaway(int(error_code), last_stream_id, additional_data or None)
        except _cno_errors.ConnectionClosed:
            pass
        finally:
            e.quiet = False

    def update_settings(self, new_settings: Any) -> None:
        """Change our settings (SETTINGS; in force once the peer acknowledges)."""
        self.state_machine.process_input(ConnectionInputs.SEND_SETTINGS)
        self.local_settings.update(new_settings)
        changes = {}
        for k, v in new_settings.items():
            name = _SETTING_NAMES.get(_setting_code_from_int(k))
            if name is not None:
                changes[name] = v
        try:
            self._engine.update_settings(**changes)
        except _cno_errors.CnoError as exc:
            raise _h2_error(exc, self) from None

    def advertise_alternative_service(self, field_value: Any, origin: Any=None, stream_id: Any=None) -> None:
        """Server: send ALTSVC (RFC 7838) for ``origin`` (on stream 0) or for the origin
        of ``stream_id``."""
        if not isinstance(field_value, bytes):
            raise ValueError("Field must be bytestring.")
        if origin is not None and stream_id is not None:
            raise ValueError("Must not provide both origin and stream_id")
        self.state_machine.process_input(ConnectionInputs.SEND_ALTERNATIVE_SERVICE)
        if origin is not None:
            payload = struct.pack(">H", len(origin)) + origin + field_value
            self._engine.write_frame(0xA, 0, 0, payload)
            return
        self._stream_or_raise(stream_id)
        if self._engine.stream_state(stream_id)[1]:
            raise ProtocolError("the response head of stream %d was sent" % stream_id)
        self._engine.write_frame(0xA, 0, stream_id, b"\x00\x00" + field_value)

    def prioritize(self, stream_id: Any, weight: Any=None, depends_on: Any=None, exclusive: Any=None) -> None:
        """Client: send RFC 7540 priority information for ``stream_id`` (PRIORITY)."""
        if not self.config.client_side:
            raise RFC1122Error("Servers SHOULD NOT prioritize streams.")
        self.state_machine.process_input(ConnectionInputs.SEND_PRIORITY)
        fields = _priority_fields(stream_id, weight, depends_on, exclusive)
        self._engine.write_frame(0x2, 0, stream_id, fields)

    # -- flow control ------------------------------------------------------------------

    def local_flow_control_window(self, stream_id: Any) -> int:
        """How much we may send on ``stream_id`` now (the smaller of its window and the
        connection's)."""
        self._stream_or_raise(stream_id)
        e = self._engine
        return min(e.windows(0)[0], e.windows(stream_id)[0])

    def remote_flow_control_window(self, stream_id: Any) -> int:
        """How much the peer may send on ``stream_id`` now."""
        self._stream_or_raise(stream_id)
        e = self._engine
        return min(e.windows(0)[1], e.windows(stream_id)[1])

    def acknowledge_received_data(self, acknowledged_size: Any, stream_id: Any) -> None:
        """The application processed ``acknowledged_size`` flow-controlled bytes of
        ``stream_id``: give window back when h2's policy says it is worth a frame."""
        if stream_id <= 0:
            raise ValueError("Stream ID %d is not valid for acknowledge_received_data"
                             % stream_id)
        if acknowledged_size < 0:
            raise ValueError("Cannot acknowledge negative data")
        e = self._engine
        state = e.stream_state(stream_id)[0]
        if state == _IDLE:
            raise NoSuchStreamError(stream_id)
        conn = self._conn_window
        _sync_window(conn, e.windows(0)[1])
        inc = conn.process_bytes(acknowledged_size)
        if inc:
            e.open_flow(0, inc)
        if state == _OPEN or state == _HALF_LOCAL:
            wm = self._windows.get(stream_id)
            if wm is None:
                wm = self._windows[stream_id] = WindowManager(
                    self.local_settings.initial_window_size)
            _sync_window(wm, e.windows(stream_id)[1])
            inc = wm.process_bytes(acknowledged_size)
            if inc:
                e.open_flow(stream_id, inc)

    # -- output and input --------------------------------------------------------------

    def data_to_send(self, amount: Any=None) -> bytes:
        """The bytes queued to send (at most ``amount``), removed from the queue."""
        out = self._out
        if amount is None:
            data = bytes(out)
            out.clear()
            return data
        data = bytes(out[:amount])
        del out[:amount]
        return data

    def clear_outbound_data_buffer(self) -> None:
        """Drop the bytes queued to send."""
        self._out.clear()

    def receive_data(self, data: Any) -> Any:
        """Feed bytes from the peer; returns the events they caused, in order.
        Raises ProtocolError (or a subclass) when the peer broke the protocol; the
        GOAWAY was queued first."""
        e = self._engine
        events = e.events = []
        e.last = None
        e.goaway_seen = False   # (streams a GOAWAY in this input refuses are no StreamReset)
        e.consuming = True
        mark = len(self._out)
        try:
            e.data_received(data)
        except _cno_errors.CnoError as exc:
            error = _h2_error(exc, self)   # (it may depend on the state before the error)
            if "invalid client preface" in str(exc):
                # h2 checks the preface before anything that would end the connection:
                # nothing is queued (RFC 9113 3.4 lets the GOAWAY be omitted).
                del self._out[mark:]
            else:
                self.state_machine.state = _CLOSED
            raise error from None
        except _AuthorityError as exc:
            # (h2's Host rules, checked here: a connection error as the engine's are)
            self.state_machine.state = _CLOSED
            e.write_goaway(ErrorCodes.PROTOCOL_ERROR, exc.last_stream, None)
            raise exc.error from None
        finally:
            e.consuming = False
        sm = self.state_machine
        if sm.state is ConnectionState.IDLE and events:
            if not self.config.client_side:
                for ev in events:
                    if type(ev) is RequestReceived:
                        sm.state = ConnectionState.SERVER_OPEN
                        break
        return events


_REQUEST, _RESPONSE, _TRAILERS, _PUSH = range(4)


def _sync_window(wm: WindowManager, window: int) -> None:
    """The policy's view of a receive window set to the engine's. The window may have
    grown past the largest the policy saw (a WINDOW_UPDATE sent before its stream had a
    WindowManager, a larger initial window acknowledged since): the policy's maximum
    grows with it, so an increment is never negative."""
    wm.current_window_size = window
    if window > wm.max_window_size:
        wm.max_window_size = window

# Fields h2's outbound rules treat specially (dropped, checked against another field, or
# made never-indexed): a list holding one takes the full path.
_SPECIAL = frozenset((b"connection", b"proxy-connection", b"keep-alive", b"transfer-encoding",
                      b"upgrade", b"te", b"host", b"authorization", b"proxy-authorization"))
_REQUEST_PSEUDO = frozenset((b":method", b":scheme", b":authority", b":path"))


def _usual(headers: list[Any], kind: int, split_cookies: bool) -> bool:
    """Whether h2's normalization would leave this header list unchanged and its
    validation accept it: plain (bytes, bytes) or (str, str) tuples, lower-case names, values without
    surrounding whitespace, no field of _SPECIAL, cookies only when not split and long
    enough to be indexed (utilities._SHORT_COOKIE), and the usual pseudo-header fields (a
    request's four, not CONNECT, a non-empty :path; a response's :status alone; none in
    trailers). One pass with no call per field beyond bytes methods; anything else goes
    to cno.h2.utilities, which gives h2's exact result or error."""
    pseudo: dict[bytes, bytes] = {}
    regular = False
    for h in headers:
        if type(h) is not tuple or len(h) != 2:
            return False
        n, v = h
        if type(n) is str and type(v) is str:
            # h2 sends str UTF-8 encoded; so does the engine (utf8_fields): judge the bytes
            n, v = n.encode(), v.encode()
        elif type(n) is not bytes or type(v) is not bytes:
            return False
        if v.strip() is not v:
            return False
        if n[:1] == b":":
            if regular or n in pseudo:
                return False
            pseudo[n] = v
        elif not n.islower() or n in _SPECIAL or n.strip() is not n:
            return False
        elif n == b"cookie" and (split_cookies or len(v) < utilities._SHORT_COOKIE):
            return False
        else:
            regular = True
    if kind == _RESPONSE:
        return len(pseudo) == 1 and b":status" in pseudo
    if kind == _TRAILERS:
        return not pseudo
    return (len(pseudo) == 4 and pseudo.keys() == _REQUEST_PSEUDO
            and pseudo[b":method"] != b"CONNECT" and bool(pseudo[b":path"]))


def _prepare_headers(conn: Any, headers: Any, kind: Any) -> Any:
    """h2's outbound rules for a header list: normalized (names lower-cased, connection-
    specific fields dropped, cookies split when asked) and validated (ProtocolError) as
    the configuration asks."""
    cfg = conn.config
    headers = utilities.utf8_encode_headers(headers)
    flags = utilities.HeaderValidationFlags(
        is_client=cfg.client_side and kind != _PUSH, is_trailer=kind == _TRAILERS,
        is_response_header=kind == _RESPONSE, is_push_promise=kind == _PUSH)
    if cfg.normalize_outbound_headers:
        headers = utilities.normalize_outbound_headers(headers, flags,
                                                       cfg.split_outbound_cookies)
    if cfg.validate_outbound_headers:
        headers = utilities.validate_outbound_headers(headers, flags)
    return list(headers)   # (never-indexed fields stay so: the engine reads `indexable`)
