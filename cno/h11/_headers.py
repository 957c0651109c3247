"""h11's header helpers (``h11._headers``), implemented in cno.h11._h11 (Cython)."""
from cno.h11._h11 import (
    CONTENT_LENGTH_MAX_DIGITS, Headers, get_comma_header, has_expect_100_continue,
    normalize_and_validate, set_comma_header,
)

__all__ = ["Headers", "normalize_and_validate", "get_comma_header", "set_comma_header",
           "has_expect_100_continue", "CONTENT_LENGTH_MAX_DIGITS"]
