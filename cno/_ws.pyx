# cython: language_level=3
"""The WebSocket framing codec (RFC 6455) with permessage-deflate (RFC 7692); see
docs/websocket.md.

Bytes in -> frames parsed in place -> whole messages out as (opcode, payload) events;
calls in -> one frame out as bytes. Role-agnostic: client and server differ only in the
mask bit they expect and send, and in which side's deflate parameters are their own.
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.unicode cimport PyUnicode_DecodeUTF8, PyUnicode_AsUTF8AndSize, PyUnicode_AsUTF8String

from cno._buffer cimport WriteBuffer, buf_reserve, buf_put, buf_free, buf_trim

from os import urandom
import zlib

from cno.errors import UsageError, WebSocketError

cdef extern from "Python.h":
    bint PyUnicode_Check(object o)
    bint PyUnicode_IS_ASCII(object o)

OP_CONT = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10

# uvicorn's --ws-max-size default: large enough for any sane message, small enough that
# a peer cannot make one connection hold gigabytes.
DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024

cdef enum:
    C_CONT = 0
    C_TEXT = 1
    C_BINARY = 2
    C_CLOSE = 8
    C_PING = 9
    C_PONG = 10

    ST_HEADER = 0      # reading a frame header (possibly saved in hdr)
    ST_PAYLOAD = 1     # inside a frame's payload
    ST_CLOSED = 2      # a close frame arrived: later input is ignored (RFC 6455 5.5.1)
    ST_FAILED = 3      # a violation: every later feed() raises it again

    ENTROPY = 1024     # os.urandom batch: 256 mask keys per system call

# A buffer that grew past this for one large message is given back once the message is out.
cdef Py_ssize_t TRIM_ABOVE = 65536
# RFC 7692 7.2.1/7.2.2: the empty stored block a sync flush ends with, removed on the wire.
cdef bytes DEFLATE_TAIL = b"\x00\x00\xff\xff"
cdef uint64_t HIGH_BITS = 0x8080808080808080ULL


# ----------------------------------------------------------------------------------------
# UTF-8 (RFC 3629; Unicode Table 3-7), as a DFA over byte classes so that validation can
# stop and resume at any byte: text fragments and feed() chunks split code points anywhere.

cdef enum:
    U_ACCEPT = 0
    U_REJECT = 1
    U_NEED1 = 2        # one continuation byte 80..BF to go
    U_NEED2 = 3        # two to go
    U_E0 = 4           # after E0: A0..BF (no overlong 3-byte forms)
    U_ED = 5           # after ED: 80..9F (no surrogates D800..DFFF)
    U_NEED3 = 6        # three to go
    U_F0 = 7           # after F0: 90..BF (no overlong 4-byte forms)
    U_F4 = 8           # after F4: 80..8F (nothing above U+10FFFF)
    U_STATES = 9

    K_ASCII = 0        # 00..7F
    K_C80 = 1          # 80..8F
    K_C90 = 2          # 90..9F
    K_CA0 = 3          # A0..BF
    K_BAD = 4          # C0, C1, F5..FF: never in UTF-8
    K_L2 = 5           # C2..DF
    K_E0 = 6
    K_L3 = 7           # E1..EC, EE, EF
    K_ED = 8
    K_F0 = 9
    K_L4 = 10          # F1..F3
    K_F4 = 11
    K_CLASSES = 12

cdef uint8_t U_CLASS[256]
cdef uint8_t U_NEXT[U_STATES * K_CLASSES]


cdef void _utf8_tables() noexcept:
    cdef int b, s, k
    for b in range(256):
        U_CLASS[b] = (K_ASCII if b < 0x80 else K_C80 if b < 0x90 else K_C90 if b < 0xA0
                      else K_CA0 if b < 0xC0 else K_BAD if b < 0xC2 else K_L2 if b < 0xE0
                      else K_E0 if b == 0xE0 else K_ED if b == 0xED else K_L3 if b < 0xF0
                      else K_F0 if b == 0xF0 else K_L4 if b < 0xF4 else K_F4 if b == 0xF4
                      else K_BAD)
    for s in range(U_STATES):
        for k in range(K_CLASSES):
            U_NEXT[s * K_CLASSES + k] = U_REJECT
    # From a boundary: a lead byte says how many continuation bytes follow.
    U_NEXT[U_ACCEPT * K_CLASSES + K_ASCII] = U_ACCEPT
    U_NEXT[U_ACCEPT * K_CLASSES + K_L2] = U_NEED1
    U_NEXT[U_ACCEPT * K_CLASSES + K_E0] = U_E0
    U_NEXT[U_ACCEPT * K_CLASSES + K_L3] = U_NEED2
    U_NEXT[U_ACCEPT * K_CLASSES + K_ED] = U_ED
    U_NEXT[U_ACCEPT * K_CLASSES + K_F0] = U_F0
    U_NEXT[U_ACCEPT * K_CLASSES + K_L4] = U_NEED3
    U_NEXT[U_ACCEPT * K_CLASSES + K_F4] = U_F4
    for k in (K_C80, K_C90, K_CA0):   # any continuation byte
        U_NEXT[U_NEED1 * K_CLASSES + k] = U_ACCEPT
        U_NEXT[U_NEED2 * K_CLASSES + k] = U_NEED1
        U_NEXT[U_NEED3 * K_CLASSES + k] = U_NEED2
    U_NEXT[U_E0 * K_CLASSES + K_CA0] = U_NEED1
    U_NEXT[U_ED * K_CLASSES + K_C80] = U_NEED1
    U_NEXT[U_ED * K_CLASSES + K_C90] = U_NEED1
    U_NEXT[U_F0 * K_CLASSES + K_C90] = U_NEED2
    U_NEXT[U_F0 * K_CLASSES + K_CA0] = U_NEED2
    U_NEXT[U_F4 * K_CLASSES + K_C80] = U_NEED2

_utf8_tables()


cdef uint32_t utf8_scan(uint32_t state, const uint8_t* s, Py_ssize_t n) noexcept:
    """The DFA state after s[:n], starting from `state`; U_REJECT as soon as a byte
    cannot continue any valid sequence."""
    cdef Py_ssize_t i = 0
    cdef uint64_t w
    while i < n:
        if state == U_ACCEPT:
            # ASCII fast path: 8 bytes a test while between code points.
            while i + 8 <= n:
                memcpy(&w, s + i, 8)
                if w & HIGH_BITS:
                    break
                i += 8
            while i < n and s[i] < 0x80:
                i += 1
            if i == n:
                break
        state = U_NEXT[state * K_CLASSES + U_CLASS[s[i]]]
        if state == U_REJECT:
            return U_REJECT
        i += 1
    return state


# ----------------------------------------------------------------------------------------
# Masking (RFC 6455 5.3): payload[i] ^ key[i % 4], done as a 64-bit XOR with the key
# repeated twice (rotated to the frame's phase), unaligned loads through memcpy.

cdef inline void xor_mask(uint8_t* dst, const uint8_t* src, Py_ssize_t n,
                          const uint8_t* key, uint32_t phase) noexcept:
    cdef uint8_t k[8]
    cdef uint64_t m, w
    cdef Py_ssize_t i
    for i in range(8):
        k[i] = key[(phase + i) & 3]
    memcpy(&m, k, 8)
    # A counted loop over whole words: gcc and clang vectorise it (with a run-time check
    # that dst and src do not overlap), 16 or 32 bytes an instruction.
    cdef Py_ssize_t j, words = n >> 3
    for j in range(words):
        memcpy(&w, src + 8 * j, 8)
        w ^= m
        memcpy(dst + 8 * j, &w, 8)
    i = words << 3
    while i < n:
        dst[i] = src[i] ^ k[i & 7]
        i += 1


cdef inline Py_ssize_t header_need(const uint8_t* h, Py_ssize_t have) noexcept:
    """Length of the frame header starting at h (RFC 6455 5.2), given its first `have`
    bytes: 2 until the second byte says more."""
    if have < 2:
        return 2
    cdef Py_ssize_t need = 2
    cdef uint8_t l7 = h[1] & 0x7F
    if l7 == 126:
        need += 2
    elif l7 == 127:
        need += 8
    if h[1] & 0x80:
        need += 4
    return need


cdef inline bint valid_close_code(int code) noexcept:
    # RFC 6455 7.4.1/7.4.2 and the IANA registry: 1004 is reserved, 1005, 1006 and 1015
    # must never be on the wire, 1016-2999 are unassigned, 3000-4999 are for
    # libraries, frameworks and applications.
    return (1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999)


cdef int window_bits(object bits, str name) except -1:
    # RFC 7692 7.1.2: 8..15.
    if not 8 <= bits <= 15:
        raise UsageError("%s must be 8 to 15, not %r" % (name, bits))
    return bits


# ----------------------------------------------------------------------------------------

cdef class Codec:
    """One WebSocket connection's framing: feed() bytes in, get messages out; message(),
    ping(), pong() and close() return the bytes to send."""

    def __cinit__(self):
        self.entropy = b""   # (mask_key() reads it, even on an object __init__ never saw)

    def __init__(self, bint client, *, max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
                 max_frame_size=None, bint deflate=False,
                 bint server_no_context_takeover=False, bint client_no_context_takeover=False,
                 server_max_window_bits=15, client_max_window_bits=15):
        if max_message_size < 1:
            raise UsageError("max_message_size must be positive")
        if max_frame_size is None:
            max_frame_size = max_message_size
        elif max_frame_size < 1:
            raise UsageError("max_frame_size must be positive")
        server_bits = window_bits(server_max_window_bits, "server_max_window_bits")
        client_bits = window_bits(client_max_window_bits, "client_max_window_bits")
        self.client = client
        self.deflate = deflate
        self.max_message_size = min(max_message_size, 1 << 62)
        self.max_frame_size = min(max_frame_size, 1 << 62)
        # Ours are the parameters named after our side, the peer's after its side.
        self.local_wbits = client_bits if client else server_bits
        self.remote_wbits = server_bits if client else client_bits
        self.local_no_context = client_no_context_takeover if client else server_no_context_takeover
        self.remote_no_context = server_no_context_takeover if client else client_no_context_takeover
        if deflate:
            self.compressor = self.new_compressor()
            self.decompressor = self.new_decompressor()

    cdef object new_compressor(self):
        # zlib refuses wbits=8 for raw deflate (madler/zlib#171) and raises it to 9 for
        # the zlib format: a peer that offers 8 must inflate 9 anyway (as websockets does).
        return zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED,
                                -max(self.local_wbits, 9))

    cdef object new_decompressor(self):
        # A window of 9 bits reads everything an 8-bit one does; 8 itself would reject
        # the 9-bit streams that zlib-based peers send when 8 was agreed (see above).
        return zlib.decompressobj(-max(self.remote_wbits, 9))

    def __dealloc__(self):
        buf_free(&self.msg)
        buf_free(&self.zbuf)

    # ------------------------------------------------------------------------------------
    # Input

    def feed(self, data):
        """Parse `data` (any buffer) and return the complete events, in order."""
        cdef Py_buffer view
        cdef int r
        if self.state == ST_FAILED:
            raise WebSocketError(self.err_code, self.err_reason.decode("ascii"))
        if self.state == ST_CLOSED:
            return []
        events = []
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            r = self.parse(<const uint8_t*> view.buf, view.len, events)
        finally:
            PyBuffer_Release(&view)
        if r > 0:
            # (what came before the error in this call is not lost: it rides the error)
            error = WebSocketError(self.err_code, self.err_reason.decode("ascii"))
            error.events = events
            raise error
        return events

    cdef int fail(self, int code, const char* reason) noexcept:
        self.state = ST_FAILED
        self.err_code = code
        self.err_reason = reason
        return code

    cdef int parse(self, const uint8_t* p, Py_ssize_t n, list events) except -1:
        cdef Py_ssize_t pos = 0, need, take
        cdef const uint8_t* h
        cdef int r
        cdef bytes obj
        cdef str text
        while True:
            if self.state == ST_HEADER:
                if pos == n:
                    return 0
                if self.hdr_len == 0:
                    need = header_need(p + pos, n - pos)
                    if n - pos >= 2 and n - pos >= need:
                        h = p + pos
                        pos += need
                    else:
                        memcpy(self.hdr, p + pos, n - pos)   # < 14 bytes
                        self.hdr_len = n - pos
                        return 0
                else:
                    while True:
                        need = header_need(self.hdr, self.hdr_len)
                        if self.hdr_len >= need:
                            break
                        take = min(need - self.hdr_len, n - pos)
                        if take == 0:
                            return 0
                        memcpy(self.hdr + self.hdr_len, p + pos, take)
                        self.hdr_len += take
                        pos += take
                    h = self.hdr
                    self.hdr_len = 0
                r = self.start_frame(h)
                if r:
                    return r
                # Fast path: a whole unfragmented, uncompressed binary message in this
                # input goes straight from the input into its bytes object.
                if (self.f_opcode == C_BINARY and self.f_fin and not self.m_compressed
                        and self.f_remaining <= <uint64_t> (n - pos)):
                    take = <Py_ssize_t> self.f_remaining
                    if self.f_masked:
                        obj = PyBytes_FromStringAndSize(NULL, take)
                        xor_mask(<uint8_t*> PyBytes_AS_STRING(obj), p + pos, take, self.f_key, 0)
                    else:
                        obj = PyBytes_FromStringAndSize(<const char*> p + pos, take)
                    pos += take
                    self.m_opcode = 0
                    self.state = ST_HEADER
                    events.append((C_BINARY, obj))
                    continue
                # Likewise a whole one-frame text message: CPython's strict UTF-8 decoder
                # rejects exactly what RFC 3629 does (overlongs, surrogates, > U+10FFFF),
                # so it validates while it builds the str; the DFA is for fragments.
                if (self.f_opcode == C_TEXT and self.f_fin and not self.m_compressed
                        and self.f_remaining <= <uint64_t> (n - pos)):
                    take = <Py_ssize_t> self.f_remaining
                    if self.f_masked:
                        buf_reserve(&self.msg, take)
                        xor_mask(self.msg.data, p + pos, take, self.f_key, 0)
                        h = self.msg.data
                    else:
                        h = p + pos
                    try:
                        text = PyUnicode_DecodeUTF8(<const char*> h, take, NULL)
                    except UnicodeDecodeError:
                        return self.fail(1007, "invalid UTF-8 in a text message")
                    pos += take
                    self.m_opcode = 0
                    buf_trim(&self.msg, TRIM_ABOVE)
                    events.append((C_TEXT, text))
                    continue
                self.state = ST_PAYLOAD
            # ST_PAYLOAD
            take = n - pos
            if <uint64_t> take > self.f_remaining:
                take = <Py_ssize_t> self.f_remaining
            if take:
                r = self.payload(p + pos, take)
                if r:
                    return r
                pos += take
                self.f_remaining -= take
            if self.f_remaining:
                return 0
            self.state = ST_HEADER
            r = self.end_frame(events)
            if r:
                return r
            if self.state == ST_CLOSED:
                return 0

    cdef int start_frame(self, const uint8_t* h) noexcept:
        """Read and check a whole frame header (RFC 6455 5.2); a close code on error."""
        cdef uint8_t b0 = h[0], b1 = h[1]
        cdef int opcode = b0 & 0x0F
        cdef bint fin = (b0 & 0x80) != 0, rsv1 = (b0 & 0x40) != 0
        cdef bint masked = (b1 & 0x80) != 0
        cdef uint64_t length = b1 & 0x7F
        cdef int i
        cdef const uint8_t* q = h + 2
        # 5.2: RSV1-3 MUST be 0 unless an extension defines them; permessage-deflate
        # defines RSV1 only (RFC 7692 6).
        if b0 & 0x30:
            return self.fail(1002, "reserved bits RSV2/RSV3 set")
        if rsv1 and not self.deflate:
            return self.fail(1002, "RSV1 set without permessage-deflate")
        # 5.1: clients mask every frame, servers none.
        if masked == self.client:
            return self.fail(1002, "masked frame from a server" if self.client
                             else "unmasked frame from a client")
        if opcode >= 8:
            if opcode > C_PONG:
                return self.fail(1002, "unknown opcode")
            # 5.5: control frames are never fragmented and carry at most 125 bytes.
            if not fin:
                return self.fail(1002, "fragmented control frame")
            if length > 125:
                return self.fail(1002, "control frame longer than 125 bytes")
            # RFC 7692 6.1: control frames are never compressed.
            if rsv1:
                return self.fail(1002, "RSV1 set on a control frame")
        elif opcode == C_CONT:
            # 5.4: a continuation continues a started message...
            if self.m_opcode == 0:
                return self.fail(1002, "continuation frame outside a message")
            # RFC 7692 6.1: RSV1 only on a message's first frame.
            if rsv1:
                return self.fail(1002, "RSV1 set on a continuation frame")
        elif opcode <= C_BINARY:
            # ... and a new message waits until the fragmented one is finished.
            if self.m_opcode != 0:
                return self.fail(1002, "new data frame inside a fragmented message")
        else:
            return self.fail(1002, "unknown opcode")
        if length == 126:
            length = (<uint64_t> q[0] << 8) | q[1]
            q += 2
        elif length == 127:
            length = 0
            for i in range(8):
                length = (length << 8) | q[i]
            q += 8
            if length >> 63:
                return self.fail(1002, "frame length with the most significant bit set")
        # Limits, from the header alone: nothing is buffered for a frame that is too big.
        # (Control frames have their own: 125 bytes.)
        if opcode < 8:
            if length > <uint64_t> self.max_frame_size:
                return self.fail(1009, "frame too big")
            if opcode != C_CONT:
                self.m_opcode = opcode
                self.m_compressed = rsv1
                self.m_utf8 = U_ACCEPT
                self.msg.len = 0
            if not self.m_compressed and (length + <uint64_t> self.msg.len
                                          > <uint64_t> self.max_message_size):
                return self.fail(1009, "message too big")
        self.f_fin = fin
        self.f_opcode = opcode
        self.f_masked = masked
        self.f_remaining = length
        self.f_key_off = 0
        self.ctrl_len = 0
        if masked:
            memcpy(self.f_key, q, 4)
        return 0

    cdef int payload(self, const uint8_t* src, Py_ssize_t n) except -1:
        """Take n payload bytes of the current frame, unmasked into where they belong."""
        cdef uint8_t* dst
        cdef WriteBuffer* b
        if self.f_opcode >= 8:
            dst = self.ctrl + self.ctrl_len
            self.ctrl_len += n
        else:
            b = &self.zbuf if self.m_compressed else &self.msg
            buf_reserve(b, n)
            dst = b.data + b.len
            b.len += n
        if self.f_masked:
            xor_mask(dst, src, n, self.f_key, self.f_key_off)
            self.f_key_off = (self.f_key_off + <uint32_t> n) & 3
        else:
            memcpy(dst, src, n)
        # 8.1: invalid UTF-8 fails the connection as soon as it arrives.
        if self.m_opcode == C_TEXT and self.f_opcode < 8 and not self.m_compressed:
            self.m_utf8 = utf8_scan(self.m_utf8, dst, n)
            if self.m_utf8 == U_REJECT:
                return self.fail(1007, "invalid UTF-8 in a text message")
        return 0

    cdef int end_frame(self, list events) except -1:
        cdef int code
        cdef object reason
        if self.f_opcode == C_CLOSE:
            # 5.5.1: an optional 2-byte code, then an optional UTF-8 reason.
            if self.ctrl_len == 0:
                code, reason = 1005, ""
            elif self.ctrl_len == 1:
                return self.fail(1002, "close frame with a 1-byte payload")
            else:
                code = (self.ctrl[0] << 8) | self.ctrl[1]
                if not valid_close_code(code):
                    return self.fail(1002, "invalid close code")
                if utf8_scan(U_ACCEPT, self.ctrl + 2, self.ctrl_len - 2) != U_ACCEPT:
                    return self.fail(1007, "invalid UTF-8 in a close reason")
                reason = PyUnicode_DecodeUTF8(<char*> self.ctrl + 2, self.ctrl_len - 2, NULL)
            self.close_received = True
            self.state = ST_CLOSED
            events.append((C_CLOSE, (code, reason)))
            return 0
        if self.f_opcode >= 8:
            events.append((self.f_opcode,
                           PyBytes_FromStringAndSize(<char*> self.ctrl, self.ctrl_len)))
            return 0
        if self.m_compressed:
            return self.inflate(events)
        if self.f_fin:
            return self.end_message(events, None)
        return 0

    cdef int inflate(self, list events) except -1:
        """Decompress a compressed frame's payload into the message (RFC 7692 7.2.2),
        never more than the message may still grow by (a deflate bomb is a 1009)."""
        cdef int64_t allowed = self.max_message_size - self.msg.len
        cdef Py_ssize_t size
        cdef bint last = self.f_fin
        if last:
            buf_put(&self.zbuf, <const uint8_t*> PyBytes_AS_STRING(DEFLATE_TAIL), 4)
        data = PyBytes_FromStringAndSize(<char*> self.zbuf.data, self.zbuf.len)
        self.zbuf.len = 0
        buf_trim(&self.zbuf, TRIM_ABOVE)
        try:
            out = self.decompressor.decompress(data, allowed + 1)
        except zlib.error:
            return self.fail(1007, "invalid compressed data")
        size = PyBytes_GET_SIZE(out)
        if size > allowed:
            return self.fail(1009, "message too big")
        if self.m_opcode == C_TEXT:
            self.m_utf8 = utf8_scan(self.m_utf8, <const uint8_t*> PyBytes_AS_STRING(out), size)
            if self.m_utf8 == U_REJECT:
                return self.fail(1007, "invalid UTF-8 in a text message")
        if last and self.msg.len == 0:
            return self.end_message(events, out)   # one frame: no copy into msg
        buf_put(&self.msg, <const uint8_t*> PyBytes_AS_STRING(out), size)
        if last:
            return self.end_message(events, None)
        return 0

    cdef int end_message(self, list events, object payload) except -1:
        """The message's last frame is in: build its object (once) and reset."""
        cdef const char* data
        cdef Py_ssize_t size
        if payload is None:
            data, size = <const char*> self.msg.data, self.msg.len
        else:
            data, size = PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload)
        if self.m_opcode == C_TEXT:
            if self.m_utf8 != U_ACCEPT:
                return self.fail(1007, "text message ends inside a UTF-8 sequence")
            events.append((C_TEXT, PyUnicode_DecodeUTF8(<char*> data, size, NULL)))
        elif payload is None:
            events.append((C_BINARY, PyBytes_FromStringAndSize(data, size)))
        else:
            events.append((C_BINARY, payload))
        if self.m_compressed and (self.remote_no_context or self.decompressor.eof):
            # RFC 7692 7.1.1: the peer starts every message with an empty window (or
            # ended its deflate stream with a BFINAL block).
            self.decompressor = self.new_decompressor()
        self.m_opcode = 0
        self.m_compressed = False
        self.msg.len = 0
        buf_trim(&self.msg, TRIM_ABOVE)
        return 0

    # ------------------------------------------------------------------------------------
    # Output

    cdef const uint8_t* mask_key(self) except NULL:
        # RFC 6455 10.3: an unpredictable key per frame, from a strong source of entropy;
        # one system call for 256 keys.
        if self.entropy_pos + 4 > PyBytes_GET_SIZE(self.entropy):
            self.entropy = urandom(ENTROPY)
            self.entropy_pos = 0
        self.entropy_pos += 4
        return <const uint8_t*> PyBytes_AS_STRING(self.entropy) + self.entropy_pos - 4

    cdef bytes frame(self, int opcode, bint fin, bint rsv1, const uint8_t* data, Py_ssize_t n):
        # 5.2: the payload length in 7 bits, or 126 + 16 bits, or 127 + 64 bits: minimal.
        cdef Py_ssize_t hl = 2 + (0 if n < 126 else 2 if n < 65536 else 8) + 4 * self.client
        cdef bytes out = PyBytes_FromStringAndSize(NULL, hl + n)
        cdef uint8_t* o = <uint8_t*> PyBytes_AS_STRING(out)
        cdef const uint8_t* key
        cdef int i
        o[0] = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
        if n < 126:
            o[1] = <uint8_t> n
        elif n < 65536:
            o[1] = 126
            o[2] = <uint8_t> (n >> 8)
            o[3] = <uint8_t> n
        else:
            o[1] = 127
            for i in range(8):
                o[2 + i] = <uint8_t> ((<uint64_t> n) >> (56 - 8 * i))
        if self.client:
            o[1] |= 0x80
            key = self.mask_key()
            memcpy(o + hl - 4, key, 4)
            xor_mask(o + hl, data, n, key, 0)
        elif n:
            memcpy(o + hl, data, n)
        return out

    cdef int check_send(self) except -1:
        if self.close_sent:
            raise UsageError("the close frame was sent: nothing may follow it (RFC 6455 5.5.1)")
        return 0

    def message(self, data, bint fin=True):
        """One data frame: text for a str, binary for any other buffer. fin=False starts
        or continues a fragmented message (the next calls send continuation frames)."""
        cdef int opcode
        cdef Py_buffer view
        cdef Py_ssize_t size
        cdef const char* utf8
        cdef bint first, rsv1 = False
        cdef int wire
        cdef bytes out
        self.check_send()
        if PyUnicode_Check(data):
            opcode = C_TEXT
            if not PyUnicode_IS_ASCII(data):
                try:
                    data = PyUnicode_AsUTF8String(data)
                except UnicodeEncodeError:
                    raise UsageError("a text message must be valid Unicode (no lone surrogates)")
        else:
            opcode = C_BINARY
        # 5.4: one message at a time; its type is its first frame's.
        first = self.s_opcode == 0
        if not first and opcode != self.s_opcode:
            raise UsageError("a fragmented %s message cannot continue with %s data" % (
                "text" if self.s_opcode == C_TEXT else "binary",
                "text" if opcode == C_TEXT else "binary"))
        if self.deflate:
            # RFC 7692 7.2.1: compress, sync-flush, and drop the final 00 00 ff ff; RSV1
            # on the first frame only.
            if PyUnicode_Check(data):
                data = PyUnicode_AsUTF8String(data)   # (ASCII here)
            data = self.compressor.compress(data) + self.compressor.flush(zlib.Z_SYNC_FLUSH)
            if fin and data.endswith(DEFLATE_TAIL):
                data = data[:len(data) - 4]
            rsv1 = first
            if fin and self.local_no_context:
                self.compressor = self.new_compressor()
        wire = opcode if first else C_CONT
        if PyUnicode_Check(data):
            utf8 = PyUnicode_AsUTF8AndSize(data, &size)   # ASCII: no copy, no cache
            out = self.frame(wire, fin, rsv1, <const uint8_t*> utf8, size)
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                out = self.frame(wire, fin, rsv1, <const uint8_t*> view.buf, view.len)
            finally:
                PyBuffer_Release(&view)
        self.s_opcode = 0 if fin else opcode
        return out

    cdef bytes control(self, int opcode, object data):
        cdef Py_buffer view
        self.check_send()
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            # 5.5: control payloads are at most 125 bytes.
            if view.len > 125:
                raise UsageError("a ping or pong payload is at most 125 bytes")
            return self.frame(opcode, True, False, <const uint8_t*> view.buf, view.len)
        finally:
            PyBuffer_Release(&view)

    def ping(self, data=b""):
        """A ping frame (RFC 6455 5.5.2), payload at most 125 bytes."""
        return self.control(C_PING, data)

    def pong(self, data=b""):
        """A pong frame (RFC 6455 5.5.3), payload at most 125 bytes."""
        return self.control(C_PONG, data)

    def close(self, code=1000, str reason=""):
        """The close frame (RFC 6455 5.5.1); code None sends it without a payload.
        After it, message(), ping() and pong() raise UsageError."""
        cdef bytes payload
        self.check_send()
        if code is None:
            if reason:
                raise UsageError("a close reason needs a close code")
            payload = b""
        else:
            if not isinstance(code, int) or not 0 <= code < 65536 or not valid_close_code(code):
                raise UsageError("close code %r may not be sent (RFC 6455 7.4)" % (code,))
            try:
                payload = (<int> code).to_bytes(2, "big") + reason.encode("utf-8")
            except UnicodeEncodeError:
                raise UsageError("a close reason must be valid Unicode (no lone surrogates)")
            if len(payload) > 125:
                raise UsageError("a close reason is at most 123 bytes of UTF-8")
        self.close_sent = True
        return self.frame(C_CLOSE, True, False,
                          <const uint8_t*> PyBytes_AS_STRING(payload), len(payload))
