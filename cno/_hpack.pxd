# HPACK (RFC 7541) in C, for cno.hpack and for the HTTP/2 engine.
#
# Contracts for Cython callers (the engine cimports these):
#   - Decoder.decode_into() appends (name, value) tuples to `out` (instances of the
#     tuple_types classes when set, see Decoder.tuple_types) and returns HPACK_OK or
#     one of the HPACK_ERR_* codes below; it returns -1 only with a Python exception set
#     (MemoryError). A decode error leaves the dynamic table as far as the block got: the
#     connection must then fail with COMPRESSION_ERROR (RFC 7541 section 2.3.3), except
#     for HPACK_ERR_LIST_SIZE, after which the whole block has been decoded and the table
#     is in step with the peer's encoder.
#   - Encoder.encode_into() appends one header block to `out` (including any pending
#     dynamic table size updates) and returns 0, or -1 with a Python exception set
#     (bad header types); on error, `out` may hold a partial block and must be discarded.
#     Encoder.encode_plain() is the same for fields the caller checked: a list or tuple
#     of (name, value) tuples of exact str or bytes (anything else is undefined).
from libc.stdint cimport uint8_t, uint32_t, int64_t
from cpython.object cimport PyObject
from cno._buffer cimport WriteBuffer
cimport cython


cdef enum:
    HPACK_OK = 0
    HPACK_ERR_TRUNCATED = 1        # the block ends inside a representation
    HPACK_ERR_INTEGER = 2          # an integer above 2^32-1 or with padding bytes
    HPACK_ERR_HUFFMAN = 3          # EOS, or padding that is long or not all ones
    HPACK_ERR_INDEX = 4            # index 0 or past the end of the table
    HPACK_ERR_SIZE_UPDATE_LATE = 5     # a size update after a header field
    HPACK_ERR_SIZE_UPDATE_LIMIT = 6    # a size update above our SETTINGS limit
    HPACK_ERR_SIZE_UPDATE_MISSING = 7  # our limit went down but the block has no update
    HPACK_ERR_LIST_SIZE = 8        # the list is over max_header_list_size or max_header_count


# A dynamic table entry of the decoder. The four objects are the name and value as
# latin-1 str and as bytes; either pair may be NULL until a caller asks for that form.
# pair_str and pair_bytes cache the (name, value) tuple an indexed field decodes to, so
# a field repeated by reference costs no allocation (tuples are immutable: sharing one
# between header lists is safe); typed_str and typed_bytes cache it the same way as an
# instance of the decoder's field_type (see Decoder.tuple_types).
cdef struct DecodedEntry:
    PyObject* name_str
    PyObject* value_str
    PyObject* name_bytes
    PyObject* value_bytes
    PyObject* pair_str
    PyObject* pair_bytes
    PyObject* typed_str
    PyObject* typed_bytes
    Py_ssize_t size           # len(name) + len(value) + 32 (RFC 7541 section 4.1)


# A table entry of the encoder: the caller's own str or bytes objects (kept alive), and
# their hashes (str and bytes with the same latin-1 content hash alike in CPython).
cdef struct EncodedEntry:
    PyObject* name
    PyObject* value
    Py_hash_t name_hash
    Py_hash_t pair_hash
    Py_ssize_t size


# Open-addressing hash index over entry ids (linear probing). Stale ids (evicted
# entries) stay as tombstones until the index is rebuilt.
cdef struct HashIndex:
    int64_t* slots            # entry id, or -1 for an empty slot
    Py_ssize_t mask
    Py_ssize_t used


@cython.final
cdef class Decoder:
    cdef DecodedEntry* entries   # ring buffer; capacity is a power of two
    cdef Py_ssize_t ring_mask
    cdef Py_ssize_t newest       # ring position of dynamic index 1
    cdef Py_ssize_t count
    cdef Py_ssize_t size         # sum of entry sizes
    cdef Py_ssize_t max_size     # the limit the peer's encoder chose (size updates)
    cdef Py_ssize_t settings_limit   # our SETTINGS_HEADER_TABLE_SIZE
    cdef Py_ssize_t required_update   # the next block must start with an update <= this; -1: none
    cdef Py_ssize_t list_limit        # max_header_list_size
    cdef Py_ssize_t count_limit       # max_header_count
    cdef WriteBuffer scratch     # Huffman output
    # tuple_types: the classes fields are handed out as (None: plain tuples); field_type
    # instances of static entries are cached in static_typed (2 per index: str, bytes),
    # allocated when field_type is first set.
    cdef object types_given      # what tuple_types was set to
    cdef type field_type
    cdef type never_type
    cdef PyObject** static_typed

    cdef int decode_into(self, const uint8_t* data, Py_ssize_t n, list out, bint raw) except -1
    cdef int raise_error(self, int status) except -1
    cdef DecodedEntry* _entry(self, uint32_t index) noexcept
    cdef object _typed_entry(self, DecodedEntry* e, uint32_t index, bint raw)
    cdef void _forget_typed(self) noexcept
    cdef object _read_string(self, const uint8_t* p, Py_ssize_t n, Py_ssize_t* pos, bint raw,
                             int* status)
    cdef int _resize(self, Py_ssize_t max_size) except -1
    cdef int _insert(self, object name, object value, Py_ssize_t size, bint raw) except -1
    cdef void _evict_to(self, Py_ssize_t limit) noexcept


@cython.final
cdef class Encoder:
    cdef EncodedEntry* entries   # ring buffer indexed by id & ring_mask
    cdef Py_ssize_t ring_mask
    cdef int64_t next_id         # id the next inserted entry gets
    cdef int64_t oldest_id       # id of the oldest live entry (== next_id when empty)
    cdef Py_ssize_t size
    cdef Py_ssize_t max_size     # min(peer_limit, table_cap): the size in use
    cdef Py_ssize_t peer_limit   # the peer's SETTINGS_HEADER_TABLE_SIZE, as last set
    cdef Py_ssize_t table_cap    # our own cap on the memory the table holds
    cdef HashIndex by_pair
    cdef HashIndex by_name
    cdef Py_hash_t seen[128]        # recent unindexed fields' pair hashes: 64 sets of 2
    cdef Py_ssize_t pending_min     # smallest limit set since the last block, or -1
    cdef Py_ssize_t pending_final   # last limit set since the last block
    cdef WriteBuffer block          # output of encode()
    # Fields sent as an index, remembered by identity (the caller's exact tuple, one
    # reference each; 16 groups of four ways): the next time the same tuple is encoded,
    # the index goes out without a look-up. ident_id < 0: a static index (negated);
    # >= 0: a dynamic entry id (stale once evicted: id < oldest_id).
    cdef PyObject* ident_key[64]
    cdef int64_t ident_id[64]
    cdef int64_t sent_index         # set by _encode_field: see encode_into
    # all_mode: the index_all property (the hpack package's policy, docs/hpack.md). Its
    # size updates are the changes in size_changes, sent at the next block only while
    # `resized` holds.
    cdef bint all_mode
    cdef bint resized
    cdef list size_changes

    cdef int encode_into(self, WriteBuffer* out, object headers, bint huffman) except -1
    cdef int encode_plain(self, WriteBuffer* out, object fields, bint huffman) except -1
    cdef int _put_size_updates(self, WriteBuffer* out) except -1
    cdef int _put_queued_updates(self, WriteBuffer* out) except -1
    cdef list _normalize(self, object headers)
    cdef int _encode_field(self, WriteBuffer* out, object name, object value, int sensitive,
                           bint huffman) except -1
    cdef int _encode_field_all(self, WriteBuffer* out, object name, object value,
                               int sensitive, bint huffman) except -1
    cdef int _insert(self, object name, object value, Py_hash_t name_hash,
                     Py_hash_t pair_hash, Py_ssize_t size) except -1
    cdef bint _seen(self, Py_hash_t pair_hash) noexcept
    cdef void _evict_to(self, Py_ssize_t limit) noexcept
    cdef int _reindex(self) except -1
    cdef int _apply_limit(self) except -1
    cdef int _resize_all(self, Py_ssize_t value) except -1
