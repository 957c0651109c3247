"""Fuzz cno.hpack: arbitrary blocks decode or raise HPACKDecodingError (never anything
else), and any header list the input builds round-trips through Encoder and Decoder
kept in step (table size changes included).

Input: mode (1 byte; even: decode, odd: round trip), then:
- decode: max_header_list_size and the table size limit (1 byte each, scaled), then blocks
  cut at harness.SEP, decoded one after another by one decoder (a table shared across
  blocks, as on a connection), raw or not as the mode's bit 1 says;
- round trip: records cut at harness.SEP; a record is one header list, fields separated
  by b"\\n" and each field's name and value by the first b":" (a leading "!" marks the
  field sensitive); a record that starts with "#" sets the table size to the next two
  bytes instead.

    python fuzz/fuzz_hpack.py fuzz/corpus/fuzz_hpack -max_len=2048
"""
import harness
from cno.hpack import Decoder, Encoder, HPACKDecodingError, NeverIndexedHeaderTuple


def decode_blocks(mode, data):
    if len(data) < 2:
        return
    decoder = Decoder(max_header_list_size=data[0] * 256 or None)
    decoder.max_allowed_table_size = data[1] * 32
    raw = bool(mode & 2)
    for block in harness.split_records(data[2:]):
        try:
            headers = decoder.decode(block, raw=raw)
        except HPACKDecodingError:
            return
        for h in headers:
            if len(h) != 2:
                raise harness.Finding("decoded field %r" % (h,))


def parse_list(record):
    fields = []
    for line in record.split(b"\n"):
        name, _, value = line.partition(b":")
        sensitive = name.startswith(b"!")
        fields.append((name[1:] if sensitive else name, value, sensitive))
    return fields


def round_trip(mode, data):
    encoder, decoder = Encoder(), Decoder(max_header_list_size=None)
    huffman = bool(mode & 2)
    for record in harness.split_records(data):
        if record[:1] == b"#" and len(record) >= 3:
            size = int.from_bytes(record[1:3], "big") & 0x3FFF
            encoder.header_table_size = size
            decoder.max_allowed_table_size = size
            continue
        headers = parse_list(record)
        block = encoder.encode(headers, huffman=huffman)
        decoded = decoder.decode(block, raw=True)
        if decoded != [(n, v) for n, v, _ in headers]:
            raise harness.Finding("round trip: %r -> %s -> %r" % (headers, block.hex(), decoded))
        for (n, v, sensitive), got in zip(headers, decoded):
            if sensitive and not isinstance(got, NeverIndexedHeaderTuple):
                raise harness.Finding("sensitive field %r decoded as indexable" % (n,))


def one_input(data):
    if not data:
        return
    mode = data[0]
    if mode & 1:
        round_trip(mode, data[1:])
    else:
        decode_blocks(mode, data[1:])


if __name__ == "__main__":
    harness.main(one_input)
