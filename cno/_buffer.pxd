# A growable byte buffer for building output in C, shared by the Cython modules.
#
# Contract: `data` is NULL until the first reserve; `buf_reserve` returns -1 with
# MemoryError set when malloc fails and never shrinks (`buf_trim` frees an empty one); `len` is the number of bytes
# written. The owner calls `buf_free` exactly once (typically in __dealloc__).
from libc.stdlib cimport realloc, free
from libc.string cimport memcpy
from libc.stdint cimport uint8_t
from cpython.exc cimport PyErr_NoMemory


cdef struct WriteBuffer:
    uint8_t* data
    Py_ssize_t len
    Py_ssize_t cap


cdef inline int buf_grow(WriteBuffer* b, Py_ssize_t need) except -1:
    cdef Py_ssize_t cap = b.cap * 2 if b.cap >= 256 else 256
    while cap < b.len + need:
        cap *= 2
    cdef uint8_t* p = <uint8_t*> realloc(b.data, cap)
    if p == NULL:
        PyErr_NoMemory()
        return -1
    b.data = p
    b.cap = cap
    return 0


cdef inline int buf_reserve(WriteBuffer* b, Py_ssize_t need) except -1:
    """Make room for `need` more bytes after b.len."""
    if b.len + need > b.cap:
        return buf_grow(b, need)
    return 0


cdef inline int buf_put(WriteBuffer* b, const uint8_t* src, Py_ssize_t n) except -1:
    if n == 0:
        return 0   # (memcpy from or to NULL is undefined even for 0 bytes; a trimmed
                   # buffer's data is NULL)
    if b.len + n > b.cap:
        buf_grow(b, n)
    memcpy(b.data + b.len, src, n)
    b.len += n
    return 0


cdef inline void buf_trim(WriteBuffer* b, Py_ssize_t keep) noexcept:
    """An empty buffer that grew past `keep` bytes gives its memory back (one large
    message must not cost a connection that memory for the rest of its life)."""
    if b.len == 0 and b.cap > keep:
        free(b.data)
        b.data = NULL
        b.cap = 0


cdef inline void buf_free(WriteBuffer* b) noexcept:
    free(b.data)
    b.data = NULL
    b.len = b.cap = 0
