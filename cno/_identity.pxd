# Caches keyed by object identity, shared by the Cython modules (the engine's checked
# fields, the HPACK encoder's sent indexes): an array of `slots` keys (a power of two, at
# least 4, at most 64) in groups of four ways, each key holding one reference. A key's
# group is picked by the top bits of a multiplicative hash of its address; the newest key
# of a group comes first, and the oldest of four full ways goes. (Four ways, not two: with
# two, three of a dozen live keys sharing a pair happens for about one heap layout in ten,
# and then a field misses on every request.) What a cache keeps beside a key (a kind, a
# table index) lives in the caller's array of the same size, moved along by identity_put.
from libc.stdint cimport uint64_t, int64_t
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF, Py_XDECREF


cdef inline Py_ssize_t identity_hash(object o) noexcept:
    """o's group in a cache of 64 slots, a multiple of 4 below 64; in a smaller cache,
    `identity_hash(o) & (slots - 4)` (so one hash serves caches of several sizes)."""
    return <Py_ssize_t>(((<uint64_t><size_t><PyObject*> o) * 0x9E3779B97F4A7C15ULL)
                        >> 58) & ~3


cdef inline Py_ssize_t identity_find(PyObject** keys, Py_ssize_t group, object o) noexcept:
    """The slot of group that holds o, or -1."""
    cdef PyObject* k = <PyObject*> o
    if keys[group] == k:
        return group
    if keys[group + 1] == k:
        return group + 1
    if keys[group + 2] == k:
        return group + 2
    if keys[group + 3] == k:
        return group + 3
    return -1


cdef inline void identity_put(PyObject** keys, int64_t* values, Py_ssize_t group, object o,
                              int64_t value) noexcept:
    """o (and value, unless values is NULL) first in its group; the oldest key goes."""
    Py_INCREF(o)
    Py_XDECREF(keys[group + 3])
    keys[group + 3] = keys[group + 2]
    keys[group + 2] = keys[group + 1]
    keys[group + 1] = keys[group]
    keys[group] = <PyObject*> o
    if values != NULL:
        values[group + 3] = values[group + 2]
        values[group + 2] = values[group + 1]
        values[group + 1] = values[group]
        values[group] = value


cdef inline void identity_clear(PyObject** keys, Py_ssize_t slots) noexcept:
    cdef Py_ssize_t i
    for i in range(slots):
        Py_XDECREF(keys[i])
        keys[i] = NULL
