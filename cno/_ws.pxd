# The WebSocket framing codec (RFC 6455) with permessage-deflate (RFC 7692).
#
# Contracts for Cython callers (a layer that cimports Codec):
#   - Codec.parse() reads n bytes at p in place, appends the complete events to `events`
#     as (opcode, payload) tuples, and returns 0, a close code > 0 (the codec has failed:
#     err_code and err_reason say why, and every later feed() raises), or -1 only with a
#     Python exception set (MemoryError). Only an incomplete frame header (at most 13
#     bytes) is copied; payload bytes go straight to the message being assembled.
#   - Codec.frame() returns one whole frame as bytes (header, mask key, masked payload):
#     the role decides masking, the caller has checked the opcode and the payload size.
#   - Role is data: `client` only decides which mask bit is expected on input and
#     whether output is masked, and which side's deflate parameters are "ours".
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from cno._buffer cimport WriteBuffer
cimport cython


@cython.final
cdef class Codec:
    cdef readonly bint client
    cdef readonly bint deflate
    cdef readonly bint close_sent
    cdef readonly bint close_received

    cdef int64_t max_message_size
    cdef int64_t max_frame_size

    # Input: where the parser is, the frame being read, the message being assembled.
    cdef int state               # ST_* in _ws.pyx
    cdef uint8_t hdr[14]         # a frame header split across feed() calls
    cdef Py_ssize_t hdr_len
    cdef bint f_fin
    cdef int f_opcode
    cdef bint f_masked
    cdef uint8_t f_key[4]
    cdef uint32_t f_key_off      # payload bytes read so far, mod 4 (the mask's phase)
    cdef uint64_t f_remaining    # payload bytes of this frame still to come
    cdef int m_opcode            # OP_TEXT or OP_BINARY while a message is open, else 0
    cdef bint m_compressed       # its first frame had RSV1 (RFC 7692 6.1)
    cdef uint32_t m_utf8         # UTF-8 DFA state over the text message so far
    cdef WriteBuffer msg         # the message's (decompressed) payload so far
    cdef WriteBuffer zbuf        # a compressed frame's payload, inflated at its end
    cdef uint8_t ctrl[125]       # a control frame's payload (RFC 6455 5.5: <= 125)
    cdef Py_ssize_t ctrl_len
    cdef int err_code            # the close code of the failure; 0 while healthy
    cdef const char* err_reason

    # permessage-deflate: zlib objects; "local" is our side's parameters, "remote" the peer's.
    cdef object compressor
    cdef object decompressor
    cdef int local_wbits
    cdef int remote_wbits
    cdef bint local_no_context
    cdef bint remote_no_context

    # Output: the type of an unfinished outgoing message (0: none), mask key entropy.
    cdef int s_opcode
    cdef bytes entropy
    cdef Py_ssize_t entropy_pos

    cdef int parse(self, const uint8_t* p, Py_ssize_t n, list events) except -1
    cdef int fail(self, int code, const char* reason) noexcept
    cdef int start_frame(self, const uint8_t* h) noexcept
    cdef int payload(self, const uint8_t* src, Py_ssize_t n) except -1
    cdef int end_frame(self, list events) except -1
    cdef int inflate(self, list events) except -1
    cdef int end_message(self, list events, object payload) except -1
    cdef bytes frame(self, int opcode, bint fin, bint rsv1, const uint8_t* data, Py_ssize_t n)
    cdef const uint8_t* mask_key(self) except NULL
    cdef int check_send(self) except -1
    cdef bytes control(self, int opcode, object data)
    cdef object new_compressor(self)
    cdef object new_decompressor(self)
