# cython: language_level=3
"""The HTTP/2 engine (RFC 9113) behind cno.raw.Connection; see docs/raw.md.

Bytes in -> frames parsed in place -> events out (methods of the Python subclass);
calls in -> frames serialised into one C buffer -> one on_writev per public call.
"""
cimport cython
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcmp, memcpy, memmove, memchr, memset, strlen
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.bytes cimport (
    PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact, PyBytes_Check,
)
from cpython.memoryview cimport PyMemoryView_FromObject, PyMemoryView_Check, PyMemoryView_GET_BUFFER
cdef extern from "Python.h":
    # The object a memoryview's buffer comes from (NULL for raw memory).
    PyObject* memoryview_base "PyMemoryView_GET_BASE" (object)
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.unicode cimport PyUnicode_DecodeLatin1
from cpython.list cimport PyList_GET_SIZE, PyList_GET_ITEM
from cpython.tuple cimport PyTuple_GET_SIZE, PyTuple_CheckExact, PyTuple_GET_ITEM

from cno._buffer cimport WriteBuffer, buf_reserve, buf_put, buf_free, buf_trim
from cno._pylist cimport PyListObject, Py_SET_SIZE, list_with_room, list_push
from cno._identity cimport identity_hash, identity_find, identity_put, identity_clear
from cno._fields cimport is_field, field_ptr
from cno._hpack cimport (
    Encoder, Decoder, HPACK_OK, HPACK_ERR_LIST_SIZE,
)
from cno._hpack import HPACKDecodingError

import collections
import inspect

from cno import errors
from cno.errors import (
    ConnectionClosed, EnhanceYourCalm, FlowControlError, FrameSizeError, InvalidStream,
    ProtocolError, UsageError, WouldBlock,
)

# ----------------------------------------------------------------------------------------
# Constants (the same values as cno.raw's CNO_* names)

cdef enum:
    REMOTE = 0
    LOCAL = 1

    FRAME_DATA = 0x0
    FRAME_HEADERS = 0x1
    FRAME_PRIORITY = 0x2
    FRAME_RST_STREAM = 0x3
    FRAME_SETTINGS = 0x4
    FRAME_PUSH_PROMISE = 0x5
    FRAME_PING = 0x6
    FRAME_GOAWAY = 0x7
    FRAME_WINDOW_UPDATE = 0x8
    FRAME_CONTINUATION = 0x9

    FLAG_ACK = 0x1
    FLAG_END_STREAM = 0x1
    FLAG_END_HEADERS = 0x4
    FLAG_PADDED = 0x8
    FLAG_PRIORITY = 0x20

    NO_ERROR = 0x0
    PROTOCOL_ERROR = 0x1
    INTERNAL_ERROR = 0x2
    FLOW_CONTROL_ERROR = 0x3
    STREAM_CLOSED = 0x5
    FRAME_SIZE_ERROR = 0x6
    REFUSED_STREAM = 0x7
    CANCEL = 0x8
    COMPRESSION_ERROR = 0x9
    ENHANCE_YOUR_CALM = 0xB

    S_HEADER_TABLE_SIZE = 1
    S_ENABLE_PUSH = 2
    S_MAX_CONCURRENT_STREAMS = 3
    S_INITIAL_WINDOW_SIZE = 4
    S_MAX_FRAME_SIZE = 5
    S_MAX_HEADER_LIST_SIZE = 6
    S_ENABLE_CONNECT_PROTOCOL = 8
    S_NO_RFC7540_PRIORITIES = 9   # RFC 9218 2.1

    # connection states
    ST_IDLE = 0        # before connection_made
    ST_PREFACE = 1     # server: reading the client preface
    ST_SETTINGS = 2    # the peer's first frame must be SETTINGS (RFC 9113 3.4)
    ST_FRAME = 3
    ST_DATA = 4        # inside a DATA frame's payload
    ST_CLOSED = 5
    ST_GOAWAYS = 6     # closed by the peer's GOAWAY, still reading GOAWAY frames (read_goaways)

    # stream read / write states
    R_HEADERS = 0
    R_DATA = 1
    R_CLOSED = 2
    W_HEADERS = 0
    W_DATA = 1
    W_CLOSED = 2

    MAX_STREAM_ID = 0x7FFFFFFF
    MAX_WINDOW = 0x7FFFFFFF
    RECENTLY_RESET = 1024      # ids of streams we reset whose late frames we ignore
    CONSERVATIVE_STREAMS = 100  # the peer's stream limit until its SETTINGS arrive

cdef uint32_t NO_LIMIT = 0xFFFFFFFFu

# RFC 9113 6.5.2 initial values: what each side assumes until SETTINGS say otherwise.
cdef uint32_t STANDARD[SETTINGS_COUNT]
STANDARD[:] = [0, 4096, 1, NO_LIMIT, 65535, 16384, NO_LIMIT, 0, 0, 0]

# Limits, each a run-time attribute of Connection with this default.
DEFAULT_MAX_CONCURRENT_STREAMS = 100      # RFC 9113 6.5.2 recommends at least 100
DEFAULT_MAX_HEADER_LIST_SIZE = 65536      # as the hpack package and most servers
DEFAULT_MAX_HEADER_BLOCK_SIZE = 262144    # compressed; 4x the list limit covers any encoding
DEFAULT_MAX_CONTINUATIONS = 64            # CONTINUATION floods (CVE-2024-27316 and kin)
DEFAULT_RESET_BUDGET = 1000               # rapid reset (CVE-2023-44487)
DEFAULT_EMPTY_FRAME_BUDGET = 100          # empty DATA/HEADERS floods (CVE-2019-9518)
DEFAULT_CONTROL_FRAME_BUDGET = 10000      # PING/SETTINGS floods (CVE-2019-9512, -9515)
DEFAULT_STREAM_ERROR_BUDGET = 1000        # streams the peer makes us reset (CVE-2025-8671)
# write_data payloads of at least this many bytes reach on_writev as references to the
# caller's buffer, not copies (docs/raw.md, "Zero-copy output"); bench/zero_copy.py measured
# where the copy stops being the cheaper of the two.
DEFAULT_ZERO_COPY_THRESHOLD = 16384
# Internal buffers that grew past this for one large message give the memory back once
# empty: an idle connection keeps only small buffers.
cdef Py_ssize_t TRIM_ABOVE = 65536
# DATA payloads of at most GATHER_PIECE bytes that follow one another on a stream within
# one data_received reach on_message_data together, up to GATHER_MAX bytes at a time:
# a Python call per 10-byte frame would cost more than the frame's parsing.
cdef Py_ssize_t GATHER_PIECE = 4096
cdef Py_ssize_t GATHER_MAX = 65536

SETTINGS_NAMES = {
    "header_table_size": S_HEADER_TABLE_SIZE,
    "enable_push": S_ENABLE_PUSH,
    "max_concurrent_streams": S_MAX_CONCURRENT_STREAMS,
    "initial_window_size": S_INITIAL_WINDOW_SIZE,
    "max_frame_size": S_MAX_FRAME_SIZE,
    "max_header_list_size": S_MAX_HEADER_LIST_SIZE,
    "enable_connect_protocol": S_ENABLE_CONNECT_PROTOCOL,
    "no_rfc7540_priorities": S_NO_RFC7540_PRIORITIES,
}
cdef dict _SETTINGS_BY_ID = {v: k for k, v in SETTINGS_NAMES.items()}

cdef Py_ssize_t PEER_RESETS_KEPT = 1024   # strict_errors: stream ids the peer reset, remembered
cdef bytes PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

Frame = collections.namedtuple("Frame", "type flags stream payload")
Frame.__doc__ = "An HTTP/2 frame as on_frame and on_frame_send see it (payload: bytes)."

# RFC 9113 8.2.1: bytes allowed in a field name (no controls, SP, upper case, DEL, or
# non-ASCII; a colon only as a pseudo-header's first character).
cdef uint8_t NAME_OK[256]
for _i in range(256):
    NAME_OK[_i] = 0x21 <= _i <= 0x7E and not (0x41 <= _i <= 0x5A) and _i != 0x3A

cdef list STATUS_STR = [str(i) for i in range(1000)]
cdef list STATUS_BYTES = [str(i).encode() for i in range(1000)]
cdef list STATUS_FIELDS = [(b":status", b) for b in STATUS_BYTES]   # written as they are

_EVENT_NAMES = (
    "on_writev", "on_stream_start", "on_stream_end", "on_flow_increase",
    "on_message_head", "on_message_data", "on_message_tail", "on_message_push",
    "on_frame", "on_frame_send", "on_pong", "on_settings", "on_close", "on_upgrade",
    "on_priority_update",
)
cdef dict _event_cache = {}   # subclass -> tuple of event callables (None: not defined)


# ----------------------------------------------------------------------------------------
# Small C helpers

cdef inline uint32_t read_u32(const uint8_t* p) noexcept:
    return (<uint32_t> p[0] << 24) | (<uint32_t> p[1] << 16) | (<uint32_t> p[2] << 8) | p[3]


cdef inline void put_u32(uint8_t* p, uint32_t v) noexcept:
    p[0] = <uint8_t>(v >> 24)
    p[1] = <uint8_t>(v >> 16)
    p[2] = <uint8_t>(v >> 8)
    p[3] = <uint8_t> v


cdef inline int put_frame_header(WriteBuffer* b, uint32_t length, uint8_t type, uint8_t flags,
                                 uint32_t stream) except -1:
    buf_reserve(b, 9)
    cdef uint8_t* p = b.data + b.len
    p[0] = <uint8_t>(length >> 16)
    p[1] = <uint8_t>(length >> 8)
    p[2] = <uint8_t> length
    p[3] = type
    p[4] = flags
    put_u32(p + 5, stream)
    b.len += 9
    return 0


cdef inline bint bytes_equal(const uint8_t* p, Py_ssize_t n, const char* lit, Py_ssize_t m) noexcept:
    return n == m and memcmp(p, lit, m) == 0


cdef object field_object(object o):
    """An exact bytes or latin-1 str for a header given as str, bytes or bytes-like."""
    if is_field(o):
        return o
    if isinstance(o, str):
        return (<str> o).encode("latin-1")   # UnicodeEncodeError: not latin-1
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o)
    raise TypeError("header names and values must be str or bytes, not %s" % type(o).__name__)


# ----------------------------------------------------------------------------------------
# Header validation (RFC 9113 8.2 and 8.3)

cdef enum:
    MALFORMED = -2         # parse_request's answer for a malformed request

cdef enum:
    PSEUDO_NONE = 0
    PSEUDO_METHOD = 1
    PSEUDO_SCHEME = 2
    PSEUDO_AUTHORITY = 3
    PSEUDO_PATH = 4
    PSEUDO_STATUS = 5
    PSEUDO_PROTOCOL = 6
    PSEUDO_UNKNOWN = 7


cdef inline int pseudo_kind(const uint8_t* p, Py_ssize_t n) noexcept:
    if bytes_equal(p, n, ":method", 7):
        return PSEUDO_METHOD
    if bytes_equal(p, n, ":path", 5):
        return PSEUDO_PATH
    if bytes_equal(p, n, ":scheme", 7):
        return PSEUDO_SCHEME
    if bytes_equal(p, n, ":authority", 10):
        return PSEUDO_AUTHORITY
    if bytes_equal(p, n, ":status", 7):
        return PSEUDO_STATUS
    if bytes_equal(p, n, ":protocol", 9):
        return PSEUDO_PROTOCOL
    return PSEUDO_UNKNOWN


cdef inline bint name_valid(const uint8_t* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not NAME_OK[p[i]]:
            return False
    return True


cdef inline bint has_zero_byte(uint64_t x) noexcept:
    return ((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) != 0


cdef inline bint padded(const uint8_t* p, Py_ssize_t n) noexcept:
    """Whether a field value starts or ends with SP or HTAB (RFC 9110 5.5 excludes it)."""
    return n > 0 and (p[0] == 0x20 or p[0] == 0x09 or p[n - 1] == 0x20 or p[n - 1] == 0x09)


cdef inline bint value_valid(const uint8_t* p, Py_ssize_t n) noexcept:
    """RFC 9113 8.2.1: no NUL, CR or LF; no SP or HTAB at either end (HTAB inside is
    fine). Eight bytes at a time."""
    cdef Py_ssize_t i = 0
    cdef uint64_t x
    cdef uint8_t c
    if padded(p, n):
        return False
    while i + 8 <= n:
        memcpy(&x, p + i, 8)
        if (has_zero_byte(x) or has_zero_byte(x ^ 0x0A0A0A0A0A0A0A0AULL)
                or has_zero_byte(x ^ 0x0D0D0D0D0D0D0D0DULL)):
            return False
        i += 8
    for i in range(i, n):
        c = p[i]
        if c == 0 or c == 0x0A or c == 0x0D:
            return False
    return True


def field_is_valid(name, value):
    """Whether one field passes RFC 9113 8.2.1 as the engine checks received fields: a
    non-empty name of lower-case token characters (a pseudo-header's leading colon
    aside), a value with no NUL, CR or LF and no SP or HTAB at either end. ``name`` and
    ``value`` are bytes or latin-1 str (anything else: False). For faces that validate in
    Python (cno.h2.utilities) and need the common case fast."""
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn
    if not (is_field(name) and is_field(value)):
        return False
    np = field_ptr(name, &nn)
    vp = field_ptr(value, &vn)
    if nn and np[0] == 0x3A:
        np += 1
        nn -= 1
        if nn == 0:
            return value_valid(vp, vn)
    return name_valid(np, nn) and value_valid(vp, vn)


cdef inline bint connection_specific(const uint8_t* p, Py_ssize_t n) noexcept:
    """RFC 9113 8.2.2: fields that only make sense on one HTTP/1.1 connection."""
    return (bytes_equal(p, n, "connection", 10) or bytes_equal(p, n, "keep-alive", 10)
            or bytes_equal(p, n, "proxy-connection", 16)
            or bytes_equal(p, n, "transfer-encoding", 17) or bytes_equal(p, n, "upgrade", 7))


cdef inline int64_t parse_digits(const uint8_t* p, Py_ssize_t n) noexcept:
    """A non-negative decimal up to 2^63-1, or -1."""
    cdef Py_ssize_t i
    cdef int64_t v = 0, d
    if n == 0 or n > 19:
        return -1
    for i in range(n):
        if p[i] < 0x30 or p[i] > 0x39:
            return -1
        d = p[i] - 0x30
        # 18 digits cannot overflow; the 19th may not take v past 2^63-1 = 9223372036854775807
        if i == 18 and (v > 922337203685477580 or (v == 922337203685477580 and d > 7)):
            return -1
        v = v * 10 + d
    return v


# A field repeated by the peer through its HPACK table decodes to the very same tuple
# each time (the decoder keeps one per table entry), so a regular field found valid
# once is remembered by identity and not checked again. Each slot holds a reference:
# the address cannot be reused by another object while it is remembered. Only short
# fields are kept, so the slots hold little memory.
cdef enum:
    CHECKED_SLOTS = 64     # (the size of Connection.checked): groups of four ways
    CHECKED_MAX_LEN = 256  # name + value bytes of a field worth remembering
    PSEUDO_SLOTS = 32      # (the size of Connection.pseudo_seen): groups of four ways
    SENT_SLOTS = 16        # (the size of Connection.sent_checked): groups of four ways


cdef inline bint is_checked(Connection c, object item, Py_ssize_t slot) noexcept:
    """item (its identity_hash in slot) is a regular field checked before."""
    return identity_find(c.checked, slot, item) >= 0


cdef inline void remember_checked(Connection c, object item, Py_ssize_t slot) noexcept:
    identity_put(c.checked, NULL, slot, item, 0)


cdef inline bint is_sent(Connection c, object item, Py_ssize_t slot) noexcept:
    """item is a te or content-length field check_headers passed before (see
    remember_sent)."""
    return identity_find(c.sent_checked, slot & (SENT_SLOTS - 4), item) >= 0


cdef inline void remember_sent(Connection c, object item, Py_ssize_t slot) noexcept:
    """A written field that passed check_headers but that inbound parsing must read
    every time (te, content-length): remembered for check_headers alone."""
    identity_put(c.sent_checked, NULL, slot & (SENT_SLOTS - 4), item, 0)


cdef inline int known_pseudo(Connection c, object item, Py_ssize_t slot) noexcept:
    """The kind of a request pseudo-header field whose value was found valid before
    (:method, :scheme, :authority or :path; see remember_pseudo), else PSEUDO_NONE."""
    cdef Py_ssize_t way = identity_find(c.pseudo_seen, slot & (PSEUDO_SLOTS - 4), item)
    return <int> c.pseudo_kinds[way] if way >= 0 else PSEUDO_NONE


cdef inline void remember_pseudo(Connection c, object item, Py_ssize_t slot, int kind) noexcept:
    identity_put(c.pseudo_seen, c.pseudo_kinds, slot & (PSEUDO_SLOTS - 4), item, kind)


cdef void forget_checked(Connection c) noexcept:
    identity_clear(c.checked, CHECKED_SLOTS)
    identity_clear(c.pseudo_seen, PSEUDO_SLOTS)
    identity_clear(c.sent_checked, SENT_SLOTS)


# ----------------------------------------------------------------------------------------
# Streams

@cython.freelist(64)   # (one per request: kept for reuse rather than freed)
cdef class Stream:
    """Per-stream state; internal to the engine."""
    pass


cdef Stream new_stream(Connection c, uint32_t sid, bint local):
    cdef Stream s = Stream.__new__(Stream)
    s.id = sid
    s.key = sid
    s.local = local
    s.r_state = R_HEADERS
    s.w_state = W_HEADERS
    s.send_window = c.remote[S_INITIAL_WINDOW_SIZE]
    s.recv_window = c.local[S_INITIAL_WINDOW_SIZE]
    s.remaining = -1
    s.declared = -1
    s.w_left = -1
    s.urgency = DEFAULT_URGENCY
    c.streams[s.key] = s
    c.streams_seen = s
    c.stream_count[LOCAL if local else REMOTE] += 1
    if not local:
        note_peer_stream(c, sid)
    elif sid > c.last_stream[LOCAL]:
        c.last_stream[LOCAL] = sid
    return s


cdef inline Stream find_stream(Connection c, uint32_t sid):
    """The open stream with this id, or None: the one last opened or looked up is
    remembered (a request is usually read, answered and ended on one stream in a row)."""
    cdef Stream s = c.streams_seen
    if s is not None and s.id == sid:
        return s
    s = c.streams.get(sid)
    if s is not None:
        c.streams_seen = s
    return s


cdef void note_peer_stream(Connection c, uint32_t sid):
    """The peer used id sid: ids it skipped are closed without having been opened (5.1.1);
    remember a bounded number of such gaps to tell them from streams that did exist."""
    cdef uint32_t last = c.last_stream[REMOTE]
    cdef uint32_t first = last + 2 if last else (1 if not c.client else 2)
    if sid <= last:
        return
    if sid > first:
        c.skipped.append((first, sid - 2))
        if len(c.skipped) > 64:
            del c.skipped[0]
    c.last_stream[REMOTE] = sid


cdef bint never_opened(Connection c, uint32_t sid):
    for first, last in c.skipped:
        if first <= sid <= last:
            return True
    return False


cdef inline bint ignored_after_goaway(Connection c, uint32_t sid) noexcept:
    """6.8: after our GOAWAY, frames on streams the peer opened above its id are ignored."""
    cdef bint ours = (sid & 1) == (1 if c.client else 0)
    return c.goaway_sent and not ours and sid > c.goaway_sent_id


cdef int end_stream(Connection c, Stream s, int code, int side) except -1:
    """Forget the stream and tell the application."""
    if c.streams.pop(s.key, None) is None:
        return 0
    if c.streams_seen is s:
        c.streams_seen = None
    s.r_state = R_CLOSED   # (a DATA frame in progress on it stops being delivered)
    s.w_state = W_CLOSED
    c.stream_count[LOCAL if s.local else REMOTE] -= 1
    if c.waiting:
        c.waiting.pop(s.id, None)
    if c.ev_stream_end is not None:
        c.ev_stream_end(c, s.key, code, side)
    return maybe_close(c)


cdef inline int maybe_end(Connection c, Stream s) except -1:
    """End the stream normally once both directions are closed."""
    if s.r_state == R_CLOSED and s.w_state == W_CLOSED:
        if not s.local:
            # A completed exchange earns back one unit of the rapid-reset and
            # stream-error budgets.
            earn(&c.resets)
            earn(&c.errors)
        return end_stream(c, s, NO_ERROR, LOCAL)
    return 0


cdef int maybe_close(Connection c) except -1:
    """After a GOAWAY either way, on_close fires once the last stream is gone."""
    if (c.goaway_sent or c.goaway_received) and not c.streams and not c.close_fired:
        c.close_fired = True
        if c.h2 and c.state != ST_CLOSED:
            c.state = ST_GOAWAYS if c.goaway_received and c.read_goaways else ST_CLOSED
        c.is_closed = True
        # Fired once this call's output is handed out: closing the transport first
        # would lose the last bytes of the last response.
        c.close_due = True
        if c.depth == 0:
            fire_close(c)
    return 0


cdef int fire_close(Connection c) except -1:
    if c.close_due:
        c.close_due = False
        c.corked = False   # (what was held goes out before the close)
        flush(c)
        if c.ev_close is not None:
            c.ev_close(c)
    return 0


cdef void remember_reset(Connection c, uint32_t sid):
    if sid in c.recently_reset:
        return   # (reset_late_frames: answered again, remembered once)
    c.recently_reset.add(sid)
    c.reset_order.append(sid)
    if len(c.reset_order) > RECENTLY_RESET:
        c.recently_reset.discard(c.reset_order.popleft())


# ----------------------------------------------------------------------------------------
# Output

cdef bint writing_body(Connection c) except -1:
    """Whether some stream is in the middle of writing its body."""
    cdef Stream s
    for s in c.streams.values():
        if s.w_state == W_DATA:
            return True
    return False


cdef int flush(Connection c) except -1:
    """Hand what this public call wrote to on_writev, in one call (or, while corked,
    keep it for uncork())."""
    cdef bytes data
    cdef list chunks
    if c.corked:
        return 0
    if c.out_chunks is not None:
        # Borrowed payloads (out_borrow) with the bytes written around them, in order.
        chunks = c.out_chunks
        c.out_chunks = None
        if c.out.len:
            chunks.append(PyBytes_FromStringAndSize(<char*> c.out.data, c.out.len))
            c.out.len = 0
        if c.ev_writev is not None:
            c.ev_writev(c, chunks)
    elif c.out.len:
        data = PyBytes_FromStringAndSize(<char*> c.out.data, c.out.len)
        c.out.len = 0
        if c.ev_writev is not None:
            c.ev_writev(c, [data])
    if c.out.cap > TRIM_ABOVE and not writing_body(c):
        buf_trim(&c.out, TRIM_ABOVE)   # (kept while a body streams out: no realloc per write)
    return 0


cdef inline bint may_borrow(Connection c, object data, Py_ssize_t n) noexcept:
    """Whether n payload bytes of data (a buffer) go to on_writev by reference rather than
    copied into the output: large enough to be worth a chunk of their own, and immutable
    (bytes, or a memoryview of bytes) unless the caller promised to leave its mutable
    buffers alone (borrow_buffers)."""
    cdef PyObject* base
    if n < c.zero_copy_threshold or n == 0:
        return False
    if PyBytes_Check(data):
        return True
    if PyMemoryView_Check(data):
        base = memoryview_base(data)
        if base != NULL and PyBytes_Check(<object> base):
            return True
    return c.borrow_buffers


cdef object byte_view(object data):
    """A new one-dimensional memoryview of unsigned bytes over data's buffer (which the
    caller already got as PyBUF_SIMPLE: it is contiguous). It keeps that buffer alive, and
    stays valid if the caller releases its own memoryview."""
    cdef object mv = PyMemoryView_FromObject(data)
    cdef Py_buffer* b = PyMemoryView_GET_BUFFER(mv)
    if b.ndim != 1 or not (b.format == NULL or (b.format[0] == 66 and b.format[1] == 0)):
        mv = mv.cast("B")   # (66: "B"; a multi-byte or signed format would count items)
    return mv


cdef int out_borrow(Connection c, object chunk) except -1:
    """Append a borrowed chunk to this call's output: what `out` holds so far becomes a
    chunk before it (flush adds the rest)."""
    if c.out_chunks is None:
        c.out_chunks = []
    if c.out.len:
        c.out_chunks.append(PyBytes_FromStringAndSize(<char*> c.out.data, c.out.len))
        c.out.len = 0
    c.out_chunks.append(chunk)
    return 0


cdef int frame_sent(Connection c, uint8_t type, uint8_t flags, uint32_t sid,
                    const uint8_t* payload, Py_ssize_t n) except -1:
    if c.ev_frame_send is not None:
        c.ev_frame_send(c, Frame(type, flags, sid, PyBytes_FromStringAndSize(<char*> payload, n)))
    return 0


cdef int write_simple_frame(Connection c, uint8_t type, uint8_t flags, uint32_t sid,
                            const uint8_t* payload, Py_ssize_t n) except -1:
    put_frame_header(&c.out, <uint32_t> n, type, flags, sid)
    buf_put(&c.out, payload, n)
    return frame_sent(c, type, flags, sid, payload, n)


cdef int write_rst(Connection c, uint32_t sid, uint32_t code) except -1:
    cdef uint8_t p[4]
    put_u32(p, code)
    return write_simple_frame(c, FRAME_RST_STREAM, 0, sid, p, 4)


cdef int write_window_update(Connection c, uint32_t sid, uint32_t delta) except -1:
    cdef uint8_t p[4]
    put_u32(p, delta)
    return write_simple_frame(c, FRAME_WINDOW_UPDATE, 0, sid, p, 4)


cdef int write_goaway(Connection c, uint32_t code, int64_t last=-1, bytes debug=None) except -1:
    """GOAWAY (RFC 9113 6.8) naming `last` (by default the last stream the peer opened),
    with `debug` as its additional debug data."""
    cdef uint8_t p[8]
    cdef uint32_t last_id = c.last_stream[REMOTE] if last < 0 else <uint32_t> last
    cdef bytes payload
    put_u32(p, last_id)
    put_u32(p + 4, code)
    c.goaway_sent = True
    c.goaway_sent_id = last_id
    if debug:
        payload = PyBytes_FromStringAndSize(<char*> p, 8) + debug
        return write_simple_frame(c, FRAME_GOAWAY, 0, 0,
                                  <const uint8_t*> PyBytes_AS_STRING(payload), len(payload))
    return write_simple_frame(c, FRAME_GOAWAY, 0, 0, p, 8)


cdef int write_settings(Connection c, dict changes) except -1:
    cdef uint8_t p[6 * SETTINGS_COUNT]
    cdef Py_ssize_t n = 0
    # (settings_order: as the caller listed them, else by id)
    for key in (changes if c.settings_order is not None else sorted(changes)):
        p[n] = 0
        p[n + 1] = <uint8_t> key
        put_u32(p + n + 2, changes[key])
        n += 6
    c.settings_queue.append(changes)
    return write_simple_frame(c, FRAME_SETTINGS, 0, 0, p, n)


cdef int take_head_priority(Connection c, uint8_t* pp) except -1:
    """next_head_priority's 5 bytes (RFC 9113 6.2's deprecated priority fields, as the
    caller gave them) into pp, once."""
    cdef object prio = c.next_head_priority
    c.next_head_priority = None
    if not PyBytes_CheckExact(prio) or PyBytes_GET_SIZE(prio) != 5:
        raise UsageError("next_head_priority must be 5 bytes")
    memcpy(pp, PyBytes_AS_STRING(prio), 5)
    return 0


cdef int write_header_block(Connection c, uint8_t type, uint8_t flags, uint32_t sid,
                            uint32_t promised, list fields) except -1:
    """Encode fields and write them as HEADERS or PUSH_PROMISE + CONTINUATIONs, together."""
    cdef Py_ssize_t max_frame = c.remote[S_MAX_FRAME_SIZE]
    cdef Py_ssize_t pos = 0, n, take, prefix = 4 if type == FRAME_PUSH_PROMISE else 0
    cdef uint8_t pp[5]
    if type == FRAME_HEADERS and c.next_head_priority is not None:
        take_head_priority(c, pp)
        prefix = 5
        flags |= FLAG_PRIORITY
    elif prefix:
        put_u32(pp, promised)
    c.scratch.len = 0
    if c.hdr_plain:
        c.encoder.encode_plain(&c.scratch, fields, True)
    else:
        c.encoder.encode_into(&c.scratch, fields, True)
    n = c.scratch.len
    take = min(n, max_frame - prefix)
    put_frame_header(&c.out, <uint32_t>(take + prefix), type,
                     flags | (FLAG_END_HEADERS if take == n else 0), sid)
    if prefix:
        buf_put(&c.out, pp, prefix)
    buf_put(&c.out, c.scratch.data, take)
    pos = take
    while pos < n:
        take = min(n - pos, max_frame)
        put_frame_header(&c.out, <uint32_t> take, FRAME_CONTINUATION,
                         FLAG_END_HEADERS if pos + take == n else 0, sid)
        buf_put(&c.out, c.scratch.data + pos, take)
        pos += take
    if c.ev_frame_send is not None:
        if prefix:
            payload = PyBytes_FromStringAndSize(<char*> pp, prefix) + \
                PyBytes_FromStringAndSize(<char*> c.scratch.data, n)
        else:
            payload = PyBytes_FromStringAndSize(<char*> c.scratch.data, n)
        c.ev_frame_send(c, Frame(type, flags | FLAG_END_HEADERS, sid, payload))
    c.scratch.len = 0
    buf_trim(&c.scratch, TRIM_ABOVE)
    return 0


# ----------------------------------------------------------------------------------------
# Errors

cdef int conn_error(Connection c, int code, object cls, str message) except -1:
    """A connection error (RFC 9113 5.4.1): GOAWAY, then the connection is dead."""
    if c.state == ST_CLOSED and c.error_class is not None:
        return CONN_ERROR
    if c.pend_s is not None:
        # Body bytes that came before the offending frame are delivered first, and the
        # error stands even if their handler raises.
        try:
            deliver_gathered(c)
        finally:
            conn_error(c, code, cls, message)
        return CONN_ERROR
    c.error_class = cls
    c.error_message = message
    c.error_code = code
    if c.h2 and not c.is_closed:
        write_goaway(c, code)
    c.state = ST_CLOSED
    c.is_closed = True
    return CONN_ERROR


cdef int stream_error(Connection c, uint32_t sid, int code, str why=None,
                      bint only_stream=False) except -1:
    """A stream error the peer caused (RFC 9113 5.4.2): RST_STREAM, and the stream ends.

    Each one spends the stream-error budget, earned back by completed exchanges: frames
    that make us reset streams are a flood of their own (MadeYouReset, CVE-2025-8671),
    apart from the peer's own RST_STREAMs (reset_budget). While our output goes unread,
    the RST_STREAM is also a reply that piles up (control_frame_budget)."""
    if c.pend_s is not None:
        deliver_gathered(c)
    if c.strict_errors and not only_stream and not (
            code == STREAM_CLOSED and (find_stream(c, sid) is not None or sid in c.recently_reset
                                       or (c.peer_resets is not None and sid in c.peer_resets))):
        # (a frame on a half-closed (remote) stream, or on one either side reset, stays a
        # stream error: RFC 9113 5.1)
        if code == REFUSED_STREAM or code == CANCEL:   # (not errors of their own)
            return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                              why or "stream %d: refused" % sid)
        return conn_error(c, code, error_class_for(code), why or
                          "stream %d: the peer broke a stream rule (error %d)" % (sid, code))
    if spend(&c.errors):
        return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                          "too many streams reset for the peer's errors (stream_error_budget)")
    if spend_control_budget(c):
        return CONN_ERROR
    return reset_stream(c, sid, code)


cdef enum:
    HEAD_REQUEST = 0
    HEAD_RESPONSE = 1
    HEAD_TRAILERS = 2


cdef str why_malformed(Connection c, list headers, int kind):
    """What made a received head (HEAD_REQUEST, HEAD_RESPONSE) or trailer section
    malformed: the reason malformed() puts in its error's message. Found again here, on
    this rare path, so that the checks themselves (parse_request_checked, ...) only say
    MALFORMED; with validate_inbound_headers off only what is still required is looked
    at."""
    cdef object item, name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn
    cdef int64_t v, length = -1
    cdef bint regular_seen = False
    cdef set seen = set()
    cdef bint strict = c.validate_inbound_headers
    cdef object authority = None, scheme = None
    for item in headers:
        name = (<tuple> item)[0]
        value = (<tuple> item)[1]
        np = field_ptr(name, &nn)
        vp = field_ptr(value, &vn)
        if nn and np[0] == 0x3A:
            if not strict:
                continue
            if kind == HEAD_TRAILERS:
                return "pseudo-header in trailers (%r)" % (name,)
            if regular_seen:
                return "pseudo-header field %r after a regular field" % (name,)
            if name in seen:
                return "pseudo-header field %r repeated" % (name,)
            seen.add(name)
            if not value_valid(vp, vn):
                return "invalid value for %r" % (name,)
            if bytes_equal(np, nn, ":authority", 10):
                authority = value
            elif bytes_equal(np, nn, ":scheme", 7):
                scheme = value
            continue
        regular_seen = True
        if kind != HEAD_TRAILERS and bytes_equal(np, nn, "content-length", 14):
            # (first: a value that is not a number may also fail the value check)
            v = parse_digits(vp, vn)
            if v < 0:
                return "content-length %r is not a number" % (value,)
            if length >= 0 and v != length:
                return "conflicting content-length values %d and %d" % (length, v)
            length = v
            continue
        if strict:
            if nn == 0:
                return "empty field name"
            if not name_valid(np, nn):
                return "invalid field name %r" % (name,)
            if not value_valid(vp, vn):
                return "invalid value for field %r" % (name,)
            if connection_specific(np, nn):
                return "connection-specific field %r" % (name,)
            if bytes_equal(np, nn, "te", 2) and not bytes_equal(vp, vn, "trailers", 8):
                return "te other than trailers"
            if kind == HEAD_REQUEST and authority is not None and \
                    bytes_equal(np, nn, "host", 4) and not same_authority(authority, vp, vn, scheme):
                return "host %r differs from :authority %r (RFC 9113 8.3.1)" % (value, authority)
    if kind == HEAD_RESPONSE:
        return "missing, repeated or invalid :status"
    if kind == HEAD_REQUEST:
        return "pseudo-header fields missing, unknown or not allowed here (RFC 9113 8.3)"
    return "malformed trailers"


cdef object error_class_for(int code):
    """The cno.errors class of a connection error with this code."""
    if code == FLOW_CONTROL_ERROR:
        return FlowControlError
    if code == FRAME_SIZE_ERROR:
        return FrameSizeError
    if code == ENHANCE_YOUR_CALM:
        return EnhanceYourCalm
    return ProtocolError


cdef inline bint explains(Connection c) noexcept:
    """Whether the reason of a stream error reaches anyone: only when it becomes a
    connection error (strict_errors, malformed_is_connection_error), whose exception
    carries it; a RST_STREAM carries none, so by default no reason is built."""
    return c.strict_errors or c.malformed_is_connection_error


cdef int malformed(Connection c, uint32_t sid, str why=None, list headers=None,
                   int kind=HEAD_REQUEST) except -1:
    """The peer sent a malformed message on stream sid (RFC 9113 8.1.1): a stream error
    of type PROTOCOL_ERROR, or, with malformed_is_connection_error, a connection error
    (5.4.1: "An endpoint can end a connection at any time", and may treat a stream error
    as a connection error). The reason is `why`, or found in `headers` (a head of this
    kind) by why_malformed, and only when explains(c)."""
    if not explains(c):
        return stream_error(c, sid, PROTOCOL_ERROR)
    if headers is not None:
        why = why_malformed(c, headers, kind)
    cdef str message = "malformed message on stream %d (RFC 9113 8.1.1)%s" % (
        sid, ": " + why if why else "")
    if c.malformed_is_connection_error:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, message)
    return stream_error(c, sid, PROTOCOL_ERROR, message)


cdef int reset_stream(Connection c, uint32_t sid, int code) except -1:
    """RST_STREAM, and the stream ends here."""
    cdef Stream s = find_stream(c, sid)
    write_rst(c, sid, code)
    if s is not None or not c.reset_late_frames:
        # (reset_late_frames: only a stream that was open counts as reset, as h2 counts
        # it: a HEADERS on one closed without ever opening stays a connection error)
        remember_reset(c, sid)
    if s is not None:
        end_stream(c, s, code, LOCAL)
    return 0


cdef object closed_error(Connection c):
    if c.error_class is not None:
        return ConnectionClosed("connection closed after an error: %s" % c.error_message)
    if c.lost:
        return ConnectionClosed("the transport is gone (connection_lost)")
    return ConnectionClosed("connection is closed")


# ----------------------------------------------------------------------------------------
# Flow control (RFC 9113 6.9)

cdef int credit(Connection c, Stream s, int64_t n) except -1:
    """Give n consumed bytes back to the peer: batched, a WINDOW_UPDATE once half a window
    is owed (so never one per DATA frame)."""
    if n <= 0:
        return 0
    c.recv_credit += n
    # (>= half, rounded down: an odd window such as the default 65535 would otherwise
    # keep its last half-window byte short, and the sender waits a round trip for it)
    if c.recv_credit >= c.recv_target // 2:
        write_window_update(c, 0, <uint32_t> c.recv_credit)
        c.recv_window += c.recv_credit
        c.recv_credit = 0
    if s is not None and s.r_state != R_CLOSED:
        s.recv_credit += n
        flush_stream_credit(c, s)
    return 0


cdef inline int flush_stream_credit(Connection c, Stream s) except -1:
    if s.recv_credit and s.recv_credit >= c.local[S_INITIAL_WINDOW_SIZE] // 2:
        write_window_update(c, s.id, <uint32_t> s.recv_credit)
        s.recv_window += s.recv_credit
        s.recv_credit = 0
    return 0


cdef inline int credit_connection(Connection c, int64_t n) except -1:
    return credit(c, None, n)


# ----------------------------------------------------------------------------------------
# Reading frames

cdef int consume(Connection c, const uint8_t* p, Py_ssize_t n, Py_ssize_t* consumed) except -1:
    """Parse as much of p[:n] as possible; consumed[0] is advanced past each frame
    before the frame is handled, so an exception from a callback loses nothing."""
    cdef Py_ssize_t pos = 0, avail, take
    cdef uint32_t length, sid
    cdef uint8_t type, flags
    cdef int r
    while c.state != ST_CLOSED:
        if not c.h2:
            r = consume_h1(c, p, n, consumed)
            if r != SWITCHED:
                return r
            pos = consumed[0]
            continue
        if c.state == ST_PREFACE:
            take = min(n - pos, 24 - <Py_ssize_t> c.data_left)
            if memcmp(p + pos, PyBytes_AS_STRING(PREFACE) + c.data_left, take) != 0:
                return conn_error(c, PROTOCOL_ERROR, ProtocolError, "invalid client preface")
            c.data_left += take
            pos += take
            consumed[0] = pos
            if c.data_left < 24:
                return 0
            c.data_left = 0
            c.state = ST_SETTINGS
            continue
        if c.state == ST_DATA:
            if pos == n and c.data_left > 0:
                return 0   # (a frame with nothing left to read still has to finish)
            r = read_data_payload(c, p, n, &pos)
            consumed[0] = pos
            if r:
                return r
            continue
        if n - pos < 9:
            return 0
        length = (<uint32_t> p[pos] << 16) | (<uint32_t> p[pos + 1] << 8) | p[pos + 2]
        type = p[pos + 3]
        flags = p[pos + 4]
        sid = read_u32(p + pos + 5) & MAX_STREAM_ID
        if c.pend_s is not None and (type != FRAME_DATA or sid != c.pend_s.id):
            deliver_gathered(c)   # (before this frame is acted on)
        if c.state == ST_GOAWAYS and type != FRAME_GOAWAY:
            c.state = ST_CLOSED   # (once closed, only more GOAWAY frames are read)
            return 0
        if length > c.local[S_MAX_FRAME_SIZE]:
            if c.lenient_frame_size and n - pos <= 9 + <Py_ssize_t> c.local[S_MAX_FRAME_SIZE]:
                return 0   # (not an error until more than a frame's worth is here)
            return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError,
                              "frame of %d bytes exceeds SETTINGS_MAX_FRAME_SIZE" % length)
        if c.state == ST_SETTINGS and (type != FRAME_SETTINGS or flags & FLAG_ACK) \
                and not c.lenient_start:
            return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                              "the first frame must be SETTINGS (RFC 9113 3.4)")
        if c.cont_stream and type != FRAME_CONTINUATION:
            return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                              "invalid frame sequence: expected CONTINUATION, got frame type %d" % type)
        if type == FRAME_DATA and c.ev_frame is None and not c.frame_data and c.state == ST_FRAME:
            # DATA is delivered as it arrives: only its header (and pad length) must be here.
            take = 1 if flags & FLAG_PADDED and length else 0
            if n - pos < 9 + take:
                return 0
            pos += 9 + take
            consumed[0] = pos
            r = start_data(c, sid, flags, length, p[pos - 1] if take else 0)
            if r:
                return r
            continue
        if n - pos < 9 + <Py_ssize_t> length:
            return 0
        pos += 9 + length
        consumed[0] = pos
        if c.state == ST_SETTINGS:
            c.state = ST_FRAME
        r = handle_frame(c, type, flags, sid, p + pos - length, length)
        if r:
            return r
    return 0


cdef int handle_frame(Connection c, uint8_t type, uint8_t flags, uint32_t sid,
                      const uint8_t* p, uint32_t n) except -1:
    cdef Py_ssize_t pos = 0
    cdef int r
    if c.ev_frame is not None and type != FRAME_CONTINUATION and not (
            (type == FRAME_HEADERS or type == FRAME_PUSH_PROMISE) and not flags & FLAG_END_HEADERS) \
            and not (c.control_frames_only and (type == FRAME_DATA or type == FRAME_PUSH_PROMISE or (
                type == FRAME_HEADERS and not flags & FLAG_PRIORITY))):
        # (a header block continued in CONTINUATIONs is reported once, merged)
        c.ev_frame(c, Frame(type, flags, sid, PyBytes_FromStringAndSize(<char*> p, n)))
    if type == FRAME_DATA:
        # Here only when on_frame wants whole frames (or it is the first frame, which
        # then fails): the payload is all here.
        if flags & FLAG_PADDED and n:
            pos = 1
        c.data_frame_length = n
        r = start_data(c, sid, flags, n, p[0] if pos else 0)
        if r or c.state != ST_DATA:
            return r
        if c.frame_data and c.data_deliver and c.data_left == c.data_pad \
                and c.ev_message_data is not None:
            c.ev_message_data(c, c.data_s.key, b"")   # (an empty frame is an event too)
        return read_data_payload(c, p, n, &pos)
    if type == FRAME_HEADERS:
        return on_headers_frame(c, flags, sid, p, n)
    if type == FRAME_PRIORITY:
        return on_priority_frame(c, sid, p, n)
    if type == FRAME_RST_STREAM:
        return on_rst_frame(c, sid, p, n)
    if type == FRAME_SETTINGS:
        return on_settings_frame(c, flags, sid, p, n)
    if type == FRAME_PUSH_PROMISE:
        return on_push_promise_frame(c, flags, sid, p, n)
    if type == FRAME_PING:
        return on_ping_frame(c, flags, sid, p, n)
    if type == FRAME_GOAWAY:
        return on_goaway_frame(c, sid, p, n)
    if type == FRAME_WINDOW_UPDATE:
        return on_window_update_frame(c, sid, p, n)
    if type == FRAME_CONTINUATION:
        return on_continuation_frame(c, flags, sid, p, n)
    if type == FRAME_PRIORITY_UPDATE and c.priority_update_frames:
        return on_priority_update_frame(c, sid, p, n)
    return 0   # RFC 9113 4.1: unknown frame types are ignored


cdef inline int spend_empty_budget(Connection c, bint empty) except -1:
    if empty:
        if spend(&c.empties):
            return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                              "too many empty frames (empty_frame_budget)")
    else:
        earn(&c.empties)
    return 0


cdef inline bint spend(Budget* b) noexcept:
    """One suspicious event; True once the budget is exhausted."""
    b.left -= 1
    b.spent += 1
    return b.left < 0


cdef inline void earn(Budget* b) noexcept:
    if b.left < b.limit:
        b.left += 1


cdef int set_budget(Budget* b, int64_t value, str name) except -1:
    """A new limit; what was spent stays spent."""
    if value < 0:
        raise ValueError("%s must not be negative" % name)
    b.left += value - b.limit
    b.limit = value
    return 0


cdef int start_data(Connection c, uint32_t sid, uint8_t flags, uint32_t length,
                    uint32_t pad) except -1:
    """A DATA frame's header (RFC 9113 6.1); the caller has taken the pad length byte (if
    PADDED) and passes the padding length. The payload follows in ST_DATA."""
    cdef Stream s
    cdef int64_t body
    if sid == 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "DATA on stream 0")
    if flags & FLAG_PADDED and pad + 1 > length:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "DATA padding exceeds the frame")
    if spend_empty_budget(c, length == 0 and not flags & FLAG_END_STREAM):
        return CONN_ERROR
    # The connection window counts every DATA byte, padding and dead streams included.
    if length > c.recv_window:
        return conn_error(c, FLOW_CONTROL_ERROR, FlowControlError,
                          "DATA exceeds the connection flow-control window")
    c.recv_window -= length
    body = length - pad - (1 if flags & FLAG_PADDED else 0)
    c.data_stream = sid
    c.data_flags = flags
    c.data_left = body + pad
    c.data_pad = pad
    c.data_deliver = False
    c.state = ST_DATA
    s = find_stream(c, sid)
    if s is None:
        if is_idle(c, sid):
            return conn_error(c, PROTOCOL_ERROR, ProtocolError, "DATA on idle stream %d" % sid)
        credit_connection(c, length)
        if (c.reset_late_frames or sid not in c.recently_reset) and not ignored_after_goaway(c, sid):
            # 5.1: a frame on a closed stream (one we reset: ignored, unless reset_late_frames);
            # a stream error even with strict_errors (5.1 lets it be the connection's, and
            # HEADERS there is: DATA is answered, and its bytes credited, as h2 does)
            return stream_error(c, sid, STREAM_CLOSED, "stream %d: DATA on a closed stream" % sid
                                if explains(c) else None, True)
        return 0
    if s.r_state != R_DATA:
        credit_connection(c, length)
        # Before the head (8.1: malformed), or after END_STREAM (5.1: half-closed remote).
        if s.r_state == R_HEADERS:
            return malformed(c, sid, "cannot receive data before headers")
        return stream_error(c, sid, STREAM_CLOSED, "stream %d: DATA after END_STREAM" % sid
                            if explains(c) else None)
    if length > s.recv_window:
        credit_connection(c, length)
        return stream_error(c, sid, FLOW_CONTROL_ERROR)
    s.recv_window -= length
    c.data_deliver = True
    c.data_s = s
    # Padding (and its length byte) is credited at once: nobody consumes it.
    if not c.flow_exact:
        credit(c, s, length - body)
    return 0


cdef int stop_delivery(Connection c) except -1:
    """The rest of this DATA frame's body goes nowhere: credit it to the connection now."""
    c.data_deliver = False
    c.data_s = None
    return credit_connection(c, c.data_left - c.data_pad)


cdef int read_data_payload(Connection c, const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos) except -1:
    """Deliver (or skip) what is here of the current DATA frame's payload."""
    cdef Py_ssize_t take = min(n - pos[0], c.data_left - c.data_pad)
    cdef Stream s = c.data_s
    if take > 0:
        if c.data_deliver:
            if s.r_state != R_DATA:
                stop_delivery(c)   # reset or ended by an event handler meanwhile
            elif s.remaining >= 0 and take > s.remaining:
                # 8.1.1: more DATA than content-length announced: malformed.
                stop_delivery(c)
                if malformed(c, s.id, "content-length %d, received %d"
                             % (s.declared, s.declared - s.remaining + take)
                             if explains(c) else None):
                    return CONN_ERROR
            else:
                if s.remaining >= 0:
                    s.remaining -= take
                pos[0] += take
                c.data_left -= take
                if c.ev_message_data is not None:
                    if take <= GATHER_PIECE and not c.data_views and c.ev_frame is None \
                            and not c.frame_data:
                        if c.pend_s is not s:
                            if c.pend_s is not None:
                                deliver_gathered(c)
                            c.pend_s = s
                        buf_put(&c.pend, p + pos[0] - take, take)
                        if c.pend.len >= GATHER_MAX:
                            deliver_gathered(c)
                    else:
                        if c.pend_s is not None:
                            deliver_gathered(c)
                        if c.data_views:
                            c.ev_message_data(c, s.key, body_view(c, p + pos[0] - take, take))
                        else:
                            c.ev_message_data(c, s.key, PyBytes_FromStringAndSize(
                                <char*> p + pos[0] - take, take))
                if not c.manual_flow:
                    # No stream credit for the frame that ends the stream: it is done.
                    credit(c, None if c.data_flags & FLAG_END_STREAM else s, take)
                take = 0
        pos[0] += take
        c.data_left -= take
    if c.data_left <= c.data_pad:
        take = min(n - pos[0], c.data_left)
        pos[0] += take
        c.data_left -= take
    if c.data_left > 0:
        return 0
    c.state = ST_FRAME
    if c.data_deliver:
        c.data_deliver = False
        c.data_s = None
        if c.data_flags & FLAG_END_STREAM and s.r_state == R_DATA:
            return end_of_message(c, s, None)
    return 0


cdef int deliver_gathered(Connection c) except -1:
    """Hand on_message_data the small payloads gathered for c.pend_s (see GATHER_PIECE).
    Called before anything else is reported and before the feed ends, so events keep
    their order (the buffer is emptied first: a handler that raises gets nothing twice)."""
    cdef Stream s = c.pend_s
    data = PyBytes_FromStringAndSize(<char*> c.pend.data, c.pend.len)
    c.pend_s = None
    c.pend.len = 0
    buf_trim(&c.pend, TRIM_ABOVE)
    c.ev_message_data(c, s.key, data)
    return 0


cdef object body_view(Connection c, const uint8_t* p, Py_ssize_t n):
    """What on_message_data gets for n body bytes at p with data_views: a read-only
    memoryview of data_received's argument where they lie in it (no copy; it holds that
    object, so it is safe to keep, but documented valid only during the callback: a
    reused read buffer changes under it), else of a copy (the bytes were buffered)."""
    cdef Py_ssize_t off
    if c.in_obj is not None and p >= c.in_base and p + n <= c.in_base + c.in_len:
        if c.in_view is None:
            c.in_view = byte_view(c.in_obj).toreadonly()
        off = p - c.in_base
        return c.in_view[off:off + n]
    return PyMemoryView_FromObject(PyBytes_FromStringAndSize(<const char*> p, n))


cdef int end_of_message(Connection c, Stream s, object trailers) except -1:
    """END_STREAM arrived: check content-length, fire on_message_tail."""
    if c.pend_s is not None:
        deliver_gathered(c)
    if s.remaining > 0:   # 8.1.1: less DATA than content-length
        return malformed(c, s.id, "content-length %d, received %d"
                         % (s.declared, s.declared - s.remaining) if explains(c) else None)
    s.r_state = R_CLOSED
    if c.ev_message_tail is not None:
        c.ev_message_tail(c, s.key, trailers)
    return maybe_end(c, s)


cdef inline bint is_idle(Connection c, uint32_t sid) noexcept:
    """Whether no stream with this id was ever opened (RFC 9113 5.1)."""
    cdef bint ours = (sid & 1) == (1 if c.client else 0)
    return sid > c.last_stream[LOCAL if ours else REMOTE]


cdef int on_headers_frame(Connection c, uint8_t flags, uint32_t sid, const uint8_t* p,
                          uint32_t n) except -1:
    """RFC 9113 6.2."""
    cdef uint32_t pad = 0, start = 0, dep = 0
    if sid == 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "HEADERS on stream 0")
    if flags & FLAG_PADDED:
        if n < 1:
            return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "padded HEADERS too short")
        pad = p[0]
        start = 1
    if flags & FLAG_PRIORITY:
        if n < start + 5:
            return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "HEADERS priority too short")
        dep = read_u32(p + start) & MAX_STREAM_ID
        start += 5
    # A self-dependent stream is refused once its block is decoded (HPACK stays in step).
    return begin_header_block(c, FRAME_HEADERS, flags, sid, 0, p, n, start, pad,
                              flags & FLAG_PRIORITY and dep == sid)


cdef int begin_header_block(Connection c, uint8_t type, uint8_t flags, uint32_t sid,
                            uint32_t promised, const uint8_t* p, uint32_t n, uint32_t start,
                            uint32_t pad, bint self_dependent) except -1:
    if start + pad > n:   # (RFC 9113 6.2, 6.6: padding longer than what remains)
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "padding exceeds the frame")
    c.hblock.len = 0
    buf_put(&c.hblock, p + start, n - start - pad)
    if spend_empty_budget(c, n - start - pad == 0 and not flags & FLAG_END_STREAM):
        return CONN_ERROR
    c.cont_type = type
    c.cont_flags = flags & (FLAG_END_STREAM | FLAG_END_HEADERS | FLAG_PADDED | FLAG_PRIORITY)
    c.cont_promised = promised
    c.cont_count = 0
    c.cont_self_dependent = self_dependent
    if flags & FLAG_END_HEADERS:
        return end_header_block(c, sid)
    c.cont_stream = sid
    return 0


cdef int on_continuation_frame(Connection c, uint8_t flags, uint32_t sid, const uint8_t* p,
                               uint32_t n) except -1:
    """RFC 9113 6.10."""
    if c.cont_stream == 0 or sid != c.cont_stream:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "unexpected CONTINUATION")
    c.cont_count += 1
    if c.cont_count > c.max_continuations:
        return conn_error(c, c.continuation_flood_code, error_class_for(c.continuation_flood_code),
                          "too many CONTINUATION frames (max_continuations)")
    if c.hblock.len + n > c.max_header_block_size:
        return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                          "header block too large (max_header_block_size)")
    if spend_empty_budget(c, n == 0 and not flags & FLAG_END_HEADERS):
        return CONN_ERROR
    buf_put(&c.hblock, p, n)
    if flags & FLAG_END_HEADERS:
        c.cont_stream = 0
        return end_header_block(c, sid)
    return 0


cdef int end_header_block(Connection c, uint32_t sid) except -1:
    """A whole header block is here: decode it (always, to keep HPACK in step), then act."""
    cdef list headers = list_with_room(16)   # (room for a usual header block)
    cdef int status
    cdef bint oversized = False
    if c.hblock.len > c.max_header_block_size:
        return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                          "header block too large (max_header_block_size)")
    if c.ev_frame is not None and c.cont_count:
        c.ev_frame(c, Frame(c.cont_type, c.cont_flags | FLAG_END_HEADERS, sid,
                            PyBytes_FromStringAndSize(<char*> c.hblock.data, c.hblock.len)))
    c.decoder.count_limit = c.max_header_count   # (a public attribute: read it per block)
    status = c.decoder.decode_into(c.hblock.data, c.hblock.len, headers, c.bytes_headers)
    c.hblock.len = 0
    buf_trim(&c.hblock, TRIM_ABOVE)
    if status == HPACK_ERR_LIST_SIZE:
        if c.strict_errors:
            return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                              "header list over max_header_list_size")
        oversized = True
    elif status != HPACK_OK:
        try:
            c.decoder.raise_error(status)
        except HPACKDecodingError as e:
            # RFC 9113 4.3: COMPRESSION_ERROR, unless a face asks for another code
            return conn_error(c, c.compression_error_code, type(e), str(e))
    if c.cont_type == FRAME_PUSH_PROMISE:
        return on_push_promise_block(c, sid, c.cont_promised, headers, oversized)
    return on_header_block(c, sid, c.cont_flags, headers, oversized)


cdef int on_header_block(Connection c, uint32_t sid, uint8_t flags, list headers,
                         bint oversized) except -1:
    cdef Stream s = find_stream(c, sid)
    cdef bint end = flags & FLAG_END_STREAM
    if s is None:
        if is_idle(c, sid):
            if c.client or not (sid & 1):
                # 5.1.1: a server opens streams only with PUSH_PROMISE; a client, odd ids.
                return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                                  "HEADERS opening stream %d is not allowed" % sid)
            return on_new_request(c, sid, flags, headers, oversized)
        if ignored_after_goaway(c, sid):
            return 0   # past our GOAWAY
        if sid in c.recently_reset:
            # Late frames on a stream we reset (5.1: ignored), unless a face wants each
            # answered (the HPACK state was kept in step all the same).
            if c.reset_late_frames:
                return stream_error(c, sid, STREAM_CLOSED, "HEADERS on stream %d, reset" % sid
                                    if explains(c) else None)
            return 0
        if never_opened(c, sid):
            return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                              "stream %d opened below a higher id (RFC 9113 5.1.1)" % sid)
        # 5.1: after END_STREAM both ways, no more HEADERS may come.
        if c.peer_resets is not None and sid in c.peer_resets:   # (strict_errors: see on_rst_frame)
            return stream_error(c, sid, STREAM_CLOSED, "HEADERS on stream %d, reset by the peer"
                                % sid if explains(c) else None)
        return conn_error(c, STREAM_CLOSED, ProtocolError, "HEADERS on closed stream %d" % sid)
    if c.cont_self_dependent:   # 5.3.1 of RFC 7540, kept by 9113
        return stream_error(c, sid, PROTOCOL_ERROR)
    if oversized:
        return stream_error(c, sid, CANCEL if c.client else REFUSED_STREAM)
    if s.r_state == R_HEADERS:
        return on_response_head(c, s, end, headers)
    if s.r_state == R_DATA:
        # 8.1: trailers, which must end the stream and hold no pseudo-headers.
        if not end:
            return malformed(c, sid, "trailers without END_STREAM")
        if c.validate_inbound_headers and not validate_trailers(c, headers):
            return malformed(c, sid, None, headers, HEAD_TRAILERS)
        return end_of_message(c, s, headers)
    return stream_error(c, sid, STREAM_CLOSED)   # 5.1: half-closed (remote)


cdef inline uint32_t stream_limit(Connection c) noexcept:
    """How many streams the peer may have open (over it: REFUSED_STREAM, 5.1.2). A new
    value binds the peer once acknowledged (6.5.3). Until a limit was first acknowledged
    the peer knows none (RFC 9113's initial value is unlimited), yet ours holds from the
    first frame: refusing a stream is always allowed (REFUSED_STREAM says it was not
    processed, 8.7), and a peer that never acknowledges is bounded like any other
    (nghttp2 does the same)."""
    if c.local[S_MAX_CONCURRENT_STREAMS] == NO_LIMIT:
        return c.wanted[S_MAX_CONCURRENT_STREAMS]
    return c.local[S_MAX_CONCURRENT_STREAMS]


cdef int on_new_request(Connection c, uint32_t sid, uint8_t flags, list headers,
                        bint oversized) except -1:
    cdef Stream s
    cdef int r
    cdef object method, path
    cdef int64_t length
    if c.goaway_sent:
        note_peer_stream(c, sid)
        return 0   # 6.8: new streams after our GOAWAY are ignored
    if c.stream_count[REMOTE] >= stream_limit(c):
        r = stream_error(c, sid, REFUSED_STREAM,   # 5.1.2 (before its id counts: see refuse_push)
                         "stream %d: over max_concurrent_streams" % sid if explains(c) else None)
        note_peer_stream(c, sid)
        return r
    if oversized or c.cont_self_dependent:
        note_peer_stream(c, sid)
        return stream_error(c, sid, REFUSED_STREAM if oversized else PROTOCOL_ERROR)
    s = new_stream(c, sid, False)
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, s.key)
    length = parse_request(c, headers)
    if length == MALFORMED:
        return malformed(c, sid, None, headers, HEAD_REQUEST)
    method = c.req_method
    path = c.req_path
    c.req_method = c.req_path = None
    if c.hdr_prio or c.prio_idle:
        take_request_priority(c, s)
    s.remaining = s.declared = length
    if length > 0 and flags & FLAG_END_STREAM:
        # 8.1.1: content-length promises DATA that cannot come
        return malformed(c, sid, "content-length %d but END_STREAM" % length
                         if explains(c) else None)
    s.head_request = bytes_equal_obj(method, "HEAD", 4)
    s.r_state = R_DATA
    if c.ev_message_head is not None:
        c.ev_message_head(c, s.key, 0, method, path, headers)
    if flags & FLAG_END_STREAM and s.r_state == R_DATA:   # (not ended by the handler)
        return end_of_message(c, s, None)
    return 0


cdef inline bint bytes_equal_obj(object o, const char* lit, Py_ssize_t m) noexcept:
    cdef Py_ssize_t n
    cdef const uint8_t* p = field_ptr(o, &n)
    return bytes_equal(p, n, lit, m)


cdef inline int64_t regular_field(Connection c, object item, Py_ssize_t slot,
                                  const uint8_t* np, Py_ssize_t nn, const uint8_t* vp,
                                  Py_ssize_t vn, int64_t length) noexcept:
    """A regular field of a request or a response not seen before (8.2, 8.2.2, 8.1.1):
    the content-length so far (-1: none) updated, or MALFORMED. A valid field the engine
    does not read is remembered (is_checked); te, content-length and priority never."""
    cdef int64_t v
    if not name_valid(np, nn) or not value_valid(vp, vn) or connection_specific(np, nn):
        return MALFORMED
    if bytes_equal(np, nn, "te", 2):
        if not bytes_equal(vp, vn, "trailers", 8):
            return MALFORMED
    elif bytes_equal(np, nn, "content-length", 14):
        v = parse_digits(vp, vn)
        if v < 0 or (length >= 0 and v != length):
            return MALFORMED
        return v
    elif nn == 8 and memcmp(np, b"priority", 8) == 0:
        c.hdr_prio = scan_priority(c.hdr_prio, vp, vn)   # (read every time)
    elif bytes_equal(np, nn, "host", 4):
        pass   # (read every time: a request's is compared with its :authority)
    elif nn + vn <= CHECKED_MAX_LEN:
        remember_checked(c, item, slot)
    return length


cdef inline int64_t parse_request(Connection c, list headers) except -3:
    """A request's head: parse_request_checked, or parse_request_unchecked with
    validate_inbound_headers off."""
    if c.validate_inbound_headers:
        return parse_request_checked(c, headers)
    return parse_request_unchecked(c, headers)


cdef int64_t parse_request_checked(Connection c, list headers) except -3:
    """Validate a request's fields (8.2, 8.3.1, 8.5, RFC 8441); return its content-length
    (-1: none) with :method and :path in c.req_method and c.req_path and taken out of
    `headers`, or MALFORMED."""
    cdef object method = None, path = None, scheme = None, authority = None, protocol = None
    cdef object item, name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn, i, n = PyList_GET_SIZE(headers), method_at = -1, path_at = -1
    cdef Py_ssize_t slot
    cdef int kind
    cdef bint regular_seen = False
    cdef int64_t length = -1
    c.hdr_prio = 0
    for i in range(n):
        item = <object> PyList_GET_ITEM(headers, i)
        slot = identity_hash(item)
        if is_checked(c, item, slot):
            regular_seen = True   # checked before, as a regular field (not priority)
            continue
        kind = known_pseudo(c, item, slot)
        if kind == PSEUDO_NONE:
            name = (<tuple> item)[0]
            value = (<tuple> item)[1]
            np = field_ptr(name, &nn)
            vp = field_ptr(value, &vn)
            if nn and np[0] == 0x3A:
                if regular_seen:
                    return MALFORMED
                kind = pseudo_kind(np, nn)
                if not value_valid(vp, vn):
                    return MALFORMED
                if kind <= PSEUDO_PATH and nn + vn <= CHECKED_MAX_LEN:
                    remember_pseudo(c, item, slot, kind)
        else:
            if regular_seen:
                return MALFORMED
            value = (<tuple> item)[1]
        if kind != PSEUDO_NONE:
            if kind == PSEUDO_METHOD and method is None:
                method = value
                method_at = i
            elif kind == PSEUDO_PATH and path is None:
                path = value
                path_at = i
            elif kind == PSEUDO_SCHEME and scheme is None:
                scheme = value
            elif kind == PSEUDO_AUTHORITY and authority is None:
                authority = value
            elif kind == PSEUDO_PROTOCOL and protocol is None and (
                    c.wanted[S_ENABLE_CONNECT_PROTOCOL] or c.local[S_ENABLE_CONNECT_PROTOCOL]
                    or c.lenient_protocol):   # (RFC 8441 3: only once we sent the setting)
                protocol = value
            else:
                return MALFORMED   # unknown, duplicate, or not allowed in a request
            continue
        regular_seen = True
        length = regular_field(c, item, slot, np, nn, vp, vn, length)
        if length == MALFORMED:
            return MALFORMED
        if authority is not None and bytes_equal(np, nn, "host", 4) and \
                not same_authority(authority, vp, vn, scheme):
            # 8.3.1: "A server SHOULD treat a request as malformed if it contains a Host
            # header field that identifies an entity that differs from the entity in the
            # ':authority' pseudo-header field" (two hosts would let a proxy and an
            # application route one request differently).
            return MALFORMED
    if method is None:
        return MALFORMED
    if bytes_equal_obj(method, "CONNECT", 7) and protocol is None:
        # 8.5: CONNECT has :authority and neither :scheme nor :path.
        if authority is None or scheme is not None or path is not None:
            return MALFORMED
        path = b"" if c.bytes_headers else ""
    else:
        if protocol is not None and not bytes_equal_obj(method, "CONNECT", 7):
            return MALFORMED
        if scheme is None or path is None:
            return MALFORMED
        field_ptr(path, &vn)
        if vn == 0:
            return MALFORMED
    # The delivered list is the decoded one without :method and :path.
    if not c.pseudo_in_headers:
        drop_two(headers, method_at, path_at)
    c.req_method = method
    c.req_path = path
    return length


cdef bint same_authority(object authority, const uint8_t* hp, Py_ssize_t hn,
                         object scheme) noexcept:
    """Whether a Host value names the entity of :authority (RFC 9113 8.3.1, normalized
    as RFC 3986 6.2.3 says: host names case-insensitively, a port the scheme implies
    may be left out)."""
    cdef Py_ssize_t an, i
    cdef const uint8_t* ap = field_ptr(authority, &an)
    cdef const char* port = NULL
    if scheme is not None and bytes_equal_obj(scheme, "https", 5):
        port = ":443"
    elif scheme is not None and bytes_equal_obj(scheme, "http", 4):
        port = ":80"
    if port != NULL:   # (the longer one may carry the implied port)
        if an == hn + <Py_ssize_t> strlen(port) and memcmp(ap + hn, port, an - hn) == 0:
            an = hn
        elif hn == an + <Py_ssize_t> strlen(port) and memcmp(hp + an, port, hn - an) == 0:
            hn = an
    if an != hn:
        return False
    for i in range(an):
        if ap[i] != hp[i] and not (
                0x61 <= (ap[i] | 0x20) <= 0x7A and (ap[i] | 0x20) == (hp[i] | 0x20)):
            return False   # (differs, and not as an ASCII letter in the other case)
    return True


cdef void drop_two(list items, Py_ssize_t a, Py_ssize_t b) noexcept:
    """Remove the entries at a and b (b may be -1: none) in one pass over the list."""
    cdef PyObject** p = (<PyListObject*> items).ob_item
    cdef Py_ssize_t n = PyList_GET_SIZE(items), i, j = 0
    cdef PyObject* x = p[a]
    cdef PyObject* y = p[b] if b >= 0 else NULL
    for i in range(n):
        if i != a and i != b:
            p[j] = p[i]
            j += 1
    Py_SET_SIZE(items, j)
    Py_XDECREF(x)   # (last: a field's deallocation runs no code that sees the list)
    Py_XDECREF(y)


cdef inline object parse_response(Connection c, list headers):
    """A response's head: parse_response_checked, or parse_response_unchecked with
    validate_inbound_headers off."""
    if c.validate_inbound_headers:
        return parse_response_checked(c, headers)
    return parse_response_unchecked(c, headers)


cdef object parse_response_checked(Connection c, list headers):
    """Validate a response's fields (8.3.2); return (code, fields, content-length or -1),
    or None if malformed. `fields` is `headers` itself, with :status taken out."""
    cdef object status = None
    cdef object item, name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn, i, n = PyList_GET_SIZE(headers), slot
    cdef bint regular_seen = False
    cdef int64_t length = -1, code
    c.hdr_prio = 0
    for i in range(n):
        item = <object> PyList_GET_ITEM(headers, i)
        slot = identity_hash(item)
        if is_checked(c, item, slot):
            regular_seen = True   # checked before, as a regular field (not priority)
            continue
        name = (<tuple> item)[0]
        value = (<tuple> item)[1]
        np = field_ptr(name, &nn)
        vp = field_ptr(value, &vn)
        if nn and np[0] == 0x3A:
            # (a pseudo-header after a regular field, or a second one, is malformed:
            # so :status, if valid, is the first field)
            if regular_seen or status is not None or pseudo_kind(np, nn) != PSEUDO_STATUS:
                return None
            status = value
            continue
        regular_seen = True
        length = regular_field(c, item, slot, np, nn, vp, vn, length)
        if length == MALFORMED:
            return None
    if status is None:
        return None
    vp = field_ptr(status, &vn)
    code = parse_digits(vp, vn)
    if vn != 3 or code < 100 or (code == 101 and not c.status_101):
        return None   # (101 does not exist in HTTP/2: RFC 9113 8.6)
    if not c.pseudo_in_headers:
        drop_two(headers, 0, -1)
    return code, headers, length


cdef int64_t unchecked_field(Connection c, const uint8_t* np, Py_ssize_t nn,
                             const uint8_t* vp, Py_ssize_t vn, int64_t length) noexcept:
    """validate_inbound_headers off: what the engine reads of a regular field anyway:
    content-length (the body is counted against it: plain digits, and equal if repeated,
    else MALFORMED) and priority. The content-length so far (-1: none) is returned."""
    cdef int64_t v
    if bytes_equal(np, nn, "content-length", 14):
        v = parse_digits(vp, vn)
        if v < 0 or (length >= 0 and v != length):
            return MALFORMED
        return v
    if bytes_equal(np, nn, "priority", 8):
        c.hdr_prio = scan_priority(c.hdr_prio, vp, vn)
    return length


cdef int64_t parse_request_unchecked(Connection c, list headers) except -3:
    """parse_request_checked with validate_inbound_headers off: only what the engine
    needs. The first :method (required) and the first :path (else empty) are taken out
    (unless pseudo_in_headers), any other field stays where it is, whatever it holds;
    content-length and priority as unchecked_field reads them. Nothing is remembered as
    checked."""
    cdef object item, method = None, path = None
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn, i, n = PyList_GET_SIZE(headers), method_at = -1, path_at = -1
    cdef int kind
    cdef int64_t length = -1
    c.hdr_prio = 0
    for i in range(n):
        item = <object> PyList_GET_ITEM(headers, i)
        np = field_ptr((<tuple> item)[0], &nn)
        vp = field_ptr((<tuple> item)[1], &vn)
        if nn and np[0] == 0x3A:
            kind = pseudo_kind(np, nn)
            if kind == PSEUDO_METHOD and method is None:
                method = (<tuple> item)[1]
                method_at = i
            elif kind == PSEUDO_PATH and path is None:
                path = (<tuple> item)[1]
                path_at = i
            continue
        length = unchecked_field(c, np, nn, vp, vn, length)
        if length == MALFORMED:
            return MALFORMED
    if method is None:
        return MALFORMED
    if path is None:
        path = b"" if c.bytes_headers else ""
    if not c.pseudo_in_headers:
        drop_two(headers, method_at, path_at)
    c.req_method = method
    c.req_path = path
    return length


cdef object parse_response_unchecked(Connection c, list headers):
    """parse_response_checked with validate_inbound_headers off: the first :status,
    wherever it is, must be a three-digit code from 100 (the engine acts on it) and is
    taken out (unless pseudo_in_headers); any other field stays, whatever it holds
    (content-length and priority as unchecked_field reads them)."""
    cdef object item, status = None
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn, i, n = PyList_GET_SIZE(headers), status_at = -1
    cdef int64_t length = -1, code
    c.hdr_prio = 0
    for i in range(n):
        item = <object> PyList_GET_ITEM(headers, i)
        np = field_ptr((<tuple> item)[0], &nn)
        vp = field_ptr((<tuple> item)[1], &vn)
        if nn and np[0] == 0x3A:
            if status is None and pseudo_kind(np, nn) == PSEUDO_STATUS:
                status = (<tuple> item)[1]
                status_at = i
            continue
        length = unchecked_field(c, np, nn, vp, vn, length)
        if length == MALFORMED:
            return None
    if status is None:
        return None
    vp = field_ptr(status, &vn)
    code = parse_digits(vp, vn)
    if vn != 3 or code < 100:
        return None
    if not c.pseudo_in_headers:
        drop_two(headers, status_at, -1)
    return code, headers, length


cdef bint validate_trailers(Connection c, list headers):
    cdef object item
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn
    for item in headers:
        np = field_ptr((<tuple> item)[0], &nn)
        vp = field_ptr((<tuple> item)[1], &vn)
        if not name_valid(np, nn) or not value_valid(vp, vn) or connection_specific(np, nn):
            return False   # pseudo-headers fail name_valid (the colon)
    return True


cdef int on_response_head(Connection c, Stream s, bint end, list headers) except -1:
    cdef object out, empty
    cdef int64_t code, length
    cdef list fields
    if not c.client:
        # A server's existing stream is past its request head: this is R_DATA or later.
        return stream_error(c, s.id, PROTOCOL_ERROR)
    out = parse_response(c, headers)
    if out is None:
        return malformed(c, s.id, None, headers, HEAD_RESPONSE)
    code, fields, length = out
    if c.hdr_prio:
        apply_priority(s, c.hdr_prio)   # RFC 9218 8: the server's view, where it gives one
    if code < 200:
        if end:
            return malformed(c, s.id, "a 1xx response with END_STREAM (RFC 9113 8.1)")
    else:
        s.saw_final_head = True
        s.r_state = R_DATA
        # No content after HEAD, 204 or 304 (RFC 9110 6.4.1), whatever content-length says.
        s.remaining = 0 if (s.head_request or code == 204 or code == 304) else length
        s.declared = s.remaining
    empty = b"" if c.bytes_headers else ""
    if c.ev_message_head is not None:
        c.ev_message_head(c, s.key, code, empty, empty, fields)
    if code >= 200 and end and s.id in c.streams and s.r_state == R_DATA:
        return end_of_message(c, s, None)
    return 0


cdef int on_priority_frame(Connection c, uint32_t sid, const uint8_t* p, uint32_t n) except -1:
    """RFC 9113 6.3: validated, otherwise ignored (priorities are advisory)."""
    if sid == 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PRIORITY on stream 0")
    if n != 5:
        return stream_error(c, sid, FRAME_SIZE_ERROR)
    if (read_u32(p) & MAX_STREAM_ID) == sid:
        return stream_error(c, sid, PROTOCOL_ERROR)
    return 0


cdef int on_rst_frame(Connection c, uint32_t sid, const uint8_t* p, uint32_t n) except -1:
    """RFC 9113 6.4."""
    cdef Stream s
    if sid == 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "RST_STREAM on stream 0")
    if n != 4:
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "RST_STREAM length must be 4")
    s = find_stream(c, sid)
    if s is None:
        if is_idle(c, sid):
            return conn_error(c, PROTOCOL_ERROR, ProtocolError, "RST_STREAM on idle stream %d" % sid)
        return 0   # closed: ignored
    if not s.local and s.w_state != W_CLOSED:
        # Reset before we finished answering: the rapid-reset pattern if it repeats.
        if spend(&c.resets):
            return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                              "too many streams reset by the peer (reset_budget)")
    if c.strict_errors:
        # 5.1: later frames on it are a stream error (STREAM_CLOSED), kept so below
        if c.peer_resets is None:
            c.peer_resets = {}
        elif len(c.peer_resets) >= PEER_RESETS_KEPT:
            del c.peer_resets[next(iter(c.peer_resets))]
        c.peer_resets[sid] = True
    return end_stream(c, s, read_u32(p), REMOTE)


cdef int on_settings_frame(Connection c, uint8_t flags, uint32_t sid, const uint8_t* p,
                           uint32_t n) except -1:
    """RFC 9113 6.5."""
    cdef int r
    cdef bint window_grew
    if sid != 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "SETTINGS on a stream")
    if flags & FLAG_ACK:
        if n != 0:
            return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "SETTINGS ACK with payload")
        if c.settings_queue:
            return apply_local_settings(c, c.settings_queue.pop(0))
        return 0
    if n % 6:
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "SETTINGS length not a multiple of 6")
    if spend_control_budget(c):
        return CONN_ERROR
    window_grew = n and c.remote[S_INITIAL_WINDOW_SIZE] < initial_window_in(p, n)
    r = apply_remote_settings(c, p, n)
    if r:
        return r
    c.got_settings_frame = True
    write_simple_frame(c, FRAME_SETTINGS, FLAG_ACK, 0, NULL, 0)
    if c.ev_settings is not None:
        c.ev_settings(c)
    if window_grew:
        return flow_increased(c)
    return 0


cdef uint32_t initial_window_in(const uint8_t* p, uint32_t n) noexcept:
    """The last INITIAL_WINDOW_SIZE in a SETTINGS payload, or 0."""
    cdef uint32_t i, value = 0
    for i in range(0, n - n % 6, 6):
        if ((<uint32_t> p[i] << 8) | p[i + 1]) == S_INITIAL_WINDOW_SIZE:
            value = read_u32(p + i + 2)
    return value


cdef int apply_remote_settings(Connection c, const uint8_t* p, uint32_t n) except -1:
    """Validate and apply the peer's settings (a SETTINGS payload, or HTTP2-Settings)."""
    cdef uint32_t i, key, value
    cdef int64_t delta
    cdef Stream s
    for i in range(0, n, 6):
        key = (<uint32_t> p[i] << 8) | p[i + 1]
        value = read_u32(p + i + 2)
        if key == S_ENABLE_PUSH:
            if value > 1 or (c.client and value == 1):
                return conn_error(c, PROTOCOL_ERROR, ProtocolError, "invalid ENABLE_PUSH")
        elif key == S_INITIAL_WINDOW_SIZE:
            if value > MAX_WINDOW:
                return conn_error(c, FLOW_CONTROL_ERROR, FlowControlError,
                                  "INITIAL_WINDOW_SIZE above 2^31-1")
            delta = <int64_t> value - c.remote[S_INITIAL_WINDOW_SIZE]
            # 6.9.2: the change applies to every stream's send window (not the
            # connection's); a window may go negative, but not above 2^31-1.
            for s in c.streams.values():
                s.send_window += delta
                if s.send_window > MAX_WINDOW:
                    return conn_error(c, FLOW_CONTROL_ERROR, FlowControlError,
                                      "INITIAL_WINDOW_SIZE overflows a stream window")
        elif key == S_MAX_FRAME_SIZE:
            if value < 16384 or value > 16777215:
                return conn_error(c, PROTOCOL_ERROR, ProtocolError, "invalid MAX_FRAME_SIZE")
        elif key == S_ENABLE_CONNECT_PROTOCOL:
            if value > 1 or (value == 0 and c.remote[S_ENABLE_CONNECT_PROTOCOL] == 1):
                return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                                  "invalid ENABLE_CONNECT_PROTOCOL")   # RFC 8441 3
        elif key == S_NO_RFC7540_PRIORITIES:
            if no_rfc7540_invalid(c, value):
                return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                                  "invalid or changed NO_RFC7540_PRIORITIES (RFC 9218 2.1)")
        elif key == S_HEADER_TABLE_SIZE:
            c.encoder.header_table_size = value
        if 1 <= key < SETTINGS_COUNT:
            c.remote[key] = value
        # 6.5.2: unknown settings are ignored
    c.remote_settings_seen = True
    return 0


cdef int apply_local_settings(Connection c, dict changes) except -1:
    """The peer acknowledged our SETTINGS: now they are in force (6.5.3)."""
    cdef int64_t delta
    cdef Stream s
    for key, value in changes.items():
        if key == S_INITIAL_WINDOW_SIZE:
            delta = <int64_t> value - c.local[S_INITIAL_WINDOW_SIZE]
            c.local[key] = value
            for s in c.streams.values():
                s.recv_window += delta
                if s.r_state != R_CLOSED:
                    # Credit held back for batching must not outlive a smaller window:
                    # the peer may already be waiting for it (6.9.2).
                    flush_stream_credit(c, s)
        else:
            c.local[key] = value
            if key == S_HEADER_TABLE_SIZE:
                c.decoder.max_allowed_table_size = value
            elif key == S_MAX_HEADER_LIST_SIZE and c.strict_errors:
                # (the largest value the peer may still be acting on: this one, or one
                # sent after it and not acknowledged yet)
                for later in c.settings_queue:
                    value = max(value, (<dict> later).get(key, value))
                c.decoder.max_header_list_size = value
    return 0


cdef inline int spend_control_budget(Connection c) except -1:
    """A frame that makes us reply (PING, SETTINGS, a stream error): while the peer does
    not read (writing_paused), the replies pile up, so they are counted."""
    if c.writing_paused:
        if spend(&c.controls):
            return conn_error(c, ENHANCE_YOUR_CALM, EnhanceYourCalm,
                              "too many replies queued while the peer does not read "
                              "(control_frame_budget)")
    else:
        c.controls.left = c.controls.limit
    return 0


cdef int on_push_promise_frame(Connection c, uint8_t flags, uint32_t sid, const uint8_t* p,
                               uint32_t n) except -1:
    """RFC 9113 6.6."""
    cdef uint32_t pad = 0, start = 0
    if not c.client:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PUSH_PROMISE sent to a server")
    if sid == 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PUSH_PROMISE on stream 0")
    if not c.local[S_ENABLE_PUSH]:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PUSH_PROMISE with push disabled")
    if flags & FLAG_PADDED:
        if n < 1:
            return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "padded PUSH_PROMISE too short")
        pad = p[0]
        start = 1
    if n < start + 4:
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "PUSH_PROMISE too short")
    return begin_header_block(c, FRAME_PUSH_PROMISE, flags & ~FLAG_END_STREAM, sid,
                              read_u32(p + start) & MAX_STREAM_ID, p, n, start + 4, pad, False)


cdef int refuse_push(Connection c, uint32_t promised, int code, str why,
                     bint only_stream=False) except -1:
    """RST_STREAM for a promised stream we will not take; its id is used up after the
    reset (so a GOAWAY the error may cause names only streams we took)."""
    cdef int r = stream_error(c, promised, code, why, only_stream)
    note_peer_stream(c, promised)
    return r


cdef int on_push_promise_block(Connection c, uint32_t parent_id, uint32_t promised,
                               list headers, bint oversized) except -1:
    cdef Stream parent = find_stream(c, parent_id)
    cdef Stream s
    cdef object method, path
    cdef int64_t length
    if promised == 0 or promised & 1 or promised <= c.last_stream[REMOTE]:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "invalid promised stream id")
    if not parent_id & 1:
        # 6.6: a push is promised on a stream the client opened (odd); an even one is
        # the server's own or idle (5.1: PUSH_PROMISE there is a connection error).
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PUSH_PROMISE on a wrong stream")
    if parent is None or parent.r_state == R_CLOSED or not parent.local:
        if parent is None and not is_idle(c, parent_id):
            if c.strict_errors and parent_id in c.recently_reset:
                # (we reset the parent: its pushes may still be in flight, 5.1 "closed")
                return refuse_push(c, promised, REFUSED_STREAM, None, True)
            # the parent is gone: refuse the push
            return refuse_push(c, promised, CANCEL, "PUSH_PROMISE on closed stream %d" % parent_id)
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PUSH_PROMISE on a wrong stream")
    if oversized or c.goaway_sent or not c.wanted[S_ENABLE_PUSH]:
        # Too big, too late, or sent before the peer saw our ENABLE_PUSH=0: refuse it.
        return refuse_push(c, promised, CANCEL, "PUSH_PROMISE refused (too large, after "
                           "GOAWAY, or with push disabled)")
    if c.stream_count[REMOTE] >= stream_limit(c):
        return refuse_push(c, promised, REFUSED_STREAM,
                           "stream %d: over max_concurrent_streams" % promised
                           if explains(c) else None)
    length = parse_request(c, headers)
    if length == MALFORMED and c.malformed_is_connection_error:
        # (before its id counts: see refuse_push)
        return malformed(c, promised, None, headers, HEAD_REQUEST)
    note_peer_stream(c, promised)
    s = new_stream(c, promised, False)
    s.w_state = W_CLOSED      # reserved (remote): we only read its response
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, promised)
    if length == MALFORMED:
        return malformed(c, promised, None, headers, HEAD_REQUEST)
    if c.hdr_prio:
        apply_priority(s, c.hdr_prio)   # RFC 9218 10: a push's priority in its promise
    method = c.req_method
    path = c.req_path
    c.req_method = c.req_path = None
    # 8.4: promised requests must be safe and cacheable, and carry no content.
    if not (bytes_equal_obj(method, "GET", 3) or bytes_equal_obj(method, "HEAD", 4)):
        return stream_error(c, promised, PROTOCOL_ERROR)
    s.head_request = bytes_equal_obj(method, "HEAD", 4)
    if c.ev_message_push is not None:
        c.ev_message_push(c, promised, parent_id, method, path, headers)
    return 0


cdef int on_ping_frame(Connection c, uint8_t flags, uint32_t sid, const uint8_t* p,
                       uint32_t n) except -1:
    """RFC 9113 6.7."""
    if sid != 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PING on a stream")
    if n != 8:
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "PING length must be 8")
    if flags & FLAG_ACK:
        if c.ev_pong is not None:
            c.ev_pong(c, PyBytes_FromStringAndSize(<char*> p, 8))
        return 0
    if spend_control_budget(c):
        return CONN_ERROR
    return write_simple_frame(c, FRAME_PING, FLAG_ACK, 0, p, 8)


cdef int on_goaway_frame(Connection c, uint32_t sid, const uint8_t* p, uint32_t n) except -1:
    """RFC 9113 6.8: streams we opened above last-stream-id were not processed."""
    cdef uint32_t last
    cdef Stream s
    if sid != 0:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "GOAWAY on a stream")
    if n < 8:
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "GOAWAY too short")
    last = read_u32(p) & MAX_STREAM_ID
    if c.goaway_received and last > c.goaway_last_id:
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "GOAWAY raised last-stream-id")
    c.goaway_received = True
    c.goaway_last_id = last
    for s in [s for s in c.streams.values() if (<Stream> s).local and (<Stream> s).id > last]:
        end_stream(c, s, REFUSED_STREAM, REMOTE)   # safe to retry elsewhere
    return maybe_close(c)


cdef int on_window_update_frame(Connection c, uint32_t sid, const uint8_t* p,
                                uint32_t n) except -1:
    """RFC 9113 6.9."""
    cdef uint32_t inc
    cdef Stream s
    if n != 4:
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "WINDOW_UPDATE length must be 4")
    inc = read_u32(p) & MAX_WINDOW
    if sid == 0:
        if inc == 0:
            return conn_error(c, PROTOCOL_ERROR, ProtocolError, "WINDOW_UPDATE of 0")
        c.send_window += inc
        if c.send_window > MAX_WINDOW:
            return conn_error(c, FLOW_CONTROL_ERROR, FlowControlError,
                              "connection window above 2^31-1")
        return flow_increased(c)
    s = find_stream(c, sid)
    if s is None:
        if is_idle(c, sid):
            return conn_error(c, PROTOCOL_ERROR, ProtocolError, "WINDOW_UPDATE on idle stream %d" % sid)
        return 0   # closed: ignored (5.1)
    if inc == 0:
        return stream_error(c, sid, PROTOCOL_ERROR)
    s.send_window += inc
    if s.send_window > MAX_WINDOW:
        # 6.9.1: a stream's window past 2^31-1 is that stream's error (strict_errors too)
        return stream_error(c, sid, FLOW_CONTROL_ERROR, None, True)
    if c.waiting:
        c.waiting.pop(sid, None)   # (told now; a write cut short again puts it back)
    if c.ev_flow_increase is not None:
        c.ev_flow_increase(c, sid)
    return 0


# ----------------------------------------------------------------------------------------
# Extensible priorities (RFC 9218)
#
# A stream's priority is (urgency 0-7, incremental), 3 and false by default (4.1, 4.2). It
# comes from the `priority` field of the request (5), a PRIORITY_UPDATE frame (7.1, from a
# client, perhaps before the stream opens), the response's field (8: only the parameters it
# gives), or the application (write_priority, or a `priority` field it writes). The
# scheduler (10) decides the order in which streams whose writes a window cut short hear
# on_flow_increase, and priority_order() tells it to the layer above.

cdef enum:
    FRAME_PRIORITY_UPDATE = 0x10
    DEFAULT_URGENCY = 3
    # A priority signal as read (Connection.hdr_prio, Connection.prio_idle): the parameters
    # it gives; 0 when there is none.
    PRIO_URGENCY = 0x07      # the urgency, with PRIO_HAS_U
    PRIO_HAS_U = 0x08
    PRIO_INC = 0x10          # incremental, with PRIO_HAS_I
    PRIO_HAS_I = 0x20
    PRIO_BAD = 0x40          # the field is not a valid Dictionary: it is ignored

    # RFC 8941 / RFC 9651 bare item types
    SF_INTEGER = 1
    SF_DECIMAL = 2
    SF_STRING = 3
    SF_TOKEN = 4
    SF_BYTES = 5
    SF_BOOLEAN = 6
    SF_DATE = 7
    SF_DISPLAY = 8
    SF_INNER_LIST = 9

# RFC 8941 3.3.4: the characters of a Token after its first (tchar, ":" and "/").
cdef uint8_t SF_TOKEN_CHAR[256]
for _i in range(256):
    SF_TOKEN_CHAR[_i] = (0x30 <= _i <= 0x39 or 0x41 <= _i <= 0x5A or 0x61 <= _i <= 0x7A
                         or chr(_i) in "!#$%&'*+-.^_`|~:/")


cdef inline bint sf_lcalpha(uint8_t b) noexcept:
    return 0x61 <= b <= 0x7A


cdef inline bint sf_digit(uint8_t b) noexcept:
    return 0x30 <= b <= 0x39


cdef Py_ssize_t sf_key(const uint8_t* p, Py_ssize_t n, Py_ssize_t i) noexcept:
    """RFC 8941 4.2.3.3: the end of the key at p[i], or -1."""
    cdef uint8_t b
    if i >= n or not (sf_lcalpha(p[i]) or p[i] == 0x2A):   # lcalpha / "*"
        return -1
    i += 1
    while i < n:
        b = p[i]
        if not (sf_lcalpha(b) or sf_digit(b) or b == 0x5F or b == 0x2D or b == 0x2E
                or b == 0x2A):   # "_" "-" "." "*"
            break
        i += 1
    return i


cdef Py_ssize_t sf_number(const uint8_t* p, Py_ssize_t n, Py_ssize_t i, int* kind,
                          int64_t* value) noexcept:
    """RFC 8941 4.2.4: an Integer (its value) or a Decimal at p[i]; the end, or -1."""
    cdef bint negative = False
    cdef Py_ssize_t size = 0, frac = -1   # characters of the number; digits after "."
    cdef int64_t v = 0
    if i < n and p[i] == 0x2D:
        negative = True
        i += 1
    if i >= n or not sf_digit(p[i]):
        return -1
    while i < n:
        if sf_digit(p[i]):
            if frac < 0:
                v = v * 10 + (p[i] - 0x30)
            else:
                frac += 1
        elif frac < 0 and p[i] == 0x2E:
            if size > 12:
                return -1
            frac = 0
        else:
            break
        size += 1
        i += 1
        if size > (15 if frac < 0 else 16):
            return -1
    if frac == 0 or frac > 3:   # a Decimal ends with "." or has over 3 fraction digits
        return -1
    kind[0] = SF_INTEGER if frac < 0 else SF_DECIMAL
    value[0] = -v if negative else v
    return i


cdef Py_ssize_t sf_string(const uint8_t* p, Py_ssize_t n, Py_ssize_t i) noexcept:
    """RFC 8941 4.2.5: a String starting at the DQUOTE at p[i]; its end, or -1."""
    cdef uint8_t b
    i += 1
    while i < n:
        b = p[i]
        i += 1
        if b == 0x5C:   # "\" escapes only DQUOTE and itself
            if i >= n or (p[i] != 0x22 and p[i] != 0x5C):
                return -1
            i += 1
        elif b == 0x22:
            return i
        elif b < 0x20 or b > 0x7E:
            return -1
    return -1


cdef Py_ssize_t sf_display_string(const uint8_t* p, Py_ssize_t n, Py_ssize_t i) noexcept:
    """RFC 9651 4.2.10: a Display String ("%" DQUOTE ...) at p[i], percent-encoded UTF-8;
    its end, or -1."""
    cdef int need = 0, d, k
    cdef uint8_t b, lo = 0x80, hi = 0xBF
    if i + 1 >= n or p[i + 1] != 0x22:
        return -1
    i += 2
    while i < n:
        b = p[i]
        i += 1
        if b < 0x20 or b > 0x7E:
            return -1
        if b == 0x22:
            return i if need == 0 else -1
        if b == 0x25:   # "%" and two lower-case hex digits: one byte
            if i + 2 > n:
                return -1
            b = 0
            for k in range(2):
                d = p[i + k]
                if sf_digit(d):
                    b = b * 16 + (d - 0x30)
                elif 0x61 <= d <= 0x66:
                    b = b * 16 + (d - 0x61 + 10)
                else:
                    return -1
            i += 2
        # the bytes must be UTF-8 (RFC 3629 4: no overlong forms, no surrogates)
        if need:
            if b < lo or b > hi:
                return -1
            need -= 1
            lo, hi = 0x80, 0xBF
        elif b >= 0x80:
            if 0xC2 <= b <= 0xDF:
                need = 1
            elif 0xE0 <= b <= 0xEF:
                need = 2
                if b == 0xE0:
                    lo = 0xA0
                elif b == 0xED:
                    hi = 0x9F
            elif 0xF0 <= b <= 0xF4:
                need = 3
                if b == 0xF0:
                    lo = 0x90
                elif b == 0xF4:
                    hi = 0x8F
            else:
                return -1
    return -1


cdef Py_ssize_t sf_bare_item(const uint8_t* p, Py_ssize_t n, Py_ssize_t i, int* kind,
                             int64_t* value) noexcept:
    """RFC 8941 4.2.3.1 (and RFC 9651's Date and Display String): the bare item at p[i];
    its type in kind, an Integer's or Boolean's value in value; its end, or -1."""
    cdef uint8_t b
    if i >= n:
        return -1
    b = p[i]
    if b == 0x2D or sf_digit(b):
        return sf_number(p, n, i, kind, value)
    if b == 0x22:
        kind[0] = SF_STRING
        return sf_string(p, n, i)
    if b == 0x2A or sf_lcalpha(b | 0x20):   # Token (4.2.6): ALPHA / "*", then tchar ":" "/"
        kind[0] = SF_TOKEN
        i += 1
        while i < n and SF_TOKEN_CHAR[p[i]]:
            i += 1
        return i
    if b == 0x3A:   # Byte Sequence (4.2.7): base64 between colons
        kind[0] = SF_BYTES
        i += 1
        while i < n and p[i] != 0x3A:
            b = p[i]
            if not (sf_digit(b) or sf_lcalpha(b | 0x20) or b == 0x2B or b == 0x2F or b == 0x3D):
                return -1
            i += 1
        return i + 1 if i < n else -1
    if b == 0x3F:   # Boolean (4.2.8): ?0 or ?1
        if i + 1 >= n or (p[i + 1] != 0x30 and p[i + 1] != 0x31):
            return -1
        kind[0] = SF_BOOLEAN
        value[0] = p[i + 1] == 0x31
        return i + 2
    if b == 0x40:   # Date (RFC 9651 4.2.9): "@" and an Integer
        i = sf_number(p, n, i + 1, kind, value)
        if i < 0 or kind[0] != SF_INTEGER:
            return -1
        kind[0] = SF_DATE
        return i
    if b == 0x25:
        kind[0] = SF_DISPLAY
        return sf_display_string(p, n, i)
    return -1


cdef Py_ssize_t sf_parameters(const uint8_t* p, Py_ssize_t n, Py_ssize_t i) noexcept:
    """RFC 8941 4.2.3.2: skip the Parameters at p[i] (no priority parameter has any);
    their end, or -1."""
    cdef int kind
    cdef int64_t value
    while i < n and p[i] == 0x3B:   # ";"
        i += 1
        while i < n and p[i] == 0x20:
            i += 1
        i = sf_key(p, n, i)
        if i < 0:
            return -1
        if i < n and p[i] == 0x3D:   # "=" and a bare item; else the value is true
            i = sf_bare_item(p, n, i + 1, &kind, &value)
            if i < 0:
                return -1
    return i


cdef Py_ssize_t sf_inner_list(const uint8_t* p, Py_ssize_t n, Py_ssize_t i) noexcept:
    """RFC 8941 4.2.1.2: skip the Inner List at the "(" at p[i]; its end, or -1."""
    cdef int kind
    cdef int64_t value
    i += 1
    while i < n:
        while i < n and p[i] == 0x20:
            i += 1
        if i < n and p[i] == 0x29:   # ")" and the list's parameters
            return sf_parameters(p, n, i + 1)
        i = sf_bare_item(p, n, i, &kind, &value)
        if i >= 0:
            i = sf_parameters(p, n, i)
        if i < 0 or i >= n or (p[i] != 0x20 and p[i] != 0x29):
            return -1
    return -1


cdef int scan_priority(int acc, const uint8_t* p, Py_ssize_t n) noexcept:
    """One field line of a priority signal (RFC 9218 4, 5), read into acc (PRIO_*).

    The value is a Dictionary (RFC 8941 4.2.2); the lines of one head make one Dictionary
    (RFC 8941 4.2), a later member overriding an earlier one, and a head whose value does
    not parse gets PRIO_BAD: it is ignored. RFC 9218 4: "unknown priority parameters,
    priority parameters with out-of-range values, or values of unexpected types MUST be
    ignored": such a `u` or `i` leaves that parameter unset (its default applies)."""
    cdef Py_ssize_t i = 0, start
    cdef int kind
    cdef int64_t value
    cdef uint8_t key
    if acc & PRIO_BAD:
        return acc
    while i < n and p[i] == 0x20:   # 4.2: leading SP (the Dictionary takes trailing OWS)
        i += 1
    while i < n:
        start = i
        i = sf_key(p, n, i)
        if i < 0:
            return acc | PRIO_BAD
        key = p[start] if i - start == 1 else 0   # "u" and "i" are one letter
        if i < n and p[i] == 0x3D:
            i += 1
            if i < n and p[i] == 0x28:
                kind = SF_INNER_LIST
                i = sf_inner_list(p, n, i)
            else:
                i = sf_bare_item(p, n, i, &kind, &value)
                if i >= 0:
                    i = sf_parameters(p, n, i)
        else:   # a key alone is the Boolean true (with parameters)
            kind = SF_BOOLEAN
            value = 1
            i = sf_parameters(p, n, i)
        if i < 0:
            return acc | PRIO_BAD
        if key == 0x75:   # u: an Integer 0-7 (4.1)
            acc &= ~(PRIO_HAS_U | PRIO_URGENCY)
            if kind == SF_INTEGER and 0 <= value <= 7:
                acc |= PRIO_HAS_U | <int> value
        elif key == 0x69:   # i: a Boolean (4.2)
            acc &= ~(PRIO_HAS_I | PRIO_INC)
            if kind == SF_BOOLEAN:
                acc |= PRIO_HAS_I | (PRIO_INC if value else 0)
        while i < n and (p[i] == 0x20 or p[i] == 0x09):
            i += 1
        if i >= n:
            break
        if p[i] != 0x2C:   # ","
            return acc | PRIO_BAD
        i += 1
        while i < n and (p[i] == 0x20 or p[i] == 0x09):
            i += 1
        if i >= n:
            return acc | PRIO_BAD   # a trailing comma
    return acc


cdef inline int full_priority(int prio) noexcept:
    """A signal that stands for all the parameters (a request's field, a PRIORITY_UPDATE:
    "Omitting a priority parameter is a signal to use its default value", 7)."""
    if not prio & PRIO_HAS_U:
        prio |= PRIO_HAS_U | DEFAULT_URGENCY
    return prio | PRIO_HAS_I


cdef inline void apply_priority(Stream s, int prio) noexcept:
    """The parameters a signal gives replace the stream's (RFC 9218 8: a response's field
    changes only those it names); an invalid field changes nothing."""
    if prio & PRIO_BAD:
        return
    if prio & PRIO_HAS_U:
        s.urgency = prio & PRIO_URGENCY
    if prio & PRIO_HAS_I:
        s.incremental = (prio & PRIO_INC) != 0


cdef int take_request_priority(Connection c, Stream s) except -1:
    """A request opened s: its priority field, then a PRIORITY_UPDATE that came first ("the
    most recently received PRIORITY_UPDATE frame can be considered as the most up-to-date
    information that overrides any other signal", RFC 9218 7)."""
    cdef object early
    apply_priority(s, c.hdr_prio)
    if c.prio_idle:
        early = c.prio_idle.pop(s.id, None)
        if early is not None:
            apply_priority(s, early)
    return 0


cdef bint no_rfc7540_invalid(Connection c, uint32_t value) noexcept:
    """RFC 9218 2.1: "Any value other than 0 or 1 MUST be treated as a connection error ...
    of type PROTOCOL_ERROR", and "Senders MUST NOT change the SETTINGS_NO_RFC7540_PRIORITIES
    value after the first SETTINGS frame. Receivers that detect a change MAY treat it as a
    connection error of type PROTOCOL_ERROR" (which cno does)."""
    return value > 1 or (c.got_settings_frame and value != c.remote[S_NO_RFC7540_PRIORITIES])


cdef int on_priority_update_frame(Connection c, uint32_t sid, const uint8_t* p,
                                  uint32_t n) except -1:
    """RFC 9218 7.1."""
    cdef uint32_t target
    cdef int prio
    cdef Stream s
    if c.client:
        # "Servers MUST NOT send PRIORITY_UPDATE frames. If a client receives a
        # PRIORITY_UPDATE frame, it MUST respond with a connection error of type
        # PROTOCOL_ERROR."
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PRIORITY_UPDATE from a server")
    if sid != 0:
        # "The Stream Identifier field ... MUST be zero (0x0). Receiving a PRIORITY_UPDATE
        # frame with a field of any other value MUST be treated as a connection error of
        # type PROTOCOL_ERROR."
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PRIORITY_UPDATE on a stream")
    if n < 4:   # (RFC 9113 4.2: too small for its Prioritized Stream ID)
        return conn_error(c, FRAME_SIZE_ERROR, FrameSizeError, "PRIORITY_UPDATE too short")
    # A flood of these costs us work: counted as the other control frames are.
    if spend_control_budget(c):
        return CONN_ERROR
    target = read_u32(p) & MAX_STREAM_ID   # (the reserved bit is ignored)
    if target == 0:
        # "If a PRIORITY_UPDATE frame is received with a prioritized stream ID of 0x0, the
        # recipient MUST respond with a connection error of type PROTOCOL_ERROR."
        return conn_error(c, PROTOCOL_ERROR, ProtocolError, "PRIORITY_UPDATE for stream 0")
    s = find_stream(c, target)
    if s is None and not target & 1 and is_idle(c, target):
        # "Servers that receive a PRIORITY_UPDATE for a push stream in the "idle" state
        # MUST respond with a connection error of type PROTOCOL_ERROR."
        return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                          "PRIORITY_UPDATE for a push stream never promised")
    prio = scan_priority(0, p + 4, n - 4)
    if prio & PRIO_BAD:
        return 0   # "Failure to parse the Priority Field Value MAY be treated as a
                   # connection error": cno ignores the frame, as nghttp2 does
    prio = full_priority(prio)
    if s is None:
        if is_idle(c, target) and not ignored_after_goaway(c, target):
            return remember_idle_priority(c, target, prio)
        return 0   # closed: "Servers can discard frames where the prioritized stream ID
                   # refers to a stream in the ... "closed" state"
    apply_priority(s, prio)
    if c.ev_priority_update is not None:
        c.ev_priority_update(c, target, s.urgency, s.incremental)
    return 0


cdef int remember_idle_priority(Connection c, uint32_t target, int prio) except -1:
    """A PRIORITY_UPDATE before its stream's HEADERS: "Servers SHOULD buffer the most
    recently received PRIORITY_UPDATE frame and apply it once the referenced stream is
    opened" (RFC 9218 7). The memory is bounded as 7.1 bounds the peer: "The number of
    streams that have been prioritized but remain in the "idle" state plus the number of
    active streams ... MUST NOT exceed the value of the SETTINGS_MAX_CONCURRENT_STREAMS
    parameter. Servers that receive such a PRIORITY_UPDATE MUST respond with a connection
    error of type PROTOCOL_ERROR.\""""
    cdef uint32_t last = c.last_stream[REMOTE]
    if c.prio_idle is None:
        c.prio_idle = {}
    elif c.prio_idle:
        # ids at or below the peer's last stream can no longer open (RFC 9113 5.1.1)
        for k in [k for k in c.prio_idle if k <= last]:
            del c.prio_idle[k]
    if target not in c.prio_idle and \
            len(c.prio_idle) + c.stream_count[REMOTE] >= stream_limit(c):
        return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                          "PRIORITY_UPDATE for more idle streams than max_concurrent_streams")
    c.prio_idle[target] = prio
    return 0


cdef inline int64_t sched_key(Connection c, Stream s) noexcept:
    """Where s comes in the scheduler's order (RFC 9218 10): lower urgency first; at one
    urgency the non-incremental streams by id ("Non-incremental responses of the same
    urgency SHOULD be served ... in ascending order of the stream ID": one finishes before
    the next starts), then the incremental ones round-robin ("sharing bandwidth among
    them"): by id, starting after the one that last sent DATA. Keys are unique: the id is
    the low 31 bits."""
    cdef int64_t rank = s.id
    if s.incremental and s.id <= c.rr_last[s.urgency]:
        rank += 1 << 31   # (after those above it: the turn goes round)
    return (<int64_t> s.urgency << 33) | (<int64_t> s.incremental << 32) | rank


cdef inline int wait_for_flow(Connection c, Stream s) except -1:
    """A window cut s's write short: s hears on_flow_increase when one grows."""
    if c.waiting is None:
        c.waiting = {}
    c.waiting[s.id] = s
    return 0


cdef int flow_increased(Connection c) except -1:
    """Every stream may send more (the connection window grew, or SETTINGS grew the stream
    windows): the streams whose writes were cut short hear on_flow_increase(stream), one
    by one in the scheduler's order, while the connection window lasts (a stream whose own
    window is still closed waits for its WINDOW_UPDATE); then on_flow_increase(0)."""
    cdef list keys
    cdef Stream s
    cdef int64_t key
    cdef uint32_t sid
    if c.ev_flow_increase is None:
        c.waiting = None
        return 0
    if c.waiting:
        keys = [sched_key(c, s) for s in c.waiting.values()]
        keys.sort()
        for key in keys:
            if c.send_window <= 0 or c.is_closed:
                break   # the rest wait for the next one, in order
            sid = <uint32_t>(key & MAX_STREAM_ID)
            s = c.waiting.get(sid)
            if s is None or s.send_window <= 0:
                continue   # told meanwhile or gone; or its own window is still closed
            del c.waiting[sid]
            if s.w_state == W_DATA:
                c.ev_flow_increase(c, sid)
    c.ev_flow_increase(c, 0)
    return 0


# ----------------------------------------------------------------------------------------
# Writing messages

cdef enum:
    FIELDS_REQUEST = 0    # :scheme, :authority, :protocol allowed (we add :method, :path)
    FIELDS_RESPONSE = 1   # no pseudo-headers (we add :status)
    FIELDS_TRAILERS = 2   # no pseudo-headers


cdef inline int check_headers(Connection c, list out, object headers, int kind) except -1:
    """The caller's headers for a head or trailers, appended to `out`: checked_headers,
    or unchecked_headers with validate_outbound_headers off."""
    if c.validate_outbound_headers:
        return checked_headers(c, out, headers, kind)
    return unchecked_headers(c, out, headers, kind)


cdef int checked_headers(Connection c, list out, object headers, int kind) except -1:
    """Append the caller's headers to `out` as (name, value[, sensitive]) field tuples,
    checked (RFC 9113 8.2, 8.3): names lower case, values without CR, LF, NUL or
    whitespace at the ends, pseudo-headers only where allowed and before the others.
    A plain (name, value) tuple of exact str/bytes fields goes in as it is (no copy)."""
    cdef object item, name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn, k, slot = 0
    cdef int pseudo
    cdef bint regular_seen = False, same
    c.hdr_prio = 0
    c.hdr_plain = True   # (until a sensitive field needs its triple)
    if headers is None:
        return 0
    for item in headers:
        if PyTuple_CheckExact(item):
            k = PyTuple_GET_SIZE(item)
            if k != 2 and k != 3:
                raise UsageError("a header must be (name, value) or (name, value, sensitive)")
            slot = identity_hash(item)
            if is_checked(c, item, slot) or is_sent(c, item, slot):
                regular_seen = True   # a plain regular field, checked before
                list_push(out, item)
                continue
            name = <object> PyTuple_GET_ITEM(item, 0)
            value = <object> PyTuple_GET_ITEM(item, 1)
            same = k == 2 and is_field(name) and is_field(value)
            if not same:
                name = field_object(name)
                value = field_object(value)
        else:
            k = len(item)
            if k != 2 and k != 3:
                raise UsageError("a header must be (name, value) or (name, value, sensitive)")
            if k == 2 and not getattr(item, "indexable", True):
                item = (item[0], item[1], True)   # a NeverIndexedHeaderTuple (hpack's too)
                k = 3
            same = False
            name = field_object(item[0])
            value = field_object(item[1])
        np = field_ptr(name, &nn)
        vp = field_ptr(value, &vn)
        if nn and np[0] == 0x3A:
            pseudo = pseudo_kind(np, nn)
            if kind != FIELDS_REQUEST or regular_seen or not (
                    pseudo == PSEUDO_SCHEME or pseudo == PSEUDO_AUTHORITY
                    or pseudo == PSEUDO_PROTOCOL):
                raise UsageError("pseudo-header %r not allowed here" % (name,))
        else:
            regular_seen = True
            if not name_valid(np, nn):
                raise UsageError("invalid header name %r (names must be lower case tokens)"
                                 % (name,))
            if connection_specific(np, nn):
                raise UsageError("connection-specific header %r is not allowed in HTTP/2"
                                 % (name,))
            if nn == 8 and kind != FIELDS_TRAILERS and memcmp(np, b"priority", 8) == 0:
                c.hdr_prio = scan_priority(c.hdr_prio, vp, vn)
            elif nn == 2 and memcmp(np, b"te", 2) == 0 and not bytes_equal(vp, vn, "trailers", 8):
                # 8.2.2: "MUST NOT contain any value other than 'trailers'"
                raise UsageError("te may only be 'trailers' in HTTP/2")
        if not value_valid(vp, vn):
            raise UsageError("invalid value for header %r" % (name,))
        if same:
            list_push(out, item)
            if not regular_seen or nn + vn > CHECKED_MAX_LEN or bytes_equal(np, nn, "priority", 8):
                continue   # (priority is read every time)
            if bytes_equal(np, nn, "te", 2) or bytes_equal(np, nn, "content-length", 14):
                # Read by the engine when they come in: not among the fields inbound
                # parsing skips (a tuple written may be one the decoder hands out).
                remember_sent(c, item, slot)
                continue
            remember_checked(c, item, slot)   # (regular: the pseudo-header branch raises)
        elif k == 3:
            list_push(out, (name, value, bool(item[2])))
            c.hdr_plain = False
        else:
            list_push(out, (name, value))
    return 0


cdef int change_settings(Connection self, dict changes, bint write) except -1:
    """update_settings() (write: a SETTINGS frame goes out once started, in HTTP/2) and
    preface_settings() (not written: the first SETTINGS will carry them)."""
    cdef dict diff = {}
    if self.is_closed:
        raise closed_error(self)
    for name, value in changes.items():
        key = SETTINGS_NAMES.get(name)
        if key is None:
            raise UsageError("unknown setting %r" % name)
        value = int(value)
        if value < 0 or value > 0xFFFFFFFF:
            raise UsageError("%s out of range" % name)
        if key in (S_ENABLE_PUSH, S_ENABLE_CONNECT_PROTOCOL, S_NO_RFC7540_PRIORITIES) \
                and value > 1:
            raise UsageError("%s must be 0 or 1" % name)
        if key == S_NO_RFC7540_PRIORITIES and self.started and value != self.wanted[key]:
            # RFC 9218 2.1: "Senders MUST NOT change the SETTINGS_NO_RFC7540_PRIORITIES
            # value after the first SETTINGS frame."
            raise UsageError("no_rfc7540_priorities cannot change after connection_made()")
        if key == S_INITIAL_WINDOW_SIZE and value > MAX_WINDOW:
            raise UsageError("initial_window_size must be at most 2^31-1")
        if key == S_MAX_FRAME_SIZE and not 16384 <= value <= 16777215:
            raise UsageError("max_frame_size must be in [2^14, 2^24-1]")
        if self.wanted[key] != value:
            self.wanted[key] = value
            diff[key] = value
    if S_MAX_HEADER_LIST_SIZE in diff and not (
            self.strict_errors and self.started and self.h2
            and diff[S_MAX_HEADER_LIST_SIZE] < self.decoder.max_header_list_size):
        # In force at once: memory is bounded from now on. Under strict_errors a header
        # list over it ends the connection, so a lower value waits for the peer's ACK
        # (apply_local_settings): the peer cannot be blamed for a limit it has not seen.
        self.decoder.max_header_list_size = self.wanted[S_MAX_HEADER_LIST_SIZE]
    if diff and write and self.started and self.h2:
        self.depth += 1
        try:
            write_settings(self, diff)
        finally:
            self.depth -= 1
            end_call(self)
    return 0


cdef int shutdown(Connection c, uint32_t code, int64_t last, bytes debug) except -1:
    """shutdown() and write_goaway(): GOAWAY (last < 0: naming the last peer stream),
    then no new streams, and on_close once none remain."""
    cdef bint explicit = last >= 0 or debug is not None
    if c.is_closed and c.error_class is None and not c.lost:
        if c.h2 and explicit:
            # (shut down already: a GOAWAY naming a stream or saying more may follow)
            write_goaway(c, code, last, debug)
            flush(c)
        return 0
    check_open(c)
    c.depth += 1
    try:
        if not c.h2:
            c.goaway_sent = True   # no new requests; the ones open finish
            if not c.client and c.state == ST_H1_HEAD:
                c.state = ST_H1_IGNORE
        elif not c.goaway_sent or code != NO_ERROR or explicit:
            write_goaway(c, code, last, debug)
        maybe_close(c)
    finally:
        c.depth -= 1
        end_call(c)
    return 0


cdef int unchecked_headers(Connection c, list out, object headers, int kind) except -1:
    """checked_headers with validate_outbound_headers off: the caller's headers appended
    to `out` as given, in order, with none of RFC 9113 8.2's and 8.3's checks (names and
    values made str or bytes; sensitive ones, NeverIndexedHeaderTuple included, as
    triples). The priority field of a head is still read: it is the scheduler's signal."""
    cdef object item, name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t k, nn, vn
    c.hdr_prio = 0
    c.hdr_plain = False
    if headers is None:
        return 0
    for item in headers:
        k = len(item)
        if k != 2 and k != 3:
            raise UsageError("a header must be (name, value) or (name, value, sensitive)")
        name = field_object(item[0])
        value = field_object(item[1])
        if kind != FIELDS_TRAILERS:
            np = field_ptr(name, &nn)
            if bytes_equal(np, nn, "priority", 8):
                vp = field_ptr(value, &vn)
                c.hdr_prio = scan_priority(c.hdr_prio, vp, vn)
        list_push(out, (name, value, bool(item[2]) if k == 3
                        else not getattr(item, "indexable", True)))
    return 0


cdef int check_open(Connection c) except -1:
    if c.is_closed:
        raise closed_error(c)
    if not c.started:
        raise UsageError("call connection_made() first")
    return 0


cdef int feed(Connection c, const uint8_t* data, Py_ssize_t length) except -1:
    """Parse input (appended to what is buffered); keep only the unconsumed tail.
    Returns 0 or CONN_ERROR.

    What was parsed off the front of the buffer is skipped by an offset and moved out
    only once it is most of the buffer: a pipelined backlog parsed one request at a
    time costs O(n) in all, not O(n^2)."""
    cdef const uint8_t* p = data
    cdef Py_ssize_t n = length, consumed = 0
    cdef bint own = False
    cdef int r = 0
    c.consuming = True
    c.depth += 1
    try:
        if c.inbuf.len:
            if length:
                if c.in_off > c.inbuf.len // 2:
                    memmove(c.inbuf.data, c.inbuf.data + c.in_off, c.inbuf.len - c.in_off)
                    c.inbuf.len -= c.in_off
                    c.in_off = 0
                buf_put(&c.inbuf, data, length)
            p = c.inbuf.data + c.in_off
            n = c.inbuf.len - c.in_off
            own = True
        r = consume(c, p, n, &consumed)
        if c.pend_s is not None:
            deliver_gathered(c)
    finally:
        if c.pend_s is not None:   # (a handler raised: what it did not get is dropped)
            c.pend_s = None
            c.pend.len = 0
        if own:
            c.in_off += consumed
            if c.in_off == c.inbuf.len:
                c.inbuf.len = c.in_off = 0
                buf_trim(&c.inbuf, TRIM_ABOVE)
        elif consumed < n:
            c.inbuf.len = c.in_off = 0
            buf_put(&c.inbuf, p + consumed, n - consumed)
        c.consuming = False
        c.depth -= 1
    return r


cdef int raise_connection_error(Connection c) except -1:
    exc = c.error_class(c.error_message, c.error_code)
    if c.h1_error_status is not None:
        exc.status = c.h1_error_status
    raise exc


cdef int end_call(Connection c) except -1:
    """The end of a public call: parse what HTTP/1.1 pipelining held back if a stream
    ended, then hand out the output (once)."""
    cdef int r = 0
    if c.depth:
        return 0
    if (c.h1_paused and not c.h2 and not c.consuming and not c.is_closed and c.inbuf.len
            and not c.h1_wait_switch
            and c.stream_count[REMOTE] < c.wanted[S_MAX_CONCURRENT_STREAMS]):
        c.h1_paused = False
        r = feed(c, NULL, 0)
    flush(c)
    fire_close(c)
    if r == CONN_ERROR:
        raise_connection_error(c)
    return 0


# ----------------------------------------------------------------------------------------
# The public class

cdef class Connection:
    """A socketless HTTP/2 connection with libcno's API (see docs/raw.md).

    Subclass it and override the ``on_*`` event methods you need; the defaults do
    nothing, and methods a subclass does not define are never called.
    """

    def __cinit__(self, *args, **kwargs):
        cdef type cls = type(self)
        cdef tuple events = _event_cache.get(cls)
        if events is None:
            events = _event_cache[cls] = _find_events(cls)
        (self.ev_writev, self.ev_stream_start, self.ev_stream_end, self.ev_flow_increase,
         self.ev_message_head, self.ev_message_data, self.ev_message_tail,
         self.ev_message_push, self.ev_frame, self.ev_frame_send, self.ev_pong,
         self.ev_settings, self.ev_close, self.ev_upgrade, self.ev_priority_update) = events
        self.streams = {}
        self.recently_reset = set()
        self.reset_order = collections.deque()
        self.skipped = []
        self.settings_queue = []
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.local[:] = STANDARD
        self.remote[:] = STANDARD
        self.wanted[:] = STANDARD
        self.send_window = 65535
        self.recv_window = 65535
        self.recv_target = 65535
        self.disallow_h2_upgrade = True
        self.max_header_block_size = DEFAULT_MAX_HEADER_BLOCK_SIZE
        self.validate_inbound_headers = self.validate_outbound_headers = True
        self.max_continuations = DEFAULT_MAX_CONTINUATIONS
        self.resets.limit = self.resets.left = DEFAULT_RESET_BUDGET
        self.empties.limit = self.empties.left = DEFAULT_EMPTY_FRAME_BUDGET
        self.controls.limit = self.controls.left = DEFAULT_CONTROL_FRAME_BUDGET
        self.errors.limit = self.errors.left = DEFAULT_STREAM_ERROR_BUDGET
        self.error_message = ""
        self.scheme = "http"
        self.max_head_size = DEFAULT_MAX_HEAD_SIZE
        self.max_header_count = DEFAULT_MAX_HEADER_COUNT
        self.max_chunk_line = DEFAULT_MAX_CHUNK_LINE
        self.zero_copy_threshold = DEFAULT_ZERO_COPY_THRESHOLD
        self.priority_update_frames = True
        self.compression_error_code = COMPRESSION_ERROR
        self.continuation_flood_code = ENHANCE_YOUR_CALM

    def __init__(self, bint server=True, *, enable_push=None, **settings):
        self.client = not server
        self.wanted[S_MAX_CONCURRENT_STREAMS] = DEFAULT_MAX_CONCURRENT_STREAMS
        self.wanted[S_MAX_HEADER_LIST_SIZE] = DEFAULT_MAX_HEADER_LIST_SIZE
        # RFC 9218 2.1: cno reads no RFC 7540 priority signal and sends none (docs/raw.md)
        self.wanted[S_NO_RFC7540_PRIORITIES] = 1
        if self.client:
            # A client accepts pushes exactly when it has somewhere to put them (the
            # libcno defect: clients always sent 0).
            self.wanted[S_ENABLE_PUSH] = 1 if self.ev_message_push is not None else 0
        if enable_push is not None:
            settings["enable_push"] = enable_push
        if settings:
            self.update_settings(**settings)
        self.decoder.max_header_list_size = self.wanted[S_MAX_HEADER_LIST_SIZE]

    def __dealloc__(self):
        forget_checked(self)
        buf_free(&self.inbuf)
        buf_free(&self.out)
        buf_free(&self.hblock)
        buf_free(&self.scratch)
        buf_free(&self.pend)

    def __sizeof__(self):
        """The object and the C buffers it holds (input tail, output, header blocks): what
        ``sys.getsizeof`` reports, with the output chunks held for on_writev (cork(): the
        borrowed bodies too). Not counted: the streams and the HPACK tables."""
        cdef Py_ssize_t held = 0
        if self.out_chunks is not None:
            for chunk in self.out_chunks:
                held += len(chunk)
        return (object.__sizeof__(self) + self.inbuf.cap + self.out.cap + self.hblock.cap + self.pend.cap
                + self.scratch.cap + held)

    # -- properties ------------------------------------------------------------------

    @property
    def is_client(self):
        return self.client

    @property
    def is_server(self):
        return not self.client

    @property
    def is_http2(self):
        return self.h2

    @property
    def closed(self):
        """True after a connection error, connection_lost(), or the end of a shutdown."""
        return self.is_closed

    @property
    def draining(self):
        """True once no new stream may start: a GOAWAY was sent or received (HTTP/1.1:
        ``Connection: close`` either way, or an HTTP/1.0 peer), or the connection is
        closed. Streams already running may still finish."""
        return self.goaway_sent or self.goaway_received or self.is_closed

    @property
    def manual_flow_control(self):
        """Credit received data only when open_flow() says it was consumed."""
        return self.manual_flow

    @manual_flow_control.setter
    def manual_flow_control(self, bint value):
        self.manual_flow = value

    # -- header knobs (HPACK policy and header validation; docs/raw.md) ----------------

    @property
    def hpack_index_all(self):
        """Encode header blocks as the hpack package's Encoder does (every field that
        is not sensitive indexed, every string Huffman-coded, no table cap below the
        peer's SETTINGS_HEADER_TABLE_SIZE); default False: cno's policy. See
        ``cno.hpack.Encoder.index_all``."""
        return self.encoder.index_all

    @hpack_index_all.setter
    def hpack_index_all(self, bint value):
        self.encoder.index_all = value

    @property
    def next_stream(self):
        """The id the next write_head (client) or write_push (server) would use."""
        cdef uint32_t last = self.last_stream[LOCAL]
        if self.client:
            return last + 2 if last else 1
        return last + 2 if last else 2

    @property
    def local_settings(self):
        """Our settings: the latest we sent (in force once the peer acknowledges them)."""
        return {name: self.wanted[key] for name, key in SETTINGS_NAMES.items()}

    @property
    def remote_settings(self):
        """The peer's settings (the RFC's initial values until its SETTINGS arrive)."""
        return {name: self.remote[key] for name, key in SETTINGS_NAMES.items()}

    @property
    def reset_budget(self):
        """Streams the peer may open and reset before they complete (rapid reset); each
        completed stream earns one back."""
        return self.resets.limit

    @reset_budget.setter
    def reset_budget(self, int64_t value):
        set_budget(&self.resets, value, "reset_budget")

    @property
    def empty_frame_budget(self):
        """Frames carrying nothing that the peer may send; each useful frame earns one back."""
        return self.empties.limit

    @empty_frame_budget.setter
    def empty_frame_budget(self, int64_t value):
        set_budget(&self.empties, value, "empty_frame_budget")

    @property
    def control_frame_budget(self):
        """Frames the peer may send that make us reply (PING, SETTINGS, stream errors)
        while writing_paused: the replies would pile up unread."""
        return self.controls.limit

    @control_frame_budget.setter
    def control_frame_budget(self, int64_t value):
        set_budget(&self.controls, value, "control_frame_budget")

    @property
    def stream_error_budget(self):
        """Streams the peer may make us reset (RST_STREAM for its stream errors) beyond
        those earned back by completed exchanges (MadeYouReset, CVE-2025-8671)."""
        return self.errors.limit

    @stream_error_budget.setter
    def stream_error_budget(self, int64_t value):
        set_budget(&self.errors, value, "stream_error_budget")

    @property
    def stats(self):
        """Counters of what the peer did against each abuse budget (a new dict each time):
        ``peer_resets`` (streams it reset before they completed), ``stream_errors``
        (streams we reset for its errors), ``empty_frames``, ``unread_replies`` (frames
        that made us reply while writing_paused), and ``buffered_input`` (bytes held
        unparsed)."""
        return {
            "peer_resets": self.resets.spent,
            "stream_errors": self.errors.spent,
            "empty_frames": self.empties.spent,
            "unread_replies": self.controls.spent,
            "buffered_input": self.inbuf.len - self.in_off,
        }

    @property
    def buffered_input(self):
        """Bytes received and not parsed yet: an incomplete frame or head, or HTTP/1.1
        requests pipelined behind one still being answered."""
        return self.inbuf.len - self.in_off

    @property
    def settings_unacked(self):
        """How many SETTINGS frames we sent that the peer has not acknowledged."""
        return len(self.settings_queue)

    @property
    def open_streams(self):
        """Ids of the streams that are open now."""
        return list(self.streams)

    def http_version(self, uint32_t stream):
        """The HTTP version of an open stream's exchange: "2", "1.1", or "1.0" when the
        HTTP/1 peer spoke HTTP/1.0 in it (servers: in its request)."""
        cdef Stream s = self.streams.get(stream)
        if s is None:
            raise InvalidStream("stream %d is not open" % stream)
        return "2" if self.h2 else ("1.0" if s.h10 else "1.1")

    def priority(self, uint32_t stream):
        """An open stream's priority (RFC 9218): ``(urgency, incremental)``, urgency 0
        (first) to 7, ``(3, False)`` unless a signal said otherwise."""
        cdef Stream s = self.streams.get(stream)
        if s is None:
            raise InvalidStream("stream %d is not open" % stream)
        return (s.urgency, s.incremental)

    def stream_state(self, uint32_t stream):
        """A stream's state as RFC 9113 5.1 names them: 0 idle, 1 reserved (remote),
        2 reserved (local), 3 open, 4 half-closed (remote), 5 half-closed (local),
        6 closed; plus whether our head was sent: ``(state, head_sent)``."""
        cdef Stream s = self.streams.get(stream)
        if s is None:
            return (0 if is_idle(self, stream) else 6), False
        if s.local and s.r_state == R_CLOSED and s.w_state == W_HEADERS:
            return 2, False   # we promised it and have not answered yet
        if not s.local and s.w_state == W_CLOSED and s.r_state == R_HEADERS:
            return 1, False   # the peer promised it
        if s.r_state == R_CLOSED:
            return (6 if s.w_state == W_CLOSED else 4), s.w_state != W_HEADERS
        if s.w_state == W_CLOSED:
            return 5, True
        return 3, s.w_state != W_HEADERS

    @property
    def last_peer_stream(self):
        """The highest stream id the peer opened or promised (0: none yet)."""
        return self.last_stream[REMOTE]

    @property
    def header_tuple_types(self):
        """None (the default: plain tuples), or a pair ``(field_type, never_indexed_type)``
        of tuple subclasses: HTTP/2 header lists received hold instances of them, the
        second for fields the peer sent never-indexed (RFC 7541 6.2.3). Built in C, and
        one per table entry shared like the plain tuples; the classes must be defined in
        Python and add no instance fields (TypeError). The HPACK decoder's
        ``tuple_types`` (docs/hpack.md)."""
        return self.decoder.tuple_types

    @header_tuple_types.setter
    def header_tuple_types(self, value):
        self.decoder.tuple_types = value

    def windows(self, uint32_t stream=0):
        """The flow-control windows of ``stream`` alone (0: of the connection) as
        ``(send, receive)``: how many bytes we may send now, and the peer may;
        InvalidStream for a stream not open."""
        cdef Stream s
        if stream == 0:
            return self.send_window, self.recv_window
        s = self.streams.get(stream)
        if s is None:
            raise InvalidStream("stream %d is not open" % stream)
        return s.send_window, s.recv_window

    def priority_order(self, streams):
        """The open streams among ``streams`` (ids) in the order the scheduler serves them
        (docs/raw.md, Priorities); ids of streams not open are left out."""
        cdef list keys = []
        cdef Stream s
        for sid in streams:
            s = self.streams.get(sid)
            if s is not None:
                keys.append(sched_key(self, s))
        keys.sort()
        return [key & MAX_STREAM_ID for key in keys]

    def cork(self):
        """Hold the output of the calls that follow until uncork(), which hands it to
        on_writev in one call (a response's head and body in one write). A close
        uncorks."""
        self.corked = True

    def uncork(self):
        """Hand what was held since cork() to on_writev (at once, or, inside an event,
        when the call that delivered it ends)."""
        self.corked = False
        if not self.depth:
            flush(self)

    def update_settings(self, **changes):
        """Change our settings; in HTTP/2, send them (they apply once acknowledged)."""
        change_settings(self, changes, True)

    def preface_settings(self, **changes):
        """With ``defer_preface``, before send_preface(): change the settings our first
        SETTINGS frame will carry, writing nothing now."""
        if not self.defer_preface or self.preface_sent:
            raise UsageError("preface_settings(): only with defer_preface, before send_preface()")
        change_settings(self, changes, False)

    # -- the seed's methods ----------------------------------------------------------

    def connection_made(self, bint is_http2):
        """Start the connection (cno_begin): in HTTP/2 a client writes the preface, and
        both sides write their SETTINGS (with ``defer_preface``: not until
        :meth:`send_preface`)."""
        if self.started:
            raise UsageError("connection_made() was already called")
        self.started = True
        if not is_http2:
            self.state = ST_H1_HEAD
            return
        self.h2 = True
        self.state = ST_SETTINGS if self.client else ST_PREFACE
        if not self.defer_preface:
            self.send_preface()

    def send_preface(self):
        """HTTP/2: write what connection_made(True) held back with ``defer_preface``: a
        client's preface and our first SETTINGS (RFC 9113 3.4)."""
        cdef dict diff = {}
        check_open(self)
        if self.preface_sent:
            raise UsageError("send_preface(): the preface was sent")
        self.preface_sent = True
        self.depth += 1
        try:
            if self.client:
                buf_put(&self.out, <const uint8_t*> PyBytes_AS_STRING(PREFACE), 24)
            if self.settings_order is not None:
                for name in self.settings_order:
                    key = SETTINGS_NAMES[name]
                    diff[key] = self.wanted[key]
            for key in range(1, SETTINGS_COUNT):
                if self.wanted[key] != STANDARD[key] and key not in diff:
                    diff[key] = self.wanted[key]
            write_settings(self, diff)
            if self.first_settings_in_force:
                apply_local_settings(self, self.settings_queue.pop())
        finally:
            self.depth -= 1
            flush(self)

    def upgraded(self, settings=None):
        """HTTP/2 after an h2c upgrade the caller carried out itself (RFC 7540 3.2, kept
        by RFC 9113 3.1): stream 1 is the upgraded request, half-closed (local) on a
        client, whose request went out as HTTP/1.1, and half-closed (remote) on a server.
        A server passes ``settings``, the decoded HTTP2-Settings payload, applied as the
        client's first SETTINGS (the 101 acknowledges them: no ACK is sent)."""
        cdef Stream s
        cdef int r = 0
        check_open(self)
        if not self.h2 or self.streams or self.last_stream[LOCAL] or self.last_stream[REMOTE]:
            raise UsageError("upgraded(): only on a new HTTP/2 connection")
        self.depth += 1
        try:
            if settings:
                if len(settings) % 6:
                    raise UsageError("HTTP2-Settings must hold 6-byte settings")
                r = apply_remote_settings(self, <const uint8_t*> PyBytes_AS_STRING(settings),
                                          len(settings))
            if r == 0:
                s = new_stream(self, 1, self.client)
                if self.client:
                    s.w_state = W_CLOSED
                else:
                    s.r_state = R_CLOSED
                if self.ev_stream_start is not None:
                    self.ev_stream_start(self, s.key)
        finally:
            self.depth -= 1
            end_call(self)
        if r == CONN_ERROR:
            raise_connection_error(self)

    def connection_lost(self):
        """The transport is gone (cno_eof): every open stream ends with CANCEL/LOCAL,
        then on_close fires."""
        cdef Stream s
        if not self.h2 and (self.state == ST_H1_UNTIL_CLOSE or self.state == ST_H1_TUNNEL) \
                and self.h1_rs is not None and not self.lost:
            # A body read until the connection closes, or a tunnel: EOF is its end.
            s = self.h1_rs
            self.state = ST_H1_IGNORE
            self.h1_rs = None
            if s.r_state == R_DATA:
                end_of_message(self, s, None)
        self.state = ST_CLOSED
        self.is_closed = True
        self.lost = True
        for s in list(self.streams.values()):
            end_stream(self, s, CANCEL, LOCAL)
        if not self.close_fired:
            self.close_fired = True
            if self.ev_close is not None:
                self.ev_close(self)

    def data_received(self, data):
        """Feed bytes from the transport (bytes, bytearray, memoryview, any buffer)."""
        cdef Py_buffer view
        cdef int r = 0
        if self.is_closed:
            if self.error_class is not None or self.lost:
                raise closed_error(self)
            if self.state != ST_GOAWAYS:
                return   # shut down gracefully: late bytes from the peer are of no interest
        if not self.started:
            raise UsageError("call connection_made() first")
        if self.consuming:
            raise UsageError("data_received() called from an event handler")
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        if self.data_views:
            self.in_obj = data
            self.in_base = <const uint8_t*> view.buf
            self.in_len = view.len
        try:
            r = feed(self, <const uint8_t*> view.buf, view.len)
        finally:
            self.in_obj = self.in_view = None
            PyBuffer_Release(&view)
            if self.depth == 0:
                flush(self)
                fire_close(self)
        if r == CONN_ERROR:
            raise_connection_error(self)

    def write_head(self, uint32_t stream, int code, method, path, headers, bint final):
        """Send a request (client: code 0) or a response (server: method and path "")."""
        check_open(self)
        self.depth += 1
        try:
            if not self.h2:
                if self.client:
                    write_request_h1(self, stream, method, path, headers, final)
                else:
                    write_response_h1(self, stream, code, headers, final)
            elif self.client:
                write_request(self, stream, method, path, headers, final)
            else:
                write_response(self, stream, code, headers, final)
        finally:
            self.depth -= 1
            end_call(self)

    def write_push(self, uint32_t stream, method, path, headers, uint32_t promised=0):
        """Server push (RFC 9113 8.4); returns the promised stream id, or 0 if pushing is
        not possible now. ``promised``: the even id to promise (above the last one), else
        the next one."""
        cdef uint32_t got = 0
        check_open(self)
        if self.client:
            raise UsageError("only a server can push")
        if not self.h2:
            return 0   # (HTTP/1.1 has no push)
        self.depth += 1
        try:
            got = write_push(self, stream, method, path, headers, promised)
        finally:
            self.depth -= 1
            end_call(self)
        return got

    def write_padded(self, uint32_t stream, data, bint final, int pad):
        """HTTP/2: write_data as one DATA frame padded with ``pad`` zero bytes (0-255,
        RFC 9113 6.1), counted by flow control with the payload; UsageError unless it
        all fits the frame size and the windows. Returns len(data)."""
        cdef Py_ssize_t sent
        check_open(self)
        if not self.h2:
            raise UsageError("write_padded(): HTTP/2 only")
        if pad < 0:
            raise UsageError("padding must be 0 to 255 bytes")
        self.depth += 1
        try:
            sent = write_padded_data(self, stream, data, final, pad)
        finally:
            self.depth -= 1
            end_call(self)
        return sent

    def write_data(self, uint32_t stream, data, bint final):
        """Send body bytes; returns how many the flow-control windows accepted."""
        cdef Py_ssize_t sent
        cdef Stream s
        check_open(self)
        self.depth += 1
        try:
            if self.h2:
                sent = write_data(self, stream, data, final)
            else:
                s = writable_stream(self, stream)
                if s.w_state != W_DATA:
                    raise InvalidStream("stream %d: write_head first" % stream)
                sent = write_data_h1(self, s, data, final)
        finally:
            self.depth -= 1
            end_call(self)
        return sent

    def write_tail(self, uint32_t stream, trailers=None):
        """End a message with trailers (HEADERS + END_STREAM), or just END_STREAM."""
        cdef Stream s
        check_open(self)
        if not trailers:
            return self.write_data(stream, b"", True)
        self.depth += 1
        try:
            if self.h2:
                write_trailers(self, stream, trailers)
            else:
                s = writable_stream(self, stream)
                if s.w_state != W_DATA:
                    raise InvalidStream("stream %d: write_head first" % stream)
                write_trailers_h1(self, s, trailers)
        finally:
            self.depth -= 1
            end_call(self)

    def write_reset(self, uint32_t stream, uint32_t code):
        """RST_STREAM (a no-op for an unknown or closed stream); stream 0: shutdown."""
        cdef Stream s
        if stream == 0:
            return self.shutdown(code)
        check_open(self)
        s = self.streams.get(stream)
        if s is None:
            return
        self.depth += 1
        try:
            if self.h2:
                reset_stream(self, stream, code)
            else:
                # HTTP/1.1 cannot abort one message: the connection goes with it.
                self.goaway_sent = True
                end_stream(self, s, code, LOCAL)
                for s in list(self.streams.values()):
                    end_stream(self, s, CANCEL, LOCAL)
        finally:
            self.depth -= 1
            end_call(self)

    def write_ping(self, data):
        """Send a PING with 8 bytes of data; on_pong fires with them when answered."""
        check_open(self)
        if not self.h2:
            raise UsageError("PING is HTTP/2 only")
        data = bytes(data)
        if len(data) != 8:
            raise UsageError("PING data must be 8 bytes")
        self.depth += 1
        try:
            write_simple_frame(self, FRAME_PING, 0, 0, <const uint8_t*> PyBytes_AS_STRING(data), 8)
        finally:
            self.depth -= 1
            end_call(self)

    def write_priority(self, uint32_t stream, int urgency, bint incremental=False):
        """Set an open stream's priority (RFC 9218). An HTTP/2 client also tells the
        server, with a PRIORITY_UPDATE frame, unless the server said it does not read them
        or the response is complete; a server (which sends none, 7.1) and HTTP/1.1 only
        change the order here."""
        cdef Stream s
        cdef bytes payload
        check_open(self)
        if not 0 <= urgency <= 7:
            raise UsageError("urgency must be 0 to 7 (RFC 9218 4.1)")
        s = self.streams.get(stream)
        if s is None:
            raise InvalidStream("stream %d is not open" % stream)
        s.urgency = urgency
        s.incremental = incremental
        # 2.1.1: "until the client receives the SETTINGS frame from the server, the client
        # SHOULD send both ..." and after a 0 (or none) "it SHOULD stop sending
        # PRIORITY_UPDATE frames"; 7.1: only for streams "where data might still be
        # received".
        if not (self.client and self.h2 and s.r_state != R_CLOSED and (
                not self.got_settings_frame or self.remote[S_NO_RFC7540_PRIORITIES] == 1)):
            return
        payload = int(stream).to_bytes(4, "big") + (
            (b"u=%d, i" if incremental else b"u=%d") % urgency)
        self.depth += 1
        try:
            write_simple_frame(self, FRAME_PRIORITY_UPDATE, 0, 0,
                               <const uint8_t*> PyBytes_AS_STRING(payload), len(payload))
        finally:
            self.depth -= 1
            end_call(self)

    def write_frame(self, int type, int flags, uint32_t stream, payload):
        """Send a raw frame: PRIORITY or an extension type (>= 0xa) only."""
        check_open(self)
        if not self.h2:
            raise UsageError("frames are HTTP/2 only")
        payload = bytes(payload)
        if type != FRAME_PRIORITY and type < 0xA:
            raise UsageError("write_frame only sends PRIORITY and extension frames")
        if not 0 <= type <= 0xFF or not 0 <= flags <= 0xFF or stream > MAX_STREAM_ID:
            raise UsageError("frame type, flags or stream out of range")
        if len(payload) > self.remote[S_MAX_FRAME_SIZE]:
            raise UsageError("payload larger than the peer's MAX_FRAME_SIZE")
        self.depth += 1
        try:
            write_simple_frame(self, type, flags, stream,
                               <const uint8_t*> PyBytes_AS_STRING(payload), len(payload))
        finally:
            self.depth -= 1
            end_call(self)

    def open_flow(self, uint32_t stream, uint32_t delta):
        """Credit delta consumed bytes of stream back to the peer (manual flow control);
        stream 0 grows the connection window by delta."""
        cdef Stream s
        check_open(self)
        if delta == 0 or not self.h2:
            return   # (HTTP/1.1 has no flow control of its own)
        self.depth += 1
        try:
            if stream == 0:
                if self.recv_window + delta > MAX_WINDOW:
                    raise UsageError("the connection window would exceed 2^31-1")
                self.recv_window += delta
                if not self.flow_exact:
                    self.recv_target += delta
                write_window_update(self, 0, delta)
            elif self.flow_exact:
                s = self.streams.get(stream)
                if s is not None and s.r_state != R_CLOSED:
                    if s.recv_window + delta > MAX_WINDOW:
                        raise UsageError("the stream window would exceed 2^31-1")
                    s.recv_window += delta
                    write_window_update(self, stream, delta)
            else:
                s = self.streams.get(stream)
                if s is not None and s.r_state == R_CLOSED:
                    s = None
                if self.manual_flow:
                    # Consumed data: credit the stream (while it still reads) and the
                    # connection, even after the stream ended, or the window would leak.
                    credit(self, s, delta)
                elif s is not None:
                    # Automatic mode already credits what arrives: this grows the window.
                    s.recv_window += delta
                    write_window_update(self, stream, delta)
        finally:
            self.depth -= 1
            end_call(self)

    def shutdown(self, uint32_t code=NO_ERROR):
        """Graceful shutdown: GOAWAY with the last peer stream; open streams finish."""
        shutdown(self, code, -1, None)

    def write_goaway(self, uint32_t code, last_stream=None, bytes debug=None):
        """shutdown(code) with the GOAWAY's other fields given (RFC 9113 6.8):
        ``last_stream`` as its last-stream-id, ``debug`` as its debug data; it is written
        even after a GOAWAY was (a graceful shutdown may be followed by a final one)."""
        shutdown(self, code, -1 if last_stream is None else <uint32_t> last_stream,
                 debug if debug else None)

    def close(self):
        """A hook (libcno's binding calls it on errors); does nothing by default."""

    # -- events (the defaults do nothing) ----------------------------------------------

    def on_writev(self, chunks): pass
    def on_stream_start(self, stream): pass
    def on_stream_end(self, stream, code, side): pass
    def on_flow_increase(self, stream): pass
    def on_message_head(self, stream, code, method, path, headers): pass
    def on_message_data(self, stream, data): pass
    def on_message_tail(self, stream, trailers): pass
    def on_message_push(self, stream, parent, method, path, headers): pass
    def on_frame(self, frame): pass
    def on_frame_send(self, frame): pass
    def on_pong(self, data): pass
    def on_settings(self): pass
    def on_close(self): pass
    def on_upgrade(self, stream): pass
    def on_priority_update(self, stream, urgency, incremental): pass


def _find_events(cls):
    """The subclass's own event methods, as callables taking the connection first."""
    found = []
    for name in _EVENT_NAMES:
        attr = getattr(cls, name)
        if attr is getattr(Connection, name):
            found.append(None)
            continue
        raw = inspect.getattr_static(cls, name)
        if isinstance(raw, (staticmethod, classmethod)):
            found.append(lambda self, *args, _f=attr: _f(*args))
        else:
            found.append(attr)
    return tuple(found)


# ----------------------------------------------------------------------------------------
# Writing, continued

cdef int write_request(Connection c, uint32_t sid, object method, object path, object headers,
                       bint final) except -1:
    cdef Stream s = find_stream(c, sid)
    cdef list fields
    cdef uint32_t limit
    if s is not None:
        raise InvalidStream("stream %d is already open" % sid)
    if c.goaway_received or c.goaway_sent:
        raise ConnectionClosed("the connection is going away: no new streams")
    if sid > MAX_STREAM_ID or (c.last_stream[LOCAL] >= MAX_STREAM_ID - 1 and sid > c.last_stream[LOCAL]):
        # 5.1.1: stream ids are exhausted: say goodbye and refuse, cleanly.
        if not c.goaway_sent:
            write_goaway(c, NO_ERROR)
        raise ConnectionClosed("stream ids exhausted; open a new connection")
    if not (sid & 1) or sid <= c.last_stream[LOCAL]:
        raise InvalidStream("stream %d: a new request needs an odd id above %d (next_stream)"
                            % (sid, c.last_stream[LOCAL]))
    limit = c.remote[S_MAX_CONCURRENT_STREAMS] if c.remote_settings_seen \
        else min(c.remote[S_MAX_CONCURRENT_STREAMS], <uint32_t> CONSERVATIVE_STREAMS)
    if c.stream_count[LOCAL] >= limit:
        raise WouldBlock("the peer's max_concurrent_streams (%d) is reached" % limit)
    if c.pseudo_in_headers:
        fields = given_fields(c, headers)
        method = given_pseudo(fields, b":method")
    else:
        method = field_object(method)
        path = field_object(path)
        if c.method_field is None or <object> PyTuple_GET_ITEM(c.method_field, 1) is not method:
            c.method_field = (b":method", method)
        fields = [c.method_field, (b":path", path)]
        check_headers(c, fields, headers, FIELDS_REQUEST)
    s = new_stream(c, sid, True)
    s.head_request = bytes_equal_obj(method, "HEAD", 4)
    if c.hdr_prio:
        apply_priority(s, c.hdr_prio)
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, sid)
    write_header_block(c, FRAME_HEADERS, FLAG_END_STREAM if final else 0, sid, 0, fields)
    s.w_state = W_CLOSED if final else W_DATA
    return 0


cdef Stream writable_stream(Connection c, uint32_t sid):
    cdef Stream s = find_stream(c, sid)
    if s is None:
        raise InvalidStream("stream %d is not open" % sid)
    if s.w_state == W_CLOSED:
        raise InvalidStream("stream %d is closed for writing" % sid)
    return s


cdef int write_response(Connection c, uint32_t sid, int code, object headers,
                        bint final) except -1:
    cdef Stream s = writable_stream(c, sid)
    cdef list fields
    if s.w_state != W_HEADERS:
        raise InvalidStream("stream %d: the response head was already sent" % sid)
    if c.pseudo_in_headers:
        fields = given_fields(c, headers)
        code = <int> parse_digits_obj(given_pseudo(fields, b":status"))
    elif code < 100 or code > 999:
        raise UsageError("invalid status code %d" % code)
    if code == 101 and not c.status_101:
        raise UsageError("101 Switching Protocols does not exist in HTTP/2")
    if code < 200 and final:
        raise UsageError("a 1xx response cannot end the stream")
    if not c.pseudo_in_headers:
        fields = list_with_room(16)
        list_push(fields, STATUS_FIELDS[code])
        check_headers(c, fields, headers, FIELDS_RESPONSE)
    if c.hdr_prio:
        apply_priority(s, c.hdr_prio)   # RFC 9218 8: our view overrides where it speaks
    write_header_block(c, FRAME_HEADERS, FLAG_END_STREAM if final else 0, sid, 0, fields)
    if code >= 200:
        s.saw_final_head = True
        s.w_no_content = code == 204 or code == 304
        s.w_state = W_CLOSED if final else W_DATA
        if final:
            return maybe_end(c, s)
    return 0


cdef Py_ssize_t write_data(Connection c, uint32_t sid, object data, bint final) except -1:
    cdef Stream s = writable_stream(c, sid)
    cdef Py_buffer view
    cdef Py_ssize_t n, total, sent = 0, take, max_frame = c.remote[S_MAX_FRAME_SIZE]
    cdef const uint8_t* p
    if s.w_state != W_DATA:
        if s.w_state == W_HEADERS and c.data_before_head and not s.local:
            s.w_state = W_DATA   # (a response without a head: malformed, RFC 9113 8.1)
        else:
            raise InvalidStream("stream %d: write_head first" % sid)
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*> view.buf
        total = n = view.len
        if n and s.w_no_content:
            raise UsageError("stream %d: a 204 or 304 response has no content" % sid)
        if s.head_request and not s.local:
            n = 0   # a response to HEAD has no content: dropped, but reported as sent
        elif n > min(c.send_window, s.send_window):
            n = max(0, min(c.send_window, s.send_window))
            final = False   # what does not fit is still to come
            wait_for_flow(c, s)
        if n == 0 and not final:
            return 0 if not (s.head_request and not s.local) else total
        if n >= c.zero_copy_threshold and may_borrow(c, data, n):
            write_borrowed_frames(c, sid, data, n, n == total, final)
        else:
            while True:
                take = min(n - sent, max_frame)
                put_frame_header(&c.out, <uint32_t> take, FRAME_DATA,
                                 FLAG_END_STREAM if final and sent + take == n else 0, sid)
                buf_put(&c.out, p + sent, take)
                sent += take
                if sent >= n:
                    break
        c.send_window -= n
        s.send_window -= n
        if s.incremental and n:
            c.rr_last[s.urgency] = sid   # (round-robin: see sched_key)
        if c.ev_frame_send is not None:
            c.ev_frame_send(c, Frame(FRAME_DATA, FLAG_END_STREAM if final else 0, sid,
                                     PyBytes_FromStringAndSize(<char*> p, n)))
    finally:
        PyBuffer_Release(&view)
    if final:
        s.w_state = W_CLOSED
        maybe_end(c, s)
    return total if (s.head_request and not s.local) else n


cdef Py_ssize_t write_padded_data(Connection c, uint32_t sid, object data, bint final,
                                  int pad) except -1:
    """write_data with padding (RFC 9113 6.1): one frame, PADDED, its pad length byte and
    `pad` zero bytes counted by flow control with the payload."""
    cdef Stream s = writable_stream(c, sid)
    cdef Py_buffer view
    cdef Py_ssize_t n, size
    cdef uint8_t b
    if s.w_state != W_DATA:
        raise InvalidStream("stream %d: write_head first" % sid)
    if pad > 255:
        raise UsageError("padding is at most 255 bytes")
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = view.len
        size = n + 1 + pad
        if size > c.remote[S_MAX_FRAME_SIZE] or size > min(c.send_window, s.send_window):
            raise UsageError("a padded DATA frame must fit the frame size and the windows")
        put_frame_header(&c.out, <uint32_t> size, FRAME_DATA,
                         FLAG_PADDED | (FLAG_END_STREAM if final else 0), sid)
        b = <uint8_t> pad
        buf_put(&c.out, &b, 1)
        buf_put(&c.out, <const uint8_t*> view.buf, n)
        buf_reserve(&c.out, pad)
        memset(c.out.data + c.out.len, 0, pad)
        c.out.len += pad
        c.send_window -= size
        s.send_window -= size
    finally:
        PyBuffer_Release(&view)
    if final:
        s.w_state = W_CLOSED
        maybe_end(c, s)
    return n


cdef int write_borrowed_frames(Connection c, uint32_t sid, object data, Py_ssize_t n,
                               bint whole, bint final) except -1:
    """write_data's frames without copying the payload (the first n bytes of data; whole:
    that is all of it): each frame's header, then a slice of the caller's buffer, or the
    bytes object itself when it is the whole payload of one frame."""
    cdef Py_ssize_t sent = 0, take, max_frame = c.remote[S_MAX_FRAME_SIZE]
    cdef object view
    if whole and n <= max_frame and PyBytes_CheckExact(data):
        put_frame_header(&c.out, <uint32_t> n, FRAME_DATA, FLAG_END_STREAM if final else 0, sid)
        return out_borrow(c, data)
    view = byte_view(data)
    while sent < n:
        take = min(n - sent, max_frame)
        put_frame_header(&c.out, <uint32_t> take, FRAME_DATA,
                         FLAG_END_STREAM if final and sent + take == n else 0, sid)
        out_borrow(c, view[sent:sent + take])
        sent += take
    return 0


cdef int write_trailers(Connection c, uint32_t sid, object trailers) except -1:
    cdef Stream s = writable_stream(c, sid)
    if s.w_state != W_DATA:
        raise InvalidStream("stream %d: write_head first" % sid)
    cdef list fields = []
    if c.pseudo_in_headers:
        fields = given_fields(c, trailers)
    else:
        check_headers(c, fields, trailers, FIELDS_TRAILERS)
    write_header_block(c, FRAME_HEADERS, FLAG_END_STREAM, sid, 0, fields)
    s.w_state = W_CLOSED
    return maybe_end(c, s)


cdef list given_fields(Connection c, object headers):
    """pseudo_in_headers: the caller's header list as it is written, pseudo-header fields
    included, unchecked (the caller validates); sensitive ones as the encoder reads them."""
    cdef list out
    cdef Py_ssize_t i
    c.hdr_prio = 0
    c.hdr_plain = False
    if headers is None:
        return []
    out = list(headers)
    if c.utf8_fields:
        for i in range(len(out)):
            item = out[i]
            n = item[0]
            v = item[1]
            if (type(n) is str and not (<str> n).isascii()) or \
                    (type(v) is str and not (<str> v).isascii()):
                sensitive = bool(item[2]) if len(item) == 3 else not getattr(item, "indexable", True)
                n = (<str> n).encode("utf-8") if type(n) is str else n
                v = (<str> v).encode("utf-8") if type(v) is str else v
                out[i] = (n, v, True) if sensitive else (n, v)
    return out


cdef object given_pseudo(list fields, bytes name):
    """The value of the pseudo-header field `name` among `fields` (str or bytes names),
    or None."""
    cdef Py_ssize_t n
    cdef const uint8_t* p
    for item in fields:
        field = field_object(item[0])
        p = field_ptr(field, &n)
        if n == 0 or p[0] != 0x3A:
            return None   # (pseudo-header fields come first)
        if bytes_equal(p, n, <const char*> name, len(name)):
            return field_object(item[1])
    return None


cdef int64_t parse_digits_obj(object value) except -2:
    """A :status value's number, or 0 when there is none (absent or not digits)."""
    cdef Py_ssize_t n
    cdef const uint8_t* p
    cdef int64_t v
    if value is None:
        return 0
    p = field_ptr(value, &n)
    v = parse_digits(p, n)
    return v if v > 0 else 0


cdef uint32_t write_push(Connection c, uint32_t parent_id, object method, object path,
                         object headers, uint32_t want=0) except? 0:
    cdef Stream parent = find_stream(c, parent_id)
    cdef Stream s
    cdef uint32_t promised
    cdef list fields, user
    if (c.remote[S_ENABLE_PUSH] == 0 or parent is None or parent.w_state == W_CLOSED
            or parent.local or c.goaway_received or c.goaway_sent):
        return 0
    if c.stream_count[LOCAL] >= c.remote[S_MAX_CONCURRENT_STREAMS]:
        return 0
    promised = c.last_stream[LOCAL] + 2 if c.last_stream[LOCAL] else 2
    if want:
        if want & 1 or want < promised:
            raise InvalidStream("stream %d: a promised stream needs an even id from %d"
                                % (want, promised))
        promised = want
    if promised > MAX_STREAM_ID:
        return 0
    if c.pseudo_in_headers:
        user = fields = given_fields(c, headers)
        method = given_pseudo(fields, b":method")
        path = given_pseudo(fields, b":path")
    else:
        method = field_object(method)
        path = field_object(path)
        user = []
        check_headers(c, user, headers, FIELDS_REQUEST)
        fields = [(b":method", method), (b":path", path)]
        fields.extend(user)
    write_header_block(c, FRAME_PUSH_PROMISE, 0, parent_id, promised, fields)
    s = new_stream(c, promised, True)
    s.r_state = R_CLOSED    # reserved (local): the request is complete, we answer it
    s.head_request = bytes_equal_obj(method, "HEAD", 4)
    if c.hdr_prio:
        apply_priority(s, c.hdr_prio)   # (the promised request's priority field)
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, promised)
    if c.bytes_headers:
        user = [(as_bytes_field(h[0]), as_bytes_field(h[1])) for h in user]
    else:
        user = [(as_str_field(h[0]), as_str_field(h[1])) for h in user]
    if c.bytes_headers:
        method, path = as_bytes_field(method), as_bytes_field(path)
    else:
        method, path = as_str_field(method), as_str_field(path)
    if c.ev_message_head is not None:
        c.ev_message_head(c, promised, 0, method, path, user)
    if promised in c.streams and c.ev_message_tail is not None:
        c.ev_message_tail(c, promised, None)
    return promised


cdef object as_bytes_field(object o):
    return o if PyBytes_CheckExact(o) else (<str> o).encode("latin-1")


cdef object as_str_field(object o):
    cdef Py_ssize_t n
    cdef const uint8_t* p
    if PyBytes_CheckExact(o):
        p = field_ptr(o, &n)
        return PyUnicode_DecodeLatin1(<const char*> p, n, NULL)
    return o


include "_h1.pxi"
