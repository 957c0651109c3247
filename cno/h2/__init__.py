"""cno.h2: python-hyper's h2 4.x API on cno's HTTP/2 engine (see docs/dropin.md).

The modules mirror h2's: connection (H2Connection), config (H2Configuration), events,
exceptions, errors, settings, stream, windows, frame_buffer, utilities. Code written
for h2 runs on it unchanged once :func:`install` has made ``import h2`` resolve here.
"""
from __future__ import annotations

#: The h2 version whose API this face offers.
__version__ = "4.4.1"


def install() -> None:
    """Make ``import h2`` (and ``h2.*``) resolve to cno.h2 from now on (cno.dropin)."""
    import cno.dropin
    cno.dropin.install("h2")
