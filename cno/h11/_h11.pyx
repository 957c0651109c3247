# cython: language_level=3
"""cno.h11's core: h11 0.16's events, headers, state machine and Connection, in Cython.

The modules h11 users and tests import (cno.h11._events, _headers, _state, _connection)
re-export from here. Heads, trailer sections and chunk-size lines are parsed, and heads
written, by cno's engine (cno._core's h1_parse_head, h1_parse_chunk_line, h1_head_bytes:
docs/raw.md "HTTP/1.1 without a Connection"); this module keeps h11's state machine and
framing rules, and validates the events users build (h11 does that with regular
expressions; here it is a byte table).
"""
cimport cython
from libc.stdint cimport uint8_t, int64_t
from libc.string cimport memcmp
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.list cimport PyList_GET_SIZE, PyList_GET_ITEM
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_GET_SIZE
from cpython.unicode cimport PyUnicode_AsASCIIString

import collections.abc
from dataclasses import FrozenInstanceError

from cno._core cimport h1_parse_head, h1_parse_chunk_line, h1_head_bytes
from cno._core import PARSE_REQUEST, PARSE_RESPONSE, PARSE_TRAILERS
from cno.errors import ProtocolError as _EngineError
from cno.h11._util import LocalProtocolError, RemoteProtocolError, Sentinel, bytesify


# ----------------------------------------------------------------------------------------
# Byte classes (RFC 9110 5.6.2 token; 5.5 field values as h11 accepts them)

cdef uint8_t TOKEN[256]
cdef uint8_t VCHAR[256]
cdef uint8_t FIELD_VCHAR[256]   # a field value's non-blank byte: not NUL, not whitespace
for _i in range(256):
    TOKEN[_i] = (chr(_i).isalnum() and _i < 128) or chr(_i) in "!#$%&'*+-.^_`|~"
    VCHAR[_i] = 0x21 <= _i <= 0x7E
    FIELD_VCHAR[_i] = _i != 0 and chr(_i) not in " \t\n\r\x0b\x0c"

CONTENT_LENGTH_MAX_DIGITS = 20


cdef inline bint is_token(bytes b) noexcept:
    cdef const uint8_t* p = <const uint8_t*> PyBytes_AS_STRING(b)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    if n == 0:
        return False
    for i in range(n):
        if not TOKEN[p[i]]:
            return False
    return True


cdef inline bint is_target(bytes b) noexcept:
    cdef const uint8_t* p = <const uint8_t*> PyBytes_AS_STRING(b)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    if n == 0:
        return False
    for i in range(n):
        if not VCHAR[p[i]]:
            return False
    return True


cdef inline bint is_field_value(bytes b) noexcept:
    """field-value = *( field-vchar [ 1*( SP / HTAB ) field-vchar ] ): no blank at
    either end."""
    cdef const uint8_t* p = <const uint8_t*> PyBytes_AS_STRING(b)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    if n == 0:
        return True
    if not FIELD_VCHAR[p[0]] or not FIELD_VCHAR[p[n - 1]]:
        return False
    for i in range(1, n - 1):
        if not FIELD_VCHAR[p[i]] and p[i] != 0x20 and p[i] != 0x09:
            return False
    return True


cdef inline bint is_digits(bytes b) noexcept:
    cdef const uint8_t* p = <const uint8_t*> PyBytes_AS_STRING(b)
    cdef Py_ssize_t i, n = PyBytes_GET_SIZE(b)
    if n == 0:
        return False
    for i in range(n):
        if not (0x30 <= p[i] <= 0x39):
            return False
    return True


cdef inline bint is_name(object b, const char* name, Py_ssize_t n) noexcept:
    """Whether the bytes object b (a lower-case field name) is name[:n]."""
    return PyBytes_GET_SIZE(b) == n and memcmp(PyBytes_AS_STRING(b), name, n) == 0


cdef inline bytes to_bytes(object s):
    if type(s) is bytes:
        return <bytes> s
    if type(s) is str:
        return PyUnicode_AsASCIIString(s)
    return bytesify(s)


# ----------------------------------------------------------------------------------------
# Headers

@cython.final
cdef class Headers:
    """The headers of an event: a sequence of (lower-case name, value) bytes pairs that
    also keeps each name as it was given or received (``raw_items()``)."""

    cdef public list _full_items   # [(raw name, lower-case name, value)]

    def __init__(self, full_items):
        self._full_items = full_items

    def __bool__(self):
        return PyList_GET_SIZE(self._full_items) != 0

    def __len__(self):
        return PyList_GET_SIZE(self._full_items)

    def __eq__(self, other):
        return list(self) == list(other)

    def __ne__(self, other):
        return not self.__eq__(other)

    __hash__ = None

    def __repr__(self):
        return "<Headers(%s)>" % repr(list(self))

    def __getitem__(self, idx):
        _, name, value = self._full_items[idx]
        return (name, value)

    def __iter__(self):
        cdef tuple t
        for t in self._full_items:
            yield (t[1], t[2])

    def __contains__(self, item):
        return item in list(self)

    def __reversed__(self):
        return reversed(list(self))

    def index(self, value, *args):
        """Index of the first (name, value) pair equal to value."""
        return list(self).index(value, *args)

    def count(self, value):
        """How many (name, value) pairs equal value."""
        return list(self).count(value)

    def raw_items(self):
        """The (name as given or received, value) pairs."""
        cdef tuple t
        return [(t[0], t[2]) for t in self._full_items]

    def __reduce__(self):
        return (Headers, (self._full_items,))


collections.abc.Sequence.register(Headers)

# Names the user gives (str or bytes), validated, as (raw, lower); bounded.
cdef dict NAME_CACHE = {}


cdef tuple checked_name(object name):
    """(raw, lower-case) bytes of a field name the user gave, validated once per name."""
    cdef tuple hit
    cdef bytes raw
    cdef bint cacheable = type(name) is str or type(name) is bytes
    if cacheable:
        hit = NAME_CACHE.get(name)
        if hit is not None:
            return hit
    raw = to_bytes(name)
    if not is_token(raw):
        raise LocalProtocolError("Illegal header name {!r}".format(raw))
    hit = (raw, raw.lower())
    if cacheable:
        if len(NAME_CACHE) >= 512:
            NAME_CACHE.clear()
        NAME_CACHE[name] = hit
    return hit


# (name, value) pairs the user gave, exact str or bytes, as validated triples: header
# lists in code are mostly constants, so the same pairs come back; bounded.
cdef dict PAIR_CACHE = {}


cdef inline bint plain_text(object x) noexcept:
    return type(x) is str or type(x) is bytes


cdef Headers normalize(object headers, bint parsed):
    """h11's normalize_and_validate: names lower-cased, values checked, Content-Length
    reduced to one value and Transfer-Encoding to "chunked" (the only coding h11 knows).
    parsed: the items are the engine's (raw, lower, value) triples, already checked."""
    cdef list out = []
    cdef object seen_length = None, triple
    cdef bint saw_te = False, cacheable
    cdef bytes raw, lower, value
    cdef tuple nm
    for item in headers:
        cacheable = False
        if parsed:
            triple = item
            lower = <bytes> PyTuple_GET_ITEM(item, 1)
            if PyBytes_GET_SIZE(lower) != 14 and PyBytes_GET_SIZE(lower) != 17:
                out.append(triple)   # (not a framing field: nothing to check)
                continue
            raw, lower, value = item
        else:
            if type(item) is tuple and PyTuple_GET_SIZE(item) == 2 and \
                    plain_text(<object> PyTuple_GET_ITEM(item, 0)) and \
                    plain_text(<object> PyTuple_GET_ITEM(item, 1)):
                triple = PAIR_CACHE.get(item)
                if triple is not None:
                    out.append(triple)
                    continue
                cacheable = True
            name, v = item
            nm = checked_name(name)
            raw = <bytes> nm[0]
            lower = <bytes> nm[1]
            value = to_bytes(v)
            if not is_field_value(value):
                raise LocalProtocolError("Illegal header value {!r}".format(value))
            triple = None
        if is_name(lower, "content-length", 14):
            lengths = {x.strip() for x in value.split(b",")}
            if len(lengths) != 1:
                raise LocalProtocolError("conflicting Content-Length headers")
            value = lengths.pop()
            if not is_digits(value) or len(value) > CONTENT_LENGTH_MAX_DIGITS:
                raise LocalProtocolError("bad Content-Length")
            if seen_length is None:
                seen_length = value
                out.append((raw, lower, value))
            elif seen_length != value:
                raise LocalProtocolError("conflicting Content-Length headers")
        elif is_name(lower, "transfer-encoding", 17):
            # h11 knows only chunked (RFC 9112 6.1 allows a recipient to refuse others).
            if saw_te:
                raise LocalProtocolError("multiple Transfer-Encoding headers",
                                         error_status_hint=501)
            value = value.lower()
            if value != b"chunked":
                raise LocalProtocolError("Only Transfer-Encoding: chunked is supported",
                                         error_status_hint=501)
            saw_te = True
            out.append((raw, lower, value))
        else:
            if triple is None:
                triple = (raw, lower, value)
                if cacheable:
                    if len(PAIR_CACHE) >= 1024:
                        PAIR_CACHE.clear()
                    PAIR_CACHE[item] = triple
            out.append(triple)
    return Headers(out)


def normalize_and_validate(headers, _parsed=False):
    """A Headers from (name, value) pairs (str or bytes), validated as h11 does; a
    Headers is returned as is when _parsed."""
    if isinstance(headers, Headers):
        headers = list(headers)   # (lower-case name, value) pairs, as h11 iterates them
    return normalize(headers, False)


cdef list comma_values(Headers headers, bytes name):
    cdef list out = []
    cdef tuple t
    cdef const char* np = PyBytes_AS_STRING(name)
    cdef Py_ssize_t nn = PyBytes_GET_SIZE(name)
    for t in headers._full_items:
        if is_name(t[1], np, nn):
            for part in (<bytes> t[2]).lower().split(b","):
                part = part.strip()
                if part:
                    out.append(part)
    return out


def get_comma_header(headers, name):
    """The lower-cased, comma-split, stripped values of every field called name."""
    return comma_values(headers, name)


cdef Headers replace_field(Headers headers, bytes name, list new_values):
    """set_comma_header for values known valid (no second validation pass)."""
    cdef list out = []
    cdef tuple t
    cdef bytes title = name.title()
    for t in headers._full_items:
        if t[1] != name:
            out.append(t)
    for v in new_values:
        out.append((title, name, v))
    return Headers(out)


def set_comma_header(headers, name, new_values):
    """headers without the fields called name, then one name.title() field per value."""
    new_headers = []
    for raw, lower, value in headers._full_items:
        if lower != name:
            new_headers.append((raw, value))
    for v in new_values:
        new_headers.append((name.title(), v))
    return normalize(new_headers, False)


cdef bint expects_100(Request request):
    if request.http_version < b"1.1":
        return False
    return b"100-continue" in comma_values(request.headers, b"expect")


def has_expect_100_continue(request):
    """Whether an HTTP/1.1 request says Expect: 100-continue."""
    return expects_100(request)


# ----------------------------------------------------------------------------------------
# Events

cdef class Event:
    """Base class of h11's events."""

    __hash__ = None

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() == (<Event> other)._fields()

    def __ne__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._fields() != (<Event> other)._fields()

    cdef tuple _fields(self):
        return ()

    cdef tuple _names(self):
        return ()

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, ", ".join(
            "%s=%r" % (n, v) for n, v in zip(self._names(), self._fields())))

    # Frozen, as h11's dataclasses are (FrozenInstanceError is an AttributeError).
    def __setattr__(self, name, value):
        raise FrozenInstanceError("cannot assign to field %r" % name)

    def __delattr__(self, name):
        raise FrozenInstanceError("cannot delete field %r" % name)


cdef Headers make_headers(object headers, bint parsed):
    """A Headers given is kept; pairs are validated (also when _parsed: the engine's
    own reads build their Headers directly)."""
    if type(headers) is Headers:
        return <Headers> headers
    return normalize(headers, False)


cdef int check_hosts(Headers headers, bytes http_version) except -1:
    cdef int hosts = 0
    cdef tuple t
    for t in headers._full_items:
        if is_name(t[1], "host", 4):
            hosts += 1
    if hosts == 0 and http_version == b"1.1":
        raise LocalProtocolError("Missing mandatory Host: header")
    if hosts > 1:
        raise LocalProtocolError("Found multiple Host: headers")
    return 0


cdef class Request(Event):
    """The beginning of an HTTP request: method, target, headers, http_version."""

    cdef readonly bytes method
    cdef readonly Headers headers
    cdef readonly bytes target
    cdef readonly bytes http_version

    def __init__(self, *, method, headers, target, http_version=b"1.1", _parsed=False):
        self.headers = make_headers(headers, _parsed)
        if _parsed:
            self.method = method
            self.target = target
            self.http_version = http_version
        else:
            self.method = to_bytes(method)
            self.target = to_bytes(target)
            self.http_version = to_bytes(http_version)
        check_hosts(self.headers, self.http_version)
        if not is_token(self.method):
            raise LocalProtocolError("Illegal method characters")
        if not is_target(self.target):
            raise LocalProtocolError("Illegal target characters")

    cdef tuple _fields(self):
        return (self.method, self.headers, self.target, self.http_version)

    cdef tuple _names(self):
        return ("method", "headers", "target", "http_version")

    def __reduce__(self):
        return (_rebuild, (Request, dict(zip(self._names(), self._fields()))))


cdef class _ResponseBase(Event):
    """What InformationalResponse and Response share."""

    cdef readonly Headers headers
    cdef readonly bytes http_version
    cdef readonly bytes reason
    cdef readonly object status_code

    def __init__(self, *, headers, status_code, http_version=b"1.1", reason=b"",
                 _parsed=False):
        self.headers = make_headers(headers, _parsed)
        if _parsed:
            self.reason = reason
            self.http_version = http_version
            self.status_code = status_code
        else:
            self.reason = to_bytes(reason)
            self.http_version = to_bytes(http_version)
            if not isinstance(status_code, int):
                raise LocalProtocolError("status code must be integer")
            # An IntEnum (HTTPStatus.OK) becomes a plain int.
            self.status_code = int(status_code)
        self._check_status()

    cdef int _check_status(self) except -1:
        return 0

    cdef tuple _fields(self):
        return (self.headers, self.http_version, self.reason, self.status_code)

    cdef tuple _names(self):
        return ("headers", "http_version", "reason", "status_code")

    def __reduce__(self):
        return (_rebuild, (type(self), dict(zip(self._names(), self._fields()))))


cdef class InformationalResponse(_ResponseBase):
    """An HTTP informational (1xx) response."""

    cdef int _check_status(self) except -1:
        if not (100 <= self.status_code < 200):
            raise LocalProtocolError(
                "InformationalResponse status_code should be in range "
                "[100, 200), not {}".format(self.status_code))
        return 0


cdef class Response(_ResponseBase):
    """The beginning of an HTTP response (status 200-999)."""

    cdef int _check_status(self) except -1:
        if not (200 <= self.status_code < 1000):
            raise LocalProtocolError(
                "Response status_code should be in range [200, 1000), not {}".format(
                    self.status_code))
        return 0


cdef class Data(Event):
    """Part of a message body; chunk_start/chunk_end mark chunked framing (received only)."""

    cdef readonly object data
    cdef readonly object chunk_start
    cdef readonly object chunk_end

    def __init__(self, data, chunk_start=False, chunk_end=False):
        self.data = data
        self.chunk_start = chunk_start
        self.chunk_end = chunk_end

    cdef tuple _fields(self):
        return (self.data, self.chunk_start, self.chunk_end)

    cdef tuple _names(self):
        return ("data", "chunk_start", "chunk_end")

    def __reduce__(self):
        return (Data, self._fields())


cdef Headers NO_HEADERS = Headers([])


cdef class EndOfMessage(Event):
    """The end of a message, with its trailers (only with chunked framing)."""

    cdef readonly Headers headers

    def __init__(self, *, headers=None, _parsed=False):
        if headers is None:
            self.headers = Headers([])
        else:
            self.headers = make_headers(headers, _parsed)

    cdef tuple _fields(self):
        return (self.headers,)

    cdef tuple _names(self):
        return ("headers",)

    def __reduce__(self):
        return (_rebuild, (EndOfMessage, {"headers": self.headers}))


cdef class ConnectionClosed(Event):
    """The sender closed its side of the connection."""

    def __reduce__(self):
        return (ConnectionClosed, ())


def _rebuild(cls, kwargs):
    return cls(**kwargs)


cdef inline Data new_data(object data, bint start, bint end):
    cdef Data d = Data.__new__(Data)
    d.data = data
    d.chunk_start = start
    d.chunk_end = end
    return d


cdef inline EndOfMessage new_eom(Headers headers):
    cdef EndOfMessage e = EndOfMessage.__new__(EndOfMessage)
    e.headers = headers
    return e


# ----------------------------------------------------------------------------------------
# The state machine (h11's, as small ints; the Sentinels are what the API shows)

class CLIENT(Sentinel, metaclass=Sentinel):
    pass


class SERVER(Sentinel, metaclass=Sentinel):
    pass


class IDLE(Sentinel, metaclass=Sentinel):
    pass


class SEND_RESPONSE(Sentinel, metaclass=Sentinel):
    pass


class SEND_BODY(Sentinel, metaclass=Sentinel):
    pass


class DONE(Sentinel, metaclass=Sentinel):
    pass


class MUST_CLOSE(Sentinel, metaclass=Sentinel):
    pass


class CLOSED(Sentinel, metaclass=Sentinel):
    pass


class ERROR(Sentinel, metaclass=Sentinel):
    pass


class MIGHT_SWITCH_PROTOCOL(Sentinel, metaclass=Sentinel):
    pass


class SWITCHED_PROTOCOL(Sentinel, metaclass=Sentinel):
    pass


class _SWITCH_UPGRADE(Sentinel, metaclass=Sentinel):
    pass


class _SWITCH_CONNECT(Sentinel, metaclass=Sentinel):
    pass


class NEED_DATA(Sentinel, metaclass=Sentinel):
    pass


class PAUSED(Sentinel, metaclass=Sentinel):
    pass


cdef enum:
    R_CLIENT = 0
    R_SERVER = 1

    S_IDLE = 0
    S_SEND_RESPONSE = 1
    S_SEND_BODY = 2
    S_DONE = 3
    S_MUST_CLOSE = 4
    S_CLOSED = 5
    S_ERROR = 6
    S_MIGHT_SWITCH = 7
    S_SWITCHED = 8

    E_REQUEST = 0
    E_INFO = 1
    E_RESPONSE = 2
    E_DATA = 3
    E_EOM = 4
    E_CLOSED = 5
    E_REQUEST_SEEN = 6   # the server side of a client's Request: (Request, CLIENT)

    SW_UPGRADE = 1
    SW_CONNECT = 2

cdef tuple ROLES = (CLIENT, SERVER)
cdef tuple STATES = (IDLE, SEND_RESPONSE, SEND_BODY, DONE, MUST_CLOSE, CLOSED, ERROR,
                     MIGHT_SWITCH_PROTOCOL, SWITCHED_PROTOCOL)
cdef dict STATE_NUMBER = {s: i for i, s in enumerate(STATES)}
cdef tuple EVENT_TYPES = (Request, InformationalResponse, Response, Data, EndOfMessage,
                          ConnectionClosed)
cdef dict EVENT_NUMBER = {t: i for i, t in enumerate(EVENT_TYPES)}
cdef dict SWITCH_NUMBER = {_SWITCH_UPGRADE: SW_UPGRADE, _SWITCH_CONNECT: SW_CONNECT}

# The tables as h11 documents them, for readers (the C function below is what runs).
EVENT_TRIGGERED_TRANSITIONS = {
    CLIENT: {
        IDLE: {Request: SEND_BODY, ConnectionClosed: CLOSED},
        SEND_BODY: {Data: SEND_BODY, EndOfMessage: DONE},
        DONE: {ConnectionClosed: CLOSED},
        MUST_CLOSE: {ConnectionClosed: CLOSED},
        CLOSED: {ConnectionClosed: CLOSED},
        MIGHT_SWITCH_PROTOCOL: {},
        SWITCHED_PROTOCOL: {},
        ERROR: {},
    },
    SERVER: {
        IDLE: {ConnectionClosed: CLOSED, Response: SEND_BODY,
               (Request, CLIENT): SEND_RESPONSE},
        SEND_RESPONSE: {
            InformationalResponse: SEND_RESPONSE,
            Response: SEND_BODY,
            (InformationalResponse, _SWITCH_UPGRADE): SWITCHED_PROTOCOL,
            (Response, _SWITCH_CONNECT): SWITCHED_PROTOCOL,
        },
        SEND_BODY: {Data: SEND_BODY, EndOfMessage: DONE},
        DONE: {ConnectionClosed: CLOSED},
        MUST_CLOSE: {ConnectionClosed: CLOSED},
        CLOSED: {ConnectionClosed: CLOSED},
        SWITCHED_PROTOCOL: {},
        ERROR: {},
    },
}

STATE_TRIGGERED_TRANSITIONS = {
    (MIGHT_SWITCH_PROTOCOL, SWITCHED_PROTOCOL): {CLIENT: SWITCHED_PROTOCOL},
    (CLOSED, DONE): {SERVER: MUST_CLOSE},
    (CLOSED, IDLE): {SERVER: MUST_CLOSE},
    (ERROR, DONE): {SERVER: MUST_CLOSE},
    (DONE, CLOSED): {CLIENT: MUST_CLOSE},
    (IDLE, CLOSED): {CLIENT: MUST_CLOSE},
    (DONE, ERROR): {CLIENT: MUST_CLOSE},
}


cdef int next_state(int role, int state, int ev, int sw) noexcept:
    """EVENT_TRIGGERED_TRANSITIONS as code: the new state, or -1 if not allowed."""
    if ev == E_CLOSED:
        if (state == S_IDLE or state == S_DONE or state == S_MUST_CLOSE
                or state == S_CLOSED):
            return S_CLOSED
        return -1
    if state == S_SEND_BODY:
        if ev == E_DATA and sw == 0:
            return S_SEND_BODY
        if ev == E_EOM and sw == 0:
            return S_DONE
        return -1
    if role == R_CLIENT:
        if state == S_IDLE and ev == E_REQUEST:
            return S_SEND_BODY
        return -1
    if state == S_IDLE:
        if ev == E_RESPONSE and sw == 0:
            return S_SEND_BODY
        if ev == E_REQUEST_SEEN:
            return S_SEND_RESPONSE
        return -1
    if state == S_SEND_RESPONSE:
        if ev == E_INFO:
            return S_SWITCHED if sw == SW_UPGRADE else (S_SEND_RESPONSE if sw == 0 else -1)
        if ev == E_RESPONSE:
            return S_SWITCHED if sw == SW_CONNECT else (S_SEND_BODY if sw == 0 else -1)
    return -1


@cython.final
cdef class ConnectionState:
    """h11's two-party state machine: {CLIENT: state, SERVER: state}, keep_alive and the
    client's pending protocol-switch proposals."""

    cdef int st[2]
    cdef public bint keep_alive
    cdef int pending   # SW_UPGRADE | SW_CONNECT bits

    def __init__(self):
        self.keep_alive = True
        self.pending = 0
        self.st[0] = S_IDLE
        self.st[1] = S_IDLE

    @property
    def states(self):
        """A new dict {CLIENT: state, SERVER: state}."""
        return {CLIENT: STATES[self.st[0]], SERVER: STATES[self.st[1]]}

    @states.setter
    def states(self, value):
        self.st[0] = STATE_NUMBER[value[CLIENT]]
        self.st[1] = STATE_NUMBER[value[SERVER]]

    @property
    def pending_switch_proposals(self):
        """The switches the client proposed and the server has not answered."""
        out = set()
        if self.pending & SW_UPGRADE:
            out.add(_SWITCH_UPGRADE)
        if self.pending & SW_CONNECT:
            out.add(_SWITCH_CONNECT)
        return out

    @pending_switch_proposals.setter
    def pending_switch_proposals(self, value):
        self.pending = 0
        for v in value:
            self.pending |= SWITCH_NUMBER[v]

    def process_error(self, role):
        """role's state becomes ERROR."""
        self.error(0 if role is CLIENT else 1)

    def process_keep_alive_disabled(self):
        """The connection closes after this cycle (DONE becomes MUST_CLOSE)."""
        self.keep_alive = False
        self.settle()

    def process_client_switch_proposal(self, switch_event):
        """The client proposed _SWITCH_UPGRADE or _SWITCH_CONNECT."""
        self.propose(SWITCH_NUMBER[switch_event])

    def process_event(self, role, event_type, server_switch_event=None):
        """Apply an event of event_type sent by role (LocalProtocolError if it is not
        allowed now)."""
        cdef int sw = 0
        if server_switch_event is not None:
            assert role is SERVER
            sw = SWITCH_NUMBER[server_switch_event]
        self.event(0 if role is CLIENT else 1, EVENT_NUMBER[event_type], sw)

    def start_next_cycle(self):
        """Both parties DONE: back to IDLE for the next request (else LocalProtocolError)."""
        self.next_cycle()

    cdef int error(self, int role) except -1:
        self.st[role] = S_ERROR
        return self.settle()

    cdef int propose(self, int sw) except -1:
        self.pending |= sw
        return self.settle()

    cdef int event(self, int role, int ev, int sw) except -1:
        cdef int new
        if sw:
            if not (self.pending & sw):
                raise LocalProtocolError(
                    "Received server _SWITCH_UPGRADE event without a pending proposal")
        elif ev == E_RESPONSE:
            self.pending = 0
        new = next_state(role, self.st[role], ev, sw)
        if new < 0:
            raise LocalProtocolError(
                "can't handle event type {} when role={} and state={}".format(
                    EVENT_TYPES[ev].__name__, ROLES[role], STATES[self.st[role]]))
        self.st[role] = new
        if ev == E_REQUEST:
            new = next_state(R_SERVER, self.st[1], E_REQUEST_SEEN, 0)
            if new < 0:
                raise LocalProtocolError(
                    "can't handle event type Request when role=SERVER and state={}".format(
                        STATES[self.st[1]]))
            self.st[1] = new
        return self.settle()

    cdef int settle(self) except -1:
        """STATE_TRIGGERED_TRANSITIONS, until nothing changes."""
        cdef int c0, s0, c, s
        while True:
            c0 = c = self.st[0]
            s0 = s = self.st[1]
            if self.pending and c == S_DONE:
                c = S_MIGHT_SWITCH
            if not self.pending and c == S_MIGHT_SWITCH:
                c = S_DONE
            if not self.keep_alive:
                if c == S_DONE:
                    c = S_MUST_CLOSE
                if s == S_DONE:
                    s = S_MUST_CLOSE
            if c == S_MIGHT_SWITCH and s == S_SWITCHED:
                c = S_SWITCHED
            elif c == S_CLOSED and (s == S_DONE or s == S_IDLE):
                s = S_MUST_CLOSE
            elif c == S_ERROR and s == S_DONE:
                s = S_MUST_CLOSE
            elif (c == S_DONE or c == S_IDLE) and s == S_CLOSED:
                c = S_MUST_CLOSE
            elif c == S_DONE and s == S_ERROR:
                c = S_MUST_CLOSE
            self.st[0] = c
            self.st[1] = s
            if c == c0 and s == s0:
                return 0

    cdef int next_cycle(self) except -1:
        if self.st[0] != S_DONE or self.st[1] != S_DONE:
            raise LocalProtocolError(
                "not in a reusable state. self.states={}".format(self.states))
        assert self.keep_alive
        assert not self.pending
        self.st[0] = S_IDLE
        self.st[1] = S_IDLE
        return 0


# ----------------------------------------------------------------------------------------
# Framing and keep-alive (RFC 9112 6.3, 9.3)

DEFAULT_MAX_INCOMPLETE_EVENT_SIZE = 16 * 1024

cdef enum:
    F_LENGTH = 0
    F_CHUNKED = 1
    F_HTTP10 = 2     # until the connection closes


cdef bint keep_alive(object event):
    cdef Headers headers
    cdef bytes version
    if type(event) is Request:
        headers = (<Request> event).headers
        version = (<Request> event).http_version
    else:
        headers = (<_ResponseBase> event).headers
        version = (<_ResponseBase> event).http_version
    if b"close" in comma_values(headers, b"connection"):
        return False
    return not version < b"1.1"


def _keep_alive(event):
    """Whether the connection may be reused after this Request or Response."""
    return keep_alive(event)


cdef int framing(object method, object event, int64_t* length) except -1:
    """F_LENGTH (length[0] set), F_CHUNKED or F_HTTP10 for a Request or Response."""
    cdef Headers headers
    cdef tuple t
    cdef int code
    cdef object cl = None
    if type(event) is Response:
        code = (<Response> event).status_code
        if code == 204 or code == 304 or method == b"HEAD" or (
                method == b"CONNECT" and 200 <= code < 300):
            length[0] = 0
            return F_LENGTH
        headers = (<Response> event).headers
    else:
        headers = (<Request> event).headers
    for t in headers._full_items:
        if is_name(t[1], "transfer-encoding", 17):
            return F_CHUNKED   # normalize() let only "chunked" through
        if cl is None and is_name(t[1], "content-length", 14):
            cl = t[2]
    if cl is not None:
        v = int(cl)
        if v > 0x7FFFFFFFFFFFFFFF:
            # Bodies are counted in 63 bits, as in the engine (docs/raw.md, "Limits").
            raise LocalProtocolError("Content-Length too large")
        length[0] = v
        return F_LENGTH
    if type(event) is Request:
        length[0] = 0
        return F_LENGTH
    return F_HTTP10


def _body_framing(request_method, event):
    """("content-length", (n,)), ("chunked", ()) or ("http/1.0", ()) for an event."""
    cdef int64_t n = 0
    assert type(event) in (Request, Response)
    if type(event) is Response:
        assert (<Response> event).status_code >= 200
    f = framing(request_method, event, &n)
    if f == F_LENGTH:
        return ("content-length", (n,))
    return ("chunked", ()) if f == F_CHUNKED else ("http/1.0", ())


# ----------------------------------------------------------------------------------------
# Writing

cdef list STATUS_TEXT = [b"%d" % i for i in range(1000)]


cdef inline bytes head_bytes(tuple start, Headers headers):
    """The start line, the fields as given (Host first), the empty line: the engine's
    writer (docs/raw.md, "HTTP/1.1 without a Connection")."""
    return h1_head_bytes(start, headers._full_items)


# ----------------------------------------------------------------------------------------
# The connection

# What reads the peer's next bytes and what writes ours (h11's READERS and WRITERS); the
# body kinds have the same values on both sides (io_kind returns either).
cdef enum:
    RD_NONE = 0
    RD_REQUEST = 1      # a request head
    RD_RESPONSE = 2     # a response head
    RD_NOTHING = 3      # DONE, MUST_CLOSE, CLOSED: any byte is an error
    RD_LENGTH = 4
    RD_CHUNKED = 5
    RD_HTTP10 = 6

    WR_NONE = 0
    WR_REQUEST = 1
    WR_RESPONSE = 2
    WR_LENGTH = 4
    WR_CHUNKED = 5
    WR_HTTP10 = 6


cdef class Connection:
    """An HTTP/1.1 connection's state, h11's API: feed bytes with receive_data, take
    events with next_event, turn events into bytes with send."""

    cdef readonly object our_role
    cdef readonly object their_role
    cdef int ours, theirs
    cdef public ConnectionState _cstate
    cdef bytearray buf
    cdef Py_ssize_t pos
    cdef bint eof
    cdef public object their_http_version
    cdef public object _request_method
    cdef public bint client_is_waiting_for_100_continue
    cdef public Py_ssize_t _max_incomplete_event_size
    cdef int rkind, wkind
    cdef int64_t rleft, rtotal, wleft
    cdef int64_t chunk_left     # bytes of the current chunk still to read
    cdef int chunk_crlf         # bytes of the CRLF after a chunk still to read (0-2)
    cdef bint chunk_trailer     # reading the trailer section

    def __init__(self, our_role, max_incomplete_event_size=DEFAULT_MAX_INCOMPLETE_EVENT_SIZE):
        self._max_incomplete_event_size = max_incomplete_event_size
        if our_role is not CLIENT and our_role is not SERVER:
            raise ValueError("expected CLIENT or SERVER, not {!r}".format(our_role))
        self.our_role = our_role
        self.ours = R_CLIENT if our_role is CLIENT else R_SERVER
        self.theirs = 1 - self.ours
        self.their_role = ROLES[self.theirs]
        self._cstate = ConnectionState()
        self.buf = bytearray()
        self.pos = 0
        self.eof = False
        self.their_http_version = None
        self._request_method = None
        self.client_is_waiting_for_100_continue = False
        self.wkind = self.io_kind(self.ours, None, True)
        self.rkind = self.io_kind(self.theirs, None, False)

    @property
    def states(self):
        """A new dict {CLIENT: state, SERVER: state}."""
        return self._cstate.states

    @property
    def our_state(self):
        """Our role's state."""
        return STATES[self._cstate.st[self.ours]]

    @property
    def their_state(self):
        """The peer's role's state."""
        return STATES[self._cstate.st[self.theirs]]

    @property
    def they_are_waiting_for_100_continue(self):
        """We are the server and the client waits for 100 Continue before its body."""
        return self.theirs == R_CLIENT and self.client_is_waiting_for_100_continue

    @property
    def trailing_data(self):
        """(bytes received and not parsed, whether the peer closed): what follows a
        protocol switch."""
        return (bytes(self.buf[self.pos:]), self.eof)

    def start_next_cycle(self):
        """Both parties DONE: reset to IDLE for the next request/response on this
        connection (LocalProtocolError otherwise)."""
        cdef int c = self._cstate.st[0], s = self._cstate.st[1]
        self._cstate.next_cycle()
        self._request_method = None
        assert not self.client_is_waiting_for_100_continue
        self.changed(c, s, None)

    cdef int process_error(self, int role) except -1:
        cdef int c = self._cstate.st[0], s = self._cstate.st[1]
        self._cstate.error(role)
        return self.changed(c, s, None)

    cdef int io_kind(self, int role, object event, bint writing) except -1:
        cdef int state = self._cstate.st[role]
        cdef int64_t n = 0
        cdef int f
        if state == S_SEND_BODY:
            f = framing(self._request_method, event, &n)
            if writing:
                self.wleft = n
            else:
                self.rleft = self.rtotal = n
                self.chunk_left = 0
                self.chunk_crlf = 0
                self.chunk_trailer = False
            return (WR_LENGTH if f == F_LENGTH else WR_CHUNKED if f == F_CHUNKED
                    else WR_HTTP10)
        if role == R_CLIENT:
            if state == S_IDLE:
                return WR_REQUEST if writing else RD_REQUEST
        elif state == S_IDLE or state == S_SEND_RESPONSE:
            return WR_RESPONSE if writing else RD_RESPONSE
        if not writing and (state == S_DONE or state == S_MUST_CLOSE or state == S_CLOSED):
            return RD_NOTHING
        return RD_NONE

    cdef int changed(self, int c, int s, object event) except -1:
        cdef int old_ours = c if self.ours == R_CLIENT else s
        cdef int old_theirs = s if self.ours == R_CLIENT else c
        if self._cstate.st[self.ours] != old_ours:
            self.wkind = self.io_kind(self.ours, event, True)
        if self._cstate.st[self.theirs] != old_theirs:
            self.rkind = self.io_kind(self.theirs, event, False)
        return 0

    cdef int process_event(self, int role, object event) except -1:
        cdef ConnectionState cs = self._cstate
        cdef int c = cs.st[0], s = cs.st[1]
        cdef object t = type(event)
        cdef int ev, sw = 0
        if t is Request:
            ev = E_REQUEST
            if role == R_CLIENT:
                if (<Request> event).method == b"CONNECT":
                    cs.propose(SW_CONNECT)
                if comma_values((<Request> event).headers, b"upgrade"):
                    cs.propose(SW_UPGRADE)
        elif t is Data:
            ev = E_DATA
        elif t is EndOfMessage:
            ev = E_EOM
        elif t is Response:
            ev = E_RESPONSE
            if role == R_SERVER and (cs.pending & SW_CONNECT) and \
                    200 <= (<Response> event).status_code < 300:
                sw = SW_CONNECT
        elif t is InformationalResponse:
            ev = E_INFO
            if role == R_SERVER and (<InformationalResponse> event).status_code == 101:
                sw = SW_UPGRADE
        elif t is ConnectionClosed:
            ev = E_CLOSED
        else:
            raise LocalProtocolError("can't handle event type {} when role={} and state={}"
                                     .format(t.__name__, ROLES[role], STATES[cs.st[role]]))
        cs.event(role, ev, sw)
        if ev == E_REQUEST:
            self._request_method = (<Request> event).method
            if role == self.theirs:
                self.their_http_version = (<Request> event).http_version
            if not keep_alive(event):
                cs.keep_alive = False
                cs.settle()
            if expects_100(<Request> event):
                self.client_is_waiting_for_100_continue = True
        elif ev == E_RESPONSE or ev == E_INFO:
            if role == self.theirs:
                self.their_http_version = (<_ResponseBase> event).http_version
            if ev == E_RESPONSE and not keep_alive(event):
                cs.keep_alive = False
                cs.settle()
            self.client_is_waiting_for_100_continue = False
        elif role == R_CLIENT and (ev == E_DATA or ev == E_EOM):
            self.client_is_waiting_for_100_continue = False
        return self.changed(c, s, event)

    # -- receiving ------------------------------------------------------------------------

    def receive_data(self, data):
        """Add bytes received; b"" means the peer closed its side."""
        if data:
            if self.eof:
                raise RuntimeError("received close, then received more data?")
            if self.pos and self.pos == PyByteArray_GET_SIZE(self.buf):
                del self.buf[:]
                self.pos = 0
            self.buf += data
        else:
            self.eof = True

    cdef inline Py_ssize_t buffered(self) noexcept:
        return PyByteArray_GET_SIZE(self.buf) - self.pos

    cdef bytes take(self, Py_ssize_t n):
        cdef bytes out = PyBytes_FromStringAndSize(PyByteArray_AS_STRING(self.buf) + self.pos, n)
        self.advance(n)
        return out

    cdef inline void advance(self, Py_ssize_t n) noexcept:
        self.pos += n

    cdef int compact(self) except -1:
        if self.pos == PyByteArray_GET_SIZE(self.buf):
            if self.pos:
                del self.buf[:]
                self.pos = 0
        elif self.pos > 65536:
            del self.buf[:self.pos]
            self.pos = 0
        return 0

    cdef int skip_malformed(self, object exc) except -1:
        """A malformed head or line that was complete is consumed, as h11 does, so
        trailing_data shows only what follows it."""
        end = getattr(exc, "end", None)
        if end is not None:
            self.pos = end
        return 0

    cdef object read_head(self, int kind):
        cdef tuple r
        cdef Headers headers
        cdef object status
        try:
            r = h1_parse_head(self.buf, self.pos, kind)
        except _EngineError as exc:
            self.skip_malformed(exc)
            raise LocalProtocolError(str(exc)) from None
        if r is None:
            return None
        self.pos = r[0]
        if kind == PARSE_TRAILERS:
            return new_eom(normalize(r[1], True))
        headers = normalize(r[4], True)
        if kind == PARSE_REQUEST:
            ev = Request.__new__(Request)
            (<Request> ev).method = r[1]
            (<Request> ev).target = r[2]
            (<Request> ev).http_version = r[3]
            (<Request> ev).headers = headers
            check_hosts(headers, r[3])
            return ev
        status = r[2]
        ev = (InformationalResponse if status < 200 else Response).__new__(
            InformationalResponse if status < 200 else Response)
        (<_ResponseBase> ev).http_version = r[1]
        (<_ResponseBase> ev).status_code = status
        (<_ResponseBase> ev).reason = r[3]
        (<_ResponseBase> ev).headers = headers
        return ev

    cdef object read_chunked(self):
        cdef Py_ssize_t have, n
        cdef bint start = False
        cdef tuple r
        cdef const char* p
        if self.chunk_trailer:
            return self.read_head(PARSE_TRAILERS)
        if self.chunk_crlf:
            # The CRLF after a chunk's data (RFC 9112 7.1), maybe split across reads.
            have = self.buffered()
            if have == 0:
                return None
            p = PyByteArray_AS_STRING(self.buf) + self.pos
            n = min(have, self.chunk_crlf)
            expected = b"\r\n"[2 - self.chunk_crlf:]
            got = p[:n]
            self.advance(n)
            if got != expected[:n]:
                raise LocalProtocolError("malformed chunk footer: {!r} (expected {!r})".format(
                    got, expected))
            self.chunk_crlf -= n
            if self.chunk_crlf:
                return None
        if self.chunk_left == 0:
            try:
                r = h1_parse_chunk_line(self.buf, self.pos)
            except _EngineError as exc:
                self.skip_malformed(exc)
                raise LocalProtocolError(str(exc)) from None
            if r is None:
                return None
            self.pos = r[0]
            self.chunk_left = r[1]
            if self.chunk_left == 0:
                self.chunk_trailer = True
                return self.read_head(PARSE_TRAILERS)
            start = True
        have = self.buffered()
        if have == 0:
            return None
        n = min(<int64_t> have, self.chunk_left)
        data = self.take(n)
        self.chunk_left -= n
        if self.chunk_left == 0:
            self.chunk_crlf = 2
            return new_data(data, start, True)
        return new_data(data, start, False)

    cdef object read_event(self):
        cdef int state = self._cstate.st[self.theirs]
        cdef Py_ssize_t n
        cdef object event = None
        if state == S_DONE and self.buffered():
            return PAUSED
        if state == S_MIGHT_SWITCH or state == S_SWITCHED:
            return PAUSED
        k = self.rkind
        if k == RD_LENGTH:
            if self.rleft == 0:
                return new_eom(NO_HEADERS)
            n = self.buffered()
            if n:
                n = min(<int64_t> n, self.rleft)
                self.rleft -= n
                event = new_data(self.take(n), False, False)
        elif k == RD_REQUEST:
            event = self.read_head(PARSE_REQUEST)
        elif k == RD_RESPONSE:
            event = self.read_head(PARSE_RESPONSE)
        elif k == RD_CHUNKED:
            event = self.read_chunked()
        elif k == RD_HTTP10:
            n = self.buffered()
            if n:
                event = new_data(self.take(n), False, False)
        elif k == RD_NOTHING:
            if self.buffered():
                raise LocalProtocolError("Got data when expecting EOF")
        else:
            raise AssertionError("no reader in state %r" % (STATES[state],))
        if event is None:
            if self.eof and not self.buffered():
                if k == RD_LENGTH:
                    raise RemoteProtocolError(
                        "peer closed connection without sending complete message body "
                        "(received {} bytes, expected {})".format(
                            self.rtotal - self.rleft, self.rtotal))
                if k == RD_CHUNKED:
                    raise RemoteProtocolError(
                        "peer closed connection without sending complete message body "
                        "(incomplete chunked read)")
                if k == RD_HTTP10:
                    return new_eom(NO_HEADERS)
                return ConnectionClosed()
            return NEED_DATA
        return event

    def next_event(self):
        """The next event parsed from the bytes received, NEED_DATA, or PAUSED.
        RemoteProtocolError if the peer broke the protocol (their_state is ERROR then)."""
        if self._cstate.st[self.theirs] == S_ERROR:
            raise RemoteProtocolError("Can't receive data when peer state is ERROR")
        try:
            event = self.read_event()
            if event is NEED_DATA:
                if self.buffered() > self._max_incomplete_event_size:
                    raise RemoteProtocolError("Receive buffer too long",
                                              error_status_hint=431)
                if self.eof:
                    raise RemoteProtocolError("peer unexpectedly closed connection")
            elif event is not PAUSED:
                self.process_event(self.theirs, event)
                self.compact()
            return event
        except BaseException as exc:
            self.process_error(self.theirs)
            if isinstance(exc, LocalProtocolError):
                exc._reraise_as_remote_protocol_error()
            raise

    # -- sending --------------------------------------------------------------------------

    def send(self, event):
        """The bytes that send event to the peer (None for ConnectionClosed).
        LocalProtocolError if that is not allowed now (our_state is ERROR then)."""
        cdef list chunks = self.send_list(event)
        if chunks is None:
            return None
        if PyList_GET_SIZE(chunks) == 1 and type(<object> PyList_GET_ITEM(chunks, 0)) is bytes:
            return <object> PyList_GET_ITEM(chunks, 0)
        return b"".join(chunks)

    def send_with_data_passthrough(self, event):
        """As send, but a list of byte strings; for Data, the object given is in it as is."""
        return self.send_list(event)

    def send_failed(self):
        """Tell the state machine that the bytes from send could not be sent: our state
        becomes ERROR."""
        self.process_error(self.ours)

    cdef list send_list(self, object event):
        cdef int kind
        cdef list out
        if self._cstate.st[self.ours] == S_ERROR:
            raise LocalProtocolError("Can't send data when our state is ERROR")
        try:
            if type(event) is Response:
                event = self.clean_response(<Response> event)
            kind = self.wkind
            self.process_event(self.ours, event)
            if type(event) is ConnectionClosed:
                return None
            return self.write(kind, event)
        except BaseException:
            self.process_error(self.ours)
            raise

    cdef list write(self, int kind, object event):
        cdef object data
        cdef Py_ssize_t n
        cdef Headers trailers
        if kind == WR_REQUEST:
            if (<Request> event).http_version != b"1.1":
                raise LocalProtocolError("I only send HTTP/1.1")
            return [head_bytes(((<Request> event).method, b" ", (<Request> event).target,
                                b" HTTP/1.1\r\n"), (<Request> event).headers)]
        if kind == WR_RESPONSE:
            if (<_ResponseBase> event).http_version != b"1.1":
                raise LocalProtocolError("I only send HTTP/1.1")
            # h11 writes the reason as given, an empty one too ("HTTP/1.1 200 \r\n").
            code = (<_ResponseBase> event).status_code
            return [head_bytes((b"HTTP/1.1 ", STATUS_TEXT[code] if 0 <= code < 1000
                                else str(code).encode("ascii"), b" ",
                                (<_ResponseBase> event).reason, b"\r\n"),
                               (<_ResponseBase> event).headers)]
        if type(event) is Data:
            data = (<Data> event).data
            if kind == WR_LENGTH:
                self.wleft -= len(data)
                if self.wleft < 0:
                    raise LocalProtocolError("Too much data for declared Content-Length")
                return [data]
            if kind == WR_CHUNKED:
                n = len(data)
                if n == 0:
                    return []
                return [b"%x\r\n" % n, data, b"\r\n"]
            if kind == WR_HTTP10:
                return [data]
        elif type(event) is EndOfMessage:
            trailers = (<EndOfMessage> event).headers
            if kind == WR_LENGTH:
                if self.wleft != 0:
                    raise LocalProtocolError("Too little data for declared Content-Length")
                if trailers:
                    raise LocalProtocolError("Content-Length and trailers don't mix")
                return []
            if kind == WR_CHUNKED:
                return [head_bytes((b"0\r\n",), trailers)]
            if kind == WR_HTTP10:
                if trailers:
                    raise LocalProtocolError("can't send trailers to HTTP/1.0 client")
                return []
        raise AssertionError("no writer for %r" % (event,))

    cdef object clean_response(self, Response response):
        """h11's header clean-up before a response goes out: framing headers that match
        what will be sent, and Connection: close when the connection will close."""
        cdef Headers headers = response.headers
        cdef bint need_close = False, changed = False
        cdef int64_t n = 0
        cdef int f
        cdef object method = self._request_method
        if method == b"HEAD":
            method = b"GET"
        f = framing(method, response, &n)
        if f != F_LENGTH:
            if comma_values(headers, b"content-length"):
                headers = replace_field(headers, b"content-length", [])
            if self.their_http_version is None or self.their_http_version < b"1.1":
                headers = replace_field(headers, b"transfer-encoding", [])
                if self._request_method != b"HEAD":
                    need_close = True
            else:
                headers = replace_field(headers, b"transfer-encoding", [b"chunked"])
            changed = True
        if not self._cstate.keep_alive or need_close:
            connection = set(comma_values(headers, b"connection"))
            connection.discard(b"keep-alive")
            connection.add(b"close")
            headers = replace_field(headers, b"connection", sorted(connection))
            changed = True
        if not changed:
            return response
        out = Response.__new__(Response)
        (<Response> out).headers = headers
        (<Response> out).status_code = response.status_code
        (<Response> out).http_version = response.http_version
        (<Response> out).reason = response.reason
        return out


# ----------------------------------------------------------------------------------------
# h11's reader and writer objects (h11._readers, h11._writers), for code that drives them
# directly: each runs a private Connection's own reading or writing code on the caller's
# buffer, so there is one implementation of each rule.

@cython.final
cdef class _Reader:
    """reader(buf) -> event or None, as h11's readers: parses from a ReceiveBuffer
    (cno.h11._receivebuffer) and removes what it used; read_eof() at the end of input."""

    cdef Connection conn
    cdef int kind

    def __call__(self, buf):
        cdef Connection c = self.conn
        cdef Py_ssize_t used = 0
        c.buf = buf._data
        c.pos = 0
        c.eof = False
        c.rkind = self.kind
        try:
            event = c.read_event()
            used = c.pos
        finally:
            c.buf = bytearray()
            c.pos = 0
        if used:
            buf._extract(used)
        return None if event is NEED_DATA else event

    def read_eof(self):
        """The event the end of input makes (EndOfMessage), or RemoteProtocolError."""
        self.conn.eof = True
        self.conn.rkind = self.kind
        return self.conn.read_event()


@cython.final
cdef class _Writer:
    """writer(event, write), as h11's writers: write(bytes) for each piece."""

    cdef Connection conn
    cdef int kind

    def __call__(self, event, write):
        for chunk in self.conn.write(self.kind, event):
            write(chunk)


cdef Connection private_connection(int64_t length):
    cdef Connection c = Connection(SERVER)
    c.rleft = c.rtotal = c.wleft = length
    return c


cdef _Reader make_reader(int kind, int64_t length=0):
    cdef _Reader r = _Reader.__new__(_Reader)
    r.conn = private_connection(length)
    r.kind = kind
    return r


cdef _Writer make_writer(int kind, int64_t length=0):
    cdef _Writer w = _Writer.__new__(_Writer)
    w.conn = private_connection(length)
    w.kind = kind
    return w


maybe_read_from_IDLE_client = make_reader(RD_REQUEST)
maybe_read_from_SEND_RESPONSE_server = make_reader(RD_RESPONSE)


def ContentLengthReader(length):
    """A reader of a body of length bytes."""
    return make_reader(RD_LENGTH, length)


def ChunkedReader():
    """A reader of a chunked body and its trailers."""
    return make_reader(RD_CHUNKED)


def Http10Reader():
    """A reader of a body that ends with the connection."""
    return make_reader(RD_HTTP10)


def expect_nothing(buf):
    """The reader after a message: any byte is an error."""
    if buf:
        raise LocalProtocolError("Got data when expecting EOF")
    return None


write_request = make_writer(WR_REQUEST)
write_any_response = make_writer(WR_RESPONSE)


def ContentLengthWriter(length):
    """A writer of a body of exactly length bytes."""
    return make_writer(WR_LENGTH, length)


def ChunkedWriter():
    """A writer of a chunked body and its trailers."""
    return make_writer(WR_CHUNKED)


def Http10Writer():
    """A writer of a body that ends with the connection."""
    return make_writer(WR_HTTP10)


def write_headers(headers, write):
    """write() the field lines of headers (Host first) and the empty line."""
    write(head_bytes((), headers))


def decode_header_lines(lines):
    """(name, value) pairs from field lines without their line ends, obs-folds joined,
    parsed by the engine; LocalProtocolError for a malformed line."""
    block = b"".join([bytes(x) + b"\r\n" for x in lines]) + b"\r\n"
    try:
        r = h1_parse_head(block, 0, PARSE_TRAILERS)
    except _EngineError as exc:
        raise LocalProtocolError(str(exc)) from None
    return [(t[0], t[2]) for t in r[1]]
