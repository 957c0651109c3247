# Caches keyed by object identity, shared by the Cython modules (the engine's checked
# fields, the HPACK encoder's sent indexes): an array of `slots` keys (a power of two, at
# most 64) in pairs of two ways, each key holding one reference. A key's pair is picked by
# the top bits of a multiplicative hash of its address; the newest key of a pair comes
# first, and the older of two full ways goes. What a cache keeps beside a key (a kind, a
# table index) lives in the caller's array of the same size, moved along by identity_put.
from libc.stdint cimport uint64_t, int64_t
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF


cdef inline Py_ssize_t identity_hash(object o) noexcept:
    """o's pair in a cache of 64 slots, an even number below 64; in a smaller cache,
    `identity_hash(o) & (slots - 2)` (so one hash serves caches of several sizes)."""
    return <Py_ssize_t>(((<uint64_t><size_t><PyObject*> o) * 0x9E3779B97F4A7C15ULL)
                        >> 58) & ~1


cdef inline Py_ssize_t identity_find(PyObject** keys, Py_ssize_t pair, object o) noexcept:
    """The slot of pair that holds o, or -1."""
    if keys[pair] == <PyObject*> o:
        return pair
    if keys[pair + 1] == <PyObject*> o:
        return pair + 1
    return -1


cdef inline void identity_put(PyObject** keys, int64_t* values, Py_ssize_t pair, object o,
                              int64_t value) noexcept:
    """o (and value, unless values is NULL) first in its pair."""
    Py_INCREF(o)
    Py_XDECREF(keys[pair + 1])
    keys[pair + 1] = keys[pair]
    keys[pair] = <PyObject*> o
    if values != NULL:
        values[pair + 1] = values[pair]
        values[pair] = value


cdef inline void identity_clear(PyObject** keys, Py_ssize_t slots) noexcept:
    cdef Py_ssize_t i
    for i in range(slots):
        Py_XDECREF(keys[i])
        keys[i] = NULL
