# Lists built in C, shared by the Cython modules: a list made with room for the fields a
# header block usually holds, filled without a resize per few appends.
#
# Contract: `list_with_room(n)` is an empty list with room for n items (CPython keeps
# 0 <= size <= allocated; the room is only used by `list_push`, which fills it and then
# appends as usual: a plain PyList_Append on a list less than half full would shrink it).
from cpython.object cimport PyObject
from cpython.ref cimport Py_INCREF
from cpython.list cimport PyList_New, PyList_Append


cdef extern from "Python.h":
    ctypedef struct PyListObject:
        PyObject** ob_item
        Py_ssize_t allocated
    Py_ssize_t Py_SIZE(object o)
    void Py_SET_SIZE(object o, Py_ssize_t n)


cdef inline list list_with_room(Py_ssize_t n):
    cdef list items = PyList_New(n)
    Py_SET_SIZE(items, 0)
    return items


cdef inline int list_push(list items, object x) except -1:
    cdef PyListObject* l = <PyListObject*> items
    cdef Py_ssize_t n = Py_SIZE(items)
    if n < l.allocated:
        Py_INCREF(x)
        l.ob_item[n] = <PyObject*> x
        Py_SET_SIZE(items, n + 1)
        return 0
    return PyList_Append(items, x)
