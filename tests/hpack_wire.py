"""Reference HPACK wire helpers for the tests, written from RFC 7541 and independent of cno."""


def enc_int(value, prefix, flags=0):
    """Encode an integer with an N-bit prefix (RFC 7541 5.1)."""
    mask = (1 << prefix) - 1
    if value < mask:
        return bytes([flags | value])
    out = [flags | mask]
    value -= mask
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_int(block, pos, prefix):
    """Decode the integer at block[pos] (RFC 7541 5.1); returns (value, next position)."""
    mask = (1 << prefix) - 1
    value = block[pos] & mask
    pos += 1
    if value == mask:
        shift = 0
        while True:
            b = block[pos]
            pos += 1
            value += (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
    return value, pos


def check_in_step(e, d):
    """An encoder and the decoder fed its blocks hold tables of the same shape."""
    assert len(e) == len(d)
    assert e.table_bytes == d.table_bytes
    assert e.header_table_size == d.header_table_size
    assert e.table_bytes <= e.header_table_size <= e.max_table_size
