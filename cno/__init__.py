"""cno: a fast, correct, socketless HTTP/1.1 + HTTP/2 engine.

The engine is Cython compiled to C. Faces on it: :mod:`cno.hpack` (HPACK, RFC 7541).
"""
from cno.errors import CnoError, ProtocolError

__version__ = "0.1.0.dev0"
__all__ = ["CnoError", "ProtocolError", "__version__"]
