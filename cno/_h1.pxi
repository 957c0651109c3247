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

# RFC 3986 3.2.2 reg-name: unreserved / pct-encoded / sub-delims
cdef uint8_t REG_NAME[256]
for _i in range(256):
    REG_NAME[_i] = chr(_i).isalnum() and _i < 128 or chr(_i) in "-._~%!$&'()*+,;="

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


cdef inline bint has_ctl(uint64_t x) noexcept:
    """Whether any of 8 bytes is below 0x20 or is 0x7F (exact; SWAR, no loop)."""
    cdef uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL
    cdef uint64_t d = x ^ 0x7F7F7F7F7F7F7F7FULL
    return ((((x - 0x2020202020202020ULL) & ~x) | ((d - ones) & ~d)) & high) != 0


cdef inline bint h1_value_ok(const uint8_t* p, Py_ssize_t n) noexcept:
    """RFC 9110 5.5: no control characters but HTAB (obs-text is allowed). Eight bytes
    at a time; a word with a control character (maybe an HTAB) is checked bytewise."""
    cdef Py_ssize_t i = 0, j
    cdef uint64_t x
    cdef uint8_t b
    while i + 8 <= n:
        memcpy(&x, p + i, 8)
        if has_ctl(x):
            for j in range(i, i + 8):
                b = p[j]
                if (b < 0x20 and b != 0x09) or b == 0x7F:
                    return False
        i += 8
    for j in range(i, n):
        b = p[j]
        if (b < 0x20 and b != 0x09) or b == 0x7F:
            return False
    return True


# Recent field objects, so that names and values that repeat (nearly all of them) cost a
# reference instead of an allocation. Bounded: 1024 slots of at most 64-byte fields.
cdef struct CacheSlot:
    uint64_t key
    Py_ssize_t n
    PyObject* obj

cdef CacheSlot STR_CACHE[1024]
cdef CacheSlot BYTES_CACHE[1024]

# RFC 9110 5.6.2 tchar, lower-cased; 0 for bytes a field name cannot hold.
cdef uint8_t NAME_LOWER[256]
for _i in range(256):
    NAME_LOWER[_i] = (_i + 32 if 0x41 <= _i <= 0x5A else _i) if TCHAR[_i] else 0


cdef inline uint64_t quick_key(const uint8_t* p, Py_ssize_t n) noexcept:
    """A constant-time key: the length and the first and last 8 bytes (the cache checks
    the whole field with memcmp on a hit)."""
    cdef uint64_t a = 0, b = 0
    if n >= 8:
        memcpy(&a, p, 8)
        memcpy(&b, p + n - 8, 8)
    else:
        memcpy(&a, p, n)
    return (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xC2B2AE3D27D4EB4FULL) ^ \
        (<uint64_t> n * 0x165667B19E3779F9ULL)


cdef object field_from(const uint8_t* p, Py_ssize_t n, bint as_bytes):
    """p[:n] as a latin-1 str (or bytes), from the cache when it was seen recently."""
    cdef uint64_t key
    cdef CacheSlot* slot
    cdef Py_ssize_t m
    cdef object obj
    if n > 64:
        if as_bytes:
            return PyBytes_FromStringAndSize(<const char*> p, n)
        return PyUnicode_DecodeLatin1(<const char*> p, n, NULL)
    key = quick_key(p, n)
    slot = (&BYTES_CACHE[0] if as_bytes else &STR_CACHE[0]) + ((key ^ (key >> 31)) & 1023)
    if slot.obj != NULL and slot.key == key and slot.n == n and \
            memcmp(field_ptr(<object> slot.obj, &m), p, n) == 0:
        return <object> slot.obj
    if as_bytes:
        obj = PyBytes_FromStringAndSize(<const char*> p, n)
    else:
        obj = PyUnicode_DecodeLatin1(<const char*> p, n, NULL)
    Py_XDECREF(slot.obj)
    Py_INCREF(obj)
    slot.obj = <PyObject*> obj
    slot.key = key
    slot.n = n
    return obj


# Recent header lines, whole: a line that repeats byte for byte ("User-Agent: ..."
# on every request of a client) gives the same (name, value) tuple without being
# parsed again. Only lines of fields the engine does not act on are kept (the ones it
# acts on must be read every time), up to LINE_MAX bytes from the name to the value's
# end; each slot owns a copy of the line, to compare, and the tuple.
cdef enum:
    LINE_SLOTS = 512
    LINE_MAX = 160

cdef struct LineSlot:
    uint64_t key
    Py_ssize_t n
    PyObject* line     # bytes: the raw line, name to value
    PyObject* pair     # (name, value) as the engine delivers it

cdef LineSlot STR_LINES[LINE_SLOTS]
cdef LineSlot BYTES_LINES[LINE_SLOTS]


cdef inline LineSlot* line_slot(const uint8_t* p, Py_ssize_t n, bint as_bytes,
                                uint64_t* key) noexcept:
    key[0] = quick_key(p, n)
    return (&BYTES_LINES[0] if as_bytes else &STR_LINES[0]) + \
        ((key[0] ^ (key[0] >> 29)) & (LINE_SLOTS - 1))


cdef inline object line_hit(LineSlot* slot, uint64_t key, const uint8_t* p, Py_ssize_t n):
    """The slot's tuple if it holds this line, else None."""
    if slot.pair != NULL and slot.key == key and slot.n == n and \
            memcmp(PyBytes_AS_STRING(<object> slot.line), p, n) == 0:
        return <object> slot.pair
    return None


cdef int line_keep(LineSlot* slot, uint64_t key, const uint8_t* p, Py_ssize_t n,
                   object pair) except -1:
    cdef object line = PyBytes_FromStringAndSize(<const char*> p, n)
    Py_XDECREF(slot.line)
    Py_XDECREF(slot.pair)
    Py_INCREF(line)
    Py_INCREF(pair)
    slot.line = <PyObject*> line
    slot.pair = <PyObject*> pair
    slot.key = key
    slot.n = n
    return 0


cdef object scheme_field(Connection c):
    """(":scheme", c.scheme) as requests read over HTTP/1.1 begin, made again only when
    the scheme or bytes_headers changed."""
    if c.h1_scheme_field is None or c.h1_scheme_of is not c.scheme or \
            c.h1_scheme_bytes != c.bytes_headers:
        if c.bytes_headers:
            c.h1_scheme_field = (b":scheme", c.scheme.encode("latin-1")
                                 if isinstance(c.scheme, str) else c.scheme)
        else:
            c.h1_scheme_field = (":scheme", c.scheme)
        c.h1_scheme_of = c.scheme
        c.h1_scheme_bytes = c.bytes_headers
    return c.h1_scheme_field


cdef object authority_field(Connection c, object host):
    """(":authority", host) for a request read over HTTP/1.1: the last one again when
    the host is the same object (field_from gives one object per recent value)."""
    cdef object last = c.h1_authority_field
    if last is not None and <object> PyTuple_GET_ITEM(last, 1) is host:
        return last
    last = (b":authority" if c.bytes_headers else ":authority", host)
    c.h1_authority_field = last
    return last


cdef object h1_field(Connection c, const uint8_t* p, Py_ssize_t n, bint lower):
    cdef uint8_t buf[64]
    cdef Py_ssize_t i
    if lower and n <= 64:
        for i in range(n):
            buf[i] = p[i] + 32 if 0x41 <= p[i] <= 0x5A else p[i]
        return field_from(buf, n, c.bytes_headers)
    if lower:
        b = PyBytes_FromStringAndSize(<const char*> p, n).lower()
        return b if c.bytes_headers else b.decode("latin-1")
    return field_from(p, n, c.bytes_headers)


cdef bint list_has_token(const uint8_t* p, Py_ssize_t n, const char* token, Py_ssize_t tn) noexcept:
    """Whether a comma-separated list holds token, compared case-insensitively (5.6.1)."""
    cdef Py_ssize_t i = 0, s, e, k
    while i <= n:
        s = i
        while i < n and p[i] != 0x2C:
            i += 1
        e = i
        i += 1
        while s < e and (p[s] == 0x20 or p[s] == 0x09):
            s += 1
        while e > s and (p[e - 1] == 0x20 or p[e - 1] == 0x09):
            e -= 1
        if e - s == tn:
            for k in range(tn):
                if (p[s + k] | 0x20) != <uint8_t> token[k]:
                    break
            else:
                return True
    return False


cdef int64_t parse_length_list(const uint8_t* p, Py_ssize_t n) noexcept:
    """Content-Length: digits, or a list of identical digits ("5, 5"); -1 otherwise (6.3)."""
    cdef Py_ssize_t i = 0, s, e
    cdef int64_t value = -1, v
    while i <= n:
        s = i
        while i < n and p[i] != 0x2C:
            i += 1
        e = i
        i += 1
        while s < e and (p[s] == 0x20 or p[s] == 0x09):
            s += 1
        while e > s and (p[e - 1] == 0x20 or p[e - 1] == 0x09):
            e -= 1
        v = parse_digits(p + s, e - s)
        if v < 0 or (value >= 0 and v != value):
            return -1
        value = v
    return value


# What a head says about framing and the connection (filled by parse_fields); the
# pointers refer into the input, valid while the head is handled.
cdef struct Head:
    int64_t length             # Content-Length, -1 if none
    bint chunked               # Transfer-Encoding ends with chunked
    bint te                    # Transfer-Encoding present
    bint te_unknown            # a coding we do not understand
    bint close                 # Connection: close
    bint keep_alive            # Connection: keep-alive
    int hosts
    const uint8_t* host
    Py_ssize_t host_n
    bint upgrade               # an Upgrade field
    bint upgrade_h2c           # ... naming h2c
    int h2_settings_count
    const uint8_t* h2_settings
    Py_ssize_t h2_settings_n


cdef void head_init(Head* h) noexcept:
    memset(h, 0, sizeof(Head))
    h.length = -1


cdef int parse_fields(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t end,
                      Head* h, list fields, bint trailers) except -1:
    """Header (or trailer) lines p[start:end]: appended to fields as (name, value), the
    ones the engine acts on noted in h instead. Returns 0, or the HTTP status for a
    malformed field."""
    cdef Py_ssize_t pos = start, lf, e, vs, ve, ns, nlen, i, count = 0
    cdef uint8_t lname[64]
    cdef uint8_t b
    cdef const uint8_t* q
    cdef object name, pair
    cdef int64_t v
    cdef bint lowered
    cdef LineSlot* lslot = NULL
    cdef uint64_t lkey = 0
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
        ns = pos
        if e - ns <= LINE_MAX:
            lslot = line_slot(p + ns, e - ns, c.bytes_headers, &lkey)
            pair = line_hit(lslot, lkey, p + ns, e - ns)
            if pair is not None:   # (so not a field the engine acts on)
                count += 1
                if count > c.max_header_count:
                    return 431
                pos = lf + 1
                list_push(fields, pair)
                continue
        else:
            lslot = NULL
        q = <const uint8_t*> memchr(p + pos, 0x3A, e - pos)
        if q == NULL:
            return 400
        nlen = (q - p) - pos
        if nlen == 0:
            return 400
        # The name: tchar only (so no whitespace before the colon, 5.1), lower-cased.
        lowered = nlen <= 64
        for i in range(nlen):
            b = NAME_LOWER[p[ns + i]]
            if b == 0:
                return 400
            if lowered:
                lname[i] = b
        vs = (q - p) + 1
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
        if not trailers and lowered:
            # Fields the engine itself acts on.
            if nlen == 14 and memcmp(lname, b"content-length", 14) == 0:
                v = parse_length_list(p + vs, ve - vs)
                if v < 0 or (h.length >= 0 and v != h.length):
                    return 400   # not plain digits, or values that differ (6.3)
                h.length = v     # (and shown to the application, as in HTTP/2)
            if nlen == 10 and memcmp(lname, b"connection", 10) == 0:
                h.close = h.close or list_has_token(p + vs, ve - vs, "close", 5)
                h.keep_alive = h.keep_alive or list_has_token(p + vs, ve - vs, "keep-alive", 10)
                continue
            if nlen == 4 and memcmp(lname, b"host", 4) == 0:
                h.hosts += 1
                h.host = p + vs
                h.host_n = ve - vs
                continue
            if (nlen == 10 and memcmp(lname, b"keep-alive", 10) == 0) or \
                    (nlen == 16 and memcmp(lname, b"proxy-connection", 16) == 0):
                continue
            if nlen == 14 and memcmp(lname, b"http2-settings", 14) == 0:
                h.h2_settings_count += 1
                h.h2_settings = p + vs
                h.h2_settings_n = ve - vs
                continue
            if nlen == 17 and memcmp(lname, b"transfer-encoding", 17) == 0:
                status = read_transfer_encoding(c, p + vs, ve - vs, h, fields)
                if status:
                    return status
                continue
            if nlen == 7 and memcmp(lname, b"upgrade", 7) == 0:
                h.upgrade = True
                h.upgrade_h2c = h.upgrade_h2c or list_has_token(p + vs, ve - vs, "h2c", 3)
        if lowered:
            name = field_from(lname, nlen, c.bytes_headers)
        else:
            name = h1_field(c, p + ns, nlen, True)
        pair = (name, field_from(p + vs, ve - vs, c.bytes_headers))
        list_push(fields, pair)
        if lslot != NULL and lowered and not acted_on(lname, nlen):
            line_keep(lslot, lkey, p + ns, e - ns, pair)
    return 0


cdef inline bint acted_on(const uint8_t* n, Py_ssize_t nn) noexcept:
    """Whether parse_fields acts on a field of this (lower-case) name."""
    return (bytes_equal(n, nn, "content-length", 14) or bytes_equal(n, nn, "connection", 10)
            or bytes_equal(n, nn, "host", 4) or bytes_equal(n, nn, "keep-alive", 10)
            or bytes_equal(n, nn, "proxy-connection", 16)
            or bytes_equal(n, nn, "http2-settings", 14)
            or bytes_equal(n, nn, "transfer-encoding", 17) or bytes_equal(n, nn, "upgrade", 7))


cdef int read_transfer_encoding(Connection c, const uint8_t* p, Py_ssize_t n, Head* h,
                                list fields) except -1:
    """Transfer-Encoding (6.1): chunked must come last, once; codings besides it stay
    visible to the application."""
    if h.chunked:
        return 400   # another Transfer-Encoding line after chunked: chunked is not last
    value = PyBytes_FromStringAndSize(<const char*> p, n)
    codings = [x.strip(b" \t").lower() for x in value.split(b",")]
    codings = [x for x in codings if x]
    h.te = True
    h.chunked = bool(codings) and codings[len(codings) - 1] == b"chunked"
    if b"chunked" in codings[:len(codings) - 1]:
        return 400   # chunked applied twice, or not last
    rest = [x for x in codings if x != b"chunked"]
    for x in rest:
        if x not in _KNOWN_CODINGS:
            h.te_unknown = True
    if rest:
        joined = b", ".join(rest)
        fields.append((b"transfer-encoding" if c.bytes_headers else "transfer-encoding",
                       joined if c.bytes_headers else joined.decode("latin-1")))
    return 0


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
            # Any number of hex digits (leading zeros too) up to 2^63 - 1; the check
            # comes before the digit is added, so the int64 never overflows.
            size = 0
            i = pos
            while i < e and hex_value(p[i]) >= 0:
                if size >= 0x0800000000000000:
                    return h1_error(c, 400, "chunk size too large")
                size = size * 16 + hex_value(p[i])
                i += 1
            if i == pos:
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
        if c.data_views:
            c.ev_message_data(c, s.key, body_view(c, p, n))
        else:
            c.ev_message_data(c, s.key, PyBytes_FromStringAndSize(<const char*> p, n))
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
    cdef Head h
    cdef list fields = []
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
    if end - pos > c.max_head_size:
        return h1_error(c, 431, "trailer section too large (max_head_size)")
    for i in range(pos, end):
        if p[i] == 0x0A and (i == pos or p[i - 1] != 0x0D):
            return h1_error(c, 400, "bare LF in chunked framing")
    head_init(&h)
    status = parse_fields(c, p, pos, end, &h, fields, True)
    if status:
        return h1_error(c, status, "malformed trailer section")
    consumed[0] = end
    r = finish_message_h1(c, fields or None)
    return r if r else 2


cdef int read_head(Connection c, const uint8_t* p, Py_ssize_t n, Py_ssize_t* consumed) except -1:
    """Read one message head. Returns 0 (need more), 2 (done), CONN_ERROR, SWITCHED."""
    cdef Py_ssize_t start = consumed[0], end, lf, e, sp1, sp2
    cdef const uint8_t* q
    cdef Head h
    cdef list fields
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
        return reject_early(c, p, start, n)
    if end - start > c.max_head_size:
        return h1_error(c, 431, "message head too large (max_head_size)")
    lf = find_lf(p, start, end)
    e = line_end(p, start, lf)
    head_init(&h)
    fields = list_with_room(16)   # (room for a usual head)
    if not c.client:
        list_push(fields, scheme_field(c))
    status = parse_fields(c, p, lf + 1, end, &h, fields, False)
    if status:
        return h1_error(c, status, "malformed header section")
    consumed[0] = end
    if c.client:
        return on_response_head_h1(c, p, start, e, &h, fields)
    return on_request_head_h1(c, p, start, e, &h, fields)


cdef int reject_early(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t n) except -1:
    """An incomplete head whose first bytes can never begin one is rejected now, not when
    the header timeout fires: a TLS ClientHello on a plaintext port (or any other protocol)
    gets an immediate close. Returns 0 (keep waiting) or CONN_ERROR."""
    cdef Py_ssize_t i, m
    if c.client:
        # status-line = HTTP-version SP ... (RFC 9112 4); HTTP-version = "HTTP/" DIGIT ...
        m = min(5, n - start)
        if memcmp(p + start, b"HTTP/", m) != 0:
            return h1_error(c, 400, "the peer's first bytes are not an HTTP/1 status line")
        return 0
    # TLS record type 22 (handshake), version 3.x: a ClientHello (RFC 8446 5.1). No HTTP
    # answer makes sense to a TLS client: close at once.
    if p[start] == 0x16 and (n - start < 2 or p[start + 1] == 0x03):
        return conn_error(c, PROTOCOL_ERROR, ProtocolError,
                          "TLS handshake on a plaintext HTTP port")
    if p[start] == 0x0D and n - start == 1:
        return 0   # maybe the CR of an empty line before the request line (2.2)
    # request-line = method SP ... (RFC 9112 3), method = token (RFC 9110 9.1).
    for i in range(start, n):
        if p[i] == 0x20 and i > start:
            return 0
        if not TCHAR[p[i]]:
            return h1_error(c, 400, "the first bytes are not an HTTP/1 request line")
    return 0


cdef int parse_version(const uint8_t* p, Py_ssize_t n) noexcept:
    """11 or 10 for HTTP/1.1 or HTTP/1.0; 0 for another HTTP/x.y; -1 if malformed. A
    higher minor version of HTTP/1 is read as HTTP/1.1 (RFC 9110 2.5: "process the
    message as if it were in the highest minor version within that major version")."""
    if n != 8 or memcmp(p, b"HTTP/", 5) != 0 or p[6] != 0x2E:
        return -1
    if not (0x30 <= p[5] <= 0x39 and 0x30 <= p[7] <= 0x39):
        return -1
    if p[5] == 0x31 and p[7] >= 0x31:
        return 11
    if p[5] == 0x31 and p[7] == 0x30:
        return 10
    return 0


cdef int on_request_head_h1(Connection c, const uint8_t* p, Py_ssize_t start, Py_ssize_t e,
                            Head* h, list fields) except -1:
    cdef const uint8_t* q
    cdef Py_ssize_t sp1, sp2, i
    cdef int version
    cdef bytes target
    cdef object method, path, authority
    cdef Stream s
    cdef uint32_t sid
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
    if h.hosts and not host_valid(h.host, h.host_n):
        return h1_error(c, 400, "invalid Host")
    method = field_from(p + start, sp1 - start, c.bytes_headers)
    if p[sp1 + 1] == 0x2F:   # origin-form (3.2.1), the usual
        path = field_from(p + sp1 + 1, sp2 - sp1 - 1, c.bytes_headers)
        if h.host != NULL:
            fields.insert(1, authority_field(c, field_from(h.host, h.host_n, c.bytes_headers)))
        return start_request_h1(c, p + start, sp1 - start, method, path, h, fields, version)
    target = PyBytes_FromStringAndSize(<const char*> p + sp1 + 1, sp2 - sp1 - 1)
    authority = PyBytes_FromStringAndSize(<const char*> h.host, h.host_n) if h.host != NULL else None
    if bytes_equal(p + start, sp1 - start, "CONNECT", 7):
        authority = target        # authority-form (3.2.3)
        target = b""
    elif target != b"*":
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
    if authority is not None:
        fields.insert(1, (b":authority" if c.bytes_headers else ":authority",
                          authority if c.bytes_headers else authority.decode("latin-1")))
    return start_request_h1(c, p + start, sp1 - start, method, path, h, fields, version)


cdef int start_request_h1(Connection c, const uint8_t* mp, Py_ssize_t mn, object method,
                          object path, Head* h, list fields, int version) except -1:
    """A valid request head: open its stream, fire the events, set up its body."""
    cdef Stream s
    cdef uint32_t sid
    cdef bint body
    cdef int r
    sid = c.last_stream[REMOTE] + 2 if c.last_stream[REMOTE] else 1
    s = new_stream(c, sid, False)
    s.h10 = version == 10
    s.close_after = h.close or (version == 10 and not h.keep_alive)
    s.connect = bytes_equal(mp, mn, "CONNECT", 7)
    s.head_request = bytes_equal(mp, mn, "HEAD", 4)
    body = h.chunked or h.length > 0
    if h.upgrade:
        s.upgrade = UPGRADE_H2C if h.upgrade_h2c else UPGRADE_OTHER
    if s.close_after:
        c.goaway_sent = True   # no request after this one is read (9.6)
    c.h1_rs = s
    s.r_state = R_DATA
    if (s.upgrade == UPGRADE_H2C and not c.disallow_h2_upgrade and sid == 1 and not body
            and h.h2_settings_count == 1):
        return upgrade_to_h2c(c, s, method, path, fields,
                              PyBytes_FromStringAndSize(<const char*> h.h2_settings, h.h2_settings_n))
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
                             Head* h, list fields) except -1:
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
            c.ev_message_head(c, s.key, code, empty, empty, fields)
        return 2   # 15.2: interim; the final response is still to come
    if code == 101:
        if s.upgrade == UPGRADE_H2C:
            c.h1_wait_switch = 0
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
    if c.h1_wait_switch == s.id:
        c.h1_wait_switch = 0
    if code == 101 or (s.connect and 200 <= code < 300):
        c.h1_tunnel = True
        c.state = ST_H1_TUNNEL
        s.r_state = R_DATA     # raw bytes both ways from here
        s.w_state = W_DATA
        s.w_chunked = False
        if c.ev_message_head is not None:
            c.ev_message_head(c, s.key, code, empty, empty, fields)
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
        c.ev_message_head(c, s.key, code, empty, empty, fields)
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
    forget_checked(c)   # (remembered as fine for HTTP/1.1, which is not HTTP/2's check)
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
        c.ev_stream_start(c, s.key)
    if c.ev_message_head is not None:
        c.ev_message_head(c, s.key, 0, method, path, fields)
    if c.ev_message_tail is not None and s.id in c.streams:
        c.ev_message_tail(c, s.key, None)
    return SWITCHED


# ----------------------------------------------------------------------------------------
# Writing

cdef inline bint name_is(const uint8_t* p, Py_ssize_t n, const char* lower, Py_ssize_t m) noexcept:
    """Case-insensitive comparison with a lower-case token."""
    cdef Py_ssize_t i
    if n != m:
        return False
    for i in range(n):
        if (p[i] | 0x20) != <uint8_t> lower[i]:
            return False
    return True


cdef enum:
    NO_LENGTH = -1         # write_h1_fields: no content-length among the headers


cdef int64_t write_h1_fields(Connection c, object headers, Stream s, int kind) except -3:
    """Check the caller's headers and write them as lines in one pass (pseudo-headers
    are skipped: the request line and host carry them). Notes Connection: close and
    Upgrade on s; returns the content-length among them, or NO_LENGTH. A bad header (a
    content-length that is not a number, RFC 9110 8.6, included) raises
    (UsageError, TypeError) and nothing of the block stays written."""
    cdef Py_ssize_t mark = c.out.len, nn, vn, k, slot = 0
    cdef bint plain
    cdef object item, name, value
    cdef const uint8_t* np
    cdef const uint8_t* vp
    cdef uint8_t* o
    cdef int64_t length = NO_LENGTH, v
    if headers is None:
        return NO_LENGTH
    try:
        for item in headers:
            if type(item) is tuple and PyTuple_GET_SIZE(item) == 2:
                slot = identity_hash(item)
                if is_checked(c, item, slot):
                    # Written before as it is (lower-case name, a value fine for
                    # HTTP/1.1, no field the engine writes or acts on): copy it again.
                    name = <object> PyTuple_GET_ITEM(item, 0)
                    value = <object> PyTuple_GET_ITEM(item, 1)
                    np = field_ptr(name, &nn)
                    vp = field_ptr(value, &vn)
                    buf_reserve(&c.out, nn + vn + 4)
                    memcpy(c.out.data + c.out.len, np, nn)
                    end_field_line(&c.out, nn, vp, vn)
                    continue
                name = (<tuple> item)[0]
                value = (<tuple> item)[1]
            else:
                k = len(item)
                if k != 2 and k != 3:
                    raise UsageError("a header must be (name, value) or (name, value, sensitive)")
                name = item[0]
                value = item[1]
            if not is_field(name):
                name = field_object(name)
            if not is_field(value):
                value = field_object(value)
            np = field_ptr(name, &nn)
            vp = field_ptr(value, &vn)
            if nn and np[0] == 0x3A:
                if kind != FIELDS_REQUEST:
                    raise UsageError("pseudo-header %r not allowed here" % (name,))
                continue
            if nn == 0:
                raise UsageError("empty header name")
            # RFC 9110 5.5: what HTTP/1.1 carries has no control character but HTAB
            # (a peer's parser, ours included, rejects the message otherwise).
            if padded(vp, vn) or not h1_value_ok(vp, vn):
                raise UsageError("invalid value for header %r" % (name,))
            if nn == 4 and kind == FIELDS_REQUEST and name_is(np, nn, "host", 4):
                continue   # written by the engine, first, from :authority or this value
            plain = True   # (remembered once written, unless the engine acts on it)
            if nn == 14 and name_is(np, nn, "content-length", 14):
                v = parse_digits(vp, vn)
                if v < 0:
                    raise UsageError("invalid content-length %r" % (value,))
                if length == NO_LENGTH:
                    length = v
                plain = False
            elif nn == 10 and name_is(np, nn, "connection", 10):
                if list_has_token(vp, vn, "close", 5):
                    s.close_after = True
                continue   # the engine writes its own
            elif nn == 17 and name_is(np, nn, "transfer-encoding", 17):
                raise UsageError("transfer-encoding is written by the engine (omit "
                                 "content-length and final=False for a chunked body)")
            elif nn == 7 and kind == FIELDS_REQUEST and name_is(np, nn, "upgrade", 7):
                s.upgrade = UPGRADE_OTHER
                buf_put_obj(&c.out, b"connection: upgrade\r\n")
                plain = False
            buf_reserve(&c.out, nn + vn + 4)
            o = c.out.data + c.out.len
            for k in range(nn):   # token characters only, written in lower case
                o[k] = NAME_LOWER[np[k]]
                if o[k] == 0:
                    raise UsageError("invalid header name %r" % (name,))
                plain = plain and o[k] == np[k]
            if plain and nn + vn <= CHECKED_MAX_LEN and type(item) is tuple \
                    and PyTuple_GET_SIZE(item) == 2 and is_field(<object> PyTuple_GET_ITEM(item, 0)) \
                    and is_field(<object> PyTuple_GET_ITEM(item, 1)):
                remember_checked(c, item, slot)   # (computed above: a 2-tuple)
            end_field_line(&c.out, nn, vp, vn)
    except BaseException:
        c.out.len = mark
        raise
    return length


cdef inline void end_field_line(WriteBuffer* b, Py_ssize_t nn, const uint8_t* vp,
                                Py_ssize_t vn) noexcept:
    """A field line whose nn-byte name is written at the end of b (room reserved for
    nn + vn + 4 bytes): ": ", the value and CRLF after it."""
    cdef uint8_t* o = b.data + b.len
    o[nn] = 0x3A
    o[nn + 1] = 0x20
    memcpy(o + nn + 2, vp, vn)
    o[nn + 2 + vn] = 0x0D
    o[nn + 3 + vn] = 0x0A
    b.len += nn + vn + 4


cdef object find_authority(object headers):
    """What Host says: :authority among the caller's headers, else a host field, else
    None."""
    cdef const uint8_t* np
    cdef Py_ssize_t nn
    cdef object host = None
    if headers is None:
        return None
    for item in headers:
        name = item[0]
        if not is_field(name):
            name = field_object(name)
        np = field_ptr(name, &nn)
        if nn == 10 and np[0] == 0x3A and memcmp(np, b":authority", 10) == 0:
            return field_object(item[1])
        if nn == 4 and host is None and name_is(np, nn, "host", 4):
            host = field_object(item[1])
    return host


cdef int write_request_h1(Connection c, uint32_t sid, object method, object path,
                          object headers, bint final) except -1:
    cdef Stream s
    cdef object authority = None
    cdef const uint8_t* mp
    cdef Py_ssize_t mn, mark = c.out.len
    cdef uint32_t last_id = c.last_stream[LOCAL]
    cdef int has_length
    cdef int64_t length
    cdef bint connect
    cdef Stream last
    if c.goaway_received or c.goaway_sent:
        raise ConnectionClosed("the connection is closing: no new requests")
    if sid in c.streams:
        raise InvalidStream("stream %d is already open" % sid)
    last = c.streams.get(c.last_stream[LOCAL])
    if last is not None and last.w_state != W_CLOSED:
        raise WouldBlock("the previous request's body is not complete")
    if c.h1_wait_switch:
        # The connection may switch protocols with that answer: wait for it.
        raise WouldBlock("a request that may switch protocols awaits its answer")
    if not (sid & 1) or sid <= c.last_stream[LOCAL] or sid > MAX_STREAM_ID:
        raise InvalidStream("stream %d: a new request needs an odd id above %d (next_stream)"
                            % (sid, c.last_stream[LOCAL]))
    method = field_object(method)
    path = field_object(path)
    authority = find_authority(headers)
    # Nothing written into the request line or Host may break its framing (3).
    mp = field_ptr(method, &mn)
    if not is_token(mp, mn):
        raise UsageError("invalid method %r" % (method,))
    connect = bytes_equal(mp, mn, "CONNECT", 7)
    mp = field_ptr(path, &mn)
    if not target_ok(mp, mn) and not (connect and mn == 0 and authority is not None):
        raise UsageError("invalid request target %r" % (path,))
    if authority is not None:
        mp = field_ptr(authority, &mn)
        if not target_ok(mp, mn):
            raise UsageError("invalid :authority %r" % (authority,))
    s = new_stream(c, sid, True)
    mp = field_ptr(method, &mn)
    s.head_request = bytes_equal(mp, mn, "HEAD", 4)
    s.connect = bytes_equal(mp, mn, "CONNECT", 7)
    buf_put(&c.out, mp, mn)
    buf_put(&c.out, <const uint8_t*> b" ", 1)
    mp = field_ptr(authority if s.connect and authority is not None else path, &mn)
    buf_put(&c.out, mp, mn)
    buf_put_obj(&c.out, b" HTTP/1.1\r\nhost: ")
    if authority is not None:   # (3.2: empty when the target has no authority)
        mp = field_ptr(authority, &mn)
        buf_put(&c.out, mp, mn)
    buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    try:
        length = write_h1_fields(c, headers, s, FIELDS_REQUEST)
        has_length = length != NO_LENGTH
    except BaseException:
        c.streams.pop(sid, None)    # nothing went out: the request never existed
        c.stream_count[LOCAL] -= 1
        c.last_stream[LOCAL] = last_id
        c.out.len = mark
        raise
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
    elif not has_length and not s.connect and s.upgrade == UPGRADE_NONE:
        # (an Upgrade or CONNECT request that stays open is followed by a tunnel, not a body)
        s.w_chunked = True
        buf_put_obj(&c.out, b"transfer-encoding: chunked\r\n")
    if has_length:
        s.w_left = length
    if s.close_after:
        buf_put_obj(&c.out, b"connection: close\r\n")
        c.goaway_sent = True   # our last request on this connection (9.6)
    buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
    s.w_state = W_CLOSED if final else W_DATA
    if s.upgrade != UPGRADE_NONE or s.connect:
        c.h1_wait_switch = sid
    if c.ev_stream_start is not None:
        c.ev_stream_start(c, sid)
    return 0


cdef int write_response_h1(Connection c, uint32_t sid, int code, object headers,
                           bint final) except -1:
    cdef Stream s = writable_stream(c, sid)
    cdef int has_length
    cdef int64_t length
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
    if code < 200 and code != 101 and s.h10:
        return 0   # RFC 9110 15.2: no 1xx to an HTTP/1.0 client (it would not expect one)
    buf_put_obj(&c.out, STATUS_LINES[code])
    try:
        length = write_h1_fields(c, headers, s, FIELDS_RESPONSE)
        has_length = length != NO_LENGTH
    except BaseException:
        c.out.len -= PyBytes_GET_SIZE(STATUS_LINES[code])
        raise
    if code == 101 or (s.connect and 200 <= code < 300):
        tunnel = True
    if code == 101:
        buf_put_obj(&c.out, b"connection: upgrade\r\n")   # RFC 9110 7.8
    if code < 200 and not tunnel:
        buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
        return 0
    s.w_no_content = code == 204 or code == 304
    body_allowed = not (s.head_request or s.w_no_content)
    if has_length and body_allowed and not tunnel:
        s.w_left = length
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
            close_after_stream(c, s)
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
        s.w_chunked = False
        return 0
    s.w_state = W_CLOSED if final else W_DATA
    if final:
        return maybe_end(c, s)
    return 0


cdef bint host_valid(const uint8_t* p, Py_ssize_t n) noexcept:
    """RFC 9112 3.2 / RFC 3986 3.2.2: uri-host [ ":" port ], or empty."""
    cdef Py_ssize_t i = 0
    if n == 0:
        return True
    if p[0] == 0x5B:   # IP-literal: [ ... ]
        while i < n and p[i] != 0x5D:
            i += 1
        if i == n:
            return False
        i += 1
        if i < n and p[i] != 0x3A:
            return False
    else:
        while i < n and p[i] != 0x3A:
            if not REG_NAME[p[i]]:
                return False
            i += 1
    if i < n:   # ":" port
        i += 1
        while i < n:
            if not 0x30 <= p[i] <= 0x39:
                return False
            i += 1
    return True


cdef inline bint target_ok(const uint8_t* p, Py_ssize_t n) noexcept:
    """A request target or authority: visible characters only, not empty."""
    cdef Py_ssize_t i
    if n == 0:
        return False
    for i in range(n):
        if p[i] <= 0x20 or p[i] == 0x7F:
            return False
    return True


cdef int close_after_stream(Connection c, Stream s) except -1:
    """The connection ends with this exchange: requests read ahead of it are refused,
    and no more are read (RFC 9112 9.6)."""
    cdef Stream t
    c.goaway_sent = True
    for t in [t for t in c.streams.values() if (<Stream> t).id > s.id]:
        if c.h1_rs is t:
            c.h1_rs = None
            c.state = ST_H1_IGNORE
        end_stream(c, t, REFUSED_STREAM, LOCAL)
    if c.state == ST_H1_HEAD:
        c.state = ST_H1_IGNORE
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
        if n and s.w_no_content:
            raise UsageError("stream %d: a 204 or 304 response has no content" % s.id)
        if n and s.local and not c.h1_tunnel and not s.w_chunked and s.w_left < 0 \
                and (s.connect or s.upgrade == UPGRADE_OTHER):
            # A request that may open a tunnel and has no body framing: its bytes belong
            # to the tunnel, which opens only with the answer (101, or 2xx to CONNECT).
            # Sent before, they would reach a server that ignores the Upgrade as the
            # next request (RFC 9110 7.8, 9.3.6).
            raise UsageError("stream %d: tunnel bytes wait for the server's answer (101, "
                             "or 2xx to CONNECT); a body needs a content-length" % s.id)
        if s.w_left >= 0 and not (s.head_request and not s.local) and not c.h1_tunnel:
            # Exactly the announced content-length, or the framing would break (6.2).
            if n > s.w_left:
                raise UsageError("more data than the content-length announced")
            if final and n != s.w_left:
                raise UsageError("less data than the content-length announced")
            s.w_left -= n
        if s.head_request and not s.local:
            pass   # a response to HEAD has no content: dropped, reported as sent
        elif s.w_chunked:
            if n:
                size_line = b"%X\r\n" % n
                buf_put_obj(&c.out, size_line)
                put_body(c, data, &view)
                buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
            if final:
                buf_put_obj(&c.out, b"0\r\n\r\n")
        else:
            put_body(c, data, &view)
    finally:
        PyBuffer_Release(&view)
    if final:
        end_write_h1(c, s)
    return n


cdef inline int put_body(Connection c, object data, Py_buffer* view) except -1:
    """Body bytes into the output: copied, or borrowed (zero-copy, see may_borrow)."""
    if view.len >= c.zero_copy_threshold and may_borrow(c, data, view.len):
        out_borrow(c, data if PyBytes_CheckExact(data) else byte_view(data))
    else:
        buf_put(&c.out, <const uint8_t*> view.buf, view.len)
    return 0


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
    cdef Py_ssize_t mark = c.out.len
    if s.w_chunked and not (s.head_request and not s.local):
        buf_put_obj(&c.out, b"0\r\n")
        try:
            write_h1_fields(c, trailers, s, FIELDS_TRAILERS)
        except BaseException:
            c.out.len = mark
            raise
        buf_put(&c.out, <const uint8_t*> b"\r\n", 2)
        end_write_h1(c, s)
        return 0
    # Without chunked framing there is nowhere to put trailers: they are dropped, and the
    # message ends as an empty final write would (a body shorter than its content-length
    # is a UsageError, not a message the next one would complete on the wire).
    write_data_h1(c, s, b"", True)
    return 0


# ----------------------------------------------------------------------------------------
# Parsing without a Connection: one head, trailer section or chunk-size line out of the
# caller's buffer, for a face that keeps its own state machine and buffer (docs/raw.md,
# "HTTP/1.1 without a Connection"). Nothing here touches a Connection.

PARSE_REQUEST = 0
PARSE_RESPONSE = 1
PARSE_TRAILERS = 2

# Recent header lines as (name, lower-case name, value) triples, like STR_LINES.
cdef LineSlot RAW_LINES[LINE_SLOTS]


cdef inline bint raw_value_byte_ok(uint8_t b) noexcept:
    """A byte inside a field value or reason phrase: anything but NUL, CR, LF and the
    whitespace that is not SP or HTAB (FF, VT). Other controls and obs-text pass, as in
    the widespread parsers this serves (RFC 9110 5.5 lets a recipient keep them)."""
    return b != 0x00 and b != 0x0A and b != 0x0D and b != 0x0B and b != 0x0C


cdef object raw_field(const uint8_t* p, Py_ssize_t n, bint allow_empty_name):
    """One field line p[:n] (no line end) as (name, lower-case name, value) bytes, or a
    str saying what is wrong. field-line = field-name ":" OWS field-value OWS (RFC 9112 5)."""
    cdef const uint8_t* q = <const uint8_t*> memchr(p, 0x3A, n)
    cdef Py_ssize_t nlen, vs, ve, i
    cdef uint8_t lname[64]
    cdef uint8_t b
    cdef object name, lower
    if q == NULL:
        return "illegal header line"
    nlen = q - p
    if nlen == 0:
        return "illegal header line"
    for i in range(nlen):
        b = NAME_LOWER[p[i]]
        if b == 0:
            return "illegal header line"   # not a token: whitespace before ":" too (5.1)
        if i < 64:
            lname[i] = b
    vs = nlen + 1
    ve = n
    while vs < ve and (p[vs] == 0x20 or p[vs] == 0x09):
        vs += 1
    while ve > vs and (p[ve - 1] == 0x20 or p[ve - 1] == 0x09):
        ve -= 1
    for i in range(vs, ve):
        if not raw_value_byte_ok(p[i]):
            return "illegal header line"
    name = field_from(p, nlen, True)
    if nlen <= 64:
        lower = field_from(lname, nlen, True)
    else:
        lower = PyBytes_FromStringAndSize(<const char*> p, nlen).lower()
    return (name, lower, field_from(p + vs, ve - vs, True))


cdef object raw_fields(const uint8_t* p, Py_ssize_t start, Py_ssize_t end, list fields):
    """The field lines p[start:end] (each ended by LF or CRLF) appended to fields; None,
    or a str saying what is wrong. An obs-fold line is joined to the one before it with
    one SP (RFC 9112 5.2 lets a recipient do so)."""
    cdef Py_ssize_t pos = start, lf, e, next_lf, next_e
    cdef LineSlot* slot
    cdef uint64_t key
    cdef object triple
    cdef bytearray joined
    while pos < end:
        lf = find_lf(p, pos, end)
        if lf < 0:
            lf = end
        e = line_end(p, pos, lf)
        if e == pos:
            pos = lf + 1
            continue
        if p[pos] == 0x20 or p[pos] == 0x09:
            return "continuation line at start of headers"
        next_lf = lf + 1
        if next_lf < end and (p[next_lf] == 0x20 or p[next_lf] == 0x09):
            joined = bytearray(p[pos:e])
            while next_lf < end and (p[next_lf] == 0x20 or p[next_lf] == 0x09):
                lf = find_lf(p, next_lf, end)
                if lf < 0:
                    lf = end
                next_e = line_end(p, next_lf, lf)
                while next_lf < next_e and (p[next_lf] == 0x20 or p[next_lf] == 0x09):
                    next_lf += 1
                joined += b" "
                joined += p[next_lf:next_e]
                next_lf = lf + 1
            triple = raw_field(<const uint8_t*> (<char*> joined), len(joined), False)
            if isinstance(triple, str):
                return triple
            list_push(fields, triple)
            pos = next_lf
            continue
        if e - pos <= LINE_MAX:
            key = quick_key(p + pos, e - pos)
            slot = &RAW_LINES[0] + ((key ^ (key >> 29)) & (LINE_SLOTS - 1))
            triple = line_hit(slot, key, p + pos, e - pos)
            if triple is None:
                triple = raw_field(p + pos, e - pos, False)
                if isinstance(triple, str):
                    return triple
                line_keep(slot, key, p + pos, e - pos, triple)
        else:
            triple = raw_field(p + pos, e - pos, False)
            if isinstance(triple, str):
                return triple
        list_push(fields, triple)
        pos = lf + 1
    return None


cdef inline bint http_version_ok(const uint8_t* p) noexcept:
    """HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 2.3), 8 bytes at p."""
    return (memcmp(p, b"HTTP/", 5) == 0 and 0x30 <= p[5] <= 0x39 and p[6] == 0x2E
            and 0x30 <= p[7] <= 0x39)


def parse_h1_head(data, Py_ssize_t start=0, int kind=PARSE_REQUEST):
    """Parse one HTTP/1.x head (or, with kind=PARSE_TRAILERS, a trailer section) at
    data[start:], any buffer. Returns None while the empty line that ends it has not
    arrived, else a tuple whose first item is the index just past that line:

    - PARSE_REQUEST: (end, method, target, version, fields), version like b"1.1"
    - PARSE_RESPONSE: (end, version, status, reason, fields), status an int
    - PARSE_TRAILERS: (end, fields)

    fields is a list of (name as sent, lower-case name, value) bytes triples, in order,
    nothing removed or acted on. Raises ProtocolError (status 400) for a malformed head,
    or, while it is incomplete, for a first byte that cannot begin one (below "!")."""
    return h1_parse_head(data, start, kind)


cdef object h1_parse_head(object data, Py_ssize_t start, int kind):
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef const uint8_t* q
    cdef Py_ssize_t n, end = -1, i, lf, e, sp1, sp2
    cdef list fields
    cdef object err, a, b, c
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*> view.buf
        n = view.len
        if start < 0 or start > n:
            raise UsageError("start outside the buffer")
        # The head ends at the first empty line; an empty first line is a head of none.
        i = start
        while True:
            lf = find_lf(p, i, n)
            if lf < 0:
                break
            if line_end(p, i, lf) == i:
                end = lf + 1
                break
            i = lf + 1
        if end < 0:
            if kind != PARSE_TRAILERS and n > start and p[start] < 0x21:
                raise h1_parse_error("illegal request line" if kind == PARSE_REQUEST
                                     else "illegal status line", -1)
            return None
        fields = list_with_room(16)
        if kind == PARSE_TRAILERS:
            err = raw_fields(p, start, end, fields)
            if err is not None:
                raise h1_parse_error(err, end)
            return (end, fields)
        lf = find_lf(p, start, end)
        e = line_end(p, start, lf)
        if e == start:
            raise h1_parse_error("no request line received" if kind == PARSE_REQUEST
                                 else "no response line received", end)
        if kind == PARSE_REQUEST:
            # request-line = method SP request-target SP HTTP-version (RFC 9112 3)
            q = <const uint8_t*> memchr(p + start, 0x20, e - start)
            sp1 = -1 if q == NULL else q - p
            sp2 = -1
            if sp1 >= 0:
                q = <const uint8_t*> memchr(p + sp1 + 1, 0x20, e - sp1 - 1)
                sp2 = -1 if q == NULL else q - p
            if sp2 < 0 or e - sp2 - 1 != 8 or not http_version_ok(p + sp2 + 1) or \
                    not is_token(p + start, sp1 - start) or sp2 == sp1 + 1:
                raise h1_parse_error("illegal request line", end)
            for i in range(sp1 + 1, sp2):
                if p[i] <= 0x20 or p[i] >= 0x7F:   # VCHAR only
                    raise h1_parse_error("illegal request line", end)
            a = field_from(p + start, sp1 - start, True)
            b = PyBytes_FromStringAndSize(<const char*> p + sp1 + 1, sp2 - sp1 - 1)
            c = field_from(p + sp2 + 6, 3, True)
        else:
            # status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 4);
            # the SP before an empty reason may be missing, as many servers send it.
            if e - start < 12 or not http_version_ok(p + start) or p[start + 8] != 0x20 or \
                    not (0x30 <= p[start + 9] <= 0x39 and 0x30 <= p[start + 10] <= 0x39
                         and 0x30 <= p[start + 11] <= 0x39) or \
                    (e - start > 12 and p[start + 12] != 0x20):
                raise h1_parse_error("illegal status line", end)
            for i in range(start + 13, e):
                if not raw_value_byte_ok(p[i]):
                    raise h1_parse_error("illegal status line", end)
            a = field_from(p + start + 5, 3, True)
            b = (p[start + 9] - 0x30) * 100 + (p[start + 10] - 0x30) * 10 + p[start + 11] - 0x30
            c = field_from(p + start + 13, e - start - 13, True) if e - start > 13 else b""
        err = raw_fields(p, lf + 1, end, fields)
        if err is not None:
            raise h1_parse_error(err, end)
        return (end, a, b, c, fields)
    finally:
        PyBuffer_Release(&view)


def parse_h1_chunk_line(data, Py_ssize_t start=0):
    """Parse a chunk-size line (RFC 9112 7.1: chunk-size [ chunk-ext ] CRLF) at
    data[start:], any buffer: None until its CRLF has arrived, else (end, size) with end
    just past the CRLF. Extensions are skipped; whitespace before the CRLF is allowed.
    Raises ProtocolError (status 400) for anything else, or a size of 2^63 or more."""
    return h1_parse_chunk_line(data, start)


cdef object h1_parse_chunk_line(object data, Py_ssize_t start):
    cdef Py_buffer view
    cdef const uint8_t* p
    cdef const uint8_t* q
    cdef Py_ssize_t n, i, e, digits = 0
    cdef int64_t size = 0
    PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
    try:
        p = <const uint8_t*> view.buf
        n = view.len
        if start < 0 or start > n:
            raise UsageError("start outside the buffer")
        i = start
        while True:
            q = <const uint8_t*> memchr(p + i, 0x0A, n - i)
            if q == NULL:
                return None
            e = q - p
            if e > start and p[e - 1] == 0x0D:
                break
            i = e + 1    # a bare LF is not the end of the line
        e -= 1
        i = start
        while i < e and hex_value(p[i]) >= 0:
            if size >= 0x0800000000000000:
                raise h1_parse_error("illegal chunk header", e + 2)
            size = size * 16 + hex_value(p[i])
            i += 1
        if i == start:
            raise h1_parse_error("illegal chunk header", e + 2)
        if i < e and p[i] == 0x3B:
            i = e      # chunk-ext: skipped
        while i < e and (p[i] == 0x20 or p[i] == 0x09):
            i += 1
        if i != e:
            raise h1_parse_error("illegal chunk header", e + 2)
        return (e + 2, size)
    finally:
        PyBuffer_Release(&view)


cdef object h1_parse_error(str message, Py_ssize_t end):
    """ProtocolError, status 400; `end` past the malformed head or line when it was
    complete (so a caller can skip it), None when the input was refused early."""
    exc = ProtocolError(message)
    exc.status = 400
    exc.end = end if end >= 0 else None
    return exc


cdef inline char* put_bytes(char* p, object b) noexcept:
    cdef Py_ssize_t n = PyBytes_GET_SIZE(b)
    memcpy(p, PyBytes_AS_STRING(b), n)
    return p + n


cdef inline char* put_raw_field(char* p, tuple t) noexcept:
    p = put_bytes(p, <object> PyTuple_GET_ITEM(t, 0))
    p[0] = 0x3A
    p[1] = 0x20
    p = put_bytes(p + 2, <object> PyTuple_GET_ITEM(t, 2))
    p[0] = 0x0D
    p[1] = 0x0A
    return p + 2


cdef inline bint is_host_field(tuple t) noexcept:
    cdef object lower = <object> PyTuple_GET_ITEM(t, 1)
    return PyBytes_GET_SIZE(lower) == 4 and memcmp(PyBytes_AS_STRING(lower), b"host", 4) == 0


cdef bytes h1_head_bytes(tuple start, list fields):
    """See write_h1_head. The caller guarantees bytes everywhere (no checks here)."""
    cdef Py_ssize_t size = 2, i, n = PyList_GET_SIZE(fields)
    cdef tuple t
    cdef bytes out
    cdef char* p
    for x in start:
        size += PyBytes_GET_SIZE(x)
    for i in range(n):
        t = <tuple> PyList_GET_ITEM(fields, i)
        size += PyBytes_GET_SIZE(<object> PyTuple_GET_ITEM(t, 0)) + \
            PyBytes_GET_SIZE(<object> PyTuple_GET_ITEM(t, 2)) + 4
    out = PyBytes_FromStringAndSize(NULL, size)
    p = PyBytes_AS_STRING(out)
    for x in start:
        p = put_bytes(p, x)
    # RFC 9110 7.2: "a user agent that sends Host SHOULD send it as the first field".
    for i in range(n):
        t = <tuple> PyList_GET_ITEM(fields, i)
        if is_host_field(t):
            p = put_raw_field(p, t)
    for i in range(n):
        t = <tuple> PyList_GET_ITEM(fields, i)
        if not is_host_field(t):
            p = put_raw_field(p, t)
    p[0] = 0x0D
    p[1] = 0x0A
    return out


def write_h1_head(tuple start, list fields):
    """The bytes of a head: the start line (the bytes objects in `start`, joined, CRLF
    included), each field of `fields` ((name, lower-case name, value) bytes triples,
    as parse_h1_head gives) as `name: value` CRLF with the name as given, Host first
    (RFC 9110 7.2), the others in order, then the empty line. Nothing is validated or
    added: the caller checked what it writes."""
    for x in start:
        if type(x) is not bytes:
            raise UsageError("start holds bytes only")
    for t in fields:
        if type(t) is not tuple or len(t) != 3 or type(t[0]) is not bytes or \
                type(t[1]) is not bytes or type(t[2]) is not bytes:
            raise UsageError("a field must be a (name, lower-case name, value) bytes triple")
    return h1_head_bytes(start, fields)
