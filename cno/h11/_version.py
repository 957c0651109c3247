"""The h11 version whose API cno.h11 provides."""
__version__ = "0.16.0"
