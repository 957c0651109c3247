# Reading header fields in C: a field is an exact `bytes`, or an exact `str` whose
# characters are all latin-1 (1-byte kind), whose data is then the field's bytes.
from libc.stdint cimport uint8_t
from cpython.bytes cimport PyBytes_CheckExact, PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.unicode cimport (
    PyUnicode_CheckExact, PyUnicode_KIND, PyUnicode_DATA, PyUnicode_GET_LENGTH,
    PyUnicode_1BYTE_KIND,
)


cdef inline bint is_field(object o) noexcept:
    return PyBytes_CheckExact(o) or (PyUnicode_CheckExact(o)
                                     and PyUnicode_KIND(o) == PyUnicode_1BYTE_KIND)


cdef inline const uint8_t* field_ptr(object o, Py_ssize_t* n) noexcept:
    """Data of a field (the caller checked is_field)."""
    if PyBytes_CheckExact(o):
        n[0] = PyBytes_GET_SIZE(o)
        return <const uint8_t*> PyBytes_AS_STRING(o)
    n[0] = PyUnicode_GET_LENGTH(o)
    return <const uint8_t*> PyUnicode_DATA(o)
