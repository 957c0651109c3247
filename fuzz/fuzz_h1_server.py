"""Fuzz an HTTP/1.1 server: the input is what a client sends (raw bytes: HTTP/1.1 is
text, and libFuzzer's mutations of real requests, with fuzz/h1.dict, keep most of it
parseable), answered by harness.Peer in one of its policies.

Input: policy (1 byte), chunking mode (1), options (1: bit 0 allows h2c upgrades, bit 1
forbids prior knowledge, bit 2 bytes_headers, bit 3 max_concurrent_streams=1 (no
pipelining read ahead), bit 4 small limits, bit 5 scheme "https"), then the bytes.
After the bytes, EOF (connection_lost).

    python fuzz/fuzz_h1_server.py fuzz/corpus/fuzz_h1_server -dict=fuzz/h1.dict
"""
import harness
from harness import Peer, feed, finish


def make_server(policy, options):
    kw = {"max_concurrent_streams": 1} if options & 8 else {}
    conn = Peer(True, policy, **kw)
    conn.disallow_h2_upgrade = not options & 1
    conn.disallow_h2_prior_knowledge = bool(options & 2)
    conn.bytes_headers = bool(options & 4)
    if options & 16:
        conn.max_head_size = 256
        conn.max_header_count = 4
        conn.max_chunk_line = 16
    if options & 32:
        conn.scheme = "https"
    conn.connection_made(False)
    return conn


def one_input(data):
    if len(data) < 3:
        return
    conn = make_server(data[0], data[2])
    if feed(conn, data[3:], data[1]) is None:
        finish(conn)


if __name__ == "__main__":
    harness.main(one_input)
