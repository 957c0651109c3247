"""Fuzz cno.hpack with atheris: any bytes decode or raise HPACKDecodingError, and any
header list the fuzzer builds round-trips through Encoder and Decoder.

    pip install atheris
    python fuzz/fuzz_hpack.py -runs=200000          # or without -runs to run until stopped

atheris instruments Python code only: against a normal build of the C extension this is
random, not coverage-guided, input. For coverage of the C code, build the extension with
clang and CFLAGS="-fsanitize=fuzzer-no-link,address" and preload the sanitizer runtime.
"""
import sys

import atheris

with atheris.instrument_imports():
    from cno.hpack import Decoder, Encoder, HPACKDecodingError


def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 1)
    if mode == 0:
        # Arbitrary blocks into one decoder (a table shared across blocks, as on a connection).
        decoder = Decoder(max_header_list_size=fdp.ConsumeIntInRange(0, 1 << 16))
        decoder.max_allowed_table_size = fdp.ConsumeIntInRange(0, 1 << 13)
        for _ in range(fdp.ConsumeIntInRange(1, 4)):
            try:
                decoder.decode(fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 512)),
                               raw=fdp.ConsumeBool())
            except HPACKDecodingError:
                return
        return
    # Structured: header lists and table sizes, encoder and decoder kept in step.
    encoder, decoder = Encoder(), Decoder(max_header_list_size=None)
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        if fdp.ConsumeBool():
            size = fdp.ConsumeIntInRange(0, 8192)
            encoder.header_table_size = size
            decoder.max_allowed_table_size = size
        headers = [
            (fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 40)),
             fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 80)),
             fdp.ConsumeBool())
            for _ in range(fdp.ConsumeIntInRange(0, 12))
        ]
        block = encoder.encode(headers, huffman=fdp.ConsumeBool())
        decoded = decoder.decode(block, raw=True)
        if decoded != [(n, v) for n, v, _ in headers]:
            raise AssertionError((headers, block.hex(), decoded))


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
