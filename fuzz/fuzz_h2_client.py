"""Fuzz an HTTP/2 client: it sends some requests, then the input is what a server
answers, a sequence of frames (records cut at harness.SEP, see harness.h2_frames) after
a valid SETTINGS exchange.

Input: requests (1 byte: low 3 bits how many, 0..7; bit 3 the first carries a body;
bit 4 the client accepts pushes; bit 5 manual flow control; bit 6 bytes_headers;
bit 7 a class that defines on_frame), chunking mode (1), then the records.

    python fuzz/fuzz_h2_client.py fuzz/corpus/fuzz_h2_client -max_len=4096
"""
import harness
from harness import ALLOWED, Peer, PushPeer, feed, finish, h2_frames, parse_h2_output, \
    split_records


class FramePeer(Peer):
    def on_frame(self, frame):
        pass


class FramePushPeer(PushPeer):
    def on_frame(self, frame):
        pass


REQUEST = [(":scheme", "https"), (":authority", "example.com"), ("accept", "*/*")]


def make_client(spec):
    if spec & 128:
        cls = FramePushPeer if spec & 16 else FramePeer
    else:
        cls = PushPeer if spec & 16 else Peer
    conn = cls(False)
    conn.manual_flow_control = bool(spec & 32)
    conn.bytes_headers = bool(spec & 64)
    conn.connection_made(True)
    for i in range(spec & 7):
        sid = conn.next_stream
        if i == 0 and spec & 8:
            conn.write_head(sid, 0, "POST", "/upload", REQUEST + [("content-length", "5")],
                            False)
            conn.write_data(sid, b"hello", True)
        else:
            conn.write_head(sid, 0, "GET", "/%d" % i, REQUEST, True)
    return conn


def one_input(data):
    if len(data) < 2:
        return
    spec, mode = data[0], data[1]
    conn = make_client(spec)
    wire = harness.SETTINGS_EMPTY + harness.SETTINGS_ACK + h2_frames(split_records(data[2:]))
    err = feed(conn, wire, mode)
    if err is None:
        if spec & 32:
            for sid in list(conn.bodies):
                try:
                    conn.open_flow(sid, len(conn.bodies[sid]))
                except ALLOWED:
                    pass
        finish(conn)
    parse_h2_output(conn.take_output(), preface=True)


if __name__ == "__main__":
    harness.main(one_input)
