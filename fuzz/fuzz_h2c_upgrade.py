"""Fuzz the ways an HTTP/1.1 connection becomes HTTP/2: a server reached by an
`Upgrade: h2c` request or by the prior-knowledge preface, and a client whose final
first request carries `Upgrade: h2c` (then the input is the server's 101 and HTTP/2
frames). Raw bytes: seeds hold whole exchanges.

Input: side (1 byte: bit 0 client; bit 1 forbids prior knowledge; bit 2 the server
answers at the head; bit 3 the client accepts pushes), chunking mode (1), then the
bytes. The server answers with harness.Peer's policy (side >> 4).

    python fuzz/fuzz_h2c_upgrade.py fuzz/corpus/fuzz_h2c_upgrade -dict=fuzz/h1.dict
"""
import harness
from harness import Peer, PushPeer, feed, finish


def one_input(data):
    if len(data) < 2:
        return
    side, mode = data[0], data[1]
    if side & 1:
        conn = (PushPeer if side & 8 else Peer)(False)
        conn.disallow_h2_upgrade = False
        conn.connection_made(False)
        conn.write_head(1, 0, "GET", "/", [(":authority", "example.com")], True)
    else:
        conn = Peer(True, (side >> 4) | (Peer.P_AT_HEAD if side & 4 else 0))
        conn.disallow_h2_upgrade = False
        conn.disallow_h2_prior_knowledge = bool(side & 2)
        conn.connection_made(False)
    if feed(conn, data[2:], mode) is None:
        finish(conn)


if __name__ == "__main__":
    harness.main(one_input)
