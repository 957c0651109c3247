# HTTP/1.1 (RFC 9112) on the same Connection and Stream model as HTTP/2: exchanges are
# streams 1, 3, 5, ... Included by _core.pyx; see docs/raw.md, "HTTP/1.1".

import base64

cdef enum:
    ST_H1_HEAD = 10         # a request head (server) or response head (client)
    ST_H1_BODY = 11         # a Content-Length body: h1_left bytes to go
    ST_H1_CHUNK_SIZE = 12
    ST_H1_CHUNK_DATA = 13
    ST_H1_CHUNK_END = 14    # the CRLF after a chunk's data
    ST_H1_TRAILERS = 15
    ST_H1_UNTIL_CLOSE = 16  # a response body that ends with the connection
    ST_H1_TUNNEL = 17       # after 101 or a 2xx to CONNECT: raw bytes
    ST_H1_IGNORE = 18       # after the last exchange of a closing connection

    UPGRADE_NONE = 0
    UPGRADE_H2C = 1
    UPGRADE_OTHER = 2

    SWITCHED = 3            # consume_h1: the connection now speaks HTTP/2

DEFAULT_MAX_HEAD_SIZE = 65536     # request/status line + headers; 431 above
DEFAULT_MAX_HEADER_COUNT = 256
DEFAULT_MAX_CHUNK_LINE = 4096     # a chunk-size line with its extensions

# RFC 9110 5.6.2: tchar
cdef uint8_t TCHAR[256]
for _i in range(256):
    TCHAR[_i] = chr(_i).isalnum() and _i < 128 or chr(_i) in "!#$%&'*+-.^_`|~"

REASONS = {
    100: "Continue", 101: "Switching Protocols", 102: "Processing", 103: "Early Hints",
    200: "OK", 201: "Created", 202: "Accepted", 203: "Non-Authoritative Information",
    204: "No Content", 205: "Reset Content", 206: "Partial Content", 207: "Multi-Status",
    208: "Already Reported", 226: "IM Used", 300: "Multiple Choices",
    301: "Moved Permanently", 302: "Found", 303: "See Other", 304: "Not Modified",
    305: "Use Proxy", 307: "Temporary Redirect", 308: "Permanent Redirect",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 409: "Conflict",
    410: "Gone", 411: "Length Required", 412: "Precondition Failed",
    413: "Content Too Large", 414: "URI Too Long", 415: "Unsupported Media Type",
    416: "Range Not Satisfiable", 417: "Expectation Failed", 418: "I'm a teapot",
    421: "Misdirected Request", 422: "Unprocessable Content", 423: "Locked",
    424: "Failed Dependency", 425: "Too Early", 426: "Upgrade Required",
    428: "Precondition Required", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 451: "Unavailable For Legal Reasons",
    500: "Internal Server Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout", 505: "HTTP Version Not Supported",
    506: "Variant Also Negotiates", 507: "Insufficient Storage", 508: "Loop Detected",
    511: "Network Authentication Required",
}
cdef list STATUS_LINES = [
    ("HTTP/1.1 %d %s\r\n" % (i, REASONS.get(i, "Unknown" if i >= 100 else ""))).encode("latin-1")
    for i in range(1000)
]
# Transfer codings we understand besides chunked (RFC 9112 7; others get 501).
_KNOWN_CODINGS = {b"gzip", b"x-gzip", b"deflate", b"compress", b"x-compress"}
cdef bytes CRLF = b"\r\n"


# ----------------------------------------------------------------------------------------
# Reading

cdef int h1_error(Connection c, int status, str message) except -1:
    """A malformed HTTP/1.1 message: the connection ends. A server answers with `status`
    itself when no earlier response is still owed (else that one would get it)."""
    cdef Stream owed = oldest_unanswered(c)
    c.h1_error_status = status
    if not c.client and (owed is None or (owed is c.h1_rs and owed.w_state == W_HEADERS)):
        buf_put_obj(&c.out, STATUS_LINES[status])
        buf_put_obj(&c.out, b"connection: close\r\ncontent-length: 0\r\n\r\n")
    return conn_error(c, PROTOCOL_ERROR, ProtocolError, message)


cdef inline int buf_put_obj(WriteBuffer* b, bytes data) except -1:
    return buf_put(b, <const uint8_t*> PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data))


cdef Stream oldest_unanswered(Connection c):
    """The stream whose response is written next (HTTP/1.1 answers in order)."""
    cdef Stream s
    for s in c.streams.values():
        if s.w_state != W_CLOSED:
            return s
    return None


cdef Stream oldest_unread(Connection c):
    """The stream whose response is read next (a client matches responses in order)."""
    cdef Stream s
    for s in c.streams.values():
        if s.r_state != R_CLOSED:
            return s
    return None


cdef inline Py_ssize_t find_lf(const uint8_t* p, Py_ssize_t start, Py_ssize_t end) noexcept:
    cdef const uint8_t* q = <const uint8_t*> memchr(p + start, 0x0A, end - start)
    return -1 if q == NULL else q - p


cdef Py_ssize_t find_head_end(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t n):
    """Index just past the empty line ending a head that starts at p[start], or -1. A line
    ends with CRLF or a bare LF (RFC 9112 2.2)."""
    cdef Py_ssize_t i = start + c.h1_scanned, lf
    while True:
        lf = find_lf(p, i, n)
        if lf < 0:
            c.h1_scanned = n - start
            return -1
        if lf > start and (p[lf - 1] == 0x0A or (lf > start + 1 and p[lf - 1] == 0x0D
                                                  and p[lf - 2] == 0x0A)):
            c.h1_scanned = 0
            return lf + 1
        if lf == start:   # the very first line is empty: a head of nothing
            c.h1_scanned = 0
            return lf + 1
        i = lf + 1


cdef inline Py_ssize_t line_end(const uint8_t* p, Py_ssize_t start, Py_ssize_t lf) noexcept:
    """End of the line whose LF is at p[lf], without its CR."""
    return lf - 1 if lf > start and p[lf - 1] == 0x0D else lf


cdef inline bint is_token(const uint8_t* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if not TCHAR[p[i]]:
            return False
    return True


cdef inline bint h1_value_ok(const uint8_t* p, Py_ssize_t n) noexcept:
    """RFC 9110 5.5: no control characters but HTAB (obs-text is allowed)."""
    cdef Py_ssize_t i
    cdef uint8_t b
    for i in range(n):
        b = p[i]
        if (b < 0x20 and b != 0x09) or b == 0x7F:
            return False
    return True


cdef inline bint has_token(bytes value, bytes token):
    """Whether a comma-separated list holds token (case-insensitively)."""
    for item in value.split(b","):
        if item.strip(b" \t").lower() == token:
            return True
    return False


cdef object h1_field(Connection c, const uint8_t* p, Py_ssize_t n, bint lower):
    cdef bytes b
    cdef char* q
    cdef Py_ssize_t i
    if lower:
        b = PyBytes_FromStringAndSize(NULL, n)
        q = PyBytes_AS_STRING(b)
        for i in range(n):
            q[i] = p[i] + 32 if 0x41 <= p[i] <= 0x5A else p[i]
        if c.bytes_headers:
            return b
        return PyUnicode_DecodeLatin1(q, n, NULL)
    if c.bytes_headers:
        return PyBytes_FromStringAndSize(<const char*> p, n)
    return PyUnicode_DecodeLatin1(<const char*> p, n, NULL)


cdef class _Head:
    """What a head says about framing and the connection (filled by parse_fields)."""
    cdef int64_t length         # Content-Length, -1 if none
    cdef bint chunked           # Transfer-Encoding ends with chunked
    cdef bint te                # Transfer-Encoding present
    cdef bint te_unknown        # a coding we do not understand
    cdef bint close             # Connection: close
    cdef bint keep_alive        # Connection: keep-alive
    cdef int hosts
    cdef object host            # bytes
    cdef object upgrade         # bytes, or None
    cdef int h2_settings_count
    cdef object h2_settings     # bytes
    cdef object te_rest         # codings other than chunked, bytes
    cdef list fields


cdef int parse_fields(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t end,
                      _Head h, bint trailers) except -1:
    """Header (or trailer) lines p[start:end] (the empty line excluded): 0, or an HTTP
    status for a malformed field."""
    cdef Py_ssize_t pos = start, lf, e, colon, vs, ve, ns, count = 0
    cdef const uint8_t* q
    cdef Py_ssize_t nlen
    cdef object value
    cdef bytes raw
    cdef int64_t v
    while pos < end:
        lf = find_lf(p, pos, end)
        if lf < 0:
            lf = end
        e = line_end(p, pos, lf)
        if e == pos:
            pos = lf + 1
            continue
        if p[pos] == 0x20 or p[pos] == 0x09:
            return 400   # obs-fold (RFC 9112 5.2)
        q = <const uint8_t*> memchr(p + pos, 0x3A, e - pos)
        if q == NULL:
            return 400
        colon = q - p
        ns = pos
        nlen = colon - pos
        if not is_token(p + pos, nlen):
            return 400   # includes whitespace before the colon (5.1)
        vs = colon + 1
        ve = e
        while vs < ve and (p[vs] == 0x20 or p[vs] == 0x09):
            vs += 1
        while ve > vs and (p[ve - 1] == 0x20 or p[ve - 1] == 0x09):
            ve -= 1
        if not h1_value_ok(p + vs, ve - vs):
            return 400
        count += 1
        if count > c.max_header_count:
            return 431
        pos = lf + 1
        # Fields the engine itself acts on (compared case-insensitively).
        if not trailers and 4 <= nlen <= 17 and special_field(p + ns, nlen):
            raw = PyBytes_FromStringAndSize(<const char*> p + ns, nlen).lower()
            value = PyBytes_FromStringAndSize(<const char*> p + vs, ve - vs)
            if raw == b"content-length":
                for item in value.split(b","):
                    item = item.strip(b" \t")
                    v = parse_digits(<const uint8_t*> PyBytes_AS_STRING(item), len(item))
                    if v < 0 or (h.length >= 0 and v != h.length):
                        return 400   # not plain digits, or values that differ (6.3)
                    h.length = v
                continue
            if raw == b"transfer-encoding":
                h.te = True
                codings = [x.strip(b" \t").lower() for x in value.split(b",")]
                codings = [x for x in codings if x]
                h.chunked = bool(codings) and codings[len(codings) - 1] == b"chunked"
                rest = [x for x in codings if x != b"chunked"]
                if b"chunked" in codings[:len(codings) - 1]:
                    return 400   # chunked applied twice, or not last (6.1)
                for x in rest:
                    if x not in _KNOWN_CODINGS:
                        h.te_unknown = True
                h.te_rest = b", ".join(rest) if rest else None
                if h.te_rest is not None:
                    h.fields.append((h1_field(c, <const uint8_t*> b"transfer-encoding", 17, False),
                                     h1_field(c, <const uint8_t*> PyBytes_AS_STRING(h.te_rest),
                                              len(h.te_rest), False)))
                continue
            if raw == b"connection":
                h.close = h.close or has_token(value, b"close")
                h.keep_alive = h.keep_alive or has_token(value, b"keep-alive")
                continue
            if raw == b"keep-alive" or raw == b"proxy-connection":
                continue
            if raw == b"host":
                h.hosts += 1
                h.host = value
                continue
            if raw == b"http2-settings":
                h.h2_settings_count += 1
                h.h2_settings = value
                continue
            if raw == b"upgrade":
                h.upgrade = value
        h.fields.append((h1_field(c, p + ns, nlen, True), h1_field(c, p + vs, ve - vs, False)))
    return 0


cdef inline bint special_field(const uint8_t* p, Py_ssize_t n) noexcept:
    """Whether a name may be one parse_fields acts on (a cheap check of length and first
    letter; parse_fields compares the whole name)."""
    cdef uint8_t f = p[0] | 0x20
    if n == 14:
        return f == 0x63 or f == 0x68     # content-length, http2-settings
    if n == 10:
        return f == 0x63 or f == 0x6B     # connection, keep-alive
    if n == 17:
        return f == 0x74                  # transfer-encoding
    if n == 16:
        return f == 0x70                  # proxy-connection
    if n == 7:
        return f == 0x75                  # upgrade
    return n == 4 and f == 0x68           # host


cdef int consume_h1(Connection c, const uint8_t* p, Py_ssize_t n, Py_ssize_t* consumed) except -1:
    """Parse HTTP/1.1 input; consumed[0] advances before events fire. Returns 0, CONN_ERROR
    or SWITCHED (the rest of the input is HTTP/2)."""
    cdef Py_ssize_t pos, take, lf, e, i
    cdef int r
    cdef int64_t size
    cdef Stream s
    while True:
        pos = consumed[0]
        if c.state == ST_H1_HEAD:
            if pos == n:
                return 0
            r = read_head(c, p, n, consumed)
            if r != 2:
                return r
        elif c.state == ST_H1_BODY or c.state == ST_H1_CHUNK_DATA:
            take = min(n - pos, c.h1_left)
            if take == 0 and c.h1_left:
                return 0
            consumed[0] = pos + take
            c.h1_left -= take
            deliver_h1(c, p + pos, take)
            if c.h1_left == 0:
                if c.state == ST_H1_CHUNK_DATA:
                    c.state = ST_H1_CHUNK_END
                else:
                    r = finish_message_h1(c, None)
                    if r:
                        return r
        elif c.state == ST_H1_CHUNK_END:
            if n - pos < 2:
                if n - pos == 1 and p[pos] != 0x0D:
                    return h1_error(c, 400, "chunk data not followed by CRLF")
                return 0
            if p[pos] != 0x0D or p[pos + 1] != 0x0A:
                return h1_error(c, 400, "chunk data not followed by CRLF")
            consumed[0] = pos + 2
            c.state = ST_H1_CHUNK_SIZE
        elif c.state == ST_H1_CHUNK_SIZE:
            lf = find_lf(p, pos, min(n, pos + c.max_chunk_line + 1))
            if lf < 0:
                if n - pos > c.max_chunk_line:
                    return h1_error(c, 400, "chunk-size line too long (max_chunk_line)")
                return 0
            if lf == pos or p[lf - 1] != 0x0D:
                return h1_error(c, 400, "chunk-size line not ended by CRLF")
            e = lf - 1
            size = 0
            i = pos
            while i < e and i - pos < 16 and hex_value(p[i]) >= 0:
                size = size * 16 + hex_value(p[i])
                i += 1
            if i == pos or (i < e and hex_value(p[i]) >= 0) or size < 0:
                return h1_error(c, 400, "invalid chunk size")
            # What follows the size may only be whitespace and ;extensions (7.1.1).
            while i < e and (p[i] == 0x20 or p[i] == 0x09):
                i += 1
            if i < e and p[i] != 0x3B:
                return h1_error(c, 400, "invalid chunk size")
            if not h1_value_ok(p + i, e - i):
                return h1_error(c, 400, "invalid chunk extension")
            consumed[0] = lf + 1
            if size == 0:
                c.state = ST_H1_TRAILERS
            else:
                c.h1_left = size
                c.state = ST_H1_CHUNK_DATA
        elif c.state == ST_H1_TRAILERS:
            r = read_trailers(c, p, n, consumed)
            if r != 2:
                return r
        elif c.state == ST_H1_UNTIL_CLOSE or c.state == ST_H1_TUNNEL:
            consumed[0] = n
            deliver_h1(c, p + pos, n - pos)
            return 0
        else:   # ST_H1_IGNORE, ST_CLOSED
            consumed[0] = n
            return 0


cdef inline int hex_value(uint8_t b) noexcept:
    if 0x30 <= b <= 0x39:
        return b - 0x30
    b |= 0x20
    if 0x61 <= b <= 0x66:
        return b - 0x61 + 10
    return -1


cdef int deliver_h1(Connection c, const uint8_t* p, Py_ssize_t n) except -1:
    cdef Stream s = c.h1_rs
    if n and s is not None and s.r_state == R_DATA and c.ev_message_data is not None:
        c.ev_message_data(c, s.id, PyBytes_FromStringAndSize(<const char*> p, n))
    return 0


cdef int finish_message_h1(Connection c, object trailers) except -1:
    """The message being read is complete: tail event, and on to the next head."""
    cdef Stream s = c.h1_rs
    c.h1_rs = None
    c.state = ST_H1_IGNORE if (c.goaway_sent and not c.client) else ST_H1_HEAD
    if s is not None and s.r_state == R_DATA:
        return end_of_message(c, s, trailers)
    return 0


cdef int read_trailers(Connection c, const uint8_t* p, Py_ssize_t n, Py_ssize_t* consumed) except -1:
    cdef Py_ssize_t pos = consumed[0], end, i
    cdef _Head h
    cdef int status, r
    # The trailer section ends with an empty line; chunked framing wants CRLF (7.1.2).
    if n - pos >= 1 and p[pos] == 0x0A:
        return h1_error(c, 400, "bare LF in chunked framing")
    if n - pos >= 2 and p[pos] == 0x0D and p[pos + 1] == 0x0A:
        consumed[0] = pos + 2
        r = finish_message_h1(c, None)
        return r if r else 2
    end = find_head_end(c, p, pos, n)
    if end < 0:
        if n - pos > c.max_head_size:
            return h1_error(c, 431, "trailer section too large (max_head_size)")
        return 0
    for i in range(pos, end):
        if p[i] == 0x0A and (i == pos or p[i - 1] != 0x0D):
            return h1_error(c, 400, "bare LF in chunked framing")
    h = _Head.__new__(_Head)
    h.length = -1
    h.fields = []
    status = parse_fields(c, p, pos, end, h, True)
    if status:
        return h1_error(c, status, "malformed trailer section")
    consumed[0] = end
    r = finish_message_h1(c, h.fields or None)
    return r if r else 2


cdef int read_head(Connection c, const uint8_t* p, Py_ssize_t n, Py_ssize_t* consumed) except -1:
    """Read one message head. Returns 0 (need more), 2 (done), CONN_ERROR, SWITCHED."""
    cdef Py_ssize_t start = consumed[0], end, lf, e, sp1, sp2
    cdef const uint8_t* q
    cdef _Head h
    cdef int status
    if c.client:
        if oldest_unread(c) is None:
            if c.goaway_received:
                consumed[0] = n
                return 0
            return h1_error(c, 400, "a response without a request")
    else:
        # 2.2: empty lines before a request line are ignored.
        while start < n and (p[start] == 0x0A or (p[start] == 0x0D and start + 1 < n
                                                  and p[start + 1] == 0x0A)):
            start += 2 if p[start] == 0x0D else 1
        consumed[0] = start
        if start == n:
            return 0
        if c.h1_wait_switch or c.stream_count[REMOTE] >= c.wanted[S_MAX_CONCURRENT_STREAMS]:
            c.h1_paused = True   # parsed when a stream ends or the switch is decided
            return 0
        if (not c.disallow_h2_prior_knowledge and c.last_stream[REMOTE] == 0
                and memcmp(p + start, PyBytes_AS_STRING(PREFACE), min(24, n - start)) == 0):
            if n - start < 24:
                return 0
            return switch_to_h2(c, False)   # prior knowledge (RFC 9113 3.3)
    end = find_head_end(c, p, start, n)
    if end < 0:
        if n - start > c.max_head_size:
            return h1_error(c, 431, "message head too large (max_head_size)")
        return 0
    if end - start > c.max_head_size:
        return h1_error(c, 431, "message head too large (max_head_size)")
    lf = find_lf(p, start, end)
    e = line_end(p, start, lf)
    h = _Head.__new__(_Head)
    h.length = -1
    h.fields = []
    status = parse_fields(c, p, lf + 1, end, h, False)
    if status:
        return h1_error(c, status, "malformed header section")
    consumed[0] = end
    if c.client:
        return on_response_head_h1(c, p, start, e, h)
    return on_request_head_h1(c, p, start, e, h)


cdef int parse_version(const uint8_t* p, Py_ssize_t n) noexcept:
    """11 or 10 for HTTP/1.1 or HTTP/1.0; 0 for another HTTP/x.y; -1 if malformed."""
    if n != 8 or memcmp(p, b"HTTP/", 5) != 0 or p[6] != 0x2E:
        return -1
    if not (0x30 <= p[5] <= 0x39 and 0x30 <= p[7] <= 0x39):
        return -1
    if p[5] == 0x31 and p[7] == 0x31:
        return 11
    if p[5] == 0x31 and p[7] == 0x30:
        return 10
    return 0


cdef int on_request_head_h1(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t e,
                            _Head h) except -1:
    cdef const uint8_t* q
    cdef Py_ssize_t sp1, sp2, i
    cdef int version
    cdef bytes target
    cdef object method, path, authority
    cdef Stream s
    cdef uint32_t sid
    cdef list fields
    cdef bint body
    cdef int r
    # request-line = method SP request-target SP HTTP-version (3)
    q = <const uint8_t*> memchr(p + start, 0x20, e - start)
    if q == NULL:
        return h1_error(c, 400, "malformed request line")
    sp1 = q - p
    q = <const uint8_t*> memchr(p + sp1 + 1, 0x20, e - sp1 - 1)
    if q == NULL:
        return h1_error(c, 400, "malformed request line")
    sp2 = q - p
    if not is_token(p + start, sp1 - start) or sp2 == sp1 + 1:
        return h1_error(c, 400, "malformed request line")
    for i in range(sp1 + 1, sp2):
        if p[i] <= 0x20 or p[i] == 0x7F:
            return h1_error(c, 400, "malformed request target")
    version = parse_version(p + sp2 + 1, e - sp2 - 1)
    if version < 0:
        return h1_error(c, 400, "malformed request line")
    if version == 0:
        return h1_error(c, 505, "unsupported HTTP version")
    # Framing (6.1, 6.3): every ambiguity is an error, never a guess.
    if h.te:
        if version == 10:
            return h1_error(c, 400, "Transfer-Encoding in an HTTP/1.0 request")
        if h.length >= 0:
            return h1_error(c, 400, "both Content-Length and Transfer-Encoding")
        if not h.chunked:
            return h1_error(c, 400, "Transfer-Encoding does not end with chunked")
        if h.te_unknown:
            return h1_error(c, 501, "unknown transfer coding")
    # Host (3.2): exactly one in HTTP/1.1, at most one in HTTP/1.0.
    if h.hosts > 1 or (version == 11 and h.hosts == 0):
        return h1_error(c, 400, "a request needs exactly one Host")
    method = h1_field(c, p + start, sp1 - start, False)
    target = PyBytes_FromStringAndSize(<const char*> p + sp1 + 1, sp2 - sp1 - 1)
    authority = h.host
    if bytes_equal(p + start, sp1 - start, "CONNECT", 7):
        authority = target        # authority-form (3.2.3)
        target = b""
    elif target[:1] != b"/" and target != b"*":
        # absolute-form (3.2.2): the target's authority wins over Host.
        scheme_end = target.find(b"://")
        if scheme_end <= 0:
            return h1_error(c, 400, "malformed request target")
        rest = target[scheme_end + 3:]
        cut = min([i for i in (rest.find(b"/"), rest.find(b"?")) if i >= 0] or [len(rest)])
        authority = rest[:cut]
        target = rest[cut:] or (b"*" if bytes_equal(p + start, sp1 - start, "OPTIONS", 7) else b"/")
        if target[:1] == b"?":
            target = b"/" + target
    path = target if c.bytes_headers else target.decode("latin-1")
    fields = [(b":scheme" if c.bytes_headers else ":scheme",
               c.scheme.encode("latin-1") if c.bytes_headers and isinstance(c.scheme, str) else c.scheme)]
    if authority is not None:
        fields.append((b":authority" if c.bytes_headers else ":authority",
                       authority if c.bytes_headers else authority.decode("latin-1")))
    fields.extend(h.fields)
    sid = c.last_stream[REMOTE] + 2 if c.last_stream[REMOTE] else 1
    s = new_stream(c, sid, False)
    s.h10 = version == 10
    s.close_after = h.close or (version == 10 and not h.keep_alive)
    s.connect = bytes_equal(p + start, sp1 - start, "CONNECT", 7)
    s.head_request = bytes_equal(p + start, sp1 - start, "HEAD", 4)
    body = h.chunked or h.length > 0
    if h.upgrade is not None:
        s.upgrade = UPGRADE_H2C if has_token(h.upgrade, b"h2c") else UPGRADE_OTHER
    if s.close_after:
        c.goaway_sent = True   # no request after this one is read (9.6)
    c.h1_rs = s
    s.r_state = R_DATA
    if (s.upgrade == UPGRADE_H2C and not c.disallow_h2_upgrade and sid == 1 and not body
            and h.h2_settings_count == 1):
        return upgrade_to_h2c(c, s, method, path, fields, h.h2_settings)
    if s.upgrade == UPGRADE_H2C:
        # An h2c upgrade we do not take: it is not the application's business (libcno).
        s.upgrade = UPGRADE_NONE
        fields = [f for f in fields if f[0] not in ("upgrade", b"upgrade")]
    if h.chunked:
        c.state = ST_H1_CHUNK_SIZE
    elif h.length > 0:
        c.state = ST_H1_BODY
        c.h1_left = h.length
    if (s.connect or s.upgrade == UPGRADE_OTHER) and not body:
        c.h1_wait_switch = sid   # no further request is parsed until this one is answered
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, sid)
    if c.ev_message_head is not None:
        c.ev_message_head(c, sid, 0, method, path, fields)
    if s.upgrade == UPGRADE_OTHER and c.ev_upgrade is not None and sid in c.streams:
        c.ev_upgrade(c, sid)
    if not body and not c.h1_tunnel and c.h1_rs is s:
        r = finish_message_h1(c, None)
        if r:
            return r
    return 2


cdef int on_response_head_h1(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t e,
                             _Head h) except -1:
    cdef Stream s = oldest_unread(c)
    cdef const uint8_t* q
    cdef Py_ssize_t sp1
    cdef int version
    cdef int64_t code
    cdef object empty = b"" if c.bytes_headers else ""
    cdef Stream t
    cdef int body, r
    # status-line = HTTP-version SP status-code SP [ reason-phrase ] (4)
    q = <const uint8_t*> memchr(p + start, 0x20, e - start)
    if q == NULL:
        return h1_error(c, 400, "malformed status line")
    sp1 = q - p
    version = parse_version(p + start, sp1 - start)
    if version <= 0:
        return h1_error(c, 400, "malformed status line")
    if e - sp1 - 1 < 3 or (e - sp1 - 1 > 3 and p[sp1 + 4] != 0x20):
        return h1_error(c, 400, "malformed status line")
    code = parse_digits(p + sp1 + 1, 3)
    if code < 100:
        return h1_error(c, 400, "malformed status code")
    c.h1_rs = s
    if code < 200 and code != 101:
        if c.ev_message_head is not None:
            c.ev_message_head(c, s.id, code, empty, empty, h.fields)
        return 2   # 15.2: interim; the final response is still to come
    if code == 101:
        if s.upgrade == UPGRADE_H2C:
            return switch_to_h2(c, True)
        if s.upgrade != UPGRADE_OTHER:
            return h1_error(c, 400, "101 without an Upgrade request")
    if s.close_after or h.close or (version == 10 and not h.keep_alive):
        # The connection ends after this response: requests sent after it are lost.
        c.goaway_received = True
        for t in [t for t in c.streams.values() if (<Stream> t).id > s.id]:
            end_stream(c, t, REFUSED_STREAM, REMOTE)
    s.saw_final_head = True
    s.r_state = R_DATA
    if code == 101 or (s.connect and 200 <= code < 300):
        c.h1_tunnel = True
        c.state = ST_H1_TUNNEL
        s.r_state = R_DATA     # raw bytes both ways from here
        s.w_state = W_DATA
        if c.ev_message_head is not None:
            c.ev_message_head(c, s.id, code, empty, empty, h.fields)
        return 2
    if s.head_request or code == 204 or code == 304:
        body = 0
    elif h.te:
        if h.length >= 0:
            return h1_error(c, 400, "both Content-Length and Transfer-Encoding")
        body = 1 if h.chunked else 2
    elif h.length >= 0:
        body = 3 if h.length > 0 else 0
    else:
        body = 2
    if body == 1:
        c.state = ST_H1_CHUNK_SIZE
    elif body == 2:
        c.state = ST_H1_UNTIL_CLOSE   # 6.3: the body ends when the connection does
        c.goaway_received = True
    elif body == 3:
        c.state = ST_H1_BODY
        c.h1_left = h.length
    if c.ev_message_head is not None:
        c.ev_message_head(c, s.id, code, empty, empty, h.fields)
    if body == 0 and c.h1_rs is s:
        r = finish_message_h1(c, None)
        if r:
            return r
    return 2


# ----------------------------------------------------------------------------------------
# Switching to HTTP/2

cdef dict initial_settings(Connection c):
    cdef dict diff = {}
    for key in range(1, SETTINGS_COUNT):
        if c.wanted[key] != STANDARD[key]:
            diff[key] = c.wanted[key]
    return diff


cdef bytes settings_payload(dict changes):
    return b"".join(int(k).to_bytes(2, "big") + int(v).to_bytes(4, "big")
                    for k, v in sorted(changes.items()))


cdef int switch_to_h2(Connection c, bint client) except -1:
    """Continue in HTTP/2: prior knowledge (server) or a 101 to our h2c upgrade (client)."""
    c.h2 = True
    c.h1_rs = None
    if client:
        c.state = ST_SETTINGS
        buf_put(&c.out, <const uint8_t*> PyBytes_AS_STRING(PREFACE), 24)
    else:
        c.state = ST_PREFACE
        c.data_left = 0
    write_settings(c, initial_settings(c))
    return SWITCHED


cdef int upgrade_to_h2c(Connection c, Stream s, object method, object path, list fields,
                        bytes h2_settings) except -1:
    """RFC 7540 3.2 (kept by RFC 9113 3.1 for h2c): answer 101, apply HTTP2-Settings as
    the client's SETTINGS, and serve the request as stream 1 of the HTTP/2 connection."""
    cdef bytes payload
    cdef int r
    try:
        payload = base64.urlsafe_b64decode(h2_settings + b"=" * (-len(h2_settings) % 4))
    except ValueError:
        return h1_error(c, 400, "invalid HTTP2-Settings")
    if len(payload) % 6:
        return h1_error(c, 400, "invalid HTTP2-Settings")
    buf_put_obj(&c.out, b"HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: h2c\r\n\r\n")
    r = apply_remote_settings(c, <const uint8_t*> PyBytes_AS_STRING(payload), len(payload))
    if r:
        return r
    fields = [f for f in fields if f[0] not in ("upgrade", b"upgrade")]
    switch_to_h2(c, False)
    s.r_state = R_CLOSED      # half-closed (remote): the request is complete
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, s.id)
    if c.ev_message_head is not None:
        c.ev_message_head(c, s.id, 0, method, path, fields)
    if c.ev_message_tail is not None and s.id in c.streams:
        c.ev_message_tail(c, s.id, None)
    return SWITCHED


# ----------------------------------------------------------------------------------------
# Writing

cdef int put_h1_fields(Connection c, list fields, Stream s, bint request) except -1:
    """Write checked fields as lines; note what they say about framing and the connection.
    Returns 1 if a content-length was among them."""
    cdef object name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn
    cdef int has_length = 0
    for item in fields:
        name = item[0]
        value = item[1]
        np = field_ptr(name, &nn)
        vp = field_ptr(value, &vn)
        if nn and np[0] == 0x3A:
            continue   # (pseudo-headers: :authority was written as host already)
        if bytes_equal(np, nn, "content-length", 14):
            has_length = 1
        elif bytes_equal(np, nn, "connection", 10):
            if has_token(value if PyBytes_CheckExact(value) else (<str> value).encode("latin-1"), b"close"):
                s.close_after = True
            continue   # written by the engine
        elif bytes_equal(np, nn, "upgrade", 7) and request:
            s.upgrade = UPGRADE_OTHER
            buf_put_obj(&c.out, b"connection: upgrade\r\n")
        buf_put(&c.out, np, nn)
        buf_put(&c.out, <const uint8_t*> b": ", 2)
        buf_put(&c.out, vp, vn)
        buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    return has_length


cdef list check_h1_headers(Connection c, object headers, int kind):
    """Headers for HTTP/1.1: token names, values without CR/LF/NUL; transfer-encoding is
    the engine's to write."""
    cdef list out = []
    cdef object name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef Py_ssize_t nn, vn, k
    if headers is None:
        return out
    for item in headers:
        k = len(item)
        if k != 2 and k != 3:
            raise UsageError("a header must be (name, value) or (name, value, sensitive)")
        name = field_object(item[0])
        value = field_object(item[1])
        np = field_ptr(name, &nn)
        vp = field_ptr(value, &vn)
        if nn and np[0] == 0x3A:
            if kind != FIELDS_REQUEST:
                raise UsageError("pseudo-header %r not allowed here" % (name,))
        elif not is_token(np, nn):
            raise UsageError("invalid header name %r" % (name,))
        elif bytes_equal(np, nn, "transfer-encoding", 17):
            raise UsageError("transfer-encoding is written by the engine (omit content-length "
                             "and final=False for a chunked body)")
        if not value_valid(vp, vn):
            raise UsageError("invalid value for header %r" % (name,))
        out.append((name, value))
    return out


cdef int write_request_h1(Connection c, uint32_t sid, object method, object path,
                          object headers, bint final) except -1:
    cdef Stream s
    cdef list fields
    cdef object authority = None
    cdef const uint8_t* mp
    cdef Py_ssize_t mn
    cdef int has_length
    if c.goaway_received or c.goaway_sent:
        raise ConnectionClosed("the connection is closing: no new requests")
    if sid in c.streams:
        raise InvalidStream("stream %d is already open" % sid)
    if oldest_unanswered(c) is not None:
        raise WouldBlock("the previous request's body is not complete")
    if not (sid & 1) or sid <= c.last_stream[LOCAL] or sid > MAX_STREAM_ID:
        raise InvalidStream("stream %d: a new request needs an odd id above %d (next_stream)"
                            % (sid, c.last_stream[LOCAL]))
    method = field_object(method)
    path = field_object(path)
    fields = check_h1_headers(c, headers, FIELDS_REQUEST)
    for item in fields:
        if bytes_equal_obj(item[0], ":authority", 10):
            authority = item[1]
    s = new_stream(c, sid, True)
    mp = field_ptr(method, &mn)
    s.head_request = bytes_equal(mp, mn, "HEAD", 4)
    s.connect = bytes_equal(mp, mn, "CONNECT", 7)
    buf_put(&c.out, mp, mn)
    buf_put(&c.out, <const uint8_t*> b" ", 1)
    mp = field_ptr(authority if s.connect and authority is not None else path, &mn)
    buf_put(&c.out, mp, mn)
    buf_put_obj(&c.out, b" HTTP/1.1\r\n")
    if authority is not None:
        buf_put_obj(&c.out, b"host: ")
        mp = field_ptr(authority, &mn)
        buf_put(&c.out, mp, mn)
        buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    has_length = put_h1_fields(c, fields, s, True)
    if final:
        mp = field_ptr(method, &mn)
        if not has_length and (bytes_equal(mp, mn, "POST", 4) or bytes_equal(mp, mn, "PUT", 3)
                               or bytes_equal(mp, mn, "PATCH", 5)):
            buf_put_obj(&c.out, b"content-length: 0\r\n")   # RFC 9110 8.6
        if not c.disallow_h2_upgrade and sid == 1 and s.upgrade == UPGRADE_NONE and not s.connect:
            # Ask to continue in HTTP/2 (RFC 7540 3.2); a 101 switches, anything else does not.
            s.upgrade = UPGRADE_H2C
            buf_put_obj(&c.out, b"connection: upgrade, http2-settings\r\nupgrade: h2c\r\nhttp2-settings: ")
            buf_put_obj(&c.out, base64.urlsafe_b64encode(settings_payload(initial_settings(c))).rstrip(b"="))
            buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    elif not has_length and not s.connect:
        s.w_chunked = True
        buf_put_obj(&c.out, b"transfer-encoding: chunked\r\n")
    if s.close_after:
        buf_put_obj(&c.out, b"connection: close\r\n")
    buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    s.w_state = W_CLOSED if final else W_DATA
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, sid)
    return 0


cdef int write_response_h1(Connection c, uint32_t sid, int code, object headers,
                           bint final) except -1:
    cdef Stream s = writable_stream(c, sid)
    cdef list fields
    cdef int has_length
    cdef bint body_allowed, tunnel = False
    if s.w_state != W_HEADERS:
        raise InvalidStream("stream %d: the response head was already sent" % sid)
    if oldest_unanswered(c) is not s:
        raise WouldBlock("HTTP/1.1 answers in order: an earlier request is still unanswered")
    if code < 100 or code > 999:
        raise UsageError("invalid status code %d" % code)
    if code < 200 and final:
        raise UsageError("a 1xx response cannot end the stream")
    if code == 101 and s.upgrade != UPGRADE_OTHER:
        raise UsageError("101 answers only a request with an Upgrade header")
    fields = check_h1_headers(c, headers, FIELDS_RESPONSE)
    buf_put_obj(&c.out, STATUS_LINES[code])
    if code == 101 or (s.connect and 200 <= code < 300):
        tunnel = True
    if code < 200 and not tunnel:
        put_h1_fields(c, fields, s, False)
        buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
        return 0
    has_length = put_h1_fields(c, fields, s, False)
    body_allowed = not (s.head_request or code == 204 or code == 304)
    if not tunnel:
        if final:
            if body_allowed and not has_length:
                buf_put_obj(&c.out, b"content-length: 0\r\n")
        elif not has_length and body_allowed:
            if s.h10:
                s.w_until_close = True   # no chunked to HTTP/1.0 (libcno's defect)
                s.close_after = True
            else:
                s.w_chunked = True
                buf_put_obj(&c.out, b"transfer-encoding: chunked\r\n")
        if s.close_after or (c.goaway_sent and is_last_stream(c, s)):
            s.close_after = True
            buf_put_obj(&c.out, b"connection: close\r\n")
            c.goaway_sent = True
        elif s.h10:
            buf_put_obj(&c.out, b"connection: keep-alive\r\n")
    buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    s.saw_final_head = True
    if c.h1_wait_switch == sid:
        c.h1_wait_switch = 0
    if tunnel:
        c.h1_tunnel = True
        c.h1_rs = s
        c.state = ST_H1_TUNNEL
        s.r_state = R_DATA
        s.w_state = W_DATA
        return 0
    s.w_state = W_CLOSED if final else W_DATA
    if final:
        return maybe_end(c, s)
    return 0


cdef bint is_last_stream(Connection c, Stream s):
    cdef Stream t
    for t in c.streams.values():
        if t.id > s.id:
            return False
    return True


cdef Py_ssize_t write_data_h1(Connection c, Stream s, object data, bint final) except -1:
    cdef Py_buffer view
    cdef Py_ssize_t n
    cdef bytes size_line
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        n = view.len
        if s.head_request and not s.local:
            pass   # a response to HEAD has no content: dropped, reported as sent
        elif s.w_chunked:
            if n:
                size_line = b"%X\r\n" % n
                buf_put_obj(&c.out, size_line)
                buf_put(&c.out, <const uint8_t*> view.buf, n)
                buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
            if final:
                buf_put_obj(&c.out, b"0\r\n\r\n")
        else:
            buf_put(&c.out, <const uint8_t*> view.buf, n)
    finally:
        PyBuffer_Release(&view)
    if final:
        end_write_h1(c, s)
    return n


cdef int end_write_h1(Connection c, Stream s) except -1:
    s.w_state = W_CLOSED
    if s.w_until_close or c.h1_tunnel:
        # The body (or tunnel) ends with the connection (RFC 9112 6.3, 9.6).
        c.goaway_sent = True
        if c.h1_tunnel:
            c.h1_tunnel = False
            c.state = ST_H1_IGNORE
            s.r_state = R_CLOSED
    return maybe_end(c, s)


cdef int write_trailers_h1(Connection c, Stream s, object trailers) except -1:
    cdef list fields = check_h1_headers(c, trailers, FIELDS_TRAILERS)
    if s.w_chunked and not (s.head_request and not s.local):
        buf_put_obj(&c.out, b"0\r\n")
        put_h1_fields(c, fields, s, False)
        buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    # (without chunked framing there is nowhere to put trailers: they are dropped)
    end_write_h1(c, s)
    return 0
