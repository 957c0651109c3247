# cython: language_level=3
"""HPACK: header compression for HTTP/2 (RFC 7541), compiled to C.

The public face is :mod:`cno.hpack`; the engine cimports the classes (see _hpack.pxd).
Strings are latin-1 throughout: a decoded ``str`` holds the wire bytes one for one, and a
``str`` given to the encoder must be latin-1 (pass ``bytes`` for anything else).
"""
from libc.stdint cimport uint8_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport malloc, calloc, free
from libc.string cimport memcmp, memcpy, memset
from cpython.object cimport PyObject, PyObject_Hash, PyTypeObject
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.bytes cimport PyBytes_FromStringAndSize, PyBytes_AS_STRING, PyBytes_GET_SIZE, PyBytes_CheckExact
from cpython.unicode cimport (
    PyUnicode_CheckExact, PyUnicode_Check, PyUnicode_KIND, PyUnicode_DATA, PyUnicode_GET_LENGTH,
    PyUnicode_1BYTE_KIND, PyUnicode_DecodeLatin1, PyUnicode_AsLatin1String, PyUnicode_DecodeUTF8,
)
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_SIMPLE
from cpython.exc cimport PyErr_NoMemory
from cpython.pyport cimport PY_SSIZE_T_MAX
from cpython.list cimport PyList_GET_SIZE
from cpython.tuple cimport PyTuple_GET_SIZE, PyTuple_GET_ITEM, PyTuple_Check

from cno._buffer cimport WriteBuffer, buf_reserve, buf_put, buf_free
from cno._pylist cimport list_push, list_with_room
from cno._identity cimport identity_hash, identity_find, identity_put, identity_clear
from cno._fields cimport is_field, field_ptr

import sys

from cno.errors import (
    HPACKDecodingError, InvalidTableIndex, InvalidTableSizeError, OversizedHeaderListError,
)

cdef extern from "_huffman_table.h":
    const uint32_t cno_huff_code[256]
    const uint8_t cno_huff_bits[256]
    const uint32_t cno_huff_decode[256 * 256]
    uint32_t CNO_HUFF_ACCEPT
    uint32_t CNO_HUFF_FAIL
    int CNO_HUFF_NEMIT_SHIFT
    int CNO_HUFF_STATE_SHIFT


DEFAULT_HEADER_TABLE_SIZE = 4096
# RFC 9113 leaves SETTINGS_MAX_HEADER_LIST_SIZE unlimited; 64 KiB is what the hpack
# package and most servers accept, and far above what real requests carry.
DEFAULT_MAX_HEADER_LIST_SIZE = 65536
# The encoder's table size is the peer's to choose (SETTINGS_HEADER_TABLE_SIZE); we use
# at most this much, as nghttp2 does, so a peer cannot make us keep every distinct value
# we ever send.
DEFAULT_ENCODER_TABLE_CAP = 4096

cdef enum:
    STATIC_COUNT = 61
    ENTRY_OVERHEAD = 32          # RFC 7541 section 4.1
    INT_MAX_CONTINUATIONS = 5    # 5 x 7 bits hold any value up to 2^32 - 1
    # Encoder policy per static name (RFC 7541 section 7.1.3, and nghttp2's choices).
    POLICY_NO_INDEX = 1          # values rarely repeat: indexed only once seen twice
    POLICY_SENSITIVE = 2         # credentials: always a never-indexed literal
    POLICY_SHORT_SENSITIVE = 4   # cookies shorter than 20 bytes can be guessed
    SHORT_COOKIE = 20


class HeaderTuple(tuple):
    """A ``(name, value)`` header that may be added to the compression context.

    Decoded headers are plain tuples unless :attr:`Decoder.tuple_types` says otherwise;
    this class exists so that code written for the ``hpack`` package can build headers
    the same way.
    """
    __slots__ = ()
    indexable = True

    def __new__(cls, *args):
        return tuple.__new__(cls, args)


class NeverIndexedHeaderTuple(HeaderTuple):
    """A ``(name, value)`` header that must never be indexed (RFC 7541 section 7.1.3).

    The encoder writes it as a never-indexed literal; the decoder returns one for every
    never-indexed literal it reads, so a proxy that re-encodes it keeps the property.
    """
    __slots__ = ()
    indexable = False


# ----------------------------------------------------------------------------------------
# Static table (RFC 7541 Appendix A), kept as C arrays of interned Python objects.

_STATIC_TABLE = (
    (":authority", ""), (":method", "GET"), (":method", "POST"), (":path", "/"),
    (":path", "/index.html"), (":scheme", "http"), (":scheme", "https"), (":status", "200"),
    (":status", "204"), (":status", "206"), (":status", "304"), (":status", "400"),
    (":status", "404"), (":status", "500"), ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"), ("accept-language", ""), ("accept-ranges", ""),
    ("accept", ""), ("access-control-allow-origin", ""), ("age", ""), ("allow", ""),
    ("authorization", ""), ("cache-control", ""), ("content-disposition", ""),
    ("content-encoding", ""), ("content-language", ""), ("content-length", ""),
    ("content-location", ""), ("content-range", ""), ("content-type", ""), ("cookie", ""),
    ("date", ""), ("etag", ""), ("expect", ""), ("expires", ""), ("from", ""), ("host", ""),
    ("if-match", ""), ("if-modified-since", ""), ("if-none-match", ""), ("if-range", ""),
    ("if-unmodified-since", ""), ("last-modified", ""), ("link", ""), ("location", ""),
    ("max-forwards", ""), ("proxy-authenticate", ""), ("proxy-authorization", ""),
    ("range", ""), ("referer", ""), ("refresh", ""), ("retry-after", ""), ("server", ""),
    ("set-cookie", ""), ("strict-transport-security", ""), ("transfer-encoding", ""),
    ("user-agent", ""), ("vary", ""), ("via", ""), ("www-authenticate", ""),
)
_STATIC_POLICY = {
    ":path": POLICY_NO_INDEX, "content-length": POLICY_NO_INDEX, "set-cookie": POLICY_NO_INDEX,
    "etag": POLICY_NO_INDEX, "if-modified-since": POLICY_NO_INDEX,
    "if-none-match": POLICY_NO_INDEX, "location": POLICY_NO_INDEX, "age": POLICY_NO_INDEX,
    "authorization": POLICY_SENSITIVE, "proxy-authorization": POLICY_SENSITIVE,
    "cookie": POLICY_SHORT_SENSITIVE,
}

cdef DecodedEntry STATIC_DEC[STATIC_COUNT + 1]     # 1-based, as on the wire
cdef EncodedEntry STATIC_ENC[64]                   # 1-based; 64 so the id mask is 63
cdef uint8_t STATIC_POLICY[STATIC_COUNT + 1]       # by the first index of each name
cdef uint8_t STATIC_GROUP_END[STATIC_COUNT + 1]    # last index with the same name
cdef HashIndex STATIC_BY_NAME                      # name -> first static index
cdef list _static_objects = []                     # owns the objects the arrays point to


cdef inline Py_hash_t pair_hash(Py_hash_t name_hash, Py_hash_t value_hash) noexcept:
    return <Py_hash_t>(<uint64_t>name_hash * <uint64_t>1000003) ^ value_hash


cdef object _own(object o):
    _static_objects.append(o)
    return o


cdef int _init_static() except -1:
    cdef Py_ssize_t i, first = 1
    cdef object name, value, bname, bvalue
    # Our encoder's lookups rely on str and bytes of equal latin-1 content hashing alike
    # (true of CPython: both hash their 1-byte data).
    if hash("a\xe9") != hash(b"a\xe9") or hash("") != hash(b""):
        raise ImportError("cno._hpack needs str and bytes hashes to agree (CPython)")
    index_init(&STATIC_BY_NAME, 128)
    for i in range(1, STATIC_COUNT + 1):
        name, value = _STATIC_TABLE[i - 1]
        name = _own(sys.intern(name))
        value = _own(sys.intern(value))
        bname = _own(name.encode("latin-1"))
        bvalue = _own(value.encode("latin-1"))
        STATIC_DEC[i].name_str = <PyObject*> name
        STATIC_DEC[i].value_str = <PyObject*> value
        STATIC_DEC[i].name_bytes = <PyObject*> bname
        STATIC_DEC[i].value_bytes = <PyObject*> bvalue
        STATIC_DEC[i].size = len(name) + len(value) + ENTRY_OVERHEAD
        STATIC_ENC[i].name = <PyObject*> name
        STATIC_ENC[i].value = <PyObject*> value
        STATIC_ENC[i].name_hash = PyObject_Hash(name)
        STATIC_ENC[i].pair_hash = pair_hash(STATIC_ENC[i].name_hash, PyObject_Hash(value))
        STATIC_ENC[i].size = STATIC_DEC[i].size
        if i == 1 or name != _STATIC_TABLE[i - 2][0]:
            first = i
            STATIC_POLICY[i] = _STATIC_POLICY.get(name, 0)
            index_add(&STATIC_BY_NAME, STATIC_ENC, 63, 1, i, STATIC_ENC[i].name_hash, False)
        STATIC_GROUP_END[first] = i
    return 0


# ----------------------------------------------------------------------------------------
# Primitives: integers (5.1), strings (5.2), Huffman (Appendix B).

cdef inline int read_int(const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos, int prefix,
                         uint32_t* out) noexcept:
    """Read a prefix integer at p[*pos] (the caller checked *pos < n)."""
    cdef Py_ssize_t i = pos[0]
    cdef uint32_t mask = (1u << prefix) - 1
    cdef uint64_t value = p[i] & mask
    cdef int shift = 0, k
    cdef uint8_t b
    i += 1
    if value == mask:
        for k in range(INT_MAX_CONTINUATIONS + 1):
            if k == INT_MAX_CONTINUATIONS:
                return HPACK_ERR_INTEGER
            if i >= n:
                return HPACK_ERR_TRUNCATED
            b = p[i]
            i += 1
            value += <uint64_t>(b & 0x7F) << shift
            if not (b & 0x80):
                break
            shift += 7
        if value > 0xFFFFFFFFu:
            return HPACK_ERR_INTEGER
    pos[0] = i
    out[0] = <uint32_t> value
    return HPACK_OK


cdef inline int put_int(WriteBuffer* b, uint8_t flags, int prefix, uint64_t value) except -1:
    cdef uint64_t mask = (1u << prefix) - 1
    buf_reserve(b, 11)
    if value < mask:
        b.data[b.len] = flags | <uint8_t> value
        b.len += 1
        return 0
    b.data[b.len] = flags | <uint8_t> mask
    b.len += 1
    value -= mask
    while value >= 0x80:
        b.data[b.len] = <uint8_t>(value & 0x7F) | 0x80
        b.len += 1
        value >>= 7
    b.data[b.len] = <uint8_t> value
    b.len += 1
    return 0


cdef inline Py_ssize_t huffman_length(const uint8_t* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t i
    cdef uint64_t bits = 0
    for i in range(n):
        bits += cno_huff_bits[p[i]]
    return <Py_ssize_t>((bits + 7) >> 3)


cdef inline void huffman_encode(uint8_t* out, const uint8_t* p, Py_ssize_t n) noexcept:
    # At most 7 bits wait in `acc` between symbols and a code has at most 30 bits, so the
    # live bits always fit in 64.
    cdef uint64_t acc = 0
    cdef int bits = 0
    cdef Py_ssize_t i
    cdef uint8_t c
    for i in range(n):
        c = p[i]
        acc = (acc << cno_huff_bits[c]) | cno_huff_code[c]
        bits += cno_huff_bits[c]
        while bits >= 8:
            bits -= 8
            out[0] = <uint8_t>(acc >> bits)
            out += 1
    if bits:
        # RFC 7541 5.2: pad with the most significant bits of EOS (all ones).
        out[0] = <uint8_t>((acc << (8 - bits)) | (0xFF >> bits))


cdef inline int huffman_decode(WriteBuffer* out, const uint8_t* p, Py_ssize_t n) except -1:
    """Decode into out (from its start). Returns HPACK_OK or HPACK_ERR_HUFFMAN."""
    # Each input byte emits at most two symbols and the codes are >= 5 bits; the table
    # writes both symbol slots unconditionally, hence the slack of 2.
    out.len = 0
    buf_reserve(out, (n * 8) // 5 + 2)
    cdef uint8_t* o = out.data
    cdef Py_ssize_t i, k = 0
    cdef uint32_t e = CNO_HUFF_ACCEPT, state = 0
    for i in range(n):
        e = cno_huff_decode[(state << 8) | p[i]]
        if e & CNO_HUFF_FAIL:
            return HPACK_ERR_HUFFMAN          # EOS inside a string (5.2)
        o[k] = <uint8_t> e
        o[k + 1] = <uint8_t>(e >> 8)
        k += (e >> CNO_HUFF_NEMIT_SHIFT) & 3
        state = (e >> CNO_HUFF_STATE_SHIFT) & 0xFF
    if not (e & CNO_HUFF_ACCEPT):
        return HPACK_ERR_HUFFMAN              # padding over 7 bits, or not EOS's prefix (5.2)
    out.len = k
    return HPACK_OK


cdef inline int put_string(WriteBuffer* b, const uint8_t* p, Py_ssize_t n, bint huffman) except -1:
    cdef Py_ssize_t hlen
    if huffman and n:
        hlen = huffman_length(p, n)
        if hlen < n:  # Huffman only when it is shorter
            put_int(b, 0x80, 7, hlen)
            buf_reserve(b, hlen)
            huffman_encode(b.data + b.len, p, n)
            b.len += hlen
            return 0
    put_int(b, 0, 7, n)
    buf_put(b, p, n)
    return 0


cdef int put_string_huffman(WriteBuffer* b, const uint8_t* p, Py_ssize_t n) except -1:
    """5.2, as the hpack package writes strings: Huffman-coded whatever the length, the
    empty string too (the H bit, length 0)."""
    cdef Py_ssize_t hlen = huffman_length(p, n)
    put_int(b, 0x80, 7, hlen)
    buf_reserve(b, hlen)
    huffman_encode(b.data + b.len, p, n)
    b.len += hlen
    return 0


# ----------------------------------------------------------------------------------------
# Field objects for the encoder: exact str (1-byte kind) or exact bytes.

cdef object as_field(object o):
    """Return o as an exact bytes, or an exact str whose characters are all latin-1."""
    if PyBytes_CheckExact(o):
        return o
    if PyUnicode_CheckExact(o):
        if PyUnicode_KIND(o) == PyUnicode_1BYTE_KIND:
            return o
        return PyUnicode_AsLatin1String(o)   # raises UnicodeEncodeError: not latin-1
    if isinstance(o, (bytes, bytearray, memoryview)):
        return bytes(o)
    return as_field(str(o))   # like hpack: numbers and other objects by their str()


cdef inline bint field_equals(PyObject* o, const uint8_t* p, Py_ssize_t n) noexcept:
    cdef Py_ssize_t m
    cdef const uint8_t* q = field_ptr(<object> o, &m)
    return m == n and (q == p or memcmp(q, p, n) == 0)


# ----------------------------------------------------------------------------------------
# Hash index over encoder entries (ids; see HashIndex in the .pxd).

cdef int index_init(HashIndex* ix, Py_ssize_t slots) except -1:
    cdef int64_t* s = <int64_t*> malloc(slots * sizeof(int64_t))
    if s == NULL:
        PyErr_NoMemory()
        return -1
    memset(s, 0xFF, slots * sizeof(int64_t))  # every slot -1: empty
    free(ix.slots)
    ix.slots = s
    ix.mask = slots - 1
    ix.used = 0
    return 0


cdef inline int64_t index_find(HashIndex* ix, EncodedEntry* entries, Py_ssize_t emask,
                               int64_t oldest, Py_hash_t h, const uint8_t* name,
                               Py_ssize_t name_len, const uint8_t* value,
                               Py_ssize_t value_len, bint by_pair) noexcept:
    """Id of an entry with this name (and value, if by_pair), or -1."""
    cdef Py_ssize_t pos = <size_t> h & ix.mask
    cdef int64_t id
    cdef EncodedEntry* e
    while True:
        id = ix.slots[pos]
        if id < 0:
            return -1
        if id >= oldest:
            e = &entries[id & emask]
            if by_pair:
                if (e.pair_hash == h and field_equals(e.name, name, name_len)
                        and field_equals(e.value, value, value_len)):
                    return id
            elif e.name_hash == h and field_equals(e.name, name, name_len):
                return id
        pos = (pos + 1) & ix.mask


cdef inline void index_add(HashIndex* ix, EncodedEntry* entries, Py_ssize_t emask,
                           int64_t oldest, int64_t new_id, Py_hash_t h, bint by_pair) noexcept:
    """Point the key of entry new_id at it: reuse its key's slot or a stale one."""
    cdef Py_ssize_t pos = <size_t> h & ix.mask
    cdef int64_t id
    cdef EncodedEntry* e
    cdef EncodedEntry* new = &entries[new_id & emask]
    cdef Py_ssize_t nlen, vlen
    cdef const uint8_t* np = field_ptr(<object> new.name, &nlen)
    cdef const uint8_t* vp = field_ptr(<object> new.value, &vlen)
    while True:
        id = ix.slots[pos]
        if id < 0:
            ix.used += 1
            break
        if id < oldest:
            break
        e = &entries[id & emask]
        if by_pair:
            if (e.pair_hash == h and field_equals(e.name, np, nlen)
                    and field_equals(e.value, vp, vlen)):
                break
        elif e.name_hash == h and field_equals(e.name, np, nlen):
            break
        pos = (pos + 1) & ix.mask
    ix.slots[pos] = new_id


# ----------------------------------------------------------------------------------------
# Decoder

cdef inline object entry_string(PyObject** as_str, PyObject** as_bytes, bint raw):
    """One string of an entry (its name or its value) in the form asked for, latin-1
    ``str`` or ``bytes``: made from the other form the first time, then kept."""
    cdef object s
    if raw:
        if as_bytes[0] == NULL:
            s = PyBytes_FromStringAndSize(<char*> PyUnicode_DATA(<object> as_str[0]),
                                          PyUnicode_GET_LENGTH(<object> as_str[0]))
            Py_INCREF(s)
            as_bytes[0] = <PyObject*> s
        return <object> as_bytes[0]
    if as_str[0] == NULL:
        s = PyUnicode_DecodeLatin1(PyBytes_AS_STRING(<object> as_bytes[0]),
                                   PyBytes_GET_SIZE(<object> as_bytes[0]), NULL)
        Py_INCREF(s)
        as_str[0] = <PyObject*> s
    return <object> as_str[0]


cdef inline object entry_name(DecodedEntry* e, bint raw):
    return entry_string(&e.name_str, &e.name_bytes, raw)


cdef inline object entry_value(DecodedEntry* e, bint raw):
    return entry_string(&e.value_str, &e.value_bytes, raw)


cdef inline object entry_pair(DecodedEntry* e, bint raw):
    """The entry's (name, value) tuple, made once per form and then shared."""
    cdef object t
    if raw:
        if e.pair_bytes == NULL:
            t = (entry_name(e, True), entry_value(e, True))
            Py_INCREF(t)
            e.pair_bytes = <PyObject*> t
        return <object> e.pair_bytes
    if e.pair_str == NULL:
        t = (entry_name(e, False), entry_value(e, False))
        Py_INCREF(t)
        e.pair_str = <PyObject*> t
    return <object> e.pair_str


cdef inline Py_ssize_t field_len(object o) noexcept:
    if PyBytes_CheckExact(o):
        return PyBytes_GET_SIZE(o)
    return PyUnicode_GET_LENGTH(o)


cdef inline void entry_clear(DecodedEntry* e) noexcept:
    Py_XDECREF(e.name_str)
    Py_XDECREF(e.value_str)
    Py_XDECREF(e.name_bytes)
    Py_XDECREF(e.value_bytes)
    Py_XDECREF(e.pair_str)
    Py_XDECREF(e.pair_bytes)
    Py_XDECREF(e.typed_str)
    Py_XDECREF(e.typed_bytes)
    memset(e, 0, sizeof(DecodedEntry))


_DECODE_ERRORS = {
    HPACK_ERR_TRUNCATED: (HPACKDecodingError, "header block truncated"),
    HPACK_ERR_INTEGER: (HPACKDecodingError, "integer too large or too long"),
    HPACK_ERR_HUFFMAN: (HPACKDecodingError, "invalid Huffman string (EOS or bad padding)"),
    HPACK_ERR_INDEX: (InvalidTableIndex, "index 0 or past the end of the table"),
    HPACK_ERR_SIZE_UPDATE_LATE: (InvalidTableSizeError,
                                 "table size update after the first header field"),
    HPACK_ERR_SIZE_UPDATE_LIMIT: (InvalidTableSizeError,
                                  "table size update above SETTINGS_HEADER_TABLE_SIZE"),
    HPACK_ERR_SIZE_UPDATE_MISSING: (InvalidTableSizeError,
                                    "table size limit was lowered but the block does not "
                                    "start with a size update down to it"),
}


cdef int raise_decode_error(int status, Decoder d) except -1:
    if status == HPACK_ERR_LIST_SIZE:
        raise OversizedHeaderListError(
            "header list larger than max_header_list_size (%d) or longer than "
            "max_header_count (%d)" % (d.list_limit, d.count_limit))
    cls, text = _DECODE_ERRORS[status]
    raise cls(text)


cdef inline object typed_pair(type cls, tuple pair):
    """`pair` as an instance of the tuple subclass `cls`, made by tuple's own tp_new as
    ``tuple.__new__(cls, pair)`` makes it (cls's __new__ and __init__ are not run; the
    classes were checked to add no instance fields, see check_tuple_type)."""
    cdef tuple args = (pair,)
    return (<PyTypeObject*> tuple).tp_new(cls, <PyObject*> args, NULL)


cdef type check_tuple_type(object cls):
    """The class to build fields as for a class given to tuple_types: None for tuple
    itself (plain tuples), or `cls` if it is a subclass of tuple defined in Python with no
    instance fields (no __dict__, no __weakref__), else TypeError. Decoded fields are shared
    between header lists (one per table entry), so they must be as immutable as tuples."""
    if cls is tuple:
        return None
    if not isinstance(cls, type) or not issubclass(cls, tuple):
        raise TypeError("tuple_types: %r is not a subclass of tuple" % (cls,))
    if (cls.__basicsize__ != tuple.__basicsize__ or cls.__itemsize__ != tuple.__itemsize__
            or cls.__dictoffset__ or cls.__weakrefoffset__):
        raise TypeError("tuple_types: %r adds instance fields (give it __slots__ = ())"
                        % (cls,))
    for base in cls.__mro__:
        # Only classes of class statements (their instances freed as tuples are): a C
        # subclass such as os.stat_result keeps hidden items past the tuple's own.
        if (base is not tuple and base is not object
                and (<PyTypeObject*> base).tp_dealloc != (<PyTypeObject*> HeaderTuple).tp_dealloc):
            raise TypeError("tuple_types: %r is not a tuple subclass defined in Python"
                            % (cls,))
    return cls


def decode_fields(list headers, str encoding):
    """A received header list of ``bytes`` names and values (as the decoder hands them
    out with ``raw=True``) decoded to ``str`` with ``encoding``: a new list, each field
    of its own class again (a tuple subclass built as :attr:`Decoder.tuple_types` builds
    it), for faces that deliver text headers. UnicodeDecodeError as ``bytes.decode``;
    TypeError for a field that is not a 2-tuple or whose class adds instance fields."""
    cdef list out = list_with_room(PyList_GET_SIZE(headers))
    cdef bint utf8 = encoding == "utf-8" or encoding == "utf8"
    cdef object item, name, value, pair
    cdef type cls, checked = tuple, checked_too = tuple   # (classes found fit: see below)
    for item in headers:
        if not PyTuple_Check(item) or PyTuple_GET_SIZE(item) != 2:
            raise TypeError("decode_fields: %r is not a (name, value) tuple" % (item,))
        name = <object> PyTuple_GET_ITEM(item, 0)
        value = <object> PyTuple_GET_ITEM(item, 1)
        if utf8 and PyBytes_CheckExact(name) and PyBytes_CheckExact(value):
            name = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(name), PyBytes_GET_SIZE(name), NULL)
            value = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(value), PyBytes_GET_SIZE(value),
                                         NULL)
        else:
            name = name.decode(encoding)
            value = value.decode(encoding)
        pair = (name, value)
        cls = type(item)
        if cls is not checked and cls is not checked_too:
            # tuple's tp_new is safe on a subclass with no fields of its own only (not
            # on a struct sequence, say): each new class is checked once per call
            check_tuple_type(cls)
            checked_too = checked
            checked = cls
        list_push(out, pair if cls is tuple else typed_pair(cls, pair))
    return out


def find_field(list headers, bytes name, Py_ssize_t start=0):
    """The index of the first field of `headers` (a list of ``(name, value)`` tuples, or
    tuple subclasses, as the decoder hands them out with ``raw=True``) at or after
    `start` whose name is the bytes `name`, or -1: one scan in C, for faces that look for
    a field in a received list (a Python loop over tuple subclasses is slow)."""
    cdef Py_ssize_t i, m = PyBytes_GET_SIZE(name)
    cdef const char* want = PyBytes_AS_STRING(name)
    cdef object item, field
    for i in range(max(start, 0), PyList_GET_SIZE(headers)):
        item = headers[i]
        if not PyTuple_Check(item) or PyTuple_GET_SIZE(item) < 1:
            continue
        field = <object> PyTuple_GET_ITEM(item, 0)
        if (PyBytes_CheckExact(field) and PyBytes_GET_SIZE(field) == m
                and memcmp(PyBytes_AS_STRING(field), want, m) == 0):
            return i
    return -1


cdef class Decoder:
    """Decodes HPACK header blocks; one per connection direction (it holds the table).

    ``decode(data)`` returns a list of ``(name, value)`` tuples of latin-1 ``str``
    (``raw=True``: ``bytes``); never-indexed fields come as :class:`NeverIndexedHeaderTuple`.
    :attr:`tuple_types` chooses other classes.
    """

    def __cinit__(self):
        self.entries = <DecodedEntry*> calloc(16, sizeof(DecodedEntry))
        if self.entries == NULL:
            raise MemoryError()
        self.ring_mask = 15
        self.newest = 0
        self.max_size = DEFAULT_HEADER_TABLE_SIZE
        self.settings_limit = DEFAULT_HEADER_TABLE_SIZE
        self.required_update = -1
        self.count_limit = PY_SSIZE_T_MAX
        self.never_type = NeverIndexedHeaderTuple

    def __init__(self, max_header_list_size=DEFAULT_MAX_HEADER_LIST_SIZE,
                 max_header_count=None):
        self.max_header_list_size = max_header_list_size
        self.max_header_count = max_header_count

    @property
    def max_header_count(self):
        """Most fields decode() returns in one list; None (the default) means no limit.
        A list of cheap indexed references to one table entry is small on the wire and
        large in memory ("HTTP/2 bomb"): the count bounds it apart from the size."""
        return None if self.count_limit == PY_SSIZE_T_MAX else self.count_limit

    @max_header_count.setter
    def max_header_count(self, value):
        if value is None:
            value = PY_SSIZE_T_MAX
        if value < 0:
            raise ValueError("max_header_count must not be negative")
        self.count_limit = value

    @property
    def max_header_list_size(self):
        """Largest header list decode() returns (RFC 9113 6.5.2 accounting: name + value
        + 32 per field); None, when set, means no limit."""
        return self.list_limit

    @max_header_list_size.setter
    def max_header_list_size(self, value):
        if value is None:
            value = PY_SSIZE_T_MAX
        if value < 0:
            raise ValueError("max_header_list_size must not be negative")
        self.list_limit = value

    def __dealloc__(self):
        if self.entries != NULL:
            self._evict_to(0)
            free(self.entries)
        self._forget_typed()
        free(self.static_typed)
        buf_free(&self.scratch)

    @property
    def tuple_types(self):
        """None (the default), or a pair ``(field_type, never_indexed_type)`` of tuple
        subclasses: decoded fields are instances of ``field_type``, and fields sent as
        never-indexed literals (RFC 7541 section 6.2.3) of ``never_indexed_type`` (e.g.
        the ``hpack`` package's ``HeaderTuple`` and ``NeverIndexedHeaderTuple``).
        ``tuple`` itself in either place means plain tuples. The classes must be defined
        in Python (a class statement) and add no instance fields (``__slots__ = ()``;
        TypeError otherwise): a field repeated
        through the table is one object, shared between the lists it appears in. The
        instances are built in C as ``tuple.__new__(cls, (name, value))`` would build
        them (the class's own ``__new__`` and ``__init__`` are not run). None:
        plain tuples, and :class:`NeverIndexedHeaderTuple` for never-indexed fields."""
        return self.types_given

    @tuple_types.setter
    def tuple_types(self, value):
        cdef type field_type = None
        cdef type never_type = NeverIndexedHeaderTuple
        if value is not None:
            if not isinstance(value, tuple) or len(value) != 2:
                raise TypeError("tuple_types must be None or a pair of tuple subclasses")
            field_type = check_tuple_type(value[0])
            never_type = check_tuple_type(value[1])
            value = (value[0], value[1])
        self._forget_typed()
        if field_type is not None and self.static_typed == NULL:
            self.static_typed = <PyObject**> calloc(2 * (STATIC_COUNT + 1), sizeof(PyObject*))
            if self.static_typed == NULL:
                raise MemoryError()
        self.field_type = field_type
        self.never_type = never_type
        self.types_given = value

    cdef void _forget_typed(self) noexcept:
        """Drop the field_type instances cached for the table's entries."""
        cdef Py_ssize_t i
        cdef DecodedEntry* e
        if self.static_typed != NULL:
            for i in range(2 * (STATIC_COUNT + 1)):
                Py_XDECREF(self.static_typed[i])
                self.static_typed[i] = NULL
        for i in range(self.count):
            e = &self.entries[(self.newest - i) & self.ring_mask]
            Py_XDECREF(e.typed_str)
            Py_XDECREF(e.typed_bytes)
            e.typed_str = e.typed_bytes = NULL

    cdef object _typed_entry(self, DecodedEntry* e, uint32_t index, bint raw):
        """The field of entry `e` (at HPACK index `index`) as an instance of field_type,
        made once per entry and form and then shared, as entry_pair's tuple is (so the
        engine's identity caches still find it). (Not through entry_pair: its one call
        in decode_into stays inlined.)"""
        cdef PyObject** slot
        cdef object t
        if index <= STATIC_COUNT:
            # (the static table's entries are shared by every decoder: the instances of
            # this decoder's class are kept in its own array)
            slot = &self.static_typed[2 * index + raw]
        elif raw:
            slot = &e.typed_bytes
        else:
            slot = &e.typed_str
        if slot[0] == NULL:
            t = typed_pair(self.field_type, (entry_name(e, raw), entry_value(e, raw)))
            Py_INCREF(t)
            slot[0] = <PyObject*> t
        return <object> slot[0]

    @property
    def header_table_size(self):
        """The table's current maximum size, as the peer's encoder last set it."""
        return self.max_size

    @header_table_size.setter
    def header_table_size(self, Py_ssize_t value):
        if value < 0:
            raise ValueError("header_table_size must not be negative")
        self._resize(value)

    @property
    def max_allowed_table_size(self):
        """Our SETTINGS_HEADER_TABLE_SIZE: the peer's size updates may not exceed it.

        Set it when the peer acknowledges the setting. Lowering it below the table's
        current size obliges the peer to start its next block with a size update no
        larger than the smallest limit set since (RFC 7541 section 4.2), which the
        decoder then enforces.
        """
        return self.settings_limit

    @max_allowed_table_size.setter
    def max_allowed_table_size(self, Py_ssize_t value):
        if value < 0:
            raise ValueError("max_allowed_table_size must not be negative")
        self.settings_limit = value
        if value < self.max_size and (self.required_update < 0 or value < self.required_update):
            self.required_update = value

    def __len__(self):
        """Number of entries in the dynamic table."""
        return self.count

    @property
    def table_bytes(self):
        """Current size of the dynamic table (RFC 7541 section 4.1 accounting)."""
        return self.size

    def decode(self, data, bint raw=False):
        """Decode one header block (bytes, bytearray, memoryview or any buffer).

        Raises HPACKDecodingError (a subclass for each kind of fault) on a malformed
        block, and OversizedHeaderListError once the whole block has been decoded if the
        list exceeds ``max_header_list_size``.
        """
        cdef list out = []
        cdef int status
        cdef Py_buffer view
        if PyBytes_CheckExact(data):
            status = self.decode_into(<const uint8_t*> PyBytes_AS_STRING(data),
                                      PyBytes_GET_SIZE(data), out, raw)
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                status = self.decode_into(<const uint8_t*> view.buf, view.len, out, raw)
            finally:
                PyBuffer_Release(&view)
        if status:
            raise_decode_error(status, self)
        return out

    cdef int raise_error(self, int status) except -1:
        """Raise the exception for a decode_into status (for the engine)."""
        return raise_decode_error(status, self)

    cdef int _resize(self, Py_ssize_t max_size) except -1:
        self.max_size = max_size
        self._evict_to(max_size)
        return 0

    cdef void _evict_to(self, Py_ssize_t limit) noexcept:
        cdef DecodedEntry* e
        while self.size > limit and self.count:
            e = &self.entries[(self.newest - self.count + 1) & self.ring_mask]
            self.size -= e.size
            entry_clear(e)
            self.count -= 1

    cdef int _insert(self, object name, object value, Py_ssize_t size, bint raw) except -1:
        cdef Py_ssize_t i, cap
        cdef DecodedEntry* grown
        cdef DecodedEntry* e
        if size > self.max_size:
            self._evict_to(0)   # RFC 7541 4.4: an entry too large empties the table
            return 0
        self._evict_to(self.max_size - size)
        if self.count > self.ring_mask:
            cap = (self.ring_mask + 1) * 2
            grown = <DecodedEntry*> calloc(cap, sizeof(DecodedEntry))
            if grown == NULL:
                raise MemoryError()
            for i in range(self.count):   # oldest first, newest at count - 1
                grown[i] = self.entries[(self.newest - self.count + 1 + i) & self.ring_mask]
            free(self.entries)
            self.entries = grown
            self.ring_mask = cap - 1
            self.newest = self.count - 1
        self.newest = (self.newest + 1) & self.ring_mask
        e = &self.entries[self.newest]
        Py_INCREF(name)
        Py_INCREF(value)
        if raw:
            e.name_bytes = <PyObject*> name
            e.value_bytes = <PyObject*> value
        else:
            e.name_str = <PyObject*> name
            e.value_str = <PyObject*> value
        e.size = size
        self.count += 1
        self.size += size
        return 0

    cdef DecodedEntry* _entry(self, uint32_t index) noexcept:
        """Entry at an HPACK index (2.3.3), or NULL if there is none."""
        if index == 0:
            return NULL
        if index <= STATIC_COUNT:
            return &STATIC_DEC[index]
        index -= STATIC_COUNT + 1
        if index >= <uint32_t> self.count:
            return NULL
        return &self.entries[(self.newest - index) & self.ring_mask]

    cdef object _read_string(self, const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos, bint raw,
                             int* status):
        cdef uint32_t length
        cdef bint huffman
        cdef const uint8_t* s
        if pos[0] >= n:
            status[0] = HPACK_ERR_TRUNCATED
            return None
        huffman = p[pos[0]] & 0x80
        status[0] = read_int(p, n, pos, 7, &length)
        if status[0]:
            return None
        if length > <uint64_t>(n - pos[0]):
            status[0] = HPACK_ERR_TRUNCATED
            return None
        s = p + pos[0]
        pos[0] += length
        if huffman:
            status[0] = huffman_decode(&self.scratch, s, length)
            if status[0]:
                return None
            s = self.scratch.data
            length = <uint32_t> self.scratch.len
        if raw:
            return PyBytes_FromStringAndSize(<const char*> s, length)
        return PyUnicode_DecodeLatin1(<const char*> s, length, NULL)

    cdef int decode_into(self, const uint8_t* p, Py_ssize_t n, list out, bint raw) except -1:
        cdef Py_ssize_t pos = 0, list_size = 0, size, fields = 0
        cdef bint fields_seen = False, never
        cdef uint8_t b
        cdef uint32_t index
        cdef int status = HPACK_OK, prefix
        cdef DecodedEntry* e
        cdef object name, value
        while pos < n:
            b = p[pos]
            if not fields_seen and (b & 0xE0) != 0x20 and self.required_update >= 0:
                return HPACK_ERR_SIZE_UPDATE_MISSING
            if b & 0x80:
                # 6.1 Indexed Header Field
                status = read_int(p, n, &pos, 7, &index)
                if status:
                    return status
                e = self._entry(index)
                if e == NULL:
                    return HPACK_ERR_INDEX
                fields_seen = True
                list_size += e.size
                fields += 1
                if list_size <= self.list_limit and fields <= self.count_limit:
                    if self.field_type is None:
                        list_push(out, entry_pair(e, raw))
                    else:
                        list_push(out, self._typed_entry(e, index, raw))
                continue
            if (b & 0xE0) == 0x20:
                # 6.3 Dynamic Table Size Update: only before the first field (4.2)
                if fields_seen:
                    return HPACK_ERR_SIZE_UPDATE_LATE
                status = read_int(p, n, &pos, 5, &index)
                if status:
                    return status
                if index > <uint64_t> self.settings_limit:
                    return HPACK_ERR_SIZE_UPDATE_LIMIT
                self._resize(index)
                if index <= <uint64_t> self.required_update:
                    self.required_update = -1
                continue
            # 6.2 Literal Header Field: with incremental indexing (01), without (0000),
            # never indexed (0001)
            prefix = 6 if b & 0x40 else 4
            never = (b & 0xF0) == 0x10
            status = read_int(p, n, &pos, prefix, &index)
            if status:
                return status
            if index:
                e = self._entry(index)
                if e == NULL:
                    return HPACK_ERR_INDEX
                name = entry_name(e, raw)
            else:
                name = self._read_string(p, n, &pos, raw, &status)
                if status:
                    return status
            value = self._read_string(p, n, &pos, raw, &status)
            if status:
                return status
            fields_seen = True
            size = field_len(name) + field_len(value) + ENTRY_OVERHEAD
            if prefix == 6:
                self._insert(name, value, size, raw)
            list_size += size
            fields += 1
            if list_size <= self.list_limit and fields <= self.count_limit:
                if never:
                    if self.never_type is None:
                        list_push(out, (name, value))
                    else:
                        list_push(out, typed_pair(self.never_type, (name, value)))
                elif self.field_type is None:
                    list_push(out, (name, value))
                else:
                    list_push(out, typed_pair(self.field_type, (name, value)))
        if self.required_update >= 0:
            return HPACK_ERR_SIZE_UPDATE_MISSING   # a block of nothing, or of updates too big
        if list_size > self.list_limit or fields > self.count_limit:
            # Checked only now: the whole block had to be decoded to keep the table in
            # step with the peer (RFC 9113 4.3).
            return HPACK_ERR_LIST_SIZE
        return HPACK_OK


# ----------------------------------------------------------------------------------------
# Encoder

cdef enum:
    IDENT_SLOTS = 64      # (the size of Encoder.ident_key: see cno/_identity.pxd)
    IDENT_MAX_LEN = 256   # name + value bytes of a field worth remembering (Encoder.ident_key)


cdef inline void enc_entry_clear(EncodedEntry* e) noexcept:
    Py_XDECREF(e.name)
    Py_XDECREF(e.value)
    e.name = NULL
    e.value = NULL


cdef inline bint dynamic_lookup(Encoder e, WriteBuffer* out, Py_hash_t nh, Py_hash_t ph,
                                const uint8_t* np, Py_ssize_t nlen, const uint8_t* vp,
                                Py_ssize_t vlen, bint whole, Py_ssize_t* name_index) except -1:
    """The encoder's dynamic table, for both of its policies: with `whole`, an entry with
    this name and value is written as its index (6.1; True is returned); otherwise, when
    name_index[0] is 0 (no static entry has the name), it becomes the index of the newest
    entry with the name, if any."""
    cdef int64_t id
    if whole:
        id = index_find(&e.by_pair, e.entries, e.ring_mask, e.oldest_id, ph, np, nlen, vp,
                        vlen, True)
        if id >= 0:
            e.sent_index = id + 1
            put_int(out, 0x80, 7, STATIC_COUNT + e.next_id - id)
            return True
    if name_index[0] == 0:
        id = index_find(&e.by_name, e.entries, e.ring_mask, e.oldest_id, nh, np, nlen, NULL, 0,
                        False)
        if id >= 0:
            name_index[0] = STATIC_COUNT + e.next_id - id
    return False


cdef class Encoder:
    """Encodes header lists into HPACK blocks; one per connection direction.

    ``encode(headers, huffman=True)`` takes an iterable of ``(name, value)`` or
    ``(name, value, sensitive)`` tuples (or :class:`HeaderTuple` objects, or a dict);
    names and values are ``bytes`` or latin-1 ``str``. Sensitive fields, and
    ``authorization``, ``proxy-authorization`` and short ``cookie`` values, are sent as
    never-indexed literals.

    ``max_table_size`` caps the table whatever limit the peer allows.

    ``index_all=True`` encodes exactly as the ``hpack`` package's Encoder does (see
    :attr:`index_all`).
    """

    def __cinit__(self):
        self.entries = <EncodedEntry*> calloc(16, sizeof(EncodedEntry))
        if self.entries == NULL:
            raise MemoryError()
        self.ring_mask = 15
        self.max_size = self.peer_limit = self.table_cap = DEFAULT_HEADER_TABLE_SIZE
        self.pending_min = -1
        self.pending_final = -1
        index_init(&self.by_pair, 64)
        index_init(&self.by_name, 64)

    def __init__(self, max_table_size=DEFAULT_ENCODER_TABLE_CAP, index_all=False):
        self.index_all = index_all   # (first: index_all applies no cap, so sends no update)
        self.max_table_size = max_table_size

    @property
    def index_all(self):
        """Encode as the ``hpack`` package's Encoder does (default False), byte for byte
        for bytes and ASCII fields: every field that is not sensitive is indexed (a full
        match sent as an index, a name match as a literal with that indexed name, the rest
        as a literal with a literal name, each added to the table), sensitive fields too
        are sent as an index on a full match, with ``huffman`` every string is
        Huffman-coded even when that is longer, ``max_table_size`` is not applied (the
        table is what the peer allows), and each change of ``header_table_size`` is
        announced as ``hpack`` does (every changed value, in order). False: cno's policy
        (docs/hpack.md). Either may be set at any time; the table carries over."""
        return self.all_mode

    @index_all.setter
    def index_all(self, bint value):
        if value == self.all_mode:
            return
        self.all_mode = value
        if value:
            # The updates cno's policy still owes the peer become hpack's pending list.
            self.size_changes = []
            if self.pending_final >= 0:
                if self.pending_min < self.pending_final:
                    self.size_changes.append(self.pending_min)
                self.size_changes.append(self.pending_final)
                self.resized = True
                self.pending_min = self.pending_final = -1
            if self.peer_limit != self.max_size:
                self._resize_all(self.peer_limit)   # (the cap no longer applies)
        else:
            if self.resized and self.size_changes:
                self.pending_min = min(self.size_changes)
                self.pending_final = self.size_changes[len(self.size_changes) - 1]
            self.size_changes = None
            self.resized = False
            self._apply_limit()

    @property
    def max_table_size(self):
        """Our cap on the table size, whatever the peer allows (default 4096)."""
        return self.table_cap

    @max_table_size.setter
    def max_table_size(self, Py_ssize_t value):
        if value < 0:
            raise ValueError("max_table_size must not be negative")
        self.table_cap = value
        if not self.all_mode:
            self._apply_limit()

    def __dealloc__(self):
        identity_clear(self.ident_key, IDENT_SLOTS)
        if self.entries != NULL:
            self._evict_to(0)
            free(self.entries)
        free(self.by_pair.slots)
        free(self.by_name.slots)
        buf_free(&self.block)

    @property
    def header_table_size(self):
        """The table's maximum size. Set it to the peer's SETTINGS_HEADER_TABLE_SIZE; the
        table then uses the smaller of that and ``max_table_size``, and the next block
        starts with the size update(s) that tell the peer."""
        return self.max_size

    @header_table_size.setter
    def header_table_size(self, Py_ssize_t value):
        if value < 0:
            raise ValueError("header_table_size must not be negative")
        self.peer_limit = value
        if self.all_mode:
            self._resize_all(value)
        else:
            self._apply_limit()

    cdef int _resize_all(self, Py_ssize_t value) except -1:
        """index_all's table size change, as the hpack package makes it: each new size
        is queued for the next block. (hpack also lets a set to the size already in use
        cancel the queue, so the peer never hears of the change and its table falls out
        of step with ours; cno does not copy that.)"""
        if value != self.max_size:
            self.max_size = value
            self._evict_to(value)
            self.size_changes.append(value)
            self.resized = True
        return 0

    cdef int _apply_limit(self) except -1:
        cdef Py_ssize_t value = min(self.peer_limit, self.table_cap)
        if value == self.max_size and self.pending_final < 0:
            return 0
        self.max_size = value
        self._evict_to(value)
        # RFC 7541 4.2: if the limit went down and back up between two blocks, the
        # decoder must see the smallest value first, then the final one.
        if self.pending_min < 0 or value < self.pending_min:
            self.pending_min = value
        self.pending_final = value
        return 0

    def __len__(self):
        """Number of entries in the dynamic table."""
        return <Py_ssize_t>(self.next_id - self.oldest_id)

    @property
    def table_bytes(self):
        """Current size of the dynamic table (RFC 7541 section 4.1 accounting)."""
        return self.size

    def encode(self, headers, huffman=True):
        """Encode one header block and return it as bytes."""
        self.block.len = 0
        self.encode_into(&self.block, headers, bool(huffman))
        return PyBytes_FromStringAndSize(<char*> self.block.data, self.block.len)

    cdef int encode_into(self, WriteBuffer* out, object headers, bint huffman) except -1:
        cdef object item
        cdef tuple field
        cdef object fields
        cdef bint plain = type(headers) is list or type(headers) is tuple
        # Check every field before the first one touches the table: an error halfway
        # through a block must leave the encoder in step with the peer's decoder.
        if plain:
            for item in headers:
                if type(item) is not tuple or PyTuple_GET_SIZE(item) != 2:
                    plain = False
                    break
                field = <tuple> item
                if not (is_field(field[0]) and is_field(field[1])):
                    plain = False
                    break
        if plain:
            return self.encode_plain(out, headers, huffman)
        fields = self._normalize(headers)
        self._put_size_updates(out)
        for item in fields:
            field = <tuple> item
            if self.all_mode:
                self._encode_field_all(out, field[0], field[1], field[2], huffman)
            else:
                self._encode_field(out, field[0], field[1], field[2], huffman)
        return 0

    cdef int _put_size_updates(self, WriteBuffer* out) except -1:
        """6.3: the table size changes announced at the start of the next block (cno's
        pending_min/pending_final; index_all's queue, whose `resized` only it sets)."""
        if self.pending_final >= 0:
            if self.pending_min < self.pending_final:
                put_int(out, 0x20, 5, self.pending_min)
            put_int(out, 0x20, 5, self.pending_final)
            self.pending_min = self.pending_final = -1
        elif self.resized:
            self._put_queued_updates(out)
        return 0

    cdef int _put_queued_updates(self, WriteBuffer* out) except -1:
        """index_all: every size queued since the last block, in order (as hpack)."""
        cdef object size
        for size in self.size_changes:
            put_int(out, 0x20, 5, size)
        del self.size_changes[:]
        self.resized = False
        return 0

    cdef int encode_plain(self, WriteBuffer* out, object fields, bint huffman) except -1:
        """encode_into for a list or tuple of (name, value) tuples of exact str or bytes,
        which the caller has checked: no field is looked at twice."""
        cdef object item
        cdef tuple field
        cdef Py_ssize_t slot, way
        cdef int64_t id
        if self.pending_final >= 0 or self.resized:
            self._put_size_updates(out)
        for item in fields:
            field = <tuple> item
            slot = identity_hash(field)
            way = identity_find(self.ident_key, slot, field)
            if way >= 0:
                id = self.ident_id[way]
                if id < 0:
                    put_int(out, 0x80, 7, -id)   # 6.1, a static entry
                    continue
                if id >= self.oldest_id:
                    put_int(out, 0x80, 7, STATIC_COUNT + self.next_id - id)   # 6.1
                    continue
            self.sent_index = 0
            if self.all_mode:
                self._encode_field_all(out, field[0], field[1], 0, huffman)
            else:
                self._encode_field(out, field[0], field[1], 0, huffman)
            if self.sent_index and field_len(field[0]) + field_len(field[1]) <= IDENT_MAX_LEN:
                identity_put(self.ident_key, self.ident_id, slot, field,
                             self.sent_index if self.sent_index < 0 else self.sent_index - 1)
        return 0

    cdef list _normalize(self, object headers):
        """(name, value, sensitive) triples of field objects, or raise on a bad header."""
        cdef list fields = []
        cdef object item, name, value
        cdef Py_ssize_t k
        cdef int sensitive
        if isinstance(headers, dict):
            # Like hpack: pseudo-header fields first (RFC 9113 8.3).
            headers = sorted(headers.items(), key=_regular_field_last)
        for item in headers:
            k = len(item)
            if k == 3:
                name, value, sensitive = item[0], item[1], bool(item[2])
            elif k == 2:
                name, value = item[0], item[1]
                sensitive = not getattr(item, "indexable", True)
            else:
                raise ValueError("a header must be (name, value) or (name, value, sensitive), "
                                 "not %r" % (item,))
            fields.append((as_field(name), as_field(value), sensitive))
        return fields

    cdef int _encode_field(self, WriteBuffer* out, object name, object value, int sensitive,
                           bint huffman) except -1:
        """One field by cno's policy (see the class docstring and docs/hpack.md);
        _encode_field_all is index_all's."""
        cdef Py_ssize_t nlen, vlen, size, name_index = 0, i, first
        cdef const uint8_t* np = field_ptr(name, &nlen)
        cdef const uint8_t* vp = field_ptr(value, &vlen)
        cdef Py_hash_t nh = PyObject_Hash(name)
        cdef Py_hash_t ph = pair_hash(nh, PyObject_Hash(value))
        cdef int policy = 0
        cdef uint8_t flags
        cdef int prefix
        # Static table: the first entry with this name, then its siblings' values.
        first = index_find(&STATIC_BY_NAME, STATIC_ENC, 63, 1, nh, np, nlen, NULL, 0, False)
        if first > 0:
            policy = STATIC_POLICY[first]
            if policy & POLICY_SENSITIVE or (policy & POLICY_SHORT_SENSITIVE and vlen < SHORT_COOKIE):
                sensitive = 1
            if not sensitive:
                for i in range(first, STATIC_GROUP_END[first] + 1):
                    if field_equals(STATIC_ENC[i].value, vp, vlen):
                        self.sent_index = -i
                        return put_int(out, 0x80, 7, i)   # 6.1 Indexed Header Field
            name_index = first
        # Dynamic table (a sensitive field is never sent as an index to an entry, so a
        # proxy keeps it never-indexed: 7.1.3).
        if dynamic_lookup(self, out, nh, ph, np, nlen, vp, vlen, not sensitive, &name_index):
            return 0
        size = nlen + vlen + ENTRY_OVERHEAD
        if sensitive:
            flags, prefix = 0x10, 4     # 6.2.3 never indexed
        elif size * 4 > self.max_size * 3 or (policy & POLICY_NO_INDEX and not self._seen(ph)):
            flags, prefix = 0x00, 4     # 6.2.2 without indexing
        else:
            flags, prefix = 0x40, 6     # 6.2.1 with incremental indexing
        put_int(out, flags, prefix, name_index)
        if name_index == 0:
            put_string(out, np, nlen, huffman)
        put_string(out, vp, vlen, huffman)
        if prefix == 6:
            self._insert(name, value, nh, ph, size)
            self.sent_index = self.next_id   # (the new entry's id + 1: an index next time)
        return 0

    cdef int _encode_field_all(self, WriteBuffer* out, object name, object value,
                               int sensitive, bint huffman) except -1:
        """_encode_field for index_all, choosing as the hpack package does: a full match
        (static table first, then the newest dynamic entry) is an index even for a
        sensitive field; otherwise a literal with the name's index (the static table's
        first entry with it, else the newest dynamic one) or a literal name, indexed
        unless sensitive, every string Huffman-coded when huffman is on."""
        cdef Py_ssize_t nlen, vlen, size, i, name_index
        cdef const uint8_t* np = field_ptr(name, &nlen)
        cdef const uint8_t* vp = field_ptr(value, &vlen)
        cdef Py_hash_t nh = PyObject_Hash(name)
        cdef Py_hash_t ph = pair_hash(nh, PyObject_Hash(value))
        name_index = index_find(&STATIC_BY_NAME, STATIC_ENC, 63, 1, nh, np, nlen, NULL, 0, False)
        if name_index > 0:
            for i in range(name_index, STATIC_GROUP_END[name_index] + 1):
                if field_equals(STATIC_ENC[i].value, vp, vlen):
                    self.sent_index = -i
                    return put_int(out, 0x80, 7, i)
        else:
            name_index = 0
        if dynamic_lookup(self, out, nh, ph, np, nlen, vp, vlen, True, &name_index):
            return 0
        if sensitive:
            put_int(out, 0x10, 4, name_index)    # 6.2.3 never indexed
        else:
            put_int(out, 0x40, 6, name_index)    # 6.2.1, whatever its size
        if huffman:
            if name_index == 0:
                put_string_huffman(out, np, nlen)
            put_string_huffman(out, vp, vlen)
        else:
            if name_index == 0:
                put_string(out, np, nlen, False)
            put_string(out, vp, vlen, False)
        if not sensitive:
            size = nlen + vlen + ENTRY_OVERHEAD
            if size > self.max_size:
                self._evict_to(0)   # 4.4: an entry larger than the table empties it
            else:
                self._insert(name, value, nh, ph, size)
                self.sent_index = self.next_id
        return 0

    cdef bint _seen(self, Py_hash_t pair_hash) noexcept:
        """Whether this field went out recently (and remember it if not).

        Fields like :path mostly carry values that never come back, and indexing those
        would only evict useful entries; the ones that do come back get indexed on their
        second sighting. The filter is 2-way set-associative (newest first), so a few
        values that keep coming back do not evict each other; a hash collision merely
        indexes a field one sighting early.
        """
        cdef Py_hash_t* ways = &self.seen[(<size_t> pair_hash & 63) * 2]
        if ways[0] == pair_hash or ways[1] == pair_hash:
            return True
        ways[1] = ways[0]
        ways[0] = pair_hash
        return False

    cdef void _evict_to(self, Py_ssize_t limit) noexcept:
        cdef EncodedEntry* e
        cdef int64_t oldest = self.oldest_id
        cdef Py_ssize_t i
        while self.size > limit and self.oldest_id < self.next_id:
            e = &self.entries[self.oldest_id & self.ring_mask]
            self.size -= e.size
            enc_entry_clear(e)
            self.oldest_id += 1
        if self.oldest_id != oldest:
            # Remembered tuples of evicted entries go too: what leaves the table is
            # released with it.
            for i in range(IDENT_SLOTS):
                if self.ident_key[i] != NULL and 0 <= self.ident_id[i] < self.oldest_id:
                    Py_XDECREF(self.ident_key[i])
                    self.ident_key[i] = NULL

    cdef int _insert(self, object name, object value, Py_hash_t name_hash,
                     Py_hash_t pair_hash, Py_ssize_t size) except -1:
        cdef Py_ssize_t cap, count
        cdef int64_t id
        cdef EncodedEntry* grown
        cdef EncodedEntry* e
        self._evict_to(self.max_size - size)
        count = <Py_ssize_t>(self.next_id - self.oldest_id)
        if count > self.ring_mask:
            cap = (self.ring_mask + 1) * 2
            grown = <EncodedEntry*> calloc(cap, sizeof(EncodedEntry))
            if grown == NULL:
                raise MemoryError()
            for id in range(self.oldest_id, self.next_id):
                grown[id & (cap - 1)] = self.entries[id & self.ring_mask]
            free(self.entries)
            self.entries = grown
            self.ring_mask = cap - 1
        e = &self.entries[self.next_id & self.ring_mask]
        Py_INCREF(name)
        Py_INCREF(value)
        e.name = <PyObject*> name
        e.value = <PyObject*> value
        e.name_hash = name_hash
        e.pair_hash = pair_hash
        e.size = size
        self.size += size
        self.next_id += 1
        # Keep each index at most half full (stale ids count until a rebuild).
        if (self.by_pair.used + 1) * 2 > self.by_pair.mask + 1 or \
                (self.by_name.used + 1) * 2 > self.by_name.mask + 1:
            self._reindex()
        else:
            index_add(&self.by_pair, self.entries, self.ring_mask, self.oldest_id,
                      self.next_id - 1, pair_hash, True)
            index_add(&self.by_name, self.entries, self.ring_mask, self.oldest_id,
                      self.next_id - 1, name_hash, False)
        return 0

    cdef int _reindex(self) except -1:
        """Rebuild both indexes from the live entries, at most a quarter full."""
        cdef Py_ssize_t slots = 64
        cdef int64_t id
        while slots < 4 * (self.next_id - self.oldest_id):
            slots *= 2
        index_init(&self.by_pair, slots)
        index_init(&self.by_name, slots)
        for id in range(self.oldest_id, self.next_id):
            index_add(&self.by_pair, self.entries, self.ring_mask, self.oldest_id, id,
                      self.entries[id & self.ring_mask].pair_hash, True)
            index_add(&self.by_name, self.entries, self.ring_mask, self.oldest_id, id,
                      self.entries[id & self.ring_mask].name_hash, False)
        return 0


def _regular_field_last(item):
    name = item[0]
    return not (name[:1] == ":" or name[:1] == b":")


_init_static()
