"""h11's error classes and small helpers (``h11._util``), for cno.h11."""
from typing import Any, Dict, NoReturn, Pattern, Tuple, Type, TypeVar, Union

__all__ = ["ProtocolError", "LocalProtocolError", "RemoteProtocolError", "validate",
           "bytesify"]


class ProtocolError(Exception):
    """A violation of HTTP/1.1; abstract: LocalProtocolError or RemoteProtocolError.

    ``error_status_hint`` is the status a server might answer with (400 unless said).
    """

    def __init__(self, msg: str, error_status_hint: int = 400) -> None:
        if type(self) is ProtocolError:
            raise TypeError("tried to directly instantiate ProtocolError")
        Exception.__init__(self, msg)
        self.error_status_hint = error_status_hint


class LocalProtocolError(ProtocolError):
    """We (the caller) tried to do something HTTP/1.1 forbids."""

    def _reraise_as_remote_protocol_error(self) -> NoReturn:
        # The same object, so its traceback and error_status_hint survive the change.
        self.__class__ = RemoteProtocolError  # type: ignore[assignment]
        raise self


class RemoteProtocolError(ProtocolError):
    """The peer did something HTTP/1.1 forbids."""


def validate(regex: Pattern[bytes], data: bytes, msg: str = "malformed data",
             *format_args: Any) -> Dict[str, bytes]:
    """regex.fullmatch(data)'s named groups, or LocalProtocolError(msg.format(*args))."""
    match = regex.fullmatch(data)
    if not match:
        if format_args:
            msg = msg.format(*format_args)
        raise LocalProtocolError(msg)
    return match.groupdict()


_T_Sentinel = TypeVar("_T_Sentinel", bound="Sentinel")


class Sentinel(type):
    """Metaclass of h11's constants: each is a class that is an instance of itself, so
    ``type(CLIENT) is CLIENT`` and its repr is its name."""

    def __new__(cls: Type[_T_Sentinel], name: str, bases: Tuple[type, ...],
                namespace: Dict[str, Any], **kwds: Any) -> _T_Sentinel:
        assert bases == (Sentinel,)
        v = super().__new__(cls, name, bases, namespace, **kwds)
        v.__class__ = v  # type: ignore[assignment]
        return v

    def __repr__(self) -> str:
        return self.__name__


def bytesify(s: Union[bytes, bytearray, memoryview, int, str]) -> bytes:
    """bytes as is, str as ASCII, other buffers copied; int is refused (bytes(3) would
    be three NULs)."""
    if type(s) is bytes:
        return s
    if isinstance(s, str):
        s = s.encode("ascii")
    if isinstance(s, int):
        raise TypeError("expected bytes-like object, not int")
    return bytes(s)
