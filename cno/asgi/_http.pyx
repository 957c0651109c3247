# cython: language_level=3
"""The per-request hot path of the ASGI server, compiled: the HTTP scope
(build_scope) and the half of receive() and send() that answers at once (CycleBase).
In Python these cost as much as the engine, the asyncio server and the application
together (bench/w8_asgi_layer.py); cno/asgi/http.py's Cycle adds the paths that wait,
and re-exports what is public here.
"""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Copy
from cpython.list cimport PyList_GET_SIZE, PyList_GetSlice, PyList_Insert
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memchr

from urllib.parse import unquote_to_bytes

from cno.errors import ConnectionClosed, StreamReset, UsageError, WouldBlock

ASGI_VERSION = {"version": "3.0", "spec_version": "2.4"}

# Methods as str without decoding each time (others are decoded).
cdef dict _METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE",
                                              "PATCH", "OPTIONS", "CONNECT", "TRACE")}
cdef bytes _AUTHORITY = b":authority"
cdef bytes _HOST = b"host"


def scope_template(str root_path, extensions, client, server, str scheme):
    """A scope with what every request of a connection shares (request_scope copies it
    and fills in the rest)."""
    return {
        "type": "http", "asgi": ASGI_VERSION, "http_version": None, "method": None,
        "scheme": scheme, "path": None, "raw_path": None, "query_string": None,
        "root_path": root_path, "headers": None, "client": client, "server": server,
        "state": None, "extensions": extensions,
    }


def request_scope(request, dict template, state, str http_version):
    """The HTTP scope of a request whose header fields are bytes (a server made with
    ``bytes_headers=True``), on a copy of the connection's scope_template: ``headers``
    without the pseudo-header fields, HTTP/2's :authority given as ``host`` (first),
    ``path`` percent-decoded under the template's ``root_path``."""
    cdef list fields = request.headers
    cdef Py_ssize_t n = PyList_GET_SIZE(fields)
    cdef Py_ssize_t i = 0, j
    cdef object host = None
    cdef bytes name, raw_path, query, target
    cdef list headers
    cdef Py_ssize_t q
    # The engine gives the pseudo-header fields first (:scheme, and :authority, from
    # Host in HTTP/1.1); the regular fields follow as received.
    while i < n:
        name = fields[i][0]
        if PyBytes_GET_SIZE(name) == 0 or PyBytes_AS_STRING(name)[0] != b":":
            break
        if name == _AUTHORITY:
            host = fields[i][1]
        i += 1
    headers = PyList_GetSlice(fields, i, n)
    if host is not None:
        # HTTP/2's :authority is HTTP/1.1's Host (RFC 9113 8.3.1); an HTTP/2 request may
        # carry both (the same value, as the RFC asks): one host field then.
        if http_version == "2":
            for j in range(n - i):
                if headers[j][0] == _HOST:
                    break
            else:
                PyList_Insert(headers, 0, (_HOST, host))
        else:
            PyList_Insert(headers, 0, (_HOST, host))
    target = request.path
    cdef const char* t = PyBytes_AS_STRING(target)
    cdef const char* mark = <const char*> memchr(t, b"?", PyBytes_GET_SIZE(target))
    if mark == NULL:
        raw_path, query = target, b""
    else:
        q = mark - t
        raw_path, query = target[:q], target[q + 1:]
    if memchr(PyBytes_AS_STRING(raw_path), b"%", PyBytes_GET_SIZE(raw_path)) != NULL:
        raw_path_decoded = unquote_to_bytes(raw_path)
    else:
        raw_path_decoded = raw_path
    path = PyUnicode_DecodeUTF8(PyBytes_AS_STRING(raw_path_decoded),
                                PyBytes_GET_SIZE(raw_path_decoded), "surrogateescape")
    # (a copy keeps the template's key table: the values are set in place, no growing)
    cdef dict scope = PyDict_Copy(template)
    root_path = scope["root_path"]
    if root_path and not path.startswith(root_path):
        path = root_path + path
    method = request.method
    kind = _METHODS.get(method)
    scope["http_version"] = http_version
    scope["method"] = kind if kind is not None else method.decode("ascii")
    scope["path"] = path
    scope["raw_path"] = raw_path
    scope["query_string"] = query
    scope["headers"] = headers
    scope["state"] = PyDict_Copy(state) if state else {}
    return scope


def build_scope(request, str root_path, state, extensions, client, server, str scheme,
                str http_version):
    """The HTTP scope of a request whose header fields are bytes (a server made with
    ``bytes_headers=True``): request_scope on a template of these values."""
    return request_scope(request, scope_template(root_path, extensions, client, server,
                                                 scheme), state, http_version)

class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client is gone (the stream was reset or the
    connection lost): ASGI 2.4 asks for an OSError subclass."""


class MessageError(RuntimeError):
    """A message the application sent breaks the ASGI HTTP spec (names the key)."""


def bytes_pairs(headers, str key):
    """Header pairs as bytes with lower-case names (RFC 9113 8.2.1 wants them so)."""
    try:
        pairs = [(bytes(n).lower(), bytes(v)) for n, v in headers]
    except (TypeError, ValueError):
        raise MessageError("%s: an iterable of [name, value] byte strings, not %r"
                           % (key, headers)) from None
    for name, value in pairs:
        if not name or name.startswith(b":"):
            raise MessageError("%s: invalid header name %r" % (key, name))
    return pairs


# where the response is
INIT, STARTED, BODY, TRAILERS, DONE = range(5)
BODY_CHUNK = 65536   # request body bytes per http.request message, at most
cdef object _LATER = object()   # (_respond_now: the head cannot go yet)
cdef bytes _EXPECT = b"expect"


@cython.auto_pickle(False)   # (a request's state: not something to pickle)
cdef class CycleBase:
    """``receive`` and ``send`` of one request, where they need no waiting: a completed
    future (``done``, or one of the message) is returned, and no coroutine is made. The
    rest goes to the subclass's coroutines ``_receive(self)`` and ``_send(self, message)``
    (cno/asgi/http.py's Cycle)."""

    cdef public object request
    cdef public object done
    cdef public int state
    cdef public int status
    cdef public object headers
    cdef public object trailers
    cdef public bint want_trailers
    cdef public bint body_done        # the last http.request message was received
    cdef public bint continue_due

    def __cinit__(self, request, done):
        # (__cinit__, not __init__: the subclass is made in one call, no second dispatch)
        self.request = request
        self.done = done
        self.headers = ()
        if not request.payload.at_eof():
            # RFC 9110 10.1.1: 100 (Continue) is sent only when the application first
            # asks for the body, so that a request it answers without reading is never
            # sent.
            for name, value in request.headers:
                if name == _EXPECT and value.lower() == b"100-continue":
                    self.continue_due = True

    @property
    def complete(self):
        return self.state == DONE

    def receive(self):
        if not self.body_done and not self.continue_due:
            payload = self.request.payload
            try:
                data = payload.read_nowait(BODY_CHUNK)
            except (StreamReset, ConnectionClosed):
                data = None   # (_receive says http.disconnect)
            if data is not None:
                more = not payload.at_eof()
                if not more:
                    self.body_done = True
                ready = self.done.get_loop().create_future()
                ready.set_result({"type": "http.request", "body": data, "more_body": more})
                return ready
        return self._receive()

    def send(self, message):
        try:
            kind = message["type"]
        except (TypeError, KeyError):
            raise MessageError("a message is a dict with a 'type', not %r" % (message,)) from None
        if kind == "http.response.start":
            self._start(message)
            return self.done
        if kind == "http.response.body" and self.state == STARTED and not self.want_trailers \
                and type(message) is dict:
            body = (<dict> message).get("body", b"")
            if type(body) is bytes and not (<dict> message).get("more_body", False):
                # The whole response in one message: head and body in one write.
                try:
                    rest = self._respond_now(body)
                except (StreamReset, ConnectionClosed) as e:
                    raise ClientDisconnected("the client is gone: %s" % e) from None
                if rest is not _LATER:
                    return self.done if rest is None else self._finish(rest)
        return self._send(message)

    def _start(self, message):
        if self.state != INIT:
            raise MessageError("http.response.start sent twice")
        try:
            status = message["status"]
        except KeyError:
            raise MessageError("http.response.start: 'status' is missing") from None
        if type(status) is not int or not 200 <= status <= 999:
            raise MessageError("http.response.start: 'status' must be an int from 200 to "
                               "999 (1xx go as extensions), not %r" % (status,))
        self.status = status
        headers = message.get("headers", ())
        # Given to the engine as they are (it checks them, and writes nothing it refuses);
        # normalised only if it refuses them (_respond_now, Cycle._head).
        self.headers = headers if type(headers) is list or type(headers) is tuple else \
            bytes_pairs(headers, "http.response.start: 'headers'")
        self.want_trailers = bool(message.get("trailers", False))
        self.state = STARTED

    cdef object _respond_now(self, bytes body):
        """The whole response now (None), or what writes the rest of its body, or _LATER
        if the head cannot go yet (an earlier HTTP/1.1 response is being written). The
        application's headers go to the engine as they are; if it refuses them, once
        more normalised, then a MessageError that says why."""
        request = self.request
        for normalised in (False, True):
            try:
                rest = request.respond_nowait(self.status, self.headers, body)
            except WouldBlock:
                return _LATER
            except (UsageError, TypeError, ValueError) as e:
                self._refused(e, normalised)
                continue
            self.state = DONE
            return rest
        raise AssertionError("unreachable")

    def _refused(self, exc, bint normalised):
        """The engine refused the head (or the body after it): normalise the headers
        for one more try, or raise the MessageError that says why (once normalised, or
        once the head went out)."""
        if normalised or self.request.responded:
            raise MessageError("http.response: %s" % exc) from None
        self.headers = bytes_pairs(self.headers, "http.response.start: 'headers'")
