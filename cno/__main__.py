"""Command line: ``python -m cno hpack`` (more commands arrive with the engine).

    python -m cno hpack ":method: GET" ":path: /" "user-agent: demo"
        encodes the headers twice on one connection (the second block hits the dynamic
        table), with and without Huffman, and decodes each block back.
    python -m cno hpack --decode 828684418cf1e3c2e5f23a6ba0ab90f4ff
        decodes a hex header block.
"""
import argparse
import sys

from cno import hpack


def _parse_header(text):
    name, sep, value = text[1:].partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected 'name: value', got %r" % text)
    return (text[0] + name).strip().lower(), value.strip()


def cmd_hpack(args):
    if args.decode:
        decoder = hpack.Decoder()
        for block in args.decode:
            for name, value in decoder.decode(bytes.fromhex(block)):
                print("%s: %s" % (name, value))
            print("-- table: %d entries, %d bytes" % (len(decoder), decoder.table_bytes))
        return 0
    headers = args.headers or [
        (":method", "GET"), (":scheme", "https"), (":authority", "example.com"),
        (":path", "/"), ("user-agent", "cno-demo/0.1"), ("accept", "*/*"),
    ]
    for huffman in (True, False):
        encoder, decoder = hpack.Encoder(), hpack.Decoder()
        for n in (1, 2):
            block = encoder.encode(headers, huffman=huffman)
            ok = decoder.decode(block) == [tuple(h) for h in headers]
            print("huffman=%s block %d: %3d bytes, decodes back %s: %s"
                  % (huffman, n, len(block), "ok" if ok else "WRONG", block.hex()))
            if not ok:
                return 1
    plain = sum(len(n) + len(v) + 4 for n, v in headers)
    print("(the same headers as HTTP/1.1 text: %d bytes)" % plain)
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m cno", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("hpack", help="encode headers or decode a header block")
    p.add_argument("headers", nargs="*", type=_parse_header, help="'name: value'")
    p.add_argument("--decode", nargs="+", metavar="HEX", help="header blocks to decode, in order")
    p.set_defaults(run=cmd_hpack)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
