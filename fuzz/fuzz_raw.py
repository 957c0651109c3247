"""Fuzz cno.raw.Connection with atheris: whatever bytes a peer sends, the engine raises
only cno's own errors (never crashes, hangs or raises anything else), on both sides, in
HTTP/2 and in HTTP/1.1.

    pip install atheris
    python fuzz/fuzz_raw.py -runs=200000

The input is cut into frames with random headers (so most of them parse), after a
valid preface and SETTINGS; see fuzz_hpack.py about coverage of the C code.
"""
import sys

import atheris

with atheris.instrument_imports():
    import cno.raw
    from cno.errors import CnoError

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


class Peer(cno.raw.Connection):
    def on_message_head(self, stream, code, method, path, headers):
        if self.is_server and stream in self.open_streams:
            try:
                self.write_head(stream, 200, "", "", [("x", "y")], False)
                self.write_data(stream, b"body", True)
            except CnoError:
                pass

    def on_message_push(self, stream, parent, method, path, headers):
        pass


def frames(fdp):
    out = []
    for _ in range(fdp.ConsumeIntInRange(0, 12)):
        payload = fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 64))
        ftype = fdp.ConsumeIntInRange(0, 11)
        flags = fdp.ConsumeIntInRange(0, 255)
        stream = fdp.PickValueInList([0, 1, 2, 3, 5, 0x7FFFFFFF, fdp.ConsumeIntInRange(0, 1 << 31)])
        out.append(len(payload).to_bytes(3, "big") + bytes([ftype, flags])
                   + stream.to_bytes(4, "big") + payload)
    return b"".join(out)


H1_PIECES = [b"GET / HTTP/1.1\r\n", b"POST /x HTTP/1.0\r\n", b"HTTP/1.1 200 OK\r\n",
             b"host: a\r\n", b"content-length: 5\r\n", b"transfer-encoding: chunked\r\n",
             b"connection: close\r\n", b"upgrade: h2c\r\n", b"\r\n", b"5\r\nhello\r\n",
             b"0\r\n\r\n", b"x-a: b\r\n", PREFACE]


def one_input_h1(fdp):
    """HTTP/1.1: plausible pieces and random bytes, split at a random point."""
    server = fdp.ConsumeBool()
    conn = Peer(server=server)
    conn.disallow_h2_upgrade = fdp.ConsumeBool()
    conn.connection_made(False)
    if not server:
        conn.write_head(1, 0, "GET", "/", [(":authority", "x")], True)
    wire = b"".join(fdp.PickValueInList(H1_PIECES) if fdp.ConsumeBool()
                    else fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 16))
                    for _ in range(fdp.ConsumeIntInRange(0, 16)))
    cut = fdp.ConsumeIntInRange(0, len(wire))
    try:
        conn.data_received(wire[:cut])
        conn.data_received(wire[cut:])
        conn.connection_lost()
    except CnoError:
        pass


def one_input(data):
    fdp = atheris.FuzzedDataProvider(data)
    if fdp.ConsumeIntInRange(0, 2) == 0:
        return one_input_h1(fdp)
    server = fdp.ConsumeBool()
    conn = Peer(server=server)
    conn.connection_made(True)
    if not server:
        conn.write_head(1, 0, "GET", "/", [(":scheme", "http"), (":authority", "x")], False)
    wire = (PREFACE if server else b"") + SETTINGS + frames(fdp)
    cut = fdp.ConsumeIntInRange(0, len(wire))
    try:
        conn.data_received(wire[:cut])
        conn.data_received(wire[cut:])
        conn.connection_lost()
    except CnoError:
        pass


if __name__ == "__main__":
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()
