"""HPACK header compression (RFC 7541), a drop-in for the ``hpack`` package's API.

    >>> from cno.hpack import Encoder, Decoder
    >>> block = Encoder().encode([(":method", "GET"), ("user-agent", "cno")])
    >>> Decoder().decode(block)
    [(':method', 'GET'), ('user-agent', 'cno')]

Differences from ``hpack``, all deliberate:

- ``str`` is latin-1 both ways (lossless for any byte); ``hpack`` uses UTF-8. ``str``
  with characters above U+00FF raises ``UnicodeEncodeError``: pass ``bytes`` instead.
- ``Decoder.decode`` returns plain tuples, and :class:`NeverIndexedHeaderTuple` for
  never-indexed fields (``hpack`` returns ``HeaderTuple`` for every field), unless
  ``Decoder.tuple_types`` names other classes.
- The decoder checks ``max_header_list_size`` after decoding the whole block, so its table
  stays usable after :class:`OversizedHeaderListError`.
- The encoder never indexes ``authorization``, ``proxy-authorization`` or cookies shorter
  than 20 bytes (sent as never-indexed literals), and indexes ``:path``,
  ``content-length``, ``etag``, ``location``, ``set-cookie``, ``age``,
  ``if-modified-since`` and ``if-none-match`` only when a value comes back: their values
  rarely repeat, and indexing the ones that do not would only evict useful entries.
- The encoder's table never grows past ``Encoder(max_table_size=4096)``, whatever size the
  peer allows: ``header_table_size`` reads back the size in use.
- ``Encoder(index_all=True)`` drops both of the above and encodes exactly as ``hpack``'s
  Encoder does (docs/hpack.md).
"""
from cno._hpack import (
    DEFAULT_ENCODER_TABLE_CAP,
    DEFAULT_HEADER_TABLE_SIZE,
    DEFAULT_MAX_HEADER_LIST_SIZE,
    Decoder,
    Encoder,
    HeaderTuple,
    NeverIndexedHeaderTuple,
)
from cno.errors import (
    HPACKDecodingError,
    HPACKError,
    InvalidTableIndex,
    InvalidTableSizeError,
    OversizedHeaderListError,
)

__all__ = [
    "DEFAULT_ENCODER_TABLE_CAP",
    "DEFAULT_HEADER_TABLE_SIZE",
    "DEFAULT_MAX_HEADER_LIST_SIZE",
    "Decoder",
    "Encoder",
    "HeaderTuple",
    "NeverIndexedHeaderTuple",
    "HPACKError",
    "HPACKDecodingError",
    "InvalidTableIndex",
    "InvalidTableSizeError",
    "OversizedHeaderListError",
]
