"""H2Configuration: the options of an H2Connection, as h2.config has them."""
from __future__ import annotations

from typing import Any

import sys

__all__ = ["DummyLogger", "H2Configuration", "OutputLogger"]


_FLAGS = frozenset(("client_side", "validate_outbound_headers", "normalize_outbound_headers",
                    "split_outbound_cookies", "validate_inbound_headers",
                    "normalize_inbound_headers"))


class DummyLogger:
    """A logger that drops everything (the default: logging costs time per frame)."""

    def __init__(self, *args: Any) -> None:
        pass

    def debug(self, *args: Any, **kwargs: Any) -> None:
        """Drop a debug message."""

    def trace(self, *args: Any, **kwargs: Any) -> None:
        """Drop a trace message."""


class OutputLogger:
    """A logger that prints to ``file`` (stderr by default); trace messages only with
    ``trace_level``."""

    def __init__(self, file: Any=None, trace_level: Any=False) -> None:
        self.file = file or sys.stderr
        self.trace_level = trace_level

    def debug(self, fmtstr: Any, *args: Any) -> None:
        """Print a debug message (``fmtstr % args``)."""
        print("h2 (debug): %s" % (fmtstr % args), file=self.file)

    def trace(self, fmtstr: Any, *args: Any) -> None:
        """Print a trace message when tracing."""
        if self.trace_level:
            print("h2 (trace): %s" % (fmtstr % args), file=self.file)


class H2Configuration:
    """How an H2Connection behaves.

    ``client_side``: a client (True) or a server. ``header_encoding``: None or False to
    get header names and values as bytes, else the name of the encoding to decode them
    with (e.g. ``"utf-8"``). ``validate_outbound_headers`` / ``validate_inbound_headers``:
    check header blocks against RFC 9113 8.2-8.3 (a ProtocolError when they break it).
    ``normalize_outbound_headers``: lower-case names and drop connection-specific fields
    before sending; ``split_outbound_cookies``: send each cookie crumb as its own field
    (8.2.3); ``normalize_inbound_headers``: join received cookie crumbs into one.
    ``logger``: an object with ``debug`` and ``trace`` methods.
    """

    def __init__(self, client_side: bool = True, header_encoding: Any=None,
                 validate_outbound_headers: bool = True,
                 normalize_outbound_headers: bool = True,
                 split_outbound_cookies: bool = False,
                 validate_inbound_headers: bool = True,
                 normalize_inbound_headers: bool = True,
                 logger: Any=None) -> None:
        self.client_side = client_side
        self.header_encoding = header_encoding
        self.validate_outbound_headers = validate_outbound_headers
        self.normalize_outbound_headers = normalize_outbound_headers
        self.split_outbound_cookies = split_outbound_cookies
        self.validate_inbound_headers = validate_inbound_headers
        self.normalize_inbound_headers = normalize_inbound_headers
        self.logger = logger or DummyLogger(__name__)

    def __setattr__(self, name: Any, value: Any) -> None:
        # (checked here, so reading an option is a plain attribute lookup)
        if name in _FLAGS:
            if not isinstance(value, bool):
                raise ValueError("%s must be a bool" % name)
        elif name == "header_encoding":
            if not isinstance(value, (bool, str, type(None))):
                raise ValueError("header_encoding must be bool, string, or None")
            if value is True:
                raise ValueError("header_encoding cannot be True")
        object.__setattr__(self, name, value)
